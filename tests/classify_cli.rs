//! The classifier's command line as operators and the CI use it: `classify` (JSON Lines, bad
//! lines answered and skipped), `eval` and `train`.

use std::io::Write;
use std::process::{Command, Stdio};

fn gateway() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hotline-gateway"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

#[test]
fn classify_answers_every_line_in_order_and_reports_bad_ones() {
    let input = concat!(
        "{\"text\":\"老板拖欠工资三个月，双方吵起来了，请求调解。\",\"source\":\"110\",\"people_involved\":25}\n",
        "this is not json\n",
        "\n",
        "{\"text\":\"请问离婚后孩子的抚养权怎么判？\",\"source\":\"12348\",\"title\":\"咨询\"}\n",
        "{\"text\":\"x\",\"source\":\"999\"}\n",
        "{\"title\":\"no text\"}\n",
        "{\"text\":\"\"}\n",
    );
    let mut child = gateway()
        .arg("classify")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    // Some lines were bad: exit 1, but every line was answered.
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 7, "{lines:?}");
    assert_eq!(lines[0]["service"], "mediation", "{}", lines[0]);
    assert_eq!(lines[0]["category"], "labour");
    assert_eq!(lines[0]["warning_level"], "orange");
    assert!(lines[0]["reasons"].as_array().unwrap().len() >= 2);
    assert_eq!(lines[1]["line"], 2);
    assert!(lines[1]["error"].as_str().unwrap().contains("invalid JSON"));
    assert_eq!(lines[2]["error"], "empty line");
    assert_eq!(lines[3]["service"], "legal_consultation", "{}", lines[3]);
    assert!(
        lines[4]["error"]
            .as_str()
            .unwrap()
            .contains("unknown source")
    );
    assert!(lines[5]["error"].as_str().unwrap().contains("text"));
    assert_eq!(lines[6]["service"], "triage");
}

#[test]
fn classify_reads_an_optional_prior_calls_count() {
    let input = concat!(
        "{\"text\":\"楼上装修噪音很大，影响孩子写作业\",\"prior_calls\":3}\n",
        "{\"text\":\"楼上装修噪音很大，影响孩子写作业\"}\n",
        "{\"text\":\"楼上装修噪音很大\",\"prior_calls\":-1}\n",
    );
    let mut child = gateway()
        .arg("classify")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["warning_level"], "yellow", "{}", lines[0]);
    assert!(
        lines[0]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "该来电人近期已来电3次→yellow"),
        "{}",
        lines[0]
    );
    // Absent means no earlier calls.
    assert_eq!(lines[1]["warning_level"], "none", "{}", lines[1]);
    // A negative count is a bad line, answered with an error.
    assert!(
        lines[2]["error"].as_str().unwrap().contains("invalid JSON"),
        "{}",
        lines[2]
    );
}

#[test]
fn eval_prints_accuracy_macro_f1_per_class_figures_and_a_confusion_matrix() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("dev.jsonl");
    std::fs::write(
        &data,
        concat!(
            "{\"text\":\"请问离婚后孩子的抚养权怎么判？\",\"service\":\"legal_consultation\",\"category\":\"婚姻家庭\"}\n",
            "{\"text\":\"邻居家装修噪音很大，双方吵起来了，请求调解\",\"label_service\":\"mediation\",\"label_category\":\"社区邻里纠纷\"}\n",
            "{\"text\":\"小区门口的路灯坏了，请有关部门修理\",\"service\":\"out_of_scope\"}\n",
        ),
    )
    .unwrap();
    let out = gateway()
        .args(["eval", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "service: 3 rows, accuracy",
        "macro-F1",
        "precision",
        "recall",
        "confusion (rows gold, columns predicted)",
        "category (mapped labels): 2 rows",
        "marriage_family",
    ] {
        assert!(text.contains(needle), "{needle} missing in\n{text}");
    }
}

#[test]
fn train_writes_a_model_the_classifier_loads() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("train.jsonl");
    let oos = dir.path().join("oos.jsonl");
    std::fs::write(
        &data,
        concat!(
            "{\"text\":\"请问欠薪怎么起诉\",\"service\":\"legal_consultation\",\"category\":\"labour\"}\n",
            "{\"text\":\"双方因欠薪吵起来请求调解\",\"service\":\"mediation\",\"category\":\"labour\"}\n",
        ),
    )
    .unwrap();
    std::fs::write(&oos, "{\"text\":\"路灯坏了请有关部门维修\"}\n").unwrap();
    let model = dir.path().join("models/tiny-1.hlm");
    let out = gateway()
        .args(["train", "--epochs", "3", "--data"])
        .arg(&data)
        .arg("--out-of-scope")
        .arg(&oos)
        .arg("--out")
        .arg(&model)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let m = hotline_gateway::classify::LinearModel::load(&model).unwrap();
    assert_eq!(m.version(), "tiny-1");
    assert_eq!(m.header().trained_on.len(), 2);

    // A row without a service is refused, naming the file and row.
    std::fs::write(&data, "{\"text\":\"没有标签\"}\n").unwrap();
    let out = gateway()
        .args(["train", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(&model)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("row 1"));
}

#[test]
fn eval_reports_the_danger_set_per_kind_and_split_and_cross_validates() {
    let out = gateway()
        .args(["eval", "--danger", "data/danger/danger.jsonl"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "danger set: 340 rows",
        "[held] threat",
        "[held2] group_action",
        "[tune2] vulnerable",
        "[tune] self_harm",
        "[all] harmless",
        "(traditional)",
        "(all dangerous)",
        "raised high",
    ] {
        assert!(text.contains(needle), "{needle} missing in\n{text}");
    }

    // Cross-validation on a small training file, with a department file and FILE@HOTLINE.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("train.jsonl");
    let oos = dir.path().join("oos.jsonl");
    let mut rows = String::new();
    for i in 0..6 {
        rows.push_str(&format!(
            "{{\"text\":\"老板拖欠工资{i}个月，请问怎么办？\",\"service\":\"legal_consultation\",\"category\":\"labour\"}}\n"
        ));
        rows.push_str(&format!(
            "{{\"text\":\"邻居装修噪音{i}天，双方吵起来了，请求调解\",\"service\":\"mediation\",\"category\":\"neighbour\"}}\n"
        ));
    }
    std::fs::write(&data, rows).unwrap();
    std::fs::write(
        &oos,
        "{\"text\":\"路灯坏了请有关部门维修\"}\n{\"text\":\"社保卡怎么办理\"}\n{\"text\":\"公交站台太远\"}\n",
    )
    .unwrap();
    let out = gateway()
        .args(["eval", "--cv-folds", "3", "--cv-data"])
        .arg(&data)
        .arg("--cv-out-of-scope")
        .arg(&oos)
        .arg("--out-of-scope")
        .arg(format!("{}@12345", oos.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "3-fold cross-validation",
        "cv service: 15 rows",
        "cv balanced service accuracy",
        "cv category: 12 rows",
        "balanced service accuracy over the files above",
    ] {
        assert!(text.contains(needle), "{needle} missing in\n{text}");
    }
    // A corrections export: what the classifier would still get corrected, by category and
    // kind. The first row's label agrees with the classifier, the second is moved to a mediator
    // and re-categorised, the third is an unusable label.
    let corrections = dir.path().join("corrections.jsonl");
    std::fs::write(
        &corrections,
        concat!(
            "{\"id\":\"correction:1\",\"text\":\"请问离婚后孩子的抚养权怎么判？\",\"source\":\"12348\",\"service\":\"legal_consultation\",\"category\":\"marriage_family\"}\n",
            "{\"id\":\"correction:2\",\"text\":\"请问离婚后孩子的抚养权怎么判？\",\"source\":\"12348\",\"service\":\"mediation\",\"category\":\"neighbour\"}\n",
            "{\"id\":\"correction:3\",\"text\":\"不知道\",\"service\":\"triage\"}\n",
        ),
    )
    .unwrap();
    let out = gateway()
        .args(["eval", "--corrections"])
        .arg(&corrections)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("corrections: 2 rows (1 without a usable service skipped)"),
        "{text}"
    );
    assert!(text.contains("1/2 (50.0 %)"), "{text}");
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("marriage_family"))
        .unwrap_or_default();
    let numbers: Vec<&str> = line.split_whitespace().collect();
    // category, rows, corrected, (share), recategorised, lawyer→mediator, mediator→lawyer, other
    assert_eq!(
        numbers,
        [
            "marriage_family",
            "2",
            "1",
            "(",
            "50.0",
            "%)",
            "1",
            "1",
            "0",
            "0"
        ],
        "{text}"
    );

    // Nothing to measure is a mistake, said so.
    let out = gateway().args(["eval"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("--danger"), "{err}");
}
