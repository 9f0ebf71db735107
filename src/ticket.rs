//! The ticket (工单) as the rest of the gateway sees it: parsed and validated at the edge, so
//! nothing behind `intake` ever handles a raw string where a domain value belongs.
//!
//! Personal data (the caller's name and phone) lives in [`Caller`], whose `Debug` masks it, so a
//! stray `?ticket` in a log line cannot leak it.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

/// The hotline a ticket came from; the three that cities merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum Source {
    /// 12345 citizen service hotline (市民热线).
    #[serde(rename = "12345")]
    Citizen12345,
    /// 110 police desk, handing over its non-police calls (非警务警情).
    #[serde(rename = "110")]
    Police110,
    /// 12348 public legal service hotline (公共法律服务热线).
    #[serde(rename = "12348")]
    Legal12348,
}

impl Source {
    /// Every source, for metrics that must report zeros too.
    pub const ALL: [Source; 3] = [Source::Citizen12345, Source::Police110, Source::Legal12348];

    /// The wire name, also used as a metric label and in Redis keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Citizen12345 => "12345",
            Source::Police110 => "110",
            Source::Legal12348 => "12348",
        }
    }

    /// Parses the wire name; config files use the same spelling as the API.
    pub fn parse(s: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the caller reached the hotline; kept for statistics (来源渠道).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// A phone call.
    Phone,
    /// A web form.
    Web,
    /// A WeChat mini-program or official account.
    Wechat,
    /// A mobile app.
    App,
    /// The caller came to a service window in person.
    WalkIn,
}

impl Channel {
    /// The wire name, also a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Phone => "phone",
            Channel::Web => "web",
            Channel::Wechat => "wechat",
            Channel::App => "app",
            Channel::WalkIn => "walk_in",
        }
    }
}

/// How the ticket was handed over: by an operator, by one click in a console, or by rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Transfer {
    /// 人工转接: an operator filled the form.
    Manual,
    /// 一键转接: an operator pushed a partner ticket across in one click.
    OneClick,
    /// 自动转接: a partner system's rules pushed it.
    Automatic,
}

/// The caller (来电人). Personal data: `Debug` masks it and it is never logged.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default, ToSchema)]
pub struct Caller {
    /// The caller's name as given; may be empty when the caller declined.
    pub name: String,
    /// The caller's phone number as given (digits, `+`, `-` and spaces).
    pub phone: String,
}

impl Caller {
    /// The caller's key: a hash of the phone number's digits, so repeat requests can be linked
    /// (in Redis and in the case archive) without keeping the number itself as the key. Empty
    /// when the number has fewer than 5 digits.
    pub fn key(&self) -> String {
        let digits: String = self.phone.chars().filter(char::is_ascii_digit).collect();
        if digits.len() < 5 {
            return String::new();
        }
        let digest = Sha256::digest(format!("hotline-caller:{digits}").as_bytes());
        hex::encode(&digest[..16])
    }
}

impl fmt::Debug for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Caller")
            .field("name", &mask_name(&self.name))
            .field("phone", &mask_phone(&self.phone))
            .finish()
    }
}

/// Masks a phone number as operators see it on paper: `138****8000`.
///
/// Keeps the first three and last four digits when there are at least eight; shorter numbers
/// are masked entirely, because four digits of a short number identify it.
pub fn mask_phone(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(|c| c.is_ascii_digit()).collect();
    if digits.len() < 8 {
        return "*".repeat(digits.len().max(1));
    }
    let head: String = digits[..3].iter().collect();
    let tail: String = digits[digits.len() - 4..].iter().collect();
    format!("{head}****{tail}")
}

/// Masks a name to its first character (`张**`), the usual form on public notices.
pub fn mask_name(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => format!("{first}{}", "*".repeat(chars.count())),
        None => String::new(),
    }
}

/// Where the matter is (区划/网格). `code` is the 6-digit county-level administrative code; it
/// is the routing domain and the Redis hash tag, so it is always present and always valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Region {
    /// 6-digit administrative code of the county or district, e.g. `320831`.
    pub code: String,
    /// Town or street (乡镇/街道) code or name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub town: Option<String>,
    /// Village or community (村/社区), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub village: Option<String>,
    /// Grid (网格), the smallest unit a grid mediator covers, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid: Option<String>,
}

impl Region {
    /// True when `code` is six ASCII digits; the only shape the gateway accepts.
    pub fn is_valid_code(code: &str) -> bool {
        code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())
    }
}

/// A validated ticket, ready to classify and store. Built only by `intake` from the wire form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    /// Which hotline sent it.
    pub source: Source,
    /// The sender's own id; with `source` it is the idempotency key.
    pub external_id: String,
    /// When the hotline received the call, as the sender says.
    pub received_at: DateTime<Utc>,
    /// How the caller reached the hotline.
    pub channel: Channel,
    /// How the ticket was handed over.
    pub transfer: Transfer,
    /// Who called (personal data).
    pub caller: Caller,
    /// Where the matter is.
    pub region: Region,
    /// The operator's one-line summary.
    pub title: String,
    /// The caller's problem in free Chinese text.
    pub text: String,
    /// How many people are involved, when the operator counted.
    pub people_involved: Option<u32>,
    /// Free tags from the sender.
    pub tags: Vec<String>,
}

/// What the classifier reads: the text and the few facts that change its reading.
#[derive(Debug, Clone, Copy)]
pub struct TicketText<'a> {
    /// The hotline; 12348 callers mostly want legal advice.
    pub source: Source,
    /// The operator's summary.
    pub title: &'a str,
    /// The caller's words.
    pub text: &'a str,
    /// The operator's head count, which can raise the warning level.
    pub people_involved: Option<u32>,
    /// How many earlier tickets this caller opened within the duplicate window: a caller who
    /// keeps calling can raise the warning level (`[warning.repeat]` in the lexicon). Filled
    /// by intake; 0 when unknown.
    pub prior_calls: u32,
}

impl Ticket {
    /// The classifier's view of this ticket.
    pub fn text_view(&self) -> TicketText<'_> {
        TicketText {
            source: self.source,
            title: &self.title,
            text: &self.text,
            people_involved: self.people_involved,
            // Intake does not count earlier calls yet.
            prior_calls: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_masked_like_paper_forms() {
        assert_eq!(mask_phone("13812348000"), "138****8000");
        assert_eq!(mask_phone("+86 138-1234-8000"), "861****8000");
        assert_eq!(mask_phone("110"), "***");
    }

    #[test]
    fn debug_of_a_caller_never_shows_the_number_or_name() {
        let c = Caller {
            name: "张三丰".into(),
            phone: "13812348000".into(),
        };
        let s = format!("{c:?}");
        assert!(!s.contains("13812348000") && !s.contains("三丰"), "{s}");
        assert!(s.contains("138****8000") && s.contains("张**"), "{s}");
    }

    #[test]
    fn region_codes_are_six_digits() {
        assert!(Region::is_valid_code("320831"));
        assert!(!Region::is_valid_code("32083"));
        assert!(!Region::is_valid_code("32083a"));
        assert!(!Region::is_valid_code("３２０８３１"));
    }
}
