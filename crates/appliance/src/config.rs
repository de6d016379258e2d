//! Configuration: `DIR/wirecap.toml` (every key optional, unknown keys refused) overlaid by
//! the command line.
//!
//! ```toml
//! hostname = "probe-fra-1"        # the appliance's name (RFC 1123), shown everywhere
//! apply_hostname_to_os = false    # also sethostname(2) + /etc/hostname (needs CAP_SYS_ADMIN)
//! http  = "127.0.0.1:8080"        # plain HTTP listener, off unless given
//! https = "0.0.0.0:8443"          # HTTPS listener (the default when neither is given)
//! timezone = "Europe/Berlin"      # schedules' default time zone (UTC when absent)
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
//! bpf = "not port 22"            # capture filter (tcpdump syntax), compiled into the socket
//! snaplen = 128                   # bytes kept per packet (the original length is kept)
//! threads = 2                     # PACKET_FANOUT sockets; fanout = "hash" | "cpu"
//! blocks = 64                     # ring blocks per thread; block_kib = 1024
//!
//! [forward]                       # bump in the wire on [capture] interface
//! inline = "10.9.0.1/24"          # the capture IP the peers send to (not a kernel address)
//! pairs = ["10.9.0.2=10.9.0.3"]   # peer pairs A=B: A's packets go to B and back
//! capture_mode = "inline"         # ingress | egress | inline | both
//! cpu = "auto"                    # the forwarder's own CPU: auto | off | a CPU number
//!
//! [log]
//! level = "info"                  # or a tracing filter such as "wirecap_appliance=debug,info"
//!
//! [update]                        # software update (see `crate::update`)
//! trusted_keys = ["base64…"]      # public keys from `wirecap release keygen`
//! require_signature = false       # refuse unsigned release archives
//! health_timeout_secs = 60        # a restarted release not up by then is rolled back
//! max_upload_mb = 512             # largest release archive accepted
//!
//! [alerts]                        # webhook and syslog alerts: see crate::alerts
//! [[schedule]]                    # named capture schedules: see crate::schedule
//! [retention]                     # disk budget and watermarks: see crate::retention
//! [archive]                       # object-storage tier: see wirecap_archive::config
//! url = "s3://bucket/prefix"      # also gs://, az://, file:///PATH
//! ```
//!
//! Errors point at the line: syntax and type errors come from `toml` with line and column;
//! the semantic checks of [`FileConfig::parse`] (two capture sources, a listener that is
//! not HOST:PORT, an invalid hostname, …) name the key and look its line up in the text
//! with `toml_edit`'s spans.
//!
//! [`update`] is the only writer: it serializes writers of this process (a mutex) and of
//! other processes (`flock` on `DIR/.wirecap.toml.lock`, so `wirecap hostname` beside a
//! running server cannot lose the server's change), and replaces the file atomically.
//!
//! The server rereads the file when its modification time changes (so `wirecap schedule`
//! and `wirecap retention` edits made while it runs take effect within a second).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::capture_settings::{CaptureOptions, CaptureSettings};
use crate::error::{Error, IoContext};
use wirecap_forward::cpu::CpuChoice;
use wirecap_forward::{CaptureMode, ForwardTable, Inline, Pair, TableError};

/// Name of the configuration file inside the data directory.
pub const CONFIG_FILE: &str = "wirecap.toml";
/// Log files are kept here inside the data directory, one per day, two weeks of them.
pub const LOG_DIR: &str = "log";
/// The listener used when neither `--http` nor `--https` nor the config names one.
pub const DEFAULT_HTTPS: &str = "0.0.0.0:8443";
/// Packets per second of the synthetic source when nothing else is configured.
pub const DEFAULT_SYNTHETIC_PPS: u64 = 1000;

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The appliance's name (RFC 1123); the OS hostname when not set.
    pub hostname: Option<String>,
    /// Apply `hostname` to the OS (sethostname(2) and /etc/hostname) when the process has
    /// CAP_SYS_ADMIN. Off by default: a capture box's name is often the host's business.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub apply_hostname_to_os: bool,
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
    #[serde(default)]
    pub update: UpdateConfig,
    /// Default time zone of schedules (IANA name); UTC when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedule: Vec<crate::schedule::ScheduleConfig>,
    #[serde(default)]
    pub retention: crate::retention::RetentionConfig,
    /// Alerts to a webhook and/or syslog (issue 14.6).
    #[serde(default, skip_serializing_if = "crate::alerts::AlertsConfig::is_empty")]
    pub alerts: crate::alerts::AlertsConfig,
    #[serde(default, skip_serializing_if = "is_default_archive")]
    pub archive: wirecap_archive::ArchiveConfig,
}

fn is_default_archive(a: &wirecap_archive::ArchiveConfig) -> bool {
    *a == wirecap_archive::ArchiveConfig::default()
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
    /// Capture filter, tcpdump syntax (see [`crate::capture_settings`]).
    pub bpf: Option<String>,
    /// Bytes kept per packet.
    pub snaplen: Option<u32>,
    /// Capture threads (PACKET_FANOUT sockets).
    pub threads: Option<usize>,
    /// `hash` or `cpu`.
    pub fanout: Option<String>,
    /// Ring blocks per thread.
    pub blocks: Option<u32>,
    /// Ring block size in KiB.
    pub block_kib: Option<u32>,
}

impl CaptureConfig {
    /// The capture settings this section gives.
    pub fn options(&self) -> CaptureOptions {
        CaptureOptions {
            bpf: self.bpf.clone(),
            snaplen: self.snaplen,
            threads: self.threads,
            fanout: self.fanout.clone(),
            blocks: self.blocks,
            block_kib: self.block_kib,
        }
    }

    /// Replaces the capture settings of this section with `o`.
    pub fn set_options(&mut self, o: &CaptureOptions) {
        self.bpf = o.bpf.clone();
        self.snaplen = o.snaplen;
        self.threads = o.threads;
        self.fanout = o.fanout.clone();
        self.blocks = o.blocks;
        self.block_kib = o.block_kib;
    }
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
    /// `false`: forwarding is off, the settings kept for when it is turned on again (the
    /// Config page's switch). Absent: on whenever `inline` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// The CPU the forwarder has to itself: `auto` (the default), `off` or a number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
}

/// The forwarder's settings, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardChoice {
    pub inline: Inline,
    pub pairs: Vec<Pair>,
    pub mode: CaptureMode,
    pub cpu: CpuChoice,
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
            cpu: CpuChoice::default(),
        })
    }

    /// With the forwarder's CPU (`auto`, `off` or a number; `None`: auto).
    pub fn with_cpu(mut self, cpu: Option<&str>) -> Result<Self, String> {
        self.cpu = cpu.map(str::parse).transpose()?.unwrap_or_default();
        Ok(self)
    }
}

impl ForwardConfig {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// The checked settings; `None` when forwarding is not configured or turned off.
    pub fn choice(&self) -> Result<Option<ForwardChoice>, String> {
        let saved = self.saved()?;
        Ok(saved.filter(|_| self.enabled != Some(false)))
    }

    /// The checked settings, also when forwarding is turned off.
    pub fn saved(&self) -> Result<Option<ForwardChoice>, String> {
        let Some(inline) = &self.inline else {
            if !self.pairs.is_empty() || self.capture_mode.is_some() || self.cpu.is_some() {
                return Err(
                    "[forward]: pairs, capture_mode and cpu need inline = \"ADDR/PREFIX\"".into(),
                );
            }
            return Ok(None);
        };
        ForwardChoice::parse(inline, &self.pairs, self.capture_mode.as_deref())
            .and_then(|c| c.with_cpu(self.cpu.as_deref()))
            .map(Some)
            .map_err(|e| format!("[forward]: {e}"))
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub level: Option<String>,
}

/// Software update (see `crate::update`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UpdateConfig {
    /// Public keys (base64, as `wirecap release keygen` prints them) that may sign releases.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_keys: Vec<String>,
    /// Refuse unsigned release archives.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_signature: bool,
    /// How long a restarted release has to come up before it is rolled back.
    pub health_timeout_secs: Option<u64>,
    /// Largest release archive accepted, in MiB.
    pub max_upload_mb: Option<u64>,
}

impl UpdateConfig {
    pub fn health_timeout(&self) -> std::time::Duration {
        self.health_timeout_secs
            .map_or(crate::update::DEFAULT_HEALTH_TIMEOUT, |s| {
                std::time::Duration::from_secs(s.max(1))
            })
    }
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
        c.validate().map_err(|e| e.render(text))?;
        Ok(c)
    }

    /// The semantic checks a syntactically valid file must also pass.
    fn validate(&self) -> Result<(), KeyError> {
        let sources = [
            ("interface", self.capture.interface.is_some()),
            ("replay", self.capture.replay.is_some()),
            ("synthetic", self.capture.synthetic.is_some()),
        ];
        let set: Vec<&str> = sources.iter().filter(|s| s.1).map(|s| s.0).collect();
        if set.len() > 1 {
            return Err(KeyError::new(
                &["capture", set[1]],
                format!(
                    "give one of interface, replay or synthetic ({} is set too)",
                    set[0]
                ),
            ));
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            let (given, missing) = if self.tls.cert.is_some() {
                ("cert", "key")
            } else {
                ("key", "cert")
            };
            return Err(KeyError::new(
                &["tls", given],
                format!("give both cert and key, or neither ({missing} is missing)"),
            ));
        }
        for (key, v) in [("http", &self.http), ("https", &self.https)] {
            if let Some(a) = v {
                check_listen_addr(a).map_err(|why| KeyError::new(&[key], why))?;
            }
        }
        if let Some(h) = &self.hostname {
            crate::hostname::validate(h).map_err(|why| KeyError::new(&["hostname"], why))?;
        }
        CaptureSettings::check(&self.capture.options())
            .map_err(|e| KeyError::new(&["capture", e.field], e.why))?;
        if let Some(sp) = &self.capture.speed {
            sp.parse::<wirecap_capture::replay::Speed>()
                .map_err(|why| KeyError::new(&["capture", "speed"], why))?;
        }
        if let Some(level) = &self.log.level {
            tracing_subscriber::EnvFilter::try_new(level).map_err(|e| {
                KeyError::new(
                    &["log", "level"],
                    format!("{level:?} is not a log level or tracing filter ({e}); e.g. \"info\" or \"wirecap_appliance=debug,info\""),
                )
            })?;
        }
        self.forward
            .choice()
            .map_err(|e| KeyError::new(&["forward"], e))?;
        crate::schedule::validate_all(&self.schedule, self.timezone.as_deref())
            .map_err(|e| schedule_key_error(&self.schedule, e))?;
        self.retention.validate().map_err(|e| {
            // `[retention] KEY: why`: point at the key's line, not the section's.
            match e
                .strip_prefix("[retention] ")
                .and_then(|r| r.split_once(": "))
            {
                Some((key, why)) => KeyError::new(&["retention", key], why.to_owned()),
                None => KeyError::new(&["retention"], e),
            }
        })?;
        // The hostname stands in for the probe name here: only its form is checked.
        self.archive.validate("probe").map_err(|e| {
            let msg = e.to_string();
            let key = [
                "url",
                "endpoint",
                "probe",
                "max_mbps",
                "concurrency",
                "cache",
                "compression",
            ]
            .into_iter()
            .find(|k| msg.starts_with(&format!("archive {k}")))
            .unwrap_or("url");
            KeyError::new(&["archive", key], msg)
        })?;
        for k in &self.update.trusted_keys {
            crate::release::read_public_key(k)
                .map_err(|e| KeyError::new(&["update", "trusted_keys"], e.to_string()))?;
        }
        if self.update.require_signature && self.update.trusted_keys.is_empty() {
            return Err(KeyError::new(
                &["update", "require_signature"],
                "true needs trusted_keys (from `wirecap release keygen`)".into(),
            ));
        }
        self.alerts
            .validate()
            .map_err(|(key, why)| KeyError::new(&["alerts", key], why))?;
        if self.capture.synthetic == Some(0) {
            return Err(KeyError::new(
                &["capture", "synthetic"],
                "packets per second must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// A schedule's error at its `[[schedule]]` table (`#N`, see [`line_of`]); the file's
/// own `timezone` when no schedule is named.
fn schedule_key_error(
    list: &[crate::schedule::ScheduleConfig],
    e: crate::schedule::ScheduleError,
) -> KeyError {
    if e.name.is_empty() {
        return KeyError::new(&[e.field], e.why);
    }
    // Two schedules of one name: the second is the one at fault.
    let at = if e.field == "name" {
        list.iter().rposition(|c| c.name == e.name)
    } else {
        list.iter().position(|c| c.name == e.name)
    };
    let Some(i) = at else {
        return KeyError::new(&["schedule"], e.to_string());
    };
    let mut k = KeyError::new(&["schedule", &format!("#{i}"), e.field], e.why);
    k.label = Some(format!("[[schedule]] {:?} {}", e.name, e.field));
    k
}

/// A semantic error in the file: which key, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyError {
    path: Vec<String>,
    why: String,
    /// How the key is named in the message, when not by its path.
    label: Option<String>,
}

impl KeyError {
    fn new(path: &[&str], why: String) -> Self {
        Self {
            path: path.iter().map(|s| (*s).to_owned()).collect(),
            why,
            label: None,
        }
    }

    /// `line 4, [capture] replay: …` (the line when the key is in `text`).
    fn render(&self, text: &str) -> String {
        let key = match (self.label.as_ref(), self.path.as_slice()) {
            (Some(l), _) => l.clone(),
            (None, [k]) => k.clone(),
            (None, [table @ .., k]) => format!("[{}] {k}", table.join(".")),
            (None, []) => String::new(),
        };
        match line_of(text, &self.path) {
            Some(n) => format!("line {n}, {key}: {}", self.why),
            None => format!("{key}: {}", self.why),
        }
    }
}

/// The 1-based line where the key `path` (table names, then the key) is written. `#N`
/// after an array of tables (`[[schedule]]`) is its Nth table; a key missing from such a
/// table gives the line of the table's first key.
pub fn line_of(text: &str, path: &[String]) -> Option<usize> {
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let (last, tables) = path.split_last()?;
    let mut t: &dyn toml_edit::TableLike = doc.as_table();
    let mut in_array = false;
    let mut item: Option<&toml_edit::Item> = None;
    for name in tables {
        if let Some(i) = name.strip_prefix('#').and_then(|n| n.parse::<usize>().ok()) {
            t = item?.as_array_of_tables()?.get(i)?;
            in_array = true;
            continue;
        }
        let next = t.get(name)?;
        item = Some(next);
        if next.is_array_of_tables() {
            continue;
        }
        t = next.as_table_like()?;
        in_array = false;
    }
    let k = match t.get_key_value(last) {
        Some((k, _)) => k,
        None if in_array => t.iter().next().and_then(|(n, _)| t.get_key_value(n))?.0,
        None => return None,
    };
    let at = k.span()?.start;
    Some(text[..at.min(text.len())].matches('\n').count() + 1)
}

/// A listener address as the server will bind it: `HOST:PORT`, `[V6]:PORT` or `:PORT`.
pub fn check_listen_addr(a: &str) -> Result<(), String> {
    let bad = || {
        format!(
            "{a:?} is not a listen address: give HOST:PORT, e.g. 127.0.0.1:8080 or 0.0.0.0:8443"
        )
    };
    let (host, port) = a.rsplit_once(':').ok_or_else(bad)?;
    port.parse::<u16>().map_err(|_| bad())?;
    if host.is_empty() || host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6
            .parse::<std::net::Ipv6Addr>()
            .map(drop)
            .map_err(|_| bad());
    }
    crate::hostname::validate(host).map_err(|_| bad())
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
    let _other_processes = crate::os::FileLock::exclusive(&dir.join(LOCK_FILE))
        .map_err(|e| format!("{}: {e}", dir.join(LOCK_FILE).display()))?;
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
    crate::os::write_atomically(&dir.join(CONFIG_FILE), text.as_bytes())
        .map_err(|e| format!("{}: {e}", dir.join(CONFIG_FILE).display()))?;
    Ok(checked)
}

/// Sets `[capture] interface` in `DIR/wirecap.toml` (dropping replay/synthetic), keeping
/// the other settings. The running engine keeps its source until the server restarts.
pub fn write_capture_interface(dir: &Path, interface: &str) -> Result<(), String> {
    update(
        dir,
        "capture interface set from the web UI (Config page)",
        |c| {
            c.capture.interface = Some(interface.to_owned());
            c.capture.replay = None;
            c.capture.speed = None;
            c.capture.synthetic = None;
            Ok(())
        },
    )
    .map(drop)
}

/// Sets `[alerts]` in `DIR/wirecap.toml` (checked as a load would), keeping the rest.
pub fn write_alerts(
    dir: &Path,
    alerts: &crate::alerts::AlertsConfig,
) -> Result<FileConfig, String> {
    update(dir, "alerts set by wirecap (Config page or API)", |c| {
        c.alerts = alerts.clone();
        Ok(())
    })
}

/// Persists `name` in `DIR/wirecap.toml`, shows it (`show`: a running server's name) and
/// applies it to the OS when the file allows it and the process may. Answers what happened
/// to the OS.
pub fn set_hostname(
    dir: &Path,
    name: &str,
    show: impl FnOnce(&str),
) -> Result<&'static str, String> {
    let c = update(dir, "hostname set by wirecap", |c| {
        c.hostname = Some(name.to_owned());
        Ok(())
    })?;
    show(name);
    let os = crate::hostname::apply_to_os(
        name,
        c.apply_hostname_to_os,
        Path::new(crate::hostname::ETC_HOSTNAME),
    )?;
    tracing::info!(hostname = %name, ?os, "hostname set");
    Ok(match os {
        crate::hostname::OsApply::Applied => "applied",
        crate::hostname::OsApply::NotAllowed => "not applied: apply_hostname_to_os is off",
        crate::hostname::OsApply::NoCapability => "not applied: no CAP_SYS_ADMIN",
    })
}

/// The lock file that serializes [`update`] across processes.
pub const LOCK_FILE: &str = ".wirecap.toml.lock";

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
    /// `--bpf`, `--snaplen`, `--threads`, `--fanout`, `--blocks`, `--block-kib`.
    pub capture: CaptureOptions,
    /// `--archive URL`, `--probe NAME`, `--read-only` (over `[archive]`).
    pub archive_url: Option<String>,
    pub probe: Option<String>,
    pub read_only: bool,
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
    /// The capture settings: the command line over `[capture]`, key by key (checked by
    /// the server at start).
    pub capture: CaptureOptions,
    pub log_level: String,
    pub update: UpdateConfig,
    /// `hostname` from the file.
    pub hostname: Option<String>,
    pub apply_hostname_to_os: bool,
    /// `[archive]` with the command line over it (checked when the server starts, when
    /// the probe's default name, the hostname, is known).
    pub archive: wirecap_archive::ArchiveConfig,
}

/// Whether this process may open AF_PACKET sockets (root or CAP_NET_RAW).
pub fn can_capture() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    crate::os::has_capability(crate::os::CAP_NET_RAW)
}

impl Settings {
    pub fn resolve(args: ServeArgs, file: FileConfig) -> Self {
        let capture = file.capture.options().overlay(&args.capture);
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
        let mut archive = file.archive;
        if let Some(u) = args.archive_url {
            archive.url = Some(u);
        }
        if let Some(p) = args.probe {
            archive.probe = Some(p);
        }
        archive.read_only |= args.read_only;
        Self {
            archive,
            data: args.data,
            http,
            https,
            tls_cert: file.tls.cert,
            tls_key: file.tls.key,
            source,
            source_reason,
            forward,
            capture,
            log_level: file.log.level.unwrap_or_else(|| "info".into()),
            update: file.update,
            hostname: file.hostname,
            apply_hostname_to_os: file.apply_hostname_to_os,
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
        let leftovers: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name() != LOCK_FILE)
            .collect();
        assert_eq!(leftovers.len(), 1, "only wirecap.toml: {leftovers:?}");
    }

    #[test]
    fn semantic_errors_name_the_key_and_line() {
        let err = FileConfig::parse(
            "http = \"127.0.0.1:1\"\n\n[capture]\ninterface = \"eth0\"\nreplay = \"/x.pcap\"\n",
        )
        .unwrap_err();
        assert!(err.starts_with("line 5, [capture] replay:"), "{err}");
        assert!(err.contains("interface is set too"), "{err}");
        // Issue 17.12: the key's line in [retention], the schedule's name and line.
        let err = FileConfig::parse("[retention]\nbudget = \"1G\"\n\nhigh_watermark = 7.0\n")
            .unwrap_err();
        assert!(
            err.starts_with("line 4, [retention] high_watermark:"),
            "{err}"
        );
        let err = FileConfig::parse(
            "[[schedule]]\nname = \"a\"\ncron = \"0 * * * *\"\nduration = \"1h\"\n\n[[schedule]]\nname = \"b\"\ncron = \"0 * * * *\"\nduration = \"1h\"\ntimezone = \"Mars/Olympus\"\n",
        )
        .unwrap_err();
        assert!(
            err.starts_with("line 10, [[schedule]] \"b\" timezone:"),
            "{err}"
        );
        let err = FileConfig::parse("timezone = \"Mars/Olympus\"\n").unwrap_err();
        assert!(err.starts_with("line 1, timezone:"), "{err}");
        let err = FileConfig::parse(
            "[[schedule]]\nname = \"a\"\ncron = \"0 * * * *\"\nduration = \"10000000h\"\n",
        )
        .unwrap_err();
        assert!(
            err.starts_with("line 4, [[schedule]] \"a\" duration:"),
            "{err}"
        );
        let err = FileConfig::parse("# c\nhttps = \"localhost\"\n").unwrap_err();
        assert!(err.starts_with("line 2, https:"), "{err}");
        let err = FileConfig::parse("http = \"1.2.3.4:99999\"").unwrap_err();
        assert!(err.starts_with("line 1, http:"), "{err}");
        let err = FileConfig::parse("\nhostname = \"-bad_name\"").unwrap_err();
        assert!(err.starts_with("line 2, hostname:"), "{err}");
        let err = FileConfig::parse("[tls]\n\nkey = \"/k.pem\"").unwrap_err();
        assert!(err.starts_with("line 3, [tls] key:"), "{err}");
        let err = FileConfig::parse("[log]\nlevel = \"wirecap=loudest\"").unwrap_err();
        assert!(err.starts_with("line 2, [log] level:"), "{err}");
        let err = FileConfig::parse("[capture]\nreplay = \"/x\"\nspeed = \"fast\"").unwrap_err();
        assert!(err.starts_with("line 3, [capture] speed:"), "{err}");
        // Inline tables have spans too.
        let err = FileConfig::parse("capture = { synthetic = 5, interface = \"e\" }").unwrap_err();
        assert!(err.starts_with("line 1, [capture] synthetic:"), "{err}");
        for ok in [
            "127.0.0.1:80",
            ":8443",
            "[::1]:8443",
            "localhost:8080",
            "0.0.0.0:0",
        ] {
            assert_eq!(check_listen_addr(ok), Ok(()), "{ok}");
        }
        for bad in ["127.0.0.1", "x:y", "[::1:80", "a b:80"] {
            assert!(check_listen_addr(bad).is_err(), "{bad}");
        }
        let c = FileConfig::parse("hostname = \"probe-1\"\napply_hostname_to_os = true").unwrap();
        assert_eq!(c.hostname.as_deref(), Some("probe-1"));
        assert!(c.apply_hostname_to_os);
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
        assert_eq!(f.cpu, CpuChoice::Auto);
        let pinned =
            FileConfig::parse("[forward]\ninline = \"10.9.0.1/24\"\ncpu = \"3\"\n").unwrap();
        assert_eq!(
            pinned.forward.choice().unwrap().unwrap().cpu,
            CpuChoice::Cpu(3)
        );
        for (bad, why) in [
            (
                "[forward]\ninline = \"10.9.0.1/24\"\ncpu = \"fast\"\n",
                "auto, off or a CPU number",
            ),
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

    #[test]
    fn interface_choice_is_written_to_the_config() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join(CONFIG_FILE),
            "http = \"127.0.0.1:1\"\n[capture]\nsynthetic = 5\n",
        )
        .unwrap();
        write_capture_interface(d.path(), "eth9").unwrap();
        let c = FileConfig::load(d.path()).unwrap();
        assert_eq!(c.capture.interface.as_deref(), Some("eth9"));
        assert_eq!(c.capture.synthetic, None);
        assert_eq!(c.http.as_deref(), Some("127.0.0.1:1"));
    }
}
