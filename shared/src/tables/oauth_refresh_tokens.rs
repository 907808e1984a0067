//! The `oauth_refresh_tokens` table (Passport's `oauth_refresh_tokens`), one item per grant: a
//! refresh-token *family*, made by a code exchange and rotated on every use. The item holds the
//! hash of the one refresh token that is current, its generation, and the hashes of the last
//! spent ones, so a spent token presented again is recognised as reuse (OAuth 2.1 §4.3.1): the
//! whole family is revoked and the answer is `invalid_grant`. A family is a credential of the
//! register ([`crate::tables::credentials`], `oauth#<family>`): it is issued only under the
//! user's current credentials version, and every revocation of the user's credentials deletes it.

use crate::tables::oauth_clients::ClientId;
use crate::tables::users::UserId;
use crate::values::clock::Timestamp;
use crate::values::error::StoreResult;
use async_trait::async_trait;

/// How many spent token hashes a family remembers (older reuse is refused without revoking).
pub const SPENT_REMEMBERED: usize = 32;

/// A refresh token as given to the client: `<family id>.<generation>.<secret>`, the secret 256
/// random bits. Only the secret's hash is stored. Never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken {
    pub family_id: String,
    pub generation: u32,
    secret: String,
}
crate::redacted_debug!(RefreshToken);

impl RefreshToken {
    pub fn generate(family_id: &str, generation: u32) -> Self {
        Self { family_id: family_id.to_owned(), generation, secret: crate::values::secret::random_token_256() }
    }
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.splitn(3, '.');
        let family_id = parts.next()?;
        let generation = parts.next()?;
        let secret = parts.next()?;
        let family_ok =
            family_id.len() == 32 && family_id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        let gen_ok = !generation.is_empty() && generation.len() <= 9 && generation.bytes().all(|b| b.is_ascii_digit());
        (family_ok && gen_ok && crate::values::secret::is_token_256(secret)).then(|| Self {
            family_id: family_id.to_owned(),
            generation: generation.parse().unwrap_or(0),
            secret: secret.to_owned(),
        })
    }
    pub fn expose(&self) -> String {
        format!("{}.{}.{}", self.family_id, self.generation, self.secret)
    }
    pub fn hash(&self) -> String {
        crate::values::secret::sha256_hex(&self.secret)
    }
}

/// A new family id: 128 random bits, hex.
pub fn new_family_id() -> String {
    hex::encode(crate::values::secret::random_bytes::<16>())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshFamily {
    /// The table's key.
    pub family_id: String,
    pub client_id: ClientId,
    pub user_id: UserId,
    pub scopes: Vec<String>,
    /// The current token's generation and hash.
    pub generation: u32,
    pub current_hash: String,
    /// The hashes of the last [`SPENT_REMEMBERED`] spent tokens.
    pub spent_hashes: Vec<String>,
    /// The session that approved the grant (its register key), for the ID token's `sid`.
    pub session_id: Option<String>,
    /// The user's credentials version the grant was issued under: a grant below the user's
    /// version is dead even before its revocation deletes it.
    pub credentials_version: u64,
    pub auth_time: Timestamp,
    pub amr: Vec<String>,
    pub created_at: Timestamp,
    /// The family's absolute end: rotation never extends it.
    pub expires_at: Timestamp,
}

/// What a rotation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The presented token was current: the family now holds the successor.
    Rotated(Box<RefreshFamily>),
    /// The presented token was spent before (or a racing rotation won): reuse.
    Reused,
    /// No live family, or a token of it that was never issued: nothing to do.
    Unknown,
}

#[async_trait]
pub trait OAuthRefreshTokenStore: Send + Sync {
    /// The live family (`None` when absent or expired).
    async fn find(&self, family_id: &str) -> StoreResult<Option<RefreshFamily>>;
    /// Rotates the family from `presented` (its generation and hash) to `next_hash` at
    /// generation + 1, if and only if `presented` is its current token and the family is live:
    /// one conditional write, which exactly one of racing rotations wins. A presented token
    /// among the spent hashes is [`Rotation::Reused`].
    async fn rotate(&self, presented: &RefreshToken, next_hash: &str, now: Timestamp) -> StoreResult<Rotation>;
    /// Deletes the family (harmless when absent).
    async fn delete(&self, family_id: &str) -> StoreResult<()>;
}
