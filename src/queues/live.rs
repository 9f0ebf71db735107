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
            // A ticket that is no longer open work has no caller to wait for.
            Some("closed") => Some(LiveBegin {
                new: false,
                state: String::new(),
                position: 0,
            }),
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
