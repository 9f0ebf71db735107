//! The PostgreSQL server the gateway starts for itself when no `archive.url` is configured, so
//! the first run on a fresh machine needs no set-up (the case archive lives in it).
//!
//! It is Debian's `postgresql` package (`scripts/ensure-postgres.sh` installs it), run from its
//! binaries, not as the system service: a cluster of our own under `archive.local.dir` (default
//! `./var/postgres`), laid out as
//! - `<dir>/data`: the cluster (`initdb` makes it on the first start), owned by the user the
//!   server runs as, mode 0700; the server's Unix socket is in it too;
//! - `<dir>/postgres.log`: the server's log (appended to).
//!
//! The server runs in the foreground as the gateway's child, on 127.0.0.1 only. PostgreSQL
//! refuses to run as root, so when the gateway runs as root the server runs as
//! `archive.local.run_as` (default `postgres`, the user Debian's package creates) and the
//! cluster belongs to that user; otherwise it runs as the gateway's own user.
//!
//! The cluster's superuser is the role `hotline` (not the OS user, so the URL is the same
//! whoever runs it) and the archive's database is `hotline`, created once:
//! `postgres://hotline@127.0.0.1:<port>/hotline`. Authentication is `trust`, acceptable only
//! because the server listens on 127.0.0.1 and on a socket inside the 0700 data directory:
//! nobody off this machine can connect. Anyone with a shell on the machine can, so a shared
//! machine, or one where the archive must be protected from its own users, sets `archive.url`
//! to a server with passwords instead.
//!
//! If a gateway was killed and left its server running, the next start finds a server on the
//! port that answers on the socket in our data directory and adopts it instead of failing on a
//! busy port (as `local_redis` does).
//!
//! [`PgLaunch`] is the one way this project starts a PostgreSQL: the gateway here, the
//! integration tests (`tests/support`) and the load generator all use it, so the tests run
//! against the configuration production is told to use.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, Uid, User};
use serde::Deserialize;
use tokio::process::{Child, Command};
use tokio_postgres::error::SqlState;

use crate::setting::{ConfigError, invalid};

/// The role the gateway connects as: the cluster's superuser, named the same on every machine.
pub const ROLE: &str = "hotline";
/// The archive's database, created once in a fresh cluster.
pub const DATABASE: &str = "hotline";

/// How long the first start (initdb, then the server) or a crash recovery may take.
const START_LIMIT: Duration = Duration::from_secs(60);
/// How long a fast shutdown (SIGINT) may take before the server is killed; a kill loses nothing
/// committed (the WAL is fsynced), it only makes the next start recover.
const STOP_LIMIT: Duration = Duration::from_secs(30);

/// `[archive.local]`: where and how the gateway's own PostgreSQL runs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LocalPostgresSettings {
    /// The directory holding `initdb` and `postgres`; empty finds the newest
    /// `/usr/lib/postgresql/*/bin` (Debian's layout), then `PATH`.
    pub bin_dir: PathBuf,
    /// Loopback port of the server.
    pub port: u16,
    /// Where the cluster (`data/`) and its log live, relative to the working directory.
    pub dir: PathBuf,
    /// The unprivileged user the server runs as when the gateway runs as root (PostgreSQL
    /// refuses to run as root); ignored otherwise.
    pub run_as: String,
}

impl Default for LocalPostgresSettings {
    fn default() -> Self {
        LocalPostgresSettings {
            bin_dir: PathBuf::new(),
            port: 6391,
            dir: PathBuf::from("var/postgres"),
            run_as: "postgres".into(),
        }
    }
}

impl LocalPostgresSettings {
    /// Checks each key, naming it (`archive.local.<key>`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.port == 0 {
            return Err(invalid(
                "archive.local.port",
                "must be a port from 1 to 65535",
            ));
        }
        if self.dir.as_os_str().is_empty() {
            return Err(invalid(
                "archive.local.dir",
                "must name the directory for the local PostgreSQL's data (e.g. `var/postgres`)",
            ));
        }
        let name_ok = !self.run_as.is_empty()
            && self
                .run_as
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
        if !name_ok {
            return Err(invalid(
                "archive.local.run_as",
                "must be the name of an unprivileged system user (default `postgres`)",
            ));
        }
        if !self.bin_dir.as_os_str().is_empty() && !has_binaries(&self.bin_dir) {
            return Err(invalid(
                "archive.local.bin_dir",
                format!(
                    "{:?} holds no `initdb` and `postgres`; leave it empty to find Debian's \
                     (/usr/lib/postgresql/<version>/bin) or install them: scripts/ensure-postgres.sh",
                    self.bin_dir
                ),
            ));
        }
        Ok(())
    }
}

/// Whether `dir` holds the server binaries this module runs.
fn has_binaries(dir: &Path) -> bool {
    ["initdb", "postgres", "createdb"]
        .iter()
        .all(|b| dir.join(b).is_file())
}

/// The directory of the server binaries: `configured` when set, else the newest
/// `/usr/lib/postgresql/<version>/bin` (Debian does not put them on `PATH`), else the first
/// `PATH` entry that has them.
pub fn find_bin_dir(configured: &Path) -> Result<PathBuf, LocalPostgresError> {
    if !configured.as_os_str().is_empty() {
        return if has_binaries(configured) {
            Ok(configured.to_path_buf())
        } else {
            Err(LocalPostgresError::NotInstalled(
                configured.display().to_string(),
            ))
        };
    }
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            has_binaries(&bin).then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version);
    if let Some((_, bin)) = newest {
        return Ok(bin);
    }
    std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).find(|d| has_binaries(d)))
        .ok_or_else(|| {
            LocalPostgresError::NotInstalled("/usr/lib/postgresql/*/bin and PATH".into())
        })
}

/// The user the server runs as when we are root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunAs {
    /// Its user id.
    pub uid: u32,
    /// Its primary group.
    pub gid: u32,
}

impl RunAs {
    /// `None` when we are not root (the server runs as us); the ids of `name` when we are.
    pub fn when_root(name: &str) -> Result<Option<RunAs>, LocalPostgresError> {
        if !Uid::effective().is_root() {
            return Ok(None);
        }
        match User::from_name(name) {
            Ok(Some(user)) if !user.uid.is_root() => Ok(Some(RunAs {
                uid: user.uid.as_raw(),
                gid: user.gid.as_raw(),
            })),
            _ => Err(LocalPostgresError::NoUser(name.to_string())),
        }
    }
}

/// How a PostgreSQL of this project is made and started: a cluster made by `initdb` with the
/// superuser `hotline`, UTF-8 (`C.UTF-8`: byte-order sorting, Unicode character classes) and
/// `trust` authentication; the server in the foreground on 127.0.0.1 and a socket in the data
/// directory, with fsync, synchronous commit and full-page writes on (an acknowledged archive
/// write survives a crash) and modest memory for a small machine.
#[derive(Debug, Clone, Copy)]
pub struct PgLaunch<'a> {
    /// The directory of `initdb`, `postgres` and `createdb` ([`find_bin_dir`]).
    pub bin_dir: &'a Path,
    /// Loopback port.
    pub port: u16,
    /// The cluster directory (absolute).
    pub data: &'a Path,
    /// Who the server runs as when we are root ([`RunAs::when_root`]).
    pub run_as: Option<RunAs>,
}

impl PgLaunch<'_> {
    /// A server-side tool, as the user the server runs as, from a directory that user may enter.
    fn server_tool(&self, name: &str) -> std::process::Command {
        use std::os::unix::process::CommandExt as _;
        let mut cmd = std::process::Command::new(self.bin_dir.join(name));
        if let Some(user) = self.run_as {
            cmd.uid(user.uid).gid(user.gid);
        }
        cmd.current_dir(self.data.parent().unwrap_or(self.data));
        cmd
    }

    /// Whether the data directory already holds a cluster.
    pub fn has_cluster(&self) -> bool {
        self.data.join("PG_VERSION").is_file()
    }

    /// Creates the (empty) data directory, mode 0700, owned by the user the server runs as.
    pub fn prepare_data_dir(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(self.data)?;
        std::fs::set_permissions(self.data, std::fs::Permissions::from_mode(0o700))?;
        if let Some(user) = self.run_as {
            std::os::unix::fs::chown(self.data, Some(user.uid), Some(user.gid))?;
        }
        Ok(())
    }

    /// `initdb` for a new cluster; the caller chooses stdio (and may add `--no-sync` for a
    /// throw-away test template).
    pub fn initdb(&self) -> std::process::Command {
        let mut cmd = self.server_tool("initdb");
        cmd.arg("--pgdata")
            .arg(self.data)
            .args(["--username", ROLE, "--auth", "trust"])
            .args(["--encoding", "UTF8", "--locale", "C.UTF-8"]);
        cmd
    }

    /// The server, in the foreground; the caller chooses stdio (its log is stderr) and spawns it.
    pub fn postgres(&self) -> std::process::Command {
        let mut cmd = self.server_tool("postgres");
        cmd.arg("-D")
            .arg(self.data)
            .arg("-p")
            .arg(self.port.to_string());
        let socket_dir = format!("unix_socket_directories=\"{}\"", self.data.display());
        for setting in [
            "listen_addresses=127.0.0.1",
            socket_dir.as_str(),
            "unix_socket_permissions=0700",
            "fsync=on",
            "synchronous_commit=on",
            "full_page_writes=on",
            "shared_buffers=128MB",
            "max_connections=100",
            "max_wal_size=512MB",
            "jit=off",
            "logging_collector=off",
            "log_destination=stderr",
            "log_timezone=UTC",
            "log_line_prefix=%m [%p] ",
        ] {
            cmd.arg("-c").arg(setting);
        }
        cmd
    }

    /// `createdb` of `name` over TCP (a client, run as whoever we are).
    pub fn createdb(&self, name: &str) -> std::process::Command {
        let mut cmd = std::process::Command::new(self.bin_dir.join("createdb"));
        cmd.args(["-h", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .args(["-U", ROLE, "--no-password", name]);
        cmd
    }

    /// `postgres://hotline@127.0.0.1:<port>/hotline`.
    pub fn url(&self) -> String {
        self.url_of(DATABASE)
    }

    /// The URL of another database of this server (tests: one database per test).
    pub fn url_of(&self, database: &str) -> String {
        format!("postgres://{ROLE}@127.0.0.1:{}/{database}", self.port)
    }

    /// The postmaster's pid from `postmaster.pid`, while the file is there.
    pub fn postmaster_pid(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.data.join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    /// Whether the postmaster has written `ready` into `postmaster.pid`, as `pg_ctl` waits for:
    /// polling the file, unlike polling with connections, fills no log with refusals while the
    /// server starts or recovers.
    pub fn reports_ready(&self) -> bool {
        std::fs::read_to_string(self.data.join("postmaster.pid"))
            .ok()
            .and_then(|text| text.lines().nth(7).map(|l| l.trim() == "ready"))
            .unwrap_or(false)
    }

    /// What answers on the TCP port.
    pub async fn probe_tcp(&self, database: &str) -> Probe {
        let mut config = tokio_postgres::Config::new();
        config.host("127.0.0.1");
        probe(config, self.port, database).await
    }

    /// What answers on the socket in our data directory: only a server of this cluster does.
    pub async fn probe_socket(&self) -> Probe {
        let mut config = tokio_postgres::Config::new();
        config.host_path(self.data);
        probe(config, self.port, "postgres").await
    }

    /// Waits until the server reports itself ready and accepts connections on its TCP port, at
    /// most `limit`. (A `postmaster.pid` left by a killed server may still say `ready`; then the
    /// connection is refused and the wait goes on.)
    pub async fn wait_ready(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if self.reports_ready() && self.probe_tcp("postgres").await == Probe::Ready {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// [`Self::wait_ready`] for synchronous callers (tests, tools), on a thread of its own.
    pub fn wait_ready_blocking(&self, limit: Duration) -> bool {
        std::thread::scope(|s| {
            s.spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map(|rt| rt.block_on(self.wait_ready(limit)))
                    .unwrap_or(false)
            })
            .join()
            .unwrap_or(false)
        })
    }

    /// Creates the `hotline` database unless it exists (a start interrupted between `initdb`
    /// and `createdb` is completed by the next one).
    pub async fn ensure_database(&self) -> Result<(), LocalPostgresError> {
        if self.probe_tcp(DATABASE).await != Probe::NoSuchDatabase {
            return Ok(());
        }
        let out = Command::from(self.createdb(DATABASE))
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| LocalPostgresError::CreateDb(e.to_string()))?;
        if !out.status.success() {
            return Err(LocalPostgresError::CreateDb(format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        tracing::info!(
            port = self.port,
            database = DATABASE,
            "created the archive's database"
        );
        Ok(())
    }
}

/// What a connection attempt found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// A server accepted the connection.
    Ready,
    /// A server answered but does not have that database.
    NoSuchDatabase,
    /// A server answered with another refusal (starting up, shutting down, recovering, …).
    Refused,
    /// Nothing answered.
    Absent,
}

/// One connection attempt as `hotline`, closed at once.
async fn probe(mut config: tokio_postgres::Config, port: u16, database: &str) -> Probe {
    config
        .port(port)
        .user(ROLE)
        .dbname(database)
        .connect_timeout(Duration::from_secs(1));
    let attempt = tokio::time::timeout(
        Duration::from_secs(2),
        config.connect(tokio_postgres::NoTls),
    )
    .await;
    match attempt {
        Ok(Ok((client, connection))) => {
            drop(client);
            // Without a client the connection sends Terminate and ends.
            let _ = connection.await;
            Probe::Ready
        }
        Ok(Err(e)) => match e.code() {
            Some(code) if *code == SqlState::INVALID_CATALOG_NAME => Probe::NoSuchDatabase,
            Some(_) => Probe::Refused,
            None => Probe::Absent,
        },
        Err(_) => Probe::Absent,
    }
}

/// Why the local PostgreSQL could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LocalPostgresError {
    /// The server binaries are not on this machine.
    #[error(
        "PostgreSQL was not found (looked in {0}). Install Debian's postgresql package \
         (scripts/ensure-postgres.sh, or `sudo apt-get install postgresql`), set \
         archive.local.bin_dir to the directory holding initdb and postgres, or point \
         archive.url (HOTLINE__ARCHIVE__URL) at a running server"
    )]
    NotInstalled(String),
    /// Running as root, but the user to run the server as does not exist.
    #[error(
        "PostgreSQL refuses to run as root and the user {0:?} (archive.local.run_as) does not \
         exist or is root. Install Debian's postgresql package (scripts/ensure-postgres.sh \
         creates the `postgres` user), set archive.local.run_as to an unprivileged user, or run \
         the gateway as an unprivileged user"
    )]
    NoUser(String),
    /// Running as root, the server's user cannot reach the data directory.
    #[error(
        "the server runs as archive.local.run_as ({user}), which cannot enter {path:?}: give it \
         access (`chmod o+x {path:?}`) or set archive.local.dir (HOTLINE__ARCHIVE__LOCAL__DIR) to \
         a directory it can reach"
    )]
    Unreachable {
        /// The directory it cannot enter.
        path: PathBuf,
        /// That user.
        user: String,
    },
    /// The port answers, but not with the server of our data directory.
    #[error(
        "port {port} already serves a PostgreSQL that is not the one in {data:?}; set \
         archive.local.port to a free port, or archive.url to use that server"
    )]
    PortTaken {
        /// The configured port.
        port: u16,
        /// Our data directory.
        data: PathBuf,
    },
    /// The directory could not be made or used.
    #[error("archive.local.dir {path:?}: {message}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// `initdb` failed.
    #[error("initdb could not make a cluster in {data:?}: {message}")]
    Init {
        /// The data directory.
        data: PathBuf,
        /// Its exit and last lines.
        message: String,
    },
    /// The server did not come up.
    #[error("the local PostgreSQL did not start: {0}")]
    Start(String),
    /// The archive's database could not be created.
    #[error("the local PostgreSQL's database `hotline` could not be created: {0}")]
    CreateDb(String),
}

/// A running local PostgreSQL that this gateway started or adopted, stopped on exit.
pub struct LocalPostgres {
    child: Option<Child>,
    pid: Option<i32>,
    url: String,
    dir: PathBuf,
}

impl LocalPostgres {
    /// The `postgres://` URL of the archive's database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The absolute directory (the cluster is its `data/`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The postmaster's pid.
    pub fn pid(&self) -> Option<i32> {
        self.child
            .as_ref()
            .and_then(|c| c.id())
            .and_then(|id| i32::try_from(id).ok())
            .or(self.pid)
    }

    /// Starts (or adopts) the local server, making the cluster and the `hotline` database on
    /// the first start, and waits until it accepts connections.
    pub async fn start(
        settings: &LocalPostgresSettings,
    ) -> Result<LocalPostgres, LocalPostgresError> {
        let bin_dir = find_bin_dir(&settings.bin_dir)?;
        let run_as = RunAs::when_root(&settings.run_as)?;
        let dir_error = |message: String| LocalPostgresError::Dir {
            path: settings.dir.clone(),
            message,
        };
        std::fs::create_dir_all(&settings.dir).map_err(|e| dir_error(e.to_string()))?;
        let dir = std::fs::canonicalize(&settings.dir).map_err(|e| dir_error(e.to_string()))?;
        let data = dir.join("data");
        // The socket's path must fit a sockaddr_un (107 bytes).
        let socket = data.join(format!(".s.PGSQL.{}", settings.port));
        if socket.as_os_str().len() > 107 {
            return Err(dir_error(format!(
                "too long a path for the server's socket ({}); choose a shorter directory",
                socket.display()
            )));
        }
        let launch = PgLaunch {
            bin_dir: &bin_dir,
            port: settings.port,
            data: &data,
            run_as,
        };
        let url = launch.url();

        if launch.probe_tcp("postgres").await != Probe::Absent {
            if launch.probe_socket().await == Probe::Absent {
                return Err(LocalPostgresError::PortTaken {
                    port: settings.port,
                    data,
                });
            }
            tracing::warn!(port = settings.port, dir = %dir.display(), "adopting a local PostgreSQL left running by an earlier gateway");
            if !launch.wait_ready(START_LIMIT).await {
                return Err(LocalPostgresError::Start(format!(
                    "the server left running on port {} does not accept connections",
                    settings.port
                )));
            }
            launch.ensure_database().await?;
            return Ok(LocalPostgres {
                child: None,
                pid: launch.postmaster_pid(),
                url,
                dir,
            });
        }

        if run_as.is_some() {
            check_reachable(&dir, &settings.run_as)?;
        }
        if !launch.has_cluster() {
            init_cluster(&launch).await?;
        }
        let log_path = dir.join("postgres.log");
        let mut child = spawn_server(&launch, &log_path)?;
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(LocalPostgresError::Start(format!(
                    "exited with {status}; last log lines: {}",
                    log_tail(&log_path)
                )));
            }
            if launch.reports_ready() && launch.probe_tcp("postgres").await == Probe::Ready {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.start_kill();
                return Err(LocalPostgresError::Start(format!(
                    "no answer on port {} within {} s (log: {})",
                    settings.port,
                    START_LIMIT.as_secs(),
                    log_path.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        launch.ensure_database().await?;
        tracing::info!(port = settings.port, dir = %dir.display(), "started local PostgreSQL (fsync on)");
        Ok(LocalPostgres {
            child: Some(child),
            pid: None,
            url,
            dir,
        })
    }

    /// Asks the server for a fast shutdown (SIGINT: open sessions are ended, committed work is
    /// already on disk). Returns at once; [`Self::wait_stopped`] waits for it.
    pub fn stop(&self) {
        if let Some(pid) = self.pid() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGINT);
        }
    }

    /// Waits for the server to exit after [`Self::stop`], killing it if it has not gone within
    /// 30 s (nothing committed is lost; the next start recovers from the WAL).
    pub async fn wait_stopped(mut self) {
        let pid = self.pid();
        let stopped = match self.child.as_mut() {
            Some(child) => tokio::time::timeout(STOP_LIMIT, child.wait()).await.is_ok(),
            None => match pid {
                Some(pid) => wait_gone(pid, STOP_LIMIT).await,
                None => true,
            },
        };
        if stopped {
            tracing::info!("local PostgreSQL stopped");
            return;
        }
        tracing::warn!("local PostgreSQL did not stop; killing it");
        if let Some(pid) = pid {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        if let Some(child) = self.child.as_mut() {
            let _ = child.wait().await;
        }
    }
}

/// Makes a new cluster in the (empty or missing) data directory.
async fn init_cluster(launch: &PgLaunch<'_>) -> Result<(), LocalPostgresError> {
    let init_error = |message: String| LocalPostgresError::Init {
        data: launch.data.to_path_buf(),
        message,
    };
    launch
        .prepare_data_dir()
        .map_err(|e| init_error(e.to_string()))?;
    let out = Command::from(launch.initdb())
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| init_error(e.to_string()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        return Err(init_error(format!(
            "{}: {}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        )));
    }
    tracing::info!(data = %launch.data.display(), "made a new PostgreSQL cluster");
    Ok(())
}

/// The server as a child writing its log to `log_path`, killed if the handle is dropped.
fn spawn_server(launch: &PgLaunch<'_>, log_path: &Path) -> Result<Child, LocalPostgresError> {
    let open = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
    };
    let log_error = |e: std::io::Error| LocalPostgresError::Dir {
        path: log_path.to_path_buf(),
        message: e.to_string(),
    };
    let mut log = open().map_err(log_error)?;
    let _ = writeln!(log, "-- started by hotline-gateway");
    let err_log = log.try_clone().map_err(log_error)?;
    Command::from(launch.postgres())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err_log)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| LocalPostgresError::Start(e.to_string()))
}

/// The last five lines of the server's log, on one line.
fn log_tail(path: &Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(5).collect();
    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
}

/// Whether the server's user can enter `dir` and every directory above it: each must let
/// others search it (o+x) or belong to that user (a root-only `/root/...` checkout does not).
fn check_reachable(dir: &Path, user: &str) -> Result<(), LocalPostgresError> {
    use std::os::unix::fs::MetadataExt as _;
    let uid = User::from_name(user).ok().flatten().map(|u| u.uid.as_raw());
    for path in dir.ancestors() {
        let Ok(meta) = std::fs::metadata(path) else {
            continue;
        };
        if meta.mode() & 0o001 == 0 && Some(meta.uid()) != uid {
            return Err(LocalPostgresError::Unreachable {
                path: path.to_path_buf(),
                user: user.to_string(),
            });
        }
    }
    Ok(())
}

/// Whether process `pid` still runs: it exists and is not a zombie waiting for its parent (an
/// adopted server's parent is init, which may reap it late).
fn running(pid: i32) -> bool {
    if kill(Pid::from_raw(pid), None).is_err() {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // `pid (comm) state ...`: the state follows the last `)`.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_none_or(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => !Path::new("/proc/self").exists(),
    }
}

/// Waits until the process `pid` has gone, at most `limit`.
async fn wait_gone(pid: i32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while running(pid) {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_each_bad_key_is_named() {
        assert_eq!(LocalPostgresSettings::default().validate().ok(), Some(()));
        let cases = [
            (
                LocalPostgresSettings {
                    port: 0,
                    ..Default::default()
                },
                "archive.local.port",
            ),
            (
                LocalPostgresSettings {
                    dir: PathBuf::new(),
                    ..Default::default()
                },
                "archive.local.dir",
            ),
            (
                LocalPostgresSettings {
                    run_as: "post gres".into(),
                    ..Default::default()
                },
                "archive.local.run_as",
            ),
            (
                LocalPostgresSettings {
                    bin_dir: "/nonexistent/postgresql/bin".into(),
                    ..Default::default()
                },
                "archive.local.bin_dir",
            ),
        ];
        for (settings, key) in cases {
            match settings.validate() {
                Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key),
                other => panic!("{key}: expected an error naming it, got {other:?}"),
            }
        }
    }

    #[test]
    fn settings_read_from_toml_with_defaults_and_no_unknown_keys() {
        let s: LocalPostgresSettings = toml::from_str("port = 7000").expect("parses");
        assert_eq!(s.port, 7000);
        assert_eq!(s.dir, PathBuf::from("var/postgres"));
        assert_eq!(s.run_as, "postgres");
        assert!(toml::from_str::<LocalPostgresSettings>("prot = 7000").is_err());
    }

    #[test]
    fn as_root_a_missing_run_as_user_and_an_unreachable_directory_are_explained() {
        if !Uid::effective().is_root() {
            // Not root: the server runs as us, whatever `run_as` says.
            assert_eq!(
                RunAs::when_root("no-such-user-for-hotline").ok(),
                Some(None)
            );
            return;
        }
        let err = RunAs::when_root("no-such-user-for-hotline").expect_err("no such user");
        let message = err.to_string();
        assert!(message.contains("archive.local.run_as"), "{message}");
        assert!(message.contains("scripts/ensure-postgres.sh"), "{message}");
        assert!(matches!(
            RunAs::when_root("root"),
            Err(LocalPostgresError::NoUser(_))
        ));

        // A private directory: the server's user could not enter it.
        let private = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(private.path(), std::fs::Permissions::from_mode(0o700))
            .expect("chmod");
        let inside = private.path().join("postgres");
        std::fs::create_dir(&inside).expect("mkdir");
        match check_reachable(&inside, "postgres") {
            Err(LocalPostgresError::Unreachable { path, .. }) => {
                assert_eq!(path, private.path())
            }
            other => panic!("expected Unreachable, got {other:?}"),
        }
        std::fs::set_permissions(private.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        assert!(check_reachable(&inside, "postgres").is_ok());
    }

    #[tokio::test]
    async fn missing_binaries_are_reported_with_how_to_install_them() {
        let empty = tempfile::tempdir().expect("tempdir");
        let settings = LocalPostgresSettings {
            bin_dir: empty.path().to_path_buf(),
            port: 1,
            dir: empty.path().join("pg"),
            run_as: "postgres".into(),
        };
        let err = match LocalPostgres::start(&settings).await {
            Err(e) => e,
            Ok(_) => panic!("must fail"),
        };
        assert!(matches!(err, LocalPostgresError::NotInstalled(_)), "{err}");
        let message = err.to_string();
        assert!(message.contains("scripts/ensure-postgres.sh"), "{message}");
        assert!(message.contains("archive.url"), "{message}");
    }
}
