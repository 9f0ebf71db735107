//! The one place errors become HTTP: every failure is an RFC 9457 `application/problem+json`
//! body with `type`, `title`, `status`, `detail` and, for validation, `errors: [{field, message}]`.
//! Internal error text is logged here and never returned.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::AuthError;
use crate::handling::HandlingError;
use crate::lifecycle::Refusal;
use crate::queues::StoreError;
use crate::state::AppState;

/// One invalid field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// Path of the field, e.g. `region.code` or `tickets[3].text`.
    pub field: String,
    /// What is wrong and what would be accepted.
    pub message: String,
}

impl FieldError {
    /// Shorthand used by validation.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The problem+json body.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem (relative, documented in the README).
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind.
    pub title: String,
    /// The HTTP status, repeated for clients that lose headers.
    pub status: u16,
    /// What happened this time.
    pub detail: String,
    /// The fields at fault, for validation problems.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// The id of the existing ticket, for conflicts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket_id: Option<String>,
}

/// Every way a request can fail; each variant documents its status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body is not JSON, or a field has the wrong JSON type.
    #[error("malformed request: {detail}")]
    Malformed {
        /// What the parser said.
        detail: String,
        /// The field, when the parser knew it.
        field: Option<String>,
    },
    /// 422: well-formed JSON whose values are not acceptable.
    #[error("invalid request")]
    Invalid(Vec<FieldError>),
    /// 413: larger than `http.body_limit_bytes` (or `intake.batch_max` items).
    #[error("request body too large")]
    TooLarge(String),
    /// 415: not `application/json`.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// 401: no token or an unknown one.
    #[error("unauthenticated: {0}")]
    Unauthenticated(AuthError),
    /// 403: known caller, wrong role or region.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// 429 with `Retry-After`: the caller is over its rate (`[auth.rate_limit]`).
    #[error("rate limited: {principal}")]
    RateLimited {
        /// The caller's configured name.
        principal: String,
        /// Whole seconds until a request will be let through again (at least 1).
        retry_after: u64,
    },
    /// 429 with `Retry-After`: the caller already holds its most event streams
    /// (`auth.rate_limit.max_event_streams`).
    #[error("too many event streams: {principal}")]
    TooManyStreams {
        /// The caller's configured name.
        principal: String,
        /// Its limit.
        limit: u32,
        /// Whole seconds to wait before trying again.
        retry_after: u64,
    },
    /// 408: the request body did not arrive within `http.body_read_timeout_seconds`.
    #[error("request body timeout")]
    BodyTimeout(String),
    /// 404: no such resource.
    #[error("not found: {0}")]
    NotFound(String),
    /// 405: the path exists with other methods.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409: the sender's (source, external_id) with different content, or for another county.
    #[error("conflict with ticket {id:?}")]
    Conflict {
        /// The ticket registered first (`None` while its first attempt is being stored).
        id: Option<String>,
        /// The county holding the key, when the request named another: `region.code` differs.
        county: Option<String>,
    },
    /// 409: the action does not fit the ticket's state (accepting a resolved ticket).
    #[error("state conflict: {0}")]
    State(String),
    /// 503 with `Retry-After`: Redis cannot be reached; nothing was written.
    #[error("storage unavailable: {source}")]
    Unavailable {
        /// The underlying failure (logged, not returned).
        source: StoreError,
        /// Seconds for `Retry-After`.
        retry_after: u64,
    },
    /// 503: a dependency other than Redis is not usable (a calendar without this year's data).
    #[error("not ready: {0}")]
    NotReady(String),
    /// 503 with `Retry-After`: the case archive does not answer, and it was needed: the ticket
    /// is not in Redis (so it would be there), or a privileged action's audit entry could not
    /// be written (so the action was not carried out); nothing was written.
    #[error("archive unavailable: {detail}")]
    ArchiveUnavailable {
        /// What failed (logged; the answer says what it means for the caller).
        detail: String,
        /// Seconds for `Retry-After`.
        retry_after: u64,
    },
    /// 503 with `Retry-After`: a search needs the case archive and it did not answer (never a
    /// partial list), or a search by phone could not be written to the audit log.
    #[error("search unavailable: {detail}")]
    SearchUnavailable {
        /// What failed (logged; the answer says what it means for the caller).
        detail: String,
        /// Whether it was the audit log of a search by phone.
        unaudited: bool,
        /// Seconds for `Retry-After`.
        retry_after: u64,
    },
    /// 500: a bug or an unexpected Redis reply (logged, not returned).
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Forbidden(why) => ApiError::Forbidden(why),
            other => ApiError::Unauthenticated(other),
        }
    }
}

/// Says what is known, and only that: a write Redis refused or never received was not made;
/// one it did not answer in time may have been.
fn unavailable_detail(source: &StoreError, retry_after: u64) -> String {
    use crate::queues::Unavailability;
    match source.unavailability() {
        Some(Unavailability::OutOfMemory) => format!(
            "Redis refuses writes: it is out of memory (maxmemory reached, noeviction); nothing was written; retry in {retry_after} s"
        ),
        Some(Unavailability::RefusesWrites) => format!(
            "Redis refuses writes (a read-only replica, or it cannot persist); nothing was written; retry in {retry_after} s"
        ),
        Some(Unavailability::NotReached) => format!(
            "the queue store cannot be reached; nothing was written; retry in {retry_after} s"
        ),
        Some(Unavailability::Unknown) | None => format!(
            "the queue store did not answer in time: the request may have been carried out; retry in {retry_after} s (a ticket sent again with the same source and external_id is found, never registered twice), or read the ticket back"
        ),
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Invalid(fields) => ApiError::Invalid(
                fields
                    .into_iter()
                    .map(|(f, m)| FieldError::new(f, m))
                    .collect(),
            ),
            Refusal::Forbidden(why) => ApiError::Forbidden(why),
            Refusal::NotFound(why) => ApiError::NotFound(why),
            Refusal::State(why) => ApiError::State(why),
            Refusal::Internal(why) => ApiError::Internal(why),
        }
    }
}

impl ApiError {
    /// Maps why an action was not carried out: the domain's refusal, or the store's failure
    /// with the configured `Retry-After`.
    pub fn from_handling(state: &AppState, e: HandlingError) -> ApiError {
        match e {
            HandlingError::Refused(r) => r.into(),
            HandlingError::Store(e) => {
                ApiError::from_store(e, state.settings.redis.retry_after_seconds)
            }
            HandlingError::Archive(e) => ApiError::from_archive(e, state),
        }
    }

    /// Maps a failure of the case archive: unreachable is a 503 saying nothing was written; a
    /// refused statement or a damaged case is a 500 (logged).
    pub fn from_archive(e: crate::archive::ArchiveError, state: &AppState) -> ApiError {
        match e {
            crate::archive::ArchiveError::Unavailable(detail) => ApiError::ArchiveUnavailable {
                detail,
                retry_after: state.settings.redis.retry_after_seconds,
            },
            other => ApiError::Internal(other.to_string()),
        }
    }

    /// Maps a store failure; `retry_after` comes from `redis.retry_after_seconds`.
    pub fn from_store(e: StoreError, retry_after: u64) -> ApiError {
        if let Some(cause) = e.refusal_cause() {
            crate::metrics::redis_write_refused(cause);
        }
        match e {
            StoreError::Unavailable(_) => ApiError::Unavailable {
                source: e,
                retry_after,
            },
            other => ApiError::Internal(other.to_string()),
        }
    }

    /// The status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Malformed { .. } => StatusCode::BAD_REQUEST,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::RateLimited { .. } | ApiError::TooManyStreams { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } | ApiError::State(_) => StatusCode::CONFLICT,
            ApiError::Unavailable { .. }
            | ApiError::NotReady(_)
            | ApiError::ArchiveUnavailable { .. }
            | ApiError::SearchUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem body; also used for per-item results of a batch.
    pub fn problem(&self) -> Problem {
        let (kind, title, detail, errors, ticket_id) = match self {
            ApiError::Malformed { detail, field } => (
                "malformed-request",
                "Malformed request",
                detail.clone(),
                field
                    .iter()
                    .map(|f| FieldError::new(f.clone(), detail.clone()))
                    .collect(),
                None,
            ),
            ApiError::Invalid(errors) => (
                "validation-error",
                "Invalid request",
                format!(
                    "{} field(s) are invalid: {}",
                    errors.len(),
                    errors
                        .iter()
                        .map(|e| e.field.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                errors.clone(),
                None,
            ),
            ApiError::TooLarge(detail) => (
                "payload-too-large",
                "Request too large",
                detail.clone(),
                vec![],
                None,
            ),
            ApiError::UnsupportedMediaType => (
                "unsupported-media-type",
                "Unsupported media type",
                "send `Content-Type: application/json`".to_string(),
                vec![],
                None,
            ),
            ApiError::Unauthenticated(AuthError::Signature(e)) => (
                "unauthenticated",
                "Authentication required",
                e.to_string(),
                vec![],
                None,
            ),
            ApiError::Unauthenticated(e) => (
                "unauthenticated",
                "Authentication required",
                format!(
                    "{e}: send `Authorization: Bearer <token>`, or sign the request (x-hotline-key, x-hotline-timestamp, x-hotline-signature)"
                ),
                vec![],
                None,
            ),
            ApiError::Forbidden(why) => ("forbidden", "Forbidden", why.clone(), vec![], None),
            ApiError::RateLimited { retry_after, .. } => (
                "rate-limited",
                "Too many requests",
                format!(
                    "this caller is over its request rate ([auth.rate_limit]); retry in {retry_after} s"
                ),
                vec![],
                None,
            ),
            ApiError::TooManyStreams {
                principal,
                limit,
                retry_after,
            } => (
                "too-many-streams",
                "Too many open event streams",
                format!(
                    "`{principal}` already has {limit} event stream(s) open (auth.rate_limit.max_event_streams); close one, or retry in {retry_after} s"
                ),
                vec![],
                None,
            ),
            ApiError::BodyTimeout(detail) => (
                "request-timeout",
                "Request body too slow",
                detail.clone(),
                vec![],
                None,
            ),
            ApiError::NotFound(what) => ("not-found", "Not found", what.clone(), vec![], None),
            ApiError::MethodNotAllowed => (
                "method-not-allowed",
                "Method not allowed",
                "this path does not accept that method".to_string(),
                vec![],
                None,
            ),
            ApiError::Conflict { id, county } => {
                let ticket = match id {
                    Some(id) => format!("ticket {id}"),
                    None => "a ticket still being registered (or an attempt that was never acknowledged)".to_string(),
                };
                match county {
                    Some(county) => (
                        "idempotency-conflict",
                        "Conflicting retry",
                        format!(
                            "(source, external_id) was already used by this sender for {ticket} in county {county}; one key is one ticket in one county"
                        ),
                        vec![FieldError::new(
                            "region.code",
                            format!(
                                "the key is registered in county {county}; a retry must name the same region.code (or use a new external_id)"
                            ),
                        )],
                        id.clone(),
                    ),
                    None => (
                        "idempotency-conflict",
                        "Conflicting retry",
                        format!(
                            "(source, external_id) was already used by this sender for {ticket} with different content"
                        ),
                        vec![],
                        id.clone(),
                    ),
                }
            }
            ApiError::State(detail) => (
                "state-conflict",
                "Not allowed in this state",
                detail.clone(),
                vec![],
                None,
            ),
            ApiError::Unavailable {
                source,
                retry_after,
            } => (
                "storage-unavailable",
                "Service unavailable",
                unavailable_detail(source, *retry_after),
                vec![],
                None,
            ),
            ApiError::NotReady(detail) => ("not-ready", "Not ready", detail.clone(), vec![], None),
            ApiError::ArchiveUnavailable { retry_after, .. } => (
                "archive-unavailable",
                "Case archive unavailable",
                format!(
                    "the case archive, which keeps ended tickets and the audit log of privileged actions, did not answer: a ticket no longer among the open ones cannot be reached, and no privileged action is carried out unrecorded; nothing was written; try again in {retry_after} s"
                ),
                vec![],
                None,
            ),
            ApiError::SearchUnavailable {
                unaudited,
                retry_after,
                ..
            } => (
                "archive-unavailable",
                "Case archive unavailable",
                if *unaudited {
                    format!(
                        "a search by phone is a search of personal data and must be written to the audit log first, which the case archive did not accept; nothing was searched; try again in {retry_after} s"
                    )
                } else {
                    format!(
                        "the search needs the case archive, which keeps ended tickets, and it did not answer; no partial list is given; try again in {retry_after} s"
                    )
                },
                vec![],
                None,
            ),
            ApiError::Internal(_) => (
                "internal-error",
                "Internal error",
                "an unexpected error occurred; it has been logged".to_string(),
                vec![],
                None,
            ),
        };
        Problem {
            kind: format!("/problems/{kind}"),
            title: title.to_string(),
            status: self.status().as_u16(),
            detail,
            errors,
            ticket_id,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(_) => tracing::error!(error = %self, "request failed"),
            ApiError::Unavailable { .. }
            | ApiError::ArchiveUnavailable { .. }
            | ApiError::SearchUnavailable { .. } => {
                tracing::warn!(error = %self, "request refused")
            }
            _ => tracing::debug!(error = %self, "request rejected"),
        }
        let status = self.status();
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match &self {
            ApiError::Unavailable { retry_after, .. }
            | ApiError::ArchiveUnavailable { retry_after, .. }
            | ApiError::SearchUnavailable { retry_after, .. }
            | ApiError::RateLimited { retry_after, .. }
            | ApiError::TooManyStreams { retry_after, .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            ApiError::Unauthenticated(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"hotline-gateway\""),
                );
            }
            _ => {}
        }
        response
    }
}
