//! The clocks' side of an action: which clocks were running, how those that stopped ended,
//! and the timers of those still running.

use crate::sla::SlaConfig;
use crate::sla::clock::{TicketClocks, TimerPlan};
use crate::sla::policy::{ClockName, TicketFacts};
use crate::ticket::Source;

use super::record::TicketRecord;

/// The clocks running now.
pub fn running(clocks: &TicketClocks) -> Vec<ClockName> {
    clocks
        .clocks
        .iter()
        .filter(|(_, c)| c.started_ms.is_some() && c.stopped_ms.is_none())
        .map(|(n, _)| *n)
        .collect()
}

/// Of the clocks that were running, those that have stopped now: met (`true`) or breached.
pub fn outcomes(
    clocks: &TicketClocks,
    was_running: &[ClockName],
    sla: &SlaConfig,
) -> Vec<(ClockName, bool)> {
    was_running
        .iter()
        .filter_map(|c| clocks.outcome(*c, &sla.calendars).map(|met| (*c, met)))
        .collect()
}

/// Every clock has started and stopped: nothing is left to time.
pub fn all_stopped(clocks: &TicketClocks) -> bool {
    !clocks.clocks.is_empty()
        && running(clocks).is_empty()
        && clocks.clocks.values().all(|c| c.started_ms.is_some())
}

/// Timers for the running clocks (provisional deadlines included); a clock whose deadline cannot
/// be computed (its calendar removed by a reload) is logged and counted, never silently left
/// without a deadline.
pub fn plan_timers(clocks: &TicketClocks, sla: &SlaConfig) -> Vec<TimerPlan> {
    let (timers, errors) = sla.plan(clocks);
    for (clock, e) in errors {
        crate::metrics::calendar_error(clock.as_str());
        tracing::error!(clock = clock.as_str(), error = %e, "SLA deadline cannot be computed");
    }
    timers
}

/// What the SLA policies match on, for a ticket with these labels.
pub fn facts<'a>(
    record: &'a TicketRecord,
    service: &'a str,
    category: &'a str,
    source: Source,
) -> TicketFacts<'a> {
    TicketFacts {
        service,
        warning_level: &record.level,
        source,
        category,
        transfer: record.live.as_ref().map_or("", |l| l.transfer.as_str()),
    }
}
