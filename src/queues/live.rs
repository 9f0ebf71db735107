//! Live transfer in Redis: who is waiting on the line, handle times for the wait estimate, and
//! the caller hanging up. The reservation itself is a lease taken by `claim.lua` in live mode.
//!
//! Keys (county tag as everywhere): `hl:{c}:live:<pool>` (ZSET of ticket ids whose caller waits,
//! by when they started waiting; the pool is the agent kind, `lawyer` or `mediator`) and
//! `hl:{c}:aht` (hash: `<pool>` → moving average of live handle time in ms, `<pool>:n` → calls
//! measured). Per ticket: `live` (waiting, callback, accepted, connected, ended, cancelled),
//! `transfer`, `live_since_ms`, `live_estimate_ms`, `live_operator`, `live_lease`,
//! `live_accepted_ms`, `live_ended_ms`.

use redis::AsyncCommands;

use super::{Store, StoreError, county_of, county_prefix};

/// The live-transfer fields of a ticket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveFields {
    /// `waiting`, `callback`, `accepted`, `connected`, `ended` or `cancelled`.
    pub state: String,
    /// `live` (asked on duty) or `callback` (asked off duty); the SLA policies match on it.
    pub transfer: String,
    /// When the caller asked, ms.
    pub since_ms: i64,
    /// The wait they were told, ms, if they had to wait.
    pub estimate_ms: Option<i64>,
    /// The lease id of a live reservation pending now.
    pub lease: Option<String>,
    /// When an agent accepted the call, ms.
    pub accepted_ms: Option<i64>,
    /// When the pending lease lapses, ms.
    pub lease_expires_ms: Option<i64>,
}

impl LiveFields {
    /// Takes the fields out of a ticket hash; `None` for a ticket nobody asked to transfer live.
    pub(crate) fn take(take: &mut impl FnMut(&str) -> String) -> Option<LiveFields> {
        let state = take("live");
        if state.is_empty() {
            return None;
        }
        let num = |v: String| v.parse::<i64>().ok();
        Some(LiveFields {
            state,
            transfer: take("transfer"),
            since_ms: num(take("live_since_ms")).unwrap_or(0),
            estimate_ms: num(take("live_estimate_ms")),
            lease: Some(take("live_lease")).filter(|v| !v.is_empty()),
            accepted_ms: num(take("live_accepted_ms")),
            lease_expires_ms: num(take("lease_expires_ms")),
        })
    }
}

/// What registering a live request found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveBegin {
    /// First time (`false`: a retry, nothing changed).
    pub new: bool,
    /// The live state now.
    pub state: String,
    /// 1-based place among the callers waiting for the pool; 0 when not waiting.
    pub position: u64,
}

/// What a hang-up did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveCancel {
    /// Cancelled; the state before and the agent released or put into wrap-up (may be empty).
    Cancelled {
        /// `waiting`, `accepted` or `connected`.
        previous: String,
        /// The agent concerned, or empty.
        agent: String,
    },
    /// There was no live transfer in progress; the state it is in.
    NotLive(String),
    /// No such ticket.
    Missing,
}

impl Store {
    async fn live_op(
        &self,
        id: &str,
        pool: &str,
        actor: &str,
        args: &[String],
    ) -> Result<Vec<String>, StoreError> {
        let county = county_of(id).unwrap_or_default();
        let prefix = county_prefix(county);
        let mut conn = self.conn.clone();
        let started = std::time::Instant::now();
        let mut invocation = self.live.key(format!("{prefix}t:{id}"));
        invocation
            .key(format!("{prefix}live:{pool}"))
            .key(format!("{prefix}events"))
            .arg(&args[0])
            .arg(&prefix)
            .arg(self.stream_maxlen)
            .arg(actor);
        for a in &args[1..] {
            invocation.arg(a);
        }
        let reply: Vec<String> = invocation.invoke_async(&mut conn).await?;
        crate::metrics::redis_latency("live", started.elapsed());
        Ok(reply)
    }

    /// Registers a live request (`live`) or a callback request (`callback`) once.
    pub async fn live_begin(
        &self,
        id: &str,
        pool: &str,
        transfer: &str,
        actor: &str,
    ) -> Result<Option<LiveBegin>, StoreError> {
        let reply = self
            .live_op(
                id,
                pool,
                actor,
                &["begin".into(), transfer.into(), pool.into()],
            )
            .await?;
        Ok(match reply.first().map(String::as_str) {
            Some(kind @ ("new" | "exists")) => Some(LiveBegin {
                new: kind == "new",
                state: reply.get(1).cloned().unwrap_or_default(),
                position: reply.get(2).and_then(|v| v.parse().ok()).unwrap_or(0),
            }),
            _ => None,
        })
    }

    /// Records the wait the caller was told (the first estimate only) and its inputs.
    pub async fn live_estimate(
        &self,
        id: &str,
        pool: &str,
        estimate_ms: i64,
        position: u64,
        agents: usize,
        handle_ms: i64,
    ) -> Result<(), StoreError> {
        self.live_op(
            id,
            pool,
            "gateway",
            &[
                "estimate".into(),
                estimate_ms.to_string(),
                position.to_string(),
                agents.to_string(),
                handle_ms.to_string(),
            ],
        )
        .await?;
        Ok(())
    }

    /// The caller hung up.
    pub async fn live_cancel(
        &self,
        id: &str,
        pool: &str,
        actor: &str,
        reason: &str,
        wrap_up_ms: u64,
    ) -> Result<LiveCancel, StoreError> {
        let reply = self
            .live_op(
                id,
                pool,
                actor,
                &["cancel".into(), reason.into(), wrap_up_ms.to_string()],
            )
            .await?;
        let field = |i: usize| reply.get(i).cloned().unwrap_or_default();
        Ok(match reply.first().map(String::as_str) {
            Some("ok") => LiveCancel::Cancelled {
                previous: field(1),
                agent: field(2),
            },
            Some("not_live") => LiveCancel::NotLive(field(1)),
            _ => LiveCancel::Missing,
        })
    }

    /// 1-based place of a waiting caller in the pool's line, or 0.
    pub async fn live_position(&self, id: &str, pool: &str) -> Result<u64, StoreError> {
        let prefix = county_prefix(county_of(id).unwrap_or_default());
        let mut conn = self.conn.clone();
        let rank: Option<u64> = conn.zrank(format!("{prefix}live:{pool}"), id).await?;
        Ok(rank.map_or(0, |r| r + 1))
    }

    /// The callers waiting for a pool, longest waiting first, at most `limit`.
    pub async fn live_waiting(
        &self,
        county: &str,
        pool: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn.clone();
        let ids: Vec<String> = conn
            .zrange(
                format!("{}live:{pool}", county_prefix(county)),
                0,
                limit as isize - 1,
            )
            .await?;
        Ok(ids)
    }

    /// Drops a ticket from the waiting line (it was accepted, closed or cancelled meanwhile).
    pub async fn live_unwait(&self, county: &str, pool: &str, id: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: () = conn
            .zrem(format!("{}live:{pool}", county_prefix(county)), id)
            .await?;
        Ok(())
    }

    /// The moving average of live handle time of a pool (ms) and how many calls it has seen.
    pub async fn live_handle_time(
        &self,
        county: &str,
        pool: &str,
    ) -> Result<Option<(i64, u64)>, StoreError> {
        let mut conn = self.conn.clone();
        let (avg, n): (Option<i64>, Option<u64>) = redis::cmd("HMGET")
            .arg(format!("{}aht", county_prefix(county)))
            .arg(pool)
            .arg(format!("{pool}:n"))
            .query_async(&mut conn)
            .await?;
        Ok(avg.map(|a| (a, n.unwrap_or(0))))
    }
}
