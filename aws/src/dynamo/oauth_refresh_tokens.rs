//! `oauth_refresh_tokens`: one item per grant, a refresh-token family, keyed by `family_id`, TTL
//! on `expires_at` (the family's absolute end; rotation never moves it). A family is written by
//! the credentials register's transaction only ([`super::DynamoCredentials`]).
//!
//! The item holds the current token's `generation` and `current_hash`, and the hashes of the
//! spent tokens in the map `spent` (generation → hash): a rotation is ONE conditional
//! `UpdateItem` (on the generation and hash presented, the family live) that moves the current
//! hash into `spent` under its generation and removes the one [`SPENT_REMEMBERED`] generations
//! older, so the map keeps the last ones without a read. It also sets `rotated_by` to the call's
//! own mark: the SDK retrying a rotation that landed finds its mark and answers `Rotated`, never
//! taking its own write for reuse. A refused rotation reads the family once (consistently) to
//! tell reuse from a token never issued.

use super::{Cond, Item, LIVE, OwnMark, Table, from_ms, from_secs, key1, ms, n, s, secs};
use async_trait::async_trait;
use gatehouse::tables::oauth_clients::ClientId;
use gatehouse::tables::oauth_refresh_tokens::{
    OAuthRefreshTokenStore, RefreshFamily, RefreshToken, Rotation, SPENT_REMEMBERED,
};
use gatehouse::tables::users::UserId;
use gatehouse::values::clock::Timestamp;
use gatehouse::values::error::{StoreError, StoreResult};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Serialize, Deserialize)]
struct FamilyItem {
    family_id: String,
    client_id: String,
    user_id: String,
    scopes: Vec<String>,
    generation: u32,
    current_hash: String,
    /// The spent tokens' hashes by generation (decimal): always there, empty at first, so a
    /// rotation can set one of its entries.
    #[serde(default)]
    spent: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    session_id: Option<String>,
    /// The user's credentials version the grant was issued under.
    cred_version: u64,
    auth_time: i64,
    amr: Vec<String>,
    created_at: i64,
    expires_at: i64,
    /// The mark of the last rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rotated_by: Option<String>,
}

pub struct DynamoOAuthRefreshTokens {
    t: Table,
}

impl DynamoOAuthRefreshTokens {
    pub fn new(t: Table) -> Self {
        Self { t }
    }

    pub(crate) fn table_name(&self) -> &str {
        &self.t.name
    }

    /// The family's item and its table (written by the credentials register's transaction).
    pub(crate) fn item(&self, f: &RefreshFamily) -> StoreResult<(&str, Item)> {
        // The spent hashes are those of the generations just before the current one.
        let kept = &f.spent_hashes[f.spent_hashes.len().saturating_sub(SPENT_REMEMBERED)..];
        let first = i64::from(f.generation) - i64::try_from(kept.len()).unwrap_or(0);
        let spent = kept.iter().zip(first..).map(|(h, g)| (g.to_string(), h.clone())).collect();
        let item = self.t.encode(&FamilyItem {
            family_id: f.family_id.clone(),
            client_id: f.client_id.as_str().to_owned(),
            user_id: f.user_id.as_str().to_owned(),
            scopes: f.scopes.clone(),
            generation: f.generation,
            current_hash: f.current_hash.clone(),
            spent,
            session_id: f.session_id.clone(),
            cred_version: f.credentials_version,
            auth_time: ms(f.auth_time),
            amr: f.amr.clone(),
            created_at: ms(f.created_at),
            expires_at: secs(f.expires_at),
            rotated_by: None,
        })?;
        Ok((&self.t.name, item))
    }

    fn to_domain(&self, item: Item) -> StoreResult<RefreshFamily> {
        let i: FamilyItem = self.t.decode(item)?;
        let table = &self.t.name;
        let mut spent = Vec::with_capacity(i.spent.len());
        for (g, h) in i.spent {
            let g: i64 = g.parse().map_err(|_| StoreError::corrupt(table, format!("spent generation {g:?}")))?;
            spent.push((g, h));
        }
        spent.sort_by_key(|(g, _)| *g);
        Ok(RefreshFamily {
            family_id: i.family_id,
            client_id: ClientId::from_stored(i.client_id),
            user_id: UserId::from_stored(i.user_id),
            scopes: i.scopes,
            generation: i.generation,
            current_hash: i.current_hash,
            spent_hashes: spent.into_iter().map(|(_, h)| h).collect(),
            session_id: i.session_id,
            credentials_version: i.cred_version,
            auth_time: from_ms(table, i.auth_time)?,
            amr: i.amr,
            created_at: from_ms(table, i.created_at)?,
            expires_at: from_secs(table, i.expires_at)?,
        })
    }
}

#[async_trait]
impl OAuthRefreshTokenStore for DynamoOAuthRefreshTokens {
    async fn find(&self, family_id: &str) -> StoreResult<Option<RefreshFamily>> {
        self.t.find_live(key1("family_id", family_id), |i| self.to_domain(i), |f| Some(f.expires_at)).await
    }

    async fn rotate(&self, presented: &RefreshToken, next_hash: &str, now: Timestamp) -> StoreResult<Rotation> {
        let key = key1("family_id", &presented.family_id);
        let hash = presented.hash();
        let g = presented.generation;
        let mark = OwnMark::new();
        let mut update =
            "SET #gen = #gen + :one, current_hash = :next, spent.#spent = :h, rotated_by = :mark".to_owned();
        let mut cond = Cond::new(format!("attribute_exists(family_id) AND #gen = :g AND current_hash = :h AND {LIVE}"))
            .now_s(now)
            .name("#gen", "generation")
            .name("#spent", &g.to_string())
            .value(":g", n(g))
            .value(":h", s(&hash))
            .value(":one", n(1))
            .value(":next", s(next_hash))
            .value(":mark", mark.value());
        // The one now too old to remember (the map holds at most SPENT_REMEMBERED).
        if let Some(gone) = g.checked_sub(u32::try_from(SPENT_REMEMBERED).unwrap_or(u32::MAX)) {
            update.push_str(" REMOVE spent.#gone");
            cond = cond.name("#gone", &gone.to_string());
        }
        if let Some(item) = self.t.update_if_returning(key.clone(), update, cond).await? {
            return Ok(Rotation::Rotated(Box::new(self.to_domain(item)?)));
        }
        // Refused: read once (consistently) what refused it.
        let Some(item) = self.t.get(key).await? else { return Ok(Rotation::Unknown) };
        let own = mark.on(&item, "rotated_by");
        let family = self.to_domain(item)?;
        if own {
            // This rotation, retried by the SDK after it landed.
            return Ok(Rotation::Rotated(Box::new(family)));
        }
        if family.expires_at <= now {
            return Ok(Rotation::Unknown);
        }
        let reused = family.current_hash == hash || family.spent_hashes.contains(&hash);
        Ok(if reused { Rotation::Reused } else { Rotation::Unknown })
    }

    async fn delete(&self, family_id: &str) -> StoreResult<()> {
        self.t.delete(key1("family_id", family_id)).await
    }
}
