//! The pages' only way to act: the JSON API's own route tables, called in process with the
//! browser's request (its cookies, `Origin`, `Sec-Fetch-Site`, address and user agent) and a JSON
//! body made from the form. Every rule the API applies — validation, limits, the origin check,
//! password confirmation, second factors — is therefore the rule a page applies: there is no
//! second implementation of any of them, and no extra network hop.

use gatehouse_http::{ApiError, App};
use lambda_http::aws_lambda_events::query_map::QueryMap;
use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::Value;
use std::collections::BTreeMap;

/// What the API answered.
#[derive(Debug)]
pub struct ApiReply {
    pub status: StatusCode,
    /// The JSON body (`Null` for 204), read only as a view type ([`ApiReply::view`]).
    body: Value,
    /// An error answer's `{"error": …}` (`None` on a success, or when unreadable: logged).
    error: Option<ErrorDetail>,
    /// The cookies it set or cleared, to be passed on to the browser unchanged.
    pub cookies: Vec<HeaderValue>,
    /// `Retry-After`, in seconds, on a 429.
    pub retry_after: Option<u64>,
}

/// An answer that is not the view a page read it as (a field renamed, missing or retyped): a
/// bug, since the pages and the API are one build. Logged where read; its page is `broken`.
/// It carries nothing of the answer: serde's error quotes the value, which may be a secret.
#[derive(Debug)]
pub struct Unexpected;

pub(crate) use crate::respond::broken;

/// The API's error answer read back. `gatehouse_http::ErrorBody` borrows its map of fields, so
/// nothing can be read into it: this owned twin is held to it by a test (`error_answers_read_typed`).
#[derive(Deserialize)]
struct ErrorAnswer {
    error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ErrorDetail {
    code: String,
    message: String,
    fields: Option<BTreeMap<String, Vec<String>>>,
}

impl ApiReply {
    pub fn ok(&self) -> bool {
        self.status.is_success()
    }

    /// The answer as the API's view type `T` (`gatehouse_http::views`), or [`Unexpected`], logged.
    pub fn view<T: DeserializeOwned>(&self) -> Result<T, Unexpected> {
        T::deserialize(&self.body).map_err(|e| {
            let view = std::any::type_name::<T>();
            // Where, not what: serde's message quotes the value, which may be a secret.
            let (kind, line, column) = (format!("{:?}", e.classify()), e.line(), e.column());
            tracing::error!(event = "page_call_unexpected_answer", status = %self.status, view, kind, line, column);
            Unexpected
        })
    }

    /// The error's machine-readable code (`validation_failed`, `throttled`, …).
    pub fn code(&self) -> Option<&str> {
        self.error.as_ref().map(|e| e.code.as_str())
    }

    /// The error's message for a person.
    pub fn message(&self) -> String {
        match (self.retry_after, &self.error) {
            (Some(s), _) if self.status == StatusCode::TOO_MANY_REQUESTS => {
                format!("Too many attempts. Please try again in {}.", wait(s))
            }
            (_, Some(e)) => e.message.clone(),
            (_, None) => "Something went wrong. Please try again.".to_owned(),
        }
    }

    /// Each invalid field's problems, worded for a person ("Must be at least 15 characters.").
    pub fn field_errors(&self) -> BTreeMap<String, Vec<String>> {
        let fields = self.error.as_ref().and_then(|e| e.fields.as_ref()).into_iter().flatten();
        fields.map(|(field, problems)| (field.clone(), problems.iter().map(|p| sentence(p)).collect())).collect()
    }
}

/// "must be at least 15 characters" → "Must be at least 15 characters."
fn sentence(problem: &str) -> String {
    let mut chars = problem.chars();
    let mut s: String = chars.next().map(|c| c.to_uppercase().collect()).unwrap_or_default();
    s.push_str(chars.as_str());
    if !s.ends_with('.') {
        s.push('.');
    }
    s
}

/// "45 seconds", "1 minute", "3 minutes".
pub fn wait(seconds: u64) -> String {
    match seconds {
        1 => "1 second".into(),
        s if s < 90 => format!("{s} seconds"),
        s => {
            let m = s.div_ceil(60);
            if m == 1 { "1 minute".into() } else { format!("{m} minutes") }
        }
    }
}

/// Calls `method path` of the JSON API as the browser's request `req` would, with `body` as its
/// JSON body.
pub async fn call(app: &App, req: &Request, method: Method, path_and_query: &str, body: Option<Value>) -> ApiReply {
    let Some(forwarded) = forwarded(req, method, path_and_query, body) else {
        // Only a page's own path could make this: a bug, not the browser's fault.
        tracing::error!(event = "page_call_unbuildable", path = path_and_query);
        return reply_of(ApiError::internal().into_response());
    };
    let path = forwarded.uri().path().to_owned();
    let Some(routes) = API_TABLES
        .into_iter()
        .find(|routes| gatehouse_http::find(routes, forwarded.method().as_str(), &path).is_some())
    else {
        tracing::error!(event = "page_call_unrouted", method = %forwarded.method(), path = %path);
        return reply_of(ApiError::internal().into_response());
    };
    reply_of(gatehouse_http::dispatch(app, routes, forwarded).await)
}

/// The route tables of the JSON API the pages call.
pub const API_TABLES: [&[gatehouse_http::Route]; 3] =
    [gatehouse_login::ROUTES, gatehouse_tokens::ROUTES, gatehouse_password_reset::ROUTES];

/// What a handler answered, read back.
fn reply_of(resp: Response<Body>) -> ApiReply {
    let (parts, body) = resp.into_parts();
    let text = match body {
        Body::Text(t) => t,
        Body::Binary(b) => String::from_utf8_lossy(&b).into_owned(),
        _ => String::new(),
    };
    // Every answer of the API is JSON or empty (204).
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| {
            tracing::error!(event = "page_call_unreadable_answer", status = %parts.status, error = %e);
            Value::Null
        })
    };
    let mut reply = ApiReply {
        status: parts.status,
        body,
        error: None,
        cookies: parts.headers.get_all(header::SET_COOKIE).iter().cloned().collect(),
        retry_after: parts.headers.get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()?.parse().ok()),
    };
    if !reply.ok() {
        reply.error = reply.view::<ErrorAnswer>().ok().map(|answer| answer.error);
    }
    reply
}

/// The only headers of the browser's request the API call carries: the session cookie and the
/// facts the API judges the browser by. Not `Authorization`: a page acts as the session that
/// shows it, never as a bearer token the browser happens to send.
const FORWARDED: &[&str] = &["cookie", "host", "origin", "sec-fetch-site", "user-agent"];

/// The browser's request, re-addressed: the [`FORWARDED`] headers and the request context (source
/// address, request id), another method, path, query and a JSON body.
fn forwarded(req: &Request, method: Method, path_and_query: &str, body: Option<Value>) -> Option<Request> {
    let mut b = lambda_http::http::Request::builder().method(method).uri(path_and_query);
    for (name, value) in req.headers() {
        if FORWARDED.contains(&name.as_str()) {
            b = b.header(name, value);
        }
    }
    let body = match body {
        Some(v) => {
            b = b.header(header::CONTENT_TYPE, "application/json");
            Body::Text(v.to_string())
        }
        None => Body::Empty,
    };
    let mut out = b.body(body).ok()?;
    if let Some(ctx) = req.request_context_ref() {
        out = out.with_request_context(ctx.clone());
    }
    let query = path_and_query.split_once('?').map(|(_, q)| q).unwrap_or("");
    if !query.is_empty() {
        let Ok(parsed) = query.parse::<QueryMap>();
        out = out.with_query_string_parameters(parsed);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_and_problems_read_as_words() {
        assert_eq!(wait(1), "1 second");
        assert_eq!(wait(45), "45 seconds");
        assert_eq!(wait(90), "2 minutes");
        assert_eq!(wait(3600), "60 minutes");
        assert_eq!(sentence("must be at least 15 characters"), "Must be at least 15 characters.");
        assert_eq!(sentence("is required."), "Is required.");
    }

    fn user() -> gatehouse_http::views::UserBody {
        gatehouse_http::views::UserBody {
            user: gatehouse_http::views::UserView {
                id: "01JUSER".into(),
                name: "Ada".into(),
                email: "ada@example.com".into(),
                email_verified_at: None,
                created_at: "2026-01-02T03:04:05Z".into(),
                updated_at: "2026-01-02T03:04:05Z".into(),
                two_factor_enabled: true,
                passkeys: 2,
                has_password: true,
            },
        }
    }

    #[test]
    fn answers_read_as_the_apis_own_views() {
        let reply = reply_of(gatehouse_http::json(StatusCode::OK, &user()));
        let read: gatehouse_http::views::UserBody = reply.view().expect("the API's own answer reads back");
        assert_eq!((read.user.email.as_str(), read.user.passkeys), ("ada@example.com", 2));
        assert!(read.user.email_verified_at.is_none() && read.user.two_factor_enabled);
    }

    /// The typing bites: an answer whose field was renamed (or is missing, or of another type) is
    /// an error the page shows as such, not a blank where the field was.
    #[test]
    fn a_renamed_missing_or_retyped_field_is_an_error_not_a_blank() {
        let text = serde_json::to_string(&user()).expect("serializes");
        let renamed = text.replace("\"email\":", "\"mail\":");
        let missing = text.replace(",\"passkeys\":2", "");
        let retyped = text.replace("\"passkeys\":2", "\"passkeys\":\"2\"");
        for bad in [renamed, missing, retyped] {
            assert_ne!(bad, text);
            let resp = Response::builder().status(200).body(Body::Text(bad.clone())).expect("a response");
            let read = reply_of(resp).view::<gatehouse_http::views::UserBody>();
            assert!(read.is_err(), "{bad} read as a user: {read:?}");
        }
        // And the empty body of a 204 is no view either.
        let empty = reply_of(Response::builder().status(204).body(Body::Empty).expect("a response"));
        assert!(empty.view::<gatehouse_http::views::SessionsBody>().is_err());
    }

    /// The owned twin of `gatehouse_http::ErrorBody` reads every error answer the API makes.
    #[test]
    fn error_answers_read_typed() {
        let fields = BTreeMap::from([("password".to_owned(), vec!["must be at least 15 characters".to_owned()])]);
        let reply = reply_of(ApiError::validation(fields).into_response());
        assert_eq!(reply.code(), Some("validation_failed"));
        assert_eq!(reply.message(), "The password field must be at least 15 characters.");
        let words = BTreeMap::from([("password".to_owned(), vec!["Must be at least 15 characters.".to_owned()])]);
        assert_eq!(reply.field_errors(), words);

        let reply = reply_of(ApiError::unauthenticated().into_response());
        assert_eq!((reply.code(), reply.message().as_str()), (Some("unauthenticated"), "Unauthenticated."));
        assert!(reply.field_errors().is_empty());

        let reply = reply_of(ApiError::internal().with_retry_after(30).into_response());
        assert_eq!(reply.code(), Some("internal"));

        // An error answer in another shape is read as none (logged), never as a blank code.
        let odd = r#"{"error":{"code":"x","message":"y","problems":{}}}"#;
        let reply = reply_of(Response::builder().status(422).body(Body::Text(odd.into())).expect("a response"));
        assert_eq!((reply.code(), reply.message().as_str()), (None, "Something went wrong. Please try again."));
    }
}
