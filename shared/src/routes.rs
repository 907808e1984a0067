//! Route keys as API Gateway spells them (`METHOD /path`), and gatehouse's own: configuration
//! that names routes (`GATEHOUSE_ROUTE_ABILITIES`, `GATEHOUSE_CUSTOMER_ROUTES`) is checked
//! against them at start-up, so a typo is an error instead of a route that requires nothing.
//! The functions' route tables are the source of [`GATEHOUSE_ROUTES`];
//! `tests/tests/suite/stolen_sessions_edge.rs` keeps the two equal.

use thiserror::Error;

/// One of gatehouse's routes ([`GATEHOUSE_ROUTES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// `METHOD /path`, as API Gateway spells it.
    pub key: &'static str,
    /// Whether the route takes no credential.
    pub public: bool,
}

impl Route {
    const fn guarded(key: &'static str) -> Self {
        Self { key, public: false }
    }

    const fn public(key: &'static str) -> Self {
        Self { key, public: true }
    }
}

/// Every route gatehouse's functions serve, as its route key, and whether it reads a credential.
/// A public one (sign-in, registration, resets, the handoff exchange, the hosted pages) reads
/// none, so nothing would judge a requirement there: configuration may not name it.
pub const GATEHOUSE_ROUTES: &[Route] = &[
    Route::guarded("DELETE /cross-app/sessions/{id}"),
    Route::guarded("DELETE /sessions/{id}"),
    Route::guarded("DELETE /tokens/{id}"),
    Route::guarded("DELETE /user"),
    Route::guarded("DELETE /user/passkeys/{id}"),
    Route::guarded("DELETE /user/two-factor-authentication"),
    Route::public("GET /account"),
    Route::public("GET /account/assets/{file}"),
    Route::public("GET /account/forgot-password"),
    Route::public("GET /account/register"),
    Route::public("GET /account/reset-password"),
    Route::public("GET /account/sign-in"),
    Route::public("GET /account/verify-email"),
    Route::public("GET /account/verify-email/{id}/{hash}"),
    Route::guarded("GET /cross-app/sessions"),
    Route::guarded("GET /email/verify/{id}/{hash}"),
    Route::guarded("GET /sessions"),
    Route::guarded("GET /tokens"),
    Route::guarded("GET /user"),
    Route::guarded("GET /user/confirmed-password-status"),
    Route::guarded("GET /user/email/confirm/{id}"),
    Route::guarded("GET /user/passkeys"),
    Route::public("POST /account/delete"),
    Route::public("POST /account/forgot-password"),
    Route::public("POST /account/passkeys"),
    Route::public("POST /account/passkeys/remove"),
    Route::public("POST /account/password"),
    Route::public("POST /account/profile"),
    Route::public("POST /account/register"),
    Route::public("POST /account/reset-password"),
    Route::public("POST /account/sessions/others"),
    Route::public("POST /account/sessions/{id}/end"),
    Route::public("POST /account/sign-in"),
    Route::public("POST /account/sign-out"),
    Route::public("POST /account/tokens"),
    Route::public("POST /account/tokens/{id}/revoke"),
    Route::public("POST /account/two-factor-challenge"),
    Route::public("POST /account/two-factor/confirm"),
    Route::public("POST /account/two-factor/disable"),
    Route::public("POST /account/two-factor/enable"),
    Route::public("POST /account/two-factor/recovery-codes"),
    Route::public("POST /account/verification"),
    Route::public("POST /cross-app/exchange"),
    Route::guarded("POST /cross-app/handoff"),
    Route::guarded("POST /email/verification-notification"),
    Route::public("POST /forgot-password"),
    Route::public("POST /login"),
    Route::guarded("POST /logout"),
    Route::guarded("POST /logout-other-devices"),
    Route::public("POST /passkeys/login"),
    Route::public("POST /passkeys/options"),
    Route::public("POST /register"),
    Route::public("POST /reset-password"),
    Route::guarded("POST /tokens"),
    Route::public("POST /tokens/issue"),
    Route::public("POST /two-factor-challenge"),
    Route::guarded("POST /user/confirm-password"),
    Route::guarded("POST /user/confirmed-two-factor-authentication"),
    Route::guarded("POST /user/email"),
    Route::guarded("POST /user/passkeys"),
    Route::guarded("POST /user/passkeys/options"),
    Route::guarded("POST /user/two-factor-authentication"),
    Route::guarded("POST /user/two-factor-recovery-codes"),
    Route::guarded("PUT /user/password"),
    Route::guarded("PUT /user/profile-information"),
];

/// The methods a route key of an API Gateway HTTP API may name, as it spells them.
pub const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "ANY"];

/// A route key that configuration may not name.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum RouteKeyError {
    #[error("{0:?} is not a route key \"METHOD /path\" (METHOD one of {methods}, in upper case)", methods = METHODS.join(", "))]
    Malformed(String),
    /// The path is gatehouse's, the route is not (a wrong method or parameter name).
    #[error("{0:?} is on a path of gatehouse's but is not one of its routes ({1})")]
    NotGatehouses(String, String),
    /// Neither gatehouse's nor in `GATEHOUSE_CUSTOMER_ROUTES`.
    #[error("{0:?} is not one of the API's routes (gatehouse's own or GATEHOUSE_CUSTOMER_ROUTES)")]
    Unknown(String),
}

/// Whether `key` is one of gatehouse's routes.
pub fn is_gatehouse_route(key: &str) -> bool {
    GATEHOUSE_ROUTES.iter().any(|r| r.key == key)
}

/// Whether `key` is one of gatehouse's public routes, which read no credential.
pub fn is_public_route(key: &str) -> bool {
    GATEHOUSE_ROUTES.iter().any(|r| r.key == key && r.public)
}

/// Checks a route key: a method of [`METHODS`], one space, a path from `/` without spaces,
/// `,` or `=`; and on a path of gatehouse's (parameter names aside: `/tokens/{x}` is
/// `/tokens/{id}`'s path), exactly one of gatehouse's routes.
pub fn check(key: &str) -> Result<(), RouteKeyError> {
    let malformed = || RouteKeyError::Malformed(key.to_owned());
    let (method, path) = key.split_once(' ').ok_or_else(malformed)?;
    let path_ok = path.starts_with('/') && !path.contains(|c: char| c.is_whitespace() || c == ',' || c == '=');
    if !METHODS.contains(&method) || !path_ok {
        return Err(malformed());
    }
    let shape = shape_of(path);
    let on_path: Vec<&str> = GATEHOUSE_ROUTES
        .iter()
        .map(|r| r.key)
        .filter(|r| r.split_once(' ').is_some_and(|(_, p)| shape_of(p) == shape))
        .collect();
    if on_path.is_empty() || on_path.contains(&key) {
        Ok(())
    } else {
        Err(RouteKeyError::NotGatehouses(key.to_owned(), on_path.join(", ")))
    }
}

/// A path with each `{parameter}` segment's name dropped.
fn shape_of(path: &str) -> String {
    path.split('/').map(|s| if s.starts_with('{') && s.ends_with('}') { "{}" } else { s }).collect::<Vec<_>>().join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_key_is_a_method_and_a_path_and_on_gatehouses_paths_one_of_its_routes() {
        for ok in ["GET /reports", "ANY /reports/{id}", "POST /tokens", "DELETE /tokens/{id}", "GET /"] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
        for malformed in ["get /reports", "GTE /reports", "GET reports", "GET", "GET  /reports", "GET /a b", "/reports"]
        {
            assert!(matches!(check(malformed), Err(RouteKeyError::Malformed(_))), "{malformed}");
        }
        for foreign in ["DELETE /tokens", "GET /tokens/{id}", "DELETE /tokens/{tokenId}", "PATCH /user"] {
            assert!(matches!(check(foreign), Err(RouteKeyError::NotGatehouses(..))), "{foreign}");
        }
    }

    #[test]
    fn gatehouses_routes_are_well_formed_and_listed_once() {
        let mut seen = std::collections::HashSet::new();
        for r in GATEHOUSE_ROUTES {
            assert_eq!(check(r.key), Ok(()), "{}", r.key);
            assert!(seen.insert(r.key), "{} twice", r.key);
        }
    }
}
