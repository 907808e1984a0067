//! The `oauth_clients` table (Passport's `oauth_clients`): the applications allowed to ask
//! gatehouse for OAuth 2.1 / OpenID Connect tokens. A confidential client's secret is stored as
//! its SHA-256 (the secret is 256 random bits: no password hash is needed, and a check costs no
//! argon2 run); a rotation keeps the previous secret's hash valid until a set time.

use crate::values::clock::Timestamp;
use crate::values::error::StoreResult;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A client's public identifier: 128 random bits as 32 hex characters, or an operator's chosen
/// name of `[a-z0-9._-]`, 3 to 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientId(String);

impl ClientId {
    pub fn generate() -> Self {
        Self(hex::encode(crate::values::secret::random_bytes::<16>()))
    }
    /// A client id from outside (a request, a CLI argument): only the shape above is an id.
    pub fn parse(s: &str) -> Option<Self> {
        let ok = (3..=64).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'));
        ok.then(|| Self(s.to_owned()))
    }
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ClientId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

crate::random_secret!(
    /// A confidential client's secret, shown once when made or rotated; only its hash is stored.
    ClientSecret
);

impl ClientSecret {
    pub fn hash(&self) -> String {
        crate::values::secret::sha256_hex(self.expose())
    }
}

/// The grants a client may use. OAuth 2.1 has no implicit and no password grant, so neither
/// exists here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
}

impl GrantType {
    pub const ALL: [GrantType; 3] =
        [GrantType::AuthorizationCode, GrantType::RefreshToken, GrantType::ClientCredentials];

    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == s)
    }
}

/// The previous secret's hash during a rotation, accepted until `until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousSecret {
    pub hash: String,
    pub until: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthClient {
    pub id: ClientId,
    /// Shown on the consent page. Operator- or registrant-supplied text: always escaped.
    pub name: String,
    /// `None`: a public client (a browser or mobile app, PKCE alone); `Some`: confidential.
    pub secret_hash: Option<String>,
    pub previous_secret: Option<PreviousSecret>,
    /// Exact redirect URIs (no pattern, no prefix match).
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may send the browser back to (exact match).
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<GrantType>,
    /// The scopes the client may ask for: `openid`, `profile`, `email`, `offline_access` and
    /// ability strings (the same as personal access tokens').
    pub scopes: Vec<String>,
    /// A first-party client's consent is not asked.
    pub first_party: bool,
    pub revoked: bool,
    /// Made through dynamic client registration (RFC 7591) rather than by an operator.
    pub dynamic: bool,
    pub created_at: Timestamp,
}

impl OAuthClient {
    pub fn is_public(&self) -> bool {
        self.secret_hash.is_none()
    }
    pub fn allows(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }
}

#[async_trait]
pub trait OAuthClientStore: Send + Sync {
    /// Stores a new client; `Err(Conflict)` when the id is taken.
    async fn create(&self, client: &OAuthClient) -> StoreResult<()>;
    /// The client, revoked or not (the caller decides what a revoked one may still do: nothing).
    async fn find(&self, id: &ClientId) -> StoreResult<Option<OAuthClient>>;
    /// Every client, ordered by id (an operator's listing; a deployment has few).
    async fn list(&self) -> StoreResult<Vec<OAuthClient>>;
    /// Replaces the secret's hash, keeping `previous` valid alongside; `false` when no such
    /// client exists or it is public or revoked (nothing written).
    async fn rotate_secret(&self, id: &ClientId, hash: &str, previous: Option<&PreviousSecret>) -> StoreResult<bool>;
    /// Marks the client revoked; `false` when no such client exists.
    async fn revoke(&self, id: &ClientId) -> StoreResult<bool>;
}
