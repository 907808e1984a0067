//! The account page and everything it offers: profile, password, verification mail, two-factor,
//! sessions, personal access tokens, deletion.

use crate::view::{self, Form, Frame, Input, field};
use crate::{api, form_token, notice};
use gatehouse_http::views::{NewTokenView, SessionsBody, TokenPage, TokenView, UserBody};
use gatehouse_http::{Call, Reply};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Response};
use maud::html;
use std::collections::BTreeMap;

/// What the account page shows besides the account itself.
#[derive(Default)]
pub(crate) struct State {
    pub notice: Option<String>,
    pub error: Option<String>,
    /// The refilled form (with its errors) of the section that failed, by its id prefix.
    pub forms: BTreeMap<&'static str, Form>,
    /// A token just created: its plaintext, shown this once.
    pub new_token: Option<NewTokenView>,
    /// The API asked for a recent confirmation: said in the words of how this account confirms.
    pub confirmation_required: bool,
}

/// Every token of the user, page after page (`None` when the API refused a page).
async fn all_tokens(call: &Call<'_>) -> Result<Option<Vec<TokenView>>, api::Unexpected> {
    let mut out = Vec::new();
    let mut path = "/tokens".to_owned();
    // At most 20 pages of 50: a user with more manages them through the API.
    for _ in 0..20 {
        let page = api::call(call.app, call.req, Method::GET, &path, None).await;
        if !page.ok() {
            return Ok(None);
        }
        let page: TokenPage = page.view()?;
        out.extend(page.tokens);
        match page.next_cursor {
            Some(c) => path = format!("/tokens?cursor={}", crate::actions::segment(&c)),
            None => break,
        }
    }
    Ok(Some(out))
}

/// The account could not be shown: why, in words (a verified address required, the service
/// unavailable), with what can still be done.
fn unavailable(
    call: &Call<'_>,
    user: &api::ApiReply,
    token: &str,
    cookies: Vec<lambda_http::http::HeaderValue>,
) -> Response<Body> {
    let (_, failure) = crate::failed(Form::default(), user);
    let unverified = user.code() == Some("email_unverified");
    let body = html! {
        section {
            @if unverified {
                (view::form("/account/verification", token, "Email me a new verification link", html! {}))
            }
            (view::form("/account/sign-out", token, "Sign out", html! {}))
        }
    };
    crate::page(call, "Your account", true, None, Some(failure), body, cookies)
}

pub(crate) fn to_sign_in() -> Reply {
    Ok(view::redirect("/account/sign-in", Vec::new()))
}

/// `GET /account`.
pub async fn show(call: Call<'_>) -> Reply {
    // Signed in on the way through an application's authorization request: back to it (every
    // sign-in, password, second factor or passkey, lands here).
    if let Some((to, cleared)) = crate::oauth_pending::pending_return(&call) {
        return Ok(view::redirect(&to, vec![cleared]));
    }
    let state = State { notice: notice(&call), ..State::default() };
    render(&call, state, StatusCode::OK).await
}

pub(crate) async fn render(call: &Call<'_>, state: State, status: StatusCode) -> Reply {
    let app = call.app;
    let user = api::call(app, call.req, Method::GET, "/user", None).await;
    if user.status == StatusCode::UNAUTHORIZED {
        return to_sign_in();
    }
    let (token, cookies) = form_token(call);
    if !user.ok() {
        return Ok(unavailable(call, &user, &token, cookies));
    }
    let Ok(UserBody { user: u }) = user.view() else { return Ok(api::broken(call, cookies)) };
    let (sessions, tokens, passkeys, apps, identities) = tokio::join!(
        api::call(app, call.req, Method::GET, "/sessions", None),
        all_tokens(call),
        crate::passkeys::load(call, u.passkeys),
        crate::apps::load(call),
        crate::identities::load(call)
    );
    let sessions = sessions.ok().then(|| sessions.view::<SessionsBody>().map(|v| v.sessions)).transpose();
    // A list the API refused says so in its section; one it answered unreadably is a bug.
    let (Ok(sessions), Ok(tokens), Ok(passkeys), Ok(apps), Ok(identities)) =
        (sessions, tokens, passkeys, apps, identities)
    else {
        return Ok(api::broken(call, cookies));
    };
    let empty = Form::default();
    let form = |k: &str| state.forms.get(k).unwrap_or(&empty);
    let verified = u.email_verified_at.is_some();
    let has_password = u.has_password;
    let body = html! {
        section aria-labelledby="profile-h" {
            h2 #profile-h { "Profile" }
            p { "Signed in as " strong { (u.email) } " "
                @if verified { span.badge { "verified" } } @else { span.badge { "not verified" } } }
            @if !verified {
                (view::form("/account/verification", &token, "Email me a new verification link", html! {}))
            }
            (view::form("/account/profile", &token, "Save profile", html! {
                (field(&Form::default().with_value("name", Some(&u.name)).merge(form("profile-")), "profile-",
                    Input::new("name", "Name", "text", "name")))
            }))
        }
        @if !has_password { (crate::passwordless::confirm_section(&token, &u.email, form("confirm-"))) }
        (crate::passwordless::password_section(&token, has_password, form("password-")))
        (crate::two_factor::section(&token, u.two_factor_enabled, has_password, (form("rc-"), form("tf-"))))
        (crate::passkeys::section(&token, passkeys.as_deref(), (form("pk-"), form("pkr-")), has_password))
        (crate::lists::sessions_section(&token, sessions.as_deref(), form("others-"), has_password))
        (crate::lists::tokens_section(&token, tokens.as_deref(), state.new_token.as_ref(), form("token-"), has_password))
        (crate::apps::section(&token, apps.as_deref()))
        (crate::identities::section(app, &token, identities.as_deref(), has_password))
        section aria-labelledby="delete-h" {
            h2 #delete-h { "Delete account" }
            p { "This signs you out everywhere and removes your account for good." }
            (view::form("/account/delete", &token, "Delete my account", html! {
                (crate::passwordless::password_field(has_password, form("delete-"), "delete-"))
            }))
        }
        section {
            (view::form("/account/sign-out", &token, "Sign out", html! {}))
        }
    };
    let f = Frame {
        app_name: &call.app.config.app_name,
        title: "Your account",
        signed_in: true,
        notice: state.notice,
        error: if state.confirmation_required {
            Some(crate::passwordless::confirm_first(has_password))
        } else {
            state.error
        },
    };
    Ok(crate::providers::allowing_providers(app, view::html(status, view::layout(&f, body), cookies)))
}
