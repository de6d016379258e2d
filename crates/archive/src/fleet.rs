//! The fleet view: a read-only node lists every probe's streams in the archive and
//! serves them as if they were its own.
//!
//! For each `PREFIX/PROBE/STREAM/manifest.json` it keeps a local copy of the stream's
//! small files (meta.json, the chunk index, marks, summaries, flow index files) in
//! `DATA/streams/STREAM`, with a marker per archived segment
//! (`wirecap_store::remote`) and `archive-origin.json` naming the probe; packet bytes
//! stay in the archive and are read by ranges. The copy covers exactly the chunks of
//! the segments the manifest names (a stream still being captured is cut there), and is
//! marked sealed: it only changes when a newer manifest replaces it as a whole.
//! Two probes with a stream of the same name: the first one seen is served, the other
//! is logged.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use object_store::ObjectStore;
use object_store::path::Path as ObjPath;
use serde::{Deserialize, Serialize};
use wirecap_store::Store;
use wirecap_store::index::{CHUNK_RECORD_LEN, ChunkRecord, MARK_LEN, Mark};

use crate::manifest::{Kind, Manifest, kind};
use crate::{Archive, Error};

/// Names the probe of a fleet copy, in its stream directory.
pub const ORIGIN_FILE: &str = "archive-origin.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Origin {
    pub probe: String,
    /// The manifest's `updated_ns` the copy was made from.
    pub updated_ns: u64,
}

/// Last path component of a listed prefix.
fn last_part(p: &ObjPath) -> Option<String> {
    p.parts().last().map(|s| s.as_ref().to_owned())
}

/// Brings the local copies up to date with the archive; returns the probes seen.
pub async fn sync(archive: &Archive, store: &Store) -> Result<Vec<String>, Error> {
    let os = archive.object_store().clone();
    let keys = archive.keys();
    let mut probes = Vec::new();
    let top = os.list_with_delimiter(Some(&keys.root())).await?;
    for p in top.common_prefixes {
        let Some(probe) = last_part(&p) else { continue };
        if crate::config::validate_probe(&probe).is_err() {
            continue;
        }
        probes.push(probe.clone());
        let streams = os.list_with_delimiter(Some(&keys.probe(&probe))).await?;
        for s in streams.common_prefixes {
            let Some(name) = last_part(&s) else { continue };
            if wirecap_store::validate_stored_name(&name).is_err() {
                continue;
            }
            if let Err(e) = sync_stream(&os, archive, store, &probe, &name).await {
                tracing::warn!(probe = %probe, stream = %name, "archive: fleet copy not refreshed: {e}");
            }
        }
    }
    probes.sort();
    let seen = probes.clone();
    archive.set_probes(seen);
    Ok(probes)
}

async fn sync_stream(
    os: &std::sync::Arc<dyn ObjectStore>,
    archive: &Archive,
    store: &Store,
    probe: &str,
    name: &str,
) -> Result<(), Error> {
    let keys = archive.keys();
    let m = match os.get(&keys.manifest(probe, name)).await {
        Ok(g) => Manifest::from_json(&g.bytes().await?)?,
        Err(object_store::Error::NotFound { .. }) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let dir = store.stream_path(name)?;
    if dir.exists() {
        let Some(origin) = read_origin(&dir) else {
            tracing::warn!(probe = %probe, stream = %name, "archive: a local stream has this name; the archived one is not shown");
            return Ok(());
        };
        if origin.probe != probe {
            tracing::warn!(probe = %probe, stream = %name, other = %origin.probe, "archive: two probes hold a stream of this name; the first one is shown");
            return Ok(());
        }
        if origin.updated_ns == m.updated_ns {
            return Ok(());
        }
    }
    if m.segments.is_empty() {
        return Ok(());
    }
    let streams = dir.parent().expect("a stream directory has a parent");
    let tmp = streams.join(format!(".creating-{name}.fleet"));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).map_err(|e| io_err(&tmp, e))?;
    let r = async {
        for file in m.files.keys() {
            if !matches!(kind(file), Kind::Stream | Kind::OfSegment(_)) {
                continue;
            }
            let b = os.get(&keys.file(probe, name, file)).await?.bytes().await?;
            fs::write(tmp.join(file), &b).map_err(|e| io_err(&tmp.join(file), e))?;
        }
        cut_to_archived(&tmp, &m.segments.keys().copied().collect())?;
        for (n, e) in &m.segments {
            wirecap_store::remote::write_marker(&tmp, *n, e.bytes)?;
        }
        // How each segment is kept (plain or compressed), for the reader.
        m.store_local(&tmp)?;
        let origin = Origin {
            probe: probe.to_owned(),
            updated_ns: m.updated_ns,
        };
        fs::write(
            tmp.join(ORIGIN_FILE),
            serde_json::to_vec(&origin).expect("serializes"),
        )
        .map_err(|e| io_err(&tmp, e))?;
        Ok::<(), Error>(())
    }
    .await;
    if let Err(e) = r {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if dir.exists() {
        let old = streams.join(format!(".deleting-{name}"));
        let _ = fs::remove_dir_all(&old);
        fs::rename(&dir, &old).map_err(|e| io_err(&dir, e))?;
        let _ = fs::remove_dir_all(&old);
    }
    fs::rename(&tmp, &dir).map_err(|e| io_err(&dir, e))?;
    tracing::info!(probe = %probe, stream = %name, segments = m.segments.len(), "archive: fleet copy of a stream refreshed");
    Ok(())
}

fn io_err(p: &Path, e: std::io::Error) -> Error {
    Error::Io {
        what: format!("fleet copy {}", p.display()),
        source: e,
    }
}

fn read_origin(dir: &Path) -> Option<Origin> {
    serde_json::from_slice(&fs::read(dir.join(ORIGIN_FILE)).ok()?).ok()
}

/// Cuts the copy's index to the chunks of the archived segments (a stream still being
/// captured was uploaded with chunks beyond them) and marks the copy sealed.
fn cut_to_archived(dir: &Path, archived: &BTreeSet<u32>) -> Result<(), Error> {
    let ck = dir.join(wirecap_store::layout::CHUNKS);
    let data = fs::read(&ck).map_err(|e| io_err(&ck, e))?;
    let mut keep = 0usize;
    let mut end_packet = 0u64;
    for rec in data.chunks_exact(CHUNK_RECORD_LEN) {
        let Some(r) = ChunkRecord::decode(rec.try_into().expect("record length")) else {
            break;
        };
        if !archived.contains(&r.segment) {
            break;
        }
        keep += CHUNK_RECORD_LEN;
        end_packet = r.end_packet();
    }
    fs::write(&ck, &data[..keep]).map_err(|e| io_err(&ck, e))?;
    for e in fs::read_dir(dir).map_err(|e| io_err(dir, e))?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let is_marks = name == wirecap_store::layout::TIME
            || (name.starts_with("size-") && name.ends_with(".idx"));
        if !is_marks {
            continue;
        }
        let p = e.path();
        let data = fs::read(&p).map_err(|e| io_err(&p, e))?;
        let kept: Vec<u8> = data
            .chunks_exact(MARK_LEN)
            .take_while(|m| Mark::decode((*m).try_into().expect("mark length")).packet < end_packet)
            .flatten()
            .copied()
            .collect();
        fs::write(&p, kept).map_err(|e| io_err(&p, e))?;
    }
    let mp = dir.join("meta.json");
    let mut meta: serde_json::Value =
        serde_json::from_slice(&fs::read(&mp).map_err(|e| io_err(&mp, e))?)
            .map_err(|e| Error::Verify(format!("meta.json of the archive's copy: {e}")))?;
    if meta.get("state").and_then(|s| s.as_str()) == Some("open") {
        meta["state"] = "sealed".into();
    }
    fs::write(&mp, serde_json::to_vec(&meta).expect("serializes")).map_err(|e| io_err(&mp, e))?;
    Ok(())
}
