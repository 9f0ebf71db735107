//! Running the `soak` and `archive` scenarios (issue 18); their parts are in `soak.rs`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::harness::{Gateway, GatewayTuning, RedisServer, free_port};
use crate::soak::{self, Expect};
use crate::stats::round;
use crate::{Args, checked_gateway_bin, connect, machine, steady, work, workspace_root};

/// Intake is bounded by the ticket count; this only stops a run that can no longer progress.
const INTAKE_LIMIT: Duration = Duration::from_secs(4 * 3600);

/// Requests to send for about `tickets` new tickets: `steady`'s mix repeats an earlier ticket
/// one time in ten (a faithful retry, which registers nothing new).
fn requests_for(tickets: u64, cap: u64) -> u64 {
    ((tickets as f64 / 0.9).ceil() as u64).min(cap)
}

/// The `[archive]` keys of a run: `after_seconds`, the interval and the batch.
fn archive_keys(args: &Args, after_seconds: u64) -> String {
    let mut s = soak::archive_toml(after_seconds, args.archive_interval_ms);
    if let Some(b) = args.archive_batch {
        s.push_str(&format!("batch = {b}\n"));
    }
    s
}

/// The load average, as `/proc/loadavg` gives it (1, 5 and 15 minutes).
fn load_average() -> Value {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let v: Vec<f64> = text
        .split_whitespace()
        .take(3)
        .filter_map(|x| x.parse().ok())
        .collect();
    json!(v)
}

/// What each acknowledged ticket must look like in the archive: closed through `life` (with
/// the event count Redis held when it closed, when the scenario saw it), or sent back.
fn expectations(
    acks: &[crate::verify::Ack],
    closed: &[soak::Closed],
    life: &'static [&'static str],
) -> HashMap<String, Expect> {
    let totals: HashMap<&str, u64> = closed
        .iter()
        .map(|c| (c.id.as_str(), c.history_total))
        .collect();
    acks.iter()
        .map(|a| {
            let e = if a.queue.is_none() {
                Expect {
                    status: "returned",
                    life: &["ticket.created"],
                    history_total: None,
                }
            } else {
                Expect {
                    status: "closed",
                    life,
                    history_total: totals.get(a.id.as_str()).copied(),
                }
            };
            (a.id.clone(), e)
        })
        .collect()
}

/// `soak`: tickets through their whole life while the gateway archives them as they end.
pub async fn run_soak(args: &Args, run: &str) -> Result<(Value, bool)> {
    let tickets = args.tickets.unwrap_or(200_000);
    let bin = checked_gateway_bin(args)?;
    let agents = work::agents(args.agents_per_kind as usize);
    let mut redis = RedisServer::start()?;
    let machine_facts = machine(&redis.url()).await;
    let tuning = GatewayTuning {
        extra_toml: work::config_toml(&agents, args.agent_capacity, args.claim_scan),
        archive_toml: archive_keys(args, 0),
        ..GatewayTuning::default()
    };
    let mut gateway = Gateway::start(&bin, &workspace_root(), &redis.url(), tuning).await?;
    let load_at_start = load_average();
    let started_at = chrono::Utc::now();
    let mut conn = connect(&redis.url()).await?;
    let before_info = soak::memory(&mut conn).await?;
    let before = before_info.used;
    let stop_sampling = Arc::new(AtomicBool::new(false));
    let sampler = soak::sample_peak(
        conn.clone(),
        Duration::from_millis(500),
        Arc::clone(&stop_sampling),
    );
    let mode = match args.rate {
        Some(rate) => crate::open_rate(rate)?,
        None => steady::Mode::Closed {
            concurrency: args.work_intake_concurrency as usize,
        },
    };
    eprintln!(
        "soak: {tickets} tickets ({mode:?}), {} agents, archive after 0 s every {} ms, gateway {} (redis port {}) ...",
        agents.len(),
        args.archive_interval_ms,
        gateway.base,
        redis.port
    );
    let timeout = Duration::from_millis(args.timeout_ms);
    let intake_done = Arc::new(AtomicBool::new(false));
    let agents_task = tokio::spawn({
        let (base, agents, done) = (
            gateway.base.clone(),
            agents.clone(),
            Arc::clone(&intake_done),
        );
        async move { soak::run_agents(&base, &agents, done, timeout, INTAKE_LIMIT).await }
    });
    let t0 = Instant::now();
    let intake = steady::run(
        &gateway.base,
        run,
        steady::Settings {
            mode,
            mix: steady::Mix::Hotline,
            duration: INTAKE_LIMIT,
            timeout,
            max_requests: requests_for(tickets, args.max_requests),
        },
    )
    .await;
    intake_done.store(true, Ordering::Relaxed);
    let life = agents_task.await.context("the agents panicked")??;
    let intake = intake?;
    let load_seconds = t0.elapsed().as_secs_f64();
    eprintln!(
        "soak: {} acknowledged, {} closed in {load_seconds:.0} s; waiting for the archive ...",
        intake.acks.len(),
        life.closed.len()
    );
    let convergence = soak::converge(
        &mut conn,
        Duration::from_millis(250),
        Duration::from_secs(args.converge_timeout),
    )
    .await?;
    stop_sampling.store(true, Ordering::Relaxed);
    let sampled_peak = sampler.await.unwrap_or(0);
    let after_info = soak::memory(&mut conn).await?;
    let (after, redis_peak) = (after_info.used, after_info.peak);
    let classes = soak::breakdown(&mut conn).await?;
    let expected = expectations(&intake.acks, &life.closed, &soak::LIFE);
    let check = soak::check_archive(&gateway.archive_url, &mut conn, &expected).await?;
    gateway.stop();
    redis.stop();

    let n = expected.len() as u64;
    let sent_back = intake.acks.iter().filter(|a| a.queue.is_none()).count() as u64;
    let retained = soak::retained_bytes(&classes);
    let bar = before as f64 * 1.10;
    let within = after as f64 <= bar;
    let within_without_retained = after.saturating_sub(retained) as f64 <= bar;
    let mut failed: Vec<String> = Vec::new();
    if life.closed.len() as u64 != n - sent_back {
        failed.push(format!(
            "{} of {} queued tickets were taken through their whole life",
            life.closed.len(),
            n - sent_back
        ));
    }
    if !convergence.converged {
        failed.push("the archive did not converge".into());
    }
    if !check.ok() {
        failed.push("archive check failed (lost, doubled, damaged or left over)".into());
    }
    if !intake.unanswered.is_empty() || !intake.recorder.errors.is_empty() {
        failed.push("intake errors".into());
    }
    if !within {
        failed.push(format!(
            "Redis used_memory after convergence {after} B > before {before} B + 10 %"
        ));
    }
    let ok = failed.is_empty();
    let summary = json!({
        "scenario": "soak",
        "started_at": started_at.to_rfc3339(),
        "load_average_at_start": load_at_start,
        "load_average_at_end": load_average(),
        "tickets_requested": tickets,
        "acknowledged": n,
        "sent_back_at_intake": sent_back,
        "closed_through_whole_life": life.closed.len(),
        "load_seconds": round(load_seconds, 1),
        "intake": {
            "requests": intake.requests,
            "retries": {"sent": intake.retries, "same_ticket": intake.retries_ok},
            "unanswered": intake.unanswered.len(),
            "summary": intake.recorder.summary(intake.wall),
        },
        "agents": life.summary(),
        "archive": {
            "after_seconds": 0,
            "interval_ms": args.archive_interval_ms,
            "batch": args.archive_batch.map_or(json!("default (500)"), |b| json!(b)),
            "convergence": convergence,
            "check": check,
        },
        "memory": {
            "before_intake": before,
            "peak_sampled": sampled_peak,
            "peak_redis": redis_peak,
            "after_convergence": after,
            "growth_percent": round((after as f64 / before.max(1) as f64 - 1.0) * 100.0, 1),
            "within_10_percent": within,
            "retained_by_design_bytes": retained,
            "retained_by_design_bytes_per_ticket": round(retained as f64 / n.max(1) as f64, 1),
            "after_minus_retained_by_design": after.saturating_sub(retained),
            "within_10_percent_without_retained_by_design": within_without_retained,
            "info_before": before_info,
            "info_after": after_info,
            "by_class": soak::breakdown_json(&classes, n),
        },
        "failed_because": failed,
        "machine": machine_facts,
        "ok": ok,
    });
    eprintln!();
    eprintln!("== soak ({n} tickets)");
    for (label, v) in [
        ("closed through whole life", json!(life.closed.len())),
        ("sent back at intake", json!(sent_back)),
        ("load seconds", summary["load_seconds"].clone()),
        ("converged after (s)", json!(convergence.seconds)),
        ("archived whole", json!(check.archived_whole)),
        ("lost", json!(check.lost)),
        ("extra cases", json!(check.extra_cases)),
        ("left in Redis", json!(check.left_in_redis)),
        ("memory before (B)", json!(before)),
        ("memory peak sampled (B)", json!(sampled_peak)),
        ("memory after (B)", json!(after)),
        ("retained by design (B)", json!(retained)),
    ] {
        eprintln!("  {label:<28} {v:>14}");
    }
    for f in &failed {
        eprintln!("  FAILED: {f}");
    }
    Ok((crate::emit(summary), ok))
}

/// `archive`: ended tickets filled with archiving held off, then archived by one gateway, timed.
pub async fn run_archive(args: &Args, run: &str) -> Result<(Value, bool)> {
    let tickets = args.tickets.unwrap_or(50_000);
    let bin = checked_gateway_bin(args)?;
    // The PostgreSQL both gateways use, in a directory of the run's own (open to `postgres`).
    let pg_dir = tempfile::Builder::new()
        .prefix("hl-load-archive-")
        .tempdir()
        .context("create a temp dir for PostgreSQL")?;
    std::fs::set_permissions(
        pg_dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .context("open the run's directory to the postgres user")?;
    let archive_at = Some((pg_dir.path().join("postgres"), free_port()?));
    let mut redis = RedisServer::start()?;
    let machine_facts = machine(&redis.url()).await;
    let started_at = chrono::Utc::now();
    let load_at_start = load_average();
    // 1. Fill: archiving held off for a year.
    let mut filler = Gateway::start(
        &bin,
        &workspace_root(),
        &redis.url(),
        GatewayTuning {
            extra_toml: soak::supervisor_toml(),
            archive_toml: archive_keys(args, 365 * 86_400),
            archive_at: archive_at.clone(),
            ..GatewayTuning::default()
        },
    )
    .await?;
    let mut conn = connect(&redis.url()).await?;
    let before_info = soak::memory(&mut conn).await?;
    let before = before_info.used;
    let timeout = Duration::from_millis(args.timeout_ms);
    eprintln!(
        "archive: filling {tickets} tickets (archiving held off), gateway {} ...",
        filler.base
    );
    let intake = steady::run(
        &filler.base,
        run,
        steady::Settings {
            mode: steady::Mode::Closed { concurrency: 32 },
            mix: steady::Mix::Hotline,
            duration: INTAKE_LIMIT,
            timeout,
            max_requests: requests_for(tickets, args.max_requests),
        },
    )
    .await?;
    let n = intake.acks.len() as u64;
    let (after_intake, _) = soak::used_memory(&mut conn).await?;
    let sent_back = intake.acks.iter().filter(|a| a.queue.is_none()).count() as u64;
    eprintln!("archive: {n} registered; a supervisor closes the queued ones ...");
    let fill = soak::close_as_supervisor(&filler.base, &intake.acks, 32, timeout).await?;
    let (after_closed, _) = soak::used_memory(&mut conn).await?;
    let (ended, in_redis) = soak::listed(&mut conn).await?;
    filler.stop();

    // 2. Archive: one gateway, archiving at once.
    let load_before_archiving = load_average();
    eprintln!("archive: {ended} ended tickets listed; one gateway archives them ...");
    let spawned = Instant::now();
    let mut archiver = Gateway::start(
        &bin,
        &workspace_root(),
        &redis.url(),
        GatewayTuning {
            archive_toml: archive_keys(args, 0),
            archive_at,
            ..GatewayTuning::default()
        },
    )
    .await?;
    let ready_after = spawned.elapsed().as_secs_f64();
    let convergence = soak::converge(
        &mut conn,
        Duration::from_millis(50),
        Duration::from_secs(args.converge_timeout),
    )
    .await?;
    let from_spawn = spawned.elapsed().as_secs_f64();
    let load_after_archiving = load_average();
    let after_archive_info = soak::memory(&mut conn).await?;
    let after_archive = after_archive_info.used;
    let classes = soak::breakdown(&mut conn).await?;
    let expected = expectations(&intake.acks, &fill.closed, &soak::CLOSED_BY_SUPERVISOR);
    let check = soak::check_archive(&archiver.archive_url, &mut conn, &expected).await?;
    archiver.stop();
    redis.stop();

    let first_backlog = convergence.samples.first().map_or(ended, |(_, e)| *e);
    let per_s_from_ready = first_backlog as f64 / convergence.seconds.max(1e-9);
    let per_s_from_spawn = ended as f64 / from_spawn.max(1e-9);
    let per = |bytes: u64| round(bytes as f64 / n.max(1) as f64, 1);
    let ok = check.ok() && convergence.converged && fill.closed.len() as u64 == n - sent_back;
    let summary = json!({
        "scenario": "archive",
        "started_at": started_at.to_rfc3339(),
        "load_average_at_start": load_at_start,
        "load_average_before_archiving": load_before_archiving,
        "load_average_after_archiving": load_after_archiving,
        "tickets_requested": tickets,
        "acknowledged": n,
        "sent_back_at_intake": sent_back,
        "closed_by_supervisor": fill.closed.len(),
        "fill": {
            "intake": intake.recorder.summary(intake.wall),
            "close": fill.summary(),
        },
        "ended_listed": ended,
        "tickets_in_redis_before_archiving": in_redis,
        "archiving": {
            "batch": args.archive_batch.map_or(json!("default (500)"), |b| json!(b)),
            "interval_ms": args.archive_interval_ms,
            "gateway_ready_after_s": round(ready_after, 3),
            "backlog_at_ready": first_backlog,
            "seconds_from_ready_to_zero": convergence.seconds,
            "seconds_from_spawn_to_zero": round(from_spawn, 3),
            "tickets_per_s": round(per_s_from_ready, 1),
            "tickets_per_s_including_start": round(per_s_from_spawn, 1),
            "target_per_s": 5000,
            "target_met": per_s_from_ready >= 5000.0,
            "convergence": convergence,
        },
        "check": check,
        "memory": {
            "before": before,
            "after_intake": after_intake,
            "after_closing": after_closed,
            "after_archiving": after_archive,
            "bytes_per_ticket_after_intake": per(after_intake.saturating_sub(before)),
            "bytes_per_ended_ticket_before_archiving": per(after_closed.saturating_sub(before)),
            "bytes_per_ticket_left_after_archiving": per(after_archive.saturating_sub(before)),
            "info_before": before_info,
            "info_after_archiving": after_archive_info,
            "by_class_after_archiving": soak::breakdown_json(&classes, n),
        },
        "machine": machine_facts,
        "ok": ok,
    });
    eprintln!();
    eprintln!("== archive ({ended} ended tickets)");
    for (label, v) in [
        (
            "archived per s (from ready)",
            json!(round(per_s_from_ready, 1)),
        ),
        (
            "archived per s (from spawn)",
            json!(round(per_s_from_spawn, 1)),
        ),
        ("seconds to backlog 0", json!(convergence.seconds)),
        (
            "bytes/ticket after intake",
            json!(per(after_intake.saturating_sub(before))),
        ),
        (
            "bytes/ended ticket",
            json!(per(after_closed.saturating_sub(before))),
        ),
        (
            "bytes/ticket after archive",
            json!(per(after_archive.saturating_sub(before))),
        ),
        ("archived whole", json!(check.archived_whole)),
        ("lost", json!(check.lost)),
        ("left in Redis", json!(check.left_in_redis)),
    ] {
        eprintln!("  {label:<30} {v:>12}");
    }
    Ok((crate::emit(summary), ok))
}
