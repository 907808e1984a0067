//! The contract of the `job_batches` table, run against both backends by the macro in `main.rs`.

use crate::now;
use chrono::Duration as Span;
use gatehouse::tables::job_batches::{Batch, BatchOptions};
use gatehouse_tests::TestEnv;
use serde_json::json;

fn batch(env: &TestEnv, total: u64, allow_failures: bool) -> Batch {
    Batch {
        id: uuid::Uuid::new_v4().to_string(),
        name: "import".into(),
        total_jobs: total,
        pending_jobs: total,
        failed_jobs: 0,
        failed_job_ids: vec![],
        options: BatchOptions { allow_failures, finally: vec![json!({"job": "notify"})], ..Default::default() },
        cancelled_at: None,
        created_at: now(env),
        finished_at: None,
        expires_at: Some(now(env) + Span::days(30)),
    }
}

pub async fn a_job_counted_twice_against_a_batch_decrements_pending_once(env: TestEnv) {
    let b = batch(&env, 3, false);
    env.stores.job_batches.create(&b).await.unwrap();
    let first = env.stores.job_batches.record_success(&b.id, "job-1").await.unwrap().unwrap();
    assert!(first.newly_counted);
    assert_eq!(first.batch.pending_jobs, 2);
    let again = env.stores.job_batches.record_success(&b.id, "job-1").await.unwrap().unwrap();
    assert!(!again.newly_counted);
    assert_eq!(again.batch.pending_jobs, 2);
    assert_eq!(env.stores.job_batches.record_success("no-such-batch", "job-1").await.unwrap(), None);
}

pub async fn a_batch_records_failures_and_finishes_exactly_once(env: TestEnv) {
    let b = batch(&env, 10, true);
    env.stores.job_batches.create(&b).await.unwrap();
    let tasks: Vec<_> = (0..10)
        .flat_map(|i| [i, i]) // every job delivered twice
        .map(|i| {
            let store = env.stores.job_batches.clone();
            let id = b.id.clone();
            tokio::spawn(async move {
                let job = format!("job-{i}");
                if i < 3 { store.record_failure(&id, &job).await } else { store.record_success(&id, &job).await }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap().unwrap();
    }
    let got = env.stores.job_batches.find(&b.id).await.unwrap().unwrap();
    assert_eq!((got.total_jobs, got.pending_jobs, got.failed_jobs), (10, 0, 3));
    let mut failed = got.failed_job_ids.clone();
    failed.sort();
    assert_eq!(failed, vec!["job-0", "job-1", "job-2"]);
    assert!(got.all_jobs_done());
    let finishers: Vec<_> = (0..5)
        .map(|_| {
            let store = env.stores.job_batches.clone();
            let (id, t) = (b.id.clone(), now(&env));
            tokio::spawn(async move { store.mark_finished(&id, t).await.unwrap() })
        })
        .collect();
    let mut finished = 0;
    for f in finishers {
        finished += usize::from(f.await.unwrap());
    }
    assert_eq!(finished, 1);
    assert_eq!(env.stores.job_batches.find(&b.id).await.unwrap().unwrap().finished_at, Some(now(&env)));
    assert_eq!(got.options.finally, vec![json!({"job": "notify"})]);
}

pub async fn a_batch_with_pending_jobs_does_not_finish_and_cancels_once(env: TestEnv) {
    let b = batch(&env, 2, false);
    env.stores.job_batches.create(&b).await.unwrap();
    env.stores.job_batches.record_success(&b.id, "j1").await.unwrap();
    assert!(!env.stores.job_batches.mark_finished(&b.id, now(&env)).await.unwrap());
    assert!(env.stores.job_batches.add_jobs(&b.id, 2).await.unwrap());
    let got = env.stores.job_batches.find(&b.id).await.unwrap().unwrap();
    assert_eq!((got.total_jobs, got.pending_jobs), (4, 3));
    assert!(env.stores.job_batches.cancel(&b.id, now(&env)).await.unwrap());
    assert!(!env.stores.job_batches.cancel(&b.id, now(&env)).await.unwrap());
    assert!(env.stores.job_batches.delete(&b.id).await.unwrap());
    assert_eq!(env.stores.job_batches.find(&b.id).await.unwrap(), None);
}

pub async fn a_failed_job_is_reopened_exactly_once_and_then_counts_again(env: TestEnv) {
    let batches = &env.stores.job_batches;
    let b = batch(&env, 3, true);
    batches.create(&b).await.unwrap();
    batches.record_success(&b.id, "ok").await.unwrap();
    batches.record_failure(&b.id, "bad-1").await.unwrap();
    batches.record_failure(&b.id, "bad-2").await.unwrap();
    assert!(batches.mark_finished(&b.id, now(&env)).await.unwrap());

    // Two retries racing over one job: exactly one re-opens it.
    let (a, c) = tokio::join!(batches.reopen(&b.id, "bad-1"), batches.reopen(&b.id, "bad-1"));
    assert_eq!([a.unwrap(), c.unwrap()].iter().filter(|x| **x).count(), 1);
    let read = batches.find(&b.id).await.unwrap().unwrap();
    assert_eq!((read.pending_jobs, read.failed_jobs, read.finished_at), (1, 1, None));
    assert_eq!(read.failed_job_ids, ["bad-2"]);
    assert!(!batches.reopen(&b.id, "ok").await.unwrap(), "a job that succeeded is not re-opened");
    assert!(!batches.reopen(&b.id, "never").await.unwrap());
    assert!(!batches.reopen("no-such-batch", "bad-2").await.unwrap());

    // Its mark is gone: its next end counts, and the batch can finish again.
    let counted = batches.record_success(&b.id, "bad-1").await.unwrap().unwrap();
    assert!(counted.newly_counted);
    assert_eq!((counted.batch.pending_jobs, counted.batch.failed_jobs), (0, 1));
    assert!(batches.mark_finished(&b.id, now(&env)).await.unwrap());
    assert!(batches.reopen(&b.id, "bad-2").await.unwrap());
    let read = batches.find(&b.id).await.unwrap().unwrap();
    assert_eq!((read.pending_jobs, read.failed_jobs, read.failed_job_ids.len()), (1, 0, 0));
}

pub async fn batches_are_listed_newest_first_a_page_at_a_time(env: TestEnv) {
    let batches = &env.stores.job_batches;
    let mut ids = Vec::new();
    for i in 0..3 {
        let mut b = batch(&env, 1, false);
        b.created_at = now(&env) + Span::seconds(i);
        batches.create(&b).await.unwrap();
        // A counted job writes a mark beside the batch: never listed.
        batches.record_success(&b.id, "job-1").await.unwrap();
        ids.push(b.id);
    }
    let mut expired = batch(&env, 1, false);
    expired.expires_at = Some(now(&env) - Span::seconds(1));
    batches.create(&expired).await.unwrap();
    let first = batches.list(2, None).await.unwrap();
    let got: Vec<&str> = first.items.iter().map(|b| b.id.as_str()).collect();
    assert_eq!(got, [ids[2].as_str(), ids[1].as_str()]);
    let rest = batches.list(2, first.next.as_ref()).await.unwrap();
    let got: Vec<&str> = rest.items.iter().map(|b| b.id.as_str()).collect();
    assert_eq!(got, [ids[0].as_str()], "no mark, no expired batch");
    assert!(rest.next.is_none());
}
