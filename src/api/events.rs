//! `GET /v1/events`: the event streams of the caller's counties as Server-Sent Events, for
//! dashboards and consoles.
//!
//! Every state change writes an entry to its county's stream in the same script as the change,
//! so the stream misses nothing. A stream reads every county it may show (the deployment's
//! `[counties]`, and any still holding tickets) from the moment it opens, so a county's first
//! event ever comes as promptly as any other. Each SSE event's id is the position in every
//! county stream read (`320831:1732-0,320324:1730-5`; a county with nothing read yet is left
//! out), so a client that reconnects with `Last-Event-ID` (as browsers' `EventSource` does by
//! itself) resumes exactly where it stopped, missing nothing and seeing nothing twice. Reads block on a connection of their own, so any replica can serve any
//! client. Browsers cannot set headers on `EventSource`, so the token may also come as
//! `?access_token=`; partner systems may sign the request instead (a GET signs an empty body).
//!
//! Opening a stream is one request against the caller's rate limit, like any other; the events
//! sent on it are not. Because a stream lasts, each caller may also hold at most
//! `auth.rate_limit.max_event_streams` at once, counted in Redis across gateways (429 beyond).

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::request::Parts;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::mpsc;
use utoipa::IntoParams;

use crate::api::StoreErrors;
use crate::api::problem::{ApiError, FieldError};
use crate::auth::{Principal, Role};
use crate::state::AppState;

/// Query of `GET /v1/events`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Only counties under this region prefix (within the caller's own regions).
    pub region: Option<String>,
    /// Only the events of this ticket (a console following one ticket).
    pub ticket: Option<String>,
    /// The bearer token, for clients that cannot send headers (browsers' `EventSource`).
    pub access_token: Option<String>,
    /// Resume after this position, when the `Last-Event-ID` header cannot be sent.
    pub last_event_id: Option<String>,
}

/// Parses `320831:1732-0,320324:1730-5` into positions by county; bad parts are ignored.
pub fn parse_position(s: &str) -> BTreeMap<String, String> {
    s.split(',')
        .filter_map(|part| {
            let (county, id) = part.trim().split_once(':')?;
            let ok_county = crate::ticket::Region::is_valid_code(county);
            let ok_id = id
                .split_once('-')
                .is_some_and(|(a, b)| a.parse::<u64>().is_ok() && b.parse::<u64>().is_ok());
            (ok_county && ok_id).then(|| (county.to_string(), id.to_string()))
        })
        .collect()
}

/// The inverse of [`parse_position`], leaving out counties still at `0-0` (nothing read, their
/// stream was empty when the client connected): a deployment's quiet counties do not lengthen
/// every event's id, and a resume starts a county missing from the id at its beginning.
pub fn format_position(p: &BTreeMap<String, String>) -> String {
    p.iter()
        .filter(|(_, id)| id.as_str() != "0-0")
        .map(|(c, id)| format!("{c}:{id}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// How long an open stream's slot lasts without renewal: a gateway that dies mid-stream holds
/// its callers' slots at most this long.
const STREAM_LEASE: Duration = Duration::from_secs(30);
/// How often a live stream renews its slot (well within [`STREAM_LEASE`]).
const STREAM_RENEW_EVERY: Duration = Duration::from_secs(10);
/// `Retry-After` when the caller holds its most streams: a closed stream's slot is given back
/// within a few seconds (the next read of the relay notices the client has gone).
const STREAMS_RETRY_AFTER_SECONDS: u64 = 5;

/// Stream ticket, queue, SLA and agent events of the caller's regions.
#[utoipa::path(
    get, path = "/v1/events", tag = "ops",
    params(EventsQuery),
    responses(
        (status = 200, description = "text/event-stream; event names are the event types (ticket.created, ticket.claimed, sla.warning, sla.breached, lease.expired, …); data is the event as JSON", content_type = "text/event-stream"),
        (status = 401, description = "No or unknown token, or a refused signature", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Role or region not allowed", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over the caller's rate (`/problems/rate-limited`; opening a stream takes one request from it), or the caller already holds `auth.rate_limit.max_event_streams` open streams (`/problems/too-many-streams`); see `Retry-After`", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Redis unreachable; see `Retry-After`", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn events(
    State(state): State<Arc<AppState>>,
    parts: Parts,
    crate::api::json::QueryParams(query): crate::api::json::QueryParams<EventsQuery>,
) -> Result<Response, ApiError> {
    // Signature, bearer header or ?access_token; the rate is charged once, for the opening.
    let principal = crate::api::authenticate(&state, &parts, query.access_token.as_deref()).await?;
    principal.require(&[
        Role::Partner,
        Role::Operator,
        Role::Agent,
        Role::Supervisor,
        Role::Admin,
    ])?;
    if let Some(region) = &query.region {
        let valid =
            !region.is_empty() && region.len() <= 6 && region.bytes().all(|b| b.is_ascii_digit());
        if !valid {
            return Err(ApiError::Invalid(vec![FieldError::new(
                "region",
                "1 to 6 digits of a region code",
            )]));
        }
        if !principal.regions.is_empty()
            && !principal
                .regions
                .iter()
                .any(|p| region.starts_with(p.as_str()))
        {
            return Err(ApiError::Forbidden(format!(
                "region {region} is outside the regions of `{}`",
                principal.name
            )));
        }
    }
    let resume = parts
        .headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(String::from)
        .or(query.last_event_id.clone())
        .map(|s| parse_position(&s))
        .unwrap_or_default();
    let slot = StreamSlot::open(&state, &principal.name).await?;
    let conn = match state.store.dedicated_connection().await {
        Ok(c) => c,
        Err(e) => {
            slot.close(&state).await;
            return Err(state.store_error(e));
        }
    };
    // Where every county starts is fixed before the answer: an event written after the `200`
    // is never missed, and a county's first ticket ever is read like any other's.
    let position = match starting_positions(&state, &principal, &query, &resume).await {
        Ok(p) => p,
        Err(e) => {
            slot.close(&state).await;
            return Err(state.store_error(e));
        }
    };
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(relay(state, principal, query, position, conn, tx, slot));
    Ok(Sse::new(tokio_stream::wrappers::ReceiverStream::new(rx))
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// One open stream's place in its caller's count (`auth.rate_limit.max_event_streams`), held
/// in Redis so that every gateway counts the same streams.
struct StreamSlot {
    caller: String,
    id: String,
}

impl StreamSlot {
    /// Takes a slot, or answers 429 when the caller holds its most; 503 without Redis (no
    /// stream can be served without it anyway).
    async fn open(state: &AppState, caller: &str) -> Result<StreamSlot, ApiError> {
        let limit = state.auth.event_stream_limit(caller);
        let id = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        let admitted = state
            .store
            .open_event_stream(caller, &id, limit, lease_ms())
            .await
            .map_err(|e| state.store_error(e))?;
        if !admitted {
            crate::metrics::event_stream_refused(caller);
            return Err(ApiError::TooManyStreams {
                principal: caller.to_string(),
                limit,
                retry_after: STREAMS_RETRY_AFTER_SECONDS,
            });
        }
        Ok(StreamSlot {
            caller: caller.to_string(),
            id,
        })
    }

    /// Extends the lease; a failure is only logged (the stream goes on, and the slot lapses at
    /// worst, letting the caller open one more).
    async fn renew(&self, state: &AppState) {
        if let Err(e) = state
            .store
            .renew_event_stream(&self.caller, &self.id, lease_ms())
            .await
        {
            tracing::warn!(error = %e, "event stream slot could not be renewed");
        }
    }

    /// Gives the slot back; if Redis cannot be told, the lease lapses by itself.
    async fn close(self, state: &AppState) {
        if let Err(e) = state.store.close_event_stream(&self.caller, &self.id).await {
            tracing::warn!(error = %e, "event stream slot could not be given back; it lapses");
        }
    }
}

/// Whether the stream shows `county`: the caller's regions and the `region` filter.
fn wanted(principal: &Principal, query: &EventsQuery, county: &str) -> bool {
    principal.covers(county)
        && query
            .region
            .as_deref()
            .is_none_or(|r| county.starts_with(r) || r.starts_with(county))
}

/// Every county the stream may show from the start, the deployment's and any still holding
/// tickets (a county taken out of `[counties]`), each after its newest entry (`0-0` for a county
/// without a stream yet, so its first event is read at once); on a resume, at the position in
/// the id, and at its beginning when the id leaves it out (it was still at `0-0`). Two round
/// trips, however many counties.
async fn starting_positions(
    state: &AppState,
    principal: &Principal,
    query: &EventsQuery,
    resume: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, crate::queues::StoreError> {
    let mut counties: std::collections::BTreeSet<String> =
        state.settings.counties.codes().map(String::from).collect();
    counties.extend(state.store.counties().await?);
    counties.retain(|c| wanted(principal, query, c));
    let fresh: Vec<String> = if resume.is_empty() {
        counties.iter().cloned().collect()
    } else {
        Vec::new()
    };
    let newest = state.store.last_event_ids(&fresh).await?;
    let mut position: BTreeMap<String, String> = fresh.into_iter().zip(newest).collect();
    if !resume.is_empty() {
        for c in counties {
            let start = resume.get(&c).cloned().unwrap_or_else(|| "0-0".to_string());
            position.insert(c, start);
        }
    }
    Ok(position)
}

fn lease_ms() -> u64 {
    u64::try_from(STREAM_LEASE.as_millis()).unwrap_or(30_000)
}

/// Reads the streams and sends what the caller may see, until the client goes away.
async fn relay(
    state: Arc<AppState>,
    principal: Principal,
    query: EventsQuery,
    position: BTreeMap<String, String>,
    conn: redis::aio::MultiplexedConnection,
    tx: mpsc::Sender<Result<Event, Infallible>>,
    slot: StreamSlot,
) {
    relay_until_closed(&state, &principal, &query, position, conn, &tx, &slot).await;
    slot.close(&state).await;
}

/// The body of [`relay`]: returns once the client has gone.
async fn relay_until_closed(
    state: &AppState,
    principal: &Principal,
    query: &EventsQuery,
    mut position: BTreeMap<String, String>,
    mut conn: redis::aio::MultiplexedConnection,
    tx: &mpsc::Sender<Result<Event, Infallible>>,
    slot: &StreamSlot,
) {
    let mut listed = Instant::now();
    let mut renewed = Instant::now();
    let mut own = OwnTickets::for_principal(principal);
    while !tx.is_closed() && !state.is_closing() {
        if renewed.elapsed() >= STREAM_RENEW_EVERY {
            slot.renew(state).await;
            renewed = Instant::now();
        }
        // The deployment's counties were all read from the start; this finds only a county
        // registered by a gateway configured otherwise (a rolling change of `[counties]`).
        if listed.elapsed() > Duration::from_secs(5) {
            if let Ok(counties) = state.store.counties().await {
                for c in counties {
                    if !position.contains_key(&c) && wanted(principal, query, &c) {
                        position.insert(c, "0-0".to_string());
                    }
                }
            }
            listed = Instant::now();
        }
        if position.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        let batch = match state.store.read_many(&mut conn, &position, 2000).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "event stream read failed");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        if let Some(own) = own.as_mut()
            && let Err(e) = own.learn(state, &mut conn, &batch).await
        {
            tracing::warn!(error = %e, "event stream: senders not read");
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        for (county, entry_id, fields) in batch {
            position.insert(county, entry_id);
            if let Some(t) = &query.ticket
                && fields.get("id") != Some(t)
            {
                continue;
            }
            if own.as_ref().is_some_and(|own| !own.covers(&fields)) {
                continue;
            }
            let name = fields
                .get("type")
                .cloned()
                .unwrap_or_else(|| "event".into());
            let data = serde_json::to_string(&fields).unwrap_or_default();
            let event = Event::default()
                .event(name)
                .id(format_position(&position))
                .data(data);
            if tx.send(Ok(event)).await.is_err() {
                return;
            }
        }
    }
}

/// A partner's stream carries its own tickets' events only: other partners' ticket ids,
/// classifications and queues, and agents' presence, are not its business. Who sent a ticket is
/// read once per ticket, pipelined per batch, and remembered for the stream.
struct OwnTickets {
    partner: String,
    sent_by: HashMap<String, bool>,
}

/// Tickets remembered per stream before the memory is cleared (and read again as they come).
const OWN_TICKETS_REMEMBERED: usize = 10_000;

impl OwnTickets {
    /// A filter for a partner's stream; other callers see by region only.
    fn for_principal(principal: &Principal) -> Option<OwnTickets> {
        (principal.role == Role::Partner).then(|| OwnTickets {
            partner: principal.name.clone(),
            sent_by: HashMap::new(),
        })
    }

    /// Reads who sent the batch's tickets not yet known.
    async fn learn(
        &mut self,
        state: &AppState,
        conn: &mut redis::aio::MultiplexedConnection,
        batch: &[(String, String, HashMap<String, String>)],
    ) -> Result<(), crate::queues::StoreError> {
        let mut unknown: Vec<String> = batch
            .iter()
            .filter_map(|(_, _, fields)| fields.get("id"))
            .filter(|id| !self.sent_by.contains_key(*id))
            .cloned()
            .collect();
        unknown.sort();
        unknown.dedup();
        if unknown.is_empty() {
            return Ok(());
        }
        if self.sent_by.len() + unknown.len() > OWN_TICKETS_REMEMBERED {
            self.sent_by.clear();
        }
        let senders = state.store.senders_of(conn, &unknown).await?;
        for (id, sender) in unknown.into_iter().zip(senders) {
            let mine = sender.as_deref() == Some(self.partner.as_str());
            self.sent_by.insert(id, mine);
        }
        Ok(())
    }

    /// Whether an event belongs on the partner's stream: its ticket's, and the partner sent it.
    fn covers(&self, fields: &HashMap<String, String>) -> bool {
        fields
            .get("id")
            .and_then(|id| self.sent_by.get(id))
            .copied()
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_and_bad_parts_are_ignored() {
        let p = parse_position("320831:1732-0,320324:1730-5,junk,110101:x-1,99:1-1");
        assert_eq!(p.len(), 2);
        assert_eq!(format_position(&p), "320324:1730-5,320831:1732-0");
        assert!(parse_position("").is_empty());
        let mut quiet = p.clone();
        quiet.insert("110101".into(), "0-0".into());
        assert_eq!(format_position(&quiet), "320324:1730-5,320831:1732-0");
    }
}
