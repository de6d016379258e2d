//! `wirecap report --data DIR [--recipient age1…] [-o FILE]`: a system report made from
//! the data directory (no server needed), kept in `DIR/upload/`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use wirecap_appliance::config::FileConfig;
use wirecap_appliance::report;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "The archive holds the logs, configuration (secrets removed), user \
names and roles, stream list, interfaces and system facts, and a filelist with sha256 of \
every file. A running server's report (POST /api/v1/report) also holds the live status and \
counters history.\n\nExample:\n  wirecap report --data /var/lib/wirecap --recipient age1… -o /tmp/"
)]
pub struct ReportArgs {
    /// Data directory (also from WIRECAP_DATA)
    #[arg(long, env = "WIRECAP_DATA", value_name = "DIR")]
    data: PathBuf,
    /// Encrypt to this age public key (age1…); the file then ends in .tar.gz.age
    #[arg(long, value_name = "AGE_PUBLIC_KEY")]
    recipient: Option<String>,
    /// Also copy the report here (a file, or an existing directory)
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    out: Option<PathBuf>,
}

pub fn run(a: ReportArgs) -> Result<ExitCode> {
    let recipient = a
        .recipient
        .as_deref()
        .map(report::parse_recipient)
        .transpose()?;
    let config = FileConfig::load(&a.data)?;
    let input = report::Input {
        dir: a.data.clone(),
        hostname: wirecap_appliance::hostname::effective(config.hostname.as_deref()),
        status: None,
        recipient,
        now_ns: wirecap_store::now_ns(),
    };
    let progress = report::Progress::default();
    let path = report::build(&input, &progress)
        .with_context(|| format!("report of {}", a.data.display()))?;
    if let Some(out) = a.out {
        let dest = if out.is_dir() {
            out.join(path.file_name().unwrap_or_default())
        } else {
            out
        };
        report::copy_to(&path, &dest)?;
        println!("{}", dest.display());
    } else {
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
