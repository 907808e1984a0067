//! What every page response carries: the headers that keep a page from being framed, scripted or
//! leaking its address, the cookies it sets, and the stylesheet and script under their content hashes.

use gatehouse_http::HSTS;
use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use maud::Markup;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// The one stylesheet.
pub const STYLE: &str = include_str!("../assets/style.css");

/// The stylesheet's name under its content hash (`style.<12 hex>.css`): a new stylesheet is a new
/// address, so the old one may be cached for a year.
pub static STYLE_NAME: LazyLock<String> = LazyLock::new(|| {
    let digest = Sha256::digest(STYLE.as_bytes());
    format!("style.{}.css", &hex::encode(digest)[..12])
});

/// The one script: passkeys (`navigator.credentials`), which no form can do.
pub const SCRIPT: &str = include_str!("../assets/passkeys.js");

/// The script's name under its content hash (`passkeys.<12 hex>.js`).
pub static SCRIPT_NAME: LazyLock<String> = LazyLock::new(|| {
    let digest = Sha256::digest(SCRIPT.as_bytes());
    format!("passkeys.{}.js", &hex::encode(digest)[..12])
});

/// Pages: only the stylesheet and the one script from here (no inline script, no `eval`),
/// requests only to here, images from here or inline data (the QR code), forms post only here,
/// never framed, no `<base>`.
pub const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; \
                       img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// `resp` (a page with a form whose answer redirects to another site: the OAuth consent and
/// logout confirmation) with `target` (an origin, or an app's own scheme) allowed as a form's
/// destination besides this site: browsers hold a form's redirects to `form-action` too.
/// `target` (or several, separated by spaces) is added only when each is an origin's or a
/// scheme's characters alone.
pub fn allowing_form_target(mut resp: Response<Body>, target: &str) -> Response<Body> {
    let safe = !target.trim().is_empty()
        && target.split(' ').all(|t| {
            !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+' | b':' | b'/' | b'[' | b']'))
        });
    if safe
        && let Ok(v) =
            HeaderValue::from_str(&CSP.replace("form-action 'self'", &format!("form-action 'self' {target}")))
    {
        resp.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    resp
}

fn page_headers(builder: lambda_http::http::response::Builder) -> lambda_http::http::response::Builder {
    gatehouse_http::standard_headers(builder, CSP)
        .header(header::X_FRAME_OPTIONS, "DENY")
        .header("cross-origin-opener-policy", "same-origin")
}

fn with_cookies(mut resp: Response<Body>, cookies: Vec<HeaderValue>) -> Response<Body> {
    for c in cookies {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

/// An HTML page.
pub fn html(status: StatusCode, page: Markup, cookies: Vec<HeaderValue>) -> Response<Body> {
    let resp = page_headers(Response::builder().status(status))
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .body(Body::Text(page.into_string()))
        .unwrap_or_else(|_| Response::new(Body::Empty));
    with_cookies(resp, cookies)
}

/// 303 See Other to a path of this site (after a form post, or to a clean URL).
pub fn redirect(location: &str, cookies: Vec<HeaderValue>) -> Response<Body> {
    let resp = page_headers(Response::builder().status(StatusCode::SEE_OTHER))
        .header(header::LOCATION, location)
        .body(Body::Empty)
        .unwrap_or_else(|_| Response::new(Body::Empty));
    with_cookies(resp, cookies)
}

/// The stylesheet or the script, or 404 for any other name (an old hash included: it is gone).
pub fn stylesheet(name: &str) -> Option<Response<Body>> {
    let (content_type, text) = if name == STYLE_NAME.as_str() {
        ("text/css; charset=utf-8", STYLE)
    } else if name == SCRIPT_NAME.as_str() {
        ("text/javascript; charset=utf-8", SCRIPT)
    } else {
        return None;
    };
    Some({
        Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, content_type)
            .header(header::CACHE_CONTROL, "public, max-age=31536000, immutable")
            .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
            .header(header::STRICT_TRANSPORT_SECURITY, HSTS)
            .body(Body::Text(text.to_owned()))
            .unwrap_or_else(|_| Response::new(Body::Empty))
    })
}
/// The page for an [`crate::api::Unexpected`] answer: 500, in words, never a page with blanks.
/// `cookies` are what the action that already happened set (a rotated session cookie, a new CSRF
/// token): passed on, so a page that fails after its action does not sign the browser out.
pub(crate) fn broken(call: &gatehouse_http::Call<'_>, cookies: Vec<HeaderValue>) -> Response<Body> {
    let why = "Something went wrong on our side. Please try again.";
    let mut page = crate::form::refusal(call, StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", why);
    for c in cookies {
        page.headers_mut().append(header::SET_COOKIE, c);
    }
    page
}
