//! The case archive (issue 18): ended tickets leave Redis for PostgreSQL, and everything that
//! reads a ticket still works after that: reads, history, idempotent retries, reopens,
//! partners' views, callbacks. Real `redis-server` and real PostgreSQL servers; no mock.

mod support;

use std::time::Duration;

use redis::Commands;
use serde_json::{Value, json};
use support::{
    ADMIN, OPERATOR, PARTNER, PgServer, RedisServer, SUPERVISOR, TestApp, act, create_ticket,
    fresh_database, read_ticket, status_and_json, ticket, wait_for,
};

/// Archive at once (`after_seconds = 0`), look every 100 ms.
fn archive_now(url: &str) -> String {
    format!("[archive]\nurl = \"{url}\"\nafter_seconds = 0\ninterval_ms = 100\n")
}

fn in_redis(redis: &RedisServer, id: &str) -> bool {
    let county = &id[..6];
    let exists: bool = redis
        .conn()
        .exists(format!("hl:{{{county}}}:t:{id}"))
        .expect("EXISTS");
    exists
}

async fn wait_archived(redis: &RedisServer, id: &str) {
    wait_for(Duration::from_secs(20), "the ticket to leave Redis", || {
        let gone = !in_redis(redis, id);
        async move { gone.then_some(()) }
    })
    .await;
}

/// Registers a ticket as the operator and closes its loop: accept, resolve, follow-up.
async fn closed_ticket(app: &TestApp, external_id: &str) -> String {
    let t = create_ticket(app, OPERATOR, &ticket(external_id)).await;
    let id = t["id"].as_str().expect("id").to_string();
    for (action, body) in [
        ("accept", json!({})),
        (
            "resolve",
            json!({"outcome": "mediated", "summary": "双方达成还款协议"}),
        ),
        ("follow_up", json!({"satisfaction": 5})),
    ] {
        let (status, v) = act(app, &id, action, SUPERVISOR, body).await;
        assert_eq!(status, 200, "{action}: {v}");
    }
    id
}

/// What a read shows that must not change when the ticket moves to the archive (the clock views
/// are computed at the time of the read, so they are compared by their fixed parts).
fn lasting(v: &Value) -> Value {
    json!({
        "id": v["id"], "status": v["status"], "queue": v["queue"],
        "classification": v["classification"], "ticket": v["ticket"],
        "history": v["history"], "history_total": v["history_total"],
        "linked": v["linked"], "created_at": v["created_at"],
    })
}

#[tokio::test]
async fn an_ended_ticket_leaves_redis_and_reads_the_same_from_the_archive() {
    let redis = RedisServer::start();
    let app = TestApp::spawn_with(&redis, &archive_now(&fresh_database())).await;
    let id = closed_ticket(&app, "A-1").await;
    let (status, before) = read_ticket(&app, &id, SUPERVISOR).await;
    assert_eq!(status, 200);
    assert_eq!(before["status"], "closed");

    wait_archived(&redis, &id).await;
    let (status, after) = read_ticket(&app, &id, SUPERVISOR).await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(lasting(&after), lasting(&before));
    // Nothing of it is left in Redis: hash, history, listing.
    let mut conn = redis.conn();
    let keys: Vec<String> = conn.keys(format!("*{id}*")).expect("KEYS");
    assert!(keys.is_empty(), "left in Redis: {keys:?}");
    let ended: Vec<String> = conn.zrange("hl:{320831}:ended", 0, -1).expect("ZRANGE");
    assert!(ended.is_empty(), "{ended:?}");

    // The history pages too.
    let (status, page) = status_and_json(
        app.get(
            &format!("/v1/tickets/{id}/history?offset=1&limit=2"),
            SUPERVISOR,
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["total"], before["history_total"]);
    assert_eq!(page["events"].as_array().map(Vec::len), Some(2));
    assert_eq!(page["events"][0], before["history"][1]);
    // An unknown id is still a 404, after asking the archive.
    let (status, _) = read_ticket(&app, "320831-99999999", SUPERVISOR).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_retry_of_an_archived_ticket_gets_the_same_ticket_and_200() {
    let redis = RedisServer::start();
    let app = TestApp::spawn_with(&redis, &archive_now(&fresh_database())).await;
    let first = create_ticket(&app, OPERATOR, &ticket("R-1")).await;
    let id = first["id"].as_str().expect("id").to_string();
    let (status, v) = act(&app, &id, "withdraw", OPERATOR, json!({})).await;
    assert_eq!(status, 200, "{v}");
    wait_archived(&redis, &id).await;

    let (status, again) =
        status_and_json(app.post("/v1/tickets", OPERATOR, &ticket("R-1")).await).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["status"], "withdrawn");
    // Other content under the same key is still a conflict naming the ticket.
    let mut other = ticket("R-1");
    other["title"] = json!("另一件事");
    let (status, conflict) = status_and_json(app.post("/v1/tickets", OPERATOR, &other).await).await;
    assert_eq!(status, 409, "{conflict}");
    assert_eq!(conflict["ticket_id"], first["id"]);
    // And it was not registered a second time.
    assert!(!in_redis(&redis, &id));
}

#[tokio::test]
async fn a_closed_ticket_is_reopened_from_the_archive_and_archived_again_when_it_ends() {
    let redis = RedisServer::start();
    let db = fresh_database();
    let app = TestApp::spawn_with(&redis, &archive_now(&db)).await;
    let id = closed_ticket(&app, "O-1").await;
    wait_archived(&redis, &id).await;

    let (status, v) = act(
        &app,
        &id,
        "reopen",
        SUPERVISOR,
        json!({"reason": "当事人反悔"}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "queued");
    assert!(
        in_redis(&redis, &id),
        "reopened tickets are worked in Redis"
    );
    let types: Vec<&str> = v["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert_eq!(types.first(), Some(&"ticket.created"), "{types:?}");
    assert!(types.contains(&"ticket.follow_up"), "{types:?}");
    assert_eq!(types.last(), Some(&"ticket.reopen"), "{types:?}");

    // It is worked and ends again; the archive then holds the newer version, once.
    for (action, body) in [
        ("accept", json!({})),
        (
            "resolve",
            json!({"outcome": "mediated", "summary": "再次调解成功"}),
        ),
        ("follow_up", json!({"satisfaction": 4})),
    ] {
        let (status, v) = act(&app, &id, action, SUPERVISOR, body).await;
        assert_eq!(status, 200, "{action}: {v}");
    }
    wait_archived(&redis, &id).await;
    let (status, v) = read_ticket(&app, &id, SUPERVISOR).await;
    assert_eq!(status, 200);
    assert_eq!(v["status"], "closed");
    let reopens = v["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter(|e| e["type"] == "ticket.reopen")
        .count();
    assert_eq!(reopens, 1);
    let (client, conn) = tokio_postgres::connect(&db, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    let rows = client
        .query("SELECT ver FROM cases WHERE id = $1", &[&id])
        .await
        .expect("query");
    assert_eq!(rows.len(), 1, "archived exactly once");
}

#[tokio::test]
async fn a_partner_reads_its_own_archived_tickets_and_no_one_elses() {
    let redis = RedisServer::start();
    let app = TestApp::spawn_with(&redis, &archive_now(&fresh_database())).await;
    let mine = create_ticket(&app, PARTNER, &ticket("P-1")).await;
    let theirs = create_ticket(&app, OPERATOR, &ticket("P-2")).await;
    let (mine, theirs) = (
        mine["id"].as_str().expect("id").to_string(),
        theirs["id"].as_str().expect("id").to_string(),
    );
    for id in [&mine, &theirs] {
        let (status, v) = act(&app, id, "withdraw", ADMIN, json!({})).await;
        assert_eq!(status, 200, "{v}");
    }
    wait_archived(&redis, &mine).await;
    wait_archived(&redis, &theirs).await;
    let (status, v) = read_ticket(&app, &mine, PARTNER).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "withdrawn");
    let (status, _) = read_ticket(&app, &theirs, PARTNER).await;
    assert_eq!(status, 403);
    // A region-limited operator cannot read outside its regions, archived or not.
    let mut far = ticket("P-3");
    far["region"]["code"] = json!("440305");
    let far = create_ticket(&app, ADMIN, &far).await;
    let far = far["id"].as_str().expect("id").to_string();
    act(&app, &far, "withdraw", ADMIN, json!({})).await;
    wait_archived(&redis, &far).await;
    let (status, _) = read_ticket(&app, &far, OPERATOR).await;
    assert_eq!(status, 403);
}

async fn metric(app: &TestApp, name: &str) -> Option<f64> {
    let text = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find(|l| l.split([' ', '{']).next() == Some(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn while_postgresql_is_down_tickets_wait_in_redis_and_intake_carries_on() {
    let redis = RedisServer::start();
    let mut pg = PgServer::start();
    let app = TestApp::spawn_with(&redis, &archive_now(&pg.url())).await;
    let early = create_ticket(&app, OPERATOR, &ticket("D-0")).await;
    let early = early["id"].as_str().expect("id").to_string();
    act(&app, &early, "withdraw", OPERATOR, json!({})).await;
    wait_archived(&redis, &early).await;

    pg.kill();
    let t = create_ticket(&app, OPERATOR, &ticket("D-1")).await;
    let id = t["id"].as_str().expect("id").to_string();
    let (status, v) = act(&app, &id, "withdraw", OPERATOR, json!({})).await;
    assert_eq!(status, 200, "{v}");
    wait_for(Duration::from_secs(20), "hotline_archive_up 0", || {
        let app = &app;
        async move { (metric(app, "hotline_archive_up").await == Some(0.0)).then_some(()) }
    })
    .await;
    assert!(
        in_redis(&redis, &id),
        "nothing leaves Redis while the archive is down"
    );
    assert_eq!(metric(&app, "hotline_archive_backlog").await, Some(1.0));
    // Tickets in Redis still read; an archived one says the archive is unavailable (503, not 404).
    assert_eq!(read_ticket(&app, &id, SUPERVISOR).await.0, 200);
    let (status, v) = read_ticket(&app, &early, SUPERVISOR).await;
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["type"], "/problems/archive-unavailable");
    create_ticket(&app, OPERATOR, &ticket("D-2")).await;

    pg.restart();
    wait_archived(&redis, &id).await;
    wait_for(Duration::from_secs(20), "hotline_archive_up 1", || {
        let app = &app;
        async move { (metric(app, "hotline_archive_up").await == Some(1.0)).then_some(()) }
    })
    .await;
    assert_eq!(read_ticket(&app, &early, SUPERVISOR).await.0, 200);
    assert_eq!(read_ticket(&app, &id, SUPERVISOR).await.0, 200);
    assert_eq!(metric(&app, "hotline_archive_backlog").await, Some(0.0));
}

/// The store, the archive and the archive's settings as a gateway builds them, for driving
/// archiving passes directly (as a second gateway would).
async fn parts(
    redis: &RedisServer,
    db: &str,
) -> (
    hotline_gateway::queues::Store,
    hotline_gateway::archive::Archive,
    hotline_gateway::archive::ArchiveSettings,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("c.toml");
    std::fs::write(&file, support::test_config(&redis.url(), &archive_now(db))).expect("write");
    let settings = hotline_gateway::config::Settings::load(Some(&file)).expect("valid");
    let store = hotline_gateway::queues::Store::connect(
        &redis.url(),
        Duration::from_secs(1),
        Duration::from_secs(2),
        10_000,
        86_400,
    )
    .expect("store");
    let url = settings.archive.url.clone().expect("url");
    let archive = hotline_gateway::archive::Archive::new(&url, &settings.archive).expect("archive");
    archive.migrate().await.expect("migrated");
    (store, archive, settings.archive)
}

async fn archived_rows(db: &str, id: &str) -> Vec<i64> {
    let (client, conn) = tokio_postgres::connect(db, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
        .query("SELECT ver FROM cases WHERE id = $1", &[&id])
        .await
        .expect("query")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// A gateway stopping between the archive's commit and the removal from Redis leaves the
/// ticket in both; the next pass writes nothing new and removes it.
#[tokio::test]
async fn a_pass_interrupted_after_the_commit_converges_on_the_next_one() {
    let redis = RedisServer::start();
    let db = fresh_database();
    // This gateway never archives by itself (after a day), so the test drives every step.
    let app = TestApp::spawn_with(
        &redis,
        &format!("[archive]\nurl = \"{db}\"\nafter_seconds = 86400\n"),
    )
    .await;
    let (store, archive, settings) = parts(&redis, &db).await;
    let mut ids = Vec::new();
    for i in 0..30 {
        let t = create_ticket(&app, OPERATOR, &ticket(&format!("K-{i}"))).await;
        let id = t["id"].as_str().expect("id").to_string();
        act(&app, &id, "withdraw", OPERATOR, json!({})).await;
        ids.push(id);
    }
    let now = store.now_ms() + 1_000;
    let due = store.ended_due("320831", now, 0, 100).await.expect("due");
    assert_eq!(due.len(), 30);
    let leaving = store.case_files("320831", &due).await.expect("cases");
    assert_eq!(leaving.cases.len(), 30);
    archive.put(&leaving.cases).await.expect("committed");
    // ...and the gateway stops here. Both stores hold them; reads still work.
    assert!(ids.iter().all(|id| in_redis(&redis, id)));
    assert_eq!(read_ticket(&app, &ids[0], SUPERVISOR).await.0, 200);

    let mut s = settings.clone();
    s.after_seconds = 0;
    let report = hotline_gateway::archiving::archive_county(
        &store,
        &archive,
        &s,
        "320831",
        "second-gateway",
        store.now_ms(),
    )
    .await
    .expect("pass");
    assert_eq!(report.removed, 30, "{report:?}");
    assert!(ids.iter().all(|id| !in_redis(&redis, id)));
    for id in &ids {
        assert_eq!(archived_rows(&db, id).await.len(), 1, "{id}");
        assert_eq!(read_ticket(&app, id, SUPERVISOR).await.0, 200);
    }
    let counts = archive.counts().await.expect("counts");
    assert_eq!(counts.cases, 30);
}

/// Reopening a closed ticket while a pass archives it, 200 times: the reopen always succeeds,
/// the ticket is worked in Redis afterwards, and when it ends again the archive holds its
/// newest version exactly once and Redis nothing.
#[tokio::test]
async fn reopening_races_archiving_and_nothing_is_lost_or_doubled() {
    let redis = RedisServer::start();
    let db = fresh_database();
    let app = TestApp::spawn_with(
        &redis,
        &format!("[archive]\nurl = \"{db}\"\nafter_seconds = 86400\n"),
    )
    .await;
    let (store, archive, settings) = parts(&redis, &db).await;
    let mut s = settings.clone();
    s.after_seconds = 0;
    let mut archived_first = 0;
    for round in 0..200 {
        let id = closed_ticket(&app, &format!("X-{round}")).await;
        // Either may start first, by up to a few milliseconds, so both orders and the
        // overlaps in between are run.
        let lag = Duration::from_micros((round as u64 % 10) * 700);
        let (pass_lag, reopen_lag) = if round % 2 == 0 {
            (lag, Duration::ZERO)
        } else {
            (Duration::ZERO, lag)
        };
        let pass = async {
            tokio::time::sleep(pass_lag).await;
            hotline_gateway::archiving::archive_county(
                &store,
                &archive,
                &s,
                "320831",
                "racer",
                store.now_ms() + 5,
            )
            .await
        };
        let reopen = async {
            tokio::time::sleep(reopen_lag).await;
            act(&app, &id, "reopen", SUPERVISOR, json!({"reason": "复议"})).await
        };
        let (pass, (status, v)) = tokio::join!(pass, reopen);
        let pass = pass.expect("pass");
        assert_eq!(status, 200, "round {round}: {v}");
        assert_eq!(v["status"], "queued", "round {round}");
        archived_first += pass.removed;
        // Whatever won, the ticket is open and in Redis, and reads say so.
        assert!(in_redis(&redis, &id), "round {round}");
        let (_, now) = read_ticket(&app, &id, SUPERVISOR).await;
        assert_eq!(now["status"], "queued", "round {round}");
        // It ends again and is archived: the newest version, once.
        let (status, v) = act(&app, &id, "withdraw", SUPERVISOR, json!({})).await;
        assert_eq!(status, 200, "round {round}: {v}");
        let ver_before: u64 = redis
            .conn()
            .hget(format!("hl:{{320831}}:t:{id}"), "ver")
            .expect("ver");
        hotline_gateway::archiving::archive_county(
            &store,
            &archive,
            &s,
            "320831",
            "racer",
            store.now_ms() + 5,
        )
        .await
        .expect("pass");
        assert!(!in_redis(&redis, &id), "round {round}");
        assert_eq!(
            archived_rows(&db, &id).await,
            vec![ver_before as i64],
            "round {round}"
        );
    }
    eprintln!("the pass removed the closed ticket first in {archived_first} of 200 rounds");
    assert!(
        archived_first > 0 && archived_first < 200,
        "both orders must have been run: the pass came first in {archived_first} of 200 rounds"
    );
}

#[tokio::test]
async fn the_retention_job_erases_personal_data_of_old_cases_and_says_so() {
    let redis = RedisServer::start();
    let db = fresh_database();
    let app = TestApp::spawn_with(
        &redis,
        &format!("{}retention_interval_seconds = 1\n", archive_now(&db)),
    )
    .await;
    let mut ids = Vec::new();
    for ext in ["E-old", "E-new"] {
        let t = create_ticket(&app, OPERATOR, &ticket(ext)).await;
        let id = t["id"].as_str().expect("id").to_string();
        act(&app, &id, "withdraw", OPERATOR, json!({})).await;
        wait_archived(&redis, &id).await;
        ids.push(id);
    }
    let (old, new) = (&ids[0], &ids[1]);
    let (client, conn) = tokio_postgres::connect(&db, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    // The old case ended longer ago than `archive.personal_data_days` (1095 by default).
    client
        .execute(
            "UPDATE cases SET ended_at = now() - interval '1100 days' WHERE id = $1",
            &[old],
        )
        .await
        .expect("backdated");
    let erased = wait_for(Duration::from_secs(20), "the old case erased", || {
        let app = &app;
        async move {
            let (_, v) = read_ticket(app, old, SUPERVISOR).await;
            (v["ticket"]["caller"].get("phone").is_none()).then_some(v)
        }
    })
    .await;
    assert!(erased["ticket"]["caller"].get("name").is_none(), "{erased}");
    // The rest of the case stays: text, status, history.
    assert_eq!(erased["status"], "withdrawn");
    assert_eq!(erased["ticket"]["text"], ticket("E-old")["text"]);
    let (_, kept) = read_ticket(&app, new, SUPERVISOR).await;
    assert_eq!(kept["ticket"]["caller"]["phone"], "13812348000");

    let row = client
        .query_one(
            "SELECT caller_name, caller_phone, caller_key, personal_erased_at IS NOT NULL \
             FROM cases WHERE id = $1",
            &[old],
        )
        .await
        .expect("row");
    assert_eq!(row.get::<_, Option<String>>(0), None);
    assert_eq!(row.get::<_, Option<String>>(1), None);
    assert_eq!(row.get::<_, Option<String>>(2), None);
    assert!(row.get::<_, bool>(3));
    // The job said what it did: an audit entry (and a log line and a counter).
    let audit = client
        .query(
            "SELECT detail FROM audit_log WHERE action = 'retention.erase'",
            &[],
        )
        .await
        .expect("audit");
    assert_eq!(audit.len(), 1, "one run erased one case");
    let detail: Value = audit[0].get(0);
    assert_eq!(detail["cases"], 1);
    assert!(metric(&app, "hotline_archive_personal_erased_total").await >= Some(1.0));
    // Nothing to erase is not recorded again.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let again = client
        .query(
            "SELECT 1 FROM audit_log WHERE action = 'retention.erase'",
            &[],
        )
        .await
        .expect("audit");
    assert_eq!(again.len(), 1);
}

/// A repeat request of a caller whose earlier ticket has already left Redis is still linked to
/// it, both ways (重复诉求并单 beyond what Redis holds).
#[tokio::test]
async fn a_repeat_request_is_linked_to_the_callers_archived_ticket_both_ways() {
    let redis = RedisServer::start();
    let app = TestApp::spawn_with(&redis, &archive_now(&fresh_database())).await;
    let first = create_ticket(&app, OPERATOR, &ticket("L-1")).await;
    let first = first["id"].as_str().expect("id").to_string();
    act(&app, &first, "withdraw", OPERATOR, json!({})).await;
    wait_archived(&redis, &first).await;

    // The same caller, the same matter, a week's window: linked to the archived ticket.
    let again = create_ticket(&app, OPERATOR, &ticket("L-2")).await;
    let again = again["id"].as_str().expect("id").to_string();
    let (_, v) = read_ticket(&app, &again, SUPERVISOR).await;
    assert_eq!(v["linked"], json!([first]), "{v}");
    let back = wait_for(Duration::from_secs(10), "the archived side linked", || {
        let app = &app;
        let first = &first;
        async move {
            let (_, v) = read_ticket(app, first, SUPERVISOR).await;
            (v["linked"] != json!([])).then_some(v)
        }
    })
    .await;
    assert_eq!(back["linked"], json!([again]), "{back}");
    // Another caller is not linked.
    let mut stranger = ticket("L-3");
    stranger["caller"]["phone"] = json!("13900001111");
    let s = create_ticket(&app, OPERATOR, &stranger).await;
    let (_, v) = read_ticket(&app, s["id"].as_str().expect("id"), SUPERVISOR).await;
    assert_eq!(v["linked"], json!([]), "{v}");
}

/// Tickets stored by a version without the archive have no listing: a gateway of this version
/// lists them once (a SCAN of the county) and archives the ended ones like the rest.
#[tokio::test]
async fn tickets_stored_before_the_archive_existed_are_listed_and_archived() {
    let redis = RedisServer::start();
    let db = fresh_database();
    let old = TestApp::spawn_with(
        &redis,
        &format!("[archive]\nurl = \"{db}\"\nafter_seconds = 86400\n"),
    )
    .await;
    let ended = create_ticket(&old, OPERATOR, &ticket("U-1")).await;
    let ended = ended["id"].as_str().expect("id").to_string();
    act(&old, &ended, "withdraw", OPERATOR, json!({})).await;
    let open = create_ticket(&old, OPERATOR, &ticket("U-2")).await;
    let open = open["id"].as_str().expect("id").to_string();
    old.stop().await;
    // What the previous version left: the tickets, without the listings.
    let mut conn = redis.conn();
    let _: () = conn
        .del(&[
            "hl:{320831}:tickets",
            "hl:{320831}:ended",
            "hl:{320831}:indexed",
        ])
        .expect("DEL");

    let app = TestApp::spawn_with(&redis, &archive_now(&db)).await;
    wait_archived(&redis, &ended).await;
    assert_eq!(read_ticket(&app, &ended, SUPERVISOR).await.0, 200);
    assert!(in_redis(&redis, &open), "an open ticket stays");
    let listed: Vec<String> = conn.zrange("hl:{320831}:tickets", 0, -1).expect("ZRANGE");
    assert_eq!(listed, vec![open.clone()]);
}
