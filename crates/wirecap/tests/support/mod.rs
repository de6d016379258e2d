//! Helpers shared by the end-to-end test files: where the corpus is, whether a reference
//! tool is installed, and checking a `wirecap` run. Each test file uses a subset.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The shared corpus: `WIRECAP_CORPUS`, or `../shared/corpus` beside the checkout.
pub fn corpus() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("WIRECAP_CORPUS") {
        return Some(PathBuf::from(p));
    }
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let p = ws.join("../shared/corpus");
    p.join("MANIFEST.tsv").exists().then_some(p)
}

/// Whether `tool` can be run.
pub fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// The stdout of a successful `wirecap` run; a failure shows its status and stderr.
pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "wirecap failed: {}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).expect("utf8 stdout")
}

pub mod serve;
