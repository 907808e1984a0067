//! The OAuth 2.1 / OpenID Connect provider (Laravel Passport's job): clients, the authorization
//! code flow with PKCE behind the hosted consent page, the token endpoint (authorization code,
//! refresh token, client credentials), userinfo, introspection (RFC 7662), revocation (RFC 7009),
//! discovery (OpenID Connect Discovery, RFC 8414) and dynamic client registration (RFC 7591).
//!
//! Access and ID tokens are ES256 JWTs ([`crate::signing`]); access tokens follow RFC 9068, so
//! API Gateway's JWT authorizer can check them with no invocation. Every user grant is a
//! credential of the register (a refresh-token family, `oauth#<family>`, and the consent,
//! `consent#<client>`): issued only under the user's current credentials version and revoked with
//! the user's other credentials.

pub mod authorize;
pub mod clients;
pub mod discovery;
pub mod grants;
pub mod introspection;
pub mod tokens;

use crate::Stores;
use crate::config::Config;
use crate::services::auth::{Auth, AuthError};
use crate::signing::{SignError, SigningKeys};
use crate::values::error::StoreError;
use std::sync::Arc;
use thiserror::Error;

/// The OpenID Connect scopes; every other scope is an ability string, as personal access tokens
/// hold them.
pub const OPENID: &str = "openid";
pub const PROFILE: &str = "profile";
pub const EMAIL: &str = "email";
pub const OFFLINE_ACCESS: &str = "offline_access";
pub const OIDC_SCOPES: [&str; 4] = [OPENID, PROFILE, EMAIL, OFFLINE_ACCESS];

/// An OAuth error (RFC 6749 §5.2, RFC 6750 §3.1): its code is what the client reads.
#[derive(Debug, Error)]
pub enum OAuthError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("client authentication failed")]
    InvalidClient,
    #[error("{0}")]
    InvalidGrant(&'static str),
    #[error("this client may not use this grant type")]
    UnauthorizedClient,
    #[error("unsupported grant type")]
    UnsupportedGrantType,
    #[error("{0}")]
    InvalidScope(String),
    #[error("the access token is invalid")]
    InvalidToken,
    #[error("the access token lacks the scope this needs")]
    InsufficientScope,
    #[error("{0}")]
    AccessDenied(&'static str),
    /// The `before_token` hook refused (its message, or a fixed one).
    #[error("{0}")]
    Denied(String),
    #[error("too many requests; retry in {retry_after} seconds")]
    Limited { retry_after: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sign(#[from] SignError),
}

impl OAuthError {
    /// The `error` member of the answer.
    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_) => "invalid_request",
            OAuthError::InvalidClient => "invalid_client",
            OAuthError::InvalidGrant(_) => "invalid_grant",
            OAuthError::UnauthorizedClient => "unauthorized_client",
            OAuthError::UnsupportedGrantType => "unsupported_grant_type",
            OAuthError::InvalidScope(_) => "invalid_scope",
            OAuthError::InvalidToken => "invalid_token",
            OAuthError::InsufficientScope => "insufficient_scope",
            OAuthError::AccessDenied(_) | OAuthError::Denied(_) => "access_denied",
            OAuthError::Limited { .. } => "slow_down",
            OAuthError::Store(_) | OAuthError::Sign(_) => "temporarily_unavailable",
        }
    }
}

impl From<AuthError> for OAuthError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Throttled { retry_after } => OAuthError::Limited { retry_after },
            AuthError::Store(e) => OAuthError::Store(e),
            _ => OAuthError::AccessDenied("the account cannot be used"),
        }
    }
}

/// The provider: the web guard's machinery (stores, configuration, limits) and the signing keys.
#[derive(Clone)]
pub struct OAuthProvider {
    pub auth: Auth,
    keys: Option<Arc<SigningKeys>>,
}

impl OAuthProvider {
    /// `keys`: `None` in a function that neither signs nor checks the provider's tokens.
    pub fn new(auth: Auth, keys: Option<Arc<SigningKeys>>) -> Self {
        Self { auth, keys }
    }
    /// The signing keys (a function built without them cannot sign or check).
    pub fn keys(&self) -> Result<&SigningKeys, OAuthError> {
        self.keys.as_deref().ok_or_else(|| OAuthError::Sign(SignError("this function holds no signing keys".into())))
    }
    pub fn stores(&self) -> &Stores {
        self.auth.stores()
    }
    pub fn config(&self) -> &Config {
        self.auth.config()
    }

    /// Counts one request of `endpoint` from `client_ip` (before any hash or read).
    pub async fn limit(&self, endpoint: &str, client_ip: Option<&str>) -> Result<(), OAuthError> {
        let key = format!("oauth:{endpoint}:{}", crate::throttle::client_key(client_ip));
        Ok(self.auth.limit(&key, self.config().oauth.per_client_per_minute).await?)
    }
}

/// A space-separated scope parameter as a sorted list without duplicates; `None` when a scope is
/// not of RFC 6749's characters (printable ASCII but `"` and `\`) or there are too many.
pub fn parse_scope(raw: &str) -> Option<Vec<String>> {
    let mut scopes: Vec<String> = raw.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect();
    let ok = scopes.len() <= 50
        && scopes
            .iter()
            .all(|s| s.len() <= 100 && s.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\'));
    scopes.sort();
    scopes.dedup();
    ok.then_some(scopes)
}

/// The scopes as the `scope` parameter writes them.
pub fn scope_string(scopes: &[String]) -> String {
    scopes.join(" ")
}

/// Percent-encodes a query parameter's value (everything but RFC 3986's unreserved characters).
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `uri` with `params` added to its query (RFC 6749 §3.1.2: existing query components kept).
pub fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    let mut out = uri.to_owned();
    let mut sep = if uri.contains('?') { '&' } else { '?' };
    for (k, v) in params {
        out.push(sep);
        out.push_str(k);
        out.push('=');
        out.push_str(&query_escape(v));
        sep = '&';
    }
    out
}

/// One value of a parameter that must appear at most once (RFC 6749 §3.1): `Err` when repeated.
pub fn single<'a>(params: &'a [(String, String)], name: &str) -> Result<Option<&'a str>, OAuthError> {
    let mut found = params.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let first = found.next();
    if found.next().is_some() {
        return Err(OAuthError::InvalidRequest(format!("{name} is repeated")));
    }
    Ok(first.filter(|v| !v.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_sorted_and_refuse_odd_characters() {
        assert_eq!(parse_scope("openid  email openid"), Some(vec!["email".into(), "openid".into()]));
        assert_eq!(parse_scope(""), Some(vec![]));
        assert_eq!(parse_scope("a\"b"), None);
        assert_eq!(parse_scope("é"), None);
    }

    #[test]
    fn redirect_uris_keep_their_query_and_escape_values() {
        assert_eq!(with_query("https://a/cb", &[("code", "x y"), ("state", "&")]), "https://a/cb?code=x%20y&state=%26");
        assert_eq!(with_query("https://a/cb?k=v", &[("code", "c")]), "https://a/cb?k=v&code=c");
    }

    #[test]
    fn repeated_parameters_are_refused() {
        let p = vec![("a".to_owned(), "1".to_owned()), ("a".to_owned(), "2".to_owned())];
        assert!(single(&p, "a").is_err());
        assert_eq!(single(&p, "b").ok(), Some(None));
    }
}
