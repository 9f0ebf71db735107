//! The actions on a ticket after intake, the one table of which status each may start from
//! and leave, who may take it, and the request body each needs.

use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::Role;
use crate::sla::clock::ClockEvent;

use super::refusal::Refusal;
use super::status::Status;

/// The actions, as they appear in the path `POST /v1/tickets/{id}/{action}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// 接单: take the ticket off its queue and start working it.
    Accept,
    /// 首次联系: the caller has been contacted.
    FirstContact,
    /// 挂起: waiting, e.g. for the caller; clocks stop counting.
    Pause,
    /// Work resumes; clocks count again.
    Resume,
    /// 办结: with an outcome and a summary; the follow-up clock starts.
    Resolve,
    /// 回访: the follow-up call, with satisfaction 1–5; closes the loop.
    FollowUp,
    /// 转办: to another service, category or place, with a reason; keeps its age.
    Transfer,
    /// 上报: to the next tier up, with a reason; keeps its place in line.
    Escalate,
    /// Extends the caller's lease on a claimed ticket.
    Renew,
    /// 退单: back to the sender hotline with a reason (out of scope for lawyers and mediators).
    Return,
    /// 异议/改派: a partner disputes the dispatch; the ticket goes to triage to be dispatched again.
    Dispute,
    /// Reopens a resolved ticket within `agents.reopen_days`.
    Reopen,
    /// 提高优先级: one priority band up, keeping its arrival order (supervisors).
    Raise,
    /// Adds a note to the history (e.g. what the caller said on a call back); changes nothing else.
    Note,
    /// Turns down an offer or claim at once (with `lease_id`); it goes back to its place and is
    /// offered again. Counts as a missed offer.
    Decline,
    /// 挂断: a live caller hung up (operator or partner). A reservation not yet accepted is
    /// released and the ticket stays queued as ordinary work, unless `withdraw` is true.
    CancelLive,
    /// The agent's live call ended; wrap-up starts, and the call's handle time feeds the wait
    /// estimate.
    EndCall,
    /// 撤回: the caller withdraws the request; the ticket leaves the queues and its clocks stop.
    Withdraw,
}

/// From which statuses an action may start, and which it leaves (`None`: unchanged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The statuses it may start from.
    pub from: &'static [Status],
    /// The status it leaves, if it changes.
    pub to: Option<Status>,
}

const OPEN: &[Status] = &[
    Status::Queued,
    Status::Leased,
    Status::Accepted,
    Status::InProgress,
];
const WORKING: &[Status] = &[Status::Accepted, Status::InProgress];

/// Agents and the staff who act on tickets.
const ACTORS: &[Role] = &[Role::Agent, Role::Operator, Role::Supervisor, Role::Admin];
/// The sending side may also dispute, hang up and withdraw (on its own tickets).
const SENDERS_TOO: &[Role] = &[Role::Partner, Role::Operator, Role::Supervisor, Role::Admin];
/// Supervision only.
const SUPERVISORS: &[Role] = &[Role::Supervisor, Role::Admin];
/// The agent holding a lease.
const LEASE_HOLDERS: &[Role] = &[Role::Agent];

impl Action {
    /// Every action.
    pub const ALL: [Action; 18] = [
        Action::Accept,
        Action::FirstContact,
        Action::Pause,
        Action::Resume,
        Action::Resolve,
        Action::FollowUp,
        Action::Transfer,
        Action::Escalate,
        Action::Renew,
        Action::Return,
        Action::Dispute,
        Action::Reopen,
        Action::Raise,
        Action::Note,
        Action::Decline,
        Action::CancelLive,
        Action::EndCall,
        Action::Withdraw,
    ];

    /// The name in the path and in events (`ticket.<name>`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Accept => "accept",
            Action::FirstContact => "first_contact",
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Resolve => "resolve",
            Action::FollowUp => "follow_up",
            Action::Transfer => "transfer",
            Action::Escalate => "escalate",
            Action::Renew => "renew",
            Action::Return => "return",
            Action::Dispute => "dispute",
            Action::Reopen => "reopen",
            Action::Decline => "decline",
            Action::Note => "note",
            Action::Raise => "raise",
            Action::CancelLive => "cancel_live",
            Action::EndCall => "end_call",
            Action::Withdraw => "withdraw",
        }
    }

    /// Reads a path segment.
    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// What the action means to the SLA clocks.
    pub fn clock_event(self) -> Option<ClockEvent> {
        match self {
            Action::Accept => Some(ClockEvent::Accept),
            Action::FirstContact => Some(ClockEvent::FirstContact),
            Action::Pause => Some(ClockEvent::Pause),
            Action::Resume => Some(ClockEvent::Resume),
            Action::Resolve => Some(ClockEvent::Resolve),
            Action::FollowUp => Some(ClockEvent::FollowUp),
            Action::Return | Action::Withdraw => Some(ClockEvent::Return),
            Action::Reopen => Some(ClockEvent::Reopen),
            Action::Transfer
            | Action::Escalate
            | Action::Renew
            | Action::Dispute
            | Action::Decline
            | Action::Note
            | Action::Raise
            | Action::CancelLive
            | Action::EndCall => None,
        }
    }

    /// The transition table: the one place that says which status an action needs and leaves.
    pub fn transition(self) -> Transition {
        let (from, to): (&'static [Status], Option<Status>) = match self {
            Action::Accept => (&[Status::Queued, Status::Leased], Some(Status::Accepted)),
            Action::Transfer | Action::Escalate | Action::Dispute => (OPEN, Some(Status::Queued)),
            Action::Renew | Action::Decline => (&[Status::Leased], None),
            Action::Raise => (&[Status::Queued], None),
            Action::Note => (
                &[
                    Status::Queued,
                    Status::Leased,
                    Status::Accepted,
                    Status::InProgress,
                    Status::Resolved,
                ],
                None,
            ),
            Action::Return => (OPEN, Some(Status::Returned)),
            Action::Withdraw => (OPEN, Some(Status::Withdrawn)),
            // A hang-up keeps the ticket as ordinary work unless the caller also withdraws.
            Action::CancelLive => (OPEN, None),
            Action::EndCall | Action::Pause | Action::Resume => (WORKING, None),
            Action::Reopen => (&[Status::Resolved, Status::Closed], Some(Status::Queued)),
            Action::FirstContact => (WORKING, Some(Status::InProgress)),
            Action::Resolve => (WORKING, Some(Status::Resolved)),
            Action::FollowUp => (&[Status::Resolved], Some(Status::Closed)),
        };
        Transition { from, to }
    }

    /// The roles that may take the action at all (regions, holders and senders are checked
    /// against the ticket too).
    pub fn roles(self) -> &'static [Role] {
        match self {
            Action::Dispute | Action::CancelLive | Action::Withdraw => SENDERS_TOO,
            Action::Raise => SUPERVISORS,
            Action::Renew | Action::Decline => LEASE_HOLDERS,
            _ => ACTORS,
        }
    }
}

/// How a matter ended (办结结果).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// 调解成功
    Mediated,
    /// 调解不成
    MediationFailed,
    /// 已解答
    Answered,
    /// 转诉讼
    ToLitigation,
    /// 转仲裁
    ToArbitration,
    /// 转110
    ToPolice,
    /// 退回来源
    ReturnedToSource,
}

impl Outcome {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Mediated => "mediated",
            Outcome::MediationFailed => "mediation_failed",
            Outcome::Answered => "answered",
            Outcome::ToLitigation => "to_litigation",
            Outcome::ToArbitration => "to_arbitration",
            Outcome::ToPolice => "to_police",
            Outcome::ReturnedToSource => "returned_to_source",
        }
    }
}

/// Optional body of an action.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    /// A note for the history (any action).
    pub note: Option<String>,
    /// Why (pause).
    pub reason: Option<String>,
    /// How it ended (resolve; required there).
    pub outcome: Option<Outcome>,
    /// What was done (resolve; required there).
    pub summary: Option<String>,
    /// The caller's satisfaction, 1 to 5 (follow_up; required there).
    pub satisfaction: Option<u8>,
    /// The caller's comment (follow_up).
    pub comment: Option<String>,
    /// cancel_live: the caller also withdraws the request, so it leaves the queues.
    pub withdraw: Option<bool>,
    /// The lease from the claim (accept and renew, for agents).
    pub lease_id: Option<String>,
    /// New service (transfer): `legal_consultation`, `mediation` or `triage`.
    pub service: Option<String>,
    /// New category (transfer).
    pub category: Option<String>,
    /// New town in the same county (transfer).
    pub town: Option<String>,
    /// New village (transfer).
    pub village: Option<String>,
    /// New grid (transfer).
    pub grid: Option<String>,
    /// Another county (transfer): the ticket moves there in two idempotent steps.
    pub region_code: Option<String>,
}

/// Longest texts, in characters.
const NOTE_MAX: usize = 2000;
const REASON_MAX: usize = 500;
const SUMMARY_MAX: usize = 4000;
const COMMENT_MAX: usize = 2000;

fn too_long(errors: &mut Vec<(String, String)>, field: &str, v: &Option<String>, max: usize) {
    if v.as_ref().is_some_and(|s| s.chars().count() > max) {
        errors.push((field.into(), format!("longer than {max} characters")));
    }
}

fn blank(v: &Option<String>) -> bool {
    v.as_deref().is_none_or(|s| s.trim().is_empty())
}

impl ActionRequest {
    /// Checks the body for `action`, naming every bad field at once. `categories` are the
    /// configured ones (a transfer may only name those).
    pub fn validate(&self, action: Action, categories: &[String]) -> Result<(), Refusal> {
        let mut e = Vec::new();
        too_long(&mut e, "note", &self.note, NOTE_MAX);
        too_long(&mut e, "reason", &self.reason, REASON_MAX);
        too_long(&mut e, "summary", &self.summary, SUMMARY_MAX);
        too_long(&mut e, "comment", &self.comment, COMMENT_MAX);
        let mut need = |field: &str, missing: bool, message: &str| {
            if missing {
                e.push((field.to_string(), message.to_string()));
            }
        };
        match action {
            Action::Resolve => {
                need("outcome", self.outcome.is_none(), "is required to resolve");
                need("summary", blank(&self.summary), "is required to resolve");
            }
            Action::FollowUp => match self.satisfaction {
                Some(1..=5) => {}
                Some(_) => need("satisfaction", true, "must be 1 to 5"),
                None => need("satisfaction", true, "is required for a follow-up"),
            },
            Action::Transfer
            | Action::Escalate
            | Action::Return
            | Action::Dispute
            | Action::Reopen
            | Action::Raise => need("reason", blank(&self.reason), "is required"),
            Action::Note => need("note", blank(&self.note), "is required"),
            Action::Renew | Action::Decline => {
                need("lease_id", self.lease_id.is_none(), "is required")
            }
            _ => {}
        }
        if action == Action::Transfer {
            self.validate_transfer(&mut e, categories);
        } else if let Some(c) = &self.category
            && !categories.contains(c)
        {
            e.push((
                "category".into(),
                format!("`{c}` is not a configured category"),
            ));
        }
        for (field, v) in [
            ("town", &self.town),
            ("village", &self.village),
            ("grid", &self.grid),
        ] {
            if let Some(v) = v
                && (v.trim().is_empty() || v.contains('/') || v.chars().count() > 64)
            {
                e.push((field.into(), "1 to 64 characters, without `/`".into()));
            }
        }
        if e.is_empty() {
            Ok(())
        } else {
            Err(Refusal::Invalid(e))
        }
    }

    fn validate_transfer(&self, e: &mut Vec<(String, String)>, categories: &[String]) {
        if let Some(s) = &self.service
            && !["legal_consultation", "mediation", "triage"].contains(&s.as_str())
        {
            e.push((
                "service".into(),
                "must be legal_consultation, mediation or triage".into(),
            ));
        }
        if let Some(c) = &self.category
            && !categories.contains(c)
        {
            e.push((
                "category".into(),
                format!("`{c}` is not a configured category"),
            ));
        }
        if let Some(code) = &self.region_code
            && !crate::ticket::Region::is_valid_code(code)
        {
            e.push(("region_code".into(), "must be a 6-digit region code".into()));
        }
        if self.service.is_none()
            && self.category.is_none()
            && self.region_code.is_none()
            && self.town.is_none()
            && self.village.is_none()
            && self.grid.is_none()
        {
            e.push((
                "service".into(),
                "name what changes: service, category, town, village or grid".into(),
            ));
        }
    }

    /// The body's fields as they go into the event history.
    pub fn details(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        let mut put = |k: &str, v: Option<serde_json::Value>| {
            if let Some(v) = v {
                m.insert(k.to_string(), v);
            }
        };
        put("note", self.note.clone().map(Into::into));
        put("reason", self.reason.clone().map(Into::into));
        put("outcome", self.outcome.map(|o| o.as_str().into()));
        put("summary", self.summary.clone().map(Into::into));
        put("satisfaction", self.satisfaction.map(Into::into));
        put("comment", self.comment.clone().map(Into::into));
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_is_named_once_and_parses_back() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(a));
        }
        assert_eq!(Action::parse("explode"), None);
    }

    #[test]
    fn no_action_leaves_a_final_ticket_except_reopen() {
        for a in Action::ALL {
            let t = a.transition();
            let from_final = t.from.iter().any(|s| {
                matches!(
                    s,
                    Status::Closed | Status::Returned | Status::Withdrawn | Status::Transferred
                )
            });
            assert_eq!(from_final, a == Action::Reopen, "{a:?}");
        }
    }

    #[test]
    fn a_resolve_needs_outcome_and_summary_named_together() {
        let err = ActionRequest::default()
            .validate(Action::Resolve, &[])
            .unwrap_err();
        let Refusal::Invalid(fields) = err else {
            panic!("not a validation refusal")
        };
        let names: Vec<_> = fields.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(names, ["outcome", "summary"]);
    }

    #[test]
    fn a_transfer_names_what_changes_and_only_configured_categories() {
        let cats = vec!["labour".to_string()];
        let r = ActionRequest {
            reason: Some("wrong desk".into()),
            category: Some("nonsense".into()),
            ..Default::default()
        };
        assert!(
            matches!(r.validate(Action::Transfer, &cats), Err(Refusal::Invalid(f)) if f[0].0 == "category")
        );
        let r = ActionRequest {
            reason: Some("wrong desk".into()),
            ..Default::default()
        };
        assert!(r.validate(Action::Transfer, &cats).is_err());
        let r = ActionRequest {
            reason: Some("wrong desk".into()),
            town: Some("a/b".into()),
            ..Default::default()
        };
        assert!(
            matches!(r.validate(Action::Transfer, &cats), Err(Refusal::Invalid(f)) if f[0].0 == "town")
        );
    }
}
