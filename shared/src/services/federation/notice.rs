//! The mail telling an address that a provider account was connected to it or disconnected:
//! promised before the change (queued, delayed, before the identity is written) and sent only if
//! the change is found made when the job runs — a change that failed is never announced, one that
//! landed is announced whatever fails after it.

use super::FederationError;
use crate::mail::{Mail, Mailer};
use crate::queue::{Dispatcher, JobContext, JobError, JobHandler, mail_error};
use crate::tables::identities::Identity;
use crate::tables::jobs::JobPayload;
use crate::tables::users::{User, UserId};
use crate::values::email::Email;
use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::Arc;

pub const SEND_IDENTITY_NOTICE: &str = "SendIdentityNotice";

/// Queues the notice of `identity` about to be connected to (`linked`) or disconnected from
/// `user`, delayed past any request's life. An `Err` means nothing was queued and nothing must be
/// written.
pub async fn promise(
    dispatcher: &Dispatcher,
    user: &User,
    identity: &Identity,
    provider_name: &str,
    linked: bool,
) -> Result<(), FederationError> {
    let job = JobPayload::notification(
        SEND_IDENTITY_NOTICE,
        json!({
            "email": user.email.as_str(),
            "user_id": user.id.as_str(),
            "provider": identity.provider,
            "provider_name": provider_name,
            "subject": identity.subject,
            "linked": linked,
            "linked_at": identity.linked_at.timestamp_millis(),
        }),
    );
    dispatcher.dispatch_after(job, dispatcher.notice_delay()).await.map_err(|e| {
        tracing::error!(event = "identity_notice_not_queued", user_id = %user.id, error = %e);
        FederationError::Auth(crate::services::auth::AuthError::Store(crate::StoreError::Unavailable(e.to_string())))
    })?;
    Ok(())
}

pub struct SendIdentityNotice {
    pub mailer: Arc<dyn Mailer>,
}

fn text<'a>(job: &'a JobPayload, field: &str) -> Result<&'a str, JobError> {
    job.data
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| JobError::permanent("an identity notice without its fields"))
}

#[async_trait]
impl JobHandler for SendIdentityNotice {
    async fn handle(&self, job: &JobPayload, ctx: &JobContext) -> Result<(), JobError> {
        let to = Email::parse(text(job, "email")?).map_err(|_| JobError::permanent("the job names no address"))?;
        let user = UserId::parse(text(job, "user_id")?).ok_or_else(|| JobError::permanent("the job names no user"))?;
        let (provider, subject) = (text(job, "provider")?, text(job, "subject")?);
        let linked = job.data.get("linked") == Some(&Value::Bool(true));
        let at = job.data.get("linked_at").and_then(Value::as_i64);
        let found = ctx.stores.identities.find(provider, subject).await.map_err(JobError::from)?;
        let made = match (&found, linked) {
            // This very connection (not an earlier one of the same account) is there.
            (Some(i), true) => i.user_id == user && Some(i.linked_at.timestamp_millis()) == at,
            (None, false) => true,
            (Some(i), false) => i.user_id != user,
            (None, true) => false,
        };
        if !made {
            tracing::info!(event = "identity_notice_dropped", user_id = %user, linked, "the change did not happen");
            return Ok(());
        }
        // The provider's configured name, kept to printable text of a line.
        let name: String = text(job, "provider_name")?.chars().filter(|c| !c.is_control()).take(64).collect();
        let (subject_line, what) = if linked {
            (
                "A sign-in provider was connected",
                format!("Your {name} account was connected to your account: it now signs in to it."),
            )
        } else {
            (
                "A sign-in provider was disconnected",
                format!("Your {name} account was disconnected from your account: it no longer signs in to it."),
            )
        };
        let body =
            format!("Hello,\n\n{what}\n\nIf this was not you, reset your password at once and contact support.\n");
        self.mailer.send(&Mail::new(&to, subject_line, body)).await.map_err(mail_error)
    }
}
