//! Callbacks to partner hotlines (事件反馈), against a real Redis, the gateway and a simulated
//! partner that checks signatures: delivered signed and in order per ticket, nothing lost while
//! the partner is down, dead letters after the configured attempts, and replay.

mod partner_sim;
mod support;

use std::time::{Duration, Instant};

use partner_sim::{Mode, PartnerSim};
use serde_json::{Value, json};
use support::{ADMIN, RedisServer, TestApp, ticket};

const KEY_ID: &str = "k-12345-platform";
const SECRET: &[u8] = b"a partner secret of the 12345 platform";

/// The partner `platform-12345` signs its requests and wants every event called back; fast
/// retries for tests; an agent token for `m1`.
fn config(sim_url: &str, secret_file: &std::path::Path, max_attempts: u32) -> String {
    format!(
        r#"
[sla]
mover_max_sleep_ms = 100

[callbacks]
timeout_ms = 1000
max_attempts = {max_attempts}
backoff_base_ms = 100
backoff_max_ms = 1000
poll_ms = 50

[[auth.partners]]
name = "platform-12345"
key_id = "{KEY_ID}"
secret_file = "{secret}"
callback_url = "{sim_url}"
callback_events = ["ticket.accepted", "ticket.assigned", "ticket.status_changed", "ticket.resolved", "ticket.returned", "sla.breached"]

[[auth.tokens]]
name = "agent m1"
role = "agent"
agent_id = "m1"
sha256 = "{m1}"
"#,
        secret = secret_file.display(),
        m1 = hotline_gateway::auth::digest_hex("t-m1"),
    )
}

struct Setup {
    app: TestApp,
    sim: PartnerSim,
    _redis: RedisServer,
    _dir: tempfile::TempDir,
}

async fn setup(max_attempts: u32) -> Setup {
    let redis = RedisServer::start();
    let sim = PartnerSim::start(KEY_ID, SECRET).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let secret_file = dir.path().join("partner.secret");
    std::fs::write(&secret_file, SECRET).expect("write secret");
    let app = TestApp::spawn_with(&redis, &config(&sim.url, &secret_file, max_attempts)).await;
    let res = app
        .http
        .put(format!("{}/v1/agents/m1", app.base))
        .bearer_auth(ADMIN)
        .json(
            &json!({"name": "李调解员", "kind": "mediator", "regions": ["320831"],
                      "tier": "county", "capacity": 50, "status": "available"}),
        )
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
    Setup {
        app,
        sim,
        _redis: redis,
        _dir: dir,
    }
}

/// Sends a ticket as the partner, signed (v2, the default form).
async fn send_signed(app: &TestApp, body: &Value) -> Value {
    let bytes = serde_json::to_vec(body).expect("json");
    let ts = chrono::Utc::now().timestamp();
    let nonce = format!("cb-{}", body["external_id"].as_str().unwrap_or("x"));
    let signature = hotline_gateway::auth::sign_v2(
        SECRET,
        "POST",
        "/v1/tickets",
        &ts.to_string(),
        Some(&nonce),
        &bytes,
    );
    let res = app
        .http
        .post(format!("{}/v1/tickets", app.base))
        .header("content-type", "application/json")
        .header("x-hotline-key", KEY_ID)
        .header("x-hotline-timestamp", ts.to_string())
        .header("x-hotline-nonce", nonce)
        .header("x-hotline-signature-version", "2")
        .header("x-hotline-signature", signature)
        .body(bytes)
        .send()
        .await
        .expect("sent");
    assert_eq!(
        res.status(),
        201,
        "{}",
        res.text().await.unwrap_or_default()
    );
    res.json().await.expect("json")
}

/// The agent claims, accepts and resolves one ticket.
async fn work(app: &TestApp) -> String {
    let claim: Value = app
        .post("/v1/agents/m1/claim", "t-m1", &json!({}))
        .await
        .json()
        .await
        .expect("claim");
    let id = claim["ticket"]["id"].as_str().expect("claimed").to_string();
    let res = app
        .post(
            &format!("/v1/tickets/{id}/accept"),
            "t-m1",
            &json!({"lease_id": claim["lease_id"]}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = app
        .post(
            &format!("/v1/tickets/{id}/resolve"),
            "t-m1",
            &json!({"outcome": "mediated", "summary": "双方达成协议，工资已结清"}),
        )
        .await;
    assert_eq!(
        res.status(),
        200,
        "{}",
        res.text().await.unwrap_or_default()
    );
    id
}

/// Waits until `n` distinct deliveries arrived, or panics after `limit`.
async fn wait_for(sim: &PartnerSim, n: usize, limit: Duration) -> Vec<partner_sim::Delivery> {
    let deadline = Instant::now() + limit;
    loop {
        let mut seen = std::collections::BTreeSet::new();
        let all = sim.deliveries();
        let ok: Vec<_> = all
            .into_iter()
            .filter(|d| d.answered == 200 && seen.insert(d.delivery_id.clone()))
            .collect();
        if ok.len() >= n {
            return ok;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {n} callbacks delivered: {:?}",
            ok.len(),
            ok.iter().map(|d| &d.event).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Each ticket's events, in the order they were delivered.
fn per_ticket(d: &[partner_sim::Delivery]) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut out: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for x in d {
        out.entry(x.ticket_id.clone())
            .or_default()
            .push(x.event.clone());
    }
    out
}

#[tokio::test]
async fn a_partners_tickets_are_called_back_signed_and_in_order() {
    let s = setup(5).await;
    let t = send_signed(&s.app, &ticket("CB-1")).await;
    let id = work(&s.app).await;
    assert_eq!(t["id"], id.as_str());
    let got = wait_for(&s.sim, 3, Duration::from_secs(10)).await;
    assert!(
        got.iter().all(|d| d.signature_ok),
        "every callback is signed"
    );
    assert_eq!(
        per_ticket(&got)[&id],
        ["ticket.accepted", "ticket.assigned", "ticket.resolved"]
    );
    let first = &got[0];
    assert_eq!(first.external_id, "CB-1");
    assert_eq!(first.body["source"], "12345");
    assert_eq!(got[2].status.as_deref(), Some("resolved"));
    assert_eq!(got[2].body["details"]["outcome"], "mediated");
    // A ticket from another sender (a bearer console) is nobody's callback.
    let res = s
        .app
        .post("/v1/tickets", support::OPERATOR, &ticket("OP-1"))
        .await;
    assert_eq!(res.status(), 201);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(wait_for(&s.sim, 3, Duration::from_secs(1)).await.len(), 3);
}

#[tokio::test]
async fn a_partner_down_for_a_minute_gets_everything_afterwards_in_order() {
    let mut s = setup(1000).await;
    s.sim.go_away();
    let mut ids = Vec::new();
    for i in 0..4 {
        send_signed(&s.app, &ticket(&format!("DOWN-{i}"))).await;
    }
    for _ in 0..4 {
        ids.push(work(&s.app).await);
    }
    // Down for a minute while the gateway keeps trying.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(s.sim.deliveries().is_empty());
    let status: Value = s
        .app
        .get("/v1/admin/callbacks", ADMIN)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(status["outboxes"][0]["pending"], 12, "{status}");
    assert!(status["outboxes"][0]["attempts"].as_u64().unwrap_or(0) > 3);
    s.sim.come_back().await;
    let got = wait_for(&s.sim, 12, Duration::from_secs(20)).await;
    let order = per_ticket(&got);
    for id in &ids {
        assert_eq!(
            order[id],
            ["ticket.accepted", "ticket.assigned", "ticket.resolved"],
            "ticket {id}"
        );
    }
    assert!(got.iter().all(|d| d.signature_ok));
}

#[tokio::test]
async fn failed_callbacks_become_dead_letters_and_replay_with_their_delivery_ids() {
    let s = setup(3).await;
    s.sim.set_mode(Mode::Fail(500));
    let t = send_signed(&s.app, &ticket("DEAD-1")).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        let v: Value = s
            .app
            .get("/v1/admin/callbacks", ADMIN)
            .await
            .json()
            .await
            .expect("json");
        if v["outboxes"][0]["dead"] == 1 {
            break v;
        }
        assert!(Instant::now() < deadline, "never dead-lettered: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let dead = &status["outboxes"][0]["dead_letters"][0];
    assert_eq!(dead["event"], "ticket.accepted");
    assert_eq!(dead["attempts"], 3);
    assert_eq!(dead["last_error"], "HTTP 500");
    let tried: Vec<_> = s.sim.deliveries();
    assert_eq!(tried.len(), 3, "three attempts");
    let first_id = tried[0].delivery_id.clone();
    assert!(tried.iter().all(|d| d.delivery_id == first_id));

    // The partner is fixed; an admin replays the dead letter.
    s.sim.set_mode(Mode::Ok);
    let res = s
        .app
        .post(
            "/v1/admin/callbacks/replay",
            ADMIN,
            &json!({"partner": "platform-12345"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.expect("json");
    assert_eq!(v["replayed"], 1);
    let got = wait_for(&s.sim, 1, Duration::from_secs(10)).await;
    assert_eq!(
        got[0].delivery_id, first_id,
        "the partner can dedupe a replay"
    );
    assert_eq!(got[0].ticket_id, t["id"].as_str().unwrap_or_default());
    // Unknown partners are refused by name.
    let res = s
        .app
        .post(
            "/v1/admin/callbacks/replay",
            ADMIN,
            &json!({"partner": "nobody"}),
        )
        .await;
    assert_eq!(res.status(), 422);
}

/// Calls of some Redis commands so far (`INFO commandstats`), summed.
fn calls(redis: &RedisServer, commands: &[&str]) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut redis.conn())
        .expect("info");
    info.lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let n = rest
                .strip_prefix("calls=")?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()?;
            commands.contains(&name).then_some(n)
        })
        .sum()
}

/// Issue #16: delivery locked and read every (county, partner) outbox on every poll, empty or
/// not (a lock script and three reads per county every `callbacks.poll_ms`). Now it looks only
/// at outboxes of counties this gateway wrote to, those found holding entries, and every
/// `sla.mover_recheck_ms` all of them in one pipelined length check; only outboxes that hold
/// anything are locked and read. Six counties with quiet outboxes cost no lock script, no state
/// read and no length check between re-checks. (The mover's scripts are counted too: with
/// nothing due, it runs none.)
#[tokio::test]
async fn quiet_outboxes_are_neither_locked_nor_read() {
    let s = setup(5).await;
    for (i, county) in ["110101", "320324", "320812", "320831", "320999", "330106"]
        .iter()
        .enumerate()
    {
        let mut t = ticket(&format!("QUIET-{i}"));
        t["region"]["code"] = json!(county);
        // Sent by a partner without callbacks: its outboxes stay empty.
        support::create_ticket(&s.app, support::PARTNER, &t).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let scripts_and_reads = ["evalsha", "eval", "hgetall", "xlen"];
    let before = calls(&s._redis, &scripts_and_reads);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let spent = calls(&s._redis, &scripts_and_reads) - before;
    assert!(
        spent < 30,
        "{spent} scripts, outbox-state reads and length checks in 3 s with every outbox empty"
    );
}
