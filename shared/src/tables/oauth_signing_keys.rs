//! The `oauth_signing_keys` table: the OAuth provider's keyring beyond the configured key, so a
//! rotation is one operator command and no deployment (`gatehouse oauth:key-rotate`). Each key
//! has the time it starts signing (`activates_at`, far enough ahead that every function and every
//! relying party's JWKS cache has seen it published) and, once a successor is added, the time it
//! stops being published (`expires_at`, the TTL: after the successor activates and the longest
//! token it signed has expired). Which key signs and which are published is a function of the
//! records and the time alone ([`crate::signing::keyring`]), so every copy of every function
//! switches at the same instant with no coordination.

use crate::values::clock::Timestamp;
use crate::values::error::StoreResult;
use crate::values::jwt::Jwk;
use async_trait::async_trait;

/// Where a key's private half is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyMaterial {
    /// An asymmetric ECC_NIST_P256 KMS key: the private half never leaves KMS.
    Kms { key_id: String },
    /// A P-256 key sealed with the app key (AES-256-GCM): deployments without KMS, and local runs.
    Sealed { sealed_pem: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// The key's RFC 7638 thumbprint: the table's key and the tokens' `kid`.
    pub kid: String,
    pub material: KeyMaterial,
    /// The public key, so checking never needs KMS.
    pub public: Jwk,
    pub activates_at: Timestamp,
    pub created_at: Timestamp,
    /// When it stops being published (set when a successor is added); `None` while newest.
    pub expires_at: Option<Timestamp>,
}

#[async_trait]
pub trait OAuthSigningKeyStore: Send + Sync {
    /// Every key not yet expired (a consistent read of the whole, small, table).
    async fn list(&self) -> StoreResult<Vec<SigningKeyRecord>>;
    /// Adds `record` and sets `retire`'s keys to expire at the time given, in one atomic write;
    /// `Err(Conflict)` when the kid is taken.
    async fn add(&self, record: &SigningKeyRecord, retire: &[(String, Timestamp)]) -> StoreResult<()>;
}
