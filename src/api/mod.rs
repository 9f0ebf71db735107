//! The HTTP surface (DESIGN.md section 5): the router, the shared state, authentication as an
//! extractor, and the cross-cutting layers: request ids, one tracing span per request carrying
//! the ticket id, latency metrics, the body limit, and problem+json for everything that fails,
//! including unknown routes, wrong methods and panics.

pub mod json;
pub mod ops;
pub mod problem;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts, MatchedPath, Request};
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

use crate::auth::{Authenticator, Principal};
use crate::classify::Classifier;
use crate::config::Settings;
use crate::queues::{Store, StoreError};
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

/// The authenticated caller; rejects with 401 before the handler runs.
pub struct Authenticated(pub Principal);

impl FromRequestParts<Arc<AppState>> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let principal = state.auth.authenticate(header)?;
        tracing::Span::current().record("caller", principal.name.as_str());
        Ok(Authenticated(principal))
    }
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
        crate::callbacks::list,
        crate::callbacks::replay,
        ops::queues,
        crate::events::events,
        crate::supervision::risk,
        crate::supervision::today,
        ops::healthz,
        ops::readyz,
        ops::metrics,
        ops::openapi,
    ),
    modifiers(&BearerAuth),
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
        .route("/v1/admin/callbacks", get(crate::callbacks::list))
        .route("/v1/admin/callbacks/replay", post(crate::callbacks::replay))
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
