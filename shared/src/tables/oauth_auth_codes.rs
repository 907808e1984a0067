//! The `oauth_auth_codes` table (Passport's `oauth_auth_codes`): authorization codes, stored as
//! their SHA-256, live 60 seconds to 10 minutes, bound to the client, the redirect URI, the PKCE
//! challenge, the nonce, the user and the scopes. A code is spent once: the spend is a
//! conditional write that exactly one of any number of racing exchanges wins, and the spent
//! record stays until it expires, so a replay is recognised and the grant issued from the code
//! (its `family_id`) is revoked.

use crate::tables::oauth_clients::ClientId;
use crate::tables::users::UserId;
use crate::values::clock::Timestamp;
use crate::values::error::StoreResult;
use async_trait::async_trait;

crate::random_secret!(
    /// An authorization code as sent to the redirect URI; only its hash is stored.
    AuthCode
);

impl AuthCode {
    pub fn hash(&self) -> String {
        crate::values::secret::sha256_hex(self.expose())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthCodeRecord {
    /// The table's key.
    pub code_hash: String,
    pub client_id: ClientId,
    pub user_id: UserId,
    /// Exactly the `redirect_uri` of the authorization request.
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    /// The PKCE S256 challenge (base64url of SHA-256 of the verifier, 43 characters).
    pub code_challenge: String,
    pub nonce: Option<String>,
    /// The user's credentials version the session that approved was issued under: the grant is
    /// issued under it, so a reset between approval and exchange leaves nothing to exchange.
    pub credentials_version: u64,
    /// The refresh-token family the exchange will create (chosen now, so a replayed code can
    /// name the grant to revoke).
    pub family_id: String,
    /// The browser session that approved (its register key), the `sid` of the ID token.
    pub session_id: Option<String>,
    /// When the user authenticated (the session's sign-in), for `auth_time`.
    pub auth_time: Timestamp,
    /// How the user authenticated (`pwd`, `otp`, `hwk`...), for `amr`.
    pub amr: Vec<String>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// What spending a code found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeSpend {
    /// This call spent it: the only one that may issue tokens.
    Spent(AuthCodeRecord),
    /// It was spent before (a replay, or a second racing exchange): nothing may be issued, and
    /// the grant issued from it should be revoked.
    Replayed(AuthCodeRecord),
    /// No live code has that hash (never issued, or expired).
    Unknown,
}

#[async_trait]
pub trait OAuthAuthCodeStore: Send + Sync {
    /// Stores a new code; `Err(Conflict)` when its hash is taken.
    async fn put(&self, record: &AuthCodeRecord) -> StoreResult<()>;
    /// Spends the code `code_hash` at `now` if live and unspent ([`CodeSpend`]). An expired code
    /// is `Unknown` whatever its state.
    async fn spend(&self, code_hash: &str, now: Timestamp) -> StoreResult<CodeSpend>;
}
