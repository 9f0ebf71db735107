//! The shared application state: everything a handler or a background job needs, built once
//! at start-up. It imports nothing above the parts it holds, so any layer may use it.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::auth::Authenticator;
use crate::classify::Classifier;
use crate::config::Settings;
use crate::queues::Store;
use crate::routing::Router as TicketRouter;

/// Everything a handler needs, built once at start-up.
pub struct AppState {
    /// Validated settings.
    pub settings: Settings,
    /// The Redis store.
    pub store: Store,
    /// The case archive (PostgreSQL): ended tickets, searched and read back.
    pub archive: Arc<crate::archive::Archive>,
    /// The classifier in force (pure; swapped whole on reload).
    pub classifier: std::sync::RwLock<Arc<Classifier>>,
    /// The routing table (pure).
    pub router: TicketRouter,
    /// Configured tokens.
    pub auth: Authenticator,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// SLA calendars and policies in force (swapped on reload).
    pub sla: crate::sla::Sla,
    /// Wakes the SLA timer mover when new timers are scheduled.
    pub mover: crate::sla::mover::MoverHandle,
    /// The `--config` file, re-read on reload.
    pub config_path: Option<std::path::PathBuf>,
    /// Live transfer: reservation length, duty hours, presence.
    pub live: crate::live::LiveConfig,
    /// Turns true when the gateway starts shutting down: readiness fails and open event streams
    /// end, so clients reconnect to another gateway instead of holding this one for its grace.
    pub closing: tokio::sync::watch::Sender<bool>,
    /// Held while a reload runs, including its recomputation in the background: one reload at a
    /// time per gateway.
    pub reloading: Arc<tokio::sync::Mutex<()>>,
    /// How far the last reload's recomputation of open tickets has got.
    pub recompute: crate::sla::recompute::RecomputeTracker,
    /// Partner callback targets and delivery settings.
    pub callbacks: Arc<crate::callbacks::Callbacks>,
    /// When `/metrics` last read the deployment-wide gauges from Redis, for their age.
    pub redis_snapshot: crate::metrics::RedisSnapshot,
}

impl AppState {
    /// The counties to look after: the deployment's, and any still holding tickets though no
    /// longer configured (until they are empty).
    pub async fn all_counties(&self) -> Result<Vec<String>, crate::queues::StoreError> {
        let mut counties: std::collections::BTreeSet<String> =
            self.store.counties().await?.into_iter().collect();
        counties.extend(self.settings.counties.codes().map(String::from));
        Ok(counties.into_iter().collect())
    }

    /// Whether the gateway is shutting down.
    pub fn is_closing(&self) -> bool {
        *self.closing.borrow()
    }

    /// The classifier in force; callers keep the `Arc` for one decision, so a reload never
    /// mixes an old lexicon with a new model.
    pub fn classifier(&self) -> Arc<Classifier> {
        match self.classifier.read() {
            Ok(c) => Arc::clone(&c),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Puts a newly loaded classifier in force.
    pub fn replace_classifier(&self, classifier: Classifier) {
        let new = Arc::new(classifier);
        match self.classifier.write() {
            Ok(mut c) => *c = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
    }
}
