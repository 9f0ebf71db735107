//! Reloading in place (SIGHUP or `POST /v1/admin/reload`): the configuration file's SLA
//! section, holiday data, lexicon and model are re-read and put in force, and every open
//! ticket's deadlines are recomputed in the background, its progress in
//! `AppState::recompute`. A broken file is refused and the old one stays.

use std::sync::Arc;

use utoipa::ToSchema;

use crate::queues::StoreError;
use crate::sla::SlaConfig;
use crate::sla::recompute::RecomputeStatus;
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
    /// The classifier version now in force (lexicon and model reloaded).
    pub classifier_model: String,
    /// The recomputation of open tickets' deadlines, started in the background; follow it with
    /// `GET /v1/admin/reload`.
    pub recompute: RecomputeStatus,
}

/// Re-reads the configuration file and holiday data and puts the SLA section, lexicon and
/// model in force at once; then recomputes the deadlines of open tickets in the background
/// (tens of thousands take longer than a client waits), holding the reload lock until done.
pub async fn reload(state: &Arc<AppState>) -> Result<ReloadReport, ReloadError> {
    // One at a time: two reloads would recompute every open ticket twice over each other.
    let Ok(running) = Arc::clone(&state.reloading).try_lock_owned() else {
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
    state.recompute.start(chrono::Utc::now());
    let background = Arc::clone(state);
    tokio::spawn(async move {
        let _running = running;
        recompute(&background).await;
    });
    Ok(ReloadReport {
        calendars,
        missing_years,
        classifier_model,
        recompute: state.recompute.status(),
    })
}

/// Recomputes every open ticket and records how it ended.
async fn recompute(state: &AppState) {
    let now = chrono::Utc::now;
    match crate::handling::recompute_open(state).await {
        Ok(_) if state.is_closing() => {
            state
                .recompute
                .fail(now(), "the gateway shut down before it finished".into());
            tracing::warn!("recomputation of open tickets stopped by shutdown; reload again");
        }
        Ok(recomputed) => {
            state.recompute.finish(now());
            tracing::info!(
                recomputed,
                "SLA configuration reloaded; open tickets recomputed"
            );
        }
        Err(e) => {
            state.recompute.fail(now(), e.to_string());
            tracing::error!(error = %e, "recomputation of open tickets failed; reload again");
        }
    }
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
