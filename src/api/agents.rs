//! HTTP for agents: admins define them; an agent claims its next ticket.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::mpsc;
use utoipa::ToSchema;

use crate::agents::{Agent, AgentSpec, AgentStatus, valid_id};

use crate::api::audit::{Audit, RequestId};
use crate::api::json::JsonBody;
use crate::api::problem::{ApiError, FieldError};
use crate::api::wire::TicketView;
use crate::api::{Authenticated, StoreErrors};
use crate::archive::audit;
use crate::auth::{Principal, Role};
use crate::queues::StoreError;
use crate::state::AppState;

/// `GET /v1/agents` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentList {
    /// Agents in the caller's regions.
    pub agents: Vec<Agent>,
}

/// A claimed ticket and its lease.
#[derive(Debug, Serialize, ToSchema)]
pub struct Claim {
    /// Send this with `accept` and `renew`; a stale one gets 409.
    pub lease_id: String,
    /// When the reservation lapses and the ticket returns to its place in line.
    pub lease_expires_at: DateTime<Utc>,
    /// The ticket.
    pub ticket: TicketView,
}

fn check_id(id: &str) -> Result<(), ApiError> {
    if valid_id(id) {
        Ok(())
    } else {
        Err(ApiError::Invalid(vec![FieldError::new(
            "id",
            "1 to 64 letters, digits, `.`, `_` or `-`",
        )]))
    }
}

fn in_regions(principal: &Principal, agent: &Agent) -> bool {
    agent.spec.county().is_some_and(|c| principal.covers(c))
}

/// Create or replace an agent.
#[utoipa::path(
    put, path = "/v1/agents/{id}", tag = "agents",
    params(("id" = String, Path, description = "Agent id")),
    request_body = AgentSpec,
    responses(
        (status = 200, description = "The agent as stored", body = Agent),
        (status = 400, description = "Malformed body", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or unknown token", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin of that region", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The agent lives in another county", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid values (`regions[i]` of a county that is not one of the deployment's `[counties]` too)", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Redis unreachable, or the case archive could not take the audit entry (`/problems/archive-unavailable`): the action was not carried out", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn put_agent(
    State(state): State<Arc<AppState>>,
    Authenticated(principal): Authenticated,
    request_id: RequestId,
    Path(id): Path<String>,
    JsonBody(spec): JsonBody<AgentSpec>,
) -> Result<axum::Json<Agent>, ApiError> {
    principal.require(&[Role::Admin])?;
    check_id(&id)?;
    let mut problems = spec.problems(&state.settings.classify.categories);
    if problems.is_empty() {
        problems = spec.outside(&state.settings.counties);
    }
    if !problems.is_empty() {
        return Err(ApiError::Invalid(
            problems
                .into_iter()
                .map(|(f, m)| FieldError::new(f, m))
                .collect(),
        ));
    }
    let county = spec.county().unwrap_or_default().to_string();
    if !principal.covers(&county) {
        return Err(ApiError::Forbidden(format!(
            "county {county} is outside the regions of `{}`",
            principal.name
        )));
    }
    let home = state
        .store
        .agent_county(&id)
        .await
        .map_err(|e| state.store_error(e))?;
    if let Some(home) = home
        && home != county
    {
        return Err(ApiError::State(format!(
            "agent `{id}` works in county {home}; delete it there first"
        )));
    }
    let before = state
        .store
        .agent(&id)
        .await
        .map_err(|e| state.store_error(e))?
        .map(|a| a.spec);
    let detail = serde_json::json!({"before": before, "after": spec});
    let audit = Audit::begin(
        &state,
        &principal,
        &request_id,
        audit::AGENT_DEFINE,
        Some(&id),
        detail,
    )
    .await?;
    let result = state
        .store
        .put_agent(&id, &spec)
        .await
        .map_err(|e| state.store_error(e));
    audit.finish(&result, |_| serde_json::json!({})).await;
    Ok(axum::Json(result?))
}

/// List agents with their live figures (current load, handled, missed leases).
#[utoipa::path(
    get, path = "/v1/agents", tag = "agents",
    responses(
        (status = 200, description = "Agents in the caller's regions", body = AgentList),
        (status = 401, description = "No or unknown token", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Role may not list agents", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_agents(
    State(state): State<Arc<AppState>>,
    Authenticated(principal): Authenticated,
) -> Result<axum::Json<AgentList>, ApiError> {
    principal.require(&[Role::Admin, Role::Supervisor, Role::Operator])?;
    let agents = state
        .store
        .agents(None)
        .await
        .map_err(|e| state.store_error(e))?
        .into_iter()
        .filter(|a| in_regions(&principal, a))
        .collect();
    Ok(axum::Json(AgentList { agents }))
}

/// Remove an agent that holds no tickets.
#[utoipa::path(
    delete, path = "/v1/agents/{id}", tag = "agents",
    params(("id" = String, Path, description = "Agent id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Not an admin of that region", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such agent", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The agent still holds tickets", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Redis unreachable, or the case archive could not take the audit entry (`/problems/archive-unavailable`): the action was not carried out", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn delete_agent(
    State(state): State<Arc<AppState>>,
    Authenticated(principal): Authenticated,
    request_id: RequestId,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    principal.require(&[Role::Admin])?;
    let agent = load_agent(&state, &id).await?;
    if !in_regions(&principal, &agent) {
        return Err(ApiError::Forbidden(format!(
            "agent `{id}` is outside your regions"
        )));
    }
    let detail = serde_json::json!({"deleted": agent.spec});
    let audit = Audit::begin(
        &state,
        &principal,
        &request_id,
        audit::AGENT_DELETE,
        Some(&id),
        detail,
    )
    .await?;
    let result = match state
        .store
        .delete_agent(&id)
        .await
        .map_err(|e| state.store_error(e))
    {
        Ok(Some(true)) => Ok(StatusCode::NO_CONTENT),
        Ok(Some(false)) => Err(ApiError::State(format!(
            "agent `{id}` still holds tickets; transfer or resolve them first"
        ))),
        Ok(None) => Err(ApiError::NotFound(format!("no agent `{id}`"))),
        Err(e) => Err(e),
    };
    audit.finish(&result, |_| serde_json::json!({})).await;
    result
}

/// Claim the most urgent, oldest eligible ticket, under a lease; 204 when there is none.
#[utoipa::path(
    post, path = "/v1/agents/{id}/claim", tag = "agents",
    params(("id" = String, Path, description = "The agent's own id")),
    responses(
        (status = 200, description = "A ticket, leased to the agent", body = Claim),
        (status = 204, description = "Nothing eligible is waiting"),
        (status = 401, description = "No or unknown token", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not this agent's token", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such agent", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The agent is not available or is at capacity", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn claim(
    State(state): State<Arc<AppState>>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_self(&principal, &id)?;
    let agent = load_agent(&state, &id).await?;
    if agent.spec.status != AgentStatus::Available {
        return Err(ApiError::State(format!("agent `{id}` is not available")));
    }
    if agent.active >= agent.spec.capacity {
        return Err(ApiError::State(format!(
            "agent `{id}` holds {} of {} tickets",
            agent.active, agent.spec.capacity
        )));
    }
    let Some(claimed) = crate::claiming::claim(&state, &agent)
        .await
        .map_err(|e| match e {
            crate::claiming::ClaimError::NoLongerFree(why) => ApiError::State(why),
            crate::claiming::ClaimError::Store(e) => state.store_error(e),
            crate::claiming::ClaimError::Internal(why) => ApiError::Internal(why),
        })?
    else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    tracing::Span::current().record("ticket_id", claimed.ticket.id());
    Ok(axum::Json(Claim {
        lease_id: claimed.lease_id,
        lease_expires_at: DateTime::from_timestamp_millis(claimed.expires_ms).unwrap_or_default(),
        ticket: crate::api::tickets::view(&state, &claimed.ticket),
    })
    .into_response())
}

/// Query of `GET /v1/agents/{id}/offers`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OffersQuery {
    /// The agent's bearer token, for consoles that cannot send headers (browsers'
    /// `EventSource`); the `Authorization` header wins when both are sent.
    pub access_token: Option<String>,
}

/// Hold this open to receive offers (Server-Sent Events): `offer` (a ticket reserved for the
/// agent: accept it with its `lease_id`, or `decline`; `live: "1"` marks a caller waiting on the
/// line), `offer_expired`, `offer_declined`, `offer_cancelled` (the caller hung up), `away`.
/// While it is open the agent counts as online for pushed offers and live reservations. The
/// token may come as `?access_token=` (browsers' `EventSource` cannot send headers).
#[utoipa::path(
    get, path = "/v1/agents/{id}/offers", tag = "agents",
    params(("id" = String, Path, description = "The agent's own id"), OffersQuery),
    responses(
        (status = 200, description = "text/event-stream of offers", content_type = "text/event-stream"),
        (status = 403, description = "Not this agent's token", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such agent", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn offers(
    State(state): State<Arc<AppState>>,
    parts: axum::http::request::Parts,
    Path(id): Path<String>,
    crate::api::json::QueryParams(query): crate::api::json::QueryParams<OffersQuery>,
) -> Result<Response, ApiError> {
    // Bearer header, else ?access_token (like GET /v1/events); the rate is charged once.
    let principal = crate::api::authenticate(&state, &parts, query.access_token.as_deref()).await?;
    require_self(&principal, &id)?;
    let agent = load_agent(&state, &id).await?;
    let county = agent
        .spec
        .county()
        .map(String::from)
        .ok_or_else(|| ApiError::Internal("agent without a county".into()))?;
    let rx = watch(Arc::clone(&state), county, id)
        .await
        .map_err(|e| state.store_error(e))?;
    Ok(
        axum::response::sse::Sse::new(tokio_stream::wrappers::ReceiverStream::new(rx))
            .keep_alive(axum::response::sse::KeepAlive::default())
            .into_response(),
    )
}

/// One agent, or 404.
async fn load_agent(state: &AppState, id: &str) -> Result<Agent, ApiError> {
    state
        .store
        .agent(id)
        .await
        .map_err(|e| state.store_error(e))?
        .ok_or_else(|| ApiError::NotFound(format!("no agent `{id}`")))
}

/// Agents act only as themselves.
pub fn require_self(principal: &Principal, id: &str) -> Result<(), ApiError> {
    principal.require(&[Role::Agent])?;
    if principal.agent_id.as_deref() != Some(id) {
        return Err(ApiError::Forbidden(format!(
            "`{}` may act only as its own agent",
            principal.name
        )));
    }
    Ok(())
}

/// Creates the configured `[[agents.bootstrap]]` agents that do not exist yet.
pub async fn bootstrap(state: &AppState) {
    for b in &state.settings.agents.bootstrap {
        match state.store.agent(&b.id).await {
            Ok(Some(_)) => {}
            Ok(None) => match state.store.put_agent(&b.id, &b.spec).await {
                Ok(_) => tracing::info!(agent = %b.id, "agent created from config"),
                Err(e) => tracing::warn!(agent = %b.id, error = %e, "agent not created"),
            },
            Err(e) => {
                tracing::warn!(agent = %b.id, error = %e, "agents not bootstrapped: Redis unavailable")
            }
        }
    }
}

/// Marks the agent online and starts relaying its offers; the channel closes when the console
/// goes away, and the agent is then marked offline.
async fn watch(
    state: Arc<AppState>,
    county: String,
    agent: String,
) -> Result<mpsc::Receiver<Result<Event, Infallible>>, StoreError> {
    let mut conn = state.store.dedicated_connection().await?;
    // Presence lasts `live.heartbeat_timeout_seconds` and is refreshed at a third of it.
    let presence = Duration::from_secs(state.settings.live.heartbeat_timeout_seconds);
    let presence_ms = i64::try_from(presence.as_millis()).unwrap_or(15_000);
    state
        .store
        .set_online(&county, &agent, state.store.now_ms() + presence_ms)
        .await?;
    state.mover.wake(&county);
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        // Start after the newest entry, so nothing written between two reads is skipped.
        let mut last = match state.store.last_event_id(&county).await {
            Ok(id) => id,
            Err(_) => "$".to_string(),
        };
        let mut refreshed = Instant::now();
        let _ = tx
            .send(Ok(Event::default().event("online").data(agent.clone())))
            .await;
        while !tx.is_closed() && !state.is_closing() {
            if refreshed.elapsed() > presence / 3 {
                let until = state.store.now_ms() + presence_ms;
                if state.store.set_online(&county, &agent, until).await.is_ok() {
                    refreshed = Instant::now();
                }
            }
            let entries = match state
                .store
                .read_events(&mut conn, &county, &last, 2000)
                .await
            {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(agent = %agent, error = %e, "offer stream read failed");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            for (event_id, fields) in entries {
                last = event_id.clone();
                if fields.get("agent") != Some(&agent) {
                    continue;
                }
                let kind = fields.get("type").map(String::as_str).unwrap_or_default();
                let name = match kind {
                    "ticket.offered" => "offer",
                    "lease.expired" => "offer_expired",
                    "lease.declined" => "offer_declined",
                    // The caller hung up before the agent accepted.
                    "live.cancelled" => "offer_cancelled",
                    "agent.away" => "away",
                    _ => continue,
                };
                let mut data = serde_json::to_value(&fields).unwrap_or_default();
                if kind == "ticket.offered"
                    && let Some(id) = fields.get("id")
                    && let Ok(Some(record)) = state.store.ticket(id).await
                {
                    data["ticket"] =
                        serde_json::to_value(crate::api::tickets::view(&state, &record))
                            .unwrap_or_default();
                }
                let event = Event::default()
                    .event(name)
                    .id(event_id)
                    .data(data.to_string());
                if tx.send(Ok(event)).await.is_err() {
                    break;
                }
            }
        }
        if let Err(e) = state.store.set_offline(&county, &agent).await {
            tracing::warn!(agent = %agent, error = %e, "agent left online after its console went away");
        }
    });
    Ok(rx)
}
