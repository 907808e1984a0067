//! Random secrets, their hashes, and constant-time comparison.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// `n` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    rand::rng().fill_bytes(&mut buf);
    buf
}

/// 256 random bits as 43 URL-safe base64 characters.
pub fn random_token_256() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// PKCE's S256 challenge of `verifier` (RFC 7636 §4.2): URL-safe base64 of its SHA-256.
pub fn pkce_s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Lower-case hex SHA-256 of `input`.
pub fn sha256_hex(input: impl AsRef<[u8]>) -> String {
    hex::encode(Sha256::digest(input.as_ref()))
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Implements `Debug` as `[REDACTED]` for a secret-holding type.
#[macro_export]
macro_rules! redacted_debug {
    ($t:ty) => {
        impl ::std::fmt::Debug for $t {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(concat!(stringify!($t), "([REDACTED])"))
            }
        }
    };
}

/// A bearer secret of 256 random bits, URL-safe base64 (43 characters): the type, `generate`,
/// `parse` (anything not of that shape is refused before any read), `expose`, and a redacted
/// `Debug`.
#[macro_export]
macro_rules! random_secret {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(String);
        $crate::redacted_debug!($name);

        impl $name {
            pub fn generate() -> Self {
                Self($crate::values::secret::random_token_256())
            }
            pub fn parse(s: &str) -> Option<Self> {
                $crate::values::secret::is_token_256(s).then(|| Self(s.to_owned()))
            }
            pub fn expose(&self) -> &str {
                &self.0
            }
        }
    };
}

/// Whether `s` has the shape of [`random_token_256`]'s output.
pub fn is_token_256(s: &str) -> bool {
    s.len() == 43 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_tokens_are_long_and_distinct() {
        let a = random_token_256();
        let b = random_token_256();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }

    #[test]
    fn sha256_hex_matches_a_known_vector() {
        assert_eq!(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn constant_time_eq_compares_contents_and_lengths() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
