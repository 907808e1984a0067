//! The `login` function: users and sessions — register, login, logout, the current user, the
//! session list, logging out other devices and password confirmation. Each handler reads the
//! request, calls `Auth` and renders the answer.

use gatehouse::access::Principal;
use gatehouse::auth::AuthError;
use gatehouse::credentials::CredentialRef;
use gatehouse::password::{PasswordAttempt, PasswordContext};
use gatehouse::users::{User, UserId};
use gatehouse_http::views::{ConfirmedView, SessionView, SessionsBody, UserBody};
use gatehouse_http::{ApiError, App, Call, Guard, Reply, Route, json, no_content, route};
use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};

/// Serves one request through [`ROUTES`].
pub async fn handle(app: &gatehouse_http::App, req: lambda_http::Request) -> lambda_http::Response<lambda_http::Body> {
    gatehouse_http::dispatch(app, ROUTES, req).await
}

/// What this function serves.
pub static ROUTES: &[Route] = &[
    route!(POST "/register", Guard::Public, register),
    route!(POST "/login", Guard::Public, login),
    route!(POST "/logout", Guard::Session, logout),
    route!(GET "/user", Guard::Credential(&[]), current_user),
    route!(GET "/sessions", Guard::Credential(&[]), sessions),
    route!(POST "/logout-other-devices", Guard::Session, logout_other_devices),
    route!(POST "/user/confirm-password", Guard::Session, confirm_password),
    route!(GET "/user/confirmed-password-status", Guard::Session, confirmed_password_status),
];

fn with_cookie(mut resp: Response<Body>, cookie: HeaderValue) -> Response<Body> {
    resp.headers_mut().append(header::SET_COOKIE, cookie);
    resp
}

async fn register(call: Call<'_>) -> Reply {
    let app = call.app;
    // It sets the session cookie: a page elsewhere must not sign a browser in (login CSRF).
    gatehouse_http::check_origin(call.req, &app.config.session)?;
    let (name, email, password) = call.fields(|f| {
        let name = f.text("name", 255);
        let email = f.email("email");
        let context =
            PasswordContext { email: email.as_ref(), name: name.as_deref(), app_name: Some(&app.config.app_name) };
        let password = f.new_password_for("password", app.auth.policy(), &context);
        Some((name?, email?, password?))
    })?;
    let (user, session) = app.auth.register(name, email, password, &call.meta()).await?;
    let resp = json(StatusCode::CREATED, &UserBody::from(&user));
    Ok(with_cookie(resp, gatehouse_http::session_cookie(&app.config.session, &session, false)))
}

async fn login(call: Call<'_>) -> Reply {
    let app = call.app;
    gatehouse_http::check_origin(call.req, &app.config.session)?;
    let (email, password, remember) = call.fields(|f| {
        let email = f.email("email");
        // Length is not judged here: an over-long attempt simply does not match (same answer, same cost).
        let password = f.secret("password", gatehouse_http::MAX_BODY);
        let remember = f.optional_bool("remember").unwrap_or(false);
        Some((email?, password?, remember))
    })?;
    let device = call.cookie(&gatehouse_http::device_cookie_name(&app.config.session));
    let attempt = PasswordAttempt::new(password);
    let (user, session) = app.auth.login(&email, attempt, remember, &call.meta(), device.as_deref()).await?;
    let resp = json(StatusCode::OK, &UserBody::from(&user));
    let resp = with_cookie(resp, gatehouse_http::session_cookie(&app.config.session, &session, remember));
    // A known device from now on: its own login count, untouched by floods against the account.
    let known = device.is_some_and(|d| app.config.app_key.device_id(&email, &d).is_some());
    Ok(if known {
        resp
    } else {
        let value = app.config.app_key.device_cookie(&email);
        with_cookie(resp, gatehouse_http::device_cookie(&app.config.session, &value))
    })
}

async fn logout(call: Call<'_>) -> Reply {
    let (user_id, session) = call.session().await?;
    call.app.auth.logout(&CredentialRef::session(&session.key), &user_id).await?;
    Ok(with_cookie(no_content(), gatehouse_http::clear_session_cookie(&call.app.config.session)))
}

async fn load_user(app: &App, id: &UserId) -> Result<User, ApiError> {
    // A credential whose user was deleted is no credential.
    app.stores.users.find(id).await?.ok_or_else(ApiError::unauthenticated)
}

async fn current_user(call: Call<'_>) -> Reply {
    let caller = call.caller().await?;
    let user = load_user(call.app, caller.user_id()).await?;
    Ok(json(StatusCode::OK, &UserBody::from(&user)))
}

async fn sessions(call: Call<'_>) -> Reply {
    let caller = call.caller().await?;
    let current = match &caller {
        Principal::Session { key, .. } => Some(key),
        Principal::Token { .. } => None,
    };
    let list = call.app.stores.sessions.list_for_user(caller.user_id()).await?;
    let sessions = list.iter().map(|s| SessionView::new(s, current)).collect();
    Ok(json(StatusCode::OK, &SessionsBody { sessions }))
}

/// The `password` field of a body that carries only the user's current password.
fn password_field(call: &Call<'_>) -> Result<PasswordAttempt, ApiError> {
    call.fields(|f| f.secret("password", gatehouse_http::MAX_BODY)).map(PasswordAttempt::new)
}

fn incorrect_password(e: AuthError) -> ApiError {
    match e {
        AuthError::InvalidCredentials => ApiError::field("password", "is incorrect"),
        e => e.into(),
    }
}

/// Ends every other session and credential; this session continues under a new id (new cookie).
async fn logout_other_devices(call: Call<'_>) -> Reply {
    let (user_id, session) = call.session().await?;
    let password = password_field(&call)?;
    let user = load_user(call.app, &user_id).await?;
    let auth = &call.app.auth;
    let id = auth.logout_other_devices(&user, &session, password, &call.meta()).await.map_err(incorrect_password)?;
    let cookie = gatehouse_http::session_cookie(&call.app.config.session, &id, session.remember());
    Ok(with_cookie(no_content(), cookie))
}

/// Laravel's `password.confirm`: proves the password again in this session, for the actions that
/// need a recent confirmation (minting an all-abilities or never-expiring token).
async fn confirm_password(call: Call<'_>) -> Reply {
    let (user_id, session) = call.session().await?;
    let password = password_field(&call)?;
    let user = load_user(call.app, &user_id).await?;
    let auth = &call.app.auth;
    match auth.confirm_password(&user, &session.key, password, &call.meta()).await.map_err(incorrect_password)? {
        true => Ok(no_content()),
        false => Err(ApiError::unauthenticated()),
    }
}

/// Whether the password was confirmed recently enough in this session (Fortify's route).
async fn confirmed_password_status(call: Call<'_>) -> Reply {
    let (_, session) = call.session().await?;
    let confirmed = call.app.access.password_recently_confirmed(session.password_confirmed_at);
    Ok(json(StatusCode::OK, &ConfirmedView { confirmed }))
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
