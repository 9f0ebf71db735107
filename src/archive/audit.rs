//! The audit log of privileged actions: appended by the gateway, never changed (the table's
//! triggers refuse it), read by admins.
//!
//! Every action name is one of [`ACTIONS`], documented here once. A privileged action is
//! recorded twice: its intent, written before it is carried out (the action is refused when
//! that cannot be written), and its outcome, appended afterwards with the same name and
//! `detail.outcome` (`done`, `refused` or `failed`) and `detail.intent` (the intent's `seq`).
//! What no request asked for (a reload by SIGHUP, a retention run) is one entry, after the fact.

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_postgres::types::ToSql;

use super::{Archive, ArchiveError};

/// `PUT /v1/agents/{id}`: an agent defined or redefined; `detail.before` (null for a new agent)
/// and `detail.after` are the definitions.
pub const AGENT_DEFINE: &str = "agent.define";
/// `DELETE /v1/agents/{id}`: an agent removed; `detail.deleted` is the definition it had.
pub const AGENT_DELETE: &str = "agent.delete";
/// `POST /v1/agents/{id}/heartbeat` sent by an admin on an agent's behalf: signing an agent on
/// or off for live callers without being that agent (`detail.online`).
pub const AGENT_PRESENCE: &str = "agent.presence";
/// `POST /v1/admin/reload` (actor: the admin's token), or SIGHUP (actor `SIGHUP`, role
/// `system`): configuration, holiday data, lexicon and model re-read; the outcome names the
/// classifier now in force.
pub const ADMIN_RELOAD: &str = "admin.reload";
/// `POST /v1/admin/callbacks/replay`: a partner's dead letters put back for delivery (target:
/// the partner; `detail.counties`; the outcome's `detail.replayed`).
pub const CALLBACKS_REPLAY: &str = "callbacks.replay";
/// `POST /v1/tickets/{id}/raise`: a supervisor's raise of a ticket's priority band (督办/提级),
/// with the reason and the band before and after.
pub const TICKET_RAISE: &str = "ticket.raise";
/// `POST /v1/tickets/{id}/transfer` taken by a supervisor or an admin, not by the agent
/// working the ticket: a reassignment (改派), with what was asked and the ticket's queue and
/// labels before and after.
pub const TICKET_REASSIGN: &str = "ticket.reassign";
/// A search of tickets by the caller's phone (personal data), recorded before it runs: the
/// filters asked, the number itself left out (`by_phone`).
pub const TICKETS_SEARCH: &str = "tickets.search";
/// The retention job erased personal data from archived cases (actor `gateway`, role
/// `system`): how many cases, ended before when, which fields.
pub const RETENTION_ERASE: &str = "retention.erase";

/// Every action the audit log records: a closed set, so a reader can filter by name and a
/// misspelt name is refused rather than written.
pub const ACTIONS: [&str; 9] = [
    AGENT_DEFINE,
    AGENT_DELETE,
    AGENT_PRESENCE,
    ADMIN_RELOAD,
    CALLBACKS_REPLAY,
    TICKET_RAISE,
    TICKET_REASSIGN,
    TICKETS_SEARCH,
    RETENTION_ERASE,
];

/// One privileged action: who did what to what, in which request.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// The caller's token name.
    pub actor: String,
    /// The caller's role.
    pub role: String,
    /// What was done, a dotted name from [`ACTIONS`].
    pub action: String,
    /// The request's `x-request-id`, to find it in the logs.
    pub request_id: Option<String>,
    /// What it was done to (an agent id, a ticket id), when there is one.
    pub target: Option<String>,
    /// What changed, or what was asked (never a secret, nor a caller's name or phone: a search
    /// by phone records that it was one, not the number).
    pub detail: Value,
}

/// An entry as stored, with its place in the log and its time.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// Its sequence number: the log's order, and the reading cursor.
    pub seq: i64,
    /// When it was written (the database's clock, the transaction's start).
    pub at: DateTime<Utc>,
    /// The entry.
    pub entry: AuditEntry,
}

/// Which entries to read: every filter given must match; newest first, below `before_seq`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditQuery {
    /// Only this actor (token name).
    pub actor: Option<String>,
    /// Only this action (one of [`ACTIONS`]).
    pub action: Option<String>,
    /// Only this target.
    pub target: Option<String>,
    /// Written at or after this.
    pub from: Option<DateTime<Utc>>,
    /// Written before this.
    pub to: Option<DateTime<Utc>>,
    /// Only entries older than this one (`seq` below it): the keyset cursor.
    pub before_seq: Option<i64>,
    /// At most this many.
    pub limit: i64,
}

impl Archive {
    /// Appends `entry`; returns its sequence number once committed. An action outside
    /// [`ACTIONS`] is refused (a bug), so the log's names stay a closed set.
    pub async fn audit(&self, entry: &AuditEntry) -> Result<i64, ArchiveError> {
        if !ACTIONS.contains(&entry.action.as_str()) {
            return Err(ArchiveError::Query(format!(
                "`{}` is not an audit action",
                entry.action
            )));
        }
        self.bounded("writing the audit log", async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(
                    "INSERT INTO audit_log (actor, role, action, request_id, target, detail) \
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq",
                )
                .await?;
            let row = client
                .query_one(
                    &stmt,
                    &[
                        &entry.actor,
                        &entry.role,
                        &entry.action,
                        &entry.request_id,
                        &entry.target,
                        &entry.detail,
                    ],
                )
                .await?;
            Ok(row.get(0))
        })
        .await
    }

    /// The entries `query` asks for, newest first (by `seq`).
    pub async fn audit_entries(
        &self,
        query: &AuditQuery,
    ) -> Result<Vec<AuditRecord>, ArchiveError> {
        let (sql, params) = select_audit(query);
        self.bounded("reading the audit log", async {
            let client = self.client().await?;
            let stmt = client.prepare_cached(&sql).await?;
            let refs: Vec<&(dyn ToSql + Sync)> = params
                .iter()
                .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                .collect();
            let rows = client.query(&stmt, &refs).await?;
            rows.iter()
                .map(|r| {
                    Ok(AuditRecord {
                        seq: r.try_get(0)?,
                        at: r.try_get(1)?,
                        entry: AuditEntry {
                            actor: r.try_get(2)?,
                            role: r.try_get(3)?,
                            action: r.try_get(4)?,
                            request_id: r.try_get(5)?,
                            target: r.try_get(6)?,
                            detail: r.try_get(7)?,
                        },
                    })
                })
                .collect()
        })
        .await
    }
}

/// The statement for `query` and its parameters: only the filters given become conditions
/// (so each can use its index), every value a bound parameter.
fn select_audit(query: &AuditQuery) -> (String, Vec<Box<dyn ToSql + Sync + Send>>) {
    let mut conditions: Vec<String> = Vec::new();
    let mut params: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    let mut add = |condition: &str, value: Box<dyn ToSql + Sync + Send>| {
        params.push(value);
        conditions.push(format!("{condition} ${}", params.len()));
    };
    if let Some(v) = &query.actor {
        add("actor =", Box::new(v.clone()));
    }
    if let Some(v) = &query.action {
        add("action =", Box::new(v.clone()));
    }
    if let Some(v) = &query.target {
        add("target =", Box::new(v.clone()));
    }
    if let Some(v) = query.from {
        add("at >=", Box::new(v));
    }
    if let Some(v) = query.to {
        add("at <", Box::new(v));
    }
    if let Some(v) = query.before_seq {
        add("seq <", Box::new(v));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    params.push(Box::new(query.limit));
    let sql = format!(
        "SELECT seq, at, actor, role, action, request_id, target, detail FROM audit_log{filter} \
         ORDER BY seq DESC LIMIT ${}",
        params.len()
    );
    (sql, params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_names_are_dotted_and_distinct() {
        let mut seen = std::collections::BTreeSet::new();
        for a in ACTIONS {
            assert!(seen.insert(a), "{a} twice");
            let parts: Vec<&str> = a.split('.').collect();
            assert_eq!(parts.len(), 2, "{a}");
            assert!(
                parts
                    .iter()
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase())),
                "{a}"
            );
        }
    }

    #[test]
    fn only_the_filters_given_become_bound_conditions() {
        let (sql, params) = select_audit(&AuditQuery {
            limit: 10,
            ..AuditQuery::default()
        });
        assert!(!sql.contains("WHERE"), "{sql}");
        assert!(sql.ends_with("ORDER BY seq DESC LIMIT $1"), "{sql}");
        assert_eq!(params.len(), 1);
        let (sql, params) = select_audit(&AuditQuery {
            actor: Some("admin'; DROP TABLE audit_log; --".into()),
            target: Some("a-1".into()),
            before_seq: Some(7),
            limit: 10,
            ..AuditQuery::default()
        });
        assert!(
            sql.contains("WHERE actor = $1 AND target = $2 AND seq < $3"),
            "{sql}"
        );
        assert!(sql.ends_with("LIMIT $4") && !sql.contains("DROP"), "{sql}");
        assert_eq!(params.len(), 4);
    }
}
