//! The blocking hooks' configuration (#32): where each hook runs (`GATEHOUSE_HOOK_*`), its
//! timeout and what its failure means. Calling them is `services::hooks`.

use std::time::Duration;

/// The longest a hook may take: a request asks one hook at most, and a provider's sign-in may
/// have spent 6 s on its outbound calls before it, within the functions' 10 s.
pub const MAX_TIMEOUT_MS: u64 = 3000;

/// Where a hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookPoint {
    BeforeSignUp,
    BeforeSignIn,
    BeforeToken,
}

impl HookPoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BeforeSignUp => "before_sign_up",
            Self::BeforeSignIn => "before_sign_in",
            Self::BeforeToken => "before_token",
        }
    }
}

/// What is called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookTarget {
    /// `POST` of the request as JSON to this URL (https, or http to this machine).
    Http(String),
    /// A Lambda function (its name or ARN), invoked with the request as its payload.
    Lambda(String),
}

/// What a failing hook means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    Deny,
    Allow,
}

/// One configured hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    pub target: HookTarget,
    pub timeout: Duration,
    pub on_failure: OnFailure,
}

/// The configured hooks (`GATEHOUSE_HOOK_*`); none by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hooks {
    pub before_sign_up: Option<Hook>,
    pub before_sign_in: Option<Hook>,
    pub before_token: Option<Hook>,
}

impl Hooks {
    pub fn at(&self, point: HookPoint) -> Option<&Hook> {
        match point {
            HookPoint::BeforeSignUp => self.before_sign_up.as_ref(),
            HookPoint::BeforeSignIn => self.before_sign_in.as_ref(),
            HookPoint::BeforeToken => self.before_token.as_ref(),
        }
    }

    /// From `GATEHOUSE_HOOK_BEFORE_SIGN_UP` / `_BEFORE_SIGN_IN` / `_BEFORE_TOKEN` (a URL, or
    /// `lambda:<name or ARN>`, or a Lambda ARN), `GATEHOUSE_HOOK_TIMEOUT_MS` (1500; 50 to 5000)
    /// and `GATEHOUSE_HOOK_ON_FAILURE` (`deny` or `allow`), each overridable per hook
    /// (`GATEHOUSE_HOOK_BEFORE_TOKEN_ON_FAILURE`, `…_TIMEOUT_MS`).
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, String> {
        let timeout_ms = |name: &str, default: u64| -> Result<u64, String> {
            match get(name).filter(|v| !v.trim().is_empty()) {
                None => Ok(default),
                Some(v) => match v.trim().parse::<u64>() {
                    Ok(n) if (50..=MAX_TIMEOUT_MS).contains(&n) => Ok(n),
                    _ => Err(format!("{name} must be a number of milliseconds from 50 to {MAX_TIMEOUT_MS}")),
                },
            }
        };
        let policy = |name: &str, default: OnFailure| -> Result<OnFailure, String> {
            match get(name).map(|v| v.trim().to_ascii_lowercase()).filter(|v| !v.is_empty()).as_deref() {
                None => Ok(default),
                Some("deny") => Ok(OnFailure::Deny),
                Some("allow") => Ok(OnFailure::Allow),
                Some(_) => Err(format!("{name} must be deny or allow")),
            }
        };
        let timeout = timeout_ms("GATEHOUSE_HOOK_TIMEOUT_MS", 1500)?;
        let on_failure = policy("GATEHOUSE_HOOK_ON_FAILURE", OnFailure::Deny)?;
        let one = |prefix: &str| -> Result<Option<Hook>, String> {
            let Some(value) = get(prefix).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) else {
                return Ok(None);
            };
            let target = if let Some(name) = value.strip_prefix("lambda:").filter(|n| !n.trim().is_empty()) {
                HookTarget::Lambda(name.trim().to_owned())
            } else if ["arn:aws:lambda:", "arn:aws-cn:lambda:", "arn:aws-us-gov:lambda:"]
                .iter()
                .any(|p| value.starts_with(p))
            {
                HookTarget::Lambda(value)
            } else if crate::providers::allowed_url(&value) {
                HookTarget::Http(value)
            } else {
                return Err(format!(
                    "{prefix} must be an https:// URL (http:// to this machine), lambda:<function> or a Lambda ARN"
                ));
            };
            Ok(Some(Hook {
                target,
                timeout: Duration::from_millis(timeout_ms(&format!("{prefix}_TIMEOUT_MS"), timeout)?),
                on_failure: policy(&format!("{prefix}_ON_FAILURE"), on_failure)?,
            }))
        };
        Ok(Self {
            before_sign_up: one("GATEHOUSE_HOOK_BEFORE_SIGN_UP")?,
            before_sign_in: one("GATEHOUSE_HOOK_BEFORE_SIGN_IN")?,
            before_token: one("GATEHOUSE_HOOK_BEFORE_TOKEN")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_is_read_strictly() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
        };
        let none = Hooks::from_lookup(&env(&[])).unwrap();
        assert_eq!(none, Hooks::default());
        let set = Hooks::from_lookup(&env(&[
            ("GATEHOUSE_HOOK_BEFORE_SIGN_UP", "https://hooks.example.com/sign-up"),
            ("GATEHOUSE_HOOK_BEFORE_TOKEN", "lambda:claims"),
            ("GATEHOUSE_HOOK_BEFORE_TOKEN_ON_FAILURE", "allow"),
            ("GATEHOUSE_HOOK_TIMEOUT_MS", "800"),
        ]))
        .unwrap();
        let up = set.before_sign_up.unwrap();
        assert_eq!(
            (up.target, up.timeout, up.on_failure),
            (HookTarget::Http("https://hooks.example.com/sign-up".into()), Duration::from_millis(800), OnFailure::Deny)
        );
        let token = set.before_token.unwrap();
        assert_eq!((token.target, token.on_failure), (HookTarget::Lambda("claims".into()), OnFailure::Allow));
        for bad in [
            &[("GATEHOUSE_HOOK_BEFORE_SIGN_IN", "http://hooks.example.com/x")][..],
            &[("GATEHOUSE_HOOK_BEFORE_SIGN_IN", "ftp://x")],
            &[("GATEHOUSE_HOOK_BEFORE_SIGN_IN", "lambda:")],
            &[("GATEHOUSE_HOOK_TIMEOUT_MS", "60000")],
            &[("GATEHOUSE_HOOK_ON_FAILURE", "maybe")],
        ] {
            assert!(Hooks::from_lookup(&env(bad)).is_err(), "{bad:?}");
        }
    }
}
