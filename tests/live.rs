//! Live transfer while the caller waits, against a real Redis and the gateway's HTTP API:
//! reservations, estimates, re-offers on timeout and decline, races for the last free lawyer,
//! hang-ups and duty hours.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{ADMIN, OPERATOR, RedisServer, SseReader, TestApp};

const LAWYERS: [&str; 3] = ["l1", "l2", "l3"];

/// Agent tokens (`t-<id>`), a fast mover, and `extra_live` lines in `[live]`.
fn config(extra_live: &str) -> String {
    let timeout = if extra_live.contains("accept_timeout_seconds") {
        ""
    } else {
        "accept_timeout_seconds = 20"
    };
    let mut s = format!(
        r#"
[sla]
mover_max_sleep_ms = 100

[live]
{timeout}
wrap_up_seconds = 30
default_handle_seconds = 240
{extra_live}
"#
    );
    for id in LAWYERS {
        s.push_str(&format!(
            "\n[[auth.tokens]]\nname = \"agent {id}\"\nrole = \"agent\"\nagent_id = \"{id}\"\nsha256 = \"{}\"\n",
            hotline_gateway::auth::digest_hex(&format!("t-{id}"))
        ));
    }
    s
}

async fn lawyer(app: &TestApp, id: &str, contact: &str) {
    let res = app
        .http
        .put(format!("{}/v1/agents/{id}", app.base))
        .bearer_auth(ADMIN)
        .json(&json!({
            "name": format!("{id}律师"),
            "kind": "lawyer",
            "regions": ["320831"],
            "tier": "county",
            "capacity": 5,
            "status": "available",
            "contact": contact,
        }))
        .send()
        .await
        .expect("sent");
    assert_eq!(
        res.status(),
        200,
        "{}",
        res.text().await.unwrap_or_default()
    );
}

async fn heartbeat(app: &TestApp, id: &str) -> Value {
    let res = app
        .post(
            &format!("/v1/agents/{id}/heartbeat"),
            &format!("t-{id}"),
            &json!({}),
        )
        .await;
    assert_eq!(res.status(), 200);
    res.json().await.expect("json")
}

/// A 12348 legal question, asked live by the operator.
fn question(external_id: &str) -> Value {
    json!({
        "source": "12348",
        "external_id": external_id,
        "received_at": "2026-11-24T09:30:00+08:00",
        "caller": {"name": "李红", "phone": "13912345678"},
        "region": {"code": "320831", "town": "城关镇"},
        "title": "咨询劳动合同",
        "text": "我想咨询一下，公司没有和我签劳动合同，已经干了八个月，现在要辞退我，请问我能不能要求双倍工资，应该怎么申请劳动仲裁？",
        "live": true
    })
}

async fn ask(app: &TestApp, external_id: &str) -> Value {
    let res = app
        .post("/v1/tickets", OPERATOR, &question(external_id))
        .await;
    assert_eq!(
        res.status(),
        201,
        "{}",
        res.text().await.unwrap_or_default()
    );
    let v: Value = res.json().await.expect("json");
    assert_eq!(v["classification"]["service"], "legal_consultation", "{v}");
    v
}

async fn act(app: &TestApp, id: &str, action: &str, token: &str, body: Value) -> reqwest::Response {
    app.post(&format!("/v1/tickets/{id}/{action}"), token, &body)
        .await
}

async fn follow(app: &TestApp, id: &str) -> SseReader {
    let res = app
        .http
        .get(format!("{}/v1/events?ticket={id}", app.base))
        .bearer_auth(OPERATOR)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
    SseReader {
        res,
        buf: String::new(),
    }
}

async fn live(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/v1/tickets/{id}/live"), OPERATOR)
        .await
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn a_free_lawyer_is_reserved_accepts_connects_and_ends_the_call() {
    let redis = RedisServer::start();
    let app = TestApp::spawn_with(&redis, &config("")).await;
    lawyer(&app, "l1", "8012").await;
    heartbeat(&app, "l1").await;

    let v = ask(&app, "L-1").await;
    let id = v["id"].as_str().expect("id").to_string();
    let live_view = &v["live"];
    assert_eq!(live_view["status"], "reserved", "{v}");
    let r = &live_view["reservation"];
    assert_eq!(r["agent_id"], "l1");
    assert_eq!(r["agent_name"], "l1律师");
    assert_eq!(r["contact"], "8012");
    assert!(r["expires_at"].is_string());
    assert_eq!(live_view["events"], format!("/v1/events?ticket={id}"));
    // A retry of the same transfer answers with the same reservation, not a second one.
    let again: Value = app
        .post("/v1/tickets", OPERATOR, &question("L-1"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(again["id"], id);
    assert_eq!(again["live"]["reservation"], *r);

    let mut console = follow(&app, &id).await;
    let lease = r["reservation_id"].as_str().expect("reservation id");
    let res = act(&app, &id, "accept", "t-l1", json!({"lease_id": lease})).await;
    assert_eq!(res.status(), 200);
    let (_, e) = console
        .next_of(&["ticket.accept"], Duration::from_secs(5))
        .await;
    assert_eq!(e["live"], "accepted");
    assert_eq!(e["agent"], "l1");
    assert_eq!(live(&app, &id).await["status"], "accepted");

    let res = act(&app, &id, "first_contact", "t-l1", json!({})).await;
    assert_eq!(res.status(), 200);
    let (_, e) = console
        .next_of(&["ticket.first_contact"], Duration::from_secs(5))
        .await;
    assert_eq!(e["live"], "connected");

    let res = act(&app, &id, "end_call", "t-l1", json!({})).await;
    assert_eq!(res.status(), 200);
    assert_eq!(live(&app, &id).await["status"], "ended");
    // Ending twice is a state error, not a second measurement.
    let res = act(&app, &id, "end_call", "t-l1", json!({})).await;
    assert_eq!(res.status(), 409);

    // In wrap-up the lawyer is busy: the next caller waits, with the measured handle time.
    let v = ask(&app, "L-2").await;
    assert_eq!(v["live"]["status"], "waiting", "{v}");
    assert_eq!(v["live"]["position"], 1);
    assert_eq!(v["live"]["estimate"]["agents"], 1);
    assert_eq!(v["live"]["estimate"]["calls_measured"], 1);
    let handle = v["live"]["estimate"]["handle_seconds"]
        .as_f64()
        .expect("handle");
    assert!(
        (30.0..60.0).contains(&handle),
        "call + 30 s wrap-up: {handle}"
    );
    assert_eq!(
        v["live"]["estimated_wait_seconds"].as_f64().map(f64::ceil),
        Some(handle.ceil())
    );
    app.stop().await;
}

#[tokio::test]
async fn with_nobody_free_the_caller_gets_a_position_and_an_agent_coming_online_is_reserved() {
    let redis = RedisServer::start();
    let app = TestApp::spawn_with(&redis, &config("")).await;
    lawyer(&app, "l1", "8012").await;
    lawyer(&app, "l2", "8013").await;

    // Nobody signed in: a position, and honestly no estimate.
    let first = ask(&app, "W-1").await;
    assert_eq!(first["live"]["status"], "waiting");
    assert_eq!(first["live"]["position"], 1);
    assert!(first["live"].get("estimated_wait_seconds").is_none());
    assert_eq!(first["live"]["estimate"]["agents"], 0);
    let second = ask(&app, "W-2").await;
    assert_eq!(second["live"]["position"], 2);
    let id1 = first["id"].as_str().expect("id").to_string();
    let id2 = second["id"].as_str().expect("id").to_string();

    // A lawyer signs in: the caller waiting longest gets them, pushed by the mover.
    let mut console = follow(&app, &id1).await;
    heartbeat(&app, "l1").await;
    let (_, e) = console
        .next_of(&["ticket.offered"], Duration::from_secs(5))
        .await;
    assert_eq!(e["live"], "1");
    assert_eq!(e["agent"], "l1");
    let view = live(&app, &id1).await;
    assert_eq!(view["status"], "reserved");
    assert_eq!(view["reservation"]["contact"], "8012");
    // The second caller moves up, and now has an estimate: 1 × 240 s / 1 lawyer.
    let view = live(&app, &id2).await;
    assert_eq!(view["status"], "waiting");
    assert_eq!(view["position"], 1);
    assert_eq!(view["estimated_wait_seconds"], 240);
    app.stop().await;
}

#[tokio::test]
async fn a_reservation_that_times_out_or_is_declined_goes_to_the_next_lawyer() {
    let redis = RedisServer::start();
    let app = TestApp::spawn_with(&redis, &config("accept_timeout_seconds = 1")).await;
    for (id, ext) in [("l1", "8001"), ("l2", "8002"), ("l3", "8003")] {
        lawyer(&app, id, ext).await;
        heartbeat(&app, id).await;
    }
    let v = ask(&app, "T-1").await;
    let id = v["id"].as_str().expect("id").to_string();
    let first = v["live"]["reservation"]["agent_id"]
        .as_str()
        .expect("reserved")
        .to_string();
    let mut console = follow(&app, &id).await;
    // Nobody accepts within a second: timed out, and offered to another lawyer.
    let (_, e) = console
        .next_of(&["lease.expired"], Duration::from_secs(5))
        .await;
    assert_eq!(e["agent"], first.as_str());
    let (_, e) = console
        .next_of(&["ticket.offered"], Duration::from_secs(5))
        .await;
    let second = e["agent"].as_str().expect("agent").to_string();
    assert_ne!(second, first);
    // The second declines: reported as declined, and the third gets it.
    let lease = e["lease_id"].as_str().expect("lease").to_string();
    let res = act(
        &app,
        &id,
        "decline",
        &format!("t-{second}"),
        json!({"lease_id": lease}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let (_, e) = console
        .next_of(&["lease.declined"], Duration::from_secs(5))
        .await;
    assert_eq!(e["agent"], second.as_str());
    let (_, e) = console
        .next_of(&["ticket.offered"], Duration::from_secs(5))
        .await;
    let third = e["agent"].as_str().expect("agent").to_string();
    assert!(
        third != first && third != second,
        "{first} {second} {third}"
    );
    app.stop().await;
}

#[tokio::test]
async fn two_consoles_racing_for_the_last_free_lawyer_never_both_get_them() {
    let redis = RedisServer::start();
    let app = TestApp::spawn_with(&redis, &config("")).await;
    lawyer(&app, "l1", "8012").await;
    heartbeat(&app, "l1").await;
    for round in 0..5 {
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let http = app.http.clone();
                let url = format!("{}/v1/tickets", app.base);
                let body = question(&format!("R-{round}-{i}"));
                tokio::spawn(async move {
                    let res = http
                        .post(url)
                        .bearer_auth(OPERATOR)
                        .json(&body)
                        .send()
                        .await
                        .expect("sent");
                    assert_eq!(res.status(), 201);
                    res.json::<Value>().await.expect("json")
                })
            })
            .collect();
        let mut reserved = Vec::new();
        let mut waiting = Vec::new();
        for t in tasks {
            let v = t.await.expect("task");
            match v["live"]["status"].as_str() {
                Some("reserved") => reserved.push(v),
                Some("waiting") => waiting.push(v),
                other => panic!("unexpected {other:?}: {v}"),
            }
        }
        assert_eq!(
            reserved.len(),
            1,
            "round {round}: exactly one console gets the lawyer"
        );
        assert_eq!(waiting.len(), 7);
        let mut positions: Vec<u64> = waiting
            .iter()
            .filter_map(|v| v["live"]["position"].as_u64())
            .collect();
        positions.sort_unstable();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
        // Every caller of this round hangs up, which frees the lawyer for the next round.
        for v in reserved.iter().chain(&waiting) {
            let id = v["id"].as_str().expect("id");
            let res = act(
                &app,
                id,
                "cancel_live",
                OPERATOR,
                json!({"reason": "hang-up"}),
            )
            .await;
            assert_eq!(res.status(), 200);
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn hanging_up_releases_the_lawyer_and_keeps_or_withdraws_the_ticket() {
    let redis = RedisServer::start();
    let app = TestApp::spawn_with(&redis, &config("")).await;
    lawyer(&app, "l1", "8012").await;
    heartbeat(&app, "l1").await;

    // Reserved, then the caller hangs up: the lawyer is free, the ticket stays ordinary work.
    let v = ask(&app, "H-1").await;
    let id = v["id"].as_str().expect("id").to_string();
    assert_eq!(v["live"]["status"], "reserved");
    let res = act(&app, &id, "cancel_live", OPERATOR, json!({})).await;
    assert_eq!(res.status(), 200);
    let c: Value = res.json().await.expect("json");
    assert_eq!(c["ticket_status"], "queued");
    assert_eq!(c["live"]["status"], "cancelled");
    let agent: Value = app
        .get("/v1/agents", ADMIN)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(agent["agents"][0]["active"], 0);
    // The reservation is gone: accepting it now is refused.
    let lease = v["live"]["reservation"]["reservation_id"].clone();
    let res = act(&app, &id, "accept", "t-l1", json!({"lease_id": lease})).await;
    assert_eq!(res.status(), 409);
    // Cancelling twice is a state error.
    let res = act(&app, &id, "cancel_live", OPERATOR, json!({})).await;
    assert_eq!(res.status(), 409);

    // The next caller gets the lawyer at once; hangs up and withdraws the request.
    let v = ask(&app, "H-2").await;
    assert_eq!(v["live"]["status"], "reserved");
    let id2 = v["id"].as_str().expect("id").to_string();
    let res = act(
        &app,
        &id2,
        "cancel_live",
        OPERATOR,
        json!({"withdraw": true, "reason": "来电人挂断并撤回"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let c: Value = res.json().await.expect("json");
    assert_eq!(c["ticket_status"], "withdrawn");
    let queues: Value = app
        .get("/v1/queues", ADMIN)
        .await
        .json()
        .await
        .expect("json");
    let depth: u64 = queues["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .map(|q| q["depth"].as_u64().unwrap_or(0) + q["leased"].as_u64().unwrap_or(0))
        .sum();
    // Only the first (cancelled, not withdrawn) is still work: queued, or offered to the lawyer.
    assert_eq!(depth, 1, "{queues}");

    // Hang-up during the call: the lawyer goes into wrap-up and is not reserved meanwhile.
    let v = ask(&app, "H-3").await;
    let id3 = v["id"].as_str().expect("id").to_string();
    let lease = v["live"]["reservation"]["reservation_id"].clone();
    let res = act(&app, &id3, "accept", "t-l1", json!({"lease_id": lease})).await;
    assert_eq!(res.status(), 200);
    let res = act(&app, &id3, "cancel_live", OPERATOR, json!({})).await;
    assert_eq!(res.status(), 200);
    let v = ask(&app, "H-4").await;
    assert_eq!(v["live"]["status"], "waiting", "{v}");
    app.stop().await;
}

#[tokio::test]
async fn outside_duty_hours_the_caller_is_told_at_once_and_queued_for_a_callback() {
    let redis = RedisServer::start();
    // Duty hours that exclude now: one hour starting six hours from now (Beijing time).
    let now = chrono::Utc::now().with_timezone(&chrono_tz::Asia::Shanghai);
    let start = (now + chrono::Duration::hours(6))
        .format("%H:00")
        .to_string();
    let end_hour = (now + chrono::Duration::hours(7)).format("%H").to_string();
    let end = if end_hour == "00" {
        "24:00".to_string()
    } else {
        format!("{end_hour}:00")
    };
    let extra = format!("\n[live.duty_hours]\nlegal_consultation = [\"{start}-{end}\"]\n");
    let app = TestApp::spawn_with(&redis, &config(&extra)).await;
    lawyer(&app, "l1", "8012").await;
    heartbeat(&app, "l1").await;

    let v = ask(&app, "D-1").await;
    let l = &v["live"];
    assert_eq!(l["status"], "off_duty", "{v}");
    assert_eq!(l["callback"], true);
    assert!(l.get("reservation").is_none());
    let opens: chrono::DateTime<chrono::Utc> = l["duty_opens_at"]
        .as_str()
        .expect("opens")
        .parse()
        .expect("time");
    let hours = (opens - chrono::Utc::now()).num_minutes() as f64 / 60.0;
    assert!((4.9..6.1).contains(&hours), "duty opens in {hours} h");
    // The callback SLA: first contact within 12 hours.
    let due: chrono::DateTime<chrono::Utc> = v["sla"]["first_contact_by"]
        .as_str()
        .expect("first contact clock")
        .parse()
        .expect("time");
    let hours = (due - chrono::Utc::now()).num_minutes() as f64 / 60.0;
    assert!(
        (11.9..12.1).contains(&hours),
        "first contact due in {hours} h"
    );
    let ticket: Value = app
        .get(
            &format!("/v1/tickets/{}", v["id"].as_str().expect("id")),
            OPERATOR,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(ticket["status"], "queued");
    app.stop().await;
}

#[tokio::test]
async fn live_input_is_checked_and_heartbeats_are_the_agents_own() {
    let redis = RedisServer::start();
    let app = TestApp::spawn_with(&redis, &config("")).await;
    lawyer(&app, "l1", "8012").await;
    lawyer(&app, "l2", "8013").await;
    // Batches cannot ask for live transfer.
    let res = app
        .post(
            "/v1/tickets:batch",
            OPERATOR,
            &json!({"tickets": [question("B-1")]}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.expect("json");
    assert_eq!(v["results"][0]["status"], 422);
    assert_eq!(
        v["results"][0]["problem"]["errors"][0]["field"],
        "tickets[0].live"
    );
    // `live` must be a boolean.
    let mut bad = question("B-2");
    bad["live"] = json!("yes");
    let res = app.post("/v1/tickets", OPERATOR, &bad).await;
    assert_eq!(res.status(), 400);
    let p: Value = res.json().await.expect("json");
    assert_eq!(p["errors"][0]["field"], "live", "{p}");
    // Heartbeats: one's own only; `online: false` signs off.
    let res = app
        .post("/v1/agents/l2/heartbeat", "t-l1", &json!({}))
        .await;
    assert_eq!(res.status(), 403);
    let hb = heartbeat(&app, "l1").await;
    assert_eq!(hb["online"], true);
    assert!(hb["online_until"].is_string());
    let res = app
        .post("/v1/agents/l1/heartbeat", "t-l1", &json!({"online": false}))
        .await;
    let hb: Value = res.json().await.expect("json");
    assert_eq!(hb["online"], false);
    // Signed off: nobody to reserve.
    let v = ask(&app, "B-3").await;
    assert_eq!(v["live"]["status"], "waiting");
    // A triage or out-of-scope ticket has no live transfer: it is ordinary work.
    let mut lamp = question("B-4");
    lamp["text"] =
        json!("我们小区门口的路灯坏了一个多月了，晚上很黑，希望有关部门尽快来修理路灯。");
    lamp["source"] = json!("12345");
    let v: Value = app
        .post("/v1/tickets", OPERATOR, &lamp)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(v["live"]["status"], "not_offered", "{v}");
    // Cancelling a ticket that never was live is a state error.
    let id = v["id"].as_str().expect("id");
    let res = act(&app, id, "cancel_live", OPERATOR, json!({})).await;
    assert_eq!(res.status(), 409);
    app.stop().await;
}
