//! `gatehouse openapi`: the HTTP contract, generated. Paths, methods, security (from each route's
//! guard), path parameters and which request type a body has come from the functions' route
//! tables; the schemas of request and response bodies and of the error body come from the wire
//! types themselves (utoipa's `ToSchema` derives in gatehouse-http, built with its `openapi`
//! feature, which the Lambda functions leave off); the prose comes from [`docs`]. The committed
//! `openapi.json` is this output (a test fails when they differ); SAM, schemathesis and
//! `GET /openapi.json` read the file.
//!
//! The OAuth endpoints are the exception their RFCs make them: public in the route table (they
//! authenticate their caller themselves), they read their own bodies (forms, mostly) and answer
//! OAuth's errors; their [`OAuth`] words say so, and their schemas are in [`docs::SCHEMAS`] (the
//! shared crate builds those answers as JSON, not as wire types).
//!
//! The events (`gatehouse::tables::events`, #32) are in `webhooks`, one per type: their schemas
//! come from the event types (their `ToSchema` derives, behind the shared crate's `openapi`
//! feature, which gatehouse-http's turns on), each type's envelope made from the envelope's and
//! the type's own ([`events`]), and the personal fields marked `x-gatehouse-personal`.

mod docs;

use crate::serve::tables;
use gatehouse::tables::events as ev;
use gatehouse_http::requests::*;
use gatehouse_http::views::*;
use gatehouse_http::{ErrorBody, ErrorDetail, Guard, Route};
use serde_json::{Map, Value, json};
use utoipa::OpenApi;

/// The words for one route.
pub struct Op {
    /// `POST /tokens`, as the route table states it.
    pub key: &'static str,
    pub id: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    pub description: Option<&'static str>,
    /// The success answers (usually one).
    pub ok: &'static [Response],
    /// Every other status this route answers, with what it means here.
    pub errors: &'static [(u16, &'static str)],
    pub query: &'static [Param],
    /// An OAuth endpoint's own ways; `None` for the API's routes.
    pub oauth: Option<OAuth>,
}

/// How an OAuth endpoint differs from an API route. Its errors are `OAuthError`, with
/// `WWW-Authenticate` on 401, but for what the shared HTTP layer answers before the endpoint
/// runs, which is the API's `Error`: 405, and 413/415/422 of a JSON body (read as the API reads
/// one); a 503 may be either (the endpoint's `temporarily_unavailable`, or the API's
/// `unavailable` past the Lambda's deadline).
pub struct OAuth {
    /// The operation's `security`: each an alternative, a scheme of `components.securitySchemes`
    /// or `None` for no credential at all (`{}`). The route's guard is public either way.
    pub security: &'static [Option<&'static str>],
    /// The request body the endpoint reads itself, if any.
    pub body: Option<Body>,
    /// Statuses at which the shared HTTP layer may answer the API's `Error` instead (`oneOf`).
    pub api_errors_too: &'static [u16],
}

impl OAuth {
    /// Whether the body is JSON, read as the API reads one (so its 413, 415 and 422 are the API's).
    fn json_body(&self) -> bool {
        self.body.as_ref().is_some_and(|b| b.media_type == "application/json")
    }
}

/// A request body an OAuth endpoint reads itself (always required).
pub struct Body {
    /// `application/x-www-form-urlencoded` or `application/json`.
    pub media_type: &'static str,
    /// A schema of [`docs::SCHEMAS`].
    pub schema: &'static str,
}

/// The media type of OAuth's form bodies.
pub const FORM: &str = "application/x-www-form-urlencoded";

/// The success answer.
pub struct Response {
    pub status: u16,
    pub description: &'static str,
    /// A type in `gatehouse_http::views`; `None` for no body.
    pub schema: Option<&'static str>,
    /// What the `Set-Cookie` header carries, when the route sets one.
    pub set_cookie: Option<&'static str>,
}

/// A query parameter (its JSON schema as text).
pub struct Param {
    pub name: &'static str,
    pub schema: &'static str,
    pub description: Option<&'static str>,
}

/// Every wire type with a schema: request bodies, views, the error body.
#[derive(OpenApi)]
#[openapi(components(schemas(
    RegisterRequest,
    LoginRequest,
    PasswordRequest,
    CreateTokenRequest,
    IssueTokenRequest,
    HandoffRequest,
    ExchangeRequest,
    ForgotPasswordRequest,
    ResetPasswordRequest,
    ProfileRequest,
    UpdatePasswordRequest,
    EmailChangeRequest,
    CodeRequest,
    TwoFactorChallengeRequest,
    PasskeyRegistrationRequest,
    PasskeyLoginRequest,
    FederationStartRequest,
    FederationCallbackRequest,
    EmailLinkRequest,
    EmailLinkCompleteRequest,
    PasskeyOptionsView,
    PasskeyView,
    PasskeysView,
    AuthorizedAppView,
    AuthorizedAppsView,
    ProviderView,
    ProvidersView,
    FederationStartView,
    IdentityView,
    IdentitiesView,
    LinkedView,
    TwoFactorChallengeView,
    EnrolmentView,
    RecoveryCodesView,
    UserView,
    UserBody,
    SessionView,
    SessionsBody,
    ConfirmedView,
    TokenView,
    TokenPage,
    NewTokenView,
    HandoffView,
    ExchangeView,
    MessageView,
    VerificationView,
    CrossAppSessionView,
    CrossAppPage,
    ErrorBody,
    ErrorDetail,
)))]
struct WireTypes;

/// The event types (#32, `gatehouse::tables::events`): the envelope, its type and data, and the
/// data of every type. Each type's envelope and webhook are made from these in [`events`].
#[derive(OpenApi)]
#[openapi(components(schemas(
    ev::Event,
    ev::EventBody,
    ev::EventType,
    ev::Client,
    ev::Revoked,
    ev::Actor,
    ev::RegistrationMethod,
    ev::SessionMethod,
    ev::SessionEndReason,
    ev::TokenRevokeReason,
    ev::TwoFactorBy,
    ev::UserRegistered,
    ev::UserVerified,
    ev::UserEmailChanged,
    ev::UserProfileUpdated,
    ev::UserPasswordChanged,
    ev::UserPasswordReset,
    ev::UserSignedOut,
    ev::UserDisabled,
    ev::UserEnabled,
    ev::UserDeleted,
    ev::SessionCreated,
    ev::SessionEnded,
    ev::TokenCreated,
    ev::TokenRevoked,
    ev::TwoFactorEnabled,
    ev::TwoFactorDisabled,
    ev::PasskeyAdded,
    ev::PasskeyRemoved,
    ev::IdentityLinked,
    ev::IdentityUnlinked,
    ev::OAuthConsentGranted,
    ev::OAuthConsentRevoked,
    ev::WebhookTest,
    ev::WebhookTestData,
)))]
struct EventTypes;

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn json_content(schema: Value) -> Value {
    json!({ "application/json": { "schema": schema } })
}

fn security(guard: &Guard) -> Value {
    match guard {
        Guard::Public => json!([]),
        Guard::Session => json!([{ "cookieAuth": [] }]),
        Guard::Credential(_) => json!([{ "bearerAuth": [] }, { "cookieAuth": [] }]),
    }
}

/// The error body of `status` for `op`.
fn error_schema(op: &Op, status: u16) -> Value {
    let Some(oauth) = &op.oauth else { return schema_ref("Error") };
    if status == 405 || (oauth.json_body() && matches!(status, 413 | 415 | 422)) {
        schema_ref("Error")
    } else if status == 503 || oauth.api_errors_too.contains(&status) {
        json!({ "oneOf": [schema_ref("OAuthError"), schema_ref("Error")] })
    } else {
        schema_ref("OAuthError")
    }
}

fn operation(route: &Route, op: &Op) -> Result<Value, DocError> {
    let mut o = Map::new();
    o.insert("operationId".into(), json!(op.id));
    o.insert("tags".into(), json!([op.tag]));
    o.insert("summary".into(), json!(op.summary));
    if let Some(d) = op.description {
        o.insert("description".into(), json!(d));
    }
    let security = match &op.oauth {
        Some(oauth) => {
            let alternatives = oauth.security.iter().map(|s| match s {
                Some(scheme) => json!({ *scheme: [] }),
                None => json!({}),
            });
            Value::Array(alternatives.collect())
        }
        None => security(&route.guard),
    };
    o.insert("security".into(), security);
    if let Guard::Credential(abilities) = route.guard
        && !abilities.is_empty()
    {
        o.insert("x-gatehouse-abilities".into(), json!(abilities));
    }
    let mut params: Vec<Value> = route
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
        .collect();
    for q in op.query {
        let schema: Value = serde_json::from_str(q.schema)?;
        let mut p = json!({ "name": q.name, "in": "query", "schema": schema });
        if let Some(d) = q.description {
            p["description"] = json!(d);
        }
        params.push(p);
    }
    if !params.is_empty() {
        o.insert("parameters".into(), Value::Array(params));
    }
    if let Some(body) = route.body {
        o.insert("requestBody".into(), json!({ "required": true, "content": json_content(schema_ref(body)) }));
    } else if let Some(body) = op.oauth.as_ref().and_then(|o| o.body.as_ref()) {
        let content = json!({ body.media_type: { "schema": schema_ref(body.schema) } });
        o.insert("requestBody".into(), json!({ "required": true, "content": content }));
    }
    let mut responses = Map::new();
    for success in op.ok {
        let mut ok = json!({ "description": success.description });
        if let Some(schema) = success.schema {
            ok["content"] = json_content(schema_ref(schema));
        }
        if let Some(cookie) = success.set_cookie {
            ok["headers"] = json!({ "Set-Cookie": { "description": cookie, "schema": { "type": "string" } } });
        }
        responses.insert(success.status.to_string(), ok);
    }
    for (status, description) in with_standard_errors(route, op) {
        let description = match (status, route.guard) {
            // Any guarded route may be configured to require a verified address.
            (403, Guard::Session | Guard::Credential(_)) => format!("{description} {UNVERIFIED}"),
            _ => description.to_owned(),
        };
        let mut r = json!({ "description": description, "content": json_content(error_schema(op, status)) });
        match status {
            401 if op.oauth.is_some() => {
                r["headers"] = json!({ "WWW-Authenticate": { "description": docs::WWW_AUTHENTICATE, "schema": { "type": "string" } } })
            }
            405 => r["headers"] = json!({ "Allow": { "schema": { "type": "string" } } }),
            429 => {
                r["headers"] = json!({ "Retry-After": {
                    "description": "Seconds until another attempt is allowed.", "schema": { "type": "integer" } } })
            }
            _ => {}
        }
        responses.insert(status.to_string(), r);
    }
    o.insert("responses".into(), Value::Object(responses));
    Ok(Value::Object(o))
}

/// What every guarded route's 403 may also be.
const UNVERIFIED: &str = "Code `email_unverified` where GATEHOUSE_ROUTE_ABILITIES requires `verified` of this route and the user has not verified the address (the flag the credential carries).";

/// The answers every route of its kind gives, unless its words say more: 405 and 503 always;
/// 401 and 403 behind a guard; 413, 415 and 422 with a JSON body.
fn with_standard_errors(route: &Route, op: &Op) -> Vec<(u16, &'static str)> {
    let mut all = op.errors.to_vec();
    let unavailable = match op.oauth {
        Some(_) => docs::OAUTH_UNAVAILABLE,
        None => "A backing store is unavailable; safe to retry.",
    };
    let mut standard =
        vec![(405, "Method not allowed on this route; `Allow` lists the methods that are."), (503, unavailable)];
    match route.guard {
        Guard::Public => {}
        Guard::Session => standard.extend([(401, "No valid session cookie."), (403, "Refused.")]),
        Guard::Credential(_) => standard.extend([
            (401, "No valid session cookie or bearer token."),
            (403, "The token lacks an ability the route requires (code `forbidden`)."),
        ]),
    }
    if route.body.is_some() || op.oauth.as_ref().is_some_and(OAuth::json_body) {
        standard.extend([(413, "Body over 64 KiB."), (415, "Body is not JSON."), (422, "Validation failed.")]);
    }
    for (status, description) in standard {
        if !all.iter().any(|(s, _)| *s == status) {
            all.push((status, description));
        }
    }
    all
}

/// Why the document cannot be generated: a route without words, or words without a route.
#[derive(Debug, thiserror::Error)]
pub enum DocError {
    #[error("route {0} has no entry in cli/src/openapi/docs.rs")]
    Undocumented(String),
    #[error("cli/src/openapi/docs.rs documents {0}, which no route table serves")]
    Stale(String),
    #[error("a schema in cli/src/openapi/docs.rs or a wire type is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("event type {0} has no data schema in EventBody's (derive ToSchema and list it in EventTypes)")]
    Event(String),
}

/// The `paths` object for `tables`, with each route's words from `ops`: every route must have
/// words and every entry a route.
fn paths(tables: &[&[Route]], ops: &[Op]) -> Result<Map<String, Value>, DocError> {
    let mut paths = Map::new();
    let mut used = Vec::new();
    for route in tables.iter().flat_map(|routes| routes.iter()) {
        let key = route.key();
        let op = ops.iter().find(|o| o.key == key).ok_or_else(|| DocError::Undocumented(key.clone()))?;
        used.push(op.key);
        let item = paths.entry(route.path.to_owned()).or_insert_with(|| json!({}));
        item[route.method.to_ascii_lowercase()] = operation(route, op)?;
    }
    match ops.iter().find(|o| !used.contains(&o.key)) {
        Some(stale) => Err(DocError::Stale(stale.key.to_owned())),
        None => Ok(paths),
    }
}

/// Marks every property [`ev::PERSONAL`] names, at any depth of `schema`, `x-gatehouse-personal`.
fn mark_personal(schema: &mut Value) {
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        for (name, prop) in props {
            if ev::PERSONAL.contains(&name.as_str()) {
                prop["x-gatehouse-personal"] = json!(true);
            }
            mark_personal(prop);
        }
    }
    for key in ["oneOf", "allOf", "anyOf"] {
        for part in schema.get_mut(key).and_then(Value::as_array_mut).into_iter().flatten() {
            mark_personal(part);
        }
    }
    if let Some(items) = schema.get_mut("items") {
        mark_personal(items);
    }
}

/// What [`events`] adds to the document.
struct Events {
    /// For `components.schemas`.
    schemas: Map<String, Value>,
    /// The top-level `webhooks`.
    webhooks: Map<String, Value>,
}

/// The event types' schemas (personal fields marked), each type's envelope (`<Data>Event`: the
/// fields of [`ev::Event`] but its body, this type's `type` and `data` from [`ev::EventBody`],
/// `version` fixed at [`ev::EVENTS_VERSION`]), and the `webhooks` map, one per type.
fn events() -> Result<Events, DocError> {
    let mut schemas = serde_json::to_value(EventTypes::openapi().components)?["schemas"].take();
    if let Some(all) = schemas.as_object_mut() {
        all.values_mut().for_each(mark_personal);
    }
    let missing = |what: &str| DocError::Event(what.to_owned());
    let parts = schemas["Event"]["allOf"].as_array().cloned().unwrap_or_default();
    let common = parts.into_iter().find(|p| p.get("properties").is_some()).ok_or_else(|| missing("Event"))?;
    let bodies = schemas["EventBody"]["oneOf"].as_array().cloned().unwrap_or_default();
    let mut webhooks = Map::new();
    for kind in ev::EventType::ALL {
        let name = kind.as_str();
        let body =
            bodies.iter().find(|b| b["properties"]["type"]["enum"] == json!([name])).ok_or_else(|| missing(name))?;
        let data = body["properties"]["data"]["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/"));
        let data = data.ok_or_else(|| missing(name))?;
        let words = schemas[data]["description"].as_str().ok_or_else(|| missing(name))?.replace('\n', " ");
        let mut envelope = common.clone();
        for (key, value) in body["properties"].as_object().into_iter().flatten() {
            envelope["properties"][key] = value.clone();
        }
        envelope["properties"]["version"]["const"] = json!(ev::EVENTS_VERSION);
        let required = common["required"].as_array().into_iter().chain(body["required"].as_array()).flatten();
        envelope["required"] = Value::Array(required.cloned().collect());
        envelope["description"] = json!(format!("The `{name}` event. {words}"));
        let envelope_name = format!("{data}Event");
        schemas[&envelope_name] = envelope;
        let headers = docs::WEBHOOK_HEADERS.iter().map(|(header, description)| {
            json!({ "name": header, "in": "header", "required": true, "description": description, "schema": { "type": "string" } })
        });
        webhooks.insert(
            name.to_owned(),
            json!({ "post": {
                "operationId": format!("event.{name}"),
                "tags": ["events"],
                "summary": words,
                "description": docs::WEBHOOK_DESCRIPTION,
                "parameters": headers.collect::<Vec<_>>(),
                "requestBody": { "required": true, "content": json_content(schema_ref(&envelope_name)) },
                "responses": { "2XX": { "description": docs::WEBHOOK_RECEIVED } },
                "x-gatehouse-events-version": ev::EVENTS_VERSION,
            } }),
        );
    }
    // `gatehouse webhook:test`'s ping, signed as a delivery is: no user's event.
    let words =
        schemas["WebhookTest"]["description"].as_str().ok_or_else(|| missing("WebhookTest"))?.replace('\n', " ");
    let headers = docs::WEBHOOK_HEADERS.iter().map(|(header, description)| {
        json!({ "name": header, "in": "header", "required": true, "description": description, "schema": { "type": "string" } })
    });
    webhooks.insert(
        ev::WebhookTest::TYPE.to_owned(),
        json!({ "post": {
            "operationId": "event.webhook.test",
            "tags": ["events"],
            "summary": words,
            "description": docs::WEBHOOK_DESCRIPTION,
            "parameters": headers.collect::<Vec<_>>(),
            "requestBody": { "required": true, "content": json_content(schema_ref("WebhookTest")) },
            "responses": { "2XX": { "description": docs::WEBHOOK_RECEIVED } },
            "x-gatehouse-events-version": ev::EVENTS_VERSION,
        } }),
    );
    let Value::Object(schemas) = schemas else { return Err(missing("Event")) };
    Ok(Events { schemas, webhooks })
}

/// The OpenAPI 3.1 document.
pub fn document() -> Result<Value, DocError> {
    let tables: Vec<&[Route]> = tables().iter().map(|(routes, _)| *routes).collect();
    let mut paths = paths(&tables, docs::OPS)?;
    paths.insert(
        "/openapi.json".into(),
        json!({ "get": {
            "operationId": "openapi", "tags": ["meta"], "summary": "This document (local server only).",
            "security": [], "x-gatehouse-local-only": true,
            "responses": { "200": { "description": "The OpenAPI document.", "content": json_content(json!({ "type": "object" })) } }
        } }),
    );
    let components = serde_json::to_value(WireTypes::openapi().components)?;
    let mut schemas = components.get("schemas").cloned().unwrap_or_else(|| json!({}));
    for (name, schema) in docs::SCHEMAS {
        schemas[*name] = serde_json::from_str(schema)?;
    }
    let Events { schemas: event_schemas, webhooks } = events()?;
    for (name, schema) in event_schemas {
        schemas[name] = schema;
    }
    Ok(json!({
        "openapi": "3.1.0",
        "info": { "title": "gatehouse", "version": env!("CARGO_PKG_VERSION"), "description": docs::INFO_DESCRIPTION },
        "servers": [{ "url": "http://127.0.0.1:8080", "description": "gatehouse serve" }],
        "security": [{ "bearerAuth": [] }, { "cookieAuth": [] }],
        "paths": paths,
        "webhooks": webhooks,
        "components": {
            "securitySchemes": {
                "bearerAuth": { "type": "http", "scheme": "bearer", "description": docs::BEARER_DESCRIPTION },
                "cookieAuth": { "type": "apiKey", "in": "cookie", "name": "__Host-gatehouse_session", "description": docs::COOKIE_DESCRIPTION },
                "clientBasic": { "type": "http", "scheme": "basic", "description": docs::CLIENT_BASIC_DESCRIPTION },
                "oauthAccessToken": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": docs::OAUTH_ACCESS_TOKEN_DESCRIPTION },
                "initialAccessToken": { "type": "http", "scheme": "bearer", "description": docs::INITIAL_ACCESS_TOKEN_DESCRIPTION }
            },
            "schemas": schemas
        }
    }))
}

/// The document as committed: pretty JSON, keys sorted, a final newline.
pub fn render() -> Result<String, DocError> {
    let mut text = serde_json::to_string_pretty(&document()?)?;
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_tests::http::{TestApp, TestCall, TestReply};

    const REGENERATE: &str = "regenerate it: cargo run -p gatehouse-cli -- openapi --output openapi.json";

    /// The first place two JSON values differ, as a JSON pointer.
    fn first_difference(a: &Value, b: &Value, at: String) -> Option<String> {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let keys: std::collections::BTreeSet<_> = x.keys().chain(y.keys()).collect();
                keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) => first_difference(p, q, format!("{at}/{k}")),
                    _ => Some(format!("{at}/{k}")),
                })
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
                x.iter().zip(y).enumerate().find_map(|(i, (p, q))| first_difference(p, q, format!("{at}/{i}")))
            }
            _ => (a != b).then_some(at),
        }
    }

    #[test]
    fn the_committed_openapi_json_is_the_generated_one() {
        let generated = document().expect("every route documented");
        let committed: Value = serde_json::from_str(crate::serve::OPENAPI).expect("openapi.json is JSON");
        if let Some(at) = first_difference(&committed, &generated, String::new()) {
            panic!("openapi.json differs from the generated document at {at}; {REGENERATE}");
        }
        assert_eq!(
            crate::serve::OPENAPI,
            render().unwrap(),
            "openapi.json is not formatted as generated; {REGENERATE}"
        );
    }

    #[test]
    fn every_body_schema_and_success_schema_named_by_a_route_exists() {
        let doc = document().unwrap();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for (routes, _) in tables() {
            for r in routes.iter().filter_map(|r| r.body) {
                assert!(schemas.contains_key(r), "request type {r} has no schema: add it to WireTypes");
            }
        }
        for op in docs::OPS {
            for s in op.ok.iter().filter_map(|r| r.schema) {
                assert!(schemas.contains_key(s), "{} answers {s}, which has no schema", op.key);
            }
        }
        assert!(schemas.contains_key("Error"));
        for op in docs::OPS {
            let Some(oauth) = &op.oauth else { continue };
            for s in oauth.body.iter().map(|b| b.schema) {
                assert!(schemas.contains_key(s), "{} takes {s}, which has no schema", op.key);
            }
            for scheme in oauth.security.iter().flatten() {
                assert!(doc["components"]["securitySchemes"].get(scheme).is_some(), "{}: no scheme {scheme}", op.key);
            }
        }
        let wire = serde_json::to_value(WireTypes::openapi().components).unwrap();
        for (name, _) in docs::SCHEMAS {
            assert!(wire["schemas"].get(name).is_none(), "{name} is a wire type's name already");
        }
    }

    async fn nothing(_: gatehouse_http::Call<'_>) -> gatehouse_http::Reply {
        Ok(gatehouse_http::no_content())
    }

    static EXTRA: &[Route] = &[gatehouse_http::route!(POST "/nowhere", Guard::Public, nothing)];

    const WORDS: Op = Op {
        key: "POST /nowhere",
        id: "nowhere",
        tag: "meta",
        summary: "A route for the generator's tests.",
        description: None,
        ok: &[Response { status: 204, description: "Done.", schema: None, set_cookie: None }],
        errors: &[],
        query: &[],
        oauth: None,
    };

    #[test]
    fn a_route_without_words_or_words_without_a_route_fail_the_generator() {
        assert!(matches!(paths(&[EXTRA], &[]), Err(DocError::Undocumented(k)) if k == "POST /nowhere"));
        assert!(matches!(paths(&[], &[WORDS]), Err(DocError::Stale(k)) if k == "POST /nowhere"));
        let bad_query = Op { query: &[Param { name: "n", schema: "{not json", description: None }], ..WORDS };
        assert!(matches!(paths(&[EXTRA], &[bad_query]), Err(DocError::Json(_))));
        let ok = paths(&[EXTRA], &[WORDS]).unwrap();
        assert_eq!(ok["/nowhere"]["post"]["security"], json!([]));
        assert_eq!(ok["/nowhere"]["post"]["responses"]["405"]["headers"]["Allow"]["schema"]["type"], "string");
    }

    #[test]
    fn an_oauth_endpoint_has_its_own_security_body_and_errors() {
        let oauth = Op {
            errors: &[(400, "Bad."), (401, "Who?")],
            oauth: Some(OAuth {
                security: &[Some("clientBasic"), None],
                body: Some(Body { media_type: FORM, schema: "OAuthTokenReference" }),
                api_errors_too: &[],
            }),
            ..WORDS
        };
        let op = &paths(&[EXTRA], &[oauth]).unwrap()["/nowhere"]["post"];
        assert_eq!(op["security"], json!([{ "clientBasic": [] }, {}]));
        assert_eq!(op["requestBody"]["content"][FORM]["schema"], schema_ref("OAuthTokenReference"));
        let schema = |status: &str| op["responses"][status]["content"]["application/json"]["schema"].clone();
        assert_eq!(schema("400"), schema_ref("OAuthError"));
        assert_eq!(schema("401"), schema_ref("OAuthError"));
        assert!(op["responses"]["401"]["headers"]["WWW-Authenticate"].is_object());
        assert_eq!(schema("405"), schema_ref("Error"), "the dispatcher answers 405");
        assert_eq!(schema("503"), json!({ "oneOf": [schema_ref("OAuthError"), schema_ref("Error")] }));
        assert!(op["responses"].get("415").is_none(), "a form is the endpoint's to read");

        let json_body = Op {
            errors: &[(401, "Who?")],
            oauth: Some(OAuth {
                security: &[],
                body: Some(Body { media_type: "application/json", schema: "OAuthClientMetadata" }),
                api_errors_too: &[401],
            }),
            ..WORDS
        };
        let op = &paths(&[EXTRA], &[json_body]).unwrap()["/nowhere"]["post"];
        let schema = |status: &str| op["responses"][status]["content"]["application/json"]["schema"].clone();
        assert_eq!(schema("415"), schema_ref("Error"), "a JSON body is read as the API reads one");
        assert_eq!(schema("401"), json!({ "oneOf": [schema_ref("OAuthError"), schema_ref("Error")] }));
        assert_eq!(op["security"], json!([]));
    }

    /// Whether `value` fits `schema` as far as the document's schemas go (`$ref`, `oneOf`,
    /// `const`, `enum`, types, `required`, `items`, `maxProperties`), objects with `properties`
    /// taken as closed: every member an answer carries must be documented.
    fn fits(doc: &Value, schema: &Value, value: &Value) -> bool {
        if let Some(r) = schema["$ref"].as_str() {
            let name = r.trim_start_matches("#/components/schemas/");
            return fits(doc, &doc["components"]["schemas"][name], value);
        }
        if let Some(alternatives) = schema["oneOf"].as_array() {
            return alternatives.iter().filter(|s| fits(doc, s, value)).count() == 1;
        }
        let types: Vec<&str> = match &schema["type"] {
            Value::String(t) => vec![t.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let typed = types.is_empty()
            || types.iter().any(|t| match (*t, value) {
                ("integer", Value::Number(n)) => n.is_i64() || n.is_u64(),
                ("number", Value::Number(_))
                | ("object", Value::Object(_))
                | ("array", Value::Array(_))
                | ("string", Value::String(_))
                | ("boolean", Value::Bool(_))
                | ("null", Value::Null) => true,
                _ => false,
            });
        let constant = schema.get("const").is_none_or(|c| c == value);
        let listed = schema["enum"].as_array().is_none_or(|e| e.contains(value));
        let members = match (value, schema["properties"].as_object()) {
            (Value::Object(m), Some(props)) => {
                let mut required = schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str);
                required.all(|r| m.contains_key(r))
                    && m.iter().all(|(k, v)| props.get(k).is_some_and(|s| fits(doc, s, v)))
            }
            (Value::Object(m), None) => schema["maxProperties"].as_u64().is_none_or(|max| m.len() as u64 <= max),
            _ => true,
        };
        let items = match (value, schema.get("items")) {
            (Value::Array(a), Some(s)) => a.iter().all(|i| fits(doc, s, i)),
            _ => true,
        };
        typed && constant && listed && members && items
    }

    /// The OAuth function's answer to `call`, checked against the document: its status is one
    /// the operation lists, and its body fits that response's schema.
    async fn oauth_answer(app: &gatehouse_http::App, doc: &Value, call: TestCall) -> TestReply {
        let reply = TestReply::from(gatehouse_oauth::handle(app, call.request()).await);
        let (method, path) = (call.method.to_ascii_lowercase(), call.path.as_str());
        let response = &doc["paths"][path][&method]["responses"][reply.status.to_string()];
        assert!(response.is_object(), "{method} {path} answered {}, which the document does not list", reply.status);
        let schema = &response["content"]["application/json"]["schema"];
        assert!(
            fits(doc, schema, &reply.body),
            "{method} {path} answered {} {}, which does not fit {schema}",
            reply.status,
            reply.body
        );
        if response["headers"].get("WWW-Authenticate").is_some() && reply.body["error"].is_string() {
            assert!(
                reply.header("www-authenticate").is_some(),
                "{method} {path}: {} without WWW-Authenticate",
                reply.status
            );
        }
        reply
    }

    /// The OAuth endpoints' answers are built as JSON in the shared crate, not from wire types:
    /// these calls check that every answer, success or error, fits what the document says.
    #[tokio::test]
    async fn the_oauth_endpoints_answer_as_the_document_says() {
        use gatehouse::services::oauth::clients::ClientRegistration;
        use gatehouse::tables::oauth_clients::GrantType;
        let overrides =
            [("GATEHOUSE_OAUTH_REGISTRATION_TOKEN", "initial-token"), ("GATEHOUSE_OAUTH_OPEN_REGISTRATION", "true")];
        let keys = gatehouse::signing::SigningKeys::local(gatehouse::values::jwt::LocalKey::generate());
        let app = TestApp::memory(&overrides).app.with_signing_keys(keys);
        let doc = document().unwrap();
        let form = |path: &str, body: &str| TestCall::new("POST", path).header("content-type", FORM).raw(body);

        for path in [
            "/.well-known/openid-configuration",
            "/.well-known/oauth-authorization-server",
            "/.well-known/oauth-protected-resource",
            "/.well-known/jwks.json",
        ] {
            assert_eq!(oauth_answer(&app, &doc, TestCall::new("GET", path)).await.status, 200, "{path}");
        }
        let metadata = oauth_answer(&app, &doc, TestCall::new("GET", "/.well-known/openid-configuration")).await;
        assert!(metadata.body["registration_endpoint"].is_string());

        let registration = ClientRegistration {
            name: "Reports".into(),
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            grant_types: vec![GrantType::ClientCredentials],
            scopes: vec!["reports:read".into()],
            confidential: true,
            first_party: false,
        };
        let (client, secret) = app.oauth().create_client(registration).await.unwrap();
        let secret = secret.unwrap();
        let credentials = format!("client_id={}&client_secret={}", client.id, secret.expose());
        let token =
            oauth_answer(&app, &doc, form("/oauth/token", &format!("grant_type=client_credentials&{credentials}")))
                .await;
        assert_eq!(token.status, 200, "{}", token.body);
        let access = token.body["access_token"].as_str().unwrap().to_owned();
        let introspect = |token: &str| form("/oauth/introspect", &format!("token={token}&{credentials}"));
        let active = oauth_answer(&app, &doc, introspect(&access)).await;
        assert_eq!(active.body["active"], true);
        let userinfo = TestCall::new("GET", "/oauth/userinfo").bearer(&access);
        assert_eq!(oauth_answer(&app, &doc, userinfo).await.status, 403, "a client's own token has no user");
        let revoke = form("/oauth/revoke", &format!("token={access}&{credentials}"));
        assert_eq!(oauth_answer(&app, &doc, revoke).await.body, json!({}));
        assert_eq!(oauth_answer(&app, &doc, introspect(&access)).await.body, json!({ "active": false }));
        for call in [
            TestCall::new("POST", "/oauth/userinfo").bearer(&access),
            TestCall::new("GET", "/oauth/userinfo"),
            form("/oauth/token", &format!("grant_type=client_credentials&client_id={}&client_secret=wrong", client.id)),
            form("/oauth/token", "grant_type=client_credentials").header("authorization", "Basic !"),
        ] {
            assert_eq!(oauth_answer(&app, &doc, call).await.status, 401);
        }
        for call in [
            form("/oauth/token", "grant_type=password"),
            form("/oauth/token", "grant_type=client_credentials&grant_type=refresh_token"),
            form("/oauth/introspect", &credentials),
            TestCall::new("POST", "/oauth/token").json(json!({ "grant_type": "client_credentials" })),
        ] {
            assert_eq!(oauth_answer(&app, &doc, call).await.status, 400);
        }
        let wrong_method =
            TestReply::from(gatehouse_oauth::handle(&app, TestCall::new("DELETE", "/oauth/token").request()).await);
        assert_eq!((wrong_method.status, wrong_method.header("allow")), (405, Some("POST")));
        assert!(fits(
            &doc,
            &doc["paths"]["/oauth/token"]["post"]["responses"]["405"]["content"]["application/json"]["schema"],
            &wrong_method.body
        ));

        let register = |body: Value| TestCall::new("POST", "/oauth/register").json(body);
        let public = json!({ "client_name": "An MCP client", "redirect_uris": ["http://127.0.0.1:3000/cb"], "token_endpoint_auth_method": "none" });
        assert_eq!(oauth_answer(&app, &doc, register(public.clone())).await.status, 201);
        let confidential = json!({ "redirect_uris": ["https://app.example/cb"], "grant_types": ["authorization_code", "refresh_token"] });
        let made = oauth_answer(&app, &doc, register(confidential.clone()).bearer("initial-token")).await;
        assert_eq!((made.status, made.body["client_secret_expires_at"].as_i64()), (201, Some(0)));
        assert_eq!(oauth_answer(&app, &doc, register(confidential.clone())).await.status, 400);
        assert_eq!(
            oauth_answer(
                &app,
                &doc,
                register(json!({ "redirect_uris": ["http://app.example/cb"] })).bearer("initial-token")
            )
            .await
            .body["error"],
            "invalid_redirect_uri"
        );
        assert_eq!(oauth_answer(&app, &doc, register(public.clone()).bearer("wrong")).await.status, 401);
        let empty_bearer = register(public).header("authorization", "Bearer ");
        assert_eq!(oauth_answer(&app, &doc, empty_bearer).await.status, 401);
        let not_json = TestCall::new("POST", "/oauth/register").header("content-type", "text/plain").raw("{}");
        assert_eq!(oauth_answer(&app, &doc, not_json).await.status, 415);
        let closed = TestApp::memory(&[]).app;
        let refused = TestReply::from(gatehouse_oauth::handle(&closed, register(json!({})).request()).await);
        assert_eq!(refused.status, 403);
        assert!(fits(&doc, &schema_ref("OAuthError"), &refused.body));
    }

    /// The fields a handler reports missing for an empty body are exactly the ones its request
    /// type marks required: the document and the parser cannot drift apart.
    #[tokio::test]
    async fn handlers_require_exactly_the_fields_their_request_types_mark_required() {
        let app = TestApp::memory(&[]);
        let cookie = app.signed_up("schema@example.com").await;
        let doc = document().unwrap();
        let mut checked = 0;
        for (routes, _) in tables() {
            for route in routes {
                let Some(body) = route.body else { continue };
                let mut required: Vec<String> = doc["components"]["schemas"][body]["required"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                    .unwrap_or_default();
                required.sort();
                // Nothing required (`remember` alone): an empty body is a whole request.
                if required.is_empty() {
                    continue;
                }
                let path = route.path.replace("{id}", "x").replace("{provider}", "x");
                let call = TestCall::new(route.method, &path).json(json!({})).cookie(Some(&cookie));
                let reply = TestReply::from(gatehouse_http::dispatch(&app.app, routes, call.request()).await);
                assert_eq!(reply.status, 422, "{}: {:?}", route.key(), reply.body);
                let mut missing: Vec<String> =
                    reply.body["error"]["fields"].as_object().map(|f| f.keys().cloned().collect()).unwrap_or_default();
                missing.sort();
                assert_eq!(
                    missing,
                    required,
                    "{}: the handler requires {missing:?}, {body} documents {required:?}",
                    route.key()
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 20);
    }

    /// Every event schema: those the webhooks' bodies reach, and [`ev::Event`]'s.
    fn event_schemas(doc: &Value) -> std::collections::BTreeMap<String, Value> {
        fn refs(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                        out.push(r.trim_start_matches("#/components/schemas/").to_owned());
                    }
                    m.values().for_each(|v| refs(v, out));
                }
                Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let mut todo = vec!["Event".to_owned()];
        refs(&doc["webhooks"], &mut todo);
        let mut found = std::collections::BTreeMap::new();
        while let Some(name) = todo.pop() {
            if found.contains_key(&name) {
                continue;
            }
            let schema = doc["components"]["schemas"][&name].clone();
            assert!(schema.is_object(), "{name} is referenced but has no schema");
            refs(&schema, &mut todo);
            found.insert(name, schema);
        }
        found
    }

    /// Every property of `schema`, at any depth, as `(path, name, its schema)`.
    fn properties<'v>(at: &str, schema: &'v Value, out: &mut Vec<(String, &'v str, &'v Value)>) {
        for (name, prop) in schema["properties"].as_object().into_iter().flatten() {
            out.push((format!("{at}.{name}"), name, prop));
            properties(&format!("{at}.{name}"), prop, out);
        }
        for key in ["oneOf", "allOf", "anyOf"] {
            for part in schema[key].as_array().into_iter().flatten() {
                properties(at, part, out);
            }
        }
        if let Some(items) = schema.get("items") {
            properties(&format!("{at}[]"), items, out);
        }
    }

    /// What no event's property may be named after (but `token_id`, a token's public id).
    const DENIED: &[&str] = &["password", "secret", "hash", "code", "cookie", "mark", "link", "token"];

    /// The properties of `schemas` whose names hold a word of [`DENIED`].
    fn denied(schemas: &std::collections::BTreeMap<String, Value>) -> Vec<String> {
        let mut all = Vec::new();
        for (name, schema) in schemas {
            properties(name, schema, &mut all);
        }
        all.into_iter()
            .filter(|(_, name, _)| *name != "token_id" && DENIED.iter().any(|d| name.to_lowercase().contains(d)))
            .map(|(path, ..)| path)
            .collect()
    }

    #[test]
    fn the_deny_list_catches_a_secret_at_any_depth_and_spares_token_id() {
        let schemas = [(
            "Made".to_owned(),
            json!({ "type": "object", "properties": {
                "token_id": { "type": "string" },
                "nested": { "oneOf": [{ "type": "null" }, { "type": "object", "properties": { "reset_code": {} } }] },
                "list": { "type": "array", "items": { "type": "object", "properties": { "RefreshToken": {} } } },
                "name": { "type": "string" },
            } }),
        )]
        .into_iter()
        .collect();
        assert_eq!(denied(&schemas), vec!["Made.list[].RefreshToken", "Made.nested.reset_code"]);
    }

    #[test]
    fn no_event_schema_has_a_property_named_for_a_secret() {
        let doc = document().unwrap();
        let schemas = event_schemas(&doc);
        assert!(schemas.len() > 2 * ev::EventType::ALL.len(), "{:?}", schemas.keys());
        assert_eq!(denied(&schemas), Vec::<String>::new());
    }

    /// Addresses only in `email` and `previous_email`, IPs and user agents only in `client`, each
    /// marked; no address (`format: email`) or client under another name.
    #[test]
    fn personal_data_is_only_in_the_fields_that_say_so() {
        let doc = document().unwrap();
        let mut all = Vec::new();
        let schemas = event_schemas(&doc);
        for (name, schema) in &schemas {
            properties(name, schema, &mut all);
        }
        let mut marked = 0;
        for (path, name, prop) in all {
            let personal = prop["x-gatehouse-personal"] == json!(true);
            if ["email", "previous_email", "name", "client"].contains(&name) {
                assert!(personal, "{path} holds personal data but is not marked x-gatehouse-personal");
                marked += 1;
            }
            if prop["format"] == "email" {
                assert!(["email", "previous_email"].contains(&name), "{path} holds an address");
            }
            if prop["$ref"].as_str().is_some_and(|r| r.ends_with("/EventClient")) {
                assert_eq!(name, "client", "{path} holds where a request came from");
            }
            assert!(personal == ev::PERSONAL.contains(&name), "{path}: marked {personal}");
        }
        assert!(marked >= 5, "user.registered, user.verified, user.email_changed (2), session.created");
        assert!(schemas.keys().all(|n| !n.contains('.')), "schema names are plain");
    }

    /// A sample of each type, with every optional field (`full`) or none.
    fn sample(kind: ev::EventType, full: bool) -> ev::EventBody {
        use ev::EventBody as B;
        use ev::EventType as T;
        let email = |s: &str| gatehouse::Email::parse(s).unwrap();
        let client =
            full.then(|| ev::Client { ip: Some("203.0.113.7".into()), user_agent: Some("Mozilla/5.0".into()) });
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-23T13:15:00.123Z").unwrap().to_utc();
        let revoked = if full { ev::Revoked::AllButOne } else { ev::Revoked::All };
        match kind {
            T::UserRegistered => B::UserRegistered(ev::UserRegistered {
                email: Some(email("ann@example.com")),
                name: Some("Ann".into()),
                email_verified: full,
                method: if full { ev::RegistrationMethod::Provider } else { ev::RegistrationMethod::Password },
                provider: full.then(|| "google".into()),
                client,
            }),
            T::UserVerified => B::UserVerified(ev::UserVerified { email: Some(email("ann@example.com")) }),
            T::UserEmailChanged => B::UserEmailChanged(ev::UserEmailChanged {
                email: Some(email("ann@example.org")),
                previous_email: Some(email("ann@example.com")),
            }),
            T::UserProfileUpdated => B::UserProfileUpdated(ev::UserProfileUpdated { name: Some("Ann B.".into()) }),
            T::UserPasswordChanged => B::UserPasswordChanged(ev::UserPasswordChanged { revoked }),
            T::UserPasswordReset => B::UserPasswordReset(ev::UserPasswordReset { revoked: ev::Revoked::All }),
            T::UserSignedOut => B::UserSignedOut(ev::UserSignedOut {
                revoked,
                by: if full { ev::Actor::User } else { ev::Actor::Operator },
            }),
            T::UserDisabled => B::UserDisabled(ev::UserDisabled { revoked: ev::Revoked::All }),
            T::UserEnabled => B::UserEnabled(ev::UserEnabled {}),
            T::UserDeleted => B::UserDeleted(ev::UserDeleted { revoked: ev::Revoked::All }),
            T::SessionCreated => B::SessionCreated(ev::SessionCreated {
                session: "c2Vzc2lvbi1oYW5kbGU".into(),
                new_device: full,
                method: if full { ev::SessionMethod::Passkey } else { ev::SessionMethod::CrossApp },
                remember: full,
                expires_at: at,
                client,
            }),
            T::SessionEnded => B::SessionEnded(ev::SessionEnded {
                session: "c2Vzc2lvbi1oYW5kbGU".into(),
                reason: if full { ev::SessionEndReason::RevokedByUser } else { ev::SessionEndReason::Logout },
            }),
            T::TokenCreated => B::TokenCreated(ev::TokenCreated {
                token_id: "019a6b5e-0000-7000-8000-000000000001".into(),
                name: Some("deploy".into()),
                abilities: if full { vec!["read".into(), "write".into()] } else { vec![] },
                expires_at: full.then_some(at),
            }),
            T::TokenRevoked => B::TokenRevoked(ev::TokenRevoked {
                token_id: "019a6b5e-0000-7000-8000-000000000001".into(),
                reason: ev::TokenRevokeReason::RevokedByUser,
            }),
            T::TwoFactorEnabled => B::TwoFactorEnabled(ev::TwoFactorEnabled { by: ev::TwoFactorBy::User }),
            T::TwoFactorDisabled => B::TwoFactorDisabled(ev::TwoFactorDisabled {
                by: if full { ev::TwoFactorBy::Reset } else { ev::TwoFactorBy::Operator },
            }),
            T::PasskeyAdded => {
                B::PasskeyAdded(ev::PasskeyAdded { passkey_id: "AQIDBA".into(), name: Some("Laptop".into()) })
            }
            T::PasskeyRemoved => {
                B::PasskeyRemoved(ev::PasskeyRemoved { passkey_id: "AQIDBA".into(), name: Some("Laptop".into()) })
            }
            T::IdentityLinked => B::IdentityLinked(ev::IdentityLinked { provider: "github".into() }),
            T::IdentityUnlinked => B::IdentityUnlinked(ev::IdentityUnlinked { provider: "github".into() }),
            T::OAuthConsentGranted => B::OAuthConsentGranted(ev::OAuthConsentGranted {
                client_id: "reports".into(),
                scopes: vec!["openid".into(), "email".into()],
            }),
            T::OAuthConsentRevoked => {
                B::OAuthConsentRevoked(ev::OAuthConsentRevoked { client_id: "reports".into(), scopes: vec![] })
            }
        }
    }

    /// `EventType::ALL` is every type the enum has (its schema, from the derive, lists them all),
    /// every body's, and every webhook's, each once.
    #[test]
    fn every_event_type_is_listed_once_with_its_body_and_its_webhook() {
        let doc = document().unwrap();
        let all: Vec<&str> = ev::EventType::ALL.iter().map(|t| t.as_str()).collect();
        let unique: std::collections::BTreeSet<&str> = all.iter().copied().collect();
        assert_eq!(unique.len(), all.len(), "a type listed twice: {all:?}");
        let schemas = &doc["components"]["schemas"];
        let derived: std::collections::BTreeSet<&str> =
            schemas["EventType"]["enum"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        assert_eq!(derived, unique, "EventType::ALL vs the enum's variants");
        let bodies: std::collections::BTreeSet<&str> = schemas["EventBody"]["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|b| b["properties"]["type"]["enum"][0].as_str())
            .collect();
        assert_eq!(bodies, unique, "EventType::ALL vs EventBody's variants");
        let mut hooks: std::collections::BTreeSet<&str> =
            doc["webhooks"].as_object().unwrap().keys().map(String::as_str).collect();
        assert!(hooks.remove(ev::WebhookTest::TYPE), "webhook:test's ping is documented");
        assert_eq!(hooks, unique, "EventType::ALL (and the ping) vs the webhooks");
        for kind in ev::EventType::ALL {
            assert_eq!(sample(kind, true).kind(), kind);
            let post = &doc["webhooks"][kind.as_str()]["post"];
            assert_eq!(post["x-gatehouse-events-version"], json!(ev::EVENTS_VERSION), "{kind}");
            let headers: Vec<&str> = post["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["in"] == "header" && p["required"] == true)
                .filter_map(|p| p["name"].as_str())
                .collect();
            assert_eq!(headers, ["webhook-id", "webhook-timestamp", "webhook-signature"], "{kind}");
            assert!(post["summary"].as_str().is_some_and(|s| !s.is_empty() && !s.contains('\n')), "{kind}");
        }
    }

    /// Each type's sample (with and without its optional fields, and redacted) fits its webhook's body, and
    /// no other type's; it reads back as it was.
    #[test]
    fn every_event_fits_its_schema_alone_and_reads_back_whole() {
        let doc = document().unwrap();
        let body_of = |kind: ev::EventType| {
            doc["webhooks"][kind.as_str()]["post"]["requestBody"]["content"]["application/json"]["schema"].clone()
        };
        let user = gatehouse::tables::users::UserId::generate();
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-23T13:15:00.123Z").unwrap().to_utc();
        for kind in ev::EventType::ALL {
            for (full, redacted) in [(true, false), (false, false), (true, true)] {
                let mut event = ev::Event::new(user.clone(), 7, at, sample(kind, full));
                if redacted {
                    event.redact();
                }
                let json = serde_json::to_value(&event).unwrap();
                assert_eq!(json.get("redacted").is_some(), redacted, "{json}");
                if redacted {
                    fn keys(v: &Value, out: &mut Vec<String>) {
                        if let Value::Object(m) = v {
                            for (k, v) in m {
                                out.push(k.clone());
                                keys(v, out);
                            }
                        }
                    }
                    let mut names = vec![];
                    keys(&json["data"], &mut names);
                    for field in ev::PERSONAL {
                        assert!(!names.iter().any(|n| n == field), "{kind} redacted keeps {field}: {json}");
                    }
                }
                assert_eq!(json["type"], kind.as_str());
                assert_eq!(json["occurred_at"], "2026-11-23T13:15:00.123Z");
                assert!(fits(&doc, &body_of(kind), &json), "{kind} (full: {full}): {json} does not fit its schema");
                for other in ev::EventType::ALL.into_iter().filter(|o| *o != kind) {
                    assert!(!fits(&doc, &body_of(other), &json), "{kind}'s {json} fits {other}'s schema too");
                }
                let back: ev::Event = serde_json::from_value(json.clone()).unwrap();
                assert_eq!(back, event, "{kind} (full: {full}) does not read back whole from {json}");
                assert_eq!(back.kind(), kind);
            }
        }
    }

    #[test]
    fn no_event_schema_takes_a_wire_type_s_name() {
        let wire = serde_json::to_value(WireTypes::openapi().components).unwrap();
        for name in events().unwrap().schemas.keys() {
            assert!(wire["schemas"].get(name).is_none(), "{name} is a wire type's name already");
            assert!(!docs::SCHEMAS.iter().any(|(n, _)| n == name), "{name} is an OAuth schema's name already");
        }
    }
}
