//! `wirecap install`: installs this binary as a systemd service that runs as its own
//! unprivileged user with only the capabilities capture needs (the unit is
//! `packaging/wirecap.service`, embedded here).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

use crate::doctor::SERVICE_USER;

/// The unit as shipped; `unit_text` adapts its binary path and interface.
pub const UNIT: &str = include_str!("../../../packaging/wirecap.service");
const UNIT_BINARY: &str = "/usr/local/bin/wirecap";
/// The unit's listener, which `--http` replaces.
const UNIT_LISTENER: &str = "--https 0.0.0.0:443";
const DATA_DIR: &str = "/var/lib/wirecap";

#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    /// Print what would be done and change nothing
    #[arg(long)]
    dry_run: bool,
    /// Install the binary as PREFIX/bin/wirecap
    #[arg(long, value_name = "PREFIX", default_value = "/usr/local")]
    prefix: PathBuf,
    /// Capture this interface (added to the unit's ExecStart)
    #[arg(long, short = 'i', value_name = "IF")]
    interface: Option<String>,
    /// Serve plain HTTP on ADDR (e.g. 0.0.0.0:8080) instead of HTTPS on port 443: for
    /// the manual's `http://` scripts on a trusted network. Passwords and tokens then
    /// cross the network in clear
    #[arg(long, value_name = "ADDR")]
    http: Option<String>,
    /// Install into this root instead of / (a package build or an image); the user is
    /// not created and systemd is not told
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,
}

/// The unit for a binary at `binary`, capturing `interface` when given, listening with
/// plain HTTP on `http` when given (else HTTPS on port 443).
pub fn unit_text(binary: &Path, interface: Option<&str>, http: Option<&str>) -> Result<String> {
    let bin = binary.to_str().context("the binary path must be UTF-8")?;
    if bin.contains(char::is_whitespace) {
        bail!("the binary path {bin:?} must not contain spaces");
    }
    if let Some(a) = http {
        wirecap_appliance::config::check_listen_addr(a)
            .map_err(|why| anyhow::anyhow!("--http: {why}"))?;
    }
    let mut out = String::with_capacity(UNIT.len() + 32);
    for line in UNIT.lines() {
        if let Some(rest) = line.strip_prefix("ExecStart=") {
            out.push_str("ExecStart=");
            let rest = rest.replacen(UNIT_BINARY, bin, 1);
            match http {
                Some(a) => out.push_str(&rest.replacen(UNIT_LISTENER, &format!("--http {a}"), 1)),
                None => out.push_str(&rest),
            }
            if let Some(i) = interface {
                let valid = !i.is_empty()
                    && i.len() < 16
                    && i.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-@:".contains(&b));
                if !valid {
                    bail!("interface {i:?} is not an interface name");
                }
                out.push_str(" --interface ");
                out.push_str(i);
            }
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    Ok(out)
}

fn under(root: &Path, p: &Path) -> PathBuf {
    root.join(p.strip_prefix("/").unwrap_or(p))
}

fn user_exists(name: &str) -> bool {
    std::ffi::CString::new(name)
        // SAFETY: getpwnam with a NUL-terminated name; only the null check is read.
        .map(|c| unsafe { !libc::getpwnam(c.as_ptr()).is_null() })
        .unwrap_or(false)
}

fn run_cmd(dry: bool, program: &str, args: &[&str]) -> Result<()> {
    println!("run: {program} {}", args.join(" "));
    if dry {
        return Ok(());
    }
    let st = Command::new(program)
        .args(args)
        .status()
        .with_context(|| format!("cannot run {program}"))?;
    if !st.success() {
        bail!("{program} {} failed ({st})", args.join(" "));
    }
    Ok(())
}

pub fn run(a: InstallArgs) -> Result<ExitCode> {
    let live = a.root == Path::new("/");
    let dry = a.dry_run;
    // SAFETY: geteuid has no preconditions.
    if live && !dry && unsafe { libc::geteuid() } != 0 {
        bail!("installing a service needs root: run it with sudo, or look first with --dry-run");
    }
    let me = std::env::current_exe().context("where is this binary?")?;
    let bin = a.prefix.join("bin/wirecap");
    let unit = unit_text(&bin, a.interface.as_deref(), a.http.as_deref())?;
    if dry {
        println!("dry run: nothing is changed");
    }

    // 1. The service user: no login, home in the data directory.
    if !live {
        println!("skip: user {SERVICE_USER} (not the live root; create it in the image)");
    } else if user_exists(SERVICE_USER) {
        println!("ok: user {SERVICE_USER} exists");
    } else {
        run_cmd(
            dry,
            "useradd",
            &[
                "--system",
                "--home-dir",
                DATA_DIR,
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SERVICE_USER,
            ],
        )?;
    }

    // 2. The binary, replaced atomically so a running service never sees half a file.
    let dest = under(&a.root, &bin);
    println!("install: {} -> {} (0755)", me.display(), dest.display());
    if !dry {
        use std::os::unix::fs::PermissionsExt;
        let dir = dest.parent().context("binary path has no folder")?;
        std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
        let tmp = dir.join(".wirecap.install");
        std::fs::copy(&me, &tmp).with_context(|| tmp.display().to_string())?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
        std::fs::rename(&tmp, &dest).with_context(|| dest.display().to_string())?;
    }

    // 3. The unit.
    let unit_path = under(&a.root, Path::new("/etc/systemd/system/wirecap.service"));
    println!("write: {}", unit_path.display());
    if dry {
        for l in unit
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            println!("    {l}");
        }
    } else {
        let dir = unit_path.parent().context("unit path has no folder")?;
        std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
        wirecap_appliance::os::write_atomically(&unit_path, unit.as_bytes())
            .with_context(|| unit_path.display().to_string())?;
    }

    // 4. Tell systemd.
    if !live {
        println!("skip: systemctl (not the live root)");
    } else if !Path::new("/run/systemd/system").is_dir() {
        println!(
            "skip: systemctl: systemd is not running here; on the target run: systemctl daemon-reload && systemctl enable --now wirecap"
        );
    } else {
        run_cmd(dry, "systemctl", &["daemon-reload"])?;
        run_cmd(dry, "systemctl", &["enable", "wirecap.service"])?;
        println!(
            "start it with: systemctl start wirecap; the admin password is in {DATA_DIR}/initial-admin-password"
        );
    }
    match &a.http {
        Some(addr) => println!(
            "listener: plain HTTP on {addr} (passwords and tokens cross the network in clear; without --http the service listens with HTTPS on port 443)"
        ),
        None => println!(
            "listener: HTTPS on port 443 (self-signed certificate unless [tls] is set); for plain HTTP install with --http ADDR, or set http = \"ADDR\" in {DATA_DIR}/wirecap.toml and drop --https from the unit"
        ),
    }
    println!(
        "check the host with: wirecap doctor --data {DATA_DIR}{}",
        a.interface
            .as_ref()
            .map(|i| format!(" --interface {i}"))
            .unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_follows_prefix_and_interface() {
        let u = unit_text(Path::new("/opt/wc/bin/wirecap"), Some("eth1"), None).unwrap();
        assert!(
            u.contains("ExecStart=/opt/wc/bin/wirecap serve --data /var/lib/wirecap --https 0.0.0.0:443 --interface eth1\n"),
            "{u}"
        );
        assert!(unit_text(Path::new("/x"), Some("eth1; rm -rf /"), None).is_err());
        assert!(unit_text(Path::new("/a b/wirecap"), None, None).is_err());
        let plain = unit_text(Path::new(UNIT_BINARY), None, None).unwrap();
        assert_eq!(plain, UNIT);
        assert!(UNIT.contains(UNIT_LISTENER));
        let http = unit_text(Path::new(UNIT_BINARY), None, Some("[::]:80")).unwrap();
        assert!(
            http.contains(
                "ExecStart=/usr/local/bin/wirecap serve --data /var/lib/wirecap --http [::]:80\n"
            ),
            "{http}"
        );
        assert!(unit_text(Path::new(UNIT_BINARY), None, Some("80; rm -rf /")).is_err());
    }
}
