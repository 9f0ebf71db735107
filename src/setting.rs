//! What every section of the settings shares, below all of them: the error that names the key
//! at fault, and the checks that more than one section makes.
//!
//! Each module owns its section (`auth::AuthSettings`, `live::LiveSettings`, `sla::SlaSettings`,
//! …) and checks it in its own terms through this module; `config` composes the sections, reads
//! the layered sources and runs every check at start-up. No section calls back into `config`.

use crate::ticket::Region;

/// A setting that cannot be used, named by its dotted key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The files or environment could not be read or parsed.
    #[error("configuration could not be loaded: {0}")]
    Load(#[from] ::config::ConfigError),
    /// A value was read but is not acceptable.
    #[error("configuration key `{key}`: {message}")]
    Invalid {
        /// Dotted path of the offending key, e.g. `auth.tokens[1].sha256`.
        key: String,
        /// What is wrong with it and what would be accepted.
        message: String,
    },
}

/// The error for `key`, saying what is wrong with its value.
pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

/// A region code prefix (`32` a province, `3208` a city, `320831` a county): 1 to 6 digits.
pub fn check_region_prefix(key: &str, p: &str) -> Result<(), ConfigError> {
    if p.is_empty() || p.len() > 6 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(key, "must be 1 to 6 digits of a region code"));
    }
    Ok(())
}

/// A queue name template: lower-case letters, digits, `.` and `_` around `{county}`, which it
/// must contain, since a queue belongs to one county (its Redis hash tag).
pub fn check_queue_template(key: &str, q: &str) -> Result<(), ConfigError> {
    if !q.contains("{county}") {
        return Err(invalid(
            key,
            "must contain `{county}`: a queue belongs to one county (its Redis hash tag)",
        ));
    }
    let probe = q.replace("{county}", "000000");
    if !probe
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_')
    {
        return Err(invalid(
            key,
            "may hold only lower-case letters, digits, `.`, `_` and `{county}`",
        ));
    }
    debug_assert!(Region::is_valid_code("000000"));
    Ok(())
}
