//! Reading requests: JSON bodies within limits, typed fields with per-field errors, cookies,
//! bearer tokens (header only, never the query string) and API Gateway's request context.

use crate::ApiError;
use gatehouse::Email;
use gatehouse::services::auth::ClientMeta;
use gatehouse::tables::users::DisplayName;
use gatehouse::values::password::{NewPassword, PasswordAttempt, PasswordContext, PasswordError, PasswordPolicy};
use lambda_http::http::header;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Largest accepted request body.
pub const MAX_BODY: usize = 64 * 1024;

/// The body as a JSON object: 415 unless `Content-Type: application/json`, 413 over
/// [`MAX_BODY`], 422 when it is not a JSON object.
pub fn json_object(req: &Request) -> Result<Map<String, Value>, ApiError> {
    let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if mime != "application/json" && !(mime.starts_with("application/") && mime.ends_with("+json")) {
        return Err(ApiError::unsupported_media_type());
    }
    let bytes: &[u8] = match req.body() {
        Body::Empty => b"",
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => b"",
    };
    if bytes.len() > MAX_BODY {
        return Err(ApiError::payload_too_large());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::field("body", "must be a JSON object")),
        Err(_) => Err(ApiError::field("body", "must be valid JSON")),
    }
}

/// Reads fields out of a JSON object, collecting every problem before answering.
pub struct Fields<'a> {
    obj: &'a Map<String, Value>,
    errors: BTreeMap<String, Vec<String>>,
}

impl<'a> Fields<'a> {
    pub fn new(obj: &'a Map<String, Value>) -> Self {
        Self { obj, errors: BTreeMap::new() }
    }

    pub fn error(&mut self, field: &str, problem: impl Into<String>) {
        self.errors.entry(field.to_owned()).or_default().push(problem.into());
    }

    fn raw_string(&mut self, field: &str, required: bool) -> Option<&'a str> {
        match self.obj.get(field) {
            None | Some(Value::Null) => {
                if required {
                    self.error(field, "is required");
                }
                None
            }
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => {
                self.error(field, "must be a string");
                None
            }
        }
    }

    /// A required, non-empty string of at most `max` characters, as sent.
    fn bounded(&mut self, field: &str, max: usize, trim: bool) -> Option<&'a str> {
        let raw = self.raw_string(field, true)?;
        let s = if trim { raw.trim() } else { raw };
        if s.is_empty() {
            self.error(field, "is required");
            return None;
        }
        if s.chars().count() > max {
            self.error(field, format!("may not be longer than {max} characters"));
            return None;
        }
        Some(s)
    }

    /// A required, non-blank string of at most `max` characters, trimmed, without control
    /// characters.
    pub fn text(&mut self, field: &str, max: usize) -> Option<String> {
        let s = self.bounded(field, max, true)?;
        if s.chars().any(char::is_control) {
            self.error(field, "may not contain control characters");
            return None;
        }
        Some(s.to_owned())
    }

    /// A person's display name ([`DisplayName`]: trimmed, bounded, nothing invisible).
    pub fn name(&mut self, field: &str) -> Option<DisplayName> {
        let raw = self.raw_string(field, true)?;
        DisplayName::parse(raw).map_err(|e| self.error(field, e.to_string())).ok()
    }

    /// Like [`Fields::text`], but absent or `null` is `None` without an error.
    pub fn optional_text(&mut self, field: &str, max: usize) -> Option<String> {
        match self.obj.get(field) {
            None | Some(Value::Null) => None,
            Some(_) => self.text(field, max),
        }
    }

    /// A required JSON object (a WebAuthn credential), as JSON text of at most `max` bytes.
    pub fn object(&mut self, field: &str, max: usize) -> Option<String> {
        match self.obj.get(field) {
            None | Some(Value::Null) => {
                self.error(field, "is required");
                None
            }
            Some(v @ Value::Object(_)) => {
                let text = v.to_string();
                if text.len() > max {
                    self.error(field, format!("may not be larger than {max} bytes"));
                    return None;
                }
                Some(text)
            }
            Some(_) => {
                self.error(field, "must be an object");
                None
            }
        }
    }

    /// Like [`Fields::object`], but absent or `null` is `None` without an error.
    pub fn optional_object(&mut self, field: &str, max: usize) -> Option<String> {
        match self.obj.get(field) {
            None | Some(Value::Null) => None,
            Some(_) => self.object(field, max),
        }
    }

    /// A required string passed through as-is (passwords: never trimmed, never altered), capped
    /// at `max` characters so nothing huge reaches a hash function.
    pub fn secret(&mut self, field: &str, max: usize) -> Option<String> {
        self.bounded(field, max, false).map(str::to_owned)
    }

    pub fn email(&mut self, field: &str) -> Option<Email> {
        let raw = self.raw_string(field, true)?;
        match Email::parse(raw) {
            Ok(e) => Some(e),
            Err(e) => {
                self.error(field, format!("must be a valid email address ({e})"));
                None
            }
        }
    }

    /// A new password meeting the policy, equal to `<field>_confirmation`.
    pub fn new_password(&mut self, field: &str, policy: &PasswordPolicy) -> Option<NewPassword> {
        self.new_password_for(field, policy, &PasswordContext::default())
    }

    /// A new password meeting the policy, not built from `context` (the account's email and name,
    /// the app's name), equal to `<field>_confirmation`.
    pub fn new_password_for(
        &mut self,
        field: &str,
        policy: &PasswordPolicy,
        context: &PasswordContext<'_>,
    ) -> Option<NewPassword> {
        let raw = self.raw_string(field, true);
        let confirmation_field = format!("{field}_confirmation");
        // Read before giving up on a missing password, so both missing fields are reported.
        let confirmation = self.raw_string(&confirmation_field, true);
        let raw = raw?;
        let checked = match policy.check_with_context(raw, context) {
            Ok(p) => Some(p),
            Err(PasswordError::TooShort(n)) => {
                self.error(field, format!("must be at least {n} characters"));
                None
            }
            Err(PasswordError::TooLong(n)) => {
                self.error(field, format!("may not be longer than {n} characters"));
                None
            }
            Err(PasswordError::Common) => {
                self.error(field, "is too common; choose a password that is harder to guess");
                None
            }
            Err(PasswordError::ContainsContext) => {
                self.error(field, "may not contain your email address or be the name of this app");
                None
            }
            Err(PasswordError::Guessable) => {
                self.error(
                    field,
                    "is too easy to guess; avoid repeated characters, sequences, common words and your own name",
                );
                None
            }
        };
        // Compared as the policy compares passwords: NFKC, so an NFD confirmation of an NFC password matches.
        let same = |c: &str| c == raw || PasswordAttempt::new(c).expose() == PasswordAttempt::new(raw).expose();
        if confirmation.is_some_and(|c| !same(c)) {
            self.error(field, "confirmation does not match");
            return None;
        }
        checked
    }

    pub fn optional_bool(&mut self, field: &str) -> Option<bool> {
        match self.obj.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                self.error(field, "must be true or false");
                None
            }
        }
    }

    /// An optional whole number in `min..=max`.
    pub fn optional_int(&mut self, field: &str, min: i64, max: i64) -> Option<i64> {
        match self.obj.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => match n.as_i64() {
                Some(v) if (min..=max).contains(&v) => Some(v),
                _ => {
                    self.error(field, format!("must be a whole number from {min} to {max}"));
                    None
                }
            },
            Some(_) => {
                self.error(field, "must be a number");
                None
            }
        }
    }

    /// An optional list of at most `max_items` non-empty strings of at most `max_len` characters.
    pub fn optional_string_list(&mut self, field: &str, max_items: usize, max_len: usize) -> Option<Vec<String>> {
        match self.obj.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) if items.len() <= max_items => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    match item.as_str().map(str::trim) {
                        Some(s)
                            if !s.is_empty() && s.chars().count() <= max_len && !s.chars().any(char::is_control) =>
                        {
                            out.push(s.to_owned())
                        }
                        _ => {
                            self.error(field, format!("must hold non-empty strings of at most {max_len} characters"));
                            return None;
                        }
                    }
                }
                Some(out)
            }
            Some(Value::Array(_)) => {
                self.error(field, format!("may hold at most {max_items} items"));
                None
            }
            Some(_) => {
                self.error(field, "must be a list of strings");
                None
            }
        }
    }

    /// `Ok` when every field read so far was valid; else 422 with every problem.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() { Ok(()) } else { Err(ApiError::validation(self.errors)) }
    }
}

/// The value of the named cookie in `Cookie` header values (or API Gateway's `cookies` array);
/// `None` when it is absent or sent more than once. A browser sends two cookies of one name when
/// a sibling subdomain set one for the parent domain beside ours (cookie tossing), in an order
/// the other site can sway: neither is taken, so a planted session is never the one used.
pub fn find_cookie<'a>(values: impl IntoIterator<Item = &'a str>, name: &str) -> Option<String> {
    let mut found = values
        .into_iter()
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| v.trim());
    let first = found.next()?;
    if found.next().is_some() {
        tracing::warn!(event = "cookie_sent_twice", cookie = %name);
        return None;
    }
    Some(first.to_owned())
}

/// The value of the named cookie.
pub fn cookie(req: &Request, name: &str) -> Option<String> {
    find_cookie(req.headers().get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()), name)
}

/// The credential of an `Authorization` header value: `Ok(None)` for another scheme, `Err` for
/// an unreadable header or a bearer scheme without a credential.
pub fn parse_bearer(value: Option<&[u8]>) -> Result<Option<String>, ApiError> {
    let Some(v) = value else { return Ok(None) };
    let v = std::str::from_utf8(v).map_err(|_| ApiError::unauthenticated())?;
    match v.split_once(' ') {
        Some((scheme, cred)) if scheme.eq_ignore_ascii_case("bearer") => {
            let cred = cred.trim();
            if cred.is_empty() { Err(ApiError::unauthenticated()) } else { Ok(Some(cred.to_owned())) }
        }
        _ => Ok(None),
    }
}

/// The bearer credential from `Authorization: Bearer …` (never from the query string). Another
/// scheme is ignored; a malformed header is a 401.
pub fn bearer(req: &Request) -> Result<Option<String>, ApiError> {
    parse_bearer(req.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes()))
}

/// Source IP and user agent as API Gateway recorded them. `X-Forwarded-For` is believed only
/// from a proxy in `trusted` (`GATEHOUSE_TRUSTED_PROXIES`): the client is then its rightmost
/// address that is not a trusted proxy itself (each proxy appends the address it was called
/// from, so what a client wrote to the left of that is never taken). Anything else, the
/// connecting address.
pub fn client_meta(req: &Request, trusted: &[ipnet::IpNet]) -> ClientMeta {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => {
            let forwarded = req.headers().get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
            let ip = ctx.http.source_ip.as_deref().map(|ip| forwarded_client(ip, forwarded, trusted));
            ClientMeta::new(ip, ctx.http.user_agent.clone())
        }
        _ => ClientMeta::new(
            None,
            req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned),
        ),
    }
}

/// The client behind `source` ([`client_meta`]): `source` itself unless it is a trusted proxy;
/// then, walking the `X-Forwarded-For` lists right to left, the first address that is not a
/// trusted proxy (the last trusted one when all are, or when one is not an address).
pub fn forwarded_client<'a>(
    source: &str,
    forwarded: impl Iterator<Item = &'a str>,
    trusted: &[ipnet::IpNet],
) -> String {
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|n| n.contains(ip));
    let Ok(mut client) = source.trim().parse::<std::net::IpAddr>() else { return source.to_owned() };
    if !is_trusted(&client) {
        return source.to_owned();
    }
    let hops: Vec<&str> = forwarded.flat_map(|v| v.split(',')).map(str::trim).collect();
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<std::net::IpAddr>() else { break };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client.to_string()
}

/// API Gateway's request id, for logs.
pub fn request_id(req: &Request) -> String {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.request_id.clone().unwrap_or_default(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod forwarded_tests {
    use super::forwarded_client;

    fn nets(list: &[&str]) -> Vec<ipnet::IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn without_trusted_proxies_the_connecting_address_is_the_client_whatever_the_header_says() {
        assert_eq!(forwarded_client("203.0.113.9", ["198.51.100.1"].into_iter(), &[]), "203.0.113.9");
        let trusted = nets(&["10.0.0.0/8"]);
        // A client that is no trusted proxy writes what it likes: not believed.
        assert_eq!(forwarded_client("203.0.113.9", ["10.0.0.1, 1.2.3.4"].into_iter(), &trusted), "203.0.113.9");
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_address_is_the_client() {
        let trusted = nets(&["10.0.0.0/8", "2001:db8::/32"]);
        // The proxy appended the address it was called from; what the client wrote is to its left.
        let h = ["6.6.6.6, 198.51.100.7"];
        assert_eq!(forwarded_client("10.0.0.5", h.into_iter(), &trusted), "198.51.100.7");
        // Two proxies, over two header lines; IPv6.
        let h = ["6.6.6.6", "2001:db8:1::9, 198.51.100.8, 10.9.9.9"];
        assert_eq!(forwarded_client("10.0.0.5", h.into_iter(), &trusted), "198.51.100.8");
        // Nothing but proxies, no header, or garbage: the last trusted address seen.
        assert_eq!(forwarded_client("10.0.0.5", ["10.1.1.1"].into_iter(), &trusted), "10.1.1.1");
        assert_eq!(forwarded_client("10.0.0.5", std::iter::empty(), &trusted), "10.0.0.5");
        assert_eq!(forwarded_client("10.0.0.5", ["6.6.6.6, not-an-ip"].into_iter(), &trusted), "10.0.0.5");
    }
}
