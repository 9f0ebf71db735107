//! Who holds a ticket and where it waits: letting go of its holder, its place in line, and
//! the live pool a caller waits in.

use super::change::{AgentDelta, Change, Placement};
use super::record::TicketRecord;
use super::status::Status;

/// Lets go of whoever holds the ticket (lease or assignment), freeing their capacity.
pub fn release_holder(record: &TicketRecord, change: &mut Change) {
    if let Some(lease) = record
        .lease
        .as_ref()
        .filter(|_| record.status() == Status::Leased)
    {
        change.release_lease = true;
        change.agent = Some(AgentDelta {
            agent: lease.agent.clone(),
            active: -1,
            handled: 0,
            handle_ms: None,
        });
    }
    if let Some(a) = &record.assigned_agent {
        change.unassign = true;
        change.agent = Some(AgentDelta {
            agent: a.clone(),
            active: -1,
            handled: 0,
            handle_ms: None,
        });
    }
}

/// The ticket's own place in line (band, arrival order and age), in `queue`.
pub fn place(record: &TicketRecord, queue: String, band: u32) -> Placement {
    Placement {
        queue,
        band,
        seq: record.seq,
        since_ms: record.stored.created_ms,
    }
}

/// The live pool (agent kind) of the ticket's service.
pub fn live_pool(record: &TicketRecord) -> String {
    if let Some(pool) = record.live.as_ref().and_then(|l| l.pool.clone()) {
        return pool;
    }
    match record.service.as_str() {
        "mediation" => "mediation",
        _ => "legal",
    }
    .to_string()
}
