//! The case archive's faults (issue 18), against real processes: the gateway binary killed with
//! SIGKILL in the middle of archiving a backlog, and PostgreSQL killed and restarted while
//! tickets keep arriving and ending. In both, once the job has converged: no ticket lost, none
//! archived twice, none left in both stores. Real `redis-server`, real PostgreSQL, the real
//! gateway binary; no mock.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::Commands;
use serde_json::{Value, json};
use support::{
    GatewayProcess, OPERATOR, PARTNER, PgServer, RedisServer, TestApp, free_port, fresh_database,
    status_and_json, test_config, ticket,
};

const COUNTY: &str = "320831";

/// A ticket of the test's own, with a caller of its own (so repeat-caller linking stays out).
fn numbered(prefix: &str, n: usize) -> Value {
    let mut t = ticket(&format!("{prefix}-{n}"));
    t["caller"]["phone"] = json!(format!("139{n:08}"));
    t
}

/// How many tickets the county lists as ended, and holds in Redis at all.
fn listed(redis: &RedisServer) -> (u64, u64) {
    let mut conn = redis.conn();
    let ended: u64 = conn
        .zcard(format!("hl:{{{COUNTY}}}:ended"))
        .expect("ZCARD ended");
    let tickets: u64 = conn
        .zcard(format!("hl:{{{COUNTY}}}:tickets"))
        .expect("ZCARD tickets");
    (ended, tickets)
}

/// Whether ticket `id`'s hash or history is still in Redis.
fn in_redis(conn: &mut redis::Connection, id: &str) -> bool {
    let n: u64 = redis::cmd("EXISTS")
        .arg(format!("hl:{{{COUNTY}}}:t:{id}"))
        .arg(format!("hl:{{{COUNTY}}}:h:{id}"))
        .query(conn)
        .expect("EXISTS");
    n > 0
}

/// Every archived case: id → (status, event types of its history).
async fn archived(url: &str) -> BTreeMap<String, (String, Vec<String>)> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to the archive");
    let driver = tokio::spawn(conn);
    let rows = client
        .query(
            "SELECT id, status, ARRAY(SELECT e->>'type' FROM jsonb_array_elements(history) e) \
             FROM cases",
            &[],
        )
        .await
        .expect("read the cases");
    drop(client);
    let _ = driver.await;
    let mut out = BTreeMap::new();
    for r in rows {
        let id: String = r.get(0);
        let types: Vec<Option<String>> = r.get(2);
        let types = types.into_iter().map(Option::unwrap_or_default).collect();
        // `id` is the table's key; a second row for one id would show as a second insert.
        assert!(
            out.insert(id.clone(), (r.get(1), types)).is_none(),
            "{id} archived twice"
        );
    }
    out
}

/// How many cases the archive holds (0 when it does not answer yet).
async fn case_count(url: &str) -> u64 {
    let Ok((client, conn)) = tokio_postgres::connect(url, tokio_postgres::NoTls).await else {
        return 0;
    };
    let driver = tokio::spawn(conn);
    let n = client
        .query_one("SELECT count(*) FROM cases", &[])
        .await
        .map(|r| r.get::<_, i64>(0))
        .unwrap_or(0);
    drop(client);
    let _ = driver.await;
    u64::try_from(n).unwrap_or(0)
}

/// Waits until the county lists no ended ticket and holds none, at most `limit`.
async fn converge(redis: &RedisServer, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let (ended, tickets) = listed(redis);
        if ended == 0 && tickets == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not converged: {ended} ended tickets listed, {tickets} tickets in Redis"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The converged state: every id archived exactly once as withdrawn with its two events, the
/// archive holding nothing else, and nothing of any of them left in Redis.
async fn assert_converged(redis: &RedisServer, archive_url: &str, ids: &BTreeSet<String>) {
    let cases = archived(archive_url).await;
    let lost: Vec<&String> = ids.iter().filter(|id| !cases.contains_key(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} lost, e.g. {:?}",
        lost.len(),
        lost.first()
    );
    assert_eq!(
        cases.len(),
        ids.len(),
        "cases beyond the tickets registered"
    );
    for (id, (status, types)) in &cases {
        assert_eq!(status, "withdrawn", "{id}");
        assert_eq!(
            types,
            &["ticket.created", "ticket.withdraw"],
            "{id}: its history, once"
        );
    }
    let mut conn = redis.conn();
    let left: Vec<&String> = ids.iter().filter(|id| in_redis(&mut conn, id)).collect();
    assert!(
        left.is_empty(),
        "{} left in Redis too, e.g. {:?}",
        left.len(),
        left.first()
    );
}

/// Registers `n` tickets in batches of 100 and withdraws them, 16 at a time; their ids.
async fn ended_tickets(app: &TestApp, prefix: &str, n: usize) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for start in (0..n).step_by(100) {
        let batch: Vec<Value> = (start..(start + 100).min(n))
            .map(|i| numbered(prefix, i))
            .collect();
        let (status, v) = status_and_json(
            app.post("/v1/tickets:batch", PARTNER, &json!({ "tickets": batch }))
                .await,
        )
        .await;
        assert_eq!(status, 200, "{v}");
        for r in v["results"].as_array().expect("results") {
            assert_eq!(r["status"], 201, "{r}");
            ids.insert(r["ticket"]["id"].as_str().expect("id").to_string());
        }
    }
    let list: Vec<String> = ids.iter().cloned().collect();
    for chunk in list.chunks(16) {
        let calls = chunk.iter().map(|id| async move {
            let res = app
                .post(&format!("/v1/tickets/{id}/withdraw"), OPERATOR, &json!({}))
                .await;
            let (status, v) = status_and_json(res).await;
            assert_eq!(status, 200, "{id}: {v}");
        });
        futures_util::future::join_all(calls).await;
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gateway_killed_while_archiving_a_backlog_loses_and_doubles_nothing() {
    const TICKETS: usize = 3000;
    let redis = RedisServer::start();
    let db = fresh_database();
    // Fill: archiving held off for a day, so thousands of ended tickets wait in Redis.
    let filler = TestApp::spawn_with(
        &redis,
        &format!("[archive]\nurl = \"{db}\"\nafter_seconds = 86400\n"),
    )
    .await;
    let ids = ended_tickets(&filler, "K", TICKETS).await;
    filler.stop().await;
    assert_eq!(listed(&redis), (TICKETS as u64, TICKETS as u64));

    // The gateway binary archives them in batches of 50 and is killed with SIGKILL mid-way.
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("gateway.toml");
    let archive =
        format!("[archive]\nurl = \"{db}\"\nafter_seconds = 0\ninterval_ms = 50\nbatch = 50\n");
    std::fs::write(&config, test_config(&redis.url(), &archive)).expect("config");
    let mut first = GatewayProcess::start(&config, free_port(), dir.path().join("first.log"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let at_kill = loop {
        let n = case_count(&db).await;
        if n >= 100 {
            first.kill9();
            break n;
        }
        assert!(Instant::now() < deadline, "nothing archived in 60 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let (ended_left, _) = listed(&redis);
    let after_kill = case_count(&db).await;
    assert!(
        after_kill < TICKETS as u64 && ended_left > 0,
        "the kill came after the backlog was archived ({after_kill} cases): not mid-way"
    );
    let mut conn = redis.conn();
    let cases = archived(&db).await;
    let in_both = cases.keys().filter(|id| in_redis(&mut conn, id)).count();
    println!(
        "killed after {at_kill} cases: {after_kill} archived, {ended_left} still listed, {in_both} in both stores"
    );

    // A second gateway converges: each ticket archived once, none left in Redis.
    let _second = GatewayProcess::start(&config, free_port(), dir.path().join("second.log"));
    converge(&redis, Duration::from_secs(90)).await;
    assert_converged(&redis, &db, &ids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgresql_killed_and_restarted_under_load_loses_and_doubles_nothing() {
    let redis = RedisServer::start();
    let pg = PgServer::start();
    let url = pg.url();
    let app = TestApp::spawn_with(
        &redis,
        &format!(
            "[archive]\nurl = \"{url}\"\nafter_seconds = 0\ninterval_ms = 100\n\
             connect_timeout_ms = 500\nstatement_timeout_ms = 1000\n"
        ),
    )
    .await;
    // 8 senders register and withdraw tickets for 5 s; every answer must be a success.
    let ids: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let started = Instant::now();
    let mut senders = Vec::new();
    for s in 0..8 {
        let (http, base, ids) = (app.http.clone(), app.base.clone(), Arc::clone(&ids));
        senders.push(tokio::spawn(async move {
            let mut n = 0;
            while started.elapsed() < Duration::from_secs(5) {
                let body = numbered(&format!("P{s}"), s * 1_000_000 + n);
                let res = http
                    .post(format!("{base}/v1/tickets"))
                    .bearer_auth(PARTNER)
                    .json(&body)
                    .send()
                    .await
                    .expect("intake answers");
                let (status, v) = status_and_json(res).await;
                assert_eq!(status, 201, "intake failed at {:?}: {v}", started.elapsed());
                let id = v["id"].as_str().expect("id").to_string();
                let res = http
                    .post(format!("{base}/v1/tickets/{id}/withdraw"))
                    .bearer_auth(OPERATOR)
                    .json(&json!({}))
                    .send()
                    .await
                    .expect("withdraw answers");
                let (status, v) = status_and_json(res).await;
                assert_eq!(status, 200, "withdraw failed: {v}");
                ids.lock().unwrap_or_else(|p| p.into_inner()).insert(id);
                n += 1;
            }
        }));
    }
    // PostgreSQL killed at 1.5 s (a crash: SIGKILL to every process) and restarted at 3.5 s.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before_kill = case_count(&url).await;
    let pg = tokio::task::spawn_blocking(move || {
        let mut pg = pg;
        pg.kill();
        pg
    })
    .await
    .expect("kill");
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let (waiting, _) = listed(&redis);
    let pg = tokio::task::spawn_blocking(move || {
        let mut pg = pg;
        pg.restart();
        pg
    })
    .await
    .expect("restart");
    for s in senders {
        s.await.expect("a sender failed");
    }
    let ids = ids.lock().unwrap_or_else(|p| p.into_inner()).clone();
    println!(
        "{} tickets registered and withdrawn; {before_kill} archived before the kill, {waiting} waiting in Redis while PostgreSQL was down",
        ids.len()
    );
    assert!(before_kill > 0, "archiving ran before the kill");
    assert!(waiting > 0, "tickets ended while PostgreSQL was down");
    converge(&redis, Duration::from_secs(60)).await;
    assert_converged(&redis, &url, &ids).await;
    app.stop().await;
    drop(pg);
}
