//! The gateway's own PostgreSQL (`local_postgres`) and the tests' (`support::PgServer`,
//! `support::fresh_database`), against real servers: a fresh directory gets a cluster and the
//! `hotline` database, a second start adopts the running server, committed rows survive a stop
//! and a SIGKILL, a port held by another server is refused, and the harness's kill, restart and
//! pause do what the fault tests need.

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::Duration;

use hotline_gateway::local_postgres::{LocalPostgres, LocalPostgresError, LocalPostgresSettings};
use support::{PgServer, free_port, fresh_database};
use tokio_postgres::{Client, NoTls};

/// A directory the server's user can enter (when we are root it runs as `postgres`).
fn reachable_tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod tempdir");
    dir
}

fn settings(dir: &Path, port: u16) -> LocalPostgresSettings {
    LocalPostgresSettings {
        port,
        dir: dir.join("postgres"),
        ..LocalPostgresSettings::default()
    }
}

async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    tokio::spawn(connection);
    client
}

async fn count(url: &str) -> i64 {
    connect(url)
        .await
        .query_one("SELECT count(*) FROM kept", &[])
        .await
        .expect("count")
        .get(0)
}

async fn write_rows(url: &str, n: i64) {
    let client = connect(url).await;
    client
        .batch_execute("CREATE TABLE IF NOT EXISTS kept (n bigint PRIMARY KEY)")
        .await
        .expect("create table");
    client
        .execute(
            "INSERT INTO kept SELECT g FROM generate_series(1, $1::bigint) g",
            &[&n],
        )
        .await
        .expect("insert");
}

async fn stop(pg: LocalPostgres) {
    pg.stop();
    pg.wait_stopped().await;
}

/// Whether a process with this pid exists.
fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[tokio::test]
async fn a_fresh_directory_gets_a_cluster_and_a_second_start_adopts_the_running_server() {
    let dir = reachable_tempdir();
    let s = settings(dir.path(), free_port());
    let first = LocalPostgres::start(&s).await.expect("first start");
    assert_eq!(
        first.url(),
        format!("postgres://hotline@127.0.0.1:{}/hotline", s.port)
    );
    assert!(dir.path().join("postgres/data/PG_VERSION").is_file());
    assert!(dir.path().join("postgres/postgres.log").is_file());
    let client = connect(first.url()).await;
    let row = client
        .query_one("SHOW fsync", &[])
        .await
        .expect("show fsync");
    assert_eq!(row.get::<_, String>(0), "on");
    let row = client
        .query_one("SHOW listen_addresses", &[])
        .await
        .expect("show listen_addresses");
    assert_eq!(row.get::<_, String>(0), "127.0.0.1");
    let row = client
        .query_one("SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database()", &[])
        .await
        .expect("encoding");
    assert_eq!(row.get::<_, String>(0), "UTF8");

    // A gateway killed with its server still running: the next start adopts that server.
    let second = LocalPostgres::start(&s).await.expect("second start adopts");
    assert_eq!(second.pid(), first.pid(), "the same postmaster");
    assert_eq!(second.url(), first.url());
    // Stopping the adopted one stops the server (here it is the first handle's child, which
    // reaps it).
    let pid = second.pid().expect("pid");
    second.stop();
    first.wait_stopped().await;
    second.wait_stopped().await;
    assert!(!alive(pid), "postmaster stopped");
    assert!(!dir.path().join("postgres/data/postmaster.pid").exists());
}

#[tokio::test]
async fn committed_rows_survive_a_stop_and_a_sigkill() {
    let dir = reachable_tempdir();
    let s = settings(dir.path(), free_port());
    let pg = LocalPostgres::start(&s).await.expect("start");
    write_rows(pg.url(), 100).await;
    stop(pg).await;

    let pg = LocalPostgres::start(&s).await.expect("start after stop");
    assert_eq!(count(pg.url()).await, 100);
    let client = connect(pg.url()).await;
    client
        .execute("INSERT INTO kept VALUES (101)", &[])
        .await
        .expect("insert acknowledged");
    // A crash right after the acknowledgement: no shutdown checkpoint, the WAL must hold it.
    let pid = pg.pid().expect("pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    pg.wait_stopped().await;
    drop(client);

    let pg = {
        // Its children may hold the shared memory for a moment after the postmaster died.
        let mut attempt = 0;
        loop {
            match LocalPostgres::start(&s).await {
                Ok(pg) => break pg,
                Err(e) if attempt < 20 => {
                    attempt += 1;
                    eprintln!("restart after SIGKILL, attempt {attempt}: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("restart after SIGKILL: {e}"),
            }
        }
    };
    assert_eq!(count(pg.url()).await, 101);
    stop(pg).await;
}

#[tokio::test]
async fn a_port_held_by_another_postgres_is_refused_naming_the_key() {
    let other = PgServer::start();
    let dir = reachable_tempdir();
    let s = settings(dir.path(), other.port());
    let err = match LocalPostgres::start(&s).await {
        Err(e) => e,
        Ok(_) => panic!("must not adopt another cluster's server"),
    };
    assert!(matches!(err, LocalPostgresError::PortTaken { .. }), "{err}");
    assert!(err.to_string().contains("archive.local.port"), "{err}");
}

#[tokio::test]
async fn the_harness_server_is_killed_restarted_and_paused() {
    let mut pg = PgServer::start();
    write_rows(&pg.url(), 10).await;

    pg.kill();
    assert!(tokio_postgres::connect(&pg.url(), NoTls).await.is_err());
    pg.restart();
    assert_eq!(
        count(&pg.url()).await,
        10,
        "committed rows survive the kill"
    );

    let client = connect(&pg.url()).await;
    pg.pause();
    let stalled = tokio::time::timeout(
        Duration::from_millis(500),
        client.query_one("SELECT 1", &[]),
    )
    .await;
    assert!(stalled.is_err(), "a paused server answers nothing");
    pg.resume();
    let row = tokio::time::timeout(Duration::from_secs(10), client.query_one("SELECT 1", &[]))
        .await
        .expect("answers after resume")
        .expect("query");
    assert_eq!(row.get::<_, i32>(0), 1);
}

#[tokio::test]
async fn fresh_databases_are_isolated_from_each_other() {
    let a = fresh_database();
    let b = fresh_database();
    assert_ne!(a, b);
    write_rows(&a, 3).await;
    let err = connect(&b)
        .await
        .query_one("SELECT count(*) FROM kept", &[])
        .await
        .expect_err("the other database has no such table");
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE),
        "{err:?}"
    );
    assert_eq!(count(&a).await, 3);
}
