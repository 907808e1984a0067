//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): the end-session endpoint asks
//! the signed-in person to confirm, and returns to the client only to a URI it registered.

use crate::form::form_or_refusal;
use crate::form_token;
use crate::oauth::session;
use crate::oauth_pending::query_params;
use crate::view;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse::tables::oauth_clients::ClientId;
use gatehouse_http::{Call, Reply};
use maud::html;

/// The client's post-logout redirect URI of a logout request, when the client and the URI check
/// out, and whether the client registered itself.
async fn logout_target(call: &Call<'_>, params: &[(String, String)]) -> Option<(String, bool)> {
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let uri = get("post_logout_redirect_uri")?;
    let client_id = get("client_id").and_then(ClientId::parse).or_else(|| {
        // The ID token hint names its client in `aud`; its signature does not matter for that:
        // the URI must be one the named client registered, whoever wrote the hint.
        let hint = get("id_token_hint")?;
        let claims = hint.split('.').nth(1)?;
        let v: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).ok()?).ok()?;
        ClientId::parse(v.get("aud")?.as_str()?)
    })?;
    let client = call.app.stores.oauth_clients.find(&client_id).await.ok().flatten()?;
    let ok = !client.revoked && client.post_logout_redirect_uris.iter().any(|u| u == uri);
    ok.then(|| {
        let state = get("state");
        let pairs: Vec<(&str, &str)> = state.map(|s| vec![("state", s)]).unwrap_or_default();
        (gatehouse::services::oauth::with_query(uri, &pairs), client.dynamic)
    })
}

/// `GET /account/oauth/logout` (the end-session endpoint): asks the signed-in person to confirm,
/// so no other site can sign them out; signed out already, straight back to the client.
pub async fn logout(call: Call<'_>) -> Reply {
    let params = query_params(&call);
    let target = logout_target(&call, &params).await;
    if session(&call).await.is_none() {
        // Signed out already: back to the client — a link, not a redirect, for one that
        // registered itself (its address is its registrant's choice).
        return match target {
            Some((to, false)) => Ok(view::redirect(&to, Vec::new())),
            Some((to, true)) => {
                let body = html! { p { "You are signed out. " a href=(to) { "Return to the application" } } };
                Ok(crate::page(&call, "Signed out", false, None, None, body, Vec::new()))
            }
            _ => Ok(view::redirect("/account/sign-in?notice=signed-out", Vec::new())),
        };
    }
    let (token, cookies) = form_token(&call);
    let body = html! {
        section {
            p { "An application asked to sign you out of " (call.app.config.app_name) "." }
            form method="post" action="/account/oauth/logout" {
                input type="hidden" name=(crate::csrf::FIELD) value=(token);
                @for (k, v) in params.iter().filter(|(k, _)| matches!(k.as_str(), "post_logout_redirect_uri" | "client_id" | "state" | "id_token_hint")) {
                    input type="hidden" name=(k) value=(v);
                }
                button type="submit" { "Sign out" }
            }
            p.links { a href="/account" { "Stay signed in" } }
        }
    };
    let page = crate::page(&call, "Sign out?", true, None, None, body, cookies);
    // The confirmation's answer goes back to the client: its origin may receive the form's redirect.
    Ok(match &target {
        Some((t, _)) => view::allowing_form_target(page, &crate::oauth_consent::form_target(t)),
        None => page,
    })
}

/// `POST /account/oauth/logout`: signs out, then back to the client when its URI checks out.
pub async fn logout_confirmed(call: Call<'_>) -> Reply {
    let p = form_or_refusal!(call);
    let params: Vec<(String, String)> = ["post_logout_redirect_uri", "client_id", "state", "id_token_hint"]
        .iter()
        .filter_map(|k| p.get(k).map(|v| ((*k).to_owned(), v.to_owned())))
        .collect();
    let target = logout_target(&call, &params).await;
    let to = target.map(|(t, _)| t).unwrap_or_else(|| "/account/sign-in?notice=signed-out".to_owned());
    crate::sign_in::end_session_then(&call, &to).await
}
