//! `wirecap update upload|list|activate`: the software update of a running appliance,
//! as a client of `wirecap serve`; and the hidden watchdog a restarting server spawns.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::client_cmd::{Client, Conn, reason};

#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    #[command(subcommand)]
    cmd: UpdateCmd,
}

#[derive(Debug, clap::Subcommand)]
enum UpdateCmd {
    /// Upload a release archive (from `wirecap release pack`); the server checks and installs it
    Upload {
        #[command(flatten)]
        conn: Conn,
        /// The wirecap-VERSION.tar.gz
        file: PathBuf,
    },
    /// List installed releases, the running and selected one, and the update history
    List {
        #[command(flatten)]
        conn: Conn,
    },
    /// Select an installed release and restart the server into it (captures are sealed;
    /// a release that does not come up healthy is rolled back)
    Activate {
        #[command(flatten)]
        conn: Conn,
        version: String,
        /// Wait up to this many seconds for the server to come back and report its outcome
        #[arg(long, value_name = "SECS", default_value_t = 90)]
        wait: u64,
    },
}

/// Arguments of the hidden `update-watchdog` subcommand (see `wirecap_appliance::update`).
#[derive(Debug, clap::Args)]
pub struct WatchdogArgs {
    /// Data directory of the server that is restarting
    data: PathBuf,
}

pub fn watchdog(a: WatchdogArgs) -> Result<ExitCode> {
    wirecap_appliance::update::watchdog(&a.data).map_err(anyhow::Error::msg)?;
    Ok(ExitCode::SUCCESS)
}

fn releases(c: &Client) -> Result<Value> {
    let (code, body) = c.text("/api/v1/releases", &[])?;
    if code != 200 {
        bail!("HTTP {code}: {}", reason(&body));
    }
    serde_json::from_str(&body).context("the server's answer is not JSON")
}

pub fn run(a: UpdateArgs) -> Result<ExitCode> {
    match a.cmd {
        UpdateCmd::Upload { conn, file } => {
            let c = Client::new(&conn)?;
            let f = std::fs::File::open(&file).with_context(|| file.display().to_string())?;
            let (code, body) = c.post("/api/v1/releases", "application/gzip", f)?;
            if code != 200 && code != 201 {
                bail!("upload refused (HTTP {code}): {}", reason(&body));
            }
            let v: Value = serde_json::from_str(&body).unwrap_or_default();
            println!(
                "{} release {} (sha256 {}{})",
                if code == 201 {
                    "installed"
                } else {
                    "already installed:"
                },
                v["version"].as_str().unwrap_or("?"),
                v["sha256"].as_str().unwrap_or("?"),
                if v["signed_by"].is_string() {
                    ", signed"
                } else {
                    ""
                }
            );
        }
        UpdateCmd::List { conn } => {
            let c = Client::new(&conn)?;
            let v = releases(&c)?;
            println!(
                "running: {} ({}), pid {}",
                v["running"]["version"].as_str().unwrap_or("?"),
                v["running"]["path"].as_str().unwrap_or("?"),
                v["running"]["pid"]
            );
            for r in v["releases"].as_array().into_iter().flatten() {
                let mark = match (r["running"].as_bool(), r["selected"].as_bool()) {
                    (Some(true), _) => "running ",
                    (_, Some(true)) => "selected",
                    _ => "        ",
                };
                println!(
                    "{mark} {:<20} {} installed {}",
                    r["version"].as_str().unwrap_or("?"),
                    r["sha256"].as_str().unwrap_or("?"),
                    r["installed"].as_str().unwrap_or("?")
                );
            }
            for h in v["history"].as_array().into_iter().flatten() {
                println!(
                    "{}  {:<12} {} {}",
                    h["at"].as_str().unwrap_or(""),
                    h["event"].as_str().unwrap_or(""),
                    h["version"].as_str().unwrap_or(""),
                    h["detail"].as_str().unwrap_or("")
                );
            }
        }
        UpdateCmd::Activate {
            conn,
            version,
            wait,
        } => {
            let c = Client::new(&conn)?;
            let (code, body) = c.post(
                &format!("/api/v1/releases/{version}/activate"),
                "application/json",
                "{}",
            )?;
            if code != 202 {
                bail!("activate refused (HTTP {code}): {}", reason(&body));
            }
            let v: Value = serde_json::from_str(&body).unwrap_or_default();
            if let Some(s) = v["sealed"].as_str() {
                println!("sealed capture {s}");
            }
            println!("restarting into {version} …");
            let deadline = Instant::now() + Duration::from_secs(wait);
            // The server is down while it restarts: retry until it answers with an outcome.
            while Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(500));
                let Ok(now) = releases(&c) else { continue };
                if now["pending"].is_null() {
                    // The outcome is what follows the last activation of this version.
                    let h = now["history"].as_array().cloned().unwrap_or_default();
                    let Some(from) = h.iter().rposition(|e| {
                        e["event"] == "activated" && e["version"].as_str() == Some(&version)
                    }) else {
                        continue;
                    };
                    let events = &h[from..];
                    if let Some(e) = events
                        .iter()
                        .rev()
                        .find(|e| matches!(e["event"].as_str(), Some("healthy" | "rolled back")))
                    {
                        println!(
                            "{} {}: {}",
                            e["event"].as_str().unwrap_or(""),
                            e["version"].as_str().unwrap_or(""),
                            e["detail"].as_str().unwrap_or("")
                        );
                        return Ok(if e["event"] == "healthy" {
                            ExitCode::SUCCESS
                        } else {
                            ExitCode::from(1)
                        });
                    }
                }
            }
            bail!(
                "the server did not report the outcome within {wait} s; see `wirecap update list`"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
