//! The appliance's unattended work, run once a second beside the HTTP server: reread
//! `wirecap.toml` when it changes, run the schedules ([`crate::scheduler`]), keep the
//! store under its budget ([`crate::retention`]) and watch the alerts' conditions
//! ([`crate::alerts`]).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use crate::config::{CONFIG_FILE, FileConfig};
use crate::engine::Engine;
use crate::retention::{Policy, Retention, RetentionConfig};
use crate::scheduler::Scheduler;

/// Retention runs at least this often, and sooner when the capture's growth may have
/// crossed the high watermark.
pub const RETENTION_EVERY: Duration = Duration::from_secs(10);
/// How often the server calls [`Operations::retention_step`].
pub const RETENTION_CHECK_EVERY: Duration = Duration::from_millis(100);

/// Is the file system about to fill: under 2% of it (at least 64 MiB) is free? Then
/// retention runs at once, whatever its own estimate says (other files may take space).
pub fn low_on_space(total: u64, avail: u64) -> bool {
    avail < crate::retention::disk_reserve(total)
}

pub struct Operations {
    dir: PathBuf,
    pub scheduler: Scheduler,
    pub retention: Retention,
    pub alerts: crate::alerts::Alerter,
    policy: Mutex<Policy>,
    mtime: Mutex<Option<SystemTime>>,
    last_retention: Mutex<Option<Instant>>,
    /// Why the file could not be reread (the settings of before stay in force).
    file_error: Mutex<Option<String>>,
}

impl std::fmt::Debug for Operations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operations")
            .field("dir", &self.dir)
            .finish()
    }
}

fn mtime(dir: &Path) -> Option<SystemTime> {
    std::fs::metadata(dir.join(CONFIG_FILE))
        .and_then(|m| m.modified())
        .ok()
}

impl Operations {
    /// Starts with the file as loaded at start-up.
    pub fn new(dir: &Path, file: &FileConfig, engine: &Engine) -> Self {
        let ops = Self {
            dir: dir.to_path_buf(),
            scheduler: Scheduler::new(dir),
            retention: Retention::default(),
            alerts: crate::alerts::Alerter::new(file.alerts.clone()),
            policy: Mutex::new(
                RetentionConfig::default()
                    .validate()
                    .expect("the default retention is valid"),
            ),
            mtime: Mutex::new(mtime(dir)),
            last_retention: Mutex::new(None),
            file_error: Mutex::new(None),
        };
        ops.apply(file, engine);
        ops
    }

    fn apply(&self, file: &FileConfig, engine: &Engine) {
        self.scheduler.set(&file.schedule, file.timezone.as_deref());
        self.alerts.set_config(file.alerts.clone());
        self.alerts
            .set_hostname(&crate::hostname::effective(file.hostname.as_deref()));
        match file.retention.validate() {
            Ok(p) => {
                let (segment, source) = p.segment_in_force(engine.store().dir());
                engine.set_segment_bytes(segment);
                let mut cur = self.policy.lock().unwrap_or_else(|e| e.into_inner());
                if *cur != p {
                    tracing::info!(budget = ?p.budget, high = p.high, low = p.low, segment, ?source, "retention policy");
                    *cur = p;
                    // Apply a new budget at once.
                    *self
                        .last_retention
                        .lock()
                        .unwrap_or_else(|e| e.into_inner()) = None;
                }
            }
            Err(e) => {
                tracing::error!("retention settings not applied, the previous ones stay: {e}")
            }
        }
    }

    /// Rereads the file now (after an API write). Blocking.
    pub fn reload(&self, engine: &Engine) {
        *self.mtime.lock().unwrap_or_else(|e| e.into_inner()) = mtime(&self.dir);
        let r = FileConfig::load(&self.dir);
        let mut err = self.file_error.lock().unwrap_or_else(|e| e.into_inner());
        match r {
            Ok(f) => {
                *err = None;
                drop(err);
                self.apply(&f, engine);
            }
            Err(e) => {
                tracing::error!("{CONFIG_FILE} not reloaded, the settings of before stay: {e}");
                *err = Some(e.to_string());
            }
        }
    }

    /// Why `wirecap.toml` as it is now is not in force, if it is not.
    pub fn file_error(&self) -> Option<String> {
        self.file_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn policy(&self) -> Policy {
        self.policy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// One second's work: config changes and schedules (retention has its own, more
    /// frequent check: [`Self::retention_step`]). Blocking.
    pub fn tick(&self, engine: &Engine) {
        let m = mtime(&self.dir);
        let changed = {
            let mut cur = self.mtime.lock().unwrap_or_else(|e| e.into_inner());
            let c = *cur != m;
            *cur = m;
            c
        };
        if changed {
            tracing::info!("{CONFIG_FILE} changed: rereading schedules and retention");
            self.reload(engine);
        }
        self.scheduler.tick(engine, jiff::Timestamp::now());
        self.alerts.observe(&self.observe(engine));
    }

    /// What the alerts watch, now (see [`crate::alerts::Observation`]).
    pub fn observe(&self, engine: &Engine) -> crate::alerts::Observation {
        let s = engine.status();
        let r = self.retention.status();
        crate::alerts::Observation {
            drops_total: s.dropped_kernel + s.dropped_queue + s.dropped_write,
            link: engine.link(),
            capture_failure: engine.unexpected_stop(),
            disk_full: s.disk_full && s.capture_active,
            retention_problem: r.warning.or(r.error),
            disk_space: crate::os::disk_space(engine.store().dir())
                .map(|(total, avail)| (total.saturating_sub(avail), total)),
            certificate: self.alerts.certificate(),
        }
    }

    /// Retention's check: cheap (counters, one `statvfs`), so the server calls it every
    /// [`RETENTION_CHECK_EVERY`] rather than once a second: at 110 MB/s a small disk
    /// filled between two 1 s ticks. Runs retention when the writer's growth is about
    /// to cross the high watermark, when the file system is about to fill
    /// ([`low_on_space`]), and every [`RETENTION_EVERY`] anyway. Blocking.
    pub fn retention_step(&self, engine: &Engine) {
        let policy = self.policy();
        let captured = engine.counters().status().bytes_captured;
        let dir = engine.store().dir();
        let budget = policy.budget_bytes(dir);
        let filling = policy.budget.is_some()
            && crate::os::disk_space(dir).is_some_and(|(total, avail)| low_on_space(total, avail));
        let due = {
            let last = self
                .last_retention
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            last.is_none_or(|t| t.elapsed() >= RETENTION_EVERY)
                || self.retention.due(&policy, budget, captured)
                || filling
        };
        if due {
            *self
                .last_retention
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
            self.retention.run(engine.store(), &policy, captured);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filling_disk_triggers_retention() {
        const G: u64 = 1 << 30;
        assert!(!low_on_space(100 * G, 10 * G));
        assert!(low_on_space(100 * G, G), "under 2%");
        assert!(low_on_space(G, 32 << 20), "under 64 MiB on a small disk");
        assert!(!low_on_space(G, 200 << 20));
    }
}
