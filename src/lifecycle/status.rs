//! Where a ticket stands, as types: the status every action moves, and the state of a live
//! transfer. Strings exist only where the store writes them and the API shows them.

use std::fmt;

/// A ticket's status. The scripts write these names; everything in Rust reads this enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    /// Waiting in a queue (待受理).
    Queued,
    /// Claimed or offered: an agent holds a lease on it and must accept in time.
    Leased,
    /// Accepted by an agent (已受理).
    Accepted,
    /// The caller has been contacted (办理中).
    InProgress,
    /// Resolved with an outcome (已办结); the follow-up call is due.
    Resolved,
    /// The follow-up call is done (已回访): the loop is closed.
    Closed,
    /// Sent back to its sender (退单), or out of scope at intake.
    Returned,
    /// Withdrawn by the caller (撤回).
    Withdrawn,
    /// Moved to another county; the new ticket carries on.
    Transferred,
}

impl Status {
    /// Every status, for tests and tables.
    pub const ALL: [Status; 9] = [
        Status::Queued,
        Status::Leased,
        Status::Accepted,
        Status::InProgress,
        Status::Resolved,
        Status::Closed,
        Status::Returned,
        Status::Withdrawn,
        Status::Transferred,
    ];

    /// The name stored in Redis and shown in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Leased => "leased",
            Status::Accepted => "accepted",
            Status::InProgress => "in_progress",
            Status::Resolved => "resolved",
            Status::Closed => "closed",
            Status::Returned => "returned",
            Status::Withdrawn => "withdrawn",
            Status::Transferred => "transferred",
        }
    }

    /// Reads a stored name; `None` for anything the scripts never write.
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Open work: in a queue or held by an agent.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            Status::Queued | Status::Leased | Status::Accepted | Status::InProgress
        )
    }

    /// The ticket's life here is over (closed, withdrawn, returned, moved away): it leaves
    /// Redis for the case archive after `archive.after_seconds`. Only `reopen` brings a closed
    /// one back.
    pub fn is_ended(self) -> bool {
        matches!(
            self,
            Status::Closed | Status::Returned | Status::Withdrawn | Status::Transferred
        )
    }

    /// Held by an agent who accepted it.
    pub fn is_worked(self) -> bool {
        matches!(self, Status::Accepted | Status::InProgress)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a live transfer (人工转接) stands, on a ticket whose caller asked for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LiveState {
    /// The caller is on the line, waiting for an agent.
    Waiting,
    /// Asked off duty: an agent calls back.
    Callback,
    /// An agent accepted the call.
    Accepted,
    /// The agent is speaking with the caller.
    Connected,
    /// The call ended; wrap-up.
    Ended,
    /// The caller hung up, or withdrew, before the call ended.
    Cancelled,
}

impl LiveState {
    /// Every state.
    pub const ALL: [LiveState; 6] = [
        LiveState::Waiting,
        LiveState::Callback,
        LiveState::Accepted,
        LiveState::Connected,
        LiveState::Ended,
        LiveState::Cancelled,
    ];

    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            LiveState::Waiting => "waiting",
            LiveState::Callback => "callback",
            LiveState::Accepted => "accepted",
            LiveState::Connected => "connected",
            LiveState::Ended => "ended",
            LiveState::Cancelled => "cancelled",
        }
    }

    /// Reads a stored name.
    pub fn parse(s: &str) -> Option<LiveState> {
        LiveState::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// The caller is still on the line or about to be (a hang-up or withdrawal must end it).
    pub fn in_progress(self) -> bool {
        matches!(
            self,
            LiveState::Waiting | LiveState::Accepted | LiveState::Connected
        )
    }
}

impl fmt::Display for LiveState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        for s in LiveState::ALL {
            assert_eq!(LiveState::parse(s.as_str()), Some(s));
        }
        assert_eq!(Status::parse("nonsense"), None);
    }
}
