//! The `peer` scenario: BullMQ (Node), the most used Redis-backed queue, on the same machine and
//! in the same run, so our figures can be read against something. The Node side is
//! `load-tests/peer/bench.js`; this installs it with `npm ci` into a fresh temp directory (never
//! into the product tree), starts a `redis-server` configured like ours, runs it bounded in
//! time, and returns its JSON. Without node or npm (or without the registry) it says so and
//! measures nothing: there are no made-up numbers.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::harness::RedisServer;
use crate::texts;

/// The files copied from `load-tests/peer/` into the temp directory.
const FILES: [&str; 3] = ["package.json", "package-lock.json", "bench.js"];

/// Ticket bodies written for BullMQ's payloads: the same generator as `steady`, so sizes match.
const SAMPLES: usize = 2000;

/// `npm ci` gets this long (it downloads from the registry when its cache is cold).
const INSTALL_LIMIT: Duration = Duration::from_secs(300);

/// Settings of one peer run.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Seconds of each of the two throughput phases.
    pub duration: u64,
    /// Delayed jobs due at one instant.
    pub delayed: u64,
    /// Most jobs per phase.
    pub max_jobs: u64,
}

/// A child that is killed if dropped before it ends (errors, Ctrl-C).
struct Guard(Option<Child>);

impl Guard {
    /// Waits at most `limit` without blocking the runtime (so Ctrl-C is still seen and drops
    /// this guard, killing the child); kills it if it is still running then. `true` when it
    /// exited with success in time.
    async fn finish(&mut self, limit: Duration) -> Result<bool> {
        let deadline = Instant::now() + limit;
        loop {
            let Some(child) = self.0.as_mut() else {
                return Ok(false);
            };
            if let Some(status) = child.try_wait()? {
                self.0 = None;
                return Ok(status.success());
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                self.0 = None;
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `<program> --version`, or why not.
fn version(program: &str) -> Result<String, String> {
    match Command::new(program).arg("--version").output() {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).trim().to_string()),
        Ok(o) => Err(format!("`{program} --version` failed: {}", o.status)),
        Err(e) => Err(format!("`{program}` not found: {e}")),
    }
}

/// What is reported when the peer cannot run, so the rest of `all` still does.
pub fn unavailable(reason: &str) -> Value {
    json!({"scenario": "peer", "peer": "bullmq", "available": false, "reason": reason})
}

/// Ticket bodies with a BullMQ priority (1 = most urgent): the gateway's band + 1, drawn with
/// the shares of the warning levels (orange, red, yellow, none) seen in the hotline mix.
fn samples() -> Value {
    let mut rng = StdRng::from_os_rng();
    let out: Vec<Value> = (0..SAMPLES)
        .map(|i| {
            let source = texts::pick_source(&mut rng);
            let ticket = texts::ticket_request(&mut rng, source, &format!("PEER-{i:06}"));
            let roll = rng.random_range(0..100);
            let priority = match roll {
                0..5 => 1,
                5..15 => 2,
                15..40 => 3,
                _ => 4,
            };
            json!({"ticket": ticket, "priority": priority})
        })
        .collect();
    Value::Array(out)
}

/// Installs and runs the peer; `Ok(unavailable(..))` when node, npm or the install is missing.
pub async fn run(peer_dir: &Path, settings: Settings) -> Result<Value> {
    let node = match version("node") {
        Ok(v) => v,
        Err(why) => return Ok(unavailable(&why)),
    };
    let npm = match version("npm") {
        Ok(v) => v,
        Err(why) => return Ok(unavailable(&why)),
    };
    let dir = tempfile::Builder::new()
        .prefix("hl-load-peer-")
        .tempdir()
        .context("create a temp dir for the peer")?;
    for f in FILES {
        std::fs::copy(peer_dir.join(f), dir.path().join(f))
            .with_context(|| format!("copy {}", peer_dir.join(f).display()))?;
    }
    let install_log = dir.path().join("npm.log");
    // `npm ci` first; npm 11 rejects this lock as "not in sync" because of msgpackr-extract's
    // optional per-platform packages, and then `npm install`, which follows the same lock (the
    // same versions) and fixes that up in the temp copy. --ignore-scripts: the optional native
    // msgpack build is not needed (BullMQ falls back to pure JS), and nothing from the registry
    // runs at install time.
    let mut installed_with = None;
    for how in ["ci", "install"] {
        eprintln!(
            "peer: npm {how} (bullmq pinned by load-tests/peer/package-lock.json) into {} ...",
            dir.path().display()
        );
        let mut install = Guard(Some(
            Command::new("npm")
                .args([how, "--no-audit", "--no-fund", "--ignore-scripts"])
                .current_dir(dir.path())
                .stdout(Stdio::null())
                .stderr(File::create(&install_log)?)
                .spawn()
                .with_context(|| format!("start npm {how}"))?,
        ));
        if install.finish(INSTALL_LIMIT).await? {
            installed_with = Some(how);
            break;
        }
    }
    let Some(installed_with) = installed_with else {
        let log = std::fs::read_to_string(&install_log).unwrap_or_default();
        let tail: String = log
            .lines()
            .filter(|l| !l.contains("Unknown user config"))
            .take(6)
            .collect::<Vec<_>>()
            .join(" / ");
        return Ok(unavailable(&format!(
            "npm ci and npm install failed (or took over {} s): {tail}",
            INSTALL_LIMIT.as_secs()
        )));
    };
    let samples_path = dir.path().join("samples.json");
    std::fs::write(&samples_path, serde_json::to_vec(&samples())?)?;
    let redis = RedisServer::start()?;
    let machine = crate::machine(&redis.url()).await;
    let out_path = dir.path().join("out.json");
    let lead_ms = 10_000u64;
    let drain_s = 60u64;
    eprintln!(
        "peer: BullMQ on redis-server port {} ({node}, npm {npm}), {} s per phase ...",
        redis.port, settings.duration
    );
    let mut bench = Guard(Some(
        Command::new("node")
            .arg("bench.js")
            .args(["--port", &redis.port.to_string()])
            .args(["--duration", &settings.duration.to_string()])
            .arg("--samples")
            .arg(&samples_path)
            .args(["--in-flight", "50", "--worker-concurrency", "50"])
            .args(["--delayed", &settings.delayed.to_string()])
            .args(["--lead-ms", &lead_ms.to_string()])
            .args(["--drain-timeout-s", &drain_s.to_string()])
            .args(["--max-jobs", &settings.max_jobs.to_string()])
            .current_dir(dir.path())
            .stdout(File::create(&out_path)?)
            .stderr(Stdio::inherit())
            .spawn()
            .context("start node bench.js")?,
    ));
    // The script stops itself long before this; it is the last resort.
    let limit = Duration::from_secs(2 * settings.duration + lead_ms / 1000 + drain_s + 180);
    let finished = bench.finish(limit).await?;
    drop(redis);
    let text = std::fs::read_to_string(&out_path).unwrap_or_default();
    let Some(line) = text.lines().rev().find(|l| l.starts_with('{')) else {
        bail!("the peer printed no JSON (exited cleanly: {finished})");
    };
    let mut out: Value = serde_json::from_str(line).context("parse the peer's JSON")?;
    out["scenario"] = json!("peer");
    out["available"] = json!(true);
    out["installed_with"] = json!(format!("npm {installed_with}"));
    out["redis"] = json!(
        "fresh redis-server, --appendonly yes --appendfsync everysec --maxmemory-policy noeviction"
    );
    out["machine"] = machine;
    Ok(out)
}
