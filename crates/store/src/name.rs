//! Stream names. A name becomes a directory, so it is checked before it touches the file
//! system: no separators, no `..`, no control bytes, no leading dot, bounded length.

use crate::error::{Error, Result};
use std::time::SystemTime;

/// Longest base name accepted (the stored name adds 14 bytes of date suffix).
pub const MAX_NAME_LEN: usize = 100;

/// Checks a user-supplied stream name (before the date suffix is added).
pub fn validate_base_name(name: &str) -> Result<()> {
    let bad = |why| {
        Err(Error::InvalidName {
            name: name.chars().take(120).collect(),
            why,
        })
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("it is longer than 100 bytes");
    }
    if name.starts_with('.') || name.starts_with('-') {
        return bad("it may not start with '.' or '-'");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return bad("only letters, digits, '_', '-' and '.' are allowed");
    }
    if name.contains("..") {
        return bad("it may not contain '..'");
    }
    Ok(())
}

/// Checks a full stored name as it arrives from a URL or the command line.
pub fn validate_stored_name(name: &str) -> Result<()> {
    if name.len() > MAX_NAME_LEN + 14 {
        return Err(Error::InvalidName {
            name: name.chars().take(120).collect(),
            why: "it is longer than any stored stream name",
        });
    }
    validate_base_name(name)
}

/// The stored name: `base` plus `_YYYYMMDD_HHMM` of `created` in UTC, as the appliance does.
pub fn stored_name(base: &str, created: SystemTime) -> String {
    let t = jiff::Timestamp::try_from(created)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_zoned(jiff::tz::TimeZone::UTC);
    format!(
        "{base}_{:04}{:02}{:02}_{:02}{:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// Turns a file name into an acceptable base name (for `import` without `--name`).
pub fn sanitize(raw: &str) -> String {
    let mut s: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    s = s.trim_start_matches(['_', '-']).to_owned();
    s.truncate(MAX_NAME_LEN);
    if s.is_empty() { "import".to_owned() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_refused() {
        for n in [
            "",
            "..",
            "../../etc",
            "a/b",
            "a\\b",
            ".hidden",
            "%2e%2e",
            "a\0b",
            "-rf",
            "a..b",
            "ünïcode",
            "sp ace",
        ] {
            assert!(validate_base_name(n).is_err(), "{n:?} accepted");
        }
        assert!(validate_base_name(&"x".repeat(10_000)).is_err());
        for n in [
            "cli_capture",
            "a",
            "x-1.2_3",
            "manual_capture_cli_20150620_1836",
        ] {
            assert!(validate_base_name(n).is_ok(), "{n:?} refused");
        }
    }

    #[test]
    fn suffix_is_utc_minutes() {
        // 2015-06-20 20:28:55 +02:00.
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_434_824_935);
        assert_eq!(stored_name("cli", t), "cli_20150620_1828");
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_nanos(1);
        assert_eq!(stored_name("cli", t), "cli_19700101_0000");
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(951_868_799);
        assert_eq!(stored_name("x", t), "x_20000229_2359");
    }

    #[test]
    fn sanitize_makes_valid_names() {
        for raw in ["foo.pcap", "../x", "", "-a b", "ßß"] {
            let s = sanitize(raw);
            assert!(validate_base_name(&s).is_ok(), "{raw:?} -> {s:?}");
        }
    }
}
