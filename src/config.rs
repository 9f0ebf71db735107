//! Settings, layered the way operators expect: `config/default.toml` (shipped, every key
//! commented), then the file given with `--config`, then `HOTLINE__SECTION__KEY` environment
//! variables. Everything is validated once at start-up, and every error names its key, so a
//! typo stops the gateway with a message instead of misrouting tickets for a week.
//!
//! Each section belongs to the module it configures (`auth::AuthSettings`, `live::LiveSettings`,
//! `sla::SlaSettings`, …), which checks it with `validate` and reports through
//! [`crate::setting`]. This module composes the sections, reads the sources, checks what spans
//! sections, and keeps the SLA calendars and policies that checking built, for start-up.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use crate::agents::AgentsSettings;
use crate::auth::{AuthSettings, Role};
use crate::callbacks::CallbackSettings;
use crate::classify::ClassifySettings;
use crate::county::Counties;
use crate::intake::settings::IntakeSettings;
use crate::live::LiveSettings;
use crate::local_redis::LocalRedisSettings;
use crate::routing::RoutingSettings;
use crate::setting::{ConfigError, invalid};
use crate::sla::{SlaConfig, SlaSettings};
use crate::telemetry::LogSettings;

/// All settings of one gateway process.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// HTTP listener and limits.
    pub http: HttpSettings,
    /// Where Redis is, or how to start one.
    pub redis: RedisSettings,
    /// The case archive (PostgreSQL): where it is, when tickets move there, retention.
    pub archive: crate::archive::ArchiveSettings,
    /// Limits on what partners and consoles may send.
    pub intake: IntakeSettings,
    /// The taxonomy, warning scale and lexicon.
    pub classify: ClassifySettings,
    /// Which queue each decision lands in.
    pub routing: RoutingSettings,
    /// Wall-clock targets stamped on each ticket.
    pub sla: SlaSettings,
    /// Bearer tokens.
    pub auth: AuthSettings,
    /// Leases, widening and agents to bootstrap.
    pub agents: AgentsSettings,
    /// Live transfer while the caller waits: reservations, presence, duty hours.
    pub live: LiveSettings,
    /// Delivering callbacks to partner hotlines.
    pub callbacks: CallbackSettings,
    /// Log format and level.
    pub log: LogSettings,
    /// The deployment's counties, code → name (`[counties]`): tickets, moves and agents of
    /// any other county are refused. Empty in the shipped defaults: a city lists its own.
    #[serde(default)]
    pub counties: Counties,
    /// `[sla]` as [`Settings::load`] built it to check it, for start-up to put in force.
    #[serde(skip)]
    sla_built: Option<Arc<SlaConfig>>,
}

/// `[http]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Address to listen on; port 0 picks a free one (tests).
    pub listen: String,
    /// Largest request body accepted, in bytes; larger gets 413.
    pub body_limit_bytes: usize,
    /// How long in-flight requests may take to finish after SIGTERM.
    pub shutdown_grace_seconds: u64,
    /// A client must send a request's whole header within this many seconds, or the connection
    /// is closed: a slow-loris client cannot hold connections open forever.
    pub header_read_timeout_seconds: u64,
    /// Most header lines in one HTTP/1.1 request; more get 431.
    pub max_headers: usize,
    /// Largest request head (request line and headers) in bytes; larger gets 431 (HTTP/1.1) or
    /// a refused stream (HTTP/2). At least 8192.
    pub max_header_bytes: usize,
    /// A connection with no request in progress is closed after this many seconds (HTTP/2 gets a
    /// GOAWAY first). hyper has no idle timeout for HTTP/2, so without it a client that opens a
    /// connection and then stalls, or trickles a header block, would hold it forever. A new
    /// connection gets only `header_read_timeout_seconds` to start its first request.
    pub idle_timeout_seconds: u64,
    /// A request body must arrive complete within this many seconds of its headers, or the
    /// request gets 408: hyper bounds how long headers may take, not bodies, so a client could
    /// otherwise hold a request (and an HTTP/2 stream) open by sending one byte a minute.
    pub body_read_timeout_seconds: u64,
    /// HTTP/2: the gateway pings an HTTP/2 connection this often (seconds)...
    pub h2_keep_alive_interval_seconds: u64,
    /// ...and closes it when a ping is not answered within this many seconds: a peer that has
    /// vanished, or stalls in the middle of a header block, is found even while a long-lived
    /// stream (`/v1/events`) keeps the connection from being idle.
    pub h2_keep_alive_timeout_seconds: u64,
    /// HTTP/2: most streams (requests) one connection may have open at once
    /// (SETTINGS_MAX_CONCURRENT_STREAMS); more are refused by the protocol.
    pub h2_max_concurrent_streams: u32,
    /// HTTP/2: most streams a client may open and reset before the gateway has accepted them,
    /// before the connection is closed with GOAWAY (the "rapid reset" attack, CVE-2023-44487).
    pub h2_max_pending_reset_streams: usize,
    /// HTTP/2: most streams the gateway may reset because of the client's protocol errors before
    /// it closes the connection (the "MadeYouReset" attack, CVE-2025-8671).
    pub h2_max_local_error_reset_streams: usize,
}

/// `[redis]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    /// `redis://` URL of the server to use; unset or empty starts a local child.
    #[serde(default)]
    pub url: Option<String>,
    /// How long to wait for a connection before answering 503.
    pub connect_timeout_ms: u64,
    /// How long to wait for a reply before answering 503.
    pub response_timeout_ms: u64,
    /// The most one HTTP request may wait for Redis across all its commands, so an answer
    /// during a stall is bounded however many commands the request sends.
    pub request_budget_ms: u64,
    /// `Retry-After` sent with 503 when Redis cannot be reached.
    pub retry_after_seconds: u64,
    /// Approximate length the event stream of a county is trimmed to.
    pub stream_maxlen: u64,
    /// The child `redis-server` started when `url` is unset.
    pub local: LocalRedisSettings,
}

/// The shipped defaults, compiled in so the binary runs from any directory.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

impl Settings {
    /// Loads defaults, then `file` if given, then `HOTLINE__*` variables, and validates.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        Self::load_with_overrides(file, &[])
    }

    /// As [`Settings::load`], with extra `(key, value)` overrides applied last (tests, demo).
    pub fn load_with_overrides(
        file: Option<&Path>,
        overrides: &[(&str, &str)],
    ) -> Result<Settings, ConfigError> {
        let mut builder = config::Config::builder().add_source(config::File::from_str(
            DEFAULT_TOML,
            config::FileFormat::Toml,
        ));
        if let Some(path) = file {
            builder = builder.add_source(config::File::from(path.to_path_buf()).required(true));
        }
        builder = builder.add_source(
            config::Environment::with_prefix("HOTLINE")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true),
        );
        for (k, v) in overrides {
            builder = builder.set_override(*k, *v)?;
        }
        let mut settings: Settings = builder.build()?.try_deserialize()?;
        let sla = settings.validate()?;
        settings.sla_built = Some(Arc::new(sla));
        Ok(settings)
    }

    /// The `[sla]` calendars and policies: the very build that [`Settings::load`] checked, handed
    /// over once (start-up puts it in force), so the holiday files are not read twice. Settings
    /// that did not come from `load`, or were taken from already, build it now.
    pub fn take_sla_config(&mut self) -> Result<Arc<SlaConfig>, ConfigError> {
        match self.sla_built.take() {
            Some(built) => Ok(built),
            None => SlaConfig::build(&self.sla, &self.classify).map(Arc::new),
        }
    }

    /// Checks every value whose type alone does not make it valid, each section by its own
    /// rules and then across sections; returns the SLA calendars and policies, which are checked
    /// by building them.
    pub fn validate(&self) -> Result<SlaConfig, ConfigError> {
        self.http
            .listen
            .parse::<SocketAddr>()
            .map_err(|e| invalid("http.listen", format!("not a socket address: {e}")))?;
        if self.http.body_limit_bytes < 1024 {
            return Err(invalid("http.body_limit_bytes", "must be at least 1024"));
        }
        if self.http.header_read_timeout_seconds == 0 {
            return Err(invalid(
                "http.header_read_timeout_seconds",
                "must be greater than 0",
            ));
        }
        if self.http.max_headers == 0 {
            return Err(invalid("http.max_headers", "must be greater than 0"));
        }
        if !(8192..=(16 << 20)).contains(&self.http.max_header_bytes) {
            return Err(invalid(
                "http.max_header_bytes",
                "must be between 8192 and 16777216",
            ));
        }
        self.validate_http_limits()?;
        if let Some(url) = self.redis.url.as_deref().filter(|u| !u.is_empty()) {
            redis::Client::open(url)
                .map_err(|e| invalid("redis.url", format!("not a Redis URL: {e}")))?;
        }
        if !(100..=60_000).contains(&self.redis.request_budget_ms) {
            return Err(invalid(
                "redis.request_budget_ms",
                "must be between 100 and 60000",
            ));
        }
        self.redis.local.validate()?;
        self.archive.validate()?;
        self.intake.validate()?;
        self.classify.validate()?;
        self.routing.validate(&self.classify)?;
        self.sla.validate()?;
        let sla = SlaConfig::build(&self.sla, &self.classify)?;
        self.auth.validate()?;
        self.agents.validate(&self.classify.categories)?;
        self.validate_agent_tokens()?;
        self.live.validate()?;
        self.callbacks.validate()?;
        self.log.validate()?;
        self.counties.validate()?;
        self.validate_county_references()?;
        if self.archive.personal_data_days < self.agents.reopen_days {
            return Err(invalid(
                "archive.personal_data_days",
                format!(
                    "must be at least agents.reopen_days ({}): a case that can still be reopened keeps its caller's details",
                    self.agents.reopen_days
                ),
            ));
        }
        Ok(sla)
    }

    /// What `serve` and `check-config` need beyond [`Settings::validate`]: at least one county
    /// (the classifier's tools read the same settings and need none).
    pub fn check_deployment(&self) -> Result<(), ConfigError> {
        self.counties.require_some()
    }

    /// Token and partner regions and bootstrap agents name configured counties: a region that
    /// covers none of them is a typo that would lock the caller out of everything.
    fn validate_county_references(&self) -> Result<(), ConfigError> {
        if self.counties.is_empty() {
            // Reported by `check_deployment`, with what to write.
            return Ok(());
        }
        let tokens = self.auth.tokens.iter().map(|t| ("tokens", &t.regions));
        let partners = self.auth.partners.iter().map(|p| ("partners", &p.regions));
        let mut seen: std::collections::BTreeMap<&str, usize> = Default::default();
        for (list, regions) in tokens.chain(partners) {
            let i = seen.entry(list).or_default();
            for (j, r) in regions.iter().enumerate() {
                if !self.counties.covered_by(r) {
                    return Err(invalid(
                        format!("auth.{list}[{i}].regions[{j}]"),
                        format!("{r} covers none of this deployment's counties (`[counties]`)"),
                    ));
                }
            }
            *i += 1;
        }
        for (i, b) in self.agents.bootstrap.iter().enumerate() {
            if let Some((field, message)) = b.spec.outside(&self.counties).into_iter().next() {
                return Err(invalid(format!("agents.bootstrap[{i}].{field}"), message));
            }
        }
        Ok(())
    }

    /// The connection-level limits against slow and hostile clients.
    fn validate_http_limits(&self) -> Result<(), ConfigError> {
        let h = &self.http;
        for (key, v) in [
            ("http.idle_timeout_seconds", h.idle_timeout_seconds),
            (
                "http.body_read_timeout_seconds",
                h.body_read_timeout_seconds,
            ),
            (
                "http.h2_keep_alive_interval_seconds",
                h.h2_keep_alive_interval_seconds,
            ),
            (
                "http.h2_keep_alive_timeout_seconds",
                h.h2_keep_alive_timeout_seconds,
            ),
        ] {
            if v == 0 {
                return Err(invalid(key, "must be greater than 0"));
            }
            if v > 86_400 {
                return Err(invalid(key, "at most 86400 (a day)"));
            }
        }
        if !(1..=10_000).contains(&h.h2_max_concurrent_streams) {
            return Err(invalid(
                "http.h2_max_concurrent_streams",
                "must be between 1 and 10000",
            ));
        }
        if !(1..=10_000).contains(&h.h2_max_pending_reset_streams) {
            return Err(invalid(
                "http.h2_max_pending_reset_streams",
                "must be between 1 and 10000 (unlimited would allow the rapid-reset attack)",
            ));
        }
        if !(1..=100_000).contains(&h.h2_max_local_error_reset_streams) {
            return Err(invalid(
                "http.h2_max_local_error_reset_streams",
                "must be between 1 and 100000 (unlimited would allow the MadeYouReset attack)",
            ));
        }
        Ok(())
    }

    /// `[auth]` against `[agents]`: an agent token names a well-formed agent id, and only agent
    /// tokens name one.
    fn validate_agent_tokens(&self) -> Result<(), ConfigError> {
        for (i, t) in self.auth.tokens.iter().enumerate() {
            match (&t.role, &t.agent_id) {
                (Role::Agent, None) => {
                    return Err(invalid(
                        format!("auth.tokens[{i}].agent_id"),
                        "an agent token must name its agent",
                    ));
                }
                (Role::Agent, Some(id)) if !crate::agents::valid_id(id) => {
                    return Err(invalid(
                        format!("auth.tokens[{i}].agent_id"),
                        "1 to 64 letters, digits, `.`, `_` or `-`",
                    ));
                }
                (r, Some(_)) if *r != Role::Agent => {
                    return Err(invalid(
                        format!("auth.tokens[{i}].agent_id"),
                        "only agent tokens name an agent",
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// True when Redis must be started by the gateway itself.
    pub fn wants_local_redis(&self) -> bool {
        self.redis.url.as_deref().is_none_or(str::is_empty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_defaults_are_valid() {
        let s = Settings::load(None).expect("defaults load");
        assert_eq!(s.http.listen, "127.0.0.1:8080");
        assert!(s.wants_local_redis());
    }

    #[test]
    fn a_bad_value_is_reported_by_its_key() {
        let err = Settings::load_with_overrides(None, &[("http.listen", "nowhere")])
            .expect_err("must fail");
        assert!(err.to_string().contains("http.listen"), "{err}");
        let err = Settings::load_with_overrides(None, &[("classify.triage_below", "1.5")])
            .expect_err("must fail");
        assert!(err.to_string().contains("classify.triage_below"), "{err}");
    }

    #[test]
    fn a_queue_template_without_county_is_refused() {
        let err = Settings::load_with_overrides(
            None,
            &[("routing.default_queues.mediation", "mediation.all")],
        )
        .expect_err("must fail");
        assert!(
            err.to_string().contains("routing.default_queues.mediation"),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_key_is_refused_with_its_name() {
        let err = Settings::load_with_overrides(None, &[("http.lisen", "x")]).expect_err("fails");
        assert!(err.to_string().contains("lisen"), "{err}");
    }

    #[test]
    fn every_section_names_its_own_key() {
        for (key, value) in [
            ("redis.local.appendfsync", "sometimes"),
            ("redis.request_budget_ms", "0"),
            ("intake.batch_max", "0"),
            ("sla.mover_batch", "0"),
            ("auth.signature_window_seconds", "0"),
            ("auth.rate_limit.burst", "0"),
            ("agents.claim_scan", "0"),
            ("live.selection", "random"),
            ("live.time_zone", "Mars/Olympus"),
            ("callbacks.poll_ms", "0"),
            ("log.format", "xml"),
        ] {
            let err = Settings::load_with_overrides(None, &[(key, value)]).expect_err(key);
            assert!(err.to_string().contains(key), "{key}: {err}");
        }
    }

    #[test]
    fn the_sla_build_that_was_checked_is_the_one_handed_over() {
        let mut s = Settings::load(None).expect("defaults load");
        let checked = s.sla_built.clone().expect("load keeps what it built");
        let taken = s.take_sla_config().expect("handed over");
        assert!(Arc::ptr_eq(&checked, &taken));
        assert!(s.sla_built.is_none(), "handed over once");
        assert!(s.take_sla_config().is_ok(), "and built afresh after that");
    }

    #[test]
    fn connection_limits_against_slow_clients_are_checked_by_key() {
        let s = Settings::load(None).expect("defaults load");
        assert_eq!(s.http.idle_timeout_seconds, 60);
        assert_eq!(s.http.body_read_timeout_seconds, 30);
        assert_eq!(s.http.h2_max_concurrent_streams, 100);
        assert_eq!(s.auth.rate_limit.max_event_streams, 16);
        for (key, value) in [
            ("http.idle_timeout_seconds", "0"),
            ("http.body_read_timeout_seconds", "0"),
            ("http.h2_keep_alive_interval_seconds", "0"),
            ("http.h2_keep_alive_timeout_seconds", "100000"),
            ("http.h2_max_concurrent_streams", "0"),
            ("http.h2_max_pending_reset_streams", "0"),
            ("http.h2_max_local_error_reset_streams", "0"),
        ] {
            let err = Settings::load_with_overrides(None, &[(key, value)]).expect_err(key);
            assert!(err.to_string().contains(key), "{key}: {err}");
        }
    }
}
