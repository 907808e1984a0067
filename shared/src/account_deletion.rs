//! Deleting an account (Jetstream's `DeleteUser`), everything of it: the user item and its
//! `email#` reservation first — in one transaction, so the address can register again at once and
//! no credential verified before can be issued after (every issue checks the user item) — then
//! every registered credential (sessions, tokens, handoffs; cross-app sessions end), the reset
//! token of the address, the throttle counts keyed by the user, and the cross-app audit records
//! keep only a pseudonym (a keyed tag of the id; no IP address or user agent). A mail tells the
//! address the account is gone.

use crate::auth::{Auth, AuthError, refuse_derived};
use crate::credentials::{Revocation, reasons, revoke};
use crate::email::Email;
use crate::jobs::JobPayload;
use crate::mail::{Mail, Mailer};
use crate::queue::{Dispatcher, JobContext, JobError, JobHandler};
use crate::sessions::SessionRecord;
use crate::users::User;
use async_trait::async_trait;
use std::sync::Arc;

pub const SEND_ACCOUNT_DELETED: &str = "SendAccountDeletedNotification";

/// Deletes `user`, signed in with `current`. The caller has checked that the password was
/// confirmed recently. `false` when the user was already gone.
pub async fn delete_account(
    auth: &Auth,
    dispatcher: &Dispatcher,
    user: &User,
    current: &SessionRecord,
) -> Result<bool, AuthError> {
    refuse_derived(current)?;
    let stores = auth.stores();
    if !stores.users.delete(&user.id).await? {
        return Ok(false);
    }
    let ended = revoke(stores, &user.id, Revocation::Everything, reasons::ACCOUNT_DELETED).await?;
    stores.resets.delete(&user.email).await?;
    let tag = auth.user_tag(&user.id);
    for key in ["password-check-hour", "verify-resend", "verify-resend-day"] {
        auth.clear_limit(&format!("{key}:{tag}")).await?;
    }
    let records = stores.cross_app.pseudonymize(&user.id, &format!("deleted#{tag}")).await?;
    tracing::info!(event = "account_deleted", user_tag = %tag, credentials = ended, audit_records = records);
    let mut job = JobPayload::new(SEND_ACCOUNT_DELETED, serde_json::json!({ "email": user.email.normalized() }));
    job.display_name = format!("Gatehouse\\Notifications\\{SEND_ACCOUNT_DELETED}");
    job.max_tries = Some(5);
    job.backoff = vec![10, 30, 60, 120];
    if let Err(e) = dispatcher.dispatch(job).await {
        tracing::error!(event = "account_deleted_mail_not_queued", user_tag = %tag, error = %e);
    }
    Ok(true)
}

/// Tells the address its account was deleted (no text the account holder chose).
pub struct SendAccountDeleted {
    pub mailer: Arc<dyn Mailer>,
}

#[async_trait]
impl JobHandler for SendAccountDeleted {
    async fn handle(&self, job: &JobPayload, _ctx: &JobContext) -> Result<(), JobError> {
        let raw = job.data.get("email").and_then(|v| v.as_str()).ok_or_else(|| JobError::permanent("no email"))?;
        let email = Email::parse(raw).map_err(|e| JobError::permanent(format!("job data email: {e}")))?;
        let mail = Mail {
            to: email.as_str().to_owned(),
            subject: "Your account was deleted".into(),
            text: "Hello,\n\nYour account and everything in it were deleted at your request. If you did not ask for this, contact support.\n".into(),
        };
        self.mailer.send(&mail).await.map_err(crate::password_broker::mail_error)
    }
}
