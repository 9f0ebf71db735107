//! Tickets leaving Redis for the case archive, and coming back: which ended tickets are due,
//! their case files read whole, their removal once archived, and their restoration before a
//! reopen. The ticket hash's field names stay here; the archive sees them as an opaque map.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use crate::case::{CaseFile, CaseIndex};
use crate::lifecycle::TicketRecord;
use crate::ticket::Ticket;

use super::tickets::{HISTORY_PAGE, record};
use super::{Store, StoreError, county_prefix};

/// The case files of the tickets a pass asked for, and what it could not archive.
#[derive(Debug, Default)]
pub struct Leaving {
    /// Complete case files, ready for the archive.
    pub cases: Vec<CaseFile>,
    /// Ids no longer in Redis (archived and removed by another pass): only their listing is
    /// left to clean up.
    pub gone: Vec<String>,
    /// Ids that stay for now: being moved to another county, or reopened since they were
    /// listed.
    pub waiting: Vec<String>,
    /// Ids whose stored ticket cannot be read into a case file, with why; they stay in Redis
    /// and are reported, never archived half-read.
    pub damaged: Vec<(String, String)>,
}

/// What [`Store::remove_archived`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removed {
    /// Tickets removed from Redis.
    pub removed: u64,
    /// Tickets that changed since they were read (a newer version will be archived when it
    /// ends again), or that are being moved: kept.
    pub kept: u64,
    /// Listings of tickets already gone, cleaned up.
    pub gone: u64,
}

impl Store {
    /// Ended tickets of `county` that ended before `before_ms`, oldest first, skipping the
    /// first `skip` of them, at most `limit`, with when each ended.
    pub async fn ended_due(
        &self,
        county: &str,
        before_ms: i64,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let mut conn = self.conn.clone();
        let v: Vec<(String, f64)> = redis::cmd("ZRANGEBYSCORE")
            .arg(format!("{}ended", county_prefix(county)))
            .arg("-inf")
            .arg(before_ms)
            .arg("WITHSCORES")
            .arg("LIMIT")
            .arg(skip)
            .arg(limit)
            .query_async(&mut conn)
            .await?;
        Ok(v.into_iter().map(|(id, s)| (id, s as i64)).collect())
    }

    /// How many ended tickets are due for the archive in all `counties` (ended before
    /// `before_ms`), and when the oldest of them ended: the archive's backlog and lag. One
    /// pipelined round trip.
    pub async fn archive_backlog(
        &self,
        counties: &[String],
        before_ms: i64,
    ) -> Result<(u64, Option<i64>), StoreError> {
        if counties.is_empty() {
            return Ok((0, None));
        }
        let mut pipe = redis::pipe();
        for county in counties {
            let key = format!("{}ended", county_prefix(county));
            pipe.zcount(&key, "-inf", before_ms);
            pipe.zrange_withscores(&key, 0, 0);
        }
        let mut conn = self.conn.clone();
        let replies: Vec<redis::Value> = pipe.query_async(&mut conn).await?;
        let mut total = 0u64;
        let mut oldest: Option<i64> = None;
        for pair in replies.chunks(2) {
            let n: u64 = parse(pair[0].clone())?;
            total += n;
            let first: Vec<(String, f64)> = parse(pair[1].clone())?;
            if let Some((_, s)) = first.first() {
                let s = *s as i64;
                if s < before_ms {
                    oldest = Some(oldest.map_or(s, |o| o.min(s)));
                }
            }
        }
        Ok((total, oldest))
    }

    /// How many ended tickets each county has due for the archive (ended before `before_ms`),
    /// in one pipelined round trip: the archiving job passes only counties with some, so an
    /// idle county costs nothing more.
    pub async fn ended_due_counts(
        &self,
        counties: &[String],
        before_ms: i64,
    ) -> Result<Vec<u64>, StoreError> {
        if counties.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for county in counties {
            pipe.zcount(format!("{}ended", county_prefix(county)), "-inf", before_ms);
        }
        let mut conn = self.conn.clone();
        Ok(pipe.query_async(&mut conn).await?)
    }

    /// Reads the listed tickets whole (hash and every event) into case files, in one pipelined
    /// round trip.
    pub async fn case_files(
        &self,
        county: &str,
        due: &[(String, i64)],
    ) -> Result<Leaving, StoreError> {
        let mut out = Leaving::default();
        if due.is_empty() {
            return Ok(out);
        }
        let prefix = county_prefix(county);
        let mut pipe = redis::pipe();
        for (id, _) in due {
            pipe.hgetall(format!("{prefix}t:{id}"))
                .lrange(format!("{prefix}h:{id}"), 0, -1)
                .zscore(format!("{prefix}moving"), id);
        }
        let mut conn = self.conn.clone();
        let replies: Vec<redis::Value> = pipe.query_async(&mut conn).await?;
        for ((id, ended_ms), r) in due.iter().zip(replies.chunks(3)) {
            let fields: HashMap<String, String> = parse(r[0].clone())?;
            let history: Vec<String> = parse(r[1].clone())?;
            let moving: Option<f64> = parse(r[2].clone())?;
            if fields.is_empty() {
                out.gone.push(id.clone());
                continue;
            }
            if moving.is_some() || fields.contains_key("move_plan") {
                out.waiting.push(id.clone());
                continue;
            }
            match case_file(county, id, *ended_ms, fields, history) {
                Ok(Some(case)) => out.cases.push(case),
                Ok(None) => out.waiting.push(id.clone()),
                Err(e) => out.damaged.push((id.clone(), e.to_string())),
            }
        }
        Ok(out)
    }

    /// Removes tickets the archive now holds, each only if it is still the version archived
    /// (`archived.lua`); ids the archive did not get are not passed. `gone` listings are
    /// cleaned up.
    pub async fn remove_archived(
        &self,
        county: &str,
        archived: &[(String, u64)],
        gone: &[String],
    ) -> Result<Removed, StoreError> {
        if archived.is_empty() && gone.is_empty() {
            return Ok(Removed::default());
        }
        let prefix = county_prefix(county);
        let mut inv = self.archived.prepare_invoke();
        inv.key(format!("{prefix}ended"))
            .key(format!("{prefix}moving"))
            .key(format!("{prefix}timers"))
            .key(format!("{prefix}open"))
            .key(format!("{prefix}overdue"))
            .key(format!("{prefix}tickets"))
            .arg(&prefix);
        for (id, ver) in archived {
            inv.arg(id).arg(ver.to_string());
        }
        for id in gone {
            inv.arg(id).arg("");
        }
        let mut conn = self.conn.clone();
        let (removed, kept, gone): (u64, u64, u64) = inv.invoke_async(&mut conn).await?;
        Ok(Removed {
            removed,
            kept,
            gone,
        })
    }

    /// Puts an archived ticket back into Redis as it was archived, so it can be reopened;
    /// `false` when it was still (or again) there, which is as good.
    pub async fn restore_case(&self, case: &CaseFile) -> Result<bool, StoreError> {
        let prefix = county_prefix(&case.county);
        let mut fields = case.fields.clone();
        fields.insert("ticket".into(), case.request.to_string());
        with_archived_links(&mut fields, case);
        let events: Vec<String> = case.history.iter().map(Value::to_string).collect();
        let fields =
            serde_json::to_string(&fields).map_err(|e| StoreError::Reply(e.to_string()))?;
        let events =
            serde_json::to_string(&events).map_err(|e| StoreError::Reply(e.to_string()))?;
        let mut conn = self.conn.clone();
        let reply: Vec<String> = self
            .restore
            .key(format!("{prefix}t:{}", case.id))
            .key(format!("{prefix}h:{}", case.id))
            .key(format!("{prefix}ended"))
            .key(format!("{prefix}tickets"))
            .arg(&case.id)
            .arg(fields)
            .arg(events)
            .invoke_async(&mut conn)
            .await?;
        Ok(reply.first().map(String::as_str) == Some("restored"))
    }

    /// Takes (or renews) the archiving lease of `county` for `token` for `ms`, or gives it back
    /// (`take == false`); whether the caller holds (held) it.
    pub async fn archive_lease(
        &self,
        county: &str,
        token: &str,
        ms: u64,
        take: bool,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let held: i64 = self
            .archive_lease
            .key(format!("{}archive_lease", county_prefix(county)))
            .arg(if take { "take" } else { "release" })
            .arg(token)
            .arg(ms)
            .invoke_async(&mut conn)
            .await?;
        Ok(held == 1)
    }
}

impl Store {
    /// Lists the county's tickets stored before the ticket index and the archive existed (an
    /// upgrade): every ticket in `hl:{c}:tickets`, ended ones in `hl:{c}:ended`. Runs once per
    /// county (a marker key says it is done); a SCAN of the county's ticket hashes, a script per
    /// page. Returns how many were listed (0 once done).
    pub async fn index_old_tickets(&self, county: &str) -> Result<u64, StoreError> {
        let prefix = county_prefix(county);
        let marker = format!("{prefix}indexed");
        let mut conn = self.conn.clone();
        let done: Option<String> = redis::cmd("GET")
            .arg(&marker)
            .query_async(&mut conn)
            .await?;
        if done.is_some() {
            return Ok(0);
        }
        let pattern = format!("{prefix}t:*");
        let mut cursor = 0u64;
        let mut listed = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await?;
            let hash_prefix = format!("{prefix}t:");
            let ids: Vec<&str> = keys
                .iter()
                .filter_map(|k| k.strip_prefix(&hash_prefix))
                .collect();
            if !ids.is_empty() {
                let mut inv = self.index_tickets.prepare_invoke();
                inv.key(format!("{prefix}tickets"))
                    .key(format!("{prefix}ended"))
                    .arg(&prefix);
                for id in &ids {
                    inv.arg(*id);
                }
                let (added, _ended): (u64, u64) = inv.invoke_async(&mut conn).await?;
                listed += added;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let _: () = redis::cmd("SET")
            .arg(&marker)
            .arg("1")
            .query_async(&mut conn)
            .await?;
        Ok(listed)
    }
}

/// One reply of a pipeline, typed; a reply of another shape is an error, not a panic.
fn parse<T: redis::FromRedisValue>(v: redis::Value) -> Result<T, StoreError> {
    redis::from_redis_value(v).map_err(|e| StoreError::Reply(e.to_string()))
}

/// The typed record of an archived case, as if it were read from Redis: reads of archived
/// tickets show exactly what reads of live ones show (the newest page of the history).
pub fn record_of_case(case: &CaseFile) -> Result<TicketRecord, StoreError> {
    let mut fields: HashMap<String, String> = case
        .fields
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    fields.insert("ticket".into(), case.request.to_string());
    with_archived_links(&mut fields, case);
    let total = case.history.len();
    let page = usize::try_from(HISTORY_PAGE).unwrap_or(100);
    let history = case.history[total.saturating_sub(page)..]
        .iter()
        .map(Value::to_string)
        .collect();
    record(&case.id, fields, history, total as u64)?
        .ok_or_else(|| StoreError::Corrupt(format!("{}: archived without a status", case.id)))
}

/// The archive's links are the case's (a repeat request registered after it was archived is
/// linked there, not in the fields it was archived with).
fn with_archived_links<M: Extend<(String, String)>>(fields: &mut M, case: &CaseFile) {
    if !case.index.linked.is_empty() {
        let linked = serde_json::to_string(&case.index.linked).unwrap_or_else(|_| "[]".into());
        fields.extend([("linked".to_string(), linked)]);
    }
}

/// One ticket's case file; `None` when it is not ended (reopened since it was listed).
fn case_file(
    county: &str,
    id: &str,
    ended_ms: i64,
    mut fields: HashMap<String, String>,
    history: Vec<String>,
) -> Result<Option<CaseFile>, StoreError> {
    let request_json = fields.remove("ticket").unwrap_or_default();
    let ticket: Ticket = serde_json::from_str(&request_json)
        .map_err(|e| StoreError::Corrupt(format!("{id}: `ticket` {e}")))?;
    let request: Value = serde_json::from_str(&request_json)
        .map_err(|e| StoreError::Corrupt(format!("{id}: `ticket` {e}")))?;
    let events: Vec<Value> = history
        .iter()
        .map(|e| serde_json::from_str(e).unwrap_or_else(|_| Value::String(e.clone())))
        .collect();
    let total = history.len() as u64;
    let mut with_request = fields.clone();
    with_request.insert("ticket".into(), request_json);
    let Some(rec) = record(id, with_request, Vec::new(), total)? else {
        return Ok(None);
    };
    if !rec.status().is_ended() {
        return Ok(None);
    }
    let index = CaseIndex::of(&rec, &ticket, &events);
    Ok(Some(CaseFile {
        id: id.to_string(),
        county: county.to_string(),
        ver: rec.ver,
        ended_ms,
        fields: fields.into_iter().collect::<BTreeMap<_, _>>(),
        request,
        history: events,
        index,
    }))
}
