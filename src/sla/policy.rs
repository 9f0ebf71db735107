//! SLA policies: which targets a ticket runs against, chosen from config by (service, warning
//! level, source, category), clock by clock.
//!
//! Policies are tried in order, separately for each clock: the first policy that matches the
//! ticket *and defines that clock* sets it. So a short "highest warning level" policy can set
//! only `accept` and `first_contact`, and the resolve target still comes from the service's own
//! policy further down. Validation insists on a catch-all for every clock, so no ticket can run
//! without one.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::calendar::{Calendar, CalendarError, Counted};
use crate::ticket::Source;

/// The four clocks of a ticket.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ClockName {
    /// 接单: from registration until an agent accepts.
    Accept,
    /// 首次联系: from registration until the agent first contacts the caller.
    FirstContact,
    /// 办结: from registration until resolved.
    Resolve,
    /// 回访: from resolution until the follow-up call.
    FollowUp,
}

impl ClockName {
    /// Every clock, in the order of the ticket's life.
    pub const ALL: [ClockName; 4] = [
        ClockName::Accept,
        ClockName::FirstContact,
        ClockName::Resolve,
        ClockName::FollowUp,
    ];

    /// The config key, wire name and metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            ClockName::Accept => "accept",
            ClockName::FirstContact => "first_contact",
            ClockName::Resolve => "resolve",
            ClockName::FollowUp => "follow_up",
        }
    }
}

/// A target as written in config: exactly one amount, and a calendar for working units.
/// `{ minutes = 5 }`, `{ hours = 24 }`, `{ days = 30 }`, `{ working_hours = 16, calendar = "workday" }`,
/// `{ working_days = 7, calendar = "workday" }`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetSettings {
    /// Wall-clock seconds (drills and tests; real policies use minutes and up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<u32>,
    /// Wall-clock minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<u32>,
    /// Wall-clock hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<u32>,
    /// Calendar days (wall clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<u32>,
    /// Hours inside working hours of `calendar`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_hours: Option<u32>,
    /// Working days of `calendar`: the same local time on the Nth working day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_days: Option<u32>,
    /// The calendar for working units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar: Option<String>,
}

/// A validated target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "unit", rename_all = "snake_case")]
pub enum Target {
    /// Wall-clock time.
    Wall {
        /// Seconds.
        seconds: i64,
    },
    /// Working time on a calendar.
    WorkingTime {
        /// Seconds of working time.
        seconds: i64,
        /// Calendar name.
        calendar: String,
    },
    /// N working days on a calendar.
    WorkingDays {
        /// N.
        days: u32,
        /// Calendar name.
        calendar: String,
    },
}

impl Target {
    /// The calendar this target counts on; `None` for wall-clock time.
    pub fn calendar(&self) -> Option<&str> {
        match self {
            Target::Wall { .. } => None,
            Target::WorkingTime { calendar, .. } | Target::WorkingDays { calendar, .. } => {
                Some(calendar)
            }
        }
    }

    /// Human-readable form for the API, e.g. `7 working days (workday)`.
    pub fn describe(&self) -> String {
        match self {
            Target::Wall { seconds } if seconds % 86_400 == 0 => {
                format!("{} days", seconds / 86_400)
            }
            Target::Wall { seconds } if seconds % 3600 == 0 => format!("{} hours", seconds / 3600),
            Target::Wall { seconds } if seconds % 60 == 0 => format!("{} minutes", seconds / 60),
            Target::Wall { seconds } => format!("{seconds} seconds"),
            Target::WorkingTime { seconds, calendar } => {
                format!("{} working hours ({calendar})", seconds / 3600)
            }
            Target::WorkingDays { days, calendar } => format!("{days} working days ({calendar})"),
        }
    }
}

impl TargetSettings {
    /// Validates into a [`Target`]; `key` names the setting in errors.
    pub fn target(
        &self,
        key: &str,
        calendars: &BTreeMap<String, Calendar>,
    ) -> Result<Target, (String, String)> {
        let amounts = [
            self.seconds.map(|m| ("seconds", m)),
            self.minutes.map(|m| ("minutes", m)),
            self.hours.map(|h| ("hours", h)),
            self.days.map(|d| ("days", d)),
            self.working_hours.map(|h| ("working_hours", h)),
            self.working_days.map(|d| ("working_days", d)),
        ];
        let given: Vec<(&str, u32)> = amounts.into_iter().flatten().collect();
        let [(unit, n)] = given.as_slice() else {
            return Err((
                key.to_string(),
                "give exactly one of seconds, minutes, hours, days, working_hours, working_days"
                    .into(),
            ));
        };
        if *n == 0 {
            return Err((format!("{key}.{unit}"), "must be greater than 0".into()));
        }
        let n = *n;
        let working = matches!(*unit, "working_hours" | "working_days");
        let calendar = match (&self.calendar, working) {
            (Some(c), true) => {
                if !calendars.contains_key(c) {
                    return Err((
                        format!("{key}.calendar"),
                        format!("no calendar `{c}` in sla.calendars"),
                    ));
                }
                c.clone()
            }
            (None, true) => {
                return Err((
                    format!("{key}.calendar"),
                    format!("`{unit}` needs a calendar"),
                ));
            }
            (Some(_), false) => {
                return Err((
                    format!("{key}.calendar"),
                    format!(
                        "`{unit}` is wall-clock time; a calendar applies only to working units"
                    ),
                ));
            }
            (None, false) => String::new(),
        };
        Ok(match *unit {
            "seconds" => Target::Wall {
                seconds: i64::from(n),
            },
            "minutes" => Target::Wall {
                seconds: i64::from(n) * 60,
            },
            "hours" => Target::Wall {
                seconds: i64::from(n) * 3600,
            },
            "days" => Target::Wall {
                seconds: i64::from(n) * 86_400,
            },
            "working_hours" => Target::WorkingTime {
                seconds: i64::from(n) * 3600,
                calendar,
            },
            _ => Target::WorkingDays { days: n, calendar },
        })
    }
}

/// One `[[sla.policies]]` entry. Empty matcher lists match anything.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySettings {
    /// Shown in the ticket's clocks, so a supervisor can see which rule applied.
    pub name: String,
    /// Services it applies to.
    #[serde(default)]
    pub services: Vec<String>,
    /// Warning levels it applies to.
    #[serde(default)]
    pub warning_levels: Vec<String>,
    /// Sources it applies to.
    #[serde(default)]
    pub sources: Vec<String>,
    /// Categories it applies to (e.g. complex matters such as demolition).
    #[serde(default)]
    pub categories: Vec<String>,
    /// Transfer modes it applies to: `live` (the caller asked for a live transfer) or
    /// `callback` (they asked outside duty hours and are called back).
    #[serde(default)]
    pub transfer: Vec<String>,
    /// Target of the accept clock.
    #[serde(default)]
    pub accept: Option<TargetSettings>,
    /// Target of the first-contact clock.
    #[serde(default)]
    pub first_contact: Option<TargetSettings>,
    /// Target of the resolve clock.
    #[serde(default)]
    pub resolve: Option<TargetSettings>,
    /// Target of the follow-up clock (from resolution).
    #[serde(default)]
    pub follow_up: Option<TargetSettings>,
    /// Warning thresholds as fractions of the target; default `sla.warn_at`.
    #[serde(default)]
    pub warn_at: Option<Vec<f64>>,
    /// Breach ladder, in order: `raise_band`, `move_queue`, `notify`, `overdue`.
    #[serde(default)]
    pub on_breach: Vec<String>,
    /// Queue template for `move_queue`, with `{county}`.
    #[serde(default)]
    pub breach_queue: Option<String>,
}

/// Breach actions, in the order a policy lists them.
pub const BREACH_ACTIONS: [&str; 4] = ["raise_band", "move_queue", "notify", "overdue"];

/// One validated policy.
#[derive(Debug, Clone)]
pub struct Policy {
    name: String,
    services: Vec<String>,
    warning_levels: Vec<String>,
    sources: Vec<Source>,
    categories: Vec<String>,
    transfer: Vec<String>,
    targets: BTreeMap<ClockName, Target>,
    warn_at: Vec<f64>,
    on_breach: Vec<String>,
    breach_queue: Option<String>,
}

/// What a ticket is matched on.
#[derive(Debug, Clone, Copy)]
pub struct TicketFacts<'a> {
    /// Service decided by the classifier.
    pub service: &'a str,
    /// Warning level.
    pub warning_level: &'a str,
    /// Source hotline.
    pub source: Source,
    /// Category.
    pub category: &'a str,
    /// `live`, `callback`, or empty for ordinary work.
    pub transfer: &'a str,
}

/// The terms one clock of one ticket runs on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClockTerms {
    /// The policy that set them.
    pub policy: String,
    /// The target.
    pub target: Target,
    /// Warning thresholds (fractions of the target).
    pub warn_at: Vec<f64>,
    /// Breach ladder.
    pub on_breach: Vec<String>,
    /// Queue for `move_queue`, already filled in for the ticket's county.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breach_queue: Option<String>,
}

/// The ordered, validated policy table.
#[derive(Debug, Clone)]
pub struct Policies {
    policies: Vec<Policy>,
}

fn err(key: String, message: impl Into<String>) -> (String, String) {
    (key, message.into())
}

impl Policies {
    /// Validates the table. Errors are `(key, message)`, mapped to the config error by the caller.
    pub fn new(
        settings: &[PolicySettings],
        default_warn_at: &[f64],
        calendars: &BTreeMap<String, Calendar>,
        categories: &[String],
        levels: &[String],
    ) -> Result<Policies, (String, String)> {
        let mut policies = Vec::new();
        for (i, p) in settings.iter().enumerate() {
            let at = |f: &str| format!("sla.policies[{i}].{f}");
            let mut targets = BTreeMap::new();
            for clock in ClockName::ALL {
                let t = match clock {
                    ClockName::Accept => &p.accept,
                    ClockName::FirstContact => &p.first_contact,
                    ClockName::Resolve => &p.resolve,
                    ClockName::FollowUp => &p.follow_up,
                };
                if let Some(t) = t {
                    targets.insert(clock, t.target(&at(clock.as_str()), calendars)?);
                }
            }
            for (j, s) in p.services.iter().enumerate() {
                if crate::classify::Service::parse(s).is_none() {
                    return Err(err(
                        format!("{}[{j}]", at("services")),
                        format!("unknown service `{s}`"),
                    ));
                }
            }
            for (j, s) in p.warning_levels.iter().enumerate() {
                if !levels.contains(s) {
                    return Err(err(
                        format!("{}[{j}]", at("warning_levels")),
                        format!("`{s}` is not in classify.warning_levels"),
                    ));
                }
            }
            for (j, s) in p.transfer.iter().enumerate() {
                if !["live", "callback"].contains(&s.as_str()) {
                    return Err(err(
                        format!("{}[{j}]", at("transfer")),
                        format!("`{s}` is not `live` or `callback`"),
                    ));
                }
            }
            for (j, s) in p.categories.iter().enumerate() {
                if !categories.contains(s) {
                    return Err(err(
                        format!("{}[{j}]", at("categories")),
                        format!("`{s}` is not in classify.categories"),
                    ));
                }
            }
            let mut sources = Vec::new();
            for (j, s) in p.sources.iter().enumerate() {
                sources.push(Source::parse(s).ok_or_else(|| {
                    err(
                        format!("{}[{j}]", at("sources")),
                        format!("unknown source `{s}`"),
                    )
                })?);
            }
            let warn_at = p
                .warn_at
                .clone()
                .unwrap_or_else(|| default_warn_at.to_vec());
            check_warn_at(&at("warn_at"), &warn_at)?;
            for (j, a) in p.on_breach.iter().enumerate() {
                if !BREACH_ACTIONS.contains(&a.as_str()) {
                    return Err(err(
                        format!("{}[{j}]", at("on_breach")),
                        format!("unknown action `{a}`; use {}", BREACH_ACTIONS.join(", ")),
                    ));
                }
            }
            let moves = p.on_breach.iter().any(|a| a == "move_queue");
            match (&p.breach_queue, moves) {
                (None, true) => {
                    return Err(err(at("breach_queue"), "`move_queue` needs a breach_queue"));
                }
                (Some(q), _) if !q.contains("{county}") => {
                    return Err(err(at("breach_queue"), "must contain `{county}`"));
                }
                _ => {}
            }
            policies.push(Policy {
                name: p.name.clone(),
                services: p.services.clone(),
                warning_levels: p.warning_levels.clone(),
                sources,
                categories: p.categories.clone(),
                transfer: p.transfer.clone(),
                targets,
                warn_at,
                on_breach: p.on_breach.clone(),
                breach_queue: p.breach_queue.clone(),
            });
        }
        for clock in ClockName::ALL {
            let covered = policies.iter().any(|p| {
                p.targets.contains_key(&clock)
                    && p.services.is_empty()
                    && p.warning_levels.is_empty()
                    && p.sources.is_empty()
                    && p.categories.is_empty()
                    && p.transfer.is_empty()
            });
            if !covered {
                return Err(err(
                    "sla.policies".into(),
                    format!(
                        "no catch-all policy (one with no services, warning_levels, sources, categories or transfer) sets `{}`",
                        clock.as_str()
                    ),
                ));
            }
        }
        Ok(Policies { policies })
    }

    /// The terms of every clock for one ticket; `county` fills `{county}` in breach queues.
    pub fn terms(&self, facts: TicketFacts<'_>, county: &str) -> BTreeMap<ClockName, ClockTerms> {
        let mut out = BTreeMap::new();
        for clock in ClockName::ALL {
            if let Some((p, target)) = self
                .policies
                .iter()
                .filter(|p| p.matches(facts))
                .find_map(|p| p.targets.get(&clock).map(|t| (p, t)))
            {
                out.insert(
                    clock,
                    ClockTerms {
                        policy: p.name.clone(),
                        target: target.clone(),
                        warn_at: p.warn_at.clone(),
                        on_breach: p.on_breach.clone(),
                        breach_queue: p
                            .breach_queue
                            .as_ref()
                            .map(|q| q.replace("{county}", county)),
                    },
                );
            }
        }
        out
    }
}

impl Policy {
    fn matches(&self, f: TicketFacts<'_>) -> bool {
        (self.services.is_empty() || self.services.iter().any(|s| s == f.service))
            && (self.warning_levels.is_empty()
                || self.warning_levels.iter().any(|l| l == f.warning_level))
            && (self.sources.is_empty() || self.sources.contains(&f.source))
            && (self.categories.is_empty() || self.categories.iter().any(|c| c == f.category))
            && (self.transfer.is_empty() || self.transfer.iter().any(|t| t == f.transfer))
    }
}

/// Checks warning thresholds: strictly increasing fractions in (0, 1).
pub fn check_warn_at(key: &str, warn_at: &[f64]) -> Result<(), (String, String)> {
    let mut last = 0.0;
    for (i, f) in warn_at.iter().enumerate() {
        if !(*f > last && *f < 1.0) {
            return Err(err(
                format!("{key}[{i}]"),
                "thresholds must be increasing fractions between 0 and 1, such as [0.5, 0.8]",
            ));
        }
        last = *f;
    }
    Ok(())
}

/// Adds `amount` of the target's own kind of time to `from`: wall time, or working time on the
/// calendar. Working days are handled by [`add_target`]; this is for consumed amounts.
pub fn add_amount(
    target: &Target,
    calendars: &BTreeMap<String, Calendar>,
    from: DateTime<Utc>,
    amount: Duration,
) -> Result<Counted<DateTime<Utc>>, CalendarError> {
    match target.calendar() {
        None => Ok(Counted::exact(from + amount)),
        Some(name) => calendar(calendars, name)?.add_working_time(from, amount),
    }
}

/// How much of the target's kind of time lies in [a, b).
pub fn measure(
    target: &Target,
    calendars: &BTreeMap<String, Calendar>,
    a: DateTime<Utc>,
    b: DateTime<Utc>,
) -> Result<Counted<Duration>, CalendarError> {
    match target.calendar() {
        None => Ok(Counted::exact(if b > a { b - a } else { Duration::zero() })),
        Some(name) => calendar(calendars, name)?.working_time_between(a, b),
    }
}

/// The deadline of a target started at `from`, ignoring pauses.
pub fn add_target(
    target: &Target,
    calendars: &BTreeMap<String, Calendar>,
    from: DateTime<Utc>,
) -> Result<Counted<DateTime<Utc>>, CalendarError> {
    match target {
        Target::Wall { seconds } => Ok(Counted::exact(from + Duration::seconds(*seconds))),
        Target::WorkingTime {
            seconds,
            calendar: c,
        } => calendar(calendars, c)?.add_working_time(from, Duration::seconds(*seconds)),
        Target::WorkingDays { days, calendar: c } => {
            calendar(calendars, c)?.add_working_days(from, *days)
        }
    }
}

fn calendar<'a>(
    calendars: &'a BTreeMap<String, Calendar>,
    name: &str,
) -> Result<&'a Calendar, CalendarError> {
    calendars.get(name).ok_or_else(|| CalendarError::Invalid {
        key: format!("sla.calendars.{name}"),
        message: "no such calendar (was it removed by a reload?)".into(),
    })
}
