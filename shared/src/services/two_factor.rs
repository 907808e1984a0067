//! Two-factor authentication (Laravel Fortify's TOTP with recovery codes), enforced wherever a
//! password signs in.
//!
//! - **Enrolment**: a 160-bit secret is generated and stored *sealed* (AES-256-GCM under a key
//!   derived from `GATEHOUSE_APP_KEY`: nothing to fetch at cold start, one HMAC to derive), then
//!   confirmed with a valid code; only a confirmed secret makes sign-in ask for a second factor.
//!   Confirming creates ten single-use recovery codes, shown once and stored as HMACs under the app key.
//! - **Codes**: RFC 6238 (SHA-1, 6 digits, 30 s), ±1 step of clock skew, compared in constant time.
//!   A code is accepted once: the accepted time step is written conditionally on being later than
//!   the last one, so two concurrent uses of one code cannot both win. A recovery code is removed
//!   by a write conditional on it being there.
//! - **Sign-in**: a password check of a user with a confirmed secret issues nothing; it stores a
//!   challenge (random 256-bit token, kept as SHA-256 in the cache table with a 5-minute TTL) bound
//!   to the client and to the credentials version the password was checked against, and answers
//!   with the token. `complete` checks a code or a recovery code against it (counted before any
//!   work: 5 attempts per challenge, 5 a minute per (user, client), 30 an hour per user), consumes it
//!   once and tells the caller
//!   what to issue. A password reset does not touch the second factor, so it cannot bypass it.
//! - Disabling, and regenerating the recovery codes, need a recent password confirmation; every
//!   change mails a notice with fixed text.

use crate::StoreError;
use crate::queue::{DispatchError, Dispatcher};
use crate::services::auth::{Auth, AuthError, ClientMeta, refuse_derived};
use crate::services::notices::promise;
use crate::tables::events::{EventBody, TwoFactorBy, TwoFactorDisabled, TwoFactorEnabled};
use crate::tables::sessions::SessionRecord;
use crate::tables::users::{Marks, TwoFactorWrite, User, UserId};
use crate::throttle::Limit;
use crate::throttle::client_key;
use crate::values::clock::epoch_seconds;

/// RFC 6238's recommended step.
const STEP_SECONDS: u64 = 30;
const DIGITS: usize = 6;
/// Steps accepted either side of now.
const SKEW: u64 = 1;
/// How many recovery codes a user gets.
pub const RECOVERY_CODES: usize = 10;
const SEAL_PURPOSE: &str = "two-factor-secret";
#[derive(Debug, thiserror::Error)]
pub enum TwoFactorError {
    #[error("two-factor authentication is already enabled")]
    AlreadyEnabled,
    #[error("two-factor authentication is not enabled")]
    NotEnabled,
    /// Confirming before enabling (no pending secret).
    #[error("enable two-factor authentication first")]
    NotEnrolled,
    #[error("the code is invalid")]
    InvalidCode,
    #[error("the passkey was not accepted")]
    InvalidPasskey,
    /// The sealed secret does not open with this deployment's app key (it was rotated, or a
    /// local run made a random one): a recovery code still signs in, and an operator can reset.
    #[error("the second factor cannot be read with this deployment's key")]
    SecretUnreadable,
    /// Unknown, expired, used, bound to another client, or its user's password changed since.
    #[error("the challenge is invalid or has expired; sign in again")]
    InvalidChallenge,
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Dispatch(#[from] DispatchError),
}

impl From<StoreError> for TwoFactorError {
    fn from(e: StoreError) -> Self {
        Self::Auth(AuthError::Store(e))
    }
}

/// What a user sees to enrol an authenticator app: the secret (base32), the `otpauth://` URI and
/// that URI as a QR code (SVG). Never logged.
pub struct Enrolment {
    pub secret: String,
    pub otpauth_url: String,
    pub qr_svg: String,
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Enrolment([REDACTED])")
    }
}

/// Recovery codes in plain, shown once.
pub struct RecoveryCodes(pub Vec<String>);

impl std::fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RecoveryCodes([{} REDACTED])", self.0.len())
    }
}

/// The TOTP of `secret` for the authenticator app: `issuer` and `account` label it (':' is the
/// label's separator, so it is replaced).
fn totp(secret: Vec<u8>, account: &str, issuer: &str) -> Result<totp_rs::TOTP, TwoFactorError> {
    let (account, issuer) = (account.replace(':', " "), issuer.replace(':', " "));
    totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, DIGITS, SKEW as u8, STEP_SECONDS, secret, Some(issuer), account)
        .map_err(|e| TwoFactorError::Auth(AuthError::Store(StoreError::Rejected(format!("totp: {e}")))))
}

/// The code of `secret` for time step `step`.
pub fn code_at(secret: &[u8], step: u64) -> String {
    let t = totp_rs::TOTP::new_unchecked(
        totp_rs::Algorithm::SHA1,
        DIGITS,
        SKEW as u8,
        STEP_SECONDS,
        secret.to_vec(),
        None,
        String::new(),
    );
    t.generate(step * STEP_SECONDS)
}

/// The current code of a base32 secret as an authenticator app shows it (for clients and tests);
/// `None` when `secret_base32` is not base32.
pub fn code_for(secret_base32: &str, unix_seconds: u64) -> Option<String> {
    let secret = totp_rs::Secret::Encoded(secret_base32.to_owned()).to_bytes().ok()?;
    Some(code_at(&secret, unix_seconds / STEP_SECONDS))
}

/// The time step within ±1 of `now_seconds` whose code is `code` (constant-time comparisons, all
/// three computed), if any.
pub fn matching_step(secret: &[u8], code: &str, now_seconds: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = now_seconds / STEP_SECONDS;
    let mut found = None;
    for step in now.saturating_sub(SKEW)..=now + SKEW {
        if crate::values::secret::constant_time_eq(code_at(secret, step).as_bytes(), code.as_bytes()) {
            found = Some(step);
        }
    }
    found
}

/// A recovery code as typed, reduced to what it is: lower case, without spaces or dashes.
pub(crate) fn recovery_key(code: &str) -> String {
    code.chars().filter(|c| !c.is_whitespace() && *c != '-').flat_map(char::to_lowercase).collect()
}

/// A recovery code as stored: a MAC under the app key of the user and the code (as
/// [`recovery_key`] reduces it), so a copy of the table cracks nothing without the key, and one
/// code's hash is worth nothing for another user.
pub fn recovery_hash(key: &crate::keys::AppKey, user: &UserId, code: &str) -> String {
    hex::encode(key.mac("recovery-code", format!("{user}|{}", recovery_key(code)).as_bytes()))
}

/// Ten fresh codes of `user`, `xxxxx-xxxxx` from Crockford's base32 alphabet (no i, l, o or u:
/// 50 bits each), and their hashes.
fn new_recovery_codes(key: &crate::keys::AppKey, user: &UserId) -> (RecoveryCodes, Vec<String>) {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
    let codes: Vec<String> = (0..RECOVERY_CODES)
        .map(|_| {
            let bytes = crate::values::secret::random_bytes::<10>();
            let chars: String = bytes.iter().map(|b| ALPHABET[usize::from(*b) % 32] as char).collect();
            format!("{}-{}", &chars[..5], &chars[5..])
        })
        .collect();
    let hashes = codes.iter().map(|c| recovery_hash(key, user, c)).collect();
    (RecoveryCodes(codes), hashes)
}

/// What a user's secret is sealed for: the purpose and the user, so a sealed secret copied to
/// another user's item does not open there.
fn seal_purpose(user: &UserId) -> String {
    format!("{SEAL_PURPOSE}|{user}")
}

pub(crate) fn secret_of(auth: &Auth, user: &User) -> Result<Vec<u8>, TwoFactorError> {
    let sealed = user.two_factor.sealed_secret.as_deref().ok_or(TwoFactorError::NotEnrolled)?;
    auth.config().app_key.open(&seal_purpose(&user.id), sealed).ok_or_else(|| {
        tracing::error!(event = "two_factor_secret_unreadable", user_id = %user.id);
        TwoFactorError::SecretUnreadable
    })
}

/// `POST /user/two-factor-authentication`: a new pending secret (replacing an unconfirmed one),
/// from a session of the user's own with a recent password confirmation.
pub async fn enable(auth: &Auth, user: &User, current: &SessionRecord) -> Result<Enrolment, TwoFactorError> {
    auth.require_recent_confirmation(current)?;
    if user.two_factor.enabled() {
        return Err(TwoFactorError::AlreadyEnabled);
    }
    let secret = crate::values::secret::random_bytes::<20>().to_vec();
    let sealed = auth.config().app_key.seal(&seal_purpose(&user.id), &secret);
    let sealed = sealed.ok_or_else(|| StoreError::Rejected("the secret could not be sealed".into()))?;
    if !auth.stores().users.write_two_factor(&user.id, TwoFactorWrite::Begin { sealed: &sealed }, auth.now()).await? {
        return Err(TwoFactorError::AlreadyEnabled);
    }
    let t = totp(secret, user.email.as_str(), &auth.config().app_name)?;
    let otpauth_url = t.get_url();
    let qr_svg = qrcode::QrCode::new(otpauth_url.as_bytes())
        .map_err(|e| StoreError::Rejected(format!("qr code: {e}")))?
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    tracing::info!(event = "two_factor_enrolment_started", user_id = %user.id);
    Ok(Enrolment { secret: t.get_secret_base32(), otpauth_url, qr_svg })
}

/// `POST /user/confirmed-two-factor-authentication`: a valid code of the pending secret turns it
/// on and returns the recovery codes (shown once). Counted per user before the check.
pub async fn confirm(
    auth: &Auth,
    dispatcher: &Dispatcher,
    user: &User,
    current: &SessionRecord,
    code: &str,
    meta: &ClientMeta,
) -> Result<(RecoveryCodes, Option<crate::tables::sessions::SessionId>), TwoFactorError> {
    refuse_derived(current)?;
    if user.two_factor.enabled() {
        return Err(TwoFactorError::AlreadyEnabled);
    }
    count_attempt(auth, &user.id, meta).await?;
    let secret = secret_of(auth, user)?;
    let step = matching_step(&secret, code, epoch_seconds(auth.now()) as u64).ok_or(TwoFactorError::InvalidCode)?;
    let sealed = user.two_factor.sealed_secret.as_deref().unwrap_or_default();
    let (codes, hashes) = new_recovery_codes(&auth.config().app_key, &user.id);
    let write = TwoFactorWrite::Confirm { sealed, step, recovery: &hashes };
    let mark = promise(dispatcher, user, "enabled").await?;
    let enabled = EventBody::TwoFactorEnabled(TwoFactorEnabled { by: TwoFactorBy::User });
    let event = crate::services::events::promise(dispatcher, &user.id, enabled).await?;
    let marks = Marks::notice(Some(&mark)).and_events(std::slice::from_ref(&event));
    // Conditional on this very secret still pending: a re-enrolment meanwhile voids the code.
    if !auth.stores().users.write_two_factor_noting(&user.id, write, marks, auth.now()).await? {
        return Err(TwoFactorError::InvalidCode);
    }
    tracing::info!(event = "two_factor_enabled", user_id = %user.id);
    // Every credential issued on a password alone ends (a stolen password's session would
    // otherwise outlive the second factor); this session continues under a new id. If another
    // change of the credentials won the race, that change already ended them: the codes, shown
    // once, are returned all the same.
    let rotated = match auth
        .rotate_credentials(user, current, None, crate::tables::credentials::reasons::TWO_FACTOR_ENABLED, meta)
        .await
    {
        Ok(id) => Some(id),
        Err(AuthError::CredentialsChanged) => None,
        Err(e) => {
            tracing::error!(event = "two_factor_rotation_failed", user_id = %user.id, error = %e);
            None
        }
    };
    Ok((codes, rotated))
}

/// `DELETE /user/two-factor-authentication`, after a recent password confirmation.
pub async fn disable(
    auth: &Auth,
    dispatcher: &Dispatcher,
    user: &User,
    current: &SessionRecord,
) -> Result<(), TwoFactorError> {
    auth.require_recent_confirmation(current)?;
    let was_on = user.two_factor.enabled();
    let mark = if was_on { Some(promise(dispatcher, user, "disabled").await?) } else { None };
    // Announced when it was on (turning off what is off is no fact).
    let event = match was_on {
        true => Some(disabled_event(dispatcher, user, TwoFactorBy::User).await?),
        false => None,
    };
    let marks = Marks::notice(mark.as_ref()).and_events(event.as_slice());
    auth.stores().users.write_two_factor_noting(&user.id, TwoFactorWrite::Clear, marks, auth.now()).await?;
    tracing::info!(event = "two_factor_disabled", user_id = %user.id, was_on);
    Ok(())
}

/// `POST /user/two-factor-recovery-codes`: ten new codes replace the old ones, after a recent
/// password confirmation.
pub async fn regenerate_recovery_codes(
    auth: &Auth,
    dispatcher: &Dispatcher,
    user: &User,
    current: &SessionRecord,
) -> Result<RecoveryCodes, TwoFactorError> {
    auth.require_recent_confirmation(current)?;
    let (codes, hashes) = new_recovery_codes(&auth.config().app_key, &user.id);
    let write = TwoFactorWrite::ReplaceRecoveryCodes { hashes: &hashes };
    if !user.two_factor.enabled() {
        return Err(TwoFactorError::NotEnabled);
    }
    let mark = promise(dispatcher, user, "recovery_codes").await?;
    if !auth.stores().users.write_two_factor_noting(&user.id, write, Marks::notice(Some(&mark)), auth.now()).await? {
        return Err(TwoFactorError::NotEnabled);
    }
    tracing::info!(event = "two_factor_recovery_codes_regenerated", user_id = %user.id);
    Ok(codes)
}

/// Promises `two_factor.disabled` (by `by`) for the write that turns `user`'s second factor off.
async fn disabled_event(
    dispatcher: &Dispatcher,
    user: &User,
    by: TwoFactorBy,
) -> Result<crate::tables::users::EventMark, StoreError> {
    let body = EventBody::TwoFactorDisabled(TwoFactorDisabled { by });
    crate::services::events::promise(dispatcher, &user.id, body).await
}

/// Operators' `user:reset-two-factor`: the user's second factors are gone (logged, and the user
/// is told). `false` when the user does not exist.
pub async fn reset(stores: &crate::Stores, dispatcher: &Dispatcher, user: &User) -> Result<bool, StoreError> {
    let mark = promise(dispatcher, user, "reset").await.map_err(StoreError::from)?;
    let event = match user.two_factor.enabled() {
        true => Some(disabled_event(dispatcher, user, TwoFactorBy::Operator).await?),
        false => None,
    };
    let marks = Marks::notice(Some(&mark)).and_events(event.as_slice());
    let done = stores.users.write_two_factor_noting(&user.id, TwoFactorWrite::Clear, marks, stores.clock.now()).await?;
    // Its passkeys too: they are second factors (and ways in) as much as the app is.
    stores.users.clear_passkeys(&user.id, stores.clock.now()).await?;
    tracing::warn!(event = "two_factor_reset_by_operator", user_id = %user.id, done, passkeys = user.passkeys.len());
    Ok(done)
}

/// Code attempts of one user per hour, from all clients together: with the per-(user, client)
/// minute limit, at most 720 guesses a day (each has a 3 in a million chance), while the owner's
/// own client keeps its minute count.
const ATTEMPTS_PER_USER_HOUR: Limit = Limit::per_hour(30);

/// The throttle keys and limits of a user's code attempts ([`Auth::user_tag`] `tag`): per client
/// and minute, per hour.
pub fn attempt_limits(tag: &str, client: &str) -> [(String, Limit); 2] {
    [
        (format!("two-factor:{tag}|{client}"), Limit::per_minute(5)),
        (format!("two-factor-hour:{tag}"), ATTEMPTS_PER_USER_HOUR),
    ]
}

/// Counts one code attempt of a user, before any check: 5 a minute per (user, client), 30 an
/// hour per user.
pub(crate) async fn count_attempt(auth: &Auth, user: &UserId, meta: &ClientMeta) -> Result<(), TwoFactorError> {
    let [(minute, per_minute), (hour, per_hour)] =
        attempt_limits(&auth.user_tag(user), &client_key(meta.ip.as_deref()));
    Ok(auth.limit_all(&[(&minute, per_minute), (&hour, per_hour)]).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1, truncated to 6 digits.
    #[test]
    fn codes_match_the_rfc_vectors_within_one_step_and_nowhere_else() {
        let secret = b"12345678901234567890";
        assert_eq!(code_at(secret, 59 / 30), "287082");
        assert_eq!(code_at(secret, 1_111_111_109 / 30), "081804");
        assert_eq!(code_at(secret, 1_234_567_890 / 30), "005924");
        let now = 1_234_567_890;
        let step = now / 30;
        assert_eq!(matching_step(secret, "005924", now), Some(step));
        assert_eq!(matching_step(secret, &code_at(secret, step - 1), now), Some(step - 1));
        assert_eq!(matching_step(secret, &code_at(secret, step + 1), now), Some(step + 1));
        assert_eq!(matching_step(secret, &code_at(secret, step + 2), now), None);
        assert_eq!(matching_step(secret, &code_at(secret, step - 2), now), None);
        for bad in ["", "00592", "0059245", "00592a", "５５５５５５"] {
            assert_eq!(matching_step(secret, bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn recovery_codes_are_ten_distinct_and_typed_loosely() {
        let (key, user) = (crate::keys::AppKey::random(), UserId::generate());
        let (codes, hashes) = new_recovery_codes(&key, &user);
        assert_eq!(codes.0.len(), RECOVERY_CODES);
        let unique: std::collections::HashSet<_> = hashes.iter().collect();
        assert_eq!(unique.len(), RECOVERY_CODES);
        let c = &codes.0[0];
        assert_eq!(recovery_hash(&key, &user, &c.to_uppercase().replace('-', " ")), hashes[0]);
        assert_ne!(recovery_hash(&key, &UserId::generate(), c), hashes[0], "another user's");
        assert_ne!(recovery_hash(&crate::keys::AppKey::random(), &user, c), hashes[0], "another key's");
        assert!(!format!("{codes:?}").contains(c.as_str()), "never in Debug output");
    }
}
