//! Configuration: `DIR/wirecap.toml` (every key optional, unknown keys refused) overlaid by
//! the command line.
//!
//! ```toml
//! http  = "127.0.0.1:8080"        # plain HTTP listener, off unless given
//! https = "0.0.0.0:8443"          # HTTPS listener (the default when neither is given)
//!
//! [tls]                           # the operator's certificate instead of the self-signed one
//! cert = "/etc/wirecap/cert.pem"
//! key  = "/etc/wirecap/key.pem"
//!
//! [capture]                       # one of interface / replay / synthetic
//! interface = "eth1"
//! # replay = "/srv/demo.pcap"
//! # speed = "top"
//! # synthetic = 1000
//!
//! [log]
//! level = "info"                  # or a tracing filter such as "wirecap_server=debug,info"
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext};

/// Name of the configuration file inside the data directory.
pub const CONFIG_FILE: &str = "wirecap.toml";
/// The listener used when neither `--http` nor `--https` nor the config names one.
pub const DEFAULT_HTTPS: &str = "0.0.0.0:8443";
/// Packets per second of the synthetic source when nothing else is configured.
pub const DEFAULT_SYNTHETIC_PPS: u64 = 1000;

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub http: Option<String>,
    pub https: Option<String>,
    #[serde(default)]
    pub tls: TlsConfig,
    #[serde(default)]
    pub capture: CaptureConfig,
    #[serde(default)]
    pub log: LogConfig,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CaptureConfig {
    pub interface: Option<String>,
    pub replay: Option<PathBuf>,
    pub speed: Option<String>,
    pub synthetic: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub level: Option<String>,
}

impl FileConfig {
    /// Reads `DIR/wirecap.toml`; a missing file is an empty configuration.
    pub fn load(dir: &Path) -> Result<Self, Error> {
        let path = dir.join(CONFIG_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(e).at(&path),
        };
        Self::parse(&text).map_err(|why| Error::Config { path, why })
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let c: Self = toml::from_str(text).map_err(|e| e.to_string())?;
        let n = [
            c.capture.interface.is_some(),
            c.capture.replay.is_some(),
            c.capture.synthetic.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if n > 1 {
            return Err("[capture]: give one of interface, replay or synthetic".into());
        }
        if c.tls.cert.is_some() != c.tls.key.is_some() {
            return Err("[tls]: give both cert and key, or neither".into());
        }
        Ok(c)
    }
}

/// Where captured packets come from.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceChoice {
    /// A live interface (needs root or CAP_NET_RAW).
    Interface(String),
    /// A pcap/pcapng file, replayed at `speed` (`1`, `2.5`, `top`).
    Replay { path: PathBuf, speed: String },
    /// Generated traffic at this many packets per second.
    Synthetic(u64),
}

/// The command line of `wirecap serve`, already parsed.
#[derive(Debug, Clone, Default)]
pub struct ServeArgs {
    pub data: PathBuf,
    pub http: Option<String>,
    pub https: Option<String>,
    pub source: Option<SourceChoice>,
}

/// What the server runs with: the command line over the file over the defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data: PathBuf,
    pub http: Option<String>,
    pub https: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub source: SourceChoice,
    /// Why this source (for the start-up banner).
    pub source_reason: String,
    pub log_level: String,
}

/// Whether this process may open AF_PACKET sockets (root or CAP_NET_RAW).
pub fn can_capture() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    // CapEff in /proc/self/status, bit 13 = CAP_NET_RAW.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << 13) != 0)
}

impl Settings {
    pub fn resolve(args: ServeArgs, file: FileConfig) -> Self {
        let (http, https) = match (args.http, args.https) {
            (None, None) => match (file.http, file.https) {
                (None, None) => (None, Some(DEFAULT_HTTPS.to_owned())),
                other => other,
            },
            other => other,
        };
        let from_file = if let Some(i) = file.capture.interface {
            Some(SourceChoice::Interface(i))
        } else if let Some(p) = file.capture.replay {
            Some(SourceChoice::Replay {
                path: p,
                speed: file.capture.speed.unwrap_or_else(|| "1".into()),
            })
        } else {
            file.capture.synthetic.map(SourceChoice::Synthetic)
        };
        let (source, source_reason) = match (args.source, from_file) {
            (Some(s), _) => (s, "from the command line".to_owned()),
            (None, Some(SourceChoice::Interface(i))) if !can_capture() => (
                SourceChoice::Synthetic(DEFAULT_SYNTHETIC_PPS),
                format!(
                    "{CONFIG_FILE} names interface {i}, but this process is not root and lacks CAP_NET_RAW"
                ),
            ),
            (None, Some(s)) => (s, format!("from {CONFIG_FILE}")),
            (None, None) => (
                SourceChoice::Synthetic(DEFAULT_SYNTHETIC_PPS),
                "no capture interface configured (--interface IF or [capture] interface)".into(),
            ),
        };
        Self {
            data: args.data,
            http,
            https,
            tls_cert: file.tls.cert,
            tls_key: file.tls.key,
            source,
            source_reason,
            log_level: file.log.level.unwrap_or_else(|| "info".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses_unknown_keys() {
        let c = FileConfig::parse(
            "http = \"127.0.0.1:8080\"\n[capture]\nsynthetic = 50\n[log]\nlevel = \"debug\"\n",
        )
        .unwrap();
        assert_eq!(c.http.as_deref(), Some("127.0.0.1:8080"));
        assert_eq!(c.capture.synthetic, Some(50));
        assert!(FileConfig::parse("htp = \"x\"").is_err());
        assert!(FileConfig::parse("[capture]\nsynthetic = 1\ninterface = \"eth0\"").is_err());
        assert!(FileConfig::parse("[tls]\ncert = \"a\"").is_err());
    }

    #[test]
    fn https_is_the_default_and_flags_win() {
        let s = Settings::resolve(ServeArgs::default(), FileConfig::default());
        assert_eq!(s.https.as_deref(), Some(DEFAULT_HTTPS));
        assert_eq!(s.http, None);
        assert!(matches!(s.source, SourceChoice::Synthetic(_)));
        let s = Settings::resolve(
            ServeArgs {
                http: Some("127.0.0.1:1".into()),
                ..ServeArgs::default()
            },
            FileConfig {
                https: Some("0.0.0.0:9".into()),
                ..FileConfig::default()
            },
        );
        assert_eq!(s.http.as_deref(), Some("127.0.0.1:1"));
        assert_eq!(s.https, None);
    }
}
