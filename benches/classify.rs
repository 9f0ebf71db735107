//! Classifier throughput and latency on 500-character tickets, and load time.
//!
//! Run: `cargo bench --bench classify` (one core: the loop is single-threaded, so texts/s is
//! texts per second per core). Texts are built from `data/written/tickets.jsonl` joined to 500
//! characters, so the benchmark needs nothing outside the repository. Prints load time, mean,
//! p50, p99 and max per ticket, and texts/s, for the shipped lexicon with and without the model.

use std::time::{Duration, Instant};

use hotline_gateway::classify::Classifier;
use hotline_gateway::config::Settings;
use hotline_gateway::ticket::{Source, TicketText};

const CHARS: usize = 500;
const TEXTS: usize = 2_000;
const ROUNDS: usize = 5;

fn texts() -> Vec<String> {
    let raw = std::fs::read_to_string("data/written/tickets.jsonl").unwrap_or_default();
    let lines: Vec<String> = raw
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_owned))
        .collect();
    if lines.is_empty() {
        return vec!["老板拖欠工资三个月，双方吵起来了，请求调解。".repeat(25)];
    }
    let mut out = Vec::with_capacity(TEXTS);
    let mut i = 0usize;
    while out.len() < TEXTS {
        let mut t = String::new();
        while t.chars().count() < CHARS {
            // A stride that is prime to the length mixes categories and services.
            t.push_str(&lines[(i * 7919) % lines.len()]);
            i += 1;
        }
        let cut = t.char_indices().nth(CHARS).map_or(t.len(), |(b, _)| b);
        t.truncate(cut);
        out.push(t);
    }
    out
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn run(name: &str, c: &Classifier, texts: &[String]) {
    let sources = Source::ALL;
    // Warm-up.
    for (i, t) in texts.iter().enumerate() {
        std::hint::black_box(c.classify(&TicketText {
            source: sources[i % 3],
            title: "",
            text: t,
            people_involved: None,
            prior_calls: 0,
        }));
    }
    let mut each = Vec::with_capacity(texts.len() * ROUNDS);
    let cpu_before = on_cpu();
    let started = Instant::now();
    for _ in 0..ROUNDS {
        for (i, t) in texts.iter().enumerate() {
            let s = Instant::now();
            let d = c.classify(&TicketText {
                source: sources[i % 3],
                title: "",
                text: t,
                people_involved: None,
                prior_calls: 0,
            });
            each.push(s.elapsed());
            std::hint::black_box(d);
        }
    }
    let total = started.elapsed();
    let cpu = on_cpu().zip(cpu_before).map(|(a, b)| a.saturating_sub(b));
    each.sort_unstable();
    let n = each.len();
    if let Some(cpu) = cpu {
        // Time this thread actually ran: on a shared machine the wall clock also counts time
        // other processes held the core, which is not the classifier's cost.
        println!(
            "{name}: on-CPU {:.1} µs per ticket = {:.0} texts/s per core (from /proc/thread-self/schedstat)",
            cpu.as_secs_f64() * 1e6 / n as f64,
            n as f64 / cpu.as_secs_f64(),
        );
    }
    println!(
        "{name}: {n} tickets of {CHARS} chars, {:.0} texts/s on one core; per ticket mean {:.1} µs, p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        n as f64 / total.as_secs_f64(),
        total.as_secs_f64() * 1e6 / n as f64,
        percentile(&each, 0.50).as_secs_f64() * 1e6,
        percentile(&each, 0.99).as_secs_f64() * 1e6,
        each[n - 1].as_secs_f64() * 1e6,
    );
}

/// Time this thread has spent running on a CPU (Linux), excluding time it waited for one.
fn on_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let settings = match Settings::load(None) {
        Ok(s) => s.classify,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let mut loads = Vec::new();
    let mut full = None;
    for _ in 0..5 {
        let s = Instant::now();
        match Classifier::load(&settings) {
            Ok(c) => full = Some(c),
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        }
        loads.push(s.elapsed());
    }
    loads.sort_unstable();
    let Some(full) = full else { return };
    println!(
        "load (lexicon + model, {}): median {:.1} ms, max {:.1} ms",
        full.model(),
        loads[2].as_secs_f64() * 1e3,
        loads[4].as_secs_f64() * 1e3
    );
    let texts = texts();

    // The same lexicon without the model, to show what each part costs.
    let lexicon = std::fs::read_to_string(&settings.lexicon).unwrap_or_default();
    let without = lexicon.replace(
        &format!("path = \"{}\"", model_path(&lexicon)),
        "path = \"\"",
    );
    if std::env::var_os("BENCH_MODEL_ONLY").is_some() {
        run("lexicon + model", &full, &texts);
        return;
    }
    match hotline_gateway::classify::Lexicon::from_toml_str(&without)
        .and_then(|l| Classifier::from_lexicon(l, &settings))
    {
        Ok(c) => run("lexicon only   ", &c, &texts),
        Err(e) => eprintln!("lexicon only: {e}"),
    }
    run("lexicon + model", &full, &texts);
    run("lexicon + model", &full, &texts);
}

/// The `[model] path` value of a lexicon file.
fn model_path(lexicon: &str) -> String {
    let mut in_model = false;
    for line in lexicon.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_model = t == "[model]";
        } else if in_model && let Some(v) = t.strip_prefix("path") {
            return v
                .trim()
                .trim_start_matches('=')
                .trim()
                .trim_matches('"')
                .to_owned();
        }
    }
    String::new()
}
