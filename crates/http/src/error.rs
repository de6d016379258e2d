//! [`ApiError`]: how a request that cannot be answered is answered, and the one mapping
//! of each domain error to an HTTP status (`impl From<…> for ApiError`, here at the edge).
//!
//! A handler never picks the error's format: [`shape_errors`], one layer around the whole
//! router, renders every [`ApiError`] in the format of the route's family (the JSON API's
//! `{"error","status","field"?}` under `/api/`, the manual's `{"Status":false,"Str"}`
//! elsewhere).

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use wirecap_appliance::auth::UserError;
use wirecap_appliance::engine::EngineError;
use wirecap_appliance::manual::ApplianceJson;
use wirecap_appliance::release::ReleaseError;
use wirecap_appliance::report::ReportError;
use wirecap_appliance::update::UpdateError;

/// How an error is rendered: the manual's `{"Status":false,"Str":"…"}`, or the JSON
/// API's `{"error":"…","status":N}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shape {
    #[default]
    Appliance,
    Api,
}

impl Shape {
    /// The format of a route's errors, by its family.
    pub fn of_path(path: &str) -> Self {
        if path.split('/').nth(1) == Some("api") {
            Self::Api
        } else {
            Self::Appliance
        }
    }
}

/// A request that cannot be answered as asked: an HTTP status and a reason for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// The body field the error is about (a form points at it).
    pub field: Option<String>,
    pub shape: Shape,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            field: None,
            shape: Shape::Appliance,
        }
    }
    /// A 400 about one field of the body.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            ..Self::bad_request(message)
        }
    }
    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, m)
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, m)
    }
    pub fn conflict(m: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, m)
    }
    pub fn internal(m: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, m)
    }
    /// Renders as the JSON API's shape (for answers built outside the router's layer).
    pub fn api(mut self) -> Self {
        self.shape = Shape::Api;
        self
    }

    fn body(&self) -> String {
        match self.shape {
            Shape::Appliance => ApplianceJson::err(self.message.clone()).to_body(),
            Shape::Api => {
                let mut s = serde_json::to_string(&ErrorBody {
                    error: self.message.clone(),
                    status: self.status.as_u16(),
                    field: self.field.clone(),
                })
                .unwrap_or_default();
                s.push('\n');
                s
            }
        }
    }
}

/// The JSON API's error answer.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// What went wrong, for a person.
    pub error: String,
    /// The HTTP status again.
    pub status: u16,
    /// The body field at fault, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl From<wirecap_store::Error> for ApiError {
    fn from(e: wirecap_store::Error) -> Self {
        use wirecap_store::Error as E;
        let status = match &e {
            E::NoSuchStream(_) | E::NoSuchSplit { .. } => StatusCode::NOT_FOUND,
            E::InvalidName { .. } | E::UnknownView(_) | E::Invalid(_) => StatusCode::BAD_REQUEST,
            E::StreamExists(_) | E::Locked(_) => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            // The detail (paths on the server) goes to the log, not to the client.
            tracing::error!("store: {e}");
            return Self::internal("the store failed to read this stream; see the server log");
        }
        Self::new(status, e.to_string())
    }
}

/// The status of an engine error: the manual's capture answers use it too.
pub(crate) fn engine_status(e: &EngineError) -> StatusCode {
    match e {
        EngineError::AlreadyRunning(_) | EngineError::NotRunning | EngineError::StreamExists(_) => {
            StatusCode::CONFLICT
        }
        EngineError::InvalidName(_) | EngineError::Invalid(_) => StatusCode::BAD_REQUEST,
        EngineError::Busy(_) => StatusCode::CONFLICT,
        EngineError::NoInterface(_) => StatusCode::SERVICE_UNAVAILABLE,
        EngineError::NoPermission(_) => StatusCode::FORBIDDEN,
        EngineError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
        EngineError::DiskFull(_) => StatusCode::INSUFFICIENT_STORAGE,
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        Self::new(engine_status(&e), e.to_string())
    }
}

impl From<UserError> for ApiError {
    fn from(e: UserError) -> Self {
        let status = match &e {
            UserError::InvalidName(_) | UserError::WeakPassword(_) => StatusCode::BAD_REQUEST,
            UserError::Exists(_) | UserError::LastAdmin(_) => StatusCode::CONFLICT,
            UserError::NoSuchUser(_) => StatusCode::NOT_FOUND,
            UserError::Store(inner) => {
                tracing::error!("users: {inner}");
                return Self::internal("cannot save the users; see the server log");
            }
        };
        Self::new(status, e.to_string())
    }
}

impl From<wirecap_appliance::tokens::TokenError> for ApiError {
    fn from(e: wirecap_appliance::tokens::TokenError) -> Self {
        use wirecap_appliance::tokens::TokenError;
        let status = match &e {
            TokenError::InvalidName(_) => StatusCode::BAD_REQUEST,
            TokenError::Exists(_) => StatusCode::CONFLICT,
            TokenError::NoSuchToken(_) => StatusCode::NOT_FOUND,
            TokenError::Corrupt { .. } | TokenError::Store(_) => {
                tracing::error!("tokens: {e}");
                return Self::internal("cannot read or save the API tokens; see the server log");
            }
        };
        Self::new(status, e.to_string())
    }
}

impl From<ReportError> for ApiError {
    fn from(e: ReportError) -> Self {
        match e {
            ReportError::Recipient(_) => Self::bad_request(e.to_string()),
            ReportError::Busy(_) => Self::conflict(e.to_string()),
            other => {
                tracing::error!("report: {other}");
                Self::internal("cannot make the report; see the server log")
            }
        }
    }
}

impl From<UpdateError> for ApiError {
    fn from(e: UpdateError) -> Self {
        let status = match &e {
            UpdateError::Release(ReleaseError::Io { .. }) | UpdateError::Io { .. } => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            UpdateError::Release(_) => StatusCode::UNPROCESSABLE_ENTITY,
            UpdateError::NotInstalled(_) => StatusCode::NOT_FOUND,
            UpdateError::Conflict(_) => StatusCode::CONFLICT,
        };
        Self::new(status, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            self.body(),
        )
            .into_response();
        r.extensions_mut().insert(self);
        r
    }
}

/// The one place that sets the format of errors: re-renders every [`ApiError`] a
/// handler, an extractor or the guard answered in the format of the route's family.
pub(crate) async fn shape_errors(req: Request, next: Next) -> Response {
    let shape = Shape::of_path(req.uri().path());
    let r = next.run(req).await;
    match r.extensions().get::<ApiError>() {
        Some(e) if e.shape != shape => {
            let mut e = e.clone();
            e.shape = shape;
            // Keeps what else the answer carried (Retry-After, cookies…).
            let (mut parts, _) = r.into_parts();
            parts.headers.remove(header::CONTENT_LENGTH);
            let body = axum::body::Body::from(e.body());
            parts.extensions.insert(e);
            Response::from_parts(parts, body)
        }
        _ => r,
    }
}
