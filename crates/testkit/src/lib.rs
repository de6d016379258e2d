//! What a test needs from the machine, said in one place: root, an installed tool, the
//! shared corpus.
//!
//! A test calls [`require_root`], [`require_tool`] or [`require_corpus`] and returns early
//! when the answer is no. A missing need is never silent:
//!
//! * it prints `SKIP <test>: <reason>` to stderr, and appends the same line to the file
//!   named by `WIRECAP_SKIP_LOG` when that is set (`scripts/test.sh` sums them up);
//! * under CI (`CI=true`) it panics with the reason instead, so a CI machine that lacks
//!   root, a tool or the corpus fails the run rather than passing a suite that did not run.
//!
//! Dev-only: no product crate depends on this one, and it never decides a test's outcome
//! otherwise than by skipping (or failing under CI).

use std::io::Write;
use std::path::{Path, PathBuf};

/// Whether this process runs under CI: `CI=true`, as CI services set it.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// The running test's name: libtest names each test's thread after it.
fn test_name() -> String {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("?");
    // The test binary (`netns-1a2b3c…`) says which file the test is in.
    let binary = std::env::args()
        .next()
        .and_then(|a| {
            Path::new(&a)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
        })
        .map(|f| f.rsplit_once('-').map_or(f.clone(), |(b, _)| b.to_owned()))
        .unwrap_or_default();
    format!("{binary}::{test}")
}

/// Records that the running test cannot run here, and why: panics under CI, otherwise
/// prints and logs the skip (the caller then returns).
pub fn skip(reason: &str) {
    let line = format!("SKIP {}: {reason}", test_name());
    if under_ci() {
        panic!("{line} (CI=true: a missing capability fails the run)");
    }
    eprintln!("{line}");
    if let Some(log) = std::env::var_os("WIRECAP_SKIP_LOG") {
        // One write of one short line in append mode: lines from parallel tests and test
        // binaries do not interleave.
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
        if let Err(e) = appended {
            eprintln!(
                "cannot append to WIRECAP_SKIP_LOG {}: {e}",
                log.to_string_lossy()
            );
        }
    }
}

/// True when the process runs as root (user id 0); otherwise records a skip.
pub fn require_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        skip("needs root");
    }
    root
}

/// Where `tool` is on `PATH` (an executable file), if it is.
pub fn find_tool(tool: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// True when `tool` is an executable on `PATH`; otherwise records a skip.
pub fn require_tool(tool: &str) -> bool {
    let found = find_tool(tool).is_some();
    if !found {
        skip(&format!("needs `{tool}` on PATH"));
    }
    found
}

/// True when every one of `tools` is on `PATH`; otherwise records one skip naming the
/// missing ones.
pub fn require_tools(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| find_tool(t).is_none())
        .collect();
    if !missing.is_empty() {
        skip(&format!("needs {} on PATH", missing.join(", ")));
    }
    missing.is_empty()
}

/// Where the shared corpus is, without recording anything: `$WIRECAP_CORPUS`, else the
/// first `shared/corpus` beside an ancestor of the workspace (the repository is `<x>/main`
/// or a CI clone, with `<x>/shared` next to it). `Err` says why there is none.
pub fn corpus_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("WIRECAP_CORPUS") {
        let dir = PathBuf::from(dir);
        return if dir.join("MANIFEST.tsv").is_file() {
            Ok(dir)
        } else {
            Err(format!(
                "WIRECAP_CORPUS={} has no MANIFEST.tsv",
                dir.display()
            ))
        };
    }
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .map(|a| a.join("shared").join("corpus"))
        .find(|c| c.join("MANIFEST.tsv").is_file())
        .ok_or_else(|| {
            "needs the corpus: no shared/corpus/MANIFEST.tsv beside the checkout \
             (set WIRECAP_CORPUS)"
                .to_owned()
        })
}

/// The shared corpus (see [`corpus_dir`]); `None` after recording a skip.
pub fn require_corpus() -> Option<PathBuf> {
    corpus_dir().map_err(|why| skip(&why)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skip_is_logged_and_fails_under_ci() {
        // One test for both: the environment is process-wide.
        let dir = std::env::temp_dir().join(format!("wirecap-testkit-{}", std::process::id()));
        let log = dir.with_extension("log");
        let _ = std::fs::remove_file(&log);
        // SAFETY: the only test of this binary that touches the environment.
        unsafe {
            std::env::set_var("WIRECAP_SKIP_LOG", &log);
            std::env::set_var("CI", "false");
        }
        assert!(!require_tool("wirecap-no-such-tool"));
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            text.starts_with("SKIP ")
                && text.contains("a_skip_is_logged_and_fails_under_ci")
                && text.ends_with("needs `wirecap-no-such-tool` on PATH\n"),
            "{text}"
        );
        unsafe { std::env::set_var("CI", "true") };
        let panicked = std::panic::catch_unwind(|| require_tool("wirecap-no-such-tool"));
        let msg = panicked.expect_err("no panic under CI");
        let msg = msg.downcast_ref::<String>().unwrap();
        assert!(
            msg.contains("wirecap-no-such-tool") && msg.contains("CI=true"),
            "{msg}"
        );
        // Present tools pass under CI.
        assert!(require_tool("sh"));
        let _ = std::fs::remove_file(&log);
    }
}
