//! Two-factor authentication from the account page: set up (the QR code, then a code), the
//! recovery codes shown once, and turning it off.

use crate::account::to_sign_in;
use crate::actions::{act, confirm_password, confirmed_call, refused};
use crate::form::form_or_refusal;
use crate::view::{self, Form, Input, field};
use crate::{Failure, api, failed, form_token, page};
use base64::Engine;
use gatehouse_http::views::{EnrolmentView, RecoveryCodesView};
use gatehouse_http::{Call, Reply};
use lambda_http::http::{Method, StatusCode};
use maud::{Markup, html};
use serde_json::json;

/// The account page's two-factor section: set it up, or (when on) new recovery codes and turning
/// it off; each asks for the password, when the account has one (`rc`, `tf`: the refilled forms).
pub(crate) fn section(token: &str, enabled: bool, has_password: bool, (rc, tf): (&Form, &Form)) -> Markup {
    let password = |form: &Form, prefix: &str| crate::passwordless::password_field(has_password, form, prefix);
    html! {
        section aria-labelledby="tf-h" {
            h2 #tf-h { "Two-factor authentication" }
            @if enabled {
                p { "On: signing in asks for a code from your authenticator app." }
                (view::form("/account/two-factor/recovery-codes", token, "Make new recovery codes", password(rc, "rc-")))
                (view::form("/account/two-factor/disable", token, "Turn off two-factor authentication", password(tf, "tf-")))
            } @else {
                p { "Off. With it on, a stolen password is not enough to sign in." }
                (view::form("/account/two-factor/enable", token, "Set up two-factor authentication", password(tf, "tf-")))
            }
        }
    }
}

/// `POST /account/two-factor/enable`: the password confirmed, then `POST
/// /user/two-factor-authentication`; the QR code and the code form.
pub async fn enable_two_factor(call: Call<'_>) -> Reply {
    let p = form_or_refusal!(call);
    match confirmed_call(&call, &p, Method::POST, "/user/two-factor-authentication", "tf-").await {
        Ok(reply) => match reply.view::<EnrolmentView>() {
            Ok(e) => enrol_page(&call, Some(&e), None),
            Err(_) => Ok(api::broken(&call, reply.cookies)),
        },
        Err(page) => page,
    }
}

fn enrol_page(call: &Call<'_>, enrolment: Option<&EnrolmentView>, error: Option<(Form, Failure)>) -> Reply {
    let (token, cookies) = form_token(call);
    let (form, error) = error.map_or((Form::default(), None), |(f, e)| (f, Some(e)));
    let body = html! {
        section {
            @if let Some(e) = enrolment {
                p { "Scan this code with your authenticator app, or type the key below into it." }
                img.qr alt="QR code of your two-factor secret" src={ "data:image/svg+xml;base64,"
                    (base64::engine::general_purpose::STANDARD.encode(&e.qr_svg)) };
                p { "Key: " code.secret { (e.secret) } }
            }
            (view::form("/account/two-factor/confirm", &token, "Turn on", html! {
                (field(&form, "", Input::new("code", "The 6-digit code your app shows", "text", "off")))
            }))
            p.links { a href="/account" { "Cancel" } }
        }
    };
    Ok(page(call, "Set up two-factor authentication", true, None, error, body, cookies))
}

/// `POST /account/two-factor/confirm`: `POST /user/confirmed-two-factor-authentication`; the
/// recovery codes, this once.
pub async fn confirm_two_factor(call: Call<'_>) -> Reply {
    let p = form_or_refusal!(call);
    let body = json!({ "code": p.text("code") });
    let reply =
        api::call(call.app, call.req, Method::POST, "/user/confirmed-two-factor-authentication", Some(body)).await;
    if reply.status == StatusCode::UNAUTHORIZED {
        return to_sign_in();
    }
    if !reply.ok() {
        let error = failed(Form::default(), &reply);
        return enrol_page(&call, None, Some(error));
    }
    codes_page(&call, &reply, "Two-factor authentication is on.")
}

/// The recovery codes in `reply`, shown this once.
fn codes_page(call: &Call<'_>, reply: &api::ApiReply, what: &str) -> Reply {
    let Ok(RecoveryCodesView { recovery_codes: codes }) = reply.view() else {
        return Ok(api::broken(call, reply.cookies.clone()));
    };
    let body = html! {
        section {
            p { (what) " Keep these recovery codes somewhere safe: each signs you in once if you lose your device. They will not be shown again." }
            ul.codes #recovery-codes { @for c in &codes { li { code { (c) } } } }
            p.links { a href="/account" { "Done" } }
        }
    };
    Ok(page(call, "Your recovery codes", true, None, None, body, reply.cookies.clone()))
}

/// `POST /account/two-factor/recovery-codes`: the password confirmed, then `POST
/// /user/two-factor-recovery-codes`; the new codes, this once (the old ones stop working).
pub async fn new_recovery_codes(call: Call<'_>) -> Reply {
    let p = form_or_refusal!(call);
    match confirmed_call(&call, &p, Method::POST, "/user/two-factor-recovery-codes", "rc-").await {
        Ok(reply) => codes_page(&call, &reply, "Your old recovery codes no longer work."),
        Err(page) => page,
    }
}

/// `POST /account/two-factor/disable`: the password confirmed, then `DELETE /user/two-factor-authentication`.
pub async fn disable_two_factor(call: Call<'_>) -> Reply {
    let p = form_or_refusal!(call);
    if let Err(reply) = confirm_password(&call, &p).await {
        return refused(&call, &reply, ("tf-", Form::default())).await;
    }
    act(&call, Method::DELETE, "/user/two-factor-authentication", None, "two-factor-disabled", ("tf-", Form::default()))
        .await
}
