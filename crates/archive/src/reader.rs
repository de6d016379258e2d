//! Reading archived segments: the store's [`SegmentSource`] for segments whose local
//! copy is gone.
//!
//! A read asks for the bytes of one chunk; they are fetched as the aligned 1 MiB blocks
//! that hold them ([`BLOCK`]), with ranged GETs, through a cache bounded in bytes (least
//! recently used blocks go first). A reader going through a segment in order (a
//! download) gets the next [`AHEAD_BLOCKS`] blocks fetched in the background while it
//! sends the current ones; a lone read (a 1 s window) fetches nothing ahead. So a window
//! costs at most its own bytes plus two blocks of alignment (plus the read-ahead once it
//! spans several chunks). The store checks every chunk's CRC32C, so a damaged object is
//! an error naming the chunk, never wrong packets.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use object_store::ObjectStore;
use tokio::sync::OnceCell;
use wirecap_store::remote::{SegmentSource, remote_len};

use crate::Keys;
use crate::zchunks::{self, Frame};

/// What one cached unit is: an aligned block of a plain object, or one zstd frame.
#[derive(Clone)]
struct Unit {
    id: u64,
    /// Bytes of the object to GET.
    get: std::ops::Range<u64>,
    /// The frame to decompress them as (a compressed segment).
    frame: Option<Frame>,
    /// Where the unit's bytes start in the segment.
    raw_start: u64,
}

/// Unit of fetching and caching.
pub const BLOCK: u64 = 1 << 20;
/// Blocks fetched ahead of a reader that goes through a segment in order.
pub const AHEAD_BLOCKS: u64 = 4;

/// Counters of the reads, for the status and the tests.
#[derive(Debug, Default)]
pub struct ReadStats {
    pub requests: AtomicU64,
    pub bytes: AtomicU64,
    pub errors: AtomicU64,
    pub last_error: Mutex<Option<String>>,
}

/// Reads archived segments (see the module doc). Cheap to clone.
#[derive(Clone)]
pub struct ArchiveReader {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn ObjectStore>,
    keys: Keys,
    probe: String,
    rt: tokio::runtime::Handle,
    limit: u64,
    cache: Mutex<Cache>,
    /// Per object: the range of its last read, to see a reader going in order.
    last: Mutex<HashMap<String, (u64, u64)>>,
    /// Per segment object: its seek table when it is kept compressed (fetched once:
    /// archived segments never change).
    tables: Mutex<HashMap<String, Option<Arc<Vec<Frame>>>>>,
    stats: Arc<ReadStats>,
}

type BlockKey = (String, u64);

#[derive(Default)]
struct Cache {
    blocks: HashMap<BlockKey, Slot>,
    bytes: u64,
    tick: u64,
}

struct Slot {
    cell: Arc<OnceCell<Bytes>>,
    used: u64,
    len: u64,
}

impl Cache {
    fn slot(&mut self, k: &BlockKey) -> Arc<OnceCell<Bytes>> {
        self.tick += 1;
        let tick = self.tick;
        let s = self.blocks.entry(k.clone()).or_insert_with(|| Slot {
            cell: Arc::new(OnceCell::new()),
            used: tick,
            len: 0,
        });
        s.used = tick;
        s.cell.clone()
    }

    fn filled(&mut self, k: &BlockKey, len: u64, limit: u64) {
        if let Some(s) = self.blocks.get_mut(k)
            && s.len == 0
        {
            s.len = len;
            self.bytes += len;
        }
        while self.bytes > limit {
            let Some(victim) = self
                .blocks
                .iter()
                .filter(|(_, s)| s.len > 0)
                .min_by_key(|(_, s)| s.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(s) = self.blocks.remove(&victim) {
                self.bytes -= s.len;
            }
        }
    }
}

impl ArchiveReader {
    pub fn new(
        store: Arc<dyn ObjectStore>,
        keys: Keys,
        probe: &str,
        rt: tokio::runtime::Handle,
        cache_bytes: u64,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                keys,
                probe: probe.to_owned(),
                rt,
                limit: cache_bytes,
                cache: Mutex::default(),
                last: Mutex::default(),
                tables: Mutex::default(),
                stats: Arc::default(),
            }),
        }
    }

    pub fn stats(&self) -> &ReadStats {
        &self.inner.stats
    }

    /// Bytes in the cache now.
    pub fn cache_bytes(&self) -> u64 {
        self.inner
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .bytes
    }

    pub fn cache_limit(&self) -> u64 {
        self.inner.limit
    }
}

impl Inner {
    async fn block(self: Arc<Self>, key: String, u: Unit) -> Result<Bytes, String> {
        let k = (key, u.id);
        let cell = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .slot(&k);
        let path = object_store::path::Path::from(k.0.as_str());
        let me = self.clone();
        let r = cell
            .get_or_try_init(|| async move {
                let (from, to) = (u.get.start, u.get.end);
                me.stats.requests.fetch_add(1, Ordering::Relaxed);
                let b = me
                    .store
                    .get_range(&path, from..to)
                    .await
                    .map_err(|e| crate::redact::in_words(&e))?;
                me.stats.bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
                if b.len() as u64 != to - from {
                    return Err(format!(
                        "the archive returned {} bytes for bytes {from}..{to} of {path}: the object is shorter than the segment",
                        b.len()
                    ));
                }
                match &u.frame {
                    None => Ok(b),
                    Some(f) => zchunks::decompress(&b, f)
                        .map(Bytes::from)
                        .map_err(|e| format!("{path}: {e}")),
                }
            })
            .await
            .cloned();
        let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        match &r {
            Ok(b) => c.filled(&k, b.len() as u64, self.limit),
            Err(_) => {
                c.blocks.remove(&k);
            }
        }
        r
    }

    /// The seek table of segment object `key` when the manifest in `dir` says it is kept
    /// compressed; `None` for a plain object.
    fn table(
        self: &Arc<Self>,
        dir: &Path,
        key: &str,
        segment: u32,
    ) -> Result<Option<Arc<Vec<Frame>>>, String> {
        if let Some(t) = self
            .tables
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
        {
            return Ok(t.clone());
        }
        let zstd = crate::Manifest::load_local(dir)
            .and_then(|m| m.segments.get(&segment).and_then(|e| e.encoding.clone()))
            .is_some_and(|e| e == "zstd");
        let t = if zstd {
            let me = self.clone();
            let path = object_store::path::Path::from(format!("{key}{}", zchunks::TABLE_SUFFIX));
            let b = crate::wait(&self.rt, async move {
                me.stats.requests.fetch_add(1, Ordering::Relaxed);
                let r = me.store.get(&path).await?.bytes().await;
                if let Ok(b) = &r {
                    me.stats.bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
                }
                r
            })
            .map_err(|e| crate::redact::in_words(&e))?;
            Some(Arc::new(
                zchunks::decode_table(&b).map_err(|e| format!("{key}: {e}"))?,
            ))
        } else {
            None
        };
        self.tables
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_owned(), t.clone());
        Ok(t)
    }
}

impl SegmentSource for ArchiveReader {
    fn read(
        &self,
        dir: &Path,
        stream: &str,
        segment: u32,
        offset: u64,
        len: u64,
    ) -> io::Result<Vec<u8>> {
        let inner = &self.inner;
        let probe = crate::origin_probe(dir).unwrap_or_else(|| inner.probe.clone());
        let seg = wirecap_store::layout::segment(segment);
        let key = inner.keys.file(&probe, stream, &seg).to_string();
        let seg_len = remote_len(dir, segment).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{seg} is not in the archive"),
            )
        })?;
        let end = offset.saturating_add(len).min(seg_len);
        if offset >= end {
            return Ok(Vec::new());
        }
        let fail = |why: String| {
            let why = format!("the archive's copy of {seg}: {why}");
            inner.stats.errors.fetch_add(1, Ordering::Relaxed);
            *inner
                .stats
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(why.clone());
            io::Error::other(why)
        };
        let table = inner.table(dir, &key, segment).map_err(fail)?;
        let in_order = {
            let mut l = inner.last.lock().unwrap_or_else(|e| e.into_inner());
            let prev = l.insert(key.clone(), (offset, end));
            prev.is_some_and(|(a, b)| offset >= a && offset <= b + BLOCK)
        };
        // The units holding [offset, end), and those to fetch ahead.
        let (obj, want, ahead): (String, Vec<Unit>, Vec<Unit>) = match &table {
            None => {
                let unit = |i: u64| Unit {
                    id: i,
                    get: i * BLOCK..((i + 1) * BLOCK).min(seg_len),
                    frame: None,
                    raw_start: i * BLOCK,
                };
                let (first, last) = (offset / BLOCK, (end - 1) / BLOCK);
                let n = seg_len.div_ceil(BLOCK);
                let ahead = (last + 1..(last + 1 + AHEAD_BLOCKS).min(n))
                    .map(unit)
                    .collect();
                (key.clone(), (first..=last).map(unit).collect(), ahead)
            }
            Some(t) => {
                let unit = |i: usize| {
                    let f = t[i];
                    Unit {
                        id: i as u64,
                        get: f.stored_offset..f.stored_offset + u64::from(f.stored_len),
                        frame: Some(f),
                        raw_start: f.raw_offset,
                    }
                };
                let (Some(first), Some(last)) =
                    (zchunks::frame_at(t, offset), zchunks::frame_at(t, end - 1))
                else {
                    return Err(fail(format!(
                        "{seg}: bytes {offset}..{end} are not in the archive's seek table"
                    )));
                };
                // Read ahead about as many bytes as for a plain object.
                let mut ahead = Vec::new();
                let mut bytes = 0;
                for i in last + 1..t.len() {
                    if bytes >= AHEAD_BLOCKS * BLOCK {
                        break;
                    }
                    bytes += u64::from(t[i].raw_len);
                    ahead.push(unit(i));
                }
                (
                    format!("{key}{}", zchunks::SUFFIX),
                    (first..=last).map(unit).collect(),
                    ahead,
                )
            }
        };
        if in_order {
            for u in ahead {
                let f = inner.clone().block(obj.clone(), u);
                inner.rt.spawn(async move {
                    let _ = f.await;
                });
            }
        }
        let starts: Vec<u64> = want.iter().map(|u| u.raw_start).collect();
        let futs: Vec<_> = want
            .into_iter()
            .map(|u| inner.clone().block(obj.clone(), u))
            .collect();
        let got = crate::wait(&inner.rt, futures_util::future::join_all(futs));
        let mut out = Vec::new();
        for (b, start) in got.into_iter().zip(starts) {
            let b = b.map_err(fail)?;
            let skip = offset.saturating_sub(start) as usize;
            out.extend_from_slice(&b[skip.min(b.len())..]);
        }
        Ok(out)
    }
}
