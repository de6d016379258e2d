//! The flow index end to end, with the real binary: a writer killed with SIGKILL never
//! leaves an index that names packets that are not there (before and after recovery);
//! exports through the index equal exports by scanning, byte for byte; `wirecap reindex`
//! indexes a stream written without an index.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use wirecap_store::Store;

const BIN: &str = env!("CARGO_BIN_EXE_wirecap");

fn wirecap(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(BIN);
    c.args(&args[..1]).arg("--data").arg(data).args(&args[1..]);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn generated(dir: &Path, seconds: u64, pps: u64, flows: usize) -> PathBuf {
    let f = dir.join("gen.pcap");
    let o = Command::new(BIN)
        .args(["generate", "-o"])
        .arg(&f)
        .args(["--seconds", &seconds.to_string(), "--pps", &pps.to_string()])
        .args(["--flows", &flows.to_string()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    f
}

fn the_stream(data: &Path) -> String {
    let store = Store::open(data).unwrap();
    store.stream_names().unwrap().remove(0)
}

/// The index of the stream as a reader sees it now: every position it names is a
/// packet of the snapshot, in the right flow.
fn assert_sound(data: &Path, name: &str, when: &str) -> u64 {
    let store = Store::open(data).unwrap();
    let r = store.open_stream(name).unwrap();
    let c = wirecap_query::flows::check_index(&r).unwrap();
    assert!(
        c.problems.is_empty(),
        "{when}: {:?}",
        &c.problems[..c.problems.len().min(5)]
    );
    assert!(c.packets_named <= c.packets, "{when}: {c:?}");
    c.packets_named
}

/// A host and port of the capture, from the flow listing.
fn some_host(data: &Path) -> (String, u16) {
    let store = Store::open(data).unwrap();
    let f = wirecap_query::flows(&store, 0, u64::MAX, None).unwrap();
    let x = f
        .iter()
        .filter(|x| x.proto == "tcp")
        .max_by_key(|x| x.packets)
        .expect("a tcp flow");
    (x.src_addr.clone(), x.dst_port.unwrap())
}

/// `export --bpf E` with the index and without it (`WIRECAP_QUERY_INDEX=off`) give the
/// same bytes.
fn same_with_and_without(data: &Path, name: &str, dir: &Path, bpf: &str) -> Vec<u8> {
    let (a, b) = (dir.join("with.pcap"), dir.join("without.pcap"));
    let with = wirecap(
        data,
        &["export", name, "--bpf", bpf, "-o", a.to_str().unwrap()],
        &[],
    );
    ok(&with);
    let err = String::from_utf8_lossy(&with.stderr).into_owned();
    ok(&wirecap(
        data,
        &["export", name, "--bpf", bpf, "-o", b.to_str().unwrap()],
        &[("WIRECAP_QUERY_INDEX", "off")],
    ));
    let (x, y) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert!(
        x == y,
        "{bpf}: with the index {} bytes, without {} ({err})",
        x.len(),
        y.len()
    );
    x
}

#[test]
fn killed_writer_never_leaves_an_index_naming_missing_packets() {
    let dir = tempfile::tempdir().unwrap();
    let src = generated(dir.path(), 150, 3000, 2000);
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut child = Command::new(BIN)
        .args(["import", "--quiet", "--name", "killed", "--data"])
        .arg(&data)
        .arg(&src)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once the flow index has blocks, while both keep growing.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen_while_writing = 0;
    loop {
        let dir = std::fs::read_dir(data.join("streams"))
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
            .map(|e| e.path());
        let flows = dir
            .as_ref()
            .and_then(|d| std::fs::metadata(d.join("flows.idx")).ok())
            .map_or(0, |m| m.len());
        if flows > 0 && seen_while_writing == 0 {
            // A reader while the writer runs: what it sees is sound.
            let name = the_stream(&data);
            seen_while_writing = assert_sound(&data, &name, "while writing") + 1;
        }
        if (flows > 0 && seen_while_writing > 0) || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    assert!(
        !child.wait().unwrap().success(),
        "import finished before it could be killed"
    );
    let name = the_stream(&data);
    let before = assert_sound(&data, &name, "after kill -9, before recovery");
    assert!(before > 0, "no packet indexed before the kill");

    ok(&wirecap(&data, &["recover"], &[]));
    let after = assert_sound(&data, &name, "after recovery");
    assert!(after >= before.min(after));
    let (host, port) = some_host(&data);
    for bpf in [
        format!("host {host} and tcp"),
        format!("port {port} and not host {host}"),
        "udp".to_owned(),
    ] {
        same_with_and_without(&data, &name, dir.path(), &bpf);
    }
    // The unindexed tail (what the kill cut off from the index) is found by scanning;
    // reindex covers it all.
    ok(&wirecap(&data, &["reindex", &name], &[]));
    let store = Store::open(&data).unwrap();
    let total = store.open_stream(&name).unwrap().packets();
    assert_eq!(assert_sound(&data, &name, "after reindex"), total);
    same_with_and_without(&data, &name, dir.path(), &format!("host {host} and tcp"));
}

#[test]
fn reindex_indexes_a_stream_written_without_an_index() {
    if !wirecap_testkit::require_tool("tcpdump") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = generated(dir.path(), 10, 3000, 300);
    let data = dir.path().join("data");
    ok(&wirecap(
        &data,
        &["import", "--quiet", src.to_str().unwrap()],
        &[("WIRECAP_FLOW_INDEX", "off")],
    ));
    let name = the_stream(&data);
    let store = Store::open(&data).unwrap();
    let flows_idx = store.open_stream(&name).unwrap().dir().join("flows.idx");
    assert!(!flows_idx.exists(), "written without an index");
    let (host, _) = some_host(&data);
    let bpf = format!("host {host} and tcp");
    let scanned = same_with_and_without(&data, &name, dir.path(), &bpf);
    let o = wirecap(&data, &["reindex", &name], &[]);
    ok(&o);
    assert!(flows_idx.exists());
    assert!(String::from_utf8_lossy(&o.stderr).contains("flow records"));
    assert_eq!(
        assert_sound(&data, &name, "after reindex"),
        store.open_stream(&name).unwrap().packets()
    );
    let indexed = same_with_and_without(&data, &name, dir.path(), &bpf);
    assert_eq!(scanned, indexed);
    // And what tcpdump selects from the original.
    let theirs = dir.path().join("tcpdump.pcap");
    let t = Command::new("tcpdump")
        .args(["-r"])
        .arg(&src)
        .args(["-w"])
        .arg(&theirs)
        .arg(&bpf)
        .output()
        .unwrap();
    assert!(t.status.success());
    let count = |f: &Path| {
        let o = Command::new("tcpdump")
            .arg("-r")
            .arg(f)
            .arg("-nn")
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).lines().count()
    };
    let ours = dir.path().join("with.pcap");
    assert_eq!(count(&ours), count(&theirs));
    // Reindexing a stream being written is refused; a missing stream is an error.
    let o = wirecap(&data, &["reindex", "nope_20250101_0000"], &[]);
    assert!(!o.status.success());
}
