//! What every in-memory store is made of: a map behind a mutex, the injected clock, and
//! DynamoDB-shaped paging.

use crate::values::clock::Clock;
use crate::values::error::{StoreError, StoreResult};
use crate::values::pagination::{Cursor, Page};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

pub(crate) type SharedClock = Arc<dyn Clock>;

/// A map behind a mutex that shrugs off poisoning (a panicking test must not wedge the others).
pub(crate) struct Table<K, V>(Mutex<HashMap<K, V>>);

impl<K, V> Default for Table<K, V> {
    fn default() -> Self {
        Self(Mutex::new(HashMap::new()))
    }
}

impl<K, V> Table<K, V> {
    pub(crate) fn lock(&self) -> MutexGuard<'_, HashMap<K, V>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The position a cursor names (its `field`), or `Rejected` for a cursor this listing did not
/// make: the same answer DynamoDB gives for a bad `ExclusiveStartKey`.
pub(crate) fn cursor_position(after: Option<&Cursor>, field: &str) -> StoreResult<Option<String>> {
    after
        .map(|c| {
            c.decode()
                .and_then(|v| v.get(field).and_then(Value::as_str).map(str::to_owned))
                .ok_or(StoreError::InvalidCursor)
        })
        .transpose()
}

/// Pages a sorted list by the sort key of its last item, like DynamoDB's `LastEvaluatedKey`.
pub(crate) fn paginate<T>(
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
