//! Changing a signed-in user's address. Requesting it (after a recent password confirmation)
//! mails a signed link to the new address and a notice to the old one; nothing changes until the
//! link is opened by the same user, and then the change is one atomic step: the user's address,
//! the old `email#` reservation freed and the new one taken ([`UserStore::change_email`]). The
//! new address is verified by that confirmation; the old address's reset token dies with it.
//!
//! Nothing is stored for a pending change: the link carries the new address, an expiry and an
//! HMAC under the app key over the user id, a keyed tag of the *current* address, the new address
//! and the credentials version. So a link stops working once the address changed (by another
//! link) or the password changed, reset or other devices were logged out.
//!
//! [`UserStore::change_email`]: crate::tables::users::UserStore::change_email

use crate::config::Config;
use crate::mail::{Mail, Mailer};
use crate::queue::{DispatchError, Dispatcher, JobContext, JobError, JobHandler};
use crate::services::auth::{Auth, AuthError, refuse_derived};
use crate::services::email_verification::{LinkParts, VerifyError, email_hash};
use crate::services::password_broker::url_encode;
use crate::tables::jobs::JobPayload;
use crate::tables::sessions::SessionRecord;
use crate::tables::users::{EmailMove, EmailSwap, User, UserId};
use crate::throttle::Limit;
use crate::values::clock::{Timestamp, epoch_seconds};
use crate::values::email::Email;
use async_trait::async_trait;
use std::sync::Arc;

pub const SEND_CONFIRMATION: &str = "SendEmailChangeConfirmation";
pub const SEND_NOTICE: &str = "SendEmailChangeNotice";
const PURPOSE: &str = "change-email";

/// Requests a user can make in a day, besides the per-minute limit: each sends a mail to an
/// address the requester chose.
const REQUESTS_PER_DAY: Limit = Limit { max: 10, window: crate::values::clock::Span::days(1) };

/// The throttle keys and limits of a user's change requests ([`Auth::user_tag`] `tag`): per
/// minute, per day.
pub fn request_limits(config: &Config, tag: &str) -> [(String, Limit); 2] {
    [
        (format!("email-change:{tag}"), Limit::per_minute(config.verification.resend_per_minute)),
        (format!("email-change-day:{tag}"), REQUESTS_PER_DAY),
    ]
}

/// What a link signs: the new address exactly as requested (not normalised: a look-alike that
/// lower-cases to the same text is another address), the current one's keyed tag, the version.
fn signed_payload(config: &Config, user: &User, to: &Email, expires: i64) -> String {
    signed(user, &email_hash(config, &user.email), to, expires)
}

/// [`signed_payload`] with the current address's tag given (`from`).
fn signed(user: &User, from: &str, to: &Email, expires: i64) -> String {
    format!("{}|{from}|{}|{}|{expires}", user.id, to.as_str(), user.credentials_version)
}

/// The state of `user` a request was made in: a confirmation job for another state sends nothing.
fn state_of(config: &Config, user: &User) -> serde_json::Value {
    serde_json::json!({ "version": user.credentials_version, "from_tag": email_hash(config, &user.email) })
}

/// The notice to `old` that its account's address is being (`changed`: was) moved to `to`.
fn notice(old: &Email, to: &Email, changed: bool) -> JobPayload {
    let data = serde_json::json!({ "email": old.as_str(), "new": to.as_str(), "changed": changed });
    JobPayload::notification(SEND_NOTICE, data)
}

/// The confirmation link for moving `user` (as it is now) to `to`, valid until `now` + the
/// verification links' expiry.
pub fn link(config: &Config, user: &User, to: &Email, now: Timestamp) -> String {
    let expires = epoch_seconds(now + config.verification.expire);
    let signature = config.app_key.sign(PURPOSE, &signed_payload(config, user, to, expires));
    config
        .verification
        .email_change_url_template
        .replace("{id}", user.id.as_str())
        .replace("{email}", &url_encode(to.as_str()))
        .replace("{expires}", &expires.to_string())
        .replace("{signature}", &signature)
}

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The new address is the current one (compared normalised).
    #[error("this is already your address")]
    SameAddress,
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Dispatch(#[from] DispatchError),
}

/// `POST /user/email`: asks to move `user` (signed in with `current`) to `to`. Needs a password
/// confirmation within the window and a session of the user's own (not a handoff's); counted
/// per user (6 a minute, 10 a day) before anything is read. A taken address is refused now
/// (`EmailTaken`) and again, atomically, at confirmation. Queues the link to `to` and the notice
/// to the current address.
pub async fn request(
    auth: &Auth,
    dispatcher: &Dispatcher,
    user: &User,
    current: &SessionRecord,
    to: &Email,
) -> Result<(), RequestError> {
    auth.require_recent_confirmation(current)?;
    if to.normalized() == user.email.normalized() {
        return Err(RequestError::SameAddress);
    }
    let [(minute, per_minute), (day, per_day)] = request_limits(auth.config(), &auth.user_tag(&user.id));
    auth.limit_all(&[(&minute, per_minute), (&day, per_day)]).await?;
    if auth.stores().users.find_by_email(to).await.map_err(AuthError::from)?.is_some() {
        return Err(AuthError::EmailTaken.into());
    }
    let data = serde_json::json!({ "user_id": user.id.as_str(), "email": to.as_str(), "state": state_of(auth.config(), user) });
    dispatcher.dispatch(JobPayload::notification(SEND_CONFIRMATION, data)).await?;
    // To the address as it is now, whatever happens to the account before the job runs.
    dispatcher.dispatch(notice(&user.email, to, false)).await?;
    tracing::info!(event = "email_change_requested", user_id = %user.id, to_tag = %auth.email_tag(to));
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    #[error(transparent)]
    Link(#[from] VerifyError),
    /// Not a session of the user's own (a handoff's).
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Another account took the address since the request.
    #[error("the email has already been taken")]
    Taken,
}

impl From<crate::StoreError> for ConfirmError {
    fn from(e: crate::StoreError) -> Self {
        Self::Link(VerifyError::Store(e))
    }
}

/// Opens a confirmation link in `current`, a session of the user's own (not a handoff's) that
/// must be of the user the link names (`NotYours` otherwise, before any read). The signature binds
/// the user's current address and credentials version, so it is checked (constant time) against
/// the user as read now; then the expiry; then the old address's reset token is deleted and the
/// swap made. Returns the user at its new address; opening the link again after it worked (its
/// signature checked against the address tag the swap kept, and its expiry) returns the user,
/// having stamped its credentials again (so a failure after the swap is finished by a retry). A
/// notice goes to the old address.
pub async fn confirm(
    auth: &Auth,
    dispatcher: &Dispatcher,
    link: &LinkParts<'_>,
    current: &SessionRecord,
) -> Result<User, ConfirmError> {
    refuse_derived(current)?;
    let (config, stores, now) = (auth.config(), auth.stores(), auth.now());
    let expires: i64 = link.expires.parse().map_err(|_| VerifyError::InvalidLink)?;
    let to = Email::parse(link.address).map_err(|_| VerifyError::InvalidLink)?;
    let id = UserId::parse(link.id).ok_or(VerifyError::InvalidLink)?;
    if current.user_id.as_ref() != Some(&id) {
        return Err(VerifyError::NotYours.into());
    }
    let user = stores.users.find(&id).await?.ok_or(VerifyError::InvalidLink)?;
    // Opened again after the swap landed: the link signed the address before it, whose tag the
    // swap kept; it is checked as strictly as the first time (signature, then expiry), so a made
    // up link naming the user's own current address verifies nothing.
    let already = user.email.as_str() == to.as_str();
    let from_tag = match (&user.email_changed_from, already) {
        (Some(tag), true) => tag.clone(),
        (None, true) => return Err(VerifyError::InvalidLink.into()),
        (_, false) => email_hash(config, &user.email),
    };
    let payload = signed(&user, &from_tag, &to, expires);
    if !config.app_key.verify(PURPOSE, &payload, link.signature) {
        return Err(VerifyError::InvalidLink.into());
    }
    if expires < epoch_seconds(now) {
        return Err(VerifyError::Expired.into());
    }
    if already {
        crate::services::revocation::stamp_verified(stores, &user).await?;
        return Ok(user);
    }
    // Before the swap, so no failure after it can leave a reset link of the old address alive (a
    // reset in flight also checks the address).
    stores.password_reset_tokens.delete(&user.email).await?;
    // Promised before the swap and carried by it: the old address hears of a change that was
    // made, whatever fails after it (and of none that was not).
    let mark = dispatcher.promise(&id, notice(&user.email, &to, true)).await.map_err(crate::StoreError::from)?;
    let changed = crate::tables::events::EventBody::UserEmailChanged(crate::tables::events::UserEmailChanged {
        email: Some(to.clone()),
        previous_email: Some(user.email.clone()),
    });
    let event = crate::services::events::promise(dispatcher, &id, changed).await?;
    let m = EmailMove {
        from: &user.email,
        to: &to,
        version: user.credentials_version,
        from_tag: &from_tag,
        notice: Some(&mark),
        events: std::slice::from_ref(&event),
    };
    match stores.users.change_email(&id, m, now).await? {
        EmailSwap::Changed => {}
        EmailSwap::Taken => return Err(ConfirmError::Taken),
        // The address or the credentials moved between the read and the swap.
        EmailSwap::Stale => return Err(VerifyError::InvalidLink.into()),
    }
    tracing::info!(event = "email_changed", user_id = %id, from_tag = %config.app_key.email_tag(&user.email), to_tag = %config.app_key.email_tag(&to));
    let moved =
        User { email: to, email_verified_at: Some(now), updated_at: now, email_changed_from: Some(from_tag), ..user };
    crate::services::revocation::stamp_verified(stores, &moved).await?;
    Ok(moved)
}

/// The user and the new address a confirmation job names, when the user is still in the state
/// the request was made in (same address, same credentials version): `None` (nothing to mail)
/// when the user is gone, changed its address or password since, or already has that address.
async fn pending(config: &Config, job: &JobPayload, ctx: &JobContext) -> Result<Option<(User, Email)>, JobError> {
    let id = job.data.get("user_id").and_then(|v| v.as_str()).and_then(UserId::parse);
    let id = id.ok_or_else(|| JobError::permanent("the job names no user"))?;
    let to = crate::services::password_broker::email_of(job)?;
    let user = ctx.stores.users.find(&id).await?;
    Ok(user.filter(|u| job.data.get("state") == Some(&state_of(config, u))).map(|u| (u, to)))
}

/// Mails the confirmation link to the new address, unless the account changed since the request.
pub struct SendConfirmation {
    pub config: Arc<Config>,
    pub mailer: Arc<dyn Mailer>,
}

#[async_trait]
impl JobHandler for SendConfirmation {
    async fn handle(&self, job: &JobPayload, ctx: &JobContext) -> Result<(), JobError> {
        let Some((user, to)) = pending(&self.config, job, ctx).await? else {
            tracing::info!(event = "email_change_mail_skipped", reason = "the account changed since the request");
            return Ok(());
        };
        let link = link(&self.config, &user, &to, ctx.stores.clock.now());
        let minutes = self.config.verification.expire.num_minutes();
        let text = format!(
            "Hello,\n\nTo make this the email address of your account, sign in and open this link:\n\n{link}\n\nThis link expires in {minutes} minutes. If you did not ask for this, ignore this mail: nothing changes.\n"
        );
        self.mailer
            .send(&Mail::new(&to, "Confirm your new email address", text))
            .await
            .map_err(crate::queue::mail_error)?;
        tracing::info!(event = "email_change_mail_sent", user_id = %user.id);
        Ok(())
    }
}

/// Tells an account's address that a change of it was asked for, or made, naming the new address
/// only in part (a stranger holding the session learns nothing new from it; the owner recognises
/// it). Mails the address recorded in the job, with no read: a change confirmed before the job
/// runs does not silence it.
pub struct SendNotice {
    pub mailer: Arc<dyn Mailer>,
}

/// `a•••@example.com`: the first character of the local part when it is a plain ASCII letter or
/// digit (never a direction override or another invisible character), and the domain when it is
/// ASCII (an internationalised one could imitate another).
pub fn masked(email: &Email) -> String {
    let s = email.as_str();
    let (local, domain) = s.rsplit_once('@').unwrap_or((s, ""));
    let first = local.chars().next().filter(char::is_ascii_alphanumeric).unwrap_or('•');
    let domain = if domain.is_ascii() { domain } else { "an international domain" };
    format!("{first}•••@{domain}")
}

#[async_trait]
impl JobHandler for SendNotice {
    async fn handle(&self, job: &JobPayload, _ctx: &JobContext) -> Result<(), JobError> {
        let old = crate::services::password_broker::email_of(job)?;
        let new = job.data.get("new").and_then(|v| v.as_str()).and_then(|v| Email::parse(v).ok());
        let new = new.ok_or_else(|| JobError::permanent("the job names no new address"))?;
        let (subject, text) = if job.data.get("changed").and_then(serde_json::Value::as_bool) == Some(true) {
            (
                "Your email address was changed",
                format!(
                    "Hello,\n\nThe email address of your account was changed to {}. Mail for the account now goes there, and this address can no longer sign in.\n\nIf this was not you, contact support at once.\n",
                    masked(&new)
                ),
            )
        } else {
            (
                "A change of your email address was requested",
                format!(
                    "Hello,\n\nSomeone signed in to your account asked to change its email address to {}. Nothing changes until the link mailed there is opened.\n\nIf this was not you, change your password at once: that also cancels the change.\n",
                    masked(&new)
                ),
            )
        };
        self.mailer.send(&Mail::new(&old, subject, text)).await.map_err(crate::queue::mail_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::users::sample as user;

    /// (id, email, expires, signature) as the link carries them, the email decoded.
    fn parts(url: &str) -> (String, String, String, String) {
        let (path, query) = url.split_once('?').unwrap();
        let id = path.rsplit('/').next().unwrap().to_owned();
        let q: std::collections::HashMap<String, String> =
            query.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.into(), decode(v))).collect();
        (id, q["email"].clone(), q["expires"].clone(), q["signature"].clone())
    }

    fn decode(v: &str) -> String {
        let mut out = Vec::new();
        let b = v.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' {
                out.push(u8::from_str_radix(&v[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_link_binds_the_user_the_current_address_the_new_one_and_the_credentials() {
        let config = Config::from_map(&Default::default()).unwrap();
        let now = crate::values::clock::from_epoch_millis(1_700_000_000_000).unwrap();
        let ann = user("ann@example.com");
        let to = Email::parse("Ann+new@Example.com").unwrap();
        let (id, email, expires, signature) = parts(&link(&config, &ann, &to, now));
        assert_eq!((id.as_str(), email.as_str()), (ann.id.as_str(), "Ann+new@Example.com"));
        let ok = |u: &User, to: &Email, exp: &str| {
            config.app_key.verify(PURPOSE, &signed_payload(&config, u, to, exp.parse().unwrap()), &signature)
        };
        assert!(ok(&ann, &to, &expires));
        assert!(!ok(&ann, &Email::parse("ann+NEW@example.com").unwrap(), &expires), "exactly as requested");
        assert!(!ok(&ann, &Email::parse("Ann+new@Example.\u{212a}om").unwrap(), &expires), "no look-alike");
        assert!(!ok(&ann, &Email::parse("eve@example.com").unwrap(), &expires), "another new address");
        assert!(!ok(&User { email: Email::parse("ann2@example.com").unwrap(), ..ann.clone() }, &to, &expires));
        assert!(!ok(&User { credentials_version: 1, ..ann.clone() }, &to, &expires), "password changed since");
        assert!(!ok(&User { id: UserId::generate(), ..ann.clone() }, &to, &expires));
        assert!(!ok(&ann, &to, &(expires.parse::<i64>().unwrap() + 1).to_string()));
        let other_key = Config::from_map(&Default::default()).unwrap();
        assert!(!other_key.app_key.verify(
            PURPOSE,
            &signed_payload(&config, &ann, &to, expires.parse().unwrap()),
            &signature
        ));
    }

    #[test]
    fn the_notice_names_the_new_address_only_in_part() {
        assert_eq!(masked(&Email::parse("mallory@evil.example").unwrap()), "m•••@evil.example");
        assert_eq!(masked(&Email::parse("\u{202e}lam@evil.example").unwrap()), "••••@evil.example");
        assert_eq!(masked(&Email::parse("eve@p\u{430}ypal.example").unwrap()), "e•••@an international domain");
    }
}
