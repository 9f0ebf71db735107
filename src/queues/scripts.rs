//! The Lua scripts, each with `lua/lib.lua` (Redis `TIME`, the queue score, the record
//! version, the outbox append) put in front of it at compile time, so a helper is written once
//! and every script that needs it has the same one.

macro_rules! script {
    ($(#[$doc:meta])* $name:ident, $file:literal) => {
        $(#[$doc])*
        pub const $name: &str = concat!(include_str!("lua/lib.lua"), include_str!($file));
    };
}

script!(
    /// Registers one ticket exactly once.
    INGEST,
    "lua/ingest.lua"
);
script!(
    /// Binds an idempotency key to one county, deployment-wide (intake's first step).
    RESERVE,
    "lua/reserve.lua"
);
script!(
    /// Reads a county's queue figures.
    QUEUE_STATS,
    "lua/queue_stats.lua"
);
script!(
    /// Applies one action's typed change.
    TICKET_ACTION,
    "lua/ticket_action.lua"
);
script!(
    /// Finishes a move to another county.
    MOVED,
    "lua/moved.lua"
);
script!(
    /// Fires due SLA timers.
    FIRE_TIMERS,
    "lua/fire_timers.lua"
);
script!(
    /// Gives one waiting ticket to one agent under a lease.
    CLAIM,
    "lua/claim.lua"
);
script!(
    /// Renews or gives back a lease.
    RENEW,
    "lua/renew.lua"
);
script!(
    /// Returns lapsed leases' tickets to their place.
    REAP_LEASES,
    "lua/reap_leases.lua"
);
script!(
    /// The caller-on-the-line side of a live transfer.
    LIVE,
    "lua/live.lua"
);
script!(
    /// Partner callback outboxes.
    OUTBOX,
    "lua/outbox.lua"
);
script!(
    /// A caller's token bucket.
    RATE_LIMIT,
    "lua/rate_limit.lua"
);
script!(
    /// Leases of open event streams.
    EVENT_STREAMS,
    "lua/event_streams.lua"
);
script!(
    /// Removes archived tickets from Redis (archiving's second step).
    ARCHIVED,
    "lua/archived.lua"
);
script!(
    /// Brings an archived ticket back (before a reopen).
    RESTORE,
    "lua/restore.lua"
);
script!(
    /// One archiving gateway per county at a time.
    ARCHIVE_LEASE,
    "lua/archive_lease.lua"
);
script!(
    /// Lists tickets stored before the ticket index existed (an upgrade).
    INDEX_TICKETS,
    "lua/index_tickets.lua"
);
