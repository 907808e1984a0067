//! `oauth_clients`: keyed by `client_id`, no TTL (a client stays until an operator deletes it; a
//! revoked one is kept, marked). A confidential client's secret is stored only as SHA-256, and
//! during a rotation the previous one's beside it with the time it stops being accepted.

use super::{Cond, Item, Table, from_ms, key1, ms, n, s};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use gatehouse::tables::oauth_clients::{ClientId, GrantType, OAuthClient, OAuthClientStore, PreviousSecret};
use gatehouse::values::error::{StoreError, StoreResult};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct ClientItem {
    client_id: String,
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous_secret_hash: Option<String>,
    /// Until when the previous secret is accepted (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous_secret_until: Option<i64>,
    redirect_uris: Vec<String>,
    post_logout_redirect_uris: Vec<String>,
    grant_types: Vec<GrantType>,
    scopes: Vec<String>,
    first_party: bool,
    revoked: bool,
    dynamic: bool,
    created_at: i64,
}

pub struct DynamoOAuthClients {
    t: Table,
}

impl DynamoOAuthClients {
    pub fn new(t: Table) -> Self {
        Self { t }
    }

    fn item(&self, c: &OAuthClient) -> StoreResult<Item> {
        self.t.encode(&ClientItem {
            client_id: c.id.as_str().to_owned(),
            name: c.name.clone(),
            secret_hash: c.secret_hash.clone(),
            previous_secret_hash: c.previous_secret.as_ref().map(|p| p.hash.clone()),
            previous_secret_until: c.previous_secret.as_ref().map(|p| ms(p.until)),
            redirect_uris: c.redirect_uris.clone(),
            post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
            grant_types: c.grant_types.clone(),
            scopes: c.scopes.clone(),
            first_party: c.first_party,
            revoked: c.revoked,
            dynamic: c.dynamic,
            created_at: ms(c.created_at),
        })
    }

    fn to_domain(&self, item: Item) -> StoreResult<OAuthClient> {
        let i: ClientItem = self.t.decode(item)?;
        let table = &self.t.name;
        let previous_secret = match (i.previous_secret_hash, i.previous_secret_until) {
            (Some(hash), Some(until)) => Some(PreviousSecret { hash, until: from_ms(table, until)? }),
            (None, None) => None,
            _ => return Err(StoreError::corrupt(table, "a previous secret without its hash or its end")),
        };
        Ok(OAuthClient {
            id: ClientId::from_stored(i.client_id),
            name: i.name,
            secret_hash: i.secret_hash,
            previous_secret,
            redirect_uris: i.redirect_uris,
            post_logout_redirect_uris: i.post_logout_redirect_uris,
            grant_types: i.grant_types,
            scopes: i.scopes,
            first_party: i.first_party,
            revoked: i.revoked,
            dynamic: i.dynamic,
            created_at: from_ms(table, i.created_at)?,
        })
    }
}

#[async_trait]
impl OAuthClientStore for DynamoOAuthClients {
    async fn create(&self, client: &OAuthClient) -> StoreResult<()> {
        let item = self.item(client)?;
        if self.t.put_if(item.clone(), Cond::new("attribute_not_exists(client_id)")).await? {
            return Ok(());
        }
        // Refused: by another client with that id, or by this very write retried by the SDK
        // after it landed (then the item is exactly the one written).
        match self.t.get(key1("client_id", client.id.as_str())).await? {
            Some(stored) if stored == item => Ok(()),
            _ => Err(StoreError::Conflict(format!("oauth client {} already exists", client.id))),
        }
    }

    async fn find(&self, id: &ClientId) -> StoreResult<Option<OAuthClient>> {
        self.t.get(key1("client_id", id.as_str())).await?.map(|i| self.to_domain(i)).transpose()
    }

    async fn list(&self) -> StoreResult<Vec<OAuthClient>> {
        // A deployment has few clients: the whole table, read consistently, page by page.
        let mut out = self.t.scan_all(|item| self.to_domain(item)).await?;
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    async fn rotate_secret(&self, id: &ClientId, hash: &str, previous: Option<&PreviousSecret>) -> StoreResult<bool> {
        // Confidential (it has a secret) and not revoked; a retry of a rotation that landed
        // meets the same condition and writes the same values.
        let cond = Cond::new("attribute_exists(client_id) AND attribute_exists(secret_hash) AND revoked = :no")
            .value(":no", AttributeValue::Bool(false))
            .value(":h", s(hash));
        match previous {
            Some(p) => {
                let cond = cond.value(":ph", s(&p.hash)).value(":pu", n(ms(p.until)));
                let update = "SET secret_hash = :h, previous_secret_hash = :ph, previous_secret_until = :pu";
                self.t.update_if(key1("client_id", id.as_str()), update, cond).await
            }
            None => {
                let update = "SET secret_hash = :h REMOVE previous_secret_hash, previous_secret_until";
                self.t.update_if(key1("client_id", id.as_str()), update, cond).await
            }
        }
    }

    async fn revoke(&self, id: &ClientId) -> StoreResult<bool> {
        let cond = Cond::new("attribute_exists(client_id)").value(":yes", AttributeValue::Bool(true));
        self.t.update_if(key1("client_id", id.as_str()), "SET revoked = :yes", cond).await
    }
}
