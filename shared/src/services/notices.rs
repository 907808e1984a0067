//! Security notices: the mail that tells an address of a change to its way in (second factor,
//! passkeys, recovery codes, a wrong code after a right password). A change promises its notice
//! before it is made ([`promise`]: the change's own write carries the mark the job looks for).

use crate::mail::{Mail, Mailer};
use crate::queue::{DispatchError, Dispatcher, JobContext, JobError, JobHandler, mail_error};
use crate::tables::jobs::JobPayload;
use crate::tables::users::User;
use crate::values::email::Email;
use async_trait::async_trait;
use std::sync::Arc;

pub const SEND_NOTICE: &str = "SendTwoFactorNotice";

pub fn notice(user: &User, what: &str) -> JobPayload {
    JobPayload::notification(SEND_NOTICE, serde_json::json!({ "email": user.email.as_str(), "what": what }))
}

/// Queues a security notice ([`Dispatcher::notify`]: the change is made either way).
pub async fn tell(dispatcher: &Dispatcher, user: &User, what: &str) {
    dispatcher.notify(notice(user, what)).await;
}

/// Promises the notice `what` of a change to `user`'s second factors, before the write that makes
/// it ([`Dispatcher::promise`]): the write carries the mark returned.
pub async fn promise(
    dispatcher: &Dispatcher,
    user: &User,
    what: &str,
) -> Result<crate::tables::users::NoticeMark, DispatchError> {
    dispatcher.promise(&user.id, notice(user, what)).await
}

/// Mails a user's address a notice of a change to its second factors (fixed text only).
pub struct SendNotice {
    pub mailer: Arc<dyn Mailer>,
}

#[async_trait]
impl JobHandler for SendNotice {
    async fn handle(&self, job: &JobPayload, _ctx: &JobContext) -> Result<(), JobError> {
        let to = job.data.get("email").and_then(|v| v.as_str()).and_then(|v| Email::parse(v).ok());
        let to = to.ok_or_else(|| JobError::permanent("the job names no address"))?;
        let (subject, what) = match job.data.get("what").and_then(|v| v.as_str()) {
            Some("enabled") => {
                ("Two-factor authentication was turned on", "Two-factor authentication was turned on for your account.")
            }
            Some("disabled") => (
                "Two-factor authentication was turned off",
                "Two-factor authentication was turned off for your account: a password alone now signs in.",
            ),
            Some("recovery_codes") => (
                "New recovery codes",
                "New two-factor recovery codes were made for your account; the old ones no longer work.",
            ),
            Some("recovery_code_used") => (
                "A recovery code was used",
                "A recovery code was used to sign in to your account; it cannot be used again.",
            ),
            Some("wrong_code") => (
                "Your password was used with a wrong second factor",
                "Someone gave your password correctly but a wrong two-factor code. If this was not you, your password is known to someone else: change it now.",
            ),
            Some("reset") => (
                "Two-factor authentication was reset",
                "An administrator turned off two-factor authentication for your account and removed its passkeys.",
            ),
            Some("passkey_added") => {
                ("A passkey was added", "A passkey was added to your account: it signs in on its own.")
            }
            Some("passkey_removed") => ("A passkey was removed", "A passkey was removed from your account."),
            Some("passkeys_removed") => (
                "Your passkeys were removed",
                "Your password was changed or your other devices were logged out, so every passkey of your account was removed: one added by someone else must not outlive it. Add yours again from your account page.",
            ),
            _ => return Err(JobError::permanent("unknown two-factor notice")),
        };
        let text =
            format!("Hello,\n\n{what}\n\nIf this was not you, reset your password at once and contact support.\n");
        self.mailer.send(&Mail::new(&to, subject, text)).await.map_err(mail_error)
    }
}
