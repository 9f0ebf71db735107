//! `POST /v1/tickets`, `POST /v1/tickets:batch`, `GET /v1/tickets/{id}`: the HTTP edge of
//! intake. A request is validated here (every bad field named), registered by
//! [`crate::intake`], and answered `201` (new), `200` (the same ticket again) or a problem.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use tracing::Instrument;

use crate::api::json::JsonBody;
use crate::api::problem::{ApiError, FieldError};
use crate::api::{Authenticated, StoreErrors};
use crate::auth::{Principal, Role};
use crate::intake::{IntakeError, Received};
use crate::lifecycle::{StoredTicket, TicketRecord};
use crate::metrics;
use crate::sla::SlaConfig;
use crate::sla::policy::ClockName;
use crate::state::AppState;

use super::wire::{
    BatchItem, BatchRequest, BatchResponse, SlaDeadlines, TicketReceipt, TicketRequest, TicketView,
};

/// Roles that may hand tickets over.
const SENDERS: &[Role] = &[Role::Partner, Role::Operator, Role::Admin];

/// Receive one ticket.
#[utoipa::path(
    post, path = "/v1/tickets", tag = "intake",
    request_body = TicketRequest,
    responses(
        (status = 201, description = "New ticket registered", body = TicketReceipt),
        (status = 200, description = "The same sender's (source, external_id) and content again: the same ticket. Keys are per sender: a partner's ids are its own (by its configured name), the consoles (operators, admins) share one space; another sender's equal id is a different ticket", body = TicketReceipt),
        (status = 400, description = "Malformed JSON or a field of the wrong type", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or unknown token", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Wrong role or region", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The sender's (source, external_id) again with different content (`ticket_id` names the ticket), or with another region.code: one key is one ticket in one county across the deployment (`errors` names `region.code` and the county that holds it)", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over the limit", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid values; every field named (a `region.code` that is not one of the deployment's `[counties]` too)", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Redis cannot take it; `detail` says whether the ticket may have been registered (retry with the same external_id); see Retry-After", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_ticket(
    State(state): State<Arc<AppState>>,
    Authenticated(principal): Authenticated,
    JsonBody(request): JsonBody<TicketRequest>,
) -> Result<impl IntoResponse, ApiError> {
    principal.require(SENDERS)?;
    let (status, mut receipt, live_asked) = receive(&state, &principal, &request).await?;
    // A live transfer starts only for a ticket registered with `"live": true` (a retry of that
    // request answers where the transfer stands); a resend that adds `live` to a ticket
    // registered without it, or to one already withdrawn, changes nothing.
    if request.live == Some(true) && live_asked {
        let mode = receipt
            .classification
            .get("service")
            .and_then(|s| s.as_str())
            .map_or("", |s| {
                crate::live::transfer_mode(&state.live, s, Utc::now())
            });
        receipt.live = Some(super::live::start(&state, &principal, &receipt.id, mode).await?);
    }
    Ok((status, axum::Json(receipt)))
}

/// Receive many tickets; each succeeds or fails alone, results in request order.
#[utoipa::path(
    post, path = "/v1/tickets:batch", tag = "intake",
    request_body = BatchRequest,
    responses(
        (status = 200, description = "Per-item results, in order", body = BatchResponse),
        (status = 400, description = "Malformed JSON", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or unknown token", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Wrong role", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large or too many items", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_batch(
    State(state): State<Arc<AppState>>,
    Authenticated(principal): Authenticated,
    JsonBody(batch): JsonBody<BatchRequest>,
) -> Result<axum::Json<BatchResponse>, ApiError> {
    principal.require(SENDERS)?;
    let max = state.settings.intake.batch_max;
    if batch.tickets.len() > max {
        return Err(ApiError::TooLarge(format!(
            "{} tickets in one batch; at most {max}",
            batch.tickets.len()
        )));
    }
    if batch.tickets.is_empty() {
        return Err(ApiError::Invalid(vec![FieldError::new(
            "tickets",
            "must hold at least one ticket",
        )]));
    }
    // Items run concurrently over the multiplexed connection: Redis sees them pipelined.
    let handles: Vec<_> = batch
        .tickets
        .into_iter()
        .enumerate()
        .map(|(index, value)| {
            let state = Arc::clone(&state);
            let principal = principal.clone();
            let span = tracing::info_span!("batch_item", index, ticket_id = tracing::field::Empty);
            tokio::spawn(
                async move {
                    let result = match serde_json::from_value::<TicketRequest>(value) {
                        Ok(request) if request.live.is_some() => {
                            metrics::ticket_rejected("invalid");
                            Err(ApiError::Invalid(vec![FieldError::new(
                                "live",
                                "live transfer is one caller at a time: use POST /v1/tickets",
                            )]))
                        }
                        Ok(request) => receive(&state, &principal, &request)
                            .await
                            .map(|(status, receipt, _)| (status, receipt)),
                        Err(e) => {
                            metrics::ticket_rejected("malformed");
                            Err(ApiError::Malformed {
                                detail: e.to_string(),
                                field: None,
                            })
                        }
                    };
                    item(index, result)
                }
                .instrument(span),
            )
        })
        .collect();
    let mut results = Vec::with_capacity(handles.len());
    for (index, handle) in handles.into_iter().enumerate() {
        results.push(match handle.await {
            Ok(done) => done,
            // A panicking item is a bug; it fails alone, as a 500 for that item.
            Err(e) => item(
                index,
                Err(ApiError::Internal(format!("batch item failed: {e}"))),
            ),
        });
    }
    Ok(axum::Json(BatchResponse { results }))
}

fn item(index: usize, result: Result<(StatusCode, TicketReceipt), ApiError>) -> BatchItem {
    match result {
        Ok((status, receipt)) => BatchItem {
            index,
            status: status.as_u16(),
            ticket: Some(receipt),
            problem: None,
        },
        Err(err) => {
            let mut problem = err.problem();
            for e in &mut problem.errors {
                e.field = format!("tickets[{index}].{}", e.field);
            }
            BatchItem {
                index,
                status: err.status().as_u16(),
                ticket: None,
                problem: Some(problem),
            }
        }
    }
}

/// Read one ticket with its classification, queue, deadlines and event history.
#[utoipa::path(
    get, path = "/v1/tickets/{id}", tag = "intake",
    params(("id" = String, Path, description = "Ticket id, `<county>-<seq>`")),
    responses(
        (status = 200, description = "The ticket", body = TicketView),
        (status = 401, description = "No or unknown token", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Outside the caller's regions", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such ticket", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Redis unreachable", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_ticket(
    State(state): State<Arc<AppState>>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<axum::Json<TicketView>, ApiError> {
    tracing::Span::current().record("ticket_id", id.as_str());
    let record = readable(&state, &principal, &id).await?;
    Ok(axum::Json(view(&state, &record)))
}

/// Read a page of a ticket's history (every event, oldest first).
#[utoipa::path(
    get, path = "/v1/tickets/{id}/history", tag = "intake",
    params(("id" = String, Path, description = "Ticket id"), super::wire::HistoryQuery),
    responses(
        (status = 200, description = "A page of the history", body = super::wire::HistoryPage),
        (status = 401, description = "No or unknown token", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Outside the caller's regions, or (partners) not its ticket", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such ticket", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "`limit` not 1 to 500", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Redis unreachable", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_history(
    State(state): State<Arc<AppState>>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
    crate::api::json::QueryParams(q): crate::api::json::QueryParams<super::wire::HistoryQuery>,
) -> Result<axum::Json<super::wire::HistoryPage>, ApiError> {
    tracing::Span::current().record("ticket_id", id.as_str());
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::Invalid(vec![FieldError::new(
            "limit",
            "must be 1 to 500",
        )]));
    }
    let offset = q.offset.unwrap_or(0);
    // Who may read it: the same rule as the ticket itself.
    readable(&state, &principal, &id).await?;
    let (events, total) = crate::handling::history_page(&state, &id, offset, limit)
        .await
        .map_err(|e| ApiError::from_handling(&state, e))?
        .ok_or_else(|| ApiError::NotFound(format!("no ticket `{id}`")))?;
    Ok(axum::Json(super::wire::HistoryPage {
        id,
        total,
        offset,
        events: events
            .iter()
            .map(|e| serde_json::from_str(e).unwrap_or(serde_json::Value::Null))
            .collect(),
    }))
}

/// Reads a ticket the caller may see: 404 for none, 403 outside the caller's regions or (for
/// a partner) a ticket it did not send.
pub(crate) async fn readable(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> Result<TicketRecord, ApiError> {
    crate::handling::readable(state, principal, id)
        .await
        .map_err(|e| ApiError::from_handling(state, e))
}

/// The API view of a stored ticket.
pub(crate) fn view(state: &AppState, record: &TicketRecord) -> TicketView {
    let sla = state.sla.current();
    let parse = |s: &str| serde_json::from_str(s).unwrap_or(serde_json::Value::Null);
    let views = record
        .stored
        .clocks
        .views(&sla.calendars, state.store.now_ms(), |clock, kind| {
            record.fired.contains(&format!("{}:{kind}", clock.as_str()))
        });
    TicketView {
        receipt: receipt(&record.stored, &sla),
        ticket: parse(&record.ticket_json),
        clocks: views,
        overdue: record.overdue,
        linked: record.linked.clone(),
        history: record.history.iter().map(|h| parse(h)).collect(),
        history_total: record.history_total,
        history_from: record
            .history_total
            .saturating_sub(record.history.len() as u64),
    }
}

/// Validates one request and registers it; the status to answer, the receipt, and whether
/// the ticket was registered with a live request.
async fn receive(
    state: &AppState,
    principal: &Principal,
    request: &TicketRequest,
) -> Result<(StatusCode, TicketReceipt, bool), ApiError> {
    let ticket = request
        .validate(
            &state.settings.intake,
            &state.settings.counties,
            principal.role,
            Utc::now(),
        )
        .map_err(|errors| {
            metrics::ticket_rejected("invalid");
            ApiError::Invalid(errors)
        })?;
    let live = request.live == Some(true);
    let Received { new, stored } = crate::intake::receive(state, principal, &ticket, live)
        .await
        .map_err(|e| match e {
            IntakeError::Forbidden(why) => ApiError::Forbidden(why),
            IntakeError::Conflict { id, county } => ApiError::Conflict { id, county },
            IntakeError::Store(e) => state.store_error(e),
            IntakeError::Archive(e) => ApiError::from_archive(e, state),
            IntakeError::Internal(why) => ApiError::Internal(why),
        })?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let sla = state.sla.current();
    Ok((status, receipt(&stored, &sla), stored.live_asked))
}

fn ms_to_time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The receipt of a stored ticket, deadlines computed with the calendars in force.
pub(crate) fn receipt(stored: &StoredTicket, sla: &SlaConfig) -> TicketReceipt {
    let clocks = &stored.clocks;
    let due = |c: ClockName| clocks.due(c, &sla.calendars).ok().flatten();
    TicketReceipt {
        id: stored.id.clone(),
        status: stored.status.as_str().to_string(),
        classification: serde_json::from_str(&stored.classification_json)
            .unwrap_or(serde_json::Value::Null),
        queue: stored.queue.clone(),
        // A ticket sent back has no clock running here.
        sla: (!clocks.clocks.is_empty()).then(|| SlaDeadlines {
            accept_by: due(ClockName::Accept),
            first_contact_by: due(ClockName::FirstContact),
            resolve_by: due(ClockName::Resolve),
            follow_up_by: due(ClockName::FollowUp),
            provisional: clocks.provisional(&sla.calendars),
        }),
        created_at: ms_to_time(stored.created_ms),
        live: None,
    }
}
