//! The case archive: every ticket as it ended, in PostgreSQL, for years (issue 18).
//!
//! Redis holds the tickets being worked; once a ticket's life here has ended and
//! `archive.after_seconds` have passed, the archiving job copies its case file here and only
//! then removes it from Redis. Reads, reopens and idempotent retries of an archived ticket come
//! here; so do searches of closed cases, the retention job and the audit log.
//!
//! Only this module knows SQL. Every write is idempotent: a case is upserted by id and an
//! older version never replaces a newer one, so a pass repeated after a crash changes nothing.
//! Every call is bounded by `archive.statement_timeout_ms` on the client side too, so a
//! stalled server cannot hold a request or a job.

pub mod audit;
pub mod callers;
pub mod retention;
pub mod search;
pub mod settings;

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use serde_json::Value;
use tokio_postgres::NoTls;
use tokio_postgres::types::ToSql;

use crate::case::{CaseFile, CaseIndex};
pub use audit::AuditEntry;
pub use settings::{ArchiveSettings, DatabaseUrl};

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Why the archive could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// PostgreSQL could not be reached or did not answer in time; nothing is known to have been
    /// written unless the caller can tell otherwise.
    #[error("the case archive is unavailable: {0}")]
    Unavailable(String),
    /// A statement failed for a reason other than reachability (a bug or a damaged schema).
    #[error("the case archive refused a statement: {0}")]
    Query(String),
    /// A stored case could not be read back.
    #[error("an archived case is damaged: {0}")]
    Corrupt(String),
}

impl ArchiveError {
    fn from_pg(e: &tokio_postgres::Error) -> ArchiveError {
        match e.code() {
            // Reachability and capacity: cancelled by the statement timeout, too many
            // connections, shutting down, out of disk, a standby.
            Some(code)
                if code.code().starts_with("57")
                    || code.code().starts_with("53")
                    || code.code().starts_with("08")
                    || code.code() == "25006" =>
            {
                ArchiveError::Unavailable(e.to_string())
            }
            Some(_) => ArchiveError::Query(e.to_string()),
            None => ArchiveError::Unavailable(e.to_string()),
        }
    }
}

impl From<tokio_postgres::Error> for ArchiveError {
    fn from(e: tokio_postgres::Error) -> Self {
        ArchiveError::from_pg(&e)
    }
}

impl From<deadpool_postgres::PoolError> for ArchiveError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => ArchiveError::from_pg(&e),
            other => ArchiveError::Unavailable(other.to_string()),
        }
    }
}

/// The case archive: a pool of connections to PostgreSQL and the schema's version.
pub struct Archive {
    pool: Pool,
    timeout: Duration,
    config: tokio_postgres::Config,
    migrated: tokio::sync::OnceCell<()>,
    lz4: tokio::sync::OnceCell<bool>,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive").finish_non_exhaustive()
    }
}

/// What the archive holds, for `/readyz`, metrics and the soak's accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ArchiveCounts {
    /// Cases archived.
    pub cases: u64,
    /// Of them, cases whose personal data has been erased.
    pub erased: u64,
}

fn ts(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// Every distinct pair of adjacent characters of `text` (Chinese is written without spaces, so
/// a word index finds nothing; any substring of two or more characters contains one of these
/// pairs, so the index narrows a search and `strpos` confirms it). Whitespace breaks pairs.
pub fn bigrams(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let chars: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
    for w in chars.windows(2) {
        if w[0].is_whitespace() || w[1].is_whitespace() {
            continue;
        }
        out.push(w.iter().collect());
    }
    out.sort_unstable();
    out.dedup();
    out
}

impl Archive {
    /// A pool for `url`; connects lazily, so a gateway starts while PostgreSQL is down and
    /// archives once it is back (tickets wait in Redis meanwhile).
    pub fn new(url: &DatabaseUrl, settings: &ArchiveSettings) -> Result<Archive, ArchiveError> {
        let mut config: tokio_postgres::Config = url
            .expose()
            .parse()
            .map_err(|e: tokio_postgres::Error| ArchiveError::Query(e.to_string()))?;
        let timeout = Duration::from_millis(settings.statement_timeout_ms);
        config.connect_timeout(Duration::from_millis(settings.connect_timeout_ms));
        config.options(format!(
            "-c statement_timeout={} -c lock_timeout={}",
            settings.statement_timeout_ms, settings.statement_timeout_ms
        ));
        config.application_name("hotline-gateway");
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let wait = Duration::from_millis(settings.connect_timeout_ms);
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(wait))
            .create_timeout(Some(wait))
            .recycle_timeout(Some(wait))
            .build()
            .map_err(|e| ArchiveError::Query(e.to_string()))?;
        Ok(Archive {
            pool,
            timeout,
            config,
            migrated: tokio::sync::OnceCell::new(),
            lz4: tokio::sync::OnceCell::new(),
        })
    }

    /// Runs `f` within the client-side bound: a stalled server (or network) gives
    /// `Unavailable` after `statement_timeout_ms` plus the wait for a connection.
    async fn bounded<T, F>(&self, what: &str, f: F) -> Result<T, ArchiveError>
    where
        F: std::future::Future<Output = Result<T, ArchiveError>>,
    {
        let limit = self.timeout + self.timeout / 2;
        match tokio::time::timeout(limit, f).await {
            Ok(r) => r,
            Err(_) => Err(ArchiveError::Unavailable(format!(
                "{what}: no answer within {} ms",
                limit.as_millis()
            ))),
        }
    }

    /// Brings the schema up to date (the migrations embedded in the binary), once per process;
    /// gateways starting together take turns through an advisory lock. Called before every use,
    /// so an archive that was down at start-up is migrated when it comes back.
    pub async fn migrate(&self) -> Result<(), ArchiveError> {
        self.migrated
            .get_or_try_init(|| self.bounded("migrating the archive", self.run_migrations()))
            .await
            .map(|_| ())
    }

    async fn run_migrations(&self) -> Result<(), ArchiveError> {
        let (mut client, connection) = self.config.connect(NoTls).await?;
        let driver = tokio::spawn(connection);
        let result = async {
            // One gateway at a time: refinery records what ran, but two runners at once could
            // both try the same migration.
            client
                .execute("SELECT pg_advisory_lock(7340018)", &[])
                .await?;
            let run = embedded::migrations::runner()
                .run_async(&mut client)
                .await
                .map_err(|e| ArchiveError::Query(format!("migration failed: {e}")));
            let _ = client
                .execute("SELECT pg_advisory_unlock(7340018)", &[])
                .await;
            run.map(|_| ())
        }
        .await;
        drop(client);
        let _ = driver.await;
        result
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, ArchiveError> {
        self.migrate().await?;
        Ok(self.pool.get().await?)
    }

    /// Writes cases in one transaction: a case not yet archived is inserted, an archived one is
    /// replaced only by a newer version. Returns once committed, so the caller may then remove
    /// them from Redis.
    pub async fn put(&self, cases: &[CaseFile]) -> Result<(), ArchiveError> {
        if cases.is_empty() {
            return Ok(());
        }
        self.bounded("archiving", async {
            let mut client = self.client().await?;
            let lz4 = *self
                .lz4
                .get_or_try_init(|| async {
                    let row = client.query_opt(LZ4_AVAILABLE, &[]).await?;
                    Ok::<_, ArchiveError>(row.is_some())
                })
                .await?;
            let tx = client.transaction().await?;
            if lz4 {
                // A case is about 8 KB (text, request, fields, history), so PostgreSQL
                // compresses it as it stores it; its default, pglz, took a fifth of the
                // server's time when archiving, lz4 a fraction of that. Reads decompress either.
                tx.batch_execute("SET LOCAL default_toast_compression = lz4")
                    .await?;
            }
            let stmt = tx.prepare_cached(UPSERT).await?;
            let rows: Vec<Row> = cases.iter().map(Row::of).collect::<Result<_, _>>()?;
            // One statement for the whole batch (a column per parameter, `UNNEST`ed into
            // rows): PostgreSQL plans and runs it once instead of once per case.
            let cols = Columns::of(&rows);
            tx.execute(&stmt, &cols.params()).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// The archived case `id`, if there is one.
    pub async fn get(&self, id: &str) -> Result<Option<CaseFile>, ArchiveError> {
        self.bounded("reading an archived case", async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(&format!("{SELECT_CASE} WHERE id = $1"))
                .await?;
            let row = client.query_opt(&stmt, &[&id]).await?;
            row.map(|r| case_of(&r)).transpose()
        })
        .await
    }

    /// Whether these ids are archived, each at which version (`None`: not archived).
    pub async fn versions(&self, ids: &[String]) -> Result<Vec<Option<u64>>, ArchiveError> {
        self.bounded("reading archived versions", async {
            let client = self.client().await?;
            let rows = client
                .query("SELECT id, ver FROM cases WHERE id = ANY($1)", &[&ids])
                .await?;
            let found: std::collections::HashMap<String, i64> =
                rows.iter().map(|r| (r.get(0), r.get(1))).collect();
            Ok(ids
                .iter()
                .map(|id| found.get(id).map(|v| u64::try_from(*v).unwrap_or(0)))
                .collect())
        })
        .await
    }

    /// How many cases the archive holds, and how many of them have been erased.
    pub async fn counts(&self) -> Result<ArchiveCounts, ArchiveError> {
        self.bounded("counting cases", async {
            let client = self.client().await?;
            let row = client
                .query_one("SELECT count(*), count(personal_erased_at) FROM cases", &[])
                .await?;
            let n = |i: usize| u64::try_from(row.get::<_, i64>(i)).unwrap_or(0);
            Ok(ArchiveCounts {
                cases: n(0),
                erased: n(1),
            })
        })
        .await
    }

    /// A cheap round trip for readiness and the `hotline_archive_up` gauge.
    pub async fn ping(&self) -> Result<(), ArchiveError> {
        self.bounded("pinging the archive", async {
            let client = self.client().await?;
            client.simple_query("SELECT 1").await?;
            Ok(())
        })
        .await
    }
}

/// The batch's upsert: one row per element of the arrays; `grams` and `linked` come joined by
/// spaces (neither a bigram nor an id holds one) and are split here, since `UNNEST` cannot take
/// arrays of arrays of different lengths. Ids within a batch are distinct (a county's ended
/// list), as `ON CONFLICT` requires.
const UPSERT: &str = "INSERT INTO cases (id, county, ver, status, source, external_id, sender, \
    service, category, level, town, village, grid, agent, created_at, resolved_at, ended_at, \
    title, body, grams, caller_name, caller_phone, caller_key, linked, request, fields, history) \
    SELECT id, county, ver, status, source, external_id, sender, service, category, level, \
    town, village, grid, agent, created_at, resolved_at, ended_at, title, body, \
    string_to_array(grams, ' '), caller_name, caller_phone, caller_key, \
    string_to_array(linked, ' '), request, fields, history \
    FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::text[], $5::text[], $6::text[], \
    $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], \
    $14::text[], $15::timestamptz[], $16::timestamptz[], $17::timestamptz[], $18::text[], \
    $19::text[], $20::text[], $21::text[], $22::text[], $23::text[], $24::text[], \
    $25::jsonb[], $26::jsonb[], $27::jsonb[]) \
    AS r(id, county, ver, status, source, external_id, sender, service, category, level, town, \
    village, grid, agent, created_at, resolved_at, ended_at, title, body, grams, caller_name, \
    caller_phone, caller_key, linked, request, fields, history) \
    ON CONFLICT (id) DO UPDATE SET ver = EXCLUDED.ver, status = EXCLUDED.status, \
    service = EXCLUDED.service, category = EXCLUDED.category, level = EXCLUDED.level, \
    agent = EXCLUDED.agent, resolved_at = EXCLUDED.resolved_at, ended_at = EXCLUDED.ended_at, \
    archived_at = now(), linked = EXCLUDED.linked, fields = EXCLUDED.fields, \
    history = EXCLUDED.history, \
    request = CASE WHEN cases.personal_erased_at IS NULL THEN EXCLUDED.request ELSE cases.request END \
    WHERE cases.ver < EXCLUDED.ver";

/// Whether the server can compress with lz4 (PostgreSQL 14 and later, built with it).
const LZ4_AVAILABLE: &str = "SELECT 1 FROM pg_settings \
    WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)";

const SELECT_CASE: &str = "SELECT id, county, ver, ended_at, fields, request, history, status, \
    source, external_id, sender, service, category, level, town, village, grid, agent, \
    created_at, resolved_at, title, body, caller_name, caller_phone, caller_key, linked FROM cases";

/// One case as SQL parameters.
struct Row {
    id: String,
    county: String,
    ver: i64,
    created: DateTime<Utc>,
    resolved: Option<DateTime<Utc>>,
    ended: DateTime<Utc>,
    grams: Vec<String>,
    caller_name: Option<String>,
    caller_phone: Option<String>,
    caller_key: Option<String>,
    request: Value,
    fields: Value,
    history: Value,
    index: CaseIndex,
}

impl Row {
    fn of(c: &CaseFile) -> Result<Row, ArchiveError> {
        let i = &c.index;
        let some = |s: &str| Some(s.to_string()).filter(|s| !s.is_empty());
        let fields = serde_json::to_value(&c.fields)
            .map_err(|e| ArchiveError::Corrupt(format!("{}: fields: {e}", c.id)))?;
        Ok(Row {
            id: c.id.clone(),
            county: c.county.clone(),
            ver: i64::try_from(c.ver).unwrap_or(i64::MAX),
            created: ts(i.created_ms),
            resolved: i.resolved_ms.map(ts),
            ended: ts(c.ended_ms),
            grams: bigrams(&format!("{}\n{}", i.title, i.text)),
            caller_name: some(&i.caller_name),
            caller_phone: some(&i.caller_phone),
            caller_key: some(&i.caller_key),
            request: c.request.clone(),
            fields,
            history: Value::Array(c.history.clone()),
            index: i.clone(),
        })
    }
}

/// A batch of rows as one array per column, the parameters of [`UPSERT`].
struct Columns<'a> {
    text: [Vec<&'a str>; 10],
    optional: [Vec<Option<&'a str>>; 8],
    ver: Vec<i64>,
    created: Vec<DateTime<Utc>>,
    resolved: Vec<Option<DateTime<Utc>>>,
    ended: Vec<DateTime<Utc>>,
    grams: Vec<String>,
    linked: Vec<String>,
    json: [Vec<&'a Value>; 3],
}

impl<'a> Columns<'a> {
    fn of(rows: &'a [Row]) -> Columns<'a> {
        let text = |f: fn(&'a Row) -> &'a str| rows.iter().map(f).collect::<Vec<_>>();
        let optional = |f: fn(&'a Row) -> Option<&'a str>| rows.iter().map(f).collect::<Vec<_>>();
        let json = |f: fn(&'a Row) -> &'a Value| rows.iter().map(f).collect::<Vec<_>>();
        Columns {
            text: [
                text(|r| &r.id),
                text(|r| &r.county),
                text(|r| &r.index.status),
                text(|r| &r.index.source),
                text(|r| &r.index.external_id),
                text(|r| &r.index.service),
                text(|r| &r.index.category),
                text(|r| &r.index.level),
                text(|r| &r.index.title),
                text(|r| &r.index.text),
            ],
            optional: [
                optional(|r| r.index.sender.as_deref()),
                optional(|r| r.index.town.as_deref()),
                optional(|r| r.index.village.as_deref()),
                optional(|r| r.index.grid.as_deref()),
                optional(|r| r.index.agent.as_deref()),
                optional(|r| r.caller_name.as_deref()),
                optional(|r| r.caller_phone.as_deref()),
                optional(|r| r.caller_key.as_deref()),
            ],
            ver: rows.iter().map(|r| r.ver).collect(),
            created: rows.iter().map(|r| r.created).collect(),
            resolved: rows.iter().map(|r| r.resolved).collect(),
            ended: rows.iter().map(|r| r.ended).collect(),
            grams: rows.iter().map(|r| r.grams.join(" ")).collect(),
            linked: rows.iter().map(|r| r.index.linked.join(" ")).collect(),
            json: [
                json(|r| &r.request),
                json(|r| &r.fields),
                json(|r| &r.history),
            ],
        }
    }

    /// In [`UPSERT`]'s order.
    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        let [
            id,
            county,
            status,
            source,
            external_id,
            service,
            category,
            level,
            title,
            body,
        ] = &self.text;
        let [
            sender,
            town,
            village,
            grid,
            agent,
            caller_name,
            caller_phone,
            caller_key,
        ] = &self.optional;
        let [request, fields, history] = &self.json;
        vec![
            id,
            county,
            &self.ver,
            status,
            source,
            external_id,
            sender,
            service,
            category,
            level,
            town,
            village,
            grid,
            agent,
            &self.created,
            &self.resolved,
            &self.ended,
            title,
            body,
            &self.grams,
            caller_name,
            caller_phone,
            caller_key,
            &self.linked,
            request,
            fields,
            history,
        ]
    }
}

/// A case read back from a row of [`SELECT_CASE`].
fn case_of(r: &tokio_postgres::Row) -> Result<CaseFile, ArchiveError> {
    let id: String = r.try_get(0)?;
    let corrupt = |what: &str, e: String| ArchiveError::Corrupt(format!("{id}: {what}: {e}"));
    let fields: Value = r.try_get(4)?;
    let fields: std::collections::BTreeMap<String, String> =
        serde_json::from_value(fields).map_err(|e| corrupt("fields", e.to_string()))?;
    let history = match r.try_get::<_, Value>(6)? {
        Value::Array(events) => events,
        other => return Err(corrupt("history", format!("is not a list: {other}"))),
    };
    let ms = |t: DateTime<Utc>| t.timestamp_millis();
    let opt = |s: Option<String>| s.unwrap_or_default();
    Ok(CaseFile {
        county: r.try_get(1)?,
        ver: u64::try_from(r.try_get::<_, i64>(2)?).unwrap_or(0),
        ended_ms: ms(r.try_get(3)?),
        fields,
        request: r.try_get(5)?,
        history,
        index: CaseIndex {
            status: r.try_get(7)?,
            source: r.try_get(8)?,
            external_id: r.try_get(9)?,
            sender: r.try_get(10)?,
            service: r.try_get(11)?,
            category: r.try_get(12)?,
            level: r.try_get(13)?,
            town: r.try_get(14)?,
            village: r.try_get(15)?,
            grid: r.try_get(16)?,
            agent: r.try_get(17)?,
            created_ms: ms(r.try_get(18)?),
            resolved_ms: r.try_get::<_, Option<DateTime<Utc>>>(19)?.map(ms),
            title: r.try_get(20)?,
            text: r.try_get(21)?,
            caller_name: opt(r.try_get(22)?),
            caller_phone: opt(r.try_get(23)?),
            caller_key: opt(r.try_get(24)?),
            linked: r.try_get(25)?,
        },
        id,
    })
}

#[cfg(test)]
mod tests {
    use super::bigrams;

    #[test]
    fn bigrams_cover_every_two_character_substring_once() {
        let g = bigrams("拖欠工资 工资");
        assert_eq!(g, vec!["工资", "拖欠", "欠工"]);
        // A query's pairs are a subset of the text's whenever the query is a substring.
        let text = bigrams("邻居装修噪音扰民，多次协商未果");
        for q in ["噪音", "装修噪音扰民", "协商未果"] {
            assert!(bigrams(q).iter().all(|p| text.contains(p)), "{q}");
        }
        assert!(bigrams("a").is_empty());
        assert_eq!(bigrams("AB"), vec!["ab"]);
    }
}
