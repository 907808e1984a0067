//! An email address, parsed once at the edge.

use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;

/// Longest address SMTP can carry (RFC 5321 path limit minus the brackets).
const MAX_LEN: usize = 254;
const MAX_LOCAL_LEN: usize = 64;

/// A syntactically valid email address. Kept as the user typed it (trimmed) for display;
/// [`Email::normalized`] is the lower-cased form used for uniqueness and look-ups, so
/// `Ann@Example.com` and `ann@example.com` are one account.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

#[derive(Debug, Error, PartialEq, Eq)]
pub enum EmailError {
    #[error("the email address is empty")]
    Empty,
    #[error("the email address is longer than {MAX_LEN} characters")]
    TooLong,
    #[error("the email address is not valid")]
    Invalid,
}

impl Email {
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        let s = input.trim();
        check(s)?;
        // The lower-cased form is the account's identity, and it is parsed again (the reset-link
        // job's data, the reset token table): an address whose lower case breaks a rule is
        // refused, so that `normalized()` always parses. "İ" lower-cases to "i" and a combining
        // dot (no letter, so no domain character), "Ⱥ" to the longer "ⱥ" (past a length limit).
        check(&s.to_lowercase())?;
        Ok(Self(s.to_owned()))
    }

    /// The address as given (trimmed).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The lower-cased address: the identity of an account.
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }
}

/// Whether `s` (trimmed) is an address.
fn check(s: &str) -> Result<(), EmailError> {
    if s.is_empty() {
        return Err(EmailError::Empty);
    }
    if s.len() > MAX_LEN {
        return Err(EmailError::TooLong);
    }
    let (local, domain) = s.rsplit_once('@').ok_or(EmailError::Invalid)?;
    let bad_char = |c: char| {
        c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"' | '\\' | '(' | ')' | '[' | ']')
    };
    let local_ok = !local.is_empty()
        && local.len() <= MAX_LOCAL_LEN
        && !local.contains('@')
        && !local.chars().any(bad_char)
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    let domain_ok = domain.contains('.')
        && !domain.starts_with(['.', '-'])
        && !domain.ends_with(['.', '-'])
        && !domain.contains("..")
        && domain.split('.').all(|label| !label.is_empty() && label.len() <= 63)
        && domain.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '.');
    if local_ok && domain_ok { Ok(()) } else { Err(EmailError::Invalid) }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

impl TryFrom<String> for Email {
    type Error = EmailError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Email> for String {
    fn from(e: Email) -> String {
        e.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_ordinary_addresses_and_trims() {
        let e = Email::parse("  Ann.Lee+news@Example.co.uk ").unwrap();
        assert_eq!(e.as_str(), "Ann.Lee+news@Example.co.uk");
        assert_eq!(e.normalized(), "ann.lee+news@example.co.uk");
    }

    #[test]
    fn rejects_what_is_not_an_address() {
        for bad in [
            "",
            "   ",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a b@example.com",
            "a@exa mple.com",
            "a@@example.com",
            ".a@example.com",
            "a..b@example.com",
            "a@-example.com",
            "a@example..com",
            "a@example.com.",
            "<a@example.com>",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn rejects_overlong_addresses() {
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(Email::parse(&long), Err(EmailError::TooLong));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: crate::proptest_cases(256), ..ProptestConfig::default() })]

        #[test]
        fn parsing_never_panics(s in "\\PC{0,300}") {
            let _ = Email::parse(&s);
        }

        #[test]
        fn normalisation_is_case_insensitive(local in "[a-zA-Z0-9]{1,20}", domain in "[a-zA-Z]{1,20}") {
            let a = Email::parse(&format!("{local}@{domain}.com")).unwrap();
            let b = Email::parse(&format!("{}@{}.com", local.to_uppercase(), domain.to_lowercase())).unwrap();
            prop_assert_eq!(a.normalized(), b.normalized());
        }
    }
}
