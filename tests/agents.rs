//! Lawyers and mediators at work, against a real Redis: claims, leases, widening, transfers,
//! races, and agents acting only as themselves.

mod support;

use std::time::{Duration, Instant};

use redis::Commands;
use serde_json::{Value, json};
use support::{
    ADMIN, OPERATOR, PARTNER, RedisServer, SUPERVISOR, SseReader, TestApp, open_offers, ticket,
};

/// Agent tokens (`t-<id>`) and fast settings for tests.
fn agents_config(lease_seconds: u32, skip_empty_steps: bool, max_expiries: u32) -> String {
    let mut s = format!(
        r#"
[sla]
mover_max_sleep_ms = 100

[agents]
lease_seconds = {lease_seconds}
max_lease_expiries = {max_expiries}
skip_empty_steps = {skip_empty_steps}
aging_seconds = 0

[agents.widening]
mediation = [
  {{ tier = "grid", after_seconds = 0 }},
  {{ tier = "village", after_seconds = 2 }},
  {{ tier = "town", after_seconds = 4 }},
  {{ tier = "county", after_seconds = 6 }},
]
legal_consultation = [{{ tier = "county", after_seconds = 0 }}]
triage = [{{ tier = "county", after_seconds = 0 }}]
"#
    );
    for id in ["m1", "m2", "v1", "g1", "l1"] {
        s.push_str(&format!(
            "\n[[auth.tokens]]\nname = \"agent {id}\"\nrole = \"agent\"\nagent_id = \"{id}\"\nsha256 = \"{}\"\n",
            hotline_gateway::auth::digest_hex(&format!("t-{id}"))
        ));
    }
    s
}

async fn put_agent(app: &TestApp, id: &str, body: Value) {
    let res = app
        .http
        .put(format!("{}/v1/agents/{id}", app.base))
        .bearer_auth(ADMIN)
        .json(&body)
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

fn mediator(tier: &str, region: &str) -> Value {
    json!({"name": "调解员", "kind": "mediator", "regions": [region], "tier": tier,
           "capacity": 10000, "status": "available"})
}

async fn post(app: &TestApp, body: &Value) -> Value {
    let res = app.post("/v1/tickets", PARTNER, body).await;
    assert_eq!(res.status(), 201);
    res.json().await.expect("json")
}

async fn claim(app: &TestApp, agent: &str) -> Option<Value> {
    let res = app
        .post(
            &format!("/v1/agents/{agent}/claim"),
            &format!("t-{agent}"),
            &json!({}),
        )
        .await;
    match res.status().as_u16() {
        200 => Some(res.json().await.expect("json")),
        204 => None,
        other => panic!(
            "claim answered {other}: {}",
            res.text().await.unwrap_or_default()
        ),
    }
}

fn neighbour(external_id: &str) -> Value {
    let mut t = ticket(external_id);
    t["title"] = json!("邻里噪音纠纷");
    t["text"] = json!("来电人反映楼上邻居装修噪音很大，双方为此争吵，希望调解员上门调解邻里纠纷。");
    t["people_involved"] = json!(2);
    t
}

fn threat(external_id: &str) -> Value {
    let mut t = ticket(external_id);
    t["text"] =
        json!("老板拖欠工资三个月，工人说再不给钱就拿刀砍人，双方吵起来了，请调解员赶快协调。");
    t
}

#[tokio::test]
async fn claims_come_most_urgent_first_then_oldest_across_queues() {
    let redis = RedisServer::start();
    let app = TestApp::spawn_with(&redis, &agents_config(60, true, 3)).await;
    put_agent(&app, "m1", mediator("grid", "320831")).await;

    let first = post(&app, &ticket("C-1")).await; // labour, no warning
    let second = post(&app, &neighbour("C-2")).await; // another queue, no warning
    let urgent = post(&app, &threat("C-3")).await; // labour, red
    assert_eq!(urgent["classification"]["warning_level"], "red");
    assert_ne!(first["queue"], second["queue"]);

    let order: Vec<Value> = [
        claim(&app, "m1").await,
        claim(&app, "m1").await,
        claim(&app, "m1").await,
    ]
    .into_iter()
    .map(|c| c.expect("a ticket")["ticket"]["id"].clone())
    .collect();
    assert_eq!(
        order,
        [
            urgent["id"].clone(),
            first["id"].clone(),
            second["id"].clone()
        ]
    );
    assert!(claim(&app, "m1").await.is_none(), "nothing left: 204");

    let agents: Value = app
        .get("/v1/agents", SUPERVISOR)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(agents["agents"][0]["active"], 3);
    // Leased, not yet accepted: counted per queue they came from.
    let queues: Value = app
        .get("/v1/queues", SUPERVISOR)
        .await
        .json()
        .await
        .expect("json");
    let leased = |name: &Value| {
        queues["queues"]
            .as_array()
            .and_then(|qs| qs.iter().find(|q| q["name"] == *name))
            .map(|q| q["leased"].clone())
    };
    assert_eq!(leased(&first["queue"]), Some(json!(2)));
    assert_eq!(leased(&second["queue"]), Some(json!(1)));
}

#[tokio::test]
async fn an_expired_lease_returns_the_ticket_to_its_old_place_and_repeat_expiries_go_to_supervisors()
 {
    let redis = RedisServer::start();
    let app = TestApp::spawn_with(&redis, &agents_config(1, true, 2)).await;
    put_agent(&app, "m1", mediator("grid", "320831")).await;
    let a = post(&app, &ticket("E-1")).await;
    let id = a["id"].as_str().expect("id").to_string();
    let queue = "hl:{320831}:q:mediation.320831.labour";
    let score: f64 = redis.conn().zscore(queue, &id).expect("queued");

    let c = claim(&app, "m1").await.expect("claimed");
    assert_eq!(c["ticket"]["id"], id.as_str());
    let b = post(&app, &ticket("E-2")).await; // arrives later
    // The lease lapses; the reaper puts it back with its old score, ahead of E-2.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut back: Option<f64> = None;
    while back.is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        back = redis.conn().zscore(queue, &id).expect("zscore");
    }
    assert_eq!(back, Some(score));
    let view: Value = app
        .get(&format!("/v1/tickets/{id}"), SUPERVISOR)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(view["status"], "queued");
    assert!(
        view["history"]
            .as_array()
            .expect("history")
            .iter()
            .any(|e| e["type"] == "lease.expired")
    );
    let again = claim(&app, "m1").await.expect("claimed again");
    assert_eq!(
        again["ticket"]["id"],
        id.as_str(),
        "not sent to the back of the line"
    );
    assert_ne!(again["ticket"]["id"], b["id"]);

    // Second expiry (max 2): to the supervisors' queue, keeping its score.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut in_supervisors: Option<f64> = None;
    while in_supervisors.is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        in_supervisors = redis
            .conn()
            .zscore("hl:{320831}:q:supervisor.320831", &id)
            .expect("zscore");
    }
    assert_eq!(in_supervisors, Some(score));
    let agents: Value = app
        .get("/v1/agents", SUPERVISOR)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(agents["agents"][0]["missed"], 2);
    assert_eq!(agents["agents"][0]["active"], 0);
}

#[tokio::test]
async fn two_agents_racing_for_the_same_ticket_never_both_get_it() {
    let redis = RedisServer::start();
    let app = TestApp::spawn_with(&redis, &agents_config(600, true, 3)).await;
    put_agent(&app, "m1", mediator("grid", "320831")).await;
    put_agent(&app, "m2", mediator("grid", "320831")).await;
    for round in 0..1000 {
        let t = post(&app, &ticket(&format!("R-{round}"))).await;
        let (a, b) = tokio::join!(claim(&app, "m1"), claim(&app, "m2"));
        let winners: Vec<Value> = [a, b].into_iter().flatten().collect();
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        assert_eq!(winners[0]["ticket"]["id"], t["id"], "round {round}");
    }
    let leases: usize = redis.conn().zcard("hl:{320831}:leases").expect("zcard");
    assert_eq!(leases, 1000);
}

#[tokio::test]
async fn the_ring_widens_from_grid_to_village_after_the_configured_time() {
    let redis = RedisServer::start();
    let app = TestApp::spawn_with(&redis, &agents_config(60, false, 3)).await;
    put_agent(&app, "v1", mediator("village", "320831/城关镇/东关村")).await;
    let mut away = mediator("grid", "320831/城关镇/东关村");
    away["status"] = json!("away");
    put_agent(&app, "g1", away).await;
    let t = post(&app, &neighbour("W-1")).await;
    assert!(claim(&app, "v1").await.is_none(), "the grid's turn first");
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let c = claim(&app, "v1").await.expect("the village's turn");
    assert_eq!(c["ticket"]["id"], t["id"]);
}

#[tokio::test]
async fn a_stale_lease_gets_409_and_the_full_loop_is_recorded() {
    let redis = RedisServer::start();
    let app = TestApp::spawn_with(&redis, &agents_config(60, true, 3)).await;
    put_agent(&app, "m1", mediator("grid", "320831")).await;
    let t = post(&app, &ticket("F-1")).await;
    let id = t["id"].as_str().expect("id").to_string();
    let as_m1 = |action: &str, body: Value| {
        let app = &app;
        let path = format!("/v1/tickets/{id}/{action}");
        async move { app.post(&path, "t-m1", &body).await }
    };
    // Accepting before claiming is refused; so is someone else's lease.
    assert_eq!(as_m1("accept", json!({})).await.status(), 409);
    let c = claim(&app, "m1").await.expect("claimed");
    let lease = c["lease_id"].as_str().expect("lease").to_string();
    assert_eq!(
        as_m1("accept", json!({"lease_id": "L999"})).await.status(),
        409
    );
    assert_eq!(
        as_m1("renew", json!({"lease_id": "L999"})).await.status(),
        409
    );
    assert_eq!(
        as_m1("renew", json!({"lease_id": lease})).await.status(),
        200
    );
    // Another agent cannot act for m1.
    let res = app.post("/v1/agents/m1/claim", "t-m2", &json!({})).await;
    assert_eq!(res.status(), 403);

    assert_eq!(
        as_m1("accept", json!({"lease_id": lease})).await.status(),
        200
    );
    assert_eq!(as_m1("first_contact", json!({})).await.status(), 200);
    assert_eq!(
        as_m1(
            "resolve",
            json!({"outcome": "mediated", "summary": "双方达成协议"})
        )
        .await
        .status(),
        200
    );
    let done = as_m1("follow_up", json!({"satisfaction": 4})).await;
    assert_eq!(done.status(), 200);
    let v: Value = done.json().await.expect("json");
    let types: Vec<&str> = v["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert_eq!(
        types,
        [
            "ticket.created",
            "ticket.claimed",
            "ticket.accept",
            "ticket.first_contact",
            "ticket.resolve",
            "ticket.follow_up"
        ]
    );
    let agents: Value = app
        .get("/v1/agents", SUPERVISOR)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(agents["agents"][0]["handled"], 1);
    assert_eq!(agents["agents"][0]["active"], 0);
    let leases: usize = redis.conn().zcard("hl:{320831}:leases").expect("zcard");
    assert_eq!(leases, 0);
}

#[tokio::test]
async fn a_transfer_keeps_the_tickets_age_records_the_event_and_the_correction() {
    let redis = RedisServer::start();
    let app = TestApp::spawn_with(&redis, &agents_config(60, true, 3)).await;
    let t = post(&app, &ticket("T-1")).await;
    let id = t["id"].as_str().expect("id").to_string();
    let since: f64 = redis
        .conn()
        .zscore("hl:{320831}:qt:mediation.320831.labour", &id)
        .expect("zscore");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let res = app
        .post(
            &format!("/v1/tickets/{id}/transfer"),
            SUPERVISOR,
            &json!({"service": "legal_consultation", "reason": "来电人只想咨询劳动仲裁程序"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.expect("json");
    assert_eq!(v["queue"], "legal.320831");
    assert_eq!(v["classification"]["service"], "legal_consultation");
    let moved: Option<f64> = redis
        .conn()
        .zscore("hl:{320831}:qt:legal.320831", &id)
        .expect("zscore");
    assert_eq!(moved, Some(since), "the ticket keeps its age");
    let gone: Option<f64> = redis
        .conn()
        .zscore("hl:{320831}:q:mediation.320831.labour", &id)
        .expect("zscore");
    assert_eq!(gone, None);
    let event = v["history"]
        .as_array()
        .and_then(|h| h.iter().find(|e| e["type"] == "ticket.transfer"))
        .expect("transfer event");
    assert_eq!(event["from_queue"], "mediation.320831.labour");
    assert_eq!(event["to_queue"], "legal.320831");
    let corrections: redis::streams::StreamRangeReply =
        redis.conn().xrange_all("hl:corrections").expect("xrange");
    assert_eq!(corrections.ids.len(), 1);
    assert_eq!(
        corrections.ids[0].get::<String>("service").as_deref(),
        Some("legal_consultation")
    );
    // A reason is required.
    let res = app
        .post(
            &format!("/v1/tickets/{id}/transfer"),
            SUPERVISOR,
            &json!({"service": "mediation"}),
        )
        .await;
    assert_eq!(res.status(), 422);
}

#[tokio::test]
async fn agents_are_managed_by_admins_within_their_regions_and_validated() {
    let redis = RedisServer::start();
    let extra = format!(
        "{}\n[[auth.tokens]]\nname = \"admin of 3208\"\nrole = \"admin\"\nregions = [\"3208\"]\nsha256 = \"{}\"\n",
        agents_config(60, true, 3),
        hotline_gateway::auth::digest_hex("t-admin-3208")
    );
    let app = TestApp::spawn_with(&redis, &extra).await;
    put_agent(&app, "m1", mediator("grid", "320831")).await;
    let put = |token: &'static str, id: &'static str, body: Value| {
        let app = &app;
        async move {
            app.http
                .put(format!("{}/v1/agents/{id}", app.base))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .expect("sent")
        }
    };
    // Outside the admin's regions.
    assert_eq!(
        put("t-admin-3208", "x1", mediator("grid", "110101"))
            .await
            .status(),
        403
    );
    assert_eq!(
        put("t-admin-3208", "x2", mediator("grid", "320831"))
            .await
            .status(),
        200
    );
    // Not an admin.
    assert_eq!(
        put(SUPERVISOR, "x3", mediator("grid", "320831"))
            .await
            .status(),
        403
    );
    // Invalid fields are named.
    let res = put(
        ADMIN,
        "x4",
        json!({"name": "", "kind": "mediator", "regions": ["320831", "110101"],
        "tier": "grid", "capacity": 0, "status": "available", "skills": ["astrology"]}),
    )
    .await;
    assert_eq!(res.status(), 422);
    let problem: Value = res.json().await.expect("json");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, ["name", "skills[0]", "regions", "capacity"]);
    let res = put(ADMIN, "x5", json!({"name": "a", "kind": "wizard"})).await;
    assert_eq!(res.status(), 400);
    // The operator of 320831 sees that county's agents.
    let list: Value = app
        .get("/v1/agents", OPERATOR)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list["agents"].as_array().map(Vec::len), Some(2));
    // Deleting: not while the agent holds tickets.
    post(&app, &ticket("D-1")).await;
    claim(&app, "m1").await.expect("claimed");
    let del = app
        .http
        .delete(format!("{}/v1/agents/m1", app.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("sent");
    assert_eq!(del.status(), 409);
    let del = app
        .http
        .delete(format!("{}/v1/agents/x2", app.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("sent");
    assert_eq!(del.status(), 204);
    let del = app
        .http
        .delete(format!("{}/v1/agents/x2", app.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("sent");
    assert_eq!(del.status(), 404);
}

#[tokio::test]
async fn return_dispute_and_reopen_are_recorded_and_keep_the_ticket_whole() {
    let redis = RedisServer::start();
    let app = TestApp::spawn_with(&redis, &agents_config(60, true, 3)).await;
    let act = |id: String, action: &'static str, token: &'static str, body: Value| {
        let app = &app;
        async move {
            app.post(&format!("/v1/tickets/{id}/{action}"), token, &body)
                .await
        }
    };
    // 退单: back to the sender, no clocks left running.
    let t = post(&app, &ticket("X-1")).await;
    let id = t["id"].as_str().expect("id").to_string();
    assert_eq!(
        act(id.clone(), "return", SUPERVISOR, json!({}))
            .await
            .status(),
        422
    );
    let v: Value = act(
        id.clone(),
        "return",
        SUPERVISOR,
        json!({"reason": "属于住建部门职责"}),
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(v["status"], "returned");
    let open: bool = redis
        .conn()
        .sismember("hl:{320831}:open", &id)
        .expect("sismember");
    assert!(!open);

    // 异议/改派: the partner disputes the dispatch; the ticket goes to triage with its age.
    let t = post(&app, &ticket("X-2")).await;
    let id = t["id"].as_str().expect("id").to_string();
    let since: f64 = redis
        .conn()
        .zscore("hl:{320831}:qt:mediation.320831.labour", &id)
        .expect("zscore");
    let res = act(
        id.clone(),
        "dispute",
        PARTNER,
        json!({"reason": "应由劳动仲裁处理"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let moved: Option<f64> = redis
        .conn()
        .zscore("hl:{320831}:qt:triage.320831", &id)
        .expect("zscore");
    assert_eq!(moved, Some(since));
    // A partner may dispute, not resolve.
    assert_eq!(
        act(id.clone(), "accept", PARTNER, json!({})).await.status(),
        403
    );

    // Reopen within the window: back in line; the time spent resolved does not count.
    let t = post(&app, &ticket("X-3")).await;
    let id = t["id"].as_str().expect("id").to_string();
    for (action, body) in [
        ("accept", json!({})),
        (
            "resolve",
            json!({"outcome": "answered", "summary": "已答复"}),
        ),
    ] {
        assert_eq!(
            act(id.clone(), action, SUPERVISOR, body).await.status(),
            200
        );
    }
    let v: Value = act(
        id.clone(),
        "reopen",
        OPERATOR,
        json!({"reason": "来电人表示问题未解决"}),
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(v["status"], "queued");
    let resolve = v["clocks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["clock"] == "resolve"))
        .expect("resolve");
    assert_eq!(resolve["state"], "running", "{resolve}");
    let follow = v["clocks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["clock"] == "follow_up"))
        .expect("follow_up");
    assert_eq!(follow["state"], "not_started");
    let open: bool = redis
        .conn()
        .sismember("hl:{320831}:open", &id)
        .expect("sismember");
    assert!(open);
    let types: Vec<&str> = v["history"]
        .as_array()
        .expect("h")
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert!(
        types.ends_with(&["ticket.resolve", "ticket.reopen"]),
        "{types:?}"
    );
}

#[tokio::test]
async fn repeat_requests_of_one_caller_about_one_matter_are_linked_both_ways() {
    let redis = RedisServer::start();
    let app = TestApp::spawn_with(&redis, &agents_config(60, true, 3)).await;
    let first = post(&app, &ticket("L-1")).await;
    let mut again = ticket("L-2");
    again["text"] =
        json!("来电人再次反映老板拖欠工资的问题仍未解决，双方又吵起来了，希望尽快调解。");
    let second = post(&app, &again).await;
    let other_matter = post(&app, &neighbour("L-3")).await;
    let view = |id: &Value| {
        let app = &app;
        let id = id.as_str().expect("id").to_string();
        async move {
            app.get(&format!("/v1/tickets/{id}"), SUPERVISOR)
                .await
                .json::<Value>()
                .await
                .expect("json")
        }
    };
    assert_eq!(view(&second["id"]).await["linked"], json!([first["id"]]));
    assert_eq!(view(&first["id"]).await["linked"], json!([second["id"]]));
    assert_eq!(view(&other_matter["id"]).await["linked"], json!([]));
}

#[tokio::test]
async fn agents_figures_appear_in_the_api_and_in_metrics() {
    let redis = RedisServer::start();
    let app = TestApp::spawn_with(&redis, &agents_config(60, true, 3)).await;
    put_agent(&app, "m1", mediator("grid", "320831")).await;
    let t = post(&app, &ticket("G-1")).await;
    let id = t["id"].as_str().expect("id").to_string();
    let c = claim(&app, "m1").await.expect("claimed");
    let lease = c["lease_id"].clone();
    for (action, body) in [
        ("accept", json!({"lease_id": lease})),
        (
            "resolve",
            json!({"outcome": "mediated", "summary": "调解成功"}),
        ),
    ] {
        let res = app
            .post(&format!("/v1/tickets/{id}/{action}"), "t-m1", &body)
            .await;
        assert_eq!(res.status(), 200);
    }
    let agents: Value = app
        .get("/v1/agents", SUPERVISOR)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(agents["agents"][0]["handled"], 1);
    assert!(
        agents["agents"][0]["avg_handle_seconds"]
            .as_f64()
            .expect("avg")
            >= 0.0
    );
    // Agent ids are not a closed label set: the figures are in the API, not in /metrics.
    let text = app.get("/metrics", "").await.text().await.expect("text");
    assert!(!text.contains(r#"agent="m1""#), "an agent id as a label");
}

/// Every endpoint that touches a ticket, a queue or an agent refuses a caller from another
/// region with 403 (and never shows it another region's data).
#[tokio::test]
async fn region_scope_holds_on_every_endpoint() {
    let redis = RedisServer::start();
    let extra = format!(
        "{}\n[[auth.tokens]]\nname = \"admin of 110101\"\nrole = \"admin\"\nregions = [\"110101\"]\nsha256 = \"{}\"\n\n[[auth.tokens]]\nname = \"supervisor of 110101\"\nrole = \"supervisor\"\nregions = [\"110101\"]\nsha256 = \"{}\"\n",
        agents_config(60, true, 3),
        hotline_gateway::auth::digest_hex("t-admin-bj"),
        hotline_gateway::auth::digest_hex("t-sup-bj"),
    );
    let app = TestApp::spawn_with(&redis, &extra).await;
    put_agent(&app, "m1", mediator("grid", "320831")).await;
    let t = post(&app, &ticket("Z-1")).await;
    let id = t["id"].as_str().expect("id").to_string();

    // Tickets: read and every action.
    for token in ["t-sup-bj", "t-admin-bj"] {
        assert_eq!(
            app.get(&format!("/v1/tickets/{id}"), token).await.status(),
            403,
            "{token}"
        );
        for action in [
            "accept",
            "first_contact",
            "pause",
            "resume",
            "resolve",
            "follow_up",
            "transfer",
            "escalate",
            "return",
            "dispute",
            "reopen",
        ] {
            let res = app
                .post(
                    &format!("/v1/tickets/{id}/{action}"),
                    token,
                    &json!({"reason": "r", "outcome": "answered", "summary": "s", "satisfaction": 3, "service": "mediation"}),
                )
                .await;
            assert_eq!(res.status(), 403, "{token} {action}");
        }
    }
    // Intake: an operator limited to 320831 cannot send for 110101.
    let mut elsewhere = ticket("Z-2");
    elsewhere["region"]["code"] = json!("110101");
    assert_eq!(
        app.post("/v1/tickets", OPERATOR, &elsewhere).await.status(),
        403
    );
    // Queues and agents lists show only the caller's regions.
    let queues: Value = app
        .get("/v1/queues", "t-sup-bj")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(queues["queues"], json!([]));
    let agents: Value = app
        .get("/v1/agents", "t-sup-bj")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(agents["agents"], json!([]));
    // Agents: define and delete only within the admin's regions.
    let res = app
        .http
        .put(format!("{}/v1/agents/m1", app.base))
        .bearer_auth("t-admin-bj")
        .json(&mediator("grid", "320831"))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 403);
    let res = app
        .http
        .delete(format!("{}/v1/agents/m1", app.base))
        .bearer_auth("t-admin-bj")
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 403);
    // And the ticket is untouched.
    let v: Value = app
        .get(&format!("/v1/tickets/{id}"), SUPERVISOR)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(v["status"], "queued");
    assert_eq!(v["history"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn offers_are_pushed_to_connected_consoles_re_offered_on_timeout_and_missing_them_sets_away()
{
    let redis = RedisServer::start();
    let config = agents_config(60, true, 10).replace(
        "aging_seconds = 0",
        "aging_seconds = 0\noffer_timeout_seconds = 1\naway_after_missed = 2",
    );
    let app = TestApp::spawn_with(&redis, &config).await;
    put_agent(&app, "m1", mediator("grid", "320831")).await;
    let mut console = open_offers(&app, "m1").await;

    // Offered, then accepted with the offer's lease.
    let t = post(&app, &ticket("P-1")).await;
    let (_, offer) = console.next_of(&["offer"], Duration::from_secs(10)).await;
    assert_eq!(offer["id"], t["id"]);
    assert_eq!(offer["ticket"]["id"], t["id"]);
    let lease = offer["lease_id"].clone();
    let res = app
        .post(
            &format!("/v1/tickets/{}/accept", t["id"].as_str().expect("id")),
            "t-m1",
            &json!({"lease_id": lease}),
        )
        .await;
    assert_eq!(res.status(), 200);

    // Declined: back in line and offered again.
    let t2 = post(&app, &ticket("P-2")).await;
    let (_, offer) = console.next_of(&["offer"], Duration::from_secs(10)).await;
    assert_eq!(offer["id"], t2["id"]);
    let res = app
        .post(
            &format!("/v1/tickets/{}/decline", t2["id"].as_str().expect("id")),
            "t-m1",
            &json!({"lease_id": offer["lease_id"]}),
        )
        .await;
    assert_eq!(res.status(), 200);
    console
        .next_of(&["offer_declined"], Duration::from_secs(10))
        .await;
    let (_, again) = console.next_of(&["offer"], Duration::from_secs(10)).await;
    assert_eq!(again["id"], t2["id"], "re-offered after the decline");

    // Ignored twice in a row (the decline counted once): the agent is set away.
    console.next_of(&["away"], Duration::from_secs(10)).await;
    let agents: Value = app
        .get("/v1/agents", SUPERVISOR)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(agents["agents"][0]["status"], "away");
    // Nothing is stuck: the ticket waits in its queue again.
    let view: Value = app
        .get(
            &format!("/v1/tickets/{}", t2["id"].as_str().expect("id")),
            SUPERVISOR,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(view["status"], "queued");
}

#[tokio::test]
async fn configured_agents_are_created_at_start_up_and_notes_are_recorded() {
    let redis = RedisServer::start();
    let extra = format!(
        "{}\n[[agents.bootstrap]]\nid = \"m1\"\nname = \"李调解员\"\nkind = \"mediator\"\nregions = [\"320831/城关镇\"]\ntier = \"town\"\ncapacity = 3\nstatus = \"available\"\ncontact = \"8012\"\n",
        agents_config(60, true, 3)
    );
    let app = TestApp::spawn_with(&redis, &extra).await;
    let agents: Value = app
        .get("/v1/agents", SUPERVISOR)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(agents["agents"][0]["id"], "m1");
    assert_eq!(agents["agents"][0]["contact"], "8012");
    assert_eq!(agents["agents"][0]["tier"], "town");

    let t = post(&app, &ticket("N-1")).await;
    let id = t["id"].as_str().expect("id").to_string();
    let res = app
        .post(&format!("/v1/tickets/{id}/note"), SUPERVISOR, &json!({}))
        .await;
    assert_eq!(res.status(), 422);
    let v: Value = app
        .post(
            &format!("/v1/tickets/{id}/note"),
            SUPERVISOR,
            &json!({"note": "来电人再次来电催办"}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(v["status"], "queued");
    let last = v["history"]
        .as_array()
        .and_then(|h| h.last())
        .expect("history");
    assert_eq!(last["type"], "ticket.note");
    assert_eq!(last["note"], "来电人再次来电催办");
}

#[tokio::test]
async fn a_transfer_to_another_county_moves_the_ticket_with_its_age_in_two_idempotent_steps() {
    let redis = RedisServer::start();
    let app = TestApp::spawn_with(&redis, &agents_config(60, true, 3)).await;
    let t = post(&app, &ticket("XC-1")).await;
    let id = t["id"].as_str().expect("id").to_string();
    let since: f64 = redis
        .conn()
        .zscore("hl:{320831}:qt:mediation.320831.labour", &id)
        .expect("zscore");
    // The operator of 320831 may not move it out of its regions.
    let res = app
        .post(
            &format!("/v1/tickets/{id}/transfer"),
            OPERATOR,
            &json!({"region_code": "320324", "reason": "事发地在睢宁县"}),
        )
        .await;
    assert_eq!(res.status(), 403);
    let v: Value = app
        .post(
            &format!("/v1/tickets/{id}/transfer"),
            SUPERVISOR,
            &json!({"region_code": "320324", "reason": "事发地在睢宁县"}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(v["status"], "transferred");
    let event = v["history"]
        .as_array()
        .and_then(|h| h.last())
        .expect("event");
    let new_id = event["to_ticket"].as_str().expect("new id").to_string();
    assert!(new_id.starts_with("320324-"), "{new_id}");
    let moved: Option<f64> = redis
        .conn()
        .zscore("hl:{320324}:qt:mediation.320324.labour", &new_id)
        .expect("zscore");
    assert_eq!(moved, Some(since), "it keeps its age in the new county");
    let gone: Option<f64> = redis
        .conn()
        .zscore("hl:{320831}:q:mediation.320831.labour", &id)
        .expect("zscore");
    assert_eq!(gone, None);
    let new: Value = app
        .get(&format!("/v1/tickets/{new_id}"), SUPERVISOR)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(new["history"][0]["transferred_from"], id.as_str());
    assert_eq!(new["status"], "queued");
    // Step one is idempotent: the same move again finds the same ticket.
    let key: Option<String> = redis
        .conn()
        .get(format!("hl:{{320324}}:idem:transfer:12345:transfer:{id}"))
        .expect("get");
    assert!(key.is_some_and(|k| k.starts_with(&new_id)));
}

#[tokio::test]
async fn a_browser_console_opens_its_offer_stream_with_access_token() {
    let redis = RedisServer::start();
    let app = TestApp::spawn_with(&redis, &agents_config(60, true, 10)).await;
    put_agent(&app, "m1", mediator("grid", "320831")).await;
    let open = |query: &str| {
        app.http
            .get(format!("{}/v1/agents/m1/offers{query}", app.base))
            .send()
    };

    // `EventSource` sends no headers: the token comes in the query, and offers arrive.
    let res = open("?access_token=t-m1").await.expect("sent");
    assert_eq!(res.status(), 200);
    let mut console = SseReader {
        res,
        buf: String::new(),
    };
    console.next_of(&["online"], Duration::from_secs(5)).await;
    let t = post(&app, &ticket("Q-1")).await;
    let (_, offer) = console.next_of(&["offer"], Duration::from_secs(10)).await;
    assert_eq!(offer["id"], t["id"]);

    // Still the agent's own stream only, and a token that is wrong is still wrong.
    for (query, want) in [
        ("?access_token=t-m2", 403),
        ("?access_token=not-a-token", 401),
        ("", 401),
        ("?token=t-m1", 400),
    ] {
        let res = open(query).await.expect("sent");
        assert_eq!(res.status(), want, "{query}");
        assert_eq!(
            res.headers()["content-type"].to_str().expect("ascii"),
            "application/problem+json",
            "{query}"
        );
    }

    // The OpenAPI document says so.
    let doc: Value = app
        .get("/openapi.json", "")
        .await
        .json()
        .await
        .expect("json");
    let params = doc["paths"]["/v1/agents/{id}/offers"]["get"]["parameters"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        params
            .iter()
            .any(|p| p["name"] == "access_token" && p["in"] == "query"),
        "{params:?}"
    );
}
