//! Signing requests as a partner hotline system does (README "Partners"): `x-hotline-key`,
//! `x-hotline-timestamp` (Unix seconds), `x-hotline-nonce`, `x-hotline-signature-version: 2` and
//! `x-hotline-signature`, the lowercase hex HMAC-SHA256 of the v2 canonical text (method, path,
//! query, timestamp, nonce and the body's SHA-256; `hotline_gateway::auth::canonical_v2`) under
//! the shared secret. Used by the load generator against external gateways and by
//! `partner-sim sign` in the demo. The secret is read from an
//! environment variable or a file, held here, and never printed.

use std::path::Path;

use anyhow::{Context, Result, bail};

/// Header naming the partner's key.
pub const KEY_HEADER: &str = "x-hotline-key";
/// Header carrying the signing time.
pub const TIMESTAMP_HEADER: &str = "x-hotline-timestamp";
/// Header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-hotline-signature";
/// Header carrying the nonce (signed too).
pub const NONCE_HEADER: &str = "x-hotline-nonce";
/// Header naming the signature's form; `2` covers method, path and query.
pub const VERSION_HEADER: &str = "x-hotline-signature-version";

/// A partner's key id and secret; `Debug` shows the key id only.
#[derive(Clone)]
pub struct Signer {
    /// Sent as `x-hotline-key`.
    pub key_id: String,
    /// The shared secret.
    secret: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("key_id", &self.key_id)
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// The gateway refuses secrets shorter than this; refusing them here says so before any load.
pub const MIN_SECRET_BYTES: usize = 32;

impl Signer {
    /// A signer from a secret already read.
    pub fn new(key_id: &str, secret: Vec<u8>) -> Result<Signer> {
        if key_id.trim().is_empty() {
            bail!("the partner key id is empty");
        }
        if secret.len() < MIN_SECRET_BYTES {
            bail!("the partner secret must be at least {MIN_SECRET_BYTES} bytes");
        }
        Ok(Signer {
            key_id: key_id.to_string(),
            secret,
        })
    }

    /// Reads the secret from the variable `env` or the file `file` (exactly one), one trailing
    /// newline ignored, as the gateway reads `secret_env` and `secret_file`.
    pub fn from_env_or_file(
        key_id: &str,
        env: Option<&str>,
        file: Option<&Path>,
    ) -> Result<Signer> {
        let mut secret = match (env, file) {
            (Some(var), None) => std::env::var(var)
                .with_context(|| format!("the secret variable {var} is not set (or not UTF-8)"))?
                .into_bytes(),
            (None, Some(path)) => std::fs::read(path)
                .with_context(|| format!("cannot read the secret file {}", path.display()))?,
            _ => {
                bail!("give the partner secret by exactly one of an environment variable or a file")
            }
        };
        if secret.last() == Some(&b'\n') {
            secret.pop();
            if secret.last() == Some(&b'\r') {
                secret.pop();
            }
        }
        Signer::new(key_id, secret)
    }

    /// The secret itself, for a verifier (the partner simulator); never to be printed.
    pub fn secret(&self) -> &[u8] {
        &self.secret
    }

    /// The hex v2 signature of a request: `method` to `path_and_query` (as sent) at
    /// `timestamp` with `nonce` and `body`; send it with `x-hotline-signature-version: 2`.
    pub fn sign_request(
        &self,
        method: &str,
        path_and_query: &str,
        timestamp: i64,
        nonce: &str,
        body: &[u8],
    ) -> String {
        hotline_gateway::auth::sign_v2(
            &self.secret,
            method,
            path_and_query,
            &timestamp.to_string(),
            Some(nonce),
            body,
        )
    }
}

/// Unix seconds now.
pub fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v2_signature_is_the_gateways_canonical_text() {
        let s = Signer::new("k", b"0123456789abcdef0123456789abcdef".to_vec()).expect("signer");
        let sig = s.sign_request("POST", "/v1/tickets", 1_700_000_000, "n-1", b"{}");
        assert_eq!(
            sig,
            hotline_gateway::auth::sign_v2(
                b"0123456789abcdef0123456789abcdef",
                "POST",
                "/v1/tickets",
                "1700000000",
                Some("n-1"),
                b"{}"
            )
        );
        assert_ne!(
            sig,
            s.sign_request("POST", "/v1/tickets:batch", 1_700_000_000, "n-1", b"{}")
        );
    }
}
