//! Live transfer (人工转接, 一键转接): a caller still on the line is passed to a free lawyer or
//! mediator within seconds, or told honestly how long the wait is.
//!
//! A live ticket is an ordinary ticket (registered, classified, queued, timed) plus a
//! reservation: a lease of `live.accept_timeout_seconds` on one free agent, taken by the same
//! atomic `claim.lua` as any claim, so two consoles racing for the last free lawyer never both
//! get them. A timeout or decline returns the ticket to its place and the mover reserves the next
//! free agent at once; the caller's line (`hl:{c}:live:<pool>`) is served before ordinary offers.
//! Everything that happens is an event on the county stream, so the operator's console follows it
//! on `/v1/events?ticket=<id>`.
//!
//! The wait estimate has a published formula ([`estimate_wait_ms`]), and its error against the
//! real wait is a metric, so the figure can earn the operators' trust.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use crate::agents::{Agent, AgentKind, AgentStatus, Candidate, Tier, can_take_live};
use crate::lifecycle::{LiveState, Status, TicketRecord};
use crate::queues::{ClaimMode, ClaimOutcome, OnlineAgent, Store, StoreError};
use crate::setting::{ConfigError, invalid};

/// The agent pool that answers a service live: lawyers for legal questions, mediators for
/// disputes. Triage and out-of-scope tickets have no live transfer.
pub fn pool_of(service: &str) -> Option<AgentKind> {
    [AgentKind::Lawyer, AgentKind::Mediator]
        .into_iter()
        .find(|k| k.service() == service)
}

/// How a live request for `service` is handled at `now`: `live` (someone is on duty, the
/// caller waits), `callback` (off duty: called back) or `""` (no live transfer for it).
pub fn transfer_mode(config: &LiveConfig, service: &str, now: DateTime<Utc>) -> &'static str {
    match config.duty.duty(service, now) {
        Duty::On => "live",
        Duty::Off { .. } => "callback",
        Duty::NotOffered => "",
    }
}

/// Whether live transfer is possible for a service right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Duty {
    /// The service has no live transfer at all.
    NotOffered,
    /// Someone is on duty.
    On,
    /// Outside duty hours; the next duty period starts then.
    Off {
        /// Start of the next duty period.
        opens_at: DateTime<Utc>,
    },
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

impl LiveSettings {
    /// Checks every value whose type alone does not make it valid, duty hours included.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, v) in [
            ("live.accept_timeout_seconds", self.accept_timeout_seconds),
            (
                "live.heartbeat_timeout_seconds",
                self.heartbeat_timeout_seconds,
            ),
            ("live.max_call_seconds", self.max_call_seconds),
            ("live.default_handle_seconds", self.default_handle_seconds),
        ] {
            if v == 0 {
                return Err(invalid(key, "must be greater than 0"));
            }
        }
        if !["longest_idle", "fewest_active"].contains(&self.selection.as_str()) {
            return Err(invalid(
                "live.selection",
                "must be `longest_idle` or `fewest_active`",
            ));
        }
        if !(self.handle_time_weight > 0.0 && self.handle_time_weight <= 1.0) {
            return Err(invalid(
                "live.handle_time_weight",
                "must be greater than 0 and at most 1",
            ));
        }
        DutyHours::from_settings(self)
            .map(|_| ())
            .map_err(|(key, message)| invalid(key, message))
    }
}

/// Duty hours per service, in one time zone.
#[derive(Debug, Clone)]
pub struct DutyHours {
    tz: Tz,
    spans: BTreeMap<String, Vec<(u32, u32)>>,
}

impl DutyHours {
    /// Parses `[live]`; an error is `(key, message)`.
    pub fn from_settings(s: &LiveSettings) -> Result<DutyHours, (String, String)> {
        let tz: Tz = s.time_zone.parse().map_err(|_| {
            (
                "live.time_zone".to_string(),
                format!("`{}` is not an IANA time zone", s.time_zone),
            )
        })?;
        let mut spans = BTreeMap::new();
        for (service, list) in &s.duty_hours {
            let key = format!("live.duty_hours.{service}");
            if pool_of(service).is_none() {
                return Err((
                    key,
                    "live transfer exists for `legal_consultation` and `mediation` only".into(),
                ));
            }
            if list.is_empty() {
                return Err((
                    key,
                    "list at least one interval (\"00:00-24:00\" is 7×24), or leave the service out"
                        .into(),
                ));
            }
            let mut parsed: Vec<(u32, u32)> = Vec::new();
            for (i, text) in list.iter().enumerate() {
                let span = crate::sla::calendar::parse_interval(text)
                    .filter(|(a, b)| a < b)
                    .ok_or_else(|| {
                        (
                            format!("{key}[{i}]"),
                            format!("{text:?} is not \"HH:MM-HH:MM\" ending after it starts"),
                        )
                    })?;
                if parsed.last().is_some_and(|&(_, end)| span.0 < end) {
                    return Err((
                        format!("{key}[{i}]"),
                        format!("{text:?} overlaps or comes before the previous interval"),
                    ));
                }
                parsed.push(span);
            }
            spans.insert(service.clone(), parsed);
        }
        Ok(DutyHours { tz, spans })
    }

    /// Is someone on duty for `service` at `now`?
    pub fn duty(&self, service: &str, now: DateTime<Utc>) -> Duty {
        let Some(spans) = self.spans.get(service) else {
            return Duty::NotOffered;
        };
        let local = now.with_timezone(&self.tz);
        let minute = local.hour() * 60 + local.minute();
        if spans.iter().any(|&(a, b)| a <= minute && minute < b) {
            return Duty::On;
        }
        let date = local.date_naive();
        let next = spans
            .iter()
            .find(|&&(a, _)| a > minute)
            .map(|&(a, _)| (date, a))
            .or_else(|| {
                let first = spans.first()?.0;
                Some((date.succ_opt()?, first))
            });
        let opens_at = next
            .and_then(|(d, m)| {
                let naive: NaiveDateTime = d.and_hms_opt(m / 60, m % 60, 0)?;
                self.tz.from_local_datetime(&naive).earliest()
            })
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(now);
        Duty::Off { opens_at }
    }
}

/// The published wait estimate: `ceil(position × handle / agents)`.
///
/// `position` is the caller's 1-based place among the callers waiting for the same pool in the
/// county, `handle_ms` the moving average of live handle time (accept to end of call, plus
/// wrap-up), `agents` how many agents of the pool are signed in, available and able to take this
/// caller (including those on a call). With every agent busy, agents free up at a rate of
/// `agents / handle`, and the caller is connected after `position` of them have: the mean of
/// that wait is `position × handle / agents` when handle times are exponential. `None` when no
/// agent is on duty: then there is no honest number.
pub fn estimate_wait_ms(position: u64, handle_ms: i64, agents: usize) -> Option<i64> {
    if agents == 0 {
        return None;
    }
    let total = i128::from(position.max(1)) * i128::from(handle_ms.max(0));
    let n = agents as i128;
    i64::try_from((total + n - 1) / n).ok()
}

/// The next value of an exponentially weighted moving average (what `ticket_action.lua` keeps
/// per pool), here for tests and the simulation.
pub fn ewma(previous: Option<f64>, sample: f64, weight: f64) -> f64 {
    match previous {
        Some(p) => p + weight * (sample - p),
        None => sample,
    }
}

/// Live settings in the form the request path and the mover use.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    /// Reservation length, ms.
    pub accept_timeout_ms: u64,
    /// `longest_idle` or `fewest_active`.
    pub selection: String,
    /// Wrap-up after a call, ms.
    pub wrap_up_ms: u64,
    /// Longest an accepted call keeps its agent busy, ms.
    pub max_call_ms: u64,
    /// Handle time before any call was measured, ms.
    pub default_handle_ms: i64,
    /// Weight of a new handle time in the moving average.
    pub handle_time_weight: f64,
    /// Duty hours.
    pub duty: DutyHours,
    /// Presence lasts this long without a heartbeat, ms.
    pub heartbeat_timeout_ms: i64,
}

impl LiveConfig {
    /// From validated settings (start-up checked them, so this cannot fail then).
    pub fn from_settings(s: &LiveSettings) -> Result<LiveConfig, (String, String)> {
        Ok(LiveConfig {
            accept_timeout_ms: s.accept_timeout_seconds * 1000,
            selection: s.selection.clone(),
            wrap_up_ms: s.wrap_up_seconds * 1000,
            max_call_ms: s.max_call_seconds * 1000,
            default_handle_ms: i64::try_from(s.default_handle_seconds * 1000).unwrap_or(i64::MAX),
            handle_time_weight: s.handle_time_weight,
            duty: DutyHours::from_settings(s)?,
            heartbeat_timeout_ms: i64::try_from(s.heartbeat_timeout_seconds * 1000)
                .unwrap_or(15_000),
        })
    }
}

/// Could this online agent be reserved now? An agent holding a pushed offer of queued work
/// could: a caller on the line outranks it, and `claim.lua` withdraws that offer (but not a
/// live one: that caller was first).
fn free(o: &OnlineAgent, now_ms: i64) -> bool {
    o.agent.spec.status == AgentStatus::Available
        && (o.agent.active < o.agent.spec.capacity || o.offering)
        && o.busy_until_ms <= now_ms
}

/// The order in which free agents are tried for a caller: agents holding no offer first, then
/// the nearest tier (grid, village, town, county centre: the widening order, applied at once
/// because the caller cannot wait), then by `selection` (longest idle, or fewest active), then
/// by id for a stable order.
pub fn rank<'a>(
    agents: &'a [OnlineAgent],
    c: &Candidate,
    selection: &str,
    now_ms: i64,
) -> Vec<&'a OnlineAgent> {
    let mut out: Vec<&OnlineAgent> = agents
        .iter()
        .filter(|o| free(o, now_ms) && can_take_live(&o.agent, c))
        .collect();
    let tier = |a: &Agent| -> Tier { a.spec.tier };
    out.sort_by(|x, y| {
        let by_strategy = if selection == "fewest_active" {
            (x.agent.active, x.idle_since_ms).cmp(&(y.agent.active, y.idle_since_ms))
        } else {
            (x.idle_since_ms, x.agent.active).cmp(&(y.idle_since_ms, y.agent.active))
        };
        x.offering
            .cmp(&y.offering)
            .then(tier(&x.agent).cmp(&tier(&y.agent)))
            .then(by_strategy)
            .then_with(|| x.agent.id.cmp(&y.agent.id))
    });
    out
}

/// How many signed-in, available agents could take this caller (free or on a call): the
/// `agents` of the estimate.
pub fn agents_on_duty(agents: &[OnlineAgent], c: &Candidate) -> usize {
    agents
        .iter()
        .filter(|o| o.agent.spec.status == AgentStatus::Available && can_take_live(&o.agent, c))
        .count()
}

/// A reservation made for a caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Reservation {
    /// The lease id: the agent accepts with it.
    pub reservation_id: String,
    /// The agent reserved.
    pub agent: Agent,
    /// When it lapses, ms.
    pub expires_ms: i64,
}

/// The candidate view of a live ticket, for eligibility.
pub fn candidate(record: &TicketRecord) -> Option<Candidate> {
    Some(Candidate {
        id: record.stored.id.clone(),
        queue: record.stored.queue.clone()?,
        band: record.band,
        seq: record.seq,
        since_ms: record.stored.created_ms,
        category: record.category.clone(),
        region_path: record.region_path.clone(),
        min_tier: record.min_tier,
    })
}

/// Tries to reserve a free agent for the caller of `c`; `None` when nobody free could take it
/// (or the caller stopped waiting meanwhile).
pub async fn reserve(
    store: &Store,
    county: &str,
    c: &Candidate,
    online: &[OnlineAgent],
    cfg: &LiveConfig,
) -> Result<Option<Reservation>, StoreError> {
    let now = store.now_ms();
    for o in rank(online, c, &cfg.selection, now) {
        match store
            .claim(
                county,
                c,
                &o.agent.id,
                cfg.accept_timeout_ms,
                ClaimMode::Live,
            )
            .await?
        {
            ClaimOutcome::Leased {
                lease_id,
                expires_ms,
            } => {
                crate::metrics::queue_event(&c.queue, "offer");
                return Ok(Some(Reservation {
                    reservation_id: lease_id,
                    agent: o.agent.clone(),
                    expires_ms,
                }));
            }
            // Taken meanwhile by another console or gone: try the next one.
            ClaimOutcome::Full | ClaimOutcome::Unavailable | ClaimOutcome::Busy => continue,
            // The ticket was taken or the caller hung up.
            ClaimOutcome::Gone => return Ok(None),
        }
    }
    Ok(None)
}

/// One mover step for live callers of a county: reserve the next free agent for each caller
/// still waiting (after a timeout, a decline, or an agent coming free), longest waiting first,
/// and drop from the line tickets that no longer wait. Returns reservations made.
pub async fn serve_waiting(
    store: &Store,
    county: &str,
    cfg: &LiveConfig,
) -> Result<usize, StoreError> {
    let mut made = 0;
    let mut online: Option<Vec<OnlineAgent>>;
    for kind in [AgentKind::Lawyer, AgentKind::Mediator] {
        let pool = kind.queue_kind();
        let waiting = store.live_waiting(county, pool, 100).await?;
        if waiting.is_empty() {
            continue;
        }
        // Nobody of the pool free: nothing to do for any of them (the common case at a peak).
        let agents = store.online_agents(county).await?;
        let now = store.now_ms();
        if !agents
            .iter()
            .any(|o| o.agent.spec.kind == kind && free(o, now))
        {
            continue;
        }
        online = Some(agents);
        for id in waiting {
            let Some(record) = store.ticket(&id).await? else {
                store.live_unwait(county, pool, &id).await?;
                continue;
            };
            let waiting = record.live_state() == Some(LiveState::Waiting);
            match record.stored.status {
                Status::Leased if waiting => continue,
                Status::Queued if waiting => {}
                _ => {
                    store.live_unwait(county, pool, &id).await?;
                    continue;
                }
            }
            let Some(c) = candidate(&record) else {
                continue;
            };
            if online.is_none() {
                online = Some(store.online_agents(county).await?);
            }
            let agents = online.as_deref().unwrap_or_default();
            if let Some(r) = reserve(store, county, &c, agents, cfg).await? {
                made += 1;
                crate::metrics::live_reservation("reserved");
                tracing::info!(ticket_id = %id, agent = %r.agent.id, "live caller reserved an agent");
                // The agent is no longer free: read presence again for the next caller.
                online = None;
            }
        }
    }
    Ok(made)
}

#[cfg(test)]
mod tests;
