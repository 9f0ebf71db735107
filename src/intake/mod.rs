//! Intake: the handlers that receive tickets from partner systems and operators' consoles.
//!
//! One ticket goes validate → classify → route → store, and is acknowledged only after the
//! store's atomic script has run, so a `201` means the ticket is in Redis with its queue entry
//! and its event. A retry of the same (source, external_id) gets `200` and the same ticket.

pub mod settings;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tracing::Instrument;

use crate::api::json::JsonBody;
use crate::api::problem::{ApiError, FieldError};
use crate::api::{Authenticated, StoreErrors};
use crate::auth::{Principal, Role};
use crate::lifecycle::{StoredTicket, TicketRecord};
use crate::metrics;
use crate::queues::{IngestOutcome, NewTicket, StoreError};
use crate::sla::SlaConfig;
use crate::sla::clock::TicketClocks;
use crate::sla::policy::{ClockName, TicketFacts};
use crate::state::AppState;
use crate::ticket::Ticket;

use wire::{
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
        (status = 200, description = "Same (source, external_id) and content again: the same ticket", body = TicketReceipt),
        (status = 400, description = "Malformed JSON or a field of the wrong type", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or unknown token", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Wrong role or region", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Same (source, external_id), different content", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over the limit", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid values; every field named", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Redis unreachable; nothing written; see Retry-After", body = crate::api::problem::Problem, content_type = "application/problem+json"),
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
            .map_or("", |s| crate::live::api::transfer_mode(&state, s));
        receipt.live = Some(crate::live::api::start(&state, &principal, &receipt.id, mode).await?);
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
    }
}

/// The whole intake of one ticket, shared by the single and batch handlers.
async fn receive(
    state: &AppState,
    principal: &Principal,
    request: &TicketRequest,
) -> Result<(StatusCode, TicketReceipt, bool), ApiError> {
    let ticket = request
        .validate(&state.settings.intake, principal.role, Utc::now())
        .map_err(|errors| {
            metrics::ticket_rejected("invalid");
            ApiError::Invalid(errors)
        })?;
    if !principal.covers(&ticket.region.code) {
        metrics::ticket_rejected("forbidden_region");
        return Err(ApiError::Forbidden(format!(
            "region.code {} is outside the regions of `{}`",
            ticket.region.code, principal.name
        )));
    }

    // Repeat calls (重复来电) raise the warning level: how many tickets this caller opened in the
    // county within the linking window. Read before classifying; one small read per ticket.
    let caller_key = caller_key(&ticket.caller.phone);
    let window = state.settings.intake.duplicate_window_days * 86_400;
    let prior_calls = if window > 0 && !caller_key.is_empty() {
        state
            .store
            .caller_recent(&ticket.region.code, &caller_key, window)
            .await
            .map_err(|e| {
                metrics::ticket_received(
                    ticket.source.as_str(),
                    ticket.channel.as_str(),
                    "unavailable",
                );
                state.store_error(e)
            })?
    } else {
        0
    };
    let mut text = ticket.text_view();
    text.prior_calls = prior_calls;
    let decision = state.classifier().classify(&text);
    let route = state.router.route(&decision, ticket.source, &ticket.region);
    let classification_json =
        serde_json::to_string(&decision).map_err(|e| ApiError::Internal(e.to_string()))?;
    let content_hash = content_hash(&ticket)?;
    let sla = state.sla.current();
    // A ticket sent back to its sender runs no clock here.
    let clocks = if route.queue.is_some() {
        let facts = TicketFacts {
            service: decision.service.as_str(),
            warning_level: &decision.warning_level,
            source: ticket.source,
            category: &decision.category,
            transfer: if request.live == Some(true) {
                crate::live::api::transfer_mode(state, decision.service.as_str())
            } else {
                ""
            },
        };
        TicketClocks::start(
            sla.policies.terms(facts, &ticket.region.code),
            state.store.now_ms(),
        )
    } else {
        TicketClocks::default()
    };
    let timers = crate::lifecycle::timing::plan_timers(&clocks, &sla);
    let clocks_json =
        serde_json::to_string(&clocks).map_err(|e| ApiError::Internal(e.to_string()))?;
    let region_path = crate::agents::region_path(&ticket.region);
    let new = NewTicket {
        ticket: &ticket,
        content_hash: &content_hash,
        classification_json: &classification_json,
        service: decision.service.as_str(),
        level: &decision.warning_level,
        category: &decision.category,
        queue: route.queue.as_deref(),
        rule: &route.rule,
        band: route.band,
        clocks_json: &clocks_json,
        timers: &timers,
        actor: &principal.name,
        region_path: &region_path,
        caller_key: if state.settings.intake.duplicate_window_days > 0 {
            &caller_key
        } else {
            ""
        },
        duplicate_window_secs: state.settings.intake.duplicate_window_days * 86_400,
        since_ms: None,
        transferred_from: None,
        sender: &principal.name,
        live_asked: request.live == Some(true),
        callback: if state.callbacks.target(&principal.name).is_some() {
            &principal.name
        } else {
            ""
        },
    };

    let outcome = match state.store.ingest(&new).await {
        // One immediate retry: the first command after Redis came back often fails on the old
        // connection. The script is idempotent, so a write that did land is simply found.
        Err(StoreError::Unavailable(_)) => {
            tokio::time::sleep(Duration::from_millis(50)).await;
            state.store.ingest(&new).await
        }
        other => other,
    }
    .map_err(|e| {
        metrics::ticket_received(
            ticket.source.as_str(),
            ticket.channel.as_str(),
            "unavailable",
        );
        state.store_error(e)
    })?;

    match outcome {
        IngestOutcome::Created(stored) => {
            tracing::Span::current().record("ticket_id", stored.id.as_str());
            metrics::ticket_received(ticket.source.as_str(), ticket.channel.as_str(), "created");
            if let Some(q) = &stored.queue {
                metrics::queue_event(q, "arrival");
            }
            metrics::classified(
                decision.service.as_str(),
                &decision.category,
                &decision.warning_level,
                decision.confidence,
            );
            tracing::info!(
                source = %ticket.source,
                transfer = ?ticket.transfer,
                queue = route.queue.as_deref().unwrap_or("-"),
                rule = %route.rule,
                service = decision.service.as_str(),
                category = %decision.category,
                level = %decision.warning_level,
                confidence = decision.confidence,
                caller = ?ticket.caller,
                "ticket registered"
            );
            state.mover.nudge();
            Ok((
                StatusCode::CREATED,
                receipt(&stored, &sla),
                stored.live_asked,
            ))
        }
        IngestOutcome::Existing(stored) => {
            tracing::Span::current().record("ticket_id", stored.id.as_str());
            metrics::ticket_received(ticket.source.as_str(), ticket.channel.as_str(), "duplicate");
            tracing::info!(source = %ticket.source, "retry of a registered ticket");
            Ok((StatusCode::OK, receipt(&stored, &sla), stored.live_asked))
        }
        IngestOutcome::Conflict { id } => {
            tracing::Span::current().record("ticket_id", id.as_str());
            metrics::ticket_received(ticket.source.as_str(), ticket.channel.as_str(), "conflict");
            Err(ApiError::Conflict { id })
        }
    }
}

/// A key for the caller that links repeat requests without storing the number again: a hash
/// of the phone's digits; empty when there is no usable number.
fn caller_key(phone: &str) -> String {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 5 {
        return String::new();
    }
    let digest = Sha256::digest(format!("hotline-caller:{digits}").as_bytes());
    hex::encode(&digest[..16])
}

/// SHA-256 of the canonical ticket: equal content, equal hash, whatever the JSON formatting or
/// the time zone `received_at` was written in.
fn content_hash(ticket: &Ticket) -> Result<String, ApiError> {
    let canonical = serde_json::to_vec(ticket).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(hex::encode(Sha256::digest(&canonical)))
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
        }),
        created_at: ms_to_time(stored.created_ms),
        live: None,
    }
}
