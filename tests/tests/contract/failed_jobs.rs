//! The contract of the `failed_jobs` table, run against both backends by the macro in `main.rs`.

use crate::now;
use chrono::Duration as Span;
use gatehouse::StoreError;
use gatehouse::tables::failed_jobs::FailedJob;
use gatehouse::tables::personal_access_tokens::Tokenable;
use gatehouse::tables::users::UserId;
use gatehouse_tests::TestEnv;
use serde_json::json;

fn failed(env: &TestEnv, i: usize) -> FailedJob {
    FailedJob {
        uuid: format!("00000000-0000-4000-8000-{i:012}"),
        connection: "sqs".into(),
        queue: "jobs".into(),
        payload: json!({"uuid": i}).to_string(),
        exception: format!("boom {i}\ncaused by: io"),
        failed_at: now(env),
        expires_at: Some(now(env) + Span::days(30)),
    }
}

pub async fn failed_jobs_list_newest_first_across_many_small_pages(env: TestEnv) {
    for i in 0..11 {
        env.stores.failed_jobs.record(&failed(&env, i)).await.unwrap();
        env.clock.advance(Span::milliseconds(10));
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = env.stores.failed_jobs.list(4, cursor.as_ref()).await.unwrap();
        pages += 1;
        seen.extend(page.items.into_iter().map(|j| j.uuid));
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let want: Vec<_> = (0..11).rev().map(|i| failed(&env, i).uuid).collect();
    assert_eq!(seen, want);
    assert!(pages >= 3);
}

pub async fn failed_jobs_are_found_forgotten_and_flushed(env: TestEnv) {
    for i in 0..30 {
        env.stores.failed_jobs.record(&failed(&env, i)).await.unwrap();
    }
    let one = failed(&env, 7);
    assert_eq!(env.stores.failed_jobs.find(&one.uuid).await.unwrap(), Some(one.clone()));
    assert!(env.stores.failed_jobs.forget(&one.uuid).await.unwrap());
    assert!(!env.stores.failed_jobs.forget(&one.uuid).await.unwrap());
    assert_eq!(env.stores.failed_jobs.flush().await.unwrap(), 29);
    assert!(env.stores.failed_jobs.list(10, None).await.unwrap().items.is_empty());
}

pub async fn failed_jobs_past_retention_are_invisible(env: TestEnv) {
    let job = failed(&env, 1);
    env.stores.failed_jobs.record(&job).await.unwrap();
    env.clock.advance(Span::days(31));
    assert_eq!(env.stores.failed_jobs.find(&job.uuid).await.unwrap(), None);
    assert!(env.stores.failed_jobs.list(10, None).await.unwrap().items.is_empty());
}

pub async fn a_bad_cursor_is_rejected_not_a_crash(env: TestEnv) {
    let bad = gatehouse::values::pagination::Cursor::from_string("!!not-a-cursor".into());
    let res = env.stores.failed_jobs.list(10, Some(&bad)).await;
    assert!(matches!(res, Err(StoreError::InvalidCursor)), "{res:?}");
    let res = env.stores.personal_access_tokens.list_for(&Tokenable::user(&UserId::generate()), 10, Some(&bad)).await;
    assert!(matches!(res, Err(StoreError::InvalidCursor)), "{res:?}");
}
