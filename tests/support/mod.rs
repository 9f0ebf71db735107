//! Test harness: a real `redis-server` per test on a free port (so tests are isolated and can
//! kill and restart it), and the gateway either in-process (`TestApp`) or as the real binary
//! (`GatewayProcess`) when a test must kill it.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hotline_gateway::config::Settings;
use hotline_gateway::local_redis::RedisLaunch;
use hotline_gateway::startup::Application;
use serde_json::{Value, json};

/// Tokens every test config knows, with their plain text.
pub const PARTNER: &str = "t-partner";
/// An operator limited to 320831 (and 3203 prefixes).
pub const OPERATOR: &str = "t-operator";
/// Sees everything.
pub const SUPERVISOR: &str = "t-supervisor";
/// An agent.
pub const AGENT: &str = "t-agent";
/// An admin.
pub const ADMIN: &str = "t-admin";

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A real redis-server owned by one test.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    appendfsync: &'static str,
}

impl RedisServer {
    /// Starts one with AOF on (`appendfsync always`), in a fresh directory.
    pub fn start() -> RedisServer {
        Self::start_with_fsync("always")
    }

    /// As [`RedisServer::start`] with another `appendfsync` (`everysec`), to measure its loss.
    pub fn start_with_fsync(appendfsync: &'static str) -> RedisServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut server = RedisServer {
            child: None,
            port: free_port(),
            dir,
            appendfsync,
        };
        server.spawn();
        server
    }

    fn launch(&self) -> RedisLaunch<'_> {
        RedisLaunch {
            binary: "redis-server",
            port: self.port,
            dir: self.dir.path(),
            appendfsync: self.appendfsync,
        }
    }

    fn spawn(&mut self) {
        let child = self
            .launch()
            .command()
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        self.child = Some(child);
        assert!(
            self.launch().wait_ready_blocking(Duration::from_secs(10)),
            "redis-server on port {} did not start",
            self.port
        );
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// A synchronous connection for assertions.
    pub fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .expect("connect to test redis")
    }

    /// SIGKILL: no chance to save anything beyond what the AOF already has.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGSTOP: the server stalls (holds connections, answers nothing) until [`Self::resume`].
    pub fn pause(&self) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .args(["-STOP", &c.id().to_string()])
                .status();
        }
    }

    /// SIGCONT after [`Self::pause`].
    pub fn resume(&self) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .args(["-CONT", &c.id().to_string()])
                .status();
        }
    }

    /// Starts again on the same port and directory (reloading the AOF).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The TOML a test gateway runs with (tokens and a few test limits), using the Redis at `redis_url`.
pub fn test_config(redis_url: &str, extra: &str) -> String {
    test_config_with_redis(&format!("url = \"{redis_url}\""), extra)
}

/// As [`test_config`], with the body of the `[redis]` table given (for a local-Redis test).
/// Unless `extra` has an `[archive]` table of its own, the gateway archives to a fresh database
/// of the binary's shared PostgreSQL.
pub fn test_config_with_redis(redis_table: &str, extra: &str) -> String {
    let digest = hotline_gateway::auth::digest_hex;
    let archive = if extra.contains("[archive]") {
        String::new()
    } else {
        format!("[archive]\nurl = \"{}\"\n", fresh_database())
    };
    format!(
        r#"
{archive}
[http]
listen = "127.0.0.1:0"
body_limit_bytes = 65536
shutdown_grace_seconds = 5

[redis]
{redis_table}
connect_timeout_ms = 300
response_timeout_ms = 1000
retry_after_seconds = 3

[log]
format = "json"
level = "info"

# Every county the tests send tickets to, move tickets to or define agents in, and the load
# generator's (load-tests `texts::COUNTIES`, driven by tests/faults.rs).
[counties]
"110101" = "东城区"
"320324" = "睢宁县"
"320812" = "清江浦区"
"320826" = "涟水县"
"320830" = "盱眙县"
"320831" = "金湖县"
"320882" = "测试一县"
"320883" = "测试二县"
"320884" = "测试三县"
"320885" = "测试四县"
"320999" = "测试县"
"330106" = "西湖区"
"440305" = "南山区"
"510802" = "利州区"

[[auth.tokens]]
name = "partner-12345"
role = "partner"
sha256 = "{p}"

[[auth.tokens]]
name = "operator-320831"
role = "operator"
sha256 = "{o}"
regions = ["320831"]

[[auth.tokens]]
name = "supervisor"
role = "supervisor"
sha256 = "{s}"

[[auth.tokens]]
name = "agent-1"
role = "agent"
sha256 = "{a}"
agent_id = "agent-1"

[[auth.tokens]]
name = "admin"
role = "admin"
sha256 = "{adm}"
{extra}
"#,
        p = digest(PARTNER),
        o = digest(OPERATOR),
        s = digest(SUPERVISOR),
        a = digest(AGENT),
        adm = digest(ADMIN),
    )
}

/// A gateway running in this test process, on a free port.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// A client.
    pub http: reqwest::Client,
    /// The config file it runs with (rewrite it and POST /v1/admin/reload to change settings).
    pub config_file: PathBuf,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _config_dir: tempfile::TempDir,
}

impl TestApp {
    /// Builds and serves a gateway against `redis`.
    pub async fn spawn(redis: &RedisServer) -> TestApp {
        Self::spawn_with(redis, "").await
    }

    /// As [`TestApp::spawn`], with extra TOML appended to the test config.
    pub async fn spawn_with(redis: &RedisServer, extra: &str) -> TestApp {
        Self::spawn_from_config(&test_config(&redis.url(), extra)).await
    }

    /// Builds and serves a gateway from a whole config text (for tests that change `[http]`).
    pub async fn spawn_from_config(config: &str) -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("test.toml");
        std::fs::write(&file, config).expect("write config");
        let settings = Settings::load(Some(&file)).expect("test config is valid");
        let app = Application::build_with_path(settings, Some(file.clone()))
            .await
            .expect("app builds");
        let base = format!("http://127.0.0.1:{}", app.port());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until(async move {
            let _ = rx.await;
        }));
        TestApp {
            base,
            http: reqwest::Client::new(),
            config_file: file,
            shutdown: Some(tx),
            task: Some(task),
            _config_dir: dir,
        }
    }

    /// POSTs JSON with a bearer token.
    pub async fn post(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// GETs with a bearer token.
    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
    }

    /// PUTs JSON with a bearer token.
    pub async fn put(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.http
            .put(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// Stops serving and waits for the drain.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A valid ticket body: a live wage dispute in county 320831.
pub fn ticket(external_id: &str) -> Value {
    json!({
        "source": "12345",
        "external_id": external_id,
        "received_at": "2026-01-05T09:30:00+08:00",
        "channel": "phone",
        "transfer": "one_click",
        "caller": {"name": "王建国", "phone": "13812348000"},
        "region": {"code": "320831", "town": "城关镇", "village": "东关村"},
        "title": "工地拖欠工资",
        "text": "来电人反映在城关镇某工地打工，老板拖欠工资三个月共两万元，双方多次协商未果，今天在工地吵起来了，希望调解员帮忙协调讨要工资。",
        "people_involved": 2,
        "tags": ["欠薪"]
    })
}

/// The gateway binary as a child process, for tests that kill it.
pub struct GatewayProcess {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// Where its stderr (the logs) goes.
    pub log: PathBuf,
}

impl GatewayProcess {
    /// Starts the binary with a config file and waits for `/healthz`.
    pub fn start(config: &Path, port: u16, log: PathBuf) -> GatewayProcess {
        Self::start_with_env(config, port, log, &[])
    }

    /// As [`GatewayProcess::start`], with extra environment variables (partners' secrets).
    pub fn start_with_env(
        config: &Path,
        port: u16,
        log: PathBuf,
        env: &[(&str, &str)],
    ) -> GatewayProcess {
        let stderr = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_hotline-gateway"))
            .args(["serve", "--config"])
            .arg(config)
            .envs(env.iter().copied())
            .env("HOTLINE__HTTP__LISTEN", format!("127.0.0.1:{port}"))
            .env_remove("RUST_LOG")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("gateway binary starts");
        let base = format!("http://127.0.0.1:{port}");
        let process = GatewayProcess { child, base, log };
        process.wait_healthy();
        process
    }

    fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(self.base.trim_start_matches("http://")).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        panic!("gateway did not start; its log:\n{log}");
    }

    /// The OS process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// kill -9.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// kill -TERM, then waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().expect("gateway exits")
    }
}

impl Drop for GatewayProcess {
    /// SIGTERM first, so a gateway that started its own redis-server stops it too; SIGKILL only
    /// if it has not exited within 10 s.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads Server-Sent Events from a streaming response.
pub struct SseReader {
    /// The streaming response.
    pub res: reqwest::Response,
    /// Text received and not yet parsed.
    pub buf: String,
}

impl SseReader {
    /// The next event of one of `names`, as (name, data JSON); panics after `limit`.
    pub async fn next_of(
        &mut self,
        names: &[&str],
        limit: Duration,
    ) -> (String, serde_json::Value) {
        let deadline = Instant::now() + limit;
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut name = "message".to_string();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                if names.contains(&name.as_str()) {
                    let json =
                        serde_json::from_str(&data).unwrap_or(serde_json::Value::String(data));
                    return (name, json);
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no {names:?} event in time");
            match tokio::time::timeout(left, self.res.chunk()).await {
                Ok(Ok(Some(bytes))) => self.buf.push_str(&String::from_utf8_lossy(&bytes)),
                Ok(_) => panic!("the event stream ended"),
                Err(_) => panic!("no {names:?} event in time"),
            }
        }
    }
}

/// An `[[auth.tokens]]` entry for a test config's extra TOML: `name`, `role`, the plain token
/// (stored as its digest) and any further lines (`agent_id = "m1"`, `regions = ["3208"]`).
pub fn token_entry(name: &str, role: &str, plain: &str, more: &str) -> String {
    format!(
        "\n[[auth.tokens]]\nname = \"{name}\"\nrole = \"{role}\"\nsha256 = \"{}\"\n{more}\n",
        hotline_gateway::auth::digest_hex(plain)
    )
}

/// The token entry of agent `id`, whose plain token is `t-<id>`.
pub fn agent_token(id: &str) -> String {
    token_entry(
        &format!("agent {id}"),
        "agent",
        &format!("t-{id}"),
        &format!("agent_id = \"{id}\""),
    )
}

/// Status and JSON body of a response (`Value::Null` when the body is empty or not JSON).
pub async fn status_and_json(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let text = res.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// `POST /v1/tickets` with `token`; asserts `201` and returns the receipt.
pub async fn create_ticket(app: &TestApp, token: &str, body: &Value) -> Value {
    let (status, v) = status_and_json(app.post("/v1/tickets", token, body).await).await;
    assert_eq!(
        status, 201,
        "POST /v1/tickets should register a new ticket: {v}"
    );
    v
}

/// `POST /v1/tickets/{id}/{action}` with `token`; returns the status and the JSON answer.
pub async fn act(app: &TestApp, id: &str, action: &str, token: &str, body: Value) -> (u16, Value) {
    status_and_json(
        app.post(&format!("/v1/tickets/{id}/{action}"), token, &body)
            .await,
    )
    .await
}

/// `GET /v1/tickets/{id}` with `token`; returns the status and the JSON answer.
pub async fn read_ticket(app: &TestApp, id: &str, token: &str) -> (u16, Value) {
    status_and_json(app.get(&format!("/v1/tickets/{id}"), token).await).await
}

/// `POST /v1/agents/{agent}/claim` with the agent's own token `t-<agent>`: the claim on `200`,
/// `None` on `204`; panics on anything else.
pub async fn claim(app: &TestApp, agent: &str) -> Option<Value> {
    let (status, v) = status_and_json(
        app.post(
            &format!("/v1/agents/{agent}/claim"),
            &format!("t-{agent}"),
            &json!({}),
        )
        .await,
    )
    .await;
    match status {
        200 => Some(v),
        204 => None,
        other => panic!("claim by {agent} answered {other}: {v}"),
    }
}

/// `PUT /v1/agents/{id}` as admin; asserts `200` and returns the stored agent.
pub async fn put_agent(app: &TestApp, id: &str, spec: &Value) -> Value {
    let (status, v) =
        status_and_json(app.put(&format!("/v1/agents/{id}"), ADMIN, spec).await).await;
    assert_eq!(status, 200, "PUT /v1/agents/{id}: {v}");
    v
}

/// `GET /v1/agents` as supervisor: the agents by id.
pub async fn agents_by_id(app: &TestApp) -> std::collections::BTreeMap<String, Value> {
    let (status, v) = status_and_json(app.get("/v1/agents", SUPERVISOR).await).await;
    assert_eq!(status, 200, "GET /v1/agents: {v}");
    v["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .map(|a| (a["id"].as_str().unwrap_or_default().to_string(), a.clone()))
        .collect()
}

/// Polls `probe` every 50 ms until it returns `Some`, or panics naming `what` after `limit`.
pub async fn wait_for<T, F, Fut>(limit: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Opens agent `agent`'s offer stream (its token `t-<agent>`) and waits for `online`.
pub async fn open_offers(app: &TestApp, agent: &str) -> SseReader {
    let res = app
        .http
        .get(format!("{}/v1/agents/{agent}/offers", app.base))
        .bearer_auth(format!("t-{agent}"))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
    let mut reader = SseReader {
        res,
        buf: String::new(),
    };
    reader.next_of(&["online"], Duration::from_secs(10)).await;
    reader
}

/// Reloads the gateway at `base` as the unrestricted admin (`202`) and waits until the
/// recomputation of open tickets, which runs in the background, has finished. Returns the
/// reload's answer and the finished progress (`GET /v1/admin/reload`).
pub async fn reload_and_wait(base: &str) -> (Value, Value) {
    let http = reqwest::Client::new();
    let res = http
        .post(format!("{base}/v1/admin/reload"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("sent");
    let (status, report) = status_and_json(res).await;
    assert_eq!(status, 202, "{report}");
    let progress = wait_for(
        Duration::from_secs(60),
        "the recomputation to finish",
        || {
            let http = http.clone();
            async move {
                let res = http
                    .get(format!("{base}/v1/admin/reload"))
                    .bearer_auth(ADMIN)
                    .send()
                    .await
                    .ok()?;
                let (_, progress) = status_and_json(res).await;
                (progress["state"] != "running").then_some(progress)
            }
        },
    )
    .await;
    assert_eq!(progress["state"], "finished", "{progress}");
    (report, progress)
}

// ---- PostgreSQL -------------------------------------------------------------------------------

/// The server binaries' directory, the run-as user's ids when we are root, and the cluster
/// template every test server is copied from (made once per test binary with the gateway's own
/// `initdb`; `--no-sync` only there, since a template that a crash tore is simply made again).
struct PgBase {
    bin_dir: PathBuf,
    run_as: Option<hotline_gateway::local_postgres::RunAs>,
    template: PathBuf,
}

/// Test servers' directories are `$TMPDIR/hotline-pg-<pid>-*`; ones whose test binary has gone
/// (killed, or its shared server never dropped) are removed by the next binary that starts one.
const PG_DIR_PREFIX: &str = "hotline-pg-";

fn pg_base() -> &'static PgBase {
    static BASE: std::sync::OnceLock<PgBase> = std::sync::OnceLock::new();
    BASE.get_or_init(|| {
        sweep_stale_pg_dirs();
        let bin_dir = hotline_gateway::local_postgres::find_bin_dir(Path::new(""))
            .unwrap_or_else(|e| panic!("{e}"));
        let run_as = hotline_gateway::local_postgres::RunAs::when_root("postgres")
            .unwrap_or_else(|e| panic!("{e}"));
        let root = pg_tempdir().keep();
        let template = root.join("data");
        let launch = hotline_gateway::local_postgres::PgLaunch {
            bin_dir: &bin_dir,
            port: 0,
            data: &template,
            run_as,
        };
        launch.prepare_data_dir().expect("template data dir");
        let out = launch
            .initdb()
            .arg("--no-sync")
            .stdin(Stdio::null())
            .output()
            .expect("initdb runs");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        PgBase {
            bin_dir,
            run_as,
            template,
        }
    })
}

/// A temporary directory the server's user (`postgres` when we are root) can enter, whatever the
/// umask.
fn pg_tempdir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::Builder::new()
        .prefix(&format!("{PG_DIR_PREFIX}{}-", std::process::id()))
        .tempdir()
        .expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod tempdir");
    dir
}

/// Removes the directories of test binaries that are no longer running.
fn sweep_stale_pg_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PG_DIR_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        // Its servers died with it (SIGQUIT), except one it had paused (SIGSTOP), which the
        // SIGQUIT cannot reach: killed here, with its stopped children, and its (56-byte)
        // System V shared memory segment removed.
        for pid_file in [
            entry.path().join("data/postmaster.pid"),
            entry.path().join("postgres/data/postmaster.pid"),
        ] {
            let Ok(text) = std::fs::read_to_string(&pid_file) else {
                continue;
            };
            let lines: Vec<&str> = text.lines().collect();
            let data = pid_file.parent().map(Path::to_path_buf).unwrap_or_default();
            if let Some(pid) = lines.first().and_then(|l| l.trim().parse::<u32>().ok()) {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let data_arg = data.as_os_str().as_encoded_bytes();
                if cmdline.windows(data_arg.len()).any(|w| w == data_arg) {
                    signal(pid, nix::sys::signal::Signal::SIGSTOP);
                    for child in children_of(pid) {
                        signal(child, nix::sys::signal::Signal::SIGKILL);
                    }
                    signal(pid, nix::sys::signal::Signal::SIGKILL);
                }
            }
            if let Some(shmid) = lines.get(6).and_then(|l| l.split_whitespace().nth(1)) {
                let _ = Command::new("ipcrm")
                    .args(["-m", shmid])
                    .stderr(Stdio::null())
                    .status();
            }
        }
        let _ = std::fs::remove_dir_all(entry.path());
    }
}

/// Spawns `cmd` so that it gets SIGQUIT (for a postmaster: immediate shutdown, which ends its
/// children and frees its shared memory) when this test binary exits, however it exits (even
/// when killed, or when the server is a never-dropped static): `PR_SET_PDEATHSIG`. The signal
/// follows the *thread* that forked, so every server is forked by one thread that lives as long
/// as the process, not by a test's thread (which ends with its test).
fn spawn_owned(mut cmd: Command) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt as _;
    use std::sync::mpsc;
    type Job = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: std::sync::OnceLock<std::sync::Mutex<mpsc::Sender<Job>>> =
        std::sync::OnceLock::new();
    // SAFETY: the closure runs in the forked child before exec and only makes the prctl
    // system call (async-signal-safe); it runs after Command's setuid, which would otherwise
    // clear the setting.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGQUIT)
                .map_err(std::io::Error::from)
        });
    }
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("pg-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("spawner thread");
        std::sync::Mutex::new(tx)
    });
    let (reply, answer) = mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .send((cmd, reply))
        .expect("spawner alive");
    answer.recv().expect("spawner answers")
}

/// Whether `pid` runs: it exists and is not a zombie (killed servers' children are reaped by
/// init, which may be slow about it).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat.rsplit_once(')')?.1.trim_start().chars().next()?;
            Some(state != 'Z')
        })
        .unwrap_or(false)
}

/// The pids of a postmaster's children (its backends and helper processes).
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|stat| {
                    // `pid (comm) state ppid ...`; comm may hold spaces, so split after `)`.
                    let after = stat.rsplit_once(')')?.1;
                    after.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig);
}

/// A real PostgreSQL owned by one test (for fault tests: kill, restart, pause), configured as
/// the gateway's own (`PgLaunch`), on a free port, its cluster a copy of the binary's template
/// in a fresh directory. Its database `hotline` exists; [`PgServer::url`] points at it.
pub struct PgServer {
    child: Option<Child>,
    port: u16,
    /// `None` only while dropping.
    dir: Option<tempfile::TempDir>,
    data: PathBuf,
}

impl PgServer {
    /// Starts one (about 0.3 s: a 40 MB copy and the server's start) and creates `hotline`.
    pub fn start() -> PgServer {
        let base = pg_base();
        let dir = pg_tempdir();
        let data = dir.path().join("data");
        let copied = Command::new("cp")
            .arg("-a")
            .arg(&base.template)
            .arg(&data)
            .status()
            .expect("cp runs");
        assert!(copied.success(), "copying the cluster template failed");
        let mut server = PgServer {
            child: None,
            port: free_port(),
            dir: Some(dir),
            data,
        };
        server.spawn();
        let out = server
            .launch()
            .createdb(hotline_gateway::local_postgres::DATABASE)
            .output()
            .expect("createdb runs");
        assert!(
            out.status.success(),
            "createdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        server
    }

    fn launch(&self) -> hotline_gateway::local_postgres::PgLaunch<'_> {
        let base = pg_base();
        hotline_gateway::local_postgres::PgLaunch {
            bin_dir: &base.bin_dir,
            port: self.port,
            data: &self.data,
            run_as: base.run_as,
        }
    }

    fn spawn(&mut self) {
        let log = self
            .data
            .parent()
            .expect("data is in the test's directory")
            .join("postgres.log");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .expect("server log");
            let mut cmd = self.launch().postgres();
            cmd.stdin(Stdio::null())
                .stdout(out.try_clone().expect("log fd"))
                .stderr(out);
            let mut child = spawn_owned(cmd).expect("postgres starts");
            if self.launch().wait_ready_blocking(Duration::from_secs(20)) {
                self.child = Some(child);
                return;
            }
            // After a kill, the old server's shared memory can still be held for a moment by
            // its exiting children: the new one exits at once, and is simply started again.
            let exited = child.try_wait().ok().flatten().is_some();
            let _ = child.kill();
            let _ = child.wait();
            assert!(
                exited && Instant::now() < deadline,
                "postgres on port {} did not start; log: {}",
                self.port,
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `postgres://hotline@127.0.0.1:<port>/hotline`.
    pub fn url(&self) -> String {
        self.launch().url()
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The postmaster's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL to the postmaster and all its processes at once (a crash: no shutdown
    /// checkpoint, so the next start recovers from the WAL); returns once they have all gone.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            // Stopped first, the postmaster forks no new backend while its children are listed.
            signal(c.id(), nix::sys::signal::Signal::SIGSTOP);
            let children = children_of(c.id());
            let _ = c.kill();
            for &p in &children {
                signal(p, nix::sys::signal::Signal::SIGKILL);
            }
            let _ = c.wait();
            let deadline = Instant::now() + Duration::from_secs(10);
            while children.iter().any(|&p| running(p)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    /// SIGSTOP to the postmaster and all its processes: the server holds its connections and
    /// answers nothing until [`Self::resume`].
    pub fn pause(&self) {
        if let Some(pid) = self.pid() {
            signal(pid, nix::sys::signal::Signal::SIGSTOP);
            for p in children_of(pid) {
                signal(p, nix::sys::signal::Signal::SIGSTOP);
            }
        }
    }

    /// SIGCONT after [`Self::pause`].
    pub fn resume(&self) {
        if let Some(pid) = self.pid() {
            for p in children_of(pid) {
                signal(p, nix::sys::signal::Signal::SIGCONT);
            }
            signal(pid, nix::sys::signal::Signal::SIGCONT);
        }
    }

    /// Kills it and starts it again on the same port and cluster (a crash and a recovery).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Creates a new, empty database on this server and returns its URL.
    pub fn create_database(&self) -> String {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!("t{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let out = self
            .launch()
            .createdb(&name)
            .output()
            .expect("createdb runs");
        assert!(
            out.status.success(),
            "createdb {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.launch().url_of(&name)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // Immediate shutdown (SIGQUIT; after SIGCONT in case it is paused): the postmaster ends
        // its children and waits for them, so the directory can then be removed whole.
        if let Some(mut c) = self.child.take() {
            self.resume();
            signal(c.id(), nix::sys::signal::Signal::SIGQUIT);
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        // Removing a cluster whose files were synced can take seconds (ext4 with `discard`):
        // done on a thread of its own; if the binary exits first, the next one sweeps it.
        if let Some(dir) = self.dir.take() {
            let _ = std::thread::Builder::new()
                .name("pg-dir-removal".into())
                .spawn(move || drop(dir));
        }
    }
}

/// A new, empty database for one test, on a server shared by the whole test binary (started on
/// first use, killed when the binary exits): the cheap way to an isolated archive (one
/// `CREATE DATABASE`, about 0.1 s). Tests that kill or pause the server use [`PgServer::start`].
pub fn fresh_database() -> String {
    static SHARED: std::sync::OnceLock<PgServer> = std::sync::OnceLock::new();
    SHARED.get_or_init(PgServer::start).create_database()
}
