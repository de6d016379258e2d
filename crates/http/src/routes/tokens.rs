//! API tokens ([`wirecap_appliance::tokens`]): an admin's to list, make and revoke (listing
//! too: names and last-used times say which scripts run where, see `access::ADMIN_READS`).
//!
//! | route | does |
//! |---|---|
//! | `GET /api/v1/tokens` | `[{name, role, created_by, created, last_used?}]` |
//! | `POST /api/v1/tokens` | `{name, role?}` makes a token (role viewer by default) → its secret, shown once (201) |
//! | `DELETE /api/v1/tokens/{name}` | revokes it: refused from the next request on |

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;

use wirecap_appliance::auth::{Identity, Role};
use wirecap_appliance::tokens::{NewToken, TokenInfo};

use crate::body::Json;
use crate::error::{ApiError, ErrorBody};
use crate::respond::{blocking, json_no_store};
use crate::state::Shared;

/// `POST /api/v1/tokens`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// 1 to 64 of `a-z A-Z 0-9 _ . -`.
    pub name: String,
    /// `viewer` when not given.
    pub role: Option<Role>,
}

#[utoipa::path(get, path = "/api/v1/tokens", tag = "admin",
    responses((status = 200, body = Vec<TokenInfo>), (status = "default", body = ErrorBody)))]
pub(crate) async fn list(State(app): State<Shared>) -> Response {
    json_no_store(StatusCode::OK, &app.auth.list_tokens())
}

#[utoipa::path(post, path = "/api/v1/tokens", tag = "admin", request_body = TokenRequest,
    responses((status = 201, body = NewToken, description = "the token and its secret (`token`), shown this once"),
        (status = "default", body = ErrorBody)))]
pub(crate) async fn create(
    State(app): State<Shared>,
    id: Option<axum::Extension<Identity>>,
    Json(v): Json<TokenRequest>,
) -> Result<Response, ApiError> {
    let by = id.map(|e| e.0.user).unwrap_or_default();
    let role = v.role.unwrap_or(Role::Viewer);
    let made = blocking(move || {
        app.auth
            .create_token(&v.name, role, &by)
            .map_err(ApiError::from)
    })
    .await?;
    // no-store: the secret must not stay in any cache.
    Ok(json_no_store(StatusCode::CREATED, &made))
}

#[utoipa::path(delete, path = "/api/v1/tokens/{name}", tag = "admin", params(("name" = String, Path)),
    responses((status = 204, description = "revoked"), (status = "default", body = ErrorBody)))]
pub(crate) async fn revoke(
    State(app): State<Shared>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    blocking(move || app.auth.revoke_token(&name).map_err(ApiError::from)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
