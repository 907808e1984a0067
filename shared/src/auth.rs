//! Laravel's web guard: register, log in, log out, list and end sessions — with NIST password
//! rules, argon2id off the async executor, throttling that never locks an account for good, and
//! an unknown email costing exactly what a wrong password costs.

use crate::access::Access;
use crate::clock::Timestamp;
use crate::email::Email;
use crate::error::StoreError;
use crate::password::{
    HashError, NewPassword, PasswordAttempt, PasswordHash, PasswordHasher, PasswordPolicy, Verification,
};
use crate::sessions::{SessionId, SessionKey, SessionRecord};
use crate::throttle::RateLimiter;
use crate::users::{RememberToken, User, UserId};
use chrono::Duration;
use thiserror::Error;

/// The shipped common-password list (see `shared/data/README.md`).
pub const COMMON_PASSWORDS: &str = include_str!("../data/common-passwords.txt");

/// Failed logins allowed per (email, IP) per minute, and per account per hour (NIST 800-63B).
pub const MAX_FAILURES_PER_IP: i64 = 5;
pub const MAX_FAILURES_PER_ACCOUNT: i64 = 100;
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
    /// Builds the password machinery from configuration, hashing the dummy password once now
    /// with the live parameters.
    pub fn new(access: Access) -> Result<Self, HashError> {
        let cfg = &access.config.passwords;
        let hasher = PasswordHasher::new(cfg.argon2)?;
        let policy = PasswordPolicy::new(cfg.min_len, cfg.max_len, COMMON_PASSWORDS.lines().map(str::to_owned));
        let dummy = hasher.dummy_hash()?;
        let limiter = RateLimiter::new(access.stores.cache.clone(), access.stores.clock.clone());
        Ok(Self { access, hasher, policy, dummy, limiter })
    }

    pub fn policy(&self) -> &PasswordPolicy {
        &self.policy
    }

    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    fn now(&self) -> Timestamp {
        self.access.stores.clock.now()
    }

    /// Opens a new session (a fresh random id every time: no fixation) for the user.
    pub async fn open_session(
        &self,
        user_id: &UserId,
        meta: &ClientMeta,
        remember: bool,
        app: Option<String>,
    ) -> Result<(SessionId, SessionRecord), StoreError> {
        let now = self.now();
        let id = SessionId::generate();
        let rec = SessionRecord {
            key: id.key(),
            user_id: Some(user_id.clone()),
            ip_address: meta.ip.clone(),
            user_agent: meta.user_agent.clone(),
            payload: serde_json::json!({ "remember": remember }),
            last_activity: now,
            created_at: now,
            expires_at: self.access.session_expiry(now, now, remember),
            app,
        };
        self.access.stores.sessions.put(&rec).await?;
        Ok((id, rec))
    }

    pub async fn register(
        &self,
        name: String,
        email: Email,
        password: NewPassword,
        meta: &ClientMeta,
    ) -> Result<(User, SessionId), AuthError> {
        let hash = self.hasher.hash_blocking(password).await?;
        let now = self.now();
        let user = User {
            id: UserId::generate(),
            name,
            email,
            email_verified_at: None,
            password_hash: hash,
            remember_token: None,
            created_at: now,
            updated_at: now,
        };
        match self.access.stores.users.create(&user).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Err(AuthError::EmailTaken),
            Err(e) => return Err(e.into()),
        }
        let (id, _) = self.open_session(&user.id, meta, false, None).await?;
        tracing::info!(event = "registered", user_id = %user.id, email_hash = %user.email.hash(), ip = ?meta.ip);
        Ok((user, id))
    }

    fn throttle_keys(email: &Email, meta: &ClientMeta) -> (String, String) {
        let e = email.hash();
        (format!("login:{e}|{}", meta.ip.as_deref().unwrap_or("-")), format!("login-account:{e}"))
    }

    /// Checks an email and password, throttled; the same work and the same error for an unknown
    /// email as for a wrong password. Rehashes a valid password whose stored hash is outdated.
    pub async fn check_credentials(
        &self,
        email: &Email,
        attempt: PasswordAttempt,
        meta: &ClientMeta,
    ) -> Result<User, AuthError> {
        let (ip_key, account_key) = Self::throttle_keys(email, meta);
        for (key, max) in [(&ip_key, MAX_FAILURES_PER_IP), (&account_key, MAX_FAILURES_PER_ACCOUNT)] {
            if let Some(retry_after) = self.limiter.too_many(key, max).await? {
                tracing::warn!(event = "lockout", email_hash = %email.hash(), ip = ?meta.ip, retry_after);
                return Err(AuthError::Throttled { retry_after });
            }
        }
        let user = self.access.stores.users.find_by_email(email).await?;
        let overlong = self.policy.is_overlong(attempt.expose());
        let stored = user.as_ref().map_or_else(|| self.dummy.clone(), |u| u.password_hash.clone());
        // An over-long attempt cannot match (none was ever accepted); it is still verified (against
        // the dummy) so it costs the same, but capped so it cannot be used to burn CPU.
        let attempt = if overlong {
            PasswordAttempt::new(attempt.expose().chars().take(self.policy.max_len()).collect::<String>())
        } else {
            attempt
        };
        let verdict =
            self.hasher.verify_blocking(attempt.clone(), if overlong { self.dummy.clone() } else { stored }).await;
        match (user, verdict, overlong) {
            (Some(user), Verification::Valid { needs_rehash }, false) => {
                self.limiter.clear(&ip_key).await?;
                self.limiter.clear(&account_key).await?;
                if needs_rehash && let Ok(fresh) = self.policy.check(attempt.expose()) {
                    let hash = self.hasher.hash_blocking(fresh).await?;
                    self.access
                        .stores
                        .users
                        .update_password(&user.id, &hash, user.remember_token.as_ref(), self.now())
                        .await?;
                    tracing::info!(event = "password_rehashed", user_id = %user.id);
                }
                Ok(user)
            }
            (user, _, _) => {
                self.limiter.hit(&ip_key, Duration::seconds(60)).await?;
                self.limiter.hit(&account_key, Duration::seconds(3600)).await?;
                tracing::info!(event = "login_failed", user_id = ?user.map(|u| u.id), email_hash = %email.hash(), ip = ?meta.ip);
                Err(AuthError::InvalidCredentials)
            }
        }
    }

    pub async fn login(
        &self,
        email: &Email,
        attempt: PasswordAttempt,
        remember: bool,
        meta: &ClientMeta,
    ) -> Result<(User, SessionId), AuthError> {
        let user = self.check_credentials(email, attempt, meta).await?;
        let (id, _) = self.open_session(&user.id, meta, remember, None).await?;
        tracing::info!(event = "login", user_id = %user.id, email_hash = %email.hash(), ip = ?meta.ip);
        Ok((user, id))
    }

    pub async fn logout(&self, key: &SessionKey, user: &UserId) -> Result<(), AuthError> {
        self.access.stores.sessions.delete(key).await?;
        tracing::info!(event = "logout", user_id = %user);
        Ok(())
    }

    /// Ends every session of the user but `current`, after checking the password (Laravel's
    /// `logoutOtherDevices`), and rotates the remember token.
    pub async fn logout_other_devices(
        &self,
        user: &User,
        current: &SessionKey,
        attempt: PasswordAttempt,
    ) -> Result<usize, AuthError> {
        let attempt =
            PasswordAttempt::new(attempt.expose().chars().take(self.policy.max_len() + 1).collect::<String>());
        if !self.hasher.verify_blocking(attempt, user.password_hash.clone()).await.is_valid() {
            return Err(AuthError::InvalidCredentials);
        }
        let n = self.access.stores.sessions.delete_for_user(&user.id, Some(current)).await?;
        self.access
            .stores
            .users
            .update_password(&user.id, &user.password_hash, Some(&RememberToken::generate()), self.now())
            .await?;
        tracing::info!(event = "other_devices_logged_out", user_id = %user.id, sessions = n);
        Ok(n)
    }
}
