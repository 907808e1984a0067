//! Credentials changes: moving the credentials version (a new password, other devices logged out, a second factor turned on), keeping only the session that made the change, and resuming a change whose answer was lost.

use super::sessions::{Announce, SessionGrant};
use super::{Auth, AuthError, ClientMeta, EndPasskeys, refuse_derived};
use crate::services::revocation::revoke_or_queue;
use crate::tables::credential_ref::CredentialRef;
use crate::tables::credentials::reasons;
use crate::tables::events::{Actor, EventBody, Revoked, SessionMethod, UserSignedOut};
use crate::tables::sessions::{SessionId, SessionRecord};
use crate::tables::users::{CredentialChange, User};
use crate::values::error::StoreError;
use crate::values::password::{PasswordAttempt, PasswordHash};

/// How a rotated session is announced (#32): the changing sign-in, continued under a new id.
const CONTINUED: Announce = Announce { method: SessionMethod::Continued, new_device: false };

/// How long after a session changed the credentials its retry is still recognised
/// ([`Auth::resume_own_change`]).
pub const CHANGE_RETRY_WINDOW: chrono::Duration = chrono::Duration::minutes(10);

impl Auth {
    /// Laravel's `logoutOtherDevices`, closed against races: after checking the password, the
    /// credentials version moves on (see [`Auth::rotate_credentials`]). Returns the new session.
    pub async fn logout_other_devices(
        &self,
        user: &User,
        current: &SessionRecord,
        attempt: PasswordAttempt,
        meta: &ClientMeta,
    ) -> Result<SessionId, AuthError> {
        refuse_derived(current)?;
        if !self.verify_password(user, attempt, meta).await? {
            return Err(AuthError::InvalidCredentials);
        }
        // No `by`: the only change a session's retry may resume is one that set a new password
        // (`resume_own_change`), which the retry proves by that password; this one proves only
        // the password it kept, which whoever holds a copy of this cookie may know too.
        let signed_out = EventBody::UserSignedOut(UserSignedOut { revoked: Revoked::AllButOne, by: Actor::User });
        let version = self.move_credentials(user, None, EndPasskeys::All, None, Vec::new(), vec![signed_out]).await?;
        let id = self.keep_only(user, current, version, reasons::OTHER_DEVICES_LOGGED_OUT, meta).await?;
        tracing::info!(event = "other_devices_logged_out", user_id = %user.id);
        Ok(id)
    }

    /// Moves the user's credentials on from the state `user` was read in, keeping only the
    /// current session ([`Auth::move_credentials`], then [`Auth::keep_only`]). Returns the new
    /// session. `CredentialsChanged` when another change won the race.
    pub async fn rotate_credentials(
        &self,
        user: &User,
        current: &SessionRecord,
        password: Option<&PasswordHash>,
        reason: &str,
        meta: &ClientMeta,
    ) -> Result<SessionId, AuthError> {
        let version = self.move_credentials(user, password, EndPasskeys::None, None, Vec::new(), Vec::new()).await?;
        self.keep_only(user, current, version, reason, meta).await
    }

    /// The compare-and-swap on the credentials version the caller verified against (with the
    /// new `password`, when given): from this write on nothing verified against the old state
    /// can be issued. With [`EndPasskeys::All`], the passkeys read with `user` go in the same
    /// write (a passkey added since fails it, as a moved version does), and the owner is told.
    /// `notices` (and that one) are promised before the write and carried by it
    /// ([`crate::queue::Dispatcher::promise`]), and so are the `events` of the change
    /// ([`crate::services::events::promise`]); `by`, the session making the change, is recorded
    /// with it ([`User::recent_changes`]). Returns the new version; `CredentialsChanged` when
    /// another change won.
    pub async fn move_credentials(
        &self,
        user: &User,
        password: Option<&PasswordHash>,
        passkeys: EndPasskeys,
        by: Option<&SessionRecord>,
        mut notices: Vec<crate::tables::jobs::JobPayload>,
        events: Vec<EventBody>,
    ) -> Result<u64, AuthError> {
        let clearing = matches!(passkeys, EndPasskeys::All);
        let ending = clearing && !user.passkeys.is_empty();
        if ending {
            notices.push(crate::services::notices::notice(user, "passkeys_removed"));
        }
        let dispatcher = self.dispatcher();
        let mut marks = Vec::with_capacity(notices.len());
        for notice in notices {
            marks.push(dispatcher.promise(&user.id, notice).await.map_err(StoreError::from)?);
        }
        let mut event_marks = Vec::with_capacity(events.len());
        for body in events {
            event_marks.push(crate::services::events::promise(&dispatcher, &user.id, body).await?);
        }
        // Exactly the passkeys read, none included: one added since the read (a registration
        // racing the change) fails the change like a moved version, rather than surviving it.
        let change = CredentialChange {
            password,
            revoke: true,
            clear_passkeys: clearing.then_some(user.passkeys.as_slice()),
            notices: &marks,
            events: &event_marks,
            by: by.map(|s| s.key.as_str()),
            ..CredentialChange::default()
        };
        let version = self
            .stores()
            .users
            .change_credentials(&user.id, user.credentials_version, change, self.now())
            .await?
            .ok_or(AuthError::CredentialsChanged)?;
        if ending {
            tracing::info!(event = "passkeys_removed", user_id = %user.id, count = user.passkeys.len());
        }
        Ok(version)
    }

    /// After [`Auth::move_credentials`] to `version`: every registered credential but the
    /// current session is revoked, and the current session is rotated to a new id under the new
    /// version, keeping its start. Returns the new session.
    pub async fn keep_only(
        &self,
        user: &User,
        current: &SessionRecord,
        version: u64,
        reason: &str,
        meta: &ClientMeta,
    ) -> Result<SessionId, AuthError> {
        let stores = self.stores();
        // The rotated session derives from nothing (the routes that get here refuse
        // handoff-opened sessions), and everything else ends, the current session included.
        // The rotated session keeps the confirmation the current one had, no more: a password
        // change proves the password, but not for the purpose of what the window guards.
        let grant = SessionGrant {
            credentials_version: version,
            remember: current.remember(),
            password_confirmed_at: current.password_confirmed_at,
            created_at: Some(current.created_at),
            email_verified: Some(user.email_verified_at.is_some()),
            announce: Some(CONTINUED),
            ..SessionGrant::default()
        };
        let rotated = self.issue_session(&user.id, meta, grant).await;
        // Whether or not the rotation worked, everything else ends: at once, or by a queued job
        // when a store fails part way (the new password stands either way).
        let keep = match &rotated {
            Ok(Some((id, _))) => Some(CredentialRef::session(&id.key())),
            _ => None,
        };
        let dispatcher = self.dispatcher();
        let n = revoke_or_queue(stores, &dispatcher, &user.id, keep.as_ref(), reason).await?;
        let (id, _) = rotated?.ok_or(AuthError::CredentialsChanged)?;
        tracing::info!(event = "credentials_rotated", user_id = %user.id, reason, credentials = ?n);
        Ok(id)
    }

    /// The retry of a password change a session made itself whose answer was lost: the change
    /// moved the version, so the session that made it is refused as stale (or is gone, rotated
    /// away) and the retry would be told 401 by its own success. It is recognised when the
    /// user's latest move of the version was recorded as made by this very session
    /// ([`User::recent_changes`]: only a password change records its session) less than
    /// [`CHANGE_RETRY_WINDOW`] ago, `attempt` (the retry's `password` field: the new password)
    /// is the account's password now, checked under the password-check limits, and no retry
    /// resumed it before. Then the session continues as the change would have continued it: a
    /// new session under the new version (with the old one's start, remember and confirmation
    /// when its record is still there), and the revocation of everything registered before the
    /// change queued again (idempotent: what was issued since stays; `reason` is the change's).
    /// `None` for anything else: the caller answers the refusal it had.
    ///
    /// Why this cannot be abused: it answers once, only the holder of the very cookie that made
    /// the change, within ten minutes, who also knows the password that change set (chosen by
    /// whoever made it, seconds ago); what it gives is what the change's own answer would have
    /// given. Changes that prove no new secret (turning on a second factor, "log out other
    /// devices") record no session and are never resumed: a copy of the cookie and the old
    /// password must not outlive them.
    pub async fn resume_own_change(
        &self,
        id: &SessionId,
        attempt: PasswordAttempt,
        reason: &str,
        meta: &ClientMeta,
    ) -> Result<Option<(SessionId, bool)>, AuthError> {
        let Some(owner) = id.owner() else { return Ok(None) };
        let key = id.key();
        let stores = self.stores();
        let Some(user) = stores.users.find(&owner).await? else { return Ok(None) };
        let now = self.now();
        let Some(change) = user
            .change_to(user.credentials_version)
            .filter(|c| c.by.as_deref() == Some(key.as_str()) && now - c.at <= CHANGE_RETRY_WINDOW)
            .cloned()
        else {
            return Ok(None);
        };
        if user.disabled_at.is_some() || user.deleted_at.is_some() {
            return Ok(None);
        }
        if !self.verify_password(&user, attempt, meta).await? {
            return Ok(None);
        }
        // Once: of racing retries (or a copy of the cookie racing the owner), one continues.
        let once = format!("change-resumed:{}:{}", user.id, user.credentials_version);
        if !stores.cache.add(&once, &serde_json::json!(true), Some(change.at + CHANGE_RETRY_WINDOW)).await? {
            return Ok(None);
        }
        let old = stores.sessions.find(&key).await?.filter(|s| s.user_id.as_ref() == Some(&user.id));
        let remember = old.as_ref().is_some_and(SessionRecord::remember);
        let grant = SessionGrant {
            credentials_version: user.credentials_version,
            remember,
            password_confirmed_at: old.as_ref().and_then(|s| s.password_confirmed_at),
            created_at: old.as_ref().map(|s| s.created_at),
            email_verified: Some(user.email_verified_at.is_some()),
            announce: Some(CONTINUED),
            ..SessionGrant::default()
        };
        let Some((rotated, _)) = self.issue_session(&user.id, meta, grant).await? else { return Ok(None) };
        let dispatcher = self.dispatcher();
        crate::services::revocation::queue_revocation(&dispatcher, &user.id, change.at, reason)
            .await
            .map_err(StoreError::from)?;
        tracing::info!(event = "credentials_change_resumed", user_id = %user.id, version = user.credentials_version);
        Ok(Some((rotated, remember)))
    }
}
