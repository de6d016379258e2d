//! The capture engine behind `/sysmaster/*`: one source, at most one capture at a time,
//! counters that outlive a capture (as the appliance's status page shows them).
//!
//! Starting and stopping block (sockets, threads, sealing a stream): callers run them on
//! a blocking thread. Status is read from atomics and never waits for a start or stop.
//!
//! Set up live: the capture interface ([`Engine::switch_interface`]), the capture
//! settings ([`Engine::set_capture_settings`]) and forwarding ([`Engine::set_forwarding`])
//! change while the server runs. A running capture cannot change its source or its
//! socket under a stream (a stream records one source, one snaplen, one filter), so it is
//! sealed and a new one started under the same name at once (`NAME-2_…` within the same
//! minute); [`Engine::successor`] tells a schedule which stream its capture went on in.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wirecap_capture::cli::SourceSpec;
use wirecap_capture::link::{LinkWatch, Sysfs};
use wirecap_capture::replay::{ReplayConfig, ReplayTimestamps, Speed};
use wirecap_capture::source::{LINKTYPE_ETHERNET, Source};
use wirecap_capture::store_sink::{SinkOptions, StoreSink};
use wirecap_capture::{Capture, Counters, PipelineConfig, Status, Summarizer};
use wirecap_forward::afpacket::ForwarderHandle;
use wirecap_store::Store;

use crate::capture_settings::{CaptureSettings, CaptureSettingsState};
use crate::config::SourceChoice;
use crate::manual::StatusFigures;

/// Captures started under one name within one minute get stored names `NAME`,
/// `NAME-2`, … up to `NAME-9`; the tenth is refused as existing.
pub const MAX_SAME_MINUTE: u32 = 9;

/// Why a capture could not be started or stopped.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EngineError {
    #[error("capture already running [{0}]")]
    AlreadyRunning(String),
    #[error("no capture running")]
    NotRunning,
    #[error("{0}")]
    InvalidName(String),
    #[error("{0}")]
    StreamExists(String),
    #[error("no capture interface: {0}")]
    NoInterface(String),
    #[error("no permission to capture on {0}: run as root or grant CAP_NET_RAW")]
    NoPermission(String),
    #[error("capture failed: {0}")]
    Failed(String),
    /// No room for a capture (issue 17.4: one "successfully started" and dropped 100%).
    #[error("disk full: {0}")]
    DiskFull(String),
    /// The change conflicts with what runs (a capture, the forwarder).
    #[error("{0}")]
    Busy(String),
    /// The change itself is wrong.
    #[error("{0}")]
    Invalid(String),
}

/// Free space below which a capture is not started: less than this holds seconds of a
/// busy link, and the writer would drop everything after.
pub const MIN_FREE_TO_START: u64 = 16 << 20;

struct Running {
    capture: Capture,
    base: String,
    stored: String,
    started_ns: u64,
    /// The source and settings it was started with: what is in force.
    source: SourceChoice,
    settings: CaptureSettings,
}

/// What the engine shows about the current or last capture.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureInfo {
    pub active: bool,
    /// The name given to `capture_start`.
    pub base: Option<String>,
    /// The stored stream name (base + `_YYYYMMDD_HHMM`).
    pub stored: Option<String>,
    pub started_ns: Option<u64>,
}

/// One source, its counters, and the capture currently running.
pub struct Engine {
    store: Store,
    choice: Mutex<SourceChoice>,
    capture_settings: Mutex<CaptureSettings>,
    /// A capture sealed and started again by a live change: (old stored name, new).
    successors: Mutex<Vec<(String, String)>>,
    counters: Arc<Counters>,
    pipeline: PipelineConfig,
    running: Mutex<Option<Running>>,
    info: Mutex<CaptureInfo>,
    link: Mutex<LinkWatch>,
    started: Instant,
    disk: Mutex<Option<(Instant, u64)>>,
    segment_bytes: std::sync::atomic::AtomicU64,
    /// The inline forwarder on the capture interface: while it runs, a capture records
    /// its packets (in its capture mode) instead of reading the interface itself.
    forward: Mutex<Option<Arc<ForwarderHandle>>>,
    /// The disk-full state last logged (said once when it starts and once when it ends).
    disk_full_logged: std::sync::atomic::AtomicBool,
    /// Why the last capture ended by itself, when it was not a replay reaching its end
    /// (cleared by the next start): the alerts' `capture` condition.
    unexpected_stop: Mutex<Option<String>>,
    /// The archive tier, when one is configured (`[archive]`, `--archive`).
    archive: std::sync::OnceLock<Arc<wirecap_archive::Archive>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("source", &self.source())
            .finish_non_exhaustive()
    }
}

/// Turns the configured choice into the capture crate's source description; an
/// interface gets the capture settings (filter, snaplen, threads, ring).
pub fn source_spec(
    choice: &SourceChoice,
    settings: &CaptureSettings,
) -> Result<SourceSpec, String> {
    Ok(match choice {
        SourceChoice::Interface(i) => SourceSpec::Interface {
            ring: settings.ring(i),
            threads: settings.threads,
        },
        SourceChoice::Replay { path, speed } => SourceSpec::Replay(ReplayConfig {
            path: path.clone(),
            speed: speed.parse::<Speed>()?,
            timestamps: ReplayTimestamps::Rebase,
        }),
        SourceChoice::Synthetic(pps) => SourceSpec::Synthetic {
            pps: (*pps).max(1),
            seed: 1,
        },
    })
}

impl Engine {
    pub fn new(store: Store, choice: SourceChoice) -> Result<Self, String> {
        source_spec(&choice, &CaptureSettings::default())?;
        let interface = match &choice {
            SourceChoice::Interface(i) => Some(i.clone()),
            _ => None,
        };
        Ok(Self {
            store,
            link: Mutex::new(LinkWatch::new(interface.unwrap_or_default())),
            choice: Mutex::new(choice),
            capture_settings: Mutex::new(CaptureSettings::default()),
            successors: Mutex::new(Vec::new()),
            counters: Arc::new(Counters::new()),
            // Summaries let filtered downloads of live captures skip chunks, as they do
            // for imports.
            pipeline: PipelineConfig {
                summarizer: Some(Summarizer(Arc::new(wirecap_query::FilterSummarizer))),
                ..PipelineConfig::default()
            },
            running: Mutex::new(None),
            info: Mutex::new(CaptureInfo::default()),
            started: Instant::now(),
            disk: Mutex::new(None),
            segment_bytes: std::sync::atomic::AtomicU64::new(
                PipelineConfig::default().segment_bytes,
            ),
            forward: Mutex::new(None),
            disk_full_logged: std::sync::atomic::AtomicBool::new(false),
            unexpected_stop: Mutex::new(None),
            archive: std::sync::OnceLock::new(),
        })
    }

    /// Hands the running forwarder to the engine: captures record what it forwards.
    pub fn set_forwarder(&mut self, f: ForwarderHandle) {
        *self.forward.get_mut().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(f));
    }

    /// The forwarder, when forwarding runs.
    pub fn forwarder(&self) -> Option<Arc<ForwarderHandle>> {
        self.forward
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether a capture is running now.
    pub fn capturing(&self) -> bool {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// A capture of the forwarder's records (its tap) into a new stream that says which
    /// capture mode it holds.
    fn start_forward_capture(
        &self,
        base: &str,
        f: &ForwarderHandle,
        pipeline: &PipelineConfig,
    ) -> Result<Capture, wirecap_capture::Error> {
        let settings = f.settings();
        let source = f.tap().open();
        let opts = SinkOptions {
            chunk_bytes: pipeline.chunk_bytes,
            direct_io: pipeline.direct_io,
            summarizer: pipeline.summarizer.clone(),
            segment_bytes: pipeline.segment_bytes,
        };
        let mut sink = StoreSink::create_with(
            &self.store,
            base,
            LINKTYPE_ETHERNET,
            source.snaplen(),
            source.describe(),
            &opts,
        )?;
        sink.set_attr("capture_mode", settings.mode.as_str())?;
        sink.set_attr("capture_ip", &settings.inline.to_string())?;
        let pairs: Vec<String> = settings.pairs.iter().map(ToString::to_string).collect();
        sink.set_attr("forward_pairs", &pairs.join(","))?;
        Capture::start_with(
            vec![Box::new(source)],
            Box::new(sink),
            pipeline,
            self.counters.clone(),
        )
    }

    /// Gives the engine its archive tier (once, at start-up).
    pub fn set_archive(&self, a: Arc<wirecap_archive::Archive>) {
        let _ = self.archive.set(a);
    }

    /// The archive tier, when one is configured.
    pub fn archive(&self) -> Option<&Arc<wirecap_archive::Archive>> {
        self.archive.get()
    }

    /// Deletes a stored stream; with an archive, its objects there too (queued: see
    /// `wirecap_archive::deletes`). Refused while it is being written. Blocking.
    pub fn delete_stream(&self, name: &str) -> Result<(), wirecap_store::Error> {
        match self.archive() {
            Some(a) => a.delete_stream(&self.store, name),
            None => self.store.delete_stream(name),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The configured source (what the next capture opens).
    pub fn source(&self) -> SourceChoice {
        self.choice
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The capture interface, when the source is one.
    pub fn interface(&self) -> Option<String> {
        match self.source() {
            SourceChoice::Interface(i) => Some(i),
            _ => None,
        }
    }

    /// A short description of the source: `interface eth0`, `synthetic 1000 pps`, ….
    pub fn describe_source(&self) -> String {
        if let Some(f) = self.forwarder() {
            let s = f.settings();
            return format!(
                "inline forwarder on interface {} (capture IP {}, capture mode {})",
                s.interface, s.inline, s.mode
            );
        }
        match &self.source() {
            SourceChoice::Interface(i) => format!("interface {i}"),
            SourceChoice::Replay { path, speed } => {
                format!("replay of {} at speed {speed}", path.display())
            }
            SourceChoice::Synthetic(pps) => format!("synthetic traffic at {pps} pps"),
        }
    }

    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    pub fn capture_info(&self) -> CaptureInfo {
        self.info.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Starts a capture into a new stream `base` + `_YYYYMMDD_HHMM`; when a stream of
    /// that name and minute exists, into `base-2`, `base-3`, … (up to
    /// [`MAX_SAME_MINUTE`]), as the manual's users restart captures under one name.
    /// Blocking.
    pub fn start(&self, base: &str) -> Result<CaptureInfo, EngineError> {
        if self.archive().is_some_and(|a| a.read_only()) {
            return Err(EngineError::NoInterface(
                "this node is read-only (--read-only): it serves the archive and captures nothing"
                    .into(),
            ));
        }
        wirecap_store::validate_base_name(base)
            .map_err(|e| EngineError::InvalidName(e.to_string()))?;
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = running.as_ref() {
            return Err(EngineError::AlreadyRunning(r.base.clone()));
        }
        self.start_locked(&mut running, base)
    }

    /// Starts a capture into `running`, which the caller holds locked and empty.
    fn start_locked(
        &self,
        running: &mut Option<Running>,
        base: &str,
    ) -> Result<CaptureInfo, EngineError> {
        let source = self.source();
        let settings = self.capture_settings();
        let spec = source_spec(&source, &settings).map_err(EngineError::NoInterface)?;
        if let Some((_, avail)) = crate::os::disk_space(self.store.dir())
            && avail < MIN_FREE_TO_START
        {
            let why = format!(
                "{} MiB free in {} (a capture needs at least {} MiB): free space or lower the retention budget",
                avail >> 20,
                self.store.dir().display(),
                MIN_FREE_TO_START >> 20
            );
            tracing::error!("capture not started: disk full: {why}");
            return Err(EngineError::DiskFull(why));
        }
        let pipeline = PipelineConfig {
            segment_bytes: self
                .segment_bytes
                .load(std::sync::atomic::Ordering::Relaxed),
            ..self.pipeline.clone()
        };
        let forward = self.forwarder();
        // A stream of this name and minute exists (a capture restarted within the
        // minute, by hand or by a schedule): `base-2`, `base-3`, … as its stored name.
        let mut candidate = base.to_owned();
        let mut n = 2;
        let capture = loop {
            let r = match &forward {
                Some(f) => self.start_forward_capture(&candidate, f, &pipeline),
                None => Capture::start(
                    &candidate,
                    &spec,
                    &self.store,
                    &pipeline,
                    self.counters.clone(),
                ),
            }
            .map_err(|e| self.classify(e));
            match r {
                Err(EngineError::StreamExists(_)) if n <= MAX_SAME_MINUTE => {
                    candidate = format!("{base}-{n}");
                    n += 1;
                }
                r => break r?,
            }
        };
        let started_ns = wirecap_store::now_ns();
        let stored = capture.name().to_owned();
        let info = CaptureInfo {
            active: true,
            base: Some(base.to_owned()),
            stored: Some(stored.clone()),
            started_ns: Some(started_ns),
        };
        *self.info.lock().unwrap_or_else(|e| e.into_inner()) = info.clone();
        *running = Some(Running {
            capture,
            base: base.to_owned(),
            stored,
            started_ns,
            source,
            settings,
        });
        tracing::info!(stream = %info.stored.as_deref().unwrap_or(""), source = %self.describe_source(), "capture started");
        *self
            .unexpected_stop
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
        Ok(info)
    }

    /// Seals the running capture, if any, and starts a new one under its name with what
    /// is configured now (source, settings, forwarding). Answers the new capture. When
    /// the new one cannot start, the old one stays sealed and the error says why.
    fn restart_running(&self, why: &str) -> Result<Option<CaptureInfo>, EngineError> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let Some(old) = running.take() else {
            return Ok(None);
        };
        let (base, stored) = (old.base.clone(), old.stored.clone());
        // A sealing error is logged by `seal`; the new capture starts regardless.
        let _ = self.seal(old);
        let info = self.start_locked(&mut running, &base).inspect_err(|e| {
            tracing::error!(sealed = %stored, "{why}: the capture was sealed and could not start again: {e}");
        })?;
        let new = info.stored.clone().unwrap_or_default();
        tracing::info!(sealed = %stored, stream = %new, "{why}: capture continues in a new stream");
        let mut s = self.successors.lock().unwrap_or_else(|e| e.into_inner());
        s.push((stored, new));
        // Only the latest few matter: a schedule looks its capture up within a second.
        let excess = s.len().saturating_sub(16);
        s.drain(..excess);
        Ok(Some(info))
    }

    /// The stream that capture `stored` went on in after a live change sealed it (the
    /// last of a chain), if it did.
    pub fn successor(&self, stored: &str) -> Option<String> {
        let s = self.successors.lock().unwrap_or_else(|e| e.into_inner());
        let mut cur = stored.to_owned();
        let mut found = None;
        while let Some((_, new)) = s.iter().find(|(old, _)| *old == cur) {
            cur.clone_from(new);
            found = Some(new.clone());
        }
        found
    }

    /// The capture settings the next capture starts with.
    pub fn capture_settings(&self) -> CaptureSettings {
        self.capture_settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The capture settings in force: the running capture's, else the next one's.
    pub fn capture_settings_state(&self) -> CaptureSettingsState {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        match running.as_ref() {
            Some(r) => r.settings.state(match &r.source {
                SourceChoice::Interface(i) if self.forwarder().is_none() => Some(i.as_str()),
                _ => None,
            }),
            None => {
                let i = self.interface().filter(|_| self.forwarder().is_none());
                self.capture_settings().state(i.as_deref())
            }
        }
    }

    /// Sets the capture settings; a running interface capture is sealed and started
    /// again with them at once. Answers the new capture, if one was restarted.
    pub fn set_capture_settings(
        &self,
        settings: CaptureSettings,
    ) -> Result<Option<CaptureInfo>, EngineError> {
        *self
            .capture_settings
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = settings;
        if self.interface().is_some() && self.forwarder().is_none() {
            self.restart_running("capture settings changed")
        } else {
            Ok(None)
        }
    }

    /// Captures from `interface` from now on: a running capture is sealed and a new one
    /// started on it at once; status, link state and charts follow. Refused while the
    /// forwarder runs (it lives on the capture interface: turn it off first).
    pub fn switch_interface(&self, interface: &str) -> Result<Option<CaptureInfo>, EngineError> {
        if let Some(f) = self.forwarder() {
            let on = f.settings().interface;
            if on != interface {
                return Err(EngineError::Busy(format!(
                    "forwarding runs on {on}: turn it off before capturing another interface"
                )));
            }
        }
        if wirecap_capture::ring::sys::if_index(interface).is_none() {
            return Err(EngineError::Invalid(format!(
                "{} does not exist",
                crate::short(interface)
            )));
        }
        let old = self.source();
        if old == SourceChoice::Interface(interface.to_owned()) {
            return Ok(None);
        }
        *self.choice.lock().unwrap_or_else(|e| e.into_inner()) =
            SourceChoice::Interface(interface.to_owned());
        *self.link.lock().unwrap_or_else(|e| e.into_inner()) = LinkWatch::new(interface.to_owned());
        self.observe_link();
        tracing::info!(%interface, "capture interface switched");
        match self.restart_running(&format!("capture interface switched to {interface}")) {
            Ok(r) => Ok(r),
            Err(e) => {
                // Keep what works: back to the old source, which the sealed capture used.
                *self.choice.lock().unwrap_or_else(|e| e.into_inner()) = old;
                Err(e)
            }
        }
    }

    /// Turns forwarding on (with `choice`, on the capture interface), changes it, or turns
    /// it off (`None`). A running capture changes what it records (the forwarder's
    /// packets, or the interface's), so it is sealed and started again at once when
    /// forwarding starts or stops.
    pub fn set_forwarding(
        &self,
        choice: Option<&crate::config::ForwardChoice>,
    ) -> Result<Option<CaptureInfo>, EngineError> {
        let current = self.forwarder();
        match (choice, current) {
            (None, None) => Ok(None),
            (None, Some(f)) => {
                *self.forward.lock().unwrap_or_else(|e| e.into_inner()) = None;
                let r = self.restart_running("forwarding turned off");
                f.stop();
                tracing::info!(interface = %f.settings().interface, "inline forwarder stopped");
                r
            }
            (Some(c), Some(f)) => {
                let cur = f.settings();
                if c.mode != cur.mode && self.capturing() {
                    return Err(EngineError::Busy(
                        "a capture is running: stop it before changing the capture mode (each stream records one mode)".into(),
                    ));
                }
                f.reconfigure(c.inline, c.pairs.clone(), c.mode)
                    .map_err(|e| EngineError::Invalid(e.to_string()))?;
                Ok(None)
            }
            (Some(c), None) => {
                let Some(interface) = self.interface() else {
                    return Err(EngineError::NoInterface(
                        "forwarding runs on the capture interface: choose one first (Config page, --interface or [capture] interface)".into(),
                    ));
                };
                let h = crate::forward::start(&interface, c)
                    .map_err(|e| self.classify_forward(&interface, e))?;
                *self.forward.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(h));
                self.restart_running("forwarding turned on")
            }
        }
    }

    fn classify_forward(
        &self,
        interface: &str,
        e: wirecap_forward::afpacket::OpenError,
    ) -> EngineError {
        match &e {
            wirecap_forward::afpacket::OpenError::Socket(s) if s.is_permission() => {
                EngineError::NoPermission(interface.to_owned())
            }
            _ => EngineError::Invalid(format!("inline forwarder: {e}")),
        }
    }

    fn classify(&self, e: wirecap_capture::Error) -> EngineError {
        use wirecap_capture::Error as E;
        let what = self.describe_source();
        match &e {
            E::Socket(s) if s.is_permission() => EngineError::NoPermission(s.interface.clone()),
            E::NoSuchInterface(i) => EngineError::NoInterface(format!("{i} does not exist")),
            E::AlreadyActive(_) => EngineError::AlreadyRunning(what),
            E::Store(inner) => {
                if let Some(se) = inner.downcast_ref::<wirecap_store::Error>() {
                    match se {
                        wirecap_store::Error::StreamExists(_) => {
                            return EngineError::StreamExists(se.to_string());
                        }
                        wirecap_store::Error::InvalidName { .. } => {
                            return EngineError::InvalidName(se.to_string());
                        }
                        _ => {}
                    }
                }
                EngineError::Failed(e.to_string())
            }
            _ => EngineError::Failed(e.to_string()),
        }
    }

    /// Stops the running capture and seals its stream. Blocking.
    pub fn stop(&self) -> Result<CaptureInfo, EngineError> {
        let r = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or(EngineError::NotRunning)?;
        self.seal(r)
    }

    /// Stops capture `r` and seals its stream.
    fn seal(&self, r: Running) -> Result<CaptureInfo, EngineError> {
        let info = CaptureInfo {
            active: false,
            base: Some(r.base.clone()),
            stored: Some(r.stored.clone()),
            started_ns: Some(r.started_ns),
        };
        let res = r.capture.stop();
        *self.info.lock().unwrap_or_else(|e| e.into_inner()) = info.clone();
        match res {
            Ok(s) => {
                tracing::info!(
                    stream = %s.sealed.name,
                    packets = s.status.packets_captured,
                    dropped = s.status.packets_dropped,
                    "capture stopped"
                );
                Ok(info)
            }
            Err(e) => {
                tracing::error!(stream = %r.stored, "capture stopped with an error: {e}");
                Err(EngineError::Failed(e.to_string()))
            }
        }
    }

    /// Stops the running capture only if it is `stored` (so that a stop decided a moment
    /// ago never hits a capture started since by someone else). Blocking.
    pub fn stop_if(&self, stored: &str) -> Result<CaptureInfo, EngineError> {
        {
            let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            match running.as_ref() {
                Some(r) if r.stored == stored => {}
                _ => return Err(EngineError::NotRunning),
            }
        }
        // Between the check and the stop nothing can start (one capture at a time), but a
        // manual stop can: then this stop finds nothing, which is what was wanted.
        self.stop()
    }

    /// Size of the segment files of captures started from now on (retention's unit).
    pub fn set_segment_bytes(&self, bytes: u64) {
        self.segment_bytes
            .store(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    /// Stops a capture whose source ended by itself (a replay reached its end). Blocking.
    pub fn reap_finished(&self) {
        let finished = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|r| r.capture.finished());
        if finished {
            let stopped = self.stop();
            // A replay ends by itself; any other source ending is a failure (issue 14.6).
            let why = match stopped {
                Err(e) => Some(e.to_string()),
                Ok(_) if !matches!(self.source(), SourceChoice::Replay { .. }) => {
                    Some(format!("the source {} ended", self.describe_source()))
                }
                Ok(_) => None,
            };
            if why.is_some() {
                *self
                    .unexpected_stop
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = why;
            }
        }
    }

    /// The capture interface and whether its link is up (`None`: no interface, or its
    /// link not read yet). An interface that is gone is down.
    pub fn link(&self) -> Option<(String, bool)> {
        let i = self.interface()?;
        let up = self
            .link
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .status(Instant::now())
            .up;
        match up {
            Some(up) => Some((i, up)),
            None if !std::path::Path::new("/sys/class/net").join(&i).exists() => Some((i, false)),
            None => None,
        }
    }

    /// Why the last capture ended by itself (not a replay's end), until the next start.
    pub fn unexpected_stop(&self) -> Option<String> {
        self.unexpected_stop
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Says in the log when the writer finds the disk full, and when that ends (call
    /// about once a second). True while the disk is full.
    pub fn observe_disk(&self) -> bool {
        let s = self.counters.status();
        let full = s.disk_full && s.capture_active;
        let was = self
            .disk_full_logged
            .swap(full, std::sync::atomic::Ordering::Relaxed);
        if full && !was {
            tracing::error!(
                capture = s.capture_name.as_deref().unwrap_or("-"),
                dropped = s.dropped_write,
                error = s.last_error.as_deref().unwrap_or(""),
                "disk full: the capture drops what it cannot write; free space or lower the retention budget"
            );
        } else if was && !full {
            tracing::info!("disk full no more (or the capture stopped)");
        }
        full
    }

    /// Observes the capture interface's link (call about once a second).
    pub fn observe_link(&self) {
        if let Some(i) = self.interface() {
            let info = Sysfs::default().read(&i);
            self.link
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .observe(info.as_ref(), Instant::now());
        }
    }

    /// Bytes the store takes on disk (recomputed at most every 2 s). Blocking.
    pub fn disk_bytes(&self) -> u64 {
        let mut d = self.disk.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, v)) = *d
            && at.elapsed() < Duration::from_secs(2)
        {
            return v;
        }
        let v = crate::catalog::Catalog::of(self.store.dir())
            .list(&self.store)
            .map(|l| l.iter().map(|s| s.disk_bytes).sum())
            .unwrap_or(0);
        *d = Some((Instant::now(), v));
        v
    }

    pub fn status(&self) -> Status {
        self.counters.status()
    }

    /// The figures of `/sysmaster/status`. Blocking (reads the store's size).
    pub fn status_figures(&self) -> StatusFigures {
        let s = self.counters.status();
        let info = self.capture_info();
        let uptime = self.started.elapsed();
        let (link_up, link_uptime, link_speed) = match self.interface() {
            Some(_) => {
                let l = self
                    .link
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .status(Instant::now());
                (
                    l.up == Some(true),
                    l.uptime.unwrap_or_default(),
                    u64::from(l.speed_mbps.unwrap_or(0)),
                )
            }
            // A synthetic or replay source has no wire: it is always "up", speed unknown.
            None => (true, uptime, 0),
        };
        StatusFigures {
            uptime,
            packets_received: s.packets_received,
            packets_dropped: s.packets_dropped,
            packets_errors: s.packets_errors,
            packets_captured: s.packets_captured,
            bytes_captured: s.bytes_captured,
            bytes_pending: s.bytes_pending,
            bytes_cache: 0,
            bytes_disk: self.disk_bytes(),
            link_up,
            link_uptime,
            link_speed,
            capture_bytes: s.capture_bytes,
            capture_packets: s.capture_packets,
            capture_bps: s.capture_bps,
            capture_pps: s.capture_pps,
            capture_name: info.base,
            capture_active: info.active,
        }
    }

    /// Stops a running capture at shutdown, then the forwarder.
    pub fn shutdown(&self) {
        if let Err(e) = self.stop()
            && e != EngineError::NotRunning
        {
            tracing::error!("stopping the capture at shutdown: {e}");
        }
        if let Some(f) = self.forwarder() {
            f.stop();
        }
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }
}
