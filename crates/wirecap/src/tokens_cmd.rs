//! `wirecap tokens list|add|revoke --data DIR`: the API tokens of `DIR/tokens.json`,
//! changed on the host (a running server picks the change up within a second).

use std::process::ExitCode;

use anyhow::{Context, Result};
use wirecap_appliance::auth::Role;
use wirecap_appliance::tokens::Tokens;

use crate::users_cmd::{Dir, RoleArg};

#[derive(Debug, clap::Args)]
pub struct TokensArgs {
    #[command(subcommand)]
    cmd: TokensCmd,
}

#[derive(Debug, clap::Subcommand)]
enum TokensCmd {
    /// List tokens: name, role, made by, made at, last used
    List(Dir),
    /// Make a token; its secret is printed once on standard output (send it as
    /// `Authorization: Bearer SECRET`, e.g. `curl -H "Authorization: Bearer $T"`)
    Add {
        #[command(flatten)]
        dir: Dir,
        name: String,
        #[arg(long, value_enum, default_value = "viewer")]
        role: RoleArg,
    },
    /// Revoke a token: refused from then on
    Revoke {
        #[command(flatten)]
        dir: Dir,
        name: String,
    },
}

fn load(dir: &Dir) -> Result<Tokens> {
    Tokens::load(&dir.data).with_context(|| format!("API tokens of {}", dir.data.display()))
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Admin => "admin",
        Role::Viewer => "viewer",
    }
}

pub fn run(a: TokensArgs) -> Result<ExitCode> {
    match a.cmd {
        TokensCmd::List(dir) => {
            for t in load(&dir)?.list() {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    t.name,
                    role_name(t.role),
                    t.created_by,
                    t.created,
                    t.last_used.as_deref().unwrap_or("never used")
                );
            }
        }
        TokensCmd::Add { dir, name, role } => {
            let role = Role::from(role);
            let made = load(&dir)?.create(&name, role, "command line")?;
            println!("{}", made.token);
            eprintln!(
                "made token {name} ({}); the secret above is shown this once: send it as `Authorization: Bearer SECRET`",
                role_name(role)
            );
        }
        TokensCmd::Revoke { dir, name } => {
            load(&dir)?.revoke(&name)?;
            eprintln!("revoked token {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
