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
/// A supervisor token with a small rate, watching events.
const WATCHER: &str = "t-watcher";

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
# These tests sign in the first form (v1), allowed here by name; v2 is in tests/senders.rs.
signature_versions = ["v1", "v2"]
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

/// Sends `ticket` as the partner, expects 201, and returns the ticket as a supervisor reads it.
async fn created_and_read_back(app: &TestApp, ticket: &Value) -> Value {
    let res = app.post("/v1/tickets", PARTNER, ticket).await;
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_string();
    app.get(&format!("/v1/tickets/{id}"), SUPERVISOR)
        .await
        .json()
        .await
        .expect("json")
}

/// The gateway's `/metrics` text.
async fn metrics_of(app: &TestApp) -> String {
    app.http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text")
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
        // Operations that read a body declare the body deadline's 408.
        assert!(
            doc["paths"][path]["post"]["responses"]["408"].is_object(),
            "{path}"
        );
    }
    // The event stream may be signed, and declares its 429 (rate or open streams) and 503.
    let events = &doc["paths"]["/v1/events"]["get"];
    assert!(
        events["security"]
            .as_array()
            .expect("security")
            .iter()
            .any(|s| s.get("partner_signature").is_some()),
        "{events}"
    );
    for code in ["429", "503"] {
        assert!(events["responses"][code].is_object(), "{code}: {events}");
    }
    assert!(
        doc["components"]["securitySchemes"]["partner_signature"]["description"]
            .as_str()
            .unwrap_or_default()
            .contains("x-hotline-nonce")
    );
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

    // The good one is accepted; the same request again (even upper-cased) is an intake retry:
    // idempotent, so it is let through and gets the same ticket (replays of anything else are
    // refused: see the retry test below).
    let res = signed_post(&app, "/v1/tickets", &body, "p12345", &ts, &good).await;
    assert_eq!(res.status(), 201);
    let first = res.json::<Value>().await.expect("json")["id"].clone();
    for sig in [good.clone(), good.to_uppercase()] {
        let res = signed_post(&app, "/v1/tickets", &body, "p12345", &ts, &sig).await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.json::<Value>().await.expect("json")["id"], first);
    }
    // A retry signed afresh is fine too (and idempotent: the same ticket).
    let later = (now + 1).to_string();
    let sig = hotline_gateway::auth::sign(SECRET.as_bytes(), &later, &body);
    let res = signed_post(&app, "/v1/tickets", &body, "p12345", &later, &sig).await;
    assert_eq!(res.status(), 200);

    let metrics = metrics_of(&app).await;
    for reason in [
        "bad_signature",
        "unknown_key",
        "timestamp_outside_window",
        "malformed_timestamp",
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
    let metrics = metrics_of(&a).await;
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

/// A gateway with a 2-second header timeout, a 256 KiB body limit, a 2-second body deadline and
/// a 3-second idle timeout.
async fn hardened_app(redis: &RedisServer, dir: &tempfile::TempDir) -> TestApp {
    let config = test_config(&redis.url(), &partner_toml(&secret_file(dir)))
        .replace(
            "body_limit_bytes = 65536",
            "body_limit_bytes = 262144\nheader_read_timeout_seconds = 2\nmax_headers = 100\nmax_header_bytes = 16384\nidle_timeout_seconds = 3\nbody_read_timeout_seconds = 2",
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
    let view = created_and_read_back(&app, &ctl).await;
    assert_eq!(view["ticket"]["text"], text);
    assert_eq!(view["ticket"]["title"], "噪音\u{0}纠纷");

    // SQL and script injection are just text: stored and returned verbatim.
    let mut inj = ticket("INJ-1");
    let title = "'; DROP TABLE tickets;--";
    let text = "<script>alert(1)</script> 老板拖欠工资三个月，' OR '1'='1 希望调解员帮忙协调。";
    inj["title"] = json!(title);
    inj["text"] = json!(text);
    inj["region"]["town"] = json!("城关镇\"; FLUSHALL; --");
    let view = created_and_read_back(&app, &inj).await;
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
signature_versions = ["v1", "v2"]
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
    let created = send(sig.clone()).await.expect("sent");
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_string();
    // An idempotent retry with the same signature, and a forgery.
    assert_eq!(send(sig.clone()).await.expect("sent").status(), 200);
    assert_eq!(send(forged.clone()).await.expect("sent").status(), 401);
    // The new paths: a signed action with a nonce, then replayed (401); a malformed nonce; a
    // signed event stream; an event stream with its token in the query.
    let nonce = "log-nonce-7f3a9c";
    let dispute = serde_json::to_vec(&json!({"reason": "应由劳动监察处理"})).expect("json");
    let action_sig =
        hotline_gateway::auth::sign_with_nonce(env_secret.as_bytes(), &ts, Some(nonce), &dispute);
    let act = || {
        http.post(format!("{}/v1/tickets/{id}/dispute", gw.base))
            .header("content-type", "application/json")
            .header("x-hotline-key", "p110")
            .header("x-hotline-timestamp", &ts)
            .header("x-hotline-nonce", nonce)
            .header("x-hotline-signature", &action_sig)
            .body(dispute.clone())
            .send()
    };
    assert_ne!(act().await.expect("sent").status(), 401);
    assert_eq!(act().await.expect("sent").status(), 401);
    let res = http
        .get(format!("{}/v1/tickets/{id}", gw.base))
        .header("x-hotline-key", "p110")
        .header("x-hotline-timestamp", &ts)
        .header("x-hotline-nonce", "not a nonce!")
        .header("x-hotline-signature", &action_sig)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 401);
    let events_sig = hotline_gateway::auth::sign_with_nonce(
        env_secret.as_bytes(),
        &ts,
        Some("log-events-1"),
        b"",
    );
    let stream = http
        .get(format!("{}/v1/events", gw.base))
        .header("x-hotline-key", "p110")
        .header("x-hotline-timestamp", &ts)
        .header("x-hotline-nonce", "log-events-1")
        .header("x-hotline-signature", &events_sig)
        .send()
        .await
        .expect("sent");
    assert_eq!(stream.status(), 200);
    drop(stream);
    let stream = http
        .get(format!("{}/v1/events?access_token={SUPERVISOR}", gw.base))
        .send()
        .await
        .expect("sent");
    assert_eq!(stream.status(), 200);
    drop(stream);
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
        action_sig.as_str(),
        events_sig.as_str(),
        SUPERVISOR,
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
        (
            "signature_versions = [\"v2\", \"v3\"]",
            "auth.partners[1].signature_versions[1]",
        ),
        (
            "signature_versions = []",
            "auth.partners[1].signature_versions",
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

/// One HTTP/2 frame: 24-bit length, type, flags, 31-bit stream id, payload (RFC 9113 §4.1).
fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("small frame");
    let mut out = len.to_be_bytes()[1..].to_vec();
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

#[tokio::test]
async fn http2_clients_that_stall_are_cut_off_and_h2c_still_works() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let app = hardened_app(&redis, &dir).await;

    // Raw TCP: the preface and an empty SETTINGS frame, then nothing (never a request, never an
    // answer to the server's SETTINGS or pings).
    let mut stalled = TcpStream::connect(addr(&app)).await.expect("connect");
    let mut hello = H2_PREFACE.to_vec();
    hello.extend(h2_frame(0x4, 0, 0, &[]));
    stalled.write_all(&hello).await.expect("write");
    assert!(
        read_until_closed(&mut stalled, Duration::from_secs(20))
            .await
            .is_some(),
        "an HTTP/2 client that stalled after its preface kept the connection open"
    );

    // Raw TCP: a HEADERS frame without END_HEADERS (a header block that never ends), trickled.
    let mut trickle = TcpStream::connect(addr(&app)).await.expect("connect");
    let mut start = H2_PREFACE.to_vec();
    start.extend(h2_frame(0x4, 0, 0, &[]));
    // :method POST, :scheme http (HPACK static table), and no END_HEADERS flag.
    start.extend(h2_frame(0x1, 0, 1, &[0x83, 0x86]));
    trickle.write_all(&start).await.expect("write");
    let started = Instant::now();
    let mut closed = false;
    while started.elapsed() < Duration::from_secs(20) {
        // A CONTINUATION with one more byte of header block every 500 ms.
        if trickle
            .write_all(&h2_frame(0x9, 0, 1, &[0x84]))
            .await
            .is_err()
        {
            closed = true;
            break;
        }
        let mut buf = [0u8; 1024];
        match tokio::time::timeout(Duration::from_millis(500), trickle.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(_)) | Err(_) => {}
        }
    }
    assert!(
        closed,
        "a trickled HTTP/2 header block kept the connection open"
    );

    // A real HTTP/2 client opens a stream with a body it never sends: 408 problem+json (the
    // body deadline), and the connection goes on serving.
    let tcp = TcpStream::connect(addr(&app)).await.expect("connect");
    let (client, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    let mut connection = tokio::spawn(connection);
    let mut client = client.ready().await.expect("ready");
    let request = axum::http::Request::builder()
        .method("POST")
        .uri(format!("{}/v1/tickets", app.base))
        .header("authorization", format!("Bearer {PARTNER}"))
        .header("content-type", "application/json")
        .body(())
        .expect("request");
    let (response, body_never_sent) = client.send_request(request, false).expect("stream");
    let response = tokio::time::timeout(Duration::from_secs(20), response)
        .await
        .expect("answered before the client sent its body")
        .expect("response");
    assert_eq!(response.status(), 408);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let mut body = response.into_body();
    let mut text = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.expect("data");
        let _ = body.flow_control().release_capacity(chunk.len());
        text.extend_from_slice(&chunk);
    }
    let problem: Value = serde_json::from_slice(&text).expect("problem json");
    assert_eq!(problem["type"], "/problems/request-timeout");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("body_read_timeout_seconds"),
        "{problem}"
    );
    drop(body_never_sent);
    let mut client = client.ready().await.expect("still usable");
    let healthz = axum::http::Request::builder()
        .uri(format!("{}/healthz", app.base))
        .body(())
        .expect("request");
    let (response, _) = client.send_request(healthz, true).expect("stream");
    assert_eq!(response.await.expect("response").status(), 200);
    // That client answers pings, so keep-alive cannot find it idle; with no request in progress
    // the gateway closes its connection (GOAWAY) after http.idle_timeout_seconds all the same.
    assert!(
        tokio::time::timeout(Duration::from_secs(20), &mut connection)
            .await
            .is_ok(),
        "an idle HTTP/2 connection was kept open"
    );
    drop(client);

    // Rapid reset: streams opened and cancelled at once. The gateway may send GOAWAY; it must
    // keep serving everyone else.
    let tcp = TcpStream::connect(addr(&app)).await.expect("connect");
    if let Ok((client, connection)) = h2::client::handshake(tcp).await {
        let driver = tokio::spawn(connection);
        let mut client = client;
        for _ in 0..500 {
            let Ok(ready) = client.clone().ready().await else {
                break;
            };
            client = ready;
            let request = axum::http::Request::builder()
                .uri(format!("{}/v1/queues", app.base))
                .header("authorization", format!("Bearer {SUPERVISOR}"))
                .body(())
                .expect("request");
            let Ok((response, mut stream)) = client.send_request(request, false) else {
                break;
            };
            stream.send_reset(h2::Reason::CANCEL);
            drop(response);
        }
        drop(client);
        let _ = tokio::time::timeout(Duration::from_secs(20), driver).await;
    }

    // Ordinary h2c (prior knowledge) requests still work, bearer and signed.
    let h2c = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    let res = h2c
        .post(format!("{}/v1/tickets", app.base))
        .bearer_auth(PARTNER)
        .json(&ticket("H2C-1"))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.version(), reqwest::Version::HTTP_2);
    assert_eq!(res.status(), 201);
    let body = serde_json::to_vec(&ticket("H2C-2")).expect("json");
    let ts = now_secs().to_string();
    let sig = hotline_gateway::auth::sign(SECRET.as_bytes(), &ts, &body);
    let res = h2c
        .post(format!("{}/v1/tickets", app.base))
        .header("content-type", "application/json")
        .header("x-hotline-key", "p12345")
        .header("x-hotline-timestamp", &ts)
        .header("x-hotline-signature", &sig)
        .body(body)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.version(), reqwest::Version::HTTP_2);
    assert_eq!(res.status(), 201);
    healthy(&app).await;

    let metrics = metrics_of(&app).await;
    assert!(
        metrics.contains("hotline_http_idle_connections_closed_total"),
        "idle closes are not counted"
    );
}

#[tokio::test]
async fn slow_http1_bodies_get_408_bearer_or_signed() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let app = hardened_app(&redis, &dir).await;
    let body = serde_json::to_vec(&ticket("SLOW-1")).expect("json");
    let ts = now_secs().to_string();
    let sig = hotline_gateway::auth::sign(SECRET.as_bytes(), &ts, &body);
    for auth in [
        format!("Authorization: Bearer {PARTNER}\r\n"),
        format!(
            "x-hotline-key: p12345\r\nx-hotline-timestamp: {ts}\r\nx-hotline-signature: {sig}\r\n"
        ),
    ] {
        let mut s = TcpStream::connect(addr(&app)).await.expect("connect");
        let head = format!(
            "POST /v1/tickets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{auth}\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).await.expect("write");
        // A first slice of the body, then silence.
        s.write_all(&body[..20]).await.expect("write");
        let answer = read_until_closed(&mut s, Duration::from_secs(20))
            .await
            .expect("the gateway answers and closes instead of waiting for the body");
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("/problems/request-timeout"), "{answer}");
    }
    // Nothing was written, and the whole body sent promptly is fine.
    assert_eq!(
        app.post("/v1/tickets", PARTNER, &ticket("SLOW-1"))
            .await
            .status(),
        201
    );
}

/// A signed GET (empty body), with an optional nonce.
fn signed_get(app: &TestApp, path: &str, ts: &str, nonce: Option<&str>) -> reqwest::RequestBuilder {
    let sig = hotline_gateway::auth::sign_with_nonce(SECRET.as_bytes(), ts, nonce, b"");
    let mut req = app
        .http
        .get(format!("{}{path}", app.base))
        .header("x-hotline-key", "p12345")
        .header("x-hotline-timestamp", ts)
        .header("x-hotline-signature", sig);
    if let Some(n) = nonce {
        req = req.header("x-hotline-nonce", n);
    }
    req
}

#[tokio::test]
async fn event_streams_are_signable_charged_once_when_opened_and_limited_in_number() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    // A supervisor's stream with a small rate (burst 3, 1/s), to show that events are not
    // charged against it (a partner's stream would carry only its own tickets).
    let watcher = support::token_entry(
        "watcher",
        "supervisor",
        WATCHER,
        "rate_per_second = 1\nrate_burst = 3",
    );
    let toml = partner_toml(&secret_file(&dir)).replace(
        "key_id = \"p12345\"",
        "key_id = \"p12345\"\nmax_event_streams = 2",
    ) + &watcher;
    let app = TestApp::spawn_with(&redis, &toml).await;
    app.post("/v1/tickets", PARTNER, &ticket("ES-0")).await;
    let ts = now_secs().to_string();

    // A signed stream (GET signs an empty body); the partner sees its own tickets' events.
    let res = signed_get(&app, "/v1/events", &ts, Some("es-1"))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
    let mut first = support::SseReader {
        res,
        buf: String::new(),
    };
    let res = signed_get(&app, "/v1/events", &ts, Some("es-2"))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
    let second = res;
    let open: i64 = redis::cmd("ZCARD")
        .arg("hl:es:12345-platform")
        .query(&mut redis.conn())
        .expect("zcard");
    assert_eq!(open, 2);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Another partner's ticket is not on this partner's stream; its own is.
    app.post("/v1/tickets", PARTNER, &ticket("ES-1")).await;
    let (res, _) = post_signed(&app, "/v1/tickets", &ticket("ES-2")).await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.expect("json");
    let (_, event) = first
        .next_of(&["ticket.created"], Duration::from_secs(10))
        .await;
    assert_eq!(event["id"], created["id"]);

    // A third is over max_event_streams = 2: 429 /problems/too-many-streams with Retry-After.
    let res = signed_get(&app, "/v1/events", &ts, Some("es-3"))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    let p: Value = res.json().await.expect("json");
    assert_eq!(p["type"], "/problems/too-many-streams");
    // A refused signature on a stream is a 401 like anywhere else, and a replayed one too.
    let forged = hotline_gateway::auth::sign(b"not-the-secret-0123456789abcdef!!", &ts, b"");
    let res = app
        .http
        .get(format!("{}/v1/events", app.base))
        .header("x-hotline-key", "p12345")
        .header("x-hotline-timestamp", &ts)
        .header("x-hotline-signature", forged)
        .send()
        .await
        .expect("sent");
    assert_401(res, "bad x-hotline-signature").await;
    let res = signed_get(&app, "/v1/events", &ts, Some("es-1"))
        .send()
        .await
        .expect("sent");
    assert_401(res, "replayed").await;

    // Closing a stream gives its slot back (within a few seconds: the relay notices).
    drop(first);
    drop(second);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut n = 0;
    let reopened = loop {
        n += 1;
        let res = signed_get(&app, "/v1/events", &ts, Some(&format!("es-again-{n}")))
            .send()
            .await
            .expect("sent");
        if res.status() == 200 {
            break res;
        }
        assert_eq!(res.status(), 429);
        assert!(
            Instant::now() < deadline,
            "closed streams never gave their slots back"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    drop(reopened);

    // Opening a stream is one request against the rate; the events on it are not. `watcher`
    // (burst 3, 1/s) opens one, then receives five events...
    let res = app.get("/v1/events", WATCHER).await;
    assert_eq!(res.status(), 200);
    let mut watching = support::SseReader {
        res,
        buf: String::new(),
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..5 {
        app.post("/v1/tickets", PARTNER, &ticket(&format!("ES-RATE-{i}")))
            .await;
    }
    for _ in 0..5 {
        watching
            .next_of(&["ticket.created"], Duration::from_secs(10))
            .await;
    }
    // ...and still has its bucket: more streams open until the rate (not the events) runs out.
    let mut opened = vec![];
    let refusal = loop {
        let res = app.get("/v1/events", WATCHER).await;
        if res.status() != 200 {
            break res;
        }
        opened.push(res);
        assert!(opened.len() < 10, "opening streams is not rate-limited");
    };
    assert!(
        opened.len() >= 2,
        "the events drained the bucket: {}",
        opened.len()
    );
    assert_eq!(refusal.status(), 429);
    let p: Value = refusal.json().await.expect("json");
    assert_eq!(p["type"], "/problems/rate-limited");
}

#[tokio::test]
async fn a_same_second_retry_of_a_transfer_gets_the_same_ticket_and_other_replays_are_refused() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let app = TestApp::spawn_with(&redis, &partner_toml(&secret_file(&dir))).await;
    let ts = now_secs().to_string();
    let seq = || -> i64 {
        redis::cmd("GET")
            .arg("hl:{320831}:seq")
            .query::<Option<i64>>(&mut redis.conn())
            .expect("get")
            .unwrap_or(0)
    };

    // A partner's HTTP client times out and retries the very same signed request, in the same
    // second, several times at once: one ticket, every answer names it.
    let body = serde_json::to_vec(&ticket("RETRY-1")).expect("json");
    let sig = hotline_gateway::auth::sign(SECRET.as_bytes(), &ts, &body);
    let res = signed_post(&app, "/v1/tickets", &body, "p12345", &ts, &sig).await;
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.expect("json")["id"].clone();
    let retries: Vec<_> = (0..5)
        .map(|_| {
            let req = app
                .http
                .post(format!("{}/v1/tickets", app.base))
                .header("content-type", "application/json")
                .header("x-hotline-key", "p12345")
                .header("x-hotline-timestamp", &ts)
                .header("x-hotline-signature", &sig)
                .body(body.clone());
            tokio::spawn(async move {
                let res = req.send().await.expect("sent");
                (
                    res.status().as_u16(),
                    res.json::<Value>().await.expect("json"),
                )
            })
        })
        .collect();
    for retry in retries {
        let (status, receipt) = retry.await.expect("joined");
        assert_eq!(status, 200, "{receipt}");
        assert_eq!(receipt["id"], id);
    }
    assert_eq!(seq(), 1, "a retry made a second ticket");

    // The same for a batch.
    let batch = serde_json::to_vec(&json!({"tickets": [ticket("RETRY-2"), ticket("RETRY-3")]}))
        .expect("json");
    let sig = hotline_gateway::auth::sign(SECRET.as_bytes(), &ts, &batch);
    let once: Value = signed_post(&app, "/v1/tickets:batch", &batch, "p12345", &ts, &sig)
        .await
        .json()
        .await
        .expect("json");
    let again = signed_post(&app, "/v1/tickets:batch", &batch, "p12345", &ts, &sig).await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.expect("json");
    for i in 0..2 {
        assert_eq!(
            once["results"][i]["id"], again["results"][i]["id"],
            "{again}"
        );
    }
    assert_eq!(seq(), 3);

    // A non-idempotent action: its replayed signature is still refused.
    let dispute = serde_json::to_vec(&json!({"reason": "应由劳动监察大队处理"})).expect("json");
    let path = format!("/v1/tickets/{}/dispute", id.as_str().expect("id"));
    let sig = hotline_gateway::auth::sign(SECRET.as_bytes(), &ts, &dispute);
    let res = signed_post(&app, &path, &dispute, "p12345", &ts, &sig).await;
    assert_ne!(res.status(), 401);
    assert_401(
        signed_post(&app, &path, &dispute, "p12345", &ts, &sig).await,
        "replayed",
    )
    .await;
    // With a nonce, a deliberate second request in the same second has its own signature...
    let with_nonce = |nonce: &str| {
        let sig =
            hotline_gateway::auth::sign_with_nonce(SECRET.as_bytes(), &ts, Some(nonce), &dispute);
        app.http
            .post(format!("{}{path}", app.base))
            .header("content-type", "application/json")
            .header("x-hotline-key", "p12345")
            .header("x-hotline-timestamp", &ts)
            .header("x-hotline-nonce", nonce)
            .header("x-hotline-signature", sig)
            .body(dispute.clone())
            .send()
    };
    assert_ne!(with_nonce("d-2").await.expect("sent").status(), 401);
    // ...and the same nonce again is a replay.
    assert_401(with_nonce("d-2").await.expect("sent"), "replayed").await;

    // GETs sign an empty body, so two in one second need nonces to differ.
    let view = format!("/v1/tickets/{}", id.as_str().expect("id"));
    assert_eq!(
        signed_get(&app, &view, &ts, None)
            .send()
            .await
            .expect("sent")
            .status(),
        200
    );
    assert_401(
        signed_get(&app, &view, &ts, None)
            .send()
            .await
            .expect("sent"),
        "fresh x-hotline-nonce",
    )
    .await;
    for nonce in ["g-1", "g-2"] {
        let res = signed_get(&app, &view, &ts, Some(nonce))
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status(), 200);
    }
    // A malformed nonce is named; a nonce that was not signed does not verify.
    let res = app
        .http
        .get(format!("{}{view}", app.base))
        .header("x-hotline-key", "p12345")
        .header("x-hotline-timestamp", &ts)
        .header("x-hotline-nonce", "not a nonce")
        .header(
            "x-hotline-signature",
            hotline_gateway::auth::sign_with_nonce(
                SECRET.as_bytes(),
                &ts,
                Some("not a nonce"),
                b"",
            ),
        )
        .send()
        .await
        .expect("sent");
    assert_401(res, "malformed x-hotline-nonce").await;
    let unsigned = hotline_gateway::auth::sign(SECRET.as_bytes(), &ts, b"");
    let res = app
        .http
        .get(format!("{}{view}", app.base))
        .header("x-hotline-key", "p12345")
        .header("x-hotline-timestamp", &ts)
        .header("x-hotline-nonce", "g-4")
        .header("x-hotline-signature", unsigned)
        .send()
        .await
        .expect("sent");
    assert_401(res, "bad x-hotline-signature").await;

    let metrics = metrics_of(&app).await;
    for reason in ["replayed_signature", "malformed_nonce"] {
        assert!(
            metrics.contains(&format!(
                "hotline_auth_rejected_total{{reason=\"{reason}\"}}"
            )),
            "{reason} not counted"
        );
    }
    assert!(metrics.contains("hotline_signed_retries_total"));
}
