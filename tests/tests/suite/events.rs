//! Events (#32, S3): a fact's event is promised before its write
//! ([`gatehouse::queue::Dispatcher::promise_event`]), carried by that write as a mark with the
//! user's next number, and recorded by its job (`RecordEvent`) once the worker finds the mark.
//! No service emits one yet (see docs/design/events.md): these tests make the writes themselves.

use crate::support::mails_with_notices;
use gatehouse::queue::Dispatcher;
use gatehouse::tables::events::{
    Client, EventBody, EventType, RegistrationMethod, Revoked, UserDeleted, UserRegistered,
};
use gatehouse::tables::users::{CredentialChange, User};
use gatehouse::values::email::Email;
use gatehouse::values::password::PasswordHash;
use gatehouse_tests::http::TestApp;

fn registered(user: &User) -> EventBody {
    EventBody::UserRegistered(UserRegistered {
        email: user.email.clone(),
        name: user.name.clone(),
        email_verified: false,
        method: RegistrationMethod::Password,
        provider: None,
        client: Some(Client { ip: Some("203.0.113.7".into()), user_agent: None }),
    })
}

fn deleted() -> EventBody {
    EventBody::UserDeleted(UserDeleted { revoked: Revoked::All })
}

fn new_user(t: &TestApp) -> User {
    let email = format!("events-{}@example.com", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    User::new("Ann", Email::parse(&email).unwrap(), PasswordHash::unusable(), t.env.clock_now())
}

async fn recorded(t: &TestApp, user: &User) -> Vec<(u64, EventType)> {
    let events = t.env.stores.events.after(&user.id, 0, 100).await.expect("events");
    events.into_iter().map(|e| (e.seq, e.body.kind())).collect()
}

/// A creation and a credentials change, each carrying its promised event: recorded after the
/// notice delay as 1 and 2, the marks cleared; a promise whose write never landed (a second
/// creation of the address, refused) records nothing.
async fn facts_written_with_their_marks_are_recorded_in_order(t: TestApp) {
    let dispatcher = Dispatcher::for_config(t.env.stores.clone(), &t.app.config);
    let user = new_user(&t);
    let mark = dispatcher.promise_event(&user.id, registered(&user)).await.expect("promised");
    let user = user.with_events(std::slice::from_ref(&mark));
    t.env.stores.users.create(&user).await.expect("created");
    // The same address again: refused, so its promised event finds no mark.
    let rival = User::new("Bob", user.email.clone(), PasswordHash::unusable(), t.env.clock_now());
    let lost = dispatcher.promise_event(&rival.id, registered(&rival)).await.expect("promised");
    let rival = rival.with_events(std::slice::from_ref(&lost));
    assert!(t.env.stores.users.create(&rival).await.is_err());
    assert_eq!(recorded(&t, &user).await, vec![], "nothing before the notice delay");
    mails_with_notices(&t).await;
    assert_eq!(recorded(&t, &user).await, vec![(1, EventType::UserRegistered)]);
    assert_eq!(recorded(&t, &rival).await, vec![], "a write that did not land announces nothing");
    assert!(t.env.stores.users.find(&user.id).await.unwrap().unwrap().pending_events.is_empty(), "cleared");
    // Deletion's first write, carrying its event.
    let event = dispatcher.promise_event(&user.id, deleted()).await.expect("promised");
    let change = CredentialChange {
        revoke: true,
        disable: Some(true),
        delete: true,
        events: std::slice::from_ref(&event),
        ..CredentialChange::default()
    };
    let now = t.env.clock_now();
    assert_eq!(t.env.stores.users.change_credentials(&user.id, 0, change, now).await.unwrap(), Some(1));
    mails_with_notices(&t).await;
    assert_eq!(recorded(&t, &user).await, vec![(1, EventType::UserRegistered), (2, EventType::UserDeleted)]);
    let first = &t.env.stores.events.after(&user.id, 0, 1).await.unwrap()[0];
    assert_eq!((&first.user_id, first.seq), (&user.id, 1));
}

#[tokio::test]
async fn facts_written_with_their_marks_are_recorded_as_events_in_order() {
    facts_written_with_their_marks_are_recorded_in_order(TestApp::memory(&[])).await;
}

#[tokio::test]
async fn facts_written_with_their_marks_are_recorded_as_events_in_order_on_the_emulator() {
    facts_written_with_their_marks_are_recorded_in_order(TestApp::aws(&[]).await).await;
}

/// A change whose write was refused (a stale credentials version) takes no number: its promised
/// job finds no mark and records nothing.
#[tokio::test]
async fn an_event_whose_write_was_refused_is_never_recorded() {
    let t = TestApp::memory(&[]);
    let dispatcher = Dispatcher::for_config(t.env.stores.clone(), &t.app.config);
    let user = new_user(&t);
    t.env.stores.users.create(&user).await.expect("created");
    let event = dispatcher.promise_event(&user.id, deleted()).await.expect("promised");
    let change =
        CredentialChange { revoke: true, delete: true, events: std::slice::from_ref(&event), ..Default::default() };
    assert_eq!(t.env.stores.users.change_credentials(&user.id, 7, change, t.env.clock_now()).await.unwrap(), None);
    mails_with_notices(&t).await;
    assert_eq!(recorded(&t, &user).await, vec![]);
    assert_eq!(t.env.stores.users.find(&user.id).await.unwrap().unwrap().event_seq, 0, "no number taken");
}

/// A deleted account's promised event is still recorded with its number: the deletion keeps
/// the marks aside (the user item the job looks for is gone).
#[tokio::test]
async fn an_event_promised_just_before_the_account_went_is_recorded() {
    let t = TestApp::memory(&[]);
    let dispatcher = Dispatcher::for_config(t.env.stores.clone(), &t.app.config);
    let user = new_user(&t);
    let mark = dispatcher.promise_event(&user.id, deleted()).await.expect("promised");
    let user = user.with_events(std::slice::from_ref(&mark));
    t.env.stores.users.create(&user).await.expect("created");
    gatehouse::services::account_deletion::finish(&t.env.stores, &t.app.config, &dispatcher, &user.id, &user.email)
        .await
        .expect("finished");
    assert_eq!(t.env.stores.users.find(&user.id).await.unwrap(), None);
    mails_with_notices(&t).await;
    assert_eq!(recorded(&t, &user).await, vec![(1, EventType::UserDeleted)]);
}

/// The deletion's write lands and its answer is lost: the SDK sends it again, which its own
/// version move and its own event mark refuse; read back, it is the change's own, and the
/// event's number was taken once.
#[tokio::test]
async fn a_write_carrying_an_event_whose_answer_was_lost_takes_its_number_once() {
    use gatehouse_tests::wire::{Fault, faulty_env};
    let (env, faults, _) = faulty_env(7).await;
    let t = TestApp::with(env, &[]);
    let dispatcher = Dispatcher::for_config(t.env.stores.clone(), &t.app.config);
    let user = new_user(&t);
    let mark = dispatcher.promise_event(&user.id, registered(&user)).await.expect("promised");
    let user = user.with_events(std::slice::from_ref(&mark));
    t.env.stores.users.create(&user).await.expect("created");
    let event = dispatcher.promise_event(&user.id, deleted()).await.expect("promised");
    let change = CredentialChange {
        revoke: true,
        delete: true,
        events: std::slice::from_ref(&event),
        ..CredentialChange::default()
    };
    faults.fail_next("dynamodb:UpdateItem", Fault::AfterWrite);
    let now = t.env.clock_now();
    assert_eq!(t.env.stores.users.change_credentials(&user.id, 0, change, now).await.unwrap(), Some(1), "its own");
    assert_eq!(faults.injected().values().sum::<usize>(), 1, "the fault was injected");
    let stored = t.env.stores.users.find(&user.id).await.unwrap().unwrap();
    assert_eq!((stored.event_seq, stored.pending_events.get(event.as_str()).copied()), (2, Some(2)));
}
