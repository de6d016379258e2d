//! Where the commands that write capture files put them: standard output (never a
//! terminal), or a file that appears under its name only once it is complete.

use std::fs::File;
use std::io::{IsTerminal, StdoutLock};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

/// Standard output for binary capture data; refuses a terminal. `hint` says how to use
/// the command instead (e.g. "-o - | tcpdump -r -, or -o FILE").
pub fn capture_stdout(hint: &str) -> Result<StdoutLock<'static>> {
    let stdout = std::io::stdout();
    if stdout.is_terminal() {
        bail!("refusing to write a capture file to a terminal: pipe it ({hint})");
    }
    Ok(stdout.lock())
}

/// A file written as `.NAME.part` beside its target and renamed by [`commit`]; dropped
/// without commit, it is removed. A failed or interrupted write therefore never leaves
/// a truncated file that looks complete.
///
/// A target that exists and is not a regular file (`/dev/null`, a FIFO, a device) is
/// written in place: renaming a file over it would replace the device.
///
/// [`commit`]: PartFile::commit
pub struct PartFile {
    file: File,
    /// The temporary name, or `None` when writing to the target itself.
    tmp: Option<PathBuf>,
    out: PathBuf,
    committed: bool,
}

impl PartFile {
    pub fn create(out: &str) -> Result<Self> {
        let out = PathBuf::from(out);
        if std::fs::metadata(&out).is_ok_and(|m| !m.is_file()) {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&out)
                .with_context(|| format!("cannot open {}", out.display()))?;
            return Ok(Self {
                file,
                tmp: None,
                out,
                committed: false,
            });
        }
        let tmp = out.with_file_name(format!(
            ".{}.part",
            out.file_name()
                .map(|s| s.to_string_lossy())
                .unwrap_or_default()
        ));
        let file =
            File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        Ok(Self {
            file,
            tmp: Some(tmp),
            out,
            committed: false,
        })
    }

    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// The target path, for messages.
    pub fn target(&self) -> &std::path::Path {
        &self.out
    }

    /// Gives the file its name.
    pub fn commit(mut self) -> Result<()> {
        if let Some(tmp) = &self.tmp {
            std::fs::rename(tmp, &self.out)
                .with_context(|| format!("cannot rename to {}", self.out.display()))?;
        }
        self.committed = true;
        Ok(())
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if !self.committed
            && let Some(tmp) = &self.tmp
        {
            let _ = std::fs::remove_file(tmp);
        }
    }
}
