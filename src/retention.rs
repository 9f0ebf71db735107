//! Retention of personal data: `archive.personal_data_days` after a case ended, the caller's
//! name and phone (and the configured fields) are erased from the archive. The job reports what
//! it did three ways: a log line, `hotline_archive_personal_erased_total`, and an entry in the
//! audit log (actor `gateway`, action `retention.erase`), so IT staff and auditors can see that
//! the rule is applied.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::archive::{Archive, ArchiveError, ArchiveSettings, AuditEntry};

/// Cases erased per statement.
const BATCH: i64 = 1_000;
/// Statements per run, so one run stays bounded; the next run carries on.
const MAX_BATCHES: usize = 1_000;

/// Erases what is due at `now`; returns how many cases were erased.
pub async fn run(
    archive: &Archive,
    settings: &ArchiveSettings,
    now: DateTime<Utc>,
) -> Result<u64, ArchiveError> {
    let days = i64::try_from(settings.personal_data_days).unwrap_or(i64::MAX / 86_400);
    let before = now - Duration::days(days);
    let paths = settings.erased_paths();
    let mut total = 0;
    for _ in 0..MAX_BATCHES {
        let n = archive.erase_personal(before, &paths, BATCH).await?;
        total += n;
        if n < BATCH as u64 {
            break;
        }
    }
    if total > 0 {
        crate::metrics::personal_data_erased(total);
        let fields: Vec<String> = paths.iter().map(|p| p.join(".")).collect();
        tracing::info!(
            cases = total,
            ended_before = %before.to_rfc3339(),
            fields = ?fields,
            "personal data erased from archived cases"
        );
        let entry = AuditEntry {
            actor: "gateway".into(),
            role: "system".into(),
            action: crate::archive::audit::RETENTION_ERASE.into(),
            request_id: None,
            target: None,
            detail: json!({
                "cases": total,
                "ended_before": before.to_rfc3339(),
                "fields": fields,
                "personal_data_days": settings.personal_data_days,
            }),
        };
        if let Err(e) = archive.audit(&entry).await {
            tracing::warn!(error = %e, "retention run not recorded in the audit log");
        }
    }
    Ok(total)
}
