//! The OAuth provider's keys in KMS, on the emulator with the real SDK: a key made as a rotation
//! makes it signs ES256 through `kms:Sign` (KMS's DER signature turned into JWS's r ‖ s) and the
//! tokens check against the public key KMS gives; a rotation to a KMS key through the keyring
//! table switches signing at its time.

use gatehouse::signing::{JwtSigner, ROTATION_LEAD, SealedKeys, SigningKeys};
use gatehouse::tables::oauth_signing_keys::{KeyMaterial, SigningKeyRecord};
use gatehouse::values::clock::Clock;
use gatehouse::values::jwt::{self, LocalKey};
use gatehouse_aws::kms::{Client, KmsOrSealed, KmsSigner, create_key};
use gatehouse_tests::{TestEnv, emulator_sdk_config};
use serde_json::json;
use std::sync::Arc;

#[tokio::test]
async fn a_kms_key_signs_es256_that_checks_against_its_public_key() {
    let client = Client::new(&emulator_sdk_config().await);
    let (key_id, jwk) = create_key(&client, "test-").await.expect("CreateKey on the emulator");
    let signer = KmsSigner::new(client, &key_id).await.expect("GetPublicKey");
    assert_eq!(signer.jwk(), &jwk);
    let keys = SigningKeys::new(Arc::new(signer), Vec::new());
    // Many signatures: KMS answers DER of varying length and high-S values now and then.
    for n in 0..20 {
        let token = keys.sign("JWT", &json!({ "n": n })).await.expect("kms:Sign");
        let checked = jwt::verify(&token, std::slice::from_ref(&jwk)).expect("checks against the KMS public key");
        assert_eq!(checked.claims["n"], n);
        assert!(jwt::verify(&token, &[LocalKey::generate().jwk().clone()]).is_err());
    }
}

#[tokio::test]
async fn a_rotation_to_a_kms_key_through_the_keyring_table_signs_with_it_from_its_time() {
    let env = TestEnv::aws().await;
    let sdk = emulator_sdk_config().await;
    let client = Client::new(&sdk);
    let app_key = gatehouse::keys::AppKey::random();
    let configured = LocalKey::generate();
    let factory = KmsOrSealed { client: client.clone(), sealed: SealedKeys(app_key) };
    let keys = SigningKeys::local(configured.clone()).with_keyring(
        &env.stores,
        Arc::new(factory),
        chrono::Duration::minutes(15),
    );
    let (key_id, jwk) = create_key(&client, "test-").await.expect("CreateKey");
    let now = env.clock.now();
    let record = SigningKeyRecord {
        kid: jwk.kid.clone(),
        material: KeyMaterial::Kms { key_id },
        public: jwk.clone(),
        activates_at: now + ROTATION_LEAD,
        created_at: now,
        expires_at: None,
    };
    env.stores.oauth_signing_keys.add(&record, &[]).await.expect("added on the emulator");
    env.clock.advance(ROTATION_LEAD);
    let token = keys.sign("JWT", &json!({ "sub": "u" })).await.expect("signs with the KMS key");
    let checked = keys.verify(&token).await.expect("keyring").expect("checks");
    assert_eq!(checked.kid, jwk.kid);
    assert!(jwt::verify(&token, &[configured.jwk().clone()]).is_err(), "not the configured key");
}
