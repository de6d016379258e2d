//! Who may do what: every request is classified here, once, by method and path, and the
//! guard in [`crate::guard`] refuses a viewer anything that is not a read.
//!
//! The rule is fail-closed: a `GET`/`HEAD` is a read, every other method is a write, and
//! the exceptions are listed in this file: the manual's `GET /sysmaster/capture_start`
//! and `capture_stop` change things (writes); a few `POST`s only compute (filter check,
//! analysis) and signing out ends one's own session (reads); a user may change their own
//! password (`PATCH /api/v1/users/{self}`). A new route is therefore admin-only for
//! anything but `GET` until it is listed here, and no handler has to remember a check.
//!
//! | role | may |
//! |---|---|
//! | admin | everything |
//! | viewer | reads and downloads, analysis (and cancelling one) and filter checks, their own password |
//!
//! System reports are the admin's only, reading them too ([`ADMIN_READS`]): a report
//! holds the logs (client addresses, user names), the user list and the configuration,
//! which a viewer, who may only look at captures, has no need of.

use axum::http::Method;

use wirecap_appliance::auth::{Identity, Role};

/// What a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// No credentials (the UI's files and the login).
    Public,
    /// Any signed-in user.
    Read,
    /// The admin role.
    Write,
    /// The named user themself, or an admin (`PATCH /api/v1/users/{name}`).
    Account(String),
}

/// GETs that change something (the manual's capture control is `GET`).
pub const CHANGING_GETS: &[&str] = &["/sysmaster/capture_start", "/sysmaster/capture_stop"];

/// GETs only an admin may make: the system reports (see the module's text).
pub const ADMIN_READS: &[&str] = &[
    "/api/v1/reports",
    "/api/v1/reports/*",
    "/api/v1/report/*",
    // API tokens: their names and last-used times say which scripts run where.
    "/api/v1/tokens",
    // Alerts: a webhook URL often carries a secret.
    "/api/v1/alerts",
];

/// Non-GET requests that change nothing shared: (method, path pattern, `*` = one segment).
const READING_WRITES: &[(&str, &str)] = &[
    ("POST", "/api/v1/ui/filter/check"),
    ("POST", "/api/v1/ui/streams/*/analysis"),
    ("POST", "/api/v1/ui/streams/*/analyses"),
    ("DELETE", "/api/v1/ui/analyses/*"),
    ("DELETE", "/api/v1/session"),
];

fn matches(pattern: &str, path: &str) -> bool {
    let (mut p, mut s) = (pattern.split('/'), path.split('/'));
    loop {
        match (p.next(), s.next()) {
            (None, None) => return true,
            (Some("*"), Some(seg)) if !seg.is_empty() => {}
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

/// Routes the guard lets through without credentials: the UI's files (its login page and
/// its code), the login itself, and the manual's "File Link" `/en.files.html`, which
/// reads nothing and only redirects into the UI (whose login page a browser without a
/// session then gets, instead of a Basic-auth prompt).
fn is_public(method: &Method, path: &str) -> bool {
    path == "/"
        || path == "/index.html"
        || path == "/en.files.html"
        || path.starts_with("/ui/")
        || (path == "/api/v1/session" && *method == Method::POST)
}

/// The access `method path` needs.
pub fn classify(method: &Method, path: &str) -> Access {
    if is_public(method, path) {
        return Access::Public;
    }
    if matches!(*method, Method::GET | Method::HEAD) {
        return if CHANGING_GETS.contains(&path) || ADMIN_READS.iter().any(|p| matches(p, path)) {
            Access::Write
        } else {
            Access::Read
        };
    }
    if READING_WRITES
        .iter()
        .any(|(m, p)| method.as_str() == *m && matches(p, path))
    {
        return Access::Read;
    }
    if *method == Method::PATCH
        && let Some(name) = path.strip_prefix("/api/v1/users/")
        && !name.is_empty()
        && !name.contains('/')
    {
        return Access::Account(name.to_owned());
    }
    Access::Write
}

/// Whether `who` may make a request that needs `access`.
pub fn allows(access: &Access, who: &Identity) -> bool {
    match access {
        Access::Public | Access::Read => true,
        Access::Write => who.role == Role::Admin,
        Access::Account(name) => who.role == Role::Admin || *name == who.user,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(user: &str, role: Role) -> Identity {
        Identity {
            user: user.into(),
            role,
        }
    }

    #[test]
    fn every_route_of_the_app_is_classified_as_intended() {
        use Access::*;
        let m = |s: &str| Method::from_bytes(s.as_bytes()).unwrap();
        let cases: &[(&str, &str, Access)] = &[
            ("GET", "/", Public),
            ("GET", "/ui/src/main.js", Public),
            ("POST", "/api/v1/session", Public),
            ("GET", "/en.files.html", Public),
            ("GET", "/api/v1/session", Read),
            ("DELETE", "/api/v1/session", Read),
            ("GET", "/sysmaster/status", Read),
            ("GET", "/sysmaster/capture_start", Write),
            ("GET", "/sysmaster/capture_stop", Write),
            ("HEAD", "/sysmaster/capture_start", Write),
            ("GET", "/plain/list", Read),
            ("GET", "/pcap/single", Read),
            ("GET", "/api/v1/streams/x_20250101_0000/pcap", Read),
            ("GET", "/api/v1/search", Read),
            ("GET", "/api/v1/flows", Read),
            ("DELETE", "/api/v1/streams/x_20250101_0000", Write),
            ("POST", "/api/v1/capture/start", Write),
            ("POST", "/api/v1/capture/stop", Write),
            ("PUT", "/api/v1/ui/capture/interface", Write),
            ("POST", "/api/v1/ui/filter/check", Read),
            ("POST", "/api/v1/ui/streams/x_20250101_0000/analysis", Read),
            ("POST", "/api/v1/ui/streams//analysis", Write),
            ("POST", "/api/v1/ui/streams/a/b/analysis", Write),
            ("POST", "/api/v1/ui/streams/x_20250101_0000/analyses", Read),
            ("DELETE", "/api/v1/ui/analyses/7", Read),
            ("PUT", "/api/v1/capture/settings", Write),
            ("PUT", "/api/v1/forward", Write),
            ("GET", "/api/v1/users", Read),
            ("POST", "/api/v1/users", Write),
            ("DELETE", "/api/v1/users/bob", Write),
            ("PATCH", "/api/v1/users/bob", Account("bob".into())),
            ("PATCH", "/api/v1/users/bob/x", Write),
            ("PUT", "/api/v1/hostname", Write),
            ("POST", "/api/v1/report", Write),
            ("GET", "/api/v1/reports", Write),
            (
                "GET",
                "/api/v1/reports/report_h_20250101_000000.tar.gz",
                Write,
            ),
            ("GET", "/api/v1/report/7", Write),
            ("POST", "/api/v1/anything-new", Write),
            ("OPTIONS", "/api/v1/streams", Write),
        ];
        for (method, path, want) in cases {
            assert_eq!(&classify(&m(method), path), want, "{method} {path}");
        }
    }

    #[test]
    fn viewers_read_and_change_only_their_own_password() {
        let (admin, viewer) = (id("root", Role::Admin), id("bob", Role::Viewer));
        assert!(allows(&Access::Write, &admin));
        assert!(!allows(&Access::Write, &viewer));
        assert!(allows(&Access::Read, &viewer));
        assert!(allows(&Access::Account("bob".into()), &viewer));
        assert!(!allows(&Access::Account("root".into()), &viewer));
        assert!(allows(&Access::Account("bob".into()), &admin));
    }

    #[test]
    fn only_the_login_and_the_uis_files_are_public() {
        assert!(is_public(&Method::POST, "/api/v1/session"));
        assert!(!is_public(&Method::GET, "/api/v1/session"));
        assert!(!is_public(&Method::DELETE, "/api/v1/session"));
        assert!(!is_public(&Method::POST, "/api/v1/capture/start"));
        assert!(is_public(&Method::GET, "/ui/src/main.js"));
        assert!(!is_public(&Method::GET, "/uix"));
    }
}
