//! The store as a [`Sink`]: one stream of `wirecap-store`, one store chunk per pipeline chunk.

use crate::chunk::ChunkBuf;
use crate::error::{Error, Result};
use crate::frame::split_ns;
use crate::sink::{Sealed, Sink};
use std::time::SystemTime;
use wirecap_pcap::LinkType;
use wirecap_store::{Chunk, Store, StreamParams, StreamWriter};

fn store_err(e: wirecap_store::Error) -> Error {
    Error::Store(Box::new(e))
}

/// Writes into a new stream of the store.
pub struct StoreSink {
    writer: StreamWriter,
    chunk: Chunk,
    name: String,
}

impl std::fmt::Debug for StoreSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSink")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl StoreSink {
    /// Creates the stream `base` + `_YYYYMMDD_HHMM` in `store`.
    pub fn create(
        store: &Store,
        base: &str,
        link_type: u32,
        snaplen: u32,
        source: &str,
        chunk_bytes: usize,
    ) -> Result<Self> {
        let link_type = u16::try_from(link_type).map_err(|_| {
            Error::Config(format!("link type {link_type} does not fit a pcap header"))
        })?;
        let params = StreamParams {
            link_type: LinkType(link_type),
            snaplen,
            source: source.to_owned(),
        };
        let writer = store
            .create_stream(base, &params, SystemTime::now())
            .map_err(store_err)?;
        Ok(Self {
            name: writer.name().to_owned(),
            writer,
            chunk: Chunk::with_capacity(chunk_bytes),
        })
    }
}

impl Sink for StoreSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn write_chunk(&mut self, chunk: &ChunkBuf) -> Result<()> {
        self.chunk.clear();
        for r in chunk.records() {
            let (sec, nsec) = split_ns(r.ts_ns);
            self.chunk
                .push_parts(sec, nsec, r.orig_len, r.data)
                .map_err(store_err)?;
        }
        self.writer.write_chunk(&mut self.chunk).map_err(store_err)
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
