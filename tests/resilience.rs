//! Nothing acknowledged is lost, nothing is half-written: the gateway and Redis are killed,
//! stopped and flushed under it.

mod support;

use std::time::{Duration, Instant};

use redis::Commands;
use serde_json::{Value, json};
use support::{
    ADMIN, GatewayProcess, PARTNER, RedisServer, SUPERVISOR, TestApp, act, create_ticket,
    free_port, test_config, test_config_with_redis, ticket,
};

const QUEUE: &str = "hl:{320831}:q:mediation.320831.labour";

fn write_config(dir: &tempfile::TempDir, toml: &str) -> std::path::PathBuf {
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, toml).expect("write config");
    path
}

fn blocking_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        // The gateway is restarted on the same port: never reuse a connection to a dead one.
        .pool_max_idle_per_host(0)
        .build()
        .expect("client")
}

#[tokio::test]
async fn kill_9_of_the_gateway_right_after_a_201_loses_nothing() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(&dir, &test_config(&redis.url(), ""));
    let port = free_port();
    let mut gw = GatewayProcess::start(&config, port, dir.path().join("gw1.log"));
    let http = blocking_client();

    let res = http
        .post(format!("{}/v1/tickets", gw.base))
        .bearer_auth(PARTNER)
        .json(&ticket("K-1"))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_string();
    gw.kill9();

    // The ticket is in Redis, in its queue, whatever happened to the gateway.
    let score: Option<f64> = redis.conn().zscore(QUEUE, &id).expect("zscore");
    assert!(score.is_some());

    // A new gateway serves it, and a partner's retry finds it instead of making a second one.
    let gw2 = GatewayProcess::start(&config, port, dir.path().join("gw2.log"));
    let view = http
        .get(format!("{}/v1/tickets/{id}", gw2.base))
        .bearer_auth(SUPERVISOR)
        .send()
        .await
        .expect("sent");
    assert_eq!(view.status(), 200);
    let retry = http
        .post(format!("{}/v1/tickets", gw2.base))
        .bearer_auth(PARTNER)
        .json(&ticket("K-1"))
        .send()
        .await
        .expect("sent");
    assert_eq!(retry.status(), 200);
    assert_eq!(
        retry.json::<Value>().await.expect("json")["id"],
        id.as_str()
    );
}

#[tokio::test]
async fn kill_9_of_redis_after_a_201_loses_nothing_thanks_to_the_aof() {
    let mut redis = RedisServer::start();
    let app = TestApp::spawn(&redis).await;
    let mut ids = Vec::new();
    for i in 0..20 {
        let res = app
            .post("/v1/tickets", PARTNER, &ticket(&format!("R-{i}")))
            .await;
        assert_eq!(res.status(), 201);
        ids.push(res.json::<Value>().await.expect("json")["id"].clone());
    }
    redis.kill();
    redis.restart();
    let depth: usize = redis.conn().zcard(QUEUE).expect("zcard");
    assert_eq!(depth, 20);
    // The gateway reconnects by itself and still knows every ticket.
    let id = ids[19].as_str().expect("id");
    let mut status = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        status = app
            .get(&format!("/v1/tickets/{id}"), SUPERVISOR)
            .await
            .status()
            .as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200);
}

#[tokio::test]
async fn while_redis_is_stopped_requests_get_503_and_once_it_is_back_they_are_accepted() {
    let mut redis = RedisServer::start();
    let app = TestApp::spawn(&redis).await;
    assert_eq!(
        app.post("/v1/tickets", PARTNER, &ticket("U-0"))
            .await
            .status(),
        201
    );

    redis.kill();
    let res = app.post("/v1/tickets", PARTNER, &ticket("U-1")).await;
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "3");
    assert_eq!(
        res.headers()["content-type"].to_str().expect("ascii"),
        "application/problem+json"
    );
    assert_eq!(app.get("/readyz", "").await.status(), 503);
    assert_eq!(app.get("/healthz", "").await.status(), 200);
    assert_eq!(app.get("/v1/queues", SUPERVISOR).await.status(), 503);

    redis.restart();
    // Nothing of U-1 was written.
    let mut conn = redis.conn();
    let idem: Option<String> = conn
        .get("hl:{320831}:idem:p.partner-12345:12345:U-1")
        .expect("get");
    assert_eq!(idem, None);
    assert_eq!(conn.zcard::<_, usize>(QUEUE).expect("zcard"), 1);

    let mut status = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        status = app
            .post("/v1/tickets", PARTNER, &ticket("U-1"))
            .await
            .status()
            .as_u16();
        if status == 201 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 201);
    assert_eq!(app.get("/readyz", "").await.status(), 200);
    assert_eq!(conn.zcard::<_, usize>(QUEUE).expect("zcard"), 2);
}

#[tokio::test]
async fn scripts_survive_script_flush() {
    let redis = RedisServer::start();
    let app = TestApp::spawn(&redis).await;
    assert_eq!(
        app.post("/v1/tickets", PARTNER, &ticket("F-1"))
            .await
            .status(),
        201
    );
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query(&mut redis.conn())
        .expect("flush");
    assert_eq!(
        app.post("/v1/tickets", PARTNER, &ticket("F-2"))
            .await
            .status(),
        201
    );
    assert_eq!(app.get("/v1/queues", SUPERVISOR).await.status(), 200);
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query(&mut redis.conn())
        .expect("flush");
    assert_eq!(app.get("/readyz", "").await.status(), 200);
}

#[tokio::test]
async fn without_redis_url_the_gateway_starts_its_own_redis_and_stops_it_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let redis_port = free_port();
    let data = dir.path().join("redis-data");
    // No redis.url: the gateway must start redis-server itself, here on a free port.
    let toml = test_config_with_redis(
        &format!(
            "local = {{ binary = \"redis-server\", port = {redis_port}, dir = \"{}\", appendfsync = \"always\" }}",
            data.display()
        ),
        "",
    );
    let config = write_config(&dir, &toml);
    let port = free_port();
    let http = blocking_client();

    let mut gw = GatewayProcess::start(&config, port, dir.path().join("gw1.log"));
    let res = http
        .post(format!("{}/v1/tickets", gw.base))
        .bearer_auth(PARTNER)
        .json(&ticket("L-1"))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let status = gw.terminate();
    assert!(status.success(), "gateway exit status {status}");
    assert!(data.join("appendonlydir").exists(), "AOF was not written");
    // Its Redis went with it.
    assert!(std::net::TcpStream::connect(("127.0.0.1", redis_port)).is_err());

    // Started again, it finds the ticket from the AOF.
    let gw2 = GatewayProcess::start(&config, port, dir.path().join("gw2.log"));
    let view = http
        .get(format!("{}/v1/tickets/{id}", gw2.base))
        .bearer_auth(SUPERVISOR)
        .send()
        .await
        .expect("sent");
    assert_eq!(view.status(), 200);
}

#[tokio::test]
async fn personal_data_and_tokens_never_reach_the_logs() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(&dir, &test_config(&redis.url(), ""));
    let log = dir.path().join("gw.log");
    let mut gw = GatewayProcess::start(&config, free_port(), log.clone());
    let http = blocking_client();
    let mut body = ticket("P-1");
    body["caller"]["phone"] = serde_json::json!("13912345678");
    body["caller"]["name"] = serde_json::json!("欧阳明月");
    let res = http
        .post(format!("{}/v1/tickets", gw.base))
        .bearer_auth(PARTNER)
        .json(&body)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_string();
    // An error path too.
    body["region"]["code"] = serde_json::json!("bad");
    let _ = http
        .post(format!("{}/v1/tickets", gw.base))
        .bearer_auth(PARTNER)
        .json(&body)
        .send()
        .await;
    assert!(gw.terminate().success());

    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        text.contains(&id),
        "the log should carry the ticket id:\n{text}"
    );
    for secret in ["13912345678", "欧阳明月", "明月", PARTNER] {
        assert!(!text.contains(secret), "`{secret}` leaked into the log");
    }
    assert!(
        text.contains("139****5678"),
        "masked phone expected in the log"
    );
    // Every log line is JSON in production format.
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    }
}

#[tokio::test]
async fn sigterm_lets_a_request_in_flight_finish() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(&dir, &test_config(&redis.url(), ""));
    let mut gw = GatewayProcess::start(&config, free_port(), dir.path().join("gw.log"));
    let http = blocking_client();
    // A batch of 100 keeps the server busy while SIGTERM arrives.
    let batch = serde_json::json!({
        "tickets": (0..100).map(|i| ticket(&format!("T-{i}"))).collect::<Vec<_>>()
    });
    let url = format!("{}/v1/tickets:batch", gw.base);
    let send = tokio::spawn({
        let http = http.clone();
        async move {
            http.post(url)
                .bearer_auth(PARTNER)
                .json(&batch)
                .send()
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(5)).await;
    let status = gw.terminate();
    assert!(status.success(), "exit {status}");
    let depth: usize = redis.conn().zcard(QUEUE).expect("zcard");
    match send.await.expect("task") {
        // Accepted before the signal: all of it is in, answered in full.
        Ok(res) => {
            assert_eq!(res.status(), 200);
            let v: Value = res.json().await.expect("a complete body");
            assert_eq!(v["results"].as_array().map(Vec::len), Some(100));
            assert_eq!(depth, 100);
        }
        // Refused at the door: nothing of it is in.
        Err(_) => assert_eq!(depth, 0),
    }
}

/// A gateway over its own Redis, with one ticket (`external_id`) registered.
async fn one_ticket(external_id: &str) -> (RedisServer, TestApp) {
    let redis = RedisServer::start();
    let app = TestApp::spawn(&redis).await;
    assert_eq!(
        app.post("/v1/tickets", PARTNER, &ticket(external_id))
            .await
            .status(),
        201
    );
    (redis, app)
}

/// A full Redis (`noeviction`) refuses writes: every write answers `503` naming that cause (no
/// `500`), readiness fails and says why, and a metric counts the refusals; once Redis has room
/// again everything works.
#[tokio::test]
async fn a_full_redis_is_named_as_the_cause_and_makes_the_gateway_unready() {
    let (redis, app) = one_ticket("OOM-0").await;
    let mut conn = redis.conn();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("1")
        .query(&mut conn)
        .expect("config set");

    let res = app.post("/v1/tickets", PARTNER, &ticket("OOM-1")).await;
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.expect("json");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("out of memory"), "{body}");
    assert!(detail.contains("nothing was written"), "{body}");

    let agent = json!({"name": "李律师", "kind": "lawyer", "regions": ["320831"],
        "tier": "county", "capacity": 3, "status": "available"});
    let res = app.put("/v1/agents/l-oom", ADMIN, &agent).await;
    assert_eq!(
        res.status(),
        503,
        "{}",
        res.text().await.unwrap_or_default()
    );

    let res = app.get("/readyz", "").await;
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.expect("json");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("out of memory"),
        "{body}"
    );
    let metrics = app.get("/metrics", "").await.text().await.expect("text");
    assert!(
        metrics.contains("hotline_redis_write_refusals_total"),
        "no refusal metric"
    );

    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("0")
        .query(&mut conn)
        .expect("config set");
    assert_eq!(app.get("/readyz", "").await.status(), 200);
    assert_eq!(
        app.post("/v1/tickets", PARTNER, &ticket("OOM-1"))
            .await
            .status(),
        201
    );
    app.stop().await;
}

/// When Redis stalls, the gateway cannot know whether a ticket it sent was stored: the `503`
/// says it may have been and to retry with the same `external_id`, never "nothing was
/// written"; and the retry after the stall finds the ticket if it was.
#[tokio::test]
async fn during_a_redis_stall_a_503_never_claims_that_nothing_was_written() {
    let (redis, app) = one_ticket("STALL-0").await;
    redis.pause();
    let res = app.post("/v1/tickets", PARTNER, &ticket("STALL-1")).await;
    redis.resume();
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.expect("json");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(!detail.contains("nothing was written"), "{body}");
    assert!(detail.contains("may have been"), "{body}");
    assert!(detail.contains("external_id"), "{body}");
    // The retry answers 201 or 200 (stored during the stall), never a second ticket.
    let mut status = 0;
    for _ in 0..50 {
        status = app
            .post("/v1/tickets", PARTNER, &ticket("STALL-1"))
            .await
            .status()
            .as_u16();
        if status == 201 || status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(status == 201 || status == 200, "{status}");
    let mut conn = redis.conn();
    assert_eq!(conn.zcard::<_, usize>(QUEUE).expect("zcard"), 2);
    app.stop().await;
}

/// The county registry (`hl:counties`) lost to a restore or a failover heals itself: a running
/// gateway writes back the counties it knows, and a gateway starting without any knowledge
/// rebuilds it from the counties' own keys; the county's queues, leases and timers are served
/// again without waiting for a new ticket.
#[tokio::test]
async fn a_lost_county_registry_heals_itself() {
    let (redis, app) = one_ticket("REG-1").await;
    let listed = |v: &Value| {
        v["queues"]
            .as_array()
            .is_some_and(|qs| qs.iter().any(|q| q["county"] == "320831"))
    };
    let queues: Value = app
        .get("/v1/queues", SUPERVISOR)
        .await
        .json()
        .await
        .expect("json");
    assert!(listed(&queues), "{queues}");
    let mut conn = redis.conn();
    let _: () = conn.del("hl:counties").expect("del");
    let mut healed = false;
    for _ in 0..200 {
        let queues: Value = app
            .get("/v1/queues", SUPERVISOR)
            .await
            .json()
            .await
            .expect("json");
        if listed(&queues) {
            healed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(healed, "a running gateway did not put the county back");
    app.stop().await;

    // A gateway that has never seen the county rebuilds the registry at start-up.
    let _: () = conn.del("hl:counties").expect("del");
    let app = TestApp::spawn(&redis).await;
    let mut rebuilt = false;
    for _ in 0..100 {
        let members: Vec<String> = conn.smembers("hl:counties").expect("smembers");
        if members.contains(&"320831".to_string()) {
            rebuilt = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(rebuilt, "a starting gateway did not rebuild the registry");
    app.stop().await;
}

/// Every request path answers within a bounded time while Redis is stalled, even under load:
/// each Redis command may wait `redis.response_timeout_ms` (4 s here), and a request that sends
/// several used to wait for each in turn (a ticket read took 10 s); now the request's whole
/// wait for Redis is bounded by `redis.request_budget_ms` (0.8 s here), after which it answers
/// `503` saying what is known.
#[tokio::test]
async fn during_a_redis_stall_under_load_every_request_answers_in_bounded_time() {
    let redis = RedisServer::start();
    let config = test_config(&redis.url(), "").replace(
        "response_timeout_ms = 1000",
        "response_timeout_ms = 4000\nrequest_budget_ms = 800",
    );
    let app = TestApp::spawn_from_config(&config).await;
    let id = create_ticket(&app, PARTNER, &ticket("BOUND-1")).await["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    redis.pause();
    // Load: intakes that pile up on the stalled connection while the probes run.
    let mut load = Vec::new();
    for i in 0..200 {
        let (http, url) = (app.http.clone(), format!("{}/v1/tickets", app.base));
        load.push(tokio::spawn(async move {
            let sent = Instant::now();
            let status = http
                .post(url)
                .bearer_auth(PARTNER)
                .json(&ticket(&format!("LOAD-{i}")))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0);
            (status, sent.elapsed())
        }));
    }
    let mut answers = Vec::new();
    for path in [
        format!("/v1/tickets/{id}"),
        format!("/v1/tickets/{id}/history"),
        "/v1/queues".to_string(),
        "/v1/agents".to_string(),
        "/v1/dashboard/today".to_string(),
    ] {
        let started = Instant::now();
        let status = app.get(&path, SUPERVISOR).await.status().as_u16();
        answers.push((path, status, started.elapsed()));
    }
    let started = Instant::now();
    let (status, _) = act(
        &app,
        &id,
        "escalate",
        SUPERVISOR,
        json!({"reason": "stall"}),
    )
    .await;
    answers.push(("escalate".into(), status, started.elapsed()));
    let mut intakes = Vec::new();
    for l in load {
        intakes.push(l.await.expect("load task"));
    }
    redis.resume();
    // 0.8 s of budget; the bound leaves room for a loaded 2-core CI machine but is far below
    // the 8 s that two commands' response timeouts add up to.
    let bound = Duration::from_secs(3);
    for (path, status, took) in &answers {
        assert_eq!(*status, 503, "{path}");
        assert!(took < &bound, "{path} took {took:?}");
    }
    for (status, took) in &intakes {
        assert_eq!(*status, 503);
        assert!(took < &bound, "an intake took {took:?}");
    }
    app.stop().await;
}
