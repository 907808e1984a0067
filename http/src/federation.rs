//! What the JSON routes and the hosted pages share for social sign-in: the browser binding
//! cookie and who may finish a link flow.

use crate::{App, set_cookie};
use gatehouse::services::access::Principal;
use gatehouse::tables::users::UserId;
use lambda_http::Request;
use lambda_http::http::HeaderValue;

/// The cookie binding a flow to the browser that began it (host-only, HttpOnly, Secure). It is
/// `SameSite=None`: a provider that posts its answer (Apple's `form_post`) comes back cross-site,
/// and the cookie grants nothing by itself (a flow also needs its `state`, which only the
/// provider's redirect carries).
pub const BINDING_COOKIE: &str = "__Host-gatehouse_federation";

/// The binding cookie, living as long as a flow may.
pub fn binding_cookie(value: &str) -> HeaderValue {
    let life = gatehouse::services::federation::FLOW_LIFETIME.num_seconds();
    set_cookie(BINDING_COOKIE, value, "None", None, Some(life))
}

/// The signed-in caller who may finish a link flow: a session of the user's own (not a
/// handoff's) whose password (or email) was confirmed within the window.
pub async fn linking_user(app: &App, req: &Request) -> Option<UserId> {
    let cookie = crate::cookie(req, &app.config.session.cookie_name)?;
    match app.access.principal(None, Some(&cookie)).await.ok()?? {
        Principal::Session { user_id, password_confirmed_at, parent: None, .. }
            if app.access.password_recently_confirmed(password_confirmed_at) =>
        {
            Some(user_id)
        }
        _ => None,
    }
}
