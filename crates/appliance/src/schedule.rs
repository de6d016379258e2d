//! Named capture schedules (`[[schedule]]` in `wirecap.toml`) and their time maths: when
//! is a schedule's window open, when does it next open and close. Pure: the caller passes
//! the time in, so every rule (cron, weekly windows, time zones, DST) is unit tested
//! without a clock. The task that acts on them is [`crate::scheduler`].
//!
//! ```toml
//! timezone = "Europe/Berlin"        # default for every schedule; UTC when absent
//!
//! [[schedule]]                      # a weekly window
//! name  = "office"
//! days  = ["mon", "tue", "wed", "thu", "fri"]   # or ["daily"]
//! start = "08:00"                   # local wall-clock time, HH:MM or HH:MM:SS
//! stop  = "18:00"                   # before start: the window ends the next day
//! stream = "office"                 # base name of the streams (default: the name)
//!
//! [[schedule]]                      # cron start times and a duration
//! name = "nightly"
//! cron = "0 2 * * *"                # 5 fields, or 6 with seconds first
//! duration = "1h 30m"               # or "90m", "45s", "PT1H"
//! timezone = "UTC"
//! enabled = false
//! ```
//!
//! **Time zones and DST** (jiff with its bundled tz database, so no /usr/share/zoneinfo
//! is needed): a wall-clock time that does not exist (the spring-forward gap) starts at
//! the first instant after the gap; one that happens twice (the autumn fold) means its
//! first occurrence. A window's length therefore follows the wall clock: `08:00`–`18:00`
//! on a DST day is 9 or 11 hours long. A cron window lasts `duration` of real time. A
//! cron time in a gap fires when the gap ends (croner); in a fold, it fires once.

use std::str::FromStr;

use croner::Cron;
use croner::parser::{CronParser, Seconds};
use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, Zoned};
use serde::{Deserialize, Serialize};

/// One `[[schedule]]` table, as written in the file.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    pub name: String,
    /// Cron start times (with `duration`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Weekly window: days (`mon` … `sun`, or `daily`) with `start` and `stop`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<String>,
    /// IANA zone (`Europe/Berlin`); default: the file's `timezone`, else UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Base name of the streams it records (default: the schedule's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}
fn is_true(b: &bool) -> bool {
    *b
}

/// A schedule that failed validation: which schedule, which field, why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("schedule {name:?}: {field}: {why}")]
pub struct ScheduleError {
    pub name: String,
    pub field: &'static str,
    pub why: String,
}

/// When a schedule's captures run.
#[derive(Debug, Clone)]
pub enum When {
    /// Starts at every cron time, lasts `duration`.
    Cron {
        cron: Box<Cron>,
        duration: SignedDuration,
    },
    /// Opens at `start` and closes at `stop` (local times) on `days` (the day it opens).
    Weekly {
        days: [bool; 7],
        start: Time,
        stop: Time,
    },
}

/// A validated schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub name: String,
    pub stream: String,
    pub tz: TimeZone,
    pub when: When,
    pub enabled: bool,
}

/// A half-open interval `[start, stop)` during which a schedule captures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: Timestamp,
    pub stop: Timestamp,
}

impl Window {
    pub fn contains(&self, t: Timestamp) -> bool {
        self.start <= t && t < self.stop
    }
}

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn day_index(d: Weekday) -> usize {
    d.to_monday_zero_offset() as usize
}

/// Parses a time zone name the way schedules accept it.
pub fn parse_tz(s: &str) -> Result<TimeZone, String> {
    if s.eq_ignore_ascii_case("utc") {
        return Ok(TimeZone::UTC);
    }
    TimeZone::get(s).map_err(|_| {
        format!("unknown time zone {s:?} (use an IANA name such as Europe/Berlin, or UTC)")
    })
}

fn parse_clock(s: &str) -> Result<Time, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let num = |p: &str, max: i8| -> Result<i8, String> {
        p.parse::<i8>()
            .ok()
            .filter(|v| (0..=max).contains(v) && !p.is_empty() && p.len() <= 2)
            .ok_or_else(|| format!("{s:?} is not a time of day (HH:MM or HH:MM:SS, 24-hour)"))
    };
    let (h, m, sec) = match parts.as_slice() {
        [h, m] => (num(h, 23)?, num(m, 59)?, 0),
        [h, m, sec] => (num(h, 23)?, num(m, 59)?, num(sec, 59)?),
        _ => {
            return Err(format!(
                "{s:?} is not a time of day (HH:MM or HH:MM:SS, 24-hour)"
            ));
        }
    };
    Time::new(h, m, sec, 0).map_err(|e| e.to_string())
}

/// The longest window a cron schedule may give: a year.
pub const MAX_DURATION: SignedDuration = SignedDuration::from_hours(366 * 24);

/// Parses `duration`: `1h 30m`, `90m`, `45s`, ISO 8601 `PT1H`.
pub fn parse_duration(s: &str) -> Result<SignedDuration, String> {
    let d = SignedDuration::from_str(s.trim())
        .map_err(|_| format!("{s:?} is not a duration (e.g. \"1h 30m\", \"90s\", \"PT2H\")"))?;
    if d <= SignedDuration::ZERO {
        return Err(format!("{s:?}: a duration must be longer than zero"));
    }
    // Longer ones overflowed into stops in the past ("10000000h" stopped in 1998).
    if d > MAX_DURATION {
        return Err(format!(
            "{s:?} is longer than the longest capture window, {} days",
            MAX_DURATION.as_hours() / 24
        ));
    }
    Ok(d)
}

impl ScheduleConfig {
    /// Validates the table; `default_tz` is the file's `timezone`.
    pub fn validate(&self, default_tz: Option<&str>) -> Result<Schedule, ScheduleError> {
        let err = |field: &'static str, why: String| ScheduleError {
            name: self.name.clone(),
            field,
            why,
        };
        wirecap_store::validate_base_name(&self.name).map_err(|e| {
            err(
                "name",
                format!("{e} (a schedule's name follows the rules of stream names)"),
            )
        })?;
        let stream = self.stream.clone().unwrap_or_else(|| self.name.clone());
        wirecap_store::validate_base_name(&stream).map_err(|e| err("stream", e.to_string()))?;
        let tz = match self.timezone.as_deref().or(default_tz) {
            None => TimeZone::UTC,
            Some(z) => parse_tz(z).map_err(|w| err("timezone", w))?,
        };
        let weekly = self.days.is_some() || self.start.is_some() || self.stop.is_some();
        let when = match (&self.cron, weekly) {
            (Some(_), true) => {
                return Err(err(
                    "cron",
                    "give either cron and duration, or days, start and stop; not both".into(),
                ));
            }
            (Some(c), false) => {
                let cron = CronParser::builder()
                    .seconds(Seconds::Optional)
                    .build()
                    .parse(c)
                    .map_err(|e| err("cron", format!("{c:?}: {e}")))?;
                let d = self
                    .duration
                    .as_deref()
                    .ok_or_else(|| err("duration", "a cron schedule needs a duration".into()))?;
                When::Cron {
                    cron: Box::new(cron),
                    duration: parse_duration(d).map_err(|w| err("duration", w))?,
                }
            }
            (None, true) => {
                if self.duration.is_some() {
                    return Err(err(
                        "duration",
                        "a days/start/stop window ends at stop; duration is for cron".into(),
                    ));
                }
                let list = self.days.as_ref().ok_or_else(|| {
                    err(
                        "days",
                        "give the days (\"mon\" … \"sun\", or \"daily\")".into(),
                    )
                })?;
                let mut days = [false; 7];
                for d in list {
                    let d = d.trim().to_ascii_lowercase();
                    if d == "daily" || d == "*" {
                        days = [true; 7];
                    } else if let Some(i) = DAY_NAMES
                        .iter()
                        .zip(DAY_NAMES_LONG)
                        .position(|(short, long)| d == *short || d == long)
                    {
                        days[i] = true;
                    } else {
                        return Err(err(
                            "days",
                            format!(
                                "{d:?} is not a day (mon, tue, wed, thu, fri, sat, sun, or daily)"
                            ),
                        ));
                    }
                }
                if !days.contains(&true) {
                    return Err(err("days", "the list of days is empty".into()));
                }
                let start = parse_clock(
                    self.start
                        .as_deref()
                        .ok_or_else(|| err("start", "give the start time (HH:MM)".into()))?,
                )
                .map_err(|w| err("start", w))?;
                let stop = parse_clock(
                    self.stop
                        .as_deref()
                        .ok_or_else(|| err("stop", "give the stop time (HH:MM)".into()))?,
                )
                .map_err(|w| err("stop", w))?;
                if start == stop {
                    return Err(err(
                        "stop",
                        "stop equals start: the window would be empty".into(),
                    ));
                }
                When::Weekly { days, start, stop }
            }
            (None, false) => {
                return Err(err(
                    "cron",
                    "give either cron and duration, or days, start and stop".into(),
                ));
            }
        };
        Ok(Schedule {
            name: self.name.clone(),
            stream,
            tz,
            when,
            enabled: self.enabled,
        })
    }
}

const DAY_NAMES_LONG: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// Validates every schedule of a file: names unique, each table valid.
pub fn validate_all(
    list: &[ScheduleConfig],
    default_tz: Option<&str>,
) -> Result<Vec<Schedule>, ScheduleError> {
    if let Some(z) = default_tz {
        parse_tz(z).map_err(|why| ScheduleError {
            name: String::new(),
            field: "timezone",
            why,
        })?;
    }
    let mut out: Vec<Schedule> = Vec::with_capacity(list.len());
    for c in list {
        let s = c.validate(default_tz)?;
        if out.iter().any(|o| o.name == s.name) {
            return Err(ScheduleError {
                name: s.name,
                field: "name",
                why: "two schedules have this name".into(),
            });
        }
        out.push(s);
    }
    Ok(out)
}

/// A local wall-clock time on `date` as an instant (gap: after it; fold: the first).
fn local(date: Date, t: Time, tz: &TimeZone) -> Option<Timestamp> {
    date.to_datetime(t)
        .to_zoned(tz.clone())
        .ok()
        .map(|z| z.timestamp())
}

impl Schedule {
    /// The window open at `now`, if any.
    pub fn window_at(&self, now: Timestamp) -> Option<Window> {
        match &self.when {
            When::Cron { cron, duration } => {
                let z = now.to_zoned(self.tz.clone());
                let prev: Zoned = cron.find_previous_occurrence(&z, true).ok()?;
                let stop = prev.timestamp().checked_add(*duration).ok()?;
                let w = Window {
                    start: prev.timestamp(),
                    stop,
                };
                w.contains(now).then_some(w)
            }
            When::Weekly { .. } => self
                .weekly_windows(now, -1, 0)
                .into_iter()
                .find(|w| w.contains(now)),
        }
    }

    /// The first window that starts strictly after `now`.
    pub fn next_window(&self, now: Timestamp) -> Option<Window> {
        match &self.when {
            When::Cron { cron, duration } => {
                let z = now.to_zoned(self.tz.clone());
                let next: Zoned = cron.find_next_occurrence(&z, false).ok()?;
                Some(Window {
                    start: next.timestamp(),
                    stop: next.timestamp().checked_add(*duration).ok()?,
                })
            }
            When::Weekly { .. } => self
                .weekly_windows(now, 0, 8)
                .into_iter()
                .find(|w| w.start > now),
        }
    }

    /// Weekly windows opening on local dates `today + from ..= today + to`, in order.
    fn weekly_windows(&self, now: Timestamp, from: i64, to: i64) -> Vec<Window> {
        let When::Weekly { days, start, stop } = &self.when else {
            return Vec::new();
        };
        let today = now.to_zoned(self.tz.clone()).date();
        let mut out = Vec::new();
        for k in from..=to {
            let Ok(date) = today.checked_add(jiff::Span::new().days(k)) else {
                continue;
            };
            if !days[day_index(date.weekday())] {
                continue;
            }
            let stop_date = if stop > start {
                date
            } else {
                match date.tomorrow() {
                    Ok(d) => d,
                    Err(_) => continue,
                }
            };
            if let (Some(a), Some(b)) = (
                local(date, *start, &self.tz),
                local(stop_date, *stop, &self.tz),
            ) && a < b
            {
                out.push(Window { start: a, stop: b });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn weekly(days: &[&str], start: &str, stop: &str, tz: &str) -> Schedule {
        ScheduleConfig {
            name: "w".into(),
            days: Some(days.iter().map(|d| (*d).to_owned()).collect()),
            start: Some(start.into()),
            stop: Some(stop.into()),
            timezone: Some(tz.into()),
            enabled: true,
            ..ScheduleConfig::default()
        }
        .validate(None)
        .unwrap()
    }

    fn cron(expr: &str, dur: &str, tz: &str) -> Schedule {
        ScheduleConfig {
            name: "c".into(),
            cron: Some(expr.into()),
            duration: Some(dur.into()),
            timezone: Some(tz.into()),
            enabled: true,
            ..ScheduleConfig::default()
        }
        .validate(None)
        .unwrap()
    }

    #[test]
    fn weekday_window_in_utc() {
        let s = weekly(
            &["mon", "tue", "wed", "thu", "fri"],
            "08:00",
            "18:00",
            "UTC",
        );
        // Thursday 2026-11-26.
        let w = s.window_at(ts("2026-11-26T09:00:00Z")).unwrap();
        assert_eq!(w.start, ts("2026-11-26T08:00:00Z"));
        assert_eq!(w.stop, ts("2026-11-26T18:00:00Z"));
        assert_eq!(
            s.window_at(ts("2026-11-26T18:00:00Z")),
            None,
            "stop is exclusive"
        );
        assert!(
            s.window_at(ts("2026-11-26T08:00:00Z")).is_some(),
            "start is inclusive"
        );
        // Friday evening: the next window is Monday's.
        let n = s.next_window(ts("2026-11-27T19:00:00Z")).unwrap();
        assert_eq!(n.start, ts("2026-11-30T08:00:00Z"));
        assert_eq!(s.window_at(ts("2026-11-28T09:00:00Z")), None, "Saturday");
    }

    #[test]
    fn window_over_midnight_belongs_to_the_day_it_opens() {
        let s = weekly(&["fri"], "22:00", "02:00", "UTC");
        let w = s.window_at(ts("2026-11-28T01:00:00Z")).unwrap(); // Saturday 01:00
        assert_eq!(w.start, ts("2026-11-27T22:00:00Z"));
        assert_eq!(w.stop, ts("2026-11-28T02:00:00Z"));
        assert_eq!(
            s.window_at(ts("2026-11-29T01:00:00Z")),
            None,
            "Sunday 01:00"
        );
    }

    #[test]
    fn local_windows_follow_the_wall_clock_across_dst() {
        let s = weekly(&["daily"], "01:00", "04:00", "Europe/Berlin");
        // 2026-03-29: clocks go 02:00 -> 03:00 CET->CEST; the window is 2 h of real time.
        let w = s.window_at(ts("2026-03-29T00:30:00Z")).unwrap();
        assert_eq!(w.start, ts("2026-03-29T00:00:00Z")); // 01:00 CET
        assert_eq!(w.stop, ts("2026-03-29T02:00:00Z")); // 04:00 CEST
        // 2026-10-25: 03:00 CEST -> 02:00 CET; the window is 4 h.
        let w = s.window_at(ts("2026-10-25T00:30:00Z")).unwrap();
        assert_eq!(w.start, ts("2026-10-24T23:00:00Z")); // 01:00 CEST
        assert_eq!(w.stop, ts("2026-10-25T03:00:00Z")); // 04:00 CET
        // A start inside the spring gap (02:30 does not exist) starts after the gap.
        let g = weekly(&["sun"], "02:30", "05:00", "Europe/Berlin");
        let n = g.next_window(ts("2026-03-28T12:00:00Z")).unwrap();
        assert_eq!(n.start, ts("2026-03-29T01:30:00Z")); // 03:30 CEST
        // A start inside the autumn fold (02:30 happens twice) is the first one.
        let n = g.next_window(ts("2026-10-24T12:00:00Z")).unwrap();
        assert_eq!(n.start, ts("2026-10-25T00:30:00Z")); // 02:30 CEST
    }

    #[test]
    fn cron_windows_and_seconds() {
        let s = cron("0 2 * * *", "1h 30m", "UTC");
        let w = s.window_at(ts("2026-11-26T03:00:00Z")).unwrap();
        assert_eq!(w.start, ts("2026-11-26T02:00:00Z"));
        assert_eq!(w.stop, ts("2026-11-26T03:30:00Z"));
        assert_eq!(s.window_at(ts("2026-11-26T03:30:00Z")), None);
        assert_eq!(
            s.next_window(ts("2026-11-26T02:00:00Z")).unwrap().start,
            ts("2026-11-27T02:00:00Z"),
            "next is strictly after now"
        );
        // Six fields: seconds first.
        let s = cron("*/10 * * * * *", "5s", "UTC");
        assert!(s.window_at(ts("2026-11-26T03:00:04Z")).is_some());
        assert!(s.window_at(ts("2026-11-26T03:00:05Z")).is_none());
        assert_eq!(
            s.next_window(ts("2026-11-26T03:00:04Z")).unwrap().start,
            ts("2026-11-26T03:00:10Z")
        );
    }

    #[test]
    fn cron_in_a_time_zone_across_dst() {
        // 08:00 Berlin is 07:00 UTC in winter and 06:00 UTC in summer.
        let s = cron("0 8 * * *", "1h", "Europe/Berlin");
        assert_eq!(
            s.next_window(ts("2026-03-28T12:00:00Z")).unwrap().start,
            ts("2026-03-29T06:00:00Z")
        );
        assert_eq!(
            s.next_window(ts("2026-03-27T12:00:00Z")).unwrap().start,
            ts("2026-03-28T07:00:00Z")
        );
        // New York: 02:30 does not exist on 2026-03-08; croner fires when the gap ends
        // (03:00 EDT) rather than skip the day.
        let s = cron("30 2 * * *", "10m", "America/New_York");
        let n = s.next_window(ts("2026-03-08T00:00:00Z")).unwrap().start;
        assert_eq!(n, ts("2026-03-08T07:00:00Z"));
        // Berlin, 2026-10-25: 02:30 happens twice; the schedule fires at the first only.
        let berlin = cron("30 2 * * *", "10m", "Europe/Berlin");
        let fold = berlin
            .next_window(ts("2026-10-24T12:00:00Z"))
            .unwrap()
            .start;
        assert_eq!(fold, ts("2026-10-25T00:30:00Z"));
        assert_eq!(
            berlin.next_window(fold).unwrap().start,
            ts("2026-10-26T01:30:00Z")
        );
        // The day after, back to 02:30 local (06:30 UTC in EDT).
        assert_eq!(s.next_window(n).unwrap().start, ts("2026-03-09T06:30:00Z"));
    }

    #[test]
    fn validation_names_the_field() {
        let base = ScheduleConfig {
            name: "x".into(),
            enabled: true,
            ..ScheduleConfig::default()
        };
        let e = |c: ScheduleConfig| c.validate(None).unwrap_err().field;
        assert_eq!(e(base.clone()), "cron");
        assert_eq!(
            e(ScheduleConfig {
                cron: Some("61 * * * *".into()),
                duration: Some("1h".into()),
                ..base.clone()
            }),
            "cron"
        );
        assert_eq!(
            e(ScheduleConfig {
                cron: Some("0 * * * *".into()),
                ..base.clone()
            }),
            "duration"
        );
        assert_eq!(
            e(ScheduleConfig {
                cron: Some("0 * * * *".into()),
                duration: Some("soon".into()),
                ..base.clone()
            }),
            "duration"
        );
        assert_eq!(
            e(ScheduleConfig {
                days: Some(vec!["mon".into(), "funday".into()]),
                start: Some("08:00".into()),
                stop: Some("09:00".into()),
                ..base.clone()
            }),
            "days"
        );
        assert_eq!(
            e(ScheduleConfig {
                days: Some(vec!["daily".into()]),
                start: Some("25:00".into()),
                stop: Some("09:00".into()),
                ..base.clone()
            }),
            "start"
        );
        assert_eq!(
            e(ScheduleConfig {
                days: Some(vec!["daily".into()]),
                start: Some("08:00".into()),
                stop: Some("09:00".into()),
                timezone: Some("Mars/Olympus".into()),
                ..base.clone()
            }),
            "timezone"
        );
        assert_eq!(
            e(ScheduleConfig {
                name: "no spaces".into(),
                ..base.clone()
            }),
            "name"
        );
        let ok = ScheduleConfig {
            days: Some(vec!["Monday".into(), "fri".into()]),
            start: Some("08:00".into()),
            stop: Some("09:00:30".into()),
            ..base
        };
        assert!(ok.validate(Some("Europe/Berlin")).is_ok());
        let dup = validate_all(&[ok.clone(), ok], None).unwrap_err();
        assert_eq!(dup.field, "name");
    }
}
