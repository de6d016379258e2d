//! `wirecap schedule`, `wirecap retention`, `wirecap pin`: offline edits of the data
//! directory. Config changes go through the server's atomic `config::update`; a running
//! server notices the file's new modification time and applies it within a second.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use wirecap_appliance::config::{self, FileConfig};
use wirecap_appliance::retention::{self, RetentionConfig};
use wirecap_appliance::schedule::ScheduleConfig;

#[derive(Debug, clap::Args)]
pub struct ScheduleArgs {
    #[command(subcommand)]
    cmd: ScheduleCmd,
}

#[derive(Debug, clap::Subcommand)]
enum ScheduleCmd {
    /// List schedules with their next start and stop and last event
    List {
        #[arg(long, env = "WIRECAP_DATA", value_name = "DIR")]
        data: PathBuf,
    },
    /// Add (or with --replace, change) a schedule: --cron with --duration, or --days with
    /// --start and --stop
    Add(AddArgs),
    /// Remove a schedule (a running scheduled capture is stopped by the server)
    Remove {
        #[arg(long, env = "WIRECAP_DATA", value_name = "DIR")]
        data: PathBuf,
        name: String,
    },
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
wirecap schedule add --data D office --days mon,tue,wed,thu,fri --start 08:00 --stop 18:00 --timezone Europe/Berlin\n  \
wirecap schedule add --data D nightly --cron '0 2 * * *' --duration 1h30m\n  \
wirecap schedule add --data D burst --cron '*/30 * * * * *' --duration 10s   # with seconds")]
pub struct AddArgs {
    #[arg(long, env = "WIRECAP_DATA", value_name = "DIR")]
    data: PathBuf,
    /// Schedule name (letters, digits, _ - .)
    name: String,
    /// Cron start times: 5 fields, or 6 with seconds first
    #[arg(long, requires = "duration", conflicts_with_all = ["days", "start", "stop"])]
    cron: Option<String>,
    /// How long each cron window lasts: 1h30m, 90s, PT2H
    #[arg(long)]
    duration: Option<String>,
    /// Days of a weekly window: mon,tue,… or daily
    #[arg(long, value_delimiter = ',', requires_all = ["start", "stop"])]
    days: Option<Vec<String>>,
    /// Local start time of the window, HH:MM[:SS]
    #[arg(long)]
    start: Option<String>,
    /// Local stop time of the window (before start: the next day)
    #[arg(long)]
    stop: Option<String>,
    /// IANA time zone (default: the file's timezone, else UTC)
    #[arg(long)]
    timezone: Option<String>,
    /// Base name of the streams (default: the schedule's name)
    #[arg(long)]
    stream: Option<String>,
    /// Add it disabled
    #[arg(long)]
    disabled: bool,
    /// Replace a schedule of that name instead of refusing
    #[arg(long)]
    replace: bool,
}

pub fn schedule(a: ScheduleArgs) -> Result<ExitCode> {
    match a.cmd {
        ScheduleCmd::List { data } => list(&data),
        ScheduleCmd::Add(add) => {
            let c = ScheduleConfig {
                name: add.name.clone(),
                cron: add.cron,
                duration: add.duration,
                days: add.days,
                start: add.start,
                stop: add.stop,
                timezone: add.timezone,
                stream: add.stream,
                enabled: !add.disabled,
            };
            let name = add.name.clone();
            let replace = add.replace;
            update(
                &add.data,
                &format!("schedule {name} added by `wirecap schedule add`"),
                |f| {
                    c.validate(f.timezone.as_deref())
                        .map_err(|e| e.to_string())?;
                    match f.schedule.iter_mut().find(|s| s.name == c.name) {
                        Some(_) if !replace => {
                            return Err(format!(
                                "a schedule named {name:?} exists; give --replace to change it"
                            ));
                        }
                        Some(s) => *s = c,
                        None => f.schedule.push(c),
                    }
                    Ok(())
                },
            )?;
            println!("schedule {} saved", add.name);
            Ok(ExitCode::SUCCESS)
        }
        ScheduleCmd::Remove { data, name } => {
            update(
                &data,
                &format!("schedule {name} removed by `wirecap schedule remove`"),
                |f| {
                    let n = f.schedule.len();
                    f.schedule.retain(|s| s.name != name);
                    if f.schedule.len() == n {
                        return Err(format!("no schedule named {name:?}"));
                    }
                    Ok(())
                },
            )?;
            println!("schedule {name} removed");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn update(
    data: &std::path::Path,
    why: &str,
    change: impl FnOnce(&mut FileConfig) -> Result<(), String>,
) -> Result<FileConfig> {
    std::fs::create_dir_all(data).with_context(|| data.display().to_string())?;
    config::update(data, why, change).map_err(|e| anyhow::anyhow!("{e}"))
}

fn list(data: &std::path::Path) -> Result<ExitCode> {
    let f = FileConfig::load(data).map_err(|e| anyhow::anyhow!("{e}"))?;
    let state: serde_json::Value =
        std::fs::read(data.join(wirecap_appliance::scheduler::STATE_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
    let now = jiff::Timestamp::now();
    let show =
        |t: jiff::Timestamp| wirecap_store::timefmt::rfc3339(t.as_nanosecond().max(0) as u64);
    for c in &f.schedule {
        let s = c
            .validate(f.timezone.as_deref())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let when = match (&c.cron, &c.days) {
            (Some(cron), _) => format!("cron {cron:?} for {}", c.duration.as_deref().unwrap_or("")),
            (None, Some(days)) => format!(
                "{} {}-{}",
                days.join(","),
                c.start.as_deref().unwrap_or(""),
                c.stop.as_deref().unwrap_or("")
            ),
            _ => String::new(),
        };
        let (next_start, next_stop) = match (s.enabled, s.window_at(now), s.next_window(now)) {
            (false, ..) => ("disabled".to_owned(), String::new()),
            (true, Some(open), _) => ("open now".to_owned(), show(open.stop)),
            (true, None, Some(n)) => (show(n.start), show(n.stop)),
            (true, None, None) => ("never".to_owned(), String::new()),
        };
        let last = state
            .get(&c.name)
            .and_then(|r| r.get("last_event"))
            .and_then(|e| {
                Some(format!(
                    "{} {}",
                    e.get("at")?.as_str()?,
                    e.get("text")?.as_str()?
                ))
            })
            .unwrap_or_else(|| "-".into());
        println!(
            "{}\t{when}\ttz={}\tstream={}\tnext_start={next_start}\tnext_stop={next_stop}\tlast_event={last}",
            c.name,
            s.tz.iana_name().unwrap_or("UTC"),
            s.stream,
        );
    }
    if f.schedule.is_empty() {
        eprintln!("no schedules (add one with `wirecap schedule add`)");
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Args)]
pub struct RetentionArgs {
    #[arg(long, env = "WIRECAP_DATA", value_name = "DIR")]
    data: PathBuf,
    /// Set the disk budget: bytes (50GB, 500MB, 2TiB) or a share of the disk (80%); `none`
    /// removes it
    #[arg(long)]
    budget: Option<String>,
    /// Set the high watermark (fraction of the budget where deleting starts)
    #[arg(long)]
    high: Option<f64>,
    /// Set the low watermark (fraction where it stops)
    #[arg(long)]
    low: Option<f64>,
    /// Set the segment size of new captures (retention's unit in a running capture)
    #[arg(long)]
    segment: Option<String>,
}

pub fn retention(a: RetentionArgs) -> Result<ExitCode> {
    let mut f = FileConfig::load(&a.data).map_err(|e| anyhow::anyhow!("{e}"))?;
    if a.budget.is_some() || a.high.is_some() || a.low.is_some() || a.segment.is_some() {
        f = update(&a.data, "retention changed by `wirecap retention`", |c| {
            let r: &mut RetentionConfig = &mut c.retention;
            if let Some(b) = &a.budget {
                r.budget = (b != "none").then(|| b.clone());
            }
            if a.high.is_some() {
                r.high_watermark = a.high;
            }
            if a.low.is_some() {
                r.low_watermark = a.low;
            }
            if a.segment.is_some() {
                r.segment = a.segment.clone();
            }
            r.validate().map(|_| ())
        })?;
    }
    let p = f.retention.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
    let store = wirecap_store::Store::open(&a.data)?;
    let layouts = retention::layouts(&store)?;
    let used: u64 = layouts.iter().map(|l| l.info.disk_bytes).sum();
    let budget = p.budget_bytes(&a.data);
    match (f.retention.budget.as_deref(), budget) {
        (Some(b), Some(bytes)) => println!(
            "budget\t{b} = {bytes} bytes (delete above {:.0}%, down to {:.0}%)",
            p.high * 100.0,
            p.low * 100.0
        ),
        _ => println!("budget\tnone (nothing is deleted automatically; set one with --budget)"),
    }
    match budget {
        Some(b) => println!(
            "used\t{used} bytes ({:.1}% of the budget)",
            used as f64 * 100.0 / b as f64
        ),
        None => println!("used\t{used} bytes"),
    }
    let oldest = layouts
        .iter()
        .filter_map(|l| l.info.first_ts.map(|t| (t, l.name.as_str())))
        .min();
    match oldest {
        Some((t, n)) => println!("oldest\t{} in {n}", wirecap_store::timefmt::rfc3339(t)),
        None => println!("oldest\tno packets on disk"),
    }
    if let Some(s) = p.segment_bytes {
        println!("segment\t{s} bytes");
    }
    let pinned: Vec<&str> = layouts
        .iter()
        .filter(|l| l.info.pinned)
        .map(|l| l.name.as_str())
        .collect();
    println!(
        "pinned\t{}",
        if pinned.is_empty() {
            "none".to_owned()
        } else {
            pinned.join(" ")
        }
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Args)]
pub struct PinArgs {
    #[arg(long, env = "WIRECAP_DATA", value_name = "DIR")]
    data: PathBuf,
    /// Full stored stream name
    name: String,
    /// Unpin instead
    #[arg(long)]
    off: bool,
}

pub fn pin(a: PinArgs) -> Result<ExitCode> {
    let store = wirecap_store::Store::open(&a.data)?;
    if a.name.is_empty() {
        bail!("give a stream name");
    }
    store.set_pinned(&a.name, !a.off)?;
    println!(
        "{} {}",
        a.name,
        if a.off {
            "unpinned: retention may delete it"
        } else {
            "pinned: retention never deletes it"
        }
    );
    Ok(ExitCode::SUCCESS)
}
