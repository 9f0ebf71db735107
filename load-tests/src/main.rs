//! Load generator for `hotline-gateway`: bounded (in time and in count), loopback-only, and
//! self-contained. It starts its own production-configured `redis-server` and the gateway
//! binary, offers load, checks in Redis that nothing acknowledged was lost or duplicated, stops
//! everything, and prints a table on stderr and one JSON summary per scenario on stdout.
//!
//! ```text
//! cargo build --release
//! cargo run --release -p load-tests -- --scenario all --duration 20
//! ```

mod ceiling;
mod harness;
mod stats;
mod steady;
mod texts;
mod timers;
mod verify;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use serde_json::{Value, json};

use harness::{Gateway, GatewayTuning, RedisServer};
use stats::{Verification, print_table, round};

/// What to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// `ceiling`, then `steady`, then the gateway's throughput as a fraction of the ceiling.
    All,
    /// POST /v1/tickets through the gateway: three hotlines, several counties, 10 % retries.
    Steady,
    /// The gateway's ingest.lua by EVALSHA straight at Redis: the physical limit.
    Ceiling,
    /// SLA timers: pending timers preloaded, then a burst and a steady stream of due ones
    /// fired by the gateway's mover; lateness and exactly-once. Not part of `all`.
    Timers,
}

/// Bounded, loopback-only load generator for hotline-gateway.
#[derive(Parser, Debug)]
#[command(about, long_about = None)]
struct Args {
    /// Scenario to run.
    #[arg(long, value_enum, default_value_t = Scenario::All)]
    scenario: Scenario,
    /// Seconds of load per phase (ceiling runs two phases, steady one; for `timers`, the
    /// length of the steady phase).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=3600))]
    duration: u64,
    /// Open-loop request rate for `steady` (requests/s); without it `steady` is closed-loop.
    #[arg(long)]
    rate: Option<f64>,
    /// Closed-loop workers for `steady`, and concurrent EVALSHA tasks for `ceiling`.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=4096))]
    concurrency: u64,
    /// Scripts per pipeline in the pipelined ceiling variant.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pipeline_depth: u64,
    /// Tasks each sending pipelines in the pipelined ceiling variant.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=256))]
    pipeline_tasks: u64,
    /// Per-request timeout, milliseconds.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(100..=60_000))]
    timeout_ms: u64,
    /// Hard cap on requests (or script calls) per phase, whatever the duration.
    #[arg(long, default_value_t = 20_000_000)]
    max_requests: u64,
    /// `timers`: pending timers preloaded into the county's ZSET, due next year.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(0..=50_000_000))]
    pending: u64,
    /// `timers`: timers all due at the same instant.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(0..=5_000_000))]
    burst: u64,
    /// `timers`: steady-phase timers per second, spread evenly over `--duration` seconds.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    timer_rate: u64,
    /// `timers`: from "now" (Redis TIME) to the burst instant, ms; long enough to write the
    /// due work first.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(500..=600_000))]
    lead_ms: u64,
    /// `timers`: from the burst instant to the first steady timer, ms, so the burst's drain
    /// does not delay the steady phase.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(0..=600_000))]
    burst_gap_ms: u64,
    /// `timers`: seconds to wait after the last due time for everything to fire.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    fire_timeout: u64,
    /// `timers`: the gateway's `sla.mover_max_sleep_ms` (its default is 250).
    #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    mover_max_sleep_ms: u64,
    /// `timers`: the gateway's `sla.mover_batch` [default: the gateway's, 500].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    mover_batch: Option<u64>,
    /// `timers`: the county code whose timers ZSET is used.
    #[arg(long, default_value = "320831")]
    county: String,
    /// The gateway binary [default: <workspace>/target/release/hotline-gateway].
    #[arg(long)]
    gateway_bin: Option<PathBuf>,
}

/// The workspace root: the gateway runs from there so it finds `config/lexicon.toml`.
fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// `--gateway-bin`, else the release binary under the target directory.
fn gateway_bin(args: &Args) -> PathBuf {
    match &args.gateway_bin {
        Some(p) => p.clone(),
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join("target"))
            .join("release")
            .join("hotline-gateway"),
    }
}

/// A run id that keeps external ids of successive runs apart.
fn run_id() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{}{:04}", secs % 1_000_000, std::process::id() % 10_000)
}

/// A multiplexed connection with explicit timeouts (the client's default response timeout of
/// 500 ms is too short for deep pipelines under load).
async fn connect(url: &str) -> Result<redis::aio::MultiplexedConnection> {
    let client = redis::Client::open(url)?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(10)));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .with_context(|| format!("connect to {url}"))
}

/// Facts about the machine the numbers come from.
async fn machine(redis_url: &str) -> Value {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    let redis_version = match connect(redis_url).await {
        Ok(mut c) => redis::cmd("INFO")
            .arg("server")
            .query_async::<String>(&mut c)
            .await
            .ok()
            .and_then(|info| {
                info.lines()
                    .find_map(|l| l.strip_prefix("redis_version:"))
                    .map(|v| v.trim().to_string())
            })
            .unwrap_or_default(),
        Err(_) => String::new(),
    };
    json!({
        "cores": cores,
        "memory_gib": round(mem_kb as f64 / 1_048_576.0, 1),
        "cpu": cpu,
        "kernel": kernel,
        "redis_version": redis_version,
    })
}

/// Prints a phase's JSON on stdout (one line) and returns it.
fn emit(summary: Value) -> Value {
    println!("{summary}");
    summary
}

/// Both ceiling variants, each against a fresh Redis, verified.
async fn run_ceiling(args: &Args, run: &str) -> Result<(Value, bool)> {
    let limits = ceiling::Limits {
        duration: Duration::from_secs(args.duration),
        max_calls: args.max_requests,
    };
    let mut variants = serde_json::Map::new();
    let mut ok = true;
    let mut machine_facts = Value::Null;
    for variant in ["evalsha", "pipelined"] {
        let mut redis = RedisServer::start()?;
        if machine_facts.is_null() {
            machine_facts = machine(&redis.url()).await;
        }
        let mut conn = connect(&redis.url()).await?;
        let work =
            Arc::new(ceiling::Workload::prepare(&mut conn, &format!("{run}{variant}")).await?);
        eprintln!(
            "ceiling/{variant}: {} s against redis-server on port {} ...",
            args.duration, redis.port
        );
        let measured = if variant == "evalsha" {
            ceiling::concurrent(conn, work, args.concurrency as usize, limits).await?
        } else {
            ceiling::pipelined(
                conn,
                work,
                args.pipeline_tasks as usize,
                args.pipeline_depth as usize,
                limits,
            )
            .await?
        };
        // A script that rejects every call (an argument shape that no longer matches
        // ingest.lua) must not pass for a ceiling of zero.
        if measured.recorder.successes == 0 {
            anyhow::bail!(
                "ceiling/{variant}: no call succeeded; errors {:?}",
                measured.recorder.errors
            );
        }
        let verification = verify::verify(&redis.url(), &measured.acks, &[]).await?;
        ok &= verification.ok();
        let mut summary = measured.recorder.summary(measured.wall);
        summary["verification"] = serde_json::to_value(&verification)?;
        if variant == "evalsha" {
            summary["concurrency"] = json!(args.concurrency);
        } else {
            summary["pipeline_tasks"] = json!(args.pipeline_tasks);
            summary["pipeline_depth"] = json!(args.pipeline_depth);
            summary["latency_is_per"] = json!("pipeline");
        }
        print_table(
            &format!("ceiling / {variant}"),
            &summary,
            Some(&verification),
        );
        variants.insert(variant.to_string(), summary);
        redis.stop();
    }
    let summary = emit(json!({
        "scenario": "ceiling",
        "duration_s": args.duration,
        "evalsha": variants.get("evalsha"),
        "pipelined": variants.get("pipelined"),
        "machine": machine_facts,
        "ok": ok,
    }));
    Ok((summary, ok))
}

/// The steady scenario through a fresh Redis and gateway, verified.
async fn run_steady(args: &Args, run: &str) -> Result<(Value, bool)> {
    let bin = gateway_bin(args);
    // Fail early and clearly, before starting anything.
    if !bin.is_file() {
        anyhow::bail!(
            "gateway binary {} not found: run `cargo build --release` first, or pass --gateway-bin",
            bin.display()
        );
    }
    let mut redis = RedisServer::start()?;
    let machine_facts = machine(&redis.url()).await;
    let mut gateway = Gateway::start(
        &bin,
        &workspace_root(),
        &redis.url(),
        GatewayTuning::default(),
    )
    .await?;
    let mode = match args.rate {
        Some(rate) if rate > 0.0 && rate <= 1_000_000.0 => steady::Mode::Open { rate },
        Some(rate) => anyhow::bail!("--rate {rate} must be in (0, 1000000]"),
        None => steady::Mode::Closed {
            concurrency: args.concurrency as usize,
        },
    };
    eprintln!(
        "steady: {} s, {mode:?}, gateway {} (redis port {}) ...",
        args.duration, gateway.base, redis.port
    );
    let settings = steady::Settings {
        mode,
        duration: Duration::from_secs(args.duration),
        timeout: Duration::from_millis(args.timeout_ms),
        max_requests: args.max_requests,
    };
    let measured = steady::run(&gateway.base, run, settings).await;
    // Stop the gateway before verifying, so nothing is still being written.
    gateway.stop();
    let measured = measured?;
    let verification: Verification =
        verify::verify(&redis.url(), &measured.acks, &measured.unanswered).await?;
    redis.stop();
    let ok = verification.ok();
    let mut summary = measured.recorder.summary(measured.wall);
    let created = measured.acks.len() as f64;
    summary["scenario"] = json!("steady");
    summary["duration_s"] = json!(args.duration);
    summary["mode"] = match mode {
        steady::Mode::Closed { concurrency } => {
            json!({"loop": "closed", "concurrency": concurrency})
        }
        steady::Mode::Open { rate } => json!({"loop": "open", "rate": rate}),
    };
    summary["requests"] = json!(measured.requests);
    summary["created_per_s"] = json!(round(created / measured.wall.as_secs_f64().max(1e-9), 1));
    summary["retries"] = json!({"sent": measured.retries, "same_ticket": measured.retries_ok});
    summary["verification"] = serde_json::to_value(&verification)?;
    summary["machine"] = machine_facts;
    summary["ok"] = json!(ok);
    print_table(
        "steady (gateway, POST /v1/tickets)",
        &summary,
        Some(&verification),
    );
    eprintln!(
        "  {:<22} {:>12}",
        "retries same ticket",
        format!("{}/{}", measured.retries_ok, measured.retries)
    );
    Ok((emit(summary), ok))
}

/// The timers scenario through a fresh Redis and gateway (only its mover is exercised).
async fn run_timers(args: &Args) -> Result<(Value, bool)> {
    let bin = gateway_bin(args);
    if !bin.is_file() {
        anyhow::bail!(
            "gateway binary {} not found: run `cargo build --release` first, or pass --gateway-bin",
            bin.display()
        );
    }
    let county = &args.county;
    if county.len() != 6 || !county.bytes().all(|b| b.is_ascii_digit()) {
        anyhow::bail!("--county {county} must be six digits");
    }
    let settings = timers::Settings {
        county: county.clone(),
        pending: args.pending,
        burst: args.burst,
        rate: args.timer_rate,
        steady: Duration::from_secs(args.duration),
        lead: Duration::from_millis(args.lead_ms),
        gap: Duration::from_millis(args.burst_gap_ms),
        fire_timeout: Duration::from_secs(args.fire_timeout),
    };
    let due_total = args.burst + args.timer_rate * args.duration;
    let mut redis = RedisServer::start()?;
    let machine_facts = machine(&redis.url()).await;
    // The stream must keep every fired timer until it is read back.
    let tuning = GatewayTuning {
        stream_maxlen: Some((due_total * 2).max(100_000)),
        mover_max_sleep_ms: Some(args.mover_max_sleep_ms),
        mover_batch: args.mover_batch,
    };
    let mut gateway = Gateway::start(&bin, &workspace_root(), &redis.url(), tuning).await?;
    eprintln!(
        "timers: {} pending, burst {}, {}/s for {} s, mover_max_sleep_ms {}, gateway {} (redis port {}) ...",
        args.pending,
        args.burst,
        args.timer_rate,
        args.duration,
        args.mover_max_sleep_ms,
        gateway.base,
        redis.port
    );
    let mut conn = connect(&redis.url()).await?;
    let scheduled = timers::schedule_and_wait(&mut conn, &settings).await;
    // Stop the gateway before reading back, so nothing fires while the stream is read.
    gateway.stop();
    let measured = timers::read_back(&mut conn, &settings, scheduled?).await?;
    redis.stop();
    let check = &measured.check;
    let ok = check.ok(args.pending);
    let steady = timers::lateness_json(&measured.steady);
    let burst = timers::lateness_json(&measured.burst);
    let p99 = |v: &Value| v["p99"].as_u64().unwrap_or(u64::MAX);
    let per_timer = measured.memory["bytes_per_pending_timer"].as_f64();
    let summary = json!({
        "scenario": "timers",
        "county": county,
        "pending": args.pending,
        "burst": args.burst,
        "steady": {"rate_per_s": args.timer_rate, "seconds": args.duration},
        "mover": {
            "max_sleep_ms": args.mover_max_sleep_ms,
            "batch": args.mover_batch.map_or(json!("default (500)"), |b| json!(b)),
        },
        "memory": measured.memory,
        "lateness_ms": {"steady": steady, "burst": burst},
        "targets": {
            "steady_p99_under_100_ms": p99(&steady) < 100,
            "burst_p99_under_500_ms": p99(&burst) < 500,
            "under_1_kb_per_pending_timer": per_timer.map(|b| b < 1024.0),
        },
        "verification": serde_json::to_value(check)?,
        "schedule": measured.schedule,
        "machine": machine_facts,
        "ok": ok,
    });
    eprintln!();
    eprintln!("== timers (mover_max_sleep_ms {})", args.mover_max_sleep_ms);
    eprintln!("  {:<28} {:>12}", "pending timers", args.pending);
    eprintln!(
        "  {:<28} {:>12}",
        "bytes per pending timer",
        per_timer.map_or("-".to_string(), |b| b.to_string())
    );
    eprintln!("  {:<28} {:>12} {:>12}", "lateness (ms)", "steady", "burst");
    for (label, key) in [
        ("count", "count"),
        ("p50", "p50"),
        ("p90", "p90"),
        ("p99", "p99"),
        ("p99.9", "p99_9"),
        ("max", "max"),
    ] {
        eprintln!("  {:<28} {:>12} {:>12}", label, steady[key], burst[key]);
    }
    eprintln!("  {:<28} {:>12}", "scheduled", check.scheduled);
    eprintln!("  {:<28} {:>12}", "fired exactly once", check.fired_once);
    eprintln!("  {:<28} {:>12}", "lost", check.lost);
    eprintln!("  {:<28} {:>12}", "fired twice", check.fired_twice);
    eprintln!("  {:<28} {:>12}", "unexpected fired", check.unexpected);
    eprintln!("  {:<28} {:>12}", "pending left", check.pending_left);
    Ok((emit(summary), ok))
}

/// Runs the chosen scenario; `Ok(false)` when something was lost or duplicated.
async fn run(args: Args) -> Result<bool> {
    let run = run_id();
    match args.scenario {
        Scenario::Ceiling => Ok(run_ceiling(&args, &run).await?.1),
        Scenario::Steady => Ok(run_steady(&args, &run).await?.1),
        Scenario::Timers => Ok(run_timers(&args).await?.1),
        Scenario::All => {
            let (ceiling, ok_c) = run_ceiling(&args, &run).await?;
            let (steady, ok_s) = run_steady(&args, &run).await?;
            let per_s = |v: &Value| v["throughput_per_s"].as_f64().unwrap_or(0.0);
            let gateway = per_s(&steady);
            let evalsha = per_s(&ceiling["evalsha"]);
            let pipelined = per_s(&ceiling["pipelined"]);
            let fraction = |c: f64| if c > 0.0 { round(gateway / c, 3) } else { 0.0 };
            let ok = ok_c && ok_s;
            eprintln!();
            eprintln!("== gateway vs ceiling");
            eprintln!("  {:<30} {:>12}", "ceiling EVALSHA (/s)", evalsha);
            eprintln!("  {:<30} {:>12}", "ceiling pipelined (/s)", pipelined);
            eprintln!("  {:<30} {:>12}", "gateway tickets (/s)", gateway);
            eprintln!(
                "  {:<30} {:>12}",
                "fraction of EVALSHA ceiling",
                fraction(evalsha)
            );
            eprintln!(
                "  {:<30} {:>12}",
                "fraction of pipelined ceiling",
                fraction(pipelined)
            );
            emit(json!({
                "scenario": "all",
                "duration_s": args.duration,
                "ceiling_evalsha_per_s": evalsha,
                "ceiling_pipelined_per_s": pipelined,
                "gateway_tickets_per_s": gateway,
                "fraction_of_evalsha_ceiling": fraction(evalsha),
                "fraction_of_pipelined_ceiling": fraction(pipelined),
                "latency_ms": steady["latency_ms"],
                "lost": ceiling["evalsha"]["verification"]["lost"].as_u64().unwrap_or(0)
                    + ceiling["pipelined"]["verification"]["lost"].as_u64().unwrap_or(0)
                    + steady["verification"]["lost"].as_u64().unwrap_or(0),
                "duplicated": ceiling["evalsha"]["verification"]["duplicated"].as_u64().unwrap_or(0)
                    + ceiling["pipelined"]["verification"]["duplicated"].as_u64().unwrap_or(0)
                    + steady["verification"]["duplicated"].as_u64().unwrap_or(0),
                "machine": steady["machine"],
                "ok": ok,
            }));
            Ok(ok)
        }
    }
}

/// Exit 0 when all is well, 1 when a ticket was lost or duplicated, 2 on any other error.
/// Ctrl-C drops the running scenario, whose guards stop Redis and the gateway.
fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        tokio::select! {
            r = run(args) => r,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(2));
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!(
                "FAILED: acknowledged tickets (or scheduled timers) were lost or duplicated (see above)"
            );
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
