//! Users and authentication.
//!
//! * **Users** live in `DIR/users.json` (mode 0600, replaced atomically), each with an
//!   argon2id PHC hash. On first start `admin` gets `WIRECAP_ADMIN_PASSWORD`, or a
//!   generated password that is printed once and kept in `DIR/initial-admin-password`
//!   (mode 0600).
//! * **Every request** carries credentials: HTTP Basic for scripts (`curl -u`), no bypass
//!   for localhost. An argon2 verification costs tens of milliseconds, so a success is
//!   remembered for [`CACHE_TTL`], keyed by a keyed BLAKE2b hash of user and password
//!   (the password itself is never kept).
//! * **Failures slow their network down**: failures count per address prefix (/24 for
//!   IPv4, /64 for IPv6: one host has many addresses there) and per account. After
//!   [`FREE_FAILURES`] failures from a prefix, its next attempt waits
//!   `250 ms × 2^(n-3)` after the last failure, up to [`MAX_DELAY`], and only one of its
//!   attempts is checked at a time: parallel ones are refused at once
//!   ([`Refusal::Busy`]). An account with more than [`ACCOUNT_FREE_FAILURES`] failures
//!   makes attempts on it from prefixes that have failed before wait the same way;
//!   attempts from prefixes that never failed are not slowed by the account (its owner
//!   still logs in while it is attacked). A success resets its prefix and account; both
//!   forget after [`FORGET_AFTER`] without failures.
//! * **Password hashes are bounded globally** ([`crate::password`]): a small fixed pool
//!   of threads with reused memory, bounded queues, and attempts from clean prefixes
//!   served before those from failing ones.
//! * **The browser UI** logs in once ([`crate::session`]): `POST /api/v1/session` checks
//!   the password here (same backoff), then [`Credentials::Session`] (the
//!   `wirecap_session` cookie) is looked up in [`Authenticator::sessions`]; the guard
//!   requires the session's `X-CSRF-Token` on every request that changes something.
//! * **API tokens** ([`crate::tokens`]): `Authorization: Bearer wct_…` is accepted wherever
//!   Basic is, and acts as `token:NAME` with the token's role. A wrong token counts no
//!   failure against its network: secrets are 256 random bits, so there is nothing to slow
//!   down, and a script still sending a revoked token must not slow its network's people.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHasher, SaltString};
use base64::Engine as _;
use blake2::digest::{FixedOutput, KeyInit, Update};
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext};

pub const USERS_FILE: &str = "users.json";
pub const INITIAL_PASSWORD_FILE: &str = "initial-admin-password";
pub const ADMIN: &str = "admin";
/// How long a verified password is remembered.
pub const CACHE_TTL: Duration = Duration::from_secs(60);
/// Failures from one address that cost nothing extra.
pub const FREE_FAILURES: u32 = 2;
/// The longest wait imposed on an address.
pub const MAX_DELAY: Duration = Duration::from_secs(8);
/// Failures an account takes (from anywhere) before attempts on it from failing prefixes
/// are slowed down too.
pub const ACCOUNT_FREE_FAILURES: u32 = 10;
/// An address without failures for this long starts afresh.
pub const FORGET_AFTER: Duration = Duration::from_secs(600);
const MAX_TRACKED: usize = 65_536;
const MAX_CACHED: usize = 4096;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    /// argon2id PHC string.
    pub hash: String,
    pub role: Role,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including capture start/stop and deleting streams.
    Admin,
    /// Read and download only (for users added later).
    Viewer,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    users: Vec<User>,
}

/// Hashes a password with argon2id (default parameters) and a random salt.
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

fn verify_hash(hash: &str, password: &str) -> bool {
    crate::password::verify_with(&mut Vec::new(), hash, password.as_bytes())
}

/// A random password of 20 characters from an unambiguous alphabet (~115 bits).
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut out = String::with_capacity(20);
    let mut buf = [0u8; 64];
    while out.len() < 20 {
        OsRng.fill_bytes(&mut buf);
        for b in buf {
            // Rejection sampling keeps the choice uniform.
            let limit = 256 - 256 % ALPHABET.len();
            if (b as usize) < limit && out.len() < 20 {
                out.push(ALPHABET[b as usize % ALPHABET.len()] as char);
            }
        }
    }
    out
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    crate::os::write_atomically_mode(path, bytes, 0o600).at(path)
}

/// Why a change to the users was refused.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("{0}")]
    InvalidName(String),
    #[error("{0}")]
    WeakPassword(String),
    #[error("user {0} exists already")]
    Exists(String),
    #[error("no user named {0}")]
    NoSuchUser(String),
    #[error("{0} is the last admin: add another admin first")]
    LastAdmin(String),
    #[error("{0}")]
    Store(#[from] Error),
}

/// Shortest password accepted for a new or changed password.
pub const MIN_PASSWORD_LEN: usize = 8;
/// Longest password accepted (argon2 takes any length; this bounds the work).
pub const MAX_PASSWORD_LEN: usize = 1024;

/// A user name: 1–32 of `a-z A-Z 0-9 _ . -`, starting with a letter or `_` (safe in a
/// URL path, a log line and a shell).
pub fn validate_user_name(name: &str) -> Result<(), UserError> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && safe_name_chars(name);
    if ok {
        Ok(())
    } else {
        Err(UserError::InvalidName(format!(
            "user name {:?}: use 1 to 32 letters, digits, '_', '.' or '-', starting with a letter or '_'",
            crate::short(name)
        )))
    }
}

/// Whether `name` is only `a-z A-Z 0-9 _ . -` (safe in a URL path, a log line, a shell):
/// user and API token names.
pub(crate) fn safe_name_chars(name: &str) -> bool {
    name.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// A new password: 8 to 1024 characters, no line breaks or NUL.
pub fn check_password(password: &str) -> Result<(), UserError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_LEN {
        return Err(UserError::WeakPassword(format!(
            "a password needs at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(UserError::WeakPassword(format!(
            "a password of at most {MAX_PASSWORD_LEN} bytes"
        )));
    }
    if password.contains(['\n', '\r', '\0']) {
        return Err(UserError::WeakPassword(
            "a password cannot contain line breaks or NUL".into(),
        ));
    }
    Ok(())
}

/// The lock file that serializes changes to `users.json` across processes.
pub const USERS_LOCK_FILE: &str = ".users.json.lock";

fn find_in<'a>(users: &'a [User], name: &str) -> Result<&'a User, UserError> {
    users
        .iter()
        .find(|u| u.name == name)
        .ok_or_else(|| UserError::NoSuchUser(crate::short(name).into_owned()))
}

fn admins_in(users: &[User]) -> usize {
    users.iter().filter(|u| u.role == Role::Admin).count()
}

/// What identifies a version of `users.json` on disk (to notice an offline change).
pub(crate) type Stamp = Option<(std::time::SystemTime, u64, u64)>;

pub(crate) fn stamp(path: &Path) -> Stamp {
    stamp_of(&std::fs::metadata(path).ok()?)
}

fn stamp_of(m: &std::fs::Metadata) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    Some((m.modified().ok()?, m.len(), m.ino()))
}

/// The file's bytes and the stamp of that very version (one open file: a writer renaming
/// a new version in between cannot pair old bytes with the new stamp, which would hide
/// the new version from [`Authenticator::reload_if_changed`] for good).
pub(crate) fn read_with_stamp(path: &Path) -> std::io::Result<(Vec<u8>, Stamp)> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let st = stamp_of(&f.metadata()?);
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    Ok((bytes, st))
}

/// What happened to the admin password at start-up (for the banner).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminLogin {
    /// First start, password from `WIRECAP_ADMIN_PASSWORD`.
    FromEnv,
    /// First start, generated: printed once, and kept in the file.
    Generated { password: String, file: PathBuf },
    /// Users existed already.
    Existing { initial_file: Option<PathBuf> },
}

/// The user database (small; read at start, written atomically on change).
#[derive(Debug, Clone)]
pub struct Users {
    path: PathBuf,
    users: Vec<User>,
    stamp: Stamp,
}

impl Users {
    /// Loads `DIR/users.json`, creating it with the admin user on first start.
    pub fn open_or_init(
        dir: &Path,
        env_password: Option<&str>,
    ) -> Result<(Self, AdminLogin), Error> {
        let path = dir.join(USERS_FILE);
        match read_with_stamp(&path) {
            Ok((bytes, file_stamp)) => {
                let f: UsersFile = serde_json::from_slice(&bytes).map_err(|e| Error::Users {
                    path: path.clone(),
                    why: e.to_string(),
                })?;
                for u in &f.users {
                    // Absurd argon2 parameters would hang every login (and this start).
                    crate::password::bounded_params(&u.hash).map_err(|why| Error::Users {
                        path: path.clone(),
                        why: format!("user {:?}: {why}", u.name),
                    })?;
                }
                if f.users.is_empty() {
                    return Err(Error::Users {
                        path,
                        why: "no users: delete the file to create the admin user again".into(),
                    });
                }
                let initial = dir.join(INITIAL_PASSWORD_FILE);
                let users = Self {
                    stamp: file_stamp,
                    path,
                    users: f.users,
                };
                if let Some(pw) = env_password
                    && let Some(admin) = users.users.iter().find(|u| u.name == ADMIN)
                    && !verify_hash(&admin.hash, pw)
                {
                    tracing::warn!(
                        "WIRECAP_ADMIN_PASSWORD is ignored: admin already has another password (in {})",
                        users.path.display()
                    );
                }
                Ok((
                    users,
                    AdminLogin::Existing {
                        initial_file: initial.exists().then_some(initial),
                    },
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (password, login) = match env_password {
                    Some(p) if !p.is_empty() => (p.to_owned(), AdminLogin::FromEnv),
                    _ => {
                        let p = generate_password();
                        let file = dir.join(INITIAL_PASSWORD_FILE);
                        write_private(&file, format!("{p}\n").as_bytes())?;
                        (p.clone(), AdminLogin::Generated { password: p, file })
                    }
                };
                let hash = hash_password(&password).map_err(|why| Error::Users {
                    path: path.clone(),
                    why,
                })?;
                let mut users = Self {
                    path,
                    users: vec![User {
                        name: ADMIN.into(),
                        hash,
                        role: Role::Admin,
                    }],
                    stamp: None,
                };
                users.save()?;
                Ok((users, login))
            }
            Err(e) => Err(e).at(&path),
        }
    }

    /// Loads an existing `DIR/users.json` (the offline `wirecap users` commands).
    pub fn load(dir: &Path) -> Result<Self, Error> {
        let path = dir.join(USERS_FILE);
        if !path.exists() {
            return Err(Error::Users {
                path,
                why: "no users yet: `wirecap serve` creates the admin user on first start".into(),
            });
        }
        Self::open_or_init(dir, None).map(|(u, _)| u)
    }

    fn save(&mut self) -> Result<(), Error> {
        let f = UsersFile {
            users: self.users.clone(),
        };
        let mut json = serde_json::to_vec_pretty(&f).map_err(|e| Error::Users {
            path: self.path.clone(),
            why: e.to_string(),
        })?;
        json.push(b'\n');
        write_private(&self.path, &json)?;
        // Under `change`'s flock no other wirecap writes between the rename and this stat.
        self.stamp = stamp(&self.path);
        Ok(())
    }

    fn find(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }

    /// Names and roles, in file order (never the hashes).
    pub fn list(&self) -> Vec<(String, Role)> {
        self.users
            .iter()
            .map(|u| (u.name.clone(), u.role))
            .collect()
    }

    pub fn role_of(&self, name: &str) -> Option<Role> {
        self.find(name).map(|u| u.role)
    }

    fn admins(&self) -> usize {
        admins_in(&self.users)
    }

    /// Applies `change` to a copy and saves it; on any error nothing changes. Holds
    /// `flock(DIR/.users.json.lock)` and starts from the file on disk when another process
    /// (`wirecap users …` beside the server) changed it, so neither loses the other's
    /// change. `change` checks its preconditions on what it is given.
    fn change(
        &mut self,
        change: impl FnOnce(&mut Vec<User>) -> Result<(), UserError>,
    ) -> Result<(), UserError> {
        let dir = self.path.parent().unwrap_or(Path::new(".")).to_owned();
        let lock = dir.join(USERS_LOCK_FILE);
        let _other_processes = crate::os::FileLock::exclusive(&lock).at(&lock)?;
        let mut next = if stamp(&self.path) == self.stamp {
            self.clone()
        } else {
            Self::load(&dir)?
        };
        change(&mut next.users)?;
        if next.admins() == 0 {
            // Every change path checks this before; this is the invariant's last line.
            return Err(UserError::LastAdmin(ADMIN.into()));
        }
        next.save()?;
        *self = next;
        Ok(())
    }

    /// Adds a user (argon2: tens of milliseconds; call from a blocking thread).
    pub fn add(&mut self, name: &str, password: &str, role: Role) -> Result<(), UserError> {
        validate_user_name(name)?;
        check_password(password)?;
        let hash = hash_password(password).map_err(UserError::WeakPassword)?;
        self.change(|u| {
            if u.iter().any(|x| x.name == name) {
                return Err(UserError::Exists(name.to_owned()));
            }
            u.push(User {
                name: name.to_owned(),
                hash,
                role,
            });
            Ok(())
        })
    }

    /// Removes a user; the last admin stays.
    pub fn remove(&mut self, name: &str) -> Result<(), UserError> {
        self.change(|u| {
            let user = find_in(u, name)?;
            if user.role == Role::Admin && admins_in(u) == 1 {
                return Err(UserError::LastAdmin(name.to_owned()));
            }
            u.retain(|x| x.name != name);
            Ok(())
        })
    }

    /// Sets a user's password.
    pub fn set_password(&mut self, name: &str, password: &str) -> Result<(), UserError> {
        find_in(&self.users, name)?;
        check_password(password)?;
        let hash = hash_password(password).map_err(UserError::WeakPassword)?;
        self.change(|u| {
            find_in(u, name)?;
            for x in u.iter_mut().filter(|x| x.name == name) {
                x.hash = hash.clone();
            }
            Ok(())
        })
    }

    /// Sets a user's role; the last admin cannot be demoted.
    pub fn set_role(&mut self, name: &str, role: Role) -> Result<(), UserError> {
        self.change(|u| {
            let user = find_in(u, name)?;
            if user.role == Role::Admin && role != Role::Admin && admins_in(u) == 1 {
                return Err(UserError::LastAdmin(name.to_owned()));
            }
            for x in u.iter_mut().filter(|x| x.name == name) {
                x.role = role;
            }
            Ok(())
        })
    }
}

/// Who made a request (put into the request's extensions by the auth layer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub role: Role,
}

/// Credentials as they arrived with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    Basic {
        user: String,
        password: String,
    },
    /// A session cookie (the browser UI's login, see [`crate::session`]).
    Session {
        id: String,
    },
    /// An API token (`Authorization: Bearer`, see [`crate::tokens`]).
    Bearer {
        token: String,
    },
}

/// The user name a request made with the API token `name` acts as (`:` is in no user name).
pub fn token_user(name: &str) -> String {
    format!("token:{name}")
}

/// Reads the credentials of a request from its `Authorization` and `Cookie` headers.
pub fn credentials(authorization: Option<&[u8]>, cookie: Option<&[u8]>) -> Option<Credentials> {
    if let Some(h) = authorization {
        let h = std::str::from_utf8(h).ok()?;
        let (scheme, b64) = h.trim().split_once(' ')?;
        if scheme.eq_ignore_ascii_case("bearer") && b64.len() <= 4096 {
            return Some(Credentials::Bearer {
                token: b64.trim().to_owned(),
            });
        }
        if !scheme.eq_ignore_ascii_case("basic") || b64.len() > 4096 {
            return None;
        }
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .ok()?;
        let s = String::from_utf8(raw).ok()?;
        let (user, password) = s.split_once(':')?;
        return Some(Credentials::Basic {
            user: user.to_owned(),
            password: password.to_owned(),
        });
    }
    let c = std::str::from_utf8(cookie?).ok()?;
    c.split(';').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == "wirecap_session").then(|| Credentials::Session { id: v.to_owned() })
    })
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No credentials at all (a browser's first request): no penalty.
    Missing,
    /// Wrong user, password or session.
    Wrong,
    /// Not checked: too many attempts from its network (or on its account) at once, or the
    /// password checks are all busy. Try again later.
    Busy,
}

/// What failures are counted against: a network (see [`prefix`]) or an account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Net(IpAddr),
    Account(String),
}

/// The network an address counts for: its /24 (IPv4) or /64 (IPv6).
pub fn prefix(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let [x, y, z, _] = a.octets();
            IpAddr::from([x, y, z, 0])
        }
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => prefix(IpAddr::V4(v4)),
            None => {
                let s = a.segments();
                IpAddr::from([s[0], s[1], s[2], s[3], 0, 0, 0, 0])
            }
        },
    }
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    /// An attempt counted here is being checked (or waits its turn) now.
    busy: bool,
}

/// Marks a key's attempt in progress; the mark goes when the attempt ends, or is
/// abandoned (its connection closed).
struct InFlight<'a> {
    auth: &'a Authenticator,
    keys: Vec<Key>,
    net: IpAddr,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut f = self.auth.failures.lock().unwrap_or_else(|e| e.into_inner());
        for k in &self.keys {
            if let Some(x) = f.get_mut(k) {
                x.busy = false;
            }
        }
        drop(f);
        let mut n = self.auth.checking.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = n.get_mut(&self.net) {
            *c -= 1;
            if *c == 0 {
                n.remove(&self.net);
            }
        }
    }
}

/// Attempts of one network checked at once in the clean lane; more go to the suspect
/// lane (a burst of guesses arrives before any of them has failed).
pub const CLEAN_PER_NETWORK: u32 = 2;

/// Checks credentials, remembers successes, slows failing addresses down.
#[derive(Debug)]
pub struct Authenticator {
    users: Mutex<Arc<Users>>,
    cache_key: [u8; 32],
    cache: Mutex<HashMap<[u8; 32], (Identity, Instant)>>,
    /// Counts changes to the users. A password check that began before a change must
    /// not be remembered after it (it may have read the old users), nor a session opened.
    generation: std::sync::atomic::AtomicU64,
    failures: Mutex<HashMap<Key, Failures>>,
    /// Attempts being checked now, per network (entries go at zero).
    checking: Mutex<HashMap<IpAddr, u32>>,
    /// Bounds the CPU and memory spent on argon2 at once (see [`crate::password`]).
    hashing: crate::password::Pool,
    dummy_hash: String,
    /// The browser UI's sessions (see [`crate::session`]).
    pub sessions: crate::session::Sessions,
    /// API tokens (see [`crate::tokens`]), from the users' directory.
    tokens: Mutex<crate::tokens::Tokens>,
}

/// The wait imposed on an address with `failures` failures.
pub fn backoff(failures: u32) -> Duration {
    if failures <= FREE_FAILURES {
        return Duration::ZERO;
    }
    let exp = (failures - FREE_FAILURES - 1).min(16);
    (Duration::from_millis(250) * (1u32 << exp)).min(MAX_DELAY)
}

impl Authenticator {
    pub fn new(users: Users) -> Self {
        let mut cache_key = [0u8; 32];
        OsRng.fill_bytes(&mut cache_key);
        let dir = users.path.parent().unwrap_or(Path::new(".")).to_owned();
        let tokens = crate::tokens::Tokens::load(&dir).unwrap_or_else(|e| {
            tracing::error!("no API token is accepted: {e}");
            crate::tokens::Tokens::unreadable(&dir)
        });
        Self {
            tokens: Mutex::new(tokens),
            users: Mutex::new(Arc::new(users)),
            cache_key,
            cache: Mutex::new(HashMap::new()),
            generation: std::sync::atomic::AtomicU64::new(0),
            failures: Mutex::new(HashMap::new()),
            checking: Mutex::new(HashMap::new()),
            hashing: crate::password::Pool::default(),
            dummy_hash: hash_password("not a password of anyone").unwrap_or_default(),
            sessions: crate::session::Sessions::default(),
        }
    }

    /// The API tokens (never their secrets).
    pub fn list_tokens(&self) -> Vec<crate::tokens::TokenInfo> {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner()).list()
    }

    /// Makes an API token (a small file write: call from a blocking thread).
    pub fn create_token(
        &self,
        name: &str,
        role: Role,
        by: &str,
    ) -> Result<crate::tokens::NewToken, crate::tokens::TokenError> {
        let mut t = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        let made = t.create(name, role, by)?;
        tracing::info!(token = %name, ?role, by, "API token made");
        Ok(made)
    }

    /// Revokes an API token: refused from the next request on (a file write: call from a
    /// blocking thread).
    pub fn revoke_token(&self, name: &str) -> Result<(), crate::tokens::TokenError> {
        let mut t = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        t.revoke(name)?;
        tracing::info!(token = %crate::short(name), "API token revoked");
        Ok(())
    }

    /// Names and roles of the users.
    pub fn list_users(&self) -> Vec<(String, Role)> {
        self.users.lock().unwrap_or_else(|e| e.into_inner()).list()
    }

    /// Changes the users through `f` (which saves `users.json`); then every session and
    /// remembered password of `affected` ends, so a removed user, an old password or a
    /// lost role stops working at once. Blocking (argon2, file writes).
    pub fn change_users<T>(
        &self,
        affected: &str,
        f: impl FnOnce(&mut Users) -> Result<T, UserError>,
    ) -> Result<T, UserError> {
        self.change_users_keeping(affected, None, f)
    }

    /// [`Self::change_users`], but the session `keep` survives: a user who changes their
    /// own password stays signed in where they did it (their other sessions end).
    pub fn change_users_keeping<T>(
        &self,
        affected: &str,
        keep: Option<&str>,
        f: impl FnOnce(&mut Users) -> Result<T, UserError>,
    ) -> Result<T, UserError> {
        // Another process's change first, with its sessions ended (see `reload_if_changed`).
        self.reload_if_changed();
        let mut guard = self.users.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = (**guard).clone();
        let out = f(&mut next)?;
        *guard = Arc::new(next);
        drop(guard);
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.sessions.remove_user_except(affected, keep);
        Ok(out)
    }

    /// The users' version now (see [`Self::generation`]'s field).
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn forget(&self, users: &[String]) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        // The cache is keyed by a hash of user and password: it cannot be searched by
        // user, and it refills at one argon2 per user and minute.
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).clear();
        for u in users {
            self.sessions.remove_user(u);
        }
    }

    /// Picks up a change made to `users.json` by another process (`wirecap users …`
    /// beside the running server): ends the sessions of users removed, re-passworded or
    /// re-roled. Cheap when nothing changed (one stat); call about once a second.
    pub fn reload_if_changed(&self) {
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .reload_if_changed();
        let (path, old_stamp) = {
            let g = self.users.lock().unwrap_or_else(|e| e.into_inner());
            (g.path.clone(), g.stamp)
        };
        if stamp(&path) == old_stamp {
            return;
        }
        let Some(dir) = path.parent() else { return };
        let fresh = match Users::load(dir) {
            Ok(u) => u,
            Err(e) => {
                tracing::error!(
                    "{USERS_FILE} changed but cannot be read; keeping the users in memory: {e}"
                );
                // Remember this version so that the error is logged once.
                let mut g = self.users.lock().unwrap_or_else(|e| e.into_inner());
                let mut same = (**g).clone();
                same.stamp = stamp(&path);
                *g = Arc::new(same);
                return;
            }
        };
        let mut g = self.users.lock().unwrap_or_else(|e| e.into_inner());
        let changed: Vec<String> = g
            .users
            .iter()
            .filter(|old| fresh.find(&old.name) != Some(old))
            .map(|u| u.name.clone())
            .collect();
        *g = Arc::new(fresh);
        drop(g);
        tracing::info!(?changed, "{USERS_FILE} changed on disk: users reloaded");
        self.forget(&changed);
    }

    fn fingerprint(&self, user: &str, password: &str) -> [u8; 32] {
        let mut h =
            blake2::Blake2bMac::<blake2::digest::consts::U32>::new_from_slice(&self.cache_key)
                .expect("32-byte key is valid for BLAKE2b");
        h.update(&(user.len() as u64).to_le_bytes());
        h.update(user.as_bytes());
        h.update(password.as_bytes());
        h.finalize_fixed().into()
    }

    /// The wait owed by `ip`'s network now (before its next attempt is checked).
    pub fn delay_for(&self, ip: IpAddr) -> Duration {
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        Self::owed(&mut f, &Key::Net(prefix(ip)), FREE_FAILURES)
    }

    fn owed(f: &mut HashMap<Key, Failures>, key: &Key, free: u32) -> Duration {
        match f.get(key) {
            Some(x) if x.last.elapsed() > FORGET_AFTER && !x.busy => {
                f.remove(key);
                Duration::ZERO
            }
            Some(x) if x.count > free => {
                backoff(x.count - free + FREE_FAILURES).saturating_sub(x.last.elapsed())
            }
            _ => Duration::ZERO,
        }
    }

    /// Admits an attempt by `user` from `ip`: the wait it owes, its lane, and its marks;
    /// `Err(Busy)` when its network (or, from a failing network, its account) has an
    /// attempt in progress while being slowed down.
    fn admit(
        &self,
        user: &str,
        ip: IpAddr,
    ) -> Result<(Duration, crate::password::Lane, InFlight<'_>), Refusal> {
        let net = Key::Net(prefix(ip));
        let account = Key::Account(user.to_owned());
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let net_wait = Self::owed(&mut f, &net, FREE_FAILURES);
        let suspect = f.get(&net).is_some_and(|x| x.count > 0);
        let slowed_net = f.get(&net).is_some_and(|x| x.count > FREE_FAILURES);
        let mut keys = Vec::new();
        let mut wait = net_wait;
        if slowed_net {
            if f.get(&net).is_some_and(|x| x.busy) {
                return Err(Refusal::Busy);
            }
            keys.push(net.clone());
        }
        if suspect {
            let acc_wait = Self::owed(&mut f, &account, ACCOUNT_FREE_FAILURES);
            if f.get(&account)
                .is_some_and(|x| x.count > ACCOUNT_FREE_FAILURES)
            {
                if f.get(&account).is_some_and(|x| x.busy) {
                    return Err(Refusal::Busy);
                }
                keys.push(account);
                wait = wait.max(acc_wait);
            }
        }
        for k in &keys {
            if let Some(x) = f.get_mut(k) {
                x.busy = true;
            }
        }
        drop(f);
        let net_ip = prefix(ip);
        let before = {
            let mut n = self.checking.lock().unwrap_or_else(|e| e.into_inner());
            let c = n.entry(net_ip).or_insert(0);
            *c += 1;
            *c - 1
        };
        let lane = if suspect || before >= CLEAN_PER_NETWORK {
            crate::password::Lane::Suspect
        } else {
            crate::password::Lane::Clean
        };
        Ok((
            wait,
            lane,
            InFlight {
                auth: self,
                keys,
                net: net_ip,
            },
        ))
    }

    fn record_failure(&self, user: &str, ip: IpAddr) {
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if f.len() >= MAX_TRACKED {
            f.retain(|_, x| x.busy || x.last.elapsed() <= FORGET_AFTER);
            if f.len() >= MAX_TRACKED {
                f.retain(|_, x| x.busy);
            }
        }
        for key in [Key::Net(prefix(ip)), Key::Account(user.to_owned())] {
            let e = f.entry(key).or_insert(Failures {
                count: 0,
                last: Instant::now(),
                busy: false,
            });
            e.count = e.count.saturating_add(1);
            e.last = Instant::now();
        }
    }

    fn record_success(&self, user: &str, ip: IpAddr) {
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        f.remove(&Key::Net(prefix(ip)));
        f.remove(&Key::Account(user.to_owned()));
    }

    /// Verifies a password on the hashing pool. Does not touch the cache or the failure
    /// counts. `Err(Busy)` when the pool's queue for `lane` is full.
    async fn verify_on(
        &self,
        lane: crate::password::Lane,
        user: &str,
        password: &str,
    ) -> Result<Option<Identity>, Refusal> {
        let users = self.users.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let found = users.find(user).cloned();
        // An unknown user costs the same as a wrong password, so that names cannot be
        // told apart by timing.
        let hash = found
            .as_ref()
            .map_or_else(|| self.dummy_hash.clone(), |u| u.hash.clone());
        let ok = self
            .hashing
            .verify(lane, hash, password.to_owned())
            .await
            .ok_or(Refusal::Busy)?;
        Ok(match found {
            Some(u) if ok => Some(Identity {
                user: u.name,
                role: u.role,
            }),
            _ => None,
        })
    }

    /// Verifies a password (argon2 on the hashing pool). Does not touch the cache or the
    /// failure counts.
    pub async fn verify(&self, user: &str, password: &str) -> Option<Identity> {
        self.verify_on(crate::password::Lane::Clean, user, password)
            .await
            .ok()
            .flatten()
    }

    /// Checks a request's credentials from `ip`, waiting first if `ip`'s network (or the
    /// account, from a failing network) has failed before.
    pub async fn check(&self, creds: Option<Credentials>, ip: IpAddr) -> Result<Identity, Refusal> {
        let (user, password) = match creds {
            None => return Err(Refusal::Missing),
            // A live session is its user; an unknown or expired one is no credential
            // (no failure penalty: ids are unguessable, see `crate::session`).
            Some(Credentials::Session { id }) => {
                let who = self.sessions.check(&id)?;
                // A session opened while its user was being removed or re-roled.
                let now = self
                    .users
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .role_of(&who.user);
                if now != Some(who.role) {
                    self.sessions.remove(&id);
                    return Err(Refusal::Missing);
                }
                return Ok(who);
            }
            Some(Credentials::Bearer { token }) => {
                let found = self
                    .tokens
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .check(&token);
                return found
                    .map(|(name, role)| Identity {
                        user: token_user(&name),
                        role,
                    })
                    .ok_or(Refusal::Wrong);
            }
            Some(Credentials::Basic { user, password }) => (user, password),
        };
        let key = self.fingerprint(&user, &password);
        {
            let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((id, at)) = c.get(&key) {
                if at.elapsed() < CACHE_TTL {
                    return Ok(id.clone());
                }
                c.remove(&key);
            }
        }
        let (wait, lane, in_flight) = self.admit(&user, ip)?;
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let generation = self.generation();
        let checked = self.verify_on(lane, &user, &password).await;
        drop(in_flight);
        match checked? {
            Some(id) => {
                self.record_success(&user, ip);
                let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
                if c.len() >= MAX_CACHED {
                    c.clear();
                }
                // Under the cache's lock: a change bumps the generation before it clears
                // the cache, so either this entry is cleared or it is never added.
                if self.generation() == generation {
                    c.insert(key, (id.clone(), Instant::now()));
                }
                Ok(id)
            }
            None => {
                self.record_failure(&user, ip);
                Err(Refusal::Wrong)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(0), Duration::ZERO);
        assert_eq!(backoff(FREE_FAILURES), Duration::ZERO);
        assert_eq!(backoff(FREE_FAILURES + 1), Duration::from_millis(250));
        assert_eq!(backoff(FREE_FAILURES + 3), Duration::from_millis(1000));
        assert_eq!(backoff(1000), MAX_DELAY);
    }

    #[test]
    fn reads_basic_credentials() {
        let h = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("admin:pa:ss")
        );
        assert_eq!(
            credentials(Some(h.as_bytes()), None),
            Some(Credentials::Basic {
                user: "admin".into(),
                password: "pa:ss".into()
            })
        );
        assert_eq!(credentials(Some(b"Basic !!!"), None), None);
        assert_eq!(
            credentials(Some(b"Bearer wct_x"), Some(b"wirecap_session=xyz")),
            Some(Credentials::Bearer {
                token: "wct_x".into()
            })
        );
        assert_eq!(credentials(None, None), None);
        assert_eq!(
            credentials(None, Some(b"a=b; wirecap_session=xyz")),
            Some(Credentials::Session { id: "xyz".into() })
        );
    }

    #[tokio::test]
    async fn users_are_managed_and_the_last_admin_stays() {
        let d = tempfile::tempdir().unwrap();
        let (users, _) = Users::open_or_init(d.path(), Some("s3cret-admin")).unwrap();
        let a = Authenticator::new(users);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let basic = |u: &str, p: &str| {
            Some(Credentials::Basic {
                user: u.into(),
                password: p.into(),
            })
        };
        a.change_users("bob", |u| u.add("bob", "bob-password", Role::Viewer))
            .unwrap();
        assert!(matches!(
            a.change_users("bob", |u| u.add("bob", "xxxxxxxxx", Role::Viewer)),
            Err(UserError::Exists(_))
        ));
        assert!(matches!(
            a.change_users("x", |u| u.add("x y", "xxxxxxxxx", Role::Viewer)),
            Err(UserError::InvalidName(_))
        ));
        assert!(matches!(
            a.change_users("c", |u| u.add("c", "short", Role::Viewer)),
            Err(UserError::WeakPassword(_))
        ));
        let bob = a.check(basic("bob", "bob-password"), ip).await.unwrap();
        assert_eq!(bob.role, Role::Viewer);
        let (sid, _) = a.sessions.create(bob);
        // A changed password ends the cached Basic login and the session at once.
        a.change_users("bob", |u| u.set_password("bob", "new-password"))
            .unwrap();
        assert_eq!(a.sessions.check(&sid), Err(Refusal::Missing));
        assert_eq!(
            a.check(basic("bob", "bob-password"), ip).await,
            Err(Refusal::Wrong)
        );
        assert!(a.check(basic("bob", "new-password"), ip).await.is_ok());
        // The last admin can be neither removed nor demoted.
        assert!(matches!(
            a.change_users(ADMIN, |u| u.remove(ADMIN)),
            Err(UserError::LastAdmin(_))
        ));
        assert!(matches!(
            a.change_users(ADMIN, |u| u.set_role(ADMIN, Role::Viewer)),
            Err(UserError::LastAdmin(_))
        ));
        a.change_users("bob", |u| u.set_role("bob", Role::Admin))
            .unwrap();
        a.change_users(ADMIN, |u| u.remove(ADMIN)).unwrap();
        assert_eq!(a.list_users(), vec![("bob".to_owned(), Role::Admin)]);
        // What was saved is what a restart loads.
        let again = Users::load(d.path()).unwrap();
        assert_eq!(again.list(), a.list_users());
        let text = std::fs::read_to_string(d.path().join(USERS_FILE)).unwrap();
        assert!(!text.contains("new-password"));
    }

    #[tokio::test]
    async fn an_offline_change_is_picked_up() {
        let d = tempfile::tempdir().unwrap();
        let (users, _) = Users::open_or_init(d.path(), Some("s3cret-admin")).unwrap();
        let a = Authenticator::new(users);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let creds = Some(Credentials::Basic {
            user: ADMIN.into(),
            password: "s3cret-admin".into(),
        });
        let admin = a.check(creds.clone(), ip).await.unwrap();
        let (sid, _) = a.sessions.create(admin);
        let mut other = Users::load(d.path()).unwrap();
        other.set_password(ADMIN, "changed-offline").unwrap();
        a.reload_if_changed();
        assert_eq!(a.sessions.check(&sid), Err(Refusal::Missing));
        assert_eq!(a.check(creds, ip).await, Err(Refusal::Wrong));
    }

    #[tokio::test]
    async fn bearer_tokens_act_with_their_role_until_revoked() {
        let d = tempfile::tempdir().unwrap();
        let (users, _) = Users::open_or_init(d.path(), Some("s3cret-admin")).unwrap();
        let a = Authenticator::new(users);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let made = a.create_token("backup", Role::Viewer, ADMIN).unwrap();
        let bearer = |t: &str| {
            Some(Credentials::Bearer {
                token: t.to_owned(),
            })
        };
        let id = a.check(bearer(&made.token), ip).await.unwrap();
        assert_eq!(id.user, "token:backup");
        assert_eq!(id.role, Role::Viewer);
        assert!(a.list_tokens()[0].last_used.is_some());
        // Wrong tokens are refused and cost the network nothing.
        for _ in 0..10 {
            assert_eq!(a.check(bearer("wct_guess"), ip).await, Err(Refusal::Wrong));
        }
        assert_eq!(a.delay_for(ip), Duration::ZERO);
        a.revoke_token("backup").unwrap();
        assert_eq!(a.check(bearer(&made.token), ip).await, Err(Refusal::Wrong));
        // A token made beside the server (`wirecap tokens add`) works after its tick.
        let mut other = crate::tokens::Tokens::load(d.path()).unwrap();
        let cli = other.create("cron", Role::Admin, "command line").unwrap();
        a.reload_if_changed();
        assert_eq!(
            a.check(bearer(&cli.token), ip).await.unwrap().role,
            Role::Admin
        );
    }

    #[test]
    fn generated_passwords_are_distinct() {
        let a = generate_password();
        assert_eq!(a.len(), 20);
        assert_ne!(a, generate_password());
    }

    /// Issue 17.11: m = 4 GiB in users.json hung start-up and every login.
    #[test]
    fn absurd_hash_parameters_are_refused_on_load() {
        let d = tempfile::tempdir().unwrap();
        let hash = "$argon2id$v=19$m=4194304,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY";
        let json = serde_json::json!({"users": [{"name": "admin", "hash": hash, "role": "admin"}]});
        std::fs::write(d.path().join(USERS_FILE), json.to_string()).unwrap();
        let t = Instant::now();
        let e = Users::open_or_init(d.path(), Some("whatever-password"))
            .unwrap_err()
            .to_string();
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert!(
            e.contains("\"admin\"") && e.contains("m = 4194304 KiB"),
            "{e}"
        );
    }

    #[test]
    fn failures_count_per_network() {
        assert_eq!(
            prefix("10.1.2.3".parse().unwrap()),
            prefix("10.1.2.200".parse().unwrap())
        );
        assert_ne!(
            prefix("10.1.2.3".parse().unwrap()),
            prefix("10.1.3.3".parse().unwrap())
        );
        assert_eq!(
            prefix("2001:db8::1".parse().unwrap()),
            prefix("2001:db8::ffff:1".parse().unwrap())
        );
        assert_eq!(
            prefix("::ffff:10.1.2.3".parse().unwrap()),
            prefix("10.1.2.9".parse().unwrap())
        );
    }

    #[tokio::test]
    async fn first_start_creates_admin_and_checks_passwords() {
        let d = tempfile::tempdir().unwrap();
        let (users, login) = Users::open_or_init(d.path(), Some("s3cret")).unwrap();
        assert_eq!(login, AdminLogin::FromEnv);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.path().join(USERS_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let a = Authenticator::new(users);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let basic = |p: &str| {
            Some(Credentials::Basic {
                user: "admin".into(),
                password: p.into(),
            })
        };
        assert_eq!(a.check(basic("s3cret"), ip).await.unwrap().user, "admin");
        assert_eq!(a.check(basic("nope"), ip).await, Err(Refusal::Wrong));
        assert_eq!(a.check(None, ip).await, Err(Refusal::Missing));
        // Known-good credentials are not slowed by the address's failures.
        for _ in 0..5 {
            let _ = a.check(basic("nope"), ip).await;
        }
        let delay = a.delay_for(ip);
        assert!(delay >= Duration::from_millis(500), "{delay:?}");
        // Compared with the backoff itself, not a guessed bound: had the correct login
        // waited its turn, it would have taken at least `delay`.
        let t = Instant::now();
        assert!(a.check(basic("s3cret"), ip).await.is_ok());
        assert!(
            t.elapsed() < delay,
            "a correct login took {:?}; the address's backoff is {delay:?}",
            t.elapsed()
        );

        // A second start keeps the users; a generated password is kept 0600.
        let (_, login) = Users::open_or_init(d.path(), None).unwrap();
        assert_eq!(login, AdminLogin::Existing { initial_file: None });
        let d2 = tempfile::tempdir().unwrap();
        let (_, login) = Users::open_or_init(d2.path(), None).unwrap();
        let AdminLogin::Generated { password, file } = login else {
            panic!("expected a generated password");
        };
        assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), password);
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
