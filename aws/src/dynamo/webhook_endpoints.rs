//! `webhook_endpoints`: keyed by `id`, no TTL (an endpoint stays until an operator removes it).
//! Secrets are stored sealed with the app key; `version` moves with every change of them and is
//! the condition of the next.

use super::{Cond, Item, Table, from_ms, key1, ms, n};
use async_trait::async_trait;
use gatehouse::tables::webhook_endpoints::{
    EventFilter, SealedSecret, WebhookEndpoint, WebhookEndpointId, WebhookEndpointStore,
};
use gatehouse::values::clock::Timestamp;
use gatehouse::values::error::{StoreError, StoreResult};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, PartialEq)]
struct SecretItem {
    sealed: String,
    created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retires_at: Option<i64>,
}

#[derive(Serialize, Deserialize)]
struct EndpointItem {
    id: String,
    url: String,
    events: Vec<String>,
    description: String,
    created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    disabled_at: Option<i64>,
    secrets: Vec<SecretItem>,
    version: u64,
}

fn secret_items(secrets: &[SealedSecret]) -> Vec<SecretItem> {
    secrets
        .iter()
        .map(|s| SecretItem {
            sealed: s.sealed.clone(),
            created_at: ms(s.created_at),
            retires_at: s.retires_at.map(ms),
        })
        .collect()
}

pub struct DynamoWebhookEndpoints {
    t: Table,
}

impl DynamoWebhookEndpoints {
    pub fn new(t: Table) -> Self {
        Self { t }
    }

    fn key(id: &WebhookEndpointId) -> Item {
        key1("id", id.as_str())
    }

    fn item(&self, e: &WebhookEndpoint) -> StoreResult<Item> {
        self.t.encode(&EndpointItem {
            id: e.id.as_str().to_owned(),
            url: e.url.clone(),
            events: e.events.patterns().to_vec(),
            description: e.description.clone(),
            created_at: ms(e.created_at),
            disabled_at: e.disabled_at.map(ms),
            secrets: secret_items(&e.secrets),
            version: e.version,
        })
    }

    fn to_domain(&self, item: Item) -> StoreResult<WebhookEndpoint> {
        let i: EndpointItem = self.t.decode(item)?;
        let table = &self.t.name;
        let secrets = i
            .secrets
            .into_iter()
            .map(|s| {
                Ok(SealedSecret {
                    sealed: s.sealed,
                    created_at: from_ms(table, s.created_at)?,
                    retires_at: s.retires_at.map(|r| from_ms(table, r)).transpose()?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(WebhookEndpoint {
            id: WebhookEndpointId::from_stored(i.id),
            url: i.url,
            events: EventFilter::from_stored(i.events),
            description: i.description,
            created_at: from_ms(table, i.created_at)?,
            disabled_at: i.disabled_at.map(|d| from_ms(table, d)).transpose()?,
            secrets,
            version: i.version,
        })
    }
}

#[async_trait]
impl WebhookEndpointStore for DynamoWebhookEndpoints {
    async fn create(&self, endpoint: &WebhookEndpoint) -> StoreResult<()> {
        let item = self.item(endpoint)?;
        if self.t.put_if(item.clone(), Cond::new("attribute_not_exists(id)")).await? {
            return Ok(());
        }
        // Refused: by another endpoint with that id, or by this very write retried by the SDK
        // after it landed (then the item is exactly the one written).
        match self.t.get(Self::key(&endpoint.id)).await? {
            Some(stored) if stored == item => Ok(()),
            _ => Err(StoreError::Conflict(format!("webhook endpoint {} already exists", endpoint.id))),
        }
    }

    async fn get(&self, id: &WebhookEndpointId) -> StoreResult<Option<WebhookEndpoint>> {
        self.t.get(Self::key(id)).await?.map(|i| self.to_domain(i)).transpose()
    }

    async fn list(&self) -> StoreResult<Vec<WebhookEndpoint>> {
        // A deployment has a few endpoints: the whole table, read consistently, page by page.
        let mut out = self.t.scan_all(|item| self.to_domain(item)).await?;
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    async fn replace_secrets(
        &self,
        id: &WebhookEndpointId,
        expected: u64,
        secrets: &[SealedSecret],
    ) -> StoreResult<bool> {
        let value = serde_dynamo::to_attribute_value(secret_items(secrets))
            .map_err(|e| StoreError::Rejected(format!("{}: cannot encode secrets: {e}", self.t.name)))?;
        let cond = Cond::new("attribute_exists(id) AND #v = :v")
            .name("#v", "version")
            .value(":v", n(expected))
            .value(":nv", n(expected + 1))
            .value(":s", value);
        if self.t.update_if(Self::key(id), "SET secrets = :s, #v = :nv", cond).await? {
            return Ok(true);
        }
        // Refused: another change came first, or this very write was retried by the SDK after it
        // landed (then the item holds exactly what it wrote, at the next version; sealed secrets
        // are unique, so no other write leaves that).
        Ok(self.get(id).await?.is_some_and(|e| e.version == expected + 1 && e.secrets == secrets))
    }

    async fn set_disabled(&self, id: &WebhookEndpointId, at: Option<Timestamp>) -> StoreResult<bool> {
        let cond = Cond::new("attribute_exists(id)");
        match at {
            Some(at) => {
                let cond = cond.value(":d", n(ms(at)));
                self.t.update_if(Self::key(id), "SET disabled_at = :d", cond).await
            }
            None => self.t.update_if(Self::key(id), "REMOVE disabled_at", cond).await,
        }
    }

    async fn remove(&self, id: &WebhookEndpointId) -> StoreResult<bool> {
        Ok(self.t.take(Self::key(id)).await?.is_some())
    }
}
