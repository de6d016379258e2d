//! wirecap's live capture engine: packets from a Linux interface (or a pcap replay, or a
//! synthetic generator) into the store, with nanosecond timestamps, every loss counted.
//!
//! ```text
//!  AF_PACKET TPACKET_V3 ring ─┐   (ring, fanout: one thread per socket)
//!  pcap/pcapng replay ────────┼─► Source ─► chunk builder ─► bounded queue ─► merge ─► writer ─► store
//!  synthetic generator ───────┘          (store chunks: the    (full ⇒ drop, counted)   (time order,
//!                                          one packet copy)     ◄── chunks back for reuse  whole chunks)
//!                                      counters (atomics) ◄── ticker (1 s history, link state in sysfs)
//! ```
//!
//! What it owns: the ring ([`ring`], the crate's only `unsafe`), block parsing and VLAN tag
//! reinsertion ([`ring::block`]; its in-place walk `RawPackets` is the forwarder's too),
//! the AF_PACKET and ethtool system calls both use ([`ring::sys`]), sources ([`source`], [`replay`], [`synth`]), chunks
//! ([`chunk`]), the time-order merge ([`merge`]), the pipeline and its lifecycle
//! ([`pipeline`]), counters and history ([`counters`]), link state ([`link`]), the
//! foreground command ([`cli`]).
//!
//! What it never does: serve HTTP, parse protocols beyond the Ethernet/VLAN header it must
//! restore (header layouts and checksums are `wirecap-wire`'s, the pcap record layout is
//! `wirecap-pcap`'s), send packets on a live interface, block a capture thread on disk, or lose a
//! packet without counting it.

pub mod chunk;
pub mod cli;
pub mod counters;
pub mod error;
pub mod frame;
pub mod link;
pub mod merge;
pub mod pipeline;
pub mod replay;
pub mod ring;
pub mod sink;
pub mod source;
pub mod store_sink;
pub mod synth;

pub use counters::{Counters, Status};
pub use error::{Error, Result};
pub use frame::Frame;
pub use pipeline::{Capture, PipelineConfig, Stopped};
pub use ring::{RingConfig, RingSource};
pub use sink::Sink;
pub use source::{Polled, Source, SourceStats, SyntheticSource};
pub use store_sink::Summarizer;
