//! After the `burst` scenario (2,000 tickets in 60 s from one county, most written to be
//! raised): were they raised, are their SLA timers scheduled, and what do the county's queues
//! hold. Losses and duplicates are checked by `verify::verify` as for `steady`.

use std::collections::BTreeMap;

use anyhow::Result;
use redis::aio::MultiplexedConnection;
use serde_json::{Value, json};

use crate::verify::Ack;

/// The queue score is `band * 2^32 + seq` (`ingest.lua`).
const BAND_UNIT: f64 = 4_294_967_296.0;

/// Bands 0 (orange) and 1 (red) are the raised ones under the default warning scale.
const RAISED_BANDS: u32 = 2;

/// Reads back every acknowledged ticket of `county`: band and level (raised or not, against
/// what the generator meant: `-R`/`-N` in the external id), its timers (each member listed in
/// the ticket hash must be in the county's timers ZSET), and every queue's size by band.
pub async fn check(conn: &mut MultiplexedConnection, county: &str, acks: &[Ack]) -> Result<Value> {
    let prefix = format!("hl:{{{county}}}:");
    let (now_s, now_us): (u64, u64) = redis::cmd("TIME").query_async(conn).await?;
    let now_ms = (now_s * 1000 + now_us / 1000) as f64;
    let mut meant_raised = 0u64;
    let mut raised_as_meant = 0u64;
    let mut raised_unexpectedly = 0u64;
    let mut levels: BTreeMap<String, u64> = BTreeMap::new();
    let mut timers_listed = 0u64;
    let mut timers_present = 0u64;
    let mut tickets_all_timers = 0u64;
    let mut tickets_without_timers = 0u64;
    let mut by_clock: BTreeMap<String, u64> = BTreeMap::new();
    let mut earliest_due_ms = f64::INFINITY;
    for chunk in acks.chunks(200) {
        let mut pipe = redis::pipe();
        for a in chunk {
            pipe.cmd("HMGET")
                .arg(format!("{prefix}t:{}", a.id))
                .arg(&["band", "level", "timers"]);
        }
        let rows: Vec<(Option<u32>, Option<String>, Option<String>)> =
            pipe.query_async(conn).await?;
        let mut members_of: Vec<Vec<String>> = Vec::with_capacity(chunk.len());
        for (a, (band, level, timers)) in chunk.iter().zip(rows) {
            let meant = a.external_id.contains("-R");
            let raised = band.is_some_and(|b| b < RAISED_BANDS);
            meant_raised += u64::from(meant);
            raised_as_meant += u64::from(meant && raised);
            raised_unexpectedly += u64::from(!meant && raised);
            *levels
                .entry(level.unwrap_or_else(|| "-".into()))
                .or_default() += 1;
            let members: Vec<String> = timers
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default();
            for m in &members {
                // <id>|<clock>|<kind>|<ver>
                let mut p = m.split('|');
                let clock_kind = format!(
                    "{}|{}",
                    p.nth(1).unwrap_or_default(),
                    p.next().unwrap_or_default()
                );
                *by_clock.entry(clock_kind).or_default() += 1;
            }
            members_of.push(members);
        }
        let mut pipe = redis::pipe();
        for members in &members_of {
            for m in members {
                pipe.cmd("ZSCORE").arg(format!("{prefix}timers")).arg(m);
            }
        }
        let scores: Vec<Option<f64>> = if members_of.iter().all(Vec::is_empty) {
            Vec::new()
        } else {
            pipe.query_async(conn).await?
        };
        let mut it = scores.into_iter();
        for members in &members_of {
            if members.is_empty() {
                tickets_without_timers += 1;
                continue;
            }
            let mut all = true;
            for _ in members {
                timers_listed += 1;
                match it.next().flatten() {
                    Some(due) => {
                        timers_present += 1;
                        earliest_due_ms = earliest_due_ms.min(due);
                    }
                    None => all = false,
                }
            }
            tickets_all_timers += u64::from(all);
        }
    }
    // Queue state: every queue of the county, its size and how much is in the raised bands.
    let queues: Vec<String> = redis::cmd("SMEMBERS")
        .arg(format!("{prefix}queues"))
        .query_async(conn)
        .await?;
    let mut queue_state = serde_json::Map::new();
    for q in queues {
        let key = format!("{prefix}q:{q}");
        let total: u64 = redis::cmd("ZCARD").arg(&key).query_async(conn).await?;
        let raised: u64 = redis::cmd("ZCOUNT")
            .arg(&key)
            .arg(0)
            .arg(format!("({}", f64::from(RAISED_BANDS) * BAND_UNIT))
            .query_async(conn)
            .await?;
        queue_state.insert(q, json!({"waiting": total, "in_raised_bands": raised}));
    }
    let pending_timers: u64 = redis::cmd("ZCARD")
        .arg(format!("{prefix}timers"))
        .query_async(conn)
        .await?;
    let n = acks.len() as u64;
    let sent_back = acks.iter().filter(|a| a.queue.is_none()).count() as u64;
    Ok(json!({
        "tickets": n,
        "queued": n - sent_back,
        "sent_back_to_hotline": sent_back,
        "meant_raised": meant_raised,
        "raised_as_meant": raised_as_meant,
        "meant_raised_but_not_raised": meant_raised - raised_as_meant,
        "raised_unexpectedly": raised_unexpectedly,
        "in_raised_bands": raised_as_meant + raised_unexpectedly,
        "levels": levels,
        "timers": {
            "listed_in_tickets": timers_listed,
            "present_in_zset": timers_present,
            "tickets_with_all_timers": tickets_all_timers,
            "tickets_without_timers": tickets_without_timers,
            "note": "tickets sent back to the hotline (no queue) have no SLA timers",
            "by_clock_and_kind": by_clock,
            "zset_size": pending_timers,
            "earliest_due_in_s": if earliest_due_ms.is_finite() {
                json!(crate::stats::round((earliest_due_ms - now_ms) / 1000.0, 1))
            } else {
                Value::Null
            },
        },
        "queues": queue_state,
    }))
}
