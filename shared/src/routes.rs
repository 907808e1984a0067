//! Route keys as API Gateway spells them (`METHOD /path`), and gatehouse's own: configuration
//! that names routes (`GATEHOUSE_ROUTE_ABILITIES`, `GATEHOUSE_CUSTOMER_ROUTES`) is checked
//! against them at start-up, so a typo is an error instead of a route that requires nothing.
//! The functions' route tables are the source of [`GATEHOUSE_ROUTES`];
//! `tests/tests/suite/stolen_sessions_edge.rs` keeps the two equal.

use thiserror::Error;

/// Every route gatehouse's functions serve (login, tokens, password-reset, pages), as its
/// route key.
pub const GATEHOUSE_ROUTES: &[&str] = &[
    "DELETE /cross-app/sessions/{id}",
    "DELETE /sessions/{id}",
    "DELETE /tokens/{id}",
    "DELETE /user",
    "DELETE /user/passkeys/{id}",
    "DELETE /user/two-factor-authentication",
    "GET /account",
    "GET /account/assets/{file}",
    "GET /account/forgot-password",
    "GET /account/register",
    "GET /account/reset-password",
    "GET /account/sign-in",
    "GET /account/verify-email",
    "GET /account/verify-email/{id}/{hash}",
    "GET /cross-app/sessions",
    "GET /email/verify/{id}/{hash}",
    "GET /sessions",
    "GET /tokens",
    "GET /user",
    "GET /user/confirmed-password-status",
    "GET /user/email/confirm/{id}",
    "GET /user/passkeys",
    "POST /account/delete",
    "POST /account/forgot-password",
    "POST /account/passkeys",
    "POST /account/passkeys/remove",
    "POST /account/password",
    "POST /account/profile",
    "POST /account/register",
    "POST /account/reset-password",
    "POST /account/sessions/others",
    "POST /account/sessions/{id}/end",
    "POST /account/sign-in",
    "POST /account/sign-out",
    "POST /account/tokens",
    "POST /account/tokens/{id}/revoke",
    "POST /account/two-factor-challenge",
    "POST /account/two-factor/confirm",
    "POST /account/two-factor/disable",
    "POST /account/two-factor/enable",
    "POST /account/two-factor/recovery-codes",
    "POST /account/verification",
    "POST /cross-app/exchange",
    "POST /cross-app/handoff",
    "POST /email/verification-notification",
    "POST /forgot-password",
    "POST /login",
    "POST /logout",
    "POST /logout-other-devices",
    "POST /passkeys/login",
    "POST /passkeys/options",
    "POST /register",
    "POST /reset-password",
    "POST /tokens",
    "POST /tokens/issue",
    "POST /two-factor-challenge",
    "POST /user/confirm-password",
    "POST /user/confirmed-two-factor-authentication",
    "POST /user/email",
    "POST /user/passkeys",
    "POST /user/passkeys/options",
    "POST /user/two-factor-authentication",
    "POST /user/two-factor-recovery-codes",
    "PUT /user/password",
    "PUT /user/profile-information",
];

/// gatehouse's routes that take no credential (sign-in, registration, resets, handoff exchange,
/// the hosted pages): nothing judges a requirement there, so configuration may not name them.
pub const PUBLIC_ROUTES: &[&str] = &[
    "GET /account",
    "GET /account/assets/{file}",
    "GET /account/forgot-password",
    "GET /account/register",
    "GET /account/reset-password",
    "GET /account/sign-in",
    "GET /account/verify-email",
    "GET /account/verify-email/{id}/{hash}",
    "POST /account/delete",
    "POST /account/forgot-password",
    "POST /account/passkeys",
    "POST /account/passkeys/remove",
    "POST /account/password",
    "POST /account/profile",
    "POST /account/register",
    "POST /account/reset-password",
    "POST /account/sessions/others",
    "POST /account/sessions/{id}/end",
    "POST /account/sign-in",
    "POST /account/sign-out",
    "POST /account/tokens",
    "POST /account/tokens/{id}/revoke",
    "POST /account/two-factor-challenge",
    "POST /account/two-factor/confirm",
    "POST /account/two-factor/disable",
    "POST /account/two-factor/enable",
    "POST /account/two-factor/recovery-codes",
    "POST /account/verification",
    "POST /cross-app/exchange",
    "POST /forgot-password",
    "POST /login",
    "POST /passkeys/login",
    "POST /passkeys/options",
    "POST /register",
    "POST /reset-password",
    "POST /tokens/issue",
    "POST /two-factor-challenge",
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
    GATEHOUSE_ROUTES.contains(&key)
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
        .copied()
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
            assert_eq!(check(r), Ok(()), "{r}");
            assert!(seen.insert(*r), "{r} twice");
        }
    }
}
