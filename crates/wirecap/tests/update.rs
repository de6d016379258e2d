//! End-to-end tests of the software update, the service install and `wirecap doctor`,
//! with the real binary: `wirecap serve` on 127.0.0.1, release archives made by
//! `wirecap release pack`, and bad releases that are real ELF programs (compiled here with
//! rustc) which crash or hang at start.
//!
//! Needs `curl`; the unit-file test needs `systemd-analyze` (package systemd). Every wait
//! is bounded.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

mod support;
use support::server::{PW, Server};
use support::{BIN, ok, wirecap};

/// The version the binary under test reports.
fn own_version() -> String {
    ok(&wirecap(&["--version"]))
        .trim()
        .strip_prefix("wirecap ")
        .expect("wirecap VERSION")
        .to_owned()
}

/// A `wirecap serve` with `config` as its wirecap.toml, in a directory that also holds
/// the test's files (dropped after the server: the bindings drop in reverse order).
fn start(config: &str) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::builder(&dir.path().join("data"))
        .config(config)
        .start();
    (dir, s)
}

/// `GET path` as the admin: (status, body).
fn get(s: &Server, path: &str) -> (u16, String) {
    let r = s.admin("GET", path, None);
    (r.code, r.text())
}

fn upload(s: &Server, archive: &Path) -> (u16, String) {
    let r = s
        .req("POST", "/api/v1/releases")
        .basic("admin", PW)
        .body("application/gzip", std::fs::read(archive).expect("archive"))
        .timeout(Duration::from_secs(120))
        .send();
    (r.code, r.text())
}

/// `GET /api/v1/releases`, retried while the server restarts (bounded).
fn releases(s: &Server) -> serde_json::Value {
    s.wait_for("an answer from /api/v1/releases", 60, || {
        let r = s
            .req("GET", "/api/v1/releases")
            .basic("admin", PW)
            .try_send()
            .ok()?;
        (r.code == 200).then(|| r.json())
    })
}

/// Runs `wirecap update ARGS` against this server.
fn client(s: &Server, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("update")
        .args(args)
        .env("WIRECAP_URL", s.url(""))
        .env("WIRECAP_PASSWORD", PW)
        .stdin(Stdio::null())
        .output()
        .expect("run wirecap update")
}

/// Waits (bounded) until the history holds `event` for `version`.
fn wait_event(s: &Server, event: &str, version: &str, limit: Duration) -> serde_json::Value {
    s.wait_for(&format!("{event:?} for {version}"), limit.as_secs(), || {
        let v = releases(s);
        let found = v["history"].as_array().is_some_and(|h| {
            h.iter()
                .any(|e| e["event"] == event && e["version"] == version)
        });
        (found && v["pending"].is_null()).then_some(v)
    })
}

/// Kills, when dropped, the server a rollback left under another pid.
struct KillOnDrop(Option<u32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
        }
    }
}

/// A real ELF program that answers `--version` like wirecap `version` and then, when run
/// as a server, does `behaviour` ("crash": exit 1; "hang": sleep past any deadline).
fn bad_release(dir: &Path, version: &str, behaviour: &str) -> PathBuf {
    let body = match behaviour {
        "crash" => "eprintln!(\"bad release: exiting at start\"); std::process::exit(1);",
        // Bounded: even a watchdog that failed to kill it leaves nothing behind for long.
        "hang" => "std::thread::sleep(std::time::Duration::from_secs(60));",
        other => panic!("unknown behaviour {other}"),
    };
    let src = dir.join(format!("bad-{behaviour}.rs"));
    std::fs::write(
        &src,
        format!(
            "fn main() {{ if std::env::args().nth(1).as_deref() == Some(\"--version\") {{ println!(\"wirecap {version}\"); return; }} {body} }}"
        ),
    )
    .unwrap();
    let out = dir.join(format!("bad-{behaviour}"));
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let o = Command::new(rustc)
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .output()
        .expect("run rustc");
    assert!(
        o.status.success(),
        "rustc: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

fn pack(binary: &Path, version: &str, out: &Path, key: Option<&Path>) -> String {
    let mut args = vec![
        "release".to_owned(),
        "pack".into(),
        "--binary".into(),
        binary.display().to_string(),
        "--version".into(),
        version.into(),
        "-o".into(),
        out.display().to_string(),
    ];
    if let Some(k) = key {
        args.push("--sign-key".into());
        args.push(k.display().to_string());
    }
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&wirecap(&a))
}

fn installed(s: &Server) -> Vec<String> {
    releases(s)["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["version"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn bad_archives_are_refused_and_nothing_is_installed() {
    let tmp = tempfile::tempdir().unwrap();
    // Signing keys: one trusted by the server, one not.
    let key = tmp.path().join("release.key");
    let public = ok(&wirecap(&[
        "release",
        "keygen",
        "-o",
        key.to_str().unwrap(),
    ]));
    let public = public.trim();
    let stranger = tmp.path().join("stranger.key");
    ok(&wirecap(&[
        "release",
        "keygen",
        "-o",
        stranger.to_str().unwrap(),
    ]));
    assert!(
        !wirecap(&["release", "keygen", "-o", key.to_str().unwrap()])
            .status
            .success(),
        "an existing key must not be overwritten"
    );
    let (_dir, s) = start(&format!(
        "[update]\ntrusted_keys = [\"{public}\"]\nrequire_signature = true\nmax_upload_mb = 64\n"
    ));
    let prog = bad_release(tmp.path(), "7.0.0", "crash");

    // Checksum: the binary in the archive is not the one the manifest describes.
    let good = tmp.path().join("good.tar.gz");
    pack(&prog, "7.0.0", &good, Some(&key));
    let x = tmp.path().join("x");
    std::fs::create_dir(&x).unwrap();
    let st = Command::new("tar")
        .arg("-xzf")
        .arg(&good)
        .arg("-C")
        .arg(&x)
        .status()
        .unwrap();
    assert!(st.success());
    let mut bin = std::fs::read(x.join("wirecap")).unwrap();
    bin.push(0);
    std::fs::write(x.join("wirecap"), bin).unwrap();
    let tampered = tmp.path().join("tampered.tar.gz");
    let st = Command::new("tar")
        .arg("-czf")
        .arg(&tampered)
        .arg("-C")
        .arg(&x)
        .args(["manifest.toml", "wirecap"])
        .status()
        .unwrap();
    assert!(st.success());
    let (code, body) = upload(&s, &tampered);
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("checksum mismatch"), "{body}");

    // Not an archive; unsigned while signatures are required; signed by a stranger.
    let (code, body) = upload(&s, &prog);
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("not a release archive"), "{body}");
    let unsigned = tmp.path().join("unsigned.tar.gz");
    pack(&prog, "7.0.0", &unsigned, None);
    let (code, body) = upload(&s, &unsigned);
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("requires signed releases"), "{body}");
    let foreign = tmp.path().join("foreign.tar.gz");
    pack(&prog, "7.0.0", &foreign, Some(&stranger));
    let (code, body) = upload(&s, &foreign);
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("no trusted key"), "{body}");

    // A binary that reports another version than its manifest (`wirecap release pack`
    // refuses to make one, issue 14.11; the library's unchecked pack does).
    let liar = tmp.path().join("liar.tar.gz");
    let signing =
        wirecap_appliance::release::read_signing_key(&std::fs::read_to_string(&key).unwrap())
            .unwrap();
    wirecap_appliance::release::pack_unchecked(&prog, "7.0.1", Some(&signing), &liar).unwrap();
    let (code, body) = upload(&s, &liar);
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("reports version"), "{body}");
    // Its refusal is recorded with the version it claimed.
    let h = releases(&s)["history"].clone();
    let last = h.as_array().unwrap().last().unwrap();
    assert_eq!(last["event"], "refused", "{h:#}");
    assert_eq!(last["version"], "7.0.1", "{h:#}");

    // Too big: refused from its Content-Length, before the body is read.
    let big = tmp.path().join("big.tar.gz");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(65 << 20)
        .unwrap();
    let (code, body) = upload(&s, &big);
    assert_eq!(code, 413, "{body}");
    assert!(body.contains("at most 64 MiB"), "{body}");

    // A form post cannot upload (CSRF), and a viewer-less check of the route's role is
    // covered by the admin-only guard; nothing so far was installed.
    let r = s
        .req("POST", "/api/v1/releases")
        .basic("admin", PW)
        .body("text/plain", b"x".to_vec())
        .send();
    assert_eq!(r.code, 415, "{}", r.text());
    assert!(installed(&s).is_empty());
    let leftovers: Vec<_> = std::fs::read_dir(s.data().join("releases"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "history.jsonl" && n != "healthy")
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
    let v = releases(&s);
    let refused = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "refused")
        .count();
    assert_eq!(refused, 5, "{v:#}");

    // The properly signed archive goes in, through the CLI client.
    let o = client(&s, &["upload", good.to_str().unwrap()]);
    let out = ok(&o);
    assert!(
        out.contains("installed release 7.0.0") && out.contains("signed"),
        "{out}"
    );
    assert_eq!(installed(&s), ["7.0.0"]);
    let r = &releases(&s)["releases"][0];
    assert_eq!(r["signed_by"], public);
    assert_eq!(r["running"], false);
}

#[test]
fn update_to_the_current_binary_restarts_in_place_and_seals_the_capture() {
    let (dir, mut s) = start("[capture]\nsynthetic = 200\n[update]\nhealth_timeout_secs = 60\n");
    let pid = s.pid();
    let (code, body) = get(&s, "/sysmaster/capture_start?StreamName=before");
    assert_eq!(code, 200, "{body}");

    let version = own_version();
    let archive = dir.path().join(format!("wirecap-{version}.tar.gz"));
    pack(Path::new(BIN), &version, &archive, None);
    let out = ok(&client(&s, &["upload", archive.to_str().unwrap()]));
    assert!(
        out.contains(&format!("installed release {version}")),
        "{out}"
    );
    let v = releases(&s);
    assert_eq!(v["running"]["managed"], false);
    assert_eq!(v["releases"][0]["running"], false);

    // Activate: the client waits for the outcome across the restart.
    let o = client(&s, &["activate", &version, "--wait", "90"]);
    let out = ok(&o);
    assert!(out.contains("sealed capture before_"), "{out}");
    assert!(out.contains(&format!("healthy {version}")), "{out}");

    let v = wait_event(&s, "healthy", &version, Duration::from_secs(60));
    assert_eq!(v["running"]["pid"], pid, "re-exec keeps the pid: {v:#}");
    assert_eq!(v["running"]["managed"], true, "{v:#}");
    let want = s.data().join("releases").join(&version).join("wirecap");
    assert_eq!(
        Path::new(v["running"]["path"].as_str().unwrap()),
        want.canonicalize().unwrap()
    );
    assert_eq!(v["releases"][0]["running"], true);
    assert_eq!(v["releases"][0]["selected"], true);
    assert_eq!(v["healthy"]["pid"], pid);
    assert!(s.alive(), "the process the test started is the one serving");

    // The capture that ran before the restart was sealed, not recovered after a crash.
    let (code, body) = get(&s, "/api/v1/streams");
    assert_eq!(code, 200, "{body}");
    let streams: serde_json::Value = serde_json::from_str(&body).unwrap();
    let before = streams
        .as_array()
        .unwrap()
        .iter()
        .find(|st| st["base_name"] == "before")
        .unwrap_or_else(|| panic!("no stream 'before' in {streams:#}"));
    assert_eq!(before["state"], "sealed", "{before:#}");
    assert!(before["packets"].as_u64().unwrap() > 0, "{before:#}");
    let (_, status) = get(&s, "/sysmaster/status");
    assert!(status.contains("capture_active, false"), "{status}");

    // The selection outlives the process: started again from the original binary (as
    // systemd starts /usr/local/bin/wirecap), the server runs the selected release.
    s.restart();
    let v = releases(&s);
    assert_eq!(v["running"]["pid"], s.pid(), "{v:#}");
    assert_eq!(
        Path::new(v["running"]["path"].as_str().unwrap()),
        want.canonicalize().unwrap(),
        "{v:#}"
    );
    assert!(v["pending"].is_null(), "{v:#}");
}

fn rollback(behaviour: &str) {
    let (dir, s) = start("[update]\nhealth_timeout_secs = 3\n");
    let pid = s.pid();
    let version = format!("9.9.9-{behaviour}");
    let prog = bad_release(dir.path(), &version, behaviour);
    let archive = dir.path().join("bad.tar.gz");
    pack(&prog, &version, &archive, None);
    let (code, body) = upload(&s, &archive);
    assert_eq!(code, 201, "{body}");

    let r = s.admin(
        "POST",
        &format!("/api/v1/releases/{version}/activate"),
        Some("{}"),
    );
    assert_eq!(r.code, 202, "{}", r.text());
    let v = wait_event(&s, "rolled back", &version, Duration::from_secs(60));
    let new_pid = v["running"]["pid"].as_u64().unwrap() as u32;
    let _other = KillOnDrop((new_pid != pid).then_some(new_pid));
    // The original binary serves again, selected, under the watchdog's pid.
    assert_ne!(new_pid, pid, "{v:#}");
    assert_eq!(
        Path::new(v["running"]["path"].as_str().unwrap()),
        Path::new(BIN).canonicalize().unwrap(),
        "{v:#}"
    );
    assert_eq!(
        Path::new(v["selected"]["path"].as_str().unwrap()),
        Path::new(BIN).canonicalize().unwrap()
    );
    let event = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|e| e["event"] == "rolled back")
        .unwrap();
    let detail = event["detail"].as_str().unwrap();
    match behaviour {
        "crash" => assert!(
            detail.contains("exited before it became healthy"),
            "{detail}"
        ),
        _ => assert!(detail.contains("not healthy within 3 s"), "{detail}"),
    }
    // The failed release stays installed, neither running nor selected; the server works.
    let r = &v["releases"][0];
    assert_eq!(r["version"], version.as_str());
    assert_eq!(r["running"], false);
    assert_eq!(r["selected"], false);
    let (code, _) = get(&s, "/sysmaster/status");
    assert_eq!(code, 200);
    let list = ok(&client(&s, &["list"]));
    assert!(list.contains("rolled back"), "{list}");
}

#[test]
fn a_release_that_crashes_at_start_is_rolled_back() {
    rollback("crash");
}

#[test]
fn a_release_that_hangs_at_start_is_rolled_back() {
    rollback("hang");
}

#[test]
fn install_into_a_root_writes_a_unit_that_systemd_accepts() {
    let root = tempfile::tempdir().unwrap();
    let out = ok(&wirecap(&[
        "install",
        "--root",
        root.path().to_str().unwrap(),
        "--interface",
        "eth7",
    ]));
    assert!(out.contains("skip: user wirecap"), "{out}");
    let bin = root.path().join("usr/local/bin/wirecap");
    let unit_path = root.path().join("etc/systemd/system/wirecap.service");
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&bin).unwrap().permissions().mode() & 0o777,
            0o755
        );
    }
    assert_eq!(
        ok(&Command::new(&bin).arg("--version").output().unwrap()),
        ok(&wirecap(&["--version"]))
    );
    let unit = std::fs::read_to_string(&unit_path).unwrap();
    for want in [
        "User=wirecap",
        "StateDirectory=wirecap",
        "AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN CAP_IPC_LOCK CAP_NET_BIND_SERVICE",
        "CapabilityBoundingSet=CAP_NET_RAW CAP_NET_ADMIN CAP_IPC_LOCK CAP_NET_BIND_SERVICE",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "ReadWritePaths=/var/lib/wirecap",
        "Restart=on-failure",
        "LimitMEMLOCK=infinity",
        "ExecStart=/usr/local/bin/wirecap serve --data /var/lib/wirecap --https 0.0.0.0:443 --interface eth7",
    ] {
        assert!(unit.contains(want), "unit lacks {want:?}:\n{unit}");
    }

    if !wirecap_testkit::require_tool("systemd-analyze") {
        return;
    }
    // systemd-analyze checks that ExecStart exists: point it at the binary just installed.
    let verify = |text: &str| -> Output {
        let d = root.path().join("verify");
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("wirecap.service");
        std::fs::write(
            &p,
            text.replace("/usr/local/bin/wirecap", bin.to_str().unwrap()),
        )
        .unwrap();
        Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&p)
            .output()
            .expect("run systemd-analyze")
    };
    let o = verify(&unit);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success() && err.trim().is_empty(),
        "systemd-analyze verify: {}\n{err}",
        o.status
    );
    // The check itself can fail: a misspelt key is reported.
    let o = verify(&unit.replace("ProtectHome=yes", "ProtectHomes=yes"));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("ProtectHomes"),
        "systemd-analyze did not notice a bad key"
    );
}

#[test]
fn install_dry_run_changes_nothing() {
    let unit = Path::new("/etc/systemd/system/wirecap.service");
    let existed = unit.exists();
    let out = ok(&wirecap(&[
        "install",
        "--dry-run",
        "--prefix",
        "/opt/wc",
        "--interface",
        "eth7",
    ]));
    assert!(out.contains("dry run"), "{out}");
    assert!(
        out.contains("install: ") && out.contains("/opt/wc/bin/wirecap"),
        "{out}"
    );
    assert!(
        out.contains("ExecStart=/opt/wc/bin/wirecap serve --data /var/lib/wirecap --https 0.0.0.0:443 --interface eth7"),
        "{out}"
    );
    assert!(!Path::new("/opt/wc/bin/wirecap").exists());
    assert_eq!(unit.exists(), existed);
    let o = wirecap(&["install", "--dry-run", "--interface", "eth0; reboot"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not an interface name"));
}

#[test]
fn doctor_reports_each_check_and_fails_with_a_fix() {
    let d = tempfile::tempdir().unwrap();
    let o = wirecap(&[
        "doctor",
        "--data",
        d.path().to_str().unwrap(),
        "--interface",
        "lo",
    ]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    for check in [
        "capabilities",
        "memlock",
        "disk",
        "O_DIRECT",
        "service user",
        "interface",
        "offloads",
        "promiscuous",
        "clock",
        "clocksource",
        "kernel",
    ] {
        let line = out
            .lines()
            .find(|l| {
                l.get(5..)
                    .is_some_and(|r| r.starts_with(&format!("{check} ")))
            })
            .unwrap_or_else(|| panic!("no {check} line in:\n{out}"));
        assert!(
            line.starts_with("OK ") || line.starts_with("WARN ") || line.starts_with("FAIL "),
            "{line}"
        );
        if !line.starts_with("OK ") {
            assert!(line.contains("fix: "), "{line}");
        }
    }
    assert!(out.contains("interface      lo: up"), "{out}");
    // The exit status follows the FAIL lines.
    assert_eq!(o.status.success(), !out.contains("\nFAIL "), "{out}");
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n");
    if root {
        assert!(out.starts_with("OK   capabilities"), "{out}");
    }

    // Without --interface, the configured capture interface is checked.
    std::fs::write(
        d.path().join("wirecap.toml"),
        "[capture]\ninterface = \"lo\"\n",
    )
    .unwrap();
    let o = wirecap(&["doctor", "--data", d.path().to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("interface      lo: "), "{out}");

    let o = wirecap(&[
        "doctor",
        "--data",
        d.path().join("missing").to_str().unwrap(),
        "--interface",
        "nope0",
    ]);
    assert!(!o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("FAIL data dir") && out.contains("does not exist — fix: create it"),
        "{out}"
    );
    assert!(
        out.contains("FAIL interface      nope0 does not exist — fix: give one of: "),
        "{out}"
    );
    assert!(out.contains("lo"), "{out}");
    assert_eq!(o.status.code(), Some(1), "{out}");

    // A missing interface alone fails the run, on its own line, with exit status 1; the
    // data directory (which exists) passes.
    let o = wirecap(&[
        "doctor",
        "--data",
        d.path().to_str().unwrap(),
        "--interface",
        "nope0",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let fails: Vec<&str> = out.lines().filter(|l| l.starts_with("FAIL ")).collect();
    assert!(
        fails
            .iter()
            .any(|l| l.starts_with("FAIL interface      nope0 does not exist")),
        "{out}"
    );
    assert!(!out.contains("FAIL data dir"), "{out}");
    if root {
        assert_eq!(fails.len(), 1, "only the interface fails as root: {out}");
    }
}
