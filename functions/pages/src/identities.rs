//! The account page's "Connected accounts": each connected provider account with its disconnect
//! form, and a connect form for each configured provider not yet connected.

use crate::api;
use crate::view::{self, Form};
use gatehouse_http::views::{IdentitiesView, IdentityView};
use gatehouse_http::{App, Call};
use lambda_http::http::Method;
use maud::{Markup, html};

/// The user's connected provider accounts (`GET /user/identities`); `None` when the API refused.
pub(crate) async fn load(call: &Call<'_>) -> Result<Option<Vec<IdentityView>>, api::Unexpected> {
    if call.app.config.federation.providers.is_empty() {
        return Ok(Some(Vec::new()));
    }
    let reply = api::call(call.app, call.req, Method::GET, "/user/identities", None).await;
    reply.ok().then(|| reply.view::<IdentitiesView>().map(|v| v.identities)).transpose()
}

/// "Connected accounts": each connected provider with its disconnect form, and a connect form for
/// each configured provider; both ask for the password (a recent confirmation, as the API needs),
/// or, for an account without one, rely on its confirmation by mail.
pub(crate) fn section(app: &App, token: &str, identities: Option<&[IdentityView]>, has_password: bool) -> Markup {
    let providers = &app.config.federation.providers;
    let confirm = |prefix: &str| crate::passwordless::password_field(has_password, &Form::default(), prefix);
    html! {
        @if !providers.is_empty() {
            section aria-labelledby="ids-h" {
                h2 #ids-h { "Connected accounts" }
                @match identities {
                    None => p.error { "Your connected accounts could not be loaded just now. Reload the page to try again." },
                    Some(list) => {
                        @if list.is_empty() {
                            p { "No sign-in provider is connected." }
                        } @else {
                            ul.list {
                                @for i in list {
                                    li {
                                        span {
                                            (i.provider_name) br;
                                            span.meta { (i.email.as_deref().unwrap_or("")) " · since " (i.linked_at.get(..10).unwrap_or(&i.linked_at)) }
                                        }
                                        (view::form(&format!("/account/identities/{}/unlink", i.id), token,
                                            &format!("Disconnect {}", i.provider_name), confirm(&format!("unlink-{}-", i.id))))
                                    }
                                }
                            }
                        }
                        @for p in providers {
                            @if !list.iter().any(|i| i.provider == p.id) {
                                (view::form(&format!("/account/providers/{}/link", p.id), token,
                                    &format!("Connect {}", p.name), confirm(&format!("link-{}-", p.id))))
                            }
                        }
                    },
                }
            }
        }
    }
}
