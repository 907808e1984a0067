//! A password as typed, in NFKC form: a sign-in's attempt, a new password the policy accepted,
//! and the stored hash. None is ever printed.

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization as _;

/// The NFKC form of `raw`, as NIST SP 800-63B-4 asks before a password is hashed or compared:
/// the same password typed as composed (NFC) or decomposed (NFD) characters, or with
/// compatibility forms (full-width letters, ligatures), is the same password.
pub(super) fn normalize(raw: &str) -> String {
    if raw.is_ascii() { raw.to_owned() } else { raw.nfkc().collect() }
}

/// A candidate password as typed at login, in NFKC form: any length up to the policy's maximum
/// is accepted for verification, nothing is checked for strength. Never printed.
#[derive(Clone)]
pub struct PasswordAttempt(pub(super) String);
crate::redacted_debug!(PasswordAttempt);

impl PasswordAttempt {
    /// Normalises `raw` to NFKC.
    pub fn new(raw: impl Into<String>) -> Self {
        let raw = raw.into();
        Self(if raw.is_ascii() { raw } else { raw.nfkc().collect() })
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A new password that meets the policy, in NFKC form. Only [`PasswordPolicy::check`](super::PasswordPolicy::check) and
/// [`PasswordPolicy::check_with_context`](super::PasswordPolicy::check_with_context) make one.
#[derive(Clone)]
pub struct NewPassword(pub(super) String);
crate::redacted_debug!(NewPassword);

impl NewPassword {
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn as_attempt(&self) -> PasswordAttempt {
        PasswordAttempt(self.0.clone())
    }
}

/// A stored argon2id PHC string. Never printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PasswordHash(pub(super) String);
crate::redacted_debug!(PasswordHash);

impl PasswordHash {
    /// Wraps a stored PHC string (from the database).
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The hash of an account with no password (signed up through a provider or an email link):
    /// no PHC string, so it never verifies, and checking against it costs what a wrong password
    /// costs ([`super::PasswordHasher::verify`] hashes the attempt anyway). A reset gives it one.
    pub fn unusable() -> Self {
        Self(UNUSABLE.to_owned())
    }

    /// Whether this is a real password's hash (not [`Self::unusable`]).
    pub fn is_usable(&self) -> bool {
        self.0 != UNUSABLE
    }
}

/// Not a PHC string (those begin with `$`), as `!` in `/etc/shadow` locks a password.
const UNUSABLE: &str = "!no-password";
