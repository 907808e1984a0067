//! The contract of the `webhook_endpoints` table, run against both backends by the macro in
//! `main.rs`: endpoints created once, listed, their secrets replaced only at the version read
//! (one of racing rotations wins), disabled, enabled and removed; secrets stored sealed.

use crate::now;
use chrono::Duration as Span;
use gatehouse::StoreError;
use gatehouse::keys::AppKey;
use gatehouse::services::webhooks;
use gatehouse::tables::webhook_endpoints::WebhookEndpointId;
use gatehouse_tests::{TestEnv, scan_items};
use std::sync::Arc;

pub async fn webhook_endpoints_are_created_once_listed_disabled_and_removed_with_sealed_secrets(env: TestEnv) {
    let store = &env.stores.webhook_endpoints;
    let key = AppKey::random();
    let (a, secret_a) = webhooks::new_endpoint(&key, "https://a.example/h", Some("user.*"), "A's", now(&env)).unwrap();
    let (b, secret_b) = webhooks::new_endpoint(&key, "http://127.0.0.1:9/in", None, "", now(&env)).unwrap();
    store.create(&a).await.unwrap();
    store.create(&b).await.unwrap();
    // The same write again is a retry, not a conflict; another endpoint with the id is one.
    store.create(&a).await.unwrap();
    let other = gatehouse::tables::webhook_endpoints::WebhookEndpoint { id: a.id.clone(), ..b.clone() };
    let taken = store.create(&other).await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");

    let read = store.get(&a.id).await.unwrap().unwrap();
    assert_eq!(read, a, "read back whole");
    let live = webhooks::signing_secrets(&key, &read, now(&env)).unwrap();
    assert_eq!(live.iter().map(|s| s.expose()).collect::<Vec<_>>(), [secret_a.expose()]);
    assert_eq!(store.list().await.unwrap(), vec![a.clone(), b.clone()], "oldest first");
    assert_eq!(store.get(&WebhookEndpointId::generate()).await.unwrap(), None);
    if env.is_aws() {
        let items = scan_items(&env, Some("webhook_endpoints")).await.join("\n");
        assert!(items.contains(a.id.as_str()), "{items}");
        for s in [&secret_a, &secret_b] {
            let base64 = s.expose().trim_start_matches("whsec_");
            assert!(!items.contains(base64), "a plain secret is stored");
        }
    }

    // Disabled and enabled again; nothing for an absent endpoint.
    assert!(store.set_disabled(&a.id, Some(now(&env))).await.unwrap());
    assert_eq!(store.get(&a.id).await.unwrap().unwrap().disabled_at, Some(now(&env)));
    assert!(store.set_disabled(&a.id, None).await.unwrap());
    assert_eq!(store.get(&a.id).await.unwrap().unwrap(), a);
    assert!(!store.set_disabled(&WebhookEndpointId::generate(), Some(now(&env))).await.unwrap());

    // Removed once; the other stays.
    assert!(store.remove(&a.id).await.unwrap());
    assert!(!store.remove(&a.id).await.unwrap());
    assert_eq!(store.get(&a.id).await.unwrap(), None);
    assert_eq!(store.list().await.unwrap(), vec![b.clone()]);
    assert!(!store.replace_secrets(&a.id, 0, &b.secrets).await.unwrap(), "nothing to replace");
}

pub async fn a_rotation_keeps_the_old_secret_until_its_overlap_ends(env: TestEnv) {
    let store = &env.stores.webhook_endpoints;
    let key = AppKey::random();
    let (e, first) = webhooks::add(&**store, &key, "https://a.example/h", None, "", now(&env)).await.unwrap();
    let second = webhooks::rotate(&**store, &key, &e.id, Span::hours(24), now(&env)).await.unwrap();
    let read = store.get(&e.id).await.unwrap().unwrap();
    assert_eq!(read.version, 1);
    let at = |h| webhooks::signing_secrets(&key, &read, now(&env) + Span::hours(h)).unwrap();
    let texts = |v: Vec<gatehouse::values::webhook_signature::WebhookSecret>| {
        v.iter().map(|s| s.expose().to_owned()).collect::<Vec<_>>()
    };
    assert_eq!(texts(at(23)), [first.expose(), second.expose()], "both sign during the overlap");
    assert_eq!(texts(at(24)), [second.expose()], "then the new one alone");
    // A stale version writes nothing.
    assert!(!store.replace_secrets(&e.id, 0, &e.secrets).await.unwrap());
    assert_eq!(store.get(&e.id).await.unwrap().unwrap(), read);
}

pub async fn eight_racing_rotations_of_one_endpoint_let_exactly_one_land(env: TestEnv) {
    let store = env.stores.webhook_endpoints.clone();
    let key = AppKey::random();
    let (e, _) = webhooks::add(&*store, &key, "https://a.example/h", None, "", now(&env)).await.unwrap();
    let t = now(&env);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (store, e, key) = (Arc::clone(&store), e.clone(), key.clone());
            tokio::spawn(async move {
                let new = webhooks::seal(&key, &gatehouse::values::webhook_signature::WebhookSecret::generate(), t);
                let secrets = e.rotated(new, t, Span::hours(1));
                store.replace_secrets(&e.id, e.version, &secrets).await.unwrap().then_some(secrets)
            })
        })
        .collect();
    let mut won = Vec::new();
    for t in tasks {
        won.extend(t.await.unwrap());
    }
    assert_eq!(won.len(), 1, "exactly one rotation lands");
    let read = store.get(&e.id).await.unwrap().unwrap();
    assert_eq!((read.version, &read.secrets), (1, &won[0]));
}
