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
use crate::api::problem::ApiError;
use crate::api::wire::TicketView;
use crate::handling::{self, Done};
use crate::lifecycle::{Action, ActionRequest};
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
        (status = 503, description = "Redis unreachable", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn act(
    State(state): State<Arc<AppState>>,
    Authenticated(principal): Authenticated,
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
    let done = handling::act(&state, &principal, &id, action, &request)
        .await
        .map_err(|e| ApiError::from_handling(&state, e))?;
    Ok(match done {
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
