//! CORS for `gatehouse serve`, as API Gateway's HTTP API answers it on AWS (template.yaml's
//! `CorsConfiguration`, present when `AllowedOrigins` is set): the origins are
//! `GATEHOUSE_ALLOWED_ORIGINS`, credentials are allowed, and a preflight is answered by the API
//! itself (the functions never see an `OPTIONS`). An origin not listed gets no CORS header at
//! all, so the browser keeps the answer from the page; the request itself is still served, and
//! the CSRF rule (gatehouse-http) is what refuses a state change from elsewhere.

use hyper::header::{HeaderMap, HeaderValue};

/// What template.yaml's `CorsConfiguration` allows.
const METHODS: &str = "GET,POST,PUT,DELETE,OPTIONS";
const HEADERS: &str = "authorization,content-type";
const MAX_AGE: &str = "600";
/// What a page may read of an answer besides the safelisted headers: a 429's wait.
const EXPOSE: &str = "retry-after";

/// The allowed origins, exact (`scheme://host[:port]`, lower case, as the configuration keeps them).
#[derive(Debug, Clone, Default)]
pub struct Cors {
    origins: Vec<String>,
}

impl Cors {
    pub fn new(origins: &[String]) -> Self {
        Self { origins: origins.to_vec() }
    }

    /// The request's `Origin` when it is one of the allowed ones.
    fn allowed(&self, request: &HeaderMap) -> Option<HeaderValue> {
        let origin = request.get(hyper::header::ORIGIN)?;
        let text = origin.to_str().ok()?;
        self.origins.iter().any(|o| o.eq_ignore_ascii_case(text)).then(|| origin.clone())
    }

    /// Whether this is a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`),
    /// which the API answers itself whatever the path.
    pub fn is_preflight(method: &str, request: &HeaderMap) -> bool {
        method == "OPTIONS"
            && request.contains_key(hyper::header::ORIGIN)
            && request.contains_key(hyper::header::ACCESS_CONTROL_REQUEST_METHOD)
    }

    /// The headers of a preflight's `204`: the grant for an allowed origin, none for another.
    pub fn preflight(&self, request: &HeaderMap) -> HeaderMap {
        let mut out = HeaderMap::new();
        out.insert(hyper::header::VARY, HeaderValue::from_static("Origin"));
        if let Some(origin) = self.allowed(request) {
            out.insert(hyper::header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            out.insert(hyper::header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
            out.insert(hyper::header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(METHODS));
            out.insert(hyper::header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(HEADERS));
            out.insert(hyper::header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(MAX_AGE));
        }
        out
    }

    /// Adds the grant to an answer when the request came from an allowed origin; every answer
    /// varies by `Origin` once any origin is allowed (a cache must not hand one site's grant to
    /// another).
    pub fn decorate(&self, request: &HeaderMap, answer: &mut HeaderMap) {
        if self.origins.is_empty() {
            return;
        }
        answer.append(hyper::header::VARY, HeaderValue::from_static("Origin"));
        if let Some(origin) = self.allowed(request) {
            answer.insert(hyper::header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            answer.insert(hyper::header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
            answer.insert(hyper::header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSE));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn an_allowed_origin_is_granted_with_credentials_and_another_gets_nothing() {
        let cors = Cors::new(&["http://localhost:3000".to_owned()]);
        let mut answer = HeaderMap::new();
        cors.decorate(&headers(&[("origin", "http://localhost:3000")]), &mut answer);
        assert_eq!(answer["access-control-allow-origin"], "http://localhost:3000");
        assert_eq!(answer["access-control-allow-credentials"], "true");
        assert_eq!(answer["access-control-expose-headers"], "retry-after", "a 429's wait, readable");
        assert_eq!(answer["vary"], "Origin");
        for other in ["http://localhost:3001", "https://localhost:3000", "null", "http://localhost:3000.evil.test"] {
            let mut answer = HeaderMap::new();
            cors.decorate(&headers(&[("origin", other)]), &mut answer);
            assert!(!answer.contains_key("access-control-allow-origin"), "{other}");
            assert!(!answer.contains_key("access-control-allow-credentials"), "{other}");
        }
    }

    #[test]
    fn a_preflight_is_recognised_and_granted_only_for_an_allowed_origin() {
        let cors = Cors::new(&["http://localhost:3000".to_owned()]);
        let asked = headers(&[("origin", "http://localhost:3000"), ("access-control-request-method", "PUT")]);
        assert!(Cors::is_preflight("OPTIONS", &asked));
        assert!(!Cors::is_preflight("OPTIONS", &headers(&[("origin", "http://localhost:3000")])));
        assert!(!Cors::is_preflight("PUT", &asked));
        let granted = cors.preflight(&asked);
        assert_eq!(granted["access-control-allow-methods"], METHODS);
        assert_eq!(granted["access-control-allow-headers"], HEADERS);
        let other = headers(&[("origin", "https://evil.test"), ("access-control-request-method", "PUT")]);
        assert!(!cors.preflight(&other).contains_key("access-control-allow-origin"));
    }

    #[test]
    fn without_allowed_origins_no_answer_changes() {
        let mut answer = HeaderMap::new();
        Cors::default().decorate(&headers(&[("origin", "http://localhost:3000")]), &mut answer);
        assert!(answer.is_empty());
    }
}
