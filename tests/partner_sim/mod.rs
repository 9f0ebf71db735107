//! A partner hotline system that receives the gateway's callbacks (事件反馈): it checks every
//! signature, records what arrived in order, and can be told to fail, be slow, or go away and
//! come back on the same port. Used by the callback and fault tests in-process, and by the demo
//! through `load-tests`' `partner-sim` binary (`load-tests/src/bin/partner_sim.rs` includes this
//! file, so there is one simulator).
//!
//! Besides `POST /callbacks` it answers `POST /control/mode` with a plain-text body (`ok`,
//! `fail`, `fail:503`, `slow`, `slow:2500`) so a script can make it fail and recover while it
//! runs. It listens where it is told (loopback in tests and the demo) and never logs the secret.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::sync::broadcast;

/// How far a callback's timestamp may be from the simulator's clock, as the gateway's own
/// default `auth.signature_window_seconds`.
pub const WINDOW_SECONDS: i64 = 300;

/// How long `slow` waits when no time is given.
pub const DEFAULT_SLOW: Duration = Duration::from_secs(3);

/// How the simulated partner answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 200 at once.
    Ok,
    /// This HTTP status at once (e.g. 500 or 503).
    Fail(u16),
    /// 200 after this long.
    Slow(Duration),
}

/// Parses the spelling used by `--mode` and `POST /control/mode`, so both accept the same words.
impl FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Mode, String> {
        let s = s.trim().to_ascii_lowercase();
        let (word, arg) = match s.split_once(':') {
            Some((w, a)) => (w, Some(a.trim())),
            None => (s.as_str(), None),
        };
        let bad = || format!("unknown mode `{s}`: expected ok, fail[:STATUS] or slow[:MS]");
        match (word, arg) {
            ("ok", None) => Ok(Mode::Ok),
            ("fail", None) => Ok(Mode::Fail(500)),
            ("fail", Some(code)) => match code.parse::<u16>() {
                Ok(c) if (100..=599).contains(&c) => Ok(Mode::Fail(c)),
                _ => Err(bad()),
            },
            ("slow", None) => Ok(Mode::Slow(DEFAULT_SLOW)),
            ("slow", Some(ms)) => ms
                .parse::<u64>()
                .map(|ms| Mode::Slow(Duration::from_millis(ms)))
                .map_err(|_| bad()),
            _ => Err(bad()),
        }
    }
}

/// The same spelling back, for logs and the control endpoint's answer.
impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mode::Ok => write!(f, "ok"),
            Mode::Fail(code) => write!(f, "fail:{code}"),
            Mode::Slow(d) => write!(f, "slow:{}", d.as_millis()),
        }
    }
}

/// One callback as received.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The `delivery_id` (idempotency key).
    pub delivery_id: String,
    /// `ticket.accepted`, `ticket.assigned`, …
    pub event: String,
    /// The gateway's ticket id.
    pub ticket_id: String,
    /// The partner's own id.
    pub external_id: String,
    /// Status after the event.
    pub status: Option<String>,
    /// The signature matched the secret and the timestamp was fresh.
    pub signature_ok: bool,
    /// The whole body.
    pub body: serde_json::Value,
    /// The answer the simulator gave (401 for a bad signature, whatever the mode).
    pub answered: u16,
    /// How many times this `delivery_id` has arrived so far, this one included (the gateway
    /// sends no attempt number; retries keep the `delivery_id`).
    pub attempt: u32,
}

struct Shared {
    key_id: String,
    secret: Vec<u8>,
    mode: Mutex<Mode>,
    received: Mutex<Vec<Delivery>>,
    attempts: Mutex<HashMap<String, u32>>,
    /// Every delivery as it arrives, for a printer (the binary); sends fail harmlessly when
    /// nobody listens.
    feed: broadcast::Sender<Delivery>,
}

/// A running simulated partner.
pub struct PartnerSim {
    /// Where the gateway should send callbacks.
    pub url: String,
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

fn verify(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> bool {
    let get = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("");
    let Ok(ts) = get("x-hotline-timestamp").parse::<i64>() else {
        return false;
    };
    let fresh = (chrono::Utc::now().timestamp() - ts).abs() <= WINDOW_SECONDS;
    let Ok(signature) = hex::decode(get("x-hotline-signature")) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&shared.secret) else {
        return false;
    };
    mac.update(ts.to_string().as_bytes());
    mac.update(b"\n");
    mac.update(body);
    fresh && get("x-hotline-key") == shared.key_id && mac.verify_slice(&signature).is_ok()
}

async fn receive(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mode = *shared.mode.lock().unwrap_or_else(|p| p.into_inner());
    let status = match mode {
        Mode::Ok => StatusCode::OK,
        Mode::Fail(code) => StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        Mode::Slow(d) => {
            tokio::time::sleep(d).await;
            StatusCode::OK
        }
    };
    let signature_ok = verify(&shared, &headers, &body);
    let status = if signature_ok {
        status
    } else {
        StatusCode::UNAUTHORIZED
    };
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    let delivery_id = text("delivery_id");
    let attempt = {
        let mut attempts = shared.attempts.lock().unwrap_or_else(|p| p.into_inner());
        let n = attempts.entry(delivery_id.clone()).or_default();
        *n += 1;
        *n
    };
    let delivery = Delivery {
        delivery_id,
        event: text("event"),
        ticket_id: text("ticket_id"),
        external_id: text("external_id"),
        status: v["status"].as_str().map(String::from),
        signature_ok,
        body: v.clone(),
        answered: status.as_u16(),
        attempt,
    };
    shared
        .received
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(delivery.clone());
    let _ = shared.feed.send(delivery);
    status
}

/// `POST /control/mode` with `ok`, `fail[:STATUS]` or `slow[:MS]`: answers the new mode, or 400.
async fn control_mode(State(shared): State<Arc<Shared>>, body: String) -> (StatusCode, String) {
    match body.parse::<Mode>() {
        Ok(mode) => {
            *shared.mode.lock().unwrap_or_else(|p| p.into_inner()) = mode;
            eprintln!("partner-sim: answering {mode} from now on");
            (StatusCode::OK, format!("{mode}\n"))
        }
        Err(e) => (StatusCode::BAD_REQUEST, format!("{e}\n")),
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>) -> tokio::sync::oneshot::Sender<()> {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = Router::new()
        .route("/callbacks", post(receive))
        .route("/control/mode", post(control_mode))
        .with_state(shared);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
    });
    tx
}

impl PartnerSim {
    /// Listens on a free loopback port; callbacks go to `<url>`.
    pub async fn start(key_id: &str, secret: &[u8]) -> PartnerSim {
        Self::start_on("127.0.0.1:0", key_id, secret).await
    }

    /// Listens on `addr` (the demo gives a fixed port).
    pub async fn start_on(addr: &str, key_id: &str, secret: &[u8]) -> PartnerSim {
        Self::try_start_on(addr, key_id, secret, Mode::Ok)
            .await
            .expect("bind the partner simulator")
    }

    /// As [`PartnerSim::start_on`] with a first mode, and an error instead of a panic when the
    /// address cannot be bound (the binary reports it and exits).
    pub async fn try_start_on(
        addr: &str,
        key_id: &str,
        secret: &[u8],
        mode: Mode,
    ) -> std::io::Result<PartnerSim> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (feed, _) = broadcast::channel(1024);
        let shared = Arc::new(Shared {
            key_id: key_id.to_string(),
            secret: secret.to_vec(),
            mode: Mutex::new(mode),
            received: Mutex::new(Vec::new()),
            attempts: Mutex::new(HashMap::new()),
            feed,
        });
        let stop = Some(serve(listener, Arc::clone(&shared)).await);
        Ok(PartnerSim {
            url: format!("http://{addr}/callbacks"),
            addr,
            shared,
            stop,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Changes how it answers from now on.
    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap_or_else(|p| p.into_inner()) = mode;
    }

    /// How it answers now (the control endpoint may have changed it).
    pub fn mode(&self) -> Mode {
        *self.shared.mode.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Everything received so far, in arrival order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared
            .received
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Every delivery from now on, as it arrives (a slow reader misses the oldest, told by
    /// `RecvError::Lagged`; [`PartnerSim::deliveries`] keeps them all).
    pub fn subscribe(&self) -> broadcast::Receiver<Delivery> {
        self.shared.feed.subscribe()
    }

    /// Stops listening: connections are refused, as when the partner's system is down.
    pub fn go_away(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }

    /// Listens again on the same port.
    pub async fn come_back(&mut self) {
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot listen on {} again: {e}", self.addr),
            }
        };
        self.stop = Some(serve(listener, Arc::clone(&self.shared)).await);
    }
}

impl Drop for PartnerSim {
    fn drop(&mut self) {
        self.go_away();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_print_the_same_words() {
        for (text, mode) in [
            ("ok", Mode::Ok),
            ("fail", Mode::Fail(500)),
            ("FAIL:503", Mode::Fail(503)),
            ("slow", Mode::Slow(DEFAULT_SLOW)),
            (" slow:250\n", Mode::Slow(Duration::from_millis(250))),
        ] {
            assert_eq!(text.parse::<Mode>(), Ok(mode), "{text}");
            assert_eq!(mode.to_string().parse::<Mode>(), Ok(mode));
        }
        for bad in ["", "down", "fail:99", "fail:x", "slow:-1", "ok:1"] {
            assert!(bad.parse::<Mode>().is_err(), "{bad}");
        }
    }
}
