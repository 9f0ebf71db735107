//! The Redis store: the only module that knows key names and Lua.
//!
//! # Layout
//! All keys of one county share the hash tag `{<county code>}`, so every script touches one slot
//! and Redis Cluster works without CROSSSLOT errors:
//! - `hl:{c}:t:<id>`: ticket hash (JSON of the ticket and its classification, status, queue, times)
//! - `hl:{c}:h:<id>`: the ticket's event history (a list of JSON events; never trimmed)
//! - `hl:{c}:q:<queue>`: ready queue, a ZSET scored `band * 2^32 + seq` (urgent band first, then
//!   arrival order)
//! - `hl:{c}:qt:<queue>`: the same members scored by enqueue time, for the oldest wait
//! - `hl:{c}:queues`: names of the county's queues
//! - `hl:{idem:<space>:<source>:<external_id>}`: `<county>|<content hash>`, an idempotency key
//!   reserved for one county across the deployment (`reserve.lua`; its own slot, the whole key
//!   is the hash tag). `<space>` is whose ids they are (see [`KeySpace`])
//! - `hl:{c}:idem:<space>:<source>:<external_id>`: `<id>|<content hash>`, the key's copy in its
//!   county, written by `ingest.lua` with the ticket; `hl:{c}:idem:<source>:<external_id>` is the
//!   same written before key spaces, still honoured for its own sender
//! - `hl:{c}:seq`: the county's ticket sequence; ids are `<county>-<seq:08>`
//! - `hl:{c}:events`: the county's event stream (`XADD MAXLEN ~`), for dashboards and partners
//! - `hl:counties`: the counties that have tickets (written before the script, idempotently)
//! - `hl:rl:<caller name>`, `hl:sig:<signature>`: rate-limit buckets and accepted request
//!   signatures (see `ratelimit`)
//!
//! Scripts take the time from Redis `TIME`, so gateways with skewed clocks agree.

use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};
use serde::Serialize;
use utoipa::ToSchema;

use crate::lifecycle::{Status, StoredTicket};
use crate::sla::clock::TimerPlan;
use crate::ticket::Ticket;

mod agents;
mod archived;
mod budget;
mod live;
mod outbox;
mod ratelimit;
pub mod scripts;
mod tickets;
pub use agents::{ClaimMode, ClaimOutcome, OnlineAgent, RenewOutcome};
pub use archived::{Leaving, Removed, record_of_case};
pub use budget::within_budget;
pub use live::LiveBegin;
pub use outbox::{OutboxEntry, OutboxState};
pub use ratelimit::RateDecision;
pub use tickets::{ActOutcome, HISTORY_PAGE, queue_score, split_score};

const COUNTIES: &str = "hl:counties";

/// The stream of corrected labels (transfers that changed service or category), read by
/// `hotline-gateway corrections export` to retrain the classifier.
pub const CORRECTIONS_STREAM: &str = "hl:corrections";

/// Reads a stream from `since` (an exclusive entry id, or `-` for the beginning) in pages of
/// 500, handing each page to `page`; for the command-line tools, which run without the
/// gateway (a blocking connection of its own).
pub fn read_stream(
    redis_url: &str,
    stream: &str,
    since: &str,
    mut page: impl FnMut(&[(String, std::collections::HashMap<String, String>)]),
) -> Result<(), String> {
    let client = redis::Client::open(redis_url).map_err(|e| format!("redis url: {e}"))?;
    let mut con = client
        .get_connection()
        .map_err(|e| format!("cannot connect to redis: {e}"))?;
    let mut start = if since == "-" {
        "-".to_owned()
    } else {
        format!("({since}")
    };
    loop {
        let entries: Vec<(String, std::collections::HashMap<String, String>)> =
            redis::cmd("XRANGE")
                .arg(stream)
                .arg(&start)
                .arg("+")
                .arg("COUNT")
                .arg(500)
                .query(&mut con)
                .map_err(|e| format!("XRANGE {stream}: {e}"))?;
        let Some((last, _)) = entries.last() else {
            return Ok(());
        };
        start = format!("({last}");
        page(&entries);
        if entries.len() < 500 {
            return Ok(());
        }
    }
}

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis cannot be reached or is not accepting writes right now; the caller should retry.
    #[error("Redis is unavailable: {0}")]
    Unavailable(redis::RedisError),
    /// Redis answered with an error that retrying will not fix (a bug, a script error).
    #[error("Redis failed: {0}")]
    Redis(redis::RedisError),
    /// Redis answered with something the scripts never return.
    #[error("unexpected reply from Redis: {0}")]
    Reply(String),
    /// A stored ticket has a field that cannot be read (named in the message).
    #[error("stored ticket unreadable: {0}")]
    Corrupt(String),
}

/// What is known of a request that Redis did not carry out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailability {
    /// Redis refuses writes: out of memory (`maxmemory` under `noeviction`). Nothing was written.
    OutOfMemory,
    /// Redis refuses writes: a read-only replica, or it cannot persist. Nothing was written.
    RefusesWrites,
    /// Redis could not be reached, or is loading or failing over. Nothing was written.
    NotReached,
    /// Redis did not answer in time, or the connection broke: what was sent may have been
    /// carried out.
    Unknown,
}

/// The code of a write Redis refused (`OOM`, `READONLY`, `MISCONF`), also when it discarded a
/// transaction for it (`EXECABORT` names the failed command's error only in its text).
fn refused_code(e: &redis::RedisError) -> Option<&'static str> {
    let text = e.to_string();
    ["OOM", "READONLY", "MISCONF"].into_iter().find(|code| {
        e.code() == Some(*code) || (e.code() == Some("EXECABORT") && text.contains(code))
    })
}

impl StoreError {
    /// What is known of a request that failed with this error, when it is a transient one.
    pub fn unavailability(&self) -> Option<Unavailability> {
        let StoreError::Unavailable(e) = self else {
            return None;
        };
        Some(match refused_code(e) {
            Some("OOM") => Unavailability::OutOfMemory,
            Some(_) => Unavailability::RefusesWrites,
            None if e.is_connection_refusal() => Unavailability::NotReached,
            None => match e.code() {
                Some("BUSY" | "LOADING" | "TRYAGAIN" | "MASTERDOWN" | "CLUSTERDOWN") => {
                    Unavailability::NotReached
                }
                _ => Unavailability::Unknown,
            },
        })
    }

    /// The metric cause of a refused write, if this is one.
    pub fn refusal_cause(&self) -> Option<&'static str> {
        let StoreError::Unavailable(e) = self else {
            return None;
        };
        match refused_code(e) {
            Some("OOM") => Some("oom"),
            Some("READONLY") => Some("readonly"),
            Some("MISCONF") => Some("misconf"),
            _ => None,
        }
    }
}

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        use redis::{ErrorKind, ServerErrorKind};
        let transient = e.is_io_error()
            || e.is_timeout()
            || e.is_connection_refusal()
            || e.is_connection_dropped()
            || matches!(
                e.kind(),
                ErrorKind::Server(
                    ServerErrorKind::BusyLoading
                        | ServerErrorKind::TryAgain
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::ReadOnly
                        | ServerErrorKind::ClusterDown
                )
            )
            || matches!(e.code(), Some("OOM" | "MISCONF" | "BUSY"))
            || refused_code(&e).is_some();
        if transient {
            StoreError::Unavailable(e)
        } else {
            StoreError::Redis(e)
        }
    }
}

/// Whose `external_id`s an idempotency key belongs to: the same `(source, external_id)` in two
/// spaces is two keys, so no sender can take, block or look into another's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySpace<'a> {
    /// A partner system's own, by its configured name (entries sharing a name, a token being
    /// rotated, share it).
    Partner(&'a str),
    /// The city's own consoles (operators and admins): one space, so a retry from another
    /// console finds the ticket.
    Console,
    /// The second step of a move to another county (`transfer:<old id>`), the gateway's own.
    Transfer,
}

impl KeySpace<'_> {
    /// The key segment: `p.<name>` (with `%`, `:`, `{` and `}` escaped, so a name can neither
    /// pose as another space nor end the hash tag), `console` or `transfer`.
    fn segment(&self) -> String {
        match self {
            KeySpace::Partner(name) => {
                let mut out = String::from("p.");
                for c in name.chars() {
                    match c {
                        '%' => out.push_str("%25"),
                        ':' => out.push_str("%3A"),
                        '{' => out.push_str("%7B"),
                        '}' => out.push_str("%7D"),
                        c => out.push(c),
                    }
                }
                out
            }
            KeySpace::Console => "console".into(),
            KeySpace::Transfer => "transfer".into(),
        }
    }

    /// Who may use a key of the pre-space scheme (`ingest.lua` ARGV[27]): a partner only its
    /// own tickets', the consoles and moves any (they could read those tickets anyway).
    fn legacy_owner(&self) -> &str {
        match self {
            KeySpace::Partner(name) => name,
            KeySpace::Console | KeySpace::Transfer => "*",
        }
    }
}

/// What the gateway asks the store to register for one ticket.
#[derive(Debug)]
pub struct NewTicket<'a> {
    /// The validated ticket.
    pub ticket: &'a Ticket,
    /// Whose `(source, external_id)` it is.
    pub space: KeySpace<'a>,
    /// Hex SHA-256 of the canonical ticket: same content, same hash.
    pub content_hash: &'a str,
    /// JSON of the classifier's decision.
    pub classification_json: &'a str,
    /// Service, warning level and category, as labels.
    pub service: &'a str,
    /// Warning level name.
    pub level: &'a str,
    /// Category name.
    pub category: &'a str,
    /// Target queue, or `None` when the ticket goes back to the sender.
    pub queue: Option<&'a str>,
    /// The routing rule that chose the queue (for the history).
    pub rule: &'a str,
    /// Priority band; 0 is the most urgent.
    pub band: u32,
    /// JSON of the ticket's SLA clocks.
    pub clocks_json: &'a str,
    /// Timers to schedule.
    pub timers: &'a [TimerPlan],
    /// Who handed it over (token name).
    pub actor: &'a str,
    /// `county/town/village/grid`, for agents' region eligibility.
    pub region_path: &'a str,
    /// A hash of the caller's phone, or empty: links repeat requests.
    pub caller_key: &'a str,
    /// How long repeat requests are linked, in seconds.
    pub duplicate_window_secs: u64,
    /// Enqueue time to keep (a ticket moved from another county keeps its age); `None` = now.
    pub since_ms: Option<i64>,
    /// The ticket this one was moved from, if any.
    pub transferred_from: Option<&'a str>,
    /// The partner to call back with this ticket's events, or empty.
    pub callback: &'a str,
    /// Whose ticket it is (token name): partners act only on their own tickets.
    pub sender: &'a str,
    /// The sender asked for a live transfer (the caller is on the line).
    pub live_asked: bool,
    /// The caller's earlier requests about the same matter that have already left Redis for the
    /// case archive (the script can only see those still here): linked like the others.
    pub linked_archived: &'a [String],
}

/// The result of an ingest: new, a faithful retry, or a conflicting one.
#[derive(Debug, Clone, PartialEq)]
pub enum IngestOutcome {
    /// A new ticket was registered.
    Created(StoredTicket),
    /// The same (source, external_id) with the same content was seen before.
    Existing(StoredTicket),
    /// As `Existing`, but the ticket has ended and left Redis for the case archive: its id.
    Archived(String),
    /// The same (source, external_id) with different content, or for another county.
    Conflict {
        /// The id of the ticket registered first; `None` while its first attempt is still
        /// being stored (or never was: an unanswered attempt keeps the key's county).
        id: Option<String>,
        /// The county holding the key, when it is not the one asked for.
        county: Option<String>,
    },
}

/// What one step of the timer mover did in one county.
#[derive(Debug, Clone, PartialEq)]
pub struct FireReport {
    /// Redis time of the step, ms.
    pub now_ms: i64,
    /// When the next timer of the county is due, if any.
    pub next_due_ms: Option<i64>,
    /// The batch was full: call again at once.
    pub more: bool,
    /// Fired timers.
    pub fired: Vec<FiredTimer>,
}

/// One warning or breach the mover raised.
#[derive(Debug, Clone, PartialEq)]
pub struct FiredTimer {
    /// Clock name.
    pub clock: String,
    /// `w0`, `w1`, … or `b`.
    pub kind: String,
    /// How late it fired, ms.
    pub lateness_ms: i64,
    /// The ticket's queue.
    pub queue: String,
}

/// What the mover needs to know of a county before touching it, read for many counties in one
/// round trip ([`Store::county_agendas`]): when its next work is due, and whether anyone is
/// there to offer work to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountyAgenda {
    /// County code.
    pub county: String,
    /// When its earliest SLA timer is due, ms on the Redis clock.
    pub next_timer_ms: Option<i64>,
    /// When its earliest lease (claim, offer or live reservation) lapses.
    pub next_lease_ms: Option<i64>,
    /// Some console is online (present) in the county: offers may be due at any moment.
    pub online: bool,
    /// Some caller waits on the line for an agent of the county.
    pub live_waiting: bool,
}

/// Live numbers of one queue, read from Redis.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QueueStats {
    /// Queue name, e.g. `mediation.320831.labour`.
    pub name: String,
    /// What works it: `legal`, `mediation`, `triage`, … (the name's first part).
    pub kind: String,
    /// County code of the queue.
    pub county: String,
    /// Tickets waiting.
    pub depth: u64,
    /// Tickets waiting, per warning level: each ticket at its own level (the one it was
    /// classified or raised to), whatever band it waits in; highest first, as configured.
    pub depth_by_level: Vec<LevelDepth>,
    /// Tickets waiting, per priority band (0 = served first). A ticket starts in its level's
    /// band and an SLA breach raises it one band, so bands are not levels and carry no level's
    /// name.
    pub depth_by_band: Vec<BandDepth>,
    /// How long the oldest waiting ticket has waited, in seconds (0 when empty).
    pub oldest_age_seconds: f64,
    /// SLA compliance in rolling windows (1h, 24h, 7d): the clocks that stopped in the window,
    /// and those breached and still running.
    pub sla: Vec<SlaWindow>,
    /// Agents of this queue's kind in its county who are available now.
    pub agents_available: u32,
    /// Tickets of this queue under a lease (claimed or offered, not yet accepted).
    pub leased: u64,
}

/// Clocks that stopped within a rolling window or are breached and still running, and the share
/// that met their target.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SlaWindow {
    /// `1h`, `24h` or `7d`.
    pub window: String,
    /// Clocks stopped within their target.
    pub met: u64,
    /// Clocks stopped after it.
    pub breached: u64,
    /// Clocks past their deadline and still running (the same in every window: a breach counts
    /// until its clock stops, and then in the window where it stopped).
    pub breached_running: u64,
    /// met / (met + breached + breached_running); absent only when no clock stopped in the
    /// window and none is breached.
    pub compliance: Option<f64>,
}

/// Depth of one priority band in a queue.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BandDepth {
    /// The band: 0 is served first.
    pub band: u32,
    /// Tickets waiting in it.
    pub depth: u64,
}

/// Depth of one warning level in a queue.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LevelDepth {
    /// The level's name.
    pub level: String,
    /// Tickets waiting at that level.
    pub depth: u64,
}

/// What the gateway found out about the Redis server at start-up.
#[derive(Debug, Clone)]
pub struct ServerReport {
    /// `maxmemory-policy`; anything but `noeviction` may silently drop tickets.
    pub maxmemory_policy: String,
    /// Whether AOF is on.
    pub aof: bool,
    /// `appendfsync`; only `always` makes every acknowledged write survive a Redis crash.
    pub appendfsync: String,
    /// The RDB `save` schedule; empty means no snapshots.
    pub save: String,
    /// Redis version.
    pub version: String,
}

/// Handle to the store; cheap to clone, one multiplexed connection underneath.
#[derive(Clone)]
pub struct Store {
    conn: budget::BoundedConn,
    client: redis::Client,
    ingest: std::sync::Arc<Script>,
    reserve: std::sync::Arc<Script>,
    stats: std::sync::Arc<Script>,
    action: std::sync::Arc<Script>,
    moved: std::sync::Arc<Script>,
    fire: std::sync::Arc<Script>,
    claim: std::sync::Arc<Script>,
    renew: std::sync::Arc<Script>,
    reap: std::sync::Arc<Script>,
    live: std::sync::Arc<Script>,
    outbox: std::sync::Arc<Script>,
    rate_limit: std::sync::Arc<Script>,
    event_streams: std::sync::Arc<Script>,
    archived: std::sync::Arc<Script>,
    restore: std::sync::Arc<Script>,
    archive_lease: std::sync::Arc<Script>,
    index_tickets: std::sync::Arc<Script>,
    /// Redis clock minus this host's clock, ms; refreshed by every mover step.
    clock_offset_ms: std::sync::Arc<std::sync::atomic::AtomicI64>,
    stream_maxlen: u64,
    idempotency_ttl_secs: u64,
    /// Counties this process has already added to `hl:counties`, so the extra round trip is
    /// paid once per county per process, not once per ticket.
    known_counties: std::sync::Arc<std::sync::RwLock<std::collections::HashSet<String>>>,
    /// Agents' home counties as last read, with when: an agent's reach is looked up on every
    /// request it makes, so it is cached briefly (see `agents::AGENT_HOME_TTL`).
    agent_homes: std::sync::Arc<std::sync::RwLock<AgentHomes>>,
}

/// Agent id → (home county, when it was read).
type AgentHomes = std::collections::HashMap<String, (Option<String>, std::time::Instant)>;

/// Key prefix of a county: `hl:{320831}:`.
fn county_prefix(county: &str) -> String {
    format!("hl:{{{county}}}:")
}

/// Parses a ticket id into its county, or `None` when it cannot be one of ours.
pub fn county_of(id: &str) -> Option<&str> {
    let (county, seq) = id.split_once('-')?;
    let ok = county.len() == 6
        && county.bytes().all(|b| b.is_ascii_digit())
        && !seq.is_empty()
        && seq.len() <= 12
        && seq.bytes().all(|b| b.is_ascii_digit());
    ok.then_some(county)
}

impl Store {
    /// Connects lazily: the gateway starts even when Redis is down, and answers 503 until it is up.
    pub fn connect(
        url: &str,
        connect_timeout: Duration,
        response_timeout: Duration,
        stream_maxlen: u64,
        idempotency_ttl_secs: u64,
    ) -> Result<Store, StoreError> {
        let client = redis::Client::open(url).map_err(StoreError::Redis)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(Some(response_timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        Ok(Store {
            conn: budget::BoundedConn(conn),
            client,
            ingest: std::sync::Arc::new(Script::new(scripts::INGEST)),
            reserve: std::sync::Arc::new(Script::new(scripts::RESERVE)),
            stats: std::sync::Arc::new(Script::new(scripts::QUEUE_STATS)),
            action: std::sync::Arc::new(Script::new(scripts::TICKET_ACTION)),
            moved: std::sync::Arc::new(Script::new(scripts::MOVED)),
            fire: std::sync::Arc::new(Script::new(scripts::FIRE_TIMERS)),
            claim: std::sync::Arc::new(Script::new(scripts::CLAIM)),
            renew: std::sync::Arc::new(Script::new(scripts::RENEW)),
            reap: std::sync::Arc::new(Script::new(scripts::REAP_LEASES)),
            live: std::sync::Arc::new(Script::new(scripts::LIVE)),
            outbox: std::sync::Arc::new(Script::new(scripts::OUTBOX)),
            rate_limit: std::sync::Arc::new(Script::new(scripts::RATE_LIMIT)),
            event_streams: std::sync::Arc::new(Script::new(scripts::EVENT_STREAMS)),
            archived: std::sync::Arc::new(Script::new(scripts::ARCHIVED)),
            restore: std::sync::Arc::new(Script::new(scripts::RESTORE)),
            archive_lease: std::sync::Arc::new(Script::new(scripts::ARCHIVE_LEASE)),
            index_tickets: std::sync::Arc::new(Script::new(scripts::INDEX_TICKETS)),
            clock_offset_ms: Default::default(),
            stream_maxlen,
            idempotency_ttl_secs,
            known_counties: Default::default(),
            agent_homes: Default::default(),
        })
    }

    /// Adds the county to the registry unless this process already did.
    async fn register_county(&self, county: &str) -> Result<(), StoreError> {
        let known = self
            .known_counties
            .read()
            .map(|set| set.contains(county))
            .unwrap_or(false);
        if !known {
            let mut conn = self.conn.clone();
            let _: () = conn.sadd(COUNTIES, county).await?;
            if let Ok(mut set) = self.known_counties.write() {
                set.insert(county.to_string());
            }
        }
        Ok(())
    }

    /// Registers a ticket exactly once in the whole deployment, in two steps (two slots):
    /// `reserve.lua` binds the key to the ticket's county in the key's own slot (another county
    /// is a conflict), then `ingest.lua` registers it in the county's slot, idempotent by the
    /// key's county copy. Both steps are idempotent, so retrying after
    /// [`StoreError::Unavailable`], or after a gateway stopped between them, finds or finishes
    /// the same ticket. A move's second step (`KeySpace::Transfer`) skips the reservation: its
    /// key names the moved ticket and its county was fixed when the move was decided.
    pub async fn ingest(&self, t: &NewTicket<'_>) -> Result<IngestOutcome, StoreError> {
        let county = t.ticket.region.code.as_str();
        let prefix = county_prefix(county);
        let space = t.space.segment();
        let (source, external_id) = (t.ticket.source.as_str(), t.ticket.external_id.as_str());
        // The county registry lives outside the county's slot; adding to it first is idempotent
        // and harmless if the script then fails.
        self.register_county(county).await?;
        if t.space != KeySpace::Transfer {
            let started = std::time::Instant::now();
            let mut conn = self.conn.clone();
            let reply: Vec<String> = self
                .reserve
                .key(format!("hl:{{idem:{space}:{source}:{external_id}}}"))
                .arg(county)
                .arg(t.content_hash)
                .arg(self.idempotency_ttl_secs)
                .invoke_async(&mut conn)
                .await?;
            crate::metrics::redis_latency("reserve", started.elapsed());
            if let [outcome, holder] = reply.as_slice()
                && outcome == "elsewhere"
            {
                // Named in the 409 when it is already there (a read of the other county's slot).
                let id: Option<String> = conn
                    .get(format!(
                        "{}idem:{space}:{source}:{external_id}",
                        county_prefix(holder)
                    ))
                    .await?;
                return Ok(IngestOutcome::Conflict {
                    id: id.and_then(|v| v.split('|').next().map(str::to_string)),
                    county: Some(holder.clone()),
                });
            }
        }
        let mut conn = self.conn.clone();
        let started = std::time::Instant::now();
        let reply: Vec<String> = self
            .ingest
            .key(format!("{prefix}idem:{space}:{source}:{external_id}"))
            .key(format!("{prefix}seq"))
            .key(format!("{prefix}queues"))
            .key(format!("{prefix}events"))
            .key(format!("{prefix}idem:{source}:{external_id}"))
            .arg(t.content_hash)
            .arg(&prefix)
            .arg(county)
            .arg(t.queue.unwrap_or(""))
            .arg(t.band)
            .arg(if t.queue.is_some() {
                "queued"
            } else {
                "returned"
            })
            .arg(serde_json::to_string(t.ticket).map_err(|e| StoreError::Reply(e.to_string()))?)
            .arg(t.classification_json)
            .arg(t.service)
            .arg(t.level)
            .arg(t.category)
            .arg(t.ticket.source.as_str())
            .arg(t.clocks_json)
            .arg(
                serde_json::to_string(
                    &t.timers
                        .iter()
                        .map(|p| (p.clock.as_str(), p.kind.as_str(), p.at_ms))
                        .collect::<Vec<_>>(),
                )
                .map_err(|e| StoreError::Reply(e.to_string()))?,
            )
            .arg(self.idempotency_ttl_secs)
            .arg(self.stream_maxlen)
            .arg(t.actor)
            .arg(t.rule)
            .arg(t.region_path)
            .arg(t.caller_key)
            .arg(t.duplicate_window_secs)
            .arg(t.since_ms.unwrap_or(0))
            .arg(t.transferred_from.unwrap_or(""))
            .arg(t.callback)
            .arg(t.sender)
            .arg(if t.live_asked { "1" } else { "" })
            .arg(t.space.legacy_owner())
            .arg(serde_json::to_string(t.linked_archived).unwrap_or_else(|_| "[]".into()))
            .invoke_async(&mut conn)
            .await?;
        crate::metrics::redis_latency("ingest", started.elapsed());
        parse_ingest(reply)
    }

    /// How many tickets the caller (`caller_key`, a hash of the phone) opened in the county
    /// within the last `window_secs`: the repeat-call warning rule's input.
    pub async fn caller_recent(
        &self,
        county: &str,
        caller_key: &str,
        window_secs: u64,
    ) -> Result<u32, StoreError> {
        let mut conn = self.conn.clone();
        let since =
            self.now_ms() - i64::try_from(window_secs.saturating_mul(1000)).unwrap_or(i64::MAX / 2);
        let n: u64 = conn
            .zcount(
                format!("{}caller:{caller_key}", county_prefix(county)),
                since,
                "+inf",
            )
            .await?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Fires the due timers of one county (at most `batch`).
    pub async fn fire_due(&self, county: &str, batch: usize) -> Result<FireReport, StoreError> {
        let prefix = county_prefix(county);
        let mut conn = self.conn.clone();
        let started = std::time::Instant::now();
        let reply: Vec<String> = self
            .fire
            .key(format!("{prefix}timers"))
            .key(format!("{prefix}events"))
            .arg(&prefix)
            .arg(batch)
            .arg(self.stream_maxlen)
            .invoke_async(&mut conn)
            .await?;
        crate::metrics::redis_latency("fire_timers", started.elapsed());
        let bad = || StoreError::Reply("fire_timers reply has the wrong shape".into());
        let now_ms: i64 = reply.first().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
        self.observe_redis_time(now_ms);
        let next_due_ms = reply
            .get(1)
            .and_then(|v| v.parse::<f64>().ok())
            .map(|v| v as i64);
        let more = reply.get(2).is_some_and(|v| v == "1");
        let fired = reply
            .get(3..)
            .unwrap_or_default()
            .chunks(4)
            .filter_map(|c| match c {
                [clock, kind, late, queue] => Some(FiredTimer {
                    clock: clock.clone(),
                    kind: kind.clone(),
                    lateness_ms: late.parse().unwrap_or(0),
                    queue: queue.clone(),
                }),
                _ => None,
            })
            .collect();
        Ok(FireReport {
            now_ms,
            next_due_ms,
            more,
            fired,
        })
    }

    /// The agenda of each county, in the order given: its earliest timer and lease, whether a
    /// console is online or a caller waits. Reads only, pipelined: one round trip however many
    /// counties (on Redis Cluster a cluster connection splits a pipeline by slot). Also refreshes
    /// the offset to the Redis clock.
    pub async fn county_agendas(
        &self,
        counties: &[String],
    ) -> Result<Vec<CountyAgenda>, StoreError> {
        let mut pipe = redis::pipe();
        pipe.cmd("TIME");
        let now = self.now_ms();
        for county in counties {
            let prefix = county_prefix(county);
            pipe.cmd("ZRANGE")
                .arg(format!("{prefix}timers"))
                .arg(0)
                .arg(0)
                .arg("WITHSCORES")
                .cmd("ZRANGE")
                .arg(format!("{prefix}leases"))
                .arg(0)
                .arg(0)
                .arg("WITHSCORES")
                .cmd("ZCOUNT")
                .arg(format!("{prefix}online"))
                .arg(now)
                .arg("+inf")
                .cmd("EXISTS")
                .arg(format!("{prefix}live:legal"))
                .arg(format!("{prefix}live:mediation"));
        }
        let mut conn = self.conn.clone();
        let reply: Vec<redis::Value> = pipe.query_async(&mut conn).await?;
        let bad = || StoreError::Reply("county agenda reply has the wrong shape".into());
        let mut reply = reply.into_iter();
        let (secs, micros): (i64, i64) =
            redis::from_redis_value(reply.next().ok_or_else(bad)?).map_err(|_| bad())?;
        self.observe_redis_time(secs * 1000 + micros / 1000);
        let head = |v: Option<redis::Value>| -> Result<Option<i64>, StoreError> {
            let pairs: Vec<(String, f64)> =
                redis::from_redis_value(v.ok_or_else(bad)?).map_err(|_| bad())?;
            Ok(pairs.first().map(|(_, score)| *score as i64))
        };
        let count = |v: Option<redis::Value>| -> Result<u64, StoreError> {
            redis::from_redis_value(v.ok_or_else(bad)?).map_err(|_| bad())
        };
        counties
            .iter()
            .map(|county| {
                Ok(CountyAgenda {
                    county: county.clone(),
                    next_timer_ms: head(reply.next())?,
                    next_lease_ms: head(reply.next())?,
                    online: count(reply.next())? > 0,
                    live_waiting: count(reply.next())? > 0,
                })
            })
            .collect()
    }

    /// Counties that have tickets. Every county read is remembered by this process, so that
    /// [`Store::reassert_counties`] can put it back if the registry is lost.
    pub async fn counties(&self) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn.clone();
        let counties: Vec<String> = conn.smembers(COUNTIES).await?;
        if let Ok(mut known) = self.known_counties.write() {
            known.extend(counties.iter().cloned());
        }
        Ok(counties)
    }

    /// Writes back every county this process knows into the registry (idempotent `SADD`): a
    /// registry lost to a restore or a failover heals within one housekeeping step of any
    /// gateway that has seen the county.
    pub async fn reassert_counties(&self) -> Result<usize, StoreError> {
        let known: Vec<String> = self
            .known_counties
            .read()
            .map(|k| k.iter().cloned().collect())
            .unwrap_or_default();
        if known.is_empty() {
            return Ok(0);
        }
        let mut conn = self.conn.clone();
        let added: usize = conn.sadd(COUNTIES, &known).await?;
        Ok(added)
    }

    /// Rebuilds the registry from the counties' own keys (each county has its ticket sequence
    /// `hl:{<county>}:seq`), by an incremental `SCAN`; run at start-up, when this process knows
    /// nothing yet. Returns how many counties were missing.
    pub async fn rebuild_counties(&self) -> Result<usize, StoreError> {
        let mut conn = self.conn.clone();
        let mut cursor: u64 = 0;
        let mut found = std::collections::HashSet::new();
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg("hl:{*}:seq")
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await?;
            for key in keys {
                if let Some(county) = key
                    .strip_prefix("hl:{")
                    .and_then(|k| k.strip_suffix("}:seq"))
                    .filter(|c| c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit()))
                {
                    found.insert(county.to_string());
                }
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        if let Ok(mut known) = self.known_counties.write() {
            known.extend(found.iter().cloned());
        }
        if found.is_empty() {
            return Ok(0);
        }
        let found: Vec<String> = found.into_iter().collect();
        let added: usize = conn.sadd(COUNTIES, &found).await?;
        Ok(added)
    }

    /// Ids of a county's tickets whose clocks are not all done.
    pub async fn open_tickets(&self, county: &str) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn.clone();
        Ok(conn
            .smembers(format!("{}open", county_prefix(county)))
            .await?)
    }

    /// The current time on the Redis clock, estimated from this host's clock and the offset
    /// seen at the last mover step, so deadlines agree with the timers that Redis fires.
    pub fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
            + self
                .clock_offset_ms
                .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn observe_redis_time(&self, redis_ms: i64) {
        let offset = redis_ms - chrono::Utc::now().timestamp_millis();
        self.clock_offset_ms
            .store(offset, std::sync::atomic::Ordering::Relaxed);
    }

    /// Live numbers of every queue, county by county; `levels` is the warning scale, highest
    /// first (one band per level).
    pub async fn queue_stats(&self, levels: &[String]) -> Result<Vec<QueueStats>, StoreError> {
        let mut conn = self.conn.clone();
        let mut counties: Vec<String> = conn.smembers(COUNTIES).await?;
        counties.sort();
        let mut out = Vec::new();
        for county in counties {
            let prefix = county_prefix(&county);
            let reply: Vec<String> = self
                .stats
                .key(format!("{prefix}queues"))
                .arg(&prefix)
                .arg(levels.len())
                .arg(levels)
                .invoke_async(&mut conn)
                .await?;
            out.extend(parse_stats(&county, levels, &reply)?);
        }
        Ok(out)
    }

    /// Checks that Redis answers and the scripts are cached (loading them if not).
    pub async fn ready(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        // Answering is not enough: a full (or read-only) Redis answers and refuses every write.
        let _: () = redis::cmd("SET")
            .arg("hl:ready-probe")
            .arg(self.now_ms())
            .arg("PX")
            .arg(60_000)
            .query_async(&mut conn)
            .await?;
        for script in [
            &self.reserve,
            &self.ingest,
            &self.stats,
            &self.action,
            &self.moved,
            &self.fire,
            &self.claim,
            &self.renew,
            &self.reap,
            &self.live,
            &self.outbox,
            &self.rate_limit,
            &self.event_streams,
        ] {
            let exists: Vec<bool> = redis::cmd("SCRIPT")
                .arg("EXISTS")
                .arg(script.get_hash())
                .query_async(&mut conn)
                .await?;
            if exists.first() != Some(&true) {
                script.prepare_invoke().load_async(&mut conn).await?;
            }
        }
        Ok(())
    }

    /// Reads the settings that decide whether an acknowledged ticket can be lost.
    pub async fn server_report(&self) -> Result<ServerReport, StoreError> {
        let mut conn = self.conn.clone();
        let get = |name: &'static str| {
            let mut c = conn.clone();
            async move {
                let v: Vec<String> = redis::cmd("CONFIG")
                    .arg("GET")
                    .arg(name)
                    .query_async(&mut c)
                    .await?;
                Ok::<_, StoreError>(v.get(1).cloned().unwrap_or_default())
            }
        };
        let maxmemory_policy = get("maxmemory-policy").await?;
        let aof = get("appendonly").await? == "yes";
        let appendfsync = get("appendfsync").await?;
        let save = get("save").await?;
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut conn)
            .await?;
        let version = info
            .lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .unwrap_or("unknown")
            .trim()
            .to_string();
        Ok(ServerReport {
            maxmemory_policy,
            aof,
            appendfsync,
            save,
            version,
        })
    }

    /// Asks the server to save and stop; used only for the child the gateway started itself.
    pub async fn shutdown_server(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        // SHUTDOWN closes the connection instead of replying; that is its success.
        match redis::cmd("SHUTDOWN").query_async::<()>(&mut conn).await {
            Ok(()) => Ok(()),
            Err(e)
                if e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error() =>
            {
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }
}

fn parse_ingest(reply: Vec<String>) -> Result<IngestOutcome, StoreError> {
    let mut r = reply.into_iter();
    let outcome = r.next().unwrap_or_default();
    let id = r
        .next()
        .ok_or_else(|| StoreError::Reply("ingest returned no id".into()))?;
    if outcome == "conflict" {
        return Ok(IngestOutcome::Conflict {
            id: Some(id),
            county: None,
        });
    }
    if outcome == "archived" {
        return Ok(IngestOutcome::Archived(id));
    }
    let mut next = || r.next().unwrap_or_default();
    let status = next();
    let status = Status::parse(&status)
        .ok_or_else(|| StoreError::Corrupt(format!("{id}: `status` is `{status}`")))?;
    let queue = Some(next()).filter(|q| !q.is_empty());
    let classification_json = next();
    let created_ms = next().parse::<i64>().unwrap_or(0);
    let clocks = serde_json::from_str(&next())
        .map_err(|e| StoreError::Corrupt(format!("{id}: `clocks` {e}")))?;
    let live_asked = next() == "1";
    let stored = StoredTicket {
        id,
        status,
        queue,
        classification_json,
        created_ms,
        clocks,
        live_asked,
    };
    match outcome.as_str() {
        "created" => Ok(IngestOutcome::Created(stored)),
        "existing" => Ok(IngestOutcome::Existing(stored)),
        other => Err(StoreError::Reply(format!(
            "unknown ingest outcome `{other}`"
        ))),
    }
}

fn parse_stats(
    county: &str,
    levels: &[String],
    reply: &[String],
) -> Result<Vec<QueueStats>, StoreError> {
    let bad = || StoreError::Reply("queue_stats reply has the wrong shape".into());
    let (now, rest) = reply.split_first().ok_or_else(bad)?;
    let now_ms: f64 = now.parse().map_err(|_| bad())?;
    let n_levels = levels.len();
    let width = 3 + 2 * n_levels + 6 + 2;
    if rest.len() % width != 0 {
        return Err(bad());
    }
    rest.chunks(width)
        .map(|row| {
            let n = |s: &String| s.parse::<u64>().map_err(|_| bad());
            let oldest_ms: f64 = row[2].parse().map_err(|_| bad())?;
            let depth = n(&row[1])?;
            let oldest_age_seconds = if depth == 0 || oldest_ms <= 0.0 {
                0.0
            } else {
                ((now_ms - oldest_ms) / 1000.0).max(0.0)
            };
            let bands = &row[3..3 + n_levels];
            let by_level = &row[3 + n_levels..3 + 2 * n_levels];
            let breached_running = n(&row[width - 2])?;
            let sla = ["1h", "24h", "7d"]
                .iter()
                .zip(row[3 + 2 * n_levels..width - 2].chunks(2))
                .map(|(window, pair)| {
                    let met = n(&pair[0])?;
                    let breached = n(&pair[1])?;
                    let counted = met + breached + breached_running;
                    Ok(SlaWindow {
                        window: (*window).to_string(),
                        met,
                        breached,
                        breached_running,
                        compliance: (counted > 0).then(|| met as f64 / counted as f64),
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let depth_by_band = bands
                .iter()
                .enumerate()
                .map(|(band, d)| {
                    Ok(BandDepth {
                        band: band as u32,
                        depth: n(d)?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let depth_by_level = levels
                .iter()
                .zip(by_level)
                .map(|(level, d)| {
                    Ok(LevelDepth {
                        level: level.clone(),
                        depth: n(d)?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            Ok(QueueStats {
                kind: row[0].split('.').next().unwrap_or_default().to_string(),
                name: row[0].clone(),
                county: county.to_string(),
                depth,
                depth_by_level,
                depth_by_band,
                oldest_age_seconds,
                sla,
                agents_available: 0,
                leased: n(&row[width - 1])?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_spaces_cannot_pose_as_each_other_nor_end_the_hash_tag() {
        assert_eq!(
            KeySpace::Partner("12345-platform").segment(),
            "p.12345-platform"
        );
        assert_eq!(KeySpace::Partner("a:b}{%").segment(), "p.a%3Ab%7D%7B%25");
        assert_eq!(KeySpace::Partner("console").segment(), "p.console");
        assert_eq!(KeySpace::Console.segment(), "console");
        assert_eq!(KeySpace::Transfer.segment(), "transfer");
        assert_eq!(KeySpace::Partner("p").legacy_owner(), "p");
        assert_eq!(KeySpace::Console.legacy_owner(), "*");
    }

    #[test]
    fn ticket_ids_name_their_county() {
        assert_eq!(county_of("320831-00000042"), Some("320831"));
        assert_eq!(county_of("32083-00000042"), None);
        assert_eq!(county_of("320831-"), None);
        assert_eq!(county_of("320831-12a"), None);
        assert_eq!(county_of("../etc"), None);
    }

    #[test]
    fn a_stats_reply_of_the_wrong_shape_is_an_error_not_a_panic() {
        let levels = vec!["red".to_string(), "none".to_string()];
        assert!(parse_stats("320831", &levels, &[]).is_err());
        assert!(parse_stats("320831", &levels, &["1".into(), "q".into()]).is_err());
        // now, name, depth, oldest, 2 bands, 2 levels, 3 windows of (met, breached),
        // breached_running, leased.
        let ok = parse_stats(
            "320831",
            &levels,
            &[
                "10000",
                "mediation.320831",
                "3",
                "4000",
                "2",
                "1",
                "1",
                "2",
                "3",
                "1",
                "0",
                "0",
                "3",
                "1",
                "0",
                "2",
            ]
            .map(String::from),
        )
        .expect("parses");
        assert_eq!(ok[0].sla[0].compliance, Some(0.75));
        assert_eq!(ok[0].sla[1].compliance, None);
        assert_eq!(ok[0].leased, 2);
        assert_eq!(ok[0].depth, 3);
        assert_eq!(ok[0].kind, "mediation");
        assert!((ok[0].oldest_age_seconds - 6.0).abs() < 1e-9);
        assert_eq!(ok[0].depth_by_band[0].depth, 2);
        assert_eq!(ok[0].depth_by_level[0].depth, 1);
        assert_eq!(ok[0].depth_by_level[1].depth, 2);

        // A clock breached and still running counts as breached in every window.
        let running = parse_stats(
            "320831",
            &levels,
            &[
                "10000",
                "mediation.320831",
                "1",
                "4000",
                "1",
                "0",
                "0",
                "1",
                "0",
                "0",
                "0",
                "0",
                "0",
                "0",
                "1",
                "0",
            ]
            .map(String::from),
        )
        .expect("parses");
        for w in &running[0].sla {
            assert_eq!(w.compliance, Some(0.0), "{}", w.window);
            assert_eq!(w.breached_running, 1);
        }
    }
}
