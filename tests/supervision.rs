//! What supervisors watch: tickets at risk and breached, the day's counts, queues by region,
//! and raising a ticket's priority.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{ADMIN, OPERATOR, PARTNER, RedisServer, SUPERVISOR, TestApp, ticket};

const FAST: &str = r#"
[sla]
mover_max_sleep_ms = 100

[[sla.policies]]
name = "drill"
accept = { seconds = 2 }
warn_at = [0.5]

[[sla.policies]]
name = "the rest"
first_contact = { hours = 1 }
resolve = { hours = 1 }
follow_up = { hours = 1 }
"#;

async fn risk(app: &TestApp) -> Value {
    app.get("/v1/dashboard/risk", SUPERVISOR)
        .await
        .json()
        .await
        .expect("json")
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    format!(
                        "{}|{}",
                        r["id"].as_str().unwrap_or_default(),
                        r["clock"].as_str().unwrap_or_default()
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_warned_clock_is_at_risk_then_breached_then_gone_once_handled() {
    let redis = RedisServer::start();
    let app = TestApp::spawn_with(&redis, FAST).await;
    let t: Value = app
        .post("/v1/tickets", PARTNER, &ticket("RK-1"))
        .await
        .json()
        .await
        .expect("json");
    let id = t["id"].as_str().expect("id").to_string();
    let member = format!("{id}|accept");

    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen_at_risk = false;
    loop {
        let r = risk(&app).await;
        if ids(&r["at_risk"]).contains(&member) {
            seen_at_risk = true;
            assert!(r["at_risk"][0]["seconds_left"].as_i64().expect("left") <= 1);
        }
        if ids(&r["breached"]).contains(&member) {
            assert!(!ids(&r["at_risk"]).contains(&member));
            assert_eq!(r["breached"][0]["queue"], "mediation.320831.labour");
            assert!(r["breached"][0]["seconds_left"].as_i64().expect("over") <= 0);
            break;
        }
        assert!(Instant::now() < deadline, "no breach shown");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen_at_risk, "the warning came first");
    // Accepting stops the clock: off both lists.
    assert_eq!(
        app.post(&format!("/v1/tickets/{id}/accept"), SUPERVISOR, &json!({}))
            .await
            .status(),
        200
    );
    let r = risk(&app).await;
    assert!(!ids(&r["breached"]).contains(&member) && !ids(&r["at_risk"]).contains(&member));
}

#[tokio::test]
async fn the_days_counts_add_up_by_category_source_county_and_hour() {
    let redis = RedisServer::start();
    let app = TestApp::spawn(&redis).await;
    app.post("/v1/tickets", PARTNER, &ticket("TD-1")).await;
    app.post("/v1/tickets", PARTNER, &ticket("TD-2")).await;
    let mut other = ticket("TD-3");
    other["source"] = json!("110");
    other["region"]["code"] = json!("320324");
    app.post("/v1/tickets", PARTNER, &other).await;
    let today: Value = app
        .get("/v1/dashboard/today", SUPERVISOR)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(today["by_category"]["labour"], 3, "{today}");
    assert_eq!(today["by_source"], json!({"12345": 2, "110": 1}));
    assert_eq!(today["by_county"], json!({"320324": 1, "320831": 2}));
    let hours: u64 = today["by_hour"]
        .as_array()
        .expect("hours")
        .iter()
        .filter_map(Value::as_u64)
        .sum();
    assert_eq!(hours, 3);
    let only: Value = app
        .get("/v1/dashboard/today?region=320324", SUPERVISOR)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(only["by_county"], json!({"320324": 1}));
    assert_eq!(
        app.get("/v1/dashboard/today?region=abc", SUPERVISOR)
            .await
            .status(),
        422
    );
    assert_eq!(app.get("/v1/dashboard/today", PARTNER).await.status(), 403);
}

#[tokio::test]
async fn queues_narrow_by_region_and_count_available_agents() {
    let redis = RedisServer::start();
    let app = TestApp::spawn(&redis).await;
    app.post("/v1/tickets", PARTNER, &ticket("QR-1")).await;
    let mut other = ticket("QR-2");
    other["region"]["code"] = json!("320324");
    app.post("/v1/tickets", PARTNER, &other).await;
    let res = app
        .http
        .put(format!("{}/v1/agents/m1", app.base))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "调解员", "kind": "mediator", "regions": ["320831"], "tier": "county", "capacity": 3, "status": "available"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
    let q: Value = app
        .get("/v1/queues?region=320831", SUPERVISOR)
        .await
        .json()
        .await
        .expect("json");
    let queues = q["queues"].as_array().expect("queues");
    assert_eq!(queues.len(), 1);
    assert_eq!(queues[0]["agents_available"], 1);
}

#[tokio::test]
async fn a_supervisor_raises_a_tickets_priority_one_band_at_a_time() {
    let redis = RedisServer::start();
    let app = TestApp::spawn(&redis).await;
    let t: Value = app
        .post("/v1/tickets", PARTNER, &ticket("RA-1"))
        .await
        .json()
        .await
        .expect("json");
    let id = t["id"].as_str().expect("id").to_string();
    let path = format!("/v1/tickets/{id}/raise");
    assert_eq!(
        app.post(&path, OPERATOR, &json!({"reason": "x"}))
            .await
            .status(),
        403
    );
    assert_eq!(app.post(&path, SUPERVISOR, &json!({})).await.status(), 422);
    let queue = "hl:{320831}:q:mediation.320831.labour";
    let before: f64 = redis::Commands::zscore(&mut redis.conn(), queue, &id).expect("zscore");
    assert_eq!(
        app.post(&path, SUPERVISOR, &json!({"reason": "媒体关注"}))
            .await
            .status(),
        200
    );
    let after: f64 = redis::Commands::zscore(&mut redis.conn(), queue, &id).expect("zscore");
    assert_eq!(before - after, 4_294_967_296.0);
    for _ in 0..2 {
        assert_eq!(
            app.post(&path, SUPERVISOR, &json!({"reason": "r"}))
                .await
                .status(),
            200
        );
    }
    let res = app.post(&path, SUPERVISOR, &json!({"reason": "r"})).await;
    assert_eq!(res.status(), 409, "already the most urgent band");
}
