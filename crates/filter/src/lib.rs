//! Packet filters for wirecap: which stored packets does a user want?
//!
//! Two languages compile to one [`Filter`]:
//!
//! * **tcpdump / BPF syntax** ([`Filter::bpf`]): compiled by libpcap itself (so the
//!   grammar and meaning are exactly tcpdump's), then run by this crate's own
//!   classic-BPF interpreter ([`bpf::vm`]), which follows libpcap's `bpf_filter`
//!   semantics (wire length vs captured length, out-of-bounds loads reject);
//! * **the appliance filter language** ([`Filter::appliance`], see [`lang`]): named
//!   filter blocks such as `x: ipv4.proto == udp;` combined by a boolean expression
//!   `x | y`, evaluated over a one-pass [`dissect`]ion of the packet.
//!
//! A filter is compiled once and then matched per packet with [`Filter::matches`], which
//! does not allocate. [`summary::ChunkSummary`] condenses a chunk of packets into a few
//! hundred bytes so that [`Filter::may_match`] can skip chunks without reading them.
//!
//! ```text
//!   text ──compile──▶ Filter ──matches(ts, orig_len, bytes)──▶ bool   (per packet)
//!                        └────may_match(&ChunkSummary)──────▶ bool   (per chunk)
//! ```
//!
//! What this crate never does: I/O of any kind (no files, sockets or clocks: "today" is
//! passed in by the caller), reading capture files (that is `wirecap-pcap`), or
//! allocation on the matching path. The only `unsafe` is the five-function FFI bridge
//! to libpcap's compiler in `bpf::ffi`.

pub mod bpf;
pub mod dissect;
mod error;
pub mod lang;
pub mod summary;

pub use error::{ErrorKind, FilterError};
pub use lang::{CompileOptions, Date};
pub use wirecap_pcap::LinkType;

use dissect::Link;
use summary::Facts;

/// One compiled filter, in either language. Cheap to share between threads (`Send +
/// Sync`, no interior mutability).
#[derive(Debug, Clone)]
pub enum Filter {
    /// A tcpdump expression compiled to classic BPF.
    Bpf(bpf::BpfFilter),
    /// An appliance-language filter.
    Appliance(lang::ApplianceFilter),
}

impl Filter {
    /// Compiles a tcpdump expression for packets of link type `link`, with libpcap's
    /// optimizer on, an unknown netmask and a 262144-byte snapshot length (what
    /// `tcpdump -r` uses). The error carries libpcap's message.
    pub fn bpf(expr: &str, link: LinkType) -> Result<Self, FilterError> {
        bpf::BpfFilter::compile(expr, link.0).map(Self::Bpf)
    }

    /// Compiles an appliance-language filter, either blocks plus an expression
    /// (`x: ipv4.proto == udp; y: tcp.port == 80; x | y`) or one lone block
    /// (`ipv4.proto == tcp`). `options` gives "today" (for time-of-day-only
    /// `frame.time` values) and whether frames end in an Ethernet FCS.
    pub fn appliance(
        text: &str,
        link: LinkType,
        options: &CompileOptions,
    ) -> Result<Self, FilterError> {
        lang::ApplianceFilter::compile(text, Link::from_linktype(link.0), options)
            .map(Self::Appliance)
    }

    /// True when the packet matches. `ts_ns` is the capture time in nanoseconds since
    /// the Unix epoch, `orig_len` the length on the wire and `data` the captured bytes
    /// (the caplen is `data.len()`, which may be less than `orig_len`).
    pub fn matches(&self, ts_ns: u64, orig_len: u32, data: &[u8]) -> bool {
        match self {
            Self::Bpf(f) => f.matches(orig_len, data),
            Self::Appliance(f) => f.matches(ts_ns, orig_len, data),
        }
    }

    /// False only when no packet summarized by `summary` can match (conservative: a
    /// `true` promises nothing). An empty summary gives `false`; one built for another
    /// link type (or a mix of link types) gives `true`.
    pub fn may_match(&self, summary: &dyn Facts) -> bool {
        if summary.is_empty() {
            return false;
        }
        match self {
            Self::Bpf(f) => f.may_match(summary),
            Self::Appliance(f) => f.may_match(summary),
        }
    }

    /// The text this filter was compiled from.
    pub fn source(&self) -> &str {
        match self {
            Self::Bpf(f) => f.expr(),
            Self::Appliance(f) => f.source(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Filter>();
        check::<FilterError>();
    }
}
