//! The case file (一案一卷): a ticket as it ended, as the case archive keeps it for years and
//! gives it back when someone reads, reopens, retries or searches it.
//!
//! The store builds a case from a ticket's hash and history; the archive stores it; the
//! handling of reads and reopens turns it back into a record. The fields the store keeps are
//! carried opaquely (only the store knows their names), beside the few facts that search,
//! reports and retention need, read once here from the typed record and the request.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::lifecycle::{Status, TicketRecord};
use crate::sla::policy::ClockName;
use crate::ticket::Ticket;

mod query;
pub use query::*;

/// A ticket as it ended, complete: nothing about it is left only in Redis once it is archived.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseFile {
    /// `<county>-<seq>`.
    pub id: String,
    /// The county (the id's prefix).
    pub county: String,
    /// The record version it was archived at; a newer version (reopened, ended again) replaces
    /// it, an equal or older one never does.
    pub ver: u64,
    /// When its life ended (Redis clock, ms).
    pub ended_ms: i64,
    /// The store's fields of the ticket, except the request: opaque to everyone but the store,
    /// which restores the ticket from them exactly as it was.
    pub fields: BTreeMap<String, String>,
    /// The request as received and validated (personal data: the caller's name and phone).
    pub request: Value,
    /// Every event of its history, oldest first.
    pub history: Vec<Value>,
    /// What search, reports and retention read.
    pub index: CaseIndex,
}

/// The facts of a case that are searched and counted, read from the typed record.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CaseIndex {
    /// Final status (`closed`, `returned`, `withdrawn`, `transferred`).
    pub status: String,
    /// The hotline that sent it.
    pub source: String,
    /// The sender's own id.
    pub external_id: String,
    /// The token name that sent it; partners see only their own.
    pub sender: Option<String>,
    /// Service decided (`legal_consultation`, `mediation`, `out_of_scope`, `triage`).
    pub service: String,
    /// Category label.
    pub category: String,
    /// Warning level.
    pub level: String,
    /// Town, village and grid, when known.
    pub town: Option<String>,
    /// Village or community.
    pub village: Option<String>,
    /// Grid.
    pub grid: Option<String>,
    /// The agent who last worked it.
    pub agent: Option<String>,
    /// Registration time, ms.
    pub created_ms: i64,
    /// When it was resolved, ms, if it was.
    pub resolved_ms: Option<i64>,
    /// The operator's summary.
    pub title: String,
    /// The caller's words.
    pub text: String,
    /// The caller's name (personal data; erased after `archive.personal_data_days`).
    pub caller_name: String,
    /// The caller's phone (personal data; erased likewise).
    pub caller_phone: String,
    /// The hash of the phone's digits that links repeat requests (erased with the phone).
    pub caller_key: String,
    /// Linked requests of the same caller.
    pub linked: Vec<String>,
}

impl CaseIndex {
    /// The searchable facts of a record whose request is `ticket` and whose events are
    /// `history`: the agent is the one holding it, else the last agent named by an event.
    pub fn of(record: &TicketRecord, ticket: &Ticket, history: &[Value]) -> CaseIndex {
        let agent = record.holder().map(str::to_string).or_else(|| {
            history.iter().rev().find_map(|e| {
                e.get("agent")
                    .and_then(Value::as_str)
                    .filter(|a| !a.is_empty())
                    .map(str::to_string)
            })
        });
        // The resolve clock also stops when a ticket is withdrawn, sent back or moved; only a
        // resolution (resolved, then closed by the follow-up) is one.
        let resolved = matches!(record.status(), Status::Resolved | Status::Closed);
        let resolved_ms = record
            .stored
            .clocks
            .clocks
            .get(&ClockName::Resolve)
            .and_then(|c| c.stopped_ms)
            .filter(|_| resolved);
        CaseIndex {
            status: record.status().as_str().to_string(),
            source: ticket.source.as_str().to_string(),
            external_id: ticket.external_id.clone(),
            sender: record.sender.clone(),
            service: record.service.clone(),
            category: record.category.clone(),
            level: record.level.clone(),
            town: ticket.region.town.clone(),
            village: ticket.region.village.clone(),
            grid: ticket.region.grid.clone(),
            agent,
            created_ms: record.stored.created_ms,
            resolved_ms,
            title: ticket.title.clone(),
            text: ticket.text.clone(),
            caller_name: ticket.caller.name.clone(),
            caller_phone: ticket.caller.phone.clone(),
            caller_key: ticket.caller.key(),
            linked: record.linked.clone(),
        }
    }
}
