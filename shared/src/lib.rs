//! # gatehouse — the domain crate
//!
//! Laravel's system tables (users, sessions, password reset tokens, personal access tokens,
//! cache, cache locks, jobs, job batches, failed jobs) and Seed 004's cross-app sessions, as
//! domain types and one store trait per table, and the use cases over them. It reads bottom-up,
//! one tier a folder, and no import points up a tier or closes a circle
//! (`tests/tests/suite/layers.rs`):
//!
//! 1. [`values`]: parsed values (email, passwords, secrets, the clock): no store, no IO;
//! 2. [`tables`]: one module per table: its ids, records and store trait;
//! 3. [`memory`]: every store in memory (the local run's, and the contract tests' reference);
//! 4. the bundle: [`stores`] (built once), [`config`], [`keys`] (the app key), [`mail`],
//!    [`routes`], [`schema`], [`throttle`], [`telemetry`];
//! 5. [`queue`]: dispatching, the worker, retries, the dead-letter queue;
//! 6. [`services`]: the use cases (flows such as sign-in and registration; factors such as the
//!    password check, TOTP and passkeys; revocation, notices…).
//!
//! The DynamoDB, SQS and SES implementations are the `gatehouse-aws` crate (`aws/`): this one
//! links no AWS SDK (a test reads `cargo tree`), so its unit tests build without it.
//!
//! Invariants:
//! - this crate knows nothing of `lambda_http` or the AWS SDK;
//! - every read treats an item whose expiry has passed as absent, because DynamoDB's TTL deletes
//!   hours or days late; conditional writes treat it as absent too;
//! - secrets (passwords, session ids, token secrets, reset tokens) are never keys, never logged and
//!   never `Debug`-printed: their types print `[REDACTED]`.

pub mod values;

pub mod tables;

pub mod memory;

pub mod config;
pub mod hooks;
pub mod keys;
pub mod mail;
pub mod providers;
pub mod routes;
pub mod schema;
pub mod signing;
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
