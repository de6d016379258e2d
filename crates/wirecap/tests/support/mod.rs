//! The one harness of the end-to-end tests: the `wirecap` command runner, a `wirecap
//! serve` child on 127.0.0.1 over HTTP or HTTPS ([`server`]), and one HTTP client that
//! speaks both and sends the request line as given, byte for byte ([`http`]). Each test
//! file uses a subset.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub mod http;
pub mod server;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_wirecap");

/// `wirecap ARGS…`, stdin empty, `WIRECAP_DATA` unset.
pub fn wirecap(args: &[&str]) -> Output {
    wirecap_stdin(args, None)
}

/// Runs a system command (`ip`, `sysctl`, …), which must succeed; panics with its output
/// otherwise.
pub fn run(args: &[&str]) -> Output {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `wirecap ARGS… --data DATA`.
pub fn wirecap_in(data: &Path, args: &[&str]) -> Output {
    let mut all: Vec<&str> = args.to_vec();
    let d = data.to_str().expect("utf8 data path");
    all.extend(["--data", d]);
    wirecap(&all)
}

/// `wirecap ARGS…` with `stdin` as its standard input (a password prompt).
pub fn wirecap_stdin(args: &[&str], stdin: Option<&str>) -> Output {
    let mut c = Command::new(BIN)
        .args(args)
        .env_remove("WIRECAP_DATA")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run wirecap");
    if let Some(s) = stdin {
        c.stdin
            .take()
            .expect("stdin")
            .write_all(s.as_bytes())
            .expect("write stdin");
    }
    drop(c.stdin.take());
    c.wait_with_output().expect("wirecap output")
}

/// The stdout of a successful `wirecap` run; a failure shows its status and stderr.
pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "wirecap failed: {}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).expect("utf8 stdout")
}

/// Polls `f` every 50 ms until it gives `Some`; panics after `secs` seconds with `what`
/// and `context()` (a server log, say). The bound only stops a hung test: what is
/// checked is the condition.
pub fn wait_for<T>(
    what: &str,
    secs: u64,
    context: impl Fn() -> String,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let t = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            t.elapsed() < Duration::from_secs(secs),
            "timed out after {secs} s waiting for {what}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `f` every 50 ms until it is true, at most 20 s.
pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    wait_for(what, 20, String::new, || f().then_some(()))
}

/// tcpdump's text for a capture file (read from stdin, nanosecond times, `-S`).
pub fn tcpdump(bytes: &[u8], filter: &[&str]) -> String {
    let mut c = Command::new("tcpdump")
        .args(["-r", "-", "-nn", "-S", "-tt", "--time-stamp-precision=nano"])
        .args(filter)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tcpdump");
    let mut stdin = c.stdin.take().expect("stdin");
    let data = bytes.to_vec();
    let w = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let o = c.wait_with_output().expect("tcpdump output");
    let _ = w.join();
    assert!(
        o.status.success(),
        "tcpdump failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}
