//! End-to-end tests of the inline forwarder ("bump in the wire"), root only: without it
//! they record a skip, and fail under CI.
//!
//! Each test builds its own four network namespaces: hosts `a` (10.9.0.2) and `b`
//! (10.9.0.3), the appliance `app` whose `eth0` has no address, and `br` holding the
//! bridge that joins the three (the root namespace's interfaces are never touched). The
//! real `wirecap serve` runs inside `app` with `--inline 10.9.0.1/24 --forward
//! 10.9.0.2=10.9.0.3`; HTTP goes to it with curl inside `app`. Traffic only flows between
//! the test's namespaces, every traffic command is bounded in count and time, and a guard
//! deletes the namespaces and stops every process, also when a test panics.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

mod support;
use support::run;

const BIN: &str = env!("CARGO_BIN_EXE_wirecap");
const PW: &str = "fwd-Pa55word";
const CAPTURE_IP: &str = "10.9.0.1";
const A: &str = "10.9.0.2";
const B: &str = "10.9.0.3";

macro_rules! need_root {
    () => {
        if !(wirecap_testkit::require_root()
            && wirecap_testkit::require_tools(&[
                "ip", "ping", "tcpdump", "tshark", "curl", "python3",
            ]))
        {
            return;
        }
    };
}

fn wait_until(limit: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    ok()
}

/// The four namespaces, the appliance and helper processes; all removed on drop.
struct Net {
    prefix: String,
    dir: tempfile::TempDir,
    children: Vec<Child>,
    serve: Option<Child>,
}

impl Net {
    fn new(tag: &str) -> Self {
        let prefix = format!("wf{}{tag}", std::process::id());
        let n = Self {
            prefix,
            dir: tempfile::tempdir().expect("tempdir"),
            children: Vec::new(),
            serve: None,
        };
        for ns in ["br", "a", "app", "b"] {
            run(&["ip", "netns", "add", &n.ns(ns)]);
            run(&[
                "ip",
                "netns",
                "exec",
                &n.ns(ns),
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ]);
            run(&["ip", "-n", &n.ns(ns), "link", "set", "lo", "up"]);
        }
        let br = n.ns("br");
        run(&["ip", "-n", &br, "link", "add", "br0", "type", "bridge"]);
        run(&["ip", "-n", &br, "link", "set", "br0", "up"]);
        for host in ["a", "app", "b"] {
            let port = format!("p{host}");
            run(&[
                "ip",
                "link",
                "add",
                "eth0",
                "netns",
                &n.ns(host),
                "type",
                "veth",
                "peer",
                "name",
                &port,
                "netns",
                &br,
            ]);
            run(&["ip", "-n", &br, "link", "set", &port, "master", "br0", "up"]);
            run(&["ip", "-n", &n.ns(host), "link", "set", "eth0", "up"]);
        }
        run(&[
            "ip",
            "-n",
            &n.ns("a"),
            "addr",
            "add",
            &format!("{A}/24"),
            "dev",
            "eth0",
        ]);
        run(&[
            "ip",
            "-n",
            &n.ns("b"),
            "addr",
            "add",
            &format!("{B}/24"),
            "dev",
            "eth0",
        ]);
        n
    }

    fn ns(&self, host: &str) -> String {
        format!("{}-{host}", self.prefix)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn data(&self) -> PathBuf {
        self.path("data")
    }

    /// `cmd` inside namespace `host`.
    fn exec(&self, host: &str, cmd: &[&str]) -> Output {
        let mut args = vec!["ip", "netns", "exec"];
        let ns = self.ns(host);
        args.push(&ns);
        args.extend_from_slice(cmd);
        Command::new(args[0])
            .args(&args[1..])
            .output()
            .expect("ip netns exec")
    }

    /// Starts `cmd` inside `host` in the background (stopped when the test ends).
    fn spawn(&mut self, host: &str, cmd: &[&str], log: &str) -> usize {
        let out = std::fs::File::create(self.path(log)).expect("log");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(host)])
            .args(cmd)
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("spawn");
        self.children.push(child);
        self.children.len() - 1
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }

    /// Starts `wirecap serve` in the appliance namespace and waits until it answers.
    fn serve(&mut self, mode: &str) {
        self.serve_with("10.9.0.1/24", &[&format!("{A}={B}")], mode);
    }

    /// `wirecap serve` on the appliance's eth0 without forwarding (turned on live later).
    fn serve_plain(&mut self) {
        self.spawn_serve(&[]);
    }

    /// `wirecap serve --interface eth0 ARGS…` in the appliance namespace, answering.
    fn spawn_serve(&mut self, args: &[&str]) {
        let out = std::fs::File::create(self.path("serve.log")).expect("log");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns("app"), BIN, "serve", "--data"])
            .arg(self.data())
            .args(["--http", "127.0.0.1:8080", "--interface", "eth0"])
            .args(args)
            .env("WIRECAP_ADMIN_PASSWORD", PW)
            .env_remove("RUST_LOG")
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("start wirecap serve");
        self.serve = Some(child);
        let up = wait_until(Duration::from_secs(30), || {
            self.curl(&[
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "http://127.0.0.1:8080/api/v1/forward",
            ])
            .0 == "200"
        });
        assert!(
            up,
            "wirecap serve did not answer:\n{}",
            self.log("serve.log")
        );
    }

    /// [`Self::serve`] with another capture address and other pairs.
    fn serve_with(&mut self, inline: &str, pairs: &[&str], mode: &str) {
        let mut args = vec!["--inline", inline, "--capture-mode", mode];
        args.extend(pairs.iter().flat_map(|p| ["--forward", *p]));
        self.spawn_serve(&args);
        // Both peers resolved: the forwarder asks at start, the hosts answer at once.
        let resolved = wait_until(Duration::from_secs(10), || {
            let f = self.forward();
            f["neighbours"]
                .as_array()
                .is_some_and(|n| n.iter().all(|x| x["mac"].is_string()))
        });
        assert!(resolved, "peers not resolved: {}", self.forward());
    }

    /// curl inside the appliance namespace: (body, exit ok).
    fn curl(&self, args: &[&str]) -> (String, bool) {
        let mut a = vec!["curl", "-s", "-m", "10", "-u"];
        let cred = format!("admin:{PW}");
        a.push(&cred);
        a.extend_from_slice(args);
        let o = self.exec("app", &a);
        (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            o.status.success(),
        )
    }

    fn get(&self, path: &str) -> String {
        let (body, ok) = self.curl(&[&format!("http://127.0.0.1:8080{path}")]);
        assert!(ok, "GET {path} failed:\n{}", self.log("serve.log"));
        body
    }

    fn json(&self, path: &str) -> serde_json::Value {
        let b = self.get(path);
        serde_json::from_str(&b).unwrap_or_else(|e| panic!("{path}: {e}: {b}"))
    }

    fn forward(&self) -> serde_json::Value {
        self.json("/api/v1/forward")
    }

    fn put_forward(&self, body: &str) -> serde_json::Value {
        let (b, ok) = self.curl(&[
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/json",
            "-d",
            body,
            "http://127.0.0.1:8080/api/v1/forward",
        ]);
        assert!(ok, "PUT failed");
        serde_json::from_str(&b).unwrap_or_else(|e| panic!("{e}: {b}"))
    }

    /// The forwarder has a CPU to itself (`--forward-cpu auto`, the default, on a machine
    /// with two or more): the last one wirecap may run on, and no other thread of the
    /// process (capture, writer, HTTP runtime) may run there.
    fn check_forwarder_cpu(&self) {
        let cpus = |list: &str| -> Vec<usize> {
            list.split(',')
                .filter(|p| !p.is_empty())
                .flat_map(|p| match p.split_once('-') {
                    Some((a, b)) => (a.parse().unwrap()..=b.parse().unwrap()).collect(),
                    None => vec![p.parse().unwrap()],
                })
                .collect()
        };
        let field = |status: &str, key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .map(|v| v.trim().to_owned())
                .unwrap_or_default()
        };
        let pid = self.serve.as_ref().expect("serve").id();
        // wirecap inherits this process's CPUs (its own main thread is moved off the
        // forwarder's).
        let mine = std::fs::read_to_string("/proc/self/status").unwrap();
        let allowed = cpus(&field(&mine, "Cpus_allowed_list:"));
        let f = self.forward();
        assert_eq!(f["cpu_setting"], "auto", "{f}");
        if allowed.len() < 2 {
            assert!(f["cpu"].is_null(), "one CPU: nothing to dedicate: {f}");
            eprintln!("forwarder CPU not checked: wirecap may run on one CPU only");
            return;
        }
        let cpu = *allowed.last().unwrap();
        assert_eq!(f["cpu"], cpu, "{f}");
        let mut seen = Vec::new();
        for t in std::fs::read_dir(format!("/proc/{pid}/task"))
            .unwrap()
            .flatten()
        {
            let status = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
            let (name, list) = (
                field(&status, "Name:"),
                cpus(&field(&status, "Cpus_allowed_list:")),
            );
            if name == "wc-forward" {
                assert_eq!(list, [cpu], "the forwarder thread");
            } else if !list.is_empty() {
                assert!(
                    !list.contains(&cpu),
                    "{name} may run on the forwarder's CPU {cpu}: {list:?}"
                );
            }
            seen.push(name);
        }
        for t in ["wc-forward", "wc-capture-0", "wc-writer"] {
            assert!(seen.iter().any(|s| s == t), "no thread {t} in {seen:?}");
        }
    }

    fn start_capture(&self, name: &str) {
        let b = self.get(&format!("/sysmaster/capture_start?StreamName={name}"));
        assert!(b.contains("\"Status\":true"), "{b}");
    }

    /// Stops the capture; returns the stored stream name.
    fn stop_capture(&self) -> String {
        let s = self.json("/api/v1/status");
        let name = s["capture"]["stream"]
            .as_str()
            .expect("a stream")
            .to_owned();
        let b = self.get("/sysmaster/capture_stop");
        assert!(b.contains("\"Status\":true"), "{b}");
        name
    }

    /// The stored stream as a pcap file.
    fn export(&self, stream: &str) -> PathBuf {
        let out = self.path(&format!("{stream}.pcap"));
        let o = Command::new(BIN)
            .args(["export", "--data"])
            .arg(self.data())
            .arg(stream)
            .arg("-o")
            .arg(&out)
            .output()
            .expect("wirecap export");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        out
    }

    fn ping(&self, args: &[&str]) -> String {
        let mut a = vec!["timeout", "60", "ping"];
        a.extend_from_slice(args);
        let o = self.exec("a", &a);
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// The forwarded count once it stopped moving (the status is published every 100 ms).
    fn settled_forwarded(&self) -> u64 {
        let mut last = self.counter(&["forwarded_packets"]);
        for _ in 0..50 {
            std::thread::sleep(Duration::from_millis(300));
            let now = self.counter(&["forwarded_packets"]);
            if now == last {
                return now;
            }
            last = now;
        }
        last
    }

    fn counter(&self, path: &[&str]) -> u64 {
        let mut v = self.forward()["counters"].clone();
        for p in path {
            v = v[*p].clone();
        }
        v.as_u64().unwrap_or_else(|| panic!("counter {path:?}"))
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        if let Some(mut s) = self.serve.take() {
            // SIGTERM first so the capture is sealed; then make sure.
            let _ = Command::new("kill")
                .args(["-TERM", &s.id().to_string()])
                .status();
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(10) {
                if s.try_wait().ok().flatten().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = s.kill();
            let _ = s.wait();
        }
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in ["a", "app", "b", "br", "r"] {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(ns)])
                .status();
        }
    }
}

/// `ping` output: how many replies came back.
fn received(ping_out: &str) -> u64 {
    ping_out
        .lines()
        .find_map(|l| {
            let (_, rest) = l.split_once("transmitted, ")?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or(0)
}

/// One packet as tshark reads it, checksums verified.
#[derive(Debug)]
struct Pkt {
    src: String,
    dst: String,
    proto: String,
    /// Every checksum tshark checked was good (IPv4 header and ICMP/TCP/UDP).
    checksums_good: bool,
}

fn tshark(file: &Path) -> Vec<Pkt> {
    let o = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args([
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "tcp.check_checksum:TRUE",
            "-o",
            "udp.check_checksum:TRUE",
            "-T",
            "fields",
            "-e",
            "ip.src",
            "-e",
            "ip.dst",
            "-e",
            "ip.proto",
            "-e",
            "ip.checksum.status",
            "-e",
            "icmp.checksum.status",
            "-e",
            "tcp.checksum.status",
            "-e",
            "udp.checksum.status",
        ])
        .output()
        .expect("tshark");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let l4 = [f.get(4), f.get(5), f.get(6)];
            // Status 1 is Good; the IPv4 one is always there, exactly one L4 one.
            let checksums_good = f.get(3) == Some(&"1")
                && l4
                    .iter()
                    .filter(|s| s.is_some_and(|s| !s.is_empty()))
                    .count()
                    == 1
                && l4
                    .iter()
                    .all(|s| s.is_none_or(|s| s.is_empty() || *s == "1"));
            Pkt {
                src: f.first().unwrap_or(&"").to_string(),
                dst: f.get(1).unwrap_or(&"").to_string(),
                proto: f.get(2).unwrap_or(&"").to_string(),
                checksums_good,
            }
        })
        .collect()
}

#[test]
fn ping_reaches_b_and_a_tcp_transfer_arrives_intact() {
    need_root!();
    let mut n = Net::new("p");
    n.serve("inline");
    // A tcpdump in B sees the echo requests coming from the capture IP.
    let pcap_b = n.path("b.pcap");
    let p = pcap_b.to_string_lossy().into_owned();
    n.spawn(
        "b",
        &[
            "timeout",
            "30",
            "tcpdump",
            "-i",
            "eth0",
            "-nn",
            "-U",
            "-c",
            "5",
            "-w",
            &p,
            "icmp[icmptype] == 8",
        ],
        "tcpdump.log",
    );
    assert!(
        wait_until(Duration::from_secs(10), || n
            .log("tcpdump.log")
            .contains("listening on")),
        "tcpdump did not start: {}",
        n.log("tcpdump.log")
    );
    let out = n.ping(&["-c", "5", "-i", "0.2", "-W", "2", CAPTURE_IP]);
    assert_eq!(received(&out), 5, "{out}");
    assert!(out.contains(&format!("from {CAPTURE_IP}")), "{out}");
    let tcpdump = n.children.pop().map(|mut c| {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) && c.try_wait().ok().flatten().is_none() {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        c.wait()
    });
    assert!(tcpdump.is_some());
    let seen = tshark(&pcap_b);
    assert_eq!(seen.len(), 5, "{seen:?}");
    for s in &seen {
        assert_eq!((s.src.as_str(), s.dst.as_str()), (CAPTURE_IP, B));
        assert!(s.checksums_good, "{s:?}");
    }
    assert_eq!(n.counter(&["a_to_b", "packets"]), 5);
    assert_eq!(n.counter(&["b_to_a", "packets"]), 5);

    // TCP: curl from A against a small HTTP server in B, through the capture IP.
    let www = n.path("www");
    std::fs::create_dir_all(&www).unwrap();
    let blob: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(www.join("blob"), &blob).unwrap();
    let www_s = www.to_string_lossy().into_owned();
    n.spawn(
        "b",
        &[
            "timeout",
            "60",
            "python3",
            "-m",
            "http.server",
            "8000",
            "--bind",
            B,
            "--directory",
            &www_s,
        ],
        "http.log",
    );
    assert!(
        wait_until(Duration::from_secs(15), || n
            .exec(
                "b",
                &[
                    "curl",
                    "-s",
                    "-m",
                    "2",
                    "-o",
                    "/dev/null",
                    &format!("http://{B}:8000/")
                ]
            )
            .status
            .success()),
        "http server in B did not start: {}",
        n.log("http.log")
    );
    let got = n.path("got");
    let got_s = got.to_string_lossy().into_owned();
    let before = n.settled_forwarded();
    n.start_capture("tcp");
    n.check_forwarder_cpu();
    let o = n.exec(
        "a",
        &[
            "curl",
            "-s",
            "-m",
            "30",
            "-o",
            &got_s,
            &format!("http://{CAPTURE_IP}:8000/blob"),
        ],
    );
    assert!(
        o.status.success(),
        "curl through the forwarder failed: {o:?}"
    );
    let sha = |p: &Path| {
        let o = run(&["sha256sum", p.to_str().unwrap()]);
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_owned()
    };
    assert_eq!(sha(&got), sha(&www.join("blob")));
    // The capture holds the transfer as the wire carried it (super-packets the kernel
    // segments are recorded as their segments): A <-> B, valid checksums, none over the MTU.
    let forwarded = n.settled_forwarded() - before;
    assert!(wait_until(Duration::from_secs(10), || n
        .json("/api/v1/status")["packets_received"]
        .as_u64()
        .unwrap_or(0)
        >= forwarded));
    let stream = n.stop_capture();
    let file = n.export(&stream);
    let pkts = tshark(&file);
    assert_eq!(pkts.len() as u64, forwarded);
    assert!(
        pkts.len() > 2000,
        "3 MB in 1500-byte segments: {}",
        pkts.len()
    );
    for p in &pkts {
        assert!(p.checksums_good, "{p:?}");
        assert!(
            (p.src.as_str(), p.dst.as_str()) == (A, B)
                || (p.src.as_str(), p.dst.as_str()) == (B, A),
            "{p:?}"
        );
    }
    let o = run(&[
        "tshark",
        "-r",
        file.to_str().unwrap(),
        "-Y",
        "frame.len > 1514",
        "-T",
        "fields",
        "-e",
        "frame.number",
    ]);
    assert!(
        o.stdout.is_empty(),
        "frames over the MTU: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let f = n.forward();
    // Frames for other MACs the bridge floods while it learns reach the veth and count as
    // `not_for_us`; nothing else may be dropped.
    let drops = f["counters"]["drops"].as_object().unwrap();
    for (reason, v) in drops {
        if reason != "not_for_us" {
            assert_eq!(v, 0, "{reason}: {f}");
        }
    }
    assert!(
        f["offloads"].as_array().is_some_and(|o| !o.is_empty()),
        "offload handling reported: {f}"
    );
}

#[test]
fn each_capture_mode_records_the_expected_packets() {
    need_root!();
    let mut n = Net::new("m");
    n.serve("ingress");
    // A UDP listener in B, so the datagram gets no ICMP error back.
    n.spawn(
        "b",
        &["timeout", "120", "python3", "-c", &format!(
            "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(('{B}', 9999))\nwhile True: s.recvfrom(100)"
        )],
        "udp.log",
    );
    assert!(wait_until(Duration::from_secs(10), || {
        let o = n.exec("b", &["ss", "-uln"]);
        String::from_utf8_lossy(&o.stdout).contains(":9999")
    }));
    for mode in ["ingress", "egress", "inline", "both"] {
        let f = n.put_forward(&format!("{{\"capture_mode\": \"{mode}\"}}"));
        assert_eq!(f["capture_mode"], mode, "{f}");
        let before = n.settled_forwarded();
        n.start_capture(&format!("mode_{mode}"));
        // The mode cannot change under a running capture.
        let (b, _) = n.curl(&[
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/json",
            "-d",
            "{\"capture_mode\": \"ingress\"}",
            "-w",
            "%{http_code}",
            "http://127.0.0.1:8080/api/v1/forward",
        ]);
        if mode != "ingress" {
            assert!(b.ends_with("409"), "{b}");
        }
        let out = n.ping(&["-c", "3", "-i", "0.2", "-W", "2", CAPTURE_IP]);
        assert_eq!(received(&out), 3, "{out}");
        // And one UDP datagram (its checksum is partial on the veth: completed).
        n.exec("a", &["python3", "-c", &format!(
            "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'hello', ('{CAPTURE_IP}', 9999))"
        )]);
        let k = if mode == "both" { 2 } else { 1 };
        assert!(
            wait_until(Duration::from_secs(5), || n.counter(&["forwarded_packets"])
                - before
                >= 7),
            "3 requests, 3 replies, 1 datagram: {}",
            n.forward()
        );
        let forwarded = n.settled_forwarded() - before;
        assert_eq!(forwarded, 7, "3 requests, 3 replies, 1 datagram");
        // The capture sees what the forwarder forwarded, once it reached the store.
        assert!(wait_until(Duration::from_secs(5), || {
            n.json("/api/v1/status")["packets_received"]
                .as_u64()
                .unwrap_or(0)
                >= forwarded * k
        }));
        let stream = n.stop_capture();
        let meta = n.json(&format!("/api/v1/streams/{stream}"));
        assert_eq!(meta["capture_mode"], mode, "{meta}");
        let pkts = tshark(&n.export(&stream));
        let want = if mode == "both" { 14 } else { 7 };
        assert_eq!(pkts.len(), want, "{mode}: {pkts:?}");
        assert!(pkts.iter().all(|p| p.checksums_good), "{mode}: {pkts:?}");
        let pairs: Vec<(&str, &str)> = pkts
            .iter()
            .map(|p| (p.src.as_str(), p.dst.as_str()))
            .collect();
        let count = |s: &str, d: &str| pairs.iter().filter(|p| **p == (s, d)).count();
        let udp = pkts.iter().filter(|p| p.proto == "17").count();
        match mode {
            "ingress" => {
                assert_eq!(
                    (count(A, CAPTURE_IP), count(B, CAPTURE_IP)),
                    (4, 3),
                    "{pairs:?}"
                );
                assert_eq!(udp, 1);
            }
            "egress" => {
                assert_eq!(
                    (count(CAPTURE_IP, B), count(CAPTURE_IP, A)),
                    (4, 3),
                    "{pairs:?}"
                )
            }
            "inline" => assert_eq!((count(A, B), count(B, A)), (4, 3), "{pairs:?}"),
            _ => {
                assert_eq!(
                    (
                        count(A, CAPTURE_IP),
                        count(CAPTURE_IP, B),
                        count(B, CAPTURE_IP),
                        count(CAPTURE_IP, A)
                    ),
                    (4, 4, 3, 3),
                    "{pairs:?}"
                );
                // Each ingress record is followed by its egress record.
                for w in pairs.chunks(2) {
                    assert_ne!(w[0].0, CAPTURE_IP, "{pairs:?}");
                    assert_eq!(w[1].0, CAPTURE_IP, "{pairs:?}");
                }
            }
        }
    }
    // The last change is kept in wirecap.toml.
    let toml = std::fs::read_to_string(n.data().join("wirecap.toml")).unwrap();
    assert!(toml.contains("capture_mode = \"both\""), "{toml}");
}

#[test]
fn unknown_peers_are_dropped_and_counted_fragments_forwarded_and_ttl_1_answered() {
    need_root!();
    let mut n = Net::new("d");
    n.serve("inline");
    // A second address on A that is in no pair.
    run(&[
        "ip",
        "-n",
        &n.ns("a"),
        "addr",
        "add",
        "10.9.0.9/24",
        "dev",
        "eth0",
    ]);
    let out = n.ping(&[
        "-c", "2", "-i", "0.2", "-W", "1", "-I", "10.9.0.9", CAPTURE_IP,
    ]);
    assert_eq!(received(&out), 0, "{out}");
    assert_eq!(n.counter(&["drops", "unknown_peer"]), 2);
    assert_eq!(n.counter(&["forwarded_packets"]), 0);
    // 3000 bytes of ICMP data in a 1500-byte MTU: three fragments per echo request and
    // per reply, each forwarded on its own, reassembled by B and by A.
    let out = n.ping(&[
        "-c", "2", "-i", "0.2", "-W", "2", "-s", "3000", "-M", "dont", CAPTURE_IP,
    ]);
    assert_eq!(received(&out), 2, "{out}");
    assert_eq!(n.settled_forwarded(), 12);
    let m = n.get("/metrics");
    assert!(
        m.contains("wirecap_forward_dropped{reason=\"unknown_peer\"} 2"),
        "{m}"
    );
    // TTL 1 ends here: the real ping hears "Time to live exceeded" from the capture
    // address, as traceroute needs, and nothing reaches B.
    let before = n.settled_forwarded();
    let o = n.exec(
        "a",
        &[
            "timeout", "30", "ping", "-n", "-c", "1", "-W", "2", "-t", "1", CAPTURE_IP,
        ],
    );
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        out.contains(&format!("From {CAPTURE_IP}")) && out.contains("Time to live exceeded"),
        "{out}\n{}",
        n.forward()
    );
    // The counters are published every 100 ms: wait for them, then compare exactly.
    assert!(
        wait_until(Duration::from_secs(5), || n.counter(&["icmp_errors_sent"])
            >= 1),
        "{}",
        n.forward()
    );
    assert_eq!(n.counter(&["icmp_errors_sent"]), 1);
    assert_eq!(n.counter(&["drops", "ttl_expired"]), 1);
    assert_eq!(n.settled_forwarded(), before);
}

#[test]
fn smoke_test_ping_then_bounded_flood_is_fully_accounted() {
    need_root!();
    let mut n = Net::new("s");
    n.serve("inline");
    // Step 1: ping routes.
    let out = n.ping(&["-c", "5", "-i", "0.2", "-W", "2", CAPTURE_IP]);
    assert_eq!(received(&out), 5, "{out}");
    // Steps 2-3: capture running, a bounded flood.
    // Counted before the capture starts: the status lags the forwarder by up to 100 ms.
    let before = n.settled_forwarded();
    n.start_capture("smoke");
    let out = n.ping(&["-f", "-c", "2000", "-W", "1", CAPTURE_IP]);
    let replies = received(&out);
    assert!(replies > 0, "{out}");
    let forwarded = n.settled_forwarded() - before;
    assert!(
        wait_until(
            Duration::from_secs(10),
            || n.json("/api/v1/status")["packets_received"]
                .as_u64()
                .unwrap_or(0)
                >= forwarded
        ),
        "capture did not catch up with {forwarded}: {} {}",
        n.json("/api/v1/status"),
        n.forward()
    );
    let stream = n.stop_capture();
    // Step 4: the status adds up, in the manual's format.
    let text = n.get("/sysmaster/status");
    let val = |k: &str| -> u64 {
        text.lines()
            .find_map(|l| {
                let (key, v) = l.split_once(',')?;
                (key.trim() == k).then(|| v.trim().parse().ok())?
            })
            .unwrap_or_else(|| panic!("{k} in {text}"))
    };
    let (rx, cap, drop) = (
        val("packets_received"),
        val("packets_captured"),
        val("packets_dropped"),
    );
    // received is captured + dropped by definition: each is checked against what was
    // sent instead. The forwarder passed every request ping sent and every reply B
    // returned; the capture stored one record for each, and dropped none.
    let sent = transmitted(&out);
    assert_eq!(sent, 2000, "{out}");
    assert_eq!(drop, 0, "{text}");
    assert_eq!(
        (rx, cap),
        (forwarded, forwarded),
        "one inline record per forwarded packet: {text}"
    );
    let file = n.export(&stream);
    let requests = tshark_count(&file, &format!("icmp.type == 8 && ip.src == {A}"));
    let answers = tshark_count(&file, &format!("icmp.type == 0 && ip.dst == {A}"));
    assert_eq!(requests, sent, "every echo request ping sent is stored");
    assert_eq!(requests + answers, cap, "the stream holds what was counted");
    assert!(
        replies <= answers && answers <= requests,
        "ping got {replies} of the {answers} replies stored"
    );
}

/// `ping` output: how many requests it sent.
fn transmitted(ping_out: &str) -> u64 {
    ping_out
        .lines()
        .find_map(|l| l.split_once(" packets transmitted")?.0.parse().ok())
        .unwrap_or_else(|| panic!("no summary in {ping_out}"))
}

/// How many packets of `file` tshark's display filter keeps.
fn tshark_count(file: &Path, filter: &str) -> u64 {
    let o = run(&[
        "tshark",
        "-n",
        "-r",
        file.to_str().unwrap(),
        "-Y",
        filter,
        "-T",
        "fields",
        "-e",
        "frame.number",
    ]);
    String::from_utf8_lossy(&o.stdout).lines().count() as u64
}

#[test]
fn serve_refuses_an_interface_that_owns_the_capture_ip() {
    need_root!();
    let n = Net::new("k");
    // The kernel would answer ARP for it and take the packets: the forwarder says so.
    run(&[
        "ip",
        "-n",
        &n.ns("app"),
        "addr",
        "add",
        "10.9.0.1/24",
        "dev",
        "eth0",
    ]);
    let data = n.data();
    let o = n.exec(
        "app",
        &[
            "timeout",
            "30",
            BIN,
            "serve",
            "--data",
            data.to_str().unwrap(),
            "--http",
            "127.0.0.1:8080",
            "--interface",
            "eth0",
            "--inline",
            "10.9.0.1/24",
            "--forward",
            "10.9.0.2=10.9.0.3",
        ],
    );
    assert!(!o.status.success(), "serve started anyway");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("has 10.9.0.1 as a kernel address"), "{err}");
    // And a table that makes no sense is refused before anything starts.
    let o = n.exec(
        "app",
        &[
            "timeout",
            "30",
            BIN,
            "serve",
            "--data",
            data.to_str().unwrap(),
            "--http",
            "127.0.0.1:8080",
            "--interface",
            "eth0",
            "--inline",
            "10.9.0.1/24",
            "--forward",
            "10.9.0.2=10.9.0.2",
        ],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("more than once"), "{err}");
}

/// Whether `tcpdump -vv` said a checksum is wrong ("incorrect" for TCP, "[bad … cksum"
/// for UDP and IPv4, "wrong" for ICMP); not a hex checksum that spells "bad".
fn checksum_complaint(dump: &str) -> bool {
    dump.contains("incorrect") || dump.contains("[bad ") || dump.contains("wrong ")
}

/// A command line of owned strings, borrowed.
fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// `tcpdump -nn -vv -r FILE` of a stored stream: the oracle for what a capture recorded.
fn tcpdump_read(file: &Path, filter: &[&str]) -> String {
    let mut a = vec!["tcpdump", "-nn", "-vv", "-r", file.to_str().unwrap()];
    a.extend_from_slice(filter);
    String::from_utf8_lossy(&run(&a).stdout).into_owned()
}

#[test]
fn ipv6_ping_and_tcp_go_through_with_neighbour_discovery() {
    need_root!();
    let mut n = Net::new("6");
    for (host, addr) in [("a", "2001:db8::2/64"), ("b", "2001:db8::3/64")] {
        let ns = n.ns(host);
        run(&[
            "ip",
            "netns",
            "exec",
            &ns,
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.disable_ipv6=0",
            "net.ipv6.conf.eth0.disable_ipv6=0",
        ]);
        run(&["ip", "-n", &ns, "addr", "add", addr, "dev", "eth0", "nodad"]);
    }
    n.serve_with("2001:db8::1/64", &["2001:db8::2=2001:db8::3"], "inline");
    n.start_capture("v6");
    let out = n.ping(&["-6", "-c", "3", "-i", "0.2", "-W", "2", "2001:db8::1"]);
    assert_eq!(received(&out), 3, "{out}");

    let www = n.path("www");
    std::fs::create_dir_all(&www).unwrap();
    let blob: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(www.join("blob"), &blob).unwrap();
    let www_s = www.to_string_lossy().into_owned();
    n.spawn(
        "b",
        &[
            "timeout",
            "120",
            "python3",
            "-m",
            "http.server",
            "--bind",
            "2001:db8::3",
            "-d",
            &www_s,
            "8000",
        ],
        "http.log",
    );
    assert!(
        wait_until(Duration::from_secs(15), || n
            .exec(
                "b",
                &[
                    "curl",
                    "-s",
                    "-g",
                    "-o",
                    "/dev/null",
                    "http://[2001:db8::3]:8000/"
                ]
            )
            .status
            .success()),
        "http server in B did not start: {}",
        n.log("http.log")
    );
    let got = n.path("got");
    let o = n.exec(
        "a",
        &[
            "curl",
            "-s",
            "-g",
            "-m",
            "30",
            "-o",
            got.to_str().unwrap(),
            "http://[2001:db8::1]:8000/blob",
        ],
    );
    assert!(
        o.status.success(),
        "curl over IPv6 through the forwarder failed: {o:?}"
    );
    assert_eq!(std::fs::read(&got).unwrap(), blob);
    let forwarded = n.settled_forwarded();
    assert!(wait_until(Duration::from_secs(10), || n
        .json("/api/v1/status")["packets_received"]
        .as_u64()
        .unwrap_or(0)
        >= forwarded));
    let stream = n.stop_capture();
    let file = n.export(&stream);
    // Recorded inline: A <-> B only, checksums good (tcpdump -vv says "bad" otherwise).
    let all = tcpdump_read(&file, &["ip6"]);
    let lines: Vec<&str> = all.lines().filter(|l| l.contains(" > ")).collect();
    assert_eq!(lines.len() as u64, forwarded, "{all}");
    assert!(forwarded > 200, "{forwarded}");
    for l in &lines {
        assert!(
            l.contains("2001:db8::2") && l.contains("2001:db8::3") && !l.contains("2001:db8::1."),
            "{l}"
        );
    }
    assert!(!checksum_complaint(&all), "{all}");
    // Super-packets from the hosts' stacks went out (and were recorded) as segments.
    assert_eq!(tcpdump_read(&file, &["greater", "1515"]), "");
    let supers = n.counter(&["super_packets_passed"]) + n.counter(&["super_packets_segmented"]);
    assert!(supers > 0, "no IPv6 super-packet came: {}", n.forward());
    let echo = tcpdump_read(&file, &["icmp6"]);
    assert_eq!(echo.matches("echo request").count(), 3, "{echo}");
    assert_eq!(echo.matches("echo reply").count(), 3, "{echo}");
}

#[test]
fn pmtud_through_a_smaller_mtu_on_b_side_lets_a_tcp_upload_complete() {
    need_root!();
    // Each test's tag is its own: tests run in parallel, and the tag names the namespaces.
    let mut n = Net::new("u");
    // B moves behind router R, which answers ARP for it (proxy ARP) on the bridge and
    // reaches it by a route of MTU 1280: R sends "fragmentation needed" for A's full-size
    // segments, from its own address, quoting what the forwarder sent.
    let (br, r, b) = (n.ns("br"), n.ns("r"), n.ns("b"));
    run(&["ip", "netns", "add", &r]);
    run(&["ip", "-n", &r, "link", "set", "lo", "up"]);
    run(&["ip", "-n", &b, "link", "del", "eth0"]);
    run(&[
        "ip", "link", "add", "r0", "netns", &r, "type", "veth", "peer", "name", "pr", "netns", &br,
    ]);
    run(&["ip", "-n", &br, "link", "set", "pr", "master", "br0", "up"]);
    run(&[
        "ip", "link", "add", "r1", "netns", &r, "type", "veth", "peer", "name", "eth0", "netns", &b,
    ]);
    run(&["ip", "-n", &r, "addr", "add", "10.9.0.254/24", "dev", "r0"]);
    for l in ["r0", "r1"] {
        run(&["ip", "-n", &r, "link", "set", l, "up"]);
    }
    run(&[
        "ip",
        "netns",
        "exec",
        &r,
        "sysctl",
        "-qw",
        "net.ipv4.ip_forward=1",
        "net.ipv4.conf.r0.proxy_arp=1",
        "net.ipv4.conf.r1.proxy_arp=1",
        "net.ipv4.neigh.r0.proxy_delay=0",
        "net.ipv4.neigh.r1.proxy_delay=0",
    ]);
    run(&[
        "ip",
        "-n",
        &r,
        "route",
        "add",
        &format!("{B}/32"),
        "dev",
        "r1",
        "mtu",
        "1280",
    ]);
    run(&[
        "ip",
        "-n",
        &b,
        "addr",
        "add",
        &format!("{B}/24"),
        "dev",
        "eth0",
    ]);
    run(&["ip", "-n", &b, "link", "set", "eth0", "up"]);
    n.serve("inline");

    // B counts what it receives; A uploads 2 MB to the capture IP with full-size segments.
    let sink = "import socket,sys\n\
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
s.bind(('10.9.0.3', 9000)); s.listen(1); s.settimeout(60)\n\
c,_=s.accept(); c.settimeout(30); n=0\n\
while True:\n    d=c.recv(65536)\n    if not d: break\n    n+=len(d)\n\
c.sendall(str(n).encode()); c.close(); print(n, flush=True)\n";
    n.spawn("b", &["timeout", "90", "python3", "-c", sink], "sink.log");
    std::thread::sleep(Duration::from_millis(500));
    let upload = "import socket\n\
c=socket.create_connection(('10.9.0.1', 9000), timeout=30)\n\
c.sendall(bytes(2_000_000)); c.shutdown(socket.SHUT_WR)\n\
print(c.recv(100).decode(), flush=True)\n";
    let o = n.exec("a", &["timeout", "60", "python3", "-c", upload]);
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && said.trim() == "2000000",
        "the upload did not complete: {o:?}\nsink: {}\nforwarder: {}",
        n.log("sink.log"),
        n.forward()
    );
    // A learnt the smaller path MTU from R's error, which reached it rewritten.
    let route = n.exec("a", &["ip", "route", "get", CAPTURE_IP]);
    let route = String::from_utf8_lossy(&route.stdout);
    assert!(route.contains("mtu 1280"), "{route}");
}

#[test]
fn two_pairs_carry_traffic_at_once_each_recorded_between_its_own_peers() {
    need_root!();
    let mut n = Net::new("2");
    // The second pair, C=D, on second addresses of the same two hosts.
    let (c, d) = ("10.9.0.4", "10.9.0.5");
    for (host, addr) in [("a", c), ("b", d)] {
        let ns = n.ns(host);
        run(&[
            "ip",
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            "eth0",
        ]);
    }
    n.serve_with(
        "10.9.0.1/24",
        &[&format!("{A}={B}"), &format!("{c}={d}")],
        "inline",
    );
    n.start_capture("pairs");
    // Both pairs at once: two pings in parallel, bounded in count and time.
    let ns_a = n.ns("a");
    let spawn_ping = |from: &str, count: &str| {
        Command::new("ip")
            .args([
                "netns", "exec", &ns_a, "timeout", "30", "ping", "-c", count, "-i", "0.2",
            ])
            .args(["-W", "2", "-I", from, CAPTURE_IP])
            .output()
    };
    let (p1, p2) = std::thread::scope(|s| {
        let h1 = s.spawn(|| spawn_ping(A, "5"));
        let h2 = s.spawn(|| spawn_ping(c, "7"));
        (h1.join().unwrap(), h2.join().unwrap())
    });
    let (p1, p2) = (
        String::from_utf8_lossy(&p1.unwrap().stdout).into_owned(),
        String::from_utf8_lossy(&p2.unwrap().stdout).into_owned(),
    );
    assert_eq!((received(&p1), received(&p2)), (5, 7), "{p1}\n{p2}");
    let forwarded = n.settled_forwarded();
    assert_eq!(forwarded, 24);
    assert!(wait_until(Duration::from_secs(10), || n
        .json("/api/v1/status")["packets_received"]
        .as_u64()
        .unwrap_or(0)
        >= forwarded));
    let stream = n.stop_capture();
    let file = n.export(&stream);
    let dump = tcpdump_read(&file, &["icmp"]);
    let count = |s: &str| dump.lines().filter(|l| l.contains(s)).count();
    assert_eq!(count(&format!("{A} > {B}: ICMP echo request")), 5, "{dump}");
    assert_eq!(count(&format!("{B} > {A}: ICMP echo reply")), 5, "{dump}");
    assert_eq!(count(&format!("{c} > {d}: ICMP echo request")), 7, "{dump}");
    assert_eq!(count(&format!("{d} > {c}: ICMP echo reply")), 7, "{dump}");
    assert!(!dump.contains(CAPTURE_IP), "{dump}");
    assert!(!checksum_complaint(&dump), "{dump}");
}

#[test]
fn a_tagged_pair_is_forwarded_between_its_vlans_and_recorded_with_the_tags() {
    need_root!();
    let mut n = Net::new("v");
    // A on VLAN 100, B on VLAN 200: two small hosts on packet sockets that send tagged
    // frames and answer ARP and echo requests (no 802.1Q module needed); the hosts'
    // kernels keep no address. The appliance's kernel strips the outer tag on receive,
    // so this also runs the edge's stripped-tag path.
    for (host, addr) in [("a", A), ("b", B)] {
        run(&[
            "ip",
            "-n",
            &n.ns(host),
            "addr",
            "del",
            &format!("{addr}/24"),
            "dev",
            "eth0",
        ]);
    }
    let script = n.path("taghost.py");
    std::fs::write(&script, TAG_HOST).unwrap();
    let script = script.to_string_lossy().into_owned();
    let host = |ip: &str, vid: &str, role: &str, count: &str| -> Vec<String> {
        [
            "timeout", "60", "python3", &script, "eth0", ip, vid, role, count,
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let hb = host(B, "200", "b", "0");
    n.spawn("b", &args(&hb), "hb.log");
    let ha = host(A, "100", "b", "0");
    let responder = n.spawn("a", &args(&ha), "ha.log");
    n.serve_with("10.9.0.1/24", &[&format!("{A}={B}@vlan100:200")], "both");
    n.start_capture("vlan");
    let _ = n.children[responder].kill();
    let _ = n.children[responder].wait();
    let pa = host(A, "100", "a", "3");
    n.spawn("a", &args(&pa), "pa.log");
    assert!(
        wait_until(Duration::from_secs(30), || n
            .log("pa.log")
            .contains("replies")),
        "A's pings did not finish: {}",
        n.log("pa.log")
    );
    assert!(n.log("pa.log").contains("replies 3"), "{}", n.log("pa.log"));
    let forwarded = n.settled_forwarded();
    assert_eq!(forwarded, 6);
    assert!(wait_until(Duration::from_secs(10), || n
        .json("/api/v1/status")["packets_received"]
        .as_u64()
        .unwrap_or(0)
        >= 2 * forwarded));
    let stream = n.stop_capture();
    let file = n.export(&stream);
    let o = run(&[
        "tcpdump",
        "-nn",
        "-e",
        "-r",
        file.to_str().unwrap(),
        "vlan and icmp",
    ]);
    let dump = String::from_utf8_lossy(&o.stdout);
    let count = |vlan: &str, what: &str| {
        dump.lines()
            .filter(|l| l.contains(&format!("vlan {vlan},")) && l.contains(what))
            .count()
    };
    // Ingress on A's VLAN, egress on B's, and back.
    assert_eq!(
        count("100", &format!("{A} > {CAPTURE_IP}: ICMP echo request")),
        3,
        "{dump}"
    );
    assert_eq!(
        count("200", &format!("{CAPTURE_IP} > {B}: ICMP echo request")),
        3,
        "{dump}"
    );
    assert_eq!(
        count("200", &format!("{B} > {CAPTURE_IP}: ICMP echo reply")),
        3,
        "{dump}"
    );
    assert_eq!(
        count("100", &format!("{CAPTURE_IP} > {A}: ICMP echo reply")),
        3,
        "{dump}"
    );
}

/// A host on a packet socket that speaks through 802.1Q tags: answers ARP for its address
/// and (role `b`) echo requests; role `a` resolves the capture IP and sends COUNT echo
/// requests, one at a time, and prints how many replies came. Bounded by a 20 s deadline.
const TAG_HOST: &str = r#"import socket, struct, sys, time
ifc, myip, vid, role, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
cap = socket.inet_aton('10.9.0.1'); me = socket.inet_aton(myip)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3)); s.bind((ifc, 0)); s.settimeout(0.1)
mymac = s.getsockname()[4]
def csum(b):
    if len(b) % 2: b += b'\0'
    t = sum(struct.unpack('!%dH' % (len(b) // 2), b)); t = (t & 0xffff) + (t >> 16); t = (t & 0xffff) + (t >> 16)
    return (~t) & 0xffff
def send(dst, etype, payload):
    s.send(dst + mymac + struct.pack('!HHH', 0x8100, vid, etype) + payload)
def ip4(src, dst, proto, l4):
    h = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(l4), 1, 0x4000, 64, proto, 0, src, dst)
    return h[:10] + struct.pack('!H', csum(h)) + h[12:] + l4
def icmp(t, ident, seq, data):
    m = struct.pack('!BBHHH', t, 0, 0, ident, seq) + data
    return m[:2] + struct.pack('!H', csum(m)) + m[4:]
fwd_mac, sent, got, deadline = None, 0, 0, time.time() + 20
print('ready', flush=True)
while time.time() < deadline and (role == 'b' or got < count):
    if role == 'a' and fwd_mac is None and int(time.time() * 10) % 5 == 0:
        arp = struct.pack('!HHBBH6s4s6s4s', 1, 0x800, 6, 4, 1, mymac, me, b'\0' * 6, cap)
        send(b'\xff' * 6, 0x806, arp)
    if role == 'a' and fwd_mac is not None and sent < count and sent <= got + 1:
        sent += 1
        send(fwd_mac, 0x800, ip4(me, cap, 1, icmp(8, 0x4242, sent, b'tagged' * 8)))
    try:
        f, addr = s.recvfrom(65535)
    except socket.timeout:
        continue
    if addr[2] == socket.PACKET_OUTGOING or len(f) < 42:
        continue
    et = struct.unpack('!H', f[12:14])[0]
    if et == 0x806:
        op, sha, spa, tpa = struct.unpack('!H', f[20:22])[0], f[22:28], f[28:32], f[38:42]
        if op == 1 and tpa == me:
            send(sha, 0x806, struct.pack('!HHBBH6s4s6s4s', 1, 0x800, 6, 4, 2, mymac, me, sha, spa))
        if op == 2 and spa == cap and tpa == me:
            fwd_mac = sha
    elif et == 0x800 and f[23] == 1 and f[30:34] == me:
        ihl = (f[14] & 15) * 4; m = f[14 + ihl:]
        if m[0] == 8 and role == 'b':
            src = f[26:30]
            send(f[6:12], 0x800, ip4(me, src, 1, icmp(0, *struct.unpack('!HH', m[4:8]), m[8:])))
        elif m[0] == 0 and role == 'a':
            got += 1
print('replies', got, flush=True)
"#;

#[test]
fn forwarding_is_turned_on_and_off_live_and_the_running_capture_follows() {
    need_root!();
    let mut n = Net::new("l");
    n.serve_plain();
    assert_eq!(n.forward()["enabled"], false);
    // Nothing answers for the capture IP yet.
    let out = n.ping(&["-c", "2", "-i", "0.2", "-W", "1", CAPTURE_IP]);
    assert_eq!(received(&out), 0, "{out}");
    // Those pings wait in A's neighbour queue for an ARP answer; drop them, so that only
    // the pings below are forwarded.
    n.exec("a", &["ip", "neigh", "flush", "all"]);
    // A capture of the interface itself runs while forwarding is turned on.
    n.start_capture("live");
    let first = n.json("/api/v1/status")["capture"]["stream"]
        .as_str()
        .expect("a stream")
        .to_owned();
    let on = n.put_forward(&format!(
        r#"{{"enabled": true, "inline": "10.9.0.1/24", "pairs": ["{A}={B}"], "capture_mode": "inline"}}"#
    ));
    assert_eq!(on["enabled"], true, "{on}");
    assert_eq!(on["interface"], "eth0", "{on}");
    let second = on["capture_restarted"]
        .as_str()
        .unwrap_or_else(|| panic!("the capture was not restarted: {on}"))
        .to_owned();
    assert_ne!(first, second);
    assert!(
        wait_until(Duration::from_secs(10), || n.forward()["neighbours"]
            .as_array()
            .is_some_and(
                |v| v.len() == 2 && v.iter().all(|x| x["mac"].is_string())
            )),
        "peers not resolved: {}",
        n.forward()
    );
    let out = n.ping(&["-c", "5", "-i", "0.2", "-W", "2", CAPTURE_IP]);
    assert_eq!(received(&out), 5, "forwarded through the capture IP: {out}");
    assert_eq!(n.settled_forwarded(), 10);
    let toml = std::fs::read_to_string(n.data().join("wirecap.toml")).unwrap();
    assert!(toml.contains("inline = \"10.9.0.1/24\""), "{toml}");

    // Off: the capture continues on the interface in a third stream, nothing is relayed.
    let off = n.put_forward(r#"{"enabled": false}"#);
    assert_eq!(off["enabled"], false, "{off}");
    assert_eq!(
        off["pairs"][0],
        format!("{A}={B}"),
        "the settings are kept: {off}"
    );
    let third = off["capture_restarted"]
        .as_str()
        .expect("restarted")
        .to_owned();
    let out = n.ping(&["-c", "2", "-i", "0.2", "-W", "1", CAPTURE_IP]);
    assert_eq!(received(&out), 0, "{out}");
    assert_eq!(n.stop_capture(), third);
    let toml = std::fs::read_to_string(n.data().join("wirecap.toml")).unwrap();
    assert!(toml.contains("enabled = false"), "{toml}");

    // The forwarded stream holds the 5 requests and 5 replies between A and B (inline).
    let meta = n.json(&format!("/api/v1/streams/{second}"));
    assert_eq!(meta["capture_mode"], "inline", "{meta}");
    let pkts = tshark(&n.export(&second));
    let icmp: Vec<&Pkt> = pkts.iter().filter(|p| p.proto == "1").collect();
    assert_eq!(icmp.len(), 10, "{pkts:?}");
    assert!(
        icmp.iter()
            .all(|p| (p.src == A && p.dst == B) || (p.src == B && p.dst == A)),
        "{icmp:?}"
    );
    // The interface capture after it recorded A's unanswered tries (pings on a cached
    // MAC, or ARP requests for the capture IP), straight off the wire.
    let seen = tcpdump_read(&n.export(&third), &["src", "host", A]);
    assert!(
        seen.lines().any(|l| l.contains(CAPTURE_IP)),
        "the interface capture saw nothing of A: {seen}"
    );
    // On again from the saved settings alone.
    let on = n.put_forward(r#"{"enabled": true}"#);
    assert_eq!(on["enabled"], true, "{on}");
    assert_eq!(on["pairs"][0], format!("{A}={B}"), "{on}");
}
