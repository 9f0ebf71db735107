//! Partner callback outboxes in Redis (see `lua/outbox.lua` for the protocol).
//!
//! Keys (county tag as everywhere): `hl:{c}:outbox:<partner>` (stream of undelivered events,
//! written by the scripts that change tickets), `…:state` (attempts, next attempt, last error,
//! cursor), `…:dead` (dead letters, JSON, newest first), `…:lock` (the delivering replica).

use std::collections::HashMap;

use redis::AsyncCommands;

use super::{Store, StoreError, county_prefix};

/// One undelivered event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// The stream entry id: with the county, the delivery's idempotency key.
    pub entry_id: String,
    /// `type`, `id` (ticket), `status`, `at_ms` and details.
    pub fields: HashMap<String, String>,
}

/// Where one (county, partner) outbox stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxState {
    /// Undelivered entries.
    pub pending: u64,
    /// Failed attempts at the head entry.
    pub attempts: u32,
    /// No attempt before this (ms; 0 = now).
    pub next_at_ms: i64,
    /// The head entry's last error.
    pub last_error: Option<String>,
    /// Dead letters waiting for a replay.
    pub dead: u64,
}

fn key(county: &str, partner: &str) -> String {
    format!("{}outbox:{partner}", county_prefix(county))
}

impl Store {
    async fn outbox_op(
        &self,
        county: &str,
        partner: &str,
        args: &[&str],
    ) -> Result<Vec<String>, StoreError> {
        let k = key(county, partner);
        let mut conn = self.conn.clone();
        let mut invocation = self.outbox.key(&k);
        invocation
            .key(format!("{k}:state"))
            .key(format!("{k}:dead"))
            .key(format!("{k}:lock"));
        for a in args {
            invocation.arg(*a);
        }
        Ok(invocation.invoke_async(&mut conn).await?)
    }

    /// How many entries wait in each (county, partner) outbox, in one round trip: the delivery
    /// loop locks and reads only outboxes that hold something, so a quiet county costs nothing.
    pub async fn outboxes_pending(
        &self,
        outboxes: &[(&str, &str)],
    ) -> Result<Vec<u64>, StoreError> {
        if outboxes.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for (county, partner) in outboxes {
            pipe.xlen(key(county, partner));
        }
        let mut conn = self.conn.clone();
        Ok(pipe.query_async(&mut conn).await?)
    }

    /// Takes or extends the delivery lock of a (county, partner) outbox for `holder`.
    pub async fn outbox_lock(
        &self,
        county: &str,
        partner: &str,
        holder: &str,
        ms: u64,
    ) -> Result<bool, StoreError> {
        let reply = self
            .outbox_op(county, partner, &["lock", holder, &ms.to_string()])
            .await?;
        Ok(reply.first().map(String::as_str) == Some("ok"))
    }

    /// The oldest undelivered entries, at most `n`.
    pub async fn outbox_head(
        &self,
        county: &str,
        partner: &str,
        n: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut conn = self.conn.clone();
        let reply: redis::streams::StreamRangeReply =
            conn.xrange_count(key(county, partner), "-", "+", n).await?;
        Ok(reply
            .ids
            .into_iter()
            .map(|e| OutboxEntry {
                fields: e
                    .map
                    .iter()
                    .filter_map(|(k, v)| {
                        redis::from_redis_value::<String>(v.clone())
                            .ok()
                            .map(|v| (k.clone(), v))
                    })
                    .collect(),
                entry_id: e.id,
            })
            .collect())
    }

    /// Where a (county, partner) outbox stands.
    pub async fn outbox_state(
        &self,
        county: &str,
        partner: &str,
    ) -> Result<OutboxState, StoreError> {
        let k = key(county, partner);
        let mut conn = self.conn.clone();
        let (pending, state, dead): (u64, HashMap<String, String>, u64) = redis::pipe()
            .xlen(&k)
            .hgetall(format!("{k}:state"))
            .llen(format!("{k}:dead"))
            .query_async(&mut conn)
            .await?;
        let num = |f: &str| {
            state
                .get(f)
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0)
        };
        Ok(OutboxState {
            pending,
            attempts: u32::try_from(num("attempts")).unwrap_or(0),
            next_at_ms: num("next_at_ms"),
            last_error: state.get("last_error").cloned(),
            dead,
        })
    }

    /// The head entry was delivered (or the partner does not want it); `false` if this replica
    /// lost the lock meanwhile and changed nothing.
    pub async fn outbox_done(
        &self,
        county: &str,
        partner: &str,
        holder: &str,
        entry_id: &str,
    ) -> Result<bool, StoreError> {
        let reply = self
            .outbox_op(county, partner, &["done", holder, entry_id])
            .await?;
        Ok(reply.first().map(String::as_str) == Some("ok"))
    }

    /// A failed attempt at the head entry; the next one not before `next_at_ms`. Returns the
    /// attempts so far, or `None` if the lock was lost.
    pub async fn outbox_retry(
        &self,
        county: &str,
        partner: &str,
        holder: &str,
        entry_id: &str,
        next_at_ms: i64,
        error: &str,
    ) -> Result<Option<u32>, StoreError> {
        let reply = self
            .outbox_op(
                county,
                partner,
                &["retry", holder, entry_id, &next_at_ms.to_string(), error],
            )
            .await?;
        Ok(match reply.first().map(String::as_str) {
            Some("ok") => reply.get(1).and_then(|v| v.parse().ok()),
            _ => None,
        })
    }

    /// Gives up on the head entry: it goes to the dead letters with `record` (JSON).
    pub async fn outbox_dead(
        &self,
        county: &str,
        partner: &str,
        holder: &str,
        entry_id: &str,
        record: &str,
    ) -> Result<bool, StoreError> {
        let reply = self
            .outbox_op(county, partner, &["dead", holder, entry_id, record])
            .await?;
        Ok(reply.first().map(String::as_str) == Some("ok"))
    }

    /// Puts the dead letters back in the outbox; returns how many.
    pub async fn outbox_replay(&self, county: &str, partner: &str) -> Result<u64, StoreError> {
        let reply = self.outbox_op(county, partner, &["replay", ""]).await?;
        Ok(reply.get(1).and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    /// The newest dead letters (JSON), at most `n`.
    pub async fn outbox_dead_letters(
        &self,
        county: &str,
        partner: &str,
        n: usize,
    ) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn.clone();
        Ok(conn
            .lrange(format!("{}:dead", key(county, partner)), 0, n as isize - 1)
            .await?)
    }

    /// The sender's reference of a ticket (`source`, `external_id`), for the callback body.
    pub async fn ticket_reference(&self, id: &str) -> Result<Option<(String, String)>, StoreError> {
        let Some(county) = super::county_of(id) else {
            return Ok(None);
        };
        let mut conn = self.conn.clone();
        let json: Option<String> = conn
            .hget(format!("{}t:{id}", county_prefix(county)), "ticket")
            .await?;
        Ok(json
            .and_then(|j| serde_json::from_str::<serde_json::Value>(&j).ok())
            .map(|v| {
                let field = |k: &str| v[k].as_str().unwrap_or_default().to_string();
                (field("source"), field("external_id"))
            }))
    }
}
