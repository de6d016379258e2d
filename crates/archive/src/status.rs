//! What the archive tier shows in the status, `/metrics` and the dashboard.

use serde::{Deserialize, Serialize};

/// The archive tier now. Never holds a credential.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ArchiveStatus {
    /// Where the archive is (`s3://bucket/prefix`, no credentials).
    pub url: String,
    /// This node's probe name in the archive.
    pub probe: String,
    /// `writeback` (a probe) or `read-only` (a fleet view).
    pub mode: String,
    /// `ok`, `error` (see `last_error`) or `starting`.
    pub state: String,
    /// Bytes of local segments not yet in the archive (sealed ones and those written).
    pub lag_bytes: u64,
    /// Age of the oldest packet not yet in the archive, in seconds.
    pub lag_seconds: f64,
    /// Sealed segments waiting for upload.
    pub pending_segments: u64,
    /// Upload rate over the last pass, bytes per second.
    pub rate_bytes_per_second: f64,
    /// Bytes uploaded since the server started.
    pub uploaded_bytes_total: u64,
    /// Segments archived since the server started.
    pub uploaded_segments_total: u64,
    /// Failed passes or reads since the server started.
    pub errors_total: u64,
    /// The last error, in words.
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    pub last_upload_at: Option<String>,
    /// Local copies of archived segments deleted (the disk as a cache), in bytes.
    pub evicted_bytes_total: u64,
    /// Data retention deleted before it was archived (the disk was full), in bytes.
    pub lost_bytes_total: u64,
    /// Ranged reads of archived segments, and their bytes.
    pub read_requests_total: u64,
    pub read_bytes_total: u64,
    /// Bytes in the read cache now, and its bound.
    pub cache_bytes: u64,
    pub cache_limit_bytes: u64,
    /// Probes seen in the archive (the fleet view).
    pub probes: Vec<String>,
    /// A warning to show (data lost before it was archived).
    pub warning: Option<String>,
}
