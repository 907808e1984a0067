//! The OAuth provider's signing key in KMS: an asymmetric `ECC_NIST_P256` key whose private half
//! never leaves KMS. Each signature is one `Sign` call (`ECDSA_SHA_256` over the JWS signing
//! input); the public key is read once per process (`GetPublicKey`) for JWKS and for checking.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{MessageType, SigningAlgorithmSpec};
use gatehouse::config::{OAuthConfig, SigningKeySource};
use gatehouse::signing::{JwtSigner, SignError, SignerFactory, SigningKeys, local_keys};
use gatehouse::tables::oauth_signing_keys::{KeyMaterial, SigningKeyRecord};
use gatehouse::values::jwt::{Jwk, der_to_raw};
use std::sync::Arc;

pub use aws_sdk_kms::Client;

/// A KMS key that signs ES256.
pub struct KmsSigner {
    client: Client,
    key_id: String,
    jwk: Jwk,
}

impl KmsSigner {
    /// Reads the key's public half (one `GetPublicKey`).
    pub async fn new(client: Client, key_id: &str) -> Result<Self, String> {
        let jwk = public_key(&client, key_id).await?;
        Ok(Self { client, key_id: key_id.to_owned(), jwk })
    }
}

async fn public_key(client: &Client, key_id: &str) -> Result<Jwk, String> {
    let out = client
        .get_public_key()
        .key_id(key_id)
        .send()
        .await
        .map_err(|e| format!("KMS GetPublicKey of {key_id}: {}", aws_sdk_kms::error::DisplayErrorContext(e)))?;
    let der = out.public_key().ok_or_else(|| format!("KMS key {key_id} has no public key"))?;
    Jwk::from_spki_der(der.as_ref()).ok_or_else(|| format!("KMS key {key_id} is not an ECC_NIST_P256 key"))
}

#[async_trait]
impl JwtSigner for KmsSigner {
    fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    async fn sign(&self, input: &[u8]) -> Result<[u8; 64], SignError> {
        let out = self
            .client
            .sign()
            .key_id(&self.key_id)
            .message(Blob::new(input))
            .message_type(MessageType::Raw)
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await
            .map_err(|e| SignError(format!("KMS Sign: {}", aws_sdk_kms::error::DisplayErrorContext(e))))?;
        let der = out.signature().ok_or_else(|| SignError("KMS Sign answered no signature".into()))?;
        der_to_raw(der.as_ref())
            .ok_or_else(|| SignError("KMS Sign answered a signature that is not ECDSA P-256".into()))
    }
}

/// The tag every KMS key of the provider carries (the template's and each rotation's), its value
/// the deployment's table prefix: the functions may sign with the keys so tagged, and no other.
pub const KEY_TAG: &str = "gatehouse:oauth-signing";

/// Makes the signers of the keyring's records: KMS keys through `Sign` (their public half is in
/// the record: no `GetPublicKey`), sealed keys with the app key.
pub struct KmsOrSealed {
    pub client: Client,
    pub sealed: gatehouse::signing::SealedKeys,
}

#[async_trait]
impl SignerFactory for KmsOrSealed {
    async fn signer(&self, record: &SigningKeyRecord) -> Result<Arc<dyn JwtSigner>, SignError> {
        match &record.material {
            KeyMaterial::Kms { key_id } => Ok(Arc::new(KmsSigner {
                client: self.client.clone(),
                key_id: key_id.clone(),
                jwk: record.public.clone(),
            })),
            KeyMaterial::Sealed { .. } => self.sealed.signer(record).await,
        }
    }
}

/// The provider's keys with the keyring of `stores`: see [`signing_keys`].
pub async fn provider_keys(
    sdk: &SdkConfig,
    config: &gatehouse::Config,
    stores: &gatehouse::Stores,
) -> Result<SigningKeys, String> {
    let keys = signing_keys(sdk, &config.oauth).await?;
    let factory =
        KmsOrSealed { client: Client::new(sdk), sealed: gatehouse::signing::SealedKeys(config.app_key.clone()) };
    Ok(keys.with_keyring(stores, Arc::new(factory), config.oauth.longest_token_life()))
}

/// Makes a new KMS signing key for a rotation (`gatehouse oauth:key-rotate --kms`), tagged so the
/// deployment's functions may sign with it: its id and public key.
pub async fn create_key(client: &Client, tag_value: &str) -> Result<(String, Jwk), String> {
    use aws_sdk_kms::types::{KeySpec, KeyUsageType, Tag};
    let tag = Tag::builder().tag_key(KEY_TAG).tag_value(tag_value).build().map_err(|e| e.to_string())?;
    let made = client
        .create_key()
        .key_spec(KeySpec::EccNistP256)
        .key_usage(KeyUsageType::SignVerify)
        .description("gatehouse OAuth / OpenID Connect token signing (ES256), made by oauth:key-rotate")
        .tags(tag)
        .send()
        .await
        .map_err(|e| format!("KMS CreateKey: {}", aws_sdk_kms::error::DisplayErrorContext(e)))?;
    let key_id = made.key_metadata().map(|m| m.key_id().to_owned()).ok_or("KMS CreateKey answered no key")?;
    let jwk = public_key(client, &key_id).await?;
    Ok((key_id, jwk))
}

/// The provider's keys as configured: in configuration or made here ([`local_keys`]), or in KMS
/// (the active key signs; the others configured are published beside it, for a rotation).
pub async fn signing_keys(sdk: &SdkConfig, oauth: &OAuthConfig) -> Result<SigningKeys, String> {
    if !oauth.enabled {
        return Err("the OAuth provider is off: set GATEHOUSE_OAUTH_ISSUER (the template's OAuthIssuer)".into());
    }
    let on_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some_and(|v| !v.is_empty());
    if let Some(keys) = local_keys(&oauth.signing, on_lambda)? {
        return Ok(keys);
    }
    let SigningKeySource::Kms { key_id, published } = &oauth.signing else {
        return Err("no signing key source".into());
    };
    let client = Client::new(sdk);
    let active = KmsSigner::new(client.clone(), key_id).await?;
    let mut others = Vec::with_capacity(published.len());
    for id in published {
        others.push(public_key(&client, id).await?);
    }
    Ok(SigningKeys::new(Arc::new(active), others))
}

/// The keys that check the provider's tokens where nothing is signed (the `token-check`
/// authorizer): as [`signing_keys`], but `None` on Lambda when no key is configured (the
/// deployment uses no OAuth: its tokens are then simply not accepted).
pub async fn verifying_keys(sdk: &SdkConfig, oauth: &OAuthConfig) -> Result<Option<SigningKeys>, String> {
    let on_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some_and(|v| !v.is_empty());
    if !oauth.enabled || (on_lambda && oauth.signing == SigningKeySource::Generated) {
        return Ok(None);
    }
    signing_keys(sdk, oauth).await.map(Some)
}
