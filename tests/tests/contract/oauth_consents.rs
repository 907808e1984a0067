//! The contract of the `oauth_consents` table (consents, issued through the register), and of a
//! revocation ending the OAuth credentials, run against both backends by the macro in `main.rs`.

use crate::{issue_consent, issue_grant, now, put_session, refresh_family, session};
use chrono::Duration as Span;
use gatehouse::services::revocation;
use gatehouse::tables::credential_ref::CredentialRef;
use gatehouse::tables::credentials::Revocation;
use gatehouse::tables::oauth_clients::ClientId;
use gatehouse::tables::oauth_consents::Consent;
use gatehouse::tables::users::{CredentialChange, UserId};
use gatehouse_tests::TestEnv;

fn consent(env: &TestEnv, user: &UserId, client: &str, scopes: &[&str]) -> Consent {
    Consent {
        user_id: user.clone(),
        client_id: ClientId::parse(client).unwrap(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        created_at: now(env),
    }
}

pub async fn a_consent_is_issued_under_the_version_and_replaced_by_a_re_approval(env: TestEnv) {
    let store = &env.stores.oauth_consents;
    let uid = UserId::generate();
    let first = consent(&env, &uid, "web-app", &["openid"]);
    assert!(issue_consent(&env, 0, &first).await.unwrap());
    assert_eq!(store.find(&uid, &first.client_id).await.unwrap().as_ref(), Some(&first));
    // A re-approval replaces it, and its entry: no conflict, one entry.
    env.clock.advance(Span::seconds(5));
    let wider = consent(&env, &uid, "web-app", &["email", "openid", "profile"]);
    assert!(issue_consent(&env, 0, &wider).await.unwrap());
    assert_eq!(store.find(&uid, &first.client_id).await.unwrap().as_ref(), Some(&wider));
    let entries = env.stores.credentials.list(&uid).await.unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].credential, CredentialRef::consent(&first.client_id));
    assert_eq!(
        (entries[0].created_at, entries[0].expires_at),
        (wider.created_at, None),
        "the re-approval's, never expiring"
    );
    // Listed by client id; another user's are not.
    let other = consent(&env, &uid, "another.app", &["openid"]);
    assert!(issue_consent(&env, 0, &other).await.unwrap());
    let strangers = consent(&env, &UserId::generate(), "web-app", &["openid"]);
    assert!(issue_consent(&env, 0, &strangers).await.unwrap());
    assert_eq!(store.list(&uid).await.unwrap(), vec![other.clone(), wider.clone()]);
    // Once the version moved, no consent is given or replaced under the old one.
    let revoke = CredentialChange { revoke: true, ..CredentialChange::default() };
    assert_eq!(env.stores.users.change_credentials(&uid, 0, revoke, now(&env)).await.unwrap(), Some(1));
    let late = consent(&env, &uid, "web-app", &["openid", "tokens:write"]);
    assert!(!issue_consent(&env, 0, &late).await.unwrap());
    let late_new = consent(&env, &uid, "late.app", &["openid"]);
    assert!(!issue_consent(&env, 0, &late_new).await.unwrap());
    assert_eq!(store.list(&uid).await.unwrap(), vec![other.clone(), wider.clone()], "nothing written");
    // Deleted, it is gone; deleting again is harmless.
    store.delete(&uid, &wider.client_id).await.unwrap();
    store.delete(&uid, &wider.client_id).await.unwrap();
    assert_eq!(store.find(&uid, &wider.client_id).await.unwrap(), None);
    assert_eq!(store.list(&uid).await.unwrap(), vec![other]);
    assert_eq!(store.find(&strangers.user_id, &strangers.client_id).await.unwrap(), Some(strangers));
}

/// A reset (`Revocation::Everything`) ends the user's OAuth grants and consents with the rest,
/// and forgets their entries; another user's stay.
pub async fn revoking_everything_ends_the_users_grants_and_consents_and_no_one_elses(env: TestEnv) {
    let (ann, bob) = (UserId::generate(), UserId::generate());
    let web = ClientId::parse("web-app").unwrap();
    let (_, ann_grant) = refresh_family(&env, &ann, &web);
    let (_, ann_other_grant) = refresh_family(&env, &ann, &ClientId::parse("cli.app").unwrap());
    let (_, bob_grant) = refresh_family(&env, &bob, &web);
    for g in [&ann_grant, &ann_other_grant, &bob_grant] {
        assert!(issue_grant(&env, 0, g).await.unwrap());
    }
    let (ann_consent, bob_consent) =
        (consent(&env, &ann, "web-app", &["openid"]), consent(&env, &bob, "web-app", &["openid"]));
    assert!(issue_consent(&env, 0, &ann_consent).await.unwrap());
    assert!(issue_consent(&env, 0, &consent(&env, &ann, "cli.app", &["openid"])).await.unwrap());
    assert!(issue_consent(&env, 0, &bob_consent).await.unwrap());
    let (session_id, rec) = session(&env, Some(&ann), Span::minutes(120));
    put_session(&env, &rec).await;

    let ended = revocation::revoke(&env.stores, &ann, Revocation::Everything, "password_reset").await.unwrap();
    assert_eq!(ended, 5, "two grants, two consents, one session");
    for g in [&ann_grant, &ann_other_grant] {
        assert_eq!(env.stores.oauth_refresh_tokens.find(&g.family_id).await.unwrap(), None);
    }
    assert!(env.stores.oauth_consents.list(&ann).await.unwrap().is_empty());
    assert_eq!(env.stores.sessions.find(&session_id.key()).await.unwrap(), None);
    assert!(env.stores.credentials.list(&ann).await.unwrap().is_empty(), "every entry forgotten");
    // Bob's are untouched.
    assert_eq!(env.stores.oauth_refresh_tokens.find(&bob_grant.family_id).await.unwrap(), Some(bob_grant));
    assert_eq!(env.stores.oauth_consents.list(&bob).await.unwrap(), vec![bob_consent]);
    assert_eq!(env.stores.credentials.list(&bob).await.unwrap().len(), 2);
}
