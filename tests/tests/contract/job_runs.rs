//! The contract of the `job_runs` table, run against both backends by the macro in `main.rs`.

use crate::now;
use chrono::Duration as Span;
use gatehouse::tables::job_runs::{Claim, Claimant};
use gatehouse_tests::TestEnv;

pub async fn a_job_run_is_claimed_by_exactly_one_of_racing_workers(env: TestEnv) {
    let t = now(&env);
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let runs = env.stores.job_runs.clone();
            tokio::spawn(async move { runs.claim("job-1", t, t + Span::seconds(60), t + Span::days(1)).await.unwrap() })
        })
        .collect();
    let mut claimed = 0;
    for task in tasks {
        match task.await.unwrap() {
            Claim::Claimed(_) => claimed += 1,
            Claim::Busy { until } => assert_eq!(until, t + Span::seconds(60)),
            Claim::Completed => panic!("not completed yet"),
        }
    }
    assert_eq!(claimed, 1);
}

fn claimed(claim: Claim) -> Claimant {
    match claim {
        Claim::Claimed(c) => c,
        other => panic!("not claimed: {other:?}"),
    }
}

pub async fn a_completed_run_stays_completed_and_a_released_or_lapsed_one_is_claimable(env: TestEnv) {
    let runs = &env.stores.job_runs;
    let t = now(&env);
    let claim = |uuid: &'static str, at: gatehouse::Timestamp| {
        let runs = runs.clone();
        async move { runs.claim(uuid, at, at + Span::seconds(60), at + Span::days(1)).await.unwrap() }
    };
    claimed(claim("a", t).await);
    runs.complete("a", t, t + Span::days(1)).await.unwrap();
    assert_eq!(claim("a", t).await, Claim::Completed);
    let first = claimed(claim("b", t).await);
    runs.release("b", &first).await.unwrap();
    let second = claimed(claim("b", t).await);
    assert_ne!(first, second, "each claim is named anew");
    // A crashed attempt's lease lapses.
    env.clock.advance(Span::seconds(61));
    let later = now(&env);
    let third = claimed(claim("b", later).await);
    // The lapsed holder's release, landing late, does not free the claim taken since.
    runs.release("b", &second).await.unwrap();
    assert!(matches!(claim("b", later).await, Claim::Busy { .. }), "the third claim still holds");
    runs.release("b", &third).await.unwrap();
    runs.release("b", &third).await.unwrap(); // retried after it landed: nothing to free, no error
    let fourth = claimed(claim("b", later).await);
    // A release never undoes a completion; an operator's forget frees anything.
    runs.complete("b", later, later + Span::days(1)).await.unwrap();
    runs.release("b", &fourth).await.unwrap();
    assert_eq!(claim("b", later).await, Claim::Completed);
    runs.forget("b").await.unwrap();
    claimed(claim("b", later).await);
    // Past its retention a completed record is forgotten.
    env.clock.advance(Span::days(2));
    claimed(claim("a", now(&env)).await);
}
