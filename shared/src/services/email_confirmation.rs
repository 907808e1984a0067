//! The fresh proof of an account without a password (made by an email link or a provider): a
//! six-digit code mailed to its address stands in for `POST /user/confirm-password`, and is
//! recorded on the session exactly as a password confirmation is
//! ([`crate::tables::sessions::SessionStore::confirm_password`]). Counted per user before
//! anything is written, at most [`MAX_CODE_ATTEMPTS`] codes judged, single use, bound to the
//! session that asked, for [`LINK_LIFETIME`].

use crate::config::Config;
use crate::mail::{Mail, Mailer};
use crate::queue::{DispatchError, Dispatcher, JobContext, JobError, JobHandler};
use crate::services::auth::{Auth, AuthError};
use crate::services::email_link::{LINK_LIFETIME, MAX_CODE_ATTEMPTS, code_of, six_digits};
use crate::tables::jobs::JobPayload;
use crate::tables::sessions::SessionKey;
use crate::tables::users::{User, UserId};
use crate::values::clock::{epoch_seconds, from_epoch_seconds};
use crate::values::error::StoreError;
use crate::values::secret::constant_time_eq;
use async_trait::async_trait;
use std::sync::Arc;
use thiserror::Error;

pub const SEND_CONFIRMATION_CODE: &str = "SendEmailConfirmationCode";
const PURPOSE: &str = "confirm-by-email-code";

#[derive(Debug, Error)]
pub enum ConfirmByEmailError {
    /// The account has a password: `POST /user/confirm-password` is its proof.
    #[error("this account has a password; confirm with it")]
    HasPassword,
    /// No code asked for by this session, expired, used, spent or wrong: one answer for all.
    #[error("this code is invalid or has expired")]
    InvalidCode,
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Dispatch(#[from] DispatchError),
}

/// The session's pending code, under a keyed tag of its key.
fn key(config: &Config, session: &SessionKey) -> String {
    format!("confirm-by-email:{}", config.app_key.tag("confirm-by-email", session.as_str()))
}

fn code_tag(config: &Config, key: &str, code: &str) -> String {
    config.app_key.tag(PURPOSE, &format!("{key}|{code}"))
}

/// `POST /user/confirm-by-email`: for `user` (who has no password), counted per user as sign-in
/// links are (3 per 15 minutes, 10 a day by default), then the code's record for `session` and
/// the mail job (the code is a MAC of the job's uuid: in neither the queue nor the cache table).
pub async fn send_code(
    auth: &Auth,
    dispatcher: &Dispatcher,
    user: &User,
    session: &SessionKey,
) -> Result<(), ConfirmByEmailError> {
    if user.has_password() {
        return Err(ConfirmByEmailError::HasPassword);
    }
    let limits = auth.config().email_link.per_address;
    let tag = auth.user_tag(&user.id);
    let (minutes, day) = (format!("confirm-by-email:{tag}"), format!("confirm-by-email-day:{tag}"));
    auth.limit_all(&[(&minutes, limits[0]), (&day, limits[1])]).await?;
    let expires = auth.now() + LINK_LIFETIME;
    let job = JobPayload::notification(
        SEND_CONFIRMATION_CODE,
        serde_json::json!({ "user_id": user.id.as_str(), "expires": epoch_seconds(expires) }),
    );
    let key = key(auth.config(), session);
    let record = serde_json::json!({
        "user_id": user.id.as_str(),
        "code": code_tag(auth.config(), &key, &code_of(auth.config(), PURPOSE, &job.uuid)),
        "expires": epoch_seconds(expires),
    });
    auth.stores().cache.put(&key, &record, Some(expires)).await?;
    dispatcher.dispatch(job).await?;
    tracing::info!(event = "confirmation_code_requested", user_id = %user.id);
    Ok(())
}

/// `POST /user/confirm-by-email/verify`: the code this session asked for, for `user`; once
/// right, the session's confirmation is recorded (`false`: the session ended meanwhile).
pub async fn verify_code(
    auth: &Auth,
    user: &UserId,
    session: &SessionKey,
    code: &str,
) -> Result<bool, ConfirmByEmailError> {
    let code = six_digits(code).ok_or(ConfirmByEmailError::InvalidCode)?;
    let (stores, key) = (auth.stores(), key(auth.config(), session));
    let record = stores.cache.get(&key).await?.ok_or(ConfirmByEmailError::InvalidCode)?;
    if record.get("user_id").and_then(|v| v.as_str()) != Some(user.as_str()) {
        return Err(ConfirmByEmailError::InvalidCode);
    }
    let expires = record.get("expires").and_then(serde_json::Value::as_i64).and_then(from_epoch_seconds);
    let end = expires.unwrap_or_else(|| auth.now());
    match auth.limit_until(&format!("{key}:attempts"), MAX_CODE_ATTEMPTS, end).await {
        Err(AuthError::Throttled { .. }) => {
            stores.cache.forget(&key).await?;
            return Err(ConfirmByEmailError::InvalidCode);
        }
        other => other?,
    }
    let stored = record.get("code").and_then(|v| v.as_str()).unwrap_or_default();
    // Right, and this request's alone: of racing right answers one forgets the record.
    if !constant_time_eq(code_tag(auth.config(), &key, code).as_bytes(), stored.as_bytes())
        || !stores.cache.forget(&key).await?
    {
        tracing::info!(event = "confirmation_code_failed", user_id = %user);
        return Err(ConfirmByEmailError::InvalidCode);
    }
    tracing::info!(event = "confirmed_by_email", user_id = %user);
    Ok(stores.sessions.confirm_password(session, auth.now()).await?)
}

/// Mails the code to the user's address now (nothing to a user gone, disabled or past the
/// code's life). Security mail: no text a user chose.
pub struct SendConfirmationCode {
    pub config: Arc<Config>,
    pub mailer: Arc<dyn Mailer>,
}

#[async_trait]
impl JobHandler for SendConfirmationCode {
    async fn handle(&self, job: &JobPayload, ctx: &JobContext) -> Result<(), JobError> {
        let id = job.data.get("user_id").and_then(|v| v.as_str()).and_then(UserId::parse);
        let id = id.ok_or_else(|| JobError::permanent("the job names no user"))?;
        let expires = job.data.get("expires").and_then(serde_json::Value::as_i64).unwrap_or_default();
        let left = (expires - epoch_seconds(ctx.stores.clock.now())) / 60;
        let Some(user) = ctx.stores.users.find(&id).await?.filter(|u| u.disabled_at.is_none() && left >= 0) else {
            return Ok(());
        };
        let code = code_of(&self.config, PURPOSE, &job.uuid);
        let minutes = left.max(1);
        let text = format!(
            "Hello,\n\nYour confirmation code is {code}\n\nType it on the page that asked for it, within {minutes} minutes. It confirms it is you before a change to your account's security.\n\nIf you did not ask for it, someone else is signed in to your account: sign out your other sessions from your account page.\n"
        );
        let mail = Mail::new(&user.email, "Your confirmation code", text);
        self.mailer.send(&mail).await.map_err(crate::queue::mail_error)?;
        tracing::info!(event = "confirmation_code_sent", user_id = %id);
        Ok(())
    }
}
