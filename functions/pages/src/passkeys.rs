//! Passkeys on the pages: the account page's list (remove one with the password), the forms the
//! script (`assets/passkeys.js`) takes over to add one, sign in with one, or answer the
//! two-factor step with one. Without the script those forms post here and are told why nothing
//! happened.

use crate::actions::{act, confirm_password, refused, segment};
use crate::form::form_or_refusal;
use crate::view::{self, Form, Input, field};
use gatehouse_http::views::PasskeyView;
use gatehouse_http::{Call, Reply};
use lambda_http::http::Method;
use maud::{Markup, html};

/// The form the script takes over: `kind` is its action (`register`, `sign-in`,
/// `second-factor`), `inner` its fields.
pub(crate) fn script_form(kind: &str, token: &str, button: &str, inner: Markup) -> Markup {
    html! {
        form method="post" action="/account/passkeys" data-passkey=(kind) {
            input type="hidden" name=(crate::csrf::FIELD) value=(token);
            (inner)
            button type="submit" { (button) }
            p.passkey-status role="status" aria-live="polite" {}
        }
    }
}

/// The account page's passkeys section: the list, one form to remove one (the password
/// confirmed, when the account has one), and the form the script takes over to add one.
pub(crate) fn section(
    token: &str,
    passkeys: Option<&[PasskeyView]>,
    (add, remove): (&Form, &Form),
    has_password: bool,
) -> Markup {
    let day = |d: &str| d.get(..10).unwrap_or_default().to_owned();
    html! {
        section aria-labelledby="pk-h" {
            h2 #pk-h { "Passkeys" }
            p { "A passkey signs you in with your device's screen lock or a security key: no password, no code." }
            @match passkeys {
                None => p { "Your passkeys could not be read just now." },
                Some([]) => p { "You have no passkeys yet." },
                Some(list) => {
                    ul.list #passkeys {
                        @for p in list {
                            li { strong { (p.name) } " · added " (day(&p.created_at))
                                @if let Some(used) = &p.last_used_at { " · last used " (day(used)) } }
                        }
                    }
                    (view::form("/account/passkeys/remove", token, "Remove passkey", html! {
                        div.field {
                            label for="pkr-id" { "Passkey to remove" }
                            select #pkr-id name="id" {
                                @for p in list { option value=(p.id) { (p.name) } }
                            }
                        }
                        (crate::passwordless::password_field(has_password, remove, "pkr-"))
                    }))
                },
            }
            (script_form("register", token, "Add a passkey", html! {
                (field(add, "pk-", Input::new("name", "A name for this passkey", "text", "off")))
                (crate::passwordless::password_field(has_password, add, "pk-"))
            }))
        }
    }
}

/// `POST /account/passkeys`: what a passkey form does without its script.
pub async fn without_script(call: Call<'_>) -> Reply {
    form_or_refusal!(call);
    let state = crate::account::State {
        error: Some("Passkeys need JavaScript: turn it on for this site and try again.".into()),
        ..crate::account::State::default()
    };
    crate::account::render(&call, state, lambda_http::http::StatusCode::BAD_REQUEST).await
}

/// `POST /account/passkeys/remove`: the password confirmed, then `DELETE /user/passkeys/{id}`.
pub async fn remove(call: Call<'_>) -> Reply {
    let p = form_or_refusal!(call);
    if let Err(reply) = confirm_password(&call, &p).await {
        return refused(&call, &reply, ("pkr-", Form::default())).await;
    }
    let path = format!("/user/passkeys/{}", segment(&p.text("id")));
    act(&call, Method::DELETE, &path, None, "passkey-removed", ("pkr-", Form::default())).await
}

/// The passkeys, asked for only when `GET /user` counted some (`count`): most accounts have
/// none, and each listing reads the user again. `None` when the API refused.
pub(crate) async fn load(call: &Call<'_>, count: usize) -> Result<Option<Vec<PasskeyView>>, crate::api::Unexpected> {
    if count == 0 {
        return Ok(Some(Vec::new()));
    }
    let reply = crate::api::call(call.app, call.req, Method::GET, "/user/passkeys", None).await;
    reply.ok().then(|| reply.view::<gatehouse_http::views::PasskeysView>().map(|v| v.passkeys)).transpose()
}
