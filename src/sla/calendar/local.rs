//! Local wall-clock time to UTC, with one documented answer for times that a DST change skips or
//! repeats. Asia/Shanghai has had no DST since 1991, but the calendar takes any IANA zone, and a
//! deadline must never be computed from a panic or a guess.

use chrono::offset::MappedLocalTime;
use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

/// Which end of a working interval a local time is: decides the answer for a repeated hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    /// Start of an interval, or a target time: the earlier instant of a repeated wall time.
    Start,
    /// End of an interval: the later instant of a repeated wall time, so the interval covers
    /// every instant whose wall clock reads inside it.
    End,
}

/// How far to look for the end of a skipped stretch of wall time (the longest known, Samoa in
/// 2011, skipped one day).
const GAP_SEARCH_MINUTES: u32 = 2 * 24 * 60;

/// The UTC instant for a local wall time.
///
/// - A time that exists once: that instant.
/// - A repeated time (clocks go back): the earlier instant for [`Side::Start`], the later for
///   [`Side::End`].
/// - A skipped time (clocks go forward): the first instant after the gap, i.e. the moment the
///   clocks jump, whose wall time is the first one that exists again.
///
/// `None` only if no wall time exists within two days after `local` or the date range ends.
pub(super) fn to_utc(tz: Tz, local: NaiveDateTime, side: Side) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        MappedLocalTime::Single(t) => Some(t.with_timezone(&Utc)),
        MappedLocalTime::Ambiguous(early, late) => Some(match side {
            Side::Start => early.with_timezone(&Utc),
            Side::End => late.with_timezone(&Utc),
        }),
        MappedLocalTime::None => end_of_gap(tz, local),
    }
}

/// The first existing wall time after a skipped `local`, as UTC: minute steps to find it, then
/// second steps back to its exact start (gaps in tzdb start and end on whole seconds).
fn end_of_gap(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    let minute = local.with_second(0)?.with_nanosecond(0)?;
    let mut probe = minute;
    let mut found = None;
    for _ in 0..GAP_SEARCH_MINUTES {
        probe = probe.checked_add_signed(Duration::minutes(1))?;
        if let Some(t) = tz.from_local_datetime(&probe).earliest() {
            found = Some((probe, t));
            break;
        }
    }
    let (mut probe, mut instant) = found?;
    for _ in 0..59 {
        let back = probe.checked_sub_signed(Duration::seconds(1))?;
        if back <= local {
            break;
        }
        match tz.from_local_datetime(&back).earliest() {
            Some(t) => {
                probe = back;
                instant = t;
            }
            None => break,
        }
    }
    Some(instant.with_timezone(&Utc))
}
