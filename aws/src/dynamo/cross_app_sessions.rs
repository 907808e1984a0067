//! `cross_app_handoffs` (keyed by SHA-256 of the handoff token; TTL) and `cross_app_sessions`
//! (the audit trail, keyed by id; index `by_user`; TTL = retention). Every audit record is named
//! by an entry of the `credentials` register (`audit#<id>`, partition = the user), put in the
//! same `TransactWriteItems`: a deleted account's records are found by a consistent read of it,
//! not only through the index, which lags a fresh record by a second or so.

use super::credentials::{audit_entry, audit_ids, forget_audit};
use super::{
    Cond, Item, LIVE, Table, Transacted, built, from_ms, from_secs, key1, ms, n, opt_from_ms, opt_from_secs, s, secs,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use gatehouse::tables::credential_ref::CredentialRef;
use gatehouse::tables::cross_app_sessions::{CrossAppSession, CrossAppSessionStore, Handoff};
use gatehouse::tables::sessions::SessionKey;
use gatehouse::tables::users::UserId;
use gatehouse::values::clock::{Timestamp, is_live};
use gatehouse::values::error::StoreResult;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Serialize, Deserialize)]
struct HandoffItem {
    token_hash: String,
    user_id: String,
    source_app: String,
    target_app: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<String>,
    created_at: i64,
    expires_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    used_at: Option<i64>,
    #[serde(default)]
    cred_version: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    abilities: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    not_after: Option<i64>,
}

#[derive(Serialize, Deserialize)]
struct CrossSessionItem {
    id: String,
    user_id: String,
    source_app: String,
    target_app: String,
    session_hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<String>,
    created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    revoked_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revoked_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
}

pub struct DynamoCrossAppSessions {
    handoffs: Table,
    sessions: Table,
    /// The `credentials` register, for the audit records' entries.
    register: Table,
}

impl DynamoCrossAppSessions {
    /// The register is the deployment's `credentials` table: named as `sessions` is, with the
    /// same prefix (`Names::table`).
    pub fn new(handoffs: Table, sessions: Table) -> Self {
        let prefix = sessions.name.strip_suffix(sessions.def.logical).unwrap_or_default();
        let register = Table {
            client: sessions.client.clone(),
            clock: sessions.clock.clone(),
            name: format!("{prefix}{}", gatehouse::schema::CREDENTIALS.logical),
            def: gatehouse::schema::CREDENTIALS,
        };
        Self { handoffs, sessions, register }
    }

    fn handoff(&self, item: Item) -> StoreResult<Handoff> {
        let i: HandoffItem = self.handoffs.decode(item)?;
        let t = &self.handoffs.name;
        Ok(Handoff {
            token_hash: i.token_hash,
            user_id: UserId::from_stored(i.user_id),
            source_app: i.source_app,
            target_app: i.target_app,
            ip_address: i.ip_address,
            user_agent: i.user_agent,
            created_at: from_ms(t, i.created_at)?,
            expires_at: from_secs(t, i.expires_at)?,
            used_at: opt_from_ms(t, i.used_at)?,
            credentials_version: i.cred_version,
            parent: i
                .parent
                .map(|p| CredentialRef::decode(&p).ok_or_else(|| gatehouse::StoreError::corrupt(t, "parent")))
                .transpose()?,
            abilities: i.abilities.map(gatehouse::tables::personal_access_tokens::Abilities::new),
            not_after: opt_from_ms(t, i.not_after)?,
        })
    }

    pub(crate) fn handoffs_table_name(&self) -> &str {
        &self.handoffs.name
    }

    /// The handoff's item and its table (written by the credentials register's transaction).
    pub(crate) fn handoff_item(&self, h: &Handoff) -> StoreResult<(&str, Item)> {
        let item = self.handoffs.encode(&HandoffItem {
            token_hash: h.token_hash.clone(),
            user_id: h.user_id.as_str().to_owned(),
            source_app: h.source_app.clone(),
            target_app: h.target_app.clone(),
            ip_address: h.ip_address.clone(),
            user_agent: h.user_agent.clone(),
            created_at: ms(h.created_at),
            expires_at: secs(h.expires_at),
            used_at: h.used_at.map(ms),
            cred_version: h.credentials_version,
            parent: h.parent.as_ref().map(CredentialRef::encode),
            abilities: h.abilities.as_ref().map(|a| a.as_slice().to_vec()),
            not_after: h.not_after.map(ms),
        })?;
        Ok((&self.handoffs.name, item))
    }

    fn session(&self, item: Item) -> StoreResult<CrossAppSession> {
        let i: CrossSessionItem = self.sessions.decode(item)?;
        let t = &self.sessions.name;
        Ok(CrossAppSession {
            id: i.id,
            user_id: UserId::from_stored(i.user_id),
            source_app: i.source_app,
            target_app: i.target_app,
            session_key: SessionKey::from_stored(i.session_hash),
            ip_address: i.ip_address,
            user_agent: i.user_agent,
            created_at: from_ms(t, i.created_at)?,
            revoked_at: opt_from_ms(t, i.revoked_at)?,
            revoked_reason: i.revoked_reason,
            expires_at: opt_from_secs(t, i.expires_at)?,
        })
    }
}

#[async_trait]
impl CrossAppSessionStore for DynamoCrossAppSessions {
    async fn delete_handoff(&self, token_hash: &str) -> StoreResult<()> {
        self.handoffs.delete(key1("token_hash", token_hash)).await
    }

    async fn consume_handoff(
        &self,
        token_hash: &str,
        target_app: &str,
        now: Timestamp,
    ) -> StoreResult<Option<Handoff>> {
        let cond = Cond::new(format!(
            "attribute_exists(token_hash) AND attribute_not_exists(used_at) AND target_app = :app AND {LIVE}"
        ))
        .value(":used", n(ms(now)))
        .value(":app", s(target_app))
        .now_s(now);
        // Marked with this exchange's own id (`update_own`): the SDK retrying the update after it
        // landed is refused by `used_at`, and the mark tells it the handoff was spent by this call.
        let used = self
            .handoffs
            .update_own(key1("token_hash", token_hash), "SET used_at = :used, used_by = :mark", cond, "used_by")
            .await?;
        used.map(|a| self.handoff(a)).transpose()
    }

    async fn record_session(&self, c: &CrossAppSession) -> StoreResult<()> {
        let item = self.sessions.encode(&CrossSessionItem {
            id: c.id.clone(),
            user_id: c.user_id.as_str().to_owned(),
            source_app: c.source_app.clone(),
            target_app: c.target_app.clone(),
            session_hash: c.session_key.as_str().to_owned(),
            ip_address: c.ip_address.clone(),
            user_agent: c.user_agent.clone(),
            created_at: ms(c.created_at),
            revoked_at: c.revoked_at.map(ms),
            revoked_reason: c.revoked_reason.clone(),
            expires_at: c.expires_at.map(secs),
        })?;
        // The record and its register entry in one step: no record the register does not name.
        let entry = audit_entry(&self.register, &c.user_id, &c.id, c.created_at, c.expires_at)?;
        let put = |table: &str, item: Item| {
            built(Put::builder().table_name(table).set_item(Some(item)).build())
                .map(|p| TransactWriteItem::builder().put(p).build())
        };
        let items = vec![put(&self.sessions.name, item)?, put(&self.register.name, entry)?];
        match self.sessions.transact(items, 8).await? {
            Transacted::Done => Ok(()),
            Transacted::Refused(codes) => {
                Err(gatehouse::StoreError::Unavailable(format!("cross_app_sessions: recording refused: {codes:?}")))
            }
            Transacted::Contended => Err(gatehouse::StoreError::Unavailable(
                "cross_app_sessions: recording kept conflicting with concurrent writes".into(),
            )),
        }
    }

    async fn find_session(&self, id: &str) -> StoreResult<Option<CrossAppSession>> {
        self.sessions.find_live(key1("id", id), |i| self.session(i), |s| s.expires_at).await
    }

    async fn revoke_session(
        &self,
        id: &str,
        user: &UserId,
        now: Timestamp,
        reason: &str,
    ) -> StoreResult<Option<CrossAppSession>> {
        let cond =
            Cond::new(format!("attribute_exists(id) AND user_id = :u AND attribute_not_exists(revoked_at) AND {LIVE}"))
                .value(":why", s(reason))
                .value(":r", n(ms(now)))
                .value(":u", s(user.as_str()))
                .now_s(self.sessions.now());
        let update = "SET revoked_at = :r, revoked_reason = :why";
        let revoked = self.sessions.update_if_returning(key1("id", id), update, cond).await?;
        revoked.map(|a| self.session(a)).transpose()
    }

    async fn pseudonymize(&self, user: &UserId, pseudonym: &str) -> StoreResult<usize> {
        // Every record, expired ones too (TTL deletes late and they still name the user): those
        // the register names, read consistently (every record is written with its entry), and
        // those the owner index lists (records written before the register named them; it may
        // lag a fresh record by a second or so, which the register does not).
        let registered = audit_ids(&self.register, user).await?;
        let mut ids: BTreeSet<String> = registered.iter().cloned().collect();
        ids.extend(self.all_for_user(user, None).await?.into_iter().map(|r| r.id));
        let mut n = 0;
        for id in &ids {
            let cond = Cond::new("attribute_exists(id) AND user_id = :u")
                .value(":u", s(user.as_str()))
                .value(":p", s(pseudonym));
            let update = "SET user_id = :p REMOVE ip_address, user_agent";
            n += usize::from(self.sessions.update_if(key1("id", id), update, cond).await?);
        }
        // Only once every record they name is rewritten (a retry finds them again): the entries
        // are keyed by the user's id, so they go too.
        forget_audit(&self.register, user, &registered).await?;
        Ok(n)
    }

    async fn list_for_user(&self, user: &UserId) -> StoreResult<Vec<CrossAppSession>> {
        self.all_for_user(user, Some(self.sessions.now())).await
    }
}

impl DynamoCrossAppSessions {
    /// The user's audit records from the owner index, newest first; only those live at `live_at`
    /// when given.
    async fn all_for_user(&self, user: &UserId, live_at: Option<Timestamp>) -> StoreResult<Vec<CrossAppSession>> {
        let records =
            self.sessions.query_owner("by_user", ("user_id", user.as_str()), |item| self.session(item)).await?;
        Ok(records.into_iter().filter(|r| live_at.is_none_or(|now| is_live(r.expires_at, now))).collect())
    }
}
