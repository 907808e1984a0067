//! Laravel's web guard: register, log in, log out, list and end sessions — with NIST password
//! rules, argon2id off the async executor, throttling that never locks an account for good, and
//! an unknown email costing exactly what a wrong password costs.

use crate::config::Config;
use crate::keys::DeviceCookie;
use crate::services::access::Access;
use crate::services::revocation::{revoke, revoke_or_queue};
use crate::stores::Stores;
use crate::tables::credential_ref::CredentialRef;
use crate::tables::credentials::{CredentialEntry, NewCredential, NewDevice, Revocation, reasons};
use crate::tables::sessions::{SessionId, SessionKey, SessionRecord};
use crate::tables::users::{CredentialChange, DisplayName, KnownDevice, User, UserId};
use crate::throttle::{Limit, RateLimiter, client_key};
use crate::values::clock::Timestamp;
use crate::values::email::Email;
use crate::values::error::StoreError;
use crate::values::password::{
    HashError, NewPassword, PasswordAttempt, PasswordHash, PasswordHasher, PasswordPolicy, Verification,
};
use thiserror::Error;

/// The shipped common-password list (see `shared/data/README.md`).
pub const COMMON_PASSWORDS: &str = include_str!("../../data/common-passwords.txt");

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
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Hash(#[from] HashError),
}

/// How long after a session changed the credentials its retry is still recognised
/// ([`Auth::resume_own_change`]).
pub const CHANGE_RETRY_WINDOW: chrono::Duration = chrono::Duration::minutes(10);

/// Password checks of a signed-in user per hour, from all clients together.
const PASSWORD_CHECKS_PER_USER_HOUR: Limit = Limit::per_hour(30);

/// The throttle key and limit of a user's password checks across clients ([`Auth::user_tag`]
/// `tag`).
pub fn password_checks_limit(tag: &str) -> (String, Limit) {
    (format!("password-check-hour:{tag}"), PASSWORD_CHECKS_PER_USER_HOUR)
}

/// `Throttled` (logged with the keys' families, never the keys) when a limiter said to wait.
fn throttled<'a>(keys: impl Iterator<Item = &'a str>, retry_after: Option<u64>) -> Result<(), AuthError> {
    let Some(retry_after) = retry_after else { return Ok(()) };
    let families: Vec<&str> = keys.map(|k| k.split(':').next().unwrap_or("")).collect();
    tracing::warn!(event = "throttled", keys = %families.join(","), retry_after);
    Err(AuthError::Throttled { retry_after })
}

/// How long a taken challenge (or passkey ceremony) is kept for repeats of the request that took
/// it: a client asking again after a 503 (or a lost answer) within it gets what the first attempt
/// would have given. Counted from the first take; a repeat does not move it.
pub const REPEAT_WINDOW: crate::values::clock::Span = crate::values::clock::Span::minutes(2);
/// Repeats of one take let through (each may issue what the first attempt's failure lost):
/// past them, 429.
pub const MAX_REPEATS: i64 = 3;

/// Counts a take of the challenge `key` (first taken at `at`): the first and [`MAX_REPEATS`]
/// repeats pass, however many arrive at once (counted after the take, so identical requests
/// racing each other, which all pass the take with one mark, are counted too).
pub async fn count_take(auth: &Auth, key: &str, at: Timestamp) -> Result<(), AuthError> {
    auth.limit_until(&format!("{key}:takes"), 1 + MAX_REPEATS, at + REPEAT_WINDOW).await
}

/// A session a complete sign-in opened ([`Auth::open_session`]), and the device cookie to give
/// when the device was not one the account knows (listed in the session's own issue step).
pub struct Opened {
    pub session: SessionId,
    pub device_cookie: Option<String>,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("session", &self.session)
            .field("device_cookie", &self.device_cookie.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

/// A device listed on the user with a new session: its id and the devices the sign-in read.
#[derive(Debug, Clone)]
pub struct DeviceGrant {
    pub id: String,
    pub listed: Vec<KnownDevice>,
}

/// Whether the device cookie `d` names a device `user` knows now: given to this user under its
/// current credentials version, and still listed.
fn known_device(user: &User, d: Option<&DeviceCookie>) -> bool {
    d.is_some_and(|d| {
        d.user_id == user.id && d.version == user.credentials_version && user.devices.iter().any(|k| k.id == d.id)
    })
}

/// What a new session is issued under.
#[derive(Debug, Clone, Default)]
pub struct SessionGrant {
    /// The credentials version the caller verified against (a password check, or the parent's).
    pub credentials_version: u64,
    pub remember: bool,
    /// The credential it derives from (cross-app sessions).
    pub parent: Option<CredentialRef>,
    /// The cross-app audit record of this session.
    pub cross_app_id: Option<String>,
    /// Set when the password was just proved (login, registration).
    pub password_confirmed_at: Option<Timestamp>,
    /// Keeps an earlier start (a rotated session keeps its absolute lifetime).
    pub created_at: Option<Timestamp>,
    /// The user's address is verified (read with the user, or carried by the parent; `None`
    /// when the parent was issued before credentials carried it).
    pub email_verified: Option<bool>,
    /// A device to list on the user in the same step (a sign-in from a device it did not know).
    pub device: Option<DeviceGrant>,
    /// A derived session's abilities (its parent token's); `None`: everything.
    pub abilities: Option<crate::tables::personal_access_tokens::Abilities>,
    /// A derived session's end (its parent token's expiry).
    pub not_after: Option<Timestamp>,
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

    /// Issues a new session (a fresh random id every time: no fixation), conditionally on the
    /// user's credentials version being `grant.credentials_version` still. `None` when it moved on.
    pub async fn issue_session(
        &self,
        user_id: &UserId,
        meta: &ClientMeta,
        grant: SessionGrant,
    ) -> Result<Option<(SessionId, SessionRecord)>, StoreError> {
        let now = self.now();
        let created_at = grant.created_at.unwrap_or(now);
        let id = SessionId::generate_for(user_id);
        let rec = SessionRecord {
            key: id.key(),
            user_id: Some(user_id.clone()),
            ip_address: meta.ip.clone(),
            user_agent: meta.user_agent.clone(),
            payload: serde_json::json!({ "remember": grant.remember }),
            last_activity: now,
            created_at,
            expires_at: self.access.session_expiry(created_at, now, grant.remember, grant.not_after),
            app: Some(self.access.config.app_name.clone()),
            credentials_version: grant.credentials_version,
            parent: grant.parent.clone(),
            password_confirmed_at: grant.password_confirmed_at,
            email_verified: grant.email_verified,
            abilities: grant.abilities.clone(),
            not_after: grant.not_after,
        };
        let entry = CredentialEntry {
            user_id: user_id.clone(),
            credential: CredentialRef::session(&rec.key),
            parent: grant.parent,
            cross_app_id: grant.cross_app_id,
            created_at: now,
            expires_at: self.access.config.session.absolute.map(|abs| created_at + abs),
        };
        let device = grant.device.as_ref().map(|d| NewDevice { id: &d.id, issued_at: now, listed: &d.listed });
        let issued = self
            .access
            .stores
            .credentials
            .issue_on_device(grant.credentials_version, &entry, NewCredential::Session(&rec), device)
            .await?;
        Ok(issued.then_some((id, rec)))
    }

    /// How long after an account was created a registration of its address may still be that
    /// registration asked again ([`Auth::register`]): ten minutes, ample for a client asking
    /// again after a 503 or an answer lost to a timeout, and short enough that an account left
    /// untouched is soon only ever reached through `/login`.
    const REGISTER_RETRY_WINDOW: chrono::Duration = chrono::Duration::minutes(10);

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
        self.limit(&format!("register:{client}"), self.access.config.limits.register_per_client).await?;
        // Kept for a retry's password check; like the password, never logged.
        let attempt = password.as_attempt();
        let hash = self.hasher.hash_blocking(password).await?;
        let now = self.now();
        let user = User::new(name.into_string(), email, hash, now);
        match self.stores().users.create(&user).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return self.register_again(&user, attempt, meta).await,
            Err(e) => return Err(e.into()),
        }
        // Registering proves nothing for the purpose of adding a lasting way in: no confirmation.
        let grant = SessionGrant { email_verified: Some(false), ..SessionGrant::default() };
        let (id, _) = self.issue_session(&user.id, meta, grant).await?.ok_or(AuthError::CredentialsChanged)?;
        tracing::info!(event = "registered", user_id = %user.id, email_tag = %self.email_tag(&user.email), ip = ?meta.ip);
        Ok((user, id))
    }

    /// A registration whose address is taken (`asked`: the user it tried to write): the
    /// registration asked again, finished with a session of its own, when the account holding the
    /// address is exactly what that registration left — created within
    /// [`Auth::REGISTER_RETRY_WINDOW`], under the same name, with its credentials version still
    /// the one it was created with, the address unverified and never moved onto it, no second
    /// factor (not even begun), no passkey, neither disabled nor being deleted — and the
    /// password given verifies against its hash. Anything else answers `EmailTaken`, as an
    /// unrelated registration of a taken address does.
    ///
    /// Why this is no way in: the password is checked by [`Auth::check_credentials`], the very
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
        let found = match self.check_credentials(&asked.email, attempt, meta, None).await {
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
        age <= Self::REGISTER_RETRY_WINDOW
            && found.name == asked.name
            && found.credentials_version == asked.credentials_version
            && found.email_verified_at.is_none()
            && found.email_changed_from.is_none()
            && found.two_factor == asked.two_factor
            && found.passkeys.is_empty()
            && found.disabled_at.is_none()
            && found.deleted_at.is_none()
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

    /// Forgets a throttle count: `key`'s current window of `limit`.
    pub async fn clear_limit(&self, key: &str, limit: Limit) -> Result<(), AuthError> {
        Ok(self.limiter.clear(key, limit).await?)
    }

    /// Counts one attempt against `key` before the work it guards; `Throttled` past `limit`.
    pub async fn limit(&self, key: &str, limit: Limit) -> Result<(), AuthError> {
        self.limit_all(&[(key, limit)]).await
    }

    /// Counts one attempt against every `(key, limit)` before the work they guard, in one store
    /// call; `Throttled` (and nothing counted) when any of them is full.
    pub async fn limit_all(&self, limits: &[(&str, Limit)]) -> Result<(), AuthError> {
        let verdict = self.limiter.attempt_all(limits).await?;
        throttled(limits.iter().map(|(k, _)| *k), verdict)
    }

    /// Counts one attempt against `key`, at most `max` until `end` (see
    /// [`RateLimiter::attempt_until`]); `Throttled` past it.
    pub async fn limit_until(&self, key: &str, max: i64, end: Timestamp) -> Result<(), AuthError> {
        let verdict = self.limiter.attempt_until(key, max, end).await?;
        throttled([key].into_iter(), verdict)
    }

    /// Checks an email and password; the same work and the same error for an unknown email as for
    /// a wrong password. Every attempt is counted before any hash is computed — per (email,
    /// client), per client, and per account unless the caller shows a device cookie this account
    /// was given at an earlier successful login (then per device, and against the account's
    /// higher ceiling for its known devices): a flood from elsewhere exhausts the account's limit
    /// for unknown devices only. A cookie the user read shows void (another user or credentials
    /// version, or no longer listed) is counted as an unknown device's, and only so (the user is
    /// read before the one limiter call; the hash comes after both).
    /// Rehashes a valid password whose stored hash is outdated.
    pub async fn check_credentials(
        &self,
        email: &Email,
        attempt: PasswordAttempt,
        meta: &ClientMeta,
        device_cookie: Option<&str>,
    ) -> Result<User, AuthError> {
        let limits = &self.access.config.limits;
        let (tag, client) = (self.email_tag(email), client_key(meta.ip.as_deref()));
        let pair_key = format!("login:{tag}|{client}");
        let device = device_cookie.and_then(|c| self.access.config.app_key.device(email, c));
        // A device cookie the key vouches for is not held to its address's volume limit (a flood
        // from behind the owner's shared NAT must not lock the owner out); its own device limit
        // and the account's known-device ceiling apply instead. All of them counted in one call,
        // so a login costs what it costs whichever are held.
        let unknown_keys = (format!("login-account:{tag}"), format!("login-client:{client}"));
        let unknown =
            [(unknown_keys.0.as_str(), limits.login_per_account), (unknown_keys.1.as_str(), limits.login_per_client)];
        let known_keys =
            device.as_ref().map(|d| (format!("login-device:{}", d.id), format!("login-account-known:{tag}")));
        // The user is read first, so a cookie made for this address but void now (a reset, a
        // password change, "log out other devices", the account deleted and registered again,
        // evicted) is counted as the unknown device it is, and only as that: counted as known
        // first, hoarded cookies could fill the known-device ceiling and lock the owner's real
        // devices out. Still one limiter call, and all of it before any hash.
        let user = self.stores().users.find_by_email(email).await?;
        if user.is_none() {
            // The user read a known address costs (of an id no user has: ids are UUIDs), so
            // neither the count nor the kind of the calls tells an unknown address apart.
            self.stores().users.find(&UserId::from_stored("-".into())).await?;
        }
        let known = device.is_some() && user.as_ref().is_some_and(|u| known_device(u, device.as_ref()));
        let mut counted = vec![(pair_key.as_str(), limits.login_per_email_client)];
        match (&known_keys, known) {
            (Some((device_key, known_key)), true) => counted.extend([
                (device_key.as_str(), limits.login_per_device),
                (known_key.as_str(), limits.login_known_per_account),
            ]),
            _ => counted.extend(unknown),
        }
        self.limit_all(&counted).await?;
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
            (Some(user), Verification::Valid { .. }, false) if user.disabled_at.is_some() => {
                tracing::warn!(event = "login_disabled_account", user_id = %user.id, ip = ?meta.ip);
                Err(AuthError::AccountDisabled)
            }
            (Some(user), Verification::Valid { needs_rehash }, false) => {
                // The counts are not forgotten on success (a call each): they are per minute, and
                // a success does not need the attempts its window still holds.
                if needs_rehash && let Ok(fresh) = self.policy.check(attempt.expose()) {
                    let hash = self.hasher.hash_blocking(fresh).await?;
                    // Compare-and-swap on the version read with the old hash: if a reset or change
                    // landed meanwhile, this upgrade of the old password is dropped.
                    let change = CredentialChange { password: Some(&hash), ..CredentialChange::default() };
                    let done = self
                        .access
                        .stores
                        .users
                        .change_credentials(&user.id, user.credentials_version, change, self.now())
                        .await?;
                    tracing::info!(event = "password_rehashed", user_id = %user.id, applied = done.is_some());
                }
                Ok(user)
            }
            (user, _, _) => {
                tracing::info!(event = "login_failed", user_id = ?user.map(|u| u.id), email_tag = %tag, ip = ?meta.ip, known_device = known);
                Err(AuthError::InvalidCredentials)
            }
        }
    }

    /// A session for `user` after a complete sign-in (password, and the second factor if any),
    /// issued under the credentials version `user` was read with. No sign-in counts as a
    /// confirmation (whatever it proved, a cookie stolen after it proves nothing): adding a lasting
    /// way in, turning a second factor off, changing the address, minting strong tokens or
    /// deleting the account need `POST /user/confirm-password` within the window first.
    /// A device whose cookie (`device_cookie`, as shown) does not name one `user` knows now is
    /// listed in the session's own issue step and given a cookie bound to the user and version.
    pub async fn open_session(
        &self,
        user: &User,
        remember: bool,
        meta: &ClientMeta,
        device_cookie: Option<&str>,
    ) -> Result<Opened, AuthError> {
        if user.disabled_at.is_some() {
            return Err(AuthError::AccountDisabled);
        }
        let shown = device_cookie.and_then(|c| self.access.config.app_key.device(&user.email, c));
        let new_device = (!known_device(user, shown.as_ref())).then(crate::keys::new_device_id);
        let grant = SessionGrant {
            credentials_version: user.credentials_version,
            remember,
            email_verified: Some(user.email_verified_at.is_some()),
            device: new_device.clone().map(|id| DeviceGrant { id, listed: user.devices.clone() }),
            ..SessionGrant::default()
        };
        let Some((id, _)) = self.issue_session(&user.id, meta, grant).await? else {
            tracing::info!(event = "login_superseded", user_id = %user.id);
            return Err(AuthError::InvalidCredentials);
        };
        tracing::info!(event = "login", user_id = %user.id, email_tag = %self.email_tag(&user.email), ip = ?meta.ip, new_device = new_device.is_some());
        let key = &self.access.config.app_key;
        let device_cookie = new_device.map(|d| key.device_cookie(&user.email, &user.id, user.credentials_version, &d));
        Ok(Opened { session: id, device_cookie })
    }

    /// Ends the session and everything derived from it (handoffs, cross-app sessions): what
    /// derives from it first, the session last ([`crate::services::revocation::revoke_from`]), so a logout
    /// cut short leaves the session for its retry to authenticate with and finish.
    pub async fn logout(&self, session: &CredentialRef, user: &UserId) -> Result<(), AuthError> {
        revoke(&self.access.stores, user, Revocation::Tree(session), reasons::LOGOUT).await?;
        tracing::info!(event = "logout", user_id = %user);
        Ok(())
    }

    /// The retry of a logout (`reason` [`reasons::LOGOUT`]), or of ending the current session by
    /// its `handle` ([`Auth::end_session`]), whose first attempt took the session: `cookie` names
    /// a session that is gone, of the user it names. When that user's register (read
    /// consistently) still holds the session, the first attempt was cut short after the session
    /// went, and its tree is finished now; when it marks the session's tree ended lately, the
    /// first attempt finished. Either way `true`: the answer is the first attempt's. `false` for
    /// anything else (a cookie naming no owner, another session than `handle`'s, a session still
    /// there but refused for another reason, or one the register knows neither way): the caller
    /// answers the refusal it had. The cookie's secret is the proof: it names one session of
    /// one user, so nothing of anyone else's is read beyond that user's register or ended.
    pub async fn finish_ended_session(
        &self,
        cookie: &str,
        handle: Option<&str>,
        reason: &str,
    ) -> Result<bool, AuthError> {
        let Some((owner, key)) = SessionId::parse(cookie).and_then(|id| Some((id.owner()?, id.key()))) else {
            return Ok(false);
        };
        let app_key = &self.config().app_key;
        if handle.is_some_and(|h| {
            !crate::values::secret::constant_time_eq(app_key.session_handle(&owner, &key).as_bytes(), h.as_bytes())
        }) {
            return Ok(false);
        }
        let stores = self.stores();
        if stores.sessions.find(&key).await?.is_some() {
            return Ok(false);
        }
        let root = CredentialRef::session(&key);
        // Point reads first: a made-up cookie naming a real user reads two items, not its register.
        if !stores.credentials.knows(&owner, &root).await? {
            return Ok(false);
        }
        let register = stores.credentials.read(&owner).await?;
        let finished =
            crate::services::revocation::revoke_registered_tree(stores, &owner, &register, &root, reason).await?;
        if finished {
            tracing::info!(event = "session_end_retried", user_id = %owner, session = %key.hint(), reason);
        }
        Ok(finished)
    }

    /// Ends the session of `user` listed under `handle` ([`crate::keys::AppKey::session_handle`]),
    /// with everything derived from it, that last. Returns its key (`None`: no such session of
    /// this user). The session is found in the user's register, read consistently: a retry of an
    /// ending cut short finds it there (its entry goes last), and one whose first attempt
    /// finished finds the mark of its tree ended (its key is returned again, nothing ended).
    /// Sessions from before the register are found through the owner index.
    pub async fn end_session(&self, user: &UserId, handle: &str) -> Result<Option<SessionKey>, AuthError> {
        let (stores, app_key) = (self.stores(), &self.config().app_key);
        let named = |k: &SessionKey| {
            crate::values::secret::constant_time_eq(app_key.session_handle(user, k).as_bytes(), handle.as_bytes())
        };
        let session_named = |r: &CredentialRef| {
            let key = (r.kind == crate::tables::credential_ref::CredentialKind::Session)
                .then(|| SessionKey::from_stored(r.key.clone()));
            key.filter(|k| named(k))
        };
        let register = stores.credentials.read(user).await?;
        let registered = register.entries.iter().find_map(|e| session_named(&e.credential));
        let key = match registered.or_else(|| register.ended.iter().find_map(session_named)) {
            Some(key) => key,
            None => match stores.sessions.list_for_user(user).await?.into_iter().find(|s| named(&s.key)) {
                Some(s) => s.key,
                None => return Ok(None),
            },
        };
        let root = CredentialRef::session(&key);
        let reason = reasons::USER_REVOKED;
        if !crate::services::revocation::revoke_registered_tree(stores, user, &register, &root, reason).await? {
            // From before the register: what the register holds of its tree, and then it.
            crate::services::revocation::revoke_from(stores, user, &register, Revocation::Tree(&root), reason).await?;
        }
        tracing::info!(event = "session_ended", user_id = %user, session = %key.hint());
        Ok(Some(key))
    }

    /// Verifies the password of a signed-in `user` (as read for this request), counted per user
    /// before the hash (a stolen session is no password oracle); a success clears the count.
    pub async fn verify_password(
        &self,
        user: &User,
        attempt: PasswordAttempt,
        meta: &ClientMeta,
    ) -> Result<bool, AuthError> {
        // Per (user, client): a holder of another session of this user elsewhere cannot use the
        // count up and keep the owner from confirming or logging out other devices.
        let key = format!("password-check:{}|{}", self.user_tag(&user.id), client_key(meta.ip.as_deref()));
        let per_client = self.access.config.limits.password_check_per_user;
        // And per user across clients, so rotating addresses (an IPv6 /48 holds 65,536 /64s)
        // buys a stolen session no more guesses at the password. It can hold the owner off for
        // the rest of the hour at worst; a password reset is not counted here and ends the
        // stolen session.
        let (hour, per_hour) = password_checks_limit(&self.user_tag(&user.id));
        self.limit_all(&[(&key, per_client), (&hour, per_hour)]).await?;
        let attempt =
            PasswordAttempt::new(attempt.expose().chars().take(self.policy.max_len() + 1).collect::<String>());
        let valid = self.hasher.verify_blocking(attempt, user.password_hash.clone()).await.is_valid();
        // Forgetting the count is a courtesy: its failure (a racing hit holding the counter)
        // must not fail a right password.
        if valid && let Err(e) = self.limiter.clear(&key, per_client).await {
            tracing::warn!(event = "rate_limit_not_cleared", error = %e);
        }
        Ok(valid)
    }

    /// Laravel's `logoutOtherDevices`, closed against races: after checking the password, the
    /// credentials version moves on (see [`Auth::rotate_credentials`]). Returns the new session.
    pub async fn logout_other_devices(
        &self,
        user: &User,
        current: &SessionRecord,
        attempt: PasswordAttempt,
        meta: &ClientMeta,
    ) -> Result<SessionId, AuthError> {
        refuse_derived(current)?;
        if !self.verify_password(user, attempt, meta).await? {
            return Err(AuthError::InvalidCredentials);
        }
        // No `by`: the only change a session's retry may resume is one that set a new password
        // (`resume_own_change`), which the retry proves by that password; this one proves only
        // the password it kept, which whoever holds a copy of this cookie may know too.
        let version = self.move_credentials(user, None, EndPasskeys::All, None, Vec::new()).await?;
        let id = self.keep_only(user, current, version, reasons::OTHER_DEVICES_LOGGED_OUT, meta).await?;
        tracing::info!(event = "other_devices_logged_out", user_id = %user.id);
        Ok(id)
    }

    /// Moves the user's credentials on from the state `user` was read in, keeping only the
    /// current session ([`Auth::move_credentials`], then [`Auth::keep_only`]). Returns the new
    /// session. `CredentialsChanged` when another change won the race.
    pub async fn rotate_credentials(
        &self,
        user: &User,
        current: &SessionRecord,
        password: Option<&PasswordHash>,
        reason: &str,
        meta: &ClientMeta,
    ) -> Result<SessionId, AuthError> {
        let version = self.move_credentials(user, password, EndPasskeys::None, None, Vec::new()).await?;
        self.keep_only(user, current, version, reason, meta).await
    }

    /// The compare-and-swap on the credentials version the caller verified against (with the
    /// new `password`, when given): from this write on nothing verified against the old state
    /// can be issued. With [`EndPasskeys::All`], the passkeys read with `user` go in the same
    /// write (a passkey added since fails it, as a moved version does), and the owner is told.
    /// `notices` (and that one) are promised before the write and carried by it
    /// ([`crate::queue::Dispatcher::promise`]); `by`, the session making the change, is recorded
    /// with it ([`User::recent_changes`]). Returns the new version; `CredentialsChanged` when
    /// another change won.
    pub async fn move_credentials(
        &self,
        user: &User,
        password: Option<&PasswordHash>,
        passkeys: EndPasskeys,
        by: Option<&SessionRecord>,
        mut notices: Vec<crate::tables::jobs::JobPayload>,
    ) -> Result<u64, AuthError> {
        let clearing = matches!(passkeys, EndPasskeys::All);
        let ending = clearing && !user.passkeys.is_empty();
        if ending {
            notices.push(crate::services::notices::notice(user, "passkeys_removed"));
        }
        let dispatcher = crate::queue::Dispatcher::for_config(self.stores().clone(), &self.access.config);
        let mut marks = Vec::with_capacity(notices.len());
        for notice in notices {
            marks.push(dispatcher.promise(&user.id, notice).await.map_err(StoreError::from)?);
        }
        // Exactly the passkeys read, none included: one added since the read (a registration
        // racing the change) fails the change like a moved version, rather than surviving it.
        let change = CredentialChange {
            password,
            revoke: true,
            clear_passkeys: clearing.then_some(user.passkeys.as_slice()),
            notices: &marks,
            by: by.map(|s| s.key.as_str()),
            ..CredentialChange::default()
        };
        let version = self
            .stores()
            .users
            .change_credentials(&user.id, user.credentials_version, change, self.now())
            .await?
            .ok_or(AuthError::CredentialsChanged)?;
        if ending {
            tracing::info!(event = "passkeys_removed", user_id = %user.id, count = user.passkeys.len());
        }
        Ok(version)
    }

    /// After [`Auth::move_credentials`] to `version`: every registered credential but the
    /// current session is revoked, and the current session is rotated to a new id under the new
    /// version, keeping its start. Returns the new session.
    pub async fn keep_only(
        &self,
        user: &User,
        current: &SessionRecord,
        version: u64,
        reason: &str,
        meta: &ClientMeta,
    ) -> Result<SessionId, AuthError> {
        let stores = self.stores();
        // The rotated session derives from nothing (the routes that get here refuse
        // handoff-opened sessions), and everything else ends, the current session included.
        // The rotated session keeps the confirmation the current one had, no more: a password
        // change proves the password, but not for the purpose of what the window guards.
        let grant = SessionGrant {
            credentials_version: version,
            remember: current.remember(),
            password_confirmed_at: current.password_confirmed_at,
            created_at: Some(current.created_at),
            email_verified: Some(user.email_verified_at.is_some()),
            ..SessionGrant::default()
        };
        let rotated = self.issue_session(&user.id, meta, grant).await;
        // Whether or not the rotation worked, everything else ends: at once, or by a queued job
        // when a store fails part way (the new password stands either way).
        let keep = match &rotated {
            Ok(Some((id, _))) => Some(CredentialRef::session(&id.key())),
            _ => None,
        };
        let dispatcher = crate::queue::Dispatcher::for_config(stores.clone(), &self.access.config);
        let n = revoke_or_queue(stores, &dispatcher, &user.id, keep.as_ref(), reason).await?;
        let (id, _) = rotated?.ok_or(AuthError::CredentialsChanged)?;
        tracing::info!(event = "credentials_rotated", user_id = %user.id, reason, credentials = ?n);
        Ok(id)
    }

    /// The retry of a password change a session made itself whose answer was lost: the change
    /// moved the version, so the session that made it is refused as stale (or is gone, rotated
    /// away) and the retry would be told 401 by its own success. It is recognised when the
    /// user's latest move of the version was recorded as made by this very session
    /// ([`User::recent_changes`]: only a password change records its session) less than
    /// [`CHANGE_RETRY_WINDOW`] ago, `attempt` (the retry's `password` field: the new password)
    /// is the account's password now, checked under the password-check limits, and no retry
    /// resumed it before. Then the session continues as the change would have continued it: a
    /// new session under the new version (with the old one's start, remember and confirmation
    /// when its record is still there), and the revocation of everything registered before the
    /// change queued again (idempotent: what was issued since stays; `reason` is the change's).
    /// `None` for anything else: the caller answers the refusal it had.
    ///
    /// Why this cannot be abused: it answers once, only the holder of the very cookie that made
    /// the change, within ten minutes, who also knows the password that change set (chosen by
    /// whoever made it, seconds ago); what it gives is what the change's own answer would have
    /// given. Changes that prove no new secret (turning on a second factor, "log out other
    /// devices") record no session and are never resumed: a copy of the cookie and the old
    /// password must not outlive them.
    pub async fn resume_own_change(
        &self,
        id: &SessionId,
        attempt: PasswordAttempt,
        reason: &str,
        meta: &ClientMeta,
    ) -> Result<Option<(SessionId, bool)>, AuthError> {
        let Some(owner) = id.owner() else { return Ok(None) };
        let key = id.key();
        let stores = self.stores();
        let Some(user) = stores.users.find(&owner).await? else { return Ok(None) };
        let now = self.now();
        let Some(change) = user
            .change_to(user.credentials_version)
            .filter(|c| c.by.as_deref() == Some(key.as_str()) && now - c.at <= CHANGE_RETRY_WINDOW)
            .cloned()
        else {
            return Ok(None);
        };
        if user.disabled_at.is_some() || user.deleted_at.is_some() {
            return Ok(None);
        }
        if !self.verify_password(&user, attempt, meta).await? {
            return Ok(None);
        }
        // Once: of racing retries (or a copy of the cookie racing the owner), one continues.
        let once = format!("change-resumed:{}:{}", user.id, user.credentials_version);
        if !stores.cache.add(&once, &serde_json::json!(true), Some(change.at + CHANGE_RETRY_WINDOW)).await? {
            return Ok(None);
        }
        let old = stores.sessions.find(&key).await?.filter(|s| s.user_id.as_ref() == Some(&user.id));
        let remember = old.as_ref().is_some_and(SessionRecord::remember);
        let grant = SessionGrant {
            credentials_version: user.credentials_version,
            remember,
            password_confirmed_at: old.as_ref().and_then(|s| s.password_confirmed_at),
            created_at: old.as_ref().map(|s| s.created_at),
            email_verified: Some(user.email_verified_at.is_some()),
            ..SessionGrant::default()
        };
        let Some((rotated, _)) = self.issue_session(&user.id, meta, grant).await? else { return Ok(None) };
        let dispatcher = crate::queue::Dispatcher::for_config(stores.clone(), &self.access.config);
        crate::services::revocation::queue_revocation(&dispatcher, &user.id, change.at, reason)
            .await
            .map_err(StoreError::from)?;
        tracing::info!(event = "credentials_change_resumed", user_id = %user.id, version = user.credentials_version);
        Ok(Some((rotated, remember)))
    }

    /// Laravel's `password.confirm`: checks the password and records the confirmation on the
    /// session. `false` when the session ended meanwhile.
    pub async fn confirm_password(
        &self,
        user: &User,
        session: &SessionKey,
        attempt: PasswordAttempt,
        meta: &ClientMeta,
    ) -> Result<bool, AuthError> {
        if !self.verify_password(user, attempt, meta).await? {
            tracing::info!(event = "password_confirmation_failed", user_id = %user.id);
            return Err(AuthError::InvalidCredentials);
        }
        Ok(self.stores().sessions.confirm_password(session, self.now()).await?)
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
