//! The `redis-server` the gateway starts for itself when no `redis.url` is configured, so the
//! first run on a fresh machine needs no set-up.
//!
//! It runs on loopback with AOF on and `maxmemory-policy noeviction`, its data under
//! `redis.local.dir` (default `./var/redis`). If a gateway was killed and left its child running,
//! the next start finds a server on the port whose data directory is ours and adopts it, instead
//! of failing on a busy port.
//!
//! [`RedisLaunch`] is the one way this project starts a `redis-server`: the gateway here, the
//! integration tests (`tests/support`) and the load generator (`load-tests`) all use it, so the
//! tests run against the configuration production is told to use.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::process::{Child, Command};

use crate::setting::{ConfigError, invalid};

/// `[redis.local]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalRedisSettings {
    /// The `redis-server` executable.
    pub binary: String,
    /// Loopback port of the child.
    pub port: u16,
    /// Data directory (AOF and RDB), relative to the working directory.
    pub dir: PathBuf,
    /// AOF fsync policy: `always` or `everysec`.
    pub appendfsync: String,
}

impl LocalRedisSettings {
    /// Checks the fsync policy.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !["always", "everysec"].contains(&self.appendfsync.as_str()) {
            return Err(invalid(
                "redis.local.appendfsync",
                "must be `always` or `everysec`",
            ));
        }
        Ok(())
    }
}

/// How a `redis-server` of this project is started: loopback only, protected mode, AOF on
/// with `appendfsync` (`always` or `everysec`), no RDB snapshots (the AOF is the durable copy),
/// `maxmemory-policy noeviction` (a full Redis refuses writes instead of deleting tickets), in
/// the foreground.
#[derive(Debug, Clone, Copy)]
pub struct RedisLaunch<'a> {
    /// The executable.
    pub binary: &'a str,
    /// Loopback port.
    pub port: u16,
    /// Data directory.
    pub dir: &'a Path,
    /// AOF fsync policy.
    pub appendfsync: &'a str,
}

impl RedisLaunch<'_> {
    /// The command line; the caller chooses stdio and spawns it.
    pub fn command(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(self.binary);
        cmd.arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--protected-mode", "yes"])
            .arg("--dir")
            .arg(self.dir)
            .args(["--appendonly", "yes", "--appendfsync", self.appendfsync])
            .args(["--save", ""])
            .args(["--maxmemory-policy", "noeviction", "--daemonize", "no"]);
        cmd
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Waits (blocking, for tests and tools) until the server answers PING, at most `limit`.
    pub fn wait_ready_blocking(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            let ping = redis::Client::open(self.url())
                .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            if ping.is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

/// Why the local Redis could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LocalRedisError {
    /// `redis-server` is not on this machine.
    #[error(
        "`{0}` was not found. Install Redis (Debian/Ubuntu: `sudo apt-get install redis-server`; \
         macOS: `brew install redis`), or point `redis.url` (HOTLINE__REDIS__URL) at a running server"
    )]
    NotInstalled(String),
    /// The port answers, but with somebody else's Redis.
    #[error(
        "port {port} already serves a Redis whose data directory is {dir:?}, not ours; \
         set redis.local.port to a free port or redis.url to use that server"
    )]
    PortTaken {
        /// The configured port.
        port: u16,
        /// That server's `dir`.
        dir: String,
    },
    /// The data directory could not be created.
    #[error("redis.local.dir {path:?}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The child did not come up.
    #[error("redis-server did not start: {0}")]
    Start(String),
}

/// A running local Redis that this gateway owns and stops on exit.
pub struct LocalRedis {
    child: Option<Child>,
    url: String,
    dir: PathBuf,
}

impl LocalRedis {
    /// The `redis://` URL to connect to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The absolute data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts (or adopts) the local server and waits until it answers.
    pub async fn start(settings: &LocalRedisSettings) -> Result<LocalRedis, LocalRedisError> {
        std::fs::create_dir_all(&settings.dir).map_err(|source| LocalRedisError::Dir {
            path: settings.dir.clone(),
            source,
        })?;
        let dir = std::fs::canonicalize(&settings.dir).map_err(|source| LocalRedisError::Dir {
            path: settings.dir.clone(),
            source,
        })?;
        let url = format!("redis://127.0.0.1:{}/0", settings.port);

        if let Some(their_dir) = probe_dir(&url).await {
            if Path::new(&their_dir) == dir {
                tracing::warn!(port = settings.port, dir = %dir.display(), "adopting a local Redis left running by an earlier gateway");
                return Ok(LocalRedis {
                    child: None,
                    url,
                    dir,
                });
            }
            return Err(LocalRedisError::PortTaken {
                port: settings.port,
                dir: their_dir,
            });
        }

        let logfile = dir.join("redis.log");
        let launch = RedisLaunch {
            binary: &settings.binary,
            port: settings.port,
            dir: &dir,
            appendfsync: &settings.appendfsync,
        };
        let mut child = Command::from(launch.command())
            .arg("--logfile")
            .arg(&logfile)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => {
                    LocalRedisError::NotInstalled(settings.binary.clone())
                }
                _ => LocalRedisError::Start(e.to_string()),
            })?;

        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(&logfile).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                return Err(LocalRedisError::Start(format!(
                    "exited with {status}; last log lines: {}",
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                )));
            }
            if probe_dir(&url).await.is_some() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.start_kill();
                return Err(LocalRedisError::Start(format!(
                    "no answer on port {} within 15 s (log: {})",
                    settings.port,
                    logfile.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tracing::info!(port = settings.port, dir = %dir.display(), "started local redis-server (AOF on)");
        Ok(LocalRedis {
            child: Some(child),
            url,
            dir,
        })
    }

    /// Waits for the server to exit after `SHUTDOWN` (which fsyncs the AOF), killing it if it
    /// has not gone within 10 s.
    pub async fn wait_stopped(mut self) {
        if let Some(child) = self.child.as_mut() {
            match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
                Ok(_) => tracing::info!("local redis-server stopped"),
                Err(_) => {
                    tracing::warn!("local redis-server did not stop; killing it");
                    let _ = child.kill().await;
                }
            }
        }
    }
}

/// The data directory of a Redis answering at `url`, or `None` when nothing answers.
async fn probe_dir(url: &str) -> Option<String> {
    let client = redis::Client::open(url).ok()?;
    let connect = client.get_multiplexed_async_connection();
    let mut conn = tokio::time::timeout(Duration::from_millis(500), connect)
        .await
        .ok()?
        .ok()?;
    let reply: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("dir")
        .query_async(&mut conn)
        .await
        .ok()?;
    reply.get(1).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_redis_server_is_reported_with_how_to_install_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = LocalRedisSettings {
            binary: "redis-server-that-is-not-installed".into(),
            port: 1,
            dir: dir.path().join("data"),
            appendfsync: "always".into(),
        };
        let err = match LocalRedis::start(&settings).await {
            Err(e) => e,
            Ok(_) => panic!("must fail"),
        };
        assert!(matches!(err, LocalRedisError::NotInstalled(_)), "{err}");
        let message = err.to_string();
        assert!(
            message.contains("apt-get install redis-server"),
            "{message}"
        );
        assert!(message.contains("redis.url"), "{message}");
    }
}
