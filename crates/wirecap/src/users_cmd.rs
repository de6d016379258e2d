//! `wirecap users list|add|remove|passwd|role --data DIR`: the users of `DIR/users.json`,
//! changed offline (a running server picks the change up within a second and ends the
//! sessions of the users changed).

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use wirecap_appliance::auth::{Role, Users};

#[derive(Debug, clap::Args)]
pub struct UsersArgs {
    #[command(subcommand)]
    cmd: UsersCmd,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum RoleArg {
    /// Everything, including capture control, deletion, users and configuration
    Admin,
    /// Read and download only
    Viewer,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Admin => Self::Admin,
            RoleArg::Viewer => Self::Viewer,
        }
    }
}

/// The data directory of the offline commands (users, tokens).
#[derive(Debug, clap::Args)]
pub(crate) struct Dir {
    /// Data directory (also from WIRECAP_DATA)
    #[arg(long, env = "WIRECAP_DATA", value_name = "DIR")]
    pub(crate) data: PathBuf,
}

#[derive(Debug, clap::Subcommand)]
enum UsersCmd {
    /// List users and their roles
    List(Dir),
    /// Add a user; the password is read from standard input (one line) or prompted for
    Add {
        #[command(flatten)]
        dir: Dir,
        name: String,
        #[arg(long, value_enum, default_value = "viewer")]
        role: RoleArg,
    },
    /// Remove a user (not the last admin)
    Remove {
        #[command(flatten)]
        dir: Dir,
        name: String,
    },
    /// Change a user's password (read from standard input or prompted for)
    Passwd {
        #[command(flatten)]
        dir: Dir,
        name: String,
    },
    /// Change a user's role (the last admin stays admin)
    Role {
        #[command(flatten)]
        dir: Dir,
        name: String,
        #[arg(value_enum)]
        role: RoleArg,
    },
}

/// A password: one line of standard input when it is not a terminal, else asked twice
/// without echo.
fn read_password(user: &str) -> Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        let pw = line.trim_end_matches(['\n', '\r']).to_owned();
        if pw.is_empty() {
            bail!("no password on standard input (give it as one line)");
        }
        return Ok(pw);
    }
    let a = rpassword::prompt_password(format!("New password for {user}: "))?;
    let b = rpassword::prompt_password("Again: ")?;
    if a != b {
        bail!("the two passwords differ; nothing changed");
    }
    Ok(a)
}

fn load(dir: &Dir) -> Result<Users> {
    Users::load(&dir.data).with_context(|| format!("users of {}", dir.data.display()))
}

pub fn run(a: UsersArgs) -> Result<ExitCode> {
    match a.cmd {
        UsersCmd::List(dir) => {
            for (name, role) in load(&dir)?.list() {
                let role = match role {
                    Role::Admin => "admin",
                    Role::Viewer => "viewer",
                };
                println!("{name}\t{role}");
            }
        }
        UsersCmd::Add { dir, name, role } => {
            let mut users = load(&dir)?;
            wirecap_appliance::auth::validate_user_name(&name)?;
            let pw = read_password(&name)?;
            users.add(&name, &pw, role.into())?;
            eprintln!("added {name} ({role:?})");
        }
        UsersCmd::Remove { dir, name } => {
            load(&dir)?.remove(&name)?;
            eprintln!("removed {name}");
        }
        UsersCmd::Passwd { dir, name } => {
            let mut users = load(&dir)?;
            if users.role_of(&name).is_none() {
                bail!("no user named {name}");
            }
            let pw = read_password(&name)?;
            users.set_password(&name, &pw)?;
            eprintln!("password of {name} changed");
        }
        UsersCmd::Role { dir, name, role } => {
            load(&dir)?.set_role(&name, role.into())?;
            eprintln!("{name} is now {role:?}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
