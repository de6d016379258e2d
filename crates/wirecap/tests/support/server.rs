//! A `wirecap serve` child on 127.0.0.1, HTTP or HTTPS, with its data directory, its
//! environment and its arguments kept, so a test can stop it (SIGTERM), kill it (`kill -9`)
//! and start it again on the same data and port.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::BIN;
use super::http::{Auth, Request, Resp};

/// The admin password every server of the tests starts with.
pub const PW: &str = "test-Pa55word";

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// How to start a server: `Server::builder(data)…start()`.
#[derive(Clone, Debug)]
pub struct Builder {
    data: PathBuf,
    https: bool,
    args: Vec<String>,
    env: Vec<(String, String)>,
    prefix: Vec<String>,
    config: Option<String>,
}

impl Builder {
    /// Listen with TLS (`--https`, a self-signed certificate) instead of `--http`.
    pub fn https(mut self) -> Self {
        self.https = true;
        self
    }
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| (*a).to_owned()));
        self
    }
    /// `--synthetic PPS`.
    pub fn synthetic(self, pps: u64) -> Self {
        self.args(&["--synthetic", &pps.to_string()])
    }
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }
    /// Runs the server through `prefix` (say `unshare --uts`).
    pub fn prefix(mut self, prefix: &[&str]) -> Self {
        self.prefix = prefix.iter().map(|a| (*a).to_owned()).collect();
        self
    }
    /// Writes `DATA/wirecap.toml` before the start.
    pub fn config(mut self, toml: &str) -> Self {
        self.config = Some(toml.to_owned());
        self
    }
    pub fn start(self) -> Server {
        std::fs::create_dir_all(&self.data).expect("data dir");
        if let Some(c) = &self.config {
            std::fs::write(self.data.join("wirecap.toml"), c).expect("wirecap.toml");
        }
        let scratch = tempfile::tempdir().expect("tempdir");
        let log = scratch.path().join("serve.log");
        let mut s = Server {
            child: None,
            port: free_port(),
            log,
            spec: self,
            scratch,
            n: AtomicUsize::new(0),
        };
        s.spawn();
        s
    }
}

pub struct Server {
    child: Option<Child>,
    port: u16,
    log: PathBuf,
    spec: Builder,
    scratch: tempfile::TempDir,
    n: AtomicUsize,
}

impl Server {
    /// A server on `data` (created if missing, kept after the server ends).
    pub fn builder(data: &Path) -> Builder {
        Builder {
            data: data.to_path_buf(),
            https: false,
            args: Vec::new(),
            env: vec![("WIRECAP_HEADER_TIMEOUT_SECS".into(), "2".into())],
            prefix: Vec::new(),
            config: None,
        }
    }

    /// `wirecap serve --data DATA --http 127.0.0.1:PORT ARGS…`.
    pub fn start(data: &Path, args: &[&str]) -> Self {
        Self::builder(data).args(args).start()
    }

    fn spawn(&mut self) {
        let b = &self.spec;
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let mut cmd = match b.prefix.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        cmd.arg("serve")
            .arg("--data")
            .arg(&b.data)
            .arg(if b.https { "--https" } else { "--http" })
            .arg(format!("127.0.0.1:{}", self.port))
            .args(&b.args)
            .env("WIRECAP_ADMIN_PASSWORD", PW)
            .env_remove("RUST_LOG")
            .env_remove("WIRECAP_DATA")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out);
        for (k, v) in &b.env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("start wirecap serve"));
        self.wait_listening(Duration::from_secs(30));
    }

    /// Waits until the port accepts connections (the server dies: its log says why).
    pub fn wait_listening(&self, limit: Duration) {
        let t = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                t.elapsed() < limit,
                "server did not listen within {limit:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
    pub fn https(&self) -> bool {
        self.spec.https
    }
    pub fn data(&self) -> &Path {
        &self.spec.data
    }
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }
    /// Whether the child we started still runs.
    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
    /// Everything the server printed, across restarts.
    pub fn log(&self) -> String {
        format!(
            "--- server log:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        )
    }
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.spec.https { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }
    /// A fresh path in the test's scratch directory (dropped with the server).
    pub fn tmp(&self, what: &str) -> PathBuf {
        let n = self.n.fetch_add(1, Ordering::Relaxed);
        self.scratch.path().join(format!("{what}-{n}"))
    }

    // ---- requests -------------------------------------------------------------------

    /// A request to this server, without credentials; `target` is sent byte for byte.
    pub fn req(&self, method: &str, target: impl AsRef<[u8]>) -> Request {
        Request::new(self.spec.https, self.port, method, target)
    }
    /// A JSON request as `user` (Basic auth).
    pub fn as_user(
        &self,
        user: &str,
        pw: &str,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Resp {
        self.req(method, path)
            .auth(Auth::Basic(user.into(), pw.into()))
            .json(body)
            .send()
    }
    /// A JSON request as the admin.
    pub fn admin(&self, method: &str, path: &str, body: Option<&str>) -> Resp {
        self.as_user("admin", PW, method, path, body)
    }
    /// A JSON API call as the admin that must answer `want`; its JSON (`Null` if none).
    pub fn api(&self, method: &str, path: &str, body: Option<&str>, want: u16) -> Value {
        let r = self.admin(method, path, body);
        assert_eq!(
            r.code,
            want,
            "{method} {path}: {}\n{}",
            r.text(),
            self.log()
        );
        serde_json::from_slice(&r.body).unwrap_or(Value::Null)
    }
    /// `GET path` as the admin, which must answer 200.
    pub fn ok(&self, path: &str) -> Resp {
        let r = self.admin("GET", path, None);
        assert_eq!(r.code, 200, "GET {path}: {}\n{}", r.text(), self.log());
        r
    }

    /// `curl -s -S -k` as `user` (`None`: no credentials) with `extra` flags: for the
    /// manual's own curl commands, run as the manual writes them.
    pub fn curl_as(&self, user: Option<&str>, path: &str, extra: &[&str]) -> Resp {
        self.curl_transfer(user, path, extra).0
    }

    /// [`Server::curl_as`], and how the transfer ended: whether curl completed it (a
    /// download cut short by the server is not), and curl's error text.
    pub fn curl_transfer(
        &self,
        user: Option<&str>,
        path: &str,
        extra: &[&str],
    ) -> (Resp, bool, String) {
        let (h, b) = (self.tmp("headers"), self.tmp("body"));
        let mut c = Command::new("curl");
        c.args(["-s", "-S", "-k", "--max-time", "120", "-o"])
            .arg(&b)
            .arg("-D")
            .arg(&h)
            .args(["-w", "%{http_code}"]);
        if let Some(u) = user {
            c.args(["-u", u]);
        }
        let o = c
            .args(extra)
            .arg(self.url(path))
            .output()
            .expect("run curl");
        let r = Resp {
            code: String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse()
                .unwrap_or(0),
            headers: std::fs::read_to_string(&h).unwrap_or_default(),
            body: std::fs::read(&b).unwrap_or_default(),
        };
        (
            r,
            o.status.success(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }
    /// [`Server::curl_as`] as the admin.
    pub fn curl(&self, path: &str, extra: &[&str]) -> Resp {
        self.curl_as(Some(&format!("admin:{PW}")), path, extra)
    }

    /// `wirecap ARGS… --data DATA`.
    pub fn wirecap(&self, args: &[&str]) -> Output {
        super::wirecap_in(self.data(), args)
    }

    /// Polls `f` until it gives `Some`, at most `secs` seconds (then fails with the log).
    pub fn wait_for<T>(&self, what: &str, secs: u64, f: impl FnMut() -> Option<T>) -> T {
        super::wait_for(what, secs, || self.log(), f)
    }

    // ---- life -----------------------------------------------------------------------

    /// SIGTERM (the server seals its capture) and wait, at most 20 s, then SIGKILL.
    pub fn stop(&mut self) {
        if let Some(c) = self.child.take()
            && !terminate(c, Duration::from_secs(20))
        {
            panic!(
                "the server did not stop within 20 s of SIGTERM\n{}",
                self.log()
            );
        }
    }

    /// `kill -9`: no chance to seal or flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the same command again, on the same data and port (after [`Server::stop`]
    /// or [`Server::kill9`]; stops a running one first).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM first: a capture is sealed and the data directory left tidy.
        if let Some(c) = self.child.take() {
            terminate(c, Duration::from_secs(10));
        }
    }
}

/// SIGTERM, then SIGKILL after `grace`; whether the child ended within it.
fn terminate(mut c: Child, grace: Duration) -> bool {
    let _ = Command::new("kill")
        .arg(c.id().to_string())
        .stdout(Stdio::null())
        .status();
    let t = Instant::now();
    while t.elapsed() < grace {
        if let Ok(Some(_)) = c.try_wait() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = c.kill();
    let _ = c.wait();
    false
}
