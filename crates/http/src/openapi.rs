//! The OpenAPI 3.1 document of the JSON API and the manual's routes, served at
//! `/api/v1/openapi.json`. Generated: each route's entry comes from its handler's
//! `#[utoipa::path]`, which is also what registers it ([`crate::router::documented`]), and
//! each schema from its Rust type (`utoipa::ToSchema`), so the document cannot drift from
//! what the server answers.

use std::sync::OnceLock;

use serde_json::Value;
use utoipa::OpenApi;

use crate::error::ErrorBody;

/// What the document says about itself; the paths come from the router.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "wirecap",
        description = "Full-packet capture appliance: the manual's routes (`/sysmaster`, `/plain`, `/pcap`) and the JSON API (`/api/v1`). Every route needs credentials (HTTP Basic, an API token as `Authorization: Bearer wct_…`, or the browser's session cookie with `X-CSRF-Token` on changes) but the login. Errors of `/api/v1` are `{error, status, field?}`; those of the manual's routes `{Status: false, Str}`."
    ),
    components(schemas(ErrorBody)),
    security(("basic" = []), ("bearer" = []), ("session" = [])),
    modifiers(&Security)
)]
pub struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let c = doc.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "basic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        c.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                wirecap_appliance::session::COOKIE,
            ))),
        );
    }
}

/// The document (built once).
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let (_, doc) = crate::router::documented().split_for_parts();
        serde_json::to_value(doc).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode, header};
    use serde::de::DeserializeOwned;
    use serde_json::{Value, json};
    use tower::ServiceExt;
    use wirecap_appliance::api::{Link, Status, Stream};
    use wirecap_appliance::auth::{Authenticator, Users};
    use wirecap_appliance::config::{FileConfig, Settings, SourceChoice};
    use wirecap_appliance::engine::Engine;
    use wirecap_appliance::operations::Operations;

    use crate::error::ErrorBody;
    use crate::routes::admin::{Hostname, User};
    use crate::routes::capture::{CaptureAnswer, Config};
    use crate::routes::streams::{Split, ViewLink};
    use crate::routes::ui::{
        UiInterfaces, UiSplitPage, UiStream, UiStreamPage, UiStreamRow, UiSystem, UiViews,
    };
    use crate::state::{AppState, Shared};

    const PW: &str = "a-long-test-password";

    fn app(dir: &std::path::Path) -> Shared {
        let store = wirecap_store::Store::open(dir).expect("store");
        let source = SourceChoice::Synthetic(2000);
        let engine = Engine::new(store, source.clone()).expect("engine");
        let ops = Operations::new(dir, &FileConfig::default(), &engine);
        let (users, _) = Users::open_or_init(dir, Some(PW)).expect("users");
        Arc::new(AppState {
            ops: Arc::new(ops),
            engine: Arc::new(engine),
            auth: Authenticator::new(users),
            metrics: wirecap_appliance::metrics::Metrics::new(),
            slots: crate::download::Slots::default(),
            settings: Settings {
                data: dir.to_owned(),
                http: None,
                https: None,
                tls_cert: None,
                tls_key: None,
                source,
                source_reason: "test".into(),
                forward: None,
                capture: Default::default(),
                log_level: "info".into(),
                update: Default::default(),
                hostname: None,
                apply_hostname_to_os: false,
                archive: Default::default(),
            },
            hostname: std::sync::RwLock::new("test-host".into()),
            reports: Default::default(),
        })
    }

    async fn call(
        app: &Shared,
        method: Method,
        path: &str,
        body: Option<&str>,
    ) -> (StatusCode, Vec<u8>) {
        use base64::Engine as _;
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("admin:{PW}"));
        let mut r = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Basic {auth}"));
        if body.is_some() {
            r = r.header(header::CONTENT_TYPE, "application/json");
        }
        let req = r.body(Body::from(body.unwrap_or("").to_owned())).unwrap();
        let resp = crate::router(app.clone()).oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24)
            .await
            .unwrap();
        (status, bytes.to_vec())
    }

    /// `body` read as `T` (whose unknown fields are refused), and its keys exactly those the
    /// document's schema `name` lists.
    fn fits<T: DeserializeOwned>(body: &[u8], name: &str) -> T {
        let v: Value = serde_json::from_slice(body).expect("JSON");
        let one = if v.is_array() {
            v[0].clone()
        } else {
            v.clone()
        };
        if one.is_object() {
            let schema = &super::document()["components"]["schemas"][name];
            let props: Vec<&String> = schema["properties"]
                .as_object()
                .unwrap_or_else(|| panic!("schema {name}: {schema}"))
                .keys()
                .collect();
            for k in one.as_object().unwrap().keys() {
                assert!(props.contains(&k), "{name}: {k} is not in the schema");
            }
            for r in schema["required"].as_array().into_iter().flatten() {
                assert!(
                    one.get(r.as_str().unwrap()).is_some(),
                    "{name}: {r} missing"
                );
            }
        }
        serde_json::from_value(v).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    #[test]
    fn the_document_is_openapi_3_1_with_every_family() {
        let doc = super::document();
        assert_eq!(doc["openapi"], "3.1.0");
        for p in [
            "/sysmaster/status",
            "/pcap/splittime",
            "/metrics",
            "/api/v1/openapi.json",
            "/api/v1/session",
            "/api/v1/ui/filter/check",
            "/api/v1/schedules/{name}",
            "/api/v1/streams/{name}/pin",
            "/api/v1/releases/{version}/activate",
        ] {
            assert!(doc["paths"][p].is_object(), "{p} missing");
        }
        assert!(doc["paths"]["/api/v1/schedules"]["post"].is_object());
        assert!(doc["components"]["schemas"]["Status"].is_object());
    }

    /// The routes registered outside the document are the ones that are not an API: a
    /// route added with a bare `.route(…)` would be missing from it.
    #[test]
    fn every_route_outside_the_document_is_known() {
        let src = include_str!("router.rs");
        let bare: Vec<&str> = src
            .split(".route(\"")
            .skip(1)
            .map(|s| s.split('"').next().unwrap())
            .collect();
        assert_eq!(bare, ["/en.files.html", "/", "/index.html", "/ui/{*path}"]);
    }

    /// Every method and path of the document is routed: not the fallback's 404, not 405.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_documented_route_is_served() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path());
        let doc = super::document();
        let mut n = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            let concrete = path
                .replace("{name}", "nobody_20250101_0000")
                .replace("{view}", "split_1sec")
                .replace("{id}", "999")
                .replace("{version}", "0.0.0")
                .replace("{file}", "report_x_20250101_000000.tar.gz");
            for method in item.as_object().unwrap().keys() {
                let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                // Nothing a test should do for real.
                if (m == Method::POST && path == "/api/v1/report")
                    || path.starts_with("/sysmaster/capture_start")
                {
                    continue;
                }
                let body = (m != Method::GET).then_some("{}");
                let (code, b) = call(&app, m, &concrete, body).await;
                let text = String::from_utf8_lossy(&b);
                assert_ne!(code, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
                assert!(!text.contains("no such page"), "{method} {path}: {text}");
                n += 1;
            }
        }
        assert!(n > 50, "{n} operations");
    }

    /// The typed answers are what the server sends, and what the document says.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn answers_fit_their_schemas() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path());
        let (code, b) = call(&app, Method::GET, "/api/v1/status?history=5", None).await;
        assert_eq!(code, 200);
        let s: Status = fits(&b, "Status");
        assert!(!s.capture.active);

        let (code, b) = call(
            &app,
            Method::POST,
            "/api/v1/capture/start",
            Some(r#"{"name":"t"}"#),
        )
        .await;
        assert_eq!(code, 200, "{}", String::from_utf8_lossy(&b));
        let started: CaptureAnswer = fits(&b, "CaptureAnswer");
        let name = started.stream.expect("stream");
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        let (code, b) = call(&app, Method::POST, "/api/v1/capture/stop", Some("")).await;
        assert_eq!(code, 200, "{}", String::from_utf8_lossy(&b));
        let _: CaptureAnswer = fits(&b, "CaptureAnswer");

        let (_, b) = call(&app, Method::GET, "/api/v1/streams", None).await;
        let list: Vec<Stream> = fits(&b, "Stream");
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].name, name);
        let (_, b) = call(&app, Method::GET, &format!("/api/v1/streams/{name}"), None).await;
        let _: Stream = fits(&b, "Stream");
        let (_, b) = call(
            &app,
            Method::GET,
            &format!("/api/v1/streams/{name}/views"),
            None,
        )
        .await;
        let views: Vec<ViewLink> = fits(&b, "ViewLink");
        let (_, b) = call(&app, Method::GET, &views[1].splits, None).await;
        let splits: Vec<Split> = fits(&b, "Split");
        assert!(!splits.is_empty());
        // The UI's pages.
        let (_, b) = call(&app, Method::GET, "/api/v1/ui/streams?limit=5", None).await;
        let page: UiStreamPage = fits(&b, "UiStreamPage");
        let UiStreamRow::Stream(first) = &page.streams[0] else {
            panic!("the one stream is readable: {page:?}");
        };
        assert_eq!((page.total, first.views.is_none()), (1, true));
        let (_, b) = call(
            &app,
            Method::GET,
            &format!("/api/v1/ui/streams/{name}"),
            None,
        )
        .await;
        let one: UiStream = fits(&b, "UiStream");
        assert!(one.views.is_some_and(|v| v.len() == views.len()));
        let (_, b) = call(
            &app,
            Method::GET,
            &format!("/api/v1/ui/streams/{name}/views"),
            None,
        )
        .await;
        let _: UiViews = fits(&b, "UiViews");
        let path = format!("/api/v1/ui/streams/{name}/views/{}/splits", views[1].view);
        let (_, b) = call(&app, Method::GET, &path, None).await;
        let page: UiSplitPage = fits(&b, "UiSplitPage");
        assert_eq!(page.total, splits.len());
        let (_, b) = call(&app, Method::GET, "/api/v1/ui/system", None).await;
        let sys: UiSystem = fits(&b, "UiSystem");
        assert_eq!(sys.streams, 1);
        let (_, b) = call(&app, Method::GET, "/api/v1/ui/interfaces", None).await;
        let ifs: UiInterfaces = fits(&b, "UiInterfaces");
        assert!(ifs.interfaces.iter().any(|i| i.link.name == "lo"));
        let (_, b) = call(&app, Method::GET, "/api/v1/config", None).await;
        let c: Config = fits(&b, "Config");
        assert_eq!(c.data, dir.path());
        let (_, b) = call(&app, Method::GET, "/api/v1/hostname", None).await;
        let h: Hostname = fits(&b, "Hostname");
        assert_eq!(h.hostname, "test-host");
        let (_, b) = call(&app, Method::GET, "/api/v1/interfaces", None).await;
        let _: Vec<Link> = fits(&b, "Link");
        let (_, b) = call(&app, Method::GET, "/api/v1/capture/settings", None).await;
        let cs: wirecap_appliance::capture_settings::CaptureSettingsState =
            fits(&b, "CaptureSettingsState");
        assert!(!cs.applies, "a synthetic source has no socket: {cs:?}");
        let (code, b) = call(
            &app,
            Method::PUT,
            "/api/v1/capture/settings",
            Some(r#"{"bpf": "tcp port 80", "snaplen": 128}"#),
        )
        .await;
        assert_eq!(code, 200, "{}", String::from_utf8_lossy(&b));
        let a: crate::routes::capture::CaptureSettingsAnswer = fits(&b, "CaptureSettingsAnswer");
        assert_eq!(a.settings.snaplen, 128);
        let (code, b) = call(
            &app,
            Method::POST,
            &format!("/api/v1/ui/streams/{name}/analyses"),
            Some("{}"),
        )
        .await;
        assert_eq!(code, 202, "{}", String::from_utf8_lossy(&b));
        let job: crate::routes::ui::AnalysisJobState = fits(&b, "AnalysisJobState");
        let done = loop {
            let (_, b) = call(
                &app,
                Method::GET,
                &format!("/api/v1/ui/analyses/{}", job.id),
                None,
            )
            .await;
            let j: crate::routes::ui::AnalysisJobState = fits(&b, "AnalysisJobState");
            if j.state != "running" {
                break j;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        assert_eq!(done.state, "done", "{done:?}");
        assert_eq!(done.examined, done.total);
        assert!(
            done.result
                .is_some_and(|r| r["packets"].as_u64() == Some(done.total))
        );
        let (_, b) = call(&app, Method::GET, "/api/v1/users", None).await;
        let users: Vec<User> = fits(&b, "User");
        assert_eq!(users[0].name, "admin");

        // Errors: the API's format, with the field at fault when there is one.
        let (code, b) = call(&app, Method::POST, "/api/v1/users", Some(r#"{"name":"x"}"#)).await;
        assert_eq!(code, 400);
        let e: ErrorBody = fits(&b, "ErrorBody");
        assert_eq!(
            (e.status, e.field.as_deref()),
            (400, Some("password")),
            "{e:?}"
        );
        let (code, b) = call(&app, Method::POST, "/api/v1/capture/start", Some("")).await;
        assert_eq!(code, 400);
        let e: ErrorBody = fits(&b, "ErrorBody");
        assert_eq!(e.error, "a JSON body is required");
        let (code, b) = call(
            &app,
            Method::GET,
            "/api/v1/streams/nobody_20250101_0000",
            None,
        )
        .await;
        assert_eq!(code, 404);
        let _: ErrorBody = fits(&b, "ErrorBody");
        // The manual's routes keep the manual's format.
        let (code, b) = call(
            &app,
            Method::GET,
            "/plain/view?StreamName=nobody_20250101_0000",
            None,
        )
        .await;
        assert_eq!(code, 404);
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["Status"], json!(false), "{v}");
    }
}
