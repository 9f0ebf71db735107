//! A ticket as the domain reads it: every field typed, read from the store once per action.
//! The store builds it; a field it cannot read is an error there, never a silent default here.

use std::collections::HashSet;

use crate::agents::Tier;
use crate::sla::clock::TicketClocks;

use super::status::{LiveState, Status};

/// What intake reports about a stored ticket (also the core of every record).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTicket {
    /// `<county>-<seq>`.
    pub id: String,
    /// Where it stands.
    pub status: Status,
    /// Queue it waits in (or last waited in), if any.
    pub queue: Option<String>,
    /// JSON of the classification, shown as stored.
    pub classification_json: String,
    /// Registration time (Redis clock), ms since the epoch.
    pub created_ms: i64,
    /// Its SLA clocks, parsed once.
    pub clocks: TicketClocks,
    /// The sender asked for a live transfer when registering it.
    pub live_asked: bool,
}

/// A lease on a claimed or offered ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The lease id (a fencing token: ids only grow).
    pub id: String,
    /// The agent holding it.
    pub agent: String,
    /// When it lapses, ms.
    pub expires_ms: Option<i64>,
}

/// The live-transfer part of a ticket whose caller asked for one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    /// Where the transfer stands.
    pub state: LiveState,
    /// `live` (asked on duty) or `callback` (asked off duty); the SLA policies match on it.
    pub transfer: String,
    /// When the caller asked, ms.
    pub since_ms: i64,
    /// The wait they were told, ms, if they had to wait.
    pub estimate_ms: Option<i64>,
    /// The lease id of a live reservation pending now.
    pub lease: Option<String>,
    /// When an agent accepted the call, ms.
    pub accepted_ms: Option<i64>,
    /// When the pending lease lapses, ms.
    pub lease_expires_ms: Option<i64>,
    /// The agent pool whose line the caller waits in (`legal`, `mediation`).
    pub pool: Option<String>,
}

/// Everything stored about one ticket, for reads and for deciding an action.
#[derive(Debug, Clone)]
pub struct TicketRecord {
    /// The stored core: id, status, queue, classification, clocks.
    pub stored: StoredTicket,
    /// The record's version: every script that changes the ticket or who holds it moves it,
    /// and an action is written only if it is still the version read.
    pub ver: u64,
    /// JSON of the ticket as received.
    pub ticket_json: String,
    /// The newest events (JSON, oldest of them first): at most one page, so reading a
    /// ticket costs the same however long its history is.
    pub history: Vec<String>,
    /// How many events the whole history holds.
    pub history_total: u64,
    /// Notes taken so far (bounded by `agents.max_notes`).
    pub notes: u32,
    /// Timers that have fired, as `<clock>:<kind>`.
    pub fired: HashSet<String>,
    /// Service label.
    pub service: String,
    /// Warning level label.
    pub level: String,
    /// Category label.
    pub category: String,
    /// Source hotline.
    pub source: String,
    /// The caller (token name) that sent it; partners act only on their own tickets.
    pub sender: Option<String>,
    /// Marked overdue (督办) by a breach.
    pub overdue: bool,
    /// The lease on it, while an agent holds it claimed or offered.
    pub lease: Option<Lease>,
    /// The agent working it, once accepted.
    pub assigned_agent: Option<String>,
    /// The lowest tier allowed after an escalation.
    pub min_tier: Option<Tier>,
    /// Arrival order in the county.
    pub seq: u64,
    /// Priority band (0 = most urgent).
    pub band: u32,
    /// `county/town/village/grid`.
    pub region_path: String,
    /// Earlier or later requests of the same caller about the same matter (重复诉求).
    pub linked: Vec<String>,
    /// The live transfer, when the caller asked for one.
    pub live: Option<Live>,
    /// The partner called back with this ticket's events, if any.
    pub callback: Option<String>,
    /// The county it is being moved to, once a transfer there has closed it here.
    pub moving_to: Option<String>,
    /// The ticket it became in another county.
    pub transferred_to: Option<String>,
}

impl TicketRecord {
    /// The ticket's id.
    pub fn id(&self) -> &str {
        &self.stored.id
    }

    /// Its status.
    pub fn status(&self) -> Status {
        self.stored.status
    }

    /// The agent holding it: the lease holder, else the assigned agent.
    pub fn holder(&self) -> Option<&str> {
        self.lease
            .as_ref()
            .map(|l| l.agent.as_str())
            .or(self.assigned_agent.as_deref())
    }

    /// Whether `agent` holds it, by lease or assignment.
    pub fn held_by(&self, agent: &str) -> bool {
        self.lease.as_ref().is_some_and(|l| l.agent == agent)
            || self.assigned_agent.as_deref() == Some(agent)
    }

    /// The live state, if the caller asked for a live transfer.
    pub fn live_state(&self) -> Option<LiveState> {
        self.live.as_ref().map(|l| l.state)
    }
}
