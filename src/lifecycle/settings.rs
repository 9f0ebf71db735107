//! What the rules read besides the ticket: the settings in force, and facts from outside the
//! ticket that the caller reads before deciding.

use crate::agents::Tier;
use crate::routing::Router;
use crate::sla::SlaConfig;

/// Live-transfer settings the rules need.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LiveRules {
    /// How long an accepted live call may keep the agent busy, ms.
    pub max_call_ms: u64,
    /// Wrap-up after a live call, ms.
    pub wrap_up_ms: u64,
    /// Weight of a new handle time in the moving average.
    pub handle_time_weight: f64,
}

/// Everything configured that the rules read, borrowed from the settings in force.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    /// Calendars and policies in force.
    pub sla: &'a SlaConfig,
    /// The routing table (transfers are routed like new tickets).
    pub router: &'a Router,
    /// The triage queue's name, `{county}` standing for the county (disputes go there).
    pub triage_queue: &'a str,
    /// How long after resolution a ticket may be reopened, days.
    pub reopen_days: u64,
    /// A renewed lease's length, ms.
    pub lease_ms: u64,
    /// Most notes one ticket may take.
    pub max_notes: u32,
    /// Live-transfer settings.
    pub live: LiveRules,
    /// The deployment's counties: a move goes only to one of them.
    pub counties: &'a crate::county::Counties,
}

/// Facts the rules need from outside the ticket, read by the caller before deciding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Facts {
    /// The tier of the agent holding the ticket (escalation goes above it).
    pub holder_tier: Option<Tier>,
}
