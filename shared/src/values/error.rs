//! The one small error every store maps into. The HTTP layer turns it into a status in one place;
//! the job worker turns it into "retry" or "fail".

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    /// A uniqueness or precondition was violated (e.g. the email is taken).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The store or queue could not be reached, or is throttling. Safe to retry.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// An item was found but does not decode into the domain type (missing or mistyped attribute).
    #[error("corrupt item in {table}: {reason}")]
    Corrupt { table: String, reason: String },
    /// A page cursor this listing did not hand out.
    #[error("the page cursor is not valid")]
    InvalidCursor,
    /// The store rejected the request for a reason retrying will not fix (missing table, bad
    /// request). The message says how to fix it.
    #[error("store rejected the request: {0}")]
    Rejected(String),
}

impl StoreError {
    pub fn corrupt(table: impl Into<String>, reason: impl ToString) -> Self {
        StoreError::Corrupt { table: table.into(), reason: reason.to_string() }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
