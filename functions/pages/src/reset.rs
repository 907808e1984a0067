//! The forgot-password form and the reset link's landing page (verify.rs is the other mailed link).
//!
//! A mailed link carries a secret in its address. The landing page moves it into a short-lived
//! `HttpOnly` cookie and redirects to the same page without a query, so the secret is in no
//! address after the first landing: not in the history, not in a `Referer` (every page also says
//! `no-referrer`), not in a bookmark or a screenshot of the address bar.

use crate::form::form_or_refusal;
use crate::sign_in::clear_cookie;
use crate::view::{self, Form, Frame, Input, field};
use crate::{Failure, api, failed, form_token, page};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse::tables::password_reset_tokens::PlainResetToken;
use gatehouse_http::{Call, Reply};
use lambda_http::RequestExt;
use lambda_http::http::{HeaderValue, Method, StatusCode};
use maud::html;
use serde_json::{Value, json};

fn forgot_page(call: &Call<'_>, form: &Form, notice: Option<String>, error: Option<Failure>) -> Reply {
    let (token, cookies) = form_token(call);
    let body = html! {
        section {
            p { "Enter your email address and we will email you a link to choose a new password." }
            (view::form("/account/forgot-password", &token, "Email me a reset link", html! {
                (field(form, "", Input::new("email", "Email", "email", "email")))
            }))
            p.links { a href="/account/sign-in" { "Back to sign in" } }
        }
    };
    Ok(page(call, "Forgot your password?", false, notice, error, body, cookies))
}

/// `GET /account/forgot-password`.
pub async fn forgot_form(call: Call<'_>) -> Reply {
    forgot_page(&call, &Form::default(), None, None)
}

/// `POST /account/forgot-password`: `POST /forgot-password`; the same words whether or not an
/// account exists.
pub async fn forgot(call: Call<'_>) -> Reply {
    let p = form_or_refusal!(call);
    let reply =
        api::call(call.app, call.req, Method::POST, "/forgot-password", Some(json!({ "email": p.text("email") })))
            .await;
    let form = Form::default().with_value("email", p.get("email"));
    if reply.ok() {
        // The answer's `MessageView` (a `&'static str`, not readable back) says this constant.
        let said = gatehouse_password_reset::FORGOT_MESSAGE.to_owned();
        return forgot_page(&call, &form, Some(said), None);
    }
    let (form, message) = failed(form, &reply);
    forgot_page(&call, &form, None, Some(message))
}

pub(crate) fn reset_cookie_name(call: &Call<'_>) -> String {
    crate::csrf::page_cookie_name(&call.app.config.session, "reset")
}

pub(crate) fn verify_cookie_name(call: &Call<'_>) -> String {
    crate::csrf::page_cookie_name(&call.app.config.session, "verify")
}

/// A cookie holding what a mailed link carried, for as long as such a link lives.
pub(crate) fn link_cookie(name: &str, value: &Value, max_age: i64) -> HeaderValue {
    let v = URL_SAFE_NO_PAD.encode(value.to_string());
    gatehouse_http::set_cookie(name, &v, "Lax", None, Some(max_age))
}

pub(crate) fn read_link_cookie(call: &Call<'_>, name: &str) -> Option<Value> {
    let raw = call.cookie(name)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(raw).ok()?).ok()
}

fn invalid_link(call: &Call<'_>, message: &str, cookies: Vec<HeaderValue>) -> Reply {
    let body = html! {
        p { a href="/account/forgot-password" { "Ask for a new link" } " · " a href="/account/sign-in" { "Sign in" } }
    };
    let f = Frame {
        app_name: &call.app.config.app_name,
        title: "This link does not work",
        signed_in: false,
        notice: None,
        error: Some(message.to_owned()),
    };
    Ok(view::html(StatusCode::BAD_REQUEST, view::layout(&f, body), cookies))
}

/// The form; it names the account only when given the address of a link that checked out.
fn reset_page(call: &Call<'_>, email: Option<&str>, form: &Form, error: Option<Failure>) -> Reply {
    let (token, cookies) = form_token(call);
    let min = call.app.config.passwords.min_len;
    let hint = format!("At least {min} characters.");
    let body = html! {
        section {
            @if let Some(email) = email {
                p { "Choose a new password for " strong { (email) } "." }
            } @else {
                p { "Choose a new password." }
            }
            (view::form("/account/reset-password", &token, "Reset password", html! {
                (field(form, "", Input::new("password", "New password", "password", "new-password").hint(&hint)))
                (field(form, "", Input::new("password_confirmation", "Confirm new password", "password", "new-password")))
            }))
        }
    };
    Ok(page(call, "Reset your password", false, None, error, body, cookies))
}

/// `GET /account/reset-password`: with `?token=…&email=…` (the mailed link) the link's contents
/// go into a cookie and the browser is sent to the same page without them; without a query, the
/// form for the link in the cookie. Any page can send a browser to the landing with a link of
/// its making, so the form names the address only once the link's token checks out.
pub async fn reset_form(call: Call<'_>) -> Reply {
    let name = reset_cookie_name(&call);
    let q = call.req.query_string_parameters();
    if q.first("token").is_some() || q.first("email").is_some() {
        // Only what a mailed link can hold is kept: a page elsewhere may send a browser here
        // with any text, and the form shows the address.
        let token = q.first("token").filter(|t| PlainResetToken::parse(t).is_some());
        let email = q.first("email").filter(|e| gatehouse::Email::parse(e).is_ok());
        let (Some(token), Some(email)) = (token, email) else {
            return invalid_link(&call, "This reset link is incomplete or damaged. Ask for a new one.", Vec::new());
        };
        let max_age = call.app.config.reset.expire.num_seconds();
        let cookie = link_cookie(&name, &json!({ "token": token, "email": email }), max_age);
        return Ok(view::redirect("/account/reset-password", vec![cookie]));
    }
    let Some(link) = read_link_cookie(&call, &name) else {
        return invalid_link(&call, "Open the link from your email again, or ask for a new one.", Vec::new());
    };
    let shown = checked_address(&call, &link).await;
    reset_page(&call, shown.as_ref().map(gatehouse::Email::as_str), &Form::default(), None)
}

/// The address of the link in the cookie when its token is the live one for that address (a
/// store that fails shows none: the reset itself judges the link again).
async fn checked_address(call: &Call<'_>, link: &Value) -> Option<gatehouse::Email> {
    let email = gatehouse::Email::parse(link["email"].as_str()?).ok()?;
    let token = PlainResetToken::parse(link["token"].as_str()?)?;
    let broker =
        gatehouse::services::password_broker::PasswordBroker::new(call.app.auth.clone(), call.app.dispatcher());
    broker.link_address(&email, &token).await.unwrap_or_else(|e| {
        tracing::warn!(event = "reset_link_unchecked", error = %e);
        None
    })
}

/// `POST /account/reset-password`: `POST /reset-password` with the link's token and address.
pub async fn reset(call: Call<'_>) -> Reply {
    let p = form_or_refusal!(call);
    let name = reset_cookie_name(&call);
    let Some(link) = read_link_cookie(&call, &name) else {
        return invalid_link(&call, "Open the link from your email again, or ask for a new one.", Vec::new());
    };
    let email = link["email"].as_str().unwrap_or_default().to_owned();
    let body = json!({
        "email": email,
        "token": link["token"],
        "password": p.text("password"),
        "password_confirmation": p.text("password_confirmation"),
    });
    let reply = api::call(call.app, call.req, Method::POST, "/reset-password", Some(body)).await;
    if reply.ok() {
        return Ok(view::redirect("/account/sign-in?notice=password-reset", vec![clear_cookie(&name)]));
    }
    let fields = reply.field_errors();
    if reply.code() == Some("invalid_token") || fields.contains_key("token") || fields.contains_key("email") {
        return invalid_link(
            &call,
            "This reset link is invalid or has expired. Ask for a new one.",
            vec![clear_cookie(&name)],
        );
    }
    let (form, message) = failed(Form::default(), &reply);
    let shown = checked_address(&call, &link).await;
    reset_page(&call, shown.as_ref().map(gatehouse::Email::as_str), &form, Some(message))
}
