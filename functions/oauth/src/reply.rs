//! The OAuth endpoints' answers and inputs: OAuth's error JSON and headers, form bodies, the
//! client's `Authorization` header.

use gatehouse::services::oauth::OAuthError;
use gatehouse_http::{Call, Reply};
use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use serde_json::{Value, json};

/// A JSON answer no cache keeps (RFC 6749 §5.1: `Cache-Control: no-store`, which every gatehouse
/// answer carries).
pub(crate) fn answer(status: StatusCode, body: &Value) -> Response<Body> {
    gatehouse_http::json(status, body)
}

/// Discovery documents may be cached a little (they change with a deployment).
pub(crate) fn public_document(body: &Value) -> Reply {
    let mut r = answer(StatusCode::OK, body);
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    Ok(r)
}

/// An OAuth error as the endpoints answer it: 400, 401 with `WWW-Authenticate` for client
/// authentication and bearer tokens, 429 with `Retry-After`, 503 when a store is unreachable.
pub(crate) fn oauth_error(e: &OAuthError) -> Response<Body> {
    let status = match e {
        OAuthError::InvalidClient | OAuthError::InvalidToken => StatusCode::UNAUTHORIZED,
        OAuthError::InsufficientScope => StatusCode::FORBIDDEN,
        OAuthError::Limited { .. } => StatusCode::TOO_MANY_REQUESTS,
        OAuthError::Store(_) | OAuthError::Sign(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    let description = match e {
        OAuthError::Store(_) | OAuthError::Sign(_) => {
            tracing::error!(error = %e, "oauth endpoint could not finish");
            "try again in a moment".to_owned()
        }
        _ => e.to_string(),
    };
    let mut r = answer(status, &json!({ "error": e.code(), "error_description": description }));
    let h = r.headers_mut();
    match e {
        OAuthError::InvalidClient => {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"gatehouse\""));
        }
        OAuthError::InvalidToken => {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer error=\"invalid_token\""));
        }
        OAuthError::InsufficientScope => {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"insufficient_scope\", scope=\"openid\""),
            );
        }
        OAuthError::Limited { retry_after } => {
            if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                h.insert(header::RETRY_AFTER, v);
            }
        }
        _ => {}
    }
    r
}

/// The form body (`application/x-www-form-urlencoded`, what OAuth's endpoints take).
pub(crate) fn form(call: &Call<'_>) -> Result<Vec<(String, String)>, OAuthError> {
    let content_type = call.req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !content_type.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded") {
        return Err(OAuthError::InvalidRequest("the body must be application/x-www-form-urlencoded".into()));
    }
    let bytes: &[u8] = match call.req.body() {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    };
    if bytes.len() > gatehouse_http::MAX_BODY {
        return Err(OAuthError::InvalidRequest("the body is too large".into()));
    }
    Ok(form_urlencoded::parse(bytes).into_owned().collect())
}

pub(crate) fn authorization(call: &Call<'_>) -> Option<String> {
    call.req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned)
}
