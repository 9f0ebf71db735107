//! The background jobs, started and named in one place. Every gateway replica runs all of
//! them; each is safe to run on several replicas at once (atomic scripts, leases and locks in
//! Redis), and each stops when the stop signal turns true.
//!
//! - **timers and offers** (one loop, county by county): lapsed leases go back to their place
//!   (`reap_leases.lua`), callers waiting on the line get an agent first (`live`), then waiting
//!   tickets are offered to connected consoles (`agents::offers`), then due SLA warnings and
//!   breaches fire (`sla::mover`). It sleeps until the next due time it saw, at most
//!   `sla.mover_max_sleep_ms`, and wakes when this process nudges it.
//! - **callback delivery**: partner outboxes, in order, with retries (`callbacks`).
//! - **housekeeping**: the county registry is rebuilt at start-up from the counties' own keys
//!   and written back every step from what this process knows, so a registry lost to a restore
//!   or a failover heals itself; a move to another county whose gateway stopped between its
//!   two steps is finished (`handling::finish_interrupted_moves`).
//! - **reload on SIGHUP**.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::offers::OfferConfig;
use crate::queues::Store;
use crate::state::AppState;

/// A move older than this is taken for interrupted and finished by any replica.
const MOVE_GRACE_MS: i64 = 30_000;
/// How often housekeeping runs (registry check, interrupted moves).
const MOVE_SWEEP: Duration = Duration::from_secs(10);

/// The running jobs.
pub struct Jobs {
    handles: Vec<(&'static str, JoinHandle<()>)>,
}

/// Starts every background job.
pub fn start(state: &Arc<AppState>, stop: &watch::Receiver<bool>) -> Jobs {
    let handles = vec![
        (
            "timers and offers",
            tokio::spawn(timers_and_offers(Arc::clone(state), stop.clone())),
        ),
        (
            "callback delivery",
            tokio::spawn(crate::callbacks::run(
                state.store.clone(),
                Arc::clone(&state.callbacks),
                stop.clone(),
            )),
        ),
        (
            "housekeeping",
            tokio::spawn(housekeeping(Arc::clone(state), stop.clone())),
        ),
        (
            "reload on SIGHUP",
            tokio::spawn(reload_on_sighup(Arc::clone(state), stop.clone())),
        ),
    ];
    Jobs { handles }
}

impl Jobs {
    /// Waits for every job to stop (after the stop signal).
    pub async fn stopped(self) {
        for (name, handle) in self.handles {
            if let Err(e) = handle.await {
                tracing::warn!(job = name, error = %e, "background job ended abnormally");
            }
        }
    }
}

/// Sleeps `wait`, or until nudged or stopped; `false` when stopped.
async fn pause(state: &AppState, wait: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(wait) => {}
        _ = state.mover.nudged() => {}
        _ = stop.changed() => {}
    }
    !*stop.borrow()
}

async fn timers_and_offers(state: Arc<AppState>, mut stop: watch::Receiver<bool>) {
    let max_sleep = Duration::from_millis(state.settings.sla.mover_max_sleep_ms);
    let offers = OfferConfig::from_settings(&state.settings.agents);
    tracing::info!(
        max_sleep_ms = max_sleep.as_millis() as u64,
        "timer mover started"
    );
    loop {
        let sleep = timers_and_offers_step(&state, &offers, max_sleep).await;
        if !pause(&state, sleep, &mut stop).await {
            break;
        }
    }
    tracing::info!("timer mover stopped");
}

/// One pass over every county; returns how long to sleep.
async fn timers_and_offers_step(
    state: &AppState,
    offers: &OfferConfig,
    max_sleep: Duration,
) -> Duration {
    let store = &state.store;
    let agents = &state.settings.agents;
    let counties = match store.counties().await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "timer mover cannot list counties");
            return max_sleep;
        }
    };
    let mut sleep = max_sleep;
    for county in counties {
        match store
            .reap_leases(
                &county,
                state.settings.sla.mover_batch,
                agents.max_lease_expiries,
                &agents.supervisor_queue,
                agents.away_after_missed,
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
        match crate::live::serve_waiting(store, &county, &state.live).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(county = %county, reserved = n, "agents reserved for live callers")
            }
            Err(e) => tracing::warn!(county = %county, error = %e, "live round failed"),
        }
        match crate::offers::offer_round(store, &county, offers).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(county = %county, offered = n, "tickets offered to agents"),
            Err(e) => tracing::warn!(county = %county, error = %e, "offer round failed"),
        }
        let due = fire_county(store, &county, state.settings.sla.mover_batch, max_sleep).await;
        sleep = sleep.min(due);
    }
    sleep
}

/// Fires everything due now in one county, in bounded batches (a county with a huge backlog
/// is drained over several steps, never forever in one, so other counties get their turn).
/// Returns how long the county can wait: until its next timer, at most `max_sleep`.
async fn fire_county(store: &Store, county: &str, batch: usize, max_sleep: Duration) -> Duration {
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

async fn housekeeping(state: Arc<AppState>, mut stop: watch::Receiver<bool>) {
    match state.store.rebuild_counties().await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(
            missing = n,
            "county registry rebuilt from the counties' keys"
        ),
        Err(e) => tracing::warn!(error = %e, "county registry not rebuilt at start-up"),
    }
    loop {
        tokio::select! {
            _ = tokio::time::sleep(MOVE_SWEEP) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            break;
        }
        match state.store.reassert_counties().await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(restored = n, "counties missing from the registry put back"),
            Err(e) => tracing::warn!(error = %e, "county registry not checked"),
        }
        match crate::handling::finish_interrupted_moves(&state, MOVE_GRACE_MS).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(finished = n, "interrupted moves finished"),
            Err(e) => tracing::warn!(error = %e, "interrupted moves not finished yet"),
        }
    }
}

/// Reloads the configuration, holiday files, lexicon and model on SIGHUP.
async fn reload_on_sighup(state: Arc<AppState>, mut stop: watch::Receiver<bool>) {
    #[cfg(unix)]
    {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        loop {
            tokio::select! {
                _ = hup.recv() => match crate::reload::reload(&state).await {
                    Ok(_) => tracing::info!("reloaded on SIGHUP; recomputing open tickets in the background"),
                    Err(crate::reload::ReloadError::Running) => {
                        tracing::warn!("SIGHUP ignored: a reload is already running")
                    }
                    Err(e) => tracing::error!(error = %e, "reload on SIGHUP failed; the old configuration stays"),
                },
                _ = stop.changed() => return,
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (state, stop.changed().await);
    }
}
