//! The route table: every route of the server, in one place, behind the guard. A new route
//! is one line here and a handler in the `routes/` module of its family.

use axum::Router;
use axum::http::Method;
use axum::middleware;
use axum::routing::{MethodFilter, on};

use crate::guard::{guard, not_found, on_panic};
use crate::routes::{admin, assets, capture, manual, meta, ops, session, streams, ui, update};
use crate::state::Shared;

/// One list gives both the router and [`routes()`], so what a test sweeps is what is
/// served.
macro_rules! route_table {
    ($($method:ident $path:literal => $handler:path,)*) => {
        const ROUTES: &[(Method, &str)] = &[$((Method::$method, $path),)*];

        fn add_routes(r: Router<Shared>) -> Router<Shared> {
            $(let r = r.route($path, on(MethodFilter::$method, $handler));)*
            r
        }
    };
}

route_table! {
    // The manual's routes.
    GET "/sysmaster/status" => manual::sys_status,
    GET "/sysmaster/capture_start" => manual::sys_start,
    GET "/sysmaster/capture_stop" => manual::sys_stop,
    GET "/plain/list" => manual::plain_list,
    GET "/plain/view" => manual::plain_view,
    GET "/plain/split" => manual::plain_split,
    GET "/pcap/single" => manual::pcap_single,
    GET "/pcap/splittime" => manual::pcap_splittime,
    GET "/en.files.html" => manual::files_page,
    // About the server.
    GET "/metrics" => meta::metrics,
    GET "/api/v1/openapi.json" => meta::openapi,
    // Streams and their downloads.
    GET "/api/v1/status" => streams::api_status,
    GET "/api/v1/streams" => streams::api_streams,
    GET "/api/v1/streams/{name}" => streams::api_stream,
    DELETE "/api/v1/streams/{name}" => streams::api_delete,
    GET "/api/v1/streams/{name}/views" => streams::api_views,
    GET "/api/v1/streams/{name}/views/{view}/splits" => streams::api_splits,
    GET "/api/v1/streams/{name}/pcap" => streams::api_pcap,
    // Capture control, interfaces, configuration, forwarding.
    POST "/api/v1/capture/start" => capture::api_start,
    POST "/api/v1/capture/stop" => capture::api_stop,
    GET "/api/v1/interfaces" => capture::api_interfaces,
    GET "/api/v1/config" => capture::api_config,
    GET "/api/v1/forward" => capture::api_forward,
    PUT "/api/v1/forward" => capture::api_forward_put,
    // Operations: schedules, retention, pins.
    GET "/api/v1/schedules" => ops::list,
    POST "/api/v1/schedules" => ops::create,
    GET "/api/v1/schedules/{name}" => ops::one,
    PUT "/api/v1/schedules/{name}" => ops::replace,
    DELETE "/api/v1/schedules/{name}" => ops::remove,
    GET "/api/v1/retention" => ops::retention,
    PUT "/api/v1/retention" => ops::set_retention,
    PUT "/api/v1/streams/{name}/pin" => ops::pin,
    // The browser's session (`POST` is public, see `access`).
    GET "/api/v1/session" => session::whoami,
    POST "/api/v1/session" => session::login,
    DELETE "/api/v1/session" => session::logout,
    // Software update.
    GET "/api/v1/releases" => update::list,
    POST "/api/v1/releases" => update::upload,
    POST "/api/v1/releases/{version}/activate" => update::activate,
    // The UI's compact JSON.
    GET "/api/v1/ui/streams" => ui::streams,
    GET "/api/v1/ui/streams/{name}" => ui::stream,
    GET "/api/v1/ui/streams/{name}/views" => ui::views,
    GET "/api/v1/ui/streams/{name}/views/{view}/splits" => ui::splits,
    GET "/api/v1/ui/history" => ui::history,
    GET "/api/v1/ui/system" => ui::system,
    GET "/api/v1/ui/interfaces" => ui::interfaces,
    PUT "/api/v1/ui/capture/interface" => ui::set_interface,
    POST "/api/v1/ui/filter/check" => ui::check_filter,
    POST "/api/v1/ui/streams/{name}/analysis" => ui::analysis,
    // Administration: users, the hostname, system reports.
    GET "/api/v1/users" => admin::list_users,
    POST "/api/v1/users" => admin::add_user,
    DELETE "/api/v1/users/{name}" => admin::remove_user,
    PATCH "/api/v1/users/{name}" => admin::change_user,
    GET "/api/v1/hostname" => admin::get_hostname,
    PUT "/api/v1/hostname" => admin::set_hostname,
    POST "/api/v1/report" => admin::start_report,
    GET "/api/v1/report/{id}" => admin::report_job,
    GET "/api/v1/reports" => admin::list_reports,
    GET "/api/v1/reports/{file}" => admin::download_report,
    // The UI's files (public, see `access`).
    GET "/" => assets::index,
    GET "/index.html" => assets::index,
    GET "/ui/{*path}" => assets::asset,
}

/// Every (method, path) the router serves, in axum's path syntax (`{name}`, `{*path}`):
/// the route table as data, for sweeps that must not miss a route.
pub fn routes() -> &'static [(Method, &'static str)] {
    ROUTES
}

/// The whole application: every route behind the guard. Needs no listener: serve it, or
/// call it in-process (`tower::ServiceExt::oneshot`).
pub fn router(state: Shared) -> Router {
    add_routes(Router::new())
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(on_panic))
        .with_state(state)
}
