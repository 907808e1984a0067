//! The `pages` function: the screens a person sees — sign in (with the second-factor step),
//! register, forgot and reset password, the email verification landing, and the account page
//! (profile, password, two-factor, sessions, tokens, deletion) — server-rendered HTML that works
//! without JavaScript.
//!
//! Each page handler reads a form, checks its CSRF token ([`csrf`]) and calls the JSON API's own
//! route tables in process ([`api`]) as the browser's request, so every rule is the API's; then it
//! answers with a redirect (after a success, Post/Redirect/Get) or the page again with the errors
//! in words beside their fields.

pub mod api;
pub mod csrf;
mod respond;
pub mod view;

mod account;
mod actions;
mod apps;
mod email_link;
mod form;
mod identities;
mod lists;
mod notices;
mod oauth;
mod oauth_consent;
mod oauth_logout;
mod oauth_pending;
mod passkeys;
mod passwordless;
mod providers;
mod register;
mod reset;
mod sign_in;
mod two_factor;
mod verify;

use gatehouse_http::{App, Call, Guard, Reply, Route, route};
use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};
use maud::html;
use view::Frame;

pub(crate) use form::{Failure, Posted, failed, page, posted, renewing_csrf};
pub(crate) use notices::notice;

/// Serves one request through [`ROUTES`]; a path no page has answers an HTML 404.
pub async fn handle(app: &App, req: Request) -> Response<Body> {
    if gatehouse_http::find(ROUTES, req.method().as_str(), req.uri().path()).is_none() {
        let f = Frame {
            app_name: &app.config.app_name,
            title: "Page not found",
            signed_in: false,
            notice: None,
            error: None,
        };
        let body = html! { p { "There is no page at this address." } p { a href="/account" { "Go to your account" } } };
        let status = gatehouse_http::no_route(ROUTES, req.uri().path()).status;
        return view::html(status, view::layout(&f, body), Vec::new());
    }
    gatehouse_http::dispatch(app, ROUTES, req).await
}

/// What this function serves. Every route is public at the gateway and in the router: the API
/// routes a page calls in process ([`api`]) go through the same dispatch, whose guards judge the
/// browser's session cookie.
pub static ROUTES: &[Route] = &[
    route!(GET "/account", Guard::Public, account::show),
    route!(GET "/account/assets/{file}", Guard::Public, stylesheet),
    route!(GET "/account/sign-in", Guard::Public, sign_in::form),
    route!(POST "/account/sign-in", Guard::Public, sign_in::submit),
    route!(POST "/account/two-factor-challenge", Guard::Public, sign_in::challenge),
    route!(POST "/account/sign-out", Guard::Public, sign_in::sign_out),
    route!(GET "/account/email-link", Guard::Public, email_link::landing),
    route!(POST "/account/email-link", Guard::Public, email_link::request),
    route!(POST "/account/email-link/complete", Guard::Public, email_link::complete),
    route!(GET "/account/register", Guard::Public, register::register_form),
    route!(POST "/account/register", Guard::Public, register::register),
    route!(GET "/account/forgot-password", Guard::Public, reset::forgot_form),
    route!(POST "/account/forgot-password", Guard::Public, reset::forgot),
    route!(GET "/account/reset-password", Guard::Public, reset::reset_form),
    route!(POST "/account/reset-password", Guard::Public, reset::reset),
    route!(GET "/account/verify-email/{id}/{hash}", Guard::Public, verify::verify_landing),
    route!(GET "/account/verify-email", Guard::Public, verify::verify),
    route!(POST "/account/verification", Guard::Public, actions::resend_verification),
    route!(POST "/account/confirm-by-email", Guard::Public, passwordless::send_code),
    route!(POST "/account/confirm-by-email/verify", Guard::Public, passwordless::verify_code),
    route!(POST "/account/profile", Guard::Public, actions::profile),
    route!(POST "/account/password", Guard::Public, actions::password),
    route!(POST "/account/sessions/others", Guard::Public, actions::other_devices),
    route!(POST "/account/sessions/{id}/end", Guard::Public, actions::end_session),
    route!(POST "/account/tokens", Guard::Public, actions::create_token),
    route!(POST "/account/tokens/{id}/revoke", Guard::Public, actions::revoke_token),
    route!(POST "/account/two-factor/enable", Guard::Public, two_factor::enable_two_factor),
    route!(POST "/account/two-factor/confirm", Guard::Public, two_factor::confirm_two_factor),
    route!(POST "/account/two-factor/disable", Guard::Public, two_factor::disable_two_factor),
    route!(POST "/account/two-factor/recovery-codes", Guard::Public, two_factor::new_recovery_codes),
    route!(POST "/account/delete", Guard::Public, actions::delete),
    route!(POST "/account/passkeys", Guard::Public, passkeys::without_script),
    route!(POST "/account/passkeys/remove", Guard::Public, passkeys::remove),
    route!(POST "/account/oauth-apps/{client_id}/disconnect", Guard::Public, apps::disconnect),
    route!(GET "/account/oauth/authorize", Guard::Public, oauth::authorize),
    route!(POST "/account/oauth/authorize", Guard::Public, oauth::decide),
    route!(GET "/account/oauth/logout", Guard::Public, oauth_logout::logout),
    route!(POST "/account/oauth/logout", Guard::Public, oauth_logout::logout_confirmed),
    route!(POST "/account/providers/{provider}", Guard::Public, providers::start),
    route!(POST "/account/providers/{provider}/link", Guard::Public, providers::link),
    route!(GET "/account/providers/{provider}/callback", Guard::Public, providers::callback),
    route!(POST "/account/providers/{provider}/callback", Guard::Public, providers::callback),
    route!(POST "/account/identities/{id}/unlink", Guard::Public, providers::unlink),
];

/// What this function's code does to AWS: what the three functions whose routes it calls do.
pub fn permissions() -> Vec<(&'static str, &'static [&'static str])> {
    [gatehouse_login::PERMISSIONS, gatehouse_tokens::PERMISSIONS, gatehouse_password_reset::PERMISSIONS, OAUTH].concat()
}

/// The authorization endpoint's own: the client read, the consent read and recorded (through the
/// register, with the user's version checked), the code stored.
const OAUTH: &[(&str, &[&str])] = &[
    ("table/oauth_clients", &["dynamodb:GetItem"]),
    ("table/oauth_consents", &["dynamodb:GetItem", "dynamodb:PutItem"]),
    ("table/oauth_auth_codes", &["dynamodb:PutItem"]),
];

async fn stylesheet(call: Call<'_>) -> Reply {
    Ok(view::stylesheet(call.param(0)).unwrap_or_else(|| {
        let f = Frame {
            app_name: &call.app.config.app_name,
            title: "Not found",
            signed_in: false,
            notice: None,
            error: None,
        };
        view::html(StatusCode::NOT_FOUND, view::layout(&f, html! {}), Vec::new())
    }))
}

/// The CSRF token for the forms of the page being rendered, and the pre-session cookie to set
/// when the browser has no binding yet.
pub(crate) fn form_token(call: &Call<'_>) -> (String, Vec<HeaderValue>) {
    let cfg = &call.app.config.session;
    let now = call.app.access.now();
    match csrf::binding(call.req, cfg) {
        Some(b) => (csrf::token(&call.app.config.app_key, &b, now), Vec::new()),
        None => {
            let (binding, cookie) = csrf::new_binding(call.req, cfg);
            (csrf::token(&call.app.config.app_key, &binding, now), vec![cookie])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_permissions_are_those_of_the_routes_called() {
        let p = permissions();
        assert!(p.iter().any(|(r, a)| *r == "queue/jobs" && a.contains(&"sqs:SendMessage")));
        assert!(p.iter().any(|(r, a)| *r == "table/password_reset_tokens" && a.contains(&"dynamodb:GetItem")));
    }

    #[test]
    fn no_page_shadows_an_api_route() {
        for r in ROUTES {
            for table in api::API_TABLES {
                assert!(table.iter().all(|a| a.key() != r.key()), "{}", r.key());
            }
            assert!(r.path.starts_with("/account"), "{}", r.path);
        }
    }
}
