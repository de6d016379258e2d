//! The guard every request passes: limits first (cheap), then credentials, the CSRF check
//! of a session, the role the route needs ([`crate::access`]: the one place that decides
//! it), then the handler; then one access-log line and the request metric. Also the
//! answers for a panic and for a path no route serves.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use wirecap_appliance::auth::{Credentials, Refusal, credentials};
use wirecap_appliance::short;

use crate::access::{self, Access};
use crate::error::{ApiError, Shape};
use crate::query::MAX_QUERY_LEN;
use crate::state::Shared;

/// Longest request path accepted.
pub const MAX_PATH_LEN: usize = 1024;

pub(crate) fn on_panic(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError::internal("internal error; see the server log").into_response()
}

pub(crate) fn family(path: &str) -> &'static str {
    match path.split('/').nth(1).unwrap_or("") {
        "sysmaster" => "sysmaster",
        "plain" => "plain",
        "pcap" => "pcap",
        "api" => "api",
        "metrics" => "metrics",
        _ => "other",
    }
}

/// Every request passes here: limits first (cheap), then credentials, then the role the
/// route needs ([`crate::access`]: the one place that decides it), then the handler; then
/// one access-log line and the request metric.
pub(crate) async fn guard(State(app): State<Shared>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let fam = family(&path);
    let shape = if fam == "api" {
        Shape::Api
    } else {
        Shape::Appliance
    };
    let too_long =
        req.uri().query().is_some_and(|q| q.len() > MAX_QUERY_LEN) || path.len() > MAX_PATH_LEN;
    let access = access::classify(&method, &path);
    let (resp, user) = if too_long {
        let mut e = crate::query::too_long();
        e.shape = shape;
        (e.into_response(), None)
    } else if crate::csrf::is_unsafe(&method, &path)
        && crate::csrf::cross_site(req.uri(), req.headers())
    {
        // Before the credentials: a browser sends remembered Basic credentials (and
        // cookies) with another site's requests too, and this costs no password hash.
        tracing::warn!(%peer, %method, %path, "cross-site request refused");
        let mut e = ApiError::new(
            StatusCode::FORBIDDEN,
            "cross-site request refused: this changes something and the browser says another site sent it",
        );
        e.shape = shape;
        (e.into_response(), None)
    } else if access == Access::Public {
        // The login page, its code and the login itself (see `crate::routes::session`).
        (next.run(req).await, None)
    } else {
        let creds = credentials(
            req.headers()
                .get(header::AUTHORIZATION)
                .map(HeaderValue::as_bytes),
            req.headers().get(header::COOKIE).map(HeaderValue::as_bytes),
        );
        let session = match &creds {
            Some(Credentials::Session { id }) => Some(id.clone()),
            _ => None,
        };
        let basic_challenge = crate::csrf::wants_basic_challenge(req.headers());
        match app.auth.check(creds, peer).await {
            Ok(id) => {
                let user = id.user.clone();
                let csrf = session.as_deref().map_or(Ok(()), |sid| {
                    crate::csrf::csrf_check(
                        &app.auth.sessions,
                        sid,
                        &method,
                        req.uri(),
                        req.headers(),
                    )
                });
                if let Err(why) = csrf {
                    tracing::warn!(%peer, %path, "{why}");
                    let mut e = ApiError::new(StatusCode::FORBIDDEN, why);
                    e.shape = shape;
                    (e.into_response(), Some(user))
                } else if !access::allows(&access, &id) {
                    tracing::warn!(%peer, %user, %method, %path, "refused: needs the admin role");
                    let mut e = ApiError::new(
                        StatusCode::FORBIDDEN,
                        format!("{user} is a viewer: this needs the admin role"),
                    );
                    e.shape = shape;
                    (e.into_response(), Some(user))
                } else {
                    req.extensions_mut().insert(id);
                    (next.run(req).await, Some(user))
                }
            }
            Err(why) => {
                if why == Refusal::Wrong {
                    app.metrics.auth_failure();
                    tracing::warn!(%peer, %path, "wrong credentials");
                }
                if why == Refusal::Busy {
                    tracing::warn!(%peer, %path, "login attempt refused: too many at once");
                    let mut e = ApiError::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        "too many login attempts from this network or on this account: try again later",
                    );
                    e.shape = shape;
                    let mut r = e.into_response();
                    r.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from_static("8"));
                    return finish(&app, fam, &peer, None, &method, &path, started, r);
                }
                let mut e = ApiError::new(StatusCode::UNAUTHORIZED, "authentication required");
                e.shape = shape;
                let mut r = e.into_response();
                if basic_challenge {
                    r.headers_mut().insert(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static("Basic realm=\"wirecap\", charset=\"UTF-8\""),
                    );
                }
                (r, None)
            }
        }
    };
    finish(
        &app,
        fam,
        &peer,
        user.as_deref(),
        &method,
        &path,
        started,
        resp,
    )
}

/// One access-log line and the request metric.
#[allow(clippy::too_many_arguments)]
fn finish(
    app: &Shared,
    fam: &'static str,
    peer: &IpAddr,
    user: Option<&str>,
    method: &axum::http::Method,
    path: &str,
    started: Instant,
    resp: Response,
) -> Response {
    let code = resp.status().as_u16();
    app.metrics.request(fam, code);
    tracing::info!(
        target: "wirecap::access",
        %peer,
        user = user.unwrap_or("-"),
        %method,
        path = %short(path),
        code,
        ms = started.elapsed().as_millis() as u64,
    );
    resp
}

pub(crate) async fn not_found(req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let mut e = ApiError::not_found(format!("no such page: {}", short(&path)));
    if family(&path) == "api" {
        e.shape = Shape::Api;
    }
    e.into_response()
}
