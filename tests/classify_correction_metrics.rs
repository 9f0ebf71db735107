//! The corrections metric of issue 17: tickets whose labels an agent corrected, by the category
//! the ticket had and the kind of change, so a retrained model's effect can be watched (divided
//! by `hotline_classifications_total` of the same category it is a share). Its own test
//! binary, so the process-wide counters start from zero.

mod support;

use serde_json::json;
use support::{PARTNER, RedisServer, SUPERVISOR, TestApp, act, create_ticket, ticket};

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn corrections_are_counted_by_category_and_kind() {
    let redis = RedisServer::start();
    let app = TestApp::spawn(&redis).await;
    let mut ids = Vec::new();
    for i in 0..2 {
        let mut t = ticket(&format!("CM-{i}"));
        t["caller"]["phone"] = json!(format!("1391234800{i}"));
        let v = create_ticket(&app, PARTNER, &t).await;
        assert_eq!(v["classification"]["service"], "mediation", "{v}");
        assert_eq!(v["classification"]["category"], "labour", "{v}");
        ids.push(v["id"].as_str().expect("id").to_owned());
    }
    // One moved from a mediator to a lawyer, one re-categorised (same service).
    let (status, _) = act(
        &app,
        &ids[0],
        "transfer",
        SUPERVISOR,
        json!({"service": "legal_consultation", "reason": "只想咨询劳动仲裁程序"}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = act(
        &app,
        &ids[1],
        "transfer",
        SUPERVISOR,
        json!({"category": "contract_debt", "reason": "其实是借款纠纷"}),
    )
    .await;
    assert_eq!(status, 200);

    let text = app.get("/metrics", "").await.text().await.expect("text");
    let series = |kind: &str| {
        format!("hotline_classifier_corrections_total{{category=\"labour\",kind=\"{kind}\"}}")
    };
    assert_eq!(
        value(&text, &series("mediator_to_lawyer")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(value(&text, &series("recategorised")), Some(1.0), "{text}");
    assert_eq!(value(&text, &series("lawyer_to_mediator")), None, "{text}");
    assert!(
        text.contains("# HELP hotline_classifier_corrections_total"),
        "{text}"
    );
    app.stop().await;
}
