//! Searching the tickets in Redis: each county's ticket index (`hl:{c}:tickets`, every ticket in
//! Redis by creation time) read newest first from the cursor, a page of ids per round trip, the
//! fields a search needs read in one pipelined round trip per page, and the filters applied in
//! Rust by the pure [`CaseQuery::matches`].
//!
//! Cost: Redis has no secondary index but creation time, so in the worst case (filters that
//! match few tickets) a search reads every ticket in Redis of the counties searched, at one
//! round trip per [`SEARCH_PAGE`] ids plus one for their fields. It stops at `limit + 1` matches
//! per county. Redis holds only open tickets and those ended within `archive.after_seconds`,
//! so this stays bounded by the deployment's working set, not by the years in the archive.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::case::{CaseHit, CaseIndex, CaseQuery};
use crate::lifecycle::TicketRecord;
use crate::ticket::Ticket;

use super::tickets::{HISTORY_PAGE, record};
use super::{Store, StoreError, county_prefix};

/// Ids read from a county's index per round trip.
pub const SEARCH_PAGE: usize = 200;

/// The hash fields a search reads: what [`record`] needs for status, labels, sender, holder
/// and clocks (the resolution time), and the request.
const FIELDS: [&str; 14] = [
    "status",
    "ver",
    "created_ms",
    "service",
    "category",
    "level",
    "source",
    "sender",
    "ticket",
    "clocks",
    "lease_id",
    "lease_agent",
    "lease_expires_ms",
    "assigned_agent",
];

/// The hash fields [`CaseQuery::matches_labels`] reads, in this order.
const LABELS: [&str; 7] = [
    "status",
    "created_ms",
    "source",
    "service",
    "category",
    "level",
    "sender",
];

/// What a search found among the tickets in Redis.
#[derive(Debug, Default)]
pub struct OpenMatches {
    /// Matches, in [`CaseHit::order`], at most `limit + 1`.
    pub hits: Vec<CaseHit>,
    /// Every ticket Redis held when its fields were read, matching or not: for these Redis is
    /// the truth, and an archived copy is not listed. An id the index named whose ticket was
    /// gone by then (archived meanwhile) is not in it.
    pub seen: HashSet<String>,
    /// How many tickets were read (for the search's cost in logs and tests).
    pub read: u64,
}

/// A ticket that passed every filter but the agent's.
struct Candidate {
    id: String,
    record: TicketRecord,
    ticket: Ticket,
    index: CaseIndex,
}

impl Store {
    /// The tickets in Redis of `counties` that `query` lists, newest first from its cursor, at
    /// most `query.limit + 1`. The counties are searched concurrently over the multiplexed
    /// connection.
    pub async fn search_open(
        &self,
        counties: &[String],
        query: &CaseQuery,
    ) -> Result<OpenMatches, StoreError> {
        let want = query.limit + 1;
        let per_county = futures_util::future::try_join_all(
            counties.iter().map(|c| self.search_county(c, query, want)),
        )
        .await?;
        let mut out = OpenMatches::default();
        for found in per_county {
            out.hits.extend(found.hits);
            out.seen.extend(found.seen);
            out.read += found.read;
        }
        out.hits.sort_by(CaseHit::order);
        out.hits.truncate(want);
        Ok(out)
    }

    async fn search_county(
        &self,
        county: &str,
        query: &CaseQuery,
        want: usize,
    ) -> Result<OpenMatches, StoreError> {
        let prefix = county_prefix(county);
        let index_key = format!("{prefix}tickets");
        let mut out = OpenMatches::default();
        // The newest score still to read (inclusive) and how many ids of exactly that score were
        // already read: a page ends inside a run of equal scores as often as not.
        // A ticket resolved before `resolved_to` was created before it too.
        let mut max_ms: Option<i64> = [
            query.after.as_ref().map(|c| c.created_ms),
            query.created.to_ms.map(|t| t - 1),
            query.resolved.to_ms.map(|t| t - 1),
        ]
        .into_iter()
        .flatten()
        .min();
        let min = query
            .created
            .from_ms
            .map_or_else(|| "-inf".to_string(), |f| f.to_string());
        let mut skip = 0usize;
        let mut conn = self.conn.clone();
        loop {
            let page: Vec<(String, f64)> = redis::cmd("ZREVRANGEBYSCORE")
                .arg(&index_key)
                .arg(max_ms.map_or_else(|| "+inf".to_string(), |m| m.to_string()))
                .arg(&min)
                .arg("WITHSCORES")
                .arg("LIMIT")
                .arg(skip)
                .arg(SEARCH_PAGE)
                .query_async(&mut conn)
                .await?;
            let exhausted = page.len() < SEARCH_PAGE;
            if let Some((_, last)) = page.last() {
                let last = *last as i64;
                if max_ms == Some(last) {
                    skip += page.len();
                } else {
                    max_ms = Some(last);
                    skip = page.iter().filter(|(_, s)| *s as i64 == last).count();
                }
            }
            let ids: Vec<String> = page
                .into_iter()
                .filter(|(id, score)| {
                    query
                        .after
                        .as_ref()
                        .is_none_or(|c| c.is_before(*score as i64, id))
                })
                .map(|(id, _)| id)
                .collect();
            out.read += ids.len() as u64;
            let ids = self.labelled(county, ids, query, &mut out.seen).await?;
            let candidates = self.candidates(county, &ids, query, &mut out.seen).await?;
            for c in self
                .with_agents(county, candidates, query, want - out.hits.len())
                .await?
            {
                out.hits.push(CaseHit {
                    id: c.id,
                    county: county.to_string(),
                    index: c.index,
                    archived: false,
                });
                if out.hits.len() >= want {
                    return Ok(out);
                }
            }
            if exhausted {
                return Ok(out);
            }
        }
    }

    /// The tickets among `ids` whose labels match ([`CaseQuery::matches_labels`]), in the order
    /// given: a pipelined `HMGET` of a few short fields, so that a search by status, service,
    /// category, level, source or a partner's own reads and parses the request and clocks only
    /// of tickets that may match. A search that filters no label skips this round trip. Every
    /// ticket found goes into `seen`; one no longer there (archived since the index was read)
    /// does not, so that the archive, read later, lists it.
    async fn labelled(
        &self,
        county: &str,
        ids: Vec<String>,
        query: &CaseQuery,
        seen: &mut HashSet<String>,
    ) -> Result<Vec<String>, StoreError> {
        let q = query;
        let filters_labels = q.source.is_some()
            || q.status.is_some()
            || q.service.is_some()
            || q.category.is_some()
            || q.level.is_some()
            || q.sender.is_some();
        if ids.is_empty() || !filters_labels {
            return Ok(ids);
        }
        let prefix = county_prefix(county);
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.cmd("HMGET")
                .arg(format!("{prefix}t:{id}"))
                .arg(&LABELS[..]);
        }
        let mut conn = self.conn.clone();
        let replies: Vec<Vec<Option<String>>> = pipe.query_async(&mut conn).await?;
        Ok(ids
            .into_iter()
            .zip(replies)
            .filter_map(|(id, v)| {
                let mut v = v.into_iter();
                let mut next = || v.next().flatten();
                let status = next()?;
                seen.insert(id.clone());
                let labels = CaseIndex {
                    status,
                    created_ms: next().and_then(|c| c.parse().ok()).unwrap_or(0),
                    source: next().unwrap_or_default(),
                    service: next().unwrap_or_default(),
                    category: next().unwrap_or_default(),
                    level: next().unwrap_or_default(),
                    sender: next().filter(|s| !s.is_empty()),
                    ..CaseIndex::default()
                };
                query.matches_labels(county, &labels).then_some(id)
            })
            .collect())
    }

    /// The tickets among `ids` that pass every filter but the agent's, in the order given; one
    /// pipelined round trip. A ticket gone meanwhile (archived and removed) is skipped and taken
    /// out of `seen`, so the archive speaks for it; one that cannot be read is skipped and logged
    /// (by id), never failing the whole search.
    async fn candidates(
        &self,
        county: &str,
        ids: &[String],
        query: &CaseQuery,
        seen: &mut HashSet<String>,
    ) -> Result<Vec<Candidate>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let prefix = county_prefix(county);
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.cmd("HMGET")
                .arg(format!("{prefix}t:{id}"))
                .arg(&FIELDS[..]);
        }
        let mut conn = self.conn.clone();
        let replies: Vec<Vec<Option<String>>> = pipe.query_async(&mut conn).await?;
        let mut out = Vec::new();
        for (id, values) in ids.iter().zip(replies) {
            let fields: HashMap<String, String> = FIELDS
                .iter()
                .zip(values)
                .filter_map(|(k, v)| v.map(|v| ((*k).to_string(), v)))
                .collect();
            if fields.contains_key("status") {
                seen.insert(id.clone());
            } else {
                seen.remove(id);
            }
            let read = record(id, fields, Vec::new(), 0).and_then(|r| {
                let Some(r) = r else { return Ok(None) };
                let t: Ticket = serde_json::from_str(&r.ticket_json)
                    .map_err(|e| StoreError::Corrupt(format!("{id}: `ticket` {e}")))?;
                Ok(Some((r, t)))
            });
            let (record, ticket) = match read {
                Ok(Some(found)) => found,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(ticket_id = %id, error = %e, "a ticket search could not read is skipped");
                    continue;
                }
            };
            let index = CaseIndex::of(&record, &ticket, &[]);
            if query.matches_besides_agent(county, &index) {
                out.push(Candidate {
                    id: id.clone(),
                    record,
                    ticket,
                    index,
                });
            }
        }
        Ok(out)
    }

    /// The candidates that pass the agent filter too, at most `room` of them, each with its
    /// agent: the one holding it, else the last one its history names (as the case archive
    /// records it). Histories are read, in one pipelined round trip, only for candidates that
    /// nobody holds and that could be listed.
    async fn with_agents(
        &self,
        county: &str,
        mut candidates: Vec<Candidate>,
        query: &CaseQuery,
        room: usize,
    ) -> Result<Vec<Candidate>, StoreError> {
        if query.agent.is_none() {
            // Without an agent filter every candidate matches: only the first `room` are listed.
            candidates.truncate(room);
        }
        let unheld: Vec<usize> = (0..candidates.len())
            .filter(|&i| candidates[i].index.agent.is_none())
            .collect();
        if !unheld.is_empty() {
            let prefix = county_prefix(county);
            let mut pipe = redis::pipe();
            for &i in &unheld {
                pipe.lrange(
                    format!("{prefix}h:{}", candidates[i].id),
                    -HISTORY_PAGE as isize,
                    -1,
                );
            }
            let mut conn = self.conn.clone();
            let histories: Vec<Vec<String>> = pipe.query_async(&mut conn).await?;
            for (&i, history) in unheld.iter().zip(histories) {
                let events: Vec<Value> = history
                    .iter()
                    .filter_map(|e| serde_json::from_str(e).ok())
                    .collect();
                let c = &mut candidates[i];
                c.index.agent = CaseIndex::of(&c.record, &c.ticket, &events).agent;
            }
        }
        Ok(candidates
            .into_iter()
            .filter(|c| query.agent_matches(c.index.agent.as_deref()))
            .take(room)
            .collect())
    }
}
