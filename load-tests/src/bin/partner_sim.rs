//! `partner-sim`: a partner hotline system receiving the gateway's callbacks (事件反馈), for the
//! demo and for trying an integration by hand. The server is the one the integration tests use
//! (`tests/partner_sim/mod.rs`, included below), so what the demo shows is what the tests check:
//! every callback's HMAC signature is verified (a bad one is answered 401 and reported), and each
//! arrival is printed on stdout as one line:
//!
//! ```text
//! delivery_id=320831:1763952000123-0 ticket_id=320831-00000042 event=ticket.accepted status=queued attempt=1 signature=ok answered=200
//! ```
//!
//! `POST /control/mode` (body `ok`, `fail[:STATUS]`, `slow[:MS]`) switches how it answers while it
//! runs. `partner-sim sign` prints the signing headers (v2: key, timestamp, nonce, version,
//! signature) for a body, method and path, for `curl -H @file`.
//! The secret is read from a variable or a file and never printed.

#[path = "../../../tests/partner_sim/mod.rs"]
mod partner_sim;
#[path = "../signing.rs"]
mod signing;

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use partner_sim::{Delivery, Mode, PartnerSim};
use signing::Signer;
use tokio::sync::broadcast::error::RecvError;

/// A simulated partner hotline system: receives and verifies the gateway's signed callbacks.
#[derive(Parser, Debug)]
#[command(
    name = "partner-sim",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    /// `sign` instead of serving.
    #[command(subcommand)]
    command: Option<Command>,
    /// Serving options (the default).
    #[command(flatten)]
    serve: Serve,
}

/// What else it can do.
#[derive(Subcommand, Debug)]
enum Command {
    /// Prints the signing header lines (`x-hotline-key`, `-timestamp`, `-nonce`,
    /// `-signature-version: 2`, `-signature`) for a body (stdin, or `--body-file`) sent as
    /// `--method` to `--path`, signed now: `curl -H @<(partner-sim sign …) …`.
    Sign(SignArgs),
}

/// The partner's key and where its secret is.
#[derive(Args, Debug)]
struct Key {
    /// The partner's `key_id` (`[[auth.partners]] key_id`), sent as `x-hotline-key`.
    #[arg(long, required = true)]
    key_id: Option<String>,
    /// The environment variable holding the shared secret.
    #[arg(
        long,
        value_name = "VAR",
        required_unless_present = "secret_file",
        conflicts_with = "secret_file"
    )]
    secret_env: Option<String>,
    /// A file holding the shared secret (one trailing newline ignored).
    #[arg(long, value_name = "PATH")]
    secret_file: Option<PathBuf>,
}

impl Key {
    /// Reads the secret.
    fn signer(&self) -> Result<Signer> {
        Signer::from_env_or_file(
            self.key_id.as_deref().unwrap_or_default(),
            self.secret_env.as_deref(),
            self.secret_file.as_deref(),
        )
    }
}

/// Serving options.
#[derive(Args, Debug)]
struct Serve {
    /// Address to listen on; callbacks go to `http://ADDR/callbacks`.
    #[arg(long, default_value = "127.0.0.1:9090", value_name = "ADDR")]
    listen: String,
    /// How to answer at first: `ok`, `fail` (500; `fail:503` for another status) or `slow`
    /// (3 s, then 200; `slow:1500` for another time in ms).
    #[arg(long, default_value = "ok")]
    mode: Mode,
    /// The partner's key.
    #[command(flatten)]
    key: Key,
}

/// `sign` options.
#[derive(Args, Debug)]
struct SignArgs {
    /// The partner's key.
    #[command(flatten)]
    key: Key,
    /// The body to sign [default: stdin]; sign exactly the bytes you send (`--data-binary`).
    #[arg(long, value_name = "PATH")]
    body_file: Option<PathBuf>,
    /// The signing time in Unix seconds [default: now].
    #[arg(long)]
    timestamp: Option<i64>,
    /// The request's method: signed (v2), so the headers fit this request only.
    #[arg(long, default_value = "POST")]
    method: String,
    /// The request's path and query as sent (`/v1/tickets/320831-00000001?x=1`): signed too.
    #[arg(long, default_value = "/v1/tickets")]
    path: String,
}

/// One line on stdout for each callback that arrived; nothing secret is in it.
fn line(d: &Delivery) -> String {
    let dash = |s: &str| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.to_string()
        }
    };
    format!(
        "delivery_id={} ticket_id={} event={} status={} attempt={} signature={} answered={}",
        dash(&d.delivery_id),
        dash(&d.ticket_id),
        dash(&d.event),
        d.status.as_deref().unwrap_or("-"),
        d.attempt,
        if d.signature_ok { "ok" } else { "BAD" },
        d.answered
    )
}

/// Serves until SIGINT or SIGTERM, printing every arrival.
async fn serve(args: Serve) -> Result<()> {
    let signer = args.key.signer()?;
    let key_id = signer.key_id.clone();
    let sim = PartnerSim::try_start_on(&args.listen, &key_id, signer.secret(), args.mode)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let mut feed = sim.subscribe();
    eprintln!(
        "partner-sim: callbacks to {} (key_id {key_id}, mode {}); switch with POST http://{}/control/mode",
        sim.url,
        sim.mode(),
        sim.addr()
    );
    let printer = tokio::spawn(async move {
        loop {
            match feed.recv().await {
                Ok(d) => {
                    println!("{}", line(&d));
                    if !d.signature_ok {
                        eprintln!(
                            "partner-sim: REFUSED delivery {} with a bad or stale signature (401)",
                            d.delivery_id
                        );
                    }
                }
                Err(RecvError::Lagged(n)) => eprintln!("partner-sim: {n} arrivals not printed"),
                Err(RecvError::Closed) => break,
            }
        }
    });
    shutdown_signal().await;
    let all = sim.deliveries();
    drop(sim);
    printer.abort();
    let bad = all.iter().filter(|d| !d.signature_ok).count();
    eprintln!(
        "partner-sim: stopping; {} callbacks received, {bad} with a bad signature",
        all.len()
    );
    Ok(())
}

/// SIGINT (Ctrl-C) or SIGTERM (the demo's trap).
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// Prints the three header lines for the body.
fn sign(args: SignArgs) -> Result<()> {
    let signer = args.key.signer()?;
    let body = match &args.body_file {
        Some(p) => std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?,
        None => {
            let mut b = Vec::new();
            std::io::stdin()
                .read_to_end(&mut b)
                .context("cannot read the body from stdin")?;
            b
        }
    };
    let ts = args.timestamp.unwrap_or_else(signing::now_seconds);
    // A fresh nonce: the request signed now is accepted once.
    let nonce = format!(
        "{:016x}{:016x}",
        rand::random::<u64>(),
        rand::random::<u64>()
    );
    println!("{}: {}", signing::KEY_HEADER, signer.key_id);
    println!("{}: {ts}", signing::TIMESTAMP_HEADER);
    println!("{}: {nonce}", signing::NONCE_HEADER);
    println!("{}: 2", signing::VERSION_HEADER);
    println!(
        "{}: {}",
        signing::SIGNATURE_HEADER,
        signer.sign_request(&args.method, &args.path, ts, &nonce, &body)
    );
    Ok(())
}

/// Exit 0, or 2 with the reason on stderr.
fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Sign(args)) => sign(args),
        None => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("cannot start the async runtime")
            .and_then(|rt| rt.block_on(serve(cli.serve))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("partner-sim: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
