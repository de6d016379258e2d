//! The system report: one archive an operator sends to whoever helps them, holding what
//! explains the box's state and nothing that opens it.
//!
//! `report_<hostname>_<YYYYMMDD_HHMMSS>.tar.gz` in `DIR/upload/`, every file under a
//! folder of the same name:
//!
//! | file | what |
//! |---|---|
//! | `log/*.log` | the rotating log files (newest first, at most [`MAX_LOG_BYTES`] in all, each file's tail) |
//! | `status.json` | the live status and per-second counters history (a server's report), or a note (offline) |
//! | `config.toml` | `wirecap.toml` with every value whose key names a secret replaced (see [`redact`]); paths stay |
//! | `users.json` | user names and roles, never the hashes |
//! | `streams.json` | the stream list with sizes and times |
//! | `interfaces.json`, `ip-addr.txt` | sysfs link facts and counters, `ip -d addr` |
//! | `system.json`, `meminfo.txt`, `os-release.txt` | uname, CPU summary, memory, `df` of DIR, uptime, versions |
//! | `filelist` | `sha256  size  path` of every other file |
//!
//! The newest [`KEEP_REPORTS`] are kept. Beside them, `upload/report.tar.gz` (or `.tar.gz.age`) links to the newest one
//! and `upload/filelist` lists its files, as on the appliance.
//!
//! Never in it: the TLS private key, password hashes, `initial-admin-password`, the
//! environment. With a recipient (`age1…`, x25519) the archive is encrypted with `age`
//! and named `….tar.gz.age`.
//!
//! Building runs on a blocking thread and reports steps done/total through [`Progress`];
//! [`Jobs`] keeps the server's background builds.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use sha2::Digest as _;

/// Folder of `DIR` where reports are kept (the appliance's "upload" area).
pub const UPLOAD_DIR: &str = "upload";
/// The most log bytes a report takes (newest files first, tails of files).
pub const MAX_LOG_BYTES: u64 = 64 << 20;
/// Reports kept in `DIR/upload/`: older ones are deleted when a new one is made.
pub const KEEP_REPORTS: usize = 10;
/// Steps of a build, for progress.
pub const STEPS: u32 = 9;

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("recipient {0:?} is not an age x25519 public key (age1…)")]
    Recipient(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("encrypting the report: {0}")]
    Encrypt(String),
    #[error("a report is being made already (job {0})")]
    Busy(u64),
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Parses an operator's age public key.
pub fn parse_recipient(s: &str) -> Result<age::x25519::Recipient, ReportError> {
    s.trim()
        .parse::<age::x25519::Recipient>()
        .map_err(|_| ReportError::Recipient(crate::short(s).into_owned()))
}

/// Steps done out of [`STEPS`], and the one under way.
#[derive(Debug, Default)]
pub struct Progress {
    done: AtomicU32,
    step: Mutex<String>,
}

impl Progress {
    fn start(&self, step: &str) {
        *self.step.lock().unwrap_or_else(|e| e.into_inner()) = step.to_owned();
    }
    fn finish(&self) {
        self.done.fetch_add(1, Ordering::Relaxed);
    }
    pub fn done(&self) -> u32 {
        self.done.load(Ordering::Relaxed)
    }
    pub fn step(&self) -> String {
        self.step.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// What a report is made from.
#[derive(Debug, Clone)]
pub struct Input {
    pub dir: PathBuf,
    pub hostname: String,
    /// The live status with its counters history (a running server), or `None` (offline).
    pub status: Option<Box<crate::api::Status>>,
    pub recipient: Option<age::x25519::Recipient>,
    pub now_ns: u64,
}

/// `report_<hostname>_<YYYYMMDD_HHMMSS>` for `now_ns` (UTC).
pub fn base_name(hostname: &str, now_ns: u64) -> String {
    let t = jiff::Timestamp::from_second((now_ns / 1_000_000_000) as i64)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_zoned(jiff::tz::TimeZone::UTC);
    let host: String = hostname
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!(
        "report_{host}_{:04}{:02}{:02}_{:02}{:02}{:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Key names whose values are secrets: matched as whole words of the key (split at
/// `_`, `-`, `.`), so `password_hash`, `secret_key` and `api_token` go, `tls.cert` stays.
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "credential",
    "credentials",
    "private",
    "hash",
    "passphrase",
    "apikey",
];

fn is_secret_key(table: &[String], key: &str) -> bool {
    // `[tls] key` is the key file's path: an operator needs it, and the key itself
    // (DIR/tls/*.pem or the operator's file) is never read into the report.
    if key == "key" && table.last().is_some_and(|t| t == "tls") {
        return false;
    }
    key.to_ascii_lowercase()
        .split(['_', '-', '.'])
        .any(|w| w == "key" || SECRET_WORDS.contains(&w))
}

/// Replaces the value of every key that names a secret, at any depth, with
/// `"<removed>"`; comments go (they may quote a value).
pub fn redact(text: &str) -> String {
    fn walk(table: &mut toml::Table, path: &mut Vec<String>) {
        for (k, v) in table.iter_mut() {
            if is_secret_key(path, k) {
                *v = toml::Value::String("<removed>".into());
                continue;
            }
            match v {
                toml::Value::Table(t) => {
                    path.push(k.clone());
                    walk(t, path);
                    path.pop();
                }
                toml::Value::Array(a) => {
                    for item in a {
                        if let toml::Value::Table(t) = item {
                            path.push(k.clone());
                            walk(t, path);
                            path.pop();
                        }
                    }
                }
                _ => {}
            }
        }
    }
    match text.parse::<toml::Table>() {
        Ok(mut t) => {
            walk(&mut t, &mut Vec::new());
            toml::to_string(&t).unwrap_or_default()
        }
        // An unreadable file could hold anything, and toml's message quotes the line:
        // only where the error is goes in.
        Err(e) => {
            let line = e
                .span()
                .map(|r| text[..r.start.min(text.len())].matches('\n').count() + 1);
            format!(
                "# wirecap.toml does not parse (error on line {}); its text is left out\n",
                line.map_or("?".into(), |l| l.to_string())
            )
        }
    }
}

fn read_or_note(path: &Path) -> Vec<u8> {
    std::fs::read(path)
        .unwrap_or_else(|e| format!("(cannot read {}: {e})\n", path.display()).into_bytes())
}

/// A file of the report: small ones in memory, log tails read from their open file
/// (never held in memory whole: a report of 64 MB of logs streams through).
#[derive(Debug)]
enum Content {
    Bytes(Vec<u8>),
    Tail {
        file: std::fs::File,
        offset: u64,
        len: u64,
    },
}

impl Content {
    fn len(&self) -> u64 {
        match self {
            Self::Bytes(b) => b.len() as u64,
            Self::Tail { len, .. } => *len,
        }
    }

    fn reader(&self) -> Box<dyn Read + '_> {
        match self {
            Self::Bytes(b) => Box::new(b.as_slice()),
            Self::Tail { file, offset, len } => Box::new(Positioned {
                file,
                pos: *offset,
                end: offset + len,
            }),
        }
    }

    fn sha256(&self) -> std::io::Result<String> {
        let mut h = sha2::Sha256::new();
        let mut r = self.reader();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
    }
}

/// Reads `file[pos..end]` with pread: the same bytes however often, even while the log
/// grows or is rotated away.
struct Positioned<'a> {
    file: &'a std::fs::File,
    pos: u64,
    end: u64,
}

impl Read for Positioned<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let want = (self.end - self.pos).min(buf.len() as u64) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "a log file shrank while the report was made",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// The log files, newest first, at most [`MAX_LOG_BYTES`] in all (tails of files).
fn logs(dir: &Path) -> Vec<(String, Content)> {
    let log_dir = dir.join(crate::config::LOG_DIR);
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&log_dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
                .collect()
        })
        .unwrap_or_default();
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    let mut left = MAX_LOG_BYTES;
    let mut out = Vec::new();
    for (_, p) in files {
        if left == 0 {
            break;
        }
        let Some(name) = p.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        let Ok(file) = std::fs::File::open(&p) else {
            continue;
        };
        let Ok(size) = file.metadata().map(|m| m.len()) else {
            continue;
        };
        let len = size.min(left);
        left -= len;
        out.push((
            format!("log/{name}"),
            Content::Tail {
                file,
                offset: size - len,
                len,
            },
        ));
    }
    out
}

fn users(dir: &Path) -> Value {
    match crate::auth::Users::load(dir) {
        Ok(u) => json!(
            u.list()
                .into_iter()
                .map(|(name, role)| json!({"name": name, "role": role}))
                .collect::<Vec<_>>()
        ),
        Err(e) => json!({"error": e.to_string()}),
    }
}

fn streams(dir: &Path) -> Value {
    match wirecap_store::Store::open(dir).and_then(|s| s.list()) {
        Ok(list) => json!(list.iter().map(crate::api::Stream::of).collect::<Vec<_>>()),
        Err(e) => json!({"error": e.to_string()}),
    }
}

fn interfaces() -> Value {
    match wirecap_capture::link::Sysfs::default().list() {
        Ok(list) => json!(list.iter().map(crate::api::Link::of).collect::<Vec<_>>()),
        Err(e) => json!({"error": e.to_string()}),
    }
}

fn command(cmd: &str, args: &[&str]) -> Vec<u8> {
    match std::process::Command::new(cmd).args(args).output() {
        Ok(o) => {
            let mut v = o.stdout;
            v.extend_from_slice(&o.stderr);
            v
        }
        Err(e) => format!("({cmd} {}: {e})\n", args.join(" ")).into_bytes(),
    }
}

fn uname() -> Value {
    let mut u = std::mem::MaybeUninit::<libc::utsname>::uninit();
    // SAFETY: uname fills the whole struct when it returns 0; only then is it read.
    if unsafe { libc::uname(u.as_mut_ptr()) } != 0 {
        return Value::Null;
    }
    // SAFETY: uname returned 0.
    let u = unsafe { u.assume_init() };
    let f = |field: &[libc::c_char]| {
        // SAFETY: uname's fields are NUL-terminated within their arrays.
        unsafe { std::ffi::CStr::from_ptr(field.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    };
    json!({
        "sysname": f(&u.sysname),
        "nodename": f(&u.nodename),
        "release": f(&u.release),
        "version": f(&u.version),
        "machine": f(&u.machine),
    })
}

fn cpu_summary() -> Value {
    let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let mut models: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("model name"))
        .filter_map(|l| l.split_once(':').map(|(_, v)| v.trim().to_owned()))
        .collect();
    models.dedup();
    json!({
        "logical_cpus": std::thread::available_parallelism().map(|n| n.get()).ok(),
        "processors_in_cpuinfo": text.lines().filter(|l| l.starts_with("processor")).count(),
        "models": models,
    })
}

fn system(input: &Input) -> Value {
    let uptime_s = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok());
    let df = crate::os::disk_space(&input.dir).map(|(total, free)| {
        json!({"path": input.dir, "total_bytes": total, "free_bytes": free, "used_bytes": total - free})
    });
    json!({
        "hostname": input.hostname,
        "os_hostname": crate::hostname::os_hostname(),
        "made": wirecap_store::timefmt::rfc3339(input.now_ns),
        "wirecap_version": env!("CARGO_PKG_VERSION"),
        "uname": uname(),
        "cpu": cpu_summary(),
        "host_uptime_s": uptime_s,
        "df_data_dir": df,
        "process": {"pid": std::process::id(), "euid": euid()},
    })
}

fn euid() -> Option<u32> {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
}

fn pretty(v: &Value) -> Vec<u8> {
    let mut s = serde_json::to_vec_pretty(v).unwrap_or_default();
    s.push(b'\n');
    s
}

/// One line per file: `sha256  size  path`.
fn filelist(files: &[(String, Content)]) -> std::io::Result<String> {
    let mut s = String::new();
    for (name, c) in files {
        s.push_str(&format!("{}  {}  {name}\n", c.sha256()?, c.len()));
    }
    Ok(s)
}

/// Where the archive goes: the file, or age's encrypting stream over it.
enum Sink {
    Plain(std::fs::File),
    Age(age::stream::StreamWriter<std::fs::File>),
}

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::Plain(f) => f.write(b),
            Self::Age(w) => w.write(b),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::Plain(f) => f.flush(),
            Self::Age(w) => w.flush(),
        }
    }
}

impl Sink {
    fn finish(self) -> std::io::Result<std::fs::File> {
        match self {
            Self::Plain(f) => Ok(f),
            Self::Age(w) => w.finish(),
        }
    }
}

/// Writes the archive of `files` under the folder `base` to `part` (0600, synced):
/// tar → gzip → age (with a recipient) → file.
fn write_archive(
    part: &Path,
    base: &str,
    files: &[(String, Content)],
    input: &Input,
) -> Result<std::fs::File, ReportError> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        // Private: logs name peers and users.
        .mode(0o600)
        .open(part)
        .map_err(io_at(part))?;
    let sink = match &input.recipient {
        None => Sink::Plain(file),
        Some(r) => Sink::Age(
            age::Encryptor::with_recipients(std::iter::once(r as &dyn age::Recipient))
                .map_err(|e| ReportError::Encrypt(e.to_string()))?
                .wrap_output(file)
                .map_err(io_at(part))?,
        ),
    };
    let gz = flate2::write::GzEncoder::new(sink, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let mtime = input.now_ns / 1_000_000_000;
    for (name, content) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len());
        h.set_mode(0o644);
        h.set_mtime(mtime);
        h.set_entry_type(tar::EntryType::Regular);
        let path = format!("{base}/{name}");
        tar.append_data(&mut h, &path, content.reader())
            .map_err(io_at(Path::new(&path)))?;
    }
    let file = tar
        .into_inner()
        .and_then(|gz| gz.finish())
        .and_then(Sink::finish)
        .map_err(io_at(part))?;
    file.sync_all().map_err(io_at(part))?;
    Ok(file)
}

/// Makes the report in `DIR/upload/` and answers its path. Blocking.
pub fn build(input: &Input, progress: &Progress) -> Result<PathBuf, ReportError> {
    let base = base_name(&input.hostname, input.now_ns);
    let mut files: Vec<(String, Content)> = Vec::new();
    let mut add = |name: &str, bytes: Vec<u8>| files.push((name.to_owned(), Content::Bytes(bytes)));

    progress.start("logs");
    let log_files = logs(&input.dir);
    progress.finish();

    progress.start("status and counters");
    let status = match &input.status {
        Some(s) => serde_json::to_value(s).unwrap_or_default(),
        None => {
            json!({"note": "made offline by `wirecap report`: no live status or counters history"})
        }
    };
    add("status.json", pretty(&status));
    progress.finish();

    progress.start("configuration");
    let cfg = input.dir.join(crate::config::CONFIG_FILE);
    let cfg_text = match std::fs::read_to_string(&cfg) {
        Ok(t) => redact(&t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "# no wirecap.toml\n".into(),
        Err(e) => format!("# cannot read wirecap.toml: {e}\n"),
    };
    add("config.toml", cfg_text.into_bytes());
    progress.finish();

    progress.start("users");
    add("users.json", pretty(&users(&input.dir)));
    progress.finish();

    progress.start("streams");
    add("streams.json", pretty(&streams(&input.dir)));
    progress.finish();

    progress.start("interfaces");
    add("interfaces.json", pretty(&interfaces()));
    add("ip-addr.txt", command("ip", &["-d", "addr"]));
    progress.finish();

    progress.start("system");
    add("system.json", pretty(&system(input)));
    add("meminfo.txt", read_or_note(Path::new("/proc/meminfo")));
    add("os-release.txt", read_or_note(Path::new("/etc/os-release")));
    progress.finish();

    let mut files = {
        let mut all = log_files;
        all.append(&mut files);
        all
    };

    progress.start("archive");
    let list_text = filelist(&files).map_err(io_at(&input.dir.join(crate::config::LOG_DIR)))?;
    files.push((
        "filelist".into(),
        Content::Bytes(list_text.clone().into_bytes()),
    ));
    progress.finish();

    progress.start(if input.recipient.is_some() {
        "compression and encryption"
    } else {
        "compression"
    });
    let up = input.dir.join(UPLOAD_DIR);
    std::fs::create_dir_all(&up).map_err(io_at(&up))?;
    let ext = if input.recipient.is_some() {
        ".tar.gz.age"
    } else {
        ".tar.gz"
    };
    let part = up.join(format!(".{base}{ext}.part-{}", std::process::id()));
    let _ = std::fs::remove_file(&part);
    let result = write_archive(&part, &base, &files, input);
    let file = match result {
        Ok(f) => f,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
    };
    drop(file);
    let mut path = up.join(format!("{base}{ext}"));
    let mut n = 1;
    while path.exists() {
        n += 1;
        path = up.join(format!("{base}-{n}{ext}"));
    }
    std::fs::rename(&part, &path).map_err(io_at(&path))?;
    std::fs::File::open(&up)
        .and_then(|d| d.sync_all())
        .map_err(io_at(&up))?;
    progress.finish();

    // As on the appliance: `upload/report.tar.gz` points at the newest report and
    // `upload/filelist` lists its files, for an operator who scp's them off by hand.
    let latest = up.join(format!("report{ext}"));
    let tmp = up.join(format!(".report{ext}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    if let Some(target) = path.file_name() {
        std::os::unix::fs::symlink(target, &tmp)
            .and_then(|()| std::fs::rename(&tmp, &latest))
            .map_err(io_at(&latest))?;
    }
    crate::os::write_atomically_mode(&up.join("filelist"), list_text.as_bytes(), 0o600)
        .map_err(io_at(&up.join("filelist")))?;
    // Reports hold logs: a box left alone for a year must not fill its disk with them.
    for (old, _, _) in list(&input.dir).into_iter().skip(KEEP_REPORTS) {
        let _ = std::fs::remove_file(up.join(old));
    }
    for link in ["report.tar.gz", "report.tar.gz.age"] {
        let l = up.join(link);
        if l.is_symlink() && !l.exists() {
            let _ = std::fs::remove_file(l);
        }
    }
    Ok(path)
}

/// Copies a finished report elsewhere too (`wirecap report -o FILE`).
pub fn copy_to(from: &Path, to: &Path) -> Result<(), ReportError> {
    std::fs::copy(from, to).map(drop).map_err(io_at(to))
}

/// A report file's name as the download route accepts it.
pub fn valid_file_name(name: &str) -> bool {
    name.starts_with("report_")
        && (name.ends_with(".tar.gz") || name.ends_with(".tar.gz.age"))
        && !name.contains('/')
        && !name.starts_with('.')
        && name.len() <= 200
}

/// The reports in `DIR/upload/`, newest first: (file, bytes, modified ns).
pub fn list(dir: &Path) -> Vec<(String, u64, u64)> {
    let mut out: Vec<(String, u64, u64)> = std::fs::read_dir(dir.join(UPLOAD_DIR))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if !valid_file_name(&name) {
                        return None;
                    }
                    let m = e.metadata().ok()?;
                    let t = m
                        .modified()
                        .ok()?
                        .duration_since(std::time::UNIX_EPOCH)
                        .ok()?
                        .as_nanos() as u64;
                    Some((name, m.len(), t))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    out
}

/// Where a background build stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    Running,
    Done { file: String },
    Failed { error: String },
}

#[derive(Debug)]
pub struct Job {
    pub id: u64,
    pub started_ns: u64,
    pub progress: Progress,
    state: Mutex<JobState>,
}

impl Job {
    pub fn state(&self) -> JobState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The job as the API shows it.
    pub fn to_json(&self) -> Value {
        let st = self.state();
        let (state, file, error) = match &st {
            JobState::Running => ("running", None, None),
            JobState::Done { file } => ("done", Some(file.clone()), None),
            JobState::Failed { error } => ("failed", None, Some(error.clone())),
        };
        json!({
            "id": self.id,
            "state": state,
            "steps_done": self.progress.done(),
            "steps_total": STEPS,
            "step": self.progress.step(),
            "started": wirecap_store::timefmt::rfc3339(self.started_ns),
            "file": file,
            "download": file.as_ref().map(|f| format!("/api/v1/reports/{f}")),
            "error": error,
        })
    }
}

/// The server's report builds: one at a time, each kept (for its progress) until the
/// server stops.
#[derive(Debug, Default)]
pub struct Jobs {
    next: AtomicU64,
    jobs: Mutex<HashMap<u64, Arc<Job>>>,
}

impl Jobs {
    /// Starts building `input` on a new thread; refuses while one runs.
    pub fn start(&self, input: Input) -> Result<Arc<Job>, ReportError> {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(j) = jobs.values().find(|j| j.state() == JobState::Running) {
            return Err(ReportError::Busy(j.id));
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let job = Arc::new(Job {
            id,
            started_ns: input.now_ns,
            progress: Progress::default(),
            state: Mutex::new(JobState::Running),
        });
        // Keep the last 100 jobs' answers.
        if jobs.len() >= 100
            && let Some(oldest) = jobs.keys().min().copied()
        {
            jobs.remove(&oldest);
        }
        jobs.insert(id, job.clone());
        drop(jobs);
        let j = job.clone();
        std::thread::Builder::new()
            .name("wc-report".into())
            .spawn(move || {
                let end = match build(&input, &j.progress) {
                    Ok(p) => {
                        let file = p
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        tracing::info!(%file, "system report made");
                        JobState::Done { file }
                    }
                    Err(e) => {
                        tracing::error!("system report failed: {e}");
                        JobState::Failed {
                            error: e.to_string(),
                        }
                    }
                };
                *j.state.lock().unwrap_or_else(|e| e.into_inner()) = end;
            })
            .map_err(|source| ReportError::Io {
                path: PathBuf::from("(thread)"),
                source,
            })?;
        Ok(job)
    }

    pub fn get(&self, id: u64) -> Option<Arc<Job>> {
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_host_and_utc_time() {
        // 2025-06-20 18:36:47 UTC
        assert_eq!(
            base_name("probe-1", 1_750_444_607_000_000_000),
            "report_probe-1_20250620_183647"
        );
        assert!(valid_file_name("report_a_20250620_183647.tar.gz"));
        assert!(valid_file_name("report_a_20250620_183647.tar.gz.age"));
        assert!(!valid_file_name("../report_a.tar.gz"));
        assert!(!valid_file_name("users.json"));
    }

    #[test]
    fn secrets_are_removed_and_paths_kept() {
        let t = "hostname = \"h\"\n# admin password is hunter2\n[tls]\ncert = \"/c.pem\"\nkey = \"/k.pem\"\n\
                 [s3]\naccess_key = \"AK\"\nsecret_key = \"SK\"\nbucket = \"b\"\n[[hooks]]\ntoken = \"T\"\nurl = \"u\"\n";
        let r = redact(t);
        assert!(
            r.contains("/k.pem") && r.contains("/c.pem") && r.contains("bucket"),
            "{r}"
        );
        for secret in ["hunter2", "\"AK\"", "\"SK\"", "\"T\""] {
            assert!(!r.contains(secret), "{secret} left in:\n{r}");
        }
        assert!(r.contains("<removed>"));
        let broken = redact("a = 1\npassword = \"hunter2\n");
        assert!(!broken.contains("hunter2"), "{broken}");
        assert!(broken.contains("line 2"), "{broken}");
    }

    #[test]
    fn a_report_lists_what_it_holds() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("log")).unwrap();
        std::fs::write(d.path().join("log/wirecap.2025-01-01.log"), "hello log\n").unwrap();
        let p = Progress::default();
        let id = age::x25519::Identity::generate();
        let input = Input {
            dir: d.path().to_owned(),
            hostname: "h1".into(),
            status: None,
            recipient: Some(id.to_public()),
            now_ns: 1_750_444_607_000_000_000,
        };
        let path = build(&input, &p).unwrap();
        assert_eq!(p.done(), STEPS);
        assert!(
            path.to_string_lossy()
                .ends_with("report_h1_20250620_183647.tar.gz.age")
        );
        let plain = age::decrypt(&id, &std::fs::read(&path).unwrap()).unwrap();
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(plain.as_slice()));
        let mut names = Vec::new();
        for e in ar.entries().unwrap() {
            names.push(e.unwrap().path().unwrap().to_string_lossy().into_owned());
        }
        assert!(
            names.contains(&"report_h1_20250620_183647/log/wirecap.2025-01-01.log".to_owned()),
            "{names:?}"
        );
        assert!(names.iter().any(|n| n.ends_with("/filelist")));
        let latest = d.path().join("upload/report.tar.gz.age");
        assert_eq!(
            std::fs::read(&latest).unwrap(),
            std::fs::read(&path).unwrap()
        );
        assert!(
            std::fs::read_to_string(d.path().join("upload/filelist"))
                .unwrap()
                .contains("log/wirecap.2025-01-01.log")
        );
    }
}
