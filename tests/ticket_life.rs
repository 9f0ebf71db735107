//! The ticket's life after intake, against a real Redis and the gateway's HTTP API: races
//! between transfers, claims and supervisors' actions, who may read and act on a partner's
//! tickets, live transfer after a resend or a withdrawal, and an agent set available again.
//!
//! Each test states the README's promise it checks; the race tests run many rounds, count the
//! rounds that broke the promise, print the count and assert that there were none.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use redis::Commands;
use serde_json::{Value, json};
use support::{
    OPERATOR, PARTNER, RedisServer, SUPERVISOR, SseReader, TestApp, act, agent_token, agents_by_id,
    claim, create_ticket, open_offers, put_agent, read_ticket, status_and_json, ticket,
    token_entry, wait_for,
};

/// Rounds of every race.
const ROUNDS: usize = 500;
/// The county of `support::ticket`.
const COUNTY: &str = "320831";
/// Statuses of a ticket that is still work (not final).
const LIVE_STATUSES: [&str; 4] = ["queued", "leased", "accepted", "in_progress"];

/// A fast mover, agent tokens (`t-<id>`) for `agents`, and `more` TOML.
fn config(lease_seconds: u32, agents: &[&str], more: &str) -> String {
    let mut s = format!(
        r#"
[sla]
mover_max_sleep_ms = 100

[agents]
lease_seconds = {lease_seconds}
max_lease_expiries = 1000
skip_empty_steps = true
aging_seconds = 0
{more}

[agents.widening]
mediation = [{{ tier = "grid", after_seconds = 0 }}]
legal_consultation = [{{ tier = "county", after_seconds = 0 }}]
triage = [{{ tier = "county", after_seconds = 0 }}]
"#
    );
    for id in agents {
        s.push_str(&agent_token(id));
    }
    s
}

fn mediator() -> Value {
    json!({"name": "调解员", "kind": "mediator", "regions": [COUNTY], "tier": "grid",
           "capacity": 10000, "status": "available"})
}

fn lawyer() -> Value {
    json!({"name": "张律师", "kind": "lawyer", "regions": [COUNTY], "tier": "county",
           "capacity": 5, "status": "available", "contact": "8012"})
}

/// A 12348 legal question for county 320831; `live` as given (absent when `None`).
fn question(external_id: &str, live: Option<bool>) -> Value {
    let mut q = json!({
        "source": "12348",
        "external_id": external_id,
        "received_at": "2026-11-24T09:30:00+08:00",
        "caller": {"name": "李红", "phone": "13912345678"},
        "region": {"code": COUNTY, "town": "城关镇"},
        "title": "咨询劳动合同",
        "text": "我想咨询一下，公司没有和我签劳动合同，已经干了八个月，现在要辞退我，请问我能不能要求双倍工资，应该怎么申请劳动仲裁？",
    });
    if let Some(live) = live {
        q["live"] = json!(live);
    }
    q
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("ticket id").to_string()
}

/// Open work per county (`depth + leased` of every queue) among `counties`, from `GET /v1/queues`.
async fn open_work(app: &TestApp, counties: &[&str]) -> BTreeMap<String, u64> {
    let (status, v) = status_and_json(app.get("/v1/queues", SUPERVISOR).await).await;
    assert_eq!(status, 200, "GET /v1/queues: {v}");
    let mut work: BTreeMap<String, u64> = counties.iter().map(|c| (c.to_string(), 0)).collect();
    for q in v["queues"].as_array().expect("queues") {
        if let Some(n) = q["county"].as_str().and_then(|c| work.get_mut(c)) {
            *n += q["depth"].as_u64().unwrap_or(0) + q["leased"].as_u64().unwrap_or(0);
        }
    }
    work
}

/// Starts `fut` once `delay` has passed, yielding meanwhile (no timer: sub-millisecond delays).
async fn after<F: std::future::Future>(delay: Duration, fut: F) -> F::Output {
    let start = std::time::Instant::now();
    while start.elapsed() < delay {
        tokio::task::yield_now().await;
    }
    fut.await
}

/// Runs `a` and `b` concurrently, the second started a little later or earlier depending on the
/// round (from 0.45 ms earlier to 3.15 ms later, in 0.15 ms steps), so that over the rounds one
/// request's decisive step lands at every point of the other's.
async fn race<A, B>(round: usize, a: A, b: B) -> (A::Output, B::Output)
where
    A: std::future::Future,
    B: std::future::Future,
{
    let offset = (round % 25) as i64 * 150 - 450;
    let (da, db) = if offset < 0 {
        (Duration::from_micros(offset.unsigned_abs()), Duration::ZERO)
    } else {
        (Duration::ZERO, Duration::from_micros(offset as u64))
    };
    tokio::join!(after(da, a), after(db, b))
}

/// Prints and asserts a race's tally.
fn verdict(test: &str, promise: &str, wrong: &[String]) {
    println!("{test}: {} of {ROUNDS} rounds went wrong", wrong.len());
    for w in wrong.iter().take(5) {
        println!("  {w}");
    }
    assert!(
        wrong.is_empty(),
        "{promise}: broken in {} of {ROUNDS} rounds; first ones:\n{}",
        wrong.len(),
        wrong.iter().take(5).cloned().collect::<Vec<_>>().join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// 1. Two concurrent transfers of one ticket to two other counties.
// ---------------------------------------------------------------------------------------------

/// README: a transfer to another county is "two idempotent steps, the old ticket ending
/// `transferred`". Two supervisors moving one ticket to two different counties at once must leave
/// exactly one ticket to work: one transfer wins (200) and the other answers 409 having left
/// nothing behind in its county.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_transfers_to_other_counties_leave_exactly_one_live_ticket() {
    const TARGETS: [&str; 2] = ["320324", "320812"];
    let redis = RedisServer::start();
    let app = TestApp::spawn_with(&redis, &config(600, &[], "")).await;
    let mut conn = redis.conn();
    let mut before = open_work(&app, &TARGETS).await;
    let mut wrong = Vec::new();
    for round in 0..ROUNDS {
        let id = id_of(&create_ticket(&app, PARTNER, &ticket(&format!("XR-{round}"))).await);
        let to = |county: &str| json!({"region_code": county, "reason": "事发地在外县"});
        let ((sa, va), (sb, vb)) = race(
            round,
            act(&app, &id, "transfer", SUPERVISOR, to(TARGETS[0])),
            act(&app, &id, "transfer", SUPERVISOR, to(TARGETS[1])),
        )
        .await;
        let after = open_work(&app, &TARGETS).await;
        let (_, old) = read_ticket(&app, &id, SUPERVISOR).await;
        let old_status = old["status"].as_str().unwrap_or_default().to_string();
        let old_open = u64::from(LIVE_STATUSES.contains(&old_status.as_str()));
        let added: BTreeMap<&str, i64> = TARGETS
            .iter()
            .map(|c| (*c, after[*c] as i64 - before[*c] as i64))
            .collect();
        let mut problems = Vec::new();
        let wins = [sa, sb].iter().filter(|s| **s == 200).count();
        if wins != 1 || ![sa, sb].iter().all(|s| *s == 200 || *s == 409) {
            problems.push(format!(
                "answers {sa} and {sb}: exactly one transfer must succeed (200), the other 409 ({va} / {vb})"
            ));
        }
        for (status, county) in [(sa, TARGETS[0]), (sb, TARGETS[1])] {
            if status != 200 && added[county] != 0 {
                // Name the stray ticket (the idempotency key of the first step points at it).
                let key = format!("hl:{{{county}}}:idem:transfer:12345:transfer:{id}");
                let stray: Option<String> = conn.get(&key).unwrap_or(None);
                problems.push(format!(
                    "the transfer to {county} answered {status} but left {} ticket(s) of work there ({key} = {stray:?})",
                    added[county]
                ));
            }
        }
        let total = old_open as i64 + added.values().sum::<i64>();
        if total != 1 {
            problems.push(format!(
                "{total} live tickets (old `{old_status}`, new per county {added:?}); expected exactly 1"
            ));
        }
        if !problems.is_empty() {
            wrong.push(format!("round {round} ({id}): {}", problems.join("; ")));
        }
        before = after;
    }
    verdict(
        "two_concurrent_transfers_to_other_counties_leave_exactly_one_live_ticket",
        "two concurrent transfers of one ticket to two counties must leave exactly one live ticket",
        &wrong,
    );
}

// ---------------------------------------------------------------------------------------------
// 2. A claim racing a supervisor's raise, or a transfer within the county.
// ---------------------------------------------------------------------------------------------

/// Where a ticket stands in Redis: its status, its lease, whether it waits in its (current) ready
/// queue and whether it is among the county's leases.
#[derive(Debug)]
struct Standing {
    status: String,
    lease_id: Option<String>,
    lease_agent: Option<String>,
    in_line: bool,
    in_leases: bool,
}

fn standing(conn: &mut redis::Connection, id: &str) -> Standing {
    let prefix = format!("hl:{{{COUNTY}}}:");
    let f: Vec<Option<String>> = redis::cmd("HMGET")
        .arg(format!("{prefix}t:{id}"))
        .arg(&["status", "queue", "lease_id", "lease_agent"])
        .query(conn)
        .expect("hmget");
    let queue = f[1].clone().unwrap_or_default();
    let in_line: Option<f64> = conn
        .zscore(format!("{prefix}q:{queue}"), id)
        .expect("zscore");
    let in_leases: Option<f64> = conn.zscore(format!("{prefix}leases"), id).expect("zscore");
    Standing {
        status: f[0].clone().unwrap_or_default(),
        lease_id: f[2].clone(),
        lease_agent: f[3].clone(),
        in_line: in_line.is_some(),
        in_leases: in_leases.is_some(),
    }
}

/// Runs `ROUNDS` rounds of: a fresh ticket; agent m1 claims it while a supervisor applies
/// `action` (`body`) to it; then checks, and cleans up so the next round starts from zero.
///
/// The promise (README: "Two agents racing for one ticket never both get it"; "Pull (`claim`)
/// and push share one atomic take, so a ticket is never held twice"): after the race the ticket
/// is either queued and not leased, or leased to exactly one agent and out of the line; a second
/// agent can then claim it only if it was queued; whoever holds it can accept it; and no agent's
/// `active` count changes over a round that ends with the ticket withdrawn.
async fn claim_races(app: &TestApp, redis: &RedisServer, label: &str, action: &str, body: Value) {
    let mut conn = redis.conn();
    let mut wrong = Vec::new();
    let mut leaked: BTreeMap<String, i64> = BTreeMap::new();
    for round in 0..ROUNDS {
        let id = id_of(&create_ticket(app, PARTNER, &ticket(&format!("{label}-{round}"))).await);
        let (claimed, (astatus, aview)) = race(
            round,
            claim(app, "m1"),
            act(app, &id, action, SUPERVISOR, body.clone()),
        )
        .await;
        let mut problems = Vec::new();
        if let Some(c) = &claimed
            && c["ticket"]["id"] != id.as_str()
        {
            problems.push(format!("m1 claimed another ticket: {c}"));
        }
        if astatus != 200 && astatus != 409 {
            problems.push(format!("{action} answered {astatus}: {aview}"));
        }
        let s = standing(&mut conn, &id);
        let consistent = match s.status.as_str() {
            "queued" => {
                s.lease_id.is_none() && s.lease_agent.is_none() && s.in_line && !s.in_leases
            }
            "leased" => {
                s.lease_id.is_some() && s.lease_agent.is_some() && !s.in_line && s.in_leases
            }
            _ => false,
        };
        if !consistent {
            problems.push(format!(
                "after claim ({}) and {action} ({astatus}) the ticket is neither queued and unleased nor leased to one agent out of line: {s:?}",
                if claimed.is_some() { "200" } else { "204" }
            ));
        }
        if s.status == "leased"
            && s.lease_agent.as_deref() == Some("m1")
            && claimed.as_ref().map(|c| &c["lease_id"]) != Some(&json!(s.lease_id))
        {
            problems.push(format!(
                "leased to m1 under a lease m1 was not given: {s:?}"
            ));
        }
        // A second agent claims: it may get the ticket only if it was waiting in line.
        let second = claim(app, "m2").await;
        let holder: Option<(String, String)> = match (&second, s.status.as_str()) {
            (Some(c), "leased") => {
                problems.push(format!(
                    "m2 claimed it while it was leased to {:?}: one ticket handed to two agents",
                    s.lease_agent
                ));
                Some((
                    "m2".into(),
                    c["lease_id"].as_str().unwrap_or_default().into(),
                ))
            }
            (Some(c), _) => Some((
                "m2".into(),
                c["lease_id"].as_str().unwrap_or_default().into(),
            )),
            (None, "queued") => {
                problems.push(format!("it was queued, yet m2 could not claim it: {s:?}"));
                None
            }
            (None, _) => s.lease_agent.clone().zip(s.lease_id.clone()),
        };
        // Whoever holds it accepts it with its lease.
        if let Some((agent, lease)) = &holder {
            let (st, v) = act(
                app,
                &id,
                "accept",
                &format!("t-{agent}"),
                json!({"lease_id": lease}),
            )
            .await;
            if st != 200 {
                problems.push(format!(
                    "{agent}'s accept with its lease {lease} answered {st}: {v}"
                ));
            }
        }
        // Diagnostic: m1, leased the ticket first and then robbed of it by m2's claim, tries its
        // accept (the issue: it gets 409, and its `active` count leaks).
        if let (Some(c), Some(("m2", _))) =
            (&claimed, holder.as_ref().map(|(a, l)| (a.as_str(), l)))
            && s.lease_agent.as_deref() == Some("m1")
        {
            let (st, _) = act(
                app,
                &id,
                "accept",
                "t-m1",
                json!({"lease_id": c["lease_id"]}),
            )
            .await;
            problems.push(format!("m1, leased it first, then got {st} on accept"));
        }
        // Clean up: the ticket is withdrawn, which frees whoever holds it.
        let (st, v) = act(
            app,
            &id,
            "withdraw",
            SUPERVISOR,
            json!({"reason": "测试结束"}),
        )
        .await;
        assert_eq!(st, 200, "round {round}: withdrawing {id} to clean up: {v}");
        let agents = agents_by_id(app).await;
        for agent in ["m1", "m2"] {
            let active = agents[agent]["active"].as_i64().unwrap_or(0);
            let before = leaked.get(agent).copied().unwrap_or(0);
            if active != before {
                problems.push(format!(
                    "{agent}'s `active` went from {before} to {active} although it holds nothing after the round"
                ));
                leaked.insert(agent.to_string(), active);
            }
        }
        if !problems.is_empty() {
            wrong.push(format!("round {round} ({id}): {}", problems.join("; ")));
        }
    }
    // After every round: no ticket is held by anyone, so every agent's `active` is 0.
    let agents = agents_by_id(app).await;
    let actives: BTreeMap<&str, i64> = ["m1", "m2"]
        .iter()
        .map(|a| (*a, agents[*a]["active"].as_i64().unwrap_or(-1)))
        .collect();
    println!("{label}: agents' `active` after all rounds (all tickets withdrawn): {actives:?}");
    verdict(
        &format!("claim racing {action}"),
        &format!("a claim racing a supervisor's {action} must never hand one ticket to two agents"),
        &wrong,
    );
    assert!(
        actives.values().all(|a| *a == 0),
        "every agent's `active` must equal the tickets it holds (none): {actives:?}"
    );
}

/// A gateway with two mediators, m1 and m2, on long leases.
async fn two_mediators(redis: &RedisServer) -> TestApp {
    let app = TestApp::spawn_with(redis, &config(600, &["m1", "m2"], "")).await;
    put_agent(&app, "m1", &mediator()).await;
    put_agent(&app, "m2", &mediator()).await;
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_racing_a_raise_never_hands_the_ticket_to_two_agents() {
    let redis = RedisServer::start();
    let app = two_mediators(&redis).await;
    claim_races(
        &app,
        &redis,
        "RC",
        "raise",
        json!({"reason": "来电人情绪激动"}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_racing_a_transfer_within_the_county_never_hands_the_ticket_to_two_agents() {
    let redis = RedisServer::start();
    let app = two_mediators(&redis).await;
    claim_races(
        &app,
        &redis,
        "TC",
        "transfer",
        json!({"category": "neighbour", "reason": "实为邻里纠纷"}),
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// 3. Partners read and act on the tickets they sent, and only those.
// ---------------------------------------------------------------------------------------------

/// Another partner's bearer token.
const OTHER_PARTNER: &str = "t-partner-110";
/// The signing key of partner `partner-12345` (the same name as the `PARTNER` token).
const SIGNED_KEY: &str = "p12345-signed";
const SIGNED_SECRET: &str = "ticket-life-partner-secret-0123456789abcdef";

/// A signed GET as `partner-12345` (a fresh nonce, so no two are the same signature).
async fn signed_get(app: &TestApp, path: &str, nonce: &str) -> (u16, Value) {
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        .to_string();
    let sig = hotline_gateway::auth::sign_v2(
        SIGNED_SECRET.as_bytes(),
        "GET",
        path,
        &ts,
        Some(nonce),
        b"",
    );
    let res = app
        .http
        .get(format!("{}{path}", app.base))
        .header("x-hotline-key", SIGNED_KEY)
        .header("x-hotline-timestamp", ts)
        .header("x-hotline-nonce", nonce)
        .header("x-hotline-signature-version", "2")
        .header("x-hotline-signature", sig)
        .send()
        .await
        .expect("sent");
    status_and_json(res).await
}

/// What must not change when a refused caller tries something: status, history, live state.
async fn fingerprint(app: &TestApp, id: &str) -> (Value, usize, Value) {
    let (status, v) = read_ticket(app, id, SUPERVISOR).await;
    assert_eq!(status, 200, "supervisor reads {id}: {v}");
    let (_, live) =
        status_and_json(app.get(&format!("/v1/tickets/{id}/live"), SUPERVISOR).await).await;
    (
        v["status"].clone(),
        v["history"].as_array().map_or(0, Vec::len),
        live["status"].clone(),
    )
}

/// README: `dispute`, `withdraw` and `cancel_live` are "also for partners", and callbacks go to
/// the partner that sent a ticket; a partner is the sending side. Expected: a partner reads and
/// acts only on tickets it sent itself (same `name`, bearer token or signature). Another partner
/// and a partner facing an operator's ticket get 403 or 404, learn nothing of the caller, and the
/// ticket is unchanged; the sending partner still can.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_reads_and_acts_only_on_the_tickets_it_sent() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("p12345.secret");
    std::fs::write(&secret, SIGNED_SECRET).expect("write secret");
    let more = format!(
        "{}\n[[auth.partners]]\nname = \"partner-12345\"\nkey_id = \"{SIGNED_KEY}\"\nsecret_file = \"{}\"\n",
        token_entry("partner-110", "partner", OTHER_PARTNER, ""),
        secret.display()
    );
    let app = TestApp::spawn_with(&redis, &format!("{}{more}", config(60, &[], ""))).await;
    put_agent(&app, "l1", &lawyer()).await; // never signed in: live callers wait

    let attempts: [(&str, Value); 4] = [
        ("read", Value::Null),
        ("dispute", json!({"reason": "应由劳动仲裁处理"})),
        ("cancel_live", json!({"reason": "挂断"})),
        ("withdraw", json!({"reason": "来电人撤回"})),
    ];
    let mut wrong = Vec::new();
    let mut n = 0;
    // (who sends, who tries, label): another partner on a partner's ticket, a partner on an
    // operator's ticket.
    for (sender, intruder, whose) in [
        (
            PARTNER,
            OTHER_PARTNER,
            "partner-12345's ticket, by partner-110",
        ),
        (OPERATOR, PARTNER, "the operator's ticket, by partner-12345"),
    ] {
        for (what, body) in &attempts {
            n += 1;
            // A fresh live ticket for each attempt, so each is judged alone.
            let t = create_ticket(&app, sender, &question(&format!("P-{n}"), Some(true))).await;
            assert_eq!(
                t["live"]["status"], "waiting",
                "setup: a waiting live caller: {t}"
            );
            let id = id_of(&t);
            let before = fingerprint(&app, &id).await;
            let (status, v) = if *what == "read" {
                read_ticket(&app, &id, intruder).await
            } else {
                act(&app, &id, what, intruder, body.clone()).await
            };
            if !(status == 403 || status == 404) {
                wrong.push(format!(
                    "{what} of {whose}: answered {status}, expected 403 or 404"
                ));
            }
            if v.to_string().contains("13912345678") {
                wrong.push(format!(
                    "{what} of {whose}: the answer shows the caller's phone"
                ));
            }
            let after = fingerprint(&app, &id).await;
            if after != before {
                wrong.push(format!(
                    "{what} of {whose}: the ticket changed from {before:?} to {after:?}"
                ));
            }
        }
    }
    // partner-12345 signed (same name as its bearer token) cannot read the operator's ticket
    // either, but reads its own.
    let op = id_of(&create_ticket(&app, OPERATOR, &question("P-op", Some(true))).await);
    let (status, _) = signed_get(&app, &format!("/v1/tickets/{op}"), "nonce-1").await;
    if !(status == 403 || status == 404) {
        wrong.push(format!(
            "signed read of the operator's ticket by partner-12345: answered {status}, expected 403 or 404"
        ));
    }

    // The sending partner still reads and acts on its own ticket, bearer or signed.
    let own = id_of(&create_ticket(&app, PARTNER, &question("P-own", Some(true))).await);
    let (status, v) = read_ticket(&app, &own, PARTNER).await;
    assert_eq!(status, 200, "the sending partner reads its ticket: {v}");
    let (status, v) = signed_get(&app, &format!("/v1/tickets/{own}"), "nonce-2").await;
    assert_eq!(
        status, 200,
        "the sending partner, signed, reads its ticket: {v}"
    );
    let mut v = Value::Null;
    for (action, reason) in [
        ("cancel_live", "挂断"),
        ("dispute", "应由劳动仲裁处理"),
        ("withdraw", "来电人撤回"),
    ] {
        let (status, answer) = act(&app, &own, action, PARTNER, json!({"reason": reason})).await;
        assert_eq!(status, 200, "the sending partner's {action}: {answer}");
        v = answer;
    }
    assert_eq!(v["status"], "withdrawn");

    for w in &wrong {
        println!("  {w}");
    }
    assert!(
        wrong.is_empty(),
        "a partner must read and act only on tickets it sent; {} breaches:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// The operator withdraws ticket `id` for the caller.
async fn withdraw(app: &TestApp, id: &str) {
    let (status, v) = act(
        app,
        id,
        "withdraw",
        OPERATOR,
        json!({"reason": "来电人撤回"}),
    )
    .await;
    assert_eq!(status, 200, "withdraw: {v}");
    assert_eq!(v["status"], "withdrawn");
}

// ---------------------------------------------------------------------------------------------
// 4. Live transfer: a resend of a withdrawn ticket, and a withdrawal while waiting.
// ---------------------------------------------------------------------------------------------

async fn live_view(app: &TestApp, id: &str) -> Value {
    let (status, v) =
        status_and_json(app.get(&format!("/v1/tickets/{id}/live"), OPERATOR).await).await;
    assert_eq!(status, 200, "GET /v1/tickets/{id}/live: {v}");
    v
}

/// A fresh caller asks for a live transfer; nobody is signed in, so they wait: their position.
async fn fresh_caller_position(app: &TestApp, external_id: &str) -> Value {
    let t = create_ticket(app, OPERATOR, &question(external_id, Some(true))).await;
    assert_eq!(t["live"]["status"], "waiting", "nobody signed in: {t}");
    t["live"]["position"].clone()
}

/// README: a resend of the same ticket is the same ticket ("`200` the same (source, external_id)
/// and content again"); a withdrawn request has left the queues. Resending it with `"live": true`
/// must not put a caller in the live line: the next real caller is first in line.
#[tokio::test]
async fn a_resend_with_live_of_a_withdrawn_ticket_does_not_join_the_live_line() {
    let redis = RedisServer::start();
    let app = TestApp::spawn_with(&redis, &config(60, &["l1"], "")).await;
    put_agent(&app, "l1", &lawyer()).await; // never signed in: callers wait

    let id = id_of(&create_ticket(&app, OPERATOR, &question("RS-1", None)).await);
    withdraw(&app, &id).await;

    let (status, resent) = status_and_json(
        app.post("/v1/tickets", OPERATOR, &question("RS-1", Some(true)))
            .await,
    )
    .await;
    assert!(
        status != 201 && status < 500,
        "a resend is not a new ticket: {status} {resent}"
    );
    let (_, view) = read_ticket(&app, &id, SUPERVISOR).await;
    assert_eq!(
        view["status"], "withdrawn",
        "the resend revived nothing: {view}"
    );
    let live = live_view(&app, &id).await;
    let position = fresh_caller_position(&app, "RS-2").await;
    let mut wrong = Vec::new();
    if matches!(live["status"].as_str(), Some("waiting" | "reserved")) {
        wrong.push(format!(
            "a withdrawn ticket resent with live must not wait for an agent; GET .../live says {live}"
        ));
    }
    if position != 1 {
        wrong.push(format!(
            "the next real caller must be first in line (the withdrawn resend holds no place); told position {position}"
        ));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// README: `withdraw` (撤回) takes a ticket out of the queues; live statuses are `reserved`,
/// `waiting`, …, `cancelled` (the caller hung up). A caller waiting live whose request is then
/// withdrawn no longer waits: GET .../live stops saying `waiting`, and the next caller is first.
#[tokio::test]
async fn a_live_ticket_withdrawn_while_waiting_no_longer_waits() {
    let redis = RedisServer::start();
    let app = TestApp::spawn_with(&redis, &config(60, &["l1"], "")).await;
    put_agent(&app, "l1", &lawyer()).await; // never signed in: callers wait

    let t = create_ticket(&app, OPERATOR, &question("WD-1", Some(true))).await;
    assert_eq!(t["live"]["status"], "waiting", "{t}");
    assert_eq!(t["live"]["position"], 1, "{t}");
    let id = id_of(&t);
    withdraw(&app, &id).await;

    let live = live_view(&app, &id).await;
    let position = fresh_caller_position(&app, "WD-2").await;
    let mut wrong = Vec::new();
    if !matches!(live["status"].as_str(), Some("cancelled" | "ended")) {
        wrong.push(format!(
            "after `withdraw` the live transfer is over (`cancelled`); GET .../live says {live}"
        ));
    }
    if position != 1 {
        wrong.push(format!(
            "the next caller must be first in line (the withdrawn caller holds no place); told position {position}"
        ));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// 5. An agent set available again starts a new streak of missed offers.
// ---------------------------------------------------------------------------------------------

/// Declines the next offer on `console`; returns when the decline is reported.
async fn miss_next_offer(app: &TestApp, console: &mut SseReader, id: &str) {
    let (_, offer) = console.next_of(&["offer"], Duration::from_secs(20)).await;
    assert_eq!(offer["id"], id, "the only ticket is offered");
    let (status, v) = act(
        app,
        id,
        "decline",
        "t-m1",
        json!({"lease_id": offer["lease_id"]}),
    )
    .await;
    assert_eq!(status, 200, "decline: {v}");
    console
        .next_of(&["offer_declined"], Duration::from_secs(20))
        .await;
}

/// README: "after `agents.away_after_missed` (3) misses in a row the agent is set away". An admin
/// who sets the agent `available` again (`PUT /v1/agents/{id}`) starts it afresh: one more missed
/// offer is one miss in a row, not `away_after_missed + 1`.
#[tokio::test]
async fn an_agent_set_available_again_is_not_set_away_by_its_next_missed_offer() {
    let redis = RedisServer::start();
    // Offers last 5 s, so the status read right after a decline is not raced by an expiry.
    let app = TestApp::spawn_with(
        &redis,
        &config(
            60,
            &["m1"],
            "offer_timeout_seconds = 5\naway_after_missed = 2",
        ),
    )
    .await;
    put_agent(&app, "m1", &mediator()).await;
    let mut console = open_offers(&app, "m1").await;
    let id = id_of(&create_ticket(&app, PARTNER, &ticket("AW-1")).await);

    // Two misses in a row: away.
    miss_next_offer(&app, &mut console, &id).await;
    miss_next_offer(&app, &mut console, &id).await;
    let status = || async { agents_by_id(&app).await["m1"]["status"].clone() };
    wait_for(
        Duration::from_secs(20),
        "two misses in a row to set m1 away",
        || async { (status().await == "away").then_some(()) },
    )
    .await;

    // The admin sets it available again; it misses one more offer.
    put_agent(&app, "m1", &mediator()).await;
    assert_eq!(status().await, "available");
    miss_next_offer(&app, &mut console, &id).await;
    let missed = wait_for(
        Duration::from_secs(20),
        "m1's third miss counted",
        || async {
            let a = agents_by_id(&app).await;
            (a["m1"]["missed"].as_u64() >= Some(3)).then(|| a["m1"].clone())
        },
    )
    .await;
    assert_eq!(
        missed["status"], "available",
        "one miss after being set available again must not set the agent away: {missed}"
    );
}

/// A ticket's history grows with every note, but what an action or a read returns and costs
/// does not: responses carry the newest page and the total, older events are paged, and a
/// ticket takes at most `agents.max_notes` notes.
#[tokio::test]
async fn a_long_history_is_paged_and_notes_are_bounded() {
    let redis = RedisServer::start();
    let app = TestApp::spawn_with(&redis, "[agents]\nmax_notes = 130\n").await;
    let t = create_ticket(&app, OPERATOR, &ticket("HIST-1")).await;
    let id = t["id"].as_str().expect("id").to_string();
    let note = "来电人再次来电催办。".repeat(150);
    for i in 0..130 {
        let (status, v) = act(&app, &id, "note", SUPERVISOR, json!({"note": note})).await;
        assert_eq!(status, 200, "note {i}: {v}");
        let shown = v["history"].as_array().map_or(0, Vec::len);
        assert!(shown <= 100, "an action answered {shown} events");
        assert_eq!(
            v["history_total"],
            json!(i + 2),
            "created + {} notes",
            i + 1
        );
    }
    let (status, v) = act(&app, &id, "note", SUPERVISOR, json!({"note": "one more"})).await;
    assert_eq!(status, 409, "{v}");
    let (_, v) = read_ticket(&app, &id, SUPERVISOR).await;
    assert_eq!(v["history_total"], json!(131));
    assert_eq!(v["history_from"], json!(31));
    assert_eq!(v["history"].as_array().map(Vec::len), Some(100));
    // The oldest page holds the registration; pages meet without a gap.
    let page: Value = app
        .get(
            &format!("/v1/tickets/{id}/history?offset=0&limit=31"),
            SUPERVISOR,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(page["total"], json!(131));
    assert_eq!(page["events"][0]["type"], "ticket.created");
    assert_eq!(page["events"].as_array().map(Vec::len), Some(31));
    let res = app
        .get(&format!("/v1/tickets/{id}/history?limit=0"), SUPERVISOR)
        .await;
    assert_eq!(res.status(), 422);
    app.stop().await;
}

/// An agent's token without `regions` reaches what its agent definition reaches: a lawyer of
/// 320831 neither reads a 330106 ticket (with the caller's phone) nor acts on it, and an
/// agent token for an agent not defined reaches no county.
#[tokio::test]
async fn an_agents_reach_is_its_definitions_county() {
    let redis = RedisServer::start();
    let extra = format!("{}{}", agent_token("l-320831-07"), agent_token("l-ghost"));
    let app = TestApp::spawn_with(&redis, &extra).await;
    put_agent(
        &app,
        "l-320831-07",
        &json!({"name": "李律师", "kind": "lawyer", "regions": ["320831"], "tier": "county", "capacity": 3, "status": "available"}),
    )
    .await;
    let mut far = ticket("REACH-1");
    far["region"]["code"] = json!("330106");
    let far = create_ticket(&app, PARTNER, &far).await;
    let far_id = far["id"].as_str().expect("id").to_string();
    let near = create_ticket(&app, OPERATOR, &ticket("REACH-2")).await;
    let near_id = near["id"].as_str().expect("id").to_string();

    let (status, v) = read_ticket(&app, &far_id, "t-l-320831-07").await;
    assert_eq!(status, 403, "a 320831 lawyer read a 330106 ticket: {v}");
    assert!(
        !v.to_string().contains("13812348000"),
        "the caller's phone leaked: {v}"
    );
    let (status, _) = read_ticket(&app, &near_id, "t-l-320831-07").await;
    assert_eq!(status, 200, "its own county stays readable");
    let res = app.get("/v1/events?region=330106", "t-l-320831-07").await;
    assert_eq!(
        res.status(),
        403,
        "a 320831 lawyer streamed 330106's events"
    );
    let (status, _) = read_ticket(&app, &near_id, "t-l-ghost").await;
    assert_eq!(status, 403, "an undefined agent's token reaches no county");
    app.stop().await;
}
