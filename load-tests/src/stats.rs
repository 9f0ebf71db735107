//! What a phase measured: a latency histogram, successes, errors by kind, and the JSON and
//! table forms of it.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{Value, json};

/// Latencies above this (60 s) are clamped; far beyond any timeout used here.
const MAX_TRACKED_US: u64 = 60_000_000;

/// One worker's (or one phase's) measurements; merged at the end.
pub struct Recorder {
    /// Latency of every answered request, in microseconds.
    pub latency_us: Histogram<u64>,
    /// Requests that did what they should (201, or 200 with the same id for a retry).
    pub successes: u64,
    /// Failures by kind: `http_503`, `timeout`, `connect`, `retry_id_mismatch`, …
    pub errors: BTreeMap<String, u64>,
}

impl Recorder {
    /// An empty recorder with 3 significant digits.
    pub fn new() -> Result<Recorder> {
        Ok(Recorder {
            latency_us: Histogram::new_with_bounds(1, MAX_TRACKED_US, 3)?,
            successes: 0,
            errors: BTreeMap::new(),
        })
    }

    /// Records one latency, clamped into the histogram's range.
    pub fn latency(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros())
            .unwrap_or(MAX_TRACKED_US)
            .clamp(1, MAX_TRACKED_US);
        // In range by construction, so this cannot fail.
        let _ = self.latency_us.record(us);
    }

    /// Counts one failure of `kind`.
    pub fn error(&mut self, kind: impl Into<String>) {
        *self.errors.entry(kind.into()).or_default() += 1;
    }

    /// Adds another recorder's numbers to this one.
    pub fn merge(&mut self, other: &Recorder) -> Result<()> {
        self.latency_us.add(&other.latency_us)?;
        self.successes += other.successes;
        for (k, v) in &other.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        Ok(())
    }

    /// Throughput and latency over `wall` as JSON (milliseconds).
    pub fn summary(&self, wall: Duration) -> Value {
        let h = &self.latency_us;
        let ms = |us: u64| (us as f64) / 1000.0;
        let q = |p: f64| ms(h.value_at_quantile(p));
        let errors: u64 = self.errors.values().sum();
        json!({
            "successes": self.successes,
            "errors_total": errors,
            "wall_seconds": round(wall.as_secs_f64(), 3),
            "throughput_per_s": round(self.successes as f64 / wall.as_secs_f64().max(1e-9), 1),
            "latency_ms": {
                "count": h.len(),
                "mean": round(h.mean() / 1000.0, 3),
                "p50": q(0.50),
                "p90": q(0.90),
                "p99": q(0.99),
                "p99_9": q(0.999),
                "max": ms(h.max()),
            },
            "errors": self.errors,
        })
    }
}

/// Rounds to `digits` decimals for readable JSON.
pub fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// The outcome of checking Redis against what was acknowledged.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Verification {
    /// Distinct ticket ids acknowledged as new (201 / "created").
    pub acknowledged: u64,
    /// Of those: the ticket hash exists and the id is in exactly the queue ZSET it was
    /// acknowledged with (none when it went back to the sender).
    pub found: u64,
    /// Acknowledged but missing or mis-queued: `acknowledged - found`.
    pub lost: u64,
    /// Of the lost: no ticket hash at all.
    pub missing_hash: u64,
    /// Of the lost: hash present but not in exactly its one queue.
    pub wrong_queue: u64,
    /// Ticket hashes in Redis beyond one per distinct acknowledged (source, external_id) and
    /// per unanswered request that did land.
    pub duplicated: u64,
    /// Ticket hashes in Redis, all counties.
    pub stored_tickets: u64,
    /// Requests with no answer (timeout, connection error) whose ticket did land: not an error
    /// of the store, but counted so that `duplicated` stays exact.
    pub unanswered_stored: u64,
}

impl Verification {
    /// Nothing lost and nothing duplicated.
    pub fn ok(&self) -> bool {
        self.lost == 0 && self.duplicated == 0
    }
}

/// Prints one phase as a table on stderr.
pub fn print_table(title: &str, summary: &Value, verification: Option<&Verification>) {
    let g = |path: &[&str]| {
        let mut v = summary;
        for p in path {
            v = &v[*p];
        }
        match v {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    };
    eprintln!();
    eprintln!("== {title}");
    eprintln!("  {:<22} {:>12}", "successes", g(&["successes"]));
    eprintln!("  {:<22} {:>12}", "wall time (s)", g(&["wall_seconds"]));
    eprintln!(
        "  {:<22} {:>12}",
        "throughput (/s)",
        g(&["throughput_per_s"])
    );
    for p in ["p50", "p90", "p99", "p99_9", "max"] {
        eprintln!(
            "  {:<22} {:>12}",
            format!("latency {p} (ms)"),
            g(&["latency_ms", p])
        );
    }
    if let Some(errors) = summary["errors"].as_object() {
        if errors.is_empty() {
            eprintln!("  {:<22} {:>12}", "errors", 0);
        }
        for (k, v) in errors {
            eprintln!("  {:<22} {:>12}", format!("error {k}"), v);
        }
    }
    if let Some(v) = verification {
        eprintln!("  {:<22} {:>12}", "acknowledged", v.acknowledged);
        eprintln!("  {:<22} {:>12}", "found", v.found);
        eprintln!("  {:<22} {:>12}", "lost", v.lost);
        eprintln!("  {:<22} {:>12}", "duplicated", v.duplicated);
        eprintln!("  {:<22} {:>12}", "stored tickets", v.stored_tickets);
        if v.unanswered_stored > 0 {
            eprintln!(
                "  {:<22} {:>12}",
                "unanswered but stored", v.unanswered_stored
            );
        }
    }
}
