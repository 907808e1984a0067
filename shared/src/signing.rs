//! The OAuth provider's signing keys: the one that signs now, and every key JWKS publishes (the
//! active one and, during a rotation, its neighbours). Locally the key is in the process
//! ([`LocalSigner`]); on AWS it never leaves KMS (`gatehouse_aws::KmsSigner` signs through the
//! KMS API). Either way a signature is one call of [`JwtSigner::sign`].

use crate::tables::oauth_signing_keys::{KeyMaterial, OAuthSigningKeyStore, SigningKeyRecord};
use crate::values::clock::Timestamp;
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

/// How long a function keeps the keyring it read before reading it again. A rotation's new key
/// activates well after this ([`ROTATION_LEAD`]), so every copy of every function has seen it by
/// then.
pub const KEYRING_REFRESH: chrono::Duration = chrono::Duration::seconds(60);
/// How long a keyring read may be used when the table cannot be read (the store failing).
pub const KEYRING_STALE_LIMIT: chrono::Duration = chrono::Duration::minutes(10);
/// How far ahead of its activation a new key is published: the JWKS document's cache lifetime
/// (`max-age=300`) and the keyring's refresh, with room to spare.
pub const ROTATION_LEAD: chrono::Duration = chrono::Duration::minutes(10);

/// Makes the signer of a keyring record: a KMS key through the AWS adapter, a sealed key with the
/// app key.
#[async_trait]
pub trait SignerFactory: Send + Sync {
    async fn signer(&self, record: &SigningKeyRecord) -> Result<Arc<dyn JwtSigner>, SignError>;
}

/// Opens sealed keys with the app key; refuses KMS keys (a local run has no KMS).
pub struct SealedKeys(pub crate::keys::AppKey);

/// The app key's purpose for sealed signing keys.
pub const SEAL_PURPOSE: &str = "oauth-signing-key";

#[async_trait]
impl SignerFactory for SealedKeys {
    async fn signer(&self, record: &SigningKeyRecord) -> Result<Arc<dyn JwtSigner>, SignError> {
        match &record.material {
            KeyMaterial::Sealed { sealed_pem } => {
                let pem = self
                    .0
                    .open(SEAL_PURPOSE, sealed_pem)
                    .ok_or_else(|| SignError("a sealed key does not open with this app key".into()))?;
                let pem = String::from_utf8(pem).map_err(|_| SignError("a sealed key is not PEM".into()))?;
                let key = LocalKey::from_pem(&pem).map_err(SignError)?;
                if key.jwk().kid != record.kid {
                    return Err(SignError("a sealed key is not the key its record names".into()));
                }
                Ok(Arc::new(LocalSigner(key)))
            }
            KeyMaterial::Kms { .. } => Err(SignError("a KMS key needs the AWS adapter".into())),
        }
    }
}

/// Which key signs and which are published, from the records and the time alone: the newest
/// record whose time has come signs (the configured key until the first one's); every record
/// not expired is published (the next before it signs, the previous until its tokens expired);
/// the configured key is published until `longest` after the first record activated.
pub mod keyring {
    use super::*;

    /// The record that signs at `now`, or `None` for the configured key.
    pub fn active(records: &[SigningKeyRecord], now: Timestamp) -> Option<&SigningKeyRecord> {
        records.iter().filter(|r| r.activates_at <= now).max_by_key(|r| (r.activates_at, r.kid.clone()))
    }

    /// Whether the configured key is retired at `now`.
    pub fn configured_retired(records: &[SigningKeyRecord], now: Timestamp, longest: chrono::Duration) -> bool {
        records
            .iter()
            .filter(|r| r.activates_at <= now)
            .map(|r| r.activates_at)
            .min()
            .is_some_and(|first| first + longest <= now)
    }
}

struct Keyring {
    store: Arc<dyn OAuthSigningKeyStore>,
    factory: Arc<dyn SignerFactory>,
    clock: Arc<dyn crate::values::clock::Clock>,
    /// The longest life of a token the provider signs, and a margin.
    longest: chrono::Duration,
    cache: tokio::sync::Mutex<Option<(Timestamp, Arc<Vec<SigningKeyRecord>>)>>,
    signers: std::sync::Mutex<std::collections::HashMap<String, Arc<dyn JwtSigner>>>,
}

impl Keyring {
    async fn records(&self) -> Result<Arc<Vec<SigningKeyRecord>>, SignError> {
        let now = self.clock.now();
        let mut cache = self.cache.lock().await;
        if let Some((at, records)) = cache.as_ref()
            && now - *at < KEYRING_REFRESH
        {
            return Ok(records.clone());
        }
        match self.store.list().await {
            Ok(records) => {
                let records = Arc::new(records);
                *cache = Some((now, records.clone()));
                Ok(records)
            }
            Err(e) => match cache.as_ref() {
                Some((at, records)) if now - *at < KEYRING_STALE_LIMIT => {
                    tracing::warn!(error = %e, "the keyring could not be read; using the last read");
                    Ok(records.clone())
                }
                _ => Err(SignError(format!("the keyring could not be read: {e}"))),
            },
        }
    }

    async fn signer(&self, record: &SigningKeyRecord) -> Result<Arc<dyn JwtSigner>, SignError> {
        if let Some(s) = self.signers.lock().unwrap_or_else(|e| e.into_inner()).get(&record.kid) {
            return Ok(s.clone());
        }
        let signer = self.factory.signer(record).await?;
        self.signers.lock().unwrap_or_else(|e| e.into_inner()).insert(record.kid.clone(), signer.clone());
        Ok(signer)
    }
}

/// The configured signer, the keys configuration publishes beside it, and (where the provider
/// runs) the keyring of rotations ([`crate::tables::oauth_signing_keys`]).
#[derive(Clone)]
pub struct SigningKeys {
    configured: Arc<dyn JwtSigner>,
    others: Vec<Jwk>,
    keyring: Option<Arc<Keyring>>,
}

impl SigningKeys {
    /// `configured` signs until a rotation's key activates; JWKS publishes it and `others` (KMS
    /// keys configured as published: `GATEHOUSE_OAUTH_KMS_PUBLISHED_KEY_IDS`).
    pub fn new(configured: Arc<dyn JwtSigner>, others: Vec<Jwk>) -> Self {
        let others = others.into_iter().filter(|k| k.kid != configured.jwk().kid).collect();
        Self { configured, others, keyring: None }
    }

    /// A key held in the process, published alone.
    pub fn local(key: LocalKey) -> Self {
        Self::new(Arc::new(LocalSigner(key)), Vec::new())
    }

    /// With the keyring of `stores` (rotations by `gatehouse oauth:key-rotate`); `longest` is the
    /// longest life of a token the provider signs.
    pub fn with_keyring(
        mut self,
        stores: &crate::Stores,
        factory: Arc<dyn SignerFactory>,
        longest: chrono::Duration,
    ) -> Self {
        self.keyring = Some(Arc::new(Keyring {
            store: stores.oauth_signing_keys.clone(),
            factory,
            clock: stores.clock.clone(),
            longest,
            cache: tokio::sync::Mutex::new(None),
            signers: std::sync::Mutex::new(Default::default()),
        }));
        self
    }

    /// The keys published now, and the record that signs now (`None`: the configured key). No
    /// signer is built here: checking a token never needs a private key to open.
    async fn now(&self) -> Result<(Option<SigningKeyRecord>, Vec<Jwk>), SignError> {
        let Some(ring) = &self.keyring else {
            let mut published = vec![self.configured.jwk().clone()];
            published.extend(self.others.iter().cloned());
            return Ok((None, published));
        };
        let records = ring.records().await?;
        let now = ring.clock.now();
        let mut published = Vec::new();
        if !keyring::configured_retired(&records, now, ring.longest) {
            published.push(self.configured.jwk().clone());
            published.extend(self.others.iter().cloned());
        }
        published.extend(records.iter().map(|r| r.public.clone()));
        Ok((keyring::active(&records, now).cloned(), published))
    }

    /// The compact JWS of `claims` with header `typ`, signed by the key active now.
    pub async fn sign(&self, typ: &str, claims: &Value) -> Result<String, SignError> {
        let signer = match (self.now().await?.0, &self.keyring) {
            (Some(record), Some(ring)) => ring.signer(&record).await?,
            _ => self.configured.clone(),
        };
        let input = jwt::signing_input(&signer.jwk().kid, typ, claims);
        let sig = signer.sign(input.as_bytes()).await?;
        Ok(jwt::assemble(&input, &sig))
    }

    /// `/.well-known/jwks.json`'s body.
    pub async fn jwks(&self) -> Result<Value, SignError> {
        let (_, published) = self.now().await?;
        Ok(serde_json::json!({ "keys": published }))
    }

    /// Checks a token signed by one of the keys published now.
    pub async fn verify(&self, token: &str) -> Result<Result<Verified, JwtError>, SignError> {
        let (_, published) = self.now().await?;
        Ok(jwt::verify(token, &published))
    }

    /// The configured key's public half.
    pub fn configured(&self) -> &Jwk {
        self.configured.jwk()
    }
}

/// The keys of a source held in configuration or made here; `Ok(None)` for a KMS key (the AWS
/// adapter builds that one). A key made here is refused on Lambda: every copy of every function
/// must sign and check with the same one.
pub fn local_keys(source: &crate::config::SigningKeySource, on_lambda: bool) -> Result<Option<SigningKeys>, String> {
    use crate::config::SigningKeySource;
    match source {
        SigningKeySource::Pem(key) => Ok(Some(SigningKeys::local((**key).clone()))),
        SigningKeySource::Generated if on_lambda => {
            Err("the OAuth provider needs GATEHOUSE_OAUTH_KMS_KEY_ID (or GATEHOUSE_OAUTH_SIGNING_KEY) on Lambda".into())
        }
        SigningKeySource::Generated => Ok(Some(SigningKeys::local(LocalKey::generate()))),
        SigningKeySource::Kms { .. } => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::oauth_signing_keys::SigningKeyRecord;
    use crate::values::clock::{Clock, ManualClock};
    use serde_json::json;

    fn sealed(app_key: &crate::keys::AppKey, at: Timestamp, activates_at: Timestamp) -> SigningKeyRecord {
        let key = LocalKey::generate();
        let pem = key.to_pem().expect("pem");
        SigningKeyRecord {
            kid: key.jwk().kid.clone(),
            material: KeyMaterial::Sealed { sealed_pem: app_key.seal(SEAL_PURPOSE, pem.as_bytes()).expect("seals") },
            public: key.jwk().clone(),
            activates_at,
            created_at: at,
            expires_at: None,
        }
    }

    fn kid_of(token: &str) -> String {
        use base64::Engine;
        let header = token.split('.').next().expect("header");
        let v: Value =
            serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).expect("b64"))
                .expect("json");
        v["kid"].as_str().expect("kid").to_owned()
    }

    async fn published(keys: &SigningKeys) -> Vec<String> {
        let jwks = keys.jwks().await.expect("jwks");
        jwks["keys"].as_array().expect("keys").iter().map(|k| k["kid"].as_str().expect("kid").to_owned()).collect()
    }

    #[tokio::test]
    async fn a_rotation_publishes_first_switches_at_its_time_and_retires_the_old_key_after_its_tokens() {
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let stores = crate::Stores::memory(clock.clone());
        let app_key = crate::keys::AppKey::random();
        let longest = chrono::Duration::minutes(15);
        let configured = LocalKey::generate();
        let old_kid = configured.jwk().kid.clone();
        let keys = SigningKeys::local(configured).with_keyring(&stores, Arc::new(SealedKeys(app_key.clone())), longest);
        let before = keys.sign("JWT", &json!({"n": 1})).await.expect("signs");
        assert_eq!(kid_of(&before), old_kid);

        let t0 = clock.now();
        let next = sealed(&app_key, t0, t0 + ROTATION_LEAD);
        stores.oauth_signing_keys.add(&next, &[]).await.expect("added");
        // Read a minute later (the keyring's refresh): published, not yet signing.
        clock.advance(KEYRING_REFRESH);
        assert_eq!(published(&keys).await, [old_kid.clone(), next.kid.clone()]);
        assert_eq!(kid_of(&keys.sign("JWT", &json!({})).await.expect("signs")), old_kid);

        clock.advance(ROTATION_LEAD);
        let after = keys.sign("JWT", &json!({"n": 2})).await.expect("signs");
        assert_eq!(kid_of(&after), next.kid, "every copy switches at the key's time");
        assert!(keys.verify(&before).await.expect("keyring").is_ok(), "the old key's tokens still check");

        clock.advance(longest + KEYRING_REFRESH);
        assert_eq!(published(&keys).await, std::slice::from_ref(&next.kid));
        assert!(keys.verify(&before).await.expect("keyring").is_err(), "retired: its tokens no longer check");
        assert!(keys.verify(&after).await.expect("keyring").is_ok());
    }

    #[tokio::test]
    async fn a_sealed_key_that_does_not_open_or_is_not_its_record_s_key_signs_nothing() {
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let stores = crate::Stores::memory(clock.clone());
        let app_key = crate::keys::AppKey::random();
        let now = clock.now();
        let mut record = sealed(&app_key, now, now);
        record.kid = LocalKey::generate().jwk().kid.clone();
        stores.oauth_signing_keys.add(&record, &[]).await.expect("added");
        let keys = SigningKeys::local(LocalKey::generate()).with_keyring(
            &stores,
            Arc::new(SealedKeys(app_key)),
            chrono::Duration::minutes(15),
        );
        assert!(keys.sign("JWT", &json!({})).await.is_err(), "a record naming another key than it holds");
        assert!(keys.jwks().await.is_ok(), "checking never opens a private key");
        let other = SigningKeys::local(LocalKey::generate()).with_keyring(
            &stores,
            Arc::new(SealedKeys(crate::keys::AppKey::random())),
            chrono::Duration::minutes(15),
        );
        assert!(other.sign("JWT", &json!({})).await.is_err(), "another app key opens nothing");
    }
}
