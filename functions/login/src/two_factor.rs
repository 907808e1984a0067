//! Second factors (Fortify's two-factor routes): enrol, confirm, disable, new recovery codes, and
//! the challenge that completes a sign-in.

use crate::{load_user, with_cookie};
use gatehouse::services::sign_in::{Answer, Pending};
use gatehouse::services::{sign_in, two_factor};
use gatehouse_http::views::{EnrolmentView, RecoveryCodesView, TwoFactorChallengeView, UserBody};
use gatehouse_http::{Call, Reply, SessionCaller, json, no_content};
use lambda_http::http::StatusCode;

/// 202 to a sign-in whose password was right for a user with a second factor: the challenge to
/// complete with `POST /two-factor-challenge`. No cookie, no token.
pub fn challenged(app: &gatehouse_http::App, c: &sign_in::ChallengeToken) -> lambda_http::Response<lambda_http::Body> {
    json(StatusCode::ACCEPTED, &TwoFactorChallengeView::new(c, app.access.now()))
}

/// `POST /user/two-factor-authentication`: a pending secret, its `otpauth://` URI and QR code.
pub async fn enable(call: Call<'_>, SessionCaller { user_id, session }: SessionCaller) -> Reply {
    let app = call.app;
    let user = load_user(app, &user_id).await?;
    let e = two_factor::enable(&app.auth, &user, &session).await?;
    Ok(json(StatusCode::OK, &EnrolmentView { secret: e.secret, otpauth_url: e.otpauth_url, qr_svg: e.qr_svg }))
}

/// `POST /user/confirmed-two-factor-authentication`: turns it on with a valid code; the recovery
/// codes, once. Every other session and token of the user ends (they were issued on a password
/// alone), and this session continues under a new cookie.
pub async fn confirm(call: Call<'_>, SessionCaller { user_id, session }: SessionCaller) -> Reply {
    let code = call.fields(|f| f.text("code", 16))?;
    let app = call.app;
    let user = load_user(app, &user_id).await?;
    let (codes, rotated) =
        two_factor::confirm(&app.auth, &app.dispatcher(), &user, &session, &code, &call.meta()).await?;
    let resp = json(StatusCode::OK, &RecoveryCodesView { recovery_codes: codes.0 });
    // Every other session and token ended; this one goes on under a new id.
    Ok(match rotated {
        Some(id) => with_cookie(resp, gatehouse_http::session_cookie(&app.config.session, &id, session.remember())),
        None => resp,
    })
}

/// `DELETE /user/two-factor-authentication`.
pub async fn disable(call: Call<'_>, SessionCaller { user_id, session }: SessionCaller) -> Reply {
    let app = call.app;
    let user = load_user(app, &user_id).await?;
    two_factor::disable(&app.auth, &app.dispatcher(), &user, &session).await?;
    Ok(no_content())
}

/// `POST /user/two-factor-recovery-codes`: ten new codes, once.
pub async fn regenerate(call: Call<'_>, SessionCaller { user_id, session }: SessionCaller) -> Reply {
    let app = call.app;
    let user = load_user(app, &user_id).await?;
    let codes = two_factor::regenerate_recovery_codes(&app.auth, &app.dispatcher(), &user, &session).await?;
    Ok(json(StatusCode::OK, &RecoveryCodesView { recovery_codes: codes.0 }))
}

/// `POST /two-factor-challenge`: `{challenge, code}`, `{challenge, recovery_code}` or
/// `{challenge, passkey}` (an assertion for `POST /passkeys/options`' ceremony) completes a
/// sign-in that `/login` (a session, 200 and the cookie) or `/tokens/issue` (a token, 201) began.
pub async fn challenge(call: Call<'_>) -> Reply {
    let app = call.app;
    // It may set the session cookie: a page elsewhere must not sign a browser in.
    gatehouse_http::check_origin(call.req, &app.config.session)?;
    let (token, answer) = call.fields(|f| {
        let token = f.secret("challenge", 128);
        let code = f.optional_text("code", 16);
        let recovery = f.optional_text("recovery_code", 64);
        let passkey = f.optional_object("passkey", crate::passkeys::MAX_CREDENTIAL);
        let answer = match (code, recovery, passkey) {
            (Some(c), None, None) => Some(Answer::Code(c)),
            (None, Some(r), None) => Some(Answer::RecoveryCode(r)),
            (None, None, Some(p)) => Some(Answer::Passkey(p)),
            // None is required on its own: said once the challenge itself is there.
            _ if token.is_some() => {
                f.error("code", "give one of code, recovery_code or passkey");
                None
            }
            _ => None,
        };
        Some((token?, answer?))
    })?;
    let meta = call.meta();
    let sign_in::Completed { user, pending, taken, method } =
        sign_in::complete(&app.auth, &app.dispatcher(), &token, answer, &meta).await?;
    // Closed once issued: the same request again is then a replay; until then (a 503 below) it
    // finishes this sign-in.
    let cache = app.auth.stores().cache.as_ref();
    match pending {
        Pending::Session { remember } => {
            let device = call.cookie(&gatehouse_http::device_cookie_name(&app.config.session));
            let opened = app.auth.open_session(&user, remember, &meta, device.as_deref(), (method, true)).await?;
            taken.close(cache).await;
            let resp = json(StatusCode::OK, &UserBody::from(&user));
            let resp =
                with_cookie(resp, gatehouse_http::session_cookie(&app.config.session, &opened.session, remember));
            // Signed in: this device now has its own login count, as after a one-factor login.
            Ok(gatehouse_http::remember_device(app, resp, opened.device_cookie.as_deref()))
        }
        Pending::Token { name, abilities, expires_in_minutes } => {
            let req = gatehouse::services::token_issuer::TokenRequest {
                name,
                abilities: gatehouse::tables::personal_access_tokens::Abilities::new(abilities),
                expires_in_minutes,
            };
            app.auth.before_sign_in(&user, method.as_str(), &meta).await?;
            let t =
                gatehouse::services::token_issuer::TokenIssuer::new(&app.access).for_password_check(&user, req).await?;
            taken.close(cache).await;
            Ok(json(StatusCode::CREATED, &gatehouse_http::views::NewTokenView::from(t)))
        }
    }
}
