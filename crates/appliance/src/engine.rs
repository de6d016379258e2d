//! The capture engine behind `/sysmaster/*`: one source, at most one capture at a time,
//! counters that outlive a capture (as the appliance's status page shows them).
//!
//! Starting and stopping block (sockets, threads, sealing a stream): callers run them on
//! a blocking thread. Status is read from atomics and never waits for a start or stop.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wirecap_capture::cli::SourceSpec;
use wirecap_capture::link::{LinkWatch, Sysfs};
use wirecap_capture::replay::{ReplayConfig, ReplayTimestamps, Speed};
use wirecap_capture::ring::RingConfig;
use wirecap_capture::source::{LINKTYPE_ETHERNET, Source};
use wirecap_capture::store_sink::{SinkOptions, StoreSink};
use wirecap_capture::{Capture, Counters, PipelineConfig, Status, Summarizer};
use wirecap_forward::afpacket::ForwarderHandle;
use wirecap_store::Store;

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
}

/// Free space below which a capture is not started: less than this holds seconds of a
/// busy link, and the writer would drop everything after.
pub const MIN_FREE_TO_START: u64 = 16 << 20;

struct Running {
    capture: Capture,
    base: String,
    stored: String,
    started_ns: u64,
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
    spec: Option<SourceSpec>,
    choice: SourceChoice,
    interface: Option<String>,
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
    forward: Option<ForwarderHandle>,
    /// The disk-full state last logged (said once when it starts and once when it ends).
    disk_full_logged: std::sync::atomic::AtomicBool,
    /// The archive tier, when one is configured (`[archive]`, `--archive`).
    archive: std::sync::OnceLock<Arc<wirecap_archive::Archive>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("source", &self.choice)
            .finish_non_exhaustive()
    }
}

/// Turns the configured choice into the capture crate's source description.
pub fn source_spec(choice: &SourceChoice) -> Result<SourceSpec, String> {
    Ok(match choice {
        SourceChoice::Interface(i) => SourceSpec::Interface {
            ring: RingConfig::new(i.clone()),
            threads: 1,
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
        let spec = source_spec(&choice)?;
        let interface = match &choice {
            SourceChoice::Interface(i) => Some(i.clone()),
            _ => None,
        };
        Ok(Self {
            store,
            spec: Some(spec),
            link: Mutex::new(LinkWatch::new(interface.clone().unwrap_or_default())),
            interface,
            choice,
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
            forward: None,
            disk_full_logged: std::sync::atomic::AtomicBool::new(false),
            archive: std::sync::OnceLock::new(),
        })
    }

    /// Hands the running forwarder to the engine: captures record what it forwards.
    pub fn set_forwarder(&mut self, f: ForwarderHandle) {
        self.forward = Some(f);
    }

    /// The forwarder, when forwarding is configured.
    pub fn forwarder(&self) -> Option<&ForwarderHandle> {
        self.forward.as_ref()
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

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn source(&self) -> &SourceChoice {
        &self.choice
    }

    /// A short description of the source: `interface eth0`, `synthetic 1000 pps`, ….
    pub fn describe_source(&self) -> String {
        if let Some(f) = &self.forward {
            let s = f.settings();
            return format!(
                "inline forwarder on interface {} (capture IP {}, capture mode {})",
                s.interface, s.inline, s.mode
            );
        }
        match &self.choice {
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
        let spec = self
            .spec
            .as_ref()
            .ok_or_else(|| EngineError::NoInterface("none configured".into()))?;
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
        // A stream of this name and minute exists (a capture restarted within the
        // minute, by hand or by a schedule): `base-2`, `base-3`, … as its stored name.
        let mut candidate = base.to_owned();
        let mut n = 2;
        let capture = loop {
            let r = match &self.forward {
                Some(f) => self.start_forward_capture(&candidate, f, &pipeline),
                None => Capture::start(
                    &candidate,
                    spec,
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
        });
        tracing::info!(stream = %info.stored.as_deref().unwrap_or(""), source = %self.describe_source(), "capture started");
        Ok(info)
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
            let _ = self.stop();
        }
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
        if let Some(i) = &self.interface {
            let info = Sysfs::default().read(i);
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
        let (link_up, link_uptime, link_speed) = match &self.interface {
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
        if let Some(f) = &self.forward {
            f.stop();
        }
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }
}
