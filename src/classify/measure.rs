//! The evaluation protocol of issue 17, behind `hotline-gateway eval`: figures that say how well
//! the classifier generalises rather than how well it fits the rows it was tuned on.
//!
//! - **Danger** ([`danger_report`]): the project's own labelled danger set (`data/danger`), per
//!   kind, recall at or above the expected level, tickets sent back, and harmless tickets raised,
//!   for the `tune` rows (rules may be improved by reading them) and the `held` rows (only these
//!   aggregates are ever read) apart.
//! - **Cross-validation** ([`cross_validate`]): the training files cut into `k` folds by row
//!   number; for each fold a model is trained on the others (in memory) and measured on it, so
//!   the figures come from rows the model never saw.
//!
//! The development sets are measured by [`super::tools::evaluate`]; they are read once per
//! change to report, never to tune by hand.

use std::fmt::Write as _;

use serde::Deserialize;

use super::tools::{TrainRequest, map_category, ratio, read_rows, report, train_without_fold};
use super::{Classifier, ClassifySettings, Lexicon, Service};
use crate::ticket::{Source, TicketText};

/// One row of the danger set (`data/danger/danger.jsonl`).
#[derive(Debug, Clone, Deserialize)]
pub struct DangerRow {
    /// Row id, e.g. `danger-012`.
    pub id: String,
    /// The ticket text.
    pub text: String,
    /// threat, self_harm, group_action, vulnerable, repeated_quarrel, harmless.
    pub kind: String,
    /// The lowest warning level the ticket should get (`none` for harmless rows).
    pub level: String,
    /// Hotline wire name (12345 when absent).
    #[serde(default)]
    pub source: Option<String>,
    /// `tune` or `held`.
    #[serde(default)]
    pub split: Option<String>,
    /// `simplified` or `traditional`.
    #[serde(default)]
    pub script: Option<String>,
}

/// Reads the danger set; errors name the file and line.
pub fn read_danger(path: &std::path::Path) -> Result<Vec<DangerRow>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        rows.push(
            serde_json::from_str(line).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))?,
        );
    }
    Ok(rows)
}

/// Counts for one group of danger rows.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    rows: usize,
    /// Rated at or above the expected level (dangerous rows), or left at the lowest level
    /// (harmless rows).
    right: usize,
    /// Sent back out of scope.
    sent_back: usize,
    /// Harmless rows raised to the second level from the bottom or above (red and orange on
    /// the default scale): a false alarm a desk would act on.
    raised_high: usize,
}

/// Recall and false alarms per kind on the danger set, for the `tune` and `held` rows apart and
/// together. `levels` is the warning scale, highest first.
pub fn danger_report(c: &Classifier, rows: &[DangerRow], levels: &[String]) -> String {
    let rank = |l: &str| levels.iter().position(|x| x == l).unwrap_or(levels.len());
    let lowest = levels.len().saturating_sub(1);
    let mut kinds: Vec<&str> = rows.iter().map(|r| r.kind.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    // (split, kind) → tally; split "all" too, and the traditional rows as a kind of their own.
    let mut tallies: std::collections::BTreeMap<(String, String), Tally> = Default::default();
    for r in rows {
        let source = r
            .source
            .as_deref()
            .and_then(Source::parse)
            .unwrap_or(Source::Citizen12345);
        let d = c.classify(&TicketText {
            source,
            title: "",
            text: &r.text,
            people_involved: None,
            prior_calls: 0,
        });
        let got = rank(&d.warning_level);
        let want = rank(&r.level);
        let harmless = want >= lowest;
        let right = if harmless { got >= lowest } else { got <= want };
        let mut splits = vec!["all".to_owned()];
        if let Some(s) = r.split.as_ref().filter(|s| *s != "all") {
            splits.push(s.clone());
        }
        let mut groups = vec![r.kind.clone()];
        if r.script.as_deref() == Some("traditional") {
            groups.push("(traditional)".to_owned());
        }
        if !harmless {
            groups.push("(all dangerous)".to_owned());
        }
        for g in &groups {
            for s in &splits {
                let t = tallies.entry((s.clone(), g.clone())).or_default();
                t.rows += 1;
                t.right += usize::from(right);
                t.sent_back += usize::from(d.service == Service::OutOfScope);
                t.raised_high += usize::from(harmless && got + 1 < lowest);
            }
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "danger set: {} rows; dangerous rows: share rated at or above their level; harmless rows: share left at `{}`, and raised to `{}` or above",
        rows.len(),
        levels.get(lowest).map_or("", String::as_str),
        levels
            .get(lowest.saturating_sub(2))
            .map_or("", String::as_str),
    );
    let mut splits: Vec<&str> = tallies.keys().map(|(s, _)| s.as_str()).collect();
    splits.sort_unstable();
    splits.dedup();
    for split in splits {
        let _ = writeln!(
            out,
            "  [{split}] {:<18} {:>5} {:>14} {:>10} {:>12}",
            "kind", "rows", "right", "sent back", "raised high"
        );
        let mut groups: Vec<&str> = kinds.clone();
        groups.extend(["(traditional)", "(all dangerous)"]);
        for g in groups {
            let Some(t) = tallies.get(&(split.to_owned(), g.to_owned())) else {
                continue;
            };
            let _ = writeln!(
                out,
                "  [{split}] {:<18} {:>5} {:>6} ({:>5.1} %) {:>10} {:>12}",
                g,
                t.rows,
                t.right,
                100.0 * ratio(t.right, t.rows),
                t.sent_back,
                if g == "harmless" {
                    t.raised_high.to_string()
                } else {
                    "-".to_owned()
                }
            );
        }
    }
    out
}

/// What [`cross_validate`] reads besides the settings.
#[derive(Debug, Clone)]
pub struct CrossValidation {
    /// The training files and options, as `train` takes them.
    pub train: TrainRequest,
    /// The lexicon whose `[model]` weights and rules the fold models are used with.
    pub lexicon: Lexicon,
    /// Number of folds (at least 2).
    pub folds: usize,
    /// Hotline assumed for rows without a `source` of their own.
    pub default_source: Source,
}

/// k-fold cross-validation of the trained model with the lexicon: for each fold, a model
/// trained on the other folds (in memory), measured on the fold's rows; service and category
/// figures over all folds, and the balanced service accuracy (mean recall over the services
/// present). The out-of-scope files count as `out_of_scope` rows, as in training.
pub fn cross_validate(cv: &CrossValidation, settings: &ClassifySettings) -> Result<String, String> {
    if cv.folds < 2 {
        return Err("--cv-folds must be at least 2".to_owned());
    }
    let mut files = Vec::new();
    for path in &cv.train.data {
        files.push((read_rows(path)?, false));
    }
    for path in &cv.train.out_of_scope {
        files.push((read_rows(path)?, true));
    }
    let mut service_pairs = Vec::new();
    let mut category_pairs = Vec::new();
    for fold in 0..cv.folds {
        let (model, _) = train_without_fold(&cv.train, settings, Some((cv.folds, fold)))?;
        let c = Classifier::with_model(cv.lexicon.clone(), settings, model)
            .map_err(|e| e.to_string())?;
        for (rows, all_out) in &files {
            for (i, r) in rows.iter().enumerate() {
                if i % cv.folds != fold
                    || (cv.train.holdout_every > 0 && *all_out && i % cv.train.holdout_every == 0)
                {
                    continue;
                }
                let source = r
                    .source
                    .as_deref()
                    .and_then(Source::parse)
                    .unwrap_or(cv.default_source);
                let d = c.classify(&TicketText {
                    source,
                    title: r.title.as_deref().unwrap_or(""),
                    text: &r.text,
                    people_involved: None,
                    prior_calls: 0,
                });
                let gold = if *all_out {
                    Some(Service::OutOfScope)
                } else {
                    r.service.as_deref().and_then(Service::parse)
                };
                if let Some(g) = gold {
                    service_pairs.push((g.as_str().to_owned(), d.service.as_str().to_owned()));
                }
                if !*all_out
                    && let Some(g) = r
                        .category
                        .as_deref()
                        .and_then(|g| map_category(g, &settings.categories))
                {
                    category_pairs.push((g, d.category.clone()));
                }
            }
        }
    }
    let mut out = format!(
        "{}-fold cross-validation (model retrained per fold on the other folds; rows by their number in each file modulo {}):\n",
        cv.folds, cv.folds
    );
    out.push_str(&report("cv service", &service_pairs));
    let _ = writeln!(
        out,
        "cv balanced service accuracy (mean recall over the gold services): {:.3}",
        balanced_accuracy(&service_pairs)
    );
    out.push_str(&report("cv category", &category_pairs));
    Ok(out)
}

/// The kinds of correction an agent makes when a ticket labelled (`from_service`,
/// `from_category`) is given (`to_service`, `to_category`): the same kinds, by the same rule, as
/// the gateway's `hotline_classifier_corrections_total` metric (`crate::metrics`), so that the
/// figure `eval` reports offline and the one the dashboard watches live can be compared.
pub fn correction_kinds(
    from_service: &str,
    from_category: &str,
    to_service: &str,
    to_category: &str,
) -> Vec<&'static str> {
    let mut kinds = Vec::with_capacity(2);
    if from_category != to_category {
        kinds.push("recategorised");
    }
    match (from_service, to_service) {
        (a, b) if a == b => {}
        ("legal_consultation", "mediation") => kinds.push("lawyer_to_mediator"),
        ("mediation", "legal_consultation") => kinds.push("mediator_to_lawyer"),
        _ => kinds.push("other_service"),
    }
    kinds
}

/// The correction kinds counted by [`corrections_report`], in the order it prints them.
const CORRECTION_KINDS: [&str; 4] = [
    "recategorised",
    "lawyer_to_mediator",
    "mediator_to_lawyer",
    "other_service",
];

/// What agents would still have to correct if the classifier decided the tickets of a
/// corrections export (`hotline-gateway corrections export`) again: each row's labels are the
/// ones an agent gave; the row counts as corrected, by kind (see [`correction_kinds`]) and by
/// the category the classifier gives, when the classifier's labels differ. Run before and after
/// retraining on the corrections, it shows the retrained model's effect (on rows it was trained
/// on when the export is in its training data: say so when reporting). A corrected `triage`
/// decision counts as `other_service`, as in the metric.
pub fn corrections_report(
    c: &Classifier,
    rows: &[super::tools::LabelledRow],
    default_source: Source,
    taxonomy: &[String],
) -> String {
    // category → (rows, corrected, per kind)
    let mut by_category: std::collections::BTreeMap<String, (usize, usize, [usize; 4])> =
        Default::default();
    let mut skipped = 0usize;
    for r in rows {
        // Triage is not a label an agent gives (the export leaves it out too).
        let Some(service) = r
            .service
            .as_deref()
            .and_then(Service::parse)
            .filter(|s| *s != Service::Triage)
        else {
            skipped += 1;
            continue;
        };
        let source = r
            .source
            .as_deref()
            .and_then(Source::parse)
            .unwrap_or(default_source);
        let d = c.classify(&TicketText {
            source,
            title: r.title.as_deref().unwrap_or(""),
            text: &r.text,
            people_involved: None,
            prior_calls: 0,
        });
        // An out-of-scope row has no category of its own: only its service is compared.
        let to_category = match r.category.as_deref() {
            Some(g) => map_category(g, taxonomy).unwrap_or_else(|| g.to_owned()),
            None => d.category.clone(),
        };
        let kinds = correction_kinds(
            d.service.as_str(),
            &d.category,
            service.as_str(),
            &to_category,
        );
        let entry = by_category.entry(d.category.clone()).or_default();
        entry.0 += 1;
        entry.1 += usize::from(!kinds.is_empty());
        for k in kinds {
            if let Some(i) = CORRECTION_KINDS.iter().position(|x| *x == k) {
                entry.2[i] += 1;
            }
        }
    }
    let mut out = String::new();
    let total: (usize, usize) = by_category
        .values()
        .fold((0, 0), |(a, b), (n, k, _)| (a + n, b + k));
    let _ = writeln!(
        out,
        "corrections: {} rows ({} without a usable service skipped); share the classifier would still get corrected: {}/{} ({:.1} %)",
        total.0,
        skipped,
        total.1,
        total.0,
        100.0 * ratio(total.1, total.0)
    );
    let _ = writeln!(
        out,
        "  {:<18} {:>5} {:>16} {:>13} {:>18} {:>18} {:>13}",
        "category (ours)",
        "rows",
        "corrected",
        "recategorised",
        "lawyer_to_mediator",
        "mediator_to_lawyer",
        "other_service"
    );
    for (category, (n, k, kinds)) in &by_category {
        let _ = writeln!(
            out,
            "  {:<18} {:>5} {:>7} ({:>5.1} %) {:>13} {:>18} {:>18} {:>13}",
            category,
            n,
            k,
            100.0 * ratio(*k, *n),
            kinds[0],
            kinds[1],
            kinds[2],
            kinds[3]
        );
    }
    out
}

/// Mean over the gold classes of the share predicted as that class.
pub fn balanced_accuracy(pairs: &[(String, String)]) -> f64 {
    let mut golds: Vec<&str> = pairs.iter().map(|(g, _)| g.as_str()).collect();
    golds.sort_unstable();
    golds.dedup();
    if golds.is_empty() {
        return 0.0;
    }
    golds
        .iter()
        .map(|g| {
            let n = pairs.iter().filter(|(x, _)| x == g).count();
            let ok = pairs.iter().filter(|(x, p)| x == g && p == g).count();
            ratio(ok, n)
        })
        .sum::<f64>()
        / golds.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correction_kinds_follow_the_metric() {
        assert_eq!(
            correction_kinds("legal_consultation", "labour", "mediation", "labour"),
            vec!["lawyer_to_mediator"]
        );
        assert_eq!(
            correction_kinds("mediation", "labour", "legal_consultation", "neighbour"),
            vec!["recategorised", "mediator_to_lawyer"]
        );
        assert_eq!(
            correction_kinds("triage", "other", "mediation", "other"),
            vec!["other_service"]
        );
        assert!(correction_kinds("mediation", "labour", "mediation", "labour").is_empty());
    }

    #[test]
    fn balanced_accuracy_is_the_mean_recall() {
        let p = |g: &str, q: &str| (g.to_owned(), q.to_owned());
        let pairs = [p("a", "a"), p("a", "b"), p("b", "b"), p("b", "b")];
        assert!((balanced_accuracy(&pairs) - 0.75).abs() < 1e-9);
    }
}
