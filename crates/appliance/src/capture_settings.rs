//! The capture settings of an interface capture: a capture filter (tcpdump syntax,
//! compiled once into a classic BPF program that the kernel runs on the socket, so a
//! packet it rejects is never copied), packet slicing (snaplen; the original length is
//! kept in every record), fanout threads (`PACKET_FANOUT` sockets) and the ring size.
//!
//! They come from `[capture]` in `wirecap.toml`, the command line of `wirecap serve`
//! (which wins key by key) and `PUT /api/v1/capture/settings` (the Config page), and are
//! checked here, in one place, for all three: the answer names the key that is wrong.
//! A replay or synthetic source has no socket: the settings are kept and shown, and the
//! status says they do not apply.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use wirecap_capture::ring::{
    DEFAULT_BLOCK_COUNT, DEFAULT_BLOCK_SIZE, FanoutMode, MAX_SNAPLEN, RingConfig, SockInsn,
    SocketFilter,
};

/// The most capture threads (sockets of one fanout group).
pub const MAX_THREADS: usize = 64;
/// The largest ring, all threads together.
pub const MAX_RING_BYTES: u64 = 16 << 30;

/// Capture settings as given, every key optional (absent: the default). The body of
/// `PUT /api/v1/capture/settings`, which replaces them all.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureOptions {
    /// Capture filter in tcpdump syntax; only matching packets are captured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bpf: Option<String>,
    /// Bytes kept per packet (64 to 262144; the original length is kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snaplen: Option<u32>,
    /// Capture threads, each a socket of one PACKET_FANOUT group (1 to 64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
    /// How fanout spreads packets: `hash` (a flow stays on one thread) or `cpu`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fanout: Option<String>,
    /// Ring blocks per thread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks: Option<u32>,
    /// Ring block size in KiB (a multiple of 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_kib: Option<u32>,
}

impl CaptureOptions {
    /// `self` with every key `over` gives replaced (the command line over the file).
    pub fn overlay(&self, over: &Self) -> Self {
        Self {
            bpf: over.bpf.clone().or_else(|| self.bpf.clone()),
            snaplen: over.snaplen.or(self.snaplen),
            threads: over.threads.or(self.threads),
            fanout: over.fanout.clone().or_else(|| self.fanout.clone()),
            blocks: over.blocks.or(self.blocks),
            block_kib: over.block_kib.or(self.block_kib),
        }
    }

    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// A setting that is wrong: which key, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {why}")]
pub struct SettingsError {
    pub field: &'static str,
    pub why: String,
}

fn wrong(field: &'static str, why: impl Into<String>) -> SettingsError {
    SettingsError {
        field,
        why: why.into(),
    }
}

/// Checked capture settings, the filter compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureSettings {
    /// What was given (written back to the file as is).
    pub options: CaptureOptions,
    pub filter: Option<SocketFilter>,
    pub snaplen: u32,
    pub threads: usize,
    pub fanout: FanoutMode,
    pub blocks: u32,
    pub block_kib: u32,
}

impl Default for CaptureSettings {
    fn default() -> Self {
        Self::check(&CaptureOptions::default()).expect("the defaults are valid")
    }
}

impl CaptureSettings {
    /// Checks `o` and compiles its filter.
    pub fn check(o: &CaptureOptions) -> Result<Self, SettingsError> {
        let filter = match o.bpf.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(expr) => {
                let insns = wirecap_filter::bpf::socket_program(expr)
                    .map_err(|e| wrong("bpf", e.message().to_owned()))?;
                Some(SocketFilter {
                    expr: expr.to_owned(),
                    program: insns
                        .iter()
                        .map(|i| SockInsn {
                            code: i.code,
                            jt: i.jt,
                            jf: i.jf,
                            k: i.k,
                        })
                        .collect(),
                })
            }
        };
        let snaplen = o.snaplen.unwrap_or(MAX_SNAPLEN);
        if !(64..=MAX_SNAPLEN).contains(&snaplen) {
            return Err(wrong(
                "snaplen",
                format!("{snaplen} bytes: give 64 to {MAX_SNAPLEN}"),
            ));
        }
        let threads = o.threads.unwrap_or(1);
        if !(1..=MAX_THREADS).contains(&threads) {
            return Err(wrong(
                "threads",
                format!("{threads}: give 1 to {MAX_THREADS}"),
            ));
        }
        let fanout = match o.fanout.as_deref().unwrap_or("hash") {
            "hash" => FanoutMode::Hash,
            "cpu" => FanoutMode::Cpu,
            other => {
                return Err(wrong(
                    "fanout",
                    format!("{:?}: give hash or cpu", crate::short(other)),
                ));
            }
        };
        let blocks = o.blocks.unwrap_or(DEFAULT_BLOCK_COUNT);
        let block_kib = o.block_kib.unwrap_or(DEFAULT_BLOCK_SIZE / 1024);
        if block_kib < 4 || !block_kib.is_multiple_of(4) || block_kib > 1 << 20 {
            return Err(wrong(
                "block_kib",
                format!("{block_kib}: give a multiple of 4 KiB (a page), at most 1 GiB"),
            ));
        }
        if blocks == 0 {
            return Err(wrong("blocks", "at least 1 block"));
        }
        let total = u64::from(blocks) * u64::from(block_kib) * 1024 * threads as u64;
        if total > MAX_RING_BYTES {
            return Err(wrong(
                "blocks",
                format!(
                    "{blocks} blocks of {block_kib} KiB on {threads} thread(s) is {} MiB; at most {} MiB of ring",
                    total >> 20,
                    MAX_RING_BYTES >> 20
                ),
            ));
        }
        Ok(Self {
            options: o.clone(),
            filter,
            snaplen,
            threads,
            fanout,
            blocks,
            block_kib,
        })
    }

    /// The ring of one capture socket on `interface`, with these settings.
    pub fn ring(&self, interface: &str) -> RingConfig {
        RingConfig {
            block_size: self.block_kib * 1024,
            block_count: self.blocks,
            snaplen: self.snaplen,
            filter: self.filter.clone(),
            fanout: self.fanout,
            ..RingConfig::new(interface)
        }
    }

    /// The settings as the status shows them; `interface` is the capture interface (they
    /// apply only to one).
    pub fn state(&self, interface: Option<&str>) -> CaptureSettingsState {
        CaptureSettingsState {
            applies: interface.is_some(),
            bpf: self.filter.as_ref().map(|f| f.expr.clone()),
            block_kib: self.block_kib,
            blocks: self.blocks,
            fanout: match self.fanout {
                FanoutMode::Hash => "hash",
                FanoutMode::Cpu => "cpu",
            }
            .to_owned(),
            filter_instructions: self.filter.as_ref().map_or(0, |f| f.program.len()),
            options: self.options.clone(),
            ring_bytes: u64::from(self.blocks)
                * u64::from(self.block_kib)
                * 1024
                * self.threads as u64,
            snaplen: self.snaplen,
            threads: self.threads,
        }
    }
}

/// The capture settings in force, as `/api/v1/status` and the Config page show them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureSettingsState {
    /// Whether they apply: only an interface capture has a socket to set up.
    pub applies: bool,
    /// The capture filter (tcpdump syntax), if any.
    pub bpf: Option<String>,
    pub block_kib: u32,
    /// Ring blocks per thread.
    pub blocks: u32,
    /// `hash` or `cpu`.
    pub fanout: String,
    /// Classic BPF instructions the filter compiled to (0 without a filter).
    pub filter_instructions: usize,
    /// The settings as given (file, command line or the Config page).
    pub options: CaptureOptions,
    /// The ring, all threads together.
    pub ring_bytes: u64,
    pub snaplen: u32,
    pub threads: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_check_and_each_bad_key_is_named() {
        let d = CaptureSettings::default();
        assert_eq!(
            (d.snaplen, d.threads, d.filter.clone()),
            (MAX_SNAPLEN, 1, None)
        );
        let ring = d.ring("eth0");
        assert_eq!(ring.block_count, DEFAULT_BLOCK_COUNT);
        let ok = CaptureSettings::check(&CaptureOptions {
            bpf: Some("udp port 53".into()),
            snaplen: Some(96),
            threads: Some(2),
            fanout: Some("cpu".into()),
            blocks: Some(8),
            block_kib: Some(256),
        })
        .unwrap();
        let st = ok.state(Some("eth0"));
        assert_eq!(st.bpf.as_deref(), Some("udp port 53"));
        assert!(st.filter_instructions > 3);
        assert_eq!(st.ring_bytes, 2 * 8 * 256 * 1024);
        assert_eq!(ok.ring("eth0").snaplen, 96);
        for (o, field) in [
            (
                CaptureOptions {
                    bpf: Some("udp prt 53".into()),
                    ..Default::default()
                },
                "bpf",
            ),
            (
                CaptureOptions {
                    bpf: Some("vlan and udp".into()),
                    ..Default::default()
                },
                "bpf",
            ),
            (
                CaptureOptions {
                    snaplen: Some(10),
                    ..Default::default()
                },
                "snaplen",
            ),
            (
                CaptureOptions {
                    snaplen: Some(300_000),
                    ..Default::default()
                },
                "snaplen",
            ),
            (
                CaptureOptions {
                    threads: Some(0),
                    ..Default::default()
                },
                "threads",
            ),
            (
                CaptureOptions {
                    fanout: Some("rr".into()),
                    ..Default::default()
                },
                "fanout",
            ),
            (
                CaptureOptions {
                    block_kib: Some(6),
                    ..Default::default()
                },
                "block_kib",
            ),
            (
                CaptureOptions {
                    blocks: Some(0),
                    ..Default::default()
                },
                "blocks",
            ),
            (
                CaptureOptions {
                    blocks: Some(1 << 20),
                    ..Default::default()
                },
                "blocks",
            ),
        ] {
            assert_eq!(
                CaptureSettings::check(&o).unwrap_err().field,
                field,
                "{o:?}"
            );
        }
        // A blank filter is no filter.
        let blank = CaptureOptions {
            bpf: Some("  ".into()),
            ..Default::default()
        };
        assert_eq!(CaptureSettings::check(&blank).unwrap().filter, None);
    }

    #[test]
    fn the_command_line_wins_key_by_key() {
        let file = CaptureOptions {
            bpf: Some("tcp".into()),
            snaplen: Some(128),
            ..Default::default()
        };
        let cli = CaptureOptions {
            snaplen: Some(96),
            threads: Some(2),
            ..Default::default()
        };
        let o = file.overlay(&cli);
        assert_eq!(o.bpf.as_deref(), Some("tcp"));
        assert_eq!((o.snaplen, o.threads), (Some(96), Some(2)));
    }
}
