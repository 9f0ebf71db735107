//! Agents in Redis, claims under leases, renewals and the lease reaper.
//!
//! Keys (county tag as everywhere): `hl:{c}:agent:<id>` (hash: `spec` JSON, `active`,
//! `handled`, `missed`), `hl:{c}:agents` (ids), `hl:{c}:leases` (ZSET of ticket ids by lease
//! deadline), `hl:{c}:lease_seq` (fencing counter), and the one global index `hl:agent-home`
//! (agent id → county), needed to find an agent by id alone.

use std::collections::HashMap;

use redis::AsyncCommands;

use super::{Store, StoreError, county_prefix};
use crate::agents::{Agent, AgentSpec, Candidate, QueuePage, Tier};

const AGENT_HOME: &str = "hl:agent-home";

/// How long an agent's home county read for its reach is reused. A redefinition on this
/// gateway takes effect at once; on another gateway within this time.
const AGENT_HOME_TTL: std::time::Duration = std::time::Duration::from_secs(10);

/// The result of a claim attempt on one candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// Leased to the agent.
    Leased {
        /// The fencing token.
        lease_id: String,
        /// When it lapses, ms.
        expires_ms: i64,
    },
    /// Someone else took it first.
    Gone,
    /// The agent is at capacity.
    Full,
    /// The agent is not available.
    Unavailable,
    /// The agent holds another offer, or is on a live call or in its wrap-up.
    Busy,
}

/// How a ticket reaches an agent; decides the event and the checks of `claim.lua`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimMode {
    /// The agent pulled it.
    Claim,
    /// Pushed to the agent's console.
    Offer,
    /// Reserved for a caller waiting on the line.
    Live,
}

impl ClaimMode {
    fn as_str(self) -> &'static str {
        match self {
            ClaimMode::Claim => "claim",
            ClaimMode::Offer => "offer",
            ClaimMode::Live => "live",
        }
    }
}

/// An agent whose console is connected (offer stream or heartbeat), with what the offer round
/// and live reservations need to choose among them.
#[derive(Debug, Clone)]
pub struct OnlineAgent {
    /// The agent.
    pub agent: Agent,
    /// When it was last given a ticket (ms; 0 if never): "longest idle" first.
    pub idle_since_ms: i64,
    /// It holds an offer now.
    pub offering: bool,
    /// On a live call or in its wrap-up until then (ms; 0 if not).
    pub busy_until_ms: i64,
}

/// The result of a renewal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenewOutcome {
    /// Extended until this time, ms.
    Renewed(i64),
    /// Not this agent's current lease.
    Stale,
}

impl Store {
    /// Creates or replaces an agent's definition, keeping its live figures.
    pub async fn put_agent(&self, id: &str, spec: &AgentSpec) -> Result<Agent, StoreError> {
        let county = spec
            .county()
            .ok_or_else(|| StoreError::Reply("agent without a county".into()))?;
        let prefix = county_prefix(county);
        let json = serde_json::to_string(spec).map_err(|e| StoreError::Reply(e.to_string()))?;
        let mut conn = self.conn.clone();
        let key = format!("{prefix}agent:{id}");
        let capacity = spec.capacity;
        let status = serde_json::to_value(spec.status)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        // Setting an agent available again (after it was set away for missed offers) starts
        // its missed-offer streak afresh, or the next single miss would set it away again.
        let mut pipe = redis::pipe();
        pipe.atomic();
        if status == "available" {
            pipe.hset(&key, "missed_streak", 0);
        }
        let _: () = pipe
            .hset(&key, "spec", json)
            .hset(&key, "capacity", capacity)
            .hset(&key, "status", status)
            .hset_nx(&key, "active", 0)
            .hset_nx(&key, "handled", 0)
            .hset_nx(&key, "missed", 0)
            .sadd(format!("{prefix}agents"), id)
            .query_async(&mut conn)
            .await?;
        let _: () = conn.hset(AGENT_HOME, id, county).await?;
        self.forget_agent_home(id);
        self.agent(id)
            .await?
            .ok_or_else(|| StoreError::Reply("agent vanished after write".into()))
    }

    /// The county an agent lives in, for its reach on every request: read at most once per
    /// `AGENT_HOME_TTL` per agent (an extra round trip on every agent request otherwise).
    pub async fn agent_home(&self, id: &str) -> Result<Option<String>, StoreError> {
        if let Ok(homes) = self.agent_homes.read()
            && let Some((county, read)) = homes.get(id)
            && read.elapsed() < AGENT_HOME_TTL
        {
            return Ok(county.clone());
        }
        let county = self.agent_county(id).await?;
        if let Ok(mut homes) = self.agent_homes.write() {
            homes.insert(id.to_string(), (county.clone(), std::time::Instant::now()));
        }
        Ok(county)
    }

    fn forget_agent_home(&self, id: &str) {
        if let Ok(mut homes) = self.agent_homes.write() {
            homes.remove(id);
        }
    }

    /// The county an agent lives in, if it exists.
    pub async fn agent_county(&self, id: &str) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn.clone();
        Ok(conn.hget(AGENT_HOME, id).await?)
    }

    /// One agent.
    pub async fn agent(&self, id: &str) -> Result<Option<Agent>, StoreError> {
        let Some(county) = self.agent_county(id).await? else {
            return Ok(None);
        };
        let mut conn = self.conn.clone();
        let fields: HashMap<String, String> = conn
            .hgetall(format!("{}agent:{id}", county_prefix(&county)))
            .await?;
        Ok(parse_agent(id, &fields))
    }

    /// Every agent of a county, or of every county.
    pub async fn agents(&self, county: Option<&str>) -> Result<Vec<Agent>, StoreError> {
        let mut conn = self.conn.clone();
        let counties: Vec<String> = match county {
            Some(c) => vec![c.to_string()],
            None => {
                let homes: HashMap<String, String> = conn.hgetall(AGENT_HOME).await?;
                let mut c: Vec<String> = homes.into_values().collect();
                c.sort();
                c.dedup();
                c
            }
        };
        let mut out = Vec::new();
        for county in counties {
            let prefix = county_prefix(&county);
            let mut ids: Vec<String> = conn.smembers(format!("{prefix}agents")).await?;
            ids.sort();
            let mut pipe = redis::pipe();
            for id in &ids {
                pipe.hgetall(format!("{prefix}agent:{id}"));
            }
            let rows: Vec<HashMap<String, String>> = pipe.query_async(&mut conn).await?;
            out.extend(
                ids.iter()
                    .zip(rows)
                    .filter_map(|(id, f)| parse_agent(id, &f)),
            );
        }
        Ok(out)
    }

    /// Removes an agent; refuses (returns `false`) while it holds tickets.
    pub async fn delete_agent(&self, id: &str) -> Result<Option<bool>, StoreError> {
        let Some(agent) = self.agent(id).await? else {
            return Ok(None);
        };
        if agent.active > 0 {
            return Ok(Some(false));
        }
        let Some(county) = agent.spec.county() else {
            return Ok(None);
        };
        let prefix = county_prefix(county);
        let mut conn = self.conn.clone();
        let _: () = redis::pipe()
            .atomic()
            .del(format!("{prefix}agent:{id}"))
            .srem(format!("{prefix}agents"), id)
            .query_async(&mut conn)
            .await?;
        let _: () = conn.hdel(AGENT_HOME, id).await?;
        self.forget_agent_home(id);
        Ok(Some(true))
    }

    /// Waiting tickets `start..start + count` of every queue of `kind` in a county, in queue
    /// order, with what a claim needs to know whether reading further could find a better one
    /// ([`QueuePage`]). Two round trips whatever the number of queues.
    pub async fn candidates_page(
        &self,
        county: &str,
        kind: &str,
        start: usize,
        count: usize,
    ) -> Result<(Vec<Candidate>, Vec<QueuePage>), StoreError> {
        let prefix = county_prefix(county);
        let mut conn = self.conn.clone();
        let queues: Vec<String> = conn.smembers(format!("{prefix}queues")).await?;
        let queues: Vec<String> = queues
            .into_iter()
            .filter(|q| q.starts_with(&format!("{kind}.")))
            .collect();
        if queues.is_empty() || count == 0 {
            return Ok((Vec::new(), Vec::new()));
        }
        let mut pipe = redis::pipe();
        for q in &queues {
            pipe.zrange_withscores(
                format!("{prefix}q:{q}"),
                start as isize,
                (start + count) as isize,
            );
            pipe.zrange_withscores(format!("{prefix}qt:{q}"), 0, 0);
        }
        let rows: Vec<Vec<(String, f64)>> = pipe.query_async(&mut conn).await?;
        let mut pages = Vec::new();
        let mut waiting: Vec<(String, String, f64)> = Vec::new();
        for (q, pair) in queues.iter().zip(rows.chunks(2)) {
            let mut items = pair[0].clone();
            // One more than asked tells whether the queue goes on.
            let more = items.len() > count;
            items.truncate(count);
            let oldest_since_ms = pair[1].first().map(|(_, s)| *s as i64);
            if let Some((_, last)) = items.last() {
                pages.push(QueuePage {
                    more,
                    last: super::split_score(*last),
                    oldest_since_ms: oldest_since_ms.unwrap_or(0),
                });
            }
            waiting.extend(items.into_iter().map(|(id, s)| (q.clone(), id, s)));
        }
        if waiting.is_empty() {
            return Ok((Vec::new(), pages));
        }
        let mut pipe = redis::pipe();
        for (q, id, _) in &waiting {
            pipe.zscore(format!("{prefix}qt:{q}"), id);
            pipe.cmd("HMGET").arg(format!("{prefix}t:{id}")).arg(&[
                "category",
                "region_path",
                "min_tier",
            ]);
        }
        let replies: Vec<redis::Value> = pipe.query_async(&mut conn).await?;
        let out = waiting
            .iter()
            .zip(replies.chunks(2))
            .map(|((queue, id, score), pair)| {
                let since: Option<f64> = redis::from_redis_value(pair[0].clone()).ok().flatten();
                let fields: Vec<Option<String>> =
                    redis::from_redis_value(pair[1].clone()).unwrap_or_default();
                let field = |i: usize| fields.get(i).cloned().flatten().unwrap_or_default();
                let (band, seq) = super::split_score(*score);
                Candidate {
                    id: id.clone(),
                    queue: queue.clone(),
                    band,
                    seq,
                    since_ms: since.unwrap_or(0.0) as i64,
                    category: field(0),
                    region_path: field(1),
                    min_tier: Tier::parse(&field(2)),
                }
            })
            .collect();
        Ok((out, pages))
    }

    /// Tries to lease one candidate to an agent.
    pub async fn claim(
        &self,
        county: &str,
        c: &Candidate,
        agent_id: &str,
        lease_ms: u64,
        mode: ClaimMode,
    ) -> Result<ClaimOutcome, StoreError> {
        let prefix = county_prefix(county);
        let mut conn = self.conn.clone();
        let started = std::time::Instant::now();
        let reply: Vec<String> = self
            .claim
            .key(format!("{prefix}q:{}", c.queue))
            .key(format!("{prefix}qt:{}", c.queue))
            .key(format!("{prefix}leases"))
            .key(format!("{prefix}agent:{agent_id}"))
            .key(format!("{prefix}t:{}", c.id))
            .key(format!("{prefix}lease_seq"))
            .key(format!("{prefix}events"))
            .arg(&c.id)
            .arg(agent_id)
            .arg(lease_ms)
            .arg(self.stream_maxlen)
            .arg(&prefix)
            .arg(mode.as_str())
            .invoke_async(&mut conn)
            .await?;
        crate::metrics::redis_latency("claim", started.elapsed());
        Ok(match reply.first().map(String::as_str) {
            Some("ok") => ClaimOutcome::Leased {
                lease_id: reply.get(1).cloned().unwrap_or_default(),
                expires_ms: reply.get(2).and_then(|v| v.parse().ok()).unwrap_or(0),
            },
            Some("full") => ClaimOutcome::Full,
            Some("unavailable") => ClaimOutcome::Unavailable,
            Some("busy") => ClaimOutcome::Busy,
            _ => ClaimOutcome::Gone,
        })
    }

    /// Extends a lease the agent holds.
    pub async fn renew(
        &self,
        id: &str,
        lease_id: &str,
        agent_id: &str,
        lease_ms: u64,
    ) -> Result<RenewOutcome, StoreError> {
        let Some(county) = super::county_of(id) else {
            return Ok(RenewOutcome::Stale);
        };
        let prefix = county_prefix(county);
        let mut conn = self.conn.clone();
        let reply: Vec<String> = self
            .renew
            .key(format!("{prefix}leases"))
            .key(format!("{prefix}t:{id}"))
            .arg(id)
            .arg(lease_id)
            .arg(agent_id)
            .arg(lease_ms)
            .invoke_async(&mut conn)
            .await?;
        Ok(match reply.first().map(String::as_str) {
            Some("ok") => {
                RenewOutcome::Renewed(reply.get(1).and_then(|v| v.parse().ok()).unwrap_or(0))
            }
            _ => RenewOutcome::Stale,
        })
    }

    /// Returns expired leases of a county to their queues; gives the next lease deadline.
    pub async fn reap_leases(
        &self,
        county: &str,
        batch: usize,
        max_expiries: u32,
        supervisor_queue: &str,
        away_after_missed: u32,
    ) -> Result<(Option<i64>, usize), StoreError> {
        let prefix = county_prefix(county);
        let mut conn = self.conn.clone();
        let reply: Vec<String> = self
            .reap
            .key(format!("{prefix}leases"))
            .key(format!("{prefix}events"))
            .arg(&prefix)
            .arg(batch)
            .arg(max_expiries)
            .arg(supervisor_queue.replace("{county}", county))
            .arg(self.stream_maxlen)
            .arg(away_after_missed)
            .invoke_async(&mut conn)
            .await?;
        let next = reply
            .first()
            .and_then(|v| v.parse::<f64>().ok())
            .map(|v| v as i64);
        let reaped = reply.get(1).and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok((next, reaped))
    }
}

impl Store {
    /// Records a corrected label (service or category changed by an agent or supervisor) on
    /// the global `hl:corrections` stream, for `hotline-gateway corrections export`.
    pub async fn record_correction(
        &self,
        id: &str,
        c: &crate::lifecycle::Correction,
        actor: &str,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let at = chrono::Utc::now().timestamp_millis().to_string();
        let _: String = redis::cmd("XADD")
            .arg(super::CORRECTIONS_STREAM)
            .arg("MAXLEN")
            .arg("~")
            .arg(1_000_000)
            .arg("*")
            .arg(&[
                ("ticket_id", id),
                ("title", &c.title),
                ("text", &c.text),
                ("source", &c.source),
                ("service", &c.service),
                ("category", &c.category),
                ("actor", actor),
                ("at_ms", &at),
            ])
            .query_async(&mut conn)
            .await?;
        Ok(())
    }
}

impl Store {
    /// Marks an agent's console as connected for offers until `until_ms`.
    pub async fn set_online(
        &self,
        county: &str,
        agent: &str,
        until_ms: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: () = conn
            .zadd(format!("{}online", county_prefix(county)), agent, until_ms)
            .await?;
        Ok(())
    }

    /// Marks an agent's console as gone.
    pub async fn set_offline(&self, county: &str, agent: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: () = conn
            .zrem(format!("{}online", county_prefix(county)), agent)
            .await?;
        Ok(())
    }

    /// Agents whose consoles are connected now, with their figures.
    pub async fn online_agents(&self, county: &str) -> Result<Vec<OnlineAgent>, StoreError> {
        let prefix = county_prefix(county);
        let mut conn = self.conn.clone();
        let ids: Vec<String> = conn
            .zrangebyscore(format!("{prefix}online"), self.now_ms(), "+inf")
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // One round trip for all of them: this runs on every live request.
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.hgetall(format!("{prefix}agent:{id}"));
        }
        let hashes: Vec<HashMap<String, String>> = pipe.query_async(&mut conn).await?;
        let mut out = Vec::new();
        for (id, f) in ids.into_iter().zip(hashes) {
            if let Some(agent) = parse_agent(&id, &f) {
                let idle_since = f
                    .get("last_assigned_ms")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let offering = f.get("offer_ticket").is_some_and(|v| !v.is_empty());
                let busy_until_ms = f
                    .get("busy_until_ms")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                out.push(OnlineAgent {
                    agent,
                    idle_since_ms: idle_since,
                    offering,
                    busy_until_ms,
                });
            }
        }
        Ok(out)
    }

    /// A connection of its own, for blocking stream reads that must not stall shared traffic.
    /// Its reply timeout is well above the blocking time of the reads (2 s); the client's default
    /// of 500 ms would abandon every blocked read.
    pub async fn dedicated_connection(
        &self,
    ) -> Result<redis::aio::MultiplexedConnection, StoreError> {
        let config = redis::AsyncConnectionConfig::new()
            .set_response_timeout(Some(std::time::Duration::from_secs(10)));
        Ok(self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?)
    }

    /// The newest entry id of each county's event stream (`0-0` for a county without one), in
    /// the order given: where a new event stream starts.
    pub async fn last_event_ids(&self, counties: &[String]) -> Result<Vec<String>, StoreError> {
        if counties.is_empty() {
            return Ok(Vec::new());
        }
        // One round trip for all of them (a stream may read hundreds of counties).
        let mut pipe = redis::pipe();
        for county in counties {
            pipe.xrevrange_count(format!("{}events", county_prefix(county)), "+", "-", 1);
        }
        let mut conn = self.conn.clone();
        let replies: Vec<redis::streams::StreamRangeReply> = pipe.query_async(&mut conn).await?;
        Ok(replies
            .into_iter()
            .map(|r| {
                r.ids
                    .first()
                    .map(|e| e.id.clone())
                    .unwrap_or_else(|| "0-0".to_string())
            })
            .collect())
    }

    /// The id of a county stream's newest entry (`0-0` when empty): where a reader that wants
    /// "from now on" starts, so nothing written between two reads is skipped.
    pub async fn last_event_id(&self, county: &str) -> Result<String, StoreError> {
        let mut conn = self.conn.clone();
        let newest: redis::streams::StreamRangeReply = conn
            .xrevrange_count(format!("{}events", county_prefix(county)), "+", "-", 1)
            .await?;
        Ok(newest
            .ids
            .first()
            .map(|e| e.id.clone())
            .unwrap_or_else(|| "0-0".to_string()))
    }
}

fn parse_agent(id: &str, f: &HashMap<String, String>) -> Option<Agent> {
    let mut spec: AgentSpec = serde_json::from_str(f.get("spec")?).ok()?;
    // The live status (set away by missed offers) wins over the defined one.
    if let Some(status) = f
        .get("status")
        .and_then(|s| serde_json::from_value(serde_json::Value::String(s.clone())).ok())
    {
        spec.status = status;
    }
    let num = |k: &str| {
        f.get(k)
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0)
            .max(0)
    };
    Some(Agent {
        id: id.to_string(),
        spec,
        active: u32::try_from(num("active")).unwrap_or(0),
        handled: num("handled").unsigned_abs(),
        missed: num("missed").unsigned_abs(),
        avg_handle_seconds: match num("handled") {
            0 => 0.0,
            n => num("handle_ms") as f64 / n as f64 / 1000.0,
        },
    })
}

impl Store {
    /// Blocking read of a county's event stream after `last` (`$` for "from now"), on a
    /// dedicated connection; waits at most `block_ms`.
    pub async fn read_events(
        &self,
        conn: &mut redis::aio::MultiplexedConnection,
        county: &str,
        last: &str,
        block_ms: usize,
    ) -> Result<Vec<(String, HashMap<String, String>)>, StoreError> {
        let opts = redis::streams::StreamReadOptions::default()
            .block(block_ms)
            .count(100);
        let reply: Option<redis::streams::StreamReadReply> = conn
            .xread_options(
                &[format!("{}events", county_prefix(county))],
                &[last],
                &opts,
            )
            .await?;
        let mut out = Vec::new();
        for key in reply.map(|r| r.keys).unwrap_or_default() {
            for entry in key.ids {
                let fields = entry_fields(&entry);
                out.push((entry.id, fields));
            }
        }
        Ok(out)
    }
}

impl Store {
    /// Blocking read of several counties' event streams from the given positions (`$` for
    /// "from now"), on a dedicated connection. Streams of different counties are different
    /// slots: on Redis Cluster this must become one read per county.
    pub async fn read_many(
        &self,
        conn: &mut redis::aio::MultiplexedConnection,
        positions: &std::collections::BTreeMap<String, String>,
        block_ms: usize,
    ) -> Result<Vec<(String, String, HashMap<String, String>)>, StoreError> {
        let keys: Vec<String> = positions
            .keys()
            .map(|c| format!("{}events", county_prefix(c)))
            .collect();
        let ids: Vec<&str> = positions.values().map(String::as_str).collect();
        let opts = redis::streams::StreamReadOptions::default()
            .block(block_ms)
            .count(200);
        let reply: Option<redis::streams::StreamReadReply> =
            conn.xread_options(&keys, &ids, &opts).await?;
        let mut out = Vec::new();
        for key in reply.map(|r| r.keys).unwrap_or_default() {
            let county = key
                .key
                .split_once('{')
                .and_then(|(_, rest)| rest.split_once('}'))
                .map(|(c, _)| c.to_string())
                .unwrap_or_default();
            for entry in key.ids {
                let fields = entry_fields(&entry);
                out.push((county.clone(), entry.id, fields));
            }
        }
        Ok(out)
    }
}

/// One warned or breached clock, as stored.
#[derive(Debug, Clone)]
pub struct RiskRow {
    /// Ticket id.
    pub id: String,
    /// Clock name.
    pub clock: String,
    /// The ticket's queue.
    pub queue: String,
    /// The ticket's warning level.
    pub level: String,
    /// The clock's deadline, ms.
    pub due_ms: i64,
    /// The ticket's clocks (JSON), to tell a provisional deadline.
    pub clocks: String,
}

/// Members of a sorted set with their scores.
type Scored = Vec<(String, f64)>;

impl Store {
    /// Warned and breached clocks of a county (`hl:{c}:risk`, `hl:{c}:late`).
    pub async fn risk(&self, county: &str) -> Result<(Vec<RiskRow>, Vec<RiskRow>), StoreError> {
        let prefix = county_prefix(county);
        let mut conn = self.conn.clone();
        let mut out = (Vec::new(), Vec::new());
        // Both lists in one MULTI: a breach firing between two reads would move a clock from
        // the first list to the second and show it in both.
        let (risk, late): (Scored, Scored) = redis::pipe()
            .atomic()
            .zrange_withscores(format!("{prefix}risk"), 0, 499)
            .zrange_withscores(format!("{prefix}late"), 0, 499)
            .query_async(&mut conn)
            .await?;
        for (members, slot) in [(risk, 0), (late, 1)] {
            let mut pipe = redis::pipe();
            for (m, _) in &members {
                let id = m.split('|').next().unwrap_or_default();
                pipe.cmd("HMGET")
                    .arg(format!("{prefix}t:{id}"))
                    .arg(&["queue", "level", "clocks"]);
            }
            let fields: Vec<Vec<Option<String>>> = if members.is_empty() {
                Vec::new()
            } else {
                pipe.query_async(&mut conn).await?
            };
            let rows = members.into_iter().zip(fields).map(|((m, due), f)| {
                let (id, clock) = m.split_once('|').unwrap_or((m.as_str(), ""));
                let get = |i: usize| f.get(i).cloned().flatten().unwrap_or_default();
                RiskRow {
                    id: id.to_string(),
                    clock: clock.to_string(),
                    queue: get(0),
                    level: get(1),
                    due_ms: due as i64,
                    clocks: get(2),
                }
            });
            if slot == 0 {
                out.0.extend(rows);
            } else {
                out.1.extend(rows);
            }
        }
        Ok(out)
    }

    /// The day's counters of a county (`day` = days since the epoch in China Standard Time).
    pub async fn day_counts(
        &self,
        county: &str,
        day: i64,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let mut conn = self.conn.clone();
        let map: HashMap<String, u64> = conn
            .hgetall(format!("{}day:{day}", county_prefix(county)))
            .await?;
        Ok(map.into_iter().collect())
    }
}

/// The fields of a stream entry as text (every field the scripts write is text).
fn entry_fields(entry: &redis::streams::StreamId) -> HashMap<String, String> {
    entry
        .map
        .iter()
        .filter_map(|(k, v)| {
            redis::from_redis_value::<String>(v.clone())
                .ok()
                .map(|v| (k.clone(), v))
        })
        .collect()
}
