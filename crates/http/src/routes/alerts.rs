//! Alerts ([`wirecap_appliance::alerts`]): the webhook and syslog targets and thresholds
//! (`[alerts]` in `wirecap.toml`), the conditions in force and the last deliveries. An
//! admin's only, reading too: a webhook URL often carries a secret.
//!
//! | route | does |
//! |---|---|
//! | `GET /api/v1/alerts` | `{config, active, recent}` |
//! | `PUT /api/v1/alerts` | `{webhook?, syslog?, drops_per_minute?, disk_percent?, cert_days?}` replaces `[alerts]`, applied at once |
//! | `POST /api/v1/alerts/test` | sends a test event to every target now → the deliveries |

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use wirecap_appliance::alerts::{Active, AlertsConfig, Delivery};
use wirecap_appliance::config;

use crate::body::Json;
use crate::error::{ApiError, ErrorBody};
use crate::respond::{blocking, json_no_store};
use crate::state::Shared;

/// The alerts' settings and state.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertsView {
    /// `[alerts]` as in force.
    pub config: AlertsConfig,
    /// Conditions alerting now.
    pub active: Vec<Active>,
    /// The last deliveries, newest first.
    pub recent: Vec<Delivery>,
}

fn view(app: &Shared) -> AlertsView {
    AlertsView {
        config: app.ops.alerts.config(),
        active: app.ops.alerts.active(),
        recent: app.ops.alerts.recent(),
    }
}

#[utoipa::path(get, path = "/api/v1/alerts", tag = "operations",
    responses((status = 200, body = AlertsView), (status = "default", body = ErrorBody)))]
pub(crate) async fn get(State(app): State<Shared>) -> Response {
    json_no_store(StatusCode::OK, &view(&app))
}

#[utoipa::path(put, path = "/api/v1/alerts", tag = "operations", request_body = AlertsConfig,
    responses((status = 200, body = AlertsView), (status = "default", body = ErrorBody)))]
pub(crate) async fn set(
    State(app): State<Shared>,
    Json(mut v): Json<AlertsConfig>,
) -> Result<Response, ApiError> {
    // An emptied field of the form means "not set".
    for s in [&mut v.webhook, &mut v.syslog] {
        if s.as_deref().is_some_and(|x| x.trim().is_empty()) {
            *s = None;
        }
    }
    if let Err((key, why)) = v.validate() {
        return Err(ApiError::field(key, why));
    }
    let a = app.clone();
    blocking(move || {
        let r = config::write_alerts(&a.settings.data, &v);
        a.ops.reload(&a.engine);
        r.map(drop).map_err(ApiError::bad_request)
    })
    .await?;
    tracing::info!("alert settings changed");
    Ok(json_no_store(StatusCode::OK, &view(&app)))
}

#[utoipa::path(post, path = "/api/v1/alerts/test", tag = "operations",
    responses((status = 200, body = Vec<Delivery>, description = "one delivery per target (none when no target is set)"),
        (status = "default", body = ErrorBody)))]
pub(crate) async fn test(State(app): State<Shared>) -> Result<Response, ApiError> {
    let a = app.clone();
    let d = blocking(move || Ok(a.ops.alerts.send_test())).await?;
    Ok(json_no_store(StatusCode::OK, &d))
}
