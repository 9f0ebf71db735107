//! The handle that wakes the timer mover (the "timers and offers" job of `crate::jobs`), which
//! fires due SLA timers county by county through `fire_timers.lua`.
//!
//! Every gateway replica runs one. Firing is one atomic script that removes what it fires and
//! marks each warning or breach as fired, so two movers never fire the same timer twice and a
//! restart loses nothing (the timers live in Redis). The mover does not poll every county: it
//! learns each county's next due time and looks at a county again only then, when this process
//! wrote to it ([`MoverHandle::wake`]), or at the bounded re-check (`sla.mover_recheck_ms`)
//! that catches what other replicas wrote (each of them also wakes its own mover).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// Wakes the mover early, for one county or for all, and callback delivery for a county whose
/// outboxes may have grown; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct MoverHandle {
    wake: Arc<Notify>,
    woken: Arc<Mutex<Woken>>,
    deliver: Arc<Notify>,
    outboxes: Arc<Mutex<HashSet<String>>>,
}

/// Counties written to since the mover last looked.
#[derive(Debug, Default)]
struct Woken {
    counties: HashSet<String>,
    all: bool,
}

/// What the mover was asked to look at again.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct WakeUps {
    /// Every county (after a reload recomputed every open ticket).
    pub all: bool,
    /// The counties this process wrote to.
    pub counties: Vec<String>,
}

impl MoverHandle {
    /// Asks the mover to look at `county` now: this process just wrote to it (a ticket, an
    /// action, a claim, a console online), so timers, leases or offers may be due sooner than
    /// the mover planned.
    pub fn wake(&self, county: &str) {
        if let Ok(mut w) = self.woken.lock() {
            w.counties.insert(county.to_string());
        }
        self.wake.notify_one();
        // Every script that changes a ticket may append to its partner's outbox.
        self.wake_outboxes(county);
    }

    /// Asks callback delivery to look at `county`'s outboxes now (a change, a fired timer or a
    /// replay may have appended to them).
    pub fn wake_outboxes(&self, county: &str) {
        if let Ok(mut o) = self.outboxes.lock() {
            o.insert(county.to_string());
        }
        self.deliver.notify_one();
    }

    /// Takes the counties whose outboxes were woken since the last call.
    pub fn take_outboxes(&self) -> Vec<String> {
        self.outboxes
            .lock()
            .map(|mut o| o.drain().collect())
            .unwrap_or_default()
    }

    /// Waits for the next outbox wake-up.
    pub async fn outboxes_woken(&self) {
        self.deliver.notified().await;
    }

    /// Asks the mover to look at every county again now.
    pub fn wake_all(&self) {
        if let Ok(mut w) = self.woken.lock() {
            w.all = true;
        }
        self.wake.notify_one();
    }

    /// Takes what was asked since the last call.
    pub fn take(&self) -> WakeUps {
        match self.woken.lock() {
            Ok(mut w) => WakeUps {
                all: std::mem::take(&mut w.all),
                counties: w.counties.drain().collect(),
            },
            Err(_) => WakeUps {
                all: true,
                counties: Vec::new(),
            },
        }
    }

    /// Waits for the next wake-up.
    pub async fn nudged(&self) {
        self.wake.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wake_ups_are_taken_once() {
        let m = MoverHandle::default();
        m.wake("320831");
        m.wake("320831");
        m.wake("320324");
        let mut w = m.take();
        w.counties.sort();
        assert_eq!(w.counties, ["320324", "320831"]);
        assert!(!w.all);
        m.wake_all();
        assert_eq!(
            m.take(),
            WakeUps {
                all: true,
                counties: vec![]
            }
        );
        assert_eq!(m.take(), WakeUps::default());
        m.wake_outboxes("110101");
        let mut o = m.take_outboxes();
        o.sort();
        assert_eq!(o, ["110101", "320324", "320831"]);
        assert!(m.take_outboxes().is_empty());
    }
}
