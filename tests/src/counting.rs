//! Store wrappers for tests: ones that count the calls made to them (to prove how many reads and
//! writes a path costs), and ones whose owner-index listings lag (to prove revocation does not
//! depend on an index being current).

use async_trait::async_trait;
use gatehouse::Email;
use gatehouse::Timestamp;
use gatehouse::tables::jobs::{JobQueue, QueueMessage};
use gatehouse::tables::personal_access_tokens::{PersonalAccessToken, PersonalAccessTokenStore, TokenId, Tokenable};
use gatehouse::tables::sessions::{SessionKey, SessionRecord, SessionStore};
use gatehouse::tables::users::{
    CredentialChange, DisplayName, EmailMove, EmailSwap, OwnerState, TwoFactorWrite, User, UserId, UserStore,
};
use gatehouse::values::clock::{Clock, Span};
use gatehouse::values::error::StoreResult;
use gatehouse::values::pagination::{Cursor, Page};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A count of calls, shared across tasks.
#[derive(Default)]
pub struct Counter(AtomicUsize);

impl Counter {
    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// A token store that counts reads, `last_used_at` writes and other writes.
pub struct CountingTokens {
    inner: Arc<dyn PersonalAccessTokenStore>,
    pub finds: Counter,
    pub last_used_writes: Counter,
    pub other_writes: Counter,
}

impl CountingTokens {
    pub fn wrap(inner: Arc<dyn PersonalAccessTokenStore>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            finds: Counter::default(),
            last_used_writes: Counter::default(),
            other_writes: Counter::default(),
        })
    }
    pub fn finds(&self) -> usize {
        self.finds.get()
    }
    pub fn last_used_writes(&self) -> usize {
        self.last_used_writes.get()
    }
}

#[async_trait]
impl PersonalAccessTokenStore for CountingTokens {
    async fn find(&self, id: &TokenId) -> StoreResult<Option<PersonalAccessToken>> {
        self.finds.bump();
        self.inner.find(id).await
    }
    /// One read: the token and its owner come in one call.
    async fn find_with_owner(
        &self,
        id: &TokenId,
        owner: &UserId,
    ) -> StoreResult<(Option<PersonalAccessToken>, Option<OwnerState>)> {
        self.finds.bump();
        self.inner.find_with_owner(id, owner).await
    }
    async fn touch_last_used(&self, id: &TokenId, now: Timestamp, stale_before: Timestamp) -> StoreResult<bool> {
        self.last_used_writes.bump();
        self.inner.touch_last_used(id, now, stale_before).await
    }
    async fn mark_verified(&self, id: &TokenId) -> StoreResult<bool> {
        self.other_writes.bump();
        self.inner.mark_verified(id).await
    }
    async fn extend(&self, id: &TokenId, expires_at: Timestamp) -> StoreResult<bool> {
        self.other_writes.bump();
        self.inner.extend(id, expires_at).await
    }
    async fn delete_owned(&self, id: &TokenId, owner: &Tokenable) -> StoreResult<bool> {
        self.other_writes.bump();
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
        self.other_writes.bump();
        self.inner.delete_all_for(owner).await
    }
}

/// A session store that counts reads and writes.
pub struct CountingSessions {
    inner: Arc<dyn SessionStore>,
    pub finds: Counter,
    pub writes: Counter,
}

impl CountingSessions {
    pub fn wrap(inner: Arc<dyn SessionStore>) -> Arc<Self> {
        Arc::new(Self { inner, finds: Counter::default(), writes: Counter::default() })
    }
    pub fn finds(&self) -> usize {
        self.finds.get()
    }
    pub fn writes(&self) -> usize {
        self.writes.get()
    }
}

#[async_trait]
impl SessionStore for CountingSessions {
    async fn find(&self, key: &SessionKey) -> StoreResult<Option<SessionRecord>> {
        self.finds.bump();
        self.inner.find(key).await
    }
    /// One read: the session and its owner come in one call.
    async fn find_with_owner(
        &self,
        key: &SessionKey,
        owner: &UserId,
    ) -> StoreResult<(Option<SessionRecord>, Option<OwnerState>)> {
        self.finds.bump();
        self.inner.find_with_owner(key, owner).await
    }
    async fn touch(&self, key: &SessionKey, now: Timestamp, exp: Timestamp, stale: Timestamp) -> StoreResult<bool> {
        self.writes.bump();
        self.inner.touch(key, now, exp, stale).await
    }
    async fn confirm_password(&self, key: &SessionKey, now: Timestamp) -> StoreResult<bool> {
        self.writes.bump();
        self.inner.confirm_password(key, now).await
    }
    async fn mark_verified(&self, key: &SessionKey) -> StoreResult<bool> {
        self.writes.bump();
        self.inner.mark_verified(key).await
    }
    async fn delete(&self, key: &SessionKey) -> StoreResult<bool> {
        self.writes.bump();
        self.inner.delete(key).await
    }
    async fn list_for_user(&self, user: &UserId) -> StoreResult<Vec<SessionRecord>> {
        self.inner.list_for_user(user).await
    }
    async fn delete_for_user(&self, user: &UserId, keep: Option<&SessionKey>) -> StoreResult<usize> {
        self.writes.bump();
        self.inner.delete_for_user(user, keep).await
    }
}

/// Sessions whose `by_user` index lags: listings (and so `delete_for_user`) leave out every
/// session created within `lag` of now, as an eventually consistent index does with fresh writes.
pub struct LaggingSessions {
    pub inner: Arc<dyn SessionStore>,
    pub clock: Arc<dyn Clock>,
    pub lag: Span,
}

#[async_trait]
impl SessionStore for LaggingSessions {
    async fn find(&self, key: &SessionKey) -> StoreResult<Option<SessionRecord>> {
        self.inner.find(key).await
    }
    async fn find_with_owner(
        &self,
        key: &SessionKey,
        owner: &UserId,
    ) -> StoreResult<(Option<SessionRecord>, Option<OwnerState>)> {
        self.inner.find_with_owner(key, owner).await
    }
    async fn touch(&self, key: &SessionKey, now: Timestamp, exp: Timestamp, stale: Timestamp) -> StoreResult<bool> {
        self.inner.touch(key, now, exp, stale).await
    }
    async fn confirm_password(&self, key: &SessionKey, now: Timestamp) -> StoreResult<bool> {
        self.inner.confirm_password(key, now).await
    }
    async fn mark_verified(&self, key: &SessionKey) -> StoreResult<bool> {
        self.inner.mark_verified(key).await
    }
    async fn delete(&self, key: &SessionKey) -> StoreResult<bool> {
        self.inner.delete(key).await
    }
    async fn list_for_user(&self, user: &UserId) -> StoreResult<Vec<SessionRecord>> {
        let cutoff = self.clock.now() - self.lag;
        Ok(self.inner.list_for_user(user).await?.into_iter().filter(|s| s.created_at <= cutoff).collect())
    }
    async fn delete_for_user(&self, user: &UserId, keep: Option<&SessionKey>) -> StoreResult<usize> {
        let mut n = 0;
        for s in self.list_for_user(user).await? {
            if Some(&s.key) != keep && self.inner.delete(&s.key).await? {
                n += 1;
            }
        }
        Ok(n)
    }
}

/// Tokens whose `by_tokenable` index lags like [`LaggingSessions`].
pub struct LaggingTokens {
    pub inner: Arc<dyn PersonalAccessTokenStore>,
    pub clock: Arc<dyn Clock>,
    pub lag: Span,
}

#[async_trait]
impl PersonalAccessTokenStore for LaggingTokens {
    async fn find(&self, id: &TokenId) -> StoreResult<Option<PersonalAccessToken>> {
        self.inner.find(id).await
    }
    async fn find_with_owner(
        &self,
        id: &TokenId,
        owner: &UserId,
    ) -> StoreResult<(Option<PersonalAccessToken>, Option<OwnerState>)> {
        self.inner.find_with_owner(id, owner).await
    }
    async fn touch_last_used(&self, id: &TokenId, now: Timestamp, stale_before: Timestamp) -> StoreResult<bool> {
        self.inner.touch_last_used(id, now, stale_before).await
    }
    async fn mark_verified(&self, id: &TokenId) -> StoreResult<bool> {
        self.inner.mark_verified(id).await
    }
    async fn extend(&self, id: &TokenId, expires_at: Timestamp) -> StoreResult<bool> {
        self.inner.extend(id, expires_at).await
    }
    async fn delete_owned(&self, id: &TokenId, owner: &Tokenable) -> StoreResult<bool> {
        self.inner.delete_owned(id, owner).await
    }
    async fn list_for(
        &self,
        owner: &Tokenable,
        limit: usize,
        after: Option<&Cursor>,
    ) -> StoreResult<Page<PersonalAccessToken>> {
        let cutoff = self.clock.now() - self.lag;
        let mut page = self.inner.list_for(owner, limit, after).await?;
        page.items.retain(|t| t.created_at <= cutoff);
        Ok(page)
    }
    async fn delete_all_for(&self, owner: &Tokenable) -> StoreResult<usize> {
        let mut n = 0;
        let mut after = None;
        loop {
            let page = self.list_for(owner, 100, after.as_ref()).await?;
            for t in &page.items {
                if self.inner.delete_owned(&t.id, owner).await? {
                    n += 1;
                }
            }
            match page.next {
                Some(c) => after = Some(c),
                None => return Ok(n),
            }
        }
    }
}

/// A user store that counts every call (reads and writes alike).
pub struct CountingUsers {
    inner: Arc<dyn UserStore>,
    pub calls: Counter,
}

impl CountingUsers {
    pub fn wrap(inner: Arc<dyn UserStore>) -> Arc<Self> {
        Arc::new(Self { inner, calls: Counter::default() })
    }
    pub fn calls(&self) -> usize {
        self.calls.get()
    }
}

#[async_trait]
impl UserStore for CountingUsers {
    async fn create(&self, user: &User) -> StoreResult<()> {
        self.calls.bump();
        self.inner.create(user).await
    }
    async fn find(&self, id: &UserId) -> StoreResult<Option<User>> {
        self.calls.bump();
        self.inner.find(id).await
    }
    async fn find_by_email(&self, email: &Email) -> StoreResult<Option<User>> {
        self.calls.bump();
        self.inner.find_by_email(email).await
    }
    async fn change_credentials(
        &self,
        id: &UserId,
        expected: u64,
        change: CredentialChange<'_>,
        now: Timestamp,
    ) -> StoreResult<Option<u64>> {
        self.calls.bump();
        self.inner.change_credentials(id, expected, change, now).await
    }
    async fn mark_email_verified(&self, id: &UserId, email: &Email, now: Timestamp) -> StoreResult<bool> {
        self.calls.bump();
        self.inner.mark_email_verified(id, email, now).await
    }
    async fn change_email(&self, id: &UserId, m: EmailMove<'_>, now: Timestamp) -> StoreResult<EmailSwap> {
        self.calls.bump();
        self.inner.change_email(id, m, now).await
    }
    async fn write_two_factor_noting(
        &self,
        id: &UserId,
        w: TwoFactorWrite<'_>,
        notice: Option<&gatehouse::tables::users::NoticeMark>,
        now: Timestamp,
    ) -> StoreResult<bool> {
        self.calls.bump();
        self.inner.write_two_factor_noting(id, w, notice, now).await
    }
    async fn update_name(&self, id: &UserId, name: &DisplayName, now: Timestamp) -> StoreResult<Option<User>> {
        self.calls.bump();
        self.inner.update_name(id, name, now).await
    }
    async fn delete(&self, id: &UserId) -> StoreResult<bool> {
        self.calls.bump();
        self.inner.delete(id).await
    }
    async fn add_passkey_noting(
        &self,
        id: &UserId,
        passkey: &gatehouse::tables::users::Passkey,
        max: usize,
        version: u64,
        notice: Option<&gatehouse::tables::users::NoticeMark>,
    ) -> StoreResult<gatehouse::tables::users::PasskeyAdd> {
        self.calls.bump();
        self.inner.add_passkey_noting(id, passkey, max, version, notice).await
    }
    async fn remove_passkey_noting(
        &self,
        id: &UserId,
        passkey: &str,
        notice: Option<&gatehouse::tables::users::NoticeMark>,
        now: Timestamp,
    ) -> StoreResult<bool> {
        self.calls.bump();
        self.inner.remove_passkey_noting(id, passkey, notice, now).await
    }
    async fn clear_notice(&self, id: &UserId, notice: &gatehouse::tables::users::NoticeMark) -> StoreResult<()> {
        self.calls.bump();
        self.inner.clear_notice(id, notice).await
    }
    async fn use_passkey(
        &self,
        id: &UserId,
        passkey: &str,
        change: gatehouse::tables::users::PasskeyUse<'_>,
        now: Timestamp,
    ) -> StoreResult<bool> {
        self.calls.bump();
        self.inner.use_passkey(id, passkey, change, now).await
    }
    async fn clear_passkeys(&self, id: &UserId, now: Timestamp) -> StoreResult<()> {
        self.calls.bump();
        self.inner.clear_passkeys(id, now).await
    }
}

/// A queue that counts receives.
pub struct CountingQueue {
    inner: Arc<dyn JobQueue>,
    pub receives: Counter,
}

impl CountingQueue {
    pub fn wrap(inner: Arc<dyn JobQueue>) -> Arc<Self> {
        Arc::new(Self { inner, receives: Counter::default() })
    }
    pub fn receives(&self) -> usize {
        self.receives.get()
    }
}

#[async_trait]
impl JobQueue for CountingQueue {
    async fn send(&self, body: &str, delay: std::time::Duration) -> StoreResult<String> {
        self.inner.send(body, delay).await
    }
    async fn receive(
        &self,
        max: u32,
        wait: std::time::Duration,
        visibility: Option<std::time::Duration>,
    ) -> StoreResult<Vec<QueueMessage>> {
        self.receives.bump();
        self.inner.receive(max, wait, visibility).await
    }
    async fn change_visibility(&self, receipt_handle: &str, after: std::time::Duration) -> StoreResult<()> {
        self.inner.change_visibility(receipt_handle, after).await
    }
    async fn delete(&self, receipt_handle: &str) -> StoreResult<()> {
        self.inner.delete(receipt_handle).await
    }
    async fn approximate_len(&self) -> StoreResult<u64> {
        self.inner.approximate_len().await
    }
}

/// Sessions whose deletes fail (`Unavailable`) while `failing` is set: a revocation cut short
/// part way, as a store outage or a stalled call past its timeout does.
pub struct FailingSessionDeletes {
    pub inner: Arc<dyn SessionStore>,
    pub failing: std::sync::atomic::AtomicBool,
}

impl FailingSessionDeletes {
    pub fn wrap(inner: Arc<dyn SessionStore>) -> Arc<Self> {
        Arc::new(Self { inner, failing: std::sync::atomic::AtomicBool::new(false) })
    }
    pub fn fail(&self, on: bool) {
        self.failing.store(on, Ordering::SeqCst);
    }
    fn check(&self) -> StoreResult<()> {
        match self.failing.load(Ordering::SeqCst) {
            true => Err(gatehouse::StoreError::Unavailable("sessions: injected failure".into())),
            false => Ok(()),
        }
    }
}

#[async_trait]
impl SessionStore for FailingSessionDeletes {
    async fn find(&self, key: &SessionKey) -> StoreResult<Option<SessionRecord>> {
        self.inner.find(key).await
    }
    async fn find_with_owner(
        &self,
        key: &SessionKey,
        owner: &UserId,
    ) -> StoreResult<(Option<SessionRecord>, Option<OwnerState>)> {
        self.inner.find_with_owner(key, owner).await
    }
    async fn touch(&self, key: &SessionKey, now: Timestamp, exp: Timestamp, stale: Timestamp) -> StoreResult<bool> {
        self.inner.touch(key, now, exp, stale).await
    }
    async fn confirm_password(&self, key: &SessionKey, now: Timestamp) -> StoreResult<bool> {
        self.inner.confirm_password(key, now).await
    }
    async fn mark_verified(&self, key: &SessionKey) -> StoreResult<bool> {
        self.inner.mark_verified(key).await
    }
    async fn delete(&self, key: &SessionKey) -> StoreResult<bool> {
        self.check()?;
        self.inner.delete(key).await
    }
    async fn list_for_user(&self, user: &UserId) -> StoreResult<Vec<SessionRecord>> {
        self.inner.list_for_user(user).await
    }
    async fn delete_for_user(&self, user: &UserId, keep: Option<&SessionKey>) -> StoreResult<usize> {
        self.check()?;
        self.inner.delete_for_user(user, keep).await
    }
}
