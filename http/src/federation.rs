//! What the JSON routes and the hosted pages share for social sign-in: the browser binding
//! cookie.

use crate::set_cookie;
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
