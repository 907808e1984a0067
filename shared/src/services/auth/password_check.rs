//! The password factor: the one constant-cost check of an email and password (unknown email or wrong password alike), the check of a signed-in user's own password, and the confirmation that opens sensitive actions.

use super::limits::password_checks_limit;
use super::sessions::known_device;
use super::{Auth, AuthError, ClientMeta};
use crate::tables::sessions::SessionKey;
use crate::tables::users::{CredentialChange, User, UserId};
use crate::throttle::client_key;
use crate::values::email::Email;
use crate::values::password::{PasswordAttempt, Verification};

impl Auth {
    /// Checks an email and password; the same work and the same error for an unknown email as for
    /// a wrong password. Every attempt is counted before any hash is computed — per (email,
    /// client), per client, and per account unless the caller shows a device cookie this account
    /// was given at an earlier successful login (then per device, and against the account's
    /// higher ceiling for its known devices): a flood from elsewhere exhausts the account's limit
    /// for unknown devices only. A cookie the user read shows void (another user or credentials
    /// version, or no longer listed) is counted as an unknown device's, and only so (the user is
    /// read before the one limiter call; the hash comes after both).
    /// Rehashes a valid password whose stored hash is outdated.
    pub async fn check_password(
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
