//! Replay of a pcap or pcapng file as a capture source, for demos and tests.
//!
//! **Speed.** [`Speed::Recorded`] releases each packet when as much wall time has passed
//! since the start as separated it from the file's first packet; [`Speed::Factor`] divides
//! that gap by a factor (2.0 = twice as fast); [`Speed::Top`] releases packets as fast as
//! the pipeline takes them.
//!
//! **Timestamps.** With [`ReplayTimestamps::Rebase`] (the default) the stream looks live:
//! the first packet is stamped with the wall-clock time the replay started and each later
//! one with `start + (ts - first) / factor`, i.e. the time it is released at paced speeds.
//! At top speed the recorded gaps are kept unscaled (`start + (ts - first)`): a file that
//! spans an hour still spans an hour of stream time, so time splits stay meaningful, even
//! though those timestamps run ahead of the wall clock. [`ReplayTimestamps::Recorded`]
//! keeps the file's own timestamps (for importing a capture as it was). Either way a
//! timestamp that goes backwards in the file is clamped by the pipeline and counted in
//! `packets_errors`.
//!
//! Packets of a pcapng interface whose link type differs from the first interface's are
//! skipped and counted as malformed (a stream has one link type).

use crate::error::{Error, Result};
use crate::frame::{Frame, join_ns, now_ns};
use crate::source::{BATCH, Polled, Source, SourceStats};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wirecap_pcap::CaptureReader;

/// How fast to replay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// As recorded.
    Recorded,
    /// `n` times as fast as recorded (must be > 0).
    Factor(f64),
    /// As fast as possible.
    Top,
}

impl std::str::FromStr for Speed {
    type Err = String;
    /// `top`, `1`, `2.5`, `10x`.
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("top") || s.eq_ignore_ascii_case("max") {
            return Ok(Self::Top);
        }
        let n: f64 = s
            .trim_end_matches(['x', 'X'])
            .parse()
            .map_err(|_| format!("speed {s:?}: expected a factor like 1, 2.5, 10x, or `top`"))?;
        if !(n.is_finite() && n > 0.0) {
            return Err(format!("speed {s:?} must be a positive factor"));
        }
        Ok(if n == 1.0 {
            Self::Recorded
        } else {
            Self::Factor(n)
        })
    }
}

/// Timestamps of replayed packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplayTimestamps {
    /// Re-based to start now (see the module doc).
    #[default]
    Rebase,
    /// As recorded in the file.
    Recorded,
}

/// Replay settings.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    /// The pcap or pcapng file.
    pub path: PathBuf,
    /// Speed.
    pub speed: Speed,
    /// Timestamps.
    pub timestamps: ReplayTimestamps,
}

impl ReplayConfig {
    /// Replay `path` at recorded speed with re-based timestamps.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            speed: Speed::Recorded,
            timestamps: ReplayTimestamps::Rebase,
        }
    }
}

/// A pcap/pcapng file replayed as a source.
pub struct ReplaySource {
    reader: CaptureReader<BufReader<File>>,
    config: ReplayConfig,
    name: String,
    link_type: u32,
    snaplen: u32,
    start: Instant,
    timing: Timing,
    /// A packet read but not yet due: (recorded ts, orig_len), bytes in `held_data`.
    held: Option<(u64, u32)>,
    held_data: Vec<u8>,
    stats: SourceStats,
    eof: bool,
}

impl std::fmt::Debug for ReplaySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplaySource")
            .field("path", &self.config.path)
            .finish_non_exhaustive()
    }
}

fn replay_err(path: &Path, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Replay {
        path: path.display().to_string(),
        source: Box::new(e),
    }
}

impl ReplaySource {
    /// Opens the file and reads its header.
    pub fn open(config: ReplayConfig) -> Result<Self> {
        let f = File::open(&config.path).map_err(|e| replay_err(&config.path, e))?;
        let reader = CaptureReader::new(BufReader::with_capacity(1 << 20, f))
            .map_err(|e| replay_err(&config.path, e))?;
        let link_type = reader
            .link_type(0)
            .map_or(crate::source::LINKTYPE_ETHERNET, |l| u32::from(l.0));
        let snaplen = reader.snaplen(0).filter(|&s| s > 0).unwrap_or(262_144);
        let file = config
            .path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let start_ns = now_ns();
        Ok(Self {
            reader,
            name: format!("replay:{file}"),
            link_type,
            snaplen,
            start: Instant::now(),
            timing: Timing {
                speed: config.speed,
                timestamps: config.timestamps,
                start_ns,
                first_ts: None,
            },
            held: None,
            held_data: Vec::new(),
            stats: SourceStats::default(),
            eof: false,
            config,
        })
    }
}

/// The replay clock: when a packet is due and what timestamp it gets.
#[derive(Debug, Clone, Copy)]
struct Timing {
    speed: Speed,
    timestamps: ReplayTimestamps,
    start_ns: u64,
    first_ts: Option<u64>,
}

impl Timing {
    fn factor(&self) -> f64 {
        match self.speed {
            Speed::Recorded | Speed::Top => 1.0,
            Speed::Factor(f) => f,
        }
    }

    fn gap(&self, ts: u64) -> u64 {
        ts.saturating_sub(self.first_ts.unwrap_or(ts))
    }

    /// Wall time after the start at which the packet recorded at `ts` is due.
    fn due(&self, ts: u64) -> Duration {
        if self.speed == Speed::Top {
            return Duration::ZERO;
        }
        Duration::from_nanos((self.gap(ts) as f64 / self.factor()) as u64)
    }

    /// The timestamp a packet recorded at `ts` is given.
    fn stamp(&self, ts: u64) -> u64 {
        match self.timestamps {
            ReplayTimestamps::Recorded => ts,
            ReplayTimestamps::Rebase if self.speed == Speed::Top => {
                self.start_ns.saturating_add(self.gap(ts))
            }
            ReplayTimestamps::Rebase => self
                .start_ns
                .saturating_add((self.gap(ts) as f64 / self.factor()) as u64),
        }
    }
}

impl Source for ReplaySource {
    fn describe(&self) -> &str {
        &self.name
    }
    fn link_type(&self) -> u32 {
        self.link_type
    }
    fn snaplen(&self) -> u32 {
        self.snaplen
    }

    fn poll(&mut self, timeout: Duration, on_frame: &mut dyn FnMut(&Frame<'_>)) -> Result<Polled> {
        let mut n = 0u32;
        // A held packet first.
        if let Some((ts, orig_len)) = self.held {
            let due = self.timing.due(ts);
            let elapsed = self.start.elapsed();
            if due > elapsed {
                std::thread::sleep((due - elapsed).min(timeout));
                if due > self.start.elapsed() {
                    return Ok(Polled::Idle {
                        quiet_before_ns: Some(self.timing.stamp(ts)),
                    });
                }
            }
            let f = Frame {
                ts_ns: self.timing.stamp(ts),
                orig_len,
                data: &self.held_data,
            };
            on_frame(&f);
            self.held = None;
            n += 1;
        }
        if self.eof {
            return Ok(Polled::Exhausted);
        }
        while n < BATCH {
            let next = match self.reader.next_packet_with_link_type() {
                Ok(Some(p)) => p,
                Ok(None) => {
                    self.eof = true;
                    break;
                }
                Err(e) => {
                    // Damage: everything before it was delivered; stop here.
                    self.eof = true;
                    self.stats.malformed += 1;
                    if n == 0 {
                        return Err(replay_err(&self.config.path, e));
                    }
                    break;
                }
            };
            let (p, link) = next;
            if u32::from(link.0) != self.link_type {
                self.stats.malformed += 1;
                continue;
            }
            let ts = join_ns(p.ts_sec, p.ts_nsec);
            self.timing.first_ts.get_or_insert(ts);
            let (due, stamp) = (self.timing.due(ts), self.timing.stamp(ts));
            if due > self.start.elapsed() {
                self.held_data.clear();
                self.held_data.extend_from_slice(p.data);
                self.held = Some((ts, p.orig_len));
                break;
            }
            on_frame(&Frame {
                ts_ns: stamp,
                orig_len: p.orig_len,
                data: p.data,
            });
            n += 1;
        }
        if n == 0 && self.eof && self.held.is_none() {
            return Ok(Polled::Exhausted);
        }
        Ok(Polled::Packets(n))
    }

    fn stats(&mut self) -> Result<SourceStats> {
        Ok(self.stats)
    }
}
