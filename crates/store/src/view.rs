//! Views of a stream: the single file and the thirteen splits, all available at once.
//!
//! A time split of width `W` holds exactly the packets with `start <= ts < start + W`,
//! `start` aligned to a UTC multiple of `W` (for `split_15min`, quarters of the hour).
//! Only non-empty splits are listed. A size split of size `L` is a greedy cut at packet
//! boundaries: each file is as large as it can be without exceeding `L` bytes (pcap header
//! included) unless it is a single larger packet. Consecutive splits of either kind
//! partition the stream.

use std::fmt;

use crate::error::{Error, Result};
use crate::index::{SIZE_LEVEL_NAMES, SIZE_LEVELS};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum View {
    /// The whole stream as one file.
    Single,
    /// Aligned time windows of `secs` seconds.
    Time { secs: u64 },
    /// Files of at most `SIZE_LEVELS[level]` bytes.
    Size { level: usize },
}

const TIME_VIEWS: [(&str, u64); 6] = [
    ("split_1sec", 1),
    ("split_10sec", 10),
    ("split_1min", 60),
    ("split_10min", 600),
    ("split_15min", 900),
    ("split_1hour", 3600),
];

impl View {
    /// Every split view, in the appliance's order (the single view not included).
    pub fn splits() -> Vec<Self> {
        TIME_VIEWS
            .iter()
            .map(|&(_, secs)| Self::Time { secs })
            .chain((0..SIZE_LEVELS.len()).map(|level| Self::Size { level }))
            .collect()
    }

    pub fn parse(s: &str) -> Result<Self> {
        if s == "single" {
            return Ok(Self::Single);
        }
        if let Some(&(_, secs)) = TIME_VIEWS.iter().find(|(n, _)| *n == s) {
            return Ok(Self::Time { secs });
        }
        if let Some(level) = s
            .strip_prefix("split_")
            .and_then(|r| SIZE_LEVEL_NAMES.iter().position(|n| *n == r))
        {
            return Ok(Self::Size { level });
        }
        Err(Error::UnknownView(s.chars().take(64).collect()))
    }
}

impl fmt::Display for View {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Single => f.write_str("single"),
            Self::Time { secs } => {
                let name = TIME_VIEWS
                    .iter()
                    .find(|(_, s)| s == secs)
                    .map_or("split_?", |(n, _)| n);
                f.write_str(name)
            }
            Self::Size { level } => write!(f, "split_{}", SIZE_LEVEL_NAMES[*level]),
        }
    }
}

/// A run of consecutive packets: `[first_packet, end_packet)`, at logical positions
/// `[start_pos, end_pos)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PacketRange {
    pub first_packet: u64,
    pub end_packet: u64,
    pub start_pos: u64,
    pub end_pos: u64,
}

impl PacketRange {
    pub fn packets(&self) -> u64 {
        self.end_packet - self.first_packet
    }
    /// Size of this range written as a pcap file.
    pub fn pcap_bytes(&self) -> u64 {
        wirecap_pcap::PCAP_NS_HEADER_LEN as u64 + self.end_pos - self.start_pos
    }
    pub fn is_empty(&self) -> bool {
        self.first_packet == self.end_packet
    }
}

/// One file of a view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    /// Position in the view's list, from 0.
    pub index: u64,
    /// The appliance's name: the split's start time, `20150620_18:36:47.000.000.000`.
    pub name: String,
    /// Time window: for time splits the aligned window; for size splits from the first
    /// packet's timestamp to the next split's (or just past the last packet).
    pub start_ts: u64,
    pub stop_ts: u64,
    pub range: PacketRange,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_view_name_round_trips() {
        let all = View::splits();
        assert_eq!(all.len(), 13);
        for v in all.iter().copied().chain([View::Single]) {
            assert_eq!(View::parse(&v.to_string()).unwrap(), v);
        }
        assert_eq!(View::parse("split_1GB").unwrap(), View::Size { level: 3 });
        for bad in ["", "split_2sec", "SPLIT_1SEC", "split_", "../x"] {
            assert!(View::parse(bad).is_err());
        }
    }
}
