//! `oauth_signing_keys`: the provider's keyring, keyed by `kid`, TTL on `expires_at` (set when a
//! successor is added). Adding a key and retiring its predecessors is one `TransactWriteItems`.

use super::{Item, Table, from_ms, from_secs, ms, s, secs};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use gatehouse::tables::oauth_signing_keys::{KeyMaterial, OAuthSigningKeyStore, SigningKeyRecord};
use gatehouse::values::clock::Timestamp;
use gatehouse::values::error::{StoreError, StoreResult};
use gatehouse::values::jwt::Jwk;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct KeyItem {
    kid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kms_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed_pem: Option<String>,
    /// The public JWK, as JSON text.
    public: String,
    activates_at: i64,
    created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
}

pub struct DynamoOAuthSigningKeys {
    t: Table,
}

impl DynamoOAuthSigningKeys {
    pub fn new(t: Table) -> Self {
        Self { t }
    }

    fn to_domain(&self, item: Item) -> StoreResult<SigningKeyRecord> {
        let i: KeyItem = self.t.decode(item)?;
        let table = &self.t.name;
        let material = match (i.kms_key_id, i.sealed_pem) {
            (Some(key_id), None) => KeyMaterial::Kms { key_id },
            (None, Some(sealed_pem)) => KeyMaterial::Sealed { sealed_pem },
            _ => return Err(StoreError::corrupt(table, format!("key {} has no single material", i.kid))),
        };
        let public: Jwk = serde_json::from_str(&i.public)
            .map_err(|e| StoreError::corrupt(table, format!("key {}: public JWK: {e}", i.kid)))?;
        Ok(SigningKeyRecord {
            kid: i.kid,
            material,
            public,
            activates_at: from_ms(table, i.activates_at)?,
            created_at: from_ms(table, i.created_at)?,
            expires_at: i.expires_at.map(|e| from_secs(table, e)).transpose()?,
        })
    }
}

#[async_trait]
impl OAuthSigningKeyStore for DynamoOAuthSigningKeys {
    async fn list(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        let now = self.t.now();
        let all = self.t.scan_all(|item| self.to_domain(item)).await?;
        // TTL deletes late: an expired key is no key.
        let mut out: Vec<SigningKeyRecord> = all.into_iter().filter(|k| k.expires_at.is_none_or(|e| e > now)).collect();
        out.sort_by(|a, b| (a.activates_at, &a.kid).cmp(&(b.activates_at, &b.kid)));
        Ok(out)
    }

    async fn add(&self, r: &SigningKeyRecord, retire: &[(String, Timestamp)]) -> StoreResult<()> {
        let (kms_key_id, sealed_pem) = match &r.material {
            KeyMaterial::Kms { key_id } => (Some(key_id.clone()), None),
            KeyMaterial::Sealed { sealed_pem } => (None, Some(sealed_pem.clone())),
        };
        let public = serde_json::to_string(&r.public).map_err(|e| StoreError::Rejected(e.to_string()))?;
        let item = self.t.encode(&KeyItem {
            kid: r.kid.clone(),
            kms_key_id,
            sealed_pem,
            public,
            activates_at: ms(r.activates_at),
            created_at: ms(r.created_at),
            expires_at: r.expires_at.map(secs),
        })?;
        let put = Put::builder()
            .table_name(&self.t.name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(kid)")
            .build()
            .map_err(|e| StoreError::Rejected(e.to_string()))?;
        let mut items = vec![TransactWriteItem::builder().put(put).build()];
        for (kid, at) in retire {
            let update = Update::builder()
                .table_name(&self.t.name)
                .key("kid", s(kid))
                .update_expression("SET expires_at = :e")
                .condition_expression("attribute_exists(kid)")
                .expression_attribute_values(":e", super::n(secs(*at)))
                .build()
                .map_err(|e| StoreError::Rejected(e.to_string()))?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        match self.t.transact(items, 3).await? {
            super::Transacted::Done => Ok(()),
            super::Transacted::Refused(_) => {
                Err(StoreError::Conflict("signing key kid already exists, or a retired key is gone".into()))
            }
            super::Transacted::Contended => Err(StoreError::Unavailable("signing keys: contended".into())),
        }
    }
}
