//! The store as a [`Sink`]: one stream of `wirecap-store`, one store chunk per pipeline chunk.

use crate::chunk::ChunkBuf;
use crate::error::{Error, Result};
use crate::sink::{Sealed, Sink};
use std::path::Path;
use std::time::SystemTime;
use wirecap_pcap::LinkType;
use wirecap_store::{Store, StreamParams, StreamWriter, WriterOptions};

fn store_err(e: wirecap_store::Error) -> Error {
    Error::Store(Box::new(e))
}

/// How a [`StoreSink`] writes.
#[derive(Debug, Clone)]
pub struct SinkOptions {
    /// Bytes of records per chunk.
    pub chunk_bytes: usize,
    /// O_DIRECT segments where the file system allows it (else the page cache, and
    /// [`StoreSink::write_mode`] says why).
    pub direct_io: bool,
    /// Per-chunk summaries written beside the index (see [`WriterOptions::summarizer`]).
    pub summarizer: Option<Summarizer>,
    /// Segment file size (see [`wirecap_store::WriterOptions::segment_bytes`]).
    pub segment_bytes: u64,
}

impl Default for SinkOptions {
    fn default() -> Self {
        Self {
            chunk_bytes: wirecap_store::DEFAULT_CHUNK_BYTES,
            direct_io: false,
            summarizer: None,
            segment_bytes: WriterOptions::default().segment_bytes,
        }
    }
}

/// A shared [`wirecap_store::ChunkSummarizer`], printable so that settings stay `Debug`.
#[derive(Clone)]
pub struct Summarizer(pub std::sync::Arc<dyn wirecap_store::ChunkSummarizer>);

impl std::fmt::Debug for Summarizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Summarizer({} bytes per chunk)", self.0.summary_len())
    }
}

/// Writes into a new stream of the store: the pipeline's chunks are the store's chunks,
/// written as the capture threads built them.
pub struct StoreSink {
    writer: StreamWriter,
    name: String,
    write_mode: String,
}

impl std::fmt::Debug for StoreSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSink")
            .field("name", &self.name)
            .field("write_mode", &self.write_mode)
            .finish_non_exhaustive()
    }
}

/// Whether `dir`'s file system takes O_DIRECT: `Err(reason)` when `open` refuses it.
pub fn probe_direct_io(dir: &Path) -> std::result::Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let probe = dir.join(format!(".odirect-probe-{}", std::process::id()));
    let r = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_DIRECT)
        .open(&probe);
    let _ = std::fs::remove_file(&probe);
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Err(format!(
            "the file system of {} refuses O_DIRECT (open: EINVAL)",
            dir.display()
        )),
        Err(e) => Err(format!("O_DIRECT probe in {} failed: {e}", dir.display())),
    }
}

impl StoreSink {
    /// Creates the stream `base` + `_YYYYMMDD_HHMM` in `store`, written through the page
    /// cache.
    pub fn create(
        store: &Store,
        base: &str,
        link_type: u32,
        snaplen: u32,
        source: &str,
        chunk_bytes: usize,
    ) -> Result<Self> {
        let opts = SinkOptions {
            chunk_bytes,
            ..SinkOptions::default()
        };
        Self::create_with(store, base, link_type, snaplen, source, &opts)
    }

    /// Creates the stream `base` + `_YYYYMMDD_HHMM` in `store` with `opts`. When O_DIRECT
    /// is asked for but the file system refuses it, the stream is written through the page
    /// cache and [`Self::write_mode`] gives the reason.
    pub fn create_with(
        store: &Store,
        base: &str,
        link_type: u32,
        snaplen: u32,
        source: &str,
        opts: &SinkOptions,
    ) -> Result<Self> {
        let link_type = u16::try_from(link_type).map_err(|_| {
            Error::Config(format!("link type {link_type} does not fit a pcap header"))
        })?;
        let params = StreamParams {
            link_type: LinkType(link_type),
            snaplen,
            source: source.to_owned(),
        };
        // The store falls back to buffered writes by itself; probing first lets us say why.
        let (direct_io, write_mode) = if opts.direct_io {
            match probe_direct_io(store.dir()) {
                Ok(()) => (true, "O_DIRECT".to_owned()),
                Err(why) => (false, format!("page cache: {why}")),
            }
        } else {
            (false, "page cache".to_owned())
        };
        let wopts = WriterOptions {
            chunk_bytes: opts.chunk_bytes,
            // The pipeline's writer decides when to sync (when it has caught up).
            sync_interval: None,
            direct_io,
            summarizer: opts.summarizer.as_ref().map(|s| s.0.clone()),
            segment_bytes: opts.segment_bytes,
        };
        let writer = store
            .create_stream_with(base, &params, SystemTime::now(), wopts)
            .map_err(store_err)?;
        Ok(Self {
            name: writer.name().to_owned(),
            writer,
            write_mode,
        })
    }
}

impl StoreSink {
    /// Records an attribute with the stream (`capture_mode`, …), before any chunk.
    pub fn set_attr(&mut self, key: &str, value: &str) -> Result<()> {
        self.writer.set_attr(key, value).map_err(store_err)
    }
}

impl Sink for StoreSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn write_chunk(&mut self, chunk: &mut ChunkBuf) -> Result<()> {
        self.writer
            .write_chunk(chunk.store_chunk())
            .map_err(store_err)
    }

    fn sync(&mut self) -> Result<()> {
        self.writer.sync().map_err(store_err)
    }

    fn write_mode(&self) -> Option<&str> {
        Some(&self.write_mode)
    }

    fn seal(self: Box<Self>) -> Result<Sealed> {
        let s = self.writer.seal().map_err(store_err)?;
        Ok(Sealed {
            name: s.name,
            packets: s.packets,
            bytes: s.bytes,
        })
    }
}
