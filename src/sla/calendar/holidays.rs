//! The holiday-cn year files, parsed into one table keyed by date.
//!
//! Kept apart from the counting code because it is the only part that touches files and JSON;
//! the rest of the calendar only asks "is this date listed, and is that year covered?".

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{Datelike, NaiveDate};

use super::CalendarError;

/// Holidays and make-up days by date, and which years are covered.
///
/// A year is covered only if a file for it lists at least one day: holiday-cn publishes an empty
/// file for a year whose schedule is not announced yet, and counting that as final would
/// silently produce wrong deadlines (an uncovered year's results are marked provisional).
#[derive(Debug, Clone, Default)]
pub struct HolidayTable {
    /// `true` = day off (public holiday), `false` = make-up working day (调休补班).
    days: BTreeMap<NaiveDate, bool>,
    /// Years whose file has a non-empty `days` list.
    years: BTreeSet<i32>,
}

/// One `YYYY.json` file. Unknown fields (`$schema`, `$id`, `papers`, future additions) are
/// ignored so that a newer file of the same format is accepted.
#[derive(serde::Deserialize)]
struct YearFile {
    year: i32,
    days: Vec<DayEntry>,
}

/// One entry of `days`; `name` is not needed for counting and is ignored.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct DayEntry {
    date: NaiveDate,
    is_off_day: bool,
}

impl HolidayTable {
    /// Parses holiday-cn year files given as `(name, contents)`; the name is only used in errors
    /// and, when it looks like `.../YYYY.json`, checked against the file's `year` so that a
    /// misnamed file cannot shift a whole year's holidays.
    pub fn from_json_files(files: &[(String, String)]) -> Result<HolidayTable, CalendarError> {
        let mut table = HolidayTable::default();
        let mut seen: BTreeMap<i32, &str> = BTreeMap::new();
        for (name, text) in files {
            let file_error = |message: String| CalendarError::File {
                path: name.clone(),
                message,
            };
            let parsed: YearFile = serde_json::from_str(text)
                .map_err(|e| file_error(format!("not a holiday-cn year file: {e}")))?;
            if let Some(named) = year_from_name(name)
                && named != parsed.year
            {
                return Err(file_error(format!(
                    "file is named for {named} but its `year` is {}",
                    parsed.year
                )));
            }
            if let Some(other) = seen.insert(parsed.year, name) {
                return Err(file_error(format!(
                    "year {} is also given by {other}",
                    parsed.year
                )));
            }
            for day in &parsed.days {
                if (day.date.year() - parsed.year).abs() > 1 {
                    return Err(file_error(format!(
                        "date {} is too far from the file's year {}",
                        day.date, parsed.year
                    )));
                }
                match table.days.entry(day.date) {
                    Entry::Vacant(slot) => {
                        slot.insert(day.is_off_day);
                    }
                    Entry::Occupied(existing) if *existing.get() != day.is_off_day => {
                        return Err(file_error(format!(
                            "date {} is listed both as a day off and as a working day",
                            day.date
                        )));
                    }
                    Entry::Occupied(_) => {}
                }
            }
            if !parsed.days.is_empty() {
                table.years.insert(parsed.year);
            }
        }
        Ok(table)
    }

    /// Reads every `YYYY.json` in `dir` (other files such as `LICENSE` or `README.md` are
    /// skipped), so that dropping next year's file in the directory is all a reload needs.
    pub fn load_dir(dir: &Path) -> Result<HolidayTable, CalendarError> {
        let dir_error = |message: String| CalendarError::File {
            path: dir.display().to_string(),
            message,
        };
        let entries =
            std::fs::read_dir(dir).map_err(|e| dir_error(format!("cannot list directory: {e}")))?;
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| dir_error(format!("cannot list directory: {e}")))?;
            let path = entry.path();
            let Some(path_str) = path.to_str() else {
                continue;
            };
            if year_from_name(path_str).is_none() || !path.is_file() {
                continue;
            }
            let text = std::fs::read_to_string(&path).map_err(|e| CalendarError::File {
                path: path.display().to_string(),
                message: format!("cannot read: {e}"),
            })?;
            files.push((path.display().to_string(), text));
        }
        files.sort();
        HolidayTable::from_json_files(&files)
    }

    /// Years with data (a non-empty `days` list), ascending; used for start-up checks and the
    /// "calendar data runs out" metric.
    pub fn years(&self) -> Vec<i32> {
        self.years.iter().copied().collect()
    }

    /// Whether `year` has data; dates in an uncovered year follow the ordinary week, provisionally.
    pub(super) fn covers(&self, year: i32) -> bool {
        self.years.contains(&year)
    }

    /// `Some(true)` for a listed day off, `Some(false)` for a listed make-up working day, `None`
    /// when the date follows the ordinary week.
    pub(super) fn listed(&self, date: NaiveDate) -> Option<bool> {
        self.days.get(&date).copied()
    }
}

/// The year in a file name of the form `YYYY.json` (with any directory in front), if it is one.
fn year_from_name(name: &str) -> Option<i32> {
    let base = Path::new(name).file_name()?.to_str()?;
    let stem = base.strip_suffix(".json")?;
    if stem.len() == 4 && stem.bytes().all(|b| b.is_ascii_digit()) {
        stem.parse().ok()
    } else {
        None
    }
}
