//! DynamoDB stores, one file per table.
//!
//! Conventions: every table's items are explicit DTO structs (serde_dynamo) with stable attribute
//! names; timestamps are epoch **milliseconds** (numbers), except the TTL attribute `expires_at`,
//! which is epoch **seconds** as DynamoDB's TTL requires. Reads are consistent on base-table keys
//! and drop items whose `expires_at` has passed; conditional writes treat them as absent.

mod cache;
mod cache_locks;
mod credentials;
mod cross_app_sessions;
mod events;
mod failed_jobs;
mod identities;
pub(crate) mod job_batches;
mod job_runs;
mod oauth_access_tokens;
mod oauth_auth_codes;
mod oauth_clients;
mod oauth_consents;
mod oauth_refresh_tokens;
mod oauth_signing_keys;
mod password_reset_tokens;
mod personal_access_tokens;
mod sessions;
mod users;
mod webhook_endpoints;

pub use cache::DynamoCache;
pub use cache_locks::DynamoCacheLocks;
pub use credentials::DynamoCredentials;
pub use cross_app_sessions::DynamoCrossAppSessions;
pub use events::DynamoEvents;
pub use failed_jobs::DynamoFailedJobs;
pub use identities::DynamoIdentities;
pub use job_batches::DynamoJobBatches;
pub use job_runs::DynamoJobRuns;
pub use oauth_access_tokens::DynamoOAuthAccessTokens;
pub use oauth_auth_codes::DynamoOAuthAuthCodes;
pub use oauth_clients::DynamoOAuthClients;
pub use oauth_consents::DynamoOAuthConsents;
pub use oauth_refresh_tokens::DynamoOAuthRefreshTokens;
pub use oauth_signing_keys::DynamoOAuthSigningKeys;
pub use password_reset_tokens::DynamoPasswordResetTokens;
pub use personal_access_tokens::DynamoPersonalAccessTokens;
pub use sessions::DynamoSessions;
pub use users::DynamoUsers;
pub use webhook_endpoints::DynamoWebhookEndpoints;

pub(crate) use crate::error::sdk_error;
pub use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, ReturnValue, TransactWriteItem, WriteRequest};
use gatehouse::config::Names;
use gatehouse::schema::TableDef;
use gatehouse::values::clock::{Clock, Timestamp, epoch_millis, epoch_seconds, from_epoch_millis, from_epoch_seconds};
use gatehouse::values::error::{StoreError, StoreResult};
use gatehouse::values::pagination::Cursor;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::sync::Arc;

pub(crate) type Item = HashMap<String, AttributeValue>;

/// A write's own random mark, stored with what it writes: the SDK retrying a write whose answer
/// was lost is refused by the write itself, and the mark tells that refusal from another
/// writer's (see [`Table::update_own`]).
pub(crate) struct OwnMark(String);

impl OwnMark {
    pub(crate) fn new() -> Self {
        Self(hex::encode(gatehouse::values::secret::random_bytes::<16>()))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn value(&self) -> AttributeValue {
        AttributeValue::S(self.0.clone())
    }

    /// Whether `item` carries this mark in `attr`.
    pub(crate) fn on(&self, item: &Item, attr: &str) -> bool {
        matches!(item.get(attr), Some(AttributeValue::S(m)) if *m == self.0)
    }
}

/// `$req` (a put, delete or update request) with the condition and placeholders of `$cond`, a
/// [`Cond`]: the request builders share no trait to write this as a function over.
macro_rules! with_cond {
    ($req:expr, $cond:expr) => {{
        let Cond { expression, names, values } = $cond;
        $req.condition_expression(expression)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
    }};
}

/// What every DynamoDB store shares: the client, the clock, and its table's name.
#[derive(Clone)]
pub struct Table {
    pub(crate) client: Client,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) name: String,
    pub(crate) def: TableDef,
}

impl Table {
    pub fn new(client: Client, names: &Names, def: TableDef, clock: Arc<dyn Clock>) -> Self {
        Self { client, clock, name: names.table(def.logical), def }
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub(crate) fn err<E, R>(&self, e: SdkError<E, R>) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug,
    {
        sdk_error(&self.name, e)
    }

    pub(crate) fn decode<T: DeserializeOwned>(&self, item: Item) -> StoreResult<T> {
        serde_dynamo::from_item(item).map_err(|e| StoreError::corrupt(&self.name, e))
    }

    pub(crate) fn encode<T: Serialize>(&self, value: &T) -> StoreResult<Item> {
        serde_dynamo::to_item(value)
            .map_err(|e| StoreError::Rejected(format!("{}: cannot encode item: {e}", self.name)))
    }

    /// Consistent read of one item by key.
    pub(crate) async fn get(&self, key: Item) -> StoreResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.name)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.err(e))?;
        Ok(out.item)
    }

    /// Consistent reads of one item by `key` and of the user `owner` in the users table
    /// (`users_table`; only what a credential check needs of it), in one `BatchGetItem`. Keys
    /// DynamoDB leaves unprocessed (throttling) are asked for again, a few times, then the read is
    /// unavailable.
    pub(crate) async fn get_with_owner(
        &self,
        key: Item,
        users_table: &str,
        owner: &gatehouse::tables::users::UserId,
    ) -> StoreResult<(Option<Item>, Option<gatehouse::tables::users::OwnerState>)> {
        use aws_sdk_dynamodb::types::KeysAndAttributes;
        let owner_key = users::owner_key(owner);
        let built = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Rejected(e.to_string());
        let mut requests: HashMap<String, KeysAndAttributes> = HashMap::from([
            (self.name.clone(), KeysAndAttributes::builder().keys(key).consistent_read(true).build().map_err(built)?),
            (
                users_table.to_owned(),
                KeysAndAttributes::builder()
                    .keys(owner_key)
                    .consistent_read(true)
                    .projection_expression(users::OWNER_PROJECTION)
                    .build()
                    .map_err(built)?,
            ),
        ]);
        let (mut item, mut user) = (None, None);
        for _ in 0..4 {
            let out =
                self.client.batch_get_item().set_request_items(Some(requests)).send().await.map_err(|e| self.err(e))?;
            let mut found = out.responses.unwrap_or_default();
            if let Some(i) = found.remove(&self.name).and_then(|mut v| v.pop()) {
                item = Some(i);
            }
            if let Some(u) = found.remove(users_table).and_then(|mut v| v.pop()) {
                user = Some(u);
            }
            match out.unprocessed_keys.filter(|u| !u.is_empty()) {
                None => return Ok((item, user.map(|u| users::owner_state(&u)).transpose()?.flatten())),
                Some(left) => requests = left,
            }
        }
        Err(StoreError::Unavailable(format!("{}: a credential read kept being left unprocessed", self.name)))
    }

    /// Consistent read of one item, decoded; an item whose expiry (`expires_at` of the decoded
    /// value, `None` = never) has passed, as of just before the read, is absent.
    pub(crate) async fn find_live<T>(
        &self,
        key: Item,
        decode: impl FnOnce(Item) -> StoreResult<T>,
        expires_at: impl FnOnce(&T) -> Option<Timestamp>,
    ) -> StoreResult<Option<T>> {
        let now = self.now();
        let Some(item) = self.get(key).await? else {
            return Ok(None);
        };
        Ok(Some(decode(item)?).filter(|v| gatehouse::values::clock::is_live(expires_at(v), now)))
    }

    /// Every item a query finds, following `LastEvaluatedKey` to the end; `query` sets all but the
    /// table and the start key, and `decode` takes each item as its page arrives.
    pub(crate) async fn query_all<T>(
        &self,
        query: impl Fn(QueryFluentBuilder) -> QueryFluentBuilder,
        mut decode: impl FnMut(Item) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = query(self.client.query().table_name(&self.name))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| self.err(e))?;
            for item in page.items.unwrap_or_default() {
                out.push(decode(item)?);
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(out);
            }
        }
    }

    /// Every item of the table, read consistently page by page (for the small tables an operator
    /// lists whole: OAuth clients, signing keys).
    pub(crate) async fn scan_all<T>(&self, mut decode: impl FnMut(Item) -> StoreResult<T>) -> StoreResult<Vec<T>> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.name)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| self.err(e))?;
            for item in page.items.unwrap_or_default() {
                out.push(decode(item)?);
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(out);
            }
        }
    }

    /// Every item of one owner in an owner index (`index` keyed by `attr` = `value`), newest
    /// sort key first; eventually consistent, as every index read.
    pub(crate) async fn query_owner<T>(
        &self,
        index: &str,
        (attr, value): (&str, &str),
        decode: impl FnMut(Item) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        let condition = format!("{attr} = :owner");
        self.query_all(
            |q| {
                q.index_name(index)
                    .key_condition_expression(&condition)
                    .expression_attribute_values(":owner", s(value))
                    .scan_index_forward(false)
            },
            decode,
        )
        .await
    }

    /// A conditional write's outcome: `Some(output)` if it was made, `None` if its condition
    /// failed; any other error is the store's.
    pub(crate) fn conditional<T, E, R>(&self, res: Result<T, SdkError<E, R>>) -> StoreResult<Option<T>>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug,
    {
        match res {
            Ok(out) => Ok(Some(out)),
            Err(e) if condition_failed(&e) => Ok(None),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Writes `item`, replacing whatever is at its key.
    pub(crate) async fn put(&self, item: Item) -> StoreResult<()> {
        self.client.put_item().table_name(&self.name).set_item(Some(item)).send().await.map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Writes `item` if `cond` holds: `false` (and nothing written) if it does not.
    pub(crate) async fn put_if(&self, item: Item, cond: Cond) -> StoreResult<bool> {
        let req = self.client.put_item().table_name(&self.name).set_item(Some(item));
        Ok(self.conditional(with_cond!(req, cond).send().await)?.is_some())
    }

    /// Deletes the item at `key`, if there is one.
    pub(crate) async fn delete(&self, key: Item) -> StoreResult<()> {
        self.client.delete_item().table_name(&self.name).set_key(Some(key)).send().await.map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Deletes the item at `key` and returns it as it was (live or expired), if there was one.
    pub(crate) async fn take(&self, key: Item) -> StoreResult<Option<Item>> {
        let req = self.client.delete_item().table_name(&self.name).set_key(Some(key));
        let out = req.return_values(ReturnValue::AllOld).send().await.map_err(|e| self.err(e))?;
        Ok(out.attributes)
    }

    /// Deletes the item at `key` if `cond` holds: `false` (and nothing deleted) if it does not.
    pub(crate) async fn delete_if(&self, key: Item, cond: Cond) -> StoreResult<bool> {
        let req = self.client.delete_item().table_name(&self.name).set_key(Some(key));
        Ok(self.conditional(with_cond!(req, cond).send().await)?.is_some())
    }

    /// Applies `update` to the item at `key` if `cond` holds: `false` (and nothing changed) if it
    /// does not. `cond` carries the placeholders of both expressions.
    pub(crate) async fn update_if(&self, key: Item, update: impl Into<String>, cond: Cond) -> StoreResult<bool> {
        Ok(self.conditional(self.send_update(key, update, cond, None).await)?.is_some())
    }

    /// [`Table::update_if`] for a write that sets `attr = :mark` to this call's [`OwnMark`]:
    /// when the condition refuses it, the item is read once (consistently, only then), and if
    /// it carries the mark, the refusal was this very write retried by the SDK after it landed
    /// and its answer was lost: a success. Returns the item as written, `None` if refused.
    pub(crate) async fn update_own(
        &self,
        key: Item,
        update: impl Into<String>,
        cond: Cond,
        attr: &str,
    ) -> StoreResult<Option<Item>> {
        let mark = OwnMark::new();
        if let Some(item) = self.update_if_returning(key.clone(), update, cond.value(":mark", mark.value())).await? {
            return Ok(Some(item));
        }
        Ok(self.get(key).await?.filter(|item| mark.on(item, attr)))
    }

    /// An update of `key` in this table, with `cond`, as one item of a [`Table::transact`].
    pub(crate) fn transact_update(&self, key: Item, update: &str, cond: Cond) -> StoreResult<TransactWriteItem> {
        transact_update_in(&self.name, key, update, cond)
    }

    /// Sends one `TransactWriteItems`, up to `tries` times (the SDK gives each an idempotency
    /// token, so its own retry of a transaction that landed is answered as a success). Racing
    /// transactions on an item cancel each other before any condition is judged
    /// (`TransactionConflict`): those are sent again after a jittered backoff, and
    /// `Transacted::Contended` when they kept cancelling.
    pub(crate) async fn transact(&self, items: Vec<TransactWriteItem>, tries: u32) -> StoreResult<Transacted> {
        for attempt in 0..tries {
            if attempt > 0 {
                let jitter = u64::from(gatehouse::values::secret::random_bytes::<1>()[0]) % 20;
                tokio::time::sleep(std::time::Duration::from_millis((10 << (attempt - 1).min(5)) + jitter)).await;
            }
            match self.client.transact_write_items().set_transact_items(Some(items.clone())).send().await {
                Ok(_) => return Ok(Transacted::Done),
                Err(e) => match cancellation_codes(&e) {
                    Some(codes) if codes.iter().any(|c| c == "ConditionalCheckFailed") => {
                        return Ok(Transacted::Refused(codes));
                    }
                    Some(codes) if codes.iter().any(|c| c == "TransactionConflict") => {}
                    _ => return Err(self.err(e)),
                },
            }
        }
        Ok(Transacted::Contended)
    }

    /// [`Table::update_if`], returning the item as updated (`ALL_NEW`); `None` if the condition
    /// failed.
    pub(crate) async fn update_if_returning(
        &self,
        key: Item,
        update: impl Into<String>,
        cond: Cond,
    ) -> StoreResult<Option<Item>> {
        let res = self.send_update(key, update, cond, Some(ReturnValue::AllNew)).await;
        Ok(self.conditional(res)?.and_then(|out| out.attributes))
    }

    /// The conditional `UpdateItem` behind [`Table::update_if`], for a caller that reads more of
    /// the error than whether the condition failed (see [`Table::conditional`]).
    pub(crate) async fn send_update(
        &self,
        key: Item,
        update: impl Into<String>,
        cond: Cond,
        returning: Option<ReturnValue>,
    ) -> Result<UpdateItemOutput, SdkError<UpdateItemError>> {
        let req = self.client.update_item().table_name(&self.name).set_key(Some(key)).update_expression(update);
        with_cond!(req, cond).set_return_values(returning).send().await
    }

    /// Deletes many items by key, 25 a request, retrying unprocessed ones.
    pub(crate) async fn delete_keys(&self, keys: Vec<Item>) -> StoreResult<usize> {
        let total = keys.len();
        let requests = keys
            .into_iter()
            .map(|k| {
                let delete = DeleteRequest::builder().set_key(Some(k)).build().expect("key is set");
                WriteRequest::builder().delete_request(delete).build()
            })
            .collect();
        self.batch_write(requests).await?;
        Ok(total)
    }

    /// Sends `requests` as `BatchWriteItem`s, 25 a request, retrying unprocessed ones with a
    /// growing wait; `Unavailable` when some are still unprocessed after eight tries.
    pub(crate) async fn batch_write(&self, requests: Vec<WriteRequest>) -> StoreResult<()> {
        for chunk in requests.chunks(25) {
            let mut pending = chunk.to_vec();
            for attempt in 0..8u32 {
                if pending.is_empty() {
                    break;
                }
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.name, pending)
                    .send()
                    .await
                    .map_err(|e| self.err(e))?;
                pending = out.unprocessed_items.and_then(|mut m| m.remove(&self.name)).unwrap_or_default();
                if !pending.is_empty() {
                    tokio::time::sleep(std::time::Duration::from_millis(20 << attempt)).await;
                }
            }
            if !pending.is_empty() {
                return Err(StoreError::Unavailable(format!("{}: batch write left items unprocessed", self.name)));
            }
        }
        Ok(())
    }

    /// The key attributes of an item, per the table's schema.
    pub(crate) fn key_of(&self, item: &Item) -> Item {
        let mut key = Item::new();
        for k in [Some(self.def.partition), self.def.sort].into_iter().flatten() {
            if let Some(v) = item.get(k.name) {
                key.insert(k.name.to_owned(), v.clone());
            }
        }
        key
    }
}

/// A write's condition expression with the `#name` and `:value` placeholders that it, and the
/// update expression sent with it, refer to.
pub(crate) struct Cond {
    expression: String,
    names: Option<HashMap<String, String>>,
    values: Option<Item>,
}

impl Cond {
    pub(crate) fn new(expression: impl Into<String>) -> Self {
        Self { expression: expression.into(), names: None, values: None }
    }

    /// Adds a clause the write must meet as well.
    pub(crate) fn and(mut self, clause: &str) -> Self {
        self.expression = format!("{} AND {clause}", self.expression);
        self
    }

    /// `placeholder` (`#…`) stands for the attribute `name` (one that is a reserved word).
    pub(crate) fn name(mut self, placeholder: &str, name: &str) -> Self {
        self.names.get_or_insert_default().insert(placeholder.to_owned(), name.to_owned());
        self
    }

    /// `placeholder` (`:…`) stands for `value`.
    pub(crate) fn value(mut self, placeholder: &str, value: AttributeValue) -> Self {
        self.values.get_or_insert_default().insert(placeholder.to_owned(), value);
        self
    }

    /// `:now_s`, `now` in epoch seconds, as [`LIVE`] and the other expiry comparisons use it.
    pub(crate) fn now_s(self, now: Timestamp) -> Self {
        self.value(":now_s", n(secs(now)))
    }
}

/// An update of `key` in the table `table`, with `cond`, as one item of a [`Table::transact`].
pub(crate) fn transact_update_in(table: &str, key: Item, update: &str, cond: Cond) -> StoreResult<TransactWriteItem> {
    let req = aws_sdk_dynamodb::types::Update::builder().table_name(table).set_key(Some(key)).update_expression(update);
    built(with_cond!(req, cond).build()).map(|u| TransactWriteItem::builder().update(u).build())
}

/// Whether a write failed its condition (and nothing else).
pub(crate) fn condition_failed<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    matches!(err, SdkError::ServiceError(se) if se.err().code() == Some("ConditionalCheckFailedException"))
}

/// The per-item cancellation reasons of a cancelled transaction, if that is what `err` is.
pub(crate) fn cancellation_codes(
    err: &SdkError<aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError, impl std::fmt::Debug>,
) -> Option<Vec<String>> {
    let SdkError::ServiceError(se) = err else { return None };
    match se.err() {
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(t) => {
            Some(t.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None").to_owned()).collect())
        }
        _ => None,
    }
}

/// What [`Table::transact`] did.
pub(crate) enum Transacted {
    Done,
    /// Cancelled because a condition failed: each item's reason, in order (`"None"` for the
    /// items that were not at fault).
    Refused(Vec<String>),
    /// Kept being cancelled by racing transactions on the same items.
    Contended,
}

/// A request part from its builder; a missing required field is the caller's bug, answered as
/// `Rejected`.
pub(crate) fn built<T, E: std::fmt::Display>(r: Result<T, E>) -> StoreResult<T> {
    r.map_err(|e| StoreError::Rejected(e.to_string()))
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn key1(name: &str, v: impl Into<String>) -> Item {
    HashMap::from([(name.to_owned(), s(v))])
}

pub(crate) fn ms(t: Timestamp) -> i64 {
    epoch_millis(t)
}

pub(crate) fn secs(t: Timestamp) -> i64 {
    epoch_seconds(t)
}

pub(crate) fn from_ms(table: &str, v: i64) -> StoreResult<Timestamp> {
    from_epoch_millis(v).ok_or_else(|| StoreError::corrupt(table, format!("timestamp {v} out of range")))
}

pub(crate) fn from_secs(table: &str, v: i64) -> StoreResult<Timestamp> {
    from_epoch_seconds(v).ok_or_else(|| StoreError::corrupt(table, format!("expiry {v} out of range")))
}

pub(crate) fn opt_from_ms(table: &str, v: Option<i64>) -> StoreResult<Option<Timestamp>> {
    v.map(|v| from_ms(table, v)).transpose()
}

pub(crate) fn opt_from_secs(table: &str, v: Option<i64>) -> StoreResult<Option<Timestamp>> {
    v.map(|v| from_secs(table, v)).transpose()
}

/// `LastEvaluatedKey` → opaque cursor.
pub(crate) fn cursor_from_key(key: Item) -> StoreResult<Cursor> {
    let json: serde_json::Value =
        serde_dynamo::from_item(key).map_err(|e| StoreError::Rejected(format!("cannot encode cursor: {e}")))?;
    Ok(Cursor::encode(&json))
}

/// Opaque cursor → `ExclusiveStartKey`. A cursor that does not decode is `Rejected`.
pub(crate) fn key_from_cursor(cursor: &Cursor) -> StoreResult<Item> {
    let json = cursor.decode().ok_or(StoreError::InvalidCursor)?;
    if !json.is_object() {
        return Err(StoreError::InvalidCursor);
    }
    serde_dynamo::to_item(json).map_err(|_| StoreError::InvalidCursor)
}

/// The condition "the item's `expires_at` has not passed" (absent = never expires).
pub(crate) const LIVE: &str = "(attribute_not_exists(expires_at) OR expires_at > :now_s)";

impl Table {
    /// A start key is exactly the index's and the table's key attributes, strings or numbers, in
    /// the partition being read: anything else is a cursor this listing did not hand out.
    fn check_start_key(&self, index: &str, partition: (&str, &str), key: &Item) -> StoreResult<()> {
        let idx = self.def.indexes.iter().find(|i| i.name == index).ok_or(StoreError::InvalidCursor)?;
        let expected: std::collections::BTreeSet<&str> =
            [Some(idx.partition), idx.sort, Some(self.def.partition), self.def.sort]
                .into_iter()
                .flatten()
                .map(|k| k.name)
                .collect();
        let names: std::collections::BTreeSet<&str> = key.keys().map(String::as_str).collect();
        let shapes_ok = key.values().all(|v| match v {
            AttributeValue::S(s) => !s.is_empty() && s.len() <= 2048,
            AttributeValue::N(n) => n.parse::<i64>().is_ok(),
            _ => false,
        });
        let same_partition = matches!(key.get(partition.0), Some(AttributeValue::S(p)) if p == partition.1);
        if names == expected && shapes_ok && same_partition { Ok(()) } else { Err(StoreError::InvalidCursor) }
    }

    /// One page of an index, newest (highest sort key) first. `decode` turns an item into a value,
    /// or `None` to leave it out (expired); pages are filled up to `limit` across DynamoDB pages,
    /// and the cursor is DynamoDB's own `LastEvaluatedKey`.
    pub(crate) async fn query_page<T>(
        &self,
        index: &str,
        partition: (&str, &str),
        limit: usize,
        after: Option<&Cursor>,
        decode: impl Fn(Item) -> StoreResult<Option<T>>,
    ) -> StoreResult<gatehouse::values::pagination::Page<T>> {
        let limit = limit.clamp(1, 1000);
        let mut items = Vec::new();
        let mut start = after.map(key_from_cursor).transpose()?;
        if let Some(key) = &start {
            self.check_start_key(index, partition, key)?;
        }
        loop {
            let remaining = i32::try_from(limit - items.len()).unwrap_or(i32::MAX);
            let out = self
                .client
                .query()
                .table_name(&self.name)
                .index_name(index)
                .key_condition_expression("#p = :p")
                .expression_attribute_names("#p", partition.0)
                .expression_attribute_values(":p", s(partition.1))
                .scan_index_forward(false)
                .limit(remaining)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| self.err(e))?;
            for item in out.items.unwrap_or_default() {
                if let Some(v) = decode(item)? {
                    items.push(v);
                }
            }
            start = out.last_evaluated_key;
            match start {
                None => return Ok(gatehouse::values::pagination::Page { items, next: None }),
                Some(key) if items.len() >= limit => {
                    return Ok(gatehouse::values::pagination::Page { items, next: Some(cursor_from_key(key)?) });
                }
                Some(key) => start = Some(key),
            }
        }
    }
}
