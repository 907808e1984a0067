//! Helpers that tests of more than one area use.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Duration as Span;
use gatehouse::Email;
use gatehouse::mail::{LogMailer, Mail};
use gatehouse::stores::Stores;
use gatehouse::tables::password_reset_tokens::{PlainResetToken, ResetRecord};
use gatehouse_tests::TestEnv;
use gatehouse_tests::http::{TestApp, TestCall, TestReply};
use gatehouse_tests::jobs::drain;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// An address no other test uses: `name-<8 hex>@example.com`.
pub fn unique(name: &str) -> String {
    format!("{name}-{}@example.com", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// Puts a reset token for `email` straight into the store, as the link's job does (without
/// waiting out the queue's delays), asserting that no token of `email` younger than
/// `throttled_for` held it back: what the mailed link carries.
pub async fn put_reset_token(stores: &Stores, email: &str, throttled_for: Span) -> PlainResetToken {
    let token = PlainResetToken::generate();
    let now = stores.clock.now();
    let record = ResetRecord {
        email: Email::parse(email).expect("an address"),
        token_hash: token.hash(),
        created_at: now,
        expires_at: now + Span::minutes(60),
    };
    assert!(stores.password_reset_tokens.put_unless_throttled(&record, now - throttled_for).await.expect("put"));
    token
}

/// Runs the queued jobs and returns every mail they sent.
pub async fn mails(t: &TestApp) -> Vec<Mail> {
    let mailer = LogMailer::quiet();
    drain(&t.worker(Arc::new(mailer.clone())), 10).await;
    mailer.sent()
}

/// [`mails`], the security notices among them: they are promised before their change and run
/// once it is surely written, [`gatehouse::config::NOTICE_DELAY`] later, so the clock moves on
/// by that first.
pub async fn mails_with_notices(t: &TestApp) -> Vec<Mail> {
    t.env.clock.advance(Span::from_std(gatehouse::config::NOTICE_DELAY).unwrap());
    mails(t).await
}

/// The item of the `logical` table whose key attribute `key` is `value`, as DynamoDB holds it (no
/// store's read filter in between). On the emulator only.
pub async fn raw_item(env: &TestEnv, logical: &str, key: &str, value: &str) -> Option<HashMap<String, AttributeValue>> {
    let aws = env.aws.as_ref().expect("on the emulator");
    let table = aws.names.table(logical);
    let got = aws.dynamo.get_item().table_name(table).key(key, AttributeValue::S(value.to_owned())).send().await;
    got.unwrap().item
}

/// `POST /cross-app/handoff` to `target_app` by the session `cookie`.
pub async fn handoff(t: &TestApp, cookie: &str, target_app: &str) -> TestReply {
    t.tokens_fn(
        TestCall::new("POST", "/cross-app/handoff").cookie(Some(cookie)).json(json!({ "target_app": target_app })),
    )
    .await
}

/// On the emulator, billing another app of the deployment: Ann (`ann@example.com`) signed up and
/// her session's [`handoff`] to billing, not exchanged yet. The app, her session's cookie and the
/// handoff's answer.
pub async fn ann_handing_off_to_billing() -> (TestApp, String, TestReply) {
    let t = TestApp::aws(&[("GATEHOUSE_APPS", "billing")]).await;
    let cookie = t.signed_up("ann@example.com").await;
    let h = handoff(&t, &cookie, "billing").await;
    (t, cookie, h)
}

/// The items of every table that name `id`, but for the user's redacted events (kept for their
/// delivery: the id, what happened and when, nothing personal); on the emulator. Panics on an
/// event naming the user that is not redacted.
pub async fn items_naming(t: &TestApp, id: &str) -> Vec<String> {
    let events_table = format!("{}: ", t.env.aws.as_ref().expect("on the emulator").names.table("events"));
    let (events, left): (Vec<String>, Vec<String>) = gatehouse_tests::scan_items(&t.env, None)
        .await
        .into_iter()
        .filter(|i| i.contains(id))
        .partition(|i| i.starts_with(&events_table));
    for e in &events {
        assert!(e.contains(r#"\"redacted\":true"#), "an event of the deleted user, not redacted: {e}");
    }
    left
}
