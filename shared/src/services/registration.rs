//! The registration flow (`POST /register`, the register page): the account and its first session
//! ([`Auth::register`]), then the mail with the verification link.

use crate::queue::Dispatcher;
use crate::services::auth::sessions::{Announce, SessionGrant};
use crate::services::auth::{Auth, AuthError, ClientMeta};
use crate::services::email_verification::registration_job;
use crate::services::events;
use crate::tables::events::SessionMethod;
use crate::tables::events::{EventBody, RegistrationMethod, UserRegistered};
use crate::tables::sessions::SessionId;
use crate::tables::users::EventMark;
use crate::tables::users::{DisplayName, User};
use crate::throttle::client_key;
use crate::values::email::Email;
use crate::values::error::StoreError;
use crate::values::password::{NewPassword, PasswordAttempt};

/// Registers `email` and opens its first session, then queues the verification mail. The account
/// exists whether or not the mail could be queued (a link that could not be is one resend away);
/// a retry of a registration whose answer was lost is answered as the first attempt was, and
/// queues the same job again, which mails once.
pub async fn register(
    auth: &Auth,
    dispatcher: &Dispatcher,
    name: DisplayName,
    email: Email,
    password: NewPassword,
    meta: &ClientMeta,
) -> Result<(User, SessionId), AuthError> {
    let (user, session) = auth.register(name, email, password, meta).await?;
    if let Err(e) = dispatcher.dispatch(registration_job(auth.config(), &user.id)).await {
        tracing::error!(event = "verification_mail_not_queued", user_id = %user.id, error = %e);
    }
    Ok((user, session))
}

impl Auth {
    /// The `before_sign_up` hook for an account about to be made at `email` by `method`.
    pub(crate) async fn before_sign_up(
        &self,
        email: &Email,
        name: &str,
        method: &str,
        provider: Option<&str>,
        meta: &ClientMeta,
    ) -> Result<(), AuthError> {
        let from = crate::services::hooks::From { ip: meta.ip.as_deref(), user_agent: meta.user_agent.as_deref() };
        let request = crate::services::hooks::sign_up_request(email, name, method, provider, from);
        self.allowed(crate::services::hooks::HookPoint::BeforeSignUp, request).await.map(|_| ())
    }

    /// Promises `user.registered` for `user`, about to be created (the creation carries the mark,
    /// [`User::with_events`]): a creation refused (the address taken) announces nothing.
    pub(crate) async fn promise_registered(
        &self,
        user: &User,
        method: RegistrationMethod,
        provider: Option<&str>,
        meta: &ClientMeta,
    ) -> Result<EventMark, StoreError> {
        let body = EventBody::UserRegistered(UserRegistered {
            email: Some(user.email.clone()),
            name: Some(user.name.clone()),
            email_verified: user.email_verified_at.is_some(),
            method,
            provider: provider.map(str::to_owned),
            client: events::client(meta),
        });
        events::promise(&self.dispatcher(), &user.id, body).await
    }
}

/// How long after an account was created a registration of its address may still be that
/// registration asked again ([`Auth::register`]): ten minutes, ample for a client asking
/// again after a 503 or an answer lost to a timeout, and short enough that an account left
/// untouched is soon only ever reached through `/login`.
/// How a registration's session is announced: a password sign-up, from a device not seen.
const SIGNED_UP: Announce = Announce { method: SessionMethod::Password, new_device: true };

pub const REGISTER_RETRY_WINDOW: chrono::Duration = chrono::Duration::minutes(10);

impl Auth {
    /// Registers a user and signs them in (`POST /register`).
    ///
    /// An address already taken answers `EmailTaken`, except when the request is the client's
    /// own retry of a registration whose user was written but whose answer never came (the
    /// session's write failed, or the answer was lost): that finishes the registration instead
    /// ([`Auth::register_again`]), so a client that asks again as a 503 invites is not refused
    /// by its own first attempt's success.
    pub async fn register(
        &self,
        name: DisplayName,
        email: Email,
        password: NewPassword,
        meta: &ClientMeta,
    ) -> Result<(User, SessionId), AuthError> {
        // Counted before the hash: registrations (and so "has already been taken" answers) per
        // client are bounded, which bounds enumeration and hashing cost alike.
        let client = client_key(meta.ip.as_deref());
        self.limit(&format!("register:{client}"), self.config().limits.register_per_client).await?;
        // The team's `before_sign_up` hook, before the hash (a refused sign-up costs no argon2).
        self.before_sign_up(&email, name.as_str(), "password", None, meta).await?;
        // Kept for a retry's password check; like the password, never logged.
        let attempt = password.as_attempt();
        let hash = self.hasher().hash_blocking(password).await?;
        let now = self.now();
        let user = User::new(name.into_string(), email, hash, now);
        let mark = self.promise_registered(&user, RegistrationMethod::Password, None, meta).await?;
        let user = user.with_events(&[mark]);
        match self.stores().users.create(&user).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return self.register_again(&user, attempt, meta).await,
            Err(e) => return Err(e.into()),
        }
        // Registering proves nothing for the purpose of adding a lasting way in: no confirmation.
        let grant = SessionGrant { email_verified: Some(false), announce: Some(SIGNED_UP), ..SessionGrant::default() };
        let (id, _) = self.issue_session(&user.id, meta, grant).await?.ok_or(AuthError::CredentialsChanged)?;
        tracing::info!(event = "registered", user_id = %user.id, email_tag = %self.email_tag(&user.email), ip = ?meta.ip);
        Ok((user, id))
    }

    /// A registration whose address is taken (`asked`: the user it tried to write): the
    /// registration asked again, finished with a session of its own, when the account holding the
    /// address is exactly what that registration left — created within
    /// [`REGISTER_RETRY_WINDOW`], under the same name, with its credentials version still
    /// the one it was created with, the address unverified and never moved onto it, no second
    /// factor (not even begun), no passkey, neither disabled nor being deleted — and the
    /// password given verifies against its hash. Anything else answers `EmailTaken`, as an
    /// unrelated registration of a taken address does.
    ///
    /// Why this is no way in: the password is checked by [`Auth::check_password`], the very
    /// check `/login` makes from a device it does not know — counted before the hash against
    /// the same per-(address, client), per-client and per-account limits (and so sharing them
    /// with `/login`), verified in constant time (argon2, or the dummy hash for an account being
    /// deleted), the same cost for every taken address whatever its state, since the state is
    /// judged only after the check: guessing through `/register` is no cheaper than through
    /// `/login`, and counts against the same budget. Whoever knows the address and the
    /// password of an account this young and untouched can sign in through `/login` anyway, and
    /// what a retry grants is exactly what such a login grants: a session under the current
    /// credentials version, no password confirmation, the address unverified. It confirms no
    /// more about the account than a login would either (a wrong guess, or any account not in
    /// that state, gets the same answer as before).
    ///
    /// The handler queues the verification mail again after a retry: a second link to the same
    /// address, which is harmless (either verifies it, once).
    async fn register_again(
        &self,
        asked: &User,
        attempt: PasswordAttempt,
        meta: &ClientMeta,
    ) -> Result<(User, SessionId), AuthError> {
        let found = match self.check_password(&asked.email, attempt, meta, None).await {
            Ok(found) => found,
            // A wrong password, an account being deleted or disabled: taken, as ever.
            Err(AuthError::InvalidCredentials | AuthError::AccountDisabled) => return Err(AuthError::EmailTaken),
            Err(e) => return Err(e),
        };
        if !Self::left_by_registration(&found, asked) {
            return Err(AuthError::EmailTaken);
        }
        // Issued conditionally on the version read: a change landing meanwhile (a reset, "log out
        // other devices") means the account is no longer as registration left it.
        let grant = SessionGrant {
            credentials_version: found.credentials_version,
            email_verified: Some(false),
            announce: Some(SIGNED_UP),
            ..SessionGrant::default()
        };
        let (id, _) = self.issue_session(&found.id, meta, grant).await?.ok_or(AuthError::EmailTaken)?;
        tracing::info!(event = "registration_retried", user_id = %found.id, email_tag = %self.email_tag(&found.email), ip = ?meta.ip);
        Ok((found, id))
    }

    /// Whether `found`, the account holding the address, is still exactly what registering
    /// `asked` (the same address, now) would have left: see [`Auth::register_again`].
    fn left_by_registration(found: &User, asked: &User) -> bool {
        let age = asked.created_at.signed_duration_since(found.created_at);
        age <= REGISTER_RETRY_WINDOW
            && found.name == asked.name
            && found.credentials_version == asked.credentials_version
            && found.email_verified_at.is_none()
            && found.email_changed_from.is_none()
            && found.two_factor == asked.two_factor
            && found.passkeys.is_empty()
            && found.disabled_at.is_none()
            && found.deleted_at.is_none()
    }
}
