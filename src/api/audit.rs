//! The audit log at the HTTP edge: how a privileged handler records what it does ([`Audit`]:
//! the intent before, the outcome after), and `GET /v1/admin/audit`, where admins read it.
//!
//! The order is the point: the intent is committed before the action is carried out, and the
//! action is refused (503 `archive-unavailable`) when it cannot be, so no privileged action
//! goes unrecorded; the outcome is appended afterwards, best effort (logged when it cannot be).

use std::sync::Arc;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::api::Authenticated;
use crate::api::problem::{ApiError, FieldError};
use crate::archive::AuditEntry;
use crate::archive::audit::{ACTIONS, AuditQuery, AuditRecord};
use crate::auth::{Principal, Role};
use crate::state::AppState;

/// The longest request id kept in an entry: the router makes a UUID, but a caller may send its
/// own `x-request-id`, and the log should not store whatever it sends.
const REQUEST_ID_MAX: usize = 128;

/// The request's `x-request-id` (the router sets one on every request that comes without), so an
/// entry can be found in the logs.
#[derive(Debug, Clone, Default)]
pub struct RequestId(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(RequestId(
            parts
                .headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(|v| v.chars().take(REQUEST_ID_MAX).collect()),
        ))
    }
}

/// A privileged action whose intent is in the audit log; [`Audit::finish`] appends its outcome.
#[must_use = "a privileged action's outcome must be appended with `finish`"]
pub struct Audit<'a> {
    state: &'a AppState,
    entry: AuditEntry,
    intent: i64,
}

impl<'a> Audit<'a> {
    /// Records that `who` is about to take `action` (one of `archive::audit::ACTIONS`) on
    /// `target`, with `detail` (never a secret). Call it after the request is checked and
    /// before anything is written; an archive that does not take the entry refuses the action.
    pub async fn begin(
        state: &'a AppState,
        who: &Principal,
        request: &RequestId,
        action: &str,
        target: Option<&str>,
        detail: Value,
    ) -> Result<Audit<'a>, ApiError> {
        let entry = AuditEntry {
            actor: who.name.clone(),
            role: who.role.as_str().to_string(),
            action: action.to_string(),
            request_id: request.0.clone(),
            target: target.map(String::from),
            detail,
        };
        let intent = state
            .archive
            .audit(&entry)
            .await
            .map_err(|e| ApiError::from_archive(e, state))?;
        Ok(Audit {
            state,
            entry,
            intent,
        })
    }

    /// Appends the outcome of the action begun: `done` with what `done` says of the result, or
    /// `refused` (4xx) / `failed` (5xx) with the status and problem type. Best effort: the
    /// action has happened (or not) whatever the log says now, so a failure is logged, not
    /// answered.
    pub async fn finish<T>(self, result: &Result<T, ApiError>, done: impl FnOnce(&T) -> Value) {
        let detail = match result {
            Ok(v) => done(v),
            Err(_) => json!({}),
        };
        self.finish_with(result, detail).await;
    }

    /// As [`Audit::finish`], with `detail` added to the outcome whether the action succeeded
    /// or not (what a partly done action did).
    pub async fn finish_with<T>(self, result: &Result<T, ApiError>, detail: Value) {
        let mut detail = match result {
            Ok(_) => detail,
            Err(e) => {
                let status = e.status();
                let mut failure = json!({
                    "outcome": if status.is_server_error() { "failed" } else { "refused" },
                    "status": status.as_u16(),
                    "problem": e.problem().kind,
                });
                if let (Value::Object(more), Some(map)) = (detail, failure.as_object_mut()) {
                    for (k, v) in more {
                        map.entry(k).or_insert(v);
                    }
                }
                failure
            }
        };
        if !detail.is_object() {
            detail = json!({});
        }
        if let Value::Object(map) = &mut detail {
            map.entry("outcome").or_insert_with(|| json!("done"));
            map.insert("intent".into(), json!(self.intent));
        }
        let entry = AuditEntry {
            detail,
            ..self.entry
        };
        if let Err(e) = self.state.archive.audit(&entry).await {
            tracing::warn!(
                action = %entry.action,
                intent = self.intent,
                error = %e,
                "the outcome of a privileged action was not appended to the audit log"
            );
        }
    }
}

/// Query of `GET /v1/admin/audit`; every filter given must match.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// Only this actor (token name).
    pub actor: Option<String>,
    /// Only this action (`agent.define`, `agent.delete`, `agent.presence`, `admin.reload`,
    /// `callbacks.replay`, `ticket.raise`, `ticket.reassign`, `tickets.search`,
    /// `retention.erase`).
    pub action: Option<String>,
    /// Only this target (an agent id, a ticket id, a partner).
    pub target: Option<String>,
    /// Written at or after this (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Written before this (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// Entries per page, 1 to 500; default 100.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page: the entries older than it.
    pub cursor: Option<String>,
}

/// One entry of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    /// Its place in the log (newer entries have higher numbers).
    pub seq: i64,
    /// When it was written.
    pub at: DateTime<Utc>,
    /// Who: the caller's token name (`SIGHUP` for a reload by signal, `gateway` for the
    /// retention job).
    pub actor: String,
    /// The caller's role.
    pub role: String,
    /// What: a dotted name from the closed set (see README "Audit log").
    pub action: String,
    /// The request's `x-request-id`.
    pub request_id: Option<String>,
    /// What it was done to: an agent id, a ticket id, a partner.
    pub target: Option<String>,
    /// What was asked or changed; an outcome entry carries `outcome` (`done`, `refused`,
    /// `failed`) and `intent` (the `seq` of the entry written before the action).
    #[schema(value_type = Object)]
    pub detail: Value,
}

/// `GET /v1/admin/audit` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// Newest first.
    pub entries: Vec<AuditView>,
    /// Send as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

const LIMIT_DEFAULT: u32 = 100;
const LIMIT_MAX: u32 = 500;

fn view(r: AuditRecord) -> AuditView {
    AuditView {
        seq: r.seq,
        at: r.at,
        actor: r.entry.actor,
        role: r.entry.role,
        action: r.entry.action,
        request_id: r.entry.request_id,
        target: r.entry.target,
        detail: r.entry.detail,
    }
}

/// The query for `params`, or every field at fault.
fn query_of(params: AuditParams) -> Result<AuditQuery, ApiError> {
    let mut errors = Vec::new();
    let limit = params.limit.unwrap_or(LIMIT_DEFAULT);
    if !(1..=LIMIT_MAX).contains(&limit) {
        errors.push(FieldError::new("limit", format!("1 to {LIMIT_MAX}")));
    }
    if let Some(a) = &params.action
        && !ACTIONS.contains(&a.as_str())
    {
        errors.push(FieldError::new(
            "action",
            format!(
                "`{a}` is not an audit action; one of {}",
                ACTIONS.join(", ")
            ),
        ));
    }
    let before_seq = match params.cursor.as_deref().map(str::parse::<i64>) {
        None => None,
        Some(Ok(seq)) if seq > 0 => Some(seq),
        Some(_) => {
            errors.push(FieldError::new(
                "cursor",
                "the `next_cursor` of a previous page",
            ));
            None
        }
    };
    if let (Some(from), Some(to)) = (params.from, params.to)
        && from >= to
    {
        errors.push(FieldError::new("to", "must be after `from`"));
    }
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    Ok(AuditQuery {
        actor: params.actor,
        action: params.action,
        target: params.target,
        from: params.from,
        to: params.to,
        before_seq,
        // One more than asked, to know whether another page follows.
        limit: i64::from(limit) + 1,
    })
}

/// The audit log of privileged actions, newest first, filtered and paged (admins without
/// regions only: the log covers every county). Each action has two entries, its intent
/// (written before it was carried out) and its outcome.
#[utoipa::path(
    get, path = "/v1/admin/audit", tag = "ops",
    params(AuditParams),
    responses(
        (status = 200, description = "A page of entries, newest first", body = AuditPage),
        (status = 400, description = "A malformed query parameter (`from`, `to` not RFC 3339)", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or unknown token", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin, or an admin limited to some regions", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid values (`limit`, `action`, `cursor`, `to`)", body = crate::api::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "The case archive, which keeps the log, did not answer", body = crate::api::problem::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_audit(
    State(state): State<Arc<AppState>>,
    Authenticated(principal): Authenticated,
    crate::api::json::QueryParams(params): crate::api::json::QueryParams<AuditParams>,
) -> Result<axum::Json<AuditPage>, ApiError> {
    principal.require(&[Role::Admin])?;
    if !principal.regions.is_empty() {
        return Err(ApiError::Forbidden(format!(
            "the audit log covers every county: it needs an admin without regions, and `{}` is limited to {}",
            principal.name,
            principal.regions.join(", ")
        )));
    }
    let query = query_of(params)?;
    let mut records = state
        .archive
        .audit_entries(&query)
        .await
        .map_err(|e| ApiError::from_archive(e, &state))?;
    let more = i64::try_from(records.len()).unwrap_or(i64::MAX) >= query.limit;
    if more {
        records.pop();
    }
    let next_cursor = more
        .then(|| records.last().map(|r| r.seq.to_string()))
        .flatten();
    Ok(axum::Json(AuditPage {
        entries: records.into_iter().map(view).collect(),
        next_cursor,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> AuditParams {
        AuditParams {
            actor: None,
            action: None,
            target: None,
            from: None,
            to: None,
            limit: None,
            cursor: None,
        }
    }

    #[test]
    fn a_page_asks_for_one_more_than_the_limit_and_below_the_cursor() {
        let q = query_of(AuditParams {
            cursor: Some("42".into()),
            limit: Some(10),
            action: Some("agent.define".into()),
            ..params()
        })
        .expect("valid");
        assert_eq!((q.before_seq, q.limit), (Some(42), 11));
        assert_eq!(query_of(params()).expect("valid").limit, 101);
    }

    #[test]
    fn every_bad_parameter_is_named() {
        let Err(ApiError::Invalid(errors)) = query_of(AuditParams {
            limit: Some(0),
            action: Some("agent.redefine".into()),
            cursor: Some("x".into()),
            from: Some(DateTime::<Utc>::UNIX_EPOCH),
            to: Some(DateTime::<Utc>::UNIX_EPOCH),
            ..params()
        }) else {
            panic!("accepted")
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["limit", "action", "cursor", "to"]);
    }
}
