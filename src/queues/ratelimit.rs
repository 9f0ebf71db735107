//! Per-caller rate limits and signature replay protection, both shared by every gateway through
//! Redis.
//!
//! Keys (global, not county-tagged: a caller is not a county):
//! - `hl:rl:<caller name>`: the caller's token bucket (`rate_limit.lua`), a hash of `tokens` and
//!   `ts`, expiring once full again;
//! - `hl:sig:<signature>`: an accepted request signature (lowercase hex), set with `NX` and
//!   expiring after twice the signature window, so a second use is refused.

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
}
