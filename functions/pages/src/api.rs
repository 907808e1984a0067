//! The pages' only way to act: the JSON API's own route tables, called in process with the
//! browser's request (its cookies, `Origin`, `Sec-Fetch-Site`, address and user agent) and a JSON
//! body made from the form. Every rule the API applies — validation, limits, the origin check,
//! password confirmation, second factors — is therefore the rule a page applies: there is no
//! second implementation of any of them, and no extra network hop.

use gatehouse_http::{ApiError, App};
use lambda_http::aws_lambda_events::query_map::QueryMap;
use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Request, RequestExt};
use serde_json::Value;
use std::collections::BTreeMap;

/// What the API answered.
#[derive(Debug)]
pub struct ApiReply {
    pub status: StatusCode,
    /// The JSON body (`Null` for 204).
    pub body: Value,
    /// The cookies it set or cleared, to be passed on to the browser unchanged.
    pub cookies: Vec<HeaderValue>,
    /// `Retry-After`, in seconds, on a 429.
    pub retry_after: Option<u64>,
}

impl ApiReply {
    pub fn ok(&self) -> bool {
        self.status.is_success()
    }

    /// The error's machine-readable code (`validation_failed`, `throttled`, …).
    pub fn code(&self) -> Option<&str> {
        self.body["error"]["code"].as_str()
    }

    /// The error's message for a person.
    pub fn message(&self) -> String {
        match self.retry_after {
            Some(s) if self.status == StatusCode::TOO_MANY_REQUESTS => {
                format!("Too many attempts. Please try again in {}.", wait(s))
            }
            _ => self.body["error"]["message"].as_str().unwrap_or("Something went wrong. Please try again.").to_owned(),
        }
    }

    /// Each invalid field's problems, worded for a person ("Must be at least 15 characters.").
    pub fn field_errors(&self) -> BTreeMap<String, Vec<String>> {
        let mut out = BTreeMap::new();
        for (field, problems) in self.body["error"]["fields"].as_object().into_iter().flatten() {
            let words = problems.as_array().into_iter().flatten().filter_map(Value::as_str).map(sentence).collect();
            out.insert(field.clone(), words);
        }
        out
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
fn reply_of(resp: lambda_http::Response<Body>) -> ApiReply {
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
    ApiReply {
        status: parts.status,
        body,
        cookies: parts.headers.get_all(header::SET_COOKIE).iter().cloned().collect(),
        retry_after: parts.headers.get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()?.parse().ok()),
    }
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
}
