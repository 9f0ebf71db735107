//! Every metric the gateway exports, named in one place so the README table and the code
//! cannot disagree. Labels come only from closed sets (source, outcome, service, category,
//! level, queue, route), never from ticket ids or phone numbers.
//!
//! Queue gauges are not kept by this process: they are read from Redis at each scrape (see
//! `api::ops`), within a short budget, so `/metrics` answers at once even while Redis stalls,
//! with the figures last read and their age ([`RedisSnapshot`]). Every gateway reports the same
//! deployment-wide figures ([`DEPLOYMENT_WIDE`]): dashboards take them with `max`, never `sum`.
//!
//! Running totals are counters named `_total`; gauges are levels that go up and down. Nothing
//! is labelled by agent or ticket: those sets grow without bound (per-agent figures are in
//! `GET /v1/agents`).
//!
//! This module knows no domain type: callers hand it label values and numbers (and, for the
//! scrape-time gauges, the small [`QueueFigures`]), so it sits below every module that counts
//! something.

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Tickets received, by `source`, `channel` and `outcome` (created, duplicate, conflict, unavailable).
pub const TICKETS_RECEIVED: &str = "hotline_tickets_received_total";
/// Tickets refused before classification, by `reason` (invalid, malformed, forbidden_region).
pub const TICKETS_REJECTED: &str = "hotline_tickets_rejected_total";
/// Classifier decisions, by `service`, `category` and `warning_level`.
pub const CLASSIFICATIONS: &str = "hotline_classifications_total";
/// Confidence of classifier decisions (histogram), by `service`.
pub const CLASSIFICATION_CONFIDENCE: &str = "hotline_classification_confidence";
/// HTTP request latency in seconds (histogram), by `route`, `method` and `status`.
pub const HTTP_DURATION: &str = "hotline_http_request_duration_seconds";
/// Tickets under a lease, by `queue` (read from Redis at scrape; deployment-wide).
pub const QUEUE_LEASED: &str = "hotline_queue_leased";
/// Tickets waiting, by `queue` and the tickets' own warning `level` (deployment-wide).
pub const QUEUE_DEPTH: &str = "hotline_queue_depth";
/// Age of the oldest waiting ticket in seconds, by `queue` (deployment-wide).
pub const QUEUE_OLDEST_AGE: &str = "hotline_queue_oldest_age_seconds";
/// 1 when the last read of Redis for the deployment-wide gauges succeeded, else 0.
pub const REDIS_UP: &str = "hotline_redis_up";
/// Seconds since the deployment-wide gauges were last read from Redis (since start-up when they
/// never were): while Redis stalls, `/metrics` still answers, with the figures this old.
pub const REDIS_SNAPSHOT_AGE: &str = "hotline_redis_snapshot_age_seconds";
/// Writes Redis refused (out of memory, read-only, cannot persist), by `cause`.
pub const REDIS_WRITE_REFUSALS: &str = "hotline_redis_write_refusals_total";
/// SLA timers fired, by `clock` and `kind` (warning, breach).
pub const SLA_FIRED: &str = "hotline_sla_timers_fired_total";
/// How late SLA timers fired, in seconds (histogram).
pub const SLA_LATENESS: &str = "hotline_sla_timer_lateness_seconds";
/// SLA compliance (met / (stopped + breached and still running)) per `queue` and `window` (1h,
/// 24h, 7d), read from Redis (deployment-wide).
pub const QUEUE_SLA_COMPLIANCE: &str = "hotline_queue_sla_compliance";
/// Deadlines that could not be computed (a calendar removed by a reload), by `clock`.
pub const SLA_CALENDAR_ERRORS: &str = "hotline_sla_calendar_errors_total";
/// Provisional deadlines planned (counted through a year without holiday data on the ordinary
/// week), by `clock`.
pub const SLA_PROVISIONAL_DEADLINES: &str = "hotline_sla_provisional_deadlines_total";
/// 1 for each (`calendar`, `year`) of this year and the next that has no holiday data.
pub const CALENDAR_MISSING_YEAR: &str = "hotline_calendar_missing_year";
/// Per-queue happenings, by `queue` and `event` (arrival, claim, resolution, transfer, escalation).
pub const QUEUE_EVENTS: &str = "hotline_queue_events_total";
/// SLA warnings and breaches per `queue`, `clock` and `kind`.
pub const QUEUE_SLA_EVENTS: &str = "hotline_queue_sla_events_total";
/// Time from entering a queue to being taken (claimed, offered or accepted), by `queue`.
pub const QUEUE_WAIT: &str = "hotline_queue_wait_seconds";
/// Time from acceptance to resolution, by `queue`.
pub const QUEUE_HANDLE: &str = "hotline_queue_handle_seconds";
/// Latency of Redis scripts, by `op`.
pub const REDIS_LATENCY: &str = "hotline_redis_latency_seconds";
/// Agent actions applied, by `action`.
pub const TICKET_ACTIONS: &str = "hotline_ticket_actions_total";
/// Callback attempts by partner and outcome (delivered, failed, dead, skipped).
pub const CALLBACKS: &str = "hotline_callbacks_total";
/// From the event to its delivery, seconds.
pub const CALLBACK_LATENCY: &str = "hotline_callback_latency_seconds";
/// Attempts a delivered callback took.
pub const CALLBACK_ATTEMPTS: &str = "hotline_callback_attempts";
/// Undelivered callbacks and dead letters per partner, read from Redis at scrape
/// (deployment-wide).
pub const CALLBACK_PENDING: &str = "hotline_callback_pending";
/// Dead letters per partner, read from Redis at scrape (deployment-wide).
pub const CALLBACK_DEAD: &str = "hotline_callback_dead_letters";
/// Live-transfer requests by service and answer (reserved, waiting, off_duty, not_offered).
pub const LIVE_REQUESTS: &str = "hotline_live_requests_total";
/// Live-transfer decision time: from the request to the answer with a reservation or estimate.
pub const LIVE_DECISION: &str = "hotline_live_decision_seconds";
/// What became of reservations: reserved (by the mover, after a wait), accepted, cancelled.
pub const LIVE_RESERVATIONS: &str = "hotline_live_reservations_total";
/// |estimated wait − real wait| of callers who had to wait, when an agent accepted them.
pub const LIVE_ESTIMATE_ERROR: &str = "hotline_live_wait_estimate_error_seconds";
/// Real wait of live callers from request to an agent's accept.
pub const LIVE_WAIT: &str = "hotline_live_wait_seconds";

/// Requests refused with 429, by `principal` (the caller's configured name: a closed set).
pub const RATE_LIMITED: &str = "hotline_rate_limited_total";
/// Requests let through unmetered because Redis could not be asked (the limiter fails open).
pub const RATE_LIMIT_ERRORS: &str = "hotline_rate_limit_errors_total";
/// Requests refused with 401, by `reason` (missing_token, invalid_token, unknown_key,
/// bad_signature, malformed_timestamp, malformed_nonce, timestamp_outside_window,
/// replayed_signature, missing_signature_header).
pub const AUTH_REJECTED: &str = "hotline_auth_rejected_total";
/// Signed intake requests let through although their signature was already used: retries of an
/// idempotent request, answered with the ticket already registered.
pub const SIGNED_RETRIES: &str = "hotline_signed_retries_total";
/// `GET /v1/events` refused with 429 because the caller holds its most streams, by `principal`.
pub const EVENT_STREAMS_REFUSED: &str = "hotline_event_streams_refused_total";
/// Connections closed by the gateway for lack of a request, by `reason`: `idle` (no request in
/// progress for `http.idle_timeout_seconds`) or `no_request` (a new connection that did not
/// start a request within `http.header_read_timeout_seconds`).
pub const CONNECTIONS_CLOSED_IDLE: &str = "hotline_http_idle_connections_closed_total";

/// Series whose value is the same on every gateway: read from the shared Redis, or from the
/// configuration every gateway shares. Summed across N replicas they read N times too high, so
/// dashboards aggregate them with `max` (checked on the shipped Grafana dashboard by
/// `tests/ops.rs`).
pub const DEPLOYMENT_WIDE: &[&str] = &[
    QUEUE_DEPTH,
    QUEUE_OLDEST_AGE,
    QUEUE_LEASED,
    QUEUE_SLA_COMPLIANCE,
    CALLBACK_PENDING,
    CALLBACK_DEAD,
    CALENDAR_MISSING_YEAR,
    ARCHIVE_BACKLOG,
    ARCHIVE_LAG,
];

/// Said in the HELP of every deployment-wide series.
const AGGREGATE_WITH_MAX: &str =
    "deployment-wide, the same on every gateway: aggregate with max, not sum";

static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

/// Installs the process-wide recorder once and returns its handle (several test apps in one
/// process share it).
pub fn install() -> Result<PrometheusHandle, String> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(HTTP_DURATION.to_string()),
                    &[
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                        5.0,
                    ],
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(CLASSIFICATION_CONFIDENCE.to_string()),
                        &[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(QUEUE_WAIT.to_string()),
                        &[
                            1.0, 10.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 86400.0,
                        ],
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(QUEUE_HANDLE.to_string()),
                        &[
                            60.0, 600.0, 3600.0, 14400.0, 86400.0, 259200.0, 604800.0, 2592000.0,
                        ],
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(REDIS_LATENCY.to_string()),
                        &[
                            0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0,
                        ],
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(SLA_LATENESS.to_string()),
                        &[
                            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                        ],
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(LIVE_DECISION.to_string()),
                        &[
                            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
                        ],
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Prefix("hotline_live_wait".to_string()),
                        &[
                            1.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
                        ],
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(CALLBACK_LATENCY.to_string()),
                        &[
                            0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 1800.0, 3600.0,
                        ],
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(CALLBACK_ATTEMPTS.to_string()),
                        &[1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0],
                    )
                })
                .map_err(|e| e.to_string())?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).map_err(|e| e.to_string())?;
            describe();
            Ok(handle)
        })
        .clone()
}

fn describe() {
    describe_archive();
    metrics::describe_counter!(
        CALLBACKS,
        "Partner callback attempts by outcome (delivered, failed, dead, skipped)"
    );
    metrics::describe_histogram!(
        CALLBACK_LATENCY,
        "Seconds from an event to its delivery to the partner"
    );
    metrics::describe_histogram!(CALLBACK_ATTEMPTS, "Attempts a delivered callback took");
    metrics::describe_gauge!(
        CALLBACK_PENDING,
        format!("Undelivered partner callbacks; {AGGREGATE_WITH_MAX}")
    );
    metrics::describe_gauge!(
        CALLBACK_DEAD,
        format!("Partner callbacks in the dead letters; {AGGREGATE_WITH_MAX}")
    );
    metrics::describe_counter!(
        LIVE_REQUESTS,
        "Live-transfer requests, by service and answer (reserved, waiting, off_duty, not_offered)"
    );
    metrics::describe_histogram!(
        LIVE_DECISION,
        "Seconds from a live-transfer request to its answer (reservation or estimate)"
    );
    metrics::describe_counter!(
        LIVE_RESERVATIONS,
        "Live reservations by what became of them (reserved after a wait, accepted, cancelled)"
    );
    metrics::describe_histogram!(
        LIVE_ESTIMATE_ERROR,
        "Absolute error of the wait estimate told to a live caller, seconds"
    );
    metrics::describe_histogram!(
        LIVE_WAIT,
        "Real wait of live callers from request to an agent's accept, seconds"
    );
    metrics::describe_counter!(TICKETS_RECEIVED, "Tickets received, by source and outcome");
    metrics::describe_counter!(TICKETS_REJECTED, "Tickets refused at validation, by reason");
    metrics::describe_counter!(
        SIGNED_RETRIES,
        "Signed intake retries let through with an already used signature (idempotent)"
    );
    metrics::describe_counter!(
        EVENT_STREAMS_REFUSED,
        "Event streams refused: the caller holds auth.rate_limit.max_event_streams"
    );
    metrics::describe_counter!(
        CONNECTIONS_CLOSED_IDLE,
        "Connections closed for lack of a request (idle, no_request)"
    );
    metrics::describe_counter!(
        CLASSIFICATIONS,
        "Classifier decisions by service, category and warning level"
    );
    metrics::describe_histogram!(
        CLASSIFICATION_CONFIDENCE,
        "Confidence of classifier decisions"
    );
    metrics::describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "HTTP request latency by route, method and status"
    );
    metrics::describe_gauge!(
        QUEUE_DEPTH,
        format!(
            "Tickets waiting, by queue and the tickets' own warning level (not the priority band); {AGGREGATE_WITH_MAX}"
        )
    );
    metrics::describe_gauge!(
        QUEUE_OLDEST_AGE,
        metrics::Unit::Seconds,
        format!("Age of the oldest waiting ticket, by queue; {AGGREGATE_WITH_MAX}")
    );
    metrics::describe_gauge!(
        REDIS_UP,
        "1 when the last read of Redis for the deployment-wide gauges succeeded, else 0"
    );
    metrics::describe_gauge!(
        REDIS_SNAPSHOT_AGE,
        metrics::Unit::Seconds,
        "Seconds since the deployment-wide gauges were last read from Redis (they show what was read then)"
    );
    metrics::describe_gauge!(
        QUEUE_LEASED,
        format!("Tickets of the queue under a lease; {AGGREGATE_WITH_MAX}")
    );
    metrics::describe_counter!(RATE_LIMITED, "Requests refused with 429, by caller name");
    metrics::describe_counter!(
        RATE_LIMIT_ERRORS,
        "Requests let through unmetered because Redis could not be asked (the limiter fails open)"
    );
    metrics::describe_counter!(
        AUTH_REJECTED,
        "Requests refused with 401, by reason (a closed set: missing, unknown token, bad or replayed signature, ...)"
    );
    metrics::describe_counter!(
        REDIS_WRITE_REFUSALS,
        "Writes Redis refused, by cause (oom: maxmemory reached under noeviction; readonly; misconf: cannot persist)"
    );
    metrics::describe_counter!(SLA_FIRED, "SLA timers fired, by clock and kind");
    metrics::describe_histogram!(
        SLA_LATENESS,
        metrics::Unit::Seconds,
        "How late SLA timers fired after their due time"
    );
    metrics::describe_gauge!(
        QUEUE_SLA_COMPLIANCE,
        format!(
            "Share of SLA clocks that met their target, of those stopped in the rolling window and those breached and still running, by queue and window; {AGGREGATE_WITH_MAX}"
        )
    );
    metrics::describe_counter!(
        SLA_CALENDAR_ERRORS,
        "SLA deadlines that could not be computed (calendar removed by a reload), by clock"
    );
    metrics::describe_counter!(
        SLA_PROVISIONAL_DEADLINES,
        "Provisional SLA deadlines planned: counted through a year without holiday data on the ordinary week, by clock"
    );
    metrics::describe_gauge!(
        CALENDAR_MISSING_YEAR,
        format!(
            "1 for each calendar and year (this and next) without holiday data: deadlines through it are provisional; {AGGREGATE_WITH_MAX}"
        )
    );
    metrics::describe_counter!(TICKET_ACTIONS, "Agent actions applied, by action");
    metrics::describe_counter!(
        QUEUE_EVENTS,
        "Arrivals, claims, resolutions, transfers and escalations, by queue"
    );
    metrics::describe_counter!(
        QUEUE_SLA_EVENTS,
        "SLA warnings and breaches, by queue, clock and kind"
    );
    metrics::describe_histogram!(
        QUEUE_WAIT,
        metrics::Unit::Seconds,
        "Time from entering a queue to being taken, by queue"
    );
    metrics::describe_histogram!(
        QUEUE_HANDLE,
        metrics::Unit::Seconds,
        "Time from acceptance to resolution, by queue"
    );
    metrics::describe_histogram!(
        REDIS_LATENCY,
        metrics::Unit::Seconds,
        "Latency of Redis scripts, by operation"
    );
}

/// Counts a received ticket; `source` and `channel` are their wire names.
pub fn ticket_received(source: &'static str, channel: &'static str, outcome: &'static str) {
    metrics::counter!(
        TICKETS_RECEIVED,
        "source" => source,
        "channel" => channel,
        "outcome" => outcome
    )
    .increment(1);
}

/// Counts a ticket refused before it reached the store.
pub fn ticket_rejected(reason: &'static str) {
    metrics::counter!(TICKETS_REJECTED, "reason" => reason).increment(1);
}

/// Counts a decision of a newly registered ticket: its service, category, warning level and
/// confidence.
pub fn classified(service: &'static str, category: &str, warning_level: &str, confidence: f64) {
    metrics::counter!(
        CLASSIFICATIONS,
        "service" => service,
        "category" => category.to_string(),
        "warning_level" => warning_level.to_string()
    )
    .increment(1);
    metrics::histogram!(CLASSIFICATION_CONFIDENCE, "service" => service).record(confidence);
}

/// Counts a request refused by the rate limiter; `principal` is a configured name.
pub fn rate_limited(principal: &str) {
    metrics::counter!(RATE_LIMITED, "principal" => principal.to_string()).increment(1);
}

/// Counts a request let through because the limiter could not reach Redis.
pub fn rate_limit_error() {
    metrics::counter!(RATE_LIMIT_ERRORS).increment(1);
}

/// Counts a signed intake retry let through (its signature had been used: idempotent).
pub fn signed_retry_allowed() {
    metrics::counter!(SIGNED_RETRIES).increment(1);
}

/// Counts an event stream refused because the caller holds its most.
pub fn event_stream_refused(principal: &str) {
    metrics::counter!(EVENT_STREAMS_REFUSED, "principal" => principal.to_string()).increment(1);
}

/// Counts a connection closed for lack of a request; `reason` is `idle` or `no_request`.
pub fn idle_connection_closed(reason: &'static str) {
    metrics::counter!(CONNECTIONS_CLOSED_IDLE, "reason" => reason).increment(1);
}

/// Counts a 401, by a closed-set reason.
pub fn auth_rejected(reason: &'static str) {
    metrics::counter!(AUTH_REJECTED, "reason" => reason).increment(1);
}

/// Records one HTTP request; `route` is the matched route template, never the raw path.
pub fn http_request(route: String, method: String, status: u16, elapsed: Duration) {
    metrics::histogram!(
        HTTP_DURATION,
        "route" => route,
        "method" => method,
        "status" => status.to_string()
    )
    .record(elapsed.as_secs_f64());
}

/// One queue's figures, as read from Redis at a scrape (all of them read before any is
/// published, so a read cut short publishes nothing half-way).
#[derive(Debug, Clone, Default)]
pub struct QueueFigures<'a> {
    /// The queue's name.
    pub queue: &'a str,
    /// Tickets waiting, per warning level of the tickets themselves: `(level, depth)`.
    pub depth_by_level: Vec<(&'a str, u64)>,
    /// Age of the oldest waiting ticket, seconds.
    pub oldest_age_seconds: f64,
    /// Tickets under a lease.
    pub leased: u64,
    /// SLA compliance per rolling window with any clock stopped or breached: `(window, share
    /// met)`.
    pub sla_compliance: Vec<(&'a str, f64)>,
}

/// Publishes queue gauges read from Redis.
pub fn queues(stats: &[QueueFigures<'_>]) {
    for q in stats {
        for &(level, depth) in &q.depth_by_level {
            metrics::gauge!(QUEUE_DEPTH, "queue" => q.queue.to_string(), "level" => level.to_string())
                .set(depth as f64);
        }
        metrics::gauge!(QUEUE_OLDEST_AGE, "queue" => q.queue.to_string()).set(q.oldest_age_seconds);
        metrics::gauge!(QUEUE_LEASED, "queue" => q.queue.to_string()).set(q.leased as f64);
        for &(window, compliance) in &q.sla_compliance {
            metrics::gauge!(QUEUE_SLA_COMPLIANCE, "queue" => q.queue.to_string(), "window" => window.to_string())
                .set(compliance);
        }
    }
}

/// Counts a callback attempt's outcome.
pub fn callback(partner: &str, outcome: &'static str) {
    metrics::counter!(CALLBACKS, "partner" => partner.to_string(), "outcome" => outcome)
        .increment(1);
}

/// Records a delivered callback: its latency from the event and the attempts it took.
pub fn callback_delivered(partner: &str, seconds: f64, attempts: u32) {
    callback(partner, "delivered");
    metrics::histogram!(CALLBACK_LATENCY, "partner" => partner.to_string())
        .record(seconds.max(0.0));
    metrics::histogram!(CALLBACK_ATTEMPTS, "partner" => partner.to_string())
        .record(f64::from(attempts));
}

/// Sets the undelivered and dead-letter gauges of a partner.
pub fn callback_backlog(partner: &str, pending: u64, dead: u64) {
    metrics::gauge!(CALLBACK_PENDING, "partner" => partner.to_string()).set(pending as f64);
    metrics::gauge!(CALLBACK_DEAD, "partner" => partner.to_string()).set(dead as f64);
}

/// Counts a live-transfer request by its answer.
pub fn live_request(service: &str, answer: &'static str, seconds: f64) {
    metrics::counter!(LIVE_REQUESTS, "service" => service.to_string(), "answer" => answer)
        .increment(1);
    metrics::histogram!(LIVE_DECISION).record(seconds.max(0.0));
}

/// Counts what became of a live reservation.
pub fn live_reservation(outcome: &'static str) {
    metrics::counter!(LIVE_RESERVATIONS, "outcome" => outcome).increment(1);
}

/// Records a live caller's real wait and, when they were given one, the estimate's error.
pub fn live_waited(wait_seconds: f64, estimate_seconds: Option<f64>) {
    metrics::histogram!(LIVE_WAIT).record(wait_seconds.max(0.0));
    if let Some(e) = estimate_seconds {
        metrics::histogram!(LIVE_ESTIMATE_ERROR).record((e - wait_seconds).abs());
    }
}

/// Counts something that happened to a ticket of a queue.
pub fn queue_event(queue: &str, event: &'static str) {
    if !queue.is_empty() {
        metrics::counter!(QUEUE_EVENTS, "queue" => queue.to_string(), "event" => event)
            .increment(1);
    }
}

/// Records how long a ticket waited in its queue before it was taken.
pub fn queue_wait(queue: &str, seconds: f64) {
    metrics::histogram!(QUEUE_WAIT, "queue" => queue.to_string()).record(seconds.max(0.0));
}

/// Records how long a ticket took from acceptance to resolution.
pub fn queue_handle(queue: &str, seconds: f64) {
    metrics::histogram!(QUEUE_HANDLE, "queue" => queue.to_string()).record(seconds.max(0.0));
}

/// Records the latency of one Redis script call.
pub fn redis_latency(op: &'static str, elapsed: Duration) {
    metrics::histogram!(REDIS_LATENCY, "op" => op).record(elapsed.as_secs_f64());
}

/// Records one fired SLA timer.
pub fn sla_fired(clock: &str, kind: &str, lateness_ms: i64, queue: &str) {
    let kind = if kind == "b" { "breach" } else { "warning" };
    let clock = match clock {
        "accept" => "accept",
        "first_contact" => "first_contact",
        "resolve" => "resolve",
        "follow_up" => "follow_up",
        _ => "other",
    };
    metrics::counter!(SLA_FIRED, "clock" => clock, "kind" => kind).increment(1);
    if !queue.is_empty() {
        metrics::counter!(QUEUE_SLA_EVENTS, "queue" => queue.to_string(), "clock" => clock, "kind" => kind)
            .increment(1);
    }
    metrics::histogram!(SLA_LATENESS).record(lateness_ms.max(0) as f64 / 1000.0);
}

/// Counts a deadline that could not be computed.
pub fn calendar_error(clock: &'static str) {
    metrics::counter!(SLA_CALENDAR_ERRORS, "clock" => clock).increment(1);
}

/// Counts a provisional deadline planned for a running clock (`accept`, `first_contact`,
/// `resolve`, `follow_up`).
pub fn provisional_deadline(clock: &'static str) {
    metrics::counter!(SLA_PROVISIONAL_DEADLINES, "clock" => clock).increment(1);
}

/// Publishes which calendar years lack holiday data (and clears those that no longer do).
pub fn calendar_years(known: &[String], missing: &[(String, i32)], years: &[i32]) {
    for calendar in known {
        for year in years {
            let is_missing = missing.iter().any(|(c, y)| c == calendar && y == year);
            metrics::gauge!(CALENDAR_MISSING_YEAR, "calendar" => calendar.clone(), "year" => year.to_string())
                .set(if is_missing { 1.0 } else { 0.0 });
        }
    }
}

/// Counts an applied agent action.
pub fn ticket_action(action: &'static str) {
    metrics::counter!(TICKET_ACTIONS, "action" => action).increment(1);
}

/// Counts a write Redis refused; `cause` is `oom`, `readonly` or `misconf` (a closed set).
pub fn redis_write_refused(cause: &'static str) {
    metrics::counter!(REDIS_WRITE_REFUSALS, "cause" => cause).increment(1);
}

/// When the deployment-wide gauges were last read from Redis, and whether the last attempt
/// succeeded: one per gateway (in `AppState`), published with every `/metrics` answer so that a
/// scrape during a Redis stall says how old the figures it shows are.
#[derive(Debug)]
pub struct RedisSnapshot {
    /// (last successful read, or start-up when none yet; whether the last attempt succeeded).
    state: Mutex<(Instant, bool)>,
}

impl Default for RedisSnapshot {
    fn default() -> Self {
        RedisSnapshot {
            state: Mutex::new((Instant::now(), false)),
        }
    }
}

impl RedisSnapshot {
    /// The figures were just read from Redis and published.
    pub fn read(&self) {
        if let Ok(mut s) = self.state.lock() {
            *s = (Instant::now(), true);
        }
    }

    /// Redis did not answer (in time): the gauges keep what was read last.
    pub fn missed(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.1 = false;
        }
    }

    /// Sets `hotline_redis_up` and `hotline_redis_snapshot_age_seconds` for this answer.
    pub fn publish(&self) {
        let (at, up) = self
            .state
            .lock()
            .map(|s| *s)
            .unwrap_or((Instant::now(), false));
        metrics::gauge!(REDIS_UP).set(if up { 1.0 } else { 0.0 });
        metrics::gauge!(REDIS_SNAPSHOT_AGE).set(at.elapsed().as_secs_f64());
    }
}

// --- Classifier corrections (issue 17; one block, kept at the end for an easy merge) ---------

/// Agents' corrections of the classifier, by the `category` the ticket had and the `kind` of
/// change: `recategorised`, `lawyer_to_mediator`, `mediator_to_lawyer`, `other_service` (a
/// transfer that changes both counts once for each). Divided by [`CLASSIFICATIONS`] of the same
/// category it is the share of tickets corrected, which a retrained model should lower.
pub const CLASSIFIER_CORRECTIONS: &str = "hotline_classifier_corrections_total";

/// Counts a correction: the labels a ticket had and those an agent gave it. Labels are closed
/// sets (configured categories, the four kinds).
pub fn classifier_correction(
    from_service: &str,
    from_category: &str,
    to_service: &str,
    to_category: &str,
) {
    static DESCRIBED: std::sync::Once = std::sync::Once::new();
    DESCRIBED.call_once(|| {
        metrics::describe_counter!(
            CLASSIFIER_CORRECTIONS,
            "Agents' corrections of the classifier, by the ticket's category and kind of change"
        );
    });
    let count = |kind: &'static str| {
        metrics::counter!(
            CLASSIFIER_CORRECTIONS,
            "category" => from_category.to_string(),
            "kind" => kind
        )
        .increment(1);
    };
    if from_category != to_category {
        count("recategorised");
    }
    match (from_service, to_service) {
        (a, b) if a == b => {}
        ("legal_consultation", "mediation") => count("lawyer_to_mediator"),
        ("mediation", "legal_consultation") => count("mediator_to_lawyer"),
        _ => count("other_service"),
    }
}

// --- Case archive (issue 18) ------------------------------------------------------------------

/// Case files committed to the archive (a repeated pass after a crash counts again).
pub const ARCHIVE_CASES: &str = "hotline_archive_cases_total";
/// Tickets removed from Redis once archived.
pub const ARCHIVE_REMOVED: &str = "hotline_archive_removed_total";
/// Archiving passes that stopped early, by `cause` (`archive`: PostgreSQL, `store`: Redis).
pub const ARCHIVE_FAILURES: &str = "hotline_archive_failures_total";
/// 1 when this gateway's last use of the archive succeeded, else 0: alert on 0 for minutes
/// (tickets wait in Redis meanwhile, and Redis memory grows).
pub const ARCHIVE_UP: &str = "hotline_archive_up";
/// Ended tickets due for the archive and still in Redis (deployment-wide, read at scrape).
pub const ARCHIVE_BACKLOG: &str = "hotline_archive_backlog";
/// How long the oldest ticket due for the archive has been due, seconds (deployment-wide).
pub const ARCHIVE_LAG: &str = "hotline_archive_lag_seconds";
/// Archived cases whose personal data the retention job erased.
pub const ARCHIVE_ERASED: &str = "hotline_archive_personal_erased_total";

fn describe_archive() {
    metrics::describe_counter!(
        ARCHIVE_CASES,
        "Case files committed to the PostgreSQL archive"
    );
    metrics::describe_counter!(ARCHIVE_REMOVED, "Tickets removed from Redis once archived");
    metrics::describe_counter!(
        ARCHIVE_ERASED,
        "Archived cases whose personal data the retention job erased"
    );
    metrics::describe_counter!(
        ARCHIVE_FAILURES,
        "Archiving passes that stopped early, by cause (archive, store)"
    );
    metrics::describe_gauge!(
        ARCHIVE_UP,
        "1 when this gateway's last use of the case archive succeeded, else 0"
    );
    metrics::describe_gauge!(
        ARCHIVE_BACKLOG,
        format!("Ended tickets due for the archive, still in Redis; {AGGREGATE_WITH_MAX}")
    );
    metrics::describe_gauge!(
        ARCHIVE_LAG,
        format!("Seconds the oldest ticket due for the archive has waited; {AGGREGATE_WITH_MAX}")
    );
}

/// Counts one archiving batch: case files committed, tickets removed from Redis.
pub fn archived(cases: u64, removed: u64) {
    metrics::counter!(ARCHIVE_CASES).increment(cases);
    metrics::counter!(ARCHIVE_REMOVED).increment(removed);
}

/// Counts a pass that stopped early; `cause` is `archive` or `store`.
pub fn archive_failed(cause: &'static str) {
    metrics::counter!(ARCHIVE_FAILURES, "cause" => cause).increment(1);
}

/// Whether this gateway's last use of the archive succeeded.
pub fn archive_up(up: bool) {
    metrics::gauge!(ARCHIVE_UP).set(if up { 1.0 } else { 0.0 });
}

/// The archive's backlog as read at a scrape: tickets due, and how long the oldest has waited.
pub fn archive_backlog(due: u64, lag_seconds: f64) {
    metrics::gauge!(ARCHIVE_BACKLOG).set(due as f64);
    metrics::gauge!(ARCHIVE_LAG).set(lag_seconds.max(0.0));
}

/// Counts cases whose personal data the retention job erased.
pub fn personal_data_erased(cases: u64) {
    metrics::counter!(ARCHIVE_ERASED).increment(cases);
}
