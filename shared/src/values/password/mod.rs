//! Passwords: the policy a new one must meet (NIST SP 800-63B-4, single factor), argon2id
//! hashing, and verification that says when a stored hash should be upgraded.

mod hash;
mod plain;
mod policy;

pub use hash::{HashCost, HashError, HashingSlot, HashingSlots, PasswordHasher, Verification, hashing_slots};
pub use plain::{NewPassword, PasswordAttempt, PasswordHash};
pub use policy::{
    ABSOLUTE_MIN_LEN, DEFAULT_MAX_LEN, DEFAULT_MIN_LEN, DEFAULT_MIN_SCORE, MAX_SCORE, MIN_MAX_LEN, PasswordContext,
    PasswordError, PasswordPolicy, SCORED_PREFIX,
};
