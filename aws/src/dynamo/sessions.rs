//! `sessions`: keyed by SHA-256 of the session id; index `by_user` (user_id, last_activity) for
//! listing a user's sessions; TTL on `expires_at`.

use super::{Cond, Item, LIVE, Table, from_ms, from_secs, key1, ms, n, opt_from_ms, secs};
use async_trait::async_trait;
use gatehouse::tables::credential_ref::CredentialRef;
use gatehouse::tables::sessions::{SessionKey, SessionRecord, SessionStore};
use gatehouse::tables::users::UserId;
use gatehouse::values::clock::Timestamp;
use gatehouse::values::error::StoreResult;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct SessionItem {
    id_hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<String>,
    /// JSON text.
    payload: String,
    last_activity: i64,
    created_at: i64,
    expires_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    app: Option<String>,
    #[serde(default)]
    cred_version: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    password_confirmed_at: Option<i64>,
    /// The user's address was verified (absent = not, or issued before the flag existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    verified: Option<bool>,
    /// A derived session's abilities (absent: all its user's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    abilities: Option<Vec<String>>,
    /// A derived session's end, epoch ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    not_after: Option<i64>,
}

pub struct DynamoSessions {
    t: Table,
    /// The users table, for [`SessionStore::find_with_owner`].
    users_table: String,
}

impl DynamoSessions {
    pub fn new(t: Table, users_table: String) -> Self {
        Self { t, users_table }
    }

    fn to_domain(&self, item: Item) -> StoreResult<SessionRecord> {
        let i: SessionItem = self.t.decode(item)?;
        let table = &self.t.name;
        Ok(SessionRecord {
            key: SessionKey::from_stored(i.id_hash),
            user_id: i.user_id.map(UserId::from_stored),
            ip_address: i.ip_address,
            user_agent: i.user_agent,
            payload: serde_json::from_str(&i.payload)
                .map_err(|e| gatehouse::StoreError::corrupt(table, format!("payload: {e}")))?,
            last_activity: from_ms(table, i.last_activity)?,
            created_at: from_ms(table, i.created_at)?,
            expires_at: from_secs(table, i.expires_at)?,
            app: i.app,
            credentials_version: i.cred_version,
            parent: i
                .parent
                .map(|p| CredentialRef::decode(&p).ok_or_else(|| gatehouse::StoreError::corrupt(table, "parent")))
                .transpose()?,
            password_confirmed_at: opt_from_ms(table, i.password_confirmed_at)?,
            email_verified: i.verified,
            abilities: i.abilities.map(gatehouse::tables::personal_access_tokens::Abilities::new),
            not_after: opt_from_ms(table, i.not_after)?,
        })
    }

    pub(crate) fn table_name(&self) -> &str {
        &self.t.name
    }

    /// The session's item and its table (written by the credentials register's transaction).
    pub(crate) fn item(&self, r: &SessionRecord) -> StoreResult<(&str, Item)> {
        let item = self.t.encode(&SessionItem {
            id_hash: r.key.as_str().to_owned(),
            user_id: r.user_id.as_ref().map(|u| u.as_str().to_owned()),
            ip_address: r.ip_address.clone(),
            user_agent: r.user_agent.clone(),
            payload: r.payload.to_string(),
            last_activity: ms(r.last_activity),
            created_at: ms(r.created_at),
            expires_at: secs(r.expires_at),
            app: r.app.clone(),
            cred_version: r.credentials_version,
            parent: r.parent.as_ref().map(CredentialRef::encode),
            password_confirmed_at: r.password_confirmed_at.map(ms),
            verified: r.email_verified,
            abilities: r.abilities.as_ref().map(|a| a.as_slice().to_vec()),
            not_after: r.not_after.map(ms),
        })?;
        Ok((&self.t.name, item))
    }

    /// Every session item of the user, live or not.
    async fn all_for_user(&self, user: &UserId) -> StoreResult<Vec<Item>> {
        self.t.query_owner("by_user", ("user_id", user.as_str()), Ok).await
    }
}

#[async_trait]
impl SessionStore for DynamoSessions {
    async fn confirm_password(&self, key: &SessionKey, now: Timestamp) -> StoreResult<bool> {
        let cond =
            Cond::new(format!("attribute_exists(id_hash) AND {LIVE}")).value(":c", n(ms(now))).now_s(self.t.now());
        self.t.update_if(key1("id_hash", key.as_str()), "SET password_confirmed_at = :c", cond).await
    }

    async fn mark_verified(&self, key: &SessionKey) -> StoreResult<bool> {
        let cond = Cond::new(format!("attribute_exists(id_hash) AND {LIVE}"))
            .value(":t", aws_sdk_dynamodb::types::AttributeValue::Bool(true))
            .now_s(self.t.now());
        self.t.update_if(key1("id_hash", key.as_str()), "SET verified = :t", cond).await
    }

    async fn find(&self, key: &SessionKey) -> StoreResult<Option<SessionRecord>> {
        self.t.find_live(key1("id_hash", key.as_str()), |i| self.to_domain(i), |s| Some(s.expires_at)).await
    }

    async fn find_with_owner(
        &self,
        key: &SessionKey,
        owner: &UserId,
    ) -> StoreResult<(Option<SessionRecord>, Option<gatehouse::tables::users::OwnerState>)> {
        let now = self.t.now();
        let (item, state) = self.t.get_with_owner(key1("id_hash", key.as_str()), &self.users_table, owner).await?;
        let session = item.map(|i| self.to_domain(i)).transpose()?.filter(|s| s.expires_at > now);
        Ok((session, state))
    }

    async fn touch(
        &self,
        key: &SessionKey,
        now: Timestamp,
        expires_at: Timestamp,
        stale_before: Timestamp,
    ) -> StoreResult<bool> {
        let cond = Cond::new(format!("attribute_exists(id_hash) AND {LIVE} AND last_activity <= :stale"))
            .value(":la", n(ms(now)))
            .value(":exp", n(secs(expires_at)))
            .now_s(self.t.now())
            .value(":stale", n(ms(stale_before)));
        self.t.update_if(key1("id_hash", key.as_str()), "SET last_activity = :la, expires_at = :exp", cond).await
    }

    async fn delete(&self, key: &SessionKey) -> StoreResult<bool> {
        Ok(self.t.take(key1("id_hash", key.as_str())).await?.is_some())
    }

    async fn list_for_user(&self, user: &UserId) -> StoreResult<Vec<SessionRecord>> {
        let now = self.t.now();
        let mut v = Vec::new();
        for item in self.all_for_user(user).await? {
            let rec = self.to_domain(item)?;
            if rec.expires_at > now {
                v.push(rec);
            }
        }
        Ok(v)
    }

    async fn delete_for_user(&self, user: &UserId, keep: Option<&SessionKey>) -> StoreResult<usize> {
        let keys: Vec<Item> = self
            .all_for_user(user)
            .await?
            .into_iter()
            .filter(|i| !matches!((i.get("id_hash"), keep), (Some(aws_sdk_dynamodb::types::AttributeValue::S(h)), Some(k)) if h == k.as_str()))
            .map(|i| self.t.key_of(&i))
            .collect();
        self.t.delete_keys(keys).await
    }
}
