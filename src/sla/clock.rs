//! The clocks of one ticket: when each started and stopped, the pause log, and from those the
//! deadlines, warning moments and what the API shows. Pure: times in, times out.
//!
//! Paused time never counts. A clock "consumes" its target's kind of time (wall or working
//! time) from its start, skipping every pause; its deadline is the moment the whole target is
//! consumed, and a warning at 80 % is the moment 80 % is consumed. While a pause is open the
//! clock has no deadline at all, so nothing can breach during a pause. Deadlines are always
//! recomputed from this log, never patched, so a policy or calendar change gives the same
//! answer as if it had been in force from the start, and a pause can never make a deadline earlier.
//!
//! A deadline counted through a year without holiday data is still computed, on the calendar's
//! ordinary week, and marked *provisional* (see [`Counted`]): it gets its timers like any other,
//! and loses the mark when the year's file is added and the clocks are recomputed.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::calendar::{Calendar, CalendarError, Counted};
use super::policy::{ClockName, ClockTerms, add_amount, add_target, measure};

/// One clock's recorded life.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClockState {
    /// The terms it runs on.
    pub terms: ClockTerms,
    /// When it started (ms since the epoch); `None` until then (follow-up before resolution).
    #[serde(default)]
    pub started_ms: Option<i64>,
    /// When it stopped, if it has.
    #[serde(default)]
    pub stopped_ms: Option<i64>,
}

/// A pause (挂起), e.g. waiting for the caller; `to_ms` is `None` while it lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    /// Start, ms since the epoch.
    pub from_ms: i64,
    /// End, when resumed.
    #[serde(default)]
    pub to_ms: Option<i64>,
}

/// Every clock of a ticket plus the pause log: stored as one JSON field in Redis.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TicketClocks {
    /// The clocks by name.
    pub clocks: BTreeMap<ClockName, ClockState>,
    /// Pauses, oldest first.
    #[serde(default)]
    pub pauses: Vec<Pause>,
}

/// What happened to the ticket, as far as clocks care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockEvent {
    /// An agent accepted it.
    Accept,
    /// The agent first contacted the caller.
    FirstContact,
    /// Work paused.
    Pause,
    /// Work resumed.
    Resume,
    /// Resolved: the follow-up clock starts.
    Resolve,
    /// The follow-up call was made.
    FollowUp,
    /// Returned to its sender (退单): every running clock stops; none counts as met or breached.
    Return,
    /// Reopened after resolution: the time spent resolved counts as a pause, the resolve clock
    /// runs again and the follow-up waits for the next resolution.
    Reopen,
}

/// An event that does not fit the clocks' state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    /// Pausing a paused ticket.
    #[error("the ticket is already paused")]
    AlreadyPaused,
    /// Resuming a running ticket.
    #[error("the ticket is not paused")]
    NotPaused,
}

/// A timer to schedule: fire `kind` of `clock` at `at_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerPlan {
    /// Which clock.
    pub clock: ClockName,
    /// `w0`, `w1`, … for warnings at `warn_at[i]`; `b` for the breach.
    pub kind: String,
    /// When, ms since the epoch.
    pub at_ms: i64,
}

/// What [`TicketClocks::plan`] plans for the running clocks.
#[derive(Debug, Default)]
pub struct ClockPlan {
    /// Warning and breach timers.
    pub timers: Vec<TimerPlan>,
    /// Clocks whose deadline cannot be computed (a calendar removed by a reload), reported so
    /// the caller can say so instead of silently running without a timer.
    pub errors: Vec<(ClockName, CalendarError)>,
    /// Clocks whose deadline is provisional; their timers are in `timers` all the same.
    pub provisional: Vec<ProvisionalDeadline>,
}

/// A running clock's deadline counted through years without holiday data, on the calendar's
/// ordinary week.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionalDeadline {
    /// Which clock.
    pub clock: ClockName,
    /// The calendar it counts on.
    pub calendar: String,
    /// The years without data, ascending.
    pub years: Vec<i32>,
}

/// A clock as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ClockView {
    /// Which clock.
    #[schema(value_type = String)]
    pub clock: ClockName,
    /// The policy that set the target.
    pub policy: String,
    /// The target in words, e.g. `7 working days (workday)`.
    pub target: String,
    /// `not_started`, `running`, `paused`, `warned`, `met`, `breached` or `calendar_error`
    /// (no deadline can be computed: its calendar was removed by a reload).
    pub state: String,
    /// Deadline; absent while paused or not started.
    pub due_at: Option<DateTime<Utc>>,
    /// The deadline (and target) was counted through a year without holiday data, on the
    /// calendar's ordinary week: it may move when that year's file is added and reloaded.
    pub provisional: bool,
    /// The years without holiday data it was counted through; absent when not provisional.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub provisional_years: Vec<i32>,
    /// Counted time so far (working time for working targets), seconds.
    pub elapsed_seconds: i64,
    /// Counted time left; negative when over.
    pub remaining_seconds: Option<i64>,
    /// Wall-clock time spent paused while this clock ran, seconds.
    pub paused_seconds: i64,
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it stopped.
    pub stopped_at: Option<DateTime<Utc>>,
    /// Why a deadline could not be computed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

impl TicketClocks {
    /// Clocks of a new ticket: accept, first contact and resolve start now; follow-up waits.
    pub fn start(terms: BTreeMap<ClockName, ClockTerms>, now_ms: i64) -> TicketClocks {
        let clocks = terms
            .into_iter()
            .map(|(name, terms)| {
                let started_ms = (name != ClockName::FollowUp).then_some(now_ms);
                (
                    name,
                    ClockState {
                        terms,
                        started_ms,
                        stopped_ms: None,
                    },
                )
            })
            .collect();
        TicketClocks {
            clocks,
            pauses: Vec::new(),
        }
    }

    /// True while a pause is open.
    pub fn is_paused(&self) -> bool {
        self.pauses.last().is_some_and(|p| p.to_ms.is_none())
    }

    fn stop(&mut self, clock: ClockName, now_ms: i64) {
        if let Some(c) = self.clocks.get_mut(&clock)
            && c.started_ms.is_some()
            && c.stopped_ms.is_none()
        {
            c.stopped_ms = Some(now_ms);
        }
    }

    fn close_pause(&mut self, now_ms: i64) {
        if let Some(p) = self.pauses.last_mut()
            && p.to_ms.is_none()
        {
            p.to_ms = Some(now_ms.max(p.from_ms));
        }
    }

    /// Records an event. Stopping a clock that already stopped changes nothing, so a repeated
    /// action is harmless.
    pub fn apply(&mut self, event: ClockEvent, now_ms: i64) -> Result<(), ClockError> {
        match event {
            ClockEvent::Accept => self.stop(ClockName::Accept, now_ms),
            ClockEvent::FirstContact => {
                self.stop(ClockName::Accept, now_ms);
                self.stop(ClockName::FirstContact, now_ms);
            }
            ClockEvent::Pause => {
                if self.is_paused() {
                    return Err(ClockError::AlreadyPaused);
                }
                self.pauses.push(Pause {
                    from_ms: now_ms,
                    to_ms: None,
                });
            }
            ClockEvent::Resume => {
                if !self.is_paused() {
                    return Err(ClockError::NotPaused);
                }
                self.close_pause(now_ms);
            }
            ClockEvent::Resolve => {
                self.close_pause(now_ms);
                for c in [
                    ClockName::Accept,
                    ClockName::FirstContact,
                    ClockName::Resolve,
                ] {
                    self.stop(c, now_ms);
                }
                if let Some(f) = self.clocks.get_mut(&ClockName::FollowUp)
                    && f.started_ms.is_none()
                {
                    f.started_ms = Some(now_ms);
                }
            }
            ClockEvent::FollowUp => self.stop(ClockName::FollowUp, now_ms),
            ClockEvent::Return => {
                self.close_pause(now_ms);
                for c in ClockName::ALL {
                    self.stop(c, now_ms);
                }
            }
            ClockEvent::Reopen => {
                let resolved_at = self
                    .clocks
                    .get(&ClockName::Resolve)
                    .and_then(|c| c.stopped_ms);
                if let Some(from) = resolved_at {
                    self.pauses.push(Pause {
                        from_ms: from,
                        to_ms: Some(now_ms.max(from)),
                    });
                }
                if let Some(r) = self.clocks.get_mut(&ClockName::Resolve) {
                    r.stopped_ms = None;
                }
                if let Some(f) = self.clocks.get_mut(&ClockName::FollowUp) {
                    f.started_ms = None;
                    f.stopped_ms = None;
                }
            }
        }
        Ok(())
    }

    /// Replaces every clock's terms (a policy or calendar reload), keeping its history.
    pub fn retarget(&mut self, terms: BTreeMap<ClockName, ClockTerms>) {
        for (name, t) in terms {
            match self.clocks.get_mut(&name) {
                Some(c) => c.terms = t,
                None => {
                    self.clocks.insert(
                        name,
                        ClockState {
                            terms: t,
                            started_ms: None,
                            stopped_ms: None,
                        },
                    );
                }
            }
        }
    }

    /// The moment `amount` of counted time has been consumed since `start`, skipping pauses;
    /// `None` when an open pause is reached first. Years without holiday data counted through
    /// are noted in `uncovered`.
    fn consume(
        &self,
        c: &ClockState,
        calendars: &BTreeMap<String, Calendar>,
        start: DateTime<Utc>,
        amount: Duration,
        uncovered: &mut Vec<i32>,
    ) -> Result<Option<DateTime<Utc>>, CalendarError> {
        let mut t = start;
        let mut remaining = amount;
        for p in &self.pauses {
            let from = at(p.from_ms);
            match p.to_ms.map(at) {
                Some(to) if to <= t => continue,
                _ if from <= t => match p.to_ms {
                    Some(to) => {
                        t = at(to);
                        continue;
                    }
                    None => return Ok(None),
                },
                to => {
                    let chunk = measure(&c.terms.target, calendars, t, from)?.noting(uncovered);
                    if chunk >= remaining {
                        let due = add_amount(&c.terms.target, calendars, t, remaining)?;
                        return Ok(Some(due.noting(uncovered)));
                    }
                    remaining -= chunk;
                    match to {
                        Some(to) => t = to,
                        None => return Ok(None),
                    }
                }
            }
        }
        let due = add_amount(&c.terms.target, calendars, t, remaining)?;
        Ok(Some(due.noting(uncovered)))
    }

    /// Counted time in [start, until), less what fell in pauses.
    fn consumed(
        &self,
        c: &ClockState,
        calendars: &BTreeMap<String, Calendar>,
        start: DateTime<Utc>,
        until: DateTime<Utc>,
        uncovered: &mut Vec<i32>,
    ) -> Result<Duration, CalendarError> {
        let mut total = measure(&c.terms.target, calendars, start, until)?.noting(uncovered);
        for p in &self.pauses {
            let from = at(p.from_ms).max(start);
            let to = p.to_ms.map(at).unwrap_or(until).min(until);
            if to > from {
                total -= measure(&c.terms.target, calendars, from, to)?.noting(uncovered);
            }
        }
        Ok(total.max(Duration::zero()))
    }

    /// The whole target as counted time (working time for working-day targets).
    fn total(
        c: &ClockState,
        calendars: &BTreeMap<String, Calendar>,
        start: DateTime<Utc>,
        uncovered: &mut Vec<i32>,
    ) -> Result<Duration, CalendarError> {
        let end = add_target(&c.terms.target, calendars, start)?.noting(uncovered);
        Ok(measure(&c.terms.target, calendars, start, end)?.noting(uncovered))
    }

    /// The deadline of one clock, or `None` when not started or paused.
    pub fn due(
        &self,
        clock: ClockName,
        calendars: &BTreeMap<String, Calendar>,
    ) -> Result<Option<DateTime<Utc>>, CalendarError> {
        Ok(self.deadline(clock, calendars)?.map(|d| d.value))
    }

    /// The deadline of one clock and whether it is provisional (counted through a year without
    /// holiday data); `None` when not started or paused.
    pub fn deadline(
        &self,
        clock: ClockName,
        calendars: &BTreeMap<String, Calendar>,
    ) -> Result<Option<Counted<DateTime<Utc>>>, CalendarError> {
        let Some(c) = self.clocks.get(&clock) else {
            return Ok(None);
        };
        let Some(start) = c.started_ms.map(at) else {
            return Ok(None);
        };
        let mut uncovered = Vec::new();
        let total = Self::total(c, calendars, start, &mut uncovered)?;
        Ok(self
            .consume(c, calendars, start, total, &mut uncovered)?
            .map(|value| Counted { value, uncovered }))
    }

    /// The clocks whose deadline is provisional, in clock order.
    pub fn provisional(&self, calendars: &BTreeMap<String, Calendar>) -> Vec<ClockName> {
        self.clocks
            .keys()
            .copied()
            .filter(|&clock| {
                matches!(self.deadline(clock, calendars), Ok(Some(d)) if d.is_provisional())
            })
            .collect()
    }

    /// Timers for every running clock: one per warning threshold and one for the breach, for
    /// provisional deadlines too (which are listed as such). Clocks whose deadline cannot be
    /// computed are returned as errors, so the caller can report them instead of silently
    /// running without a timer.
    pub fn plan(&self, calendars: &BTreeMap<String, Calendar>) -> ClockPlan {
        let mut plan = ClockPlan::default();
        for (&name, c) in &self.clocks {
            let (Some(start), None) = (c.started_ms.map(at), c.stopped_ms) else {
                continue;
            };
            let mut uncovered = Vec::new();
            let planned = (|| -> Result<Vec<TimerPlan>, CalendarError> {
                let total = Self::total(c, calendars, start, &mut uncovered)?;
                let mut out = Vec::new();
                for (i, f) in c.terms.warn_at.iter().enumerate() {
                    let part = Duration::milliseconds((total.num_milliseconds() as f64 * f) as i64);
                    if let Some(t) = self.consume(c, calendars, start, part, &mut uncovered)? {
                        out.push(TimerPlan {
                            clock: name,
                            kind: format!("w{i}"),
                            at_ms: t.timestamp_millis(),
                        });
                    }
                }
                if let Some(t) = self.consume(c, calendars, start, total, &mut uncovered)? {
                    out.push(TimerPlan {
                        clock: name,
                        kind: "b".into(),
                        at_ms: t.timestamp_millis(),
                    });
                }
                Ok(out)
            })();
            match planned {
                Ok(t) => {
                    plan.timers.extend(t);
                    if !uncovered.is_empty() {
                        plan.provisional.push(ProvisionalDeadline {
                            clock: name,
                            calendar: c.terms.target.calendar().unwrap_or_default().to_string(),
                            years: uncovered,
                        });
                    }
                }
                Err(e) => plan.errors.push((name, e)),
            }
        }
        plan
    }

    /// Met or breached, for a clock that has stopped; `None` otherwise.
    pub fn outcome(
        &self,
        clock: ClockName,
        calendars: &BTreeMap<String, Calendar>,
    ) -> Option<bool> {
        let c = self.clocks.get(&clock)?;
        let stopped = c.stopped_ms?;
        let due = self.due(clock, calendars).ok().flatten()?;
        Some(stopped <= due.timestamp_millis())
    }

    /// What the API shows; `fired(clock, kind)` tells which timers have fired.
    pub fn views(
        &self,
        calendars: &BTreeMap<String, Calendar>,
        now_ms: i64,
        fired: impl Fn(ClockName, &str) -> bool,
    ) -> Vec<ClockView> {
        self.clocks
            .iter()
            .map(|(&name, c)| {
                let mut view = ClockView {
                    clock: name,
                    policy: c.terms.policy.clone(),
                    target: c.terms.target.describe(),
                    state: "not_started".into(),
                    due_at: None,
                    provisional: false,
                    provisional_years: Vec::new(),
                    elapsed_seconds: 0,
                    remaining_seconds: None,
                    paused_seconds: 0,
                    started_at: c.started_ms.map(at),
                    stopped_at: c.stopped_ms.map(at),
                    error: None,
                };
                let Some(start) = c.started_ms else {
                    return view;
                };
                let end = c.stopped_ms.unwrap_or(now_ms).max(start);
                view.paused_seconds = self
                    .pauses
                    .iter()
                    .map(|p| {
                        let from = p.from_ms.max(start);
                        let to = p.to_ms.unwrap_or(end).min(end);
                        (to - from).max(0) / 1000
                    })
                    .sum();
                let computed = (|| -> Result<(), CalendarError> {
                    // The mark covers the target and the deadline; time counted after a
                    // deadline that has passed does not make that deadline provisional.
                    let mut uncovered = Vec::new();
                    let total = Self::total(c, calendars, at(start), &mut uncovered)?;
                    let elapsed =
                        self.consumed(c, calendars, at(start), at(end), &mut Vec::new())?;
                    view.elapsed_seconds = elapsed.num_seconds();
                    view.remaining_seconds = Some((total - elapsed).num_seconds());
                    view.due_at = self.consume(c, calendars, at(start), total, &mut uncovered)?;
                    view.provisional = !uncovered.is_empty();
                    view.provisional_years = uncovered;
                    Ok(())
                })();
                if let Err(e) = computed {
                    view.state = "calendar_error".into();
                    view.error = Some(e.to_string());
                    return view;
                }
                let late = view.remaining_seconds.is_some_and(|r| r < 0);
                view.state = match (c.stopped_ms, self.is_paused()) {
                    (Some(_), _) if late => "breached",
                    (Some(_), _) => "met",
                    (None, _) if fired(name, "b") || late => "breached",
                    (None, true) => "paused",
                    (None, false)
                        if (0..c.terms.warn_at.len()).any(|i| fired(name, &format!("w{i}"))) =>
                    {
                        "warned"
                    }
                    (None, false) => "running",
                }
                .into();
                view
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sla::policy::Target;

    fn wall(minutes: i64) -> ClockTerms {
        ClockTerms {
            policy: "test".into(),
            target: Target::Wall {
                seconds: minutes * 60,
            },
            warn_at: vec![0.5, 0.8],
            on_breach: vec![],
            breach_queue: None,
        }
    }

    fn clocks(minutes: i64) -> TicketClocks {
        let terms = ClockName::ALL
            .into_iter()
            .map(|c| (c, wall(minutes)))
            .collect();
        TicketClocks::start(terms, 0)
    }

    const MIN: i64 = 60_000;

    fn no_calendars() -> BTreeMap<String, Calendar> {
        BTreeMap::new()
    }

    #[test]
    fn a_new_ticket_runs_every_clock_but_follow_up() {
        let c = clocks(60);
        let cal = no_calendars();
        assert_eq!(
            c.due(ClockName::Accept, &cal)
                .ok()
                .flatten()
                .map(|t| t.timestamp_millis()),
            Some(60 * MIN)
        );
        assert_eq!(c.due(ClockName::FollowUp, &cal).ok().flatten(), None);
        let ClockPlan {
            timers,
            errors,
            provisional,
        } = c.plan(&cal);
        assert!(errors.is_empty());
        assert!(
            provisional.is_empty(),
            "wall-clock time needs no holiday data"
        );
        // Three running clocks, two warnings and a breach each.
        assert_eq!(timers.len(), 9);
        let accept: Vec<_> = timers
            .iter()
            .filter(|t| t.clock == ClockName::Accept)
            .map(|t| (t.kind.as_str(), t.at_ms))
            .collect();
        assert_eq!(
            accept,
            [("w0", 30 * MIN), ("w1", 48 * MIN), ("b", 60 * MIN)]
        );
    }

    #[test]
    fn paused_time_never_counts_and_an_open_pause_has_no_deadline() {
        let cal = no_calendars();
        let mut c = clocks(60);
        c.apply(ClockEvent::Pause, 10 * MIN).expect("pause");
        assert_eq!(c.due(ClockName::Resolve, &cal).ok().flatten(), None);
        assert!(
            c.plan(&cal).timers.is_empty(),
            "nothing can fire during a pause"
        );
        c.apply(ClockEvent::Resume, 40 * MIN).expect("resume");
        let due = c
            .due(ClockName::Resolve, &cal)
            .ok()
            .flatten()
            .map(|t| t.timestamp_millis());
        assert_eq!(due, Some(90 * MIN));
        let views = c.views(&cal, 50 * MIN, |_, _| false);
        let resolve = views
            .iter()
            .find(|v| v.clock == ClockName::Resolve)
            .expect("resolve");
        assert_eq!(resolve.elapsed_seconds, 20 * 60);
        assert_eq!(resolve.paused_seconds, 30 * 60);
        assert_eq!(resolve.state, "running");
    }

    #[test]
    fn pausing_twice_or_resuming_a_running_ticket_is_refused() {
        let mut c = clocks(60);
        assert_eq!(c.apply(ClockEvent::Resume, MIN), Err(ClockError::NotPaused));
        c.apply(ClockEvent::Pause, MIN).expect("pause");
        assert_eq!(
            c.apply(ClockEvent::Pause, 2 * MIN),
            Err(ClockError::AlreadyPaused)
        );
    }

    #[test]
    fn resolving_stops_the_work_clocks_and_starts_the_follow_up() {
        let cal = no_calendars();
        let mut c = clocks(60);
        c.apply(ClockEvent::Accept, 5 * MIN).expect("accept");
        c.apply(ClockEvent::Resolve, 70 * MIN).expect("resolve");
        assert_eq!(c.outcome(ClockName::Accept, &cal), Some(true));
        assert_eq!(c.outcome(ClockName::Resolve, &cal), Some(false));
        assert_eq!(c.outcome(ClockName::FirstContact, &cal), Some(false));
        assert_eq!(
            c.due(ClockName::FollowUp, &cal)
                .ok()
                .flatten()
                .map(|t| t.timestamp_millis()),
            Some(130 * MIN)
        );
        let views = c.views(&cal, 80 * MIN, |_, _| false);
        let states: Vec<_> = views.iter().map(|v| (v.clock, v.state.as_str())).collect();
        assert!(states.contains(&(ClockName::Accept, "met")));
        assert!(states.contains(&(ClockName::Resolve, "breached")));
        assert!(states.contains(&(ClockName::FollowUp, "running")));
    }

    #[test]
    fn the_clocks_survive_a_round_trip_through_json() {
        let mut c = clocks(60);
        c.apply(ClockEvent::Pause, MIN).expect("pause");
        let json = serde_json::to_string(&c).expect("json");
        let back: TicketClocks = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, c);
    }

    /// The shipped `workday` settings, without a holidays directory.
    fn shanghai_workday() -> crate::sla::calendar::CalendarSettings {
        crate::sla::calendar::CalendarSettings {
            time_zone: "Asia/Shanghai".into(),
            always_open: false,
            working_hours: vec!["08:30-12:00".into(), "13:30-17:30".into()],
            weekdays: ["mon", "tue", "wed", "thu", "fri"]
                .map(String::from)
                .to_vec(),
            holidays_dir: None,
        }
    }

    const HOLIDAYS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/holidays");

    /// `workday` with holiday data for 2025 only, as if the 2026 file had never come.
    fn data_until_2025() -> BTreeMap<String, Calendar> {
        use crate::sla::calendar::HolidayTable;
        let text = std::fs::read_to_string(format!("{HOLIDAYS_DIR}/2025.json")).expect("2025.json");
        let table = HolidayTable::from_json_files(&[("2025.json".into(), text)]).expect("table");
        let cal = Calendar::with_holidays(
            "workday",
            "sla.calendars.workday",
            &shanghai_workday(),
            Some(table),
        )
        .expect("calendar");
        BTreeMap::from([("workday".to_string(), cal)])
    }

    /// `workday` with the shipped holiday data (2023 to 2026).
    fn shipped() -> BTreeMap<String, Calendar> {
        let settings = crate::sla::calendar::CalendarSettings {
            holidays_dir: Some(HOLIDAYS_DIR.into()),
            ..shanghai_workday()
        };
        let cal = Calendar::from_settings("workday", "sla.calendars.workday", &settings)
            .expect("calendar");
        BTreeMap::from([("workday".to_string(), cal)])
    }

    fn working_days(days: u32) -> ClockTerms {
        ClockTerms {
            target: Target::WorkingDays {
                days,
                calendar: "workday".into(),
            },
            ..wall(60)
        }
    }

    /// 2026-09-30 10:00 in Shanghai, ms.
    const SEP_30_2026: i64 = 1_790_733_600_000;

    #[test]
    fn a_clock_through_a_year_without_data_gets_a_deadline_and_its_timers() {
        let cal = data_until_2025();
        let terms = BTreeMap::from([
            (ClockName::Accept, wall(60)),
            (ClockName::Resolve, working_days(1)),
        ]);
        let c = TicketClocks::start(terms, SEP_30_2026);
        // National Day 2026 is unknown: the next working day on the ordinary week, 1 October.
        let due = c
            .due(ClockName::Resolve, &cal)
            .expect("computed")
            .expect("due");
        assert_eq!(due.timestamp_millis(), SEP_30_2026 + 24 * 60 * MIN);
        let deadline = c
            .deadline(ClockName::Resolve, &cal)
            .expect("computed")
            .expect("due");
        assert_eq!((deadline.value, deadline.uncovered), (due, vec![2026]));
        assert_eq!(c.provisional(&cal), [ClockName::Resolve]);
        // Its warnings and breach are planned like any other's, and it is reported.
        let plan = c.plan(&cal);
        assert!(plan.errors.is_empty(), "{:?}", plan.errors);
        let kinds: Vec<_> = plan
            .timers
            .iter()
            .filter(|t| t.clock == ClockName::Resolve)
            .map(|t| t.kind.as_str())
            .collect();
        assert_eq!(kinds, ["w0", "w1", "b"]);
        assert_eq!(
            plan.provisional,
            [ProvisionalDeadline {
                clock: ClockName::Resolve,
                calendar: "workday".into(),
                years: vec![2026],
            }]
        );
        let views = c.views(&cal, SEP_30_2026 + MIN, |_, _| false);
        for v in &views {
            assert_eq!(v.state, "running", "{v:?}");
            assert!(v.error.is_none(), "{v:?}");
            let resolve = v.clock == ClockName::Resolve;
            assert_eq!(v.provisional, resolve, "{v:?}");
            let years: &[i32] = if resolve { &[2026] } else { &[] };
            assert_eq!(v.provisional_years, years, "{v:?}");
        }
        // With the 2026 file the same clock is final, and National Day moves it to 8 October.
        let shipped = shipped();
        assert!(c.provisional(&shipped).is_empty());
        assert!(c.plan(&shipped).provisional.is_empty());
        let final_due = c.due(ClockName::Resolve, &shipped).expect("computed");
        assert_eq!(
            final_due.map(|t| t.timestamp_millis()),
            Some(SEP_30_2026 + 8 * 24 * 60 * MIN)
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn a_pause_never_makes_a_deadline_earlier(
                target in 1i64..10_000,
                pause_at in 0i64..20_000,
                pause_len in 0i64..20_000,
            ) {
                let cal = no_calendars();
                let plain = clocks(target);
                let mut paused = clocks(target);
                paused.apply(ClockEvent::Pause, pause_at * MIN).expect("pause");
                paused.apply(ClockEvent::Resume, (pause_at + pause_len) * MIN).expect("resume");
                let a = plain.due(ClockName::Resolve, &cal).ok().flatten();
                let b = paused.due(ClockName::Resolve, &cal).ok().flatten();
                prop_assert!(b >= a);
                // A pause that starts before the deadline moves it by the whole pause.
                let shift = if pause_at < target { pause_len } else { 0 };
                let expect = a.map(|t| t + Duration::minutes(shift));
                prop_assert_eq!(b, expect);
            }
        }
    }
}
