//! `hotline-gateway corrections export`: the learning loop's export. Agents' corrected labels
//! (transfers that changed service or category) are appended to the store's corrections stream;
//! this writes them as training JSON Lines for `train`, the newest label of a ticket winning.
//! Here, not in `classify`, because it reads Redis and the classifier does no I/O.

use std::collections::HashMap;
use std::io::Write;

use crate::classify::model::MODEL_SERVICES;
use crate::classify::tools::LabelledRow;

/// The Redis stream agents' corrections are appended to; its name belongs to `queues`.
/// Entry fields: `ticket_id`, `title`, `text`, `source`, `service`, `category`, `actor`, `at_ms`.
pub use crate::queues::CORRECTIONS_STREAM;

/// Counts of an export.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportStats {
    /// Rows written.
    pub written: usize,
    /// Entries skipped: no text, or a service the model cannot learn (triage, unknown).
    pub skipped: usize,
}

/// Reads the corrections stream from `since` (exclusive stream id; `-` for the beginning) and
/// writes one training row per usable entry. A later correction of the same ticket replaces an
/// earlier one, so the newest label wins.
pub fn export_corrections(
    redis_url: &str,
    stream: &str,
    since: &str,
    output: &mut dyn Write,
) -> Result<ExportStats, String> {
    let mut latest: Vec<LabelledRow> = Vec::new();
    let mut by_ticket: HashMap<String, usize> = HashMap::new();
    let mut stats = ExportStats::default();
    crate::queues::read_stream(redis_url, stream, since, |page| {
        for (id, fields) in page {
            let text = fields.get("text").cloned().unwrap_or_default();
            let service = fields.get("service").cloned().unwrap_or_default();
            if text.trim().is_empty() || !MODEL_SERVICES.contains(&service.as_str()) {
                stats.skipped += 1;
                continue;
            }
            let ticket = fields
                .get("ticket_id")
                .cloned()
                .unwrap_or_else(|| id.clone());
            let row = LabelledRow {
                id: Some(format!("correction:{ticket}:{id}")),
                text,
                title: None,
                source: fields.get("source").cloned().filter(|s| !s.is_empty()),
                service: Some(service),
                category: fields.get("category").cloned().filter(|s| !s.is_empty()),
            };
            match by_ticket.get(&ticket) {
                Some(&i) => latest[i] = row,
                None => {
                    by_ticket.insert(ticket, latest.len());
                    latest.push(row);
                }
            }
        }
    })?;
    for row in &latest {
        let line = serde_json::to_string(row).map_err(|e| e.to_string())?;
        writeln!(output, "{line}").map_err(|e| e.to_string())?;
        stats.written += 1;
    }
    output.flush().map_err(|e| e.to_string())?;
    Ok(stats)
}
