//! `wirecap hostname --data DIR [NAME]`: shows or sets the appliance's hostname in
//! `DIR/wirecap.toml` (applied to the OS when `apply_hostname_to_os = true` and the
//! process has CAP_SYS_ADMIN; a running server shows it within a second).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use wirecap_appliance::config::FileConfig;

#[derive(Debug, clap::Args)]
pub struct HostnameArgs {
    /// Data directory (also from WIRECAP_DATA)
    #[arg(long, env = "WIRECAP_DATA", value_name = "DIR")]
    data: PathBuf,
    /// The new hostname (RFC 1123: letters, digits, hyphens, dot-separated labels);
    /// without it, print the current one
    name: Option<String>,
}

pub fn run(a: HostnameArgs) -> Result<ExitCode> {
    let Some(name) = a.name else {
        let c = FileConfig::load(&a.data)?;
        println!(
            "{}",
            wirecap_appliance::hostname::effective(c.hostname.as_deref())
        );
        return Ok(ExitCode::SUCCESS);
    };
    wirecap_appliance::hostname::validate(&name).map_err(|e| anyhow!(e))?;
    let os = wirecap_appliance::config::set_hostname(&a.data, &name, |_| {})
        .map_err(|e| anyhow!(e))
        .with_context(|| format!("hostname in {}", a.data.display()))?;
    eprintln!("hostname set to {name} (OS: {os})");
    Ok(ExitCode::SUCCESS)
}
