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
    // The reload answers at once (202) and recomputes the open tickets in the background,
    // reporting its progress; a second reload meanwhile is refused.
    let first = app.post("/v1/admin/reload", ADMIN, &json!({})).await;
    assert_eq!(first.status(), 202);
    assert_eq!(
        first
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok()),
        Some("/v1/admin/reload")
    );
    let report: Value = first.json().await.expect("json");
    assert_eq!(report["recompute"]["state"], "running", "{report}");
    let second = app.post("/v1/admin/reload", ADMIN, &json!({})).await;
    let second_status = second.status().as_u16();
    let body: Value = second.json().await.expect("json");
    assert_eq!(second_status, 409, "{body}");
    // Its progress can be followed until every open ticket was looked at.
    let done = support::wait_for(
        std::time::Duration::from_secs(60),
        "the recomputation",
        || async {
            let progress: Value = app.get("/v1/admin/reload", ADMIN).await.json().await.ok()?;
            (progress["state"] != "running").then_some(progress)
        },
    )
    .await;
    assert_eq!(done["state"], "finished", "{done}");
    assert_eq!(done["total"], 2000, "{done}");
    assert_eq!(done["checked"], 2000, "{done}");
    assert_eq!(done["recomputed"], 2000, "{done}");
    // Once it has finished, the next one runs.
    let (_, again) = support::reload_and_wait(&app.base).await;
    assert_eq!(again["checked"], 2000, "{again}");
    app.stop().await;
}

/// The value of one exact series (name and labels as printed) in Prometheus text.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Every sample of Prometheus text: its name and its labels.
fn samples(text: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (name, rest) = match line.find('{') {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line.split(' ').next().unwrap_or_default(), ""),
        };
        let mut labels = Vec::new();
        let mut rest = rest;
        while let Some(eq) = rest.find("=\"") {
            let key = rest[..eq].trim_start_matches(',').to_string();
            let mut value = String::new();
            let mut chars = rest[eq + 2..].char_indices();
            let mut end = 0;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => {
                        end = eq + 2 + i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            labels.push((key, value));
            rest = &rest[end..];
            if rest.starts_with('}') {
                break;
            }
        }
        out.push((name.to_string(), labels));
    }
    out
}

/// A config whose Redis calls wait up to 10 s for an answer (a production-like patience), so
/// that a stalled Redis is not cut short by the tests' usual 1 s response timeout.
fn patient_config(redis: &RedisServer) -> String {
    let config = test_config(&redis.url(), "");
    assert!(config.contains("response_timeout_ms = 1000"));
    config.replace("response_timeout_ms = 1000", "response_timeout_ms = 10000")
}

/// Issue 16: with Redis stalled, `/metrics` took 12 s, past Prometheus' scrape timeout. It must
/// answer at once with what it last read, say how old that is, and report Redis down. The
/// issue asks for "within a second"; the assertion allows 2 s because CI is a loaded 2-core
/// machine shared with other builds (the gateway itself waits at most half a second).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_answer_at_once_while_redis_stalls_and_say_how_old_their_figures_are() {
    let redis = RedisServer::start();
    let app = TestApp::spawn_from_config(&patient_config(&redis)).await;
    let mut t = ticket("STALL-1");
    t["region"]["code"] = json!("320882");
    assert_eq!(app.post("/v1/tickets", PARTNER, &t).await.status(), 201);
    let depth = r#"hotline_queue_depth{queue="mediation.320882.labour",level="none"}"#;
    let scrape = || async {
        let started = std::time::Instant::now();
        let text = app
            .http
            .get(format!("{}/metrics", app.base))
            .timeout(std::time::Duration::from_secs(30))
            .send()
            .await
            .expect("/metrics answered within 30 s")
            .text()
            .await
            .expect("text");
        (started.elapsed(), text)
    };
    let (_, text) = scrape().await;
    assert_eq!(sample(&text, "hotline_redis_up"), Some(1.0), "{text}");
    assert_eq!(sample(&text, depth), Some(1.0), "{text}");
    let age = sample(&text, "hotline_redis_snapshot_age_seconds").expect("snapshot age");
    assert!(age < 5.0, "a fresh read is {age} s old");

    redis.pause();
    let (took, first) = scrape().await;
    assert!(
        took.as_secs_f64() < 2.0,
        "/metrics took {took:?} with Redis stalled"
    );
    assert_eq!(sample(&first, "hotline_redis_up"), Some(0.0), "{first}");
    assert_eq!(
        sample(&first, depth),
        Some(1.0),
        "what it last read: {first}"
    );
    let a = sample(&first, "hotline_redis_snapshot_age_seconds").expect("snapshot age");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (took, second) = scrape().await;
    assert!(
        took.as_secs_f64() < 2.0,
        "/metrics took {took:?} with Redis stalled"
    );
    let b = sample(&second, "hotline_redis_snapshot_age_seconds").expect("snapshot age");
    assert!(
        b >= a + 1.0,
        "the snapshot's age must grow while Redis stalls: {a} then {b}"
    );
    redis.resume();

    support::wait_for(
        std::time::Duration::from_secs(30),
        "Redis up again in /metrics",
        || async {
            let (_, text) = scrape().await;
            (sample(&text, "hotline_redis_up") == Some(1.0)
                && sample(&text, "hotline_redis_snapshot_age_seconds").is_some_and(|a| a < 5.0))
            .then_some(())
        },
    )
    .await;
    app.stop().await;
}

/// Issue 16: label values come from closed sets (queues, configured levels, windows, configured
/// names, code-defined enumerations); no series carries an agent id or a ticket id, whose sets
/// grow without bound. Per-agent figures stay in `GET /v1/agents`.
#[tokio::test]
async fn metric_labels_come_from_closed_sets_and_name_no_agent_or_ticket() {
    let redis = RedisServer::start();
    let app = TestApp::spawn_with(&redis, &support::agent_token("m-label")).await;
    support::put_agent(
        &app,
        "m-label",
        &json!({"name": "调解员", "kind": "mediator", "regions": ["320883"],
            "tier": "grid", "capacity": 5, "status": "available"}),
    )
    .await;
    let mut ids = Vec::new();
    for i in 0..2 {
        let mut t = ticket(&format!("LABEL-{i}"));
        t["region"]["code"] = json!("320883");
        t["caller"]["phone"] = json!(format!("1381234900{i}"));
        ids.push(
            support::create_ticket(&app, PARTNER, &t).await["id"]
                .as_str()
                .expect("id")
                .to_string(),
        );
    }
    assert!(support::claim(&app, "m-label").await.is_some());
    // Per-agent figures are still there for supervisors.
    let agents = support::agents_by_id(&app).await;
    assert_eq!(agents["m-label"]["active"], 1, "{agents:?}");

    let text = app.get("/metrics", "").await.text().await.expect("text");
    let levels = ["orange", "red", "yellow", "none"];
    let ident = |v: &str| {
        !v.is_empty()
            && v.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    let queue_name = |v: &str| {
        let parts: Vec<&str> = v.split('.').collect();
        parts.len() >= 2
            && ["legal", "mediation", "triage", "supervisor"].contains(&parts[0])
            && parts[1].len() == 6
            && parts[1].bytes().all(|b| b.is_ascii_digit())
            && parts[2..].iter().all(|p| ident(p))
    };
    let mut bad = Vec::new();
    for (name, labels) in samples(&text) {
        for (key, value) in &labels {
            let ok = match key.as_str() {
                "queue" => queue_name(value),
                "level" | "warning_level" => levels.contains(&value.as_str()),
                "window" => ["1h", "24h", "7d"].contains(&value.as_str()),
                "source" => ["12345", "110", "12348"].contains(&value.as_str()),
                "principal" => [
                    "partner-12345",
                    "operator-320831",
                    "supervisor",
                    "agent-1",
                    "admin",
                    "agent m-label",
                ]
                .contains(&value.as_str()),
                "method" => value.bytes().all(|b| b.is_ascii_uppercase()),
                "status" => value.len() == 3 && value.bytes().all(|b| b.is_ascii_digit()),
                "route" => value.starts_with('/'),
                "year" => value.len() == 4 && value.bytes().all(|b| b.is_ascii_digit()),
                "le" => value == "+Inf" || value.parse::<f64>().is_ok(),
                "partner" | "calendar" | "outcome" | "reason" | "event" | "clock" | "kind"
                | "op" | "action" | "service" | "category" | "channel" | "cause" | "answer" => {
                    ident(value)
                }
                _ => false,
            };
            let names_an_id = ids.iter().any(|id| value.contains(id.as_str()))
                || value.contains("m-label")
                || value == "agent-1";
            if !ok || names_an_id {
                bad.push(format!("{name} {key}={value:?}"));
            }
        }
    }
    assert!(bad.is_empty(), "labels outside closed sets: {bad:#?}");
    app.stop().await;
}

/// Issue 16: running totals are counters named `_total`, and nothing else is: every `_total`
/// series is `# TYPE … counter` and every counter ends in `_total`. The agents' resolved and
/// lapsed totals were exported as gauges; they are gone from `/metrics` (per agent they are in
/// `GET /v1/agents`; deployment-wide, resolutions are `hotline_queue_events_total`).
#[tokio::test]
async fn running_totals_are_counters_named_total() {
    let redis = RedisServer::start();
    let app = TestApp::spawn_with(&redis, &support::agent_token("m-count")).await;
    support::put_agent(
        &app,
        "m-count",
        &json!({"name": "调解员", "kind": "mediator", "regions": ["320884"],
            "tier": "grid", "capacity": 5, "status": "available"}),
    )
    .await;
    let mut t = ticket("COUNT-1");
    t["region"]["code"] = json!("320884");
    support::create_ticket(&app, PARTNER, &t).await;
    assert!(support::claim(&app, "m-count").await.is_some());
    let text = app.get("/metrics", "").await.text().await.expect("text");
    let types: std::collections::BTreeMap<&str, &str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .collect();
    for (name, kind) in &types {
        if *kind == "counter" {
            assert!(
                name.ends_with("_total"),
                "counter {name} is not named _total"
            );
        }
        if name.ends_with("_total") {
            assert_eq!(*kind, "counter", "{name} is a running total but a {kind}");
        }
    }
    for (name, _) in samples(&text) {
        if name.ends_with("_total") {
            assert_eq!(types.get(name.as_str()), Some(&"counter"), "{name}");
        }
    }
    for total in ["hotline_agent_handled", "hotline_agent_missed"] {
        assert!(
            !types.contains_key(total),
            "{total} is a running total exported as a {}",
            types[total]
        );
    }
    app.stop().await;
}

/// Every expression of the shipped Grafana dashboard.
fn grafana_expressions() -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("expr", Value::String(s)) => out.push(s.clone()),
                        _ => walk(v, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("dashboards/grafana-hotline-gateway.json");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("dashboard"))
        .expect("the Grafana dashboard is JSON");
    let mut out = Vec::new();
    walk(&json, &mut out);
    out
}

/// Issue 16: every replica reads the queue figures from Redis, so each exports the same
/// deployment-wide numbers; a panel that `sum`s them shows N times the depth with N gateways.
/// Every use of a deployment-wide series (the list in `src/metrics.rs`) must be taken with
/// `max` (or `min`) directly, and counters are only ever read through `rate`/`increase`.
#[test]
fn the_grafana_dashboard_never_sums_deployment_wide_series() {
    use hotline_gateway::metrics::DEPLOYMENT_WIDE;
    let exprs = grafana_expressions();
    assert!(exprs.len() > 10, "found {} expressions", exprs.len());
    let mut bad = Vec::new();
    for expr in &exprs {
        for series in DEPLOYMENT_WIDE {
            let mut from = 0;
            while let Some(at) = expr[from..].find(series).map(|i| i + from) {
                from = at + series.len();
                let next = expr[from..].chars().next();
                if next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                    continue; // a longer name
                }
                let before = expr[..at].trim_end();
                let Some(before) = before.strip_suffix('(') else {
                    bad.push(format!("{series} is not aggregated in: {expr}"));
                    continue;
                };
                let before = before.trim_end();
                let before = match before.rfind(" by") {
                    Some(i) if before.ends_with(')') => before[..i].trim_end(),
                    _ => before,
                };
                if !(before.ends_with("max") || before.ends_with("min")) {
                    bad.push(format!("{series} is not taken with max: {expr}"));
                }
            }
        }
        for (i, _) in expr.match_indices("_total") {
            let start = expr[..i]
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(0, |s| s + 1);
            let before = expr[..start].trim_end();
            if !(before.ends_with("rate(") || before.ends_with("increase(")) {
                bad.push(format!(
                    "counter {} read without rate(): {expr}",
                    &expr[start..i + 6]
                ));
            }
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
}

/// One queue as `GET /v1/queues` shows it to the supervisor now.
async fn queue_now(app: &TestApp, name: &str) -> Value {
    let v: Value = app
        .get("/v1/queues", SUPERVISOR)
        .await
        .json()
        .await
        .expect("json");
    queue(&v, name).clone()
}

/// Issue 16: the 24-hour SLA compliance counted only stopped clocks, so while a clock ran past
/// its deadline the figure was "—". A clock breached and still running counts as breached. And
/// a breach raises the ticket one priority band but leaves its warning level: `depth_by_level`
/// reports the ticket's own level, `depth_by_band` the band it waits in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_breaches_count_against_compliance_and_bands_are_not_levels() {
    let redis = RedisServer::start();
    let fast = r#"
[sla]
mover_max_sleep_ms = 100

[[sla.policies]]
name = "drill"
accept = { seconds = 1 }
on_breach = ["raise_band", "notify"]

[[sla.policies]]
name = "the rest"
first_contact = { hours = 1 }
resolve = { hours = 1 }
follow_up = { hours = 1 }
"#;
    let app = TestApp::spawn_with(&redis, fast).await;
    let mut t = ticket("BREACH-1");
    t["region"]["code"] = json!("320885");
    let receipt = support::create_ticket(&app, PARTNER, &t).await;
    let q = "mediation.320885.labour";
    let before = queue_now(&app, q).await;
    let level = before["depth_by_level"]
        .as_array()
        .expect("depth_by_level")
        .iter()
        .find(|l| l["depth"] == 1)
        .unwrap_or_else(|| panic!("no level holds the ticket: {before}"))["level"]
        .clone();
    let band = |q: &Value| {
        q["depth_by_band"]
            .as_array()
            .unwrap_or_else(|| panic!("no depth_by_band: {q}"))
            .iter()
            .find(|b| b["depth"] == 1)
            .map(|b| b["band"].as_u64().expect("band"))
    };
    let first_band = band(&before).expect("the ticket's band");
    assert!(first_band > 0, "{before}");
    let after = support::wait_for(
        std::time::Duration::from_secs(30),
        "the accept clock to breach and raise the band",
        || async {
            let q = queue_now(&app, q).await;
            (band(&q) == Some(first_band - 1)).then_some(q)
        },
    )
    .await;
    let by_level = after["depth_by_level"].as_array().expect("depth_by_level");
    for l in by_level {
        let want = u64::from(l["level"] == level);
        assert_eq!(l["depth"], want, "the ticket's level is {level}: {after}");
    }
    let day = after["sla"]
        .as_array()
        .expect("sla")
        .iter()
        .find(|w| w["window"] == "24h")
        .expect("24h window")
        .clone();
    assert_eq!(day["compliance"], json!(0.0), "{after}");
    assert_eq!(day["breached_running"], 1, "{after}");
    let text = app.get("/metrics", "").await.text().await.expect("text");
    assert_eq!(
        sample(
            &text,
            &format!(r#"hotline_queue_sla_compliance{{queue="{q}",window="24h"}}"#)
        ),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!(r#"hotline_queue_depth{{queue="{q}",level={level}}}"#)
        ),
        Some(1.0),
        "{text}"
    );
    let _ = receipt;
    app.stop().await;
}
