//! Classification: ticket text in, a [`Decision`] with its reasons out. Pure: no I/O after the
//! lexicon is loaded, so it is tested without Redis and costs microseconds per ticket.
//!
//! Two readers decide together: the lexicon (`config/lexicon.toml`, words staff edit) and a small
//! logistic regression over character n-grams ([`model`], trained offline by
//! `hotline-gateway train` and named in the lexicon's `[model]` section). The model's
//! log-probabilities are added to the lexicon's scores and its certainty counts as evidence; the
//! warning level comes from rules alone. [`Classifier::load`] reads both files and builds an
//! immutable value in milliseconds, so a reload is simply a new `Classifier` swapped in.
//!
//! The decision answers three questions an operator used to answer by reading: who should handle
//! it (lawyer, mediator, back to the sender, or a human first), what the dispute is about, and how
//! dangerous it may become. Rules for danger only ever *raise* the warning level. Anything the
//! classifier is unsure of becomes [`Service::Triage`], never a silent guess.

mod engine;
mod features;
mod lexicon;
mod matcher;
pub mod measure;
pub mod model;
mod normalize;
mod t2s;
pub mod tools;

#[cfg(test)]
mod safety_tests;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::setting::{ConfigError, invalid};

pub use engine::Classifier;
pub use lexicon::Lexicon;
pub use model::LinearModel;

/// Who handles the ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    /// A question for a lawyer (法律咨询).
    LegalConsultation,
    /// A live dispute for a mediator (人民调解).
    Mediation,
    /// A department matter that goes back to the sender (退回).
    OutOfScope,
    /// Unsure: a human decides (人工分拣).
    Triage,
}

impl Service {
    /// Every service, for metrics that must report zeros too.
    pub const ALL: [Service; 4] = [
        Service::LegalConsultation,
        Service::Mediation,
        Service::OutOfScope,
        Service::Triage,
    ];

    /// The wire name, also a metric label and a config key.
    pub fn as_str(self) -> &'static str {
        match self {
            Service::LegalConsultation => "legal_consultation",
            Service::Mediation => "mediation",
            Service::OutOfScope => "out_of_scope",
            Service::Triage => "triage",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Service> {
        Service::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// The classifier's answer, shown to operators as it is.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Decision {
    /// Who handles it; `triage` when confidence is below the configured threshold.
    pub service: Service,
    /// One of the configured categories (`classify.categories`).
    pub category: String,
    /// One of the configured warning levels (`classify.warning_levels`).
    pub warning_level: String,
    /// How sure the service decision is, 0 to 1.
    pub confidence: f64,
    /// The words and rules that decided, in Chinese, e.g. `命中"拖欠工资"→labour`.
    pub reasons: Vec<String>,
    /// Version of the lexicon or model that decided, so a decision can be traced.
    pub model: String,
}

/// Why a lexicon could not be used; names the file and key.
#[derive(Debug, thiserror::Error)]
pub enum ClassifyError {
    /// The lexicon file could not be read.
    #[error("lexicon file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The lexicon is not valid TOML of the expected shape, or names unknown labels.
    #[error("lexicon key `{key}`: {message}")]
    Invalid {
        /// Dotted key in the lexicon file.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// `[classify]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifySettings {
    /// The lexicon file domain staff edit (relative to the working directory).
    pub lexicon: PathBuf,
    /// The dispute taxonomy; the last one is the catch-all.
    pub categories: Vec<String>,
    /// The warning scale, highest first; the last one means "no warning".
    pub warning_levels: Vec<String>,
    /// Decisions less confident than this go to the triage queue.
    pub triage_below: f64,
}

impl ClassifySettings {
    /// Checks every value whose type alone does not make it valid.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.categories.is_empty() {
            return Err(invalid("classify.categories", "must name at least one"));
        }
        if self.warning_levels.len() < 2 {
            return Err(invalid(
                "classify.warning_levels",
                "needs at least two levels, highest first, the last meaning no warning",
            ));
        }
        for (key, list) in [
            ("classify.categories", &self.categories),
            ("classify.warning_levels", &self.warning_levels),
        ] {
            let mut seen = std::collections::HashSet::new();
            for (i, name) in list.iter().enumerate() {
                if !is_label(name) {
                    return Err(invalid(
                        format!("{key}[{i}]"),
                        "must be lower-case ASCII letters, digits or `_`",
                    ));
                }
                if !seen.insert(name) {
                    return Err(invalid(format!("{key}[{i}]"), "appears twice"));
                }
            }
        }
        if !(0.0..=1.0).contains(&self.triage_below) {
            return Err(invalid("classify.triage_below", "must be between 0 and 1"));
        }
        Ok(())
    }
}

fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}
