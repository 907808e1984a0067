//! What a verified provider identity may do — the rules that keep social sign-in from being a
//! takeover:
//! - an identity already connected signs in its user, unless the account's lasting ways in were
//!   ended since it was connected (a reset, a password change or "log out other devices" end it,
//!   as they end passkeys: [`User::ways_in_since`]);
//! - a new identity whose address an account holds joins that account only when the provider is
//!   trusted for addresses, asserts this one verified, and the account's own address is verified;
//!   otherwise the person signs in to the account and connects the provider from there;
//! - a new identity whose address no account holds signs up (when sign-up is on and the provider
//!   asserts the address verified), the address verified only if the provider is trusted;
//! - a provider sign-in is one factor: an account with a second factor answers its challenge;
//! - connecting or disconnecting mails the address; the last way in is never disconnected.

use super::{Claims, Federation, FederationError};
use crate::providers::Provider;
use crate::services::auth::ClientMeta;
use crate::services::auth::sessions::Opened;
use crate::services::sign_in::{ChallengeToken, Pending, challenge};
use crate::tables::events::{EventBody, IdentityLinked, IdentityUnlinked, SessionMethod};
use crate::tables::identities::{Identity, Linked};
use crate::tables::users::{DisplayName, EventMark, User, UserId};
use crate::throttle::{Limit, client_key};
use crate::values::email::Email;
use crate::values::error::StoreError;
use crate::values::password::PasswordHash;

/// What a finished flow did.
#[derive(Debug)]
pub enum Outcome {
    /// Signed in (or up): a session.
    Session { user: Box<User>, opened: Opened, created: bool, remember: bool },
    /// The account has a second factor: complete with `POST /two-factor-challenge`.
    SecondFactor(ChallengeToken),
    /// The identity was connected to the signed-in user.
    Linked { user: UserId, provider: String },
}

/// The identity of `claims` at `p`, as it would be connected to `user` now, under `version`.
fn identity(p: &Provider, claims: &Claims, user: &User, version: u64, fed: &Federation) -> Identity {
    // To the millisecond, as the tables keep it: the connection's notice recognises it by this.
    let now = fed.auth.now();
    let now = crate::values::clock::Timestamp::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now);
    Identity {
        provider: p.id.clone(),
        subject: claims.subject.clone(),
        user_id: user.id.clone(),
        // Only an address (the account page shows it), with no invisible formatting in it: not
        // whatever text the provider sent.
        email: claims
            .email
            .as_deref()
            .filter(|e| !e.chars().any(invisible))
            .and_then(|e| Email::parse(e).ok())
            .map(|e| e.as_str().to_owned()),
        credentials_version: version,
        linked_at: now,
        last_used_at: Some(now),
        tokens: claims.sealed_tokens.clone(),
    }
}

/// A formatting character (bidi overrides, zero-width joiners…): shown, they disguise text.
fn invisible(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    c.is_control() || c.general_category() == GeneralCategory::Format
}

/// How long an identity naming no user is taken for a sign-up still under way ([`holder`]).
const SIGN_UP_WINDOW: crate::values::clock::Span = crate::values::clock::Span::minutes(1);

/// The user an existing identity signs in, if it still may: its user exists, is not being
/// deleted, and its lasting ways in were not ended since the identity was connected. An identity
/// that may not is removed (conditionally on its user), and the rules apply to it as to a new one.
async fn holder(fed: &Federation, found: &Identity) -> Result<Option<User>, FederationError> {
    let stores = fed.auth.stores();
    let user = stores.users.find(&found.user_id).await?;
    match user {
        Some(u) if u.deleted_at.is_none() && live(&u, found) => Ok(Some(u)),
        // No user yet behind an identity connected a moment ago: a sign-up between its two
        // writes (the identity, then the user), racing this callback. Not a leftover to remove
        // (that would leave the account it is making without its way in): this callback is
        // refused, and the sign-up finishes with its identity.
        None if fed.auth.now() < found.linked_at + SIGN_UP_WINDOW => Err(FederationError::StateInvalid),
        _ => {
            tracing::info!(event = "identity_ended", provider = %found.provider, user_id = %found.user_id);
            stores.identities.unlink(&found.provider, &found.subject, &found.user_id).await?;
            Ok(None)
        }
    }
}

/// Promises `identity.linked` (#32) for a connection of `provider` to `user` about to be written:
/// the link's own write numbers it, and a link that finds the subject held numbers nothing. A
/// sign-up's identity is in its `user.registered` (method `provider`).
async fn linked(fed: &Federation, user: &UserId, provider: &str) -> Result<EventMark, StoreError> {
    let body = EventBody::IdentityLinked(IdentityLinked { provider: provider.to_owned() });
    crate::services::events::promise(fed.dispatcher(), user, body).await
}

/// Whether `identity` still signs in to `user` (connected at or after the version its ways in
/// date from).
fn live(user: &User, identity: &Identity) -> bool {
    identity.user_id == user.id && identity.credentials_version >= user.ways_in_since
}

pub(crate) async fn sign_in(
    fed: &Federation,
    p: &Provider,
    claims: Claims,
    remember: bool,
    meta: &ClientMeta,
    device_cookie: Option<&str>,
) -> Result<Outcome, FederationError> {
    let stores = fed.auth.stores();
    // Two rounds at most: a sign-up that lost a race for its identity signs in the winner's user.
    for _ in 0..2 {
        if let Some(found) = stores.identities.find(&p.id, &claims.subject).await?
            && let Some(user) = holder(fed, &found).await?
        {
            let at = fed.auth.now();
            stores.identities.touch(&p.id, &claims.subject, &user.id, at, claims.sealed_tokens.as_deref()).await?;
            return session(fed, p, user, remember, meta, device_cookie, false).await;
        }
        let email = claims.email.as_deref().and_then(|e| Email::parse(e).ok());
        // An address the provider does not vouch for is refused before it is looked up: no
        // identity of someone's choosing learns which addresses have accounts.
        let (Some(email), true) = (email, claims.email_verified) else { return Err(FederationError::EmailUnverified) };
        // A new identity is counted as a registration is (it may make one), before the lookup.
        let client = client_key(meta.ip.as_deref());
        fed.auth.limit(&format!("register:{client}"), fed.auth.config().limits.register_per_client).await?;
        if let Some(user) = stores.users.find_by_email(&email).await? {
            let may_join = p.trust_email && claims.email_verified && user.email_verified_at.is_some();
            if !may_join || user.deleted_at.is_some() {
                tracing::info!(event = "federation_link_required", provider = %p.id, user_id = %user.id,
                    trusted = p.trust_email, asserted = claims.email_verified, local_verified = user.email_verified_at.is_some());
                return Err(FederationError::LinkRequired);
            }
            if user.disabled_at.is_some() {
                // Nothing joins a disabled account, and its owner is told of no connection.
                return Err(crate::services::auth::AuthError::AccountDisabled.into());
            }
            let joining = identity(p, &claims, &user, user.credentials_version, fed);
            super::notice::promise(fed.dispatcher(), &user, &joining, &p.name, true).await?;
            let event = linked(fed, &user.id, &p.id).await?;
            match stores.identities.link_noting(&joining, &[event]).await? {
                Linked::New => {
                    tracing::info!(event = "identity_linked", provider = %p.id, user_id = %user.id, automatic = true);
                    return session(fed, p, user, remember, meta, device_cookie, false).await;
                }
                // Connected meanwhile (a racing callback of the same person): look again.
                Linked::Already(_) => continue,
            }
        }
        if !fed.auth.config().federation.signup {
            return Err(FederationError::SignupDisabled);
        }
        let name = claims
            .name
            .as_deref()
            .and_then(|n| DisplayName::parse(n).ok())
            .or_else(|| DisplayName::parse(email.as_str().split('@').next().unwrap_or("")).ok())
            .map_or_else(|| "New user".to_owned(), DisplayName::into_string);
        fed.auth.before_sign_up(&email, &name, "provider", Some(&p.id), meta).await?;
        let now = fed.auth.now();
        let mut user = User::new(name, email, PasswordHash::unusable(), now);
        if p.trust_email {
            user.email_verified_at = Some(now);
        }
        // The identity first, naming the user about to be made: a sign-up cut between the two
        // writes leaves an identity of no user, which the next sign-in removes ([`holder`]);
        // the other order would leave an account only a reset could enter.
        if let Linked::Already(_) = stores.identities.link(&identity(p, &claims, &user, 0, fed)).await? {
            continue;
        }
        let method = crate::tables::events::RegistrationMethod::Provider;
        let mark = fed.auth.promise_registered(&user, method, Some(&p.id), meta).await?;
        let user = user.with_events(&[mark]);
        match stores.users.create(&user).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                // The address was taken meanwhile: not this identity's account.
                stores.identities.unlink(&p.id, &claims.subject, &user.id).await?;
                return Err(FederationError::LinkRequired);
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(event = "registered", via = %p.id, user_id = %user.id, email_tag = %fed.auth.email_tag(&user.email), ip = ?meta.ip);
        if user.email_verified_at.is_none() {
            let job = crate::services::email_verification::registration_job(fed.auth.config(), &user.id);
            if let Err(e) = fed.dispatcher().dispatch(job).await {
                tracing::error!(event = "verification_mail_not_queued", user_id = %user.id, error = %e);
            }
        }
        return session(fed, p, user, remember, meta, device_cookie, true).await;
    }
    Err(FederationError::IdentityTaken)
}

/// A complete provider sign-in: the second factor's challenge when the account has one, else a
/// session (which [`crate::services::auth::Auth::open_session`] refuses a disabled account).
async fn session(
    fed: &Federation,
    p: &Provider,
    user: User,
    remember: bool,
    meta: &ClientMeta,
    device_cookie: Option<&str>,
    created: bool,
) -> Result<Outcome, FederationError> {
    if user.disabled_at.is_some() {
        return Err(crate::services::auth::AuthError::AccountDisabled.into());
    }
    if user.two_factor.enabled() {
        let token = challenge(&fed.auth, &user, Pending::Session { remember }, meta, "provider").await?;
        tracing::info!(event = "federation_second_factor", provider = %p.id, user_id = %user.id);
        return Ok(Outcome::SecondFactor(token));
    }
    // A sign-up's first session: its before-sign-up hook decided (one hook per request).
    let via = (SessionMethod::Provider, !created);
    let opened = fed.auth.open_session(&user, remember, meta, device_cookie, via).await?;
    tracing::info!(event = "federation_signed_in", provider = %p.id, user_id = %user.id, created);
    Ok(Outcome::Session { user: Box::new(user), opened, created, remember })
}

/// Connects the identity of `claims` to `owner`, who began the flow signed in with a recent
/// confirmation (checked again by the route that finishes it).
pub(crate) async fn link(
    fed: &Federation,
    p: &Provider,
    claims: Claims,
    owner: &UserId,
    version: u64,
    meta: &ClientMeta,
) -> Result<Outcome, FederationError> {
    let stores = fed.auth.stores();
    fed.auth.limit(&format!("identity-link:{owner}"), Limit::per_hour(10)).await?;
    let user = stores.users.find(owner).await?.ok_or(FederationError::StateInvalid)?;
    // Under the version the session that began the flow had: a reset landing meanwhile leaves the
    // connection ended (below its ways_in_since), never one made after it.
    if user.deleted_at.is_some() || user.disabled_at.is_some() || user.credentials_version != version {
        return Err(FederationError::StateInvalid);
    }
    for _ in 0..2 {
        let joining = identity(p, &claims, &user, version, fed);
        // Promised whatever a read says (the job mails only a connection it finds made).
        super::notice::promise(fed.dispatcher(), &user, &joining, &p.name, true).await?;
        let event = linked(fed, &user.id, &p.id).await?;
        match stores.identities.link_noting(&joining, &[event]).await? {
            Linked::New => {
                tracing::info!(event = "identity_linked", provider = %p.id, user_id = %user.id, ip = ?meta.ip);
                return Ok(Outcome::Linked { user: user.id, provider: p.id.clone() });
            }
            Linked::Already(found) if found.user_id == user.id => {
                if live(&user, &found) {
                    return Ok(Outcome::Linked { user: user.id, provider: p.id.clone() });
                }
                // Connected before a reset: the old connection is over; connect it anew.
                stores.identities.unlink(&p.id, &claims.subject, &user.id).await?;
            }
            Linked::Already(found) => {
                if holder(fed, &found).await?.is_some() {
                    return Err(FederationError::IdentityTaken);
                }
            }
        }
    }
    Err(FederationError::IdentityTaken)
}

/// A connected account as the account page lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Connected {
    /// Opaque; names it in `DELETE /user/identities/{id}`.
    pub id: String,
    pub provider: String,
    pub provider_name: String,
    pub email: Option<String>,
    pub linked_at: crate::values::clock::Timestamp,
    pub last_used_at: Option<crate::values::clock::Timestamp>,
}

impl Federation {
    /// The live identities of `user` (those connected under its current version).
    pub async fn connected(&self, user: &User) -> Result<Vec<Connected>, FederationError> {
        let all = self.auth.stores().identities.for_user(&user.id).await?;
        let cfg = &self.auth.config().federation;
        Ok(all
            .into_iter()
            .filter(|i| live(user, i))
            .map(|i| Connected {
                id: self.handle(&user.id, &i),
                provider_name: cfg.provider(&i.provider).map_or_else(|| i.provider.clone(), |p| p.name.clone()),
                provider: i.provider,
                email: i.email,
                linked_at: i.linked_at,
                last_used_at: i.last_used_at,
            })
            .collect())
    }

    fn handle(&self, user: &UserId, i: &Identity) -> String {
        self.auth.config().app_key.tag("identity-handle", &format!("{user}|{}|{}", i.provider, i.subject))
    }

    /// Disconnects the identity `handle` names from `user` (whose session has a recent
    /// confirmation: the route checks it), unless it is the account's last way in: no password,
    /// no passkey, no other connected identity.
    pub async fn unlink(&self, user: &User, handle: &str, meta: &ClientMeta) -> Result<(), FederationError> {
        let stores = self.auth.stores();
        let all = stores.identities.for_user(&user.id).await?;
        let current: Vec<&Identity> = all.iter().filter(|i| live(user, i)).collect();
        let target = current
            .iter()
            .find(|i| crate::values::secret::constant_time_eq(self.handle(&user.id, i).as_bytes(), handle.as_bytes()))
            .ok_or(FederationError::NoSuchIdentity)?;
        // Only a configured provider signs in: one removed from the configuration is no way in.
        let signing_in =
            current.iter().filter(|i| self.auth.config().federation.provider(&i.provider).is_some()).count();
        let others = signing_in - usize::from(self.auth.config().federation.provider(&target.provider).is_some());
        if !user.has_password() && user.passkeys.is_empty() && others == 0 {
            return Err(FederationError::LastWayIn);
        }
        let name = self.auth.config().federation.provider(&target.provider).map(|p| p.name.clone());
        let name = name.unwrap_or_else(|| target.provider.clone());
        super::notice::promise(self.dispatcher(), user, target, &name, false).await?;
        let unlinked = EventBody::IdentityUnlinked(IdentityUnlinked { provider: target.provider.clone() });
        let event = crate::services::events::promise(self.dispatcher(), &user.id, unlinked).await?;
        if !stores.identities.unlink_noting(&target.provider, &target.subject, &user.id, &[event]).await? {
            return Err(FederationError::NoSuchIdentity);
        }
        tracing::info!(event = "identity_unlinked", provider = %target.provider, user_id = %user.id, ip = ?meta.ip);
        Ok(())
    }
}
