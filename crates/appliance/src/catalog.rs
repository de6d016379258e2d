//! Stream summaries for listings, read once per sealed stream.
//!
//! `Store::list` opens every stream (its metadata and index files) on every call: with
//! 1,000 streams that is 1,000 opens for each listing, and the status page and the UI's
//! file list ask often. A sealed or recovered stream changes only when retention trims its
//! head or it is pinned or unpinned, and each of those changes its directory (files
//! deleted, renamed or created), so [`Catalog`] keeps its summary with the directory's
//! modification time and reads it again only when that moved; open streams (a capture
//! being written) are read every time, and deleted ones are dropped at the next listing,
//! so the answer is always what `Store::list` would give.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use wirecap_store::{StreamInfo, StreamState};

/// The streams of a store for listing, without re-reading what cannot have changed: a
/// sealed or recovered stream is immutable, so its summary is read once; open streams
/// (a capture being written) are read on every listing. With 1,000 streams a listing is
/// then one directory read instead of 1,000 opens of index files.
#[derive(Debug, Default)]
pub struct Catalog {
    sealed: Mutex<HashMap<String, (SystemTime, StreamInfo)>>,
}

fn dir_mtime(store: &wirecap_store::Store, name: &str) -> Option<SystemTime> {
    std::fs::metadata(
        store
            .dir()
            .join(wirecap_store::layout::STREAMS_DIR)
            .join(name),
    )
    .and_then(|m| m.modified())
    .ok()
}

impl Catalog {
    /// The catalog of the store in `dir` (one per data directory, kept for the process).
    pub fn of(dir: &Path) -> Arc<Self> {
        static ALL: OnceLock<Mutex<HashMap<PathBuf, Arc<Catalog>>>> = OnceLock::new();
        let mut all = ALL
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        all.entry(dir.to_path_buf()).or_default().clone()
    }

    /// Every stream's summary, as `Store::list` gives it.
    pub fn list(&self, store: &wirecap_store::Store) -> wirecap_store::Result<Vec<StreamInfo>> {
        let names = store.stream_names()?;
        let known: HashSet<&String> = names.iter().collect();
        let mut out = Vec::with_capacity(names.len());
        let mut missing = Vec::new();
        {
            let mut sealed = self.sealed.lock().unwrap_or_else(|e| e.into_inner());
            sealed.retain(|k, _| known.contains(k));
            for n in &names {
                match sealed.get(n) {
                    Some((t, i)) if Some(*t) == dir_mtime(store, n) => out.push(i.clone()),
                    _ => missing.push(n),
                }
            }
        }
        for n in missing {
            // Taken before reading, so that a change during the read is read again.
            let mtime = dir_mtime(store, n);
            let info = match store.open_stream(n).and_then(|r| r.info()) {
                Ok(i) => i,
                // Deleted between the directory read and now.
                Err(wirecap_store::Error::NoSuchStream(_)) => continue,
                Err(e) => return Err(e),
            };
            if info.meta.state != StreamState::Open
                && let Some(t) = mtime
            {
                self.sealed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(n.clone(), (t, info.clone()));
            }
            out.push(info);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wirecap_pcap::LinkType;

    #[test]
    fn catalog_rereads_only_open_streams_and_forgets_deleted_ones() {
        let d = tempfile::tempdir().unwrap();
        let store = wirecap_store::Store::open(d.path()).unwrap();
        let params = wirecap_store::StreamParams {
            link_type: LinkType(1),
            snaplen: 65535,
            source: "test".into(),
        };
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let sealed = store.create_stream("a", &params, t).unwrap();
        let a = sealed.name().to_owned();
        sealed.seal().unwrap();
        let open = store.create_stream("b", &params, t).unwrap();
        let cat = Catalog::of(d.path());
        assert!(Arc::ptr_eq(&cat, &Catalog::of(d.path())));
        let mut l = cat.list(&store).unwrap();
        l.sort_by(|x, y| x.meta.name.cmp(&y.meta.name));
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].meta.state, StreamState::Sealed);
        assert_eq!(l[1].meta.state, StreamState::Open);
        assert_eq!(
            cat.sealed.lock().unwrap().len(),
            1,
            "only the sealed stream is kept"
        );
        open.seal().unwrap();
        store.delete_stream(&a).unwrap();
        let l = cat.list(&store).unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].meta.state, StreamState::Sealed);
        assert!(!cat.sealed.lock().unwrap().contains_key(&a));
        // Pinning (like a retention trim) changes the stream's directory: read again.
        let b = l[0].meta.name.clone();
        assert!(!l[0].pinned);
        store.set_pinned(&b, true).unwrap();
        assert!(cat.list(&store).unwrap()[0].pinned);
    }
}
