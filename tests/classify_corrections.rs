//! The learning loop: agents' corrections in the Redis stream → `corrections export` → `train`
//! → a model file the classifier loads, whose decisions follow the corrections.

mod support;

use hotline_gateway::classify::tools::{TrainRequest, read_rows, train_from_files};
use hotline_gateway::classify::{Classifier, Lexicon, model::TrainOptions};
use hotline_gateway::config::Settings;
use hotline_gateway::corrections::{CORRECTIONS_STREAM, export_corrections};
use hotline_gateway::ticket::{Source, TicketText};
use support::RedisServer;

fn xadd(con: &mut redis::Connection, fields: &[(&str, &str)]) {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(CORRECTIONS_STREAM).arg("*");
    for (k, v) in fields {
        cmd.arg(*k).arg(*v);
    }
    let _: String = cmd.query(con).unwrap();
}

#[test]
fn corrections_are_exported_and_a_model_trained_on_them_follows_them() {
    let redis = RedisServer::start();
    let mut con = redis.conn();
    // A kind of ticket nothing in the repository has seen: invented place names.
    for i in 0..30 {
        let text = format!("犇淼鑫骉村第{i}组两户为晒场吵起来了");
        let ticket = format!("320831-{i:08}");
        xadd(
            &mut con,
            &[
                ("ticket_id", &ticket),
                ("text", &text),
                ("source", "110"),
                ("service", "mediation"),
                ("category", "neighbour"),
                ("actor", "agent-7"),
                ("at_ms", "1764000000000"),
            ],
        );
    }
    // Re-categorised twice: the newest label wins.
    xadd(
        &mut con,
        &[
            ("ticket_id", "320831-00000000"),
            ("text", "犇淼鑫骉村第0组两户为晒场吵起来了"),
            ("service", "mediation"),
            ("category", "neighbour"),
        ],
    );
    // Unusable: no text; triage is not a label.
    xadd(&mut con, &[("ticket_id", "x-1"), ("service", "mediation")]);
    xadd(
        &mut con,
        &[
            ("ticket_id", "x-2"),
            ("text", "不知道"),
            ("service", "triage"),
        ],
    );

    let dir = tempfile::tempdir().unwrap();
    let exported = dir.path().join("corrections.jsonl");
    let mut file = std::fs::File::create(&exported).unwrap();
    let stats = export_corrections(&redis.url(), CORRECTIONS_STREAM, "-", &mut file).unwrap();
    assert_eq!(stats.written, 30);
    assert_eq!(stats.skipped, 2);
    let rows = read_rows(&exported).unwrap();
    assert!(
        rows.iter()
            .all(|r| r.service.as_deref() == Some("mediation"))
    );
    assert_eq!(rows[1].source.as_deref(), Some("110"));
    // The newest correction of ticket 0 had no source.
    assert_eq!(rows[0].source, None);

    // Train on the corrections and a few rows of the other services.
    let base = dir.path().join("base.jsonl");
    std::fs::write(
        &base,
        concat!(
            "{\"text\":\"请问欠薪怎么起诉\",\"service\":\"legal_consultation\",\"category\":\"labour\"}\n",
            "{\"text\":\"请问离婚孩子归谁\",\"service\":\"legal_consultation\",\"category\":\"marriage_family\"}\n",
            "{\"text\":\"路灯坏了请有关部门维修\",\"service\":\"out_of_scope\"}\n",
        ),
    )
    .unwrap();
    let settings = Settings::load(None).unwrap().classify;
    let req = TrainRequest {
        data: vec![base, exported],
        out_of_scope: Vec::new(),
        holdout_every: 0,
        lexicon: None,
        options: TrainOptions {
            version: "loop-test-1".into(),
            buckets: 1 << 14,
            epochs: 20,
            ..TrainOptions::default()
        },
    };
    let (model, _) = train_from_files(&req, &settings).unwrap();
    let model_path = dir.path().join("loop-test-1.hlm");
    std::fs::write(&model_path, model.to_bytes()).unwrap();

    // Ship: point the lexicon at the new model and rebuild the classifier (what a reload does).
    let shipped = std::fs::read_to_string(&settings.lexicon).unwrap();
    let lexicon = shipped.replace(
        "path = \"models/ngram-lr-2026.12-2.hlm\"",
        &format!("path = \"{}\"", model_path.display()),
    );
    let c = Classifier::from_lexicon(Lexicon::from_toml_str(&lexicon).unwrap(), &settings).unwrap();
    assert!(c.model().ends_with("+loop-test-1"), "{}", c.model());
    let d = c.classify(&TicketText {
        source: Source::Citizen12345,
        title: "",
        text: "犇淼鑫骉村第99组两户为晒场吵起来了",
        people_involved: None,
        prior_calls: 0,
    });
    assert!(
        d.reasons.iter().any(|r| r.starts_with("模型倾向调解")),
        "{d:?}"
    );
    assert_eq!(d.category, "neighbour", "{d:?}");
}
