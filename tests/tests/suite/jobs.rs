//! The job worker against SQS and DynamoDB on the emulator (and the in-memory queue where time
//! must be simulated).

use aws_lambda_events::sqs::SqsEvent;
use gatehouse::queue::Worker;
use gatehouse::queue::{DispatchError, Outcome, retry_failed};
use gatehouse::tables::job_batches::BatchOptions;
use gatehouse::tables::jobs::{JobPayload, QueueMessage};
use gatehouse_tests::TestEnv;
use gatehouse_tests::jobs::{Probe, drain, job, test_worker};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// A `Flaky` job of three tries failing its first `fail_times` runs, dispatched on the emulator
/// and drained: it ran three times.
async fn a_flaky_job_drained(fail_times: u32) -> (TestEnv, Worker, Arc<Probe>, JobPayload) {
    let env = TestEnv::aws().await;
    let (w, probe) = test_worker(&env);
    let j = job("Flaky", json!({ "fail_times": fail_times }), 3);
    w.dispatcher().dispatch(j.clone()).await.unwrap();
    drain(&w, 20).await;
    assert_eq!(probe.runs(&j.uuid), 3);
    (env, w, probe, j)
}

#[tokio::test]
async fn a_job_that_fails_twice_then_succeeds_runs_three_times_and_ends_succeeded() {
    let (env, ..) = a_flaky_job_drained(2).await;
    assert!(env.stores.failed_jobs.list(10, None).await.unwrap().items.is_empty());
    assert_eq!(env.stores.queue.approximate_len().await.unwrap(), 0);
}

#[tokio::test]
async fn a_job_that_always_fails_runs_max_tries_times_lands_in_failed_jobs_and_can_be_retried() {
    let (env, w, probe, j) = a_flaky_job_drained(100).await;
    let failed = env.stores.failed_jobs.list(10, None).await.unwrap().items;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].uuid, j.uuid);
    assert!(failed[0].exception.contains("flaky failure 3"), "{}", failed[0].exception);
    assert_eq!((failed[0].connection.as_str(), failed[0].queue.as_str()), ("sqs", "jobs"));
    assert_eq!(env.stores.queue.approximate_len().await.unwrap(), 0, "removed from the queue");

    retry_failed(w.dispatcher(), &j.uuid).await.unwrap();
    assert!(env.stores.failed_jobs.find(&j.uuid).await.unwrap().is_none());
    drain(&w, 20).await;
    assert_eq!(probe.runs(&j.uuid), 6, "retried with its tries reset");
}

#[tokio::test]
async fn one_bad_record_in_a_batch_of_ten_is_the_only_one_reported() {
    let env = TestEnv::aws().await;
    let (w, probe) = test_worker(&env);
    let bad = job("Flaky", json!({"fail_times": 5}), 3);
    let panicking = job("Panics", json!({}), 1);
    for i in 0..8 {
        w.dispatcher().dispatch(job("Flaky", json!({"effect": format!("ok-{i}")}), 1)).await.unwrap();
    }
    w.dispatcher().dispatch(bad.clone()).await.unwrap();
    w.dispatcher().dispatch(panicking.clone()).await.unwrap();
    let mut received: Vec<QueueMessage> = Vec::new();
    while received.len() < 10 {
        received.extend(env.stores.queue.receive(10, Duration::from_secs(1), None).await.unwrap());
    }
    let event = gatehouse_tests::http::sqs_event(&received);
    let event: SqsEvent = serde_json::from_value(event).unwrap();
    let resp = gatehouse_job_worker::handle(&w, event).await;
    let bad_id = received.iter().find(|m| m.body.contains(&bad.uuid)).unwrap().message_id.clone();
    let ids: Vec<_> = resp.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
    assert_eq!(ids, vec![bad_id], "only the retried record is reported; never an empty identifier");
    assert_eq!(probe.runs(&panicking.uuid), 1);
    let failed =
        env.stores.failed_jobs.find(&panicking.uuid).await.unwrap().expect("the panic failed only its own job");
    assert!(failed.exception.contains("panicked: this job always panics"), "{}", failed.exception);
    for i in 0..8 {
        assert_eq!(probe.runs(&format!("ok-{i}")), 1);
    }
}

#[tokio::test]
async fn the_same_message_delivered_twice_has_its_effect_once() {
    let env = TestEnv::aws().await;
    let (w, probe) = test_worker(&env);
    let j = job("Flaky", json!({"effect": "mail-sent"}), 1);
    w.dispatcher().dispatch(j.clone()).await.unwrap();
    let msgs = env.stores.queue.receive(1, Duration::from_secs(1), None).await.unwrap();
    assert_eq!(w.process(&msgs[0]).await, Outcome::Completed);
    // SQS delivers it again (the delete was lost, say).
    let again = QueueMessage { receive_count: 2, ..msgs[0].clone() };
    assert_eq!(w.process(&again).await, Outcome::Completed);
    assert_eq!(probe.runs("mail-sent"), 1);
    assert_eq!(probe.runs(&j.uuid), 1);
}

/// Options allowing failures whose then, catch and finally jobs count their runs under their names.
fn counted_follow_ups() -> BatchOptions {
    let follow_up = |effect: &str| vec![serde_json::to_value(job("Flaky", json!({ "effect": effect }), 1)).unwrap()];
    BatchOptions {
        allow_failures: true,
        then: follow_up("then"),
        catch: follow_up("catch"),
        finally: follow_up("finally"),
    }
}

#[tokio::test]
async fn a_batch_of_fifty_with_five_failures_and_allow_failures_finishes_once() {
    let env = TestEnv::aws().await;
    let (w, probe) = test_worker(&env);
    let jobs: Vec<_> =
        (0..50).map(|i| job("Flaky", json!({"fail_times": if i % 10 == 3 { 9 } else { 0 }}), 1)).collect();
    let options = counted_follow_ups();
    let batch = w.dispatcher().dispatch_batch("import", jobs, options).await.unwrap();
    drain(&w, 40).await;
    let b = env.stores.job_batches.find(&batch.id).await.unwrap().unwrap();
    assert_eq!((b.total_jobs, b.pending_jobs, b.failed_jobs), (50, 0, 5));
    assert_eq!(b.failed_job_ids.len(), 5);
    assert!(b.finished_at.is_some());
    assert_eq!(probe.runs("finally"), 1);
    assert_eq!(probe.runs("catch"), 1);
    assert_eq!(probe.runs("then"), 0, "then runs only when nothing failed");
    // A late duplicate delivery of a counted job changes nothing and dispatches nothing.
    let dup = job("Flaky", json!({}), 1);
    let mut dup = dup;
    dup.batch_id = Some(batch.id.clone());
    dup.uuid = b.failed_job_ids[0].clone();
    let msg = QueueMessage {
        message_id: "dup".into(),
        receipt_handle: "dup".into(),
        body: dup.to_body(),
        receive_count: 1,
        sent_at: None,
    };
    w.process(&msg).await;
    assert_eq!(env.stores.queue.approximate_len().await.unwrap(), 0);
    let again = env.stores.job_batches.find(&batch.id).await.unwrap().unwrap();
    assert_eq!((again.pending_jobs, again.failed_jobs, again.finished_at), (0, 5, b.finished_at));
}

#[tokio::test]
async fn a_failure_without_allow_failures_cancels_the_batch_and_the_rest_is_skipped() {
    let env = TestEnv::memory();
    let (w, probe) = test_worker(&env);
    let mut jobs = vec![job("Flaky", json!({"fail_times": 9}), 1)];
    jobs.extend((0..3).map(|i| job("Flaky", json!({"effect": format!("later-{i}")}), 1)));
    let batch = w.dispatcher().dispatch_batch("strict", jobs, BatchOptions::default()).await.unwrap();
    drain(&w, 10).await;
    let b = env.stores.job_batches.find(&batch.id).await.unwrap().unwrap();
    assert!(b.cancelled_at.is_some());
    assert_eq!((b.pending_jobs, b.failed_jobs), (0, 1));
    assert!(b.finished_at.is_some());
    assert_eq!((0..3).map(|i| probe.runs(&format!("later-{i}"))).sum::<u32>(), 0);
}

#[tokio::test]
async fn a_one_hour_delay_is_honoured_in_fifteen_minute_steps() {
    let env = TestEnv::memory();
    let (w, probe) = test_worker(&env);
    let j = job("Flaky", json!({}), 1);
    w.dispatcher().dispatch_after(j.clone(), Duration::from_secs(3600)).await.unwrap();
    let mut steps = 0;
    for _ in 0..3 {
        assert_eq!(w.poll_once(Duration::ZERO).await.unwrap(), 0, "not visible before its step");
        env.clock.advance(chrono::Duration::seconds(900));
        assert_eq!(w.poll_once(Duration::ZERO).await.unwrap(), 1, "re-delayed at the end of a step");
        steps += 1;
        assert_eq!(probe.runs(&j.uuid), 0, "never runs before it is due");
    }
    env.clock.advance(chrono::Duration::seconds(899));
    assert_eq!(w.poll_once(Duration::ZERO).await.unwrap(), 0);
    env.clock.advance(chrono::Duration::seconds(1));
    w.poll_once(Duration::ZERO).await.unwrap();
    assert_eq!(probe.runs(&j.uuid), 1);
    assert_eq!(steps, 3);
}

#[tokio::test]
async fn on_sqs_a_long_delay_is_sent_as_re_delay_steps() {
    let env = TestEnv::aws().await;
    let (w, probe) = test_worker(&env);
    let j = job("Flaky", json!({}), 1);
    let mut due = j.clone();
    due.available_at = Some(gatehouse::values::clock::epoch_seconds(env.clock_now()) + 2700);
    let msg = QueueMessage {
        message_id: "m".into(),
        receipt_handle: "r".into(),
        body: due.to_body(),
        receive_count: 1,
        sent_at: None,
    };
    assert!(matches!(w.process(&msg).await, Outcome::Skipped(_)));
    assert_eq!(probe.runs(&j.uuid), 0);
    assert_eq!(env.stores.queue.approximate_len().await.unwrap(), 1, "sent again, delayed");
    assert!(env.stores.queue.receive(1, Duration::ZERO, None).await.unwrap().is_empty(), "and invisible for now");
    // And dispatch_after sends the maximum SQS delay with the due time in the payload.
    w.dispatcher().dispatch_after(j, Duration::from_secs(3600)).await.unwrap();
    assert_eq!(env.stores.queue.approximate_len().await.unwrap(), 2);
}

#[tokio::test]
async fn unknown_jobs_and_undecodable_payloads_go_straight_to_failed_jobs() {
    let env = TestEnv::aws().await;
    let (w, _) = test_worker(&env);
    let unknown = job("NoSuchJob", json!({}), 5);
    w.dispatcher().dispatch(unknown.clone()).await.unwrap();
    env.stores.queue.send("this is not json", Duration::ZERO).await.unwrap();
    drain(&w, 5).await;
    let failed = env.stores.failed_jobs.list(10, None).await.unwrap().items;
    assert_eq!(failed.len(), 2);
    assert!(failed.iter().any(|f| f.uuid == unknown.uuid && f.exception.contains("no handler")));
    assert!(failed.iter().any(|f| f.payload == "this is not json" && f.exception.contains("undecodable")));
    assert_eq!(env.stores.queue.approximate_len().await.unwrap(), 0, "nothing loops");
}

#[tokio::test]
async fn a_jobs_timeout_is_enforced() {
    let env = TestEnv::memory();
    let (w, probe) = test_worker(&env);
    let mut j = job("Sleeps", json!({}), 1);
    j.timeout = Some(1);
    w.dispatcher().dispatch(j.clone()).await.unwrap();
    drain(&w, 3).await;
    assert_eq!(probe.runs(&j.uuid), 1);
    let failed = env.stores.failed_jobs.find(&j.uuid).await.unwrap().unwrap();
    assert!(failed.exception.contains("timed out after 1s"), "{}", failed.exception);
    // Stopped, not detached: past the moment it would have woken, it has not.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(probe.runs(&format!("{}:woke", j.uuid)), 0, "the timed-out run went on");
}

#[tokio::test]
async fn a_payload_over_the_queue_limit_fails_at_dispatch() {
    let env = TestEnv::memory();
    let (w, _) = test_worker(&env);
    let big = job("Flaky", json!({"blob": "x".repeat(300 * 1024)}), 1);
    assert!(matches!(w.dispatcher().dispatch(big).await, Err(DispatchError::TooLarge { .. })));
}

#[tokio::test]
async fn without_overlapping_keeps_two_runs_of_one_key_apart() {
    let env = TestEnv::aws().await;
    let (w, probe) = test_worker(&env);
    let a = job("Exclusive", json!({"name": "report"}), 1);
    let b = job("Exclusive", json!({"name": "report"}), 1);
    let ma = QueueMessage {
        message_id: "a".into(),
        receipt_handle: "a".into(),
        body: a.to_body(),
        receive_count: 1,
        sent_at: None,
    };
    let mb = QueueMessage {
        message_id: "b".into(),
        receipt_handle: "b".into(),
        body: b.to_body(),
        receive_count: 1,
        sent_at: None,
    };
    let (ra, rb) = tokio::join!(w.process(&ma), w.process(&mb));
    assert_eq!((ra, rb), (Outcome::Completed, Outcome::Completed));
    assert_eq!(probe.runs("report"), 1);
    assert_eq!(probe.runs("overlap-skipped"), 1);
}

/// The local worker loop (`gatehouse serve`, `queue:work`) long-polls while idle — at most three
/// receives a minute, not the ~185 a second of a zero-wait poll against SQS — picks up a job as
/// it arrives, and stops at once, abandoning the poll in flight (time is virtual here: a loop that
/// waited out its 20 s poll would show it).
#[tokio::test(start_paused = true)]
async fn an_idle_worker_long_polls_picks_up_work_and_stops_at_once() {
    let mut env = TestEnv::memory();
    let queue = gatehouse_tests::counting::CountingQueue::wrap(env.stores.queue.clone());
    env.stores.queue = queue.clone();
    let (worker, _) = test_worker(&env);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move { worker.run(async { stopped.await.unwrap_or_default() }, false).await });
    tokio::time::sleep(Duration::from_secs(60)).await;
    let idle = queue.receives();
    assert!((3..=4).contains(&idle), "{idle} receives in an idle minute");
    let dispatcher = gatehouse::queue::Dispatcher::new(env.stores.clone(), gatehouse::values::clock::Span::days(1));
    dispatcher.dispatch(job("Flaky", json!({"fail_times": 0}), 1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(env.stores.queue.approximate_len().await.unwrap(), 0, "handled while the poll was waiting");
    let asked = tokio::time::Instant::now();
    stop.send(()).unwrap();
    let handled = task.await.unwrap().unwrap();
    assert_eq!(handled, 1);
    assert!(asked.elapsed() < Duration::from_secs(1), "stopped after {:?}", asked.elapsed());
}

/// Counting a job against its batch is two DynamoDB calls on the wire (the mark and the counters
/// in one transaction, then the batch as it now is), and an expired batch counts nothing.
#[tokio::test]
async fn counting_a_job_against_its_batch_is_two_calls_on_the_wire() {
    let (env, wire) = gatehouse_tests::wire::counted_env().await;
    let now = env.clock_now();
    let b = gatehouse::tables::job_batches::Batch {
        id: uuid::Uuid::new_v4().to_string(),
        name: "import".into(),
        total_jobs: 2,
        pending_jobs: 2,
        failed_jobs: 0,
        failed_job_ids: vec![],
        options: BatchOptions::default(),
        cancelled_at: None,
        created_at: now,
        finished_at: None,
        expires_at: Some(now + chrono::Duration::days(1)),
    };
    env.stores.job_batches.create(&b).await.unwrap();
    wire.take();
    let counted = env.stores.job_batches.record_success(&b.id, "job-1").await.unwrap().unwrap();
    assert!(counted.newly_counted);
    assert_eq!(counted.batch.pending_jobs, 1);
    let calls: Vec<(String, usize)> = wire.take().into_iter().collect();
    assert_eq!(calls, [("dynamodb:GetItem".to_owned(), 1), ("dynamodb:TransactWriteItems".to_owned(), 1)]);
    env.clock.advance(chrono::Duration::days(2));
    assert!(env.stores.job_batches.record_failure(&b.id, "job-2").await.unwrap().is_none(), "an expired batch");
}

/// `queue:retry-batch` as Laravel means it: a batch whose two jobs failed finishes with failures
/// (catch and finally run, then does not); retrying the batch with the jobs now passing re-opens
/// their counts, the batch finishes without failures, and `then` runs exactly once (`finally`
/// does not run again). Two retries racing retry each job once.
#[tokio::test]
async fn a_retried_batch_whose_jobs_now_pass_finishes_successful_and_runs_then_once() {
    let env = TestEnv::aws().await;
    let (w, probe) = test_worker(&env);
    let mut jobs: Vec<_> = (0..3).map(|_| job("Flaky", json!({}), 1)).collect();
    // Fail once (their only try), pass when retried.
    jobs.extend((0..2).map(|_| job("Flaky", json!({"fail_times": 1}), 1)));
    let options = counted_follow_ups();
    let batch = w.dispatcher().dispatch_batch("import", jobs, options).await.unwrap();
    drain(&w, 20).await;
    let b = env.stores.job_batches.find(&batch.id).await.unwrap().unwrap();
    assert_eq!((b.pending_jobs, b.failed_jobs, b.finished_at.is_some()), (0, 2, true));
    assert_eq!((probe.runs("then"), probe.runs("catch"), probe.runs("finally")), (0, 1, 1));

    let dispatcher = w.dispatcher();
    let (r1, r2) = tokio::join!(
        gatehouse::queue::retry_batch(dispatcher, &batch.id),
        gatehouse::queue::retry_batch(dispatcher, &batch.id)
    );
    let (r1, r2) = (r1.unwrap(), r2.unwrap());
    assert_eq!(r1.retried.len() + r2.retried.len(), 2, "each failed job retried once: {r1:?} {r2:?}");
    drain(&w, 20).await;
    let b = env.stores.job_batches.find(&batch.id).await.unwrap().unwrap();
    assert_eq!((b.pending_jobs, b.failed_jobs, b.failed_job_ids.len()), (0, 0, 0));
    assert!(b.finished_at.is_some(), "finished again");
    assert_eq!((probe.runs("then"), probe.runs("catch"), probe.runs("finally")), (1, 1, 1));
    assert_eq!(env.stores.failed_jobs.list(10, None).await.unwrap().items.len(), 0, "the failures are forgotten");
    let again = gatehouse::queue::retry_batch(dispatcher, &batch.id).await.unwrap();
    assert!(again.retried.is_empty() && again.skipped.is_empty(), "nothing left to retry");
}
