//! Interfaces and their state, read from sysfs (`/sys/class/net/IF/…`).
//!
//! Everything here is what the kernel says, or `None` when it says nothing usable: a veth
//! or a link that is down reports speed `-1` or an `EINVAL` read, which becomes
//! `speed_mbps: None`, never a made-up number. The sysfs root is a parameter so that a
//! namespace's own sysfs (mounted from inside it) or a test tree can be read.

use crate::counters::LinkStatus;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The usual sysfs network class directory.
pub const SYS_CLASS_NET: &str = "/sys/class/net";

/// Interface counters from `statistics/`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkCounters {
    /// rx_packets
    pub rx_packets: u64,
    /// rx_bytes
    pub rx_bytes: u64,
    /// rx_dropped
    pub rx_dropped: u64,
    /// rx_errors
    pub rx_errors: u64,
    /// rx_missed_errors (NIC FIFO overruns)
    pub rx_missed_errors: u64,
    /// tx_packets
    pub tx_packets: u64,
    /// tx_bytes
    pub tx_bytes: u64,
}

/// One interface's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// Interface name.
    pub name: String,
    /// `operstate` (`up`, `down`, `unknown`, `lowerlayerdown`, …).
    pub operstate: String,
    /// `carrier` (unreadable while administratively down: `None`).
    pub carrier: Option<bool>,
    /// Link up: operstate `up`, or operstate `unknown` with carrier (some drivers, e.g. tun).
    pub up: bool,
    /// Speed in Mb/s; `None` when unknown.
    pub speed_mbps: Option<u32>,
    /// MAC address as sysfs prints it.
    pub mac: Option<String>,
    /// MTU.
    pub mtu: Option<u32>,
    /// Driver name from the `device/driver` link (`None` for virtual devices).
    pub driver: Option<String>,
    /// Counters.
    pub counters: LinkCounters,
}

fn read_trim(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok().map(|s| s.trim().to_owned())
}

fn read_num<T: std::str::FromStr>(p: &Path) -> Option<T> {
    read_trim(p)?.parse().ok()
}

/// Parses sysfs `speed`: a positive number of Mb/s, else unknown.
pub fn parse_speed(s: &str) -> Option<u32> {
    s.trim()
        .parse::<i64>()
        .ok()
        .filter(|&v| v > 0)
        .and_then(|v| u32::try_from(v).ok())
}

/// Reads interface state from a sysfs net class directory.
#[derive(Debug, Clone)]
pub struct Sysfs {
    root: PathBuf,
}

impl Default for Sysfs {
    fn default() -> Self {
        Self::new(SYS_CLASS_NET)
    }
}

impl Sysfs {
    /// Reads from `root` (normally `/sys/class/net`).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Names of all interfaces, sorted.
    pub fn interfaces(&self) -> std::io::Result<Vec<String>> {
        let mut v: Vec<String> = std::fs::read_dir(&self.root)?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        Ok(v)
    }

    /// The state of interface `name`; `None` if it does not exist.
    pub fn read(&self, name: &str) -> Option<LinkInfo> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return None;
        }
        let d = self.root.join(name);
        if !d.is_dir() {
            return None;
        }
        let operstate = read_trim(&d.join("operstate")).unwrap_or_else(|| "unknown".into());
        let carrier = read_trim(&d.join("carrier")).map(|s| s == "1");
        let up = operstate == "up" || (operstate == "unknown" && carrier == Some(true));
        let stat = |n: &str| read_num::<u64>(&d.join("statistics").join(n)).unwrap_or(0);
        Some(LinkInfo {
            name: name.to_owned(),
            up,
            carrier,
            speed_mbps: read_trim(&d.join("speed")).as_deref().and_then(parse_speed),
            mac: read_trim(&d.join("address")),
            mtu: read_num(&d.join("mtu")),
            driver: std::fs::read_link(d.join("device/driver"))
                .ok()
                .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned())),
            counters: LinkCounters {
                rx_packets: stat("rx_packets"),
                rx_bytes: stat("rx_bytes"),
                rx_dropped: stat("rx_dropped"),
                rx_errors: stat("rx_errors"),
                rx_missed_errors: stat("rx_missed_errors"),
                tx_packets: stat("tx_packets"),
                tx_bytes: stat("tx_bytes"),
            },
            operstate,
        })
    }

    /// Every interface's state.
    pub fn list(&self) -> std::io::Result<Vec<LinkInfo>> {
        Ok(self
            .interfaces()?
            .iter()
            .filter_map(|n| self.read(n))
            .collect())
    }
}

/// Watches one link and remembers when it last came up (sans-I/O: feed it observations).
#[derive(Debug, Clone)]
pub struct LinkWatch {
    interface: String,
    up_since: Option<Instant>,
    last_up: Option<bool>,
    speed: Option<u32>,
    transitions: u64,
}

impl LinkWatch {
    /// A watch of `interface`, nothing observed yet.
    pub fn new(interface: impl Into<String>) -> Self {
        Self {
            interface: interface.into(),
            up_since: None,
            last_up: None,
            speed: None,
            transitions: 0,
        }
    }

    /// Records an observation made at `now` (`None`: the interface is gone or unreadable).
    pub fn observe(&mut self, info: Option<&LinkInfo>, now: Instant) {
        let up = info.map(|i| i.up);
        match up {
            Some(true) if self.last_up != Some(true) => {
                self.up_since = Some(now);
                if self.last_up.is_some() {
                    self.transitions += 1;
                }
            }
            Some(true) => {}
            _ => {
                if self.last_up == Some(true) {
                    self.transitions += 1;
                }
                self.up_since = None;
            }
        }
        self.last_up = up;
        self.speed = info.and_then(|i| i.speed_mbps);
    }

    /// Up/down transitions seen.
    pub fn transitions(&self) -> u64 {
        self.transitions
    }

    /// The status for the counters.
    pub fn status(&self, now: Instant) -> LinkStatus {
        LinkStatus {
            interface: Some(self.interface.clone()),
            up: self.last_up,
            speed_mbps: self.speed,
            uptime: self.up_since.map(|t| now.saturating_duration_since(t)),
        }
    }
}

/// Renders a duration as the appliance does: `0D 3H 36M`.
pub fn format_uptime(d: Duration) -> String {
    let m = d.as_secs() / 60;
    format!("{}D {}H {}M", m / 1440, (m / 60) % 24, m % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speed_unknown_is_none() {
        assert_eq!(parse_speed("10000\n"), Some(10000));
        assert_eq!(parse_speed("-1"), None);
        assert_eq!(parse_speed(""), None);
        assert_eq!(parse_speed("0"), None);
    }

    #[test]
    fn reads_a_fake_sysfs_tree() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("eth9");
        std::fs::create_dir_all(d.join("statistics")).unwrap();
        std::fs::write(d.join("operstate"), "up\n").unwrap();
        std::fs::write(d.join("carrier"), "1\n").unwrap();
        std::fs::write(d.join("speed"), "25000\n").unwrap();
        std::fs::write(d.join("address"), "02:00:00:00:00:01\n").unwrap();
        std::fs::write(d.join("mtu"), "9000\n").unwrap();
        std::fs::write(d.join("statistics/rx_packets"), "42\n").unwrap();
        let s = Sysfs::new(t.path());
        let i = s.read("eth9").unwrap();
        assert!(i.up);
        assert_eq!(i.speed_mbps, Some(25000));
        assert_eq!(i.mtu, Some(9000));
        assert_eq!(i.counters.rx_packets, 42);
        assert_eq!(i.driver, None);
        assert!(s.read("nope").is_none());
        assert!(s.read("../etc").is_none());
        assert_eq!(s.interfaces().unwrap(), vec!["eth9".to_string()]);
    }

    #[test]
    fn watch_tracks_up_transitions() {
        let t0 = Instant::now();
        let mut info = LinkInfo {
            name: "x".into(),
            operstate: "up".into(),
            carrier: Some(true),
            up: true,
            speed_mbps: None,
            mac: None,
            mtu: None,
            driver: None,
            counters: LinkCounters::default(),
        };
        let mut w = LinkWatch::new("x");
        w.observe(Some(&info), t0);
        assert_eq!(
            w.status(t0 + Duration::from_secs(5)).uptime,
            Some(Duration::from_secs(5))
        );
        info.up = false;
        w.observe(Some(&info), t0 + Duration::from_secs(6));
        assert_eq!(w.status(t0 + Duration::from_secs(7)).up, Some(false));
        assert_eq!(w.status(t0 + Duration::from_secs(7)).uptime, None);
        info.up = true;
        w.observe(Some(&info), t0 + Duration::from_secs(8));
        assert_eq!(
            w.status(t0 + Duration::from_secs(9)).uptime,
            Some(Duration::from_secs(1))
        );
        assert_eq!(w.transitions(), 2);
        assert_eq!(
            format_uptime(Duration::from_secs(3 * 3600 + 36 * 60 + 5)),
            "0D 3H 36M"
        );
    }
}
