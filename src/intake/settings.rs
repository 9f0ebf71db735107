//! `[intake]`: limits on what partners and consoles may send.

use serde::Deserialize;

use crate::setting::{ConfigError, invalid};

/// `[intake]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntakeSettings {
    /// Longest `text` accepted, in characters.
    pub text_max_chars: usize,
    /// Longest `title` accepted, in characters.
    pub title_max_chars: usize,
    /// Longest `external_id`, in bytes.
    pub external_id_max_len: usize,
    /// Most `tags` on one ticket.
    pub tags_max: usize,
    /// Most tickets in one batch request.
    pub batch_max: usize,
    /// How long a (source, external_id) is remembered for idempotency, in days.
    pub idempotency_ttl_days: u64,
    /// Tickets of the same caller and category within this many days are linked (重复诉求并单).
    pub duplicate_window_days: u64,
}

impl IntakeSettings {
    /// Checks that the length limits and the batch size are above 0.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, v) in [
            ("intake.text_max_chars", self.text_max_chars),
            ("intake.title_max_chars", self.title_max_chars),
            ("intake.external_id_max_len", self.external_id_max_len),
            ("intake.batch_max", self.batch_max),
        ] {
            if v == 0 {
                return Err(invalid(key, "must be greater than 0"));
            }
        }
        Ok(())
    }
}
