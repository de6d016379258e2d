//! Setting the appliance up while it runs: the capture interface switched live, and the
//! capture settings (filter in the socket, snaplen, fanout threads) from the command line
//! and changed live. Root only for the parts that capture (a logged skip otherwise, a
//! failure under CI).
//!
//! Each test makes two namespaces, each joined to the root namespace by a veth pair whose
//! root end (no address, IPv6 off) is what `wirecap serve` captures. Inside a namespace,
//! `ping` sends numbered ICMP echo requests from one of two source addresses to a
//! neighbour that does not exist (a static entry, so no ARP): they cross the veth and stop
//! there. The ping counts are the truth the captures are checked against. Everything is
//! removed on drop, also when a test panics.

mod support;

use std::process::Command;
use std::time::Duration;

use support::run;
use support::server::Server;

/// Two namespaces `k = 0, 1` with hosts `10.{k+1}.0.2` and `.3`, each behind a veth whose
/// root end is `ifs[k]`.
struct Wires {
    ns: Vec<String>,
    ifs: Vec<String>,
}

impl Wires {
    fn new(tag: char) -> Self {
        let id = std::process::id() % 100_000;
        let mut w = Self {
            ns: Vec::new(),
            ifs: Vec::new(),
        };
        for k in 0..2u8 {
            let ns = format!("wl{id}{tag}{k}");
            let host = format!("wl{id}{tag}{k}");
            run(&["ip", "netns", "add", &ns]);
            w.ns.push(ns.clone());
            run(&[
                "ip", "link", "add", &host, "type", "veth", "peer", "name", "v", "netns", &ns,
            ]);
            w.ifs.push(host.clone());
            // The root end stays silent: no IPv6 (router solicitations), no address.
            run(&[
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{host}.disable_ipv6=1"),
            ]);
            run(&["ip", "link", "set", &host, "up"]);
            let net = k + 1;
            for a in [2, 3] {
                run(&[
                    "ip",
                    "-n",
                    &ns,
                    "addr",
                    "add",
                    &format!("10.{net}.0.{a}/24"),
                    "dev",
                    "v",
                ]);
            }
            run(&["ip", "-n", &ns, "link", "set", "v", "up"]);
            run(&[
                "ip",
                "-n",
                &ns,
                "neigh",
                "add",
                &format!("10.{net}.0.1"),
                "lladdr",
                "02:00:00:00:00:01",
                "dev",
                "v",
                "nud",
                "permanent",
            ]);
        }
        w
    }

    /// `count` echo requests of 98 bytes on the wire from `10.{k+1}.0.{host}`.
    fn ping(&self, k: usize, host: u8, count: u32) {
        let src = format!("10.{}.0.{host}", k + 1);
        let dst = format!("10.{}.0.1", k + 1);
        // Nothing answers: ping exits 1; what counts is that it sent them all.
        let o = Command::new("ip")
            .args(["netns", "exec", &self.ns[k], "ping", "-q", "-n", "-c"])
            .arg(count.to_string())
            .args(["-i", "0.01", "-W", "1", "-I", &src, &dst])
            .output()
            .expect("ping");
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            text.contains(&format!("{count} packets transmitted")),
            "ping from {src}: {text}"
        );
    }
}

impl Drop for Wires {
    fn drop(&mut self) {
        for ns in &self.ns {
            // Deleting the namespace deletes its veth end and so the root end too.
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn ready() -> bool {
    wirecap_testkit::require_root() && wirecap_testkit::require_tools(&["ip", "ping", "tcpdump"])
}

/// The stored stream as pcap bytes.
fn pcap(s: &Server, stream: &str) -> Vec<u8> {
    s.ok(&format!("/pcap/single?StreamName={stream}")).body
}

/// Packets tcpdump prints for `filter`.
fn count(bytes: &[u8], filter: &str) -> usize {
    let f: Vec<&str> = filter.split(' ').collect();
    support::tcpdump(bytes, &f)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

/// (captured length, original length) of every record of a nanosecond pcap.
fn lengths(bytes: &[u8]) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let u = |o: usize| u32::from_le_bytes(bytes[at + o..at + o + 4].try_into().unwrap());
        let (cap, orig) = (u(8), u(12));
        out.push((cap, orig));
        at += 16 + cap as usize;
    }
    out
}

/// Waits until the running capture has stored at least `n` packets.
fn wait_captured(s: &Server, n: u64) {
    s.wait_for(&format!("{n} packets captured"), 20, || {
        let st = s.api("GET", "/api/v1/status?history=0", None, 200);
        (st["capture_packets"].as_u64().unwrap_or(0) >= n).then_some(())
    });
}

fn stream_of(s: &Server) -> String {
    let st = s.api("GET", "/api/v1/status?history=0", None, 200);
    st["capture"]["stream"]
        .as_str()
        .expect("a capture runs")
        .to_owned()
}

#[test]
fn the_capture_interface_is_switched_live_and_the_capture_continues_on_it() {
    if !ready() {
        return;
    }
    let w = Wires::new('s');
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--interface", &w.ifs[0]]);
    s.api(
        "POST",
        "/api/v1/capture/start",
        Some(r#"{"name": "sw"}"#),
        200,
    );
    let first = stream_of(&s);
    w.ping(0, 2, 30);
    wait_captured(&s, 30);

    let r = s.api(
        "PUT",
        "/api/v1/ui/capture/interface",
        Some(&format!(r#"{{"interface": "{}"}}"#, w.ifs[1])),
        200,
    );
    let msg = r["message"].as_str().unwrap_or_default().to_owned();
    assert!(msg.contains("continues as"), "{r}");
    let st = s.api("GET", "/api/v1/status?history=0", None, 200);
    assert_eq!(st["source"], format!("interface {}", w.ifs[1]), "{st}");
    assert_eq!(st["capture"]["active"], true, "{st}");
    assert_eq!(st["capture"]["name"], "sw", "{st}");
    let second = stream_of(&s);
    assert_ne!(first, second);
    assert!(msg.contains(&second), "{msg} names {second}");
    // The link state follows the new interface (up; sysfs is read once a second).
    s.wait_for("the new interface's link up", 10, || {
        let st = s.api("GET", "/api/v1/status?history=0", None, 200);
        (st["link"]["up"] == true).then_some(())
    });
    let ifs = s.api("GET", "/api/v1/ui/interfaces", None, 200);
    assert_eq!(ifs["capture_interface"], w.ifs[1].as_str());
    assert_eq!(
        ifs["configured_interface"],
        w.ifs[1].as_str(),
        "kept in wirecap.toml"
    );
    // The old interface is no longer captured, the new one is.
    w.ping(0, 2, 20);
    w.ping(1, 2, 40);
    wait_captured(&s, 40);
    std::thread::sleep(Duration::from_millis(300));
    s.api("POST", "/api/v1/capture/stop", Some("{}"), 200);

    let a = pcap(&s, &first);
    let b = pcap(&s, &second);
    assert_eq!(count(&a, "icmp and src host 10.1.0.2"), 30, "first stream");
    assert_eq!(count(&a, "src net 10.2.0.0/16"), 0, "first stream");
    assert_eq!(count(&b, "icmp and src host 10.2.0.2"), 40, "second stream");
    assert_eq!(count(&b, "src net 10.1.0.0/16"), 0, "second stream");
    // The sealed first stream says where it came from.
    let meta = s.api("GET", &format!("/api/v1/streams/{first}"), None, 200);
    assert!(
        meta.to_string().contains(&w.ifs[0]),
        "first stream's source: {meta}"
    );
    // A name that is no interface is refused and changes nothing.
    let bad = s.admin(
        "PUT",
        "/api/v1/ui/capture/interface",
        Some(r#"{"interface": "nosuch0"}"#),
    );
    assert_eq!(bad.code, 400, "{}", bad.text());
}

#[test]
fn capture_settings_filter_in_the_socket_slice_and_change_live() {
    if !ready() {
        return;
    }
    let w = Wires::new('f');
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        &[
            "--interface",
            &w.ifs[0],
            "--bpf",
            "icmp and src host 10.1.0.2",
            "--snaplen",
            "64",
            "--threads",
            "2",
        ],
    );
    let st = s.api("GET", "/api/v1/status?history=0", None, 200);
    let cs = &st["capture_settings"];
    assert_eq!(cs["bpf"], "icmp and src host 10.1.0.2", "{cs}");
    assert_eq!(
        (cs["snaplen"].as_u64(), cs["threads"].as_u64()),
        (Some(64), Some(2)),
        "{cs}"
    );
    assert_eq!(cs["applies"], true, "{cs}");

    s.api(
        "POST",
        "/api/v1/capture/start",
        Some(r#"{"name": "flt"}"#),
        200,
    );
    let first = stream_of(&s);
    w.ping(0, 3, 15); // not matched: never copied
    w.ping(0, 2, 25);
    wait_captured(&s, 25);
    std::thread::sleep(Duration::from_millis(300));

    // Changed live: the capture is sealed and continues with the new settings.
    let r = s.api(
        "PUT",
        "/api/v1/capture/settings",
        Some(r#"{"bpf": "icmp and src host 10.1.0.3", "threads": 2}"#),
        200,
    );
    let second = r["restarted"].as_str().expect("restarted").to_owned();
    assert_eq!(r["settings"]["snaplen"], 262_144, "{r}");
    assert_eq!(stream_of(&s), second);
    w.ping(0, 2, 10);
    w.ping(0, 3, 12);
    wait_captured(&s, 12);
    std::thread::sleep(Duration::from_millis(300));
    s.api("POST", "/api/v1/capture/stop", Some("{}"), 200);

    let a = pcap(&s, &first);
    let la = lengths(&a);
    assert_eq!(la.len(), 25, "only what the filter passed: {la:?}");
    assert!(
        la.iter().all(|&(cap, orig)| cap == 64 && orig == 98),
        "sliced to 64, the wire length kept: {la:?}"
    );
    assert_eq!(count(&a, "src host 10.1.0.2"), 25);
    let b = pcap(&s, &second);
    let lb = lengths(&b);
    assert_eq!(lb.len(), 12, "{lb:?}");
    assert!(
        lb.iter().all(|&(cap, orig)| cap == 98 && orig == 98),
        "{lb:?}"
    );
    assert_eq!(count(&b, "src host 10.1.0.3"), 12);
    let meta = s.api("GET", &format!("/api/v1/streams/{first}"), None, 200);
    assert!(
        meta.to_string().contains("icmp and src host 10.1.0.2"),
        "the stream keeps its filter: {meta}"
    );
    // Kept in wirecap.toml.
    let toml = std::fs::read_to_string(dir.path().join("wirecap.toml")).unwrap();
    assert!(
        toml.contains("bpf = \"icmp and src host 10.1.0.3\""),
        "{toml}"
    );
}

#[test]
fn capture_settings_are_refused_with_the_key_named() {
    let dir = tempfile::tempdir().unwrap();
    // A wrong flag: the server does not start, and says which flag.
    let o = support::wirecap(&[
        "serve",
        "--data",
        dir.path().to_str().unwrap(),
        "--http",
        "127.0.0.1:0",
        "--synthetic",
        "10",
        "--bpf",
        "vlan 10 and udp",
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--bpf") && err.contains("VLAN"), "{err}");
    // A wrong key in the file names its line.
    let d2 = tempfile::tempdir().unwrap();
    std::fs::write(
        d2.path().join("wirecap.toml"),
        "[capture]\nsynthetic = 10\n\nsnaplen = 10\n",
    )
    .unwrap();
    let o = support::wirecap(&[
        "serve",
        "--data",
        d2.path().to_str().unwrap(),
        "--http",
        "127.0.0.1:0",
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("line 4, [capture] snaplen"), "{err}");
    // The API: refused with the field, nothing changed.
    let s = Server::builder(dir.path()).synthetic(10).start();
    for (body, field) in [
        (r#"{"bpf": "tcp prt 80"}"#, "bpf"),
        (r#"{"snaplen": 10}"#, "snaplen"),
        (r#"{"threads": 0}"#, "threads"),
        (r#"{"fanout": "rr"}"#, "fanout"),
        (r#"{"block_kib": 5}"#, "block_kib"),
    ] {
        let r = s.admin("PUT", "/api/v1/capture/settings", Some(body));
        assert_eq!(r.code, 400, "{body}: {}", r.text());
        assert_eq!(r.json()["field"], field, "{body}: {}", r.text());
    }
    let r = s.api(
        "PUT",
        "/api/v1/capture/settings",
        Some(r#"{"bpf": "udp", "snaplen": 200}"#),
        200,
    );
    assert_eq!(r["settings"]["applies"], false, "synthetic: {r}");
    assert!(r["message"].as_str().unwrap().contains("Saved"), "{r}");
    let st = s.api("GET", "/api/v1/capture/settings", None, 200);
    assert_eq!(
        (st["bpf"].as_str(), st["snaplen"].as_u64()),
        (Some("udp"), Some(200))
    );
}

/// `HH:MM` of now + `mins` (UTC).
fn clock(mins: i64) -> String {
    let t = jiff::Timestamp::now() + jiff::SignedDuration::from_mins(mins);
    t.to_zoned(jiff::tz::TimeZone::UTC)
        .strftime("%H:%M")
        .to_string()
}

#[test]
fn a_scheduled_capture_follows_a_live_interface_switch() {
    if !ready() {
        return;
    }
    let w = Wires::new('c');
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--interface", &w.ifs[0]]);
    // A daily window open now: the scheduler starts its capture within a second or two.
    let body = format!(
        r#"{{"name": "day", "days": ["daily"], "start": "{}", "stop": "{}"}}"#,
        clock(-1),
        clock(10)
    );
    s.api("POST", "/api/v1/schedules", Some(&body), 201);
    let first = s.wait_for("the scheduled capture to start", 20, || {
        let v = s.api("GET", "/api/v1/schedules/day", None, 200);
        v["current_stream"].as_str().map(str::to_owned)
    });
    let r = s.api(
        "PUT",
        "/api/v1/ui/capture/interface",
        Some(&format!(r#"{{"interface": "{}"}}"#, w.ifs[1])),
        200,
    );
    let second = stream_of(&s);
    assert_ne!(first, second, "{r}");
    // Still the schedule's capture, in its new stream: not "stopped by hand".
    let v = s.wait_for("the schedule to follow its capture", 10, || {
        let v = s.api("GET", "/api/v1/schedules/day", None, 200);
        (v["current_stream"] == second.as_str()).then_some(v)
    });
    assert_eq!(v["active"], true, "{v}");
    assert!(v["suspended_until"].is_null(), "{v}");
    assert!(
        v["last_event"]["text"]
            .as_str()
            .is_some_and(|t| t.contains("continues as")),
        "{v}"
    );
    // Removing the schedule stops the capture it owns, the new one.
    let d = s.admin("DELETE", "/api/v1/schedules/day", None);
    assert_eq!(d.code, 204, "{}", d.text());
    let st = s.api("GET", "/api/v1/status?history=0", None, 200);
    assert_eq!(st["capture"]["active"], false, "{st}");
}
