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

pub mod access;
pub mod account_deletion;
pub mod auth;
pub mod cache;
pub mod cache_locks;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod cross_app;
pub mod cross_app_sessions;
pub mod dead_letters;
pub mod deadline;
pub mod email;
pub mod email_change;
pub mod email_verification;
pub mod error;
pub mod failed_jobs;
pub mod job_batches;
pub mod job_runs;
pub mod jobs;
pub mod keys;
pub mod mail;
pub mod memory;
pub mod page;
pub mod passkeys;
pub mod password;
pub mod password_broker;
pub mod password_reset_tokens;
pub mod personal_access_tokens;
pub mod queue;
pub mod routes;
pub mod schema;
pub mod secret;
pub mod sessions;
pub mod stores;
pub mod telemetry;
pub mod throttle;
pub mod token_issuer;
pub mod two_factor;
pub mod users;

pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use config::{Config, ConfigError};
pub use email::Email;
pub use error::StoreError;
pub use stores::Stores;

/// How many cases a property test runs: `GATEHOUSE_PROPTEST_CASES` when set (the long mode:
/// `GATEHOUSE_PROPTEST_CASES=10000 cargo test --workspace --lib`), else `default`.
#[cfg(test)]
pub(crate) fn proptest_cases(default: u32) -> u32 {
    std::env::var("GATEHOUSE_PROPTEST_CASES").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}
