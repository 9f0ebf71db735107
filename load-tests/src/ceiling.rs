//! The `ceiling` scenario: the gateway's own intake scripts, `reserve.lua` (the key bound to its
//! county, in the key's own slot) and then `ingest.lua` (in the county's slot), called with
//! EVALSHA straight at Redis with arguments of the same shape and size as the gateway's, the
//! second only once the first has answered, as the gateway must. No HTTP, no JSON parsing, no
//! classifier: what is left is the physical limit of one ticket registration here.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::aio::MultiplexedConnection;
use sha2::{Digest, Sha256};

use crate::stats::Recorder;
use crate::texts;
use crate::verify::Ack;

/// The gateway's ingest script with the helpers it shares (`lib.lua`), compiled in from its
/// source so the two cannot drift.
pub const INGEST_LUA: &str = concat!(
    include_str!("../../src/queues/lua/lib.lua"),
    include_str!("../../src/queues/lua/ingest.lua")
);

/// The gateway's reservation script (step one of intake), compiled in from its source.
pub const RESERVE_LUA: &str = concat!(
    include_str!("../../src/queues/lua/lib.lua"),
    include_str!("../../src/queues/lua/reserve.lua")
);

/// How many distinct ticket bodies to pre-build; calls cycle through them.
const POOL: usize = 512;

/// Idempotency TTL the gateway passes by default (90 days), in seconds.
const IDEMPOTENCY_TTL_SECS: u64 = 90 * 86_400;
/// Event-stream MAXLEN the gateway passes by default.
const STREAM_MAXLEN: u64 = 100_000;
/// Repeat-caller linking window the gateway passes by default (`intake.duplicate_window_days`
/// 7), in seconds.
const DUPLICATE_WINDOW_SECS: u64 = 7 * 86_400;

/// The caller key `ingest.lua` links repeat requests by, made as the gateway makes it (first
/// 16 bytes of SHA-256 of `hotline-caller:<digits>`, hex). The ceiling draws a fresh phone
/// number per call, as `steady` does per request: with a template's fixed number every call
/// would be linked to up to 50 earlier tickets, which real traffic does not do.
fn caller_key(rng: &mut StdRng) -> String {
    let phone = format!("13{:09}", rng.random_range(0..1_000_000_000u64));
    let digest = Sha256::digest(format!("hotline-caller:{phone}").as_bytes());
    hex::encode(&digest[..16])
}

/// One pre-built ticket: its JSON split around the external id, and its decision.
struct Template {
    /// `12345`, `110` or `12348`.
    source: &'static str,
    /// County code.
    county: &'static str,
    /// Ticket JSON before and after the external id.
    head: String,
    /// See `head`.
    tail: String,
    /// Classification JSON.
    classification: String,
    /// Service label.
    service: &'static str,
    /// Category label.
    category: &'static str,
    /// Warning level label.
    level: &'static str,
    /// `county/town/village/grid`, as `agents::region_path` makes it.
    region_path: String,
}

/// The script arguments of one call, built like `Store::ingest` builds them.
pub struct Call {
    /// Source, for verification.
    source: &'static str,
    /// External id, for verification.
    external_id: String,
    /// Queue the script must put it in (checked against the reply).
    queue: String,
    /// The EVALSHA of `reserve.lua`, sent first.
    reserve: redis::Cmd,
    /// The EVALSHA of `ingest.lua`, sent once the reservation answered `ok`.
    cmd: redis::Cmd,
}

/// Pre-built bodies and the script's SHA; shared by all tasks.
pub struct Workload {
    /// Ticket templates.
    pool: Vec<Template>,
    /// SHA-1 of the ingest script, as SCRIPT LOAD returns it.
    sha: String,
    /// SHA-1 of the reservation script.
    reserve_sha: String,
    /// Distinguishes this run's external ids.
    run: String,
}

/// Milliseconds since the epoch on this host (the gateway uses Redis time corrected by an offset;
/// for the shape and size of the arguments the local clock is as good).
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One clock's terms as `config/default.toml`'s policies give them: policy name, target JSON,
/// the target in seconds (working time approximated as wall time: only the size of the
/// arguments and the number of timers matter here), and the breach ladder.
type ClockTerms = (&'static str, String, i64, &'static str);

/// The SLA clocks JSON and timers JSON (ARGV[13] and ARGV[14] of `ingest.lua`) that the
/// gateway's default policies give this ticket: the same serde shapes as `TicketClocks` and
/// `Vec<TimerWrite>`, so the script does the same work (typically 9 ZADDs, one per warning at
/// 50 % and 80 % and one per breach of accept, first_contact and resolve; follow_up starts
/// only at resolution and schedules nothing yet).
fn sla_args(t: &Template, now: i64) -> (String, String) {
    let wall = |s: i64| (format!(r#"{{"unit":"wall","seconds":{s}}}"#), s);
    let working_days = |d: i64| {
        (
            format!(r#"{{"unit":"working_days","days":{d},"calendar":"workday"}}"#),
            d * 86_400,
        )
    };
    let general = r#"["raise_band","notify"]"#;
    let urgent = matches!(t.level, "orange" | "red");
    let terms = |name: &'static str, (target, secs): (String, i64), ladder: &'static str| {
        (name, target, secs, ladder)
    };
    let accept: ClockTerms = if urgent {
        terms(
            "highest warning levels",
            wall(300),
            r#"["raise_band","notify","overdue"]"#,
        )
    } else {
        terms(
            "general matters",
            (
                r#"{"unit":"working_time","seconds":14400,"calendar":"workday"}"#.to_string(),
                14_400,
            ),
            general,
        )
    };
    let first_contact: ClockTerms = if urgent {
        terms(
            "highest warning levels",
            wall(7200),
            r#"["raise_band","notify","overdue"]"#,
        )
    } else {
        terms("general matters", working_days(1), general)
    };
    let resolve: ClockTerms = match (t.source, t.service, t.category) {
        ("12348", "legal_consultation", _) => terms(
            "12348 legal consultation",
            wall(86_400),
            r#"["notify","overdue"]"#,
        ),
        (_, "mediation", _) => terms(
            "people's mediation",
            wall(30 * 86_400),
            r#"["notify","overdue"]"#,
        ),
        (_, _, "demolition" | "housing_land" | "business") => terms(
            "complex matters",
            working_days(15),
            r#"["notify","overdue"]"#,
        ),
        _ => terms("general matters", working_days(7), general),
    };
    let follow_up: ClockTerms = terms("general matters", working_days(3), general);
    let mut clocks = String::with_capacity(1024);
    let mut timers = String::with_capacity(256);
    clocks.push_str(r#"{"clocks":{"#);
    timers.push('[');
    let running = [
        ("accept", &accept),
        ("first_contact", &first_contact),
        ("resolve", &resolve),
    ];
    for (i, (clock, (policy, target, secs, ladder))) in running.iter().enumerate() {
        if i > 0 {
            clocks.push(',');
            timers.push(',');
        }
        clocks.push_str(&format!(
            r#""{clock}":{{"terms":{{"policy":"{policy}","target":{target},"warn_at":[0.5,0.8],"on_breach":{ladder}}},"started_ms":{now},"stopped_ms":null}}"#
        ));
        let ms = secs * 1000;
        timers.push_str(&format!(
            r#"["{clock}","w0",{}],["{clock}","w1",{}],["{clock}","b",{}]"#,
            now + ms / 2,
            now + ms * 4 / 5,
            now + ms
        ));
    }
    let (policy, target, _, ladder) = &follow_up;
    clocks.push_str(&format!(
        r#","follow_up":{{"terms":{{"policy":"{policy}","target":{target},"warn_at":[0.5,0.8],"on_breach":{ladder}}},"started_ms":null,"stopped_ms":null}}}},"pauses":[]}}"#
    ));
    timers.push(']');
    (clocks, timers)
}

/// The queue and band the gateway's default routing would pick.
fn route(service: &str, category: &str, level: &str, county: &str) -> (String, u32) {
    let queue = match (service, category) {
        ("mediation", "labour") => format!("mediation.{county}.labour"),
        ("mediation", "marriage_family") => format!("mediation.{county}.family"),
        ("mediation", "traffic") => format!("mediation.{county}.traffic"),
        ("mediation", _) => format!("mediation.{county}"),
        ("legal_consultation", _) => format!("legal.{county}"),
        _ => format!("triage.{county}"),
    };
    let band = match level {
        "orange" => 0,
        "red" => 1,
        "yellow" => 2,
        _ => 3,
    };
    (queue, band)
}

impl Workload {
    /// Builds the pool and loads the script (SCRIPT LOAD), as the gateway does at start-up.
    pub async fn prepare(conn: &mut MultiplexedConnection, run: &str) -> Result<Workload> {
        let mut rng = StdRng::from_os_rng();
        let mut pool = Vec::with_capacity(POOL);
        for _ in 0..POOL {
            let source = texts::pick_source(&mut rng);
            let body = texts::ticket_request(&mut rng, source, "\u{1}EXT\u{1}");
            let county = body["region"]["code"]
                .as_str()
                .and_then(|c| texts::COUNTIES.iter().find(|(k, _, _)| *k == c))
                .map(|(k, _, _)| *k)
                .unwrap_or(texts::COUNTIES[0].0);
            let region_path = ["code", "town", "village", "grid"]
                .iter()
                .map_while(|k| body["region"][*k].as_str())
                .collect::<Vec<_>>()
                .join("/");
            let json = body.to_string();
            let Some((head, tail)) = json.split_once("\\u0001EXT\\u0001") else {
                bail!("ticket template lost its placeholder: {json}");
            };
            let (classification, service, category, level) = texts::classification_json(&mut rng);
            pool.push(Template {
                source,
                county,
                head: head.to_string(),
                tail: tail.to_string(),
                classification,
                service,
                category,
                level,
                region_path,
            });
        }
        let sha: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(INGEST_LUA)
            .query_async(conn)
            .await
            .context("SCRIPT LOAD ingest.lua")?;
        let reserve_sha: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(RESERVE_LUA)
            .query_async(conn)
            .await
            .context("SCRIPT LOAD reserve.lua")?;
        Ok(Workload {
            pool,
            sha,
            reserve_sha,
            run: run.to_string(),
        })
    }

    /// The two EVALSHAs of one new ticket, as `Store::ingest` sends them: `reserve.lua` (1 key,
    /// 3 arguments), then `ingest.lua` with 4 keys and 26 arguments (the pre-upgrade key, a fifth
    /// key and 27th argument the script does without, is left out), keys named in the load
    /// partner's key space: SLA
    /// clocks and timers, the region path, the caller key and the linking window, and the
    /// enqueue time and origin of a ticket moved from another county (none here) included (an
    /// older script that reads fewer ignores the rest). This list is a copy: when `ingest.lua`
    /// gains an argument it must follow, and until it does the ceiling fails loudly (no call
    /// succeeds) rather than measuring an error path.
    pub fn call(&self, rng: &mut StdRng, task: usize, n: u64) -> Call {
        let t = &self.pool[rng.random_range(0..self.pool.len())];
        let external_id = format!("C{}-{task}-{n}", self.run);
        let ticket = format!("{}{external_id}{}", t.head, t.tail);
        let hash = hex::encode(Sha256::digest(ticket.as_bytes()));
        let prefix = format!("hl:{{{}}}:", t.county);
        let (queue, band) = route(t.service, t.category, t.level, t.county);
        let (clocks, timers) = sla_args(t, now_ms());
        let mut reserve = redis::cmd("EVALSHA");
        reserve
            .arg(&self.reserve_sha)
            .arg(1)
            .arg(format!(
                "hl:{{idem:p.partner-load:{}:{external_id}}}",
                t.source
            ))
            .arg(t.county)
            .arg(&hash)
            .arg(IDEMPOTENCY_TTL_SECS);
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(&self.sha)
            .arg(4)
            .arg(format!(
                "{prefix}idem:p.partner-load:{}:{external_id}",
                t.source
            ))
            .arg(format!("{prefix}seq"))
            .arg(format!("{prefix}queues"))
            .arg(format!("{prefix}events"))
            .arg(hash)
            .arg(&prefix)
            .arg(t.county)
            .arg(&queue)
            .arg(band)
            .arg("queued")
            .arg(ticket)
            .arg(&t.classification)
            .arg(t.service)
            .arg(t.level)
            .arg(t.category)
            .arg(t.source)
            .arg(clocks)
            .arg(timers)
            .arg(IDEMPOTENCY_TTL_SECS)
            .arg(STREAM_MAXLEN)
            .arg("partner-load")
            .arg("load test routing")
            .arg(&t.region_path)
            .arg(caller_key(rng))
            .arg(DUPLICATE_WINDOW_SECS)
            .arg(0)
            .arg("")
            .arg("")
            .arg("partner-load")
            .arg("");
        Call {
            source: t.source,
            external_id,
            queue,
            reserve,
            cmd,
        }
    }
}

/// Turns a script reply into an acknowledgement, or the error kind.
fn ack_of(call: Call, reply: &[String]) -> Result<Ack, String> {
    match (
        reply.first().map(String::as_str),
        reply.get(1),
        reply.get(3),
    ) {
        (Some("created"), Some(_), Some(queue)) if *queue != call.queue => {
            Err("script_wrong_queue".into())
        }
        (Some("created"), Some(id), Some(queue)) => Ok(Ack {
            source: call.source,
            external_id: call.external_id,
            id: id.clone(),
            queue: Some(queue.clone()).filter(|q| !q.is_empty()),
        }),
        (Some(other), _, _) => Err(format!("script_{other}")),
        _ => Err("script_bad_reply".into()),
    }
}

/// Error kind of a Redis error, for the error table.
fn redis_error_kind(e: &redis::RedisError) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connection_refusal() || e.is_connection_dropped() || e.is_io_error() {
        "connect".into()
    } else {
        format!("redis_{}", e.code().unwrap_or("error"))
    }
}

/// What one variant measured.
pub struct Measured {
    /// Latencies, successes, errors.
    pub recorder: Recorder,
    /// Every created ticket.
    pub acks: Vec<Ack>,
    /// From the first call to the last reply.
    pub wall: Duration,
}

/// Limits shared by both variants.
#[derive(Clone, Copy)]
pub struct Limits {
    /// Stop starting new calls after this long.
    pub duration: Duration,
    /// Stop starting new calls after this many, whatever the time.
    pub max_calls: u64,
}

/// C tasks, each one EVALSHA at a time, over one multiplexed connection.
pub async fn concurrent(
    conn: MultiplexedConnection,
    work: Arc<Workload>,
    tasks: usize,
    limits: Limits,
) -> Result<Measured> {
    let started = Instant::now();
    let deadline = started + limits.duration;
    let issued = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::with_capacity(tasks);
    for task in 0..tasks {
        let mut conn = conn.clone();
        let work = Arc::clone(&work);
        let issued = Arc::clone(&issued);
        handles.push(tokio::spawn(async move {
            let mut rng = StdRng::from_os_rng();
            let mut rec = Recorder::new()?;
            let mut acks = Vec::new();
            while Instant::now() < deadline {
                let n = issued.fetch_add(1, Ordering::Relaxed);
                if n >= limits.max_calls {
                    break;
                }
                let call = work.call(&mut rng, task, n);
                let t0 = Instant::now();
                let reserved: redis::RedisResult<Vec<String>> =
                    call.reserve.query_async(&mut conn).await;
                let reply: redis::RedisResult<Vec<String>> = match reserved {
                    Ok(r) if r.first().map(String::as_str) == Some("ok") => {
                        call.cmd.query_async(&mut conn).await
                    }
                    Ok(_) => {
                        rec.latency(t0.elapsed());
                        rec.error("reserve_elsewhere");
                        continue;
                    }
                    Err(e) => Err(e),
                };
                rec.latency(t0.elapsed());
                match reply {
                    Ok(reply) => match ack_of(call, &reply) {
                        Ok(ack) => {
                            rec.successes += 1;
                            acks.push(ack);
                        }
                        Err(kind) => rec.error(kind),
                    },
                    Err(e) => rec.error(redis_error_kind(&e)),
                }
            }
            Ok::<_, anyhow::Error>((rec, acks))
        }));
    }
    collect(handles, started).await
}

/// `tasks` tasks, each sending pipelines of `depth` EVALSHAs: fewer round trips per ticket.
/// Latency recorded is that of a whole pipeline.
pub async fn pipelined(
    conn: MultiplexedConnection,
    work: Arc<Workload>,
    tasks: usize,
    depth: usize,
    limits: Limits,
) -> Result<Measured> {
    let started = Instant::now();
    let deadline = started + limits.duration;
    let issued = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::with_capacity(tasks);
    for task in 0..tasks {
        let mut conn = conn.clone();
        let work = Arc::clone(&work);
        let issued = Arc::clone(&issued);
        handles.push(tokio::spawn(async move {
            let mut rng = StdRng::from_os_rng();
            let mut rec = Recorder::new()?;
            let mut acks = Vec::new();
            while Instant::now() < deadline {
                let first = issued.fetch_add(depth as u64, Ordering::Relaxed);
                if first >= limits.max_calls {
                    break;
                }
                let mut reservations = redis::pipe();
                let mut pipe = redis::pipe();
                let mut calls = Vec::with_capacity(depth);
                for i in 0..depth as u64 {
                    let mut call = work.call(&mut rng, task, first + i);
                    reservations
                        .add_command(std::mem::replace(&mut call.reserve, redis::Cmd::new()));
                    pipe.add_command(std::mem::replace(&mut call.cmd, redis::Cmd::new()));
                    calls.push(call);
                }
                // The ingests go only once every reservation answered (new keys: all `ok`),
                // as the gateway sends step two only after step one.
                let t0 = Instant::now();
                let reserved: redis::RedisResult<Vec<Vec<String>>> =
                    reservations.query_async(&mut conn).await;
                let replies: redis::RedisResult<Vec<redis::Value>> = match reserved {
                    Ok(r)
                        if r.iter()
                            .all(|r| r.first().map(String::as_str) == Some("ok")) =>
                    {
                        pipe.query_async(&mut conn).await
                    }
                    Ok(_) => {
                        rec.latency(t0.elapsed());
                        for _ in 0..depth {
                            rec.error("reserve_elsewhere");
                        }
                        continue;
                    }
                    Err(e) => Err(e),
                };
                rec.latency(t0.elapsed());
                match replies {
                    Ok(replies) => {
                        for (call, reply) in calls.into_iter().zip(replies) {
                            let reply: Vec<String> =
                                redis::from_redis_value(reply).unwrap_or_default();
                            match ack_of(call, &reply) {
                                Ok(ack) => {
                                    rec.successes += 1;
                                    acks.push(ack);
                                }
                                Err(kind) => rec.error(kind),
                            }
                        }
                    }
                    Err(e) => {
                        for _ in 0..depth {
                            rec.error(redis_error_kind(&e));
                        }
                    }
                }
            }
            Ok::<_, anyhow::Error>((rec, acks))
        }));
    }
    collect(handles, started).await
}

/// A ceiling task: its measurements and the tickets it created.
type Task = tokio::task::JoinHandle<Result<(Recorder, Vec<Ack>)>>;

/// Waits for every task and merges what they measured.
async fn collect(handles: Vec<Task>, started: Instant) -> Result<Measured> {
    let mut recorder = Recorder::new()?;
    let mut acks = Vec::new();
    for h in handles {
        let (rec, a) = h.await.context("a ceiling task panicked")??;
        recorder.merge(&rec)?;
        acks.extend(a);
    }
    Ok(Measured {
        recorder,
        acks,
        wall: started.elapsed(),
    })
}
