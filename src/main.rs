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
        let app = Application::build(settings).await?;
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
