//! Settings, layered the way operators expect: `config/default.toml` (shipped, every key
//! commented), then the file given with `--config`, then `HOTLINE__SECTION__KEY` environment
//! variables. Everything is validated once at start-up, and every error names its key, so a
//! typo stops the gateway with a message instead of misrouting tickets for a week.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::auth::Role;
use crate::classify::Service;
use crate::ticket::{Region, Source};

/// A setting that cannot be used, named by its dotted key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The files or environment could not be read or parsed.
    #[error("configuration could not be loaded: {0}")]
    Load(#[from] config::ConfigError),
    /// A value was read but is not acceptable.
    #[error("configuration key `{key}`: {message}")]
    Invalid {
        /// Dotted path of the offending key, e.g. `auth.tokens[1].sha256`.
        key: String,
        /// What is wrong with it and what would be accepted.
        message: String,
    },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

/// All settings of one gateway process.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// HTTP listener and limits.
    pub http: HttpSettings,
    /// Where Redis is, or how to start one.
    pub redis: RedisSettings,
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
    /// `Retry-After` sent with 503 when Redis cannot be reached.
    pub retry_after_seconds: u64,
    /// Approximate length the event stream of a county is trimmed to.
    pub stream_maxlen: u64,
    /// The child `redis-server` started when `url` is unset.
    pub local: LocalRedisSettings,
}

/// `[redis.local]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalRedisSettings {
    /// The `redis-server` executable.
    pub binary: String,
    /// Loopback port of the child.
    pub port: u16,
    /// Data directory (AOF and RDB), relative to the working directory.
    pub dir: PathBuf,
    /// AOF fsync policy: `always` or `everysec`.
    pub appendfsync: String,
}

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

/// `[routing]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingSettings {
    /// Queue for each service when no rule matches; `{county}` is replaced by the region code.
    pub default_queues: DefaultQueues,
    /// Ordered rules; the first that matches names the queue.
    #[serde(default)]
    pub rules: Vec<RuleSettings>,
}

/// `[routing.default_queues]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultQueues {
    /// Lawyers' queue.
    pub legal_consultation: String,
    /// Mediators' queue.
    pub mediation: String,
    /// Humans decide: low confidence and anything unmatched.
    pub triage: String,
}

/// One `[[routing.rules]]` entry. Empty lists match anything.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSettings {
    /// A name for logs and the routing reason.
    pub name: String,
    /// Services the rule applies to.
    #[serde(default)]
    pub services: Vec<String>,
    /// Categories the rule applies to.
    #[serde(default)]
    pub categories: Vec<String>,
    /// Region code prefixes (`32`, `3208`, `320831`).
    #[serde(default)]
    pub region_prefixes: Vec<String>,
    /// Warning levels the rule applies to.
    #[serde(default)]
    pub warning_levels: Vec<String>,
    /// Sources the rule applies to.
    #[serde(default)]
    pub sources: Vec<String>,
    /// Target queue template, with `{county}`.
    pub queue: String,
}

/// `[sla]`: calendars, policies and the timer mover.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaSettings {
    /// Default warning thresholds, as fractions of a target (e.g. `[0.5, 0.8]`).
    pub warn_at: Vec<f64>,
    /// The longest the timer mover sleeps before looking again (it also wakes for earlier
    /// deadlines scheduled by this process).
    pub mover_max_sleep_ms: u64,
    /// Most timers one mover step fires per county.
    pub mover_batch: usize,
    /// Named working calendars.
    pub calendars: BTreeMap<String, crate::sla::calendar::CalendarSettings>,
    /// Ordered policies; per clock, the first matching policy that sets it wins.
    pub policies: Vec<crate::sla::policy::PolicySettings>,
}

/// `[agents]`: how lawyers and mediators take work.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentsSettings {
    /// How long a claim is reserved for an agent before it returns to the queue.
    pub lease_seconds: u64,
    /// After this many expired leases a ticket goes to the supervisors' queue.
    pub max_lease_expiries: u32,
    /// The supervisors' queue, with `{county}`.
    pub supervisor_queue: String,
    /// How long after resolution a ticket may be reopened, in days.
    pub reopen_days: u64,
    /// How long a pushed offer waits for the agent's accept before it is offered again.
    pub offer_timeout_seconds: u64,
    /// Consecutive missed offers (or lapsed leases) after which an agent is set away.
    pub away_after_missed: u32,
    /// Whom an offer goes to among eligible online agents: `longest_idle` or `fewest_active`.
    pub offer_strategy: String,
    /// Skip widening steps that no available agent could serve.
    pub skip_empty_steps: bool,
    /// Every this many seconds of waiting raise a ticket one priority band (0: never).
    pub aging_seconds: u64,
    /// How many waiting tickets of each queue a claim looks at.
    pub claim_scan: usize,
    /// Widening steps per service (`legal_consultation`, `mediation`, `triage`).
    pub widening: BTreeMap<String, Vec<crate::agents::Step>>,
    /// Agents created at start-up when they do not exist yet.
    #[serde(default)]
    pub bootstrap: Vec<BootstrapAgent>,
}

/// `[callbacks]`: how partner callbacks (事件反馈) are delivered; where to is per partner.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallbackSettings {
    /// One attempt's time limit.
    pub timeout_ms: u64,
    /// Attempts before an event goes to the dead letters.
    pub max_attempts: u32,
    /// First retry delay; doubled per attempt, with full jitter.
    pub backoff_base_ms: u64,
    /// Longest retry delay.
    pub backoff_max_ms: u64,
    /// How often idle outboxes are looked at.
    pub poll_ms: u64,
}

/// `[live]`: live transfer (人工转接, 一键转接) while the caller is still on the line.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveSettings {
    /// How long a reserved agent has to accept before the caller is offered to the next one.
    pub accept_timeout_seconds: u64,
    /// Whom a reservation goes to among free agents: `longest_idle` or `fewest_active`.
    pub selection: String,
    /// An agent whose console sent no heartbeat (or held no offer stream) for this long is
    /// offline, so nobody is reserved who has left.
    pub heartbeat_timeout_seconds: u64,
    /// After a live call ends the agent stays busy this long (wrap-up, 话后处理).
    pub wrap_up_seconds: u64,
    /// An accepted live call that is never ended frees its agent after this long.
    pub max_call_seconds: u64,
    /// Handle time assumed by the wait estimate until real calls have been measured.
    pub default_handle_seconds: u64,
    /// Weight of the newest call in the moving average of handle times (0 < w <= 1).
    pub handle_time_weight: f64,
    /// Zone of the duty hours.
    pub time_zone: String,
    /// Duty hours per service, as "HH:MM-HH:MM" intervals; a service that is not listed has no
    /// live transfer, and `["00:00-24:00"]` is 7×24.
    pub duty_hours: BTreeMap<String, Vec<String>>,
}

/// One `[[agents.bootstrap]]` entry: an id plus the fields of `PUT /v1/agents/{id}`.
#[derive(Debug, Clone, Deserialize)]
pub struct BootstrapAgent {
    /// The agent's id.
    pub id: String,
    /// The rest of its definition.
    #[serde(flatten)]
    pub spec: crate::agents::AgentSpec,
}

/// `[auth]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// Bearer tokens, stored as SHA-256 digests.
    #[serde(default)]
    pub tokens: Vec<TokenSettings>,
    /// Partner systems that sign their requests (HMAC-SHA256) instead of sending a token.
    #[serde(default)]
    pub partners: Vec<PartnerSettings>,
    /// A signed request's timestamp may differ from the gateway's clock by at most this many
    /// seconds, either way; its signature is remembered for twice as long to refuse replays.
    #[serde(default = "default_signature_window")]
    pub signature_window_seconds: u64,
    /// The request rate each caller gets unless its entry says otherwise.
    #[serde(default)]
    pub rate_limit: RateLimitSettings,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            tokens: vec![],
            partners: vec![],
            signature_window_seconds: default_signature_window(),
            rate_limit: RateLimitSettings::default(),
        }
    }
}

fn default_signature_window() -> u64 {
    300
}

/// `[auth.rate_limit]`: a token bucket per caller name, shared by every gateway through Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Requests per second refilled into each caller's bucket; 0 means unlimited.
    pub per_second: u32,
    /// The bucket's size: how many requests may come at once after a quiet spell.
    pub burst: u32,
    /// Most `GET /v1/events` streams one caller (by name) may have open at once, across every
    /// gateway; 0 means unlimited. A stream is one request against the rate, however long it
    /// runs, so without this a caller could hold any number of them within its rate.
    #[serde(default = "default_max_event_streams")]
    pub max_event_streams: u32,
}

fn default_max_event_streams() -> u32 {
    16
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        RateLimitSettings {
            per_second: 2000,
            burst: 4000,
            max_event_streams: default_max_event_streams(),
        }
    }
}

/// A secret that never shows itself in `Debug` output, so a logged settings struct or error
/// cannot leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps secret bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Secret {
        Secret(bytes.into())
    }

    /// The bytes, for the one place that needs them (the HMAC key).
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Events a partner may ask to be called back about (used by outbound callbacks).
pub const CALLBACK_EVENTS: [&str; 6] = [
    "ticket.accepted",
    "ticket.assigned",
    "ticket.status_changed",
    "ticket.resolved",
    "ticket.returned",
    "sla.breached",
];

/// Shortest shared secret accepted, in bytes: HMAC keys shorter than this are guessable.
pub const MIN_SECRET_BYTES: usize = 32;

/// One `[[auth.partners]]` entry: a partner system that signs its requests.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerSettings {
    /// Who it is; appears in logs, metrics and the ticket's history as the actor.
    pub name: String,
    /// What it sends as `x-hotline-key`: names the secret without revealing it.
    pub key_id: String,
    /// The environment variable holding the shared secret (one of this or `secret_file`).
    #[serde(default)]
    pub secret_env: Option<String>,
    /// A file holding the shared secret; one trailing newline is ignored.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// Region code prefixes it is limited to; empty means everywhere.
    #[serde(default)]
    pub regions: Vec<String>,
    /// Requests per second for this partner (0: unlimited); default `auth.rate_limit`.
    #[serde(default)]
    pub rate_per_second: Option<u32>,
    /// Bucket size for this partner; default twice `rate_per_second` when that is set, else
    /// `auth.rate_limit.burst`.
    #[serde(default)]
    pub rate_burst: Option<u32>,
    /// Most event streams this partner may have open at once (0: unlimited); default
    /// `auth.rate_limit.max_event_streams`.
    #[serde(default)]
    pub max_event_streams: Option<u32>,
    /// Where outbound callbacks go (http or https); none means no callbacks.
    #[serde(default)]
    pub callback_url: Option<String>,
    /// Which events are called back (see [`CALLBACK_EVENTS`]).
    #[serde(default)]
    pub callback_events: Vec<String>,
}

impl PartnerSettings {
    /// Reads the shared secret from its environment variable or file; `index` is the entry's
    /// position, so the error names the key (`auth.partners[1].secret_env`).
    pub fn load_secret(&self, index: usize) -> Result<Secret, ConfigError> {
        let at = |field: &str| format!("auth.partners[{index}].{field}");
        let (key, bytes) = match (&self.secret_env, &self.secret_file) {
            (Some(var), None) => {
                let value = std::env::var_os(var).ok_or_else(|| {
                    invalid(
                        at("secret_env"),
                        format!("environment variable `{var}` is not set"),
                    )
                })?;
                (at("secret_env"), value.into_encoded_bytes())
            }
            (None, Some(path)) => {
                let mut bytes = std::fs::read(path).map_err(|e| {
                    invalid(
                        at("secret_file"),
                        format!("cannot read {}: {}", path.display(), e.kind()),
                    )
                })?;
                if bytes.ends_with(b"\n") {
                    bytes.pop();
                    if bytes.ends_with(b"\r") {
                        bytes.pop();
                    }
                }
                (at("secret_file"), bytes)
            }
            (Some(_), Some(_)) => {
                return Err(invalid(
                    at("secret_env"),
                    "set either secret_env or secret_file, not both",
                ));
            }
            (None, None) => {
                return Err(invalid(
                    at("secret_env"),
                    "missing: set secret_env (an environment variable) or secret_file (a path); never the secret itself",
                ));
            }
        };
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(invalid(
                key,
                format!(
                    "the secret must be at least {MIN_SECRET_BYTES} bytes (e.g. `openssl rand -hex 32`)"
                ),
            ));
        }
        Ok(Secret::new(bytes))
    }
}

/// One `[[auth.tokens]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    /// Who holds it; appears in logs and the ticket's history.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Hex SHA-256 of the token; the token itself is never stored.
    pub sha256: String,
    /// Region code prefixes it is limited to; empty means everywhere.
    #[serde(default)]
    pub regions: Vec<String>,
    /// For `role = "agent"`: the agent this token acts as.
    #[serde(default)]
    pub agent_id: Option<String>,
    /// Requests per second for this token (0: unlimited); default `auth.rate_limit`.
    #[serde(default)]
    pub rate_per_second: Option<u32>,
    /// Bucket size for this token; default twice `rate_per_second` when that is set, else
    /// `auth.rate_limit.burst`.
    #[serde(default)]
    pub rate_burst: Option<u32>,
    /// Most event streams this token may have open at once (0: unlimited); default
    /// `auth.rate_limit.max_event_streams`.
    #[serde(default)]
    pub max_event_streams: Option<u32>,
}

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `json` for production, `pretty` for a terminal.
    pub format: String,
    /// A `tracing` filter such as `info` or `hotline_gateway=debug,info`.
    pub level: String,
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
        let settings: Settings = builder.build()?.try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks every value whose type alone does not make it valid.
    pub fn validate(&self) -> Result<(), ConfigError> {
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
        if !["always", "everysec"].contains(&self.redis.local.appendfsync.as_str()) {
            return Err(invalid(
                "redis.local.appendfsync",
                "must be `always` or `everysec`",
            ));
        }
        for (key, v) in [
            ("intake.text_max_chars", self.intake.text_max_chars),
            ("intake.title_max_chars", self.intake.title_max_chars),
            (
                "intake.external_id_max_len",
                self.intake.external_id_max_len,
            ),
            ("intake.batch_max", self.intake.batch_max),
        ] {
            if v == 0 {
                return Err(invalid(key, "must be greater than 0"));
            }
        }
        self.validate_classify()?;
        self.validate_routing()?;
        self.validate_sla()?;
        self.validate_auth()?;
        self.validate_agents()?;
        self.validate_live()?;
        let c = &self.callbacks;
        for (key, v) in [
            ("callbacks.timeout_ms", c.timeout_ms),
            ("callbacks.max_attempts", u64::from(c.max_attempts)),
            ("callbacks.backoff_base_ms", c.backoff_base_ms),
            ("callbacks.poll_ms", c.poll_ms),
        ] {
            if v == 0 {
                return Err(invalid(key, "must be greater than 0"));
            }
        }
        if c.backoff_max_ms < c.backoff_base_ms {
            return Err(invalid(
                "callbacks.backoff_max_ms",
                "must be at least callbacks.backoff_base_ms",
            ));
        }
        if !["json", "pretty"].contains(&self.log.format.as_str()) {
            return Err(invalid("log.format", "must be `json` or `pretty`"));
        }
        Ok(())
    }

    fn validate_classify(&self) -> Result<(), ConfigError> {
        let c = &self.classify;
        if c.categories.is_empty() {
            return Err(invalid("classify.categories", "must name at least one"));
        }
        if c.warning_levels.len() < 2 {
            return Err(invalid(
                "classify.warning_levels",
                "needs at least two levels, highest first, the last meaning no warning",
            ));
        }
        for (key, list) in [
            ("classify.categories", &c.categories),
            ("classify.warning_levels", &c.warning_levels),
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
        if !(0.0..=1.0).contains(&c.triage_below) {
            return Err(invalid("classify.triage_below", "must be between 0 and 1"));
        }
        Ok(())
    }

    fn validate_routing(&self) -> Result<(), ConfigError> {
        let d = &self.routing.default_queues;
        for (key, q) in [
            (
                "routing.default_queues.legal_consultation",
                &d.legal_consultation,
            ),
            ("routing.default_queues.mediation", &d.mediation),
            ("routing.default_queues.triage", &d.triage),
        ] {
            check_queue_template(key, q)?;
        }
        for (i, r) in self.routing.rules.iter().enumerate() {
            let at = |field: &str| format!("routing.rules[{i}].{field}");
            check_queue_template(&at("queue"), &r.queue)?;
            for (j, s) in r.services.iter().enumerate() {
                if Service::parse(s).is_none() {
                    return Err(invalid(
                        format!("{}[{j}]", at("services")),
                        format!("unknown service `{s}`"),
                    ));
                }
            }
            for (j, s) in r.categories.iter().enumerate() {
                if !self.classify.categories.contains(s) {
                    return Err(invalid(
                        format!("{}[{j}]", at("categories")),
                        format!("`{s}` is not in classify.categories"),
                    ));
                }
            }
            for (j, s) in r.warning_levels.iter().enumerate() {
                if !self.classify.warning_levels.contains(s) {
                    return Err(invalid(
                        format!("{}[{j}]", at("warning_levels")),
                        format!("`{s}` is not in classify.warning_levels"),
                    ));
                }
            }
            for (j, s) in r.sources.iter().enumerate() {
                if Source::parse(s).is_none() {
                    return Err(invalid(
                        format!("{}[{j}]", at("sources")),
                        format!("unknown source `{s}` (12345, 110 or 12348)"),
                    ));
                }
            }
            for (j, p) in r.region_prefixes.iter().enumerate() {
                check_region_prefix(&format!("{}[{j}]", at("region_prefixes")), p)?;
            }
        }
        Ok(())
    }

    fn validate_sla(&self) -> Result<(), ConfigError> {
        if self.sla.mover_batch == 0 {
            return Err(invalid("sla.mover_batch", "must be greater than 0"));
        }
        if self.sla.mover_max_sleep_ms == 0 {
            return Err(invalid("sla.mover_max_sleep_ms", "must be greater than 0"));
        }
        crate::sla::SlaConfig::build(&self.sla, &self.classify).map(|_| ())
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

    fn validate_auth(&self) -> Result<(), ConfigError> {
        for (i, t) in self.auth.tokens.iter().enumerate() {
            if t.name.trim().is_empty() {
                return Err(invalid(
                    format!("auth.tokens[{i}].name"),
                    "must not be empty",
                ));
            }
            if t.sha256.len() != 64 || hex::decode(&t.sha256).is_err() {
                return Err(invalid(
                    format!("auth.tokens[{i}].sha256"),
                    "must be 64 hex digits: the SHA-256 of the token (`printf %s TOKEN | sha256sum`)",
                ));
            }
            for (j, p) in t.regions.iter().enumerate() {
                check_region_prefix(&format!("auth.tokens[{i}].regions[{j}]"), p)?;
            }
            check_rate(
                &format!("auth.tokens[{i}]"),
                t.rate_per_second,
                t.rate_burst,
            )?;
        }
        let a = &self.auth;
        if a.signature_window_seconds == 0 {
            return Err(invalid(
                "auth.signature_window_seconds",
                "must be greater than 0",
            ));
        }
        if a.signature_window_seconds > 86_400 {
            return Err(invalid(
                "auth.signature_window_seconds",
                "at most 86400: a long window lets a captured request be replayed for longer",
            ));
        }
        if a.rate_limit.per_second > 0 && a.rate_limit.burst == 0 {
            return Err(invalid(
                "auth.rate_limit.burst",
                "must be at least 1 when per_second is set (0 per_second means unlimited)",
            ));
        }
        let mut key_ids = std::collections::HashSet::new();
        for (i, p) in a.partners.iter().enumerate() {
            let at = |field: &str| format!("auth.partners[{i}].{field}");
            if p.name.trim().is_empty() {
                return Err(invalid(at("name"), "must not be empty"));
            }
            if p.key_id.is_empty()
                || p.key_id.len() > 64
                || !p
                    .key_id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            {
                return Err(invalid(
                    at("key_id"),
                    "1 to 64 letters, digits, `.`, `_` or `-`",
                ));
            }
            if !key_ids.insert(p.key_id.as_str()) {
                return Err(invalid(at("key_id"), "used by another partner"));
            }
            p.load_secret(i)?;
            for (j, r) in p.regions.iter().enumerate() {
                check_region_prefix(&format!("auth.partners[{i}].regions[{j}]"), r)?;
            }
            check_rate(
                &format!("auth.partners[{i}]"),
                p.rate_per_second,
                p.rate_burst,
            )?;
            if let Some(url) = &p.callback_url {
                check_callback_url(&at("callback_url"), url)?;
            }
            for (j, e) in p.callback_events.iter().enumerate() {
                if !CALLBACK_EVENTS.contains(&e.as_str()) {
                    return Err(invalid(
                        format!("auth.partners[{i}].callback_events[{j}]"),
                        format!("unknown event `{e}`; one of {}", CALLBACK_EVENTS.join(", ")),
                    ));
                }
            }
            if !p.callback_events.is_empty() && p.callback_url.is_none() {
                return Err(invalid(
                    at("callback_url"),
                    "callback_events are set but no callback_url says where to send them",
                ));
            }
        }
        Ok(())
    }

    fn validate_live(&self) -> Result<(), ConfigError> {
        let l = &self.live;
        for (key, v) in [
            ("live.accept_timeout_seconds", l.accept_timeout_seconds),
            (
                "live.heartbeat_timeout_seconds",
                l.heartbeat_timeout_seconds,
            ),
            ("live.max_call_seconds", l.max_call_seconds),
            ("live.default_handle_seconds", l.default_handle_seconds),
        ] {
            if v == 0 {
                return Err(invalid(key, "must be greater than 0"));
            }
        }
        if !["longest_idle", "fewest_active"].contains(&l.selection.as_str()) {
            return Err(invalid(
                "live.selection",
                "must be `longest_idle` or `fewest_active`",
            ));
        }
        if !(l.handle_time_weight > 0.0 && l.handle_time_weight <= 1.0) {
            return Err(invalid(
                "live.handle_time_weight",
                "must be greater than 0 and at most 1",
            ));
        }
        crate::live::DutyHours::from_settings(l)
            .map(|_| ())
            .map_err(|(key, message)| invalid(key, message))
    }

    fn validate_agents(&self) -> Result<(), ConfigError> {
        let a = &self.agents;
        if a.lease_seconds == 0 {
            return Err(invalid("agents.lease_seconds", "must be greater than 0"));
        }
        if a.max_lease_expiries == 0 {
            return Err(invalid(
                "agents.max_lease_expiries",
                "must be greater than 0",
            ));
        }
        if a.offer_timeout_seconds == 0 {
            return Err(invalid(
                "agents.offer_timeout_seconds",
                "must be greater than 0",
            ));
        }
        if a.away_after_missed == 0 {
            return Err(invalid(
                "agents.away_after_missed",
                "must be greater than 0",
            ));
        }
        if !["longest_idle", "fewest_active"].contains(&a.offer_strategy.as_str()) {
            return Err(invalid(
                "agents.offer_strategy",
                "must be `longest_idle` or `fewest_active`",
            ));
        }
        if a.claim_scan == 0 {
            return Err(invalid("agents.claim_scan", "must be greater than 0"));
        }
        check_queue_template("agents.supervisor_queue", &a.supervisor_queue)?;
        for service in ["legal_consultation", "mediation", "triage"] {
            let Some(steps) = a.widening.get(service) else {
                return Err(invalid(
                    format!("agents.widening.{service}"),
                    "missing: every service needs its steps",
                ));
            };
            if steps.is_empty() {
                return Err(invalid(
                    format!("agents.widening.{service}"),
                    "needs at least one step",
                ));
            }
            for (i, w) in steps.windows(2).enumerate() {
                if w[1].after_seconds < w[0].after_seconds || w[1].tier <= w[0].tier {
                    return Err(invalid(
                        format!("agents.widening.{service}[{}]", i + 1),
                        "steps must widen: a higher tier, after no less time than the step before",
                    ));
                }
            }
        }
        for key in a.widening.keys() {
            if !["legal_consultation", "mediation", "triage"].contains(&key.as_str()) {
                return Err(invalid(format!("agents.widening.{key}"), "unknown service"));
            }
        }
        for (i, b) in a.bootstrap.iter().enumerate() {
            if !crate::agents::valid_id(&b.id) {
                return Err(invalid(
                    format!("agents.bootstrap[{i}].id"),
                    "1 to 64 letters, digits, `.`, `_` or `-`",
                ));
            }
            if let Some((field, message)) = b
                .spec
                .problems(&self.classify.categories)
                .into_iter()
                .next()
            {
                return Err(invalid(format!("agents.bootstrap[{i}].{field}"), message));
            }
        }
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

fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn check_region_prefix(key: &str, p: &str) -> Result<(), ConfigError> {
    if p.is_empty() || p.len() > 6 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(key, "must be 1 to 6 digits of a region code"));
    }
    Ok(())
}

/// A per-entry rate override: a burst needs a rate to refill it.
fn check_rate(entry: &str, per_second: Option<u32>, burst: Option<u32>) -> Result<(), ConfigError> {
    if per_second.is_some_and(|r| r > 0) && burst == Some(0) {
        return Err(invalid(
            format!("{entry}.rate_burst"),
            "must be at least 1 when rate_per_second is above 0",
        ));
    }
    Ok(())
}

/// A callback URL: absolute http or https with a host, no credentials in it.
fn check_callback_url(key: &str, url: &str) -> Result<(), ConfigError> {
    let uri: axum::http::Uri = url
        .parse()
        .map_err(|e| invalid(key, format!("not a URL: {e}")))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(invalid(key, "must start with http:// or https://")),
    }
    let Some(authority) = uri.authority() else {
        return Err(invalid(key, "must name a host"));
    };
    if authority.host().is_empty() {
        return Err(invalid(key, "must name a host"));
    }
    if authority.as_str().contains('@') {
        return Err(invalid(
            key,
            "must not carry credentials (user:password@); callbacks are signed instead",
        ));
    }
    Ok(())
}

fn check_queue_template(key: &str, q: &str) -> Result<(), ConfigError> {
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
