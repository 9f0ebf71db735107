//! The timer mover: fires due SLA timers, county by county, through `fire_timers.lua`.
//!
//! Every gateway replica runs one. Firing is one atomic script that removes what it fires and
//! marks each warning or breach as fired, so two movers never fire the same timer twice and a
//! restart loses nothing (the timers live in Redis). The mover sleeps until the next due time
//! it saw, at most `sla.mover_max_sleep_ms` (timers scheduled by another replica), and is
//! nudged awake when this process schedules new timers.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::queues::Store;

/// Wakes the mover early; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct MoverHandle {
    wake: Arc<Notify>,
}

impl MoverHandle {
    /// Asks the mover to look again now (new timers may be due sooner than it planned).
    pub fn nudge(&self) {
        self.wake.notify_one();
    }

    /// Waits for the next nudge.
    pub async fn nudged(&self) {
        self.wake.notified().await;
    }
}

/// Fires everything due now in one county, in bounded batches (a county with a huge backlog
/// is drained over several steps, never forever in one, so other counties get their turn).
/// Returns how long the county can wait: until its next timer, at most `max_sleep`.
pub async fn fire_county(
    store: &Store,
    county: &str,
    batch: usize,
    max_sleep: Duration,
) -> Duration {
    let mut sleep = max_sleep;
    for _ in 0..100 {
        match store.fire_due(county, batch).await {
            Ok(report) => {
                for f in &report.fired {
                    crate::metrics::sla_fired(&f.clock, &f.kind, f.lateness_ms, &f.queue);
                }
                if !report.fired.is_empty() {
                    tracing::info!(county = %county, fired = report.fired.len(), "SLA timers fired");
                }
                if report.more {
                    sleep = Duration::ZERO;
                    continue;
                }
                if let Some(next) = report.next_due_ms {
                    let wait = u64::try_from((next - report.now_ms).max(0)).unwrap_or(0);
                    sleep = sleep.min(Duration::from_millis(wait));
                }
                break;
            }
            Err(e) => {
                tracing::warn!(county = %county, error = %e, "SLA mover step failed");
                break;
            }
        }
    }
    sleep
}
