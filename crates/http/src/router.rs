//! The route table: every route of the server, in one place, behind the guard. A new route
//! is one line here and a handler in the `routes/` module of its family.

use axum::Router;
use axum::middleware;
use axum::routing::{delete, get, post, put};

use crate::error::shape_errors;
use crate::guard::{guard, not_found, on_panic};
use crate::routes::{admin, assets, capture, manual, meta, ops, session, streams, ui, update};
use crate::state::Shared;

/// The whole application: every route behind the guard. Needs no listener: serve it, or
/// call it in-process (`tower::ServiceExt::oneshot`).
pub fn router(state: Shared) -> Router {
    Router::new()
        // The manual's routes.
        .route("/sysmaster/status", get(manual::sys_status))
        .route("/sysmaster/capture_start", get(manual::sys_start))
        .route("/sysmaster/capture_stop", get(manual::sys_stop))
        .route("/plain/list", get(manual::plain_list))
        .route("/plain/view", get(manual::plain_view))
        .route("/plain/split", get(manual::plain_split))
        .route("/pcap/single", get(manual::pcap_single))
        .route("/pcap/splittime", get(manual::pcap_splittime))
        .route("/en.files.html", get(manual::files_page))
        // About the server.
        .route("/metrics", get(meta::metrics))
        .route("/api/v1/openapi.json", get(meta::openapi))
        // Streams and their downloads.
        .route("/api/v1/status", get(streams::api_status))
        .route("/api/v1/streams", get(streams::api_streams))
        .route(
            "/api/v1/streams/{name}",
            get(streams::api_stream).delete(streams::api_delete),
        )
        .route("/api/v1/streams/{name}/views", get(streams::api_views))
        .route(
            "/api/v1/streams/{name}/views/{view}/splits",
            get(streams::api_splits),
        )
        .route("/api/v1/streams/{name}/pcap", get(streams::api_pcap))
        // Capture control, interfaces, configuration, forwarding.
        .route("/api/v1/capture/start", post(capture::api_start))
        .route("/api/v1/capture/stop", post(capture::api_stop))
        .route("/api/v1/interfaces", get(capture::api_interfaces))
        .route("/api/v1/config", get(capture::api_config))
        .route(
            "/api/v1/forward",
            get(capture::api_forward).put(capture::api_forward_put),
        )
        // Operations: schedules, retention, pins.
        .route("/api/v1/schedules", get(ops::list).post(ops::create))
        .route(
            "/api/v1/schedules/{name}",
            get(ops::one).put(ops::replace).delete(ops::remove),
        )
        .route(
            "/api/v1/retention",
            get(ops::retention).put(ops::set_retention),
        )
        .route("/api/v1/streams/{name}/pin", put(ops::pin))
        // The browser's session (`POST` is public, see `access`).
        .route(
            "/api/v1/session",
            get(session::whoami)
                .post(session::login)
                .delete(session::logout),
        )
        // Software update.
        .route("/api/v1/releases", get(update::list).post(update::upload))
        .route(
            "/api/v1/releases/{version}/activate",
            post(update::activate),
        )
        // The UI's compact JSON.
        .route("/api/v1/ui/streams", get(ui::streams))
        .route("/api/v1/ui/streams/{name}", get(ui::stream))
        .route("/api/v1/ui/streams/{name}/views", get(ui::views))
        .route(
            "/api/v1/ui/streams/{name}/views/{view}/splits",
            get(ui::splits),
        )
        .route("/api/v1/ui/history", get(ui::history))
        .route("/api/v1/ui/system", get(ui::system))
        .route("/api/v1/ui/interfaces", get(ui::interfaces))
        .route("/api/v1/ui/capture/interface", put(ui::set_interface))
        .route("/api/v1/ui/filter/check", post(ui::check_filter))
        .route("/api/v1/ui/streams/{name}/analysis", post(ui::analysis))
        // Administration: users, the hostname, system reports.
        .route(
            "/api/v1/users",
            get(admin::list_users).post(admin::add_user),
        )
        .route(
            "/api/v1/users/{name}",
            delete(admin::remove_user).patch(admin::change_user),
        )
        .route(
            "/api/v1/hostname",
            get(admin::get_hostname).put(admin::set_hostname),
        )
        .route("/api/v1/report", post(admin::start_report))
        .route("/api/v1/report/{id}", get(admin::report_job))
        .route("/api/v1/reports", get(admin::list_reports))
        .route("/api/v1/reports/{file}", get(admin::download_report))
        // The UI's files (public, see `access`).
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
