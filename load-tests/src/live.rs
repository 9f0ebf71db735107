//! The `live` scenario: live-transfer decisions (issue 8) at a fixed rate, open loop.
//!
//! Operators' consoles send `POST /v1/tickets` with `"live": true` (12348 legal questions, in
//! every county) at `--rate` (default 500/s). Duty lawyers sign in with heartbeats; a simulated
//! lawyer accepts each reservation it is given after 100 ms and ends the call 400 ms later (then
//! wrap-up of 1 s), and a caller told to wait hangs up after 2 s. What is measured is the decision
//! latency: from sending the request to the answer carrying a reservation or a position and an
//! estimate. The target is p99 < 10 ms at 500 live requests/s.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::stats::{Recorder, round};

/// Lawyers per county.
pub const LAWYERS_PER_COUNTY: usize = 10;
/// The admin token the scenario's heartbeats use.
const ADMIN_TOKEN: &str = "live-load-admin";

/// Questions callers ask, varied per request by their number.
const QUESTIONS: [&str; 4] = [
    "我想咨询一下，公司没有和我签劳动合同，已经干了八个月，现在要辞退我，请问我能不能要求双倍工资，应该怎么申请劳动仲裁？",
    "请问离婚的时候孩子的抚养权怎么判，我一直在外地打工，孩子跟着老人，我还能争取抚养权吗？想咨询一下需要准备什么材料。",
    "朋友借了我五万块钱，写了借条，现在两年了一直不还，请问还能不能起诉，诉讼时效是多久，需要什么证据？",
    "我父亲去世了没有留遗嘱，房子在他名下，请问兄弟姐妹之间怎么分，继承需要办理什么手续，是否合法？",
];

/// One lawyer of the run and its console token.
#[derive(Debug, Clone)]
pub struct Lawyer {
    /// Agent id.
    pub id: String,
    /// Its county.
    pub county: String,
    /// Plain token; only its SHA-256 goes into the gateway's config.
    pub token: String,
}

/// Ten lawyers in each county.
pub fn lawyers(counties: &[&str]) -> Vec<Lawyer> {
    counties
        .iter()
        .flat_map(|c| {
            (0..LAWYERS_PER_COUNTY).map(move |i| Lawyer {
                id: format!("lawyer-{c}-{i:02}"),
                county: (*c).to_string(),
                token: format!("tok-lawyer-{c}-{i:02}"),
            })
        })
        .collect()
}

fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The gateway config for the run: an admin token, a token per lawyer, the lawyers, fast
/// wrap-up, and an operator token for every county.
pub fn config_toml(lawyers: &[Lawyer]) -> String {
    let mut s = format!(
        "\n[live]\nwrap_up_seconds = 1\n\n[[auth.tokens]]\nname = \"live-admin\"\nrole = \"admin\"\nsha256 = \"{}\"\n",
        digest(ADMIN_TOKEN)
    );
    for l in lawyers {
        s.push_str(&format!(
            "\n[[auth.tokens]]\nname = \"{id}\"\nrole = \"agent\"\nagent_id = \"{id}\"\nsha256 = \"{d}\"\n\n[[agents.bootstrap]]\nid = \"{id}\"\nname = \"{id}\"\nkind = \"lawyer\"\nregions = [\"{c}\"]\ntier = \"county\"\ncapacity = 5\nstatus = \"available\"\ncontact = \"8{n}\"\n",
            id = l.id,
            d = digest(&l.token),
            c = l.county,
            n = &l.id[l.id.len() - 2..],
        ));
    }
    s
}

/// Answers by status, and the decision latencies.
struct Tally {
    recorder: Recorder,
    answers: BTreeMap<String, u64>,
}

/// Runs the scenario against a started gateway; returns the JSON summary and whether it met
/// its checks (no errors).
pub async fn run(
    base: &str,
    run_id: &str,
    partner_token: &str,
    lawyers: &[Lawyer],
    rate: f64,
    duration: Duration,
    timeout: Duration,
) -> Result<(Value, bool)> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .pool_max_idle_per_host(256)
        .build()?;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Lawyers sign in and keep their consoles alive.
    let heartbeats = {
        let client = client.clone();
        let base = base.to_string();
        let ids: Vec<String> = lawyers.iter().map(|l| l.id.clone()).collect();
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for id in &ids {
                    let _ = client
                        .post(format!("{base}/v1/agents/{id}/heartbeat"))
                        .bearer_auth(ADMIN_TOKEN)
                        .send()
                        .await;
                }
                tokio::time::sleep(Duration::from_secs(4)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let tokens: Arc<BTreeMap<String, String>> = Arc::new(
        lawyers
            .iter()
            .map(|l| (l.id.clone(), l.token.clone()))
            .collect(),
    );
    let counties: Vec<String> = {
        let mut c: Vec<String> = lawyers.iter().map(|l| l.county.clone()).collect();
        c.dedup();
        c
    };
    let tally = Arc::new(Mutex::new(Tally {
        recorder: Recorder::new()?,
        answers: BTreeMap::new(),
    }));
    let total = (rate * duration.as_secs_f64()).round() as u64;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for n in 0..total {
        let due = started + Duration::from_secs_f64(n as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        let county = &counties[(n as usize) % counties.len()];
        let body = json!({
            "source": "12345",
            "external_id": format!("LIVE-{run_id}-{n}"),
            "received_at": crate::texts::received_at(1),
            "transfer": "one_click",
            "region": {"code": county},
            "title": "法律咨询转接",
            "text": format!("{}（第{}号来电）", QUESTIONS[(n as usize) % QUESTIONS.len()], n),
            "live": true,
        });
        let client = client.clone();
        let base = base.to_string();
        let token = partner_token.to_string();
        let tally = Arc::clone(&tally);
        let tokens = Arc::clone(&tokens);
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let res = client
                .post(format!("{base}/v1/tickets"))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await;
            let answer: Result<Value, String> = match res {
                Ok(r) if r.status().is_success() => r.json().await.map_err(|e| e.to_string()),
                Ok(r) => Err(format!("http_{}", r.status().as_u16())),
                Err(e) if e.is_timeout() => Err("timeout".into()),
                Err(_) => Err("transport".into()),
            };
            let took = sent.elapsed();
            let v = {
                let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
                match answer {
                    Ok(v) => {
                        t.recorder.latency(took);
                        t.recorder.successes += 1;
                        let status = v["live"]["status"].as_str().unwrap_or("none").to_string();
                        *t.answers.entry(status).or_default() += 1;
                        v
                    }
                    Err(kind) => {
                        t.recorder.error(kind);
                        return;
                    }
                }
            };
            follow_up(&client, &base, &token, &tokens, &v).await;
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let wall = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    heartbeats.abort();
    let t = tally.lock().unwrap_or_else(|p| p.into_inner());
    let mut summary = t.recorder.summary(wall);
    let p99 = summary["latency_ms"]["p99"].as_f64().unwrap_or(f64::MAX);
    summary["scenario"] = json!("live");
    summary["offered_rate_per_s"] = json!(rate);
    summary["requests"] = json!(total);
    summary["lawyers"] = json!(lawyers.len());
    summary["answers"] = json!(t.answers);
    summary["target"] = json!({"decision_p99_ms": 10.0, "met": p99 < 10.0});
    summary["decision_p99_ms"] = json!(round(p99, 3));
    let ok = t.recorder.errors.is_empty();
    Ok((summary, ok))
}

/// What happens after the answer: the reserved lawyer accepts after 100 ms and ends the call
/// 400 ms later; a caller told to wait hangs up after 2 s.
async fn follow_up(
    client: &reqwest::Client,
    base: &str,
    operator_token: &str,
    tokens: &BTreeMap<String, String>,
    v: &Value,
) {
    let Some(id) = v["id"].as_str() else {
        return;
    };
    match v["live"]["status"].as_str() {
        Some("reserved") => {
            let r = &v["live"]["reservation"];
            let (Some(agent), Some(lease)) = (r["agent_id"].as_str(), r["reservation_id"].as_str())
            else {
                return;
            };
            let Some(token) = tokens.get(agent) else {
                return;
            };
            tokio::time::sleep(Duration::from_millis(100)).await;
            let accepted = client
                .post(format!("{base}/v1/tickets/{id}/accept"))
                .bearer_auth(token)
                .json(&json!({"lease_id": lease}))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if accepted {
                tokio::time::sleep(Duration::from_millis(400)).await;
                let _ = client
                    .post(format!("{base}/v1/tickets/{id}/end_call"))
                    .bearer_auth(token)
                    .json(&json!({}))
                    .send()
                    .await;
            }
        }
        Some("waiting") => {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let _ = client
                .post(format!("{base}/v1/tickets/{id}/cancel_live"))
                .bearer_auth(operator_token)
                .json(&json!({"reason": "hang-up"}))
                .send()
                .await;
        }
        _ => {}
    }
}
