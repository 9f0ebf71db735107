//! The ticket's life after intake (跟踪处理—事件反馈—考核评价), as a typed domain: a ticket's
//! [`Status`] and live state, the [`Action`]s and their transition table, the record read once
//! per action, and the rules that turn (record, request, actor, settings, now) into one typed
//! [`Change`] or a [`Refusal`]. Nothing here reads Redis or knows HTTP: `handling` reads and
//! writes through the store, and the API edge turns refusals into problem+json.

pub mod action;
pub mod change;
pub mod holding;
pub mod moves;
pub mod record;
pub mod refusal;
pub mod rules;
pub mod settings;
pub mod status;
pub mod timing;

#[cfg(test)]
mod tests;

pub use action::{Action, ActionRequest, Outcome, Transition};
pub use change::{AgentDelta, Change, Event, Labels, LeaseCheck, LiveEffects, Placement};
pub use moves::{Correction, Move, MovePlan};
pub use record::{Lease, Live, StoredTicket, TicketRecord};
pub use refusal::Refusal;
pub use rules::{Decision, decide};
pub use settings::{Facts, LiveRules, Rules};
pub use status::{LiveState, Status};
