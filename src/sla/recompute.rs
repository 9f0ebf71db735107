//! Progress of recomputing every open ticket's deadlines after the SLA configuration changed.
//!
//! With tens of thousands of open tickets the recomputation takes tens of seconds, longer than
//! an admin's HTTP client waits; so a reload puts the new configuration in force at once,
//! recomputes in the background, and anyone may ask how far it has got. This tracker is the
//! shared, in-process record of that: one per gateway, since each gateway reloads its own
//! configuration.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// Where the recomputation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecomputeState {
    /// No reload has run since the gateway started.
    Idle,
    /// Recomputing now.
    Running,
    /// Every open ticket was looked at.
    Finished,
    /// Stopped by an error (Redis); the tickets not yet looked at keep their old deadlines
    /// until the next reload.
    Failed,
}

/// A snapshot of the recomputation's progress, as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecomputeStatus {
    /// Where it stands.
    pub state: RecomputeState,
    /// When the last reload started it.
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished or failed.
    pub finished_at: Option<DateTime<Utc>>,
    /// Open tickets found when it started (known once they are listed).
    pub total: Option<usize>,
    /// Open tickets looked at so far.
    pub checked: usize,
    /// Of those, tickets whose clocks were recomputed (the others had closed or gone since).
    pub recomputed: usize,
    /// Why it failed.
    pub error: Option<String>,
}

impl Default for RecomputeStatus {
    fn default() -> Self {
        RecomputeStatus {
            state: RecomputeState::Idle,
            started_at: None,
            finished_at: None,
            total: None,
            checked: 0,
            recomputed: 0,
            error: None,
        }
    }
}

/// The gateway's record of its recomputation; updated by the task that runs it.
#[derive(Debug, Default)]
pub struct RecomputeTracker(Mutex<RecomputeStatus>);

impl RecomputeTracker {
    fn update(&self, f: impl FnOnce(&mut RecomputeStatus)) {
        match self.0.lock() {
            Ok(mut s) => f(&mut s),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// A new recomputation begins: the previous one's figures are cleared.
    pub fn start(&self, now: DateTime<Utc>) {
        self.update(|s| {
            *s = RecomputeStatus {
                state: RecomputeState::Running,
                started_at: Some(now),
                ..RecomputeStatus::default()
            }
        });
    }

    /// The open tickets have been listed.
    pub fn listed(&self, total: usize) {
        self.update(|s| s.total = Some(total));
    }

    /// One ticket was looked at; `recomputed` when its clocks changed.
    pub fn checked(&self, recomputed: bool) {
        self.update(|s| {
            s.checked += 1;
            s.recomputed += usize::from(recomputed);
        });
    }

    /// Every open ticket was looked at.
    pub fn finish(&self, now: DateTime<Utc>) {
        self.update(|s| {
            s.state = RecomputeState::Finished;
            s.finished_at = Some(now);
        });
    }

    /// It stopped on an error.
    pub fn fail(&self, now: DateTime<Utc>, error: String) {
        self.update(|s| {
            s.state = RecomputeState::Failed;
            s.finished_at = Some(now);
            s.error = Some(error);
        });
    }

    /// The progress now.
    pub fn status(&self) -> RecomputeStatus {
        match self.0.lock() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_run_clears_the_last_one_and_counts_what_it_looked_at() {
        let t = RecomputeTracker::default();
        assert_eq!(t.status().state, RecomputeState::Idle);
        t.start(Utc::now());
        t.listed(3);
        t.checked(true);
        t.checked(false);
        t.fail(Utc::now(), "redis".into());
        let s = t.status();
        assert_eq!(
            (s.state, s.total, s.checked, s.recomputed),
            (RecomputeState::Failed, Some(3), 2, 1)
        );
        t.start(Utc::now());
        let s = t.status();
        assert_eq!(
            (s.state, s.total, s.checked, s.error),
            (RecomputeState::Running, None, 0, None)
        );
        t.finish(Utc::now());
        assert_eq!(t.status().state, RecomputeState::Finished);
    }
}
