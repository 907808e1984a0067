//! Route keys as API Gateway spells them (`METHOD /path`), and gatehouse's own: configuration
//! that names routes (`GATEHOUSE_ROUTE_ABILITIES`, `GATEHOUSE_CUSTOMER_ROUTES`) is checked
//! against them at start-up, so a typo is an error instead of a route that requires nothing.
//! The functions' route tables are the source of [`GATEHOUSE_ROUTES`];
//! `tests/tests/suite/stolen_sessions_edge.rs` keeps the two equal.

use crate::tables::personal_access_tokens::OWN_ROUTE_ABILITIES;
use std::collections::{HashMap, HashSet};
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
/// A public one (sign-in, registration, resets, the handoff exchange, the hosted pages, the OAuth
/// provider's endpoints, which authenticate their clients themselves) reads none of a user's, so
/// nothing would judge a requirement there: configuration may not name it.
pub const GATEHOUSE_ROUTES: &[Route] = &[
    Route::guarded("DELETE /cross-app/sessions/{id}"),
    Route::guarded("DELETE /sessions/{id}"),
    Route::guarded("DELETE /tokens/{id}"),
    Route::guarded("DELETE /user"),
    Route::guarded("DELETE /user/identities/{id}"),
    Route::guarded("DELETE /user/oauth-apps/{client_id}"),
    Route::guarded("DELETE /user/passkeys/{id}"),
    Route::guarded("DELETE /user/two-factor-authentication"),
    Route::public("GET /.well-known/jwks.json"),
    Route::public("GET /.well-known/oauth-authorization-server"),
    Route::public("GET /.well-known/oauth-protected-resource"),
    Route::public("GET /.well-known/openid-configuration"),
    Route::public("GET /account"),
    Route::public("GET /account/assets/{file}"),
    Route::public("GET /account/email-link"),
    Route::public("GET /account/forgot-password"),
    Route::public("GET /account/oauth/authorize"),
    Route::public("GET /account/oauth/logout"),
    Route::public("GET /account/providers/{provider}/callback"),
    Route::public("GET /account/register"),
    Route::public("GET /account/reset-password"),
    Route::public("GET /account/sign-in"),
    Route::public("GET /account/verify-email"),
    Route::public("GET /account/verify-email/{id}/{hash}"),
    Route::public("GET /auth/providers"),
    Route::guarded("GET /cross-app/sessions"),
    Route::guarded("GET /email/verify/{id}/{hash}"),
    Route::public("GET /oauth/userinfo"),
    Route::guarded("GET /sessions"),
    Route::guarded("GET /tokens"),
    Route::guarded("GET /user"),
    Route::guarded("GET /user/confirmed-password-status"),
    Route::guarded("GET /user/email/confirm/{id}"),
    Route::guarded("GET /user/identities"),
    Route::guarded("GET /user/oauth-apps"),
    Route::guarded("GET /user/passkeys"),
    Route::public("POST /account/confirm-by-email"),
    Route::public("POST /account/confirm-by-email/verify"),
    Route::public("POST /account/delete"),
    Route::public("POST /account/email-link"),
    Route::public("POST /account/email-link/complete"),
    Route::public("POST /account/forgot-password"),
    Route::public("POST /account/identities/{id}/unlink"),
    Route::public("POST /account/oauth-apps/{client_id}/disconnect"),
    Route::public("POST /account/oauth/authorize"),
    Route::public("POST /account/oauth/logout"),
    Route::public("POST /account/passkeys"),
    Route::public("POST /account/passkeys/remove"),
    Route::public("POST /account/password"),
    Route::public("POST /account/profile"),
    Route::public("POST /account/providers/{provider}"),
    Route::public("POST /account/providers/{provider}/callback"),
    Route::public("POST /account/providers/{provider}/link"),
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
    Route::public("POST /auth/email-link"),
    Route::public("POST /auth/email-link/complete"),
    Route::public("POST /auth/providers/{provider}/callback"),
    Route::guarded("POST /auth/providers/{provider}/link"),
    Route::public("POST /auth/providers/{provider}/start"),
    Route::public("POST /cross-app/exchange"),
    Route::guarded("POST /cross-app/handoff"),
    Route::guarded("POST /email/verification-notification"),
    Route::public("POST /forgot-password"),
    Route::public("POST /login"),
    Route::guarded("POST /logout"),
    Route::guarded("POST /logout-other-devices"),
    Route::public("POST /oauth/introspect"),
    Route::public("POST /oauth/register"),
    Route::public("POST /oauth/revoke"),
    Route::public("POST /oauth/token"),
    Route::public("POST /oauth/userinfo"),
    Route::public("POST /passkeys/login"),
    Route::public("POST /passkeys/options"),
    Route::public("POST /register"),
    Route::public("POST /reset-password"),
    Route::guarded("POST /tokens"),
    Route::public("POST /tokens/issue"),
    Route::public("POST /two-factor-challenge"),
    Route::guarded("POST /user/confirm-by-email"),
    Route::guarded("POST /user/confirm-by-email/verify"),
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

/// The requirement a route may name among its abilities for "the user's address is verified"
/// (Laravel's `verified` middleware). It is judged on the flag the credential carries, never a
/// token ability: no token is ever minted holding it.
pub const VERIFIED: &str = "verified";

/// What each route requires of its caller, from `GATEHOUSE_ROUTE_ABILITIES`
/// (`"POST /reports=reports:write,GET /reports=reports:read,GET /billing=verified"`; a route may
/// be listed more than once to require several). gatehouse's own routes always require theirs
/// ([`OWN_ROUTE_ABILITIES`]). The authorizer and the functions judge the same table.
///
/// Every route key named is checked ([`check`]): a method API Gateway knows, in
/// upper case, and a path; on a path of gatehouse's, exactly one of its routes. When the API's
/// other routes are listed (`GATEHOUSE_CUSTOMER_ROUTES`), every key must be one of them or
/// gatehouse's, and [`RouteAbilities::knows`] is false for any other route (the authorizer
/// refuses it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteAbilities {
    required: HashMap<String, Vec<String>>,
    /// `GATEHOUSE_CUSTOMER_ROUTES`, when set: the API's routes besides gatehouse's.
    customer_routes: Option<HashSet<String>>,
}

/// Which setting a [`RouteAbilities`] could not be built from.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RouteTableError {
    /// `GATEHOUSE_ROUTE_ABILITIES`.
    #[error("{0}")]
    Abilities(String),
    /// `GATEHOUSE_CUSTOMER_ROUTES`.
    #[error("{0}")]
    CustomerRoutes(String),
}

impl RouteAbilities {
    /// The table of `spec`, with no list of the API's other routes.
    pub fn parse(spec: &str) -> Result<Self, String> {
        Self::parse_for(spec, None).map_err(|e| e.to_string())
    }

    /// The table of `spec` for an API whose routes besides gatehouse's are `customer_routes`
    /// (comma-separated route keys; `None` or blank: not listed).
    pub fn parse_for(spec: &str, customer_routes: Option<&str>) -> Result<Self, RouteTableError> {
        let customer_routes: Option<HashSet<String>> = customer_routes
            .map(|raw| raw.split(',').map(str::trim).filter(|e| !e.is_empty()).map(str::to_owned).collect())
            .filter(|listed: &HashSet<String>| !listed.is_empty());
        for key in customer_routes.iter().flatten() {
            check(key).map_err(|e| RouteTableError::CustomerRoutes(e.to_string()))?;
        }
        let mut table = Self { required: HashMap::new(), customer_routes };
        for (route, ability) in OWN_ROUTE_ABILITIES {
            table.required.entry((*route).into()).or_default().push((*ability).into());
        }
        let bad = |problem: String| RouteTableError::Abilities(problem);
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (route, ability) =
                entry.rsplit_once('=').ok_or_else(|| bad(format!("{entry:?} is not ROUTE=ability")))?;
            let (route, ability) = (route.trim(), ability.trim());
            if ability.is_empty() {
                return Err(bad(format!("{entry:?} is not \"METHOD /path=ability\"")));
            }
            check(route).map_err(|e| bad(e.to_string()))?;
            if is_public_route(route) {
                return Err(bad(format!("{route:?} takes no credential: nothing would judge {ability:?} there")));
            }
            if !table.knows(route) {
                return Err(bad(RouteKeyError::Unknown(route.to_owned()).to_string()));
            }
            table.required.entry(route.to_owned()).or_default().push(ability.to_owned());
        }
        Ok(table)
    }

    /// Whether `route_key` is one of the API's routes: always, unless `GATEHOUSE_CUSTOMER_ROUTES`
    /// lists them; then only gatehouse's and those listed.
    pub fn knows(&self, route_key: &str) -> bool {
        self.customer_routes.as_ref().is_none_or(|c| c.contains(route_key) || is_gatehouse_route(route_key))
    }

    /// What `route_key` (`METHOD /path`, as API Gateway names it) requires.
    pub fn for_route(&self, route_key: &str) -> &[String] {
        self.required.get(route_key).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Whether `route_key` requires a verified address.
    pub fn wants_verified(&self, route_key: &str) -> bool {
        self.for_route(route_key).iter().any(|r| r == VERIFIED)
    }
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
        let mut seen = HashSet::new();
        for r in GATEHOUSE_ROUTES {
            assert_eq!(check(r.key), Ok(()), "{}", r.key);
            assert!(seen.insert(r.key), "{} twice", r.key);
        }
    }
}
