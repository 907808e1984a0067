//! Email verification (Laravel's `MustVerifyEmail`), with signed links instead of stored secrets:
//! the mailed link carries the user id, a hash of the address it was sent to, an expiry and an
//! HMAC of the three under the app key. Nothing is stored until the link is opened; a link for an
//! address the user no longer has, a tampered or expired link, or one signed by another key does
//! nothing. Verifying sets `email_verified_at` once, and only while the address is still the one
//! the link was made for.
//!
//! Mailing is a queued job (`SendEmailVerificationNotification`), dispatched at registration and
//! by the resend route; like every security mail it carries no text the user chose.

use crate::config::Config;
use crate::mail::{Mail, Mailer};
use crate::queue::{DispatchError, Dispatcher, JobContext, JobError, JobHandler};
use crate::services::auth::{Auth, AuthError};
use crate::tables::events::{EventBody, UserVerified};
use crate::tables::jobs::JobPayload;
use crate::tables::users::{Marks, User, UserId};
use crate::throttle::Limit;
use crate::values::clock::{Timestamp, epoch_seconds};
use crate::values::email::Email;
use crate::values::error::StoreError;
use async_trait::async_trait;
use std::sync::Arc;

pub const SEND_VERIFICATION: &str = "SendEmailVerificationNotification";
const PURPOSE: &str = "verify-email";

/// The tag of an address that a link names: a MAC of the normalised address under the app key
/// (not a plain hash, which a dictionary of addresses would reverse from a logged path). A
/// changed address no longer matches it.
pub fn email_hash(config: &Config, email: &Email) -> String {
    config.app_key.sign("verify-address", &email.normalized())
}

fn signed_payload(id: &str, hash: &str, expires: i64) -> String {
    format!("{id}|{hash}|{expires}")
}

/// The link mailed to `user`, valid until `now` + the configured expiry.
pub fn link(config: &Config, user: &User, now: Timestamp) -> String {
    let (id, hash) = (user.id.as_str(), email_hash(config, &user.email));
    let expires = epoch_seconds(now + config.verification.expire);
    let signature = config.app_key.sign(PURPOSE, &signed_payload(id, &hash, expires));
    config
        .verification
        .url_template
        .replace("{id}", id)
        .replace("{hash}", &hash)
        .replace("{expires}", &expires.to_string())
        .replace("{signature}", &signature)
}

/// What a mailed link names, as the request carried it (path and query), unparsed: a
/// verification link's user id and address tag, or an email change's user id and new address.
pub struct LinkParts<'a> {
    pub id: &'a str,
    /// The verification link's `{hash}`, or the email change's new `{email}`.
    pub address: &'a str,
    pub expires: &'a str,
    pub signature: &'a str,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Tampered, signed by another key, for another user or for an address the user no longer has.
    #[error("this verification link is invalid")]
    InvalidLink,
    #[error("this verification link has expired")]
    Expired,
    /// A valid link of another user than the signed-in one.
    #[error("this verification link is for another account")]
    NotYours,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Marks `user`'s address verified (only while it is still that address), carrying
/// `user.verified`.
async fn verified(config: &Config, stores: &crate::Stores, user: &User, now: Timestamp) -> Result<bool, StoreError> {
    let dispatcher = Dispatcher::for_config(stores.clone(), config);
    let body = EventBody::UserVerified(UserVerified { email: Some(user.email.clone()) });
    let event = crate::services::events::promise(&dispatcher, &user.id, body).await?;
    let marks = Marks::default().and_events(std::slice::from_ref(&event));
    stores.users.mark_email_verified_noting(&user.id, &user.email, marks, now).await
}

/// Opens a link for `caller` (Laravel's `verification.verify` needs the signed-in user to be the
/// one the link names, so a mail scanner that opens links, or anyone else, verifies nothing):
/// checks the signature (constant time) and the expiry before any read, then that the user still
/// has the address the link was made for, and sets `email_verified_at` once. Returns the user and
/// whether this call verified it (`false`: it already was).
pub async fn verify(
    config: &Config,
    stores: &crate::Stores,
    link: LinkParts<'_>,
    caller: &UserId,
    now: Timestamp,
) -> Result<(User, bool), VerifyError> {
    let expires: i64 = link.expires.parse().map_err(|_| VerifyError::InvalidLink)?;
    if !config.app_key.verify(PURPOSE, &signed_payload(link.id, link.address, expires), link.signature) {
        return Err(VerifyError::InvalidLink);
    }
    if expires < epoch_seconds(now) {
        return Err(VerifyError::Expired);
    }
    let id = UserId::parse(link.id).ok_or(VerifyError::InvalidLink)?;
    if &id != caller {
        return Err(VerifyError::NotYours);
    }
    let user = stores.users.find(&id).await?.ok_or(VerifyError::InvalidLink)?;
    if !crate::values::secret::constant_time_eq(email_hash(config, &user.email).as_bytes(), link.address.as_bytes()) {
        return Err(VerifyError::InvalidLink);
    }
    let (user, fresh) = if user.email_verified_at.is_some() {
        (user, false)
    } else if verified(config, stores, &user, now).await? {
        tracing::info!(event = "email_verified", user_id = %user.id);
        (User { email_verified_at: Some(now), ..user }, true)
    } else {
        // Conditional on the address: an email change landing between the read and the write wins.
        let again = stores.users.find(&id).await?.ok_or(VerifyError::InvalidLink)?;
        match again.email_verified_at {
            Some(_) if again.email == user.email => (again, false),
            _ => return Err(VerifyError::InvalidLink),
        }
    };
    // Every time, not only the first: a retry after a failed stamping finishes it.
    crate::services::revocation::stamp_verified(stores, &user).await?;
    Ok((user, fresh))
}

/// The job that mails the link to a user (by id: the address is read when the job runs, so a
/// link always goes to the current address).
pub fn job(user: &UserId) -> JobPayload {
    JobPayload::notification(SEND_VERIFICATION, serde_json::json!({ "user_id": user.as_str() }))
}

/// The job that mails a registration's link: one job id per registration (a keyed tag of the
/// user, so nothing left behind names a deleted user), so the registration's retry queues the
/// same job again and it runs (mails) once.
pub fn registration_job(config: &Config, user: &UserId) -> JobPayload {
    let mut job = job(user);
    job.uuid = format!("verify-registration-{}", config.app_key.tag("user-tag", user.as_str()));
    job
}

/// Verification mails a user can ask for in a day, besides the per-minute limit (so an address
/// someone registered without owning it gets few mails).
const RESENDS_PER_DAY: Limit = Limit { max: 20, window: crate::values::clock::Span::days(1) };

/// The throttle keys and limits of a user's resends ([`Auth::user_tag`] `tag`): per minute, per
/// day.
pub fn resend_limits(config: &Config, tag: &str) -> [(String, Limit); 2] {
    [
        (format!("verify-resend:{tag}"), Limit::per_minute(config.verification.resend_per_minute)),
        (format!("verify-resend-day:{tag}"), RESENDS_PER_DAY),
    ]
}

/// What [`resend`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resend {
    Queued,
    AlreadyVerified,
}

/// Laravel's `verification.send`: queues a fresh link for `user` unless already verified, at
/// most GATEHOUSE_VERIFY_RESEND_PER_MINUTE a minute and 20 a day, both counted first in one
/// atomic write (so concurrent requests cannot multiply a limit).
pub async fn resend(auth: &Auth, dispatcher: &Dispatcher, user: &User) -> Result<Resend, ResendError> {
    if user.email_verified_at.is_some() {
        return Ok(Resend::AlreadyVerified);
    }
    let [(minute, per_minute), (day, per_day)] = resend_limits(auth.config(), &auth.user_tag(&user.id));
    auth.limit_all(&[(&minute, per_minute), (&day, per_day)]).await?;
    dispatcher.dispatch(job(&user.id)).await?;
    Ok(Resend::Queued)
}

#[derive(Debug, thiserror::Error)]
pub enum ResendError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Dispatch(#[from] DispatchError),
}

/// Mails the verification link, unless the user is gone or already verified.
pub struct SendVerification {
    pub config: Arc<Config>,
    pub mailer: Arc<dyn Mailer>,
}

#[async_trait]
impl JobHandler for SendVerification {
    async fn handle(&self, job: &JobPayload, ctx: &JobContext) -> Result<(), JobError> {
        let id = job.data.get("user_id").and_then(|v| v.as_str()).and_then(UserId::parse);
        let id = id.ok_or_else(|| JobError::permanent("the job names no user"))?;
        let Some(user) = ctx.stores.users.find(&id).await? else {
            return Ok(());
        };
        if user.email_verified_at.is_some() {
            tracing::info!(event = "verification_mail_skipped", reason = "already verified", user_id = %id);
            return Ok(());
        }
        let link = link(&self.config, &user, ctx.stores.clock.now());
        let minutes = self.config.verification.expire.num_minutes();
        let mail = Mail {
            to: user.email.as_str().to_owned(),
            subject: self.config.verification.subject.clone(),
            text: format!(
                "Hello,\n\nPlease confirm that this is your email address by opening this link:\n\n{link}\n\nThis link expires in {minutes} minutes. If you did not create an account, no further action is required.\n"
            ),
        };
        self.mailer.send(&mail).await.map_err(crate::queue::mail_error)?;
        tracing::info!(event = "verification_mail_sent", user_id = %id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::users::sample as user;
    use crate::values::clock::{Clock, ManualClock, Span};

    fn parts(url: &str) -> (String, String, String, String) {
        let (path, query) = url.split_once('?').unwrap();
        let segs: Vec<&str> = path.rsplit('/').take(2).collect();
        let q: std::collections::HashMap<_, _> = query.split('&').filter_map(|kv| kv.split_once('=')).collect();
        (segs[1].into(), segs[0].into(), q["expires"].into(), q["signature"].into())
    }

    async fn open(config: &Config, stores: &crate::Stores, url: &str, now: Timestamp) -> Result<bool, VerifyError> {
        let (id, hash, expires, signature) = parts(url);
        let link = LinkParts { id: &id, address: &hash, expires: &expires, signature: &signature };
        let caller = UserId::parse(&id).unwrap();
        verify(config, stores, link, &caller, now).await.map(|(_, first)| first)
    }

    #[tokio::test]
    async fn a_link_verifies_once_until_it_expires_and_only_as_signed() {
        let clock = Arc::new(ManualClock::new(crate::values::clock::from_epoch_millis(1_700_000_000_000).unwrap()));
        let stores = crate::Stores::memory(clock.clone());
        let config = Config::from_map(&Default::default()).unwrap();
        let ann = user("ann@example.com");
        stores.users.create(&ann).await.unwrap();
        let url = link(&config, &ann, clock.now());

        // Tampered: another user's id, another hash, a later expiry, another key's signature.
        let (id, hash, expires, sig) = parts(&url);
        let bob = user("bob@example.com");
        stores.users.create(&bob).await.unwrap();
        let forged = [
            (bob.id.as_str().to_owned(), hash.clone(), expires.clone(), sig.clone()),
            (id.clone(), email_hash(&config, &bob.email), expires.clone(), sig.clone()),
            (id.clone(), hash.clone(), (expires.parse::<i64>().unwrap() + 3600).to_string(), sig.clone()),
            (id.clone(), hash.clone(), expires.clone(), crate::keys::AppKey::random().sign(PURPOSE, "x")),
            (id.clone(), hash.clone(), "soon".into(), sig.clone()),
        ];
        for (i, h, e, s) in &forged {
            let link = LinkParts { id: i, address: h, expires: e, signature: s };
            assert!(matches!(
                verify(&config, &stores, link, &ann.id, clock.now()).await,
                Err(VerifyError::InvalidLink)
            ));
        }
        // A valid link opened by someone else (a mail scanner has no session; another user's
        // session is not Ann's): nothing happens.
        let link = LinkParts { id: &id, address: &hash, expires: &expires, signature: &sig };
        assert!(matches!(verify(&config, &stores, link, &bob.id, clock.now()).await, Err(VerifyError::NotYours)));
        assert!(stores.users.find(&ann.id).await.unwrap().unwrap().email_verified_at.is_none());

        // Expired.
        clock.advance(Span::minutes(61));
        assert!(matches!(open(&config, &stores, &url, clock.now()).await, Err(VerifyError::Expired)));
        clock.advance(Span::minutes(-61));

        assert!(open(&config, &stores, &url, clock.now()).await.unwrap(), "the first opening verifies");
        let at = stores.users.find(&ann.id).await.unwrap().unwrap().email_verified_at;
        clock.advance(Span::minutes(1));
        assert!(!open(&config, &stores, &url, clock.now()).await.unwrap(), "a second opening changes nothing");
        assert_eq!(stores.users.find(&ann.id).await.unwrap().unwrap().email_verified_at, at);
    }
}
