//! The top of the HTTP side: every route, the OpenAPI document generated from the handlers'
//! annotations, and the layers every request passes (request ids, tracing span with the ticket
//! id, latency, body limit, signature verification, problem+json for what fails in a layer).
//! Nothing imports this module but start-up.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderName;
use axum::middleware;
use axum::routing::{get, post};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;

use axum::extract::Request;
use axum::response::IntoResponse;

use crate::api::problem::ApiError;
use crate::api::{problem_for_layer_errors, record_latency, redis_budget, verify_signature};
use crate::state::AppState;

/// The OpenAPI document, generated from the handlers' annotations.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "hotline-gateway",
        description = "Receives, classifies and routes 12345 / 110 / 12348 hotline tickets to lawyers' and mediators' queues. Errors are application/problem+json."
    ),
    paths(
        crate::api::tickets::create_ticket,
        crate::api::tickets::create_batch,
        crate::api::tickets::get_ticket,
        crate::api::tickets::get_history,
        crate::api::search::search,
        crate::api::actions::act,
        crate::api::agents::put_agent,
        crate::api::agents::list_agents,
        crate::api::agents::delete_agent,
        crate::api::agents::claim,
        crate::api::agents::offers,
        crate::api::live::get_live,
        crate::api::live::heartbeat,
        crate::api::ops::reload,
        crate::api::ops::reload_progress,
        crate::api::callbacks::list,
        crate::api::callbacks::replay,
        crate::api::audit::list_audit,
        crate::api::ops::queues,
        crate::api::events::events,
        crate::api::supervision::risk,
        crate::api::supervision::today,
        crate::api::supervision::config,
        crate::api::ops::healthz,
        crate::api::ops::readyz,
        crate::api::ops::metrics,
        openapi,
    ),
    components(schemas(
        crate::lifecycle::Action,
        crate::api::callbacks::PartnerCallback,
        crate::api::callbacks::CallbackEvent
    )),
    modifiers(&BearerAuth, &PartnerSignature, &CommonProblems, &PartnerCallbacks, &Links, &OptionalBodies),
    tags(
        (name = "intake", description = "Tickets in"),
        (name = "search", description = "Finding open and archived tickets"),
        (name = "lifecycle", description = "Accept, contact, pause, resolve, follow up, transfer, escalate"),
        (name = "agents", description = "Lawyers, mediators and triage operators; claims and leases"),
        (name = "live", description = "Live transfer while the caller waits: reservations, estimates, presence"),
        (name = "queues", description = "Queue state"),
        (name = "ops", description = "Health, readiness, metrics"),
        (name = "callbacks", description = "Callbacks to partners (事件反馈): what the gateway POSTs to a partner's `callback_url` (the `webhooks`), and their outboxes")
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The problems any authenticated operation can answer, declared once instead of on every
/// handler: each is a problem+json, and an operation keeps its own, more specific, description
/// where it has one.
struct CommonProblems;

impl utoipa::Modify for CommonProblems {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
        const COMMON: [(&str, &str); 8] = [
            (
                "400",
                "Malformed: not JSON, a wrong type, or a bad query parameter",
            ),
            ("401", "No or unknown credentials, or a refused signature"),
            ("403", "Wrong role, or outside the caller's regions"),
            ("413", "Body over `http.body_limit_bytes`"),
            ("415", "A body that is not `application/json`"),
            ("422", "Invalid values; every field named"),
            ("429", "Over the caller's rate; see `Retry-After`"),
            (
                "503",
                "Redis unreachable; nothing written; see `Retry-After`",
            ),
        ];
        // An agent is its definition (which refuses unknown fields as a request body) flattened
        // with its live figures: as a response, the definition part must allow the figures.
        if let Some(schema) = openapi
            .components
            .as_mut()
            .and_then(|c| c.schemas.get_mut("Agent"))
            && let Ok(mut v) = serde_json::to_value(&*schema)
        {
            fn allow_more(v: &mut serde_json::Value) {
                match v {
                    serde_json::Value::Object(m) => {
                        m.remove("additionalProperties");
                        m.values_mut().for_each(allow_more);
                    }
                    serde_json::Value::Array(a) => a.iter_mut().for_each(allow_more),
                    _ => {}
                }
            }
            allow_more(&mut v);
            if let Ok(relaxed) = serde_json::from_value(v) {
                *schema = relaxed;
            }
        }
        for item in openapi.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                if op.security.as_ref().is_none_or(Vec::is_empty) {
                    continue;
                }
                let with_body = op.request_body.is_some().then_some((
                    "408",
                    "The body did not arrive within `http.body_read_timeout_seconds` of the headers",
                ));
                for (code, description) in COMMON.into_iter().chain(with_body) {
                    op.responses
                        .responses
                        .entry(code.to_string())
                        .or_insert_with(|| {
                            RefOr::T(
                                ResponseBuilder::new()
                                    .description(description)
                                    .content(
                                        "application/problem+json",
                                        ContentBuilder::new()
                                            .schema(Some(RefOr::Ref(Ref::from_schema_name(
                                                "Problem",
                                            ))))
                                            .build(),
                                    )
                                    .build(),
                            )
                        });
                }
            }
        }
    }
}

/// Declares signed requests as an alternative security scheme, and 429 on the intake
/// endpoints; done here so the intake handlers' annotations stay as they are.
struct PartnerSignature;

impl utoipa::Modify for PartnerSignature {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
        use utoipa::openapi::{Ref, RefOr, ResponseBuilder};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "partner_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                crate::auth::SIGNATURE_HEADER,
                "Partner systems sign each request with their shared secret and send `x-hotline-key` (the partner's key_id), `x-hotline-timestamp` (Unix seconds, within auth.signature_window_seconds of the gateway's clock), `x-hotline-signature-version: 2`, optionally `x-hotline-nonce` (1 to 64 of A-Z a-z 0-9 - _ . ~; recommended: a fresh one per request and per retry) and `x-hotline-signature`: the lowercase hex HMAC-SHA256 of the seven lines `HOTLINE-HMAC-SHA256-V2`, the method (upper case), the path as sent, the canonical query (pairs percent-decoded, re-encoded with upper-case escapes for all but A-Z a-z 0-9 - . _ ~, sorted, joined by &; empty without a query), the timestamp, the nonce (empty without one) and the lowercase hex SHA-256 of the body (of nothing for a GET), joined by \\n. A partner entry may also allow the first form (`signature_versions = [\"v1\", \"v2\"]`; no version header): HMAC of `timestamp + \"\\n\" + body`, or `timestamp + \"\\n\" + nonce + \"\\n\" + body`, which covers neither method, path nor query. Each signature is accepted once, except on POST /v1/tickets and POST /v1/tickets:batch, which are idempotent by (source, external_id) in the sender's key space: a repeated signature there gets the ticket already registered (200). 401 problem+json says why a signature was refused.",
            ))),
        );
        for (path, is_get) in [
            ("/v1/tickets", false),
            ("/v1/tickets", true),
            ("/v1/tickets:batch", false),
            ("/v1/events", true),
        ] {
            let Some(item) = openapi.paths.paths.get_mut(path) else {
                continue;
            };
            let Some(op) = (if is_get {
                item.get.as_mut()
            } else {
                item.post.as_mut()
            }) else {
                continue;
            };
            op.responses.responses.entry("429".to_string()).or_insert(
                RefOr::T(
                    ResponseBuilder::new()
                        .description("Over the caller's rate ([auth.rate_limit]): problem+json `/problems/rate-limited` with `Retry-After` (whole seconds)")
                        .content(
                            "application/problem+json",
                            utoipa::openapi::ContentBuilder::new()
                                .schema(Some(RefOr::Ref(Ref::from_schema_name("Problem"))))
                                .build(),
                        )
                        .build(),
                ),
            );
            let security = op.security.get_or_insert_with(Vec::new);
            if security.is_empty() {
                security.push(SecurityRequirement::new("bearer", Vec::<String>::new()));
            }
            security.push(SecurityRequirement::new(
                "partner_signature",
                Vec::<String>::new(),
            ));
        }
    }
}

/// Partner callbacks (`src/callbacks/`) as OpenAPI 3.1 `webhooks`: one POST per event a partner
/// may subscribe to, signed like the partner's own requests, with an example of each. utoipa 5
/// has no field for `webhooks`, so the object goes in the document's top-level map (its
/// `extensions`, which serialise flattened and unprefixed when inserted directly).
struct PartnerCallbacks;

/// A callback event: its name, what it means, and named examples of what varies in its body
/// (`status`, `details`).
type CallbackDoc = (
    &'static str,
    &'static str,
    Vec<(&'static str, serde_json::Value)>,
);

impl PartnerCallbacks {
    /// Every event a partner may subscribe to, documented.
    fn events() -> [CallbackDoc; 6] {
        use serde_json::json;
        let queue = "mediation.320831.labour";
        [
            (
                "ticket.accepted",
                "The ticket is registered here (受理) and queued.",
                vec![(
                    "queued",
                    json!({"status": "queued", "details": {"queue": queue}}),
                )],
            ),
            (
                "ticket.assigned",
                "An agent accepted the ticket (`details.agent`).",
                vec![(
                    "accepted",
                    json!({"status": "accepted", "details": {"agent": "m-320831-01", "queue": queue}}),
                )],
            ),
            (
                "ticket.status_changed",
                "Any other status change: transfer, escalation, first contact, pause, reopen, withdrawal, … Subscribing to it also brings every named event.",
                vec![
                    (
                        "first_contact",
                        json!({"status": "in_progress", "details": {"queue": queue}}),
                    ),
                    (
                        "withdrawn",
                        json!({"status": "withdrawn", "details": {"queue": queue, "reason": "来电人已自行解决"}}),
                    ),
                ],
            ),
            (
                "ticket.resolved",
                "Resolved, with `outcome` and `summary`.",
                vec![(
                    "mediated",
                    json!({"status": "resolved", "details": {"outcome": "mediated", "summary": "双方达成协议", "agent": "m-320831-01", "queue": queue}}),
                )],
            ),
            (
                "ticket.returned",
                "Sent back to the sender (退单) with `reason`, or classified out of scope at registration.",
                vec![(
                    "out_of_scope",
                    json!({"status": "returned", "details": {"queue": queue, "reason": "属于住建部门职责，退回12345"}}),
                )],
            ),
            (
                "sla.breached",
                "A clock breached (`details.clock`, its deadline `due_ms` and the breach ladder's `actions`); the status is unchanged, so absent.",
                vec![(
                    "accept_clock",
                    json!({"details": {"clock": "accept", "due_ms": "1763956800000", "actions": "raise_band,notify", "queue": queue}}),
                )],
            ),
        ]
    }
}

impl utoipa::Modify for PartnerCallbacks {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use serde_json::json;
        let header = |name: &str, description: &str, schema: serde_json::Value| json!({"name": name, "in": "header", "required": true, "description": description, "schema": schema});
        let parameters = json!([
            header(
                crate::auth::KEY_HEADER,
                "The partner's `key_id` (`[[auth.partners]]`): which shared secret signed the callback",
                json!({"type": "string"})
            ),
            header(
                crate::auth::TIMESTAMP_HEADER,
                "When the gateway signed it, whole Unix seconds",
                json!({"type": "string", "pattern": "^[0-9]+$"})
            ),
            header(
                crate::auth::SIGNATURE_HEADER,
                "Lowercase hex HMAC-SHA256 over `timestamp + \"\\n\" + body` (the exact bytes) with the partner's shared secret, as the partner signs its own requests",
                json!({"type": "string", "pattern": "^[0-9a-f]{64}$"})
            ),
            header(
                "idempotency-key",
                "The `delivery_id`: the same on every retry and replay",
                json!({"type": "string"})
            ),
        ]);
        let mut webhooks = serde_json::Map::new();
        for (n, (event, meaning, examples)) in Self::events().into_iter().enumerate() {
            let examples: serde_json::Map<String, serde_json::Value> = examples
                .into_iter()
                .enumerate()
                .map(|(i, (name, v))| {
                    let mut body = json!({
                        "delivery_id": format!("320831:176395200012{n}-{i}"),
                        "event": event,
                        "ticket_id": "320831-00000042",
                        "external_id": "SQ-20261124-0001",
                        "source": "12345",
                        "occurred_at": "2026-11-24T02:40:00.123+00:00",
                    });
                    if let (Some(body), Some(extra)) = (body.as_object_mut(), v.as_object()) {
                        body.extend(extra.clone());
                    }
                    (name.to_string(), json!({"value": body}))
                })
                .collect();
            webhooks.insert(
                event.to_string(),
                json!({"post": {
                    "tags": ["callbacks"],
                    "operationId": format!("callback_{}", event.replace('.', "_")),
                    "summary": format!("`{event}` to the partner's callback_url"),
                    "description": format!("{meaning} Sent to partners that subscribe to it (`callback_events`), one POST per event, in order per ticket, at least once: any answer but 2xx, a timeout (`callbacks.timeout_ms`) or a refused connection is retried with exponential backoff and full jitter, and after `callbacks.max_attempts` the event goes to the dead letters (`GET /v1/admin/callbacks`, replayed by `POST /v1/admin/callbacks/replay`). Dedupe on `delivery_id`."),
                    "parameters": parameters,
                    "requestBody": {
                        "required": true,
                        "content": {"application/json": {
                            "schema": {"$ref": "#/components/schemas/PartnerCallback"},
                            "examples": examples,
                        }},
                    },
                    "responses": {
                        "2XX": {"description": "Delivered: the next event of the outbox follows"},
                        "default": {"description": "Not delivered: retried later, the outbox waits (in order)"},
                    },
                }}),
            );
        }
        openapi
            .extensions
            .get_or_insert_with(Default::default)
            .insert("webhooks".to_string(), serde_json::Value::Object(webhooks));
    }
}

/// Bodies that may be left out altogether (an action without details, a plain heartbeat): not
/// required, but when sent, a JSON object (JSON `null` is no object, and is refused).
struct OptionalBodies;

impl utoipa::Modify for OptionalBodies {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::Required;
        for path in ["/v1/tickets/{id}/{action}", "/v1/agents/{id}/heartbeat"] {
            if let Some(body) = openapi
                .paths
                .paths
                .get_mut(path)
                .and_then(|item| item.post.as_mut())
                .and_then(|op| op.request_body.as_mut())
            {
                body.required = Some(Required::False);
            }
        }
    }
}

/// OpenAPI links: where the id a response carries can be used next (a new ticket is read, its
/// history and live transfer looked at, and acted on; a defined agent gets heartbeats and can be
/// deleted). Clients and stateful fuzzers (schemathesis) follow them. utoipa 5's `Link` writes
/// `operation_id` instead of `operationId` (an invalid document), so each response's `links`
/// object is written as JSON into its top-level map (`extensions`, flattened unprefixed when
/// inserted directly), like the `webhooks`.
struct Links;

/// Links of one operation's answers: path, method, the statuses that carry them, and per link
/// its name, the target operation and where its `id` comes from.
type LinksFrom = (
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [(&'static str, &'static str, &'static str)],
);

impl utoipa::Modify for Links {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::RefOr;
        const TICKET: &str = "$response.body#/id";
        const AGENT: &str = "$request.path.id";
        const LINKS: [LinksFrom; 3] = [
            (
                "/v1/tickets",
                "post",
                &["201", "200"],
                &[
                    ("ReadTicket", "get_ticket", TICKET),
                    ("ReadHistory", "get_history", TICKET),
                    ("ReadLive", "get_live", TICKET),
                    ("ActOnTicket", "act", TICKET),
                ],
            ),
            (
                "/v1/tickets/{id}",
                "get",
                &["200"],
                &[("ActOnTicket", "act", TICKET)],
            ),
            (
                "/v1/agents/{id}",
                "put",
                &["200"],
                &[
                    ("Heartbeat", "heartbeat", AGENT),
                    ("DeleteAgent", "delete_agent", AGENT),
                ],
            ),
        ];
        for (path, method, statuses, targets) in LINKS {
            let Some(item) = openapi.paths.paths.get_mut(path) else {
                continue;
            };
            let op = match method {
                "get" => item.get.as_mut(),
                "put" => item.put.as_mut(),
                _ => item.post.as_mut(),
            };
            let Some(op) = op else { continue };
            for status in statuses {
                let Some(RefOr::T(response)) = op.responses.responses.get_mut(*status) else {
                    continue;
                };
                let object: serde_json::Map<String, serde_json::Value> = targets
                    .iter()
                    .map(|(name, operation_id, id)| {
                        let link = serde_json::json!({
                            "operationId": operation_id,
                            "parameters": {"id": id},
                            "description": format!("`id` of `{operation_id}` is `{id}`"),
                        });
                        ((*name).to_string(), link)
                    })
                    .collect();
                response
                    .extensions
                    .get_or_insert_with(Default::default)
                    .insert("links".to_string(), serde_json::Value::Object(object));
            }
        }
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Builds the complete HTTP application.
pub fn app(state: Arc<AppState>) -> Router {
    let body_limit = state.settings.http.body_limit_bytes;
    Router::new()
        .route(
            "/v1/tickets",
            post(crate::api::tickets::create_ticket).get(crate::api::search::search),
        )
        .route("/v1/tickets:batch", post(crate::api::tickets::create_batch))
        .route("/v1/tickets/{id}", get(crate::api::tickets::get_ticket))
        .route("/v1/tickets/{id}/live", get(crate::api::live::get_live))
        .route(
            "/v1/tickets/{id}/history",
            get(crate::api::tickets::get_history),
        )
        .route("/v1/tickets/{id}/{action}", post(crate::api::actions::act))
        .route("/v1/agents", get(crate::api::agents::list_agents))
        .route(
            "/v1/agents/{id}",
            axum::routing::put(crate::api::agents::put_agent)
                .delete(crate::api::agents::delete_agent),
        )
        .route("/v1/agents/{id}/claim", post(crate::api::agents::claim))
        .route("/v1/agents/{id}/offers", get(crate::api::agents::offers))
        .route(
            "/v1/agents/{id}/heartbeat",
            post(crate::api::live::heartbeat),
        )
        .route(
            "/v1/admin/reload",
            post(crate::api::ops::reload).get(crate::api::ops::reload_progress),
        )
        .route("/v1/admin/callbacks", get(crate::api::callbacks::list))
        .route(
            "/v1/admin/callbacks/replay",
            post(crate::api::callbacks::replay),
        )
        .route("/v1/admin/audit", get(crate::api::audit::list_audit))
        .route("/v1/queues", get(crate::api::ops::queues))
        .route("/v1/events", get(crate::api::events::events))
        .route("/v1/dashboard/risk", get(crate::api::supervision::risk))
        .route("/v1/dashboard/today", get(crate::api::supervision::today))
        .route("/v1/dashboard/config", get(crate::api::supervision::config))
        .route("/metrics", get(crate::api::ops::metrics))
        .route("/healthz", get(crate::api::ops::healthz))
        .route("/readyz", get(crate::api::ops::readyz))
        .route("/openapi.json", get(openapi))
        .merge(crate::api::dashboard::routes())
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            verify_signature,
        ))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            redis_budget,
        ))
        .layer(middleware::from_fn(record_latency))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(|req: &Request| {
                            let request_id = req
                                .headers()
                                .get(REQUEST_ID)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("-");
                            tracing::info_span!(
                                "request",
                                method = %req.method(),
                                path = %req.uri().path(),
                                request_id,
                                caller = tracing::field::Empty,
                                ticket_id = tracing::field::Empty,
                            )
                        })
                        .on_request(())
                        .on_response(
                            tower_http::trace::DefaultOnResponse::new().level(tracing::Level::INFO),
                        ),
                )
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(middleware::from_fn(problem_for_layer_errors))
                .layer(CatchPanicLayer::custom(|_panic| {
                    ApiError::Internal("handler panicked".into()).into_response()
                }))
                .layer(RequestBodyLimitLayer::new(body_limit))
                .layer(DefaultBodyLimit::max(body_limit)),
        )
        .with_state(state)
}

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(get, path = "/openapi.json", tag = "ops",
    responses((status = 200, description = "OpenAPI document", body = Object)))]
pub async fn openapi() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every parameter is where the path says: `in: path` exactly for the `{name}`s of the path
    /// template (each required), everything else in the query or a header. A query parameter
    /// declared `in: path` makes the document invalid and sends clients to the wrong place.
    #[test]
    fn parameters_are_in_the_path_only_when_the_template_names_them() {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("serialises");
        std::fs::write(
            "/tmp/openapi-edges.json",
            serde_json::to_string_pretty(&doc).unwrap(),
        )
        .ok();
        let mut wrong = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            let in_template: Vec<&str> = path
                .split('{')
                .skip(1)
                .filter_map(|s| s.split('}').next())
                .collect();
            for (method, op) in item.as_object().expect("path item") {
                let params = op["parameters"].as_array().cloned().unwrap_or_default();
                for p in &params {
                    let (name, place) = (
                        p["name"].as_str().unwrap_or(""),
                        p["in"].as_str().unwrap_or(""),
                    );
                    let templated = in_template.contains(&name);
                    if (place == "path") != templated || (place == "path" && p["required"] != true)
                    {
                        wrong.push(format!("{method} {path}: {name} in {place}"));
                    }
                }
                for name in &in_template {
                    if !params
                        .iter()
                        .any(|p| p["name"] == *name && p["in"] == "path")
                    {
                        wrong.push(format!("{method} {path}: {{{name}}} not declared"));
                    }
                }
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    /// Partner callbacks are described as OpenAPI 3.1 `webhooks`, one per event a partner may
    /// subscribe to, signed like inbound requests, each with an example that is what the
    /// gateway sends.
    #[test]
    fn partner_callbacks_are_described_as_webhooks_with_examples() {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("serialises");
        assert_eq!(doc["openapi"], "3.1.0");
        let schema = &doc["components"]["schemas"]["PartnerCallback"];
        let properties = schema["properties"].as_object().expect("properties");
        let required: Vec<&str> = schema["required"]
            .as_array()
            .expect("required")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        let fits = |body: &serde_json::Value| {
            let body = body.as_object().expect("an object");
            body.keys().all(|k| properties.contains_key(k))
                && required.iter().all(|k| body.contains_key(*k))
        };
        for event in crate::auth::CALLBACK_EVENTS {
            let post = &doc["webhooks"][event]["post"];
            assert!(post.is_object(), "no webhook for {event}");
            let headers: Vec<&str> = post["parameters"]
                .as_array()
                .expect("parameters")
                .iter()
                .filter(|p| p["in"] == "header" && p["required"] == true)
                .filter_map(|p| p["name"].as_str())
                .collect();
            for h in [
                crate::auth::KEY_HEADER,
                crate::auth::TIMESTAMP_HEADER,
                crate::auth::SIGNATURE_HEADER,
                "idempotency-key",
            ] {
                assert!(headers.contains(&h), "{event}: header {h} missing");
            }
            let content = &post["requestBody"]["content"]["application/json"];
            assert_eq!(
                content["schema"]["$ref"],
                "#/components/schemas/PartnerCallback"
            );
            let examples = content["examples"].as_object().expect("examples");
            assert!(!examples.is_empty(), "{event}: no example");
            for (name, example) in examples {
                let value = &example["value"];
                assert_eq!(value["event"], event, "{event}: example {name}");
                assert!(fits(value), "{event}: example {name} off the schema");
            }
            assert!(post["responses"]["2XX"].is_object(), "{event}");
        }
        // What the gateway really sends fits the schema too.
        let sent = crate::callbacks::CallbackBody {
            delivery_id: "320831:1763952000123-0".into(),
            event: "ticket.resolved",
            ticket_id: "320831-00000042",
            external_id: "SQ-20261124-0001".into(),
            source: "12345".into(),
            status: Some("resolved"),
            occurred_at: "2026-11-24T02:40:00.123+00:00".into(),
            details: [("outcome", "mediated")].into_iter().collect(),
        };
        assert!(fits(&serde_json::to_value(&sent).expect("json")));
    }

    /// The links a new ticket's and a new agent's answers carry lead to real operations, name
    /// their path parameters, and are written as OpenAPI spells them (`operationId`).
    #[test]
    fn links_lead_from_new_tickets_and_agents_to_real_operations() {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("serialises");
        let mut by_id = std::collections::BTreeMap::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for op in item.as_object().expect("path item").values() {
                if let Some(id) = op["operationId"].as_str() {
                    by_id.insert(id.to_string(), path.clone());
                }
            }
        }
        let links_of = |path: &str, method: &str, status: &str| {
            doc["paths"][path][method]["responses"][status]["links"]
                .as_object()
                .cloned()
                .unwrap_or_default()
        };
        let created = links_of("/v1/tickets", "post", "201");
        let targets: Vec<&str> = created
            .values()
            .filter_map(|l| l["operationId"].as_str())
            .collect();
        for want in ["get_ticket", "get_history", "get_live", "act"] {
            assert!(
                targets.contains(&want),
                "201 of POST /v1/tickets: {targets:?}"
            );
        }
        let agent = links_of("/v1/agents/{id}", "put", "200");
        assert!(agent.values().any(|l| l["operationId"] == "delete_agent"));
        let all = [
            created,
            links_of("/v1/tickets", "post", "200"),
            links_of("/v1/tickets/{id}", "get", "200"),
            agent,
        ];
        for (name, link) in all.iter().flatten() {
            assert!(link.get("operation_id").is_none(), "{name}: {link}");
            let target = link["operationId"].as_str().expect("operationId");
            let path = by_id
                .get(target)
                .unwrap_or_else(|| panic!("{name}: no {target}"));
            for param in link["parameters"].as_object().expect("parameters").keys() {
                assert!(
                    path.contains(&format!("{{{param}}}")),
                    "{name}: {param} not in {path}"
                );
            }
        }
    }

    /// An action's and a heartbeat's body may be left out, but when sent it is a JSON object:
    /// the document must not offer `null`, which the gateway refuses (400).
    #[test]
    fn optional_bodies_are_not_required_and_not_null() {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("serialises");
        for path in ["/v1/tickets/{id}/{action}", "/v1/agents/{id}/heartbeat"] {
            let body = &doc["paths"][path]["post"]["requestBody"];
            assert_eq!(body["required"], false, "{path}: {body}");
            let schema = &body["content"]["application/json"]["schema"];
            assert!(schema["$ref"].is_string(), "{path}: {schema}");
        }
    }
}
