//! Create an account.

use crate::form::form_or_refusal;
use crate::view::{self, Form, Input, field};
use crate::{Failure, api, failed, form_token, page, renewing_csrf};
use gatehouse_http::{Call, Reply};
use lambda_http::http::Method;
use maud::html;

fn register_page(call: &Call<'_>, form: &Form, error: Option<Failure>) -> Reply {
    let (token, cookies) = form_token(call);
    let min = call.app.config.passwords.min_len;
    let hint = format!("At least {min} characters. A long phrase is easiest to remember.");
    let body = html! {
        section {
            (view::form("/account/register", &token, "Create account", html! {
                (field(form, "", Input::new("name", "Name", "text", "name")))
                (field(form, "", Input::new("email", "Email", "email", "email")))
                (field(form, "", Input::new("password", "Password", "password", "new-password").hint(&hint)))
                (field(form, "", Input::new("password_confirmation", "Confirm password", "password", "new-password")))
            }))
            p.links { "Already registered? " a href="/account/sign-in" { "Sign in" } }
        }
        (crate::providers::buttons(call.app, &token))
    };
    Ok(crate::providers::allowing_providers(
        call.app,
        page(call, "Create an account", false, None, error, body, cookies),
    ))
}

/// `GET /account/register`.
pub async fn register_form(call: Call<'_>) -> Reply {
    register_page(&call, &Form::default(), None)
}

/// `POST /account/register`: `POST /register`, then the account page, signed in.
pub async fn register(call: Call<'_>) -> Reply {
    let p = form_or_refusal!(call);
    let body = p.body(&["name", "email", "password", "password_confirmation"]);
    let reply = api::call(call.app, call.req, Method::POST, "/register", Some(body)).await;
    if reply.ok() {
        return Ok(view::redirect("/account?notice=registered", renewing_csrf(&call, reply.cookies)));
    }
    let form = Form::default().with_value("name", p.get("name")).with_value("email", p.get("email"));
    let (form, message) = failed(form, &reply);
    register_page(&call, &form, Some(message))
}
