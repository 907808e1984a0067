//! # gatehouse — the domain crate
//!
//! Laravel's system tables (users, sessions, password reset tokens, personal access tokens,
//! cache, cache locks, jobs, job batches, failed jobs) and Seed 004's cross-app sessions, as
//! domain types and one store trait per table. Every store has two implementations: an in-memory
//! one ([`memory`]) and a DynamoDB one ([`aws::dynamo`]); the jobs table is a queue with an in-memory
//! and an SQS implementation ([`aws::sqs`]).
//!
//! Invariants:
//! - this crate knows nothing of `lambda_http`; only [`aws`] imports `aws_sdk_*` (a test checks it);
//! - every read treats an item whose expiry has passed as absent, because DynamoDB's TTL deletes
//!   hours or days late; conditional writes treat it as absent too;
//! - secrets (passwords, session ids, token secrets, reset tokens) are never keys, never logged and
//!   never `Debug`-printed: their types print `[REDACTED]`.

pub mod values;

pub mod tables;

pub mod memory;

pub mod config;
pub mod keys;
pub mod mail;
pub mod routes;
pub mod schema;
pub mod stores;
pub mod telemetry;
pub mod throttle;

pub mod queue;

pub mod services;

pub use config::{Config, ConfigError};
pub use stores::Stores;
pub use values::clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use values::email::Email;
pub use values::error::StoreError;

/// How many cases a property test runs: `GATEHOUSE_PROPTEST_CASES` when set (the long mode:
/// `GATEHOUSE_PROPTEST_CASES=10000 cargo test --workspace --lib`), else `default`.
#[cfg(test)]
pub(crate) fn proptest_cases(default: u32) -> u32 {
    std::env::var("GATEHOUSE_PROPTEST_CASES").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}
