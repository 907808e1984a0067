//! Form posts carry a CSRF token on top of the API's Origin check (two independent defences).
//!
//! The token is a signed double-submit token bound to the browser's session: `<issued>.<mac>`,
//! where the MAC (HMAC-SHA-256 under the app key, purpose `csrf`) covers the issue time and the
//! *binding*: a random browser cookie (`__Host-<name>_csrf`, `HttpOnly`, set by the first page
//! that shows a form, renewed at every sign-in and sign-out) together with the session cookie's
//! value when there is one. So a token works only with the cookies it was made for: another
//! browser's token (foreign), a token from before a sign-in or a sign-out (replayed into another
//! session), one older than the session's idle lifetime, or none at all are refused.
//!
//! The browser cookie is always `__Host-` (no `Domain`, `Path=/`, `Secure`), even when the
//! session cookie is shared with sibling hosts (`GATEHOUSE_SESSION_DOMAIN`): a sibling host can
//! plant a cookie named like a `Domain` session cookie, never a `__Host-` one, so it cannot plant
//! a binding whose token it knows.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse::Timestamp;
use gatehouse::config::SessionConfig;
use gatehouse::keys::AppKey;
use lambda_http::Request;
use lambda_http::http::HeaderValue;

/// The form field that carries the token.
pub const FIELD: &str = "_token";

/// A cookie name of the pages' own: `__Host-<session cookie name without its prefix>_<suffix>`.
/// Host-only whatever the session cookie is.
pub fn page_cookie_name(cfg: &SessionConfig, suffix: &str) -> String {
    let base = cfg.cookie_name.trim_start_matches("__Host-").trim_start_matches("__Secure-");
    format!("__Host-{base}_{suffix}")
}

/// The browser cookie's name.
pub fn cookie_name(cfg: &SessionConfig) -> String {
    page_cookie_name(cfg, "csrf")
}

/// `<browser cookie>|<session cookie or nothing>`: what a token is bound to.
fn bind(browser: &str, session: Option<&str>) -> String {
    format!("{browser}|{}", session.unwrap_or_default())
}

/// What a token is bound to for this request; `None` without the browser cookie.
pub fn binding(req: &Request, cfg: &SessionConfig) -> Option<String> {
    let browser = gatehouse_http::cookie(req, &cookie_name(cfg))?;
    Some(bind(&browser, gatehouse_http::cookie(req, &cfg.cookie_name).as_deref()))
}

/// A new browser cookie, and the binding it makes with the request's session cookie: for a
/// browser that has none yet.
pub fn new_binding(req: &Request, cfg: &SessionConfig) -> (String, HeaderValue) {
    let (value, cookie) = fresh_cookie(cfg);
    (bind(&value, gatehouse_http::cookie(req, &cfg.cookie_name).as_deref()), cookie)
}

/// A new random browser cookie (set at sign-in and sign-out too, so no token outlives either).
pub fn fresh_cookie(cfg: &SessionConfig) -> (String, HeaderValue) {
    let value = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let header = gatehouse_http::set_cookie(&cookie_name(cfg), &value, "Lax", None, None);
    (value, header)
}

/// The token for forms shown with `binding` at `now`.
pub fn token(key: &AppKey, binding: &str, now: Timestamp) -> String {
    let issued = now.timestamp();
    format!("{issued}.{}", key.sign("csrf", &format!("{issued}|{binding}")))
}

/// Why a form post was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// No token, a token for another binding, or a forged one.
    Invalid,
    /// A genuine token older than `max_age`: the page sat open too long.
    Expired,
}

/// Whether `token` was made by this key for `binding` no longer than `max_age` ago.
pub fn check(
    key: &AppKey,
    binding: Option<&str>,
    token: Option<&str>,
    now: Timestamp,
    max_age: chrono::Duration,
) -> Result<(), Refused> {
    let (Some(binding), Some(token)) = (binding, token) else { return Err(Refused::Invalid) };
    let Some((issued, mac)) = token.split_once('.') else { return Err(Refused::Invalid) };
    let Ok(at) = issued.parse::<i64>() else { return Err(Refused::Invalid) };
    if !key.verify("csrf", &format!("{at}|{binding}"), mac) {
        return Err(Refused::Invalid);
    }
    let age = now.timestamp() - at;
    if age < -60 || age > max_age.num_seconds() {
        return Err(Refused::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn a_token_works_only_for_its_binding_key_and_time() {
        let key = AppKey::random();
        let now = chrono::Utc::now();
        let day = Duration::hours(2);
        let t = token(&key, "session-a", now);
        assert_eq!(check(&key, Some("session-a"), Some(&t), now, day), Ok(()));
        assert_eq!(check(&key, Some("session-b"), Some(&t), now, day), Err(Refused::Invalid), "foreign");
        assert_eq!(check(&AppKey::random(), Some("session-a"), Some(&t), now, day), Err(Refused::Invalid));
        assert_eq!(check(&key, None, Some(&t), now, day), Err(Refused::Invalid), "no cookie");
        assert_eq!(check(&key, Some("session-a"), None, now, day), Err(Refused::Invalid), "no token");
        let later = now + Duration::hours(3);
        assert_eq!(check(&key, Some("session-a"), Some(&t), later, day), Err(Refused::Expired));
        // The time is under the MAC: moving it forward breaks the token.
        let (_, mac) = t.split_once('.').unwrap();
        let moved = format!("{}.{mac}", later.timestamp());
        assert_eq!(check(&key, Some("session-a"), Some(&moved), later, day), Err(Refused::Invalid));
        for garbage in ["", ".", "x.y", "1.", "99999999999999999999.abc", "\u{202e}.1"] {
            assert_eq!(check(&key, Some("session-a"), Some(garbage), now, day), Err(Refused::Invalid), "{garbage}");
        }
    }
}
