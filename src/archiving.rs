//! Archiving: ended tickets move from Redis to the case archive, losing nothing and doubling
//! nothing.
//!
//! A pass over one county takes the county's archiving lease (so gateways do not repeat each
//! other's work), then, batch by batch, reads the tickets that ended more than
//! `archive.after_seconds` ago, commits their case files to the archive, and only then removes
//! them from Redis, each only if it is still the version archived. A gateway killed between
//! the two steps leaves tickets in both stores; the next pass (on any gateway) writes the same
//! versions again, which changes nothing, and removes them. While the archive is down, nothing
//! is removed: tickets wait in Redis and intake carries on.

use std::time::Duration;

use crate::archive::{Archive, ArchiveError, ArchiveSettings};
use crate::queues::{Store, StoreError};

/// Why a pass stopped early; whatever it had removed stays removed, the rest waits.
#[derive(Debug, thiserror::Error)]
pub enum ArchivingError {
    /// Redis could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The archive could not be written.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
}

/// What one pass over a county did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Case files committed to the archive.
    pub archived: u64,
    /// Tickets removed from Redis.
    pub removed: u64,
    /// Tickets that stay for now (moving, reopened, changed since read).
    pub waiting: u64,
    /// Tickets that cannot be read into a case file (reported, left in Redis).
    pub damaged: u64,
    /// Whether another gateway held the county's lease (then this one did nothing).
    pub busy: bool,
}

/// The batches one pass may take before it lets other counties have a turn.
const MAX_BATCHES: usize = 50;

/// How long a county's archiving lease lasts; renewed every batch.
fn lease_ms(settings: &ArchiveSettings) -> u64 {
    (settings.statement_timeout_ms * 3).max(30_000)
}

/// One pass over `county` by the gateway `token`: archive what is due at `now_ms`.
pub async fn archive_county(
    store: &Store,
    archive: &Archive,
    settings: &ArchiveSettings,
    county: &str,
    token: &str,
    now_ms: i64,
) -> Result<PassReport, ArchivingError> {
    let mut report = PassReport::default();
    let lease = lease_ms(settings);
    if !store.archive_lease(county, token, lease, true).await? {
        report.busy = true;
        return Ok(report);
    }
    let result = batches(store, archive, settings, county, token, now_ms, &mut report).await;
    // Given back at once so another gateway may go on; if this fails the lease lapses.
    let _ = store.archive_lease(county, token, lease, false).await;
    result.map(|()| report)
}

async fn batches(
    store: &Store,
    archive: &Archive,
    settings: &ArchiveSettings,
    county: &str,
    token: &str,
    now_ms: i64,
    report: &mut PassReport,
) -> Result<(), ArchivingError> {
    let before =
        now_ms - i64::try_from(settings.after_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
    // Tickets that stay (moving, damaged) are skipped by position, so they never block the
    // ones behind them.
    let mut skip = 0usize;
    for _ in 0..MAX_BATCHES {
        let due = store
            .ended_due(county, before, skip, settings.batch)
            .await?;
        if due.is_empty() {
            break;
        }
        let leaving = store.case_files(county, &due).await?;
        for (id, why) in &leaving.damaged {
            tracing::error!(ticket_id = %id, error = %why, "ticket cannot be archived: left in Redis");
        }
        archive.put(&leaving.cases).await?;
        report.archived += leaving.cases.len() as u64;
        let archived: Vec<(String, u64)> = leaving
            .cases
            .iter()
            .map(|c| (c.id.clone(), c.ver))
            .collect();
        let removed = store
            .remove_archived(county, &archived, &leaving.gone)
            .await?;
        report.removed += removed.removed;
        report.waiting += (leaving.waiting.len() as u64) + removed.kept;
        report.damaged += leaving.damaged.len() as u64;
        skip += leaving.waiting.len() + leaving.damaged.len() + removed.kept as usize;
        crate::metrics::archived(archived.len() as u64, removed.removed);
        if due.len() < settings.batch {
            break;
        }
        if !store
            .archive_lease(county, token, lease_ms(settings), true)
            .await?
        {
            break;
        }
    }
    Ok(())
}

/// The archiving job's pause between rounds over every county.
pub fn interval(settings: &ArchiveSettings) -> Duration {
    Duration::from_millis(settings.interval_ms)
}

/// The counties with tickets due for the archive at `now_ms` (one round trip for all).
pub async fn due_counties(
    store: &Store,
    settings: &ArchiveSettings,
    counties: &[String],
    now_ms: i64,
) -> Result<Vec<String>, StoreError> {
    let before =
        now_ms - i64::try_from(settings.after_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
    let counts = store.ended_due_counts(counties, before).await?;
    Ok(counties
        .iter()
        .zip(counts)
        .filter(|(_, n)| *n > 0)
        .map(|(c, _)| c.clone())
        .collect())
}

/// Lists, once per county, tickets stored before the archive existed (an upgrade), so they are
/// archived and searched like the others; counties already done cost one read each.
pub async fn index_old_tickets(store: &Store, counties: &[String]) -> Result<(), StoreError> {
    for county in counties {
        let n = store.index_old_tickets(county).await?;
        if n > 0 {
            tracing::info!(county = %county, tickets = n, "tickets stored before the archive listed");
        }
    }
    Ok(())
}
