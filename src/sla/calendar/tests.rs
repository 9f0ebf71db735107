//! Tests against the real holiday-cn files shipped in `config/holidays/`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;

use super::*;

const HOLIDAYS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/holidays");
const KEY: &str = "sla.calendars.workday";

fn shanghai() -> Tz {
    chrono_tz::Asia::Shanghai
}

fn workday_settings() -> CalendarSettings {
    CalendarSettings {
        time_zone: "Asia/Shanghai".into(),
        always_open: false,
        working_hours: vec!["08:30-12:00".into(), "13:30-17:30".into()],
        weekdays: ["mon", "tue", "wed", "thu", "fri"]
            .map(String::from)
            .to_vec(),
        holidays_dir: Some(PathBuf::from(HOLIDAYS_DIR)),
    }
}

/// The workday calendar, built once through the real loading path.
fn workday() -> &'static Calendar {
    static CAL: OnceLock<Calendar> = OnceLock::new();
    CAL.get_or_init(|| Calendar::from_settings("workday", KEY, &workday_settings()).unwrap())
}

fn real_files() -> Vec<(String, String)> {
    [2023, 2024, 2025, 2026]
        .iter()
        .map(|y| {
            let path = Path::new(HOLIDAYS_DIR).join(format!("{y}.json"));
            (
                path.display().to_string(),
                std::fs::read_to_string(&path).unwrap(),
            )
        })
        .collect()
}

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// A Shanghai wall time "YYYY-MM-DD HH:MM" as UTC.
fn at(s: &str) -> DateTime<Utc> {
    at_in(shanghai(), s)
}

fn at_in(tz: Tz, s: &str) -> DateTime<Utc> {
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
    tz.from_local_datetime(&naive)
        .single()
        .unwrap()
        .with_timezone(&Utc)
}

/// A UTC instant as Shanghai wall time, for readable assertions.
fn local(t: DateTime<Utc>) -> String {
    local_in(shanghai(), t)
}

fn local_in(tz: Tz, t: DateTime<Utc>) -> String {
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M %a").to_string()
}

fn hours(h: i64) -> Duration {
    Duration::hours(h)
}

fn invalid_key(err: CalendarError) -> String {
    match err {
        CalendarError::Invalid { key, .. } => key,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

/// Unwraps a count that must be final: every year it went through has data.
trait FinalValue<T> {
    fn final_value(self) -> T;
}

impl<T: std::fmt::Debug> FinalValue<T> for Result<Counted<T>, CalendarError> {
    fn final_value(self) -> T {
        self.unwrap().final_value()
    }
}

impl<T: std::fmt::Debug> FinalValue<T> for Counted<T> {
    fn final_value(self) -> T {
        assert!(!self.is_provisional(), "provisional: {self:?}");
        self.value
    }
}

/// Unwraps a count that must be provisional, counted through exactly `years` without data.
fn provisional<T: std::fmt::Debug>(r: Result<Counted<T>, CalendarError>, years: &[i32]) -> T {
    let c = r.unwrap();
    assert_eq!(c.uncovered, years, "{c:?}");
    c.value
}

/// The real files with one more that changes nothing on an ordinary week (it marks the year's
/// first Saturday off): the year then has data and counts exactly on the ordinary week.
fn with_ordinary_year(mut files: Vec<(String, String)>, year: i32) -> Vec<(String, String)> {
    let saturday = (1..=7)
        .map(|d| NaiveDate::from_ymd_opt(year, 1, d).unwrap())
        .find(|d| d.weekday() == chrono::Weekday::Sat)
        .unwrap();
    files.push((
        format!("{year}.json"),
        format!(
            r#"{{"year": {year}, "papers": [], "days": [{{"name": "x", "date": "{saturday}", "isOffDay": true}}]}}"#
        ),
    ));
    files
}

fn calendar_of(files: &[(String, String)]) -> Calendar {
    let table = HolidayTable::from_json_files(files).unwrap();
    Calendar::with_holidays("workday", KEY, &workday_settings(), Some(table)).unwrap()
}

fn settings_error(edit: impl FnOnce(&mut CalendarSettings)) -> String {
    let mut s = workday_settings();
    edit(&mut s);
    invalid_key(Calendar::from_settings("workday", KEY, &s).unwrap_err())
}

// ---------------------------------------------------------------- holiday data

#[test]
fn the_shipped_files_cover_2023_to_2026() {
    let table = HolidayTable::load_dir(Path::new(HOLIDAYS_DIR)).unwrap();
    assert_eq!(table.years(), vec![2023, 2024, 2025, 2026]);
}

#[test]
fn national_day_2026_is_off_and_the_make_up_sunday_and_saturday_are_working_days() {
    let cal = workday();
    // The 2026 file agrees with the brief: Oct 1-7 off, Sunday Sep 20 and Saturday Oct 10 work.
    for day in 1..=7 {
        let d = NaiveDate::from_ymd_opt(2026, 10, day).unwrap();
        assert!(!cal.is_working_day(d).final_value(), "{d} should be off");
    }
    assert!(cal.is_working_day(date("2026-09-20")).final_value()); // Sunday, make-up day
    assert!(cal.is_working_day(date("2026-10-10")).final_value()); // Saturday, make-up day
    assert!(cal.is_working_day(date("2026-10-08")).final_value()); // Thursday after the holiday
    assert!(!cal.is_working_day(date("2026-10-11")).final_value()); // ordinary Sunday
    // The file also lists Mid-Autumn separately: Friday Sep 25 is off.
    assert!(!cal.is_working_day(date("2026-09-25")).final_value());
}

#[test]
fn spring_festival_2026_skips_the_off_days_and_counts_the_make_up_saturdays() {
    let cal = workday();
    // From the file: Sat Feb 14 works, Feb 15-23 off, Sat Feb 28 works.
    assert!(cal.is_working_day(date("2026-02-14")).final_value());
    for day in 15..=23 {
        let d = NaiveDate::from_ymd_opt(2026, 2, day).unwrap();
        assert!(!cal.is_working_day(d).final_value(), "{d} should be off");
    }
    assert!(cal.is_working_day(date("2026-02-28")).final_value());

    let friday = at("2026-02-13 10:00");
    assert_eq!(
        local(cal.add_working_days(friday, 1).final_value()),
        "2026-02-14 10:00 Sat"
    );
    assert_eq!(
        local(cal.add_working_days(friday, 2).final_value()),
        "2026-02-24 10:00 Tue"
    );
    assert_eq!(
        local(
            cal.add_working_days(at("2026-02-27 10:00"), 1)
                .final_value()
        ),
        "2026-02-28 10:00 Sat"
    );
    assert_eq!(
        local(
            cal.add_working_time(at("2026-02-13 17:00"), hours(1))
                .final_value()
        ),
        "2026-02-14 09:00 Sat"
    );
    assert_eq!(
        local(
            cal.add_working_time(at("2026-02-14 17:00"), hours(1))
                .final_value()
        ),
        "2026-02-24 09:00 Tue"
    );
}

#[test]
fn a_day_listed_for_an_uncovered_neighbouring_year_is_honoured_but_provisional() {
    // 2023.json lists Saturday 2022-12-31 as off, but 2022 as a whole is unknown.
    let day = workday().is_working_day(date("2022-12-31"));
    assert_eq!((day.value, day.uncovered), (false, vec![2022]));
    // Friday 2022-12-30 is not listed: the ordinary week, provisionally.
    let day = workday().is_working_day(date("2022-12-30"));
    assert_eq!((day.value, day.uncovered), (true, vec![2022]));
}

// ---------------------------------------------------------------- working time

#[test]
fn the_lunch_break_does_not_count() {
    let cal = workday();
    // Tuesday 10 March 2026, an ordinary week.
    assert_eq!(
        local(
            cal.add_working_time(at("2026-03-10 11:30"), hours(1))
                .final_value()
        ),
        "2026-03-10 14:00 Tue"
    );
    assert_eq!(
        local(
            cal.add_working_time(at("2026-03-10 12:30"), Duration::minutes(30))
                .final_value()
        ),
        "2026-03-10 14:00 Tue"
    );
}

#[test]
fn time_that_exactly_fills_an_interval_ends_at_its_end() {
    let cal = workday();
    assert_eq!(
        local(
            cal.add_working_time(at("2026-03-10 11:00"), hours(1))
                .final_value()
        ),
        "2026-03-10 12:00 Tue"
    );
}

#[test]
fn counting_starts_at_the_next_working_start_when_outside_hours() {
    let cal = workday();
    assert_eq!(
        local(
            cal.add_working_time(at("2026-03-13 18:00"), hours(1))
                .final_value()
        ),
        "2026-03-16 09:30 Mon"
    );
    // Zero working time is the next working moment, or `from` itself inside hours.
    assert_eq!(
        local(
            cal.add_working_time(at("2026-03-13 18:00"), Duration::zero())
                .final_value()
        ),
        "2026-03-16 08:30 Mon"
    );
    assert_eq!(
        cal.add_working_time(at("2026-03-10 10:00"), Duration::zero())
            .final_value(),
        at("2026-03-10 10:00")
    );
    assert_eq!(
        local(
            cal.add_working_time(at("2026-03-10 12:00"), Duration::zero())
                .final_value()
        ),
        "2026-03-10 13:30 Tue"
    );
}

#[test]
fn working_time_between_skips_a_lunch_break_a_weekend_and_a_holiday() {
    let cal = workday();
    let between = |a: &str, b: &str| cal.working_time_between(at(a), at(b)).final_value();
    assert_eq!(
        between("2026-03-10 11:00", "2026-03-10 14:00"),
        Duration::minutes(90)
    );
    assert_eq!(between("2026-03-13 17:00", "2026-03-16 09:00"), hours(1));
    assert_eq!(between("2026-09-30 17:00", "2026-10-08 09:00"), hours(1));
    // An ordinary week: 5 × 7.5 h.
    assert_eq!(
        between("2026-03-09 00:00", "2026-03-16 00:00"),
        Duration::minutes(5 * 450)
    );
    assert_eq!(
        between("2026-03-10 14:00", "2026-03-10 11:00"),
        Duration::zero()
    );
}

// ---------------------------------------------------------------- working days

#[test]
fn three_working_days_from_tuesday_morning_is_friday_morning() {
    assert_eq!(
        local(
            workday()
                .add_working_days(at("2026-03-10 10:00"), 3)
                .final_value()
        ),
        "2026-03-13 10:00 Fri"
    );
}

#[test]
fn working_days_across_national_day_skip_the_holidays_and_count_the_make_up_saturday() {
    let cal = workday();
    let eve = at("2026-09-30 10:00"); // Wednesday
    assert_eq!(
        local(cal.add_working_days(eve, 1).final_value()),
        "2026-10-08 10:00 Thu"
    );
    assert_eq!(
        local(cal.add_working_days(eve, 3).final_value()),
        "2026-10-10 10:00 Sat"
    );
    assert_eq!(
        local(
            cal.add_working_days(at("2026-09-18 10:00"), 1)
                .final_value()
        ),
        "2026-09-20 10:00 Sun"
    );
}

#[test]
fn working_days_from_outside_hours_are_counted_from_the_next_working_start() {
    let cal = workday();
    // Friday 18:00: anchor Monday 08:30, one working day later is Tuesday 08:30.
    let friday_evening = at("2026-03-13 18:00");
    assert_eq!(
        local(cal.add_working_days(friday_evening, 0).final_value()),
        "2026-03-16 08:30 Mon"
    );
    assert_eq!(
        local(cal.add_working_days(friday_evening, 1).final_value()),
        "2026-03-17 08:30 Tue"
    );
    // Tuesday 18:00 (after hours on a working day): anchor Wednesday 08:30.
    assert_eq!(
        local(
            cal.add_working_days(at("2026-03-10 18:00"), 1)
                .final_value()
        ),
        "2026-03-12 08:30 Thu"
    );
    // 17:30 is already outside (intervals are half-open); 08:30 is inside.
    assert_eq!(
        local(
            cal.add_working_days(at("2026-03-10 17:30"), 1)
                .final_value()
        ),
        "2026-03-12 08:30 Thu"
    );
    assert_eq!(
        local(
            cal.add_working_days(at("2026-03-10 08:30"), 1)
                .final_value()
        ),
        "2026-03-11 08:30 Wed"
    );
    // The lunch break: anchor 13:30 the same day.
    assert_eq!(
        local(
            cal.add_working_days(at("2026-03-10 12:30"), 1)
                .final_value()
        ),
        "2026-03-11 13:30 Wed"
    );
    // N = 0 inside hours is `from` itself.
    let inside = at("2026-03-10 10:17");
    assert_eq!(cal.add_working_days(inside, 0).final_value(), inside);
}

#[test]
fn fifteen_working_days_and_thirty_calendar_days_compute() {
    let cal = workday();
    assert_eq!(
        local(
            cal.add_working_days(at("2026-03-02 10:00"), 15)
                .final_value()
        ),
        "2026-03-23 10:00 Mon"
    );
    // 15 working days across National Day.
    assert_eq!(
        local(
            cal.add_working_days(at("2026-09-28 10:00"), 15)
                .final_value()
        ),
        "2026-10-23 10:00 Fri"
    );
    let always = always_open();
    assert_eq!(
        always
            .add_working_time(at("2026-03-02 10:00"), Duration::days(30))
            .final_value(),
        at("2026-04-01 10:00")
    );
}

// ---------------------------------------------------------------- year ends and missing data

#[test]
fn a_deadline_across_new_year_2026_uses_both_files() {
    let cal = workday();
    // Wed 31 Dec 2025; 1-3 Jan 2026 off, Sunday 4 Jan is a make-up working day.
    assert_eq!(
        local(
            cal.add_working_days(at("2025-12-31 10:00"), 1)
                .final_value()
        ),
        "2026-01-04 10:00 Sun"
    );
    assert_eq!(
        local(
            cal.add_working_days(at("2025-12-31 10:00"), 2)
                .final_value()
        ),
        "2026-01-05 10:00 Mon"
    );
    assert_eq!(
        local(
            cal.add_working_time(at("2025-12-31 17:00"), hours(1))
                .final_value()
        ),
        "2026-01-04 09:00 Sun"
    );
    assert_eq!(
        cal.working_time_between(at("2025-12-31 17:00"), at("2026-01-04 09:00"))
            .final_value(),
        hours(1)
    );
}

#[test]
fn a_deadline_into_2027_counts_on_the_ordinary_week_and_is_provisional() {
    let cal = workday();
    // No 2027 data: 1 January 2027 (a Friday) is an ordinary working day until the file comes.
    assert_eq!(
        local(provisional(
            cal.add_working_days(at("2026-12-31 10:00"), 1),
            &[2027]
        )),
        "2027-01-01 10:00 Fri"
    );
    assert_eq!(
        local(provisional(
            cal.add_working_days(at("2026-12-30 16:00"), 3),
            &[2027]
        )),
        "2027-01-04 16:00 Mon"
    );
    assert_eq!(
        local(provisional(
            cal.add_working_time(at("2026-12-31 17:00"), hours(1)),
            &[2027]
        )),
        "2027-01-01 09:00 Fri"
    );
    assert_eq!(
        provisional(
            cal.working_time_between(at("2026-12-31 17:00"), at("2027-01-04 09:00")),
            &[2027]
        ),
        Duration::minutes(30 + 450 + 30)
    );
    // Within the last covered day it is final, and so is elapsed time up to midnight.
    assert_eq!(
        local(
            cal.add_working_time(at("2026-12-31 10:00"), hours(1))
                .final_value()
        ),
        "2026-12-31 11:00 Thu"
    );
    assert_eq!(
        cal.working_time_between(at("2026-12-31 17:00"), at("2027-01-01 00:00"))
            .final_value(),
        Duration::minutes(30)
    );
    // Each year without data is named, ascending, once.
    assert_eq!(
        cal.add_working_days(at("2026-12-31 10:00"), 300)
            .unwrap()
            .uncovered,
        vec![2027, 2028]
    );
}

#[test]
fn a_year_without_data_is_provisional_never_silently_final() {
    let cal = workday();
    for (day, year) in [("2027-03-01", 2027), ("2019-03-01", 2019)] {
        let counted = cal.is_working_day(date(day));
        assert!(counted.value, "{day} is a Monday");
        assert_eq!(counted.uncovered, vec![year]);
    }
    assert!(cal.is_working_day(date("2026-03-02")).final_value());
    assert_eq!(cal.missing_years(2021, 2028), vec![2021, 2022, 2027, 2028]);
    assert!(cal.missing_years(2023, 2026).is_empty());
}

#[test]
fn a_calendar_whose_data_stops_the_year_before_counts_this_year_on_the_ordinary_week() {
    let files: Vec<_> = real_files()
        .into_iter()
        .filter(|(name, _)| name.ends_with("2025.json"))
        .collect();
    let table = HolidayTable::from_json_files(&files).unwrap();
    let cal = Calendar::with_holidays("workday", KEY, &workday_settings(), Some(table)).unwrap();
    // National Day 2025 is known; National Day 2026 is not, so 1 October 2026 counts.
    assert_eq!(
        local(
            cal.add_working_days(at("2025-09-30 10:00"), 1)
                .final_value()
        ),
        "2025-10-09 10:00 Thu"
    );
    assert_eq!(
        local(provisional(
            cal.add_working_days(at("2026-09-30 10:00"), 1),
            &[2026]
        )),
        "2026-10-01 10:00 Thu"
    );
    // From the last days of 2025 into 2026 and on into 2027: both years are named.
    assert_eq!(
        cal.add_working_days(at("2025-12-31 10:00"), 300)
            .unwrap()
            .uncovered,
        vec![2026, 2027]
    );
}

#[test]
fn an_empty_days_file_counts_as_no_data() {
    let mut files = real_files();
    files.push((
        "2027.json".into(),
        r#"{"year": 2027, "papers": [], "days": []}"#.into(),
    ));
    let table = HolidayTable::from_json_files(&files).unwrap();
    assert_eq!(table.years(), vec![2023, 2024, 2025, 2026]);
    let cal = Calendar::with_holidays("workday", KEY, &workday_settings(), Some(table)).unwrap();
    assert_eq!(cal.is_working_day(date("2027-01-04")).uncovered, vec![2027]);
    assert_eq!(cal.missing_years(2026, 2027), vec![2027]);
}

#[test]
fn a_newer_file_of_the_same_format_is_accepted() {
    let mut files = real_files();
    files.push((
        "/somewhere/2027.json".into(),
        r#"{"$schema": "x", "year": 2027, "papers": ["p"], "newField": 1,
            "days": [{"name": "元旦", "date": "2027-01-01", "isOffDay": true, "extra": 0}]}"#
            .into(),
    ));
    let table = HolidayTable::from_json_files(&files).unwrap();
    assert_eq!(table.years(), vec![2023, 2024, 2025, 2026, 2027]);
    let cal = Calendar::with_holidays("workday", KEY, &workday_settings(), Some(table)).unwrap();
    assert_eq!(
        local(
            cal.add_working_days(at("2026-12-31 10:00"), 1)
                .final_value()
        ),
        "2027-01-04 10:00 Mon"
    );
}

#[test]
fn broken_holiday_files_are_file_errors_naming_the_file() {
    let file_path = |files: Vec<(String, String)>| match HolidayTable::from_json_files(&files) {
        Err(CalendarError::File { path, .. }) => path,
        other => panic!("expected a File error, got {other:?}"),
    };
    assert_eq!(
        file_path(vec![("2026.json".into(), "{not json".into())]),
        "2026.json"
    );
    assert_eq!(
        file_path(vec![(
            "dir/2027.json".into(),
            r#"{"year": 2026, "papers": [], "days": []}"#.into()
        )]),
        "dir/2027.json"
    );
    assert_eq!(
        file_path(vec![(
            "2026.json".into(),
            r#"{"year": 2026, "papers": [], "days": [{"name": "x", "date": "2026-13-01", "isOffDay": true}]}"#.into()
        )]),
        "2026.json"
    );
    assert_eq!(
        file_path(vec![
            (
                "2023.json".into(),
                r#"{"year": 2023, "papers": [], "days": [{"name": "x", "date": "2022-12-31", "isOffDay": true}]}"#.into()
            ),
            (
                "2022.json".into(),
                r#"{"year": 2022, "papers": [], "days": [{"name": "x", "date": "2022-12-31", "isOffDay": false}]}"#.into()
            ),
        ]),
        "2022.json"
    );
    match HolidayTable::load_dir(Path::new("/nonexistent/holidays")) {
        Err(CalendarError::File { path, .. }) => assert_eq!(path, "/nonexistent/holidays"),
        other => panic!("expected a File error, got {other:?}"),
    }
}

// ---------------------------------------------------------------- 24x7

fn always_open() -> Calendar {
    let s = CalendarSettings {
        time_zone: "Asia/Shanghai".into(),
        always_open: true,
        working_hours: vec![],
        weekdays: vec![],
        holidays_dir: None,
    };
    Calendar::from_settings("hotline24", "sla.calendars.hotline24", &s).unwrap()
}

#[test]
fn a_24x7_calendar_is_plain_arithmetic_and_needs_no_data() {
    let cal = always_open();
    assert!(cal.is_always_open());
    assert_eq!(cal.name(), "hotline24");
    let t = at("2090-10-01 23:15"); // far beyond any holiday data
    assert_eq!(
        cal.add_working_time(t, hours(5)).final_value(),
        t + hours(5)
    );
    assert_eq!(cal.add_working_days(t, 3).final_value(), t + hours(72));
    assert_eq!(cal.add_working_days(t, 0).final_value(), t);
    assert_eq!(
        cal.working_time_between(t, t + hours(30)).final_value(),
        hours(30)
    );
    assert!(cal.is_working_day(date("2090-10-01")).final_value());
    assert!(cal.missing_years(1900, 3000).is_empty());
    // Overflow is an error, not a panic.
    assert!(cal.add_working_days(t, u32::MAX).is_err());
    assert!(cal.add_working_time(t, Duration::MAX).is_err());
}

// ---------------------------------------------------------------- configuration

#[test]
fn config_validation_errors_name_their_key() {
    assert_eq!(
        settings_error(|s| s.time_zone = "Asia/Beijing".into()),
        "sla.calendars.workday.time_zone"
    );
    assert_eq!(
        settings_error(|s| s.working_hours[0] = "8h-12h".into()),
        "sla.calendars.workday.working_hours[0]"
    );
    assert_eq!(
        settings_error(|s| s.working_hours[1] = "13:30-25:00".into()),
        "sla.calendars.workday.working_hours[1]"
    );
    assert_eq!(
        settings_error(|s| s.working_hours[0] = "12:00-08:30".into()),
        "sla.calendars.workday.working_hours[0]"
    );
    assert_eq!(
        settings_error(|s| s.working_hours[1] = "11:00-17:30".into()),
        "sla.calendars.workday.working_hours[1]"
    );
    assert_eq!(
        settings_error(|s| s.working_hours.reverse()),
        "sla.calendars.workday.working_hours[1]"
    );
    assert_eq!(
        settings_error(|s| s.working_hours.clear()),
        "sla.calendars.workday.working_hours"
    );
    assert_eq!(
        settings_error(|s| s.weekdays[1] = "funday".into()),
        "sla.calendars.workday.weekdays[1]"
    );
    assert_eq!(
        settings_error(|s| s.weekdays[1] = "mon".into()),
        "sla.calendars.workday.weekdays[1]"
    );
    assert_eq!(
        settings_error(|s| s.weekdays.clear()),
        "sla.calendars.workday.weekdays"
    );
    assert_eq!(
        settings_error(|s| s.holidays_dir = None),
        "sla.calendars.workday.holidays_dir"
    );
    assert_eq!(
        settings_error(|s| s.always_open = true),
        "sla.calendars.workday.working_hours"
    );
    let err = Calendar::with_holidays("workday", KEY, &workday_settings(), None).unwrap_err();
    assert_eq!(invalid_key(err), "sla.calendars.workday.holidays_dir");
    let err = Calendar::with_holidays(
        "workday",
        KEY,
        &workday_settings(),
        Some(HolidayTable::default()),
    )
    .unwrap_err();
    assert_eq!(invalid_key(err), "sla.calendars.workday.holidays_dir");
    // The message reads "<key>: <reason>".
    let mut s = workday_settings();
    s.working_hours[1] = "11:00-17:30".into();
    let message = Calendar::from_settings("workday", KEY, &s)
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with("sla.calendars.workday.working_hours[1]: "),
        "{message}"
    );
}

#[test]
fn unknown_settings_keys_are_rejected() {
    let ok: CalendarSettings = serde_json::from_value(serde_json::json!({
        "time_zone": "Asia/Shanghai", "always_open": true
    }))
    .unwrap();
    assert!(ok.always_open && ok.working_hours.is_empty() && ok.holidays_dir.is_none());
    let err = serde_json::from_value::<CalendarSettings>(serde_json::json!({
        "time_zone": "Asia/Shanghai", "workinghours": ["08:30-12:00"]
    }))
    .unwrap_err();
    assert!(err.to_string().contains("workinghours"), "{err}");
}

#[test]
fn a_negative_duration_is_rejected() {
    let err = workday()
        .add_working_time(at("2026-03-10 10:00"), Duration::minutes(-1))
        .unwrap_err();
    assert_eq!(invalid_key(err), KEY);
}

#[test]
fn calendars_can_be_shared_between_threads() {
    fn shareable<T: Clone + std::fmt::Debug + Send + Sync>() {}
    shareable::<Calendar>();
    shareable::<HolidayTable>();
}

// ---------------------------------------------------------------- bounds

#[test]
fn stepping_gives_up_after_about_ten_years() {
    // Sixteen covered years, so only the step bound can stop a huge count.
    let files: Vec<(String, String)> = (2026..2042)
        .map(|y| {
            (
                format!("{y}.json"),
                format!(
                    r#"{{"year": {y}, "papers": [], "days": [{{"name": "x", "date": "{y}-01-01", "isOffDay": true}}]}}"#
                ),
            )
        })
        .collect();
    let table = HolidayTable::from_json_files(&files).unwrap();
    let cal = Calendar::with_holidays("workday", KEY, &workday_settings(), Some(table)).unwrap();
    let from = at("2026-03-10 10:00");
    assert_eq!(
        invalid_key(cal.add_working_days(from, 5_000).unwrap_err()),
        KEY
    );
    assert_eq!(
        invalid_key(cal.add_working_time(from, hours(50_000)).unwrap_err()),
        KEY
    );
    assert_eq!(
        invalid_key(
            cal.working_time_between(from, at("2041-12-01 10:00"))
                .unwrap_err()
        ),
        KEY
    );
    // On the real data, the years without data do not stop a count: the bound does.
    assert_eq!(
        invalid_key(workday().add_working_days(from, u32::MAX).unwrap_err()),
        KEY
    );
}

// ---------------------------------------------------------------- DST

/// Berlin has DST; 2026 springs forward on 29 March (02:00 → 03:00) and falls back on
/// 25 October (03:00 → 02:00). Hours chosen to straddle the changes.
fn berlin_night_shift() -> Calendar {
    let s = CalendarSettings {
        time_zone: "Europe/Berlin".into(),
        always_open: false,
        working_hours: vec!["02:30-05:00".into()],
        weekdays: ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
            .map(String::from)
            .to_vec(),
        holidays_dir: Some(PathBuf::from(HOLIDAYS_DIR)),
    };
    Calendar::from_settings("night", "sla.calendars.night", &s).unwrap()
}

#[test]
fn a_working_start_skipped_by_dst_starts_when_the_clocks_jump() {
    let cal = berlin_night_shift();
    let berlin = chrono_tz::Europe::Berlin;
    let day_before = at_in(berlin, "2026-03-28 02:45");
    // Local 02:30-05:00 on the 29th is really 03:00-05:00: two hours.
    assert_eq!(
        cal.working_time_between(day_before, at_in(berlin, "2026-03-29 12:00"))
            .final_value(),
        Duration::minutes(135) + hours(2)
    );
    // 02:45 does not exist on the 29th: the deadline is the first instant after the gap.
    let deadline = cal.add_working_days(day_before, 1).final_value();
    assert_eq!(local_in(berlin, deadline), "2026-03-29 03:00 Sun");
    assert_eq!(
        deadline,
        Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap()
    );
    // Counting from inside the gap starts at the jump too.
    assert_eq!(
        cal.add_working_time(day_before + hours(12), Duration::zero())
            .final_value(),
        deadline
    );
}

#[test]
fn a_working_interval_over_a_repeated_hour_includes_both_passes() {
    let cal = berlin_night_shift();
    // 02:30 CEST (00:30 UTC) to 05:00 CET (04:00 UTC): three and a half hours.
    let start = Utc.with_ymd_and_hms(2026, 10, 25, 0, 30, 0).unwrap();
    assert_eq!(
        cal.add_working_time(start - hours(6), Duration::zero())
            .final_value(),
        start
    );
    assert_eq!(
        cal.working_time_between(start, start + hours(24))
            .final_value(),
        Duration::minutes(210)
    );
    // A working-day target time that occurs twice resolves to the earlier instant.
    let from = Utc.with_ymd_and_hms(2026, 10, 24, 0, 45, 0).unwrap(); // 02:45 CEST on the 24th
    assert_eq!(
        cal.add_working_days(from, 1).final_value(),
        Utc.with_ymd_and_hms(2026, 10, 25, 0, 45, 0).unwrap()
    );
}

// ---------------------------------------------------------------- properties

/// Any instant from 2023-01-01 to 2026-12-31 (Shanghai), to the second.
fn start() -> impl Strategy<Value = DateTime<Utc>> {
    let lo = at("2023-01-01 00:00").timestamp();
    let hi = at("2027-01-01 00:00").timestamp();
    (lo..hi).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap())
}

/// Up to 200 working hours, to the second.
fn working_time() -> impl Strategy<Value = Duration> {
    (0i64..=200 * 3600).prop_map(Duration::seconds)
}

/// The real data without 2024 (and, like the real data, without 2027): years without data
/// before, between and after covered ones.
fn with_gaps() -> &'static Calendar {
    static CAL: OnceLock<Calendar> = OnceLock::new();
    CAL.get_or_init(|| {
        let files: Vec<_> = real_files()
            .into_iter()
            .filter(|(name, _)| !name.ends_with("2024.json"))
            .collect();
        calendar_of(&files)
    })
}

/// The years `with_gaps` has data for.
const GAPS_COVER: [i32; 3] = [2023, 2025, 2026];

/// What `with_gaps` should count: the same data with 2024 and 2027 on their ordinary week, but
/// covered, so never provisional.
fn gaps_filled() -> &'static Calendar {
    static CAL: OnceLock<Calendar> = OnceLock::new();
    CAL.get_or_init(|| {
        let files: Vec<_> = real_files()
            .into_iter()
            .filter(|(name, _)| !name.ends_with("2024.json"))
            .collect();
        calendar_of(&with_ordinary_year(with_ordinary_year(files, 2024), 2027))
    })
}

/// The years without data among the local years from `a` to `b` (Shanghai), both included.
fn gap_years(a: DateTime<Utc>, b: DateTime<Utc>) -> Vec<i32> {
    let year = |t: DateTime<Utc>| t.with_timezone(&shanghai()).year();
    (year(a)..=year(b))
        .filter(|y| !GAPS_COVER.contains(y))
        .collect()
}

proptest! {
    #[test]
    fn nothing_fails_for_lack_of_data_and_a_deadline_never_precedes_its_start(
        from in start(), d in working_time(), n in 0u32..=20
    ) {
        for cal in [workday(), with_gaps()] {
            prop_assert!(cal.add_working_time(from, d).unwrap().value >= from);
            prop_assert!(cal.add_working_days(from, n).unwrap().value >= from);
        }
    }

    #[test]
    fn a_year_without_data_counts_as_its_ordinary_week_and_is_marked_exactly_when_touched(
        from in start(), d in working_time(), n in 0u32..=20, span in 0i64..=60 * 86_400
    ) {
        let (cal, filled) = (with_gaps(), gaps_filled());
        let by_time = cal.add_working_time(from, d).unwrap();
        prop_assert_eq!(by_time.value, filled.add_working_time(from, d).final_value());
        prop_assert_eq!(&by_time.uncovered, &gap_years(from, by_time.value));

        let by_days = cal.add_working_days(from, n).unwrap();
        prop_assert_eq!(by_days.value, filled.add_working_days(from, n).final_value());
        prop_assert_eq!(&by_days.uncovered, &gap_years(from, by_days.value));

        // Elapsed time looks at the dates in [from, until): up to the last instant before `until`.
        let until = from + Duration::seconds(span);
        let elapsed = cal.working_time_between(from, until).unwrap();
        prop_assert_eq!(elapsed.value, filled.working_time_between(from, until).final_value());
        let expected = if span == 0 {
            Vec::new()
        } else {
            gap_years(from, until - Duration::nanoseconds(1))
        };
        prop_assert_eq!(&elapsed.uncovered, &expected);
    }

    #[test]
    fn adding_more_time_never_gives_an_earlier_deadline(
        from in start(), d1 in working_time(), d2 in working_time()
    ) {
        let (short, long) = (d1.min(d2), d1.max(d2));
        for cal in [workday(), with_gaps()] {
            let a = cal.add_working_time(from, short).unwrap().value;
            let b = cal.add_working_time(from, long).unwrap().value;
            prop_assert!(a <= b, "{} + {short} = {}, + {long} = {}", local(from), local(a), local(b));
        }
    }

    #[test]
    fn a_later_start_never_gives_an_earlier_deadline(
        s1 in start(), s2 in start(), d in working_time()
    ) {
        let (early, late) = (s1.min(s2), s1.max(s2));
        for cal in [workday(), with_gaps()] {
            let a = cal.add_working_time(early, d).unwrap().value;
            let b = cal.add_working_time(late, d).unwrap().value;
            prop_assert!(a <= b, "{} -> {}, {} -> {}", local(early), local(a), local(late), local(b));
        }
    }

    #[test]
    fn the_working_time_up_to_the_deadline_is_what_was_added(from in start(), d in working_time()) {
        for cal in [workday(), with_gaps()] {
            let deadline = cal.add_working_time(from, d).unwrap();
            let elapsed = cal.working_time_between(from, deadline.value).unwrap();
            prop_assert_eq!(elapsed.value, d);
            // Both looked at the same dates, so both are provisional or neither.
            if d > Duration::zero() {
                prop_assert_eq!(elapsed.uncovered, deadline.uncovered);
            }
        }
    }

    #[test]
    fn working_days_are_monotonic_in_the_start_and_span_whole_days(
        s1 in start(), s2 in start(), n in 0u32..=20
    ) {
        let (early, late) = (s1.min(s2), s1.max(s2));
        for cal in [workday(), with_gaps()] {
            let a = cal.add_working_days(early, n).unwrap().value;
            let b = cal.add_working_days(late, n).unwrap().value;
            prop_assert!(a <= b);
            let anchor = cal.add_working_time(early, Duration::zero()).unwrap().value;
            prop_assert_eq!(
                cal.working_time_between(anchor, a).unwrap().value,
                Duration::minutes(450 * i64::from(n))
            );
        }
    }
}
