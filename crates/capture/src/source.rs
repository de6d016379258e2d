//! Where packets come from: one small trait (in the spirit of smoltcp's `phy::Device`)
//! implemented by the AF_PACKET ring, the pcap replay and the synthetic generator.

use crate::error::Result;
use crate::frame::{Frame, now_ns};
use crate::synth::{Generator, SynthConfig};
use std::time::{Duration, Instant};

/// Ethernet link type (pcap `LINKTYPE_ETHERNET`).
pub const LINKTYPE_ETHERNET: u32 = 1;

/// What one [`Source::poll`] call found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polled {
    /// This many packets were handed out (possibly 0 after a spurious wake-up).
    Packets(u32),
    /// Nothing arrived within the timeout. `quiet_before_ns`, when known, is a time before
    /// which the source promises no further packet (the pipeline's merge watermark).
    Idle {
        /// Timestamps of later packets will not be earlier than this.
        quiet_before_ns: Option<u64>,
    },
    /// The source has no more packets, ever (a replay reached the end of its file).
    Exhausted,
}

/// Loss and health figures a source keeps itself (cumulative since it was opened).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceStats {
    /// Packets the kernel received for this socket, its drops included (`tp_packets`).
    pub kernel_packets: u64,
    /// Packets the kernel dropped because the ring was full (`tp_drops`).
    pub kernel_drops: u64,
    /// Times the kernel froze the ring queue (`tp_freeze_q_cnt`).
    pub freezes: u64,
    /// Packets lost to malformed ring entries or unreadable replay records.
    pub malformed: u64,
}

/// A source of packets.
pub trait Source: Send {
    /// What this source is, for stream metadata and status: `capture:eth0`,
    /// `replay:file.pcap`, `synthetic:10000pps`. One capture at a time per description.
    fn describe(&self) -> &str;
    /// The pcap link type of the frames.
    fn link_type(&self) -> u32;
    /// The largest frame handed out.
    fn snaplen(&self) -> u32;
    /// The interface to watch for link state, if any.
    fn interface(&self) -> Option<&str> {
        None
    }
    /// Hands the packets that are ready to `on_frame`, waiting at most `timeout` when none
    /// is. Bounded work per call (one ring block, one batch of a replay).
    fn poll(&mut self, timeout: Duration, on_frame: &mut dyn FnMut(&Frame<'_>)) -> Result<Polled>;
    /// Cumulative loss figures.
    fn stats(&mut self) -> Result<SourceStats> {
        Ok(SourceStats::default())
    }
}

/// Paces packets against the wall clock: packet timestamps (re-based to start at `now`)
/// are released when the clock reaches them. Shared by the synthetic and replay sources.
#[derive(Debug, Clone)]
pub(crate) struct Pacer {
    start: Instant,
    start_ns: u64,
}

impl Pacer {
    pub(crate) fn new(start_ns: u64) -> Self {
        Self {
            start: Instant::now(),
            start_ns,
        }
    }
    /// Stream time now.
    pub(crate) fn now_ns(&self) -> u64 {
        self.start_ns
            .saturating_add(u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }
}

/// Most packets one `poll` hands out (bounds the work per call).
pub(crate) const BATCH: u32 = 4096;

/// Synthetic traffic at a fixed rate, with wall-clock timestamps, so the appliance has
/// something to show without root or a spare NIC.
#[derive(Debug)]
pub struct SyntheticSource {
    generator: Generator,
    pacer: Pacer,
    name: String,
}

impl SyntheticSource {
    /// `pps` packets per second from `seed`; timestamps start now.
    pub fn new(seed: u64, pps: u64) -> Self {
        Self::with_config(
            seed,
            SynthConfig {
                pps: pps.max(1),
                ..SynthConfig::default()
            },
        )
    }

    /// A source with a full generator configuration (`start_ns` is replaced by now).
    pub fn with_config(seed: u64, mut config: SynthConfig) -> Self {
        let now = now_ns();
        config.start_ns = now;
        let name = format!("synthetic:{}pps", config.pps);
        Self {
            generator: Generator::new(seed, config),
            pacer: Pacer::new(now),
            name,
        }
    }
}

impl Source for SyntheticSource {
    fn describe(&self) -> &str {
        &self.name
    }
    fn link_type(&self) -> u32 {
        LINKTYPE_ETHERNET
    }
    fn snaplen(&self) -> u32 {
        1518
    }
    fn poll(&mut self, timeout: Duration, on_frame: &mut dyn FnMut(&Frame<'_>)) -> Result<Polled> {
        let now = self.pacer.now_ns();
        let next = self.generator.next_ts();
        if next > now {
            let wait = Duration::from_nanos(next - now).min(timeout);
            std::thread::sleep(wait);
            if self.generator.next_ts() > self.pacer.now_ns() {
                return Ok(Polled::Idle {
                    quiet_before_ns: Some(self.generator.next_ts()),
                });
            }
        }
        let now = self.pacer.now_ns();
        let mut n = 0;
        while n < BATCH && self.generator.next_ts() <= now {
            let f = self.generator.next_packet();
            on_frame(&f);
            n += 1;
        }
        Ok(Polled::Packets(n))
    }
}
