//! Where chunks go: the store's stream writer, or a plain pcap-ns file; and a wrapper that
//! slows any sink down (fault injection for the drop-accounting tests).

use crate::chunk::ChunkBuf;
use crate::error::{Error, Result};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What sealing a stream reports.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sealed {
    /// Full stored name.
    pub name: String,
    /// Packets written through this sink.
    pub packets: u64,
    /// Record bytes written through this sink.
    pub bytes: u64,
}

/// A destination of chunks, driven by the writer thread.
pub trait Sink: Send {
    /// The full stored name (for the store: name + `_YYYYMMDD_HHMM`).
    fn name(&self) -> &str;
    /// Appends one chunk (its packets are in time order and not earlier than the last
    /// chunk's). After `Ok`, the packets survive a crash of this process. The chunk is the
    /// capture thread's own buffer: the sink may rewrite its store header, nothing else.
    fn write_chunk(&mut self, chunk: &mut ChunkBuf) -> Result<()>;
    /// Makes what was written so far durable (the writer calls it when it has time).
    fn sync(&mut self) -> Result<()> {
        Ok(())
    }
    /// How the data is written (`O_DIRECT`, `page cache: why`), if the sink knows.
    fn write_mode(&self) -> Option<&str> {
        None
    }
    /// Flushes and seals the stream.
    fn seal(self: Box<Self>) -> Result<Sealed>;
}

/// Writes a pcap file with nanosecond timestamps: the global header, then the chunks'
/// records as they are. Readable at any moment, even after a crash.
#[derive(Debug)]
pub struct PcapFileSink {
    path: PathBuf,
    name: String,
    file: File,
    packets: u64,
    bytes: u64,
}

/// The 24-byte pcap-ns global header (little-endian), for a link type as the capture
/// counts it (a `u32`; every `LINKTYPE_*` fits 16 bits).
pub fn pcap_ns_header(link_type: u32, snaplen: u32) -> [u8; wirecap_pcap::PCAP_NS_HEADER_LEN] {
    wirecap_pcap::pcap_ns_header(wirecap_pcap::LinkType(link_type as u16), snaplen)
}

impl PcapFileSink {
    /// Creates (truncates) `path`.
    pub fn create(path: &Path, link_type: u32, snaplen: u32) -> Result<Self> {
        let mut file =
            File::create(path).map_err(|e| Error::io(format!("create {}", path.display()), e))?;
        file.write_all(&pcap_ns_header(link_type, snaplen))
            .map_err(|e| Error::io(format!("write {}", path.display()), e))?;
        Ok(Self {
            name: path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path: path.to_owned(),
            file,
            packets: 0,
            bytes: 0,
        })
    }
}

impl Sink for PcapFileSink {
    fn name(&self) -> &str {
        &self.name
    }
    fn write_chunk(&mut self, chunk: &mut ChunkBuf) -> Result<()> {
        self.file
            .write_all(chunk.as_bytes())
            .map_err(|e| Error::io(format!("write {}", self.path.display()), e))?;
        self.packets += u64::from(chunk.packets());
        self.bytes += chunk.len_bytes() as u64;
        Ok(())
    }
    fn seal(self: Box<Self>) -> Result<Sealed> {
        self.file
            .sync_all()
            .map_err(|e| Error::io(format!("sync {}", self.path.display()), e))?;
        Ok(Sealed {
            name: self.name,
            packets: self.packets,
            bytes: self.bytes,
        })
    }
}

/// Wraps a sink and sleeps before every chunk: a disk that cannot keep up.
pub struct Throttled<S> {
    inner: S,
    delay: Duration,
}

impl<S: Sink> Throttled<S> {
    /// `inner`, slowed by `delay` per chunk.
    pub fn new(inner: S, delay: Duration) -> Self {
        Self { inner, delay }
    }
}

impl<S: Sink> Sink for Throttled<S> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn write_chunk(&mut self, chunk: &mut ChunkBuf) -> Result<()> {
        std::thread::sleep(self.delay);
        self.inner.write_chunk(chunk)
    }
    fn sync(&mut self) -> Result<()> {
        self.inner.sync()
    }
    fn write_mode(&self) -> Option<&str> {
        self.inner.write_mode()
    }
    fn seal(self: Box<Self>) -> Result<Sealed> {
        Box::new(self.inner).seal()
    }
}

/// Keeps chunks in memory (tests, and callers that stream elsewhere).
#[derive(Debug, Default)]
pub struct MemorySink {
    /// The records written, back to back.
    pub records: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    /// Chunks written.
    pub chunks: u64,
}

impl Sink for MemorySink {
    fn name(&self) -> &str {
        "memory"
    }
    fn write_chunk(&mut self, chunk: &mut ChunkBuf) -> Result<()> {
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(chunk.as_bytes());
        self.chunks += 1;
        Ok(())
    }
    fn seal(self: Box<Self>) -> Result<Sealed> {
        let bytes = self.records.lock().unwrap_or_else(|e| e.into_inner()).len() as u64;
        Ok(Sealed {
            name: "memory".into(),
            packets: 0,
            bytes,
        })
    }
}
