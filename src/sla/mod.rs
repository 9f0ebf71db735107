//! SLA clocks (时限): policies that set targets, working calendars that count them, per-ticket
//! clocks with a pause log, and the mover that fires durable Redis timers.
//!
//! - [`calendar`]: China's working calendar (holidays and make-up days from holiday-cn files).
//! - [`policy`]: which target each clock of a ticket runs on.
//! - [`clock`]: a ticket's clocks and pauses → deadlines, warning moments, API views (pure).
//! - [`mover`]: the task that fires due timers through one atomic Lua script.
//!
//! Calendars and policies are swapped as a whole on reload ([`Sla::replace`]), and the clocks of
//! open tickets are then recomputed from their logs.
//!
//! A year without holiday data never stops a deadline: it is counted on the calendar's ordinary
//! week and marked provisional. This module reports that outside the pure parts: a warning in
//! the log once per (calendar, year) ([`warn_missing_year`]) and a count of provisional
//! deadlines planned ([`SlaConfig::plan`]).

pub mod calendar;
pub mod clock;
pub mod mover;
pub mod policy;
pub mod recompute;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, RwLock};

use chrono::{Datelike, Utc};
use serde::Deserialize;

use crate::classify::ClassifySettings;
use crate::setting::{ConfigError, invalid};
use calendar::{Calendar, CalendarError};
use clock::{TicketClocks, TimerPlan};
use policy::{ClockName, Policies};

/// `[sla]`: calendars, policies and the timer mover.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaSettings {
    /// Default warning thresholds, as fractions of a target (e.g. `[0.5, 0.8]`).
    pub warn_at: Vec<f64>,
    /// How often the mover looks at a county where a console is online or a caller waits on
    /// the line (offers and live reservations); the longest it sleeps while any county is due.
    pub mover_max_sleep_ms: u64,
    /// How often the mover reads every county's agenda (one round trip for all) for what
    /// other replicas wrote; between re-checks a county with nothing due is not touched.
    pub mover_recheck_ms: u64,
    /// Most timers one mover step fires per county.
    pub mover_batch: usize,
    /// Named working calendars.
    pub calendars: BTreeMap<String, calendar::CalendarSettings>,
    /// Ordered policies; per clock, the first matching policy that sets it wins.
    pub policies: Vec<policy::PolicySettings>,
}

impl SlaSettings {
    /// Checks the mover's limits; calendars and policies are checked by building them
    /// ([`SlaConfig::build`]).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.mover_batch == 0 {
            return Err(invalid("sla.mover_batch", "must be greater than 0"));
        }
        if self.mover_max_sleep_ms == 0 {
            return Err(invalid("sla.mover_max_sleep_ms", "must be greater than 0"));
        }
        if !(self.mover_max_sleep_ms..=600_000).contains(&self.mover_recheck_ms) {
            return Err(invalid(
                "sla.mover_recheck_ms",
                "between sla.mover_max_sleep_ms and 600000 (10 minutes)",
            ));
        }
        Ok(())
    }
}

/// Calendars and policies in force.
#[derive(Debug)]
pub struct SlaConfig {
    /// Calendars by name.
    pub calendars: BTreeMap<String, Calendar>,
    /// The policy table.
    pub policies: Policies,
}

impl SlaConfig {
    /// Builds and validates from settings, reading the holiday files; errors name their key.
    pub fn build(sla: &SlaSettings, classify: &ClassifySettings) -> Result<SlaConfig, ConfigError> {
        let mut calendars = BTreeMap::new();
        for (name, settings) in &sla.calendars {
            let key = format!("sla.calendars.{name}");
            let cal = Calendar::from_settings(name, &key, settings).map_err(|e| match e {
                calendar::CalendarError::Invalid { key, message } => {
                    ConfigError::Invalid { key, message }
                }
                other => ConfigError::Invalid {
                    key: format!("{key}.holidays_dir"),
                    message: other.to_string(),
                },
            })?;
            calendars.insert(name.clone(), cal);
        }
        policy::check_warn_at("sla.warn_at", &sla.warn_at)
            .map_err(|(key, message)| ConfigError::Invalid { key, message })?;
        let policies = Policies::new(
            &sla.policies,
            &sla.warn_at,
            &calendars,
            &classify.categories,
            &classify.warning_levels,
        )
        .map_err(|(key, message)| ConfigError::Invalid { key, message })?;
        Ok(SlaConfig {
            calendars,
            policies,
        })
    }

    /// Timers for the running clocks of `clocks` with the calendars in force, and the clocks
    /// whose deadline cannot be computed. A provisional deadline gets its timers like any other;
    /// it is counted (`hotline_sla_provisional_deadlines_total`) and its years without data are
    /// warned about once.
    pub fn plan(&self, clocks: &TicketClocks) -> (Vec<TimerPlan>, Vec<(ClockName, CalendarError)>) {
        let plan = clocks.plan(&self.calendars);
        for p in &plan.provisional {
            crate::metrics::provisional_deadline(p.clock.as_str());
            for &year in &p.years {
                warn_missing_year(&p.calendar, year);
            }
        }
        (plan.timers, plan.errors)
    }

    /// `(calendar, year)` pairs lacking holiday data, for this year and the next.
    pub fn missing_years(&self) -> Vec<(String, i32)> {
        let year = Utc::now().year();
        self.calendars
            .values()
            .flat_map(|c| {
                c.missing_years(year, year + 1)
                    .into_iter()
                    .map(|y| (c.name().to_string(), y))
            })
            .collect()
    }
}

/// The SLA configuration in force, swappable at run time.
#[derive(Debug)]
pub struct Sla {
    current: RwLock<Arc<SlaConfig>>,
}

impl Sla {
    /// Starts with a built configuration.
    pub fn new(config: impl Into<Arc<SlaConfig>>) -> Sla {
        Sla {
            current: RwLock::new(config.into()),
        }
    }

    /// The configuration in force; callers keep the `Arc` for one whole computation, so a
    /// reload never mixes old and new calendars in one deadline.
    pub fn current(&self) -> Arc<SlaConfig> {
        match self.current.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Puts a new configuration in force.
    pub fn replace(&self, config: SlaConfig) {
        let new = Arc::new(config);
        match self.current.write() {
            Ok(mut guard) => *guard = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
    }
}

/// Logs, once per process for each (calendar, year), that the year has no holiday data and is
/// counted on the ordinary week; later calls for the same pair (every start-up check, reload or
/// deadline through that year) stay silent.
pub fn warn_missing_year(calendar: &str, year: i32) {
    static WARNED: Mutex<BTreeSet<(String, i32)>> = Mutex::new(BTreeSet::new());
    let mut warned = match WARNED.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    };
    if warned.iter().any(|(c, y)| c == calendar && *y == year) {
        return;
    }
    warned.insert((calendar.to_string(), year));
    tracing::warn!(
        calendar,
        year,
        "no holiday data: deadlines through that year are counted on the calendar's ordinary week and marked provisional; add the year's holiday-cn file and reload"
    );
}
