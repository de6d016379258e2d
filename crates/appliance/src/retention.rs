//! Retention: the store is kept under a disk budget by deleting the oldest data first.
//!
//! ```toml
//! [retention]
//! budget = "50GB"          # bytes ("500MB", "2TiB", 123456) or "80%" of the data
//!                          # directory's file system; no budget: nothing is deleted
//! high_watermark = 0.95    # start deleting above this fraction of the budget
//! low_watermark = 0.90     # ... and stop once below this one
//! segment = "256MB"        # segment size of new captures: the unit in which the
//!                          # oldest part of a running capture is deleted (default 1 GiB)
//! ```
//!
//! **What counts**: the bytes the store's streams take on disk (segments and index).
//! **What goes first**: the oldest packet on disk decides. Each step takes the unpinned
//! stream whose oldest live packet is the oldest of all and deletes its oldest segment
//! (moving the stream's head, [`wirecap_store::Store::trim_head`]), or the whole stream
//! when that segment is its last and nobody writes it. The segment a capture is writing
//! is never touched, so the capture never stops. **Pinned** streams (a `pinned` marker
//! in the stream's directory, set with `PUT /api/v1/streams/{name}/pin` or `wirecap pin`)
//! are never deleted; when only pinned data and the segments being written are left over
//! the budget, retention says so in its status and the log instead of deleting them.
//!
//! **With an archive** (`[archive]`, see `wirecap_archive`) the local disk is a cache:
//! each run first deletes the local copies of archived segments, oldest first (they stay
//! readable from the archive, [`wirecap_store::remote`]); only when that is not enough
//! are segments not yet archived deleted as above, and their bytes are counted as lost
//! (`wirecap_archive_lost_bytes`), logged and shown as a warning. Streams with nothing
//! left on the local disk but their index are left alone.
//!
//! The planner ([`next_step`]) is pure; [`Retention::run`] applies it to the store.

use std::path::Path;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use wirecap_store::{Store, StreamLayout, StreamState};

/// `[retention]` in `wirecap.toml`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_watermark: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_watermark: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
}

pub const DEFAULT_HIGH: f64 = 0.95;
pub const DEFAULT_LOW: f64 = 0.90;
/// Smallest segment size accepted: retention granularity below this costs more in files
/// than it saves.
pub const MIN_SEGMENT: u64 = 64 * 1024;

/// A disk budget: absolute, or a share of the file system.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Budget {
    Bytes(u64),
    Percent(f64),
}

/// Parses `500MB`, `2GiB`, `1.5TB`, `123456`: decimal (kB, MB, GB, TB) or binary (KiB …)
/// units, as disks are sold.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. \"50GB\", \"500MB\", \"2TiB\")"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        u => {
            return Err(format!(
                "{s:?}: unknown unit {u:?} (B, kB, MB, GB, TB, KiB, MiB, GiB, TiB)"
            ));
        }
    };
    let v = n * mult;
    if !v.is_finite() || v < 1.0 || v > u64::MAX as f64 {
        return Err(format!("{s:?} is not a usable size"));
    }
    Ok(v as u64)
}

pub fn parse_budget(s: &str) -> Result<Budget, String> {
    if let Some(p) = s.trim().strip_suffix('%') {
        let v: f64 = p
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not a percentage (e.g. \"80%\")"))?;
        if !(v > 0.0 && v <= 100.0) {
            return Err(format!(
                "{s:?}: a percentage of the disk is between 0 and 100"
            ));
        }
        return Ok(Budget::Percent(v));
    }
    parse_bytes(s).map(Budget::Bytes)
}

/// A validated `[retention]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub budget: Option<Budget>,
    pub high: f64,
    pub low: f64,
    pub segment_bytes: Option<u64>,
}

impl RetentionConfig {
    /// Checks every key; the error names the key.
    pub fn validate(&self) -> Result<Policy, String> {
        let budget = self
            .budget
            .as_deref()
            .map(parse_budget)
            .transpose()
            .map_err(|e| format!("[retention] budget: {e}"))?;
        let high = self.high_watermark.unwrap_or(DEFAULT_HIGH);
        let low = self.low_watermark.unwrap_or(DEFAULT_LOW.min(high));
        if !(high > 0.0 && high <= 1.0) {
            return Err(format!(
                "[retention] high_watermark: {high} must be a fraction of the budget, in (0, 1]"
            ));
        }
        if !(low > 0.0 && low <= high) {
            return Err(format!(
                "[retention] low_watermark: {low} must be in (0, high_watermark = {high}]"
            ));
        }
        let segment_bytes = self
            .segment
            .as_deref()
            .map(parse_bytes)
            .transpose()
            .map_err(|e| format!("[retention] segment: {e}"))?;
        if let Some(s) = segment_bytes
            && s < MIN_SEGMENT
        {
            return Err(format!(
                "[retention] segment: {s} bytes is below the minimum of {MIN_SEGMENT}"
            ));
        }
        Ok(Policy {
            budget,
            high,
            low,
            segment_bytes,
        })
    }
}

/// Size of the file system holding `dir`, in bytes.
pub fn filesystem_bytes(dir: &Path) -> Option<u64> {
    crate::os::disk_space(dir).map(|(total, _)| total)
}

/// Free space a file system of `total` bytes keeps for everything else: 2%, at least
/// 64 MiB. Below it retention deletes whatever the budget says, because the budget is
/// only the store's share of a disk that other files (or a budget set too high) can fill.
pub fn disk_reserve(total: u64) -> u64 {
    (total / 50).max(64 << 20)
}

/// Bytes the store must give back so that the file system keeps [`disk_reserve`] free,
/// with half a reserve more so that the next deletion is not due at once; 0 when there
/// is room.
pub fn disk_shortfall(total: u64, avail: u64) -> u64 {
    let reserve = disk_reserve(total);
    if avail >= reserve {
        0
    } else {
        reserve + reserve / 2 - avail
    }
}

/// Largest segment size wirecap picks by itself (the store's own default).
pub const MAX_SEGMENT: u64 = 1 << 30;

/// Where the segment size in force came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SegmentSource {
    /// `[retention] segment` says so.
    Configured,
    /// Derived from the budget ([`segment_for_budget`]).
    Budget,
    /// No budget: the store's default.
    Default,
}

/// The segment size that lets `budget` hold: retention frees whole segments, and the
/// segment being written cannot be freed, so with 1 GiB segments a budget of a few
/// hundred MB is overrun before anything can be deleted (issue 17.4: a 182 MB disk filled
/// at 110 MB/s). Half the band between the watermarks keeps each deletion inside the
/// band; clamped to [`MIN_SEGMENT`] and [`MAX_SEGMENT`].
pub fn segment_for_budget(budget: u64, high: f64, low: f64) -> u64 {
    let band = (budget as f64 * (high - low).max(0.0) / 2.0).round() as u64;
    band.clamp(MIN_SEGMENT, MAX_SEGMENT)
}

impl Policy {
    /// The budget in bytes for a store in `dir`.
    pub fn budget_bytes(&self, dir: &Path) -> Option<u64> {
        match self.budget? {
            Budget::Bytes(b) => Some(b),
            Budget::Percent(p) => filesystem_bytes(dir).map(|t| (t as f64 * p / 100.0) as u64),
        }
    }

    /// The segment size for captures in `dir`: the configured one, else one the budget
    /// can hold ([`segment_for_budget`]), else the store's default.
    pub fn segment_in_force(&self, dir: &Path) -> (u64, SegmentSource) {
        if let Some(s) = self.segment_bytes {
            return (s, SegmentSource::Configured);
        }
        match self.budget_bytes(dir) {
            Some(b) => (
                segment_for_budget(b, self.high, self.low),
                SegmentSource::Budget,
            ),
            None => (MAX_SEGMENT, SegmentSource::Default),
        }
    }
}

/// One deletion retention decided on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Delete the whole (sealed, unwritten) stream.
    DeleteStream { name: String, bytes: u64 },
    /// Delete the stream's segments below `keep_from`.
    TrimHead {
        name: String,
        keep_from: u32,
        bytes: u64,
    },
}

fn oldest_key(s: &StreamLayout) -> u64 {
    s.info.first_ts.unwrap_or(s.info.meta.created_ns)
}

/// The next deletion, oldest data first, or `None` when nothing may be deleted.
pub fn next_step(streams: &[StreamLayout]) -> Option<Step> {
    let mut best: Option<(u64, Step)> = None;
    for s in streams {
        if s.info.pinned {
            continue;
        }
        let live: Vec<&(u32, u64)> = s
            .segments
            .iter()
            .filter(|(n, _)| *n >= s.info.head.segment)
            .collect();
        let step = match (live.first(), s.last_segment) {
            // The oldest segment holds no indexed chunk beyond it: trim to the next one.
            (Some((first, bytes)), Some(last)) if *first < last => Step::TrimHead {
                name: s.name.clone(),
                keep_from: live
                    .iter()
                    .map(|(n, _)| *n)
                    .find(|n| n > first)
                    .unwrap_or(last)
                    .min(last),
                bytes: *bytes,
            },
            _ if !s.writing && s.info.meta.state != StreamState::Open => Step::DeleteStream {
                name: s.name.clone(),
                bytes: s.info.disk_bytes,
            },
            // Written right now and down to the segment being written: leave it.
            _ => continue,
        };
        let k = oldest_key(s);
        if best.as_ref().is_none_or(|(b, _)| k < *b) {
            best = Some((k, step));
        }
    }
    best.map(|(_, s)| s)
}

/// What retention shows in the status.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RetentionStatus {
    pub budget_bytes: Option<u64>,
    pub high_bytes: Option<u64>,
    pub low_bytes: Option<u64>,
    pub used_bytes: u64,
    /// The retention horizon: the oldest packet still on disk.
    pub oldest_ns: Option<u64>,
    pub oldest: Option<String>,
    pub pinned_bytes: u64,
    pub deleted_bytes_total: u64,
    pub last_deletion: Option<Deletion>,
    /// Set while the store is over budget and nothing more may be deleted.
    pub warning: Option<String>,
    pub last_run_ns: Option<u64>,
    pub error: Option<String>,
    /// Streams the last run left alone because they are damaged ("name: why"): their
    /// bytes are not counted in `used_bytes`, and `wirecap verify` / `wirecap recover`
    /// are the way to repair or delete them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub damaged: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Deletion {
    pub at_ns: u64,
    pub at: String,
    pub stream: String,
    /// `stream` (the whole stream) or `head` (its oldest segments).
    pub what: &'static str,
    pub bytes: u64,
    /// The stream's oldest packet after the deletion (none when the stream is gone).
    pub oldest_ns: Option<u64>,
}

/// The retention task's state, shared with the HTTP handlers.
#[derive(Debug, Default)]
pub struct Retention {
    status: Mutex<RetentionStatus>,
    /// Bytes the store used at the last run, and the capture's byte counter then: the
    /// capture's growth since is added to decide when to run again.
    last_used: Mutex<Option<(u64, u64)>>,
    /// The capture's byte counter at the previous [`Self::due`] call (one tick ago).
    prev_captured: Mutex<Option<u64>>,
    /// The archive tier: archived segments are deleted locally first.
    archive: std::sync::OnceLock<std::sync::Arc<wirecap_archive::Archive>>,
}

impl Retention {
    /// Makes the local disk a cache of `a` (see the module doc).
    pub fn set_archive(&self, a: std::sync::Arc<wirecap_archive::Archive>) {
        let _ = self.archive.set(a);
    }

    pub fn status(&self) -> RetentionStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether the capture's growth since the last run may cross the high watermark
    /// before the next tick (`captured` is the capture's cumulative byte counter, read
    /// once a tick): the growth so far plus one more tick at the last tick's rate, so that
    /// the store is trimmed a tick early rather than a tick late.
    pub fn due(&self, policy: &Policy, budget: Option<u64>, captured: u64) -> bool {
        let prev = self
            .prev_captured
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(captured);
        let (Some(b), Some((used, at))) = (
            budget,
            *self.last_used.lock().unwrap_or_else(|e| e.into_inner()),
        ) else {
            return policy.budget.is_some();
        };
        // The counter restarts with each capture: a smaller value means a new one.
        let grown = captured.checked_sub(at).unwrap_or(captured);
        let rate = prev.and_then(|p| captured.checked_sub(p)).unwrap_or(0);
        used + grown + rate > (b as f64 * policy.high) as u64
    }

    /// Measures the store and deletes the oldest data while it is over the high watermark,
    /// until it is under the low one. Blocking. `captured` as for [`Self::due`].
    pub fn run(&self, store: &Store, policy: &Policy, captured: u64) {
        let now = wirecap_store::now_ns();
        let budget = policy.budget_bytes(store.dir());
        let mut st = self.status();
        st.budget_bytes = budget;
        st.high_bytes = budget.map(|b| (b as f64 * policy.high) as u64);
        st.low_bytes = budget.map(|b| (b as f64 * policy.low) as u64);
        st.last_run_ns = Some(now);
        st.error = None;
        // Only with a budget: without one the operator has not allowed deleting anything.
        let shortfall = match budget {
            Some(_) => crate::os::disk_space(store.dir())
                .map_or(0, |(total, avail)| disk_shortfall(total, avail)),
            None => 0,
        };
        let r = self.pass(store, &mut st, captured, shortfall);
        if let Err(e) = r {
            tracing::error!("retention: {e}");
            st.error = Some(e.to_string());
        }
        *self.status.lock().unwrap_or_else(|e| e.into_inner()) = st;
    }

    /// Takes `step` (unless its stream was pinned meanwhile), records it in `st`, and
    /// brings `layouts` up to date. Returns the bytes freed.
    fn apply(
        &self,
        store: &Store,
        st: &mut RetentionStatus,
        step: &Step,
        layouts: &mut Vec<StreamLayout>,
        why: &str,
    ) -> Result<u64, wirecap_store::Error> {
        let name = match step {
            Step::DeleteStream { name, .. } | Step::TrimHead { name, .. } => name.clone(),
        };
        // Pinned since the layouts were read: leave it, and look again.
        if store.is_pinned(&name)? {
            let l = store.layout_of(&name)?;
            layouts.retain(|l| l.name != name);
            layouts.push(l);
            return Ok(0);
        }
        if let Some(a) = self.archive.get() {
            let below = match step {
                Step::DeleteStream { .. } => None,
                Step::TrimHead { keep_from, .. } => Some(*keep_from),
            };
            a.record_lost(&name, a.unarchived_bytes(store, &name, below));
        }
        let (freed, what) = match step {
            Step::DeleteStream { name, bytes } => {
                store.delete_stream(name)?;
                (*bytes, "stream")
            }
            Step::TrimHead {
                name, keep_from, ..
            } => (store.trim_head(name, *keep_from)?, "head"),
        };
        st.deleted_bytes_total += freed;
        let oldest_ns = match what {
            "head" => store.open_stream(&name)?.first_ts(),
            _ => None,
        };
        tracing::info!(
            stream = %name,
            bytes = freed,
            what = %what,
            "retention: deleted the oldest data ({why})"
        );
        st.last_deletion = Some(Deletion {
            at_ns: wirecap_store::now_ns(),
            at: wirecap_store::timefmt::rfc3339(wirecap_store::now_ns()),
            stream: name.clone(),
            what,
            bytes: freed,
            oldest_ns,
        });
        // Re-read only the stream that changed.
        layouts.retain(|l| l.name != name);
        if what == "head" {
            layouts.push(store.layout_of(&name)?);
        }
        Ok(freed)
    }

    fn pass(
        &self,
        store: &Store,
        st: &mut RetentionStatus,
        captured: u64,
        shortfall: u64,
    ) -> Result<(), wirecap_store::Error> {
        let (mut layouts, mut damaged) = layouts_and_damage(store)?;
        let mut used: u64 = layouts.iter().map(|l| l.info.disk_bytes).sum();
        // The target: under the low watermark when over the high one; and in any case
        // small enough that the file system keeps its reserve.
        let over_budget = matches!((st.high_bytes, st.low_bytes), (Some(h), Some(_)) if used > h);
        let mut target = if over_budget {
            st.low_bytes.unwrap_or(used)
        } else {
            used
        };
        let why = if shortfall > 0 {
            target = target.min(used.saturating_sub(shortfall));
            if st.warning.is_none() {
                tracing::warn!(
                    shortfall,
                    "retention: the file system is about to fill; deleting the oldest data \
                     whatever the budget says"
                );
            }
            "the file system is about to fill"
        } else {
            "store over the high watermark"
        };
        if target < used {
            // Local copies of archived segments go first: the archive still serves them.
            if let Some(a) = self.archive.get() {
                let freed = a.evict(store, used - target);
                used = used.saturating_sub(freed);
                if freed > 0 {
                    st.deleted_bytes_total += freed;
                    let (l, d) = layouts_and_damage(store)?;
                    layouts = l;
                    damaged = d;
                }
                // What is left on disk of those is their index: deleting it frees
                // nothing worth losing the listing for.
                layouts.retain(|l| {
                    l.info.pinned || l.segments.iter().any(|(n, _)| *n >= l.info.head.segment)
                });
            }
            while used > target {
                let Some(step) = next_step(&layouts) else {
                    break;
                };
                let name = match &step {
                    Step::DeleteStream { name, .. } | Step::TrimHead { name, .. } => name.clone(),
                };
                match self.apply(store, st, &step, &mut layouts, why) {
                    Ok(freed) => used = used.saturating_sub(freed),
                    // One damaged stream must not stop retention for the others (the
                    // disk would fill): it is left alone and reported.
                    Err(e) if e.is_damage() => {
                        tracing::warn!(stream = %name, "retention: skipped a damaged stream: {e}");
                        layouts.retain(|l| l.name != name);
                        damaged.push((name, e.to_string()));
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        st.used_bytes = used;
        st.damaged = damaged
            .into_iter()
            .map(|(n, why)| format!("{n}: {why}"))
            .collect();
        st.pinned_bytes = layouts
            .iter()
            .filter(|l| l.info.pinned)
            .map(|l| l.info.disk_bytes)
            .sum();
        st.oldest_ns = layouts.iter().filter_map(|l| l.info.first_ts).min();
        st.oldest = st.oldest_ns.map(wirecap_store::timefmt::rfc3339);
        let over = st.high_bytes.is_some_and(|h| used > h);
        let warning = if over {
            Some(format!(
                "the store uses {used} bytes, over the budget's high watermark ({} bytes), \
                 and nothing more may be deleted: {} bytes are pinned, the rest is being \
                 written; unpin streams or raise the budget",
                st.high_bytes.unwrap_or(0),
                st.pinned_bytes
            ))
        } else if used > target {
            Some(format!(
                "the file system is about to fill and the store cannot give back more than \
                 it did ({used} bytes left: {} bytes pinned, the rest being written); free \
                 space on the disk or lower the budget",
                st.pinned_bytes
            ))
        } else {
            None
        };
        if warning.is_some() && st.warning.is_none() {
            tracing::warn!("retention: {}", warning.as_deref().unwrap_or(""));
        }
        st.warning = warning;
        *self.last_used.lock().unwrap_or_else(|e| e.into_inner()) = Some((used, captured));
        Ok(())
    }
}

/// Every stream's layout; a stream that vanished meanwhile (deleted by hand) is skipped,
/// and so is a damaged one (logged; [`layouts_and_damage`] names them).
pub fn layouts(store: &Store) -> Result<Vec<StreamLayout>, wirecap_store::Error> {
    let (v, damaged) = layouts_and_damage(store)?;
    for (name, why) in damaged {
        tracing::warn!(stream = %name, "retention: skipped a damaged stream: {why}");
    }
    Ok(v)
}

/// A stream retention leaves alone: its name, and why it is damaged.
pub type Damaged = (String, String);

/// [`layouts`], and the streams left out because they are damaged, with why.
pub fn layouts_and_damage(
    store: &Store,
) -> Result<(Vec<StreamLayout>, Vec<Damaged>), wirecap_store::Error> {
    let (mut v, mut bad) = (Vec::new(), Vec::new());
    for n in store.stream_names()? {
        match store.layout_of(&n) {
            Ok(l) => v.push(l),
            Err(wirecap_store::Error::NoSuchStream(_)) => {}
            Err(e) if e.is_damage() => bad.push((n, e.to_string())),
            Err(e) => return Err(e),
        }
    }
    Ok((v, bad))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_filling_disk_asks_for_its_reserve_and_a_half_back() {
        use super::*;
        const M: u64 = 1 << 20;
        assert_eq!(disk_reserve(256 * M), 64 * M);
        assert_eq!(disk_reserve(100 << 30), 2 << 30);
        assert_eq!(disk_shortfall(256 * M, 200 * M), 0);
        assert_eq!(disk_shortfall(256 * M, 64 * M), 0);
        assert_eq!(disk_shortfall(256 * M, 60 * M), 96 * M - 60 * M);
        assert_eq!(disk_shortfall(256 * M, 0), 96 * M);
    }

    #[test]
    fn a_small_budget_gets_segments_it_can_hold() {
        use super::*;
        // 182 MB at the default watermarks: 4.5 MB segments, 40 per budget.
        assert_eq!(segment_for_budget(182_000_000, 0.95, 0.90), 4_550_000);
        assert_eq!(segment_for_budget(2_000_000, 0.8, 0.7), 100_000);
        assert_eq!(segment_for_budget(10_000, 0.95, 0.9), MIN_SEGMENT);
        assert_eq!(segment_for_budget(u64::MAX / 4, 0.95, 0.9), MAX_SEGMENT);
        assert_eq!(segment_for_budget(1 << 40, 0.9, 0.9), MIN_SEGMENT);
        let p = RetentionConfig {
            budget: Some("2MB".into()),
            ..Default::default()
        }
        .validate()
        .unwrap();
        let dir = Path::new("/");
        assert_eq!(
            p.segment_in_force(dir),
            (
                segment_for_budget(2_000_000, DEFAULT_HIGH, DEFAULT_LOW),
                SegmentSource::Budget
            )
        );
        let p = RetentionConfig {
            budget: Some("2MB".into()),
            segment: Some("1MB".into()),
            ..Default::default()
        }
        .validate()
        .unwrap();
        assert_eq!(
            p.segment_in_force(dir),
            (1_000_000, SegmentSource::Configured)
        );
        let p = RetentionConfig::default().validate().unwrap();
        assert_eq!(
            p.segment_in_force(dir),
            (MAX_SEGMENT, SegmentSource::Default)
        );
    }

    use super::*;
    use wirecap_store::{Head, StreamInfo, StreamMeta};

    fn layout(name: &str, first_ts: u64, segs: &[u32], last: u32, writing: bool) -> StreamLayout {
        StreamLayout {
            name: name.into(),
            info: StreamInfo {
                meta: StreamMeta {
                    format: 1,
                    name: name.into(),
                    base_name: name.into(),
                    created_ns: first_ts,
                    link_type: 1,
                    snaplen: 65535,
                    source: "test".into(),
                    state: if writing {
                        StreamState::Open
                    } else {
                        StreamState::Sealed
                    },
                    closed_ns: None,
                    summary_len: 0,
                    chunk_align: 0,
                    attrs: Default::default(),
                },
                packets: 1,
                bytes: 1,
                first_ts: Some(first_ts),
                last_ts: Some(first_ts + 10),
                chunks: 1,
                disk_bytes: segs.len() as u64 * 100,
                pinned: false,
                head: Head {
                    segment: segs[0],
                    ..Head::default()
                },
            },
            writing,
            segments: segs.iter().map(|s| (*s, 100)).collect(),
            last_segment: Some(last),
        }
    }

    fn write_stream(store: &Store, base: &str, packets: usize) -> String {
        let params = wirecap_store::StreamParams {
            link_type: wirecap_pcap::LinkType::ETHERNET,
            snaplen: 65535,
            source: "test".into(),
        };
        let opts = wirecap_store::WriterOptions {
            chunk_bytes: 4096,
            segment_bytes: 16 << 10,
            ..Default::default()
        };
        let mut w = store
            .create_stream_with(base, &params, std::time::SystemTime::now(), opts)
            .unwrap();
        let data = vec![7u8; 500];
        for i in 0..packets {
            w.append(&wirecap_pcap::Packet {
                ts_sec: 1_700_000_000 + i as u64,
                ts_nsec: 0,
                orig_len: 500,
                data: &data,
                interface: 0,
            })
            .unwrap();
        }
        w.seal().unwrap().name
    }

    /// A budget of 10 kB: any stream is over it.
    fn tiny_budget() -> Policy {
        RetentionConfig {
            budget: Some("10kB".into()),
            ..RetentionConfig::default()
        }
        .validate()
        .unwrap()
    }

    /// Cuts a sealed stream's `chunks.idx` in half: it no longer opens.
    fn damage_index(store: &Store, name: &str) {
        let p = store
            .dir()
            .join(wirecap_store::layout::STREAMS_DIR)
            .join(name)
            .join(wirecap_store::layout::CHUNKS);
        let len = std::fs::metadata(&p).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(len / 2 + 1)
            .unwrap();
        assert!(store.open_stream(name).err().is_some_and(|e| e.is_damage()));
    }

    #[test]
    fn a_damaged_stream_is_skipped_and_reported_not_a_stop() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path()).unwrap();
        let broken = write_stream(&store, "broken", 400);
        let old = write_stream(&store, "old", 400);
        damage_index(&store, &broken);
        let policy = tiny_budget();
        let r = Retention::default();
        r.run(&store, &policy, 0);
        let st = r.status();
        assert_eq!(st.error, None, "{st:?}");
        assert!(st.deleted_bytes_total > 200_000, "{st:?}");
        assert!(
            store.open_stream(&old).is_err(),
            "the good stream was trimmed"
        );
        assert_eq!(st.damaged.len(), 1, "{st:?}");
        assert!(
            st.damaged[0].starts_with(&format!("{broken}: "))
                && st.damaged[0].contains("chunks.idx"),
            "{st:?}"
        );
        let v = serde_json::to_value(&st).unwrap();
        assert!(v["damaged"][0].as_str().unwrap().contains("damaged"), "{v}");
        // Still there for `wirecap verify` / `recover`: retention never deletes it.
        assert!(
            store.listing().unwrap().iter().any(
                |e| matches!(e, wirecap_store::Listed::Damaged { name, .. } if *name == broken)
            )
        );
    }

    #[test]
    fn pinned_data_over_budget_is_reported_not_deleted() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path()).unwrap();
        let name = write_stream(&store, "kept", 400);
        store.set_pinned(&name, true).unwrap();
        let policy = tiny_budget();
        let r = Retention::default();
        r.run(&store, &policy, 0);
        let st = r.status();
        assert!(
            st.warning.as_deref().unwrap_or("").contains("pinned"),
            "{st:?}"
        );
        assert_eq!(st.deleted_bytes_total, 0);
        assert_eq!(st.pinned_bytes, st.used_bytes);
        assert_eq!(store.open_stream(&name).unwrap().packets(), 400);

        // Unpinned, it goes: oldest segments first, then the whole stream.
        store.set_pinned(&name, false).unwrap();
        r.run(&store, &policy, 0);
        let st = r.status();
        assert!(st.warning.is_none(), "{st:?}");
        assert!(store.list().unwrap().is_empty());
        assert_eq!(st.last_deletion.as_ref().map(|d| d.what), Some("stream"));
        assert!(st.deleted_bytes_total > 200_000, "{st:?}");
        assert_eq!(st.oldest_ns, None);
    }

    #[test]
    fn due_when_growth_and_one_more_tick_cross_the_high_watermark() {
        let policy = RetentionConfig {
            budget: Some("1000".into()),
            high_watermark: Some(0.5),
            low_watermark: Some(0.4),
            ..RetentionConfig::default()
        }
        .validate()
        .unwrap();
        let r = Retention::default();
        assert!(r.due(&policy, Some(1000), 1000), "never measured: due");
        *r.last_used.lock().unwrap() = Some((300, 1000));
        assert!(!r.due(&policy, Some(1000), 1000));
        assert!(!r.due(&policy, Some(1000), 1090), "300 + 90 + 90 < 500");
        assert!(r.due(&policy, Some(1000), 1190), "300 + 190 + 100 > 500");
        // A new capture restarts its counter: its bytes count from zero.
        assert!(!r.due(&policy, Some(1000), 50));
        assert!(r.due(&policy, Some(1000), 250), "300 + 250 + 200 > 500");
    }

    #[test]
    fn budgets_and_watermarks_parse_with_errors_that_name_the_key() {
        assert_eq!(parse_budget("50GB"), Ok(Budget::Bytes(50_000_000_000)));
        assert_eq!(parse_budget("2 MiB"), Ok(Budget::Bytes(2 << 20)));
        assert_eq!(parse_budget("80%"), Ok(Budget::Percent(80.0)));
        assert!(parse_budget("180%").is_err());
        assert!(parse_budget("lots").is_err());
        let bad = RetentionConfig {
            low_watermark: Some(0.99),
            ..RetentionConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("low_watermark"));
        let bad = RetentionConfig {
            budget: Some("5 parsecs".into()),
            ..RetentionConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("budget"));
        let p = RetentionConfig::default().validate().unwrap();
        assert_eq!((p.high, p.low, p.budget), (DEFAULT_HIGH, DEFAULT_LOW, None));
        assert!(filesystem_bytes(Path::new("/")).unwrap() > 0);
    }

    #[test]
    fn oldest_data_goes_first_and_pinned_or_written_data_stays() {
        let old = layout("old", 100, &[0], 0, false);
        let live = layout("live", 50, &[3, 4, 5], 5, true);
        // The live stream holds the oldest packet: its oldest segment goes first.
        assert_eq!(
            next_step(&[old.clone(), live.clone()]),
            Some(Step::TrimHead {
                name: "live".into(),
                keep_from: 4,
                bytes: 100
            })
        );
        // Down to the segment being written, it is left alone; the sealed one goes whole.
        let live_last = layout("live", 50, &[5], 5, true);
        assert_eq!(
            next_step(&[old.clone(), live_last.clone()]),
            Some(Step::DeleteStream {
                name: "old".into(),
                bytes: 100
            })
        );
        // A sealed stream with several segments loses its oldest one first.
        let big = layout("big", 10, &[0, 1], 1, false);
        assert!(matches!(
            next_step(&[big, old.clone()]),
            Some(Step::TrimHead { keep_from: 1, .. })
        ));
        // Pinned: never.
        let mut pinned = old;
        pinned.info.pinned = true;
        assert_eq!(next_step(&[pinned, live_last]), None);
    }
}
