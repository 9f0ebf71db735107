//! The lexicon classifier: one pass of the phrase matcher over the normalised ticket, then
//! arithmetic.
//!
//! Why it decides the way it does:
//!
//! - **Category**: the category whose matched terms weigh most. A term counts once per ticket
//!   however often it repeats, so long narratives do not drown short questions and a caller who
//!   repeats 欠薪 five times is no more "labour" than one who says it once. Ties go to the category
//!   listed first in the settings; no hit at all goes to the last one, the catch-all.
//! - **Service**: each service gets the weights of its own markers (请问/是否合法 for a lawyer,
//!   双方/吵起来 for a mediator, 路灯/公交 for a department) plus priors: a category hit is evidence
//!   the matter is a dispute at all (it raises legal consultation and mediation, not out-of-scope),
//!   the winning category may lean one way (neighbours → mediation), and the hotline leans (12348
//!   callers want a lawyer; 110 hands over live disputes). The three scores go through a softmax,
//!   which says *which* service the evidence favours; that probability is then multiplied by
//!   `E / (E + evidence_half)`, where `E` is the weight of terms actually found in the text, which
//!   says *how much* evidence there is. Priors alone are not evidence: an empty ticket from 12348
//!   still has confidence 0, and a lone weak marker stays well below one half. A confidence below
//!   `triage_below` sends the ticket to a human ([`Service::Triage`]) rather than guessing.
//! - **Warning**: start at the last level (no warning); every matching rule, vulnerable-party
//!   word (孕妇, 老人 …), the caller's earlier calls (`TicketText::prior_calls`) and every head
//!   count (the operator's `people_involved`, and numbers read from the text next to a
//!   group-action word such as 堵门 or 聚集) can only raise it. A rule term inside one of the
//!   rule's `except` phrases (刀 in 刀削面) does not count. Nothing statistical is read here.
//!
//! All matching is done by one [`PhraseSet`] built at load time over every term of every table,
//! with overlapping matches so that 拖欠工资 and 工资 both count.

use std::sync::Arc;

use super::lexicon::Lexicon;
use super::matcher::PhraseSet;
use super::model::{LinearModel, MODEL_SERVICES};
use super::normalize::is_han;
use super::normalize::{
    HeadCount, NUMERALS_LISTED, PeopleWords, acting_together, max_head_count_at, normalize_into,
};
use super::{ClassifyError, ClassifySettings, Decision, Service};
use crate::ticket::{Source, TicketText};

/// At most this many reasons per decision: operators read them, they are not a debug dump.
const MAX_REASONS: usize = 10;
/// Terms quoted per category or service in the reasons.
const TERMS_PER_REASON: usize = 2;

/// The three services the lexicon scores, in a fixed order.
const SERVICES: [Service; 3] = [
    Service::LegalConsultation,
    Service::Mediation,
    Service::OutOfScope,
];

/// What a table of terms is for.
#[derive(Debug, Clone)]
enum Role {
    /// Index into `settings.categories`.
    Category(usize),
    /// Index into [`SERVICES`].
    Service(usize),
    /// Index into `settings.warning_levels`, and the rule's reason.
    Warning { level: usize, reason: String },
    /// `[warning.vulnerable]`: like a rule, but the reason quotes the word first
    /// (`涉及弱势群体"孕妇"→yellow`).
    Vulnerable { level: usize, reason: String },
    /// `[safety]`: evidence that forbids sending the ticket back.
    Safety(Guard),
    /// `[[warning.patterns]]`: the `first` or `then` words of a pattern ([`PatternRule`] names
    /// its two tables).
    Pattern,
    /// `[warning.head_counts] crowds`: each term's weight is the head count it stands for.
    Crowd,
    /// `[warning.vulnerable] context`: a harm one of the vulnerable terms needs nearby. In the
    /// phrase matcher like every other word, so that the check reads recorded occurrences
    /// instead of searching the text around each vulnerable term again.
    VulnerableContext,
}

/// A `[[warning.patterns]]` entry, compiled.
#[derive(Debug, Clone)]
struct PatternRule {
    level: usize,
    reason: String,
    window: usize,
    /// Tables of its `first` and `then` words.
    first: usize,
    then: usize,
    /// `then_after` / `then_before` / `gap`: what must be right next to a `then` word.
    then_after: Vec<String>,
    then_before: Vec<String>,
    gap: usize,
}

/// The kinds of `[safety]` evidence, in the order the rules are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Guard {
    /// A dispute between parties (`safety.dispute`).
    Dispute,
    /// A question about rights and duties (`safety.rights`).
    Rights,
    /// A frightening word the warning rules could not read as danger (`safety.doubt`): it
    /// raises no level, but a person sees the ticket before it is sent anywhere else.
    Doubt,
}

/// One table of the lexicon, flattened: its terms with weights, and its role.
#[derive(Debug, Clone)]
struct Table {
    role: Role,
    terms: Vec<(String, f64)>,
}

/// What one matcher phrase means to one table.
#[derive(Debug, Clone, Copy)]
struct Use {
    table: usize,
    meaning: Meaning,
}

/// What a matched phrase is.
#[derive(Debug, Clone, Copy)]
enum Meaning {
    /// The table's term with this index.
    Term(usize),
    /// One of the table's exception phrases.
    Except,
    /// A numeral character, for the head-count reader ([`max_head_count_at`]): the matcher
    /// visits every character anyway, so the reader need not walk the text again.
    Numeral,
    /// A `[warning] negations` phrase: a rule's or pattern's word right after it does not count.
    Negation,
}

/// What the phrase matcher found in a ticket.
struct Matches {
    /// Distinct `(table, term)` pairs, exceptions applied, by table and within a table
    /// heaviest term first.
    terms: Vec<(usize, usize)>,
    /// Byte offsets of the numeral characters, ascending.
    numerals: Vec<usize>,
    /// `(table, start, end)` of every counted occurrence of a `[[warning.patterns]]` word
    /// (exceptions and negations applied), for [`Classifier::pattern_match`].
    spans: Vec<(usize, usize, usize)>,
}

/// A term occurrence, before exceptions are applied.
#[derive(Debug, Clone, Copy)]
struct Hit {
    table: usize,
    term: usize,
    start: usize,
    end: usize,
}

/// A lexicon compiled against the settings; immutable and cheap to share across threads.
#[derive(Debug, Clone)]
pub struct Classifier {
    model: String,
    categories: Vec<String>,
    category_labels: Vec<String>,
    /// Per category: service priors when it wins (by [`SERVICES`] index).
    category_lean: Vec<[f64; 3]>,
    warning_levels: Vec<String>,
    triage_below: f64,
    evidence_half: f64,
    /// Per service: prior by source (indexed like [`Source::ALL`]) and the category-hit prior.
    source_prior: [[f64; 3]; 3],
    category_hit_prior: [f64; 3],
    head_count_levels: Vec<(usize, u32)>,
    /// The smallest head count that raises a level (`u32::MAX`: none does).
    head_count_min: u32,
    units: Vec<String>,
    nouns: Vec<String>,
    /// Group-action words a text head count needs nearby, and how near (characters).
    actions: Vec<String>,
    action_window: usize,
    /// `[warning.vulnerable]` context words a term needs nearby (empty: none), and how near.
    vulnerable_context: Vec<String>,
    vulnerable_window: usize,
    /// `[warning.repeat]`: level index by minimum number of earlier calls.
    repeat_levels: Vec<(usize, u32)>,
    tables: Vec<Table>,
    /// Every distinct term and exception phrase; `uses` says what each one means.
    phrases: PhraseSet,
    uses: Vec<Vec<Use>>,
    /// Where each table's terms start in one numbering of all terms (for a bit set of hits).
    term_offset: Vec<usize>,
    /// The number of each term (by `term_offset + term index`). Within a table, numbers go
    /// heaviest term first, so reading the bit set of hits back gives each table's terms in the
    /// order reasons quote them, with no sorting per ticket.
    term_number: Vec<usize>,
    /// The `(table, term)` of each number.
    term_of: Vec<(usize, usize)>,
    /// Longest exception phrase in bytes, to bound the search for a covering exception.
    max_except_len: usize,
    /// The trained model, shared (a rebuilt classifier on reload loads its own).
    model_file: Option<Arc<LinearModel>>,
    /// Per model category: the settings' category index, if the taxonomy still has it.
    model_categories: Vec<Option<usize>>,
    /// How much the model counts (`[model]` in the lexicon).
    tuning: Tuning,
    /// Characters read per field (`[input] max_chars`).
    max_chars: usize,
    /// `[[warning.patterns]]`.
    patterns: Vec<PatternRule>,
    /// `[safety] desk_above`: the in-scope confidence a kept-back ticket needs for a desk.
    desk_above: f64,
}

/// `[model]` weights, copied out of the lexicon.
#[derive(Debug, Clone, Copy)]
struct Tuning {
    service_weight: f64,
    category_weight: f64,
    evidence_weight: f64,
    margin_cap: f64,
    category_min: f64,
}

impl Classifier {
    /// Reads the lexicon file named in the settings and compiles it; used at start-up.
    pub fn load(settings: &ClassifySettings) -> Result<Classifier, ClassifyError> {
        let text =
            std::fs::read_to_string(&settings.lexicon).map_err(|source| ClassifyError::Read {
                path: settings.lexicon.display().to_string(),
                source,
            })?;
        Classifier::from_lexicon(Lexicon::from_toml_str(&text)?, settings)
    }

    /// Compiles a parsed lexicon, refusing any category or warning level the settings do not
    /// know (the error names the lexicon key), so a decision can only carry configured labels.
    pub fn from_lexicon(
        lexicon: Lexicon,
        settings: &ClassifySettings,
    ) -> Result<Classifier, ClassifyError> {
        Classifier::build(lexicon, settings, None)
    }

    /// [`Classifier::from_lexicon`] with a model trained in memory instead of the lexicon's
    /// `[model] path`, with the lexicon's `[model]` weights: cross-validation trains one model
    /// per fold and measures it without writing files.
    pub fn with_model(
        lexicon: Lexicon,
        settings: &ClassifySettings,
        model: LinearModel,
    ) -> Result<Classifier, ClassifyError> {
        Classifier::build(lexicon, settings, Some(model))
    }

    fn build(
        lexicon: Lexicon,
        settings: &ClassifySettings,
        model: Option<LinearModel>,
    ) -> Result<Classifier, ClassifyError> {
        check_settings(settings)?;
        let mut tables: Vec<Table> = Vec::new();
        let mut excepts: Vec<(usize, Vec<String>)> = Vec::new();
        let mut category_labels = settings.categories.clone();
        let mut category_lean = vec![[0.0; 3]; settings.categories.len()];

        for (name, table) in &lexicon.categories {
            let index = settings
                .categories
                .iter()
                .position(|c| c == name)
                .ok_or_else(|| ClassifyError::Invalid {
                    key: format!("categories.{name}"),
                    message: format!(
                        "category `{name}` is not in classify.categories ({})",
                        settings.categories.join(", ")
                    ),
                })?;
            if let Some(label) = table.label.as_deref().filter(|l| !l.trim().is_empty()) {
                category_labels[index] = label.to_owned();
            }
            for (service, prior) in &table.lean {
                if let Some(s) = SERVICES.iter().position(|s| s.as_str() == service) {
                    category_lean[index][s] += prior;
                }
            }
            excepts.push((tables.len(), table.except.clone()));
            tables.push(Table {
                role: Role::Category(index),
                terms: table.terms.iter().map(|(t, w)| (t.clone(), *w)).collect(),
            });
        }

        let mut source_prior = [[0.0; 3]; 3];
        let mut category_hit_prior = [0.0; 3];
        let services = [
            &lexicon.service.legal_consultation,
            &lexicon.service.mediation,
            &lexicon.service.out_of_scope,
        ];
        for (s, table) in services.into_iter().enumerate() {
            for (source, prior) in &table.sources {
                if let Some(i) = Source::ALL.iter().position(|x| x.as_str() == source) {
                    source_prior[s][i] += prior;
                }
            }
            category_hit_prior[s] = table.category_hit;
            excepts.push((tables.len(), table.except.clone()));
            tables.push(Table {
                role: Role::Service(s),
                terms: table.terms.iter().map(|(t, w)| (t.clone(), *w)).collect(),
            });
        }

        let level_index = |level: &str, key: String| {
            settings
                .warning_levels
                .iter()
                .position(|l| l == level)
                .ok_or_else(|| ClassifyError::Invalid {
                    key,
                    message: format!(
                        "warning level `{level}` is not in classify.warning_levels ({})",
                        settings.warning_levels.join(", ")
                    ),
                })
        };
        for (i, rule) in lexicon.warning.rules.iter().enumerate() {
            let level = level_index(&rule.level, format!("warning.rules[{i}].level"))?;
            excepts.push((tables.len(), rule.except.clone()));
            tables.push(Table {
                role: Role::Warning {
                    level,
                    reason: rule.reason.clone(),
                },
                terms: rule.terms.iter().map(|t| (t.clone(), 1.0)).collect(),
            });
        }
        if let Some(v) = &lexicon.warning.vulnerable {
            let level = level_index(&v.level, "warning.vulnerable.level".to_owned())?;
            excepts.push((tables.len(), v.except.clone()));
            tables.push(Table {
                role: Role::Vulnerable {
                    level,
                    reason: v.reason.clone(),
                },
                terms: v.terms.iter().map(|t| (t.clone(), 1.0)).collect(),
            });
            if !v.context.is_empty() {
                excepts.push((tables.len(), Vec::new()));
                tables.push(Table {
                    role: Role::VulnerableContext,
                    terms: v.context.iter().map(|t| (t.clone(), 1.0)).collect(),
                });
            }
        }
        for (guard, terms) in [
            (Guard::Dispute, &lexicon.safety.dispute),
            (Guard::Rights, &lexicon.safety.rights),
            (Guard::Doubt, &lexicon.safety.doubt),
        ] {
            excepts.push((tables.len(), lexicon.safety.except.clone()));
            tables.push(Table {
                role: Role::Safety(guard),
                terms: terms.iter().map(|t| (t.clone(), 1.0)).collect(),
            });
        }
        let mut pattern_rules = Vec::new();
        for (i, p) in lexicon.warning.patterns.iter().enumerate() {
            let level = level_index(&p.level, format!("warning.patterns[{i}].level"))?;
            let first = tables.len();
            for words in [&p.first, &p.then] {
                excepts.push((tables.len(), p.except.clone()));
                tables.push(Table {
                    role: Role::Pattern,
                    terms: words.iter().map(|t| (t.clone(), 1.0)).collect(),
                });
            }
            pattern_rules.push(PatternRule {
                level,
                reason: p.reason.clone(),
                window: p.window,
                first,
                then: first + 1,
                then_after: p.then_after.clone(),
                then_before: p.then_before.clone(),
                gap: p.gap,
            });
        }
        if !lexicon.warning.head_counts.crowds.is_empty() {
            excepts.push((tables.len(), Vec::new()));
            tables.push(Table {
                role: Role::Crowd,
                terms: lexicon
                    .warning
                    .head_counts
                    .crowds
                    .iter()
                    .map(|(t, n)| (t.clone(), f64::from(*n)))
                    .collect(),
            });
        }
        let hc = &lexicon.warning.head_counts;
        let mut head_count_levels = Vec::new();
        for (level, min) in &hc.levels {
            let index = level_index(level, format!("warning.head_counts.levels.{level}"))?;
            head_count_levels.push((index, *min));
        }
        let head_count_min = head_count_levels
            .iter()
            .map(|(_, min)| *min)
            .min()
            .unwrap_or(u32::MAX);
        let (vulnerable_context, vulnerable_window) = lexicon
            .warning
            .vulnerable
            .as_ref()
            .map_or((Vec::new(), 0), |v| (v.context.clone(), v.window));
        let mut repeat_levels = Vec::new();
        for (level, min) in &lexicon.warning.repeat.levels {
            let index = level_index(level, format!("warning.repeat.levels.{level}"))?;
            repeat_levels.push((index, *min));
        }

        // One matcher over every distinct phrase; `uses` says what each phrase means.
        let mut patterns: Vec<String> = Vec::new();
        let mut uses: Vec<Vec<Use>> = Vec::new();
        let mut add = |pattern: &str, u: Use| match patterns.iter().position(|p| p == pattern) {
            Some(i) => uses[i].push(u),
            None => {
                patterns.push(pattern.to_owned());
                uses.push(vec![u]);
            }
        };
        for (t, table) in tables.iter().enumerate() {
            for (i, (term, _)) in table.terms.iter().enumerate() {
                add(
                    term,
                    Use {
                        table: t,
                        meaning: Meaning::Term(i),
                    },
                );
            }
        }
        let mut max_except_len = 0;
        for (t, list) in &excepts {
            for phrase in list {
                max_except_len = max_except_len.max(phrase.len());
                add(
                    phrase,
                    Use {
                        table: *t,
                        meaning: Meaning::Except,
                    },
                );
            }
        }
        for phrase in &lexicon.warning.negations {
            add(
                phrase,
                Use {
                    table: 0,
                    meaning: Meaning::Negation,
                },
            );
        }
        if !head_count_levels.is_empty() {
            for numeral in NUMERALS_LISTED.chars() {
                add(
                    numeral.encode_utf8(&mut [0; 4]),
                    Use {
                        table: 0,
                        meaning: Meaning::Numeral,
                    },
                );
            }
        }
        let model_file = if let Some(m) = model {
            Some(Arc::new(m))
        } else if lexicon.model.path.trim().is_empty() {
            None
        } else {
            let path = std::path::Path::new(lexicon.model.path.trim());
            let m = LinearModel::load(path).map_err(|e| ClassifyError::Invalid {
                key: "model.path".to_owned(),
                message: e.to_string(),
            })?;
            Some(Arc::new(m))
        };
        let model_categories = model_file.as_ref().map_or_else(Vec::new, |m| {
            m.header()
                .categories
                .iter()
                .map(|c| settings.categories.iter().position(|x| x == c))
                .collect()
        });
        let lm = &lexicon.model;
        let tuning = Tuning {
            service_weight: lm.service_weight,
            category_weight: lm.category_weight,
            evidence_weight: lm.evidence_weight,
            margin_cap: lm.margin_cap,
            category_min: lm.category_min,
        };
        let model_name = match &model_file {
            Some(m) => format!("lexicon-{}+{}", lexicon.version(), m.version()),
            None => format!("lexicon-{}", lexicon.version()),
        };

        let phrases = PhraseSet::new(patterns);
        let mut term_offset = Vec::with_capacity(tables.len());
        let mut term_of = Vec::new();
        let mut term_number = Vec::new();
        for (t, table) in tables.iter().enumerate() {
            let offset = term_of.len();
            term_offset.push(offset);
            // Heaviest first, then longest, then as listed (a stable sort).
            let mut order: Vec<usize> = (0..table.terms.len()).collect();
            order.sort_by(|a, b| {
                let (ta, tb) = (&table.terms[*a], &table.terms[*b]);
                tb.1.total_cmp(&ta.1).then(tb.0.len().cmp(&ta.0.len()))
            });
            term_number.resize(offset + table.terms.len(), 0);
            for (rank, term) in order.iter().enumerate() {
                term_number[offset + term] = offset + rank;
            }
            term_of.extend(order.iter().map(|i| (t, *i)));
        }

        Ok(Classifier {
            model: model_name,
            categories: settings.categories.clone(),
            category_labels,
            category_lean,
            warning_levels: settings.warning_levels.clone(),
            triage_below: settings.triage_below,
            evidence_half: lexicon.service.evidence_half,
            source_prior,
            category_hit_prior,
            head_count_levels,
            head_count_min,
            units: hc.units.clone(),
            nouns: hc.nouns.clone(),
            actions: hc.actions.clone(),
            action_window: hc.window,
            repeat_levels,
            vulnerable_context,
            vulnerable_window,
            tables,
            phrases,
            uses,
            term_offset,
            term_number,
            term_of,
            max_except_len,
            model_file,
            model_categories,
            tuning,
            max_chars: lexicon.input.max_chars,
            patterns: pattern_rules,
            desk_above: lexicon.safety.desk_above.unwrap_or(settings.triage_below),
        })
    }

    /// The name and version of what decides, recorded in every [`Decision`] for tracing.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Classifies one ticket. Pure and total: any text, however empty or long, gets a decision.
    pub fn classify(&self, t: &TicketText<'_>) -> Decision {
        let (title, title_cut) = truncate(t.title, self.max_chars);
        let (body, body_cut) = truncate(t.text, self.max_chars);
        let mut text = String::with_capacity(title.len() + body.len() + 1);
        normalize_into(title, &mut text);
        text.push('\n');
        normalize_into(body, &mut text);
        let Matches {
            terms: matched,
            numerals,
            spans,
        } = self.matched_terms(&text);
        // Room for every reason the decision may give: the vector is never grown.
        let mut input_reasons = Vec::with_capacity(MAX_REASONS);
        if title_cut || body_cut {
            input_reasons.push(format!(
                "文本超过{}字，只分析了前{}字",
                self.max_chars, self.max_chars
            ));
        }
        let has_han = text.chars().any(is_han);
        if text.trim().is_empty() {
            input_reasons.push("文本为空".to_owned());
        } else if !has_han && !text.chars().any(|c| c.is_alphanumeric()) {
            input_reasons.push("文本只有标点或表情，没有可分析的文字".to_owned());
        } else if !has_han {
            input_reasons.push("文本不含中文，无法可靠判断".to_owned());
        }
        let model_scores = self
            .model_file
            .as_ref()
            .map(|m| m.score(&text))
            .filter(|s| s.known > 0);

        // Scores per table: each distinct term once.
        let mut table_score = vec![0.0_f64; self.tables.len()];
        for &(table, term) in &matched {
            table_score[table] += self.tables[table].terms[term].1;
        }

        // Category.
        let mut category_score = vec![0.0_f64; self.categories.len()];
        for (i, table) in self.tables.iter().enumerate() {
            if let Role::Category(c) = table.role {
                category_score[c] += table_score[i];
            }
        }
        let best = category_score
            .iter()
            .enumerate()
            .filter(|(_, s)| **s > 0.0)
            .fold(None::<(usize, f64)>, |acc, (i, &s)| match acc {
                Some((_, b)) if b >= s => acc,
                _ => Some((i, s)),
            });
        let mut category_by_model = false;
        let w = self.tuning.category_weight;
        if let Some(s) = &model_scores
            && w > 0.0
        {
            // Lexicon weight plus the model's log-probability relative to its favourite: the
            // model moves close calls and fills in when the lexicon found nothing.
            let pmax = s.category_p.iter().copied().fold(0.0_f64, f64::max);
            for (m, settings_index) in self.model_categories.iter().enumerate() {
                if let (Some(c), Some(p)) = (settings_index, s.category_p.get(m))
                    && *p > 0.0
                    && pmax > 0.0
                    && (category_score[*c] > 0.0 || *p >= self.tuning.category_min)
                {
                    // A lexicon hit is lowered by the model, never erased by it.
                    let lexicon = category_score[*c];
                    category_score[*c] = (lexicon + 1.0 + w * (p / pmax).ln()).max(lexicon * 0.1);
                }
            }
        }
        let best_combined = category_score
            .iter()
            .enumerate()
            .filter(|(_, s)| **s > 0.0)
            .fold(None::<(usize, f64)>, |acc, (i, &s)| match acc {
                Some((_, b)) if b >= s => acc,
                _ => Some((i, s)),
            });
        let category_index = match best_combined {
            Some((i, _)) => {
                category_by_model = best.is_none_or(|(b, _)| b != i);
                i
            }
            None => self.categories.len() - 1,
        };
        let category_found = best_combined.is_some();

        // Service scores: text evidence plus priors.
        let mut evidence = [0.0_f64; 3];
        for (i, table) in self.tables.iter().enumerate() {
            if let Role::Service(s) = table.role {
                evidence[s] += table_score[i];
            }
        }
        let source_index = Source::ALL.iter().position(|s| *s == t.source).unwrap_or(0);
        let mut scores = evidence;
        for (s, score) in scores.iter_mut().enumerate() {
            *score += self.source_prior[s][source_index];
            if category_found {
                *score += self.category_hit_prior[s] + self.category_lean[category_index][s];
            }
        }
        let mut total_evidence =
            evidence.iter().sum::<f64>() + best.map_or(0.0, |(_, s)| s).max(0.0);
        if let Some(s) = &model_scores {
            for (x, logp) in scores.iter_mut().zip(s.service_logp) {
                *x += self.tuning.service_weight * logp;
            }
        }
        let (top, probability) = softmax_top(&scores);
        // The model's own margin for the chosen service is evidence too, capped.
        if let Some(s) = &model_scores {
            let own = s.service_logp[top];
            let other = (0..3)
                .filter(|i| *i != top)
                .map(|i| s.service_logp[i])
                .fold(f64::NEG_INFINITY, f64::max);
            let margin = (own - other).clamp(0.0, self.tuning.margin_cap);
            total_evidence += self.tuning.evidence_weight * margin;
        }
        let coverage = total_evidence / (total_evidence + self.evidence_half);
        let mut confidence = probability * coverage;
        // A lawyer or mediator decision needs a subject: without a single category term the
        // ticket cannot reach the right desk ("我想问一下那个事情"), so the evidence counts half.
        if !category_found && SERVICES[top] != Service::OutOfScope {
            confidence *= 0.5;
        }
        if !confidence.is_finite() {
            confidence = 0.0;
        }
        let confidence = (confidence.clamp(0.0, 1.0) * 1000.0).round() / 1000.0;

        // Warning level: start at "none" and only raise. Nothing above this point (the model,
        // the service, the category) is read: rules alone decide the level.
        let mut level = self.warning_levels.len() - 1;
        let mut warning_reasons = Vec::with_capacity(4);
        for (i, table) in self.tables.iter().enumerate() {
            match &table.role {
                Role::Warning {
                    level: rule_level,
                    reason,
                } => {
                    if let Some(first) = self.terms_of(i, &matched).next() {
                        level = level.min(*rule_level);
                        warning_reasons.push(format!(
                            "命中\"{first}\"→{}({reason})",
                            self.warning_levels[*rule_level]
                        ));
                    }
                }
                Role::Vulnerable {
                    level: rule_level,
                    reason,
                } => {
                    // With context words, the first term that has one nearby.
                    let found = self.terms_of(i, &matched).find(|term| {
                        self.vulnerable_context.is_empty()
                            || self.has_context_nearby(&text, i, term, &spans)
                    });
                    if let Some(first) = found {
                        level = level.min(*rule_level);
                        warning_reasons.push(format!(
                            "{reason}\"{first}\"→{}",
                            self.warning_levels[*rule_level]
                        ));
                    }
                }
                Role::Category(_)
                | Role::Service(_)
                | Role::Safety(_)
                | Role::Pattern
                | Role::Crowd
                | Role::VulnerableContext => {}
            }
        }
        for p in &self.patterns {
            if let Some((a, b)) = self.pattern_match(&text, p, &spans) {
                level = level.min(p.level);
                warning_reasons.push(format!(
                    "命中\"{a}\"…\"{b}\"→{}({})",
                    self.warning_levels[p.level], p.reason
                ));
            }
        }
        if let Some(n) = t.people_involved
            && let Some(l) = self.head_count_level(n)
        {
            level = level.min(l);
            warning_reasons.push(format!("登记人数{n}人→{}", self.warning_levels[l]));
        }
        let words = PeopleWords {
            units: &self.units,
            nouns: &self.nouns,
            actions: &self.actions,
            window: self.action_window,
        };
        let by_number = if self.head_count_levels.is_empty() {
            None
        } else {
            max_head_count_at(&text, &numerals, words, self.head_count_min)
        };
        let by_word = self.crowd(&text, &matched, words);
        let counted = match (by_number, by_word) {
            (Some(a), Some(b)) => Some(if b.count > a.count { b } else { a }),
            (a, b) => a.or(b),
        };
        if let Some(HeadCount { count, phrase }) = counted
            && let Some(l) = self.head_count_level(count)
        {
            level = level.min(l);
            warning_reasons.push(format!(
                "文中\"{phrase}\"约{count}人→{}",
                self.warning_levels[l]
            ));
        }
        if let Some(l) = level_for(&self.repeat_levels, t.prior_calls) {
            level = level.min(l);
            warning_reasons.push(format!(
                "该来电人近期已来电{}次→{}",
                t.prior_calls, self.warning_levels[l]
            ));
        }

        // Who handles it: the scores propose, the safety rules may refuse a return to the
        // department, and the reason names the rule that decided.
        let (service, confidence, rule) = if !has_han {
            // Goes to triage whatever the confidence (a text in English may score high on no
            // evidence).
            (
                Service::Triage,
                confidence,
                "没有可读的中文文本，转人工分拣".to_owned(),
            )
        } else if confidence < self.triage_below {
            // A clear question about rights and duties (a `[safety] rights` word, a lawyer's
            // question marker, a subject) is what the 12348 lawyers answer, however unsure the
            // scores are of the rest; unless the scores lean to a mediator.
            let rights = self
                .tables
                .iter()
                .position(|t| matches!(t.role, Role::Safety(Guard::Rights)))
                .and_then(|t| self.terms_of(t, &matched).next());
            match rights {
                Some(word) if category_found && evidence[0] > 0.0 && scores[0] >= scores[1] => {
                    let rule = format!(
                        "决定规则：明确的权利义务问题(\"{word}\")→法律咨询(置信度{confidence:.2}低于阈值{:.2}，仍交律师)",
                        self.triage_below
                    );
                    (Service::LegalConsultation, confidence, rule)
                }
                _ => {
                    let rule = format!(
                        "置信度{confidence:.2}低于阈值{:.2}，转人工分拣",
                        self.triage_below
                    );
                    (Service::Triage, confidence, rule)
                }
            }
        } else if SERVICES[top] != Service::OutOfScope {
            let rule = format!(
                "决定规则：按证据评分→{}(置信度{confidence:.2})",
                service_zh(SERVICES[top])
            );
            (SERVICES[top], confidence, rule)
        } else {
            let guard = self.guard(&matched, level, evidence[2]);
            match guard {
                None => {
                    let rule = format!(
                        "决定规则：有部门事项证据，无预警、纠纷或权利义务问题→退回部门(置信度{confidence:.2})"
                    );
                    (Service::OutOfScope, confidence, rule)
                }
                Some(why) => {
                    // The better of lawyer and mediator by the same scores, as sure as those
                    // two scores and the evidence say. Only in-scope evidence counts here: the
                    // lexicon's lawyer and mediator markers and its category terms, not the
                    // department words nor the model's certainty that the ticket is a
                    // department matter. The scores did prefer a return, so a desk needs strong
                    // in-scope evidence: sure enough on its own (`[safety] desk_above`) and
                    // weighing more than the department words. Otherwise a person decides.
                    let k = usize::from(scores[1] > scores[0]);
                    let p = 1.0 / (1.0 + (scores[1 - k] - scores[k]).exp());
                    let e = evidence[0] + evidence[1] + best.map_or(0.0, |(_, s)| s).max(0.0);
                    let mut c = p * e / (e + self.evidence_half);
                    if !category_found {
                        c *= 0.5;
                    }
                    let c = if c.is_finite() {
                        (c.clamp(0.0, 1.0) * 1000.0).round() / 1000.0
                    } else {
                        0.0
                    };
                    if c >= self.desk_above && e > evidence[2] {
                        let rule = format!(
                            "决定规则：{why}，不得退回部门→{}(置信度{c:.2})",
                            service_zh(SERVICES[k])
                        );
                        (SERVICES[k], c, rule)
                    } else {
                        let rule = format!(
                            "决定规则：{why}，不得退回部门，案内证据不够强(置信度{c:.2})→转人工分拣"
                        );
                        (Service::Triage, c, rule)
                    }
                }
            }
        };

        // Reasons: input problems and the deciding rule first, then warnings, category, the
        // model's view, service evidence, priors.
        let mut reasons = input_reasons;
        reasons.push(rule);
        reasons.extend(warning_reasons);
        let label = &self.category_labels[category_index];
        for (i, table) in self.tables.iter().enumerate() {
            if matches!(table.role, Role::Category(c) if c == category_index) {
                for term in self.terms_of(i, &matched).take(TERMS_PER_REASON) {
                    reasons.push(concat(&["命中\"", term, "\"(", label, ")"]));
                }
            }
        }
        if !category_found {
            reasons.push(format!("未命中类别词，归入{label}"));
        }
        // Reasons past MAX_REASONS would be cut below: they are not built at all.
        if let (Some(s), Some(m)) = (&model_scores, &self.model_file)
            && reasons.len() < MAX_REASONS
        {
            if category_by_model
                && let Some(mi) = self
                    .model_categories
                    .iter()
                    .position(|c| *c == Some(category_index))
            {
                let p = s.category_p.get(mi).copied().unwrap_or(0.0);
                let words = quote(&text, &m.evidence_for(s, MODEL_SERVICES.len() + mi, 3));
                reasons.push(format!("模型判为{label}(概率{p:.2}){words}"));
            }
            let p = s.service_logp[top].exp();
            let words = quote(&text, &m.evidence_for(s, top, 3));
            reasons.push(format!(
                "模型倾向{}(概率{p:.2}){words}",
                service_zh(SERVICES[top])
            ));
        }
        for (i, table) in self.tables.iter().enumerate() {
            if let Role::Service(s) = table.role
                && reasons.len() < MAX_REASONS
            {
                for term in self.terms_of(i, &matched).take(TERMS_PER_REASON) {
                    reasons.push(concat(&["命中\"", term, "\"→", service_zh(SERVICES[s])]));
                }
            }
        }
        for (s, prior) in self.source_prior.iter().enumerate() {
            if prior[source_index] > 0.0 && reasons.len() < MAX_REASONS {
                reasons.push(concat(&[
                    "来源",
                    t.source.as_str(),
                    "倾向",
                    service_zh(SERVICES[s]),
                ]));
            }
        }
        reasons.truncate(MAX_REASONS);

        Decision {
            service,
            category: self.categories[category_index].clone(),
            warning_level: self.warning_levels[level].clone(),
            confidence,
            reasons,
            model: self.model.clone(),
        }
    }

    /// What the lexicon finds in `text` (see [`Matches`]).
    fn matched_terms(&self, text: &str) -> Matches {
        // Real tickets match a lexicon phrase every fifteen bytes or so: room for that many
        // up front, rather than growing the vector three times.
        let mut hits: Vec<Hit> = Vec::with_capacity(text.len() / 8 + 16);
        let mut excepts: Vec<(usize, usize, usize)> = Vec::new();
        let mut numerals: Vec<usize> = Vec::with_capacity(64);
        let mut negation_ends: Vec<usize> = Vec::new();
        self.phrases.for_each_match(text, |pattern, start, end| {
            for u in self
                .uses
                .get(pattern)
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                match u.meaning {
                    Meaning::Term(term) => hits.push(Hit {
                        table: u.table,
                        term,
                        start,
                        end,
                    }),
                    Meaning::Except => excepts.push((u.table, start, end)),
                    Meaning::Numeral => numerals.push(start),
                    Meaning::Negation => negation_ends.push(end),
                }
            }
        });
        excepts.sort_unstable();
        let covered = |h: &Hit| {
            if excepts.is_empty() {
                return false;
            }
            let from = (h.table, h.start.saturating_sub(self.max_except_len), 0);
            let to = (h.table, h.start, usize::MAX);
            let lo = excepts.partition_point(|e| *e < from);
            let hi = excepts.partition_point(|e| *e <= to);
            excepts
                .get(lo..hi)
                .is_some_and(|range| range.iter().any(|e| e.1 <= h.start && e.2 >= h.end))
        };
        // A warning word right after a negation (没有威胁, 并没有打) does not count.
        let negated = |h: &Hit| {
            !negation_ends.is_empty()
                && negation_ends.contains(&h.start)
                && matches!(
                    self.tables.get(h.table).map(|t| &t.role),
                    Some(Role::Warning { .. } | Role::Pattern)
                )
        };
        // A bit per term: each counts once, and reading the bits back gives table order.
        let mut bits = vec![0u64; self.term_of.len() / 64 + 1];
        let mut spans = Vec::new();
        for h in hits.iter().filter(|h| !covered(h) && !negated(h)) {
            if matches!(
                self.tables.get(h.table).map(|t| &t.role),
                Some(Role::Pattern | Role::Vulnerable { .. } | Role::VulnerableContext)
            ) {
                spans.push((h.table, h.start, h.end));
            }
            let id = self
                .term_offset
                .get(h.table)
                .and_then(|o| self.term_number.get(o + h.term))
                .copied()
                .unwrap_or(0);
            if let Some(w) = bits.get_mut(id / 64) {
                *w |= 1 << (id % 64);
            }
        }
        let mut found = Vec::with_capacity(hits.len());
        for (w, &word) in bits.iter().enumerate() {
            let mut word = word;
            while word != 0 {
                let id = w * 64 + word.trailing_zeros() as usize;
                word &= word - 1;
                if let Some(pair) = self.term_of.get(id) {
                    found.push(*pair);
                }
            }
        }
        Matches {
            terms: found,
            numerals,
            spans,
        }
    }

    /// Why a ticket the scores would send back must not be, or `None` when it may be: the
    /// safety rules, checked in order (warning level, dispute, rights and duties, no positive
    /// evidence of a department matter). The answer quotes the evidence for the reasons.
    fn guard(
        &self,
        matched: &[(usize, usize)],
        level: usize,
        department_evidence: f64,
    ) -> Option<String> {
        if level + 1 < self.warning_levels.len() {
            return Some(format!("有预警{}", self.warning_levels[level]));
        }
        for (kind, what) in [
            (Guard::Dispute, "有当事人纠纷的证据"),
            (Guard::Rights, "有权利义务问题的证据"),
            (Guard::Doubt, "有可能危险的词"),
        ] {
            let table = self
                .tables
                .iter()
                .position(|t| matches!(t.role, Role::Safety(g) if g == kind));
            if let Some(first) = table.and_then(|t| self.terms_of(t, matched).next()) {
                return Some(concat(&[what, "\"", first, "\""]));
            }
        }
        if department_evidence <= 0.0 {
            return Some("没有部门事项的正面证据".to_owned());
        }
        None
    }

    /// The first pair of words of pattern `p` near each other (see [`PatternRule`]), from the
    /// occurrences the phrase matcher recorded (`spans`): nothing is searched again.
    fn pattern_match<'a>(
        &self,
        text: &'a str,
        p: &PatternRule,
        spans: &[(usize, usize, usize)],
    ) -> Option<(&'a str, &'a str)> {
        for &(ta, a0, a1) in spans.iter().filter(|s| s.0 == p.first) {
            for &(_, b0, b1) in spans.iter().filter(|s| s.0 == p.then) {
                if (a0, a1) == (b0, b1) {
                    continue;
                }
                let (lo_end, hi_start) = if a0 <= b0 { (a1, b0) } else { (b1, a0) };
                let between = text.get(lo_end.min(hi_start)..hi_start).unwrap_or("");
                // Bytes bound characters from above: most pairs are decided without counting.
                // A character is at most 4 bytes: past that, no counting either.
                let near = between.len() <= p.window
                    || (between.len() <= 4 * p.window && between.chars().count() <= p.window);
                if near
                    && !between
                        .chars()
                        .any(|c| matches!(c, '。' | '!' | '?' | ';' | '\n'))
                    && Self::then_is_aimed(text, p, b0, b1)
                {
                    debug_assert_eq!(ta, p.first);
                    return Some((text.get(a0..a1)?, text.get(b0..b1)?));
                }
            }
        }
        None
    }

    /// Whether an occurrence of the vulnerable `term` (of table `table`) has a
    /// `[warning.vulnerable] context` word within `vulnerable_window` characters on either side
    /// (overlapping it counts too), from the occurrences the phrase matcher recorded.
    fn has_context_nearby(
        &self,
        text: &str,
        table: usize,
        term: &str,
        spans: &[(usize, usize, usize)],
    ) -> bool {
        let window = self.vulnerable_window;
        // Bytes bound characters from above: most distances are decided without counting.
        let within = |from: usize, to: usize| {
            let gap = text.get(from..to).unwrap_or("");
            gap.len() <= window || (gap.len() <= 4 * window && gap.chars().count() <= window)
        };
        spans
            .iter()
            .filter(|&&(t, a, b)| t == table && text.get(a..b) == Some(term))
            .any(|&(_, a, b)| {
                spans
                    .iter()
                    .filter(|s| matches!(self.tables[s.0].role, Role::VulnerableContext))
                    .any(|&(_, c0, c1)| (c0 >= a || within(c0, a)) && (c1 <= b || within(b, c1)))
            })
    }

    /// Whether the `then` word at `text[b0..b1]` has what pattern `p` requires next to it: a
    /// `then_after` word starting within `gap` characters after it, and a `then_before` word
    /// ending within `gap` characters before it (each only when listed), with no sentence or
    /// clause mark in between.
    fn then_is_aimed(text: &str, p: &PatternRule, b0: usize, b1: usize) -> bool {
        let is_stop = |c: char| {
            matches!(
                c,
                '。' | '!' | '?' | ';' | '\n' | ',' | '，' | '、' | '：' | ':'
            )
        };
        let after_ok = p.then_after.is_empty() || {
            let rest = text.get(b1..).unwrap_or("");
            let mut pos = 0;
            let mut found = false;
            for _ in 0..=p.gap {
                let tail = rest.get(pos..).unwrap_or("");
                if p.then_after.iter().any(|w| tail.starts_with(w.as_str())) {
                    found = true;
                    break;
                }
                match tail.chars().next() {
                    Some(c) if !is_stop(c) => pos += c.len_utf8(),
                    _ => break,
                }
            }
            found
        };
        let before_ok = p.then_before.is_empty() || {
            let mut end = b0.min(text.len());
            let mut found = false;
            for _ in 0..=p.gap {
                let head = text.get(..end).unwrap_or("");
                if p.then_before.iter().any(|w| head.ends_with(w.as_str())) {
                    found = true;
                    break;
                }
                match head.chars().next_back() {
                    Some(c) if !is_stop(c) => end -= c.len_utf8(),
                    _ => break,
                }
            }
            found
        };
        after_ok && before_ok
    }

    /// The largest crowd named without a number (一群人, 全村) acting together, as a head count.
    fn crowd(
        &self,
        text: &str,
        matched: &[(usize, usize)],
        words: PeopleWords<'_>,
    ) -> Option<HeadCount> {
        let table = self
            .tables
            .iter()
            .position(|t| matches!(t.role, Role::Crowd))?;
        let mut best: Option<HeadCount> = None;
        for &(t, i) in matched.iter().filter(|(t, _)| *t == table) {
            let (word, n) = &self.tables[t].terms[i];
            let count = *n as u32;
            if best.as_ref().is_some_and(|b| b.count >= count) {
                continue;
            }
            if text
                .match_indices(word.as_str())
                .any(|(at, w)| acting_together(text, at, at + w.len(), words))
            {
                best = Some(HeadCount {
                    count,
                    phrase: word.clone(),
                });
            }
        }
        best
    }

    /// The matched terms of one table, heaviest first (for reasons).
    fn terms_of<'a>(
        &'a self,
        table: usize,
        matched: &'a [(usize, usize)],
    ) -> impl Iterator<Item = &'a str> + 'a {
        let terms = &self.tables[table].terms;
        // `matched` is sorted by table, and within it heaviest first (see `term_number`).
        let lo = matched.partition_point(|(t, _)| *t < table);
        let hi = matched.partition_point(|(t, _)| *t <= table);
        matched
            .get(lo..hi)
            .unwrap_or_default()
            .iter()
            .filter_map(|&(_, i)| terms.get(i).map(|(s, _)| s.as_str()))
    }

    /// The highest level whose head-count threshold `n` reaches, if any.
    fn head_count_level(&self, n: u32) -> Option<usize> {
        level_for(&self.head_count_levels, n)
    }
}

/// The highest level (smallest index) whose minimum `n` reaches, if any.
fn level_for(levels: &[(usize, u32)], n: u32) -> Option<usize> {
    levels
        .iter()
        .filter(|(_, min)| n >= *min)
        .map(|(level, _)| *level)
        .min()
}

/// The first `max` characters of `s`, and whether anything was cut.
fn truncate(s: &str, max: usize) -> (&str, bool) {
    // No more bytes than characters allowed: nothing to cut, and no need to count.
    if s.len() <= max {
        return (s, false);
    }
    match s.char_indices().nth(max) {
        Some((i, _)) => (&s[..i], true),
        None => (s, false),
    }
}

/// `，依据"起诉""欠薪"` from n-gram positions, or nothing when there are none.
fn quote(text: &str, grams: &[super::features::Gram]) -> String {
    // "，依据" and three quoted n-grams of up to three ideographs: 45 bytes.
    let mut out = String::with_capacity(48);
    for w in grams.iter().filter_map(|g| text.get(g.start..g.end)) {
        if out.is_empty() {
            out.push_str("，依据");
        }
        out.push('"');
        out.push_str(w);
        out.push('"');
    }
    out
}

/// The parts joined: a reason built without the formatting machinery, which costs more than
/// the rest of a decision's reasons together when every one goes through `format!`.
fn concat(parts: &[&str]) -> String {
    let mut out = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        out.push_str(p);
    }
    out
}

/// Settings the classifier cannot work without.
fn check_settings(settings: &ClassifySettings) -> Result<(), ClassifyError> {
    let bad = |key: &str, message: &str| ClassifyError::Invalid {
        key: key.to_owned(),
        message: message.to_owned(),
    };
    if settings.categories.is_empty() {
        return Err(bad(
            "classify.categories",
            "must name at least one category",
        ));
    }
    if settings.warning_levels.is_empty() {
        return Err(bad(
            "classify.warning_levels",
            "must name at least one level",
        ));
    }
    if !(0.0..=1.0).contains(&settings.triage_below) {
        return Err(bad("classify.triage_below", "must be between 0 and 1"));
    }
    Ok(())
}

/// Index and probability of the largest softmax component (numerically stable).
fn softmax_top(scores: &[f64; 3]) -> (usize, f64) {
    let mut top = 0;
    for (i, s) in scores.iter().enumerate() {
        if *s > scores[top] {
            top = i;
        }
    }
    let max = scores[top];
    let sum: f64 = scores.iter().map(|s| (s - max).exp()).sum();
    if sum.is_finite() && sum > 0.0 {
        (top, 1.0 / sum)
    } else {
        (top, 0.0)
    }
}

/// The service as operators call it.
fn service_zh(s: Service) -> &'static str {
    match s {
        Service::LegalConsultation => "法律咨询",
        Service::Mediation => "调解",
        Service::OutOfScope => "退回部门",
        Service::Triage => "人工分拣",
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../config/lexicon.toml");

    /// The shipped taxonomy and scale as the classifier's unit tests use them.
    pub(crate) fn settings() -> ClassifySettings {
        ClassifySettings {
            lexicon: "config/lexicon.toml".into(),
            categories: [
                "marriage_family",
                "neighbour",
                "housing_land",
                "demolition",
                "contract_debt",
                "business",
                "injury",
                "labour",
                "consumer",
                "medical",
                "traffic",
                "property_mgmt",
                "environment",
                "criminal",
                "administrative",
                "other",
            ]
            .map(String::from)
            .to_vec(),
            warning_levels: ["orange", "red", "yellow", "none"]
                .map(String::from)
                .to_vec(),
            triage_below: 0.5,
        }
    }

    fn classifier() -> Classifier {
        Classifier::from_lexicon(Lexicon::from_toml_str(SHIPPED).unwrap(), &settings()).unwrap()
    }

    fn ticket(source: Source, text: &str, people: Option<u32>) -> TicketText<'_> {
        TicketText {
            source,
            title: "",
            text,
            people_involved: people,
            prior_calls: 0,
        }
    }

    fn classify(text: &str) -> Decision {
        classifier().classify(&ticket(Source::Citizen12345, text, None))
    }

    fn key_of(err: ClassifyError) -> String {
        match err {
            ClassifyError::Invalid { key, .. } => key,
            other => panic!("unexpected error {other}"),
        }
    }

    #[test]
    fn a_wage_arrears_quarrel_goes_to_a_mediator_as_labour() {
        let d = classify("老板拖欠工资三个月，工人去讨薪，双方吵起来了，请求帮忙协调。");
        assert_eq!(d.service, Service::Mediation, "{d:?}");
        assert_eq!(d.category, "labour");
        assert!(d.confidence >= 0.5, "{d:?}");
        assert!(d.reasons.iter().any(|r| r.contains("拖欠工资")), "{d:?}");
    }

    #[test]
    fn a_custody_question_goes_to_a_lawyer_as_marriage_family() {
        let d = classify("请问离婚后孩子的抚养权怎么判？");
        assert_eq!(d.service, Service::LegalConsultation, "{d:?}");
        assert_eq!(d.category, "marriage_family");
    }

    #[test]
    fn a_broken_street_light_goes_back_to_the_department() {
        let d = classify("小区门口的路灯坏了一个多月，晚上很黑，希望有关部门尽快修理。");
        assert_eq!(d.service, Service::OutOfScope, "{d:?}");
        assert_eq!(d.warning_level, "none");
    }

    #[test]
    fn a_knife_threat_is_red_with_the_reason() {
        let d = classify("他说要拿刀砍我");
        assert_eq!(d.warning_level, "red", "{d:?}");
        assert!(
            d.reasons.iter().any(|r| r.contains("暴力威胁")),
            "{:?}",
            d.reasons
        );
    }

    #[test]
    fn twenty_odd_workers_blocking_the_gate_is_orange() {
        let c = classifier();
        let d = c.classify(&ticket(Source::Police110, "二十多名工人堵门讨薪", Some(25)));
        assert_eq!(d.warning_level, "orange", "{d:?}");
        assert_eq!(d.category, "labour");
        assert!(
            d.reasons.iter().any(|r| r.contains("登记人数25人")),
            "{d:?}"
        );
    }

    #[test]
    fn a_head_count_in_the_text_alone_raises_the_level() {
        let d = classify("二十多名工人在厂里讨薪");
        assert_eq!(d.warning_level, "orange", "{d:?}");
        let d = classify("有6名村民因为宅基地吵了起来");
        assert_eq!(d.warning_level, "red", "{d:?}");
    }

    #[test]
    fn knife_cut_noodles_alone_raise_nothing() {
        let d = classify("刀削面");
        assert_eq!(d.warning_level, "none", "{d:?}");
        let d = classify("买了把剪刀，电脑要杀毒");
        assert_eq!(d.warning_level, "none", "{d:?}");
    }

    #[test]
    fn an_excepted_phrase_does_not_hide_a_real_threat_elsewhere() {
        let d = classify("吃完刀削面他就拿刀出来了");
        assert_eq!(d.warning_level, "red", "{d:?}");
    }

    #[test]
    fn a_lower_rule_never_lowers_a_higher_level() {
        let d = classify("他扬言要报复，邻居多次反映噪音扰民");
        assert_eq!(d.warning_level, "red", "{d:?}");
    }

    #[test]
    fn empty_or_signal_free_text_goes_to_triage_with_low_confidence() {
        let c = classifier();
        for text in ["", "   \n\t　", "今天天气不错。", "嗯嗯"] {
            for source in Source::ALL {
                let d = c.classify(&ticket(source, text, None));
                assert_eq!(d.service, Service::Triage, "{text:?} {source} {d:?}");
                assert!(d.confidence < 0.5, "{d:?}");
                assert_eq!(d.category, "other");
                assert_eq!(d.warning_level, "none");
                assert!(d.reasons.iter().any(|r| r.contains("转人工分拣")), "{d:?}");
            }
        }
    }

    #[test]
    fn a_question_without_any_subject_goes_to_triage_not_to_a_lawyer() {
        let c = classifier();
        for source in [Source::Citizen12345, Source::Police110] {
            let d = c.classify(&ticket(source, "喂，你好，我想问一下那个事情。", None));
            assert_eq!(d.service, Service::Triage, "{d:?}");
            assert_eq!(d.category, "other");
        }
        // The same kind of question with a subject is a consultation.
        let d = c.classify(&ticket(
            Source::Citizen12345,
            "我想问一下，老板拖欠工资三个月，我该怎么办？",
            None,
        ));
        assert_eq!(d.service, Service::LegalConsultation, "{d:?}");
        assert_eq!(d.category, "labour");
    }

    #[test]
    fn full_width_digits_are_normalised_before_counting() {
        let d = classify("３０多名业主聚在物业门口");
        assert_eq!(d.warning_level, "orange", "{d:?}");
        assert!(d.reasons.iter().any(|r| r.contains("30多名业主")), "{d:?}");
    }

    fn lexicon_only() -> Classifier {
        let s = SHIPPED.replace("path = \"models/ngram-lr-2026.12-2.hlm\"", "path = \"\"");
        Classifier::from_lexicon(Lexicon::from_toml_str(&s).unwrap(), &settings()).unwrap()
    }

    #[test]
    fn with_the_model_the_source_still_leans_the_decision() {
        // The model reads this as a caller's question; a 110 hand-over is less sure of that.
        let c = classifier();
        let text = "欠款三万元一直不还";
        let legal = c.classify(&ticket(Source::Legal12348, text, None));
        let police = c.classify(&ticket(Source::Police110, text, None));
        assert_eq!(legal.service, Service::LegalConsultation, "{legal:?}");
        assert!(
            police.service != Service::LegalConsultation || police.confidence < legal.confidence,
            "{police:?}"
        );
    }

    #[test]
    fn the_source_leans_the_service_when_the_text_is_undecided() {
        // The lexicon's priors on their own (the model reads this text as a question).
        let c = lexicon_only();
        let text = "欠款三万元一直不还";
        let legal = c.classify(&ticket(Source::Legal12348, text, None));
        let police = c.classify(&ticket(Source::Police110, text, None));
        assert_eq!(legal.service, Service::LegalConsultation, "{legal:?}");
        assert_eq!(police.service, Service::Mediation, "{police:?}");
        assert!(
            legal
                .reasons
                .iter()
                .any(|r| r.contains("来源12348倾向法律咨询"))
        );
    }

    #[test]
    fn the_decision_records_the_lexicon_version() {
        let c = classifier();
        assert_eq!(c.model(), "lexicon-2026.12-3+ngram-lr-2026.12-2");
        assert_eq!(classify("欠薪").model, c.model());
    }

    #[test]
    fn reasons_stay_few_even_for_a_text_full_of_terms() {
        let text = SHIPPED.replace(['=', '"', '\n'], " ");
        let d = classify(&text);
        assert!(d.reasons.len() <= MAX_REASONS, "{:?}", d.reasons);
    }

    #[test]
    fn a_lexicon_naming_an_unknown_category_is_refused_naming_the_key() {
        let s = format!("{SHIPPED}\n[categories.astrology.terms]\n\"星座\" = 1.0\n");
        let err = Classifier::from_lexicon(Lexicon::from_toml_str(&s).unwrap(), &settings());
        assert_eq!(key_of(err.unwrap_err()), "categories.astrology");
    }

    #[test]
    fn a_lexicon_naming_an_unknown_level_is_refused_naming_the_key() {
        let s = format!(
            "{SHIPPED}\n[[warning.rules]]\nlevel = \"purple\"\nreason = \"x\"\nterms = [\"y\"]\n"
        );
        let err = Classifier::from_lexicon(Lexicon::from_toml_str(&s).unwrap(), &settings());
        let key = key_of(err.unwrap_err());
        assert!(
            key.starts_with("warning.rules[") && key.ends_with("].level"),
            "{key}"
        );
        let s = SHIPPED.replace("orange = 20", "purple = 20");
        let err = Classifier::from_lexicon(Lexicon::from_toml_str(&s).unwrap(), &settings());
        assert_eq!(
            key_of(err.unwrap_err()),
            "warning.head_counts.levels.purple"
        );
    }

    #[test]
    fn a_missing_lexicon_file_is_a_read_error_naming_the_file() {
        let mut s = settings();
        s.lexicon = "/nonexistent/lexicon.toml".into();
        match Classifier::load(&s) {
            Err(ClassifyError::Read { path, .. }) => assert!(path.contains("nonexistent")),
            other => panic!("expected a read error, got {other:?}"),
        }
    }

    #[test]
    fn the_shipped_lexicon_loads_from_disk() {
        let c = Classifier::load(&settings()).unwrap();
        assert!(c.model().starts_with("lexicon-"));
    }

    #[test]
    fn a_huge_text_does_not_panic() {
        let c = classifier();
        let mut text = "拖欠工资刀削面二十多名工人９９９９９９９９９９９９人万万万".repeat(8_000);
        text.truncate(
            text.char_indices()
                .nth(200_000)
                .map_or(text.len(), |(i, _)| i),
        );
        assert!(text.chars().count() >= 200_000);
        let d = c.classify(&ticket(Source::Police110, &text, Some(u32::MAX)));
        assert_eq!(d.category, "labour");
        assert!((0.0..=1.0).contains(&d.confidence));
    }

    #[test]
    fn a_long_text_is_truncated_and_the_decision_says_so() {
        let text = "老板拖欠工资，".repeat(1_000);
        let d = classify(&text);
        assert!(d.reasons[0].contains("只分析了前2000字"), "{:?}", d.reasons);
        assert_eq!(d.category, "labour");
        let d = classify("老板拖欠工资");
        assert!(!d.reasons.iter().any(|r| r.contains("只分析了")), "{d:?}");
    }

    #[test]
    fn punctuation_or_emoji_only_goes_to_triage_with_a_reason() {
        for text in ["！？。，……", "🤔🤔🙏", "...---"] {
            let d = classify(text);
            assert_eq!(d.service, Service::Triage, "{text} {d:?}");
            assert!(
                d.reasons.iter().any(|r| r.contains("只有标点或表情")),
                "{d:?}"
            );
        }
        let d = classify("");
        assert!(d.reasons.iter().any(|r| r.contains("文本为空")), "{d:?}");
    }

    #[test]
    fn text_without_chinese_goes_to_triage_with_a_reason() {
        let c = classifier();
        for source in Source::ALL {
            let d = c.classify(&ticket(
                source,
                "My boss has not paid my wages for three months, what can I do?",
                None,
            ));
            assert_eq!(d.service, Service::Triage, "{d:?}");
            assert!(d.reasons.iter().any(|r| r.contains("不含中文")), "{d:?}");
        }
    }

    /// Every "置信度X低于阈值Y" reason must be true (X < Y): text without Chinese goes to triage
    /// whatever its confidence, and must say that instead.
    #[test]
    fn a_triage_reason_is_true_whatever_the_confidence() {
        let c = classifier();
        let texts = [
            "My boss has not paid my wages for three months, what can I do?",
            "Mediation please: my neighbour and I quarrel about the wall, lawyer?",
            "12345 110 12348",
            "！？。，……",
            "",
            "我想问一下那个事情",
            "老板拖欠工资三个月，双方吵起来了，希望调解员帮忙协调。",
        ];
        let mut above_threshold_without_chinese = 0;
        for source in Source::ALL {
            for text in texts {
                let d = c.classify(&ticket(source, text, None));
                for r in &d.reasons {
                    if let Some(rest) = r.strip_prefix("置信度") {
                        let (x, y) = rest
                            .split_once("低于阈值")
                            .expect("the confidence reason names the threshold");
                        let x: f64 = x.parse().expect("confidence");
                        let y: f64 = y
                            .split('，')
                            .next()
                            .unwrap_or("")
                            .parse()
                            .expect("threshold");
                        assert!(x < y, "{text:?}: false reason {r:?} in {d:?}");
                    }
                }
                let has_han = text.chars().any(is_han);
                if d.service == Service::Triage {
                    let said = d.reasons.iter().any(|r| r.contains("转人工分拣"));
                    assert!(said, "{text:?}: triage without saying why: {d:?}");
                }
                if !has_han && d.confidence >= 0.5 {
                    above_threshold_without_chinese += 1;
                    assert!(
                        d.reasons.iter().any(|r| r.contains("没有可读的中文")),
                        "{text:?}: {d:?}"
                    );
                }
            }
        }
        // The case of the issue is covered: some text without Chinese scores above 0.5.
        assert!(above_threshold_without_chinese > 0);
    }

    #[test]
    fn mixed_script_text_is_read_for_its_chinese() {
        let d = classify("我在4S店买的车有质量问题，售后不给换，请问怎么办？thanks");
        assert_eq!(d.category, "consumer", "{d:?}");
        assert_eq!(d.service, Service::LegalConsultation, "{d:?}");
    }

    #[test]
    fn traditional_characters_are_read_like_simplified_ones() {
        let simplified = classify("请问离婚后孩子的抚养权怎么判？");
        let traditional = classify("請問離婚後孩子的撫養權怎麼判？");
        assert_eq!(traditional.service, simplified.service, "{traditional:?}");
        assert_eq!(traditional.category, "marriage_family", "{traditional:?}");
    }

    #[test]
    fn the_model_never_lowers_a_warning_level() {
        // A department matter by every signal, with a threat in it: the rule's level stands.
        let d = classify("小区门口的路灯坏了，再不修我就拿汽油去市政府同归于尽");
        assert_eq!(d.warning_level, "red", "{d:?}");
    }

    #[test]
    fn the_model_adds_its_view_to_the_reasons() {
        let d = classify("老板拖欠工资三个月，工人去讨薪，双方吵起来了，请求帮忙协调。");
        assert!(d.reasons.iter().any(|r| r.starts_with("模型倾向")), "{d:?}");
    }

    #[test]
    fn without_a_model_the_lexicon_still_decides() {
        let c = lexicon_only();
        assert_eq!(c.model(), "lexicon-2026.12-3");
        let d = c.classify(&ticket(
            Source::Legal12348,
            "请问离婚后孩子的抚养权怎么判？",
            None,
        ));
        assert_eq!(d.service, Service::LegalConsultation, "{d:?}");
    }

    #[test]
    fn a_missing_model_file_is_an_error_naming_the_key() {
        let s = SHIPPED.replace(
            "path = \"models/ngram-lr-2026.12-2.hlm\"",
            "path = \"models/nope.hlm\"",
        );
        let err = Classifier::from_lexicon(Lexicon::from_toml_str(&s).unwrap(), &settings());
        assert_eq!(key_of(err.unwrap_err()), "model.path");
    }

    /// Position of a level in `warning_levels` (0 = highest).
    fn rank(level: &str) -> usize {
        settings()
            .warning_levels
            .iter()
            .position(|l| l == level)
            .unwrap()
    }

    fn with_prior_calls(c: &Classifier, text: &str, prior_calls: u32) -> Decision {
        c.classify(&TicketText {
            prior_calls,
            ..ticket(Source::Citizen12345, text, None)
        })
    }

    #[test]
    fn a_vulnerable_party_raises_to_yellow_quoting_the_word() {
        let d = classify("邻居把一个孕妇推倒了，双方吵起来了");
        assert_eq!(d.warning_level, "yellow", "{d:?}");
        assert!(
            d.reasons.iter().any(|r| r == "涉及弱势群体\"孕妇\"→yellow"),
            "{:?}",
            d.reasons
        );
        // 老人家的房子: the elderly owner is still a vulnerable party.
        assert_eq!(classify("老人家的房子被侄子占了").warning_level, "yellow");
        // Phrases that name no vulnerable party.
        assert_eq!(classify("儿童节的活动费用怎么退").warning_level, "none");
        assert_eq!(classify("养老人员工资被拖欠").warning_level, "none");
    }

    #[test]
    fn a_vulnerable_party_needs_harm_or_conflict_nearby() {
        // Policy questions that mention a vulnerable group name no party at risk.
        assert_eq!(
            classify("高龄老人补贴没有发放，请相关部门解决").warning_level,
            "none"
        );
        assert_eq!(classify("小孩入学需要准备什么材料").warning_level, "none");
        // The same words next to harm or neglect do.
        assert_eq!(classify("对方酒驾撞了我家老人").warning_level, "yellow");
        assert_eq!(
            classify("老人有三个儿子，都不愿意出赡养费").warning_level,
            "yellow"
        );
        // A context word too far away does not count (the window is 12 characters).
        let far = format!("老人{}被打了", "的".repeat(30));
        assert_eq!(classify(&far).warning_level, "none", "{far}");
    }

    #[test]
    fn a_vulnerable_party_never_lowers_a_higher_level() {
        let d = classify("他扬言要砍死那个老人");
        assert_eq!(d.warning_level, "red", "{d:?}");
        assert!(
            d.reasons.iter().any(|r| r.contains("涉及弱势群体")),
            "{d:?}"
        );
    }

    #[test]
    fn the_model_cannot_override_the_vulnerable_party_rule() {
        // A department matter by every signal (the model is sure of it): the level stands, and
        // it is the same level the lexicon alone gives.
        let text = "小区门口的路灯坏了一个多月，上周一位老人晚上出门摔伤了，希望有关部门尽快修理。";
        let d = classify(text);
        // A ticket with a warning level is never sent back (issue 17).
        assert_ne!(d.service, Service::OutOfScope, "{d:?}");
        assert_eq!(d.warning_level, "yellow", "{d:?}");
        let alone = lexicon_only().classify(&ticket(Source::Citizen12345, text, None));
        assert_eq!(alone.warning_level, d.warning_level);
    }

    #[test]
    fn repeat_calls_raise_to_yellow_from_the_configured_count() {
        let c = classifier();
        let text = "楼上装修噪音很大，影响孩子写作业";
        assert_eq!(with_prior_calls(&c, text, 0).warning_level, "none");
        assert_eq!(with_prior_calls(&c, text, 1).warning_level, "none");
        let d = with_prior_calls(&c, text, 2);
        assert_eq!(d.warning_level, "yellow", "{d:?}");
        assert!(
            d.reasons
                .iter()
                .any(|r| r == "该来电人近期已来电2次→yellow"),
            "{:?}",
            d.reasons
        );
    }

    #[test]
    fn repeat_calls_never_lower_a_level_and_the_model_cannot_override_them() {
        let c = classifier();
        let texts = [
            "他说要拿刀砍我",
            "二十多名工人堵门讨薪",
            "小区门口的路灯坏了，希望有关部门尽快修理。",
            "请问离婚后孩子的抚养权怎么判？",
            "",
        ];
        for text in texts {
            let first = with_prior_calls(&c, text, 0);
            for n in [2, 5, u32::MAX] {
                let again = with_prior_calls(&c, text, n);
                assert!(
                    rank(&again.warning_level) <= rank(&first.warning_level),
                    "{text}: {first:?} then {again:?}"
                );
                assert!(rank(&again.warning_level) <= rank("yellow"), "{again:?}");
                // The model does not change what the rules decide.
                let alone = lexicon_only().classify(&TicketText {
                    prior_calls: n,
                    ..ticket(Source::Citizen12345, text, None)
                });
                assert_eq!(alone.warning_level, again.warning_level, "{text}");
            }
        }
    }

    #[test]
    fn households_and_figures_without_a_group_action_are_not_crowds() {
        for text in [
            "小区800多户居民的供水问题一直没有解决，希望有关部门处理。",
            "我们小区有800多人，物业费收得太高，请问合理吗？",
            "全县有三十多万人口，只有一个汽车站。",
            "景区每年接待游客30多万人次。",
        ] {
            let d = classify(text);
            assert_eq!(d.warning_level, "none", "{text}: {d:?}");
        }
        // The same numbers with people acting together still count.
        let d = classify("800多名业主聚集在售楼处门口要说法");
        assert_eq!(d.warning_level, "orange", "{d:?}");
        assert!(d.reasons.iter().any(|r| r.contains("800多名业主")), "{d:?}");
        // The operator's count always counts, whatever the text says.
        let d = classifier().classify(&ticket(Source::Police110, "小区居民反映供水问题", Some(30)));
        assert_eq!(d.warning_level, "orange", "{d:?}");
    }

    #[test]
    fn new_warning_sections_refuse_unknown_levels_and_zero_counts() {
        let s = SHIPPED.replace(
            "[warning.vulnerable]\nlevel = \"yellow\"",
            "[warning.vulnerable]\nlevel = \"purple\"",
        );
        let err = Classifier::from_lexicon(Lexicon::from_toml_str(&s).unwrap(), &settings());
        assert_eq!(key_of(err.unwrap_err()), "warning.vulnerable.level");
        let s = SHIPPED.replace("levels = { yellow = 2 }", "levels = { purple = 2 }");
        let err = Classifier::from_lexicon(Lexicon::from_toml_str(&s).unwrap(), &settings());
        assert_eq!(key_of(err.unwrap_err()), "warning.repeat.levels.purple");
        let s = SHIPPED.replace("levels = { yellow = 2 }", "levels = { yellow = 0 }");
        assert_eq!(
            key_of(Lexicon::from_toml_str(&s).unwrap_err()),
            "warning.repeat.levels.yellow"
        );
        let s = SHIPPED.replace("window = 12\n", "window = 0\n");
        assert_ne!(s, SHIPPED);
        assert_eq!(
            key_of(Lexicon::from_toml_str(&s).unwrap_err()),
            "warning.vulnerable.window"
        );
    }

    #[test]
    fn without_the_new_sections_the_lexicon_still_loads_and_counts_every_number() {
        // Older lexicons have no [warning.vulnerable], [warning.repeat] or action words.
        let start = SHIPPED.find("# 一起行动的词").unwrap();
        let end = SHIPPED.find("[[warning.rules]]").unwrap();
        let s = format!("{}{}", &SHIPPED[..start], &SHIPPED[end..]);
        let c = Classifier::from_lexicon(Lexicon::from_toml_str(&s).unwrap(), &settings()).unwrap();
        let d = c.classify(&ticket(
            Source::Citizen12345,
            "小区有800多人，孕妇也有",
            None,
        ));
        assert_eq!(d.warning_level, "orange", "{d:?}");
        assert!(!d.reasons.iter().any(|r| r.contains("弱势群体")), "{d:?}");
        let d = c.classify(&TicketText {
            prior_calls: 9,
            ..ticket(Source::Citizen12345, "", None)
        });
        assert_eq!(d.warning_level, "none", "{d:?}");
    }

    #[test]
    fn odd_characters_do_not_panic() {
        let c = classifier();
        for text in [
            "\u{0}\u{feff}\u{200b}",
            "🤔🤔🤔刀",
            "ｰ\u{0301}\u{0301}",
            "第",
            "万",
        ] {
            let d = c.classify(&ticket(Source::Legal12348, text, Some(0)));
            assert!((0.0..=1.0).contains(&d.confidence));
        }
    }
}
