//! The `login` function: users and sessions — register, login, logout, the current user, the
//! session list, logging out other devices and password confirmation. Each handler reads the
//! request, calls `Auth` and renders the answer.

use gatehouse::schema::iam;
use gatehouse::services::access::Principal;
use gatehouse::services::sign_in::Login;
use gatehouse::tables::credential_ref::CredentialRef;
use gatehouse::tables::personal_access_tokens::UPDATE_PROFILE;
use gatehouse::tables::users::{DisplayName, User, UserId};
use gatehouse::values::password::{PasswordAttempt, PasswordContext};
use gatehouse_http::views::UserBody;
use gatehouse_http::{ApiError, App, Call, Guard, Reply, Route, SessionCaller, json, no_content, route};
use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};

mod account;
pub mod email_link;
mod oauth_apps;
mod passkeys;
mod providers;
mod sessions;
mod two_factor;

/// Serves one request through [`ROUTES`].
pub async fn handle(app: &App, req: lambda_http::Request) -> Response<Body> {
    gatehouse_http::dispatch(app, ROUTES, req).await
}

/// What this function serves.
pub static ROUTES: &[Route] = &[
    route!(POST "/register", Guard::Public, register, body = RegisterRequest),
    route!(POST "/login", Guard::Public, login, body = LoginRequest),
    route!(POST "/logout", Guard::Session, logout, refused = logout_retried),
    route!(GET "/user", Guard::Credential(&[]), current_user),
    route!(DELETE "/user", Guard::Session, account::delete_user, refused = account::delete_user_retried),
    route!(GET "/sessions", Guard::Credential(&[]), sessions::list),
    route!(DELETE "/sessions/{id}", Guard::Session, sessions::end, refused = sessions::end_retried),
    route!(POST "/logout-other-devices", Guard::Session, sessions::logout_other_devices, body = PasswordRequest),
    route!(POST "/user/confirm-password", Guard::Session, sessions::confirm_password, body = PasswordRequest),
    route!(GET "/user/confirmed-password-status", Guard::Session, sessions::confirmed_password_status),
    route!(GET "/email/verify/{id}/{hash}", Guard::Credential(&[]), account::verify_email),
    route!(POST "/email/verification-notification", Guard::Credential(&[]), account::send_verification),
    route!(PUT "/user/profile-information", Guard::Credential(&[UPDATE_PROFILE]), account::update_profile, body = ProfileRequest),
    route!(PUT "/user/password", Guard::Session, account::update_password, body = UpdatePasswordRequest,
        refused = account::update_password_retried),
    route!(POST "/user/email", Guard::Session, account::request_email_change, body = EmailChangeRequest),
    route!(GET "/user/email/confirm/{id}", Guard::Session, account::confirm_email_change),
    route!(POST "/user/two-factor-authentication", Guard::Session, two_factor::enable),
    route!(POST "/user/confirmed-two-factor-authentication", Guard::Session, two_factor::confirm, body = CodeRequest),
    route!(DELETE "/user/two-factor-authentication", Guard::Session, two_factor::disable),
    route!(POST "/user/two-factor-recovery-codes", Guard::Session, two_factor::regenerate),
    route!(POST "/two-factor-challenge", Guard::Public, two_factor::challenge, body = TwoFactorChallengeRequest),
    route!(POST "/user/passkeys/options", Guard::Session, passkeys::registration_options),
    route!(POST "/user/passkeys", Guard::Session, passkeys::register, body = PasskeyRegistrationRequest),
    route!(GET "/user/passkeys", Guard::Credential(&[]), passkeys::list),
    route!(DELETE "/user/passkeys/{id}", Guard::Session, passkeys::remove),
    route!(POST "/passkeys/options", Guard::Public, passkeys::sign_in_options),
    route!(POST "/passkeys/login", Guard::Public, passkeys::login, body = PasskeyLoginRequest),
    route!(GET "/user/oauth-apps", Guard::Session, oauth_apps::list),
    route!(DELETE "/user/oauth-apps/{client_id}", Guard::Session, oauth_apps::disconnect),
    route!(POST "/auth/email-link", Guard::Public, email_link::request, body = EmailLinkRequest),
    route!(POST "/auth/email-link/complete", Guard::Public, email_link::complete, body = EmailLinkCompleteRequest),
    route!(POST "/user/confirm-by-email", Guard::Session, email_link::send_confirmation),
    route!(POST "/user/confirm-by-email/verify", Guard::Session, email_link::verify_confirmation, body = CodeRequest),
    route!(GET "/auth/providers", Guard::Public, providers::list),
    route!(POST "/auth/providers/{provider}/start", Guard::Public, providers::start, body = FederationStartRequest),
    route!(POST "/auth/providers/{provider}/link", Guard::Session, providers::link),
    route!(POST "/auth/providers/{provider}/callback", Guard::Public, providers::callback, body = FederationCallbackRequest),
    route!(GET "/user/identities", Guard::Credential(&[]), providers::identities),
    route!(DELETE "/user/identities/{id}", Guard::Session, providers::unlink),
];

pub(crate) fn with_cookie(mut resp: Response<Body>, cookie: HeaderValue) -> Response<Body> {
    resp.headers_mut().append(header::SET_COOKIE, cookie);
    resp
}

async fn register(call: Call<'_>) -> Reply {
    let app = call.app;
    // It sets the session cookie: a page elsewhere must not sign a browser in (login CSRF).
    gatehouse_http::check_origin(call.req, &app.config.session)?;
    let (name, email, password) = call.fields(|f| {
        let name = f.name("name");
        let email = f.email("email");
        let context = PasswordContext {
            email: email.as_ref(),
            name: name.as_ref().map(DisplayName::as_str),
            app_name: Some(&app.config.app_name),
        };
        let password = f.new_password_for("password", app.auth.policy(), &context);
        Some((name?, email?, password?))
    })?;
    // A retry of a registration whose user landed but whose answer did not (a 503, a lost
    // answer) is answered as the first attempt would have been (`Auth::register`).
    let (user, session) =
        gatehouse::services::registration::register(&app.auth, &app.dispatcher(), name, email, password, &call.meta())
            .await?;
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
    let (user, opened) = match app.auth.login(&email, attempt, remember, &call.meta(), device.as_deref()).await? {
        Login::Session(user, opened) => (user, opened),
        Login::SecondFactor(challenge) => return Ok(two_factor::challenged(app, &challenge)),
    };
    let resp = json(StatusCode::OK, &UserBody::from(user.as_ref()));
    let resp = with_cookie(resp, gatehouse_http::session_cookie(&app.config.session, &opened.session, remember));
    Ok(gatehouse_http::remember_device(app, resp, opened.device_cookie.as_deref()))
}

/// Ends this session and what derives from it; the cookie is cleared.
async fn logout(call: Call<'_>, SessionCaller { user_id, session }: SessionCaller) -> Reply {
    call.app.auth.logout(&CredentialRef::session(&session.key), &user_id).await?;
    Ok(with_cookie(no_content(), gatehouse_http::clear_session_cookie(&call.app.config.session)))
}

/// A retry of logout whose first attempt took the session is answered as that attempt was
/// ([`sessions::ended_by_retry`]).
async fn logout_retried(call: Call<'_>, refusal: ApiError) -> Reply {
    sessions::ended_by_retry(&call, refusal, None).await
}

pub(crate) async fn load_user(app: &App, id: &UserId) -> Result<User, ApiError> {
    // A credential whose user was deleted is no credential.
    app.stores.users.find(id).await?.ok_or_else(ApiError::unauthenticated)
}

async fn current_user(call: Call<'_>, caller: Principal) -> Reply {
    let user = load_user(call.app, caller.user_id()).await?;
    Ok(json(StatusCode::OK, &UserBody::from(&user)))
}

/// What this function's code does to AWS, as `(resource, actions)`; `template.yaml` must grant
/// exactly this much (tests/tests/template.rs). Resources: `table/<name>`,
/// `table/<name>/index/<index>`, `queue/<name>`, `ses`.
pub const PERMISSIONS: &[(&str, &[&str])] = &[
    ("table/users", iam::ITEMS_AND_CHECK),
    ("table/password_reset_tokens", &["dynamodb:DeleteItem"]),
    ("table/sessions", iam::ITEMS_AND_BATCH_DELETE),
    ("table/sessions/index/by_user", iam::QUERY),
    ("table/personal_access_tokens", iam::ITEMS_AND_BATCH_DELETE),
    ("table/personal_access_tokens/index/by_tokenable", iam::QUERY),
    ("table/credentials", &["dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:BatchWriteItem"]),
    // A revocation ends the user's OAuth grants and consents; the connected apps list reads them.
    ("table/oauth_refresh_tokens", &["dynamodb:GetItem", "dynamodb:DeleteItem"]),
    ("table/oauth_consents", &["dynamodb:GetItem", "dynamodb:DeleteItem"]),
    // Social sign-in: identities found, linked, used (touched) and unlinked; listed per user.
    ("table/identities", &["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]),
    ("table/identities/index/by_user", iam::QUERY),
    ("table/oauth_clients", &["dynamodb:GetItem"]),
    ("table/cross_app_handoffs", &["dynamodb:DeleteItem"]),
    ("table/cross_app_sessions", &["dynamodb:UpdateItem"]),
    ("table/cross_app_sessions/index/by_user", iam::QUERY),
    ("table/cache", iam::CACHE),
    ("table/events", &["dynamodb:Query", "dynamodb:UpdateItem"]), // a deletion redacts the user's events
    ("queue/jobs", &["sqs:SendMessage"]),
    ("lambda/hooks", &["lambda:InvokeFunction"]), // the before-sign-up and -sign-in hooks (#32)
];
