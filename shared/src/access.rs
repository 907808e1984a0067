//! Who is calling: a session cookie or a bearer token, checked against the stores. No password
//! work happens here, so the authorizer pays no argon2 cost, not even at cold start.

use crate::clock::Timestamp;
use crate::config::Config;
use crate::error::StoreResult;
use crate::sessions::{SessionId, SessionKey, SessionRecord};
use crate::stores::Stores;
use crate::tokens::{Abilities, PersonalAccessToken, PlainTextToken, TokenId};
use crate::users::UserId;
use std::sync::Arc;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Session { user_id: UserId, key: SessionKey },
    Token { user_id: UserId, token_id: TokenId, abilities: Abilities },
}

impl Principal {
    pub fn user_id(&self) -> &UserId {
        match self {
            Principal::Session { user_id, .. } | Principal::Token { user_id, .. } => user_id,
        }
    }

    /// Sessions may do everything their user may; tokens only what their abilities say.
    pub fn can(&self, ability: &str) -> bool {
        match self {
            Principal::Session { .. } => true,
            Principal::Token { abilities, .. } => abilities.can(ability),
        }
    }

    pub fn abilities(&self) -> Abilities {
        match self {
            Principal::Session { .. } => Abilities::all(),
            Principal::Token { abilities, .. } => abilities.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Access {
    pub stores: Stores,
    pub config: Arc<Config>,
}

impl Access {
    pub fn new(stores: Stores, config: Arc<Config>) -> Self {
        Self { stores, config }
    }

    fn now(&self) -> Timestamp {
        self.stores.clock.now()
    }

    /// When a session with this history stops being valid: idle lifetime after `last_activity`
    /// (longer if "remember me"), never beyond the absolute lifetime after `created_at`.
    pub fn session_expiry(&self, created_at: Timestamp, last_activity: Timestamp, remember: bool) -> Timestamp {
        let s = &self.config.session;
        let idle = if remember { s.remember } else { s.idle };
        let mut end = last_activity + idle;
        if let Some(abs) = s.absolute {
            end = end.min(created_at + abs);
        }
        end
    }

    /// The live session behind a cookie value, with sliding expiry: activity is recorded (and
    /// the expiry pushed on) at most once per `touch_interval`, by one conditional write.
    pub async fn session(&self, cookie: &str) -> StoreResult<Option<SessionRecord>> {
        let Some(id) = SessionId::parse(cookie) else {
            return Ok(None);
        };
        let Some(mut rec) = self.stores.sessions.find(&id.key()).await? else {
            return Ok(None);
        };
        let now = self.now();
        let interval = self.config.session.touch_interval;
        if rec.last_activity <= now - interval {
            let remember = rec.payload.get("remember").and_then(|v| v.as_bool()).unwrap_or(false);
            let expires_at = self.session_expiry(rec.created_at, now, remember);
            if self.stores.sessions.touch(&rec.key, now, expires_at, now - interval).await? {
                rec.last_activity = now;
                rec.expires_at = expires_at;
            }
        }
        Ok(Some(rec))
    }

    /// The live token behind a bearer value: well-formed and checksummed before any read, then
    /// one consistent read, a constant-time hash comparison, and at most one `last_used_at` write
    /// per interval.
    pub async fn token(&self, bearer: &str) -> StoreResult<Option<PersonalAccessToken>> {
        let Some(plain) = PlainTextToken::parse(bearer, &self.config.tokens.prefix) else {
            return Ok(None);
        };
        let Some(mut token) = self.stores.tokens.find(&plain.id).await? else {
            return Ok(None);
        };
        if !token.matches(&plain.secret) {
            return Ok(None);
        }
        let now = self.now();
        let interval = self.config.tokens.last_used_interval;
        if token.last_used_at.is_none_or(|l| l <= now - interval) {
            if self.stores.tokens.touch_last_used(&token.id, now, now - interval).await? {
                token.last_used_at = Some(now);
            }
            if let Some(slide) = self.config.tokens.sliding {
                let mut until = now + slide;
                if let Some(max) = self.config.tokens.max_age {
                    until = until.min(token.created_at + max);
                }
                if token.expires_at.is_some_and(|e| e < until) && self.stores.tokens.extend(&token.id, until).await? {
                    token.expires_at = Some(until);
                }
            }
        }
        Ok(Some(token))
    }

    /// A session cookie or a bearer token, whichever is presented (the token wins when both are).
    pub async fn principal(&self, bearer: Option<&str>, cookie: Option<&str>) -> StoreResult<Option<Principal>> {
        if let Some(b) = bearer {
            return Ok(self.token(b).await?.and_then(|t| {
                let user_id = (t.tokenable.kind == "users").then(|| UserId::from_stored(t.tokenable.id.clone()))?;
                Some(Principal::Token { user_id, token_id: t.id, abilities: t.abilities })
            }));
        }
        if let Some(c) = cookie {
            return Ok(self
                .session(c)
                .await?
                .and_then(|s| Some(Principal::Session { user_id: s.user_id?, key: s.key })));
        }
        Ok(None)
    }
}
