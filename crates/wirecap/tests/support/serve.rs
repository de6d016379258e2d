//! A `wirecap serve` child on 127.0.0.1 with a data directory that outlives it (so a test
//! can restart the server on the same data), driven through curl and the JSON API.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_wirecap");
pub const PW: &str = "test-Pa55word";

pub struct Serve {
    child: Child,
    port: u16,
    data: PathBuf,
    log: PathBuf,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Serve {
    /// Starts `wirecap serve --data DATA --http 127.0.0.1:PORT ARGS…`; its output goes
    /// to `DATA/../serve-N.log` (appended across restarts).
    pub fn start(data: &Path, args: &[&str]) -> Self {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let log = data.with_extension("log");
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let child = Command::new(BIN)
            .arg("serve")
            .arg("--data")
            .arg(data)
            .args(["--http", &addr])
            .args(args)
            .env("WIRECAP_ADMIN_PASSWORD", PW)
            .env("RUST_LOG", "info")
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn()
            .expect("start wirecap serve");
        let s = Self {
            child,
            port,
            data: data.to_path_buf(),
            log,
        };
        let t = Instant::now();
        while TcpStream::connect(&addr).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "server did not listen within 30 s:\n{}",
                s.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn data(&self) -> &Path {
        &self.data
    }

    /// `curl` with admin credentials: `(status, body)`.
    pub fn curl(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Vec<u8>) {
        self.curl_as("admin", method, path, body)
    }

    /// `curl` as `user` (password [`PW`]).
    pub fn curl_as(
        &self,
        user: &str,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> (u16, Vec<u8>) {
        let mut c = Command::new("curl");
        c.args(["-s", "-S", "--max-time", "60", "-X", method, "-u"])
            .arg(format!("{user}:{PW}"))
            .args(["-w", "\n%{http_code}"]);
        if let Some(b) = body {
            c.args(["-H", "Content-Type: application/json", "--data-binary", b]);
        }
        let o = c.arg(self.url(path)).output().expect("run curl");
        let mut out = o.stdout;
        let nl = out.iter().rposition(|b| *b == b'\n').unwrap_or(0);
        let code = String::from_utf8_lossy(&out[nl..])
            .trim()
            .parse()
            .unwrap_or(0);
        out.truncate(nl);
        (code, out)
    }

    /// A JSON API call that must answer `want`.
    pub fn api(&self, method: &str, path: &str, body: Option<&str>, want: u16) -> Value {
        let (code, b) = self.curl(method, path, body);
        let text = String::from_utf8_lossy(&b).into_owned();
        assert_eq!(
            code,
            want,
            "{method} {path}: {text}\n--- server log:\n{}",
            self.log()
        );
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Polls `f` every 100 ms until it gives `Some`, at most `secs` seconds.
    pub fn wait_for<T>(&self, what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
        let t = Instant::now();
        loop {
            if let Some(v) = f() {
                return v;
            }
            assert!(
                t.elapsed() < Duration::from_secs(secs),
                "timed out after {secs} s waiting for {what}\n--- server log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `wirecap ARGS… --data DATA`.
    pub fn wirecap(&self, args: &[&str]) -> Output {
        wirecap_at(&self.data, args)
    }

    /// SIGTERM (the server seals its capture) and wait, at most 20 s.
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .stdout(Stdio::null())
            .status();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.terminate();
        }
    }
}

/// `wirecap ARGS… --data DATA`.
pub fn wirecap_at(data: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--data")
        .arg(data)
        .env_remove("WIRECAP_DATA")
        .output()
        .expect("run wirecap")
}
