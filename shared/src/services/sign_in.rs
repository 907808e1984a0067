//! The sign-in flow: the password step ([`Auth::check_password`]), then the second factor when
//! the account has one ([`crate::services::sign_in::challenge`]), then a session.

use crate::services::auth::sessions::Opened;

use crate::StoreError;
use crate::queue::Dispatcher;
use crate::services::auth::limits::{REPEAT_WINDOW, count_take};
use crate::services::auth::{Auth, AuthError, ClientMeta};
use crate::services::notices::{promise, tell};
use crate::services::two_factor::{
    TwoFactorError, code_at, count_attempt, matching_step, recovery_hash, recovery_key, secret_of,
};
use crate::tables::cache::Taken;
use crate::tables::events::SessionMethod;
use crate::tables::users::{Marks, TwoFactorWrite, User, UserId};
use crate::throttle::Limit;
use crate::throttle::client_key;
use crate::values::clock::{Span, epoch_seconds};
use crate::values::email::Email;
use crate::values::password::PasswordAttempt;

/// What the password step of a sign-in gave.
#[derive(Debug)]
pub enum PasswordStep {
    Passed(Box<User>),
    /// The user has a second factor: complete with `POST /two-factor-challenge`.
    SecondFactor(ChallengeToken),
}

/// What `/login` gave.
#[derive(Debug)]
pub enum Login {
    Session(Box<User>, Opened),
    SecondFactor(ChallengeToken),
}

impl Auth {
    /// The password step of every sign-in (`/login`, `/tokens/issue`): checks the credentials
    /// ([`Auth::check_password`]); a user with a second factor gets a challenge for `pending`
    /// instead ([`crate::services::sign_in::challenge`]), so nothing is issued on a password alone.
    pub async fn password_step(
        &self,
        email: &Email,
        attempt: PasswordAttempt,
        meta: &ClientMeta,
        device_cookie: Option<&str>,
        pending: Pending,
    ) -> Result<PasswordStep, AuthError> {
        let user = self.check_password(email, attempt, meta, device_cookie).await?;
        if user.two_factor.enabled() {
            return Ok(PasswordStep::SecondFactor(challenge(self, &user, pending, meta, "password").await?));
        }
        Ok(PasswordStep::Passed(Box::new(user)))
    }

    /// `/login`: the password step, then a session under the version the password was checked
    /// against (if the password changed meanwhile, nothing is issued and the answer is the same
    /// as for a wrong password) — or the second-factor challenge.
    pub async fn login(
        &self,
        email: &Email,
        attempt: PasswordAttempt,
        remember: bool,
        meta: &ClientMeta,
        device_cookie: Option<&str>,
    ) -> Result<Login, AuthError> {
        let pending = Pending::Session { remember };
        match self.password_step(email, attempt, meta, device_cookie, pending).await? {
            PasswordStep::SecondFactor(challenge) => Ok(Login::SecondFactor(challenge)),
            PasswordStep::Passed(user) => {
                let opened =
                    self.open_session(&user, remember, meta, device_cookie, (SessionMethod::Password, true)).await?;
                Ok(Login::Session(user, opened))
            }
        }
    }
}

/// How long a sign-in challenge lasts.
pub const CHALLENGE_LIFETIME: Span = Span::minutes(5);

const CHALLENGE_PREFIX: &str = "two-factor-challenge:";

/// What a completed challenge allows: what the password step was asked for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Pending {
    /// A session (`/login`).
    Session { remember: bool },
    /// A token (`/tokens/issue`).
    Token { name: String, abilities: Vec<String>, expires_in_minutes: Option<i64> },
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ChallengeItem {
    user_id: String,
    credentials_version: u64,
    client: String,
    pending: Pending,
    /// How the first factor was proved (`password`, `email_link`, `provider`): what the
    /// before-sign-in hook is told when the second completes the sign-in.
    #[serde(default = "password_method")]
    method: String,
}

/// The method a challenge stored ([`SessionMethod::as_str`]); a password for one from before.
fn stored_method(text: &str) -> SessionMethod {
    SessionMethod::parse(text).unwrap_or(SessionMethod::Password)
}

fn password_method() -> String {
    "password".into()
}

/// A challenge's token, shown once to the client that passed the password step.
pub struct ChallengeToken(String);

impl ChallengeToken {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ChallengeToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChallengeToken([REDACTED])")
    }
}

fn challenge_key(token: &str) -> String {
    format!("{CHALLENGE_PREFIX}{}", crate::values::secret::sha256_hex(token))
}

/// After a password check of `user` (whose second factor is on): a challenge for `pending`, bound
/// to the client and to the credentials version the check read.
///
/// The before-sign-in hook decides first (told `method`): a sign-in it refuses asks for no
/// second factor, and spends none.
pub async fn challenge(
    auth: &Auth,
    user: &User,
    pending: Pending,
    meta: &ClientMeta,
    method: &str,
) -> Result<ChallengeToken, AuthError> {
    auth.before_sign_in(user, method, meta).await?;
    let token = crate::values::secret::random_token_256();
    let item = ChallengeItem {
        user_id: user.id.as_str().to_owned(),
        credentials_version: user.credentials_version,
        client: client_key(meta.ip.as_deref()),
        pending,
        method: method.to_owned(),
    };
    let value = serde_json::to_value(&item).map_err(|e| StoreError::Rejected(e.to_string()))?;
    auth.stores().cache.put(&challenge_key(&token), &value, Some(auth.now() + CHALLENGE_LIFETIME)).await?;
    tracing::info!(event = "two_factor_challenged", user_id = %user.id, ip = ?meta.ip);
    Ok(ChallengeToken(token))
}

/// The second factor offered for a challenge.
pub enum Answer {
    Code(String),
    RecoveryCode(String),
    /// A passkey assertion (the `PublicKeyCredential` as JSON) for a ceremony this client began
    /// with `POST /passkeys/options`; it must be a passkey of the challenge's user.
    Passkey(String),
}

/// What a completed challenge gives its caller: the user (read now), what to issue, and the
/// challenge (and passkey ceremony) taken, to [`Taken::close`] once it is issued.
#[derive(Debug)]
pub struct Completed {
    pub user: User,
    pub pending: Pending,
    pub taken: Taken,
    /// How the first factor was proved (for the before-sign-in hook and `session.created`).
    pub method: SessionMethod,
}

/// This request's mark on the challenge it takes: a MAC under the app key of the challenge's token
/// and the answer as judged (a code trimmed, a recovery code as [`recovery_key`] reduces it, a
/// passkey assertion as sent). Only the same request asked again (the same challenge, an
/// equivalent answer) finds the challenge taken by itself; the cache table holds the MAC, from
/// which neither the token nor the answer can be had.
fn take_mark(auth: &Auth, token: &str, answer: &Answer) -> String {
    let (kind, given) = match answer {
        Answer::Code(code) => ("code", code.trim().to_owned()),
        Answer::RecoveryCode(code) => ("recovery", recovery_key(code)),
        Answer::Passkey(response) => ("passkey", crate::values::secret::sha256_hex(response)),
    };
    auth.config().app_key.tag("two-factor-take", &format!("{token}|{kind}|{given}"))
}

/// `POST /two-factor-challenge`: checks `answer` for the challenge `token`, from the client that
/// passed the password step. Counted first (per client, per challenge, per user and client, per
/// user); then the challenge is taken once (marked taken by this request, one winner), then the
/// code's time step or the recovery code is used up atomically. Returns the user (read now) and
/// what to issue, which the caller issues under the version the password was checked against,
/// then closes the challenge ([`Completed::taken`]).
///
/// The same request asked again after a failure past the take (a 503: the factor's write, the
/// session's) finds the challenge taken by itself and passes again, within [`REPEAT_WINDOW`] and
/// [`MAX_REPEATS`](crate::services::auth::limits::MAX_REPEATS) times: a code or recovery code the first attempt already used passes only as
/// that use recognised (the user's last use is this challenge's), never as a second one. Any
/// other answer to a taken challenge is refused, as to a consumed one.
pub async fn complete(
    auth: &Auth,
    dispatcher: &Dispatcher,
    token: &str,
    answer: Answer,
    meta: &ClientMeta,
) -> Result<Completed, TwoFactorError> {
    let client = client_key(meta.ip.as_deref());
    auth.limit(&format!("two-factor-client:{client}"), Limit::per_minute(30)).await?;
    if !crate::values::secret::is_token_256(token) {
        return Err(TwoFactorError::InvalidChallenge);
    }
    let key = challenge_key(token);
    let taker = take_mark(auth, token, &answer);
    let stores = auth.stores();
    let found = stores.cache.get_once(&key, &taker).await?.ok_or(TwoFactorError::InvalidChallenge)?;
    // Five for the challenge's whole life: a window of its own (not one aligned to the clock,
    // which a five-minute challenge would straddle, getting two windows' worth).
    auth.limit_until(&format!("{key}:attempts"), 5, auth.now() + CHALLENGE_LIFETIME).await?;
    let repeat = found.is_repeat();
    let item: ChallengeItem =
        serde_json::from_value(found.value().clone()).map_err(|_| TwoFactorError::InvalidChallenge)?;
    if item.client != client {
        return Err(TwoFactorError::InvalidChallenge);
    }
    let id = UserId::parse(&item.user_id).ok_or(TwoFactorError::InvalidChallenge)?;
    count_attempt(auth, &id, meta).await?;
    let user = stores.users.find(&id).await?.ok_or(TwoFactorError::InvalidChallenge)?;
    if user.credentials_version != item.credentials_version || !user.two_factor.enabled() {
        return Err(TwoFactorError::InvalidChallenge);
    }
    let keep = auth.now() + REPEAT_WINDOW;
    if let Answer::Passkey(response) = &answer {
        let rp = crate::services::passkeys::relying_party(auth.config()).map_err(|_| TwoFactorError::InvalidPasskey)?;
        let signed = match crate::services::passkeys::assert(auth, &rp, response.as_bytes(), meta).await {
            Ok(signed) => signed,
            Err(crate::services::passkeys::PasskeyError::Auth(a)) => return Err(a.into()),
            // A passkey that does not verify is a wrong second factor, and the owner is told; an
            // expired or malformed ceremony is not (an owner who waited too long would be).
            Err(crate::services::passkeys::PasskeyError::Rejected) => {
                wrong_answer(auth, dispatcher, &user, &key, meta).await?;
                return Err(TwoFactorError::InvalidPasskey);
            }
            Err(_) => return Err(TwoFactorError::InvalidPasskey),
        };
        if signed.user.id != id {
            wrong_answer(auth, dispatcher, &user, &key, meta).await?;
            return Err(TwoFactorError::InvalidPasskey);
        }
        let Some(at) = stores.cache.take_once(&key, &taker, keep).await? else {
            return Err(TwoFactorError::InvalidChallenge);
        };
        // Each repeat may issue what the first attempt's failure lost: a few, no more.
        count_take(auth, &key, at).await?;
        tracing::info!(event = "two_factor_passed", method = "passkey", user_id = %user.id, ip = ?meta.ip, repeat);
        let taken = Taken::of(key).and(signed.taken);
        return Ok(Completed { user, pending: item.pending, taken, method: stored_method(&item.method) });
    }
    // Judged on the user as read, so a wrong answer burns neither the challenge nor a code; then
    // the challenge is taken (one winner), then the code used (atomically, against a race).
    let hash = match &answer {
        Answer::RecoveryCode(code) => recovery_hash(&auth.config().app_key, &id, code),
        Answer::Code(_) | Answer::Passkey(_) => String::new(),
    };
    // This sign-in's own mark on the use it makes (the taken challenge is this sign-in's alone).
    let by = key.as_str();
    let tf = &user.two_factor;
    // A repeat whose first attempt's use landed: the user's last use is this challenge's.
    let used_here = repeat && tf.last_use.as_deref() == Some(by);
    let write = match &answer {
        Answer::Code(code) => {
            let secret = secret_of(auth, &user)?;
            // The step this challenge already used, if the code is that step's (recognised by the
            // store as this very use); else a step of now, later than the last one used.
            let own = tf.last_step.filter(|s| {
                used_here
                    && crate::values::secret::constant_time_eq(code_at(&secret, *s).as_bytes(), code.trim().as_bytes())
            });
            let fresh = || {
                matching_step(&secret, code, epoch_seconds(auth.now()) as u64)
                    .filter(|s| tf.last_step.is_none_or(|last| *s > last))
            };
            own.or_else(fresh).map(|step| TwoFactorWrite::UseStep { step, by })
        }
        Answer::RecoveryCode(_) => (tf.recovery_codes.contains(&hash) || used_here)
            .then_some(TwoFactorWrite::UseRecoveryCode { hash: &hash, by }),
        Answer::Passkey(_) => None,
    };
    let Some(write) = write else {
        // A repeat's answer was right when its first attempt took the challenge: what it meets
        // now is a use by someone else since, not a wrong answer to tell the owner of.
        if !repeat {
            wrong_answer(auth, dispatcher, &user, &key, meta).await?;
        }
        return Err(TwoFactorError::InvalidCode);
    };
    let Some(at) = stores.cache.take_once(&key, &taker, keep).await? else {
        return Err(TwoFactorError::InvalidChallenge);
    };
    // Each repeat may issue what the first attempt's failure lost: a few, no more (the attempts
    // above end with the challenge's life; the keep time may outlast it).
    count_take(auth, &key, at).await?;
    let mark = match write {
        TwoFactorWrite::UseRecoveryCode { .. } => Some(promise(dispatcher, &user, "recovery_code_used").await?),
        _ => None,
    };
    if !stores.users.write_two_factor_noting(&id, write, Marks::notice(mark.as_ref()), auth.now()).await? {
        // Used by a concurrent sign-in between the read and the write.
        return Err(TwoFactorError::InvalidCode);
    }
    tracing::info!(event = "two_factor_passed", user_id = %user.id, ip = ?meta.ip, repeat);
    Ok(Completed { user, pending: item.pending, taken: Taken::of(key), method: stored_method(&item.method) })
}

/// A right password and a wrong second factor: logged, and the owner told once per challenge
/// (whoever gave it knows the password).
async fn wrong_answer(
    auth: &Auth,
    dispatcher: &Dispatcher,
    user: &User,
    challenge_key: &str,
    meta: &ClientMeta,
) -> Result<(), TwoFactorError> {
    tracing::warn!(event = "two_factor_failed", user_id = %user.id, ip = ?meta.ip);
    let told = format!("{challenge_key}:told");
    let until = Some(auth.now() + CHALLENGE_LIFETIME);
    if auth.stores().cache.add(&told, &serde_json::json!(true), until).await? {
        tell(dispatcher, user, "wrong_code").await;
    }
    Ok(())
}
