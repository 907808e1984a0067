//! The account while signed in (Fortify's actions): email verification, the profile and the
//! password.

use crate::sessions::incorrect_password;
use crate::{load_user, with_cookie};
use gatehouse::services::access::Principal;
use gatehouse::services::email_change;
use gatehouse::services::email_verification::{self, LinkParts, Resend};
use gatehouse::services::password_broker::PasswordBroker;
use gatehouse::values::password::PasswordContext;
use gatehouse_http::views::{MessageView, UserBody, VerificationView};
use gatehouse_http::{ApiError, Call, Reply, SessionCaller, json, no_content};
use lambda_http::http::StatusCode;

pub const VERIFIED_MESSAGE: &str = "Your email address is verified.";
pub const ALREADY_VERIFIED_MESSAGE: &str = "Your email address was already verified.";
pub const LINK_SENT_MESSAGE: &str = "A new verification link has been sent to your email address.";

/// The landing of a mailed link: `/email/verify/{id}/{hash}?expires=…&signature=…`, opened by
/// the signed-in user it names (as Laravel's `verification.verify`: a mail scanner or anyone else
/// opening the link verifies nothing). A tampered, expired or superseded link is 403.
pub async fn verify_email(call: Call<'_>, caller: Principal) -> Reply {
    let (expires, signature) = (call.query("expires").unwrap_or_default(), call.query("signature").unwrap_or_default());
    let link = LinkParts { id: call.param(0), address: call.param(1), expires: &expires, signature: &signature };
    let app = call.app;
    let now = app.access.now();
    let (_, first) = email_verification::verify(&app.config, &app.stores, link, caller.user_id(), now).await?;
    let message = if first { VERIFIED_MESSAGE } else { ALREADY_VERIFIED_MESSAGE };
    Ok(json(StatusCode::OK, &VerificationView { verified: true, message }))
}

/// Mails a fresh link ([`email_verification::resend`]: 6 a minute, 20 a day per user).
pub async fn send_verification(call: Call<'_>, caller: Principal) -> Reply {
    let app = call.app;
    let user = load_user(app, caller.user_id()).await?;
    match email_verification::resend(&app.auth, &app.dispatcher(), &user).await? {
        Resend::AlreadyVerified => Ok(json(StatusCode::OK, &MessageView { message: ALREADY_VERIFIED_MESSAGE })),
        Resend::Queued => Ok(json(StatusCode::ACCEPTED, &MessageView { message: LINK_SENT_MESSAGE })),
    }
}

pub const CHANGE_REQUESTED_MESSAGE: &str =
    "A confirmation link has been sent to the new address; your address changes when it is opened.";

/// `POST /user/email`: asks to move the account to a new address, from a session whose password
/// was confirmed within the window ([`email_change::request`]): a link goes to the new address, a
/// notice to the current one. 202: nothing changes until the link is opened.
pub async fn request_email_change(call: Call<'_>, SessionCaller { user_id, session }: SessionCaller) -> Reply {
    let to = call.fields(|f| f.email("email"))?;
    let app = call.app;
    let user = load_user(app, &user_id).await?;
    email_change::request(&app.auth, &app.dispatcher(), &user, &session, &to).await?;
    Ok(json(StatusCode::ACCEPTED, &MessageView { message: CHANGE_REQUESTED_MESSAGE }))
}

/// The landing of a change's link: `/user/email/confirm/{id}?email=…&expires=…&signature=…`,
/// opened in a session of the user it names (not a token, nor a session another app handed off).
/// 200 with the user at its new address (verified); 409 `email_taken` when another account took
/// it meanwhile; 403 for a bad or superseded link.
pub async fn confirm_email_change(call: Call<'_>, SessionCaller { session, .. }: SessionCaller) -> Reply {
    let [email, expires, signature] = ["email", "expires", "signature"].map(|k| call.query(k).unwrap_or_default());
    let link = LinkParts { id: call.param(0), address: &email, expires: &expires, signature: &signature };
    let app = call.app;
    let user = email_change::confirm(&app.auth, &app.dispatcher(), &link, &session).await?;
    Ok(json(StatusCode::OK, &UserBody::from(&user)))
}

/// `PUT /user/profile-information`: the display name.
pub async fn update_profile(call: Call<'_>, caller: Principal) -> Reply {
    let name = call.fields(|f| f.name("name"))?;
    let updated = gatehouse::services::profile::update_profile(&call.app.auth, caller.user_id(), &name).await?;
    let user = updated.ok_or_else(ApiError::unauthenticated)?;
    Ok(json(StatusCode::OK, &UserBody::from(&user)))
}

/// `DELETE /user` (Jetstream's delete-user), from a session whose password was confirmed within
/// the window (423 `password_confirmation_required` otherwise): everything of the user goes, the
/// address can register again, and the cookie is cleared.
pub async fn delete_user(call: Call<'_>, SessionCaller { user_id, session }: SessionCaller) -> Reply {
    let app = call.app;
    let user = load_user(app, &user_id).await?;
    if !gatehouse::services::account_deletion::delete_account(&app.auth, &app.dispatcher(), &user, &session).await? {
        return Err(ApiError::unauthenticated());
    }
    Ok(with_cookie(no_content(), gatehouse_http::clear_session_cookie(&app.config.session)))
}

/// The session's own deletion, asked again after an answer that was lost (refused now, 401,
/// because it landed): finished, and answered as it would have been. Anything else is the refusal.
pub async fn delete_user_retried(call: Call<'_>, refusal: ApiError) -> Reply {
    if refusal.status != 401 {
        return Err(refusal);
    }
    let app = call.app;
    let Some(id) = call.session_id()? else { return Err(refusal) };
    if !gatehouse::services::account_deletion::resume(&app.auth, &app.dispatcher(), &id).await? {
        return Err(refusal);
    }
    Ok(with_cookie(no_content(), gatehouse_http::clear_session_cookie(&app.config.session)))
}

/// `PUT /user/password`: with the current password; every other session and token ends, this
/// session continues under a new id (new cookie), and a "password changed" mail is queued.
pub async fn update_password(call: Call<'_>, SessionCaller { user_id, session }: SessionCaller) -> Reply {
    let app = call.app;
    let user = load_user(app, &user_id).await?;
    let (current, password) = call.fields(|f| {
        let current = f.secret("current_password", gatehouse_http::MAX_BODY);
        let context =
            PasswordContext { email: Some(&user.email), name: Some(&user.name), app_name: Some(&app.config.app_name) };
        let password = f.new_password_for("password", app.auth.policy(), &context);
        Some((current?, password?))
    })?;
    let attempt = gatehouse::values::password::PasswordAttempt::new(current);
    let broker = PasswordBroker::new(app.auth.clone(), app.dispatcher());
    let id = broker
        .change_password(&user, &session, attempt, password, &call.meta())
        .await
        .map_err(|e| incorrect_password(e, "current_password"))?;
    let cookie = gatehouse_http::session_cookie(&app.config.session, &id, session.remember());
    Ok(with_cookie(no_content(), cookie))
}

/// `PUT /user/password` asked again after its answer was lost
/// ([`crate::sessions::resume_own_change`]).
pub async fn update_password_retried(call: Call<'_>, refusal: ApiError) -> Reply {
    let reason = gatehouse::tables::credentials::reasons::PASSWORD_CHANGED;
    crate::sessions::resume_own_change(&call, refusal, reason).await
}
