//! A listing's page over HTTP: `?limit=` (1 to 100, 50 by default) and `?cursor=`, a store cursor
//! sealed under the app key to one listing's scope (its owner), so a forged, tampered or another
//! user's cursor is a 422 and never reaches the store.

use crate::{ApiError, Call};
use gatehouse::values::pagination::Cursor;

/// What a listing's request asks for, its cursor opened.
pub struct PageQuery {
    pub limit: usize,
    pub cursor: Option<Cursor>,
    scope: String,
}

impl PageQuery {
    /// The page `call` asks for in the listing `scope` (e.g. `tokens|<owner>`).
    pub fn of(call: &Call<'_>, scope: String) -> Result<Self, ApiError> {
        let limit = match call.query("limit") {
            None => 50,
            Some(l) => match l.parse::<usize>() {
                Ok(n) if (1..=100).contains(&n) => n,
                _ => return Err(ApiError::field("limit", "must be a whole number from 1 to 100")),
            },
        };
        let key = &call.app.config.app_key;
        let cursor = match call.query("cursor") {
            None => None,
            Some(c) => Some(key.open_cursor(&scope, &c).ok_or(gatehouse::StoreError::InvalidCursor)?),
        };
        Ok(Self { limit, cursor, scope })
    }

    /// The cursor to hand out for the page after this one, sealed to the same scope.
    pub fn next(&self, call: &Call<'_>, next: Option<Cursor>) -> Option<String> {
        next.map(|c| call.app.config.app_key.seal_cursor(&self.scope, &c))
    }
}
