//! The `steady` scenario: realistic single-ticket traffic through the gateway's HTTP API, from
//! the three hotlines, with a share of faithful retries, closed-loop or open-loop.
//!
//! Against gateways started elsewhere ([`Target`] with several bases and failover), it behaves
//! as a partner hotline system does: it signs every attempt (v2: method, path, timestamp, a
//! nonce of the attempt's own and the body) at the time it is sent, and when a gateway does not
//! answer it sends the same ticket (same idempotency key) to the next one until it is
//! acknowledged. Intake is idempotent by the partner's `(source, external_id)`, so a retry finds
//! the ticket an unanswered attempt registered.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use tokio::sync::{Semaphore, mpsc};

use crate::harness::PARTNER_TOKEN;
use crate::signing::{self, Signer};
use crate::stats::Recorder;
use crate::texts;
use crate::verify::{Ack, Unanswered};

/// Share of requests that repeat an earlier acknowledged (source, external_id) unchanged.
const RETRY_SHARE: f64 = 0.10;
/// Most earlier tickets kept as retry candidates; older ones are replaced at random.
const RETRY_POOL: usize = 50_000;
/// Most requests in flight in open-loop mode; beyond it a send is counted as `client_saturated`
/// rather than queued, so the generator never hides the gateway's slowness in its own queue.
const OPEN_LOOP_MAX_IN_FLIGHT: usize = 4096;

/// How the load is offered.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// C workers, each sending its next request when the previous one is answered.
    Closed {
        /// Workers.
        concurrency: usize,
    },
    /// Requests start on a fixed schedule whatever the answers; latency counts from the
    /// scheduled time, so a slow gateway cannot hide behind a slow generator.
    Open {
        /// Requests per second.
        rate: f64,
    },
}

/// What the requests carry.
#[derive(Clone, Copy, Debug)]
pub enum Mix {
    /// The hotline mix of `steady` (and `peak`, `work`): three sources, six counties, 10 %
    /// faithful retries.
    Hotline,
    /// `burst`: one county, `raised_share` of the tickets written to be raised (threat and group
    /// words, crowds of 20+), no retries, so every request is one distinct ticket. The external
    /// id carries `-R` or `-N` after the run id, so the check afterwards knows which were meant
    /// to be raised.
    County {
        /// The county code, one of `texts::COUNTIES`.
        county: &'static str,
        /// Share of tickets written to be raised, 0 to 1.
        raised_share: f64,
    },
}

/// Settings of one steady run.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Open or closed loop.
    pub mode: Mode,
    /// What is sent.
    pub mix: Mix,
    /// How long new requests are started.
    pub duration: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Most requests whatever the time.
    pub max_requests: u64,
}

/// How requests say who sends them.
#[derive(Clone, Debug)]
pub enum Auth {
    /// `Authorization: Bearer` with this token (the generator's own gateways).
    Bearer(String),
    /// Signed as a partner (`x-hotline-key`, `-timestamp`, `-signature`).
    Signed(Signer),
}

/// Where requests go and how they are authenticated.
#[derive(Clone, Debug)]
pub struct Target {
    /// `http://host:port` of each gateway; request `n` goes first to `bases[n % len]`.
    pub bases: Vec<String>,
    /// Bearer token or signature.
    pub auth: Auth,
    /// `Some(limit)`: a request without a definite answer (no connection, timeout, 5xx, 429, or
    /// a 401 for a replayed signature, which only a gateway without intake's replay exemption
    /// sends) is sent again, signed anew, to the next base, until it is answered or `limit` has
    /// passed since it was scheduled. `None`: one attempt, as the generator's own single-gateway
    /// scenarios measure.
    pub failover: Option<Duration>,
}

impl Target {
    /// One gateway started by the generator, its bearer token, no failover.
    pub fn single(base: &str) -> Target {
        Target {
            bases: vec![base.to_string()],
            auth: Auth::Bearer(PARTNER_TOKEN.to_string()),
            failover: None,
        }
    }
}

/// Pause between two attempts at the same request, so a dead gateway is not hammered.
const FAILOVER_PAUSE: Duration = Duration::from_millis(20);

/// A body already sent and acknowledged, to be sent again unchanged.
#[derive(Clone)]
struct Sent {
    /// Source.
    source: &'static str,
    /// External id.
    external_id: String,
    /// County, for the verification of unanswered requests.
    county: &'static str,
    /// The exact bytes sent the first time.
    body: Arc<Vec<u8>>,
    /// The id the first request got.
    id: String,
}

/// One request to make.
enum Job {
    /// A ticket never sent before.
    New {
        /// Source.
        source: &'static str,
        /// External id.
        external_id: String,
        /// County.
        county: &'static str,
        /// JSON body.
        body: Arc<Vec<u8>>,
    },
    /// A faithful retry: expect 200 and the same id.
    Retry(Sent),
}

/// The receipt fields the generator checks.
#[derive(Deserialize)]
struct Receipt {
    /// Ticket id.
    id: String,
    /// Queue, absent when sent back.
    queue: Option<String>,
}

/// The result of one request.
struct Sample {
    /// From the (scheduled) start to the end of the answer.
    latency: Duration,
    /// `Ok` or the error kind.
    outcome: Result<(), String>,
    /// Whether this was a retry, and whether it got the same ticket back.
    retry: Option<bool>,
    /// A new ticket acknowledged.
    ack: Option<Ack>,
    /// A request without a definite answer.
    unanswered: Option<Unanswered>,
    /// Attempts beyond the first (failover), and why each earlier attempt failed.
    failed_attempts: Vec<String>,
}

/// Everything the workers share.
struct Ctx {
    /// HTTP client (keep-alive pool).
    http: reqwest::Client,
    /// `<base>/v1/tickets` for each target.
    urls: Vec<String>,
    /// Bearer or signed.
    auth: Auth,
    /// Retry on the next target for at most this long.
    failover: Option<Duration>,
    /// Distinguishes this run's external ids.
    run: String,
    /// Requests started so far.
    issued: AtomicU64,
    /// Retry candidates.
    pool: Mutex<Vec<Sent>>,
    /// What is sent.
    mix: Mix,
}

impl Ctx {
    /// The next request: a retry one time in ten when there is something to retry.
    fn job(&self, rng: &mut StdRng, n: u64) -> Result<Job> {
        if matches!(self.mix, Mix::Hotline) && rng.random_bool(RETRY_SHARE) {
            let pool = self
                .pool
                .lock()
                .map_err(|_| anyhow::anyhow!("retry pool poisoned"))?;
            if !pool.is_empty() {
                // Even within the second of the original (the same signature), a signed retry of
                // intake is answered like any retry: 200 and the same ticket.
                return Ok(Job::Retry(pool[rng.random_range(0..pool.len())].clone()));
            }
        }
        let source = texts::pick_source(rng);
        let prefix = match source {
            "110" => "JJ",
            "12348" => "FL",
            _ => "RX",
        };
        let request = match self.mix {
            Mix::Hotline => {
                let external_id = format!("{prefix}{}-{n:09}", self.run);
                texts::ticket_request(rng, source, &external_id)
            }
            Mix::County {
                county,
                raised_share,
            } => {
                let raised = rng.random_bool(raised_share.clamp(0.0, 1.0));
                let mark = if raised { 'R' } else { 'N' };
                let external_id = format!("{prefix}{}-{mark}{n:09}", self.run);
                texts::county_request(rng, source, &external_id, county, raised)
            }
        };
        let external_id = request["external_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let county = request["region"]["code"]
            .as_str()
            .and_then(|c| texts::COUNTIES.iter().find(|(k, _, _)| *k == c))
            .map(|(k, _, _)| *k)
            .unwrap_or(texts::COUNTIES[0].0);
        Ok(Job::New {
            source,
            external_id,
            county,
            body: Arc::new(serde_json::to_vec(&request)?),
        })
    }

    /// Remembers an acknowledged ticket as a retry candidate (bounded pool).
    fn remember(&self, sent: Sent, rng: &mut StdRng) {
        if let Ok(mut pool) = self.pool.lock() {
            if pool.len() < RETRY_POOL {
                pool.push(sent);
            } else {
                let i = rng.random_range(0..pool.len());
                pool[i] = sent;
            }
        }
    }

    /// Builds one attempt: the body to `urls[n + attempt]`, with a bearer token or signed at
    /// `ts`.
    fn request(
        &self,
        n: u64,
        attempt: u32,
        body: &Arc<Vec<u8>>,
        ts: i64,
    ) -> reqwest::RequestBuilder {
        let url = &self.urls[((n + u64::from(attempt)) % self.urls.len() as u64) as usize];
        let path = url
            .find("://")
            .and_then(|s| url[s + 3..].find('/').map(|p| &url[s + 3 + p..]))
            .unwrap_or("/");
        let req = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.as_ref().clone());
        match &self.auth {
            Auth::Bearer(token) => req.bearer_auth(token),
            Auth::Signed(signer) => {
                // A fresh nonce per attempt: a retry is a new signature (never a replay).
                let nonce = format!("{n}-{attempt}-{:x}", rand::random::<u64>());
                req.header(signing::KEY_HEADER, &signer.key_id)
                    .header(signing::TIMESTAMP_HEADER, ts.to_string())
                    .header(signing::NONCE_HEADER, &nonce)
                    .header(signing::VERSION_HEADER, "2")
                    .header(
                        signing::SIGNATURE_HEADER,
                        signer.sign_request("POST", path, ts, &nonce, body),
                    )
            }
        }
    }

    /// Sends one request (and, with failover, its retries on the other targets) and judges the
    /// answer; latency counts from `start`, the scheduled time.
    async fn execute(&self, job: Job, n: u64, start: Instant, rng: &mut StdRng) -> Sample {
        let (source, external_id, county, body, expect) = match &job {
            Job::New {
                source,
                external_id,
                county,
                body,
            } => (
                *source,
                external_id.clone(),
                *county,
                Arc::clone(body),
                None,
            ),
            Job::Retry(s) => (
                s.source,
                s.external_id.clone(),
                s.county,
                Arc::clone(&s.body),
                Some(s.id.clone()),
            ),
        };
        let mut sample = Sample {
            latency: Duration::ZERO,
            outcome: Ok(()),
            retry: expect.as_ref().map(|_| false),
            ack: None,
            unanswered: None,
            failed_attempts: Vec::new(),
        };
        let unanswered = || Unanswered {
            source,
            external_id: external_id.clone(),
            county,
        };
        let signed = matches!(self.auth, Auth::Signed(_));
        // An earlier attempt may have been registered without its answer reaching us: then a
        // new ticket's acknowledgement is a 200 with the same id, not a 201.
        let mut maybe_registered = false;
        let mut attempt: u32 = 0;
        let (status, receipt) = loop {
            let ts = if signed { signing::now_seconds() } else { 0 };
            let sent = self.request(n, attempt, &body, ts).send().await;
            let failure = match sent {
                Ok(r) => match r.status().as_u16() {
                    status @ (200 | 201) => match r.json::<Receipt>().await {
                        Ok(receipt) => break (status, Some(receipt)),
                        Err(e) => (transport_kind(&e), true),
                    },
                    s if s >= 500 || s == 429 => (format!("http_{s}"), s >= 500),
                    // Only a replayed signature is worth signing again (a gateway that refuses a
                    // repeated intake signature; this one does not); a wrong key or secret is
                    // final.
                    401 if signed && r.text().await.is_ok_and(|t| t.contains("replayed")) => {
                        ("http_401_replayed".to_string(), false)
                    }
                    s => break (s, None),
                },
                Err(e) => (transport_kind(&e), true),
            };
            let (kind, in_doubt) = failure;
            maybe_registered |= in_doubt;
            let retry_left = self
                .failover
                .is_some_and(|limit| start.elapsed() + FAILOVER_PAUSE < limit);
            if !retry_left {
                sample.latency = start.elapsed();
                if in_doubt || maybe_registered {
                    sample.unanswered = Some(unanswered());
                }
                sample.outcome = Err(kind);
                return sample;
            }
            sample.failed_attempts.push(kind);
            attempt += 1;
            tokio::time::sleep(FAILOVER_PAUSE).await;
        };
        sample.latency = start.elapsed();
        let Some(receipt) = receipt else {
            sample.outcome = Err(format!("http_{status}"));
            return sample;
        };
        let ack = Ack {
            source,
            external_id: external_id.clone(),
            id: receipt.id.clone(),
            queue: receipt.queue,
        };
        match (status, expect) {
            // 200: registered by an attempt whose answer was lost (a gateway killed
            // mid-request): the retry on another gateway got it back, as a partner's would.
            (201, None) | (200, None) if status == 201 || maybe_registered => {
                self.remember(
                    Sent {
                        source,
                        external_id,
                        county,
                        body,
                        id: receipt.id,
                    },
                    rng,
                );
                sample.ack = Some(ack);
            }
            (200, Some(id)) if id == receipt.id => sample.retry = Some(true),
            (200, Some(_)) => sample.outcome = Err("retry_id_mismatch".into()),
            // A retry registered anew: a duplicate; keep it so the verification counts it.
            (201, Some(_)) => {
                sample.outcome = Err("retry_created_new_ticket".into());
                sample.ack = Some(ack);
            }
            (_, None) => sample.outcome = Err("new_ticket_got_200".into()),
            (s, Some(_)) => sample.outcome = Err(format!("retry_http_{s}")),
        }
        sample
    }
}

/// Kind of a transport-level failure.
fn transport_kind(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else if e.is_decode() || e.is_body() {
        "bad_body".into()
    } else {
        "transport".into()
    }
}

/// What a steady run measured.
pub struct Measured {
    /// Latencies, successes, errors.
    pub recorder: Recorder,
    /// New tickets acknowledged.
    pub acks: Vec<Ack>,
    /// Requests without a definite answer.
    pub unanswered: Vec<Unanswered>,
    /// Retries sent.
    pub retries: u64,
    /// Retries answered 200 with the same id.
    pub retries_ok: u64,
    /// Requests that needed more than one attempt (failover).
    pub failed_over: u64,
    /// Why attempts failed before a later one was answered, by kind.
    pub failed_attempts: BTreeMap<String, u64>,
    /// Requests started.
    pub requests: u64,
    /// From the first request to the last answer.
    pub wall: Duration,
}

/// Folds samples into a recorder and lists.
struct Sink {
    /// Latencies, successes, errors.
    rec: Recorder,
    /// New tickets.
    acks: Vec<Ack>,
    /// No definite answer.
    unanswered: Vec<Unanswered>,
    /// Retries sent.
    retries: u64,
    /// Retries that got the same ticket.
    retries_ok: u64,
    /// Requests that needed more than one attempt.
    failed_over: u64,
    /// Failed attempts by kind.
    failed_attempts: BTreeMap<String, u64>,
}

impl Sink {
    /// An empty sink.
    fn new() -> Result<Sink> {
        Ok(Sink {
            rec: Recorder::new()?,
            acks: Vec::new(),
            unanswered: Vec::new(),
            retries: 0,
            retries_ok: 0,
            failed_over: 0,
            failed_attempts: BTreeMap::new(),
        })
    }

    /// Adds one sample.
    fn add(&mut self, s: Sample) {
        self.rec.latency(s.latency);
        match s.outcome {
            Ok(()) => self.rec.successes += 1,
            Err(kind) => self.rec.error(kind),
        }
        if let Some(ok) = s.retry {
            self.retries += 1;
            self.retries_ok += u64::from(ok);
        }
        self.acks.extend(s.ack);
        self.unanswered.extend(s.unanswered);
        self.failed_over += u64::from(!s.failed_attempts.is_empty());
        for kind in s.failed_attempts {
            *self.failed_attempts.entry(kind).or_default() += 1;
        }
    }

    /// Adds another sink.
    fn merge(&mut self, o: Sink) -> Result<()> {
        self.rec.merge(&o.rec)?;
        self.acks.extend(o.acks);
        self.unanswered.extend(o.unanswered);
        self.retries += o.retries;
        self.retries_ok += o.retries_ok;
        self.failed_over += o.failed_over;
        for (kind, n) in o.failed_attempts {
            *self.failed_attempts.entry(kind).or_default() += n;
        }
        Ok(())
    }
}

/// Runs the scenario against the gateway at `base`, which the generator started.
pub async fn run(base: &str, run_id: &str, settings: Settings) -> Result<Measured> {
    run_on(Target::single(base), run_id, settings).await
}

/// Runs the scenario against `target`'s gateways, with its authentication and failover.
pub async fn run_on(target: Target, run_id: &str, settings: Settings) -> Result<Measured> {
    if target.bases.is_empty() {
        anyhow::bail!("no gateway to send to");
    }
    let pool_size = match settings.mode {
        Mode::Closed { concurrency } => concurrency,
        Mode::Open { .. } => OPEN_LOOP_MAX_IN_FLIGHT,
    };
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(settings.timeout)
        .connect_timeout(Duration::from_secs(2))
        .pool_max_idle_per_host(pool_size)
        .build()
        .context("build the HTTP client")?;
    let ctx = Arc::new(Ctx {
        http,
        urls: target
            .bases
            .iter()
            .map(|b| format!("{}/v1/tickets", b.trim_end_matches('/')))
            .collect(),
        auth: target.auth,
        failover: target.failover,
        run: run_id.to_string(),
        issued: AtomicU64::new(0),
        pool: Mutex::new(Vec::new()),
        mix: settings.mix,
    });
    let started = Instant::now();
    let deadline = started + settings.duration;
    let sink = match settings.mode {
        Mode::Closed { concurrency } => closed(&ctx, concurrency, deadline, settings).await?,
        Mode::Open { rate } => open(&ctx, rate, started, settings).await?,
    };
    Ok(Measured {
        requests: ctx
            .issued
            .load(Ordering::Relaxed)
            .min(settings.max_requests),
        recorder: sink.rec,
        acks: sink.acks,
        unanswered: sink.unanswered,
        retries: sink.retries,
        retries_ok: sink.retries_ok,
        failed_over: sink.failed_over,
        failed_attempts: sink.failed_attempts,
        wall: started.elapsed(),
    })
}

/// C workers, one request at a time each, until the deadline or the request cap.
async fn closed(
    ctx: &Arc<Ctx>,
    concurrency: usize,
    deadline: Instant,
    settings: Settings,
) -> Result<Sink> {
    let mut handles = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let ctx = Arc::clone(ctx);
        handles.push(tokio::spawn(async move {
            let mut rng = StdRng::from_os_rng();
            let mut sink = Sink::new()?;
            while Instant::now() < deadline {
                let n = ctx.issued.fetch_add(1, Ordering::Relaxed);
                if n >= settings.max_requests {
                    break;
                }
                let job = ctx.job(&mut rng, n)?;
                let sample = ctx.execute(job, n, Instant::now(), &mut rng).await;
                sink.add(sample);
            }
            Ok::<_, anyhow::Error>(sink)
        }));
    }
    let mut total = Sink::new()?;
    for h in handles {
        total.merge(h.await.context("a steady worker panicked")??)?;
    }
    Ok(total)
}

/// Requests on a fixed schedule of `rate` per second, each in its own task.
async fn open(ctx: &Arc<Ctx>, rate: f64, started: Instant, settings: Settings) -> Result<Sink> {
    let total = ((rate * settings.duration.as_secs_f64()).ceil() as u64).min(settings.max_requests);
    let interval = Duration::from_secs_f64(1.0 / rate);
    let (tx, mut rx) = mpsc::channel::<Sample>(65_536);
    let collector = tokio::spawn(async move {
        let mut sink = Sink::new()?;
        while let Some(s) = rx.recv().await {
            sink.add(s);
        }
        Ok::<_, anyhow::Error>(sink)
    });
    let permits = Arc::new(Semaphore::new(OPEN_LOOP_MAX_IN_FLIGHT));
    let mut rng = StdRng::from_os_rng();
    let mut saturated = 0u64;
    for i in 0..total {
        let scheduled = started + interval.mul_f64(i as f64);
        tokio::time::sleep_until(scheduled.into()).await;
        // Never run past the duration by more than a little, even if the schedule slipped.
        if Instant::now() > started + settings.duration + Duration::from_secs(1) {
            break;
        }
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            saturated += 1;
            continue;
        };
        let n = ctx.issued.fetch_add(1, Ordering::Relaxed);
        let job = ctx.job(&mut rng, n)?;
        let ctx = Arc::clone(ctx);
        let tx = tx.clone();
        let mut task_rng = StdRng::from_rng(&mut rng);
        tokio::spawn(async move {
            let sample = ctx.execute(job, n, scheduled, &mut task_rng).await;
            let _ = tx.send(sample).await;
            drop(permit);
        });
    }
    drop(tx);
    // Every task ends within the request timeout (after its failover time, when it has one);
    // allow that plus a margin, then give up.
    let limit = settings.timeout + ctx.failover.unwrap_or_default() + Duration::from_secs(10);
    let mut sink = tokio::time::timeout(limit, collector)
        .await
        .context("open-loop requests did not finish in time")?
        .context("the open-loop collector panicked")??;
    for _ in 0..saturated {
        sink.rec.error("client_saturated");
    }
    Ok(sink)
}
