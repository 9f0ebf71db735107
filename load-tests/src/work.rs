//! The `work` scenario: lawyers, mediators and triage operators claiming, accepting and
//! resolving tickets through the gateway's HTTP API, first alone on a backlog (claim + resolve
//! throughput), then while intake keeps running (the full loop). Afterwards every acknowledged
//! ticket must be resolved exactly once or still waiting in its queue.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::stats::Recorder;
use crate::texts::COUNTIES;
use crate::verify::Ack;

/// Agent kinds and the queues (`<kind>.<county>…`) they take work from.
const KINDS: [&str; 3] = ["lawyer", "mediator", "triage"];

/// After a claim finds nothing, how long the agent waits before the next one (an agent's
/// console polling; also keeps idle agents from spinning on the gateway).
const IDLE_PAUSE: Duration = Duration::from_millis(20);

/// One agent of the run and the bearer token it acts with.
#[derive(Debug, Clone)]
pub struct AgentDef {
    /// `load-<kind>-<county>-<n>`.
    pub id: String,
    /// Plain token; only its SHA-256 goes into the gateway's config.
    pub token: String,
}

/// `per_kind` county-tier agents of each kind in each of the six counties. County tier with
/// no grid, village or town agents defined means widening skips the empty steps, so every
/// agent may take any waiting ticket of its kind and county at once.
pub fn agents(per_kind: usize) -> Vec<AgentDef> {
    let mut out = Vec::new();
    for (county, _, _) in COUNTIES {
        for kind in KINDS {
            for n in 0..per_kind {
                let id = format!("load-{kind}-{county}-{n}");
                out.push(AgentDef {
                    token: format!("tok-{id}"),
                    id,
                });
            }
        }
    }
    out
}

/// The TOML appended to the gateway's config: a token per agent and the agents themselves
/// (`[[agents.bootstrap]]`, created at start-up before `/readyz` answers).
/// With `claim_scan`, also `[agents] claim_scan` (waiting tickets one claim looks at per queue).
pub fn config_toml(agents: &[AgentDef], capacity: u32, claim_scan: Option<u64>) -> String {
    let mut s = String::new();
    if let Some(n) = claim_scan {
        s.push_str(&format!("\n[agents]\nclaim_scan = {n}\n"));
    }
    for a in agents {
        let digest = hex::encode(Sha256::digest(a.token.as_bytes()));
        s.push_str(&format!(
            "\n[[auth.tokens]]\nname = \"{id}\"\nrole = \"agent\"\nsha256 = \"{digest}\"\nagent_id = \"{id}\"\n",
            id = a.id
        ));
    }
    for a in agents {
        // load-<kind>-<county>-<n>
        let mut parts = a.id.split('-');
        let kind = parts.nth(1).unwrap_or("lawyer");
        let county = parts.next().unwrap_or("320831");
        s.push_str(&format!(
            "\n[[agents.bootstrap]]\nid = \"{id}\"\nname = \"{id}\"\nkind = \"{kind}\"\nskills = []\nregions = [\"{county}\"]\ntier = \"county\"\ncapacity = {capacity}\nstatus = \"available\"\n",
            id = a.id
        ));
    }
    s
}

/// Settings of one agents phase.
#[derive(Debug, Clone, Copy)]
pub struct AgentSettings {
    /// Longest the phase runs.
    pub duration: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Most claims, all agents together.
    pub max_claims: u64,
    /// Stop an agent after this many empty claims in a row (a drained backlog); `None` keeps
    /// it polling until the deadline (while intake runs).
    pub stop_after_empty: Option<u32>,
}

/// What the agents of one phase did.
pub struct AgentsMeasured {
    /// Claims that returned a ticket: latency of the claim call.
    pub claim: Recorder,
    /// Accept calls.
    pub accept: Recorder,
    /// Resolve calls.
    pub resolve: Recorder,
    /// Claim start to resolve answer, per ticket resolved.
    pub cycle: Recorder,
    /// Claims answered 204 (nothing eligible waiting).
    pub empty_claims: u64,
    /// Ids resolved (200 to resolve), with repeats if any.
    pub resolved: Vec<String>,
    /// From the first claim to the last agent stopping.
    pub wall: Duration,
}

impl AgentsMeasured {
    /// Resolved tickets per second over the phase.
    pub fn resolved_per_s(&self) -> f64 {
        self.resolved.len() as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// JSON: rate, per-call latencies and errors.
    pub fn summary(&self) -> Value {
        let wall = self.wall;
        let mut errors: std::collections::BTreeMap<String, u64> = Default::default();
        for r in [&self.claim, &self.accept, &self.resolve] {
            for (k, v) in &r.errors {
                *errors.entry(k.clone()).or_default() += v;
            }
        }
        json!({
            "resolved": self.resolved.len(),
            "wall_seconds": crate::stats::round(wall.as_secs_f64(), 3),
            "claim_resolve_per_s": crate::stats::round(self.resolved_per_s(), 1),
            "http_calls_per_s": crate::stats::round(
                (self.claim.latency_us.len() + self.accept.latency_us.len() + self.resolve.latency_us.len()) as f64
                    / wall.as_secs_f64().max(1e-9),
                1
            ),
            "empty_claims": self.empty_claims,
            "latency_ms": {
                "claim": self.claim.summary(wall)["latency_ms"],
                "accept": self.accept.summary(wall)["latency_ms"],
                "resolve": self.resolve.summary(wall)["latency_ms"],
                "claim_to_resolved": self.cycle.summary(wall)["latency_ms"],
            },
            "errors": errors,
        })
    }
}

/// What one agent reports back.
struct AgentOut {
    /// Claim latencies (ticket returned), accept, resolve, whole cycle.
    claim: Recorder,
    /// Accept calls.
    accept: Recorder,
    /// Resolve calls.
    resolve: Recorder,
    /// Claim to resolved.
    cycle: Recorder,
    /// 204 answers.
    empty: u64,
    /// Resolved ids.
    resolved: Vec<String>,
}

/// Outcomes an agent picks from when resolving, with the summary it writes.
const OUTCOMES: [(&str, &str); 4] = [
    (
        "answered",
        "已电话联系来电人，就其咨询的问题给予法律解答，来电人表示理解。",
    ),
    (
        "mediated",
        "经调解员组织双方协商，达成调解协议，当场履行完毕。",
    ),
    (
        "mediation_failed",
        "双方分歧较大，调解未成，已告知来电人可通过诉讼途径解决。",
    ),
    (
        "to_litigation",
        "已引导来电人向人民法院提起诉讼，并告知所需证据材料。",
    ),
];

/// The kind of a failed call.
fn kind_of(prefix: &str, e: &reqwest::Error) -> String {
    if e.is_timeout() {
        format!("{prefix}_timeout")
    } else if e.is_connect() {
        format!("{prefix}_connect")
    } else {
        format!("{prefix}_transport")
    }
}

/// One agent: claim, accept with the lease, resolve; until the deadline, the claim cap, or
/// (for a drain) a run of empty claims. A ticket claimed before the deadline is always
/// finished, so nothing is left leased at the end unless a call failed.
async fn agent_loop(
    http: reqwest::Client,
    base: String,
    agent: AgentDef,
    deadline: Instant,
    settings: AgentSettings,
    claims: Arc<AtomicU64>,
) -> Result<AgentOut> {
    let mut out = AgentOut {
        claim: Recorder::new()?,
        accept: Recorder::new()?,
        resolve: Recorder::new()?,
        cycle: Recorder::new()?,
        empty: 0,
        resolved: Vec::new(),
    };
    let mut rng = StdRng::from_os_rng();
    let mut empty_streak = 0u32;
    let claim_url = format!("{base}/v1/agents/{}/claim", agent.id);
    while Instant::now() < deadline {
        if claims.fetch_add(1, Ordering::Relaxed) >= settings.max_claims {
            break;
        }
        if settings.stop_after_empty.is_some_and(|n| empty_streak >= n) {
            break;
        }
        let start = Instant::now();
        let answer = http.post(&claim_url).bearer_auth(&agent.token).send().await;
        let response = match answer {
            Ok(r) => r,
            Err(e) => {
                out.claim.error(kind_of("claim", &e));
                tokio::time::sleep(IDLE_PAUSE).await;
                continue;
            }
        };
        match response.status().as_u16() {
            200 => {}
            204 => {
                out.empty += 1;
                empty_streak += 1;
                tokio::time::sleep(IDLE_PAUSE).await;
                continue;
            }
            s => {
                out.claim.error(format!("claim_http_{s}"));
                tokio::time::sleep(IDLE_PAUSE).await;
                continue;
            }
        }
        empty_streak = 0;
        let body: Value = match response.json().await {
            Ok(v) => v,
            Err(e) => {
                out.claim.error(kind_of("claim_body", &e));
                continue;
            }
        };
        out.claim.latency(start.elapsed());
        out.claim.successes += 1;
        let (Some(lease), Some(id)) = (body["lease_id"].as_str(), body["ticket"]["id"].as_str())
        else {
            out.claim.error("claim_without_lease_or_id");
            continue;
        };
        let id = id.to_string();
        let t = Instant::now();
        let accepted = http
            .post(format!("{base}/v1/tickets/{id}/accept"))
            .bearer_auth(&agent.token)
            .json(&json!({"lease_id": lease}))
            .send()
            .await;
        out.accept.latency(t.elapsed());
        match accepted {
            Ok(r) if r.status().is_success() => out.accept.successes += 1,
            Ok(r) => {
                out.accept
                    .error(format!("accept_http_{}", r.status().as_u16()));
                continue;
            }
            Err(e) => {
                out.accept.error(kind_of("accept", &e));
                continue;
            }
        }
        let (outcome, summary) = OUTCOMES[rng.random_range(0..OUTCOMES.len())];
        let t = Instant::now();
        let resolved = http
            .post(format!("{base}/v1/tickets/{id}/resolve"))
            .bearer_auth(&agent.token)
            .json(&json!({"outcome": outcome, "summary": summary}))
            .send()
            .await;
        out.resolve.latency(t.elapsed());
        match resolved {
            Ok(r) if r.status().is_success() => {
                out.resolve.successes += 1;
                out.cycle.latency(start.elapsed());
                out.resolved.push(id);
            }
            Ok(r) => out
                .resolve
                .error(format!("resolve_http_{}", r.status().as_u16())),
            Err(e) => out.resolve.error(kind_of("resolve", &e)),
        }
    }
    Ok(out)
}

/// Runs every agent concurrently against the gateway at `base`.
pub async fn run_agents(
    base: &str,
    agents: &[AgentDef],
    settings: AgentSettings,
) -> Result<AgentsMeasured> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(settings.timeout)
        .connect_timeout(Duration::from_secs(2))
        .pool_max_idle_per_host(agents.len().max(1))
        .build()
        .context("build the agents' HTTP client")?;
    let claims = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + settings.duration;
    let handles: Vec<_> = agents
        .iter()
        .map(|a| {
            tokio::spawn(agent_loop(
                http.clone(),
                base.to_string(),
                a.clone(),
                deadline,
                settings,
                Arc::clone(&claims),
            ))
        })
        .collect();
    let mut m = AgentsMeasured {
        claim: Recorder::new()?,
        accept: Recorder::new()?,
        resolve: Recorder::new()?,
        cycle: Recorder::new()?,
        empty_claims: 0,
        resolved: Vec::new(),
        wall: Duration::ZERO,
    };
    for h in handles {
        let o = h.await.context("an agent task panicked")??;
        m.claim.merge(&o.claim)?;
        m.accept.merge(&o.accept)?;
        m.resolve.merge(&o.resolve)?;
        m.cycle.merge(&o.cycle)?;
        m.empty_claims += o.empty;
        m.resolved.extend(o.resolved);
    }
    m.wall = started.elapsed();
    Ok(m)
}

/// Where every acknowledged ticket ended.
#[derive(Debug, Default, Clone, Serialize)]
pub struct WorkCheck {
    /// Distinct ticket ids acknowledged as new.
    pub acknowledged: u64,
    /// Status `resolved`, with exactly one `ticket.resolve` in its history, in no queue.
    pub resolved_once: u64,
    /// Of those, resolved without the agent seeing the 200 (a timeout): not an error.
    pub resolved_unconfirmed: u64,
    /// Resolved more than once (two 200s, or two resolve events in the history).
    pub resolved_twice: u64,
    /// Status `queued` and in the queue ZSET it was acknowledged with.
    pub still_queued: u64,
    /// Acknowledged without a queue (sent back to the hotline) and in none.
    pub sent_back: u64,
    /// Leased, accepted or in progress at the end (a failed accept or resolve): not lost, but
    /// not finished either.
    pub held_at_end: u64,
    /// Missing, in the wrong place, or resolved by us but not resolved in Redis.
    pub lost: u64,
    /// Ticket hashes beyond one per distinct (source, external_id) (from `verify::verify`).
    pub duplicated: u64,
    /// Ticket hashes in Redis.
    pub stored_tickets: u64,
}

impl WorkCheck {
    /// Nothing lost, nothing duplicated, nothing resolved twice.
    pub fn ok(&self) -> bool {
        self.lost == 0 && self.duplicated == 0 && self.resolved_twice == 0
    }
}

/// Reads every acknowledged ticket's status, queue membership and resolve history back.
pub async fn check(
    conn: &mut redis::aio::MultiplexedConnection,
    acks: &[Ack],
    resolved: &[String],
) -> Result<WorkCheck> {
    let mut ours: HashMap<&str, u64> = HashMap::new();
    for id in resolved {
        *ours.entry(id.as_str()).or_default() += 1;
    }
    let mut by_id: HashMap<&str, &Ack> = HashMap::new();
    for a in acks {
        by_id.insert(a.id.as_str(), a);
    }
    let mut c = WorkCheck {
        acknowledged: by_id.len() as u64,
        ..WorkCheck::default()
    };
    let ids: Vec<&Ack> = by_id.into_values().collect();
    for chunk in ids.chunks(500) {
        let mut pipe = redis::pipe();
        for a in chunk {
            let county = a.id.split('-').next().unwrap_or_default();
            let prefix = format!("hl:{{{county}}}:");
            pipe.cmd("HGET")
                .arg(format!("{prefix}t:{}", a.id))
                .arg("status");
            pipe.cmd("LRANGE")
                .arg(format!("{prefix}h:{}", a.id))
                .arg(0)
                .arg(-1);
            // The queue it was acknowledged in (any key when sent back: never a member).
            let queue = a.queue.clone().unwrap_or_else(|| "-".into());
            pipe.cmd("ZSCORE")
                .arg(format!("{prefix}q:{queue}"))
                .arg(&a.id);
        }
        let replies: Vec<redis::Value> = pipe.query_async(conn).await?;
        for (a, r) in chunk.iter().zip(replies.chunks(3)) {
            let status: Option<String> = redis::from_redis_value(r[0].clone()).unwrap_or(None);
            let history: Vec<String> = redis::from_redis_value(r[1].clone()).unwrap_or_default();
            let queued: Option<f64> = redis::from_redis_value(r[2].clone()).unwrap_or(None);
            let resolves = history
                .iter()
                .filter(|e| e.contains("\"type\":\"ticket.resolve\""))
                .count() as u64;
            let n_ours = ours.get(a.id.as_str()).copied().unwrap_or(0);
            match status.as_deref() {
                None => c.lost += 1,
                Some("resolved") => {
                    if resolves > 1 || n_ours > 1 {
                        c.resolved_twice += 1;
                    } else if resolves == 1 && queued.is_none() {
                        c.resolved_once += 1;
                        c.resolved_unconfirmed += u64::from(n_ours == 0);
                    } else {
                        c.lost += 1;
                    }
                }
                Some(_) if n_ours > 0 => c.lost += 1,
                Some("queued") if a.queue.is_some() && queued.is_some() => c.still_queued += 1,
                Some("leased" | "accepted" | "in_progress") => c.held_at_end += 1,
                Some(_) if a.queue.is_none() && queued.is_none() => c.sent_back += 1,
                Some(_) => c.lost += 1,
            }
        }
    }
    Ok(c)
}
