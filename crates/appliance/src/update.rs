//! Software update: installed releases, the selection, restarting into a release, and
//! rolling back one that does not come up healthy.
//!
//! # Files (all in `DIR/releases`)
//!
//! | file | what |
//! |---|---|
//! | `<version>/wirecap`, `<version>/manifest.toml`, `<version>/installed.json` | an installed release (checked by [`crate::release`]) |
//! | `selected` | `{version, path}` of the binary the appliance runs; written atomically |
//! | `pending` | a launch that has not yet proven itself: target, previous selection, the pid that runs it, argv, deadline |
//! | `healthy` | `{version, path, pid}` written by a server once its listeners are up and its store is open |
//! | `history.jsonl` | one JSON line per event: installed, refused, activated, healthy, rolled back |
//!
//! # Restart and rollback
//!
//! Activating a release seals the running capture, writes `selected` and `pending`,
//! spawns a **watchdog** (this binary, `wirecap update-watchdog`, a child of the server)
//! and answers 202; then the server `exec`s the selected binary with its own arguments.
//! The pid stays the same, listening sockets close on exec (close-on-exec) and the new
//! image binds them again, so clients see a short refusal and retry.
//!
//! The new process, once healthy, writes `healthy` and clears `pending`. The watchdog
//! polls for that. When instead its parent dies (the new binary crashed at start: the
//! watchdog is re-parented, `getppid` changes) or the deadline passes (it hangs: the
//! watchdog kills it), the watchdog records the failure, selects the previous release
//! again and `exec`s that with the same arguments: the appliance is back without a human,
//! under the watchdog's pid.
//!
//! Under systemd (`Restart=on-failure`) the watchdog dies with the unit's main process;
//! the restarted server then finds a `pending` launch that belongs to another pid, which
//! can only mean that launch never became healthy, and rolls back the same way at start.
//! A server started from a binary other than the selected one (systemd always starts
//! `/usr/local/bin/wirecap`) launches the selected one the same guarded way, so the
//! selection survives a reboot and a bad one is still undone.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use wirecap_store::now_ns;
use wirecap_store::timefmt::rfc3339;

use crate::os::write_atomically;
use crate::release::{self, ReleaseError, Signed};

/// Folder of the installed releases and the update state, inside the data directory.
pub const RELEASES_DIR: &str = "releases";
/// The hidden subcommand that runs [`watchdog`].
pub const WATCHDOG_SUBCOMMAND: &str = "update-watchdog";
/// Default time a launched release has to become healthy.
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(60);
/// Default largest upload accepted, in MiB (a debug build is ~160 MiB).
pub const DEFAULT_MAX_UPLOAD_MB: u64 = 512;
/// Set in the environment of a launched binary: the path that was launched, so that a
/// server never launches the same selection twice in a row.
const LAUNCHED_ENV: &str = "WIRECAP_LAUNCHED";

/// Why an update step failed.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error(transparent)]
    Release(#[from] ReleaseError),
    #[error("release {0} is not installed")]
    NotInstalled(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> UpdateError {
    let what = what.into();
    move |source| UpdateError::Io { what, source }
}

/// A binary the appliance can run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    pub version: String,
    pub path: PathBuf,
}

/// A launch that has not yet become healthy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub target: Selection,
    pub previous: Selection,
    /// The process that runs `target` (the same pid before and after exec).
    pub pid: u32,
    pub argv: Vec<String>,
    pub started_ns: u64,
    pub timeout_secs: u64,
    /// Reaped by the launched process once it is healthy.
    #[serde(default)]
    pub watchdog_pid: Option<u32>,
}

impl Pending {
    /// Long past its deadline: whatever was meant to settle it is gone.
    pub fn is_stale(&self) -> bool {
        let age = Duration::from_nanos(now_ns().saturating_sub(self.started_ns));
        age > Duration::from_secs(self.timeout_secs) + Duration::from_secs(60)
    }
}

/// Written by a server that came up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Healthy {
    pub version: String,
    pub path: PathBuf,
    pub pid: u32,
    pub at_ns: u64,
}

/// The update state of one data directory.
#[derive(Debug, Clone)]
pub struct Releases {
    dir: PathBuf,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    let text = std::fs::read(path).ok()?;
    match serde_json::from_slice(&text) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(path = %path.display(), "ignoring an unreadable update file: {e}");
            None
        }
    }
}

fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<(), UpdateError> {
    let bytes = serde_json::to_vec_pretty(v).unwrap_or_default();
    write_atomically(path, &bytes).map_err(io(path.display().to_string()))
}

/// The binary this process runs and the version it is.
pub fn running() -> Selection {
    let path = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .unwrap_or_default();
    Selection {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        path,
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn pid_alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}

impl Releases {
    pub fn new(data: &Path) -> Self {
        Self {
            dir: data.join(RELEASES_DIR),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn selected(&self) -> Option<Selection> {
        read_json(&self.file("selected"))
    }

    pub fn pending(&self) -> Option<Pending> {
        read_json(&self.file("pending"))
    }

    pub fn healthy(&self) -> Option<Healthy> {
        read_json(&self.file("healthy"))
    }

    pub fn ensure_dir(&self) -> Result<(), UpdateError> {
        std::fs::create_dir_all(&self.dir).map_err(io(self.dir.display().to_string()))
    }

    /// Appends one event to `history.jsonl` (best effort: history never blocks an update).
    pub fn record(&self, event: &str, version: &str, detail: &str) {
        use std::io::Write;
        let _ = self.ensure_dir();
        let line = json!({
            "at": rfc3339(now_ns()),
            "event": event,
            "version": version,
            "detail": detail,
        });
        let r = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.file("history.jsonl"))
            .and_then(|mut f| writeln!(f, "{line}"));
        if let Err(e) = r {
            tracing::warn!("cannot record update history: {e}");
        }
        tracing::info!(event, version, detail, "update");
    }

    /// The last `n` history events, oldest first.
    pub fn history(&self, n: usize) -> Vec<Value> {
        let text = std::fs::read_to_string(self.file("history.jsonl")).unwrap_or_default();
        let all: Vec<Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        all[all.len().saturating_sub(n)..].to_vec()
    }

    /// Installed releases, sorted by version text.
    pub fn installed(&self) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return out;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !e.path().join(release::BINARY).is_file() {
                continue;
            }
            let info: Value = read_json(&e.path().join("installed.json")).unwrap_or(json!({}));
            out.push((name, info));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    fn release_binary(&self, version: &str) -> Result<PathBuf, UpdateError> {
        release::validate_version(version)
            .map_err(|_| UpdateError::NotInstalled(version.to_owned()))?;
        let p = self.dir.join(version).join(release::BINARY);
        if p.is_file() {
            Ok(p)
        } else {
            Err(UpdateError::NotInstalled(version.to_owned()))
        }
    }

    /// Removes staging files of uploads that a crash interrupted.
    pub fn cleanup(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for e in entries.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with(".upload-") {
                let _ = std::fs::remove_file(e.path());
            } else if n.starts_with(".staging-") {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        crate::os::cleanup_temp_files(&self.dir);
    }

    /// Checks the archive `upload` and installs it as `releases/<version>`. The upload
    /// file is consumed either way; a refused archive leaves nothing behind.
    pub fn install(
        &self,
        upload: &Path,
        trusted: &[String],
        require_signature: bool,
    ) -> Result<(Value, bool), UpdateError> {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let staging = self.dir.join(format!(
            ".staging-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&staging).map_err(io(staging.display().to_string()))?;
        // The manifest's version, once read: a refusal after that names it (issue 14.11).
        let mut claimed = String::new();
        let result = (|| {
            let m = release::unpack(upload, &staging)?;
            claimed.clone_from(&m.version);
            let v = release::verify(&staging, m, trusted, require_signature)?;
            let version = v.manifest.version.clone();
            let dest = self.dir.join(&version);
            if dest.exists() {
                let have = release::sha256_file(&dest.join(release::BINARY)).unwrap_or_default();
                if have == v.manifest.sha256 {
                    let info = read_json(&dest.join("installed.json")).unwrap_or(json!({}));
                    return Ok((release_json(&version, &info), false));
                }
                return Err(UpdateError::Conflict(format!(
                    "release {version} is already installed with a different binary; a version names one binary"
                )));
            }
            let size = std::fs::metadata(&v.binary).map(|m| m.len()).unwrap_or(0);
            let info = json!({
                "version": version,
                "sha256": v.manifest.sha256,
                "signed_by": match &v.signed { Signed::No => Value::Null, Signed::By(k) => json!(k) },
                "size": size,
                "installed": rfc3339(now_ns()),
            });
            write_json(&staging.join("installed.json"), &info)?;
            std::fs::rename(&staging, &dest).map_err(io(dest.display().to_string()))?;
            let _ = std::fs::File::open(&self.dir).and_then(|d| d.sync_all());
            self.record("installed", &version, "");
            Ok((release_json(&version, &info), true))
        })();
        let _ = std::fs::remove_dir_all(&staging);
        let _ = std::fs::remove_file(upload);
        if let Err(e) = &result {
            self.record("refused", &claimed, &e.to_string());
        }
        result
    }

    /// Start-up: undo a launch that never became healthy, then make sure the selected
    /// binary is the one running (launching it when it is not). Returns only when this
    /// process is the one to serve.
    pub fn on_start(&self, timeout: Duration) {
        self.cleanup();
        let me = running();
        let pid = std::process::id();
        if let Some(p) = self.pending() {
            let mine = p.pid == pid && same_file(&p.target.path, &me.path);
            let running_elsewhere = p.pid != pid && pid_alive(p.pid) && is_wirecap(p.pid);
            if !mine && (!running_elsewhere || p.is_stale()) {
                // The process that ran that launch is gone without becoming healthy (the
                // watchdog died with it, as under systemd), or the machine rebooted.
                self.roll_back(&p, "did not become healthy before its process ended");
            }
        }
        let Some(sel) = self.selected() else {
            return;
        };
        let launched_before =
            std::env::var_os(LAUNCHED_ENV).is_some_and(|l| Path::new(&l) == sel.path.as_path());
        if same_file(&sel.path, &me.path) || launched_before {
            return;
        }
        if !sel.path.is_file() {
            tracing::warn!(
                version = %sel.version,
                path = %sel.path.display(),
                "the selected release is missing; running {} instead",
                me.path.display()
            );
            return;
        }
        tracing::info!(version = %sel.version, path = %sel.path.display(), "starting the selected release");
        let argv: Vec<String> = std::env::args().collect();
        let err = self.launch(&sel, &me, argv, timeout);
        tracing::error!("cannot start the selected release {}: {err}", sel.version);
    }

    /// Rolls a failed launch back: history, the previous selection, no pending.
    fn roll_back(&self, p: &Pending, why: &str) {
        self.record(
            "rolled back",
            &p.target.version,
            &format!(
                "{why}; back to {} ({})",
                p.previous.version,
                p.previous.path.display()
            ),
        );
        if let Err(e) = write_json(&self.file("selected"), &p.previous) {
            tracing::error!("rollback: {e}");
        }
        let _ = std::fs::remove_file(self.file("pending"));
    }

    /// Writes the pending marker, spawns the watchdog and execs `target`. Returns only
    /// when something failed (after undoing what it wrote).
    pub fn launch(
        &self,
        target: &Selection,
        previous: &Selection,
        argv: Vec<String>,
        timeout: Duration,
    ) -> UpdateError {
        let pending = Pending {
            target: target.clone(),
            previous: previous.clone(),
            pid: std::process::id(),
            argv: argv.clone(),
            started_ns: now_ns(),
            timeout_secs: timeout.as_secs().max(1),
            watchdog_pid: None,
        };
        if let Err(e) = self
            .ensure_dir()
            .and_then(|()| write_json(&self.file("pending"), &pending))
        {
            return e;
        }
        let _ = std::fs::remove_file(self.file("healthy"));
        let watchdog = std::process::Command::new(&previous.path)
            .arg(WATCHDOG_SUBCOMMAND)
            .arg(self.dir.parent().unwrap_or(Path::new(".")))
            .stdin(std::process::Stdio::null())
            .spawn();
        let mut watchdog = match watchdog {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_file(self.file("pending"));
                return UpdateError::Io {
                    what: format!("starting the update watchdog {}", previous.path.display()),
                    source: e,
                };
            }
        };
        let pending = Pending {
            watchdog_pid: Some(watchdog.id()),
            ..pending
        };
        if let Err(e) = write_json(&self.file("pending"), &pending) {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
            let _ = std::fs::remove_file(self.file("pending"));
            return e;
        }
        use std::os::unix::process::CommandExt;
        let mut cmd = std::process::Command::new(&target.path);
        if let Some((first, rest)) = argv.split_first() {
            cmd.arg0(first).args(rest);
        }
        let err = cmd.env(LAUNCHED_ENV, &target.path).exec();
        // Still here: the exec failed, so nothing changed; stand the watchdog down.
        let _ = watchdog.kill();
        let _ = watchdog.wait();
        let _ = std::fs::remove_file(self.file("pending"));
        UpdateError::Io {
            what: format!("exec {}", target.path.display()),
            source: err,
        }
    }

    /// Called once listeners are up and the store is open: this process is healthy.
    pub fn mark_healthy(&self) {
        let me = running();
        let pid = std::process::id();
        let h = Healthy {
            version: me.version.clone(),
            path: me.path.clone(),
            pid,
            at_ns: now_ns(),
        };
        if let Err(e) = self
            .ensure_dir()
            .and_then(|()| write_json(&self.file("healthy"), &h))
        {
            tracing::error!("cannot mark this release healthy: {e}");
            return;
        }
        if let Some(p) = self.pending()
            && p.pid == pid
            && same_file(&p.target.path, &me.path)
        {
            let _ = std::fs::remove_file(self.file("pending"));
            if let Some(w) = p.watchdog_pid {
                // The watchdog is our child (from before the exec): reap it once it
                // sees this marker, so that it does not linger as a zombie.
                std::thread::spawn(move || {
                    let mut status = 0;
                    // SAFETY: waits for one specific child; `status` is a valid pointer.
                    unsafe { libc::waitpid(w as libc::pid_t, &mut status, 0) };
                });
            }
            let ms = now_ns().saturating_sub(p.started_ns) / 1_000_000;
            self.record(
                "healthy",
                &p.target.version,
                &format!("up {ms} ms after the restart, pid {pid}"),
            );
        }
    }

    /// The installed release `version`, unless a restart is already pending.
    pub fn target(&self, version: &str) -> Result<Selection, UpdateError> {
        if let Some(p) = self.pending().filter(Pending::is_stale) {
            // Its watchdog is gone too (this process is serving): it never came up.
            self.roll_back(&p, "never reported healthy");
        }
        if let Some(p) = self.pending() {
            return Err(UpdateError::Conflict(format!(
                "a restart into {} is still pending",
                p.target.version
            )));
        }
        let path = self.release_binary(version)?;
        Ok(Selection {
            version: version.to_owned(),
            path: path.canonicalize().unwrap_or(path),
        })
    }

    /// Selects `target` and execs into it (see [`Self::launch`]).
    pub fn select_and_restart(&self, target: &Selection, timeout: Duration) -> UpdateError {
        let me = running();
        let previous = self
            .selected()
            .filter(|s| same_file(&s.path, &me.path))
            .unwrap_or(me);
        if let Err(e) = write_json(&self.file("selected"), target) {
            return e;
        }
        self.record(
            "activated",
            &target.version,
            &format!("restarting from {}", previous.version),
        );
        let argv: Vec<String> = std::env::args().collect();
        let err = self.launch(target, &previous, argv, timeout);
        let _ = write_json(&self.file("selected"), &previous);
        self.record("failed", &target.version, &err.to_string());
        err
    }
}

/// Whether process `pid` exists and has not exited (a zombie waiting for its parent to
/// reap it has exited).
fn has_not_exited(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next())
        })
        .is_some_and(|state| !matches!(state, 'Z' | 'X'))
}

/// Whether `pid` runs a wirecap binary (a reused pid after a reboot would not).
impl Releases {
    /// What the update page shows: installed releases, the running and the selected one,
    /// a pending restart, the last 50 events of the history.
    pub fn overview(&self) -> Value {
        let me = running();
        let selected = self.selected();
        let releases: Vec<Value> = self
            .installed()
            .into_iter()
            .map(|(version, info)| {
                let bin = self.dir().join(&version).join(release::BINARY);
                let mut v = release_json(&version, &info);
                v["running"] = json!(same_file(&bin, &me.path));
                v["selected"] = json!(selected.as_ref().is_some_and(|s| same_file(&s.path, &bin)));
                v
            })
            .collect();
        json!({
            "running": {
                "version": me.version,
                "path": me.path,
                "pid": std::process::id(),
                "managed": me.path.starts_with(self.dir()),
            },
            "selected": selected,
            "pending": self.pending().map(|p| json!({"version": p.target.version, "since": rfc3339(p.started_ns)})),
            "healthy": self.healthy(),
            "releases": releases,
            "history": self.history(50),
        })
    }
}

fn is_wirecap(pid: u32) -> bool {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.file_name().is_some_and(|n| n == release::BINARY))
        .unwrap_or(false)
}

fn release_json(version: &str, info: &Value) -> Value {
    let mut v = info.clone();
    if let Some(o) = v.as_object_mut() {
        o.insert("version".into(), json!(version));
    }
    v
}

/// `wirecap update-watchdog DIR`: waits for the launch in `DIR/releases/pending` to
/// become healthy; rolls it back and execs the previous release when it dies or hangs.
pub fn watchdog(data: &Path) -> Result<(), String> {
    let r = Releases::new(data);
    let p = r
        .pending()
        .ok_or("no pending launch: nothing to watch".to_owned())?;
    // SAFETY: getppid has no preconditions.
    let parent = unsafe { libc::getppid() } as u32;
    // The server forks this watchdog just before it execs the new release; a release that
    // crashes at once can be gone before this line runs, and the watchdog then already
    // belongs to init. That is the crash this watchdog is for, not a misuse: only a launch
    // that is still alive elsewhere means the watchdog was started by hand.
    if parent != p.pid && has_not_exited(p.pid) {
        return Err(format!(
            "the watchdog must be a child of the launched process {} (parent is {parent})",
            p.pid
        ));
    }
    let timeout = Duration::from_secs(p.timeout_secs);
    let started = Instant::now();
    let gone = || unsafe { libc::getppid() } as u32 != p.pid;
    let why = loop {
        if let Some(h) = r.healthy()
            && h.pid == p.pid
            && same_file(&h.path, &p.target.path)
        {
            return Ok(());
        }
        if r.pending().is_none_or(|q| q.started_ns != p.started_ns) {
            // Someone else settled this launch.
            return Ok(());
        }
        if gone() {
            break "it exited before it became healthy".to_owned();
        }
        if started.elapsed() > timeout {
            // SAFETY: kill has no memory preconditions; the pid is our parent.
            unsafe { libc::kill(p.pid as libc::pid_t, libc::SIGKILL) };
            let t = Instant::now();
            while !gone() && t.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(20));
            }
            break format!("not healthy within {} s; killed it", timeout.as_secs());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    r.roll_back(&p, &why);
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(&p.previous.path);
    if let Some((first, rest)) = p.argv.split_first() {
        cmd.arg0(first).args(rest);
    }
    let err = cmd.env(LAUNCHED_ENV, &p.previous.path).exec();
    Err(format!(
        "rolled back, but cannot exec {}: {err}",
        p.previous.path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dead_pid() -> u32 {
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        pid
    }

    /// What systemd's `Restart=on-failure` relies on: a start that finds a launch of
    /// another, gone process takes it as failed and goes back to the previous selection.
    #[test]
    fn a_pending_launch_whose_process_is_gone_is_rolled_back_at_start() {
        let d = tempfile::tempdir().unwrap();
        let r = Releases::new(d.path());
        r.ensure_dir().unwrap();
        let me = running();
        let bad = Selection {
            version: "9.9.9".into(),
            path: d.path().join("releases/9.9.9/wirecap"),
        };
        write_json(&r.file("selected"), &bad).unwrap();
        let p = Pending {
            target: bad,
            previous: me.clone(),
            pid: dead_pid(),
            argv: vec!["wirecap".into()],
            started_ns: now_ns(),
            timeout_secs: 5,
            watchdog_pid: None,
        };
        write_json(&r.file("pending"), &p).unwrap();
        // The selected binary is missing, so this returns instead of exec'ing anything.
        r.on_start(Duration::from_secs(5));
        assert!(r.pending().is_none());
        assert_eq!(r.selected(), Some(me));
        let h = r.history(10);
        let last = h.last().unwrap();
        assert_eq!(last["event"], "rolled back");
        assert_eq!(last["version"], "9.9.9");
        assert!(
            last["detail"]
                .as_str()
                .unwrap()
                .contains("before its process ended"),
            "{last}"
        );
    }

    /// A marker long past its deadline (its watchdog gone, nothing else to settle it)
    /// does not block the next activation forever.
    #[test]
    fn a_stale_pending_marker_is_rolled_back_by_the_next_activation() {
        let d = tempfile::tempdir().unwrap();
        let r = Releases::new(d.path());
        r.ensure_dir().unwrap();
        let me = running();
        let mut p = Pending {
            target: Selection {
                version: "8.0.0".into(),
                path: d.path().join("gone"),
            },
            previous: me.clone(),
            pid: std::process::id(),
            argv: vec![],
            started_ns: now_ns(),
            timeout_secs: 5,
            watchdog_pid: None,
        };
        write_json(&r.file("pending"), &p).unwrap();
        assert!(matches!(r.target("1.0.0"), Err(UpdateError::Conflict(_))));
        p.started_ns -= 66_000_000_000;
        write_json(&r.file("pending"), &p).unwrap();
        assert!(matches!(
            r.target("1.0.0"),
            Err(UpdateError::NotInstalled(_))
        ));
        assert!(r.pending().is_none());
        assert_eq!(r.selected(), Some(me));
        assert_eq!(r.history(10).last().unwrap()["event"], "rolled back");
    }

    /// The launched process itself (same pid) finds its own marker and keeps it until
    /// it is healthy; then the marker goes and the history says so.
    #[test]
    fn the_launched_process_keeps_its_marker_until_healthy() {
        let d = tempfile::tempdir().unwrap();
        let r = Releases::new(d.path());
        r.ensure_dir().unwrap();
        let me = running();
        let p = Pending {
            target: me.clone(),
            previous: me.clone(),
            pid: std::process::id(),
            argv: vec![],
            started_ns: now_ns(),
            timeout_secs: 5,
            watchdog_pid: None,
        };
        write_json(&r.file("pending"), &p).unwrap();
        r.on_start(Duration::from_secs(5));
        assert!(r.pending().is_some(), "not healthy yet");
        r.mark_healthy();
        assert!(r.pending().is_none());
        assert_eq!(r.healthy().unwrap().pid, std::process::id());
        assert_eq!(r.history(10).last().unwrap()["event"], "healthy");
    }
}
