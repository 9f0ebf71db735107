//! `[archive]`: where the case archive is, when ended tickets move there, and how long the
//! caller's personal data is kept.

use serde::Deserialize;

use crate::setting::{ConfigError, invalid};

/// `[archive]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveSettings {
    /// `postgres://` URL of the archive; unset starts a local PostgreSQL. May carry a password,
    /// so give it in the environment (`HOTLINE__ARCHIVE__URL`), not in a file; it is never
    /// logged.
    #[serde(default)]
    pub url: Option<DatabaseUrl>,
    /// How long an ended ticket stays in Redis before it is archived (seconds): the dashboard's
    /// "today" and quick re-reads are served from Redis meanwhile.
    pub after_seconds: u64,
    /// After how many days of its ending an archived ticket's personal data (the caller's name
    /// and phone, and `personal_fields`) is erased.
    pub personal_data_days: u64,
    /// More fields of the request to erase with the caller's name and phone, as JSON paths
    /// (`["caller", "address"]` written `caller.address`).
    #[serde(default)]
    pub personal_fields: Vec<String>,
    /// How often each gateway runs the retention job, seconds (gateways running it together
    /// share the work).
    pub retention_interval_seconds: u64,
    /// How many tickets one archiving step moves (one transaction, one Redis script).
    pub batch: usize,
    /// How often each gateway looks for tickets due for the archive, ms.
    pub interval_ms: u64,
    /// Connections to the archive per gateway.
    pub pool_size: usize,
    /// How long to wait for a connection (new or from the pool) before giving up, ms.
    pub connect_timeout_ms: u64,
    /// The longest one statement may run, ms (searches over years of cases included).
    pub statement_timeout_ms: u64,
    /// The PostgreSQL the gateway starts for itself when `url` is unset.
    #[serde(default)]
    pub local: crate::local_postgres::LocalPostgresSettings,
}

/// A database URL that never shows its password: `Debug` prints the URL with the password
/// replaced, so a logged settings struct cannot leak it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> DatabaseUrl {
        DatabaseUrl(url.into())
    }

    /// The URL, for the one place that connects.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced by `***`, for messages.
    pub fn redacted(&self) -> String {
        let s = &self.0;
        let Some(scheme_end) = s.find("://") else {
            return s.clone();
        };
        let rest = &s[scheme_end + 3..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => format!(
                "{}{}:***{}",
                &s[..scheme_end + 3],
                &authority[..colon],
                &rest[at..]
            ),
            _ => s.clone(),
        }
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl ArchiveSettings {
    /// Whether the gateway starts its own PostgreSQL (no `url`).
    pub fn wants_local(&self) -> bool {
        self.url.as_ref().is_none_or(|u| u.expose().is_empty())
    }

    /// Checks every key of `[archive]`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.local.validate()?;
        if let Some(url) = &self.url {
            let u = url.expose();
            if !u.is_empty() && u.parse::<tokio_postgres::Config>().is_err() {
                return Err(invalid(
                    "archive.url",
                    format!(
                        "is not a PostgreSQL URL (postgres://user:password@host:port/db): `{}`",
                        url.redacted()
                    ),
                ));
            }
        }
        if self.personal_data_days == 0 {
            return Err(invalid(
                "archive.personal_data_days",
                "must be at least 1: personal data is erased that many days after a case ends",
            ));
        }
        for (i, f) in self.personal_fields.iter().enumerate() {
            let ok = !f.is_empty()
                && f.split('.').all(|p| {
                    !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                });
            if !ok {
                return Err(invalid(
                    format!("archive.personal_fields[{i}]"),
                    "must be a dotted path of field names, like `caller.address`",
                ));
            }
        }
        let ranges: [(&str, u64, u64, u64); 6] = [
            (
                "archive.retention_interval_seconds",
                self.retention_interval_seconds,
                1,
                86_400,
            ),
            ("archive.batch", self.batch as u64, 1, 5_000),
            ("archive.interval_ms", self.interval_ms, 50, 3_600_000),
            ("archive.pool_size", self.pool_size as u64, 1, 256),
            (
                "archive.connect_timeout_ms",
                self.connect_timeout_ms,
                100,
                60_000,
            ),
            (
                "archive.statement_timeout_ms",
                self.statement_timeout_ms,
                100,
                600_000,
            ),
        ];
        for (key, v, lo, hi) in ranges {
            if !(lo..=hi).contains(&v) {
                return Err(invalid(key, format!("must be {lo} to {hi}, not {v}")));
            }
        }
        Ok(())
    }

    /// The fields erased after `personal_data_days`: the caller's name and phone, then the
    /// configured ones, each as its path in the request.
    pub fn erased_paths(&self) -> Vec<Vec<String>> {
        let mut paths = vec![
            vec!["caller".to_string(), "name".to_string()],
            vec!["caller".to_string(), "phone".to_string()],
        ];
        for f in &self.personal_fields {
            let p: Vec<String> = f.split('.').map(str::to_string).collect();
            if !paths.contains(&p) {
                paths.push(p);
            }
        }
        paths
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_never_shows_in_debug() {
        let u = DatabaseUrl::new("postgres://hotline:s3cret@db.example:5432/hotline");
        let shown = format!("{u:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert_eq!(shown, "postgres://hotline:***@db.example:5432/hotline");
        let plain = DatabaseUrl::new("postgres://hotline@127.0.0.1:6391/hotline");
        assert_eq!(
            format!("{plain:?}"),
            "postgres://hotline@127.0.0.1:6391/hotline"
        );
    }
}
