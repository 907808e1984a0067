//! A token store that counts the calls made to it, to prove how many reads and writes a path costs.

use async_trait::async_trait;
use gatehouse::Timestamp;
use gatehouse::error::StoreResult;
use gatehouse::page::{Cursor, Page};
use gatehouse::tokens::{PersonalAccessToken, TokenId, TokenStore, Tokenable};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct CountingTokens {
    inner: Arc<dyn TokenStore>,
    pub finds: AtomicUsize,
    pub last_used_writes: AtomicUsize,
    pub other_writes: AtomicUsize,
}

impl CountingTokens {
    pub fn wrap(inner: Arc<dyn TokenStore>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            finds: AtomicUsize::new(0),
            last_used_writes: AtomicUsize::new(0),
            other_writes: AtomicUsize::new(0),
        })
    }
    pub fn finds(&self) -> usize {
        self.finds.load(Ordering::SeqCst)
    }
    pub fn last_used_writes(&self) -> usize {
        self.last_used_writes.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl TokenStore for CountingTokens {
    async fn create(&self, token: &PersonalAccessToken) -> StoreResult<()> {
        self.other_writes.fetch_add(1, Ordering::SeqCst);
        self.inner.create(token).await
    }
    async fn find(&self, id: &TokenId) -> StoreResult<Option<PersonalAccessToken>> {
        self.finds.fetch_add(1, Ordering::SeqCst);
        self.inner.find(id).await
    }
    async fn touch_last_used(&self, id: &TokenId, now: Timestamp, stale_before: Timestamp) -> StoreResult<bool> {
        self.last_used_writes.fetch_add(1, Ordering::SeqCst);
        self.inner.touch_last_used(id, now, stale_before).await
    }
    async fn extend(&self, id: &TokenId, expires_at: Timestamp) -> StoreResult<bool> {
        self.other_writes.fetch_add(1, Ordering::SeqCst);
        self.inner.extend(id, expires_at).await
    }
    async fn delete_owned(&self, id: &TokenId, owner: &Tokenable) -> StoreResult<bool> {
        self.other_writes.fetch_add(1, Ordering::SeqCst);
        self.inner.delete_owned(id, owner).await
    }
    async fn list_for(
        &self,
        owner: &Tokenable,
        limit: usize,
        after: Option<&Cursor>,
    ) -> StoreResult<Page<PersonalAccessToken>> {
        self.inner.list_for(owner, limit, after).await
    }
    async fn delete_all_for(&self, owner: &Tokenable) -> StoreResult<usize> {
        self.other_writes.fetch_add(1, Ordering::SeqCst);
        self.inner.delete_all_for(owner).await
    }
}
