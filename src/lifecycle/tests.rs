//! The rules without Redis: the transition table, who may act, what each action writes, and a
//! property test over random sequences of actions, claims and lapsing leases.
//!
//! The property test keeps its own record of queues, leases and agents' counts and applies each
//! decided change to it the way `ticket_action.lua` and `claim.lua` do (a test oracle for the
//! invariants, not a store: the scripts themselves are tested against a real Redis in tests/).

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use proptest::prelude::*;

use super::*;
use crate::auth::{Principal, Role};
use crate::config::Settings;
use crate::routing::Router;
use crate::sla::SlaConfig;
use crate::sla::clock::TicketClocks;
use crate::ticket::Source;

const NOW: i64 = 1_796_000_000_000;

struct World {
    counties: crate::county::Counties,
    settings: Settings,
    sla: SlaConfig,
    router: Router,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let settings = Settings::load(None).expect("config/default.toml loads");
        let sla = SlaConfig::build(&settings.sla, &settings.classify).expect("sla builds");
        let router = Router::new(&settings.routing, &settings.classify.warning_levels);
        World {
            counties: crate::county::Counties::from_pairs([
                ("320831", "金湖县"),
                ("320324", "睢宁县"),
            ]),
            settings,
            sla,
            router,
        }
    })
}

fn rules() -> Rules<'static> {
    let w = world();
    Rules {
        sla: &w.sla,
        router: &w.router,
        triage_queue: &w.settings.routing.default_queues.triage,
        reopen_days: 30,
        lease_ms: 60_000,
        max_notes: 3,
        live: LiveRules {
            max_call_ms: 600_000,
            wrap_up_ms: 30_000,
            handle_time_weight: 0.2,
        },
        counties: &w.counties,
    }
}

fn ticket_json(id: &str) -> String {
    serde_json::json!({
        "source": "12345", "external_id": format!("X-{id}"), "received_at": "2026-12-01T08:00:00Z",
        "channel": "phone", "transfer": "manual", "caller": {"name": "王", "phone": "13800000000"},
        "region": {"code": "320831", "town": null, "village": null, "grid": null},
        "title": "欠薪", "text": "老板拖欠工资", "people_involved": null, "tags": []
    })
    .to_string()
}

/// A queued mediation ticket of 320831 sent by `partner-a`.
fn record(n: u64) -> TicketRecord {
    let id = format!("320831-{n:08}");
    let facts = crate::sla::policy::TicketFacts {
        service: "mediation",
        warning_level: "none",
        source: Source::Citizen12345,
        category: "labour",
        transfer: "",
    };
    let clocks = TicketClocks::start(world().sla.policies.terms(facts, "320831"), NOW - 1000);
    TicketRecord {
        stored: StoredTicket {
            id: id.clone(),
            status: Status::Queued,
            queue: Some("mediation.320831.labour".into()),
            classification_json: r#"{"service":"mediation","category":"labour","reasons":[]}"#
                .into(),
            created_ms: NOW - 1000,
            clocks,
            live_asked: false,
        },
        ver: 1,
        ticket_json: ticket_json(&id),
        history: vec![],
        history_total: 1,
        notes: 0,
        fired: HashSet::new(),
        service: "mediation".into(),
        level: "none".into(),
        category: "labour".into(),
        source: "12345".into(),
        sender: Some("partner-a".into()),
        overdue: false,
        lease: None,
        assigned_agent: None,
        min_tier: None,
        seq: n,
        band: 2,
        region_path: "320831".into(),
        linked: vec![],
        live: None,
        callback: None,
        moving_to: None,
        transferred_to: None,
    }
}

/// A live transfer in `state`, in the mediators' line, reserved under `lease` if any.
fn live(state: LiveState, lease: Option<&str>) -> Option<Live> {
    Some(Live {
        state,
        transfer: "live".into(),
        since_ms: NOW - 500,
        estimate_ms: None,
        lease: lease.map(String::from),
        accepted_ms: None,
        lease_expires_ms: None,
        pool: Some("mediation".into()),
    })
}

fn who(name: &str, role: Role) -> Principal {
    Principal {
        name: name.into(),
        role,
        regions: vec![],
        agent_id: (role == Role::Agent).then(|| name.to_string()),
    }
}

fn body(reason: &str) -> ActionRequest {
    ActionRequest {
        reason: Some(reason.into()),
        ..Default::default()
    }
}

fn run(
    r: &TicketRecord,
    action: Action,
    req: &ActionRequest,
    p: &Principal,
) -> Result<Decision, Refusal> {
    req.validate(action, &world().settings.classify.categories)?;
    decide(&rules(), r, action, req, p, Facts::default(), NOW)
}

fn change(d: Decision) -> Change {
    match d {
        Decision::Write { change, .. } => *change,
        other => panic!("expected a change, got {other:?}"),
    }
}

#[test]
fn every_action_refuses_a_status_outside_its_row_of_the_table() {
    let admin = who("admin", Role::Admin);
    for action in Action::ALL {
        for status in Status::ALL {
            let mut r = record(1);
            r.stored.status = status;
            let req = ActionRequest {
                reason: Some("r".into()),
                note: Some("n".into()),
                summary: Some("s".into()),
                outcome: Some(Outcome::Mediated),
                satisfaction: Some(5),
                category: Some("labour".into()),
                lease_id: Some("L1".into()),
                ..Default::default()
            };
            let result = decide(&rules(), &r, action, &req, &admin, Facts::default(), NOW);
            if !action.transition().from.contains(&status) {
                assert!(
                    matches!(result, Err(Refusal::State(_)) | Err(Refusal::Forbidden(_))),
                    "{action:?} from {status:?}: {result:?}"
                );
            }
        }
    }
}

#[test]
fn the_status_an_action_leaves_is_the_tables() {
    let sup = who("sup", Role::Supervisor);
    let r = record(1);
    let c = change(run(&r, Action::Return, &body("不属于调解范围"), &sup).expect("return"));
    assert_eq!(c.status, Some(Status::Returned));
    assert!(c.dequeue && c.close);
    let c = change(run(&r, Action::Dispute, &body("派错"), &sup).expect("dispute"));
    assert_eq!(c.status, Some(Status::Queued));
    assert_eq!(
        c.requeue.as_ref().map(|p| p.queue.as_str()),
        Some("triage.320831")
    );
}

#[test]
fn a_partner_acts_only_on_tickets_it_sent() {
    let r = record(1);
    for action in [Action::Withdraw, Action::Dispute] {
        let other = run(&r, action, &body("x"), &who("partner-b", Role::Partner));
        assert!(
            matches!(other, Err(Refusal::Forbidden(_))),
            "{action:?}: {other:?}"
        );
        assert!(run(&r, action, &body("x"), &who("partner-a", Role::Partner)).is_ok());
    }
    // A ticket without a recorded sender (registered before senders were kept) is nobody's.
    let mut old = record(2);
    old.sender = None;
    assert!(
        run(
            &old,
            Action::Withdraw,
            &body("x"),
            &who("partner-a", Role::Partner)
        )
        .is_err()
    );
    // Partners never work tickets.
    assert!(matches!(
        run(
            &r,
            Action::Resolve,
            &ActionRequest::default(),
            &who("partner-a", Role::Partner)
        ),
        Err(Refusal::Forbidden(_)) | Err(Refusal::Invalid(_))
    ));
}

#[test]
fn an_agent_acts_only_on_what_it_holds_and_accepts_only_its_lease() {
    let mut r = record(1);
    r.stored.status = Status::Leased;
    r.lease = Some(Lease {
        id: "L7".into(),
        agent: "a1".into(),
        expires_ms: Some(NOW + 60_000),
    });
    let a1 = who("a1", Role::Agent);
    let a2 = who("a2", Role::Agent);
    let accept = ActionRequest {
        lease_id: Some("L7".into()),
        ..Default::default()
    };
    assert!(matches!(
        run(&r, Action::Accept, &accept, &a2),
        Err(Refusal::State(_))
    ));
    let c = change(run(&r, Action::Accept, &accept, &a1).expect("accept"));
    assert_eq!(c.assign.as_deref(), Some("a1"));
    assert_eq!(c.lease_check.as_ref().map(|l| l.id.as_str()), Some("L7"));
    assert!(
        c.release_lease && c.agent.is_none(),
        "the lease's count carries over"
    );
    assert!(matches!(
        run(
            &r,
            Action::Transfer,
            &ActionRequest {
                category: Some("labour".into()),
                ..body("x")
            },
            &a2
        ),
        Err(Refusal::Forbidden(_))
    ));
    // A supervisor cannot accept a ticket leased to an agent.
    assert!(matches!(
        run(
            &r,
            Action::Accept,
            &ActionRequest::default(),
            &who("s", Role::Supervisor)
        ),
        Err(Refusal::State(_))
    ));
}

#[test]
fn withdrawing_a_live_caller_ends_the_live_transfer_too() {
    let mut r = record(1);
    r.live = live(LiveState::Waiting, None);
    let c = change(
        run(
            &r,
            Action::Withdraw,
            &body("来电人撤回"),
            &who("op", Role::Operator),
        )
        .expect("withdraw"),
    );
    assert_eq!(c.status, Some(Status::Withdrawn));
    assert_eq!(c.labels.live, Some(LiveState::Cancelled));
    assert_eq!(c.live.unwait.as_deref(), Some("mediation"));
}

#[test]
fn hanging_up_a_reserved_caller_frees_the_agent_and_keeps_the_ticket_in_its_place() {
    let mut r = record(1);
    r.stored.status = Status::Leased;
    r.lease = Some(Lease {
        id: "L9".into(),
        agent: "a1".into(),
        expires_ms: None,
    });
    r.live = live(LiveState::Waiting, Some("L9"));
    let c = change(
        run(
            &r,
            Action::CancelLive,
            &ActionRequest::default(),
            &who("op", Role::Operator),
        )
        .expect("cancel"),
    );
    assert_eq!(c.status, Some(Status::Queued));
    assert!(c.release_lease);
    assert_eq!(
        c.agent.as_ref().map(|a| (a.agent.as_str(), a.active)),
        Some(("a1", -1))
    );
    let p = c.requeue.expect("back in line");
    assert_eq!((p.band, p.seq), (r.band, r.seq));
    // Nothing left to hang up.
    let mut done = record(2);
    done.live = live(LiveState::Cancelled, None);
    assert!(matches!(
        run(
            &done,
            Action::CancelLive,
            &ActionRequest::default(),
            &who("op", Role::Operator)
        ),
        Err(Refusal::State(_))
    ));
}

#[test]
fn a_move_to_another_county_closes_here_first_and_a_second_move_finds_it_closed() {
    let sup = who("sup", Role::Supervisor);
    let r = record(1);
    let to = |county: &str| ActionRequest {
        region_code: Some(county.into()),
        ..body("事发地在外县")
    };
    let Ok(Decision::Move(m)) = run(&r, Action::Transfer, &to("320324"), &sup) else {
        panic!("a move")
    };
    assert_eq!(m.close.status, Some(Status::Transferred));
    assert_eq!(m.close.labels.moving_to.as_deref(), Some("320324"));
    assert!(m.close.dequeue && m.close.close && m.close.timers.is_empty());
    assert_eq!(m.plan.ticket.external_id, "transfer:320831-00000001");
    assert_eq!(m.plan.since_ms, r.stored.created_ms);
    // After the first step: the same move again finishes it; another county is refused.
    let mut closed = r.clone();
    closed.stored.status = Status::Transferred;
    closed.moving_to = Some("320324".into());
    assert!(matches!(
        run(&closed, Action::Transfer, &to("320324"), &sup),
        Ok(Decision::FinishMove)
    ));
    assert!(matches!(
        run(&closed, Action::Transfer, &to("320311"), &sup),
        Err(Refusal::State(_))
    ));
}

#[test]
fn a_move_to_a_county_outside_the_deployment_is_refused_naming_region_code() {
    let sup = who("sup", Role::Supervisor);
    let to = ActionRequest {
        region_code: Some("320999".into()),
        ..body("事发地在外县")
    };
    match run(&record(1), Action::Transfer, &to, &sup) {
        Err(Refusal::Invalid(fields)) => assert_eq!(fields[0].0, "region_code"),
        other => panic!("refused as invalid, not {other:?}"),
    }
}

#[test]
fn raising_stops_at_the_most_urgent_band_and_escalation_at_the_county_centre() {
    let sup = who("sup", Role::Supervisor);
    let mut r = record(1);
    r.band = 0;
    assert!(matches!(
        run(&r, Action::Raise, &body("督办"), &sup),
        Err(Refusal::State(_))
    ));
    r.band = 1;
    let c = change(run(&r, Action::Raise, &body("督办"), &sup).expect("raise"));
    assert_eq!(c.labels.band, Some(0));
    r.min_tier = Some(crate::agents::Tier::County);
    assert!(matches!(
        run(&r, Action::Escalate, &body("上报"), &sup),
        Err(Refusal::State(_))
    ));
}

/// A ticket accepted by agent `a1`, with its accept clock stopped `ago` ms before `NOW`.
fn accepted(ago: i64) -> TicketRecord {
    let mut r = record(1);
    r.stored.status = Status::Accepted;
    r.assigned_agent = Some("a1".into());
    r.stored
        .clocks
        .apply(crate::sla::clock::ClockEvent::Accept, NOW - ago)
        .expect("accept");
    r
}

#[test]
fn working_a_ticket_moves_its_clocks_and_its_agents_figures() {
    let a1 = who("a1", Role::Agent);
    let r = accepted(60_000);
    let c = change(run(&r, Action::FirstContact, &ActionRequest::default(), &a1).expect("contact"));
    assert_eq!(c.status, Some(Status::InProgress));
    let c = change(run(&r, Action::Pause, &body("等来电人补材料"), &a1).expect("pause"));
    assert!(c.clocks.is_paused() && c.status.is_none());
    let mut paused = r.clone();
    paused.stored.clocks = c.clocks.clone();
    assert!(matches!(
        run(&paused, Action::Pause, &body("again"), &a1),
        Err(Refusal::State(_))
    ));
    let c = change(run(&paused, Action::Resume, &ActionRequest::default(), &a1).expect("resume"));
    assert!(!c.clocks.is_paused());
    let resolve = ActionRequest {
        outcome: Some(Outcome::Mediated),
        summary: Some("双方达成协议".into()),
        ..Default::default()
    };
    let c = change(run(&r, Action::Resolve, &resolve, &a1).expect("resolve"));
    assert_eq!(c.status, Some(Status::Resolved));
    let d = c.agent.expect("the agent is freed and credited");
    assert_eq!(
        (d.agent.as_str(), d.active, d.handled, d.handle_ms),
        ("a1", -1, 1, Some(60_000))
    );
    // Another agent may not work it; the follow-up waits for the resolution.
    assert!(matches!(
        run(&r, Action::Resolve, &resolve, &who("a2", Role::Agent)),
        Err(Refusal::Forbidden(_))
    ));
    let follow = ActionRequest {
        satisfaction: Some(5),
        ..Default::default()
    };
    assert!(matches!(
        run(&r, Action::FollowUp, &follow, &a1),
        Err(Refusal::State(_))
    ));
    let mut resolved = r.clone();
    resolved.stored.status = Status::Resolved;
    let c = change(run(&resolved, Action::FollowUp, &follow, &a1).expect("follow up"));
    assert_eq!(c.status, Some(Status::Closed));
}

#[test]
fn a_live_call_connects_ends_and_measures_its_handle_time() {
    let a1 = who("a1", Role::Agent);
    let mut r = accepted(1_000);
    r.live = live(LiveState::Accepted, None).map(|l| Live {
        accepted_ms: Some(NOW - 90_000),
        pool: Some("legal".into()),
        ..l
    });
    let c = change(run(&r, Action::FirstContact, &ActionRequest::default(), &a1).expect("contact"));
    assert_eq!(c.labels.live, Some(LiveState::Connected));
    let c = change(run(&r, Action::EndCall, &ActionRequest::default(), &a1).expect("end call"));
    assert_eq!(c.labels.live, Some(LiveState::Ended));
    assert_eq!(
        c.live.busy,
        Some(("a1".to_string(), NOW + 30_000)),
        "wrap-up"
    );
    let (pool, ms, _) = c.live.handle_time.expect("a handle time");
    assert_eq!(
        (pool.as_str(), ms),
        ("legal", 120_000),
        "90 s on the call + 30 s wrap-up"
    );
    let mut plain = accepted(1_000);
    plain.live = None;
    assert!(matches!(
        run(&plain, Action::EndCall, &ActionRequest::default(), &a1),
        Err(Refusal::State(_))
    ));
}

#[test]
fn renewing_or_declining_needs_the_holders_current_lease() {
    let mut r = record(1);
    r.stored.status = Status::Leased;
    r.lease = Some(Lease {
        id: "L3".into(),
        agent: "a1".into(),
        expires_ms: None,
    });
    let lease = |id: &str| ActionRequest {
        lease_id: Some(id.into()),
        ..Default::default()
    };
    let a1 = who("a1", Role::Agent);
    assert!(matches!(
        run(&r, Action::Renew, &lease("L3"), &a1),
        Ok(Decision::Lease {
            length_ms: 60_000,
            ..
        })
    ));
    assert!(matches!(
        run(&r, Action::Decline, &lease("L3"), &a1),
        Ok(Decision::Lease { length_ms: 0, .. })
    ));
    assert!(matches!(
        run(&r, Action::Renew, &lease("L2"), &a1),
        Err(Refusal::State(_))
    ));
    assert!(matches!(
        run(&r, Action::Renew, &lease("L3"), &who("a2", Role::Agent)),
        Err(Refusal::State(_))
    ));
    assert!(matches!(
        run(&r, Action::Renew, &lease("L3"), &who("s", Role::Supervisor)),
        Err(Refusal::Forbidden(_))
    ));
}

#[test]
fn a_transfer_within_the_county_reroutes_keeps_its_place_and_records_the_correction() {
    let sup = who("sup", Role::Supervisor);
    let mut r = accepted(1_000);
    r.stored.status = Status::Accepted;
    let req = ActionRequest {
        service: Some("legal_consultation".into()),
        town: Some("城关镇".into()),
        ..body("是法律咨询")
    };
    let Ok(Decision::Write {
        change: c,
        correction,
    }) = run(&r, Action::Transfer, &req, &sup)
    else {
        panic!("a transfer")
    };
    assert_eq!(c.status, Some(Status::Queued));
    assert!(c.dequeue && c.unassign);
    assert_eq!(
        c.agent.as_ref().map(|a| a.active),
        Some(-1),
        "the agent is freed"
    );
    let p = c.requeue.as_ref().expect("back in line");
    assert!(p.queue.starts_with("legal"), "{}", p.queue);
    assert_eq!(
        (p.seq, p.since_ms),
        (r.seq, r.stored.created_ms),
        "keeps its place and age"
    );
    assert_eq!(c.labels.region_path.as_deref(), Some("320831/城关镇"));
    assert_eq!(
        correction.map(|c| c.service),
        Some("legal_consultation".into())
    );
}

#[test]
fn a_ticket_takes_at_most_max_notes_notes() {
    let op = who("op", Role::Operator);
    let req = ActionRequest {
        note: Some("来电人又来电催办".into()),
        ..Default::default()
    };
    let mut r = record(1);
    r.notes = 2;
    assert!(change(run(&r, Action::Note, &req, &op).expect("note")).counts_note);
    r.notes = 3;
    assert!(matches!(
        run(&r, Action::Note, &req, &op),
        Err(Refusal::State(_))
    ));
}

#[test]
fn reopening_is_refused_after_the_window() {
    let sup = who("sup", Role::Supervisor);
    let mut r = record(1);
    r.stored.status = Status::Resolved;
    let mut clocks = r.stored.clocks.clone();
    clocks
        .apply(crate::sla::clock::ClockEvent::Accept, NOW - 40 * 86_400_000)
        .expect("accept");
    clocks
        .apply(
            crate::sla::clock::ClockEvent::Resolve,
            NOW - 31 * 86_400_000,
        )
        .expect("resolve");
    r.stored.clocks = clocks;
    assert!(matches!(
        run(&r, Action::Reopen, &body("未解决"), &sup),
        Err(Refusal::State(_))
    ));
}

// ---- the property: one place per ticket, agents' counts equal what they hold ----------------

#[derive(Debug, Clone, Default)]
struct Model {
    tickets: Vec<TicketRecord>,
    queues: HashMap<String, HashSet<String>>,
    active: HashMap<String, i64>,
    lease_seq: u64,
}

impl Model {
    fn new(n: u64) -> Model {
        let mut m = Model::default();
        for i in 1..=n {
            let r = record(i);
            m.queues
                .entry(r.stored.queue.clone().unwrap_or_default())
                .or_default()
                .insert(r.id().to_string());
            m.tickets.push(r);
        }
        for a in AGENTS {
            m.active.insert(a.to_string(), 0);
        }
        m
    }

    fn in_queues(&self, id: &str) -> usize {
        self.queues.values().filter(|q| q.contains(id)).count()
    }

    /// What `claim.lua` does.
    fn claim(&mut self, t: usize, agent: &str) {
        let r = &mut self.tickets[t];
        let q = r.stored.queue.clone().unwrap_or_default();
        if r.stored.status != Status::Queued
            || !self.queues.entry(q.clone()).or_default().remove(r.id())
        {
            return;
        }
        self.lease_seq += 1;
        r.stored.status = Status::Leased;
        r.lease = Some(Lease {
            id: format!("L{}", self.lease_seq),
            agent: agent.to_string(),
            expires_ms: None,
        });
        r.ver += 1;
        *self.active.entry(agent.into()).or_default() += 1;
    }

    /// What `reap_leases.lua` does when a lease lapses.
    fn lapse(&mut self, t: usize) {
        let r = &mut self.tickets[t];
        if r.stored.status != Status::Leased {
            return;
        }
        if let Some(l) = r.lease.take() {
            *self.active.entry(l.agent).or_default() -= 1;
        }
        r.stored.status = Status::Queued;
        let q = r.stored.queue.clone().unwrap_or_default();
        self.queues.entry(q).or_default().insert(r.id().to_string());
        r.ver += 1;
    }

    /// What `ticket_action.lua` does with a change.
    fn apply(&mut self, t: usize, c: &Change) {
        let r = &mut self.tickets[t];
        assert_eq!(r.ver, c.expected_ver);
        let id = r.id().to_string();
        if let Some(l) = &c.lease_check {
            assert_eq!(
                r.lease.as_ref().map(|x| (&x.id, &x.agent)),
                Some((&l.id, &l.agent))
            );
        }
        r.ver += 1;
        r.stored.clocks = c.clocks.clone();
        if let Some(s) = c.status {
            r.stored.status = s;
        }
        if c.dequeue
            && let Some(q) = &r.stored.queue
        {
            self.queues.entry(q.clone()).or_default().remove(&id);
        }
        if c.release_lease {
            r.lease = None;
        }
        if let Some(a) = &c.assign {
            r.assigned_agent = Some(a.clone());
        }
        if c.unassign {
            r.assigned_agent = None;
        }
        if let Some(d) = &c.agent {
            *self.active.entry(d.agent.clone()).or_default() += d.active;
        }
        if let Some(b) = c.labels.band {
            r.band = b;
        }
        if let Some(s) = &c.labels.service {
            r.service = s.clone();
        }
        if let Some(t) = c.labels.min_tier {
            r.min_tier = Some(t);
        }
        if let Some(l) = c.labels.live
            && let Some(live) = r.live.as_mut()
        {
            live.state = l;
        }
        if let Some(m) = &c.labels.moving_to {
            r.moving_to = Some(m.clone());
        }
        if let Some(p) = &c.requeue {
            self.queues
                .entry(p.queue.clone())
                .or_default()
                .insert(id.clone());
            r.stored.queue = Some(p.queue.clone());
        }
    }

    fn check(&self) {
        for r in &self.tickets {
            let queued = self.in_queues(r.id());
            let leased = usize::from(r.stored.status == Status::Leased && r.lease.is_some());
            let worked = usize::from(r.stored.status.is_worked() && r.assigned_agent.is_some());
            assert!(
                queued + leased + worked <= 1,
                "{} is in {queued} queues, leased {leased}, worked {worked}: {r:?}",
                r.id()
            );
            assert_eq!(
                queued == 1,
                r.stored.status == Status::Queued,
                "{}: queued iff in a queue ({:?})",
                r.id(),
                r.stored.status
            );
        }
        for (agent, active) in &self.active {
            let holds = self
                .tickets
                .iter()
                .filter(|r| {
                    (r.stored.status == Status::Leased
                        && r.lease.as_ref().is_some_and(|l| &l.agent == agent))
                        || (r.stored.status.is_worked()
                            && r.assigned_agent.as_deref() == Some(agent))
                })
                .count() as i64;
            assert_eq!(*active, holds, "agent {agent}");
        }
    }
}

const AGENTS: [&str; 3] = ["a1", "a2", "a3"];

#[derive(Debug, Clone)]
enum Step {
    Claim(usize, usize),
    Lapse(usize),
    Act(usize, usize, Action),
}

fn actor(i: usize) -> Principal {
    match i {
        0..=2 => who(AGENTS[i], Role::Agent),
        3 => who("sup", Role::Supervisor),
        4 => who("op", Role::Operator),
        5 => who("partner-a", Role::Partner),
        _ => who("partner-b", Role::Partner),
    }
}

fn request(action: Action, lease: Option<String>) -> ActionRequest {
    ActionRequest {
        reason: Some("因为".into()),
        note: Some("记录".into()),
        summary: Some("已调解".into()),
        outcome: (action == Action::Resolve).then_some(Outcome::Mediated),
        satisfaction: Some(4),
        lease_id: lease,
        category: (action == Action::Transfer).then(|| "neighbour".to_string()),
        ..Default::default()
    }
}

fn step() -> impl Strategy<Value = Step> {
    let tickets = 0..4usize;
    prop_oneof![
        (tickets.clone(), 0..3usize).prop_map(|(t, a)| Step::Claim(t, a)),
        tickets.clone().prop_map(Step::Lapse),
        (
            tickets,
            0..7usize,
            prop::sample::select(Action::ALL.to_vec())
        )
            .prop_map(|(t, who, a)| Step::Act(t, who, a)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn one_place_per_ticket_and_counts_match_what_agents_hold(steps in prop::collection::vec(step(), 1..60)) {
        let mut m = Model::new(4);
        for s in steps {
            match s {
                Step::Claim(t, a) => m.claim(t, AGENTS[a]),
                Step::Lapse(t) => m.lapse(t),
                Step::Act(t, who, action) => {
                    let p = actor(who);
                    let r = m.tickets[t].clone();
                    let lease = r.lease.as_ref().map(|l| l.id.clone());
                    let req = request(action, lease);
                    if req.validate(action, &world().settings.classify.categories).is_err() {
                        continue;
                    }
                    match decide(&rules(), &r, action, &req, &p, Facts::default(), NOW) {
                        Ok(Decision::Write { change, .. }) => m.apply(t, &change),
                        Ok(Decision::Move(mv)) => m.apply(t, &mv.close),
                        Ok(Decision::FinishMove | Decision::Lease { .. }) | Err(_) => {}
                    }
                }
            }
            m.check();
        }
    }
}
