//! The audit log of privileged actions: appended by the gateway, never changed (the table's
//! triggers refuse it), read by admins.

use serde_json::Value;

use super::{Archive, ArchiveError};

/// One privileged action: who did what to what, in which request.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// The caller's token name.
    pub actor: String,
    /// The caller's role.
    pub role: String,
    /// What was done, a dotted name from a closed set (`agent.define`, `admin.reload`, …).
    pub action: String,
    /// The request's `x-request-id`, to find it in the logs.
    pub request_id: Option<String>,
    /// What it was done to (an agent id, a ticket id), when there is one.
    pub target: Option<String>,
    /// What changed, or what was asked (never a secret; personal data only where the action is
    /// about it, such as the phone number a search asked for).
    pub detail: Value,
}

impl Archive {
    /// Appends `entry`; returns its sequence number once committed.
    pub async fn audit(&self, entry: &AuditEntry) -> Result<i64, ArchiveError> {
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
}
