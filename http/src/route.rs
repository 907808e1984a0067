//! One route table per function: `ROUTES: &[Route]` is the single statement of what a function
//! serves — it drives dispatch, `gatehouse serve`, the authorizer's public/ability rules, the
//! template test and the OpenAPI document's paths.

use crate::{ApiError, App, Fields, client_meta, json_object, request_id};
use gatehouse::routes::VERIFIED;
use gatehouse::services::access::Principal;
use gatehouse::services::auth::ClientMeta;
use gatehouse::tables::sessions::SessionRecord;
use gatehouse::tables::users::UserId;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{Map, Value};
use std::future::Future;
use std::pin::Pin;
use tracing::Instrument;

/// What a handler returns.
pub type Reply = Result<Response<Body>, ApiError>;
/// What the router runs for a route once its guard let the request through: an async function of
/// the [`Call`] and the caller the guard established, as a plain function pointer so route tables
/// are `static`. [`route!`] builds it from a handler typed by the guard.
pub type Handler = for<'a> fn(Call<'a>, Authed) -> Pin<Box<dyn Future<Output = Reply> + Send + 'a>>;
/// What a route makes of its guard's refusal (see [`Route::refused`]).
pub type OnRefusal = for<'a> fn(Call<'a>, ApiError) -> Pin<Box<dyn Future<Output = Reply> + Send + 'a>>;

/// Who may call a route. The router ([`dispatch`]) authenticates the request as its route's guard
/// says before any handler runs, and hands the handler what it found ([`Authed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// No credential (register, login, forgot/reset password, token issue, handoff exchange).
    Public,
    /// A bearer token or the session cookie holding every ability listed (sessions hold all).
    Credential(&'static [&'static str]),
    /// The session cookie itself (logout, password confirmation): a bearer token is not enough.
    Session,
}

/// The caller as the route's guard established it, before the handler runs: nobody for a public
/// route, the [`Principal`] for [`Guard::Credential`], the cookie's own session for
/// [`Guard::Session`]. [`route!`] unwraps it into the handler's typed second argument.
#[derive(Debug)]
pub enum Authed {
    Nobody,
    Principal(Principal),
    Session(SessionCaller),
}

/// The session the cookie names, for a [`Guard::Session`] route ("this session": logout,
/// password confirmation, the password-gated account changes).
#[derive(Debug, Clone)]
pub struct SessionCaller {
    pub user_id: UserId,
    pub session: SessionRecord,
}

impl Authed {
    /// What a handler answers when it was given another kind of caller than its guard produces:
    /// only a route built by hand (not with [`route!`]) could do that. A bug, never a way in.
    #[doc(hidden)]
    pub fn mismatch(call: &Call<'_>) -> ApiError {
        tracing::error!(route = %call.route.key(), "a handler was given a caller its guard does not produce");
        ApiError::internal()
    }
}

/// One route of a function.
#[derive(Clone, Copy)]
pub struct Route {
    /// `GET`, `POST`, `PUT`, `DELETE`.
    pub method: &'static str,
    /// A path pattern such as `/tokens/{id}`.
    pub path: &'static str,
    /// Enforced by [`dispatch`] before the handler runs.
    pub guard: Guard,
    /// The documented shape of the JSON body (a type in [`crate::requests`]), if it takes one.
    pub body: Option<&'static str>,
    pub handler: Handler,
    /// Run instead of answering the guard's refusal (401, 403) as it is: for a route whose own
    /// success makes its retry's credential fail (logout, deleting the account, changing the
    /// password), so a retry after a lost answer can be answered as the first attempt was. It
    /// returns the refusal unless it recognises that retry. `None`: the refusal is the answer.
    pub refused: Option<OnRefusal>,
}

impl Route {
    /// Whether the route needs no credential.
    pub fn public(&self) -> bool {
        self.guard == Guard::Public
    }

    /// The abilities a token must hold (none for sessions' own routes and public ones).
    pub fn abilities(&self) -> &'static [&'static str] {
        match self.guard {
            Guard::Credential(a) => a,
            Guard::Public | Guard::Session => &[],
        }
    }

    /// API Gateway's route key, `METHOD /path`.
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// A route table entry, its handler typed by its guard:
///
/// - `route!(POST "/login", Guard::Public, login)` with `async fn login(call: Call<'_>) -> Reply`;
/// - `route!(POST "/tokens", Guard::Credential(&[CREATE_TOKENS]), create)` with
///   `async fn create(call: Call<'_>, caller: Principal) -> Reply`;
/// - `route!(POST "/logout", Guard::Session, logout)` with
///   `async fn logout(call: Call<'_>, me: SessionCaller) -> Reply`.
///
/// Then `, body = RequestType` (a type in [`crate::requests`], for the document), and on a guarded
/// route `, refused = f` with `async fn f(call: Call<'_>, refusal: ApiError) -> Reply`
/// ([`Route::refused`]). The guard is written out (`Guard::Session`, not an expression that
/// computes one), so the handler's argument and the guard the router enforces cannot disagree.
#[macro_export]
macro_rules! route {
    (@route $method:ident $path:literal, $guard:expr, $handler:expr, $refused:expr, $body:expr) => {
        $crate::Route {
            method: stringify!($method),
            path: $path,
            guard: $guard,
            body: $body,
            handler: $handler,
            refused: $refused,
        }
    };
    (@body) => {
        None
    };
    (@body $body:ident) => {
        // Names a type that exists (checked here) for the document generator.
        Some({
            let _ = ::core::marker::PhantomData::<$crate::requests::$body>;
            stringify!($body)
        })
    };
    (@refused) => {
        None
    };
    (@refused $refused:path) => {
        Some({
            let f: $crate::OnRefusal = |call, refusal| Box::pin($refused(call, refusal));
            f
        })
    };
    ($method:ident $path:literal, $guard:ident::Public, $handler:path $(, body = $body:ident)?) => {
        $crate::route!(@route $method $path, $guard::Public,
            |call, _| Box::pin($handler(call)),
            None,
            $crate::route!(@body $($body)?))
    };
    ($method:ident $path:literal, $guard:ident::Credential($abilities:expr), $handler:path
        $(, body = $body:ident)? $(, refused = $refused:path)?) => {
        $crate::route!(@route $method $path, $guard::Credential($abilities),
            |call, caller| Box::pin(async move {
                match caller {
                    $crate::Authed::Principal(p) => $handler(call, p).await,
                    _ => Err($crate::Authed::mismatch(&call)),
                }
            }),
            $crate::route!(@refused $($refused)?),
            $crate::route!(@body $($body)?))
    };
    ($method:ident $path:literal, $guard:ident::Session, $handler:path
        $(, body = $body:ident)? $(, refused = $refused:path)?) => {
        $crate::route!(@route $method $path, $guard::Session,
            |call, caller| Box::pin(async move {
                match caller {
                    $crate::Authed::Session(s) => $handler(call, s).await,
                    _ => Err($crate::Authed::mismatch(&call)),
                }
            }),
            $crate::route!(@refused $($refused)?),
            $crate::route!(@body $($body)?))
    };
}

/// One request on its way through a handler: the app, the request, the route it matched and the
/// path parameters. Who is calling is not asked of it: the router established that from the
/// route's guard and gave it to the handler beside the call.
pub struct Call<'a> {
    pub app: &'a App,
    pub req: &'a Request,
    pub route: &'a Route,
    params: Vec<&'a str>,
}

/// What the route's guard says of the request: 401 without a valid credential, 403 without a
/// listed ability (or one GATEHOUSE_ROUTE_ABILITIES names, or a verified address it asks for).
async fn authenticate(call: &Call<'_>) -> Result<Authed, ApiError> {
    let route = call.route;
    match route.guard {
        Guard::Public => Ok(Authed::Nobody),
        Guard::Credential(abilities) => {
            call.app.require(call.req, &route.key(), abilities).await.map(Authed::Principal)
        }
        Guard::Session => own_session(call).await.map(Authed::Session),
    }
}

/// The session the cookie names, for routes that act on "this session" (logout, password
/// confirmation): a bearer token is not enough (401), and the Origin check applies (403).
async fn own_session(call: &Call<'_>) -> Result<SessionCaller, ApiError> {
    let app = call.app;
    let cookie = crate::cookie(call.req, &app.config.session.cookie_name).ok_or_else(ApiError::unauthenticated)?;
    crate::check_origin(call.req, &app.config.session)?;
    let rec = app.access.session(&cookie).await?.ok_or_else(ApiError::unauthenticated)?;
    let user = rec.user_id.clone().ok_or_else(ApiError::unauthenticated)?;
    // A session holds every ability but one derived from a token, which holds the token's.
    let route = call.route.key();
    if let Some(held) = &rec.abilities
        && let Some(lacking) =
            app.config.route_abilities.for_route(&route).iter().find(|r| *r != VERIFIED && !held.can(r))
    {
        return Err(ApiError::forbidden(format!("This session lacks the \"{lacking}\" ability.")));
    }
    if app.config.route_abilities.wants_verified(&route) && !app.access.verified(&user, rec.email_verified).await? {
        return Err(ApiError::email_unverified());
    }
    Ok(SessionCaller { user_id: user, session: rec })
}

impl<'a> Call<'a> {
    /// The session cookie's value as an id, whatever became of its session (after the Origin
    /// rule of cookie state changes): for a retry that finishes what this session began
    /// ([`gatehouse::services::auth::Auth::resume_own_change`]). `None` without one.
    pub fn session_id(&self) -> Result<Option<gatehouse::tables::sessions::SessionId>, ApiError> {
        let app = self.app;
        let Some(cookie) = crate::cookie(self.req, &app.config.session.cookie_name) else { return Ok(None) };
        crate::check_origin(self.req, &app.config.session)?;
        Ok(gatehouse::tables::sessions::SessionId::parse(&cookie))
    }

    /// The `n`th `{…}` path parameter (routes without one never ask).
    pub fn param(&self, n: usize) -> &'a str {
        self.params.get(n).copied().unwrap_or_default()
    }

    /// A query string parameter.
    pub fn query(&self, key: &str) -> Option<String> {
        self.req.query_string_parameters_ref().and_then(|q| q.first(key)).map(str::to_owned)
    }

    /// The JSON object body (415, 413 and 422 as [`json_object`] says).
    pub fn body(&self) -> Result<Map<String, Value>, ApiError> {
        json_object(self.req)
    }

    /// Reads the body's fields with `read`, collecting every field error into one 422; `read`
    /// returns the parsed value only when every field it needs is present.
    pub fn fields<T>(&self, read: impl FnOnce(&mut Fields<'_>) -> Option<T>) -> Result<T, ApiError> {
        let body = self.body()?;
        let mut f = Fields::new(&body);
        let value = read(&mut f);
        f.finish()?;
        // `finish` passed, so every field `read` needs was there: `None` here is a reader bug.
        value.ok_or_else(|| {
            tracing::error!(route = %self.route.key(), "a field reader returned nothing without a field error");
            ApiError::internal()
        })
    }

    pub fn meta(&self) -> ClientMeta {
        client_meta(self.req, &self.app.config.trusted_proxies)
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        crate::cookie(self.req, name)
    }
}

/// Whether `path` matches a route pattern such as `/tokens/{id}`, with its parameters.
pub fn match_path<'p>(pattern: &str, path: &'p str) -> Option<Vec<&'p str>> {
    let (a, b): (Vec<_>, Vec<_>) = (pattern.split('/').collect(), path.split('/').collect());
    if a.len() != b.len() {
        return None;
    }
    let mut params = Vec::new();
    for (p, s) in a.iter().zip(&b) {
        if p.starts_with('{') && p.ends_with('}') && !s.is_empty() {
            params.push(*s);
        } else if p != s {
            return None;
        }
    }
    Some(params)
}

/// Whether `path` matches a route pattern such as `/tokens/{id}`.
pub fn path_matches(pattern: &str, path: &str) -> bool {
    match_path(pattern, path).is_some()
}

/// The route of `routes` that takes `method path`, with its parameters: a literal route
/// (`/tokens/issue`) wins over a pattern (`/tokens/{id}`).
pub fn find<'r, 'p>(routes: &'r [Route], method: &str, path: &'p str) -> Option<(&'r Route, Vec<&'p str>)> {
    let literal = routes.iter().any(|r| r.path == path);
    routes
        .iter()
        .filter(|r| r.method == method && (!literal || r.path == path))
        .find_map(|r| match_path(r.path, path).map(|params| (r, params)))
}

/// The answer for a request no route of `routes` takes: 405 with `Allow` when the path is known
/// with other methods, else 404.
pub fn no_route(routes: &[Route], path: &str) -> ApiError {
    let literal = routes.iter().any(|r| r.path == path);
    let allowed: Vec<&str> = routes
        .iter()
        .filter(|r| if literal { r.path == path } else { path_matches(r.path, path) })
        .map(|r| r.method)
        .collect();
    if allowed.is_empty() { ApiError::not_found() } else { ApiError::method_not_allowed(allowed.join(", ")) }
}

/// Serves one request with the route table: finds the route (404/405 otherwise), authenticates
/// the request as the route's guard says (once: the handler is given the caller, and asks no
/// store again), runs its handler in a span carrying the request id, and turns every error into
/// the API's error JSON. A refusal by the guard is the answer, unless the route has its own
/// [`Route::refused`]. Never panics on input.
pub async fn dispatch(app: &App, routes: &[Route], req: Request) -> Response<Body> {
    let span = tracing::info_span!("request", request_id = %request_id(&req), method = %req.method(), path = %req.uri().path());
    async {
        let path = req.uri().path();
        match find(routes, req.method().as_str(), path) {
            Some((route, params)) => {
                let call = Call { app, req: &req, route, params };
                match (authenticate(&call).await, route.refused) {
                    (Ok(caller), _) => (route.handler)(call, caller).await,
                    (Err(refusal), Some(refused)) => refused(call, refusal).await,
                    (Err(refusal), None) => Err(refusal),
                }
            }
            None => Err(no_route(routes, path)),
        }
        .unwrap_or_else(ApiError::into_response)
    }
    .instrument(span)
    .await
}

/// Runs `handle` on `req` within the invocation's deadline (`gatehouse::values::deadline`): past its
/// budget the client gets the API's 503 `unavailable` with `Retry-After: 1` instead of Lambda's
/// bare timeout. Outside Lambda (no invocation context) the handler runs to its end.
pub async fn within_deadline<F>(req: Request, handle: impl FnOnce(Request) -> F) -> Response<Body>
where
    F: std::future::Future<Output = Response<Body>>,
{
    let deadline = req.lambda_context_ref().map(|c| c.deadline());
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    match gatehouse::values::deadline::within(deadline, handle(req)).await {
        Some(resp) => resp,
        None => {
            tracing::warn!(%method, %path, "request gave up at its deadline");
            ApiError::unavailable().with_retry_after(1).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn nothing(_: Call<'_>) -> Reply {
        Err(ApiError::internal())
    }

    async fn nothing_for(_: Call<'_>, _: Principal) -> Reply {
        Err(ApiError::internal())
    }

    async fn nothing_here(_: Call<'_>, _: SessionCaller) -> Reply {
        Err(ApiError::internal())
    }

    async fn refusal(_: Call<'_>, refusal: ApiError) -> Reply {
        Err(refusal)
    }

    const ROUTES: &[Route] = &[
        route!(POST "/tokens", Guard::Credential(&["tokens:create"]), nothing_for, body = CreateTokenRequest),
        route!(GET "/tokens", Guard::Credential(&[]), nothing_for),
        route!(POST "/tokens/issue", Guard::Public, nothing),
        route!(DELETE "/tokens/{id}", Guard::Credential(&[]), nothing_for, refused = refusal),
        route!(POST "/logout", Guard::Session, nothing_here, refused = refusal),
    ];

    #[test]
    fn the_table_says_what_each_route_guards_and_documents() {
        let guards: Vec<Guard> = ROUTES.iter().map(|r| r.guard).collect();
        assert_eq!(
            guards,
            [
                Guard::Credential(&["tokens:create"]),
                Guard::Credential(&[]),
                Guard::Public,
                Guard::Credential(&[]),
                Guard::Session
            ]
        );
        assert_eq!(ROUTES[0].body, Some("CreateTokenRequest"));
        let refusing: Vec<bool> = ROUTES.iter().map(|r| r.refused.is_some()).collect();
        assert_eq!(refusing, [false, false, false, true, true]);
    }

    #[test]
    fn a_wrong_method_gets_405_with_exactly_the_allowed_methods() {
        assert_eq!(no_route(ROUTES, "/tokens").allow.as_deref(), Some("POST, GET"));
        assert_eq!(no_route(ROUTES, "/tokens/issue").allow.as_deref(), Some("POST"));
        assert_eq!(no_route(ROUTES, "/tokens/abc").allow.as_deref(), Some("DELETE"));
        assert_eq!(no_route(ROUTES, "/nope").status, lambda_http::http::StatusCode::NOT_FOUND);
    }

    #[test]
    fn a_literal_route_wins_and_parameters_are_read_in_order() {
        assert_eq!(find(ROUTES, "POST", "/tokens/issue").map(|(r, _)| r.path), Some("/tokens/issue"));
        assert!(find(ROUTES, "DELETE", "/tokens/issue").is_none(), "a literal path is not an id");
        let (r, params) = find(ROUTES, "DELETE", "/tokens/42").unwrap();
        assert_eq!((r.path, params), ("/tokens/{id}", vec!["42"]));
        assert!(find(ROUTES, "DELETE", "/tokens/").is_none(), "an empty parameter matches nothing");
        assert_eq!(ROUTES[0].abilities(), ["tokens:create"]);
        assert!(ROUTES[2].public() && !ROUTES[1].public());
    }
}
