//! "Continue with …": social sign-in on the hosted pages. Each button is a form (CSRF-checked)
//! that begins a flow through `POST /auth/providers/{provider}/start` and sends the browser to
//! the provider; the provider's answer comes back to the callback page, which finishes it through
//! `POST /auth/providers/{provider}/callback` — every rule is the API's.

use crate::form::{form_or_refusal, refusal};
use crate::view::{self, Form};
use crate::{api, failed, page, renewing_csrf};
use gatehouse::providers::ProviderKind;
use gatehouse_http::views::{FederationStartView, TwoFactorChallengeView};
use gatehouse_http::{App, Call, Reply};
use lambda_http::Body;
use lambda_http::http::{Method, StatusCode};
use maud::{Markup, html};
use serde_json::json;

/// The "Continue with …" buttons, one form per configured provider (none: nothing).
pub(crate) fn buttons(app: &App, token: &str) -> Markup {
    let providers = &app.config.federation.providers;
    html! {
        @if !providers.is_empty() {
            section.providers aria-labelledby="fed-h" {
                h2 #fed-h { "Or continue with" }
                @for p in providers {
                    (view::form(&format!("/account/providers/{}", p.id), token, &format!("Continue with {}", p.name), html! {}))
                }
            }
        }
    }
}

/// The origins the provider buttons' forms end at (a form's redirects are held to `form-action`).
pub(crate) fn form_targets(app: &App) -> Vec<String> {
    let origin = |url: &str| -> Option<String> {
        let (scheme, rest) = url.split_once("://")?;
        let host = rest.split(['/', '?', '#']).next()?;
        Some(format!("{scheme}://{host}"))
    };
    let mut targets: Vec<String> = app
        .config
        .federation
        .providers
        .iter()
        .flat_map(|p| match &p.kind {
            // The issuer's origin, and the authorization endpoint's once its document was read
            // (a provider may keep it on another origin).
            ProviderKind::Oidc { issuer } => {
                [origin(issuer), app.provider_metadata.authorization_endpoint(&p.id).as_deref().and_then(origin)]
            }
            ProviderKind::GitHub { authorize_url, .. } => [origin(authorize_url), None],
        })
        .flatten()
        .collect();
    targets.sort();
    targets.dedup();
    targets
}

/// `resp` allowing the providers' origins as form targets.
pub(crate) fn allowing_providers(app: &App, resp: lambda_http::Response<Body>) -> lambda_http::Response<Body> {
    let targets = form_targets(app);
    if targets.is_empty() { resp } else { view::allowing_form_target(resp, &targets.join(" ")) }
}

/// `POST /account/providers/{provider}`: begins signing in with it; off to the provider.
pub async fn start(call: Call<'_>) -> Reply {
    let p = form_or_refusal!(call);
    let body = json!({ "remember": p.get("remember").is_some() });
    let path = format!("/auth/providers/{}/start", gatehouse::services::oauth::query_escape(call.param(0)));
    to_provider(&call, api::call(call.app, call.req, Method::POST, &path, Some(body)).await)
}

/// `POST /account/providers/{provider}/link`: begins connecting it to this account (a recent
/// confirmation first, as the API requires).
pub async fn link(call: Call<'_>) -> Reply {
    let p = form_or_refusal!(call);
    if let Some(refused) = confirm_given(&call, &p).await {
        return failure(&call, &refused);
    }
    let path = format!("/auth/providers/{}/link", gatehouse::services::oauth::query_escape(call.param(0)));
    let reply = api::call(call.app, call.req, Method::POST, &path, None).await;
    crate::passwordless::or_confirm_first(&call, reply, to_provider).await
}

fn to_provider(call: &Call<'_>, reply: api::ApiReply) -> Reply {
    match reply.view::<FederationStartView>() {
        // The provider's address, checked as configuration and discovery are.
        Ok(v) if reply.ok() && gatehouse::providers::allowed_url(&v.url) => Ok(view::redirect(&v.url, reply.cookies)),
        Ok(_) | Err(_) if reply.ok() => Ok(api::broken(call, reply.cookies)),
        _ => failure(call, &reply),
    }
}

fn failure(call: &Call<'_>, reply: &api::ApiReply) -> Reply {
    // The account's forms, sent signed out (or with a session that ended): to sign in.
    if reply.status == StatusCode::UNAUTHORIZED {
        return crate::account::to_sign_in();
    }
    let (_, mut failure) = failed(Form::default(), reply);
    // The provider's answer did not verify: the API's 502 (`federation_failed`), not "try later".
    if reply.status == StatusCode::BAD_GATEWAY {
        failure.status = reply.status;
    }
    let body = html! {
        p.links { a href="/account/sign-in" { "Back to sign in" } " · " a href="/account" { "Your account" } }
    };
    Ok(page(call, "That did not work", false, None, Some(failure), body, Vec::new()))
}

/// `GET` (or, from a provider answering by `form_post`, `POST`)
/// `/account/providers/{provider}/callback`: finishes the flow this browser began.
pub async fn callback(call: Call<'_>) -> Reply {
    let read = |name: &str| -> Option<String> {
        if call.req.method() == Method::POST {
            let body: &[u8] = call.req.body().as_ref();
            form_urlencoded_get(body, name)
        } else {
            call.query(name)
        }
    };
    if read("error").is_some() {
        // The person declined at the provider (or it refused): nothing to finish.
        let body = html! { p.links { a href="/account/sign-in" { "Back to sign in" } } };
        let failure = crate::Failure {
            status: StatusCode::BAD_REQUEST,
            message: "The sign-in was cancelled at the provider.".to_owned(),
        };
        return Ok(page(&call, "Sign-in cancelled", false, None, Some(failure), body, Vec::new()));
    }
    let (Some(code), Some(state)) = (read("code"), read("state")) else {
        return Ok(refusal(&call, StatusCode::BAD_REQUEST, "Refused", "This address is missing its code or state."));
    };
    let body = json!({ "code": code, "state": state, "iss": read("iss") });
    let path = format!("/auth/providers/{}/callback", gatehouse::services::oauth::query_escape(call.param(0)));
    let reply = api::call(call.app, call.req, Method::POST, &path, Some(body)).await;
    match reply.status {
        StatusCode::OK if reply.code().is_none() => {
            // A link flow answers `{"linked": …}`, a sign-in the user.
            let linked = reply.view::<serde_json::Value>().is_ok_and(|v| v.get("linked").is_some());
            if linked {
                Ok(view::redirect("/account?notice=provider-linked", reply.cookies))
            } else {
                Ok(view::redirect("/account", renewing_csrf(&call, reply.cookies)))
            }
        }
        StatusCode::ACCEPTED => match reply.view::<TwoFactorChallengeView>() {
            Ok(c) => crate::sign_in::challenge_page(&call, &c.challenge, None),
            Err(_) => Ok(api::broken(&call, reply.cookies)),
        },
        _ => failure(&call, &reply),
    }
}

/// `POST /account/identities/{id}/unlink`: `DELETE /user/identities/{id}`.
pub async fn unlink(call: Call<'_>) -> Reply {
    let p = form_or_refusal!(call);
    if let Some(refused) = confirm_given(&call, &p).await {
        return failure(&call, &refused);
    }
    let path = format!("/user/identities/{}", gatehouse::services::oauth::query_escape(call.param(0)));
    let reply = api::call(call.app, call.req, Method::DELETE, &path, None).await;
    if reply.ok() {
        return Ok(view::redirect("/account?notice=provider-unlinked", reply.cookies));
    }
    crate::passwordless::or_confirm_first(&call, reply, |call, reply| failure(call, &reply)).await
}

/// A field of an `application/x-www-form-urlencoded` body.
fn form_urlencoded_get(body: &[u8], name: &str) -> Option<String> {
    form_urlencoded::parse(body).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// Confirms the password given with a connect or disconnect form (when one was), so the API's
/// recent-confirmation rule is met by the same form.
async fn confirm_given(call: &Call<'_>, p: &crate::Posted) -> Option<api::ApiReply> {
    let password = p.get("password").filter(|v| !v.is_empty())?;
    let reply =
        api::call(call.app, call.req, Method::POST, "/user/confirm-password", Some(json!({ "password": password })))
            .await;
    (!reply.ok()).then_some(reply)
}
