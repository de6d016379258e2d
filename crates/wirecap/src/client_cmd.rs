//! The client commands: `status`, `start`, `stop`, `ls`, `get` against a running
//! `wirecap serve`, through the manual's HTTP API (so they work against the appliance too).

use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// Where the server is and who we are.
#[derive(Debug, Clone, clap::Args)]
pub struct Conn {
    /// Server URL (also from WIRECAP_URL)
    #[arg(
        long,
        env = "WIRECAP_URL",
        default_value = "https://127.0.0.1:8443",
        value_name = "URL"
    )]
    url: String,
    /// User name (also from WIRECAP_USER)
    #[arg(long, env = "WIRECAP_USER", default_value = "admin")]
    user: String,
    /// Password (also from WIRECAP_PASSWORD)
    #[arg(long, env = "WIRECAP_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Accept a self-signed certificate (the server's default one)
    #[arg(short = 'k', long, env = "WIRECAP_INSECURE")]
    insecure: bool,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    conn: Conn,
}

#[derive(Debug, clap::Args)]
pub struct StartArgs {
    #[command(flatten)]
    conn: Conn,
    /// Stream name; the server adds _YYYYMMDD_HHMM
    name: String,
}

#[derive(Debug, clap::Args)]
pub struct StopArgs {
    #[command(flatten)]
    conn: Conn,
}

#[derive(Debug, clap::Args)]
pub struct LsArgs {
    #[command(flatten)]
    conn: Conn,
}

#[derive(Debug, clap::Args)]
pub struct GetArgs {
    #[command(flatten)]
    conn: Conn,
    /// Full stored stream name (as `wirecap ls` shows it)
    name: String,
    /// View to take one split from (with --split)
    #[arg(long, value_name = "V", requires = "split")]
    view: Option<String>,
    /// Index of the split in the view (from 0)
    #[arg(long, value_name = "K", requires = "view")]
    split: Option<u64>,
    /// First packet time: ns since the epoch, ISO-8601 or 20150620_18:36:47.780.373.248
    #[arg(long, value_name = "T", conflicts_with = "view")]
    start: Option<String>,
    /// Stop time, exclusive
    #[arg(long, value_name = "T", conflicts_with = "view")]
    stop: Option<String>,
    /// Output file, or - for standard output
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    out: String,
}

pub(crate) struct Client {
    agent: ureq::Agent,
    base: String,
    auth: String,
}

impl Client {
    pub(crate) fn new(c: &Conn) -> Result<Self> {
        let password = c
            .password
            .clone()
            .context("no password: give --password or set WIRECAP_PASSWORD")?;
        let mut cfg = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)));
        if c.insecure {
            cfg = cfg.tls_config(
                ureq::tls::TlsConfig::builder()
                    .disable_verification(true)
                    .build(),
            );
        }
        use base64_lite::encode;
        Ok(Self {
            agent: cfg.build().into(),
            base: c.url.trim_end_matches('/').to_owned(),
            auth: format!(
                "Basic {}",
                encode(format!("{}:{password}", c.user).as_bytes())
            ),
        })
    }

    fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<ureq::http::Response<ureq::Body>> {
        let mut r = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("Authorization", &self.auth);
        for (k, v) in query {
            r = r.query(*k, *v);
        }
        r.call()
            .with_context(|| format!("cannot reach {}{path}", self.base))
    }

    /// POST `body` with `content_type`; returns the status and the body text.
    pub(crate) fn post(
        &self,
        path: &str,
        content_type: &str,
        body: impl ureq::AsSendBody,
    ) -> Result<(u16, String)> {
        let mut resp = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Authorization", &self.auth)
            .header("Content-Type", content_type)
            .send(body)
            .with_context(|| format!("cannot reach {}{path}", self.base))?;
        let status = resp.status().as_u16();
        let body = resp.body_mut().read_to_string()?;
        if status == 401 {
            bail!("the server refused the credentials (user, --password / WIRECAP_PASSWORD)");
        }
        Ok((status, body))
    }

    /// GET returning the body text; an HTTP error becomes an error with the server's reason.
    pub(crate) fn text(&self, path: &str, query: &[(&str, &str)]) -> Result<(u16, String)> {
        let mut resp = self.get(path, query)?;
        let status = resp.status().as_u16();
        let body = resp.body_mut().read_to_string()?;
        if status == 401 {
            bail!("the server refused the credentials (user, --password / WIRECAP_PASSWORD)");
        }
        Ok((status, body))
    }
}

/// The `Str` of the manual's JSON answers, the `error` of the JSON API's, or the body.
pub(crate) fn reason(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("Str")
                .or_else(|| v.get("error"))
                .and_then(|s| s.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| body.trim().to_owned())
}

pub fn status(a: StatusArgs) -> Result<ExitCode> {
    let c = Client::new(&a.conn)?;
    let (code, body) = c.text("/sysmaster/status", &[])?;
    if code != 200 {
        bail!("status: HTTP {code}: {}", reason(&body));
    }
    print!("{body}");
    Ok(ExitCode::SUCCESS)
}

pub fn start(a: StartArgs) -> Result<ExitCode> {
    let c = Client::new(&a.conn)?;
    let (code, body) = c.text("/sysmaster/capture_start", &[("StreamName", &a.name)])?;
    println!("{}", reason(&body));
    Ok(if code == 200 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn stop(a: StopArgs) -> Result<ExitCode> {
    let c = Client::new(&a.conn)?;
    let (code, body) = c.text("/sysmaster/capture_stop", &[])?;
    println!("{}", reason(&body));
    Ok(if code == 200 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn ls(a: LsArgs) -> Result<ExitCode> {
    let c = Client::new(&a.conn)?;
    let (code, body) = c.text("/plain/list", &[])?;
    if code != 200 {
        bail!("list: HTTP {code}: {}", reason(&body));
    }
    // The manual's CSV: name , bytes, packets, date, links — shown as a table.
    let mut out = std::io::stdout().lock();
    for line in body.lines().skip(1) {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        if f.len() >= 4 {
            writeln!(
                out,
                "{}  {:>12} packets  {:>15} bytes  {}",
                f[0], f[2], f[1], f[3]
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn get(a: GetArgs) -> Result<ExitCode> {
    let c = Client::new(&a.conn)?;
    let split = a.split.map(|k| k.to_string());
    let mut q: Vec<(&str, &str)> = vec![("StreamName", &a.name)];
    let path = if let (Some(v), Some(k)) = (&a.view, &split) {
        q.push(("StreamView", v));
        q.push(("Split", k));
        "/pcap/splittime"
    } else if a.start.is_some() || a.stop.is_some() {
        q.push(("Start", a.start.as_deref().unwrap_or("NULL")));
        q.push(("Stop", a.stop.as_deref().unwrap_or("NULL")));
        "/pcap/splittime"
    } else {
        "/pcap/single"
    };
    let mut resp = c.get(path, &q)?;
    let code = resp.status().as_u16();
    if code != 200 {
        let body = resp.body_mut().read_to_string().unwrap_or_default();
        bail!("get {}: HTTP {code}: {}", a.name, reason(&body));
    }
    let want: Option<u64> = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let mut body = resp.into_body().into_reader();
    let copied = if a.out == "-" {
        let mut lock = crate::output::capture_stdout("-o - | tcpdump -r -, or give -o FILE")?;
        let n = std::io::copy(&mut body, &mut lock)?;
        lock.flush()?;
        n
    } else {
        let mut part = crate::output::PartFile::create(&a.out)?;
        let n = copy_checked(&mut body, part.file(), want)
            .with_context(|| format!("downloading {}", a.name))?;
        part.file().sync_data()?;
        part.commit()?;
        n
    };
    if let Some(w) = want
        && w != copied
    {
        bail!("the server announced {w} bytes but sent {copied}");
    }
    eprintln!("wrote {copied} bytes of {} to {}", a.name, a.out);
    Ok(ExitCode::SUCCESS)
}

fn copy_checked(r: &mut impl Read, w: &mut impl Write, want: Option<u64>) -> Result<u64> {
    let n = std::io::copy(r, w)?;
    if let Some(want) = want
        && want != n
    {
        bail!("transfer cut short: {n} of {want} bytes");
    }
    Ok(n)
}

/// Base64 for one Basic-auth header (not worth a dependency).
mod base64_lite {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode(b: &[u8]) -> String {
        let mut s = String::with_capacity(b.len().div_ceil(3) * 4);
        for c in b.chunks(3) {
            let n = (u32::from(c[0]) << 16)
                | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
                | u32::from(*c.get(2).unwrap_or(&0));
            for i in 0..4 {
                if i <= c.len() {
                    s.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    s.push('=');
                }
            }
        }
        s
    }

    #[cfg(test)]
    #[test]
    fn encodes_like_rfc4648() {
        assert_eq!(encode(b""), "");
        assert_eq!(encode(b"f"), "Zg==");
        assert_eq!(encode(b"fo"), "Zm8=");
        assert_eq!(encode(b"foo"), "Zm9v");
        assert_eq!(encode(b"admin:secret"), "YWRtaW46c2VjcmV0");
    }
}
