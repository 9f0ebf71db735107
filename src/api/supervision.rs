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

/// One warning level of the configured scale, as the dashboard shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScaleLevel {
    /// The configured name (`classify.warning_levels`).
    pub name: String,
    /// Its position in the scale, 0 = highest.
    pub rank: u32,
    /// The colour it is drawn in (`#rrggbb`, white text on it keeps 4.5:1 contrast): the
    /// colour its name says (red, orange, yellow, blue, green), grey for the last level (no
    /// warning), else one of a fixed set by rank.
    pub colour: String,
    /// Chinese label: 红色, 橙色, … for the colour names, else the configured name.
    pub label_zh: String,
    /// English label: Red, Orange, … for the colour names, else the configured name.
    pub label_en: String,
}

/// One priority band, as the dashboard shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScaleBand {
    /// The band, 0 = served first. A ticket starts in its level's band; an SLA breach raises it
    /// one band, so a band is never named after a level.
    pub band: u32,
    /// Chinese label, e.g. `1档`.
    pub label_zh: String,
    /// English label, e.g. `Band 1`.
    pub label_en: String,
}

/// `GET /v1/dashboard/config`: what the dashboard needs to know of the configuration.
#[derive(Debug, Serialize, ToSchema)]
pub struct DashboardConfig {
    /// The warning scale in force, highest first (`classify.warning_levels`).
    pub warning_levels: Vec<ScaleLevel>,
    /// The priority bands, served first first (one per level).
    pub bands: Vec<ScaleBand>,
}

/// The colour, Chinese and English label of a level: by its name when it names a colour, else
/// grey for the last level (no warning) and a fixed colour by rank for the others.
fn level_look(name: &str, rank: usize, count: usize) -> (&'static str, String, String) {
    const BY_RANK: [&str; 6] = [
        "#7f1d1d", "#9a3412", "#854d0e", "#1e40af", "#6b21a8", "#0f766e",
    ];
    let named = match name {
        "red" => Some(("#b91c1c", "红色", "Red")),
        "orange" => Some(("#c2410c", "橙色", "Orange")),
        "yellow" => Some(("#a16207", "黄色", "Yellow")),
        "blue" => Some(("#1d4ed8", "蓝色", "Blue")),
        "green" => Some(("#15803d", "绿色", "Green")),
        "none" => Some(("#4b5563", "无", "None")),
        _ => None,
    };
    match named {
        Some((colour, zh, en)) => (colour, zh.to_string(), en.to_string()),
        None if rank + 1 == count => ("#4b5563", name.to_string(), name.to_string()),
        None => (
            BY_RANK[rank % BY_RANK.len()],
            name.to_string(),
            name.to_string(),
        ),
    }
}

/// The configured warning scale (names, order, colours, labels) and the priority bands, so the
/// dashboard shows the scale in force rather than one written into the page.
#[utoipa::path(
    get, path = "/v1/dashboard/config", tag = "queues",
    responses(
        (status = 200, description = "The warning scale and the priority bands", body = DashboardConfig),
        (status = 401, description = "No or unknown token", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Role may not watch", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn config(
    State(state): State<Arc<AppState>>,
    Authenticated(principal): Authenticated,
) -> Result<axum::Json<DashboardConfig>, ApiError> {
    principal.require(&[Role::Supervisor, Role::Admin, Role::Operator])?;
    let levels = &state.settings.classify.warning_levels;
    let warning_levels = levels
        .iter()
        .enumerate()
        .map(|(rank, name)| {
            let (colour, label_zh, label_en) = level_look(name, rank, levels.len());
            ScaleLevel {
                name: name.clone(),
                rank: rank as u32,
                colour: colour.to_string(),
                label_zh,
                label_en,
            }
        })
        .collect();
    let bands = (0..levels.len() as u32)
        .map(|band| ScaleBand {
            band,
            label_zh: format!("{}档", band + 1),
            label_en: format!("Band {}", band + 1),
        })
        .collect();
    Ok(axum::Json(DashboardConfig {
        warning_levels,
        bands,
    }))
}

#[cfg(test)]
mod tests {
    use super::level_look;

    #[test]
    fn levels_are_drawn_by_their_name_else_by_rank_and_the_last_is_grey() {
        assert_eq!(level_look("red", 3, 5).0, "#b91c1c");
        assert_eq!(level_look("none", 4, 5).1, "无");
        let (c0, zh, en) = level_look("watch", 0, 5);
        assert_eq!((zh.as_str(), en.as_str()), ("watch", "watch"));
        assert_ne!(c0, level_look("alert", 1, 5).0);
        assert_eq!(level_look("quiet", 4, 5).0, "#4b5563");
    }
}
