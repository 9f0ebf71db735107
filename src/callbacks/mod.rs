//! Callbacks to partner hotlines (事件反馈): the 12345 platform, the 110 desk or the provincial
//! 12348 centre hear what became of the tickets they handed over — accepted, assigned, status
//! changed, resolved, returned, SLA breached.
//!
//! Nothing here decides *what* happened: the scripts that change a ticket append the event to the
//! partner's outbox in the same atomic step (`hl:{c}:outbox:<partner>`), so an event that happened
//! is never lost, whatever crashes afterwards. This module delivers: one replica at a time per
//! (county, partner), strictly in outbox order (so in order per ticket), at least once, signed
//! like inbound requests, with an idempotency key the partner dedupes on, retried with
//! exponential backoff and full jitter, and dead-lettered after `callbacks.max_attempts`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::sync::watch;

use crate::queues::{OutboxEntry, Store, StoreError};
use crate::setting::{ConfigError, invalid};
use crate::sla::mover::MoverHandle;

/// The events a partner may subscribe to, as they appear in callback bodies.
pub use crate::auth::CALLBACK_EVENTS as EVENTS;

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
    /// How often outboxes holding entries (in backoff, or not delivered yet) are looked at;
    /// empty ones only when this gateway writes to their county and at the re-check.
    pub poll_ms: u64,
}

impl CallbackSettings {
    /// Checks that timeouts, attempts and delays are above 0 and the longest delay is not
    /// shorter than the first.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, v) in [
            ("callbacks.timeout_ms", self.timeout_ms),
            ("callbacks.max_attempts", u64::from(self.max_attempts)),
            ("callbacks.backoff_base_ms", self.backoff_base_ms),
            ("callbacks.poll_ms", self.poll_ms),
        ] {
            if v == 0 {
                return Err(invalid(key, "must be greater than 0"));
            }
        }
        if self.backoff_max_ms < self.backoff_base_ms {
            return Err(invalid(
                "callbacks.backoff_max_ms",
                "must be at least callbacks.backoff_base_ms",
            ));
        }
        Ok(())
    }
}

/// Where and how one partner is called back.
#[derive(Debug, Clone)]
pub struct CallbackTarget {
    /// The partner's name (its outbox key and metric label).
    pub partner: String,
    /// Sent as `x-hotline-key`, so the partner knows which secret signed it.
    pub key_id: String,
    /// HMAC key (prints as `[redacted]`).
    pub secret: crate::secret::Secret,
    /// Callback URL.
    pub url: String,
    /// Subscribed events (see [`EVENTS`]).
    pub events: Vec<String>,
}

/// Delivery settings (`[callbacks]`) and the targets.
#[derive(Debug, Clone, Default)]
pub struct Callbacks {
    targets: BTreeMap<String, CallbackTarget>,
    /// One attempt's time limit.
    pub timeout: Duration,
    /// Attempts before an entry is dead-lettered.
    pub max_attempts: u32,
    /// First retry delay, doubled per attempt…
    pub backoff_base_ms: u64,
    /// …up to this.
    pub backoff_max_ms: u64,
    /// How often outboxes holding entries are looked at.
    pub poll: Duration,
    /// Where a ticket archived before its callbacks were delivered is read from (its sender's
    /// reference goes into every callback body).
    archive: Option<std::sync::Arc<crate::archive::Archive>>,
}

impl Callbacks {
    /// The partners of `[[auth.partners]]` that have a callback URL; reads their secrets (an
    /// unreadable one is an error naming its key).
    pub fn targets_from(
        auth: &crate::auth::AuthSettings,
    ) -> Result<Vec<CallbackTarget>, ConfigError> {
        auth.partners
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.callback_url.as_ref().map(|url| (i, p, url)))
            .map(|(i, p, url)| {
                Ok(CallbackTarget {
                    partner: p.name.clone(),
                    key_id: p.key_id.clone(),
                    secret: p.load_secret(i)?,
                    url: url.clone(),
                    events: p.callback_events.clone(),
                })
            })
            .collect()
    }

    /// From settings and the partners that have a callback URL.
    pub fn new(settings: &CallbackSettings, targets: Vec<CallbackTarget>) -> Self {
        Callbacks {
            targets: targets
                .into_iter()
                .map(|t| (t.partner.clone(), t))
                .collect(),
            timeout: Duration::from_millis(settings.timeout_ms),
            max_attempts: settings.max_attempts,
            backoff_base_ms: settings.backoff_base_ms,
            backoff_max_ms: settings.backoff_max_ms,
            poll: Duration::from_millis(settings.poll_ms),
            archive: None,
        }
    }

    /// Reads tickets no longer in Redis from `archive`.
    pub fn with_archive(mut self, archive: std::sync::Arc<crate::archive::Archive>) -> Self {
        self.archive = Some(archive);
        self
    }

    /// The callback target of a principal, if it is a partner with a callback URL.
    pub fn target(&self, partner: &str) -> Option<&CallbackTarget> {
        self.targets.get(partner)
    }

    /// Every target.
    pub fn targets(&self) -> impl Iterator<Item = &CallbackTarget> {
        self.targets.values()
    }
}

/// The callback name of an outbox entry: `ticket.created` is 受理 (`ticket.accepted`), or
/// `ticket.returned` when it went straight back; an agent's accept is `ticket.assigned`.
pub fn event_name(entry_type: &str, status: &str) -> &'static str {
    match (entry_type, status) {
        ("ticket.created", "returned") => "ticket.returned",
        ("ticket.created", _) => "ticket.accepted",
        ("ticket.accept", _) => "ticket.assigned",
        ("ticket.resolve", _) => "ticket.resolved",
        ("ticket.return", _) => "ticket.returned",
        ("sla.breached", _) => "sla.breached",
        _ => "ticket.status_changed",
    }
}

/// Does the partner want this entry? Its own name, or any status change under
/// `ticket.status_changed`.
pub fn wanted(target: &CallbackTarget, name: &str, status: &str) -> bool {
    target.events.iter().any(|e| e == name)
        || (!status.is_empty() && target.events.iter().any(|e| e == "ticket.status_changed"))
}

/// Hex HMAC-SHA256 over `timestamp + "\n" + body`, as inbound partner requests are signed.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b"\n");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Delay before retry number `attempt` (1-based): full jitter over an exponentially growing
/// window, `uniform(0, min(max, base × 2^(attempt−1)))`, so partners coming back are not hit by
/// every replica's retries at once. `unit` is a uniform number in [0, 1).
pub fn backoff_ms(attempt: u32, base_ms: u64, max_ms: u64, unit: f64) -> u64 {
    let window = base_ms
        .saturating_mul(1u64 << attempt.saturating_sub(1).min(30))
        .min(max_ms);
    // At least a tenth of the window, so a retry never spins.
    let floor = window / 10;
    floor + ((window - floor) as f64 * unit.clamp(0.0, 1.0)) as u64
}

/// The body of one callback.
#[derive(Debug, Serialize)]
pub struct CallbackBody<'a> {
    /// Stable across retries (`<county>:<outbox entry>`): dedupe on it.
    pub delivery_id: String,
    /// See [`EVENTS`].
    pub event: &'a str,
    /// The gateway's ticket id.
    pub ticket_id: &'a str,
    /// The partner's own ticket id, as it sent it.
    pub external_id: String,
    /// The hotline it came from.
    pub source: String,
    /// The ticket's status after the event, when it changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'a str>,
    /// When it happened (RFC 3339).
    pub occurred_at: String,
    /// Details: outcome, reason, summary, agent, clock, queue.
    pub details: BTreeMap<&'a str, &'a str>,
}

/// Delivers partner callbacks until stopped; every replica runs one, and locks decide who
/// delivers which outbox. Only outboxes that may hold something are looked
/// at: those of counties this process wrote to (`wake`), those found holding entries (until
/// they are empty), and every `recheck` all of them, for what other replicas wrote (each of
/// them delivers its own writes at once). A quiet county costs nothing between re-checks.
pub async fn run(
    store: Store,
    callbacks: Arc<Callbacks>,
    wake: MoverHandle,
    recheck: Duration,
    mut stop: watch::Receiver<bool>,
) {
    if callbacks.targets.is_empty() {
        return;
    }
    let client = match reqwest::Client::builder()
        .timeout(callbacks.timeout)
        .connect_timeout(callbacks.timeout)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "callback client cannot be built; no callbacks delivered");
            return;
        }
    };
    let holder = format!("{}-{:016x}", std::process::id(), fastrand::u64(..));
    tracing::info!(
        partners = callbacks.targets.len(),
        "callback delivery started"
    );
    let mut pending: BTreeSet<String> = BTreeSet::new();
    let mut checked: Option<Instant> = None;
    loop {
        let all = checked.is_none_or(|at| at.elapsed() >= recheck);
        let mut counties = pending.clone();
        counties.extend(wake.take_outboxes());
        let round = if all {
            match store.counties().await {
                Ok(every) => {
                    checked = Some(Instant::now());
                    counties.extend(every);
                    deliver_round(&store, &client, &callbacks, &holder, &counties).await
                }
                Err(e) => Err(e),
            }
        } else {
            deliver_round(&store, &client, &callbacks, &holder, &counties).await
        };
        let busy = match round {
            Ok(round) => {
                pending = round.pending;
                round.delivered > 0
            }
            Err(e) => {
                tracing::warn!(error = %e, "callback round failed");
                // Nothing is known to be empty: look at them all again.
                pending.extend(counties);
                false
            }
        };
        // Outboxes holding entries (in backoff, or with a partner down) are polled; with none,
        // only a wake-up or the re-check brings the next round.
        let pause = if busy {
            Duration::ZERO
        } else if !pending.is_empty() {
            callbacks.poll
        } else {
            recheck.saturating_sub(checked.map_or(Duration::ZERO, |at| at.elapsed()))
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = wake.outboxes_woken() => {}
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
    }
    tracing::info!("callback delivery stopped");
}

/// What one delivery round did.
struct Round {
    /// Callbacks delivered.
    delivered: usize,
    /// Counties whose outboxes held entries at the start of the round.
    pending: BTreeSet<String>,
}

/// One pass over the (county, partner) outboxes of `counties` that hold entries.
async fn deliver_round(
    store: &Store,
    client: &reqwest::Client,
    callbacks: &Callbacks,
    holder: &str,
    counties: &BTreeSet<String>,
) -> Result<Round, StoreError> {
    let mut delivered = 0;
    let lock_ms = (callbacks.timeout.as_millis() as u64)
        .saturating_mul(3)
        .max(5_000);
    let outboxes: Vec<(&str, &CallbackTarget)> = counties
        .iter()
        .flat_map(|c| callbacks.targets().map(move |t| (c.as_str(), t)))
        .collect();
    let keys: Vec<(&str, &str)> = outboxes
        .iter()
        .map(|(c, t)| (*c, t.partner.as_str()))
        .collect();
    // One round trip tells which outboxes hold anything; only those are locked and read.
    let lengths = store.outboxes_pending(&keys).await?;
    let mut pending = BTreeSet::new();
    for ((county, target), n) in outboxes.into_iter().zip(lengths) {
        if n == 0 {
            continue;
        }
        pending.insert(county.to_string());
        if !store
            .outbox_lock(county, &target.partner, holder, lock_ms)
            .await?
        {
            continue;
        }
        delivered += deliver_outbox(store, client, callbacks, target, county, holder).await?;
    }
    Ok(Round { delivered, pending })
}

/// Delivers the head of one outbox in order until it is empty, an attempt fails, or a batch is
/// done (so other outboxes get their turn).
async fn deliver_outbox(
    store: &Store,
    client: &reqwest::Client,
    callbacks: &Callbacks,
    target: &CallbackTarget,
    county: &str,
    holder: &str,
) -> Result<usize, StoreError> {
    let state = store.outbox_state(county, &target.partner).await?;
    if state.pending == 0 || state.next_at_ms > store.now_ms() {
        return Ok(0);
    }
    let mut attempts = state.attempts;
    let mut delivered = 0;
    for entry in store.outbox_head(county, &target.partner, 50).await? {
        let kind = entry.fields.get("type").map(String::as_str).unwrap_or("");
        let status = entry.fields.get("status").map(String::as_str).unwrap_or("");
        let name = event_name(kind, status);
        if !wanted(target, name, status) {
            crate::metrics::callback(&target.partner, "skipped");
            if !store
                .outbox_done(county, &target.partner, holder, &entry.entry_id)
                .await?
            {
                return Ok(delivered);
            }
            continue;
        }
        let started = Instant::now();
        match attempt(
            store,
            callbacks.archive.as_deref(),
            client,
            target,
            county,
            &entry,
            name,
        )
        .await
        {
            Ok(()) => {
                if !store
                    .outbox_done(county, &target.partner, holder, &entry.entry_id)
                    .await?
                {
                    return Ok(delivered);
                }
                let at_ms: i64 = entry
                    .fields
                    .get("at_ms")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                crate::metrics::callback_delivered(
                    &target.partner,
                    (store.now_ms() - at_ms).max(0) as f64 / 1000.0,
                    attempts + 1,
                );
                attempts = 0;
                delivered += 1;
            }
            Err(error) => {
                tracing::warn!(
                    partner = %target.partner,
                    ticket_id = entry.fields.get("id").map(String::as_str).unwrap_or(""),
                    attempt = attempts + 1,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    error = %error,
                    "callback attempt failed"
                );
                if attempts + 1 >= callbacks.max_attempts {
                    let record = serde_json::json!({
                        "entry": entry.entry_id,
                        "county": county,
                        "event": name,
                        "fields": entry.fields,
                        "attempts": attempts + 1,
                        "last_error": error,
                        "dead_at_ms": store.now_ms(),
                    });
                    if store
                        .outbox_dead(
                            county,
                            &target.partner,
                            holder,
                            &entry.entry_id,
                            &record.to_string(),
                        )
                        .await?
                    {
                        crate::metrics::callback(&target.partner, "dead");
                        tracing::error!(partner = %target.partner, "callback dead-lettered after {} attempts", attempts + 1);
                    }
                    attempts = 0;
                    continue;
                }
                crate::metrics::callback(&target.partner, "failed");
                let wait = backoff_ms(
                    attempts + 1,
                    callbacks.backoff_base_ms,
                    callbacks.backoff_max_ms,
                    fastrand::f64(),
                );
                let next = store.now_ms() + i64::try_from(wait).unwrap_or(i64::MAX / 2);
                store
                    .outbox_retry(
                        county,
                        &target.partner,
                        holder,
                        &entry.entry_id,
                        next,
                        &error,
                    )
                    .await?;
                return Ok(delivered);
            }
        }
    }
    Ok(delivered)
}

/// One signed POST; `Err` carries a short reason (status or transport error), never the body.
async fn attempt(
    store: &Store,
    archive: Option<&crate::archive::Archive>,
    client: &reqwest::Client,
    target: &CallbackTarget,
    county: &str,
    entry: &OutboxEntry,
    name: &str,
) -> Result<(), String> {
    let ticket_id = entry.fields.get("id").map(String::as_str).unwrap_or("");
    let reference = store
        .ticket_reference(ticket_id)
        .await
        .map_err(|e| format!("reading the ticket: {e}"))?;
    // Archived before this callback went out (the partner was down for long): the sender's
    // reference is in the case file. An unreachable archive is a failed attempt, retried.
    let reference = match (reference, archive) {
        (Some(r), _) => Some(r),
        (None, Some(archive)) => archive
            .get(ticket_id)
            .await
            .map_err(|e| format!("reading the archived ticket: {e}"))?
            .map(|c| (c.index.source, c.index.external_id)),
        (None, None) => None,
    };
    let (source, external_id) = reference.unwrap_or_default();
    let at_ms: i64 = entry
        .fields
        .get("at_ms")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let details = entry
        .fields
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "type" | "id" | "status" | "at_ms" | "replay_of"))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    // A replayed dead letter keeps the delivery id it had the first time.
    let original = entry
        .fields
        .get("replay_of")
        .filter(|v| !v.is_empty())
        .unwrap_or(&entry.entry_id);
    let body = CallbackBody {
        delivery_id: format!("{county}:{original}"),
        event: name,
        ticket_id,
        external_id,
        source,
        status: entry.fields.get("status").map(String::as_str),
        occurred_at: chrono::DateTime::from_timestamp_millis(at_ms)
            .unwrap_or_default()
            .to_rfc3339(),
        details,
    };
    let bytes = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
    let timestamp = chrono::Utc::now().timestamp();
    let response = client
        .post(&target.url)
        .header("content-type", "application/json")
        .header("x-hotline-key", &target.key_id)
        .header("x-hotline-timestamp", timestamp.to_string())
        .header(
            "x-hotline-signature",
            sign(target.secret.expose(), timestamp, &bytes),
        )
        .header("idempotency-key", &body.delivery_id)
        .body(bytes)
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                "timed out".to_string()
            } else if e.is_connect() {
                "cannot connect".to_string()
            } else {
                "transport error".to_string()
            }
        })?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {}", response.status().as_u16()))
    }
}

/// Refreshes the pending and dead-letter gauges (at each scrape).
pub async fn refresh_gauges(store: &Store, callbacks: &Callbacks) {
    let Ok(counties) = store.counties().await else {
        return;
    };
    for target in callbacks.targets() {
        let (mut pending, mut dead) = (0u64, 0u64);
        for county in &counties {
            if let Ok(s) = store.outbox_state(county, &target.partner).await {
                pending += s.pending;
                dead += s.dead;
            }
        }
        crate::metrics::callback_backlog(&target.partner, pending, dead);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_inbound_scheme() {
        // openssl: printf '1700000000\n{"a":1}' | openssl dgst -sha256 -hmac secret
        assert_eq!(
            sign(b"secret", 1_700_000_000, br#"{"a":1}"#),
            sign(b"secret", 1_700_000_000, br#"{"a":1}"#)
        );
        assert_ne!(
            sign(b"secret", 1_700_000_000, br#"{"a":1}"#),
            sign(b"secret", 1_700_000_001, br#"{"a":1}"#)
        );
        assert_eq!(sign(b"k", 1, b"").len(), 64);
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        assert_eq!(backoff_ms(1, 1000, 60_000, 0.0), 100);
        assert_eq!(backoff_ms(1, 1000, 60_000, 0.999_999), 999);
        assert_eq!(backoff_ms(4, 1000, 60_000, 0.999_999), 7_999);
        assert_eq!(backoff_ms(40, 1000, 60_000, 0.999_999), 59_999);
        assert!(backoff_ms(3, 1000, 60_000, 0.5) >= 400);
    }

    #[test]
    fn events_map_to_the_partner_vocabulary() {
        assert_eq!(event_name("ticket.created", "queued"), "ticket.accepted");
        assert_eq!(event_name("ticket.created", "returned"), "ticket.returned");
        assert_eq!(event_name("ticket.accept", "accepted"), "ticket.assigned");
        assert_eq!(event_name("ticket.resolve", "resolved"), "ticket.resolved");
        assert_eq!(
            event_name("ticket.escalate", "queued"),
            "ticket.status_changed"
        );
        assert_eq!(event_name("sla.breached", ""), "sla.breached");
        let t = CallbackTarget {
            partner: "p".into(),
            key_id: "k".into(),
            secret: crate::secret::Secret::new(b"s".to_vec()),
            url: "http://127.0.0.1:1/".into(),
            events: vec!["ticket.status_changed".into()],
        };
        assert!(wanted(&t, "ticket.assigned", "accepted"));
        assert!(!wanted(&t, "sla.breached", ""));
        assert_eq!(format!("{:?}", t.secret), "[redacted]");
    }
}
