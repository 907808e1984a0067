//! The cross-app flow (seed 004): hand a user off to another app of the same deployment family,
//! exchange the handoff there for a session, and revoke such a session, each with its audit
//! record. Every derived credential is bounded by its parent:
//! - a handoff is made from a session (not one that was itself opened by a handoff) or a token
//!   holding `cross-app:handoff`, under the caller's credentials version, with the caller's
//!   credential as parent;
//! - only the handoff's target app (this deployment's `GATEHOUSE_APP_NAME`) can exchange it, once;
//!   the session it opens is issued under the handoff's version and derives from its parent, so a
//!   reset or revoking the parent ends it.

use crate::services::access::Principal;
use crate::services::auth::sessions::{Announce, SessionGrant};
use crate::services::auth::{Auth, AuthError, ClientMeta};
use crate::services::revocation;
use crate::services::token_issuer::{IssueError, TokenIssuer};
use crate::tables::credential_ref::{CredentialKind, CredentialRef};
use crate::tables::credentials::{CredentialEntry, NewCredential, Revocation, reasons};
use crate::tables::cross_app_sessions::{CrossAppSession, Handoff, HandoffToken};
use crate::tables::events::SessionMethod;
use crate::tables::sessions::SessionId;
use crate::tables::users::{User, UserId};
use crate::throttle::client_key;
use crate::values::clock::epoch_millis;
use crate::values::error::StoreError;
use crate::values::pagination::{Cursor, Page};

#[derive(Debug, thiserror::Error)]
pub enum CrossAppError {
    #[error(transparent)]
    Refused(#[from] IssueError),
    /// Invalid, used, expired, for another app, or its parent or version no longer holds.
    #[error("this handoff token is invalid, used or expired")]
    InvalidHandoff,
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A handoff just made: the plaintext token (shown once) and the record.
pub struct NewHandoff {
    pub token: HandoffToken,
    pub handoff: Handoff,
}

/// A handoff exchanged: the user, the new session's id (for the cookie) and the audit record.
pub struct Exchanged {
    pub user: User,
    pub session: SessionId,
    pub record: CrossAppSession,
}

pub struct CrossApp<'a> {
    auth: &'a Auth,
}

impl<'a> CrossApp<'a> {
    pub fn new(auth: &'a Auth) -> Self {
        Self { auth }
    }

    /// Whether `name` is an app this deployment may hand off to.
    pub fn is_registered(&self, name: &str) -> bool {
        self.auth.config().apps.iter().any(|a| a == name)
    }

    /// `POST /cross-app/handoff`. The caller must already hold `cross-app:handoff` (the route's
    /// guard) and `target` must be registered.
    pub async fn handoff(
        &self,
        caller: &Principal,
        target: String,
        meta: &ClientMeta,
    ) -> Result<NewHandoff, CrossAppError> {
        TokenIssuer::refuse_derived_session(caller)?;
        let (stores, config) = (self.auth.stores(), self.auth.config());
        // Per user, before anything is written: a stolen credential cannot pad the register.
        let tag = self.auth.user_tag(caller.user_id());
        let [hour, day] = config.limits.handoffs_per_user;
        let (h, d) = (format!("handoff-hour:{tag}"), format!("handoff-day:{tag}"));
        self.auth.limit_all(&[(&h, hour), (&d, day)]).await?;
        let now = stores.clock.now();
        let token = HandoffToken::generate();
        let h = Handoff {
            token_hash: token.hash(),
            user_id: caller.user_id().clone(),
            source_app: config.app_name.clone(),
            target_app: target,
            ip_address: meta.ip.clone(),
            user_agent: meta.user_agent.clone(),
            created_at: now,
            expires_at: now + config.handoff_lifetime,
            used_at: None,
            credentials_version: caller.credentials_version(),
            parent: Some(caller.credential()),
            // What the session it becomes may do, and until when: no more than its minter.
            abilities: match caller {
                Principal::Token { abilities, .. } => Some(abilities.clone()),
                Principal::Session { .. } => None,
            },
            not_after: match caller {
                Principal::Token { expires_at, .. } => *expires_at,
                Principal::Session { .. } => None,
            },
        };
        let entry = CredentialEntry {
            user_id: h.user_id.clone(),
            credential: CredentialRef::handoff(&h.token_hash),
            parent: h.parent.clone(),
            cross_app_id: None,
            created_at: now,
            expires_at: Some(h.expires_at),
        };
        if !stores.credentials.issue(h.credentials_version, &entry, NewCredential::Handoff(&h)).await? {
            return Err(IssueError::Revoked.into());
        }
        tracing::info!(event = "handoff_created", user_id = %h.user_id, target_app = %h.target_app);
        Ok(NewHandoff { token, handoff: h })
    }

    /// `POST /cross-app/exchange`: counted per client before anything is read; the handoff is
    /// consumed once, only by its target app, for a session of this app.
    pub async fn exchange(&self, raw_token: &str, meta: &ClientMeta) -> Result<Exchanged, CrossAppError> {
        let (stores, config) = (self.auth.stores(), self.auth.config());
        let client = client_key(meta.ip.as_deref());
        self.auth.limit(&format!("exchange:{client}"), config.limits.exchange_per_client).await?;
        let token = HandoffToken::parse(raw_token).ok_or(CrossAppError::InvalidHandoff)?;
        let now = stores.clock.now();
        let this_app = config.app_name.clone();
        let h = stores.cross_app_sessions.consume_handoff(&token.hash(), &this_app, now).await?;
        let h = h.ok_or(CrossAppError::InvalidHandoff)?;
        let user = stores.users.find(&h.user_id).await?.ok_or(CrossAppError::InvalidHandoff)?;
        // A session of this app: this app's before-sign-in hook decides (the handoff is spent).
        self.auth.before_sign_in(&user, "cross_app", meta).await?;
        let audit_id = uuid::Uuid::now_v7().to_string();
        let grant = SessionGrant {
            credentials_version: h.credentials_version,
            parent: h.parent.clone(),
            cross_app_id: Some(audit_id.clone()),
            email_verified: Some(user.email_verified_at.is_some()),
            abilities: h.abilities.clone(),
            not_after: h.not_after,
            announce: Some(Announce { method: SessionMethod::CrossApp, new_device: true }),
            ..SessionGrant::default()
        };
        let issued = self.auth.issue_session(&user.id, meta, grant).await?;
        let (session, rec) = issued.ok_or(CrossAppError::InvalidHandoff)?;
        let record = CrossAppSession {
            id: audit_id,
            user_id: user.id.clone(),
            source_app: h.source_app,
            target_app: this_app,
            session_key: rec.key,
            ip_address: meta.ip.clone(),
            user_agent: meta.user_agent.clone(),
            created_at: now,
            revoked_at: None,
            revoked_reason: None,
            expires_at: Some(now + config.cross_app_audit_retention),
        };
        stores.cross_app_sessions.record_session(&record).await?;
        tracing::info!(event = "cross_app_session", user_id = %user.id, source_app = %record.source_app, target_app = %record.target_app, ip = ?record.ip_address);
        Ok(Exchanged { user, session, record })
    }

    /// `GET /cross-app/sessions`: the user's audit records, newest first, `limit` at a time after
    /// `cursor` (a position this returned). Read from the owner index, which may lag a write by
    /// a moment; records past their retention are absent though TTL has not removed them yet.
    pub async fn audit(
        &self,
        user: &UserId,
        limit: usize,
        cursor: Option<&Cursor>,
    ) -> Result<Page<CrossAppSession>, StoreError> {
        let now = self.auth.now();
        let after = match cursor {
            None => None,
            Some(c) => {
                let v = c.decode().ok_or(StoreError::InvalidCursor)?;
                let t = v.get("t").and_then(serde_json::Value::as_i64).ok_or(StoreError::InvalidCursor)?;
                let id = v.get("id").and_then(serde_json::Value::as_str).ok_or(StoreError::InvalidCursor)?;
                Some((t, id.to_owned()))
            }
        };
        let position = |s: &CrossAppSession| (epoch_millis(s.created_at), s.id.clone());
        let mut records: Vec<CrossAppSession> = self
            .auth
            .stores()
            .cross_app_sessions
            .list_for_user(user)
            .await?
            .into_iter()
            .filter(|s| s.expires_at.is_none_or(|e| e > now))
            .filter(|s| after.as_ref().is_none_or(|a| &position(s) < a))
            .collect();
        records.sort_by_key(|s| std::cmp::Reverse(position(s)));
        let more = records.len() > limit;
        records.truncate(limit);
        let next = more.then(|| records.last().map(position)).flatten();
        let next = next.map(|(t, id)| Cursor::encode(&serde_json::json!({ "t": t, "id": id })));
        Ok(Page { items: records, next })
    }

    /// `DELETE /cross-app/sessions/{id}`: the session the audit record's exchange opened ends
    /// with everything derived from it, and then the record is marked revoked. `false` when the
    /// user has no such record.
    ///
    /// The session is found through the user's register, read consistently: its entry names the
    /// record and goes last, after the session ended and the record was marked, so a retry of a
    /// revocation cut short anywhere finds it and finishes. A record whose session's entry is
    /// gone, but which the register names as the user's (its audit entry), was ended already:
    /// `true` again. Records from before the register are found through the owner index. Another
    /// user's record is found by none of these: `false`, and nothing of theirs is touched.
    pub async fn revoke(&self, user: &UserId, id: &str) -> Result<bool, CrossAppError> {
        // Audit ids are UUIDs: anything else is no record (and never reaches the store).
        let Ok(id) = uuid::Uuid::parse_str(id) else { return Ok(false) };
        let id = id.to_string();
        let stores = self.auth.stores();
        let reason = reasons::USER_REVOKED;
        let register = stores.credentials.read(user).await?;
        let session = register
            .entries
            .iter()
            .find(|e| e.credential.kind == CredentialKind::Session && e.cross_app_id.as_deref() == Some(id.as_str()));
        if let Some(e) = session {
            // The root's own step ends the session and then marks the record.
            // Announced as `session.ended` (#32), as ending any other session of the user is.
            self.auth.end_announced(user, &register, &e.credential, reason).await?;
            tracing::info!(event = "cross_app_session_revoked", user_id = %user, audit_id = %id);
            return Ok(true);
        }
        if stores.credentials.audited(user, &id).await? {
            // Its session's entry went only once the session had ended and the record was marked.
            return Ok(true);
        }
        // From before the register: the record as the owner index lists it.
        let listed = stores.cross_app_sessions.list_for_user(user).await?.into_iter().find(|s| s.id == id);
        let Some(s) = listed else { return Ok(false) };
        let root = CredentialRef::session(&s.session_key);
        revocation::revoke_from(stores, user, &register, Revocation::Tree(&root), reason).await?;
        stores.cross_app_sessions.revoke_session(&id, user, stores.clock.now(), reason).await?;
        tracing::info!(event = "cross_app_session_revoked", user_id = %user, target_app = %s.target_app);
        Ok(true)
    }
}
