//! Senders kept apart (issue 16): one ticket per idempotency key across the whole deployment,
//! every sender's `external_id`s in a key space of its own, and signatures (v2) that cover the
//! method, path and query as well as the timestamp, nonce and body.

mod support;

use redis::Commands;
use serde_json::{Value, json};
use support::{ADMIN, OPERATOR, PARTNER, RedisServer, SUPERVISOR, TestApp, ticket, token_entry};

/// Another partner's bearer token (a second hotline platform).
const PARTNER_B: &str = "t-partner-b";
/// The signing partners' shared secret (test only).
const SECRET: &str = "senders-test-secret-0123456789abcdef0123456789";

/// A second bearer partner, and two signing partners sharing one secret file: `ka` (the
/// default: v2 only) and `kold` (still allowed the old form).
fn senders_toml(secret_file: &std::path::Path) -> String {
    format!(
        r#"
{b}

[[auth.partners]]
name = "signed-a"
key_id = "ka"
secret_file = "{file}"

[[auth.partners]]
name = "signed-old"
key_id = "kold"
secret_file = "{file}"
signature_versions = ["v1", "v2"]
"#,
        b = token_entry("partner-b", "partner", PARTNER_B, ""),
        file = secret_file.display(),
    )
}

async fn spawn(redis: &RedisServer, dir: &tempfile::TempDir) -> TestApp {
    let file = dir.path().join("partners.secret");
    std::fs::write(&file, format!("{SECRET}\n")).expect("write secret");
    TestApp::spawn_with(redis, &senders_toml(&file)).await
}

fn in_county(external_id: &str, county: &str) -> Value {
    let mut t = ticket(external_id);
    t["region"] = json!({"code": county, "town": "城关镇"});
    t
}

/// Every ticket hash of a county.
fn tickets_in(redis: &RedisServer, county: &str) -> usize {
    let keys: Vec<String> = redis
        .conn()
        .keys(format!("hl:{{{county}}}:t:*"))
        .expect("keys");
    keys.len()
}

#[tokio::test]
async fn one_key_is_one_ticket_in_the_whole_deployment_and_another_county_is_a_409() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn(&redis, &dir).await;

    let res = app
        .post("/v1/tickets", PARTNER, &in_county("K-1", "320831"))
        .await;
    assert_eq!(res.status(), 201);
    let first: Value = res.json().await.expect("json");

    // The same key with another region.code: not a second ticket in another county.
    for county in ["320324", "320812"] {
        let res = app
            .post("/v1/tickets", PARTNER, &in_county("K-1", county))
            .await;
        assert_eq!(res.status(), 409, "{county}");
        assert_eq!(
            res.headers()["content-type"].to_str().expect("ascii"),
            "application/problem+json"
        );
        let problem: Value = res.json().await.expect("json");
        assert_eq!(problem["ticket_id"], first["id"], "{problem}");
        assert_eq!(problem["errors"][0]["field"], "region.code", "{problem}");
    }
    assert_eq!(tickets_in(&redis, "320324"), 0);
    assert_eq!(tickets_in(&redis, "320812"), 0);

    // A faithful retry still finds it.
    let res = app
        .post("/v1/tickets", PARTNER, &in_county("K-1", "320831"))
        .await;
    assert_eq!(res.status(), 200);
    let again: Value = res.json().await.expect("json");
    assert_eq!(again["id"], first["id"]);
    // Other content in the same county is still a 409 naming the ticket.
    let mut changed = in_county("K-1", "320831");
    changed["text"] = json!("完全不同的内容：邻居装修噪音太大");
    let res = app.post("/v1/tickets", PARTNER, &changed).await;
    assert_eq!(res.status(), 409);
    let problem: Value = res.json().await.expect("json");
    assert_eq!(problem["ticket_id"], first["id"]);
    assert_eq!(tickets_in(&redis, "320831"), 1);
}

#[tokio::test]
async fn concurrent_sends_of_one_key_to_different_counties_make_one_ticket() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn(&redis, &dir).await;
    let counties = ["320831", "320324", "320812", "330106"];
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..16 {
        let (http, url) = (app.http.clone(), format!("{}/v1/tickets", app.base));
        let body = in_county("K-race", counties[i % counties.len()]);
        sends.spawn(async move {
            http.post(url)
                .bearer_auth(PARTNER)
                .json(&body)
                .send()
                .await
                .expect("sent")
                .status()
                .as_u16()
        });
    }
    let statuses = sends.join_all().await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| [200, 201, 409].contains(s)),
        "{statuses:?}"
    );
    let total: usize = counties.iter().map(|c| tickets_in(&redis, c)).sum();
    assert_eq!(total, 1, "one key, one ticket");
}

#[tokio::test]
async fn another_partner_can_neither_block_nor_read_a_partners_tickets() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn(&redis, &dir).await;

    // B registers A's next work-order number first, with other content…
    let mut squatted = ticket("A-100");
    squatted["text"] = json!("抢先登记的内容：邻居装修噪音太大，多次协商未果");
    let res = app.post("/v1/tickets", PARTNER_B, &squatted).await;
    assert_eq!(res.status(), 201);
    let b_ticket: Value = res.json().await.expect("json");
    // …and A's ticket is still registered, as A's own.
    let res = app.post("/v1/tickets", PARTNER, &ticket("A-100")).await;
    assert_eq!(res.status(), 201, "B must not block A's id");
    let a_ticket: Value = res.json().await.expect("json");
    assert_ne!(a_ticket["id"], b_ticket["id"]);
    // A's retry finds A's ticket, B's retry B's.
    let res = app.post("/v1/tickets", PARTNER, &ticket("A-100")).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["id"], a_ticket["id"]);

    // B replaying A's exact request gets no view of A's ticket: the id is in B's space, where
    // it names B's own ticket (other content: 409 naming B's ticket, never A's).
    let res = app.post("/v1/tickets", PARTNER_B, &ticket("A-100")).await;
    assert_eq!(res.status(), 409);
    let problem: Value = res.json().await.expect("json");
    assert_eq!(problem["ticket_id"], b_ticket["id"], "{problem}");
    // A fresh id of A's, replayed by B word for word: B's own new ticket, not A's.
    let res = app.post("/v1/tickets", PARTNER, &ticket("A-101")).await;
    assert_eq!(res.status(), 201);
    let a2: Value = res.json().await.expect("json");
    let res = app.post("/v1/tickets", PARTNER_B, &ticket("A-101")).await;
    assert_eq!(
        res.status(),
        201,
        "a replay by B never answers with A's ticket"
    );
    let b2: Value = res.json().await.expect("json");
    assert_ne!(b2["id"], a2["id"]);
    // Nor can B read A's ticket.
    let res = app
        .get(
            &format!("/v1/tickets/{}", a2["id"].as_str().expect("id")),
            PARTNER_B,
        )
        .await;
    assert!(
        [403, 404].contains(&res.status().as_u16()),
        "{}",
        res.status()
    );
    // Each ticket records its sender.
    let view: Value = app
        .get(
            &format!("/v1/tickets/{}", b2["id"].as_str().expect("id")),
            SUPERVISOR,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(view["history"][0]["actor"], "partner-b");
}

#[tokio::test]
async fn console_operators_share_one_key_space() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn(&redis, &dir).await;
    let res = app.post("/v1/tickets", OPERATOR, &ticket("C-1")).await;
    assert_eq!(res.status(), 201);
    let first: Value = res.json().await.expect("json");
    // A retry from another console (here the admin's) finds the same ticket.
    let res = app.post("/v1/tickets", ADMIN, &ticket("C-1")).await;
    assert_eq!(res.status(), 200);
    let again: Value = res.json().await.expect("json");
    assert_eq!(again["id"], first["id"]);
    // A partner's C-1 is the partner's own.
    let res = app.post("/v1/tickets", PARTNER, &ticket("C-1")).await;
    assert_eq!(res.status(), 201);
}

#[tokio::test]
async fn keys_written_before_the_upgrade_are_still_honoured_for_their_sender() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn(&redis, &dir).await;
    let res = app.post("/v1/tickets", PARTNER, &ticket("OLD-1")).await;
    assert_eq!(res.status(), 201);
    let first: Value = res.json().await.expect("json");
    let id = first["id"].as_str().expect("id");

    // Make it look as stored by the old county-local scheme: only
    // `hl:{county}:idem:<source>:<external_id>` = `<id>|<hash>`, no reservation.
    let mut conn = redis.conn();
    let keys: Vec<String> = conn.keys("hl:*idem*OLD-1*").expect("keys");
    let mut value = None;
    for k in &keys {
        let v: Option<String> = conn.get(k).expect("get");
        if k.starts_with("hl:{320831}:") {
            value = v;
        }
        let _: () = conn.del(k).expect("del");
    }
    let hash = value
        .as_deref()
        .and_then(|v| v.rsplit('|').next())
        .expect("county key")
        .to_string();
    let _: () = conn
        .set("hl:{320831}:idem:12345:OLD-1", format!("{id}|{hash}"))
        .expect("set");

    let res = app.post("/v1/tickets", PARTNER, &ticket("OLD-1")).await;
    assert_eq!(res.status(), 200, "the old key finds the ticket");
    let again: Value = res.json().await.expect("json");
    assert_eq!(again["id"], first["id"]);
    let mut changed = ticket("OLD-1");
    changed["text"] = json!("完全不同的内容：邻居装修噪音太大");
    let res = app.post("/v1/tickets", PARTNER, &changed).await;
    assert_eq!(res.status(), 409);
    // Another sender's id is its own even where an old key exists.
    let res = app.post("/v1/tickets", PARTNER_B, &ticket("OLD-1")).await;
    assert_eq!(res.status(), 201);
    let theirs: Value = res.json().await.expect("json");
    assert_ne!(theirs["id"], first["id"]);
}

fn now_secs() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        .to_string()
}

/// A request signed with version 2 by `key`: the signature covers `method`, `path_and_query`
/// (as sent), the timestamp, the nonce and the body.
fn v2(
    app: &TestApp,
    key: &str,
    method: reqwest::Method,
    path_and_query: &str,
    nonce: &str,
    body: &[u8],
) -> reqwest::RequestBuilder {
    let ts = now_secs();
    let sig = hotline_gateway::auth::sign_v2(
        SECRET.as_bytes(),
        method.as_str(),
        path_and_query,
        &ts,
        Some(nonce),
        body,
    );
    app.http
        .request(method, format!("{}{path_and_query}", app.base))
        .header("x-hotline-key", key)
        .header("x-hotline-timestamp", ts)
        .header("x-hotline-nonce", nonce)
        .header("x-hotline-signature-version", "2")
        .header("x-hotline-signature", sig)
        .header("content-type", "application/json")
        .body(body.to_vec())
}

/// Sends a captured request (its headers exactly) as another method and path.
fn resend_as(
    app: &TestApp,
    captured: &reqwest::Request,
    method: reqwest::Method,
    path_and_query: &str,
) -> reqwest::RequestBuilder {
    let mut out = app
        .http
        .request(method, format!("{}{path_and_query}", app.base));
    for (name, value) in captured.headers() {
        out = out.header(name, value);
    }
    if let Some(body) = captured.body().and_then(|b| b.as_bytes()) {
        out = out.body(body.to_vec());
    }
    out
}

async fn reason_of(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    (status, body["detail"].as_str().unwrap_or("").to_string())
}

#[tokio::test]
async fn a_v2_signature_covers_method_path_and_query() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn(&redis, &dir).await;
    let post = reqwest::Method::POST;
    let get = reqwest::Method::GET;

    let mut ids = vec![];
    for ext in ["S-A", "S-B"] {
        let body = serde_json::to_vec(&ticket(ext)).expect("json");
        let res = v2(&app, "ka", post.clone(), "/v1/tickets", ext, &body)
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status(), 201, "{:?}", reason_of(res).await);
        let v: Value = res.json().await.expect("json");
        ids.push(v["id"].as_str().expect("id").to_string());
    }
    let (a, b) = (&ids[0], &ids[1]);

    // A signed GET of A, captured, and sent as a withdraw of A.
    let captured = v2(
        &app,
        "ka",
        get.clone(),
        &format!("/v1/tickets/{a}"),
        "g-1",
        b"",
    )
    .build()
    .expect("request");
    let res = resend_as(
        &app,
        &captured,
        post.clone(),
        &format!("/v1/tickets/{a}/withdraw"),
    )
    .send()
    .await
    .expect("sent");
    let (status, detail) = reason_of(res).await;
    assert_eq!(status, 401, "{detail}");
    assert!(detail.contains("bad x-hotline-signature"), "{detail}");
    // The GET itself is fine.
    let res = app.http.execute(captured).await.expect("sent");
    assert_eq!(res.status(), 200);

    // A signed withdraw of A, sent for B.
    let withdraw = br#"{"reason":"caller withdrew"}"#;
    let captured = v2(
        &app,
        "ka",
        post.clone(),
        &format!("/v1/tickets/{a}/withdraw"),
        "w-1",
        withdraw,
    )
    .build()
    .expect("request");
    let res = resend_as(
        &app,
        &captured,
        post.clone(),
        &format!("/v1/tickets/{b}/withdraw"),
    )
    .send()
    .await
    .expect("sent");
    assert_eq!(reason_of(res).await.0, 401);
    let (status, view) = support::read_ticket(&app, b, SUPERVISOR).await;
    assert_eq!(status, 200);
    assert_eq!(view["status"], "queued", "B was not withdrawn");

    // A changed query.
    let history = format!("/v1/tickets/{a}/history?offset=0&limit=5");
    let captured = v2(&app, "ka", get.clone(), &history, "h-1", b"")
        .build()
        .expect("request");
    let res = resend_as(
        &app,
        &captured,
        get.clone(),
        &format!("/v1/tickets/{a}/history?offset=1&limit=5"),
    )
    .send()
    .await
    .expect("sent");
    assert_eq!(reason_of(res).await.0, 401);
    // The query's order and its escaping do not matter: it is signed in canonical form.
    let res = v2(
        &app,
        "ka",
        get.clone(),
        &format!("/v1/tickets/{a}/history?limit=5&offset=%30"),
        "h-2",
        b"",
    )
    .send()
    .await
    .expect("sent");
    assert_eq!(res.status(), 200, "{:?}", reason_of(res).await);
}

#[tokio::test]
async fn v1_signatures_are_refused_where_v2_is_required_and_accepted_where_allowed() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn(&redis, &dir).await;
    let v1 = |key: &str, ext: &str| {
        let body = serde_json::to_vec(&ticket(ext)).expect("json");
        let ts = now_secs();
        let sig = hotline_gateway::auth::sign_with_nonce(SECRET.as_bytes(), &ts, Some(ext), &body);
        app.http
            .post(format!("{}/v1/tickets", app.base))
            .header("x-hotline-key", key)
            .header("x-hotline-timestamp", ts)
            .header("x-hotline-nonce", ext)
            .header("x-hotline-signature", sig)
            .header("content-type", "application/json")
            .body(body)
    };
    let (status, detail) = reason_of(v1("ka", "V-1").send().await.expect("sent")).await;
    assert_eq!(status, 401);
    assert!(detail.contains("version"), "{detail}");
    let res = v1("kold", "V-2").send().await.expect("sent");
    assert_eq!(res.status(), 201, "{:?}", reason_of(res).await);
    // v2 works for both.
    let body = serde_json::to_vec(&ticket("V-3")).expect("json");
    let res = v2(
        &app,
        "kold",
        reqwest::Method::POST,
        "/v1/tickets",
        "n-3",
        &body,
    )
    .send()
    .await
    .expect("sent");
    assert_eq!(res.status(), 201);
    // An unknown version is named.
    let mut req = v2(
        &app,
        "ka",
        reqwest::Method::POST,
        "/v1/tickets",
        "n-4",
        &body,
    )
    .build()
    .expect("request");
    req.headers_mut().insert(
        "x-hotline-signature-version",
        reqwest::header::HeaderValue::from_static("3"),
    );
    let res = app.http.execute(req).await.expect("sent");
    let (status, detail) = reason_of(res).await;
    assert_eq!(status, 401);
    assert!(detail.contains("x-hotline-signature-version"), "{detail}");
}

#[tokio::test]
async fn a_key_reserved_by_an_attempt_that_stopped_is_finished_by_its_retry() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn(&redis, &dir).await;
    // A gateway reserved the key for 320831 and stopped before registering the ticket.
    let _: () = redis
        .conn()
        .set("hl:{idem:p.partner-12345:12345:R-1}", "320831|0")
        .expect("set");
    // Another county is refused, naming no ticket (there is none yet) but the county.
    let res = app
        .post("/v1/tickets", PARTNER, &in_county("R-1", "320324"))
        .await;
    assert_eq!(res.status(), 409);
    let problem: Value = res.json().await.expect("json");
    assert!(problem.get("ticket_id").is_none(), "{problem}");
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("320831")),
        "{problem}"
    );
    // The retry for the reserved county registers it, once.
    let res = app.post("/v1/tickets", PARTNER, &ticket("R-1")).await;
    assert_eq!(res.status(), 201);
    let res = app.post("/v1/tickets", PARTNER, &ticket("R-1")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(tickets_in(&redis, "320831"), 1);
    assert_eq!(tickets_in(&redis, "320324"), 0);
}

#[tokio::test]
async fn a_captured_first_form_get_cannot_be_sent_as_a_withdraw_by_default() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("partners.secret");
    std::fs::write(&file, format!("{SECRET}\n")).expect("write secret");
    // The partner signs with the entry's default settings; its bearer token (same name) sends
    // the ticket, so the ticket is the partner's own.
    let extra = format!(
        "{}\n[[auth.partners]]\nname = \"signed-a\"\nkey_id = \"ka\"\nsecret_file = \"{}\"\n",
        token_entry("signed-a", "partner", "t-signed-a", ""),
        file.display()
    );
    let app = TestApp::spawn_with(&redis, &extra).await;
    let res = app.post("/v1/tickets", "t-signed-a", &ticket("W-1")).await;
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_string();
    // A GET signed in the first form (timestamp, nonce, empty body), captured and sent as a
    // withdraw of the same ticket: the signature covers neither method nor path.
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        .to_string();
    let sig = hotline_gateway::auth::sign_with_nonce(SECRET.as_bytes(), &ts, Some("c-1"), b"");
    let res = app
        .http
        .post(format!("{}/v1/tickets/{id}/withdraw", app.base))
        .header("x-hotline-key", "ka")
        .header("x-hotline-timestamp", &ts)
        .header("x-hotline-nonce", "c-1")
        .header("x-hotline-signature", &sig)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 401, "a captured GET withdrew the ticket");
    let (_, view) = support::read_ticket(&app, &id, SUPERVISOR).await;
    assert_eq!(view["status"], "queued");
}

/// A partner's event stream carries its own tickets' events only: another partner's ticket ids,
/// classifications and queues, and agents' presence, are not its business.
#[tokio::test]
async fn a_partners_event_stream_carries_its_own_tickets_only() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn(&redis, &dir).await;
    let res = app
        .http
        .get(format!("{}/v1/events", app.base))
        .bearer_auth(PARTNER_B)
        .send()
        .await
        .expect("stream");
    assert_eq!(res.status(), 200);
    let mut stream = support::SseReader {
        res,
        buf: String::new(),
    };
    let a: Value = app
        .post("/v1/tickets", PARTNER, &ticket("EV-A"))
        .await
        .json()
        .await
        .expect("json");
    let b: Value = app
        .post("/v1/tickets", PARTNER_B, &ticket("EV-B"))
        .await
        .json()
        .await
        .expect("json");
    // The first event B sees is its own ticket's, though A's was created before it.
    let (_, event) = stream
        .next_of(&["ticket.created"], std::time::Duration::from_secs(10))
        .await;
    assert_eq!(
        event["id"], b["id"],
        "partner B saw {event} (A's is {})",
        a["id"]
    );
}
