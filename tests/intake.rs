//! Receiving tickets: they land in the right queue with their event, exactly once, and bad
//! input is refused with a problem+json naming the field.

mod support;

use redis::Commands;
use serde_json::{Value, json};
use support::{AGENT, OPERATOR, PARTNER, RedisServer, SUPERVISOR, TestApp, ticket};

#[tokio::test]
async fn an_ingested_ticket_appears_in_the_expected_queue_with_its_event() {
    let redis = RedisServer::start();
    let app = TestApp::spawn(&redis).await;

    let res = app.post("/v1/tickets", PARTNER, &ticket("A-1")).await;
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.expect("json");
    let id = body["id"].as_str().expect("id").to_string();
    assert!(id.starts_with("320831-"), "{id}");
    assert_eq!(body["status"], "queued");
    assert_eq!(body["queue"], "mediation.320831.labour");
    assert_eq!(body["classification"]["service"], "mediation");
    assert_eq!(body["classification"]["category"], "labour");
    assert!(body["sla"]["accept_by"].is_string());

    // The queue entry, scored in the lowest band ("none") by arrival.
    let mut conn = redis.conn();
    let score: Option<f64> = conn
        .zscore("hl:{320831}:q:mediation.320831.labour", &id)
        .expect("zscore");
    assert!(score.is_some(), "ticket not in its queue");
    // The event on the county's stream.
    let events: redis::streams::StreamRangeReply =
        conn.xrange_all("hl:{320831}:events").expect("xrange");
    let created: Vec<_> = events
        .ids
        .iter()
        .filter(|e| e.get::<String>("id").as_deref() == Some(id.as_str()))
        .collect();
    assert_eq!(created.len(), 1);
    assert_eq!(
        created[0].get::<String>("type").as_deref(),
        Some("ticket.created")
    );

    // And through the API, with its history.
    let view: Value = app
        .get(&format!("/v1/tickets/{id}"), SUPERVISOR)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(view["queue"], "mediation.320831.labour");
    assert_eq!(view["ticket"]["external_id"], "A-1");
    assert_eq!(view["history"][0]["type"], "ticket.created");
    assert_eq!(view["history"][0]["actor"], "partner-12345");
}

#[tokio::test]
async fn a_retry_returns_the_same_ticket_and_a_conflicting_retry_gets_409() {
    let redis = RedisServer::start();
    let app = TestApp::spawn(&redis).await;

    let first: Value = app
        .post("/v1/tickets", PARTNER, &ticket("A-2"))
        .await
        .json()
        .await
        .expect("json");

    // The same content, even with the time written in another zone, is the same ticket.
    let mut again = ticket("A-2");
    again["received_at"] = json!("2026-01-05T01:30:00Z");
    let res = app.post("/v1/tickets", PARTNER, &again).await;
    assert_eq!(res.status(), 200);
    let second: Value = res.json().await.expect("json");
    assert_eq!(first["id"], second["id"]);
    assert_eq!(first["created_at"], second["created_at"]);

    let mut changed = ticket("A-2");
    changed["text"] = json!("完全不同的内容：邻居装修噪音太大");
    let res = app.post("/v1/tickets", PARTNER, &changed).await;
    assert_eq!(res.status(), 409);
    assert_eq!(
        res.headers()["content-type"].to_str().expect("ascii"),
        "application/problem+json"
    );
    let problem: Value = res.json().await.expect("json");
    assert_eq!(problem["ticket_id"], first["id"]);

    let depth: usize = redis
        .conn()
        .zcard("hl:{320831}:q:mediation.320831.labour")
        .expect("zcard");
    assert_eq!(depth, 1, "a retry must never make a second ticket");
}

#[tokio::test]
async fn concurrent_retries_of_one_transfer_make_exactly_one_ticket() {
    let redis = RedisServer::start();
    let app = TestApp::spawn(&redis).await;
    let body = ticket("A-3");
    let mut sends = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (http, url, body) = (
            app.http.clone(),
            format!("{}/v1/tickets", app.base),
            body.clone(),
        );
        sends.spawn(async move {
            let res = http
                .post(url)
                .bearer_auth(PARTNER)
                .json(&body)
                .send()
                .await
                .expect("sent");
            let status = res.status().as_u16();
            let v: Value = res.json().await.expect("json");
            (status, v["id"].as_str().expect("id").to_string())
        });
    }
    let mut created = 0;
    let mut ids = std::collections::HashSet::new();
    while let Some(done) = sends.join_next().await {
        let (status, id) = done.expect("task");
        match status {
            201 => created += 1,
            200 => {}
            other => panic!("unexpected status {other}"),
        }
        ids.insert(id);
    }
    assert_eq!(created, 1);
    assert_eq!(ids.len(), 1);
}

/// Sends a raw body and returns (status, problem JSON).
async fn raw(app: &TestApp, token: &str, content_type: &str, body: String) -> (u16, Value) {
    let res = app
        .http
        .post(format!("{}/v1/tickets", app.base))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("sent");
    let status = res.status().as_u16();
    if status >= 400 {
        assert_eq!(
            res.headers()["content-type"].to_str().expect("ascii"),
            "application/problem+json",
            "status {status}"
        );
    }
    (status, res.json().await.unwrap_or(Value::Null))
}

fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["field"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn every_validation_error_names_its_field() {
    let redis = RedisServer::start();
    let app = TestApp::spawn(&redis).await;
    let json_ct = "application/json";

    let with = |f: &dyn Fn(&mut Value)| {
        let mut t = ticket("V-1");
        f(&mut t);
        t.to_string()
    };
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("malformed JSON", "{\"source\": ".into(), 400, ""),
        (
            "missing text",
            with(&|t| {
                t.as_object_mut().map(|o| o.remove("text"));
            }),
            422,
            "text",
        ),
        (
            "empty text",
            with(&|t| t["text"] = json!("   ")),
            422,
            "text",
        ),
        (
            "oversized text",
            with(&|t| t["text"] = json!("字".repeat(5001))),
            422,
            "text",
        ),
        (
            "unknown field",
            with(&|t| t["priority"] = json!("high")),
            400,
            "priority",
        ),
        (
            "unknown nested field",
            with(&|t| t["region"]["province"] = json!("江苏")),
            400,
            "region.province",
        ),
        (
            "bad source",
            with(&|t| t["source"] = json!("119")),
            422,
            "source",
        ),
        (
            "bad channel",
            with(&|t| t["channel"] = json!("fax")),
            422,
            "channel",
        ),
        (
            "bad transfer",
            with(&|t| t["transfer"] = json!("carrier_pigeon")),
            422,
            "transfer",
        ),
        (
            "short region code",
            with(&|t| t["region"]["code"] = json!("32083")),
            422,
            "region.code",
        ),
        (
            "letters in region code",
            with(&|t| t["region"]["code"] = json!("32O831")),
            422,
            "region.code",
        ),
        (
            "bad timestamp",
            with(&|t| t["received_at"] = json!("2026-13-01 09:00")),
            422,
            "received_at",
        ),
        (
            "wrong type",
            with(&|t| t["people_involved"] = json!("five")),
            400,
            "people_involved",
        ),
        (
            "negative count",
            with(&|t| t["people_involved"] = json!(-3)),
            400,
            "people_involved",
        ),
        (
            "bad phone",
            with(&|t| t["caller"]["phone"] = json!("call me maybe")),
            422,
            "caller.phone",
        ),
        (
            "external id with spaces",
            with(&|t| t["external_id"] = json!("a b")),
            422,
            "external_id",
        ),
    ];
    for (name, body, status, field) in cases {
        let (got, problem) = raw(&app, PARTNER, json_ct, body).await;
        assert_eq!(got, status, "{name}: {problem}");
        assert_eq!(problem["status"], status, "{name}");
        if !field.is_empty() {
            assert!(
                fields(&problem).contains(&field.to_string()),
                "{name}: expected field {field} in {problem}"
            );
        }
    }

    // Not JSON at all.
    let (got, _) = raw(&app, PARTNER, "text/plain", ticket("V-2").to_string()).await;
    assert_eq!(got, 415);
    // Over the body limit (64 KiB in the test config).
    let huge = with(&|t| t["title"] = json!("x".repeat(70_000)));
    let (got, problem) = raw(&app, PARTNER, json_ct, huge).await;
    assert_eq!(got, 413, "{problem}");

    // Nothing was written for any of them.
    let keys: Vec<String> = redis.conn().keys("hl:{320831}:t:*").expect("keys");
    assert!(keys.is_empty(), "{keys:?}");
}

#[tokio::test]
async fn unauthenticated_and_unauthorised_requests_are_rejected() {
    let redis = RedisServer::start();
    let app = TestApp::spawn(&redis).await;

    let res = app
        .http
        .post(format!("{}/v1/tickets", app.base))
        .json(&ticket("S-1"))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 401);
    assert!(res.headers().contains_key("www-authenticate"));

    let res = app.post("/v1/tickets", "not-a-token", &ticket("S-1")).await;
    assert_eq!(res.status(), 401);
    // A supervisor watches queues; it does not hand tickets over.
    let res = app.post("/v1/tickets", SUPERVISOR, &ticket("S-1")).await;
    assert_eq!(res.status(), 403);
    // The operator is limited to 320831.
    let mut elsewhere = ticket("S-2");
    elsewhere["region"]["code"] = json!("110101");
    let res = app.post("/v1/tickets", OPERATOR, &elsewhere).await;
    assert_eq!(res.status(), 403);
    let res = app.post("/v1/tickets", OPERATOR, &ticket("S-3")).await;
    assert_eq!(res.status(), 201);
    // A partner cannot read queue state; nobody reads without a token.
    assert_eq!(app.get("/v1/queues", PARTNER).await.status(), 403);
    assert_eq!(app.get("/v1/queues", "").await.status(), 401);
    assert_eq!(app.get("/v1/queues", AGENT).await.status(), 200);

    // A ticket outside the operator's regions is not readable by it either.
    let id = app
        .post("/v1/tickets", PARTNER, &elsewhere)
        .await
        .json::<Value>()
        .await
        .expect("json")["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert_eq!(
        app.get(&format!("/v1/tickets/{id}"), OPERATOR)
            .await
            .status(),
        403
    );
    assert_eq!(
        app.get(&format!("/v1/tickets/{id}"), SUPERVISOR)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_batch_answers_each_ticket_in_order_and_one_bad_item_fails_alone() {
    let redis = RedisServer::start();
    let app = TestApp::spawn(&redis).await;
    let first = ticket("B-1");
    let mut bad = ticket("B-2");
    bad["region"]["code"] = json!("abc");
    let body = json!({"tickets": [first.clone(), bad, first, {"nonsense": true}]});
    let res = app.post("/v1/tickets:batch", PARTNER, &body).await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.expect("json");
    let statuses: Vec<u64> = v["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["status"].as_u64().expect("status"))
        .collect();
    // The duplicate inside one batch runs concurrently with its twin: one of them is new.
    assert!(statuses[0] == 201 || statuses[0] == 200, "{statuses:?}");
    assert_eq!(statuses[1], 422);
    assert!(statuses[2] == 201 || statuses[2] == 200, "{statuses:?}");
    assert_eq!(statuses[0] + statuses[2], 401, "exactly one new ticket");
    assert_eq!(statuses[3], 400);
    assert_eq!(
        v["results"][0]["ticket"]["id"],
        v["results"][2]["ticket"]["id"]
    );
    let f = fields(&v["results"][1]["problem"]);
    assert_eq!(f, ["tickets[1].region.code"]);

    let too_many =
        json!({"tickets": (0..101).map(|i| ticket(&format!("M-{i}"))).collect::<Vec<_>>()});
    let res = app.post("/v1/tickets:batch", PARTNER, &too_many).await;
    assert!(res.status() == 413, "{}", res.status());
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_echoes_the_callers() {
    let redis = RedisServer::start();
    let app = TestApp::spawn(&redis).await;
    let res = app
        .http
        .get(format!("{}/healthz", app.base))
        .header("x-request-id", "console-42")
        .send()
        .await
        .expect("sent");
    assert_eq!(res.headers()["x-request-id"], "console-42");
    let res = app.get("/v1/nothing-here", SUPERVISOR).await;
    assert_eq!(res.status(), 404);
    assert!(res.headers().contains_key("x-request-id"));
    assert_eq!(
        res.headers()["content-type"].to_str().expect("ascii"),
        "application/problem+json"
    );
}

#[tokio::test]
async fn out_of_scope_tickets_go_back_to_the_sender_and_unsure_ones_to_triage() {
    let redis = RedisServer::start();
    let app = TestApp::spawn(&redis).await;
    let mut lamp = ticket("O-1");
    lamp["title"] = json!("路灯不亮");
    lamp["text"] = json!("东关村路口的路灯坏了一个多月了，晚上很黑，希望有关部门尽快维修路灯。");
    lamp["people_involved"] = Value::Null;
    let v: Value = app
        .post("/v1/tickets", PARTNER, &lamp)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(v["classification"]["service"], "out_of_scope", "{v}");
    assert_eq!(v["status"], "returned");
    assert!(v["queue"].is_null());

    let mut vague = ticket("O-2");
    vague["title"] = json!("");
    vague["text"] = json!("嗯，你好。");
    vague["people_involved"] = Value::Null;
    let v: Value = app
        .post("/v1/tickets", PARTNER, &vague)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(v["classification"]["service"], "triage", "{v}");
    assert_eq!(v["queue"], "triage.320831");
}

#[tokio::test]
async fn a_caller_who_keeps_calling_is_raised_a_level() {
    let redis = RedisServer::start();
    let app = TestApp::spawn(&redis).await;
    let mut levels = Vec::new();
    let mut last = Value::Null;
    for i in 0..3 {
        let mut t = ticket(&format!("RC-{i}"));
        // Different matters, one caller: the repeat-call rule counts calls, not categories.
        t["people_involved"] = json!(1);
        let v: Value = app
            .post("/v1/tickets", PARTNER, &t)
            .await
            .json()
            .await
            .expect("json");
        levels.push(v["classification"]["warning_level"].clone());
        last = v;
    }
    // The default lexicon raises a caller's third call within the window to yellow.
    assert_eq!(levels[0], "none", "{levels:?}");
    assert_eq!(levels[2], "yellow", "{levels:?}");
    let reasons = last["classification"]["reasons"].to_string();
    assert!(reasons.contains("已来电2次"), "{reasons}");
    // Another caller is not.
    let mut other = ticket("RC-other");
    other["caller"]["phone"] = json!("13900001111");
    let v: Value = app
        .post("/v1/tickets", PARTNER, &other)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(v["classification"]["warning_level"], "none");
}

/// POSTs a raw JSON body to `path` with a bearer token; (status, JSON answer).
async fn raw_json(app: &TestApp, path: &str, token: &str, body: String) -> (u16, Value) {
    let res = app
        .http
        .post(format!("{}{path}", app.base))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("sent");
    support::status_and_json(res).await
}

#[tokio::test]
async fn anything_but_whitespace_after_the_json_body_is_malformed() {
    let redis = RedisServer::start();
    let app = TestApp::spawn(&redis).await;
    let (a, b) = (ticket("T-1").to_string(), ticket("T-2").to_string());

    // Two tickets in one body: neither is registered, the sender learns why.
    for (name, body) in [
        ("two tickets", format!("{a}{b}")),
        ("two tickets, a newline between", format!("{a}\n{b}")),
        ("a stray brace", format!("{a}}}")),
        ("a trailing word", format!("{a} x")),
    ] {
        let (status, problem) = raw_json(&app, "/v1/tickets", PARTNER, body).await;
        assert_eq!(status, 400, "{name}: {problem}");
        assert_eq!(problem["type"], "/problems/malformed-request", "{name}");
    }
    let keys: Vec<String> = redis.conn().keys("hl:{320831}:t:*").expect("keys");
    assert!(
        keys.is_empty(),
        "registered despite trailing data: {keys:?}"
    );

    // A batch followed by another value.
    let batch = json!({"tickets": [ticket("T-3")]}).to_string();
    let (status, problem) = raw_json(
        &app,
        "/v1/tickets:batch",
        PARTNER,
        format!("{batch}{batch}"),
    )
    .await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["type"], "/problems/malformed-request");

    // Trailing whitespace is not data.
    let (status, v) = raw_json(&app, "/v1/tickets", PARTNER, format!("{a}\r\n\t ")).await;
    assert_eq!(status, 201, "{v}");
    let id = v["id"].as_str().expect("id").to_string();

    // An action's body goes through the same parser.
    let (status, problem) = raw_json(
        &app,
        &format!("/v1/tickets/{id}/note"),
        SUPERVISOR,
        r#"{"note":"一"}{"note":"二"}"#.into(),
    )
    .await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["type"], "/problems/malformed-request");
    let (status, v) = raw_json(
        &app,
        &format!("/v1/tickets/{id}/note"),
        SUPERVISOR,
        "{\"note\":\"一\"}\n".into(),
    )
    .await;
    assert_eq!(status, 200, "{v}");
}

#[tokio::test]
async fn a_slash_in_town_village_or_grid_is_refused_naming_the_field() {
    let redis = RedisServer::start();
    let app = TestApp::spawn(&redis).await;
    for field in ["town", "village", "grid"] {
        let mut t = ticket(&format!("R-{field}"));
        // "城关镇/东关村" as a town would put the ticket one level too deep in the region path.
        t["region"][field] = json!("城关镇/东关村");
        let (status, problem) =
            support::status_and_json(app.post("/v1/tickets", PARTNER, &t).await).await;
        assert_eq!(status, 422, "{field}: {problem}");
        assert_eq!(problem["type"], "/problems/validation-error", "{field}");
        assert_eq!(fields(&problem), [format!("region.{field}")], "{problem}");
    }
    // In a batch, the item fails alone and names its index.
    let mut bad = ticket("R-batch");
    bad["region"]["grid"] = json!("a/b");
    let res = app
        .post("/v1/tickets:batch", PARTNER, &json!({"tickets": [bad]}))
        .await;
    let v: Value = res.json().await.expect("json");
    assert_eq!(v["results"][0]["status"], 422, "{v}");
    assert_eq!(
        fields(&v["results"][0]["problem"]),
        ["tickets[0].region.grid"]
    );
    let keys: Vec<String> = redis.conn().keys("hl:{320831}:t:*").expect("keys");
    assert!(keys.is_empty(), "{keys:?}");
}

/// Issue #16: any 6-digit code used to create a county (its keys, queues, stream and timers).
/// A county outside `[counties]` is refused with 422 naming the field, wherever a county is
/// named: a ticket, a batch item, a move's target and an agent's home county; and nothing of
/// that county reaches Redis.
#[tokio::test]
async fn a_county_outside_the_deployment_is_refused_with_422_naming_the_field() {
    let redis = RedisServer::start();
    let app = TestApp::spawn(&redis).await;
    let mut unknown = ticket("U-1");
    unknown["region"]["code"] = json!("440300");
    let res = app.post("/v1/tickets", PARTNER, &unknown).await;
    assert_eq!(res.status(), 422);
    let problem: Value = res.json().await.expect("json");
    assert_eq!(fields(&problem), ["region.code"], "{problem}");

    let body = json!({"tickets": [ticket("U-2"), unknown]});
    let v: Value = app
        .post("/v1/tickets:batch", PARTNER, &body)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(v["results"][0]["status"], 201, "{v}");
    assert_eq!(v["results"][1]["status"], 422, "{v}");
    assert_eq!(
        fields(&v["results"][1]["problem"]),
        ["tickets[1].region.code"]
    );

    let id = v["results"][0]["ticket"]["id"].as_str().expect("id");
    let (status, problem) = support::act(
        &app,
        id,
        "transfer",
        SUPERVISOR,
        json!({"region_code": "440300", "reason": "事发地在外县"}),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(fields(&problem), ["region_code"], "{problem}");

    let res = app
        .put(
            "/v1/agents/m-440300",
            support::ADMIN,
            &json!({"name": "调解员", "kind": "mediator", "regions": ["440300/粤海街道"],
                    "tier": "town", "capacity": 3, "status": "available"}),
        )
        .await;
    assert_eq!(res.status(), 422);
    let problem: Value = res.json().await.expect("json");
    assert_eq!(fields(&problem), ["regions[0]"], "{problem}");

    let mut conn = redis.conn();
    let keys: Vec<String> = conn.keys("hl:{440300}*").expect("keys");
    assert!(keys.is_empty(), "keys of a refused county: {keys:?}");
    let counties: Vec<String> = conn.smembers("hl:counties").expect("smembers");
    assert!(!counties.contains(&"440300".to_string()), "{counties:?}");
}
