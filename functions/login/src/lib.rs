//! Users and sessions: `POST /register`, `POST /login`, `POST /logout`, `GET /user`,
//! `GET /sessions`, `POST /logout-other-devices` (see `../shared/API.md`).

use gatehouse::access::Principal;
use gatehouse::auth::AuthError;
use gatehouse::clock::rfc3339;
use gatehouse::credentials::CredentialRef;
use gatehouse::password::{PasswordAttempt, PasswordContext};
use gatehouse::sessions::SessionRecord;
use gatehouse::users::{User, UserId};
use gatehouse_http::{ApiError, App, Fields, client_meta, json, json_object, no_content, request_id};
use lambda_http::http::{Method, StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};
use tracing::Instrument;

/// The routes this function serves, for routers and documentation.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/register"),
    ("POST", "/login"),
    ("POST", "/logout"),
    ("GET", "/user"),
    ("GET", "/sessions"),
    ("POST", "/logout-other-devices"),
    ("POST", "/user/confirm-password"),
    ("GET", "/user/confirmed-password-status"),
];

/// Serves one request. Never panics on input: every failure is the API's error JSON.
pub async fn handle(app: &App, req: Request) -> Response<Body> {
    let span = tracing::info_span!("request", request_id = %request_id(&req), method = %req.method(), path = %req.uri().path());
    async move { route(app, &req).await.unwrap_or_else(ApiError::into_response) }.instrument(span).await
}

async fn route(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let path = req.uri().path();
    let method = req.method().clone();
    match (method, path) {
        (Method::POST, "/register") => register(app, req).await,
        (Method::POST, "/login") => login(app, req).await,
        (Method::POST, "/logout") => logout(app, req).await,
        (Method::GET, "/user") => current_user(app, req).await,
        (Method::GET, "/sessions") => sessions(app, req).await,
        (Method::POST, "/logout-other-devices") => logout_other_devices(app, req).await,
        (Method::POST, "/user/confirm-password") => confirm_password(app, req).await,
        (Method::GET, "/user/confirmed-password-status") => confirmed_password_status(app, req).await,
        (_, p) => Err(gatehouse_http::no_route(ROUTES, p)),
    }
}

/// The public view of a user: never the hash, never the remember token.
pub fn user_json(u: &User) -> Value {
    json!({
        "id": u.id.as_str(),
        "name": u.name,
        "email": u.email.as_str(),
        "email_verified_at": u.email_verified_at.map(rfc3339),
        "created_at": rfc3339(u.created_at),
        "updated_at": rfc3339(u.updated_at),
    })
}

fn with_cookie(mut resp: Response<Body>, cookie: lambda_http::http::HeaderValue) -> Response<Body> {
    resp.headers_mut().append(header::SET_COOKIE, cookie);
    resp
}

async fn register(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    // It sets the session cookie: a page elsewhere must not sign a browser in (login CSRF).
    gatehouse_http::check_origin(req, &app.config.session)?;
    let auth = app.auth()?;
    let body = json_object(req)?;
    let mut f = Fields::new(&body);
    let name = f.text("name", 255);
    let email = f.email("email");
    let context =
        PasswordContext { email: email.as_ref(), name: name.as_deref(), app_name: Some(&app.config.app_name) };
    let password = f.new_password_for("password", auth.policy(), &context);
    f.finish()?;
    let (Some(name), Some(email), Some(password)) = (name, email, password) else {
        return Err(ApiError::internal());
    };
    let (user, session) = auth.register(name, email, password, &client_meta(req)).await?;
    let resp = json(StatusCode::CREATED, &json!({ "user": user_json(&user) }));
    Ok(with_cookie(resp, gatehouse_http::session_cookie(&app.config.session, &session, false)))
}

async fn login(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    gatehouse_http::check_origin(req, &app.config.session)?;
    let auth = app.auth()?;
    let body = json_object(req)?;
    let mut f = Fields::new(&body);
    let email = f.email("email");
    // Length is not judged here: an over-long attempt simply does not match (same answer, same cost).
    let password = f.secret("password", gatehouse_http::MAX_BODY);
    let remember = f.optional_bool("remember").unwrap_or(false);
    f.finish()?;
    let (Some(email), Some(password)) = (email, password) else {
        return Err(ApiError::internal());
    };
    let device = gatehouse_http::cookie(req, &gatehouse_http::device_cookie_name(&app.config.session));
    let (user, session) =
        auth.login(&email, PasswordAttempt::new(password), remember, &client_meta(req), device.as_deref()).await?;
    let resp = json(StatusCode::OK, &json!({ "user": user_json(&user) }));
    let resp = with_cookie(resp, gatehouse_http::session_cookie(&app.config.session, &session, remember));
    // A known device from now on: its own login count, untouched by floods against the account.
    let known = device.is_some_and(|d| app.config.app_key.device_id(&email, &d).is_some());
    Ok(if known {
        resp
    } else {
        with_cookie(resp, gatehouse_http::device_cookie(&app.config.session, &app.config.app_key.device_cookie(&email)))
    })
}

/// The caller's session (cookie-authenticated routes that act on "this session") and its user id.
async fn session_principal(app: &App, req: &Request) -> Result<(UserId, SessionRecord), ApiError> {
    let cookie = gatehouse_http::cookie(req, &app.config.session.cookie_name).ok_or_else(ApiError::unauthenticated)?;
    gatehouse_http::check_origin(req, &app.config.session)?;
    match app.access.session(&cookie).await? {
        Some(rec) => Ok((rec.user_id.clone().ok_or_else(ApiError::unauthenticated)?, rec)),
        None => Err(ApiError::unauthenticated()),
    }
}

async fn logout(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let (user_id, session) = session_principal(app, req).await?;
    app.auth()?.logout(&CredentialRef::session(&session.key), &user_id).await?;
    Ok(with_cookie(no_content(), gatehouse_http::clear_session_cookie(&app.config.session)))
}

async fn load_user(app: &App, id: &UserId) -> Result<User, ApiError> {
    // A credential whose user was deleted is no credential.
    app.stores.users.find(id).await?.ok_or_else(ApiError::unauthenticated)
}

async fn current_user(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let p = app.require(req, None).await?;
    let user = load_user(app, p.user_id()).await?;
    Ok(json(StatusCode::OK, &json!({ "user": user_json(&user) })))
}

async fn sessions(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let p = app.require(req, None).await?;
    let current = match &p {
        Principal::Session { key, .. } => Some(key.clone()),
        Principal::Token { .. } => None,
    };
    let list = app.stores.sessions.list_for_user(p.user_id()).await?;
    let sessions: Vec<Value> = list
        .iter()
        .map(|s| {
            json!({
                "id_hint": s.key.hint(),
                "ip_address": s.ip_address,
                "user_agent": s.user_agent,
                "last_activity": rfc3339(s.last_activity),
                "current": current.as_ref() == Some(&s.key),
            })
        })
        .collect();
    Ok(json(StatusCode::OK, &json!({ "sessions": sessions })))
}

/// The `password` field of a body that carries only the user's current password.
fn password_field(req: &Request) -> Result<PasswordAttempt, ApiError> {
    let body = json_object(req)?;
    let mut f = Fields::new(&body);
    let password = f.secret("password", gatehouse_http::MAX_BODY);
    f.finish()?;
    password.map(PasswordAttempt::new).ok_or_else(ApiError::internal)
}

fn incorrect_password(e: AuthError) -> ApiError {
    match e {
        AuthError::InvalidCredentials => ApiError::field("password", "is incorrect"),
        e => e.into(),
    }
}

/// Ends every other session and credential; this session continues under a new id (new cookie).
async fn logout_other_devices(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let (user_id, session) = session_principal(app, req).await?;
    let password = password_field(req)?;
    let user = load_user(app, &user_id).await?;
    let id = app
        .auth()?
        .logout_other_devices(&user, &session, password, &client_meta(req))
        .await
        .map_err(incorrect_password)?;
    Ok(with_cookie(no_content(), gatehouse_http::session_cookie(&app.config.session, &id, session.remember())))
}

/// Laravel's `password.confirm`: proves the password again in this session, for the actions that
/// need a recent confirmation (minting an all-abilities or never-expiring token).
async fn confirm_password(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let (user_id, session) = session_principal(app, req).await?;
    let password = password_field(req)?;
    let user = load_user(app, &user_id).await?;
    if app
        .auth()?
        .confirm_password(&user, &session.key, password, &client_meta(req))
        .await
        .map_err(incorrect_password)?
    {
        Ok(no_content())
    } else {
        Err(ApiError::unauthenticated())
    }
}

/// Whether the password was confirmed recently enough in this session (Fortify's route).
async fn confirmed_password_status(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let (_, session) = session_principal(app, req).await?;
    let confirmed = app.access.password_recently_confirmed(session.password_confirmed_at);
    Ok(json(StatusCode::OK, &json!({ "confirmed": confirmed })))
}

/// What this function's code does to AWS, as `(resource, actions)`; `template.yaml` must grant
/// exactly this much (tests/tests/template.rs). Resources: `table/<name>`,
/// `table/<name>/index/<index>`, `queue/<name>`, `ses`.
pub const PERMISSIONS: &[(&str, &[&str])] = &[
    ("table/users", &["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"]),
    (
        "table/sessions",
        &[
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:BatchWriteItem",
        ],
    ),
    ("table/sessions/index/by_user", &["dynamodb:Query"]),
    (
        "table/personal_access_tokens",
        &["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"],
    ),
    ("table/personal_access_tokens/index/by_tokenable", &["dynamodb:Query"]),
    ("table/credentials", &["dynamodb:PutItem", "dynamodb:Query", "dynamodb:BatchWriteItem"]),
    ("table/cross_app_handoffs", &["dynamodb:DeleteItem"]),
    ("table/cross_app_sessions", &["dynamodb:UpdateItem"]),
    ("table/cross_app_sessions/index/by_user", &["dynamodb:Query"]),
    ("table/cache", &["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]),
];
