//! Time as users type it and as the appliance prints it.
//!
//! Inside wirecap a time is `u64` nanoseconds since the Unix epoch (UTC). Users give
//! times as such integers (optionally with the appliance's `ULL` suffix), as ISO-8601 /
//! RFC 3339, or in the appliance's split-name format `20150620_18:36:47.780.373.248`.

use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

pub const NS_PER_SEC: u64 = 1_000_000_000;

/// Parses a user-supplied time into ns since the epoch.
pub fn parse_time(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.strip_suffix("ULL").unwrap_or(t);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return digits
            .parse::<u64>()
            .map_err(|_| format!("time {s:?} is too large for ns since the epoch"));
    }
    if let Some(ns) = parse_appliance(t) {
        return Ok(ns);
    }
    // RFC 3339 needs an offset; accept a bare date-time as UTC, as users type it.
    let with_zone =
        if t.len() >= 19 && !t.ends_with('Z') && !t.ends_with('z') && !t[19..].contains(['+', '-'])
        {
            format!("{t}Z")
        } else {
            t.to_owned()
        };
    let with_zone = with_zone.replacen(' ', "T", 1);
    if let Ok(dt) = OffsetDateTime::parse(&with_zone, &Rfc3339) {
        return to_ns(dt).ok_or_else(|| format!("time {s:?} is before 1970"));
    }
    if let Ok(d) = Date::parse(t, time::macros::format_description!("[year]-[month]-[day]")) {
        return to_ns(d.midnight().assume_utc())
            .ok_or_else(|| format!("time {s:?} is before 1970"));
    }
    Err(format!(
        "cannot read time {s:?}: give ns since the epoch (1434793007780373366), \
         ISO-8601 (2015-06-20T18:36:47.78Z) or 20150620_18:36:47.780.373.248"
    ))
}

fn to_ns(dt: OffsetDateTime) -> Option<u64> {
    u64::try_from(dt.unix_timestamp_nanos()).ok()
}

/// `YYYYMMDD_HH:MM:SS[.mmm[.uuu[.nnn]]]`, UTC.
fn parse_appliance(t: &str) -> Option<u64> {
    let b = t.as_bytes();
    if b.len() < 17 || b[8] != b'_' || b[11] != b':' || b[14] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let s = t.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let date = Date::from_calendar_date(
        num(0..4)? as i32,
        Month::try_from(num(4..6)? as u8).ok()?,
        num(6..8)? as u8,
    )
    .ok()?;
    let time = Time::from_hms(num(9..11)? as u8, num(12..14)? as u8, num(15..17)? as u8).ok()?;
    let mut frac: u64 = 0;
    let mut groups = 0;
    let mut rest = &t[17..];
    while let Some(r) = rest.strip_prefix('.') {
        let g = r.get(0..3)?;
        if !g.bytes().all(|c| c.is_ascii_digit()) || groups == 3 {
            return None;
        }
        frac = frac * 1000 + g.parse::<u64>().ok()?;
        groups += 1;
        rest = &r[3..];
    }
    if !rest.is_empty() {
        return None;
    }
    for _ in groups..3 {
        frac *= 1000;
    }
    let secs = to_ns(PrimitiveDateTime::new(date, time).assume_utc())?;
    Some(secs + frac)
}

fn utc(ns: u64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(ns as i128)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .to_offset(UtcOffset::UTC)
}

/// The appliance's split name: `20150620_18:36:47.780.373.248` (UTC).
pub fn split_name(ns: u64) -> String {
    let t = utc(ns);
    let f = ns % NS_PER_SEC;
    format!(
        "{:04}{:02}{:02}_{:02}:{:02}:{:02}.{:03}.{:03}.{:03}",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        f / 1_000_000,
        f / 1000 % 1000,
        f % 1000
    )
}

/// The appliance's list date: `Sat Jun 20 20:28:56 2015` (UTC).
pub fn ctime(ns: u64) -> String {
    let t = utc(ns);
    let wd = &format!("{:?}", t.weekday())[..3];
    let mon = &format!("{:?}", t.month())[..3];
    // C's ctime(3): the day is padded with a space ("Jun  5"), as the appliance prints it.
    format!(
        "{wd} {mon} {:>2} {:02}:{:02}:{:02} {}",
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.year()
    )
}

/// RFC 3339 with nanoseconds, for JSON and the CLI.
pub fn rfc3339(ns: u64) -> String {
    utc(ns).format(&Rfc3339).unwrap_or_else(|_| ns.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_accepted_form() {
        assert_eq!(
            parse_time("1434793007780373366").unwrap(),
            1434793007780373366
        );
        assert_eq!(
            parse_time("1434793007780373366ULL").unwrap(),
            1434793007780373366
        );
        assert_eq!(
            parse_time("20150620_09:36:47.780.373.248").unwrap(),
            1434793007780373248
        );
        assert_eq!(
            parse_time("20150620_09:36:47").unwrap(),
            1434793007000000000
        );
        assert_eq!(
            parse_time("20150620_09:36:47.780").unwrap(),
            1434793007780000000
        );
        assert_eq!(
            parse_time("2015-06-20T09:36:47.780373366Z").unwrap(),
            1434793007780373366
        );
        assert_eq!(
            parse_time("2015-06-20T09:36:47").unwrap(),
            1434793007000000000
        );
        assert_eq!(
            parse_time("2015-06-20 11:36:47+02:00").unwrap(),
            1434793007000000000
        );
        assert_eq!(parse_time("2015-06-20").unwrap(), 1434758400000000000);
        for bad in [
            "",
            "yesterday",
            "2015-13-01T00:00:00Z",
            "20150620_25:00:00",
            "1.5",
            "-3",
        ] {
            assert!(parse_time(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn formats_like_the_manual() {
        assert_eq!(
            split_name(1434793007780373248),
            "20150620_09:36:47.780.373.248"
        );
        assert_eq!(ctime(1434832136000000000), "Sat Jun 20 20:28:56 2015");
        assert_eq!(ctime(1433462400000000000), "Fri Jun  5 00:00:00 2015");
        assert_eq!(
            rfc3339(1434793007780373366),
            "2015-06-20T09:36:47.780373366Z"
        );
    }

    #[test]
    fn split_names_round_trip() {
        for ns in [
            0,
            1,
            999_999_999,
            1434793007780373366,
            4_294_967_295_999_999_999,
        ] {
            assert_eq!(parse_time(&split_name(ns)).unwrap(), ns);
        }
    }
}
