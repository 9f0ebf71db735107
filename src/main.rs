//! The `hotline-gateway` command: thin, so that all the work is in the library and testable.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use hotline_gateway::config::Settings;
use hotline_gateway::startup::{Application, shutdown_signal};

/// Receives, classifies and queues 12345 / 110 / 12348 hotline tickets.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (starts a local redis-server when redis.url is not set).
    Serve {
        /// A TOML file layered over config/default.toml.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Load and validate the configuration, then exit (0 when valid).
    CheckConfig {
        /// A TOML file layered over config/default.toml.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Print the SHA-256 digest of a token read from standard input, for [[auth.tokens]] sha256.
    HashToken,
    /// Working calendars: check a deadline by hand.
    Calendar {
        #[command(subcommand)]
        command: CalendarCommand,
    },
}

#[derive(Subcommand)]
enum CalendarCommand {
    /// Print the deadline (RFC 3339) of a target started at --from.
    Due {
        /// A calendar of [sla.calendars], e.g. workday or 24x7.
        #[arg(long)]
        calendar: String,
        /// The start, RFC 3339, e.g. 2026-09-30T16:00:00+08:00.
        #[arg(long)]
        from: String,
        /// N working days: the same local time on the Nth following working day.
        #[arg(long, group = "amount")]
        working_days: Option<u32>,
        /// N hours of working time.
        #[arg(long, group = "amount")]
        working_hours: Option<u32>,
        /// N wall-clock minutes.
        #[arg(long, group = "amount")]
        minutes: Option<u32>,
        /// A TOML file layered over config/default.toml.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => serve(config),
        Command::CheckConfig { config } => match Settings::load(config.as_deref()) {
            Ok(_) => {
                println!("configuration is valid");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Calendar {
            command:
                CalendarCommand::Due {
                    calendar,
                    from,
                    working_days,
                    working_hours,
                    minutes,
                    config,
                },
        } => calendar_due(
            config,
            &calendar,
            &from,
            working_days,
            working_hours,
            minutes,
        ),
        Command::HashToken => {
            let mut token = String::new();
            if std::io::stdin().read_line(&mut token).is_err() {
                eprintln!("error: could not read a token from standard input");
                return ExitCode::from(2);
            }
            println!(
                "{}",
                hotline_gateway::auth::digest_hex(token.trim_end_matches(['\r', '\n']))
            );
            ExitCode::SUCCESS
        }
    }
}

fn serve(config: Option<PathBuf>) -> ExitCode {
    let settings = match Settings::load(config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    hotline_gateway::telemetry::init(&settings.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let app = Application::build_with_path(settings, config).await?;
        app.run_until(shutdown_signal()).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn calendar_due(
    config: Option<PathBuf>,
    name: &str,
    from: &str,
    working_days: Option<u32>,
    working_hours: Option<u32>,
    minutes: Option<u32>,
) -> ExitCode {
    let fail = |msg: String| {
        eprintln!("error: {msg}");
        ExitCode::from(2)
    };
    let settings = match Settings::load(config.as_deref()) {
        Ok(s) => s,
        Err(e) => return fail(e.to_string()),
    };
    let sla = match hotline_gateway::sla::SlaConfig::build(&settings.sla, &settings.classify) {
        Ok(s) => s,
        Err(e) => return fail(e.to_string()),
    };
    let Some(calendar) = sla.calendars.get(name) else {
        let known: Vec<&str> = sla.calendars.keys().map(String::as_str).collect();
        return fail(format!(
            "no calendar `{name}`; configured: {}",
            known.join(", ")
        ));
    };
    let start = match chrono::DateTime::parse_from_rfc3339(from) {
        Ok(t) => t,
        Err(e) => return fail(format!("--from is not RFC 3339 ({e})")),
    };
    let utc = start.with_timezone(&chrono::Utc);
    let due = match (working_days, working_hours, minutes) {
        (Some(n), None, None) => calendar.add_working_days(utc, n),
        (None, Some(n), None) => calendar.add_working_time(utc, chrono::Duration::hours(n.into())),
        (None, None, Some(n)) => Ok(utc + chrono::Duration::minutes(n.into())),
        _ => return fail("give one of --working-days, --working-hours or --minutes".into()),
    };
    match due {
        Ok(t) => {
            println!("{}", t.with_timezone(&start.timezone()).to_rfc3339());
            ExitCode::SUCCESS
        }
        Err(e) => fail(e.to_string()),
    }
}
