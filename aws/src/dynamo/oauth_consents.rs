//! `oauth_consents`: keyed by (`user_id`, `client_id`), no TTL; a user's consents are one
//! partition, listed with a consistent `Query`. A consent is written by the credentials
//! register's transaction only ([`super::DynamoCredentials`]), replacing the one it finds.

use super::{Item, Table, from_ms, ms, s};
use async_trait::async_trait;
use gatehouse::tables::oauth_clients::ClientId;
use gatehouse::tables::oauth_consents::{Consent, OAuthConsentStore};
use gatehouse::tables::users::UserId;
use gatehouse::values::error::StoreResult;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Serialize, Deserialize)]
struct ConsentItem {
    user_id: String,
    client_id: String,
    scopes: Vec<String>,
    created_at: i64,
}

pub struct DynamoOAuthConsents {
    t: Table,
}

/// The key of `user`'s consent to `client`.
pub(crate) fn consent_key(user: &UserId, client: &str) -> Item {
    HashMap::from([("user_id".to_owned(), s(user.as_str())), ("client_id".to_owned(), s(client))])
}

impl DynamoOAuthConsents {
    pub fn new(t: Table) -> Self {
        Self { t }
    }

    pub(crate) fn table_name(&self) -> &str {
        &self.t.name
    }

    /// The consent's item and its table (written by the credentials register's transaction).
    pub(crate) fn item(&self, c: &Consent) -> StoreResult<(&str, Item)> {
        let item = self.t.encode(&ConsentItem {
            user_id: c.user_id.as_str().to_owned(),
            client_id: c.client_id.as_str().to_owned(),
            scopes: c.scopes.clone(),
            created_at: ms(c.created_at),
        })?;
        Ok((&self.t.name, item))
    }

    fn to_domain(&self, item: Item) -> StoreResult<Consent> {
        let i: ConsentItem = self.t.decode(item)?;
        Ok(Consent {
            user_id: UserId::from_stored(i.user_id),
            client_id: ClientId::from_stored(i.client_id),
            scopes: i.scopes,
            created_at: from_ms(&self.t.name, i.created_at)?,
        })
    }
}

#[async_trait]
impl OAuthConsentStore for DynamoOAuthConsents {
    async fn find(&self, user: &UserId, client: &ClientId) -> StoreResult<Option<Consent>> {
        self.t.get(consent_key(user, client.as_str())).await?.map(|i| self.to_domain(i)).transpose()
    }

    async fn list(&self, user: &UserId) -> StoreResult<Vec<Consent>> {
        // In sort-key order: by client id.
        self.t
            .query_all(
                |q| {
                    q.key_condition_expression("user_id = :u")
                        .expression_attribute_values(":u", s(user.as_str()))
                        .consistent_read(true)
                },
                |item| self.to_domain(item),
            )
            .await
    }

    async fn delete(&self, user: &UserId, client: &ClientId) -> StoreResult<()> {
        self.t.delete(consent_key(user, client.as_str())).await
    }
}
