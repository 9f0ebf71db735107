//! Metrics after a scripted sequence of actions, asserted to the exact value. This file is its
//! own test binary, so the process-wide counters start from zero.

mod support;

use serde_json::{Value, json};
use support::{ADMIN, PARTNER, RedisServer, SUPERVISOR, TestApp, ticket};

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_count_exactly_what_happened() {
    let redis = RedisServer::start();
    let extra = format!(
        "\n[[auth.tokens]]\nname = \"agent m9\"\nrole = \"agent\"\nagent_id = \"m9\"\nsha256 = \"{}\"\n",
        hotline_gateway::auth::digest_hex("t-m9")
    );
    let app = TestApp::spawn_with(&redis, &extra).await;
    let res = app
        .http
        .put(format!("{}/v1/agents/m9", app.base))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "调解员", "kind": "mediator", "regions": ["320999"], "tier": "grid", "capacity": 5, "status": "available"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);

    let mut ids = Vec::new();
    for i in 0..3 {
        let mut t = ticket(&format!("MX-{i}"));
        t["region"]["code"] = json!("320999");
        // Three different callers: a repeat caller would be raised a level (tested elsewhere).
        t["caller"]["phone"] = json!(format!("1381234800{i}"));
        let v: Value = app
            .post("/v1/tickets", PARTNER, &t)
            .await
            .json()
            .await
            .expect("json");
        ids.push(v["id"].as_str().expect("id").to_string());
    }
    // A faithful retry and an invalid ticket.
    let mut again = ticket("MX-0");
    again["region"]["code"] = json!("320999");
    assert_eq!(app.post("/v1/tickets", PARTNER, &again).await.status(), 200);
    let mut bad = ticket("MX-bad");
    bad["region"]["code"] = json!("999");
    assert_eq!(app.post("/v1/tickets", PARTNER, &bad).await.status(), 422);

    // The agent claims the oldest, accepts and resolves it.
    let claim: Value = app
        .post("/v1/agents/m9/claim", "t-m9", &json!({}))
        .await
        .json()
        .await
        .expect("json");
    let id = claim["ticket"]["id"].as_str().expect("id").to_string();
    assert_eq!(id, ids[0]);
    for (action, body) in [
        ("accept", json!({"lease_id": claim["lease_id"]})),
        (
            "resolve",
            json!({"outcome": "mediated", "summary": "调解成功"}),
        ),
    ] {
        let res = app
            .post(&format!("/v1/tickets/{id}/{action}"), "t-m9", &body)
            .await;
        assert_eq!(res.status(), 200);
    }
    // A supervisor transfers one to the lawyers and escalates the other.
    let res = app
        .post(
            &format!("/v1/tickets/{}/transfer", ids[1]),
            SUPERVISOR,
            &json!({"service": "legal_consultation", "reason": "咨询"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = app
        .post(
            &format!("/v1/tickets/{}/escalate", ids[2]),
            SUPERVISOR,
            &json!({"reason": "网格无法化解"}),
        )
        .await;
    assert_eq!(res.status(), 200);

    let text = app.get("/metrics", "").await.text().await.expect("text");
    let q = "mediation.320999.labour";
    let expect = [
        (
            format!(r#"hotline_queue_events_total{{queue="{q}",event="arrival"}}"#),
            3.0,
        ),
        (
            format!(r#"hotline_queue_events_total{{queue="{q}",event="claim"}}"#),
            1.0,
        ),
        (
            format!(r#"hotline_queue_events_total{{queue="{q}",event="resolution"}}"#),
            1.0,
        ),
        (
            format!(r#"hotline_queue_events_total{{queue="{q}",event="transfer"}}"#),
            1.0,
        ),
        (
            format!(r#"hotline_queue_events_total{{queue="{q}",event="escalation"}}"#),
            1.0,
        ),
        (
            format!(r#"hotline_queue_wait_seconds_count{{queue="{q}"}}"#),
            1.0,
        ),
        (
            format!(r#"hotline_queue_handle_seconds_count{{queue="{q}"}}"#),
            1.0,
        ),
        (
            format!(r#"hotline_queue_depth{{queue="{q}",level="none"}}"#),
            1.0,
        ),
        (
            r#"hotline_queue_depth{queue="legal.320999",level="none"}"#.to_string(),
            1.0,
        ),
        (
            r#"hotline_tickets_received_total{source="12345",channel="phone",outcome="created"}"#
                .to_string(),
            3.0,
        ),
        (
            r#"hotline_tickets_received_total{source="12345",channel="phone",outcome="duplicate"}"#
                .to_string(),
            1.0,
        ),
        (
            r#"hotline_tickets_rejected_total{reason="invalid"}"#.to_string(),
            1.0,
        ),
        (
            r#"hotline_ticket_actions_total{action="resolve"}"#.to_string(),
            1.0,
        ),
        (
            r#"hotline_redis_latency_seconds_count{op="ingest"}"#.to_string(),
            4.0,
        ),
    ];
    for (series, want) in expect {
        assert_eq!(value(&text, &series), Some(want), "{series}");
    }
}
