//! Identities at sign-in providers when the account ends: deleting an account unlinks every one
//! of its identities (and nobody else's), and the deletion's job unlinks them when the deletion
//! was cut short after its mark.

use crate::support::{mails, unique};
use gatehouse::services::account_deletion::FINISH_DELETION;
use gatehouse::tables::identities::{Identity, Linked};
use gatehouse::tables::jobs::JobPayload;
use gatehouse::tables::users::{CredentialChange, UserId};
use gatehouse_tests::http::{TestApp, TestCall};
use serde_json::json;

const PW: &str = "correct horse battery staple 42";

/// Registers `email` and confirms the password: the user's id and session cookie.
async fn registered(t: &TestApp, email: &str) -> (UserId, String) {
    let reg = t.register("Ann", email, PW).await;
    assert_eq!(reg.status, 201, "{}", reg.raw_body);
    let id = UserId::parse(reg.body["user"]["id"].as_str().expect("an id")).expect("a user id");
    let cookie = reg.session_cookie().expect("a session");
    let confirm = TestCall::new("POST", "/user/confirm-password").cookie(Some(&cookie)).json(json!({ "password": PW }));
    assert_eq!(t.login_fn(confirm).await.status, 204);
    (id, cookie)
}

/// Links `provider`'s `subject` to `user`.
async fn link(t: &TestApp, provider: &str, subject: &str, user: &UserId) -> Identity {
    let identity = Identity {
        provider: provider.into(),
        subject: subject.into(),
        user_id: user.clone(),
        email: Some("ann@example.com".into()),
        credentials_version: 0,
        linked_at: t.env.clock_now(),
        last_used_at: None,
        tokens: Some("sealed".into()),
    };
    assert_eq!(t.env.stores.identities.link(&identity).await.unwrap(), Linked::New);
    identity
}

/// Runs the queued jobs once they are due (the deletion's job waits a minute).
async fn run_due_jobs(t: &TestApp) {
    t.env.clock.advance(chrono::Duration::seconds(61));
    mails(t).await;
}

#[tokio::test]
async fn deleting_the_account_unlinks_its_identities_and_no_one_elses() {
    let t = TestApp::memory(&[]);
    let (ann, cookie) = registered(&t, &unique("ann")).await;
    let (bob, _) = registered(&t, &unique("bob")).await;
    link(&t, "google", "110169484474386276334", &ann).await;
    link(&t, "github", "583231", &ann).await;
    let bobs = link(&t, "google", "2", &bob).await;
    assert_eq!(t.env.stores.identities.for_user(&ann).await.unwrap().len(), 2);

    let deleted = t.login_fn(TestCall::new("DELETE", "/user").cookie(Some(&cookie))).await;
    assert_eq!(deleted.status, 204, "{}", deleted.raw_body);
    let store = &t.env.stores.identities;
    assert!(store.for_user(&ann).await.unwrap().is_empty(), "the deletion unlinked them");
    assert_eq!(store.find("google", "110169484474386276334").await.unwrap(), None);
    assert_eq!(store.find("github", "583231").await.unwrap(), None);

    // The deletion's job, a minute later, finds nothing left to do.
    run_due_jobs(&t).await;
    assert!(store.for_user(&ann).await.unwrap().is_empty());
    assert_eq!(store.for_user(&bob).await.unwrap(), vec![bobs], "another account's identity stays");
}

#[tokio::test]
async fn the_deletions_job_unlinks_the_identities_of_a_deletion_cut_short() {
    let t = TestApp::memory(&[]);
    let email = unique("ann");
    let (ann, _) = registered(&t, &email).await;
    link(&t, "google", "7", &ann).await;
    link(&t, "my-idp", "ann@idp", &ann).await;

    // A deletion that stopped right after its mark: its job queued, the user marked as being
    // deleted, nothing of it finished.
    let stores = &t.env.stores;
    let data = json!({ "user_id": ann.as_str(), "email": email });
    let job = JobPayload::notification(FINISH_DELETION, data);
    t.app.dispatcher().dispatch_after(job, std::time::Duration::from_secs(60)).await.unwrap();
    let user = stores.users.find(&ann).await.unwrap().expect("the user");
    let mark = CredentialChange { revoke: true, disable: Some(true), delete: true, ..CredentialChange::default() };
    let changed = stores.users.change_credentials(&ann, user.credentials_version, mark, t.env.clock_now()).await;
    assert!(changed.unwrap().is_some(), "marked");
    assert_eq!(stores.identities.for_user(&ann).await.unwrap().len(), 2, "still linked");

    run_due_jobs(&t).await;
    assert!(stores.identities.for_user(&ann).await.unwrap().is_empty(), "the job unlinked them");
    assert_eq!(stores.identities.find("google", "7").await.unwrap(), None);
    assert!(stores.users.find(&ann).await.unwrap().is_none(), "and finished the deletion");
}
