//! The `token-check` Lambda: API Gateway's REQUEST authorizer for the routes of *other* APIs
//! (and gatehouse's own, where the template puts it). It builds no password machinery.

use aws_lambda_events::apigw::{ApiGatewayV2CustomAuthorizerSimpleResponse, ApiGatewayV2CustomAuthorizerV2Request};
use gatehouse::access::Access;
use gatehouse::access::Principal;
use gatehouse::personal_access_tokens::OWN_ROUTE_ABILITIES;
use lambda_http::http::header;
use serde_json::{Value, json};
use std::collections::HashMap;

/// Abilities each route requires of a token, from `GATEHOUSE_ROUTE_ABILITIES`
/// (`"POST /reports=reports:write,GET /reports=reports:read"`; a route may be listed more than once
/// to require several). gatehouse's own routes always require theirs
/// ([`OWN_ROUTE_ABILITIES`]: `POST /tokens` → `tokens:create`, …).
#[derive(Debug, Clone, Default)]
pub struct RouteAbilities(HashMap<String, Vec<String>>);

impl RouteAbilities {
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for (route, ability) in OWN_ROUTE_ABILITIES {
            map.entry((*route).into()).or_default().push((*ability).into());
        }
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (route, ability) = entry
                .rsplit_once('=')
                .ok_or_else(|| format!("GATEHOUSE_ROUTE_ABILITIES: {entry:?} is not ROUTE=ability"))?;
            let (route, ability) = (route.trim(), ability.trim());
            if route.split_once(' ').is_none() || ability.is_empty() {
                return Err(format!("GATEHOUSE_ROUTE_ABILITIES: {entry:?} is not \"METHOD /path=ability\""));
            }
            map.entry(route.to_owned()).or_default().push(ability.to_owned());
        }
        Ok(Self(map))
    }

    pub fn from_env() -> Result<Self, String> {
        Self::parse(&std::env::var("GATEHOUSE_ROUTE_ABILITIES").unwrap_or_default())
    }

    pub fn for_route(&self, route_key: &str) -> &[String] {
        self.0.get(route_key).map(Vec::as_slice).unwrap_or(&[])
    }
}

fn deny() -> ApiGatewayV2CustomAuthorizerSimpleResponse<Value> {
    let mut r = ApiGatewayV2CustomAuthorizerSimpleResponse::default();
    r.is_authorized = false;
    r.context = json!({});
    r
}

/// API Gateway's REQUEST authorizer (payload 2.0, simple responses): a bearer token or the session
/// cookie, read as the HTTP functions read them, one consistent read on the hot path. Expired,
/// revoked, malformed or unknown credentials, a missing ability, or a store failure (fail
/// closed) are all "not authorized".
pub async fn authorize(
    access: &Access,
    abilities: &RouteAbilities,
    event: ApiGatewayV2CustomAuthorizerV2Request,
) -> ApiGatewayV2CustomAuthorizerSimpleResponse<Value> {
    let Ok(bearer) = gatehouse_http::parse_bearer(event.headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()))
    else {
        return deny();
    };
    let name = &access.config.session.cookie_name;
    let cookie = gatehouse_http::find_cookie(event.cookies.iter().map(String::as_str), name);
    let route = event.route_key.clone().unwrap_or_default();
    let principal = match access.principal(bearer.as_deref(), cookie.as_deref()).await {
        Ok(Some(p)) => p,
        Ok(None) => return deny(),
        Err(e) => {
            tracing::error!(error = %e, route = %route, "authorizer could not reach the store; denying");
            return deny();
        }
    };
    if !abilities.for_route(&route).iter().all(|a| principal.can(a)) {
        tracing::info!(event = "authorizer_missing_ability", route = %route, user_id = %principal.user_id());
        return deny();
    }
    let mut context = json!({ "user_id": principal.user_id().as_str(), "abilities": principal.abilities().as_slice() });
    match &principal {
        Principal::Token { token_id, .. } => context["token_id"] = json!(token_id.as_str()),
        Principal::Session { key, .. } => context["session_id"] = json!(key.as_str()),
    }
    let mut r = ApiGatewayV2CustomAuthorizerSimpleResponse::default();
    r.is_authorized = true;
    r.context = context;
    r
}

/// What the `token-check` authorizer's code does to AWS.
pub const PERMISSIONS: &[(&str, &[&str])] = &[
    ("table/personal_access_tokens", &["dynamodb:GetItem", "dynamodb:UpdateItem"]),
    ("table/sessions", &["dynamodb:GetItem", "dynamodb:UpdateItem"]),
];
