//! The ticket as partners and consoles send it, and its validation into [`Ticket`].
//!
//! Enumerations arrive as strings and are checked here rather than by serde, so one request
//! reports every bad field at once (422 with a list) instead of the first one only.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::problem::FieldError;
use crate::auth::Role;
use crate::classify::Decision;
use crate::county::Counties;
use crate::intake::settings::IntakeSettings;
use crate::ticket::{Caller, Channel, Region, Source, Ticket, Transfer};

/// `POST /v1/tickets` body. The schema states what validation accepts (with the shipped
/// `[intake]` limits); every field is still checked here, each bad one named in a 422.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "source": "12345", "external_id": "SQ-20261124-0001",
    "received_at": "2026-11-24T08:30:00+08:00", "channel": "phone", "transfer": "one_click",
    "caller": {"name": "王建国", "phone": "13812348000"},
    "region": {"code": "320831", "town": "城关镇"}, "title": "工地拖欠工资",
    "text": "老板拖欠工资三个月，双方吵起来了，希望调解员帮忙协调。", "people_involved": 2
}))]
pub struct TicketRequest {
    /// `12345`, `110` or `12348`. Required.
    #[schema(value_type = Source, required = true)]
    pub source: Option<String>,
    /// The sender's own ticket id; with `source` it makes retries idempotent. Required: visible
    /// ASCII without spaces, at most `intake.external_id_max_len` (128) bytes.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 128, pattern = "^[!-~]+$")]
    pub external_id: Option<String>,
    /// When the hotline took the call, RFC 3339, at most 10 minutes ahead of the gateway's
    /// clock. Required.
    #[schema(value_type = String, required = true, format = DateTime, example = "2026-11-24T09:30:00+08:00")]
    pub received_at: Option<String>,
    /// `phone` (default), `web`, `wechat`, `app` or `walk_in`.
    #[schema(value_type = Option<Channel>)]
    pub channel: Option<String>,
    /// `manual`, `one_click` or `automatic`; defaults to `manual` for operators, else `automatic`.
    #[schema(value_type = Option<Transfer>)]
    pub transfer: Option<String>,
    /// The caller; personal data, never logged.
    pub caller: Option<CallerRequest>,
    /// Where the matter is. Required, with a 6-digit `code`.
    #[schema(value_type = RegionRequest, required = true)]
    pub region: Option<RegionRequest>,
    /// The operator's one-line summary, at most `intake.title_max_chars` (200) characters.
    #[schema(max_length = 200)]
    pub title: Option<String>,
    /// The caller's problem in free text. Required, not blank, at most
    /// `intake.text_max_chars` (5000) characters.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 5000, pattern = "\\S")]
    pub text: Option<String>,
    /// How many people are involved.
    #[schema(maximum = 1000000)]
    pub people_involved: Option<u32>,
    /// Free tags, at most `intake.tags_max` (20), each 1 to 32 characters.
    #[schema(max_items = 20)]
    pub tags: Option<Vec<String>>,
    /// The caller is on the line and should be transferred live (人工转接/一键转接): the answer
    /// carries a reserved agent, or the caller's position and an estimated wait (`live`).
    /// Single tickets only, not batches.
    pub live: Option<bool>,
}

/// The caller part of a request.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallerRequest {
    /// Name as given, at most 50 characters.
    #[schema(max_length = 50)]
    pub name: Option<String>,
    /// Phone number: 3 to 20 digits with optional `+`, `-`, spaces and parentheses.
    #[schema(pattern = "^[ +()-]*([0-9][ +()-]*){3,20}$|^\\s*$")]
    pub phone: Option<String>,
}

/// The region part of a request.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegionRequest {
    /// 6-digit county-level administrative code. Required.
    #[schema(value_type = String, required = true, pattern = "^[0-9]{6}$")]
    pub code: Option<String>,
    /// Town or street: 1 to 64 characters, without `/` (one level of the region path).
    #[schema(max_length = 64, pattern = "^[^/]*$")]
    pub town: Option<String>,
    /// Village or community: 1 to 64 characters, without `/`.
    #[schema(max_length = 64, pattern = "^[^/]*$")]
    pub village: Option<String>,
    /// Grid: 1 to 64 characters, without `/`.
    #[schema(max_length = 64, pattern = "^[^/]*$")]
    pub grid: Option<String>,
}

/// `POST /v1/tickets:batch` body. Items are parsed one by one, so one bad item fails alone.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// The tickets, each shaped like a `POST /v1/tickets` body.
    #[schema(value_type = Vec<TicketRequest>)]
    pub tickets: Vec<serde_json::Value>,
}

/// The answer to an accepted ticket (new or a faithful retry).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TicketReceipt {
    /// The gateway's ticket id, `<county>-<seq>`.
    pub id: String,
    /// `queued`, or `returned` when it goes back to the sender.
    pub status: String,
    /// The classifier's decision.
    #[schema(value_type = Decision)]
    pub classification: serde_json::Value,
    /// The queue it waits in; absent when returned.
    pub queue: Option<String>,
    /// Deadlines; absent when the ticket went back to the sender.
    pub sla: Option<SlaDeadlines>,
    /// When the gateway registered it (Redis clock).
    pub created_at: DateTime<Utc>,
    /// The live transfer, when `live` was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<crate::api::live::LiveView>,
}

/// The deadlines of the running clocks (details per clock in `GET /v1/tickets/{id}`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SlaDeadlines {
    /// Must be accepted by then (接单).
    pub accept_by: Option<DateTime<Utc>>,
    /// The caller must be contacted by then (首次联系).
    pub first_contact_by: Option<DateTime<Utc>>,
    /// Must be resolved by then (办结).
    pub resolve_by: Option<DateTime<Utc>>,
    /// The follow-up call is due by then (回访), once resolved.
    pub follow_up_by: Option<DateTime<Utc>>,
    /// The clocks whose deadline above is provisional (暂定): counted through a year without
    /// holiday data on the calendar's ordinary week, recomputed when the year's file is added
    /// and reloaded. Absent when every deadline is final.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<String>)]
    pub provisional: Vec<crate::sla::policy::ClockName>,
}

/// `GET /v1/tickets/{id}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TicketView {
    /// Id, status, classification, queue and deadlines, as in the receipt.
    #[serde(flatten)]
    pub receipt: TicketReceipt,
    /// The ticket as received.
    #[schema(value_type = TicketRequest)]
    pub ticket: serde_json::Value,
    /// Each SLA clock: target, due, elapsed, remaining, paused time and state.
    pub clocks: Vec<crate::sla::clock::ClockView>,
    /// Marked overdue (督办) by a breach.
    pub overdue: bool,
    /// Other requests of the same caller about the same matter (重复诉求), by id.
    pub linked: Vec<String>,
    /// The ticket's newest events (at most 100), oldest of them first; older ones are read
    /// with `GET /v1/tickets/{id}/history`.
    #[schema(value_type = Vec<Object>)]
    pub history: Vec<serde_json::Value>,
    /// How many events the whole history holds.
    pub history_total: u64,
    /// The position (0 = the first event) of `history[0]` in the whole history.
    pub history_from: u64,
}

/// `GET /v1/tickets/{id}/history` query.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Position of the first event to return (0 = the first event); default 0.
    pub offset: Option<u64>,
    /// How many events, 1 to 500; default 100.
    pub limit: Option<u64>,
}

/// A page of a ticket's history.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HistoryPage {
    /// The ticket.
    pub id: String,
    /// How many events the whole history holds.
    pub total: u64,
    /// Position of `events[0]`.
    pub offset: u64,
    /// The events, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<serde_json::Value>,
}

/// One item of a batch answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BatchItem {
    /// Position in the request.
    pub index: usize,
    /// The status this item would have had alone (201, 200, 409, 422, …).
    pub status: u16,
    /// The receipt, when accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket: Option<TicketReceipt>,
    /// The problem, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<crate::api::problem::Problem>,
}

/// `POST /v1/tickets:batch` answer, in request order.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BatchResponse {
    /// One result per ticket.
    pub results: Vec<BatchItem>,
}

fn parse_enum<T: serde::de::DeserializeOwned>(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: &str,
    allowed: &str,
) -> Option<T> {
    match serde_json::from_value(serde_json::Value::String(value.to_string())) {
        Ok(v) => Some(v),
        Err(_) => {
            errors.push(FieldError::new(
                field,
                format!("`{value}` is not one of {allowed}"),
            ));
            None
        }
    }
}

fn optional_text(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: Option<&String>,
    max_chars: usize,
) -> Option<String> {
    let v = value?.trim();
    if v.is_empty() {
        return None;
    }
    if v.chars().count() > max_chars {
        errors.push(FieldError::new(
            field,
            format!("longer than {max_chars} characters"),
        ));
    }
    Some(v.to_string())
}

/// A town, village or grid: each is one level of the ticket's region path
/// (`320831/城关镇/东关村`), so the rule is the one `transfer` applies: 1 to 64 characters,
/// without `/`. Blank is absent, as for every optional text.
fn place_part(errors: &mut Vec<FieldError>, field: &str, value: Option<&String>) -> Option<String> {
    let v = value?.trim();
    if v.is_empty() {
        return None;
    }
    if v.contains('/') || v.chars().count() > 64 {
        errors.push(FieldError::new(field, "1 to 64 characters, without `/`"));
        return None;
    }
    Some(v.to_string())
}

fn required<'a, T>(errors: &mut Vec<FieldError>, field: &str, v: Option<&'a T>) -> Option<&'a T> {
    if v.is_none() {
        errors.push(FieldError::new(field, "is required"));
    }
    v
}

impl TicketRequest {
    /// Validates into a [`Ticket`], or lists every field at fault, each named by its path.
    pub fn validate(
        &self,
        limits: &IntakeSettings,
        counties: &Counties,
        role: Role,
        now: DateTime<Utc>,
    ) -> Result<Ticket, Vec<FieldError>> {
        let mut e = Vec::new();
        let source = required(&mut e, "source", self.source.as_ref())
            .and_then(|s| parse_enum::<Source>(&mut e, "source", s, "12345, 110, 12348"));

        let external_id =
            required(&mut e, "external_id", self.external_id.as_ref()).and_then(|x| {
                if x.is_empty() || x.len() > limits.external_id_max_len {
                    e.push(FieldError::new(
                        "external_id",
                        format!("must be 1 to {} bytes", limits.external_id_max_len),
                    ));
                    None
                } else if !x.bytes().all(|b| b.is_ascii_graphic()) {
                    e.push(FieldError::new(
                        "external_id",
                        "may hold only visible ASCII characters, without spaces",
                    ));
                    None
                } else {
                    Some(x.clone())
                }
            });

        let received_at =
            required(&mut e, "received_at", self.received_at.as_ref()).and_then(|s| {
                match DateTime::parse_from_rfc3339(s) {
                    Ok(t) => {
                        let t = t.with_timezone(&Utc);
                        if t > now + Duration::minutes(10) {
                            e.push(FieldError::new(
                                "received_at",
                                "is more than 10 minutes in the future",
                            ));
                            None
                        } else {
                            Some(t)
                        }
                    }
                    Err(err) => {
                        e.push(FieldError::new(
                        "received_at",
                        format!(
                            "not an RFC 3339 timestamp such as 2026-11-24T09:30:00+08:00 ({err})"
                        ),
                    ));
                        None
                    }
                }
            });

        let channel = match &self.channel {
            Some(c) => {
                parse_enum::<Channel>(&mut e, "channel", c, "phone, web, wechat, app, walk_in")
            }
            None => Some(Channel::Phone),
        };
        let transfer = match &self.transfer {
            Some(t) => {
                parse_enum::<Transfer>(&mut e, "transfer", t, "manual, one_click, automatic")
            }
            None if role == Role::Operator => Some(Transfer::Manual),
            None => Some(Transfer::Automatic),
        };

        let caller = self.caller.as_ref().map(|c| {
            let name =
                optional_text(&mut e, "caller.name", c.name.as_ref(), 50).unwrap_or_default();
            let phone = c
                .phone
                .as_deref()
                .map(str::trim)
                .unwrap_or_default()
                .to_string();
            if !phone.is_empty() {
                let digits = phone.bytes().filter(u8::is_ascii_digit).count();
                let shape_ok = phone
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b" +-()".contains(&b));
                if !shape_ok || !(3..=20).contains(&digits) {
                    e.push(FieldError::new(
                        "caller.phone",
                        "must be 3 to 20 digits, optionally with +, -, spaces and parentheses",
                    ));
                }
            }
            Caller { name, phone }
        });

        let region = required(&mut e, "region", self.region.as_ref()).and_then(|r| {
            let code = required(&mut e, "region.code", r.code.as_ref()).and_then(|c| {
                if Region::is_valid_code(c) && !counties.contains(c) {
                    e.push(FieldError::new("region.code", counties.refusal(c)));
                    None
                } else if Region::is_valid_code(c) {
                    Some(c.clone())
                } else {
                    e.push(FieldError::new(
                        "region.code",
                        "must be a 6-digit administrative code such as 320831",
                    ));
                    None
                }
            });
            let town = place_part(&mut e, "region.town", r.town.as_ref());
            let village = place_part(&mut e, "region.village", r.village.as_ref());
            let grid = place_part(&mut e, "region.grid", r.grid.as_ref());
            code.map(|code| Region {
                code,
                town,
                village,
                grid,
            })
        });

        let title = optional_text(&mut e, "title", self.title.as_ref(), limits.title_max_chars)
            .unwrap_or_default();
        let text = required(&mut e, "text", self.text.as_ref()).and_then(|t| {
            let t = t.trim();
            if t.is_empty() {
                e.push(FieldError::new("text", "must not be empty"));
                None
            } else if t.chars().count() > limits.text_max_chars {
                e.push(FieldError::new(
                    "text",
                    format!("longer than {} characters", limits.text_max_chars),
                ));
                None
            } else {
                Some(t.to_string())
            }
        });

        if let Some(n) = self.people_involved
            && n > 1_000_000
        {
            e.push(FieldError::new(
                "people_involved",
                "must be at most 1000000",
            ));
        }
        let tags = self.tags.clone().unwrap_or_default();
        if tags.len() > limits.tags_max {
            e.push(FieldError::new(
                "tags",
                format!("at most {} tags", limits.tags_max),
            ));
        }
        for (i, tag) in tags.iter().enumerate() {
            let n = tag.trim().chars().count();
            if n == 0 || n > 32 {
                e.push(FieldError::new(
                    format!("tags[{i}]"),
                    "must be 1 to 32 characters",
                ));
            }
        }

        match (
            source,
            external_id,
            received_at,
            channel,
            transfer,
            region,
            text,
        ) {
            (
                Some(source),
                Some(external_id),
                Some(received_at),
                Some(channel),
                Some(transfer),
                Some(region),
                Some(text),
            ) if e.is_empty() => Ok(Ticket {
                source,
                external_id,
                received_at,
                channel,
                transfer,
                caller: caller.unwrap_or_default(),
                region,
                title,
                text,
                people_involved: self.people_involved,
                tags: tags.into_iter().map(|t| t.trim().to_string()).collect(),
            }),
            _ => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counties() -> Counties {
        Counties::from_pairs([("320831", "金湖县")])
    }

    #[test]
    fn a_county_outside_the_deployment_is_refused_naming_region_code() {
        let mut r = good();
        r.region = Some(RegionRequest {
            code: Some("320999".into()),
            ..Default::default()
        });
        let f = fields(r.validate(&limits(), &counties(), Role::Partner, now()));
        assert_eq!(f, ["region.code"]);
    }

    fn limits() -> IntakeSettings {
        IntakeSettings {
            text_max_chars: 100,
            title_max_chars: 20,
            external_id_max_len: 16,
            tags_max: 2,
            batch_max: 10,
            idempotency_ttl_days: 1,
            duplicate_window_days: 7,
        }
    }

    fn good() -> TicketRequest {
        TicketRequest {
            source: Some("12345".into()),
            external_id: Some("A-1".into()),
            received_at: Some("2026-11-24T09:30:00+08:00".into()),
            region: Some(RegionRequest {
                code: Some("320831".into()),
                ..Default::default()
            }),
            text: Some("老板拖欠工资三个月".into()),
            ..Default::default()
        }
    }

    /// A fixed clock, so the tests do not depend on the day they run.
    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-24T12:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn fields(r: Result<Ticket, Vec<FieldError>>) -> Vec<String> {
        r.expect_err("invalid")
            .into_iter()
            .map(|f| f.field)
            .collect()
    }

    #[test]
    fn a_minimal_ticket_is_accepted_with_defaults() {
        let t = good()
            .validate(&limits(), &counties(), Role::Operator, now())
            .expect("valid");
        assert_eq!(t.channel, Channel::Phone);
        assert_eq!(t.transfer, Transfer::Manual);
        assert_eq!(t.received_at.to_rfc3339(), "2026-11-24T01:30:00+00:00");
        let t = good()
            .validate(&limits(), &counties(), Role::Partner, now())
            .expect("valid");
        assert_eq!(t.transfer, Transfer::Automatic);
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let mut r = good();
        r.source = Some("119".into());
        r.region = Some(RegionRequest {
            code: Some("3208".into()),
            ..Default::default()
        });
        r.received_at = Some("yesterday".into());
        r.text = Some("   ".into());
        r.channel = Some("fax".into());
        r.tags = Some(vec!["a".into(), "".into(), "c".into()]);
        r.caller = Some(CallerRequest {
            name: None,
            phone: Some("call me".into()),
        });
        let f = fields(r.validate(&limits(), &counties(), Role::Partner, now()));
        for want in [
            "source",
            "region.code",
            "received_at",
            "text",
            "channel",
            "tags",
            "tags[1]",
            "caller.phone",
        ] {
            assert!(f.contains(&want.to_string()), "{want} missing from {f:?}");
        }
    }

    #[test]
    fn missing_required_fields_are_named() {
        let f =
            fields(TicketRequest::default().validate(&limits(), &counties(), Role::Partner, now()));
        assert_eq!(
            f,
            ["source", "external_id", "received_at", "region", "text"]
        );
    }

    #[test]
    fn oversized_fields_are_refused() {
        let mut r = good();
        r.text = Some("字".repeat(101));
        r.title = Some("标".repeat(21));
        r.external_id = Some("x".repeat(17));
        let f = fields(r.validate(&limits(), &counties(), Role::Partner, now()));
        assert_eq!(f, ["external_id", "title", "text"]);
    }

    #[test]
    fn a_slash_in_town_village_or_grid_is_refused_like_transfer_does() {
        let mut r = good();
        r.region = Some(RegionRequest {
            code: Some("320831".into()),
            town: Some("城关镇/东关村".into()),
            village: Some("/".into()),
            grid: Some("网格/1".into()),
        });
        let errors = r
            .validate(&limits(), &counties(), Role::Partner, now())
            .expect_err("invalid");
        let f: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(f, ["region.town", "region.village", "region.grid"]);
        assert!(
            errors
                .iter()
                .all(|e| e.message == "1 to 64 characters, without `/`"),
            "{errors:?}"
        );
        // 64 characters are fine, 65 are not.
        r.region = Some(RegionRequest {
            code: Some("320831".into()),
            town: Some("镇".repeat(64)),
            village: Some("村".repeat(65)),
            grid: None,
        });
        assert_eq!(
            fields(r.validate(&limits(), &counties(), Role::Partner, now())),
            ["region.village"]
        );
    }

    #[test]
    fn a_receipt_time_far_in_the_future_is_refused() {
        let mut r = good();
        r.received_at = Some("2099-01-01T00:00:00Z".into());
        assert_eq!(
            fields(r.validate(&limits(), &counties(), Role::Partner, now())),
            ["received_at"]
        );
    }
}
