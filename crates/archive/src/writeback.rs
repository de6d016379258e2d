//! Writeback: sealed segments (and the files that make them readable) to the archive.
//!
//! A pass looks at every stream of the store (never a fleet copy): a segment is sealed
//! when its stream is closed or a later segment holds indexed chunks. Sealed segments
//! not named in the stream's manifest are uploaded, oldest stream first, up to
//! `concurrency` at once (a segment up to [`SINGLE_PUT_MAX`] in one PUT, larger ones or
//! any under a `max_mbps` cap in 8 MiB parts, a few in flight), within the `max_mbps`
//! budget. Each object is checked before it counts: its size by a HEAD after the
//! upload, its content by the server against the SHA-256 sent with it (S3). After each
//! batch the stream's other files are uploaded when they changed, then the manifest, in
//! the archive first and then locally: a segment counts as archived only from then on,
//! so whatever stops a pass (a kill, a restart, an archive that went away) only means
//! the same upload again next time. Passes run every [`PASS_EVERY`] until the server
//! stops; a failed one is retried at the next.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, PutPayload, WriteMultipart};
use sha2::{Digest, Sha256};
use wirecap_store::{Store, StreamState};

use crate::manifest::{Entry, Kind, Manifest, kind};
use crate::reader::ArchiveReader;
use crate::status::ArchiveStatus;
use crate::{Error, Keys, Settings};

/// How often writeback looks for sealed segments (and the fleet view for new streams).
pub const PASS_EVERY: Duration = Duration::from_secs(2);
/// Upload part size; smaller files go in one PUT.
pub const PART: usize = 8 << 20;
/// Parts of one object in flight at once.
const PARTS_IN_FLIGHT: usize = 2;
/// Sealed segments up to this size go in one PUT when no bandwidth cap asks for pacing
/// (rclone's cutoff is 200 MiB): one request instead of `2 + size / PART`, and no parts
/// for the server to assemble, which cost an S3-compatible server on the same machine
/// (s3s-fs) as much CPU again as receiving them (bench/archive.sh).
pub const SINGLE_PUT_MAX: u64 = 128 << 20;

/// The archive tier of this node: the object store, writeback, reads, eviction.
pub struct Archive {
    settings: Settings,
    store: Arc<dyn ObjectStore>,
    keys: Keys,
    rt: tokio::runtime::Handle,
    reader: ArchiveReader,
    limiter: Limiter,
    status: Mutex<ArchiveStatus>,
    uploaded_bytes: AtomicU64,
    uploaded_segments: AtomicU64,
    errors: AtomicU64,
    evicted: AtomicU64,
    lost: AtomicU64,
    layout_written: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive")
            .field("target", &self.settings.target.to_string())
            .field("probe", &self.settings.probe)
            .finish()
    }
}

/// A runtime of its own, for the whole process lifetime: reads wait on it from the
/// server's blocking threads, and dropping a runtime inside another one panics.
fn runtime() -> tokio::runtime::Handle {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("wc-archive".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("wc-archive")
                .enable_all()
                .build()
                .expect("the archive runtime starts");
            let _ = tx.send(rt.handle().clone());
            rt.block_on(std::future::pending::<()>());
        })
        .expect("the archive thread starts");
    rx.recv().expect("the archive runtime starts")
}

fn now_rfc3339() -> String {
    wirecap_store::timefmt::rfc3339(wirecap_store::now_ns())
}

fn mtime_ns(m: &std::fs::Metadata) -> u64 {
    m.modified()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64)
}

/// What one pass found to do for one stream.
struct Plan {
    name: String,
    dir: PathBuf,
    manifest: Manifest,
    /// Sealed segments not yet archived: `(number, bytes)`.
    pending: Vec<(u32, u64)>,
    /// Files that go with a segment, by segment.
    of_segment: BTreeMap<u32, Vec<String>>,
    /// The stream's other files whose size or time differ from the manifest's.
    changed_files: bool,
    sealed: bool,
    /// Closed, and its final flow index not yet exported as Parquet.
    flows_behind: bool,
}

impl Archive {
    /// Connects to the archive of `settings` (nothing is sent yet).
    pub fn open(settings: Settings) -> Result<Arc<Self>, Error> {
        let store = crate::open_store(&settings)?;
        let keys = Keys::new(&settings.target);
        let rt = runtime();
        let reader = ArchiveReader::new(
            store.clone(),
            keys.clone(),
            &settings.probe,
            rt.clone(),
            settings.cache_bytes,
        );
        let status = ArchiveStatus {
            url: settings.target.to_string(),
            probe: settings.probe.clone(),
            mode: if settings.read_only {
                "read-only"
            } else {
                "writeback"
            }
            .into(),
            state: "starting".into(),
            cache_limit_bytes: settings.cache_bytes,
            ..ArchiveStatus::default()
        };
        Ok(Arc::new(Self {
            limiter: Limiter::new(settings.max_bytes_per_sec),
            settings,
            store,
            keys,
            rt,
            reader,
            status: Mutex::new(status),
            uploaded_bytes: AtomicU64::new(0),
            uploaded_segments: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            layout_written: Default::default(),
        }))
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn probe(&self) -> &str {
        &self.settings.probe
    }

    pub fn read_only(&self) -> bool {
        self.settings.read_only
    }

    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    pub(crate) fn set_probes(&self, probes: Vec<String>) {
        self.set_status(|s| {
            s.probes = probes;
            s.state = "ok".into();
            s.last_error = None;
        });
    }

    /// One refresh of the fleet view, waited for.
    pub fn sync_blocking(self: &Arc<Self>, store: &Store) -> Result<Vec<String>, Error> {
        let me = self.clone();
        let store = store.clone();
        crate::wait(&self.rt.clone(), async move {
            crate::fleet::sync(&me, &store).await
        })
    }

    /// The store's source of archived segments.
    pub fn reader(&self) -> ArchiveReader {
        self.reader.clone()
    }

    /// The status now.
    pub fn status(&self) -> ArchiveStatus {
        let mut s = self
            .status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let r = self.reader.stats();
        s.uploaded_bytes_total = self.uploaded_bytes.load(Ordering::Relaxed);
        s.uploaded_segments_total = self.uploaded_segments.load(Ordering::Relaxed);
        s.errors_total = self.errors.load(Ordering::Relaxed) + r.errors.load(Ordering::Relaxed);
        s.evicted_bytes_total = self.evicted.load(Ordering::Relaxed);
        s.lost_bytes_total = self.lost.load(Ordering::Relaxed);
        s.read_requests_total = r.requests.load(Ordering::Relaxed);
        s.read_bytes_total = r.bytes.load(Ordering::Relaxed);
        s.cache_bytes = self.reader.cache_bytes();
        if s.last_error.is_none()
            && let Some(e) = r
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        {
            s.last_error = Some(e);
        }
        s
    }

    fn set_status(&self, f: impl FnOnce(&mut ArchiveStatus)) {
        f(&mut self.status.lock().unwrap_or_else(|e| e.into_inner()));
    }

    fn failed(&self, e: &Error) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let words = crate::redact::scrub(&e.to_string());
        tracing::warn!("archive: {words}");
        self.set_status(|s| {
            s.state = "error".into();
            s.last_error = Some(words);
            s.last_error_at = Some(now_rfc3339());
        });
    }

    /// Starts the background work on its own runtime: writeback passes, or (read-only)
    /// the fleet view's refresh.
    pub fn start(self: &Arc<Self>, store: Store) {
        let me = self.clone();
        self.rt.spawn(async move {
            loop {
                let r = if me.settings.read_only {
                    crate::fleet::sync(&me, &store).await.map(|_| ())
                } else {
                    me.pass(&store).await
                };
                if let Err(e) = r {
                    me.failed(&e);
                }
                tokio::time::sleep(if me.settings.read_only {
                    PASS_EVERY * 5
                } else {
                    PASS_EVERY
                })
                .await;
            }
        });
    }

    /// One writeback pass, waited for (tests, `wirecap` tools).
    pub fn pass_blocking(self: &Arc<Self>, store: &Store) -> Result<(), Error> {
        let me = self.clone();
        let store = store.clone();
        crate::wait(&self.rt.clone(), async move { me.pass(&store).await })
    }

    async fn write_layout(&self) -> Result<(), Error> {
        if self.layout_written.load(Ordering::Relaxed) {
            return Ok(());
        }
        let doc = serde_json::json!({
            "format": crate::FORMAT,
            "layout": "PROBE/STREAM/FILE",
            "manifest": crate::manifest::MANIFEST_FILE,
            "writer": concat!("wirecap ", env!("CARGO_PKG_VERSION")),
        });
        self.store
            .put(
                &self.keys.layout(),
                PutPayload::from(doc.to_string().into_bytes()),
            )
            .await?;
        self.layout_written.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// One pass over the store (see the module doc).
    pub async fn pass(self: &Arc<Self>, store: &Store) -> Result<(), Error> {
        let started = Instant::now();
        let before = self.uploaded_bytes.load(Ordering::Relaxed);
        // Deleted streams first: a stream of the same name written since goes after.
        crate::deletes::run(&self.store, &self.keys, store).await?;
        let (plans, lag_bytes, lag_seconds) = {
            let (store, probe) = (store.clone(), self.settings.probe.clone());
            tokio::task::spawn_blocking(move || scan(&store, &probe))
                .await
                .map_err(|e| Error::Verify(format!("scan stopped: {e}")))??
        };
        let pending: u64 = plans.iter().map(|p| p.pending.len() as u64).sum();
        self.set_status(|s| {
            s.lag_bytes = lag_bytes;
            s.lag_seconds = lag_seconds;
            s.pending_segments = pending;
        });
        if !plans.is_empty() {
            self.write_layout().await?;
        }
        for plan in plans {
            self.archive_stream(store, plan).await?;
        }
        let secs = started.elapsed().as_secs_f64().max(1e-3);
        let sent = self.uploaded_bytes.load(Ordering::Relaxed) - before;
        let (left, lag_bytes, lag_seconds) = {
            let (store, probe) = (store.clone(), self.settings.probe.clone());
            tokio::task::spawn_blocking(move || scan(&store, &probe))
                .await
                .map_err(|e| Error::Verify(format!("scan stopped: {e}")))??
        };
        self.set_status(|s| {
            s.state = "ok".into();
            s.last_error = None;
            s.lag_bytes = lag_bytes;
            s.lag_seconds = lag_seconds;
            s.pending_segments = left.iter().map(|p| p.pending.len() as u64).sum();
            s.rate_bytes_per_second = sent as f64 / secs;
            if sent > 0 {
                s.last_upload_at = Some(now_rfc3339());
            }
        });
        Ok(())
    }

    async fn archive_stream(self: &Arc<Self>, store: &Store, mut plan: Plan) -> Result<(), Error> {
        let batch = self.settings.concurrency * 2;
        let pending = std::mem::take(&mut plan.pending);
        let mut first_err = None;
        for part in pending.chunks(batch) {
            let uploads = futures_util::stream::iter(part.iter().copied())
                .map(|(n, _)| {
                    let me = self.clone();
                    let (name, dir) = (plan.name.clone(), plan.dir.clone());
                    let extra = plan.of_segment.get(&n).cloned().unwrap_or_default();
                    async move { (n, me.upload_segment(&name, &dir, n, &extra).await) }
                })
                .buffer_unordered(self.settings.concurrency)
                .collect::<Vec<_>>()
                .await;
            let mut done = 0;
            for (n, r) in uploads {
                match r {
                    Ok(entries) => {
                        for (file, e) in entries {
                            match kind(&file) {
                                Kind::Segment(_) => {
                                    plan.manifest.segments.insert(n, e);
                                }
                                _ => {
                                    plan.manifest.files.insert(file, e);
                                }
                            }
                        }
                        done += 1;
                    }
                    Err(e) => {
                        first_err.get_or_insert(e);
                    }
                }
            }
            if done > 0 {
                self.commit(store, &mut plan).await?;
                self.uploaded_segments.fetch_add(done, Ordering::Relaxed);
            }
            if first_err.is_some() {
                break;
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        let all_in = plan.sealed && !plan.manifest.sealed;
        if plan.changed_files && plan.sealed || all_in || plan.flows_behind {
            self.commit(store, &mut plan).await?;
        }
        Ok(())
    }

    /// Uploads the stream's changed files, then its manifest, then keeps it locally; then
    /// the flow records of what is now archived, as Parquet (see [`crate::flows`]).
    async fn commit(&self, store: &Store, plan: &mut Plan) -> Result<(), Error> {
        for (file, m) in stream_files(&plan.dir)? {
            let known = plan.manifest.files.get(&file);
            if known.is_some_and(|k| k.bytes == m.0 && k.mtime_ns == m.1) {
                continue;
            }
            let key = self.keys.file(&self.settings.probe, &plan.name, &file);
            let e = self.put_file(key, plan.dir.join(&file)).await?;
            plan.manifest.files.insert(file, e);
        }
        plan.manifest.sealed = plan.sealed
            && segments_on_disk(&plan.dir)
                .iter()
                .all(|(n, _)| plan.manifest.segments.contains_key(n));
        self.write_manifest(plan).await?;
        self.export_flows(store, plan).await
    }

    /// The manifest, in the archive first and then locally.
    async fn write_manifest(&self, plan: &mut Plan) -> Result<(), Error> {
        plan.manifest.updated_ns = wirecap_store::now_ns();
        let key = self.keys.manifest(&self.settings.probe, &plan.name);
        self.store
            .put(&key, PutPayload::from(plan.manifest.to_json()))
            .await?;
        plan.manifest.store_local(&plan.dir)
    }

    /// Writes the flow records of the archived part of the stream not yet exported, then
    /// records how far that went in the manifest. The objects' names depend only on the
    /// blocks, so a retry overwrites what a failed attempt wrote.
    async fn export_flows(&self, store: &Store, plan: &mut Plan) -> Result<(), Error> {
        let Some(stamp) = flows_stamp(&plan.dir) else {
            return Ok(());
        };
        loop {
            let (s, name, dir, m) = (
                store.clone(),
                plan.name.clone(),
                plan.dir.clone(),
                plan.manifest.clone(),
            );
            let ex =
                tokio::task::spawn_blocking(move || crate::flows::prepare(&s, &name, &dir, &m))
                    .await
                    .map_err(|e| Error::Verify(format!("flow export stopped: {e}")))??;
            let f = &plan.manifest.flows;
            if ex.blocks == f.blocks && stamp == f.stamp {
                return Ok(());
            }
            for (key, bytes) in ex.objects {
                let mut w = ObjWriter::new(&self.store, self.keys.under(&key));
                self.limiter.take(bytes.len() as u64).await;
                w.write(&bytes).await?;
                let sent = w.finish().await?;
                self.uploaded_bytes.fetch_add(sent, Ordering::Relaxed);
                plan.manifest.flows.objects.insert(key);
            }
            plan.manifest.flows.blocks = ex.blocks;
            if !ex.more {
                // Only then is a closed stream's export done (see `scan`).
                plan.manifest.flows.stamp = stamp;
            }
            self.write_manifest(plan).await?;
            if !ex.more {
                return Ok(());
            }
        }
    }

    async fn upload_segment(
        &self,
        stream: &str,
        dir: &Path,
        n: u32,
        extra: &[String],
    ) -> Result<Vec<(String, Entry)>, Error> {
        let mut out = Vec::new();
        let seg = wirecap_store::layout::segment(n);
        if self.settings.compress {
            out.push((seg.clone(), self.put_segment_zstd(stream, dir, n).await?));
        }
        let raw = (!self.settings.compress).then_some(&seg);
        if let Some(seg) = raw {
            let key = self.keys.file(&self.settings.probe, stream, seg);
            let path = dir.join(seg);
            let e = match self.put_sealed_whole(&key, &path).await? {
                Some(e) => e,
                None => self.put_file(key, path).await?,
            };
            out.push((seg.clone(), e));
        }
        for file in extra {
            let key = self.keys.file(&self.settings.probe, stream, file);
            let e = self.put_file(key, dir.join(file)).await?;
            out.push((file.clone(), e));
        }
        Ok(out)
    }

    /// Uploads sealed segment file `path` in one PUT of its mapping (no copy in memory)
    /// and checks the object; `None` when it goes in parts instead (too large, or a
    /// bandwidth cap to pace).
    async fn put_sealed_whole(&self, key: &ObjPath, path: &Path) -> Result<Option<Entry>, Error> {
        let io = |what: &str, e| Error::Io {
            what: format!("{what} {}", path.display()),
            source: e,
        };
        let meta = std::fs::metadata(path).map_err(|e| io("cannot read", e))?;
        if self.limiter.rate.is_some() || meta.len() == 0 || meta.len() > SINGLE_PUT_MAX {
            return Ok(None);
        }
        let file = std::fs::File::open(path).map_err(|e| io("cannot open", e))?;
        // SAFETY: a mapping is unsound only if the file shrinks while it is mapped. A
        // sealed segment never does: only the segment a writer appends to is ever cut
        // (see wirecap_store::mapped), and retention deletes whole files, which leaves
        // the mapping valid.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| io("cannot map", e))?;
        let body = Bytes::from_owner(map);
        let sha256 = hex(&Sha256::digest(&body));
        self.limiter.take(body.len() as u64).await;
        let len = body.len() as u64;
        self.store.put(key, PutPayload::from(body)).await?;
        check_size(&self.store, key, len).await?;
        self.uploaded_bytes.fetch_add(len, Ordering::Relaxed);
        Ok(Some(Entry {
            bytes: len,
            sha256,
            mtime_ns: mtime_ns(&meta),
            encoding: None,
            stored_bytes: len,
        }))
    }

    /// Uploads one file and checks the object; returns what the manifest records.
    async fn put_file(&self, key: ObjPath, path: PathBuf) -> Result<Entry, Error> {
        let io = |what: &str, e| Error::Io {
            what: format!("{what} {}", path.display()),
            source: e,
        };
        let meta = std::fs::metadata(&path).map_err(|e| io("cannot read", e))?;
        let mut file = std::fs::File::open(&path).map_err(|e| io("cannot open", e))?;
        let mut hasher = Sha256::new();
        let mut w = ObjWriter::new(&self.store, key);
        let mut buf = vec![0u8; PART.min(meta.len() as usize + 1)];
        loop {
            let n = read_full(&mut file, &mut buf).map_err(|e| io("cannot read", e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            self.limiter.take(n as u64).await;
            w.write(&buf[..n]).await?;
        }
        let sent = w.finish().await?;
        self.uploaded_bytes.fetch_add(sent, Ordering::Relaxed);
        Ok(Entry {
            bytes: sent,
            sha256: hex(&hasher.finalize()),
            mtime_ns: mtime_ns(&meta),
            encoding: None,
            stored_bytes: sent,
        })
    }

    /// Uploads segment `n` as per-chunk zstd frames and its seek table (see
    /// [`crate::zchunks`]); the manifest's entry records the segment's own size and digest.
    async fn put_segment_zstd(&self, stream: &str, dir: &Path, n: u32) -> Result<Entry, Error> {
        use crate::zchunks;
        use std::os::unix::fs::FileExt;
        let seg = wirecap_store::layout::segment(n);
        let path = dir.join(&seg);
        let io = |what: &str, e| Error::Io {
            what: format!("{what} {}", path.display()),
            source: e,
        };
        let meta = std::fs::metadata(&path).map_err(|e| io("cannot read", e))?;
        let len = meta.len();
        let cuts = zchunks::cuts(chunk_offsets(dir, n), len);
        let file = std::fs::File::open(&path).map_err(|e| io("cannot open", e))?;
        let probe = &self.settings.probe;
        let mut w = ObjWriter::new(
            &self.store,
            self.keys
                .file(probe, stream, &format!("{seg}{}", zchunks::SUFFIX)),
        );
        let mut hasher = Sha256::new();
        let mut frames = Vec::with_capacity(cuts.len());
        let mut raw = Vec::new();
        for (i, &from) in cuts.iter().enumerate() {
            let to = cuts.get(i + 1).copied().unwrap_or(len);
            raw.resize((to - from) as usize, 0);
            file.read_exact_at(&mut raw, from)
                .map_err(|e| io("cannot read", e))?;
            hasher.update(&raw);
            let z =
                zstd::bulk::compress(&raw, zchunks::LEVEL).map_err(|e| io("cannot compress", e))?;
            frames.push(zchunks::Frame {
                raw_offset: from,
                raw_len: raw.len() as u32,
                stored_offset: w.total,
                stored_len: z.len() as u32,
            });
            self.limiter.take(z.len() as u64).await;
            w.write(&z).await?;
        }
        let stored = w.finish().await?;
        let table = zchunks::encode_table(&frames);
        let mut t = ObjWriter::new(
            &self.store,
            self.keys
                .file(probe, stream, &format!("{seg}{}", zchunks::TABLE_SUFFIX)),
        );
        t.write(&table).await?;
        let stored = stored + t.finish().await?;
        self.uploaded_bytes.fetch_add(stored, Ordering::Relaxed);
        Ok(Entry {
            bytes: len,
            sha256: hex(&hasher.finalize()),
            mtime_ns: mtime_ns(&meta),
            encoding: Some("zstd".into()),
            stored_bytes: stored,
        })
    }

    /// Deletes stream `name`: locally now, in the archive at the next pass (see
    /// [`crate::deletes`]). A read-only node deletes only its local copy.
    pub fn delete_stream(&self, store: &Store, name: &str) -> Result<(), wirecap_store::Error> {
        if self.settings.read_only {
            return store.delete_stream(name);
        }
        crate::deletes::delete_stream(store, &self.settings.probe, name)
    }

    /// Frees up to `need` bytes by deleting the local copies of archived segments, the
    /// oldest stream first; pinned streams keep theirs. Returns the bytes freed.
    pub fn evict(&self, store: &Store, need: u64) -> u64 {
        let mut cands: Vec<(u64, String, u32, u64)> = Vec::new();
        for name in store.stream_names().unwrap_or_default() {
            let Ok(dir) = store.stream_path(&name) else {
                continue;
            };
            if store.is_pinned(&name).unwrap_or(true) {
                continue;
            }
            let Some(m) = Manifest::load_local(&dir) else {
                continue;
            };
            let key = store
                .open_stream(&name)
                .ok()
                .and_then(|r| r.first_ts().or(Some(r.meta().created_ns)))
                .unwrap_or(0);
            for (n, bytes) in segments_on_disk(&dir) {
                if m.segments.get(&n).is_some_and(|e| e.bytes == bytes) {
                    cands.push((key, name.clone(), n, bytes));
                }
            }
        }
        cands.sort();
        let mut freed = 0;
        for (_, name, n, _) in cands {
            if freed >= need {
                break;
            }
            match store.evict_segment(&name, n) {
                Ok(b) => {
                    freed += b;
                    tracing::info!(stream = %name, segment = n, bytes = b, "archive: local copy of an archived segment deleted (the disk is a cache)");
                }
                Err(e) => tracing::warn!(stream = %name, segment = n, "archive: cannot evict: {e}"),
            }
        }
        self.evicted.fetch_add(freed, Ordering::Relaxed);
        freed
    }

    /// Bytes of stream `name`'s local segments (those below `below`, or all) that are not
    /// in the archive: what deleting them loses.
    pub fn unarchived_bytes(&self, store: &Store, name: &str, below: Option<u32>) -> u64 {
        let Ok(dir) = store.stream_path(name) else {
            return 0;
        };
        if crate::origin_probe(&dir).is_some() {
            return 0;
        }
        let m = Manifest::load_local(&dir).unwrap_or_default();
        segments_on_disk(&dir)
            .into_iter()
            .filter(|(n, _)| below.is_none_or(|b| *n < b))
            .filter(|(n, bytes)| m.segments.get(n).is_none_or(|e| e.bytes != *bytes))
            .map(|(_, b)| b)
            .sum()
    }

    /// Counts data deleted before it was archived, logs it and shows it as a warning.
    pub fn record_lost(&self, stream: &str, bytes: u64) {
        if bytes == 0 {
            return;
        }
        let total = self.lost.fetch_add(bytes, Ordering::Relaxed) + bytes;
        let w = format!(
            "{bytes} bytes of stream {stream} were deleted before they were archived (the disk was full and the archive behind); {total} bytes lost since the start"
        );
        tracing::warn!("archive: {w}");
        self.set_status(|s| s.warning = Some(w));
    }
}

/// One object being written: a single PUT while it fits in a part, a multipart upload
/// (parts in flight bounded) once it does not; checked by a HEAD when finished.
struct ObjWriter<'a> {
    store: &'a Arc<dyn ObjectStore>,
    key: ObjPath,
    buf: Vec<u8>,
    mp: Option<WriteMultipart>,
    total: u64,
}

impl<'a> ObjWriter<'a> {
    fn new(store: &'a Arc<dyn ObjectStore>, key: ObjPath) -> Self {
        Self {
            store,
            key,
            buf: Vec::new(),
            mp: None,
            total: 0,
        }
    }

    async fn write(&mut self, b: &[u8]) -> Result<(), Error> {
        self.total += b.len() as u64;
        if self.mp.is_none() {
            if self.buf.len() + b.len() <= PART {
                self.buf.extend_from_slice(b);
                return Ok(());
            }
            let up = self.store.put_multipart(&self.key).await?;
            let mut mp = WriteMultipart::new_with_chunk_size(up, PART);
            mp.write(&std::mem::take(&mut self.buf));
            self.mp = Some(mp);
        }
        let mp = self.mp.as_mut().expect("a multipart upload");
        if let Err(e) = mp.wait_for_capacity(PARTS_IN_FLIGHT).await {
            if let Some(mp) = self.mp.take() {
                mp.abort().await.ok();
            }
            return Err(e.into());
        }
        mp.write(b);
        Ok(())
    }

    /// Completes the object and checks its size; the bytes sent.
    async fn finish(self) -> Result<u64, Error> {
        match self.mp {
            None => {
                self.store
                    .put(&self.key, PutPayload::from(Bytes::from(self.buf)))
                    .await?;
            }
            Some(mp) => {
                mp.finish().await?;
            }
        }
        check_size(self.store, &self.key, self.total).await?;
        Ok(self.total)
    }
}

/// Checks by a HEAD that object `key` holds the `len` bytes sent.
async fn check_size(store: &Arc<dyn ObjectStore>, key: &ObjPath, len: u64) -> Result<(), Error> {
    let head = store.head(key).await?;
    if head.size != len {
        return Err(Error::Verify(format!(
            "{key} holds {} bytes after the upload of {len}: not counted as archived",
            head.size
        )));
    }
    Ok(())
}

/// Offsets of the chunks of segment `n`, from the stream's chunk index.
fn chunk_offsets(dir: &Path, n: u32) -> Vec<u64> {
    use wirecap_store::index::{CHUNK_RECORD_LEN, ChunkRecord};
    let Ok(data) = std::fs::read(dir.join(wirecap_store::layout::CHUNKS)) else {
        return Vec::new();
    };
    data.chunks_exact(CHUNK_RECORD_LEN)
        .filter_map(|r| ChunkRecord::decode(r.try_into().expect("record length")))
        .filter(|r| r.segment == n)
        .map(|r| r.file_offset)
        .collect()
}

/// Reads until `buf` is full or the file ends.
fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Local segment files `(number, bytes)` of a stream directory.
fn segments_on_disk(dir: &Path) -> Vec<(u32, u64)> {
    let mut v: Vec<(u32, u64)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            match kind(&name) {
                Kind::Segment(n) => Some((n, e.metadata().ok()?.len())),
                _ => None,
            }
        })
        .collect();
    v.sort_unstable();
    v
}

/// A file's `(bytes, mtime_ns)`: how a change is seen.
type Stamp = (u64, u64);

/// The [`Stamp`] of the stream's flow index, if it has one.
fn flows_stamp(dir: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(dir.join(wirecap_store::layout::FLOWS)).ok()?;
    Some((m.len(), mtime_ns(&m)))
}

/// The stream-level files of a directory with their [`Stamp`].
fn stream_files(dir: &Path) -> Result<Vec<(String, Stamp)>, Error> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::Io {
        what: format!("cannot list {}", dir.display()),
        source: e,
    })?;
    let mut v = Vec::new();
    for e in rd.flatten() {
        let Ok(name) = e.file_name().into_string() else {
            continue;
        };
        if kind(&name) != Kind::Stream {
            continue;
        }
        if let Ok(m) = e.metadata()
            && m.is_file()
        {
            v.push((name, (m.len(), mtime_ns(&m))));
        }
    }
    v.sort();
    Ok(v)
}

/// What there is to do: plans (oldest stream first), lag bytes, lag seconds.
fn scan(store: &Store, probe: &str) -> Result<(Vec<Plan>, u64, f64), Error> {
    let mut plans = Vec::new();
    let (mut lag_bytes, mut oldest_sealed): (u64, Option<SystemTime>) = (0, None);
    let mut names = store.stream_names()?;
    names.reverse(); // oldest first
    for name in names {
        let dir = store.stream_path(&name)?;
        if crate::origin_probe(&dir).is_some() {
            continue;
        }
        let layout = match store.layout_of(&name) {
            Ok(l) => l,
            Err(e) if e.is_damage() => {
                tracing::warn!(stream = %name, "archive: skipped a damaged stream: {e}");
                continue;
            }
            Err(wirecap_store::Error::NoSuchStream(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        let sealed = !layout.writing && layout.info.meta.state != StreamState::Open;
        let manifest = Manifest::load_local(&dir).unwrap_or_else(|| Manifest::new(probe, &name));
        let mut pending = Vec::new();
        for &(n, bytes) in &layout.segments {
            if n < layout.info.head.segment
                || manifest.segments.get(&n).is_some_and(|e| e.bytes == bytes)
            {
                continue;
            }
            lag_bytes += bytes;
            let seg_sealed = sealed || layout.last_segment.is_some_and(|l| n < l);
            if seg_sealed && bytes > 0 {
                pending.push((n, bytes));
                if let Ok(t) = std::fs::metadata(dir.join(wirecap_store::layout::segment(n)))
                    .and_then(|m| m.modified())
                {
                    oldest_sealed = Some(oldest_sealed.map_or(t, |o: SystemTime| o.min(t)));
                }
            }
        }
        let mut of_segment: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if let Ok(f) = e.file_name().into_string()
                && let Kind::OfSegment(n) = kind(&f)
            {
                of_segment.entry(n).or_default().push(f);
            }
        }
        let changed_files = stream_files(&dir)?.iter().any(|(f, (b, t))| {
            manifest
                .files
                .get(f)
                .is_none_or(|e| e.bytes != *b || e.mtime_ns != *t)
        });
        let all_in = sealed && !manifest.sealed;
        let flows_behind = sealed && flows_stamp(&dir).is_some_and(|s| s != manifest.flows.stamp);
        let work = !pending.is_empty() || (sealed && changed_files) || all_in || flows_behind;
        if !work {
            continue;
        }
        if pending.is_empty() && layout.segments.is_empty() && manifest.segments.is_empty() {
            // An empty stream: nothing to keep.
            continue;
        }
        plans.push(Plan {
            name,
            dir,
            manifest,
            pending,
            of_segment,
            changed_files,
            sealed,
            flows_behind,
        });
    }
    let lag_seconds = oldest_sealed
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .map_or(0.0, |d| d.as_secs_f64());
    Ok((plans, lag_bytes, lag_seconds))
}

/// A bandwidth budget shared by every upload: each takes its bytes' time before sending.
struct Limiter {
    rate: Option<u64>,
    next: Mutex<Instant>,
}

impl Limiter {
    fn new(rate: Option<u64>) -> Self {
        Self {
            rate,
            next: Mutex::new(Instant::now()),
        }
    }

    async fn take(&self, n: u64) {
        let Some(rate) = self.rate else {
            return;
        };
        let wait = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let start = (*next).max(now);
            *next = start + Duration::from_secs_f64(n as f64 / rate as f64);
            start - now
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}
