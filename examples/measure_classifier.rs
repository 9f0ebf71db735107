//! Measures the shipped lexicon on the development sets in `../shared/data` (beside the
//! checkout; never copied into the repository). Run:
//! `cargo run --release --example measure_classifier [-- DATA_DIR]`.
//!
//! Each set is run twice: with a neutral source (12345, no source prior) so the text alone is
//! measured, and with the source the rows most resemble (lawbench → 12348, promediconv → 110).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hotline_gateway::classify::{Classifier, Service};
use hotline_gateway::ticket::{Source, TicketText};

/// Where the development sets are when no directory is given: `shared/` beside the checkout.
const DATA: &str = "../shared/data";

struct Row {
    text: String,
    label: String,
}

fn read(path: &str, every: usize) -> Result<Vec<Row>, Box<dyn std::error::Error>> {
    let mut rows = Vec::new();
    let lines = std::fs::read_to_string(path)?;
    for (i, line) in lines.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        if every > 0 && i % every != 0 {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line)?;
        rows.push(Row {
            text: v["text"].as_str().unwrap_or_default().to_owned(),
            label: v["label_category"].as_str().unwrap_or_default().to_owned(),
        });
    }
    Ok(rows)
}

/// Mappings from each README.md.
fn mapping(set: &str, label: &str) -> Option<&'static str> {
    let m = match set {
        "lawbench_topic" => match label {
            "婚姻家庭" => "marriage_family",
            "劳动纠纷" => "labour",
            "交通事故" => "traffic",
            "债权债务" | "合同纠纷" | "抵押担保" => "contract_debt",
            "刑事辩护" => "criminal",
            "房产纠纷" => "housing_land",
            "侵权" | "人身损害" => "injury",
            "公司法" => "business",
            "医疗纠纷" => "medical",
            "拆迁安置" => "demolition",
            "行政诉讼" => "administrative",
            "消费权益" => "consumer",
            _ => return None,
        },
        "promediconv" => match label {
            "劳资劳动纠纷" => "labour",
            "家庭婚姻纠纷" | "遗产继承纠纷" => "marriage_family",
            "环境污染纠纷" => "environment",
            "社区邻里纠纷" => "neighbour",
            "经济债务纠纷" => "contract_debt",
            "治安刑事纠纷" => "criminal",
            "交通事故纠纷" => "traffic",
            "房产土地纠纷" => "housing_land",
            "公司经营纠纷" => "business",
            "医疗健康纠纷" => "medical",
            "消费旅游纠纷" => "consumer",
            _ => return None,
        },
        _ => return None,
    };
    Some(m)
}

fn run(
    c: &Classifier,
    data: &str,
    set: &str,
    file: &str,
    source: Source,
    total_time: &mut (Duration, usize),
) {
    // `--holdout-every N`: only the rows `train --holdout-every N` left out of the tipdm set.
    let every = if set == "tipdm2020_gov" {
        flag("--holdout-every")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    } else {
        0
    };
    let rows = match read(&format!("{data}/{set}/{file}"), every) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{set}: {e}");
            return;
        }
    };
    let mut services: BTreeMap<&str, usize> = BTreeMap::new();
    let mut per_label: BTreeMap<String, BTreeMap<&str, usize>> = BTreeMap::new();
    let mut levels: BTreeMap<String, usize> = BTreeMap::new();
    // (gold, predicted) over mapped labels.
    let mut pairs: Vec<(&str, String)> = Vec::new();
    let show = std::env::args().any(|a| a == "--show-warnings");
    let mut shown = 0usize;
    for row in &rows {
        let t = TicketText {
            source,
            title: "",
            text: &row.text,
            people_involved: None,
            prior_calls: 0,
        };
        let start = Instant::now();
        let d = c.classify(&t);
        total_time.0 += start.elapsed();
        total_time.1 += 1;
        *services.entry(d.service.as_str()).or_default() += 1;
        *per_label
            .entry(row.label.clone())
            .or_default()
            .entry(d.service.as_str())
            .or_default() += 1;
        *levels.entry(d.warning_level.clone()).or_default() += 1;
        if show && d.warning_level != "none" {
            shown += 1;
            if shown % 40 == 1 {
                println!("   [{}] {:?}", d.warning_level, d.reasons);
            }
        }
        if let Some(gold) = mapping(set, &row.label) {
            pairs.push((gold, d.category));
        }
    }
    let n = rows.len().max(1) as f64;
    println!("== {set} ({} rows, source {source})", rows.len());
    let shares: Vec<String> = Service::ALL
        .iter()
        .map(|s| {
            let k = services.get(s.as_str()).copied().unwrap_or(0);
            format!("{} {:.1}%", s.as_str(), 100.0 * k as f64 / n)
        })
        .collect();
    println!("   service: {}", shares.join(", "));
    println!("   warning levels: {levels:?}");
    if !pairs.is_empty() {
        let correct = pairs.iter().filter(|(g, p)| *g == p).count();
        println!(
            "   category accuracy (mapped rows): {correct}/{} = {:.1}%, macro-F1 {:.3}",
            pairs.len(),
            100.0 * correct as f64 / pairs.len() as f64,
            macro_f1(&pairs)
        );
    }
    if set == "tipdm2020_gov" {
        for (label, counts) in &per_label {
            let k: usize = counts.values().sum();
            let oos = counts.get("out_of_scope").copied().unwrap_or(0);
            let tri = counts.get("triage").copied().unwrap_or(0);
            println!(
                "   {label}: out_of_scope {:.1}%, triage {:.1}%, legal {:.1}%, mediation {:.1}%",
                100.0 * oos as f64 / k as f64,
                100.0 * tri as f64 / k as f64,
                100.0 * counts.get("legal_consultation").copied().unwrap_or(0) as f64 / k as f64,
                100.0 * counts.get("mediation").copied().unwrap_or(0) as f64 / k as f64,
            );
        }
    }
}

/// Macro-F1 over the gold labels present.
fn macro_f1(pairs: &[(&str, String)]) -> f64 {
    let mut golds: Vec<&str> = pairs.iter().map(|(g, _)| *g).collect();
    golds.sort_unstable();
    golds.dedup();
    let mut sum = 0.0;
    for g in &golds {
        let tp = pairs.iter().filter(|(a, p)| a == g && p == g).count() as f64;
        let fp = pairs.iter().filter(|(a, p)| a != g && p == g).count() as f64;
        let fn_ = pairs.iter().filter(|(a, p)| a == g && p != g).count() as f64;
        let denom = 2.0 * tp + fp + fn_;
        sum += if denom > 0.0 { 2.0 * tp / denom } else { 0.0 };
    }
    sum / golds.len().max(1) as f64
}

/// `--name VALUE` from the command line.
fn flag(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let data = std::env::args()
        .nth(1)
        .filter(|a| !a.starts_with("--"))
        .unwrap_or_else(|| DATA.to_string());
    // The shipped configuration: the same taxonomy, scale and threshold as the gateway.
    let mut settings = match hotline_gateway::config::Settings::load(None) {
        Ok(s) => s.classify,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    // `--lexicon FILE`: measure another lexicon (e.g. one naming a model trained with a hold-out).
    if let Some(l) = flag("--lexicon") {
        settings.lexicon = l.into();
    }
    let load_started = Instant::now();
    let c = match Classifier::load(&settings) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    println!(
        "model {} (loaded in {:.0} ms)",
        c.model(),
        load_started.elapsed().as_secs_f64() * 1e3
    );
    let mut time = (Duration::ZERO, 0usize);
    for source in [Source::Citizen12345, Source::Legal12348] {
        run(&c, &data, "lawbench_topic", "dev.jsonl", source, &mut time);
    }
    for source in [Source::Citizen12345, Source::Police110] {
        run(&c, &data, "promediconv", "dev.jsonl", source, &mut time);
    }
    run(
        &c,
        &data,
        "tipdm2020_gov",
        "train.jsonl",
        Source::Citizen12345,
        &mut time,
    );
    println!(
        "mean classification time: {:.1} µs over {} tickets",
        time.0.as_secs_f64() * 1e6 / time.1.max(1) as f64,
        time.1
    );
}
