//! The timer mover: fires due SLA timers, county by county, through `fire_timers.lua`.
//!
//! Every gateway replica runs one. Firing is one atomic script that removes what it fires and
//! marks each warning or breach as fired, so two movers never fire the same timer twice and a
//! restart loses nothing (the timers live in Redis). The mover sleeps until the next due time
//! it saw, at most `sla.mover_max_sleep_ms` (timers scheduled by another replica), and is
//! nudged awake when this process schedules new timers.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

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
}

/// What the mover needs from the settings.
#[derive(Debug, Clone)]
pub struct MoverConfig {
    /// Most timers fired per county per call.
    pub batch: usize,
    /// Longest sleep between looks.
    pub max_sleep: Duration,
    /// Expired leases before a ticket goes to the supervisors' queue.
    pub max_lease_expiries: u32,
    /// The supervisors' queue template.
    pub supervisor_queue: String,
    /// Missed offers in a row before an agent is set away.
    pub away_after_missed: u32,
    /// Pushing offers to connected consoles.
    pub offers: crate::agents::offers::OfferConfig,
    /// Reserving agents for callers waiting on the line (served before ordinary offers).
    pub live: crate::live::LiveConfig,
}

/// Runs until `stop` turns true. Besides SLA timers it returns expired leases to their queues,
/// so no reservation is stuck forever.
pub async fn run(
    store: Store,
    handle: MoverHandle,
    config: MoverConfig,
    mut stop: watch::Receiver<bool>,
) {
    let (batch, max_sleep) = (config.batch, config.max_sleep);
    tracing::info!(
        max_sleep_ms = max_sleep.as_millis() as u64,
        batch,
        "SLA timer mover started"
    );
    loop {
        let sleep = step(&store, &config).await;
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = handle.wake.notified() => {}
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
    }
    tracing::info!("SLA timer mover stopped");
}

/// Fires everything due now; returns how long to sleep.
async fn step(store: &Store, config: &MoverConfig) -> Duration {
    let (batch, max_sleep) = (config.batch, config.max_sleep);
    let counties = match store.counties().await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "SLA mover cannot list counties");
            return max_sleep;
        }
    };
    let mut sleep = max_sleep;
    for county in counties {
        match store
            .reap_leases(
                &county,
                batch,
                config.max_lease_expiries,
                &config.supervisor_queue,
                config.away_after_missed,
            )
            .await
        {
            Ok((next, reaped)) => {
                if reaped > 0 {
                    tracing::info!(county = %county, reaped, "expired leases returned to their queues");
                }
                if let Some(next) = next {
                    let wait = u64::try_from((next - store.now_ms()).max(0)).unwrap_or(0);
                    sleep = sleep.min(Duration::from_millis(wait));
                }
            }
            Err(e) => tracing::warn!(county = %county, error = %e, "lease reaper step failed"),
        }
        match crate::live::serve_waiting(store, &county, &config.live).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(county = %county, reserved = n, "agents reserved for live callers")
            }
            Err(e) => tracing::warn!(county = %county, error = %e, "live round failed"),
        }
        match crate::agents::offers::offer_round(store, &county, &config.offers).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(county = %county, offered = n, "tickets offered to agents"),
            Err(e) => tracing::warn!(county = %county, error = %e, "offer round failed"),
        }
        // Bounded: a county with a huge backlog is drained in batches, but never forever in
        // one step, so other counties get their turn.
        for _ in 0..100 {
            match store.fire_due(&county, batch).await {
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
    }
    sleep
}
