//! The OAuth provider's signing keys: the one that signs now, and every key JWKS publishes (the
//! active one and, during a rotation, its neighbours). Locally the key is in the process
//! ([`LocalSigner`]); on AWS it never leaves KMS (`gatehouse_aws::KmsSigner` signs through the
//! KMS API). Either way a signature is one call of [`JwtSigner::sign`].

use crate::values::jwt::{self, Jwk, JwtError, LocalKey, Verified};
use async_trait::async_trait;
use serde_json::Value;
use std::sync::Arc;
use thiserror::Error;

#[derive(Debug, Error)]
#[error("signing failed: {0}")]
pub struct SignError(pub String);

/// Something that signs ES256: a key in the process, or one in KMS.
#[async_trait]
pub trait JwtSigner: Send + Sync {
    /// The public key, its `kid` the RFC 7638 thumbprint.
    fn jwk(&self) -> &Jwk;
    /// The raw (r ‖ s) ES256 signature of `input`.
    async fn sign(&self, input: &[u8]) -> Result<[u8; 64], SignError>;
}

/// A key held in this process.
pub struct LocalSigner(pub LocalKey);

#[async_trait]
impl JwtSigner for LocalSigner {
    fn jwk(&self) -> &Jwk {
        self.0.jwk()
    }
    async fn sign(&self, input: &[u8]) -> Result<[u8; 64], SignError> {
        Ok(self.0.sign(input))
    }
}

/// The active signer and the published keys.
#[derive(Clone)]
pub struct SigningKeys {
    active: Arc<dyn JwtSigner>,
    published: Vec<Jwk>,
}

impl SigningKeys {
    /// `active` signs; JWKS publishes it and `others` (the previous key until it retires, the
    /// next one before it activates).
    pub fn new(active: Arc<dyn JwtSigner>, others: Vec<Jwk>) -> Self {
        let mut published = vec![active.jwk().clone()];
        published.extend(others.into_iter().filter(|k| k.kid != active.jwk().kid));
        Self { active, published }
    }

    /// A key held in the process, published alone.
    pub fn local(key: LocalKey) -> Self {
        Self::new(Arc::new(LocalSigner(key)), Vec::new())
    }

    /// The compact JWS of `claims` with header `typ`.
    pub async fn sign(&self, typ: &str, claims: &Value) -> Result<String, SignError> {
        let input = jwt::signing_input(&self.active.jwk().kid, typ, claims);
        let sig = self.active.sign(input.as_bytes()).await?;
        Ok(jwt::assemble(&input, &sig))
    }

    /// `/.well-known/jwks.json`'s body.
    pub fn jwks(&self) -> Value {
        serde_json::json!({ "keys": self.published })
    }

    pub fn published(&self) -> &[Jwk] {
        &self.published
    }

    /// Checks a token signed by one of the published keys.
    pub fn verify(&self, token: &str) -> Result<Verified, JwtError> {
        jwt::verify(token, &self.published)
    }
}

/// The keys of a source held in configuration or made here; `Ok(None)` for a KMS key (the AWS
/// adapter builds that one). A key made here is refused on Lambda: every copy of every function
/// must sign and check with the same one.
pub fn local_keys(source: &crate::config::SigningKeySource, on_lambda: bool) -> Result<Option<SigningKeys>, String> {
    use crate::config::SigningKeySource;
    match source {
        SigningKeySource::Pem(key) => Ok(Some(SigningKeys::local(key.clone()))),
        SigningKeySource::Generated if on_lambda => Err(
            "the OAuth provider needs GATEHOUSE_OAUTH_KMS_KEY_ID (or GATEHOUSE_OAUTH_SIGNING_KEY) on Lambda".into(),
        ),
        SigningKeySource::Generated => Ok(Some(SigningKeys::local(LocalKey::generate()))),
        SigningKeySource::Kms { .. } => Ok(None),
    }
}
