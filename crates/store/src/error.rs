//! The store's error type: every variant names the stream or file it is about, so a
//! message read in a log, days later, still says where to look.

use std::io;
use std::path::PathBuf;

/// An error from the packet store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("invalid stream name {name:?}: {why}")]
    InvalidName { name: String, why: &'static str },
    #[error("stream {0:?} does not exist")]
    NoSuchStream(String),
    #[error("stream {0:?} already exists; choose another name")]
    StreamExists(String),
    #[error("stream {0:?} is being written by another process")]
    Locked(String),
    #[error(
        "packet timestamp {ts_ns} ns goes back before {last_ns} ns; a stream is stored in time order"
    )]
    OutOfOrder { ts_ns: u64, last_ns: u64 },
    #[error("timestamp {ts_sec} s is after 2106-02-07 and cannot be stored as pcap")]
    TimestampOutOfRange { ts_sec: u64 },
    #[error("packet of {len} bytes is larger than the {max} bytes a record may hold")]
    PacketTooLarge { len: usize, max: u32 },
    #[error("{path}: corrupt store file: {why}")]
    Corrupt { path: PathBuf, why: String },
    #[error(
        "unknown view {0:?}; views are single, split_1sec … split_1hour, split_1MB … split_1TB"
    )]
    UnknownView(String),
    #[error("view {view} has {count} splits; split {index} does not exist")]
    NoSuchSplit {
        view: String,
        index: u64,
        count: u64,
    },
    #[error(
        "packet is {ts_ns} ns but the import reorder window already wrote up to {watermark_ns} ns; the input is too far out of time order (sort it first, e.g. with `reordercap`)"
    )]
    BeyondReorderWindow { ts_ns: u64, watermark_ns: u64 },
    #[error(
        "stream {0:?}: this part was deleted by retention while it was being read; ask again for what remains"
    )]
    Trimmed(String),
    /// A chunk's bytes do not match what its header and index record say: a read of
    /// its packets would return something other than what was stored.
    #[error(
        "stream {stream:?}: chunk {chunk} at offset {offset} of {segment} is damaged ({why}); `wirecap verify` lists the damage"
    )]
    DamagedChunk {
        stream: String,
        segment: String,
        chunk: u64,
        offset: u64,
        why: String,
    },
    /// An index file disagrees with itself, with another index file or with the
    /// segments: answers from it could be silently wrong.
    #[error(
        "stream {stream:?}: {file} is damaged: {why}; `wirecap recover` rebuilds the index from the segments"
    )]
    DamagedIndex {
        stream: String,
        file: String,
        why: String,
    },
    /// A directory under `streams/` that is not a readable stream.
    #[error("stream {name:?} is damaged: {why}")]
    DamagedStream { name: String, why: String },
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// Whether the error says stored data or index is damaged (rather than, say, a
    /// missing stream or an I/O failure).
    pub fn is_damage(&self) -> bool {
        matches!(
            self,
            Self::DamagedChunk { .. }
                | Self::DamagedIndex { .. }
                | Self::DamagedStream { .. }
                | Self::Corrupt { .. }
        )
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches a path to an `io::Error`.
pub(crate) trait IoContext<T> {
    fn at(self, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })
    }
}
