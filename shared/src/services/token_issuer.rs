//! Minting personal access tokens (Sanctum's `createToken`), with the rules that keep a derived
//! token no stronger than what made it:
//! - from a token: abilities within the parent's, an expiry no later than the parent's, and the
//!   parent recorded (revoking it revokes the child);
//! - from a session: a strong token ([`TokenIssuer::is_strong`]: all abilities, one that can mint
//!   tokens or hand off, no expiry, or a life past `GATEHOUSE_TOKEN_STRONG_AFTER_DAYS`) needs a
//!   recent password confirmation; a session opened by a cross-app handoff mints nothing;
//! - per user, at most `GATEHOUSE_TOKENS_PER_USER_PER_HOUR` / `_PER_DAY` are minted by
//!   credentials (counted before anything is written), so a stolen one cannot pad the register;
//! - from a password check (`/tokens/issue`): issued under the credentials version the check read;
//! - every token is capped by `GATEHOUSE_TOKEN_MAX_AGE_MINUTES` and issued through the register
//!   under a credentials version, so a reset racing the mint leaves nothing usable.

use crate::routes::VERIFIED;
use crate::services::access::{Access, Principal};
use crate::services::revocation;
use crate::tables::credential_ref::CredentialRef;
use crate::tables::credentials::{CredentialEntry, NewCredential, Revocation, reasons};
use crate::tables::events::{EventBody, TokenCreated, TokenRevokeReason, TokenRevoked};
use crate::tables::personal_access_tokens::{
    self, Abilities, PersonalAccessToken, PlainTextToken, TokenGrant, TokenId, Tokenable,
};
use crate::tables::users::{User, UserId};
use crate::values::clock::{Span, Timestamp};
use crate::values::error::StoreError;

/// What the caller asked for.
pub struct TokenRequest {
    pub name: String,
    pub abilities: Abilities,
    pub expires_in_minutes: Option<i64>,
}

/// A token just minted: the plaintext (shown once) and what was stored.
pub struct NewToken {
    pub plain: PlainTextToken,
    pub record: PersonalAccessToken,
}

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("a session opened by a cross-app handoff cannot mint tokens or hand off; sign in to this app")]
    DerivedSession,
    #[error("the abilities asked for exceed the abilities of the token making the request")]
    ExceedsParent,
    #[error(
        "a token that can do everything, mint tokens or hand off, or that lives long, needs a recent password confirmation"
    )]
    PasswordConfirmationRequired,
    #[error("too many tokens minted; retry in {retry_after} seconds")]
    Throttled { retry_after: u64 },
    /// The credential (or password check) it would derive from no longer holds: a reset or a
    /// logout elsewhere moved the credentials version on. Nothing was written.
    #[error("the credential making the request was revoked")]
    Revoked,
    /// The password a sign-in checked was changed before its token was issued: the old password
    /// no longer counts, and the answer is a wrong password's. Nothing was written.
    #[error("the password was changed since it was checked")]
    PasswordChanged,
    /// An ability no token may hold was asked for ([`TokenIssuer::grantable`]). Nothing was written.
    #[error("\"verified\" is not an ability a token can hold")]
    Ungrantable,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a minted credential derives from: the credentials version it is issued under and the
/// parent the register records.
struct Lineage {
    credentials_version: u64,
    parent: Option<CredentialRef>,
    email_verified: Option<bool>,
}

/// Mints tokens for callers and for password checks.
pub struct TokenIssuer<'a> {
    access: &'a Access,
}

impl<'a> TokenIssuer<'a> {
    pub fn new(access: &'a Access) -> Self {
        Self { access }
    }

    /// A session opened by a handoff exchange is this app's session for browsing, never a source
    /// of credentials: it came from a token that may be far weaker and shorter-lived.
    pub fn refuse_derived_session(p: &Principal) -> Result<(), IssueError> {
        match p {
            Principal::Session { parent: Some(_), .. } => Err(IssueError::DerivedSession),
            _ => Ok(()),
        }
    }

    /// Whether `caller` may hand out `abilities` (a session holds them all).
    pub fn within_caller(caller: &Principal, abilities: &Abilities) -> bool {
        abilities.as_slice().iter().all(|a| caller.can(a))
    }

    /// The expiry a new token gets: the requested one, capped by the maximum age.
    fn capped_expiry(&self, expires_in_minutes: Option<i64>) -> Option<Timestamp> {
        let now = self.access.now();
        let mut expires_at = expires_in_minutes.map(|m| now + Span::minutes(m));
        if let Some(max) = self.access.config.tokens.max_age {
            let cap = now + max;
            expires_at = Some(expires_at.map_or(cap, |e| e.min(cap)));
        }
        expires_at
    }

    /// Whether a token with `abilities` living until `expires_at` is strong: it can do
    /// everything, mint tokens, hand off (each a way to make more credentials), never expires, or
    /// lives past `GATEHOUSE_TOKEN_STRONG_AFTER_DAYS`. A session mints one only within the
    /// password confirmation window.
    pub fn is_strong(&self, abilities: &Abilities, expires_at: Option<Timestamp>) -> bool {
        let bound = self.access.now() + self.access.config.tokens.strong_after;
        abilities.can(personal_access_tokens::CREATE_TOKENS)
            || abilities.can(personal_access_tokens::CROSS_APP_HANDOFF)
            || expires_at.is_none_or(|e| e > bound)
    }

    /// Counts a mint against the user's hourly and daily limits, before anything is written.
    async fn count_mint(&self, user: &UserId) -> Result<(), IssueError> {
        let config = &self.access.config;
        let tag = config.app_key.tag("user-tag", user.as_str());
        let [hour, day] = config.limits.tokens_per_user;
        let (h, d) = (format!("token-mint-hour:{tag}"), format!("token-mint-day:{tag}"));
        let limiter =
            crate::throttle::RateLimiter::new(self.access.stores.cache.clone(), self.access.stores.clock.clone());
        match limiter.attempt_all(&[(&h, hour), (&d, day)]).await? {
            None => Ok(()),
            Some(retry_after) => {
                tracing::warn!(event = "throttled", keys = "token-mint", user_id = %user, retry_after);
                Err(IssueError::Throttled { retry_after })
            }
        }
    }

    /// `POST /tokens`: a token minted by the caller's credential, never stronger than it.
    pub async fn for_caller(&self, caller: &Principal, req: TokenRequest) -> Result<NewToken, IssueError> {
        Self::refuse_derived_session(caller)?;
        let mut expires_at = self.capped_expiry(req.expires_in_minutes);
        match caller {
            Principal::Token { expires_at: parent_expiry, .. } => {
                if !Self::within_caller(caller, &req.abilities) {
                    return Err(IssueError::ExceedsParent);
                }
                if let Some(limit) = *parent_expiry {
                    expires_at = Some(expires_at.map_or(limit, |e| e.min(limit)));
                }
            }
            Principal::Session { password_confirmed_at, .. } => {
                if self.is_strong(&req.abilities, expires_at)
                    && !self.access.password_recently_confirmed(*password_confirmed_at)
                {
                    return Err(IssueError::PasswordConfirmationRequired);
                }
            }
        }
        self.count_mint(caller.user_id()).await?;
        let lineage = Lineage {
            credentials_version: caller.credentials_version(),
            parent: caller.parent_for_derived(),
            email_verified: caller.email_verified(),
        };
        self.mint(caller.user_id(), req.name, req.abilities, expires_at, lineage).await
    }

    /// Whether a token may be asked to hold `abilities`: every string but [`VERIFIED`], a route's
    /// requirement judged on the owner's verified address, never something a token can hold.
    pub fn grantable(abilities: &[String]) -> Result<(), &'static str> {
        match abilities.iter().any(|a| a == VERIFIED) {
            true => Err("\"verified\" is not an ability a token can hold"),
            false => Ok(()),
        }
    }

    /// `POST /tokens/issue`: a token for a user whose password was just checked, issued under the
    /// version that check read (a password changed meanwhile voids it:
    /// [`IssueError::PasswordChanged`]). `/tokens/issue` and the second-factor challenge that
    /// completes one both end here.
    pub async fn for_password_check(&self, user: &User, req: TokenRequest) -> Result<NewToken, IssueError> {
        let lineage = Lineage {
            credentials_version: user.credentials_version,
            parent: None,
            email_verified: Some(user.email_verified_at.is_some()),
        };
        let expires_at = self.capped_expiry(req.expires_in_minutes);
        self.count_mint(&user.id).await?;
        match self.mint(&user.id, req.name, req.abilities, expires_at, lineage).await {
            Err(IssueError::Revoked) => Err(IssueError::PasswordChanged),
            minted => minted,
        }
    }

    /// `DELETE /tokens/{id}`: the user's token and everything derived from it (child tokens,
    /// handoffs, the cross-app sessions they became), the token itself last. `false` when the
    /// user has no such token.
    ///
    /// The token is found in the user's register, read consistently: there until its revocation
    /// ends, so a retry of one cut short (even after the token itself went) finishes it, and one
    /// whose first attempt finished finds the mark of its tree ended and is answered `true` again.
    /// Nothing of another user's is read but their token's row, when the caller's register does
    /// not know the id (a token from before the register): another's id stays `false`.
    pub async fn revoke(&self, user: &UserId, id: &str) -> Result<bool, StoreError> {
        let stores = &self.access.stores;
        let Some(id) = TokenId::parse(id) else { return Ok(false) };
        let root = CredentialRef::token(&id);
        let register = stores.credentials.read(user).await?;
        let reason = reasons::PARENT_REVOKED;
        // Announced as `token.revoked` (#32) by the tree's last write, once however many race.
        let revoked = TokenRevoked { token_id: id.to_string(), reason: TokenRevokeReason::RevokedByUser };
        let body = EventBody::TokenRevoked(revoked);
        let dispatcher = self.access.dispatcher();
        let tree = (&root, reason);
        if revocation::revoke_registered_tree_announced(stores, &dispatcher, user, &register, tree, body).await? {
            tracing::info!(event = "token_revoked", token_id = %id);
            return Ok(true);
        }
        // A token from before the register: the user's if its row says so.
        let owner = Tokenable::user(user);
        let owned = stores.personal_access_tokens.find(&id).await?.is_some_and(|t| t.tokenable == owner);
        // An expired one ends too (nothing live derives from it: children expire with it).
        if !owned && !stores.personal_access_tokens.delete_owned(&id, &owner).await? {
            return Ok(false);
        }
        let n = revocation::revoke_from(stores, user, &register, Revocation::Tree(&root), reason).await?;
        tracing::info!(event = "token_revoked", token_id = %id, with_derived = n);
        Ok(true)
    }

    async fn mint(
        &self,
        user: &UserId,
        name: String,
        abilities: Abilities,
        expires_at: Option<Timestamp>,
        lineage: Lineage,
    ) -> Result<NewToken, IssueError> {
        // The edge says it first, as a field error; every way to a token passes here too.
        Self::grantable(abilities.as_slice()).map_err(|_| IssueError::Ungrantable)?;
        let stores = &self.access.stores;
        let now = stores.clock.now();
        let owner = Tokenable::user(user);
        let prefix = &self.access.config.tokens.prefix;
        let grant =
            TokenGrant { credentials_version: lineage.credentials_version, email_verified: lineage.email_verified };
        let (plain, record) = personal_access_tokens::mint(&owner, name, abilities, expires_at, prefix, now, grant);
        let entry = CredentialEntry {
            user_id: user.clone(),
            credential: CredentialRef::token(&record.id),
            parent: lineage.parent,
            cross_app_id: None,
            created_at: now,
            expires_at: record.expires_at,
        };
        // `token.created`, promised before the issue whose write on the user numbers it.
        let created = TokenCreated {
            token_id: record.id.to_string(),
            name: Some(record.name.clone()),
            abilities: record.abilities.as_slice().to_vec(),
            expires_at: record.expires_at,
        };
        let dispatcher = self.access.dispatcher();
        let event = crate::services::events::promise(&dispatcher, user, EventBody::TokenCreated(created)).await?;
        let token = NewCredential::Token(&record);
        if !stores.credentials.issue_noting(lineage.credentials_version, &entry, token, &[event]).await? {
            return Err(IssueError::Revoked);
        }
        tracing::info!(event = "token_created", token_id = %record.id, owner = %owner.key(), parent = ?entry.parent.map(|p| p.encode()));
        Ok(NewToken { plain, record })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::clock::ManualClock;
    use crate::{Config, Stores};
    use std::sync::Arc;

    /// The edge refuses `verified` as a field error first; the domain refuses it on every way to a
    /// token too, and writes nothing.
    #[tokio::test]
    async fn no_token_is_minted_holding_verified_whatever_the_caller() {
        let now = crate::values::clock::from_epoch_millis(1_700_000_000_000).unwrap();
        let stores = Stores::memory(Arc::new(ManualClock::new(now)));
        let access = Access::new(stores.clone(), Arc::new(Config::from_map(&Default::default()).unwrap()));
        let ann = crate::tables::users::sample("ann@example.com");
        stores.users.create(&ann).await.unwrap();
        let asked = |abilities: &[&str]| TokenRequest {
            name: "t".into(),
            abilities: Abilities::new(abilities.iter().map(|a| (*a).to_owned()).collect()),
            expires_in_minutes: None,
        };
        let issuer = TokenIssuer::new(&access);
        let refused = issuer.for_password_check(&ann, asked(&["read", VERIFIED])).await;
        assert!(matches!(refused, Err(IssueError::Ungrantable)), "{:?}", refused.err());
        let none = stores.personal_access_tokens.list_for(&Tokenable::user(&ann.id), 10, None).await.unwrap();
        assert!(none.items.is_empty(), "nothing written");
        assert!(issuer.for_password_check(&ann, asked(&["read"])).await.is_ok(), "any other ability is grantable");
    }
}
