//! Partner hotlines in (issue 7): signed requests, replay protection, shared rate limits, and
//! hostile input (slow-loris, header floods, oversized, deeply nested, invalid and injected
//! bodies). Every refusal is a clear 4xx (or, for a slow-loris, a closed connection) and the
//! gateway keeps answering afterwards.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{
    GatewayProcess, OPERATOR, PARTNER, RedisServer, SUPERVISOR, TestApp, free_port, test_config,
    ticket,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The partner's shared secret (test only).
const SECRET: &str = "test-partner-secret-0123456789abcdef0123456789";
/// A token with a tiny rate limit.
const LIMITED: &str = "t-limited";
/// Another token with the same tiny limit and its own name.
const OTHER: &str = "t-other";

/// Config for one signing partner limited to 3208 (secret from a file) and two rate-limited
/// tokens.
fn partner_toml(secret_file: &std::path::Path) -> String {
    let digest = hotline_gateway::auth::digest_hex;
    format!(
        r#"
[[auth.tokens]]
name = "limited"
role = "partner"
sha256 = "{l}"
rate_per_second = 1
rate_burst = 3

[[auth.tokens]]
name = "other"
role = "partner"
sha256 = "{o}"
rate_per_second = 1
rate_burst = 3

[[auth.partners]]
name = "12345-platform"
key_id = "p12345"
secret_file = "{file}"
regions = ["3208"]
callback_url = "https://12345.example.gov.cn/callback"
callback_events = ["ticket.accepted", "sla.breached"]
"#,
        l = digest(LIMITED),
        o = digest(OTHER),
        file = secret_file.display(),
    )
}

/// Writes the secret to a file the config names.
fn secret_file(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let file = dir.path().join("p12345.secret");
    std::fs::write(&file, format!("{SECRET}\n")).expect("write secret");
    file
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Sends a signed POST; `headers` overrides (name, value) — an empty value drops the header.
async fn signed_post(
    app: &TestApp,
    path: &str,
    body: &[u8],
    key: &str,
    ts: &str,
    sig: &str,
) -> reqwest::Response {
    let mut req = app
        .http
        .post(format!("{}{path}", app.base))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (name, value) in [
        ("x-hotline-key", key),
        ("x-hotline-timestamp", ts),
        ("x-hotline-signature", sig),
    ] {
        if !value.is_empty() {
            req = req.header(name, value);
        }
    }
    req.send().await.expect("sent")
}

/// Signs `body` now with the partner's secret and sends it.
async fn post_signed(app: &TestApp, path: &str, body: &Value) -> (reqwest::Response, String) {
    let bytes = serde_json::to_vec(body).expect("json");
    let ts = now_secs().to_string();
    let sig = hotline_gateway::auth::sign(SECRET.as_bytes(), &ts, &bytes);
    (
        signed_post(app, path, &bytes, "p12345", &ts, &sig).await,
        sig,
    )
}

/// Asserts a 401 problem+json whose detail contains `reason`.
async fn assert_401(res: reqwest::Response, reason: &str) {
    assert_eq!(res.status(), 401, "expected 401 for {reason}");
    assert_eq!(
        res.headers()["content-type"].to_str().expect("ascii"),
        "application/problem+json"
    );
    let p: Value = res.json().await.expect("json");
    assert_eq!(p["type"], "/problems/unauthenticated");
    let detail = p["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(reason),
        "detail `{detail}` lacks `{reason}`"
    );
}

async fn healthy(app: &TestApp) {
    let res = app
        .http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .expect("healthz answers");
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_signed_request_is_accepted_as_the_partner_and_bearer_tokens_still_work() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let app = TestApp::spawn_with(&redis, &partner_toml(&secret_file(&dir))).await;

    let (res, sig) = post_signed(&app, "/v1/tickets", &ticket("SIG-1")).await;
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let view: Value = app
        .get(&format!("/v1/tickets/{id}"), SUPERVISOR)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(view["history"][0]["actor"], "12345-platform");
    // The signature is remembered for twice the window (300 s by default).
    let ttl: i64 = redis::cmd("PTTL")
        .arg(format!("hl:sig:{sig}"))
        .query(&mut redis.conn())
        .expect("pttl");
    assert!(ttl > 500_000 && ttl <= 600_000, "{ttl}");

    // A signed batch too.
    let (res, _) = post_signed(
        &app,
        "/v1/tickets:batch",
        &json!({"tickets": [ticket("SIG-2")]}),
    )
    .await;
    assert_eq!(res.status(), 200);

    // Bearer tokens keep working for consoles and token partners.
    assert_eq!(
        app.post("/v1/tickets", PARTNER, &ticket("SIG-3"))
            .await
            .status(),
        201
    );
    assert_eq!(app.get("/v1/queues", SUPERVISOR).await.status(), 200);

    // The partner is limited to 3208: another province is forbidden, before anything is written.
    let mut elsewhere = ticket("SIG-4");
    elsewhere["region"]["code"] = json!("110101");
    let (res, _) = post_signed(&app, "/v1/tickets", &elsewhere).await;
    assert_eq!(res.status(), 403);
    // And so is a token of another region.
    assert_eq!(
        app.post("/v1/tickets", OPERATOR, &elsewhere).await.status(),
        403
    );
    // A signed partner may not read queue state either: its role is partner.
    let ts = now_secs().to_string();
    let sig = hotline_gateway::auth::sign(SECRET.as_bytes(), &ts, b"");
    let res = app
        .http
        .get(format!("{}/v1/queues", app.base))
        .header("x-hotline-key", "p12345")
        .header("x-hotline-timestamp", &ts)
        .header("x-hotline-signature", &sig)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 403);

    // The OpenAPI document declares the scheme and the 429.
    let doc: Value = app
        .http
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert!(doc["components"]["securitySchemes"]["partner_signature"].is_object());
    for path in ["/v1/tickets", "/v1/tickets:batch"] {
        assert!(
            doc["paths"][path]["post"]["responses"]["429"].is_object(),
            "{path}"
        );
    }
}

#[tokio::test]
async fn bad_signatures_are_refused_with_the_reason() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let app = TestApp::spawn_with(&redis, &partner_toml(&secret_file(&dir))).await;
    let body = serde_json::to_vec(&ticket("BAD-1")).expect("json");
    let now = now_secs();
    let ts = now.to_string();
    let good = hotline_gateway::auth::sign(SECRET.as_bytes(), &ts, &body);

    // Forged: signed with another secret.
    let forged = hotline_gateway::auth::sign(b"not-the-secret-0123456789abcdef!!", &ts, &body);
    assert_401(
        signed_post(&app, "/v1/tickets", &body, "p12345", &ts, &forged).await,
        "bad x-hotline-signature",
    )
    .await;
    // The body altered after signing.
    let mut altered = body.clone();
    altered.extend_from_slice(b" ");
    assert_401(
        signed_post(&app, "/v1/tickets", &altered, "p12345", &ts, &good).await,
        "bad x-hotline-signature",
    )
    .await;
    // Not hex at all.
    assert_401(
        signed_post(&app, "/v1/tickets", &body, "p12345", &ts, "zz-not-hex").await,
        "bad x-hotline-signature",
    )
    .await;
    // Unknown key.
    assert_401(
        signed_post(&app, "/v1/tickets", &body, "someone-else", &ts, &good).await,
        "unknown x-hotline-key",
    )
    .await;
    // Expired and future timestamps (window 300 s), each correctly signed.
    for (when, word) in [(now - 400, "behind"), (now + 400, "ahead of")] {
        let ts = when.to_string();
        let sig = hotline_gateway::auth::sign(SECRET.as_bytes(), &ts, &body);
        assert_401(
            signed_post(&app, "/v1/tickets", &body, "p12345", &ts, &sig).await,
            word,
        )
        .await;
    }
    // Malformed timestamps and missing headers.
    for ts in ["yesterday", "1.7e9", "-1", "17000000000000000"] {
        let sig = hotline_gateway::auth::sign(SECRET.as_bytes(), ts, &body);
        assert_401(
            signed_post(&app, "/v1/tickets", &body, "p12345", ts, &sig).await,
            "malformed x-hotline-timestamp",
        )
        .await;
    }
    assert_401(
        signed_post(&app, "/v1/tickets", &body, "p12345", "", &good).await,
        "x-hotline-timestamp",
    )
    .await;
    assert_401(
        signed_post(&app, "/v1/tickets", &body, "", &ts, &good).await,
        "x-hotline-key",
    )
    .await;
    assert_401(
        signed_post(&app, "/v1/tickets", &body, "p12345", &ts, "").await,
        "x-hotline-signature",
    )
    .await;

    // None of those wrote anything; the good signature was not used up by them.
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("hl:{320831}:t:*")
        .query(&mut redis.conn())
        .expect("keys");
    assert!(keys.is_empty(), "{keys:?}");

    // The good one is accepted once; the same request again is a replay, even upper-cased.
    let res = signed_post(&app, "/v1/tickets", &body, "p12345", &ts, &good).await;
    assert_eq!(res.status(), 201);
    assert_401(
        signed_post(&app, "/v1/tickets", &body, "p12345", &ts, &good).await,
        "replayed",
    )
    .await;
    assert_401(
        signed_post(
            &app,
            "/v1/tickets",
            &body,
            "p12345",
            &ts,
            &good.to_uppercase(),
        )
        .await,
        "replayed",
    )
    .await;
    // A retry signed afresh is fine (and idempotent: the same ticket).
    let later = (now + 1).to_string();
    let sig = hotline_gateway::auth::sign(SECRET.as_bytes(), &later, &body);
    let res = signed_post(&app, "/v1/tickets", &body, "p12345", &later, &sig).await;
    assert_eq!(res.status(), 200);

    let metrics = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    for reason in [
        "bad_signature",
        "unknown_key",
        "timestamp_outside_window",
        "malformed_timestamp",
        "replayed_signature",
        "missing_signature_header",
    ] {
        assert!(
            metrics.contains(&format!(
                "hotline_auth_rejected_total{{reason=\"{reason}\"}}"
            )),
            "{reason} not counted"
        );
    }
    healthy(&app).await;
}

#[tokio::test]
async fn the_rate_limit_is_shared_by_gateways_and_answers_429_with_retry_after() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let extra = partner_toml(&secret_file(&dir));
    let a = TestApp::spawn_with(&redis, &extra).await;
    let b = TestApp::spawn_with(&redis, &extra).await;

    // Burst 3 at 1/s: drain it through gateway A (a cheap authenticated GET; 404 is fine).
    let mut statuses = vec![];
    for _ in 0..10 {
        let s = a
            .get("/v1/tickets/320831-99999999", LIMITED)
            .await
            .status()
            .as_u16();
        statuses.push(s);
        if s == 429 {
            break;
        }
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    assert!(
        statuses.iter().filter(|s| **s != 429).count() >= 3,
        "{statuses:?}"
    );
    // Gateway B shares the bucket.
    let res = b.get("/v1/tickets/320831-99999999", LIMITED).await;
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("whole seconds");
    assert!(retry >= 1, "{retry}");
    assert_eq!(
        res.headers()["content-type"].to_str().expect("ascii"),
        "application/problem+json"
    );
    let p: Value = res.json().await.expect("json");
    assert_eq!(p["type"], "/problems/rate-limited");
    assert_eq!(p["status"], 429);

    // Another caller has its own bucket; the default limit is generous.
    assert_eq!(
        b.get("/v1/tickets/320831-99999999", OTHER).await.status(),
        404
    );
    for i in 0..20 {
        let res = a
            .post("/v1/tickets", PARTNER, &ticket(&format!("RL-{i}")))
            .await;
        assert_eq!(res.status(), 201);
    }

    // After the wait it names, the caller is let in again.
    tokio::time::sleep(Duration::from_secs(retry)).await;
    assert_eq!(
        a.get("/v1/tickets/320831-99999999", LIMITED).await.status(),
        404
    );
    let metrics = a
        .http
        .get(format!("{}/metrics", a.base))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("hotline_rate_limited_total{principal=\"limited\"}"),
        "not counted"
    );
}

#[tokio::test]
async fn without_redis_the_limiter_lets_requests_through_to_a_503_not_a_500() {
    let mut redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let app = TestApp::spawn_with(&redis, &partner_toml(&secret_file(&dir))).await;
    redis.kill();
    let res = app.post("/v1/tickets", LIMITED, &ticket("DOWN-1")).await;
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
    // A signed request cannot be checked for replay without Redis: 503 too, never 500.
    let (res, _) = post_signed(&app, "/v1/tickets", &ticket("DOWN-2")).await;
    assert_eq!(res.status(), 503);
    healthy(&app).await;
}

/// A gateway with a 2-second header timeout and a 256 KiB body limit.
async fn hardened_app(redis: &RedisServer, dir: &tempfile::TempDir) -> TestApp {
    let config = test_config(&redis.url(), &partner_toml(&secret_file(dir)))
        .replace(
            "body_limit_bytes = 65536",
            "body_limit_bytes = 262144\nheader_read_timeout_seconds = 2\nmax_headers = 100\nmax_header_bytes = 16384",
        );
    TestApp::spawn_from_config(&config).await
}

fn addr(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_string()
}

/// Reads what the server sends until it closes (or `limit`); `None` if it never closed.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&out).into_owned()),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return None,
        }
    }
}

#[tokio::test]
async fn slow_loris_and_silent_connections_are_cut_off() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let app = hardened_app(&redis, &dir).await;

    // Headers one byte at a time, never finished.
    let mut loris = TcpStream::connect(addr(&app)).await.expect("connect");
    let started = Instant::now();
    let header = format!(
        "POST /v1/tickets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {PARTNER}\r\nX-Slow: {}",
        "a".repeat(10_000)
    );
    let mut closed = false;
    for byte in header.bytes() {
        if loris.write_all(&[byte]).await.is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 512];
        match tokio::time::timeout(Duration::from_millis(100), loris.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(_)) | Err(_) => {}
        }
        if started.elapsed() > Duration::from_secs(20) {
            break;
        }
    }
    assert!(closed, "a slow-loris client was not cut off within 20 s");

    // A client that connects and says nothing.
    let mut silent = TcpStream::connect(addr(&app)).await.expect("connect");
    assert!(
        read_until_closed(&mut silent, Duration::from_secs(20))
            .await
            .is_some(),
        "a silent connection was kept open"
    );
    // A client that dribbles the HTTP/2 preface.
    let mut h2 = TcpStream::connect(addr(&app)).await.expect("connect");
    h2.write_all(b"PRI * HTT").await.expect("write");
    assert!(
        read_until_closed(&mut h2, Duration::from_secs(20))
            .await
            .is_some(),
        "a half-sent HTTP/2 preface kept the connection open"
    );
    healthy(&app).await;
}

#[tokio::test]
async fn header_floods_get_431_or_a_closed_connection() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let app = hardened_app(&redis, &dir).await;

    let many: String = (0..500).map(|i| format!("X-H{i}: v\r\n")).collect();
    let huge = format!("X-Big: {}\r\n", "b".repeat(200_000));
    for (name, headers) in [("many headers", many), ("a huge header", huge)] {
        let mut s = TcpStream::connect(addr(&app)).await.expect("connect");
        let req = format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{headers}\r\n");
        // The server may answer and close before reading everything.
        let _ = s.write_all(req.as_bytes()).await;
        let answer = read_until_closed(&mut s, Duration::from_secs(20))
            .await
            .unwrap_or_else(|| panic!("{name}: the connection stayed open"));
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
            "{name}: {answer}"
        );
    }
    healthy(&app).await;
}

/// Sends a raw HTTP/1.1 POST with a chunked body and returns the status line and body.
async fn chunked_post(app: &TestApp, extra_headers: &str, body: &[u8]) -> String {
    let mut s = TcpStream::connect(addr(app)).await.expect("connect");
    let head = format!(
        "POST /v1/tickets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n{extra_headers}\r\n"
    );
    let _ = s.write_all(head.as_bytes()).await;
    for chunk in body.chunks(8192) {
        let framed = [
            format!("{:x}\r\n", chunk.len()).as_bytes(),
            chunk,
            b"\r\n".as_slice(),
        ]
        .concat();
        if s.write_all(&framed).await.is_err() {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    read_until_closed(&mut s, Duration::from_secs(20))
        .await
        .expect("the server answers and closes")
}

#[tokio::test]
async fn oversized_nested_invalid_and_injected_bodies_get_clear_answers() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let app = hardened_app(&redis, &dir).await;
    let bearer = format!("Authorization: Bearer {PARTNER}\r\n");

    // Over the 256 KiB limit, chunked without Content-Length: 413, bearer or signed.
    let mut big = ticket("BIG-1");
    big["title"] = json!("x".repeat(300_000));
    let big = serde_json::to_vec(&big).expect("json");
    let answer = chunked_post(&app, &bearer, &big).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("/problems/payload-too-large"), "{answer}");
    let ts = now_secs().to_string();
    let sig = hotline_gateway::auth::sign(SECRET.as_bytes(), &ts, &big);
    let signed = format!(
        "x-hotline-key: p12345\r\nx-hotline-timestamp: {ts}\r\nx-hotline-signature: {sig}\r\n"
    );
    let answer = chunked_post(&app, &signed, &big).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // A chunked body within the limit is fine.
    let small = serde_json::to_vec(&ticket("CHUNK-1")).expect("json");
    let answer = chunked_post(&app, &bearer, &small).await;
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");

    let raw = |path: &'static str, body: Vec<u8>| {
        let req = app
            .http
            .post(format!("{}{path}", app.base))
            .bearer_auth(PARTNER)
            .header("content-type", "application/json")
            .body(body);
        async move {
            let res = req.send().await.expect("sent");
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    // 100,000 open brackets: 400, not a stack overflow; at the root, in a field, in a batch.
    let deep = "[".repeat(100_000);
    for (path, body) in [
        ("/v1/tickets", deep.clone()),
        (
            "/v1/tickets",
            format!(r#"{{"source":"12345","text":{deep}"#),
        ),
        ("/v1/tickets:batch", format!(r#"{{"tickets":[{deep}"#)),
    ] {
        let (status, p) = raw(path, body.into_bytes()).await;
        assert_eq!(status, 400, "{path}: {p}");
        assert_eq!(p["type"], "/problems/malformed-request");
    }
    let mut nested = json!("leaf");
    for _ in 0..200 {
        nested = json!([nested]);
    }
    let (status, p) = raw(
        "/v1/tickets:batch",
        serde_json::to_vec(&json!({ "tickets": [nested] })).expect("json"),
    )
    .await;
    assert!(status == 400 || status == 200, "{status}: {p}");
    if status == 200 {
        assert_eq!(p["results"][0]["status"], 400, "{p}");
    }

    // Invalid UTF-8 inside a string: 400 saying so.
    let mut bytes = serde_json::to_vec(&ticket("UTF-1")).expect("json");
    let at = bytes
        .windows(4)
        .position(|w| w == b"text")
        .expect("text field")
        + 8;
    bytes.splice(at..at, [0xff, 0xfe, 0xc3]);
    let (status, p) = raw("/v1/tickets", bytes).await;
    assert_eq!(status, 400, "{p}");
    assert!(
        p["detail"].as_str().unwrap_or_default().contains("UTF-8"),
        "{p}"
    );

    // Control characters and NUL inside the text are stored verbatim (JSON escapes them).
    let mut ctl = ticket("CTL-1");
    let text = "来电人反映\u{0}邻居\u{7}装修噪音\u{1b}[31m太大，双方吵起来了，希望调解员协调。";
    ctl["text"] = json!(text);
    ctl["title"] = json!("噪音\u{0}纠纷");
    let res = app.post("/v1/tickets", PARTNER, &ctl).await;
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let view: Value = app
        .get(&format!("/v1/tickets/{id}"), SUPERVISOR)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(view["ticket"]["text"], text);
    assert_eq!(view["ticket"]["title"], "噪音\u{0}纠纷");

    // SQL and script injection are just text: stored and returned verbatim.
    let mut inj = ticket("INJ-1");
    let title = "'; DROP TABLE tickets;--";
    let text = "<script>alert(1)</script> 老板拖欠工资三个月，' OR '1'='1 希望调解员帮忙协调。";
    inj["title"] = json!(title);
    inj["text"] = json!(text);
    inj["region"]["town"] = json!("城关镇\"; FLUSHALL; --");
    let res = app.post("/v1/tickets", PARTNER, &inj).await;
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let view: Value = app
        .get(&format!("/v1/tickets/{id}"), SUPERVISOR)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(view["ticket"]["title"], title);
    assert_eq!(view["ticket"]["text"], text);
    assert_eq!(view["ticket"]["region"]["town"], "城关镇\"; FLUSHALL; --");
    let alive: i64 = redis::cmd("DBSIZE")
        .query(&mut redis.conn())
        .expect("dbsize");
    assert!(alive > 0);

    healthy(&app).await;
}

#[tokio::test]
async fn secrets_signatures_tokens_and_phones_never_reach_the_logs() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let env_secret = "env-secret-for-the-110-desk-0123456789abcdef";
    let extra = r#"
[[auth.partners]]
name = "110-desk"
key_id = "p110"
secret_env = "HOTLINE_TEST_P110_SECRET"
"#;
    let config_text = test_config(&redis.url(), extra)
        .replace("level = \"info\"", "level = \"hotline_gateway=debug,info\"");
    let config = dir.path().join("gw.toml");
    std::fs::write(&config, &config_text).expect("write");
    // The secret is not in the config file, only in the environment.
    assert!(!config_text.contains(env_secret));
    let log = dir.path().join("gw.log");
    let mut gw = GatewayProcess::start_with_env(
        &config,
        free_port(),
        log.clone(),
        &[("HOTLINE_TEST_P110_SECRET", env_secret)],
    );
    let http = reqwest::Client::new();
    let phone = "13987654321";
    let mut body = ticket("LOG-1");
    body["caller"]["phone"] = json!(phone);
    let bytes = serde_json::to_vec(&body).expect("json");
    let ts = now_secs().to_string();
    let sig = hotline_gateway::auth::sign(env_secret.as_bytes(), &ts, &bytes);
    let forged =
        hotline_gateway::auth::sign(b"wrong-secret-wrong-secret-wrong-secret", &ts, &bytes);
    let send = |sig: String| {
        http.post(format!("{}/v1/tickets", gw.base))
            .header("content-type", "application/json")
            .header("x-hotline-key", "p110")
            .header("x-hotline-timestamp", &ts)
            .header("x-hotline-signature", sig)
            .body(bytes.clone())
            .send()
    };
    assert_eq!(send(sig.clone()).await.expect("sent").status(), 201);
    assert_eq!(send(sig.clone()).await.expect("sent").status(), 401);
    assert_eq!(send(forged.clone()).await.expect("sent").status(), 401);
    let res = http
        .post(format!("{}/v1/tickets", gw.base))
        .bearer_auth(PARTNER)
        .json(&ticket("LOG-2"))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 201);
    let res = http
        .post(format!("{}/v1/tickets", gw.base))
        .bearer_auth("a-wrong-token-that-must-not-be-logged")
        .json(&ticket("LOG-3"))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 401);
    assert!(gw.terminate().success());

    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        text.contains("110-desk"),
        "the partner's name is logged:\n{text}"
    );
    for secret in [
        env_secret,
        sig.as_str(),
        forged.as_str(),
        PARTNER,
        "a-wrong-token-that-must-not-be-logged",
        phone,
    ] {
        assert!(!text.contains(secret), "`{secret}` leaked into the log");
    }
}

#[tokio::test]
async fn a_missing_secret_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let redis_url = "redis://127.0.0.1:1/0";
    let cases = [
        (
            r#"
[[auth.partners]]
name = "a"
key_id = "ka"
secret_env = "HOTLINE_TEST_SURELY_UNSET_VARIABLE_7"
"#,
            "auth.partners[0].secret_env",
        ),
        (
            r#"
[[auth.partners]]
name = "a"
key_id = "ka"
secret_file = "/nonexistent/secret"
"#,
            "auth.partners[0].secret_file",
        ),
    ];
    for (extra, key) in cases {
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, test_config(redis_url, extra)).expect("write");
        let err = hotline_gateway::config::Settings::load(Some(&file)).expect_err("refused");
        assert!(err.to_string().contains(key), "{err}");
    }
    // A good secret file, then bad callback settings, each named by its key.
    let secret = secret_file(&dir);
    for (tail, key) in [
        (
            "callback_url = \"ftp://example.org/x\"",
            "auth.partners[1].callback_url",
        ),
        (
            "callback_url = \"https://b.example.org/cb\"\ncallback_events = [\"ticket.exploded\"]",
            "auth.partners[1].callback_events[0]",
        ),
        (
            "rate_per_second = 5\nrate_burst = 0",
            "auth.partners[1].rate_burst",
        ),
    ] {
        let extra = format!(
            "[[auth.partners]]\nname = \"a\"\nkey_id = \"ka\"\nsecret_file = \"{f}\"\n\n[[auth.partners]]\nname = \"b\"\nkey_id = \"kb\"\nsecret_file = \"{f}\"\n{tail}\n",
            f = secret.display()
        );
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, test_config(redis_url, &extra)).expect("write");
        let err = hotline_gateway::config::Settings::load(Some(&file)).expect_err("refused");
        assert!(err.to_string().contains(key), "{key}: {err}");
        assert!(!err.to_string().contains(SECRET), "{err}");
    }
}
