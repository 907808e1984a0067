//! `oauth_auth_codes`: keyed by the code's SHA-256 (`code_hash`), TTL on `expires_at`. A code is
//! spent by marking it with the spending call's own mark (`spent_by`), in one conditional
//! `UpdateItem` that exactly one of racing exchanges wins; the spent item stays until it expires,
//! so a replay reads as one. The SDK retrying a spend that landed finds its own mark: still the
//! spend, never taken for a replay.

use super::{Cond, Item, LIVE, OwnMark, Table, from_ms, from_secs, key1, ms, n, secs};
use async_trait::async_trait;
use gatehouse::tables::oauth_auth_codes::{AuthCodeRecord, CodeSpend, OAuthAuthCodeStore};
use gatehouse::tables::oauth_clients::ClientId;
use gatehouse::tables::users::UserId;
use gatehouse::values::clock::Timestamp;
use gatehouse::values::error::{StoreError, StoreResult};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct CodeItem {
    code_hash: String,
    client_id: String,
    user_id: String,
    redirect_uri: String,
    scopes: Vec<String>,
    code_challenge: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nonce: Option<String>,
    cred_version: u64,
    family_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    session_id: Option<String>,
    auth_time: i64,
    amr: Vec<String>,
    created_at: i64,
    expires_at: i64,
    /// The mark of the spend that spent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    spent_by: Option<String>,
    /// When it was spent (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    spent_at: Option<i64>,
}

pub struct DynamoOAuthAuthCodes {
    t: Table,
}

impl DynamoOAuthAuthCodes {
    pub fn new(t: Table) -> Self {
        Self { t }
    }

    /// The record and the item's spend mark, if spent.
    fn to_domain(&self, item: Item) -> StoreResult<(AuthCodeRecord, Option<String>)> {
        let i: CodeItem = self.t.decode(item)?;
        let table = &self.t.name;
        let record = AuthCodeRecord {
            code_hash: i.code_hash,
            client_id: ClientId::from_stored(i.client_id),
            user_id: UserId::from_stored(i.user_id),
            redirect_uri: i.redirect_uri,
            scopes: i.scopes,
            code_challenge: i.code_challenge,
            nonce: i.nonce,
            credentials_version: i.cred_version,
            family_id: i.family_id,
            session_id: i.session_id,
            auth_time: from_ms(table, i.auth_time)?,
            amr: i.amr,
            created_at: from_ms(table, i.created_at)?,
            expires_at: from_secs(table, i.expires_at)?,
        };
        Ok((record, i.spent_by))
    }
}

#[async_trait]
impl OAuthAuthCodeStore for DynamoOAuthAuthCodes {
    async fn put(&self, r: &AuthCodeRecord) -> StoreResult<()> {
        let item = self.t.encode(&CodeItem {
            code_hash: r.code_hash.clone(),
            client_id: r.client_id.as_str().to_owned(),
            user_id: r.user_id.as_str().to_owned(),
            redirect_uri: r.redirect_uri.clone(),
            scopes: r.scopes.clone(),
            code_challenge: r.code_challenge.clone(),
            nonce: r.nonce.clone(),
            cred_version: r.credentials_version,
            family_id: r.family_id.clone(),
            session_id: r.session_id.clone(),
            auth_time: ms(r.auth_time),
            amr: r.amr.clone(),
            created_at: ms(r.created_at),
            expires_at: secs(r.expires_at),
            spent_by: None,
            spent_at: None,
        })?;
        let cond = Cond::new("attribute_not_exists(code_hash) OR expires_at <= :now_s").now_s(self.t.now());
        if self.t.put_if(item.clone(), cond).await? {
            return Ok(());
        }
        // Refused: a live code has that hash, or this very write landed and the SDK retried it
        // (then the item is exactly the one written, unspent).
        match self.t.get(key1("code_hash", &r.code_hash)).await? {
            Some(stored) if stored == item => Ok(()),
            _ => Err(StoreError::Conflict("authorization code already exists".into())),
        }
    }

    async fn spend(&self, code_hash: &str, now: Timestamp) -> StoreResult<CodeSpend> {
        let key = key1("code_hash", code_hash);
        let mark = OwnMark::new();
        let cond = Cond::new(format!("attribute_exists(code_hash) AND attribute_not_exists(spent_by) AND {LIVE}"))
            .now_s(now)
            .value(":mark", mark.value())
            .value(":at", n(ms(now)));
        let update = "SET spent_by = :mark, spent_at = :at";
        if let Some(item) = self.t.update_if_returning(key.clone(), update, cond).await? {
            return Ok(CodeSpend::Spent(self.to_domain(item)?.0));
        }
        // Refused: read once (consistently) what refused it.
        let Some(item) = self.t.get(key).await? else { return Ok(CodeSpend::Unknown) };
        let own = mark.on(&item, "spent_by");
        let (record, spent_by) = self.to_domain(item)?;
        Ok(if record.expires_at <= now {
            CodeSpend::Unknown
        } else if own {
            // This spend, retried by the SDK after it landed.
            CodeSpend::Spent(record)
        } else if spent_by.is_some() {
            CodeSpend::Replayed(record)
        } else {
            CodeSpend::Unknown
        })
    }
}
