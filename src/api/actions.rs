//! `POST /v1/tickets/{id}/{action}`: the HTTP edge of the ticket's life. It parses the body,
//! hands the action to [`crate::handling`], and answers with the ticket (or the lease, or the
//! live transfer after a hang-up); refusals become problem+json here, once.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use utoipa::ToSchema;

use crate::api::Authenticated;
use crate::api::audit::{Audit, RequestId};
use crate::api::problem::ApiError;
use crate::api::wire::TicketView;
use crate::auth::{Principal, Role};
use crate::handling::{self, Done};
use crate::lifecycle::{Action, ActionRequest, TicketRecord};
use crate::state::AppState;

/// The answer to a renewal or a decline.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct LeaseView {
    /// The lease, unchanged.
    pub lease_id: String,
    /// Its new deadline.
    pub lease_expires_at: chrono::DateTime<chrono::Utc>,
}

/// Apply an action to a ticket.
#[utoipa::path(
    post, path = "/v1/tickets/{id}/{action}", tag = "lifecycle",
    params(
        ("id" = String, Path, description = "Ticket id"),
        ("action" = Action, Path, description = "accept, first_contact, pause, resume, resolve, follow_up, transfer, escalate, renew, return, dispute, reopen, raise, note, decline, cancel_live, end_call or withdraw"),
    ),
    request_body(content = ActionRequest, description = "Optional: no body at all, or a JSON object; resolve needs outcome and summary, follow_up needs satisfaction"),
    responses(
        (status = 200, description = "The ticket after the action", body = TicketView),
        (status = 400, description = "Malformed body", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or unknown token", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Wrong role or region, not the holder, or (partners) not the sender", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such ticket or action", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not allowed in the ticket's state", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid values (a transfer's `region_code` must be one of the deployment's `[counties]`)", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Redis unreachable; or, for a raise or a supervisor's transfer, the case archive could not take the audit entry (`/problems/archive-unavailable`): nothing was done", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn act(
    State(state): State<Arc<AppState>>,
    Authenticated(principal): Authenticated,
    request_id: RequestId,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    tracing::Span::current().record("ticket_id", id.as_str());
    let action = Action::parse(&action)
        .ok_or_else(|| ApiError::NotFound(format!("no action `{action}`")))?;
    principal.require(action.roles())?;
    let request = if body.iter().all(u8::is_ascii_whitespace) {
        ActionRequest::default()
    } else {
        let is_json = headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        crate::api::json::parse::<ActionRequest>(&body)?
    };
    let audit = match audited(action, &principal) {
        // A request refused on its face (invalid, or outside the caller's regions) is no
        // privileged action: checked before the intent; handling refuses it again.
        Some(_)
            if request
                .validate(action, &state.settings.classify.categories)
                .is_err()
                || !crate::queues::county_of(&id).is_some_and(|c| principal.covers(c)) =>
        {
            None
        }
        Some(name) => {
            Some(begin_audit(&state, &principal, &request_id, name, &id, &request).await?)
        }
        None => None,
    };
    let result = handling::act(&state, &principal, &id, action, &request)
        .await
        .map_err(|e| ApiError::from_handling(&state, e));
    if let Some(audit) = audit {
        audit
            .finish(&result, |done| match done {
                Done::Ticket(after) => serde_json::json!({"after": snapshot(after)}),
                Done::Lease { .. } => serde_json::json!({}),
            })
            .await;
    }
    Ok(match result? {
        Done::Lease {
            lease_id,
            expires_ms,
        } => axum::Json(LeaseView {
            lease_id,
            lease_expires_at: chrono::DateTime::from_timestamp_millis(expires_ms)
                .unwrap_or_default(),
        })
        .into_response(),
        Done::Ticket(record) if action == Action::CancelLive => {
            axum::Json(crate::api::live::cancel_view(&state, &record).await?).into_response()
        }
        Done::Ticket(record) => {
            axum::Json(crate::api::tickets::view(&state, &record)).into_response()
        }
    })
}

/// The audit action `action` is when `principal` takes it: every raise, and a transfer by a
/// supervisor or an admin (a reassignment rather than an agent passing its own work on).
fn audited(action: Action, principal: &Principal) -> Option<&'static str> {
    match action {
        Action::Raise => Some(crate::archive::audit::TICKET_RAISE),
        Action::Transfer if matches!(principal.role, Role::Supervisor | Role::Admin) => {
            Some(crate::archive::audit::TICKET_REASSIGN)
        }
        _ => None,
    }
}

/// Records the intent of a raise or reassignment: what was asked (the reason and, for a
/// transfer, where to; never the note, which may quote the caller) and the ticket as it stands.
async fn begin_audit<'a>(
    state: &'a AppState,
    principal: &Principal,
    request_id: &RequestId,
    name: &str,
    id: &str,
    request: &ActionRequest,
) -> Result<Audit<'a>, ApiError> {
    let before = state
        .store
        .ticket(id)
        .await
        .map_err(|e| ApiError::from_store(e, state.settings.redis.retry_after_seconds))?;
    let mut asked = serde_json::json!({
        "reason": request.reason,
        "service": request.service,
        "category": request.category,
        "town": request.town,
        "village": request.village,
        "grid": request.grid,
        "region_code": request.region_code,
    });
    if let Some(fields) = asked.as_object_mut() {
        fields.retain(|_, v| !v.is_null());
    }
    let detail = serde_json::json!({
        "asked": asked,
        "before": before.as_ref().map(snapshot),
    });
    Audit::begin(state, principal, request_id, name, Some(id), detail).await
}

/// What a raise or reassignment changes of a ticket: status, place, labels, band, holder (no
/// personal data).
fn snapshot(record: &TicketRecord) -> serde_json::Value {
    serde_json::json!({
        "status": record.stored.status.as_str(),
        "queue": record.stored.queue,
        "service": record.service,
        "category": record.category,
        "level": record.level,
        "band": record.band,
        "region": record.region_path,
        "agent": record.assigned_agent,
    })
}
