//! Every store and the queue, built once and lent to the handlers.

use crate::memory;
use crate::schema;
use crate::tables::cache::CacheStore;
use crate::tables::cache_locks::CacheLockStore;
use crate::tables::credentials::CredentialStore;
use crate::tables::cross_app_sessions::CrossAppSessionStore;
use crate::tables::events::EventStore;
use crate::tables::failed_jobs::FailedJobStore;
use crate::tables::identities::IdentityStore;
use crate::tables::job_batches::JobBatchStore;
use crate::tables::job_runs::JobRunStore;
use crate::tables::jobs::JobQueue;
use crate::tables::oauth_access_tokens::OAuthAccessTokenStore;
use crate::tables::oauth_auth_codes::OAuthAuthCodeStore;
use crate::tables::oauth_clients::OAuthClientStore;
use crate::tables::oauth_consents::OAuthConsentStore;
use crate::tables::oauth_refresh_tokens::OAuthRefreshTokenStore;
use crate::tables::oauth_signing_keys::OAuthSigningKeyStore;
use crate::tables::password_reset_tokens::PasswordResetTokenStore;
use crate::tables::personal_access_tokens::PersonalAccessTokenStore;
use crate::tables::sessions::SessionStore;
use crate::tables::users::UserStore;
use crate::tables::webhook_endpoints::WebhookEndpointStore;
use crate::values::clock::Clock;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
pub struct Stores {
    pub users: Arc<dyn UserStore>,
    pub sessions: Arc<dyn SessionStore>,
    pub password_reset_tokens: Arc<dyn PasswordResetTokenStore>,
    pub personal_access_tokens: Arc<dyn PersonalAccessTokenStore>,
    pub cache: Arc<dyn CacheStore>,
    pub cache_locks: Arc<dyn CacheLockStore>,
    pub job_batches: Arc<dyn JobBatchStore>,
    pub failed_jobs: Arc<dyn FailedJobStore>,
    pub cross_app_sessions: Arc<dyn CrossAppSessionStore>,
    /// The register of every credential; the only way one is issued.
    pub credentials: Arc<dyn CredentialStore>,
    pub job_runs: Arc<dyn JobRunStore>,
    pub oauth_clients: Arc<dyn OAuthClientStore>,
    pub oauth_auth_codes: Arc<dyn OAuthAuthCodeStore>,
    pub oauth_access_tokens: Arc<dyn OAuthAccessTokenStore>,
    /// OAuth grants (refresh-token families): issued through `credentials` only.
    pub oauth_refresh_tokens: Arc<dyn OAuthRefreshTokenStore>,
    /// Consents: issued through `credentials` only.
    pub oauth_consents: Arc<dyn OAuthConsentStore>,
    /// The provider's keyring beyond the configured key ([`crate::signing`]).
    pub oauth_signing_keys: Arc<dyn OAuthSigningKeyStore>,
    /// Sign-in providers' accounts, (provider, subject) → user.
    pub identities: Arc<dyn IdentityStore>,
    /// Each user's events by number ([`crate::tables::events`]).
    pub events: Arc<dyn EventStore>,
    /// Where events are delivered (#32), with their sealed secrets.
    pub webhook_endpoints: Arc<dyn WebhookEndpointStore>,
    pub queue: Arc<dyn JobQueue>,
    pub clock: Arc<dyn Clock>,
    /// Where the data lives, for banners and logs: `memory` or `dynamodb+sqs`.
    pub backend: &'static str,
}

impl Stores {
    /// Everything in this process's memory: nothing to install, lost at exit.
    pub fn memory(clock: Arc<dyn Clock>) -> Self {
        let q = schema::JOBS_QUEUE;
        let users = Arc::new(memory::MemoryUsers::new());
        let sessions = Arc::new(memory::MemorySessions::new(clock.clone()).with_owners(users.clone()));
        let tokens = Arc::new(memory::MemoryPersonalAccessTokens::new(clock.clone()).with_owners(users.clone()));
        let cross_app = Arc::new(memory::MemoryCrossAppSessions::new(clock.clone()));
        let refresh_tokens = Arc::new(memory::MemoryOAuthRefreshTokens::new(clock.clone()));
        let consents = Arc::new(memory::MemoryOAuthConsents::new());
        let credentials = Arc::new(memory::MemoryCredentials::new(
            users.clone(),
            sessions.clone(),
            tokens.clone(),
            cross_app.clone(),
            refresh_tokens.clone(),
            consents.clone(),
        ));
        let identities = Arc::new(memory::MemoryIdentities::new(users.clone()));
        Self {
            users,
            sessions,
            password_reset_tokens: Arc::new(memory::MemoryPasswordResetTokens::new(clock.clone())),
            personal_access_tokens: tokens,
            cache: Arc::new(memory::MemoryCache::new(clock.clone())),
            cache_locks: Arc::new(memory::MemoryCacheLocks::new(clock.clone())),
            job_batches: Arc::new(memory::MemoryJobBatches::new(clock.clone())),
            failed_jobs: Arc::new(memory::MemoryFailedJobs::new(clock.clone())),
            cross_app_sessions: cross_app,
            credentials,
            job_runs: Arc::new(memory::MemoryJobRuns::new(clock.clone())),
            oauth_clients: Arc::new(memory::MemoryOAuthClients::new()),
            oauth_auth_codes: Arc::new(memory::MemoryOAuthAuthCodes::new(clock.clone())),
            oauth_access_tokens: Arc::new(memory::MemoryOAuthAccessTokens::new(clock.clone())),
            oauth_refresh_tokens: refresh_tokens,
            oauth_consents: consents,
            oauth_signing_keys: Arc::new(memory::MemoryOAuthSigningKeys::new(clock.clone())),
            identities,
            events: Arc::new(memory::MemoryEvents::new(clock.clone())),
            webhook_endpoints: Arc::new(memory::MemoryWebhookEndpoints::new()),
            queue: Arc::new(memory::MemoryQueue::new(
                clock.clone(),
                Duration::from_secs(q.visibility_timeout_secs.into()),
                q.max_receive_count,
            )),
            clock,
            backend: "memory",
        }
    }
}
