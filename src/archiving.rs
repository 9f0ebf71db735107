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

/// Batches archived at once within a county, each on its own connection and transaction: while
/// one waits for PostgreSQL (the inserts and their index updates are most of the time), the
/// next one's tickets are read from Redis and turned into rows, and PostgreSQL can use more
/// than one core. Each batch is archived and removed on its own, as before, so a failure or a
/// kill between the steps leaves at worst tickets in both stores, which the next pass settles.
const IN_FLIGHT: usize = 2;

/// How long a county's archiving lease lasts; renewed every round of batches.
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

/// One batch: read the tickets whole, commit their case files, then remove them from Redis.
/// Returns what it did and how many of its tickets stay listed (to be skipped by position).
async fn batch(
    store: &Store,
    archive: &Archive,
    county: &str,
    due: &[(String, i64)],
) -> Result<(PassReport, usize), ArchivingError> {
    let leaving = store.case_files(county, due).await?;
    for (id, why) in &leaving.damaged {
        tracing::error!(ticket_id = %id, error = %why, "ticket cannot be archived: left in Redis");
    }
    archive.put(&leaving.cases).await?;
    let archived: Vec<(String, u64)> = leaving
        .cases
        .iter()
        .map(|c| (c.id.clone(), c.ver))
        .collect();
    let removed = store
        .remove_archived(county, &archived, &leaving.gone)
        .await?;
    crate::metrics::archived(archived.len() as u64, removed.removed);
    let report = PassReport {
        archived: archived.len() as u64,
        removed: removed.removed,
        waiting: leaving.waiting.len() as u64 + removed.kept,
        damaged: leaving.damaged.len() as u64,
        busy: false,
    };
    let stays = leaving.waiting.len() + leaving.damaged.len() + removed.kept as usize;
    Ok((report, stays))
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
    let round = settings.batch * IN_FLIGHT;
    for _ in 0..MAX_BATCHES.div_ceil(IN_FLIGHT) {
        let due = store.ended_due(county, before, skip, round).await?;
        if due.is_empty() {
            break;
        }
        // Every batch runs to its end (none is cancelled half-way because another failed);
        // then the first error, if any, stops the pass.
        let results = futures_util::future::join_all(
            due.chunks(settings.batch)
                .map(|chunk| batch(store, archive, county, chunk)),
        )
        .await;
        let mut failed = None;
        for result in results {
            match result {
                Ok((done, stays)) => {
                    report.archived += done.archived;
                    report.removed += done.removed;
                    report.waiting += done.waiting;
                    report.damaged += done.damaged;
                    skip += stays;
                }
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        if due.len() < round {
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
