//! The one error type of the capture engine.

use std::io;

/// What went wrong while opening, running or stopping a capture.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A system call on the capture socket or ring failed.
    #[error(transparent)]
    Socket(#[from] crate::ring::sys::SocketError),
    /// The interface does not exist (in the network namespace the socket was opened in).
    #[error("no interface named {0:?}: check `ip link` (and --netns)")]
    NoSuchInterface(String),
    /// A ring or pipeline setting is out of range.
    #[error("invalid capture configuration: {0}")]
    Config(String),
    /// Another capture already runs on this source.
    #[error("a capture is already active on {0}: stop it first")]
    AlreadyActive(String),
    /// The disk filled during the capture: packets were dropped.
    #[error("disk full: {0}")]
    DiskFull(String),
    /// The store refused a stream or a chunk.
    #[error("store: {0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A replay file could not be read.
    #[error("replay {path}: {source}")]
    Replay {
        /// The file being replayed.
        path: String,
        /// What the reader said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Any other I/O error (sysfs, files, threads).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A pipeline thread panicked or vanished.
    #[error("capture thread failed: {0}")]
    Thread(String),
}

impl Error {
    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
