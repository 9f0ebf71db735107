//! Queue state, metrics, readiness and the OpenAPI document, as supervisors and operators see
//! them.

mod support;

use serde_json::{Value, json};
use support::{
    ADMIN, GatewayProcess, PARTNER, RedisServer, SUPERVISOR, TestApp, free_port, test_config,
    ticket,
};

fn queue<'a>(queues: &'a Value, name: &str) -> &'a Value {
    queues["queues"]
        .as_array()
        .and_then(|qs| qs.iter().find(|q| q["name"] == name))
        .unwrap_or_else(|| panic!("no queue {name} in {queues}"))
}

#[tokio::test]
async fn queues_report_depth_by_level_and_the_oldest_wait_and_two_gateways_agree() {
    let redis = RedisServer::start();
    let a = TestApp::spawn(&redis).await;
    let b = TestApp::spawn(&redis).await;

    assert_eq!(
        a.post("/v1/tickets", PARTNER, &ticket("Q-1"))
            .await
            .status(),
        201
    );
    let mut threat = ticket("Q-2");
    threat["text"] =
        json!("老板拖欠工资三个月，工人说再不给钱就拿刀砍人，双方吵起来了，请调解员赶快协调。");
    let v: Value = b
        .post("/v1/tickets", PARTNER, &threat)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(v["classification"]["warning_level"], "red", "{v}");
    assert_eq!(v["queue"], "mediation.320831.labour");

    let seen_by_a: Value = a
        .get("/v1/queues", SUPERVISOR)
        .await
        .json()
        .await
        .expect("json");
    let seen_by_b: Value = b
        .get("/v1/queues", SUPERVISOR)
        .await
        .json()
        .await
        .expect("json");
    let qa = queue(&seen_by_a, "mediation.320831.labour");
    let qb = queue(&seen_by_b, "mediation.320831.labour");
    assert_eq!(qa["depth"], 2);
    assert_eq!(qa["kind"], "mediation");
    assert_eq!(qa["depth"], qb["depth"]);
    assert_eq!(qa["depth_by_level"], qb["depth_by_level"]);
    assert_eq!(
        qa["depth_by_level"],
        json!([
            {"level": "orange", "depth": 0},
            {"level": "red", "depth": 1},
            {"level": "yellow", "depth": 0},
            {"level": "none", "depth": 1}
        ])
    );
    assert!(qa["oldest_age_seconds"].as_f64().expect("age") >= 0.0);

    // The red ticket is ahead of the older one in the ready queue.
    let order: Vec<String> = redis::cmd("ZRANGE")
        .arg("hl:{320831}:q:mediation.320831.labour")
        .arg(0)
        .arg(-1)
        .query(&mut redis.conn())
        .expect("zrange");
    assert_eq!(order.first().map(String::as_str), v["id"].as_str());
}

#[tokio::test]
async fn metrics_carry_received_tickets_classifications_latency_and_queue_gauges() {
    let redis = RedisServer::start();
    let app = TestApp::spawn(&redis).await;
    assert_eq!(
        app.post("/v1/tickets", PARTNER, &ticket("M-1"))
            .await
            .status(),
        201
    );
    assert_eq!(
        app.post("/v1/tickets", PARTNER, &ticket("M-1"))
            .await
            .status(),
        200
    );
    let res = app.get("/metrics", "").await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.expect("text");
    for needle in [
        r#"hotline_tickets_received_total{source="12345",channel="phone",outcome="created"}"#,
        r#"hotline_tickets_received_total{source="12345",channel="phone",outcome="duplicate"}"#,
        r#"hotline_classifications_total{service="mediation",category="labour",warning_level="none"}"#,
        r#"hotline_queue_depth{queue="mediation.320831.labour",level="none"} 1"#,
        r#"hotline_queue_oldest_age_seconds{queue="mediation.320831.labour"}"#,
        r#"hotline_http_request_duration_seconds_bucket{route="/v1/tickets",method="POST",status="201""#,
        "hotline_classification_confidence_bucket",
        "hotline_redis_up 1",
    ] {
        assert!(text.contains(needle), "missing {needle}");
    }
    // Labels never carry ticket ids or phone numbers.
    assert!(!text.contains("320831-0"));
    assert!(!text.contains("13812348000"));
}

#[tokio::test]
async fn the_openapi_document_lists_every_endpoint() {
    let redis = RedisServer::start();
    let app = TestApp::spawn(&redis).await;
    let doc: Value = app
        .get("/openapi.json", "")
        .await
        .json()
        .await
        .expect("json");
    for path in [
        "/v1/tickets",
        "/v1/tickets:batch",
        "/v1/tickets/{id}",
        "/v1/queues",
        "/metrics",
        "/healthz",
        "/readyz",
        "/openapi.json",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from OpenAPI"
        );
    }
    let post = &doc["paths"]["/v1/tickets"]["post"];
    for status in [
        "200", "201", "400", "401", "403", "409", "413", "422", "503",
    ] {
        assert!(
            post["responses"][status].is_object(),
            "POST /v1/tickets lacks {status}"
        );
    }
    assert!(doc["components"]["schemas"]["TicketRequest"].is_object());
    assert!(doc["components"]["schemas"]["Problem"].is_object());
}

#[tokio::test]
async fn start_up_warns_when_redis_may_evict_or_forget_tickets() {
    // A Redis that evicts keys and persists nothing.
    let port = free_port();
    let mut careless = std::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(["--maxmemory-policy", "allkeys-lru"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server");
    let url = format!("redis://127.0.0.1:{port}/0");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("gw.toml");
    std::fs::write(&config, test_config(&url, "")).expect("write");
    let log = dir.path().join("gw.log");
    let mut gw = GatewayProcess::start(&config, free_port(), log.clone());
    assert!(gw.terminate().success());
    let _ = careless.kill();
    let _ = careless.wait();
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        text.contains("maxmemory-policy is not noeviction"),
        "{text}"
    );
    assert!(text.contains("persistence is off"), "{text}");
}

#[tokio::test]
async fn a_bad_configuration_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "[[auth.tokens]]\nname = \"x\"\nrole = \"partner\"\nsha256 = \"not-a-digest\"\n",
    )
    .expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hotline-gateway"))
        .args(["check-config", "--config"])
        .arg(&config)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("auth.tokens[0].sha256"), "{stderr}");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hotline-gateway"))
        .args(["serve"])
        .env("HOTLINE__CLASSIFY__TRIAGE_BELOW", "2")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("classify.triage_below"), "{stderr}");
}

/// The shipped defaults list no county (a city lists its own): `check-config` and `serve` say
/// so, naming `counties` and what to write, and a token region that covers no configured county
/// is a start-up error naming the token's key.
#[tokio::test]
async fn a_deployment_without_counties_or_with_a_region_outside_them_does_not_start() {
    let run = |args: &[&str], config: Option<&std::path::Path>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hotline-gateway"));
        cmd.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        cmd.output().expect("runs")
    };
    // (`serve` runs the same check first; it is not started here, since before the check it
    // would serve for ever.)
    let out = run(&["check-config"], None);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`counties`") && stderr.contains("no county is configured"),
        "{stderr}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("city.toml");
    std::fs::write(
        &config,
        "[counties]\n\"320324\" = \"睢宁县\"\n\n[[auth.tokens]]\nname = \"x\"\nrole = \"operator\"\n\
         sha256 = \"0fb37a98525f4d9706d8bae16cc491ee70727e26131e6cd1de823eeab084ae16\"\n\
         regions = [\"3208\"]\n",
    )
    .expect("write");
    let out = run(&["check-config"], Some(&config));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("auth.tokens[0].regions[0]"), "{stderr}");
    std::fs::write(&config, "[counties]\n\"320324\" = \"睢宁县\"\n").expect("write");
    let out = run(&["check-config"], Some(&config));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn the_api_speaks_http2_as_well_as_http1() {
    let redis = RedisServer::start();
    let app = TestApp::spawn(&redis).await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    let res = h2
        .post(format!("{}/v1/tickets", app.base))
        .bearer_auth(PARTNER)
        .json(&ticket("H2-1"))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.version(), reqwest::Version::HTTP_2);
    assert_eq!(res.status(), 201);
}

#[test]
fn the_grafana_dashboard_plots_only_documented_metrics() {
    let root = env!("CARGO_MANIFEST_DIR");
    let dash: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{root}/dashboards/grafana-hotline-gateway.json"))
            .expect("read"),
    )
    .expect("valid JSON");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).expect("readme");
    let mut names = Vec::new();
    for panel in dash["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if let Some(base) = word.strip_prefix("hotline_") {
                    let base = ["_bucket", "_count", "_sum"]
                        .iter()
                        .fold(base.to_string(), |b, s| {
                            b.strip_suffix(s).map(String::from).unwrap_or(b)
                        });
                    names.push(format!("hotline_{base}"));
                }
            }
        }
    }
    assert!(names.len() > 10);
    for name in names {
        assert!(
            readme.contains(&format!("`{name}`")),
            "{name} is not documented in README.md"
        );
    }
}

/// On SIGTERM the gateway is no longer ready, open Server-Sent Event streams end (their
/// clients reconnect elsewhere with `Last-Event-ID`), and it stops without waiting out the
/// grace period for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_event_streams_instead_of_waiting_out_the_grace_period() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("gw.toml");
    std::fs::write(&config, test_config(&redis.url(), "")).expect("write");
    let log = dir.path().join("gw.log");
    let port = free_port();
    let mut gw = GatewayProcess::start(&config, port, log.clone());
    let http = reqwest::Client::new();
    let mut events = http
        .get(format!("http://127.0.0.1:{port}/v1/events"))
        .bearer_auth(SUPERVISOR)
        .send()
        .await
        .expect("stream opened");
    assert_eq!(events.status(), 200);
    let status = tokio::task::spawn_blocking(move || gw.terminate())
        .await
        .expect("joined");
    assert!(status.success(), "exit: {status}");
    // The stream ended cleanly: its body reached its end instead of being cut.
    let mut ended = false;
    for _ in 0..1000 {
        match events.chunk().await {
            Ok(Some(_)) => continue,
            Ok(None) => {
                ended = true;
                break;
            }
            Err(_) => break,
        }
    }
    assert!(ended, "the event stream was cut, not ended");
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        !text.contains("grace period over"),
        "shutdown waited out the grace period for an open stream:\n{text}"
    );
    assert!(text.contains("shutting down"), "{text}");
}

/// Every series `/metrics` exports says what it measures: a `# HELP` line for each `# TYPE`.
#[tokio::test]
async fn every_exported_series_has_help() {
    let redis = RedisServer::start();
    let app = TestApp::spawn(&redis).await;
    assert_eq!(
        app.post("/v1/tickets", PARTNER, &ticket("HELP-1"))
            .await
            .status(),
        201
    );
    let agent = json!({"name": "李律师", "kind": "mediator", "regions": ["320831"],
        "tier": "county", "capacity": 3, "status": "available"});
    assert_eq!(
        app.put("/v1/agents/m-help", ADMIN, &agent).await.status(),
        200
    );
    assert_eq!(app.get("/v1/queues", "not-a-token").await.status(), 401);
    let text = app.get("/metrics", "").await.text().await.expect("text");
    let helped: std::collections::HashSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# HELP "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let missing: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .filter(|name| !helped.contains(name))
        .collect();
    assert!(missing.is_empty(), "series without HELP: {missing:?}");
    app.stop().await;
}

/// A reload changes every county, so an admin limited to some regions may not start one; and
/// one runs at a time: a second request while the first recomputes is told so (409).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_needs_an_unrestricted_admin_and_runs_once_at_a_time() {
    let redis = RedisServer::start();
    let limited = format!(
        "\n[[auth.tokens]]\nname = \"admin-3208\"\nrole = \"admin\"\nsha256 = \"{}\"\nregions = [\"3208\"]\n",
        hotline_gateway::auth::digest_hex("t-admin-3208")
    );
    let app = TestApp::spawn_with(&redis, &limited).await;
    let res = app
        .post("/v1/admin/reload", "t-admin-3208", &json!({}))
        .await;
    assert_eq!(
        res.status(),
        403,
        "{}",
        res.text().await.unwrap_or_default()
    );

    // Enough open tickets that recomputing them takes a while.
    for batch in 0..20 {
        let tickets: Vec<Value> = (0..100)
            .map(|i| ticket(&format!("RL-{batch}-{i}")))
            .collect();
        let res = app
            .post("/v1/tickets:batch", PARTNER, &json!({"tickets": tickets}))
            .await;
        assert_eq!(res.status(), 200);
    }
    let first = {
        let http = app.http.clone();
        let url = format!("{}/v1/admin/reload", app.base);
        tokio::spawn(async move {
            http.post(url)
                .bearer_auth(support::ADMIN)
                .json(&json!({}))
                .send()
                .await
                .expect("sent")
                .status()
                .as_u16()
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let second = app.post("/v1/admin/reload", ADMIN, &json!({})).await;
    let second_status = second.status().as_u16();
    let body: Value = second.json().await.expect("json");
    assert_eq!(second_status, 409, "{body}");
    assert_eq!(first.await.expect("joined"), 200);
    // Once it has finished, the next one runs.
    assert_eq!(
        app.post("/v1/admin/reload", ADMIN, &json!({}))
            .await
            .status(),
        200
    );
    app.stop().await;
}
