//! The HTTP edge every gatehouse function shares: the API's error JSON, input parsing that turns
//! bad bodies into 4xx (never a 500, never a panic), cookies, what API Gateway says about the
//! caller, and the [`App`] built once per process.

mod error;
pub mod event;
pub mod federation;
mod input;
/// The outbound HTTPS client (moved to `gatehouse-aws`, which the job worker shares).
pub use gatehouse_aws::outbound;
mod paging;
pub mod requests;
mod route;
pub mod views;

pub use error::{ApiError, ErrorBody, ErrorDetail};
pub use input::{Fields, MAX_BODY, bearer, client_meta, cookie, find_cookie, json_object, parse_bearer, request_id};
pub use paging::PageQuery;
pub use route::{
    Authed, Call, Guard, Handler, OnRefusal, Reply, Route, SessionCaller, dispatch, find, match_path, no_route,
    path_matches, within_deadline,
};

#[doc(hidden)]
pub use gatehouse as __gatehouse;
pub use lambda_http;

use gatehouse::config::SessionConfig;
use gatehouse::services::access::{Access, Principal};
use gatehouse::services::auth::Auth;
use gatehouse::tables::sessions::SessionId;
use gatehouse::{Config, Stores};
use lambda_http::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use std::sync::Arc;

/// What a function needs, built once at start-up and lent to every request.
#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub stores: Stores,
    pub access: Access,
    pub auth: Auth,
    /// The OAuth provider's keys, in the functions that sign or check its tokens
    /// ([`App::with_signing_keys`]); the others have none.
    pub signing_keys: Option<Arc<gatehouse::signing::SigningKeys>>,
    /// The identity providers' outbound calls, when not over HTTPS (tests answer them).
    pub fetch: Option<Arc<dyn gatehouse::services::federation::Fetch>>,
    /// The identity providers' discovery documents and keys, kept for the process's life.
    pub provider_metadata: Arc<gatehouse::services::federation::metadata::MetadataCache>,
}

impl App {
    /// Builds the argon2 machinery (and hashes the dummy password once).
    pub fn new(config: Config, stores: Stores) -> Result<Self, gatehouse::values::password::HashError> {
        Self::with_hooks(config, stores, gatehouse_aws::hooks::caller(None))
    }

    /// [`App::new`], calling the blocking hooks through `hooks` (HTTP hooks only without an AWS
    /// configuration; Lambda hooks too with one, as [`App::from_env`] builds it).
    pub fn with_hooks(
        config: Config,
        stores: Stores,
        hooks: Arc<dyn gatehouse::services::hooks::HookCaller>,
    ) -> Result<Self, gatehouse::values::password::HashError> {
        let config = Arc::new(config);
        let access = Access::new(stores.clone(), config.clone()).with_hooks(hooks);
        let auth = Auth::new(access.clone())?;
        Ok(Self {
            config,
            stores,
            access,
            auth,
            signing_keys: None,
            fetch: None,
            provider_metadata: Default::default(),
        })
    }

    /// This app with the OAuth provider's keys.
    pub fn with_signing_keys(mut self, keys: gatehouse::signing::SigningKeys) -> Self {
        self.signing_keys = Some(Arc::new(keys));
        self
    }

    /// The OAuth provider, signing with this app's keys when it has them (the consent page needs
    /// none: it only stores codes).
    pub fn oauth(&self) -> gatehouse::services::oauth::OAuthProvider {
        gatehouse::services::oauth::OAuthProvider::new(self.auth.clone(), self.signing_keys.clone())
    }

    /// Configuration from the environment and the DynamoDB/SQS stores; no network call.
    pub async fn from_env() -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let boot = gatehouse_aws::Boot::from_env().await?;
        let hooks = gatehouse_aws::hooks::caller(Some(&boot.sdk));
        Ok(Self::with_hooks(boot.config, boot.stores, hooks)?)
    }

    /// [`App::from_env`] with the OAuth provider's signing keys (in KMS: its public half read
    /// once, here).
    pub async fn from_env_with_signing_keys() -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let boot = gatehouse_aws::Boot::from_env().await?;
        let hooks = gatehouse_aws::hooks::caller(Some(&boot.sdk));
        if !boot.config.oauth.enabled {
            // Off (no issuer configured): the endpoints say so; nothing to sign with.
            return Ok(Self::with_hooks(boot.config, boot.stores, hooks)?);
        }
        let keys = gatehouse_aws::kms::provider_keys(&boot.sdk, &boot.config, &boot.stores).await?;
        Ok(Self::with_hooks(boot.config, boot.stores, hooks)?.with_signing_keys(keys))
    }

    /// The relying party of the configured identity providers (social sign-in), over this
    /// process's outbound client and metadata cache, or [`App::fetch`] when one was given.
    pub fn federation(&self) -> gatehouse::services::federation::Federation {
        let fetch = self.fetch.clone().unwrap_or_else(outbound::shared);
        let cache = self.provider_metadata.clone();
        gatehouse::services::federation::Federation::new(self.auth.clone(), self.dispatcher(), fetch, cache)
    }

    /// The queue, for the jobs a request dispatches.
    pub fn dispatcher(&self) -> gatehouse::queue::Dispatcher {
        gatehouse::queue::Dispatcher::for_config(self.stores.clone(), &self.config)
    }

    /// The caller, from a bearer token or the session cookie; `None` when neither is valid. A state
    /// change authenticated by the cookie must pass [`check_origin`] first (403 `csrf`).
    pub async fn principal(&self, req: &Request) -> Result<Option<Principal>, ApiError> {
        let bearer = bearer(req)?;
        let cookie = cookie(req, &self.config.session.cookie_name);
        if bearer.is_none() && cookie.is_some() {
            check_origin(req, &self.config.session)?;
        }
        Ok(self.access.principal(bearer.as_deref(), cookie.as_deref()).await?)
    }

    /// The caller, who must be authenticated (401), hold every ability listed (403) and meet
    /// what GATEHOUSE_ROUTE_ABILITIES requires of `route_key` (403; `email_unverified` for a
    /// verified address, judged on the flag the credential carries: no extra read).
    pub async fn require(&self, req: &Request, route_key: &str, abilities: &[&str]) -> Result<Principal, ApiError> {
        let p = self.principal(req).await?.ok_or_else(ApiError::unauthenticated)?;
        let lacks = |a: &str| ApiError::forbidden(format!("This token lacks the \"{a}\" ability."));
        if let Some(a) = abilities.iter().find(|a| !p.can(a)) {
            return Err(lacks(a));
        }
        match self.access.unmet(&self.config.route_abilities, route_key, &p).await?.as_deref() {
            None => Ok(p),
            Some(gatehouse::routes::VERIFIED) => Err(ApiError::email_unverified()),
            Some(a) => Err(lacks(a)),
        }
    }
}

/// A JSON response with the headers every gatehouse response carries.
pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Response<Body> {
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_owned());
    with_standard_headers(
        Response::builder().status(status).header(header::CONTENT_TYPE, "application/json"),
        Body::Text(text),
    )
}

/// 204 with the standard headers.
pub fn no_content() -> Response<Body> {
    with_standard_headers(Response::builder().status(StatusCode::NO_CONTENT), Body::Empty)
}

/// HTTPS only, for two years, subdomains included.
pub const HSTS: &str = "max-age=63072000; includeSubDomains";
/// The API serves JSON, never a page: nothing may load from it, and nothing may frame it.
pub const CSP: &str = "default-src 'none'; frame-ancestors 'none'";

fn with_standard_headers(builder: lambda_http::http::response::Builder, body: Body) -> Response<Body> {
    standard_headers(builder, CSP).body(body).unwrap_or_else(|_| Response::new(Body::Empty))
}

/// The headers every gatehouse response carries, with its content security policy: never cached,
/// no referrer, no sniffing, HTTPS only.
pub fn standard_headers(
    builder: lambda_http::http::response::Builder,
    csp: &'static str,
) -> lambda_http::http::response::Builder {
    builder
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::REFERRER_POLICY, "no-referrer")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::STRICT_TRANSPORT_SECURITY, HSTS)
        .header(header::CONTENT_SECURITY_POLICY, csp)
}

/// Refuses a state change (POST, PUT, PATCH, DELETE) that a browser sent from another site: the
/// defence against cross-site request forgery for requests the session cookie authenticates or
/// that set it (login CSRF). The browser says where a request comes from: `Sec-Fetch-Site` of
/// `same-origin` or `none` (typed, bookmarked) passes; otherwise an `Origin` that is the API's
/// own (`https://<Host>`) or one of `cfg.allowed_origins` passes; any other `Sec-Fetch-Site` or
/// `Origin` is refused with 403 `csrf`. A request with neither header does not come from a
/// browser (curl, a server), so it carries no victim's cookie and passes. Bearer-token requests
/// never get here: a page cannot make a browser attach an `Authorization` header by itself.
pub fn check_origin(req: &Request, cfg: &SessionConfig) -> Result<(), ApiError> {
    origin_rule(req.method(), req.headers(), cfg).map_err(|refused| {
        tracing::warn!(event = "csrf_refused", sec_fetch_site = ?refused.sec_fetch_site, origin = ?refused.origin, method = %req.method(), path = %req.uri().path());
        ApiError::csrf()
    })
}

/// What a browser said of a state change it sent from another site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrossSite {
    pub sec_fetch_site: Option<String>,
    pub origin: Option<String>,
}

/// [`check_origin`]'s rule over a method and headers, for a caller without a [`Request`] (the
/// authorizer, on API Gateway's event): `Err` with what the browser said when it is refused.
pub fn origin_rule(method: &Method, headers: &HeaderMap, cfg: &SessionConfig) -> Result<(), CrossSite> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE) {
        return Ok(());
    }
    // Present but unreadable counts as present and foreign.
    let read = |name: header::HeaderName| {
        headers.get(name).map(|v| v.to_str().unwrap_or_default().trim().to_ascii_lowercase())
    };
    let site = read(header::HeaderName::from_static("sec-fetch-site"));
    if matches!(site.as_deref(), Some("same-origin" | "none")) {
        return Ok(());
    }
    let origin = read(header::ORIGIN);
    if let Some(o) = &origin {
        let own = read(header::HOST).map(|host| format!("https://{host}"));
        if own.as_deref() == Some(o.as_str()) || cfg.allowed_origins.iter().any(|a| a == o) {
            return Ok(());
        }
    }
    if site.is_none() && origin.is_none() {
        return Ok(());
    }
    Err(CrossSite { sec_fetch_site: site, origin })
}

/// A `Set-Cookie` value: `name=value; Path=/; HttpOnly; Secure; SameSite=<same_site>`, then
/// `Domain` when given and `Max-Age` when given (0 also sets a past `Expires`, for old clients).
/// Every cookie gatehouse sets is built here.
pub fn set_cookie(name: &str, value: &str, same_site: &str, domain: Option<&str>, max_age: Option<i64>) -> HeaderValue {
    // RFC 6265's grammar, so nothing given here can end the header or add an attribute (a `;` in
    // a value would): a name and `SameSite` are tokens, a value is cookie-octets, a domain a host
    // name. Anything else sets the same harmless expired cookie as an unencodable header would.
    let token =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
    let octets = |s: &str| s.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b',' | b';' | b'\\'));
    let host = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if !token(name) || !octets(value) || !token(same_site) || domain.is_some_and(|d| !host(d)) {
        return HeaderValue::from_static(INVALID_COOKIE);
    }
    let mut c = format!("{name}={value}; Path=/; HttpOnly; Secure; SameSite={same_site}");
    if let Some(d) = domain {
        c.push_str(&format!("; Domain={d}"));
    }
    match max_age {
        Some(0) => c.push_str("; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"),
        Some(secs) => c.push_str(&format!("; Max-Age={secs}")),
        None => {}
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(INVALID_COOKIE))
}

/// What [`set_cookie`] sets when it is given what no cookie may hold.
const INVALID_COOKIE: &str = "invalid=; Max-Age=0";

/// The session cookie: `HttpOnly; Secure; SameSite=Lax; Path=/`, no `Domain` unless one is
/// configured (the name carries `__Host-` without a domain, `__Secure-` with one: see
/// [`SessionConfig::cookie_name`]); a browser-session cookie unless "remember me" (then it lasts
/// as long as the remembered session may).
pub fn session_cookie(cfg: &SessionConfig, id: &SessionId, remember: bool) -> HeaderValue {
    let max_age = remember.then(|| cfg.remember.num_seconds());
    set_cookie(&cfg.cookie_name, id.expose(), "Lax", cfg.cookie_domain.as_deref(), max_age)
}

/// The device cookie's name: the session cookie's, with `_device` (so it keeps its prefix).
pub fn device_cookie_name(cfg: &SessionConfig) -> String {
    format!("{}_device", cfg.cookie_name)
}

/// After a complete sign-in: the device cookie the sign-in gave (`Opened::device_cookie`, when
/// the device was not one the account knows now) is added to `resp`, so the device has its own
/// login count from now on, untouched by floods against the account.
pub fn remember_device(app: &App, resp: Response<Body>, given: Option<&str>) -> Response<Body> {
    let Some(value) = given else { return resp };
    let mut resp = resp;
    resp.headers_mut().append(header::SET_COOKIE, device_cookie(&app.config.session, value));
    resp
}

/// The device cookie given at a successful login (OWASP's device cookie, see
/// `Auth::check_password`): a year, `HttpOnly; Secure; SameSite=Strict`.
pub fn device_cookie(cfg: &SessionConfig, value: &str) -> HeaderValue {
    set_cookie(&device_cookie_name(cfg), value, "Strict", cfg.cookie_domain.as_deref(), Some(31_536_000))
}

/// A cookie that removes the session cookie.
pub fn clear_session_cookie(cfg: &SessionConfig) -> HeaderValue {
    set_cookie(&cfg.cookie_name, "", "Lax", cfg.cookie_domain.as_deref(), Some(0))
}

/// The whole `main` of an HTTP function: tracing, [`App::from_env`], then every request through
/// the function's route table.
#[macro_export]
macro_rules! http_main {
    ($routes:path) => {
        $crate::http_main!(handler = |app, req| $crate::dispatch(app, $routes, req));
    };
    (signing, $routes:path) => {
        $crate::http_main!(@main $crate::App::from_env_with_signing_keys(), |app, req| $crate::dispatch(app, $routes, req));
    };
    (handler = $handler:expr) => {
        $crate::http_main!(@main $crate::App::from_env(), $handler);
    };
    (@main $build:expr, $handler:expr) => {
        #[tokio::main]
        async fn main() -> Result<(), $crate::lambda_http::Error> {
            $crate::__gatehouse::telemetry::init_tracing();
            let app = ::std::sync::Arc::new($build.await?);
            // One invocation at a time on classic Lambda; AWS_LAMBDA_MAX_CONCURRENCY at once on
            // Lambda Managed Instances, sharing the one App (its clients and caches).
            $crate::lambda_http::run_concurrent($crate::lambda_http::service_fn(
                move |req: $crate::lambda_http::Request| {
                    let app = ::std::sync::Arc::clone(&app);
                    async move {
                        let answer = $crate::within_deadline(req, |req| ($handler)(&*app, req)).await;
                        Ok::<_, $crate::lambda_http::Error>(answer)
                    }
                },
            ))
            .await
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(headers: &[(&str, &str)]) -> Request {
        let mut b =
            lambda_http::http::Request::builder().method("POST").uri("/logout").header("host", "api.example.com");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Body::Empty).unwrap()
    }

    fn session_config(origins: &[&str]) -> SessionConfig {
        let mut c = Config::from_map(&Default::default()).unwrap().session;
        c.allowed_origins = origins.iter().map(|o| o.to_string()).collect();
        c
    }

    #[test]
    fn the_origin_check_refuses_what_a_browser_says_is_cross_site() {
        let cfg = session_config(&["https://app.example.com"]);
        let refused = |h: &[(&str, &str)]| check_origin(&post(h), &cfg).map_err(|e| e.code);
        assert_eq!(refused(&[("sec-fetch-site", "cross-site")]), Err("csrf"));
        assert_eq!(refused(&[("sec-fetch-site", "same-site")]), Err("csrf"));
        assert_eq!(refused(&[("origin", "https://evil.example")]), Err("csrf"));
        assert_eq!(refused(&[("origin", "null")]), Err("csrf"));
        assert_eq!(refused(&[("origin", "http://api.example.com")]), Err("csrf"), "plain http is another origin");
        assert_eq!(refused(&[("sec-fetch-site", "cross-site"), ("origin", "https://evil.example")]), Err("csrf"));

        assert_eq!(refused(&[]), Ok(()), "no browser, no cookie to abuse");
        assert_eq!(refused(&[("sec-fetch-site", "same-origin"), ("origin", "https://api.example.com")]), Ok(()));
        assert_eq!(refused(&[("sec-fetch-site", "none")]), Ok(()));
        assert_eq!(refused(&[("origin", "https://api.example.com")]), Ok(()), "the API's own origin");
        assert_eq!(refused(&[("sec-fetch-site", "same-site"), ("origin", "https://APP.example.com")]), Ok(()));
        let get = lambda_http::http::Request::builder()
            .method("GET")
            .uri("/user")
            .header("sec-fetch-site", "cross-site")
            .body(Body::Empty)
            .unwrap();
        assert_eq!(check_origin(&get, &cfg), Ok(()), "safe methods change nothing");
    }

    #[test]
    fn every_response_carries_hsts_and_the_csp() {
        for resp in [no_content(), json(StatusCode::OK, &()), ApiError::csrf().into_response()] {
            assert_eq!(resp.headers()[header::STRICT_TRANSPORT_SECURITY], HSTS);
            assert_eq!(resp.headers()[header::CONTENT_SECURITY_POLICY], CSP);
        }
    }
}
