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

use crate::api::{self, AppState};
use crate::auth::Authenticator;
use crate::classify::Classifier;
use crate::config::Settings;
use crate::local_redis::LocalRedis;
use crate::queues::Store;
use crate::routing::Router;
use crate::sla::mover::MoverHandle;
use crate::sla::{Sla, SlaConfig};

/// A gateway ready to serve.
pub struct Application {
    listener: TcpListener,
    state: Arc<AppState>,
    local_redis: Option<LocalRedis>,
}

impl Application {
    /// Loads the lexicon, starts or connects to Redis, checks its safety settings and binds.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        Self::build_with_path(settings, None).await
    }

    /// As [`Application::build`], remembering the `--config` file for reloads.
    pub async fn build_with_path(
        settings: Settings,
        config_path: Option<std::path::PathBuf>,
    ) -> anyhow::Result<Application> {
        let metrics =
            crate::metrics::install().map_err(|e| anyhow::anyhow!("metrics recorder: {e}"))?;
        let classifier = Classifier::load(&settings.classify)
            .with_context(|| format!("classify.lexicon = {:?}", settings.classify.lexicon))?;
        let router = Router::new(&settings.routing, &settings.classify.warning_levels);
        let sla_config = SlaConfig::build(&settings.sla, &settings.classify)?;
        crate::lifecycle::publish_calendar_years(&sla_config);
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
            classifier: std::sync::RwLock::new(Arc::new(classifier)),
            router,
            auth,
            metrics,
            sla: Sla::new(sla_config),
            mover: MoverHandle::default(),
            config_path,
            live,
            callbacks: Arc::new(crate::callbacks::Callbacks::new(
                &settings_callbacks,
                callback_targets,
            )),
        });
        Ok(Application {
            listener,
            state,
            local_redis,
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
        crate::agents::api::bootstrap(&self.state).await;
        let mover = tokio::spawn(crate::sla::mover::run(
            self.state.store.clone(),
            self.state.mover.clone(),
            crate::sla::mover::MoverConfig {
                batch: self.state.settings.sla.mover_batch,
                max_sleep: Duration::from_millis(self.state.settings.sla.mover_max_sleep_ms),
                max_lease_expiries: self.state.settings.agents.max_lease_expiries,
                supervisor_queue: self.state.settings.agents.supervisor_queue.clone(),
                away_after_missed: self.state.settings.agents.away_after_missed,
                offers: crate::agents::offers::OfferConfig::from_settings(
                    &self.state.settings.agents,
                ),
                live: self.state.live.clone(),
            },
            stop_rx.clone(),
        ));
        let deliverer = tokio::spawn(crate::callbacks::run(
            self.state.store.clone(),
            Arc::clone(&self.state.callbacks),
            stop_rx.clone(),
        ));
        let reloader = tokio::spawn(reload_on_sighup(Arc::clone(&self.state), stop_rx));
        let app = api::app(Arc::clone(&self.state));
        let server = serve(
            self.listener,
            app,
            ServeLimits::from_settings(&self.state.settings.http),
            async move {
                shutdown.await;
                tracing::info!("shutting down: no new connections; finishing requests in flight");
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
        let _ = mover.await;
        let _ = deliverer.await;
        reloader.abort();
        if let Some(local) = self.local_redis {
            if let Err(e) = self.state.store.shutdown_server().await {
                tracing::warn!(error = %e, "local redis-server did not accept SHUTDOWN");
            }
            local.wait_stopped().await;
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Connection-level limits against hostile clients, from `[http]`.
#[derive(Debug, Clone, Copy)]
struct ServeLimits {
    header_read_timeout: Duration,
    max_headers: usize,
    max_header_bytes: usize,
}

impl ServeLimits {
    fn from_settings(http: &crate::config::HttpSettings) -> ServeLimits {
        ServeLimits {
            header_read_timeout: Duration::from_secs(http.header_read_timeout_seconds),
            max_headers: http.max_headers,
            max_header_bytes: http.max_header_bytes,
        }
    }
}

/// The accept loop: HTTP/1.1 and h2c on one port, as `axum::serve` did, plus what it cannot
/// set: a header read timeout (slow-loris), and limits on header count and size (431). When
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
    use tower::ServiceExt;

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
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    let builder = Arc::new(builder);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
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
        let watcher = graceful.watcher();
        let service = app
            .clone()
            .map_request(|req: axum::http::Request<hyper::body::Incoming>| {
                req.map(axum::body::Body::new)
            });
        tokio::spawn(async move {
            // hyper's timer starts once it knows the protocol; a client that sends nothing, or
            // dribbles the HTTP/2 preface, is cut off here instead.
            if !request_starts_in_time(&stream, limits.header_read_timeout).await {
                return;
            }
            let service = hyper_util::service::TowerToHyperService::new(service);
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
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

/// Reloads the SLA configuration and holiday files on SIGHUP.
async fn reload_on_sighup(state: Arc<AppState>, mut stop: tokio::sync::watch::Receiver<bool>) {
    #[cfg(unix)]
    {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        loop {
            tokio::select! {
                _ = hup.recv() => match crate::lifecycle::reload(&state).await {
                    Ok(r) => tracing::info!(recomputed = r.recomputed, "reloaded on SIGHUP"),
                    Err(e) => tracing::error!(error = %e, "reload on SIGHUP failed; the old configuration stays"),
                },
                _ = stop.changed() => return,
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (state, stop.changed().await);
    }
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
