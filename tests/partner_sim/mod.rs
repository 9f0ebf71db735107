//! A partner hotline system that receives the gateway's callbacks (事件反馈): it checks every
//! signature, records what arrived in order, and can be told to fail, be slow, or go away and
//! come back on the same port. Used by the callback tests in-process and by the demo through
//! `load-tests`' `partner-sim` binary.
#![allow(dead_code)]

use std::net::SocketAddr;
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
    /// The answer the simulator gave.
    pub answered: u16,
}

struct Shared {
    key_id: String,
    secret: Vec<u8>,
    mode: Mutex<Mode>,
    received: Mutex<Vec<Delivery>>,
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
    let fresh = (chrono::Utc::now().timestamp() - ts).abs() <= 300;
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
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    shared
        .received
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(Delivery {
            delivery_id: text("delivery_id"),
            event: text("event"),
            ticket_id: text("ticket_id"),
            external_id: text("external_id"),
            status: v["status"].as_str().map(String::from),
            signature_ok,
            body: v.clone(),
            answered: status.as_u16(),
        });
    if signature_ok {
        status
    } else {
        StatusCode::UNAUTHORIZED
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>) -> tokio::sync::oneshot::Sender<()> {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = Router::new()
        .route("/callbacks", post(receive))
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
        let listener = TcpListener::bind(addr)
            .await
            .expect("bind the partner simulator");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            key_id: key_id.to_string(),
            secret: secret.to_vec(),
            mode: Mutex::new(Mode::Ok),
            received: Mutex::new(Vec::new()),
        });
        let stop = Some(serve(listener, Arc::clone(&shared)).await);
        PartnerSim {
            url: format!("http://{addr}/callbacks"),
            addr,
            shared,
            stop,
        }
    }

    /// Changes how it answers from now on.
    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap_or_else(|p| p.into_inner()) = mode;
    }

    /// Everything received so far, in arrival order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared
            .received
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
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
