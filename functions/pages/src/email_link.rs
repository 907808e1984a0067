//! Sign-in by mail: asking for the mail (a form on the sign-in page), the code form, and the page
//! the mailed link lands on. Asking binds this browser (the API's cookie); the link's landing
//! moves the token out of the address into a short-lived cookie (as the reset link's does) and
//! offers a button only in the browser that asked: a GET never signs in (mail scanners open
//! links), and a link opened elsewhere says to type the code where the request was made.

use crate::form::form_or_refusal;
use crate::reset::{link_cookie, read_link_cookie};
use crate::sign_in::{after_sign_in, challenge_page, clear_cookie};
use crate::view::{self, Form, Frame, Input, field};
use crate::{Failure, api, failed, form_token, page, renewing_csrf};
use gatehouse::services::email_link::{LINK_LIFETIME, LinkState, link_state};
use gatehouse_http::views::TwoFactorChallengeView;
use gatehouse_http::{Call, Reply};
use gatehouse_login::email_link::BINDING_COOKIE;
use lambda_http::http::{HeaderValue, Method, StatusCode};
use maud::{Markup, html};
use serde_json::json;

/// The cookie holding the landed link's token.
fn token_cookie_name(call: &Call<'_>) -> String {
    crate::csrf::page_cookie_name(&call.app.config.session, "email_link_token")
}

/// The form that asks for a mail (on the sign-in page too).
pub(crate) fn request_form(token: &str, form: &Form) -> Markup {
    view::form(
        "/account/email-link",
        token,
        "Email me a sign-in link",
        html! {
            (field(form, "link-", Input::new("email", "Email", "email", "email")))
            div.check {
                input #link-remember type="checkbox" name="remember" value="1";
                label for="link-remember" { "Remember me on this device" }
            }
        },
    )
}

fn request_page(call: &Call<'_>, form: &Form, error: Option<Failure>) -> Reply {
    let (token, cookies) = form_token(call);
    let body = html! {
        section {
            p { "We will email you a link and a code. Open the link in this browser, or type the code here." }
            (request_form(&token, form))
            p.links { a href="/account/sign-in" { "Sign in with a password" } }
        }
    };
    Ok(page(call, "Sign in by email", false, None, error, body, cookies))
}

fn code_page(call: &Call<'_>, error: Option<(Form, Failure)>) -> Reply {
    let (token, cookies) = form_token(call);
    let (form, error) = error.map_or((Form::default(), None), |(f, e)| (f, Some(e)));
    let body = html! {
        section {
            p { (gatehouse_login::email_link::SENT_MESSAGE) }
            (view::form("/account/email-link/complete", &token, "Sign in", html! {
                (field(&form, "", Input::new("code", "Code from the email", "text", "one-time-code")
                    .hint("Six digits. It works once, in this browser, for 15 minutes.")))
            }))
            p.links { a href="/account/sign-in" { "Ask for a new email" } }
        }
    };
    Ok(page(call, "Check your email", false, None, error, body, cookies))
}

/// A page that says why a link does nothing here (status `status`), and how to go on.
fn link_page(call: &Call<'_>, status: StatusCode, title: &str, message: &str, cookies: Vec<HeaderValue>) -> Reply {
    let f = Frame { app_name: &call.app.config.app_name, title, signed_in: false, notice: None, error: None };
    let body = html! {
        p { (message) }
        p.links { a href="/account/sign-in" { "Sign in" } }
    };
    Ok(view::html(status, view::layout(&f, body), cookies))
}

/// `GET /account/email-link`: with `?token=…` (the mailed link) the token goes into a cookie and
/// the browser comes back without it; then a button in the browser that asked, or the words for
/// any other. Without a link: the code form in a browser that asked, else the request form.
pub async fn landing(call: Call<'_>) -> Reply {
    let name = token_cookie_name(&call);
    if let Some(token) = call.query("token") {
        // Only what a mailed link can hold is kept: any page can send a browser here.
        if !gatehouse::values::secret::is_token_256(&token) {
            let why = "This sign-in link is incomplete or damaged. Ask for a new one.";
            return link_page(&call, StatusCode::BAD_REQUEST, "This link does not work", why, Vec::new());
        }
        let cookie = link_cookie(&name, &json!({ "token": token }), LINK_LIFETIME.num_seconds());
        return Ok(view::redirect("/account/email-link", vec![cookie]));
    }
    let binding = call.cookie(BINDING_COOKIE);
    let Some(link) = read_link_cookie(&call, &name) else {
        return match binding {
            Some(_) => code_page(&call, None),
            None => request_page(&call, &Form::default(), None),
        };
    };
    let token = link["token"].as_str().unwrap_or_default();
    match link_state(&call.app.auth, token, binding.as_deref()).await {
        Ok(LinkState::Ready) => {
            let (csrf, cookies) = form_token(&call);
            let body = html! {
                p { "You asked to sign in from this browser." }
                (view::form("/account/email-link/complete", &csrf, "Finish signing in", html! {}))
            };
            Ok(page(&call, "Finish signing in", false, None, None, body, cookies))
        }
        Ok(LinkState::OtherBrowser) => {
            let why = "This link was asked for in another browser, so it does not sign in here. Type the code from the email in the browser where you asked, or ask for a new email here.";
            link_page(&call, StatusCode::OK, "Use the code instead", why, vec![clear_cookie(&name)])
        }
        Ok(LinkState::Invalid) => {
            let why = "This sign-in link is invalid, has expired or was already used. Ask for a new one.";
            link_page(&call, StatusCode::BAD_REQUEST, "This link does not work", why, vec![clear_cookie(&name)])
        }
        Err(e) => {
            tracing::warn!(event = "email_link_unchecked", error = %e);
            let why = "Something went wrong on our side. Please try again.";
            link_page(&call, StatusCode::SERVICE_UNAVAILABLE, "Please try again", why, Vec::new())
        }
    }
}

/// `POST /account/email-link`: `POST /auth/email-link`, then the code form (the same whether or
/// not the address has an account).
pub async fn request(call: Call<'_>) -> Reply {
    let p = form_or_refusal!(call);
    let remember = p.get("remember").is_some();
    let body = json!({ "email": p.text("email"), "remember": remember });
    let reply = api::call(call.app, call.req, Method::POST, "/auth/email-link", Some(body)).await;
    if reply.ok() {
        // The binding cookie goes to the browser (an earlier link landed here is forgotten);
        // the code form is the next page.
        let mut cookies = reply.cookies;
        cookies.push(clear_cookie(&token_cookie_name(&call)));
        return Ok(view::redirect("/account/email-link", cookies));
    }
    let form = Form::default().with_value("email", p.get("email"));
    let (form, message) = failed(form, &reply);
    request_page(&call, &form, Some(message))
}

/// `POST /account/email-link/complete`: `POST /auth/email-link/complete` with the code typed, or
/// the landed link's token; a second factor, when the account has one, next.
pub async fn complete(call: Call<'_>) -> Reply {
    let p = form_or_refusal!(call);
    let name = token_cookie_name(&call);
    let code = p.get("code").filter(|c| !c.trim().is_empty());
    let body = match (code, read_link_cookie(&call, &name)) {
        (Some(code), _) => json!({ "code": code }),
        (None, Some(link)) => json!({ "token": link["token"] }),
        (None, None) => {
            let why = "Open the link from your email again, or type its code.";
            return link_page(&call, StatusCode::BAD_REQUEST, "This link does not work", why, Vec::new());
        }
    };
    let reply = api::call(call.app, call.req, Method::POST, "/auth/email-link/complete", Some(body)).await;
    match reply.status {
        StatusCode::OK | StatusCode::CREATED => {
            let mut cookies = reply.cookies;
            cookies.push(clear_cookie(&name));
            Ok(view::redirect(after_sign_in(&call), renewing_csrf(&call, cookies)))
        }
        StatusCode::ACCEPTED => match reply.view::<TwoFactorChallengeView>() {
            Ok(c) => challenge_page(&call, &c.challenge, None),
            Err(_) => Ok(api::broken(&call, reply.cookies)),
        },
        _ if code.is_some() => code_page(&call, Some(failed(Form::default(), &reply))),
        status => {
            let cookies = vec![clear_cookie(&name)];
            let status = if status.is_client_error() { status } else { StatusCode::SERVICE_UNAVAILABLE };
            link_page(&call, status, "This link does not work", &reply.message(), cookies)
        }
    }
}
