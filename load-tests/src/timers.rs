//! The `timers` scenario: how late the gateway's SLA timer mover fires due timers while a large
//! number of pending ones wait in the same ZSET, and whether it fires each exactly once.
//!
//! Everything is written straight into Redis (no HTTP): the pending timers because a million
//! tickets through the gateway would take minutes and measure ingest, not the mover; the due
//! work because its due times must be exact, known in advance and in Redis time. The gateway
//! only runs its mover (`src/sla/mover.rs` and `fire_timers.lua`), exactly as in production.
//!
//! Lateness of a fired timer is the millisecond part of its `sla.breached` stream entry id (set
//! by Redis inside the firing script) minus the `due_ms` the script copied from the timer's
//! score: both on Redis's clock, so nothing depends on this host's clock.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::aio::MultiplexedConnection;
use serde::Serialize;
use serde_json::{Value, json};

use crate::stats::round;

/// Timers per `ZADD` while preloading the pending ones (variadic, so 1,000,000 timers are
/// 1,000 commands).
const ZADD_CHUNK: usize = 1000;
/// `ZADD` commands per pipeline while preloading.
const ZADD_PER_PIPE: usize = 10;
/// Due tickets per pipeline (two commands each: the hash and its timer).
const TICKETS_PER_PIPE: usize = 1000;
/// Stream entries per `XRANGE` page when reading the fired timers back.
const XRANGE_PAGE: usize = 5000;
/// The clocks and kinds of a ticket's pending timers: what the default policies schedule at
/// registration (warnings at 50 % and 80 % and the breach of three clocks; follow_up starts
/// only at resolution).
const PENDING_PATTERN: [(&str, &str); 9] = [
    ("accept", "w0"),
    ("accept", "w1"),
    ("accept", "b"),
    ("first_contact", "w0"),
    ("first_contact", "w1"),
    ("first_contact", "b"),
    ("resolve", "w0"),
    ("resolve", "w1"),
    ("resolve", "b"),
];
/// One year in milliseconds: pending timers are due between one and two years from now, so
/// none can fire during a run.
const YEAR_MS: i64 = 365 * 86_400_000;
/// Lateness above this (1 h) is clamped into the histogram.
const MAX_LATE_MS: u64 = 3_600_000;

/// What the scenario does; all counts and times are bounded by the CLI.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The county whose timers ZSET holds everything.
    pub county: String,
    /// Pending timers preloaded, due next year.
    pub pending: u64,
    /// Timers all due at one instant.
    pub burst: u64,
    /// Steady timers per second.
    pub rate: u64,
    /// Length of the steady phase.
    pub steady: Duration,
    /// From "now" (Redis TIME, before the due work is written) to the burst instant.
    pub lead: Duration,
    /// From the burst instant to the first steady timer, so the two are measured apart.
    pub gap: Duration,
    /// How long after the last due time to wait for everything to fire.
    pub fire_timeout: Duration,
}

/// Which part of the schedule a due timer belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Burst,
    Steady,
}

/// The outcome of the exactly-once check.
#[derive(Debug, Default, Clone, Serialize)]
pub struct FiredCheck {
    /// Due timers scheduled (burst + steady).
    pub scheduled: u64,
    /// Of those, fired exactly once (one `sla.breached` entry for the id).
    pub fired_once: u64,
    /// Scheduled but never fired.
    pub lost: u64,
    /// Fired more than once.
    pub fired_twice: u64,
    /// `sla.breached` entries for ids that were not scheduled (a pending timer fired early).
    pub unexpected: u64,
    /// `sla.warning` entries (none are scheduled).
    pub warnings: u64,
    /// Entries whose `due_ms` differs from the due time scheduled for the id.
    pub due_mismatch: u64,
    /// Entries whose stream id is earlier than their `due_ms` (fired early).
    pub early: u64,
    /// Pending timers still in the ZSET at the end (should equal the preloaded count).
    pub pending_left: u64,
}

impl FiredCheck {
    /// Every scheduled timer fired exactly once and nothing else fired.
    pub fn ok(&self, pending: u64) -> bool {
        self.lost == 0
            && self.fired_twice == 0
            && self.unexpected == 0
            && self.warnings == 0
            && self.due_mismatch == 0
            && self.early == 0
            && self.pending_left == pending
    }
}

/// What the scenario measured.
pub struct Measured {
    /// Memory figures and preload time.
    pub memory: Value,
    /// Lateness of the steady phase.
    pub steady: Histogram<u64>,
    /// Lateness of the burst.
    pub burst: Histogram<u64>,
    /// Exactly-once check.
    pub check: FiredCheck,
    /// Schedule facts: instants, insertion time, wait.
    pub schedule: Value,
}

/// The due work written and waited for, before it is read back.
pub struct Scheduled {
    /// Memory figures and preload time.
    memory: Value,
    /// Schedule facts: instants, insertion time, wait.
    schedule: Value,
    /// Every due timer's ticket id, with its phase and due time.
    due: HashMap<String, (Phase, i64)>,
}

/// `hl:{<county>}:`.
fn prefix(county: &str) -> String {
    format!("hl:{{{county}}}:")
}

/// Redis's clock in ms (`TIME`), the clock the mover fires by.
async fn redis_now_ms(conn: &mut MultiplexedConnection) -> Result<i64> {
    let (secs, micros): (i64, i64) = redis::cmd("TIME").query_async(conn).await?;
    Ok(secs * 1000 + micros / 1000)
}

/// `used_memory` from `INFO memory`.
async fn used_memory(conn: &mut MultiplexedConnection) -> Result<i64> {
    let info: String = redis::cmd("INFO").arg("memory").query_async(conn).await?;
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .context("INFO memory has no used_memory")
}

/// A ticket id of the county: `<county>-<seq:08>`, as `ingest.lua` makes them.
fn ticket_id(county: &str, seq: u64) -> String {
    format!("{county}-{seq:08}")
}

/// Preloads `n` pending timers (9 per ticket, ids 1..) due between one and two years from
/// `now`, pipelined; returns the number of tickets they belong to.
async fn preload(conn: &mut MultiplexedConnection, settings: &Settings, now: i64) -> Result<u64> {
    let key = format!("{}timers", prefix(&settings.county));
    let mut rng = StdRng::seed_from_u64(0x7173_1e25);
    let tickets = settings.pending.div_ceil(PENDING_PATTERN.len() as u64);
    let mut written = 0u64;
    let mut seq = 1u64;
    let mut ticket_due = now + YEAR_MS;
    // Bounded: each round writes up to ZADD_CHUNK * ZADD_PER_PIPE timers until `pending`.
    while written < settings.pending {
        let mut pipe = redis::pipe();
        for _ in 0..ZADD_PER_PIPE {
            if written >= settings.pending {
                break;
            }
            let mut cmd = redis::cmd("ZADD");
            cmd.arg(&key);
            let chunk = (settings.pending - written).min(ZADD_CHUNK as u64);
            for _ in 0..chunk {
                let slot = (written % PENDING_PATTERN.len() as u64) as usize;
                if slot == 0 {
                    ticket_due = now + YEAR_MS + rng.random_range(0..YEAR_MS);
                }
                let (clock, kind) = PENDING_PATTERN[slot];
                // Warnings before the breach, as the policies schedule them.
                let due = ticket_due
                    + match kind {
                        "w0" => 0,
                        "w1" => 3_600_000,
                        _ => 7_200_000,
                    };
                cmd.arg(due).arg(format!(
                    "{}|{clock}|{kind}|1",
                    ticket_id(&settings.county, seq)
                ));
                written += 1;
                if slot + 1 == PENDING_PATTERN.len() {
                    seq += 1;
                }
            }
            pipe.add_command(cmd).ignore();
        }
        let () = pipe
            .query_async(conn)
            .await
            .context("preload pending timers")?;
    }
    Ok(tickets)
}

/// The minimal clocks JSON of a due ticket: one wall-clock `accept` clock with no warnings
/// and no breach actions, so the breach is the only thing the mover does for it.
fn due_clocks(started_ms: i64) -> String {
    format!(
        r#"{{"clocks":{{"accept":{{"terms":{{"policy":"bench","target":{{"unit":"wall","seconds":60}},"warn_at":[],"on_breach":[]}},"started_ms":{started_ms}}}}},"pauses":[]}}"#
    )
}

/// Writes the due work: a ticket hash and one breach timer per due ticket, pipelined.
async fn write_due(
    conn: &mut MultiplexedConnection,
    county: &str,
    due: &[(String, i64)],
) -> Result<()> {
    let p = prefix(county);
    let timers = format!("{p}timers");
    for chunk in due.chunks(TICKETS_PER_PIPE) {
        let mut pipe = redis::pipe();
        for (id, at) in chunk {
            pipe.cmd("HSET")
                .arg(format!("{p}t:{id}"))
                .arg("id")
                .arg(id)
                .arg("clock_ver")
                .arg("1")
                .arg("status")
                .arg("accepted")
                .arg("queue")
                .arg("")
                .arg("clocks")
                .arg(due_clocks(at - 60_000))
                .ignore();
            pipe.cmd("ZADD")
                .arg(&timers)
                .arg(*at)
                .arg(format!("{id}|accept|b|1"))
                .ignore();
        }
        let () = pipe.query_async(conn).await.context("write due work")?;
    }
    Ok(())
}

/// A lateness histogram in milliseconds.
fn histogram() -> Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, MAX_LATE_MS, 3)?)
}

/// Lateness figures as JSON (milliseconds).
pub fn lateness_json(h: &Histogram<u64>) -> Value {
    let q = |p: f64| h.value_at_quantile(p);
    json!({
        "count": h.len(),
        "mean": round(h.mean(), 2),
        "p50": q(0.50),
        "p90": q(0.90),
        "p99": q(0.99),
        "p99_9": q(0.999),
        "max": h.max(),
    })
}

/// Preloads the pending timers, writes the due work and waits (bounded) until the gateway's
/// mover has taken every due timer out of the ZSET. The gateway must already be running.
pub async fn schedule_and_wait(
    conn: &mut MultiplexedConnection,
    settings: &Settings,
) -> Result<Scheduled> {
    let county = settings.county.as_str();
    let p = prefix(county);
    let timers_key = format!("{p}timers");

    // 1. Pending timers, and what they cost in memory.
    let now = redis_now_ms(conn).await?;
    let before = used_memory(conn).await?;
    let t0 = Instant::now();
    let pending_tickets = preload(conn, settings, now).await?;
    let preload_s = t0.elapsed().as_secs_f64();
    let _: i64 = redis::cmd("SADD")
        .arg("hl:counties")
        .arg(county)
        .query_async(conn)
        .await?;
    let zcard: u64 = redis::cmd("ZCARD")
        .arg(&timers_key)
        .query_async(conn)
        .await?;
    if zcard != settings.pending {
        bail!(
            "preloaded {} pending timers but the ZSET holds {zcard}",
            settings.pending
        );
    }
    let after = used_memory(conn).await?;
    // No figure at all rather than a meaningless one when nothing was preloaded.
    let per_timer =
        (settings.pending > 0).then(|| (after - before) as f64 / settings.pending as f64);
    eprintln!(
        "timers: {} pending timers preloaded in {preload_s:.1} s, {} bytes each",
        settings.pending,
        per_timer.map_or("-".to_string(), |b| format!("{b:.1}"))
    );

    // 2. Due work: a burst at one instant, then a steady phase, on Redis's clock.
    let now = redis_now_ms(conn).await?;
    let burst_at = now + settings.lead.as_millis() as i64;
    let steady_start = burst_at + settings.gap.as_millis() as i64;
    let steady_n = settings.rate * settings.steady.as_secs();
    let mut seq = pending_tickets;
    let mut due: Vec<(String, i64)> = Vec::with_capacity((settings.burst + steady_n) as usize);
    let mut phase: HashMap<String, (Phase, i64)> = HashMap::with_capacity(due.capacity());
    for _ in 0..settings.burst {
        seq += 1;
        due.push((ticket_id(county, seq), burst_at));
    }
    for i in 0..steady_n {
        seq += 1;
        let at = steady_start + (i * 1000 / settings.rate.max(1)) as i64;
        due.push((ticket_id(county, seq), at));
    }
    for (i, (id, at)) in due.iter().enumerate() {
        let ph = if (i as u64) < settings.burst {
            Phase::Burst
        } else {
            Phase::Steady
        };
        phase.insert(id.clone(), (ph, *at));
    }
    let last_due = due.iter().map(|(_, at)| *at).max().unwrap_or(now);
    let t1 = Instant::now();
    write_due(conn, county, &due).await?;
    let write_s = t1.elapsed().as_secs_f64();
    let written_at = redis_now_ms(conn).await?;
    if settings.burst + steady_n > 0 && written_at >= burst_at.min(steady_start) {
        bail!(
            "writing the due work took {write_s:.2} s and ended {} ms after the first due time; \
             raise --lead-ms",
            written_at - burst_at.min(steady_start)
        );
    }
    let memory_due = used_memory(conn).await?;
    eprintln!(
        "timers: {} burst timers due at +{} ms, {steady_n} steady over {} s from +{} ms \
         (written in {write_s:.2} s); waiting ...",
        settings.burst,
        burst_at - now,
        settings.steady.as_secs(),
        steady_start - now
    );

    // 3. Bounded wait until no scheduled timer is left in the ZSET.
    let deadline_ms = last_due + settings.fire_timeout.as_millis() as i64;
    let wall_limit = Duration::from_millis((deadline_ms - now).max(0) as u64 + 5_000);
    let started = Instant::now();
    let mut remaining: u64 = u64::MAX;
    let mut drained_at = None;
    while started.elapsed() < wall_limit {
        let now = redis_now_ms(conn).await?;
        remaining = redis::cmd("ZCOUNT")
            .arg(&timers_key)
            .arg("-inf")
            .arg(last_due)
            .query_async(conn)
            .await?;
        if remaining == 0 && now >= last_due {
            drained_at = Some(now);
            break;
        }
        if now > deadline_ms {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if drained_at.is_none() {
        eprintln!(
            "timers: {remaining} scheduled timers still unfired {} s after the last due time",
            settings.fire_timeout.as_secs()
        );
    }

    Ok(Scheduled {
        memory: json!({
            "used_memory_before": before,
            "used_memory_after_pending": after,
            "bytes_per_pending_timer": per_timer.map(|b| round(b, 1)),
            "used_memory_after_due_work": memory_due,
            "preload_seconds": round(preload_s, 2),
            "pending_tickets": pending_tickets,
        }),
        schedule: json!({
            "burst_due_ms": burst_at,
            "steady_first_due_ms": steady_start,
            "last_due_ms": last_due,
            "burst_timers": settings.burst,
            "steady_timers": steady_n,
            "write_due_seconds": round(write_s, 2),
            "write_done_before_first_due_ms": burst_at.min(steady_start) - written_at,
            "all_fired_by_ms": drained_at,
            "unfired_at_deadline": if drained_at.is_some() { 0 } else { remaining },
        }),
        due: phase,
    })
}

/// Reads every entry of the county's event stream back (paged, bounded by its length) and
/// checks each scheduled timer fired exactly once, with its lateness.
pub async fn read_back(
    conn: &mut MultiplexedConnection,
    settings: &Settings,
    scheduled: Scheduled,
) -> Result<Measured> {
    let p = prefix(&settings.county);
    let events_key = format!("{p}events");
    let mut steady = histogram()?;
    let mut burst = histogram()?;
    let mut check = FiredCheck {
        scheduled: scheduled.due.len() as u64,
        ..FiredCheck::default()
    };
    let mut fired: HashMap<&str, u32> = HashMap::with_capacity(scheduled.due.len());
    let xlen: u64 = redis::cmd("XLEN")
        .arg(&events_key)
        .query_async(conn)
        .await?;
    let mut start = "-".to_string();
    let mut seen = 0u64;
    // Bounded by the stream's length: every page but the last is full.
    for _ in 0..=(xlen as usize / XRANGE_PAGE + 1) {
        let page: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
            .arg(&events_key)
            .arg(&start)
            .arg("+")
            .arg("COUNT")
            .arg(XRANGE_PAGE)
            .query_async(conn)
            .await
            .context("XRANGE the event stream")?;
        let Some((last, _)) = page.last() else {
            break;
        };
        start = format!("({last}");
        let full = page.len() == XRANGE_PAGE;
        for (entry_id, fields) in &page {
            seen += 1;
            let field = |name: &str| {
                fields
                    .chunks(2)
                    .find(|kv| kv[0] == name)
                    .and_then(|kv| kv.get(1))
                    .map(String::as_str)
            };
            match field("type") {
                Some("sla.breached") => {}
                Some("sla.warning") => {
                    check.warnings += 1;
                    continue;
                }
                _ => continue,
            }
            let id = field("id").unwrap_or_default();
            let Some((key, (ph, at))) = scheduled.due.get_key_value(id) else {
                check.unexpected += 1;
                continue;
            };
            *fired.entry(key.as_str()).or_default() += 1;
            let due_ms: i64 = field("due_ms")
                .and_then(|v| v.parse::<f64>().ok())
                .map(|v| v as i64)
                .unwrap_or(i64::MIN);
            if due_ms != *at {
                check.due_mismatch += 1;
            }
            let fired_ms: i64 = entry_id
                .split_once('-')
                .and_then(|(ms, _)| ms.parse().ok())
                .unwrap_or(0);
            let late = fired_ms - at;
            if late < 0 {
                check.early += 1;
            }
            let late = (late.max(0) as u64).min(MAX_LATE_MS);
            match ph {
                Phase::Burst => burst.record(late)?,
                Phase::Steady => steady.record(late)?,
            }
        }
        if !full {
            break;
        }
    }
    if seen < xlen {
        bail!("read {seen} of the {xlen} entries of {events_key}");
    }
    for id in scheduled.due.keys() {
        match fired.get(id.as_str()).copied().unwrap_or(0) {
            0 => check.lost += 1,
            1 => check.fired_once += 1,
            _ => check.fired_twice += 1,
        }
    }
    check.pending_left = redis::cmd("ZCARD")
        .arg(format!("{p}timers"))
        .query_async(conn)
        .await?;
    let mut schedule = scheduled.schedule;
    schedule["stream_entries"] = json!(xlen);
    Ok(Measured {
        memory: scheduled.memory,
        steady,
        burst,
        check,
        schedule,
    })
}
