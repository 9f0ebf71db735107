//! The deployment's counties (`[counties]`): the county codes this gateway serves, with their
//! names for screens.
//!
//! Every county has its own Redis keys, queues, event stream and timers, so a county is not
//! free: before this list, any 6-digit code a partner sent created one. Now intake, county moves,
//! agent definitions and token regions accept only configured counties (422 naming the field
//! otherwise); a wrong code is the sender's mistake, which they can fix at once, and a silent
//! catch-all county would hide it. Counties that still hold tickets in Redis after they were
//! taken out of the list are still served until they are empty (the mover and the event streams
//! take configured ∪ registered).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::setting::{ConfigError, invalid};
use crate::ticket::Region;

/// Configured county code → its name (`"320324" = "睢宁县"`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Counties(BTreeMap<String, String>);

impl Counties {
    /// From `(code, name)` pairs (tests and tools; the gateway reads `[counties]`).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Counties {
        Counties(
            pairs
                .into_iter()
                .map(|(c, n)| (c.to_string(), n.to_string()))
                .collect(),
        )
    }

    /// Whether `code` is one of the deployment's counties.
    pub fn contains(&self, code: &str) -> bool {
        self.0.contains_key(code)
    }

    /// The county's name, when it is configured.
    pub fn name(&self, code: &str) -> Option<&str> {
        self.0.get(code).map(String::as_str)
    }

    /// The configured codes, in order.
    pub fn codes(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// How many counties are configured.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// No county is configured (the shipped default: a city lists its own).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a region prefix (`32` a province, `3208` a city, `320831` a county) covers at
    /// least one configured county: a token limited to a prefix that covers none could do
    /// nothing, which is a typo.
    pub fn covered_by(&self, prefix: &str) -> bool {
        self.codes().any(|c| c.starts_with(prefix))
    }

    /// Why `code` is refused where a configured county is wanted, for a 422 or a start-up error.
    pub fn refusal(&self, code: &str) -> String {
        format!(
            "{code} is not one of this deployment's {} counties (`[counties]`)",
            self.len()
        )
    }

    /// Each key a 6-digit code, each name 1 to 32 characters; errors name the key
    /// (`counties.32083`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (code, name) in &self.0 {
            let key = format!("counties.{code}");
            if !Region::is_valid_code(code) {
                return Err(invalid(
                    key,
                    "a county is keyed by its 6-digit administrative code, e.g. \"320324\" = \"睢宁县\"",
                ));
            }
            let chars = name.trim().chars().count();
            if chars == 0 || chars > 32 {
                return Err(invalid(key, "the county's name: 1 to 32 characters"));
            }
        }
        Ok(())
    }

    /// The deployment serves at least one county. Checked by `serve` and `check-config`, not by
    /// every tool that reads the settings (the classifier's tools need no counties).
    pub fn require_some(&self) -> Result<(), ConfigError> {
        if self.is_empty() {
            return Err(invalid(
                "counties",
                "no county is configured: list the counties this deployment serves, one a line, \
                 e.g. [counties] \"320324\" = \"睢宁县\" (tickets, moves and agents of any other \
                 county are refused with 422)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_are_checked_by_key() {
        let ok = Counties::from_pairs([("320324", "睢宁县"), ("320831", "金湖县")]);
        assert!(ok.validate().is_ok());
        assert!(ok.require_some().is_ok());
        assert!(ok.contains("320324") && !ok.contains("320325"));
        assert!(ok.covered_by("3208") && ok.covered_by("32") && !ok.covered_by("11"));
        let err = Counties::from_pairs([("32083", "x")])
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("counties.32083"), "{err}");
        let err = Counties::from_pairs([("320831", " ")])
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("counties.320831"), "{err}");
        let err = Counties::default().require_some().unwrap_err();
        assert!(err.to_string().contains("`counties`"), "{err}");
    }
}
