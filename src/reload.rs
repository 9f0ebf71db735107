//! Reloading in place (SIGHUP or `POST /v1/admin/reload`): the configuration file's SLA
//! section, holiday data, lexicon and model are re-read and put in force, and every open
//! ticket's deadlines are recomputed. A broken file is refused and the old one stays.

use utoipa::ToSchema;

use crate::queues::StoreError;
use crate::sla::SlaConfig;
use crate::state::AppState;

/// Why a reload was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// A file is invalid (the key or file named); the old configuration stays.
    #[error("{0}: {1}")]
    Invalid(&'static str, String),
    /// Another reload is running on this gateway.
    #[error("a reload is already running")]
    Running,
    /// Recomputing the open tickets failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Answer of a reload.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ReloadReport {
    /// Calendars in force.
    pub calendars: Vec<String>,
    /// (calendar, year) pairs of this year and the next without holiday data: deadlines through
    /// them are counted on the ordinary week and marked provisional.
    #[schema(value_type = Vec<Vec<serde_json::Value>>)]
    pub missing_years: Vec<(String, i32)>,
    /// Open tickets whose clocks were recomputed.
    pub recomputed: usize,
    /// The classifier version now in force (lexicon and model reloaded).
    pub classifier_model: String,
}

/// Re-reads the configuration file and holiday data, puts the SLA section in force and
/// recomputes the deadlines of open tickets.
pub async fn reload(state: &AppState) -> Result<ReloadReport, ReloadError> {
    // One at a time: two reloads would recompute every open ticket twice over each other.
    let Ok(_running) = state.reloading.try_lock() else {
        return Err(ReloadError::Running);
    };
    let settings = crate::config::Settings::load(state.config_path.as_deref())
        .map_err(|e| ReloadError::Invalid("configuration", e.to_string()))?;
    let config = SlaConfig::build(&settings.sla, &state.settings.classify)
        .map_err(|e| ReloadError::Invalid("configuration", e.to_string()))?;
    // The lexicon and model files are re-read with the taxonomy the gateway started with.
    let classifier = crate::classify::Classifier::load(&state.settings.classify)
        .map_err(|e| ReloadError::Invalid("classify.lexicon", e.to_string()))?;
    let classifier_model = classifier.model().to_string();
    state.replace_classifier(classifier);
    publish_calendar_years(&config);
    let calendars = config.calendars.keys().cloned().collect();
    let missing_years = config.missing_years();
    state.sla.replace(config);
    let recomputed = crate::handling::recompute_open(state).await?;
    tracing::info!(recomputed, "SLA configuration reloaded");
    Ok(ReloadReport {
        calendars,
        missing_years,
        recomputed,
        classifier_model,
    })
}

/// Publishes the missing-year gauges of a configuration and warns (once per calendar and year)
/// that those years are counted on the ordinary week.
pub fn publish_calendar_years(config: &SlaConfig) {
    use chrono::Datelike;
    let year = chrono::Utc::now().year();
    let names: Vec<String> = config.calendars.keys().cloned().collect();
    let missing = config.missing_years();
    for (calendar, y) in &missing {
        crate::sla::warn_missing_year(calendar, *y);
    }
    crate::metrics::calendar_years(&names, &missing, &[year, year + 1]);
}
