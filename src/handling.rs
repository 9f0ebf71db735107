//! Carrying out an action on a ticket (办理): read the record once, decide by the rules of
//! [`crate::lifecycle`], write the typed change in one script, and decide again if another
//! writer (an action, a claim, a lapsing lease) got there first. Moves to another county are
//! finished here, by the request that closed the ticket or, after a crash, by any gateway.

use crate::auth::Principal;
use crate::case::CaseFile;
use crate::lifecycle::{
    Action, ActionRequest, Change, Decision, Facts, LiveRules, MovePlan, Refusal, Rules,
    TicketRecord, decide,
};
use crate::queues::{ActOutcome, IngestOutcome, NewTicket, RenewOutcome, Store, StoreError};
use crate::sla::SlaConfig;
use crate::state::AppState;
use crate::ticket::Source;

/// How often an action is decided again when another writer changed the ticket meanwhile.
const ATTEMPTS: usize = 8;

/// Why an action was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum HandlingError {
    /// The rules refused it.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The case archive failed (reading or reopening an archived ticket).
    #[error(transparent)]
    Archive(#[from] crate::archive::ArchiveError),
}

/// What a carried-out action left.
#[derive(Debug)]
pub enum Done {
    /// The ticket as it is now.
    Ticket(Box<TicketRecord>),
    /// A lease renewed or given back.
    Lease {
        /// The lease.
        lease_id: String,
        /// Its new deadline, ms.
        expires_ms: i64,
    },
}

fn not_found(id: &str) -> HandlingError {
    Refusal::NotFound(format!("no ticket `{id}`")).into()
}

/// The rules in force, from the settings and the SLA configuration in force.
pub fn rules<'a>(state: &'a AppState, sla: &'a SlaConfig) -> Rules<'a> {
    Rules {
        sla,
        router: &state.router,
        triage_queue: &state.settings.routing.default_queues.triage,
        reopen_days: state.settings.agents.reopen_days,
        lease_ms: state.settings.agents.lease_seconds * 1000,
        max_notes: state.settings.agents.max_notes,
        live: LiveRules {
            max_call_ms: state.live.max_call_ms,
            wrap_up_ms: state.live.wrap_up_ms,
            handle_time_weight: state.live.handle_time_weight,
        },
        counties: &state.settings.counties,
    }
}

/// Reads a ticket the caller may see: not found, or forbidden outside its regions, or (for a
/// partner) a ticket it did not send. A ticket no longer in Redis is read from the case
/// archive, so reads look the same before and after archiving.
pub async fn readable(
    state: &AppState,
    actor: &Principal,
    id: &str,
) -> Result<TicketRecord, HandlingError> {
    Ok(readable_found(state, actor, id).await?.0)
}

/// As [`readable`], with the case file when the ticket was read from the archive.
async fn readable_found(
    state: &AppState,
    actor: &Principal,
    id: &str,
) -> Result<(TicketRecord, Option<CaseFile>), HandlingError> {
    let county = crate::queues::county_of(id).ok_or_else(|| not_found(id))?;
    if !actor.covers(county) {
        return Err(Refusal::Forbidden(format!(
            "ticket `{id}` is outside the regions of `{}`",
            actor.name
        ))
        .into());
    }
    let (record, case) = read_any(state, id).await?.ok_or_else(|| not_found(id))?;
    if actor.role == crate::auth::Role::Partner && record.sender.as_deref() != Some(&actor.name) {
        return Err(
            Refusal::Forbidden(format!("ticket `{id}` was not sent by `{}`", actor.name)).into(),
        );
    }
    Ok((record, case))
}

/// A ticket from Redis, else from the case archive (with its case file); `None` when neither
/// has it. The archive is asked only when Redis has no such ticket.
pub async fn read_any(
    state: &AppState,
    id: &str,
) -> Result<Option<(TicketRecord, Option<CaseFile>)>, HandlingError> {
    if let Some(record) = state.store.ticket(id).await? {
        return Ok(Some((record, None)));
    }
    let Some(case) = state.archive.get(id).await? else {
        return Ok(None);
    };
    let record = crate::queues::record_of_case(&case)?;
    Ok(Some((record, Some(case))))
}

/// A page of a ticket's history (`limit` events from `offset`) and how many there are, from
/// Redis, else from the case archive; `None` when neither has the ticket.
pub async fn history_page(
    state: &AppState,
    id: &str,
    offset: u64,
    limit: u64,
) -> Result<Option<(Vec<String>, u64)>, HandlingError> {
    if let Some(page) = state.store.history(id, offset, limit).await? {
        return Ok(Some(page));
    }
    let Some(case) = state.archive.get(id).await? else {
        return Ok(None);
    };
    let page = case
        .history
        .iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .map(serde_json::Value::to_string)
        .collect();
    Ok(Some((page, case.history.len() as u64)))
}

/// Carries out `action` on ticket `id` for `actor`.
pub async fn act(
    state: &AppState,
    actor: &Principal,
    id: &str,
    action: Action,
    request: &ActionRequest,
) -> Result<Done, HandlingError> {
    request.validate(action, &state.settings.classify.categories)?;
    for _ in 0..ATTEMPTS {
        let (record, case) = readable_found(state, actor, id).await?;
        let facts = facts(&state.store, &record, action).await?;
        let sla = state.sla.current();
        let now = state.store.now_ms();
        let decision = decide(
            &rules(state, &sla),
            &record,
            action,
            request,
            actor,
            facts,
            now,
        )?;
        match decision {
            Decision::Write { change, correction } => {
                // An archived ticket (a reopen) comes back to Redis first, as it was archived,
                // and the change is written on it like on any other.
                if let Some(case) = &case {
                    state.store.restore_case(case).await?;
                }
                match state.store.act(id, &change, None).await? {
                    ActOutcome::Applied(_) => {
                        after(state, &record, action, &change, now);
                        if let Some(c) = correction {
                            crate::metrics::classifier_correction(
                                &record.service,
                                &record.category,
                                &c.service,
                                &c.category,
                            );
                            // A learning signal outside the county's slot, written after the
                            // change; a lost entry costs one example.
                            if let Err(e) = state.store.record_correction(id, &c, &actor.name).await
                            {
                                tracing::warn!(error = %e, "correction not recorded");
                            }
                        }
                        return reread(state, id).await;
                    }
                    ActOutcome::Stale => continue,
                    ActOutcome::StaleLease => return Err(stale_lease(id, request)),
                    // Archived between the read and the write (or again after a restore):
                    // read it again, from wherever it is now; gone from both is a 404 there.
                    ActOutcome::Missing => continue,
                }
            }
            Decision::Move(m) => match state.store.act(id, &m.close, Some(&m.plan)).await? {
                ActOutcome::Applied(_) => {
                    after(state, &record, action, &m.close, now);
                    finish_move(state, id, &m.plan).await?;
                    if let Some(c) = m.correction {
                        crate::metrics::classifier_correction(
                            &record.service,
                            &record.category,
                            &c.service,
                            &c.category,
                        );
                        if let Err(e) = state.store.record_correction(id, &c, &actor.name).await {
                            tracing::warn!(error = %e, "correction not recorded");
                        }
                    }
                    return reread(state, id).await;
                }
                ActOutcome::Stale => continue,
                ActOutcome::StaleLease => return Err(stale_lease(id, request)),
                ActOutcome::Missing => continue,
            },
            Decision::FinishMove => {
                if let Some(plan) = state.store.move_plan(id).await? {
                    finish_move(state, id, &plan).await?;
                }
                return reread(state, id).await;
            }
            Decision::Lease {
                lease,
                agent,
                length_ms,
            } => return renew(state, id, action, lease, &agent, length_ms).await,
        }
    }
    Err(Refusal::State(format!(
        "ticket `{id}` kept changing while this action was applied; retry"
    ))
    .into())
}

fn stale_lease(id: &str, request: &ActionRequest) -> HandlingError {
    Refusal::State(format!(
        "lease `{}` is not the current lease on `{id}`",
        request.lease_id.clone().unwrap_or_default()
    ))
    .into()
}

/// The ticket as the action left it; an ended ticket may already be in the archive.
async fn reread(state: &AppState, id: &str) -> Result<Done, HandlingError> {
    let (record, _) = read_any(state, id).await?.ok_or_else(|| not_found(id))?;
    Ok(Done::Ticket(Box::new(record)))
}

/// The facts from outside the ticket that an action needs: the holder's tier, to escalate.
async fn facts(store: &Store, record: &TicketRecord, action: Action) -> Result<Facts, StoreError> {
    let mut facts = Facts::default();
    if action == Action::Escalate
        && let Some(holder) = record.holder()
        && let Some(agent) = store.agent(holder).await?
    {
        facts.holder_tier = Some(agent.spec.tier);
    }
    Ok(facts)
}

/// What follows a written change outside Redis: the mover looks again, and the metrics.
fn after(state: &AppState, record: &TicketRecord, action: Action, change: &Change, now: i64) {
    if let Some(county) = crate::queues::county_of(record.id()) {
        state.mover.wake(county);
    }
    let queue = record.stored.queue.clone().unwrap_or_default();
    match action {
        Action::CancelLive => crate::metrics::live_reservation("cancelled"),
        Action::Resolve => {
            crate::metrics::queue_event(&queue, "resolution");
            if let Some(a) = crate::lifecycle::rules::accepted_ms(&record.stored.clocks) {
                crate::metrics::queue_handle(&queue, (now - a) as f64 / 1000.0);
            }
        }
        Action::Transfer => crate::metrics::queue_event(&queue, "transfer"),
        Action::Escalate => crate::metrics::queue_event(&queue, "escalation"),
        _ => {}
    }
    if action == Action::Accept
        && change.live.unwait.is_some()
        && let Some(live) = &record.live
    {
        let waited = (now - live.since_ms) as f64 / 1000.0;
        crate::metrics::live_waited(waited, live.estimate_ms.map(|e| e as f64 / 1000.0));
        crate::metrics::live_reservation("accepted");
    }
    if action != Action::CancelLive {
        crate::metrics::ticket_action(action.as_str());
    }
}

async fn renew(
    state: &AppState,
    id: &str,
    action: Action,
    lease: String,
    agent: &str,
    length_ms: u64,
) -> Result<Done, HandlingError> {
    match state.store.renew(id, &lease, agent, length_ms).await? {
        RenewOutcome::Renewed(expires_ms) => {
            crate::metrics::ticket_action(action.as_str());
            if let Some(county) = crate::queues::county_of(id) {
                state.mover.wake(county);
            }
            Ok(Done::Lease {
                lease_id: lease,
                expires_ms,
            })
        }
        RenewOutcome::Stale => Err(Refusal::State(format!(
            "lease `{lease}` is not the current lease of `{agent}` on ticket `{id}`"
        ))
        .into()),
    }
}

/// The second step of a move: registers the plan in the other county (idempotent under
/// `transfer:<old id>`) and points the old ticket at the new one.
pub async fn finish_move(
    state: &AppState,
    old_id: &str,
    plan: &MovePlan,
) -> Result<String, StoreError> {
    let sla = state.sla.current();
    let timers = crate::lifecycle::timing::plan_timers(&plan.clocks, &sla);
    let ticket_json =
        serde_json::to_vec(&plan.ticket).map_err(|e| StoreError::Reply(e.to_string()))?;
    let content_hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&ticket_json));
    let clocks_json =
        serde_json::to_string(&plan.clocks).map_err(|e| StoreError::Reply(e.to_string()))?;
    let classification_json = plan.classification.to_string();
    let new = NewTicket {
        ticket: &plan.ticket,
        space: crate::queues::KeySpace::Transfer,
        content_hash: &content_hash,
        classification_json: &classification_json,
        service: &plan.service,
        level: &plan.level,
        category: &plan.category,
        queue: Some(&plan.queue),
        rule: &plan.rule,
        band: plan.band,
        clocks_json: &clocks_json,
        timers: &timers,
        actor: &plan.actor,
        region_path: &plan.region_path,
        caller_key: "",
        duplicate_window_secs: 0,
        since_ms: Some(plan.since_ms),
        transferred_from: Some(&plan.from),
        callback: plan.callback.as_deref().unwrap_or(""),
        sender: plan.sender.as_deref().unwrap_or(""),
        live_asked: false,
        linked_archived: &[],
    };
    let new_id = match state.store.ingest(&new).await? {
        IngestOutcome::Created(s) | IngestOutcome::Existing(s) => s.id,
        IngestOutcome::Archived(id) => id,
        // The move's key holds one ticket; a conflict names it (the plan's content is fixed).
        IngestOutcome::Conflict { id: Some(id), .. } => id,
        IngestOutcome::Conflict { id: None, county } => {
            return Err(StoreError::Reply(format!(
                "the move of {old_id} found its key held by county {county:?} without a ticket"
            )));
        }
    };
    state
        .store
        .finish_move(old_id, &new_id, &plan.queue)
        .await?;
    for id in [old_id, new_id.as_str()] {
        if let Some(county) = crate::queues::county_of(id) {
            state.mover.wake(county);
        }
    }
    Ok(new_id)
}

/// Finishes the moves that a stopped gateway left between their two steps (decided more than
/// `grace_ms` ago). Returns how many were finished.
pub async fn finish_interrupted_moves(
    state: &AppState,
    grace_ms: i64,
) -> Result<usize, StoreError> {
    let mut done = 0;
    let before = state.store.now_ms() - grace_ms;
    let counties = state.store.counties().await?;
    for (_, id) in state.store.unfinished_moves(&counties, before).await? {
        if let Some(plan) = state.store.move_plan(&id).await? {
            let new_id = finish_move(state, &id, &plan).await?;
            tracing::info!(ticket_id = %id, to = %new_id, "interrupted move finished");
            done += 1;
        }
    }
    Ok(done)
}

/// Recomputes the clocks of every open ticket with the policies and calendars in force
/// (after a reload), reporting its progress to `state.recompute` as it goes. Returns how many
/// tickets were recomputed; stops early when the gateway shuts down (the caller can tell by
/// `state.is_closing()`).
pub async fn recompute_open(state: &AppState) -> Result<usize, StoreError> {
    let mut open = Vec::new();
    for county in state.store.counties().await? {
        for id in state.store.open_tickets(&county).await? {
            open.push((county.clone(), id));
        }
    }
    state.recompute.listed(open.len());
    let mut done = 0;
    for (county, id) in open {
        if state.is_closing() {
            break;
        }
        let recomputed = recompute_one(state, &county, &id).await?;
        state.recompute.checked(recomputed);
        done += usize::from(recomputed);
    }
    state.mover.wake_all();
    Ok(done)
}

async fn recompute_one(state: &AppState, county: &str, id: &str) -> Result<bool, StoreError> {
    for _ in 0..ATTEMPTS {
        let Some(record) = state.store.ticket(id).await? else {
            return Ok(false);
        };
        let Some(source) = Source::parse(&record.source) else {
            return Ok(false);
        };
        let sla = state.sla.current();
        let facts =
            crate::lifecycle::timing::facts(&record, &record.service, &record.category, source);
        let mut clocks = record.stored.clocks.clone();
        clocks.retarget(sla.policies.terms(facts, county));
        let timers = crate::lifecycle::timing::plan_timers(&clocks, &sla);
        let mut change = Change::new(
            record.ver,
            clocks,
            timers,
            crate::lifecycle::Event::new("sla.recomputed", "gateway"),
        );
        change.close = crate::lifecycle::timing::all_stopped(&change.clocks);
        match state.store.act(id, &change, None).await? {
            ActOutcome::Applied(_) => return Ok(true),
            ActOutcome::Stale => continue,
            ActOutcome::Missing | ActOutcome::StaleLease => return Ok(false),
        }
    }
    Ok(false)
}
