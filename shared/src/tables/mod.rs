//! Tables: one module per Laravel table (and gatehouse's own), each with its ids, its records, and
//! the store trait that says what every backend must do. A table imports values and the tables
//! below it, never a service, the queue or the store bundle.

pub mod cache;
pub mod cache_locks;
pub mod credential_ref;
pub mod credentials;
pub mod cross_app_sessions;
pub mod events;
pub mod failed_jobs;
pub mod identities;
pub mod job_batches;
pub mod job_runs;
pub mod jobs;
pub mod oauth_access_tokens;
pub mod oauth_auth_codes;
pub mod oauth_clients;
pub mod oauth_consents;
pub mod oauth_refresh_tokens;
pub mod oauth_signing_keys;
pub mod password_reset_tokens;
pub mod personal_access_tokens;
pub mod sessions;
pub mod users;
pub mod webhook_endpoints;
