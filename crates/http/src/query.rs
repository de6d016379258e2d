//! Query strings, read strictly: bounded size and count, no duplicate keys, valid UTF-8
//! after percent-decoding, no control characters. Empty pairs (`a=1&&b=2&`, as the
//! manual's own links end in `&`) are allowed. Unknown keys are ignored, as the appliance
//! does, so that scripts which add their own parameters keep working.

use axum::http::StatusCode;
use wirecap_appliance::short;

use crate::error::ApiError;

/// Longest query string accepted, in bytes (a stream name is at most 114 bytes; filters
/// are the long ones).
pub const MAX_QUERY_LEN: usize = 8192;
/// Most `key=value` pairs accepted.
pub const MAX_PAIRS: usize = 32;

/// A parsed query string.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

fn decode(raw: &str) -> Result<String, ApiError> {
    let plus = raw.replace('+', " ");
    let bytes: Vec<u8> = percent_decode(plus.as_bytes())?;
    let s = String::from_utf8(bytes)
        .map_err(|_| ApiError::bad_request("the query string is not valid UTF-8"))?;
    if s.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "the query string holds control characters",
        ));
    }
    Ok(s)
}

fn percent_decode(b: &[u8]) -> Result<Vec<u8>, ApiError> {
    let hex = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            ) else {
                return Err(ApiError::bad_request(
                    "malformed percent-escape in the query string",
                ));
            };
            out.push(h << 4 | l);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

impl Query {
    /// Parses the raw query string (without `?`).
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let Some(raw) = raw else {
            return Ok(Self::default());
        };
        if raw.len() > MAX_QUERY_LEN {
            return Err(too_long());
        }
        let mut pairs: Vec<(String, String)> = Vec::new();
        for part in raw.split('&') {
            if part.is_empty() {
                continue;
            }
            if pairs.len() == MAX_PAIRS {
                return Err(ApiError::bad_request(format!(
                    "more than {MAX_PAIRS} parameters in the query string"
                )));
            }
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            let (k, v) = (decode(k)?, decode(v)?);
            if pairs.iter().any(|(pk, _)| *pk == k) {
                return Err(ApiError::bad_request(format!(
                    "parameter {:?} is given twice",
                    short(&k)
                )));
            }
            pairs.push((k, v));
        }
        Ok(Self { pairs })
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key`, or a 400 naming it.
    pub fn require(&self, key: &str) -> Result<&str, ApiError> {
        match self.get(key) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(ApiError::bad_request(format!("missing parameter {key}"))),
        }
    }
}

/// The answer to a query string longer than [`MAX_QUERY_LEN`].
pub fn too_long() -> ApiError {
    ApiError::new(
        StatusCode::URI_TOO_LONG,
        format!("the query string is longer than {MAX_QUERY_LEN} bytes"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_manuals_urls() {
        let q = Query::parse(Some(
            "StreamName=manual_capture_cli_20150620_1836&Start=1434793018780588947ULL&Stop=1434793019780499570ULL",
        ))
        .unwrap();
        assert_eq!(
            q.get("StreamName"),
            Some("manual_capture_cli_20150620_1836")
        );
        assert_eq!(q.get("Stop"), Some("1434793019780499570ULL"));
        let q = Query::parse(Some("StreamName=cli_capture_20150620_2028&")).unwrap();
        assert_eq!(
            q.require("StreamName").unwrap(),
            "cli_capture_20150620_2028"
        );
        assert!(q.require("StreamView").is_err());
    }

    #[test]
    fn decodes_and_refuses_cleanly() {
        let q = Query::parse(Some("a=%2e%2e&b=x+y&c")).unwrap();
        assert_eq!(q.get("a"), Some(".."));
        assert_eq!(q.get("b"), Some("x y"));
        assert_eq!(q.get("c"), Some(""));
        for bad in ["a=%00", "a=%zz", "a=%4", "a=%ff%fe", "a=1&a=2", "a=%0a"] {
            assert!(Query::parse(Some(bad)).is_err(), "{bad:?} accepted");
        }
        let many: Vec<String> = (0..40).map(|i| format!("k{i}=1")).collect();
        assert!(Query::parse(Some(&many.join("&"))).is_err());
        assert!(Query::parse(Some(&"x".repeat(MAX_QUERY_LEN + 1))).is_err());
    }
}
