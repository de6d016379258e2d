//! Errors: [`Error`] for setting the server up, [`ApiError`] for answering a request.

use std::path::PathBuf;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::appliance::ApplianceJson;

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

pub(crate) trait IoContext<T> {
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

/// How an error is rendered: the manual's `{"Status":false,"Str":"…"}`, or the JSON
/// API's `{"error":"…","status":N}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shape {
    #[default]
    Appliance,
    Api,
}

/// A request that cannot be answered as asked: an HTTP status and a reason for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub shape: Shape,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            shape: Shape::Appliance,
        }
    }
    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, m)
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, m)
    }
    pub fn conflict(m: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, m)
    }
    pub fn internal(m: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, m)
    }
    pub fn uri_too_long() -> Self {
        Self::new(
            StatusCode::URI_TOO_LONG,
            format!(
                "the query string is longer than {} bytes",
                crate::query::MAX_QUERY_LEN
            ),
        )
    }
    /// Renders as the JSON API's shape.
    pub fn api(mut self) -> Self {
        self.shape = Shape::Api;
        self
    }
}

impl From<wirecap_store::Error> for ApiError {
    fn from(e: wirecap_store::Error) -> Self {
        use wirecap_store::Error as E;
        let status = match &e {
            E::NoSuchStream(_) | E::NoSuchSplit { .. } => StatusCode::NOT_FOUND,
            E::InvalidName { .. } | E::UnknownView(_) | E::Invalid(_) => StatusCode::BAD_REQUEST,
            E::StreamExists(_) | E::Locked(_) => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            // The detail (paths on the server) goes to the log, not to the client.
            tracing::error!("store: {e}");
            return Self::internal("the store failed to read this stream; see the server log");
        }
        Self::new(status, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.shape {
            Shape::Appliance => ApplianceJson::err(self.message).to_body(),
            Shape::Api => {
                let mut s = serde_json::json!({
                    "error": self.message,
                    "status": self.status.as_u16(),
                })
                .to_string();
                s.push('\n');
                s
            }
        };
        (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}
