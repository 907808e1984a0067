//! Personal access tokens (`POST /tokens`, `POST /tokens/issue`, `GET /tokens`,
//! `DELETE /tokens/{id}`), cross-app handoffs (`POST /cross-app/handoff`,
//! `POST /cross-app/exchange`, `DELETE /cross-app/sessions/{id}`), and the API Gateway REQUEST
//! authorizer that checks a bearer token or session cookie at the door of every protected route.

use gatehouse::Timestamp;
use gatehouse::access::Principal;
use gatehouse::auth::{AuthError, SessionGrant};
use gatehouse::clock::rfc3339;
use gatehouse::credentials::{self, CredentialEntry, CredentialRef, NewCredential, Revocation, reasons};
use gatehouse::cross_app_sessions::{CrossAppSession, Handoff, HandoffToken};
use gatehouse::password::PasswordAttempt;
use gatehouse::personal_access_tokens::{
    self, Abilities, CREATE_TOKENS, CROSS_APP_HANDOFF, PersonalAccessToken, TokenId, Tokenable,
};
use gatehouse::users::UserId;
use gatehouse_http::{ApiError, App, Fields, client_meta, json, json_object, no_content, request_id};
use lambda_http::http::{Method, StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{Value, json};
use tracing::Instrument;

/// The routes this function serves (`{id}` is a path parameter).
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/tokens"),
    ("POST", "/tokens/issue"),
    ("GET", "/tokens"),
    ("DELETE", "/tokens/{id}"),
    ("POST", "/cross-app/handoff"),
    ("POST", "/cross-app/exchange"),
    ("DELETE", "/cross-app/sessions/{id}"),
];

const MAX_ABILITIES: usize = 50;
const MAX_ABILITY_LEN: usize = 100;

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    let span = tracing::info_span!("request", request_id = %request_id(&req), method = %req.method(), path = %req.uri().path());
    async move { route(app, &req).await.unwrap_or_else(ApiError::into_response) }.instrument(span).await
}

async fn route(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (req.method().clone(), segments.as_slice()) {
        (Method::POST, ["tokens"]) => create(app, req).await,
        (Method::GET, ["tokens"]) => list(app, req).await,
        (Method::POST, ["tokens", "issue"]) => issue(app, req).await,
        (Method::DELETE, ["tokens", id]) => revoke(app, req, id).await,
        (Method::POST, ["cross-app", "handoff"]) => handoff(app, req).await,
        (Method::POST, ["cross-app", "exchange"]) => exchange(app, req).await,
        (Method::DELETE, ["cross-app", "sessions", id]) => revoke_cross_app(app, req, id).await,
        _ => Err(gatehouse_http::no_route(ROUTES, &path)),
    }
}

fn token_json(t: &PersonalAccessToken) -> Value {
    json!({
        "id": t.id.as_str(),
        "name": t.name,
        "abilities": t.abilities.as_slice(),
        "last_used_at": t.last_used_at.map(rfc3339),
        "expires_at": t.expires_at.map(rfc3339),
        "created_at": rfc3339(t.created_at),
    })
}

/// The token's options in a request: `abilities` (default `["*"]`) and `expires_in_minutes`.
fn token_options(f: &mut Fields<'_>) -> (Abilities, Option<i64>) {
    let abilities = f
        .optional_string_list("abilities", MAX_ABILITIES, MAX_ABILITY_LEN)
        .map(Abilities::new)
        .unwrap_or_else(Abilities::all);
    (abilities, f.optional_int("expires_in_minutes", 1, 5_256_000))
}

/// What a minted token derives from: the credentials version it is issued under and the parent
/// the register records (revoking the parent revokes it).
struct Lineage {
    credentials_version: u64,
    parent: Option<CredentialRef>,
}

/// The expiry a new token gets: the requested one, capped by the maximum age.
fn capped_expiry(app: &App, expires_in: Option<i64>) -> Option<Timestamp> {
    let now = app.stores.clock.now();
    let mut expires_at = expires_in.map(|m| now + gatehouse::clock::Span::minutes(m));
    if let Some(max) = app.config.tokens.max_age {
        let cap = now + max;
        expires_at = Some(expires_at.map_or(cap, |e| e.min(cap)));
    }
    expires_at
}

/// Mints a token for `user`, issues it under `lineage` (nothing is written when the user's
/// credentials version moved on: `Ok(None)`), and answers with the plaintext (shown once).
async fn mint_and_store(
    app: &App,
    user: &UserId,
    name: String,
    abilities: Abilities,
    expires_at: Option<Timestamp>,
    lineage: Lineage,
) -> Result<Option<Response<Body>>, ApiError> {
    let now = app.stores.clock.now();
    let owner = Tokenable::user(user);
    let (plain, record) = personal_access_tokens::mint(
        &owner,
        name,
        abilities,
        expires_at,
        &app.config.tokens.prefix,
        now,
        lineage.credentials_version,
    );
    let entry = CredentialEntry {
        user_id: user.clone(),
        credential: CredentialRef::token(&record.id),
        parent: lineage.parent,
        cross_app_id: None,
        created_at: now,
        expires_at: record.expires_at,
    };
    if !app.stores.credentials.issue(lineage.credentials_version, &entry, NewCredential::Token(&record)).await? {
        return Ok(None);
    }
    tracing::info!(event = "token_created", token_id = %record.id, owner = %owner.key(), parent = ?entry.parent.map(|p| p.encode()));
    Ok(Some(json(
        StatusCode::CREATED,
        &json!({
            "token": plain.expose(),
            "id": record.id.as_str(),
            "name": record.name,
            "abilities": record.abilities.as_slice(),
            "expires_at": record.expires_at.map(rfc3339),
        }),
    )))
}

/// `POST /tokens`: a token minted by the caller's credential, never stronger than it. From a
/// token: abilities within the parent's and an expiry no later than the parent's; revoking the
/// parent revokes it. From a session: an all-abilities or never-expiring token needs a recent
/// password confirmation (423 `password_confirmation_required`).
/// A session opened by a handoff exchange is this app's session for browsing, never a source of
/// credentials: it came from a token that may be far weaker and shorter-lived than a session.
fn refuse_derived_session(p: &Principal) -> Result<(), ApiError> {
    match p {
        Principal::Session { parent: Some(_), .. } => Err(ApiError::forbidden(
            "A session opened by a cross-app handoff cannot mint tokens or hand off; sign in to this app.",
        )),
        _ => Ok(()),
    }
}

async fn create(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let p = app.require(req, Some(CREATE_TOKENS)).await?;
    refuse_derived_session(&p)?;
    let body = json_object(req)?;
    let mut f = Fields::new(&body);
    let name = f.text("name", 255);
    let (abilities, expires_in) = token_options(&mut f);
    let mut expires_at = capped_expiry(app, expires_in);
    let mut needs_confirmation = false;
    match &p {
        Principal::Token { abilities: ceiling, expires_at: parent_expiry, .. } => {
            if !abilities.as_slice().iter().all(|a| ceiling.can(a)) {
                f.error("abilities", "may not exceed the abilities of the token making the request");
            }
            if let Some(limit) = *parent_expiry {
                expires_at = Some(expires_at.map_or(limit, |e| e.min(limit)));
            }
        }
        Principal::Session { password_confirmed_at, .. } => {
            let strong = abilities.can_everything() || expires_at.is_none();
            needs_confirmation = strong && !app.access.password_recently_confirmed(*password_confirmed_at);
        }
    }
    f.finish()?;
    if needs_confirmation {
        return Err(ApiError::password_confirmation_required());
    }
    let name = name.ok_or_else(ApiError::internal)?;
    let lineage = Lineage { credentials_version: p.credentials_version(), parent: p.parent_for_derived() };
    // Not issued: the credential making the request was revoked (a reset, a logout elsewhere).
    mint_and_store(app, p.user_id(), name, abilities, expires_at, lineage).await?.ok_or_else(ApiError::unauthenticated)
}

async fn issue(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let auth = app.auth()?;
    let body = json_object(req)?;
    let mut f = Fields::new(&body);
    let email = f.email("email");
    let password = f.secret("password", gatehouse_http::MAX_BODY);
    let device = f.text("device_name", 255);
    let (abilities, expires_in) = token_options(&mut f);
    // Every shape error first; credentials are checked only for a well-formed request.
    f.finish()?;
    let (Some(email), Some(password), Some(device)) = (email, password, device) else {
        return Err(ApiError::internal());
    };
    // API clients carry no device cookie: they count against the account's unknown-device limit.
    let user = auth.check_credentials(&email, PasswordAttempt::new(password), &client_meta(req), None).await?;
    let lineage = Lineage { credentials_version: user.credentials_version, parent: None };
    let expires_at = capped_expiry(app, expires_in);
    // Not issued: the password changed while it was being checked; the old one no longer counts.
    mint_and_store(app, &user.id, device, abilities, expires_at, lineage)
        .await?
        .ok_or_else(|| AuthError::InvalidCredentials.into())
}

fn query(req: &Request, key: &str) -> Option<String> {
    req.query_string_parameters_ref().and_then(|q| q.first(key)).map(str::to_owned)
}

async fn list(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let p = app.require(req, None).await?;
    let limit = match query(req, "limit") {
        None => 50,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => return Err(ApiError::field("limit", "must be a whole number from 1 to 100")),
        },
    };
    let owner = Tokenable::user(p.user_id());
    // Cursors are sealed for this owner: a forged, tampered or another user's cursor is a 422.
    let scope = format!("tokens|{}", owner.key());
    let cursor = query(req, "cursor")
        .map(|c| app.config.app_key.open_cursor(&scope, &c).ok_or_else(invalid_cursor))
        .transpose()?;
    let page = app.stores.tokens.list_for(&owner, limit, cursor.as_ref()).await?;
    let tokens: Vec<Value> = page.items.iter().map(token_json).collect();
    let next = page.next.map(|c| app.config.app_key.seal_cursor(&scope, &c));
    Ok(json(StatusCode::OK, &json!({ "tokens": tokens, "next_cursor": next })))
}

fn invalid_cursor() -> ApiError {
    ApiError::from(gatehouse::StoreError::InvalidCursor)
}

/// `DELETE /tokens/{id}`: the token and everything derived from it (child tokens, handoffs,
/// cross-app sessions).
async fn revoke(app: &App, req: &Request, id: &str) -> Result<Response<Body>, ApiError> {
    let p = app.require(req, None).await?;
    let id = TokenId::parse(id).ok_or_else(ApiError::not_found)?;
    if !app.stores.tokens.delete_owned(&id, &Tokenable::user(p.user_id())).await? {
        return Err(ApiError::not_found());
    }
    let root = CredentialRef::token(&id);
    let n = credentials::revoke(&app.stores, p.user_id(), Revocation::Tree(&root), reasons::PARENT_REVOKED).await?;
    tracing::info!(event = "token_revoked", token_id = %id, with_derived = n);
    Ok(no_content())
}

fn registered_app(app: &App, f: &mut Fields<'_>, field: &str) -> Option<String> {
    let name = f.text(field, 100)?;
    if app.config.apps.contains(&name) {
        Some(name)
    } else {
        f.error(field, "is not a registered app");
        None
    }
}

/// `POST /cross-app/handoff`: from a session, or a token holding `cross-app:handoff`; bound to the
/// target app, to the caller's credentials version and to the caller's credential as parent.
async fn handoff(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let p = app.require(req, Some(CROSS_APP_HANDOFF)).await?;
    refuse_derived_session(&p)?;
    let body = json_object(req)?;
    let mut f = Fields::new(&body);
    let target = registered_app(app, &mut f, "target_app");
    f.finish()?;
    let target = target.ok_or_else(ApiError::internal)?;
    let meta = client_meta(req);
    let now = app.stores.clock.now();
    let token = HandoffToken::generate();
    let h = Handoff {
        token_hash: token.hash(),
        user_id: p.user_id().clone(),
        source_app: app.config.app_name.clone(),
        target_app: target,
        ip_address: meta.ip,
        user_agent: meta.user_agent,
        created_at: now,
        expires_at: now + app.config.handoff_lifetime,
        used_at: None,
        credentials_version: p.credentials_version(),
        parent: Some(p.credential()),
    };
    let entry = CredentialEntry {
        user_id: h.user_id.clone(),
        credential: CredentialRef::handoff(&h.token_hash),
        parent: h.parent.clone(),
        cross_app_id: None,
        created_at: now,
        expires_at: Some(h.expires_at),
    };
    if !app.stores.credentials.issue(h.credentials_version, &entry, NewCredential::Handoff(&h)).await? {
        return Err(ApiError::unauthenticated());
    }
    tracing::info!(event = "handoff_created", user_id = %h.user_id, target_app = %h.target_app);
    Ok(json(StatusCode::CREATED, &json!({ "handoff_token": token.expose(), "expires_at": rfc3339(h.expires_at) })))
}

fn invalid_handoff() -> ApiError {
    ApiError::unprocessable("invalid_token", "This handoff token is invalid, used or expired.")
}

/// `POST /cross-app/exchange`: only the handoff's target app — this deployment's
/// `GATEHOUSE_APP_NAME` — can exchange it, once, for a session of this app, issued under the
/// handoff's credentials version (a reset since the handoff voids it) and derived from the
/// handoff's parent (revoking that ends this session).
async fn exchange(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    // It sets the session cookie: a page elsewhere must not sign a browser in (login CSRF).
    gatehouse_http::check_origin(req, &app.config.session)?;
    let auth = app.auth()?;
    let body = json_object(req)?;
    let mut f = Fields::new(&body);
    let raw = f.text("handoff_token", 100);
    let this_app = app.config.app_name.clone();
    if let Some(asked) = f.optional_text("app", 100)
        && asked != this_app
    {
        f.error("app", "is not this app: a handoff is exchanged by the app it was made for");
    }
    f.finish()?;
    let raw = raw.ok_or_else(ApiError::internal)?;
    let client = gatehouse::throttle::client_key(client_meta(req).ip.as_deref());
    auth.limit(&format!("exchange:{client}"), app.config.limits.exchange_per_client).await?;
    let token = HandoffToken::parse(&raw).ok_or_else(invalid_handoff)?;
    let now = app.stores.clock.now();
    let h = app.stores.cross_app.consume_handoff(&token.hash(), &this_app, now).await?.ok_or_else(invalid_handoff)?;
    let user = app.stores.users.find(&h.user_id).await?.ok_or_else(invalid_handoff)?;
    let meta = client_meta(req);
    let audit_id = uuid::Uuid::now_v7().to_string();
    let grant = SessionGrant {
        credentials_version: h.credentials_version,
        parent: h.parent.clone(),
        cross_app_id: Some(audit_id.clone()),
        ..SessionGrant::default()
    };
    let (session_id, session) = auth.issue_session(&user.id, &meta, grant).await?.ok_or_else(invalid_handoff)?;
    let record = CrossAppSession {
        id: audit_id,
        user_id: user.id.clone(),
        source_app: h.source_app,
        target_app: this_app,
        session_key: session.key,
        ip_address: meta.ip,
        user_agent: meta.user_agent,
        created_at: now,
        revoked_at: None,
        revoked_reason: None,
        expires_at: Some(now + app.config.cross_app_audit_retention),
    };
    app.stores.cross_app.record_session(&record).await?;
    tracing::info!(event = "cross_app_session", user_id = %user.id, source_app = %record.source_app, target_app = %record.target_app, ip = ?record.ip_address);
    let mut resp =
        json(StatusCode::OK, &json!({ "user": gatehouse_login::user_json(&user), "cross_app_session_id": record.id }));
    resp.headers_mut()
        .append(header::SET_COOKIE, gatehouse_http::session_cookie(&app.config.session, &session_id, false));
    Ok(resp)
}

async fn revoke_cross_app(app: &App, req: &Request, id: &str) -> Result<Response<Body>, ApiError> {
    let p = app.require(req, None).await?;
    // Audit ids are UUIDs: anything else is no record (and never reaches the store).
    let id = &uuid::Uuid::parse_str(id).map_err(|_| ApiError::not_found())?.to_string();
    let now = app.stores.clock.now();
    match app.stores.cross_app.revoke_session(id, p.user_id(), now, reasons::USER_REVOKED).await? {
        Some(s) => {
            let root = CredentialRef::session(&s.session_key);
            credentials::revoke(&app.stores, p.user_id(), Revocation::Tree(&root), reasons::USER_REVOKED).await?;
            tracing::info!(event = "cross_app_session_revoked", user_id = %p.user_id(), target_app = %s.target_app);
            Ok(no_content())
        }
        None => Err(ApiError::not_found()),
    }
}

/// What the `tokens` function's code does to AWS (see `gatehouse_login::PERMISSIONS`).
pub const PERMISSIONS: &[(&str, &[&str])] = &[
    ("table/users", &["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"]),
    ("table/sessions", &["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]),
    (
        "table/personal_access_tokens",
        &["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
    ),
    ("table/personal_access_tokens/index/by_tokenable", &["dynamodb:Query"]),
    ("table/cache", &["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]),
    ("table/credentials", &["dynamodb:PutItem", "dynamodb:Query", "dynamodb:BatchWriteItem"]),
    ("table/cross_app_handoffs", &["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]),
    ("table/cross_app_sessions", &["dynamodb:PutItem", "dynamodb:UpdateItem"]),
];
