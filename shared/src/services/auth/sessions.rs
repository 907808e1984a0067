//! Sessions: issued under the credentials version a sign-in read (with the device it came from), ended one at a time or a whole tree.

use super::{Auth, AuthError, ClientMeta};
use crate::keys::DeviceCookie;
use crate::services::revocation::{revoke_from, revoke_registered_tree_announced};
use crate::tables::credential_ref::CredentialRef;
use crate::tables::credentials::{CredentialEntry, NewCredential, NewDevice, OnUser, Revocation, reasons};
use crate::tables::events::{EventBody, SessionCreated, SessionEndReason, SessionEnded, SessionMethod};
use crate::tables::sessions::{SessionId, SessionKey, SessionRecord};
use crate::tables::users::{KnownDevice, User, UserId};
use crate::values::clock::Timestamp;
use crate::values::error::StoreError;

/// A session a complete sign-in opened ([`Auth::open_session`]), and the device cookie to give
/// when the device was not one the account knows (listed in the session's own issue step).
pub struct Opened {
    pub session: SessionId,
    pub device_cookie: Option<String>,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("session", &self.session)
            .field("device_cookie", &self.device_cookie.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

/// A device listed on the user with a new session: its id and the devices the sign-in read.
#[derive(Debug, Clone)]
pub struct DeviceGrant {
    pub id: String,
    pub listed: Vec<KnownDevice>,
}

/// Whether the device cookie `d` names a device `user` knows now: given to this user under its
/// current credentials version, and still listed.
pub(crate) fn known_device(user: &User, d: Option<&DeviceCookie>) -> bool {
    d.is_some_and(|d| {
        d.user_id == user.id && d.version == user.credentials_version && user.devices.iter().any(|k| k.id == d.id)
    })
}

/// What a new session is issued under.
#[derive(Debug, Clone, Default)]
pub struct SessionGrant {
    /// The credentials version the caller verified against (a password check, or the parent's).
    pub credentials_version: u64,
    pub remember: bool,
    /// The credential it derives from (cross-app sessions).
    pub parent: Option<CredentialRef>,
    /// The cross-app audit record of this session.
    pub cross_app_id: Option<String>,
    /// Set when the password was just proved (login, registration).
    pub password_confirmed_at: Option<Timestamp>,
    /// Keeps an earlier start (a rotated session keeps its absolute lifetime).
    pub created_at: Option<Timestamp>,
    /// The user's address is verified (read with the user, or carried by the parent; `None`
    /// when the parent was issued before credentials carried it).
    pub email_verified: Option<bool>,
    /// A device to list on the user in the same step (a sign-in from a device it did not know).
    pub device: Option<DeviceGrant>,
    /// A derived session's abilities (its parent token's); `None`: everything.
    pub abilities: Option<crate::tables::personal_access_tokens::Abilities>,
    /// A derived session's end (its parent token's expiry).
    pub not_after: Option<Timestamp>,
    /// Announced as `session.created` (#32): every session a sign-in, a sign-up or a cross-app
    /// exchange opens. `None` for a session that continues one already announced (a rotation
    /// after the user's own credentials change).
    pub announce: Option<Announce>,
}

/// How a new session is announced ([`SessionGrant::announce`]).
#[derive(Debug, Clone, Copy)]
pub struct Announce {
    pub method: SessionMethod,
    /// No device cookie of this account was shown: a device listed with the session, and
    /// always for a sign-up's first session and a cross-app exchange, where none is looked at.
    pub new_device: bool,
}

impl Auth {
    /// Issues a new session (a fresh random id every time: no fixation), conditionally on the
    /// user's credentials version being `grant.credentials_version` still. `None` when it moved on.
    pub async fn issue_session(
        &self,
        user_id: &UserId,
        meta: &ClientMeta,
        grant: SessionGrant,
    ) -> Result<Option<(SessionId, SessionRecord)>, StoreError> {
        let now = self.now();
        let created_at = grant.created_at.unwrap_or(now);
        let id = SessionId::generate_for(user_id);
        let rec = SessionRecord {
            key: id.key(),
            user_id: Some(user_id.clone()),
            ip_address: meta.ip.clone(),
            user_agent: meta.user_agent.clone(),
            payload: serde_json::json!({ "remember": grant.remember }),
            last_activity: now,
            created_at,
            expires_at: self.access.session_expiry(created_at, now, grant.remember, grant.not_after),
            app: Some(self.access.config.app_name.clone()),
            credentials_version: grant.credentials_version,
            parent: grant.parent.clone(),
            password_confirmed_at: grant.password_confirmed_at,
            email_verified: grant.email_verified,
            abilities: grant.abilities.clone(),
            not_after: grant.not_after,
        };
        let entry = CredentialEntry {
            user_id: user_id.clone(),
            credential: CredentialRef::session(&rec.key),
            parent: grant.parent,
            cross_app_id: grant.cross_app_id,
            created_at: now,
            expires_at: self.access.config.session.absolute.map(|abs| created_at + abs),
        };
        let device = grant.device.as_ref().map(|d| NewDevice { id: &d.id, issued_at: now, listed: &d.listed });
        // The event is promised before the issue, whose write on the user takes its number.
        let mut events = Vec::new();
        if let Some(Announce { method, new_device }) = grant.announce {
            let created = SessionCreated {
                session: self.access.config.app_key.session_handle(user_id, &rec.key),
                new_device: new_device || device.is_some(),
                method,
                remember: grant.remember,
                expires_at: rec.expires_at,
                client: crate::services::events::client(meta),
            };
            let body = EventBody::SessionCreated(created);
            events.push(crate::services::events::promise(&self.dispatcher(), user_id, body).await?);
        }
        let on_user = OnUser { device, events: &events };
        let issued = self
            .access
            .stores
            .credentials
            .issue_on_device(grant.credentials_version, &entry, NewCredential::Session(&rec), on_user)
            .await?;
        Ok(issued.then_some((id, rec)))
    }

    /// A session for `user` after a complete sign-in (password, and the second factor if any),
    /// issued under the credentials version `user` was read with. No sign-in counts as a
    /// confirmation (whatever it proved, a cookie stolen after it proves nothing): adding a lasting
    /// way in, turning a second factor off, changing the address, minting strong tokens or
    /// deleting the account need `POST /user/confirm-password` within the window first.
    /// A device whose cookie (`device_cookie`, as shown) does not name one `user` knows now is
    /// listed in the session's own issue step and given a cookie bound to the user and version.
    ///
    /// `via` is how the user signed in (`session.created` says it). With `ask_hook`, it is what the
    /// `before_sign_in` hook is told, and the hook decides before anything is issued. Without:
    /// the hook has decided already (a second factor's completion, whose challenge asked it) or
    /// is not this session's to ask (a sign-up's first session, which its before-sign-up hook
    /// allowed).
    pub async fn open_session(
        &self,
        user: &User,
        remember: bool,
        meta: &ClientMeta,
        device_cookie: Option<&str>,
        (via, ask_hook): (SessionMethod, bool),
    ) -> Result<Opened, AuthError> {
        if user.disabled_at.is_some() {
            return Err(AuthError::AccountDisabled);
        }
        if ask_hook {
            self.before_sign_in(user, via.as_str(), meta).await?;
        }
        let shown = device_cookie.and_then(|c| self.access.config.app_key.device(&user.email, c));
        let new_device = (!known_device(user, shown.as_ref())).then(crate::keys::new_device_id);
        let grant = SessionGrant {
            credentials_version: user.credentials_version,
            remember,
            email_verified: Some(user.email_verified_at.is_some()),
            device: new_device.clone().map(|id| DeviceGrant { id, listed: user.devices.clone() }),
            announce: Some(Announce { method: via, new_device: new_device.is_some() }),
            ..SessionGrant::default()
        };
        let Some((id, _)) = self.issue_session(&user.id, meta, grant).await? else {
            tracing::info!(event = "login_superseded", user_id = %user.id);
            return Err(AuthError::InvalidCredentials);
        };
        tracing::info!(event = "login", user_id = %user.id, email_tag = %self.email_tag(&user.email), ip = ?meta.ip, new_device = new_device.is_some());
        let key = &self.access.config.app_key;
        let device_cookie = new_device.map(|d| key.device_cookie(&user.email, &user.id, user.credentials_version, &d));
        Ok(Opened { session: id, device_cookie })
    }

    /// Ends the session and everything derived from it (handoffs, cross-app sessions): what
    /// derives from it first, the session last ([`crate::services::revocation::revoke_from`]), so a logout
    /// cut short leaves the session for its retry to authenticate with and finish.
    ///
    /// Announced as `session.ended` (#32) by the tree's last write, once however many logouts of
    /// the session race.
    pub async fn logout(&self, session: &CredentialRef, user: &UserId) -> Result<(), AuthError> {
        let stores = &self.access.stores;
        let register = stores.credentials.read(user).await?;
        if !self.end_announced(user, &register, session, reasons::LOGOUT).await? {
            // A session from before the register: ended as ever, unannounced.
            revoke_from(stores, user, &register, Revocation::Tree(session), reasons::LOGOUT).await?;
        }
        tracing::info!(event = "logout", user_id = %user);
        Ok(())
    }

    /// The revocation of the session `root`'s tree when the register holds it, announced as
    /// `session.ended` ([`revoke_registered_tree_announced`]): `reason` [`reasons::LOGOUT`] says
    /// `logout`, any other `revoked_by_user`. `false` when the register knows the session
    /// neither way.
    pub(crate) async fn end_announced(
        &self,
        user: &UserId,
        register: &crate::tables::credentials::Register,
        root: &CredentialRef,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let key = SessionKey::from_stored(root.key.clone());
        let ended = SessionEnded {
            session: self.access.config.app_key.session_handle(user, &key),
            reason: if reason == reasons::LOGOUT { SessionEndReason::Logout } else { SessionEndReason::RevokedByUser },
        };
        let (stores, dispatcher) = (&self.access.stores, self.dispatcher());
        let body = EventBody::SessionEnded(ended);
        revoke_registered_tree_announced(stores, &dispatcher, user, register, (root, reason), body).await
    }

    /// The retry of a logout (`reason` [`reasons::LOGOUT`]), or of ending the current session by
    /// its `handle` ([`Auth::end_session`]), whose first attempt took the session: `cookie` names
    /// a session that is gone, of the user it names. When that user's register (read
    /// consistently) still holds the session, the first attempt was cut short after the session
    /// went, and its tree is finished now; when it marks the session's tree ended lately, the
    /// first attempt finished. Either way `true`: the answer is the first attempt's. `false` for
    /// anything else (a cookie naming no owner, another session than `handle`'s, a session still
    /// there but refused for another reason, or one the register knows neither way): the caller
    /// answers the refusal it had. The cookie's secret is the proof: it names one session of
    /// one user, so nothing of anyone else's is read beyond that user's register or ended.
    pub async fn finish_ended_session(
        &self,
        cookie: &str,
        handle: Option<&str>,
        reason: &str,
    ) -> Result<bool, AuthError> {
        let Some((owner, key)) = SessionId::parse(cookie).and_then(|id| Some((id.owner()?, id.key()))) else {
            return Ok(false);
        };
        let app_key = &self.config().app_key;
        if handle.is_some_and(|h| {
            !crate::values::secret::constant_time_eq(app_key.session_handle(&owner, &key).as_bytes(), h.as_bytes())
        }) {
            return Ok(false);
        }
        let stores = self.stores();
        if stores.sessions.find(&key).await?.is_some() {
            return Ok(false);
        }
        let root = CredentialRef::session(&key);
        // Point reads first: a made-up cookie naming a real user reads two items, not its register.
        if !stores.credentials.knows(&owner, &root).await? {
            return Ok(false);
        }
        let register = stores.credentials.read(&owner).await?;
        let finished = self.end_announced(&owner, &register, &root, reason).await?;
        if finished {
            tracing::info!(event = "session_end_retried", user_id = %owner, session = %key.hint(), reason);
        }
        Ok(finished)
    }

    /// Ends the session of `user` listed under `handle` ([`crate::keys::AppKey::session_handle`]),
    /// with everything derived from it, that last. Returns its key (`None`: no such session of
    /// this user). The session is found in the user's register, read consistently: a retry of an
    /// ending cut short finds it there (its entry goes last), and one whose first attempt
    /// finished finds the mark of its tree ended (its key is returned again, nothing ended).
    /// Sessions from before the register are found through the owner index.
    pub async fn end_session(&self, user: &UserId, handle: &str) -> Result<Option<SessionKey>, AuthError> {
        let (stores, app_key) = (self.stores(), &self.config().app_key);
        let named = |k: &SessionKey| {
            crate::values::secret::constant_time_eq(app_key.session_handle(user, k).as_bytes(), handle.as_bytes())
        };
        let session_named = |r: &CredentialRef| {
            let key = (r.kind == crate::tables::credential_ref::CredentialKind::Session)
                .then(|| SessionKey::from_stored(r.key.clone()));
            key.filter(|k| named(k))
        };
        let register = stores.credentials.read(user).await?;
        let registered = register.entries.iter().find_map(|e| session_named(&e.credential));
        let key = match registered.or_else(|| register.ended.iter().find_map(session_named)) {
            Some(key) => key,
            None => match stores.sessions.list_for_user(user).await?.into_iter().find(|s| named(&s.key)) {
                Some(s) => s.key,
                None => return Ok(None),
            },
        };
        let root = CredentialRef::session(&key);
        let reason = reasons::USER_REVOKED;
        if !self.end_announced(user, &register, &root, reason).await? {
            // From before the register: what the register holds of its tree, and then it.
            revoke_from(stores, user, &register, Revocation::Tree(&root), reason).await?;
        }
        tracing::info!(event = "session_ended", user_id = %user, session = %key.hint());
        Ok(Some(key))
    }
}
