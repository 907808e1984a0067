//! Blocking hooks (#32), Cognito-trigger style: before a sign-up, before a sign-in, before an
//! OAuth token is issued, gatehouse asks the team's own code, which answers allow or deny (with a
//! message shown to the person), and, before a token, claims to add. On AWS a hook is a Lambda
//! function invoked with a deadline; locally (or anywhere) an HTTP endpoint. Each is optional.
//!
//! A hook that fails, answers something else than the answer below, or runs past its timeout
//! follows its policy (`deny`, the default, or `allow`), never a 500; the timeout is short (1.5 s
//! by default, 3 s at most, one hook per request) so the request's own deadline still holds.
//!
//! The request (JSON): `{"hook": "before_sign_up", "version": 1, ...}` with the point's fields
//! ([`sign_up_request`], [`sign_in_request`], [`token_request`]). The answer:
//! `{"decision": "allow" | "deny", "message"?: "…", "claims"?: {…}}`.

pub use crate::hooks::{Hook, HookPoint, HookTarget, Hooks, OnFailure};
use crate::tables::users::User;
use crate::values::email::Email;
use async_trait::async_trait;
use serde_json::{Map, Value, json};
use std::time::Duration;

/// The version of the hooks' request and answer.
pub const HOOKS_VERSION: u32 = 1;
/// The longest message shown to the person, in characters.
pub const MAX_MESSAGE_CHARS: usize = 200;
/// The largest claims object a hook may add (serialised).
pub const MAX_CLAIMS_BYTES: usize = 2048;
/// The claims a hook may not set: the token's own.
pub const RESERVED_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "scope",
    "client_id",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "at_hash",
    "c_hash",
    "sid",
    "email",
    "email_verified",
    "name",
    "cnf",
    "typ",
    "token_use",
    // The OpenID Connect standard claims (gatehouse sets some under `profile`), and delegation's.
    "updated_at",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "phone_number",
    "phone_number_verified",
    "address",
    "act",
    "may_act",
];

/// Calls a hook: its answer as JSON, or why there is none. `gatehouse_aws::hooks` calls both
/// kinds; [`NoCaller`] none.
#[async_trait]
pub trait HookCaller: Send + Sync {
    async fn call(&self, target: &HookTarget, request: &Value, timeout: Duration) -> Result<Value, String>;
}

/// A caller that reaches nothing: every configured hook fails (and follows its policy).
pub struct NoCaller;

#[async_trait]
impl HookCaller for NoCaller {
    async fn call(&self, _: &HookTarget, _: &Value, _: Duration) -> Result<Value, String> {
        Err("no hook caller in this process".into())
    }
}

/// What a hook decided (or its policy, when it failed).
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Go on; `claims` to add to the token (before a token only; empty otherwise).
    Allow { claims: Map<String, Value> },
    /// Stop; `message` for the person, when the hook gave a usable one.
    Deny { message: Option<String> },
}

impl Decision {
    fn allow() -> Self {
        Self::Allow { claims: Map::new() }
    }
}

/// Runs the hook configured at `point`, if any, with `request` (the point's fields; `hook` and
/// `version` are added). No hook: allowed.
pub async fn run(caller: &dyn HookCaller, hooks: &Hooks, point: HookPoint, mut request: Value) -> Decision {
    let Some(hook) = hooks.at(point) else { return Decision::allow() };
    if let Some(m) = request.as_object_mut() {
        m.insert("hook".into(), json!(point.as_str()));
        m.insert("version".into(), json!(HOOKS_VERSION));
    }
    let started = std::time::Instant::now();
    let answer = match tokio::time::timeout(hook.timeout, caller.call(&hook.target, &request, hook.timeout)).await {
        Ok(Ok(answer)) => parse(point, &answer),
        Ok(Err(why)) => Err(why),
        Err(_) => Err(format!("no answer within {} ms", hook.timeout.as_millis())),
    };
    let ms = started.elapsed().as_millis() as u64;
    match answer {
        Ok(decision) => {
            let allowed = matches!(decision, Decision::Allow { .. });
            tracing::info!(event = "hook_answered", hook = point.as_str(), allowed, ms);
            decision
        }
        Err(why) => {
            tracing::warn!(event = "hook_failed", hook = point.as_str(), error = %why, policy = ?hook.on_failure, ms);
            match hook.on_failure {
                OnFailure::Allow => Decision::allow(),
                OnFailure::Deny => Decision::Deny { message: None },
            }
        }
    }
}

/// The answer read strictly: anything else is a failure.
fn parse(point: HookPoint, answer: &Value) -> Result<Decision, String> {
    let m = answer.as_object().ok_or("the answer is not a JSON object")?;
    if let Some(extra) = m.keys().find(|k| !["decision", "message", "claims"].contains(&k.as_str())) {
        return Err(format!("the answer has an unknown field {extra:?}"));
    }
    let message = match m.get("message") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err("`message` is not a string".into()),
    };
    match m.get("decision").and_then(Value::as_str) {
        Some("deny") => Ok(Decision::Deny { message: message.and_then(|s| shown(&s)) }),
        Some("allow") => {
            let claims = match m.get("claims") {
                None | Some(Value::Null) => Map::new(),
                Some(Value::Object(c)) if point == HookPoint::BeforeToken => checked_claims(c)?,
                Some(Value::Object(_)) => return Err(format!("claims are for before_token, not {}", point.as_str())),
                Some(_) => return Err("`claims` is not an object".into()),
            };
            Ok(Decision::Allow { claims })
        }
        _ => Err("`decision` is neither \"allow\" nor \"deny\"".into()),
    }
}

/// A message fit to show: trimmed, at most [`MAX_MESSAGE_CHARS`], no control characters.
fn shown(message: &str) -> Option<String> {
    let m = message.trim();
    (!m.is_empty() && m.chars().count() <= MAX_MESSAGE_CHARS && !m.chars().any(char::is_control)).then(|| m.to_owned())
}

fn checked_claims(claims: &Map<String, Value>) -> Result<Map<String, Value>, String> {
    if let Some(k) = claims.keys().find(|k| RESERVED_CLAIMS.contains(&k.as_str())) {
        return Err(format!("the claim {k:?} is the token's own"));
    }
    if let Some(k) = claims.keys().find(|k| k.is_empty() || k.len() > 64 || k.chars().any(char::is_control)) {
        return Err(format!("the claim name {k:?} is not usable"));
    }
    if serde_json::to_vec(claims).map_or(usize::MAX, |v| v.len()) > MAX_CLAIMS_BYTES {
        return Err(format!("the claims are over {MAX_CLAIMS_BYTES} bytes"));
    }
    Ok(claims.clone())
}

/// Where a request came from, as hooks get it: its IP address and user agent.
#[derive(Debug, Clone, Copy)]
pub struct From<'a> {
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

fn client(from: From<'_>) -> Value {
    json!({ "ip": from.ip, "user_agent": from.user_agent })
}

/// The request of `before_sign_up`: the address and name asked for, and how.
pub fn sign_up_request(email: &Email, name: &str, method: &str, provider: Option<&str>, from: From<'_>) -> Value {
    json!({ "email": email.as_str(), "name": name, "method": method, "provider": provider, "client": client(from) })
}

/// The request of `before_sign_in`: the user about to get a session, and how it proved itself.
pub fn sign_in_request(user: &User, method: &str, from: From<'_>) -> Value {
    json!({
        "user": { "id": user.id.as_str(), "email": user.email.as_str(), "email_verified": user.email_verified_at.is_some() },
        "method": method,
        "client": client(from),
    })
}

/// The request of `before_token`: the user (none for a client's own token), the client and
/// the scopes about to be granted, and the grant.
pub fn token_request(user: Option<&User>, client_id: &str, scopes: &[String], grant: &str) -> Value {
    let user = user.map(
        |u| json!({ "id": u.id.as_str(), "email": u.email.as_str(), "email_verified": u.email_verified_at.is_some() }),
    );
    json!({ "user": user, "client_id": client_id, "scopes": scopes, "grant_type": grant })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hooks(on_failure: OnFailure) -> Hooks {
        let hook = Hook {
            target: HookTarget::Http("http://127.0.0.1:1/h".into()),
            timeout: Duration::from_millis(100),
            on_failure,
        };
        Hooks { before_sign_up: Some(hook.clone()), before_sign_in: Some(hook.clone()), before_token: Some(hook) }
    }

    struct Answers(Result<Value, String>, Duration);

    #[async_trait]
    impl HookCaller for Answers {
        async fn call(&self, _: &HookTarget, request: &Value, _: Duration) -> Result<Value, String> {
            assert!(request["hook"].is_string() && request["version"] == 1);
            tokio::time::sleep(self.1).await;
            self.0.clone()
        }
    }

    async fn decide(answer: Result<Value, String>, point: HookPoint, on_failure: OnFailure) -> Decision {
        run(&Answers(answer, Duration::ZERO), &hooks(on_failure), point, json!({})).await
    }

    #[tokio::test]
    async fn allow_and_deny_are_read_and_a_message_is_kept_only_when_fit_to_show() {
        let allow = json!({"decision": "allow"});
        assert_eq!(decide(Ok(allow), HookPoint::BeforeSignUp, OnFailure::Deny).await, Decision::allow());
        let deny = json!({"decision": "deny", "message": "Only example.com addresses may sign up."});
        let msg = Some("Only example.com addresses may sign up.".to_owned());
        assert_eq!(decide(Ok(deny), HookPoint::BeforeSignUp, OnFailure::Allow).await, Decision::Deny { message: msg });
        for bad in [json!("x\u{7}y"), json!("x".repeat(201)), json!("   ")] {
            let deny = json!({"decision": "deny", "message": bad});
            assert_eq!(
                decide(Ok(deny), HookPoint::BeforeSignIn, OnFailure::Allow).await,
                Decision::Deny { message: None }
            );
        }
    }

    #[tokio::test]
    async fn garbage_errors_and_hangs_follow_the_policy() {
        let garbage = [
            Ok(json!("allow")),
            Ok(json!({"decision": "maybe"})),
            Ok(json!({"decision": "allow", "extra": 1})),
            Ok(json!({"decision": "allow", "claims": {"tenant": "a"}})), // claims before sign-up
            Ok(json!({"decision": "allow", "message": 7})),
            Err("connection refused".to_owned()),
        ];
        for answer in garbage {
            let d = decide(answer.clone(), HookPoint::BeforeSignUp, OnFailure::Deny).await;
            assert_eq!(d, Decision::Deny { message: None }, "{answer:?}");
            let d = decide(answer.clone(), HookPoint::BeforeSignUp, OnFailure::Allow).await;
            assert_eq!(d, Decision::allow(), "{answer:?}");
        }
        let slow = Answers(Ok(json!({"decision": "allow"})), Duration::from_secs(5));
        let started = std::time::Instant::now();
        let d = run(&slow, &hooks(OnFailure::Deny), HookPoint::BeforeToken, json!({})).await;
        assert_eq!(d, Decision::Deny { message: None });
        assert!(started.elapsed() < Duration::from_secs(2), "cut at the hook's timeout");
    }

    #[tokio::test]
    async fn claims_are_taken_before_a_token_only_and_never_the_token_s_own() {
        let ok = json!({"decision": "allow", "claims": {"tenant": "acme", "roles": ["admin"]}});
        let Decision::Allow { claims } = decide(Ok(ok), HookPoint::BeforeToken, OnFailure::Deny).await else {
            panic!("allowed")
        };
        assert_eq!(claims["tenant"], "acme");
        for own in ["sub", "aud", "exp", "scope", "email"] {
            let answer = json!({"decision": "allow", "claims": {own: "x"}});
            assert_eq!(
                decide(Ok(answer), HookPoint::BeforeToken, OnFailure::Deny).await,
                Decision::Deny { message: None },
                "{own}"
            );
        }
        let big = json!({"decision": "allow", "claims": {"blob": "x".repeat(3000)}});
        assert_eq!(decide(Ok(big), HookPoint::BeforeToken, OnFailure::Deny).await, Decision::Deny { message: None });
    }
}
