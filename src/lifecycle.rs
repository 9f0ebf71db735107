//! The ticket's life after intake (跟踪处理—事件反馈—考核评价): accept, first contact, pause
//! and resume, resolve with an outcome, and the follow-up call with satisfaction. Each action
//! moves the ticket's status and its SLA clocks together, in one atomic script guarded by the
//! clock version, so timers always match the state.
//!
//! Agents act only on tickets they hold (a lease from a claim or offer, then the assignment
//! that `accept` makes); operators, supervisors and admins act on any ticket in their regions.
//! Transfers, escalations, returns, disputes and reopenings put the ticket back in line with its
//! original arrival order and age.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::agents::Tier;
use crate::api::problem::{ApiError, FieldError};
use crate::api::{AppState, Authenticated};
use crate::auth::{Principal, Role};
use crate::intake::wire::TicketView;
use crate::intake::{plan_timers, view};
use crate::queues::{ActOutcome, RenewOutcome, TicketChange, TicketRecord};
use crate::sla::SlaConfig;
use crate::sla::clock::{ClockEvent, TicketClocks};
use crate::sla::policy::{ClockName, TicketFacts};
use crate::ticket::Source;
use axum::response::IntoResponse;
use sha2::Digest;

/// The actions of this module, as they appear in the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// 接单: take the ticket off its queue and start working it.
    Accept,
    /// 首次联系: the caller has been contacted.
    FirstContact,
    /// 挂起: waiting, e.g. for the caller; clocks stop counting.
    Pause,
    /// Work resumes; clocks count again.
    Resume,
    /// 办结: with an outcome and a summary; the follow-up clock starts.
    Resolve,
    /// 回访: the follow-up call, with satisfaction 1–5; closes the loop.
    FollowUp,
    /// 转办: to another service, category or place in the county, with a reason; keeps its age.
    Transfer,
    /// 上报: to the next tier up, with a reason; keeps its place in line.
    Escalate,
    /// Extends the caller's lease on a claimed ticket.
    Renew,
    /// 退单: back to the sender hotline with a reason (out of scope for lawyers and mediators).
    Return,
    /// 异议/改派: a partner disputes the dispatch; the ticket goes to triage to be dispatched again.
    Dispute,
    /// Reopens a resolved ticket within `agents.reopen_days`.
    Reopen,
    /// 提高优先级: one priority band up, keeping its arrival order (supervisors).
    Raise,
    /// Adds a note to the history (e.g. what the caller said on a call back); changes nothing else.
    Note,
    /// Turns down an offer or claim at once (with `lease_id`); it goes back to its place and is
    /// offered again. Counts as a missed offer.
    Decline,
    /// 挂断: a live caller hung up (operator or partner). A reservation not yet accepted is
    /// released and the ticket stays queued as ordinary work, unless `withdraw` is true.
    CancelLive,
    /// The agent's live call ended; wrap-up starts, and the call's handle time feeds the wait
    /// estimate.
    EndCall,
    /// 撤回: the caller withdraws the request; the ticket leaves the queues and its clocks stop.
    Withdraw,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Accept => "accept",
            Action::FirstContact => "first_contact",
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Resolve => "resolve",
            Action::FollowUp => "follow_up",
            Action::Transfer => "transfer",
            Action::Escalate => "escalate",
            Action::Renew => "renew",
            Action::Return => "return",
            Action::Dispute => "dispute",
            Action::Reopen => "reopen",
            Action::Decline => "decline",
            Action::Note => "note",
            Action::Raise => "raise",
            Action::CancelLive => "cancel_live",
            Action::EndCall => "end_call",
            Action::Withdraw => "withdraw",
        }
    }

    fn clock_event(self) -> Option<ClockEvent> {
        match self {
            Action::Accept => Some(ClockEvent::Accept),
            Action::FirstContact => Some(ClockEvent::FirstContact),
            Action::Pause => Some(ClockEvent::Pause),
            Action::Resume => Some(ClockEvent::Resume),
            Action::Resolve => Some(ClockEvent::Resolve),
            Action::FollowUp => Some(ClockEvent::FollowUp),
            Action::Return | Action::Withdraw => Some(ClockEvent::Return),
            Action::Reopen => Some(ClockEvent::Reopen),
            Action::Transfer
            | Action::Escalate
            | Action::Renew
            | Action::Dispute
            | Action::Decline
            | Action::Note
            | Action::Raise
            | Action::CancelLive
            | Action::EndCall => None,
        }
    }

    /// The statuses the action may start from, and the status it leaves.
    fn transition(self) -> (&'static [&'static str], Option<&'static str>) {
        const WORKING: &[&str] = &["accepted", "in_progress"];
        const OPEN: &[&str] = &["queued", "leased", "accepted", "in_progress"];
        match self {
            Action::Accept => (&["queued", "leased"], Some("accepted")),
            Action::Transfer | Action::Escalate => (OPEN, Some("queued")),
            Action::Renew | Action::Decline => (&["leased"], None),
            Action::Raise => (&["queued"], None),
            Action::Note => (
                &["queued", "leased", "accepted", "in_progress", "resolved"],
                None,
            ),
            Action::Return => (OPEN, Some("returned")),
            Action::Withdraw | Action::CancelLive => (OPEN, Some("withdrawn")),
            Action::EndCall => (WORKING, None),
            Action::Dispute => (OPEN, Some("queued")),
            Action::Reopen => (&["resolved", "closed"], Some("queued")),
            Action::FirstContact => (WORKING, Some("in_progress")),
            Action::Pause | Action::Resume => (WORKING, None),
            Action::Resolve => (WORKING, Some("resolved")),
            Action::FollowUp => (&["resolved"], Some("closed")),
        }
    }
}

/// How a matter ended (办结结果).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// 调解成功
    Mediated,
    /// 调解不成
    MediationFailed,
    /// 已解答
    Answered,
    /// 转诉讼
    ToLitigation,
    /// 转仲裁
    ToArbitration,
    /// 转110
    ToPolice,
    /// 退回来源
    ReturnedToSource,
}

/// Optional body of an action.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    /// A note for the history (any action).
    pub note: Option<String>,
    /// Why (pause).
    pub reason: Option<String>,
    /// How it ended (resolve; required there).
    pub outcome: Option<Outcome>,
    /// What was done (resolve; required there).
    pub summary: Option<String>,
    /// The caller's satisfaction, 1 to 5 (follow_up; required there).
    pub satisfaction: Option<u8>,
    /// The caller's comment (follow_up).
    pub comment: Option<String>,
    /// cancel_live: the caller also withdraws the request, so it leaves the queues.
    pub withdraw: Option<bool>,
    /// The lease from the claim (accept and renew, for agents).
    pub lease_id: Option<String>,
    /// New service (transfer): `legal_consultation`, `mediation` or `triage`.
    pub service: Option<String>,
    /// New category (transfer).
    pub category: Option<String>,
    /// New town in the same county (transfer).
    pub town: Option<String>,
    /// New village (transfer).
    pub village: Option<String>,
    /// New grid (transfer).
    pub grid: Option<String>,
    /// Another county (transfer): the ticket moves there in two idempotent steps.
    pub region_code: Option<String>,
}

const ACTORS: &[Role] = &[Role::Agent, Role::Operator, Role::Supervisor, Role::Admin];

/// A dispute of a dispatch comes from the sending side too.
const DISPUTERS: &[Role] = &[Role::Partner, Role::Operator, Role::Supervisor, Role::Admin];

/// How often an action is recomputed when another one changed the ticket meanwhile.
const ATTEMPTS: usize = 8;

fn text_field(errors: &mut Vec<FieldError>, field: &str, v: &Option<String>, max: usize) {
    if let Some(s) = v
        && s.chars().count() > max
    {
        errors.push(FieldError::new(
            field,
            format!("longer than {max} characters"),
        ));
    }
}

impl ActionRequest {
    fn validate(&self, action: Action) -> Result<(), ApiError> {
        let mut e = Vec::new();
        text_field(&mut e, "note", &self.note, 2000);
        text_field(&mut e, "reason", &self.reason, 500);
        text_field(&mut e, "summary", &self.summary, 4000);
        text_field(&mut e, "comment", &self.comment, 2000);
        match action {
            Action::Resolve => {
                if self.outcome.is_none() {
                    e.push(FieldError::new("outcome", "is required to resolve"));
                }
                if self.summary.as_deref().is_none_or(|s| s.trim().is_empty()) {
                    e.push(FieldError::new("summary", "is required to resolve"));
                }
            }
            Action::FollowUp => match self.satisfaction {
                Some(1..=5) => {}
                Some(_) => e.push(FieldError::new("satisfaction", "must be 1 to 5")),
                None => e.push(FieldError::new(
                    "satisfaction",
                    "is required for a follow-up",
                )),
            },
            Action::Transfer
            | Action::Escalate
            | Action::Return
            | Action::Dispute
            | Action::Reopen
            | Action::Raise => {
                if self.reason.as_deref().is_none_or(|s| s.trim().is_empty()) {
                    e.push(FieldError::new("reason", "is required"));
                }
                if action == Action::Transfer {
                    if let Some(s) = &self.service
                        && !["legal_consultation", "mediation", "triage"].contains(&s.as_str())
                    {
                        e.push(FieldError::new(
                            "service",
                            "must be legal_consultation, mediation or triage",
                        ));
                    }
                    if let Some(code) = &self.region_code
                        && !crate::ticket::Region::is_valid_code(code)
                    {
                        e.push(FieldError::new(
                            "region_code",
                            "must be a 6-digit region code",
                        ));
                    }
                    if self.service.is_none()
                        && self.category.is_none()
                        && self.region_code.is_none()
                        && self.town.is_none()
                        && self.village.is_none()
                        && self.grid.is_none()
                    {
                        e.push(FieldError::new(
                            "service",
                            "name what changes: service, category, town, village or grid",
                        ));
                    }
                }
            }
            Action::Note if self.note.as_deref().is_none_or(|s| s.trim().is_empty()) => {
                e.push(FieldError::new("note", "is required"));
            }
            Action::Renew | Action::Decline if self.lease_id.is_none() => {
                e.push(FieldError::new("lease_id", "is required"));
            }
            _ => {}
        }
        for (field, v) in [
            ("town", &self.town),
            ("village", &self.village),
            ("grid", &self.grid),
        ] {
            if let Some(v) = v
                && (v.trim().is_empty() || v.contains('/') || v.chars().count() > 64)
            {
                e.push(FieldError::new(field, "1 to 64 characters, without `/`"));
            }
        }
        if e.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Invalid(e))
        }
    }
}

/// Apply an action to a ticket.
#[utoipa::path(
    post, path = "/v1/tickets/{id}/{action}", tag = "lifecycle",
    params(
        ("id" = String, Path, description = "Ticket id"),
        ("action" = Action, Path, description = "accept, first_contact, pause, resume, resolve, follow_up, transfer, escalate or renew"),
    ),
    request_body(content = Option<ActionRequest>, description = "Optional; resolve needs outcome and summary, follow_up needs satisfaction"),
    responses(
        (status = 200, description = "The ticket after the action", body = TicketView),
        (status = 400, description = "Malformed body", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or unknown token", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Wrong role or region", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such ticket or action", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not allowed in the ticket's state", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid values", body = crate::api::problem::Problem, content_type = "application/problem+json"),
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
) -> Result<axum::response::Response, ApiError> {
    tracing::Span::current().record("ticket_id", id.as_str());
    let action: Action = serde_json::from_value(serde_json::Value::String(action.clone()))
        .map_err(|_| ApiError::NotFound(format!("no action `{action}`")))?;
    principal.require(match action {
        Action::Dispute | Action::CancelLive | Action::Withdraw => DISPUTERS,
        Action::Raise => &[Role::Supervisor, Role::Admin],
        _ => ACTORS,
    })?;
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
    request.validate(action)?;
    if let Some(c) = &request.category
        && !state.settings.classify.categories.contains(c)
    {
        return Err(ApiError::Invalid(vec![FieldError::new(
            "category",
            format!("`{c}` is not a configured category"),
        )]));
    }
    if action == Action::Renew || action == Action::Decline {
        return renew(&state, &principal, &id, &request, action == Action::Decline).await;
    }
    if action == Action::CancelLive {
        return crate::live::api::cancel(&state, &principal, &id, &request).await;
    }
    let record = apply(&state, &principal, &id, action, &request).await?;
    crate::metrics::ticket_action(action.as_str());
    Ok(axum::Json(view(&state, &record)).into_response())
}

/// The answer to a renewal.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct LeaseView {
    /// The lease, unchanged.
    pub lease_id: String,
    /// Its new deadline.
    pub lease_expires_at: chrono::DateTime<chrono::Utc>,
}

async fn renew(
    state: &AppState,
    principal: &Principal,
    id: &str,
    request: &ActionRequest,
    decline: bool,
) -> Result<axum::response::Response, ApiError> {
    principal.require(&[Role::Agent])?;
    let me = principal.agent_id.clone().unwrap_or_default();
    let lease = request.lease_id.clone().unwrap_or_default();
    // A decline is a renewal to "now": the reaper returns the ticket at once.
    let length = if decline {
        0
    } else {
        state.settings.agents.lease_seconds * 1000
    };
    match state
        .store
        .renew(id, &lease, &me, length)
        .await
        .map_err(|e| state.store_error(e))?
    {
        RenewOutcome::Renewed(ms) => {
            crate::metrics::ticket_action(if decline { "decline" } else { "renew" });
            state.mover.nudge();
            Ok(axum::Json(LeaseView {
                lease_id: lease,
                lease_expires_at: chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default(),
            })
            .into_response())
        }
        RenewOutcome::Stale => Err(ApiError::State(format!(
            "lease `{lease}` is not the current lease of `{me}` on ticket `{id}`"
        ))),
    }
}

/// Reads, computes and applies, retrying when another action got there first.
pub(crate) async fn apply(
    state: &AppState,
    principal: &Principal,
    id: &str,
    action: Action,
    request: &ActionRequest,
) -> Result<TicketRecord, ApiError> {
    let not_found = || ApiError::NotFound(format!("no ticket `{id}`"));
    for _ in 0..ATTEMPTS {
        let record = state
            .store
            .ticket(id)
            .await
            .map_err(|e| state.store_error(e))?
            .ok_or_else(not_found)?;
        let county = crate::queues::county_of(id).ok_or_else(not_found)?;
        if !principal.covers(county) {
            return Err(ApiError::Forbidden(format!(
                "ticket `{id}` is outside the regions of `{}`",
                principal.name
            )));
        }
        let (from, to) = action.transition();
        let status = record.stored.status.as_str();
        if !from.contains(&status) {
            return Err(ApiError::State(format!(
                "cannot {} a ticket that is `{status}` (allowed from: {})",
                action.as_str(),
                from.join(", ")
            )));
        }
        let sla = state.sla.current();
        let mut clocks: TicketClocks =
            serde_json::from_str(&record.stored.clocks_json).unwrap_or_default();
        let was_running: Vec<ClockName> = running(&clocks);
        let now = state.store.now_ms();
        if let Some(event) = action.clock_event() {
            clocks
                .apply(event, now)
                .map_err(|e| ApiError::State(e.to_string()))?;
        }
        let outcomes = was_running
            .into_iter()
            .filter_map(|c| {
                clocks.outcome(c, &sla.calendars).map(|met| {
                    (
                        c.as_str().to_string(),
                        if met { "met" } else { "breached" }.to_string(),
                    )
                })
            })
            .collect();
        let mut event = serde_json::Map::new();
        event.insert("type".into(), format!("ticket.{}", action.as_str()).into());
        event.insert("actor".into(), principal.name.clone().into());
        if let Ok(serde_json::Value::Object(details)) =
            serde_json::to_value(RequestDetails::from(request))
        {
            event.extend(details);
        }
        let me = match principal.role {
            Role::Agent => principal.agent_id.clone(),
            _ => None,
        };
        let mut correction = None;
        let mut change = change(
            &record,
            clocks,
            &sla,
            to,
            action == Action::Accept,
            outcomes,
            event,
        )?;
        match action {
            Action::Accept => match &me {
                Some(me) => {
                    if status != "leased" || record.lease_agent.as_deref() != Some(me.as_str()) {
                        return Err(ApiError::State(format!(
                            "claim the ticket first: `{id}` is not leased to `{me}`"
                        )));
                    }
                    change.lease_check = request.lease_id.clone().ok_or_else(|| {
                        ApiError::Invalid(vec![FieldError::new(
                            "lease_id",
                            "is required to accept a claimed ticket",
                        )])
                    })?;
                    change.lease_agent = me.clone();
                    change.release_lease = true;
                    change.assign = me.clone();
                    crate::live::api::on_accept(state, &record, me, now, &mut change);
                }
                None if status == "leased" => {
                    return Err(ApiError::State(format!(
                        "ticket `{id}` is leased to `{}`; it accepts, or the lease expires",
                        record.lease_agent.clone().unwrap_or_default()
                    )));
                }
                None => {}
            },
            Action::Return | Action::Withdraw | Action::Dispute | Action::Reopen => {
                if let Some(me) = &me
                    && record.lease_agent.as_deref() != Some(me.as_str())
                    && record.assigned_agent.as_deref() != Some(me.as_str())
                {
                    return Err(ApiError::Forbidden(format!(
                        "ticket `{id}` is not held by `{me}`"
                    )));
                }
                change.event.insert(
                    "reason".into(),
                    request.reason.clone().unwrap_or_default().into(),
                );
                let queue = record.stored.queue.clone().unwrap_or_default();
                let requeue = |queue: &str| {
                    serde_json::json!({
                        "queue": queue,
                        "score": f64::from(record.band) * 4_294_967_296.0 + record.seq as f64,
                        "since": record.stored.created_ms,
                    })
                };
                match action {
                    Action::Return | Action::Withdraw => {
                        release_holder(&record, &mut change);
                        change.dequeue = true;
                        change.close = true;
                    }
                    Action::Dispute => {
                        release_holder(&record, &mut change);
                        change.dequeue = true;
                        let triage = state
                            .settings
                            .routing
                            .default_queues
                            .triage
                            .replace("{county}", county);
                        change.requeue = requeue(&triage);
                        change.event.insert("from_queue".into(), queue.into());
                        change.event.insert("to_queue".into(), triage.into());
                    }
                    _ => {
                        let resolved_at =
                            serde_json::from_str::<TicketClocks>(&record.stored.clocks_json)
                                .ok()
                                .and_then(|c| {
                                    c.clocks.get(&ClockName::Resolve).and_then(|r| r.stopped_ms)
                                });
                        let window = i64::try_from(state.settings.agents.reopen_days)
                            .unwrap_or(i64::MAX / 86_400_000)
                            .saturating_mul(86_400_000);
                        if resolved_at.is_none_or(|t| now - t > window) {
                            return Err(ApiError::State(format!(
                                "ticket `{id}` was resolved more than {} days ago; register a new ticket",
                                state.settings.agents.reopen_days
                            )));
                        }
                        change.requeue = requeue(&queue);
                        change.unassign = record.assigned_agent.is_some();
                        change.open = true;
                        change.close = false;
                    }
                }
            }
            Action::Raise => {
                let band = record.band.checked_sub(1).ok_or_else(|| {
                    ApiError::State(format!("ticket `{id}` is already in the most urgent band"))
                })?;
                let queue = record.stored.queue.clone().unwrap_or_default();
                change.requeue = serde_json::json!({
                    "queue": queue,
                    "score": f64::from(band) * 4_294_967_296.0 + record.seq as f64,
                    "since": record.stored.created_ms,
                });
                change.set.insert("band".into(), band.to_string());
                change.event.insert("band".into(), band.into());
                change.event.insert(
                    "reason".into(),
                    request.reason.clone().unwrap_or_default().into(),
                );
            }
            Action::Transfer | Action::Escalate => {
                if let Some(me) = &me
                    && record.lease_agent.as_deref() != Some(me.as_str())
                    && record.assigned_agent.as_deref() != Some(me.as_str())
                {
                    return Err(ApiError::Forbidden(format!(
                        "ticket `{id}` is not held by `{me}`"
                    )));
                }
                release_holder(&record, &mut change);
                change.dequeue = true;
                change.event.insert(
                    "from_queue".into(),
                    record.stored.queue.clone().unwrap_or_default().into(),
                );
                change.event.insert(
                    "reason".into(),
                    request.reason.clone().unwrap_or_default().into(),
                );
                let elsewhere = request
                    .region_code
                    .as_deref()
                    .filter(|c| *c != county && action == Action::Transfer);
                if let Some(target) = elsewhere {
                    if !principal.covers(target) {
                        return Err(ApiError::Forbidden(format!(
                            "county {target} is outside the regions of `{}`",
                            principal.name
                        )));
                    }
                    correction = move_county(
                        state,
                        principal,
                        &record,
                        request,
                        target,
                        &sla,
                        &mut change,
                    )
                    .await?;
                } else if action == Action::Transfer {
                    correction = transfer(state, &record, request, county, &sla, &mut change)?;
                } else {
                    escalate(state, &record, &mut change).await?;
                }
            }
            _ => {
                if let Some(me) = &me
                    && record.assigned_agent.as_deref() != Some(me.as_str())
                {
                    return Err(ApiError::Forbidden(format!(
                        "ticket `{id}` is assigned to another agent"
                    )));
                }
                if action == Action::FirstContact {
                    crate::live::api::on_first_contact(&record, &mut change);
                }
                if action == Action::EndCall {
                    crate::live::api::on_end_call(state, &record, now, &mut change)?;
                }
                if action == Action::Resolve
                    && let Some(agent) = &record.assigned_agent
                {
                    // Handle time: from acceptance to resolution.
                    let accepted = serde_json::from_str::<TicketClocks>(&record.stored.clocks_json)
                        .ok()
                        .and_then(|c| c.clocks.get(&ClockName::Accept).and_then(|a| a.stopped_ms))
                        .unwrap_or(now);
                    change.agent_delta = vec![
                        agent.clone().into(),
                        (-1).into(),
                        1.into(),
                        (now - accepted).max(0).into(),
                    ];
                }
            }
        }
        match state
            .store
            .act(id, change)
            .await
            .map_err(|e| state.store_error(e))?
        {
            ActOutcome::Applied(_) => {
                state.mover.nudge();
                let queue = record.stored.queue.clone().unwrap_or_default();
                match action {
                    Action::Resolve => {
                        crate::metrics::queue_event(&queue, "resolution");
                        let accepted =
                            serde_json::from_str::<TicketClocks>(&record.stored.clocks_json)
                                .ok()
                                .and_then(|c| {
                                    c.clocks.get(&ClockName::Accept).and_then(|a| a.stopped_ms)
                                });
                        if let Some(a) = accepted {
                            crate::metrics::queue_handle(&queue, (now - a) as f64 / 1000.0);
                        }
                    }
                    Action::Transfer => crate::metrics::queue_event(&queue, "transfer"),
                    Action::Accept => crate::live::api::accepted(&record, now),
                    Action::Escalate => crate::metrics::queue_event(&queue, "escalation"),
                    _ => {}
                }
                if let Some(c) = correction {
                    // The corrections stream is a learning signal written after the change (it
                    // lives outside the county's slot); a lost entry costs one example.
                    if let Err(e) = state.store.record_correction(id, &c, &principal.name).await {
                        tracing::warn!(error = %e, "correction not recorded");
                    }
                }
                return state
                    .store
                    .ticket(id)
                    .await
                    .map_err(|e| state.store_error(e))?
                    .ok_or_else(not_found);
            }
            ActOutcome::Stale => continue,
            ActOutcome::StaleLease => {
                return Err(ApiError::State(format!(
                    "lease `{}` is not the current lease on `{id}`",
                    request.lease_id.clone().unwrap_or_default()
                )));
            }
            ActOutcome::Missing => return Err(not_found()),
        }
    }
    Err(ApiError::State(format!(
        "ticket `{id}` kept changing while this action was applied; retry"
    )))
}

/// Lets go of whoever holds the ticket (lease or assignment), freeing their capacity.
fn release_holder(record: &TicketRecord, change: &mut TicketChange) {
    if record.stored.status == "leased" {
        change.release_lease = true;
        if let Some(a) = &record.lease_agent {
            change.agent_delta = vec![a.clone().into(), (-1).into(), 0.into()];
        }
    }
    if let Some(a) = &record.assigned_agent {
        change.unassign = true;
        change.agent_delta = vec![a.clone().into(), (-1).into(), 0.into()];
    }
}

/// Where a transfer goes: the routing table decides for the corrected service, category and
/// place; the ticket keeps its arrival order and age, and its clocks get the new targets.
/// Returns the correction to record when service or category changed.
fn transfer(
    state: &AppState,
    record: &TicketRecord,
    request: &ActionRequest,
    county: &str,
    sla: &SlaConfig,
    change: &mut TicketChange,
) -> Result<Option<Correction>, ApiError> {
    let ticket: crate::ticket::Ticket = serde_json::from_str(&record.ticket_json)
        .map_err(|e| ApiError::Internal(format!("stored ticket unreadable: {e}")))?;
    let labels = Relabel::new(
        record,
        request,
        format!("人工改派: {}", request.reason.clone().unwrap_or_default()),
    )?;
    let mut region = ticket.region.clone();
    let mut path: Vec<String> = record.region_path.split('/').map(String::from).collect();
    for (depth, (new, slot)) in [
        (&request.town, &mut region.town),
        (&request.village, &mut region.village),
        (&request.grid, &mut region.grid),
    ]
    .into_iter()
    .enumerate()
    {
        if let Some(v) = new {
            *slot = Some(v.clone());
            path.truncate(depth + 1);
            path.push(v.clone());
        }
    }
    let route = state.router.route(&labels.decision, ticket.source, &region);
    let queue = route
        .queue
        .ok_or_else(|| ApiError::State("that service has no queue here".into()))?;
    let mut clocks: TicketClocks = serde_json::from_str(&change.clocks).unwrap_or_default();
    clocks.retarget(
        sla.policies
            .terms(labels.facts(record, ticket.source), county),
    );
    change.timers = plan_timers(&clocks, sla);
    change.clocks =
        serde_json::to_string(&clocks).map_err(|e| ApiError::Internal(e.to_string()))?;
    change.requeue = serde_json::json!({
        "queue": queue,
        "score": f64::from(route.band) * 4_294_967_296.0 + record.seq as f64,
        "since": record.stored.created_ms,
    });
    change.set.insert("service".into(), labels.service.clone());
    change
        .set
        .insert("category".into(), labels.category.clone());
    change.set.insert("band".into(), route.band.to_string());
    change.set.insert("region_path".into(), path.join("/"));
    change
        .set
        .insert("classification".into(), labels.classification.to_string());
    change.event.insert("to_queue".into(), queue.into());
    Ok(labels.correction(record, ticket))
}

/// The labels a transfer corrects, and what follows from them; shared by transfers within a
/// county and to another one.
struct Relabel {
    service: String,
    category: String,
    /// The classification shown to operators, with the transfer's reason appended.
    classification: serde_json::Value,
    /// What the routing table reads.
    decision: crate::classify::Decision,
}

impl Relabel {
    fn new(
        record: &TicketRecord,
        request: &ActionRequest,
        note: String,
    ) -> Result<Relabel, ApiError> {
        let service_name = request
            .service
            .clone()
            .unwrap_or_else(|| record.service.clone());
        let service = crate::classify::Service::parse(&service_name).ok_or_else(|| {
            ApiError::State(format!("ticket service `{service_name}` cannot be routed"))
        })?;
        let category = request
            .category
            .clone()
            .unwrap_or_else(|| record.category.clone());
        let mut classification: serde_json::Value =
            serde_json::from_str(&record.stored.classification_json).unwrap_or_default();
        classification["service"] = service_name.clone().into();
        classification["category"] = category.clone().into();
        if let Some(reasons) = classification["reasons"].as_array_mut() {
            reasons.push(note.into());
        }
        let decision = crate::classify::Decision {
            service,
            category: category.clone(),
            warning_level: record.level.clone(),
            confidence: 1.0,
            reasons: vec![],
            model: "manual".into(),
        };
        Ok(Relabel {
            service: service_name,
            category,
            classification,
            decision,
        })
    }

    /// What the SLA policies match on, with the corrected labels.
    fn facts<'a>(
        &'a self,
        record: &'a TicketRecord,
        source: crate::ticket::Source,
    ) -> TicketFacts<'a> {
        TicketFacts {
            service: &self.service,
            warning_level: &record.level,
            source,
            category: &self.category,
            transfer: record.live.as_ref().map_or("", |l| l.transfer.as_str()),
        }
    }

    /// The labelled example to record, when service or category changed.
    fn correction(
        &self,
        record: &TicketRecord,
        ticket: crate::ticket::Ticket,
    ) -> Option<Correction> {
        let changed = self.service != record.service || self.category != record.category;
        changed.then(|| Correction {
            title: ticket.title,
            text: ticket.text,
            source: ticket.source.as_str().to_string(),
            service: self.service.clone(),
            category: self.category.clone(),
        })
    }
}

/// A transfer to another county, in two idempotent steps (the two counties are different Redis
/// slots): first the ticket is registered there under the idempotency key
/// `transfer:<old id>`, keeping its clocks and its age; then (the caller's change) the old ticket
/// is closed as `transferred`, pointing at the new one. A retry of either step finds the first
/// step's ticket instead of making another.
async fn move_county(
    state: &AppState,
    principal: &Principal,
    record: &TicketRecord,
    request: &ActionRequest,
    target: &str,
    sla: &SlaConfig,
    change: &mut TicketChange,
) -> Result<Option<Correction>, ApiError> {
    let mut ticket: crate::ticket::Ticket = serde_json::from_str(&record.ticket_json)
        .map_err(|e| ApiError::Internal(format!("stored ticket unreadable: {e}")))?;
    let old_id = record.stored.id.clone();
    ticket.external_id = format!("transfer:{old_id}");
    ticket.region = crate::ticket::Region {
        code: target.to_string(),
        town: request.town.clone(),
        village: request.village.clone(),
        grid: request.grid.clone(),
    };
    let labels = Relabel::new(
        record,
        request,
        format!(
            "跨县转办自{old_id}: {}",
            request.reason.clone().unwrap_or_default()
        ),
    )?;
    let route = state
        .router
        .route(&labels.decision, ticket.source, &ticket.region);
    let queue = route
        .queue
        .clone()
        .ok_or_else(|| ApiError::State("that service has no queue there".into()))?;
    // The clocks go along, re-targeted for the new county's policies.
    let mut clocks: TicketClocks =
        serde_json::from_str(&record.stored.clocks_json).unwrap_or_default();
    clocks.retarget(
        sla.policies
            .terms(labels.facts(record, ticket.source), target),
    );
    let timers = plan_timers(&clocks, sla);
    let clocks_json =
        serde_json::to_string(&clocks).map_err(|e| ApiError::Internal(e.to_string()))?;
    let classification_json = labels.classification.to_string();
    let content_hash = hex::encode(sha2::Sha256::digest(
        serde_json::to_vec(&ticket).map_err(|e| ApiError::Internal(e.to_string()))?,
    ));
    let region_path = crate::agents::region_path(&ticket.region);
    let new = crate::queues::NewTicket {
        ticket: &ticket,
        content_hash: &content_hash,
        classification_json: &classification_json,
        service: &labels.service,
        level: &record.level,
        category: &labels.category,
        queue: Some(&queue),
        rule: &route.rule,
        band: route.band,
        clocks_json: &clocks_json,
        timers: &timers,
        actor: &principal.name,
        region_path: &region_path,
        caller_key: "",
        duplicate_window_secs: 0,
        since_ms: Some(record.stored.created_ms),
        transferred_from: Some(&old_id),
        callback: record.callback.as_deref().unwrap_or(""),
    };
    let new_id = match state
        .store
        .ingest(&new)
        .await
        .map_err(|e| state.store_error(e))?
    {
        crate::queues::IngestOutcome::Created(s) | crate::queues::IngestOutcome::Existing(s) => {
            s.id
        }
        crate::queues::IngestOutcome::Conflict { id } => id,
    };
    // Step two: the old ticket is closed, its clocks stopped, pointing at the new one.
    let mut old_clocks: TicketClocks = serde_json::from_str(&change.clocks).unwrap_or_default();
    let _ = old_clocks.apply(ClockEvent::Return, state.store.now_ms());
    change.timers = Vec::new();
    change.clocks =
        serde_json::to_string(&old_clocks).map_err(|e| ApiError::Internal(e.to_string()))?;
    change.status = "transferred".into();
    change.close = true;
    change.set.insert("transferred_to".into(), new_id.clone());
    change.event.insert("to_ticket".into(), new_id.into());
    change.event.insert("to_queue".into(), queue.into());
    Ok(labels.correction(record, ticket))
}

/// Escalation: the tier above whoever held it (or above the ticket's current floor) becomes the
/// lowest tier allowed; the ticket keeps its place in line.
async fn escalate(
    state: &AppState,
    record: &TicketRecord,
    change: &mut TicketChange,
) -> Result<(), ApiError> {
    let holder = record
        .assigned_agent
        .clone()
        .or_else(|| record.lease_agent.clone());
    let mut floor = record.min_tier.as_deref().and_then(Tier::parse);
    if let Some(h) = holder
        && let Some(agent) = state
            .store
            .agent(&h)
            .await
            .map_err(|e| state.store_error(e))?
    {
        floor = Some(floor.map_or(agent.spec.tier, |f| f.max(agent.spec.tier)));
    }
    let next = match floor {
        Some(t) => t.above(),
        None => Some(Tier::Village),
    }
    .ok_or_else(|| {
        ApiError::State("already at the county centre: nowhere higher to escalate".into())
    })?;
    let queue = record
        .stored
        .queue
        .clone()
        .ok_or_else(|| ApiError::State("the ticket has no queue".into()))?;
    change.requeue = serde_json::json!({
        "queue": queue,
        "score": f64::from(record.band) * 4_294_967_296.0 + record.seq as f64,
        "since": record.stored.created_ms,
    });
    change
        .set
        .insert("min_tier".into(), next.as_str().to_string());
    change.event.insert("min_tier".into(), next.as_str().into());
    Ok(())
}

/// A corrected label, for retraining the classifier (`hotline-gateway corrections export`).
#[derive(Debug, Clone)]
pub struct Correction {
    /// The ticket's title.
    pub title: String,
    /// The ticket's text.
    pub text: String,
    /// Its source hotline.
    pub source: String,
    /// The corrected service.
    pub service: String,
    /// The corrected category.
    pub category: String,
}

fn running(clocks: &TicketClocks) -> Vec<ClockName> {
    clocks
        .clocks
        .iter()
        .filter(|(_, c)| c.started_ms.is_some() && c.stopped_ms.is_none())
        .map(|(n, _)| *n)
        .collect()
}

/// The body's fields as they go into the event history.
#[derive(serde::Serialize)]
struct RequestDetails<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    satisfaction: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<&'a str>,
}

impl<'a> From<&'a ActionRequest> for RequestDetails<'a> {
    fn from(r: &'a ActionRequest) -> Self {
        RequestDetails {
            note: r.note.as_deref(),
            reason: r.reason.as_deref(),
            outcome: r.outcome.and_then(|o| {
                serde_json::to_value(OutcomeName(o))
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
            }),
            summary: r.summary.as_deref(),
            satisfaction: r.satisfaction,
            comment: r.comment.as_deref(),
        }
    }
}

/// Serialises an outcome by its wire name.
struct OutcomeName(Outcome);

impl serde::Serialize for OutcomeName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self.0 {
            Outcome::Mediated => "mediated",
            Outcome::MediationFailed => "mediation_failed",
            Outcome::Answered => "answered",
            Outcome::ToLitigation => "to_litigation",
            Outcome::ToArbitration => "to_arbitration",
            Outcome::ToPolice => "to_police",
            Outcome::ReturnedToSource => "returned_to_source",
        })
    }
}

fn change(
    record: &TicketRecord,
    clocks: TicketClocks,
    sla: &SlaConfig,
    status: Option<&str>,
    dequeue: bool,
    outcomes: Vec<(String, String)>,
    event: serde_json::Map<String, serde_json::Value>,
) -> Result<TicketChange, ApiError> {
    let timers = plan_timers(&clocks, sla);
    let close = !clocks.clocks.is_empty()
        && running(&clocks).is_empty()
        && clocks.clocks.values().all(|c| c.started_ms.is_some());
    let mut change = TicketChange::new(
        record.clock_ver.clone(),
        serde_json::to_string(&clocks).map_err(|e| ApiError::Internal(e.to_string()))?,
        timers,
        event,
    );
    change.status = status.unwrap_or_default().to_string();
    change.dequeue = dequeue;
    change.outcomes = outcomes;
    change.close = close;
    Ok(change)
}

/// Recomputes the clocks of every open ticket with the policies and calendars in force
/// (after a reload). Returns how many tickets were recomputed.
pub async fn recompute_open(state: &AppState) -> Result<usize, ApiError> {
    let counties = state
        .store
        .counties()
        .await
        .map_err(|e| state.store_error(e))?;
    let mut done = 0;
    for county in counties {
        let ids = state
            .store
            .open_tickets(&county)
            .await
            .map_err(|e| state.store_error(e))?;
        for id in ids {
            if recompute_one(state, &county, &id).await? {
                done += 1;
            }
        }
    }
    state.mover.nudge();
    Ok(done)
}

async fn recompute_one(state: &AppState, county: &str, id: &str) -> Result<bool, ApiError> {
    for _ in 0..ATTEMPTS {
        let Some(record) = state
            .store
            .ticket(id)
            .await
            .map_err(|e| state.store_error(e))?
        else {
            return Ok(false);
        };
        let sla = state.sla.current();
        let Some(source) = Source::parse(&record.source) else {
            return Ok(false);
        };
        let facts = TicketFacts {
            service: &record.service,
            warning_level: &record.level,
            source,
            category: &record.category,
            transfer: record.live.as_ref().map_or("", |l| l.transfer.as_str()),
        };
        let mut clocks: TicketClocks =
            serde_json::from_str(&record.stored.clocks_json).unwrap_or_default();
        clocks.retarget(sla.policies.terms(facts, county));
        let mut event = serde_json::Map::new();
        event.insert("type".into(), "sla.recomputed".into());
        event.insert("actor".into(), "gateway".into());
        let change = change(&record, clocks, &sla, None, false, Vec::new(), event)?;
        match state
            .store
            .act(id, change)
            .await
            .map_err(|e| state.store_error(e))?
        {
            ActOutcome::Applied(_) => return Ok(true),
            ActOutcome::Stale => continue,
            ActOutcome::Missing | ActOutcome::StaleLease => return Ok(false),
        }
    }
    Ok(false)
}

/// Answer of a reload.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ReloadReport {
    /// Calendars in force.
    pub calendars: Vec<String>,
    /// (calendar, year) pairs of this year and the next without holiday data.
    #[schema(value_type = Vec<Vec<serde_json::Value>>)]
    pub missing_years: Vec<(String, i32)>,
    /// Open tickets whose clocks were recomputed.
    pub recomputed: usize,
    /// The classifier version now in force (lexicon and model reloaded).
    pub classifier_model: String,
}

/// Re-reads the configuration file and holiday data, puts the SLA section in force and
/// recomputes the deadlines of open tickets.
pub async fn reload(state: &AppState) -> Result<ReloadReport, ApiError> {
    let settings = crate::config::Settings::load(state.config_path.as_deref())
        .map_err(|e| ApiError::Invalid(vec![FieldError::new("configuration", e.to_string())]))?;
    let config = SlaConfig::build(&settings.sla, &state.settings.classify)
        .map_err(|e| ApiError::Invalid(vec![FieldError::new("configuration", e.to_string())]))?;
    // The lexicon and model files are re-read with the taxonomy the gateway started with.
    let classifier = crate::classify::Classifier::load(&state.settings.classify)
        .map_err(|e| ApiError::Invalid(vec![FieldError::new("classify.lexicon", e.to_string())]))?;
    let classifier_model = classifier.model().to_string();
    state.replace_classifier(classifier);
    publish_calendar_years(&config);
    let calendars = config.calendars.keys().cloned().collect();
    let missing_years = config.missing_years();
    state.sla.replace(config);
    let recomputed = recompute_open(state).await?;
    tracing::info!(recomputed, "SLA configuration reloaded");
    Ok(ReloadReport {
        calendars,
        missing_years,
        recomputed,
        classifier_model,
    })
}

/// Publishes the missing-year gauges of a configuration.
pub fn publish_calendar_years(config: &SlaConfig) {
    use chrono::Datelike;
    let year = chrono::Utc::now().year();
    let names: Vec<String> = config.calendars.keys().cloned().collect();
    let missing = config.missing_years();
    for (calendar, y) in &missing {
        tracing::error!(calendar = %calendar, year = y, "no holiday data: deadlines in that year cannot be computed; add the year's holiday-cn file and reload");
    }
    crate::metrics::calendar_years(&names, &missing, &[year, year + 1]);
}

/// Reload the SLA configuration, holiday files, lexicon and model; recompute open tickets'
/// deadlines.
#[utoipa::path(
    post, path = "/v1/admin/reload", tag = "ops",
    responses(
        (status = 200, description = "Reloaded", body = ReloadReport),
        (status = 401, description = "No or unknown token", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "The new configuration is invalid; the old one stays", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn reload_endpoint(
    State(state): State<Arc<AppState>>,
    Authenticated(principal): Authenticated,
) -> Result<axum::Json<ReloadReport>, ApiError> {
    principal.require(&[Role::Admin])?;
    Ok(axum::Json(reload(&state).await?))
}
