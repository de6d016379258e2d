//! Alerts: the appliance tells a webhook and/or a syslog server when something needs a
//! person, once when a condition starts and once when it ends (the recovery).
//!
//! ```toml
//! [alerts]
//! webhook = "https://hooks.example/wirecap"   # JSON POST, retried with backoff
//! syslog = "udp://10.0.0.5:514"               # RFC 5424, udp:// or tcp:// (RFC 6587 framing)
//! drops_per_minute = 0      # more capture drops than this in the last minute alert
//! disk_percent = 95         # the data file system fuller than this alerts
//! cert_days = 14            # an HTTPS certificate ending within this many days alerts
//! ```
//!
//! | condition | fires when | recovers when |
//! |---|---|---|
//! | `drops` | drops (kernel, queue, write) in the last 60 s exceed `drops_per_minute` | they no longer do |
//! | `link` | the capture interface's link is down, or the interface is gone | it is up again |
//! | `capture` | a capture ended without being stopped (its source's threads ended: not a replay reaching its end) | a capture starts again |
//! | `disk` | the writer found the disk full, retention cannot get under its budget, or the file system is fuller than `disk_percent` | none of these holds |
//! | `certificate` | the HTTPS certificate ends within `cert_days` (or has ended) | it is replaced |
//!
//! The server calls [`Alerter::observe`] once a second with an [`Observation`] (what the
//! engine, retention and the certificate say); a condition's change queues one event,
//! which a thread of its own delivers to every target, so a slow receiver never holds up
//! the tick. A webhook that fails (no answer, or not 2xx) is retried after 1, 2, 4 and 8 s;
//! TCP syslog likewise; UDP syslog is sent once. The last deliveries are kept for the
//! Config page. This module speaks HTTP as a client only (`ureq`), never as a server.

use std::collections::{HashMap, VecDeque};
use std::io::Write as _;
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Default of `drops_per_minute`: any drop alerts.
pub const DEFAULT_DROPS_PER_MINUTE: u64 = 0;
/// Default of `disk_percent`.
pub const DEFAULT_DISK_PERCENT: u8 = 95;
/// Default of `cert_days`.
pub const DEFAULT_CERT_DAYS: u32 = 14;
/// Waits between the attempts of a delivery (after the first).
pub const RETRY_AFTER: [Duration; 4] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
];
/// How long one attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Deliveries kept for the Config page.
const RECENT: usize = 50;
/// Events waiting for delivery at most (more are dropped, and logged).
const QUEUE: usize = 256;

/// `[alerts]` in `wirecap.toml`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// `http://` or `https://` URL: each event is POSTed there as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// `udp://HOST:PORT` or `tcp://HOST:PORT`: each event as an RFC 5424 message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syslog: Option<String>,
    /// More capture drops than this in the last minute alert (default 0: any drop).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drops_per_minute: Option<u64>,
    /// The data file system fuller than this percentage alerts (default 95).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_percent: Option<u8>,
    /// An HTTPS certificate that ends within this many days alerts (default 14).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_days: Option<u32>,
}

/// Where syslog messages go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyslogTarget {
    Udp(String),
    Tcp(String),
}

impl AlertsConfig {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// Checks the values; `Err((key, why))`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if let Some(w) = &self.webhook {
            let rest = w
                .strip_prefix("http://")
                .or_else(|| w.strip_prefix("https://"));
            if rest.is_none_or(|r| {
                r.is_empty() || r.starts_with('/') || r.contains(char::is_whitespace)
            }) {
                return Err((
                    "webhook",
                    format!("{w:?} is not a URL: give http://HOST[:PORT]/PATH or https://…"),
                ));
            }
        }
        if self.syslog.is_some() {
            self.syslog_target().map_err(|why| ("syslog", why))?;
        }
        if let Some(p) = self.disk_percent
            && !(1..=100).contains(&p)
        {
            return Err(("disk_percent", format!("{p}: give 1 to 100")));
        }
        Ok(())
    }

    /// The syslog target, checked.
    pub fn syslog_target(&self) -> Result<Option<SyslogTarget>, String> {
        let Some(s) = &self.syslog else {
            return Ok(None);
        };
        let bad = || format!("{s:?}: give udp://HOST:PORT or tcp://HOST:PORT");
        let (make, addr): (fn(String) -> SyslogTarget, &str) =
            if let Some(a) = s.strip_prefix("udp://") {
                (SyslogTarget::Udp, a)
            } else if let Some(a) = s.strip_prefix("tcp://") {
                (SyslogTarget::Tcp, a)
            } else {
                return Err(bad());
            };
        let addr = addr.trim_end_matches('/');
        if addr.starts_with(':') {
            return Err(bad());
        }
        crate::config::check_listen_addr(addr).map_err(|_| bad())?;
        Ok(Some(make(addr.to_owned())))
    }

    fn drops_per_minute(&self) -> u64 {
        self.drops_per_minute.unwrap_or(DEFAULT_DROPS_PER_MINUTE)
    }
    fn disk_percent(&self) -> u8 {
        self.disk_percent.unwrap_or(DEFAULT_DISK_PERCENT)
    }
    fn cert_days(&self) -> u32 {
        self.cert_days.unwrap_or(DEFAULT_CERT_DAYS)
    }
}

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Condition {
    Drops,
    Link,
    Capture,
    Disk,
    Certificate,
    /// Sent on request (`POST /api/v1/alerts/test`), to check the targets.
    Test,
}

impl Condition {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Drops => "drops",
            Self::Link => "link",
            Self::Capture => "capture",
            Self::Disk => "disk",
            Self::Certificate => "certificate",
            Self::Test => "test",
        }
    }
}

/// An alert starting, ending, or a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Alert,
    Recovered,
    Test,
}

/// One event, as the webhook receives it (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// The appliance's hostname.
    pub appliance: String,
    pub condition: Condition,
    pub state: State,
    pub message: String,
    /// RFC 3339.
    pub at: String,
    pub at_ns: u64,
}

/// What the server sees now, once a second.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observation {
    /// Packets dropped by the capture since the server started (kernel, queue, write).
    pub drops_total: u64,
    /// The capture interface and whether its link is up (`None`: no interface).
    pub link: Option<(String, bool)>,
    /// Why the last capture ended by itself, when it did.
    pub capture_failure: Option<String>,
    /// The writer found the disk full.
    pub disk_full: bool,
    /// Retention's warning or error.
    pub retention_problem: Option<String>,
    /// Used and total bytes of the data file system.
    pub disk_space: Option<(u64, u64)>,
    /// The HTTPS certificate and its end (Unix seconds).
    pub certificate: Option<(PathBuf, i64)>,
}

/// One delivery of an event to one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Delivery {
    pub at: String,
    pub condition: Condition,
    pub state: State,
    /// `webhook URL` or `syslog udp://…`.
    pub target: String,
    pub ok: bool,
    /// Attempts made.
    pub attempts: u32,
    /// The last failure, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A condition in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Active {
    pub condition: Condition,
    pub message: String,
    pub since: String,
}

/// The conditions' state, without any delivery: what [`Alerter::observe`] decides.
#[derive(Debug, Default)]
pub struct Tracker {
    active: HashMap<Condition, (String, u64)>,
    /// (second, drops so far), the last minute of them.
    drops: VecDeque<(u64, u64)>,
}

/// Days from now to `end` (Unix seconds), rounded down.
fn days_left(end: i64, now_s: i64) -> i64 {
    (end - now_s).div_euclid(86_400)
}

impl Tracker {
    /// The events that `obs` at `now_ns` causes under `cfg`: each condition alerts once
    /// when it starts and recovers once when it ends.
    pub fn step(
        &mut self,
        cfg: &AlertsConfig,
        obs: &Observation,
        now_ns: u64,
    ) -> Vec<(Condition, State, String)> {
        let now_s = now_ns / 1_000_000_000;
        self.drops.push_back((now_s, obs.drops_total));
        while self.drops.front().is_some_and(|&(t, _)| t + 60 < now_s) {
            self.drops.pop_front();
        }
        let in_minute = obs
            .drops_total
            .saturating_sub(self.drops.front().map_or(obs.drops_total, |d| d.1));
        let mut now: Vec<(Condition, Option<String>, String)> = Vec::new();
        let limit = cfg.drops_per_minute();
        now.push((
            Condition::Drops,
            (in_minute > limit).then(|| {
                format!(
                    "capture dropped {in_minute} packets in the last minute (alert above {limit})"
                )
            }),
            format!("capture drops back to at most {limit} a minute"),
        ));
        if let Some((name, up)) = &obs.link {
            now.push((
                Condition::Link,
                (!up).then(|| format!("link of capture interface {name} is down")),
                format!("link of capture interface {name} is up"),
            ));
        }
        now.push((
            Condition::Capture,
            obs.capture_failure
                .as_ref()
                .map(|why| format!("capture stopped unexpectedly: {why}")),
            "capture running again".into(),
        ));
        let pct = cfg.disk_percent();
        let disk = if obs.disk_full {
            Some("the disk is full: the capture drops what it cannot write".to_owned())
        } else if let Some(p) = &obs.retention_problem {
            Some(format!("retention: {p}"))
        } else {
            obs.disk_space.and_then(|(used, total)| {
                let used_pct = used.saturating_mul(100) / total.max(1);
                (used_pct > u64::from(pct))
                    .then(|| format!("data file system {used_pct}% full (alert above {pct}%)"))
            })
        };
        now.push((
            Condition::Disk,
            disk,
            "disk and retention back to normal".into(),
        ));
        if let Some((path, end)) = &obs.certificate {
            let left = days_left(*end, now_s as i64);
            let within = cfg.cert_days();
            let when =
                wirecap_store::timefmt::rfc3339(u64::try_from(*end).unwrap_or(0) * 1_000_000_000);
            now.push((
                Condition::Certificate,
                if left < 0 {
                    Some(format!("HTTPS certificate {} ended on {when}", path.display()))
                } else {
                    (left < i64::from(within)).then(|| {
                        format!(
                            "HTTPS certificate {} ends in {left} days, on {when} (alert within {within} days)",
                            path.display()
                        )
                    })
                },
                format!("HTTPS certificate {} is valid until {when}", path.display()),
            ));
        }
        let mut events = Vec::new();
        for (c, firing, recovery) in now {
            match (firing, self.active.contains_key(&c)) {
                (Some(m), false) => {
                    self.active.insert(c, (m.clone(), now_ns));
                    events.push((c, State::Alert, m));
                }
                (None, true) => {
                    self.active.remove(&c);
                    events.push((c, State::Recovered, recovery));
                }
                _ => {}
            }
        }
        // A condition no longer observed at all (no interface, no certificate) ends too.
        let observed = |c: &Condition| match c {
            Condition::Link => obs.link.is_some(),
            Condition::Certificate => obs.certificate.is_some(),
            _ => true,
        };
        let gone: Vec<Condition> = self
            .active
            .keys()
            .copied()
            .filter(|c| !observed(c))
            .collect();
        for c in gone {
            self.active.remove(&c);
            events.push((
                c,
                State::Recovered,
                format!("{} no longer watched", c.as_str()),
            ));
        }
        events
    }

    /// The conditions in force.
    pub fn active(&self) -> Vec<Active> {
        let mut v: Vec<Active> = self
            .active
            .iter()
            .map(|(c, (m, since))| Active {
                condition: *c,
                message: m.clone(),
                since: wirecap_store::timefmt::rfc3339(*since),
            })
            .collect();
        v.sort_by_key(|a| a.condition.as_str());
        v
    }
}

/// RFC 5424: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`, facility daemon (3),
/// severity warning for an alert, notice for a recovery or a test.
pub fn syslog_line(e: &Event) -> String {
    let severity = match e.state {
        State::Alert => 4,
        State::Recovered | State::Test => 5,
    };
    let host: String = e
        .appliance
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect();
    let host = if host.is_empty() { "-".into() } else { host };
    let state = match e.state {
        State::Alert => "ALERT",
        State::Recovered => "RECOVERED",
        State::Test => "TEST",
    };
    format!(
        "<{}>1 {} {host} wirecap {} {} - {state} {}: {}",
        3 * 8 + severity,
        e.at,
        std::process::id(),
        e.condition.as_str(),
        e.condition.as_str(),
        e.message
    )
}

fn webhook_once(url: &str, body: &str) -> Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(ATTEMPT_TIMEOUT))
        .build()
        .into();
    let r = agent
        .post(url)
        .header("Content-Type", "application/json")
        .header("User-Agent", concat!("wirecap/", env!("CARGO_PKG_VERSION")))
        .send(body)
        .map_err(|e| e.to_string())?;
    let s = r.status().as_u16();
    if (200..300).contains(&s) {
        Ok(())
    } else {
        Err(format!("answered HTTP {s}"))
    }
}

fn syslog_once(target: &SyslogTarget, line: &str) -> Result<(), String> {
    let resolve = |a: &str| {
        a.to_socket_addrs()
            .map_err(|e| format!("{a}: {e}"))?
            .next()
            .ok_or_else(|| format!("{a}: no address"))
    };
    match target {
        SyslogTarget::Udp(a) => {
            let to = resolve(a)?;
            let bind = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
            let s = UdpSocket::bind(bind).map_err(|e| e.to_string())?;
            s.send_to(line.as_bytes(), to).map_err(|e| e.to_string())?;
            Ok(())
        }
        SyslogTarget::Tcp(a) => {
            let to = resolve(a)?;
            let mut s =
                TcpStream::connect_timeout(&to, ATTEMPT_TIMEOUT).map_err(|e| e.to_string())?;
            s.set_write_timeout(Some(ATTEMPT_TIMEOUT))
                .map_err(|e| e.to_string())?;
            // RFC 6587 octet counting: safe whatever the message holds.
            s.write_all(format!("{} {line}", line.len()).as_bytes())
                .map_err(|e| e.to_string())
        }
    }
}

/// Delivers `e` to every target of `cfg`; `retries` waits between attempts.
fn deliver(cfg: &AlertsConfig, e: &Event, retries: &[Duration]) -> Vec<Delivery> {
    let mut out = Vec::new();
    let mut attempt = |target: String,
                       once: &dyn Fn() -> Result<(), String>,
                       retries: &[Duration]| {
        let mut n = 0;
        let mut err = None;
        for wait in std::iter::once(&Duration::ZERO).chain(retries) {
            std::thread::sleep(*wait);
            n += 1;
            match once() {
                Ok(()) => {
                    err = None;
                    break;
                }
                Err(why) => err = Some(why),
            }
        }
        if let Some(why) = &err {
            tracing::warn!(%target, condition = e.condition.as_str(), attempts = n, "alert not delivered: {why}");
        }
        out.push(Delivery {
            at: e.at.clone(),
            condition: e.condition,
            state: e.state,
            target,
            ok: err.is_none(),
            attempts: n,
            error: err,
        });
    };
    if let Some(url) = &cfg.webhook {
        let body = serde_json::to_string(e).unwrap_or_default();
        attempt(
            format!("webhook {url}"),
            &|| webhook_once(url, &body),
            retries,
        );
    }
    if let Ok(Some(t)) = cfg.syslog_target() {
        let line = syslog_line(e);
        let name = format!("syslog {}", cfg.syslog.as_deref().unwrap_or_default());
        // A datagram has no answer to retry on.
        let r: &[Duration] = if matches!(t, SyslogTarget::Udp(_)) {
            &[]
        } else {
            retries
        };
        attempt(name, &|| syslog_once(&t, &line), r);
    }
    out
}

/// The end (Unix seconds) of the first certificate in a PEM file: its `notAfter`.
pub fn certificate_end(pem: &str) -> Option<i64> {
    use base64::Engine as _;
    let b64: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version?, serial, signature,
    // issuer, validity SEQUENCE { notBefore, notAfter }, … }, … }
    let (_, cert, _) = der_item(&der)?;
    let (_, mut tbs, _) = der_item(cert)?;
    let (tag, _, rest) = der_item(tbs)?;
    if tag == 0xa0 {
        tbs = rest; // the version
    }
    for _ in 0..3 {
        let (_, _, rest) = der_item(tbs)?; // serial, signature algorithm, issuer
        tbs = rest;
    }
    let (_, validity, _) = der_item(tbs)?;
    let (_, _, rest) = der_item(validity)?;
    let (tag, t, _) = der_item(rest)?;
    let t = std::str::from_utf8(t).ok()?;
    let (year, rest) = match tag {
        0x17 => {
            let yy: i16 = t.get(..2)?.parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, t.get(2..)?)
        }
        0x18 => (t.get(..4)?.parse().ok()?, t.get(4..)?),
        _ => return None,
    };
    let n = |r: std::ops::Range<usize>| rest.get(r)?.parse::<i8>().ok();
    let dt = jiff::civil::DateTime::new(year, n(0..2)?, n(2..4)?, n(4..6)?, n(6..8)?, n(8..10)?, 0)
        .ok()?;
    Some(
        dt.to_zoned(jiff::tz::TimeZone::UTC)
            .ok()?
            .timestamp()
            .as_second(),
    )
}

/// One DER item: (tag, contents, what follows).
fn der_item(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *b.first()?;
    let first = *b.get(1)?;
    let (len, head) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | usize::from(*b.get(2 + i)?);
        }
        (len, 2 + n)
    };
    let end = head.checked_add(len)?;
    Some((tag, b.get(head..end)?, b.get(end..)?))
}

struct Job {
    cfg: AlertsConfig,
    event: Event,
}

/// Watches the conditions and delivers their events (see the module's text).
pub struct Alerter {
    cfg: Mutex<AlertsConfig>,
    hostname: Mutex<String>,
    tracker: Mutex<Tracker>,
    recent: std::sync::Arc<Mutex<VecDeque<Delivery>>>,
    queue: Mutex<Option<SyncSender<Job>>>,
    certificate: Mutex<Option<PathBuf>>,
    /// The certificate's end, cached by the file's modification time.
    cert_end: Mutex<Option<(SystemTime, i64)>>,
    retries: Vec<Duration>,
}

impl std::fmt::Debug for Alerter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerter").finish_non_exhaustive()
    }
}

impl Default for Alerter {
    fn default() -> Self {
        Self::new(AlertsConfig::default())
    }
}

impl Alerter {
    pub fn new(cfg: AlertsConfig) -> Self {
        Self::with_retries(cfg, RETRY_AFTER.to_vec())
    }

    /// With other waits between attempts (tests).
    pub fn with_retries(cfg: AlertsConfig, retries: Vec<Duration>) -> Self {
        Self {
            cfg: Mutex::new(cfg),
            hostname: Mutex::new(crate::hostname::os_hostname()),
            tracker: Mutex::new(Tracker::default()),
            recent: Default::default(),
            queue: Mutex::new(None),
            certificate: Mutex::new(None),
            cert_end: Mutex::new(None),
            retries,
        }
    }

    pub fn config(&self) -> AlertsConfig {
        self.cfg.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// New settings (from `wirecap.toml`); conditions in force stay in force.
    pub fn set_config(&self, cfg: AlertsConfig) {
        let mut c = self.cfg.lock().unwrap_or_else(|e| e.into_inner());
        if *c != cfg {
            tracing::info!(webhook = ?cfg.webhook, syslog = ?cfg.syslog, "alert settings");
            *c = cfg;
        }
    }

    pub fn set_hostname(&self, h: &str) {
        *self.hostname.lock().unwrap_or_else(|e| e.into_inner()) = h.to_owned();
    }

    /// Watch this HTTPS certificate (PEM) for its end.
    pub fn watch_certificate(&self, pem: &Path) {
        *self.certificate.lock().unwrap_or_else(|e| e.into_inner()) = Some(pem.to_path_buf());
    }

    /// The watched certificate and its end, read again when the file changes.
    pub fn certificate(&self) -> Option<(PathBuf, i64)> {
        let path = self
            .certificate
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()?;
        let mtime = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
        let mut cache = self.cert_end.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((m, end)) = *cache
            && m == mtime
        {
            return Some((path, end));
        }
        let end = certificate_end(&std::fs::read_to_string(&path).ok()?)?;
        *cache = Some((mtime, end));
        Some((path, end))
    }

    fn event(&self, condition: Condition, state: State, message: String, now_ns: u64) -> Event {
        Event {
            appliance: self
                .hostname
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            condition,
            state,
            message,
            at: wirecap_store::timefmt::rfc3339(now_ns),
            at_ns: now_ns,
        }
    }

    /// One second's look: queues the events `obs` causes. Cheap; never waits for a
    /// delivery.
    pub fn observe(&self, obs: &Observation) {
        let now_ns = wirecap_store::now_ns();
        let cfg = self.config();
        let events = self
            .tracker
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .step(&cfg, obs, now_ns);
        for (c, s, m) in events {
            match s {
                State::Alert => tracing::warn!(condition = c.as_str(), "alert: {m}"),
                _ => tracing::info!(condition = c.as_str(), "alert over: {m}"),
            }
            if cfg.webhook.is_none() && cfg.syslog.is_none() {
                continue;
            }
            let event = self.event(c, s, m, now_ns);
            self.enqueue(Job {
                cfg: cfg.clone(),
                event,
            });
        }
    }

    fn enqueue(&self, job: Job) {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let tx = q.get_or_insert_with(|| {
            let (tx, rx) = sync_channel::<Job>(QUEUE);
            let recent = self.recent.clone();
            let retries = self.retries.clone();
            let spawned = std::thread::Builder::new()
                .name("wirecap-alerts".into())
                .spawn(move || deliver_all(&rx, &recent, &retries));
            if let Err(e) = spawned {
                tracing::error!("cannot start the alert sender: {e}");
            }
            tx
        });
        match tx.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(j)) => tracing::error!(
                condition = j.event.condition.as_str(),
                "alert not sent: {QUEUE} alerts wait for delivery already"
            ),
            Err(TrySendError::Disconnected(_)) => {
                *q = None;
                tracing::error!("alert not sent: the sender has stopped");
            }
        }
    }

    /// Sends a test event to every target now, once each (no retries); blocking.
    pub fn send_test(&self) -> Vec<Delivery> {
        let cfg = self.config();
        let e = self.event(
            Condition::Test,
            State::Test,
            "test alert from wirecap: this target receives the appliance's alerts".into(),
            wirecap_store::now_ns(),
        );
        let out = deliver(&cfg, &e, &[]);
        remember(&self.recent, &out);
        out
    }

    /// The conditions in force.
    pub fn active(&self) -> Vec<Active> {
        self.tracker
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .active()
    }

    /// The last deliveries, newest first.
    pub fn recent(&self) -> Vec<Delivery> {
        self.recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .rev()
            .cloned()
            .collect()
    }
}

fn remember(recent: &Mutex<VecDeque<Delivery>>, d: &[Delivery]) {
    let mut r = recent.lock().unwrap_or_else(|e| e.into_inner());
    for x in d {
        if r.len() >= RECENT {
            r.pop_front();
        }
        r.push_back(x.clone());
    }
}

fn deliver_all(rx: &Receiver<Job>, recent: &Mutex<VecDeque<Delivery>>, retries: &[Duration]) {
    while let Ok(job) = rx.recv() {
        let d = deliver(&job.cfg, &job.event, retries);
        remember(recent, &d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    const S: u64 = 1_000_000_000;

    #[test]
    fn each_condition_alerts_once_and_recovers_once() {
        let cfg = AlertsConfig {
            drops_per_minute: Some(10),
            cert_days: Some(30),
            ..Default::default()
        };
        let mut t = Tracker::default();
        let mut obs = Observation {
            link: Some(("eth1".into(), true)),
            certificate: Some(("/c.pem".into(), 1_000_000 + 60 * 86_400)),
            disk_space: Some((10, 100)),
            ..Default::default()
        };
        let at = |s: u64| (1_000_000 + s) * S;
        assert!(t.step(&cfg, &obs, at(0)).is_empty());
        // Drops: 11 within a minute alert, once; recovered when the minute has passed.
        obs.drops_total = 5;
        assert!(t.step(&cfg, &obs, at(1)).is_empty());
        obs.drops_total = 11;
        let e = t.step(&cfg, &obs, at(2));
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!((e[0].0, e[0].1), (Condition::Drops, State::Alert));
        assert!(e[0].2.contains("dropped 11 packets"), "{}", e[0].2);
        obs.drops_total = 15;
        assert!(t.step(&cfg, &obs, at(3)).is_empty(), "once per condition");
        let e = t.step(&cfg, &obs, at(70));
        assert_eq!(
            (e[0].0, e[0].1),
            (Condition::Drops, State::Recovered),
            "{e:?}"
        );
        // Link down, then up.
        obs.link = Some(("eth1".into(), false));
        let e = t.step(&cfg, &obs, at(71));
        assert_eq!(
            e,
            vec![(
                Condition::Link,
                State::Alert,
                "link of capture interface eth1 is down".into()
            )]
        );
        assert_eq!(t.active().len(), 1);
        assert!(t.step(&cfg, &obs, at(72)).is_empty());
        obs.link = Some(("eth1".into(), true));
        let e = t.step(&cfg, &obs, at(73));
        assert_eq!((e[0].0, e[0].1), (Condition::Link, State::Recovered));
        // A capture that ended by itself, until one runs again.
        obs.capture_failure = Some("interface eth1 went away".into());
        let e = t.step(&cfg, &obs, at(74));
        assert!(
            e[0].2
                .contains("stopped unexpectedly: interface eth1 went away"),
            "{e:?}"
        );
        obs.capture_failure = None;
        assert_eq!(t.step(&cfg, &obs, at(75))[0].1, State::Recovered);
        // Disk: over the percentage, the disk full, retention's warning.
        obs.disk_space = Some((96, 100));
        let e = t.step(&cfg, &obs, at(76));
        assert!(e[0].2.contains("96% full"), "{e:?}");
        obs.disk_space = Some((10, 100));
        obs.retention_problem = Some("over budget, nothing left to delete".into());
        assert!(
            t.step(&cfg, &obs, at(77)).is_empty(),
            "still the disk condition"
        );
        obs.retention_problem = None;
        assert_eq!(t.step(&cfg, &obs, at(78))[0].1, State::Recovered);
        // The certificate: 60 days left is fine with 30; within 30 days alerts.
        obs.certificate = Some(("/c.pem".into(), 1_000_000 + 20 * 86_400));
        let e = t.step(&cfg, &obs, at(79));
        assert!(e[0].2.contains("ends in 19 days"), "{e:?}");
        obs.certificate = Some(("/c.pem".into(), 1_000_000 + 400 * 86_400));
        assert_eq!(t.step(&cfg, &obs, at(80))[0].1, State::Recovered);
        assert!(t.active().is_empty());
    }

    #[test]
    fn config_is_checked() {
        let ok = AlertsConfig {
            webhook: Some("http://127.0.0.1:9/x".into()),
            syslog: Some("tcp://logs.example:514".into()),
            ..Default::default()
        };
        ok.validate().unwrap();
        assert_eq!(
            ok.syslog_target().unwrap(),
            Some(SyslogTarget::Tcp("logs.example:514".into()))
        );
        for (w, s) in [
            (Some("ftp://x"), None),
            (Some("http://"), None),
            (None, Some("udp://nohost")),
            (None, Some("10.0.0.1:514")),
            (None, Some("udp://:514")),
        ] {
            let c = AlertsConfig {
                webhook: w.map(Into::into),
                syslog: s.map(Into::into),
                ..Default::default()
            };
            assert!(c.validate().is_err(), "{w:?} {s:?}");
        }
    }

    #[test]
    fn syslog_lines_are_rfc5424() {
        let e = Event {
            appliance: "probe 1".into(),
            condition: Condition::Link,
            state: State::Alert,
            message: "link of capture interface eth1 is down".into(),
            at: "2026-01-02T03:04:05.5Z".into(),
            at_ns: 0,
        };
        let l = syslog_line(&e);
        let want = format!(
            "<28>1 2026-01-02T03:04:05.5Z probe1 wirecap {} link - ALERT link: link of capture interface eth1 is down",
            std::process::id()
        );
        assert_eq!(l, want);
    }

    /// A webhook that fails first is retried; TCP and UDP syslog receive the event; a test
    /// reaches every target. Receivers on 127.0.0.1.
    #[test]
    fn events_reach_a_local_webhook_and_syslog() {
        let http = TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let cfg = AlertsConfig {
            webhook: Some(format!("http://{}/hook", http.local_addr().unwrap())),
            syslog: Some(format!("tcp://{}", tcp.local_addr().unwrap())),
            ..Default::default()
        };
        // The webhook answers 503 once, then 204; it returns the bodies it got.
        let hook = std::thread::spawn(move || {
            let mut bodies = Vec::new();
            for i in 0..2 {
                let (s, _) = http.accept().unwrap();
                let mut r = BufReader::new(s);
                let mut len = 0;
                loop {
                    let mut l = String::new();
                    r.read_line(&mut l).unwrap();
                    if let Some(v) = l.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                    if l == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; len];
                r.read_exact(&mut body).unwrap();
                bodies.push(String::from_utf8(body).unwrap());
                let answer = if i == 0 { "503 Busy" } else { "204 No Content" };
                r.get_mut()
                    .write_all(
                        format!(
                            "HTTP/1.1 {answer}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        )
                        .as_bytes(),
                    )
                    .unwrap();
            }
            bodies
        });
        let syslog = std::thread::spawn(move || {
            let (mut s, _) = tcp.accept().unwrap();
            let mut got = String::new();
            s.read_to_string(&mut got).unwrap();
            got
        });
        let a = Alerter::with_retries(cfg.clone(), vec![Duration::from_millis(50); 4]);
        a.set_hostname("probe-1");
        a.observe(&Observation {
            capture_failure: Some("source ended".into()),
            ..Default::default()
        });
        let bodies = hook.join().unwrap();
        assert_eq!(bodies.len(), 2, "retried once");
        let e: Event = serde_json::from_str(&bodies[1]).unwrap();
        assert_eq!((e.condition, e.state), (Condition::Capture, State::Alert));
        assert_eq!(e.appliance, "probe-1");
        let line = syslog.join().unwrap();
        let (len, msg) = line.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), msg.len(), "octet counting");
        assert!(
            msg.starts_with("<28>1 ")
                && msg.contains(" wirecap ")
                && msg.contains("ALERT capture: capture stopped unexpectedly"),
            "{msg}"
        );
        // The deliveries are kept (the sender records after both targets).
        for _ in 0..100 {
            if a.recent().len() == 2 {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let recent = a.recent();
        assert_eq!(recent.len(), 2, "{recent:?}");
        assert!(recent.iter().all(|d| d.ok), "{recent:?}");
        assert!(
            recent
                .iter()
                .any(|d| d.attempts == 2 && d.target.starts_with("webhook"))
        );

        // A test over UDP.
        a.set_config(AlertsConfig {
            syslog: Some(format!("udp://{}", udp.local_addr().unwrap())),
            ..Default::default()
        });
        let d = a.send_test();
        assert!(d.len() == 1 && d[0].ok, "{d:?}");
        let mut buf = [0u8; 2048];
        let n = udp.recv(&mut buf).unwrap();
        let msg = std::str::from_utf8(&buf[..n]).unwrap();
        assert!(
            msg.starts_with("<29>1 ") && msg.contains("TEST test: test alert"),
            "{msg}"
        );
    }

    #[test]
    fn certificate_ends_are_read_from_pem() {
        // A self-signed certificate (`openssl req -x509 -days 1`); its end as openssl prints it.
        let pem = include_str!("../tests/data/cert.pem");
        let end = certificate_end(pem).expect("notAfter");
        let want = jiff::Timestamp::from_second(end).unwrap().to_string();
        assert_eq!(want, include_str!("../tests/data/cert.not_after").trim());
        assert_eq!(certificate_end("no pem here"), None);
    }
}
