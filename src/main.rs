//! The `hotline-gateway` command: thin, so that all the work is in the library and testable.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use hotline_gateway::classify::model::TrainOptions;
use hotline_gateway::classify::tools::{self, TrainRequest};
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
    /// Classify JSON Lines from stdin ({"text", "source"?, "title"?, "people_involved"?,
    /// "prior_calls"?}) to stdout, one decision per line in input order; a bad line gives an
    /// error line.
    Classify {
        /// A TOML file layered over config/default.toml.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Measure the classifier: on labelled JSON Lines (accuracy, macro-F1, per-class precision
    /// and recall, confusion matrices, balanced service accuracy over all files), on the danger
    /// set (recall and false alarms per kind), by k-fold cross-validation of the model on its
    /// training files, and on a corrections export (the share still to be corrected). How each
    /// figure is obtained: BENCHMARKS.md.
    Eval {
        /// Labelled JSON Lines (`text`, `service`/`label_service`, `category`/`label_category`);
        /// `FILE@110` classifies the file's rows as coming from that hotline.
        #[arg(long)]
        data: Vec<String>,
        /// JSON Lines whose every row is a department matter (gold `out_of_scope`); `FILE@12345`
        /// as for `--data`.
        #[arg(long)]
        out_of_scope: Vec<String>,
        /// Hotline assumed for rows without a `source` of their own (12345, 110, 12348).
        #[arg(long, default_value = "12345")]
        source: String,
        /// The danger set (`data/danger/danger.jsonl`): recall and false alarms per kind.
        #[arg(long)]
        danger: Vec<PathBuf>,
        /// k-fold cross-validation on the training files below (0: none).
        #[arg(long, default_value_t = 0)]
        cv_folds: usize,
        /// Training files for cross-validation, as `train --data` takes them.
        #[arg(long)]
        cv_data: Vec<PathBuf>,
        /// Out-of-scope training files for cross-validation, as `train --out-of-scope`.
        #[arg(long)]
        cv_out_of_scope: Vec<PathBuf>,
        /// A corrections export (`corrections export`): the share of those tickets the
        /// classifier would still get corrected, by category and kind of correction.
        #[arg(long)]
        corrections: Vec<PathBuf>,
        /// A TOML file layered over config/default.toml.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Train the n-gram model offline and write it as a model file.
    Train {
        /// Labelled JSON Lines: every row has `service` (and in-scope rows a `category`).
        #[arg(long, required = true)]
        data: Vec<PathBuf>,
        /// JSON Lines whose every row is an out-of-scope department matter.
        #[arg(long)]
        out_of_scope: Vec<PathBuf>,
        /// The model file to write, e.g. models/ngram-lr-2026.12-2.hlm.
        #[arg(long)]
        out: PathBuf,
        /// Version recorded in every decision; defaults to the file name without extension.
        #[arg(long)]
        version: Option<String>,
        /// Leave out every Nth out-of-scope row (to measure on them); 0 keeps all.
        #[arg(long, default_value_t = 0)]
        holdout_every: usize,
        /// A lexicon whose category terms also teach the category model.
        #[arg(long)]
        lexicon: Option<PathBuf>,
        /// Passes over the data.
        #[arg(long, default_value_t = 12)]
        epochs: usize,
        /// Longest character n-gram (1 to 3).
        #[arg(long, default_value_t = 3)]
        max_n: usize,
        /// Hash buckets (a power of two keeps the file small and the look-ups cached).
        #[arg(long, default_value_t = 65_536)]
        buckets: u32,
        /// n-grams whose largest weight is below this are left out of the file.
        #[arg(long, default_value_t = 0.1)]
        prune_below: f32,
        /// A TOML file layered over config/default.toml (for the taxonomy).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Agents' corrections of the classifier.
    Corrections {
        #[command(subcommand)]
        command: CorrectionsCommand,
    },
    /// Working calendars: check a deadline by hand.
    Calendar {
        #[command(subcommand)]
        command: CalendarCommand,
    },
}

#[derive(Subcommand)]
enum CorrectionsCommand {
    /// Write the corrections stream (hl:corrections) as training JSON Lines.
    Export {
        /// redis:// URL of the gateway's Redis.
        #[arg(long)]
        redis_url: String,
        /// Only entries after this stream id ("-": all).
        #[arg(long, default_value = "-")]
        since: String,
        /// Output file; standard output when absent.
        #[arg(long)]
        out: Option<PathBuf>,
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
        Command::CheckConfig { config } => {
            match Settings::load(config.as_deref()).and_then(|s| s.check_deployment().map(|()| s)) {
                Ok(_) => {
                    println!("configuration is valid");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
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
        Command::Classify { config } => classify_stdin(config),
        Command::Eval {
            data,
            out_of_scope,
            source,
            danger,
            cv_folds,
            cv_data,
            cv_out_of_scope,
            corrections,
            config,
        } => eval(
            config,
            EvalRequest {
                data,
                out_of_scope,
                source,
                danger,
                cv_folds,
                cv_data,
                cv_out_of_scope,
                corrections,
            },
        ),
        Command::Train {
            data,
            out_of_scope,
            out,
            version,
            holdout_every,
            lexicon,
            epochs,
            max_n,
            buckets,
            prune_below,
            config,
        } => train(
            config,
            TrainRequest {
                data,
                out_of_scope,
                holdout_every,
                lexicon,
                options: TrainOptions {
                    epochs,
                    max_n,
                    buckets,
                    prune_below,
                    ..TrainOptions::default()
                },
            },
            &out,
            version,
        ),
        Command::Corrections {
            command:
                CorrectionsCommand::Export {
                    redis_url,
                    since,
                    out,
                },
        } => corrections_export(&redis_url, &since, out),
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
    let settings =
        match Settings::load(config.as_deref()).and_then(|s| s.check_deployment().map(|()| s)) {
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
    let mut settings = match Settings::load(config.as_deref()) {
        Ok(s) => s,
        Err(e) => return fail(e.to_string()),
    };
    let sla = match settings.take_sla_config() {
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
        (None, None, Some(n)) => Ok(hotline_gateway::sla::calendar::Counted::exact(
            utc + chrono::Duration::minutes(n.into()),
        )),
        _ => return fail("give one of --working-days, --working-hours or --minutes".into()),
    };
    match due {
        Ok(t) => {
            println!("{}", t.value.with_timezone(&start.timezone()).to_rfc3339());
            if t.is_provisional() {
                let years: Vec<String> = t.uncovered.iter().map(i32::to_string).collect();
                eprintln!(
                    "note: provisional: calendar `{name}` has no holiday data for {}; counted on its ordinary week",
                    years.join(", ")
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(e.to_string()),
    }
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(2)
}

fn load_classifier(
    config: Option<&std::path::Path>,
) -> Result<(Settings, hotline_gateway::classify::Classifier), String> {
    let settings = Settings::load(config).map_err(|e| e.to_string())?;
    let c = hotline_gateway::classify::Classifier::load(&settings.classify)
        .map_err(|e| e.to_string())?;
    Ok((settings, c))
}

fn classify_stdin(config: Option<PathBuf>) -> ExitCode {
    let c = match load_classifier(config.as_deref()) {
        Ok((_, c)) => c,
        Err(e) => return fail(e),
    };
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match tools::classify_lines(&c, &mut stdin.lock(), &mut out) {
        Ok((_, 0)) => ExitCode::SUCCESS,
        Ok((_, bad)) => {
            eprintln!("{bad} line(s) could not be classified (see their error lines)");
            ExitCode::from(1)
        }
        Err(e) => fail(e),
    }
}

/// What `eval` measures (see the command's help).
struct EvalRequest {
    data: Vec<String>,
    out_of_scope: Vec<String>,
    source: String,
    danger: Vec<PathBuf>,
    cv_folds: usize,
    cv_data: Vec<PathBuf>,
    cv_out_of_scope: Vec<PathBuf>,
    corrections: Vec<PathBuf>,
}

/// `FILE@SOURCE` → the file and its hotline (`default` without a suffix).
fn file_and_source(
    arg: &str,
    default: hotline_gateway::ticket::Source,
) -> Result<(PathBuf, hotline_gateway::ticket::Source), String> {
    match arg.rsplit_once('@') {
        Some((path, s)) => hotline_gateway::ticket::Source::parse(s)
            .map(|source| (PathBuf::from(path), source))
            .ok_or_else(|| format!("{arg}: the hotline after @ must be 12345, 110 or 12348")),
        None => Ok((PathBuf::from(arg), default)),
    }
}

fn eval(config: Option<PathBuf>, req: EvalRequest) -> ExitCode {
    use hotline_gateway::classify::{Lexicon, Service, measure};
    let Some(source) = hotline_gateway::ticket::Source::parse(&req.source) else {
        return fail(format!(
            "--source must be 12345, 110 or 12348, not `{}`",
            req.source
        ));
    };
    if req.data.is_empty()
        && req.out_of_scope.is_empty()
        && req.danger.is_empty()
        && req.cv_folds == 0
        && req.corrections.is_empty()
    {
        return fail("give --data, --out-of-scope, --danger, --cv-folds or --corrections");
    }
    let (settings, c) = match load_classifier(config.as_deref()) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    let taxonomy = &settings.classify.categories;
    let mut all_services = Vec::new();
    let files = req.data.iter().map(|a| (a, None)).chain(
        req.out_of_scope
            .iter()
            .map(|a| (a, Some(Service::OutOfScope))),
    );
    for (arg, gold) in files {
        let (path, source) = match file_and_source(arg, source) {
            Ok(x) => x,
            Err(e) => return fail(e),
        };
        let rows = match tools::read_rows(&path) {
            Ok(rows) => rows,
            Err(e) => return fail(e),
        };
        let (services, categories) = tools::evaluate_pairs(&c, &rows, source, taxonomy, gold);
        println!("== {} (as {})", path.display(), source.as_str());
        println!("model {}", c.model());
        print!("{}", tools::report("service", &services));
        if gold.is_none() {
            print!("{}", tools::report("category (mapped labels)", &categories));
        }
        all_services.extend(services);
    }
    if !all_services.is_empty() {
        println!(
            "balanced service accuracy over the files above (mean recall over the gold services): {:.3}",
            measure::balanced_accuracy(&all_services)
        );
    }
    for path in &req.danger {
        match measure::read_danger(path) {
            Ok(rows) => {
                println!("== {}", path.display());
                print!(
                    "{}",
                    measure::danger_report(&c, &rows, &settings.classify.warning_levels)
                );
            }
            Err(e) => return fail(e),
        }
    }
    for path in &req.corrections {
        match tools::read_rows(path) {
            Ok(rows) => {
                println!("== {} (corrections export)", path.display());
                println!("model {}", c.model());
                print!(
                    "{}",
                    measure::corrections_report(&c, &rows, source, taxonomy)
                );
            }
            Err(e) => return fail(e),
        }
    }
    if req.cv_folds > 0 {
        let lexicon = match std::fs::read_to_string(&settings.classify.lexicon)
            .map_err(|e| format!("{}: {e}", settings.classify.lexicon.display()))
            .and_then(|t| Lexicon::from_toml_str(&t).map_err(|e| e.to_string()))
        {
            Ok(l) => l,
            Err(e) => return fail(e),
        };
        let cv = measure::CrossValidation {
            train: TrainRequest {
                data: req.cv_data,
                out_of_scope: req.cv_out_of_scope,
                holdout_every: 0,
                lexicon: Some(settings.classify.lexicon.clone()),
                options: TrainOptions::default(),
            },
            lexicon,
            folds: req.cv_folds,
            default_source: source,
        };
        match measure::cross_validate(&cv, &settings.classify) {
            Ok(text) => print!("{text}"),
            Err(e) => return fail(e),
        }
    }
    ExitCode::SUCCESS
}

fn train(
    config: Option<PathBuf>,
    mut req: TrainRequest,
    out: &std::path::Path,
    version: Option<String>,
) -> ExitCode {
    let settings = match Settings::load(config.as_deref()) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let version = version.unwrap_or_else(|| {
        out.file_stem()
            .map_or("model".into(), |s| s.to_string_lossy().into_owned())
    });
    req.options.version = version;
    let started = std::time::Instant::now();
    let (model, summary) = match tools::train_from_files(&req, &settings.classify) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty())
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        return fail(format!("{}: {e}", dir.display()));
    }
    let bytes = model.to_bytes();
    if let Err(e) = std::fs::write(out, &bytes) {
        return fail(format!("{}: {e}", out.display()));
    }
    for line in summary {
        println!("trained on {line}");
    }
    println!(
        "wrote {} ({} bytes, version {}) in {:.1} s",
        out.display(),
        bytes.len(),
        model.version(),
        started.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}

fn corrections_export(redis_url: &str, since: &str, out: Option<PathBuf>) -> ExitCode {
    use hotline_gateway::corrections::{CORRECTIONS_STREAM, export_corrections};
    let result = match &out {
        Some(path) => match std::fs::File::create(path) {
            Ok(f) => export_corrections(
                redis_url,
                CORRECTIONS_STREAM,
                since,
                &mut std::io::BufWriter::new(f),
            ),
            Err(e) => return fail(format!("{}: {e}", path.display())),
        },
        None => export_corrections(
            redis_url,
            CORRECTIONS_STREAM,
            since,
            &mut std::io::stdout().lock(),
        ),
    };
    match result {
        Ok(stats) => {
            eprintln!(
                "exported {} correction(s), skipped {} (no text, or service triage/unknown)",
                stats.written, stats.skipped
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}
