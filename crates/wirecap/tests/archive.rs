//! The archive tier against a real S3 server (`s3s-fs`, started here on 127.0.0.1; install
//! with `cargo install s3s-fs@0.14.1 --features binary --locked`): writeback of a
//! capture's sealed segments, eviction of the local copies, byte-identical downloads
//! read back by ranges, the bytes a 1 s window costs, a corrupted object, wrong
//! credentials, an archive that goes away mid-upload (and a `kill -9`), and a second,
//! read-only node that serves the probe's streams; the flow records as Parquet, read
//! back by DuckDB (Python's `duckdb`), and a deleted stream's objects deleted. No traffic
//! leaves loopback (synthetic capture); every wait is bounded.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

mod support;
use support::server::{Builder, Server, free_port};

const KEY: &str = "wirecap-test-key";
const SECRET: &str = "wirecap-SECRET-7f3a9c1e5b";
const BUCKET: &str = "wirecap";

/// An `s3s-fs` child serving `dir` (buckets are its folders).
struct S3 {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl S3 {
    fn start(dir: &Path) -> Option<Self> {
        if !wirecap_testkit::require_tool("s3s-fs") {
            return None;
        }
        std::fs::create_dir_all(dir.join(BUCKET)).unwrap();
        let mut s = Self {
            child: None,
            port: free_port(),
            dir: dir.to_owned(),
        };
        s.spawn();
        Some(s)
    }

    fn spawn(&mut self) {
        let tool = wirecap_testkit::find_tool("s3s-fs").expect("s3s-fs");
        self.child = Some(
            Command::new(tool)
                .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
                .args(["--access-key", KEY, "--secret-key", SECRET])
                .arg(&self.dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start s3s-fs"),
        );
        for _ in 0..200 {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("s3s-fs did not listen on port {}", self.port);
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The file holding object `key` of the bucket.
    fn object(&self, key: &str) -> PathBuf {
        self.dir.join(BUCKET).join(key)
    }

    /// A server builder with the archive's environment (`secret` as the secret key).
    fn env(&self, b: Builder, secret: &str) -> Builder {
        b.env("AWS_ACCESS_KEY_ID", KEY)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_REGION", "us-east-1")
            .env(
                "AWS_ENDPOINT_URL",
                &format!("http://127.0.0.1:{}", self.port),
            )
            .env("AWS_ALLOW_HTTP", "true")
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What every test starts from: a temporary directory with an S3 server in it (`s3/`)
/// and the data directory of the server under test (`data/`). Fields drop in order: the
/// S3 server stops before its directory goes.
struct Rig {
    s3: S3,
    data: PathBuf,
    dir: tempfile::TempDir,
}

impl Rig {
    /// `None` after recording a skip (no `s3s-fs`).
    fn new() -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let s3 = S3::start(&dir.path().join("s3"))?;
        Some(Self {
            s3,
            data: dir.path().join("data"),
            dir,
        })
    }

    /// A server on `data` archiving to the bucket as probe `probe-a`, with `secret` as
    /// its secret key, `segment`-sized segments and `extra` lines of `[archive]`.
    fn server(&self, secret: &str, segment: &str, extra: &str) -> Builder {
        self.s3
            .env(Server::builder(&self.data), secret)
            .config(&config(segment, extra))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn config(segment: &str, extra: &str) -> String {
    format!(
        "[retention]\nsegment = \"{segment}\"\n\n[archive]\nurl = \"s3://{BUCKET}/fleet\"\nprobe = \"probe-a\"\n{extra}"
    )
}

/// Captures `secs` seconds into a new stream `base`; its stored name.
fn capture(s: &Server, base: &str, secs: u64) -> String {
    let v = s.api(
        "POST",
        "/api/v1/capture/start",
        Some(&format!(r#"{{"name":"{base}"}}"#)),
        200,
    );
    let name = v["stream"]
        .as_str()
        .or_else(|| v["capture"]["stream"].as_str())
        .map(str::to_owned);
    std::thread::sleep(Duration::from_secs(secs));
    s.api("POST", "/api/v1/capture/stop", None, 200);
    name.unwrap_or_else(|| {
        let list = s.api("GET", "/api/v1/streams", None, 200);
        list.as_array()
            .and_then(|l| {
                l.iter()
                    .filter_map(|x| x["name"].as_str())
                    .find(|n| n.starts_with(&format!("{base}_")))
            })
            .expect("the captured stream")
            .to_owned()
    })
}

fn archive_status(s: &Server) -> Value {
    s.api("GET", "/api/v1/status", None, 200)["archive"].clone()
}

/// Waits until writeback has nothing left to do; the status then.
fn wait_archived(s: &Server, secs: u64) -> Value {
    s.wait_for("writeback to catch up", secs, || {
        let a = archive_status(s);
        (a["state"] == "ok" && a["lag_bytes"] == 0 && a["pending_segments"] == 0).then_some(a)
    })
}

fn segments_on_disk(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with("seg-") && n.ends_with(".wcs"))
        .collect();
    v.sort();
    v
}

fn get(s: &Server, path: &str) -> Vec<u8> {
    s.ok(path).body
}

/// Credentials never appear in what the server says.
fn assert_no_secret(s: &Server) {
    let status = s.admin("GET", "/api/v1/status", None).text();
    let metrics = s.admin("GET", "/metrics", None).text();
    let config = s.admin("GET", "/api/v1/config", None).text();
    for (what, text) in [
        ("status", status),
        ("metrics", metrics),
        ("config", config),
        ("log", s.log()),
    ] {
        assert!(!text.contains(SECRET), "the secret key is in the {what}");
    }
}

#[test]
fn round_trip_eviction_window_cost_corruption_and_a_read_only_node() {
    let Some(rig) = Rig::new() else {
        return;
    };
    let (s3, data) = (&rig.s3, &rig.data);
    let mut s = rig.server(SECRET, "2MB", "").synthetic(20000).start();
    let name = capture(&s, "arch", 3);
    let a = wait_archived(&s, 90);
    assert!(a["uploaded_segments_total"].as_u64().unwrap() >= 2, "{a}");
    let stream_dir = data.join("streams").join(&name);
    let local = segments_on_disk(&stream_dir);
    assert!(local.len() >= 3, "a multi-segment stream: {local:?}");
    // Every segment is in the archive, compressed per chunk (the default), with its seek
    // table and its manifest.
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(s3.object(&format!("fleet/probe-a/{name}/manifest.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["format"], 1);
    assert_eq!(manifest["sealed"], true, "{manifest}");
    let (mut raw, mut stored) = (0, 0);
    for (i, seg) in local.iter().enumerate() {
        let e = &manifest["segments"][i.to_string()];
        assert_eq!(e["encoding"], "zstd", "{manifest}");
        let len = std::fs::metadata(stream_dir.join(seg)).unwrap().len();
        assert_eq!(e["bytes"], len, "{seg}");
        let z = std::fs::metadata(s3.object(&format!("fleet/probe-a/{name}/{seg}.zst")))
            .unwrap()
            .len();
        let t = std::fs::metadata(s3.object(&format!("fleet/probe-a/{name}/{seg}.zidx")))
            .unwrap()
            .len();
        assert_eq!(e["stored_bytes"], z + t, "{seg}");
        (raw, stored) = (raw + len, stored + z + t);
    }
    eprintln!(
        "synthetic capture: {raw} bytes of segments stored as {stored} ({:.3})",
        stored as f64 / raw as f64
    );
    assert!(s3.object("fleet/wirecap-archive.json").exists());
    // The capture's flow records went up as Parquet once its segments had (the
    // Parquet test below reads them back).
    let flows = s.wait_for("the capture's flows in the archive", 30, || {
        let m: Value =
            serde_json::from_slice(&std::fs::read(stream_dir.join("archive.json")).ok()?).ok()?;
        let o = m["flows"]["objects"].as_array()?.clone();
        (!o.is_empty() && m["flows"]["stamp"][0].as_u64() > Some(0)).then_some(o)
    });
    for o in flows {
        let o = o.as_str().unwrap();
        assert!(o.starts_with("flows/probe=probe-a/date="), "{o}");
        assert!(s3.object(&format!("fleet/{o}")).exists(), "{o}");
    }

    // Reference downloads from the local disk.
    let single = get(&s, &format!("/api/v1/streams/{name}/pcap"));
    let splits = s.api(
        "GET",
        &format!("/api/v1/streams/{name}/views/split_1sec/splits"),
        None,
        200,
    );
    let splits = splits["splits"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| splits.as_array().cloned().expect("a list of splits"));
    assert!(splits.len() >= 2, "{splits:?}");
    let window = splits[splits.len() / 2].clone();
    let window_path = window["download"].as_str().unwrap().to_owned();
    let window_bytes = get(&s, &window_path);
    let plain_before = get(&s, "/plain/list");

    // The disk becomes a cache: a tiny budget deletes the local copies of archived
    // segments (nothing else: the stream stays listed).
    s.api(
        "PUT",
        "/api/v1/retention",
        Some(r#"{"budget":"64kB"}"#),
        200,
    );
    s.wait_for("the local copies to be evicted", 30, || {
        segments_on_disk(&stream_dir).is_empty().then_some(())
    });
    let a = archive_status(&s);
    assert!(a["evicted_bytes_total"].as_u64().unwrap() > 0, "{a}");
    assert_eq!(a["lost_bytes_total"], 0, "{a}");

    // Restarted with a cold read cache: a 1 s window costs its own bytes plus a few
    // MiB, in a few ranged GETs.
    s.restart();
    let before = archive_status(&s);
    assert_eq!(get(&s, &window_path), window_bytes, "the window, read back");
    let after = archive_status(&s);
    let fetched =
        after["read_bytes_total"].as_u64().unwrap() - before["read_bytes_total"].as_u64().unwrap();
    let requests = after["read_requests_total"].as_u64().unwrap()
        - before["read_requests_total"].as_u64().unwrap();
    let total: u64 = manifest["segments"]
        .as_object()
        .unwrap()
        .values()
        .map(|e| e["bytes"].as_u64().unwrap())
        .sum();
    let slack = 6 << 20;
    eprintln!(
        "1 s window: {} bytes, fetched {fetched} bytes in {requests} GETs (stream {total} bytes)",
        window_bytes.len()
    );
    assert!(
        fetched <= window_bytes.len() as u64 + slack,
        "a 1 s window of {} bytes fetched {fetched} bytes",
        window_bytes.len()
    );
    // One GET per ~1 MiB chunk frame of the window, the segments' seek tables, and the
    // read-ahead once it goes through a segment in order.
    let frames = (window_bytes.len() as u64).div_ceil(1 << 20);
    assert!(
        requests >= 1 && requests <= 2 * frames + 8,
        "{requests} GETs"
    );
    assert!(fetched < total, "the window fetched the whole stream");

    // Every view downloads byte-identical from the archive.
    assert_eq!(get(&s, &format!("/api/v1/streams/{name}/pcap")), single);
    assert_eq!(
        get(&s, "/plain/list"),
        plain_before,
        "/plain/list keeps its format"
    );
    assert_no_secret(&s);
    let metrics = s.admin("GET", "/metrics", None).text();
    assert!(metrics.contains("wirecap_archive_read_bytes"), "{metrics}");
    assert!(
        metrics.contains("wirecap_archive_lost_bytes 0"),
        "{metrics}"
    );

    // A second node, read-only, on its own empty data directory, serves the probe's
    // streams from the bucket.
    let data2 = rig.path("data2");
    let ro = s3
        .env(Server::builder(&data2), SECRET)
        .args(&["--archive", &format!("s3://{BUCKET}/fleet"), "--read-only"])
        .start();
    let listed = ro.wait_for("the fleet view to list the stream", 30, || {
        let v = ro.api("GET", "/api/v1/streams?probe=probe-a", None, 200);
        let l = v.as_array().cloned().unwrap_or_default();
        l.iter().any(|x| x["name"] == name.as_str()).then_some(l)
    });
    assert!(listed.iter().all(|x| x["probe"] == "probe-a"), "{listed:?}");
    let none = ro.api("GET", "/api/v1/streams?probe=elsewhere", None, 200);
    assert_eq!(none.as_array().map(Vec::len), Some(0), "{none}");
    assert_eq!(get(&ro, &format!("/api/v1/streams/{name}/pcap")), single);
    assert_eq!(get(&ro, &window_path), window_bytes);
    let r = ro.admin("GET", "/sysmaster/capture_start?StreamName=nope", None);
    assert!(r.text().contains("read-only"), "{}", r.text());
    drop(ro);

    // A damaged object is caught by the chunk CRCs, with a clear error.
    s.stop();
    // A byte inside the body of the stream's first chunk.
    let obj = s3.object(&format!("fleet/probe-a/{name}/{}.zst", local[0]));
    let mut b = std::fs::read(&obj).unwrap();
    b[300] ^= 0xff;
    std::fs::write(&obj, b).unwrap();
    s.restart();
    let r = s.admin("GET", &format!("/api/v1/streams/{name}/pcap"), None);
    assert!(
        r.code >= 500,
        "a damaged object must not download: {}",
        r.code
    );
    let text = r.text();
    // Caught by zstd when the frame no longer decodes, else by the chunk's CRC32C.
    assert!(
        (text.contains("CRC32C") || text.contains("zstd")) && text.contains("archive"),
        "{text}\n{}",
        s.log()
    );
}

#[test]
fn wrong_credentials_say_so_capture_goes_on_and_a_full_disk_counts_the_loss() {
    let Some(rig) = Rig::new() else {
        return;
    };
    let s = rig
        .server("not-the-secret-key-1234", "256kB", "")
        .synthetic(5000)
        .start();
    let v = s.api(
        "POST",
        "/api/v1/capture/start",
        Some(r#"{"name":"creds"}"#),
        200,
    );
    drop(v);
    let a = s.wait_for("the archive error in the status", 60, || {
        let a = archive_status(&s);
        (a["state"] == "error").then_some(a)
    });
    let err = a["last_error"].as_str().unwrap_or_default().to_owned();
    assert!(err.contains("refused the credentials"), "{err}");
    let p1 = s.api("GET", "/api/v1/status", None, 200)["capture_packets"]
        .as_u64()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let st = s.api("GET", "/api/v1/status", None, 200);
    assert!(
        st["capture_packets"].as_u64().unwrap() > p1,
        "capture goes on: {st}"
    );
    assert_eq!(st["capture"]["active"], true);
    assert!(st["archive"]["lag_bytes"].as_u64().unwrap() > 0);
    assert!(!a.to_string().contains("not-the-secret-key-1234"));
    let metrics = s.admin("GET", "/metrics", None).text();
    assert!(metrics.contains("wirecap_archive_ok 0"), "{metrics}");
    assert!(!s.log().contains("not-the-secret-key-1234"));

    // The disk fills while nothing can be archived: capture goes on, retention deletes
    // the oldest unarchived data and counts it as lost, with a warning.
    s.api("PUT", "/api/v1/retention", Some(r#"{"budget":"2MB"}"#), 200);
    let a = s.wait_for("data lost before archiving to be counted", 60, || {
        let a = archive_status(&s);
        (a["lost_bytes_total"].as_u64() > Some(0)).then_some(a)
    });
    assert!(
        a["warning"]
            .as_str()
            .unwrap_or_default()
            .contains("before they were archived"),
        "{a}"
    );
    let st = s.api("GET", "/api/v1/status", None, 200);
    assert_eq!(st["capture"]["active"], true, "capture goes on: {st}");
    let metrics = s.admin("GET", "/metrics", None).text();
    assert!(
        !metrics.contains("wirecap_archive_lost_bytes 0"),
        "{metrics}"
    );
    assert!(s.log().contains("before they were archived"));
}

#[test]
fn archive_down_mid_upload_and_kill_9_lose_nothing() {
    let Some(mut rig) = Rig::new() else {
        return;
    };
    // 16 Mbit/s: uploads last long enough to take the archive away in the middle; 12 MB
    // segments go in multipart uploads.
    let mut s = rig
        .server(SECRET, "12MB", "max_mbps = 16\ncompression = \"none\"\n")
        .synthetic(20000)
        .start();
    let (s3, data) = (&mut rig.s3, &rig.data);
    let name = capture(&s, "down", 4);
    s.wait_for("a first segment archived", 60, || {
        (archive_status(&s)["uploaded_segments_total"].as_u64() >= Some(1)).then_some(())
    });
    s3.stop();
    let a = s.wait_for("the archive to be seen down", 60, || {
        let a = archive_status(&s);
        (a["state"] == "error").then_some(a)
    });
    assert!(
        a["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("cannot be reached"),
        "{a}"
    );
    // Killed while the archive is down: the queue is the disk, nothing is lost.
    s.kill9();
    s3.spawn();
    std::fs::write(
        data.join("wirecap.toml"),
        config("12MB", "compression = \"none\"\n"),
    )
    .unwrap();
    s.restart();
    wait_archived(&s, 120);
    let stream_dir = data.join("streams").join(&name);
    let local = segments_on_disk(&stream_dir);
    assert!(local.len() >= 2, "{local:?}");
    for seg in &local {
        assert_eq!(
            std::fs::read(s3.object(&format!("fleet/probe-a/{name}/{seg}"))).unwrap(),
            std::fs::read(stream_dir.join(seg)).unwrap(),
            "{seg} in the archive"
        );
    }
    for f in ["chunks.idx", "time.idx", "meta.json"] {
        assert_eq!(
            std::fs::read(s3.object(&format!("fleet/probe-a/{name}/{f}"))).unwrap(),
            std::fs::read(stream_dir.join(f)).unwrap(),
            "{f} in the archive"
        );
    }
    // A damaged plain object, once the local copy is gone: the chunk's CRC32C says so.
    let obj = s3.object(&format!("fleet/probe-a/{name}/{}", local[0]));
    let mut b = std::fs::read(&obj).unwrap();
    b[300] ^= 0xff;
    std::fs::write(&obj, b).unwrap();
    s.api(
        "PUT",
        "/api/v1/retention",
        Some(r#"{"budget":"64kB"}"#),
        200,
    );
    s.wait_for("the local copies to be evicted", 30, || {
        segments_on_disk(&stream_dir).is_empty().then_some(())
    });
    let r = s.admin("GET", &format!("/api/v1/streams/{name}/pcap"), None);
    assert!(
        r.code >= 500,
        "a damaged object must not download: {}",
        r.code
    );
    let text = r.text();
    assert!(
        text.contains("CRC32C") && text.contains("archive"),
        "{text}\n{}",
        s.log()
    );
}

/// Whether Python's `duckdb` module is there; otherwise records a skip.
fn require_duckdb() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import duckdb"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        wirecap_testkit::skip("python3 with the duckdb module (pip install duckdb) is missing");
    }
    ok
}

/// Runs `sql` in DuckDB over the Hive-partitioned Parquet tree `root` (as the view
/// `flows`); the rows as JSON objects.
fn duckdb(root: &Path, sql: &str) -> Vec<Value> {
    let script = r#"
import duckdb, json, sys
root, sql = sys.argv[1], sys.argv[2]
con = duckdb.connect()
con.execute(f"CREATE VIEW flows AS SELECT * FROM read_parquet('{root}/**/*.parquet', hive_partitioning = true)")
cur = con.execute(sql)
cols = [d[0] for d in cur.description]
for row in cur.fetchall():
    print(json.dumps(dict(zip(cols, row)), default=str))
"#;
    let out = support::run(&["python3", "-c", script, root.to_str().unwrap(), sql]);
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every object file under `dir` (relative paths), sorted.
fn objects_under(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, d: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, dir, &mut v);
    v.sort();
    v
}

#[test]
fn flows_go_to_the_archive_as_parquet_that_duckdb_reads_and_deleting_a_stream_deletes_them() {
    if !require_duckdb() {
        return;
    }
    let Some(mut rig) = Rig::new() else {
        return;
    };
    // 150 s from 20:59:00 UTC: index blocks every 60 s of packet time, flows that go on
    // across blocks, rows in two hour partitions.
    let pcap = rig.path("t.pcap");
    support::run(&[
        support::BIN,
        "generate",
        "--seconds",
        "150",
        "--pps",
        "200",
        "--flows",
        "120",
        "--start",
        "2026-12-04T20:59:00Z",
        "-o",
        pcap.to_str().unwrap(),
    ]);
    let out = support::wirecap_in(
        &rig.data,
        &["import", "-q", "--name", "lake", pcap.to_str().unwrap()],
    );
    assert!(out.status.success(), "{out:?}");
    let name = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let mut s = rig.server(SECRET, "256MB", "").start();
    let (s3, data) = (&mut rig.s3, &rig.data);
    wait_archived(&s, 90);
    let flows_root = s3.object("fleet/flows");
    let local_manifest = data.join("streams").join(&name).join("archive.json");
    let m: Value = s.wait_for("the flows' export in the manifest", 30, || {
        let m: Value = serde_json::from_slice(&std::fs::read(&local_manifest).ok()?).ok()?;
        (m["flows"]["blocks"].as_u64() >= Some(3)).then_some(m)
    });
    let objects = objects_under(&flows_root);
    assert_eq!(
        objects,
        [
            format!("probe=probe-a/date=2026-12-04/hour=20/{name}-b00000000.parquet"),
            format!("probe=probe-a/date=2026-12-04/hour=21/{name}-b00000000.parquet"),
        ],
        "{m}"
    );

    // The rows, summed per flow by DuckDB over the partitioned tree, are `wirecap flows`.
    let listed = s.wirecap(&[
        "flows",
        "--start",
        "2026-12-04T00:00:00Z",
        "--stop",
        "2026-12-05T00:00:00Z",
    ]);
    assert!(listed.status.success(), "{listed:?}");
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let listed = listed["flows"].as_array().unwrap();
    let key = |f: &Value| {
        [
            "id",
            "proto",
            "src",
            "dst",
            "sport",
            "dport",
            "vlan",
            "first_ns",
            "last_ns",
            "src_packets",
            "dst_packets",
            "src_bytes",
            "dst_bytes",
            "packets",
            "bytes",
            "tcp_flags",
        ]
        .map(|k| f[k].to_string())
        .join(" ")
    };
    let mut want: Vec<String> = listed
        .iter()
        .filter(|f| f["proto"] != "other")
        .map(key)
        .collect();
    want.sort();
    let rows = duckdb(
        &flows_root,
        "SELECT flow_id AS id, any_value(proto) AS proto, any_value(src_addr) AS src,
                any_value(dst_addr) AS dst, any_value(src_port) AS sport,
                any_value(dst_port) AS dport, any_value(vlan) AS vlan, min(first_ns) AS first_ns,
                max(last_ns) AS last_ns, sum(src_packets)::BIGINT AS src_packets,
                sum(dst_packets)::BIGINT AS dst_packets, sum(src_bytes)::BIGINT AS src_bytes,
                sum(dst_bytes)::BIGINT AS dst_bytes, sum(packets)::BIGINT AS packets,
                sum(bytes)::BIGINT AS bytes, bit_or(tcp_flags) AS tcp_flags,
                count(*) AS fragments
         FROM flows WHERE probe = 'probe-a' AND proto <> 'other'
         GROUP BY stream, flow_id",
    );
    // The CLI says TCP flags in letters, tcpdump's order.
    let letters = |v: &Value| -> Value {
        let f = v.as_u64().unwrap();
        "FSRPAUEC"
            .chars()
            .enumerate()
            .filter(|(i, _)| f & (1 << i) != 0)
            .map(|(_, c)| c)
            .collect::<String>()
            .into()
    };
    let mut got: Vec<String> = rows
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r["tcp_flags"] = letters(&r["tcp_flags"]);
            key(&r)
        })
        .collect();
    got.sort();
    assert!(want.len() >= 100, "{} flows", want.len());
    assert_eq!(got, want, "DuckDB's flows against `wirecap flows`");
    assert!(
        rows.iter().any(|r| r["fragments"].as_u64() > Some(1)),
        "flows span blocks"
    );
    // Every packet is in a row; partitions are the UTC hour of each row's first packet;
    // the typed columns agree with the strings.
    let all = duckdb(
        &flows_root,
        "SELECT sum(packets)::BIGINT AS packets, count(*) AS rows,
                count(*) FILTER (WHERE hour <> (first_ns // 3600000000000) % 24
                                   OR date::VARCHAR <> strftime(make_timestamp(first_ns // 1000), '%Y-%m-%d')) AS misplaced,
                count(*) FILTER (WHERE epoch_ns(first_ts) <> first_ns) AS bad_ts,
                count(*) FILTER (WHERE ip_version = 4 AND src_addr <> concat_ws('.',
                    src_ipv4 // 16777216, src_ipv4 // 65536 % 256, src_ipv4 // 256 % 256,
                    src_ipv4 % 256)) AS bad_ipv4
         FROM flows",
    );
    let total: u64 = listed.iter().map(|f| f["packets"].as_u64().unwrap()).sum();
    assert_eq!(all[0]["packets"], 30000, "{all:?}");
    assert_eq!(total, 30000);
    assert_eq!(all[0]["misplaced"], 0, "{all:?}");
    assert_eq!(all[0]["bad_ts"], 0, "{all:?}");
    assert_eq!(all[0]["bad_ipv4"], 0, "{all:?}");

    // A restart that lost the manifest's record of the export (as a kill between the
    // objects and the manifest would) writes the same objects again: no duplicate rows.
    s.stop();
    let mut m: Value = serde_json::from_slice(&std::fs::read(&local_manifest).unwrap()).unwrap();
    m.as_object_mut().unwrap().remove("flows");
    std::fs::write(&local_manifest, m.to_string()).unwrap();
    s.restart();
    s.wait_for("the flows exported again", 30, || {
        let m: Value = serde_json::from_slice(&std::fs::read(&local_manifest).ok()?).ok()?;
        (m["flows"]["blocks"].as_u64() >= Some(3)).then_some(())
    });
    assert_eq!(objects_under(&flows_root), objects);
    let again = duckdb(&flows_root, "SELECT count(*) AS rows FROM flows");
    assert_eq!(again[0]["rows"], all[0]["rows"], "no duplicate rows");

    // Deleting the stream deletes its objects (segments, index files, manifest, flows),
    // even when the archive is down at the time and the server is killed meanwhile: the
    // deletion waits on disk like an upload.
    assert!(
        s3.object(&format!("fleet/probe-a/{name}/manifest.json"))
            .exists()
    );
    s3.stop();
    let r = s.admin("DELETE", &format!("/api/v1/streams/{name}"), None);
    assert!(r.code < 300, "{}", r.text());
    assert!(!data.join("streams").join(&name).exists());
    let tombstone = data.join("archive-deletes").join(format!("{name}.json"));
    s.wait_for("the archive to be seen down", 30, || {
        (archive_status(&s)["state"] == "error").then_some(())
    });
    assert!(tombstone.exists());
    assert!(!objects_under(&flows_root).is_empty());
    s.kill9();
    s3.spawn();
    s.restart();
    s.wait_for("the stream's objects to be deleted", 30, || {
        (objects_under(&s3.object(&format!("fleet/probe-a/{name}"))).is_empty()
            && objects_under(&flows_root).is_empty()
            && !tombstone.exists())
        .then_some(())
    });
    assert!(s3.object("fleet/wirecap-archive.json").exists());
    s.wait_for("the archive ok again", 30, || {
        (archive_status(&s)["state"] == "ok").then_some(())
    });
}
