//! The in-memory `credentials` table.

use super::cross_app_sessions::MemoryCrossAppSessions;
use super::oauth_consents::MemoryOAuthConsents;
use super::oauth_refresh_tokens::MemoryOAuthRefreshTokens;
use super::personal_access_tokens::MemoryPersonalAccessTokens;
use super::sessions::MemorySessions;
use super::table::Table;
use super::users::MemoryUsers;
use crate::tables::credential_ref::{CredentialKind, CredentialRef};
use crate::tables::credentials::{CredentialEntry, CredentialStore, NewCredential, OnUser, Register};
use crate::tables::cross_app_sessions::CrossAppSessionStore;
use crate::tables::oauth_clients::ClientId;
use crate::tables::personal_access_tokens::TokenId;
use crate::tables::sessions::SessionKey;
use crate::tables::users::{EventMark, KnownDevice, UserId, evicted_devices};
use crate::values::clock::{Timestamp, is_live};
use crate::values::error::{StoreError, StoreResult};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The register, and the one place a credential enters the in-memory stores: under the users
/// table's lock, so that issuing and moving a user's credentials version are atomic with respect
/// to each other, as the DynamoDB transaction makes them.
pub struct MemoryCredentials {
    users: Arc<MemoryUsers>,
    sessions: Arc<MemorySessions>,
    tokens: Arc<MemoryPersonalAccessTokens>,
    cross_app: Arc<MemoryCrossAppSessions>,
    refresh_tokens: Arc<MemoryOAuthRefreshTokens>,
    consents: Arc<MemoryOAuthConsents>,
    entries: Table<UserId, BTreeMap<CredentialRef, CredentialEntry>>,
    /// The marks of trees revoked lately, until when each holds.
    ended: Table<UserId, BTreeMap<CredentialRef, Timestamp>>,
}

impl MemoryCredentials {
    pub fn new(
        users: Arc<MemoryUsers>,
        sessions: Arc<MemorySessions>,
        tokens: Arc<MemoryPersonalAccessTokens>,
        cross_app: Arc<MemoryCrossAppSessions>,
        refresh_tokens: Arc<MemoryOAuthRefreshTokens>,
        consents: Arc<MemoryOAuthConsents>,
    ) -> Self {
        Self {
            users,
            sessions,
            tokens,
            cross_app,
            refresh_tokens,
            consents,
            entries: Table::default(),
            ended: Table::default(),
        }
    }
}

#[async_trait]
impl CredentialStore for MemoryCredentials {
    async fn issue_on_device(
        &self,
        version: u64,
        entry: &CredentialEntry,
        credential: NewCredential<'_>,
        on_user: OnUser<'_>,
    ) -> StoreResult<bool> {
        let mut users = self.users.by_id.lock();
        // Sent again after it landed: the user carries its events' marks.
        if users
            .get(&entry.user_id)
            .is_some_and(|u| on_user.events.iter().any(|e| u.pending_events.contains_key(e.as_str())))
        {
            return Ok(true);
        }
        if users.get(&entry.user_id).is_none_or(|u| u.credentials_version != version || u.disabled_at.is_some()) {
            return Ok(false);
        }
        if let Some(parent) = &entry.parent {
            let now = self.sessions.clock.now();
            let live = match parent.kind {
                CredentialKind::Session => self
                    .sessions
                    .rows
                    .lock()
                    .get(&SessionKey::from_stored(parent.key.clone()))
                    .is_some_and(|s| s.expires_at > now),
                CredentialKind::Token => self
                    .tokens
                    .rows
                    .lock()
                    .get(&TokenId::from_stored(parent.key.clone()))
                    .is_some_and(|t| is_live(t.expires_at, now)),
                CredentialKind::Handoff => {
                    self.cross_app.handoffs.lock().get(&parent.key).is_some_and(|h| h.expires_at > now)
                }
                CredentialKind::OAuthGrant => {
                    self.refresh_tokens.rows.lock().get(&parent.key).is_some_and(|f| f.expires_at > now)
                }
                CredentialKind::Consent => self
                    .consents
                    .rows
                    .lock()
                    .get(&entry.user_id)
                    .is_some_and(|m| m.contains_key(&ClientId::from_stored(parent.key.clone()))),
            };
            if !live {
                return Ok(false);
            }
        }
        match credential {
            NewCredential::Session(s) => {
                let mut rows = self.sessions.rows.lock();
                if rows.contains_key(&s.key) {
                    return Err(StoreError::Conflict("session id already exists".into()));
                }
                rows.insert(s.key.clone(), s.clone());
            }
            NewCredential::Token(t) => {
                let mut rows = self.tokens.rows.lock();
                if rows.contains_key(&t.id) {
                    return Err(StoreError::Conflict("token id already exists".into()));
                }
                rows.insert(t.id.clone(), t.clone());
            }
            NewCredential::Handoff(h) => {
                let mut rows = self.cross_app.handoffs.lock();
                if rows.contains_key(&h.token_hash) {
                    return Err(StoreError::Conflict("handoff token already exists".into()));
                }
                rows.insert(h.token_hash.clone(), h.clone());
            }
            NewCredential::OAuthGrant(f) => {
                let mut rows = self.refresh_tokens.rows.lock();
                if rows.contains_key(&f.family_id) {
                    return Err(StoreError::Conflict("refresh token family already exists".into()));
                }
                rows.insert(f.family_id.clone(), f.clone());
            }
            // A re-approval replaces the consent (and, below, its entry).
            NewCredential::Consent(c) => {
                let mut rows = self.consents.rows.lock();
                rows.entry(c.user_id.clone()).or_default().insert(c.client_id.clone(), c.clone());
            }
        }
        self.entries.lock().entry(entry.user_id.clone()).or_default().insert(entry.credential.clone(), entry.clone());
        // As the DynamoDB update does: the list written whole when none was read, else the
        // device added and the oldest read evicted.
        if let Some(u) = users.get_mut(&entry.user_id) {
            super::users::mark(u, crate::tables::users::Marks::default().and_events(on_user.events));
        }
        if let (Some(d), Some(u)) = (on_user.device, users.get_mut(&entry.user_id)) {
            if d.listed.is_empty() {
                u.devices.clear();
            }
            let evicted = evicted_devices(d.listed);
            u.devices.retain(|k| !evicted.iter().any(|e| e.id == k.id) && k.id != d.id);
            u.devices.push(KnownDevice { id: d.id.to_owned(), issued_at: d.issued_at });
            u.devices.sort_by(|a, b| a.issued_at.cmp(&b.issued_at).then_with(|| a.id.cmp(&b.id)));
        }
        drop(users);
        Ok(true)
    }

    async fn list(&self, user: &UserId) -> StoreResult<Vec<CredentialEntry>> {
        Ok(self.entries.lock().get(user).map(|m| m.values().cloned().collect()).unwrap_or_default())
    }

    async fn read(&self, user: &UserId) -> StoreResult<Register> {
        let now = self.sessions.clock.now();
        let ended = self
            .ended
            .lock()
            .get(user)
            .map(|m| m.iter().filter(|(_, until)| **until > now).map(|(r, _)| r.clone()).collect());
        Ok(Register { entries: self.list(user).await?, ended: ended.unwrap_or_default() })
    }

    async fn forget_and_mark(
        &self,
        user: &UserId,
        refs: &[CredentialRef],
        unmark: &[CredentialRef],
        mark: Option<(&CredentialRef, Timestamp)>,
    ) -> StoreResult<()> {
        if let Some(m) = self.entries.lock().get_mut(user) {
            for r in refs {
                m.remove(r);
            }
        }
        let mut ended = self.ended.lock();
        if let Some(m) = ended.get_mut(user) {
            for r in unmark {
                m.remove(r);
            }
        }
        if let Some((root, until)) = mark {
            ended.entry(user.clone()).or_default().insert(root.clone(), until);
        }
        Ok(())
    }

    async fn end_tree_noting(
        &self,
        user: &UserId,
        root: &CredentialRef,
        until: Timestamp,
        events: &[EventMark],
    ) -> StoreResult<()> {
        let mut users = self.users.by_id.lock();
        let mut entries = self.entries.lock();
        // Numbered only by the write that removes the entry.
        let removed = entries.get_mut(user).is_some_and(|m| m.remove(root).is_some());
        if removed && let Some(u) = users.get_mut(user) {
            super::users::mark(u, crate::tables::users::Marks::default().and_events(events));
        }
        self.ended.lock().entry(user.clone()).or_default().insert(root.clone(), until);
        Ok(())
    }

    async fn knows(&self, user: &UserId, cred: &CredentialRef) -> StoreResult<bool> {
        let now = self.sessions.clock.now();
        let entry = self.entries.lock().get(user).is_some_and(|m| m.contains_key(cred));
        let ended = self.ended.lock().get(user).and_then(|m| m.get(cred).copied()).is_some_and(|until| until > now);
        Ok(entry || ended)
    }

    async fn audited(&self, user: &UserId, id: &str) -> StoreResult<bool> {
        // The in-memory records are their own register: the record, if it is the user's.
        Ok(self.cross_app.find_session(id).await?.is_some_and(|r| &r.user_id == user))
    }
}
