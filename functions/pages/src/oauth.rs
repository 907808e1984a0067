//! The OAuth provider's pages: the authorization endpoint (sign in first, then the consent
//! screen) and RP-initiated logout. The rules are [`gatehouse::services::oauth`]'s; here is only
//! what the browser sees. The authorization request rides through sign-in in a short-lived
//! `__Host-` cookie, and through the consent form in hidden fields that are checked again, with
//! the CSRF token, when the form comes back.

use crate::form::form_or_refusal;
use crate::oauth_pending::query_params;
use crate::renewing_csrf;
use crate::view::{self, Frame};
use gatehouse::services::oauth::OAuthError;
use gatehouse::services::oauth::authorize::{AuthorizationRequest, PARAMETERS, Prompt, Refusal};
use gatehouse::tables::sessions::SessionRecord;
use gatehouse_http::{Call, Reply};
use lambda_http::http::StatusCode;
use maud::html;

/// The signed-in session, if the cookie names a live one with a user.
pub(crate) async fn session(call: &Call<'_>) -> Option<SessionRecord> {
    let cookie = call.cookie(&call.app.config.session.cookie_name)?;
    let rec = call.app.access.session(&cookie).await.ok().flatten()?;
    rec.user_id.is_some().then_some(rec)
}

fn refusal_page(call: &Call<'_>, message: &str) -> Reply {
    let body = html! { p { "The application that sent you here made a request this site cannot accept." } };
    let f = Frame {
        app_name: &call.app.config.app_name,
        title: "This request was refused",
        signed_in: false,
        notice: None,
        error: Some(message.to_owned()),
    };
    Ok(view::html(StatusCode::BAD_REQUEST, view::layout(&f, body), Vec::new()))
}

fn refused(call: &Call<'_>, r: Refusal) -> Reply {
    match r {
        Refusal::Page(m) => refusal_page(call, &m),
        Refusal::Redirect(url) => Ok(view::redirect(&url, Vec::new())),
    }
}

/// `GET /account/oauth/authorize`: the authorization endpoint.
pub async fn authorize(call: Call<'_>) -> Reply {
    if !call.app.config.oauth.enabled {
        return refusal_page(&call, "This site does not offer sign-in to other applications.");
    }
    let params = query_params(&call);
    let oauth = call.app.oauth();
    let req = match oauth.authorization_request(&params).await {
        Ok(r) => r,
        Err(r) => return refused(&call, r),
    };
    let session = session(&call).await;
    let fresh_needed = |s: &SessionRecord| req.prompt == Prompt::Login || oauth.session_too_old(s, &req);
    let Some(session) = session.filter(|s| !fresh_needed(s)) else {
        if req.prompt == Prompt::None {
            return unasked(&call, &req, "login_required", "sign in first");
        }
        let fresh = req.prompt == Prompt::Login || req.max_age.is_some();
        let cookie = crate::oauth_pending::cookie(&call, params, fresh);
        return Ok(view::redirect("/account/sign-in?notice=oauth-sign-in", vec![cookie]));
    };
    let Some(user) = session.user_id.clone() else { return refusal_page(&call, "Sign in first.") };
    let consent = match oauth.consent_needed(&user, &req).await {
        Ok(c) => c,
        Err(_) => {
            return Ok(view::redirect(
                &oauth.error_redirect(&req.redirect_uri, req.state.as_deref(), "temporarily_unavailable", "try again"),
                Vec::new(),
            ));
        }
    };
    if !consent {
        return finish(&call, &user, &session, &req, false).await;
    }
    if req.prompt == Prompt::None {
        return unasked(&call, &req, "consent_required", "consent is needed");
    }
    crate::oauth_consent::page(&call, &req, &params_of(&req, &query_params(&call)))
}

/// `prompt=none` could not be honoured: back to the client with `error` — on the page for a
/// dynamically registered client (no redirect to a registrant's address the person never saw).
fn unasked(call: &Call<'_>, req: &AuthorizationRequest, error: &str, description: &str) -> Reply {
    if req.client.dynamic {
        return refusal_page(call, &format!("The application asked to continue without showing this site ({error})."));
    }
    let url = call.app.oauth().error_redirect(&req.redirect_uri, req.state.as_deref(), error, description);
    Ok(view::redirect(&url, Vec::new()))
}

/// The parameters the consent form carries back (those of the request, as given).
fn params_of(_req: &AuthorizationRequest, params: &[(String, String)]) -> Vec<(String, String)> {
    params.iter().filter(|(k, _)| PARAMETERS.contains(&k.as_str())).cloned().collect()
}

async fn finish(
    call: &Call<'_>,
    user: &gatehouse::tables::users::UserId,
    session: &SessionRecord,
    req: &AuthorizationRequest,
    consented: bool,
) -> Reply {
    let oauth = call.app.oauth();
    match oauth.approve(user, session, req, consented).await {
        Ok(url) => Ok(view::redirect(&url, Vec::new())),
        Err(e) => {
            // Words for the client, never a store's or KMS's message (names, account ids).
            let description = match &e {
                OAuthError::Store(_) | OAuthError::Sign(_) => {
                    tracing::error!(error = %e, "the authorization could not finish");
                    "try again in a moment".to_owned()
                }
                other => other.to_string(),
            };
            Ok(view::redirect(
                &oauth.error_redirect(&req.redirect_uri, req.state.as_deref(), e.code(), &description),
                Vec::new(),
            ))
        }
    }
}

/// `POST /account/oauth/authorize`: the consent form's answer, every parameter checked again.
pub async fn decide(call: Call<'_>) -> Reply {
    let p = form_or_refusal!(call);
    if !call.app.config.oauth.enabled {
        return refusal_page(&call, "This site does not offer sign-in to other applications.");
    }
    let params: Vec<(String, String)> =
        PARAMETERS.iter().filter_map(|k| p.get(k).map(|v| ((*k).to_owned(), v.to_owned()))).collect();
    let oauth = call.app.oauth();
    let req = match oauth.authorization_request(&params).await {
        Ok(r) => r,
        Err(r) => return refused(&call, r),
    };
    let Some(session) = session(&call).await else {
        return Ok(view::redirect("/account/sign-in", Vec::new()));
    };
    let Some(user) = session.user_id.clone() else { return refusal_page(&call, "Sign in first.") };
    match p.get("decision") {
        Some("allow") => finish(&call, &user, &session, &req, true).await,
        _ => Ok(view::redirect(&oauth.deny(&req), renewing_csrf(&call, Vec::new()))),
    }
}
