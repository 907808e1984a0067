//! In-memory stores: the embedded default of the local run and the reference the contract tests
//! hold the DynamoDB stores to. Same semantics, same expiry rules, one mutex per table.

use crate::batches::{Batch, BatchStore, Counted};
use crate::cache::{CacheStore, check_key};
use crate::clock::{Clock, Timestamp, is_live};
use crate::credentials::{CredentialEntry, CredentialKind, CredentialRef, CredentialStore, NewCredential};
use crate::cross_app::{CrossAppSession, CrossAppStore, Handoff};
use crate::email::Email;
use crate::error::{StoreError, StoreResult};
use crate::failed_jobs::{FailedJob, FailedJobStore};
use crate::job_runs::{Claim, JobRunStore};
use crate::jobs::{JobQueue, QueueMessage, check_send};
use crate::locks::{LockOwner, LockStore};
use crate::page::{Cursor, Page};
use crate::resets::{ResetRecord, ResetStore};
use crate::sessions::{SessionKey, SessionRecord, SessionStore};
use crate::tokens::{PersonalAccessToken, TokenId, TokenStore, Tokenable};
use crate::users::{CredentialChange, User, UserId, UserStore};
use async_trait::async_trait;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

type SharedClock = Arc<dyn Clock>;

/// A map behind a mutex that shrugs off poisoning (a panicking test must not wedge the others).
struct Table<K, V>(Mutex<HashMap<K, V>>);

impl<K, V> Default for Table<K, V> {
    fn default() -> Self {
        Self(Mutex::new(HashMap::new()))
    }
}

impl<K, V> Table<K, V> {
    fn lock(&self) -> MutexGuard<'_, HashMap<K, V>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

// ---------------------------------------------------------------------------------------------
// users

#[derive(Default)]
pub struct MemoryUsers {
    by_id: Table<UserId, User>,
}

impl MemoryUsers {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl UserStore for MemoryUsers {
    async fn create(&self, user: &User) -> StoreResult<()> {
        let mut t = self.by_id.lock();
        let email = user.email.normalized();
        if t.contains_key(&user.id) || t.values().any(|u| u.email.normalized() == email) {
            return Err(StoreError::Conflict("the email is already registered".into()));
        }
        t.insert(user.id.clone(), user.clone());
        Ok(())
    }

    async fn find(&self, id: &UserId) -> StoreResult<Option<User>> {
        Ok(self.by_id.lock().get(id).cloned())
    }

    async fn find_by_email(&self, email: &Email) -> StoreResult<Option<User>> {
        let e = email.normalized();
        Ok(self.by_id.lock().values().find(|u| u.email.normalized() == e).cloned())
    }

    async fn change_credentials(
        &self,
        id: &UserId,
        expected: u64,
        change: CredentialChange<'_>,
        now: Timestamp,
    ) -> StoreResult<Option<u64>> {
        Ok(match self.by_id.lock().get_mut(id) {
            Some(u) if u.credentials_version == expected => {
                if let Some(h) = change.password {
                    u.password_hash = h.clone();
                }
                if let Some(r) = change.remember_token {
                    u.remember_token = Some(r.clone());
                }
                if change.revoke {
                    u.credentials_version += 1;
                }
                u.updated_at = now;
                Some(u.credentials_version)
            }
            _ => None,
        })
    }

    async fn mark_email_verified(&self, id: &UserId, now: Timestamp) -> StoreResult<bool> {
        Ok(match self.by_id.lock().get_mut(id) {
            Some(u) => {
                u.email_verified_at = Some(now);
                u.updated_at = now;
                true
            }
            None => false,
        })
    }

    async fn delete(&self, id: &UserId) -> StoreResult<bool> {
        Ok(self.by_id.lock().remove(id).is_some())
    }
}

// ---------------------------------------------------------------------------------------------
// sessions

pub struct MemorySessions {
    clock: SharedClock,
    rows: Table<SessionKey, SessionRecord>,
}

impl MemorySessions {
    pub fn new(clock: SharedClock) -> Self {
        Self { clock, rows: Table::default() }
    }
}

#[async_trait]
impl SessionStore for MemorySessions {
    async fn confirm_password(&self, key: &SessionKey, now: Timestamp) -> StoreResult<bool> {
        let live_now = self.clock.now();
        Ok(match self.rows.lock().get_mut(key) {
            Some(s) if s.expires_at > live_now => {
                s.password_confirmed_at = Some(now);
                true
            }
            _ => false,
        })
    }

    async fn find(&self, key: &SessionKey) -> StoreResult<Option<SessionRecord>> {
        let now = self.clock.now();
        Ok(self.rows.lock().get(key).filter(|s| s.expires_at > now).cloned())
    }

    async fn touch(
        &self,
        key: &SessionKey,
        now: Timestamp,
        expires_at: Timestamp,
        stale_before: Timestamp,
    ) -> StoreResult<bool> {
        let live_now = self.clock.now();
        Ok(match self.rows.lock().get_mut(key) {
            Some(s) if s.expires_at > live_now && s.last_activity <= stale_before => {
                s.last_activity = now;
                s.expires_at = expires_at;
                true
            }
            _ => false,
        })
    }

    async fn delete(&self, key: &SessionKey) -> StoreResult<bool> {
        Ok(self.rows.lock().remove(key).is_some())
    }

    async fn list_for_user(&self, user: &UserId) -> StoreResult<Vec<SessionRecord>> {
        let now = self.clock.now();
        let mut v: Vec<_> = self
            .rows
            .lock()
            .values()
            .filter(|s| s.user_id.as_ref() == Some(user) && s.expires_at > now)
            .cloned()
            .collect();
        v.sort_by_key(|s| std::cmp::Reverse(s.last_activity));
        Ok(v)
    }

    async fn delete_for_user(&self, user: &UserId, keep: Option<&SessionKey>) -> StoreResult<usize> {
        let mut t = self.rows.lock();
        let before = t.len();
        t.retain(|k, s| s.user_id.as_ref() != Some(user) || Some(k) == keep);
        Ok(before - t.len())
    }
}

// ---------------------------------------------------------------------------------------------
// password reset tokens

pub struct MemoryResets {
    clock: SharedClock,
    rows: Table<String, ResetRecord>,
}

impl MemoryResets {
    pub fn new(clock: SharedClock) -> Self {
        Self { clock, rows: Table::default() }
    }
}

#[async_trait]
impl ResetStore for MemoryResets {
    async fn put_unless_throttled(&self, record: &ResetRecord, throttle_since: Timestamp) -> StoreResult<bool> {
        let now = self.clock.now();
        let mut t = self.rows.lock();
        let key = record.email.normalized();
        if let Some(old) = t.get(&key)
            && old.expires_at > now
            && old.created_at > throttle_since
        {
            return Ok(false);
        }
        t.insert(key, record.clone());
        Ok(true)
    }

    async fn find(&self, email: &Email) -> StoreResult<Option<ResetRecord>> {
        let now = self.clock.now();
        Ok(self.rows.lock().get(&email.normalized()).filter(|r| r.expires_at > now).cloned())
    }

    async fn consume(&self, email: &Email, token_hash: &str, now: Timestamp) -> StoreResult<bool> {
        let mut t = self.rows.lock();
        let key = email.normalized();
        let ok = t.get(&key).is_some_and(|r| r.expires_at > now && r.token_hash == token_hash);
        if ok {
            t.remove(&key);
        }
        Ok(ok)
    }

    async fn delete(&self, email: &Email) -> StoreResult<()> {
        self.rows.lock().remove(&email.normalized());
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// personal access tokens

pub struct MemoryTokens {
    clock: SharedClock,
    rows: Table<TokenId, PersonalAccessToken>,
}

impl MemoryTokens {
    pub fn new(clock: SharedClock) -> Self {
        Self { clock, rows: Table::default() }
    }
}

#[async_trait]
impl TokenStore for MemoryTokens {
    async fn find(&self, id: &TokenId) -> StoreResult<Option<PersonalAccessToken>> {
        let now = self.clock.now();
        Ok(self.rows.lock().get(id).filter(|t| is_live(t.expires_at, now)).cloned())
    }

    async fn touch_last_used(&self, id: &TokenId, now: Timestamp, stale_before: Timestamp) -> StoreResult<bool> {
        let live_now = self.clock.now();
        Ok(match self.rows.lock().get_mut(id) {
            Some(t) if is_live(t.expires_at, live_now) && t.last_used_at.is_none_or(|l| l <= stale_before) => {
                t.last_used_at = Some(now);
                true
            }
            _ => false,
        })
    }

    async fn extend(&self, id: &TokenId, expires_at: Timestamp) -> StoreResult<bool> {
        let now = self.clock.now();
        Ok(match self.rows.lock().get_mut(id) {
            Some(t) if is_live(t.expires_at, now) => {
                t.expires_at = Some(expires_at);
                true
            }
            _ => false,
        })
    }

    async fn delete_owned(&self, id: &TokenId, owner: &Tokenable) -> StoreResult<bool> {
        let mut t = self.rows.lock();
        if t.get(id).is_some_and(|tok| &tok.tokenable == owner) {
            t.remove(id);
            return Ok(true);
        }
        Ok(false)
    }

    async fn list_for(
        &self,
        owner: &Tokenable,
        limit: usize,
        after: Option<&Cursor>,
    ) -> StoreResult<Page<PersonalAccessToken>> {
        let now = self.clock.now();
        let mut all: Vec<_> = self
            .rows
            .lock()
            .values()
            .filter(|t| &t.tokenable == owner && is_live(t.expires_at, now))
            .cloned()
            .collect();
        // Ids are UUIDv7: newest first is descending id order.
        all.sort_by(|a, b| b.id.cmp(&a.id));
        let start_after = cursor_position(after, "id")?;
        Ok(paginate(all, limit, |t| t.id.as_str().to_owned(), start_after, |id| serde_json::json!({ "id": id })))
    }

    async fn delete_all_for(&self, owner: &Tokenable) -> StoreResult<usize> {
        let mut t = self.rows.lock();
        let before = t.len();
        t.retain(|_, tok| &tok.tokenable != owner);
        Ok(before - t.len())
    }
}

/// The position a cursor names (its `field`), or `Rejected` for a cursor this listing did not
/// make: the same answer DynamoDB gives for a bad `ExclusiveStartKey`.
fn cursor_position(after: Option<&Cursor>, field: &str) -> StoreResult<Option<String>> {
    after
        .map(|c| {
            c.decode()
                .and_then(|v| v.get(field).and_then(Value::as_str).map(str::to_owned))
                .ok_or(StoreError::InvalidCursor)
        })
        .transpose()
}

/// Pages a sorted list by the sort key of its last item, like DynamoDB's `LastEvaluatedKey`.
fn paginate<T>(
    sorted: Vec<T>,
    limit: usize,
    key: impl Fn(&T) -> String,
    after: Option<String>,
    cursor: impl Fn(String) -> Value,
) -> Page<T> {
    let limit = limit.max(1);
    let mut items: Vec<T> = match after {
        Some(a) => sorted.into_iter().skip_while(|t| key(t) != a).skip(1).collect(),
        None => sorted,
    };
    let more = items.len() > limit;
    items.truncate(limit);
    let next = if more { items.last().map(|t| Cursor::encode(&cursor(key(t)))) } else { None };
    Page { items, next }
}

// ---------------------------------------------------------------------------------------------
// cache

pub struct MemoryCache {
    clock: SharedClock,
    rows: Table<String, (Value, Option<Timestamp>)>,
}

impl MemoryCache {
    pub fn new(clock: SharedClock) -> Self {
        Self { clock, rows: Table::default() }
    }

    fn live(&self, t: &HashMap<String, (Value, Option<Timestamp>)>, key: &str) -> Option<Value> {
        let now = self.clock.now();
        t.get(key).filter(|(_, e)| is_live(*e, now)).map(|(v, _)| v.clone())
    }
}

#[async_trait]
impl CacheStore for MemoryCache {
    async fn get(&self, key: &str) -> StoreResult<Option<Value>> {
        check_key(key)?;
        Ok(self.live(&self.rows.lock(), key))
    }

    async fn many(&self, keys: &[String]) -> StoreResult<Vec<Option<Value>>> {
        keys.iter().try_for_each(|k| check_key(k))?;
        let t = self.rows.lock();
        Ok(keys.iter().map(|k| self.live(&t, k)).collect())
    }

    async fn put(&self, key: &str, value: &Value, expires_at: Option<Timestamp>) -> StoreResult<()> {
        check_key(key)?;
        self.rows.lock().insert(key.to_owned(), (value.clone(), expires_at));
        Ok(())
    }

    async fn add(&self, key: &str, value: &Value, expires_at: Option<Timestamp>) -> StoreResult<bool> {
        check_key(key)?;
        let mut t = self.rows.lock();
        if self.live(&t, key).is_some() {
            return Ok(false);
        }
        t.insert(key.to_owned(), (value.clone(), expires_at));
        Ok(true)
    }

    async fn increment(&self, key: &str, by: i64) -> StoreResult<i64> {
        check_key(key)?;
        let mut t = self.rows.lock();
        let next = match self.live(&t, key) {
            None => {
                t.insert(key.to_owned(), (Value::from(by), None));
                return Ok(by);
            }
            Some(v) => v
                .as_i64()
                .ok_or_else(|| StoreError::Conflict(format!("cache value at {key:?} is not an integer")))?
                .checked_add(by)
                .ok_or_else(|| StoreError::Conflict(format!("cache counter at {key:?} would overflow")))?,
        };
        if let Some(entry) = t.get_mut(key) {
            entry.0 = Value::from(next);
        }
        Ok(next)
    }

    async fn hit(&self, key: &str, window_end: Timestamp) -> StoreResult<(i64, Timestamp)> {
        check_key(key)?;
        let now = self.clock.now();
        let mut t = self.rows.lock();
        match t.get_mut(key) {
            Some((v, Some(end))) if *end > now => {
                let next = v.as_i64().unwrap_or(0).saturating_add(1);
                *v = Value::from(next);
                Ok((next, *end))
            }
            _ => {
                t.insert(key.to_owned(), (Value::from(1), Some(window_end)));
                Ok((1, window_end))
            }
        }
    }

    async fn forget(&self, key: &str) -> StoreResult<bool> {
        check_key(key)?;
        let mut t = self.rows.lock();
        let was_live = self.live(&t, key).is_some();
        t.remove(key);
        Ok(was_live)
    }
}

// ---------------------------------------------------------------------------------------------
// locks

pub struct MemoryLocks {
    clock: SharedClock,
    rows: Table<String, (LockOwner, Option<Timestamp>)>,
}

impl MemoryLocks {
    pub fn new(clock: SharedClock) -> Self {
        Self { clock, rows: Table::default() }
    }
}

#[async_trait]
impl LockStore for MemoryLocks {
    async fn acquire(&self, key: &str, owner: &LockOwner, expires_at: Option<Timestamp>) -> StoreResult<bool> {
        let now = self.clock.now();
        let mut t = self.rows.lock();
        let free = match t.get(key) {
            None => true,
            Some((o, e)) => o == owner || !is_live(*e, now),
        };
        if free {
            t.insert(key.to_owned(), (owner.clone(), expires_at));
        }
        Ok(free)
    }

    async fn refresh(&self, key: &str, owner: &LockOwner, expires_at: Option<Timestamp>) -> StoreResult<bool> {
        let now = self.clock.now();
        Ok(match self.rows.lock().get_mut(key) {
            Some((o, e)) if o == owner && is_live(*e, now) => {
                *e = expires_at;
                true
            }
            _ => false,
        })
    }

    async fn release(&self, key: &str, owner: &LockOwner) -> StoreResult<bool> {
        let mut t = self.rows.lock();
        if t.get(key).is_some_and(|(o, _)| o == owner) {
            t.remove(key);
            return Ok(true);
        }
        Ok(false)
    }

    async fn force_release(&self, key: &str) -> StoreResult<()> {
        self.rows.lock().remove(key);
        Ok(())
    }

    async fn owner(&self, key: &str) -> StoreResult<Option<LockOwner>> {
        let now = self.clock.now();
        Ok(self.rows.lock().get(key).filter(|(_, e)| is_live(*e, now)).map(|(o, _)| o.clone()))
    }
}

// ---------------------------------------------------------------------------------------------
// batches

pub struct MemoryBatches {
    clock: SharedClock,
    rows: Table<String, (Batch, HashSet<String>)>,
}

impl MemoryBatches {
    pub fn new(clock: SharedClock) -> Self {
        Self { clock, rows: Table::default() }
    }

    fn count(&self, id: &str, job: &str, failed: bool) -> StoreResult<Option<Counted>> {
        let now = self.clock.now();
        let mut t = self.rows.lock();
        let Some((batch, counted)) = t.get_mut(id).filter(|(b, _)| is_live(b.expires_at, now)) else {
            return Ok(None);
        };
        let newly_counted = counted.insert(job.to_owned());
        if newly_counted {
            batch.pending_jobs = batch.pending_jobs.saturating_sub(1);
            if failed {
                batch.failed_jobs += 1;
                batch.failed_job_ids.push(job.to_owned());
            }
        }
        Ok(Some(Counted { newly_counted, batch: batch.clone() }))
    }
}

#[async_trait]
impl BatchStore for MemoryBatches {
    async fn create(&self, batch: &Batch) -> StoreResult<()> {
        let mut t = self.rows.lock();
        if t.contains_key(&batch.id) {
            return Err(StoreError::Conflict(format!("batch {} exists", batch.id)));
        }
        t.insert(batch.id.clone(), (batch.clone(), HashSet::new()));
        Ok(())
    }

    async fn find(&self, id: &str) -> StoreResult<Option<Batch>> {
        let now = self.clock.now();
        Ok(self.rows.lock().get(id).map(|(b, _)| b).filter(|b| is_live(b.expires_at, now)).cloned())
    }

    async fn add_jobs(&self, id: &str, n: u64) -> StoreResult<bool> {
        Ok(match self.rows.lock().get_mut(id) {
            Some((b, _)) => {
                b.total_jobs += n;
                b.pending_jobs += n;
                true
            }
            None => false,
        })
    }

    async fn record_success(&self, id: &str, job_uuid: &str) -> StoreResult<Option<Counted>> {
        self.count(id, job_uuid, false)
    }

    async fn record_failure(&self, id: &str, job_uuid: &str) -> StoreResult<Option<Counted>> {
        self.count(id, job_uuid, true)
    }

    async fn mark_finished(&self, id: &str, now: Timestamp) -> StoreResult<bool> {
        Ok(match self.rows.lock().get_mut(id) {
            Some((b, _)) if b.pending_jobs == 0 && b.finished_at.is_none() => {
                b.finished_at = Some(now);
                true
            }
            _ => false,
        })
    }

    async fn cancel(&self, id: &str, now: Timestamp) -> StoreResult<bool> {
        Ok(match self.rows.lock().get_mut(id) {
            Some((b, _)) if b.cancelled_at.is_none() => {
                b.cancelled_at = Some(now);
                true
            }
            _ => false,
        })
    }

    async fn delete(&self, id: &str) -> StoreResult<bool> {
        Ok(self.rows.lock().remove(id).is_some())
    }
}

// ---------------------------------------------------------------------------------------------
// failed jobs

pub struct MemoryFailedJobs {
    clock: SharedClock,
    rows: Table<String, FailedJob>,
}

impl MemoryFailedJobs {
    pub fn new(clock: SharedClock) -> Self {
        Self { clock, rows: Table::default() }
    }
}

/// The order failed jobs are listed in (newest first), as a sortable string.
pub(crate) fn failed_sort_key(job: &FailedJob) -> String {
    format!("{:015}#{}", crate::clock::epoch_millis(job.failed_at).max(0), job.uuid)
}

#[async_trait]
impl FailedJobStore for MemoryFailedJobs {
    async fn record(&self, job: &FailedJob) -> StoreResult<()> {
        self.rows.lock().insert(job.uuid.clone(), job.clone());
        Ok(())
    }

    async fn find(&self, uuid: &str) -> StoreResult<Option<FailedJob>> {
        let now = self.clock.now();
        Ok(self.rows.lock().get(uuid).filter(|j| is_live(j.expires_at, now)).cloned())
    }

    async fn list(&self, limit: usize, after: Option<&Cursor>) -> StoreResult<Page<FailedJob>> {
        let now = self.clock.now();
        let mut all: Vec<_> = self.rows.lock().values().filter(|j| is_live(j.expires_at, now)).cloned().collect();
        all.sort_by_key(|j| std::cmp::Reverse(failed_sort_key(j)));
        let start_after = cursor_position(after, "sort")?;
        Ok(paginate(all, limit, failed_sort_key, start_after, |k| serde_json::json!({ "sort": k })))
    }

    async fn forget(&self, uuid: &str) -> StoreResult<bool> {
        Ok(self.rows.lock().remove(uuid).is_some())
    }

    async fn flush(&self) -> StoreResult<usize> {
        let mut t = self.rows.lock();
        let n = t.len();
        t.clear();
        Ok(n)
    }
}

// ---------------------------------------------------------------------------------------------
// cross-app

pub struct MemoryCrossApp {
    clock: SharedClock,
    handoffs: Table<String, Handoff>,
    sessions: Table<String, CrossAppSession>,
}

impl MemoryCrossApp {
    pub fn new(clock: SharedClock) -> Self {
        Self { clock, handoffs: Table::default(), sessions: Table::default() }
    }
}

#[async_trait]
impl CrossAppStore for MemoryCrossApp {
    async fn delete_handoff(&self, token_hash: &str) -> StoreResult<()> {
        self.handoffs.lock().remove(token_hash);
        Ok(())
    }

    async fn consume_handoff(
        &self,
        token_hash: &str,
        target_app: &str,
        now: Timestamp,
    ) -> StoreResult<Option<Handoff>> {
        Ok(match self.handoffs.lock().get_mut(token_hash) {
            Some(h) if h.used_at.is_none() && h.expires_at > now && h.target_app == target_app => {
                h.used_at = Some(now);
                Some(h.clone())
            }
            _ => None,
        })
    }

    async fn record_session(&self, session: &CrossAppSession) -> StoreResult<()> {
        self.sessions.lock().insert(session.id.clone(), session.clone());
        Ok(())
    }

    async fn find_session(&self, id: &str) -> StoreResult<Option<CrossAppSession>> {
        let now = self.clock.now();
        Ok(self.sessions.lock().get(id).filter(|s| is_live(s.expires_at, now)).cloned())
    }

    async fn revoke_session(
        &self,
        id: &str,
        user: &UserId,
        now: Timestamp,
        reason: &str,
    ) -> StoreResult<Option<CrossAppSession>> {
        let live_now = self.clock.now();
        Ok(match self.sessions.lock().get_mut(id) {
            Some(s) if &s.user_id == user && s.revoked_at.is_none() && is_live(s.expires_at, live_now) => {
                s.revoked_at = Some(now);
                s.revoked_reason = Some(reason.to_owned());
                Some(s.clone())
            }
            _ => None,
        })
    }

    async fn list_for_user(&self, user: &UserId) -> StoreResult<Vec<CrossAppSession>> {
        let now = self.clock.now();
        let mut v: Vec<_> = self
            .sessions
            .lock()
            .values()
            .filter(|s| &s.user_id == user && is_live(s.expires_at, now))
            .cloned()
            .collect();
        v.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        Ok(v)
    }
}

// ---------------------------------------------------------------------------------------------
// credentials (the register)

/// The register, and the one place a credential enters the in-memory stores: under the users
/// table's lock, so that issuing and moving a user's credentials version are atomic with respect
/// to each other, as the DynamoDB transaction makes them.
pub struct MemoryCredentials {
    users: Arc<MemoryUsers>,
    sessions: Arc<MemorySessions>,
    tokens: Arc<MemoryTokens>,
    cross_app: Arc<MemoryCrossApp>,
    entries: Table<UserId, BTreeMap<CredentialRef, CredentialEntry>>,
}

impl MemoryCredentials {
    pub fn new(
        users: Arc<MemoryUsers>,
        sessions: Arc<MemorySessions>,
        tokens: Arc<MemoryTokens>,
        cross_app: Arc<MemoryCrossApp>,
    ) -> Self {
        Self { users, sessions, tokens, cross_app, entries: Table::default() }
    }
}

#[async_trait]
impl CredentialStore for MemoryCredentials {
    async fn issue(&self, version: u64, entry: &CredentialEntry, credential: NewCredential<'_>) -> StoreResult<bool> {
        let users = self.users.by_id.lock();
        if users.get(&entry.user_id).is_none_or(|u| u.credentials_version != version) {
            return Ok(false);
        }
        if let Some(parent) = &entry.parent {
            let now = self.sessions.clock.now();
            let live = match parent.kind {
                CredentialKind::Session => self
                    .sessions
                    .rows
                    .lock()
                    .get(&SessionKey::from_stored(parent.key.clone()))
                    .is_some_and(|s| s.expires_at > now),
                CredentialKind::Token => self
                    .tokens
                    .rows
                    .lock()
                    .get(&TokenId::from_stored(parent.key.clone()))
                    .is_some_and(|t| is_live(t.expires_at, now)),
                CredentialKind::Handoff => {
                    self.cross_app.handoffs.lock().get(&parent.key).is_some_and(|h| h.expires_at > now)
                }
            };
            if !live {
                return Ok(false);
            }
        }
        match credential {
            NewCredential::Session(s) => {
                let mut rows = self.sessions.rows.lock();
                if rows.contains_key(&s.key) {
                    return Err(StoreError::Conflict("session id already exists".into()));
                }
                rows.insert(s.key.clone(), s.clone());
            }
            NewCredential::Token(t) => {
                let mut rows = self.tokens.rows.lock();
                if rows.contains_key(&t.id) {
                    return Err(StoreError::Conflict("token id already exists".into()));
                }
                rows.insert(t.id.clone(), t.clone());
            }
            NewCredential::Handoff(h) => {
                let mut rows = self.cross_app.handoffs.lock();
                if rows.contains_key(&h.token_hash) {
                    return Err(StoreError::Conflict("handoff token already exists".into()));
                }
                rows.insert(h.token_hash.clone(), h.clone());
            }
        }
        self.entries.lock().entry(entry.user_id.clone()).or_default().insert(entry.credential.clone(), entry.clone());
        drop(users);
        Ok(true)
    }

    async fn list(&self, user: &UserId) -> StoreResult<Vec<CredentialEntry>> {
        Ok(self.entries.lock().get(user).map(|m| m.values().cloned().collect()).unwrap_or_default())
    }

    async fn forget(&self, user: &UserId, refs: &[CredentialRef]) -> StoreResult<()> {
        if let Some(m) = self.entries.lock().get_mut(user) {
            for r in refs {
                m.remove(r);
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// queue

struct Msg {
    id: String,
    body: String,
    visible_at: Timestamp,
    receive_count: u32,
    receipt: Option<String>,
    sent_seq: u64,
}

/// An in-memory queue with SQS's semantics (delay, visibility timeout, receive count, redrive to
/// a dead-letter queue after `max_receive_count` receives), on the injected clock, so tests can
/// move time instead of waiting.
pub struct MemoryQueue {
    clock: SharedClock,
    visibility: Duration,
    max_receive_count: u32,
    state: Mutex<QueueState>,
    notify: tokio::sync::Notify,
}

#[derive(Default)]
struct QueueState {
    seq: u64,
    messages: BTreeMap<u64, Msg>,
    dead: Vec<String>,
}

impl MemoryQueue {
    pub fn new(clock: SharedClock, visibility: Duration, max_receive_count: u32) -> Self {
        Self { clock, visibility, max_receive_count, state: Mutex::default(), notify: tokio::sync::Notify::new() }
    }

    fn state(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bodies moved to the dead-letter queue.
    pub fn dead_letters(&self) -> Vec<String> {
        self.state().dead.clone()
    }

    fn take_visible(&self, max: usize, visibility: Duration) -> Vec<QueueMessage> {
        let now = self.clock.now();
        let hide_until = now + chrono::Duration::from_std(visibility).unwrap_or(chrono::Duration::zero());
        let mut st = self.state();
        let mut out = Vec::new();
        let mut dead = Vec::new();
        for (seq, m) in st.messages.iter_mut() {
            if out.len() >= max {
                break;
            }
            if m.visible_at > now {
                continue;
            }
            if m.receive_count >= self.max_receive_count {
                dead.push(*seq);
                continue;
            }
            m.receive_count += 1;
            m.visible_at = hide_until;
            let receipt = format!("{}:{}:{}", m.sent_seq, m.receive_count, uuid::Uuid::new_v4());
            m.receipt = Some(receipt.clone());
            out.push(QueueMessage {
                message_id: m.id.clone(),
                receipt_handle: receipt,
                body: m.body.clone(),
                receive_count: m.receive_count,
            });
        }
        for seq in dead {
            if let Some(m) = st.messages.remove(&seq) {
                st.dead.push(m.body);
            }
        }
        out
    }

    fn find_by_receipt<'a>(st: &'a mut QueueState, receipt: &str) -> Option<(u64, &'a mut Msg)> {
        st.messages.iter_mut().find(|(_, m)| m.receipt.as_deref() == Some(receipt)).map(|(k, m)| (*k, m))
    }
}

#[async_trait]
impl JobQueue for MemoryQueue {
    async fn send(&self, body: &str, delay: Duration) -> StoreResult<String> {
        check_send(body, delay)?;
        let now = self.clock.now();
        let id = uuid::Uuid::new_v4().to_string();
        {
            let mut st = self.state();
            st.seq += 1;
            let seq = st.seq;
            st.messages.insert(
                seq,
                Msg {
                    id: id.clone(),
                    body: body.to_owned(),
                    visible_at: now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::zero()),
                    receive_count: 0,
                    receipt: None,
                    sent_seq: seq,
                },
            );
        }
        self.notify.notify_waiters();
        Ok(id)
    }

    async fn receive(&self, max: u32, wait: Duration, visibility: Option<Duration>) -> StoreResult<Vec<QueueMessage>> {
        if !(1..=10).contains(&max) {
            return Err(StoreError::Rejected("receive takes 1 to 10 messages".into()));
        }
        let visibility = visibility.unwrap_or(self.visibility);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let got = self.take_visible(max as usize, visibility);
            if !got.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(got);
            }
            // Woken by a send, or re-check every 50 ms for delayed messages coming due.
            let nap = (deadline - tokio::time::Instant::now()).min(Duration::from_millis(50));
            let _ = tokio::time::timeout(nap, self.notify.notified()).await;
        }
    }

    async fn change_visibility(&self, receipt_handle: &str, after: Duration) -> StoreResult<()> {
        let now = self.clock.now();
        let mut st = self.state();
        let (_, m) = Self::find_by_receipt(&mut st, receipt_handle)
            .ok_or_else(|| StoreError::Rejected("receipt handle is not current".into()))?;
        m.visible_at = now + chrono::Duration::from_std(after).unwrap_or(chrono::Duration::zero());
        Ok(())
    }

    async fn delete(&self, receipt_handle: &str) -> StoreResult<()> {
        let mut st = self.state();
        // Deleting with a stale handle is a no-op, as in SQS.
        if let Some((seq, _)) = Self::find_by_receipt(&mut st, receipt_handle) {
            st.messages.remove(&seq);
        }
        Ok(())
    }

    async fn approximate_len(&self) -> StoreResult<u64> {
        Ok(self.state().messages.len() as u64)
    }
}

// ---------------------------------------------------------------------------------------------
// job runs

#[derive(Clone, Copy)]
enum RunRow {
    Running { lease_until: Timestamp, expires_at: Timestamp },
    Completed { expires_at: Timestamp },
}

pub struct MemoryJobRuns {
    clock: SharedClock,
    rows: Table<String, RunRow>,
}

impl MemoryJobRuns {
    pub fn new(clock: SharedClock) -> Self {
        Self { clock, rows: Table::default() }
    }
}

#[async_trait]
impl JobRunStore for MemoryJobRuns {
    async fn claim(
        &self,
        uuid: &str,
        now: Timestamp,
        lease_until: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<Claim> {
        let live_now = self.clock.now();
        let mut t = self.rows.lock();
        match t.get(uuid).copied() {
            Some(RunRow::Completed { expires_at: e }) if e > live_now => Ok(Claim::Completed),
            Some(RunRow::Running { lease_until: l, expires_at: e }) if e > live_now && l > now => {
                Ok(Claim::Busy { until: l })
            }
            _ => {
                t.insert(uuid.to_owned(), RunRow::Running { lease_until, expires_at });
                Ok(Claim::Claimed)
            }
        }
    }

    async fn complete(&self, uuid: &str, _now: Timestamp, expires_at: Timestamp) -> StoreResult<()> {
        self.rows.lock().insert(uuid.to_owned(), RunRow::Completed { expires_at });
        Ok(())
    }

    async fn release(&self, uuid: &str) -> StoreResult<()> {
        self.rows.lock().remove(uuid);
        Ok(())
    }
}
