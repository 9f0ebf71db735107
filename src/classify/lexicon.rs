//! The lexicon: the words domain staff maintain, as one TOML file (`config/lexicon.toml`).
//!
//! Shape (every table refuses unknown keys, so a typo is an error at start-up, not a silently
//! ignored rule):
//!
//! ```toml
//! version = "2026.11-3"
//!
//! [categories.labour]                 # one table per category of the taxonomy
//! label = "劳动争议"                  # shown to operators in reasons
//! lean = { mediation = 0.5 }          # optional: prior for a service when this category wins
//! except = ["工资卡"]                 # optional: phrases inside which a term does not count
//! [categories.labour.terms]           # term = weight, one per line
//! "拖欠工资" = 3.0
//!
//! [service]
//! evidence_half = 1.0                 # evidence at which confidence is halved (see engine)
//! [service.legal_consultation]        # also `mediation` and `out_of_scope`
//! sources = { "12348" = 1.0 }         # prior by hotline
//! category_hit = 0.5                  # prior when any category term matched
//! [service.legal_consultation.terms]
//! "请问" = 1.0
//!
//! [warning.head_counts]
//! levels = { orange = 20, red = 5 }   # level = minimum head count
//! units = ["名", "位"]
//! nouns = ["人", "工人", "村民"]
//! actions = ["堵门", "聚集", "讨薪"]  # optional: a count in the text needs one of these nearby
//! window = 15                         # characters either side searched for an action word
//!
//! [warning.vulnerable]                # optional: vulnerable parties raise to `level`
//! level = "yellow"
//! reason = "涉及弱势群体"             # reason: 涉及弱势群体"孕妇"→yellow
//! terms = ["孕妇", "老人"]
//! except = ["儿童节"]
//! context = ["推倒", "欺负"]          # optional: a term needs one of these nearby
//! window = 10                         # characters either side searched for a context word
//!
//! [warning.repeat]                    # optional: level = minimum earlier calls by the caller
//! levels = { yellow = 2 }
//!
//! [[warning.rules]]                   # a rule can only raise the level
//! level = "red"
//! reason = "暴力威胁"
//! terms = ["刀", "砍"]
//! except = ["刀削面", "砍价"]
//!
//! [[warning.patterns]]                # a `first` word and a `then` word near each other
//! level = "red"                       # (either order, one sentence) raise the level
//! reason = "暴力威胁"
//! first = ["说要", "找人"]            # an intent or a means …
//! then = ["废了", "弄死"]             # … next to a harm
//! window = 14                         # characters allowed between them
//! except = ["收拾东西"]
//! then_after = ["我", "他"]           # optional: … done to someone right after it (打我, 打了他)
//! then_before = ["被"]                # optional: … or a passive mark right before it (被他打)
//! gap = 2                             # characters allowed between those and the `then` word
//!
//! [warning]
//! negations = ["没有", "并没有"]      # a rule's or pattern's word right after one does not count
//!
//! [warning.head_counts]               # (continued) crowds without a number, acting together
//! crowds = { "一群人" = 5, "全村" = 20 }
//!
//! [model]                             # optional: the trained model and how much it counts
//! path = "models/ngram-lr-2026.12-2.hlm"   # relative to the working directory; "" = none
//! service_weight = 1.0                # × the model's service log-probabilities
//! category_weight = 2.0               # × the model's category log-probabilities
//! evidence_weight = 1.0               # evidence per unit of the model's log-odds margin
//! margin_cap = 3.0                    # largest margin credited
//! category_min = 0.2                  # model category used without any lexicon term from here
//!
//! [input]
//! max_chars = 2000                    # characters read per field; the decision says when cut
//!
//! [safety]                            # optional: evidence that forbids sending a ticket back
//! dispute = ["双方", "拖欠"]          # a dispute between parties
//! rights = ["谁负责", "是否合法"]     # a question about rights and duties
//! doubt = ["刀", "汽油"]              # frightening words that are no warning alone
//! except = ["义务教育"]               # phrases inside which those words do not count
//! desk_above = 0.7                    # in-scope confidence for a desk; below it, triage
//! ```
//!
//! Weights are per term rather than per tier so that a later, trained model can write the same
//! file with fitted weights. Terms are normalised like tickets (NFKC, ASCII lower-case) at load.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::ClassifyError;
use super::normalize::normalize;
use crate::ticket::Source;

/// The parsed lexicon file; build a [`super::Classifier`] from it. Exists as a value of its own
/// so that a lexicon can be checked (e.g. in CI, or before a hot reload) without a classifier.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lexicon {
    pub(super) version: String,
    #[serde(default)]
    pub(super) categories: BTreeMap<String, CategoryTable>,
    pub(super) service: ServiceSection,
    #[serde(default)]
    pub(super) warning: WarningSection,
    #[serde(default)]
    pub(super) model: ModelSection,
    #[serde(default)]
    pub(super) input: InputSection,
    #[serde(default)]
    pub(super) safety: SafetySection,
}

/// `[safety]`: the evidence that keeps a ticket from being sent back to a department.
///
/// Sending a ticket back (`out_of_scope`) means no lawyer or mediator ever sees it, so it needs
/// positive evidence of a department matter (a `[service.out_of_scope]` term) and none of these:
/// a dispute between parties (`dispute`) or a question about rights and duties (`rights`). A
/// statistical score cannot out-vote them; the engine says in the reasons which rule decided.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SafetySection {
    /// Words that show two parties in a dispute (双方, 拖欠, 索赔 …).
    #[serde(default)]
    pub(super) dispute: Vec<String>,
    /// Words that show a question about rights, liabilities, procedures or penalties (谁负责 …).
    #[serde(default)]
    pub(super) rights: Vec<String>,
    /// Frightening words the warning rules do not read as danger on their own (刀, 汽油, 扬言 …:
    /// a knife shop is no threat), which still keep a ticket from being sent back unseen.
    #[serde(default)]
    pub(super) doubt: Vec<String>,
    /// Phrases inside which a `dispute`, `rights` or `doubt` word does not count.
    #[serde(default)]
    pub(super) except: Vec<String>,
    /// How sure the in-scope evidence alone must be for a ticket these rules kept from a return
    /// to go straight to a lawyer or mediator; below it, or when the department words weigh as
    /// much as the in-scope words, a person decides (triage). Doubt goes to triage, not to a
    /// desk. Absent: `classify.triage_below`.
    #[serde(default)]
    pub(super) desk_above: Option<f64>,
}

/// `[model]`: the trained model beside the lexicon, and how much it counts.
///
/// It lives in the lexicon file (not in the gateway settings) because the weights below are
/// tuned together with the lexicon's own weights: shipping a new model or lexicon is one file
/// edit and one reload.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ModelSection {
    /// Model file, relative to the working directory like `classify.lexicon`; empty: no model.
    #[serde(default)]
    pub(super) path: String,
    /// Multiplier of the model's service log-probabilities added to the lexicon's scores.
    #[serde(default = "one")]
    pub(super) service_weight: f64,
    /// Multiplier of the model's category log-probabilities added to the lexicon's scores.
    #[serde(default = "one")]
    pub(super) category_weight: f64,
    /// Evidence credited per unit of the model's log-odds margin for the chosen service.
    #[serde(default = "one")]
    pub(super) evidence_weight: f64,
    /// Largest margin credited: past it the model's certainty adds nothing.
    #[serde(default = "default_margin_cap")]
    pub(super) margin_cap: f64,
    /// A model category counts as found (without any lexicon term) from this probability on.
    #[serde(default = "default_category_min")]
    pub(super) category_min: f64,
}

impl Default for ModelSection {
    fn default() -> ModelSection {
        ModelSection {
            path: String::new(),
            service_weight: 1.0,
            category_weight: 1.0,
            evidence_weight: 1.0,
            margin_cap: default_margin_cap(),
            category_min: default_category_min(),
        }
    }
}

fn one() -> f64 {
    1.0
}

fn default_margin_cap() -> f64 {
    3.0
}

fn default_category_min() -> f64 {
    0.5
}

/// `[input]`: limits on what is read.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct InputSection {
    /// Characters of the title and of the text read; the rest is ignored, and the decision says so.
    #[serde(default = "default_max_chars")]
    pub(super) max_chars: usize,
}

impl Default for InputSection {
    fn default() -> InputSection {
        InputSection {
            max_chars: default_max_chars(),
        }
    }
}

fn default_max_chars() -> usize {
    2000
}

/// `[categories.<name>]`: the terms that point to one dispute category.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CategoryTable {
    /// Chinese name shown in reasons; the key when absent.
    #[serde(default)]
    pub(super) label: Option<String>,
    #[serde(default)]
    pub(super) terms: BTreeMap<String, f64>,
    #[serde(default)]
    pub(super) except: Vec<String>,
    /// Service priors added when this category wins, e.g. `{ mediation = 1.0 }` for neighbours.
    #[serde(default)]
    pub(super) lean: BTreeMap<String, f64>,
}

/// `[service]`: the three marker sets and the confidence scale.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ServiceSection {
    #[serde(default = "default_evidence_half")]
    pub(super) evidence_half: f64,
    pub(super) legal_consultation: ServiceTable,
    pub(super) mediation: ServiceTable,
    pub(super) out_of_scope: ServiceTable,
}

fn default_evidence_half() -> f64 {
    1.0
}

/// `[service.<name>]`: markers of one service and its priors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ServiceTable {
    #[serde(default)]
    pub(super) terms: BTreeMap<String, f64>,
    #[serde(default)]
    pub(super) except: Vec<String>,
    /// Prior by hotline wire name (`"12348"`, `"110"`, `"12345"`).
    #[serde(default)]
    pub(super) sources: BTreeMap<String, f64>,
    /// Prior added when some category term matched (evidence the matter is a dispute).
    #[serde(default)]
    pub(super) category_hit: f64,
}

/// `[warning]`: rules and head-count thresholds.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WarningSection {
    #[serde(default)]
    pub(super) rules: Vec<WarningRule>,
    #[serde(default)]
    pub(super) head_counts: HeadCounts,
    #[serde(default)]
    pub(super) vulnerable: Option<VulnerableParties>,
    #[serde(default)]
    pub(super) repeat: RepeatCalls,
    /// `[[warning.patterns]]`: two kinds of words near each other (an intent and a harm).
    #[serde(default)]
    pub(super) patterns: Vec<WarningPattern>,
    /// Words that, written right before a rule's or a pattern's word, cancel it (没有, 并没有 …).
    #[serde(default)]
    pub(super) negations: Vec<String>,
}

/// `[[warning.patterns]]`: a word of `first` and a word of `then` within `window` characters of
/// each other, in either order and in the same sentence, raise the level to `level`.
///
/// Why: danger is said in many words ("说要找人废了我", "拿着棍子在门口等我"), and a list of
/// whole phrases never ends; what is said is an intent or a means next to a harm, which two
/// short lists cover in far more combinations than one long one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WarningPattern {
    pub(super) level: String,
    pub(super) reason: String,
    pub(super) first: Vec<String>,
    pub(super) then: Vec<String>,
    /// Characters allowed between the two words.
    #[serde(default = "default_pattern_window")]
    pub(super) window: usize,
    /// Phrases inside which a word of either list does not count (跳楼价).
    #[serde(default)]
    pub(super) except: Vec<String>,
    /// Optional: a `then` word counts only when one of these follows it within `gap`
    /// characters: whom the harm is done to (打 counts in 打我, 打了他, not in 打电话).
    #[serde(default)]
    pub(super) then_after: Vec<String>,
    /// Optional: a `then` word counts only when one of these comes before it within `gap`
    /// characters: a passive mark (被他爸打, 被工头骗), so that the harm is done to someone.
    #[serde(default)]
    pub(super) then_before: Vec<String>,
    /// Characters allowed between a `then` word and its `then_after` / `then_before` word.
    #[serde(default = "default_pattern_gap")]
    pub(super) gap: usize,
}

fn default_pattern_window() -> usize {
    12
}

fn default_pattern_gap() -> usize {
    1
}

/// `[warning.vulnerable]`: words for parties who cannot easily protect themselves (老人, 孕妇,
/// 未成年 …). A dispute that involves one is watched more closely, so a (non-excepted) term
/// raises the level to `level`; the reason quotes the word (`涉及弱势群体"孕妇"→yellow`).
///
/// With `context`, the term must have one of those words (harm, neglect, a quarrel: 推倒,
/// 欺负, 不赡养 …) within `window` characters: on its own 老人 or 小孩 is as often a policy
/// question (老人补贴, 小孩入学) as a party at risk, and one ticket in eight of the government
/// message board turned yellow for that alone.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct VulnerableParties {
    pub(super) level: String,
    /// Reason prefix shown to operators.
    #[serde(default = "default_vulnerable_reason")]
    pub(super) reason: String,
    pub(super) terms: Vec<String>,
    #[serde(default)]
    pub(super) except: Vec<String>,
    /// Words one of which must be near a term (empty: none needed).
    #[serde(default)]
    pub(super) context: Vec<String>,
    /// Characters either side of a term searched for a context word.
    #[serde(default = "default_vulnerable_window")]
    pub(super) window: usize,
}

fn default_vulnerable_window() -> usize {
    10
}

fn default_vulnerable_reason() -> String {
    "涉及弱势群体".to_owned()
}

/// `[warning.repeat]`: level by the number of earlier tickets the caller opened within the
/// duplicate window (`TicketText::prior_calls`): a caller who keeps calling is a dispute that
/// is not being resolved.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RepeatCalls {
    /// Level name → minimum number of earlier calls, like `head_counts.levels`.
    #[serde(default)]
    pub(super) levels: BTreeMap<String, u32>,
}

/// `[[warning.rules]]`: any (non-excepted) term raises the level to `level`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WarningRule {
    pub(super) level: String,
    pub(super) reason: String,
    pub(super) terms: Vec<String>,
    #[serde(default)]
    pub(super) except: Vec<String>,
}

/// `[warning.head_counts]`: level by minimum number of people, and the words that mean people.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HeadCounts {
    #[serde(default)]
    pub(super) levels: BTreeMap<String, u32>,
    #[serde(default)]
    pub(super) units: Vec<String>,
    #[serde(default)]
    pub(super) nouns: Vec<String>,
    /// Group-action words: a count read from the text only counts with one of them within
    /// `window` characters (empty: every count counts). The operator's count always counts.
    #[serde(default)]
    pub(super) actions: Vec<String>,
    /// Characters searched either side of a head count for an action word.
    #[serde(default = "default_action_window")]
    pub(super) window: usize,
    /// Words for a crowd without a number, with the head count they stand for (一群人 = 5,
    /// 全村 = 20); they count like a number, with an action word in the same sentence.
    #[serde(default)]
    pub(super) crowds: BTreeMap<String, u32>,
}

fn default_action_window() -> usize {
    15
}

impl Lexicon {
    /// Parses and checks a lexicon; errors name the offending key so staff can fix the file.
    ///
    /// Checks everything that does not depend on the settings: weights are positive and finite,
    /// terms are not empty after normalisation, hotline names exist. Categories and warning levels
    /// are checked against the settings by [`super::Classifier::from_lexicon`].
    pub fn from_toml_str(s: &str) -> Result<Lexicon, ClassifyError> {
        let mut lexicon: Lexicon = toml::from_str(s).map_err(|e| ClassifyError::Invalid {
            key: e
                .span()
                .map(|span| key_near(s, span.start))
                .unwrap_or_else(|| "(file)".to_owned()),
            message: e.message().trim().to_owned(),
        })?;
        lexicon.check_and_normalize()?;
        Ok(lexicon)
    }

    /// Every `(category, term)` of the category tables (normalised), for training the model.
    pub fn category_terms(&self) -> impl Iterator<Item = (&str, &str)> {
        self.categories.iter().flat_map(|(name, table)| {
            table
                .terms
                .keys()
                .map(move |term| (name.as_str(), term.as_str()))
        })
    }

    /// The lexicon's version, recorded in every decision so it can be traced.
    pub fn version(&self) -> &str {
        &self.version
    }

    fn check_and_normalize(&mut self) -> Result<(), ClassifyError> {
        if self.version.trim().is_empty() {
            return Err(invalid("version", "must not be empty"));
        }
        for (name, table) in &mut self.categories {
            let key = format!("categories.{name}");
            table.terms = weighted_terms(&table.terms, &format!("{key}.terms"))?;
            table.except = plain_terms(&table.except, &format!("{key}.except"))?;
            for (service, prior) in &table.lean {
                if !matches!(
                    service.as_str(),
                    "legal_consultation" | "mediation" | "out_of_scope"
                ) {
                    return Err(invalid(
                        &format!("{key}.lean.{service}"),
                        "not a service (legal_consultation, mediation, out_of_scope)",
                    ));
                }
                finite(*prior, &format!("{key}.lean.{service}"))?;
            }
        }
        let half = self.service.evidence_half;
        if !(half.is_finite() && half > 0.0) {
            return Err(invalid(
                "service.evidence_half",
                "must be a positive number",
            ));
        }
        for (name, table) in [
            ("legal_consultation", &mut self.service.legal_consultation),
            ("mediation", &mut self.service.mediation),
            ("out_of_scope", &mut self.service.out_of_scope),
        ] {
            let key = format!("service.{name}");
            table.terms = weighted_terms(&table.terms, &format!("{key}.terms"))?;
            table.except = plain_terms(&table.except, &format!("{key}.except"))?;
            for (source, prior) in &table.sources {
                if Source::parse(source).is_none() {
                    return Err(invalid(
                        &format!("{key}.sources.{source}"),
                        "not a hotline (12345, 110, 12348)",
                    ));
                }
                finite(*prior, &format!("{key}.sources.{source}"))?;
            }
            finite(table.category_hit, &format!("{key}.category_hit"))?;
        }
        for (i, rule) in self.warning.rules.iter_mut().enumerate() {
            let key = format!("warning.rules[{i}]");
            if rule.reason.trim().is_empty() {
                return Err(invalid(&format!("{key}.reason"), "must not be empty"));
            }
            if rule.terms.is_empty() {
                return Err(invalid(
                    &format!("{key}.terms"),
                    "must list at least one term",
                ));
            }
            rule.terms = plain_terms(&rule.terms, &format!("{key}.terms"))?;
            rule.except = plain_terms(&rule.except, &format!("{key}.except"))?;
        }
        for (level, min) in &self.warning.head_counts.levels {
            if *min == 0 {
                return Err(invalid(
                    &format!("warning.head_counts.levels.{level}"),
                    "must be at least 1",
                ));
            }
        }
        let m = &self.model;
        for (key, v) in [
            ("model.service_weight", m.service_weight),
            ("model.category_weight", m.category_weight),
            ("model.evidence_weight", m.evidence_weight),
            ("model.margin_cap", m.margin_cap),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(invalid(key, "must be a number of at least 0"));
            }
        }
        if !(0.0..=1.0).contains(&m.category_min) {
            return Err(invalid("model.category_min", "must be between 0 and 1"));
        }
        if self.input.max_chars == 0 {
            return Err(invalid("input.max_chars", "must be at least 1"));
        }
        let hc = &mut self.warning.head_counts;
        hc.units = plain_terms(&hc.units, "warning.head_counts.units")?;
        hc.nouns = plain_terms(&hc.nouns, "warning.head_counts.nouns")?;
        hc.actions = plain_terms(&hc.actions, "warning.head_counts.actions")?;
        if let Some(v) = &mut self.warning.vulnerable {
            if v.reason.trim().is_empty() {
                return Err(invalid("warning.vulnerable.reason", "must not be empty"));
            }
            if v.terms.is_empty() {
                return Err(invalid(
                    "warning.vulnerable.terms",
                    "must list at least one term",
                ));
            }
            v.terms = plain_terms(&v.terms, "warning.vulnerable.terms")?;
            v.except = plain_terms(&v.except, "warning.vulnerable.except")?;
            v.context = plain_terms(&v.context, "warning.vulnerable.context")?;
            if !v.context.is_empty() && v.window == 0 {
                return Err(invalid(
                    "warning.vulnerable.window",
                    "must be at least 1 when context words are listed",
                ));
            }
        }
        for (i, p) in self.warning.patterns.iter_mut().enumerate() {
            let key = format!("warning.patterns[{i}]");
            if p.reason.trim().is_empty() {
                return Err(invalid(&format!("{key}.reason"), "must not be empty"));
            }
            if p.first.is_empty() || p.then.is_empty() {
                return Err(invalid(
                    &format!("{key}.first"),
                    "`first` and `then` must each list at least one word",
                ));
            }
            p.first = plain_terms(&p.first, &format!("{key}.first"))?;
            p.then = plain_terms(&p.then, &format!("{key}.then"))?;
            p.except = plain_terms(&p.except, &format!("{key}.except"))?;
            p.then_after = plain_terms(&p.then_after, &format!("{key}.then_after"))?;
            p.then_before = plain_terms(&p.then_before, &format!("{key}.then_before"))?;
        }
        self.warning.negations = plain_terms(&self.warning.negations, "warning.negations")?;
        let mut crowds = BTreeMap::new();
        for (word, n) in &self.warning.head_counts.crowds {
            let key = format!("warning.head_counts.crowds.{word}");
            if *n == 0 {
                return Err(invalid(&key, "must be at least 1"));
            }
            let norm = normalize(word).trim().to_owned();
            if norm.is_empty() {
                return Err(invalid(&key, "is empty"));
            }
            crowds.insert(norm, *n);
        }
        self.warning.head_counts.crowds = crowds;
        let safety = &mut self.safety;
        safety.dispute = plain_terms(&safety.dispute, "safety.dispute")?;
        safety.rights = plain_terms(&safety.rights, "safety.rights")?;
        safety.doubt = plain_terms(&safety.doubt, "safety.doubt")?;
        safety.except = plain_terms(&safety.except, "safety.except")?;
        if let Some(v) = safety.desk_above
            && !(0.0..=1.0).contains(&v)
        {
            return Err(invalid("safety.desk_above", "must be between 0 and 1"));
        }
        for (level, min) in &self.warning.repeat.levels {
            if *min == 0 {
                return Err(invalid(
                    &format!("warning.repeat.levels.{level}"),
                    "must be at least 1 (0 would warn on every first call)",
                ));
            }
        }
        Ok(())
    }
}

fn invalid(key: &str, message: &str) -> ClassifyError {
    ClassifyError::Invalid {
        key: key.to_owned(),
        message: message.to_owned(),
    }
}

fn finite(v: f64, key: &str) -> Result<(), ClassifyError> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(invalid(key, "must be a finite number"))
    }
}

/// Normalises term keys and checks weights; two spellings that normalise alike are refused.
fn weighted_terms(
    terms: &BTreeMap<String, f64>,
    key: &str,
) -> Result<BTreeMap<String, f64>, ClassifyError> {
    let mut out = BTreeMap::new();
    for (term, &weight) in terms {
        let norm = normalize(term).trim().to_owned();
        if norm.is_empty() {
            return Err(invalid(key, "contains an empty term"));
        }
        if !(weight.is_finite() && weight > 0.0) {
            return Err(invalid(
                key,
                &format!("weight of \"{term}\" must be a positive number, got {weight}"),
            ));
        }
        if out.insert(norm, weight).is_some() {
            return Err(invalid(
                key,
                &format!("\"{term}\" is listed twice (after full-width/case normalisation)"),
            ));
        }
    }
    Ok(out)
}

/// Normalises a list of terms; empty entries are refused, duplicates dropped.
fn plain_terms(terms: &[String], key: &str) -> Result<Vec<String>, ClassifyError> {
    let mut out: Vec<String> = Vec::with_capacity(terms.len());
    for term in terms {
        let norm = normalize(term).trim().to_owned();
        if norm.is_empty() {
            return Err(invalid(key, "contains an empty term"));
        }
        if !out.contains(&norm) {
            out.push(norm);
        }
    }
    Ok(out)
}

/// Best-effort dotted key for a byte offset of a TOML parse error: the last `[table]` header
/// before it, plus the key on the error's line when there is one.
fn key_near(s: &str, offset: usize) -> String {
    let offset = offset.min(s.len());
    let line_start = s
        .char_indices()
        .take_while(|(i, _)| *i < offset)
        .filter(|(_, c)| *c == '\n')
        .last()
        .map_or(0, |(i, _)| i + 1);
    let line_no = s[..line_start].matches('\n').count() + 1;
    let line = s[line_start..].lines().next().unwrap_or("").trim();
    let header = s[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| {
            l.trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim()
                .to_owned()
        });
    let own = if line.starts_with('[') {
        Some(
            line.trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim()
                .to_owned(),
        )
    } else {
        let k = line
            .split('=')
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches('"');
        let k = if line.contains('=') { k } else { "" };
        match (&header, k.is_empty()) {
            (Some(h), false) => Some(format!("{h}.{k}")),
            (None, false) => Some(k.to_owned()),
            (h, true) => h.clone(),
        }
    };
    match own {
        Some(k) if !k.is_empty() => format!("{k} (line {line_no})"),
        _ => format!("(line {line_no})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
version = "t-1"
[service.legal_consultation]
[service.mediation]
[service.out_of_scope]
"#;

    fn key_of(err: ClassifyError) -> String {
        match err {
            ClassifyError::Invalid { key, .. } => key,
            other => panic!("unexpected error {other}"),
        }
    }

    #[test]
    fn a_minimal_lexicon_parses_and_reports_its_version() {
        let lex = Lexicon::from_toml_str(MINIMAL).unwrap();
        assert_eq!(lex.version(), "t-1");
    }

    #[test]
    fn the_shipped_lexicon_parses() {
        let lex = Lexicon::from_toml_str(include_str!("../../config/lexicon.toml")).unwrap();
        assert!(!lex.version().is_empty());
        assert!(lex.categories.len() >= 15);
    }

    #[test]
    fn an_unknown_field_is_refused_naming_its_table() {
        let s = format!("{MINIMAL}\n[categories.labour]\nterm = {{ \"欠薪\" = 3.0 }}\n");
        let key = key_of(Lexicon::from_toml_str(&s).unwrap_err());
        assert!(key.starts_with("categories.labour"), "{key}");
    }

    #[test]
    fn a_non_positive_weight_is_refused_naming_the_terms_table() {
        let s = format!("{MINIMAL}\n[categories.labour.terms]\n\"欠薪\" = -1.0\n");
        let key = key_of(Lexicon::from_toml_str(&s).unwrap_err());
        assert_eq!(key, "categories.labour.terms");
    }

    #[test]
    fn an_unknown_hotline_in_sources_is_refused() {
        let s = MINIMAL.replace(
            "[service.mediation]",
            "[service.mediation]\nsources = { \"119\" = 1.0 }",
        );
        let key = key_of(Lexicon::from_toml_str(&s).unwrap_err());
        assert_eq!(key, "service.mediation.sources.119");
    }

    #[test]
    fn terms_are_normalised_like_tickets() {
        let s = format!("{MINIMAL}\n[categories.labour.terms]\n\"ＡＢＣ欠薪\" = 1.0\n");
        let lex = Lexicon::from_toml_str(&s).unwrap();
        assert!(lex.categories["labour"].terms.contains_key("abc欠薪"));
    }

    #[test]
    fn an_empty_warning_rule_is_refused() {
        let s =
            format!("{MINIMAL}\n[[warning.rules]]\nlevel = \"red\"\nreason = \"x\"\nterms = []\n");
        let key = key_of(Lexicon::from_toml_str(&s).unwrap_err());
        assert_eq!(key, "warning.rules[0].terms");
    }
}
