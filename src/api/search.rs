//! `GET /v1/tickets`: searching open and archived tickets (issue 18). Thin: the filters are
//! taken as strings (so validation names every field it refuses), searched by
//! [`crate::search`], and answered as a page of ticket summaries without the caller's name or
//! phone.

use std::sync::Arc;

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::Authenticated;
use crate::api::json::QueryParams;
use crate::api::problem::{ApiError, FieldError};
use crate::case::{CaseHit, SearchFilters};
use crate::search::{SEARCHERS, SearchError};
use crate::state::AppState;

/// `GET /v1/tickets` query: every filter optional, all of them must hold.
#[derive(Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// Text in the title or the caller's words: an exact substring of at least 2 adjacent
    /// characters that are not spaces (found through a bigram index), at most 100 characters.
    /// Works for Chinese: `工资` finds `老板拖欠工资三个月`.
    pub q: Option<String>,
    /// Hotline: `12345`, `110` or `12348`.
    pub source: Option<String>,
    /// The sender's own id for the ticket.
    pub external_id: Option<String>,
    /// The caller's phone number (at least 5 digits; compared by digits only, through a hash).
    /// A search by phone is written to the audit log.
    pub phone: Option<String>,
    /// Status: `queued`, `leased`, `accepted`, `in_progress`, `resolved`, `closed`, `returned`,
    /// `withdrawn`, `transferred`.
    pub status: Option<String>,
    /// Service: `legal_consultation`, `mediation`, `out_of_scope`, `triage`.
    pub service: Option<String>,
    /// Category, one of `classify.categories`.
    pub category: Option<String>,
    /// Warning level, one of `classify.warning_levels`.
    pub level: Option<String>,
    /// County code, one of `[counties]` within the caller's regions.
    pub county: Option<String>,
    /// Town, exactly as the ticket named it.
    pub town: Option<String>,
    /// The agent who holds the ticket, else the last one who worked it.
    pub agent: Option<String>,
    /// Created at or after this time (RFC 3339).
    pub created_from: Option<String>,
    /// Created before this time (RFC 3339).
    pub created_to: Option<String>,
    /// Resolved at or after this time (RFC 3339); unresolved tickets do not match.
    pub resolved_from: Option<String>,
    /// Resolved before this time (RFC 3339); unresolved tickets do not match.
    pub resolved_to: Option<String>,
    /// Tickets per page, 1 to 100; default 20.
    pub limit: Option<String>,
    /// `next_cursor` of the previous page, as given.
    pub cursor: Option<String>,
}

impl From<SearchQuery> for SearchFilters {
    fn from(q: SearchQuery) -> SearchFilters {
        SearchFilters {
            q: q.q,
            source: q.source,
            external_id: q.external_id,
            phone: q.phone,
            status: q.status,
            service: q.service,
            category: q.category,
            level: q.level,
            county: q.county,
            town: q.town,
            agent: q.agent,
            created_from: q.created_from,
            created_to: q.created_to,
            resolved_from: q.resolved_from,
            resolved_to: q.resolved_to,
            limit: q.limit,
            cursor: q.cursor,
        }
    }
}

/// One ticket in a search's answer. The caller's name and phone are not listed: read the
/// ticket for them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TicketSummary {
    /// `<county>-<seq>`.
    pub id: String,
    /// Status.
    pub status: String,
    /// Hotline.
    pub source: String,
    /// The sender's own id.
    pub external_id: String,
    /// Service decided.
    pub service: String,
    /// Category.
    pub category: String,
    /// Warning level.
    pub level: String,
    /// County code.
    pub county: String,
    /// Town, when the ticket named one.
    pub town: Option<String>,
    /// The agent holding it, else the last one who worked it.
    pub agent: Option<String>,
    /// The operator's summary.
    pub title: String,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// When it was resolved, if it was.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Whether it came from the case archive (an ended ticket) rather than the open tickets.
    pub archived: bool,
}

impl From<CaseHit> for TicketSummary {
    fn from(h: CaseHit) -> TicketSummary {
        let time = |ms: i64| DateTime::from_timestamp_millis(ms).unwrap_or_default();
        let i = h.index;
        TicketSummary {
            id: h.id,
            status: i.status,
            source: i.source,
            external_id: i.external_id,
            service: i.service,
            category: i.category,
            level: i.level,
            county: h.county,
            town: i.town,
            agent: i.agent,
            title: i.title,
            created_at: time(i.created_ms),
            resolved_at: i.resolved_ms.map(time),
            archived: h.archived,
        }
    }
}

/// A page of a search.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SearchResponse {
    /// Newest first (then the greater id first), open and archived tickets merged.
    pub tickets: Vec<TicketSummary>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Search open and archived tickets.
#[utoipa::path(
    get, path = "/v1/tickets", tag = "search",
    params(SearchQuery),
    responses(
        (status = 200, description = "A page of tickets, newest first", body = SearchResponse),
        (status = 400, description = "An unknown query parameter", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or unknown token", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Agents may not search; a `county` outside the caller's regions", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid filters; every field named", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Redis unreachable, or the case archive unavailable (`/problems/archive-unavailable`: never a partial list), or a search by phone that the audit log could not record; see Retry-After", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn search(
    State(state): State<Arc<AppState>>,
    Authenticated(principal): Authenticated,
    request_id: crate::api::audit::RequestId,
    QueryParams(query): QueryParams<SearchQuery>,
) -> Result<axum::Json<SearchResponse>, ApiError> {
    principal.require(SEARCHERS)?;
    let filters = SearchFilters::from(query);
    let found = crate::search::search(&state, &principal, &filters, request_id.0)
        .await
        .map_err(|e| error(&state, e))?;
    Ok(axum::Json(SearchResponse {
        next_cursor: found.page.next.as_ref().map(crate::case::Cursor::encode),
        tickets: found
            .page
            .hits
            .into_iter()
            .map(TicketSummary::from)
            .collect(),
    }))
}

fn error(state: &AppState, e: SearchError) -> ApiError {
    let retry_after = state.settings.redis.retry_after_seconds;
    match e {
        SearchError::Invalid(fields) => ApiError::Invalid(
            fields
                .into_iter()
                .map(|(f, m)| FieldError::new(f, m))
                .collect(),
        ),
        SearchError::Forbidden(why) => ApiError::Forbidden(why),
        SearchError::Store(e) => ApiError::from_store(e, retry_after),
        SearchError::Archive(crate::archive::ArchiveError::Unavailable(detail)) => {
            ApiError::SearchUnavailable {
                detail,
                unaudited: false,
                retry_after,
            }
        }
        SearchError::Archive(other) => ApiError::Internal(other.to_string()),
        SearchError::Unaudited(e) => ApiError::SearchUnavailable {
            detail: e.to_string(),
            unaudited: true,
            retry_after,
        },
    }
}
