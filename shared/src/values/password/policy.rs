//! The policy a new password must meet (NIST SP 800-63B-4, single factor): length, a strength
//! estimate, no common or context-derived password.

use super::plain::{NewPassword, normalize};
use std::collections::HashSet;
use std::sync::Arc;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("the password must be at least {0} characters")]
    TooShort(usize),
    #[error("the password may not be longer than {0} characters")]
    TooLong(usize),
    #[error("this password is too common; choose one that is harder to guess")]
    Common,
    #[error("the password may not contain your email address or be the name of this app")]
    ContainsContext,
    #[error("this password is too easy to guess; avoid repeated characters, sequences, common words and your own name")]
    Guessable,
}

/// What a new password must not be built from: the account's email address and name, and the
/// app's name. Every part is optional; the default is no context at all.
#[derive(Clone, Copy, Default)]
pub struct PasswordContext<'a> {
    pub email: Option<&'a crate::Email>,
    pub name: Option<&'a str>,
    pub app_name: Option<&'a str>,
}

/// Context words of at least this many characters are given to zxcvbn; shorter ones (initials,
/// "Al") would match inside random passwords and say nothing about them.
const MIN_CONTEXT_WORD: usize = 3;

/// A password containing the email's local part is rejected outright only from this length on.
const MIN_CONTAINED_LOCAL_PART: usize = 4;

/// A [`PasswordContext`] lower-cased and in NFKC form, ready to compare with a password.
struct Context {
    email: Option<String>,
    local_part: Option<String>,
    app_name: Option<String>,
    /// The words zxcvbn is told the user is likely to reuse.
    words: Vec<String>,
}

impl Context {
    fn new(ctx: &PasswordContext<'_>) -> Self {
        let lower = |s: &str| normalize(s.trim()).to_lowercase();
        let mut words = Vec::new();
        let mut push = |w: &str| {
            if w.chars().count() >= MIN_CONTEXT_WORD && !words.iter().any(|x| x == w) {
                words.push(w.to_owned());
            }
        };
        let email = ctx.email.map(|e| lower(e.as_str()));
        let local_part = email.as_deref().and_then(|e| e.rsplit_once('@')).map(|(local, _)| local.to_owned());
        for s in [&email, &local_part].into_iter().flatten() {
            push(s);
        }
        if let Some(local) = &local_part {
            local.split(|c: char| !c.is_alphanumeric()).for_each(&mut push);
        }
        if let Some(name) = ctx.name.map(lower) {
            push(&name);
            let parts: Vec<&str> = name.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
            parts.iter().for_each(|w| push(w));
            push(&parts.concat());
        }
        let app_name = ctx.app_name.map(lower).filter(|a| !a.is_empty());
        if let Some(app) = &app_name {
            push(app);
        }
        let local_part = local_part.filter(|l| l.chars().count() >= MIN_CONTAINED_LOCAL_PART);
        Self { email, local_part, app_name, words }
    }

    /// Whether the lower-cased `password` is the email or the app name, or contains the local part.
    fn is_reused_in(&self, password: &str) -> bool {
        self.email.as_deref() == Some(password)
            || self.app_name.as_deref() == Some(password)
            || self.local_part.as_deref().is_some_and(|l| password.contains(l))
    }
}

/// NIST SP 800-63B-4 rules for a password that is the only factor: a minimum length (15 by
/// default, never below 8), a maximum of at least 64 (128 by default; longer input is rejected,
/// never truncated), no composition rules, and no password that is commonly used, expected or
/// compromised: a blocklist of common passwords, nothing built from the account's email address
/// or the app's name, and a minimum zxcvbn score (3 of 4 by default), which turns away
/// repetitive and sequential strings, keyboard walks, dates, dictionary words with predictable
/// substitutions, and passwords made of the user's own name or email (see [`PasswordContext`]).
///
/// The password is normalised to NFKC first; length counts the Unicode scalar values of that
/// form, as NIST counts characters.
#[derive(Clone)]
pub struct PasswordPolicy {
    min_len: usize,
    max_len: usize,
    min_score: u8,
    common: Arc<HashSet<String>>,
}

impl std::fmt::Debug for PasswordPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordPolicy")
            .field("min_len", &self.min_len)
            .field("max_len", &self.max_len)
            .field("min_score", &self.min_score)
            .field("common_entries", &self.common.len())
            .finish()
    }
}

pub const ABSOLUTE_MIN_LEN: usize = 8;

pub const DEFAULT_MIN_LEN: usize = 15;

pub const DEFAULT_MAX_LEN: usize = 128;

pub const MIN_MAX_LEN: usize = 64;

/// zxcvbn's own threshold: "any score less than 3 should be considered too weak". A score of 3
/// means at least 10^8 guesses by zxcvbn's estimate, far beyond what the login throttle lets an
/// online attacker try, and costly offline against argon2id.
pub const DEFAULT_MIN_SCORE: u8 = 3;

/// The highest zxcvbn score (more than 10^10 guesses).
pub const MAX_SCORE: u8 = 4;

/// zxcvbn judges only this many leading characters. Its matching grows with the cube of the
/// length: measured (release build, 2 shared cores) on random 128-character passwords, which it
/// already cuts to 100, it took 57 ms at the median and up to 480–620 ms; on 64 characters, 4 ms
/// at the median and under 50 ms at worst. 64 characters of anything but repetition score 4
/// already, so the cut can only reject a long password whose first 64 characters are weak, never
/// accept a weak one.
pub const SCORED_PREFIX: usize = 64;

impl PasswordPolicy {
    /// `min_len` is raised to 8 and `max_len` to 64 if set lower, as NIST requires. The minimum
    /// zxcvbn score is [`DEFAULT_MIN_SCORE`] (see [`Self::with_min_score`]).
    pub fn new(min_len: usize, max_len: usize, common: impl IntoIterator<Item = String>) -> Self {
        let min_len = min_len.max(ABSOLUTE_MIN_LEN);
        let max_len = max_len.max(MIN_MAX_LEN).max(min_len);
        Self {
            min_len,
            max_len,
            min_score: DEFAULT_MIN_SCORE,
            common: Arc::new(common.into_iter().map(|p| normalize(&p).to_lowercase()).collect()),
        }
    }

    /// The lowest zxcvbn score (0..=4, capped at 4) a new password may have; 0 turns the check off.
    pub fn with_min_score(mut self, min_score: u8) -> Self {
        self.min_score = min_score.min(MAX_SCORE);
        self
    }

    pub fn min_len(&self) -> usize {
        self.min_len
    }
    pub fn max_len(&self) -> usize {
        self.max_len
    }
    pub fn min_score(&self) -> u8 {
        self.min_score
    }

    /// Whether `attempt` is longer than any password this policy accepts (and so cannot match).
    /// `attempt` should be normalised already (as [`PasswordAttempt::expose`](super::PasswordAttempt::expose) is).
    pub fn is_overlong(&self, attempt: &str) -> bool {
        attempt.chars().count() > self.max_len
    }

    /// [`Self::check_with_context`] without any context.
    pub fn check(&self, raw: &str) -> Result<NewPassword, PasswordError> {
        self.check_with_context(raw, &PasswordContext::default())
    }

    /// Normalises `raw` to NFKC and checks it, cheapest rule first: length, the blocklist, the
    /// context (email, app name), then the zxcvbn score of its first [`SCORED_PREFIX`] characters
    /// with the context's words as the user's own.
    pub fn check_with_context(&self, raw: &str, context: &PasswordContext<'_>) -> Result<NewPassword, PasswordError> {
        let password = normalize(raw);
        let len = password.chars().count();
        if len > self.max_len {
            return Err(PasswordError::TooLong(self.max_len));
        }
        if len < self.min_len {
            return Err(PasswordError::TooShort(self.min_len));
        }
        let lower = password.to_lowercase();
        if self.common.contains(&lower) {
            return Err(PasswordError::Common);
        }
        let context = Context::new(context);
        if context.is_reused_in(&lower) {
            return Err(PasswordError::ContainsContext);
        }
        if self.min_score > 0 {
            let scored: String = password.chars().take(SCORED_PREFIX).collect();
            let words: Vec<&str> = context.words.iter().map(String::as_str).collect();
            if u8::from(zxcvbn::zxcvbn(&scored, &words).score()) < self.min_score {
                return Err(PasswordError::Guessable);
            }
        }
        Ok(NewPassword(password))
    }
}
