//! Browser sessions, the store: random 256-bit ids and CSRF tokens, kept in memory (a
//! restart signs everyone out), ending after [`IDLE_TIMEOUT`] without a request or
//! [`MAX_AGE`] after login. The login routes, the cookie and the CSRF check of a request
//! are `wirecap-http`'s (`routes/session.rs`, `csrf.rs`).
//!
//! An unknown or expired session id is refused like missing credentials, without the
//! failure penalty: ids are unguessable, and a browser with a stale cookie must not slow
//! its user's next login down.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::{OsRng, RngCore};
use base64::Engine as _;

use crate::auth::{Identity, Refusal};

/// The session cookie's name (also read by [`crate::auth::credentials`]).
pub const COOKIE: &str = "wirecap_session";
/// A session ends after this long without a request.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(8 * 3600);
/// A session ends this long after login, however busy.
pub const MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
const MAX_SESSIONS: usize = 10_000;

#[derive(Debug, Clone)]
struct Session {
    identity: Identity,
    csrf: String,
    created: Instant,
    last: Instant,
}

impl Session {
    fn alive(&self, now: Instant) -> bool {
        now.duration_since(self.last) < IDLE_TIMEOUT && now.duration_since(self.created) < MAX_AGE
    }
}

/// The live sessions, by id.
#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

fn token() -> String {
    let mut b = [0u8; 32];
    OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Constant-time comparison of two tokens.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Sessions {
    /// Opens a session for `identity`: (session id, CSRF token).
    pub fn create(&self, identity: Identity) -> (String, String) {
        let now = Instant::now();
        let (id, csrf) = (token(), token());
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= MAX_SESSIONS {
            m.retain(|_, s| s.alive(now));
            if m.len() >= MAX_SESSIONS
                && let Some(oldest) = m.iter().min_by_key(|(_, s)| s.last).map(|(k, _)| k.clone())
            {
                m.remove(&oldest);
            }
        }
        m.insert(
            id.clone(),
            Session {
                identity,
                csrf: csrf.clone(),
                created: now,
                last: now,
            },
        );
        (id, csrf)
    }

    /// The user of a live session (and its CSRF token), marking it used.
    pub fn get(&self, id: &str) -> Option<(Identity, String)> {
        let now = Instant::now();
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        match m.get_mut(id) {
            Some(s) if s.alive(now) => {
                s.last = now;
                Some((s.identity.clone(), s.csrf.clone()))
            }
            Some(_) => {
                m.remove(id);
                None
            }
            None => None,
        }
    }

    /// For an unsafe request of session `id`: is `sent` its CSRF token? `Err` holds the
    /// reason for the user.
    pub fn check_csrf(&self, id: &str, sent: &[u8]) -> Result<(), &'static str> {
        let Some((_, csrf)) = self.get(id) else {
            return Err("session expired: sign in again");
        };
        if !same(sent, csrf.as_bytes()) {
            return Err("missing or wrong X-CSRF-Token for this session");
        }
        Ok(())
    }

    /// What [`crate::auth::Authenticator::check`] answers for a session cookie.
    pub fn check(&self, id: &str) -> Result<Identity, Refusal> {
        self.get(id).map(|(i, _)| i).ok_or(Refusal::Missing)
    }

    /// Ends a session.
    pub fn remove(&self, id: &str) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    /// Ends every session of `user` (after a password change or removal).
    pub fn remove_user(&self, user: &str) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, s| s.identity.user != user);
    }

    /// Ends every session of `user` but `keep`.
    pub fn remove_user_except(&self, user: &str, keep: Option<&str>) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|id, s| s.identity.user != user || Some(id.as_str()) == keep);
    }

    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    fn alice() -> Identity {
        Identity {
            user: "alice".into(),
            role: Role::Admin,
        }
    }

    #[test]
    fn sessions_issue_look_up_and_end() {
        let s = Sessions::default();
        let (id, csrf) = s.create(alice());
        assert_eq!(id.len(), 43);
        assert_ne!(id, csrf);
        assert_eq!(s.check(&id), Ok(alice()));
        assert_eq!(s.get(&id).map(|x| x.1), Some(csrf));
        assert_eq!(s.check("nope"), Err(Refusal::Missing));
        s.remove(&id);
        assert_eq!(s.check(&id), Err(Refusal::Missing));
        let (a, _) = s.create(alice());
        s.remove_user("alice");
        assert!(s.get(&a).is_none() && s.is_empty());
        let (a, _) = s.create(alice());
        let (b, _) = s.create(alice());
        s.remove_user_except("alice", Some(&b));
        assert!(s.get(&a).is_none() && s.get(&b).is_some());
    }
}
