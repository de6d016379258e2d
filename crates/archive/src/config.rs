//! `[archive]` in `wirecap.toml` and `wirecap serve --archive URL [--probe NAME]
//! [--read-only]`: where the archive is, and how hard writeback may push.
//!
//! ```toml
//! [archive]
//! url = "s3://bucket/prefix"   # also gs://BUCKET/PREFIX, az://CONTAINER/PREFIX, file:///PATH
//! endpoint = "http://127.0.0.1:9000"   # an S3-compatible server (MinIO, Ceph RGW, R2, ...)
//! region = "eu-central-1"
//! probe = "probe-fra-1"        # this probe's name in the archive (default: the hostname)
//! max_mbps = 400               # writeback bandwidth cap, megabits per second (default: none)
//! concurrency = 4              # segments uploaded at once (default 4)
//! cache = "256MB"              # read cache for archived chunks (default 256 MB)
//! compression = "zstd"         # each chunk compressed on its own, still seekable; or "none"
//! read_only = false            # serve the archive without capturing or writing back
//! ```
//!
//! Credentials are never part of the configuration: they come the standard ways of each
//! store (for S3: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, web
//! identity, ECS or EC2 instance metadata; `AWS_REGION`, `AWS_ENDPOINT_URL`,
//! `AWS_ALLOW_HTTP=true` for a plain-HTTP endpoint). A URL carrying a user or password is
//! refused, without repeating it.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::Error;

/// `[archive]` as written in the file; every key optional.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ArchiveConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_mbps: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
}

pub const DEFAULT_CONCURRENCY: usize = 4;
pub const DEFAULT_CACHE_BYTES: u64 = 256_000_000;

/// Which kind of store, and where in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    S3 {
        bucket: String,
        prefix: String,
    },
    Gcs {
        bucket: String,
        prefix: String,
    },
    Azure {
        container: String,
        prefix: String,
    },
    /// A mounted volume (EBS, NFS, a big local disk).
    File {
        path: PathBuf,
    },
}

impl Target {
    /// Parses `s3://BUCKET[/PREFIX]`, `gs://…`, `az://CONTAINER[/PREFIX]`, `file:///PATH`.
    pub fn parse(url: &str) -> Result<Self, Error> {
        let bad = |why: &str| Error::Config(format!("archive url: {why}"));
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("expected s3://BUCKET/PREFIX, gs://BUCKET/PREFIX, az://CONTAINER/PREFIX or file:///PATH"))?;
        if scheme == "file" {
            if !rest.starts_with('/') {
                return Err(bad(
                    "file:// takes an absolute path, e.g. file:///mnt/archive",
                ));
            }
            return Ok(Self::File {
                path: PathBuf::from(rest),
            });
        }
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        if authority.contains('@') || authority.contains(':') {
            // Never echo it: it may hold a secret.
            return Err(bad(
                "credentials may not be written in the URL; give them in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ...)",
            ));
        }
        if authority.is_empty() {
            return Err(bad("no bucket named"));
        }
        let bucket = authority.to_owned();
        let prefix = path.trim_matches('/').to_owned();
        if prefix.split('/').any(|p| p == ".." || p == ".") {
            return Err(bad("the prefix may not hold . or .. parts"));
        }
        match scheme {
            "s3" | "s3a" => Ok(Self::S3 { bucket, prefix }),
            "gs" => Ok(Self::Gcs { bucket, prefix }),
            "az" | "azure" | "abfs" => Ok(Self::Azure {
                container: bucket,
                prefix,
            }),
            _ => Err(bad(&format!(
                "unknown scheme {scheme:?}; s3://, gs://, az:// or file://"
            ))),
        }
    }

    /// The prefix inside the bucket or container under which probes are kept.
    pub fn prefix(&self) -> &str {
        match self {
            Self::S3 { prefix, .. } | Self::Gcs { prefix, .. } | Self::Azure { prefix, .. } => {
                prefix
            }
            Self::File { .. } => "",
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |s: &str, b: &str, p: &str| {
            if p.is_empty() {
                format!("{s}://{b}")
            } else {
                format!("{s}://{b}/{p}")
            }
        };
        match self {
            Self::S3 { bucket, prefix } => f.write_str(&join("s3", bucket, prefix)),
            Self::Gcs { bucket, prefix } => f.write_str(&join("gs", bucket, prefix)),
            Self::Azure { container, prefix } => f.write_str(&join("az", container, prefix)),
            Self::File { path } => write!(f, "file://{}", path.display()),
        }
    }
}

/// A checked `[archive]` with the command line over it.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub target: Target,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub probe: String,
    /// Writeback bandwidth cap in bytes per second.
    pub max_bytes_per_sec: Option<u64>,
    pub concurrency: usize,
    pub cache_bytes: u64,
    /// Segments go to the archive as per-chunk zstd frames with a seek table.
    pub compress: bool,
    pub read_only: bool,
}

/// A probe's name in the archive: one path component.
pub fn validate_probe(p: &str) -> Result<(), Error> {
    let ok = !p.is_empty()
        && p.len() <= 128
        && !p.starts_with('.')
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if p == crate::flows::FLOWS_DIR {
        // The Parquet flows' tree sits beside the probes.
        return Err(Error::Config(format!(
            "archive probe {p:?}: reserved for the flows' tree (name the probe with --probe)"
        )));
    }
    if ok {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "archive probe {p:?}: letters, digits, '-', '_' and '.' (not first), at most 128"
        )))
    }
}

impl ArchiveConfig {
    /// Checks every key (the error names it); `None` when no url is given.
    /// `default_probe` is the hostname.
    pub fn validate(&self, default_probe: &str) -> Result<Option<Settings>, Error> {
        let Some(url) = &self.url else {
            return Ok(None);
        };
        let target = Target::parse(url)?;
        if let Some(e) = &self.endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            return Err(Error::Config(format!(
                "archive endpoint {e:?}: expected http://HOST:PORT or https://HOST"
            )));
        }
        if self.endpoint.as_deref().is_some_and(|e| e.contains('@')) {
            return Err(Error::Config(
                "archive endpoint: credentials may not be written in the URL".into(),
            ));
        }
        let probe = self
            .probe
            .clone()
            .unwrap_or_else(|| default_probe.to_owned());
        validate_probe(&probe)?;
        let max_bytes_per_sec = match self.max_mbps {
            None => None,
            Some(m) if m.is_finite() && m > 0.0 => Some((m * 1e6 / 8.0).max(1.0) as u64),
            Some(m) => {
                return Err(Error::Config(format!(
                    "archive max_mbps: {m} must be a positive number of megabits per second"
                )));
            }
        };
        let concurrency = self.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
        if !(1..=64).contains(&concurrency) {
            return Err(Error::Config(format!(
                "archive concurrency: {concurrency} must be between 1 and 64"
            )));
        }
        let cache_bytes = match &self.cache {
            None => DEFAULT_CACHE_BYTES,
            Some(s) => parse_size(s).ok_or_else(|| {
                Error::Config(format!(
                    "archive cache: {s:?} is not a size such as \"256MB\""
                ))
            })?,
        };
        let compress = match self.compression.as_deref() {
            None | Some("zstd") => true,
            Some("none") => false,
            Some(c) => {
                return Err(Error::Config(format!(
                    "archive compression: {c:?} is not \"zstd\" or \"none\""
                )));
            }
        };
        Ok(Some(Settings {
            compress,
            target,
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            probe,
            max_bytes_per_sec,
            concurrency,
            cache_bytes,
            read_only: self.read_only,
        }))
    }
}

/// `256MB`, `1GiB`, `1000000`.
fn parse_size(s: &str) -> Option<u64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "kib" => 1024.0,
        "mib" => 1048576.0,
        "gib" => 1073741824.0,
        _ => return None,
    };
    let v = n * mult;
    (v.is_finite() && v >= 1.0 && v < u64::MAX as f64).then_some(v as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_credentials_in_them_are_refused_unrepeated() {
        assert_eq!(
            Target::parse("s3://b/p/q/").unwrap(),
            Target::S3 {
                bucket: "b".into(),
                prefix: "p/q".into()
            }
        );
        assert_eq!(Target::parse("s3://b").unwrap().prefix(), "");
        assert!(matches!(
            Target::parse("gs://b/x").unwrap(),
            Target::Gcs { .. }
        ));
        assert!(matches!(
            Target::parse("az://c/x").unwrap(),
            Target::Azure { .. }
        ));
        assert_eq!(
            Target::parse("file:///mnt/big").unwrap(),
            Target::File {
                path: "/mnt/big".into()
            }
        );
        let e = Target::parse("s3://AKIA:SuperSecret@b/p")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("SuperSecret") && !e.contains("AKIA"), "{e}");
        assert!(Target::parse("ftp://x").is_err());
        assert!(Target::parse("file://rel").is_err());
        assert!(Target::parse("s3://b/../x").is_err());
        assert_eq!(Target::parse("s3://b/p").unwrap().to_string(), "s3://b/p");
    }

    #[test]
    fn keys_are_checked() {
        let c = ArchiveConfig {
            url: Some("s3://b/p".into()),
            max_mbps: Some(80.0),
            ..ArchiveConfig::default()
        };
        let s = c.validate("host-1").unwrap().unwrap();
        assert_eq!(s.probe, "host-1");
        assert_eq!(s.max_bytes_per_sec, Some(10_000_000));
        assert_eq!(s.concurrency, DEFAULT_CONCURRENCY);
        assert!(ArchiveConfig::default().validate("h").unwrap().is_none());
        for bad in [
            ArchiveConfig {
                max_mbps: Some(-1.0),
                ..c.clone()
            },
            ArchiveConfig {
                concurrency: Some(0),
                ..c.clone()
            },
            ArchiveConfig {
                probe: Some("a/b".into()),
                ..c.clone()
            },
            ArchiveConfig {
                endpoint: Some("127.0.0.1:9000".into()),
                ..c.clone()
            },
            ArchiveConfig {
                cache: Some("lots".into()),
                ..c.clone()
            },
            ArchiveConfig {
                compression: Some("lz77".into()),
                ..c.clone()
            },
        ] {
            assert!(bad.validate("h").is_err(), "{bad:?}");
        }
    }
}
