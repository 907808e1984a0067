//! Deleting an account (Jetstream's `DeleteUser`), everything of it: the user item and its
//! `email#` reservation first — in one transaction, so the address can register again at once and
//! no credential verified before can be issued after (every issue checks the user item) — then
//! every registered credential (sessions, tokens, handoffs; cross-app sessions end), the reset
//! token of the address, the throttle counts keyed by the user, and the cross-app audit records
//! keep only a pseudonym (a keyed tag of the id; no IP address or user agent). A mail tells the
//! address the account is gone.

use crate::auth::{Auth, AuthError};
use crate::credentials::{Revocation, reasons, revoke};
use crate::jobs::JobPayload;
use crate::mail::{Mail, Mailer};
use crate::password_broker::{email_of, mail_job};
use crate::queue::{Dispatcher, JobContext, JobError, JobHandler};
use crate::sessions::SessionRecord;
use crate::users::User;
use async_trait::async_trait;
use std::sync::Arc;

pub const SEND_ACCOUNT_DELETED: &str = "SendAccountDeletedNotification";

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
    if !stores.users.delete(&user.id).await? {
        return Ok(false);
    }
    let ended = revoke(stores, &user.id, Revocation::Everything, reasons::ACCOUNT_DELETED).await?;
    stores.resets.delete(&user.email).await?;
    let tag = auth.user_tag(&user.id);
    let [minute, day] = crate::email_verification::resend_limits(auth, &tag);
    let [change_minute, change_day] = crate::email_change::request_limits(auth, &tag);
    // The per-client minute counts of code attempts expire within a minute; the hour count goes.
    let [_, codes_hour] = crate::two_factor::attempt_limits(&tag, "");
    for (key, limit) in [crate::auth::password_checks_limit(&tag), minute, day, change_minute, change_day, codes_hour] {
        auth.clear_limit(&key, limit).await?;
    }
    let records = stores.cross_app.pseudonymize(&user.id, &format!("deleted#{tag}")).await?;
    tracing::info!(event = "account_deleted", user_tag = %tag, credentials = ended, audit_records = records);
    dispatcher.notify(mail_job(SEND_ACCOUNT_DELETED, &user.email)).await;
    Ok(true)
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
        self.mailer.send(&mail).await.map_err(crate::password_broker::mail_error)
    }
}
