//! `cargo bench -p gatehouse --bench auth`: what a failed login costs for a known email with a
//! wrong password versus an unknown email (they must be within 10 % of each other: timing must
//! not reveal which accounts exist), on the in-memory stores with the live argon2 parameters.

use criterion::{Criterion, criterion_group, criterion_main};
use gatehouse::access::Access;
use gatehouse::auth::{Auth, ClientMeta};
use gatehouse::password::PasswordAttempt;
use gatehouse::{Config, Email, ManualClock, Stores};
use std::collections::HashMap;
use std::sync::Arc;

fn failed_logins(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let clock = ManualClock::starting_now();
    let stores = Stores::memory(Arc::new(clock.clone()));
    let config = Arc::new(Config::from_map(&HashMap::new()).expect("config"));
    let auth = Auth::new(Access::new(stores, config)).expect("auth");
    let known = Email::parse("known@example.com").expect("email");
    let unknown = Email::parse("unknown@example.com").expect("email");
    rt.block_on(async {
        let pw = auth.policy().check("correct horse battery staple 42").expect("policy");
        auth.register(
            gatehouse::users::DisplayName::parse("Known").expect("name"),
            known.clone(),
            pw,
            &ClientMeta::default(),
        )
        .await
        .expect("register");
    });
    let mut group = c.benchmark_group("failed_login");
    group.sample_size(30);
    for (name, email) in [("known_email_wrong_password", &known), ("unknown_email", &unknown)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                // Move past every throttle window so each attempt does the full work.
                clock.advance(chrono::Duration::hours(2));
                rt.block_on(auth.check_credentials(
                    email,
                    PasswordAttempt::new("wrong password, again"),
                    &ClientMeta::default(),
                    None,
                ))
                .expect_err("must fail")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, failed_logins);
criterion_main!(benches);
