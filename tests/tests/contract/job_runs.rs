//! The contract of the `job_runs` table, run against both backends by the macro in `main.rs`.

use crate::now;
use chrono::Duration as Span;
use gatehouse::job_runs::Claim;
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
            Claim::Claimed => claimed += 1,
            Claim::Busy { until } => assert_eq!(until, t + Span::seconds(60)),
            Claim::Completed => panic!("not completed yet"),
        }
    }
    assert_eq!(claimed, 1);
}

pub async fn a_completed_run_stays_completed_and_a_released_or_lapsed_one_is_claimable(env: TestEnv) {
    let runs = &env.stores.job_runs;
    let t = now(&env);
    assert_eq!(runs.claim("a", t, t + Span::seconds(60), t + Span::days(1)).await.unwrap(), Claim::Claimed);
    runs.complete("a", t, t + Span::days(1)).await.unwrap();
    assert_eq!(runs.claim("a", t, t + Span::seconds(60), t + Span::days(1)).await.unwrap(), Claim::Completed);
    assert_eq!(runs.claim("b", t, t + Span::seconds(60), t + Span::days(1)).await.unwrap(), Claim::Claimed);
    runs.release("b").await.unwrap();
    assert_eq!(runs.claim("b", t, t + Span::seconds(60), t + Span::days(1)).await.unwrap(), Claim::Claimed);
    // A crashed attempt's lease lapses.
    env.clock.advance(Span::seconds(61));
    let later = now(&env);
    assert_eq!(runs.claim("b", later, later + Span::seconds(60), later + Span::days(1)).await.unwrap(), Claim::Claimed);
    // Past its retention a completed record is forgotten.
    env.clock.advance(Span::days(2));
    let much_later = now(&env);
    assert_eq!(
        runs.claim("a", much_later, much_later + Span::seconds(60), much_later + Span::days(1)).await.unwrap(),
        Claim::Claimed
    );
}
