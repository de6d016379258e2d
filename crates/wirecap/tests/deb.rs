//! Issue 14.15: the Debian package built by `packaging/deb/build.sh` (dpkg-deb), checked
//! with `dpkg-deb --info/--contents`; then, as root with `systemd-analyze`, installed on
//! this machine (`dpkg -i`), its unit verified (`systemd-analyze verify`), `wirecap doctor`
//! run, reinstalled over itself as an upgrade would (the data and the settings stay), and
//! purged, leaving the machine as it was. A machine that has a `wirecap` package, user or
//! /var/lib/wirecap already is not touched (a skip, a failure under CI).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod support;

fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"))
}

fn ok(cmd: &str, args: &[&str]) -> String {
    let o = run(cmd, args);
    assert!(
        o.status.success(),
        "{cmd} {args:?}: {}\n{}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn build(out: &Path) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/deb/build.sh");
    // No compression: the debug binary is large, and the test is about the contents.
    let o = Command::new("bash")
        .arg(&script)
        .arg(support::BIN)
        .arg(out)
        .env("DEB_COMPRESS", "none")
        .output()
        .expect("run build.sh");
    assert!(
        o.status.success(),
        "build.sh: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&o.stdout).trim())
}

/// Purges the package when the test ends, however it ends.
struct Purge;

impl Drop for Purge {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", "wirecap"]).output();
    }
}

#[test]
fn debian_package_builds_installs_upgrades_and_purges() {
    if !wirecap_testkit::require_tools(&["dpkg-deb", "dpkg"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let deb = build(tmp.path());
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        deb.ends_with(format!(
            "wirecap_{version}_{}.deb",
            ok("dpkg", &["--print-architecture"]).trim()
        )),
        "{}",
        deb.display()
    );
    let d = deb.to_str().unwrap();
    let info = ok("dpkg-deb", &["--info", d]);
    for want in [
        "Package: wirecap",
        &format!("Version: {version}"),
        "conffiles",
        "postinst",
        "postrm",
    ] {
        assert!(info.contains(want), "{want} not in:\n{info}");
    }
    assert_eq!(ok("dpkg-deb", &["--field", d, "Package"]).trim(), "wirecap");
    let contents = ok("dpkg-deb", &["--contents", d]);
    for want in [
        "./usr/bin/wirecap",
        "./usr/lib/systemd/system/wirecap.service",
        "./etc/wirecap/wirecap.toml",
    ] {
        assert!(contents.contains(want), "{want} not in:\n{contents}");
    }
    assert!(contents.contains("rwxr-xr-x root/root") && !contents.contains("./etc/systemd"));
    let x = tmp.path().join("x");
    ok("dpkg-deb", &["--raw-extract", d, x.to_str().unwrap()]);
    let unit = std::fs::read_to_string(x.join("usr/lib/systemd/system/wirecap.service")).unwrap();
    assert!(
        unit.contains(
            "ExecStart=/usr/bin/wirecap serve --data /var/lib/wirecap --https 0.0.0.0:443\n"
        ),
        "{unit}"
    );
    assert_eq!(
        std::fs::read_to_string(x.join("DEBIAN/conffiles")).unwrap(),
        "/etc/wirecap/wirecap.toml\n"
    );
    // The shipped settings load as the server would load them.
    let toml = std::fs::read_to_string(x.join("etc/wirecap/wirecap.toml")).unwrap();
    wirecap_appliance::config::FileConfig::parse(&toml).expect("the shipped wirecap.toml");

    // Installing it on this machine: root, systemd-analyze, and nothing of wirecap there.
    if !wirecap_testkit::require_root() || !wirecap_testkit::require_tool("systemd-analyze") {
        return;
    }
    let installed = run("dpkg", &["-s", "wirecap"]).status.success();
    let user = run("getent", &["passwd", "wirecap"]).status.success();
    if installed || user || Path::new("/var/lib/wirecap").exists() {
        wirecap_testkit::skip(
            "this machine has a wirecap package, user or /var/lib/wirecap already: not touched",
        );
        return;
    }
    let _purge = Purge;
    ok("dpkg", &["-i", d]);
    assert!(run("getent", &["passwd", "wirecap"]).status.success());
    let meta = std::fs::metadata("/var/lib/wirecap").unwrap();
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert_eq!(meta.permissions().mode() & 0o777, 0o750);
    assert_ne!(
        meta.uid(),
        0,
        "/var/lib/wirecap belongs to the service user"
    );
    assert_eq!(
        std::fs::read_to_string("/var/lib/wirecap/wirecap.toml").unwrap(),
        toml
    );
    let v = ok("/usr/bin/wirecap", &["--version"]);
    assert_eq!(v.trim(), format!("wirecap {version}"));
    let o = run(
        "systemd-analyze",
        &["verify", "/usr/lib/systemd/system/wirecap.service"],
    );
    assert!(
        o.status.success(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The doctor runs on the installed layout (its verdict depends on this host).
    let o = run(
        "/usr/bin/wirecap",
        &["doctor", "--data", "/var/lib/wirecap"],
    );
    let report = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.code().is_some_and(|c| c <= 1) && report.contains(" failed, "),
        "doctor: {}\n{report}{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    // What the package set up, the doctor finds right.
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("OK") && l.contains("wirecap can write /var/lib/wirecap")),
        "{report}"
    );

    // An upgrade keeps the data and the settings.
    std::fs::write("/var/lib/wirecap/wirecap.toml", "hostname = \"kept-1\"\n").unwrap();
    std::fs::write("/var/lib/wirecap/marker", "captures").unwrap();
    ok("dpkg", &["-i", d]);
    assert_eq!(
        std::fs::read_to_string("/var/lib/wirecap/wirecap.toml").unwrap(),
        "hostname = \"kept-1\"\n"
    );
    assert!(Path::new("/var/lib/wirecap/marker").exists());

    // Purged: nothing of it is left.
    ok("dpkg", &["--purge", "wirecap"]);
    for p in [
        "/usr/bin/wirecap",
        "/usr/lib/systemd/system/wirecap.service",
        "/etc/wirecap/wirecap.toml",
        "/var/lib/wirecap",
    ] {
        assert!(!Path::new(p).exists(), "{p} left after purge");
    }
    assert!(!run("getent", &["passwd", "wirecap"]).status.success());
    assert!(!run("getent", &["group", "wirecap"]).status.success());
}
