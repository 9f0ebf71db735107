//! Logging set-up: JSON lines in production, readable lines in a terminal. Personal data never
//! reaches a log line because [`crate::ticket::Caller`] masks itself; tokens are never logged at
//! all (only the configured token *name*).

use serde::Deserialize;
use tracing_subscriber::EnvFilter;

use crate::setting::{ConfigError, invalid};

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `json` for production, `pretty` for a terminal.
    pub format: String,
    /// A `tracing` filter such as `info` or `hotline_gateway=debug,info`.
    pub level: String,
}

impl LogSettings {
    /// Checks the format.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !["json", "pretty"].contains(&self.format.as_str()) {
            return Err(invalid("log.format", "must be `json` or `pretty`"));
        }
        Ok(())
    }
}

/// Installs the global subscriber; a second call (tests) is a no-op.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_env("RUST_LOG")
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if settings.format == "json" {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder.try_init()
    };
}
