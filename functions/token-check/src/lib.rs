//! The `token-check` Lambda: API Gateway's REQUEST authorizer for the routes of *other* APIs
//! (and gatehouse's own, where the template puts it). It builds no password machinery.

use aws_lambda_events::apigw::{ApiGatewayV2CustomAuthorizerSimpleResponse, ApiGatewayV2CustomAuthorizerV2Request};
use gatehouse::routes::VERIFIED;
use gatehouse::services::access::Access;
use gatehouse::services::access::Principal;
use gatehouse::services::oauth::introspection::{live_access_token, looks_like_jwt};
use gatehouse::signing::SigningKeys;
use gatehouse::tables::personal_access_tokens::Abilities;
use lambda_http::http::header;
use serde_json::{Value, json};

pub use gatehouse::routes::RouteAbilities;

/// The authorizer's refusal: API Gateway answers the client 403.
pub fn deny() -> ApiGatewayV2CustomAuthorizerSimpleResponse<Value> {
    let mut r = ApiGatewayV2CustomAuthorizerSimpleResponse::default();
    r.is_authorized = false;
    r.context = json!({});
    r
}

/// API Gateway's REQUEST authorizer (payload 2.0, simple responses): a bearer token or the session
/// cookie, read as the HTTP functions read them, one consistent read on the hot path. Expired,
/// revoked, malformed or unknown credentials, a missing ability, or a store failure (fail
/// closed) are all "not authorized"; so are, before any read, a route that is not one of the
/// API's when `GATEHOUSE_CUSTOMER_ROUTES` lists them, and a state change the session cookie
/// authenticates that the browser says comes from another site (gatehouse's own Origin /
/// `Sec-Fetch-Site` rule, [`gatehouse_http::origin_rule`]; bearer tokens are exempt). The
/// context tells the backend which credential it saw: `credential` is `session` or `token`.
pub async fn authorize(
    access: &Access,
    abilities: &RouteAbilities,
    event: ApiGatewayV2CustomAuthorizerV2Request,
) -> ApiGatewayV2CustomAuthorizerSimpleResponse<Value> {
    authorize_with(access, None, abilities, event).await
}

/// [`authorize`], accepting the OAuth provider's access tokens too when `keys` are given: a
/// bearer JWT signed by a published key, live by [`live_access_token`] (its record there, its
/// grant not revoked: a revocation shows at once, unlike API Gateway's own JWT authorizer), on a
/// route that requires at least one ability, holding every one among its scopes. Context
/// `credential`: `oauth`.
pub async fn authorize_with(
    access: &Access,
    keys: Option<&SigningKeys>,
    abilities: &RouteAbilities,
    event: ApiGatewayV2CustomAuthorizerV2Request,
) -> ApiGatewayV2CustomAuthorizerSimpleResponse<Value> {
    let Ok(bearer) = gatehouse_http::parse_bearer(event.headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()))
    else {
        return deny();
    };
    let route = event.route_key.clone().unwrap_or_default();
    if !abilities.knows(&route) {
        tracing::warn!(event = "authorizer_unknown_route", route = %route);
        return deny();
    }
    if let (Some(b), Some(keys)) = (bearer.as_deref(), keys)
        && looks_like_jwt(b)
    {
        return oauth_token(access, keys, abilities, &route, b).await;
    }
    let session = &access.config.session;
    let cookie = gatehouse_http::find_cookie(event.cookies.iter().map(String::as_str), &session.cookie_name);
    if bearer.is_none() && cookie.is_some() {
        let method = &event.request_context.http.method;
        if let Err(refused) = gatehouse_http::origin_rule(method, &event.headers, session) {
            tracing::warn!(event = "csrf_refused", sec_fetch_site = ?refused.sec_fetch_site, origin = ?refused.origin, method = %method, route = %route);
            return deny();
        }
    }
    let principal = match access.principal(bearer.as_deref(), cookie.as_deref()).await {
        Ok(Some(p)) => p,
        Ok(None) => return deny(),
        Err(e) => {
            tracing::error!(error = %e, route = %route, "authorizer could not reach the store; denying");
            return deny();
        }
    };
    let unmet = match access.unmet(abilities, &route, &principal).await {
        Ok(unmet) => unmet,
        Err(e) => {
            tracing::error!(error = %e, route = %route, "authorizer could not reach the store; denying");
            return deny();
        }
    };
    if let Some(unmet) = unmet {
        tracing::info!(event = "authorizer_requirement_unmet", route = %route, requirement = %unmet, user_id = %principal.user_id());
        return deny();
    }
    let mut context = json!({
        "user_id": principal.user_id().as_str(),
        "abilities": principal.abilities().as_slice(),
        "email_verified": principal.email_verified(),
    });
    match &principal {
        Principal::Token { token_id, .. } => {
            context["credential"] = json!("token");
            context["token_id"] = json!(token_id.as_str());
        }
        Principal::Session { key, .. } => {
            context["credential"] = json!("session");
            context["session_id"] = json!(key.as_str());
        }
    }
    let mut r = ApiGatewayV2CustomAuthorizerSimpleResponse::default();
    r.is_authorized = true;
    r.context = context;
    r
}

async fn oauth_token(
    access: &Access,
    keys: &SigningKeys,
    abilities: &RouteAbilities,
    route: &str,
    token: &str,
) -> ApiGatewayV2CustomAuthorizerSimpleResponse<Value> {
    let live = match live_access_token(&access.stores, &access.config.oauth.issuer, keys, token).await {
        Ok(Some(live)) => live,
        Ok(None) => return deny(),
        Err(e) => {
            tracing::error!(error = %e, route = %route, "authorizer could not reach the store; denying");
            return deny();
        }
    };
    let record = &live.record;
    let scopes = Abilities::new(record.scopes.clone());
    let required = abilities.for_route(route);
    // A third party's token reaches only what its consent named: a route must require an
    // ability (a scope) for one to pass. A route that requires none takes any credential of a
    // user's own, never a token a client was given for something else.
    if required.iter().all(|r| r == VERIFIED) {
        tracing::info!(event = "authorizer_oauth_route_names_no_scope", route = %route, client_id = %record.client_id);
        return deny();
    }
    for required in required {
        let met = if required == VERIFIED {
            match &record.user_id {
                Some(user) => access.verified(user, None).await.unwrap_or(false),
                None => false,
            }
        } else {
            scopes.can(required)
        };
        if !met {
            tracing::info!(event = "authorizer_requirement_unmet", route = %route, requirement = %required, client_id = %record.client_id);
            return deny();
        }
    }
    let mut r = ApiGatewayV2CustomAuthorizerSimpleResponse::default();
    r.is_authorized = true;
    // What the `before_token` hook added to the token, for the backend behind the route.
    let mut added = live.claims.clone();
    added.retain(|k, _| !gatehouse::services::hooks::RESERVED_CLAIMS.contains(&k.as_str()));
    r.context = json!({
        "credential": "oauth",
        "user_id": record.user_id.as_ref().map(|u| u.as_str()),
        "client_id": record.client_id.as_str(),
        "abilities": record.scopes,
        "token_id": record.jti,
        "claims": added,
    });
    r
}

/// What the `token-check` authorizer's code does to AWS.
pub const PERMISSIONS: &[(&str, &[&str])] = &[
    ("table/personal_access_tokens", &["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:UpdateItem"]),
    ("table/sessions", &["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:UpdateItem"]),
    // The owner, read with the credential (and on its own for a credential from before
    // presented values named their owner).
    ("table/users", &["dynamodb:BatchGetItem", "dynamodb:GetItem"]),
    // The OAuth provider's access tokens: the token's record and its grant's family.
    ("table/oauth_access_tokens", &["dynamodb:GetItem"]),
    ("table/oauth_refresh_tokens", &["dynamodb:GetItem"]),
    // The provider's public key, read once per process (the private half never leaves KMS), and
    // its keyring (rotations), read once a minute.
    ("kms/OAuthSigningKey", &["kms:GetPublicKey"]),
    ("table/oauth_signing_keys", &["dynamodb:Scan"]),
];
