//! The in-memory `oauth_refresh_tokens` table. A family enters it only through the register
//! ([`super::MemoryCredentials`]).

use super::table::{SharedClock, Table};
use crate::tables::oauth_refresh_tokens::{
    OAuthRefreshTokenStore, RefreshFamily, RefreshToken, Rotation, SPENT_REMEMBERED,
};
use crate::values::clock::Timestamp;
use crate::values::error::StoreResult;
use async_trait::async_trait;

pub struct MemoryOAuthRefreshTokens {
    clock: SharedClock,
    pub(super) rows: Table<String, RefreshFamily>,
}

impl MemoryOAuthRefreshTokens {
    pub fn new(clock: SharedClock) -> Self {
        Self { clock, rows: Table::default() }
    }
}

#[async_trait]
impl OAuthRefreshTokenStore for MemoryOAuthRefreshTokens {
    async fn find(&self, family_id: &str) -> StoreResult<Option<RefreshFamily>> {
        let now = self.clock.now();
        Ok(self.rows.lock().get(family_id).filter(|f| f.expires_at > now).cloned())
    }

    async fn rotate(&self, presented: &RefreshToken, next_hash: &str, now: Timestamp) -> StoreResult<Rotation> {
        let hash = presented.hash();
        let mut rows = self.rows.lock();
        let Some(f) = rows.get_mut(&presented.family_id).filter(|f| f.expires_at > now) else {
            return Ok(Rotation::Unknown);
        };
        if f.generation == presented.generation && f.current_hash == hash {
            f.spent_hashes.push(std::mem::replace(&mut f.current_hash, next_hash.to_owned()));
            let over = f.spent_hashes.len().saturating_sub(SPENT_REMEMBERED);
            f.spent_hashes.drain(..over);
            f.generation += 1;
            return Ok(Rotation::Rotated(Box::new(f.clone())));
        }
        // As DynamoDB answers a refused rotation, from the family as it now is.
        let reused = f.current_hash == hash || f.spent_hashes.contains(&hash);
        Ok(if reused { Rotation::Reused } else { Rotation::Unknown })
    }

    async fn delete(&self, family_id: &str) -> StoreResult<()> {
        self.rows.lock().remove(family_id);
        Ok(())
    }
}
