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
//! [forward]                       # bump in the wire on [capture] interface
//! inline = "10.9.0.1/24"          # the capture IP the peers send to (not a kernel address)
//! pairs = ["10.9.0.2=10.9.0.3"]   # peer pairs A=B: A's packets go to B and back
//! capture_mode = "inline"         # ingress | egress | inline | both
//!
//! [log]
//! level = "info"                  # or a tracing filter such as "wirecap_server=debug,info"
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext};
use wirecap_forward::{CaptureMode, ForwardTable, Inline, Pair, TableError};

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
    #[serde(default, skip_serializing_if = "ForwardConfig::is_empty")]
    pub forward: ForwardConfig,
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

/// `[forward]`: the inline forwarder (bump in the wire).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ForwardConfig {
    /// The capture IP and prefix, `10.9.0.1/24`; forwarding is off without it.
    pub inline: Option<String>,
    /// Peer pairs, `A=B`.
    #[serde(default)]
    pub pairs: Vec<String>,
    /// `ingress`, `egress`, `inline` (the default) or `both`.
    pub capture_mode: Option<String>,
}

/// The forwarder's settings, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardChoice {
    pub inline: Inline,
    pub pairs: Vec<Pair>,
    pub mode: CaptureMode,
}

impl ForwardChoice {
    /// Checks the strings of the command line, the file or the API.
    pub fn parse<S: AsRef<str>>(
        inline: &str,
        pairs: &[S],
        mode: Option<&str>,
    ) -> Result<Self, String> {
        let inline: Inline = inline.parse().map_err(|e: TableError| e.to_string())?;
        let table = ForwardTable::parse(inline, pairs).map_err(|e| e.to_string())?;
        let mode = mode.map(str::parse).transpose()?.unwrap_or_default();
        Ok(Self {
            inline,
            pairs: table.pairs().to_vec(),
            mode,
        })
    }
}

impl ForwardConfig {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// The checked settings; `None` when forwarding is not configured.
    pub fn choice(&self) -> Result<Option<ForwardChoice>, String> {
        let Some(inline) = &self.inline else {
            if !self.pairs.is_empty() || self.capture_mode.is_some() {
                return Err(
                    "[forward]: pairs and capture_mode need inline = \"ADDR/PREFIX\"".into(),
                );
            }
            return Ok(None);
        };
        ForwardChoice::parse(inline, &self.pairs, self.capture_mode.as_deref())
            .map(Some)
            .map_err(|e| format!("[forward]: {e}"))
    }
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
        c.forward.choice()?;
        Ok(c)
    }
}

/// Serializes every change to `DIR/wirecap.toml` made by this process, so that two API
/// calls cannot interleave their read-modify-write.
static WRITE_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Changes `DIR/wirecap.toml` through `change`, validates the result as a load would, and
/// replaces the file atomically: a new file is written and synced beside it, renamed over
/// the old one and the directory synced. A crash at any point leaves either the old or the
/// new file, never a torn one. `why` becomes the header comment, so an operator reading
/// the file sees what wrote it.
pub fn update(
    dir: &Path,
    why: &str,
    change: impl FnOnce(&mut FileConfig) -> Result<(), String>,
) -> Result<FileConfig, String> {
    let _serial = WRITE_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let mut c = FileConfig::load(dir).map_err(|e| e.to_string())?;
    change(&mut c)?;
    let body = toml::to_string(&c).map_err(|e| e.to_string())?;
    // What is written must load again: refuse a change that a restart would reject.
    let checked = FileConfig::parse(&body)?;
    let text = format!(
        "# {why}
# Edited by wirecap; keep one setting per line.
{body}"
    );
    write_atomically(&dir.join(CONFIG_FILE), text.as_bytes())
        .map_err(|e| format!("{}: {e}", dir.join(CONFIG_FILE).display()))?;
    Ok(checked)
}

/// Replaces `path` with `bytes` so that readers and a crash see the old or the new content.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Unique per process and call, so a stale temp file from a killed writer never
    // collides with a live one; `cleanup_temp_files` removes the stale ones.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.tmp-{}-{seq}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Removes temp files left by writers killed before their rename; they hold nothing that
/// the real file lacks.
pub fn cleanup_temp_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let n = e.file_name();
        let n = n.to_string_lossy();
        if n.starts_with('.') && n.contains(".tmp-") {
            let _ = std::fs::remove_file(e.path());
        }
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
    /// `--inline`, `--forward`, `--capture-mode` (checked).
    pub forward: Option<ForwardChoice>,
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
    /// The inline forwarder, from the command line or `[forward]`.
    pub forward: Option<ForwardChoice>,
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
        // The file was checked when it was loaded; the command line wins as a whole. The
        // file's [forward] needs an interface to run on: with a replay or synthetic source
        // (or without the right to capture) it waits, instead of stopping the server.
        let forward = args.forward.or_else(|| {
            file.forward
                .choice()
                .ok()
                .flatten()
                .filter(|_| matches!(source, SourceChoice::Interface(_)))
        });
        Self {
            data: args.data,
            http,
            https,
            tls_cert: file.tls.cert,
            tls_key: file.tls.key,
            source,
            source_reason,
            forward,
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

    #[test]
    fn update_writes_a_file_that_loads_and_refuses_invalid_changes() {
        let d = tempfile::tempdir().unwrap();
        update(d.path(), "test", |c| {
            c.capture.synthetic = Some(7);
            Ok(())
        })
        .unwrap();
        assert_eq!(
            FileConfig::load(d.path()).unwrap().capture.synthetic,
            Some(7)
        );
        // A change that would not load again is refused and the file is kept.
        let err = update(d.path(), "test", |c| {
            c.capture.interface = Some("eth9".into());
            Ok(())
        })
        .unwrap_err();
        assert!(err.contains("one of interface"), "{err}");
        assert_eq!(
            FileConfig::load(d.path()).unwrap().capture.synthetic,
            Some(7)
        );
        let leftovers: Vec<_> = std::fs::read_dir(d.path()).unwrap().flatten().collect();
        assert_eq!(leftovers.len(), 1, "only wirecap.toml: {leftovers:?}");
    }

    #[test]
    fn forward_section_is_checked_and_the_command_line_wins() {
        let c = FileConfig::parse(
            "[capture]\ninterface = \"eth1\"\n[forward]\ninline = \"10.9.0.1/24\"\npairs = [\"10.9.0.2=10.9.0.3\", \"10.9.0.4=10.9.0.5\"]\ncapture_mode = \"both\"\n",
        )
        .unwrap();
        let f = c.forward.choice().unwrap().unwrap();
        assert_eq!(f.pairs.len(), 2);
        assert_eq!(f.mode, CaptureMode::Both);
        for (bad, why) in [
            (
                "[forward]\npairs = [\"10.9.0.2=10.9.0.3\"]\n",
                "need inline",
            ),
            ("[forward]\ninline = \"10.9.0.1\"\n", "ADDR/PREFIX"),
            (
                "[forward]\ninline = \"10.9.0.1/24\"\npairs = [\"10.9.1.2=10.9.0.3\"]\n",
                "subnet",
            ),
            (
                "[forward]\ninline = \"10.9.0.1/24\"\ncapture_mode = \"all\"\n",
                "ingress, egress",
            ),
            (
                "[forward]\ninline = \"10.9.0.1/24\"\nmode = \"inline\"\n",
                "unknown field",
            ),
        ] {
            let e = FileConfig::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let cli =
            ForwardChoice::parse("10.8.0.1/16", &["10.8.0.2=10.8.0.3"], Some("egress")).unwrap();
        let s = Settings::resolve(
            ServeArgs {
                forward: Some(cli.clone()),
                ..ServeArgs::default()
            },
            c.clone(),
        );
        assert_eq!(s.forward, Some(cli));
        let s = Settings::resolve(ServeArgs::default(), c.clone());
        // The file's interface is used only by a process that may capture.
        let want = can_capture().then(|| f.clone());
        assert_eq!(s.forward, want);
        // Not without an interface to forward on.
        let s = Settings::resolve(
            ServeArgs {
                source: Some(SourceChoice::Synthetic(10)),
                ..ServeArgs::default()
            },
            c,
        );
        assert_eq!(s.forward, None);
        // update() keeps the section it does not touch and writes back what it changed.
        let d = tempfile::tempdir().unwrap();
        update(d.path(), "test", |c| {
            c.forward.inline = Some("10.9.0.1/24".into());
            c.forward.pairs = vec!["10.9.0.2=10.9.0.3".into()];
            Ok(())
        })
        .unwrap();
        let back = FileConfig::load(d.path()).unwrap();
        assert_eq!(back.forward.pairs, ["10.9.0.2=10.9.0.3"]);
    }

    #[test]
    fn parse_errors_name_the_line() {
        let err = FileConfig::parse("http = \"a\"\n[capture]\nsynthetic = \"many\"\n").unwrap_err();
        assert!(err.contains("line 3"), "{err}");
    }
}
