//! The contract every store and the queue must keep, run against both implementations: in
//! memory and DynamoDB/SQS on the emulator. One function per behaviour in `suite`; the macro at
//! the bottom runs each against both backends.
//!
//! The shared helpers are here; the behaviours, one `pub async fn` each taking a [`TestEnv`], are
//! in one file per table (`users.rs`, `sessions.rs`, …), and `suite` gathers them for the macro.

use chrono::Duration as Span;
use gatehouse::tables::credential_ref::CredentialRef;
use gatehouse::tables::credentials::{CredentialEntry, NewCredential};
use gatehouse::tables::cross_app_sessions::Handoff;
use gatehouse::tables::oauth_clients::ClientId;
use gatehouse::tables::oauth_consents::Consent;
use gatehouse::tables::oauth_refresh_tokens::{RefreshFamily, RefreshToken, new_family_id};
use gatehouse::tables::personal_access_tokens::PersonalAccessToken;
use gatehouse::tables::sessions::{SessionId, SessionRecord};
use gatehouse::tables::users::{User, UserId};
use gatehouse::values::password::PasswordHash;
use gatehouse::{Clock, Email, StoreError, Timestamp};
use gatehouse_tests::TestEnv;
use serde_json::json;

mod cache;
mod cache_locks;
mod credentials;
mod cross_app_sessions;
mod events;
mod failed_jobs;
mod identities;
mod job_batches;
mod job_runs;
mod oauth_access_tokens;
mod oauth_auth_codes;
mod oauth_clients;
mod oauth_consents;
mod oauth_refresh_tokens;
mod oauth_signing_keys;
mod password_reset_tokens;
mod personal_access_tokens;
mod queue;
mod sessions;
mod users;
mod webhook_endpoints;

/// Every behaviour, by name, for the macro.
mod suite {
    pub use super::{
        cache::*, cache_locks::*, credentials::*, cross_app_sessions::*, events::*, failed_jobs::*, identities::*,
        job_batches::*, job_runs::*, oauth_access_tokens::*, oauth_auth_codes::*, oauth_clients::*, oauth_consents::*,
        oauth_refresh_tokens::*, oauth_signing_keys::*, password_reset_tokens::*, personal_access_tokens::*, queue::*,
        sessions::*, users::*, webhook_endpoints::*,
    };
}

fn now(env: &TestEnv) -> Timestamp {
    env.clock.now()
}

fn user(env: &TestEnv, email: &str) -> User {
    let hash = PasswordHash::from_stored("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into());
    User::new("Ann", Email::parse(email).unwrap(), hash, now(env))
}

/// A user with this id (created if it does not exist yet), so credentials can be issued to it.
async fn ensure_user(env: &TestEnv, id: &UserId) {
    if env.stores.users.find(id).await.unwrap().is_none() {
        let mut u = user(env, &format!("u{}@example.com", uuid::Uuid::new_v4().simple()));
        u.id = id.clone();
        env.stores.users.create(&u).await.unwrap();
    }
}

fn entry(user: &UserId, credential: CredentialRef, parent: Option<CredentialRef>) -> CredentialEntry {
    CredentialEntry {
        user_id: user.clone(),
        credential,
        parent,
        cross_app_id: None,
        created_at: chrono::Utc::now(),
        expires_at: None,
    }
}

/// Issues a session through the register (the only way one is stored).
async fn put_session(env: &TestEnv, rec: &SessionRecord) {
    let uid = rec.user_id.clone().expect("test sessions have a user");
    ensure_user(env, &uid).await;
    let e = entry(&uid, CredentialRef::session(&rec.key), None);
    assert!(env.stores.credentials.issue(0, &e, NewCredential::Session(rec)).await.unwrap());
}

async fn put_token(env: &TestEnv, t: &PersonalAccessToken) -> Result<bool, StoreError> {
    let uid = UserId::from_stored(t.tokenable.id.clone());
    ensure_user(env, &uid).await;
    env.stores.credentials.issue(0, &entry(&uid, CredentialRef::token(&t.id), None), NewCredential::Token(t)).await
}

async fn put_handoff(env: &TestEnv, h: &Handoff) {
    ensure_user(env, &h.user_id).await;
    let e = entry(&h.user_id, CredentialRef::handoff(&h.token_hash), None);
    assert!(env.stores.credentials.issue(0, &e, NewCredential::Handoff(h)).await.unwrap());
}

/// Issues an OAuth grant (its refresh-token family) through the register under `version`, its
/// entry expiring with the family, as the OAuth service does.
async fn issue_grant(env: &TestEnv, version: u64, fam: &RefreshFamily) -> Result<bool, StoreError> {
    ensure_user(env, &fam.user_id).await;
    let e = CredentialEntry {
        created_at: fam.created_at,
        expires_at: Some(fam.expires_at),
        ..entry(&fam.user_id, CredentialRef::oauth_grant(&fam.family_id), None)
    };
    env.stores.credentials.issue(version, &e, NewCredential::OAuthGrant(fam)).await
}

/// Issues a consent through the register under `version` (its entry never expires).
async fn issue_consent(env: &TestEnv, version: u64, c: &Consent) -> Result<bool, StoreError> {
    ensure_user(env, &c.user_id).await;
    let e =
        CredentialEntry { created_at: c.created_at, ..entry(&c.user_id, CredentialRef::consent(&c.client_id), None) };
    env.stores.credentials.issue(version, &e, NewCredential::Consent(c)).await
}

/// A new refresh-token family of `user` for `client`, at generation 0 and living 30 days, with
/// its first token.
fn refresh_family(env: &TestEnv, user: &UserId, client: &ClientId) -> (RefreshToken, RefreshFamily) {
    let family_id = new_family_id();
    let token = RefreshToken::generate(&family_id, 0);
    let fam = RefreshFamily {
        family_id,
        client_id: client.clone(),
        user_id: user.clone(),
        scopes: vec!["openid".into(), "offline_access".into()],
        generation: 0,
        current_hash: token.hash(),
        spent_hashes: vec![],
        session_id: Some("a-session-key".into()),
        credentials_version: 0,
        auth_time: now(env) - Span::minutes(5),
        amr: vec!["pwd".into()],
        created_at: now(env),
        expires_at: now(env) + Span::days(30),
    };
    (token, fam)
}

/// A session record of `user` (none for a guest) idle-expiring after `idle`.
fn session(env: &TestEnv, user: Option<&UserId>, idle: Span) -> (SessionId, SessionRecord) {
    let id = SessionId::generate();
    let rec = SessionRecord {
        key: id.key(),
        user_id: user.cloned(),
        ip_address: Some("203.0.113.9".into()),
        user_agent: Some("curl/8".into()),
        payload: json!({"_token": "csrf"}),
        last_activity: now(env),
        created_at: now(env),
        expires_at: now(env) + idle,
        app: None,
        credentials_version: 0,
        parent: None,
        password_confirmed_at: None,
        email_verified: Some(false),
        abilities: None,
        not_after: None,
    };
    (id, rec)
}

/// Runs each named suite function against the in-memory stores and against DynamoDB/SQS on the
/// emulator.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::suite::$name(super::TestEnv::memory()).await
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::suite::$name(super::TestEnv::aws().await).await
                }
            )*
        }
    };
}

contract!(
    an_event_holds_its_number_alone_and_is_listed_in_order_while_live,
    a_users_events_are_redacted_in_place_and_no_one_elses,
    passkeys_are_added_within_the_limit_used_from_the_state_read_and_removed,
    a_credential_change_clears_exactly_the_passkeys_it_read_or_nothing,
    a_credential_change_can_clear_the_second_factor,
    users_are_found_by_id_and_by_email_in_any_case,
    moves_of_the_credentials_version_are_recorded_with_who_made_them,
    a_notice_mark_is_written_only_by_the_write_that_makes_its_change,
    event_marks_take_the_user_s_next_numbers_in_the_write_that_makes_their_fact,
    users_with_the_same_email_in_another_case_conflict,
    twenty_concurrent_registrations_of_one_email_let_exactly_one_succeed,
    users_password_and_verification_updates_persist,
    the_display_name_changes_and_nothing_else,
    deleting_a_user_frees_its_email,
    an_email_change_moves_both_reservations_at_once_and_verifies_the_new_address,
    changes_and_registrations_racing_for_one_address_leave_exactly_one_owner,
    a_credential_change_bound_to_an_address_fails_once_the_address_moved,
    disabling_moves_the_version_on_and_enabling_keeps_it,
    second_factor_writes_hold_only_under_their_conditions,
    concurrent_uses_of_one_code_or_one_recovery_code_let_exactly_one_win,
    marking_a_session_verified_persists_and_skips_expired_ones,
    marking_a_token_verified_persists_and_skips_expired_ones,
    sessions_are_found_by_the_hash_of_their_id_and_deleted,
    an_expired_session_is_invisible_though_still_stored,
    touching_a_session_writes_only_when_its_activity_is_stale,
    deleting_a_users_other_sessions_keeps_exactly_the_current_one,
    a_reset_token_is_throttled_then_replaced,
    a_retried_write_of_the_same_token_is_not_taken_for_a_throttled_second_request,
    a_reset_token_is_consumed_once_and_only_by_its_own_hash,
    an_expired_reset_token_is_neither_found_nor_consumed,
    ten_concurrent_consumptions_of_one_reset_token_succeed_once,
    a_spent_token_given_back_works_once_more_and_never_throttles_a_new_link,
    a_token_is_found_by_id_and_matches_only_its_secret,
    an_expired_token_is_invisible_though_still_stored,
    last_used_is_written_at_most_once_per_interval,
    only_the_owner_deletes_a_token,
    tokens_are_listed_newest_first_a_page_at_a_time,
    cache_puts_gets_many_and_forgets,
    an_expired_cache_item_is_invisible_to_every_read_and_to_add,
    cache_counters_increment_and_decrement_atomically,
    incrementing_a_non_integer_is_a_conflict,
    counters_let_their_max_of_eighty_concurrent_hits_through_all_or_none,
    remember_computes_once,
    a_value_taken_once_is_kept_only_for_the_repeats_of_its_own_taker,
    twenty_concurrent_takes_with_different_marks_let_exactly_one_win,
    twenty_concurrent_acquisitions_of_one_lock_give_exactly_one_owner,
    a_lock_released_by_a_non_owner_stays_held,
    an_expired_lock_can_be_taken_but_not_refreshed,
    a_blocking_acquire_waits_for_the_release,
    a_job_counted_twice_against_a_batch_decrements_pending_once,
    a_failed_job_is_reopened_exactly_once_and_then_counts_again,
    batches_are_listed_newest_first_a_page_at_a_time,
    a_batch_records_failures_and_finishes_exactly_once,
    a_batch_with_pending_jobs_does_not_finish_and_cancels_once,
    failed_jobs_list_newest_first_across_many_small_pages,
    failed_jobs_are_found_forgotten_and_flushed,
    failed_jobs_past_retention_are_invisible,
    a_bad_cursor_is_rejected_not_a_crash,
    two_racing_exchanges_of_one_handoff_token_let_one_through,
    a_handoff_for_another_app_or_expired_is_refused,
    cross_app_sessions_are_audited_and_revoked_only_by_their_user,
    a_deleted_users_audit_records_keep_only_a_pseudonym,
    issuing_is_conditional_on_the_credentials_version,
    nothing_is_issued_to_a_disabled_user_under_any_version,
    twenty_concurrent_issues_racing_a_version_change_never_land_after_it,
    a_device_is_listed_by_its_sessions_issue_capped_at_twenty_and_forgotten_when_the_version_moves,
    an_issues_events_are_numbered_by_its_own_write_and_only_once,
    a_trees_announced_end_numbers_its_event_once,
    a_job_run_is_claimed_by_exactly_one_of_racing_workers,
    a_completed_run_stays_completed_and_a_released_or_lapsed_one_is_claimable,
    the_queue_sends_receives_and_deletes,
    a_released_message_comes_back_with_its_receive_count,
    a_delayed_message_stays_hidden_until_due,
    the_queue_rejects_oversized_bodies_and_over_long_delays,
    oauth_clients_are_created_once_found_listed_rotated_and_revoked,
    an_auth_code_is_spent_once_then_recognised_as_replayed,
    an_expired_auth_code_is_unknown_spent_or_not,
    eight_concurrent_spends_of_one_auth_code_let_exactly_one_through,
    access_tokens_are_put_once_found_and_deleted,
    an_expired_access_token_is_invisible_though_still_stored,
    a_grant_is_issued_only_under_the_credentials_version_and_only_once,
    a_refresh_token_rotates_once_and_its_reuse_is_recognised,
    eight_concurrent_rotations_of_one_refresh_token_let_exactly_one_through,
    an_expired_family_is_invisible_and_rotates_nothing,
    a_family_remembers_only_its_last_spent_tokens,
    a_consent_is_issued_under_the_version_and_replaced_by_a_re_approval,
    revoking_everything_ends_the_users_grants_and_consents_and_no_one_elses,
    a_rotation_adds_a_key_and_retires_the_others_in_one_write,
    identities_are_linked_once_found_listed_by_user_and_unlinked,
    eight_racing_links_of_one_subject_by_eight_users_let_exactly_one_have_it,
    only_its_user_unlinks_or_touches_an_identity,
    a_malformed_provider_or_subject_is_rejected_by_every_call,
    an_announced_link_or_removal_numbers_its_event_only_when_it_happens,
    webhook_endpoints_are_created_once_listed_disabled_and_removed_with_sealed_secrets,
    a_rotation_keeps_the_old_secret_until_its_overlap_ends,
    eight_racing_rotations_of_one_endpoint_let_exactly_one_land,
);
