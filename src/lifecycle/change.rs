//! What an action writes, as one typed value. The domain builds it; the store serialises it for
//! `ticket_action.lua` in one place, computing the queue score and key names itself.

use serde_json::{Map, Value};

use crate::agents::Tier;
use crate::sla::clock::{TicketClocks, TimerPlan};
use crate::sla::policy::ClockName;

use super::status::{LiveState, Status};

/// A place in line: the queue and what orders it (band, then arrival), and the age it keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The queue's name.
    pub queue: String,
    /// Priority band, 0 most urgent.
    pub band: u32,
    /// Arrival order in the county.
    pub seq: u64,
    /// Enqueue time it keeps, ms (its age is not reset by a transfer).
    pub since_ms: i64,
}

/// A change to one agent's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentDelta {
    /// The agent.
    pub agent: String,
    /// Change of the tickets it holds.
    pub active: i64,
    /// Change of the tickets it resolved.
    pub handled: i64,
    /// Handle time to add, ms.
    pub handle_ms: Option<i64>,
}

/// The labels an action sets on the ticket; `None` leaves a label as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Labels {
    /// New service.
    pub service: Option<String>,
    /// New category.
    pub category: Option<String>,
    /// New priority band.
    pub band: Option<u32>,
    /// New `county/town/village/grid`.
    pub region_path: Option<String>,
    /// New classification JSON (service, category and the reason of the correction).
    pub classification: Option<Value>,
    /// Lowest tier allowed after an escalation.
    pub min_tier: Option<Tier>,
    /// New live state.
    pub live: Option<LiveState>,
    /// When the live call was accepted, ms.
    pub live_accepted_ms: Option<i64>,
    /// When the live call ended, ms.
    pub live_ended_ms: Option<i64>,
    /// The county a transfer is moving it to (set with status `transferred`).
    pub moving_to: Option<String>,
}

/// Live-transfer bookkeeping outside the ticket.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveEffects {
    /// The caller no longer waits in this pool's line.
    pub unwait: Option<String>,
    /// The agent is on a live call or in wrap-up until this time, ms.
    pub busy: Option<(String, i64)>,
    /// A live handle time for the pool's wait estimate: (pool, ms, weight).
    pub handle_time: Option<(String, i64, f64)>,
}

/// The lease an action must still find on the ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseCheck {
    /// The lease id the caller holds.
    pub id: String,
    /// The agent that must hold it.
    pub agent: String,
}

/// One entry of the ticket's history (and of the county's event stream).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `ticket.<action>`, `sla.recomputed`, ….
    pub kind: String,
    /// Who did it (token name, or `gateway`).
    pub actor: String,
    /// Details: reason, note, outcome, queues, agents, ….
    pub fields: Map<String, Value>,
}

impl Event {
    /// An event of `kind` by `actor` with no details yet.
    pub fn new(kind: impl Into<String>, actor: impl Into<String>) -> Event {
        Event {
            kind: kind.into(),
            actor: actor.into(),
            fields: Map::new(),
        }
    }

    /// Adds a detail.
    pub fn set(&mut self, key: &str, value: impl Into<Value>) {
        self.fields.insert(key.to_string(), value.into());
    }
}

/// Everything one action writes, atomically, if the ticket is still at `expected_ver`.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The record version the change was computed from.
    pub expected_ver: u64,
    /// The clocks after the action.
    pub clocks: TicketClocks,
    /// The timers of the running clocks (they replace the ticket's timers).
    pub timers: Vec<TimerPlan>,
    /// New status, if it changes.
    pub status: Option<Status>,
    /// Leaves its queue.
    pub dequeue: bool,
    /// Clocks that stopped now: met (`true`) or breached, for the queue's compliance.
    pub outcomes: Vec<(ClockName, bool)>,
    /// No clock runs any more: it leaves the open set and the risk lists.
    pub close: bool,
    /// Back among the tickets with running clocks (reopened).
    pub reopen: bool,
    /// The history entry.
    pub event: Event,
    /// The lease the action needs, checked in the same step.
    pub lease_check: Option<LeaseCheck>,
    /// The lease ends.
    pub release_lease: bool,
    /// Assigned to this agent (its missed-offer streak resets).
    pub assign: Option<String>,
    /// Nobody is assigned any more.
    pub unassign: bool,
    /// An agent's figures change.
    pub agent: Option<AgentDelta>,
    /// Back in line at this place.
    pub requeue: Option<Placement>,
    /// Labels set on the ticket.
    pub labels: Labels,
    /// Live-transfer bookkeeping.
    pub live: LiveEffects,
    /// The action adds a note (counted against `agents.max_notes`).
    pub counts_note: bool,
}

impl Change {
    /// A change that writes only the clocks (and their timers) and the history entry.
    pub fn new(
        expected_ver: u64,
        clocks: TicketClocks,
        timers: Vec<TimerPlan>,
        event: Event,
    ) -> Change {
        Change {
            expected_ver,
            clocks,
            timers,
            status: None,
            dequeue: false,
            outcomes: Vec::new(),
            close: false,
            reopen: false,
            event,
            lease_check: None,
            release_lease: false,
            assign: None,
            unassign: false,
            agent: None,
            requeue: None,
            labels: Labels::default(),
            live: LiveEffects::default(),
            counts_note: false,
        }
    }
}
