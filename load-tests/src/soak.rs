//! The case archive under load (issue 18): the `soak` scenario (tickets through their whole
//! life while the gateway archives them as they end) and the `archive` scenario (a backlog of
//! ended tickets archived by one gateway, timed). The parts both use live here: the agents'
//! whole-life loop, the supervisor that closes tickets without a lease, Redis memory (sampled,
//! and broken down by what stays after archiving), convergence, and the check in PostgreSQL
//! that every acknowledged ticket is there exactly once with its full history and nowhere in
//! Redis.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::aio::MultiplexedConnection;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::stats::Recorder;
use crate::texts::COUNTIES;
use crate::verify::Ack;
use crate::work::AgentDef;

/// The supervisor token of the `archive` scenario's fill (accept, resolve and follow up any
/// ticket without a lease); only its digest goes into the gateway's config.
pub const SUPERVISOR_TOKEN: &str = "load-test-supervisor-token";

/// The `[[auth.tokens]]` entry of [`SUPERVISOR_TOKEN`].
pub fn supervisor_toml() -> String {
    let digest = hex::encode(Sha256::digest(SUPERVISOR_TOKEN.as_bytes()));
    format!(
        "\n[[auth.tokens]]\nname = \"supervisor-load\"\nrole = \"supervisor\"\nsha256 = \"{digest}\"\nrate_per_second = 0\n"
    )
}

/// Keys of the gateway's `[archive]` table: archive tickets `after_seconds` after they end,
/// looking every `interval_ms`.
pub fn archive_toml(after_seconds: u64, interval_ms: u64) -> String {
    format!("after_seconds = {after_seconds}\ninterval_ms = {interval_ms}\n")
}

/// The event types a ticket's history holds once it has been through its whole life here, in
/// this order (other events, an SLA warning say, may come between them).
pub const LIFE: [&str; 5] = [
    "ticket.created",
    "ticket.claimed",
    "ticket.accept",
    "ticket.resolve",
    "ticket.follow_up",
];

/// The same life when a supervisor closes the ticket without a claim (the `archive` fill).
pub const CLOSED_BY_SUPERVISOR: [&str; 4] = [
    "ticket.created",
    "ticket.accept",
    "ticket.resolve",
    "ticket.follow_up",
];

/// A ticket closed by the scenario: what Redis held when it was closed.
#[derive(Debug, Clone)]
pub struct Closed {
    /// The ticket id.
    pub id: String,
    /// `history_total` of the follow-up's answer: the events Redis held when it closed.
    pub history_total: u64,
}

/// What the agents did in the soak.
pub struct LifeMeasured {
    /// Claim, accept, resolve, follow-up: latency of each call.
    pub calls: BTreeMap<&'static str, Recorder>,
    /// Claims answered 204.
    pub empty_claims: u64,
    /// Tickets taken through their whole life.
    pub closed: Vec<Closed>,
    /// From the first claim to the last agent stopping.
    pub wall: Duration,
}

impl LifeMeasured {
    /// JSON: closed/s, per-call latencies, errors.
    pub fn summary(&self) -> Value {
        let mut latency = serde_json::Map::new();
        let mut errors: BTreeMap<String, u64> = BTreeMap::new();
        for (name, r) in &self.calls {
            latency.insert(
                (*name).to_string(),
                r.summary(self.wall)["latency_ms"].clone(),
            );
            for (k, v) in &r.errors {
                *errors.entry(k.clone()).or_default() += v;
            }
        }
        json!({
            "closed": self.closed.len(),
            "wall_seconds": crate::stats::round(self.wall.as_secs_f64(), 1),
            "closed_per_s": crate::stats::round(self.closed.len() as f64 / self.wall.as_secs_f64().max(1e-9), 1),
            "empty_claims": self.empty_claims,
            "latency_ms": latency,
            "errors": errors,
        })
    }
}

/// After a claim finds nothing, how long the agent waits before the next one.
const IDLE_PAUSE: Duration = Duration::from_millis(20);
/// Empty claims in a row, once intake has finished, after which an agent stops.
const STOP_AFTER_EMPTY: u32 = 50;

/// One POST; `Ok(body)` on 2xx, else the error kind counted in `rec`.
async fn post(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    body: &Value,
    rec: &mut Recorder,
    what: &str,
) -> Option<Value> {
    let t = Instant::now();
    let answer = http.post(url).bearer_auth(token).json(body).send().await;
    let response = match answer {
        Ok(r) => r,
        Err(e) => {
            let kind = if e.is_timeout() {
                "timeout"
            } else if e.is_connect() {
                "connect"
            } else {
                "transport"
            };
            rec.error(format!("{what}_{kind}"));
            return None;
        }
    };
    let status = response.status().as_u16();
    if status == 204 {
        return Some(Value::Null);
    }
    if !(200..300).contains(&status) {
        rec.error(format!("{what}_http_{status}"));
        return None;
    }
    match response.json::<Value>().await {
        Ok(v) => {
            rec.latency(t.elapsed());
            rec.successes += 1;
            Some(v)
        }
        Err(_) => {
            rec.error(format!("{what}_body"));
            None
        }
    }
}

/// Outcomes an agent resolves with, and the summary it writes.
const OUTCOMES: [(&str, &str); 3] = [
    (
        "mediated",
        "经调解员组织双方协商，达成调解协议，当场履行完毕。",
    ),
    (
        "answered",
        "已电话联系来电人，就其咨询的问题给予法律解答，来电人表示理解。",
    ),
    (
        "mediation_failed",
        "双方分歧较大，调解未成，已告知来电人可通过诉讼途径解决。",
    ),
];

/// Resolve, then follow up, as `token`; the follow-up's `history_total` when both succeeded.
async fn resolve_and_follow_up(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    id: &str,
    rng: &mut StdRng,
    calls: &mut BTreeMap<&'static str, Recorder>,
) -> Option<u64> {
    let (outcome, summary) = OUTCOMES[rng.random_range(0..OUTCOMES.len())];
    let rec = calls.get_mut("resolve")?;
    post(
        http,
        &format!("{base}/v1/tickets/{id}/resolve"),
        token,
        &json!({"outcome": outcome, "summary": summary}),
        rec,
        "resolve",
    )
    .await?;
    let rec = calls.get_mut("follow_up")?;
    let satisfaction = rng.random_range(1..=5);
    let v = post(
        http,
        &format!("{base}/v1/tickets/{id}/follow_up"),
        token,
        &json!({"satisfaction": satisfaction, "comment": "回访：来电人对处理结果表示知悉。"}),
        rec,
        "follow_up",
    )
    .await?;
    (v["status"] == "closed").then(|| v["history_total"].as_u64().unwrap_or(0))
}

fn call_recorders(names: &[&'static str]) -> Result<BTreeMap<&'static str, Recorder>> {
    names.iter().map(|n| Ok((*n, Recorder::new()?))).collect()
}

/// One agent: claim, accept with the lease, resolve, follow up (the agent holding the ticket
/// makes the follow-up call), until intake has finished and nothing is left to claim.
async fn agent_life(
    http: reqwest::Client,
    base: String,
    agent: AgentDef,
    intake_done: Arc<AtomicBool>,
    hard_deadline: Instant,
) -> Result<LifeMeasured> {
    let mut calls = call_recorders(&["claim", "accept", "resolve", "follow_up"])?;
    let mut closed = Vec::new();
    let mut empty = 0u64;
    let mut streak = 0u32;
    let mut rng = StdRng::from_os_rng();
    let claim_url = format!("{base}/v1/agents/{}/claim", agent.id);
    let started = Instant::now();
    while Instant::now() < hard_deadline {
        if intake_done.load(Ordering::Relaxed) && streak >= STOP_AFTER_EMPTY {
            break;
        }
        let Some(rec) = calls.get_mut("claim") else {
            break;
        };
        let Some(body) = post(&http, &claim_url, &agent.token, &Value::Null, rec, "claim").await
        else {
            tokio::time::sleep(IDLE_PAUSE).await;
            continue;
        };
        if body.is_null() {
            empty += 1;
            streak += 1;
            tokio::time::sleep(IDLE_PAUSE).await;
            continue;
        }
        streak = 0;
        let (Some(lease), Some(id)) = (body["lease_id"].as_str(), body["ticket"]["id"].as_str())
        else {
            rec.error("claim_without_lease_or_id");
            continue;
        };
        let id = id.to_string();
        let Some(rec) = calls.get_mut("accept") else {
            break;
        };
        if post(
            &http,
            &format!("{base}/v1/tickets/{id}/accept"),
            &agent.token,
            &json!({"lease_id": lease}),
            rec,
            "accept",
        )
        .await
        .is_none()
        {
            continue;
        }
        if let Some(history_total) =
            resolve_and_follow_up(&http, &base, &agent.token, &id, &mut rng, &mut calls).await
        {
            closed.push(Closed { id, history_total });
        }
    }
    Ok(LifeMeasured {
        calls,
        empty_claims: empty,
        closed,
        wall: started.elapsed(),
    })
}

/// Every agent at once; they stop when `intake_done` is set and their queues stay empty, or at
/// `limit`.
pub async fn run_agents(
    base: &str,
    agents: &[AgentDef],
    intake_done: Arc<AtomicBool>,
    timeout: Duration,
    limit: Duration,
) -> Result<LifeMeasured> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(2))
        .pool_max_idle_per_host(agents.len().max(1))
        .build()
        .context("build the agents' HTTP client")?;
    let started = Instant::now();
    let deadline = started + limit;
    let handles: Vec<_> = agents
        .iter()
        .map(|a| {
            tokio::spawn(agent_life(
                http.clone(),
                base.to_string(),
                a.clone(),
                Arc::clone(&intake_done),
                deadline,
            ))
        })
        .collect();
    let mut total = LifeMeasured {
        calls: call_recorders(&["claim", "accept", "resolve", "follow_up"])?,
        empty_claims: 0,
        closed: Vec::new(),
        wall: Duration::ZERO,
    };
    for h in handles {
        let o = h.await.context("an agent task panicked")??;
        for (name, r) in &o.calls {
            if let Some(t) = total.calls.get_mut(name) {
                t.merge(r)?;
            }
        }
        total.empty_claims += o.empty_claims;
        total.closed.extend(o.closed);
    }
    total.wall = started.elapsed();
    Ok(total)
}

/// The `archive` fill: a supervisor accepts, resolves and follows up every acknowledged
/// ticket that was queued (no claim), `concurrency` at a time.
pub async fn close_as_supervisor(
    base: &str,
    acks: &[Ack],
    concurrency: usize,
    timeout: Duration,
) -> Result<LifeMeasured> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .pool_max_idle_per_host(concurrency)
        .build()
        .context("build the supervisor's HTTP client")?;
    let ids: Arc<Vec<String>> = Arc::new(
        acks.iter()
            .filter(|a| a.queue.is_some())
            .map(|a| a.id.clone())
            .collect(),
    );
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..concurrency {
        let (http, base, ids, next) = (
            http.clone(),
            base.to_string(),
            Arc::clone(&ids),
            Arc::clone(&next),
        );
        handles.push(tokio::spawn(async move {
            let mut calls = call_recorders(&["accept", "resolve", "follow_up"])?;
            let mut rng = StdRng::from_os_rng();
            let mut closed = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(id) = ids.get(i) else { break };
                let Some(rec) = calls.get_mut("accept") else {
                    break;
                };
                if post(
                    &http,
                    &format!("{base}/v1/tickets/{id}/accept"),
                    SUPERVISOR_TOKEN,
                    &json!({}),
                    rec,
                    "accept",
                )
                .await
                .is_none()
                {
                    continue;
                }
                if let Some(history_total) =
                    resolve_and_follow_up(&http, &base, SUPERVISOR_TOKEN, id, &mut rng, &mut calls)
                        .await
                {
                    closed.push(Closed {
                        id: id.clone(),
                        history_total,
                    });
                }
            }
            Ok::<_, anyhow::Error>((calls, closed))
        }));
    }
    let mut total = LifeMeasured {
        calls: call_recorders(&["accept", "resolve", "follow_up"])?,
        empty_claims: 0,
        closed: Vec::new(),
        wall: Duration::ZERO,
    };
    for h in handles {
        let (calls, closed) = h.await.context("a supervisor task panicked")??;
        for (name, r) in &calls {
            if let Some(t) = total.calls.get_mut(name) {
                t.merge(r)?;
            }
        }
        total.closed.extend(closed);
    }
    total.wall = started.elapsed();
    Ok(total)
}

/// Redis `INFO memory` figures, bytes.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Memory {
    /// `used_memory`: everything Redis allocated.
    pub used: u64,
    /// `used_memory_peak` since Redis started.
    pub peak: u64,
    /// `used_memory_dataset`: the keys and values.
    pub dataset: u64,
    /// `used_memory_overhead`: Redis's own structures (clients, buffers, dictionaries).
    pub overhead: u64,
}

/// `INFO memory`.
pub async fn memory(conn: &mut MultiplexedConnection) -> Result<Memory> {
    let info: String = redis::cmd("INFO").arg("memory").query_async(conn).await?;
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    Ok(Memory {
        used: field("used_memory:").context("INFO memory has no used_memory")?,
        peak: field("used_memory_peak:").unwrap_or(0),
        dataset: field("used_memory_dataset:").unwrap_or(0),
        overhead: field("used_memory_overhead:").unwrap_or(0),
    })
}

/// `used_memory` and `used_memory_peak`.
pub async fn used_memory(conn: &mut MultiplexedConnection) -> Result<(u64, u64)> {
    let m = memory(conn).await?;
    Ok((m.used, m.peak))
}

/// Samples `used_memory` every `every` until `stop`; the highest sample.
pub fn sample_peak(
    mut conn: MultiplexedConnection,
    every: Duration,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let mut peak = 0u64;
        while !stop.load(Ordering::Relaxed) {
            if let Ok((used, _)) = used_memory(&mut conn).await {
                peak = peak.max(used);
            }
            tokio::time::sleep(every).await;
        }
        peak
    })
}

/// How many tickets each of the six counties lists as ended (due or not) and in Redis at all.
pub async fn listed(conn: &mut MultiplexedConnection) -> Result<(u64, u64)> {
    let mut pipe = redis::pipe();
    for (county, _, _) in COUNTIES {
        pipe.cmd("ZCARD").arg(format!("hl:{{{county}}}:ended"));
        pipe.cmd("ZCARD").arg(format!("hl:{{{county}}}:tickets"));
    }
    let counts: Vec<u64> = pipe.query_async(conn).await?;
    let ended = counts.iter().step_by(2).sum();
    let tickets = counts.iter().skip(1).step_by(2).sum();
    Ok((ended, tickets))
}

/// Waiting for the archive to converge: every county's ended list and ticket index empty.
#[derive(Debug, Clone, Serialize)]
pub struct Convergence {
    /// Whether it converged within the limit.
    pub converged: bool,
    /// Seconds waited.
    pub seconds: f64,
    /// Ended tickets still listed at the end.
    pub ended_left: u64,
    /// Tickets still in Redis at the end (ended or not).
    pub tickets_left: u64,
    /// (seconds since the wait started, ended tickets listed), every sample that changed.
    #[serde(skip)]
    pub samples: Vec<(f64, u64)>,
}

/// Polls every `every` until nothing is listed as ended and no ticket is left, or `limit`.
pub async fn converge(
    conn: &mut MultiplexedConnection,
    every: Duration,
    limit: Duration,
) -> Result<Convergence> {
    let started = Instant::now();
    let mut samples: Vec<(f64, u64)> = Vec::new();
    loop {
        let (ended, tickets) = listed(conn).await?;
        let t = started.elapsed().as_secs_f64();
        if samples.last().map(|(_, e)| *e) != Some(ended) {
            samples.push((t, ended));
        }
        let done = ended == 0 && tickets == 0;
        if done || started.elapsed() >= limit {
            return Ok(Convergence {
                converged: done,
                seconds: crate::stats::round(t, 3),
                ended_left: ended,
                tickets_left: tickets,
                samples,
            });
        }
        tokio::time::sleep(every).await;
    }
}

/// What a ticket must look like in the archive.
#[derive(Debug, Clone)]
pub struct Expect {
    /// `closed` or `returned`.
    pub status: &'static str,
    /// Event types that must appear in this order.
    pub life: &'static [&'static str],
    /// The number of events Redis held when the ticket was closed, when known.
    pub history_total: Option<u64>,
}

/// The check in PostgreSQL and Redis after convergence.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ArchiveCheck {
    /// Tickets acknowledged (distinct ids).
    pub acknowledged: u64,
    /// Cases in the archive.
    pub cases: u64,
    /// Acknowledged tickets archived once with the expected status and their full history.
    pub archived_whole: u64,
    /// Acknowledged tickets not in the archive.
    pub lost: u64,
    /// Cases in the archive beyond the acknowledged tickets (a second ticket for one request).
    pub extra_cases: u64,
    /// Archived with another status than expected.
    pub wrong_status: u64,
    /// Archived without the events of its life in order, or with fewer or more events than
    /// Redis held when it closed.
    pub wrong_history: u64,
    /// Acknowledged tickets whose hash or history is still in Redis.
    pub left_in_redis: u64,
    /// Of the closed tickets, how many had their Redis event count to compare with.
    pub history_compared_with_redis: u64,
    /// Events per archived case: min, mean, max.
    pub events_per_case: (u64, f64, u64),
    /// The first few problems, for the report.
    pub examples: Vec<String>,
}

impl ArchiveCheck {
    /// Nothing lost, doubled, damaged or left over.
    pub fn ok(&self) -> bool {
        self.lost == 0
            && self.extra_cases == 0
            && self.wrong_status == 0
            && self.wrong_history == 0
            && self.left_in_redis == 0
            && self.archived_whole == self.acknowledged
    }
}

/// Whether `types` holds `life` in order (other events may come between).
fn in_order(types: &[String], life: &[&str]) -> bool {
    let mut want = life.iter().peekable();
    for t in types {
        if want.peek().is_some_and(|w| *w == t) {
            want.next();
        }
    }
    want.peek().is_none()
}

/// Checks every expected ticket in the archive at `pg_url` and in Redis.
pub async fn check_archive(
    pg_url: &str,
    conn: &mut MultiplexedConnection,
    expected: &HashMap<String, Expect>,
) -> Result<ArchiveCheck> {
    let (client, connection) = tokio_postgres::connect(pg_url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("connect to the archive {pg_url}"))?;
    let driver = tokio::spawn(connection);
    let mut c = ArchiveCheck {
        acknowledged: expected.len() as u64,
        ..ArchiveCheck::default()
    };
    let total: i64 = client
        .query_one("SELECT count(*) FROM cases", &[])
        .await?
        .get(0);
    c.cases = u64::try_from(total).unwrap_or(0);
    let ids: Vec<String> = expected.keys().cloned().collect();
    let (mut min, mut max, mut sum, mut n) = (u64::MAX, 0u64, 0u64, 0u64);
    let mut found = 0u64;
    let note = |c: &mut ArchiveCheck, s: String| {
        if c.examples.len() < 10 {
            c.examples.push(s);
        }
    };
    for chunk in ids.chunks(2000) {
        let rows = client
            .query(
                "SELECT id, status, ARRAY(SELECT e->>'type' FROM jsonb_array_elements(history) e) \
                 FROM cases WHERE id = ANY($1)",
                &[&chunk],
            )
            .await?;
        for row in rows {
            let id: String = row.get(0);
            let status: String = row.get(1);
            let types: Vec<Option<String>> = row.get(2);
            let types: Vec<String> = types.into_iter().map(Option::unwrap_or_default).collect();
            found += 1;
            let events = types.len() as u64;
            (min, max, sum, n) = (min.min(events), max.max(events), sum + events, n + 1);
            let Some(want) = expected.get(&id) else {
                continue;
            };
            let mut whole = true;
            if status != want.status {
                c.wrong_status += 1;
                note(
                    &mut c,
                    format!("{id}: status {status}, expected {}", want.status),
                );
                whole = false;
            }
            let same_count = want.history_total.is_none_or(|t| t == events);
            c.history_compared_with_redis += u64::from(want.history_total.is_some());
            if !in_order(&types, want.life) || !same_count {
                c.wrong_history += 1;
                note(
                    &mut c,
                    format!(
                        "{id}: history {types:?}, expected {:?} and {:?} events",
                        want.life, want.history_total
                    ),
                );
                whole = false;
            }
            c.archived_whole += u64::from(whole);
        }
        // Nothing of these tickets left in Redis.
        let mut pipe = redis::pipe();
        for id in chunk {
            let county = id.split('-').next().unwrap_or_default();
            pipe.cmd("EXISTS")
                .arg(format!("hl:{{{county}}}:t:{id}"))
                .arg(format!("hl:{{{county}}}:h:{id}"));
        }
        let left: Vec<u64> = pipe.query_async(conn).await?;
        c.left_in_redis += left.iter().filter(|n| **n > 0).count() as u64;
    }
    c.lost = c.acknowledged - found.min(c.acknowledged);
    c.extra_cases = c.cases.saturating_sub(found);
    c.events_per_case = (
        if n == 0 { 0 } else { min },
        crate::stats::round(sum as f64 / n.max(1) as f64, 2),
        max,
    );
    drop(client);
    let _ = driver.await;
    Ok(c)
}

/// What a key is kept for, by its name.
fn class_of(key: &str) -> &'static str {
    if key.starts_with("hl:{idem:") {
        "idempotency_reservations"
    } else if key.contains("}:idem:") {
        "idempotency_county_copies"
    } else if key.ends_with("}:events") {
        "event_streams"
    } else if key.contains("}:caller:") {
        "caller_links"
    } else if key.contains("}:outbox") {
        "callback_outboxes"
    } else if key.contains("}:t:") {
        "ticket_hashes"
    } else if key.contains("}:h:") {
        "ticket_histories"
    } else if key.contains("}:day:") {
        "day_counts"
    } else {
        "other"
    }
}

/// Kept by design after a ticket is archived: the sender's idempotency key (both parts) for
/// `intake.idempotency_ttl_days`, the county's event stream (up to `redis.stream_maxlen`
/// entries, for `Last-Event-ID` resumption), the caller links (repeat-caller linking window)
/// and the day's counts (8 days).
pub const RETAINED_BY_DESIGN: [&str; 5] = [
    "idempotency_reservations",
    "idempotency_county_copies",
    "event_streams",
    "caller_links",
    "day_counts",
];

/// A key's name with its ids taken out (`hl:{320831}:agent:load-…` → `hl:{c}:agent:*`), to
/// say what the unclassed keys are.
fn pattern_of(key: &str) -> String {
    let key = match key.strip_prefix("hl:{") {
        Some(rest) => match rest.split_once('}') {
            Some((_, tail)) => format!("hl:{{c}}{tail}"),
            None => key.to_string(),
        },
        None => key.to_string(),
    };
    let mut parts: Vec<&str> = key.split(':').collect();
    if parts.len() > 3 {
        parts.truncate(3);
        parts.push("*");
    } else if parts.len() > 2
        && let Some(last) = parts.last_mut()
        && last.chars().any(|c| c.is_ascii_digit())
    {
        *last = "*";
    }
    parts.join(":")
}

/// Keys and bytes by class, and the unclassed keys by pattern.
pub type Breakdown = (
    BTreeMap<&'static str, (u64, u64)>,
    BTreeMap<String, (u64, u64)>,
);

/// Every key of the Redis, by class: keys and bytes (`MEMORY USAGE`, all samples); the keys of
/// class `other` also by pattern.
pub async fn breakdown(conn: &mut MultiplexedConnection) -> Result<Breakdown> {
    let mut out: BTreeMap<&'static str, (u64, u64)> = BTreeMap::new();
    let mut other: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(5000)
            .query_async(conn)
            .await?;
        if !keys.is_empty() {
            let mut pipe = redis::pipe();
            for k in &keys {
                pipe.cmd("MEMORY").arg("USAGE").arg(k).arg("SAMPLES").arg(0);
            }
            let sizes: Vec<Option<u64>> = pipe.query_async(conn).await?;
            for (k, size) in keys.iter().zip(sizes) {
                let class = class_of(k);
                let e = out.entry(class).or_default();
                e.0 += 1;
                e.1 += size.unwrap_or(0);
                if class == "other" {
                    let e = other.entry(pattern_of(k)).or_default();
                    e.0 += 1;
                    e.1 += size.unwrap_or(0);
                }
            }
        }
        if next == 0 {
            return Ok((out, other));
        }
        cursor = next;
    }
}

/// The breakdown as JSON, with bytes per ticket for `tickets`.
pub fn breakdown_json((b, other): &Breakdown, tickets: u64) -> Value {
    let mut m = serde_json::Map::new();
    for (class, (keys, bytes)) in b {
        m.insert(
            (*class).to_string(),
            json!({
                "keys": keys,
                "bytes": bytes,
                "bytes_per_ticket": crate::stats::round(*bytes as f64 / tickets.max(1) as f64, 1),
                "retained_by_design": RETAINED_BY_DESIGN.contains(class),
            }),
        );
    }
    let other: serde_json::Map<String, Value> = other
        .iter()
        .map(|(p, (keys, bytes))| (p.clone(), json!({"keys": keys, "bytes": bytes})))
        .collect();
    m.insert("other_by_pattern".into(), Value::Object(other));
    Value::Object(m)
}

/// Bytes of the classes kept by design.
pub fn retained_bytes((b, _): &Breakdown) -> u64 {
    b.iter()
        .filter(|(c, _)| RETAINED_BY_DESIGN.contains(c))
        .map(|(_, (_, bytes))| *bytes)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::{class_of, in_order, pattern_of};

    #[test]
    fn a_life_is_found_in_order_with_other_events_between() {
        let t: Vec<String> = [
            "ticket.created",
            "sla.warning",
            "ticket.accept",
            "ticket.resolve",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert!(in_order(
            &t,
            &["ticket.created", "ticket.accept", "ticket.resolve"]
        ));
        assert!(!in_order(&t, &["ticket.accept", "ticket.created"]));
        assert!(!in_order(&t, &["ticket.created", "ticket.follow_up"]));
    }

    #[test]
    fn keys_are_classed_by_what_they_are_kept_for() {
        assert_eq!(
            class_of("hl:{idem:p.x:12345:A-1}"),
            "idempotency_reservations"
        );
        assert_eq!(
            class_of("hl:{320831}:idem:p.x:12345:A-1"),
            "idempotency_county_copies"
        );
        assert_eq!(class_of("hl:{320831}:events"), "event_streams");
        assert_eq!(class_of("hl:{320831}:t:320831-00000001"), "ticket_hashes");
        assert_eq!(class_of("hl:{320831}:seq"), "other");
        assert_eq!(
            pattern_of("hl:{320831}:agent:load-lawyer-320831-0"),
            "hl:{c}:agent:*"
        );
        assert_eq!(
            pattern_of("hl:{320831}:sla5:legal.320831:9"),
            "hl:{c}:sla5:*"
        );
        assert_eq!(pattern_of("hl:{320831}:seq"), "hl:{c}:seq");
    }
}
