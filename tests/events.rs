//! `GET /v1/events`: live, resumable, and filtered to the caller's regions.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{PARTNER, RedisServer, SUPERVISOR, SseReader, TestApp, ticket};

async fn open(app: &TestApp, token: &str, query: &str, last: Option<&str>) -> SseReader {
    let mut req = app
        .http
        .get(format!("{}/v1/events{query}", app.base))
        .bearer_auth(token);
    if let Some(id) = last {
        req = req.header("last-event-id", id);
    }
    let res = req.send().await.expect("sent");
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/event-stream")
    );
    SseReader {
        res,
        buf: String::new(),
    }
}

/// The raw `id:` of the next event named `name`.
async fn next_with_id(r: &mut SseReader, name: &str) -> (serde_json::Value, String) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        while let Some(end) = r.buf.find("\n\n") {
            let block: String = r.buf.drain(..end + 2).collect();
            let (mut n, mut id, mut data) = (String::new(), String::new(), String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    n = v.trim().into();
                } else if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().into();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                }
            }
            if n == name {
                return (serde_json::from_str(&data).expect("json"), id);
            }
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        assert!(!left.is_zero(), "no {name} event");
        match tokio::time::timeout(left, r.res.chunk()).await {
            Ok(Ok(Some(b))) => r.buf.push_str(&String::from_utf8_lossy(&b)),
            _ => panic!("no {name} event"),
        }
    }
}

#[tokio::test]
async fn events_arrive_live_and_a_reconnect_resumes_without_gaps() {
    let redis = RedisServer::start();
    let app = TestApp::spawn(&redis).await;
    // The county exists before the dashboard connects.
    app.post("/v1/tickets", PARTNER, &ticket("EV-0")).await;
    let mut live = open(&app, SUPERVISOR, "", None).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let first: serde_json::Value = app
        .post("/v1/tickets", PARTNER, &ticket("EV-1"))
        .await
        .json()
        .await
        .expect("json");
    let (event, id) = next_with_id(&mut live, "ticket.created").await;
    assert_eq!(event["id"], first["id"]);
    assert!(id.starts_with("320831:"), "{id}");
    drop(live);

    // While the dashboard is away, two more tickets arrive.
    let a: serde_json::Value = app
        .post("/v1/tickets", PARTNER, &ticket("EV-2"))
        .await
        .json()
        .await
        .expect("json");
    let b: serde_json::Value = app
        .post("/v1/tickets", PARTNER, &ticket("EV-3"))
        .await
        .json()
        .await
        .expect("json");
    let mut resumed = open(&app, SUPERVISOR, "", Some(&id)).await;
    let (e1, _) = next_with_id(&mut resumed, "ticket.created").await;
    let (e2, _) = next_with_id(&mut resumed, "ticket.created").await;
    assert_eq!(
        [e1["id"].clone(), e2["id"].clone()],
        [a["id"].clone(), b["id"].clone()]
    );
}

#[tokio::test]
async fn events_are_filtered_to_the_callers_regions_and_tokens_may_come_in_the_query() {
    let redis = RedisServer::start();
    let extra = format!(
        "\n[[auth.tokens]]\nname = \"supervisor of 110101\"\nrole = \"supervisor\"\nregions = [\"110101\"]\nsha256 = \"{}\"\n",
        hotline_gateway::auth::digest_hex("t-sup-bj")
    );
    let app = TestApp::spawn_with(&redis, &extra).await;
    let mut elsewhere = ticket("EV-BJ-0");
    elsewhere["region"]["code"] = json!("110101");
    app.post("/v1/tickets", PARTNER, &elsewhere).await;
    app.post("/v1/tickets", PARTNER, &ticket("EV-JS-0")).await;

    let res = app
        .http
        .get(format!("{}/v1/events?access_token=t-sup-bj", app.base))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
    let mut bj = SseReader {
        res,
        buf: String::new(),
    };
    assert_eq!(
        app.http
            .get(format!("{}/v1/events?region=3208", app.base))
            .bearer_auth("t-sup-bj")
            .send()
            .await
            .expect("sent")
            .status(),
        403
    );
    // Partner systems follow the events of their regions too (signed: tests/partners.rs).
    assert_eq!(app.get("/v1/events", PARTNER).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.post("/v1/tickets", PARTNER, &ticket("EV-JS-1")).await;
    let mut beijing = ticket("EV-BJ-1");
    beijing["region"]["code"] = json!("110101");
    let mine: serde_json::Value = app
        .post("/v1/tickets", PARTNER, &beijing)
        .await
        .json()
        .await
        .expect("json");
    let (_, event) = bj
        .next_of(&["ticket.created"], Duration::from_secs(10))
        .await;
    assert_eq!(
        event["id"], mine["id"],
        "the 320831 ticket is not shown to a 110101 supervisor"
    );
}

/// Issue #16: the first event of a county new to an open stream arrived up to 5 s late (the
/// stream learnt of counties by listing the registry every 5 s). With the deployment's counties
/// configured, a stream reads every county it may see from the moment it opens, so the first
/// ticket ever of a county is delivered as promptly as any other. The bound is 2 s, not the
/// milliseconds it takes: the test machine is a loaded 2-core CI box, and the old delay was 5 s.
#[tokio::test]
async fn the_first_event_of_a_county_new_to_an_open_stream_arrives_promptly() {
    let redis = RedisServer::start();
    let app = TestApp::spawn(&redis).await;
    support::create_ticket(&app, PARTNER, &ticket("F-0")).await;
    let mut stream = open(&app, SUPERVISOR, "", None).await;
    let mut first = ticket("F-1");
    first["region"]["code"] = json!("320324");
    let sent = std::time::Instant::now();
    let created = support::create_ticket(&app, PARTNER, &first).await;
    let (_, event) = stream
        .next_of(&["ticket.created"], Duration::from_secs(10))
        .await;
    let took = sent.elapsed();
    assert_eq!(event["id"], created["id"], "{event}");
    assert!(
        took < Duration::from_secs(2),
        "the first event of county 320324 took {took:?}"
    );
}
