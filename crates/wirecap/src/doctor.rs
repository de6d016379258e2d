//! `wirecap doctor`: checks the host for what a capture appliance needs and says what to
//! fix, one line per check (`OK`, `WARN`, `FAIL`); any FAIL makes the exit status 1.
//!
//! The checks read what the kernel reports (`/proc/self/status`, `getrlimit`, `statvfs`,
//! sysfs, the ethtool ioctl, `adjtimex`, `uname`): they never change the host.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use wirecap_capture::link::Sysfs;
use wirecap_capture::ring::sys::ethtool;

/// The user `wirecap install` creates and the service runs as.
pub const SERVICE_USER: &str = "wirecap";

#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// Data directory to check (also from WIRECAP_DATA); default /var/lib/wirecap
    #[arg(long, env = "WIRECAP_DATA", value_name = "DIR")]
    data: Option<PathBuf>,
    /// Capture interface to check (default: `[capture] interface` of DIR/wirecap.toml)
    #[arg(long, short = 'i', value_name = "IF")]
    interface: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub level: Level,
    pub detail: String,
    /// What to do about a WARN or FAIL.
    pub fix: Option<String>,
}

impl Check {
    fn ok(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            level: Level::Ok,
            detail: detail.into(),
            fix: None,
        }
    }
    fn warn(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            name,
            level: Level::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
    fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            name,
            level: Level::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn line(&self) -> String {
        let tag = match self.level {
            Level::Ok => "OK  ",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        };
        match &self.fix {
            Some(f) => format!("{tag} {:<14} {} — fix: {f}", self.name, self.detail),
            None => format!("{tag} {:<14} {}", self.name, self.detail),
        }
    }
}

const CAP_NET_ADMIN: u32 = 12;
const CAP_NET_RAW: u32 = 13;
const CAP_IPC_LOCK: u32 = 14;

/// The effective capability mask from the text of `/proc/PID/status`.
pub fn effective_caps(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
}

fn caps_check(caps: Option<u64>) -> Check {
    let Some(caps) = caps else {
        return Check::warn(
            "capabilities",
            "cannot read CapEff from /proc/self/status",
            "run on Linux with /proc mounted",
        );
    };
    let has = |bit: u32| caps & (1 << bit) != 0;
    let missing: Vec<&str> = [
        (CAP_NET_RAW, "CAP_NET_RAW"),
        (CAP_NET_ADMIN, "CAP_NET_ADMIN"),
        (CAP_IPC_LOCK, "CAP_IPC_LOCK"),
    ]
    .iter()
    .filter(|(b, _)| !has(*b))
    .map(|(_, n)| *n)
    .collect();
    let fix = "run as the service (`wirecap install`: AmbientCapabilities in the unit) or `setcap cap_net_raw,cap_net_admin,cap_ipc_lock+ep /usr/local/bin/wirecap`";
    if !has(CAP_NET_RAW) {
        Check::fail(
            "capabilities",
            format!(
                "missing {} (no AF_PACKET capture without CAP_NET_RAW)",
                missing.join(" ")
            ),
            fix,
        )
    } else if !missing.is_empty() {
        Check::warn(
            "capabilities",
            format!(
                "missing {} (promiscuous mode / locked ring memory)",
                missing.join(" ")
            ),
            fix,
        )
    } else {
        Check::ok("capabilities", "CAP_NET_RAW CAP_NET_ADMIN CAP_IPC_LOCK")
    }
}

/// Ring memory the default capture locks; less than this with no CAP_IPC_LOCK warns.
const WANT_MEMLOCK: u64 = 256 << 20;

fn memlock_check(caps: Option<u64>) -> Check {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `r` is a valid rlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut r) } != 0 {
        return Check::warn(
            "memlock",
            "getrlimit(RLIMIT_MEMLOCK) failed",
            "check ulimit -l",
        );
    }
    let ipc_lock = caps.is_some_and(|c| c & (1 << CAP_IPC_LOCK) != 0);
    let shown = if r.rlim_cur == libc::RLIM_INFINITY {
        "unlimited".to_owned()
    } else {
        format!("{} MiB", r.rlim_cur >> 20)
    };
    if r.rlim_cur == libc::RLIM_INFINITY || r.rlim_cur >= WANT_MEMLOCK {
        Check::ok("memlock", format!("RLIMIT_MEMLOCK {shown}"))
    } else if ipc_lock {
        Check::ok(
            "memlock",
            format!("RLIMIT_MEMLOCK {shown}, but CAP_IPC_LOCK lifts it"),
        )
    } else {
        Check::warn(
            "memlock",
            format!("RLIMIT_MEMLOCK {shown}: capture rings cannot be locked in memory"),
            "LimitMEMLOCK=infinity in the unit (wirecap install does this), or ulimit -l unlimited",
        )
    }
}

fn gib(b: u64) -> String {
    format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)
}

fn disk_checks(dir: &Path) -> Vec<Check> {
    if !dir.is_dir() {
        return vec![Check::fail(
            "data dir",
            format!("{} does not exist", dir.display()),
            format!(
                "create it (`wirecap install` does: /var/lib/wirecap), or pass --data DIR: mkdir -p {} && chown {SERVICE_USER}: {}",
                dir.display(),
                dir.display()
            ),
        )];
    }
    let mut out = Vec::new();
    match wirecap_store::disk::space(dir) {
        Ok(wirecap_store::disk::Space { total, avail, .. }) if total > 0 => {
            let used_pct = 100 - avail * 100 / total;
            let detail = format!(
                "{}: {} free of {} ({used_pct}% used)",
                dir.display(),
                gib(avail),
                gib(total)
            );
            out.push(if avail * 100 < total {
                Check::fail(
                    "disk",
                    detail,
                    "free space or set a retention budget: capture stops when the disk is full",
                )
            } else if avail * 10 < total {
                Check::warn(
                    "disk",
                    detail,
                    "less than 10% free: set a retention budget or add disk",
                )
            } else {
                Check::ok("disk", detail)
            });
        }
        _ => out.push(Check::warn(
            "disk",
            format!("statvfs({}) failed", dir.display()),
            "check the mount",
        )),
    }
    out.push(direct_io_check(dir));
    out.push(service_user_check(dir));
    out
}

/// Whether the data directory's file system takes O_DIRECT writes (tmpfs and some
/// network file systems do not; capture then writes through the page cache).
fn direct_io_check(dir: &Path) -> Check {
    use std::os::unix::fs::OpenOptionsExt;
    let probe = dir.join(format!(".doctor-odirect-{}", std::process::id()));
    let r = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_DIRECT)
        .open(&probe);
    let result = match r {
        Ok(f) => {
            // One aligned block: O_DIRECT refuses unaligned buffers.
            let layout = std::alloc::Layout::from_size_align(4096, 4096).expect("layout");
            // SAFETY: a non-zero size layout; freed below with the same layout.
            let buf = unsafe { std::alloc::alloc_zeroed(layout) };
            // SAFETY: `buf` points to 4096 writable bytes; `f` is open for writing.
            let n = unsafe {
                libc::write(
                    std::os::fd::AsRawFd::as_raw_fd(&f),
                    buf.cast::<libc::c_void>(),
                    4096,
                )
            };
            // SAFETY: allocated above with this layout.
            unsafe { std::alloc::dealloc(buf, layout) };
            if n == 4096 {
                Check::ok("O_DIRECT", "supported by the data dir's file system")
            } else {
                Check::warn(
                    "O_DIRECT",
                    format!("write refused: {}", std::io::Error::last_os_error()),
                    "put the data dir on ext4 or xfs for cheaper writes at high rates",
                )
            }
        }
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Check::warn(
            "O_DIRECT",
            "not supported by the data dir's file system (tmpfs?)",
            "put the data dir on ext4 or xfs for cheaper writes at high rates",
        ),
        Err(e) => Check::fail(
            "O_DIRECT",
            format!("cannot create a file in {}: {e}", dir.display()),
            "make the data dir writable",
        ),
    };
    let _ = std::fs::remove_file(&probe);
    result
}

fn service_user_check(dir: &Path) -> Check {
    use std::os::unix::fs::MetadataExt;
    let Ok(name) = CString::new(SERVICE_USER) else {
        return Check::warn("service user", "bad user name", "");
    };
    // SAFETY: getpwnam reads the user database; the result is copied out at once.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return Check::warn(
            "service user",
            format!("no user {SERVICE_USER:?}"),
            "`wirecap install` creates it (or run the service as another unprivileged user)",
        );
    }
    // SAFETY: non-null result of getpwnam.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    let Ok(m) = std::fs::metadata(dir) else {
        return Check::fail("service user", "cannot stat the data dir", "check it");
    };
    let mode = m.mode();
    let writable = (m.uid() == uid && mode & 0o200 != 0)
        || (m.gid() == gid && mode & 0o020 != 0)
        || mode & 0o002 != 0;
    if writable {
        Check::ok(
            "service user",
            format!("{SERVICE_USER} can write {}", dir.display()),
        )
    } else {
        Check::fail(
            "service user",
            format!(
                "{SERVICE_USER} cannot write {} (owner uid {}, mode {:o})",
                dir.display(),
                m.uid(),
                mode & 0o7777
            ),
            format!("chown -R {SERVICE_USER}: {}", dir.display()),
        )
    }
}

fn interface_checks(name: &str, caps: Option<u64>) -> Vec<Check> {
    let sys = Sysfs::default();
    let Some(l) = sys.read(name) else {
        let known = sys.interfaces().unwrap_or_default().join(", ");
        return vec![Check::fail(
            "interface",
            format!("{name} does not exist"),
            format!("give one of: {known}"),
        )];
    };
    let mut out = Vec::new();
    let speed = l
        .speed_mbps
        .map_or("speed unknown".to_owned(), |s| format!("{s} Mb/s"));
    let mtu = l.mtu.map_or("MTU ?".to_owned(), |m| format!("MTU {m}"));
    let detail = format!(
        "{name}: {} ({}), {speed}, {mtu}",
        if l.up { "up" } else { "down" },
        l.operstate
    );
    out.push(if l.up {
        Check::ok("interface", detail)
    } else {
        Check::warn(
            "interface",
            detail,
            format!("ip link set {name} up, and check the cable / SPAN port"),
        )
    });
    let gro = ethtool::get(name, ethtool::GGRO);
    let lro = ethtool::get(name, ethtool::GFLAGS).map(|f| f & ethtool::FLAG_LRO != 0);
    let on: Vec<&str> = [(gro == Some(1), "GRO"), (lro == Some(true), "LRO")]
        .iter()
        .filter(|(b, _)| *b)
        .map(|(_, n)| *n)
        .collect();
    out.push(if gro.is_none() && lro.is_none() {
        Check::ok(
            "offloads",
            format!("{name}: driver does not report GRO/LRO"),
        )
    } else if on.is_empty() {
        Check::ok("offloads", format!("{name}: GRO and LRO off"))
    } else {
        Check::warn(
            "offloads",
            format!(
                "{name}: {} on: captured frames are merged, not what was on the wire",
                on.join(" and ")
            ),
            format!("ethtool -K {name} gro off lro off"),
        )
    });
    let may_promisc = caps.is_some_and(|c| c & (1 << CAP_NET_RAW) != 0);
    out.push(if may_promisc {
        Check::ok(
            "promiscuous",
            format!("allowed on {name} (CAP_NET_RAW: PACKET_MR_PROMISC)"),
        )
    } else {
        Check::fail(
            "promiscuous",
            format!("not allowed on {name} without CAP_NET_RAW"),
            "grant CAP_NET_RAW (see capabilities)",
        )
    });
    out
}

fn clock_checks() -> Vec<Check> {
    let mut out = Vec::new();
    // SAFETY: timex is plain data; modes 0 only reads the kernel's clock state.
    let mut t: libc::timex = unsafe { std::mem::zeroed() };
    // SAFETY: `t` is a valid timex.
    let state = unsafe { libc::adjtimex(&mut t) };
    let unsync = state == libc::TIME_ERROR || t.status & libc::STA_UNSYNC != 0;
    out.push(if state < 0 {
        Check::warn(
            "clock",
            "adjtimex failed",
            "check the time service",
        )
    } else if unsync {
        Check::warn(
            "clock",
            "not NTP-synchronised (adjtimex: STA_UNSYNC): packet timestamps may drift",
            "enable a time service: systemctl enable --now systemd-timesyncd (or chrony; PTP for sub-µs)",
        )
    } else {
        Check::ok(
            "clock",
            format!("NTP-synchronised, estimated error {} µs", t.esterror),
        )
    });
    let src =
        std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
    out.push(match src.as_str() {
        "" => Check::warn(
            "clocksource",
            "unknown (no sysfs clocksource)",
            "none needed in a container",
        ),
        "tsc" | "kvm-clock" | "arch_sys_counter" => Check::ok("clocksource", src),
        other => Check::warn(
            "clocksource",
            format!("{other}: reading the time is slow, timestamps cost CPU per packet"),
            "use tsc where the CPU has an invariant TSC (clocksource=tsc on the kernel command line)",
        ),
    });
    out
}

/// (major, minor) from a kernel release string such as `6.1.0-18-amd64`.
pub fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

fn kernel_check() -> Check {
    // SAFETY: utsname is plain data filled by uname.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return Check::warn("kernel", "uname failed", "");
    }
    // SAFETY: uname NUL-terminates release.
    let rel = unsafe { std::ffi::CStr::from_ptr(u.release.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    match kernel_version(&rel) {
        // TPACKET_V3 rings arrived in 3.2; fanout and the block timeout are reliable from 4.x.
        Some(v) if v < (3, 2) => Check::fail(
            "kernel",
            format!("{rel}: no TPACKET_V3"),
            "run Linux 4.x or newer",
        ),
        Some(v) if v < (4, 0) => {
            Check::warn("kernel", format!("{rel}: old"), "run Linux 4.x or newer")
        }
        Some(_) => Check::ok("kernel", rel),
        None => Check::warn("kernel", format!("{rel}: cannot read the version"), ""),
    }
}

/// Every check, in report order.
pub fn checks(data: &Path, interface: Option<&str>) -> Vec<Check> {
    let caps = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| effective_caps(&s));
    let mut out = vec![caps_check(caps), memlock_check(caps)];
    out.extend(disk_checks(data));
    match interface {
        Some(i) => out.extend(interface_checks(i, caps)),
        None => out.push(Check::warn(
            "interface",
            "none given",
            "pass --interface IF to check the capture link",
        )),
    }
    out.extend(clock_checks());
    out.push(kernel_check());
    out
}

pub fn run(a: DoctorArgs) -> Result<ExitCode> {
    let data = a.data.unwrap_or_else(|| PathBuf::from("/var/lib/wirecap"));
    let interface = a.interface.or_else(|| {
        wirecap_appliance::config::FileConfig::load(&data)
            .ok()
            .and_then(|c| c.capture.interface)
    });
    let all = checks(&data, interface.as_deref());
    for c in &all {
        println!("{}", c.line());
    }
    let fails = all.iter().filter(|c| c.level == Level::Fail).count();
    let warns = all.iter().filter(|c| c.level == Level::Warn).count();
    println!(
        "{fails} failed, {warns} warnings, {} ok",
        all.len() - fails - warns
    );
    Ok(if fails > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_effective_capabilities() {
        let s = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t0000000000003000\n";
        let c = effective_caps(s).unwrap();
        assert_eq!(c, (1 << CAP_NET_RAW) | (1 << CAP_NET_ADMIN));
        assert_eq!(caps_check(Some(c)).level, Level::Warn, "no IPC_LOCK");
        assert_eq!(caps_check(Some(0)).level, Level::Fail, "no NET_RAW");
        assert_eq!(caps_check(Some(0x7000)).level, Level::Ok);
        assert!(effective_caps("Name: x\n").is_none());
    }

    #[test]
    fn reads_kernel_versions() {
        assert_eq!(kernel_version("6.1.0-18-amd64"), Some((6, 1)));
        assert_eq!(kernel_version("3.10.0"), Some((3, 10)));
        assert_eq!(kernel_version("garbage"), None);
    }

    #[test]
    fn lines_carry_the_fix() {
        let l = Check::fail("disk", "full", "free space").line();
        assert!(l.starts_with("FAIL disk"), "{l}");
        assert!(l.ends_with("fix: free space"), "{l}");
        assert!(!Check::ok("kernel", "6.1").line().contains("fix"));
    }
}
