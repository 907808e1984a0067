//! Rate limits: every limit a request is held to, counted before any hash, and the repeats a taken challenge allows.

use super::{Auth, AuthError};
use crate::throttle::Limit;
use crate::values::clock::Timestamp;

/// Password checks of a signed-in user per hour, from all clients together.
const PASSWORD_CHECKS_PER_USER_HOUR: Limit = Limit::per_hour(30);

/// The throttle key and limit of a user's password checks across clients ([`Auth::user_tag`]
/// `tag`).
pub fn password_checks_limit(tag: &str) -> (String, Limit) {
    (format!("password-check-hour:{tag}"), PASSWORD_CHECKS_PER_USER_HOUR)
}

/// `Throttled` (logged with the keys' families, never the keys) when a limiter said to wait.
pub(crate) fn throttled<'a>(keys: impl Iterator<Item = &'a str>, retry_after: Option<u64>) -> Result<(), AuthError> {
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

impl Auth {
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
    /// [`RateLimiter::attempt_until`](crate::throttle::RateLimiter::attempt_until)); `Throttled` past it.
    pub async fn limit_until(&self, key: &str, max: i64, end: Timestamp) -> Result<(), AuthError> {
        let verdict = self.limiter.attempt_until(key, max, end).await?;
        throttled([key].into_iter(), verdict)
    }
}
