//! hotline-gateway receives tickets from the 12345, 110 and 12348 hotlines, classifies them,
//! and queues them in Redis for lawyers and mediators, exactly once and durably.
//!
//! # Layout (bottom to top; a module imports only modules below it)
//! - [`ticket`], [`metrics`], [`setting`], [`secret`], [`county`]: domain types (personal data
//!   masked in `Debug`), metric names fed plain numbers, the error naming a settings key, secrets
//!   that never print, the deployment's counties.
//! - [`classify`], [`routing`], [`agents`], [`auth`], [`sla`]: pure rules: text to decision,
//!   decision to queue, who may take which ticket, who is calling, clocks and calendars.
//! - [`lifecycle`]: the ticket's life as a typed domain: statuses, actions, the transition
//!   table, and the rules that turn a record and a request into one typed change.
//! - [`queues`]: the Redis store; the only module that knows key names and Lua.
//! - [`live`], [`offers`], [`callbacks`], [`corrections`], [`config`]: live transfer, offers to
//!   consoles, partner callbacks, the corrections export, layered and validated settings.
//! - [`state`]: what handlers and jobs share.
//! - [`handling`], [`intake`], [`claiming`], [`reload`]: carrying out an action (read, decide,
//!   write, retry), registering a ticket once, an agent's claim, reloading in place.
//! - [`jobs`], [`api`]: the background jobs; the HTTP edge and its handlers.
//! - [`router`], [`startup`], [`local_redis`], [`local_postgres`]: every route, building and
//!   serving the app, starting Redis and PostgreSQL when none is configured.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod agents;
pub mod api;
pub mod archive;
pub mod archiving;
pub mod auth;
pub mod callbacks;
pub mod case;
pub mod claiming;
pub mod classify;
pub mod config;
pub mod corrections;
pub mod county;
pub mod handling;
pub mod intake;
pub mod jobs;
pub mod lifecycle;
pub mod live;
pub mod local_postgres;
pub mod local_redis;
pub mod metrics;
pub mod offers;
pub mod queues;
pub mod reload;
pub mod retention;
pub mod router;
pub mod routing;
pub mod secret;
pub mod setting;
pub mod sla;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod ticket;
