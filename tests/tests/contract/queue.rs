//! The jobs queue's contract, run against both backends by the macro in `main.rs`.

use gatehouse::StoreError;
use gatehouse_tests::TestEnv;
use std::time::Duration;

pub async fn the_queue_sends_receives_and_deletes(env: TestEnv) {
    let q = &env.stores.queue;
    q.send(r#"{"n":1}"#, Duration::ZERO).await.unwrap();
    let got = q.receive(10, Duration::from_secs(1), Some(Duration::from_secs(30))).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, r#"{"n":1}"#);
    assert_eq!(got[0].receive_count, 1);
    assert!(q.receive(10, Duration::ZERO, None).await.unwrap().is_empty(), "invisible while in flight");
    q.delete(&got[0].receipt_handle).await.unwrap();
    assert_eq!(q.approximate_len().await.unwrap(), 0);
}

pub async fn a_released_message_comes_back_with_its_receive_count(env: TestEnv) {
    let q = &env.stores.queue;
    q.send("again", Duration::ZERO).await.unwrap();
    let first = q.receive(1, Duration::from_secs(1), Some(Duration::from_secs(30))).await.unwrap();
    q.change_visibility(&first[0].receipt_handle, Duration::ZERO).await.unwrap();
    let second = q.receive(1, Duration::from_secs(2), Some(Duration::from_secs(30))).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].message_id, first[0].message_id);
    assert_eq!(second[0].receive_count, 2);
    q.delete(&second[0].receipt_handle).await.unwrap();
}

pub async fn a_delayed_message_stays_hidden_until_due(env: TestEnv) {
    let q = &env.stores.queue;
    q.send("later", Duration::from_secs(2)).await.unwrap();
    assert!(q.receive(1, Duration::ZERO, None).await.unwrap().is_empty());
    env.advance(Duration::from_secs(3)).await;
    let got = q.receive(1, Duration::from_secs(1), None).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, "later");
}

pub async fn the_queue_rejects_oversized_bodies_and_over_long_delays(env: TestEnv) {
    let q = &env.stores.queue;
    let big = "x".repeat(gatehouse::tables::jobs::MAX_MESSAGE_BYTES + 1);
    assert!(matches!(q.send(&big, Duration::ZERO).await, Err(StoreError::Rejected(_))));
    assert!(matches!(q.send("x", Duration::from_secs(901)).await, Err(StoreError::Rejected(_))));
    assert!(matches!(q.receive(11, Duration::ZERO, None).await, Err(StoreError::Rejected(_))));
}
