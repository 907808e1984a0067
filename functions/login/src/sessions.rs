//! "This session" and the user's sessions: the list, ending one, logging out other devices and
//! confirming the password.

use crate::{load_user, with_cookie};
use gatehouse::services::access::Principal;
use gatehouse::services::auth::AuthError;
use gatehouse::values::password::PasswordAttempt;
use gatehouse_http::views::{ConfirmedView, SessionView, SessionsBody};
use gatehouse_http::{ApiError, Call, Reply, SessionCaller, json, no_content};
use lambda_http::http::StatusCode;

pub(crate) async fn list(call: Call<'_>, caller: Principal) -> Reply {
    let current = match &caller {
        Principal::Session { key, .. } => Some(key),
        Principal::Token { .. } => None,
    };
    // The factors come from the user, read beside the sessions' query.
    let (list, user) =
        tokio::join!(call.app.stores.sessions.list_for_user(caller.user_id()), load_user(call.app, caller.user_id()));
    let (list, user) = (list?, user?);
    let key = &call.app.config.app_key;
    let handle = |s: &gatehouse::tables::sessions::SessionRecord| key.session_handle(caller.user_id(), &s.key);
    let sessions = list.iter().map(|s| SessionView::new(s, current, handle(s))).collect();
    let body = SessionsBody {
        sessions,
        two_factor_enabled: user.two_factor.enabled(),
        passkeys: user.passkeys.len(),
        known_devices: user.devices.len(),
    };
    Ok(json(StatusCode::OK, &body))
}

/// The `password` field of a body that carries only the user's current password.
pub(crate) fn password_field(call: &Call<'_>) -> Result<PasswordAttempt, ApiError> {
    call.fields(|f| f.secret("password", gatehouse_http::MAX_BODY)).map(PasswordAttempt::new)
}

/// A wrong password, said beside the field that carried it.
pub(crate) fn incorrect_password(e: AuthError, field: &str) -> ApiError {
    match e {
        AuthError::InvalidCredentials => ApiError::field(field, "is incorrect"),
        e => e.into(),
    }
}

/// Ends every other session and credential; this session continues under a new id (new cookie).
pub(crate) async fn logout_other_devices(call: Call<'_>, SessionCaller { user_id, session }: SessionCaller) -> Reply {
    let password = password_field(&call)?;
    let user = load_user(call.app, &user_id).await?;
    let auth = &call.app.auth;
    let id = auth
        .logout_other_devices(&user, &session, password, &call.meta())
        .await
        .map_err(|e| incorrect_password(e, "password"))?;
    let cookie = gatehouse_http::session_cookie(&call.app.config.session, &id, session.remember());
    Ok(with_cookie(no_content(), cookie))
}

/// Laravel's `password.confirm`: proves the password again in this session, for the actions that
/// need a recent confirmation (minting an all-abilities or never-expiring token).
pub(crate) async fn confirm_password(call: Call<'_>, SessionCaller { user_id, session }: SessionCaller) -> Reply {
    let password = password_field(&call)?;
    let user = load_user(call.app, &user_id).await?;
    let auth = &call.app.auth;
    match auth
        .confirm_password(&user, &session.key, password, &call.meta())
        .await
        .map_err(|e| incorrect_password(e, "password"))?
    {
        true => Ok(no_content()),
        false => Err(ApiError::unauthenticated()),
    }
}

/// Whether the password was confirmed recently enough in this session (Fortify's route).
pub(crate) async fn confirmed_password_status(call: Call<'_>, SessionCaller { session, .. }: SessionCaller) -> Reply {
    let confirmed = call.app.access.password_recently_confirmed(session.password_confirmed_at);
    Ok(json(StatusCode::OK, &ConfirmedView { confirmed }))
}

/// `DELETE /sessions/{id}`: ends one of the user's sessions (an `id` from `GET /sessions`) and
/// everything derived from it; ending the current one logs out (the cookie is cleared). Another
/// session is found through the register ([`gatehouse::services::auth::Auth::end_session`]), so a retry
/// after a 503 finds it again; ending the current one, see [`end_retried`].
pub(crate) async fn end(call: Call<'_>, SessionCaller { user_id, session: current }: SessionCaller) -> Reply {
    // A session another app's handoff opened ends itself (`POST /logout`), never the user's others.
    gatehouse::services::auth::refuse_derived(&current)?;
    let app = call.app;
    match app.auth.end_session(&user_id, call.param(0)).await? {
        None => Err(ApiError::not_found()),
        Some(key) if key == current.key => {
            Ok(with_cookie(no_content(), gatehouse_http::clear_session_cookie(&app.config.session)))
        }
        Some(_) => Ok(no_content()),
    }
}

/// `DELETE /sessions/{id}` of this session asked again: [`ended_by_retry`].
pub(crate) async fn end_retried(call: Call<'_>, refusal: ApiError) -> Reply {
    ended_by_retry(&call, refusal, Some(call.param(0))).await
}

/// The retry of ending this session (`POST /logout`, or `DELETE /sessions/{id}` with its own
/// `handle`) whose first attempt took the session, refused now (`refusal`, a 401) because of
/// that attempt's own success: when the domain finishes what the first attempt left
/// ([`gatehouse::services::auth::Auth::finish_ended_session`]), the answer is the first attempt's, 204
/// with the cookie cleared. Anything else is the refusal.
pub(crate) async fn ended_by_retry(call: &Call<'_>, refusal: ApiError, handle: Option<&str>) -> Reply {
    use gatehouse::tables::credentials::reasons::{LOGOUT, USER_REVOKED};
    let (app, reason) = (call.app, if handle.is_some() { USER_REVOKED } else { LOGOUT });
    let Some(cookie) = call.cookie(&app.config.session.cookie_name) else { return Err(refusal) };
    if refusal.status != StatusCode::UNAUTHORIZED || !app.auth.finish_ended_session(&cookie, handle, reason).await? {
        return Err(refusal);
    }
    Ok(with_cookie(no_content(), gatehouse_http::clear_session_cookie(&app.config.session)))
}

/// A password change retried after its answer was lost: the session that made it is refused now
/// (`refusal`, a 401) because of the change itself. When the domain recognises the retry
/// ([`Auth::resume_own_change`]: this session made the user's latest change minutes ago and the
/// `password` field is the password it set), the answer is the change's own: 204 and the
/// continuing session's cookie. Anything else is the refusal.
///
/// [`Auth::resume_own_change`]: gatehouse::services::auth::Auth::resume_own_change
pub(crate) async fn resume_own_change(call: &Call<'_>, refusal: ApiError, reason: &str) -> Reply {
    if refusal.status != 401 {
        return Err(refusal);
    }
    let Some(id) = call.session_id()? else { return Err(refusal) };
    let Ok(password) = password_field(call) else { return Err(refusal) };
    let app = call.app;
    match app.auth.resume_own_change(&id, password, reason, &call.meta()).await? {
        Some((rotated, remember)) => {
            let cookie = gatehouse_http::session_cookie(&app.config.session, &rotated, remember);
            Ok(with_cookie(no_content(), cookie))
        }
        None => Err(refusal),
    }
}
