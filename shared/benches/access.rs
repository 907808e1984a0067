//! `cargo bench -p gatehouse --bench access`: the token check on the hot path (parse, checksum,
//! one read, constant-time compare; `last_used_at` already fresh), and the rejection of a
//! malformed token, on the in-memory store.

use criterion::{Criterion, criterion_group, criterion_main};
use gatehouse::services::access::Access;
use gatehouse::tables::credential_ref::CredentialRef;
use gatehouse::tables::credentials::{CredentialEntry, NewCredential};
use gatehouse::tables::personal_access_tokens::{Abilities, Tokenable, mint};
use gatehouse::tables::users::User;
use gatehouse::values::password::PasswordHash;
use gatehouse::{Clock, Config, Email, ManualClock, Stores};
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;

fn token_check(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let clock = ManualClock::starting_now();
    let stores = Stores::memory(Arc::new(clock.clone()));
    let config = Arc::new(Config::from_map(&HashMap::new()).expect("config"));
    let access = Access::new(stores.clone(), config.clone());
    let now = clock.now();
    let hash = PasswordHash::from_stored("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into());
    let user = User::new("Bench", Email::parse("bench@example.com").expect("email"), hash, now);
    rt.block_on(stores.users.create(&user)).expect("user");
    let owner = Tokenable::user(&user.id);
    let (plain, record) =
        mint(&owner, "bench".into(), Abilities::all(), None, &config.tokens.prefix, now, Default::default());
    let entry = CredentialEntry {
        user_id: user.id.clone(),
        credential: CredentialRef::token(&record.id),
        parent: None,
        cross_app_id: None,
        created_at: now,
        expires_at: None,
    };
    assert!(rt.block_on(stores.credentials.issue(0, &entry, NewCredential::Token(&record))).expect("issue"));
    let bearer = plain.expose();
    rt.block_on(access.principal(Some(&bearer), None)).expect("warm").expect("valid");

    let mut group = c.benchmark_group("token_check");
    group.bench_function("valid_token", |b| {
        b.iter(|| rt.block_on(access.principal(Some(black_box(&bearer)), None)).expect("ok").expect("authorized"))
    });
    let malformed = format!("{}|{}x", record.id, &bearer[37..bearer.len() - 1]);
    group.bench_function("bad_checksum", |b| {
        b.iter(|| assert!(rt.block_on(access.principal(Some(black_box(&malformed)), None)).expect("ok").is_none()))
    });
    group.finish();
}

criterion_group!(benches, token_check);
criterion_main!(benches);
