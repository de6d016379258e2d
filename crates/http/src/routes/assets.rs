//! The browser UI's files: `crates/http/ui/`, embedded in release builds.
//!
//! The UI is plain ES modules (Preact + htm + uPlot, no bundler): `index.html` carries an
//! import map that points the bare names at the packages' own module files under
//! `ui/node_modules/`, which `npm ci` installs from `ui/package-lock.json`. Only the files
//! listed in [`Assets`]'s include patterns are served (about 230 kB, 75 kB gzipped), so
//! the rest of `node_modules` (the test driver) never reaches the binary.
//!
//! Release builds embed the files (the appliance is one file to deploy); debug builds read
//! them from `crates/http/ui/` on every request, so a reload shows an edit at once.
//!
//! Routes (no credentials needed: they are the login page and its code, and hold no
//! data): `GET /` (the app, with the hostname in its title) and `GET /ui/{*path}`.
//! Answers carry an ETag (304 on a match), gzip when the browser takes it, and a
//! Content-Security-Policy that allows only this origin's scripts plus the import map.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bytes::Bytes;
use std::io::Write as _;

/// The UI's files. `npm ci` in `crates/http/ui` must have run before a release build
/// (`scripts/run.sh` and `scripts/test.sh` do it); a build without it serves a page that
/// says so.
#[derive(rust_embed::RustEmbed)]
#[folder = "ui/"]
#[include = "index.html"]
#[include = "style.css"]
#[include = "icon.svg"]
#[include = "src/*.js"]
#[include = "src/pages/*.js"]
#[include = "node_modules/preact/dist/preact.module.js"]
#[include = "node_modules/preact/hooks/dist/hooks.module.js"]
#[include = "node_modules/htm/dist/htm.module.js"]
#[include = "node_modules/uplot/dist/uPlot.esm.js"]
#[include = "node_modules/uplot/dist/uPlot.min.css"]
pub struct Assets;

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

fn escape_html(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// The text of the inline import map, whose hash the CSP allows.
fn import_map(html: &str) -> Option<&str> {
    let open = "<script type=\"importmap\">";
    let start = html.find(open)? + open.len();
    let len = html[start..].find("</script>")?;
    Some(&html[start..start + len])
}

fn csp(html: &str) -> String {
    use sha2::Digest as _;
    let script = import_map(html).map_or(String::new(), |m| {
        let digest = sha2::Sha256::digest(m.as_bytes());
        format!(
            " 'sha256-{}'",
            base64::engine::general_purpose::STANDARD.encode(digest)
        )
    });
    format!(
        "default-src 'self'; script-src 'self'{script}; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    )
}

fn security_headers(h: &mut HeaderMap) {
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

const MISSING_DEPS: &str = "<!doctype html><meta charset=utf-8><title>wirecap</title>\
<h1>wirecap's web UI is not installed in this build</h1>\
<p>Run <code>npm ci</code> in <code>crates/http/ui</code> before <code>cargo build</code> \
(<code>scripts/run.sh</code> does). The HTTP API works without it: see \
<a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a>.</p>";

/// `GET /`: the app's page with the appliance's hostname filled in.
pub(crate) async fn index(
    axum::extract::State(app): axum::extract::State<crate::state::Shared>,
) -> Response {
    let Some(file) = Assets::get("index.html") else {
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            MISSING_DEPS,
        )
            .into_response();
    };
    if Assets::get("node_modules/preact/dist/preact.module.js").is_none() {
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            MISSING_DEPS,
        )
            .into_response();
    }
    let page =
        String::from_utf8_lossy(&file.data).replace("{{hostname}}", &escape_html(&app.hostname()));
    let mut r = (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        page.clone(),
    )
        .into_response();
    security_headers(r.headers_mut());
    if let Ok(v) = HeaderValue::from_str(&csp(&page)) {
        r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    r
}

/// gzip of each asset, by content hash (assets never change in a release build; in a
/// debug build an edited file gets a new hash).
fn gzipped(hash: [u8; 32], data: &[u8]) -> Bytes {
    static CACHE: OnceLock<Mutex<HashMap<[u8; 32], Bytes>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(b) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&hash) {
        return b.clone();
    }
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 3),
        flate2::Compression::best(),
    );
    let gz = enc
        .write_all(data)
        .and_then(|()| enc.finish())
        .map(Bytes::from)
        .unwrap_or_else(|_| Bytes::copy_from_slice(data));
    let mut c = cache.lock().unwrap_or_else(|e| e.into_inner());
    if c.len() > 256 {
        c.clear();
    }
    c.insert(hash, gz.clone());
    gz
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|e| {
            let mut it = e.split(';');
            let name = it.next().unwrap_or("").trim();
            let refused = it.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            name.eq_ignore_ascii_case("gzip") && !refused
        })
}

/// `GET /ui/{*path}`: one of the UI's files.
pub(crate) async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    let Some(file) = Assets::get(&path) else {
        return (
            StatusCode::NOT_FOUND,
            format!("no such file: /ui/{}\n", wirecap_appliance::short(&path)),
        )
            .into_response();
    };
    let hash = file.metadata.sha256_hash();
    let etag = format!(
        "\"{}\"",
        hash[..12]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let etag_value = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"0\""));
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut common = HeaderMap::new();
    common.insert(header::ETAG, etag_value);
    // Revalidate on every load: a 304 costs a round trip on loopback or a LAN, and an
    // upgraded binary never serves stale code.
    common.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    common.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    security_headers(&mut common);
    if matches {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    common.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&path)),
    );
    let compressible = !path.ends_with(".svg") || file.data.len() > 512;
    if compressible && file.data.len() > 1024 && accepts_gzip(&headers) {
        common.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        return (common, gzipped(hash, &file.data)).into_response();
    }
    (common, Bytes::from(file.data.into_owned())).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csp_allows_exactly_the_import_map() {
        let page = "<head><script type=\"importmap\">{\"imports\":{}}</script></head>";
        assert_eq!(import_map(page), Some("{\"imports\":{}}"));
        let c = csp(page);
        assert!(c.contains("script-src 'self' 'sha256-"), "{c}");
        assert!(c.contains("frame-ancestors 'none'"));
    }

    #[test]
    fn escapes_hostnames() {
        assert_eq!(escape_html("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&#39;");
    }

    #[test]
    fn gzip_negotiation() {
        let mut h = HeaderMap::new();
        assert!(!accepts_gzip(&h));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip, deflate, br"),
        );
        assert!(accepts_gzip(&h));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("br, gzip;q=0"),
        );
        assert!(!accepts_gzip(&h));
    }

    #[test]
    fn the_page_and_its_modules_are_there() {
        let page = Assets::get("index.html").expect("ui/index.html");
        let text = String::from_utf8_lossy(&page.data);
        assert!(text.contains("{{hostname}}"));
        for f in ["src/main.js", "src/api.js", "src/ui.js", "style.css"] {
            assert!(Assets::get(f).is_some(), "{f} missing");
        }
    }
}
