//! Agents (lawyers 律师, mediators 调解员, triage operators) and who may take which ticket.
//!
//! Eligibility and order are pure functions here, tested without Redis; `queues` only stores
//! agents and takes a chosen ticket atomically. The rules, in order:
//!
//! 1. **Kind**: lawyers take `legal.*` queues, mediators `mediation.*`, triage operators `triage.*`.
//! 2. **Skills**: an agent with skills takes only tickets of those categories; none means all.
//! 3. **Region**: an agent's region path (`320831`, `320831/城关镇`, `320831/城关镇/东关村`,
//!    `320831/城关镇/东关村/3`) must be a prefix of the ticket's path (county/town/village/grid).
//! 4. **Tier and widening** (小事不出网格、大事不出村居、难事不出乡镇): each service has ordered
//!    steps (grid at once, village after 30 min, town after 1 h, county after 2 h by default). An
//!    agent of a step's tier may take a ticket once it has waited that step's time. A step with no
//!    *available* agent able to take the ticket is skipped (configurable), so a village without
//!    a grid mediator does not wait 30 minutes for nobody. An escalated ticket needs at least its
//!    `min_tier`.
//! 5. **Order**: most urgent band first, then oldest. Waiting raises the band by one every
//!    `aging_seconds`, so low-priority work cannot starve behind a stream of urgent work.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::setting::{ConfigError, check_queue_template, invalid};

/// What an agent does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentKind {
    /// 律师: takes `legal.*` queues.
    Lawyer,
    /// 调解员: takes `mediation.*` queues.
    Mediator,
    /// 分拣员: takes `triage.*` queues.
    Triage,
}

impl AgentKind {
    /// The queue-name prefix this kind works.
    pub fn queue_kind(self) -> &'static str {
        match self {
            AgentKind::Lawyer => "legal",
            AgentKind::Mediator => "mediation",
            AgentKind::Triage => "triage",
        }
    }

    /// The service whose widening steps apply.
    pub fn service(self) -> &'static str {
        match self {
            AgentKind::Lawyer => "legal_consultation",
            AgentKind::Mediator => "mediation",
            AgentKind::Triage => "triage",
        }
    }
}

/// Where in the hierarchy an agent works (层级).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// 网格
    Grid,
    /// 村/社区
    Village,
    /// 乡镇/街道
    Town,
    /// 县级中心
    County,
}

impl Tier {
    /// The next tier up, for escalation.
    pub fn above(self) -> Option<Tier> {
        match self {
            Tier::Grid => Some(Tier::Village),
            Tier::Village => Some(Tier::Town),
            Tier::Town => Some(Tier::County),
            Tier::County => None,
        }
    }

    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Grid => "grid",
            Tier::Village => "village",
            Tier::Town => "town",
            Tier::County => "county",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Tier> {
        [Tier::Grid, Tier::Village, Tier::Town, Tier::County]
            .into_iter()
            .find(|t| t.as_str() == s)
    }
}

/// Whether an agent takes work now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    /// Takes work.
    Available,
    /// Signed in, not taking work.
    Away,
    /// Signed out.
    Offline,
}

/// An agent as admins define it (`PUT /v1/agents/{id}` body, `[[agents.bootstrap]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "王调解员", "kind": "mediator", "skills": ["labour", "neighbour"],
    "regions": ["320831/城关镇"], "tier": "town", "capacity": 5, "status": "available",
    "contact": "8021"
}))]
pub struct AgentSpec {
    /// Display name, e.g. 张律师: 1 to 64 characters.
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
    /// Lawyer, mediator or triage.
    pub kind: AgentKind,
    /// Categories; empty takes all.
    #[serde(default)]
    pub skills: Vec<String>,
    /// Region paths, all in one county: `320831`, `320831/城关镇`, `320831/城关镇/东关村/3`.
    #[schema(min_items = 1)]
    pub regions: Vec<String>,
    /// Grid, village, town or county.
    pub tier: Tier,
    /// Most tickets held at once (leased or being worked), 1 to 10000.
    #[schema(minimum = 1, maximum = 10000)]
    pub capacity: u32,
    /// Available, away or offline.
    pub status: AgentStatus,
    /// Extension or number to transfer a call to, at most 32 characters.
    #[serde(default)]
    #[schema(max_length = 32)]
    pub contact: Option<String>,
}

/// An agent as stored, with live figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Agent {
    /// Id, e.g. `m-320831-001`.
    pub id: String,
    /// The definition.
    #[serde(flatten)]
    #[schema(inline)]
    pub spec: AgentSpec,
    /// Tickets held now.
    pub active: u32,
    /// Tickets resolved.
    pub handled: u64,
    /// Leases that expired in this agent's hands.
    pub missed: u64,
    /// Mean time from acceptance to resolution, seconds (0 before the first).
    pub avg_handle_seconds: f64,
}

impl AgentSpec {
    /// Validates, returning `(field, message)` pairs; `categories` is the taxonomy.
    pub fn problems(&self, categories: &[String]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.name.trim().is_empty() || self.name.chars().count() > 64 {
            out.push(("name".into(), "must be 1 to 64 characters".into()));
        }
        for (i, s) in self.skills.iter().enumerate() {
            if !categories.contains(s) {
                out.push((
                    format!("skills[{i}]"),
                    format!("`{s}` is not a configured category"),
                ));
            }
        }
        if self.regions.is_empty() {
            out.push(("regions".into(), "must name at least one region".into()));
        }
        for (i, r) in self.regions.iter().enumerate() {
            let county = r.split('/').next().unwrap_or_default();
            if !crate::ticket::Region::is_valid_code(county)
                || r.split('/').any(str::is_empty)
                || r.split('/').count() > 4
            {
                out.push((
                    format!("regions[{i}]"),
                    "must be a county code, optionally followed by /town, /village and /grid"
                        .into(),
                ));
            }
        }
        if self.county().is_none() && !self.regions.is_empty() {
            out.push((
                "regions".into(),
                "an agent works in one county: every region must start with the same code".into(),
            ));
        }
        if self.capacity == 0 || self.capacity > 10_000 {
            out.push(("capacity".into(), "must be 1 to 10000".into()));
        }
        if let Some(c) = &self.contact
            && c.chars().count() > 32
        {
            out.push(("contact".into(), "at most 32 characters".into()));
        }
        out
    }

    /// The regions whose county is not one of the deployment's, as `(field, message)` pairs:
    /// an agent of an unknown county could never be offered a ticket.
    pub fn outside(&self, counties: &crate::county::Counties) -> Vec<(String, String)> {
        self.regions
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let county = r.split('/').next().unwrap_or_default();
                (!counties.contains(county))
                    .then(|| (format!("regions[{i}]"), counties.refusal(county)))
            })
            .collect()
    }

    /// The county all regions lie in, when they agree.
    pub fn county(&self) -> Option<&str> {
        let first = self.regions.first()?.split('/').next()?;
        self.regions
            .iter()
            .all(|r| r.split('/').next() == Some(first))
            .then_some(first)
    }
}

/// Agent ids: short, readable, safe in Redis keys and URLs.
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

/// A ticket region as a path: `county/town/village/grid`, as far as known.
pub fn region_path(region: &crate::ticket::Region) -> String {
    let mut path = region.code.clone();
    for part in [&region.town, &region.village, &region.grid] {
        match part {
            Some(p) => {
                path.push('/');
                path.push_str(p);
            }
            None => break,
        }
    }
    path
}

/// True when `agent_region` covers `ticket_path`, segment by segment.
pub fn covers(agent_region: &str, ticket_path: &str) -> bool {
    let mut t = ticket_path.split('/');
    agent_region.split('/').all(|a| t.next() == Some(a))
}

/// One widening step of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Agents of this tier may take the ticket…
    pub tier: Tier,
    /// …once it has waited this long.
    pub after_seconds: u64,
}

/// A waiting ticket, as the claim logic sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Ticket id.
    pub id: String,
    /// The queue it waits in.
    pub queue: String,
    /// Priority band (0 most urgent).
    pub band: u32,
    /// Arrival order within the county.
    pub seq: u64,
    /// When it entered the queue (ms; kept across transfers).
    pub since_ms: i64,
    /// Its category.
    pub category: String,
    /// Its region path.
    pub region_path: String,
    /// The lowest tier allowed after an escalation.
    pub min_tier: Option<Tier>,
}

/// What one page of a queue says about the rest of it, for [`may_beat`]: the store reads one
/// with each page of candidates (`Store::candidates_page`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuePage {
    /// The queue has tickets beyond this page.
    pub more: bool,
    /// (band, arrival) of the page's last ticket: every later one comes after it in the queue.
    pub last: (u32, u64),
    /// Enqueue time of the queue's oldest ticket (ms): no later ticket has aged more.
    pub oldest_since_ms: i64,
}

/// The rules of [`eligible`] and [`order`].
#[derive(Debug, Clone)]
pub struct ClaimRules<'a> {
    /// Widening steps of the agent's service, in order.
    pub steps: &'a [Step],
    /// Skip steps that no available agent could serve.
    pub skip_empty_steps: bool,
    /// Every this many seconds of waiting raises a ticket one band (0: never).
    pub aging_seconds: u64,
}

/// Can `agent` take `c` now? `others` are the county's agents, for skipping empty steps.
pub fn eligible(
    agent: &Agent,
    c: &Candidate,
    rules: &ClaimRules<'_>,
    others: &[Agent],
    now_ms: i64,
) -> bool {
    if !c
        .queue
        .starts_with(&format!("{}.", agent.spec.kind.queue_kind()))
    {
        return false;
    }
    if !able(agent, c) {
        return false;
    }
    if c.min_tier.is_some_and(|m| agent.spec.tier < m) {
        return false;
    }
    let waited = u64::try_from((now_ms - c.since_ms).max(0) / 1000).unwrap_or(0);
    let Some(my_step) = rules.steps.iter().position(|s| s.tier == agent.spec.tier) else {
        // A tier the service does not use may still take work once every step has opened.
        return rules.steps.last().is_none_or(|s| waited >= s.after_seconds);
    };
    if waited >= rules.steps[my_step].after_seconds {
        return true;
    }
    // Earlier steps with nobody available who could take it are skipped.
    rules.skip_empty_steps
        && rules.steps[..my_step].iter().all(|step| {
            c.min_tier.is_some_and(|m| step.tier < m)
                || !others.iter().any(|o| {
                    o.spec.tier == step.tier
                        && o.spec.kind == agent.spec.kind
                        && o.spec.status == AgentStatus::Available
                        && o.active < o.spec.capacity
                        && able(o, c)
                })
        })
}

/// Can `agent` take `c` for a caller waiting on the line? Kind, skills, region and any
/// escalation floor must fit; the widening schedule does not apply, because the caller cannot
/// wait for it: the nearest tier is preferred instead (see `live::rank`).
pub fn can_take_live(agent: &Agent, c: &Candidate) -> bool {
    c.queue
        .starts_with(&format!("{}.", agent.spec.kind.queue_kind()))
        && able(agent, c)
        && c.min_tier.is_none_or(|m| agent.spec.tier >= m)
}

/// Skills and region, the parts of eligibility that do not depend on time.
fn able(agent: &Agent, c: &Candidate) -> bool {
    (agent.spec.skills.is_empty() || agent.spec.skills.contains(&c.category))
        && agent.spec.regions.iter().any(|r| covers(r, &c.region_path))
}

/// How many aging steps a ticket that entered at `since_ms` has earned.
fn aging_steps(since_ms: i64, aging_seconds: u64, now_ms: i64) -> u64 {
    let waited = u64::try_from((now_ms - since_ms).max(0) / 1000).unwrap_or(0);
    waited.checked_div(aging_seconds).unwrap_or(0)
}

/// A ticket's place in the claim order: aged band, then arrival (lower first).
pub fn claim_key(c: &Candidate, aging_seconds: u64, now_ms: i64) -> (u64, u64) {
    (
        u64::from(c.band).saturating_sub(aging_steps(c.since_ms, aging_seconds, now_ms)),
        c.seq,
    )
}

/// The order in which eligible tickets are offered: aged band, then arrival.
pub fn order(candidates: &mut [Candidate], aging_seconds: u64, now_ms: i64) {
    candidates.sort_by_key(|c| claim_key(c, aging_seconds, now_ms));
}

/// Could a ticket beyond the pages read so far come before `best` in the claim order? Later
/// tickets of a queue come after its page's last one in queue order (band, arrival), and none has
/// aged more than the queue's oldest ticket; so a claim reads a few tickets per queue instead of
/// hundreds, and stops as soon as nothing unread can win.
pub fn may_beat(pages: &[QueuePage], best: (u64, u64), aging_seconds: u64, now_ms: i64) -> bool {
    pages.iter().filter(|p| p.more).any(|p| {
        let steps = aging_steps(p.oldest_since_ms, aging_seconds, now_ms);
        let bound = if steps == 0 {
            (u64::from(p.last.0), p.last.1 + 1)
        } else {
            (u64::from(p.last.0).saturating_sub(steps), 0)
        };
        bound < best
    })
}

/// `[agents]`: how lawyers and mediators take work.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentsSettings {
    /// How long a claim is reserved for an agent before it returns to the queue.
    pub lease_seconds: u64,
    /// After this many expired leases a ticket goes to the supervisors' queue.
    pub max_lease_expiries: u32,
    /// The supervisors' queue, with `{county}`.
    pub supervisor_queue: String,
    /// How long after resolution a ticket may be reopened, in days.
    pub reopen_days: u64,
    /// Most notes one ticket may take (each at most 2,000 characters), so its history and
    /// what it costs stay bounded.
    pub max_notes: u32,
    /// How long a pushed offer waits for the agent's accept before it is offered again.
    pub offer_timeout_seconds: u64,
    /// Consecutive missed offers (or lapsed leases) after which an agent is set away.
    pub away_after_missed: u32,
    /// Whom an offer goes to among eligible online agents: `longest_idle` or `fewest_active`.
    pub offer_strategy: String,
    /// Skip widening steps that no available agent could serve.
    pub skip_empty_steps: bool,
    /// Every this many seconds of waiting raise a ticket one priority band (0: never).
    pub aging_seconds: u64,
    /// How many waiting tickets of each queue a claim looks at.
    pub claim_scan: usize,
    /// Widening steps per service (`legal_consultation`, `mediation`, `triage`).
    pub widening: BTreeMap<String, Vec<Step>>,
    /// Agents created at start-up when they do not exist yet.
    #[serde(default)]
    pub bootstrap: Vec<BootstrapAgent>,
}

impl AgentsSettings {
    /// Checks every value whose type alone does not make it valid; bootstrap agents' skills
    /// must be among `categories` (`[classify]`).
    pub fn validate(&self, categories: &[String]) -> Result<(), ConfigError> {
        if self.lease_seconds == 0 {
            return Err(invalid("agents.lease_seconds", "must be greater than 0"));
        }
        if self.max_lease_expiries == 0 {
            return Err(invalid(
                "agents.max_lease_expiries",
                "must be greater than 0",
            ));
        }
        if self.max_notes == 0 {
            return Err(invalid("agents.max_notes", "must be greater than 0"));
        }
        if self.offer_timeout_seconds == 0 {
            return Err(invalid(
                "agents.offer_timeout_seconds",
                "must be greater than 0",
            ));
        }
        if self.away_after_missed == 0 {
            return Err(invalid(
                "agents.away_after_missed",
                "must be greater than 0",
            ));
        }
        if !["longest_idle", "fewest_active"].contains(&self.offer_strategy.as_str()) {
            return Err(invalid(
                "agents.offer_strategy",
                "must be `longest_idle` or `fewest_active`",
            ));
        }
        if self.claim_scan == 0 {
            return Err(invalid("agents.claim_scan", "must be greater than 0"));
        }
        check_queue_template("agents.supervisor_queue", &self.supervisor_queue)?;
        for service in ["legal_consultation", "mediation", "triage"] {
            let Some(steps) = self.widening.get(service) else {
                return Err(invalid(
                    format!("agents.widening.{service}"),
                    "missing: every service needs its steps",
                ));
            };
            if steps.is_empty() {
                return Err(invalid(
                    format!("agents.widening.{service}"),
                    "needs at least one step",
                ));
            }
            for (i, w) in steps.windows(2).enumerate() {
                if w[1].after_seconds < w[0].after_seconds || w[1].tier <= w[0].tier {
                    return Err(invalid(
                        format!("agents.widening.{service}[{}]", i + 1),
                        "steps must widen: a higher tier, after no less time than the step before",
                    ));
                }
            }
        }
        for key in self.widening.keys() {
            if !["legal_consultation", "mediation", "triage"].contains(&key.as_str()) {
                return Err(invalid(format!("agents.widening.{key}"), "unknown service"));
            }
        }
        for (i, b) in self.bootstrap.iter().enumerate() {
            if !valid_id(&b.id) {
                return Err(invalid(
                    format!("agents.bootstrap[{i}].id"),
                    "1 to 64 letters, digits, `.`, `_` or `-`",
                ));
            }
            if let Some((field, message)) = b.spec.problems(categories).into_iter().next() {
                return Err(invalid(format!("agents.bootstrap[{i}].{field}"), message));
            }
        }
        Ok(())
    }
}

/// One `[[agents.bootstrap]]` entry: an id plus the fields of `PUT /v1/agents/{id}`.
#[derive(Debug, Clone, Deserialize)]
pub struct BootstrapAgent {
    /// The agent's id.
    pub id: String,
    /// The rest of its definition.
    #[serde(flatten)]
    pub spec: AgentSpec,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(id: &str, kind: AgentKind, tier: Tier, region: &str) -> Agent {
        Agent {
            id: id.into(),
            spec: AgentSpec {
                name: id.into(),
                kind,
                skills: vec![],
                regions: vec![region.into()],
                tier,
                capacity: 5,
                status: AgentStatus::Available,
                contact: None,
            },
            active: 0,
            handled: 0,
            missed: 0,
            avg_handle_seconds: 0.0,
        }
    }

    fn ticket(id: &str, band: u32, seq: u64, since_s: i64, path: &str) -> Candidate {
        Candidate {
            id: id.into(),
            queue: "mediation.320831".into(),
            band,
            seq,
            since_ms: since_s * 1000,
            category: "neighbour".into(),
            region_path: path.into(),
            min_tier: None,
        }
    }

    fn steps() -> Vec<Step> {
        vec![
            Step {
                tier: Tier::Grid,
                after_seconds: 0,
            },
            Step {
                tier: Tier::Village,
                after_seconds: 1800,
            },
            Step {
                tier: Tier::Town,
                after_seconds: 3600,
            },
            Step {
                tier: Tier::County,
                after_seconds: 7200,
            },
        ]
    }

    fn rules(s: &[Step], skip: bool) -> ClaimRules<'_> {
        ClaimRules {
            steps: s,
            skip_empty_steps: skip,
            aging_seconds: 1800,
        }
    }

    const PATH: &str = "320831/城关镇/东关村/3";

    #[test]
    fn regions_cover_by_whole_segments() {
        assert!(covers("320831", PATH));
        assert!(covers("320831/城关镇", PATH));
        assert!(covers("320831/城关镇/东关村/3", PATH));
        assert!(!covers("320831/城关镇/东关村/33", PATH));
        assert!(!covers("320831/城关", PATH));
        assert!(!covers("320832", PATH));
        assert!(!covers("320831/城关镇/东关村", "320831/城关镇"));
    }

    #[test]
    fn the_ring_widens_from_grid_to_county_over_time() {
        let s = steps();
        let r = rules(&s, false);
        let grid = agent("g", AgentKind::Mediator, Tier::Grid, PATH);
        let village = agent(
            "v",
            AgentKind::Mediator,
            Tier::Village,
            "320831/城关镇/东关村",
        );
        let county = agent("c", AgentKind::Mediator, Tier::County, "320831");
        let all = vec![grid.clone(), village.clone(), county.clone()];
        let t = ticket("t", 3, 1, 0, PATH);
        assert!(eligible(&grid, &t, &r, &all, 0));
        assert!(!eligible(&village, &t, &r, &all, 1_799_000));
        assert!(eligible(&village, &t, &r, &all, 1_800_000));
        assert!(!eligible(&county, &t, &r, &all, 7_199_000));
        assert!(eligible(&county, &t, &r, &all, 7_200_000));
    }

    #[test]
    fn a_step_with_nobody_available_is_skipped_when_configured() {
        let s = steps();
        let mut grid = agent("g", AgentKind::Mediator, Tier::Grid, PATH);
        let village = agent(
            "v",
            AgentKind::Mediator,
            Tier::Village,
            "320831/城关镇/东关村",
        );
        let t = ticket("t", 3, 1, 0, PATH);
        // The grid mediator is away: the village may take it at once.
        grid.spec.status = AgentStatus::Away;
        let all = vec![grid.clone(), village.clone()];
        assert!(eligible(&village, &t, &rules(&s, true), &all, 0));
        assert!(!eligible(&village, &t, &rules(&s, false), &all, 0));
        // A grid mediator of another grid does not count as able.
        let mut other_grid = agent(
            "g2",
            AgentKind::Mediator,
            Tier::Grid,
            "320831/城关镇/东关村/4",
        );
        other_grid.spec.status = AgentStatus::Available;
        assert!(eligible(
            &village,
            &t,
            &rules(&s, true),
            &[other_grid, village.clone()],
            0
        ));
        // But an available one of this grid does.
        grid.spec.status = AgentStatus::Available;
        assert!(!eligible(
            &village,
            &t,
            &rules(&s, true),
            &[grid, village.clone()],
            0
        ));
    }

    #[test]
    fn kind_skills_region_and_escalation_limit_who_may_take_it() {
        let s = steps();
        let r = rules(&s, false);
        let lawyer = agent("l", AgentKind::Lawyer, Tier::County, "320831");
        let t = ticket("t", 3, 1, 0, PATH);
        assert!(!eligible(&lawyer, &t, &r, &[], 10_000_000));
        let mut picky = agent("p", AgentKind::Mediator, Tier::Grid, PATH);
        picky.spec.skills = vec!["labour".into()];
        assert!(!eligible(&picky, &t, &r, &[], 0));
        let elsewhere = agent("e", AgentKind::Mediator, Tier::County, "320832");
        assert!(!eligible(&elsewhere, &t, &r, &[], 10_000_000));
        let grid = agent("g", AgentKind::Mediator, Tier::Grid, PATH);
        let mut escalated = t.clone();
        escalated.min_tier = Some(Tier::Town);
        assert!(!eligible(&grid, &escalated, &r, &[], 10_000_000));
        let town = agent("t", AgentKind::Mediator, Tier::Town, "320831/城关镇");
        // Escalated to the town: no need to wait for the village step.
        assert!(eligible(&town, &escalated, &rules(&s, true), &[grid], 0));
    }

    #[test]
    fn urgent_first_then_oldest_and_waiting_raises_priority() {
        let mut c = vec![
            ticket("old-low", 3, 1, 0, PATH),
            ticket("new-urgent", 1, 5, 3000, PATH),
            ticket("new-low", 3, 6, 3000, PATH),
        ];
        order(&mut c, 1800, 3_100_000);
        let ids: Vec<&str> = c.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["new-urgent", "old-low", "new-low"]);
        // After 2 h the old low ticket has aged by 4 bands, ahead of a fresh urgent one.
        let mut c = vec![
            ticket("fresh-urgent", 1, 9, 7200, PATH),
            ticket("old-low", 3, 1, 0, PATH),
        ];
        order(&mut c, 1800, 7_200_000);
        assert_eq!(c[0].id, "old-low");
    }

    #[test]
    fn an_agent_spec_is_validated_field_by_field() {
        let cats = vec!["labour".to_string()];
        let mut spec = agent("x", AgentKind::Mediator, Tier::Grid, PATH).spec;
        assert!(spec.problems(&cats).is_empty());
        spec.skills = vec!["astrology".into()];
        spec.regions = vec!["320831".into(), "110101".into()];
        spec.capacity = 0;
        let fields: Vec<String> = spec.problems(&cats).into_iter().map(|p| p.0).collect();
        assert_eq!(fields, ["skills[0]", "regions", "capacity"]);
    }

    mod fairness {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Whatever arrives, a ticket that has waited long enough is served before any
            /// ticket that arrived after it: nothing starves.
            #[test]
            fn a_long_waiting_ticket_is_never_overtaken_forever(
                bands in proptest::collection::vec(0u32..4, 2..40),
            ) {
                let now = 100_000_000i64;
                let mut c: Vec<Candidate> = bands.iter().enumerate().map(|(i, b)| {
                    // The first ticket has waited 4 aging steps; the rest are fresh.
                    let since = if i == 0 { now / 1000 - 4 * 1800 } else { now / 1000 };
                    ticket(&format!("t{i}"), *b, i as u64, since, PATH)
                }).collect();
                order(&mut c, 1800, now);
                prop_assert_eq!(c[0].id.as_str(), "t0");
            }

            /// Reading queues a page at a time and stopping when `may_beat` says nothing unread
            /// can win picks the same ticket as reading every queue whole.
            #[test]
            fn paged_reading_picks_what_a_full_scan_picks(
                queues in proptest::collection::vec(
                    proptest::collection::vec((0u32..4, 0i64..4 * 3600, any::<bool>()), 0..60),
                    1..4,
                ),
                page in 1usize..8,
                aging in prop_oneof![Just(0u64), Just(1800u64)],
            ) {
                let now = 100_000_000i64;
                // Queue order is (band, arrival); arrival numbers are county-wide.
                let mut seq = 0u64;
                let queues: Vec<Vec<(Candidate, bool)>> = queues.into_iter().map(|q| {
                    let mut q: Vec<(Candidate, bool)> = q.into_iter().map(|(band, waited, ok)| {
                        seq += 1;
                        (ticket(&format!("t{seq}"), band, seq, now / 1000 - waited, PATH), ok)
                    }).collect();
                    q.sort_by_key(|(c, _)| (c.band, c.seq));
                    q
                }).collect();
                let mut full: Vec<Candidate> = queues.iter().flatten()
                    .filter(|(_, ok)| *ok).map(|(c, _)| c.clone()).collect();
                order(&mut full, aging, now);

                let mut paged: Vec<Candidate> = Vec::new();
                let mut start = 0;
                loop {
                    let mut pages = Vec::new();
                    for q in &queues {
                        let slice: Vec<&(Candidate, bool)> = q.iter().skip(start).take(page).collect();
                        if let Some((last, _)) = slice.last() {
                            pages.push(QueuePage {
                                more: q.len() > start + page,
                                last: (last.band, last.seq),
                                oldest_since_ms: q.iter().map(|(c, _)| c.since_ms).min().unwrap_or(0),
                            });
                        }
                        paged.extend(slice.into_iter().filter(|(_, ok)| *ok).map(|(c, _)| c.clone()));
                    }
                    order(&mut paged, aging, now);
                    start += page;
                    if !pages.iter().any(|p| p.more) {
                        break;
                    }
                    if let Some(best) = paged.first()
                        && !may_beat(&pages, claim_key(best, aging, now), aging, now)
                    {
                        break;
                    }
                }
                prop_assert_eq!(
                    paged.first().map(|c| c.id.clone()),
                    full.first().map(|c| c.id.clone())
                );
            }
        }
    }
}
