//! The OAuth provider's pages: the authorization endpoint (sign in first, then the consent
//! screen) and RP-initiated logout. The rules are [`gatehouse::services::oauth`]'s; here is only
//! what the browser sees. The authorization request rides through sign-in in a short-lived
//! `__Host-` cookie, and through the consent form in hidden fields that are checked again, with
//! the CSRF token, when the form comes back.

use crate::form::form_or_refusal;
use crate::renewing_csrf;
use crate::view::{self, Frame};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse::services::oauth::OAuthError;
use gatehouse::services::oauth::authorize::{AuthorizationRequest, PARAMETERS, Prompt, Refusal};
use gatehouse::tables::sessions::SessionRecord;
use gatehouse_http::{Call, Reply};
use lambda_http::http::{HeaderValue, StatusCode};
use maud::html;

/// How long a pending authorization request waits for its sign-in.
const PENDING_SECONDS: i64 = 600;

pub(crate) fn pending_cookie_name(call: &Call<'_>) -> String {
    crate::csrf::page_cookie_name(&call.app.config.session, "oauth")
}

/// The query's parameters, each as given (a repeated one stays repeated, to be refused).
pub(crate) fn query_params(call: &Call<'_>) -> Vec<(String, String)> {
    let q = call.req.uri().query().unwrap_or_default();
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

/// The pending request's own entry: when a fresh sign-in was asked for (epoch seconds).
const SINCE: &str = "__signed_in_since";

/// Removes `key` from `params`, answering its first value.
fn take(params: &mut Vec<(String, String)>, key: &str) -> Option<String> {
    let found = params.iter().position(|(k, _)| k == key).map(|i| params[i].1.clone());
    params.retain(|(k, _)| k != key);
    found
}

/// Where the browser goes after signing in, when an authorization request was waiting: the
/// authorization endpoint again, the request as it was (but `prompt=login`, just satisfied).
pub(crate) fn pending_return(call: &Call<'_>) -> Option<(String, HeaderValue)> {
    let raw = call.cookie(&pending_cookie_name(call))?;
    let mut params: Vec<(String, String)> = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(raw).ok()?).ok()?;
    // A fresh sign-in was asked for (`prompt=login`, or a session past `max_age`): from here on
    // it is "signed in since the request was made", a `max_age` the old session cannot meet.
    if let Some(since) = take(&mut params, SINCE).and_then(|v| v.parse::<i64>().ok()) {
        let elapsed = (call.app.stores.clock.now().timestamp() - since).max(0) + 1;
        let max_age =
            take(&mut params, "max_age").and_then(|m| m.parse::<i64>().ok()).map_or(elapsed, |m| m.min(elapsed));
        params.retain(|(k, v)| !(k == "prompt" && v == "login"));
        params.push(("max_age".into(), max_age.to_string()));
    }
    let query: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(params.iter()).finish();
    Some((format!("/account/oauth/authorize?{query}"), crate::sign_in::clear_cookie(&pending_cookie_name(call))))
}

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
        let mut kept: Vec<(String, String)> =
            params.into_iter().filter(|(k, _)| PARAMETERS.contains(&k.as_str())).collect();
        if req.prompt == Prompt::Login || req.max_age.is_some() {
            kept.push((SINCE.into(), call.app.stores.clock.now().timestamp().to_string()));
        }
        let value = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&kept).unwrap_or_default());
        let cookie =
            gatehouse_http::set_cookie(&pending_cookie_name(&call), &value, "Lax", None, Some(PENDING_SECONDS));
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
