//! The `oauth` function: the OAuth 2.1 / OpenID Connect provider's API endpoints over
//! [`gatehouse::services::oauth`]. The authorization endpoint and its consent page are hosted
//! pages (`gatehouse-pages`); everything a client calls directly is here. Its answers are
//! OAuth's own (`{"error", "error_description"}`, RFC 6749 §5.2), not the API's error JSON.

mod reply;

use gatehouse::schema::iam;
use gatehouse::services::oauth::OAuthError;
use gatehouse::services::oauth::clients::RegistrationError;
use gatehouse_http::{ApiError, App, Call, Guard, Reply, Route, route};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use reply::{answer, authorization, form, oauth_error, public_document};
use serde_json::{Value, json};

/// Serves one request through [`ROUTES`].
pub async fn handle(app: &App, req: lambda_http::Request) -> Response<Body> {
    if !app.config.oauth.enabled {
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({ "error": "temporarily_unavailable", "error_description": "the OAuth provider is not configured here (GATEHOUSE_OAUTH_ISSUER)" }),
        );
    }
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

async fn metadata(call: Call<'_>) -> Reply {
    public_document(&call.app.oauth().metadata())
}

async fn resource_metadata(call: Call<'_>) -> Reply {
    public_document(&call.app.oauth().protected_resource_metadata())
}

async fn jwks(call: Call<'_>) -> Reply {
    let oauth = call.app.oauth();
    let jwks = match oauth.keys() {
        Ok(keys) => keys.jwks().await.map_err(OAuthError::from),
        Err(e) => Err(e),
    };
    match jwks {
        Ok(doc) => public_document(&doc),
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
    // Registrations are counted as sign-ups are (10 an hour per address by default): each one is
    // an item stored for good.
    let key = format!("oauth:register:{}", gatehouse::throttle::client_key(meta.ip.as_deref()));
    let limits = [
        (key.as_str(), app.config.limits.register_per_client),
        ("oauth:register:all", app.config.oauth.registration.per_day),
    ];
    if let Err(e) = app.auth.limit_all(&limits).await {
        return Ok(oauth_error(&e.into()));
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

/// What this function's code does to AWS (see `gatehouse_login::PERMISSIONS`): the grants it
/// issues through the register (one transaction: the family, its entry, the user's version
/// checked), the codes it spends, the access-token records, the tree revocation of a replayed
/// code or a reused refresh token, the limits, and signing through the KMS key.
pub const PERMISSIONS: &[(&str, &[&str])] = &[
    // The before-token hook, when it is a Lambda function (#32).
    ("lambda/hooks", &["lambda:InvokeFunction"]),
    ("table/users", &["dynamodb:GetItem", "dynamodb:ConditionCheckItem"]),
    ("table/oauth_clients", &["dynamodb:GetItem", "dynamodb:PutItem"]),
    ("table/oauth_auth_codes", &["dynamodb:GetItem", "dynamodb:UpdateItem"]),
    ("table/oauth_access_tokens", &["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"]),
    (
        "table/oauth_refresh_tokens",
        &["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
    ),
    ("table/credentials", &["dynamodb:Query", "dynamodb:PutItem", "dynamodb:BatchWriteItem"]),
    ("table/cache", iam::CACHE),
    ("table/oauth_signing_keys", &["dynamodb:Scan"]),
    // The template's key and every key a rotation made: KMS keys tagged for this deployment.
    ("kms/tag:gatehouse:oauth-signing", &["kms:Sign", "kms:GetPublicKey"]),
];
