//! One captured packet as a source hands it out: a borrowed view, never an allocation.

/// Nanoseconds in a second.
pub const NS_PER_SEC: u64 = 1_000_000_000;

/// A packet as it came off the wire, borrowed from the source's buffer (a ring block,
/// a replay buffer, a generator buffer). Valid only inside the callback it is given to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// Length of the packet on the wire (may exceed `data.len()` when truncated by snaplen).
    pub orig_len: u32,
    /// The captured bytes, starting at the link-layer header.
    pub data: &'a [u8],
}

/// Splits nanoseconds since the epoch into (seconds, nanoseconds).
pub fn split_ns(ts_ns: u64) -> (u64, u32) {
    // The remainder of a division by 1e9 always fits in u32.
    (ts_ns / NS_PER_SEC, (ts_ns % NS_PER_SEC) as u32)
}

/// Joins (seconds, nanoseconds) into nanoseconds since the epoch, saturating.
pub fn join_ns(sec: u64, nsec: u32) -> u64 {
    sec.saturating_mul(NS_PER_SEC)
        .saturating_add(u64::from(nsec))
}

/// Wall-clock time now, nanoseconds since the epoch.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
