//! Start-up and shutdown: builds every part from validated settings, binds the listener,
//! serves until SIGTERM or Ctrl-C, lets in-flight requests finish within the grace period, and
//! stops the local Redis if the gateway started it.
//!
//! `Application::build` binds before it returns, so tests bind port 0 and read the real port.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::api;
use crate::auth::Authenticator;
use crate::classify::Classifier;
use crate::config::Settings;
use crate::local_redis::LocalRedis;
use crate::queues::Store;
use crate::routing::Router;
use crate::sla::Sla;
use crate::sla::mover::MoverHandle;
use crate::state::AppState;

/// A gateway ready to serve.
pub struct Application {
    listener: TcpListener,
    state: Arc<AppState>,
    local_redis: Option<LocalRedis>,
    local_postgres: Option<crate::local_postgres::LocalPostgres>,
}

impl Application {
    /// Loads the lexicon, starts or connects to Redis, checks its safety settings and binds.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        Self::build_with_path(settings, None).await
    }

    /// As [`Application::build`], remembering the `--config` file for reloads.
    pub async fn build_with_path(
        mut settings: Settings,
        config_path: Option<std::path::PathBuf>,
    ) -> anyhow::Result<Application> {
        let metrics =
            crate::metrics::install().map_err(|e| anyhow::anyhow!("metrics recorder: {e}"))?;
        let classifier = Classifier::load(&settings.classify)
            .with_context(|| format!("classify.lexicon = {:?}", settings.classify.lexicon))?;
        let router = Router::new(&settings.routing, &settings.classify.warning_levels);
        let sla_config = settings.take_sla_config()?;
        crate::reload::publish_calendar_years(&sla_config);
        let auth = Authenticator::from_settings(&settings.auth)?;
        if auth.is_empty() {
            tracing::warn!(
                "no [[auth.tokens]] or [[auth.partners]] configured: every API call will get 401"
            );
        }

        let local_redis = if settings.wants_local_redis() {
            Some(LocalRedis::start(&settings.redis.local).await?)
        } else {
            None
        };
        let url = match (&local_redis, &settings.redis.url) {
            (Some(local), _) => local.url().to_string(),
            (None, Some(url)) => url.clone(),
            (None, None) => anyhow::bail!("redis.url is not set and no local Redis was started"),
        };
        let store = Store::connect(
            &url,
            Duration::from_millis(settings.redis.connect_timeout_ms),
            Duration::from_millis(settings.redis.response_timeout_ms),
            settings.redis.stream_maxlen,
            settings.intake.idempotency_ttl_days * 86_400,
        )
        .context("redis.url")?;
        check_server(&store).await;
        let local_postgres = if settings.archive.wants_local() {
            Some(crate::local_postgres::LocalPostgres::start(&settings.archive.local).await?)
        } else {
            None
        };
        let archive = Arc::new(connect_archive(&settings, local_postgres.as_ref()).await?);

        let listener = TcpListener::bind(&settings.http.listen)
            .await
            .with_context(|| format!("http.listen = {}", settings.http.listen))?;
        tracing::info!(
            listen = %listener.local_addr()?,
            model = classifier.model(),
            callers = auth.len(),
            partners = auth.partner_count(),
            "gateway ready"
        );
        let settings_callbacks = settings.callbacks.clone();
        let callback_targets = crate::callbacks::Callbacks::targets_from(&settings.auth)?;
        let live = crate::live::LiveConfig::from_settings(&settings.live)
            .map_err(|(key, message)| anyhow::anyhow!("{key}: {message}"))?;
        let state = Arc::new(AppState {
            settings,
            store,
            archive: Arc::clone(&archive),
            classifier: std::sync::RwLock::new(Arc::new(classifier)),
            router,
            auth,
            metrics,
            sla: Sla::new(sla_config),
            mover: MoverHandle::default(),
            config_path,
            live,
            closing: tokio::sync::watch::channel(false).0,
            reloading: Default::default(),
            recompute: Default::default(),
            callbacks: Arc::new(
                crate::callbacks::Callbacks::new(&settings_callbacks, callback_targets)
                    .with_archive(Arc::clone(&archive)),
            ),
            redis_snapshot: crate::metrics::RedisSnapshot::default(),
        });
        Ok(Application {
            listener,
            state,
            local_redis,
            local_postgres,
        })
    }

    /// The bound port (useful when `http.listen` asked for port 0).
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves until `shutdown` resolves, then drains in-flight requests for at most
    /// `http.shutdown_grace_seconds`, then stops the local Redis if it is ours.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let grace = Duration::from_secs(self.state.settings.http.shutdown_grace_seconds);
        let (tx, mut rx) = tokio::sync::watch::channel(false);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        crate::api::agents::bootstrap(&self.state).await;
        let jobs = crate::jobs::start(&self.state, &stop_rx);
        let app = crate::router::app(Arc::clone(&self.state));
        let closing = Arc::clone(&self.state);
        let server = serve(
            self.listener,
            app,
            ServeLimits::from_settings(&self.state.settings.http),
            async move {
                shutdown.await;
                tracing::info!(
                    "shutting down: not ready, event streams ending, no new connections; finishing requests in flight"
                );
                // Readiness fails first and open event streams end, so their clients reconnect
                // elsewhere instead of holding this gateway for its whole grace period.
                closing.closing.send_replace(true);
                let _ = tx.send(true);
            },
        );
        let deadline = async move {
            let _ = rx.changed().await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            () = server => {},
            _ = deadline => tracing::warn!(grace_seconds = grace.as_secs(), "grace period over; abandoning open connections"),
        }
        let _ = stop_tx.send(true);
        jobs.stopped().await;
        if let Some(local) = self.local_redis {
            if let Err(e) = self.state.store.shutdown_server().await {
                tracing::warn!(error = %e, "local redis-server did not accept SHUTDOWN");
            }
            local.wait_stopped().await;
        }
        if let Some(local) = self.local_postgres {
            local.stop();
            local.wait_stopped().await;
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// The case archive: the configured PostgreSQL, its schema brought up to date. A PostgreSQL
/// that does not answer at start-up is not fatal: tickets wait in Redis and the archive is
/// migrated and used once it answers (`hotline_archive_up` says so meanwhile).
async fn connect_archive(
    settings: &Settings,
    local: Option<&crate::local_postgres::LocalPostgres>,
) -> anyhow::Result<crate::archive::Archive> {
    let url = match (local, &settings.archive.url) {
        (Some(local), _) => crate::archive::DatabaseUrl::new(local.url()),
        (None, Some(url)) => url.clone(),
        (None, None) => {
            anyhow::bail!("archive.url is not set and no local PostgreSQL was started")
        }
    };
    let url = &url;
    let archive = crate::archive::Archive::new(url, &settings.archive).context("archive.url")?;
    match archive.migrate().await {
        Ok(()) => {
            crate::metrics::archive_up(true);
            tracing::info!(archive = %url.redacted(), "case archive ready");
        }
        Err(crate::archive::ArchiveError::Unavailable(e)) => {
            crate::metrics::archive_up(false);
            tracing::warn!(archive = %url.redacted(), error = %e, "case archive unreachable: ended tickets stay in Redis until it answers");
        }
        Err(e) => return Err(anyhow::anyhow!(e).context("archive.url: migrating the schema")),
    }
    Ok(archive)
}

/// Connection-level limits against hostile clients, from `[http]`.
#[derive(Debug, Clone, Copy)]
struct ServeLimits {
    header_read_timeout: Duration,
    max_headers: usize,
    max_header_bytes: usize,
    idle_timeout: Duration,
    body_read_timeout: Duration,
    h2_keep_alive_interval: Duration,
    h2_keep_alive_timeout: Duration,
    h2_max_concurrent_streams: u32,
    h2_max_pending_reset_streams: usize,
    h2_max_local_error_reset_streams: usize,
}

impl ServeLimits {
    fn from_settings(http: &crate::config::HttpSettings) -> ServeLimits {
        ServeLimits {
            header_read_timeout: Duration::from_secs(http.header_read_timeout_seconds),
            max_headers: http.max_headers,
            max_header_bytes: http.max_header_bytes,
            idle_timeout: Duration::from_secs(http.idle_timeout_seconds),
            body_read_timeout: Duration::from_secs(http.body_read_timeout_seconds),
            h2_keep_alive_interval: Duration::from_secs(http.h2_keep_alive_interval_seconds),
            h2_keep_alive_timeout: Duration::from_secs(http.h2_keep_alive_timeout_seconds),
            h2_max_concurrent_streams: http.h2_max_concurrent_streams,
            h2_max_pending_reset_streams: http.h2_max_pending_reset_streams,
            h2_max_local_error_reset_streams: http.h2_max_local_error_reset_streams,
        }
    }
}

/// The accept loop: HTTP/1.1 and h2c on one port, as `axum::serve` did, plus what it cannot
/// set: a header read timeout (slow-loris), limits on header count and size (431), HTTP/2
/// keep-alive pings and stream and reset limits, a deadline for request bodies, and an idle
/// timeout for connections with no request in progress (what hyper lacks for HTTP/2). When
/// `shutdown` resolves it stops accepting, asks every connection to finish its requests in
/// flight and close, and returns once all have (the caller bounds that by the grace period).
async fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;

    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(limits.max_headers)
        .max_buf_size(limits.max_header_bytes);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(limits.h2_keep_alive_interval)
        .keep_alive_timeout(limits.h2_keep_alive_timeout)
        .max_concurrent_streams(limits.h2_max_concurrent_streams)
        .max_pending_accept_reset_streams(limits.h2_max_pending_reset_streams)
        .max_local_error_reset_streams(limits.h2_max_local_error_reset_streams);
    let builder = Arc::new(builder);
    // Every connection task holds a receiver; `closed()` below resolves once all are gone.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let builder = Arc::clone(&builder);
        let app = app.clone();
        let stop = stop_rx.clone();
        tokio::spawn(async move {
            // hyper's timer starts once it knows the protocol; a client that sends nothing, or
            // dribbles the HTTP/2 preface, is cut off here instead.
            if !request_starts_in_time(&stream, limits.header_read_timeout).await {
                return;
            }
            let activity = Arc::new(tokio::sync::watch::Sender::new(Activity::default()));
            let service = tracked_service(app, Arc::clone(&activity), limits.body_read_timeout);
            let conn = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned();
            drive(
                conn,
                |c| c.graceful_shutdown(),
                activity.subscribe(),
                stop,
                limits,
            )
            .await;
        });
    }
    drop(listener);
    drop(stop_rx);
    stop_tx.send_replace(true);
    stop_tx.closed().await;
}

/// What is going on on one connection: requests whose response has not finished (a streaming
/// response, `/v1/events`, counts until it ends), and how many requests it has had.
#[derive(Debug, Clone, Copy, Default)]
struct Activity {
    in_flight: usize,
    started: u64,
}

/// One request in progress; dropped when its response body has been sent (or abandoned).
struct InFlight(Arc<tokio::sync::watch::Sender<Activity>>);

impl InFlight {
    fn enter(activity: &Arc<tokio::sync::watch::Sender<Activity>>) -> InFlight {
        activity.send_modify(|a| {
            a.in_flight += 1;
            a.started += 1;
        });
        InFlight(Arc::clone(activity))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0
            .send_modify(|a| a.in_flight = a.in_flight.saturating_sub(1));
    }
}

/// A response body that keeps its request counted as in progress until it is finished or
/// dropped.
struct TrackedBody {
    inner: axum::body::Body,
    _in_flight: InFlight,
}

impl hyper::body::Body for TrackedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// The app as hyper calls it on one connection: each request's body gets its deadline, and each
/// request counts as in progress on the connection from its headers to the end of its response.
fn tracked_service(
    app: axum::Router,
    activity: Arc<tokio::sync::watch::Sender<Activity>>,
    body_read_timeout: Duration,
) -> hyper_util::service::TowerToHyperService<
    impl tower::Service<
        axum::http::Request<hyper::body::Incoming>,
        Response = axum::http::Response<axum::body::Body>,
        Error = std::convert::Infallible,
        Future = impl Future + Send,
    > + Clone,
> {
    use tower::ServiceExt;
    let service = tower::service_fn(move |req: axum::http::Request<hyper::body::Incoming>| {
        let in_flight = InFlight::enter(&activity);
        let req = api::body::with_deadline(req, body_read_timeout);
        let response = app.clone().oneshot(req);
        async move {
            let response = response.await?;
            Ok(response.map(|inner| {
                axum::body::Body::new(TrackedBody {
                    inner,
                    _in_flight: in_flight,
                })
            }))
        }
    });
    hyper_util::service::TowerToHyperService::new(service)
}

/// Serves one connection to its end. With no request in progress it is closed after
/// `idle_timeout` (after `header_read_timeout` if it has had no request at all): gracefully (an
/// HTTP/2 GOAWAY), then for good if the client has not let it end within `header_read_timeout`
/// (a stalled client never acknowledges the GOAWAY's ping). On shutdown it is asked to finish
/// what is in progress and close.
/// `close_gracefully` is the connection's `graceful_shutdown` (hyper-util's `GracefulConnection`
/// trait is sealed): HTTP/1.1 closes after the response in progress, HTTP/2 sends GOAWAY and
/// finishes its open streams.
async fn drive<C, E>(
    conn: C,
    close_gracefully: impl Fn(std::pin::Pin<&mut C>),
    mut activity: tokio::sync::watch::Receiver<Activity>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    limits: ServeLimits,
) where
    C: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut conn = std::pin::pin!(conn);
    let idle = idle(&mut activity, limits);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            return;
        }
        reason = idle => {
            crate::metrics::idle_connection_closed(reason);
            tracing::debug!(reason, "closing a connection without requests");
            close_gracefully(conn.as_mut());
            let _ = tokio::time::timeout(limits.header_read_timeout, conn.as_mut()).await;
            return;
        }
        () = async {
            // (the guard `wait_for` returns must not live across an await: it is not Send)
            let _ = stop.wait_for(|stopping| *stopping).await.is_ok();
        } => {}
    }
    close_gracefully(conn.as_mut());
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// Resolves once the connection has had no request in progress for its idle limit; the reason
/// is `no_request` for a connection that never started one, else `idle`.
async fn idle(
    activity: &mut tokio::sync::watch::Receiver<Activity>,
    limits: ServeLimits,
) -> &'static str {
    loop {
        if activity.wait_for(|a| a.in_flight == 0).await.is_err() {
            // The service is gone: nothing will start a request any more.
            return "idle";
        }
        let (limit, reason) = if activity.borrow().started == 0 {
            (limits.header_read_timeout, "no_request")
        } else {
            (limits.idle_timeout, "idle")
        };
        tokio::select! {
            () = tokio::time::sleep(limit) => return reason,
            changed = activity.changed() => {
                if changed.is_err() {
                    return "idle";
                }
            }
        }
    }
}

/// Waits until the client has sent enough to tell HTTP/1.1 from HTTP/2 (the first byte that
/// differs from the HTTP/2 preface, or the whole preface), within `limit`.
async fn request_starts_in_time(stream: &tokio::net::TcpStream, limit: Duration) -> bool {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let wait = async {
        let mut buf = [0u8; 24];
        loop {
            match stream.peek(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) if n >= PREFACE.len() || buf[..n] != PREFACE[..n] => return true,
                // A prefix of the preface so far: look again shortly.
                Ok(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    };
    tokio::time::timeout(limit, wait).await.unwrap_or(false)
}

/// Warns when the Redis settings could lose acknowledged tickets.
async fn check_server(store: &Store) {
    match store.server_report().await {
        Ok(report) => {
            if report.maxmemory_policy != "noeviction" {
                tracing::warn!(
                    policy = %report.maxmemory_policy,
                    "Redis maxmemory-policy is not noeviction: under memory pressure Redis may delete tickets; set `maxmemory-policy noeviction`"
                );
            }
            if !report.aof && report.save.trim().is_empty() {
                tracing::warn!(
                    "Redis persistence is off (no AOF, no RDB save): a Redis restart loses every ticket; set `appendonly yes`"
                );
            } else if !report.aof {
                tracing::warn!(
                    "Redis AOF is off: a crash loses tickets acknowledged since the last RDB snapshot; set `appendonly yes`"
                );
            } else if report.appendfsync != "always" {
                tracing::warn!(
                    appendfsync = %report.appendfsync,
                    "Redis may answer before writing its AOF: a Redis crash can lose tickets acknowledged in the last seconds; set `appendfsync always` for no loss"
                );
            }
            tracing::info!(version = %report.version, aof = report.aof, "connected to Redis");
        }
        Err(e) => {
            tracing::warn!(error = %e, "Redis is not reachable yet; requests get 503 until it is")
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
