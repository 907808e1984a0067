//! In-memory stores: the embedded default of the local run and the reference the contract tests
//! hold the DynamoDB stores to. Same semantics, same expiry rules, one mutex per table.
//!
//! One file per table, mirroring `aws/src/dynamo/` (the `gatehouse-aws` crate).

mod cache;
mod cache_locks;
mod credentials;
mod cross_app_sessions;
mod events;
mod failed_jobs;
mod identities;
mod job_batches;
mod job_runs;
mod jobs;
mod oauth_access_tokens;
mod oauth_auth_codes;
mod oauth_clients;
mod oauth_consents;
mod oauth_refresh_tokens;
mod oauth_signing_keys;
mod password_reset_tokens;
mod personal_access_tokens;
mod sessions;
mod table;
mod users;
mod webhook_endpoints;

pub use cache::MemoryCache;
pub use cache_locks::MemoryCacheLocks;
pub use credentials::MemoryCredentials;
pub use cross_app_sessions::MemoryCrossAppSessions;
pub use events::MemoryEvents;
pub use failed_jobs::MemoryFailedJobs;
pub use identities::MemoryIdentities;
pub use job_batches::MemoryJobBatches;
pub use job_runs::MemoryJobRuns;
pub use jobs::MemoryQueue;
pub use oauth_access_tokens::MemoryOAuthAccessTokens;
pub use oauth_auth_codes::MemoryOAuthAuthCodes;
pub use oauth_clients::MemoryOAuthClients;
pub use oauth_consents::MemoryOAuthConsents;
pub use oauth_refresh_tokens::MemoryOAuthRefreshTokens;
pub use oauth_signing_keys::MemoryOAuthSigningKeys;
pub use password_reset_tokens::MemoryPasswordResetTokens;
pub use personal_access_tokens::MemoryPersonalAccessTokens;
pub use sessions::MemorySessions;
pub use users::MemoryUsers;
pub use webhook_endpoints::MemoryWebhookEndpoints;
