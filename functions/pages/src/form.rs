//! Reading a posted form (its origin and CSRF token checked first) and turning the API's answer
//! into what a page shows.

use crate::view::{self, Form, Frame};
use crate::{api, csrf};
use gatehouse_http::Call;
use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use maud::html;

/// A posted form, its origin and CSRF token checked.
pub(crate) struct Posted {
    fields: Vec<(String, String)>,
}

impl Posted {
    /// The field's first value, trimmed of nothing (the API judges whitespace).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    /// The field's value, or `""` when absent (the API then says it is required).
    pub fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or_default().to_owned()
    }
    /// The JSON body of the API call a form stands for: each of `names` as posted (`""` when absent).
    pub fn body(&self, names: &[&str]) -> serde_json::Value {
        names.iter().map(|n| ((*n).to_owned(), serde_json::Value::String(self.text(n)))).collect()
    }
}

/// Reads the form or answers the refusal.
macro_rules! form_or_refusal {
    ($call:expr) => {
        match $crate::posted(&$call) {
            Ok(p) => p,
            Err(refused) => return Ok(*refused),
        }
    };
}
pub(crate) use form_or_refusal;

/// Largest form read: past it, 413.
const MAX_FORM: usize = 64 * 1024;

/// Reads a form post: 403 when another site sent it (Origin / Sec-Fetch-Site) or its CSRF token is
/// missing, foreign, forged or stale; 415 when it is not a form; 413 when too large.
pub(crate) fn posted(call: &Call<'_>) -> Result<Posted, Box<Response<Body>>> {
    let app = call.app;
    if gatehouse_http::check_origin(call.req, &app.config.session).is_err() {
        let why = "This form was sent from another site, so it was not accepted.";
        return Err(Box::new(refusal(call, StatusCode::FORBIDDEN, "Refused", why)));
    }
    let form_type = call.req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|t| {
        t.split(';').next().unwrap_or_default().trim().eq_ignore_ascii_case("application/x-www-form-urlencoded")
    });
    if !form_type {
        return Err(Box::new(refusal(
            call,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Refused",
            "Send this form from its page.",
        )));
    }
    let bytes: &[u8] = match call.req.body() {
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    };
    if bytes.len() > MAX_FORM {
        return Err(Box::new(refusal(call, StatusCode::PAYLOAD_TOO_LARGE, "Refused", "This form is too large.")));
    }
    let fields: Vec<(String, String)> = form_urlencoded::parse(bytes).into_owned().collect();
    let posted = Posted { fields };
    let cfg = &app.config.session;
    let binding = csrf::binding(call.req, cfg);
    match csrf::check(&app.config.app_key, binding.as_deref(), posted.get(csrf::FIELD), app.access.now(), cfg.idle) {
        Ok(()) => Ok(posted),
        Err(why) => {
            tracing::warn!(event = "csrf_token_refused", reason = ?why, path = %call.req.uri().path());
            let message = match why {
                csrf::Refused::Expired => "This page was open too long. Go back, reload it and try again.",
                csrf::Refused::Invalid => {
                    "This form could not be verified as sent from this site. Go back, reload the page and try again."
                }
            };
            Err(Box::new(refusal(call, StatusCode::FORBIDDEN, "Page expired", message)))
        }
    }
}

/// A page that only says why a request was refused.
pub(crate) fn refusal(call: &Call<'_>, status: StatusCode, title: &str, message: &str) -> Response<Body> {
    let f = Frame {
        app_name: &call.app.config.app_name,
        title,
        signed_in: false,
        notice: None,
        error: Some(message.to_owned()),
    };
    view::html(status, view::layout(&f, html! { p { a href="/account" { "Back to your account" } } }), Vec::new())
}

/// Why a form was not accepted: the API's status (a 4xx; 503 for anything else) and the words
/// for the alert.
pub(crate) struct Failure {
    pub status: StatusCode,
    pub message: String,
}

/// A form refilled with the API's field errors, and the failure to show.
pub(crate) fn failed(form: Form, reply: &api::ApiReply) -> (Form, Failure) {
    let status = if reply.status.is_client_error() { reply.status } else { StatusCode::SERVICE_UNAVAILABLE };
    if reply.code() == Some("validation_failed") {
        let mut form = form;
        form.errors = reply.field_errors();
        let n = form.errors.len();
        let message = if n == 1 {
            "Please correct the field marked below.".to_owned()
        } else {
            format!("Please correct the {n} fields marked below.")
        };
        (form, Failure { status, message })
    } else {
        (form, Failure { status, message: reply.message() })
    }
}

/// The page's status and its alert.
fn outcome(error: Option<Failure>) -> (StatusCode, Option<String>) {
    match error {
        Some(f) => (f.status, Some(f.message)),
        None => (StatusCode::OK, None),
    }
}

/// `cookies` and a new CSRF browser cookie: at every sign-in and sign-out, so that no form token
/// outlives either.
pub(crate) fn renewing_csrf(call: &Call<'_>, mut cookies: Vec<HeaderValue>) -> Vec<HeaderValue> {
    cookies.push(csrf::fresh_cookie(&call.app.config.session).1);
    cookies
}

/// A page: `title` over `body`, with `error`'s alert and status (else 200), setting `cookies`.
pub(crate) fn page(
    call: &Call<'_>,
    title: &str,
    signed_in: bool,
    notice: Option<String>,
    error: Option<Failure>,
    body: maud::Markup,
    cookies: Vec<HeaderValue>,
) -> Response<Body> {
    let (status, error) = outcome(error);
    let f = Frame { app_name: &call.app.config.app_name, title, signed_in, notice, error };
    view::html(status, view::layout(&f, body), cookies)
}
