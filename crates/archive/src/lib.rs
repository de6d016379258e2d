//! wirecap's archive tier: history beyond one disk, and the fleet view of every probe.
//!
//! ```text
//!  store (local disk) ── sealed segment ──► writeback ──► object storage (S3, GCS, Azure, file://)
//!        ▲     │                                               │
//!        │     └─ retention evicts archived segments first     │ ranged GETs of the chunks
//!        │                                                     ▼ a read needs, read cache
//!  StreamReader ◄──────────── store::remote::SegmentSource ◄── ArchiveReader
//! ```
//!
//! What it owns:
//! * **Writeback** ([`writeback`]): every sealed segment of every stream, with every
//!   other file of its stream directory (chunk index, time and size marks, summaries,
//!   flow index files, meta.json), goes to the archive; each object is checked (size by
//!   a HEAD, content by the store against the SHA-256 sent with it on S3) before it
//!   counts as archived. The queue is the disk itself: a segment is archived only once
//!   the stream's manifest naming it is written, in the archive and then locally
//!   (`archive.json` in the stream directory), so a restart, `kill -9` or an unreachable
//!   archive loses nothing and resumes where it was.
//! * **Reads** ([`reader`]): a segment whose local copy was evicted is read with ranged
//!   GETs of the 1 MiB blocks holding the chunks asked for, through a bounded cache, with
//!   read-ahead only while a reader goes through a segment in order. The store checks
//!   every chunk's CRC32C as for a local file.
//! * **Flows for the data lake** ([`flows`]): the flow index's records as Parquet,
//!   partitioned by probe, date and hour, once the segments they cover are archived.
//! * **Deletes** ([`deletes`]): deleting a stream deletes its objects, queued on disk
//!   like the uploads.
//! * **The fleet** ([`fleet`]): a read-only node lists every probe's streams in the
//!   archive and keeps a local copy of their index files, so every view works on it.
//!
//! ## The layout (format 1)
//!
//! ```text
//! PREFIX/wirecap-archive.json            {"format":1,"layout":"PROBE/STREAM/FILE"}
//! PREFIX/PROBE/STREAM/manifest.json      what is archived of the stream (Manifest)
//! PREFIX/PROBE/STREAM/seg-00000000.wcs   sealed segments, byte for byte as on disk
//! PREFIX/PROBE/STREAM/meta.json          the stream directory's other files: chunks.idx,
//! PREFIX/PROBE/STREAM/chunks.idx         time.idx, size-*.idx, summary.idx, flow index
//! PREFIX/PROBE/STREAM/...                files, as on disk (see wirecap_store::layout)
//! PREFIX/flows/probe=PROBE/date=YYYY-MM-DD/hour=HH/STREAM-bNNNNNNNN.parquet
//!                                        flow records (see [`flows`]); a probe cannot
//!                                        be named `flows`
//! ```
//! `manifest.json` is written last: what it names is complete and checked. Readers trust
//! only the chunks of the segments it names.
//!
//! It never speaks HTTP to clients, never parses packets, and never holds credentials:
//! those come from the environment the standard ways, and are never logged or shown.

pub mod config;
pub mod deletes;
pub mod fleet;
pub mod flows;
pub mod manifest;
pub mod reader;
mod redact;
pub mod status;
pub mod writeback;
pub mod zchunks;

use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use object_store::path::Path as ObjPath;

pub use config::{ArchiveConfig, Settings, Target};
pub use manifest::Manifest;
pub use reader::ArchiveReader;
pub use status::ArchiveStatus;
pub use writeback::Archive;

/// An error of the archive tier.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Config(String),
    /// The object store said no, or could not be reached (in words, credentials removed).
    #[error("archive: {0}")]
    Store(String),
    #[error("archive: {0}")]
    Local(#[from] wirecap_store::Error),
    #[error("archive: {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("archive: {0}")]
    Verify(String),
}

impl From<object_store::Error> for Error {
    fn from(e: object_store::Error) -> Self {
        Self::Store(redact::in_words(&e))
    }
}

/// Name of the layout description at the prefix's root.
pub const LAYOUT_FILE: &str = "wirecap-archive.json";
/// Layout format this version writes and reads.
pub const FORMAT: u32 = 1;

/// The object store named by `s`, with short timeouts and few retries so that an
/// unreachable archive shows as an error in seconds rather than minutes (writeback
/// retries on its own schedule).
pub fn open_store(s: &Settings) -> Result<Arc<dyn ObjectStore>, Error> {
    use object_store::{ClientOptions, RetryConfig};
    let retry = RetryConfig {
        max_retries: 2,
        retry_timeout: Duration::from_secs(15),
        ..RetryConfig::default()
    };
    let client = |allow_http: bool| {
        ClientOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_timeout(Duration::from_secs(120))
            .with_allow_http(allow_http)
    };
    let env_true = |k: &str| {
        std::env::var(k)
            .is_ok_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
    };
    let store: Arc<dyn ObjectStore> = match &s.target {
        Target::S3 { bucket, .. } => {
            use object_store::aws::{AmazonS3Builder, Checksum};
            let endpoint = s
                .endpoint
                .clone()
                .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
                .filter(|e| !e.is_empty());
            let allow_http = env_true("AWS_ALLOW_HTTP")
                || endpoint
                    .as_deref()
                    .is_some_and(|e| e.starts_with("http://"));
            let mut b = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_retry(retry)
                .with_client_options(client(allow_http))
                // The server checks each upload's content against this digest...
                .with_checksum_algorithm(Checksum::SHA256)
                // ...which the signature covers (it is a header), so the payload itself
                // need not be signed: a signed payload makes the server hash every byte
                // a second time, which cost an S3-compatible server on the same machine
                // (s3s-fs) 0.9 s of CPU per 219 MB (bench/archive.sh).
                .with_unsigned_payload(true);
            if let Some(e) = endpoint {
                // S3-compatible servers are addressed by path, not by virtual host.
                b = b.with_endpoint(e).with_virtual_hosted_style_request(false);
            }
            if let Some(r) = s
                .region
                .clone()
                .or_else(|| std::env::var("AWS_REGION").ok())
            {
                b = b.with_region(r);
            }
            Arc::new(b.build()?)
        }
        Target::Gcs { bucket, .. } => Arc::new(
            object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_bucket_name(bucket)
                .with_retry(retry)
                .with_client_options(client(false))
                .build()?,
        ),
        Target::Azure { container, .. } => Arc::new(
            object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_container_name(container)
                .with_retry(retry)
                .with_client_options(client(false))
                .build()?,
        ),
        Target::File { path } => {
            std::fs::create_dir_all(path).map_err(|e| Error::Io {
                what: format!("cannot create {}", path.display()),
                source: e,
            })?;
            Arc::new(object_store::local::LocalFileSystem::new_with_prefix(path)?)
        }
    };
    Ok(store)
}

/// Where things are in the archive: `PREFIX/PROBE/STREAM/FILE`.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(target: &Target) -> Self {
        Self {
            prefix: target.prefix().to_owned(),
        }
    }

    fn join(&self, parts: &[&str]) -> ObjPath {
        let mut s = self.prefix.clone();
        for p in parts {
            if !s.is_empty() {
                s.push('/');
            }
            s.push_str(p);
        }
        ObjPath::from(s)
    }

    pub fn root(&self) -> ObjPath {
        self.join(&[])
    }
    pub fn layout(&self) -> ObjPath {
        self.join(&[LAYOUT_FILE])
    }
    pub fn probe(&self, probe: &str) -> ObjPath {
        self.join(&[probe])
    }
    pub fn stream(&self, probe: &str, stream: &str) -> ObjPath {
        self.join(&[probe, stream])
    }
    pub fn file(&self, probe: &str, stream: &str, file: &str) -> ObjPath {
        self.join(&[probe, stream, file])
    }
    /// An object named by its key under the prefix (`flows/…`).
    pub fn under(&self, key: &str) -> ObjPath {
        self.join(&[key])
    }
    pub fn manifest(&self, probe: &str, stream: &str) -> ObjPath {
        self.file(probe, stream, manifest::MANIFEST_FILE)
    }
}

/// The probe a local stream directory belongs to when it is a fleet copy (see
/// [`fleet`]); `None` for the node's own streams.
pub fn origin_probe(dir: &std::path::Path) -> Option<String> {
    let t = std::fs::read(dir.join(fleet::ORIGIN_FILE)).ok()?;
    let o: fleet::Origin = serde_json::from_slice(&t).ok()?;
    Some(o.probe)
}

/// Runs `f` on `rt` and waits for it from a thread outside any runtime's async context
/// (a download's blocking thread, a CLI) without `block_on`'s panic inside one.
pub(crate) fn wait<T: Send + 'static>(
    rt: &tokio::runtime::Handle,
    f: impl Future<Output = T> + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    rt.spawn(async move {
        let _ = tx.send(f.await);
    });
    rx.recv().expect("the archive runtime stopped")
}
