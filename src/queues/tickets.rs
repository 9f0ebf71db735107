//! One ticket in Redis: reading its hash into the typed record, and writing a typed change
//! through `ticket_action.lua`. The field names of the ticket hash, the queue score and the
//! change's wire form are known here and nowhere else in Rust.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use crate::agents::Tier;
use crate::lifecycle::{
    Change, Lease, Live, LiveState, MovePlan, Status, StoredTicket, TicketRecord,
};
use crate::sla::clock::TicketClocks;

use super::{Store, StoreError, county_of, county_prefix};

/// Events of a ticket's history read with it: the newest page.
pub const HISTORY_PAGE: i64 = 100;

/// One band's width in a ready queue's score (`band * 2^32 + seq`).
const BAND: f64 = 4_294_967_296.0;

/// A ready queue's score: the most urgent band first, then arrival order.
pub fn queue_score(band: u32, seq: u64) -> f64 {
    f64::from(band) * BAND + seq as f64
}

/// The band and arrival order a ready queue's score encodes.
pub fn split_score(score: f64) -> (u32, u64) {
    let band = (score / BAND).floor();
    (band as u32, (score - band * BAND) as u64)
}

/// What [`Store::act`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActOutcome {
    /// Applied; the record's new version.
    Applied(u64),
    /// The ticket changed since it was read; read again and decide again.
    Stale,
    /// The caller's lease is not the ticket's current lease.
    StaleLease,
    /// No such ticket.
    Missing,
}

/// The change as `ticket_action.lua` reads it (see the script's header).
#[derive(Serialize)]
struct Wire<'a> {
    expected_ver: u64,
    clocks: String,
    timers: Vec<(&'a str, &'a str, i64)>,
    status: &'a str,
    dequeue: bool,
    outcomes: Vec<(&'a str, &'a str)>,
    close: bool,
    event: serde_json::Map<String, serde_json::Value>,
    maxlen: u64,
    lease_check: &'a str,
    lease_agent: &'a str,
    release_lease: bool,
    assign: &'a str,
    unassign: bool,
    agent_delta: Vec<serde_json::Value>,
    requeue: serde_json::Value,
    set: BTreeMap<&'static str, String>,
    open: bool,
    moving: bool,
    ended: bool,
    live: serde_json::Value,
    count_note: bool,
}

fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Reply(e.to_string())
}

/// Serialises a change for the script: the one place that maps typed labels to hash fields.
fn wire(change: &Change, maxlen: u64, plan: Option<&MovePlan>) -> Result<String, StoreError> {
    let l = &change.labels;
    let mut set = BTreeMap::new();
    let mut put = |k: &'static str, v: Option<String>| {
        if let Some(v) = v {
            set.insert(k, v);
        }
    };
    put("service", l.service.clone());
    put("category", l.category.clone());
    put("band", l.band.map(|b| b.to_string()));
    put("region_path", l.region_path.clone());
    put(
        "classification",
        l.classification.as_ref().map(|c| c.to_string()),
    );
    put("min_tier", l.min_tier.map(|t| t.as_str().to_string()));
    put("live", l.live.map(|s| s.as_str().to_string()));
    put(
        "live_accepted_ms",
        l.live_accepted_ms.map(|v| v.to_string()),
    );
    put("live_ended_ms", l.live_ended_ms.map(|v| v.to_string()));
    put("moving_to", l.moving_to.clone());
    put(
        "move_plan",
        plan.map(serde_json::to_string)
            .transpose()
            .map_err(json_err)?,
    );
    let mut event = change.event.fields.clone();
    event.insert("type".into(), change.event.kind.clone().into());
    event.insert("actor".into(), change.event.actor.clone().into());
    let lease = change.lease_check.as_ref();
    let live = &change.live;
    let mut live_json = serde_json::Map::new();
    if let Some(pool) = &live.unwait {
        live_json.insert("unwait".into(), pool.clone().into());
    }
    if let Some((agent, until)) = &live.busy {
        live_json.insert("busy".into(), serde_json::json!([agent, until]));
    }
    if let Some((pool, ms, weight)) = &live.handle_time {
        live_json.insert("aht".into(), serde_json::json!([pool, ms, weight]));
    }
    let wire = Wire {
        expected_ver: change.expected_ver,
        clocks: serde_json::to_string(&change.clocks).map_err(json_err)?,
        timers: change
            .timers
            .iter()
            .map(|t| (t.clock.as_str(), t.kind.as_str(), t.at_ms))
            .collect(),
        status: change.status.map_or("", Status::as_str),
        dequeue: change.dequeue,
        outcomes: change
            .outcomes
            .iter()
            .map(|(c, met)| (c.as_str(), if *met { "met" } else { "breached" }))
            .collect(),
        close: change.close,
        event,
        maxlen,
        lease_check: lease.map_or("", |l| l.id.as_str()),
        lease_agent: lease.map_or("", |l| l.agent.as_str()),
        release_lease: change.release_lease,
        assign: change.assign.as_deref().unwrap_or(""),
        unassign: change.unassign,
        agent_delta: change.agent.as_ref().map_or_else(Vec::new, |d| {
            let mut v = vec![d.agent.clone().into(), d.active.into(), d.handled.into()];
            if let Some(ms) = d.handle_ms {
                v.push(ms.into());
            }
            v
        }),
        requeue: change.requeue.as_ref().map_or_else(
            || serde_json::json!({}),
            |p| serde_json::json!({"queue": p.queue, "score": queue_score(p.band, p.seq), "since": p.since_ms}),
        ),
        set,
        open: change.reopen,
        moving: l.moving_to.is_some(),
        ended: change.status.is_some_and(Status::is_ended),
        live: serde_json::Value::Object(live_json),
        count_note: change.counts_note,
    };
    serde_json::to_string(&wire).map_err(json_err)
}

/// Builds the typed record from a ticket hash; a field that cannot be read is an error that
/// names it, never a silent default.
pub(super) fn record(
    id: &str,
    mut f: HashMap<String, String>,
    history: Vec<String>,
    history_total: u64,
) -> Result<Option<TicketRecord>, StoreError> {
    let Some(status) = f.remove("status") else {
        return Ok(None);
    };
    let corrupt = |field: &str, why: String| StoreError::Corrupt(format!("{id}: `{field}` {why}"));
    let status =
        Status::parse(&status).ok_or_else(|| corrupt("status", format!("is `{status}`")))?;
    let mut take = |k: &str| f.remove(k).unwrap_or_default();
    let opt = |v: String| Some(v).filter(|v| !v.is_empty());
    let num = |v: String| v.parse::<i64>().ok();
    let clocks_json = take("clocks");
    let clocks: TicketClocks = if clocks_json.is_empty() {
        TicketClocks::default()
    } else {
        serde_json::from_str(&clocks_json).map_err(|e| corrupt("clocks", e.to_string()))?
    };
    let stored = StoredTicket {
        id: id.to_string(),
        status,
        queue: opt(take("queue")),
        classification_json: take("classification"),
        created_ms: num(take("created_ms")).unwrap_or(0),
        clocks,
        live_asked: take("live_asked") == "1",
    };
    let lease = opt(take("lease_id")).map(|lid| Lease {
        id: lid,
        agent: take("lease_agent"),
        expires_ms: num(take("lease_expires_ms")),
    });
    let live = match opt(take("live")) {
        None => None,
        Some(s) => Some(Live {
            state: LiveState::parse(&s).ok_or_else(|| corrupt("live", format!("is `{s}`")))?,
            transfer: take("transfer"),
            since_ms: num(take("live_since_ms")).unwrap_or(0),
            estimate_ms: num(take("live_estimate_ms")),
            lease: opt(take("live_lease")),
            accepted_ms: num(take("live_accepted_ms")),
            lease_expires_ms: lease.as_ref().and_then(|l| l.expires_ms),
            pool: opt(take("live_pool")),
        }),
    };
    let fired: HashSet<String> = f
        .keys()
        .filter_map(|k| k.strip_prefix("fired:").map(str::to_string))
        .collect();
    let mut take = |k: &str| f.remove(k).unwrap_or_default();
    Ok(Some(TicketRecord {
        stored,
        ver: take("ver").parse().unwrap_or(0),
        ticket_json: take("ticket"),
        history,
        history_total,
        notes: take("notes").parse().unwrap_or(0),
        fired,
        service: take("service"),
        level: take("level"),
        category: take("category"),
        source: take("source"),
        sender: opt(take("sender")),
        overdue: take("overdue") == "1",
        lease,
        assigned_agent: opt(take("assigned_agent")),
        min_tier: Tier::parse(&take("min_tier")),
        seq: take("seq").parse().unwrap_or(0),
        band: take("band").parse().unwrap_or(0),
        region_path: take("region_path"),
        linked: serde_json::from_str(&take("linked")).unwrap_or_default(),
        live,
        callback: opt(take("callback")),
        moving_to: opt(take("moving_to")),
        transferred_to: opt(take("transferred_to")),
    }))
}

impl Store {
    /// Who sent each ticket (`None` for an id that is not one of ours, or a ticket gone or
    /// stored before senders were recorded), in one pipelined round trip on the event relay's
    /// connection: a partner's event stream carries its own tickets only.
    pub async fn senders_of(
        &self,
        conn: &mut redis::aio::MultiplexedConnection,
        ids: &[String],
    ) -> Result<Vec<Option<String>>, StoreError> {
        let mut pipe = redis::pipe();
        let mut asked = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(county) = county_of(id) {
                pipe.hget(format!("{}t:{id}", county_prefix(county)), "sender");
                asked.push(true);
            } else {
                asked.push(false);
            }
        }
        let mut found: std::vec::IntoIter<Option<String>> = if asked.iter().any(|a| *a) {
            let v: Vec<Option<String>> = pipe.query_async(conn).await?;
            v.into_iter()
        } else {
            Vec::new().into_iter()
        };
        Ok(asked
            .into_iter()
            .map(|a| if a { found.next().flatten() } else { None })
            .collect())
    }

    /// Reads one ticket with the newest page of its history (at most [`HISTORY_PAGE`] events,
    /// so the cost does not grow with the history); `None` when there is no such ticket.
    pub async fn ticket(&self, id: &str) -> Result<Option<TicketRecord>, StoreError> {
        let Some(county) = county_of(id) else {
            return Ok(None);
        };
        let prefix = county_prefix(county);
        let mut conn = self.conn.clone();
        let (fields, history, total): (HashMap<String, String>, Vec<String>, u64) = redis::pipe()
            .hgetall(format!("{prefix}t:{id}"))
            .lrange(format!("{prefix}h:{id}"), -HISTORY_PAGE as isize, -1)
            .llen(format!("{prefix}h:{id}"))
            .query_async(&mut conn)
            .await?;
        record(id, fields, history, total)
    }

    /// A page of a ticket's history: `limit` events from position `offset` (0 = the first),
    /// and how many there are in all; `None` when there is no such ticket.
    pub async fn history(
        &self,
        id: &str,
        offset: u64,
        limit: u64,
    ) -> Result<Option<(Vec<String>, u64)>, StoreError> {
        let Some(county) = county_of(id) else {
            return Ok(None);
        };
        let prefix = county_prefix(county);
        let mut conn = self.conn.clone();
        let start = isize::try_from(offset).unwrap_or(isize::MAX);
        let stop = isize::try_from(offset.saturating_add(limit.max(1)) - 1).unwrap_or(isize::MAX);
        let (exists, page, total): (bool, Vec<String>, u64) = redis::pipe()
            .exists(format!("{prefix}t:{id}"))
            .lrange(format!("{prefix}h:{id}"), start, stop)
            .llen(format!("{prefix}h:{id}"))
            .query_async(&mut conn)
            .await?;
        Ok(exists.then_some((page, total)))
    }

    /// Applies a change decided on the record at `change.expected_ver`;
    /// [`ActOutcome::Stale`] when the ticket moved on. A move to another county keeps its
    /// `plan` on the old ticket until [`Store::finish_move`].
    pub async fn act(
        &self,
        id: &str,
        change: &Change,
        plan: Option<&MovePlan>,
    ) -> Result<ActOutcome, StoreError> {
        let Some(county) = county_of(id) else {
            return Ok(ActOutcome::Missing);
        };
        let prefix = county_prefix(county);
        let body = wire(change, self.stream_maxlen, plan)?;
        let mut conn = self.conn.clone();
        let started = std::time::Instant::now();
        let reply: Vec<String> = self
            .action
            .key(format!("{prefix}t:{id}"))
            .key(format!("{prefix}timers"))
            .key(format!("{prefix}events"))
            .arg(&prefix)
            .arg(body)
            .invoke_async(&mut conn)
            .await?;
        crate::metrics::redis_latency("action", started.elapsed());
        Ok(match reply.first().map(String::as_str) {
            Some("ok") => {
                ActOutcome::Applied(reply.get(1).and_then(|v| v.parse().ok()).unwrap_or(0))
            }
            Some("stale") => ActOutcome::Stale,
            Some("stale_lease") => ActOutcome::StaleLease,
            _ => ActOutcome::Missing,
        })
    }

    /// The move plan kept on a ticket closed by a move that has not finished.
    pub async fn move_plan(&self, id: &str) -> Result<Option<MovePlan>, StoreError> {
        let Some(county) = county_of(id) else {
            return Ok(None);
        };
        let mut conn = self.conn.clone();
        let plan: Option<String> = redis::cmd("HGET")
            .arg(format!("{}t:{id}", county_prefix(county)))
            .arg("move_plan")
            .query_async(&mut conn)
            .await?;
        plan.map(|p| serde_json::from_str(&p))
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("{id}: `move_plan` {e}")))
    }

    /// The second step of a move: the old ticket names the new one, and leaves the set of
    /// unfinished moves. Idempotent.
    pub async fn finish_move(&self, id: &str, new_id: &str, queue: &str) -> Result<(), StoreError> {
        let Some(county) = county_of(id) else {
            return Ok(());
        };
        let prefix = county_prefix(county);
        let mut conn = self.conn.clone();
        let _: Vec<String> = self
            .moved
            .key(format!("{prefix}t:{id}"))
            .key(format!("{prefix}moving"))
            .key(format!("{prefix}events"))
            .arg(&prefix)
            .arg(new_id)
            .arg(queue)
            .arg(self.stream_maxlen)
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Tickets of each county whose move to another county was decided before `before_ms` and
    /// has not finished (a gateway stopped between the two steps), as `(county, id)`; one round
    /// trip for all counties (housekeeping asks every 10 s).
    pub async fn unfinished_moves(
        &self,
        counties: &[String],
        before_ms: i64,
    ) -> Result<Vec<(String, String)>, StoreError> {
        if counties.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for county in counties {
            pipe.cmd("ZRANGEBYSCORE")
                .arg(format!("{}moving", county_prefix(county)))
                .arg("-inf")
                .arg(before_ms)
                .arg("LIMIT")
                .arg(0)
                .arg(100);
        }
        let mut conn = self.conn.clone();
        let ids: Vec<Vec<String>> = pipe.query_async(&mut conn).await?;
        Ok(counties
            .iter()
            .zip(ids)
            .flat_map(|(c, ids)| ids.into_iter().map(move |id| (c.clone(), id)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_score_orders_band_before_arrival_and_decodes_back() {
        assert!(queue_score(0, 1_000_000) < queue_score(1, 1));
        for (band, seq) in [(0, 0), (3, 42), (7, 4_000_000_000)] {
            assert_eq!(split_score(queue_score(band, seq)), (band, seq));
        }
    }

    #[test]
    fn a_corrupt_field_is_an_error_naming_it_not_a_default() {
        let mut f = HashMap::new();
        f.insert("status".to_string(), "queued".to_string());
        f.insert("clocks".to_string(), "{not json".to_string());
        let err = record("320831-00000001", f, vec![], 0).unwrap_err();
        assert!(err.to_string().contains("clocks"), "{err}");
        let mut f = HashMap::new();
        f.insert("status".to_string(), "exploded".to_string());
        assert!(record("320831-00000001", f, vec![], 0).is_err());
    }
}
