//! The rules of a ticket's life: who may take an action, from which status, and what it writes.
//! Each action is a function from (record, request, actor, rules, now) to a typed [`Change`] or a
//! [`Refusal`]; nothing here reads Redis or knows HTTP, so every rule is unit-tested.

use crate::auth::{Principal, Role};
use crate::sla::clock::TicketClocks;
use crate::sla::policy::ClockName;

use super::action::{Action, ActionRequest};
use super::change::{AgentDelta, Change, Event, LeaseCheck};
use super::holding::{live_pool, place, release_holder};
use super::moves::{self, Correction, Move};
use super::record::TicketRecord;
use super::refusal::Refusal;
use super::settings::{Facts, Rules};
use super::status::{LiveState, Status};
use super::timing;

/// What an action comes to.
#[derive(Debug, Clone)]
pub enum Decision {
    /// One atomic change of the ticket; a changed label is also a correction to learn from.
    Write {
        /// The change.
        change: Box<Change>,
        /// A corrected label, when a transfer changed service or category.
        correction: Option<Correction>,
    },
    /// A move to another county: closing here, then registering there.
    Move(Box<Move>),
    /// The same move was decided before (a retry, or one interrupted): finish it.
    FinishMove,
    /// A lease renewed (`length_ms` > 0) or given back at once (a decline, 0).
    Lease {
        /// The lease.
        lease: String,
        /// Its holder.
        agent: String,
        /// New length from now, ms.
        length_ms: u64,
    },
}

/// Decides `action` on `record` for `actor` at `now` (ms, the store's clock).
pub fn decide(
    rules: &Rules<'_>,
    record: &TicketRecord,
    action: Action,
    request: &ActionRequest,
    actor: &Principal,
    facts: Facts,
    now: i64,
) -> Result<Decision, Refusal> {
    authorize(record, action, actor)?;
    if action == Action::Transfer
        && let Some(target) = moves::other_county(record, request)
    {
        if record.status() == Status::Transferred && record.moving_to.as_deref() == Some(target) {
            return Ok(Decision::FinishMove);
        }
        admit(record, action)?;
        if !rules.counties.contains(target) {
            return Err(Refusal::field(
                "region_code",
                rules.counties.refusal(target),
            ));
        }
        if !actor.covers(target) {
            return Err(Refusal::Forbidden(format!(
                "county {target} is outside the regions of `{}`",
                actor.name
            )));
        }
        return moves::move_county(rules, record, request, actor, target, now)
            .map(|m| Decision::Move(Box::new(m)));
    }
    admit(record, action)?;
    if let Action::Renew | Action::Decline = action {
        return lease(rules, record, action, request, actor);
    }
    let mut change = base(rules, record, action, request, actor, now)?;
    let mut correction = None;
    match action {
        Action::Accept => accept(rules, record, request, actor, now, &mut change)?,
        Action::Return | Action::Withdraw => send_back(rules, record, now, &mut change),
        Action::Dispute => dispute(rules, record, &mut change),
        Action::Reopen => reopen(rules, record, now, &mut change)?,
        Action::Raise => raise(record, &mut change)?,
        Action::Transfer => {
            correction = moves::transfer(rules, record, request, &mut change)?;
        }
        Action::Escalate => moves::escalate(record, facts, &mut change)?,
        Action::CancelLive => cancel_live(rules, record, request, now, &mut change)?,
        Action::FirstContact => connect(record, &mut change),
        Action::EndCall => end_call(rules, record, now, &mut change)?,
        Action::Resolve => resolve(record, now, &mut change),
        Action::Note => note(rules, record, &mut change)?,
        Action::Pause | Action::Resume | Action::FollowUp => {}
        Action::Renew | Action::Decline => unreachable_lease(),
    }
    Ok(Decision::Write {
        change: Box::new(change),
        correction,
    })
}

/// Never reached: renew and decline return before. Kept total without a panic.
fn unreachable_lease() {}

/// Who may act on this ticket: the action's roles, the caller's regions, a partner only on
/// tickets it sent, an agent only on tickets it holds.
pub fn authorize(record: &TicketRecord, action: Action, actor: &Principal) -> Result<(), Refusal> {
    let id = record.id();
    if !action.roles().contains(&actor.role) {
        return Err(Refusal::Forbidden(format!(
            "`{}` may not {} tickets",
            actor.name,
            action.as_str()
        )));
    }
    let county = id.split('-').next().unwrap_or_default();
    if !actor.covers(county) {
        return Err(Refusal::Forbidden(format!(
            "ticket `{id}` is outside the regions of `{}`",
            actor.name
        )));
    }
    if actor.role == Role::Partner && record.sender.as_deref() != Some(actor.name.as_str()) {
        return Err(Refusal::Forbidden(format!(
            "ticket `{id}` was not sent by `{}`",
            actor.name
        )));
    }
    let Some(me) = actor
        .agent_id
        .as_deref()
        .filter(|_| actor.role == Role::Agent)
    else {
        return Ok(());
    };
    let holds = match action {
        // Accepting is checked against the lease itself.
        Action::Accept | Action::Renew | Action::Decline => true,
        Action::Return
        | Action::Withdraw
        | Action::Dispute
        | Action::Reopen
        | Action::Transfer
        | Action::Escalate => record.held_by(me),
        _ => record.assigned_agent.as_deref() == Some(me),
    };
    if holds {
        Ok(())
    } else {
        Err(Refusal::Forbidden(format!(
            "ticket `{id}` is not held by `{me}`"
        )))
    }
}

/// The transition table allows the action from the ticket's status.
fn admit(record: &TicketRecord, action: Action) -> Result<(), Refusal> {
    let t = action.transition();
    let status = record.status();
    if t.from.contains(&status) {
        return Ok(());
    }
    let allowed: Vec<&str> = t.from.iter().map(|s| s.as_str()).collect();
    Err(Refusal::State(format!(
        "cannot {} a ticket that is `{status}` (allowed from: {})",
        action.as_str(),
        allowed.join(", ")
    )))
}

/// What every action writes: the clocks after it, their timers, the outcomes of the clocks it
/// stopped, the status from the table, and the history entry with the body's details.
fn base(
    rules: &Rules<'_>,
    record: &TicketRecord,
    action: Action,
    request: &ActionRequest,
    actor: &Principal,
    now: i64,
) -> Result<Change, Refusal> {
    let mut clocks = record.stored.clocks.clone();
    let was_running = timing::running(&clocks);
    if let Some(event) = action.clock_event() {
        clocks
            .apply(event, now)
            .map_err(|e| Refusal::State(e.to_string()))?;
    }
    let mut event = Event::new(format!("ticket.{}", action.as_str()), &actor.name);
    event.fields.extend(request.details());
    let timers = timing::plan_timers(&clocks, rules.sla);
    let mut change = Change::new(record.ver, clocks, timers, event);
    change.outcomes = timing::outcomes(&change.clocks, &was_running, rules.sla);
    change.close = timing::all_stopped(&change.clocks);
    change.status = action.transition().to;
    Ok(change)
}

fn accept(
    rules: &Rules<'_>,
    record: &TicketRecord,
    request: &ActionRequest,
    actor: &Principal,
    now: i64,
    change: &mut Change,
) -> Result<(), Refusal> {
    let id = record.id();
    change.dequeue = true;
    let me = actor
        .agent_id
        .as_deref()
        .filter(|_| actor.role == Role::Agent);
    let Some(me) = me else {
        if let Some(l) = record
            .lease
            .as_ref()
            .filter(|_| record.status() == Status::Leased)
        {
            return Err(Refusal::State(format!(
                "ticket `{id}` is leased to `{}`; it accepts, or the lease expires",
                l.agent
            )));
        }
        return Ok(());
    };
    if record.status() != Status::Leased || record.lease.as_ref().is_none_or(|l| l.agent != me) {
        return Err(Refusal::State(format!(
            "claim the ticket first: `{id}` is not leased to `{me}`"
        )));
    }
    let lease = request
        .lease_id
        .clone()
        .ok_or_else(|| Refusal::field("lease_id", "is required to accept a claimed ticket"))?;
    change.lease_check = Some(LeaseCheck {
        id: lease,
        agent: me.to_string(),
    });
    change.release_lease = true;
    change.assign = Some(me.to_string());
    if record.live_state() == Some(LiveState::Waiting) {
        let busy_until =
            now.saturating_add(i64::try_from(rules.live.max_call_ms).unwrap_or(i64::MAX));
        change.live.unwait = Some(live_pool(record));
        change.live.busy = Some((me.to_string(), busy_until));
        change.labels.live = Some(LiveState::Accepted);
        change.labels.live_accepted_ms = Some(now);
        change.event.set("live", LiveState::Accepted.as_str());
        change.event.set("agent", me);
    }
    Ok(())
}

/// Return (退单) and withdraw (撤回): the ticket leaves the queues, its holder is freed, and a
/// live caller still on the line is let go too.
fn send_back(rules: &Rules<'_>, record: &TicketRecord, now: i64, change: &mut Change) {
    release_holder(record, change);
    change.dequeue = true;
    change.close = true;
    end_live(rules, record, now, change);
}

/// A live transfer still in progress ends: the caller leaves the waiting line, and an agent on
/// the call starts its wrap-up.
fn end_live(rules: &Rules<'_>, record: &TicketRecord, now: i64, change: &mut Change) {
    let Some(state) = record.live_state().filter(|s| s.in_progress()) else {
        return;
    };
    change.labels.live = Some(LiveState::Cancelled);
    change.labels.live_ended_ms = Some(now);
    change.live.unwait = Some(live_pool(record));
    if state != LiveState::Waiting
        && let Some(agent) = &record.assigned_agent
    {
        let wrap_up = i64::try_from(rules.live.wrap_up_ms).unwrap_or(0);
        change.live.busy = Some((agent.clone(), now.saturating_add(wrap_up)));
    }
    change.event.set("live", LiveState::Cancelled.as_str());
    change.event.set("previous_live", state.as_str());
}

fn dispute(rules: &Rules<'_>, record: &TicketRecord, change: &mut Change) {
    release_holder(record, change);
    change.dequeue = true;
    let county = record.id().split('-').next().unwrap_or_default();
    let triage = rules.triage_queue.replace("{county}", county);
    change.event.set(
        "from_queue",
        record.stored.queue.clone().unwrap_or_default(),
    );
    change.event.set("to_queue", triage.clone());
    change.requeue = Some(place(record, triage, record.band));
}

fn reopen(
    rules: &Rules<'_>,
    record: &TicketRecord,
    now: i64,
    change: &mut Change,
) -> Result<(), Refusal> {
    let resolved_at = record
        .stored
        .clocks
        .clocks
        .get(&ClockName::Resolve)
        .and_then(|r| r.stopped_ms);
    let window = i64::try_from(rules.reopen_days)
        .unwrap_or(i64::MAX / 86_400_000)
        .saturating_mul(86_400_000);
    if resolved_at.is_none_or(|t| now - t > window) {
        return Err(Refusal::State(format!(
            "ticket `{}` was resolved more than {} days ago; register a new ticket",
            record.id(),
            rules.reopen_days
        )));
    }
    let queue = record.stored.queue.clone().unwrap_or_default();
    change.requeue = Some(place(record, queue, record.band));
    change.unassign = record.assigned_agent.is_some();
    change.reopen = true;
    change.close = false;
    Ok(())
}

/// A note, while the ticket has room for one more.
fn note(rules: &Rules<'_>, record: &TicketRecord, change: &mut Change) -> Result<(), Refusal> {
    if record.notes >= rules.max_notes {
        return Err(Refusal::State(format!(
            "ticket `{}` already has {} notes, the most one ticket may take",
            record.id(),
            record.notes
        )));
    }
    change.counts_note = true;
    Ok(())
}

fn raise(record: &TicketRecord, change: &mut Change) -> Result<(), Refusal> {
    let band = record.band.checked_sub(1).ok_or_else(|| {
        Refusal::State(format!(
            "ticket `{}` is already in the most urgent band",
            record.id()
        ))
    })?;
    let queue = record.stored.queue.clone().unwrap_or_default();
    change.requeue = Some(place(record, queue, band));
    change.labels.band = Some(band);
    change.event.set("band", band);
    Ok(())
}

/// The caller hung up (挂断): a reservation not yet accepted is released and the ticket keeps
/// its place as ordinary work; an agent on the call starts its wrap-up; `withdraw` also
/// withdraws the ticket.
fn cancel_live(
    rules: &Rules<'_>,
    record: &TicketRecord,
    request: &ActionRequest,
    now: i64,
    change: &mut Change,
) -> Result<(), Refusal> {
    let state = record.live_state();
    if !state.is_some_and(LiveState::in_progress) {
        return Err(Refusal::State(format!(
            "ticket `{}` has no live transfer in progress (live: `{}`)",
            record.id(),
            state.map_or("none", LiveState::as_str)
        )));
    }
    change.event.kind = "live.cancelled".into();
    change.event.set(
        "reason",
        request.reason.clone().unwrap_or_else(|| "hang-up".into()),
    );
    end_live(rules, record, now, change);
    let reserved = record.status() == Status::Leased
        && record.live.as_ref().and_then(|l| l.lease.as_ref())
            == record.lease.as_ref().map(|l| &l.id);
    if state == Some(LiveState::Waiting) && reserved {
        release_holder(record, change);
        let queue = record.stored.queue.clone().unwrap_or_default();
        change.requeue = Some(place(record, queue, record.band));
        change.status = Some(Status::Queued);
    }
    if let Some(agent) = change
        .agent
        .as_ref()
        .map(|a| a.agent.clone())
        .or(record.assigned_agent.clone())
    {
        change.event.set("agent", agent);
    }
    if request.withdraw == Some(true) {
        let mut clocks = change.clocks.clone();
        clocks
            .apply(crate::sla::clock::ClockEvent::Return, now)
            .map_err(|e| Refusal::State(e.to_string()))?;
        let was_running = timing::running(&change.clocks);
        change.outcomes = timing::outcomes(&clocks, &was_running, rules.sla);
        change.timers = Vec::new();
        change.clocks = clocks;
        release_holder(record, change);
        change.requeue = None;
        change.dequeue = true;
        change.close = true;
        change.status = Some(Status::Withdrawn);
    }
    Ok(())
}

/// First contact on a live call: the agent is speaking with the caller.
fn connect(record: &TicketRecord, change: &mut Change) {
    if record.live_state() == Some(LiveState::Accepted) {
        change.labels.live = Some(LiveState::Connected);
        change.event.set("live", LiveState::Connected.as_str());
    }
}

/// The agent's live call ended: wrap-up starts, and the call's handle time is measured.
fn end_call(
    rules: &Rules<'_>,
    record: &TicketRecord,
    now: i64,
    change: &mut Change,
) -> Result<(), Refusal> {
    let live = record
        .live
        .as_ref()
        .filter(|l| matches!(l.state, LiveState::Accepted | LiveState::Connected))
        .ok_or_else(|| {
            Refusal::State(format!(
                "ticket `{}` has no live call in progress",
                record.id()
            ))
        })?;
    let agent = record.assigned_agent.clone().unwrap_or_default();
    let wrap_up = i64::try_from(rules.live.wrap_up_ms).unwrap_or(0);
    let handled = (now - live.accepted_ms.unwrap_or(now)).max(0) + wrap_up;
    change.live.busy = Some((agent, now + wrap_up));
    change.live.handle_time = Some((live_pool(record), handled, rules.live.handle_time_weight));
    change.labels.live = Some(LiveState::Ended);
    change.labels.live_ended_ms = Some(now);
    change.event.set("live", LiveState::Ended.as_str());
    Ok(())
}

/// Resolution frees the agent and counts its handle time (from acceptance).
fn resolve(record: &TicketRecord, now: i64, change: &mut Change) {
    if let Some(agent) = &record.assigned_agent {
        let accepted = accepted_ms(&record.stored.clocks).unwrap_or(now);
        change.agent = Some(AgentDelta {
            agent: agent.clone(),
            active: -1,
            handled: 1,
            handle_ms: Some((now - accepted).max(0)),
        });
    }
}

/// When the ticket was accepted, from its accept clock.
pub fn accepted_ms(clocks: &TicketClocks) -> Option<i64> {
    clocks
        .clocks
        .get(&ClockName::Accept)
        .and_then(|a| a.stopped_ms)
}

fn lease(
    rules: &Rules<'_>,
    record: &TicketRecord,
    action: Action,
    request: &ActionRequest,
    actor: &Principal,
) -> Result<Decision, Refusal> {
    let me = actor.agent_id.clone().unwrap_or_default();
    let lease = request
        .lease_id
        .clone()
        .ok_or_else(|| Refusal::field("lease_id", "is required"))?;
    if record
        .lease
        .as_ref()
        .is_none_or(|l| l.id != lease || l.agent != me)
    {
        return Err(Refusal::State(format!(
            "lease `{lease}` is not the current lease of `{me}` on ticket `{}`",
            record.id()
        )));
    }
    // A decline is a renewal to "now": the reaper returns the ticket at once.
    let length_ms = if action == Action::Decline {
        0
    } else {
        rules.lease_ms
    };
    Ok(Decision::Lease {
        lease,
        agent: me,
        length_ms,
    })
}
