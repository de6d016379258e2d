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

use wirecap_store::{Listed, StreamInfo, StreamState};

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

    /// Every readable stream's summary, as `Store::list` gives it (damaged streams left
    /// out: [`Self::listing`] names them).
    pub fn list(&self, store: &wirecap_store::Store) -> wirecap_store::Result<Vec<StreamInfo>> {
        Ok(self
            .listing(store)?
            .into_iter()
            .filter_map(|e| match e {
                Listed::Stream(i) => Some(i),
                Listed::Damaged { .. } => None,
            })
            .collect())
    }

    /// Every stream, newest first, then every damaged one with the reason, as
    /// `Store::listing` gives them: one stream that cannot be read is listed as damaged
    /// instead of failing the whole list, and never hidden. Damaged streams are read
    /// again at each listing (a `wirecap recover` may have repaired them).
    pub fn listing(&self, store: &wirecap_store::Store) -> wirecap_store::Result<Vec<Listed>> {
        let root = store.dir().join(wirecap_store::layout::STREAMS_DIR);
        let mut names = Vec::new();
        let entries = std::fs::read_dir(&root).map_err(|source| wirecap_store::Error::Io {
            path: root.clone(),
            source,
        })?;
        for e in entries.flatten() {
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            if wirecap_store::validate_stored_name(&name).is_ok() && e.path().is_dir() {
                names.push(name);
            }
        }
        let known: HashSet<&String> = names.iter().collect();
        let mut ok: Vec<StreamInfo> = Vec::with_capacity(names.len());
        let mut bad = Vec::new();
        let mut missing = Vec::new();
        {
            let mut sealed = self.sealed.lock().unwrap_or_else(|e| e.into_inner());
            sealed.retain(|k, _| known.contains(k));
            for n in &names {
                match sealed.get(n) {
                    Some((t, i)) if Some(*t) == dir_mtime(store, n) => ok.push(i.clone()),
                    _ => missing.push(n),
                }
            }
        }
        for n in missing {
            // Taken before reading, so that a change during the read is read again.
            let mtime = dir_mtime(store, n);
            let dir = root.join(n);
            let damaged = |why: String| Listed::Damaged {
                name: n.clone(),
                why,
            };
            let info = match store.open_stream(n).and_then(|r| r.info()) {
                Ok(i) => i,
                // A stream is renamed into place with its meta.json, and renamed away
                // before it is deleted: a directory without one is what an interrupted
                // creation left.
                Err(wirecap_store::Error::NoSuchStream(_)) => {
                    if dir.exists() {
                        bad.push(damaged(
                            "no meta.json: its creation was interrupted (`wirecap recover` removes it when it holds no packets)".into(),
                        ));
                    }
                    continue;
                }
                // Deleted between the directory read and now.
                Err(wirecap_store::Error::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound && !dir.exists() =>
                {
                    continue;
                }
                Err(e) => {
                    bad.push(damaged(e.to_string()));
                    continue;
                }
            };
            if info.meta.state != StreamState::Open
                && let Some(t) = mtime
            {
                self.sealed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(n.clone(), (t, info.clone()));
            }
            ok.push(info);
        }
        ok.sort_by(|a, b| {
            b.meta
                .created_ns
                .cmp(&a.meta.created_ns)
                .then_with(|| b.meta.name.cmp(&a.meta.name))
        });
        bad.sort_by(|a, b| a.name().cmp(b.name()));
        Ok(ok.into_iter().map(Listed::Stream).chain(bad).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wirecap_pcap::LinkType;

    fn params() -> (wirecap_store::StreamParams, SystemTime) {
        let p = wirecap_store::StreamParams {
            link_type: LinkType(1),
            snaplen: 65535,
            source: "test".into(),
        };
        (
            p,
            SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000),
        )
    }

    #[test]
    fn catalog_rereads_only_open_streams_and_forgets_deleted_ones() {
        let d = tempfile::tempdir().unwrap();
        let store = wirecap_store::Store::open(d.path()).unwrap();
        let (params, t) = params();
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

    #[test]
    fn damaged_streams_are_listed_as_damaged_not_a_failure() {
        let d = tempfile::tempdir().unwrap();
        let store = wirecap_store::Store::open(d.path()).unwrap();
        let (params, t) = params();
        let mk = |base: &str| {
            let w = store.create_stream(base, &params, t).unwrap();
            let n = w.name().to_owned();
            w.seal().unwrap();
            n
        };
        let (good, bad_meta, bad_index) = (mk("good"), mk("meta"), mk("index"));
        let cat = Catalog::of(d.path());
        assert_eq!(cat.list(&store).unwrap().len(), 3);
        let sdir = d.path().join(wirecap_store::layout::STREAMS_DIR);
        std::fs::write(sdir.join(&bad_meta).join("meta.json"), b"{ garbage").unwrap();
        std::fs::write(
            sdir.join(&bad_index).join(wirecap_store::layout::CHUNKS),
            b"xyz",
        )
        .unwrap();
        std::fs::create_dir(sdir.join("orphan_20240101T000000Z")).unwrap();
        // The cache must not hide damage done after a stream was cached: the damage
        // changed the directory's files, not always its mtime, so force a re-read.
        cat.sealed.lock().unwrap().clear();

        let l = cat.listing(&store).unwrap();
        assert_eq!(l.len(), 4, "{l:?}");
        assert!(
            matches!(&l[0], Listed::Stream(i) if i.meta.name == good),
            "{l:?}"
        );
        let damaged: Vec<(&str, &str)> = l[1..]
            .iter()
            .map(|e| match e {
                Listed::Damaged { name, why } => (name.as_str(), why.as_str()),
                Listed::Stream(i) => panic!("{} is not damaged", i.meta.name),
            })
            .collect();
        assert_eq!(damaged.len(), 3, "{damaged:?}");
        for (n, why) in &damaged {
            assert!(!why.is_empty(), "{n}");
        }
        let names: Vec<&str> = damaged.iter().map(|d| d.0).collect();
        assert!(names.contains(&bad_meta.as_str()) && names.contains(&bad_index.as_str()));
        assert!(names.contains(&"orphan_20240101T000000Z"), "{names:?}");
        // The plain list (sizes, the status page) still answers, with the good stream.
        let list = cat.list(&store).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].meta.name, good);
    }
}
