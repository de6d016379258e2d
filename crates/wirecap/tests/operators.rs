//! Issue 14, for scripts and operators, end to end with the real binary: API tokens from
//! the command line beside a running server (item 5), `wirecap install --http` (item 7),
//! `wirecap release pack` checking the binary's version (item 11).

use std::path::Path;

mod support;
use support::http::Auth;
use support::server::Server;
use support::{wait_until, wirecap_stdin as wirecap};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn tokens_cli_beside_a_running_server() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = data.to_str().unwrap();
    let s = Server::start(&data, &["--synthetic", "50"]);

    let out = wirecap(
        &["tokens", "add", "--data", d, "nightly", "--role", "viewer"],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let secret = text(&out.stdout).trim().to_owned();
    assert!(secret.starts_with("wct_"), "{secret}");
    assert!(text(&out.stderr).contains("shown this once"));
    let stored = std::fs::read_to_string(data.join("tokens.json")).unwrap();
    assert!(!stored.contains(&secret), "the secret is stored");

    // The running server accepts it within a second, as `Authorization: Bearer`, on the
    // manual's routes and the JSON API, with the token's role.
    let bearer = |path: &str| s.req("GET", path).auth(Auth::Bearer(secret.clone())).send();
    wait_until("the server accepts the new token", || {
        bearer("/api/v1/status").code == 200
    });
    let r = bearer("/sysmaster/status");
    assert_eq!(r.code, 200, "{}", r.text());
    let r = s
        .req("POST", "/api/v1/capture/stop")
        .auth(Auth::Bearer(secret.clone()))
        .json(None)
        .send();
    assert_eq!(r.code, 403, "{}", r.text());
    assert!(
        r.text().contains("token:nightly is a viewer"),
        "{}",
        r.text()
    );
    // curl, as a script would send it.
    let r = s.curl_as(
        None,
        "/api/v1/status",
        &["-H", &format!("Authorization: Bearer {secret}")],
    );
    assert_eq!(r.code, 200, "{}", r.text());

    // Listed (the server notes the use within its minute; the list reads the file).
    let out = wirecap(&["tokens", "list", "--data", d], None);
    let list = text(&out.stdout);
    assert!(
        list.starts_with("nightly\tviewer\tcommand line\t"),
        "{list}"
    );
    let api = s.api("GET", "/api/v1/tokens", None, 200);
    assert_eq!(api[0]["name"], "nightly");
    assert!(api[0]["last_used"].is_string(), "{api}");

    // Clear errors.
    let out = wirecap(&["tokens", "add", "--data", d, "nightly"], None);
    assert!(
        text(&out.stderr).contains("exists already"),
        "{}",
        text(&out.stderr)
    );
    let out = wirecap(&["tokens", "revoke", "--data", d, "nosuch"], None);
    assert!(text(&out.stderr).contains("no token named nosuch"));

    // Revoked beside the server: refused within a second.
    let out = wirecap(&["tokens", "revoke", "--data", d, "nightly"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    wait_until("the revoked token is refused", || {
        bearer("/api/v1/status").code == 401
    });
    let out = wirecap(&["tokens", "list", "--data", d], None);
    assert_eq!(text(&out.stdout), "");
}

#[test]
fn install_http_writes_a_plain_http_unit() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_str().unwrap();
    let out = wirecap(
        &[
            "install",
            "--root",
            root,
            "--http",
            "0.0.0.0:8080",
            "--interface",
            "eth1",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let unit =
        std::fs::read_to_string(tmp.path().join("etc/systemd/system/wirecap.service")).unwrap();
    assert!(
        unit.contains(
            "ExecStart=/usr/local/bin/wirecap serve --data /var/lib/wirecap --http 0.0.0.0:8080 --interface eth1\n"
        ),
        "{unit}"
    );
    assert!(!unit.contains("--https"), "{unit}");
    assert!(
        text(&out.stdout).contains("plain HTTP"),
        "{}",
        text(&out.stdout)
    );
    // A bad address is refused before anything is written.
    let other = tempfile::tempdir().unwrap();
    let out = wirecap(
        &[
            "install",
            "--root",
            other.path().to_str().unwrap(),
            "--http",
            "8080",
        ],
        None,
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("HOST:PORT"),
        "{}",
        text(&out.stderr)
    );
    assert!(!other.path().join("etc").exists());
}

#[test]
fn https_banner_says_how_to_switch_to_plain_http() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Server::builder(&tmp.path().join("data"))
        .https()
        .synthetic(10)
        .start();
    s.wait_for("the banner", 20, || {
        let log = s.log();
        log.contains("plain HTTP").then_some(())
    });
    let log = s.log();
    assert!(
        log.contains("http = \"0.0.0.0:8080\"") && log.contains("--http"),
        "{log}"
    );
}

fn pack(bin: &Path, version: &str, out: &Path) -> std::process::Output {
    wirecap(
        &[
            "release",
            "pack",
            "--binary",
            bin.to_str().unwrap(),
            "--version",
            version,
            "-o",
            out.to_str().unwrap(),
        ],
        None,
    )
}

#[test]
fn release_pack_refuses_a_binary_of_another_version() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = Path::new(support::BIN);
    let mine = env!("CARGO_PKG_VERSION");
    let out = tmp.path().join("bad.tar.gz");
    let o = pack(bin, "0.0.0-not-this", &out);
    assert!(!o.status.success(), "packed a binary of another version");
    let err = text(&o.stderr);
    assert!(
        err.contains(&format!("reports version \"{mine}\"")) && err.contains("0.0.0-not-this"),
        "{err}"
    );
    assert!(!out.exists(), "an archive was written");
    let good = tmp.path().join("good.tar.gz");
    let o = pack(bin, mine, &good);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(good.exists());
}

/// A webhook receiver on 127.0.0.1: every POST body, answered 200.
fn webhook_receiver() -> (String, std::sync::mpsc::Receiver<serde_json::Value>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for s in l.incoming().take(50) {
            let Ok(s) = s else { continue };
            let mut r = BufReader::new(s);
            let mut len = 0;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; len];
            if r.read_exact(&mut body).is_err() {
                continue;
            }
            let _ = r
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            if let Ok(v) = serde_json::from_slice(&body)
                && tx.send(v).is_err()
            {
                break;
            }
        }
    });
    (url, rx)
}

/// A TCP syslog receiver on 127.0.0.1: every message (RFC 6587 octet counting).
fn syslog_receiver() -> (String, std::sync::mpsc::Receiver<String>) {
    use std::io::Read;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("tcp://{}", l.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for s in l.incoming().take(50) {
            let Ok(mut s) = s else { continue };
            let mut all = String::new();
            let _ = s.read_to_string(&mut all);
            let mut rest = all.as_str();
            while let Some((len, tail)) = rest.split_once(' ') {
                let Ok(n) = len.parse::<usize>() else { break };
                let Some(msg) = tail.get(..n) else { break };
                if tx.send(msg.to_owned()).is_err() {
                    return;
                }
                rest = &tail[n..];
            }
        }
    });
    (addr, rx)
}

/// Issue 14.6 end to end: the HTTPS certificate's end is a condition that a real server
/// meets at once when `cert_days` is large; the alert reaches a local webhook and a local
/// syslog once, and its recovery follows when the threshold is lowered from the API.
#[test]
fn alerts_reach_a_webhook_and_syslog_once_with_their_recovery() {
    use std::time::Duration;
    let (hook, hooks) = webhook_receiver();
    let (syslog, lines) = syslog_receiver();
    let tmp = tempfile::tempdir().unwrap();
    let s = Server::builder(&tmp.path().join("data"))
        .https()
        .synthetic(10)
        .config(&format!(
            "[alerts]\nwebhook = \"{hook}\"\nsyslog = \"{syslog}\"\ncert_days = 100000\ndisk_percent = 100\ndrops_per_minute = 1000000\n"
        ))
        .start();
    let wait = Duration::from_secs(20);
    let first = hooks.recv_timeout(wait).expect("no webhook call");
    assert_eq!(first["condition"], "certificate", "{first}");
    assert_eq!(first["state"], "alert", "{first}");
    assert!(
        first["message"].as_str().unwrap().contains("ends in 36"),
        "{first}"
    );
    let line = lines.recv_timeout(wait).expect("no syslog message");
    assert!(
        line.starts_with("<28>1 ")
            && line.contains(" wirecap ")
            && line.contains("ALERT certificate: HTTPS certificate"),
        "{line}"
    );
    // Once per condition: nothing more while it holds.
    assert!(
        hooks.recv_timeout(Duration::from_secs(3)).is_err(),
        "alerted twice"
    );
    let v = s.api("GET", "/api/v1/alerts", None, 200);
    assert_eq!(v["active"][0]["condition"], "certificate", "{v}");
    assert!(
        v["recent"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["ok"] == true),
        "{v}"
    );

    // Lowered from the API (kept in wirecap.toml): the recovery follows.
    let body = format!(
        r#"{{"webhook":"{hook}","syslog":"{syslog}","cert_days":14,"disk_percent":100,"drops_per_minute":1000000}}"#
    );
    let v = s.api("PUT", "/api/v1/alerts", Some(&body), 200);
    assert_eq!(v["config"]["cert_days"], 14, "{v}");
    let toml = std::fs::read_to_string(s.data().join("wirecap.toml")).unwrap();
    assert!(toml.contains("cert_days = 14"), "{toml}");
    let rec = hooks.recv_timeout(wait).expect("no recovery");
    assert_eq!(rec["condition"], "certificate", "{rec}");
    assert_eq!(rec["state"], "recovered", "{rec}");
    let line = lines.recv_timeout(wait).expect("no syslog recovery");
    assert!(
        line.starts_with("<29>1 ") && line.contains("RECOVERED certificate"),
        "{line}"
    );

    // Bad settings are refused with the field; a test reaches both targets.
    let r = s.admin("PUT", "/api/v1/alerts", Some(r#"{"syslog":"514"}"#));
    assert_eq!(r.code, 400, "{}", r.text());
    assert!(r.text().contains("udp://HOST:PORT"), "{}", r.text());
    let d = s.api("POST", "/api/v1/alerts/test", None, 200);
    assert_eq!(d.as_array().unwrap().len(), 2, "{d}");
    let t = hooks.recv_timeout(wait).expect("no test call");
    assert_eq!(t["state"], "test", "{t}");
    // A viewer may not read them (a webhook URL may hold a secret).
    s.api(
        "POST",
        "/api/v1/users",
        Some(r#"{"name":"vera","password":"vera-password","role":"viewer"}"#),
        201,
    );
    let r = s.as_user("vera", "vera-password", "GET", "/api/v1/alerts", None);
    assert_eq!(r.code, 403, "{}", r.text());
}

/// Issue 14.6, link down and up, root only: the real server captures `eth0` of a network
/// namespace of its own (a veth whose peer the test sets down and up), alerting a UDP
/// syslog receiver in the same namespace. Nothing outside the namespace is touched; the
/// guard deletes it (and so the veth pair) and stops the processes, also on a panic.
#[test]
fn link_down_and_up_alert_once_each() {
    use std::io::BufRead;
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};
    if !(wirecap_testkit::require_root() && wirecap_testkit::require_tools(&["ip", "python3"])) {
        return;
    }
    struct Ns {
        name: String,
        children: Vec<Child>,
    }
    impl Drop for Ns {
        fn drop(&mut self) {
            for c in &mut self.children {
                let _ = c.kill();
                let _ = c.wait();
            }
            let _ = Command::new("ip")
                .args(["netns", "del", &self.name])
                .status();
        }
    }
    let ip = |args: &[&str]| {
        let o = Command::new("ip").args(args).output().unwrap();
        assert!(
            o.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    let mut ns = Ns {
        name: format!("wcalert{}", std::process::id()),
        children: Vec::new(),
    };
    let n = ns.name.clone();
    ip(&["netns", "add", &n]);
    ip(&[
        "link", "add", "eth0", "netns", &n, "type", "veth", "peer", "name", "peer0", "netns", &n,
    ]);
    for l in ["lo", "eth0", "peer0"] {
        ip(&["-n", &n, "link", "set", l, "up"]);
    }
    let port = support::server::free_port();
    let udp = support::server::free_port();
    // The receiver: one line per datagram, on its standard output.
    let mut rx = Command::new("ip")
        // `ip netns exec` execs python itself, so the guard's kill reaches it; it also
        // ends by itself after 90 s without a datagram.
        .args(["netns", "exec", &n, "python3", "-u", "-c"])
        .arg(format!(
            "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('127.0.0.1',{udp}))\ns.settimeout(90)\nprint('ready',flush=True)\nwhile True: print(s.recv(4096).decode().replace('\\n',' '),flush=True)"
        ))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = rx.stdout.take().unwrap();
    ns.children.push(rx);
    let (tx, lines) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    assert_eq!(
        lines.recv_timeout(Duration::from_secs(20)).unwrap(),
        "ready"
    );
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("wirecap.toml"),
        format!("[alerts]\nsyslog = \"udp://127.0.0.1:{udp}\"\ndisk_percent = 100\ndrops_per_minute = 1000000\n"),
    )
    .unwrap();
    let log = std::fs::File::create(tmp.path().join("serve.log")).unwrap();
    let srv = Command::new("ip")
        .args(["netns", "exec", &n, support::BIN, "serve", "--data"])
        .arg(&data)
        .args([
            "--http",
            &format!("127.0.0.1:{port}"),
            "--interface",
            "eth0",
        ])
        .env("WIRECAP_ADMIN_PASSWORD", support::server::PW)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    ns.children.push(srv);
    let server_log = || std::fs::read_to_string(tmp.path().join("serve.log")).unwrap_or_default();
    let next = |what: &str| {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(30) {
            if let Ok(l) = lines.recv_timeout(Duration::from_secs(1))
                && l.contains(" link ")
            {
                return l;
            }
        }
        panic!("no {what} message\n{}", server_log());
    };
    // Up at start: nothing to say. Down: one alert; up again: one recovery.
    std::thread::sleep(Duration::from_secs(3));
    ip(&["-n", &n, "link", "set", "peer0", "down"]);
    let down = next("link-down");
    assert!(
        down.starts_with("<28>1 ")
            && down.contains("ALERT link: link of capture interface eth0 is down"),
        "{down}"
    );
    std::thread::sleep(Duration::from_secs(3));
    ip(&["-n", &n, "link", "set", "peer0", "up"]);
    let up = next("link-up");
    assert!(
        up.contains("RECOVERED link: link of capture interface eth0 is up"),
        "{up}"
    );
    // Once each: no repeat while the link stays up.
    std::thread::sleep(Duration::from_secs(3));
    let more: Vec<String> = lines.try_iter().filter(|l| l.contains(" link ")).collect();
    assert!(more.is_empty(), "{more:?}");
    // The interface gone (the veth pair deleted) is a link down too.
    ip(&["-n", &n, "link", "del", "peer0"]);
    let gone = next("interface-gone");
    assert!(
        gone.contains("ALERT link: link of capture interface eth0 is down"),
        "{gone}"
    );
}
