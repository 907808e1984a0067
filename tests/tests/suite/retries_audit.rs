//! The cross-app audit records of a deleted account keep only a pseudonym even when the owner
//! index (`cross_app_sessions.by_user`, eventually consistent) has not caught up with a record
//! written a moment before the deletion: the deletion finds them through the credentials
//! register, read consistently. The lag is the fault proxy's [`Fault::LaggingIndex`]: every
//! index query during the deletion answers as an index that has not seen the record yet.

use crate::support::handoff;
use gatehouse_tests::http::{TestApp, TestCall};
use gatehouse_tests::wire::{Fault, faulty_env};
use serde_json::json;

const PW: &str = "correct horse battery staple 42";

#[tokio::test]
async fn a_deleted_accounts_fresh_audit_record_is_pseudonymised_though_the_owner_index_lags() {
    let (env, faults, _) = faulty_env(1).await;
    let t = TestApp::with(env, &[("GATEHOUSE_APPS", "billing")]);
    let email = format!("lag-{}@example.com", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let reg = t.register("Ann Lag", &email, PW).await;
    assert_eq!(reg.status, 201, "{}", reg.raw_body);
    let id = reg.body["user"]["id"].as_str().expect("the user's id").to_owned();
    let cookie = reg.session_cookie().expect("registration signs in");
    let confirm = TestCall::new("POST", "/user/confirm-password").cookie(Some(&cookie)).json(json!({"password": PW}));
    assert_eq!(t.login_fn(confirm).await.status, 204);

    // A handoff to billing, exchanged there from a known address and browser.
    let h = handoff(&t, &cookie, "billing").await;
    assert_eq!(h.status, 201, "{}", h.raw_body);
    let billing = t.sibling(&[("GATEHOUSE_APP_NAME", "billing")]);
    let (ip, agent) = ("198.51.100.77", "billing-app/3.1 (lagging index)");
    let exchange = TestCall::new("POST", "/cross-app/exchange")
        .from_ip(ip)
        .header("user-agent", agent)
        .json(json!({"handoff_token": h.body["handoff_token"]}));
    let exchanged = TestApp::tokens_at(&billing, exchange).await;
    assert_eq!(exchanged.status, 200, "{}", exchanged.raw_body);
    let audit_id = exchanged.body["cross_app_session_id"].as_str().expect("the audit record's id").to_owned();

    // The account is deleted a moment later, while no index has caught up with anything.
    for _ in 0..64 {
        faults.fail_next("dynamodb:Query", Fault::LaggingIndex);
    }
    let deleted = t.login_fn(TestCall::new("DELETE", "/user").cookie(Some(&cookie))).await;
    assert_eq!(deleted.status, 204, "{}", deleted.raw_body);
    let lagged = faults.injected().get(&("dynamodb:Query".to_owned(), Fault::LaggingIndex)).copied().unwrap_or(0);
    assert!(lagged >= 1, "the deletion read an index, which lagged: {:?}", faults.injected());

    // The record itself, read from the emulator directly (not through the proxy).
    let records = gatehouse_tests::scan_items(&t.env, Some("cross_app_sessions")).await;
    let record = records.iter().find(|i| i.contains(&audit_id)).expect("the audit record stays");
    assert!(!record.contains(&id), "the record still names the user: {record}");
    assert!(record.contains("deleted#"), "the record carries the pseudonym: {record}");
    assert!(!record.contains(ip) && !record.contains("ip_address"), "no IP address: {record}");
    assert!(!record.contains(agent) && !record.contains("user_agent"), "no user agent: {record}");
    // Nor does anything else name the user: the register's audit entries went with the names.
    let left: Vec<String> =
        gatehouse_tests::scan_items(&t.env, None).await.into_iter().filter(|i| i.contains(&id)).collect();
    assert!(left.is_empty(), "items still naming the user: {left:#?}");
}
