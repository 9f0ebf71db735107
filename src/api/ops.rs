//! Operational endpoints: queue state, health, readiness, metrics and the OpenAPI document.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::problem::ApiError;
use super::{Authenticated, StoreErrors};
use crate::auth::Role;
use crate::queues::QueueStats;
use crate::state::AppState;

/// `GET /v1/queues` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueuesResponse {
    /// Every queue the caller's regions cover, by name.
    pub queues: Vec<QueueStats>,
}

/// Depth, depth by warning level and oldest wait of every queue, read from Redis.
#[utoipa::path(
    get, path = "/v1/queues", tag = "queues",
    params(crate::api::supervision::RegionQuery),
    responses(
        (status = 200, description = "Queue state", body = QueuesResponse),
        (status = 401, description = "No or unknown token", body = super::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Role may not read queues", body = super::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Redis unreachable", body = super::problem::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn queues(
    State(state): State<Arc<AppState>>,
    Authenticated(principal): Authenticated,
    crate::api::json::QueryParams(q): crate::api::json::QueryParams<
        crate::api::supervision::RegionQuery,
    >,
) -> Result<axum::Json<QueuesResponse>, ApiError> {
    principal.require(&[Role::Operator, Role::Supervisor, Role::Admin, Role::Agent])?;
    let all = state
        .store
        .queue_stats(&state.settings.classify.warning_levels)
        .await
        .map_err(|e| state.store_error(e))?;
    let visible =
        crate::api::supervision::visible_counties(&state, &principal, q.region.as_deref()).await?;
    let agents = state
        .store
        .agents(None)
        .await
        .map_err(|e| state.store_error(e))?;
    let queues = all
        .into_iter()
        .filter(|q| visible.contains(&q.county))
        .map(|mut q| {
            q.agents_available = agents
                .iter()
                .filter(|a| {
                    a.spec.county() == Some(q.county.as_str())
                        && a.spec.status == crate::agents::AgentStatus::Available
                        && q.name
                            .starts_with(&format!("{}.", a.spec.kind.queue_kind()))
                })
                .count() as u32;
            q
        })
        .collect();
    Ok(axum::Json(QueuesResponse { queues }))
}

/// Health answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `unavailable` with the reason in `detail`.
    pub status: &'static str,
    /// Why not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Liveness: the process answers. Does not touch Redis, so a Redis outage does not get the
/// gateway restarted in a loop.
#[utoipa::path(get, path = "/healthz", tag = "ops",
    responses((status = 200, description = "Alive", body = Health)))]
pub async fn healthz() -> axum::Json<Health> {
    axum::Json(Health {
        status: "ok",
        detail: None,
    })
}

/// Readiness: Redis answers and the scripts are loaded. A calendar without holiday data for this
/// year or the next is named in `detail` but does not make the gateway unready: deadlines through
/// such a year are counted on the ordinary week and marked provisional (the State Council
/// publishes next year's schedule only in November or later).
#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "Not ready", body = super::problem::Problem, content_type = "application/problem+json")))]
pub async fn readyz(State(state): State<Arc<AppState>>) -> Result<axum::Json<Health>, ApiError> {
    if state.is_closing() {
        return Err(ApiError::NotReady("shutting down".into()));
    }
    state
        .store
        .ready()
        .await
        .map_err(|e| state.store_error(e))?;
    let missing: Vec<String> = state
        .sla
        .current()
        .missing_years()
        .iter()
        .map(|(c, y)| {
            format!(
                "calendar `{c}` has no holiday data for {y}: deadlines through it are provisional (ordinary week)"
            )
        })
        .collect();
    Ok(axum::Json(Health {
        status: "ok",
        detail: (!missing.is_empty()).then(|| missing.join("; ")),
    }))
}

/// How long `/metrics` waits for Redis before answering with the figures it read last: well
/// inside Prometheus' default 10 s scrape timeout and the "within a second".
const REDIS_BUDGET: std::time::Duration = std::time::Duration::from_millis(500);

/// Prometheus text. The deployment-wide gauges (queues, callback backlogs) are read from Redis
/// now, within [`REDIS_BUDGET`]: when Redis does not answer in time, the answer carries what was
/// read last, `hotline_redis_up 0` and how old that is (`hotline_redis_snapshot_age_seconds`).
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "Prometheus text format; answers within about half a second even while Redis stalls", body = String, content_type = "text/plain; version=0.0.4")))]
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let read = async {
        let stats = state
            .store
            .queue_stats(&state.settings.classify.warning_levels)
            .await?;
        crate::metrics::queues(&stats.iter().map(queue_figures).collect::<Vec<_>>());
        crate::callbacks::refresh_gauges(&state.store, &state.callbacks).await;
        let counties = state.all_counties().await?;
        let now = state.store.now_ms();
        let after_ms =
            i64::try_from(state.settings.archive.after_seconds.saturating_mul(1000)).unwrap_or(0);
        let (due, oldest) = state
            .store
            .archive_backlog(&counties, now - after_ms)
            .await?;
        let lag = oldest.map_or(0.0, |o| (now - after_ms - o) as f64 / 1000.0);
        crate::metrics::archive_backlog(due, lag);
        Ok::<_, crate::queues::StoreError>(())
    };
    match tokio::time::timeout(REDIS_BUDGET, read).await {
        Ok(Ok(())) => state.redis_snapshot.read(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "queue gauges not refreshed");
            state.redis_snapshot.missed();
        }
        Err(_) => {
            tracing::warn!(
                budget_ms = REDIS_BUDGET.as_millis() as u64,
                "Redis did not answer in time: /metrics shows the figures read last"
            );
            state.redis_snapshot.missed();
        }
    }
    state.redis_snapshot.publish();
    let mut response = state.metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// Reload the SLA configuration, holiday files, lexicon and model. They are in force when this
/// answers; open tickets' deadlines are then recomputed in the background (follow it with
/// `GET /v1/admin/reload`).
#[utoipa::path(
    post, path = "/v1/admin/reload", tag = "ops",
    responses(
        (status = 202, description = "Reloaded; open tickets are being recomputed (see `Location`)", body = crate::reload::ReloadReport,
            headers(("location" = String, description = "Where to follow the recomputation: /v1/admin/reload"))),
        (status = 401, description = "No or unknown token", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin, or an admin limited to some regions", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "A reload (or its recomputation) is already running on this gateway", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "The new configuration is invalid; the old one stays", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Redis unreachable, or the case archive could not take the audit entry (`/problems/archive-unavailable`): the action was not carried out", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn reload(
    State(state): State<Arc<AppState>>,
    Authenticated(principal): Authenticated,
    request_id: super::audit::RequestId,
) -> Result<Response, ApiError> {
    principal.require(&[Role::Admin])?;
    if !principal.regions.is_empty() {
        return Err(ApiError::Forbidden(format!(
            "a reload changes every county: it needs an admin without regions, and `{}` is limited to {}",
            principal.name,
            principal.regions.join(", ")
        )));
    }
    let audit = super::audit::Audit::begin(
        &state,
        &principal,
        &request_id,
        crate::archive::audit::ADMIN_RELOAD,
        None,
        serde_json::json!({"classifier_model": state.classifier().model()}),
    )
    .await?;
    let result = reloaded(&state, crate::reload::reload(&state).await);
    audit
        .finish(&result, |r| {
            serde_json::json!({
                "classifier_model": r.classifier_model,
                "calendars": r.calendars,
                "missing_years": r.missing_years,
            })
        })
        .await;
    result.map(|report| {
        (
            axum::http::StatusCode::ACCEPTED,
            [(
                header::LOCATION,
                HeaderValue::from_static("/v1/admin/reload"),
            )],
            axum::Json(report),
        )
            .into_response()
    })
}

/// A reload's result as the API answers it.
fn reloaded(
    state: &AppState,
    result: Result<crate::reload::ReloadReport, crate::reload::ReloadError>,
) -> Result<crate::reload::ReloadReport, ApiError> {
    match result {
        Ok(report) => Ok(report),
        Err(crate::reload::ReloadError::Running) => Err(ApiError::State(
            "a reload is already running on this gateway (or still recomputing open tickets: see GET /v1/admin/reload); try again when it has finished".into(),
        )),
        Err(crate::reload::ReloadError::Invalid(key, why)) => {
            Err(ApiError::Invalid(vec![super::problem::FieldError::new(
                key, why,
            )]))
        }
        Err(crate::reload::ReloadError::Store(e)) => Err(state.store_error(e)),
    }
}

/// How far the last reload's recomputation of open tickets has got on this gateway.
#[utoipa::path(
    get, path = "/v1/admin/reload", tag = "ops",
    responses(
        (status = 200, description = "The recomputation's progress", body = crate::sla::recompute::RecomputeStatus),
        (status = 401, description = "No or unknown token", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Neither an admin nor a supervisor", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn reload_progress(
    State(state): State<Arc<AppState>>,
    Authenticated(principal): Authenticated,
) -> Result<axum::Json<crate::sla::recompute::RecomputeStatus>, ApiError> {
    principal.require(&[Role::Admin, Role::Supervisor])?;
    Ok(axum::Json(state.recompute.status()))
}

/// A queue's numbers for the scrape-time gauges.
fn queue_figures(q: &QueueStats) -> crate::metrics::QueueFigures<'_> {
    crate::metrics::QueueFigures {
        queue: &q.name,
        depth_by_level: q
            .depth_by_level
            .iter()
            .map(|l| (l.level.as_str(), l.depth))
            .collect(),
        oldest_age_seconds: q.oldest_age_seconds,
        leased: q.leased,
        sla_compliance: q
            .sla
            .iter()
            .filter_map(|w| Some((w.window.as_str(), w.compliance?)))
            .collect(),
    }
}
