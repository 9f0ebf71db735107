//! Who is calling, and what they may do.
//!
//! Bearer tokens are configured only as SHA-256 digests, so a leaked config file leaks no token.
//! The presented token is hashed and compared with every configured digest in constant time,
//! without stopping at the first match, so response timing tells nothing about which digest
//! came close. Region limits are code prefixes: `32` is a province, `3208` a city, `320831` a
//! county.
//!
//! Partner systems may instead sign each request (DESIGN.md section 5): `x-hotline-key` names
//! the partner, `x-hotline-timestamp` is Unix seconds, and `x-hotline-signature` is the hex
//! HMAC-SHA256 of `timestamp + "\n" + body` under the partner's shared secret, or of
//! `timestamp + "\n" + nonce + "\n" + body` when the optional `x-hotline-nonce` is sent (so two
//! requests with the same body in the same second have different signatures, and neither is
//! taken for a replay of the other). That first form (v1) covers neither the method nor the path
//! nor the query, so a captured signed `GET /v1/tickets/A` could be sent as a withdraw of A, or a
//! withdraw of A as one of B. Version 2 (`x-hotline-signature-version: 2`) signs
//! [`canonical_v2`]: a version tag, the method, the path, the canonical query, the timestamp,
//! the nonce and the body's SHA-256. Each partner entry says which versions it may use
//! (`signature_versions`, default v2 only). This module checks the key, the version, the
//! timestamp window, the nonce's form and the MAC (in constant time); refusing replays needs
//! Redis and is done by the API middleware through `queues`.

use std::collections::HashMap;
use std::path::PathBuf;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

use crate::secret::Secret;
use crate::setting::{ConfigError, check_region_prefix, invalid};

/// Header naming the partner's key (`[[auth.partners]] key_id`).
pub const KEY_HEADER: &str = "x-hotline-key";
/// Header carrying the signing time, Unix seconds.
pub const TIMESTAMP_HEADER: &str = "x-hotline-timestamp";
/// Header carrying the hex HMAC-SHA256 of `timestamp + "\n" + body` (or
/// `timestamp + "\n" + nonce + "\n" + body` with a nonce).
pub const SIGNATURE_HEADER: &str = "x-hotline-signature";
/// Optional header carrying a per-request nonce that is signed too: it makes every request's
/// signature unique even for identical bodies within one second (retries, GETs).
pub const NONCE_HEADER: &str = "x-hotline-nonce";
/// Longest nonce accepted, in bytes (a UUID is 36, 32 random hex digits are 32).
pub const NONCE_MAX_LEN: usize = 64;
/// Header saying which form the signature takes: `2` for [`canonical_v2`]; absent (or `1`)
/// for the first form, accepted only from partners whose entry allows `v1`.
pub const SIGNATURE_VERSION_HEADER: &str = "x-hotline-signature-version";
/// The first line of a v2 signed text: names the form, so a v2 text can never be read as v1.
pub const V2_TAG: &str = "HOTLINE-HMAC-SHA256-V2";

/// A form of partner signature (`[[auth.partners]] signature_versions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureVersion {
    /// `timestamp \n [nonce \n] body`: neither method, path nor query is covered.
    V1,
    /// [`canonical_v2`]: method, path and query covered too.
    V2,
}

impl SignatureVersion {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureVersion::V1 => "v1",
            SignatureVersion::V2 => "v2",
        }
    }

    /// From the config spelling.
    pub fn parse(text: &str) -> Option<SignatureVersion> {
        match text {
            "v1" => Some(SignatureVersion::V1),
            "v2" => Some(SignatureVersion::V2),
            _ => None,
        }
    }
}

/// The signature headers of a request, as received (`None` when absent or not ASCII): what a
/// partner sends to prove who it is, gathered so they travel together.
#[derive(Debug, Clone, Copy, Default)]
pub struct SignedHeaders<'a> {
    /// `x-hotline-key-id`.
    pub key: Option<&'a str>,
    /// `x-hotline-timestamp`.
    pub timestamp: Option<&'a str>,
    /// `x-hotline-signature`.
    pub signature: Option<&'a str>,
    /// `x-hotline-nonce`.
    pub nonce: Option<&'a str>,
    /// `x-hotline-signature-version`.
    pub version: Option<&'a str>,
}

/// What a v2 signature covers of the request line: the method, the path as sent and the raw
/// query (canonicalised before signing).
#[derive(Debug, Clone, Copy)]
pub struct RequestLine<'a> {
    /// `GET`, `POST`, … (upper case as sent).
    pub method: &'a str,
    /// The path exactly as sent, percent-escapes and all (`/v1/tickets/320831-00000001`).
    pub path: &'a str,
    /// The query after `?`, as sent, or `None`.
    pub query: Option<&'a str>,
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A partner hotline system pushing tickets (自动/一键转接).
    Partner,
    /// A call-centre operator at a console (人工转接).
    Operator,
    /// A lawyer or mediator working a queue.
    Agent,
    /// A supervisor watching queues.
    Supervisor,
    /// Runs the gateway.
    Admin,
}

impl Role {
    /// The config and log spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Partner => "partner",
            Role::Operator => "operator",
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's configured name; safe to log.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Region code prefixes it is limited to; empty means everywhere.
    pub regions: Vec<String>,
    /// For agents: the agent it acts as.
    pub agent_id: Option<String>,
}

impl Principal {
    /// True when the principal may act on tickets of this region code.
    pub fn covers(&self, region_code: &str) -> bool {
        self.regions.is_empty() || self.regions.iter().any(|p| region_code.starts_with(p))
    }

    /// Refuses roles not in `allowed`.
    pub fn require(&self, allowed: &[Role]) -> Result<(), AuthError> {
        if allowed.contains(&self.role) {
            Ok(())
        } else {
            Err(AuthError::Forbidden(format!(
                "role `{}` may not do this; allowed: {}",
                self.role.as_str(),
                allowed
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    }
}

/// Why a request was not let in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header (401).
    #[error("missing bearer token")]
    Missing,
    /// A token that matches no configured digest (401).
    #[error("unknown or malformed bearer token")]
    Invalid,
    /// A signed request that does not verify (401); the reason is told to the partner, who
    /// needs it to fix the integration, and none of them reveals the secret.
    #[error("{0}")]
    Signature(SignatureError),
    /// Known caller, wrong role or region (403).
    #[error("{0}")]
    Forbidden(String),
}

impl AuthError {
    /// A closed-set label for `hotline_auth_rejected_total{reason}`.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing_token",
            AuthError::Invalid => "invalid_token",
            AuthError::Signature(s) => s.reason(),
            AuthError::Forbidden(_) => "forbidden",
        }
    }
}

/// Why a signed request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// One of the three headers is absent or not visible ASCII.
    #[error("signed request without a usable `{0}` header")]
    MissingHeader(&'static str),
    /// `x-hotline-key` names no configured partner.
    #[error("unknown x-hotline-key")]
    UnknownKey,
    /// `x-hotline-timestamp` is not whole Unix seconds.
    #[error("malformed x-hotline-timestamp: expected Unix seconds (digits only)")]
    MalformedTimestamp,
    /// `x-hotline-nonce` is empty, too long, or has characters outside the allowed set.
    #[error(
        "malformed x-hotline-nonce: 1 to 64 letters, digits, `-`, `_`, `.` or `~` (a UUID or random hex is fine)"
    )]
    MalformedNonce,
    /// The timestamp is too far from the gateway's clock, either way.
    #[error(
        "x-hotline-timestamp is {skew} s {direction} the gateway's clock; at most {window} s is accepted (check the sender's clock)"
    )]
    OutsideWindow {
        /// How far off, seconds.
        skew: u64,
        /// `ahead of` or `behind`.
        direction: &'static str,
        /// `auth.signature_window_seconds`.
        window: u64,
    },
    /// The MAC does not match (wrong secret, altered body, timestamp, method, path or query, or
    /// not 64 hex digits).
    #[error(
        "bad x-hotline-signature: with x-hotline-signature-version: 2, expected lowercase hex HMAC-SHA256 with the partner's secret of \"HOTLINE-HMAC-SHA256-V2\\nMETHOD\\n/path\\ncanonical query\\ntimestamp\\nnonce\\nhex SHA-256 of the body\" (README, Partners); the first form signs timestamp + \"\\n\" + body (timestamp + \"\\n\" + nonce + \"\\n\" + body when x-hotline-nonce is sent)"
    )]
    BadSignature,
    /// `x-hotline-signature-version` names no known version.
    #[error("unknown x-hotline-signature-version: send `2` (or leave it out for the first form)")]
    UnknownVersion,
    /// The partner's entry does not allow this version (v1 unless allowed).
    #[error(
        "signature version {used} is not allowed for this partner (allowed: {allowed}); sign with x-hotline-signature-version: 2 (README, Partners)"
    )]
    VersionNotAllowed {
        /// `v1` or `v2`.
        used: &'static str,
        /// The entry's `signature_versions`, joined.
        allowed: String,
    },
    /// The same signature was already accepted within the window.
    #[error(
        "replayed x-hotline-signature: this signature was already used; sign every request (and every retry) with a fresh timestamp or a fresh x-hotline-nonce"
    )]
    Replayed,
}

impl SignatureError {
    /// A closed-set label for `hotline_auth_rejected_total{reason}`.
    pub fn reason(&self) -> &'static str {
        match self {
            SignatureError::MissingHeader(_) => "missing_signature_header",
            SignatureError::UnknownKey => "unknown_key",
            SignatureError::MalformedTimestamp => "malformed_timestamp",
            SignatureError::MalformedNonce => "malformed_nonce",
            SignatureError::OutsideWindow { .. } => "timestamp_outside_window",
            SignatureError::BadSignature => "bad_signature",
            SignatureError::UnknownVersion => "unknown_signature_version",
            SignatureError::VersionNotAllowed { .. } => "signature_version_refused",
            SignatureError::Replayed => "replayed_signature",
        }
    }
}

/// A caller's request rate; `per_second == 0` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests per second refilled.
    pub per_second: u32,
    /// Bucket size.
    pub burst: u32,
}

impl RateLimit {
    /// The effective limit of an entry from its overrides and the defaults.
    pub fn resolve(
        defaults: RateLimitSettings,
        per_second: Option<u32>,
        burst: Option<u32>,
    ) -> RateLimit {
        match per_second {
            Some(rate) => RateLimit {
                per_second: rate,
                burst: burst.unwrap_or_else(|| rate.saturating_mul(2).max(1)),
            },
            None => RateLimit {
                per_second: defaults.per_second,
                burst: burst.unwrap_or(defaults.burst),
            },
        }
    }

    /// True when no limit applies.
    pub fn is_unlimited(&self) -> bool {
        self.per_second == 0
    }
}

/// A request that verified: who signed it and the signature in canonical (lowercase) form, the
/// replay key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The partner.
    pub principal: Principal,
    /// Lowercase hex of the MAC.
    pub signature: String,
}

/// One configured partner.
#[derive(Debug, Clone)]
struct Partner {
    secret: Secret,
    principal: Principal,
    /// The signature forms this partner may use.
    versions: Vec<SignatureVersion>,
}

/// The configured tokens and partners, ready to check.
#[derive(Debug, Clone, Default)]
pub struct Authenticator {
    tokens: Vec<([u8; 32], Principal)>,
    partners: HashMap<String, Partner>,
    limits: HashMap<String, RateLimit>,
    default_limit: Option<RateLimit>,
    stream_limits: HashMap<String, u32>,
    default_stream_limit: u32,
    window_seconds: u64,
}

impl Authenticator {
    /// Builds from `[auth]`, reading partners' secrets from their environment variables or
    /// files; an error names the key (`auth.partners[1].secret_env`).
    pub fn from_settings(settings: &AuthSettings) -> Result<Authenticator, ConfigError> {
        let mut auth = Authenticator::new(settings);
        for (i, p) in settings.partners.iter().enumerate() {
            let secret = p.load_secret(i)?;
            let principal = Principal {
                name: p.name.clone(),
                role: Role::Partner,
                regions: p.regions.clone(),
                agent_id: None,
            };
            auth.limits
                .entry(p.name.clone())
                .or_insert(RateLimit::resolve(
                    settings.rate_limit,
                    p.rate_per_second,
                    p.rate_burst,
                ));
            auth.stream_limits
                .entry(p.name.clone())
                .or_insert(p.max_event_streams.unwrap_or(auth.default_stream_limit));
            let versions = p.versions(i)?;
            auth.partners.insert(
                p.key_id.clone(),
                Partner {
                    secret,
                    principal,
                    versions,
                },
            );
        }
        Ok(auth)
    }

    /// Builds from `[[auth.tokens]]` only (no partners); digests were validated with the config.
    pub fn new(settings: &AuthSettings) -> Authenticator {
        let mut limits = HashMap::new();
        let mut stream_limits = HashMap::new();
        let default_stream_limit = settings.rate_limit.max_event_streams;
        for t in &settings.tokens {
            limits.entry(t.name.clone()).or_insert(RateLimit::resolve(
                settings.rate_limit,
                t.rate_per_second,
                t.rate_burst,
            ));
            stream_limits
                .entry(t.name.clone())
                .or_insert(t.max_event_streams.unwrap_or(default_stream_limit));
        }
        let tokens = settings
            .tokens
            .iter()
            .filter_map(|t| {
                let bytes = hex::decode(&t.sha256).ok()?;
                let digest: [u8; 32] = bytes.try_into().ok()?;
                Some((
                    digest,
                    Principal {
                        name: t.name.clone(),
                        role: t.role,
                        regions: t.regions.clone(),
                        agent_id: t.agent_id.clone(),
                    },
                ))
            })
            .collect();
        Authenticator {
            tokens,
            partners: HashMap::new(),
            limits,
            default_limit: Some(RateLimit::resolve(settings.rate_limit, None, None)),
            stream_limits,
            default_stream_limit,
            window_seconds: settings.signature_window_seconds,
        }
    }

    /// How many tokens and partners are configured; zero means nobody can call the API.
    pub fn len(&self) -> usize {
        self.tokens.len() + self.partners.len()
    }

    /// True when no token or partner is configured.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many partners sign their requests.
    pub fn partner_count(&self) -> usize {
        self.partners.len()
    }

    /// `auth.signature_window_seconds`.
    pub fn window_seconds(&self) -> u64 {
        self.window_seconds
    }

    /// The rate limit of a caller, by its configured name (entries sharing a name share it).
    pub fn rate_limit(&self, name: &str) -> RateLimit {
        self.limits
            .get(name)
            .copied()
            .or(self.default_limit)
            .unwrap_or(RateLimit {
                per_second: 0,
                burst: 0,
            })
    }

    /// Most `/v1/events` streams a caller may hold open at once (0: unlimited), by its name.
    pub fn event_stream_limit(&self, name: &str) -> u32 {
        self.stream_limits
            .get(name)
            .copied()
            .unwrap_or(self.default_stream_limit)
    }

    /// Checks a signed request: the key, the timestamp against `now_secs`, the nonce's form
    /// when one is sent, and the MAC over `timestamp + "\n" + body`, or
    /// `timestamp + "\n" + nonce + "\n" + body` with a nonce. Headers are passed as received
    /// (`None` when absent or not ASCII). Replays are checked by the caller, with the returned
    /// canonical signature.
    ///
    /// `version` is the `x-hotline-signature-version` header as received; `line` the request's
    /// method, path and query, which a v2 signature covers.
    pub fn verify_signed(
        &self,
        headers: SignedHeaders<'_>,
        line: RequestLine<'_>,
        body: &[u8],
        now_secs: i64,
    ) -> Result<Verified, AuthError> {
        let SignedHeaders {
            key,
            timestamp,
            signature,
            nonce,
            version,
        } = headers;
        let fail = |e| Err(AuthError::Signature(e));
        let Some(key) = key.map(str::trim).filter(|k| !k.is_empty()) else {
            return fail(SignatureError::MissingHeader(KEY_HEADER));
        };
        let Some(timestamp) = timestamp.map(str::trim).filter(|t| !t.is_empty()) else {
            return fail(SignatureError::MissingHeader(TIMESTAMP_HEADER));
        };
        let Some(signature) = signature.map(str::trim).filter(|s| !s.is_empty()) else {
            return fail(SignatureError::MissingHeader(SIGNATURE_HEADER));
        };
        let Some(partner) = self.partners.get(key) else {
            return fail(SignatureError::UnknownKey);
        };
        let used = match version.map(str::trim) {
            None | Some("1") => SignatureVersion::V1,
            Some("2") => SignatureVersion::V2,
            Some(_) => return fail(SignatureError::UnknownVersion),
        };
        if !partner.versions.contains(&used) {
            return fail(SignatureError::VersionNotAllowed {
                used: used.as_str(),
                allowed: partner
                    .versions
                    .iter()
                    .map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        if timestamp.len() > 12 || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
            return fail(SignatureError::MalformedTimestamp);
        }
        let Ok(sent) = timestamp.parse::<i64>() else {
            return fail(SignatureError::MalformedTimestamp);
        };
        let skew = sent - now_secs;
        if skew.unsigned_abs() > self.window_seconds {
            return fail(SignatureError::OutsideWindow {
                skew: skew.unsigned_abs(),
                direction: if skew > 0 { "ahead of" } else { "behind" },
                window: self.window_seconds,
            });
        }
        if let Some(n) = nonce
            && !is_valid_nonce(n)
        {
            return fail(SignatureError::MalformedNonce);
        }
        let Some(mac_bytes) = decode_mac(signature) else {
            return fail(SignatureError::BadSignature);
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(partner.secret.expose()) else {
            return fail(SignatureError::BadSignature);
        };
        match used {
            SignatureVersion::V1 => signed_text(&mut mac, timestamp, nonce, body),
            SignatureVersion::V2 => {
                mac.update(canonical_v2(line, timestamp, nonce, body).as_bytes());
            }
        }
        // verify_slice compares in constant time.
        if mac.verify_slice(&mac_bytes).is_err() {
            return fail(SignatureError::BadSignature);
        }
        Ok(Verified {
            principal: partner.principal.clone(),
            signature: hex::encode(mac_bytes),
        })
    }

    /// Checks an `Authorization` header value.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, AuthError> {
        let header = authorization.ok_or(AuthError::Missing)?;
        let (scheme, token) = header.split_once(' ').ok_or(AuthError::Invalid)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::Missing);
        }
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::Invalid);
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found: Option<&Principal> = None;
        for (candidate, principal) in &self.tokens {
            // Visit every entry whatever matched, so timing does not depend on position.
            if bool::from(candidate.ct_eq(&digest)) && found.is_none() {
                found = Some(principal);
            }
        }
        found.cloned().ok_or(AuthError::Invalid)
    }
}

/// The 32 bytes of a 64-digit hex MAC, or `None`.
fn decode_mac(hex_text: &str) -> Option<[u8; 32]> {
    if hex_text.len() != 64 {
        return None;
    }
    hex::decode(hex_text).ok()?.try_into().ok()
}

/// A nonce is 1 to [`NONCE_MAX_LEN`] unreserved URL characters: nothing that could be confused
/// with the `\n` separators of the signed text, nor need escaping anywhere.
fn is_valid_nonce(nonce: &str) -> bool {
    !nonce.is_empty()
        && nonce.len() <= NONCE_MAX_LEN
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
}

/// Feeds the signed text to the MAC: `timestamp \n body`, or `timestamp \n nonce \n body`.
/// The two forms cannot be confused: a timestamp is digits only and a nonce has no `\n`, so
/// the first line always ends the timestamp, and a nonce is only read when the header is sent.
fn signed_text(mac: &mut Hmac<Sha256>, timestamp: &str, nonce: Option<&str>, body: &[u8]) {
    mac.update(timestamp.as_bytes());
    mac.update(b"\n");
    if let Some(n) = nonce {
        mac.update(n.as_bytes());
        mac.update(b"\n");
    }
    mac.update(body);
}

/// Lowercase hex HMAC-SHA256 of `timestamp + "\n" + body`: what a partner sends as
/// `x-hotline-signature` (used by tests and the README's example).
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    sign_with_nonce(secret, timestamp, None, body)
}

/// Lowercase hex HMAC-SHA256 of `timestamp + "\n" + nonce + "\n" + body` (or, without a nonce,
/// of `timestamp + "\n" + body`): the signature to send with `x-hotline-nonce`.
pub fn sign_with_nonce(secret: &[u8], timestamp: &str, nonce: Option<&str>, body: &[u8]) -> String {
    match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mut mac) => {
            signed_text(&mut mac, timestamp, nonce, body);
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// The text a v2 signature signs, seven lines joined by `\n` (no trailing newline):
///
/// ```text
/// HOTLINE-HMAC-SHA256-V2
/// POST
/// /v1/tickets/320831-00000001/withdraw
/// limit=5&offset=0
/// 1767576600
/// 7f3c9a2e
/// 4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945
/// ```
///
/// the version tag, the method (upper case), the path as sent, the canonical query (see
/// [`canonical_query`]; empty line without one), the timestamp, the nonce (empty line without
/// one) and the lowercase hex SHA-256 of the body (of nothing for a GET). Hashing the body keeps
/// the text one fixed shape whatever the body holds.
pub fn canonical_v2(
    line: RequestLine<'_>,
    timestamp: &str,
    nonce: Option<&str>,
    body: &[u8],
) -> String {
    format!(
        "{V2_TAG}\n{}\n{}\n{}\n{timestamp}\n{}\n{}",
        line.method.to_ascii_uppercase(),
        line.path,
        canonical_query(line.query.unwrap_or("")),
        nonce.unwrap_or(""),
        hex::encode(Sha256::digest(body)),
    )
}

/// Characters escaped in a canonical query: everything but the unreserved `A-Z a-z 0-9 - . _ ~`
/// (RFC 3986), so every client's spelling of one value encodes alike.
const QUERY_ESCAPED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The query in one spelling: each `name=value` pair percent-decoded, then re-encoded with
/// upper-case escapes for every byte but the unreserved ones (`+` is a plus sign, `%2B`, not a
/// space), pairs without `=` given an empty value, empty pairs dropped, sorted by name then
/// value, joined by `&`. So `?offset=%30&limit=5` and `?limit=5&offset=0` sign alike.
pub fn canonical_query(query: &str) -> String {
    let encode = |text: &str| {
        let bytes: Vec<u8> = percent_encoding::percent_decode_str(text).collect();
        percent_encoding::percent_encode(&bytes, QUERY_ESCAPED).to_string()
    };
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (name, value) = p.split_once('=').unwrap_or((p, ""));
            (encode(name), encode(value))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Lowercase hex HMAC-SHA256 of [`canonical_v2`]: what a partner sends as `x-hotline-signature`
/// with `x-hotline-signature-version: 2`. `path_and_query` as sent (`/v1/tickets?x=1`).
pub fn sign_v2(
    secret: &[u8],
    method: &str,
    path_and_query: &str,
    timestamp: &str,
    nonce: Option<&str>,
    body: &[u8],
) -> String {
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_and_query, None),
    };
    let line = RequestLine {
        method,
        path,
        query,
    };
    match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(canonical_v2(line, timestamp, nonce, body).as_bytes());
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// Hex SHA-256 of a token, as `[[auth.tokens]] sha256` expects.
pub fn digest_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// `[auth]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// Bearer tokens, stored as SHA-256 digests.
    #[serde(default)]
    pub tokens: Vec<TokenSettings>,
    /// Partner systems that sign their requests (HMAC-SHA256) instead of sending a token.
    #[serde(default)]
    pub partners: Vec<PartnerSettings>,
    /// A signed request's timestamp may differ from the gateway's clock by at most this many
    /// seconds, either way; its signature is remembered for twice as long to refuse replays.
    #[serde(default = "default_signature_window")]
    pub signature_window_seconds: u64,
    /// The request rate each caller gets unless its entry says otherwise.
    #[serde(default)]
    pub rate_limit: RateLimitSettings,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            tokens: vec![],
            partners: vec![],
            signature_window_seconds: default_signature_window(),
            rate_limit: RateLimitSettings::default(),
        }
    }
}

fn default_signature_window() -> u64 {
    300
}

/// `[auth.rate_limit]`: a token bucket per caller name, shared by every gateway through Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Requests per second refilled into each caller's bucket; 0 means unlimited.
    pub per_second: u32,
    /// The bucket's size: how many requests may come at once after a quiet spell.
    pub burst: u32,
    /// Most `GET /v1/events` streams one caller (by name) may have open at once, across every
    /// gateway; 0 means unlimited. A stream is one request against the rate, however long it
    /// runs, so without this a caller could hold any number of them within its rate.
    #[serde(default = "default_max_event_streams")]
    pub max_event_streams: u32,
}

fn default_max_event_streams() -> u32 {
    16
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        RateLimitSettings {
            per_second: 2000,
            burst: 4000,
            max_event_streams: default_max_event_streams(),
        }
    }
}

/// Events a partner may ask to be called back about (used by outbound callbacks).
pub const CALLBACK_EVENTS: [&str; 6] = [
    "ticket.accepted",
    "ticket.assigned",
    "ticket.status_changed",
    "ticket.resolved",
    "ticket.returned",
    "sla.breached",
];

/// Shortest shared secret accepted, in bytes: HMAC keys shorter than this are guessable.
pub const MIN_SECRET_BYTES: usize = 32;

/// One `[[auth.partners]]` entry: a partner system that signs its requests.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerSettings {
    /// Who it is; appears in logs, metrics and the ticket's history as the actor.
    pub name: String,
    /// What it sends as `x-hotline-key`: names the secret without revealing it.
    pub key_id: String,
    /// The environment variable holding the shared secret (one of this or `secret_file`).
    #[serde(default)]
    pub secret_env: Option<String>,
    /// A file holding the shared secret; one trailing newline is ignored.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// Region code prefixes it is limited to; empty means everywhere.
    #[serde(default)]
    pub regions: Vec<String>,
    /// Requests per second for this partner (0: unlimited); default `auth.rate_limit`.
    #[serde(default)]
    pub rate_per_second: Option<u32>,
    /// Bucket size for this partner; default twice `rate_per_second` when that is set, else
    /// `auth.rate_limit.burst`.
    #[serde(default)]
    pub rate_burst: Option<u32>,
    /// Most event streams this partner may have open at once (0: unlimited); default
    /// `auth.rate_limit.max_event_streams`.
    #[serde(default)]
    pub max_event_streams: Option<u32>,
    /// Where outbound callbacks go (http or https); none means no callbacks.
    #[serde(default)]
    pub callback_url: Option<String>,
    /// Which events are called back (see [`CALLBACK_EVENTS`]).
    #[serde(default)]
    pub callback_events: Vec<String>,
    /// The signature forms this partner may use: `["v2"]` by default, `["v1", "v2"]` for a
    /// partner still moving off the first form, which covers neither method, path nor query.
    #[serde(default = "default_signature_versions")]
    pub signature_versions: Vec<String>,
}

fn default_signature_versions() -> Vec<String> {
    vec!["v2".to_string()]
}

impl PartnerSettings {
    /// The allowed signature versions; an error names `auth.partners[<index>].signature_versions`.
    pub fn versions(&self, index: usize) -> Result<Vec<SignatureVersion>, ConfigError> {
        if self.signature_versions.is_empty() {
            return Err(invalid(
                format!("auth.partners[{index}].signature_versions"),
                "must allow at least one version: [\"v2\"] (or [\"v1\", \"v2\"] while a partner moves off the first form)",
            ));
        }
        self.signature_versions
            .iter()
            .enumerate()
            .map(|(j, v)| {
                SignatureVersion::parse(v).ok_or_else(|| {
                    invalid(
                        format!("auth.partners[{index}].signature_versions[{j}]"),
                        format!("unknown version `{v}`; one of v1, v2"),
                    )
                })
            })
            .collect()
    }

    /// Reads the shared secret from its environment variable or file; `index` is the entry's
    /// position, so the error names the key (`auth.partners[1].secret_env`).
    pub fn load_secret(&self, index: usize) -> Result<Secret, ConfigError> {
        let at = |field: &str| format!("auth.partners[{index}].{field}");
        let (key, bytes) = match (&self.secret_env, &self.secret_file) {
            (Some(var), None) => {
                let value = std::env::var_os(var).ok_or_else(|| {
                    invalid(
                        at("secret_env"),
                        format!("environment variable `{var}` is not set"),
                    )
                })?;
                (at("secret_env"), value.into_encoded_bytes())
            }
            (None, Some(path)) => {
                let mut bytes = std::fs::read(path).map_err(|e| {
                    invalid(
                        at("secret_file"),
                        format!("cannot read {}: {}", path.display(), e.kind()),
                    )
                })?;
                if bytes.ends_with(b"\n") {
                    bytes.pop();
                    if bytes.ends_with(b"\r") {
                        bytes.pop();
                    }
                }
                (at("secret_file"), bytes)
            }
            (Some(_), Some(_)) => {
                return Err(invalid(
                    at("secret_env"),
                    "set either secret_env or secret_file, not both",
                ));
            }
            (None, None) => {
                return Err(invalid(
                    at("secret_env"),
                    "missing: set secret_env (an environment variable) or secret_file (a path); never the secret itself",
                ));
            }
        };
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(invalid(
                key,
                format!(
                    "the secret must be at least {MIN_SECRET_BYTES} bytes (e.g. `openssl rand -hex 32`)"
                ),
            ));
        }
        Ok(Secret::new(bytes))
    }
}

/// One `[[auth.tokens]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    /// Who holds it; appears in logs and the ticket's history.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Hex SHA-256 of the token; the token itself is never stored.
    pub sha256: String,
    /// Region code prefixes it is limited to; empty means everywhere.
    #[serde(default)]
    pub regions: Vec<String>,
    /// For `role = "agent"`: the agent this token acts as.
    #[serde(default)]
    pub agent_id: Option<String>,
    /// Requests per second for this token (0: unlimited); default `auth.rate_limit`.
    #[serde(default)]
    pub rate_per_second: Option<u32>,
    /// Bucket size for this token; default twice `rate_per_second` when that is set, else
    /// `auth.rate_limit.burst`.
    #[serde(default)]
    pub rate_burst: Option<u32>,
    /// Most event streams this token may have open at once (0: unlimited); default
    /// `auth.rate_limit.max_event_streams`.
    #[serde(default)]
    pub max_event_streams: Option<u32>,
}

impl AuthSettings {
    /// Checks every value whose type alone does not make it valid; partners' secrets are read
    /// to check them. Errors name the key (`auth.partners[1].secret_env`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (i, t) in self.tokens.iter().enumerate() {
            if t.name.trim().is_empty() {
                return Err(invalid(
                    format!("auth.tokens[{i}].name"),
                    "must not be empty",
                ));
            }
            if t.sha256.len() != 64 || hex::decode(&t.sha256).is_err() {
                return Err(invalid(
                    format!("auth.tokens[{i}].sha256"),
                    "must be 64 hex digits: the SHA-256 of the token (`printf %s TOKEN | sha256sum`)",
                ));
            }
            for (j, p) in t.regions.iter().enumerate() {
                check_region_prefix(&format!("auth.tokens[{i}].regions[{j}]"), p)?;
            }
            check_rate(
                &format!("auth.tokens[{i}]"),
                t.rate_per_second,
                t.rate_burst,
            )?;
        }
        if self.signature_window_seconds == 0 {
            return Err(invalid(
                "auth.signature_window_seconds",
                "must be greater than 0",
            ));
        }
        if self.signature_window_seconds > 86_400 {
            return Err(invalid(
                "auth.signature_window_seconds",
                "at most 86400: a long window lets a captured request be replayed for longer",
            ));
        }
        if self.rate_limit.per_second > 0 && self.rate_limit.burst == 0 {
            return Err(invalid(
                "auth.rate_limit.burst",
                "must be at least 1 when per_second is set (0 per_second means unlimited)",
            ));
        }
        let mut key_ids = std::collections::HashSet::new();
        for (i, p) in self.partners.iter().enumerate() {
            let at = |field: &str| format!("auth.partners[{i}].{field}");
            if p.name.trim().is_empty() {
                return Err(invalid(at("name"), "must not be empty"));
            }
            if p.key_id.is_empty()
                || p.key_id.len() > 64
                || !p
                    .key_id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            {
                return Err(invalid(
                    at("key_id"),
                    "1 to 64 letters, digits, `.`, `_` or `-`",
                ));
            }
            if !key_ids.insert(p.key_id.as_str()) {
                return Err(invalid(at("key_id"), "used by another partner"));
            }
            p.load_secret(i)?;
            p.versions(i)?;
            for (j, r) in p.regions.iter().enumerate() {
                check_region_prefix(&format!("auth.partners[{i}].regions[{j}]"), r)?;
            }
            check_rate(
                &format!("auth.partners[{i}]"),
                p.rate_per_second,
                p.rate_burst,
            )?;
            if let Some(url) = &p.callback_url {
                check_callback_url(&at("callback_url"), url)?;
            }
            for (j, e) in p.callback_events.iter().enumerate() {
                if !CALLBACK_EVENTS.contains(&e.as_str()) {
                    return Err(invalid(
                        format!("auth.partners[{i}].callback_events[{j}]"),
                        format!("unknown event `{e}`; one of {}", CALLBACK_EVENTS.join(", ")),
                    ));
                }
            }
            if !p.callback_events.is_empty() && p.callback_url.is_none() {
                return Err(invalid(
                    at("callback_url"),
                    "callback_events are set but no callback_url says where to send them",
                ));
            }
        }
        Ok(())
    }
}

/// A per-entry rate override: a burst needs a rate to refill it.
fn check_rate(entry: &str, per_second: Option<u32>, burst: Option<u32>) -> Result<(), ConfigError> {
    if per_second.is_some_and(|r| r > 0) && burst == Some(0) {
        return Err(invalid(
            format!("{entry}.rate_burst"),
            "must be at least 1 when rate_per_second is above 0",
        ));
    }
    Ok(())
}

/// A callback URL: absolute http or https with a host, no credentials in it.
fn check_callback_url(key: &str, url: &str) -> Result<(), ConfigError> {
    let uri: axum::http::Uri = url
        .parse()
        .map_err(|e| invalid(key, format!("not a URL: {e}")))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(invalid(key, "must start with http:// or https://")),
    }
    let Some(authority) = uri.authority() else {
        return Err(invalid(key, "must name a host"));
    };
    if authority.host().is_empty() {
        return Err(invalid(key, "must name a host"));
    }
    if authority.as_str().contains('@') {
        return Err(invalid(
            key,
            "must not carry credentials (user:password@); callbacks are signed instead",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The headers of a first-form signature (no nonce, no version).
    fn v1<'a>(
        key: Option<&'a str>,
        timestamp: Option<&'a str>,
        signature: Option<&'a str>,
    ) -> SignedHeaders<'a> {
        SignedHeaders {
            key,
            timestamp,
            signature,
            ..SignedHeaders::default()
        }
    }

    fn auth() -> Authenticator {
        Authenticator::new(&AuthSettings {
            tokens: vec![
                TokenSettings {
                    name: "partner-12345".into(),
                    role: Role::Partner,
                    sha256: digest_hex("s3cret-partner"),
                    regions: vec![],
                    agent_id: None,
                    rate_per_second: None,
                    rate_burst: None,
                    max_event_streams: None,
                },
                TokenSettings {
                    name: "operator-suining".into(),
                    role: Role::Operator,
                    sha256: digest_hex("s3cret-operator"),
                    regions: vec!["320831".into()],
                    agent_id: None,
                    rate_per_second: Some(5),
                    rate_burst: None,
                    max_event_streams: None,
                },
            ],
            ..Default::default()
        })
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef-partner";
    const LINE: RequestLine<'static> = RequestLine {
        method: "POST",
        path: "/v1/tickets",
        query: None,
    };

    fn with_partner() -> (Authenticator, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("secret");
        std::fs::write(&file, format!("{SECRET}\n")).expect("write");
        let settings = AuthSettings {
            partners: vec![PartnerSettings {
                name: "p-12345".into(),
                key_id: "k1".into(),
                secret_env: None,
                secret_file: Some(file),
                regions: vec!["3208".into()],
                rate_per_second: None,
                rate_burst: Some(7),
                max_event_streams: Some(2),
                callback_url: None,
                callback_events: vec![],
                signature_versions: vec!["v1".into(), "v2".into()],
            }],
            ..Default::default()
        };
        (Authenticator::from_settings(&settings).expect("loads"), dir)
    }

    #[test]
    fn a_correct_signature_names_the_partner_and_anything_else_says_why_not() {
        let (a, _dir) = with_partner();
        let now = 1_800_000_000;
        let body = br#"{"x":1}"#;
        let ts = now.to_string();
        let sig = sign(SECRET.as_bytes(), &ts, body);
        let v = a
            .verify_signed(v1(Some("k1"), Some(&ts), Some(&sig)), LINE, body, now)
            .expect("verifies");
        assert_eq!(v.principal.name, "p-12345");
        assert_eq!(v.principal.role, Role::Partner);
        assert!(v.principal.covers("320831") && !v.principal.covers("110101"));
        assert_eq!(v.signature, sig);
        // Upper-case hex is the same MAC, and the same replay key.
        let upper = a
            .verify_signed(
                v1(Some("k1"), Some(&ts), Some(&sig.to_uppercase())),
                LINE,
                body,
                now,
            )
            .expect("verifies");
        assert_eq!(upper.signature, sig);

        let reason = |r: Result<Verified, AuthError>| r.expect_err("refused").reason();
        assert_eq!(
            reason(a.verify_signed(v1(Some("k2"), Some(&ts), Some(&sig)), LINE, body, now)),
            "unknown_key"
        );
        assert_eq!(
            reason(a.verify_signed(v1(Some("k1"), Some(&ts), Some(&sig)), LINE, b"{}", now)),
            "bad_signature"
        );
        assert_eq!(
            reason(a.verify_signed(v1(Some("k1"), Some(&ts), Some("abc")), LINE, body, now)),
            "bad_signature"
        );
        assert_eq!(
            reason(a.verify_signed(v1(Some("k1"), Some("17e8"), Some(&sig)), LINE, body, now)),
            "malformed_timestamp"
        );
        assert_eq!(
            reason(a.verify_signed(v1(Some("k1"), Some("-5"), Some(&sig)), LINE, body, now)),
            "malformed_timestamp"
        );
        assert_eq!(
            reason(a.verify_signed(v1(None, Some(&ts), Some(&sig)), LINE, body, now)),
            "missing_signature_header"
        );
        for off in [301, -301] {
            let err = a
                .verify_signed(v1(Some("k1"), Some(&ts), Some(&sig)), LINE, body, now + off)
                .expect_err("outside");
            assert_eq!(err.reason(), "timestamp_outside_window");
            assert!(err.to_string().contains("301 s"), "{err}");
        }
        assert!(
            a.verify_signed(v1(Some("k1"), Some(&ts), Some(&sig)), LINE, body, now + 300)
                .is_ok()
        );
    }

    #[test]
    fn a_nonce_is_signed_too_and_the_old_form_stays_valid() {
        let (a, _dir) = with_partner();
        let now = 1_800_000_000;
        let body = br#"{"x":1}"#;
        let ts = now.to_string();
        let plain = sign(SECRET.as_bytes(), &ts, body);
        let n1 = sign_with_nonce(SECRET.as_bytes(), &ts, Some("r-1"), body);
        let n2 = sign_with_nonce(SECRET.as_bytes(), &ts, Some("r-2"), body);
        // Same body, same second: three different signatures, so three different replay keys.
        assert!(plain != n1 && n1 != n2 && plain != n2);
        assert_eq!(sign_with_nonce(SECRET.as_bytes(), &ts, None, body), plain);
        let ok = |sig: &str, nonce: Option<&str>| {
            a.verify_signed(
                SignedHeaders {
                    key: Some("k1"),
                    timestamp: Some(&ts),
                    signature: Some(sig),
                    nonce,
                    version: None,
                },
                LINE,
                body,
                now,
            )
        };
        assert_eq!(ok(&n1, Some("r-1")).expect("verifies").signature, n1);
        assert!(ok(&plain, None).is_ok());
        // The nonce is part of what is signed: another nonce, or none, does not verify.
        let reason = |r: Result<Verified, AuthError>| r.expect_err("refused").reason();
        assert_eq!(reason(ok(&n1, Some("r-2"))), "bad_signature");
        assert_eq!(reason(ok(&n1, None)), "bad_signature");
        assert_eq!(reason(ok(&plain, Some("r-1"))), "bad_signature");
        // Malformed nonces are named, before the MAC is even looked at.
        let long = "n".repeat(NONCE_MAX_LEN + 1);
        for bad in ["", "a b", "a\nb", "é", long.as_str()] {
            assert_eq!(reason(ok(&n1, Some(bad))), "malformed_nonce", "{bad:?}");
        }
        let max = "n".repeat(NONCE_MAX_LEN);
        let sig = sign_with_nonce(SECRET.as_bytes(), &ts, Some(&max), body);
        assert!(ok(&sig, Some(&max)).is_ok());
        let uuid = "0b9f8c1e-3a4d-4c6e-9f1a-2b3c4d5e6f70";
        let sig = sign_with_nonce(SECRET.as_bytes(), &ts, Some(uuid), body);
        assert!(ok(&sig, Some(uuid)).is_ok());
    }

    #[test]
    fn a_v2_signature_covers_method_path_and_query_and_the_query_is_canonical() {
        let (a, _dir) = with_partner();
        let now = 1_800_000_000;
        let ts = now.to_string();
        let sig = sign_v2(
            SECRET.as_bytes(),
            "GET",
            "/v1/tickets/320831-00000001/history?offset=0&limit=5",
            &ts,
            Some("n-1"),
            b"",
        );
        let check = |method, path, query| {
            a.verify_signed(
                SignedHeaders {
                    key: Some("k1"),
                    timestamp: Some(&ts),
                    signature: Some(&sig),
                    nonce: Some("n-1"),
                    version: Some("2"),
                },
                RequestLine {
                    method,
                    path,
                    query,
                },
                b"",
                now,
            )
            .map(|v| v.principal.name)
            .map_err(|e| e.reason())
        };
        let path = "/v1/tickets/320831-00000001/history";
        assert_eq!(
            check("GET", path, Some("limit=5&offset=%30")),
            Ok("p-12345".into())
        );
        assert_eq!(
            check("POST", path, Some("limit=5&offset=0")),
            Err("bad_signature")
        );
        assert_eq!(
            check(
                "GET",
                "/v1/tickets/320831-00000002/history",
                Some("limit=5&offset=0")
            ),
            Err("bad_signature")
        );
        assert_eq!(
            check("GET", path, Some("limit=5&offset=1")),
            Err("bad_signature")
        );
        assert_eq!(check("GET", path, None), Err("bad_signature"));

        assert_eq!(canonical_query("b=2&a=%7e&a=1&&c"), "a=1&a=~&b=2&c=");
        assert_eq!(canonical_query("q=a+b%2fc"), "q=a%2Bb%2Fc");
        assert_eq!(canonical_query(""), "");
        let text = canonical_v2(LINE, "17", None, b"");
        assert_eq!(
            text,
            "HOTLINE-HMAC-SHA256-V2\nPOST\n/v1/tickets\n\n17\n\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn signature_versions_are_checked_at_start_up_naming_the_key() {
        let entry = |versions: &[&str]| PartnerSettings {
            name: "p".into(),
            key_id: "k".into(),
            secret_env: None,
            secret_file: None,
            regions: vec![],
            rate_per_second: None,
            rate_burst: None,
            max_event_streams: None,
            callback_url: None,
            callback_events: vec![],
            signature_versions: versions.iter().map(|v| v.to_string()).collect(),
        };
        assert_eq!(
            entry(&["v2"]).versions(0).expect("valid"),
            vec![SignatureVersion::V2]
        );
        let err = entry(&["v2", "v3"]).versions(1).expect_err("unknown");
        assert!(
            err.to_string()
                .contains("auth.partners[1].signature_versions[1]"),
            "{err}"
        );
        let err = entry(&[]).versions(0).expect_err("empty");
        assert!(
            err.to_string()
                .contains("auth.partners[0].signature_versions"),
            "{err}"
        );
        // The default is v2 only: the first form must be allowed by name.
        assert_eq!(default_signature_versions(), vec!["v2".to_string()]);
    }

    #[test]
    fn event_stream_limits_resolve_from_the_entry_then_the_default() {
        let a = auth();
        assert_eq!(a.event_stream_limit("operator-suining"), 16);
        assert_eq!(a.event_stream_limit("nobody"), 16);
        let (p, _dir) = with_partner();
        assert_eq!(p.event_stream_limit("p-12345"), 2);
    }

    #[test]
    fn rate_limits_resolve_from_the_entry_then_the_defaults() {
        let a = auth();
        assert_eq!(
            a.rate_limit("operator-suining"),
            RateLimit {
                per_second: 5,
                burst: 10
            }
        );
        assert_eq!(
            a.rate_limit("partner-12345"),
            RateLimit {
                per_second: 2000,
                burst: 4000
            }
        );
        let (p, _dir) = with_partner();
        assert_eq!(
            p.rate_limit("p-12345"),
            RateLimit {
                per_second: 2000,
                burst: 7
            }
        );
    }

    #[test]
    fn a_secret_never_shows_in_debug_output() {
        let (a, _dir) = with_partner();
        let text = format!("{a:?}");
        assert!(!text.contains(SECRET), "{text}");
        assert!(text.contains("[redacted]"), "{text}");
    }

    #[test]
    fn a_configured_token_is_recognised_with_its_role_and_regions() {
        let p = auth()
            .authenticate(Some("Bearer s3cret-operator"))
            .expect("known");
        assert_eq!(p.role, Role::Operator);
        assert!(p.covers("320831"));
        assert!(!p.covers("320832"));
        let p = auth()
            .authenticate(Some("bearer s3cret-partner"))
            .expect("scheme is case-insensitive");
        assert!(p.covers("110101"));
    }

    #[test]
    fn missing_malformed_and_unknown_tokens_are_refused() {
        let a = auth();
        assert_eq!(a.authenticate(None), Err(AuthError::Missing));
        assert_eq!(a.authenticate(Some("Basic abc")), Err(AuthError::Missing));
        assert_eq!(a.authenticate(Some("Bearer")), Err(AuthError::Invalid));
        assert_eq!(a.authenticate(Some("Bearer  ")), Err(AuthError::Invalid));
        assert_eq!(a.authenticate(Some("Bearer nope")), Err(AuthError::Invalid));
    }

    #[test]
    fn the_wrong_role_is_forbidden_and_names_the_roles_allowed() {
        let p = auth()
            .authenticate(Some("Bearer s3cret-partner"))
            .expect("known");
        let err = p
            .require(&[Role::Supervisor, Role::Admin])
            .expect_err("403");
        assert!(err.to_string().contains("supervisor, admin"), "{err}");
        assert!(p.require(&[Role::Partner]).is_ok());
    }
}
