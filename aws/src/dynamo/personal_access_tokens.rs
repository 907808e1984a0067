//! `personal_access_tokens`: keyed by token id; the secret is stored only as SHA-256; index
//! `by_tokenable` (owner, id) lists an owner's tokens newest first (ids are UUIDv7); TTL on
//! `expires_at`.

use super::{Cond, Item, LIVE, Table, from_ms, key1, ms, n, opt_from_ms, opt_from_secs, s, secs};
use async_trait::async_trait;
use gatehouse::tables::personal_access_tokens::{
    Abilities, PersonalAccessToken, PersonalAccessTokenStore, TokenId, Tokenable,
};
use gatehouse::values::clock::{Timestamp, is_live};
use gatehouse::values::error::{StoreError, StoreResult};
use gatehouse::values::pagination::{Cursor, Page};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct TokenItem {
    id: String,
    /// `<tokenable_type>#<tokenable_id>`: the owner index's key.
    tokenable: String,
    tokenable_type: String,
    tokenable_id: String,
    name: String,
    token: String,
    abilities: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_used_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
    #[serde(default)]
    cred_version: u64,
    /// The owner's address was verified (absent = not, or issued before the flag existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    verified: Option<bool>,
}

pub struct DynamoPersonalAccessTokens {
    t: Table,
    /// The users table, for [`PersonalAccessTokenStore::find_with_owner`].
    users_table: String,
}

impl DynamoPersonalAccessTokens {
    pub fn new(t: Table, users_table: String) -> Self {
        Self { t, users_table }
    }

    fn to_domain(&self, item: Item) -> StoreResult<PersonalAccessToken> {
        let i: TokenItem = self.t.decode(item)?;
        let table = &self.t.name;
        if i.token.len() != 64 {
            return Err(StoreError::corrupt(table, "token hash is not SHA-256 hex"));
        }
        Ok(PersonalAccessToken {
            id: TokenId::from_stored(i.id),
            tokenable: Tokenable { kind: i.tokenable_type, id: i.tokenable_id },
            name: i.name,
            token_hash: i.token,
            abilities: Abilities::new(i.abilities),
            last_used_at: opt_from_ms(table, i.last_used_at)?,
            expires_at: opt_from_secs(table, i.expires_at)?,
            created_at: from_ms(table, i.created_at)?,
            updated_at: from_ms(table, i.updated_at)?,
            credentials_version: i.cred_version,
            email_verified: i.verified,
        })
    }

    pub(crate) fn table_name(&self) -> &str {
        &self.t.name
    }

    /// The token's item and its table (written by the credentials register's transaction).
    pub(crate) fn item(&self, tok: &PersonalAccessToken) -> StoreResult<(&str, Item)> {
        let item = self.t.encode(&TokenItem {
            id: tok.id.as_str().to_owned(),
            tokenable: tok.tokenable.key(),
            tokenable_type: tok.tokenable.kind.clone(),
            tokenable_id: tok.tokenable.id.clone(),
            name: tok.name.clone(),
            token: tok.token_hash.clone(),
            abilities: tok.abilities.as_slice().to_vec(),
            last_used_at: tok.last_used_at.map(ms),
            expires_at: tok.expires_at.map(secs),
            created_at: ms(tok.created_at),
            updated_at: ms(tok.updated_at),
            cred_version: tok.credentials_version,
            verified: tok.email_verified,
        })?;
        Ok((&self.t.name, item))
    }

    async fn conditional_update(
        &self,
        id: &TokenId,
        update: &str,
        cond: &str,
        values: Vec<(&str, aws_sdk_dynamodb::types::AttributeValue)>,
    ) -> StoreResult<bool> {
        let live = Cond::new(format!("attribute_exists(id) AND {LIVE}{cond}")).now_s(self.t.now());
        let cond = values.into_iter().fold(live, |c, (k, v)| c.value(k, v));
        self.t.update_if(key1("id", id.as_str()), update, cond).await
    }
}

#[async_trait]
impl PersonalAccessTokenStore for DynamoPersonalAccessTokens {
    async fn find(&self, id: &TokenId) -> StoreResult<Option<PersonalAccessToken>> {
        self.t.find_live(key1("id", id.as_str()), |i| self.to_domain(i), |t| t.expires_at).await
    }

    async fn find_with_owner(
        &self,
        id: &TokenId,
        owner: &gatehouse::tables::users::UserId,
    ) -> StoreResult<(Option<PersonalAccessToken>, Option<gatehouse::tables::users::OwnerState>)> {
        let now = self.t.now();
        let (item, state) = self.t.get_with_owner(key1("id", id.as_str()), &self.users_table, owner).await?;
        let token = item.map(|i| self.to_domain(i)).transpose()?.filter(|t| is_live(t.expires_at, now));
        Ok((token, state))
    }

    async fn touch_last_used(&self, id: &TokenId, now: Timestamp, stale_before: Timestamp) -> StoreResult<bool> {
        self.conditional_update(
            id,
            "SET last_used_at = :now",
            " AND (attribute_not_exists(last_used_at) OR last_used_at <= :stale)",
            vec![(":now", n(ms(now))), (":stale", n(ms(stale_before)))],
        )
        .await
    }

    async fn mark_verified(&self, id: &TokenId) -> StoreResult<bool> {
        let value = aws_sdk_dynamodb::types::AttributeValue::Bool(true);
        self.conditional_update(id, "SET verified = :t", "", vec![(":t", value)]).await
    }

    async fn extend(&self, id: &TokenId, expires_at: Timestamp) -> StoreResult<bool> {
        self.conditional_update(id, "SET expires_at = :exp", "", vec![(":exp", n(secs(expires_at)))]).await
    }

    async fn delete_owned(&self, id: &TokenId, owner: &Tokenable) -> StoreResult<bool> {
        self.t.delete_if(key1("id", id.as_str()), Cond::new("tokenable = :o").value(":o", s(owner.key()))).await
    }

    async fn list_for(
        &self,
        owner: &Tokenable,
        limit: usize,
        after: Option<&Cursor>,
    ) -> StoreResult<Page<PersonalAccessToken>> {
        let now = self.t.now();
        self.t
            .query_page("by_tokenable", ("tokenable", &owner.key()), limit, after, |item| {
                Ok(Some(self.to_domain(item)?).filter(|t| is_live(t.expires_at, now)))
            })
            .await
    }

    async fn delete_all_for(&self, owner: &Tokenable) -> StoreResult<usize> {
        let keys =
            self.t.query_owner("by_tokenable", ("tokenable", &owner.key()), |item| Ok(self.t.key_of(&item))).await?;
        self.t.delete_keys(keys).await
    }
}
