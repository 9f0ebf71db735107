//! What supervisors watch besides queues: the tickets at risk and breached, and the day's
//! counts by category, source, county and hour. Read from Redis, so every replica agrees; the
//! scripts that change tickets keep these sets and counters in the same atomic step.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::problem::{ApiError, FieldError};
use crate::api::{Authenticated, StoreErrors};
use crate::auth::{Principal, Role};
use crate::sla::clock::TicketClocks;
use crate::sla::policy::ClockName;
use crate::state::AppState;

/// `?region=` on the supervisors' endpoints.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RegionQuery {
    /// Only counties under this region prefix.
    pub region: Option<String>,
}

/// A clock that warned or breached.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RiskItem {
    /// Ticket id.
    pub id: String,
    /// Which clock.
    pub clock: String,
    /// The queue it is in.
    pub queue: String,
    /// Its county.
    pub county: String,
    /// Its warning level.
    pub warning_level: String,
    /// The clock's deadline.
    pub due_at: DateTime<Utc>,
    /// Time left; negative when over.
    pub seconds_left: i64,
    /// The deadline is provisional (暂定): counted through a year without holiday data on the
    /// calendar's ordinary week.
    pub provisional: bool,
}

/// `GET /v1/dashboard/risk`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RiskResponse {
    /// Warned, not yet breached, soonest first.
    pub at_risk: Vec<RiskItem>,
    /// Breached and still running, longest over first.
    pub breached: Vec<RiskItem>,
}

/// `GET /v1/dashboard/today`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TodayResponse {
    /// The day (China Standard Time).
    pub date: String,
    /// Tickets registered today by category.
    pub by_category: BTreeMap<String, u64>,
    /// By source hotline.
    pub by_source: BTreeMap<String, u64>,
    /// By county.
    pub by_county: BTreeMap<String, u64>,
    /// By hour of the day, 0 to 23.
    pub by_hour: Vec<u64>,
}

/// The counties the caller may see, narrowed by `?region=`.
pub async fn visible_counties(
    state: &AppState,
    principal: &Principal,
    region: Option<&str>,
) -> Result<Vec<String>, ApiError> {
    if let Some(r) = region
        && (r.is_empty() || r.len() > 6 || !r.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(ApiError::Invalid(vec![FieldError::new(
            "region",
            "1 to 6 digits of a region code",
        )]));
    }
    let mut counties = state
        .store
        .counties()
        .await
        .map_err(|e| state.store_error(e))?;
    counties.retain(|c| principal.covers(c) && region.is_none_or(|r| c.starts_with(r)));
    counties.sort();
    Ok(counties)
}

/// Tickets at risk (a warning fired) and breached, with time left or over.
#[utoipa::path(
    get, path = "/v1/dashboard/risk", tag = "queues",
    params(RegionQuery),
    responses(
        (status = 200, description = "At risk and breached", body = RiskResponse),
        (status = 401, description = "No or unknown token", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Role may not watch", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn risk(
    State(state): State<Arc<AppState>>,
    Authenticated(principal): Authenticated,
    crate::api::json::QueryParams(q): crate::api::json::QueryParams<RegionQuery>,
) -> Result<axum::Json<RiskResponse>, ApiError> {
    principal.require(&[Role::Supervisor, Role::Admin, Role::Operator])?;
    let now = state.store.now_ms();
    let sla = state.sla.current();
    let provisional = |clocks: &str, clock: &str| {
        let Some(clock) = ClockName::ALL.into_iter().find(|c| c.as_str() == clock) else {
            return false;
        };
        serde_json::from_str::<TicketClocks>(clocks).is_ok_and(
            |c| matches!(c.deadline(clock, &sla.calendars), Ok(Some(d)) if d.is_provisional()),
        )
    };
    let mut at_risk = Vec::new();
    let mut breached = Vec::new();
    for county in visible_counties(&state, &principal, q.region.as_deref()).await? {
        let (warned, late) = state
            .store
            .risk(&county)
            .await
            .map_err(|e| state.store_error(e))?;
        for (list, rows) in [(&mut at_risk, warned), (&mut breached, late)] {
            for r in rows {
                list.push(RiskItem {
                    provisional: provisional(&r.clocks, &r.clock),
                    id: r.id,
                    clock: r.clock,
                    queue: r.queue,
                    county: county.clone(),
                    warning_level: r.level,
                    due_at: DateTime::from_timestamp_millis(r.due_ms).unwrap_or_default(),
                    seconds_left: (r.due_ms - now) / 1000,
                });
            }
        }
    }
    at_risk.sort_by_key(|r| r.seconds_left);
    breached.sort_by_key(|r| r.seconds_left);
    Ok(axum::Json(RiskResponse { at_risk, breached }))
}

/// The day's tickets by category, source, county and hour.
#[utoipa::path(
    get, path = "/v1/dashboard/today", tag = "queues",
    params(RegionQuery),
    responses(
        (status = 200, description = "Today's counts", body = TodayResponse),
        (status = 401, description = "No or unknown token", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Role may not watch", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn today(
    State(state): State<Arc<AppState>>,
    Authenticated(principal): Authenticated,
    crate::api::json::QueryParams(q): crate::api::json::QueryParams<RegionQuery>,
) -> Result<axum::Json<TodayResponse>, ApiError> {
    principal.require(&[Role::Supervisor, Role::Admin, Role::Operator])?;
    // China Standard Time is UTC+8 all year.
    let local_s = state.store.now_ms() / 1000 + 8 * 3600;
    let day = local_s.div_euclid(86_400);
    let date = DateTime::from_timestamp(day * 86_400, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    let mut out = TodayResponse {
        date,
        by_category: BTreeMap::new(),
        by_source: BTreeMap::new(),
        by_county: BTreeMap::new(),
        by_hour: vec![0; 24],
    };
    for county in visible_counties(&state, &principal, q.region.as_deref()).await? {
        let counts = state
            .store
            .day_counts(&county, day)
            .await
            .map_err(|e| state.store_error(e))?;
        for (field, n) in counts {
            if field == "total" {
                *out.by_county.entry(county.clone()).or_default() += n;
            } else if let Some(c) = field.strip_prefix("category:") {
                *out.by_category.entry(c.to_string()).or_default() += n;
            } else if let Some(s) = field.strip_prefix("source:") {
                *out.by_source.entry(s.to_string()).or_default() += n;
            } else if let Some(h) = field
                .strip_prefix("hour:")
                .and_then(|h| h.parse::<usize>().ok())
                && let Some(slot) = out.by_hour.get_mut(h)
            {
                *slot += n;
            }
        }
    }
    Ok(axum::Json(out))
}
