//! Calendar arithmetic for `frame.time` (UTC, proleptic Gregorian), without a clock.

/// A UTC calendar date. The caller supplies "today" (the crate never reads a clock).
/// The calendar itself is jiff's (the workspace's one time library).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(jiff::civil::Date);

const EPOCH: jiff::civil::Date = jiff::civil::Date::constant(1970, 1, 1);
const SECS_PER_DAY: i64 = 86_400;

impl Date {
    /// A valid date, or `None` (month 1–12, day within the month, year 1970–9999).
    pub fn new(year: i32, month: u8, day: u8) -> Option<Self> {
        if !(1970..=9999).contains(&year) {
            return None;
        }
        jiff::civil::Date::new(
            i16::try_from(year).ok()?,
            i8::try_from(month).ok()?,
            i8::try_from(day).ok()?,
        )
        .ok()
        .map(Self)
    }

    /// The date `days` days after 1970-01-01 (negative days clamp to 1970-01-01, days
    /// past 9999-12-31 to that day).
    pub fn from_days_since_epoch(days: i64) -> Self {
        let d =
            jiff::SignedDuration::from_secs(days.clamp(0, i64::MAX / SECS_PER_DAY) * SECS_PER_DAY);
        Self(EPOCH.checked_add(d).unwrap_or(jiff::civil::Date::MAX))
    }

    /// Days since 1970-01-01.
    pub fn days_since_epoch(&self) -> i64 {
        self.0.duration_since(EPOCH).as_secs() / SECS_PER_DAY
    }

    /// Year.
    pub fn year(&self) -> i32 {
        i32::from(self.0.year())
    }
    /// Month, 1–12.
    pub fn month(&self) -> u8 {
        self.0.month() as u8
    }
    /// Day of the month.
    pub fn day(&self) -> u8 {
        self.0.day() as u8
    }
}

const NS_PER_SEC: u64 = 1_000_000_000;

/// Parses one point in time of the appliance syntax into nanoseconds since the epoch:
///
/// * `YYYYMMDD_HH:MM:SS[.mmm[.uuu[.nnn]]]`, e.g. `20141225_08:00:00.100.200.300`
///   (100 ms + 200 µs + 300 ns);
/// * `HH:MM:SS[...]`: that time of day on `today`;
/// * `YYYYMMDD`: midnight starting that day.
///
/// A single fraction group is a decimal fraction (`08:00:00.5` is half a second,
/// `.123456789` is nanoseconds); several groups must have three digits each.
pub(crate) fn parse_point(text: &str, today: Date) -> Result<u64, String> {
    let (date, time) = match text.split_once('_') {
        Some((d, t)) => (Some(parse_date(d)?), Some(t)),
        None if text.contains(':') => (None, Some(text)),
        None => (Some(parse_date(text)?), None),
    };
    let date = date.unwrap_or(today);
    let mut ns = u64::try_from(date.days_since_epoch())
        .map_err(|_| "date before 1970".to_string())?
        * 86_400
        * NS_PER_SEC;
    if let Some(t) = time {
        ns += parse_time_of_day(t)?;
    }
    Ok(ns)
}

fn parse_date(d: &str) -> Result<Date, String> {
    if d.len() != 8 || !d.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{d}` is not a date: expected YYYYMMDD"));
    }
    let n = |r: std::ops::Range<usize>| d.get(r).and_then(|s| s.parse::<i32>().ok()).unwrap_or(0);
    Date::new(n(0..4), n(4..6) as u8, n(6..8) as u8)
        .ok_or_else(|| format!("`{d}` is not a valid date (1970-9999)"))
}

fn parse_time_of_day(t: &str) -> Result<u64, String> {
    let bad = || format!("`{t}` is not a time of day: expected HH:MM:SS[.mmm[.uuu[.nnn]]]");
    let mut parts = t.split('.');
    let hms = parts.next().ok_or_else(bad)?;
    let fields: Vec<&str> = hms.split(':').collect();
    let [h, m, s] = fields.as_slice() else {
        return Err(bad());
    };
    let num = |s: &str, max: u64| -> Result<u64, String> {
        if s.is_empty() || s.len() > 2 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let v: u64 = s.parse().map_err(|_| bad())?;
        if v > max { Err(bad()) } else { Ok(v) }
    };
    let secs = num(h, 23)? * 3600 + num(m, 59)? * 60 + num(s, 60)?;
    let groups: Vec<&str> = parts.collect();
    let digits = |g: &str| !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit());
    let frac = match groups.as_slice() {
        [] => 0,
        // One group is a decimal fraction: `.5` is half a second, `.100` 100 ms.
        [one] => {
            if one.len() > 9 || !digits(one) {
                return Err(bad());
            }
            let v: u64 = one.parse().map_err(|_| bad())?;
            v * 10u64.pow(9 - one.len() as u32)
        }
        // Several groups are milliseconds, microseconds, nanoseconds, 3 digits each.
        gs if gs.len() <= 3 => {
            let mut ns = 0;
            for (i, g) in gs.iter().enumerate() {
                if g.len() != 3 || !digits(g) {
                    return Err(bad());
                }
                let v: u64 = g.parse().map_err(|_| bad())?;
                ns += v * 10u64.pow(6 - 3 * i as u32);
            }
            ns
        }
        _ => return Err(bad()),
    };
    Ok(secs * NS_PER_SEC + frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_days_round_trip() {
        for days in [0i64, 1, 59, 365, 10_957, 16_429, 19_000, 24_855, 2_932_896] {
            let d = Date::from_days_since_epoch(days);
            assert_eq!(d.days_since_epoch(), days, "{d:?}");
        }
        assert_eq!(
            Date::new(2014, 12, 25).map(|d| d.days_since_epoch()),
            Some(16_429)
        );
        assert_eq!(Date::new(2000, 2, 30), None);
        assert!(Date::new(2000, 2, 29).is_some());
        assert_eq!(Date::new(1900, 2, 29), None);
        assert_eq!(Date::new(1969, 12, 31), None);
        assert_eq!(Date::new(2000, 13, 1), None);
        assert_eq!(Date::new(2000, 4, 31), None);
        assert_eq!(
            Date::from_days_since_epoch(-5),
            Date::new(1970, 1, 1).unwrap()
        );
        assert_eq!(
            Date::from_days_since_epoch(2_932_896),
            Date::new(9999, 12, 31).unwrap()
        );
        assert_eq!(
            Date::from_days_since_epoch(i64::MAX),
            Date::new(9999, 12, 31).unwrap()
        );
        let d = Date::from_days_since_epoch(11_016); // 2000-02-29
        assert_eq!((d.year(), d.month(), d.day()), (2000, 2, 29));
    }

    /// Every day from 1970 to 2400 against a count of month lengths by hand.
    #[test]
    fn calendar_matches_month_lengths() {
        let mut days = 0i64;
        for y in 1970..2400 {
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            for m in 1..=12u8 {
                let len = match m {
                    2 if leap => 29,
                    2 => 28,
                    4 | 6 | 9 | 11 => 30,
                    _ => 31,
                };
                for d in 1..=len {
                    let date = Date::new(y, m, d).expect("valid");
                    assert_eq!(date.days_since_epoch(), days);
                    assert_eq!(Date::from_days_since_epoch(days), date);
                    days += 1;
                }
                assert_eq!(Date::new(y, m, len + 1), None);
            }
        }
    }

    #[test]
    fn points() {
        let today = Date::new(2020, 1, 2).expect("valid");
        let base = 16_429 * 86_400 * NS_PER_SEC;
        assert_eq!(
            parse_point("20141225_08:00:00.100.200.300", today),
            Ok(base + 8 * 3600 * NS_PER_SEC + 100_200_300)
        );
        assert_eq!(
            parse_point("20141225_08:00:00.5", today),
            Ok(base + 8 * 3600 * NS_PER_SEC + 500_000_000)
        );
        assert_eq!(
            parse_point("20141225_08:00:00.100", today),
            Ok(base + 8 * 3600 * NS_PER_SEC + 100_000_000)
        );
        assert_eq!(parse_point("20141225", today), Ok(base));
        let t = today.days_since_epoch() as u64 * 86_400 * NS_PER_SEC;
        assert_eq!(
            parse_point("07:00:00", today),
            Ok(t + 7 * 3600 * NS_PER_SEC)
        );
        assert!(parse_point("25:00:00", today).is_err());
        assert!(parse_point("20141325_08:00:00", today).is_err());
        assert!(parse_point("08:00", today).is_err());
        assert!(parse_point("08:00:00.1.2.3.4", today).is_err());
        assert!(parse_point("08:00:00.1.200", today).is_err());
        assert!(parse_point("08:00:00.1234567890", today).is_err());
    }
}
