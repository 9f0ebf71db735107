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

pub mod body;
pub mod json;
pub mod ops;
pub mod problem;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;

use crate::auth::{AuthError, Authenticator, Principal, SignatureError};
use crate::classify::Classifier;
use crate::config::Settings;
use crate::queues::{RateDecision, Store, StoreError};
use crate::routing::Router as TicketRouter;

use problem::ApiError;

/// Everything a handler needs, built once at start-up.
pub struct AppState {
    /// Validated settings.
    pub settings: Settings,
    /// The Redis store.
    pub store: Store,
    /// The classifier in force (pure; swapped whole on reload).
    pub classifier: std::sync::RwLock<Arc<Classifier>>,
    /// The routing table (pure).
    pub router: TicketRouter,
    /// Configured tokens.
    pub auth: Authenticator,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// SLA calendars and policies in force (swapped on reload).
    pub sla: crate::sla::Sla,
    /// Wakes the SLA timer mover when new timers are scheduled.
    pub mover: crate::sla::mover::MoverHandle,
    /// The `--config` file, re-read on reload.
    pub config_path: Option<std::path::PathBuf>,
    /// Live transfer: reservation length, duty hours, presence.
    pub live: crate::live::LiveConfig,
    /// Partner callback targets and delivery settings.
    pub callbacks: Arc<crate::callbacks::Callbacks>,
}

impl AppState {
    /// The classifier in force; callers keep the `Arc` for one decision, so a reload never
    /// mixes an old lexicon with a new model.
    pub fn classifier(&self) -> Arc<Classifier> {
        match self.classifier.read() {
            Ok(c) => Arc::clone(&c),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Puts a newly loaded classifier in force.
    pub fn replace_classifier(&self, classifier: Classifier) {
        let new = Arc::new(classifier);
        match self.classifier.write() {
            Ok(mut c) => *c = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
    }

    /// Maps a store failure with the configured `Retry-After`.
    pub fn store_error(&self, e: StoreError) -> ApiError {
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
async fn verify_signature(
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
    let idempotent = is_idempotent_intake(req.method(), req.uri().path());

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
        key.as_deref(),
        timestamp.as_deref(),
        signature.as_deref(),
        nonce.as_deref(),
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

/// The OpenAPI document, generated from the handlers' annotations.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "hotline-gateway",
        description = "Receives, classifies and routes 12345 / 110 / 12348 hotline tickets to lawyers' and mediators' queues. Errors are application/problem+json."
    ),
    paths(
        crate::intake::create_ticket,
        crate::intake::create_batch,
        crate::intake::get_ticket,
        crate::lifecycle::act,
        crate::agents::api::put_agent,
        crate::agents::api::list_agents,
        crate::agents::api::delete_agent,
        crate::agents::api::claim,
        crate::agents::api::offers,
        crate::live::api::get_live,
        crate::live::api::heartbeat,
        crate::lifecycle::reload_endpoint,
        crate::callbacks::api::list,
        crate::callbacks::api::replay,
        ops::queues,
        crate::events::events,
        crate::supervision::risk,
        crate::supervision::today,
        ops::healthz,
        ops::readyz,
        ops::metrics,
        ops::openapi,
    ),
    components(schemas(crate::lifecycle::Action)),
    modifiers(&BearerAuth, &PartnerSignature, &CommonProblems),
    tags(
        (name = "intake", description = "Tickets in"),
        (name = "lifecycle", description = "Accept, contact, pause, resolve, follow up, transfer, escalate"),
        (name = "agents", description = "Lawyers, mediators and triage operators; claims and leases"),
        (name = "live", description = "Live transfer while the caller waits: reservations, estimates, presence"),
        (name = "queues", description = "Queue state"),
        (name = "ops", description = "Health, readiness, metrics")
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The problems any authenticated operation can answer, declared once instead of on every
/// handler: each is a problem+json, and an operation keeps its own, more specific, description
/// where it has one.
struct CommonProblems;

impl utoipa::Modify for CommonProblems {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
        const COMMON: [(&str, &str); 8] = [
            (
                "400",
                "Malformed: not JSON, a wrong type, or a bad query parameter",
            ),
            ("401", "No or unknown credentials, or a refused signature"),
            ("403", "Wrong role, or outside the caller's regions"),
            ("413", "Body over `http.body_limit_bytes`"),
            ("415", "A body that is not `application/json`"),
            ("422", "Invalid values; every field named"),
            ("429", "Over the caller's rate; see `Retry-After`"),
            (
                "503",
                "Redis unreachable; nothing written; see `Retry-After`",
            ),
        ];
        // An agent is its definition (which refuses unknown fields as a request body) flattened
        // with its live figures: as a response, the definition part must allow the figures.
        if let Some(schema) = openapi
            .components
            .as_mut()
            .and_then(|c| c.schemas.get_mut("Agent"))
            && let Ok(mut v) = serde_json::to_value(&*schema)
        {
            fn allow_more(v: &mut serde_json::Value) {
                match v {
                    serde_json::Value::Object(m) => {
                        m.remove("additionalProperties");
                        m.values_mut().for_each(allow_more);
                    }
                    serde_json::Value::Array(a) => a.iter_mut().for_each(allow_more),
                    _ => {}
                }
            }
            allow_more(&mut v);
            if let Ok(relaxed) = serde_json::from_value(v) {
                *schema = relaxed;
            }
        }
        for item in openapi.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                if op.security.as_ref().is_none_or(Vec::is_empty) {
                    continue;
                }
                let with_body = op.request_body.is_some().then_some((
                    "408",
                    "The body did not arrive within `http.body_read_timeout_seconds` of the headers",
                ));
                for (code, description) in COMMON.into_iter().chain(with_body) {
                    op.responses
                        .responses
                        .entry(code.to_string())
                        .or_insert_with(|| {
                            RefOr::T(
                                ResponseBuilder::new()
                                    .description(description)
                                    .content(
                                        "application/problem+json",
                                        ContentBuilder::new()
                                            .schema(Some(RefOr::Ref(Ref::from_schema_name(
                                                "Problem",
                                            ))))
                                            .build(),
                                    )
                                    .build(),
                            )
                        });
                }
            }
        }
    }
}

/// Declares signed requests as an alternative security scheme, and 429 on the intake
/// endpoints; done here so the intake handlers' annotations stay as they are.
struct PartnerSignature;

impl utoipa::Modify for PartnerSignature {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
        use utoipa::openapi::{Ref, RefOr, ResponseBuilder};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "partner_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                crate::auth::SIGNATURE_HEADER,
                "Partner systems: lowercase hex HMAC-SHA256 of `timestamp + \"\\n\" + body` (a GET signs an empty body), or of `timestamp + \"\\n\" + nonce + \"\\n\" + body` when the optional `x-hotline-nonce` header is sent (1 to 64 of A-Z a-z 0-9 - _ . ~; recommended: a fresh one per request and per retry), with the partner's shared secret, sent with `x-hotline-key` (the partner's key_id) and `x-hotline-timestamp` (Unix seconds, within auth.signature_window_seconds of the gateway's clock). Each signature is accepted once, except on POST /v1/tickets and POST /v1/tickets:batch, which are idempotent by (source, external_id): a repeated signature there gets the ticket already registered (200). 401 problem+json says why a signature was refused.",
            ))),
        );
        for (path, is_get) in [
            ("/v1/tickets", false),
            ("/v1/tickets:batch", false),
            ("/v1/events", true),
        ] {
            let Some(item) = openapi.paths.paths.get_mut(path) else {
                continue;
            };
            let Some(op) = (if is_get {
                item.get.as_mut()
            } else {
                item.post.as_mut()
            }) else {
                continue;
            };
            op.responses.responses.entry("429".to_string()).or_insert(
                RefOr::T(
                    ResponseBuilder::new()
                        .description("Over the caller's rate ([auth.rate_limit]): problem+json `/problems/rate-limited` with `Retry-After` (whole seconds)")
                        .content(
                            "application/problem+json",
                            utoipa::openapi::ContentBuilder::new()
                                .schema(Some(RefOr::Ref(Ref::from_schema_name("Problem"))))
                                .build(),
                        )
                        .build(),
                ),
            );
            let security = op.security.get_or_insert_with(Vec::new);
            if security.is_empty() {
                security.push(SecurityRequirement::new("bearer", Vec::<String>::new()));
            }
            security.push(SecurityRequirement::new(
                "partner_signature",
                Vec::<String>::new(),
            ));
        }
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Builds the complete HTTP application.
pub fn app(state: Arc<AppState>) -> Router {
    let body_limit = state.settings.http.body_limit_bytes;
    Router::new()
        .route("/v1/tickets", post(crate::intake::create_ticket))
        .route("/v1/tickets:batch", post(crate::intake::create_batch))
        .route("/v1/tickets/{id}", get(crate::intake::get_ticket))
        .route("/v1/tickets/{id}/live", get(crate::live::api::get_live))
        .route("/v1/tickets/{id}/{action}", post(crate::lifecycle::act))
        .route("/v1/agents", get(crate::agents::api::list_agents))
        .route(
            "/v1/agents/{id}",
            axum::routing::put(crate::agents::api::put_agent)
                .delete(crate::agents::api::delete_agent),
        )
        .route("/v1/agents/{id}/claim", post(crate::agents::api::claim))
        .route("/v1/agents/{id}/offers", get(crate::agents::api::offers))
        .route(
            "/v1/agents/{id}/heartbeat",
            post(crate::live::api::heartbeat),
        )
        .route("/v1/admin/reload", post(crate::lifecycle::reload_endpoint))
        .route("/v1/admin/callbacks", get(crate::callbacks::api::list))
        .route(
            "/v1/admin/callbacks/replay",
            post(crate::callbacks::api::replay),
        )
        .route("/v1/queues", get(ops::queues))
        .route("/v1/events", get(crate::events::events))
        .route("/v1/dashboard/risk", get(crate::supervision::risk))
        .route("/v1/dashboard/today", get(crate::supervision::today))
        .route("/metrics", get(ops::metrics))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/openapi.json", get(ops::openapi))
        .merge(crate::dashboard::routes())
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            verify_signature,
        ))
        .layer(middleware::from_fn(record_latency))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(|req: &Request| {
                            let request_id = req
                                .headers()
                                .get(REQUEST_ID)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("-");
                            tracing::info_span!(
                                "request",
                                method = %req.method(),
                                path = %req.uri().path(),
                                request_id,
                                caller = tracing::field::Empty,
                                ticket_id = tracing::field::Empty,
                            )
                        })
                        .on_request(())
                        .on_response(
                            tower_http::trace::DefaultOnResponse::new().level(tracing::Level::INFO),
                        ),
                )
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(middleware::from_fn(problem_for_layer_errors))
                .layer(CatchPanicLayer::custom(|_panic| {
                    ApiError::Internal("handler panicked".into()).into_response()
                }))
                .layer(RequestBodyLimitLayer::new(body_limit))
                .layer(DefaultBodyLimit::max(body_limit)),
        )
        .with_state(state)
}

/// Records latency by the matched route template (a closed set), not the raw path.
async fn record_latency(req: Request, next: Next) -> Response {
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

/// Turns plain-text answers of tower layers (the body limit's 413) into problem+json.
async fn problem_for_layer_errors(req: Request, next: Next) -> Response {
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
