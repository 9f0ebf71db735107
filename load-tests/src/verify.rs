//! After a phase: does Redis hold exactly what was acknowledged? A throughput figure means
//! nothing if tickets were lost or registered twice on the way.

use std::collections::{HashMap, HashSet};

use anyhow::{Context, Result, bail};
use redis::aio::MultiplexedConnection;

use crate::stats::Verification;
use crate::texts::COUNTIES;

/// A ticket acknowledged as new (HTTP 201, or a "created" script reply).
#[derive(Debug, Clone)]
pub struct Ack {
    /// `12345`, `110` or `12348`.
    pub source: &'static str,
    /// The sender's id.
    pub external_id: String,
    /// The gateway's id, `<county>-<seq>`.
    pub id: String,
    /// The queue the ticket was acknowledged in; `None` when it went back to the sender.
    pub queue: Option<String>,
}

/// A request that got no answer (timeout, connection error): it may or may not have landed.
#[derive(Debug, Clone)]
pub struct Unanswered {
    /// `12345`, `110` or `12348`.
    pub source: &'static str,
    /// The sender's id.
    pub external_id: String,
    /// The ticket's county.
    pub county: &'static str,
}

/// Writes `acks` to `path`, one JSON object a line: `source`, `external_id`, `id`, `county`
/// (the id's prefix, for the keys `hl:{<county>}:…`) and `queue` (null when sent back), so a
/// caller that owns the Redis can check them itself.
pub fn write_acks(path: &std::path::Path, acks: &[Ack]) -> Result<()> {
    use std::io::Write;
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    for a in acks {
        let county = a.id.split_once('-').map_or("", |(c, _)| c);
        let line = serde_json::json!({
            "source": a.source,
            "external_id": a.external_id,
            "id": a.id,
            "county": county,
            "queue": a.queue,
        });
        writeln!(out, "{line}").with_context(|| format!("cannot write {}", path.display()))?;
    }
    out.flush()
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Upper bound on SCAN round trips per pattern, so a broken cursor cannot loop forever.
const MAX_SCAN_ROUNDS: usize = 1_000_000;

/// Every key matching `pattern`, by SCAN.
async fn scan(conn: &mut MultiplexedConnection, pattern: &str) -> Result<Vec<String>> {
    let mut keys = Vec::new();
    let mut cursor: u64 = 0;
    for _ in 0..MAX_SCAN_ROUNDS {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(10_000)
            .query_async(conn)
            .await
            .with_context(|| format!("SCAN {pattern}"))?;
        keys.extend(batch);
        cursor = next;
        if cursor == 0 {
            return Ok(keys);
        }
    }
    bail!("SCAN {pattern} did not finish in {MAX_SCAN_ROUNDS} rounds")
}

/// Checks every acknowledged ticket against Redis at `url`.
pub async fn verify(url: &str, acks: &[Ack], unanswered: &[Unanswered]) -> Result<Verification> {
    let client = redis::Client::open(url)?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .context("connect to Redis to verify")?;

    // What is stored: ticket hashes, and queue memberships (id -> queues it is in).
    let mut stored: HashSet<String> = HashSet::new();
    let mut memberships: HashMap<String, Vec<String>> = HashMap::new();
    for (county, _, _) in COUNTIES {
        let prefix = format!("hl:{{{county}}}:");
        for key in scan(&mut conn, &format!("{prefix}t:*")).await? {
            if let Some(id) = key.strip_prefix(&format!("{prefix}t:")) {
                stored.insert(id.to_string());
            }
        }
        for key in scan(&mut conn, &format!("{prefix}q:*")).await? {
            let queue = key
                .strip_prefix(&format!("{prefix}q:"))
                .unwrap_or_default()
                .to_string();
            let members: Vec<String> = redis::cmd("ZRANGE")
                .arg(&key)
                .arg(0)
                .arg(-1)
                .query_async(&mut conn)
                .await
                .with_context(|| format!("ZRANGE {key}"))?;
            for id in members {
                memberships.entry(id).or_default().push(queue.clone());
            }
        }
    }

    let mut v = Verification {
        stored_tickets: stored.len() as u64,
        ..Verification::default()
    };
    let mut ids: HashMap<&str, &Option<String>> = HashMap::new();
    let mut keys: HashSet<(&str, &str)> = HashSet::new();
    for a in acks {
        ids.insert(&a.id, &a.queue);
        keys.insert((a.source, &a.external_id));
    }
    v.acknowledged = ids.len() as u64;
    for (id, queue) in &ids {
        if !stored.contains(*id) {
            v.missing_hash += 1;
            continue;
        }
        let is_in = memberships.get(*id).map(Vec::as_slice).unwrap_or(&[]);
        let expected: &[String] = match queue {
            Some(q) => std::slice::from_ref(q),
            None => &[],
        };
        if is_in == expected {
            v.found += 1;
        } else {
            v.wrong_queue += 1;
        }
    }
    v.lost = v.acknowledged - v.found;

    // Unanswered requests that landed anyway are accounted for, not called duplicates.
    let doubtful: Vec<&Unanswered> = unanswered
        .iter()
        .filter(|u| !keys.contains(&(u.source, u.external_id.as_str())))
        .collect();
    for chunk in doubtful.chunks(1000) {
        let mut pipe = redis::pipe();
        for u in chunk {
            pipe.cmd("EXISTS").arg(format!(
                "hl:{{{}}}:idem:p.{}:{}:{}",
                u.county,
                crate::harness::PARTNER_NAME,
                u.source,
                u.external_id
            ));
        }
        let found: Vec<u64> = pipe.query_async(&mut conn).await?;
        v.unanswered_stored += found.iter().filter(|n| **n > 0).count() as u64;
    }
    let expected_tickets = keys.len() as u64 + v.unanswered_stored;
    let extra_ids = (ids.len() as u64).saturating_sub(keys.len() as u64);
    v.duplicated = v
        .stored_tickets
        .saturating_sub(expected_tickets)
        .max(extra_ids);
    Ok(v)
}
