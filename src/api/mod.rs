//! The HTTP surface (DESIGN.md section 5): the router, the shared state, authentication as an
//! extractor, and the cross-cutting layers: request ids, one tracing span per request carrying
//! the ticket id, latency metrics, the body limit, and problem+json for everything that fails,
//! including unknown routes, wrong methods and panics.
//!
//! Partner signatures are verified by a middleware (`verify_signature`), not by the extractor:
//! the MAC covers the body, and an extractor that reads headers cannot see it. The middleware
//! runs inside the body limit, buffers the (already bounded) body of a signed request only,
//! verifies it, and leaves the partner's [`Principal`] in the request's extensions; the
//! [`Authenticated`] extractor takes it from there, or else checks the bearer token, and then
//! charges the caller's rate limit once.

pub mod actions;
pub mod agents;
pub mod audit;
pub mod body;
pub mod callbacks;
pub mod dashboard;
pub mod events;
pub mod json;
pub mod live;
pub mod ops;
pub mod problem;
pub mod search;
pub mod supervision;
pub mod tickets;
pub mod wire;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::{AuthError, Principal, SignatureError};
use crate::queues::{RateDecision, StoreError};
use crate::state::AppState;

use problem::ApiError;

/// Maps a store failure to its problem with the configured `Retry-After`.
pub trait StoreErrors {
    /// The problem for `e`.
    fn store_error(&self, e: StoreError) -> ApiError;
}

impl StoreErrors for AppState {
    fn store_error(&self, e: StoreError) -> ApiError {
        ApiError::from_store(e, self.settings.redis.retry_after_seconds)
    }
}

/// The authenticated caller; rejects with 401 before the handler runs, and with 429 when the
/// caller is over its rate.
pub struct Authenticated(pub Principal);

/// A partner whose signature verified, left in the request's extensions by `verify_signature`.
#[derive(Clone)]
struct SignedBy(Principal);

impl FromRequestParts<Arc<AppState>> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        authenticate(state, parts, None).await.map(Authenticated)
    }
}

/// Who is calling: the partner whose signature `verify_signature` checked, else the bearer
/// token of the `Authorization` header, else `query_token` (for `EventSource`, which cannot send
/// headers). Then charges the caller's rate once: every endpoint, `/v1/events` included, goes
/// through here, so every one is rate-limited alike.
pub(crate) async fn authenticate(
    state: &AppState,
    parts: &Parts,
    query_token: Option<&str>,
) -> Result<Principal, ApiError> {
    let principal = match parts.extensions.get::<SignedBy>() {
        Some(SignedBy(p)) => p.clone(),
        None => {
            let header = parts
                .headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .or_else(|| query_token.map(|t| format!("Bearer {t}")));
            state
                .auth
                .authenticate(header.as_deref())
                .inspect_err(|e| {
                    if !matches!(e, AuthError::Forbidden(_)) {
                        crate::metrics::auth_rejected(e.reason());
                    }
                })?
        }
    };
    tracing::Span::current().record("caller", principal.name.as_str());
    charge_rate(state, &principal.name).await?;
    agent_reach(state, principal).await
}

/// An agent's reach is its agent definition's county unless its token narrows it further: a
/// token without `regions` does not open every county to a lawyer of one. An agent token whose
/// agent is not defined reaches no county (the marker matches no region code).
async fn agent_reach(state: &AppState, mut principal: Principal) -> Result<Principal, ApiError> {
    const NOWHERE: &str = "-";
    if principal.role != crate::auth::Role::Agent || !principal.regions.is_empty() {
        return Ok(principal);
    }
    let county = match principal.agent_id.as_deref() {
        Some(id) => state
            .store
            .agent_home(id)
            .await
            .map_err(|e| state.store_error(e))?,
        None => None,
    };
    principal.regions = vec![county.unwrap_or_else(|| NOWHERE.to_string())];
    Ok(principal)
}

/// Takes one token from the caller's shared bucket. Fails open: when Redis cannot be asked the
/// request goes on (counted), and the handler answers 503 itself if it needs Redis.
async fn charge_rate(state: &AppState, name: &str) -> Result<(), ApiError> {
    let limit = state.auth.rate_limit(name);
    if limit.is_unlimited() {
        return Ok(());
    }
    match state
        .store
        .take_rate_token(name, limit.per_second, limit.burst)
        .await
    {
        Ok(RateDecision::Allowed) => Ok(()),
        Ok(RateDecision::Limited { retry_after_ms }) => {
            crate::metrics::rate_limited(name);
            Err(ApiError::RateLimited {
                principal: name.to_string(),
                retry_after: retry_after_ms.div_ceil(1000).max(1),
            })
        }
        Err(e) => {
            crate::metrics::rate_limit_error();
            tracing::warn!(error = %e, "rate limiter could not reach Redis; request let through");
            Ok(())
        }
    }
}

/// Verifies a signed request (any `x-hotline-*` header present) and leaves the partner in the
/// extensions; requests without those headers pass untouched, to the bearer-token check.
pub(crate) async fn verify_signature(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let headers = req.headers();
    let signed = [
        crate::auth::KEY_HEADER,
        crate::auth::TIMESTAMP_HEADER,
        crate::auth::SIGNATURE_HEADER,
        crate::auth::NONCE_HEADER,
        crate::auth::SIGNATURE_VERSION_HEADER,
    ]
    .iter()
    .any(|h| headers.contains_key(*h));
    if !signed {
        return next.run(req).await;
    }
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let key = text(crate::auth::KEY_HEADER);
    let timestamp = text(crate::auth::TIMESTAMP_HEADER);
    let signature = text(crate::auth::SIGNATURE_HEADER);
    // A nonce header that is present but not visible ASCII is refused as malformed, not ignored.
    let nonce = headers
        .get(crate::auth::NONCE_HEADER)
        .map(|v| v.to_str().unwrap_or("\u{0}").to_string());
    let version = headers
        .get(crate::auth::SIGNATURE_VERSION_HEADER)
        .map(|v| v.to_str().unwrap_or("\u{0}").to_string());
    let idempotent = is_idempotent_intake(req.method(), req.uri().path());
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);

    let (mut parts, body) = req.into_parts();
    // The body limit layers are outside this middleware: reading is bounded, and a chunked body
    // over the limit fails here with 413 like anywhere else.
    let mut probe = Request::new(body);
    *probe.extensions_mut() = parts.extensions.clone();
    let bytes = match Bytes::from_request(probe, &()).await {
        Ok(b) => b,
        Err(rejection) => return body::read_failure(rejection).into_response(),
    };
    let now_secs = state.store.now_ms().div_euclid(1000);
    let verified = match state.auth.verify_signed(
        crate::auth::SignedHeaders {
            key: key.as_deref(),
            timestamp: timestamp.as_deref(),
            signature: signature.as_deref(),
            nonce: nonce.as_deref(),
            version: version.as_deref(),
        },
        crate::auth::RequestLine {
            method: &method,
            path: &path,
            query: query.as_deref(),
        },
        &bytes,
        now_secs,
    ) {
        Ok(v) => v,
        Err(e) => {
            crate::metrics::auth_rejected(e.reason());
            return ApiError::Unauthenticated(e).into_response();
        }
    };
    let ttl_ms = state.auth.window_seconds().saturating_mul(2000);
    match state
        .store
        .remember_signature(&verified.signature, ttl_ms)
        .await
    {
        Ok(true) => {}
        // A retry of an intake request with the very same signature (a partner's HTTP client
        // retrying after a timeout, in the same second): intake is idempotent by (source,
        // external_id), so letting it through returns the ticket already registered, with 200,
        // and can never make a second one. A replay by someone else gains nothing either.
        Ok(false) if idempotent => {
            crate::metrics::signed_retry_allowed();
            tracing::debug!(partner = %verified.principal.name, "signed intake retry let through: idempotent");
        }
        Ok(false) => {
            let e = AuthError::Signature(SignatureError::Replayed);
            crate::metrics::auth_rejected(e.reason());
            return ApiError::Unauthenticated(e).into_response();
        }
        // Replays cannot be ruled out without Redis; nothing that needs a signature can be
        // done without it either.
        Err(e) => return state.store_error(e).into_response(),
    }
    parts.extensions.insert(SignedBy(verified.principal));
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// The endpoints whose effect is the same however often a request is repeated, so that a
/// repeated signature is harmless: ticket intake, idempotent by `(source, external_id)` (a repeat
/// answers `200` with the ticket already registered; different content is a `409`). Every other
/// signed request is refused when its signature was already used.
fn is_idempotent_intake(method: &axum::http::Method, path: &str) -> bool {
    method == axum::http::Method::POST && matches!(path, "/v1/tickets" | "/v1/tickets:batch")
}

/// Records latency by the matched route template (a closed set), not the raw path.
pub(crate) async fn record_latency(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = req.method().to_string();
    let response = next.run(req).await;
    crate::metrics::http_request(route, method, response.status().as_u16(), started.elapsed());
    response
}

/// Bounds the time one request waits for Redis, across all its commands, by
/// `redis.request_budget_ms`: under a stall every request answers `503` in that time, however
/// many commands it sends (see `queues::within_budget`).
pub(crate) async fn redis_budget(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let limit = Duration::from_millis(state.settings.redis.request_budget_ms);
    crate::queues::within_budget(limit, next.run(req)).await
}

/// Turns plain-text answers of tower layers (the body limit's 413) into problem+json.
pub(crate) async fn problem_for_layer_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && !is_problem {
        return ApiError::TooLarge("the body exceeds http.body_limit_bytes".into()).into_response();
    }
    response
}
