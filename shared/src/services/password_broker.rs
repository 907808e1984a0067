//! Laravel's password broker, closing its holes: the request for a link answers the same whatever
//! the email (the lookup, throttle, token and mail happen in a queued job), tokens are stored as
//! hashes and consumed atomically, and a reset revokes every session and token of the user.

use crate::config::Config;
use crate::mail::{Mail, Mailer};
use crate::queue::mail_error;
use crate::queue::{DispatchError, Dispatcher, JobContext, JobError, JobHandler, Worker};
use crate::services::auth::{Auth, AuthError, ClientMeta};
use crate::services::revocation::revoke_or_queue;
use crate::tables::credentials::reasons;
use crate::tables::events::{
    EventBody, Revoked, TwoFactorBy, TwoFactorDisabled, UserPasswordChanged, UserPasswordReset,
};
use crate::tables::jobs::JobPayload;
use crate::tables::password_reset_tokens::{PlainResetToken, ResetRecord};
use crate::tables::sessions::{SessionId, SessionRecord};
use crate::tables::users::{CredentialChange, User};
use crate::throttle::{Limit, RateLimiter, client_key};
use crate::values::clock::Timestamp;
use crate::values::email::Email;
use crate::values::error::StoreError;
use crate::values::password::PasswordAttempt;
use crate::values::password::{HashError, NewPassword};
use async_trait::async_trait;
use std::sync::Arc;
use thiserror::Error;

pub const SEND_RESET_LINK: &str = "SendPasswordResetLink";
pub const SEND_PASSWORD_CHANGED: &str = "SendPasswordChangedNotification";

#[derive(Debug, Error)]
pub enum ResetError {
    /// Unknown, expired, used, replaced or mismatched: one answer for all.
    #[error("this password reset token is invalid")]
    InvalidToken,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    Dispatch(#[from] DispatchError),
    /// The client asked too often ([`AuthError::Throttled`]).
    #[error(transparent)]
    Auth(#[from] AuthError),
}

/// What became of a request for a reset link. The client is answered the same either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRequest {
    /// The job that may mail a link is queued.
    Queued,
    /// Nothing queued: a link was asked for this address earlier in the throttle window (its
    /// job mails it, and a second job would mail nothing), or the address had its day's links.
    Held,
}

#[derive(Debug, Error)]
pub enum RequestLinkError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Dispatch(#[from] DispatchError),
    /// The client asked too often ([`AuthError::Throttled`]).
    #[error(transparent)]
    Auth(#[from] AuthError),
}

/// A mail job to `email` (the address travels in the job: the account may be gone by then).
pub(crate) fn mail_job(job: &str, email: &Email) -> JobPayload {
    JobPayload::notification(job, serde_json::json!({ "email": email.normalized() }))
}

#[derive(Clone)]
pub struct PasswordBroker {
    pub auth: Auth,
    pub dispatcher: Dispatcher,
}

impl PasswordBroker {
    pub fn new(auth: Auth, dispatcher: Dispatcher) -> Self {
        Self { auth, dispatcher }
    }

    fn now(&self) -> Timestamp {
        self.auth.now()
    }

    /// `POST /forgot-password`: counted per client first (`GATEHOUSE_RESET_PER_IP_PER_MINUTE`),
    /// then [`PasswordBroker::request_link`].
    pub async fn forgot_password(&self, email: &Email, meta: &ClientMeta) -> Result<LinkRequest, RequestLinkError> {
        let client = client_key(meta.ip.as_deref());
        let limit = Limit::per_minute(self.auth.config().reset.per_ip_per_minute);
        self.auth.limit(&format!("forgot-password:{client}"), limit).await?;
        self.request_link(email).await
    }

    /// `POST /reset-password`: counted per client before the token is looked at or a password
    /// hashed, then [`PasswordBroker::reset`] with the token as typed (one that is no reset
    /// token's shape is an invalid token, as every other).
    pub async fn reset_password(
        &self,
        email: &Email,
        token: &str,
        password: NewPassword,
        meta: &ClientMeta,
    ) -> Result<User, ResetError> {
        let client = client_key(meta.ip.as_deref());
        self.auth.limit(&format!("reset-password:{client}"), self.auth.config().limits.reset_per_client).await?;
        let token = PlainResetToken::parse(token).ok_or(ResetError::InvalidToken)?;
        self.reset(email, &token, password).await
    }

    /// Queues the job that may mail a link: at most `GATEHOUSE_RESET_MAILS_PER_DAY` a day per
    /// address, from any number of clients. Only the first request of each throttle window
    /// (`GATEHOUSE_RESET_THROTTLE_SECONDS`, the job's own throttle) counts towards the day, so
    /// asking again at once spends none of the owner's links; the two counters are one
    /// all-or-none write. The same work whether or not the account exists: nothing about it is
    /// read here, and the counters are keyed on a tag of the address.
    pub async fn request_link(&self, email: &Email) -> Result<LinkRequest, RequestLinkError> {
        let cfg = &self.auth.config().reset;
        let stores = self.auth.stores();
        let tag = self.auth.email_tag(email);
        let (window_key, day_key) = (format!("reset-link:{tag}"), format!("reset-link-day:{tag}"));
        let window = (cfg.throttle > chrono::Duration::zero()).then_some(Limit { max: 1, window: cfg.throttle });
        let mut limits = vec![(day_key.as_str(), Limit::per_day(cfg.mails_per_day))];
        limits.extend(window.map(|w| (window_key.as_str(), w)));
        let limiter = RateLimiter::new(stores.cache.clone(), stores.clock.clone());
        let held = match limiter.attempt_all(&limits).await {
            Ok(held) => held,
            Err(e) => {
                // The counters may have landed with their answer lost: the client's retry must not
                // be held by this attempt's own window (a 202 with nothing queued).
                if let Some(w) = window
                    && let Err(c) = limiter.clear(&window_key, w).await
                {
                    tracing::warn!(event = "reset_link_window_kept", error = %c);
                }
                return Err(e.into());
            }
        };
        if held.is_some() {
            tracing::info!(event = "reset_link_held", email_tag = %tag);
            return Ok(LinkRequest::Held);
        }
        if let Err(e) = self.dispatcher.dispatch(mail_job(SEND_RESET_LINK, email)).await {
            // Nothing queued: the client's retry must find the window free (the day stays counted).
            if let Some(w) = window
                && let Err(c) = limiter.clear(&window_key, w).await
            {
                tracing::warn!(event = "reset_link_window_kept", error = %c);
            }
            return Err(e.into());
        }
        Ok(LinkRequest::Queued)
    }

    /// The address a mailed reset link is for, once its token checks out: the live token of
    /// `email` is `token` (compared in constant time) and the account is there. `None` for
    /// anything else. One read of the token, one of the user; nothing written.
    pub async fn link_address(&self, email: &Email, token: &PlainResetToken) -> Result<Option<Email>, StoreError> {
        let stores = self.auth.stores();
        let Some(record) = stores.password_reset_tokens.find(email).await? else {
            return Ok(None);
        };
        if !crate::values::secret::constant_time_eq(record.token_hash.as_bytes(), token.hash().as_bytes()) {
            return Ok(None);
        }
        Ok(stores.users.find_by_email(email).await?.map(|u| u.email))
    }

    /// Resets the password with a mailed token. The token is checked and consumed (the atomic
    /// gate: of racing resets exactly one gets past it); the new hash and a fresh remember token
    /// are written by compare-and-swap on the user's credentials version, which moves on — retried
    /// on a fresh read if anything else (a rehash, "log out other devices") wrote in between, so
    /// the reset always wins and never writes over a newer state with a stale one. From that
    /// write on, nothing verified against the old password can be issued; then every registered
    /// credential (sessions, tokens, handoffs, cross-app sessions) is revoked from the register,
    /// which is read consistently. A "password changed" mail is queued. Nobody is logged in.
    pub async fn reset(
        &self,
        email: &Email,
        token: &PlainResetToken,
        password: NewPassword,
    ) -> Result<User, ResetError> {
        let stores = self.auth.stores();
        let record = match stores.password_reset_tokens.find(email).await? {
            Some(record) => record,
            None => match self.finish_retry(email, token, &password).await? {
                Retried::Done(user) => return Ok(*user),
                Retried::GivenBack => {
                    stores.password_reset_tokens.find(email).await?.ok_or(ResetError::InvalidToken)?
                }
            },
        };
        if !crate::values::secret::constant_time_eq(record.token_hash.as_bytes(), token.hash().as_bytes()) {
            return Err(ResetError::InvalidToken);
        }
        let Some(user) = stores.users.find_by_email(email).await? else {
            return Err(ResetError::InvalidToken);
        };
        let hash = self.auth.hasher().hash_blocking(password).await?;
        // The notice first, carried by the password's write: it goes out once the password has
        // changed, whatever fails after, and never for a reset that did not change it.
        let notice = self.dispatcher.promise(&user.id, mail_job(SEND_PASSWORD_CHANGED, email)).await?;
        let Some(spend) =
            stores.password_reset_tokens.consume(email, &token.hash(), self.now(), user.credentials_version).await?
        else {
            return Err(ResetError::InvalidToken);
        };
        let user = match self.reset_to(email, &hash, &notice).await {
            Ok(user) => user,
            Err(e) => {
                // Spent, but did the password change? Only when a fresh read shows it did not
                // (this reset's hash, salted, is in no other write) does the link work again, so
                // the client's retry (after the 503 it gets) can finish the reset instead of
                // finding the link spent. A write that landed with its answer lost, or a read that
                // fails too, keeps the link spent: single use comes first (and the retry is then
                // recognised by `finish_retry`).
                let unchanged = matches!(
                    stores.users.find_by_email(email).await,
                    Ok(Some(u)) if u.password_hash.as_str() != hash.as_str()
                );
                if unchanged && let Err(r) = stores.password_reset_tokens.restore(email, &spend).await {
                    tracing::warn!(event = "reset_token_not_restored", error = %r);
                }
                return Err(e);
            }
        };
        // The spent token stays, marked spent, until it expires: what recognises this reset's
        // retry should its answer be lost. (A give-back of an earlier attempt landing late finds
        // another spend's mark on it and gives nothing back.)
        // At once, or queued when a store fails part way: the old password's sessions and tokens
        // never outlive the reset because of an outage (`revocation::revoke_or_queue`).
        revoke_or_queue(stores, &self.dispatcher, &user.id, None, reasons::PASSWORD_RESET).await?;
        tracing::info!(event = "password_reset", user_id = %user.id, email_tag = %self.auth.email_tag(email));
        Ok(user)
    }

    /// A reset whose token is already spent, by a reset within [`RESET_RETRY_WINDOW`] (the token
    /// given is the one spent, compared in constant time): is this that reset asked again, after
    /// an answer that was lost (the client was told 503, or heard nothing)? One hash
    /// verification, after the route's limits, tells:
    /// - the password given is now the account's: the reset landed. `Done`, and nothing is
    ///   written: the revocation of what was issued before the spend is queued again (idempotent:
    ///   a job ends only what the register lists from before then, so what the owner signed in
    ///   with since stays), and the "password changed" notice was promised by the first
    ///   attempt's own write.
    /// - it is not, and the credentials version is still the one the spend was made under: the
    ///   reset never landed (its write failed for good, and so did giving the token back). Once no
    ///   request that began before could still be running (`GATEHOUSE_NOTICE_DELAY_SECONDS`
    ///   after the spend; until then 503, ask again), the spend is given back (`GivenBack`) and
    ///   this request resets with the token as a first attempt would; of racing retries the
    ///   token's single spend still lets one through.
    ///
    /// Anything else is the link's one answer, `InvalidToken`. Why this cannot be abused: it
    /// answers only someone holding the mailed link (256 bits, checked against its hash), who
    /// could have reset with it anyway; `Done` says nothing they did not say, signs no one in
    /// (a reset never does) and changes nothing; ten minutes after the spend the link is as
    /// dead as before.
    async fn finish_retry(
        &self,
        email: &Email,
        token: &PlainResetToken,
        password: &NewPassword,
    ) -> Result<Retried, ResetError> {
        let stores = self.auth.stores();
        let spent = stores.password_reset_tokens.find_spent(email).await?.ok_or(ResetError::InvalidToken)?;
        if !crate::values::secret::constant_time_eq(spent.token_hash.as_bytes(), token.hash().as_bytes())
            || self.now() - spent.spent_at > RESET_RETRY_WINDOW
        {
            return Err(ResetError::InvalidToken);
        }
        let user = stores.users.find_by_email(email).await?.ok_or(ResetError::InvalidToken)?;
        let verified = self.auth.hasher().verify_blocking(password.as_attempt(), user.password_hash.clone()).await;
        if matches!(verified, crate::values::password::Verification::Valid { .. }) {
            crate::services::revocation::queue_revocation(
                &self.dispatcher,
                &user.id,
                spent.spent_at,
                reasons::PASSWORD_RESET,
            )
            .await?;
            tracing::info!(event = "password_reset_retried", user_id = %user.id, email_tag = %self.auth.email_tag(email));
            return Ok(Retried::Done(Box::new(user)));
        }
        if user.credentials_version != spent.version {
            return Err(ResetError::InvalidToken);
        }
        // Unmoved, but the spend's own write could still be on its way (a slow attempt lands
        // within a request's life): until no request that began before could still be running,
        // the answer is "ask again shortly", never a second reset racing the first.
        let settled = self.auth.config().notice_delay;
        if (self.now() - spent.spent_at).to_std().unwrap_or_default() < settled {
            return Err(StoreError::Unavailable("the first attempt of this reset may still be landing".into()).into());
        }
        stores.password_reset_tokens.restore(email, &spent.mark).await?;
        tracing::info!(event = "reset_token_given_back", user_id = %user.id);
        Ok(Retried::GivenBack)
    }
}

/// What [`PasswordBroker::finish_retry`] found.
enum Retried {
    /// The reset had landed: its answer.
    Done(Box<User>),
    /// It had not: the token is live again.
    GivenBack,
}

/// How long after a reset spent its token a retry of it is still answered as the reset was
/// ([`PasswordBroker::reset`]): long enough for a client's retries after a 503, short enough that
/// a link found in a mailbox later is simply spent.
pub const RESET_RETRY_WINDOW: chrono::Duration = chrono::Duration::minutes(10);

impl PasswordBroker {
    /// The reset's password write: a compare-and-swap on the credentials version, re-read and
    /// retried when another change moved it (the reset wins every race).
    async fn reset_to(
        &self,
        email: &Email,
        hash: &crate::values::password::PasswordHash,
        notice: &crate::tables::users::NoticeMark,
    ) -> Result<User, ResetError> {
        let stores = self.auth.stores();
        for _ in 0..MAX_CAS_ATTEMPTS {
            let current = stores.users.find_by_email(email).await?.ok_or(ResetError::InvalidToken)?;
            // Only while the user still has the address the token was mailed to. `find_by_email`
            // reads the reservation, then the user: an email change committing between the two
            // returns the user at its new address, which this refuses; one committing after the
            // read fails the write's `email = :e` condition, and the next read finds no user.
            if current.email.normalized() != email.normalized() {
                return Err(ResetError::InvalidToken);
            }
            // Its events, promised for this attempt's write (one refused by a race announces
            // nothing; the next attempt promises its own): the reset, and the second factor it
            // removes from an account whose address was never verified.
            let clears_two_factor = current.email_verified_at.is_none();
            let mut bodies = vec![EventBody::UserPasswordReset(UserPasswordReset { revoked: Revoked::All })];
            if clears_two_factor && current.two_factor.enabled() {
                bodies.push(EventBody::TwoFactorDisabled(TwoFactorDisabled { by: TwoFactorBy::Reset }));
            }
            let mut events = Vec::with_capacity(bodies.len());
            for body in bodies {
                events.push(crate::services::events::promise(&self.dispatcher, &current.id, body).await?);
            }
            let change = CredentialChange {
                password: Some(hash),
                revoke: true,
                while_email: Some(&current.email),
                disable: None,
                // A reset is how an owner takes a compromised account back: a passkey an intruder
                // added would otherwise still sign in alone. The owner adds their own again. In
                // the password's write, so no failure after it can leave one behind.
                clear_passkeys: Some(&current.passkeys),
                // Never verified: whoever registered the address may have been someone else,
                // whose second factor would lock the owner out after this reset. The reset
                // proves the address; every factor goes with the password's write.
                clear_two_factor: clears_two_factor,
                delete: false,
                notices: std::slice::from_ref(notice),
                events: &events,
                by: None,
            };
            if stores
                .users
                .change_credentials(&current.id, current.credentials_version, change, self.now())
                .await?
                .is_some()
            {
                return Ok(current);
            }
        }
        Err(StoreError::Unavailable("users: the password kept changing under the reset; ask for a new link".into())
            .into())
    }

    /// Fortify's `UpdateUserPassword`: the current password is checked (throttled as a password
    /// check), the new one is held to the registration policy, and the change is one
    /// compare-and-swap on the credentials version the check read (a racing reset or change wins
    /// or loses whole: `CredentialsChanged`). The "password changed" mail is queued as soon as
    /// the new password is written, before anything that could still fail (once more on a
    /// failed send; logged if both fail). Then every other session and every token is revoked
    /// and the current session continues under a new id (returned).
    pub async fn change_password(
        &self,
        user: &User,
        current: &SessionRecord,
        attempt: PasswordAttempt,
        new: NewPassword,
        meta: &ClientMeta,
    ) -> Result<SessionId, AuthError> {
        crate::services::auth::refuse_derived(current)?;
        if !self.auth.verify_password(user, attempt, meta).await? {
            return Err(AuthError::InvalidCredentials);
        }
        let hash = self.auth.hasher().hash_blocking(new).await?;
        let notice = vec![mail_job(SEND_PASSWORD_CHANGED, &user.email)];
        let all = crate::services::auth::EndPasskeys::All;
        let changed = EventBody::UserPasswordChanged(UserPasswordChanged { revoked: Revoked::AllButOne });
        let version = self.auth.move_credentials(user, Some(&hash), all, Some(current), notice, vec![changed]).await?;
        tracing::info!(event = "password_changed", user_id = %user.id);
        self.auth.keep_only(user, current, version, reasons::PASSWORD_CHANGED, meta).await
    }
}

/// How often a credential change re-reads and retries when another write moved the version.
const MAX_CAS_ATTEMPTS: usize = 8;

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The address a [`mail_job`] is for.
pub(crate) fn email_of(job: &JobPayload) -> Result<Email, JobError> {
    let raw =
        job.data.get("email").and_then(|v| v.as_str()).ok_or_else(|| JobError::permanent("job data has no email"))?;
    Email::parse(raw).map_err(|e| JobError::permanent(format!("job data email: {e}")))
}

/// The job behind `POST /forgot-password`: resolves the account, throttles (one mail per email
/// per window), mints the token and mails the link built from configuration. Security mail
/// carries no text a user chose (not even the name): an attacker registering with a victim's
/// address must not be able to write into a genuine mail.
pub struct SendResetLink {
    pub config: Arc<Config>,
    pub mailer: Arc<dyn Mailer>,
}

#[async_trait]
impl JobHandler for SendResetLink {
    async fn handle(&self, job: &JobPayload, ctx: &JobContext) -> Result<(), JobError> {
        let email = email_of(job)?;
        let Some(user) = ctx.stores.users.find_by_email(&email).await? else {
            tracing::info!(event = "reset_link_skipped", reason = "unknown email", email_tag = %self.config.app_key.email_tag(&email));
            return Ok(());
        };
        let now = ctx.stores.clock.now();
        let token = job_token(&self.config.app_key, &job.uuid, &user.id, user.credentials_version);
        let record = ResetRecord {
            email: user.email.clone(),
            token_hash: token.hash(),
            created_at: now,
            expires_at: now + self.config.reset.expire,
        };
        if !ctx.stores.password_reset_tokens.put_unless_throttled(&record, now - self.config.reset.throttle).await? {
            tracing::info!(event = "reset_link_skipped", reason = "throttled", user_id = %user.id);
            return Ok(());
        }
        let link = self
            .config
            .reset
            .url_template
            .replace("{token}", token.expose())
            .replace("{email}", &url_encode(&user.email.normalized()));
        let minutes = self.config.reset.expire.num_minutes();
        let mail = Mail {
            to: user.email.as_str().to_owned(),
            subject: self.config.reset.subject.clone(),
            text: format!(
                "Hello,\n\nYou are receiving this email because we received a password reset request for your account.\n\nReset your password: {link}\n\nThis link expires in {minutes} minutes. If you did not request a reset, you can ignore this email.\n"
            ),
        };
        if let Err(e) = self.mailer.send(&mail).await {
            // Forget the token, so the retry is not throttled by a token nobody received.
            ctx.stores.password_reset_tokens.delete(&user.email).await?;
            return Err(mail_error(e));
        }
        tracing::info!(event = "reset_link_sent", user_id = %user.id);
        Ok(())
    }
}

/// Tells the user their password was changed.
pub struct SendPasswordChanged {
    pub mailer: Arc<dyn Mailer>,
}

#[async_trait]
impl JobHandler for SendPasswordChanged {
    async fn handle(&self, job: &JobPayload, ctx: &JobContext) -> Result<(), JobError> {
        let email = email_of(job)?;
        let Some(user) = ctx.stores.users.find_by_email(&email).await? else {
            return Ok(());
        };
        let text = "Hello,\n\nThe password of your account was just changed, and every session and access token was signed out.\n\nIf this was not you, reset your password at once and contact support.\n";
        let mail = Mail::new(&user.email, "Your password was changed", text);
        self.mailer.send(&mail).await.map_err(mail_error)
    }
}

/// Registers the password broker's jobs with a worker.
pub fn register_jobs(worker: &mut Worker, config: Arc<Config>, mailer: Arc<dyn Mailer>) {
    worker.register(SEND_RESET_LINK, SendResetLink { config, mailer: mailer.clone() });
    worker.register(SEND_PASSWORD_CHANGED, SendPasswordChanged { mailer });
}

/// The token the reset-link job `job_uuid` mails to `user` while its credentials version is
/// `version`: 256 bits of MAC under the app key. A run of the job that is repeated (after a
/// crash, or a store answer lost after its write landed) mints the very token the earlier run
/// stored, so its write is not taken for a throttled second request and the mail is not
/// dropped — yet once that token was used (a reset moves the version), a rerun, or an
/// operator's `queue:retry` days later, mints another: a used link never works again.
/// Computing it takes the app key as well as the job's uuid (which travels in the message).
fn job_token(
    key: &crate::keys::AppKey,
    job_uuid: &str,
    user: &crate::tables::users::UserId,
    version: u64,
) -> PlainResetToken {
    PlainResetToken::from_mac(&key.mac("reset-token", format!("{job_uuid}|{user}|{version}").as_bytes()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn url_encoding_keeps_unreserved_characters_only() {
        assert_eq!(super::url_encode("a.b+c@x-y.com"), "a.b%2Bc%40x-y.com");
    }
}
