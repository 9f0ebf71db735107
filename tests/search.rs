//! Searching tickets (issue 18): `GET /v1/tickets` over the open tickets in Redis and the ended
//! ones in the case archive, merged in one order and paged with a cursor; each filter, Chinese
//! text, region scope, partners' own tickets, validation, the audit of searches by phone, and
//! the archive being down. Real `redis-server` and real PostgreSQL; no mock.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use redis::Commands;
use serde_json::{Value, json};
use support::{
    ADMIN, AGENT, OPERATOR, PARTNER, PgServer, RedisServer, SUPERVISOR, TestApp, act,
    create_ticket, fresh_database, status_and_json, ticket, token_entry, wait_for,
};

/// Archive at once (`after_seconds = 0`), look every 100 ms.
fn archive_now(url: &str) -> String {
    format!("[archive]\nurl = \"{url}\"\nafter_seconds = 0\ninterval_ms = 100\n")
}

/// A mediator `m1` of county 320831 who may claim at once, with its token `t-m1`.
fn with_mediator(archive: &str) -> String {
    format!(
        "{archive}\n[agents.widening]\nmediation = [{{ tier = \"county\", after_seconds = 0 }}]\n{}",
        token_entry("agent m1", "agent", "t-m1", "agent_id = \"m1\"")
    )
}

/// `GET /v1/tickets` with these query pairs (encoded here), as `token`.
async fn search(app: &TestApp, token: &str, pairs: &[(&str, &str)]) -> (u16, Value) {
    let url =
        reqwest::Url::parse_with_params(&format!("{}/v1/tickets", app.base), pairs).expect("a URL");
    let path = format!("{}?{}", url.path(), url.query().unwrap_or(""));
    status_and_json(app.get(&path, token).await).await
}

/// The ids a search answered, in order; asserts `200`.
async fn ids(app: &TestApp, token: &str, pairs: &[(&str, &str)]) -> Vec<String> {
    let (status, v) = search(app, token, pairs).await;
    assert_eq!(status, 200, "{pairs:?}: {v}");
    v["tickets"]
        .as_array()
        .expect("tickets")
        .iter()
        .map(|t| t["id"].as_str().expect("id").to_string())
        .collect()
}

/// Query pairs of a search.
type Filters<'a> = Vec<(&'a str, &'a str)>;

fn in_redis(redis: &RedisServer, id: &str) -> bool {
    let county = &id[..6];
    redis
        .conn()
        .exists(format!("hl:{{{county}}}:t:{id}"))
        .expect("EXISTS")
}

async fn wait_archived(redis: &RedisServer, id: &str) {
    wait_for(Duration::from_secs(20), "the ticket to leave Redis", || {
        let gone = !in_redis(redis, id);
        async move { gone.then_some(()) }
    })
    .await;
}

fn neighbour(external_id: &str, county: &str, town: &str) -> Value {
    let mut t = ticket(external_id);
    t["source"] = json!("110");
    t["title"] = json!("邻里噪音纠纷");
    t["text"] = json!("来电人反映楼上邻居装修噪音很大，双方为此争吵，希望调解员上门调解邻里纠纷。");
    t["caller"] = json!({"name": "李四", "phone": "139-0000-1111"});
    t["region"] = json!({"code": county, "town": town});
    t
}

async fn ok(app: &TestApp, id: &str, action: &str, token: &str, body: Value) {
    let (status, v) = act(app, id, action, token, body).await;
    assert_eq!(status, 200, "{action} {id}: {v}");
}

fn id_of(receipt: &Value) -> String {
    receipt["id"].as_str().expect("id").to_string()
}

fn set(ids: &[&String]) -> BTreeSet<String> {
    ids.iter().map(|s| (*s).clone()).collect()
}

#[tokio::test]
async fn each_filter_finds_open_and_archived_tickets_alike() {
    let redis = RedisServer::start();
    let db = fresh_database();
    let app = TestApp::spawn_with(&redis, &with_mediator(&archive_now(&db))).await;
    put_mediator(&app).await;

    // Closed by the mediator, then archived: wages, 12345, 13812348000, 320831 城关镇.
    let closed = create_ticket(&app, OPERATOR, &ticket("S-1")).await;
    let closed_id = id_of(&closed);
    let claimed = support::claim(&app, "m1").await.expect("a claim");
    assert_eq!(claimed["ticket"]["id"], closed["id"], "{claimed}");
    let lease = claimed["lease_id"].as_str().expect("lease").to_string();
    ok(
        &app,
        &closed_id,
        "accept",
        "t-m1",
        json!({"lease_id": lease}),
    )
    .await;
    ok(
        &app,
        &closed_id,
        "resolve",
        "t-m1",
        json!({"outcome": "mediated", "summary": "双方达成还款协议"}),
    )
    .await;
    ok(
        &app,
        &closed_id,
        "follow_up",
        SUPERVISOR,
        json!({"satisfaction": 5}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    // Open, held by m1: wages again, same caller.
    let held = create_ticket(&app, OPERATOR, &ticket("S-2")).await;
    let held_id = id_of(&held);
    support::claim(&app, "m1").await.expect("a second claim");
    tokio::time::sleep(Duration::from_millis(5)).await;
    // Withdrawn and archived: a neighbours' quarrel from 110 in 440305, another caller.
    let withdrawn = create_ticket(&app, ADMIN, &neighbour("S-3", "440305", "粤海街道")).await;
    let withdrawn_id = id_of(&withdrawn);
    ok(&app, &withdrawn_id, "withdraw", SUPERVISOR, json!({})).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    // Open and queued: the same quarrel in 320831, 银集镇.
    let queued = create_ticket(&app, OPERATOR, &neighbour("S-4", "320831", "银集镇")).await;
    let queued_id = id_of(&queued);
    wait_archived(&redis, &closed_id).await;
    wait_archived(&redis, &withdrawn_id).await;

    let everything = [&closed_id, &held_id, &withdrawn_id, &queued_id];
    let (status, all) = search(&app, SUPERVISOR, &[]).await;
    assert_eq!(status, 200, "{all}");
    let listed: Vec<&Value> = all["tickets"].as_array().expect("tickets").iter().collect();
    assert_eq!(
        listed
            .iter()
            .map(|t| t["id"].as_str().unwrap_or(""))
            .collect::<Vec<_>>(),
        vec![&queued_id, &withdrawn_id, &held_id, &closed_id],
        "newest first, open and archived merged: {all}"
    );
    assert_eq!(all["next_cursor"], Value::Null);
    // What the list says of each ticket is what was registered and done.
    let by_id: BTreeMap<String, &Value> = listed
        .iter()
        .map(|t| (t["id"].as_str().unwrap_or("").to_string(), *t))
        .collect();
    for (receipt, status, archived, agent) in [
        (&closed, "closed", true, json!("m1")),
        (&held, "leased", false, json!("m1")),
        (&withdrawn, "withdrawn", true, Value::Null),
        (&queued, "queued", false, Value::Null),
    ] {
        let t = by_id[&id_of(receipt)];
        let c = &receipt["classification"];
        assert_eq!(t["status"], status, "{t}");
        assert_eq!(t["archived"], archived, "{t}");
        assert_eq!(t["agent"], agent, "{t}");
        assert_eq!(t["service"], c["service"], "{t}");
        assert_eq!(t["category"], c["category"], "{t}");
        assert_eq!(t["level"], c["warning_level"], "{t}");
        assert_eq!(t["created_at"], receipt["created_at"], "{t}");
        // Nobody's name or phone in a list.
        let text = t.to_string();
        assert!(
            !text.contains("王建国") && !text.contains("8000") && !text.contains("1111"),
            "{t}"
        );
        assert!(t.get("caller").is_none());
    }
    assert!(by_id[&closed_id]["resolved_at"].is_string());
    assert_eq!(by_id[&held_id]["resolved_at"], Value::Null);

    // Each filter alone: exactly the tickets that have the value, wherever they are kept.
    let facts = |field: &str, value: &str| -> BTreeSet<String> {
        by_id
            .iter()
            .filter(|(_, t)| t[field].as_str() == Some(value))
            .map(|(id, _)| id.clone())
            .collect()
    };
    let withdrawn_at = withdrawn["created_at"].as_str().expect("time").to_string();
    let cases: Vec<(Filters, BTreeSet<String>)> = vec![
        (vec![("source", "12345")], set(&[&closed_id, &held_id])),
        (vec![("source", "110")], set(&[&withdrawn_id, &queued_id])),
        (vec![("external_id", "S-3")], set(&[&withdrawn_id])),
        (
            vec![("phone", "138 1234 8000")],
            set(&[&closed_id, &held_id]),
        ),
        (
            vec![("phone", "13900001111")],
            set(&[&withdrawn_id, &queued_id]),
        ),
        (vec![("status", "closed")], set(&[&closed_id])),
        (vec![("status", "leased")], set(&[&held_id])),
        (vec![("status", "withdrawn")], set(&[&withdrawn_id])),
        (vec![("county", "440305")], set(&[&withdrawn_id])),
        (
            vec![("county", "320831")],
            set(&[&closed_id, &held_id, &queued_id]),
        ),
        (vec![("town", "城关镇")], set(&[&closed_id, &held_id])),
        (vec![("town", "粤海街道")], set(&[&withdrawn_id])),
        (vec![("agent", "m1")], set(&[&closed_id, &held_id])),
        (
            vec![("created_from", &withdrawn_at)],
            set(&[&withdrawn_id, &queued_id]),
        ),
        (
            vec![("created_to", &withdrawn_at)],
            set(&[&closed_id, &held_id]),
        ),
        (
            vec![("resolved_from", "2000-01-01T00:00:00Z")],
            set(&[&closed_id]),
        ),
        (
            vec![("resolved_to", "2000-01-01T00:00:00Z")],
            BTreeSet::new(),
        ),
        // Two filters: both must hold.
        (
            vec![("source", "110"), ("county", "320831")],
            set(&[&queued_id]),
        ),
    ];
    for field in ["service", "category", "level"] {
        for value in by_id
            .values()
            .filter_map(|t| t[field].as_str())
            .collect::<BTreeSet<_>>()
        {
            let found: BTreeSet<String> = ids(&app, SUPERVISOR, &[(field, value)])
                .await
                .into_iter()
                .collect();
            assert_eq!(found, facts(field, value), "{field}={value}");
        }
    }
    for (pairs, expected) in cases {
        let found: BTreeSet<String> = ids(&app, SUPERVISOR, &pairs).await.into_iter().collect();
        assert_eq!(found, expected, "{pairs:?}");
    }

    // Chinese text, inside a sentence, two characters, in the title or the body; a pair out of
    // order is not the substring.
    for (q, expected) in [
        ("拖欠工资", set(&[&closed_id, &held_id])),
        ("噪音", set(&[&withdrawn_id, &queued_id])),
        ("纠纷", set(&[&withdrawn_id, &queued_id])),
        ("双方", set(&everything)),
        ("多次协商未果", set(&[&closed_id, &held_id])),
        ("工资拖欠", BTreeSet::new()),
        ("民法典", BTreeSet::new()),
    ] {
        let found: BTreeSet<String> = ids(&app, SUPERVISOR, &[("q", q)])
            .await
            .into_iter()
            .collect();
        assert_eq!(found, expected, "q={q}");
    }

    // A search by phone is in the audit log, without the number.
    let (client, connection) = tokio_postgres::connect(&db, tokio_postgres::NoTls)
        .await
        .expect("connect to the archive");
    tokio::spawn(connection);
    let rows = client
        .query(
            "SELECT actor, role, detail::text, request_id FROM audit_log WHERE action = 'tickets.search'",
            &[],
        )
        .await
        .expect("audit log");
    assert_eq!(
        rows.len(),
        2,
        "one entry per search by phone, and only those"
    );
    for row in &rows {
        let detail: String = row.get(2);
        assert_eq!(row.get::<_, String>(0), "supervisor");
        assert_eq!(row.get::<_, String>(1), "supervisor");
        assert!(row.get::<_, Option<String>>(3).is_some(), "the request id");
        assert!(detail.contains("\"by_phone\": true"), "{detail}");
        assert!(
            !detail.contains("8000") && !detail.contains("1111"),
            "{detail}"
        );
    }
}

async fn put_mediator(app: &TestApp) {
    support::put_agent(
        app,
        "m1",
        &json!({"name": "调解员", "kind": "mediator", "regions": ["320831"], "tier": "county",
                "capacity": 100, "status": "available"}),
    )
    .await;
}

#[tokio::test]
async fn open_and_archived_tickets_page_through_in_order_none_twice_none_missing() {
    let redis = RedisServer::start();
    let app = TestApp::spawn_with(&redis, &archive_now(&fresh_database())).await;
    let mut created: Vec<(String, bool)> = Vec::new();
    for n in 0..60 {
        let t = ticket(&format!("P-{n}"));
        let id = id_of(&create_ticket(&app, OPERATOR, &t).await);
        let archived = n % 2 == 0;
        if archived {
            ok(&app, &id, "withdraw", OPERATOR, json!({})).await;
        }
        created.push((id, archived));
    }
    for (id, archived) in &created {
        if *archived {
            wait_archived(&redis, id).await;
        }
    }

    let mut listed: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut pairs = vec![("limit", "7")];
        if let Some(c) = &cursor {
            pairs.push(("cursor", c.as_str()));
        }
        let (status, page) = search(&app, SUPERVISOR, &pairs).await;
        assert_eq!(status, 200, "{page}");
        let tickets = page["tickets"].as_array().expect("tickets");
        assert!(tickets.len() <= 7);
        listed.extend(tickets.iter().cloned());
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        assert!(pages < 20, "paging does not end");
    }
    assert_eq!(pages, 9, "60 tickets in pages of 7");
    let ids: Vec<&str> = listed
        .iter()
        .map(|t| t["id"].as_str().unwrap_or(""))
        .collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "no ticket twice: {ids:?}");
    let expected: BTreeSet<&str> = created.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(unique, expected, "none missing");
    // Newest first, then the greater id; each from where it is kept.
    let keys: Vec<(String, String)> = listed
        .iter()
        .map(|t| {
            (
                t["created_at"].as_str().unwrap_or("").to_string(),
                t["id"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(keys, sorted);
    let archived: BTreeMap<&str, bool> = created.iter().map(|(id, a)| (id.as_str(), *a)).collect();
    for t in &listed {
        let id = t["id"].as_str().unwrap_or("");
        assert_eq!(t["archived"], archived[id], "{t}");
    }
    // The same pages filtered: only the archived half, by status.
    let withdrawn = ids_all(&app, &[("status", "withdrawn"), ("limit", "4")]).await;
    let expected: Vec<&str> = ids.iter().copied().filter(|id| archived[id]).collect();
    assert_eq!(withdrawn, expected);
}

/// Tickets leaving Redis for the archive while someone pages through them: every complete pass
/// lists each ticket once, wherever it was when its page was read. Redis is read before the
/// archive and a ticket is archived before it leaves Redis, so none can fall between the two
/// reads; one in both for a moment is listed once.
#[tokio::test]
async fn paging_while_tickets_move_to_the_archive_lists_each_once() {
    let redis = RedisServer::start();
    // One ticket per archiving step, so the move takes many steps and pages meet it midway.
    let config = format!(
        "[archive]\nurl = \"{}\"\nafter_seconds = 0\ninterval_ms = 50\nbatch = 1\n",
        fresh_database()
    );
    let app = TestApp::spawn_with(&redis, &config).await;
    let mut expected = BTreeSet::new();
    for n in 0..40 {
        let id = id_of(&create_ticket(&app, OPERATOR, &ticket(&format!("M-{n}"))).await);
        expected.insert(id);
    }
    for id in &expected {
        ok(&app, id, "withdraw", OPERATOR, json!({})).await;
    }
    let mut mixed = 0;
    for pass in 0..200 {
        let mut listed: Vec<(String, bool)> = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut pairs = vec![("limit", "3")];
            if let Some(c) = &cursor {
                pairs.push(("cursor", c.as_str()));
            }
            let (status, page) = search(&app, SUPERVISOR, &pairs).await;
            assert_eq!(status, 200, "{page}");
            for t in page["tickets"].as_array().expect("tickets") {
                let id = t["id"].as_str().unwrap_or("").to_string();
                listed.push((id, t["archived"].as_bool().unwrap_or(false)));
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        let ids: Vec<&String> = listed.iter().map(|(id, _)| id).collect();
        let unique: BTreeSet<String> = ids.iter().map(|id| (*id).clone()).collect();
        assert_eq!(
            unique.len(),
            ids.len(),
            "pass {pass}: a ticket twice: {ids:?}"
        );
        assert_eq!(unique, expected, "pass {pass}: a ticket missing");
        let archived = listed.iter().filter(|(_, a)| *a).count();
        if archived == listed.len() {
            break;
        }
        if archived > 0 {
            mixed += 1;
        }
    }
    assert!(
        mixed > 0,
        "no pass met the archiving midway: the test tested nothing"
    );
}

/// Every page of a search, as the supervisor: the ids in order.
async fn ids_all(app: &TestApp, pairs: &[(&str, &str)]) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut p: Vec<(&str, &str)> = pairs.to_vec();
        if let Some(c) = &cursor {
            p.push(("cursor", c.as_str()));
        }
        let (status, page) = search(app, SUPERVISOR, &p).await;
        assert_eq!(status, 200, "{page}");
        for t in page["tickets"].as_array().expect("tickets") {
            out.push(t["id"].as_str().unwrap_or("").to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
}

#[tokio::test]
async fn each_caller_sees_only_its_own_scope() {
    let redis = RedisServer::start();
    let app = TestApp::spawn_with(&redis, &archive_now(&fresh_database())).await;
    let here = id_of(&create_ticket(&app, OPERATOR, &ticket("R-1")).await);
    let mut there = ticket("R-2");
    there["region"] = json!({"code": "440305"});
    let there = id_of(&create_ticket(&app, ADMIN, &there).await);
    let there_archived = id_of(
        &create_ticket(&app, ADMIN, &{
            let mut t = ticket("R-3");
            t["region"] = json!({"code": "440305"});
            t
        })
        .await,
    );
    ok(&app, &there_archived, "withdraw", ADMIN, json!({})).await;
    let partners = id_of(&create_ticket(&app, PARTNER, &ticket("R-4")).await);
    wait_archived(&redis, &there_archived).await;

    // The operator of 320831 never sees 440305's, open or archived, and may not ask for them.
    let mine: BTreeSet<String> = ids(&app, OPERATOR, &[]).await.into_iter().collect();
    assert_eq!(mine, set(&[&here, &partners]));
    let (status, v) = search(&app, OPERATOR, &[("county", "440305")]).await;
    assert_eq!(status, 403, "{v}");
    assert!(
        ids(&app, OPERATOR, &[("external_id", "R-3")])
            .await
            .is_empty()
    );
    // A supervisor without region limits sees all; a partner only what it sent.
    assert_eq!(ids(&app, SUPERVISOR, &[]).await.len(), 4);
    assert_eq!(ids(&app, PARTNER, &[]).await, vec![partners.clone()]);
    assert!(
        ids(&app, PARTNER, &[("external_id", "R-1")])
            .await
            .is_empty()
    );
    // Agents work what they claim; they do not search.
    let (status, v) = search(&app, AGENT, &[]).await;
    assert_eq!(status, 403, "{v}");
    assert_eq!(v["type"], "/problems/forbidden");
    let _ = there;
}

#[tokio::test]
async fn invalid_filters_are_named_and_unknown_ones_refused() {
    let redis = RedisServer::start();
    let app = TestApp::spawn(&redis).await;
    let (status, v) = search(
        &app,
        SUPERVISOR,
        &[
            ("q", "工"),
            ("status", "open"),
            ("level", "purple"),
            ("county", "999999"),
            ("created_from", "yesterday"),
            ("limit", "500"),
            ("cursor", "xyz"),
            ("phone", "12"),
        ],
    )
    .await;
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["type"], "/problems/validation-error");
    let fields: BTreeSet<&str> = v["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(
        fields,
        [
            "q",
            "status",
            "level",
            "county",
            "created_from",
            "limit",
            "cursor",
            "phone"
        ]
        .into_iter()
        .collect()
    );
    // A misspelt filter would silently list everything: it is refused.
    let (status, v) = search(&app, SUPERVISOR, &[("stauts", "closed")]).await;
    assert_eq!(status, 400, "{v}");
}

#[tokio::test]
async fn with_the_archive_down_a_search_is_refused_not_partial() {
    let redis = RedisServer::start();
    let mut pg = PgServer::start();
    let app = TestApp::spawn_with(&redis, &archive_now(&pg.url())).await;
    let open = id_of(&create_ticket(&app, OPERATOR, &ticket("D-1")).await);
    assert_eq!(ids(&app, SUPERVISOR, &[]).await, vec![open.clone()]);

    pg.kill();
    let (status, v) = search(&app, SUPERVISOR, &[]).await;
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["type"], "/problems/archive-unavailable");
    // A search only open tickets can match needs no archive.
    assert_eq!(
        ids(&app, SUPERVISOR, &[("status", "queued")]).await,
        vec![open]
    );
    // A search by phone that cannot be audited is not run.
    let (status, v) = search(
        &app,
        SUPERVISOR,
        &[("status", "queued"), ("phone", "13812348000")],
    )
    .await;
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["type"], "/problems/archive-unavailable");
    assert!(v["detail"].as_str().unwrap_or("").contains("audit"), "{v}");
}

/// Redis' side over many tickets: `N` copies of a ticket are written straight into county
/// 320831's hash and index (2,000 by default; `HOTLINE_SEARCH_TICKETS=20000` for the figures in
/// BENCHMARKS.md), then searches that stop early and ones that match nothing (and so read every
/// ticket in Redis of the county) are checked for what they answer and timed through the API;
/// the times are printed (`-- --nocapture`), never asserted.
#[tokio::test]
async fn many_tickets_in_redis_are_searched_whole_and_the_cost_is_printed() {
    let n: usize = std::env::var("HOTLINE_SEARCH_TICKETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let redis = RedisServer::start();
    let app = TestApp::spawn_with(&redis, &archive_now(&fresh_database())).await;
    let first = id_of(&create_ticket(&app, OPERATOR, &ticket("M-0")).await);
    let mut conn = redis.conn();
    let fields: Vec<(String, String)> = conn
        .hgetall(format!("hl:{{320831}}:t:{first}"))
        .expect("HGETALL");
    let created: i64 = fields
        .iter()
        .find(|(k, _)| k == "created_ms")
        .and_then(|(_, v)| v.parse().ok())
        .expect("created_ms");
    for chunk in (1..=n).collect::<Vec<_>>().chunks(1000) {
        let mut pipe = redis::pipe();
        for n in chunk {
            let id = format!("320831-9{n:07}");
            let mut copy = fields.clone();
            for (k, v) in &mut copy {
                if k == "created_ms" {
                    *v = (created - *n as i64).to_string();
                }
            }
            pipe.hset_multiple(format!("hl:{{320831}}:t:{id}"), &copy)
                .ignore()
                .zadd("hl:{320831}:tickets", &id, created - *n as i64)
                .ignore();
        }
        let () = pipe.query(&mut conn).expect("seeded");
    }
    for (what, pairs, found) in [
        ("first page, no filter", vec![("limit", "20")], 20),
        (
            "text, 100 per page",
            vec![("q", "拖欠工资"), ("limit", "100")],
            100,
        ),
        (
            "nothing matches (reads all)",
            vec![("external_id", "none-such")],
            0,
        ),
        (
            "nothing matches, by phone",
            vec![("phone", "13000000000")],
            0,
        ),
        (
            "nothing matches, by status",
            vec![("status", "accepted")],
            0,
        ),
        (
            "nothing matches, by category",
            vec![("category", "medical")],
            0,
        ),
    ] {
        let mut times = Vec::new();
        for _ in 0..3 {
            let started = std::time::Instant::now();
            let (status, v) = search(&app, SUPERVISOR, &pairs).await;
            times.push(started.elapsed().as_millis());
            assert_eq!(status, 200, "{what}: {v}");
            assert_eq!(
                v["tickets"].as_array().map(Vec::len),
                Some(found),
                "{what}: {v}"
            );
        }
        println!("{n} tickets in Redis, {what}: {times:?} ms");
    }
}
