//! `cross_app_handoffs` (keyed by SHA-256 of the handoff token; TTL) and `cross_app_sessions`
//! (the audit trail, keyed by id; index `by_user`; TTL = retention).

use super::{
    Item, LIVE, Table, condition_failed, from_ms, from_secs, key1, ms, n, opt_from_ms, opt_from_secs, s, secs,
};
use crate::clock::{Timestamp, is_live};
use crate::credentials::CredentialRef;
use crate::cross_app_sessions::{CrossAppSession, CrossAppStore, Handoff};
use crate::error::StoreResult;
use crate::sessions::SessionKey;
use crate::users::UserId;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;
use serde::{Deserialize, Serialize};

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

pub struct DynamoCrossApp {
    handoffs: Table,
    sessions: Table,
}

impl DynamoCrossApp {
    pub fn new(handoffs: Table, sessions: Table) -> Self {
        Self { handoffs, sessions }
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
                .map(|p| CredentialRef::decode(&p).ok_or_else(|| crate::StoreError::corrupt(t, "parent")))
                .transpose()?,
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
impl CrossAppStore for DynamoCrossApp {
    async fn delete_handoff(&self, token_hash: &str) -> StoreResult<()> {
        let t = &self.handoffs;
        t.client
            .delete_item()
            .table_name(&t.name)
            .key("token_hash", s(token_hash))
            .send()
            .await
            .map_err(|e| t.err(e))?;
        Ok(())
    }

    async fn consume_handoff(
        &self,
        token_hash: &str,
        target_app: &str,
        now: Timestamp,
    ) -> StoreResult<Option<Handoff>> {
        let t = &self.handoffs;
        let res = t
            .client
            .update_item()
            .table_name(&t.name)
            .key("token_hash", s(token_hash))
            .update_expression("SET used_at = :used")
            .condition_expression(format!(
                "attribute_exists(token_hash) AND attribute_not_exists(used_at) AND target_app = :app AND {LIVE}"
            ))
            .expression_attribute_values(":used", n(ms(now)))
            .expression_attribute_values(":app", s(target_app))
            .expression_attribute_values(":now_s", n(secs(now)))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match res {
            Ok(out) => out.attributes.map(|a| self.handoff(a)).transpose(),
            Err(e) if condition_failed(&e) => Ok(None),
            Err(e) => Err(t.err(e)),
        }
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
        let t = &self.sessions;
        t.client.put_item().table_name(&t.name).set_item(Some(item)).send().await.map_err(|e| t.err(e))?;
        Ok(())
    }

    async fn find_session(&self, id: &str) -> StoreResult<Option<CrossAppSession>> {
        let now = self.sessions.now();
        match self.sessions.get(key1("id", id)).await? {
            Some(item) => Ok(Some(self.session(item)?).filter(|s| is_live(s.expires_at, now))),
            None => Ok(None),
        }
    }

    async fn revoke_session(
        &self,
        id: &str,
        user: &UserId,
        now: Timestamp,
        reason: &str,
    ) -> StoreResult<Option<CrossAppSession>> {
        let t = &self.sessions;
        let res = t
            .client
            .update_item()
            .table_name(&t.name)
            .key("id", s(id))
            .update_expression("SET revoked_at = :r, revoked_reason = :why")
            .expression_attribute_values(":why", s(reason))
            .condition_expression(format!(
                "attribute_exists(id) AND user_id = :u AND attribute_not_exists(revoked_at) AND {LIVE}"
            ))
            .expression_attribute_values(":r", n(ms(now)))
            .expression_attribute_values(":u", s(user.as_str()))
            .expression_attribute_values(":now_s", n(secs(t.now())))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match res {
            Ok(out) => out.attributes.map(|a| self.session(a)).transpose(),
            Err(e) if condition_failed(&e) => Ok(None),
            Err(e) => Err(t.err(e)),
        }
    }

    async fn list_for_user(&self, user: &UserId) -> StoreResult<Vec<CrossAppSession>> {
        let now = self.sessions.now();
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .sessions
                .query_page("by_user", ("user_id", user.as_str()), 1000, after.as_ref(), |item| {
                    Ok(Some(self.session(item)?).filter(|s| is_live(s.expires_at, now)))
                })
                .await?;
            out.extend(page.items);
            match page.next {
                Some(c) => after = Some(c),
                None => return Ok(out),
            }
        }
    }
}
