//! hotline-gateway receives tickets from the 12345, 110 and 12348 hotlines, classifies them,
//! and queues them in Redis for lawyers and mediators, exactly once and durably.
//!
//! # Layout
//! - [`intake`]: HTTP handlers that receive tickets; validation and idempotency.
//! - [`classify`]: text in, decision with reasons out (pure).
//! - [`routing`]: decision and region in, queue out (pure).
//! - [`sla`]: working calendars, policies, per-ticket clocks and the timer mover.
//! - [`agents`]: who may take which ticket (pure), and the agents' HTTP API.
//! - [`dashboard`]: the supervisors' live page, embedded in the binary.
//! - [`events`]: `GET /v1/events`, the county event streams as Server-Sent Events.
//! - [`supervision`]: tickets at risk and breached, the day's counts.
//! - [`lifecycle`]: accept, first contact, pause, resume, resolve, follow-up; reload.
//! - [`live`]: live transfer of a caller on the line: duty hours, reservations, wait estimates.
//! - [`callbacks`]: delivering partner callbacks from the outboxes, in order, with retries.
//! - [`queues`]: the Redis store; the only module that knows key names and Lua.
//! - [`api`]: router, problem+json errors, auth extractor and signature middleware, the request
//!   body deadline, ops endpoints.
//! - [`auth`]: bearer tokens as SHA-256 digests, partners' signatures, roles and regions.
//! - [`config`]: layered, validated settings, composed of each module's own section.
//! - [`setting`], [`secret`]: what every section shares: the error naming a key, common checks;
//!   secrets that never print.
//! - [`ticket`]: the domain types, with personal data masked in `Debug`.
//! - [`metrics`], [`telemetry`]: Prometheus names, logging set-up.
//! - [`startup`], [`local_redis`]: building the app, the accept loop and its connection guards,
//!   starting Redis when none is configured.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod agents;
pub mod api;
pub mod auth;
pub mod callbacks;
pub mod classify;
pub mod config;
pub mod corrections;
pub mod handling;
pub mod intake;
pub mod jobs;
pub mod lifecycle;
pub mod live;
pub mod local_redis;
pub mod metrics;
pub mod offers;
pub mod queues;
pub mod reload;
pub mod router;
pub mod routing;
pub mod secret;
pub mod setting;
pub mod sla;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod ticket;
