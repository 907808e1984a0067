//! The contract of the `oauth_signing_keys` table (the provider's keyring), run against both
//! backends by the macro in `main.rs`.

use crate::now;
use chrono::Duration as Span;
use gatehouse::StoreError;
use gatehouse::tables::oauth_signing_keys::{KeyMaterial, SigningKeyRecord};
use gatehouse::values::jwt::LocalKey;
use gatehouse_tests::TestEnv;

fn record(env: &TestEnv, activates_in: Span) -> SigningKeyRecord {
    let key = LocalKey::generate();
    SigningKeyRecord {
        kid: key.jwk().kid.clone(),
        material: KeyMaterial::Sealed { sealed_pem: "sealed".into() },
        public: key.jwk().clone(),
        activates_at: now(env) + activates_in,
        created_at: now(env),
        expires_at: None,
    }
}

pub async fn a_rotation_adds_a_key_and_retires_the_others_in_one_write(env: TestEnv) {
    let store = &env.stores.oauth_signing_keys;
    let first = SigningKeyRecord {
        material: KeyMaterial::Kms { key_id: "1234abcd-12ab-34cd-56ef-1234567890ab".into() },
        ..record(&env, Span::zero())
    };
    store.add(&first, &[]).await.unwrap();
    assert!(matches!(store.add(&first, &[]).await, Err(StoreError::Conflict(_))), "a kid is added once");
    let second = record(&env, Span::minutes(10));
    let retire_at = now(&env) + Span::minutes(30);
    store.add(&second, &[(first.kid.clone(), retire_at)]).await.unwrap();
    let listed = store.list().await.unwrap();
    let retired = SigningKeyRecord { expires_at: Some(retire_at), ..first.clone() };
    assert_eq!(listed, vec![retired, second.clone()], "ordered by activation; the first retires");
    // A retirement naming a key that is not there refuses the whole write.
    let third = record(&env, Span::minutes(20));
    assert!(store.add(&third, &[("no-such-kid".into(), retire_at)]).await.is_err());
    assert_eq!(store.list().await.unwrap().len(), 2, "nothing of the refused write landed");
    env.clock.advance(Span::minutes(30));
    assert_eq!(store.list().await.unwrap(), vec![second], "expired: no longer listed (TTL deletes late)");
}
