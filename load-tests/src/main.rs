//! Load generator for `hotline-gateway`: bounded (in time and in count), loopback-only, and
//! self-contained. It starts its own production-configured `redis-server` and the gateway
//! binary, offers load, checks in Redis that nothing acknowledged was lost or duplicated, stops
//! everything, and prints a table on stderr and one JSON summary per scenario on stdout.
//!
//! ```text
//! cargo build --release
//! cargo run --release -p load-tests -- --scenario all --duration 20
//! ```
//!
//! `--scenario steady --target URL[,URL…]` instead drives gateways started elsewhere (the crash
//! fault test's two gateways): signed as a partner, failing over between them, and writing every
//! acknowledged ticket to `--acks-out` for the caller to check.

mod burst;
mod ceiling;
mod harness;
mod live;
mod peer;
// Shared with the `partner-sim` binary, which uses the parts this one does not.
#[allow(dead_code)]
mod signing;
mod soak;
mod soak_run;
mod stats;
mod steady;
mod texts;
mod timers;
mod verify;
mod work;

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
    /// `ceiling`, `steady`, `work` and `peer`, then the ratios: our ingest / ceiling, our
    /// ingest / BullMQ add, our full loop / BullMQ add + worker.
    All,
    /// POST /v1/tickets through the gateway: three hotlines, several counties, 10 % retries.
    Steady,
    /// The gateway's ingest.lua by EVALSHA straight at Redis: the physical limit.
    Ceiling,
    /// The morning peak: open-loop at 5 × the steady reference rate (`--rate`, else 400/s).
    Peak,
    /// 2,000 tickets in 60 s from one county (`--county`), most raised; then bands, SLA timers
    /// and queues. Fixed size and length.
    Burst,
    /// Agents claim, accept and resolve: alone on a backlog, then while intake runs.
    Work,
    /// BullMQ (Node) on the same machine: add, add + worker, add-to-start latency, delayed
    /// jobs as SLA timers. Needs node and npm (and the npm registry, or its cache).
    Peer,
    /// SLA timers: pending timers preloaded, then a burst and a steady stream of due ones
    /// fired by the gateway's mover; lateness and exactly-once. Not part of `all`.
    Timers,
    /// Memory: `--tickets` queued tickets (default 1,000,000) written by `ingest.lua` straight
    /// into Redis, then Redis memory per queued ticket and the gateway's RSS serving them.
    /// Not part of `all`.
    Memory,
    /// Live transfer (issue 8): `"live": true` requests open-loop at `--rate` [default 500/s]
    /// with lawyers signed in; the decision latency (reservation or position and estimate).
    /// Not part of `all`.
    Live,
    /// The case archive's soak (issue 18): `--tickets` [default 200,000] through intake, claim,
    /// accept, resolve and follow-up while the gateway archives them as they end
    /// (`after_seconds = 0`); Redis memory before, at the peak and after convergence; every
    /// ticket in PostgreSQL once with its history, none left in Redis. Not part of `all`.
    Soak,
    /// Archive throughput (issue 18): `--tickets` [default 50,000] ended tickets filled with
    /// archiving held off (Redis bytes per open and per ended ticket), then one gateway archives
    /// them: tickets/s until the backlog is 0. Not part of `all`.
    Archive,
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
    /// Also the steady reference rate that `peak` multiplies by 5 [default there: 400].
    #[arg(long)]
    rate: Option<f64>,
    /// `work`: agents of each kind (lawyer, mediator, triage) in each of the six counties.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=50))]
    agents_per_kind: u64,
    /// `work`: tickets an agent may hold at once.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    agent_capacity: u32,
    /// `work`: requests sent to build the backlog the agents drain first.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(0..=2_000_000))]
    backlog: u64,
    /// `work`: closed-loop intake workers while the agents work.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=1024))]
    work_intake_concurrency: u64,
    /// `work`: the gateway's `agents.claim_scan` (waiting tickets a claim reads per queue)
    /// [default: the gateway's, 200].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    claim_scan: Option<u64>,
    /// `peer`: BullMQ delayed jobs all due at one instant.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    delayed: u64,
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
    /// Tickets: `memory` queued tickets written before measuring [default 1,000,000]; `soak`
    /// tickets through their whole life [200,000]; `archive` ended tickets archived [50,000].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    tickets: Option<u64>,
    /// `soak`, `archive`: the gateway's `archive.interval_ms` (how often it looks for tickets
    /// due).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(50..=60_000))]
    archive_interval_ms: u64,
    /// `soak`, `archive`: the gateway's `archive.batch` [default: the gateway's, 500].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=5_000))]
    archive_batch: Option<u64>,
    /// `soak`, `archive`: most seconds to wait for the archive to converge once the load ends.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=36_000))]
    converge_timeout: u64,
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
    /// `timers`: the county code whose timers ZSET is used; `burst`: the county the tickets
    /// come from (one of the generator's six).
    #[arg(long, default_value = "320831")]
    county: String,
    /// The gateway binary [default: <workspace>/target/release/hotline-gateway].
    #[arg(long)]
    gateway_bin: Option<PathBuf>,
    /// `steady` only: gateways already running (`http://127.0.0.1:8080`), repeated or comma
    /// separated. Nothing is started; request `n` goes first to target `n mod count` and, when
    /// it gets no definite answer, to the next one (see `--retry-for`). Needs a partner key.
    #[arg(long = "target", value_name = "URL", value_delimiter = ',')]
    targets: Vec<String>,
    /// With `--target`: sign every request as this partner (`[[auth.partners]] key_id`).
    #[arg(long, value_name = "KEY_ID", requires = "targets")]
    partner_key_id: Option<String>,
    /// The environment variable holding that partner's shared secret.
    #[arg(
        long,
        value_name = "VAR",
        requires = "partner_key_id",
        conflicts_with = "partner_secret_file"
    )]
    partner_secret_env: Option<String>,
    /// A file holding that partner's shared secret (one trailing newline ignored).
    #[arg(long, value_name = "PATH", requires = "partner_key_id")]
    partner_secret_file: Option<PathBuf>,
    /// With `--target`: keep retrying a request without a definite answer (no connection,
    /// timeout, 5xx, 429), re-signed, on the next target for at most this many seconds from its
    /// scheduled start; after that it counts as unanswered.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=3600))]
    retry_for: u64,
    /// `steady`: write every ticket acknowledged as new, one JSON object a line (`source`,
    /// `external_id`, `id`, `county`, `queue`), to this file.
    #[arg(long, value_name = "FILE")]
    acks_out: Option<PathBuf>,
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

/// One intake phase: what it is called, how the load is offered and what it carries.
struct Intake {
    /// `steady`, `peak` or `burst`.
    name: &'static str,
    /// Open or closed loop.
    mode: steady::Mode,
    /// Hotline mix or one county.
    mix: steady::Mix,
    /// Seconds of load.
    duration: u64,
    /// Most requests, whatever the time.
    max_requests: u64,
}

/// An intake phase's results, with its Redis still running for further checks.
struct IntakeOut {
    /// The JSON summary (not yet printed).
    summary: Value,
    /// Nothing lost or duplicated.
    ok: bool,
    /// The phase's Redis; stopped when dropped.
    redis: RedisServer,
    /// New tickets acknowledged.
    acks: Vec<verify::Ack>,
}

/// The steady rate `peak` multiplies by 5 when `--rate` is not given: an assumption (the issue
/// names none), about a fifth of what one gateway sustained on this 2-core machine.
const REFERENCE_STEADY_RATE: f64 = 400.0;

/// Open-loop rate check.
fn open_rate(rate: f64) -> Result<steady::Mode> {
    if rate > 0.0 && rate <= 1_000_000.0 {
        Ok(steady::Mode::Open { rate })
    } else {
        anyhow::bail!("rate {rate} must be in (0, 1000000]")
    }
}

/// The gateway binary, or a clear error before anything is started.
fn checked_gateway_bin(args: &Args) -> Result<PathBuf> {
    let bin = gateway_bin(args);
    if !bin.is_file() {
        anyhow::bail!(
            "gateway binary {} not found: run `cargo build --release` first, or pass --gateway-bin",
            bin.display()
        );
    }
    Ok(bin)
}

/// An intake phase through a fresh Redis and gateway, verified.
async fn run_intake(args: &Args, run: &str, intake: Intake) -> Result<IntakeOut> {
    let bin = checked_gateway_bin(args)?;
    let redis = RedisServer::start()?;
    let machine_facts = machine(&redis.url()).await;
    let mut gateway = Gateway::start(
        &bin,
        &workspace_root(),
        &redis.url(),
        GatewayTuning::default(),
    )
    .await?;
    let mode = intake.mode;
    eprintln!(
        "{}: {} s, {mode:?}, gateway {} (redis port {}) ...",
        intake.name, intake.duration, gateway.base, redis.port
    );
    let settings = steady::Settings {
        mode,
        mix: intake.mix,
        duration: Duration::from_secs(intake.duration),
        timeout: Duration::from_millis(args.timeout_ms),
        max_requests: intake.max_requests,
    };
    let measured = steady::run(&gateway.base, run, settings).await;
    // Stop the gateway before verifying, so nothing is still being written.
    gateway.stop();
    let measured = measured?;
    let verification: Verification =
        verify::verify(&redis.url(), &measured.acks, &measured.unanswered).await?;
    let ok = verification.ok();
    let mut summary = measured.recorder.summary(measured.wall);
    let created = measured.acks.len() as f64;
    summary["scenario"] = json!(intake.name);
    summary["duration_s"] = json!(intake.duration);
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
        &format!("{} (gateway, POST /v1/tickets)", intake.name),
        &summary,
        Some(&verification),
    );
    eprintln!(
        "  {:<22} {:>12}",
        "retries same ticket",
        format!("{}/{}", measured.retries_ok, measured.retries)
    );
    Ok(IntakeOut {
        summary,
        ok,
        redis,
        acks: measured.acks,
    })
}

/// `steady`'s load: open-loop at `--rate`, else closed-loop with `--concurrency` workers.
fn steady_mode(args: &Args) -> Result<steady::Mode> {
    match args.rate {
        Some(rate) => open_rate(rate),
        None => Ok(steady::Mode::Closed {
            concurrency: args.concurrency as usize,
        }),
    }
}

/// Refuses a `--target` that is not on this machine: the generator only ever loads loopback.
fn loopback_target(url: &str) -> Result<String> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("--target {url}: not a URL"))?;
    let host = parsed.host_str().unwrap_or_default();
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !["http", "https"].contains(&parsed.scheme()) || !loopback {
        anyhow::bail!(
            "--target {url}: only http(s) gateways on this machine's loopback are loaded"
        );
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// `steady --target …`: gateways started elsewhere, every request signed as a partner, each
/// ticket retried on the next gateway until acknowledged; the acknowledged tickets go to
/// `--acks-out` for whoever started the gateways (the crash fault test) to check in Redis.
async fn run_steady_external(args: &Args, run: &str) -> Result<(Value, bool)> {
    let bases = args
        .targets
        .iter()
        .map(|t| loopback_target(t))
        .collect::<Result<Vec<_>>>()?;
    let Some(key_id) = args.partner_key_id.as_deref() else {
        anyhow::bail!(
            "--target needs --partner-key-id and --partner-secret-env (or --partner-secret-file): \
             the generator's own bearer token is known only to the gateways it starts"
        );
    };
    let signer = signing::Signer::from_env_or_file(
        key_id,
        args.partner_secret_env.as_deref(),
        args.partner_secret_file.as_deref(),
    )?;
    let mode = steady_mode(args)?;
    eprintln!(
        "steady: {} s, {mode:?}, gateways {} (signed as {key_id}), failover for {} s ...",
        args.duration,
        bases.join(", "),
        args.retry_for
    );
    let target = steady::Target {
        bases: bases.clone(),
        auth: steady::Auth::Signed(signer),
        failover: Some(Duration::from_secs(args.retry_for)),
    };
    let settings = steady::Settings {
        mode,
        mix: steady::Mix::Hotline,
        duration: Duration::from_secs(args.duration),
        timeout: Duration::from_millis(args.timeout_ms),
        max_requests: args.max_requests,
    };
    let measured = steady::run_on(target, run, settings).await?;
    if let Some(path) = &args.acks_out {
        verify::write_acks(path, &measured.acks)?;
    }
    // Without the gateways' Redis the generator cannot look tickets up: it reports what it was
    // told, and fails when any request stayed without a definite answer or any answer broke
    // idempotency (a retry with another id, a second ticket, a new ticket answered 200).
    let ok = measured.unanswered.is_empty() && measured.recorder.errors.is_empty();
    let mut summary = measured.recorder.summary(measured.wall);
    summary["scenario"] = json!("steady");
    summary["targets"] = json!(bases);
    summary["signed_as"] = json!(key_id);
    summary["duration_s"] = json!(args.duration);
    summary["mode"] = match mode {
        steady::Mode::Closed { concurrency } => {
            json!({"loop": "closed", "concurrency": concurrency})
        }
        steady::Mode::Open { rate } => json!({"loop": "open", "rate": rate}),
    };
    summary["requests"] = json!(measured.requests);
    summary["acknowledged"] = json!(measured.acks.len());
    summary["unanswered"] = json!(measured.unanswered.len());
    summary["retries"] = json!({"sent": measured.retries, "same_ticket": measured.retries_ok});
    summary["failover"] = json!({
        "retry_for_s": args.retry_for,
        "requests_failed_over": measured.failed_over,
        "failed_attempts": measured.failed_attempts,
    });
    summary["acks_out"] = json!(args.acks_out);
    summary["verification"] = json!("not run: the gateways' Redis is the caller's");
    summary["ok"] = json!(ok);
    print_table(
        "steady (external gateways, signed, failover)",
        &summary,
        None,
    );
    eprintln!(
        "  {:<22} {:>12}\n  {:<22} {:>12}\n  {:<22} {:>12}",
        "acknowledged",
        measured.acks.len(),
        "failed over",
        measured.failed_over,
        "unanswered",
        measured.unanswered.len()
    );
    Ok((emit(summary), ok))
}

/// `steady`: closed-loop with `--concurrency` workers, or open-loop at `--rate`; against
/// `--target` gateways when given, else a gateway and Redis of its own.
async fn run_steady(args: &Args, run: &str) -> Result<(Value, bool)> {
    if !args.targets.is_empty() {
        return run_steady_external(args, run).await;
    }
    let mode = steady_mode(args)?;
    let mut out = run_intake(
        args,
        run,
        Intake {
            name: "steady",
            mode,
            mix: steady::Mix::Hotline,
            duration: args.duration,
            max_requests: args.max_requests,
        },
    )
    .await?;
    out.redis.stop();
    if let Some(path) = &args.acks_out {
        verify::write_acks(path, &out.acks)?;
    }
    Ok((emit(out.summary), out.ok))
}

/// `peak`: the morning peak, open-loop at 5 × the steady reference rate (`--rate`, else
/// [`REFERENCE_STEADY_RATE`]), with steady's mix.
async fn run_peak(args: &Args, run: &str) -> Result<(Value, bool)> {
    let reference = args.rate.unwrap_or(REFERENCE_STEADY_RATE);
    let mode = open_rate(5.0 * reference)?;
    let mut out = run_intake(
        args,
        run,
        Intake {
            name: "peak",
            mode,
            mix: steady::Mix::Hotline,
            duration: args.duration,
            max_requests: args.max_requests,
        },
    )
    .await?;
    out.redis.stop();
    out.summary["reference_steady_rate"] = json!(reference);
    out.summary["reference_from"] = json!(if args.rate.is_some() {
        "--rate"
    } else {
        "default (400/s)"
    });
    out.summary["peak_factor"] = json!(5);
    let offered = 5.0 * reference;
    let created = out.summary["created_per_s"].as_f64().unwrap_or(0.0);
    let answered = out.summary["throughput_per_s"].as_f64().unwrap_or(0.0);
    out.summary["kept_up"] = json!(answered >= 0.98 * offered);
    eprintln!(
        "  {:<22} {:>12}",
        "offered (/s)",
        format!("{offered} (created {created})")
    );
    Ok((emit(out.summary), out.ok))
}

/// Tickets in the burst, and its length: fixed by the issue.
const BURST_TICKETS: f64 = 2000.0;
/// See [`BURST_TICKETS`].
const BURST_SECONDS: u64 = 60;

/// `burst`: 2,000 tickets in 60 s from one county (`--county`), 90 % written to be raised;
/// then the bands, SLA timers and queues they left.
async fn run_burst(args: &Args, run: &str) -> Result<(Value, bool)> {
    let county = texts::COUNTIES
        .iter()
        .map(|(c, _, _)| *c)
        .find(|c| *c == args.county)
        .with_context(|| {
            format!(
                "--county {} must be one of the load generator's counties",
                args.county
            )
        })?;
    let mut out = run_intake(
        args,
        run,
        Intake {
            name: "burst",
            mode: steady::Mode::Open {
                rate: BURST_TICKETS / BURST_SECONDS as f64,
            },
            mix: steady::Mix::County {
                county,
                raised_share: 0.9,
            },
            duration: BURST_SECONDS,
            // The schedule's rounding must not add a 2,001st.
            max_requests: args.max_requests.min(BURST_TICKETS as u64),
        },
    )
    .await?;
    let mut conn = connect(&out.redis.url()).await?;
    let after = burst::check(&mut conn, county, &out.acks).await?;
    out.redis.stop();
    let v = &out.summary["verification"];
    let all_once = v["acknowledged"].as_u64() == Some(BURST_TICKETS as u64)
        && v["found"].as_u64() == Some(BURST_TICKETS as u64)
        && v["stored_tickets"].as_u64() == Some(BURST_TICKETS as u64)
        && v["duplicated"].as_u64() == Some(0);
    eprintln!(
        "  {:<22} {:>12}",
        "raised as meant",
        format!("{}/{}", after["raised_as_meant"], after["meant_raised"])
    );
    eprintln!(
        "  {:<22} {:>12}",
        "timers in ZSET",
        format!(
            "{}/{}",
            after["timers"]["present_in_zset"], after["timers"]["listed_in_tickets"]
        )
    );
    out.summary["county"] = json!(county);
    out.summary["after"] = after;
    out.summary["all_2000_present_once"] = json!(all_once);
    Ok((emit(out.summary), out.ok))
}

/// `work`: agents drain a backlog alone (claim + resolve throughput), then work while intake
/// runs (the full loop); every acknowledged ticket must end resolved once or still queued.
async fn run_work(args: &Args, run: &str) -> Result<(Value, bool)> {
    let bin = checked_gateway_bin(args)?;
    let agents = work::agents(args.agents_per_kind as usize);
    let mut redis = RedisServer::start()?;
    let machine_facts = machine(&redis.url()).await;
    let tuning = GatewayTuning {
        extra_toml: work::config_toml(&agents, args.agent_capacity, args.claim_scan),
        ..GatewayTuning::default()
    };
    let mut gateway = Gateway::start(&bin, &workspace_root(), &redis.url(), tuning).await?;
    let timeout = Duration::from_millis(args.timeout_ms);
    let mut acks = Vec::new();
    let mut unanswered = Vec::new();
    let mut resolved = Vec::new();

    // 1. Backlog: intake alone, as fast as it goes, bounded in count and time.
    eprintln!(
        "work: backlog of {} requests, {} agents, gateway {} (redis port {}) ...",
        args.backlog,
        agents.len(),
        gateway.base,
        redis.port
    );
    let backlog = steady::run(
        &gateway.base,
        &format!("{run}b"),
        steady::Settings {
            mode: steady::Mode::Closed { concurrency: 32 },
            mix: steady::Mix::Hotline,
            duration: Duration::from_secs(120),
            timeout,
            max_requests: args.backlog,
        },
    )
    .await?;
    let backlog_created = backlog.acks.len();
    acks.extend(backlog.acks);
    unanswered.extend(backlog.unanswered);

    // 2. Drain: agents alone until the backlog is gone or `--duration` is up.
    eprintln!(
        "work: agents drain the backlog ({} s at most) ...",
        args.duration
    );
    let drain = work::run_agents(
        &gateway.base,
        &agents,
        work::AgentSettings {
            duration: Duration::from_secs(args.duration),
            timeout,
            max_claims: args.max_requests,
            stop_after_empty: Some(10),
        },
    )
    .await?;
    resolved.extend(drain.resolved.iter().cloned());

    // 3. Full loop: intake and agents together for `--duration`.
    eprintln!(
        "work: intake ({} workers) and agents together, {} s ...",
        args.work_intake_concurrency, args.duration
    );
    let loop_run = format!("{run}l");
    let intake = steady::run(
        &gateway.base,
        &loop_run,
        steady::Settings {
            mode: steady::Mode::Closed {
                concurrency: args.work_intake_concurrency as usize,
            },
            mix: steady::Mix::Hotline,
            duration: Duration::from_secs(args.duration),
            timeout,
            max_requests: args.max_requests,
        },
    );
    let working = work::run_agents(
        &gateway.base,
        &agents,
        work::AgentSettings {
            duration: Duration::from_secs(args.duration),
            timeout,
            max_claims: args.max_requests,
            stop_after_empty: None,
        },
    );
    let (intake, working) = tokio::join!(intake, working);
    gateway.stop();
    let intake = intake?;
    let working = working?;
    resolved.extend(working.resolved.iter().cloned());
    let loop_created = intake.acks.len();
    acks.extend(intake.acks.iter().cloned());
    unanswered.extend(intake.unanswered.iter().cloned());

    let verification = verify::verify(&redis.url(), &acks, &unanswered).await?;
    let mut conn = connect(&redis.url()).await?;
    let mut check = work::check(&mut conn, &acks, &resolved).await?;
    check.duplicated = verification.duplicated;
    check.stored_tickets = verification.stored_tickets;
    redis.stop();
    let ok = check.ok();
    let wall = intake.wall.max(working.wall).as_secs_f64().max(1e-9);
    let loop_resolved = working.resolved.len() as f64;
    let summary = json!({
        "scenario": "work",
        "agents": {
            "count": agents.len(),
            "per_kind_per_county": args.agents_per_kind,
            "kinds": ["lawyer", "mediator", "triage"],
            "tier": "county",
            "capacity": args.agent_capacity,
            "claim_scan": args.claim_scan.map_or(json!("default (200)"), |n| json!(n)),
        },
        "backlog": {
            "requests": backlog.requests,
            "created": backlog_created,
            "wall_seconds": round(backlog.wall.as_secs_f64(), 3),
            "created_per_s": round(backlog_created as f64 / backlog.wall.as_secs_f64().max(1e-9), 1),
        },
        "drain": drain.summary(),
        "full_loop": {
            "duration_s": args.duration,
            "intake_concurrency": args.work_intake_concurrency,
            "ingested_per_s": round(loop_created as f64 / wall, 1),
            "resolved_per_s": round(loop_resolved / wall, 1),
            "intake": intake.recorder.summary(intake.wall),
            "agents": working.summary(),
        },
        "claim_resolve_per_s": round(drain.resolved_per_s(), 1),
        "full_loop_resolved_per_s": round(loop_resolved / wall, 1),
        "target_claim_resolve_per_s": 5000,
        "verification": serde_json::to_value(&check)?,
        "machine": machine_facts,
        "ok": ok,
    });
    eprintln!();
    eprintln!("== work (agents: claim, accept, resolve)");
    eprintln!("  {:<30} {:>12}", "agents", agents.len());
    eprintln!("  {:<30} {:>12}", "backlog created", backlog_created);
    eprintln!(
        "  {:<30} {:>12}",
        "drain: claim+resolve (/s)", summary["claim_resolve_per_s"]
    );
    eprintln!(
        "  {:<30} {:>12}",
        "drain: claim p99 (ms)", summary["drain"]["latency_ms"]["claim"]["p99"]
    );
    eprintln!(
        "  {:<30} {:>12}",
        "loop: ingested (/s)", summary["full_loop"]["ingested_per_s"]
    );
    eprintln!(
        "  {:<30} {:>12}",
        "loop: resolved (/s)", summary["full_loop"]["resolved_per_s"]
    );
    for (k, v) in [
        ("acknowledged", check.acknowledged),
        ("resolved once", check.resolved_once),
        ("still queued", check.still_queued),
        ("sent back", check.sent_back),
        ("held at end", check.held_at_end),
        ("lost", check.lost),
        ("resolved twice", check.resolved_twice),
        ("duplicated", check.duplicated),
    ] {
        eprintln!("  {:<30} {:>12}", k, v);
    }
    Ok((emit(summary), ok))
}

/// `peer`: BullMQ on the same machine (see `peer.rs`).
async fn run_peer(args: &Args) -> Result<Value> {
    let out = peer::run(
        &workspace_root().join("load-tests").join("peer"),
        peer::Settings {
            duration: args.duration,
            delayed: args.delayed,
            max_jobs: args.max_requests,
        },
    )
    .await?;
    eprintln!();
    eprintln!("== peer (BullMQ)");
    if out["available"] == json!(false) {
        eprintln!("  NOT MEASURED: {}", out["reason"]);
    } else {
        for (label, v) in [
            ("add alone (/s)", &out["add_alone"]["add_per_s"]),
            (
                "add+worker: completed (/s)",
                &out["add_and_worker"]["completed_per_s"],
            ),
            ("add+worker: add (/s)", &out["add_and_worker"]["add_per_s"]),
            (
                "add-to-start p50 (ms)",
                &out["add_and_worker"]["add_to_start_ms"]["p50"],
            ),
            (
                "add-to-start p99 (ms)",
                &out["add_and_worker"]["add_to_start_ms"]["p99"],
            ),
            (
                "delayed lateness p50 (ms)",
                &out["delayed"]["lateness_ms"]["p50"],
            ),
            (
                "delayed lateness p99 (ms)",
                &out["delayed"]["lateness_ms"]["p99"],
            ),
        ] {
            eprintln!("  {:<30} {:>12}", label, v);
        }
    }
    Ok(emit(out))
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
        ..GatewayTuning::default()
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
    if args.scenario != Scenario::Steady && (!args.targets.is_empty() || args.acks_out.is_some()) {
        anyhow::bail!("--target and --acks-out are for --scenario steady only");
    }
    match args.scenario {
        Scenario::Ceiling => Ok(run_ceiling(&args, &run).await?.1),
        Scenario::Steady => Ok(run_steady(&args, &run).await?.1),
        Scenario::Timers => Ok(run_timers(&args).await?.1),
        Scenario::Peak => Ok(run_peak(&args, &run).await?.1),
        Scenario::Burst => Ok(run_burst(&args, &run).await?.1),
        Scenario::Work => Ok(run_work(&args, &run).await?.1),
        Scenario::Live => Ok(run_live(&args, &run).await?.1),
        Scenario::Memory => Ok(run_memory(&args, &run).await?.1),
        Scenario::Soak => Ok(soak_run::run_soak(&args, &run).await?.1),
        Scenario::Archive => Ok(soak_run::run_archive(&args, &run).await?.1),
        Scenario::Peer => {
            let out = run_peer(&args).await?;
            if out["available"] == json!(false) {
                anyhow::bail!("the peer was not measured: {}", out["reason"]);
            }
            Ok(out["ok"].as_bool().unwrap_or(false))
        }
        Scenario::All => run_all(&args, &run).await,
    }
}

/// Redis `used_memory` in bytes.
async fn used_memory(conn: &mut redis::aio::MultiplexedConnection) -> Result<u64> {
    let info: String = redis::cmd("INFO").arg("memory").query_async(conn).await?;
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .context("INFO memory has no used_memory")
}

/// A process's resident set size in bytes (`VmRSS` of `/proc/<pid>/status`).
fn rss_bytes(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// `memory`: Redis bytes per queued ticket and the gateway's RSS with `--tickets` queued.
async fn run_memory(args: &Args, run: &str) -> Result<(Value, bool)> {
    let bin = checked_gateway_bin(args)?;
    let mut redis = RedisServer::start()?;
    let machine_facts = machine(&redis.url()).await;
    let mut conn = connect(&redis.url()).await?;
    let work = Arc::new(ceiling::Workload::prepare(&mut conn, &format!("{run}m")).await?);
    let before = used_memory(&mut conn).await?;
    eprintln!(
        "memory: writing {} tickets with ingest.lua (pipelined) into redis on port {} ...",
        args.tickets.unwrap_or(1_000_000),
        redis.port
    );
    let written = ceiling::pipelined(
        conn.clone(),
        work,
        4,
        32,
        ceiling::Limits {
            duration: Duration::from_secs(3600),
            max_calls: args.tickets.unwrap_or(1_000_000),
        },
    )
    .await?;
    let tickets = written.recorder.successes;
    let after = used_memory(&mut conn).await?;
    let per_ticket = (after.saturating_sub(before)) as f64 / tickets.max(1) as f64;
    let mut timers = 0u64;
    for (county, _, _) in texts::COUNTIES {
        let n: u64 = redis::cmd("ZCARD")
            .arg(format!("hl:{{{county}}}:timers"))
            .query_async(&mut conn)
            .await?;
        timers += n;
    }
    eprintln!("memory: {tickets} written; starting the gateway over them ...");
    let mut gateway = Gateway::start(
        &bin,
        &workspace_root(),
        &redis.url(),
        GatewayTuning::default(),
    )
    .await?;
    let pid = gateway.pid().context("gateway pid")?;
    let rss_idle = rss_bytes(pid);
    // What a dashboard and Prometheus ask for over that many tickets, then intake.
    let client = reqwest::Client::new();
    for _ in 0..5 {
        let _ = client
            .get(format!("{}/metrics", gateway.base))
            .send()
            .await?
            .text()
            .await?;
    }
    let intake = steady::run(
        &gateway.base,
        &format!("{run}mi"),
        steady::Settings {
            mode: steady::Mode::Closed { concurrency: 32 },
            mix: steady::Mix::Hotline,
            duration: Duration::from_secs(args.duration),
            timeout: Duration::from_millis(args.timeout_ms),
            max_requests: args.max_requests,
        },
    )
    .await?;
    let rss_busy = rss_bytes(pid);
    gateway.stop();
    redis.stop();
    let mib = |b: Option<u64>| b.map(|b| round(b as f64 / 1_048_576.0, 1));
    let summary = json!({
        "scenario": "memory",
        "tickets_queued": tickets,
        "write_errors": written.recorder.errors,
        "redis_used_memory_before": before,
        "redis_used_memory_after": after,
        "redis_bytes_per_queued_ticket": round(per_ticket, 1),
        "pending_sla_timers": timers,
        "gateway_rss_mib_after_start": mib(rss_idle),
        "gateway_rss_mib_after_metrics_and_intake": mib(rss_busy),
        "intake_during_measurement": intake.recorder.summary(intake.wall),
        "targets": {
            "redis_bytes_per_queued_ticket_below": 2048,
            "gateway_rss_mib_below": 100,
        },
        "machine": machine_facts,
    });
    eprintln!(
        "  {:<34} {:>12}\n  {:<34} {:>12}\n  {:<34} {:>12}",
        "Redis bytes per queued ticket",
        round(per_ticket, 1),
        "gateway RSS after start (MiB)",
        summary["gateway_rss_mib_after_start"],
        "gateway RSS after load (MiB)",
        summary["gateway_rss_mib_after_metrics_and_intake"]
    );
    let ok = written.recorder.errors.is_empty();
    Ok((emit(summary), ok))
}

/// `live`: live-transfer decisions at `--rate` (default 500/s) for `--duration`.
async fn run_live(args: &Args, run: &str) -> Result<(Value, bool)> {
    let bin = checked_gateway_bin(args)?;
    let counties: Vec<&str> = texts::COUNTIES.iter().map(|(c, _, _)| *c).collect();
    let lawyers = live::lawyers(&counties);
    let mut redis = RedisServer::start()?;
    let machine_facts = machine(&redis.url()).await;
    let tuning = GatewayTuning {
        extra_toml: live::config_toml(&lawyers),
        ..GatewayTuning::default()
    };
    let mut gateway = Gateway::start(&bin, &workspace_root(), &redis.url(), tuning).await?;
    let rate = args.rate.unwrap_or(500.0);
    eprintln!(
        "live: {rate}/s live requests for {} s, {} lawyers, gateway {} ...",
        args.duration,
        lawyers.len(),
        gateway.base
    );
    let result = live::run(
        &gateway.base,
        run,
        harness::PARTNER_TOKEN,
        &lawyers,
        rate,
        Duration::from_secs(args.duration),
        Duration::from_millis(args.timeout_ms),
    )
    .await;
    gateway.stop();
    redis.stop();
    let (mut summary, ok) = result?;
    summary["machine"] = machine_facts;
    print_table("live transfer decisions", &summary, None);
    eprintln!("  {:<22} {:>12}", "answers", summary["answers"].to_string());
    Ok((emit(summary), ok))
}

/// `a / b` to 3 decimals, or null when either is missing or `b` is 0.
fn ratio(a: Option<f64>, b: Option<f64>) -> Value {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => json!(round(a / b, 3)),
        _ => Value::Null,
    }
}

/// ceiling, steady, work, peer; then the ratios.
async fn run_all(args: &Args, run: &str) -> Result<bool> {
    let (ceiling, ok_c) = run_ceiling(args, run).await?;
    let (steady, ok_s) = run_steady(args, run).await?;
    let (work, ok_w) = run_work(args, run).await?;
    let peer = run_peer(args).await?;
    let peer_ok = peer["available"] == json!(false) || peer["ok"].as_bool() == Some(true);
    let per_s = |v: &Value| v["throughput_per_s"].as_f64();
    let gateway = per_s(&steady);
    let evalsha = per_s(&ceiling["evalsha"]);
    let pipelined = per_s(&ceiling["pipelined"]);
    let full_loop = work["full_loop_resolved_per_s"].as_f64();
    let bull_add = peer["add_alone"]["add_per_s"].as_f64();
    let bull_loop = peer["add_and_worker"]["completed_per_s"].as_f64();
    let ok = ok_c && ok_s && ok_w && peer_ok;
    let ratios = json!({
        "ingest_over_evalsha_ceiling": ratio(gateway, evalsha),
        "ingest_over_pipelined_ceiling": ratio(gateway, pipelined),
        "ingest_over_bullmq_add": ratio(gateway, bull_add),
        "full_loop_over_bullmq_add_and_worker": ratio(full_loop, bull_loop),
    });
    let show = |v: Option<f64>| v.map_or("not measured".to_string(), |x| x.to_string());
    eprintln!();
    eprintln!("== all: ours against the ceiling and BullMQ");
    eprintln!("  {:<36} {:>14}", "ceiling EVALSHA (/s)", show(evalsha));
    eprintln!("  {:<36} {:>14}", "ceiling pipelined (/s)", show(pipelined));
    eprintln!("  {:<36} {:>14}", "gateway tickets (/s)", show(gateway));
    eprintln!(
        "  {:<36} {:>14}",
        "full loop resolved (/s)",
        show(full_loop)
    );
    eprintln!("  {:<36} {:>14}", "BullMQ add (/s)", show(bull_add));
    eprintln!(
        "  {:<36} {:>14}",
        "BullMQ add+worker completed (/s)",
        show(bull_loop)
    );
    for (label, key) in [
        ("ingest / EVALSHA ceiling", "ingest_over_evalsha_ceiling"),
        (
            "ingest / pipelined ceiling",
            "ingest_over_pipelined_ceiling",
        ),
        ("ingest / BullMQ add", "ingest_over_bullmq_add"),
        (
            "full loop / BullMQ add+worker",
            "full_loop_over_bullmq_add_and_worker",
        ),
    ] {
        eprintln!("  {:<36} {:>14}", label, ratios[key].to_string());
    }
    if peer["available"] == json!(false) {
        eprintln!("  BullMQ NOT MEASURED: {}", peer["reason"]);
    }
    let lost = |v: &Value| v["verification"]["lost"].as_u64().unwrap_or(0);
    let dup = |v: &Value| v["verification"]["duplicated"].as_u64().unwrap_or(0);
    emit(json!({
        "scenario": "all",
        "duration_s": args.duration,
        "ceiling_evalsha_per_s": evalsha,
        "ceiling_pipelined_per_s": pipelined,
        "gateway_tickets_per_s": gateway,
        "fraction_of_evalsha_ceiling": ratios["ingest_over_evalsha_ceiling"],
        "fraction_of_pipelined_ceiling": ratios["ingest_over_pipelined_ceiling"],
        "work_claim_resolve_per_s": work["claim_resolve_per_s"],
        "work_full_loop_resolved_per_s": full_loop,
        "bullmq_available": peer["available"],
        "bullmq_add_per_s": bull_add,
        "bullmq_add_and_worker_completed_per_s": bull_loop,
        "ratios": ratios,
        "latency_ms": steady["latency_ms"],
        "lost": lost(&ceiling["evalsha"]) + lost(&ceiling["pipelined"]) + lost(&steady) + lost(&work),
        "duplicated": dup(&ceiling["evalsha"]) + dup(&ceiling["pipelined"]) + dup(&steady) + dup(&work),
        "machine": steady["machine"],
        "ok": ok,
    }));
    Ok(ok)
}

/// Exit 0 when all is well, 1 when a ticket was lost or duplicated (with `--target`: a request
/// stayed unanswered or an answer broke idempotency), 2 on any other error.
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
                "FAILED: acknowledged tickets (or scheduled timers) were lost or duplicated, or (with --target) a request stayed unanswered or broke idempotency (see above)"
            );
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
