//! Routing: a classifier decision plus the ticket's region and source in, a target queue out.
//! Pure and synchronous, so the table is tested without Redis.
//!
//! Rules are tried in their configured order and the first match wins, as dispatchers read a
//! routing sheet top to bottom. Without a match each service has a default queue. Triage
//! decisions always go to the region's triage queue, and out-of-scope ones go back to the sender
//! (no queue), so a rule can never silently turn a doubtful ticket into a guess.

use serde::Deserialize;

use crate::classify::{ClassifySettings, Decision, Service};
use crate::setting::{ConfigError, check_queue_template, check_region_prefix, invalid};
use crate::ticket::{Region, Source};

/// `[routing]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingSettings {
    /// Queue for each service when no rule matches; `{county}` is replaced by the region code.
    pub default_queues: DefaultQueues,
    /// Ordered rules; the first that matches names the queue.
    #[serde(default)]
    pub rules: Vec<RuleSettings>,
}

/// `[routing.default_queues]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultQueues {
    /// Lawyers' queue.
    pub legal_consultation: String,
    /// Mediators' queue.
    pub mediation: String,
    /// Humans decide: low confidence and anything unmatched.
    pub triage: String,
}

/// One `[[routing.rules]]` entry. Empty lists match anything.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSettings {
    /// A name for logs and the routing reason.
    pub name: String,
    /// Services the rule applies to.
    #[serde(default)]
    pub services: Vec<String>,
    /// Categories the rule applies to.
    #[serde(default)]
    pub categories: Vec<String>,
    /// Region code prefixes (`32`, `3208`, `320831`).
    #[serde(default)]
    pub region_prefixes: Vec<String>,
    /// Warning levels the rule applies to.
    #[serde(default)]
    pub warning_levels: Vec<String>,
    /// Sources the rule applies to.
    #[serde(default)]
    pub sources: Vec<String>,
    /// Target queue template, with `{county}`.
    pub queue: String,
}

impl RoutingSettings {
    /// Checks the queue templates and rules; categories and warning levels must be
    /// `[classify]`'s.
    pub fn validate(&self, classify: &ClassifySettings) -> Result<(), ConfigError> {
        let d = &self.default_queues;
        for (key, q) in [
            (
                "routing.default_queues.legal_consultation",
                &d.legal_consultation,
            ),
            ("routing.default_queues.mediation", &d.mediation),
            ("routing.default_queues.triage", &d.triage),
        ] {
            check_queue_template(key, q)?;
        }
        for (i, r) in self.rules.iter().enumerate() {
            let at = |field: &str| format!("routing.rules[{i}].{field}");
            check_queue_template(&at("queue"), &r.queue)?;
            for (j, s) in r.services.iter().enumerate() {
                if Service::parse(s).is_none() {
                    return Err(invalid(
                        format!("{}[{j}]", at("services")),
                        format!("unknown service `{s}`"),
                    ));
                }
            }
            for (j, s) in r.categories.iter().enumerate() {
                if !classify.categories.contains(s) {
                    return Err(invalid(
                        format!("{}[{j}]", at("categories")),
                        format!("`{s}` is not in classify.categories"),
                    ));
                }
            }
            for (j, s) in r.warning_levels.iter().enumerate() {
                if !classify.warning_levels.contains(s) {
                    return Err(invalid(
                        format!("{}[{j}]", at("warning_levels")),
                        format!("`{s}` is not in classify.warning_levels"),
                    ));
                }
            }
            for (j, s) in r.sources.iter().enumerate() {
                if Source::parse(s).is_none() {
                    return Err(invalid(
                        format!("{}[{j}]", at("sources")),
                        format!("unknown source `{s}` (12345, 110 or 12348)"),
                    ));
                }
            }
            for (j, p) in r.region_prefixes.iter().enumerate() {
                check_region_prefix(&format!("{}[{j}]", at("region_prefixes")), p)?;
            }
        }
        Ok(())
    }
}

/// Where a ticket goes, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The queue, or `None` when the ticket goes back to the sender.
    pub queue: Option<String>,
    /// Name of the rule that decided (`default:<service>` when none matched).
    pub rule: String,
    /// Priority band: the warning level's position in the scale, 0 = most urgent.
    pub band: u32,
}

/// The compiled routing table.
#[derive(Debug, Clone)]
pub struct Router {
    rules: Vec<Rule>,
    legal: String,
    mediation: String,
    triage: String,
    levels: Vec<String>,
}

#[derive(Debug, Clone)]
struct Rule {
    name: String,
    services: Vec<Service>,
    categories: Vec<String>,
    region_prefixes: Vec<String>,
    warning_levels: Vec<String>,
    sources: Vec<Source>,
    queue: String,
}

impl Rule {
    fn from_settings(r: &RuleSettings) -> Rule {
        Rule {
            name: r.name.clone(),
            // Config validation has already refused unknown names.
            services: r
                .services
                .iter()
                .filter_map(|s| Service::parse(s))
                .collect(),
            categories: r.categories.clone(),
            region_prefixes: r.region_prefixes.clone(),
            warning_levels: r.warning_levels.clone(),
            sources: r.sources.iter().filter_map(|s| Source::parse(s)).collect(),
            queue: r.queue.clone(),
        }
    }

    fn matches(&self, d: &Decision, source: Source, region: &Region) -> bool {
        fn any_or<T>(list: &[T], f: impl Fn(&T) -> bool) -> bool {
            list.is_empty() || list.iter().any(f)
        }
        any_or(&self.services, |s| *s == d.service)
            && any_or(&self.categories, |c| *c == d.category)
            && any_or(&self.warning_levels, |l| *l == d.warning_level)
            && any_or(&self.sources, |s| *s == source)
            && any_or(&self.region_prefixes, |p| {
                region.code.starts_with(p.as_str())
            })
    }
}

impl Router {
    /// Compiles the configured table; `levels` is the warning scale, highest first.
    pub fn new(settings: &RoutingSettings, levels: &[String]) -> Router {
        Router {
            rules: settings.rules.iter().map(Rule::from_settings).collect(),
            legal: settings.default_queues.legal_consultation.clone(),
            mediation: settings.default_queues.mediation.clone(),
            triage: settings.default_queues.triage.clone(),
            levels: levels.to_vec(),
        }
    }

    /// Priority band of a warning level; unknown levels get the lowest band.
    pub fn band(&self, level: &str) -> u32 {
        let pos = self
            .levels
            .iter()
            .position(|l| l == level)
            .unwrap_or(self.levels.len().saturating_sub(1));
        u32::try_from(pos).unwrap_or(u32::MAX)
    }

    /// Decides the queue for one ticket.
    pub fn route(&self, d: &Decision, source: Source, region: &Region) -> Route {
        let band = self.band(&d.warning_level);
        let fill = |template: &str| template.replace("{county}", &region.code);
        match d.service {
            Service::OutOfScope => Route {
                queue: None,
                rule: "default:out_of_scope".into(),
                band,
            },
            Service::Triage => Route {
                queue: Some(fill(&self.triage)),
                rule: "default:triage".into(),
                band,
            },
            Service::LegalConsultation | Service::Mediation => {
                if let Some(rule) = self.rules.iter().find(|r| r.matches(d, source, region)) {
                    return Route {
                        queue: Some(fill(&rule.queue)),
                        rule: rule.name.clone(),
                        band,
                    };
                }
                let template = if d.service == Service::Mediation {
                    &self.mediation
                } else {
                    &self.legal
                };
                Route {
                    queue: Some(fill(template)),
                    rule: format!("default:{}", d.service.as_str()),
                    band,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn levels() -> Vec<String> {
        ["orange", "red", "yellow", "none"]
            .map(String::from)
            .to_vec()
    }

    fn router(rules: Vec<RuleSettings>) -> Router {
        Router::new(
            &RoutingSettings {
                default_queues: DefaultQueues {
                    legal_consultation: "legal.{county}".into(),
                    mediation: "mediation.{county}".into(),
                    triage: "triage.{county}".into(),
                },
                rules,
            },
            &levels(),
        )
    }

    fn rule(name: &str, queue: &str) -> RuleSettings {
        RuleSettings {
            name: name.into(),
            services: vec![],
            categories: vec![],
            region_prefixes: vec![],
            warning_levels: vec![],
            sources: vec![],
            queue: queue.into(),
        }
    }

    fn decision(service: Service, category: &str, level: &str) -> Decision {
        Decision {
            service,
            category: category.into(),
            warning_level: level.into(),
            confidence: 0.9,
            reasons: vec![],
            model: "test".into(),
        }
    }

    fn region(code: &str) -> Region {
        Region {
            code: code.into(),
            town: None,
            village: None,
            grid: None,
        }
    }

    #[test]
    fn the_first_matching_rule_names_the_queue() {
        let mut labour = rule("labour", "mediation.{county}.labour");
        labour.services = vec!["mediation".into()];
        labour.categories = vec!["labour".into()];
        let catch_all = rule("everything", "mediation.{county}.general");
        let r = router(vec![labour, catch_all]);
        let route = r.route(
            &decision(Service::Mediation, "labour", "none"),
            Source::Citizen12345,
            &region("320831"),
        );
        assert_eq!(route.queue.as_deref(), Some("mediation.320831.labour"));
        assert_eq!(route.rule, "labour");
        let route = r.route(
            &decision(Service::Mediation, "neighbour", "none"),
            Source::Citizen12345,
            &region("320831"),
        );
        assert_eq!(route.queue.as_deref(), Some("mediation.320831.general"));
    }

    #[test]
    fn each_service_falls_back_to_its_default_queue() {
        let r = router(vec![]);
        let legal = r.route(
            &decision(Service::LegalConsultation, "labour", "none"),
            Source::Legal12348,
            &region("110101"),
        );
        assert_eq!(legal.queue.as_deref(), Some("legal.110101"));
        assert_eq!(legal.rule, "default:legal_consultation");
        let med = r.route(
            &decision(Service::Mediation, "other", "none"),
            Source::Police110,
            &region("110101"),
        );
        assert_eq!(med.queue.as_deref(), Some("mediation.110101"));
    }

    #[test]
    fn triage_goes_to_the_regions_triage_queue_even_when_a_rule_would_match() {
        let r = router(vec![rule("everything", "mediation.{county}")]);
        let route = r.route(
            &decision(Service::Triage, "labour", "red"),
            Source::Citizen12345,
            &region("320831"),
        );
        assert_eq!(route.queue.as_deref(), Some("triage.320831"));
        assert_eq!(route.band, 1);
    }

    #[test]
    fn out_of_scope_goes_back_to_the_sender() {
        let r = router(vec![rule("everything", "mediation.{county}")]);
        let route = r.route(
            &decision(Service::OutOfScope, "other", "none"),
            Source::Citizen12345,
            &region("320831"),
        );
        assert_eq!(route.queue, None);
    }

    #[test]
    fn rules_match_on_region_prefix_level_and_source() {
        let mut urgent = rule("urgent in 3208", "mediation.{county}.urgent");
        urgent.region_prefixes = vec!["3208".into()];
        urgent.warning_levels = vec!["orange".into(), "red".into()];
        urgent.sources = vec!["110".into()];
        let r = router(vec![urgent]);
        let hit = r.route(
            &decision(Service::Mediation, "neighbour", "red"),
            Source::Police110,
            &region("320831"),
        );
        assert_eq!(hit.queue.as_deref(), Some("mediation.320831.urgent"));
        for (level, source, code) in [
            ("yellow", Source::Police110, "320831"),
            ("red", Source::Citizen12345, "320831"),
            ("red", Source::Police110, "310101"),
        ] {
            let miss = r.route(
                &decision(Service::Mediation, "neighbour", level),
                source,
                &region(code),
            );
            assert_eq!(miss.queue.as_deref(), Some(&*format!("mediation.{code}")));
        }
    }

    #[test]
    fn bands_follow_the_warning_scale_highest_first() {
        let r = router(vec![]);
        assert_eq!(r.band("orange"), 0);
        assert_eq!(r.band("none"), 3);
        assert_eq!(r.band("unknown"), 3);
    }
}
