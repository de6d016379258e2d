//! [`Error`]: what can stop the appliance (and the server around it) from starting.

use std::path::PathBuf;

/// What can stop the server from starting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config {path}: {why}")]
    Config { path: PathBuf, why: String },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("users file {path}: {why}")]
    Users { path: PathBuf, why: String },
    #[error("store: {0}")]
    Store(#[from] wirecap_store::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

pub trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T, Error>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T, Error> {
        self.map_err(|source| Error::Io {
            path: path.into(),
            source,
        })
    }
}
