//! Laravel's web guard: register, log in, log out, list and end sessions — with NIST password
//! rules, argon2id off the async executor, throttling that never locks an account for good, and
//! an unknown email costing exactly what a wrong password costs.

pub mod limits;
pub mod password_check;
pub mod rotation;
pub mod sessions;

use crate::config::Config;
use crate::services::access::Access;
use crate::stores::Stores;
use crate::tables::sessions::SessionRecord;
use crate::tables::users::UserId;
use crate::throttle::RateLimiter;
use crate::values::clock::Timestamp;
use crate::values::email::Email;
use crate::values::error::StoreError;
use crate::values::password::{HashError, PasswordHash, PasswordHasher, PasswordPolicy};
use thiserror::Error;

/// The shipped common-password list (see `shared/data/README.md`).
pub const COMMON_PASSWORDS: &str = include_str!("../../../data/common-passwords.txt");

/// Longest user agent kept with a session.
pub const MAX_USER_AGENT: usize = 512;

#[derive(Debug, Error)]
pub enum AuthError {
    /// Wrong email or password: one answer for both.
    #[error("these credentials do not match our records")]
    InvalidCredentials,
    #[error("too many attempts; retry in {retry_after} seconds")]
    Throttled { retry_after: u64 },
    #[error("the email has already been taken")]
    EmailTaken,
    /// The user's credentials changed (a reset, a password change, other devices logged out)
    /// while this request was in flight; nothing was issued.
    #[error("the account's credentials changed during this request; sign in again")]
    CredentialsChanged,
    /// The action needs a password confirmation within the window (Laravel's
    /// `password.confirm`): `POST /user/confirm-password`, then retry.
    #[error("this action needs a recent password confirmation")]
    PasswordConfirmationRequired,
    /// The session was opened by another app's handoff: it may browse, not change the
    /// account's credentials (which would also turn it into a session of its own).
    #[error("a session opened by a cross-app handoff cannot change the account's credentials")]
    DerivedSession,
    /// An operator disabled the account (`user:disable`): said only after the right password.
    #[error("this account is disabled")]
    AccountDisabled,
    /// A blocking hook said no (or failed, under a `deny` policy): `message` from the hook, when
    /// it gave one fit to show the person.
    #[error("refused by the {} hook", point.as_str())]
    Denied { point: crate::services::hooks::HookPoint, message: Option<String> },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Hash(#[from] HashError),
}

/// Where a request came from, as API Gateway saw it.
#[derive(Debug, Clone, Default)]
pub struct ClientMeta {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl ClientMeta {
    pub fn new(ip: Option<String>, user_agent: Option<String>) -> Self {
        let user_agent = user_agent.map(|ua| ua.chars().take(MAX_USER_AGENT).collect());
        Self { ip, user_agent }
    }
}

#[derive(Clone)]
pub struct Auth {
    pub access: Access,
    hasher: PasswordHasher,
    policy: PasswordPolicy,
    dummy: PasswordHash,
    limiter: RateLimiter,
}

impl Auth {
    /// Builds the password machinery from configuration, with the dummy hash unknown emails are
    /// verified against (made with the live parameters and no hashing: nothing at cold start).
    pub fn new(access: Access) -> Result<Self, HashError> {
        let cfg = &access.config.passwords;
        let hasher = PasswordHasher::new(cfg.argon2)?;
        let policy = PasswordPolicy::new(cfg.min_len, cfg.max_len, COMMON_PASSWORDS.lines().map(str::to_owned))
            .with_min_score(cfg.min_score);
        let dummy = hasher.dummy_hash()?;
        let limiter = RateLimiter::new(access.stores.cache.clone(), access.stores.clock.clone());
        Ok(Self { access, hasher, policy, dummy, limiter })
    }

    /// The queue, with the deployment's settings (the notice delay): what the promises of this
    /// machinery's changes (notices, events, queued revocations) are sent through.
    pub fn dispatcher(&self) -> crate::queue::Dispatcher {
        self.access.dispatcher()
    }

    /// Runs the blocking hook at `point` with `request`: the claims it adds (before a token), or
    /// `Denied`.
    pub async fn allowed(
        &self,
        point: crate::services::hooks::HookPoint,
        request: serde_json::Value,
    ) -> Result<serde_json::Map<String, serde_json::Value>, AuthError> {
        match self.access.hook(point, request).await {
            crate::services::hooks::Decision::Allow { claims } => Ok(claims),
            crate::services::hooks::Decision::Deny { message } => Err(AuthError::Denied { point, message }),
        }
    }

    /// The `before_sign_in` hook for `user`, about to get a session or a token by `method`.
    pub async fn before_sign_in(
        &self,
        user: &crate::tables::users::User,
        method: &str,
        meta: &ClientMeta,
    ) -> Result<(), AuthError> {
        let from = crate::services::hooks::From { ip: meta.ip.as_deref(), user_agent: meta.user_agent.as_deref() };
        let request = crate::services::hooks::sign_in_request(user, method, from);
        self.allowed(crate::services::hooks::HookPoint::BeforeSignIn, request).await.map(|_| ())
    }

    pub fn policy(&self) -> &PasswordPolicy {
        &self.policy
    }

    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    /// The stores the service was built with.
    pub fn stores(&self) -> &Stores {
        &self.access.stores
    }

    pub fn config(&self) -> &Config {
        &self.access.config
    }

    pub fn now(&self) -> Timestamp {
        self.access.now()
    }

    /// A keyed tag of the address for logs and throttle keys (not reversible without the key).
    pub fn email_tag(&self, email: &Email) -> String {
        self.access.config.app_key.email_tag(email)
    }

    /// A keyed tag of a user id, for throttle keys and the pseudonym a deleted account's audit
    /// records keep: nothing stored under it names the user without the app key.
    pub fn user_tag(&self, id: &UserId) -> String {
        self.access.config.app_key.tag("user-tag", id.as_str())
    }
}

impl Auth {
    /// Laravel's `password.confirm` for a credential change from `current`: a session of the
    /// user's own (not a handoff's) whose password was confirmed within the window.
    pub fn require_recent_confirmation(&self, current: &SessionRecord) -> Result<(), AuthError> {
        refuse_derived(current)?;
        if !self.access.password_recently_confirmed(current.password_confirmed_at) {
            return Err(AuthError::PasswordConfirmationRequired);
        }
        Ok(())
    }
}

/// Whether a credentials change also ends the user's passkeys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndPasskeys {
    /// A password change and "log out other devices": a passkey planted by whoever held the
    /// account (with the password) must not outlive the owner taking it back, and which passkeys
    /// the owner added cannot be told from the intruder's, so all of them end, and the owner is
    /// told to add theirs again.
    All,
    None,
}

/// Refuses a session opened by a cross-app handoff as the source of a credential change.
pub fn refuse_derived(current: &SessionRecord) -> Result<(), AuthError> {
    match current.parent {
        Some(_) => Err(AuthError::DerivedSession),
        None => Ok(()),
    }
}
