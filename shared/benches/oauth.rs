//! `cargo bench -p gatehouse --bench oauth`: the OAuth provider's ES256 in the process, with the
//! key in the function (`GATEHOUSE_OAUTH_SIGNING_KEY`): signing a typical access token (the
//! claims a client-credentials `POST /oauth/token` signs: header and claims encoded, the
//! signature, the compact JWS) and checking one as the authorizer does before its read (form,
//! algorithm, `kid`, signature, claims decoded). With the key in KMS the first is one `kms:Sign`
//! call instead (BENCHMARKS.md's OAuth figures).

use criterion::{Criterion, criterion_group, criterion_main};
use gatehouse::services::oauth::tokens::ACCESS_TOKEN_TYP;
use gatehouse::values::jwt::{LocalKey, assemble, signing_input, verify};
use serde_json::json;
use std::hint::black_box;

fn es256(c: &mut Criterion) {
    let key = LocalKey::generate();
    let kid = key.jwk().kid.clone();
    let claims = json!({
        "iss": "https://api.example.com",
        "sub": "01JD9V8K3Q4M5N6P7R8S9T0V1W",
        "aud": "https://api.example.com",
        "client_id": "01JD9V8K3Q4M5N6P7R8S9T0V1W",
        "scope": "reports:read reports:write",
        "jti": "0123456789abcdef0123456789abcdef",
        "iat": 1_800_000_000,
        "exp": 1_800_000_600,
    });
    let sign = |claims: &serde_json::Value| {
        let input = signing_input(&kid, ACCESS_TOKEN_TYP, claims);
        assemble(&input, &key.sign(input.as_bytes()))
    };
    let token = sign(&claims);
    let keys = [key.jwk().clone()];
    assert!(verify(&token, &keys).is_ok(), "a token the key checks");

    let mut group = c.benchmark_group("oauth_jwt");
    group.bench_function("sign_access_token", |b| b.iter(|| sign(black_box(&claims))));
    group.bench_function("verify_access_token", |b| {
        b.iter(|| verify(black_box(&token), black_box(&keys)).expect("valid"))
    });
    group.finish();
}

criterion_group!(benches, es256);
criterion_main!(benches);
