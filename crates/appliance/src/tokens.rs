//! API tokens: credentials for scripts, so that no script holds a person's password.
//!
//! * A token has a **name** and a **role** (one of [`Role`]), is made by an admin (the API,
//!   the UI's Tools page) or on the host (`wirecap tokens add`), and its secret is shown
//!   **once**, when it is made. Requests carry it as `Authorization: Bearer wct_…`,
//!   wherever Basic credentials are accepted; the request then acts as `token:NAME` with
//!   the token's role.
//! * `DIR/tokens.json` (mode 0600, replaced atomically, changes serialized by
//!   `flock(DIR/.tokens.json.lock)` like `users.json`) keeps each token's **hash**, never
//!   the secret, with who made it, when, and when it was last used.
//! * **Revoking** removes the token; a running server drops it at once (API) or within a
//!   second (`wirecap tokens revoke` beside it, see [`Tokens::reload_if_changed`]).
//! * **Last used** is kept in memory on every request and written at most once a minute
//!   per token, by the server's once-a-second tick (never on the request path).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use argon2::password_hash::rand_core::{OsRng, RngCore};
use base64::Engine as _;
use blake2::Digest as _;
use serde::{Deserialize, Serialize};

use crate::auth::Role;
use crate::error::{Error, IoContext};

pub const TOKENS_FILE: &str = "tokens.json";
/// The lock file that serializes changes to `tokens.json` across processes.
pub const TOKENS_LOCK_FILE: &str = ".tokens.json.lock";
/// Every secret starts with this (secret scanners and people recognise it).
pub const PREFIX: &str = "wct_";
/// How often a token's last-used time is written to disk at most.
pub const LAST_USED_EVERY_S: u64 = 60;

/// A token as stored (the hash, not the secret).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct Stored {
    name: String,
    role: Role,
    /// Hex BLAKE2b-256 of the secret (see [`hash`]).
    hash: String,
    created_by: String,
    /// Seconds since the epoch.
    created_s: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_used_s: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    tokens: Vec<Stored>,
}

/// A token as listed (the API, the UI, `wirecap tokens list`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenInfo {
    pub name: String,
    pub role: Role,
    /// Who made it: a user name, or `command line`.
    pub created_by: String,
    /// RFC 3339.
    pub created: String,
    /// RFC 3339; absent when never used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used: Option<String>,
}

/// A token just made: its secret, shown this once.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub name: String,
    pub role: Role,
    pub created_by: String,
    /// RFC 3339.
    pub created: String,
    /// The secret (`wct_…`): send it as `Authorization: Bearer <token>`. It is not stored
    /// and cannot be shown again.
    pub token: String,
}

/// Why a change to the tokens was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{0}")]
    InvalidName(String),
    #[error("a token named {0} exists already")]
    Exists(String),
    #[error("no token named {0}")]
    NoSuchToken(String),
    #[error("{}: {why}", path.display())]
    Corrupt { path: PathBuf, why: String },
    #[error("{0}")]
    Store(#[from] Error),
}

/// A token name: 1–64 of `a-z A-Z 0-9 _ . -` (safe in a URL path, a log line, a shell).
pub fn validate_name(name: &str) -> Result<(), TokenError> {
    let ok = !name.is_empty() && name.len() <= 64 && crate::auth::safe_name_chars(name);
    if ok {
        Ok(())
    } else {
        Err(TokenError::InvalidName(format!(
            "token name {:?}: use 1 to 64 letters, digits, '_', '.' or '-'",
            crate::short(name)
        )))
    }
}

/// The stored form of a secret. A fast hash, not argon2: a secret is 256 random bits, so
/// a leaked `tokens.json` cannot be searched for a preimage however fast the hash is (a
/// slow hash protects guessable passwords, which these are not), and the check runs on
/// every request, where argon2's tens of milliseconds would make tokens slower than a
/// cached Basic login. No key either: one kept beside the file would add nothing.
fn hash(secret: &str) -> String {
    let mut h = blake2::Blake2b::<blake2::digest::consts::U32>::new();
    h.update(b"wirecap api token\0");
    h.update(secret.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn new_secret() -> String {
    let mut raw = [0u8; 32];
    OsRng.fill_bytes(&mut raw);
    format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    )
}

fn now_s() -> u64 {
    wirecap_store::now_ns() / 1_000_000_000
}

fn rfc3339_s(s: u64) -> String {
    wirecap_store::timefmt::rfc3339(s.saturating_mul(1_000_000_000))
}

/// The tokens of a data directory (small; read at start, written atomically on change).
#[derive(Debug, Clone)]
pub struct Tokens {
    path: PathBuf,
    tokens: Vec<Stored>,
    stamp: crate::auth::Stamp,
    /// Last-used times (by name) newer than the file's.
    used: HashMap<String, u64>,
    /// The file could not be read: no token is accepted, and a change reads it again
    /// (and fails) rather than overwrite it.
    broken: bool,
}

impl Tokens {
    /// Loads `DIR/tokens.json`; no file is no tokens.
    pub fn load(dir: &Path) -> Result<Self, TokenError> {
        let path = dir.join(TOKENS_FILE);
        let (tokens, stamp) = match crate::auth::read_with_stamp(&path) {
            Ok((bytes, stamp)) => {
                let f: TokensFile =
                    serde_json::from_slice(&bytes).map_err(|e| TokenError::Corrupt {
                        path: path.clone(),
                        why: e.to_string(),
                    })?;
                (f.tokens, stamp)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Vec::new(), None),
            Err(source) => return Err(Error::Io { path, source }.into()),
        };
        Ok(Self {
            path,
            tokens,
            stamp,
            used: HashMap::new(),
            broken: false,
        })
    }

    /// No tokens, because `DIR/tokens.json` cannot be read: nothing is accepted until it
    /// is fixed, and every change reads it again first (and fails) rather than overwrite it.
    pub fn unreadable(dir: &Path) -> Self {
        let path = dir.join(TOKENS_FILE);
        Self {
            stamp: crate::auth::stamp(&path),
            path,
            tokens: Vec::new(),
            used: HashMap::new(),
            broken: true,
        }
    }

    /// The tokens, in the order they were made.
    pub fn list(&self) -> Vec<TokenInfo> {
        self.tokens
            .iter()
            .map(|t| TokenInfo {
                name: t.name.clone(),
                role: t.role,
                created_by: t.created_by.clone(),
                created: rfc3339_s(t.created_s),
                last_used: self
                    .used
                    .get(&t.name)
                    .copied()
                    .or(t.last_used_s)
                    .map(rfc3339_s),
            })
            .collect()
    }

    /// The token whose secret is `secret`, noting that it was used now.
    pub fn check(&mut self, secret: &str) -> Option<(String, Role)> {
        if !secret.starts_with(PREFIX) || secret.len() > 256 {
            return None;
        }
        let h = hash(secret);
        let t = self.tokens.iter().find(|t| t.hash == h)?;
        let out = (t.name.clone(), t.role);
        self.used.insert(t.name.clone(), now_s());
        Some(out)
    }

    /// Applies `change` to the file's tokens under the lock (starting from the file when
    /// another process changed it) and saves; on any error nothing changes.
    fn change<T>(
        &mut self,
        change: impl FnOnce(&mut Vec<Stored>) -> Result<T, TokenError>,
    ) -> Result<T, TokenError> {
        let dir = self.path.parent().unwrap_or(Path::new(".")).to_owned();
        let lock = dir.join(TOKENS_LOCK_FILE);
        let _other_processes = crate::os::FileLock::exclusive(&lock).at(&lock)?;
        let mut next = if crate::auth::stamp(&self.path) == self.stamp && !self.broken {
            self.clone()
        } else {
            let mut fresh = Self::load(&dir)?;
            fresh.used = std::mem::take(&mut self.used);
            fresh
        };
        let out = change(&mut next.tokens)?;
        // Pending last-used times go to disk with any change.
        for t in &mut next.tokens {
            if let Some(&u) = next.used.get(&t.name) {
                t.last_used_s = Some(t.last_used_s.map_or(u, |x| x.max(u)));
            }
        }
        next.used.clear();
        let mut json = serde_json::to_vec_pretty(&TokensFile {
            tokens: next.tokens.clone(),
        })
        .map_err(|e| TokenError::Corrupt {
            path: next.path.clone(),
            why: e.to_string(),
        })?;
        json.push(b'\n');
        crate::os::write_atomically_mode(&next.path, &json, 0o600).at(&next.path)?;
        next.stamp = crate::auth::stamp(&next.path);
        *self = next;
        Ok(out)
    }

    /// Makes a token named `name` with `role`; returns it with its secret (shown once).
    pub fn create(&mut self, name: &str, role: Role, by: &str) -> Result<NewToken, TokenError> {
        validate_name(name)?;
        let secret = new_secret();
        let stored = Stored {
            name: name.to_owned(),
            role,
            hash: hash(&secret),
            created_by: by.to_owned(),
            created_s: now_s(),
            last_used_s: None,
        };
        let made = NewToken {
            name: name.to_owned(),
            role,
            created_by: by.to_owned(),
            created: rfc3339_s(stored.created_s),
            token: secret,
        };
        self.change(|list| {
            if list.iter().any(|t| t.name == name) {
                return Err(TokenError::Exists(name.to_owned()));
            }
            list.push(stored);
            Ok(())
        })?;
        Ok(made)
    }

    /// Revokes (removes) the token `name`: it is refused from now on.
    pub fn revoke(&mut self, name: &str) -> Result<(), TokenError> {
        self.change(|list| {
            let before = list.len();
            list.retain(|t| t.name != name);
            if list.len() == before {
                return Err(TokenError::NoSuchToken(crate::short(name).into_owned()));
            }
            Ok(())
        })
    }

    /// Picks up a change by another process (`wirecap tokens …`), and writes last-used
    /// times that are [`LAST_USED_EVERY_S`] newer than the file's. Cheap when nothing
    /// changed (one stat); the server calls it once a second, off the request path.
    pub fn reload_if_changed(&mut self) {
        if crate::auth::stamp(&self.path) != self.stamp {
            let dir = self.path.parent().unwrap_or(Path::new(".")).to_owned();
            match Self::load(&dir) {
                Ok(mut fresh) => {
                    fresh.used = std::mem::take(&mut self.used);
                    tracing::info!("{TOKENS_FILE} changed on disk: tokens reloaded");
                    *self = fresh;
                }
                Err(e) => {
                    tracing::error!("{TOKENS_FILE} cannot be read; no token is accepted: {e}");
                    *self = Self::unreadable(&dir);
                    return;
                }
            }
        }
        let stale = self.tokens.iter().any(|t| {
            self.used
                .get(&t.name)
                .is_some_and(|&u| t.last_used_s.is_none_or(|x| u >= x + LAST_USED_EVERY_S))
        });
        if stale && let Err(e) = self.change(|_| Ok(())) {
            tracing::warn!("cannot note when tokens were last used: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_made_shown_once_checked_and_revoked() {
        let d = tempfile::tempdir().unwrap();
        let mut t = Tokens::load(d.path()).unwrap();
        assert!(t.list().is_empty());
        let made = t.create("ci", Role::Viewer, "admin").unwrap();
        assert!(made.token.starts_with(PREFIX) && made.token.len() == PREFIX.len() + 43);
        assert_eq!(made.role, Role::Viewer);
        assert!(matches!(
            t.create("ci", Role::Admin, "admin"),
            Err(TokenError::Exists(_))
        ));
        assert!(matches!(
            t.create("a b", Role::Admin, "admin"),
            Err(TokenError::InvalidName(_))
        ));
        // Stored hashed, 0600: the secret is nowhere on disk.
        let path = d.path().join(TOKENS_FILE);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&made.token) && text.contains(&hash(&made.token)));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Checked, and its use noted.
        assert_eq!(t.list()[0].last_used, None);
        assert_eq!(t.check(&made.token), Some(("ci".into(), Role::Viewer)));
        assert!(t.list()[0].last_used.is_some());
        assert_eq!(t.check("wct_not-a-token"), None);
        assert_eq!(t.check(&made.token[..made.token.len() - 1]), None);
        // The tick writes the last-used time once.
        t.reload_if_changed();
        let again = Tokens::load(d.path()).unwrap();
        assert_eq!(again.list()[0].last_used, t.list()[0].last_used);
        // Another process revokes it: the server's copy follows on its next tick.
        Tokens::load(d.path()).unwrap().revoke("ci").unwrap();
        t.reload_if_changed();
        assert_eq!(t.check(&made.token), None);
        assert!(matches!(t.revoke("ci"), Err(TokenError::NoSuchToken(_))));
    }

    #[test]
    fn a_damaged_file_accepts_nothing_and_is_not_overwritten() {
        let d = tempfile::tempdir().unwrap();
        let mut t = Tokens::load(d.path()).unwrap();
        let made = t.create("ci", Role::Admin, "admin").unwrap();
        std::fs::write(d.path().join(TOKENS_FILE), "{ not json").unwrap();
        assert!(matches!(
            Tokens::load(d.path()),
            Err(TokenError::Corrupt { .. })
        ));
        t.reload_if_changed();
        assert_eq!(t.check(&made.token), None);
        assert!(t.create("other", Role::Admin, "admin").is_err());
        assert_eq!(
            std::fs::read_to_string(d.path().join(TOKENS_FILE)).unwrap(),
            "{ not json"
        );
    }
}
