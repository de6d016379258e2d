//! The web UI in a real browser: runs `crates/http/ui/tests/browser.mjs` (playwright-core
//! driving Debian's chromium, headless) against `wirecap serve` on 127.0.0.1 with a
//! synthetic source: login, capture from the UI, downloads checked with tcpdump, filters,
//! screenshots of every page, and page loads with 1,000 streams and 3,600 splits.
//!
//! Needs `node`, `/usr/bin/chromium` (apt `chromium`), `tcpdump` and `npm ci` in
//! `crates/http/ui`. Without them the test is a logged skip (`wirecap_testkit`), and
//! under CI (`CI=true`) a failure.
//!
//! The binary under test is `WIRECAP_UI_BIN`: scripts/test.sh builds the release binary
//! (`cargo build --release -p wirecap`) and points it there, so the browser loads the UI
//! embedded in what ships and the 1 s page-load budget is measured on it. Under CI it is
//! required. Elsewhere, without it, this build's `wirecap` runs (a debug build reads the
//! UI from disk, so the embedded files go untested) with 1.5 s, and the test says so.
//! Screenshots go to `WIRECAP_UI_ARTIFACTS` (default: a folder under the target dir),
//! printed by the test.

use std::path::{Path, PathBuf};
use std::process::Command;

fn missing_prerequisites(ui: &Path) -> Vec<String> {
    let mut missing = Vec::new();
    let runs = |cmd: &str, arg: &str| {
        Command::new(cmd)
            .arg(arg)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !runs("node", "--version") {
        missing.push("node (Node.js 20)".to_owned());
    }
    if !runs("tcpdump", "--version") {
        missing.push("tcpdump (apt install tcpdump)".to_owned());
    }
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    if !Path::new(&chromium).exists() {
        missing.push(format!("{chromium} (apt install chromium)"));
    }
    for m in ["playwright-core", "preact", "htm", "uplot"] {
        if !ui.join("node_modules").join(m).exists() {
            missing.push(format!("{m} (run `npm ci` in {})", ui.display()));
        }
    }
    missing
}

#[test]
fn web_ui_in_chromium() {
    let ui = Path::new(env!("CARGO_MANIFEST_DIR")).join("../http/ui");
    let missing = missing_prerequisites(&ui);
    if !missing.is_empty() {
        wirecap_testkit::skip(&format!("needs {}", missing.join(", ")));
        return;
    }
    let (bin, budget_ms) = match std::env::var("WIRECAP_UI_BIN") {
        Ok(b) if !b.is_empty() => (PathBuf::from(b), 1000),
        _ => {
            assert!(
                !wirecap_testkit::under_ci(),
                "CI=true: set WIRECAP_UI_BIN to a release build of wirecap (scripts/test.sh \
                 does): the browser must load the UI embedded in the shipped binary"
            );
            eprintln!(
                "note: WIRECAP_UI_BIN unset: testing this build's wirecap, not the release \
                 binary's embedded UI"
            );
            let budget = if cfg!(debug_assertions) { 1500 } else { 1000 };
            if budget != 1000 {
                eprintln!(
                    "note: unoptimised wirecap, page-load budget {budget} ms \
                     (set WIRECAP_UI_BIN to a release build for the 1 s budget)"
                );
            }
            (PathBuf::from(env!("CARGO_BIN_EXE_wirecap")), budget)
        }
    };
    let artifacts = std::env::var("WIRECAP_UI_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            let exe = std::env::current_exe().expect("test executable path");
            // target/<profile>/deps/ui-… → target/ui-artifacts
            exe.ancestors()
                .nth(3)
                .unwrap_or(Path::new("."))
                .join("ui-artifacts")
        });
    eprintln!("web UI screenshots and downloads: {}", artifacts.display());
    let status = Command::new("node")
        .arg(ui.join("tests/browser.mjs"))
        .arg(&bin)
        .env("WIRECAP_UI_ARTIFACTS", &artifacts)
        .env("WIRECAP_UI_BUDGET_MS", budget_ms.to_string())
        .status()
        .expect("run node");
    assert!(
        status.success(),
        "browser test failed; see the output above and the screenshots in {}",
        artifacts.display()
    );
}

/// Issue 14: the operators' pages (API tokens on Tools, alerts on Config), in
/// `crates/http/ui/tests/ops.mjs`: a small server of its own, so it runs in seconds.
#[test]
fn operators_pages_in_chromium() {
    let ui = Path::new(env!("CARGO_MANIFEST_DIR")).join("../http/ui");
    let missing = missing_prerequisites(&ui);
    if !missing.is_empty() {
        wirecap_testkit::skip(&format!("needs {}", missing.join(", ")));
        return;
    }
    let bin = match std::env::var("WIRECAP_UI_BIN") {
        Ok(b) if !b.is_empty() => PathBuf::from(b),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_wirecap")),
    };
    let status = Command::new("node")
        .arg(ui.join("tests/ops.mjs"))
        .arg(&bin)
        .status()
        .expect("run node");
    assert!(
        status.success(),
        "operators' browser test failed; see the output above"
    );
}
