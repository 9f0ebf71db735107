//! The callbacks' admin endpoints: what the outboxes hold, and replaying dead letters.

use std::sync::Arc;

use serde::Serialize;

use crate::api::StoreErrors;

/// A callback to a partner (事件反馈): the body the gateway POSTs to the partner's
/// `callback_url` (`crate::callbacks::CallbackBody`), documented as the OpenAPI `webhooks`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PartnerCallback {
    /// Stable across retries and replays (`<county>:<outbox entry>`): dedupe on it. Also sent
    /// as the `idempotency-key` header.
    #[schema(example = "320831:1763952000123-0")]
    pub delivery_id: String,
    /// What happened.
    pub event: CallbackEvent,
    /// The gateway's ticket id.
    #[schema(example = "320831-00000042")]
    pub ticket_id: String,
    /// The partner's own ticket id, as it sent it.
    #[schema(example = "SQ-20261124-0001")]
    pub external_id: String,
    /// The hotline the ticket came from (`12345`, `110`, `12348`).
    #[schema(example = "12345")]
    pub source: String,
    /// The ticket's status after the event; absent when the event changed none (`sla.breached`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// When it happened (RFC 3339, Redis clock).
    pub occurred_at: chrono::DateTime<chrono::Utc>,
    /// Details, all strings: `queue`; `agent` (assigned); `outcome`, `summary` (resolved);
    /// `reason` (returned, disputed, withdrawn, …); `satisfaction` (follow-up); `clock`,
    /// `due_ms`, `actions` (`sla.breached`).
    pub details: std::collections::BTreeMap<String, String>,
}

/// The events a partner may subscribe to (`callback_events`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub enum CallbackEvent {
    /// Registered here (受理).
    #[serde(rename = "ticket.accepted")]
    Accepted,
    /// An agent accepted it.
    #[serde(rename = "ticket.assigned")]
    Assigned,
    /// Any other status change (transfer, escalation, first contact, reopen, withdrawal, …).
    #[serde(rename = "ticket.status_changed")]
    StatusChanged,
    /// Resolved, with `outcome` and `summary`.
    #[serde(rename = "ticket.resolved")]
    Resolved,
    /// Sent back (退单), with `reason`; also a ticket classified out of scope at once.
    #[serde(rename = "ticket.returned")]
    Returned,
    /// A clock breached (`details.clock`).
    #[serde(rename = "sla.breached")]
    SlaBreached,
}

/// One (county, partner) outbox, for `GET /v1/admin/callbacks`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OutboxView {
    /// The partner.
    pub partner: String,
    /// The county.
    pub county: String,
    /// Events not yet delivered.
    pub pending: u64,
    /// Failed attempts at the oldest one.
    pub attempts: u32,
    /// No attempt before this.
    pub next_attempt_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The oldest one's last error (a status or transport error; never a body).
    pub last_error: Option<String>,
    /// Dead letters waiting for a replay.
    pub dead: u64,
    /// The newest dead letters (at most 20): the event, its fields, attempts and last error.
    pub dead_letters: Vec<serde_json::Value>,
}

/// `GET /v1/admin/callbacks` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OutboxList {
    /// Every (county, partner) outbox that holds something or has dead letters.
    pub outboxes: Vec<OutboxView>,
}

/// `POST /v1/admin/callbacks/replay` body.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// The partner whose dead letters go back to its outbox.
    pub partner: String,
    /// Only this county (default: every county of the admin's regions).
    pub county: Option<String>,
}

/// `POST /v1/admin/callbacks/replay` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReplayView {
    /// Dead letters put back for delivery.
    pub replayed: u64,
}

/// Callback outboxes: what is pending, failing or dead, per partner and county.
#[utoipa::path(
    get, path = "/v1/admin/callbacks", tag = "ops",
    responses(
        (status = 200, description = "Outboxes", body = OutboxList),
        (status = 403, description = "Not an admin or supervisor", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    axum::extract::State(state): axum::extract::State<Arc<crate::state::AppState>>,
    crate::api::Authenticated(principal): crate::api::Authenticated,
) -> Result<axum::Json<OutboxList>, crate::api::problem::ApiError> {
    use crate::auth::Role;
    principal.require(&[Role::Admin, Role::Supervisor])?;
    let counties = state
        .store
        .counties()
        .await
        .map_err(|e| state.store_error(e))?;
    let mut outboxes = Vec::new();
    for county in counties.iter().filter(|c| principal.covers(c)) {
        for target in state.callbacks.targets() {
            let s = state
                .store
                .outbox_state(county, &target.partner)
                .await
                .map_err(|e| state.store_error(e))?;
            if s.pending == 0 && s.dead == 0 {
                continue;
            }
            let dead_letters = state
                .store
                .outbox_dead_letters(county, &target.partner, 20)
                .await
                .map_err(|e| state.store_error(e))?
                .iter()
                .filter_map(|j| serde_json::from_str(j).ok())
                .collect();
            outboxes.push(OutboxView {
                partner: target.partner.clone(),
                county: county.clone(),
                pending: s.pending,
                attempts: s.attempts,
                next_attempt_at: (s.next_at_ms > 0)
                    .then(|| chrono::DateTime::from_timestamp_millis(s.next_at_ms))
                    .flatten(),
                last_error: s.last_error,
                dead: s.dead,
                dead_letters,
            });
        }
    }
    Ok(axum::Json(OutboxList { outboxes }))
}

/// Puts a partner's dead letters back in its outbox, for delivery in order after what is
/// already pending (each keeps its `delivery_id` fields; the partner dedupes).
#[utoipa::path(
    post, path = "/v1/admin/callbacks/replay", tag = "ops",
    request_body = ReplayRequest,
    responses(
        (status = 200, description = "Replayed", body = ReplayView),
        (status = 400, description = "Malformed body", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin of that county", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown partner", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Redis unreachable, or the case archive could not take the audit entry (`/problems/archive-unavailable`): the action was not carried out", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn replay(
    axum::extract::State(state): axum::extract::State<Arc<crate::state::AppState>>,
    crate::api::Authenticated(principal): crate::api::Authenticated,
    request_id: crate::api::audit::RequestId,
    crate::api::json::JsonBody(request): crate::api::json::JsonBody<ReplayRequest>,
) -> Result<axum::Json<ReplayView>, crate::api::problem::ApiError> {
    use crate::api::problem::{ApiError, FieldError};
    principal.require(&[crate::auth::Role::Admin])?;
    if state.callbacks.target(&request.partner).is_none() {
        return Err(ApiError::Invalid(vec![FieldError::new(
            "partner",
            format!("`{}` is not a partner with a callback URL", request.partner),
        )]));
    }
    let counties = match &request.county {
        Some(c) if !principal.covers(c) => {
            return Err(ApiError::Forbidden(format!(
                "county {c} is outside the regions of `{}`",
                principal.name
            )));
        }
        Some(c) => vec![c.clone()],
        None => state
            .store
            .counties()
            .await
            .map_err(|e| state.store_error(e))?
            .into_iter()
            .filter(|c| principal.covers(c))
            .collect(),
    };
    let audit = crate::api::audit::Audit::begin(
        &state,
        &principal,
        &request_id,
        crate::archive::audit::CALLBACKS_REPLAY,
        Some(&request.partner),
        serde_json::json!({"counties": counties}),
    )
    .await?;
    let mut replayed = 0;
    let mut result = Ok(());
    for county in counties {
        match state.store.outbox_replay(&county, &request.partner).await {
            Ok(n) => replayed += n,
            Err(e) => {
                result = Err(state.store_error(e));
                break;
            }
        }
        state.mover.wake_outboxes(&county);
    }
    // Counties replayed before a failure stay replayed: the outcome says how many letters.
    audit
        .finish_with(&result, serde_json::json!({"replayed": replayed}))
        .await;
    result?;
    tracing::info!(partner = %request.partner, replayed, "dead letters replayed");
    Ok(axum::Json(ReplayView { replayed }))
}
