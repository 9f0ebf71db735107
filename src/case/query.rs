//! Searching cases: the query operators and supervisors send (`GET /v1/tickets`), checked
//! field by field, the predicate Redis' side applies, the cursor, and the merge of the open
//! tickets (Redis) with the archived ones (PostgreSQL) into one page.

use super::CaseIndex;
use serde_json::Value;

use crate::lifecycle::Status;

/// The longest text query, in characters: a bound on the work of one `strpos` per candidate.
pub const MAX_TEXT_QUERY: usize = 100;

/// The most tickets one page of a search answers.
pub const MAX_LIMIT: usize = 100;

/// Tickets per page when the caller does not say.
pub const DEFAULT_LIMIT: usize = 20;

/// A search's filters as the caller wrote them, every one a string, so that validation can name
/// each field it refuses (a wrong type would otherwise be a 400 naming nothing).
#[derive(Clone, Default, PartialEq)]
pub struct SearchFilters {
    /// Text to find in the title or the caller's words (a substring, at least 2 characters).
    pub q: Option<String>,
    /// Hotline (`12345`, `110`, `12348`).
    pub source: Option<String>,
    /// The sender's own id.
    pub external_id: Option<String>,
    /// The caller's phone (personal data: searched by its hash, never logged or stored).
    pub phone: Option<String>,
    /// Status (`queued` … `transferred`).
    pub status: Option<String>,
    /// Service decided.
    pub service: Option<String>,
    /// Category label.
    pub category: Option<String>,
    /// Warning level.
    pub level: Option<String>,
    /// County code.
    pub county: Option<String>,
    /// Town, as the request named it.
    pub town: Option<String>,
    /// The agent who works or last worked it.
    pub agent: Option<String>,
    /// Created at or after (RFC 3339).
    pub created_from: Option<String>,
    /// Created before (RFC 3339).
    pub created_to: Option<String>,
    /// Resolved at or after (RFC 3339).
    pub resolved_from: Option<String>,
    /// Resolved before (RFC 3339).
    pub resolved_to: Option<String>,
    /// Tickets per page, 1 to [`MAX_LIMIT`].
    pub limit: Option<String>,
    /// Where the previous page ended ([`Cursor::encode`]).
    pub cursor: Option<String>,
}

impl std::fmt::Debug for SearchFilters {
    /// Everything but the phone number, which is personal data and must not reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchFilters")
            .field("q", &self.q)
            .field("source", &self.source)
            .field("external_id", &self.external_id)
            .field(
                "phone",
                &self.phone.as_deref().map(crate::ticket::mask_phone),
            )
            .field("status", &self.status)
            .field("service", &self.service)
            .field("category", &self.category)
            .field("level", &self.level)
            .field("county", &self.county)
            .field("town", &self.town)
            .field("agent", &self.agent)
            .field("created_from", &self.created_from)
            .field("created_to", &self.created_to)
            .field("resolved_from", &self.resolved_from)
            .field("resolved_to", &self.resolved_to)
            .field("limit", &self.limit)
            .field("cursor", &self.cursor)
            .finish()
    }
}

/// The values a search's enumerated filters are checked against: the deployment's own.
#[derive(Debug, Clone, Copy)]
pub struct SearchVocabulary<'a> {
    /// `classify.categories`.
    pub categories: &'a [String],
    /// `classify.warning_levels`.
    pub levels: &'a [String],
    /// `[counties]`.
    pub counties: &'a crate::county::Counties,
}

/// A half-open time range, ms: `from` inclusive, `to` exclusive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    /// At or after, when set.
    pub from_ms: Option<i64>,
    /// Before, when set.
    pub to_ms: Option<i64>,
}

impl TimeRange {
    /// Whether neither end is set.
    pub fn is_open(&self) -> bool {
        self.from_ms.is_none() && self.to_ms.is_none()
    }

    /// Whether `ms` lies in the range; a missing time lies in no bounded range.
    pub fn contains(&self, ms: Option<i64>) -> bool {
        if self.is_open() {
            return true;
        }
        let Some(ms) = ms else { return false };
        self.from_ms.is_none_or(|f| ms >= f) && self.to_ms.is_none_or(|t| ms < t)
    }
}

/// Where a page ended: the last ticket answered, by the order of every search (newest first,
/// then the greater id first). The next page holds only tickets strictly after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Its creation time, ms.
    pub created_ms: i64,
    /// Its id.
    pub id: String,
}

impl Cursor {
    /// The opaque form given to clients: URL-safe base64 of `created_ms:id`, so it travels in a
    /// query string unescaped and clients do not build it themselves.
    pub fn encode(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("{}:{}", self.created_ms, self.id))
    }

    /// Reads a cursor given back by a client; `None` for anything [`Cursor::encode`] did not
    /// make.
    pub fn decode(s: &str) -> Option<Cursor> {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s.as_bytes())
            .ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (ms, id) = text.split_once(':')?;
        let ok_id = !id.is_empty()
            && id.len() <= 40
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        ok_id.then_some(())?;
        Some(Cursor {
            created_ms: ms.parse().ok()?,
            id: id.to_string(),
        })
    }

    /// Whether a ticket created at `created_ms` with id `id` comes after this cursor.
    pub fn is_before(&self, created_ms: i64, id: &str) -> bool {
        (created_ms, id) < (self.created_ms, self.id.as_str())
    }
}

/// A validated search: what a ticket must be to be listed, and which page. The caller's scope
/// (counties, and a partner's own tickets) is part of it, so one predicate decides everything.
#[derive(Clone, PartialEq)]
pub struct CaseQuery {
    /// Substring of the title or the caller's words, exactly as written.
    pub text: Option<String>,
    /// Hotline.
    pub source: Option<String>,
    /// The sender's own id.
    pub external_id: Option<String>,
    /// The hash of the caller's phone ([`crate::ticket::Caller::key`]); the number itself is not
    /// kept.
    pub caller_key: Option<String>,
    /// Status.
    pub status: Option<String>,
    /// Service.
    pub service: Option<String>,
    /// Category.
    pub category: Option<String>,
    /// Warning level.
    pub level: Option<String>,
    /// The counties searched; `None` is every county (a caller without region limits, and no
    /// `county` filter).
    pub counties: Option<Vec<String>>,
    /// Town.
    pub town: Option<String>,
    /// Agent.
    pub agent: Option<String>,
    /// Creation time.
    pub created: TimeRange,
    /// Resolution time.
    pub resolved: TimeRange,
    /// Only the tickets this sender sent (a partner's search).
    pub sender: Option<String>,
    /// Tickets per page.
    pub limit: usize,
    /// Where the previous page ended.
    pub after: Option<Cursor>,
}

impl std::fmt::Debug for CaseQuery {
    /// The caller key is a hash, but of personal data: it is shown only as present.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaseQuery")
            .field("text", &self.text)
            .field("source", &self.source)
            .field("external_id", &self.external_id)
            .field("by_phone", &self.caller_key.is_some())
            .field("status", &self.status)
            .field("service", &self.service)
            .field("category", &self.category)
            .field("level", &self.level)
            .field("counties", &self.counties)
            .field("town", &self.town)
            .field("agent", &self.agent)
            .field("created", &self.created)
            .field("resolved", &self.resolved)
            .field("sender", &self.sender)
            .field("limit", &self.limit)
            .field("after", &self.after)
            .finish()
    }
}

/// One ticket found by a search: what the list shows of it. Never the caller's name or phone
/// (the archive's side does not even read them).
#[derive(Debug, Clone, PartialEq)]
pub struct CaseHit {
    /// `<county>-<seq>`.
    pub id: String,
    /// County.
    pub county: String,
    /// Its searchable facts (`caller_*` and `text` left empty).
    pub index: CaseIndex,
    /// Whether it was found in the case archive rather than among the tickets in Redis.
    pub archived: bool,
}

impl CaseHit {
    /// The cursor that ends a page at this ticket.
    pub fn cursor(&self) -> Cursor {
        Cursor {
            created_ms: self.index.created_ms,
            id: self.id.clone(),
        }
    }

    /// Newest first, then the greater id first: the order of every search, on both sides.
    pub fn order(a: &CaseHit, b: &CaseHit) -> std::cmp::Ordering {
        (b.index.created_ms, b.id.as_str()).cmp(&(a.index.created_ms, a.id.as_str()))
    }
}

/// One page of a search.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SearchPage {
    /// The tickets, in order.
    pub hits: Vec<CaseHit>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

/// Merges the two sides of a search into one page. `open` are the matches among the tickets in
/// Redis and `in_redis` every id Redis showed while finding them; `archived` the archive's
/// matches. Each side is in [`CaseHit::order`] and holds up to `limit + 1` matches.
///
/// A ticket Redis holds is judged by Redis alone: an archived copy of it is dropped whether or
/// not it matched, since the archive may hold an older version (archived, then reopened) that no
/// longer says what the ticket is. Redis lists each ticket once, so nothing else repeats.
pub fn merge(
    open: Vec<CaseHit>,
    in_redis: &std::collections::HashSet<String>,
    archived: Vec<CaseHit>,
    limit: usize,
) -> SearchPage {
    let mut all: Vec<CaseHit> = open;
    all.extend(archived.into_iter().filter(|h| !in_redis.contains(&h.id)));
    all.sort_by(CaseHit::order);
    all.dedup_by(|b, a| a.id == b.id);
    let next = (all.len() > limit && limit > 0).then(|| all[limit - 1].cursor());
    all.truncate(limit);
    SearchPage { hits: all, next }
}

fn one_of(
    errors: &mut Vec<(String, String)>,
    field: &str,
    value: Option<&String>,
    allowed: &[&str],
) -> Option<String> {
    let v = value?;
    if allowed.contains(&v.as_str()) {
        Some(v.clone())
    } else {
        errors.push((
            field.to_string(),
            format!("must be one of: {}", allowed.join(", ")),
        ));
        None
    }
}

fn time(errors: &mut Vec<(String, String)>, field: &str, value: Option<&String>) -> Option<i64> {
    let v = value?;
    match chrono::DateTime::parse_from_rfc3339(v) {
        Ok(t) => Some(t.timestamp_millis()),
        Err(_) => {
            errors.push((
                field.to_string(),
                "must be an RFC 3339 time, e.g. 2026-01-05T09:30:00+08:00".to_string(),
            ));
            None
        }
    }
}

fn range(
    errors: &mut Vec<(String, String)>,
    names: (&str, &str),
    from: Option<&String>,
    to: Option<&String>,
) -> TimeRange {
    let r = TimeRange {
        from_ms: time(errors, names.0, from),
        to_ms: time(errors, names.1, to),
    };
    if let (Some(f), Some(t)) = (r.from_ms, r.to_ms)
        && t <= f
    {
        errors.push((names.1.to_string(), format!("must be after `{}`", names.0)));
    }
    r
}

/// A free-text filter: trimmed, 1 to 64 characters, no control characters.
fn plain(
    errors: &mut Vec<(String, String)>,
    field: &str,
    value: Option<&String>,
) -> Option<String> {
    let v = value?.trim();
    if v.is_empty() || v.chars().count() > 64 || v.chars().any(char::is_control) {
        errors.push((
            field.to_string(),
            "must be 1 to 64 characters without control characters".to_string(),
        ));
        return None;
    }
    Some(v.to_string())
}

/// Whether `text` has two adjacent characters that are not whitespace: the pair the archive's
/// bigram index needs to narrow a text search (`archive::bigrams` breaks pairs at whitespace).
fn has_pair(text: &str) -> bool {
    let mut previous = false;
    for c in text.chars() {
        let here = !c.is_whitespace();
        if previous && here {
            return true;
        }
        previous = here;
    }
    false
}

impl CaseQuery {
    /// Validates `filters` against the deployment's `vocabulary`; every refused field is named,
    /// with what would be accepted. The scope is not set here (every county, any sender): the
    /// service narrows it to the caller's.
    pub fn parse(
        filters: &SearchFilters,
        vocabulary: &SearchVocabulary<'_>,
    ) -> Result<CaseQuery, Vec<(String, String)>> {
        let mut errors: Vec<(String, String)> = Vec::new();
        let f = filters;
        let text = f.q.as_ref().and_then(|q| {
            let q = q.trim();
            // The archive finds text through pairs of characters (a bigram index); a query
            // without a pair would have to read every case.
            if q.chars().count() > MAX_TEXT_QUERY || !has_pair(q) || q.chars().any(char::is_control)
            {
                errors.push((
                    "q".to_string(),
                    format!(
                        "must hold at least 2 adjacent characters (not spaces), at most {MAX_TEXT_QUERY} in all, no control characters: text is found by pairs of characters"
                    ),
                ));
                return None;
            }
            Some(q.to_string())
        });
        let sources: Vec<&str> = crate::ticket::Source::ALL
            .iter()
            .map(|s| s.as_str())
            .collect();
        let statuses: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
        let services: Vec<&str> = crate::classify::Service::ALL
            .iter()
            .map(|s| s.as_str())
            .collect();
        let categories: Vec<&str> = vocabulary.categories.iter().map(String::as_str).collect();
        let levels: Vec<&str> = vocabulary.levels.iter().map(String::as_str).collect();
        let caller_key = f.phone.as_ref().and_then(|phone| {
            let caller = crate::ticket::Caller {
                name: String::new(),
                phone: phone.clone(),
            };
            let key = caller.key();
            if key.is_empty() || phone.chars().count() > 32 {
                errors.push((
                    "phone".to_string(),
                    "must be a phone number of at least 5 digits (digits, `+`, `-` and spaces)"
                        .to_string(),
                ));
                return None;
            }
            Some(key)
        });
        let county = f.county.as_ref().and_then(|c| {
            if vocabulary.counties.contains(c) {
                Some(c.clone())
            } else {
                errors.push(("county".to_string(), vocabulary.counties.refusal(c)));
                None
            }
        });
        let limit = match f.limit.as_deref() {
            None => DEFAULT_LIMIT,
            Some(l) => match l.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    errors.push(("limit".to_string(), format!("must be 1 to {MAX_LIMIT}")));
                    DEFAULT_LIMIT
                }
            },
        };
        let after = f.cursor.as_ref().and_then(|c| {
            let cursor = Cursor::decode(c);
            if cursor.is_none() {
                errors.push((
                    "cursor".to_string(),
                    "is not a cursor this API gave (pass `next_cursor` back as it is)".to_string(),
                ));
            }
            cursor
        });
        let query = CaseQuery {
            text,
            source: one_of(&mut errors, "source", f.source.as_ref(), &sources),
            external_id: plain(&mut errors, "external_id", f.external_id.as_ref()),
            caller_key,
            status: one_of(&mut errors, "status", f.status.as_ref(), &statuses),
            service: one_of(&mut errors, "service", f.service.as_ref(), &services),
            category: one_of(&mut errors, "category", f.category.as_ref(), &categories),
            level: one_of(&mut errors, "level", f.level.as_ref(), &levels),
            counties: county.map(|c| vec![c]),
            town: plain(&mut errors, "town", f.town.as_ref()),
            agent: plain(&mut errors, "agent", f.agent.as_ref()),
            created: range(
                &mut errors,
                ("created_from", "created_to"),
                f.created_from.as_ref(),
                f.created_to.as_ref(),
            ),
            resolved: range(
                &mut errors,
                ("resolved_from", "resolved_to"),
                f.resolved_from.as_ref(),
                f.resolved_to.as_ref(),
            ),
            sender: None,
            limit,
            after,
        };
        if errors.is_empty() {
            Ok(query)
        } else {
            Err(errors)
        }
    }

    /// Whether the tickets the archive holds (ended ones only) could match at all: a search for
    /// an open status need not ask it.
    pub fn may_match_archived(&self) -> bool {
        self.status
            .as_deref()
            .and_then(Status::parse)
            .is_none_or(Status::is_ended)
    }

    /// Whether the ticket's labels match: county, source, status, service, category, level,
    /// sender and creation time, the facts the store keeps as plain fields. The store checks
    /// these first and reads the rest (the request, the clocks) only for tickets that pass.
    pub fn matches_labels(&self, county: &str, i: &CaseIndex) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        self.counties
            .as_ref()
            .is_none_or(|cs| cs.iter().any(|c| c == county))
            && eq(&self.source, &i.source)
            && eq(&self.status, &i.status)
            && eq(&self.service, &i.service)
            && eq(&self.category, &i.category)
            && eq(&self.level, &i.level)
            && self
                .sender
                .as_deref()
                .is_none_or(|w| i.sender.as_deref() == Some(w))
            && self.created.contains(Some(i.created_ms))
    }

    /// Whether the ticket of `county` with these facts matches every filter and the scope, the
    /// agent aside ([`CaseQuery::agent_matches`]): the store reads an agent from the history
    /// only for tickets that pass the rest.
    pub fn matches_besides_agent(&self, county: &str, i: &CaseIndex) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        self.matches_labels(county, i)
            && eq(&self.external_id, &i.external_id)
            && eq(&self.caller_key, &i.caller_key)
            && self
                .town
                .as_deref()
                .is_none_or(|w| i.town.as_deref() == Some(w))
            && self.resolved.contains(i.resolved_ms)
            && self
                .text
                .as_deref()
                .is_none_or(|q| i.title.contains(q) || i.text.contains(q))
    }

    /// Whether the agent filter, if any, names `agent`.
    pub fn agent_matches(&self, agent: Option<&str>) -> bool {
        self.agent.as_deref().is_none_or(|w| agent == Some(w))
    }

    /// Whether the ticket of `county` with these facts is one this search lists: the predicate
    /// the store applies to the tickets in Redis, and the archive's SQL says the same.
    pub fn matches(&self, county: &str, i: &CaseIndex) -> bool {
        self.matches_besides_agent(county, i) && self.agent_matches(i.agent.as_deref())
    }

    /// The filters as the audit log records them: everything asked, except the phone number,
    /// whose presence is recorded as `by_phone`.
    pub fn audit_detail(&self) -> Value {
        let mut m = serde_json::Map::new();
        let mut put = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                m.insert(k.to_string(), Value::String(v.clone()));
            }
        };
        put("q", &self.text);
        put("source", &self.source);
        put("external_id", &self.external_id);
        put("status", &self.status);
        put("service", &self.service);
        put("category", &self.category);
        put("level", &self.level);
        put("town", &self.town);
        put("agent", &self.agent);
        put("sender", &self.sender);
        if let Some(cs) = &self.counties {
            m.insert("counties".into(), serde_json::json!(cs));
        }
        for (name, r) in [("created", self.created), ("resolved", self.resolved)] {
            if !r.is_open() {
                m.insert(
                    name.into(),
                    serde_json::json!({"from_ms": r.from_ms, "to_ms": r.to_ms}),
                );
            }
        }
        m.insert("by_phone".into(), Value::Bool(self.caller_key.is_some()));
        m.insert("limit".into(), serde_json::json!(self.limit));
        m.insert("page".into(), Value::Bool(self.after.is_some()));
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::county::Counties;

    struct Vocab {
        categories: Vec<String>,
        levels: Vec<String>,
        counties: Counties,
    }

    fn vocab() -> Vocab {
        Vocab {
            categories: vec!["labour".into(), "neighbour".into(), "other".into()],
            levels: vec!["red".into(), "yellow".into(), "none".into()],
            counties: Counties::from_pairs([("320831", "金湖县"), ("440305", "南山区")]),
        }
    }

    fn parse(f: &SearchFilters) -> Result<CaseQuery, Vec<(String, String)>> {
        let v = vocab();
        CaseQuery::parse(
            f,
            &SearchVocabulary {
                categories: &v.categories,
                levels: &v.levels,
                counties: &v.counties,
            },
        )
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    fn index() -> CaseIndex {
        CaseIndex {
            status: "closed".into(),
            source: "12345".into(),
            external_id: "A-1".into(),
            sender: Some("partner-12345".into()),
            service: "mediation".into(),
            category: "labour".into(),
            level: "yellow".into(),
            town: Some("城关镇".into()),
            agent: Some("m-1".into()),
            created_ms: 1_000,
            resolved_ms: Some(5_000),
            title: "工地拖欠工资".into(),
            text: "老板拖欠工资三个月，双方多次协商未果".into(),
            caller_key: crate::ticket::Caller {
                name: String::new(),
                phone: "13812348000".into(),
            }
            .key(),
            ..CaseIndex::default()
        }
    }

    #[test]
    fn every_refused_filter_is_named_with_what_would_do() {
        let f = SearchFilters {
            q: s("工"),
            source: s("999"),
            phone: s("12-3"),
            status: s("open"),
            service: s("lawyer"),
            category: s("wages"),
            level: s("purple"),
            county: s("999999"),
            town: s(""),
            created_from: s("yesterday"),
            resolved_from: s("2026-02-01T00:00:00Z"),
            resolved_to: s("2026-01-01T00:00:00Z"),
            limit: s("101"),
            cursor: s("not a cursor"),
            ..SearchFilters::default()
        };
        let errors = parse(&f).expect_err("refused");
        let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        for field in [
            "q",
            "source",
            "phone",
            "status",
            "service",
            "category",
            "level",
            "county",
            "town",
            "created_from",
            "resolved_to",
            "limit",
            "cursor",
        ] {
            assert!(fields.contains(&field), "{field} not named in {fields:?}");
        }
        assert_eq!(fields.len(), 13, "{errors:?}");
        let message = |f: &str| &errors.iter().find(|(n, _)| n == f).expect(f).1;
        assert!(
            message("category").contains("labour"),
            "the values are listed"
        );
        assert!(message("q").contains("2"), "{}", message("q"));
        // The phone is never repeated back, nor are configured-value messages about it.
        assert!(!errors.iter().any(|(_, m)| m.contains("12-3")));
        for limit in ["0", "abc", "-1"] {
            let f = SearchFilters {
                limit: s(limit),
                ..SearchFilters::default()
            };
            assert_eq!(parse(&f).expect_err(limit)[0].0, "limit");
        }
        // Two characters with a space between are no pair: the bigram index could not narrow it.
        // A NUL would be refused by PostgreSQL as a 500: it is the caller's mistake, a 422.
        for q in ["工 资", "工资\u{0}", "  "] {
            let f = SearchFilters {
                q: s(q),
                ..SearchFilters::default()
            };
            assert_eq!(parse(&f).expect_err(q)[0].0, "q");
        }
    }

    #[test]
    fn a_valid_search_keeps_its_values_and_the_phone_only_as_its_hash() {
        let f = SearchFilters {
            q: s("  工资 "),
            phone: s("138-1234-8000"),
            status: s("closed"),
            county: s("320831"),
            created_from: s("2026-01-05T09:30:00+08:00"),
            ..SearchFilters::default()
        };
        let q = parse(&f).expect("valid");
        assert_eq!(q.text.as_deref(), Some("工资"));
        assert_eq!(q.limit, DEFAULT_LIMIT);
        assert_eq!(q.caller_key.as_deref(), Some(index().caller_key.as_str()));
        assert_eq!(q.counties, Some(vec!["320831".to_string()]));
        assert_eq!(q.created.from_ms, Some(1_767_576_600_000));
        assert!(q.may_match_archived());
        let debug = format!("{q:?} {f:?}");
        assert!(!debug.contains("1234"), "{debug}");
        let audit = q.audit_detail().to_string();
        assert!(!audit.contains("1234") && !audit.contains(&index().caller_key));
        assert!(audit.contains("\"by_phone\":true"), "{audit}");
        let open = parse(&SearchFilters {
            status: s("queued"),
            ..SearchFilters::default()
        })
        .expect("valid");
        assert!(
            !open.may_match_archived(),
            "the archive holds ended tickets only"
        );
    }

    #[test]
    fn a_cursor_goes_round_and_junk_is_no_cursor() {
        let c = Cursor {
            created_ms: 1_767_576_600_123,
            id: "320831-00000042".into(),
        };
        let text = c.encode();
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(Cursor::decode(&text), Some(c.clone()));
        for junk in ["", "!!", "MTIz", "YWJjOjMyMDgzMS0x"] {
            assert_eq!(Cursor::decode(junk), None, "{junk}");
        }
        assert!(c.is_before(c.created_ms, "320831-00000041"));
        assert!(!c.is_before(c.created_ms, "320831-00000042"));
        assert!(c.is_before(c.created_ms - 1, "320831-99999999"));
        assert!(!c.is_before(c.created_ms + 1, "000000-0"));
    }

    #[test]
    fn each_filter_decides_alone_and_all_must_hold() {
        let i = index();
        let all = parse(&SearchFilters::default()).expect("valid");
        assert!(all.matches("320831", &i));
        let yes_no: Vec<(SearchFilters, SearchFilters)> = vec![
            (
                SearchFilters {
                    q: s("拖欠工资"),
                    ..Default::default()
                },
                SearchFilters {
                    q: s("工资拖欠"),
                    ..Default::default()
                },
            ),
            (
                SearchFilters {
                    q: s("协商"),
                    ..Default::default()
                },
                SearchFilters {
                    q: s("调解"),
                    ..Default::default()
                },
            ),
            (
                SearchFilters {
                    source: s("12345"),
                    ..Default::default()
                },
                SearchFilters {
                    source: s("110"),
                    ..Default::default()
                },
            ),
            (
                SearchFilters {
                    external_id: s("A-1"),
                    ..Default::default()
                },
                SearchFilters {
                    external_id: s("A-2"),
                    ..Default::default()
                },
            ),
            (
                SearchFilters {
                    phone: s("138 1234 8000"),
                    ..Default::default()
                },
                SearchFilters {
                    phone: s("13812348001"),
                    ..Default::default()
                },
            ),
            (
                SearchFilters {
                    status: s("closed"),
                    ..Default::default()
                },
                SearchFilters {
                    status: s("queued"),
                    ..Default::default()
                },
            ),
            (
                SearchFilters {
                    service: s("mediation"),
                    ..Default::default()
                },
                SearchFilters {
                    service: s("legal_consultation"),
                    ..Default::default()
                },
            ),
            (
                SearchFilters {
                    category: s("labour"),
                    ..Default::default()
                },
                SearchFilters {
                    category: s("neighbour"),
                    ..Default::default()
                },
            ),
            (
                SearchFilters {
                    level: s("yellow"),
                    ..Default::default()
                },
                SearchFilters {
                    level: s("red"),
                    ..Default::default()
                },
            ),
            (
                SearchFilters {
                    county: s("320831"),
                    ..Default::default()
                },
                SearchFilters {
                    county: s("440305"),
                    ..Default::default()
                },
            ),
            (
                SearchFilters {
                    town: s("城关镇"),
                    ..Default::default()
                },
                SearchFilters {
                    town: s("城关"),
                    ..Default::default()
                },
            ),
            (
                SearchFilters {
                    agent: s("m-1"),
                    ..Default::default()
                },
                SearchFilters {
                    agent: s("m-2"),
                    ..Default::default()
                },
            ),
            (
                SearchFilters {
                    created_from: s("1970-01-01T00:00:01Z"),
                    created_to: s("1970-01-01T00:00:01.001Z"),
                    ..Default::default()
                },
                SearchFilters {
                    created_to: s("1970-01-01T00:00:01Z"),
                    ..Default::default()
                },
            ),
            (
                SearchFilters {
                    resolved_from: s("1970-01-01T00:00:05Z"),
                    ..Default::default()
                },
                SearchFilters {
                    resolved_from: s("1970-01-01T00:00:05.001Z"),
                    ..Default::default()
                },
            ),
        ];
        for (yes, no) in yes_no {
            let (y, n) = (parse(&yes).expect("valid"), parse(&no).expect("valid"));
            assert!(y.matches("320831", &i), "{yes:?} should match");
            assert!(!n.matches("320831", &i), "{no:?} should not match");
        }
        // An unresolved ticket is in no resolution range; a partner's search lists its own.
        let resolved = parse(&SearchFilters {
            resolved_to: s("2030-01-01T00:00:00Z"),
            ..Default::default()
        })
        .expect("valid");
        let open = CaseIndex {
            resolved_ms: None,
            ..index()
        };
        assert!(!resolved.matches("320831", &open));
        let mut mine = all.clone();
        mine.sender = s("partner-12345");
        assert!(mine.matches("320831", &i));
        mine.sender = s("partner-110");
        assert!(!mine.matches("320831", &i));
        assert!(!mine.matches(
            "320831",
            &CaseIndex {
                sender: None,
                ..index()
            }
        ));
    }

    fn hit(created_ms: i64, id: &str, archived: bool) -> CaseHit {
        CaseHit {
            id: id.to_string(),
            county: id[..6].to_string(),
            index: CaseIndex {
                created_ms,
                status: if archived { "closed" } else { "queued" }.into(),
                ..CaseIndex::default()
            },
            archived,
        }
    }

    #[test]
    fn merging_orders_both_sides_and_redis_speaks_for_what_it_holds() {
        let open = vec![hit(30, "320831-3", false), hit(10, "320831-1", false)];
        // 320831-1 is in Redis again (reopened) and its archived copy must not show; 320831-5 was
        // seen in Redis and did not match there, so its archived copy (an older version) is
        // dropped too.
        let archived = vec![
            hit(40, "440305-9", true),
            hit(20, "320831-5", true),
            hit(10, "320831-1", true),
            hit(10, "320831-0", true),
        ];
        let seen: HashSet<String> = ["320831-3", "320831-1", "320831-5"]
            .into_iter()
            .map(String::from)
            .collect();
        let page = merge(open.clone(), &seen, archived.clone(), 10);
        let ids: Vec<(&str, bool)> = page
            .hits
            .iter()
            .map(|h| (h.id.as_str(), h.archived))
            .collect();
        assert_eq!(
            ids,
            vec![
                ("440305-9", true),
                ("320831-3", false),
                ("320831-1", false),
                ("320831-0", true)
            ]
        );
        assert_eq!(page.next, None);
        let page = merge(open, &seen, archived, 2);
        assert_eq!(page.hits.len(), 2);
        assert_eq!(
            page.next,
            Some(Cursor {
                created_ms: 30,
                id: "320831-3".into()
            })
        );
    }

    /// Paging through a set split between the two sides (with copies in both) gives every
    /// ticket once, in order, whatever the page size.
    #[test]
    fn pages_of_a_merge_cover_everything_once() {
        let mut all: Vec<CaseHit> = (0..53)
            .map(|n| hit(1_000 + (n / 3), &format!("320831-{n:04}"), n % 2 == 0))
            .collect();
        all.sort_by(CaseHit::order);
        for limit in [1, 2, 7, 20, 100] {
            let mut after: Option<Cursor> = None;
            let mut listed = Vec::new();
            loop {
                let keep = |h: &&CaseHit| {
                    after
                        .as_ref()
                        .is_none_or(|c| c.is_before(h.index.created_ms, &h.id))
                };
                let open: Vec<CaseHit> = all
                    .iter()
                    .filter(|h| !h.archived)
                    .filter(keep)
                    .take(limit + 1)
                    .cloned()
                    .collect();
                let seen: HashSet<String> = all
                    .iter()
                    .filter(|h| !h.archived)
                    .map(|h| h.id.clone())
                    .collect();
                // The archive also holds a copy of every open ticket whose id ends in 1.
                let archived: Vec<CaseHit> = all
                    .iter()
                    .filter(|h| h.archived || h.id.ends_with('1'))
                    .filter(keep)
                    .map(|h| CaseHit {
                        archived: true,
                        ..h.clone()
                    })
                    .take(limit + 1)
                    .collect();
                let page = merge(open, &seen, archived, limit);
                assert!(page.hits.len() <= limit);
                listed.extend(page.hits);
                match page.next {
                    Some(c) => after = Some(c),
                    None => break,
                }
            }
            assert_eq!(listed, all, "limit {limit}");
        }
    }
}
