//! `wirecap release keygen|pack`: make signing keys and release archives for the
//! appliance's software update (format in `wirecap_appliance::release`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use wirecap_appliance::release;

#[derive(Debug, clap::Args)]
pub struct ReleaseArgs {
    #[command(subcommand)]
    cmd: ReleaseCmd,
}

#[derive(Debug, clap::Subcommand)]
enum ReleaseCmd {
    /// Make an ed25519 signing key: the secret goes to FILE (mode 0600), the public key to
    /// FILE.pub and standard output (put it in [update] trusted_keys on the appliances)
    Keygen {
        /// Where to write the secret key (refuses to overwrite)
        #[arg(short = 'o', long = "out", value_name = "FILE")]
        out: PathBuf,
    },
    /// Pack a wirecap binary into wirecap-VERSION.tar.gz with its manifest (version, sha256,
    /// optional signature)
    Pack {
        /// The wirecap binary to ship
        #[arg(long, value_name = "PATH")]
        binary: PathBuf,
        /// The version the binary reports (`wirecap --version`)
        #[arg(long = "version", value_name = "V")]
        version: String,
        /// Sign with this secret key (from `wirecap release keygen`)
        #[arg(long, value_name = "FILE")]
        sign_key: Option<PathBuf>,
        /// Output archive (default wirecap-VERSION.tar.gz)
        #[arg(short = 'o', long = "out", value_name = "OUT")]
        out: Option<PathBuf>,
    },
}

pub fn run(a: ReleaseArgs) -> Result<ExitCode> {
    match a.cmd {
        ReleaseCmd::Keygen { out } => {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let (secret, public) = release::keygen()?;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&out)
                .with_context(|| {
                    format!("{} (an existing key is never overwritten)", out.display())
                })?;
            writeln!(f, "{secret}")?;
            f.sync_all()?;
            let mut pub_path = out.clone().into_os_string();
            pub_path.push(".pub");
            std::fs::write(&pub_path, format!("{public}\n"))
                .with_context(|| format!("{}", PathBuf::from(&pub_path).display()))?;
            println!("{public}");
            eprintln!(
                "secret key in {} (keep it off the appliances); public key in {}",
                out.display(),
                PathBuf::from(&pub_path).display()
            );
        }
        ReleaseCmd::Pack {
            binary,
            version,
            sign_key,
            out,
        } => {
            let key = sign_key
                .map(|p| {
                    let text = std::fs::read_to_string(&p)
                        .with_context(|| format!("signing key {}", p.display()))?;
                    release::read_signing_key(&text)
                        .with_context(|| format!("signing key {}", p.display()))
                })
                .transpose()?;
            let out = out.unwrap_or_else(|| PathBuf::from(format!("wirecap-{version}.tar.gz")));
            let m = release::pack(&binary, &version, key.as_ref(), &out)
                .with_context(|| format!("packing {}", binary.display()))?;
            println!(
                "{}: version {} sha256 {}{}",
                out.display(),
                m.version,
                m.sha256,
                if m.signature.is_some() {
                    " (signed)"
                } else {
                    ""
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
