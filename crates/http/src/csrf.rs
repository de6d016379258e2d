//! Cross-site request forgery, for requests that ride on a session cookie: an unsafe one
//! (any method but GET/HEAD/OPTIONS, and the manual's GETs that start or stop a capture)
//! must carry the session's token in `X-CSRF-Token` and, when the browser names its
//! `Origin`, come from this host. A page of another site can neither read the token nor
//! send the cookie (SameSite), so it cannot act for the user.
//!
//! Basic credentials and API tokens (`Authorization: Bearer`) need no CSRF token, and both
//! get the same check: an unsafe request that a browser marks as cross-site is refused
//! before any credential is looked at ([`cross_site`]). A browser never sends a Bearer
//! token by itself, so only a page that already holds the secret could send one.

use axum::http::{HeaderMap, HeaderValue, Method, Uri, header};
use wirecap_appliance::session::Sessions;

/// The header that must carry the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The header the UI sends so that a 401 comes without `WWW-Authenticate: Basic` (which
/// would make the browser pop up its own password dialog).
pub const UI_HEADER: &str = "x-wirecap-ui";
/// Does this request change something? (The manual's capture routes are GETs that do.)
pub fn is_unsafe(method: &Method, path: &str) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
        || crate::access::CHANGING_GETS.contains(&path)
}

/// For a request authenticated by the session `id`: refuses an unsafe one that lacks the
/// session's CSRF token or comes from another origin. `Err` holds the reason.
pub fn csrf_check(
    sessions: &Sessions,
    id: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(), &'static str> {
    if !is_unsafe(method, uri.path()) {
        return Ok(());
    }
    let sent = headers
        .get(CSRF_HEADER)
        .map(HeaderValue::as_bytes)
        .unwrap_or_default();
    sessions.check_csrf(id, sent)?;
    if !same_origin(uri, headers) {
        return Err("request from another origin refused");
    }
    Ok(())
}

/// Does the browser say that this request comes from another site? Either its `Origin`
/// names another host, or `Sec-Fetch-Site` says `cross-site`. Browsers send Basic
/// credentials they remember to any page's requests, so an unsafe request that a browser
/// marks as cross-site is refused whatever its credentials; scripts send neither header.
pub fn cross_site(uri: &Uri, headers: &HeaderMap) -> bool {
    let fetch_site = headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"));
    fetch_site || !same_origin(uri, headers)
}

/// False when the browser names an `Origin` whose host is not the one it asked: the
/// `Host` header (HTTP/1.1) or the URI's authority (HTTP/2 has no `Host`).
pub fn same_origin(uri: &Uri, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .unwrap_or("");
    let origin_host = origin
        .split_once("://")
        .map_or("", |(_, h)| h)
        .trim_end_matches('/');
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

/// Does a 401 for this request get `WWW-Authenticate: Basic`? Not for the UI's own calls.
pub fn wants_basic_challenge(headers: &HeaderMap) -> bool {
    headers.get(UI_HEADER).is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wirecap_appliance::auth::{Identity, Role};

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    #[test]
    fn origin_is_checked_against_the_http2_authority_too() {
        let mut h = HeaderMap::new();
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://10.0.0.1:8443"),
        );
        assert!(same_origin(
            &uri("https://10.0.0.1:8443/api/v1/session"),
            &h
        ));
        assert!(!same_origin(
            &uri("https://10.0.0.2:8443/api/v1/session"),
            &h
        ));
        assert!(!same_origin(&uri("/api/v1/session"), &h), "no host at all");
        h.insert(header::HOST, HeaderValue::from_static("10.0.0.1:8443"));
        assert!(same_origin(&uri("/api/v1/session"), &h));
    }

    #[test]
    fn cross_site_is_what_the_browser_says() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        let u = uri("/sysmaster/capture_start");
        assert!(
            !cross_site(&u, &h),
            "no Origin, no Sec-Fetch-Site: a script"
        );
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(!cross_site(&u, &h));
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(cross_site(&u, &h));
        h.remove("sec-fetch-site");
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(cross_site(&u, &h));
    }

    #[test]
    fn unsafe_requests_need_the_token_and_this_origin() {
        let s = Sessions::default();
        let (id, csrf) = s.create(Identity {
            user: "alice".into(),
            role: Role::Admin,
        });
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert_eq!(
            csrf_check(&s, &id, &Method::GET, &uri("/api/v1/streams"), &h),
            Ok(())
        );
        assert!(csrf_check(&s, &id, &Method::POST, &uri("/api/v1/capture/start"), &h).is_err());
        assert!(csrf_check(&s, &id, &Method::GET, &uri("/sysmaster/capture_start"), &h).is_err());
        h.insert(CSRF_HEADER, HeaderValue::from_str(&csrf).unwrap());
        assert_eq!(
            csrf_check(&s, &id, &Method::POST, &uri("/api/v1/capture/start"), &h),
            Ok(())
        );
        assert_eq!(
            csrf_check(&s, &id, &Method::GET, &uri("/sysmaster/capture_stop"), &h),
            Ok(())
        );
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(csrf_check(&s, &id, &Method::DELETE, &uri("/api/v1/streams/x"), &h).is_err());
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert_eq!(
            csrf_check(&s, &id, &Method::DELETE, &uri("/api/v1/streams/x"), &h),
            Ok(())
        );
        h.insert(CSRF_HEADER, HeaderValue::from_static("wrong"));
        assert!(csrf_check(&s, &id, &Method::DELETE, &uri("/api/v1/streams/x"), &h).is_err());
    }
}
