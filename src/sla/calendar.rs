//! Working calendars: when is an SLA deadline, on China's calendar?
//!
//! Hotline SLAs are stated in working time ("accept within 2 working hours", "resolve within 15
//! working days"), so a deadline depends on working hours, weekends, public holidays and the
//! weekend days the State Council turns into make-up working days (调休补班). This module is pure:
//! holiday data comes in as a [`HolidayTable`] (the NateScarlet/holiday-cn `YYYY.json` files) and
//! every function maps UTC instants to UTC instants. All counting happens in the calendar's own
//! time zone.
//!
//! # Counting rules
//!
//! - **Working day**: a date listed with `isOffDay: true` is off; one listed with
//!   `isOffDay: false` is a working day; any other date is a working day if its weekday is in
//!   `weekdays`. A date in a year without data (no file, or an empty `days` list) follows the
//!   same rule, so it falls back on the ordinary week (and any day a neighbouring year's file
//!   lists), and every result counted through such a date says so: it comes as a [`Counted`]
//!   whose `uncovered` names those years, i.e. it is *provisional*. Nothing fails for lack of a
//!   year's data (the State Council publishes next year's schedule only in November or later),
//!   and nothing is silently "no holidays" either: callers show the mark, and the result moves
//!   to its final value once the year's file is added and the deadline recomputed.
//! - **Working time** is the union of `working_hours` on working days, each interval half-open
//!   (`08:30-12:00` contains 08:30 but not 12:00).
//! - **Adding working time** (`add_working_time`): only working time counts; the deadline is the
//!   earliest instant at which `d` of working time has elapsed since `from`. So 11:30 + 1 h is
//!   14:00 (the lunch break does not count), Friday 18:00 + 1 h is Monday 09:30, and 11:00 + 1 h
//!   is 12:00 (the end of the interval, not 13:30). `d = 0` gives the next working moment at or
//!   after `from` (`from` itself inside working hours).
//! - **Adding working days** (`add_working_days`): first the *anchor*: `from` itself if it is
//!   inside working time, otherwise the start of the next working interval (a ticket that
//!   arrives at night or at lunch is treated as arriving when work resumes). `n = 0` returns the
//!   anchor. Otherwise the deadline is the anchor's local wall-clock time on the `n`th working
//!   day after the anchor's date. Tuesday 10:00 + 3 = Friday 10:00; Friday 18:00 + 1 = anchor
//!   Monday 08:30, deadline Tuesday 08:30; Tuesday 12:30 + 1 = Wednesday 13:30. The deadline is
//!   therefore always inside working hours, is the same time of day as the effective start, and
//!   exactly `n` full working days of working time lie between anchor and deadline (as long as
//!   no DST change falls in between).
//! - **Elapsed** (`working_time_between`): the working time inside `[a, b)`, the exact inverse of
//!   adding working time.
//! - **24x7 calendars** (`always_open`): every instant counts; adding time is plain addition,
//!   `n` working days are `n` × 24 h, and no holiday data is needed.
//!
//! # Time zones
//!
//! Interval bounds and day boundaries are local wall-clock times turned into UTC instants. A wall
//! time that a DST change skips maps to the first instant after the gap (an interval starting at
//! a skipped 02:30 starts when the clocks jump to 03:00; a working-day target time that does not
//! exist that day becomes the jump instant too). A wall time that occurs twice maps to its
//! earlier instant when it starts an interval (or is a target time) and to its later instant when
//! it ends one, so an interval covers every instant whose wall clock reads inside it.
//!
//! # Bounds
//!
//! Every loop steps one local day at a time over at most [`MAX_STEP_DAYS`] days (about ten
//! years) and then gives up with [`CalendarError::Invalid`]. A 15-working-day deadline is a few
//! dozen steps.

mod holidays;
mod local;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use chrono_tz::Tz;

pub use holidays::HolidayTable;
use local::Side;

/// How many local days any computation may step through before giving up (about ten years), so
/// that a bad input can never hang a request.
pub const MAX_STEP_DAYS: u32 = 3_660;

/// Minutes in a day; `24:00` is allowed as the end of a working interval.
const DAY_MINUTES: u32 = 24 * 60;

/// A daily working interval: `(start, end)` in minutes after local midnight.
type Span = (u32, u32);

/// A working interval of one date as UTC instants, `[start, end)`.
type Interval = (DateTime<Utc>, DateTime<Utc>);

/// `[sla.calendars.<name>]` in the gateway's config; deserialised with serde, deny_unknown_fields.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarSettings {
    /// IANA zone name, e.g. "Asia/Shanghai": working hours are local wall-clock times there.
    pub time_zone: String,
    /// `true`: a 24x7 calendar (no holidays, no hours), for SLAs that run around the clock.
    #[serde(default)]
    pub always_open: bool,
    /// Daily working intervals as "HH:MM-HH:MM" (end may be "24:00"), sorted and
    /// non-overlapping, e.g. `["08:30-12:00", "13:30-17:30"]`.
    #[serde(default)]
    pub working_hours: Vec<String>,
    /// The ordinary working weekdays, `mon` … `sun`; holiday data overrides them date by date.
    #[serde(default)]
    pub weekdays: Vec<String>,
    /// Directory of holiday-cn `YYYY.json` files; required unless `always_open`.
    #[serde(default)]
    pub holidays_dir: Option<std::path::PathBuf>,
}

/// Why a calendar could not be built or a deadline could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    /// Names the calendar and the settings key, e.g. key "sla.calendars.workday.working_hours[1]".
    #[error("{key}: {message}")]
    Invalid {
        /// The settings key at fault (or the calendar's key for a bad argument).
        key: String,
        /// What is wrong, for an operator.
        message: String,
    },
    /// A file could not be read or parsed (path and reason).
    #[error("holiday file {path}: {message}")]
    File {
        /// The file or directory.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// A result counted on a working calendar, and the years without holiday data it went through.
///
/// `uncovered` lists (ascending, once each) the years without data whose dates the count had to
/// classify. Those dates were counted on the ordinary week, so a non-empty list makes the value
/// *provisional*: it may move once the years' files are added. Empty means final.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted<T> {
    /// The deadline or amount of working time.
    pub value: T,
    /// Years without holiday data the count went through; empty when the value is final.
    pub uncovered: Vec<i32>,
}

impl<T> Counted<T> {
    /// A value that needed no holiday data it lacked.
    pub fn exact(value: T) -> Counted<T> {
        Counted {
            value,
            uncovered: Vec::new(),
        }
    }

    /// Whether a year without data was counted on the ordinary week.
    pub fn is_provisional(&self) -> bool {
        !self.uncovered.is_empty()
    }

    /// The value, adding its uncovered years to `years`, for results built from several counts.
    pub fn noting(self, years: &mut Vec<i32>) -> T {
        for y in self.uncovered {
            note_year(years, y);
        }
        self.value
    }
}

/// Adds `year` to an ascending list of years without duplicates.
pub fn note_year(years: &mut Vec<i32>, year: i32) {
    if let Err(i) = years.binary_search(&year) {
        years.insert(i, year);
    }
}

/// A named working calendar. Clone + Debug + Send + Sync.
///
/// Built once from settings and shared by every request; cloning is cheap (the holiday table is
/// behind an `Arc`).
#[derive(Debug, Clone)]
pub struct Calendar {
    name: String,
    key: String,
    tz: Tz,
    rules: Rules,
}

/// What counts as working time.
#[derive(Debug, Clone)]
enum Rules {
    /// Every instant.
    AlwaysOpen,
    /// Working intervals on working days.
    Hours {
        /// Sorted, non-overlapping, end <= 1440.
        spans: Vec<Span>,
        /// Indexed by `Weekday::num_days_from_monday`.
        weekdays: [bool; 7],
        holidays: Arc<HolidayTable>,
    },
}

/// Settings checked and parsed, before the holiday table is attached.
struct Parsed {
    tz: Tz,
    hours: Option<(Vec<Span>, [bool; 7])>,
}

impl Calendar {
    /// Builds from settings; `key` is the settings key prefix for errors, e.g. "sla.calendars.workday".
    /// Reads the holiday files from `holidays_dir` (required unless `always_open`).
    pub fn from_settings(
        name: &str,
        key: &str,
        s: &CalendarSettings,
    ) -> Result<Calendar, CalendarError> {
        let parsed = parse_settings(key, s)?;
        let holidays = match (&parsed.hours, &s.holidays_dir) {
            (None, _) => None,
            (Some(_), None) => return Err(missing_holidays(key)),
            (Some(_), Some(dir)) => Some(HolidayTable::load_dir(dir)?),
        };
        Calendar::build(name, key, parsed, holidays)
    }

    /// Same, with the holiday table given (tests, and reloads that read files elsewhere); the
    /// table replaces `holidays_dir`, and `None` is an error unless the calendar is 24x7 (which
    /// ignores any table).
    pub fn with_holidays(
        name: &str,
        key: &str,
        s: &CalendarSettings,
        holidays: Option<HolidayTable>,
    ) -> Result<Calendar, CalendarError> {
        let parsed = parse_settings(key, s)?;
        Calendar::build(name, key, parsed, holidays)
    }

    fn build(
        name: &str,
        key: &str,
        parsed: Parsed,
        holidays: Option<HolidayTable>,
    ) -> Result<Calendar, CalendarError> {
        let rules = match parsed.hours {
            None => Rules::AlwaysOpen,
            Some((spans, weekdays)) => {
                let holidays = holidays.ok_or_else(|| missing_holidays(key))?;
                if holidays.years().is_empty() {
                    return Err(invalid(
                        format!("{key}.holidays_dir"),
                        "no year has holiday data (need at least one non-empty YYYY.json)",
                    ));
                }
                Rules::Hours {
                    spans,
                    weekdays,
                    holidays: Arc::new(holidays),
                }
            }
        };
        Ok(Calendar {
            name: name.to_owned(),
            key: key.to_owned(),
            tz: parsed.tz,
            rules,
        })
    }

    /// The calendar's name, as used in logs and metrics.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether every instant is working time, so callers can skip data checks.
    pub fn is_always_open(&self) -> bool {
        matches!(self.rules, Rules::AlwaysOpen)
    }

    /// Years in `from..=to` without holiday data (counted on the ordinary week, provisionally),
    /// for start-up checks and the "holiday data runs out" alert; always empty for a 24x7
    /// calendar. The range is clipped to the years chrono can represent, which keeps the loop
    /// bounded.
    pub fn missing_years(&self, from: i32, to: i32) -> Vec<i32> {
        match &self.rules {
            Rules::AlwaysOpen => Vec::new(),
            Rules::Hours { holidays, .. } => {
                let lo = from.max(NaiveDate::MIN.year());
                let hi = to.min(NaiveDate::MAX.year());
                (lo..=hi).filter(|y| !holidays.covers(*y)).collect()
            }
        }
    }

    /// Is this local date a working day? In a year without data the answer follows the ordinary
    /// week and is provisional (around Spring Festival it may be wrong by a week's worth of days).
    pub fn is_working_day(&self, date: NaiveDate) -> Counted<bool> {
        let mut uncovered = Vec::new();
        let value = self.working_day(date, &mut uncovered);
        Counted { value, uncovered }
    }

    /// [`Calendar::is_working_day`], noting an uncovered year in `uncovered`.
    fn working_day(&self, date: NaiveDate, uncovered: &mut Vec<i32>) -> bool {
        match &self.rules {
            Rules::AlwaysOpen => true,
            Rules::Hours {
                weekdays, holidays, ..
            } => {
                if !holidays.covers(date.year()) {
                    note_year(uncovered, date.year());
                }
                match holidays.listed(date) {
                    Some(off) => !off,
                    None => weekdays[date.weekday().num_days_from_monday() as usize],
                }
            }
        }
    }

    /// Deadline `n` working days after `from`, for SLAs stated in working days.
    ///
    /// The anchor is `from` if it is inside working time, else the start of the next working
    /// interval. `n = 0` returns the anchor; otherwise the result is the anchor's local time of
    /// day on the `n`th working day after the anchor's date (Friday 18:00 + 1 = Tuesday 08:30 on
    /// an ordinary week, via the Monday 08:30 anchor). If that time does not exist on that day
    /// (DST gap) the result is the first instant after the gap; if it occurs twice, the earlier.
    /// A 24x7 calendar returns `from + n × 24 h`.
    pub fn add_working_days(
        &self,
        from: DateTime<Utc>,
        n: u32,
    ) -> Result<Counted<DateTime<Utc>>, CalendarError> {
        if self.is_always_open() {
            return Duration::try_days(i64::from(n))
                .and_then(|d| from.checked_add_signed(d))
                .map(Counted::exact)
                .ok_or_else(|| self.out_of_range());
        }
        let mut uncovered = Vec::new();
        let anchor = self
            .add_working_time(from, Duration::zero())?
            .noting(&mut uncovered);
        if n == 0 {
            return Ok(Counted {
                value: anchor,
                uncovered,
            });
        }
        let local = anchor.with_timezone(&self.tz).naive_local();
        let mut date = local.date();
        let mut left = n;
        for _ in 0..MAX_STEP_DAYS {
            date = date.succ_opt().ok_or_else(|| self.out_of_range())?;
            if self.working_day(date, &mut uncovered) {
                left -= 1;
                if left == 0 {
                    let value = local::to_utc(self.tz, date.and_time(local.time()), Side::Start)
                        .ok_or_else(|| self.out_of_range())?;
                    return Ok(Counted { value, uncovered });
                }
            }
        }
        Err(self.gave_up())
    }

    /// Deadline after `d` of working time (only time inside working hours counts), for SLAs
    /// stated in working hours or minutes. d = 0 → next working moment at or after `from`.
    /// A negative `d` is an `Invalid` error.
    pub fn add_working_time(
        &self,
        from: DateTime<Utc>,
        d: Duration,
    ) -> Result<Counted<DateTime<Utc>>, CalendarError> {
        if d < Duration::zero() {
            return Err(invalid(
                self.key.clone(),
                format!("cannot add a negative working time ({d})"),
            ));
        }
        let Rules::Hours { spans, .. } = &self.rules else {
            return from
                .checked_add_signed(d)
                .map(Counted::exact)
                .ok_or_else(|| self.out_of_range());
        };
        let mut uncovered = Vec::new();
        let mut remaining = d;
        let mut cursor = from;
        let mut date = self.local_date(from);
        for _ in 0..MAX_STEP_DAYS {
            for (start, end) in self.day_intervals(date, spans, &mut uncovered)? {
                let start = start.max(cursor);
                if end <= start {
                    continue;
                }
                let available = end - start;
                if remaining <= available {
                    let value = start
                        .checked_add_signed(remaining)
                        .ok_or_else(|| self.out_of_range())?;
                    return Ok(Counted { value, uncovered });
                }
                remaining -= available;
                cursor = end;
            }
            date = date.succ_opt().ok_or_else(|| self.out_of_range())?;
        }
        Err(self.gave_up())
    }

    /// Working time inside [a, b) (zero if b <= a). Used for "elapsed" and for paused intervals.
    pub fn working_time_between(
        &self,
        a: DateTime<Utc>,
        b: DateTime<Utc>,
    ) -> Result<Counted<Duration>, CalendarError> {
        if b <= a {
            return Ok(Counted::exact(Duration::zero()));
        }
        let Rules::Hours { spans, .. } = &self.rules else {
            return Ok(Counted::exact(b - a));
        };
        let mut uncovered = Vec::new();
        let mut total = Duration::zero();
        let mut cursor = a;
        let mut date = self.local_date(a);
        for _ in 0..=MAX_STEP_DAYS {
            let day_start = local::to_utc(self.tz, date.and_time(NaiveTime::MIN), Side::Start)
                .ok_or_else(|| self.out_of_range())?;
            if day_start >= b {
                return Ok(Counted {
                    value: total,
                    uncovered,
                });
            }
            for (start, end) in self.day_intervals(date, spans, &mut uncovered)? {
                let start = start.max(cursor);
                let end = end.min(b);
                if end > start {
                    total += end - start;
                    cursor = end;
                }
            }
            date = date.succ_opt().ok_or_else(|| self.out_of_range())?;
        }
        Err(self.gave_up())
    }

    /// The local date of an instant in this calendar's zone.
    fn local_date(&self, t: DateTime<Utc>) -> NaiveDate {
        t.with_timezone(&self.tz).date_naive()
    }

    /// The working intervals of a local date as UTC instants, in order; empty on a day off.
    /// Intervals swallowed by a DST gap come out empty and are dropped. A date of a year without
    /// data is noted in `uncovered`.
    fn day_intervals(
        &self,
        date: NaiveDate,
        spans: &[Span],
        uncovered: &mut Vec<i32>,
    ) -> Result<Vec<Interval>, CalendarError> {
        if !self.working_day(date, uncovered) {
            return Ok(Vec::new());
        }
        let midnight = date.and_time(NaiveTime::MIN);
        let mut out = Vec::with_capacity(spans.len());
        for &(start, end) in spans {
            let start = self.instant(midnight, start, Side::Start)?;
            let end = self.instant(midnight, end, Side::End)?;
            if start < end {
                out.push((start, end));
            }
        }
        Ok(out)
    }

    /// `midnight + minutes` in local time, as UTC.
    fn instant(
        &self,
        midnight: NaiveDateTime,
        minutes: u32,
        side: Side,
    ) -> Result<DateTime<Utc>, CalendarError> {
        Duration::try_minutes(i64::from(minutes))
            .and_then(|m| midnight.checked_add_signed(m))
            .and_then(|local| local::to_utc(self.tz, local, side))
            .ok_or_else(|| self.out_of_range())
    }

    fn out_of_range(&self) -> CalendarError {
        invalid(
            self.key.clone(),
            "the deadline or a local time is outside the representable date range",
        )
    }

    fn gave_up(&self) -> CalendarError {
        invalid(
            self.key.clone(),
            format!("gave up after stepping {MAX_STEP_DAYS} days (about ten years)"),
        )
    }
}

fn invalid(key: String, message: impl Into<String>) -> CalendarError {
    CalendarError::Invalid {
        key,
        message: message.into(),
    }
}

fn missing_holidays(key: &str) -> CalendarError {
    invalid(
        format!("{key}.holidays_dir"),
        "required unless always_open: China's working calendar needs its holiday data",
    )
}

/// Checks every setting, naming the key at fault.
fn parse_settings(key: &str, s: &CalendarSettings) -> Result<Parsed, CalendarError> {
    let tz: Tz = s.time_zone.parse().map_err(|_| {
        invalid(
            format!("{key}.time_zone"),
            format!("unknown IANA time zone {:?}", s.time_zone),
        )
    })?;
    if s.always_open {
        for (field, set) in [
            ("working_hours", !s.working_hours.is_empty()),
            ("weekdays", !s.weekdays.is_empty()),
            ("holidays_dir", s.holidays_dir.is_some()),
        ] {
            if set {
                return Err(invalid(
                    format!("{key}.{field}"),
                    "must not be set when always_open = true (a 24x7 calendar has no hours or holidays)",
                ));
            }
        }
        return Ok(Parsed { tz, hours: None });
    }
    if s.working_hours.is_empty() {
        return Err(invalid(
            format!("{key}.working_hours"),
            "must list at least one interval such as \"08:30-12:00\" (or set always_open = true)",
        ));
    }
    let mut spans: Vec<Span> = Vec::with_capacity(s.working_hours.len());
    for (i, text) in s.working_hours.iter().enumerate() {
        let field = || format!("{key}.working_hours[{i}]");
        let (start, end) = parse_interval(text).ok_or_else(|| {
            invalid(
                field(),
                format!("{text:?} is not \"HH:MM-HH:MM\" (00:00 to 24:00)"),
            )
        })?;
        if start >= end {
            return Err(invalid(
                field(),
                format!("{text:?} does not end after it starts"),
            ));
        }
        if let Some(&(_, prev_end)) = spans.last()
            && start < prev_end
        {
            return Err(invalid(
                field(),
                format!("{text:?} overlaps or comes before the previous interval"),
            ));
        }
        spans.push((start, end));
    }
    if s.weekdays.is_empty() {
        return Err(invalid(
            format!("{key}.weekdays"),
            "must list the ordinary working days, e.g. [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"]",
        ));
    }
    let mut weekdays = [false; 7];
    for (i, text) in s.weekdays.iter().enumerate() {
        let field = || format!("{key}.weekdays[{i}]");
        let day = parse_weekday(text).ok_or_else(|| {
            invalid(
                field(),
                format!("{text:?} is not one of mon, tue, wed, thu, fri, sat, sun"),
            )
        })?;
        if std::mem::replace(&mut weekdays[day], true) {
            return Err(invalid(field(), format!("{text:?} is listed twice")));
        }
    }
    Ok(Parsed {
        tz,
        hours: Some((spans, weekdays)),
    })
}

/// "HH:MM-HH:MM" as minutes after midnight; the start must be before 24:00.
pub(crate) fn parse_interval(text: &str) -> Option<Span> {
    let (start, end) = text.split_once('-')?;
    let start = parse_clock(start.trim())?;
    let end = parse_clock(end.trim())?;
    (start < DAY_MINUTES).then_some((start, end))
}

/// "H:MM" or "HH:MM", 00:00 to 24:00.
fn parse_clock(text: &str) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    let digits = |s: &str, max_len: usize| {
        (!s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u32>().ok())
            .flatten()
    };
    let h = digits(h, 2)?;
    let m = if m.len() == 2 {
        digits(m, 2)?
    } else {
        return None;
    };
    let minutes = h * 60 + m;
    (m < 60 && minutes <= DAY_MINUTES).then_some(minutes)
}

/// Weekday name (case-insensitive three-letter English) to `num_days_from_monday`.
fn parse_weekday(text: &str) -> Option<usize> {
    const NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    NAMES.iter().position(|n| n.eq_ignore_ascii_case(text))
}
