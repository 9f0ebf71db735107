//! Searching the case archive: one parameterised statement built from a [`CaseQuery`], newest
//! first with a keyset cursor, text through the bigram index and confirmed by `strpos`, the
//! caller by the hash of the phone. Values are only ever bound as parameters, never written into
//! the SQL text.
//!
//! A search limited to several counties is one branch per county (`UNION ALL` of
//! `ORDER BY … LIMIT n` each), so every branch walks `cases_county_created` in order and stops
//! after `n` rows; a single `county = ANY(…)` would read every case of those counties and sort
//! them.

use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;

use crate::case::{CaseHit, CaseIndex, CaseQuery};

use super::{Archive, ArchiveError, bigrams, ts};

/// The columns a hit needs: no request, history, body or personal data is read.
const COLUMNS: &str = "id, county, status, source, external_id, sender, service, category, \
    level, town, agent, created_at, resolved_at, title";

/// The order of every search (and of `cases_created`, `cases_county_created`).
const ORDER: &str = "ORDER BY created_at DESC, id DESC";

/// A parameter of the statement.
type Param = Box<dyn ToSql + Sync + Send>;

/// A statement being built: its conditions and their parameters, numbered as they are bound.
#[derive(Default)]
struct Statement {
    params: Vec<Param>,
    conditions: Vec<String>,
}

impl Statement {
    /// Binds `value` and returns its placeholder.
    fn bind(&mut self, value: impl ToSql + Sync + Send + 'static) -> String {
        self.params.push(Box::new(value));
        format!("${}", self.params.len())
    }

    /// `column = value`, when the filter is set.
    fn equals(&mut self, column: &str, value: &Option<String>) {
        if let Some(v) = value {
            let p = self.bind(v.clone());
            self.conditions.push(format!("{column} = {p}"));
        }
    }

    /// `column >= from AND column < to`, for the ends that are set.
    fn within(&mut self, column: &str, range: crate::case::TimeRange) {
        if let Some(from) = range.from_ms {
            let p = self.bind(ts(from));
            self.conditions.push(format!("{column} >= {p}"));
        }
        if let Some(to) = range.to_ms {
            let p = self.bind(ts(to));
            self.conditions.push(format!("{column} < {p}"));
        }
    }
}

/// The statement for `query`, answering at most `rows` rows; `None` when it can match nothing
/// (a scope of no county).
fn statement(query: &CaseQuery, rows: usize) -> Option<(String, Vec<Param>)> {
    let mut s = Statement::default();
    s.equals("source", &query.source);
    s.equals("external_id", &query.external_id);
    s.equals("caller_key", &query.caller_key);
    s.equals("status", &query.status);
    s.equals("service", &query.service);
    s.equals("category", &query.category);
    s.equals("level", &query.level);
    s.equals("town", &query.town);
    s.equals("agent", &query.agent);
    s.equals("sender", &query.sender);
    s.within("created_at", query.created);
    s.within("resolved_at", query.resolved);
    if let Some(to) = query.resolved.to_ms {
        // A case is resolved after it was created, so one resolved before `to` was created
        // before it too: said outright, the walk of `cases_created` starts there instead of
        // reading every newer case (a month's resolutions: 0.3-1 s without, 2-8 ms with, on
        // 1,000,000 cases).
        let p = s.bind(ts(to));
        s.conditions.push(format!("created_at < {p}"));
    }
    if let Some(text) = &query.text {
        // The index narrows by pairs of characters; `strpos` confirms the substring itself
        // (the pairs of "工资拖欠" are also in "拖欠…工资"). Title and body are matched apart, as
        // the Redis side does.
        let grams = s.bind(bigrams(text));
        let q = s.bind(text.clone());
        s.conditions.push(format!(
            "grams @> {grams}::text[] AND (strpos(title, {q}) > 0 OR strpos(body, {q}) > 0)"
        ));
    }
    if let Some(after) = &query.after {
        let t = s.bind(ts(after.created_ms));
        let i = s.bind(after.id.clone());
        s.conditions.push(format!("(created_at, id) < ({t}, {i})"));
    }
    let limit = s.bind(i64::try_from(rows).unwrap_or(i64::MAX));
    let branch = |s: &mut Statement, county: Option<&String>| {
        let mut conditions = s.conditions.clone();
        if let Some(c) = county {
            let p = s.bind(c.clone());
            conditions.push(format!("county = {p}"));
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        format!("SELECT {COLUMNS} FROM cases{filter} {ORDER} LIMIT {limit}")
    };
    let sql = match query.counties.as_deref() {
        None => branch(&mut s, None),
        Some([]) => return None,
        Some([one]) => branch(&mut s, Some(one)),
        Some(many) => {
            let branches: Vec<String> = many
                .iter()
                .map(|c| format!("({})", branch(&mut s, Some(c))))
                .collect();
            format!(
                "SELECT {COLUMNS} FROM ({}) AS found {ORDER} LIMIT {limit}",
                branches.join(" UNION ALL ")
            )
        }
    };
    Some((sql, s.params))
}

impl Archive {
    /// The archived cases `query` lists, in its order, at most `query.limit + 1` (one more than
    /// a page, so the caller knows whether another page follows).
    pub async fn search(&self, query: &CaseQuery) -> Result<Vec<CaseHit>, ArchiveError> {
        let Some((sql, params)) = statement(query, query.limit + 1) else {
            return Ok(Vec::new());
        };
        self.bounded("searching the archive", async {
            let client = self.client().await?;
            let refs: Vec<&(dyn ToSql + Sync)> = params
                .iter()
                .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                .collect();
            let rows = client.query(&sql, &refs).await?;
            rows.iter().map(hit_of).collect()
        })
        .await
    }
}

/// A hit read from a row of [`COLUMNS`].
fn hit_of(r: &tokio_postgres::Row) -> Result<CaseHit, ArchiveError> {
    let ms = |t: DateTime<Utc>| t.timestamp_millis();
    Ok(CaseHit {
        id: r.try_get(0)?,
        county: r.try_get(1)?,
        index: CaseIndex {
            status: r.try_get(2)?,
            source: r.try_get(3)?,
            external_id: r.try_get(4)?,
            sender: r.try_get(5)?,
            service: r.try_get(6)?,
            category: r.try_get(7)?,
            level: r.try_get(8)?,
            town: r.try_get(9)?,
            agent: r.try_get(10)?,
            created_ms: ms(r.try_get(11)?),
            resolved_ms: r.try_get::<_, Option<DateTime<Utc>>>(12)?.map(ms),
            title: r.try_get(13)?,
            ..CaseIndex::default()
        },
        archived: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::{Cursor, TimeRange};

    fn query() -> CaseQuery {
        CaseQuery {
            text: None,
            source: None,
            external_id: None,
            caller_key: None,
            status: None,
            service: None,
            category: None,
            level: None,
            counties: None,
            town: None,
            agent: None,
            created: TimeRange::default(),
            resolved: TimeRange::default(),
            sender: None,
            limit: 20,
            after: None,
        }
    }

    #[test]
    fn values_are_bound_never_written_into_the_sql() {
        let mut q = query();
        q.text = Some("拖欠'; DROP TABLE cases; --".into());
        q.town = Some("城关镇".into());
        q.counties = Some(vec!["320831".into()]);
        q.after = Some(Cursor {
            created_ms: 1,
            id: "320831-00000001".into(),
        });
        let (sql, params) = statement(&q, 21).expect("a statement");
        for value in ["DROP", "城关镇", "320831", "拖欠"] {
            assert!(!sql.contains(value), "{value} in {sql}");
        }
        // town, grams, text, cursor time, cursor id, limit, county.
        assert_eq!(params.len(), 7, "{sql}");
        assert!(
            sql.contains("ORDER BY created_at DESC, id DESC LIMIT $6"),
            "{sql}"
        );
        assert!(sql.contains("(created_at, id) < ($4, $5)"), "{sql}");
    }

    #[test]
    fn several_counties_are_one_ordered_branch_each_and_none_is_nothing() {
        let mut q = query();
        q.service = Some("mediation".into());
        q.counties = Some(vec!["320831".into(), "440305".into()]);
        let (sql, params) = statement(&q, 8).expect("a statement");
        assert_eq!(sql.matches("UNION ALL").count(), 1, "{sql}");
        assert_eq!(sql.matches("service = $1").count(), 2, "{sql}");
        assert!(
            sql.contains("county = $3") && sql.contains("county = $4"),
            "{sql}"
        );
        assert_eq!(params.len(), 4);
        q.counties = Some(Vec::new());
        assert!(statement(&q, 8).is_none());
        q.counties = None;
        let (sql, _) = statement(&q, 8).expect("a statement");
        assert!(!sql.contains("county ="), "{sql}");
    }
}
