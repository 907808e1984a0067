//! Who is calling: a session cookie or a bearer token, checked against the stores. No password
//! work happens here, so the authorizer pays no argon2 cost, not even at cold start.

use crate::config::Config;
use crate::routes::{RouteAbilities, VERIFIED};
use crate::stores::Stores;
use crate::tables::credential_ref::CredentialRef;
use crate::tables::personal_access_tokens::{Abilities, PersonalAccessToken, PlainTextToken, TokenId};
use crate::tables::sessions::{SessionId, SessionKey, SessionRecord};
use crate::tables::users::{OwnerState, UserId};
use crate::values::clock::Timestamp;
use crate::values::error::StoreResult;
use std::sync::Arc;

/// An authenticated caller, with what its credential carries: the credentials version it was
/// issued under (what it derives is issued only while that holds) and its limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Session {
        user_id: UserId,
        key: SessionKey,
        credentials_version: u64,
        /// When the password was last confirmed in this session.
        password_confirmed_at: Option<Timestamp>,
        /// What the session was derived from (a cross-app session's source credential).
        parent: Option<CredentialRef>,
        /// Whether the user's address was verified (stamped on the session; `None`: issued
        /// before sessions carried it).
        email_verified: Option<bool>,
        /// A derived session's abilities (its parent token's); `None`: everything.
        abilities: Option<Abilities>,
    },
    Token {
        user_id: UserId,
        token_id: TokenId,
        abilities: Abilities,
        credentials_version: u64,
        /// When the token stops working (its own expiry or the maximum age, the sooner).
        expires_at: Option<Timestamp>,
        /// Whether the owner's address was verified (stamped on the token; `None`: issued before
        /// tokens carried it).
        email_verified: Option<bool>,
    },
}

impl Principal {
    pub fn user_id(&self) -> &UserId {
        match self {
            Principal::Session { user_id, .. } | Principal::Token { user_id, .. } => user_id,
        }
    }

    pub fn credentials_version(&self) -> u64 {
        match self {
            Principal::Session { credentials_version, .. } | Principal::Token { credentials_version, .. } => {
                *credentials_version
            }
        }
    }

    /// The credential behind this caller, as the register names it.
    pub fn credential(&self) -> CredentialRef {
        match self {
            Principal::Session { key, .. } => CredentialRef::session(key),
            Principal::Token { token_id, .. } => CredentialRef::token(token_id),
        }
    }

    /// The parent to record on something this caller derives: a token is always the parent of
    /// what it mints; a session only when it is itself derived (a cross-app session), so that the
    /// tokens a person makes from their own login are theirs to keep after logging out.
    pub fn parent_for_derived(&self) -> Option<CredentialRef> {
        match self {
            Principal::Token { .. } => Some(self.credential()),
            Principal::Session { parent: Some(_), .. } => Some(self.credential()),
            Principal::Session { parent: None, .. } => None,
        }
    }

    /// Whether the user's address was verified when the credential was issued or since (`None`:
    /// the credential was issued before credentials carried it).
    pub fn email_verified(&self) -> Option<bool> {
        match self {
            Principal::Session { email_verified, .. } | Principal::Token { email_verified, .. } => *email_verified,
        }
    }

    /// Sessions may do everything their user may, but a derived one only what its parent token
    /// could; tokens only what their abilities say.
    pub fn can(&self, ability: &str) -> bool {
        match self {
            Principal::Session { abilities: None, .. } => true,
            Principal::Session { abilities: Some(a), .. } | Principal::Token { abilities: a, .. } => a.can(ability),
        }
    }

    pub fn abilities(&self) -> Abilities {
        match self {
            Principal::Session { abilities: None, .. } => Abilities::all(),
            Principal::Session { abilities: Some(a), .. } | Principal::Token { abilities: a, .. } => a.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Access {
    pub stores: Stores,
    pub config: Arc<Config>,
    /// Calls the blocking hooks (`config.hooks`); one that reaches nothing by default.
    pub hooks: Arc<dyn crate::services::hooks::HookCaller>,
}

impl Access {
    /// The queue, with the deployment's settings (the notice delay, batch retention).
    pub fn dispatcher(&self) -> crate::queue::Dispatcher {
        crate::queue::Dispatcher::for_config(self.stores.clone(), &self.config)
    }

    pub fn new(stores: Stores, config: Arc<Config>) -> Self {
        Self { stores, config, hooks: Arc::new(crate::services::hooks::NoCaller) }
    }

    /// This access calling the hooks through `hooks`.
    pub fn with_hooks(self, hooks: Arc<dyn crate::services::hooks::HookCaller>) -> Self {
        Self { hooks, ..self }
    }

    /// Runs the hook configured at `point` (none: allowed).
    pub async fn hook(
        &self,
        point: crate::services::hooks::HookPoint,
        request: serde_json::Value,
    ) -> crate::services::hooks::Decision {
        crate::services::hooks::run(self.hooks.as_ref(), &self.config.hooks, point, request).await
    }

    pub fn now(&self) -> Timestamp {
        self.stores.clock.now()
    }

    /// When a session with this history stops being valid: idle lifetime after `last_activity`
    /// (longer if "remember me"), never beyond the absolute lifetime after `created_at`, nor past
    /// `not_after` (a derived session's parent token's expiry).
    pub fn session_expiry(
        &self,
        created_at: Timestamp,
        last_activity: Timestamp,
        remember: bool,
        not_after: Option<Timestamp>,
    ) -> Timestamp {
        let s = &self.config.session;
        let idle = if remember { s.remember } else { s.idle };
        let mut end = last_activity + idle;
        if let Some(abs) = s.absolute {
            end = end.min(created_at + abs);
        }
        if let Some(limit) = not_after {
            end = end.min(limit);
        }
        end
    }

    /// Whether a password confirmation at `at` is recent enough (Laravel's `password.confirm`).
    pub fn password_recently_confirmed(&self, at: Option<Timestamp>) -> bool {
        at.is_some_and(|t| self.now() < t + self.config.session.password_timeout)
    }

    /// The live session behind a cookie value, with sliding expiry: activity is recorded (and
    /// the expiry pushed on) at most once per `touch_interval`, by one conditional write. A
    /// session of another app, or past the absolute lifetime configured now, is no session.
    pub async fn session(&self, cookie: &str) -> StoreResult<Option<SessionRecord>> {
        let Some(id) = SessionId::parse(cookie) else {
            return Ok(None);
        };
        let (rec, owner) = match id.owner() {
            Some(owner) => self.stores.sessions.find_with_owner(&id.key(), &owner).await?,
            None => match self.stores.sessions.find(&id.key()).await? {
                // From before ids named their owner: the owner is read on its own.
                Some(rec) => {
                    let owner = self.legacy_owner(rec.user_id.as_ref()).await?;
                    (Some(rec), owner)
                }
                None => (None, None),
            },
        };
        let Some(mut rec) = rec else {
            return Ok(None);
        };
        // A value from before ids named their owner names the stored one (its owner was read on
        // its own above).
        let named = id.owner().or_else(|| rec.user_id.clone());
        if !self.speaks_for(rec.user_id.as_ref(), named.as_ref(), owner, rec.credentials_version) {
            return Ok(None);
        }
        let now = self.now();
        if rec.app.as_ref().is_some_and(|a| a != &self.config.app_name) {
            return Ok(None);
        }
        if self.config.session.absolute.is_some_and(|abs| rec.created_at + abs <= now) {
            return Ok(None);
        }
        if rec.not_after.is_some_and(|end| end <= now) {
            return Ok(None);
        }
        let interval = self.config.session.touch_interval;
        if rec.last_activity <= now - interval {
            let expires_at = self.session_expiry(rec.created_at, now, rec.remember(), rec.not_after);
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
        let (token, owner) = match &plain.owner {
            Some(owner) => self.stores.personal_access_tokens.find_with_owner(&plain.id, owner).await?,
            None => (self.stores.personal_access_tokens.find(&plain.id).await?, None),
        };
        let Some(mut token) = token else {
            return Ok(None);
        };
        if !token.matches(&plain.secret) {
            return Ok(None);
        }
        let holder = (token.tokenable.kind == "users").then(|| UserId::from_stored(token.tokenable.id.clone()));
        let owner = match plain.owner {
            Some(_) => owner,
            // From before tokens named their owner: the owner is read on its own.
            None => self.legacy_owner(holder.as_ref()).await?,
        };
        if !self.speaks_for(holder.as_ref(), plain.owner.as_ref().or(holder.as_ref()), owner, token.credentials_version)
        {
            return Ok(None);
        }
        let now = self.now();
        // The maximum age is the configuration's now, whatever the token was minted with.
        if let Some(max) = self.config.tokens.max_age {
            let cap = token.created_at + max;
            if cap <= now {
                return Ok(None);
            }
            token.expires_at = Some(token.expires_at.map_or(cap, |e| e.min(cap)));
        }
        let interval = self.config.tokens.last_used_interval;
        if token.last_used_at.is_none_or(|l| l <= now - interval) {
            if self.stores.personal_access_tokens.touch_last_used(&token.id, now, now - interval).await? {
                token.last_used_at = Some(now);
            }
            if let Some(slide) = self.config.tokens.sliding {
                let mut until = now + slide;
                if let Some(max) = self.config.tokens.max_age {
                    until = until.min(token.created_at + max);
                }
                if token.expires_at.is_some_and(|e| e < until)
                    && self.stores.personal_access_tokens.extend(&token.id, until).await?
                {
                    token.expires_at = Some(until);
                }
            }
        }
        Ok(Some(token))
    }

    /// The state of a credential's owner, read on its own: for credentials from before their
    /// presented value named their owner (one more read than the check's usual one).
    async fn legacy_owner(&self, user: Option<&UserId>) -> StoreResult<Option<OwnerState>> {
        match user {
            Some(u) => Ok(self.stores.users.find(u).await?.as_ref().map(OwnerState::of)),
            None => Ok(None),
        }
    }

    /// Whether a credential held by `holder` (as stored), presented as `named`'s, issued under
    /// `version`, still speaks for its user: the user the presented value names is the holder, and
    /// the holder is still there, not disabled or being deleted, at that credentials version. So
    /// a deletion, a disable or a credentials change ends every credential at once, even one
    /// whose revocation has not run yet.
    fn speaks_for(
        &self,
        holder: Option<&UserId>,
        named: Option<&UserId>,
        owner: Option<OwnerState>,
        version: u64,
    ) -> bool {
        let honoured = owner.is_some_and(|o| o.honours(version));
        match (holder, named) {
            (Some(h), Some(n)) => h == n && honoured,
            // A session with no user (a guest's, never issued by gatehouse) names nobody.
            (None, None) => true,
            _ => false,
        }
    }

    /// Whether the user behind a credential has a verified address: the flag the credential
    /// carries, so no read; for a credential issued before credentials carried it, one
    /// consistent read of the user.
    pub async fn verified(&self, user: &UserId, flag: Option<bool>) -> StoreResult<bool> {
        match flag {
            Some(v) => Ok(v),
            None => Ok(self.stores.users.find(user).await?.is_some_and(|u| u.email_verified_at.is_some())),
        }
    }

    /// The first requirement of `route_key` in `table` that `p` does not meet: an ability, or
    /// [`VERIFIED`] (judged by [`Access::verified`], only when the route asks for it).
    pub async fn unmet(&self, table: &RouteAbilities, route_key: &str, p: &Principal) -> StoreResult<Option<String>> {
        if let Some(a) = table.for_route(route_key).iter().find(|r| *r != VERIFIED && !p.can(r)) {
            return Ok(Some(a.clone()));
        }
        let unverified = table.wants_verified(route_key) && !self.verified(p.user_id(), p.email_verified()).await?;
        Ok(unverified.then(|| VERIFIED.to_owned()))
    }

    /// A session cookie or a bearer token, whichever is presented (the token wins when both are).
    pub async fn principal(&self, bearer: Option<&str>, cookie: Option<&str>) -> StoreResult<Option<Principal>> {
        if let Some(b) = bearer {
            return Ok(self.token(b).await?.and_then(|t| {
                let user_id = (t.tokenable.kind == "users").then(|| UserId::from_stored(t.tokenable.id.clone()))?;
                Some(Principal::Token {
                    user_id,
                    token_id: t.id,
                    abilities: t.abilities,
                    credentials_version: t.credentials_version,
                    expires_at: t.expires_at,
                    email_verified: t.email_verified,
                })
            }));
        }
        if let Some(c) = cookie {
            return Ok(self.session(c).await?.and_then(|s| {
                Some(Principal::Session {
                    user_id: s.user_id?,
                    key: s.key,
                    credentials_version: s.credentials_version,
                    password_confirmed_at: s.password_confirmed_at,
                    parent: s.parent,
                    email_verified: s.email_verified,
                    abilities: s.abilities,
                })
            }));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::clock::ManualClock;

    fn token_of(user: &UserId, email_verified: Option<bool>) -> Principal {
        Principal::Token {
            user_id: user.clone(),
            token_id: TokenId::generate(),
            abilities: Abilities::new(vec!["read".into()]),
            credentials_version: 0,
            expires_at: None,
            email_verified,
        }
    }

    #[tokio::test]
    async fn verified_is_judged_on_the_flag_and_read_from_the_user_only_for_credentials_without_one() {
        let now = crate::values::clock::from_epoch_millis(1_700_000_000_000).unwrap();
        let stores = Stores::memory(Arc::new(ManualClock::new(now)));
        let access = Access::new(stores.clone(), Arc::new(Config::from_map(&Default::default()).unwrap()));
        let table = RouteAbilities::parse("GET /r=verified,GET /w=write").unwrap();
        let (ann, bob) =
            (crate::tables::users::sample("ann@example.com"), crate::tables::users::sample("bob@example.com"));
        stores.users.create(&crate::tables::users::User { email_verified_at: Some(now), ..ann.clone() }).await.unwrap();
        stores.users.create(&bob).await.unwrap();
        let unmet = |p: Principal, route: &'static str| {
            let (access, table) = (access.clone(), table.clone());
            async move { access.unmet(&table, route, &p).await.unwrap() }
        };
        assert_eq!(unmet(token_of(&ann.id, None), "GET /r").await, None, "legacy: the user is verified");
        assert_eq!(unmet(token_of(&bob.id, None), "GET /r").await.as_deref(), Some(VERIFIED), "legacy: not");
        assert_eq!(unmet(token_of(&ann.id, Some(false)), "GET /r").await.as_deref(), Some(VERIFIED), "the flag wins");
        assert_eq!(unmet(token_of(&bob.id, Some(true)), "GET /r").await, None);
        assert_eq!(unmet(token_of(&ann.id, Some(true)), "GET /w").await.as_deref(), Some("write"));
        assert_eq!(unmet(token_of(&ann.id, Some(false)), "GET /other").await, None);
    }
}
