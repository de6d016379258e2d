//! Calendar arithmetic for `frame.time` (UTC, proleptic Gregorian), without a clock.

/// A UTC calendar date. The caller supplies "today" (the crate never reads a clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    year: i32,
    month: u8,
    day: u8,
}

impl Date {
    /// A valid date, or `None` (month 1–12, day within the month, year 1970–9999).
    pub fn new(year: i32, month: u8, day: u8) -> Option<Self> {
        if !(1970..=9999).contains(&year) || !(1..=12).contains(&month) {
            return None;
        }
        if day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(Self { year, month, day })
    }

    /// The date `days` days after 1970-01-01 (negative days clamp to 1970-01-01).
    pub fn from_days_since_epoch(days: i64) -> Self {
        let (year, month, day) = civil_from_days(days.max(0));
        Self { year, month, day }
    }

    /// Days since 1970-01-01.
    pub fn days_since_epoch(&self) -> i64 {
        days_from_civil(self.year, self.month, self.day)
    }

    /// Year.
    pub fn year(&self) -> i32 {
        self.year
    }
    /// Month, 1–12.
    pub fn month(&self) -> u8 {
        self.month
    }
    /// Day of the month.
    pub fn day(&self) -> u8 {
        self.day
    }
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i32, m: u8) -> u8 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

// Howard Hinnant's days_from_civil / civil_from_days.
fn days_from_civil(y: i32, m: u8, d: u8) -> i64 {
    let y = i64::from(y) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i32, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    ((y + i64::from(m <= 2)) as i32, m, d)
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
