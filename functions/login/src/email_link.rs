//! Passwordless sign-in by mail for single-page apps (the hosted pages call the same routes):
//! asking for the mail (which binds the browser with a cookie), finishing with its link or its
//! code (as `/login` answers), and the mailed proof that stands in for a password confirmation
//! on an account without one. The rules are `gatehouse::services::email_link`'s.

use crate::{load_user, two_factor, with_cookie};
use gatehouse::services::email_confirmation::{self as confirmation, ConfirmByEmailError};
use gatehouse::services::email_link::{self, Completed, EmailLinkError, LINK_LIFETIME};
use gatehouse_http::views::{MessageView, UserBody};
use gatehouse_http::{ApiError, Call, Reply, SessionCaller, json, no_content};
use lambda_http::http::{HeaderValue, StatusCode};

/// The cookie binding a request to the browser that made it (host-only, HttpOnly, Secure,
/// `SameSite=Lax`, as long as the mail's link lives).
pub const BINDING_COOKIE: &str = "__Host-gatehouse_email_link";

/// What `POST /auth/email-link` says, whether or not the address has an account.
pub const SENT_MESSAGE: &str = "If that address can sign in here, a link and a code are on their way. Open the link in this browser, or type the code here.";

fn binding_cookie(value: &str, max_age: i64) -> HeaderValue {
    gatehouse_http::set_cookie(BINDING_COOKIE, value, "Lax", None, Some(max_age))
}

/// The API's answer to a refused sign-in by mail.
fn refused(e: EmailLinkError) -> ApiError {
    match e {
        EmailLinkError::Disabled => ApiError::not_found(),
        EmailLinkError::Invalid => ApiError::unprocessable(
            "email_link_invalid",
            "This sign-in link or code is invalid, has expired or was already used. Ask for a new one.",
        ),
        EmailLinkError::OtherBrowser => ApiError::unprocessable(
            "email_link_invalid",
            "This link was asked for in another browser. Type the code from the email in the browser where you asked.",
        ),
        EmailLinkError::Auth(a) => a.into(),
        EmailLinkError::Store(s) => s.into(),
        EmailLinkError::Dispatch(d) => {
            tracing::error!(error = %d, "could not queue the sign-in mail");
            ApiError::unavailable()
        }
    }
}

/// `POST /auth/email-link` `{email, remember?}`: 202 whatever the address, and the binding cookie.
pub async fn request(call: Call<'_>) -> Reply {
    let app = call.app;
    // A page elsewhere must not bind this browser (nor spend the address's mails).
    gatehouse_http::check_origin(call.req, &app.config.session)?;
    let (email, remember) = call.fields(|f| {
        let email = f.email("email");
        Some((email?, f.optional_bool("remember").unwrap_or(false)))
    })?;
    let binding = email_link::new_binding();
    email_link::request(&app.auth, &app.dispatcher(), &email, remember, &call.meta(), &binding)
        .await
        .map_err(refused)?;
    let resp = json(StatusCode::ACCEPTED, &MessageView { message: SENT_MESSAGE });
    Ok(with_cookie(resp, binding_cookie(&binding, LINK_LIFETIME.num_seconds())))
}

/// `POST /auth/email-link/complete` `{token}` (the link's) or `{code}`, with the binding cookie:
/// 200 and the session cookie (201 for an account made now), or 202 a two-factor challenge.
pub async fn complete(call: Call<'_>) -> Reply {
    let app = call.app;
    // It sets the session cookie: a page elsewhere must not sign a browser in.
    gatehouse_http::check_origin(call.req, &app.config.session)?;
    let (token, code) = call.fields(|f| Some((f.optional_text("token", 128), f.optional_text("code", 16))))?;
    let binding = call.cookie(BINDING_COOKIE);
    let device = call.cookie(&gatehouse_http::device_cookie_name(&app.config.session));
    let (auth, meta) = (&app.auth, call.meta());
    let done = match (token, code) {
        (Some(t), None) => email_link::complete_with_link(auth, &t, binding.as_deref(), &meta, device.as_deref()).await,
        (None, Some(c)) => email_link::complete_with_code(auth, &c, binding.as_deref(), &meta, device.as_deref()).await,
        _ => {
            let why = "Give the token from the link or the code from the email (one of them).";
            return Err(ApiError::unprocessable("email_link_invalid", why));
        }
    };
    let (user, opened, created, remember) = match done.map_err(refused)? {
        Completed::Session { user, opened, created, remember } => (user, opened, created, remember),
        Completed::SecondFactor(challenge) => {
            return Ok(with_cookie(two_factor::challenged(app, &challenge), binding_cookie("", 0)));
        }
    };
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    let resp = with_cookie(json(status, &UserBody::from(user.as_ref())), binding_cookie("", 0));
    let resp = with_cookie(resp, gatehouse_http::session_cookie(&app.config.session, &opened.session, remember));
    Ok(gatehouse_http::remember_device(app, resp, opened.device_cookie.as_deref()))
}

/// The API's answer to a refused confirmation by mail.
fn unconfirmed(e: ConfirmByEmailError) -> ApiError {
    match e {
        ConfirmByEmailError::HasPassword => ApiError::unprocessable(
            "password_required",
            "This account has a password: confirm with it (POST /user/confirm-password).",
        ),
        ConfirmByEmailError::InvalidCode => ApiError::field("code", "is invalid or has expired"),
        ConfirmByEmailError::Auth(a) => a.into(),
        ConfirmByEmailError::Store(s) => s.into(),
        ConfirmByEmailError::Dispatch(d) => {
            tracing::error!(error = %d, "could not queue the confirmation code");
            ApiError::unavailable()
        }
    }
}

/// `POST /user/confirm-by-email`: a code mailed to an account without a password (202).
pub async fn send_confirmation(call: Call<'_>, SessionCaller { user_id, session }: SessionCaller) -> Reply {
    let app = call.app;
    let user = load_user(app, &user_id).await?;
    confirmation::send_code(&app.auth, &app.dispatcher(), &user, &session.key).await.map_err(unconfirmed)?;
    Ok(json(StatusCode::ACCEPTED, &MessageView { message: "A confirmation code is on its way to your email." }))
}

/// `POST /user/confirm-by-email/verify` `{code}`: this session is confirmed, as
/// `POST /user/confirm-password` confirms it.
pub async fn verify_confirmation(call: Call<'_>, SessionCaller { user_id, session }: SessionCaller) -> Reply {
    let code = call.fields(|f| f.text("code", 16))?;
    let auth = &call.app.auth;
    match confirmation::verify_code(auth, &user_id, &session.key, &code).await.map_err(unconfirmed)? {
        true => Ok(no_content()),
        false => Err(ApiError::unauthenticated()),
    }
}
