//! The account page for an account without a password (made through a sign-in provider or an
//! email link): "Confirm it's you" mails a code (`POST /user/confirm-by-email`) whose entry
//! (`POST /user/confirm-by-email/verify`) records the session's confirmation as a password
//! would. Its forms then ask for no password: each relies on that recent confirmation, which the
//! API judges (423 `password_confirmation_required` without one, said here in words).

use crate::actions::act;
use crate::api;
use crate::form::form_or_refusal;
use crate::view::{self, Form, Input, field};
use gatehouse_http::{Call, Reply};
use lambda_http::http::Method;
use maud::{Markup, html};

/// The API's code for an action that needs a recent confirmation of this session.
const CONFIRMATION_REQUIRED: &str = "password_confirmation_required";

/// Whether the API refused for want of a recent confirmation.
pub(crate) fn confirmation_required(reply: &api::ApiReply) -> bool {
    reply.code() == Some(CONFIRMATION_REQUIRED)
}

/// The account page saying to confirm first when the API refused `reply` for want of a recent
/// confirmation; else what `otherwise` makes of it.
pub(crate) async fn or_confirm_first(
    call: &Call<'_>,
    reply: api::ApiReply,
    otherwise: impl FnOnce(&Call<'_>, api::ApiReply) -> Reply,
) -> Reply {
    if confirmation_required(&reply) {
        return crate::actions::refused(call, &reply, ("confirm-", Form::default())).await;
    }
    otherwise(call, reply)
}

/// The words for that refusal, by how this account confirms.
pub(crate) fn confirm_first(has_password: bool) -> String {
    if has_password {
        "Confirm it's you first: type your password in the form, then try again.".to_owned()
    } else {
        "Confirm it's you first: under \u{201c}Confirm it's you\u{201d} choose \u{201c}Email me a code\u{201d} and \
         type the code from the email, then try again."
            .to_owned()
    }
}

/// "Your password", for an account that has one; nothing for one without (its forms rely on a
/// recent confirmation by mail).
pub(crate) fn password_field(has_password: bool, form: &Form, prefix: &str) -> Markup {
    html! {
        @if has_password {
            (field(form, prefix, Input::new("password", "Your password", "password", "current-password")))
        }
    }
}

/// "Confirm it's you": the button that mails a code and the form that takes it (`form`: the
/// code form refilled with its errors).
pub(crate) fn confirm_section(token: &str, email: &str, form: &Form) -> Markup {
    html! {
        section aria-labelledby="confirm-h" {
            h2 #confirm-h { "Confirm it's you" }
            p { "Your account has no password. Before you change how you sign in (two-factor authentication, \
                 passkeys, connected accounts, API tokens with wide access) or delete the account, confirm \
                 it's you with a code we email to " strong { (email) } "." }
            (view::form("/account/confirm-by-email", token, "Email me a code", html! {}))
            (view::form("/account/confirm-by-email/verify", token, "Confirm", html! {
                (field(form, "confirm-", Input::new("code", "Code from the email", "text", "one-time-code")
                    .hint("Six digits. It works once, in this browser, for 15 minutes.")))
            }))
        }
    }
}

/// "Change password", or for an account without one, how to set one.
pub(crate) fn password_section(token: &str, has_password: bool, form: &Form) -> Markup {
    html! {
        section aria-labelledby="password-h" {
            @if has_password {
                h2 #password-h { "Change password" }
                (view::form("/account/password", token, "Change password", html! {
                    (field(form, "password-", Input::new("current_password", "Current password", "password", "current-password")))
                    (field(form, "password-", Input::new("password", "New password", "password", "new-password")))
                    (field(form, "password-", Input::new("password_confirmation", "Confirm new password", "password", "new-password")))
                }))
            } @else {
                h2 #password-h { "Password" }
                p { "Your account has no password: you sign in with a link from your email or a connected account. "
                    a href="/account/forgot-password" { "Set a password" } " with a link we email you." }
            }
        }
    }
}

/// `POST /account/confirm-by-email`: `POST /user/confirm-by-email`; the account page says the
/// code is on its way.
pub async fn send_code(call: Call<'_>) -> Reply {
    form_or_refusal!(call);
    act(&call, Method::POST, "/user/confirm-by-email", None, "confirmation-sent", ("confirm-", Form::default())).await
}

/// `POST /account/confirm-by-email/verify`: `POST /user/confirm-by-email/verify`; this session is
/// confirmed, as a password confirms it.
pub async fn verify_code(call: Call<'_>) -> Reply {
    let p = form_or_refusal!(call);
    let body = Some(p.body(&["code"]));
    act(&call, Method::POST, "/user/confirm-by-email/verify", body, "confirmed-by-email", ("confirm-", Form::default()))
        .await
}
