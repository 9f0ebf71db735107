//! HTTP for live transfer: the answer to a live request, the caller hanging up, agents'
//! heartbeats, and the live bookkeeping of agent actions (accept, first contact, end of call).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::problem::{ApiError, FieldError};
use crate::api::{Authenticated, StoreErrors};
use crate::auth::{Principal, Role};
use crate::lifecycle::{LiveState, Status, TicketRecord};
use crate::live::{
    Duty, Reservation, agents_on_duty, candidate, estimate_wait_ms, pool_of, reserve,
};
use crate::state::AppState;

/// The formula of `estimated_wait_seconds`, repeated in every answer so nobody has to guess.
pub const FORMULA: &str = "ceil(position × handle_seconds / agents)";

/// Where a live transfer stands, as the operator's console shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LiveView {
    /// `reserved` (an agent is held for the caller: transfer the call), `waiting` (nobody free:
    /// see position and estimate), `accepted` (the agent took it), `connected` (the agent is
    /// speaking with the caller), `ended`, `cancelled` (the caller hung up), `off_duty` (outside
    /// duty hours: the caller will be called back), `not_offered` (no live transfer for this
    /// service: the ticket is ordinary work).
    pub status: String,
    /// One line for the operator, e.g. "no lawyer is free; position 3, about 2 minutes".
    pub message: String,
    /// The agent held for the caller, while `reserved`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reservation: Option<ReservationView>,
    /// The caller's place among those waiting for the same pool (1 = next), while `waiting`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    /// The estimated wait, while `waiting`; absent when no agent is signed in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_wait_seconds: Option<u64>,
    /// What the estimate was computed from, while `waiting`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimate: Option<EstimateInputs>,
    /// When duty starts again, when `off_duty`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duty_opens_at: Option<DateTime<Utc>>,
    /// The caller is called back (off duty); the ticket carries a callback SLA.
    pub callback: bool,
    /// Follow every step here (Server-Sent Events).
    pub events: String,
}

/// The agent held for a caller.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReservationView {
    /// The agent accepts (or declines) with this id.
    pub reservation_id: String,
    /// The agent's id.
    pub agent_id: String,
    /// The agent's display name, e.g. 张律师.
    pub agent_name: String,
    /// Extension or number to transfer the call to.
    pub contact: Option<String>,
    /// When the hold lapses and the next agent is tried.
    pub expires_at: DateTime<Utc>,
}

/// The inputs of the wait estimate (README, "Estimated wait").
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EstimateInputs {
    /// The caller's place in line.
    pub position: u64,
    /// Agents signed in and available who could take the caller, free or on a call.
    pub agents: usize,
    /// Moving average of live handle time (call plus wrap-up), seconds.
    pub handle_seconds: f64,
    /// Live calls measured in that average (0: the configured default is used).
    pub calls_measured: u64,
    /// The formula.
    pub formula: String,
}

fn base(id: &str, status: &str, message: String) -> LiveView {
    LiveView {
        status: status.to_string(),
        message,
        reservation: None,
        position: None,
        estimated_wait_seconds: None,
        estimate: None,
        duty_opens_at: None,
        callback: false,
        events: format!("/v1/events?ticket={id}"),
    }
}

fn pool_word(service: &str) -> &'static str {
    if service == "mediation" {
        "mediator"
    } else {
        "lawyer"
    }
}

/// `live` or `callback` for the SLA policies, or empty when the service has no live transfer.
pub fn transfer_mode(state: &AppState, service: &str) -> &'static str {
    match state.live.duty.duty(service, Utc::now()) {
        Duty::On => "live",
        Duty::Off { .. } => "callback",
        Duty::NotOffered => "",
    }
}

/// Handles `"live": true` for a registered ticket: reserves a free agent at once or answers
/// with the caller's position and an estimate. A retry answers with where things stand.
pub(crate) async fn start(
    state: &AppState,
    principal: &Principal,
    id: &str,
    mode: &str,
) -> Result<LiveView, ApiError> {
    let started = Instant::now();
    let record = state
        .store
        .ticket(id)
        .await
        .map_err(|e| state.store_error(e))?
        .ok_or_else(|| ApiError::Internal(format!("ticket `{id}` vanished")))?;
    let service = record.service.clone();
    let (Some(pool), false, Some(_)) = (pool_of(&service), mode.is_empty(), &record.stored.queue)
    else {
        crate::metrics::live_request(&service, "not_offered", started.elapsed().as_secs_f64());
        return Ok(base(
            id,
            "not_offered",
            format!("no live transfer for `{service}`; the ticket is queued as ordinary work"),
        ));
    };
    let begin = state
        .store
        .live_begin(id, pool.queue_kind(), mode, &principal.name)
        .await
        .map_err(|e| state.store_error(e))?
        .ok_or_else(|| ApiError::Internal(format!("ticket `{id}` vanished")))?;
    if !begin.new || begin.state != "waiting" {
        // A retry answers with where things stand; a new request off duty gets the callback.
        let record = reread(state, id).await?;
        let view = view_of(state, &record).await?;
        if begin.new {
            crate::metrics::live_request(&service, "off_duty", started.elapsed().as_secs_f64());
        }
        return Ok(view);
    }
    let county = crate::queues::county_of(id).unwrap_or_default();
    let c = candidate(&record).ok_or_else(|| ApiError::Internal("no queue".into()))?;
    let online = state
        .store
        .online_agents(county)
        .await
        .map_err(|e| state.store_error(e))?;
    if record.stored.status == Status::Queued
        && let Some(r) = reserve(&state.store, county, &c, &online, &state.live)
            .await
            .map_err(|e| state.store_error(e))?
    {
        crate::metrics::live_request(&service, "reserved", started.elapsed().as_secs_f64());
        tracing::info!(agent = %r.agent.id, "live caller reserved an agent");
        return Ok(reserved_view(id, &service, &r));
    }
    // The place in line now: callers ahead may have been reserved meanwhile.
    let position = state
        .store
        .live_position(id, pool.queue_kind())
        .await
        .map_err(|e| state.store_error(e))?;
    if position == 0 {
        // Reserved by the mover in between.
        crate::metrics::live_request(&service, "reserved", started.elapsed().as_secs_f64());
        return view_of(state, &reread(state, id).await?).await;
    }
    let agents = agents_on_duty(&online, &c);
    let (handle_ms, calls) = handle_time(state, county, pool.queue_kind()).await?;
    let estimate = estimate_wait_ms(position, handle_ms, agents);
    if let Some(e) = estimate {
        state
            .store
            .live_estimate(id, pool.queue_kind(), e, position, agents, handle_ms)
            .await
            .map_err(|e| state.store_error(e))?;
    }
    crate::metrics::live_request(&service, "waiting", started.elapsed().as_secs_f64());
    Ok(waiting_view(
        id, &service, position, agents, handle_ms, calls, estimate,
    ))
}

async fn reread(state: &AppState, id: &str) -> Result<TicketRecord, ApiError> {
    state
        .store
        .ticket(id)
        .await
        .map_err(|e| state.store_error(e))?
        .ok_or_else(|| ApiError::NotFound(format!("no ticket `{id}`")))
}

async fn handle_time(state: &AppState, county: &str, pool: &str) -> Result<(i64, u64), ApiError> {
    Ok(state
        .store
        .live_handle_time(county, pool)
        .await
        .map_err(|e| state.store_error(e))?
        .filter(|(_, n)| *n > 0)
        .unwrap_or((state.live.default_handle_ms, 0)))
}

fn reserved_view(id: &str, service: &str, r: &Reservation) -> LiveView {
    let mut v = base(
        id,
        "reserved",
        format!(
            "transfer to {} {} at {}, reserved for {} s",
            pool_word(service),
            r.agent.spec.name,
            r.agent
                .spec
                .contact
                .as_deref()
                .unwrap_or("(no contact on record)"),
            ((r.expires_ms - Utc::now().timestamp_millis()).max(0) + 500) / 1000
        ),
    );
    v.reservation = Some(ReservationView {
        reservation_id: r.reservation_id.clone(),
        agent_id: r.agent.id.clone(),
        agent_name: r.agent.spec.name.clone(),
        contact: r.agent.spec.contact.clone(),
        expires_at: DateTime::from_timestamp_millis(r.expires_ms).unwrap_or_default(),
    });
    v
}

fn waiting_view(
    id: &str,
    service: &str,
    position: u64,
    agents: usize,
    handle_ms: i64,
    calls: u64,
    estimate: Option<i64>,
) -> LiveView {
    let word = pool_word(service);
    let message = match estimate {
        Some(ms) => format!(
            "no {word} is free; position {position}, about {}",
            humanize(ms)
        ),
        None => format!("no {word} is signed in; position {position}, no estimate possible"),
    };
    let mut v = base(id, "waiting", message);
    v.position = Some(position);
    v.estimated_wait_seconds = estimate.map(|ms| u64::try_from((ms + 999) / 1000).unwrap_or(0));
    v.estimate = Some(EstimateInputs {
        position,
        agents,
        handle_seconds: handle_ms as f64 / 1000.0,
        calls_measured: calls,
        formula: FORMULA.to_string(),
    });
    v
}

fn humanize(ms: i64) -> String {
    let s = (ms + 999) / 1000;
    if s < 90 {
        format!("{s} seconds")
    } else {
        format!("{} minutes", (s + 30) / 60)
    }
}

/// Where the live transfer of a stored ticket stands now.
pub(crate) async fn view_of(state: &AppState, record: &TicketRecord) -> Result<LiveView, ApiError> {
    let id = &record.stored.id;
    let service = &record.service;
    let Some(live) = &record.live else {
        return Ok(base(
            id,
            "not_offered",
            "no live transfer was asked for".into(),
        ));
    };
    match live.state {
        LiveState::Callback => {
            let mut v = base(
                id,
                "off_duty",
                format!(
                    "outside duty hours: no {} on duty; the caller will be called back",
                    pool_word(service)
                ),
            );
            v.callback = true;
            if let Duty::Off { opens_at } = state.live.duty.duty(service, Utc::now()) {
                v.duty_opens_at = Some(opens_at);
            }
            Ok(v)
        }
        LiveState::Waiting
            if record.stored.status == Status::Leased
                && live.lease.as_ref() == record.lease.as_ref().map(|l| &l.id) =>
        {
            let agent_id = record
                .lease
                .as_ref()
                .map(|l| l.agent.clone())
                .unwrap_or_default();
            let agent = state
                .store
                .agent(&agent_id)
                .await
                .map_err(|e| state.store_error(e))?
                .ok_or_else(|| ApiError::Internal(format!("agent `{agent_id}` vanished")))?;
            Ok(reserved_view(
                id,
                service,
                &Reservation {
                    reservation_id: live.lease.clone().unwrap_or_default(),
                    agent,
                    expires_ms: live.lease_expires_ms.unwrap_or(0),
                },
            ))
        }
        LiveState::Waiting => {
            let county = crate::queues::county_of(id).unwrap_or_default();
            let pool = pool_of(service).map(|k| k.queue_kind()).unwrap_or("legal");
            let position = state
                .store
                .live_position(id, pool)
                .await
                .map_err(|e| state.store_error(e))?;
            let online = state
                .store
                .online_agents(county)
                .await
                .map_err(|e| state.store_error(e))?;
            let agents = candidate(record).map_or(0, |c| agents_on_duty(&online, &c));
            let (handle_ms, calls) = handle_time(state, county, pool).await?;
            let estimate = estimate_wait_ms(position, handle_ms, agents);
            Ok(waiting_view(
                id, service, position, agents, handle_ms, calls, estimate,
            ))
        }
        other => {
            let agent = record.assigned_agent.clone().unwrap_or_default();
            let message = match other {
                LiveState::Accepted => format!("{agent} accepted; transfer the call"),
                LiveState::Connected => format!("{agent} is speaking with the caller"),
                LiveState::Ended => "the call ended".to_string(),
                _ if record.stored.status == Status::Withdrawn => {
                    "the caller hung up and withdrew the request".into()
                }
                _ => "the caller hung up; the ticket stays queued unless withdrawn".into(),
            };
            Ok(base(id, other.as_str(), message))
        }
    }
}

/// Read where a live transfer stands (for a console that reconnects).
#[utoipa::path(
    get, path = "/v1/tickets/{id}/live", tag = "live",
    params(("id" = String, Path, description = "Ticket id")),
    responses(
        (status = 200, description = "Where the live transfer stands", body = LiveView),
        (status = 403, description = "Outside the caller's regions", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such ticket", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_live(
    State(state): State<Arc<AppState>>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<axum::Json<LiveView>, ApiError> {
    tracing::Span::current().record("ticket_id", id.as_str());
    let record = crate::handling::readable(&state, &principal, &id)
        .await
        .map_err(|e| ApiError::from_handling(&state, e))?;
    Ok(axum::Json(view_of(&state, &record).await?))
}

/// The answer to `cancel_live`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CancelView {
    /// The ticket's status now: `queued` (ordinary work), `accepted`…, or `withdrawn`.
    pub ticket_status: String,
    /// The live transfer, now `cancelled`.
    pub live: LiveView,
}

/// The answer to `cancel_live`: the ticket's status and where the live transfer stands now.
pub(crate) async fn cancel_view(
    state: &AppState,
    record: &TicketRecord,
) -> Result<CancelView, ApiError> {
    Ok(CancelView {
        ticket_status: record.stored.status.as_str().to_string(),
        live: view_of(state, record).await?,
    })
}

/// `POST /v1/agents/{id}/heartbeat` body.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatRequest {
    /// `false` signs the agent off at once; default `true`.
    pub online: Option<bool>,
}

/// The answer to a heartbeat.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HeartbeatView {
    /// The agent.
    pub agent_id: String,
    /// Signed in now.
    pub online: bool,
    /// Without another heartbeat, the agent counts as gone after this.
    pub online_until: Option<DateTime<Utc>>,
}

/// A console's heartbeat: the agent is at the console and may be reserved for live callers.
/// Send one every few seconds (well within `live.heartbeat_timeout_seconds`); a console holding
/// the offer stream open counts too.
#[utoipa::path(
    post, path = "/v1/agents/{id}/heartbeat", tag = "live",
    params(("id" = String, Path, description = "Agent id")),
    request_body(content = HeartbeatRequest, description = "Optional: no body at all, or a JSON object; `{\"online\": false}` signs off"),
    responses(
        (status = 200, description = "Presence recorded", body = HeartbeatView),
        (status = 400, description = "Malformed body", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Another agent's heartbeat", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such agent", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Redis unreachable; or, for an admin's heartbeat, the case archive could not take the audit entry (`/problems/archive-unavailable`): nothing was done", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn heartbeat(
    State(state): State<Arc<AppState>>,
    Authenticated(principal): Authenticated,
    request_id: crate::api::audit::RequestId,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<axum::Json<HeartbeatView>, ApiError> {
    principal.require(&[Role::Agent, Role::Admin])?;
    if principal.role == Role::Agent && principal.agent_id.as_deref() != Some(id.as_str()) {
        return Err(ApiError::Forbidden(format!(
            "`{}` may send heartbeats for itself only",
            principal.name
        )));
    }
    let request = if body.iter().all(u8::is_ascii_whitespace) {
        HeartbeatRequest::default()
    } else {
        crate::api::json::parse::<HeartbeatRequest>(&body)?
    };
    let online = request.online.unwrap_or(true);
    let agent = state
        .store
        .agent(&id)
        .await
        .map_err(|e| state.store_error(e))?
        .ok_or_else(|| ApiError::NotFound(format!("no agent `{id}`")))?;
    let county = agent
        .spec
        .county()
        .map(String::from)
        .ok_or_else(|| ApiError::Invalid(vec![FieldError::new("id", "agent has no county")]))?;
    if !principal.covers(&county) {
        return Err(ApiError::Forbidden(format!(
            "agent `{id}` is outside the regions of `{}`",
            principal.name
        )));
    }
    // An admin signing an agent on or off is not the agent at its console: recorded.
    let audit = match principal.role {
        Role::Admin => Some(
            crate::api::audit::Audit::begin(
                &state,
                &principal,
                &request_id,
                crate::archive::audit::AGENT_PRESENCE,
                Some(&id),
                serde_json::json!({"online": online}),
            )
            .await?,
        ),
        _ => None,
    };
    let result = presence(&state, &county, &id, online).await;
    if let Some(audit) = audit {
        audit.finish(&result, |_| serde_json::json!({})).await;
    }
    let until = result?;
    Ok(axum::Json(HeartbeatView {
        agent_id: id,
        online,
        online_until: until.and_then(DateTime::from_timestamp_millis),
    }))
}

/// Signs the agent on until the presence timeout (returning when it lapses), or off (`None`).
async fn presence(
    state: &AppState,
    county: &str,
    id: &str,
    online: bool,
) -> Result<Option<i64>, ApiError> {
    if online {
        let until = state.store.now_ms() + state.live.heartbeat_timeout_ms;
        state
            .store
            .set_online(county, id, until)
            .await
            .map_err(|e| state.store_error(e))?;
        // A free agent may be what a waiting caller needs.
        state.mover.wake(county);
        Ok(Some(until))
    } else {
        state
            .store
            .set_offline(county, id)
            .await
            .map_err(|e| state.store_error(e))?;
        Ok(None)
    }
}
