//! Deleting an account (Jetstream's `DeleteUser`), everything of it, resumably:
//! 1. a job that finishes the deletion ([`FINISH_DELETION`]) is queued first, to run a minute
//!    later: should anything below be cut short (a failed store, the invocation's deadline), it
//!    finishes what was begun, with the queue's retries and dead-letter queue behind it;
//! 2. one write marks the user as being deleted (`deleted_at`, `disabled_at`) and moves its
//!    credentials version on: from this write on, no check honours any credential of the user
//!    (every check reads the owner with the credential, in the same call), nothing can be issued
//!    (every issue checks the user item) and no sign-in succeeds, revoked or not yet;
//! 3. [`finish`]: every registered credential (sessions, tokens, handoffs; cross-app sessions
//!    end), the identities at sign-in providers (unlinked, so none names the user; read through
//!    an index, so one linked a moment before may be missed, and the job, a minute later, unlinks
//!    it), then the user item and its `email#` reservation in one transaction (the address can
//!    register again), the reset token of the address, the throttle counts keyed by the user,
//!    and the cross-app audit records keep only a pseudonym (a keyed tag of the id; no IP address
//!    or user agent). Whoever removes the user item mails the address that the account is gone.
//!
//! A retry of the request (same session, which no check honours, so the request is refused 401) is
//! not needed: the job finishes. Running [`finish`] twice does nothing twice.

use crate::config::Config;
use crate::mail::{Mail, Mailer};
use crate::queue::{Dispatcher, JobContext, JobError, JobHandler};
use crate::services::auth::{Auth, AuthError};
use crate::services::password_broker::{email_of, mail_job};
use crate::services::revocation::revoke;
use crate::stores::Stores;
use crate::tables::credentials::{Revocation, reasons};
use crate::tables::events::{EventBody, Revoked, UserDeleted};
use crate::tables::jobs::JobPayload;
use crate::tables::sessions::SessionRecord;
use crate::tables::users::{CredentialChange, User, UserId};
use crate::throttle::RateLimiter;
use crate::values::email::Email;
use crate::values::error::StoreError;
use async_trait::async_trait;
use std::sync::Arc;

pub const SEND_ACCOUNT_DELETED: &str = "SendAccountDeletedNotification";
/// The job that finishes a deletion begun by [`delete_account`].
pub const FINISH_DELETION: &str = "FinishAccountDeletion";

/// How long after the request the net runs: enough for the request to finish on its own.
const NET_DELAY: std::time::Duration = std::time::Duration::from_secs(60);

/// Deletes `user`, signed in with `current`, whose password must have been confirmed within the
/// window (`PasswordConfirmationRequired` otherwise). `false` when the user was already gone.
pub async fn delete_account(
    auth: &Auth,
    dispatcher: &Dispatcher,
    user: &User,
    current: &SessionRecord,
) -> Result<bool, AuthError> {
    auth.require_recent_confirmation(current)?;
    let stores = auth.stores();
    let data = serde_json::json!({ "user_id": user.id.as_str(), "email": user.email.as_str() });
    // The net first: nothing below happens unless something will finish it.
    dispatcher
        .dispatch_after(JobPayload::notification(FINISH_DELETION, data), NET_DELAY)
        .await
        .map_err(|e| StoreError::Unavailable(format!("the deletion's job could not be queued: {e}")))?;
    // A note for this session's retry, should the answer be lost past the mark below (which
    // ends the session): `resume` finishes the deletion for it instead of answering 401.
    let until = Some(auth.now() + DELETION_RETRY_WINDOW);
    // (The user's keyed tag, not its id: nothing left behind names a deleted user.)
    let tag = user_tag(auth.config(), &user.id);
    stores.cache.put(&retry_key(&current.key), &serde_json::json!(tag), until).await?;
    // `user.deleted`, carried by the write that marks the user: announced even when the request
    // is cut after it (the job finds the mark, or the mark kept aside by `finish`).
    let body = EventBody::UserDeleted(UserDeleted { revoked: Revoked::All });
    let event = crate::services::events::promise(dispatcher, &user.id, body).await?;
    let change = CredentialChange {
        revoke: true,
        disable: Some(true),
        delete: true,
        events: std::slice::from_ref(&event),
        by: Some(current.key.as_str()),
        ..CredentialChange::default()
    };
    if stores.users.change_credentials(&user.id, user.credentials_version, change, auth.now()).await?.is_none() {
        // The version moved (a reset, a change) or the user is gone: nothing was marked, and the
        // job finds the user not being deleted and does nothing.
        return match stores.users.find(&user.id).await? {
            None => Ok(false),
            Some(_) => Err(AuthError::CredentialsChanged),
        };
    }
    tracing::info!(event = "account_deletion_begun", user_id = %user.id);
    finish(stores, auth.config(), dispatcher, &user.id, &user.email).await?;
    Ok(true)
}

/// How long a deleting session's retry is recognised ([`resume`]).
pub const DELETION_RETRY_WINDOW: chrono::Duration = chrono::Duration::minutes(10);

/// The cache key of the note a deletion leaves for the retry of the session that asked.
fn retry_key(session: &crate::tables::sessions::SessionKey) -> String {
    format!("deletion-retry:{}", session.as_str())
}

/// `DELETE /user` asked again by the session that asked first, after an answer that was lost:
/// that session is refused now (its user is marked as being deleted, or gone), so the retry
/// would be told 401 by its own success. The note the deletion left under the session's key
/// (for [`DELETION_RETRY_WINDOW`]) names the user the cookie names: the deletion is finished
/// again (idempotent; its job would) and `true`, the first attempt's answer. Only the holder of
/// that very cookie can present its key. `false` for anything else.
pub async fn resume(
    auth: &Auth,
    dispatcher: &Dispatcher,
    session: &crate::tables::sessions::SessionId,
) -> Result<bool, StoreError> {
    let Some(owner) = session.owner() else { return Ok(false) };
    let stores = auth.stores();
    let noted = stores.cache.get(&retry_key(&session.key())).await?;
    if noted.as_ref().and_then(|v| v.as_str()) != Some(user_tag(auth.config(), &owner).as_str()) {
        return Ok(false);
    }
    // The address the deletion began at: the user's, while its item is still there; once it is
    // gone, the reservation and the reset token went with it (`finish` removes them first).
    if let Some(user) = stores.users.find(&owner).await? {
        if user.deleted_at.is_none() {
            return Ok(false);
        }
        finish(stores, auth.config(), dispatcher, &owner, &user.email).await?;
    }
    tracing::info!(event = "account_deletion_resumed", user_id = %owner);
    Ok(true)
}

/// The keyed tag of `id` that throttle keys and a deleted user's audit records carry
/// ([`Auth::user_tag`]).
fn user_tag(config: &Config, id: &UserId) -> String {
    config.app_key.tag("user-tag", id.as_str())
}

/// Everything of the user `id` (at `email` when the deletion began) but the mark: credentials,
/// the user item and its reservation, the reset token, the throttle counts, the audit records'
/// names. Safe to run again, and again after it finished; it removes nothing of another account
/// that has the address since.
pub async fn finish(
    stores: &Stores,
    config: &Config,
    dispatcher: &Dispatcher,
    id: &UserId,
    email: &Email,
) -> Result<(), StoreError> {
    let ended = revoke(stores, id, Revocation::Everything, reasons::ACCOUNT_DELETED).await?;
    let identities = unlink_identities(stores, id).await?;
    // Notices promised by changes made just before (an address moved, a second factor turned
    // off) look for their marks on the user item, which goes now: kept aside for their jobs, so
    // a deletion cannot silence what came before it.
    if let Some(user) = stores.users.find(id).await? {
        let until = Some(stores.clock.now() + crate::tables::users::KEPT_NOTICE_LIFETIME);
        for mark in user.pending_notices.iter().filter_map(|m| crate::tables::users::NoticeMark::parse(m)) {
            stores.cache.put(&mark.kept_key(), &serde_json::json!(true), until).await?;
        }
        // Events promised likewise (the deletion's own among them) keep their numbers.
        for (mark, seq) in &user.pending_events {
            if let Some(mark) = crate::tables::users::EventMark::parse(mark) {
                stores.cache.put(&mark.kept_key(), &serde_json::json!(seq), until).await?;
            }
        }
    }
    let removed = stores.users.delete(id).await?;
    // The user's events stay until delivered (and their retention): the id, what happened and
    // when, without an address, a name or a client (an event recorded after this read redacts
    // itself, `services::events`).
    let redacted = stores.events.redact(id).await?;
    // A newcomer may have registered the address since: its reset token is its own.
    if stores.users.find_by_email(email).await?.is_none() {
        stores.password_reset_tokens.delete(email).await?;
    }
    let tag = user_tag(config, id);
    let [minute, day] = crate::services::email_verification::resend_limits(config, &tag);
    let [change_minute, change_day] = crate::services::email_change::request_limits(config, &tag);
    // The per-client minute counts of code attempts expire within a minute; the hour count goes.
    let [_, codes_hour] = crate::services::two_factor::attempt_limits(&tag, "");
    let limiter = RateLimiter::new(stores.cache.clone(), stores.clock.clone());
    for (key, limit) in
        [crate::services::auth::limits::password_checks_limit(&tag), minute, day, change_minute, change_day, codes_hour]
    {
        limiter.clear(&key, limit).await?;
    }
    let records = stores.cross_app_sessions.pseudonymize(id, &format!("deleted#{tag}")).await?;
    tracing::info!(event = "account_deleted", user_tag = %tag, credentials = ended, identities, audit_records = records, events = redacted, user_item = removed);
    if removed {
        // Told once, whichever queues it: this run, or the deletion's job finding the user gone
        // (one job id per user, and a job id runs once).
        dispatcher.notify(deleted_notice(config, id, email)).await;
    }
    Ok(())
}

/// Unlinks every identity of the user `id` the index lists, and says how many went (one unlinked
/// meanwhile, by a run before this one, is simply gone).
async fn unlink_identities(stores: &Stores, id: &UserId) -> Result<usize, StoreError> {
    let mut unlinked = 0;
    for identity in stores.identities.for_user(id).await? {
        if stores.identities.unlink(&identity.provider, &identity.subject, id).await? {
            unlinked += 1;
        }
    }
    Ok(unlinked)
}

/// The "account deleted" mail of the user `id`, with one job id per user (its keyed tag: nothing
/// left behind names a deleted user): queued by the deletion that removed the user item and
/// again by the deletion's job, it is sent once.
fn deleted_notice(config: &Config, id: &UserId, email: &Email) -> JobPayload {
    let mut job = mail_job(SEND_ACCOUNT_DELETED, email);
    job.uuid = format!("account-deleted-{}", user_tag(config, id));
    job
}

/// The net behind [`delete_account`]: finishes a deletion whose user is marked as being deleted
/// (or already gone); does nothing for a user the deletion never marked.
pub struct FinishDeletion {
    pub config: Arc<Config>,
}

#[async_trait]
impl JobHandler for FinishDeletion {
    async fn handle(&self, job: &JobPayload, ctx: &JobContext) -> Result<(), JobError> {
        let id = job.data.get("user_id").and_then(|v| v.as_str()).and_then(UserId::parse);
        let id = id.ok_or_else(|| JobError::permanent("the job names no user"))?;
        let email = email_of(job)?;
        match ctx.stores.users.find(&id).await? {
            Some(u) if u.deleted_at.is_none() => {
                tracing::info!(event = "account_deletion_not_begun", user_id = %id);
                Ok(())
            }
            Some(_) => Ok(finish(&ctx.stores, &self.config, &ctx.dispatcher, &id, &email).await?),
            // Gone: the deletion removed it, and the request may have failed before its notice
            // was queued (a queued one and this one are one job: sent once).
            None => {
                finish(&ctx.stores, &self.config, &ctx.dispatcher, &id, &email).await?;
                ctx.dispatcher.dispatch(deleted_notice(&self.config, &id, &email)).await.map_err(StoreError::from)?;
                Ok(())
            }
        }
    }
}

/// Tells the address its account was deleted (no text the account holder chose).
pub struct SendAccountDeleted {
    pub mailer: Arc<dyn Mailer>,
}

#[async_trait]
impl JobHandler for SendAccountDeleted {
    async fn handle(&self, job: &JobPayload, _ctx: &JobContext) -> Result<(), JobError> {
        let text = "Hello,\n\nYour account and everything in it were deleted at your request. If you did not ask for this, contact support.\n";
        let mail = Mail::new(&email_of(job)?, "Your account was deleted", text);
        self.mailer.send(&mail).await.map_err(crate::queue::mail_error)
    }
}
