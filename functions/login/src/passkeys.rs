//! Passkeys: register one from a signed-in session, list and remove them, and sign in with one
//! alone (usernameless). The ceremonies are `gatehouse::services::passkeys`'.

use crate::{load_user, with_cookie};
use gatehouse::services::access::Principal;
use gatehouse::services::passkeys;
use gatehouse::values::relying_party::RelyingParty;
use gatehouse_http::views::{PasskeyOptionsView, PasskeyView, PasskeysView, UserBody};
use gatehouse_http::{ApiError, Call, Reply, SessionCaller, json, no_content};
use lambda_http::http::StatusCode;

/// The largest WebAuthn response read (an attestation with a certificate chain fits).
pub const MAX_CREDENTIAL: usize = 16 * 1024;

fn rp(call: &Call<'_>) -> Result<RelyingParty, ApiError> {
    Ok(passkeys::relying_party(&call.app.config)?)
}

/// `POST /user/passkeys/options`: the options for `navigator.credentials.create()`, for a
/// session with a recent password confirmation.
pub async fn registration_options(call: Call<'_>, SessionCaller { user_id, session }: SessionCaller) -> Reply {
    let app = call.app;
    let user = load_user(app, &user_id).await?;
    let options = passkeys::begin_registration(&app.auth, &rp(&call)?, &user, &session).await?;
    Ok(json(StatusCode::OK, &PasskeyOptionsView { public_key: options }))
}

/// `POST /user/passkeys`: `{name, credential}`, the browser's answer to those options.
pub async fn register(call: Call<'_>, SessionCaller { user_id, session }: SessionCaller) -> Reply {
    let (name, credential) = call.fields(|f| {
        let name = f.text("name", passkeys::MAX_NAME);
        let credential = f.object("credential", MAX_CREDENTIAL);
        Some((name?, credential?))
    })?;
    let app = call.app;
    let user = load_user(app, &user_id).await?;
    let rp = rp(&call)?;
    let passkey =
        passkeys::finish_registration(&app.auth, &rp, &app.dispatcher(), &user, &session, &name, credential.as_bytes())
            .await?;
    Ok(json(StatusCode::CREATED, &PasskeyView::from(&passkey)))
}

/// `GET /user/passkeys`.
pub async fn list(call: Call<'_>, caller: Principal) -> Reply {
    let user = load_user(call.app, caller.user_id()).await?;
    Ok(json(StatusCode::OK, &PasskeysView { passkeys: user.passkeys.iter().map(PasskeyView::from).collect() }))
}

/// `DELETE /user/passkeys/{id}`, with a recent password confirmation.
pub async fn remove(call: Call<'_>, SessionCaller { user_id, session }: SessionCaller) -> Reply {
    let id = call.param(0).to_owned();
    let app = call.app;
    let user = load_user(app, &user_id).await?;
    passkeys::remove(&app.auth, &app.dispatcher(), &user, &session, &id).await?;
    Ok(no_content())
}

/// `POST /passkeys/options`: options for `navigator.credentials.get()`, for signing in with a
/// passkey alone or answering a two-factor challenge with one.
pub async fn sign_in_options(call: Call<'_>) -> Reply {
    // Another site's page must not spend this client's count (a cross-site POST needs no CORS).
    gatehouse_http::check_origin(call.req, &call.app.config.session)?;
    let options = passkeys::begin_sign_in(&call.app.auth, &rp(&call)?, &call.meta()).await?;
    Ok(json(StatusCode::OK, &PasskeyOptionsView { public_key: options }))
}

/// `POST /passkeys/login`: `{credential, remember?}` signs in (the session cookie), as `/login`
/// does, without a password and without a second factor (the passkey verified its user).
pub async fn login(call: Call<'_>) -> Reply {
    let app = call.app;
    // It sets the session cookie: a page elsewhere must not sign a browser in.
    gatehouse_http::check_origin(call.req, &app.config.session)?;
    let (credential, remember) = call.fields(|f| {
        let credential = f.object("credential", MAX_CREDENTIAL);
        let remember = f.optional_bool("remember").unwrap_or(false);
        Some((credential?, remember))
    })?;
    let meta = call.meta();
    let passkeys::Asserted { user, taken } =
        passkeys::assert(&app.auth, &rp(&call)?, credential.as_bytes(), &meta).await?;
    // Not a password confirmation: the password-gated actions still ask for the password.
    let device = call.cookie(&gatehouse_http::device_cookie_name(&app.config.session));
    let opened = app
        .auth
        .open_session(
            &user,
            remember,
            &meta,
            device.as_deref(),
            (gatehouse::tables::events::SessionMethod::Passkey, true),
        )
        .await?;
    // Closed once issued: the same assertion again is then a replay; until then (a 503 above) it
    // finishes this sign-in.
    taken.close(app.auth.stores().cache.as_ref()).await;
    let resp = json(StatusCode::OK, &UserBody::from(&user));
    let resp = with_cookie(resp, gatehouse_http::session_cookie(&app.config.session, &opened.session, remember));
    Ok(gatehouse_http::remember_device(app, resp, opened.device_cookie.as_deref()))
}
