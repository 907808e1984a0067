//! Passwordless sign-in by mail: one mail holds a link and a six-digit code, both for one request
//! made in one browser, single use, for [`LINK_LIFETIME`].
//!
//! - **The same answer and the same work for every address.** [`request`] counts the address
//!   and the client first, reads the account (an unknown address reads a decoy as
//!   [`Auth::check_password`] does), writes the request's record and its browser's pointer and
//!   queues one mail job, whatever the account: the job decides whether there is anything to
//!   mail. The link and the code are MACs of the job's uuid under the app key, so neither is in
//!   the queue or the cache table.
//! - **Bound to the browser that asked.** The request hands the browser a binding secret (a
//!   cookie); the record holds its hash. The link opened elsewhere (a forwarded mail, a mail
//!   scanner, a phone) takes nothing ([`EmailLinkError::OtherBrowser`]): the code typed in the
//!   browser that asked is the way in there. The code is found through the binding only, so a
//!   code without the asking browser is no code.
//! - **Single use.** The record is taken once ([`crate::tables::cache::CacheStore::take_once`],
//!   each attempt with a mark of its own: of racing uses one wins, a failure after the take
//!   spends the mail). At most [`MAX_CODE_ATTEMPTS`] codes are judged per record, then it is
//!   gone.
//! - **Under the account as it was asked for.** The record names the user and the credentials
//!   version read; a reset, a password change, "log out other devices", an address change, a
//!   disabled or deleted account, all end it. A second factor still gets its challenge.
//! - Accounts whose address is not verified get no link (their address may have been registered
//!   by someone else, who would keep a way in): the mail says to verify or reset first.
//!
//! Nothing here logs a token, a code or an address (only [`Auth::email_tag`]).

use crate::config::Config;
use crate::mail::{Mail, Mailer};
use crate::queue::{DispatchError, Dispatcher, JobContext, JobError, JobHandler};
use crate::services::auth::sessions::Opened;
use crate::services::auth::{Auth, AuthError, ClientMeta};
use crate::services::sign_in::{ChallengeToken, Pending, challenge};
use crate::tables::cache::Taken;
use crate::tables::events::SessionMethod;
use crate::tables::jobs::JobPayload;
use crate::tables::users::{DisplayName, User, UserId};
use crate::throttle::{Limit, client_key};
use crate::values::clock::{Span, Timestamp, epoch_seconds, from_epoch_seconds};
use crate::values::email::Email;
use crate::values::error::StoreError;
use crate::values::password::PasswordHash;
use crate::values::secret::{constant_time_eq, is_token_256, sha256_hex};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use thiserror::Error;

pub const SEND_SIGN_IN_LINK: &str = "SendEmailSignInLink";

/// How long a link and its code work.
pub const LINK_LIFETIME: Span = Span::minutes(15);

/// Codes judged per request; past them the record is gone.
pub const MAX_CODE_ATTEMPTS: i64 = 5;

/// Completions (a link or a code) per client per minute, counted before anything is read.
const COMPLETIONS_PER_CLIENT: Limit = Limit::per_minute(30);

#[derive(Debug, Error)]
pub enum EmailLinkError {
    /// `GATEHOUSE_EMAIL_LINK=false`.
    #[error("sign-in by email is off")]
    Disabled,
    /// Unknown, expired, used, spent on wrong codes, a wrong code, or the account changed: one
    /// answer for all.
    #[error("this sign-in link or code is invalid, expired or already used")]
    Invalid,
    /// A live link opened in another browser than the one that asked (nothing taken).
    #[error("this link was asked for in another browser")]
    OtherBrowser,
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Dispatch(#[from] DispatchError),
}

/// A request's record, at `email-link:<sha256 of the link token>`.
#[derive(Serialize, Deserialize)]
struct LinkRecord {
    /// The account the mail is for, and its credentials version when asked (`None`: no account
    /// that may sign in this way, or none at all).
    user_id: Option<String>,
    version: u64,
    /// No account held the address and sign-up by email is on: completing creates one.
    signup: bool,
    /// The address, sealed under the app key.
    address: String,
    /// SHA-256 of the asking browser's binding secret.
    browser: String,
    /// The code's MAC under the app key ([`code_tag`]).
    code: String,
    remember: bool,
    expires: i64,
}

fn record_key(link: &str) -> String {
    format!("email-link:{link}")
}

/// The pointer from a browser's binding to its request (the code path's way to the record).
fn browser_key(binding: &str) -> String {
    format!("email-link-browser:{}", sha256_hex(binding))
}

/// The link token a request's job mails: 256 bits of MAC of the job's uuid.
fn token_of(config: &Config, uuid: &str) -> String {
    config.app_key.sign("email-link-token", uuid)
}

/// The six-digit code a request's job mails.
pub(crate) fn code_of(config: &Config, purpose: &str, uuid: &str) -> String {
    let mac = config.app_key.mac(purpose, uuid.as_bytes());
    let n = u64::from_be_bytes(mac[..8].try_into().unwrap_or_default());
    format!("{:06}", n % 1_000_000)
}

fn code_tag(config: &Config, record: &str, code: &str) -> String {
    config.app_key.tag("email-link-code", &format!("{record}|{code}"))
}

/// A code as typed: six digits (spaces around ignored).
pub(crate) fn six_digits(code: &str) -> Option<&str> {
    let code = code.trim();
    (code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())).then_some(code)
}

/// A new binding secret for the browser that asks (its cookie's value).
pub fn new_binding() -> String {
    crate::values::secret::random_token_256()
}

/// Whether `user` may sign in by mail: verified, not disabled, not being deleted.
fn may_sign_in(user: &User) -> bool {
    user.email_verified_at.is_some() && user.disabled_at.is_none() && user.deleted_at.is_none()
}

/// `POST /auth/email-link`: counts the address (3 per 15 minutes, 10 a day by default) and the
/// client, then the same work whatever the address: the account read (a decoy read for an
/// unknown one), the record and the browser's pointer written, one mail job queued. `binding` is
/// the secret the caller gives the asking browser ([`new_binding`]).
pub async fn request(
    auth: &Auth,
    dispatcher: &Dispatcher,
    email: &Email,
    remember: bool,
    meta: &ClientMeta,
    binding: &str,
) -> Result<(), EmailLinkError> {
    let cfg = &auth.config().email_link;
    if !cfg.enabled {
        return Err(EmailLinkError::Disabled);
    }
    let tag = auth.email_tag(email);
    let keys = [
        format!("email-link-address:{tag}"),
        format!("email-link-address-day:{tag}"),
        format!("email-link-client:{}", client_key(meta.ip.as_deref())),
    ];
    let limits = [cfg.per_address[0], cfg.per_address[1], cfg.per_client];
    let counted: Vec<(&str, Limit)> = keys.iter().map(String::as_str).zip(limits).collect();
    auth.limit_all(&counted).await?;
    let stores = auth.stores();
    let user = stores.users.find_by_email(email).await?;
    if user.is_none() {
        // What a known address costs (a user read), so the calls do not tell them apart.
        stores.users.find(&UserId::from_stored("-".into())).await?;
    }
    let expires = auth.now() + LINK_LIFETIME;
    let job = JobPayload::notification(
        SEND_SIGN_IN_LINK,
        serde_json::json!({ "email": email.normalized(), "expires": epoch_seconds(expires) }),
    );
    let link = sha256_hex(token_of(auth.config(), &job.uuid));
    let signs_in = user.as_ref().filter(|u| may_sign_in(u));
    let sealed = auth.config().app_key.seal("email-link-address", email.normalized().as_bytes());
    let record = LinkRecord {
        user_id: signs_in.map(|u| u.id.as_str().to_owned()),
        version: signs_in.map_or(0, |u| u.credentials_version),
        signup: user.is_none() && cfg.signup,
        address: sealed.ok_or_else(|| StoreError::Rejected("the address could not be sealed".into()))?,
        browser: sha256_hex(binding),
        code: code_tag(auth.config(), &link, &code_of(auth.config(), "email-link-code", &job.uuid)),
        remember,
        expires: epoch_seconds(expires),
    };
    let value = serde_json::to_value(&record).map_err(|e| StoreError::Rejected(e.to_string()))?;
    stores.cache.put(&record_key(&link), &value, Some(expires)).await?;
    stores.cache.put(&browser_key(binding), &serde_json::json!({ "link": link }), Some(expires)).await?;
    dispatcher.dispatch(job).await?;
    tracing::info!(event = "email_link_requested", email_tag = %tag, ip = ?meta.ip);
    Ok(())
}

/// What a completed sign-in by mail gave.
#[derive(Debug)]
pub enum Completed {
    /// Signed in (`created`: the account was made now, by sign-up; `remember` as asked).
    Session { user: Box<User>, opened: Opened, created: bool, remember: bool },
    /// The account has a second factor: complete with `POST /two-factor-challenge`.
    SecondFactor(ChallengeToken),
}

/// What the page a mailed link lands on may offer ([`link_state`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Live, and this browser asked for it: a button finishes (a POST; nothing on a GET).
    Ready,
    /// Live, asked for in another browser: type the code there.
    OtherBrowser,
    Invalid,
}

/// Where the link `token` stands for the browser showing `binding`: one read, nothing taken.
pub async fn link_state(auth: &Auth, token: &str, binding: Option<&str>) -> Result<LinkState, StoreError> {
    if !is_token_256(token) {
        return Ok(LinkState::Invalid);
    }
    let Some(value) = auth.stores().cache.get(&record_key(&sha256_hex(token))).await? else {
        return Ok(LinkState::Invalid);
    };
    let Ok(record) = serde_json::from_value::<LinkRecord>(value) else { return Ok(LinkState::Invalid) };
    Ok(match binding {
        Some(b) if constant_time_eq(sha256_hex(b).as_bytes(), record.browser.as_bytes()) => LinkState::Ready,
        _ => LinkState::OtherBrowser,
    })
}

/// `POST /auth/email-link/complete {token}`: the mailed link, in the browser that asked.
pub async fn complete_with_link(
    auth: &Auth,
    token: &str,
    binding: Option<&str>,
    meta: &ClientMeta,
    device_cookie: Option<&str>,
) -> Result<Completed, EmailLinkError> {
    count_completion(auth, meta).await?;
    let binding = binding.filter(|b| is_token_256(b));
    if !is_token_256(token) {
        return Err(EmailLinkError::Invalid);
    }
    let link = sha256_hex(token);
    let mark = crate::values::secret::random_token_256();
    let (record, _) = open_record(auth, &link, &mark).await?;
    if !binding.is_some_and(|b| constant_time_eq(sha256_hex(b).as_bytes(), record.browser.as_bytes())) {
        tracing::info!(event = "email_link_refused", reason = "another browser", ip = ?meta.ip);
        return Err(EmailLinkError::OtherBrowser);
    }
    finish(auth, &link, record, &mark, meta, device_cookie).await
}

/// `POST /auth/email-link/complete {code}`: the mailed code, in the browser that asked (found
/// through its binding); at most [`MAX_CODE_ATTEMPTS`] per request.
pub async fn complete_with_code(
    auth: &Auth,
    code: &str,
    binding: Option<&str>,
    meta: &ClientMeta,
    device_cookie: Option<&str>,
) -> Result<Completed, EmailLinkError> {
    count_completion(auth, meta).await?;
    let (Some(binding), Some(code)) = (binding.filter(|b| is_token_256(b)), six_digits(code)) else {
        return Err(EmailLinkError::Invalid);
    };
    let stores = auth.stores();
    let pointer = stores.cache.get(&browser_key(binding)).await?.ok_or(EmailLinkError::Invalid)?;
    let link = pointer.get("link").and_then(|l| l.as_str()).ok_or(EmailLinkError::Invalid)?.to_owned();
    let mark = crate::values::secret::random_token_256();
    let (record, key) = open_record(auth, &link, &mark).await?;
    if !constant_time_eq(sha256_hex(binding).as_bytes(), record.browser.as_bytes()) {
        return Err(EmailLinkError::Invalid);
    }
    let end = from_epoch_seconds(record.expires).unwrap_or_else(|| auth.now());
    if let Err(e) = auth.limit_until(&format!("{key}:attempts"), MAX_CODE_ATTEMPTS, end).await {
        if !matches!(e, AuthError::Throttled { .. }) {
            return Err(e.into());
        }
        // Its codes are spent: the request is over.
        stores.cache.forget(&key).await?;
        stores.cache.forget(&browser_key(binding)).await?;
        tracing::warn!(event = "email_link_refused", reason = "codes spent", ip = ?meta.ip);
        return Err(EmailLinkError::Invalid);
    }
    if !constant_time_eq(code_tag(auth.config(), &link, code).as_bytes(), record.code.as_bytes()) {
        tracing::info!(event = "email_link_refused", reason = "wrong code", ip = ?meta.ip);
        return Err(EmailLinkError::Invalid);
    }
    let completed = finish(auth, &link, record, &mark, meta, device_cookie).await?;
    if let Err(e) = stores.cache.forget(&browser_key(binding)).await {
        tracing::warn!(event = "taken_value_not_closed", error = %e);
    }
    Ok(completed)
}

async fn count_completion(auth: &Auth, meta: &ClientMeta) -> Result<(), EmailLinkError> {
    if !auth.config().email_link.enabled {
        return Err(EmailLinkError::Disabled);
    }
    let client = client_key(meta.ip.as_deref());
    Ok(auth.limit(&format!("email-link-complete:{client}"), COMPLETIONS_PER_CLIENT).await?)
}

/// The live, untaken record of `link` as the taker `mark` finds it, and its key.
async fn open_record(auth: &Auth, link: &str, mark: &str) -> Result<(LinkRecord, String), EmailLinkError> {
    let key = record_key(link);
    let found = auth.stores().cache.get_once(&key, mark).await?.ok_or(EmailLinkError::Invalid)?;
    let record = serde_json::from_value(found.value().clone()).map_err(|_| EmailLinkError::Invalid)?;
    Ok((record, key))
}

/// A proven request: the account it names (still as it was asked for) or, for a sign-up, a new
/// one; the record taken once (one winner); then the second factor's challenge or a session.
async fn finish(
    auth: &Auth,
    link: &str,
    record: LinkRecord,
    mark: &str,
    meta: &ClientMeta,
    device_cookie: Option<&str>,
) -> Result<Completed, EmailLinkError> {
    let stores = auth.stores();
    let key = record_key(link);
    let address = auth
        .config()
        .app_key
        .open("email-link-address", &record.address)
        .and_then(|a| Email::parse(&String::from_utf8(a).ok()?).ok())
        .ok_or(EmailLinkError::Invalid)?;
    let user = match record.user_id.as_deref().and_then(UserId::parse) {
        Some(id) => {
            let user = stores.users.find(&id).await?.ok_or(EmailLinkError::Invalid)?;
            let same = user.credentials_version == record.version && user.email.normalized() == address.normalized();
            if !same || !may_sign_in(&user) {
                tracing::info!(event = "email_link_refused", reason = "account changed", user_id = %user.id);
                return Err(EmailLinkError::Invalid);
            }
            Some(user)
        }
        None if record.signup && auth.config().email_link.signup => None,
        None => return Err(EmailLinkError::Invalid),
    };
    let end = from_epoch_seconds(record.expires).unwrap_or_else(|| auth.now());
    stores.cache.take_once(&key, mark, end).await?.ok_or(EmailLinkError::Invalid)?;
    let taken = Taken::of(key);
    let (user, created) = match user {
        Some(user) => (user, false),
        None => (sign_up(auth, address, meta).await?, true),
    };
    let completed = if user.two_factor.enabled() {
        let pending = Pending::Session { remember: record.remember };
        Completed::SecondFactor(challenge(auth, &user, pending, meta, "email_link").await?)
    } else {
        // A sign-up's first session: its before-sign-up hook decided (one hook per request).
        let via = (SessionMethod::EmailLink, !created);
        let opened = auth.open_session(&user, record.remember, meta, device_cookie, via).await?;
        tracing::info!(event = "email_link_signed_in", user_id = %user.id, created, ip = ?meta.ip);
        Completed::Session { user: Box::new(user), opened, created, remember: record.remember }
    };
    taken.close(stores.cache.as_ref()).await;
    Ok(completed)
}

/// An account for `address`, made by a completed sign-up link: no password
/// ([`PasswordHash::unusable`]), the address verified (the mail proved it). `Invalid` when the
/// address was taken meanwhile (whoever took it keeps it: a link never signs into an account
/// made after it was asked for).
async fn sign_up(auth: &Auth, address: Email, meta: &ClientMeta) -> Result<User, EmailLinkError> {
    let local = address.as_str().rsplit_once('@').map_or("", |(l, _)| l).to_owned();
    let name = DisplayName::parse(&local).map(DisplayName::into_string).unwrap_or_else(|_| "New user".to_owned());
    auth.before_sign_up(&address, &name, "email_link", None, meta).await?;
    let now = auth.now();
    let mut user = User::new(name, address, PasswordHash::unusable(), now);
    user.email_verified_at = Some(now);
    let mark = auth.promise_registered(&user, crate::tables::events::RegistrationMethod::EmailLink, None, meta).await?;
    let user = user.with_events(&[mark]);
    match auth.stores().users.create(&user).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => return Err(EmailLinkError::Invalid),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(event = "registered", by = "email_link", user_id = %user.id, email_tag = %auth.email_tag(&user.email), ip = ?meta.ip);
    Ok(user)
}

/// The job behind [`request`]: reads the account now and mails the link and the code to one
/// that may sign in this way (or, with sign-up on, to an address no account holds); an account
/// whose address is not verified is told how to get in instead; nothing else is mailed. Security
/// mail: no text a user chose.
pub struct SendSignInLink {
    pub config: Arc<Config>,
    pub mailer: Arc<dyn Mailer>,
}

#[async_trait]
impl JobHandler for SendSignInLink {
    async fn handle(&self, job: &JobPayload, ctx: &JobContext) -> Result<(), JobError> {
        let email = crate::services::password_broker::email_of(job)?;
        let expires = job.data.get("expires").and_then(serde_json::Value::as_i64).unwrap_or_default();
        let now = ctx.stores.clock.now();
        let tag = self.config.app_key.email_tag(&email);
        if epoch_seconds(now) >= expires {
            tracing::info!(event = "email_link_skipped", reason = "expired", email_tag = %tag);
            return Ok(());
        }
        let user = ctx.stores.users.find_by_email(&email).await?;
        let cfg = &self.config.email_link;
        let (subject, text) = match &user {
            Some(u) if may_sign_in(u) => (cfg.subject.as_str(), self.link_text(job, expires, now, false)),
            Some(u) if u.disabled_at.is_none() && u.deleted_at.is_none() => {
                (UNVERIFIED_SUBJECT, UNVERIFIED_TEXT.to_owned())
            }
            Some(_) => return Ok(()),
            None if cfg.signup => (cfg.subject.as_str(), self.link_text(job, expires, now, true)),
            None => {
                tracing::info!(event = "email_link_skipped", reason = "unknown email", email_tag = %tag);
                return Ok(());
            }
        };
        let to = user.map_or(email, |u| u.email);
        self.mailer.send(&Mail::new(&to, subject, text)).await.map_err(crate::queue::mail_error)?;
        tracing::info!(event = "email_link_sent", email_tag = %tag);
        Ok(())
    }
}

/// What an account whose address is not verified is mailed instead of a link.
const UNVERIFIED_SUBJECT: &str = "About your sign-in request";
const UNVERIFIED_TEXT: &str = "Hello,\n\nSomeone asked for a sign-in link for this address. We did not send one: the address is not verified on its account yet.\n\nSign in with your password and verify the address, or choose a new password with \"Forgot your password?\" (which verifies it too). Then sign-in links work.\n\nIf you did not ask, you can ignore this email.\n";

impl SendSignInLink {
    fn link_text(&self, job: &JobPayload, expires: i64, now: Timestamp, signup: bool) -> String {
        let link = self.config.email_link.url_template.replace("{token}", &token_of(&self.config, &job.uuid));
        let code = code_of(&self.config, "email-link-code", &job.uuid);
        let minutes = ((expires - epoch_seconds(now)) / 60).max(1);
        let what = if signup { "create your account" } else { "sign in" };
        format!(
            "Hello,\n\nTo {what}, open this link in the browser where you asked for it:\n\n{link}\n\nOr type this code there: {code}\n\nThe link and the code work once, for the next {minutes} minutes, and only in that browser: if you open the link elsewhere, type the code where you asked instead. If you did not ask, ignore this email: no one can {what} without it.\n"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_differ_by_purpose_and_job() {
        let config = Config::from_map(&Default::default()).unwrap();
        let a = code_of(&config, "email-link-code", "job-a");
        assert!(six_digits(&a).is_some(), "{a}");
        assert_eq!(a, code_of(&config, "email-link-code", "job-a"), "a rerun of the job mails the same code");
        assert_ne!(token_of(&config, "job-a"), token_of(&config, "job-b"));
        assert!(is_token_256(&token_of(&config, "job-a")));
        assert_eq!(six_digits(" 012345 "), Some("012345"));
        for bad in ["12345", "1234567", "12a456", "", "١٢٣٤٥٦"] {
            assert_eq!(six_digits(bad), None, "{bad}");
        }
    }
}
