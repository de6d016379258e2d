//! [`Json`]: the one way a handler reads a JSON body.
//!
//! * The body must say `Content-Type: application/json` (415 otherwise): a cross-site HTML
//!   form cannot send that type without a CORS preflight, which this server never grants
//!   (the CSRF defence of Basic auth).
//! * An empty body reads as JSON `null`: a type that may be absent (`Json<Option<T>>`)
//!   gets `None`, any other type answers 400 "a JSON body is required".
//! * A body that does not fit the type answers 400 naming the field at fault and where
//!   (serde's message), in the API's error format.
//! * `Option<Json<T>>` is `None` for a request without any body (nor type): only for routes
//!   that may be called bare.

use axum::body::Bytes;
use axum::extract::{FromRequest, OptionalFromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON request body of type `T` (see the module's rules).
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

/// The most a JSON body may hold (axum's default limit for a buffered body).
const MAX_BODY: usize = 2 << 20;

/// JSON bodies must say so (see the module's doc).
pub(crate) fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.trim_start().starts_with("application/json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the body as Content-Type: application/json",
        ));
    }
    Ok(())
}

/// `body` as a `T`: empty reads as `null`; a serde error names its field.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let empty = body.iter().all(u8::is_ascii_whitespace);
    let r = if empty {
        serde_json::from_slice(b"null")
    } else {
        serde_json::from_slice(body)
    };
    r.map_err(|e| {
        if empty {
            return ApiError::bad_request("a JSON body is required");
        }
        let msg = format!("body: {e}");
        match serde_field(&e) {
            Some(f) => ApiError::field(f, msg),
            None => ApiError::bad_request(msg),
        }
    })
}

/// The field a serde error is about (`unknown field `x``, `missing field `x``, `invalid
/// type … for key `x``); `None` when the error is not about one field.
pub fn serde_field(e: &serde_json::Error) -> Option<String> {
    let m = e.to_string();
    let about_a_field = ["unknown field", "missing field", "duplicate field"]
        .iter()
        .any(|p| m.starts_with(p))
        || m.contains(" for key `");
    if !about_a_field {
        return None;
    }
    let field = if let Some((_, k)) = m.split_once(" for key `") {
        k.split('`').next()
    } else {
        m.split('`').nth(1)
    };
    field.map(str::to_owned)
}

async fn bytes(req: Request) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(req.into_body(), MAX_BODY)
        .await
        .map_err(|_| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body too large"))
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, ApiError> {
        require_json(req.headers())?;
        Ok(Self(parse(&bytes(req).await?)?))
    }
}

impl<T: DeserializeOwned, S: Send + Sync> OptionalFromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Option<Self>, ApiError> {
        let headers = req.headers().clone();
        let body = bytes(req).await?;
        if body.is_empty() && !headers.contains_key(header::CONTENT_TYPE) {
            return Ok(None);
        }
        require_json(&headers)?;
        Ok(Some(Self(parse(&body)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Named {
        #[allow(dead_code)]
        name: String,
    }

    #[test]
    fn an_empty_body_is_null() {
        assert_eq!(parse::<Option<Named>>(b"").unwrap().map(|n| n.name), None);
        let e = parse::<Named>(b" ").unwrap_err();
        assert_eq!(e.message, "a JSON body is required");
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn a_serde_error_names_its_field() {
        let e = parse::<Named>(br#"{"name":"a","colour":1}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("colour"), "{e:?}");
        assert!(e.message.contains("line 1"), "{e:?}");
        let e = parse::<Named>(b"{}").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("name"), "{e:?}");
        let e = parse::<Named>(b"{").unwrap_err();
        assert_eq!(e.field, None);
    }
}
