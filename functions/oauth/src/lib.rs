//! The `oauth` function: the OAuth 2.1 / OpenID Connect provider's API endpoints over
//! [`gatehouse::services::oauth`]. The authorization endpoint and its consent page are hosted
//! pages (`gatehouse-pages`); everything a client calls directly is here. Its answers are
//! OAuth's own (`{"error", "error_description"}`, RFC 6749 §5.2), not the API's error JSON.

use gatehouse::schema::iam;
use gatehouse::services::oauth::OAuthError;
use gatehouse::services::oauth::clients::RegistrationError;
use gatehouse_http::{ApiError, App, Call, Guard, Reply, Route, route};
use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use serde_json::{Value, json};

/// Serves one request through [`ROUTES`].
pub async fn handle(app: &App, req: lambda_http::Request) -> Response<Body> {
    gatehouse_http::dispatch(app, ROUTES, req).await
}

/// What this function serves. Every route authenticates its caller itself, as OAuth says
/// (client authentication, a bearer access token, an initial access token).
pub static ROUTES: &[Route] = &[
    route!(GET "/.well-known/openid-configuration", Guard::Public, metadata),
    route!(GET "/.well-known/oauth-authorization-server", Guard::Public, metadata),
    route!(GET "/.well-known/oauth-protected-resource", Guard::Public, resource_metadata),
    route!(GET "/.well-known/jwks.json", Guard::Public, jwks),
    route!(POST "/oauth/token", Guard::Public, token),
    route!(GET "/oauth/userinfo", Guard::Public, userinfo),
    route!(POST "/oauth/userinfo", Guard::Public, userinfo),
    route!(POST "/oauth/introspect", Guard::Public, introspect),
    route!(POST "/oauth/revoke", Guard::Public, revoke),
    route!(POST "/oauth/register", Guard::Public, register),
];

/// A JSON answer no cache keeps (RFC 6749 §5.1: `Cache-Control: no-store`, which every gatehouse
/// answer carries).
fn answer(status: StatusCode, body: &Value) -> Response<Body> {
    gatehouse_http::json(status, body)
}

/// Discovery documents may be cached a little (they change with a deployment).
fn public_document(body: &Value) -> Reply {
    let mut r = answer(StatusCode::OK, body);
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    Ok(r)
}

/// An OAuth error as the endpoints answer it: 400, 401 with `WWW-Authenticate` for client
/// authentication and bearer tokens, 429 with `Retry-After`, 503 when a store is unreachable.
fn oauth_error(e: &OAuthError) -> Response<Body> {
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
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer error=\"insufficient_scope\", scope=\"openid\""));
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
fn form(call: &Call<'_>) -> Result<Vec<(String, String)>, OAuthError> {
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

fn authorization(call: &Call<'_>) -> Option<String> {
    call.req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

async fn metadata(call: Call<'_>) -> Reply {
    public_document(&call.app.oauth().metadata())
}

async fn resource_metadata(call: Call<'_>) -> Reply {
    public_document(&call.app.oauth().protected_resource_metadata())
}

async fn jwks(call: Call<'_>) -> Reply {
    match call.app.oauth().keys() {
        Ok(keys) => public_document(&keys.jwks()),
        Err(e) => Ok(oauth_error(&e)),
    }
}

async fn token(call: Call<'_>) -> Reply {
    let meta = call.meta();
    let answered = match form(&call) {
        Ok(f) => call.app.oauth().token(authorization(&call).as_deref(), &f, meta.ip.as_deref()).await,
        Err(e) => Err(e),
    };
    Ok(match answered {
        Ok(t) => answer(StatusCode::OK, &serde_json::to_value(&t).unwrap_or_default()),
        Err(e) => oauth_error(&e),
    })
}

async fn userinfo(call: Call<'_>) -> Reply {
    let bearer = gatehouse_http::bearer(call.req).ok().flatten();
    let meta = call.meta();
    Ok(match call.app.oauth().userinfo(bearer.as_deref(), meta.ip.as_deref()).await {
        Ok(claims) => answer(StatusCode::OK, &claims),
        Err(e) => oauth_error(&e),
    })
}

async fn introspect(call: Call<'_>) -> Reply {
    let meta = call.meta();
    let answered = match form(&call) {
        Ok(f) => call.app.oauth().introspect(authorization(&call).as_deref(), &f, meta.ip.as_deref()).await,
        Err(e) => Err(e),
    };
    Ok(match answered {
        Ok(v) => answer(StatusCode::OK, &v),
        Err(e) => oauth_error(&e),
    })
}

async fn revoke(call: Call<'_>) -> Reply {
    let meta = call.meta();
    let answered = match form(&call) {
        Ok(f) => call.app.oauth().revoke_token(authorization(&call).as_deref(), &f, meta.ip.as_deref()).await,
        Err(e) => Err(e),
    };
    Ok(match answered {
        Ok(()) => answer(StatusCode::OK, &json!({})),
        Err(e) => oauth_error(&e),
    })
}

/// RFC 7591: `POST /oauth/register` with a JSON body of client metadata.
async fn register(call: Call<'_>) -> Reply {
    let app = call.app;
    let oauth = app.oauth();
    let meta = call.meta();
    if let Err(e) = oauth.limit("register", meta.ip.as_deref()).await {
        return Ok(oauth_error(&e));
    }
    let body = Value::Object(call.body()?);
    let token = gatehouse_http::bearer(call.req).map_err(|_| ApiError::unauthenticated())?;
    Ok(match oauth.register(token.as_deref(), &body).await {
        Ok(v) => answer(StatusCode::CREATED, &v),
        Err(RegistrationError::Closed) => answer(
            StatusCode::FORBIDDEN,
            &json!({ "error": "access_denied", "error_description": "client registration is not open" }),
        ),
        Err(RegistrationError::Unauthorized) => oauth_error(&OAuthError::InvalidToken),
        Err(RegistrationError::Invalid(m)) => {
            let code = if m.contains("redirect_uris") { "invalid_redirect_uri" } else { "invalid_client_metadata" };
            answer(StatusCode::BAD_REQUEST, &json!({ "error": code, "error_description": m }))
        }
        Err(RegistrationError::OAuth(e)) => oauth_error(&e),
    })
}

/// What this function's code does to AWS (see `gatehouse_login::PERMISSIONS`).
pub const PERMISSIONS: &[(&str, &[&str])] = &[
    ("table/users", &["dynamodb:GetItem"]),
    ("table/oauth_clients", &["dynamodb:GetItem", "dynamodb:PutItem"]),
    ("table/oauth_auth_codes", &["dynamodb:UpdateItem", "dynamodb:GetItem"]),
    ("table/oauth_access_tokens", &["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"]),
    ("table/oauth_refresh_tokens", &["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"]),
    ("table/oauth_consents", &["dynamodb:DeleteItem", "dynamodb:BatchWriteItem"]),
    ("table/credentials", &["dynamodb:Query", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:BatchWriteItem"]),
    ("table/sessions", &["dynamodb:DeleteItem", "dynamodb:BatchWriteItem"]),
    ("table/personal_access_tokens", &["dynamodb:DeleteItem", "dynamodb:BatchWriteItem"]),
    ("table/cross_app_handoffs", &["dynamodb:DeleteItem"]),
    ("table/cross_app_sessions", &["dynamodb:UpdateItem"]),
    ("table/cache", iam::CACHE),
];
