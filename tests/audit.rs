//! The audit log of privileged actions (issue 18), against a real `redis-server` and a real
//! PostgreSQL: every privileged action leaves its intent and its outcome with who, which
//! request, what and what changed; admins read the log by filter and page; nobody else reads
//! it; the gateway's database user cannot rewrite it; and with the archive down a privileged
//! action is refused and not carried out. No mock.

mod support;

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use support::{
    ADMIN, OPERATOR, PgServer, RedisServer, SUPERVISOR, TestApp, act, create_ticket,
    fresh_database, read_ticket, status_and_json, ticket, token_entry, wait_for,
};

const SECOND_ADMIN: &str = "t-admin-b";
const REGIONAL_ADMIN: &str = "t-admin-3208";
const FAR_SUPERVISOR: &str = "t-supervisor-1101";

/// The archive at `db`, a partner with a callback URL (for replays), a second admin, an admin
/// limited to region 3208 and a supervisor limited to 1101.
fn config(db: &str, secret_file: &std::path::Path) -> String {
    format!(
        r#"
[archive]
url = "{db}"

[[auth.partners]]
name = "platform-12345"
key_id = "k-12345"
secret_file = "{secret}"
callback_url = "http://127.0.0.1:9/callback"
callback_events = ["ticket.accepted"]
{b}{r}{f}"#,
        secret = secret_file.display(),
        b = token_entry("admin-b", "admin", SECOND_ADMIN, ""),
        r = token_entry(
            "admin-3208",
            "admin",
            REGIONAL_ADMIN,
            "regions = [\"3208\"]"
        ),
        f = token_entry(
            "supervisor-1101",
            "supervisor",
            FAR_SUPERVISOR,
            "regions = [\"1101\"]"
        ),
    )
}

struct Setup {
    app: TestApp,
    db: String,
    _redis: RedisServer,
    _dir: tempfile::TempDir,
}

async fn setup_with(db: String) -> Setup {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let secret_file = dir.path().join("partner.secret");
    std::fs::write(&secret_file, "a partner secret of the 12345 platform").expect("secret");
    let app = TestApp::spawn_with(&redis, &config(&db, &secret_file)).await;
    Setup {
        app,
        db,
        _redis: redis,
        _dir: dir,
    }
}

async fn setup() -> Setup {
    setup_with(fresh_database()).await
}

fn mediator(capacity: u32) -> Value {
    json!({"name": "李调解员", "kind": "mediator", "regions": ["320831"], "tier": "county",
           "capacity": capacity, "status": "available", "contact": "8001"})
}

/// Sends a request with the `x-request-id` header (and the body, if any); status and JSON.
async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    request_id: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app
        .http
        .request(method, format!("{}{path}", app.base))
        .bearer_auth(token)
        .header("x-request-id", request_id);
    if let Some(body) = body {
        req = req.json(&body);
    }
    status_and_json(req.send().await.expect("sent")).await
}

/// `GET /v1/admin/audit` with `query` as `token`.
async fn read_log(app: &TestApp, token: &str, query: &[(&str, &str)]) -> (u16, Value) {
    let res = app
        .http
        .get(format!("{}/v1/admin/audit", app.base))
        .bearer_auth(token)
        .query(query)
        .send()
        .await
        .expect("sent");
    status_and_json(res).await
}

/// Every entry of the log, oldest first, read page by page as the admin with `query`.
async fn all_entries(app: &TestApp, query: &[(&str, &str)], limit: &str) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let mut q: Vec<(&str, &str)> = query.to_vec();
        q.push(("limit", limit));
        if let Some(c) = &cursor {
            q.push(("cursor", c));
        }
        let (status, page) = read_log(app, ADMIN, &q).await;
        assert_eq!(status, 200, "{page}");
        let entries = page["entries"].as_array().expect("entries").clone();
        out.extend(entries);
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => {
                out.reverse();
                return out;
            }
        }
    }
    panic!("the pages never ended");
}

/// The entries of one request, oldest first.
async fn entries_of(app: &TestApp, request_id: &str) -> Vec<Value> {
    all_entries(app, &[], "500")
        .await
        .into_iter()
        .filter(|e| e["request_id"] == request_id)
        .collect()
}

/// The intent and outcome entries of one request: two, by `who` (token name and role), of
/// `action` on `target`, the outcome pointing at the intent. Returns their details.
async fn intent_and_outcome(
    app: &TestApp,
    request_id: &str,
    who: (&str, &str),
    action: &str,
    target: Option<&str>,
) -> (Value, Value) {
    let entries = entries_of(app, request_id).await;
    assert_eq!(entries.len(), 2, "{request_id}: {entries:#?}");
    for e in &entries {
        assert_eq!(
            (e["actor"].as_str(), e["role"].as_str()),
            (Some(who.0), Some(who.1)),
            "{e}"
        );
        assert_eq!(e["action"], action, "{e}");
        assert_eq!(e["target"].as_str(), target, "{e}");
        assert!(e["at"].is_string(), "{e}");
    }
    let (intent, outcome) = (&entries[0], &entries[1]);
    assert!(intent["detail"].get("outcome").is_none(), "{intent}");
    assert_eq!(outcome["detail"]["intent"], intent["seq"], "{outcome}");
    (intent["detail"].clone(), outcome["detail"].clone())
}

fn id_of(t: &Value) -> String {
    t["id"].as_str().expect("id").to_string()
}

#[tokio::test]
async fn every_privileged_action_leaves_who_which_request_what_and_what_changed() {
    let s = setup().await;
    let app = &s.app;
    let admin = ("admin", "admin");
    let supervisor = ("supervisor", "supervisor");

    // Defining an agent: before (none) and after; redefining it: the old and the new.
    let (status, v) = send(
        app,
        Method::PUT,
        "/v1/agents/m-aud-1",
        ADMIN,
        "rq-define-new",
        Some(mediator(50)),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let (intent, outcome) =
        intent_and_outcome(app, "rq-define-new", admin, "agent.define", Some("m-aud-1")).await;
    assert_eq!(intent["before"], Value::Null);
    assert_eq!(intent["after"]["capacity"], 50);
    assert_eq!(intent["after"]["contact"], "8001");
    assert_eq!(outcome["outcome"], "done");
    let (status, _) = send(
        app,
        Method::PUT,
        "/v1/agents/m-aud-1",
        ADMIN,
        "rq-define-change",
        Some(mediator(60)),
    )
    .await;
    assert_eq!(status, 200);
    let (intent, _) = intent_and_outcome(
        app,
        "rq-define-change",
        admin,
        "agent.define",
        Some("m-aud-1"),
    )
    .await;
    assert_eq!(
        (&intent["before"]["capacity"], &intent["after"]["capacity"]),
        (&json!(50), &json!(60))
    );

    // A supervisor's raise: the reason, the band before and after.
    let id = id_of(&create_ticket(app, OPERATOR, &ticket("AUD-1")).await);
    let (status, v) = send(
        app,
        Method::POST,
        &format!("/v1/tickets/{id}/raise"),
        SUPERVISOR,
        "rq-raise",
        Some(json!({"reason": "来电人情绪激动"})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let (intent, outcome) =
        intent_and_outcome(app, "rq-raise", supervisor, "ticket.raise", Some(&id)).await;
    assert_eq!(intent["asked"]["reason"], "来电人情绪激动");
    let before = intent["before"]["band"].as_u64().expect("band before");
    assert_eq!(outcome["after"]["band"], before - 1, "{outcome}");
    assert_eq!(outcome["outcome"], "done");

    // A supervisor's transfer is a reassignment: what was asked, the labels before and after.
    let (status, v) = send(
        app,
        Method::POST,
        &format!("/v1/tickets/{id}/transfer"),
        SUPERVISOR,
        "rq-reassign",
        Some(json!({"category": "contract_debt", "reason": "其实是借款纠纷"})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let (intent, outcome) =
        intent_and_outcome(app, "rq-reassign", supervisor, "ticket.reassign", Some(&id)).await;
    assert_eq!(
        intent["asked"],
        json!({"category": "contract_debt", "reason": "其实是借款纠纷"})
    );
    assert_ne!(intent["before"]["category"], "contract_debt", "{intent}");
    assert_eq!(outcome["after"]["category"], "contract_debt", "{outcome}");

    // An ordinary action on a ticket is no privileged action.
    let (status, _) = send(
        app,
        Method::POST,
        &format!("/v1/tickets/{id}/note"),
        OPERATOR,
        "rq-note",
        Some(json!({"note": "来电人王建国又打来电话"})),
    )
    .await;
    assert_eq!(status, 200);
    assert!(entries_of(app, "rq-note").await.is_empty());

    // Requests refused on their face exercise no privilege and leave nothing: a raise
    // without a reason, a transfer outside the supervisor's regions.
    for (token, action, body, status) in [
        (SUPERVISOR, "raise", json!({}), 422),
        (
            FAR_SUPERVISOR,
            "transfer",
            json!({"category": "labour", "reason": "改派"}),
            403,
        ),
    ] {
        let (got, v) = send(
            app,
            Method::POST,
            &format!("/v1/tickets/{id}/{action}"),
            token,
            "rq-on-its-face",
            Some(body),
        )
        .await;
        assert_eq!(got, status, "{action}: {v}");
    }
    assert!(entries_of(app, "rq-on-its-face").await.is_empty());

    // A raise refused after its intent was written: the outcome says so.
    let other = id_of(&create_ticket(app, OPERATOR, &ticket("AUD-2")).await);
    assert_eq!(
        act(app, &other, "withdraw", OPERATOR, json!({})).await.0,
        200
    );
    let (status, _) = send(
        app,
        Method::POST,
        &format!("/v1/tickets/{other}/raise"),
        SUPERVISOR,
        "rq-raise-refused",
        Some(json!({"reason": "督办"})),
    )
    .await;
    assert_eq!(status, 409);
    let (_, outcome) = intent_and_outcome(
        app,
        "rq-raise-refused",
        supervisor,
        "ticket.raise",
        Some(&other),
    )
    .await;
    assert_eq!(
        outcome,
        json!({"outcome": "refused", "status": 409, "problem": "/problems/state-conflict",
               "intent": outcome["intent"]})
    );

    // A reload: the classifier before and after.
    let (status, report) = send(
        app,
        Method::POST,
        "/v1/admin/reload",
        ADMIN,
        "rq-reload",
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 202, "{report}");
    let (intent, outcome) = intent_and_outcome(app, "rq-reload", admin, "admin.reload", None).await;
    assert!(intent["classifier_model"].is_string(), "{intent}");
    assert_eq!(outcome["classifier_model"], report["classifier_model"]);

    // A replay of a partner's dead letters: the partner, the counties, how many.
    let (status, v) = send(
        app,
        Method::POST,
        "/v1/admin/callbacks/replay",
        ADMIN,
        "rq-replay",
        Some(json!({"partner": "platform-12345"})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let (intent, outcome) = intent_and_outcome(
        app,
        "rq-replay",
        admin,
        "callbacks.replay",
        Some("platform-12345"),
    )
    .await;
    assert!(
        intent["counties"]
            .as_array()
            .expect("counties")
            .contains(&json!("320831")),
        "{intent}"
    );
    assert_eq!(outcome["replayed"], v["replayed"]);

    // An admin signing an agent off on its behalf.
    let (status, v) = send(
        app,
        Method::POST,
        "/v1/agents/m-aud-1/heartbeat",
        ADMIN,
        "rq-presence",
        Some(json!({"online": false})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let (intent, _) =
        intent_and_outcome(app, "rq-presence", admin, "agent.presence", Some("m-aud-1")).await;
    assert_eq!(intent["online"], false);

    // Deleting the agent: the definition it had.
    let (status, v) = send(
        app,
        Method::DELETE,
        "/v1/agents/m-aud-1",
        ADMIN,
        "rq-delete",
        None,
    )
    .await;
    assert_eq!(status, 204, "{v}");
    let (intent, outcome) =
        intent_and_outcome(app, "rq-delete", admin, "agent.delete", Some("m-aud-1")).await;
    assert_eq!(intent["deleted"]["capacity"], 60);
    assert_eq!(outcome["outcome"], "done");

    // Without an x-request-id the gateway's own is recorded; the caller's personal data and
    // the tokens are nowhere in the log.
    let (status, _) =
        status_and_json(app.put("/v1/agents/m-aud-2", ADMIN, &mediator(5)).await).await;
    assert_eq!(status, 200);
    let log = all_entries(app, &[], "500").await;
    let last = log.last().expect("entries");
    assert_eq!(last["target"], "m-aud-2");
    assert!(
        last["request_id"].as_str().is_some_and(|r| r.len() >= 32),
        "{last}"
    );
    let text = serde_json::to_string(&log).expect("json");
    for secret in [
        "13812348000",
        "王建国",
        ADMIN,
        SUPERVISOR,
        "a partner secret",
    ] {
        assert!(!text.contains(secret), "{secret} in the audit log");
    }
}

#[tokio::test]
async fn admins_read_the_log_newest_first_by_filter_and_page_and_nobody_else_reads_it() {
    let s = setup().await;
    let app = &s.app;
    for i in 1..=5 {
        let path = format!("/v1/agents/a-{i}");
        let (status, _) = send(
            app,
            Method::PUT,
            &path,
            ADMIN,
            &format!("rq-a{i}"),
            Some(mediator(i)),
        )
        .await;
        assert_eq!(status, 200);
    }
    for i in 1..=2 {
        let path = format!("/v1/agents/b-{i}");
        let (status, _) = send(
            app,
            Method::PUT,
            &path,
            SECOND_ADMIN,
            &format!("rq-b{i}"),
            Some(mediator(i)),
        )
        .await;
        assert_eq!(status, 200);
    }

    // Pages of 3, newest first, the cursor leading on without gaps or repeats.
    let (status, first) = read_log(app, ADMIN, &[("limit", "3")]).await;
    assert_eq!(status, 200, "{first}");
    let seqs: Vec<i64> = first["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(seqs.len(), 3);
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "{seqs:?}");
    let everything = all_entries(app, &[], "3").await;
    assert_eq!(everything.len(), 14, "7 actions, 2 entries each");
    let all_seqs: Vec<i64> = everything
        .iter()
        .map(|e| e["seq"].as_i64().expect("seq"))
        .collect();
    assert!(all_seqs.windows(2).all(|w| w[0] < w[1]), "{all_seqs:?}");
    assert_eq!(
        all_entries(app, &[], "7").await,
        everything,
        "the same log whatever the page size"
    );
    let (_, exact) = read_log(app, ADMIN, &[("limit", "14")]).await;
    assert_eq!(exact["entries"].as_array().map(Vec::len), Some(14));
    assert!(
        exact["next_cursor"].is_null(),
        "no empty last page: {exact}"
    );

    // Filters.
    let by_b = all_entries(app, &[("actor", "admin-b")], "500").await;
    assert_eq!(by_b.len(), 4);
    assert!(by_b.iter().all(|e| e["actor"] == "admin-b"));
    let on_a3 = all_entries(app, &[("target", "a-3")], "500").await;
    assert_eq!(on_a3.len(), 2);
    assert!(on_a3.iter().all(|e| e["request_id"] == "rq-a3"));
    let defines = all_entries(app, &[("action", "agent.define"), ("actor", "admin")], "2").await;
    assert_eq!(defines.len(), 10);
    assert!(
        all_entries(app, &[("action", "agent.delete")], "500")
            .await
            .is_empty()
    );
    let last_at = everything[13]["at"].as_str().expect("at");
    let first_at = everything[0]["at"].as_str().expect("at");
    let from_last = all_entries(app, &[("from", last_at)], "500").await;
    assert!(from_last.contains(&everything[13]), "from is inclusive");
    assert!(!from_last.contains(&everything[0]));
    assert!(
        all_entries(app, &[("to", first_at)], "500")
            .await
            .is_empty(),
        "to is exclusive"
    );
    let window = all_entries(app, &[("from", first_at), ("to", last_at)], "500").await;
    assert!(window.contains(&everything[0]) && !window.contains(&everything[13]));

    // Bad parameters are named.
    for (query, field) in [
        (("action", "agent.redefine"), "action"),
        (("cursor", "abc"), "cursor"),
        (("limit", "0"), "limit"),
        (("limit", "501"), "limit"),
    ] {
        let (status, v) = read_log(app, ADMIN, &[query]).await;
        assert_eq!(status, 422, "{query:?}: {v}");
        assert_eq!(v["errors"][0]["field"], field, "{v}");
    }
    let (status, _) = read_log(app, ADMIN, &[("from", "yesterday")]).await;
    assert_eq!(status, 400);

    // Admins without regions only.
    for token in [SUPERVISOR, OPERATOR, REGIONAL_ADMIN] {
        let (status, v) = read_log(app, token, &[]).await;
        assert_eq!(status, 403, "{token}: {v}");
    }
    let res = app
        .http
        .get(format!("{}/v1/admin/audit", app.base))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn the_gateways_database_user_cannot_update_delete_or_truncate_the_log() {
    let s = setup().await;
    let (status, _) = send(
        &s.app,
        Method::PUT,
        "/v1/agents/m-kept",
        ADMIN,
        "rq-kept",
        Some(mediator(3)),
    )
    .await;
    assert_eq!(status, 200);

    // The gateway's own URL: the same database user.
    let (client, connection) = tokio_postgres::connect(&s.db, tokio_postgres::NoTls)
        .await
        .expect("connects");
    let driver = tokio::spawn(connection);
    for statement in [
        "UPDATE audit_log SET actor = 'someone else'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        let e = client.batch_execute(statement).await.expect_err(statement);
        let db = e
            .as_db_error()
            .unwrap_or_else(|| panic!("{statement}: {e}"));
        assert_eq!(
            db.code(),
            &tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE,
            "{statement}: {db}"
        );
        assert!(db.message().contains("append-only"), "{statement}: {db}");
    }
    let rows = client
        .query("SELECT actor, request_id FROM audit_log ORDER BY seq", &[])
        .await
        .expect("select");
    let kept: Vec<(String, Option<String>)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let entry = ("admin".to_string(), Some("rq-kept".to_string()));
    assert_eq!(kept, vec![entry.clone(), entry]);
    drop(client);
    let _ = driver.await;
}

#[tokio::test]
async fn with_the_archive_down_a_privileged_action_is_refused_and_not_carried_out() {
    let mut pg = PgServer::start();
    let s = setup_with(pg.url()).await;
    let app = &s.app;
    let (status, _) = send(
        app,
        Method::PUT,
        "/v1/agents/m-old",
        ADMIN,
        "rq-up",
        Some(mediator(7)),
    )
    .await;
    assert_eq!(status, 200);
    let id = id_of(&create_ticket(app, OPERATOR, &ticket("AUD-DOWN")).await);
    let history = |v: &Value| v["history_total"].clone();
    let before = history(&read_ticket(app, &id, SUPERVISOR).await.1);

    pg.kill();
    let refused = |v: &Value, what: &str| {
        assert_eq!(v["type"], "/problems/archive-unavailable", "{what}: {v}");
    };
    let (status, v) = send(
        app,
        Method::PUT,
        "/v1/agents/m-new",
        ADMIN,
        "rq-down-define",
        Some(mediator(1)),
    )
    .await;
    assert_eq!(status, 503, "{v}");
    refused(&v, "define");
    let (status, v) = send(
        app,
        Method::PUT,
        "/v1/agents/m-old",
        ADMIN,
        "rq-down-redefine",
        Some(mediator(99)),
    )
    .await;
    assert_eq!(status, 503, "{v}");
    let (status, v) = send(
        app,
        Method::DELETE,
        "/v1/agents/m-old",
        ADMIN,
        "rq-down-delete",
        None,
    )
    .await;
    assert_eq!(status, 503, "{v}");
    let agents = support::agents_by_id(app).await;
    assert!(
        !agents.contains_key("m-new"),
        "a refused definition was carried out"
    );
    assert_eq!(
        agents["m-old"]["capacity"], 7,
        "a refused change was carried out"
    );
    let (status, v) = send(
        app,
        Method::POST,
        &format!("/v1/tickets/{id}/raise"),
        SUPERVISOR,
        "rq-down-raise",
        Some(json!({"reason": "督办"})),
    )
    .await;
    assert_eq!(status, 503, "{v}");
    refused(&v, "raise");
    assert_eq!(
        history(&read_ticket(app, &id, SUPERVISOR).await.1),
        before,
        "a refused raise was carried out"
    );
    let (status, v) = send(
        app,
        Method::POST,
        "/v1/admin/reload",
        ADMIN,
        "rq-down-reload",
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 503, "{v}");
    let (status, v) = read_log(app, ADMIN, &[]).await;
    assert_eq!(status, 503, "{v}");

    // Back up: the same definition goes through, and none of the refused ones is in the log.
    pg.restart();
    wait_for(
        Duration::from_secs(20),
        "the archive to answer again",
        || async {
            let (status, _) = send(
                app,
                Method::PUT,
                "/v1/agents/m-new",
                ADMIN,
                "rq-again",
                Some(mediator(1)),
            )
            .await;
            (status == 200).then_some(())
        },
    )
    .await;
    let log = all_entries(app, &[], "500").await;
    assert!(
        log.iter().all(|e| !e["request_id"]
            .as_str()
            .unwrap_or("")
            .starts_with("rq-down")),
        "{log:#?}"
    );
    assert!(log.iter().any(|e| e["request_id"] == "rq-again"));
    assert!(support::agents_by_id(app).await.contains_key("m-new"));
}
