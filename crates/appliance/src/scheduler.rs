//! The scheduler: once a second it compares every schedule's window with the engine's
//! capture and starts or stops captures. Every decision is an event, logged and kept as
//! the schedule's `last_event`.
//!
//! **Manual and scheduled captures** (the engine runs one capture at a time):
//! 1. A manual capture always wins. A schedule never stops a capture it did not start.
//! 2. A window that opens while another capture runs (manual, or another schedule's)
//!    records `skipped: manual capture X running` and waits; if that capture stops while
//!    the window is still open, the schedule starts then (and says it started late).
//! 3. A scheduled capture stopped by anyone but the scheduler (a manual stop, a replay
//!    that reached its end) *suspends* that window: the schedule starts again at its
//!    next window, not at once.
//! 4. At its window's end the scheduler stops the capture it started, and only that one.
//!    Disabling or removing a schedule stops its running capture the same way.
//! 5. Every start is a new stream. After a restart (or a crash) a window that is open
//!    starts a new stream and says so; the stream of before the restart was sealed (or
//!    recovered) and is never resumed. A suspension survives a restart.
//!
//! Runtime state (suspensions, the last event, the last stream) is kept in
//! `DIR/schedule-state.json`, written atomically.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::engine::{Engine, EngineError};
use crate::schedule::{Schedule, ScheduleConfig, Window};

pub const STATE_FILE: &str = "schedule-state.json";

/// Something the scheduler decided, with when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub at_ns: u64,
    pub at: String,
    pub text: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Runtime {
    /// The stored name of the capture this schedule started and that should be running.
    #[serde(default)]
    active: Option<String>,
    /// The window (its stop, ns) in which the schedule must not start again.
    #[serde(default)]
    suspended_until_ns: Option<u64>,
    #[serde(default)]
    last_event: Option<Event>,
    #[serde(default)]
    last_stream: Option<String>,
}

struct Inner {
    configs: Vec<ScheduleConfig>,
    schedules: Vec<Schedule>,
    runtime: BTreeMap<String, Runtime>,
    /// Why the schedules in the file could not be used (the previous ones stay).
    error: Option<String>,
    /// The first tick after start-up (restart survival is said in the log).
    first_tick: bool,
    /// Passes completed since start-up. A client that saw a state can wait for the next
    /// pass to know the scheduler has acted on it (tests and scripts, instead of sleeping).
    ticks: u64,
}

/// The schedules and what they are doing. Shared between the ticker and the handlers.
pub struct Scheduler {
    dir: PathBuf,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler").field("dir", &self.dir).finish()
    }
}

fn ns(t: Timestamp) -> u64 {
    t.as_nanosecond().max(0) as u64
}

fn show(t: Timestamp) -> String {
    wirecap_store::timefmt::rfc3339(ns(t))
}

impl Scheduler {
    /// Starts with the state kept in `dir` and no schedules (see [`Self::set`]).
    pub fn new(dir: &Path) -> Self {
        let mut runtime: BTreeMap<String, Runtime> = std::fs::read(dir.join(STATE_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        // Nothing runs at start-up: a capture remembered as active belonged to the process
        // before this one and was sealed (or is recovered), never resumed.
        for (name, rt) in runtime.iter_mut() {
            if let Some(old) = rt.active.take() {
                tracing::info!(schedule = %name, stream = %old, "the schedule's capture of before the restart was sealed; it is not resumed");
            }
        }
        Self {
            dir: dir.to_path_buf(),
            inner: Mutex::new(Inner {
                configs: Vec::new(),
                schedules: Vec::new(),
                runtime,
                error: None,
                first_tick: true,
                ticks: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the schedules of a (re)loaded file. Invalid ones keep the previous set.
    pub fn set(&self, configs: &[ScheduleConfig], default_tz: Option<&str>) {
        let mut g = self.lock();
        match crate::schedule::validate_all(configs, default_tz) {
            Ok(s) => {
                if g.configs != configs {
                    tracing::info!(count = s.len(), "schedules loaded");
                }
                g.configs = configs.to_vec();
                g.schedules = s;
                g.error = None;
            }
            Err(e) => {
                if g.error.as_deref() != Some(&e.to_string()) {
                    tracing::error!("schedules not loaded, the previous ones stay: {e}");
                }
                g.error = Some(e.to_string());
            }
        }
    }

    /// One pass: start, stop, suspend, skip. Blocking (starting and stopping captures).
    pub fn tick(&self, engine: &Engine, now: Timestamp) {
        let mut g = self.lock();
        // Counted on entry: the lock is held for the whole pass, so no reader sees the new
        // count before the pass is over.
        g.ticks += 1;
        let mut changed = false;
        let first = std::mem::take(&mut g.first_tick);
        let Inner {
            schedules, runtime, ..
        } = &mut *g;

        // Schedules that were removed or disabled while their capture runs: stop it.
        let names: Vec<String> = runtime.keys().cloned().collect();
        for name in names {
            let live = schedules.iter().any(|s| s.name == name && s.enabled);
            let rt = runtime.get_mut(&name).expect("key from the map");
            if !live && let Some(stream) = rt.active.take() {
                let why = if schedules.iter().any(|s| s.name == name) {
                    "disabled"
                } else {
                    "removed"
                };
                let text = match stop_if_ours(engine, &stream) {
                    Ok(true) => format!("stopped {stream}: the schedule was {why}"),
                    Ok(false) => {
                        format!("{stream} was no longer running when the schedule was {why}")
                    }
                    Err(e) => format!("stopping {stream} (schedule {why}) failed: {e}"),
                };
                event(&name, rt, now, text);
                changed = true;
            }
        }
        runtime.retain(|n, _| schedules.iter().any(|s| &s.name == n));

        for s in schedules.iter() {
            let info = engine.capture_info();
            let current = info.active.then(|| info.stored.clone()).flatten();
            let owner = current.as_ref().and_then(|c| {
                runtime
                    .iter()
                    .find(|(n, r)| *n != &s.name && r.active.as_deref() == Some(c.as_str()))
                    .map(|(n, _)| n.clone())
            });
            let rt = runtime.entry(s.name.clone()).or_default();
            let window = if s.enabled { s.window_at(now) } else { None };

            // A live change (interface, capture settings, forwarding) sealed our capture
            // and started it again: it is still ours, in its new stream.
            if let Some(stream) = rt.active.clone()
                && current.as_deref() != Some(stream.as_str())
                && let Some(next) = engine.successor(&stream)
                && current.as_deref() == Some(next.as_str())
            {
                rt.active = Some(next.clone());
                rt.last_stream = Some(next.clone());
                event(
                    &s.name,
                    rt,
                    now,
                    format!(
                        "{stream} was sealed by a live change; the capture continues as {next}"
                    ),
                );
                changed = true;
            }
            // Our capture ended without us: suspend the rest of its window.
            if let Some(stream) = rt.active.clone()
                && current.as_deref() != Some(stream.as_str())
            {
                rt.active = None;
                let text = match window {
                    Some(w) => {
                        rt.suspended_until_ns = Some(ns(w.stop));
                        format!(
                            "suspended: {stream} was stopped outside the schedule (by hand, or its source ended); the schedule starts again at its next window"
                        )
                    }
                    None => format!("{stream} ended"),
                };
                event(&s.name, rt, now, text);
                changed = true;
            }
            if rt.suspended_until_ns.is_some_and(|u| ns(now) >= u) {
                rt.suspended_until_ns = None;
                changed = true;
            }

            match (window, rt.active.clone()) {
                (Some(w), None) if rt.suspended_until_ns.is_none() => {
                    if let Some(other) = &current {
                        let text = format!(
                            "skipped: {} running; the schedule starts if it stops before {}",
                            describe_capture(other, owner),
                            show(w.stop)
                        );
                        if rt.last_event.as_ref().map(|e| &e.text) != Some(&text) {
                            event(&s.name, rt, now, text);
                            changed = true;
                        }
                        continue;
                    }
                    let late = rt
                        .last_event
                        .as_ref()
                        .is_some_and(|e| e.text.starts_with("skipped:") && e.at_ns >= ns(w.start));
                    match start(engine, &s.stream) {
                        Ok(stored) => {
                            let mut text =
                                format!("started {stored} (window until {})", show(w.stop));
                            if late {
                                text.push_str(
                                    "; late, the interface was busy at the window's start",
                                );
                            }
                            if first {
                                text.push_str(
                                    "; the window was open at start-up, so this is a new stream (a stream of before the restart is never resumed)",
                                );
                            }
                            rt.active = Some(stored.clone());
                            rt.last_stream = Some(stored);
                            event(&s.name, rt, now, text);
                        }
                        Err(e) => {
                            let text = format!("could not start: {e}");
                            if rt.last_event.as_ref().map(|e| &e.text) != Some(&text) {
                                event(&s.name, rt, now, text);
                            }
                        }
                    }
                    changed = true;
                }
                (None, Some(stream)) => {
                    rt.active = None;
                    let text = match stop_if_ours(engine, &stream) {
                        Ok(true) => format!("stopped {stream} at the window's end"),
                        Ok(false) => format!("{stream} had already stopped at the window's end"),
                        Err(e) => format!("stopping {stream} failed: {e}"),
                    };
                    event(&s.name, rt, now, text);
                    changed = true;
                }
                _ => {}
            }
        }
        if changed {
            let body = serde_json::to_vec_pretty(&*runtime).unwrap_or_default();
            if let Err(e) = crate::os::write_atomically(&self.dir.join(STATE_FILE), &body) {
                tracing::error!("cannot keep the schedules' state in {STATE_FILE}: {e}");
            }
        }
    }

    /// Every schedule with its status.
    pub fn list(&self, now: Timestamp) -> Vec<Value> {
        let g = self.lock();
        g.configs.iter().map(|c| status_json(&g, c, now)).collect()
    }

    /// One schedule with its status.
    pub fn get(&self, name: &str, now: Timestamp) -> Option<Value> {
        let g = self.lock();
        g.configs
            .iter()
            .find(|c| c.name == name)
            .map(|c| status_json(&g, c, now))
    }

    /// Why the file's schedules are not in use, if they are not.
    /// Passes completed since start-up: wait for it to grow to know a pass saw a state.
    pub fn ticks(&self) -> u64 {
        self.lock().ticks
    }

    pub fn error(&self) -> Option<String> {
        self.lock().error.clone()
    }
}

fn describe_capture(stream: &str, owner: Option<String>) -> String {
    match owner {
        Some(o) => format!("schedule {o}'s capture {stream}"),
        None => format!("manual capture {stream}"),
    }
}

fn event(name: &str, rt: &mut Runtime, now: Timestamp, text: String) {
    tracing::info!(schedule = %name, "{text}");
    rt.last_event = Some(Event {
        at_ns: ns(now),
        at: show(now),
        text,
    });
}

/// Starts a capture into a new stream `base` (the engine names a restart within the
/// minute `base-2`, `base-3`, …); returns its stored name.
fn start(engine: &Engine, base: &str) -> Result<String, EngineError> {
    engine.start(base).map(|i| i.stored.unwrap_or_default())
}

/// Stops the engine's capture if it is `stream`; `Ok(false)` when something else runs.
fn stop_if_ours(engine: &Engine, stream: &str) -> Result<bool, EngineError> {
    let info = engine.capture_info();
    if !(info.active && info.stored.as_deref() == Some(stream)) {
        return Ok(false);
    }
    engine.stop_if(stream).map(|_| true)
}

fn status_json(g: &Inner, c: &ScheduleConfig, now: Timestamp) -> Value {
    let rt = g.runtime.get(&c.name).cloned().unwrap_or_default();
    let s = g.schedules.iter().find(|s| s.name == c.name);
    let (mut next_start, mut next_stop): (Option<Window>, Option<Timestamp>) = (None, None);
    let mut open = None;
    if let Some(s) = s.filter(|s| s.enabled) {
        open = s.window_at(now);
        let next = s.next_window(now);
        next_start = next;
        next_stop = match open {
            Some(w) if rt.active.is_some() => Some(w.stop),
            _ => next.map(|w| w.stop),
        };
    }
    let tz = s.map(|s| s.tz.iana_name().unwrap_or("UTC").to_owned());
    json!({
        "name": c.name,
        "enabled": c.enabled,
        "cron": c.cron,
        "duration": c.duration,
        "days": c.days,
        "start": c.start,
        "stop": c.stop,
        "timezone": tz,
        "stream": c.stream.clone().unwrap_or_else(|| c.name.clone()),
        "active": rt.active.is_some(),
        "current_stream": rt.active,
        "last_stream": rt.last_stream,
        "window_open": open.is_some(),
        "suspended_until": rt.suspended_until_ns.map(wirecap_store::timefmt::rfc3339),
        "next_start": next_start.map(|w| show(w.start)),
        "next_stop": next_stop.map(show),
        "last_event": rt.last_event,
    })
}
