//! Store wrappers for tests: ones that count the calls made to them (to prove how many reads and
//! writes a path costs), ones whose owner-index listings lag (to prove revocation does not
//! depend on an index being current), and sessions whose deletes fail on demand.
//!
//! A wrapper passes every call on to the store it wraps. [`pass_through!`] writes that once per
//! store trait, from the list of the trait's methods; a wrapper says only what it does besides:
//! [`Wrapper::before`] each call, and, for the lagging ones, the owner index ([`SessionIndex`],
//! [`TokenIndex`]).

use async_trait::async_trait;
use gatehouse::Email;
use gatehouse::Timestamp;
use gatehouse::tables::jobs::{JobQueue, QueueMessage};
use gatehouse::tables::personal_access_tokens::{PersonalAccessToken, PersonalAccessTokenStore, TokenId, Tokenable};
use gatehouse::tables::sessions::{SessionKey, SessionRecord, SessionStore};
use gatehouse::tables::users::{
    CredentialChange, DisplayName, EmailMove, EmailSwap, NoticeMark, OwnerState, Passkey, PasskeyAdd, PasskeyUse,
    TwoFactorWrite, User, UserId, UserStore,
};
use gatehouse::values::clock::{Clock, Span};
use gatehouse::values::error::StoreResult;
use gatehouse::values::pagination::{Cursor, Page};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A store wrapped in another, which passes each call on to [`Wrapper::inner`].
pub trait Wrapper: Send + Sync {
    type Store: ?Sized;
    fn inner(&self) -> &Self::Store;
    /// Runs ahead of each call, told its method's name (`"find"`, `"delete_for_user"`, …); an
    /// error is the call's answer, and the wrapped store never sees the call.
    fn before(&self, _call: &'static str) -> StoreResult<()> {
        Ok(())
    }
}

/// The names of a store trait's methods, as [`pass_through!`] lists them.
pub trait Methods {
    const NAMES: &'static [&'static str];
}

/// Writes `impl $store for` each wrapper named, passing every method listed on to the wrapped
/// store once [`Wrapper::before`] has let it through; a method marked `=> $index` goes to that
/// trait instead, which a wrapper may answer itself. Also names the methods ([`Methods`]).
macro_rules! pass_through {
    (impl $store:ident for $($wrapper:ty),+ { $(fn $method:ident $args:tt -> $ret:ty $(=> $index:path)?;)* }) => {
        impl Methods for dyn $store {
            const NAMES: &'static [&'static str] = &[$(stringify!($method)),*];
        }
        pass_through!(@each $store [$($wrapper),+] { $(fn $method $args -> $ret $(=> $index)?;)* });
    };
    (@each $store:ident [] $calls:tt) => {};
    (@each $store:ident [$wrapper:ty $(, $rest:ty)*] $calls:tt) => {
        pass_through!(@impl $store for $wrapper $calls);
        pass_through!(@each $store [$($rest),*] $calls);
    };
    (@impl $store:ident for $wrapper:ty {
        $(fn $method:ident($($arg:ident: $ty:ty),*) -> $ret:ty $(=> $index:path)?;)*
    }) => {
        #[async_trait]
        impl $store for $wrapper {
            $(
                async fn $method(&self, $($arg: $ty),*) -> StoreResult<$ret> {
                    self.before(stringify!($method))?;
                    pass_through!(@call self, $method($($arg),*) $(=> $index)?)
                }
            )*
        }
    };
    (@call $self:ident, $method:ident($($arg:ident),*)) => { $self.inner().$method($($arg),*).await };
    (@call $self:ident, $method:ident($($arg:ident),*) => $index:path) => {
        <Self as $index>::$method($self, $($arg),*).await
    };
}

/// A store that counts the calls made to it, by method name.
pub struct Counting<S: ?Sized> {
    inner: Arc<S>,
    calls: Mutex<BTreeMap<&'static str, usize>>,
}

/// Counts token reads (`finds`) and `last_used_at` writes.
pub type CountingTokens = Counting<dyn PersonalAccessTokenStore>;
/// Counts session reads (`finds`) and writes.
pub type CountingSessions = Counting<dyn SessionStore>;
/// Counts every call to the users (reads and writes alike).
pub type CountingUsers = Counting<dyn UserStore>;
/// Counts receives from the queue.
pub type CountingQueue = Counting<dyn JobQueue>;

impl<S: ?Sized + Methods> Counting<S> {
    pub fn wrap(inner: Arc<S>) -> Arc<Self> {
        Arc::new(Self { inner, calls: Mutex::default() })
    }

    /// How many calls of these methods were made (each name must be one of the store's).
    pub fn count(&self, methods: &[&str]) -> usize {
        let calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        let count = |m: &&str| {
            assert!(S::NAMES.contains(m), "{m} is no method of the store");
            calls.get(m).copied().unwrap_or_default()
        };
        methods.iter().map(count).sum()
    }

    /// How many calls were made, of any method.
    pub fn calls(&self) -> usize {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).values().sum()
    }
}

impl<S: ?Sized + Send + Sync> Wrapper for Counting<S> {
    type Store = S;
    fn inner(&self) -> &S {
        &self.inner
    }
    fn before(&self, call: &'static str) -> StoreResult<()> {
        *self.calls.lock().unwrap_or_else(|e| e.into_inner()).entry(call).or_default() += 1;
        Ok(())
    }
}

impl CountingTokens {
    /// Reads: the token alone, or with its owner (one call).
    pub fn finds(&self) -> usize {
        self.count(&["find", "find_with_owner"])
    }
    pub fn last_used_writes(&self) -> usize {
        self.count(&["touch_last_used"])
    }
}

impl CountingSessions {
    /// Reads: the session alone, or with its owner (one call).
    pub fn finds(&self) -> usize {
        self.count(&["find", "find_with_owner"])
    }
    pub fn writes(&self) -> usize {
        self.count(&["touch", "confirm_password", "mark_verified", "delete", "delete_for_user"])
    }
}

impl CountingQueue {
    pub fn receives(&self) -> usize {
        self.count(&["receive"])
    }
}

/// A store whose owner index lags: its listings (and so deleting all of an owner's) leave out
/// everything created within `lag` of now, as an eventually consistent index does with fresh
/// writes.
pub struct Lagging<S: ?Sized> {
    pub inner: Arc<S>,
    pub clock: Arc<dyn Clock>,
    pub lag: Span,
}

/// Sessions whose `by_user` index lags.
pub type LaggingSessions = Lagging<dyn SessionStore>;
/// Tokens whose `by_tokenable` index lags.
pub type LaggingTokens = Lagging<dyn PersonalAccessTokenStore>;

impl<S: ?Sized + Send + Sync> Wrapper for Lagging<S> {
    type Store = S;
    fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S: ?Sized> Lagging<S> {
    /// What was created after this is not listed yet.
    fn cutoff(&self) -> Timestamp {
        self.clock.now() - self.lag
    }
}

/// Sessions whose deletes fail (`Unavailable`) while `failing` is set: a revocation cut short
/// part way, as a store outage or a stalled call past its timeout does.
pub struct FailingSessionDeletes {
    pub inner: Arc<dyn SessionStore>,
    pub failing: AtomicBool,
}

impl FailingSessionDeletes {
    pub fn wrap(inner: Arc<dyn SessionStore>) -> Arc<Self> {
        Arc::new(Self { inner, failing: AtomicBool::new(false) })
    }
    pub fn fail(&self, on: bool) {
        self.failing.store(on, Ordering::SeqCst);
    }
}

impl Wrapper for FailingSessionDeletes {
    type Store = dyn SessionStore;
    fn inner(&self) -> &Self::Store {
        &*self.inner
    }
    fn before(&self, call: &'static str) -> StoreResult<()> {
        if matches!(call, "delete" | "delete_for_user") && self.failing.load(Ordering::SeqCst) {
            return Err(gatehouse::StoreError::Unavailable("sessions: injected failure".into()));
        }
        Ok(())
    }
}

/// A session store's owner index (listing a user's sessions, deleting them), which a wrapper may
/// answer itself; by default the wrapped store does.
#[async_trait]
pub trait SessionIndex: Wrapper<Store = dyn SessionStore> {
    async fn list_for_user(&self, user: &UserId) -> StoreResult<Vec<SessionRecord>> {
        self.inner().list_for_user(user).await
    }
    async fn delete_for_user(&self, user: &UserId, keep: Option<&SessionKey>) -> StoreResult<usize> {
        self.inner().delete_for_user(user, keep).await
    }
}

impl SessionIndex for CountingSessions {}
impl SessionIndex for FailingSessionDeletes {}

#[async_trait]
impl SessionIndex for LaggingSessions {
    async fn list_for_user(&self, user: &UserId) -> StoreResult<Vec<SessionRecord>> {
        let cutoff = self.cutoff();
        Ok(self.inner.list_for_user(user).await?.into_iter().filter(|s| s.created_at <= cutoff).collect())
    }
    /// Deletes what the lagging listing shows, one session at a time.
    async fn delete_for_user(&self, user: &UserId, keep: Option<&SessionKey>) -> StoreResult<usize> {
        let mut n = 0;
        for s in SessionIndex::list_for_user(self, user).await? {
            if Some(&s.key) != keep && self.inner.delete(&s.key).await? {
                n += 1;
            }
        }
        Ok(n)
    }
}

pass_through! {
    impl SessionStore for CountingSessions, LaggingSessions, FailingSessionDeletes {
        fn find(key: &SessionKey) -> Option<SessionRecord>;
        fn find_with_owner(key: &SessionKey, owner: &UserId) -> (Option<SessionRecord>, Option<OwnerState>);
        fn touch(key: &SessionKey, now: Timestamp, exp: Timestamp, stale: Timestamp) -> bool;
        fn confirm_password(key: &SessionKey, now: Timestamp) -> bool;
        fn mark_verified(key: &SessionKey) -> bool;
        fn delete(key: &SessionKey) -> bool;
        fn list_for_user(user: &UserId) -> Vec<SessionRecord> => SessionIndex;
        fn delete_for_user(user: &UserId, keep: Option<&SessionKey>) -> usize => SessionIndex;
    }
}

/// A page of an owner's tokens.
pub type TokenPage = Page<PersonalAccessToken>;

/// A token store's owner index (a page of an owner's tokens, deleting them all), which a wrapper
/// may answer itself; by default the wrapped store does.
#[async_trait]
pub trait TokenIndex: Wrapper<Store = dyn PersonalAccessTokenStore> {
    async fn list_for(&self, owner: &Tokenable, limit: usize, after: Option<&Cursor>) -> StoreResult<TokenPage> {
        self.inner().list_for(owner, limit, after).await
    }
    async fn delete_all_for(&self, owner: &Tokenable) -> StoreResult<usize> {
        self.inner().delete_all_for(owner).await
    }
}

impl TokenIndex for CountingTokens {}

#[async_trait]
impl TokenIndex for LaggingTokens {
    async fn list_for(&self, owner: &Tokenable, limit: usize, after: Option<&Cursor>) -> StoreResult<TokenPage> {
        let cutoff = self.cutoff();
        let mut page = self.inner.list_for(owner, limit, after).await?;
        page.items.retain(|t| t.created_at <= cutoff);
        Ok(page)
    }
    /// Deletes what the lagging listing shows, page by page.
    async fn delete_all_for(&self, owner: &Tokenable) -> StoreResult<usize> {
        let mut n = 0;
        let mut after = None;
        loop {
            let page = TokenIndex::list_for(self, owner, 100, after.as_ref()).await?;
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

pass_through! {
    impl PersonalAccessTokenStore for CountingTokens, LaggingTokens {
        fn find(id: &TokenId) -> Option<PersonalAccessToken>;
        fn find_with_owner(id: &TokenId, owner: &UserId) -> (Option<PersonalAccessToken>, Option<OwnerState>);
        fn touch_last_used(id: &TokenId, now: Timestamp, stale_before: Timestamp) -> bool;
        fn mark_verified(id: &TokenId) -> bool;
        fn extend(id: &TokenId, expires_at: Timestamp) -> bool;
        fn delete_owned(id: &TokenId, owner: &Tokenable) -> bool;
        fn list_for(owner: &Tokenable, limit: usize, after: Option<&Cursor>) -> TokenPage => TokenIndex;
        fn delete_all_for(owner: &Tokenable) -> usize => TokenIndex;
    }
}

pass_through! {
    impl UserStore for CountingUsers {
        fn create(user: &User) -> ();
        fn find(id: &UserId) -> Option<User>;
        fn find_by_email(email: &Email) -> Option<User>;
        fn change_credentials(id: &UserId, expected: u64, change: CredentialChange<'_>, now: Timestamp) -> Option<u64>;
        fn mark_email_verified_noting(
            id: &UserId, email: &Email, marks: gatehouse::tables::users::Marks<'_>, now: Timestamp
        ) -> bool;
        fn change_email(id: &UserId, m: EmailMove<'_>, now: Timestamp) -> EmailSwap;
        fn write_two_factor_noting(
            id: &UserId, w: TwoFactorWrite<'_>, marks: gatehouse::tables::users::Marks<'_>, now: Timestamp
        ) -> bool;
        fn update_name_noting(
            id: &UserId, name: &DisplayName, marks: gatehouse::tables::users::Marks<'_>, now: Timestamp
        ) -> Option<User>;
        fn delete(id: &UserId) -> bool;
        fn add_passkey_noting(
            id: &UserId, passkey: &Passkey, max: usize, version: u64, marks: gatehouse::tables::users::Marks<'_>
        ) -> PasskeyAdd;
        fn remove_passkey_noting(
            id: &UserId, passkey: &str, marks: gatehouse::tables::users::Marks<'_>, now: Timestamp
        ) -> bool;
        fn clear_notice(id: &UserId, notice: &NoticeMark) -> ();
        fn clear_event(id: &UserId, event: &gatehouse::tables::users::EventMark) -> ();
        fn use_passkey(id: &UserId, passkey: &str, change: PasskeyUse<'_>, now: Timestamp) -> bool;
        fn clear_passkeys(id: &UserId, now: Timestamp) -> ();
    }
}

pass_through! {
    impl JobQueue for CountingQueue {
        fn send(body: &str, delay: Duration) -> String;
        fn receive(max: u32, wait: Duration, visibility: Option<Duration>) -> Vec<QueueMessage>;
        fn change_visibility(receipt_handle: &str, after: Duration) -> ();
        fn delete(receipt_handle: &str) -> ();
        fn approximate_len() -> u64;
    }
}
