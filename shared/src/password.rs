//! Passwords: the policy a new one must meet (NIST SP 800-63B-4, single factor), argon2id
//! hashing, and verification that says when a stored hash should be upgraded.

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _, phc::PasswordHash as Phc};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::Arc;
use thiserror::Error;

/// A candidate password as typed at login: any length up to the policy's maximum is accepted for
/// verification, nothing is checked for strength. Never printed.
#[derive(Clone)]
pub struct PasswordAttempt(String);
crate::redacted_debug!(PasswordAttempt);

impl PasswordAttempt {
    pub fn new(raw: impl Into<String>) -> Self {
        Self(raw.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A new password that meets the policy. Only [`PasswordPolicy::check`] makes one.
#[derive(Clone)]
pub struct NewPassword(String);
crate::redacted_debug!(NewPassword);

impl NewPassword {
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn as_attempt(&self) -> PasswordAttempt {
        PasswordAttempt(self.0.clone())
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("the password must be at least {0} characters")]
    TooShort(usize),
    #[error("the password may not be longer than {0} characters")]
    TooLong(usize),
    #[error("this password is too common; choose one that is harder to guess")]
    Common,
}

/// NIST SP 800-63B-4 rules for a password that is the only factor: a minimum length (15 by
/// default, never below 8), a maximum of at least 64 (128 by default; longer input is rejected,
/// never truncated), no composition rules, and a blocklist of common passwords. Length counts
/// Unicode scalar values, as NIST counts characters.
#[derive(Clone)]
pub struct PasswordPolicy {
    min_len: usize,
    max_len: usize,
    common: Arc<HashSet<String>>,
}

impl std::fmt::Debug for PasswordPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordPolicy")
            .field("min_len", &self.min_len)
            .field("max_len", &self.max_len)
            .field("common_entries", &self.common.len())
            .finish()
    }
}

pub const ABSOLUTE_MIN_LEN: usize = 8;
pub const DEFAULT_MIN_LEN: usize = 15;
pub const DEFAULT_MAX_LEN: usize = 128;
pub const MIN_MAX_LEN: usize = 64;

impl PasswordPolicy {
    /// `min_len` is raised to 8 and `max_len` to 64 if set lower, as NIST requires.
    pub fn new(min_len: usize, max_len: usize, common: impl IntoIterator<Item = String>) -> Self {
        let min_len = min_len.max(ABSOLUTE_MIN_LEN);
        let max_len = max_len.max(MIN_MAX_LEN).max(min_len);
        Self { min_len, max_len, common: Arc::new(common.into_iter().map(|p| p.to_lowercase()).collect()) }
    }

    pub fn min_len(&self) -> usize {
        self.min_len
    }
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Whether `attempt` is longer than any password this policy accepts (and so cannot match).
    pub fn is_overlong(&self, attempt: &str) -> bool {
        attempt.chars().count() > self.max_len
    }

    pub fn check(&self, raw: &str) -> Result<NewPassword, PasswordError> {
        let len = raw.chars().count();
        if len > self.max_len {
            return Err(PasswordError::TooLong(self.max_len));
        }
        if len < self.min_len {
            return Err(PasswordError::TooShort(self.min_len));
        }
        if self.common.contains(&raw.to_lowercase()) {
            return Err(PasswordError::Common);
        }
        Ok(NewPassword(raw.to_owned()))
    }
}

/// A stored argon2id PHC string. Never printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PasswordHash(String);
crate::redacted_debug!(PasswordHash);

impl PasswordHash {
    /// Wraps a stored PHC string (from the database).
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// argon2id cost parameters. The default is OWASP's: 19 MiB, 2 passes, 1 lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashCost {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for HashCost {
    fn default() -> Self {
        Self {
            memory_kib: Params::DEFAULT_M_COST,
            iterations: Params::DEFAULT_T_COST,
            parallelism: Params::DEFAULT_P_COST,
        }
    }
}

#[derive(Debug, Error)]
pub enum HashError {
    #[error("invalid argon2 parameters: {0}")]
    Params(String),
    #[error("hashing failed: {0}")]
    Hash(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// The password matches. `needs_rehash` is true when the stored hash used other parameters
    /// (or another algorithm) than the live ones: store a fresh hash now that the password is known.
    Valid {
        needs_rehash: bool,
    },
    Invalid,
}

impl Verification {
    pub fn is_valid(self) -> bool {
        matches!(self, Verification::Valid { .. })
    }
}

/// argon2id hashing with the live parameters. Both operations are CPU-bound for tens of
/// milliseconds: call them from `spawn_blocking` (see [`PasswordHasher::hash_blocking`]).
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PasswordHasher(m={}, t={}, p={})", self.params.m_cost(), self.params.t_cost(), self.params.p_cost())
    }
}

impl PasswordHasher {
    pub fn new(cost: HashCost) -> Result<Self, HashError> {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
            .map_err(|e| HashError::Params(e.to_string()))?;
        Ok(Self { params })
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    pub fn hash(&self, password: &NewPassword) -> Result<PasswordHash, HashError> {
        self.hash_str(password.expose())
    }

    fn hash_str(&self, password: &str) -> Result<PasswordHash, HashError> {
        let phc: Phc = self.argon2().hash_password(password.as_bytes()).map_err(|e| HashError::Hash(e.to_string()))?;
        Ok(PasswordHash(phc.to_string()))
    }

    /// A hash of a random password, to verify unknown accounts against so that they cost the same
    /// time as known ones.
    pub fn dummy_hash(&self) -> Result<PasswordHash, HashError> {
        self.hash_str(&crate::secret::random_token_256())
    }

    /// Checks `attempt` against `stored`. A stored value that is not a PHC string verifies as
    /// invalid (after the same work as a real verification would cost, so it leaks nothing).
    pub fn verify(&self, attempt: &PasswordAttempt, stored: &PasswordHash) -> Verification {
        let Ok(phc) = Phc::new(stored.as_str()) else {
            let _ = self.hash_str(attempt.expose());
            return Verification::Invalid;
        };
        match self.argon2().verify_password(attempt.expose().as_bytes(), &phc) {
            Ok(()) => Verification::Valid { needs_rehash: self.needs_rehash(&phc) },
            Err(_) => Verification::Invalid,
        }
    }

    fn needs_rehash(&self, phc: &Phc) -> bool {
        if phc.algorithm.as_str() != "argon2id" || phc.version != Some(0x13) {
            return true;
        }
        match Params::try_from(phc) {
            Ok(p) => {
                p.m_cost() != self.params.m_cost()
                    || p.t_cost() != self.params.t_cost()
                    || p.p_cost() != self.params.p_cost()
            }
            Err(_) => true,
        }
    }

    /// [`Self::hash`] on the blocking pool, off the async executor.
    pub async fn hash_blocking(&self, password: NewPassword) -> Result<PasswordHash, HashError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.hash(&password)).await.map_err(|e| HashError::Hash(e.to_string()))?
    }

    /// [`Self::verify`] on the blocking pool, off the async executor.
    pub async fn verify_blocking(&self, attempt: PasswordAttempt, stored: PasswordHash) -> Verification {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.verify(&attempt, &stored)).await.unwrap_or(Verification::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> PasswordHasher {
        PasswordHasher::new(HashCost { memory_kib: 1024, iterations: 1, parallelism: 1 }).unwrap()
    }

    fn policy() -> PasswordPolicy {
        PasswordPolicy::new(15, 128, ["correcthorsebatterystaple".to_owned()])
    }

    #[test]
    fn policy_enforces_length_in_characters_not_bytes() {
        assert_eq!(policy().check("short").unwrap_err(), PasswordError::TooShort(15));
        // 15 two-byte characters: 30 bytes, 15 characters.
        assert!(policy().check(&"é".repeat(15)).is_ok());
        assert_eq!(policy().check(&"a".repeat(129)).unwrap_err(), PasswordError::TooLong(128));
        assert!(policy().check(&"a".repeat(128)).is_ok());
    }

    #[test]
    fn policy_rejects_common_passwords_case_insensitively() {
        assert_eq!(policy().check("CorrectHorseBatteryStaple").unwrap_err(), PasswordError::Common);
    }

    #[test]
    fn policy_never_goes_below_nist_floors() {
        let p = PasswordPolicy::new(3, 10, Vec::<String>::new());
        assert_eq!(p.min_len(), 8);
        assert_eq!(p.max_len(), 64);
    }

    #[test]
    fn hash_verifies_and_rejects() {
        let h = cheap();
        let pw = policy().check("a long enough passphrase").unwrap();
        let stored = h.hash(&pw).unwrap();
        assert!(stored.as_str().starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert_eq!(h.verify(&pw.as_attempt(), &stored), Verification::Valid { needs_rehash: false });
        assert_eq!(h.verify(&PasswordAttempt::new("a long enough passphrasE"), &stored), Verification::Invalid);
    }

    #[test]
    fn changed_parameters_ask_for_a_rehash() {
        let old = cheap();
        let pw = policy().check("a long enough passphrase").unwrap();
        let stored = old.hash(&pw).unwrap();
        let new = PasswordHasher::new(HashCost { memory_kib: 2048, iterations: 1, parallelism: 1 }).unwrap();
        assert_eq!(new.verify(&pw.as_attempt(), &stored), Verification::Valid { needs_rehash: true });
    }

    #[test]
    fn garbage_in_the_store_verifies_as_invalid() {
        assert_eq!(
            cheap().verify(&PasswordAttempt::new("x"), &PasswordHash::from_stored("not a hash".into())),
            Verification::Invalid
        );
    }

    #[test]
    fn secrets_do_not_leak_through_debug() {
        let pw = policy().check("a long enough passphrase").unwrap();
        assert!(!format!("{pw:?}").contains("passphrase"));
        let stored = cheap().hash(&pw).unwrap();
        assert!(!format!("{stored:?}").contains("argon2"));
    }
}
