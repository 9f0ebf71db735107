//! Per-caller rate limits and signature replay protection, both shared by every gateway through
//! Redis.
//!
//! Keys (global, not county-tagged: a caller is not a county):
//! - `hl:rl:<caller name>`: the caller's token bucket (`rate_limit.lua`), a hash of `tokens` and
//!   `ts`, expiring once full again;
//! - `hl:sig:<signature>`: an accepted request signature (lowercase hex), set with `NX` and
//!   expiring after twice the signature window, so a second use is refused;
//! - `hl:es:<caller name>`: the caller's open `/v1/events` streams (`event_streams.lua`), a
//!   sorted set of stream ids scored by lease end, so a limit holds across gateways and a dead
//!   gateway's streams lapse.

use super::{Store, StoreError};

/// What the bucket said about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// Let it through.
    Allowed,
    /// Refuse it; a token is back after this many milliseconds.
    Limited {
        /// Until the next token, ms.
        retry_after_ms: u64,
    },
}

/// The bucket key of a caller.
fn bucket_key(name: &str) -> String {
    format!("hl:rl:{name}")
}

/// The key of a caller's open event streams.
fn streams_key(name: &str) -> String {
    format!("hl:es:{name}")
}

/// The replay key of a signature.
fn signature_key(signature: &str) -> String {
    format!("hl:sig:{signature}")
}

impl Store {
    /// Takes one token from the caller's bucket (`per_second` refill, `burst` size, both > 0).
    pub async fn take_rate_token(
        &self,
        name: &str,
        per_second: u32,
        burst: u32,
    ) -> Result<RateDecision, StoreError> {
        let mut conn = self.conn.clone();
        let reply: Vec<i64> = self
            .rate_limit
            .key(bucket_key(name))
            .arg(per_second)
            .arg(burst.max(1))
            .invoke_async(&mut conn)
            .await?;
        match reply.as_slice() {
            [1, ..] => Ok(RateDecision::Allowed),
            [0, retry, ..] => Ok(RateDecision::Limited {
                retry_after_ms: u64::try_from(*retry).unwrap_or(0),
            }),
            _ => Err(StoreError::Reply(
                "rate_limit reply has the wrong shape".into(),
            )),
        }
    }

    /// Remembers an accepted signature for `ttl_ms`; `false` when it was already remembered
    /// (a replay).
    pub async fn remember_signature(
        &self,
        signature: &str,
        ttl_ms: u64,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(signature_key(signature))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms.max(1))
            .query_async(&mut conn)
            .await?;
        Ok(set.is_some())
    }

    /// Takes an event-stream slot for `stream_id` when the caller holds fewer than `limit` (0:
    /// unlimited) live ones; the slot lapses after `lease_ms` unless renewed. `false`: at the
    /// limit.
    pub async fn open_event_stream(
        &self,
        name: &str,
        stream_id: &str,
        limit: u32,
        lease_ms: u64,
    ) -> Result<bool, StoreError> {
        self.event_stream_call(name, stream_id, limit, lease_ms, "open")
            .await
    }

    /// Extends a stream's lease while its client is still connected.
    pub async fn renew_event_stream(
        &self,
        name: &str,
        stream_id: &str,
        lease_ms: u64,
    ) -> Result<(), StoreError> {
        self.event_stream_call(name, stream_id, 0, lease_ms, "renew")
            .await
            .map(|_| ())
    }

    /// Gives a stream's slot back when its client has gone.
    pub async fn close_event_stream(&self, name: &str, stream_id: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: i64 = redis::cmd("ZREM")
            .arg(streams_key(name))
            .arg(stream_id)
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    async fn event_stream_call(
        &self,
        name: &str,
        stream_id: &str,
        limit: u32,
        lease_ms: u64,
        mode: &str,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let reply: Vec<i64> = self
            .event_streams
            .key(streams_key(name))
            .arg(stream_id)
            .arg(limit)
            .arg(lease_ms.max(1))
            .arg(mode)
            .invoke_async(&mut conn)
            .await?;
        match reply.as_slice() {
            [admitted, ..] => Ok(*admitted == 1),
            _ => Err(StoreError::Reply(
                "event_streams reply has the wrong shape".into(),
            )),
        }
    }
}
