//! `GET /v1/events`: the event streams of the caller's counties as Server-Sent Events, for
//! dashboards and consoles.
//!
//! Every state change writes an entry to its county's stream in the same script as the change,
//! so the stream misses nothing. Each SSE event's id is the position in *every* county stream
//! read (`320831:1732-0,320324:1730-5`), so a client that reconnects with `Last-Event-ID` (as
//! browsers' `EventSource` does by itself) resumes exactly where it stopped, missing nothing and
//! seeing nothing twice. Reads block on a connection of their own, so any replica can serve any
//! client. Browsers cannot set headers on `EventSource`, so the token may also come as
//! `?access_token=`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::mpsc;
use utoipa::IntoParams;

use crate::api::AppState;
use crate::api::problem::{ApiError, FieldError};
use crate::auth::{Principal, Role};

/// Query of `GET /v1/events`.
#[derive(Debug, Deserialize, IntoParams)]
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

/// The inverse of [`parse_position`].
pub fn format_position(p: &BTreeMap<String, String>) -> String {
    p.iter()
        .map(|(c, id)| format!("{c}:{id}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Stream ticket, queue, SLA and agent events of the caller's regions.
#[utoipa::path(
    get, path = "/v1/events", tag = "ops",
    params(EventsQuery),
    responses(
        (status = 200, description = "text/event-stream; event names are the event types (ticket.created, ticket.claimed, sla.warning, sla.breached, lease.expired, …); data is the event as JSON", content_type = "text/event-stream"),
        (status = 401, description = "No or unknown token", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Role or region not allowed", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn events(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    crate::api::json::QueryParams(query): crate::api::json::QueryParams<EventsQuery>,
) -> Result<Response, ApiError> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
        .or_else(|| query.access_token.as_ref().map(|t| format!("Bearer {t}")));
    let principal = state.auth.authenticate(header.as_deref())?;
    principal.require(&[Role::Operator, Role::Agent, Role::Supervisor, Role::Admin])?;
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
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(String::from)
        .or(query.last_event_id.clone())
        .map(|s| parse_position(&s))
        .unwrap_or_default();
    let conn = state
        .store
        .dedicated_connection()
        .await
        .map_err(|e| state.store_error(e))?;
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(relay(state, principal, query, resume, conn, tx));
    Ok(Sse::new(tokio_stream::wrappers::ReceiverStream::new(rx))
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// Reads the streams and sends what the caller may see, until the client goes away.
async fn relay(
    state: Arc<AppState>,
    principal: Principal,
    query: EventsQuery,
    resume: BTreeMap<String, String>,
    mut conn: redis::aio::MultiplexedConnection,
    tx: mpsc::Sender<Result<Event, Infallible>>,
) {
    let wanted = |county: &str| {
        principal.covers(county)
            && query
                .region
                .as_deref()
                .is_none_or(|r| county.starts_with(r) || r.starts_with(county))
    };
    let mut position: BTreeMap<String, String> = BTreeMap::new();
    let mut listed = Instant::now() - Duration::from_secs(3600);
    let mut first_listing = true;
    while !tx.is_closed() {
        if listed.elapsed() > Duration::from_secs(5) {
            if let Ok(counties) = state.store.counties().await {
                for c in counties.into_iter().filter(|c| wanted(c)) {
                    if position.contains_key(&c) {
                        continue;
                    }
                    // Known at connect: resume, or start after its newest entry. Appearing
                    // later: from its start.
                    let start = match resume.get(&c) {
                        Some(id) => id.clone(),
                        None if first_listing => match state.store.last_event_id(&c).await {
                            Ok(id) => id,
                            Err(_) => continue,
                        },
                        None => "0-0".to_string(),
                    };
                    position.insert(c, start);
                }
                first_listing = false;
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
        for (county, entry_id, fields) in batch {
            position.insert(county, entry_id);
            if let Some(t) = &query.ticket
                && fields.get("id") != Some(t)
            {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_and_bad_parts_are_ignored() {
        let p = parse_position("320831:1732-0,320324:1730-5,junk,110101:x-1,99:1-1");
        assert_eq!(p.len(), 2);
        assert_eq!(format_position(&p), "320324:1730-5,320831:1732-0");
        assert!(parse_position("").is_empty());
    }
}
