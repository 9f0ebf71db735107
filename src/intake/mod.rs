//! Intake (核实立案): registering a validated ticket exactly once. It is classified, routed,
//! given its SLA clocks and stored by one atomic script, so a ticket is acknowledged only when
//! it is in Redis with its queue entry and its event; a retry of the same (source,
//! external_id) finds the same ticket. The HTTP edge (`api::tickets`) validates the request and
//! turns the outcome into `201`, `200` or a problem.

pub mod settings;

use std::time::Duration;

use chrono::Utc;
use sha2::{Digest, Sha256};

use crate::auth::Principal;
use crate::auth::Role;
use crate::lifecycle::StoredTicket;
use crate::metrics;
use crate::queues::{IngestOutcome, KeySpace, NewTicket, StoreError};
use crate::sla::clock::TicketClocks;
use crate::sla::policy::TicketFacts;
use crate::state::AppState;
use crate::ticket::Ticket;

/// A registered ticket: new, or found again by its idempotency key.
#[derive(Debug)]
pub struct Received {
    /// Registered now (`false`: a faithful retry found it).
    pub new: bool,
    /// The ticket as stored.
    pub stored: StoredTicket,
}

/// Why a ticket was not registered.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The sender may not send tickets for that region.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The sender's (source, external_id) was registered with other content, or for another
    /// county.
    #[error("conflict with ticket {id:?} (county {county:?})")]
    Conflict {
        /// The ticket registered first (`None`: its first attempt is still being stored).
        id: Option<String>,
        /// The county that holds the key, when this request named another.
        county: Option<String>,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The ticket was archived and the case archive could not be read.
    #[error(transparent)]
    Archive(crate::archive::ArchiveError),
    /// A value could not be serialised (a defect).
    #[error("internal: {0}")]
    Internal(String),
}

/// Registers one validated ticket for `principal` (its sender): classify, route, time and
/// store it in one atomic script. `live`: the caller is on the line and asks to be put through.
pub async fn receive(
    state: &AppState,
    principal: &Principal,
    ticket: &Ticket,
    live: bool,
) -> Result<Received, IntakeError> {
    if !principal.covers(&ticket.region.code) {
        metrics::ticket_rejected("forbidden_region");
        return Err(IntakeError::Forbidden(format!(
            "region.code {} is outside the regions of `{}`",
            ticket.region.code, principal.name
        )));
    }

    // Repeat calls (重复来电) raise the warning level: how many tickets this caller opened in the
    // county within the linking window. Read before classifying; one small read per ticket.
    let caller_key = ticket.caller.key();
    let window = state.settings.intake.duplicate_window_days * 86_400;
    let prior_calls = if window > 0 && !caller_key.is_empty() {
        state
            .store
            .caller_recent(&ticket.region.code, &caller_key, window)
            .await
            .map_err(|e| {
                metrics::ticket_received(
                    ticket.source.as_str(),
                    ticket.channel.as_str(),
                    "unavailable",
                );
                IntakeError::Store(e)
            })?
    } else {
        0
    };
    // The caller's earlier tickets that have already left Redis for the case archive are
    // looked up only for a caller who did call within the window.
    let archived_calls = if prior_calls > 0 {
        archived_calls(state, &ticket.region.code, &caller_key, window).await
    } else {
        Vec::new()
    };
    let mut text = ticket.text_view();
    text.prior_calls = prior_calls;
    let decision = state.classifier().classify(&text);
    let linked_archived: Vec<String> = archived_calls
        .into_iter()
        .filter(|(_, category)| *category == decision.category)
        .map(|(id, _)| id)
        .collect();
    let route = state.router.route(&decision, ticket.source, &ticket.region);
    let classification_json =
        serde_json::to_string(&decision).map_err(|e| IntakeError::Internal(e.to_string()))?;
    let content_hash = content_hash(ticket)?;
    let sla = state.sla.current();
    // A ticket sent back to its sender runs no clock here.
    let clocks = if route.queue.is_some() {
        let facts = TicketFacts {
            service: decision.service.as_str(),
            warning_level: &decision.warning_level,
            source: ticket.source,
            category: &decision.category,
            transfer: if live {
                crate::live::transfer_mode(&state.live, decision.service.as_str(), Utc::now())
            } else {
                ""
            },
        };
        TicketClocks::start(
            sla.policies.terms(facts, &ticket.region.code),
            state.store.now_ms(),
        )
    } else {
        TicketClocks::default()
    };
    let timers = crate::lifecycle::timing::plan_timers(&clocks, &sla);
    let clocks_json =
        serde_json::to_string(&clocks).map_err(|e| IntakeError::Internal(e.to_string()))?;
    let region_path = crate::agents::region_path(&ticket.region);
    let new = NewTicket {
        ticket,
        space: key_space(principal),
        content_hash: &content_hash,
        classification_json: &classification_json,
        service: decision.service.as_str(),
        level: &decision.warning_level,
        category: &decision.category,
        queue: route.queue.as_deref(),
        rule: &route.rule,
        band: route.band,
        clocks_json: &clocks_json,
        timers: &timers,
        actor: &principal.name,
        region_path: &region_path,
        caller_key: if state.settings.intake.duplicate_window_days > 0 {
            &caller_key
        } else {
            ""
        },
        duplicate_window_secs: state.settings.intake.duplicate_window_days * 86_400,
        since_ms: None,
        transferred_from: None,
        sender: &principal.name,
        live_asked: live,
        linked_archived: &linked_archived,
        callback: if state.callbacks.target(&principal.name).is_some() {
            &principal.name
        } else {
            ""
        },
    };

    let outcome = match state.store.ingest(&new).await {
        // One immediate retry: the first command after Redis came back often fails on the old
        // connection. The script is idempotent, so a write that did land is simply found.
        Err(StoreError::Unavailable(_)) => {
            tokio::time::sleep(Duration::from_millis(50)).await;
            state.store.ingest(&new).await
        }
        other => other,
    }
    .map_err(|e| {
        metrics::ticket_received(
            ticket.source.as_str(),
            ticket.channel.as_str(),
            "unavailable",
        );
        IntakeError::Store(e)
    })?;

    match outcome {
        IngestOutcome::Created(stored) => {
            tracing::Span::current().record("ticket_id", stored.id.as_str());
            metrics::ticket_received(ticket.source.as_str(), ticket.channel.as_str(), "created");
            if let Some(q) = &stored.queue {
                metrics::queue_event(q, "arrival");
            }
            metrics::classified(
                decision.service.as_str(),
                &decision.category,
                &decision.warning_level,
                decision.confidence,
            );
            tracing::info!(
                source = %ticket.source,
                transfer = ?ticket.transfer,
                queue = route.queue.as_deref().unwrap_or("-"),
                rule = %route.rule,
                service = decision.service.as_str(),
                category = %decision.category,
                level = %decision.warning_level,
                confidence = decision.confidence,
                caller = ?ticket.caller,
                "ticket registered"
            );
            state.mover.wake(&ticket.region.code);
            if !linked_archived.is_empty() {
                link_archived(state, linked_archived, stored.id.clone());
            }
            Ok(Received { new: true, stored })
        }
        IngestOutcome::Existing(stored) => {
            tracing::Span::current().record("ticket_id", stored.id.as_str());
            metrics::ticket_received(ticket.source.as_str(), ticket.channel.as_str(), "duplicate");
            tracing::info!(source = %ticket.source, "retry of a registered ticket");
            Ok(Received { new: false, stored })
        }
        IngestOutcome::Archived(id) => {
            tracing::Span::current().record("ticket_id", id.as_str());
            // The same ticket, ended and archived: its receipt comes from the archive.
            let case = state
                .archive
                .get(&id)
                .await
                .map_err(IntakeError::Archive)?
                .ok_or_else(|| {
                    IntakeError::Internal(format!(
                        "ticket {id} is neither in Redis nor in the case archive"
                    ))
                })?;
            let record = crate::queues::record_of_case(&case)?;
            metrics::ticket_received(ticket.source.as_str(), ticket.channel.as_str(), "duplicate");
            tracing::info!(source = %ticket.source, "retry of an archived ticket");
            Ok(Received {
                new: false,
                stored: record.stored,
            })
        }
        IngestOutcome::Conflict { id, county } => {
            if let Some(id) = &id {
                tracing::Span::current().record("ticket_id", id.as_str());
            }
            metrics::ticket_received(ticket.source.as_str(), ticket.channel.as_str(), "conflict");
            Err(IntakeError::Conflict { id, county })
        }
    }
}

/// How long intake waits for the case archive when it looks up a repeat caller's archived
/// tickets: intake must not wait on PostgreSQL, so a slow or absent archive only costs the
/// link to tickets already archived.
const ARCHIVE_LOOKUP: Duration = Duration::from_millis(300);

/// The caller's archived tickets in the county within the linking window, with their categories;
/// empty (and logged) when the archive does not answer in time.
async fn archived_calls(
    state: &AppState,
    county: &str,
    caller_key: &str,
    window_secs: u64,
) -> Vec<(String, String)> {
    let since = Utc::now()
        - chrono::Duration::seconds(i64::try_from(window_secs).unwrap_or(i64::MAX / 1000));
    match tokio::time::timeout(
        ARCHIVE_LOOKUP,
        state.archive.caller_cases(county, caller_key, since),
    )
    .await
    {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "archived tickets of a repeat caller not looked up");
            Vec::new()
        }
        Err(_) => {
            tracing::warn!(
                limit_ms = ARCHIVE_LOOKUP.as_millis() as u64,
                "archived tickets of a repeat caller not looked up in time"
            );
            Vec::new()
        }
    }
}

/// Links the archived tickets to the new one on their side, in the background (best effort:
/// the new ticket already names them).
fn link_archived(state: &AppState, ids: Vec<String>, new_id: String) {
    let archive = std::sync::Arc::clone(&state.archive);
    tokio::spawn(async move {
        if let Err(e) = archive.add_link(&ids, &new_id).await {
            tracing::warn!(ticket_id = %new_id, error = %e, "archived tickets not linked back");
        }
    });
}

/// Whose `external_id`s the sender's are (README "Idempotency"): a partner's are its own, by
/// its configured name, so one partner can neither block another's ids by registering them
/// first nor get another's ticket back by replaying its request. The city's consoles (operators
/// and admins) share one space: they number work orders from the hotline's one system, and a
/// retry from another console must find the ticket.
fn key_space(principal: &Principal) -> KeySpace<'_> {
    match principal.role {
        Role::Partner => KeySpace::Partner(&principal.name),
        _ => KeySpace::Console,
    }
}

/// SHA-256 of the canonical ticket: equal content, equal hash, whatever the JSON formatting or
/// the time zone `received_at` was written in.
fn content_hash(ticket: &Ticket) -> Result<String, IntakeError> {
    let canonical = serde_json::to_vec(ticket).map_err(|e| IntakeError::Internal(e.to_string()))?;
    Ok(hex::encode(Sha256::digest(&canonical)))
}
