//! Sign in (and its second-factor step), sign out, register.

use crate::form::form_or_refusal;
use crate::view::{self, Form, Input, field};
use crate::{Failure, api, failed, form_token, notice, page, renewing_csrf};
use gatehouse_http::views::TwoFactorChallengeView;
use gatehouse_http::{Call, Reply};
use lambda_http::http::{HeaderValue, Method, StatusCode};
use maud::{Markup, html};
use serde_json::json;

/// Where a browser goes once signed in: to finish a verification link it landed on before
/// signing in, else the account page.
pub(crate) fn after_sign_in(call: &Call<'_>) -> &'static str {
    if call.cookie(&crate::reset::verify_cookie_name(call)).is_some() { "/account/verify-email" } else { "/account" }
}

fn sign_in_page(call: &Call<'_>, form: &Form, notice: Option<String>, error: Option<Failure>) -> Reply {
    let (token, cookies) = form_token(call);
    let remember = form.values.contains_key("remember");
    let body = html! {
        section {
            (view::form("/account/sign-in", &token, "Sign in", html! {
                (field(form, "", Input::new("email", "Email", "email", "email")))
                (field(form, "", Input::new("password", "Password", "password", "current-password")))
                div.check {
                    input #remember type="checkbox" name="remember" value="1" checked[remember];
                    label for="remember" { "Remember me on this device" }
                }
            }))
            p.links {
                a href="/account/forgot-password" { "Forgot your password?" }
                " · "
                a href="/account/register" { "Create an account" }
            }
        }
        (crate::providers::buttons(call.app, &token))
        section aria-labelledby="pk-h" {
            h2 #pk-h { "Or use a passkey" }
            (crate::passkeys::script_form("sign-in", &token, "Sign in with a passkey", html! {
                div.check {
                    input #remember-pk type="checkbox" name="passkey_remember" value="1";
                    label for="remember-pk" { "Remember me on this device" }
                }
            }))
        }
        @if call.app.config.email_link.enabled {
            section aria-labelledby="link-h" {
                h2 #link-h { "Or get a link by email" }
                (crate::email_link::request_form(&token, &Form::default()))
            }
        }
    };
    Ok(crate::providers::allowing_providers(call.app, page(call, "Sign in", false, notice, error, body, cookies)))
}

/// `GET /account/sign-in`.
pub async fn form(call: Call<'_>) -> Reply {
    sign_in_page(&call, &Form::default(), notice(&call), None)
}

/// `POST /account/sign-in`: `POST /login`; a second factor, when the account has one, next.
pub async fn submit(call: Call<'_>) -> Reply {
    let p = form_or_refusal!(call);
    let remember = p.get("remember").is_some();
    let body = json!({ "email": p.text("email"), "password": p.text("password"), "remember": remember });
    let reply = api::call(call.app, call.req, Method::POST, "/login", Some(body)).await;
    match reply.status {
        StatusCode::OK => Ok(view::redirect(after_sign_in(&call), renewing_csrf(&call, reply.cookies))),
        StatusCode::ACCEPTED => match reply.view::<TwoFactorChallengeView>() {
            Ok(c) => challenge_page(&call, &c.challenge, None),
            Err(_) => Ok(api::broken(&call, reply.cookies)),
        },
        _ => {
            let form =
                Form::default().with_value("email", p.get("email")).with_value("remember", remember.then_some("1"));
            let (form, message) = failed(form, &reply);
            sign_in_page(&call, &form, None, Some(message))
        }
    }
}

/// The second-factor step: the challenge rides in the form's body, never in an address.
pub(crate) fn challenge_page(call: &Call<'_>, challenge: &str, error: Option<(Form, Failure)>) -> Reply {
    let (token, cookies) = form_token(call);
    let (form, error) = error.map_or((Form::default(), None), |(f, e)| (f, Some(e)));
    let hidden = |c: &str| html! { input type="hidden" name="challenge" value=(c); };
    let body: Markup = html! {
        section {
            p { "Enter the 6-digit code from your authenticator app." }
            (view::form("/account/two-factor-challenge", &token, "Continue", html! {
                (hidden(challenge))
                (field(&form, "", Input::new("code", "Authentication code", "text", "off")))
            }))
        }
        section {
            h2 { "Or use a passkey" }
            (crate::passkeys::script_form("second-factor", &token, "Use a passkey", hidden(challenge)))
        }
        section {
            h2 { "Lost your device?" }
            (view::form("/account/two-factor-challenge", &token, "Use a recovery code", html! {
                (hidden(challenge))
                (field(&form, "", Input::new("recovery_code", "Recovery code", "text", "off")))
            }))
        }
        p.links { a href="/account/sign-in" { "Start again" } }
    };
    Ok(page(call, "Two-factor authentication", false, None, error, body, cookies))
}

/// `POST /account/two-factor-challenge`: `POST /two-factor-challenge` with a code or a recovery code.
pub async fn challenge(call: Call<'_>) -> Reply {
    let p = form_or_refusal!(call);
    let challenge = p.text("challenge");
    let body = match p.get("recovery_code").filter(|c| !c.is_empty()) {
        Some(r) => json!({ "challenge": challenge, "recovery_code": r }),
        None => json!({ "challenge": challenge, "code": p.text("code") }),
    };
    let reply = api::call(call.app, call.req, Method::POST, "/two-factor-challenge", Some(body)).await;
    // 200 is a session; a challenge begun at /tokens/issue would answer 201 with a token, which
    // a page has no use for (and must not sign in with).
    if reply.status == StatusCode::OK {
        return Ok(view::redirect(after_sign_in(&call), renewing_csrf(&call, reply.cookies)));
    }
    let (form, message) = failed(Form::default(), &reply);
    challenge_page(&call, &challenge, Some((form, message)))
}

/// `POST /account/sign-out`: `POST /logout`; signed out either way.
pub async fn sign_out(call: Call<'_>) -> Reply {
    form_or_refusal!(call);
    end_session_then(&call, "/account/sign-in?notice=signed-out").await
}

/// Ends the browser's session (`POST /logout`), then goes to `to`; a store failure leaves the
/// session alive, and the browser is told so.
pub(crate) async fn end_session_then(call: &Call<'_>, to: &str) -> Reply {
    let reply = api::call(call.app, call.req, Method::POST, "/logout", None).await;
    // Signed out when the session ended, or when there was none to end; anything else (the store
    // failing) leaves the session alive, and the browser must not be told otherwise.
    if !reply.ok() && reply.status != StatusCode::UNAUTHORIZED {
        let (_, failure) = failed(Form::default(), &reply);
        let body = html! { p { "You are still signed in. " a href="/account" { "Back to your account" } } };
        return Ok(page(call, "Sign out failed", true, None, Some(failure), body, Vec::new()));
    }
    let mut cookies = reply.cookies;
    if cookies.is_empty() {
        cookies.push(gatehouse_http::clear_session_cookie(&call.app.config.session));
    }
    Ok(view::redirect(to, renewing_csrf(call, cookies)))
}

/// A cookie that removes `name` (one of the pages' own `__Host-` cookies).
pub(crate) fn clear_cookie(name: &str) -> HeaderValue {
    gatehouse_http::set_cookie(name, "", "Lax", None, Some(0))
}
