//! The route table: every route of the server, in one place, behind the guard. A new route
//! is a handler in the `routes/` module of its family with its `#[utoipa::path]` (method,
//! path, parameters, body and answers), and one `routes!` line in [`documented`]: the
//! OpenAPI document is generated from the same attributes.

use axum::Router;
use axum::http::Method;
use axum::middleware;
use axum::routing::get;
use std::sync::OnceLock;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::shape_errors;
use crate::guard::{guard, not_found, on_panic};
use crate::openapi::ApiDoc;
use crate::routes::{admin, assets, capture, manual, meta, ops, session, streams, ui, update};
use crate::routes::{alerts, tokens};
use crate::routes::{flows, search};
use crate::state::Shared;

/// Every documented route: the manual's, `/metrics` and the JSON API. A handler's
/// `#[utoipa::path]` names its method and path, and `routes!` registers it from there, so
/// a route and its entry in the OpenAPI document are one thing and cannot drift. Handlers
/// of one path go in one `routes!`.
pub fn documented() -> OpenApiRouter<Shared> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        // The manual's routes.
        .routes(routes!(manual::sys_status))
        .routes(routes!(manual::sys_start))
        .routes(routes!(manual::sys_stop))
        .routes(routes!(manual::plain_list))
        .routes(routes!(manual::plain_view))
        .routes(routes!(manual::plain_split))
        .routes(routes!(manual::pcap_single))
        .routes(routes!(manual::pcap_splittime))
        // About the server.
        .routes(routes!(meta::metrics))
        .routes(routes!(meta::openapi))
        // Streams and their downloads.
        .routes(routes!(streams::api_status))
        .routes(routes!(streams::api_streams))
        .routes(routes!(streams::api_stream, streams::api_delete))
        .routes(routes!(streams::api_views))
        .routes(routes!(streams::api_splits))
        .routes(routes!(streams::api_pcap))
        // Capture control, interfaces, configuration, forwarding.
        .routes(routes!(capture::api_start))
        .routes(routes!(capture::api_stop))
        .routes(routes!(capture::api_interfaces))
        .routes(routes!(capture::api_config))
        .routes(routes!(capture::api_forward, capture::api_forward_put))
        .routes(routes!(
            capture::api_capture_settings,
            capture::api_capture_settings_put
        ))
        // Operations: schedules, retention, pins.
        .routes(routes!(ops::list, ops::create))
        .routes(routes!(ops::one, ops::replace, ops::remove))
        .routes(routes!(ops::retention, ops::set_retention))
        .routes(routes!(ops::pin))
        // The browser's session (`POST` is public, see `access`).
        .routes(routes!(session::whoami, session::login, session::logout))
        // Software update.
        .routes(routes!(update::list, update::upload))
        .routes(routes!(update::activate))
        // The UI's compact JSON.
        .routes(routes!(ui::streams))
        .routes(routes!(ui::stream))
        .routes(routes!(ui::views))
        .routes(routes!(ui::splits))
        .routes(routes!(ui::history))
        .routes(routes!(ui::system))
        .routes(routes!(ui::interfaces))
        .routes(routes!(ui::set_interface))
        .routes(routes!(ui::check_filter))
        .routes(routes!(ui::analysis))
        .routes(routes!(ui::start_analysis))
        .routes(routes!(ui::analysis_state, ui::cancel_analysis))
        // Administration: users, the hostname, system reports.
        .routes(routes!(admin::list_users, admin::add_user))
        .routes(routes!(admin::remove_user, admin::change_user))
        .routes(routes!(admin::get_hostname, admin::set_hostname))
        .routes(routes!(admin::start_report))
        .routes(routes!(admin::report_job))
        .routes(routes!(admin::list_reports))
        .routes(routes!(admin::download_report))
        // API tokens (admin only, see `access`).
        .routes(routes!(tokens::list, tokens::create))
        .routes(routes!(tokens::revoke))
        // Alerts (admin only, see `access`).
        .routes(routes!(alerts::get, alerts::set))
        .routes(routes!(alerts::test))
        // Search across captures: one pcap of every stream, and the flows.
        .routes(routes!(search::search))
        .routes(routes!(flows::flows))
        .routes(routes!(flows::flow_pcap))
}

/// The routes that are not in the OpenAPI document: a page for people, and the UI's files
/// (public, see `access`). [`router`] registers exactly these by hand.
const UNDOCUMENTED: [(Method, &str); 4] = [
    (Method::GET, "/en.files.html"),
    (Method::GET, "/"),
    (Method::GET, "/index.html"),
    (Method::GET, "/ui/{*path}"),
];

/// Every (method, path) the router serves, in axum's path syntax (`{name}`, `{*path}`):
/// the documented routes read back from the generated document, plus [`UNDOCUMENTED`].
/// Sweeps over it cannot miss a route, because the document is built from the same
/// attributes that register the handlers.
pub fn routes() -> &'static [(Method, &'static str)] {
    static ROUTES: OnceLock<Vec<(Method, &'static str)>> = OnceLock::new();
    ROUTES.get_or_init(|| {
        let (_, doc) = documented().split_for_parts();
        let mut all = Vec::new();
        for (path, item) in &doc.paths.paths {
            // Leaked once per path for the life of the process: the table is static.
            let path: &'static str = Box::leak(path.clone().into_boxed_str());
            let ops = [
                (Method::GET, item.get.is_some()),
                (Method::PUT, item.put.is_some()),
                (Method::POST, item.post.is_some()),
                (Method::DELETE, item.delete.is_some()),
                (Method::PATCH, item.patch.is_some()),
                (Method::HEAD, item.head.is_some()),
                (Method::OPTIONS, item.options.is_some()),
                (Method::TRACE, item.trace.is_some()),
            ];
            all.extend(
                ops.into_iter()
                    .filter(|(_, on)| *on)
                    .map(|(m, _)| (m, path)),
            );
        }
        all.extend(UNDOCUMENTED);
        all
    })
}

/// The whole application: every route behind the guard. Needs no listener: serve it, or
/// call it in-process (`tower::ServiceExt::oneshot`).
pub fn router(state: Shared) -> Router {
    let (documented, _) = documented().split_for_parts();
    documented
        // Not in the document: a page for people, and the UI's files (public, see `access`).
        .route("/en.files.html", get(manual::files_page))
        .route("/", get(assets::index))
        .route("/index.html", get(assets::index))
        .route("/ui/{*path}", get(assets::asset))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(on_panic))
        // Outermost: every error leaves in its family's format.
        .layer(middleware::from_fn(shape_errors))
        .with_state(state)
}
