//! The consent screen: which application, where it returns the browser, what it may do, and
//! Allow / Deny. Its form carries the authorization request back, checked again on arrival.

use crate::form_token;
use crate::view;
use gatehouse::services::oauth::authorize::AuthorizationRequest;
use gatehouse::services::oauth::{EMAIL, OFFLINE_ACCESS, OPENID, PROFILE};
use gatehouse_http::{Call, Reply};
use maud::html;

/// What a scope lets the application do, in words.
fn describe(scope: &str) -> String {
    match scope {
        OPENID => "Know who you are when you sign in".into(),
        PROFILE => "See your name".into(),
        EMAIL => "See your email address".into(),
        OFFLINE_ACCESS => "Stay connected when you are not using it".into(),
        other => format!("Use your account to: {other}"),
    }
}

pub(crate) fn page(call: &Call<'_>, req: &AuthorizationRequest, params: &[(String, String)]) -> Reply {
    let (token, cookies) = form_token(call);
    // Where the browser goes next, as the browser reads the address (not a prefix of the text).
    let host = match req.redirect_uri.split_once(':') {
        // Host and port, lower case: the redirect URI passed the client rules, so no user
        // information, backslash or space can make this differ from where the browser goes.
        Some(("https" | "http", rest)) => {
            rest.trim_start_matches('/').split(['/', '?']).next().unwrap_or_default().to_ascii_lowercase()
        }
        Some((scheme, _)) => format!("the app {scheme}"),
        None => String::new(),
    };
    let body = html! {
        section aria-labelledby="consent-h" {
            h2 #consent-h { (req.client.name) " wants to use your account" }
            @if req.client.dynamic {
                p.notice { "This application registered itself: " (call.app.config.app_name) " has not checked who runs it or that its name is true." }
            }
            p { "If you allow it, " strong { (req.client.name) } " (returning you to " code { (host) } ") will be able to:" }
            ul { @for s in &req.scopes { li { (describe(s)) } } }
            form method="post" action="/account/oauth/authorize" {
                input type="hidden" name=(crate::csrf::FIELD) value=(token);
                @for (k, v) in params { input type="hidden" name=(k) value=(v); }
                button type="submit" name="decision" value="allow" { "Allow" }
                " "
                button type="submit" name="decision" value="deny" class="secondary" { "Deny" }
            }
            p.links { "You can take this back under \"Connected apps\" on your account page." }
        }
    };
    let page = crate::page(call, "Allow access?", true, None, None, body, cookies);
    Ok(view::allowing_form_target(page, &form_target(&req.redirect_uri)))
}

/// What a form answered with a redirect to `uri` must be allowed to reach (CSP `form-action`):
/// its origin, or for an app's own scheme (`com.example.app:/cb`) the scheme.
pub(crate) fn form_target(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once(':') else { return String::new() };
    match rest.strip_prefix("//") {
        Some(after) if scheme == "http" || scheme == "https" => {
            let authority = after.split(['/', '?', '#']).next().unwrap_or_default();
            format!("{scheme}://{authority}")
        }
        _ => format!("{scheme}:"),
    }
}
