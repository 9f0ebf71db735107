//! Moving a ticket: a transfer within its county (re-routed with corrected labels), a move to
//! another county (closed here, registered there), and escalation to the next tier up. The
//! ticket keeps its arrival order and age wherever it goes.

use serde::{Deserialize, Serialize};

use crate::agents::Tier;
use crate::auth::Principal;
use crate::classify::{Decision as Labels, Service};
use crate::sla::clock::{ClockEvent, TicketClocks};
use crate::ticket::{Region, Ticket};

use super::action::ActionRequest;
use super::change::Change;
use super::holding::{place, release_holder};
use super::record::TicketRecord;
use super::refusal::Refusal;
use super::settings::{Facts, Rules};
use super::status::Status;
use super::timing;
use super::timing::facts;

/// A corrected label, for retraining the classifier (`hotline-gateway corrections export`).
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// What a move registers in the other county: kept on the old ticket until the new one exists,
/// so any gateway can finish an interrupted move.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MovePlan {
    /// The ticket, with its new region and the idempotency key `transfer:<old id>`.
    pub ticket: Ticket,
    /// Classification JSON with the corrected labels and the move's reason.
    pub classification: serde_json::Value,
    /// Service label.
    pub service: String,
    /// Warning level.
    pub level: String,
    /// Category.
    pub category: String,
    /// The queue there.
    pub queue: String,
    /// The routing rule that chose it.
    pub rule: String,
    /// Priority band.
    pub band: u32,
    /// Its clocks, re-targeted for the new county's policies.
    pub clocks: TicketClocks,
    /// `county/town/village/grid` there.
    pub region_path: String,
    /// The enqueue time it keeps, ms.
    pub since_ms: i64,
    /// The old ticket.
    pub from: String,
    /// The partner called back, if any.
    pub callback: Option<String>,
    /// Who sent the original ticket (stays its sender).
    pub sender: Option<String>,
    /// Who moved it.
    pub actor: String,
}

/// A move to another county: the change that closes the ticket here, and the plan there.
#[derive(Debug, Clone)]
pub struct Move {
    /// Closes the old ticket as `transferred`, naming the target county and keeping the plan.
    pub close: Change,
    /// What to register in the target county.
    pub plan: MovePlan,
    /// The corrected label, if service or category changed.
    pub correction: Option<Correction>,
}

/// The county a transfer request names, when it is not the ticket's own.
pub fn other_county<'a>(record: &TicketRecord, request: &'a ActionRequest) -> Option<&'a str> {
    let county = record.id().split('-').next().unwrap_or_default();
    request.region_code.as_deref().filter(|c| *c != county)
}

/// The labels a transfer corrects, and what follows from them.
struct Relabel {
    service: String,
    category: String,
    classification: serde_json::Value,
    labels: Labels,
}

impl Relabel {
    fn new(
        record: &TicketRecord,
        request: &ActionRequest,
        note: String,
    ) -> Result<Relabel, Refusal> {
        let service_name = request
            .service
            .clone()
            .unwrap_or_else(|| record.service.clone());
        let service = Service::parse(&service_name).ok_or_else(|| {
            Refusal::State(format!("ticket service `{service_name}` cannot be routed"))
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
        let labels = Labels {
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
            labels,
        })
    }

    fn correction(&self, record: &TicketRecord, ticket: Ticket) -> Option<Correction> {
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

fn stored_ticket(record: &TicketRecord) -> Result<Ticket, Refusal> {
    serde_json::from_str(&record.ticket_json)
        .map_err(|e| Refusal::Internal(format!("stored ticket `{}` unreadable: {e}", record.id())))
}

/// A transfer within the county: the routing table decides for the corrected service, category
/// and place; the clocks get the new targets. Returns the correction when a label changed.
pub(super) fn transfer(
    rules: &Rules<'_>,
    record: &TicketRecord,
    request: &ActionRequest,
    change: &mut Change,
) -> Result<Option<Correction>, Refusal> {
    let ticket = stored_ticket(record)?;
    let relabel = Relabel::new(
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
    let route = rules.router.route(&relabel.labels, ticket.source, &region);
    let queue = route
        .queue
        .ok_or_else(|| Refusal::State("that service has no queue here".into()))?;
    let county = &region.code;
    let terms = rules.sla.policies.terms(
        facts(record, &relabel.service, &relabel.category, ticket.source),
        county,
    );
    change.clocks.retarget(terms);
    change.timers = timing::plan_timers(&change.clocks, rules.sla);
    leave_holder_and_queue(record, request, change);
    change.event.set("to_queue", queue.clone());
    change.requeue = Some(place(record, queue, route.band));
    change.labels.service = Some(relabel.service.clone());
    change.labels.category = Some(relabel.category.clone());
    change.labels.band = Some(route.band);
    change.labels.region_path = Some(path.join("/"));
    change.labels.classification = Some(relabel.classification.clone());
    Ok(relabel.correction(record, ticket))
}

/// A ticket that moves lets go of its holder and its queue, and says where it came from.
fn leave_holder_and_queue(record: &TicketRecord, request: &ActionRequest, change: &mut Change) {
    release_holder(record, change);
    change.dequeue = true;
    change.event.set(
        "from_queue",
        record.stored.queue.clone().unwrap_or_default(),
    );
    change
        .event
        .set("reason", request.reason.clone().unwrap_or_default());
}

/// A move to another county (the two counties are different Redis slots, so it is two steps):
/// first this ticket is closed as `transferred` with the plan for the other county kept on it;
/// then the plan is registered there under the idempotency key `transfer:<old id>`. Whichever
/// of two racing moves closes the ticket first wins; the other finds it closed.
pub(super) fn move_county(
    rules: &Rules<'_>,
    record: &TicketRecord,
    request: &ActionRequest,
    actor: &Principal,
    target: &str,
    now: i64,
) -> Result<Move, Refusal> {
    let mut ticket = stored_ticket(record)?;
    let old_id = record.id().to_string();
    ticket.external_id = format!("transfer:{old_id}");
    ticket.region = Region {
        code: target.to_string(),
        town: request.town.clone(),
        village: request.village.clone(),
        grid: request.grid.clone(),
    };
    let reason = request.reason.clone().unwrap_or_default();
    let relabel = Relabel::new(record, request, format!("跨县转办自{old_id}: {reason}"))?;
    let route = rules
        .router
        .route(&relabel.labels, ticket.source, &ticket.region);
    let queue = route
        .queue
        .clone()
        .ok_or_else(|| Refusal::State("that service has no queue there".into()))?;
    let mut clocks = record.stored.clocks.clone();
    clocks.retarget(rules.sla.policies.terms(
        facts(record, &relabel.service, &relabel.category, ticket.source),
        target,
    ));
    let correction = relabel.correction(record, ticket.clone());
    let plan = MovePlan {
        region_path: crate::agents::region_path(&ticket.region),
        ticket,
        classification: relabel.classification,
        service: relabel.service,
        level: record.level.clone(),
        category: relabel.category,
        queue: queue.clone(),
        rule: route.rule,
        band: route.band,
        clocks,
        since_ms: record.stored.created_ms,
        from: old_id,
        callback: record.callback.clone(),
        sender: record.sender.clone(),
        actor: actor.name.clone(),
    };
    let mut old_clocks = record.stored.clocks.clone();
    // Returning stops every running clock; one already stopped stays as it is.
    let _ = old_clocks.apply(ClockEvent::Return, now);
    let mut close = Change::new(
        record.ver,
        old_clocks,
        Vec::new(),
        super::change::Event::new("ticket.transfer", &actor.name),
    );
    close.event.fields.extend(request.details());
    leave_holder_and_queue(record, request, &mut close);
    close.status = Some(Status::Transferred);
    close.close = true;
    close.labels.moving_to = Some(target.to_string());
    close.event.set("to_county", target);
    close.event.set("to_queue", queue);
    Ok(Move {
        close,
        plan,
        correction,
    })
}

/// Escalation (上报): the tier above whoever held it (or above the ticket's current floor)
/// becomes the lowest tier allowed; the ticket keeps its place in line.
pub(super) fn escalate(
    record: &TicketRecord,
    facts: Facts,
    change: &mut Change,
) -> Result<(), Refusal> {
    let floor = match (record.min_tier, facts.holder_tier) {
        (Some(f), Some(h)) => Some(f.max(h)),
        (f, h) => f.or(h),
    };
    let next = match floor {
        Some(t) => t.above(),
        None => Some(Tier::Village),
    }
    .ok_or_else(|| {
        Refusal::State("already at the county centre: nowhere higher to escalate".into())
    })?;
    let queue = record
        .stored
        .queue
        .clone()
        .ok_or_else(|| Refusal::State("the ticket has no queue".into()))?;
    release_holder(record, change);
    change.dequeue = true;
    change.event.set(
        "from_queue",
        record.stored.queue.clone().unwrap_or_default(),
    );
    change.requeue = Some(place(record, queue, record.band));
    change.labels.min_tier = Some(next);
    change.event.set("min_tier", next.as_str());
    Ok(())
}
