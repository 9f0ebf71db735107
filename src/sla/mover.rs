//! The handle that wakes the timer mover (the "timers and offers" job of `crate::jobs`), which
//! fires due SLA timers county by county through `fire_timers.lua`.
//!
//! Every gateway replica runs one. Firing is one atomic script that removes what it fires and
//! marks each warning or breach as fired, so two movers never fire the same timer twice and a
//! restart loses nothing (the timers live in Redis). The mover sleeps until the next due time
//! it saw, at most `sla.mover_max_sleep_ms` (timers scheduled by another replica), and is
//! nudged awake when this process schedules new timers.

use std::sync::Arc;

use tokio::sync::Notify;

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
