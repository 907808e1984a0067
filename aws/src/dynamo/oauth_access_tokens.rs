//! `oauth_access_tokens`: keyed by the JWT's `jti`, TTL on `expires_at`; the JWT itself is never
//! stored. Revoking a token deletes its item.

use super::{Cond, Item, Table, from_ms, from_secs, key1, ms, secs};
use async_trait::async_trait;
use gatehouse::tables::oauth_access_tokens::{AccessTokenRecord, OAuthAccessTokenStore};
use gatehouse::tables::oauth_clients::ClientId;
use gatehouse::tables::users::UserId;
use gatehouse::values::error::{StoreError, StoreResult};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct AccessTokenItem {
    jti: String,
    client_id: String,
    /// Absent for a client-credentials token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user_id: Option<String>,
    scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    family_id: Option<String>,
    created_at: i64,
    expires_at: i64,
}

pub struct DynamoOAuthAccessTokens {
    t: Table,
}

impl DynamoOAuthAccessTokens {
    pub fn new(t: Table) -> Self {
        Self { t }
    }

    fn to_domain(&self, item: Item) -> StoreResult<AccessTokenRecord> {
        let i: AccessTokenItem = self.t.decode(item)?;
        let table = &self.t.name;
        Ok(AccessTokenRecord {
            jti: i.jti,
            client_id: ClientId::from_stored(i.client_id),
            user_id: i.user_id.map(UserId::from_stored),
            scopes: i.scopes,
            family_id: i.family_id,
            created_at: from_ms(table, i.created_at)?,
            expires_at: from_secs(table, i.expires_at)?,
        })
    }
}

#[async_trait]
impl OAuthAccessTokenStore for DynamoOAuthAccessTokens {
    async fn put(&self, r: &AccessTokenRecord) -> StoreResult<()> {
        let item = self.t.encode(&AccessTokenItem {
            jti: r.jti.clone(),
            client_id: r.client_id.as_str().to_owned(),
            user_id: r.user_id.as_ref().map(|u| u.as_str().to_owned()),
            scopes: r.scopes.clone(),
            family_id: r.family_id.clone(),
            created_at: ms(r.created_at),
            expires_at: secs(r.expires_at),
        })?;
        let cond = Cond::new("attribute_not_exists(jti) OR expires_at <= :now_s").now_s(self.t.now());
        if self.t.put_if(item.clone(), cond).await? {
            return Ok(());
        }
        // Refused: a live token has that `jti`, or this very write landed and the SDK retried it
        // (then the item is exactly the one written).
        match self.t.get(key1("jti", &r.jti)).await? {
            Some(stored) if stored == item => Ok(()),
            _ => Err(StoreError::Conflict("access token jti already exists".into())),
        }
    }

    async fn find(&self, jti: &str) -> StoreResult<Option<AccessTokenRecord>> {
        self.t.find_live(key1("jti", jti), |i| self.to_domain(i), |r| Some(r.expires_at)).await
    }

    async fn delete(&self, jti: &str) -> StoreResult<()> {
        self.t.delete(key1("jti", jti)).await
    }
}
