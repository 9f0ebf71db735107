//! The processes a run owns: a production-configured `redis-server` and the gateway binary, each
//! on a free loopback port in a temp directory, stopped by `Drop` on every exit path.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

/// The partner token the load generator sends; only its digest goes into the config file.
pub const PARTNER_TOKEN: &str = "load-test-partner-token";
/// The name of [`PARTNER_TOKEN`]'s entry: its tickets' idempotency keys are in this partner's
/// key space (`hl:{c}:idem:p.partner-load:…`).
pub const PARTNER_NAME: &str = "partner-load";

/// The only host anything here ever connects to.
pub const LOOPBACK: &str = "127.0.0.1";

/// A loopback port nobody listens on right now.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((LOOPBACK, 0)).context("bind 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Waits until `child` exits, at most `limit`; `true` when it did.
fn wait_bounded(child: &mut Child, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A `redis-server` configured like production (the gateway's `RedisLaunch`), with AOF every
/// second as the benchmark references run.
pub struct RedisServer {
    /// The child; `None` once stopped.
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Data directory (AOF); removed on drop.
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts one in a fresh temp directory and waits for PING.
    pub fn start() -> Result<RedisServer> {
        let dir = tempfile::Builder::new()
            .prefix("hl-load-redis-")
            .tempdir()
            .context("create a temp dir for Redis")?;
        let port = free_port()?;
        // The gateway's own launcher, with the fsync policy the benchmark references use.
        let child = hotline_gateway::local_redis::RedisLaunch {
            binary: "redis-server",
            port,
            dir: dir.path(),
            appendfsync: "everysec",
        }
        .command()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("start redis-server (is it installed? apt-get install redis-server)")?;
        let mut server = RedisServer {
            child: Some(child),
            port,
            _dir: dir,
        };
        server.wait_ready()?;
        Ok(server)
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        format!("redis://{LOOPBACK}:{}/0", self.port)
    }

    /// Polls PING for at most 10 s.
    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                bail!("redis-server exited at start-up: {status}");
            }
            let ping = redis::Client::open(self.url())
                .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            if ping.is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!(
            "redis-server on port {} did not answer PING in 10 s",
            self.port
        )
    }

    /// SHUTDOWN NOSAVE (the data is disposable), then kill if it is still there after 5 s.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(mut c) = redis::Client::open(self.url())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(500)))
        {
            // SHUTDOWN answers by closing the connection; the error is its success.
            let _ = redis::cmd("SHUTDOWN").arg("NOSAVE").query::<()>(&mut c);
        }
        if !wait_bounded(&mut child, Duration::from_secs(5)) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The gateway binary as a child, with its temp config and log.
pub struct Gateway {
    /// The child; `None` once stopped.
    child: Option<Child>,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// Holds the config file and the log; removed on drop.
    dir: tempfile::TempDir,
    /// The database of the gateway's own PostgreSQL (up while the gateway runs).
    pub archive_url: String,
}

/// Settings a scenario changes from the gateway's defaults; `None` keeps the default.
#[derive(Debug, Clone, Default)]
pub struct GatewayTuning {
    /// `redis.stream_maxlen`: the `timers` scenario reads every fired timer back from the
    /// county's event stream, so the stream must not be trimmed under it.
    pub stream_maxlen: Option<u64>,
    /// `sla.mover_max_sleep_ms`: the longest the timer mover sleeps, recorded with the results.
    pub mover_max_sleep_ms: Option<u64>,
    /// `sla.mover_batch`: the most timers one mover step fires per county.
    pub mover_batch: Option<u64>,
    /// More TOML appended as is: the `work` scenario's agent tokens and `[[agents.bootstrap]]`
    /// entries.
    pub extra_toml: String,
    /// Keys of the `[archive]` table (`after_seconds = 0`, `interval_ms = 200`): the `soak` and
    /// `archive` scenarios archive at once, or hold archiving off.
    pub archive_toml: String,
    /// The directory and port of the gateway's own PostgreSQL when it must outlive this gateway
    /// (the `archive` scenario fills Redis with one gateway and archives with the next, into the
    /// same database); `None`: in the gateway's own temp directory, on a free port.
    pub archive_at: Option<(PathBuf, u16)>,
}

/// The TOML the gateway runs with: the shape of `tests/support/mod.rs` `test_config`, plus any
/// [`GatewayTuning`] (the gateway merges it over its compiled-in defaults key by key).
fn config_toml(redis_url: &str, port: u16, archive: &OwnArchive, tuning: &GatewayTuning) -> String {
    let digest = hex::encode(Sha256::digest(PARTNER_TOKEN.as_bytes()));
    let stream_maxlen = tuning
        .stream_maxlen
        .map(|n| format!("stream_maxlen = {n}\n"))
        .unwrap_or_default();
    let mut sla = String::new();
    if tuning.mover_max_sleep_ms.is_some() || tuning.mover_batch.is_some() {
        sla.push_str("\n[sla]\n");
    }
    if let Some(ms) = tuning.mover_max_sleep_ms {
        sla.push_str(&format!("mover_max_sleep_ms = {ms}\n"));
    }
    if let Some(n) = tuning.mover_batch {
        sla.push_str(&format!("mover_batch = {n}\n"));
    }
    format!(
        r#"
[http]
listen = "{LOOPBACK}:{port}"
shutdown_grace_seconds = 5

[redis]
url = "{redis_url}"
connect_timeout_ms = 1000
response_timeout_ms = 2000
retry_after_seconds = 3
{stream_maxlen}
{archive}
[log]
format = "json"
level = "warn"

# The counties the load spreads over (`texts::COUNTIES`): the gateway refuses any other.
[counties]
"320812" = "清江浦区"
"320826" = "涟水县"
"320830" = "盱眙县"
"320831" = "金湖县"
"440305" = "南山区"
"510802" = "利州区"

[[auth.tokens]]
name = "{PARTNER_NAME}"
role = "partner"
sha256 = "{digest}"
# The generator is one caller offering more than the default rate limit (2,000/s): unlimited,
# so what is measured is the gateway, not its throttle (the limiter's script still runs).
rate_per_second = 0
{sla}{extra}"#,
        extra = tuning.extra_toml,
        archive = archive.toml(&tuning.archive_toml),
    )
}

/// The gateway's case archive: its own PostgreSQL, which it starts and stops itself (as on a
/// fresh machine), in the run's directory on a free port.
pub struct OwnArchive {
    /// Data directory (enterable by the `postgres` user when the gateway runs as root).
    pub dir: PathBuf,
    /// Loopback port.
    pub port: u16,
}

impl OwnArchive {
    fn toml(&self, keys: &str) -> String {
        format!(
            "[archive]\n{keys}\n[archive.local]\ndir = \"{}\"\nport = {}\n",
            self.dir.display(),
            self.port
        )
    }

    /// The URL of its database (`trust` authentication on loopback, as the gateway sets it up).
    pub fn url(&self) -> String {
        format!(
            "postgres://{}@{LOOPBACK}:{}/{}",
            hotline_gateway::local_postgres::ROLE,
            self.port,
            hotline_gateway::local_postgres::DATABASE
        )
    }
}

impl Gateway {
    /// Starts `bin serve --config <temp>` from `workdir` (where `config/lexicon.toml` is) and
    /// waits for `/readyz`.
    pub async fn start(
        bin: &Path,
        workdir: &Path,
        redis_url: &str,
        tuning: GatewayTuning,
    ) -> Result<Gateway> {
        if !bin.is_file() {
            bail!(
                "gateway binary {} not found: run `cargo build --release` first, or pass --gateway-bin",
                bin.display()
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("hl-load-gateway-")
            .tempdir()
            .context("create a temp dir for the gateway")?;
        let port = free_port()?;
        // The gateway's own PostgreSQL lives in the run's directory; PostgreSQL refuses to run
        // as root, so when the gateway is root it runs it as `postgres`, who must enter here.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .context("open the run's directory to the postgres user")?;
        let archive = match &tuning.archive_at {
            Some((dir, port)) => OwnArchive {
                dir: dir.clone(),
                port: *port,
            },
            None => OwnArchive {
                dir: dir.path().join("postgres"),
                port: free_port()?,
            },
        };
        let config = dir.path().join("gateway.toml");
        std::fs::write(&config, config_toml(redis_url, port, &archive, &tuning))
            .context("write gateway config")?;
        let log = File::create(dir.path().join("gateway.log")).context("create gateway log")?;
        let child = Command::new(bin)
            .args(["serve", "--config"])
            .arg(&config)
            .current_dir(workdir)
            .env_remove("RUST_LOG")
            .env_remove("HOTLINE__HTTP__LISTEN")
            .env_remove("HOTLINE__REDIS__URL")
            .env_remove("HOTLINE__ARCHIVE__URL")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {}", bin.display()))?;
        let mut gateway = Gateway {
            child: Some(child),
            base: format!("http://{LOOPBACK}:{port}"),
            dir,
            archive_url: archive.url(),
        };
        if let Err(e) = gateway.wait_ready().await {
            let log = gateway.log_tail();
            gateway.stop();
            return Err(e.context(format!("gateway log:\n{log}")));
        }
        Ok(gateway)
    }

    /// The last 4 KB of the gateway's log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let start = text.len().saturating_sub(4096);
        let start = (start..text.len())
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(text.len());
        text[start..].to_string()
    }

    /// Where stderr goes.
    fn log_path(&self) -> PathBuf {
        self.dir.path().join("gateway.log")
    }

    /// Polls `/readyz` (Redis reachable, scripts loaded) for at most 20 s.
    async fn wait_ready(&mut self) -> Result<()> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(500))
            .build()?;
        let url = format!("{}/readyz", self.base);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                bail!("the gateway exited at start-up: {status}");
            }
            if let Ok(r) = client.get(&url).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("the gateway was not ready within 20 s")
    }

    /// The gateway's process id while it runs (to read its memory).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGTERM through `kill`, up to 10 s for the drain, then SIGKILL.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !wait_bounded(&mut child, Duration::from_secs(10)) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stop();
    }
}
