//! Scheduled captures with the real binary: a cron schedule (with a seconds field, so the
//! test takes seconds) starts and stops a capture of synthetic traffic into a sealed
//! stream with packets; a window open at start-up starts a new stream after a restart and
//! never resumes the old one; and the manual-vs-schedule rule (manual wins, a manual stop
//! suspends the window, a busy interface is a logged skip). Traffic: none
//! on any network (the synthetic source); every wait is bounded.

use serde_json::Value;

mod support;
use support::server::{PW, Server};
use support::wirecap_in;

fn text(o: &std::process::Output) -> String {
    assert!(
        o.status.success(),
        "wirecap failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn schedule(s: &Server, name: &str) -> Value {
    s.api("GET", &format!("/api/v1/schedules/{name}"), None, 200)
}

fn stream(s: &Server, name: &str) -> Value {
    s.api("GET", &format!("/api/v1/streams/{name}"), None, 200)
}

fn event(v: &Value) -> String {
    v["last_event"]["text"].as_str().unwrap_or("").to_owned()
}

/// `HH:MM` of now + `mins` (UTC).
/// Waits until the scheduler has completed `n` more passes than it had now (it ticks
/// once a second), so a negative check ("it did not start again") is made after the
/// scheduler has really looked, not after a guessed sleep.
fn next_ticks(s: &Server, n: u64) {
    let ticks = |s: &Server| s.api("GET", "/api/v1/schedules", None, 200)["ticks"].as_u64();
    let seen = ticks(s).expect("/api/v1/schedules answers the scheduler's pass count");
    s.wait_for("the scheduler's next passes", 15, || {
        ticks(s).filter(|&t| t >= seen + n).map(|_| ())
    });
}

fn clock(mins: i64) -> String {
    let t = jiff::Timestamp::now() + jiff::SignedDuration::from_mins(mins);
    t.to_zoned(jiff::tz::TimeZone::UTC)
        .strftime("%H:%M")
        .to_string()
}

/// Adds the user `watcher` with the viewer role (the admin's password hash, so the same
/// password) to `DATA/users.json` while the server is down.
fn add_viewer(data: &std::path::Path) {
    let path = data.join("users.json");
    let mut users: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let hash = users["users"][0]["hash"].clone();
    users["users"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"name": "watcher", "hash": hash, "role": "viewer"}));
    std::fs::write(&path, serde_json::to_vec(&users).unwrap()).unwrap();
}

#[test]
fn cron_schedule_starts_and_stops_a_capture() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    // A window of 3 s starting 4 s from now, written offline through the CLI.
    let start = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(4);
    let z = start.to_zoned(jiff::tz::TimeZone::UTC);
    let cron = format!("{} {} {} * * *", z.second(), z.minute(), z.hour());
    text(&wirecap_in(
        &data,
        &[
            "schedule",
            "add",
            "burst",
            "--cron",
            &cron,
            "--duration",
            "3s",
            "--stream",
            "sched",
        ],
    ));
    let listed = text(&wirecap_in(&data, &["schedule", "list"]));
    assert!(listed.starts_with("burst\tcron"), "{listed}");
    assert!(listed.contains("next_start="), "{listed}");

    let s = Server::start(&data, &["--synthetic", "2000"]);
    let v = schedule(&s, "burst");
    assert_eq!(v["active"], false, "{v}");
    assert!(v["next_start"].is_string(), "{v}");
    // It starts…
    let stored = s.wait_for("the scheduled capture to start", 20, || {
        let v = schedule(&s, "burst");
        v["current_stream"].as_str().map(str::to_owned)
    });
    assert!(stored.starts_with("sched_"), "{stored}");
    let st = s.api("GET", "/api/v1/status", None, 200);
    assert_eq!(st["capture"]["stream"], stored.as_str());
    // …and stops at the window's end, with a sealed stream full of packets.
    let v = s.wait_for("the scheduled capture to stop", 20, || {
        let v = schedule(&s, "burst");
        (v["active"] == false).then_some(v)
    });
    assert!(event(&v).starts_with(&format!("stopped {stored}")), "{v}");
    let info = s.wait_for("the stream to be sealed", 10, || {
        let i = stream(&s, &stored);
        (i["state"] == "sealed").then_some(i)
    });
    assert!(info["packets"].as_u64().unwrap() > 100, "{info}");
    assert!(s.log().contains("started sched_"), "the decision is logged");
    let st = s.api("GET", "/api/v1/status", None, 200);
    assert_eq!(st["capture"]["active"], false);
    // The next window is tomorrow's.
    assert!(v["next_start"].is_string(), "{v}");
}

#[test]
fn open_window_survives_a_restart_as_a_new_stream_and_manual_capture_wins() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut s = Server::start(&data, &["--synthetic", "1000"]);
    // A daily window open now, added through the API; a bad one is refused, with the field.
    let bad = s.admin(
        "POST",
        "/api/v1/schedules",
        Some(r#"{"name":"bad","cron":"0 99 * * *","duration":"1h"}"#),
    );
    assert_eq!(bad.code, 400);
    let e = bad.json();
    assert_eq!(e["field"], "cron", "{e}");
    let bad = s.admin(
        "POST",
        "/api/v1/schedules",
        Some(r#"{"name":"bad","days":["daily"],"start":"08:00","stop":"09:00","colour":"red"}"#),
    );
    assert_eq!(bad.code, 400);
    let e = bad.json();
    assert_eq!(e["field"], "colour", "{e}");
    let body = format!(
        r#"{{"name":"day","days":["daily"],"start":"{}","stop":"{}"}}"#,
        clock(-2),
        clock(30)
    );
    s.api("POST", "/api/v1/schedules", Some(&body), 201);
    s.api("POST", "/api/v1/schedules", Some(&body), 409);
    let first = s.wait_for("the schedule to start its capture", 15, || {
        schedule(&s, "day")["current_stream"]
            .as_str()
            .map(str::to_owned)
    });
    let v = schedule(&s, "day");
    assert_eq!(v["active"], true);
    assert!(v["next_stop"].is_string(), "{v}");
    // The file holds it (written through config::update).
    let toml = std::fs::read_to_string(data.join("wirecap.toml")).unwrap();
    assert!(
        toml.contains("[[schedule]]") && toml.contains("name = \"day\""),
        "{toml}"
    );

    // Restart: the window is still open, so a new stream starts; the old one stays sealed.
    s.stop();
    add_viewer(&data);
    let s = Server::start(&data, &["--synthetic", "1000"]);
    // A viewer reads schedules and retention but changes nothing.
    assert_eq!(
        s.as_user("watcher", PW, "GET", "/api/v1/schedules", None)
            .code,
        200
    );
    assert_eq!(
        s.as_user("watcher", PW, "GET", "/api/v1/retention", None)
            .code,
        200
    );
    for (method, path, body) in [
        ("POST", "/api/v1/schedules", body.as_str()),
        ("PUT", "/api/v1/schedules/day", body.as_str()),
        ("DELETE", "/api/v1/schedules/day", ""),
        ("PUT", "/api/v1/retention", r#"{"budget":"1MB"}"#),
        (
            "PUT",
            &format!("/api/v1/streams/{first}/pin"),
            r#"{"pinned":true}"#,
        ),
    ] {
        let b = (!body.is_empty()).then_some(body);
        assert_eq!(
            s.as_user("watcher", PW, method, path, b).code,
            403,
            "{method} {path}"
        );
    }
    let second = s.wait_for("a new scheduled capture after the restart", 15, || {
        schedule(&s, "day")["current_stream"]
            .as_str()
            .map(str::to_owned)
    });
    assert_ne!(second, first, "a new stream, never the old one resumed");
    let v = schedule(&s, "day");
    assert!(event(&v).contains("new stream"), "{v}");
    assert_eq!(stream(&s, &first)["state"], "sealed");
    assert!(stream(&s, &first)["packets"].as_u64().unwrap() > 0);

    // A manual stop suspends the window: the schedule does not start again.
    s.api("POST", "/api/v1/capture/stop", Some("{}"), 200);
    let v = s.wait_for("the suspension", 10, || {
        let v = schedule(&s, "day");
        event(&v).starts_with("suspended").then_some(v)
    });
    assert_eq!(v["active"], false);
    assert!(v["suspended_until"].is_string(), "{v}");
    // Two whole scheduler passes after the suspension was seen: had the schedule wanted
    // to start again, it would have by then.
    next_ticks(&s, 2);
    let st = s.api("GET", "/api/v1/status", None, 200);
    assert_eq!(
        st["capture"]["active"], false,
        "the schedule did not fight back"
    );

    // A manual capture runs; a second schedule whose window is open skips, and says why.
    let m = s.api(
        "POST",
        "/api/v1/capture/start",
        Some(r#"{"name":"manual"}"#),
        200,
    );
    let manual = m["stream"].as_str().unwrap().to_owned();
    // Offline CLI edit while the server runs: picked up from the file's mtime.
    let out = wirecap_in(
        &data,
        &[
            "schedule",
            "add",
            "other",
            "--days",
            "daily",
            "--start",
            &clock(-2),
            "--stop",
            &clock(30),
        ],
    );
    text(&out);
    let v = s.wait_for("the second schedule to skip", 10, || {
        let r = s.admin("GET", "/api/v1/schedules/other", None);
        let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        (r.code == 200 && event(&v).starts_with("skipped")).then_some(v)
    });
    assert!(
        event(&v).contains(&format!("manual capture {manual} running")),
        "{v}"
    );
    next_ticks(&s, 2);
    let st = s.api("GET", "/api/v1/status", None, 200);
    assert_eq!(
        st["capture"]["stream"],
        manual.as_str(),
        "manual capture untouched"
    );
    assert_eq!(st["capture"]["active"], true);

    // Removing the schedules leaves the manual capture alone.
    s.api("DELETE", "/api/v1/schedules/other", None, 204);
    text(&wirecap_in(&data, &["schedule", "remove", "day"]));
    s.wait_for("the schedules to be gone", 10, || {
        let v = s.api("GET", "/api/v1/schedules", None, 200);
        v["schedules"]
            .as_array()
            .is_some_and(Vec::is_empty)
            .then_some(())
    });
    let st = s.api("GET", "/api/v1/status", None, 200);
    assert_eq!(st["capture"]["stream"], manual.as_str());
    s.api("POST", "/api/v1/capture/stop", Some("{}"), 200);

    // A hand edit that breaks the file is reported, pointing at the field; nothing runs.
    let path = data.join("wirecap.toml");
    let mut toml = std::fs::read_to_string(&path).unwrap();
    toml.push_str("\n[[schedule]]\nname = \"typo\"\ncron = \"0 25 * * *\"\nduration = \"1h\"\n");
    std::fs::write(&path, toml).unwrap();
    let v = s.wait_for("the file error to be shown", 10, || {
        let v = s.api("GET", "/api/v1/schedules", None, 200);
        v["error"].as_str().map(str::to_owned)
    });
    assert!(v.contains("typo") && v.contains("cron"), "{v}");
}
