//! Searching tickets (issue 18): the open ones in Redis and the ended ones in the case archive,
//! merged into one page in one order (newest first, then the greater id), with an opaque cursor.
//!
//! Who sees what: operators, supervisors and admins the counties their regions cover; partners
//! only the tickets they sent (within their regions too); agents nothing (they work what they
//! claim). A search by the caller's phone is a search of personal data: it is written to the
//! audit log before anything is searched, and not answered if it cannot be recorded.
//!
//! Redis is read before the archive, never at the same time: a ticket is written to the archive
//! before it leaves Redis, so a ticket not in Redis when Redis was read was already in the
//! archive when the archive was read, and no ticket falls between the two reads. When the
//! archive does not answer the search fails (503) rather than answer the open tickets alone as
//! if they were all: a list that silently lacks the archived cases reads as "no such case".

use std::time::Instant;

use crate::archive::{ArchiveError, AuditEntry};
use crate::auth::{Principal, Role};
use crate::case::{CaseQuery, SearchFilters, SearchPage, SearchVocabulary, merge};
use crate::queues::StoreError;
use crate::state::AppState;

/// The roles that may search.
pub const SEARCHERS: &[Role] = &[Role::Operator, Role::Supervisor, Role::Admin, Role::Partner];

/// Why a search was not answered.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// Filters that cannot be searched: each field named, with what would be accepted.
    #[error("invalid search: {0:?}")]
    Invalid(Vec<(String, String)>),
    /// A county outside the caller's regions.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Redis failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The case archive failed; the search is not answered in part.
    #[error(transparent)]
    Archive(ArchiveError),
    /// A search by phone could not be written to the audit log, so it was not run.
    #[error("the audit log could not record a search of personal data: {0}")]
    Unaudited(ArchiveError),
}

/// One page of a search, and what it cost.
#[derive(Debug)]
pub struct Found {
    /// The page.
    pub page: SearchPage,
    /// Tickets read from Redis to find it.
    pub read_in_redis: u64,
}

/// The search `filters` describe, as `actor` may see it: validated, scoped, audited when it is
/// by phone, and answered from both stores. `request_id` goes into the audit entry.
pub async fn search(
    state: &AppState,
    actor: &Principal,
    filters: &SearchFilters,
    request_id: Option<String>,
) -> Result<Found, SearchError> {
    let started = Instant::now();
    let vocabulary = SearchVocabulary {
        categories: &state.settings.classify.categories,
        levels: &state.settings.classify.warning_levels,
        counties: &state.settings.counties,
    };
    let mut query = CaseQuery::parse(filters, &vocabulary).map_err(SearchError::Invalid)?;
    let open_counties = scope(state, actor, &mut query).await?;
    if query.caller_key.is_some() {
        let entry = AuditEntry {
            actor: actor.name.clone(),
            role: actor.role.as_str().to_string(),
            action: crate::archive::audit::TICKETS_SEARCH.to_string(),
            request_id,
            target: None,
            detail: query.audit_detail(),
        };
        state
            .archive
            .audit(&entry)
            .await
            .map_err(SearchError::Unaudited)?;
    }
    let open = state.store.search_open(&open_counties, &query).await?;
    let archived = if query.may_match_archived() {
        state
            .archive
            .search(&query)
            .await
            .map_err(SearchError::Archive)?
    } else {
        Vec::new()
    };
    let (from_redis, from_archive) = (open.hits.len(), archived.len());
    let page = merge(open.hits, &open.seen, archived, query.limit);
    tracing::debug!(
        counties = open_counties.len(),
        read_in_redis = open.read,
        from_redis,
        from_archive,
        listed = page.hits.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "tickets searched"
    );
    Ok(Found {
        page,
        read_in_redis: open.read,
    })
}

/// Narrows `query` to what `actor` may see, and returns the counties whose tickets in Redis are
/// searched: the one asked for (403 outside the caller's regions), else every county the
/// caller's regions cover (configured, and any still holding tickets in Redis). The archive is
/// limited to the same counties, except for a caller without region limits, who searches every
/// county the archive holds (including ones no longer configured).
async fn scope(
    state: &AppState,
    actor: &Principal,
    query: &mut CaseQuery,
) -> Result<Vec<String>, SearchError> {
    if actor.role == Role::Partner {
        query.sender = Some(actor.name.clone());
    }
    if let Some(asked) = query.counties.as_ref().and_then(|c| c.first()) {
        if !actor.covers(asked) {
            return Err(SearchError::Forbidden(format!(
                "county {asked} is outside the regions of `{}`",
                actor.name
            )));
        }
        return Ok(vec![asked.clone()]);
    }
    let covered: Vec<String> = state
        .all_counties()
        .await?
        .into_iter()
        .filter(|c| actor.covers(c))
        .collect();
    if !actor.regions.is_empty() {
        query.counties = Some(covered.clone());
    }
    Ok(covered)
}
