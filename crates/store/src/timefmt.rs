//! Time as users type it and as the appliance prints it.
//!
//! Inside wirecap a time is `u64` nanoseconds since the Unix epoch (UTC). Users give
//! times as such integers (optionally with the appliance's `ULL` suffix), as ISO-8601 /
//! RFC 3339, or in the appliance's split-name format `20150620_18:36:47.780.373.248`.

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::{Offset, TimeZone};

pub const NS_PER_SEC: u64 = 1_000_000_000;

/// Parses a user-supplied time into ns since the epoch.
pub fn parse_time(s: &str) -> Result<u64, String> {
    let t = s.trim();
    // The appliance writes `ULL`; users type it in any case.
    let digits = match t.len().checked_sub(3) {
        Some(i) if t.is_char_boundary(i) && t[i..].eq_ignore_ascii_case("ull") => &t[..i],
        _ => t,
    };
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
    if let Some(ns) = parse_rfc3339(&with_zone) {
        return to_ns(ns).ok_or_else(|| format!("time {s:?} is before 1970"));
    }
    if let Some(d) = parse_ymd(t) {
        return to_ns(days_ns(d)).ok_or_else(|| format!("time {s:?} is before 1970"));
    }
    Err(format!(
        "cannot read time {s:?}: give ns since the epoch (1434793007780373366), \
         ISO-8601 (2015-06-20T18:36:47.78Z) or 20150620_18:36:47.780.373.248"
    ))
}

fn to_ns(ns: i128) -> Option<u64> {
    u64::try_from(ns).ok()
}

/// Nanoseconds since the epoch of midnight UTC starting `d`.
fn days_ns(d: Date) -> i128 {
    datetime_ns(d.to_datetime(jiff::civil::Time::midnight()), Offset::UTC)
}

/// Nanoseconds since the epoch of civil time `dt` at `offset`. Plain arithmetic, not a
/// `Timestamp`: the whole civil range (to 9999-12-31) has an answer, as it had before.
fn datetime_ns(dt: DateTime, offset: Offset) -> i128 {
    let epoch = DateTime::constant(1970, 1, 1, 0, 0, 0, 0);
    dt.duration_since(epoch).as_nanos() - i128::from(offset.seconds()) * 1_000_000_000
}

/// `digits` as a number when it is exactly that many ASCII digits.
fn digits(s: &str, n: usize) -> Option<i32> {
    (s.len() == n && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// `YYYY-MM-DD`, a valid calendar date.
fn parse_ymd(s: &str) -> Option<Date> {
    if !s.is_ascii() {
        return None; // and so every slice below falls on a character boundary
    }
    let (y, m, d) = (s.get(0..4)?, s.get(5..7)?, s.get(8..)?);
    if s.len() != 10 || &s[4..5] != "-" || &s[7..8] != "-" {
        return None;
    }
    Date::new(
        i16::try_from(digits(y, 4)?).ok()?,
        i8::try_from(digits(m, 2)?).ok()?,
        i8::try_from(digits(d, 2)?).ok()?,
    )
    .ok()
}

/// RFC 3339's `date-time` (section 5.6), strictly: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`,
/// `T` and `Z` in either case. Digits beyond nanoseconds are cut, and a leap second
/// (`:60`) stands for the last nanosecond before it where one can fall (23:59:60 UTC on
/// the last day of a month), as the `time` crate did.
fn parse_rfc3339(s: &str) -> Option<i128> {
    if !s.is_ascii() {
        return None; // and so every slice below falls on a character boundary
    }
    let d = parse_ymd(s.get(..10)?)?;
    let rest = s.get(10..)?;
    let rest = rest.strip_prefix(['T', 't'])?;
    let (hms, rest) = (rest.get(..8)?, rest.get(8..)?);
    if &hms[2..3] != ":" || &hms[5..6] != ":" {
        return None;
    }
    let (h, mi, sec) = (
        digits(&hms[0..2], 2)?,
        digits(&hms[3..5], 2)?,
        digits(&hms[6..8], 2)?,
    );
    let (frac, zone) = match rest.strip_prefix('.') {
        Some(r) => {
            let n = r.bytes().take_while(u8::is_ascii_digit).count();
            if n == 0 {
                return None;
            }
            let kept = &r[..n.min(9)];
            let ns = kept.parse::<i32>().ok()? * 10i32.pow(9 - kept.len() as u32);
            (ns, &r[n..])
        }
        None => (0, rest),
    };
    let offset = match zone {
        "Z" | "z" => Offset::UTC,
        _ => {
            let sign = match zone.get(..1)? {
                "+" => 1,
                "-" => -1,
                _ => return None,
            };
            if zone.len() != 6 || &zone[3..4] != ":" {
                return None;
            }
            let (oh, om) = (digits(&zone[1..3], 2)?, digits(&zone[4..6], 2)?);
            if oh > 23 || om > 59 {
                return None;
            }
            Offset::from_seconds(sign * (oh * 3600 + om * 60)).ok()?
        }
    };
    let leap = sec == 60;
    let time = jiff::civil::Time::new(
        i8::try_from(h).ok()?,
        i8::try_from(mi).ok()?,
        if leap { 59 } else { i8::try_from(sec).ok()? },
        if leap { 999_999_999 } else { frac },
    )
    .ok()?;
    let ns = datetime_ns(d.to_datetime(time), offset);
    if leap {
        let utc = offset
            .to_timestamp(d.to_datetime(time))
            .ok()?
            .to_zoned(TimeZone::UTC);
        let last_day = utc.date().last_of_month() == utc.date();
        if !(last_day && utc.hour() == 23 && utc.minute() == 59) {
            return None;
        }
    }
    Some(ns)
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
    let date = Date::new(
        i16::try_from(num(0..4)?).ok()?,
        i8::try_from(num(4..6)?).ok()?,
        i8::try_from(num(6..8)?).ok()?,
    )
    .ok()?;
    let time = jiff::civil::Time::new(
        i8::try_from(num(9..11)?).ok()?,
        i8::try_from(num(12..14)?).ok()?,
        i8::try_from(num(15..17)?).ok()?,
        0,
    )
    .ok()?;
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
    let secs = to_ns(datetime_ns(date.to_datetime(time), Offset::UTC))?;
    Some(secs + frac)
}

fn utc(ns: u64) -> jiff::Zoned {
    Timestamp::from_nanosecond(i128::from(ns))
        .unwrap_or(Timestamp::UNIX_EPOCH)
        .to_zoned(TimeZone::UTC)
}

/// The appliance's split name: `20150620_18:36:47.780.373.248` (UTC).
pub fn split_name(ns: u64) -> String {
    let t = utc(ns);
    let f = ns % NS_PER_SEC;
    format!(
        "{:04}{:02}{:02}_{:02}:{:02}:{:02}.{:03}.{:03}.{:03}",
        t.year(),
        t.month(),
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
    let wd = t.strftime("%a");
    let mon = t.strftime("%b");
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
    // Timestamp's Display is RFC 3339 in UTC with the fraction's trailing zeros cut.
    utc(ns).timestamp().to_string()
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
            parse_time("1434793007780373366ull").unwrap(),
            1434793007780373366
        );
        assert_eq!(
            parse_time("1434793007780373366Ull").unwrap(),
            1434793007780373366
        );
        assert!(parse_time("ull").is_err());
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
    fn every_printed_time_reads_back() {
        // A spread of instants over the whole u64 range, stepping by an odd prime.
        let mut ns = 7u64;
        for _ in 0..20_000 {
            assert_eq!(parse_time(&split_name(ns)), Ok(ns), "{ns}");
            assert_eq!(parse_time(&rfc3339(ns)), Ok(ns), "{ns}");
            ns = ns.wrapping_add(922_337_203_685_477_589);
        }
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

    /// What the `time`-crate version printed, byte for byte: pinned before the switch to
    /// jiff so the switch is proven (split names, ctime, RFC 3339 with trimmed fractions).
    #[test]
    fn formats_are_pinned() {
        for (ns, split, c, rfc) in [
            (
                0,
                "19700101_00:00:00.000.000.000",
                "Thu Jan  1 00:00:00 1970",
                "1970-01-01T00:00:00Z",
            ),
            (
                1,
                "19700101_00:00:00.000.000.001",
                "Thu Jan  1 00:00:00 1970",
                "1970-01-01T00:00:00.000000001Z",
            ),
            (
                10,
                "19700101_00:00:00.000.000.010",
                "Thu Jan  1 00:00:00 1970",
                "1970-01-01T00:00:00.00000001Z",
            ),
            (
                100,
                "19700101_00:00:00.000.000.100",
                "Thu Jan  1 00:00:00 1970",
                "1970-01-01T00:00:00.0000001Z",
            ),
            (
                999,
                "19700101_00:00:00.000.000.999",
                "Thu Jan  1 00:00:00 1970",
                "1970-01-01T00:00:00.000000999Z",
            ),
            (
                1000,
                "19700101_00:00:00.000.001.000",
                "Thu Jan  1 00:00:00 1970",
                "1970-01-01T00:00:00.000001Z",
            ),
            (
                780000000,
                "19700101_00:00:00.780.000.000",
                "Thu Jan  1 00:00:00 1970",
                "1970-01-01T00:00:00.78Z",
            ),
            (
                780373248,
                "19700101_00:00:00.780.373.248",
                "Thu Jan  1 00:00:00 1970",
                "1970-01-01T00:00:00.780373248Z",
            ),
            (
                100000000,
                "19700101_00:00:00.100.000.000",
                "Thu Jan  1 00:00:00 1970",
                "1970-01-01T00:00:00.1Z",
            ),
            (
                999999999,
                "19700101_00:00:00.999.999.999",
                "Thu Jan  1 00:00:00 1970",
                "1970-01-01T00:00:00.999999999Z",
            ),
            (
                1434793007780373366,
                "20150620_09:36:47.780.373.366",
                "Sat Jun 20 09:36:47 2015",
                "2015-06-20T09:36:47.780373366Z",
            ),
            (
                1434793007000000000,
                "20150620_09:36:47.000.000.000",
                "Sat Jun 20 09:36:47 2015",
                "2015-06-20T09:36:47Z",
            ),
            (
                1434793007500000000,
                "20150620_09:36:47.500.000.000",
                "Sat Jun 20 09:36:47 2015",
                "2015-06-20T09:36:47.5Z",
            ),
            (
                1434793007000001000,
                "20150620_09:36:47.000.001.000",
                "Sat Jun 20 09:36:47 2015",
                "2015-06-20T09:36:47.000001Z",
            ),
            (
                951782400000000000,
                "20000229_00:00:00.000.000.000",
                "Tue Feb 29 00:00:00 2000",
                "2000-02-29T00:00:00Z",
            ),
            (
                4294967295999999999,
                "21060207_06:28:15.999.999.999",
                "Sun Feb  7 06:28:15 2106",
                "2106-02-07T06:28:15.999999999Z",
            ),
            (
                18446744073709551615,
                "25540721_23:34:33.709.551.615",
                "Sun Jul 21 23:34:33 2554",
                "2554-07-21T23:34:33.709551615Z",
            ),
        ] {
            assert_eq!(split_name(ns), split, "{ns}");
            assert_eq!(ctime(ns), c, "{ns}");
            assert_eq!(rfc3339(ns), rfc, "{ns}");
        }
    }

    /// What the `time`-crate version accepted and refused, pinned likewise: leap seconds
    /// at the end of a month, fractions beyond nanoseconds cut, offsets only as ±HH:MM.
    #[test]
    fn parsing_is_pinned() {
        let unreadable = |s: &str| {
            format!(
                "cannot read time {s:?}: give ns since the epoch (1434793007780373366), \
                 ISO-8601 (2015-06-20T18:36:47.78Z) or 20150620_18:36:47.780.373.248"
            )
        };
        let early = |s: &str| format!("time {s:?} is before 1970");
        assert_eq!(
            parse_time("2015-06-20T09:36:47.78Z"),
            Ok(1434793007780000000)
        );
        assert_eq!(parse_time("2015-06-20t09:36:47z"), Ok(1434793007000000000));
        assert_eq!(
            parse_time("2015-06-20T09:36Z"),
            Err(unreadable("2015-06-20T09:36Z"))
        );
        assert_eq!(
            parse_time("2015-06-20T09:36:47+0200"),
            Err(unreadable("2015-06-20T09:36:47+0200"))
        );
        assert_eq!(
            parse_time("2015-06-20T09:36:47+02"),
            Err(unreadable("2015-06-20T09:36:47+02"))
        );
        assert_eq!(
            parse_time("2015-06-20T09:36:47.1234567891Z"),
            Ok(1434793007123456789)
        );
        assert_eq!(
            parse_time("2015-06-20T09:36:60Z"),
            Err(unreadable("2015-06-20T09:36:60Z"))
        );
        assert_eq!(parse_time("2016-12-31T23:59:60Z"), Ok(1483228799999999999));
        assert_eq!(
            parse_time("2015-06-20T24:00:00Z"),
            Err(unreadable("2015-06-20T24:00:00Z"))
        );
        assert_eq!(parse_time("2015-06-20 09:36:47"), Ok(1434793007000000000));
        assert_eq!(
            parse_time("2015-06-20T09:36:47-00:00"),
            Ok(1434793007000000000)
        );
        assert_eq!(
            parse_time("1969-12-31T23:59:59Z"),
            Err(early("1969-12-31T23:59:59Z"))
        );
        assert_eq!(parse_time("2015-6-20"), Err(unreadable("2015-6-20")));
        assert_eq!(parse_time("20150620"), Ok(20150620));
        assert_eq!(
            parse_time("2015-06-20T09:36:47.Z"),
            Err(unreadable("2015-06-20T09:36:47.Z"))
        );
        assert_eq!(
            parse_time("2015-06-20T09:36:47,5Z"),
            Err(unreadable("2015-06-20T09:36:47,5Z"))
        );
        assert_eq!(
            parse_time("2015-06-20T09:36:47.5+14:00"),
            Ok(1434742607500000000)
        );
        assert_eq!(
            parse_time("2015-06-20T09:36:47.5-23:59"),
            Ok(1434879347500000000)
        );
        assert_eq!(
            parse_time("+2015-06-20T09:36:47Z"),
            Err(unreadable("+2015-06-20T09:36:47Z"))
        );
        assert_eq!(
            parse_time("2015-06-20T09:36:47Z[UTC]"),
            Err(unreadable("2015-06-20T09:36:47Z[UTC]"))
        );
        assert_eq!(
            parse_time("2015-06-20T09:36:47ZZ"),
            Err(unreadable("2015-06-20T09:36:47ZZ"))
        );
        assert_eq!(parse_time("2015-06-20 "), Ok(1434758400000000000));
        assert_eq!(parse_time("2015-06-20T"), Err(unreadable("2015-06-20T")));
        assert_eq!(
            parse_time("2554-07-21T23:34:33.709551615Z"),
            Ok(18446744073709551615)
        );
        assert_eq!(
            parse_time("2554-07-21T23:34:33.709551616Z"),
            Err(early("2554-07-21T23:34:33.709551616Z"))
        );
        assert_eq!(
            parse_time("9999-12-31T23:59:59Z"),
            Err(early("9999-12-31T23:59:59Z"))
        );
        assert_eq!(parse_time("2015-02-29"), Err(unreadable("2015-02-29")));
        assert_eq!(parse_time("2016-02-29"), Ok(1456704000000000000));
        assert_eq!(parse_time("0000-01-01"), Err(early("0000-01-01")));
        assert_eq!(
            parse_time("20150620_09:36:47.78"),
            Err(unreadable("20150620_09:36:47.78"))
        );
        assert_eq!(
            parse_time("20150620_09:36:47.780.373"),
            Ok(1434793007780373000)
        );
        assert_eq!(
            parse_time("20150620_24:00:00"),
            Err(unreadable("20150620_24:00:00"))
        );
        assert_eq!(
            parse_time("20150620_23:59:60"),
            Err(unreadable("20150620_23:59:60"))
        );
        assert_eq!(
            parse_time("20150229_00:00:00"),
            Err(unreadable("20150229_00:00:00"))
        );
        assert_eq!(
            parse_time(" 2015-06-20T09:36:47Z "),
            Ok(1434793007000000000)
        );
        assert_eq!(
            parse_time("2015-06-20T09:36:47.780373366Z"),
            Ok(1434793007780373366)
        );
    }
}
