//! The account page's "Connected apps": the applications let in through the OAuth provider, each
//! with its disconnect button.

use crate::form::form_or_refusal;
use crate::view::button_form;
use crate::{Failure, api};
use gatehouse_http::views::{AuthorizedAppView, AuthorizedAppsView};
use gatehouse_http::{Call, Reply};
use lambda_http::http::Method;
use maud::{Markup, html};

/// The apps (`GET /user/oauth-apps`); `None` when the API refused (the provider off, say).
pub(crate) async fn load(call: &Call<'_>) -> Result<Option<Vec<AuthorizedAppView>>, api::Unexpected> {
    if !call.app.config.oauth.enabled {
        return Ok(Some(Vec::new()));
    }
    let reply = api::call(call.app, call.req, Method::GET, "/user/oauth-apps", None).await;
    reply.ok().then(|| reply.view::<AuthorizedAppsView>().map(|v| v.apps)).transpose()
}

/// The section; nothing when no app was ever let in.
pub(crate) fn section(token: &str, apps: Option<&[AuthorizedAppView]>) -> Markup {
    html! {
        @match apps {
            None => section aria-labelledby="apps-h" {
                h2 #apps-h { "Connected apps" }
                p.error { "Your connected apps could not be loaded just now. Reload the page to try again." }
            },
            Some([]) => {},
            Some(apps) => section aria-labelledby="apps-h" {
                h2 #apps-h { "Connected apps" }
                p { "Applications you let use your account. Disconnecting one signs it out and asks you again next time." }
                ul.list {
                    @for a in apps {
                        li {
                            span {
                                (a.name) br;
                                span.meta { (a.scopes.join(" · ")) " · since " (a.since.get(..10).unwrap_or(&a.since)) }
                            }
                            (button_form(&format!("/account/oauth-apps/{}/disconnect", a.client_id), token,
                                "Disconnect", &format!("Disconnect {}", a.name), "secondary"))
                        }
                    }
                }
            },
        }
    }
}

/// `POST /account/oauth-apps/{client_id}/disconnect`.
pub async fn disconnect(call: Call<'_>) -> Reply {
    form_or_refusal!(call);
    let path = format!("/user/oauth-apps/{}", crate::actions::segment(call.param(0)));
    let reply = api::call(call.app, call.req, Method::DELETE, &path, None).await;
    if reply.ok() {
        return Ok(crate::view::redirect("/account?notice=app-disconnected", reply.cookies));
    }
    let failure: Failure = crate::failed(crate::view::Form::default(), &reply).1;
    crate::account::render(
        &call,
        crate::account::State { error: Some(failure.message), ..Default::default() },
        failure.status,
    )
    .await
}
