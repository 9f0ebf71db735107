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

pub mod calendar;
pub mod clock;
pub mod mover;
pub mod policy;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use chrono::{Datelike, Utc};

use crate::config::{ClassifySettings, ConfigError, SlaSettings};
use calendar::Calendar;
use policy::Policies;

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
    pub fn new(config: SlaConfig) -> Sla {
        Sla {
            current: RwLock::new(Arc::new(config)),
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
