//! The classifier's offline tools behind `hotline-gateway classify | eval | train | corrections
//! export`: here rather than in `main.rs` so that they are tested like the rest of the library.
//!
//! The learning loop (README "The classifier"): an agent's correction is appended to the store's
//! corrections stream; `corrections export` (`crate::corrections`) writes it as training JSON Lines;
//! `train` fits a new model on the written examples, the out-of-scope messages and the
//! corrections; the model file is committed under `models/`, `[model] path` in the lexicon is
//! pointed at it, and the gateway picks it up when the classifier is rebuilt (start-up or reload).

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use super::model::{Example, LinearModel, MODEL_SERVICES, TrainOptions, train};
use super::normalize::normalize;
use super::{Classifier, ClassifySettings, Decision, Service};
use crate::ticket::{Source, TicketText};

/// One line of `classify` input.
#[derive(Debug, Deserialize)]
struct ClassifyInput {
    text: String,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    people_involved: Option<u32>,
    /// Earlier tickets by the same caller within the duplicate window (0 when absent).
    #[serde(default)]
    prior_calls: u32,
}

/// Classifies JSON Lines from `input` to `output`, one line out per line in, in order. A line
/// that is not valid UTF-8 or JSON of the expected shape gives `{"line": n, "error": "..."}`
/// and processing goes on. Returns (decisions, errors).
pub fn classify_lines(
    c: &Classifier,
    input: &mut dyn BufRead,
    output: &mut dyn Write,
) -> std::io::Result<(usize, usize)> {
    let mut buf = Vec::new();
    let (mut ok, mut bad) = (0, 0);
    let mut line_no = 0usize;
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        line_no += 1;
        let out = match parse_input(&buf) {
            Ok(i) => {
                let source = i.source.as_deref().map_or(Ok(Source::Citizen12345), |s| {
                    Source::parse(s).ok_or_else(|| format!("unknown source `{s}`"))
                });
                match source {
                    Ok(source) => {
                        let d = c.classify(&TicketText {
                            source,
                            title: i.title.as_deref().unwrap_or(""),
                            text: &i.text,
                            people_involved: i.people_involved,
                            prior_calls: i.prior_calls,
                        });
                        ok += 1;
                        serde_json::to_string(&d)
                    }
                    Err(e) => {
                        bad += 1;
                        serde_json::to_string(&serde_json::json!({"line": line_no, "error": e}))
                    }
                }
            }
            Err(e) => {
                bad += 1;
                serde_json::to_string(&serde_json::json!({"line": line_no, "error": e}))
            }
        };
        // Serialising plain structs and strings cannot fail; an empty object is the fallback.
        writeln!(output, "{}", out.unwrap_or_else(|_| "{}".to_owned()))?;
    }
    output.flush()?;
    Ok((ok, bad))
}

fn parse_input(buf: &[u8]) -> Result<ClassifyInput, String> {
    let line = std::str::from_utf8(buf).map_err(|_| "line is not valid UTF-8".to_owned())?;
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() {
        return Err("empty line".to_owned());
    }
    serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))
}

/// A labelled row: the project's training format, and what `corrections export` writes. Also
/// reads the development sets' `label_service` / `label_category`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabelledRow {
    /// Where it came from (a ticket id, a data-set id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The caller's words.
    pub text: String,
    /// The operator's summary, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Hotline wire name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Correct service (`legal_consultation`, `mediation`, `out_of_scope`).
    #[serde(default, alias = "label_service")]
    pub service: Option<String>,
    /// Correct category: a taxonomy name, or a development set's Chinese label.
    #[serde(default, alias = "label_category")]
    pub category: Option<String>,
}

/// Reads labelled JSON Lines; errors name the file and line.
pub fn read_rows(path: &std::path::Path) -> Result<Vec<LabelledRow>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let row: LabelledRow =
            serde_json::from_str(line).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))?;
        rows.push(row);
    }
    Ok(rows)
}

/// Maps a category label to the taxonomy: taxonomy names as they are, the development sets'
/// Chinese labels as their READMEs say; labels without a single counterpart give `None`.
pub fn map_category(label: &str, taxonomy: &[String]) -> Option<String> {
    if taxonomy.iter().any(|c| c == label) {
        return Some(label.to_owned());
    }
    let m = match label {
        "婚姻家庭" | "家庭婚姻纠纷" | "遗产继承纠纷" => "marriage_family",
        "劳动纠纷" | "劳资劳动纠纷" => "labour",
        "交通事故" | "交通事故纠纷" => "traffic",
        "债权债务" | "合同纠纷" | "抵押担保" | "经济债务纠纷" => "contract_debt",
        "刑事辩护" | "治安刑事纠纷" => "criminal",
        "房产纠纷" | "房产土地纠纷" => "housing_land",
        "侵权" | "人身损害" => "injury",
        "公司法" | "公司经营纠纷" => "business",
        "医疗纠纷" | "医疗健康纠纷" => "medical",
        "拆迁安置" => "demolition",
        "行政诉讼" => "administrative",
        "消费权益" | "消费旅游纠纷" => "consumer",
        "环境污染纠纷" => "environment",
        "社区邻里纠纷" => "neighbour",
        _ => return None,
    };
    taxonomy.iter().any(|c| c == m).then(|| m.to_owned())
}

/// What `train` needs besides the data.
#[derive(Debug, Clone)]
pub struct TrainRequest {
    /// Labelled files (every row has a service).
    pub data: Vec<std::path::PathBuf>,
    /// Files whose every row is out of scope (the government message board).
    pub out_of_scope: Vec<std::path::PathBuf>,
    /// Leave out every Nth row of the out-of-scope files (0: none), to measure on them.
    pub holdout_every: usize,
    /// A lexicon whose category terms become one-term examples of their category (category
    /// head only), so the model knows every word staff listed even if no example uses it.
    pub lexicon: Option<std::path::PathBuf>,
    /// Model settings.
    pub options: TrainOptions,
}

/// Reads the files, trains, and returns the model and a summary line per file.
pub fn train_from_files(
    req: &TrainRequest,
    settings: &ClassifySettings,
) -> Result<(LinearModel, Vec<String>), String> {
    train_without_fold(req, settings, None)
}

/// [`train_from_files`] leaving out one fold of `k`: with `Some((k, f))` the rows whose number
/// in their file is `f` modulo `k` are not trained on (cross-validation, [`super::measure`]).
pub fn train_without_fold(
    req: &TrainRequest,
    settings: &ClassifySettings,
    fold: Option<(usize, usize)>,
) -> Result<(LinearModel, Vec<String>), String> {
    let held_out = |i: usize| fold.is_some_and(|(k, f)| k > 0 && i % k == f);
    let mut examples = Vec::new();
    let mut summary = Vec::new();
    let service_index = |s: &str| MODEL_SERVICES.iter().position(|x| *x == s);
    for path in &req.data {
        let rows = read_rows(path)?;
        for (i, r) in rows.iter().enumerate() {
            if held_out(i) {
                continue;
            }
            let s = r
                .service
                .as_deref()
                .and_then(service_index)
                .ok_or_else(|| {
                    format!(
                        "{} row {}: `service` must be one of {}",
                        path.display(),
                        i + 1,
                        MODEL_SERVICES.join(", ")
                    )
                })?;
            let category = r
                .category
                .as_deref()
                .and_then(|c| map_category(c, &settings.categories))
                .filter(|_| s != 2);
            examples.push(Example {
                text: example_text(r),
                service: Some(s),
                category,
            });
        }
        summary.push(format!("{}: {} rows", path.display(), rows.len()));
    }
    for path in &req.out_of_scope {
        let rows = read_rows(path)?;
        let mut used = 0;
        for (i, r) in rows.iter().enumerate() {
            if (req.holdout_every > 0 && i % req.holdout_every == 0) || held_out(i) {
                continue;
            }
            used += 1;
            examples.push(Example {
                text: example_text(r),
                service: Some(2),
                category: None,
            });
        }
        summary.push(format!(
            "{} (all out_of_scope): {used} rows{}",
            path.display(),
            if req.holdout_every > 0 {
                format!(", every {}th row held out", req.holdout_every)
            } else {
                String::new()
            }
        ));
    }
    if let Some(path) = &req.lexicon {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let lexicon = super::Lexicon::from_toml_str(&text).map_err(|e| e.to_string())?;
        let mut n = 0;
        for (category, term) in lexicon.category_terms() {
            if settings.categories.iter().any(|c| c == category) {
                examples.push(Example {
                    text: term.to_owned(),
                    service: None,
                    category: Some(category.to_owned()),
                });
                n += 1;
            }
        }
        summary.push(format!("{} (category terms): {n} terms", path.display()));
    }
    if examples.is_empty() {
        return Err("no training rows".to_owned());
    }
    let mut options = req.options.clone();
    options.categories = settings.categories.clone();
    options.trained_on = summary.clone();
    Ok((train(&examples, &options), summary))
}

/// The text a model sees, exactly as the classifier builds it.
pub(super) fn example_text(r: &LabelledRow) -> String {
    format!(
        "{}\n{}",
        normalize(r.title.as_deref().unwrap_or("")),
        normalize(&r.text)
    )
}

/// Precision, recall and F1 of one class.
#[derive(Debug, Clone, Copy, Default)]
struct Prf {
    tp: usize,
    fp: usize,
    fn_: usize,
}

impl Prf {
    fn precision(self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }
    fn recall(self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }
    fn f1(self) -> f64 {
        ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn_)
    }
}

pub(super) fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Accuracy, macro-F1, per-class precision/recall and a confusion matrix of (gold, predicted).
pub fn report(title: &str, pairs: &[(String, String)]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if pairs.is_empty() {
        let _ = writeln!(out, "{title}: no labelled rows");
        return out;
    }
    let mut golds: Vec<&str> = pairs.iter().map(|(g, _)| g.as_str()).collect();
    golds.sort_unstable();
    golds.dedup();
    let mut all: Vec<&str> = pairs
        .iter()
        .flat_map(|(g, p)| [g.as_str(), p.as_str()])
        .collect();
    all.sort_unstable();
    all.dedup();
    let mut prf: BTreeMap<&str, Prf> = BTreeMap::new();
    let mut confusion: HashMap<(&str, &str), usize> = HashMap::new();
    for (g, p) in pairs {
        *confusion.entry((g.as_str(), p.as_str())).or_default() += 1;
        if g == p {
            prf.entry(g).or_default().tp += 1;
        } else {
            prf.entry(g).or_default().fn_ += 1;
            prf.entry(p).or_default().fp += 1;
        }
    }
    let correct = pairs.iter().filter(|(g, p)| g == p).count();
    let macro_f1 = golds
        .iter()
        .map(|g| prf.get(g).copied().unwrap_or_default().f1())
        .sum::<f64>()
        / golds.len() as f64;
    let _ = writeln!(
        out,
        "{title}: {} rows, accuracy {:.3}, macro-F1 {:.3} (over the {} gold classes)",
        pairs.len(),
        ratio(correct, pairs.len()),
        macro_f1,
        golds.len()
    );
    let _ = writeln!(
        out,
        "  {:<20} {:>9} {:>9} {:>9} {:>6}",
        "class", "precision", "recall", "F1", "gold"
    );
    for c in &all {
        let p = prf.get(c).copied().unwrap_or_default();
        let _ = writeln!(
            out,
            "  {:<20} {:>9.3} {:>9.3} {:>9.3} {:>6}",
            c,
            p.precision(),
            p.recall(),
            p.f1(),
            p.tp + p.fn_
        );
    }
    let _ = writeln!(out, "  confusion (rows gold, columns predicted):");
    let short = |c: &str| c.chars().take(6).collect::<String>();
    let mut header = format!("  {:<20}", "");
    for c in &all {
        let _ = write!(header, " {:>6}", short(c));
    }
    let _ = writeln!(out, "{header}");
    for g in &golds {
        let mut line = format!("  {g:<20}");
        for p in &all {
            let _ = write!(
                line,
                " {:>6}",
                confusion.get(&(*g, *p)).copied().unwrap_or(0)
            );
        }
        let _ = writeln!(out, "{line}");
    }
    out
}

/// Classifies every labelled row and reports service and category quality. Rows without a
/// hotline of their own are classified as coming from `default_source`.
pub fn evaluate(
    c: &Classifier,
    rows: &[LabelledRow],
    default_source: Source,
    taxonomy: &[String],
) -> String {
    let (service_pairs, category_pairs) = evaluate_pairs(c, rows, default_source, taxonomy, None);
    let mut out = format!("model {}\n", c.model());
    out.push_str(&report("service", &service_pairs));
    out.push_str(&report("category (mapped labels)", &category_pairs));
    out
}

/// A `(gold, predicted)` label pair.
pub type Pair = (String, String);

/// `(gold, predicted)` pairs of service and of mapped category for every labelled row; with
/// `gold_service`, every row's gold service is that one (a file of department messages).
pub fn evaluate_pairs(
    c: &Classifier,
    rows: &[LabelledRow],
    default_source: Source,
    taxonomy: &[String],
    gold_service: Option<Service>,
) -> (Vec<Pair>, Vec<Pair>) {
    let mut service_pairs = Vec::new();
    let mut category_pairs = Vec::new();
    for r in rows {
        let source = r
            .source
            .as_deref()
            .and_then(Source::parse)
            .unwrap_or(default_source);
        let d: Decision = c.classify(&TicketText {
            source,
            title: r.title.as_deref().unwrap_or(""),
            text: &r.text,
            people_involved: None,
            prior_calls: 0,
        });
        if let Some(s) = gold_service.or_else(|| r.service.as_deref().and_then(Service::parse)) {
            service_pairs.push((s.as_str().to_owned(), d.service.as_str().to_owned()));
        }
        if gold_service.is_none()
            && let Some(g) = r
                .category
                .as_deref()
                .and_then(|g| map_category(g, taxonomy))
        {
            category_pairs.push((g, d.category.clone()));
        }
    }
    (service_pairs, category_pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_counts_what_it_should() {
        let p = |g: &str, q: &str| (g.to_owned(), q.to_owned());
        let r = report("t", &[p("a", "a"), p("a", "b"), p("b", "b"), p("b", "b")]);
        assert!(r.contains("accuracy 0.750"), "{r}");
        // a: P 1, R .5, F1 .667; b: P .667, R 1, F1 .8 → macro .733
        assert!(r.contains("macro-F1 0.733"), "{r}");
    }

    #[test]
    fn dataset_labels_map_onto_the_taxonomy() {
        let tax: Vec<String> = ["labour", "contract_debt", "other"]
            .map(String::from)
            .to_vec();
        assert_eq!(map_category("劳动纠纷", &tax).as_deref(), Some("labour"));
        assert_eq!(
            map_category("抵押担保", &tax).as_deref(),
            Some("contract_debt")
        );
        assert_eq!(map_category("labour", &tax).as_deref(), Some("labour"));
        assert_eq!(map_category("知识产权", &tax), None);
        assert_eq!(map_category("婚姻家庭", &tax), None);
    }
}
