//! Webhook deliveries (#32, `services::deliveries`): recorded events reach a receiver on this
//! machine over HTTP, signed (Standard Webhooks), in order per user, at least once, through the
//! job queue's retries; filters, disabled endpoints and endpoints added later; a missing number
//! waited for, then passed over. On the in-memory stores and the emulator alike.

use crate::support::{mails, mails_with_notices};
use gatehouse::queue::Dispatcher;
use gatehouse::tables::events::{Appended, Event, EventBody, EventType};
use gatehouse::tables::users::{EventMark, User};
use gatehouse::tables::webhook_endpoints::WebhookEndpoint;
use gatehouse::values::email::Email;
use gatehouse::values::password::PasswordHash;
use gatehouse::values::webhook_signature::{DEFAULT_TOLERANCE_SECS, WebhookSecret, verify};
use gatehouse_tests::http::TestApp;
use gatehouse_tests::receiver::Receiver;
use serde_json::json;

fn body(kind: &str, data: serde_json::Value) -> EventBody {
    serde_json::from_value(json!({ "type": kind, "data": data })).unwrap()
}

fn enabled() -> EventBody {
    body("user.enabled", json!({}))
}

fn deleted() -> EventBody {
    body("user.deleted", json!({ "revoked": "all" }))
}

async fn endpoint(t: &TestApp, url: &str, events: Option<&str>) -> (WebhookEndpoint, WebhookSecret) {
    let now = t.env.clock_now();
    gatehouse::services::webhooks::add(
        t.env.stores.webhook_endpoints.as_ref(),
        &t.app.config.app_key,
        url,
        events,
        "",
        now,
    )
    .await
    .expect("added")
}

/// A user created with `bodies` promised by its creation (numbers 1…n), as a registration's
/// event is; the events are recorded (and delivered) when the worker runs past the notice delay.
async fn user_with_events(t: &TestApp, bodies: Vec<EventBody>) -> User {
    let dispatcher = Dispatcher::for_config(t.env.stores.clone(), &t.app.config);
    let email = format!("hooks-{}@example.com", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let user = User::new("Ann", Email::parse(&email).unwrap(), PasswordHash::unusable(), t.env.clock_now());
    let mut marks: Vec<EventMark> = vec![];
    for b in bodies {
        marks.push(dispatcher.promise_event(&user.id, b).await.expect("promised"));
    }
    let user = user.with_events(&marks);
    t.env.stores.users.create(&user).await.expect("created");
    user
}

/// Each delivery verifies with the endpoint's secret, its `webhook-id` is the event's id, and
/// the bodies are the user's events: (seq, type) in the order received.
fn checked(t: &TestApp, r: &Receiver, secret: &WebhookSecret) -> Vec<(u64, String)> {
    let now = t.env.clock_now().timestamp();
    r.received()
        .iter()
        .map(|d| {
            // Checked as the receiver did when it came (the clock has moved on since).
            let sent: i64 = d.header("webhook-timestamp").and_then(|s| s.parse().ok()).expect("a timestamp");
            assert!(sent <= now);
            verify(secret, &d.headers, &d.body, sent, DEFAULT_TOLERANCE_SECS)
                .expect("signed with the endpoint's secret");
            let e = d.json();
            assert_eq!(d.header("webhook-id"), e["id"].as_str(), "the webhook id is the event's");
            assert_eq!(d.header("content-type"), Some("application/json"));
            (e["seq"].as_u64().unwrap(), e["type"].as_str().unwrap().to_owned())
        })
        .collect()
}

/// Three events of one user, recorded as their jobs run, reach the endpoint in order, each
/// once, signed; an endpoint filtered to `user.deleted` gets that one alone; a disabled one
/// nothing.
async fn recorded_events_reach_the_endpoints_that_want_them_in_order(t: TestApp) {
    let (all, deletions, off) = (Receiver::start().await, Receiver::start().await, Receiver::start().await);
    let (_, secret) = endpoint(&t, &all.url, None).await;
    let (_, deletion_secret) = endpoint(&t, &deletions.url, Some("user.deleted")).await;
    let (disabled, _) = endpoint(&t, &off.url, None).await;
    t.env.stores.webhook_endpoints.set_disabled(&disabled.id, Some(t.env.clock_now())).await.unwrap();
    let user = user_with_events(&t, vec![enabled(), deleted(), enabled()]).await;
    mails_with_notices(&t).await;
    mails(&t).await;
    let kinds = |v: &[(u64, &str)]| v.iter().map(|(n, k)| (*n, k.to_string())).collect::<Vec<_>>();
    assert_eq!(
        checked(&t, &all, &secret),
        kinds(&[(1, "user.enabled"), (2, "user.deleted"), (3, "user.enabled")]),
        "in order, each once"
    );
    assert_eq!(checked(&t, &deletions, &deletion_secret), kinds(&[(2, "user.deleted")]), "the filter");
    assert!(off.received().is_empty(), "a disabled endpoint is sent nothing");
    let first = all.received()[0].json();
    assert_eq!(first["user_id"], user.id.as_str());
    // Nothing more is sent when the worker runs again.
    mails_with_notices(&t).await;
    assert_eq!(all.received().len(), 3);
}

#[tokio::test]
async fn recorded_events_reach_the_endpoints_that_want_them_in_order_signed() {
    recorded_events_reach_the_endpoints_that_want_them_in_order(TestApp::memory(&[])).await;
}

#[tokio::test]
async fn recorded_events_reach_the_endpoints_that_want_them_in_order_signed_on_the_emulator() {
    // The emulator's queue delays are real time: no notice delay here.
    let t = TestApp::aws(&[("GATEHOUSE_NOTICE_DELAY_SECONDS", "0")]).await;
    recorded_events_reach_the_endpoints_that_want_them_in_order(t).await;
}

/// A receiver that fails (500, then 503) is tried again with backoff, and the later event
/// waits for the earlier: nothing overtakes, nothing is lost, the failures are retried rather
/// than skipped.
#[tokio::test]
async fn a_failing_receiver_gets_every_event_later_and_still_in_order() {
    let t = TestApp::memory(&[]);
    let r = Receiver::start().await;
    let (_, secret) = endpoint(&t, &r.url, None).await;
    r.answer(&[500, 503]);
    user_with_events(&t, vec![enabled(), deleted()]).await;
    mails_with_notices(&t).await;
    assert!(r.received().is_empty(), "refused so far");
    assert!(r.refused() >= 1);
    for _ in 0..6 {
        t.env.clock.advance(chrono::Duration::seconds(130));
        mails(&t).await;
    }
    assert_eq!(r.refused(), 2);
    assert_eq!(checked(&t, &r, &secret), vec![(1, "user.enabled".into()), (2, "user.deleted".into())]);
}

/// A number not recorded yet holds back the events after it (for [`GAP_PATIENCE`]), then they
/// go without it; an endpoint added after a user's events hears only of later ones.
///
/// [`GAP_PATIENCE`]: gatehouse::services::deliveries::GAP_PATIENCE
#[tokio::test]
async fn a_missing_number_is_waited_for_then_passed_over() {
    let t = TestApp::memory(&[]);
    user_with_events(&t, vec![enabled()]).await;
    mails_with_notices(&t).await;
    t.env.clock.advance(chrono::Duration::seconds(1));
    let r = Receiver::start().await;
    let (_, secret) = endpoint(&t, &r.url, None).await;
    let user = user_with_events(&t, vec![enabled()]).await;
    mails_with_notices(&t).await;
    assert_eq!(checked(&t, &r, &secret), vec![(1, "user.enabled".into())]);
    assert_eq!(r.events()[0]["user_id"], user.id.as_str(), "not the user whose event came before the endpoint");
    // Number 3 recorded while 2 never is (its job failed for good, say).
    let now = t.env.clock_now();
    let third = Event::new(user.id.clone(), 3, now, deleted());
    let until = now + chrono::Duration::days(7);
    assert_eq!(t.env.stores.events.append(&third, until).await.unwrap(), Appended::Added);
    let dispatcher = Dispatcher::for_config(t.env.stores.clone(), &t.app.config);
    let job = gatehouse::services::deliveries::delivery_job(&r_endpoint(&t).await, &user.id, now);
    dispatcher.dispatch(job).await.unwrap();
    mails(&t).await;
    assert_eq!(r.received().len(), 1, "3 waits for 2");
    t.env.clock.advance(gatehouse::services::deliveries::GAP_PATIENCE + chrono::Duration::seconds(1));
    mails(&t).await;
    let got = checked(&t, &r, &secret);
    assert_eq!(got, vec![(1, "user.enabled".into()), (3, "user.deleted".into())], "then passed over");
    assert!(got.iter().all(|(_, k)| EventType::parse(k).is_some()));
}

async fn r_endpoint(t: &TestApp) -> gatehouse::tables::webhook_endpoints::WebhookEndpointId {
    t.env.stores.webhook_endpoints.list().await.unwrap().remove(0).id
}

/// An endpoint added after some of a user's events hears only of what came after it, even for
/// that user (the attacker review's first finding: the earlier ones were all sent but one).
#[tokio::test]
async fn an_endpoint_added_later_is_sent_none_of_the_user_s_earlier_events() {
    let t = TestApp::memory(&[]);
    let user = user_with_events(&t, vec![enabled(), enabled()]).await;
    mails_with_notices(&t).await;
    t.env.clock.advance(chrono::Duration::seconds(1));
    let r = Receiver::start().await;
    let (added, secret) = endpoint(&t, &r.url, None).await;
    let now = t.env.clock_now();
    let third = Event::new(user.id.clone(), 3, now, deleted());
    assert_eq!(t.env.stores.events.append(&third, now + chrono::Duration::days(7)).await.unwrap(), Appended::Added);
    let dispatcher = Dispatcher::for_config(t.env.stores.clone(), &t.app.config);
    dispatcher.dispatch(gatehouse::services::deliveries::delivery_job(&added.id, &user.id, now)).await.unwrap();
    mails(&t).await;
    assert_eq!(checked(&t, &r, &secret), vec![(3, "user.deleted".into())]);
}

/// A run that died holding the pair's lock (its Lambda killed) blocks nothing for good: the
/// job that found the lock held comes back once it has expired and sends.
#[tokio::test]
async fn a_lock_left_by_a_dead_run_delays_the_delivery_but_loses_nothing() {
    use gatehouse::tables::cache_locks::LockOwner;
    let t = TestApp::memory(&[]);
    let r = Receiver::start().await;
    let (added, secret) = endpoint(&t, &r.url, None).await;
    let user =
        User::new("Ann", Email::parse("dead-run@example.com").unwrap(), PasswordHash::unusable(), t.env.clock_now());
    let tag = t.app.config.app_key.tag("user-tag", user.id.as_str());
    let lock = format!("webhook-delivery:{}:{tag}", added.id.as_str());
    let until = t.env.clock_now() + chrono::Duration::seconds(60);
    assert!(t.env.stores.cache_locks.acquire(&lock, &LockOwner::new("a dead run"), Some(until)).await.unwrap());
    let user = {
        let dispatcher = Dispatcher::for_config(t.env.stores.clone(), &t.app.config);
        let mark = dispatcher.promise_event(&user.id, enabled()).await.unwrap();
        let user = user.with_events(std::slice::from_ref(&mark));
        t.env.stores.users.create(&user).await.unwrap();
        user
    };
    mails_with_notices(&t).await;
    assert!(r.received().is_empty(), "the lock is held");
    t.env.clock.advance(chrono::Duration::seconds(70));
    mails(&t).await;
    assert_eq!(checked(&t, &r, &secret), vec![(1, "user.enabled".into())]);
    assert_eq!(r.events()[0]["user_id"], user.id.as_str());
}

/// A receiver that is down while a user's events pile up is retried by one job for the pair,
/// not one per event: each step of the backoff sees one refused request at most; once it is
/// back, everything arrives in order.
#[tokio::test]
async fn a_receiver_that_is_down_is_retried_by_one_job_per_user_not_one_per_event() {
    let t = TestApp::memory(&[]);
    let r = Receiver::start().await;
    let (_, secret) = endpoint(&t, &r.url, None).await;
    r.answer(&[500; 4]);
    user_with_events(&t, vec![enabled(); 8]).await;
    mails_with_notices(&t).await;
    assert_eq!(r.refused(), 1, "the first job failed; the seven others left the pair to it");
    let mut refused = r.refused();
    for _ in 0..8 {
        t.env.clock.advance(chrono::Duration::seconds(700));
        mails(&t).await;
        assert!(r.refused() <= refused + 1, "one try per step at most: {} after {refused}", r.refused());
        refused = r.refused();
    }
    assert_eq!(r.refused(), 4, "four tries refused in all, by one job");
    let got = checked(&t, &r, &secret);
    assert_eq!(got.iter().map(|(n, _)| *n).collect::<Vec<_>>(), (1..=8).collect::<Vec<u64>>(), "all, in order, once");
}

/// A deleted user's first delivery (no cursor yet) waits for a number not recorded yet, as a
/// gap does: `user.deleted` recorded before `user.registered` does not overtake it.
#[tokio::test]
async fn a_deleted_user_s_later_event_does_not_overtake_an_earlier_one_still_being_recorded() {
    let t = TestApp::memory(&[]);
    let r = Receiver::start().await;
    let (added, secret) = endpoint(&t, &r.url, None).await;
    // Event 1 promised and carried by the creation; the user then deleted (its mark kept).
    let user = user_with_events(&t, vec![enabled()]).await;
    let dispatcher = Dispatcher::for_config(t.env.stores.clone(), &t.app.config);
    gatehouse::services::account_deletion::finish(&t.env.stores, &t.app.config, &dispatcher, &user.id, &user.email)
        .await
        .unwrap();
    // Event 2 recorded first (its job ran before event 1's).
    let now = t.env.clock_now();
    let second = Event::new(user.id.clone(), 2, now, deleted());
    assert_eq!(t.env.stores.events.append(&second, now + chrono::Duration::days(7)).await.unwrap(), Appended::Added);
    dispatcher.dispatch(gatehouse::services::deliveries::delivery_job(&added.id, &user.id, now)).await.unwrap();
    mails(&t).await;
    assert!(r.received().is_empty(), "2 waits for 1");
    mails_with_notices(&t).await;
    let got = checked(&t, &r, &secret);
    assert_eq!(got, vec![(1, "user.enabled".into()), (2, "user.deleted".into())]);
    assert!(r.events().iter().all(|e| e["redacted"] == true));
}

/// On the emulator's EventBridge: every recorded event is put on the deployment's bus (source
/// `gatehouse`, detail-type its type, detail the event), and a rule routes them on, here to a
/// queue the test reads.
#[tokio::test]
async fn recorded_events_are_put_on_the_event_bus_on_the_emulator() {
    use aws_sdk_sqs::types::QueueAttributeName;
    let t = TestApp::aws(&[("GATEHOUSE_NOTICE_DELAY_SECONDS", "0")]).await;
    let sdk = gatehouse_tests::emulator_sdk_config().await;
    let (eb, sqs) = (aws_sdk_eventbridge::Client::new(&sdk), aws_sdk_sqs::Client::new(&sdk));
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..10];
    let bus = format!("gatehouse-events-{suffix}");
    eb.create_event_bus().name(&bus).send().await.expect("a bus");
    let queue = sqs.create_queue().queue_name(format!("bus-target-{suffix}")).send().await.expect("a queue");
    let url = queue.queue_url().expect("its url").to_owned();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("its arn");
    let arn = attrs.attributes().and_then(|a| a.get(&QueueAttributeName::QueueArn)).expect("an arn").clone();
    let pattern = r#"{"source":["gatehouse"]}"#;
    eb.put_rule().name("all").event_bus_name(&bus).event_pattern(pattern).send().await.expect("a rule");
    let target = aws_sdk_eventbridge::types::Target::builder().id("queue").arn(arn).build().expect("a target");
    eb.put_targets().rule("all").event_bus_name(&bus).targets(target).send().await.expect("the target");

    let outbound = gatehouse::services::deliveries::Outbound {
        post: gatehouse_aws::outbound::poster(),
        bus: Some(std::sync::Arc::new(gatehouse_aws::eventbridge::EventBridgeBus::new(&sdk, bus.clone()))),
    };
    let mailer = std::sync::Arc::new(gatehouse::mail::LogMailer::quiet());
    let worker =
        gatehouse::services::job_registry::worker(t.env.stores.clone(), t.app.config.clone(), mailer, outbound);
    let user = user_with_events(&t, vec![enabled(), deleted()]).await;
    gatehouse_tests::jobs::drain(&worker, 10).await;
    let mut got = Vec::new();
    for _ in 0..10 {
        let out = sqs.receive_message().queue_url(&url).max_number_of_messages(10).send().await.expect("receive");
        for m in out.messages() {
            got.push(serde_json::from_str::<serde_json::Value>(m.body().unwrap_or("{}")).expect("JSON"));
        }
        if got.len() >= 2 {
            break;
        }
    }
    got.sort_by_key(|e| e["detail"]["seq"].as_u64());
    let seen: Vec<(&str, &str, u64)> = got
        .iter()
        .map(|e| {
            (e["source"].as_str().unwrap(), e["detail-type"].as_str().unwrap(), e["detail"]["seq"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(seen, vec![("gatehouse", "user.enabled", 1), ("gatehouse", "user.deleted", 2)]);
    assert!(got.iter().all(|e| e["detail"]["user_id"] == user.id.as_str()));
}

/// `webhook:test` (#32): a `webhook.test` ping signed with every live secret (two during a
/// rotation's overlap, each verifying), its `webhook-id` its own id, and the answer reported;
/// a receiver answering 500, or none at all, is reported as not accepting it. An unknown
/// endpoint is an error, not a send.
#[tokio::test]
async fn a_test_ping_is_signed_with_every_live_secret_and_its_answer_reported() {
    use gatehouse::services::webhook_checks::ping;
    use gatehouse_tests::receiver::Reply;
    let t = TestApp::memory(&[]);
    let r = Receiver::start().await;
    let (e, first) = endpoint(&t, &r.url, Some("user.deleted")).await;
    let now = t.env.clock_now();
    let second = gatehouse::services::webhooks::rotate(
        t.env.stores.webhook_endpoints.as_ref(),
        &t.app.config.app_key,
        &e.id,
        chrono::Duration::hours(1),
        now,
    )
    .await
    .expect("rotated");
    let post = gatehouse_aws::outbound(&t.app.config, None).post;
    let pinged = ping(&t.app.config, &t.env.stores, post.as_ref(), &e.id).await.expect("sent");
    assert!(pinged.accepted(), "{pinged:?}");
    let got = r.received();
    assert_eq!(got.len(), 1);
    let sent: i64 = got[0].header("webhook-timestamp").and_then(|s| s.parse().ok()).expect("a timestamp");
    for secret in [&first, &second] {
        verify(secret, &got[0].headers, &got[0].body, sent, DEFAULT_TOLERANCE_SECS).expect("signed with each");
    }
    let body = got[0].json();
    assert_eq!(body["type"], "webhook.test");
    assert_eq!(body["data"], json!({ "endpoint_id": e.id.as_str() }));
    assert_eq!(got[0].header("webhook-id"), Some(pinged.id.as_str()));
    assert!(body.get("user_id").is_none() && body.get("seq").is_none(), "no user's event: {body}");
    // Refused, then unreachable: reported, never taken for acceptance.
    r.reply(&[Reply::Status(500)]);
    let refused = ping(&t.app.config, &t.env.stores, post.as_ref(), &e.id).await.expect("sent");
    assert_eq!((refused.answer.as_ref().ok().copied(), refused.accepted()), (Some(500), false));
    let gone = gatehouse::tables::webhook_endpoints::WebhookEndpointId::generate();
    assert!(ping(&t.app.config, &t.env.stores, post.as_ref(), &gone).await.is_err());
    // Nothing listens on port 1: refused at once.
    let (closed, _) = endpoint(&t, "http://127.0.0.1:1/hooks", None).await;
    let down = ping(&t.app.config, &t.env.stores, post.as_ref(), &closed.id).await.expect("tried");
    assert!(!down.accepted() && down.answer.is_err(), "{down:?}");
}

/// `webhook:status` (#32): an endpoint's deliveries that gave up are found among the failed
/// jobs (another endpoint's and other jobs are not), with the user and why.
#[tokio::test]
async fn the_status_lists_an_endpoints_deliveries_that_gave_up_and_no_one_elses() {
    use gatehouse::services::webhook_checks::status;
    use gatehouse::tables::failed_jobs::FailedJob;
    let t = TestApp::memory(&[]);
    let (mine, _) = endpoint(&t, "https://hooks.example.com/a", None).await;
    let (other, _) = endpoint(&t, "https://hooks.example.com/b", None).await;
    let user = gatehouse::tables::users::UserId::generate();
    let record = |uuid: &str, endpoint: &str, job: &str| FailedJob {
        uuid: uuid.into(),
        connection: "sqs".into(),
        queue: "jobs".into(),
        payload: json!({ "uuid": uuid, "job": job, "data": { "endpoint": endpoint, "user": user.as_str() } })
            .to_string(),
        exception: "we_x answered 503\nmore detail".into(),
        failed_at: t.env.clock_now(),
        expires_at: None,
    };
    let jobs = [
        record("f1", mine.id.as_str(), "DeliverEvents"),
        record("f2", other.id.as_str(), "DeliverEvents"),
        record("f3", mine.id.as_str(), "SendMail"),
    ];
    for j in &jobs {
        t.env.stores.failed_jobs.record(j).await.unwrap();
    }
    let st = status(&t.env.stores, &mine.id).await.expect("status");
    assert_eq!(st.live_secrets, 1);
    let found: Vec<(&str, &str, &str)> =
        st.gave_up.iter().map(|g| (g.uuid.as_str(), g.user.as_str(), g.why.as_str())).collect();
    assert_eq!(found, vec![("f1", user.as_str(), "we_x answered 503")]);
    assert_eq!(st.failed_read, 3);
    let none = status(&t.env.stores, &gatehouse::tables::webhook_endpoints::WebhookEndpointId::generate()).await;
    assert!(none.is_err());
}
