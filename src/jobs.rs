//! The background jobs, started and named in one place. Every gateway replica runs all of
//! them; each is safe to run on several replicas at once (atomic scripts, leases and locks in
//! Redis), and each stops when the stop signal turns true.
//!
//! - **timers and offers** (one loop, county by county): lapsed leases go back to their place
//!   (`reap_leases.lua`), callers waiting on the line get an agent first (`live`), then waiting
//!   tickets are offered to connected consoles (`agents::offers`), then due SLA warnings and
//!   breaches fire (`sla::mover`). Each county is looked at only when something of it is due
//!   (its first timer or lease, learnt from its agenda), when this process wrote to it (woken),
//!   every `sla.mover_max_sleep_ms` while a console is online or a caller waits there, and at
//!   the re-check (`sla.mover_recheck_ms`: every county's agenda in one round trip) for what
//!   other replicas wrote. A county with nothing due costs nothing in between.
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
use crate::queues::{CountyAgenda, Store};
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
                state.mover.clone(),
                Duration::from_millis(state.settings.sla.mover_recheck_ms),
                stop.clone(),
            )),
        ),
        (
            "housekeeping",
            tokio::spawn(housekeeping(Arc::clone(state), stop.clone())),
        ),
        (
            "archiving",
            tokio::spawn(archiving(Arc::clone(state), stop.clone())),
        ),
        (
            "retention",
            tokio::spawn(retention(Arc::clone(state), stop.clone())),
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
    let recheck = Duration::from_millis(state.settings.sla.mover_recheck_ms);
    let offers = OfferConfig::from_settings(&state.settings.agents);
    tracing::info!(
        max_sleep_ms = max_sleep.as_millis() as u64,
        recheck_ms = recheck.as_millis() as u64,
        "timer mover started"
    );
    let mut schedule = Schedule::default();
    loop {
        let sleep =
            timers_and_offers_step(&state, &offers, &mut schedule, max_sleep, recheck).await;
        if !pause(&state, sleep, &mut stop).await {
            break;
        }
    }
    tracing::info!("timer mover stopped");
}

/// When the mover looks at each county next, so that a county with nothing due costs nothing
/// between re-checks. Times are ms on the Redis clock (`Store::now_ms`).
#[derive(Debug, Default)]
struct Schedule {
    /// County → when to look at it again; `None`: nothing due, only at the next re-check.
    next: std::collections::HashMap<String, Option<i64>>,
    /// When every county's agenda was last read.
    checked_ms: Option<i64>,
}

impl Schedule {
    /// Counties to look at now.
    fn due(&self, now: i64) -> Vec<String> {
        self.next
            .iter()
            .filter(|(_, at)| at.is_some_and(|at| at <= now))
            .map(|(c, _)| c.clone())
            .collect()
    }

    /// How long the mover may sleep: until the first county is due or the next re-check.
    fn sleep(&self, now: i64, recheck: Duration) -> Duration {
        let recheck_ms = i64::try_from(recheck.as_millis()).unwrap_or(i64::MAX / 4);
        let mut wake = self.checked_ms.map_or(now, |at| at + recheck_ms);
        for at in self.next.values().flatten() {
            wake = wake.min(*at);
        }
        Duration::from_millis(u64::try_from((wake - now).max(0)).unwrap_or(0))
    }
}

/// When a county must be looked at again, from its agenda: at its first timer or lease, and
/// every step while a console is online or a caller waits (offers and reservations depend on
/// presence, wrap-up and widening, which change with time).
fn next_look(agenda: &CountyAgenda, now: i64, max_sleep: Duration) -> Option<i64> {
    let tick = now + i64::try_from(max_sleep.as_millis()).unwrap_or(0);
    let active = (agenda.online || agenda.live_waiting).then_some(tick);
    [agenda.next_timer_ms, agenda.next_lease_ms, active]
        .into_iter()
        .flatten()
        .min()
}

/// One step: the counties due now (or woken by this process's writes) are looked at; every
/// `recheck` the agenda of every county, configured or holding tickets, is read in one round
/// trip, for what other replicas wrote. Returns how long to sleep.
async fn timers_and_offers_step(
    state: &AppState,
    offers: &OfferConfig,
    schedule: &mut Schedule,
    max_sleep: Duration,
    recheck: Duration,
) -> Duration {
    let store = &state.store;
    let woken = state.mover.take();
    let now = store.now_ms();
    let recheck_ms = i64::try_from(recheck.as_millis()).unwrap_or(i64::MAX / 4);
    let recheck_failed = if woken.all || schedule.checked_ms.is_none_or(|at| now >= at + recheck_ms)
    {
        recheck_all(state, schedule, max_sleep).await.err()
    } else {
        None
    };
    // Kept even when the re-check failed, so a write of this process is not forgotten.
    let now = store.now_ms();
    for county in woken.counties {
        schedule.next.insert(county, Some(now));
    }
    if let Some(e) = recheck_failed {
        tracing::warn!(error = %e, "timer mover cannot read the counties' agendas");
        return max_sleep;
    }
    let due = schedule.due(now);
    if !due.is_empty() {
        match store.county_agendas(&due).await {
            Ok(agendas) => {
                for agenda in agendas {
                    let next = look_at(state, offers, &agenda, max_sleep).await;
                    schedule.next.insert(agenda.county, next);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "timer mover cannot read the counties' agendas");
                return max_sleep;
            }
        }
    }
    schedule.sleep(store.now_ms(), recheck)
}

/// Lists the counties (the deployment's, and any that still hold tickets though no longer
/// configured, until they are empty) and reads all their agendas in one round trip.
async fn recheck_all(
    state: &AppState,
    schedule: &mut Schedule,
    max_sleep: Duration,
) -> Result<(), crate::queues::StoreError> {
    let store = &state.store;
    let mut counties: std::collections::BTreeSet<String> =
        store.counties().await?.into_iter().collect();
    counties.extend(state.settings.counties.codes().map(String::from));
    let counties: Vec<String> = counties.into_iter().collect();
    let agendas = store.county_agendas(&counties).await?;
    let now = store.now_ms();
    schedule.next.clear();
    for agenda in agendas {
        let next = next_look(&agenda, now, max_sleep);
        schedule.next.insert(agenda.county, next);
    }
    schedule.checked_ms = Some(now);
    Ok(())
}

/// Serves one county whose agenda says something may be due: lapsed leases back to their place,
/// live callers and offers when a console is online, due timers fired. Returns when to look
/// again.
async fn look_at(
    state: &AppState,
    offers: &OfferConfig,
    agenda: &CountyAgenda,
    max_sleep: Duration,
) -> Option<i64> {
    let store = &state.store;
    let agents = &state.settings.agents;
    let county = agenda.county.as_str();
    let now = store.now_ms();
    let mut next = agenda.clone();
    if agenda.next_lease_ms.is_some_and(|at| at <= now) {
        match store
            .reap_leases(
                county,
                state.settings.sla.mover_batch,
                agents.max_lease_expiries,
                &agents.supervisor_queue,
                agents.away_after_missed,
            )
            .await
        {
            Ok((lapse, reaped)) => {
                if reaped > 0 {
                    tracing::info!(county = %county, reaped, "expired leases returned to their queues");
                }
                // Not before the next millisecond: this host's estimate of the Redis clock may
                // run a little ahead of it, and a lease Redis does not yet see as lapsed must
                // not be looked at again in a tight loop.
                next.next_lease_ms = lapse.map(|at| at.max(now + 1));
            }
            Err(e) => {
                tracing::warn!(county = %county, error = %e, "lease reaper step failed");
                next.next_lease_ms = Some(now + 1000);
            }
        }
    }
    if agenda.online && agenda.live_waiting {
        match crate::live::serve_waiting(store, county, &state.live).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(county = %county, reserved = n, "agents reserved for live callers")
            }
            Err(e) => tracing::warn!(county = %county, error = %e, "live round failed"),
        }
    }
    if agenda.online {
        match crate::offers::offer_round(store, county, offers).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(county = %county, offered = n, "tickets offered to agents"),
            Err(e) => tracing::warn!(county = %county, error = %e, "offer round failed"),
        }
    }
    if agenda.next_timer_ms.is_some_and(|at| at <= now) {
        // A breach of a partner's ticket is appended to its outbox by the same script.
        state.mover.wake_outboxes(county);
        let wait = fire_county(store, county, state.settings.sla.mover_batch).await;
        next.next_timer_ms = wait.map(|ms| store.now_ms() + ms);
    }
    // A reservation or an offer just made is a lease that lapses: look again by the next step
    // while anyone is online, which `next_look` does.
    next_look(&next, now, max_sleep)
}

/// Fires everything due now in one county, in bounded batches (a county with a huge backlog
/// is drained over several steps, never forever in one, so other counties get their turn).
/// Returns in how many ms its next timer is due (0: more are due now), `None` when it has none.
async fn fire_county(store: &Store, county: &str, batch: usize) -> Option<i64> {
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
                    continue;
                }
                return report.next_due_ms.map(|next| (next - report.now_ms).max(0));
            }
            Err(e) => {
                tracing::warn!(county = %county, error = %e, "SLA mover step failed");
                return Some(1000);
            }
        }
    }
    Some(0)
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

/// How often an idle archiving job checks that the archive answers, for `hotline_archive_up`.
const ARCHIVE_PING: Duration = Duration::from_secs(10);

/// Moves ended tickets to the case archive, county by county, every `archive.interval_ms`
/// (`archiving`). A failure is logged when it starts and when it ends, not at every pass.
async fn archiving(state: Arc<AppState>, mut stop: watch::Receiver<bool>) {
    let settings = &state.settings.archive;
    let token = format!("{}-{:016x}", std::process::id(), fastrand::u64(..));
    let mut failing: Option<&'static str> = None;
    let mut pinged = std::time::Instant::now();
    let mut indexed = false;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(crate::archiving::interval(settings)) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            break;
        }
        let counties = match state.all_counties().await {
            Ok(c) => c,
            Err(e) => {
                report_failure(&mut failing, "store", &e.to_string());
                continue;
            }
        };
        if !indexed {
            match crate::archiving::index_old_tickets(&state.store, &counties).await {
                Ok(()) => indexed = true,
                Err(e) => {
                    report_failure(&mut failing, "store", &e.to_string());
                    continue;
                }
            }
        }
        let due = match crate::archiving::due_counties(
            &state.store,
            settings,
            &counties,
            state.store.now_ms(),
        )
        .await
        {
            Ok(due) => due,
            Err(e) => {
                report_failure(&mut failing, "store", &e.to_string());
                continue;
            }
        };
        let mut used_archive = false;
        let mut failed = false;
        for county in &due {
            let now = state.store.now_ms();
            match crate::archiving::archive_county(
                &state.store,
                &state.archive,
                settings,
                county,
                &token,
                now,
            )
            .await
            {
                Ok(r) => used_archive |= r.archived > 0,
                Err(crate::archiving::ArchivingError::Archive(e)) => {
                    crate::metrics::archive_up(false);
                    report_failure(&mut failing, "archive", &e.to_string());
                    failed = true;
                    break;
                }
                Err(crate::archiving::ArchivingError::Store(e)) => {
                    report_failure(&mut failing, "store", &e.to_string());
                    failed = true;
                    break;
                }
            }
        }
        if failed {
            continue;
        }
        if !used_archive && pinged.elapsed() >= ARCHIVE_PING {
            pinged = std::time::Instant::now();
            if let Err(e) = state.archive.ping().await {
                crate::metrics::archive_up(false);
                report_failure(&mut failing, "archive", &e.to_string());
                continue;
            }
        }
        crate::metrics::archive_up(true);
        if let Some(cause) = failing.take() {
            tracing::info!(cause, "archiving works again");
        }
    }
}

/// Erases personal data that has reached `archive.personal_data_days`, every
/// `archive.retention_interval_seconds` (the first run soon after start-up).
async fn retention(state: Arc<AppState>, mut stop: watch::Receiver<bool>) {
    let settings = &state.settings.archive;
    let every = Duration::from_secs(settings.retention_interval_seconds);
    let mut wait = Duration::from_secs(5).min(every);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            break;
        }
        wait = every;
        if let Err(e) = crate::retention::run(&state.archive, settings, chrono::Utc::now()).await {
            tracing::warn!(error = %e, "retention job did not run; it tries again next time");
        }
    }
}

/// Counts a failed archiving pass and logs it when failures start (or change cause).
fn report_failure(failing: &mut Option<&'static str>, cause: &'static str, error: &str) {
    crate::metrics::archive_failed(cause);
    if *failing != Some(cause) {
        tracing::warn!(
            cause,
            error,
            "archiving stopped: ended tickets wait in Redis"
        );
        *failing = Some(cause);
    }
}

/// Records a reload by signal in the audit log, after the fact and best effort: whoever can
/// signal the process can also restart it with any configuration, so refusing the reload while
/// the archive is down would protect nothing (ARCHITECTURE.md, Decisions).
async fn signal_audit(state: &AppState, detail: serde_json::Value) {
    let entry = crate::archive::AuditEntry {
        actor: "SIGHUP".into(),
        role: "system".into(),
        action: crate::archive::audit::ADMIN_RELOAD.into(),
        request_id: None,
        target: None,
        detail,
    };
    if let Err(e) = state.archive.audit(&entry).await {
        tracing::warn!(error = %e, "a reload by SIGHUP was not recorded in the audit log");
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
                _ = hup.recv() => {
                    let outcome = match crate::reload::reload(&state).await {
                        Ok(report) => {
                            tracing::info!("reloaded on SIGHUP; recomputing open tickets in the background");
                            serde_json::json!({"outcome": "done", "classifier_model": report.classifier_model})
                        }
                        Err(crate::reload::ReloadError::Running) => {
                            tracing::warn!("SIGHUP ignored: a reload is already running");
                            serde_json::json!({"outcome": "refused", "why": "a reload is already running"})
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "reload on SIGHUP failed; the old configuration stays");
                            // The key only: a configuration error may quote what the file says.
                            let why = match e {
                                crate::reload::ReloadError::Invalid(key, _) => format!("invalid {key}"),
                                _ => "Redis unavailable".to_string(),
                            };
                            serde_json::json!({"outcome": "failed", "why": why})
                        }
                    };
                    signal_audit(&state, outcome).await;
                }
                _ = stop.changed() => return,
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (state, stop.changed().await);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agenda(timer: Option<i64>, lease: Option<i64>, online: bool) -> CountyAgenda {
        CountyAgenda {
            county: "320831".into(),
            next_timer_ms: timer,
            next_lease_ms: lease,
            online,
            live_waiting: false,
        }
    }

    #[test]
    fn a_county_is_looked_at_when_its_first_work_is_due_or_every_step_while_someone_is_online() {
        let step = Duration::from_millis(250);
        assert_eq!(next_look(&agenda(None, None, false), 1_000, step), None);
        assert_eq!(
            next_look(&agenda(Some(9_000), Some(5_000), false), 1_000, step),
            Some(5_000)
        );
        assert_eq!(
            next_look(&agenda(Some(9_000), None, true), 1_000, step),
            Some(1_250)
        );
    }

    #[test]
    fn the_mover_sleeps_until_the_first_due_county_or_the_re_check() {
        let recheck = Duration::from_secs(5);
        let mut s = Schedule {
            checked_ms: Some(1_000),
            ..Schedule::default()
        };
        s.next.insert("320831".into(), None);
        assert_eq!(s.sleep(2_000, recheck), Duration::from_millis(4_000));
        assert!(s.due(2_000).is_empty());
        s.next.insert("320324".into(), Some(2_500));
        assert_eq!(s.sleep(2_000, recheck), Duration::from_millis(500));
        assert_eq!(s.due(2_500), ["320324"]);
        assert_eq!(s.sleep(3_000, recheck), Duration::ZERO);
    }
}
