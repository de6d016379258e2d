//! End-to-end tests of the appliance's administration (issue 8): roles on every route,
//! users from the API and the CLI, the hostname (the OS path only inside a new UTS
//! namespace), system reports, and the config file surviving `kill -9` mid-write.
//!
//! Each test runs the real `wirecap serve` on 127.0.0.1 with a synthetic source and talks
//! plain HTTP/1.1 to it. Every wait is bounded.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use sha2::Digest as _;

mod support;
use support::http::{Auth, Request};
use support::server::{PW, Server, free_port};
use support::wait_until;
use support::wirecap_stdin as wirecap;

/// Waits until the running capture stored packets.
fn wait_for_packets(s: &Server) {
    wait_until("packets in the capture", || {
        s.admin("GET", "/api/v1/status", None).json()["packets_captured"]
            .as_u64()
            .is_some_and(|n| n > 0)
    });
}

/// `wirecap serve` on `data` with a synthetic source.
fn start(data: &Path) -> Server {
    Server::builder(data).synthetic(200).start()
}

fn data_dir(tmp: &tempfile::TempDir) -> PathBuf {
    let d = tmp.path().join("data");
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn a_viewer_reads_and_downloads_but_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let s = start(&data_dir(&tmp));
    let r = s.admin(
        "POST",
        "/api/v1/users",
        Some(r#"{"name":"vera","password":"vera-password","role":"viewer"}"#),
    );
    assert_eq!(r.code, 201, "{}", r.text());
    // A capture for the viewer to read.
    let r = s.admin("GET", "/sysmaster/capture_start?StreamName=demo", None);
    assert_eq!(r.code, 200, "{}", r.text());
    wait_for_packets(&s);
    let r = s.admin("GET", "/sysmaster/capture_stop", None);
    assert_eq!(r.code, 200, "{}", r.text());
    let streams = s.admin("GET", "/api/v1/streams", None).json();
    let name = streams[0]["name"].as_str().expect("a stream").to_owned();

    let v = |m: &str, p: &str, b: Option<&str>| s.as_user("vera", "vera-password", m, p, b);
    for p in [
        "/sysmaster/status".to_owned(),
        "/plain/list".into(),
        format!("/plain/split?StreamName={name}&StreamView=split_1sec"),
        format!("/pcap/single?StreamName={name}"),
        "/api/v1/status".into(),
        "/api/v1/streams".into(),
        format!("/api/v1/streams/{name}/pcap"),
        "/api/v1/users".into(),
        "/api/v1/hostname".into(),
        "/api/v1/ui/streams".into(),
    ] {
        let r = v("GET", &p, None);
        assert_eq!(r.code, 200, "viewer GET {p}: {}", r.text());
    }
    // System reports hold logs (client addresses), the users and the config: admin only.
    let r = v("GET", "/api/v1/reports", None);
    assert_eq!(r.code, 403, "viewer GET /api/v1/reports: {}", r.text());
    let r = v(
        "POST",
        "/api/v1/ui/filter/check",
        Some(r#"{"language":"bpf","text":"tcp"}"#),
    );
    assert_eq!(r.code, 200, "filter check is a read: {}", r.text());
    let r = v(
        "POST",
        &format!("/api/v1/ui/streams/{name}/analysis"),
        Some("{}"),
    );
    assert_eq!(r.code, 200, "analysis is a read: {}", r.text());

    let refused: &[(&str, String, Option<&str>)] = &[
        ("GET", "/sysmaster/capture_start?StreamName=x".into(), None),
        ("GET", "/sysmaster/capture_stop".into(), None),
        (
            "POST",
            "/api/v1/capture/start".into(),
            Some(r#"{"name":"x"}"#),
        ),
        ("POST", "/api/v1/capture/stop".into(), Some("{}")),
        ("DELETE", format!("/api/v1/streams/{name}"), None),
        (
            "PUT",
            "/api/v1/ui/capture/interface".into(),
            Some(r#"{"interface":"lo"}"#),
        ),
        (
            "PUT",
            "/api/v1/hostname".into(),
            Some(r#"{"hostname":"viewer-was-here"}"#),
        ),
        (
            "POST",
            "/api/v1/users".into(),
            Some(r#"{"name":"evil","password":"evil-password","role":"admin"}"#),
        ),
        ("DELETE", "/api/v1/users/admin".into(), None),
        (
            "PATCH",
            "/api/v1/users/admin".into(),
            Some(r#"{"password":"taken-over!"}"#),
        ),
        (
            "PATCH",
            "/api/v1/users/vera".into(),
            Some(r#"{"role":"admin"}"#),
        ),
        ("POST", "/api/v1/report".into(), Some("{}")),
    ];
    for (m, p, b) in refused {
        let r = v(m, p, *b);
        assert_eq!(r.code, 403, "viewer {m} {p} must be refused: {}", r.text());
    }
    // Every route of the router's own table (`wirecap_http::routes()`, from which the
    // router is built: a new route cannot be missed). A viewer's non-read is refused
    // before its handler runs; a read answers the viewer exactly what it answers the
    // admin (path parameters name things that do not exist, so nothing is changed).
    let reads = [
        ("POST", "/api/v1/session"),
        ("DELETE", "/api/v1/session"),
        ("POST", "/api/v1/ui/filter/check"),
        ("POST", "/api/v1/ui/streams/{name}/analysis"),
        ("POST", "/api/v1/ui/streams/{name}/analyses"),
        ("DELETE", "/api/v1/ui/analyses/{id}"),
    ];
    let mut checked = 0;
    for (method, path) in wirecap_http::routes() {
        let method = method.as_str();
        if (method, *path) == ("DELETE", "/api/v1/session") {
            continue; // Basic auth has no session to end; the session case is below.
        }
        let concrete = path
            .replace("{name}", "nobody_20250101_0000")
            .replace("{view}", "split_1sec")
            .replace("{version}", "0.0.0")
            .replace("{id}", "999")
            .replace("{file}", "report_x_20250101_000000.tar.gz")
            .replace("{*path}", "nosuch.js");
        let r = v(method, &concrete, Some("{}"));
        // System reports are admin-only, reading them too (issue 17.10), and so are API
        // tokens and alerts (issue 14.5, 14.6).
        let changing_get = path.starts_with("/sysmaster/capture_")
            || path.starts_with("/api/v1/report")
            || matches!(*path, "/api/v1/tokens" | "/api/v1/alerts");
        let is_read = (method == "GET" && !changing_get) || reads.contains(&(method, *path));
        if is_read {
            let a = s.admin(method, &concrete, Some("{}"));
            assert_eq!(
                r.code,
                a.code,
                "viewer {method} {path} is a read, answered as to the admin: {} / {}",
                r.text(),
                a.text()
            );
            assert!(r.code < 500, "viewer {method} {path}: {}", r.text());
        } else {
            assert_eq!(r.code, 403, "viewer {method} {path}: {}", r.text());
            assert!(
                r.text()
                    .contains("vera is a viewer: this needs the admin role"),
                "viewer {method} {path}: {}",
                r.text()
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 15,
        "only {checked} changing routes in the route table"
    );

    // Nothing changed.
    assert_eq!(
        s.admin("GET", "/api/v1/status", None).json()["capture"]["active"],
        false
    );
    assert!(
        s.admin("GET", &format!("/api/v1/streams/{name}"), None)
            .code
            == 200
    );
    assert_ne!(
        s.admin("GET", "/api/v1/hostname", None).json()["hostname"],
        "viewer-was-here"
    );
    let users = s.admin("GET", "/api/v1/users", None).json();
    assert_eq!(users.as_array().unwrap().len(), 2, "{users}");
    assert!(
        s.admin("GET", "/api/v1/status", None).code == 200,
        "admin password unchanged"
    );

    // The browser session of a viewer is refused the same way (REC button).
    let login = s
        .req("POST", "/api/v1/session")
        .json(Some(r#"{"user":"vera","password":"vera-password"}"#))
        .send();
    assert_eq!(login.code, 200, "{}", login.text());
    let cookie = login
        .header("set-cookie")
        .and_then(|c| {
            c.split(';')
                .next()?
                .strip_prefix("wirecap_session=")
                .map(str::to_owned)
        })
        .expect("session cookie");
    let csrf = login.json()["csrf"].as_str().unwrap().to_owned();
    let sess = Auth::Session(cookie.clone(), csrf.clone());
    let r = s
        .req("POST", "/api/v1/capture/start")
        .auth(sess.clone())
        .json(Some(r#"{"name":"x"}"#))
        .send();
    assert_eq!(r.code, 403, "{}", r.text());
    let streams_code = || {
        s.req("GET", "/api/v1/streams")
            .auth(sess.clone())
            .send()
            .code
    };
    assert_eq!(streams_code(), 200);

    // A viewer changes their own password; the old one and the old session stop working.
    let r = v(
        "PATCH",
        "/api/v1/users/vera",
        Some(r#"{"password":"vera-new-password"}"#),
    );
    assert_eq!(r.code, 403, "the current password is needed: {}", r.text());
    let r = v(
        "PATCH",
        "/api/v1/users/vera",
        Some(r#"{"password":"vera-new-password","current_password":"wrong-one"}"#),
    );
    assert_eq!(r.code, 403, "{}", r.text());
    let r = v(
        "PATCH",
        "/api/v1/users/vera",
        Some(r#"{"password":"vera-new-password","current_password":"vera-password"}"#),
    );
    assert_eq!(r.code, 200, "{}", r.text());
    assert_eq!(v("GET", "/api/v1/status", None).code, 401);
    assert_eq!(streams_code(), 401);
    let r = s.as_user("vera", "vera-new-password", "GET", "/api/v1/status", None);
    assert_eq!(r.code, 200);

    // The last admin stays; a removed user is locked out at once.
    let r = s.admin("DELETE", "/api/v1/users/admin", None);
    assert_eq!(r.code, 409, "{}", r.text());
    let r = s.admin("PATCH", "/api/v1/users/admin", Some(r#"{"role":"viewer"}"#));
    assert_eq!(r.code, 409, "{}", r.text());
    let r = s.admin(
        "POST",
        "/api/v1/users",
        Some(r#"{"name":"bad name","password":"long-enough"}"#),
    );
    assert_eq!(r.code, 400, "{}", r.text());
    let r = s.admin(
        "POST",
        "/api/v1/users",
        Some(r#"{"name":"shorty","password":"short"}"#),
    );
    assert_eq!(r.code, 400, "{}", r.text());
    let r = s.admin(
        "PATCH",
        "/api/v1/users/vera",
        Some(r#"{"role":"admin","password":"short"}"#),
    );
    assert_eq!(r.code, 400, "{}", r.text());
    let users = s.admin("GET", "/api/v1/users", None).json();
    assert_eq!(
        users[1]["role"], "viewer",
        "a refused change changed nothing: {users}"
    );
    assert_eq!(s.admin("DELETE", "/api/v1/users/vera", None).code, 204);
    let r = s.as_user("vera", "vera-new-password", "GET", "/api/v1/status", None);
    assert_eq!(r.code, 401);
    // And the admin's own deletion of streams works (the rule is the role, not the route).
    assert_eq!(
        s.admin("DELETE", &format!("/api/v1/streams/{name}"), None)
            .code,
        204
    );
}

#[test]
fn users_cli_round_trip_beside_a_running_server() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let data = data_dir(&tmp);
    let d = data.to_str().unwrap();
    let out = wirecap(&["users", "list", "--data", d], None);
    assert!(!out.status.success(), "no users.json yet");
    assert!(String::from_utf8_lossy(&out.stderr).contains("wirecap serve"));
    let s = start(&data);

    let out = wirecap(
        &["users", "add", "--data", d, "bob", "--role", "viewer"],
        Some("bob-password\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = wirecap(&["users", "list", "--data", d], None);
    let list = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(list, "admin\tadmin\nbob\tviewer\n");
    let mode = std::fs::metadata(data.join("users.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let users = std::fs::read_to_string(data.join("users.json")).unwrap();
    assert!(!users.contains("bob-password"));

    // The server picks the file up without a restart.
    wait_until("bob can sign in", || {
        s.as_user("bob", "bob-password", "GET", "/api/v1/status", None)
            .code
            == 200
    });
    let out = wirecap(
        &["users", "passwd", "--data", d, "bob"],
        Some("bob-second-pw\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until("the old password stops working", || {
        s.as_user("bob", "bob-password", "GET", "/api/v1/status", None)
            .code
            == 401
    });
    assert_eq!(
        s.as_user("bob", "bob-second-pw", "GET", "/api/v1/status", None)
            .code,
        200
    );

    // Clear errors, nothing lost.
    let out = wirecap(&["users", "remove", "--data", d, "admin"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("last admin"));
    let out = wirecap(&["users", "add", "--data", d, "bob"], Some("whatever-pw\n"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists"));
    let out = wirecap(&["users", "add", "--data", d, "carl"], Some("short\n"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 8"));
    let out = wirecap(&["users", "role", "--data", d, "bob", "admin"], None);
    assert!(out.status.success());
    let out = wirecap(&["users", "remove", "--data", d, "admin"], None);
    assert!(out.status.success(), "bob is an admin now");
    wait_until("admin is gone", || {
        s.admin("GET", "/api/v1/status", None).code == 401
    });
    let out = wirecap(&["users", "list", "--data", d], None);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "bob\tadmin\n");
}

fn config_hostname(data: &Path) -> Option<String> {
    wirecap_appliance::config::FileConfig::load(data)
        .expect("wirecap.toml loads")
        .hostname
}

#[test]
fn hostname_from_api_and_cli_is_shown_everywhere_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_dir(&tmp);
    let os_before = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let mut s = start(&data);
    for bad in ["-x", "a_b", "with space", "a..b", &"y".repeat(64)] {
        let r = s.admin(
            "PUT",
            "/api/v1/hostname",
            Some(&format!(r#"{{"hostname":"{bad}"}}"#)),
        );
        assert_eq!(r.code, 400, "{bad}: {}", r.text());
        assert!(
            r.json()["error"].as_str().unwrap().contains("hostname"),
            "{}",
            r.text()
        );
    }
    let r = s.admin(
        "PUT",
        "/api/v1/hostname",
        Some(r#"{"hostname":"probe-fra-1"}"#),
    );
    assert_eq!(r.code, 200, "{}", r.text());
    assert!(
        r.json()["os"].as_str().unwrap().starts_with("not applied"),
        "{}",
        r.text()
    );
    assert_eq!(
        s.admin("GET", "/api/v1/status", None).json()["hostname"],
        "probe-fra-1"
    );
    assert_eq!(
        s.admin("GET", "/api/v1/ui/system", None).json()["hostname"],
        "probe-fra-1"
    );
    let page = s.req("GET", "/").json(None).send().text();
    assert!(page.contains("data-hostname=\"probe-fra-1\""), "{page}");
    assert_eq!(config_hostname(&data).as_deref(), Some("probe-fra-1"));

    let d = data.to_str().unwrap();
    let out = wirecap(&["hostname", "--data", d, "bad_name"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad_name"));
    let out = wirecap(&["hostname", "--data", d, "probe-fra-2"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until("the server shows the CLI's hostname", || {
        s.admin("GET", "/api/v1/status", None).json()["hostname"] == "probe-fra-2"
    });
    let out = wirecap(&["hostname", "--data", d], None);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "probe-fra-2");

    s.kill9();
    let s = start(&data);
    assert_eq!(
        s.admin("GET", "/api/v1/status", None).json()["hostname"],
        "probe-fra-2"
    );
    // This machine's name was never touched.
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        os_before
    );
}

fn can_unshare() -> Option<String> {
    let ok = Command::new("unshare")
        .args(["--uts", "--mount", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let has_nsenter = Command::new("nsenter").arg("--version").output().is_ok();
    (!ok || !has_nsenter).then(|| "needs root (unshare --uts --mount) and nsenter".to_owned())
}

#[test]
fn hostname_is_applied_to_the_os_only_inside_a_new_uts_namespace() {
    if let Some(why) = can_unshare() {
        wirecap_testkit::skip(&why);
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = data_dir(&tmp);
    std::fs::write(data.join("wirecap.toml"), "apply_hostname_to_os = true\n").unwrap();
    // /etc/hostname of the namespace is a bind-mounted file of the test's.
    let etc = tmp.path().join("etc-hostname");
    std::fs::write(&etc, "before\n").unwrap();
    let os_before = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let etc_before = std::fs::read("/etc/hostname").ok();
    let script = format!(
        "mount --bind {} /etc/hostname && exec \"$0\" \"$@\"",
        etc.display()
    );
    let s = Server::builder(&data)
        .synthetic(200)
        .prefix(&[
            "unshare",
            "--uts",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
        ])
        .start();
    let r = s.admin(
        "PUT",
        "/api/v1/hostname",
        Some(r#"{"hostname":"ns-probe-7"}"#),
    );
    assert_eq!(r.code, 200, "{}", r.text());
    assert_eq!(r.json()["os"], "applied", "{}", r.text());
    let inside = Command::new("nsenter")
        .args(["-t", &s.pid().to_string(), "--uts", "hostname"])
        .output()
        .expect("nsenter");
    assert_eq!(String::from_utf8_lossy(&inside.stdout).trim(), "ns-probe-7");
    assert_eq!(std::fs::read_to_string(&etc).unwrap(), "ns-probe-7\n");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        os_before
    );
    assert_eq!(std::fs::read("/etc/hostname").ok(), etc_before);
}

/// Unpacks a report: (file name without the top folder → bytes), and the top folder.
fn unpack(tar_gz: &[u8]) -> (String, Vec<(String, Vec<u8>)>) {
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(tar_gz));
    let mut top = String::new();
    let mut files = Vec::new();
    for e in ar.entries().expect("tar entries") {
        let mut e = e.expect("tar entry");
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let (t, rest) = path.split_once('/').expect("one top folder");
        top = t.to_owned();
        let mut b = Vec::new();
        e.read_to_end(&mut b).unwrap();
        files.push((rest.to_owned(), b));
    }
    (top, files)
}

/// The filelist names every other file with its size and sha256, and nothing else.
fn check_filelist(files: &[(String, Vec<u8>)]) {
    let list = files
        .iter()
        .find(|f| f.0 == "filelist")
        .map(|f| String::from_utf8(f.1.clone()).unwrap())
        .expect("a filelist");
    let mut listed = Vec::new();
    for line in list.lines() {
        let mut it = line.splitn(3, "  ");
        let (sha, size, name) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
        let (_, bytes) = files
            .iter()
            .find(|f| f.0 == name)
            .unwrap_or_else(|| panic!("{name} listed but not in the archive"));
        let hex: String = sha2::Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(sha, hex, "{name}");
        assert_eq!(size.parse::<usize>().unwrap(), bytes.len(), "{name}");
        listed.push(name.to_owned());
    }
    let mut in_archive: Vec<String> = files
        .iter()
        .map(|f| f.0.clone())
        .filter(|n| n != "filelist")
        .collect();
    listed.sort();
    in_archive.sort();
    assert_eq!(listed, in_archive);
}

fn check_no_secrets(files: &[(String, Vec<u8>)], secrets: &[String]) {
    for (name, bytes) in files {
        let text = String::from_utf8_lossy(bytes);
        for s in secrets {
            assert!(
                !text.contains(s.as_str()),
                "{name} holds a secret ({} chars)",
                s.len()
            );
        }
    }
}

fn wait_for_report(s: &Server, id: u64) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    wait_until("the report is made", || {
        last = s.admin("GET", &format!("/api/v1/report/{id}"), None).json();
        last["state"] != "running"
    });
    assert_eq!(last["state"], "done", "{last}");
    assert_eq!(last["steps_done"], last["steps_total"], "{last}");
    last
}

#[test]
fn a_report_holds_what_its_filelist_says_and_no_secret() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_dir(&tmp);
    std::fs::write(data.join("wirecap.toml"), "hostname = \"rep-host\"\n").unwrap();
    let https = format!("127.0.0.1:{}", free_port());
    let s = Server::builder(&data)
        .synthetic(200)
        .args(&["--https", &https])
        .start();
    assert_eq!(
        s.admin(
            "POST",
            "/api/v1/users",
            Some(r#"{"name":"vic","password":"vic-password-1"}"#)
        )
        .code,
        201
    );
    assert_eq!(
        s.admin("GET", "/sysmaster/capture_start?StreamName=rep", None)
            .code,
        200
    );
    wait_for_packets(&s);
    assert_eq!(s.admin("GET", "/sysmaster/capture_stop", None).code, 200);

    let mut secrets = vec![PW.to_owned(), "vic-password-1".to_owned()];
    let users: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("users.json")).unwrap()).unwrap();
    for u in users["users"].as_array().unwrap() {
        let hash = u["hash"].as_str().unwrap();
        secrets.push(hash.to_owned());
        // The salt and the digest alone are secrets too.
        secrets.extend(hash.rsplit('$').take(2).map(str::to_owned));
    }
    let mut keys = 0;
    for e in std::fs::read_dir(data.join("tls")).expect("DIR/tls") {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        if text.contains("PRIVATE KEY") {
            keys += 1;
            secrets.push(text.lines().nth(1).unwrap().to_owned());
            secrets.push("PRIVATE KEY".into());
        }
    }
    assert!(keys > 0, "the TLS key exists to be left out");

    // Plain.
    let job = s.admin("POST", "/api/v1/report", None);
    assert_eq!(job.code, 202, "{}", job.text());
    let done = wait_for_report(&s, job.json()["id"].as_u64().unwrap());
    let file = done["file"].as_str().unwrap().to_owned();
    assert!(
        file.starts_with("report_rep-host_") && file.ends_with(".tar.gz"),
        "{file}"
    );
    assert!(data.join("upload").join(&file).exists());
    let got = s.admin("GET", done["download"].as_str().unwrap(), None);
    assert_eq!(got.code, 200);
    let (top, files) = unpack(&got.body);
    assert_eq!(format!("{top}.tar.gz"), file);
    check_filelist(&files);
    check_no_secrets(&files, &secrets);
    let names: Vec<&str> = files.iter().map(|f| f.0.as_str()).collect();
    for want in [
        "status.json",
        "config.toml",
        "users.json",
        "streams.json",
        "interfaces.json",
        "ip-addr.txt",
        "system.json",
        "meminfo.txt",
    ] {
        assert!(names.contains(&want), "{want} missing: {names:?}");
    }
    assert!(
        names.iter().any(|n| n.starts_with("log/wirecap.")),
        "{names:?}"
    );
    let get =
        |n: &str| String::from_utf8_lossy(&files.iter().find(|f| f.0 == n).unwrap().1).into_owned();
    assert!(get("streams.json").contains("rep_"), "the stream list");
    assert!(get("users.json").contains("\"vic\"") && get("users.json").contains("viewer"));
    assert!(get("status.json").contains("\"history\""));
    assert!(get("config.toml").contains("rep-host"));
    assert!(get("system.json").contains("df_data_dir"));
    let list = s.admin("GET", "/api/v1/reports", None).json();
    assert_eq!(list[0]["file"], file.as_str());
    // Bad input: a wrong recipient, a path outside upload/.
    let r = s.admin(
        "POST",
        "/api/v1/report",
        Some(r#"{"recipient":"age1nope"}"#),
    );
    assert_eq!(r.code, 400, "{}", r.text());
    assert_eq!(
        s.admin("GET", "/api/v1/reports/..%2Fusers.json", None).code,
        404
    );

    // Encrypted to an operator's key: only the identity opens it.
    let id = age::x25519::Identity::generate();
    let body = format!(r#"{{"recipient":"{}"}}"#, id.to_public());
    let job = s.admin("POST", "/api/v1/report", Some(&body));
    assert_eq!(job.code, 202, "{}", job.text());
    let done = wait_for_report(&s, job.json()["id"].as_u64().unwrap());
    let file = done["file"].as_str().unwrap();
    assert!(file.ends_with(".tar.gz.age"), "{file}");
    let enc = s
        .admin("GET", done["download"].as_str().unwrap(), None)
        .body;
    assert!(age::decrypt(&age::x25519::Identity::generate(), &enc).is_err());
    let plain = age::decrypt(&id, &enc).expect("decrypts with the identity");
    let (_, files) = unpack(&plain);
    check_filelist(&files);
    check_no_secrets(&files, &secrets);

    // Offline, from the data directory.
    let out_file = tmp.path().join("offline.tar.gz");
    let out = wirecap(
        &[
            "report",
            "--data",
            data.to_str().unwrap(),
            "-o",
            out_file.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (top, files) = unpack(&std::fs::read(&out_file).unwrap());
    assert!(top.starts_with("report_rep-host_"));
    check_filelist(&files);
    check_no_secrets(&files, &secrets);
}

#[test]
fn config_errors_point_at_the_key_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_dir(&tmp);
    let cases = [
        (
            "[capture]\ninterface = \"eth0\"\nsynthetic = 5\n",
            "line 3, [capture] synthetic",
        ),
        ("http = \"127.0.0.1\"\n", "line 1, http"),
        ("\nhostname = \"no_underscores\"\n", "line 2, hostname"),
        ("[capture]\nsynthetic = \"many\"\n", "line 2"),
        ("htp = \"x\"\n", "unknown field"),
    ];
    for (text, want) in cases {
        std::fs::write(data.join("wirecap.toml"), text).unwrap();
        let out = Command::new(support::BIN)
            .args([
                "serve",
                "--data",
                data.to_str().unwrap(),
                "--http",
                "127.0.0.1:0",
            ])
            .env("WIRECAP_ADMIN_PASSWORD", PW)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .expect("run serve");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{text:?} was accepted");
        assert!(
            err.contains("wirecap.toml") && err.contains(want),
            "{text:?}: {err}"
        );
        // Bad input loses nothing: the file is as the operator wrote it.
        assert_eq!(
            std::fs::read_to_string(data.join("wirecap.toml")).unwrap(),
            text
        );
    }
}

#[test]
fn kill_9_during_config_writes_leaves_a_valid_config() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_dir(&tmp);
    let rounds = 12;
    let mut written: Vec<String> = Vec::new();
    for round in 0..rounds {
        let mut s = start(&data);
        // After a kill, the restarted server shows what the file holds.
        let file_has = config_hostname(&data);
        if let Some(h) = &file_has {
            assert_eq!(
                s.admin("GET", "/api/v1/status", None).json()["hostname"],
                h.as_str()
            );
        }
        let port = s.port();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let landed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let hammer = {
            let stop = stop.clone();
            let landed = landed.clone();
            std::thread::spawn(move || {
                let mut sent = Vec::new();
                for i in 0..2000 {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let name = format!("r{round}-n{i}");
                    // Record before sending: a write may land even if its answer never comes.
                    sent.push(name.clone());
                    let body = format!(r#"{{"hostname":"{name}"}}"#);
                    let r = Request::new(false, port, "PUT", "/api/v1/hostname")
                        .basic("admin", PW)
                        .json(Some(&body))
                        .try_send();
                    if r.map(|r| r.code).ok() != Some(200) {
                        break;
                    }
                    landed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                sent
            })
        };
        wait_until("a first hostname write", || {
            landed.load(std::sync::atomic::Ordering::Relaxed) > 0
        });
        // Varied moments: a different delay after the first write every round.
        std::thread::sleep(Duration::from_millis((round as u64 * 37) % 120));
        s.kill9();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let sent = hammer.join().expect("hammer thread");
        assert!(!sent.is_empty());
        let n = sent.len();
        written.extend(sent);
        let h = config_hostname(&data).expect("a hostname after a round of writes");
        eprintln!("round {round}: killed after {n} writes sent; the file holds {h}");
        assert!(
            written.contains(&h),
            "round {round}: {h:?} was never written"
        );
        let text = std::fs::read_to_string(data.join("wirecap.toml")).unwrap();
        assert!(
            wirecap_appliance::config::FileConfig::parse(&text).is_ok(),
            "{text}"
        );
    }
    // The last restart cleans temp files of killed writers and works.
    let s = start(&data);
    assert_eq!(s.admin("GET", "/api/v1/status", None).code, 200);
    let stray: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}
