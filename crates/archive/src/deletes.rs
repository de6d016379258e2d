//! Deleting a stream deletes its objects in the archive.
//!
//! The archive may be down when a user deletes a stream, so the deletion is queued like
//! an upload: a tombstone (`DATA/archive-deletes/STREAM.json`) is written, durably,
//! before the local copy goes; each writeback pass first deletes what the tombstones
//! name — every object under `PREFIX/PROBE/STREAM/` and the stream's Parquet flow
//! objects — and then removes them. A restart, a `kill -9` or an unreachable archive
//! only delays the deletion. Retention never deletes archived data: it deletes local
//! copies only, and the archive is where the history lives on.

use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use wirecap_store::Store;

use crate::manifest::Manifest;
use crate::{Error, Keys};

/// Folder of the tombstones, in the data directory.
pub const DIR: &str = "archive-deletes";
/// Hour partitions searched for a stream's flow objects the manifest does not name (a
/// failed export's): at most a week's.
const MAX_HOURS_LISTED: u64 = 24 * 7;

/// A stream deleted locally whose objects are still to be deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    pub probe: String,
    pub stream: String,
    /// Flow objects the manifest named (keys under the prefix).
    pub flow_objects: Vec<String>,
    /// The stream's first and last packet time: the hour partitions to search.
    pub first_ns: u64,
    pub last_ns: u64,
}

fn io(path: &Path, source: std::io::Error) -> wirecap_store::Error {
    wirecap_store::Error::Io {
        path: path.to_owned(),
        source,
    }
}

fn dir_of(store: &Store) -> PathBuf {
    store.dir().join(DIR)
}

/// Deletes stream `name` locally, after queueing the deletion of its objects.
pub fn delete_stream(store: &Store, probe: &str, name: &str) -> Result<(), wirecap_store::Error> {
    let dir = store.stream_path(name)?;
    if crate::origin_probe(&dir).is_some() {
        // A fleet copy: the probe that wrote it owns its objects.
        return store.delete_stream(name);
    }
    let m = Manifest::load_local(&dir);
    let (first_ns, last_ns) = store
        .open_stream(name)
        .ok()
        .map(|r| {
            let c = r.meta().created_ns;
            (r.first_ts().unwrap_or(c), r.last_ts().unwrap_or(c))
        })
        .unwrap_or_default();
    let t = Tombstone {
        probe: probe.to_owned(),
        stream: name.to_owned(),
        flow_objects: m
            .map(|m| m.flows.objects.into_iter().collect())
            .unwrap_or_default(),
        first_ns,
        last_ns,
    };
    let q = dir_of(store);
    std::fs::create_dir_all(&q).map_err(|e| io(&q, e))?;
    let path = q.join(format!("{name}.json"));
    let tmp = q.join(format!(".{name}.json.tmp"));
    std::fs::write(
        &tmp,
        serde_json::to_vec(&t).expect("a tombstone serializes"),
    )
    .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
    .and_then(|()| std::fs::rename(&tmp, &path))
    .and_then(|()| std::fs::File::open(&q)?.sync_all())
    .map_err(|e| io(&path, e))?;
    store.delete_stream(name).inspect_err(|_| {
        // Still there (being written, say): nothing to delete in the archive either.
        let _ = std::fs::remove_file(&path);
    })
}

/// The queued deletions.
fn pending(store: &Store) -> Vec<(PathBuf, Tombstone)> {
    let mut v: Vec<(PathBuf, Tombstone)> = std::fs::read_dir(dir_of(store))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.ends_with(".json")))
        .filter_map(|e| {
            let t = serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok()?;
            Some((e.path(), t))
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Deletes the objects of every queued deletion, each tombstone once its objects are
/// gone. Returns how many streams' objects were deleted.
pub(crate) async fn run(
    os: &std::sync::Arc<dyn object_store::ObjectStore>,
    keys: &Keys,
    store: &Store,
) -> Result<usize, Error> {
    let mut done = 0;
    for (path, t) in pending(store) {
        let mut doomed: Vec<object_store::path::Path> = os
            .list(Some(&keys.stream(&t.probe, &t.stream)))
            .map(|m| m.map(|m| m.location))
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
        doomed.extend(t.flow_objects.iter().map(|k| keys.under(k)));
        let hours = crate::flows::partitions(&t.probe, t.first_ns, t.last_ns);
        if (hours.len() as u64) <= MAX_HOURS_LISTED {
            let mine = format!("{}-b", t.stream);
            for h in hours {
                let l = os.list_with_delimiter(Some(&keys.under(&h))).await?;
                doomed.extend(
                    l.objects
                        .into_iter()
                        .map(|o| o.location)
                        .filter(|p| p.filename().is_some_and(|f| f.starts_with(&mine))),
                );
            }
        }
        doomed.sort();
        doomed.dedup();
        for p in &doomed {
            match os.delete(p).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        tracing::info!(stream = %t.stream, objects = doomed.len(), "archive: the deleted stream's objects deleted");
        std::fs::remove_file(&path).map_err(|e| Error::Io {
            what: format!("cannot remove {}", path.display()),
            source: e,
        })?;
        done += 1;
    }
    Ok(done)
}
