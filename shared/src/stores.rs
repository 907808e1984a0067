//! Every store and the queue, built once and lent to the handlers.

use crate::batches::BatchStore;
use crate::cache::CacheStore;
use crate::clock::Clock;
use crate::config::Names;
use crate::credentials::CredentialStore;
use crate::cross_app::CrossAppStore;
use crate::dynamo::{self, Table};
use crate::failed_jobs::FailedJobStore;
use crate::job_runs::JobRunStore;
use crate::jobs::JobQueue;
use crate::locks::LockStore;
use crate::memory;
use crate::resets::ResetStore;
use crate::schema;
use crate::sessions::SessionStore;
use crate::tokens::TokenStore;
use crate::users::UserStore;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
pub struct Stores {
    pub users: Arc<dyn UserStore>,
    pub sessions: Arc<dyn SessionStore>,
    pub resets: Arc<dyn ResetStore>,
    pub tokens: Arc<dyn TokenStore>,
    pub cache: Arc<dyn CacheStore>,
    pub locks: Arc<dyn LockStore>,
    pub batches: Arc<dyn BatchStore>,
    pub failed_jobs: Arc<dyn FailedJobStore>,
    pub cross_app: Arc<dyn CrossAppStore>,
    /// The register of every credential; the only way one is issued.
    pub credentials: Arc<dyn CredentialStore>,
    pub job_runs: Arc<dyn JobRunStore>,
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
        let sessions = Arc::new(memory::MemorySessions::new(clock.clone()));
        let tokens = Arc::new(memory::MemoryTokens::new(clock.clone()));
        let cross_app = Arc::new(memory::MemoryCrossApp::new(clock.clone()));
        let credentials = Arc::new(memory::MemoryCredentials::new(
            users.clone(),
            sessions.clone(),
            tokens.clone(),
            cross_app.clone(),
        ));
        Self {
            users,
            sessions,
            resets: Arc::new(memory::MemoryResets::new(clock.clone())),
            tokens,
            cache: Arc::new(memory::MemoryCache::new(clock.clone())),
            locks: Arc::new(memory::MemoryLocks::new(clock.clone())),
            batches: Arc::new(memory::MemoryBatches::new(clock.clone())),
            failed_jobs: Arc::new(memory::MemoryFailedJobs::new(clock.clone())),
            cross_app,
            credentials,
            job_runs: Arc::new(memory::MemoryJobRuns::new(clock.clone())),
            queue: Arc::new(memory::MemoryQueue::new(
                clock.clone(),
                Duration::from_secs(q.visibility_timeout_secs.into()),
                q.max_receive_count,
            )),
            clock,
            backend: "memory",
        }
    }

    /// DynamoDB and SQS, as the SDK configuration says (region, credentials, `AWS_ENDPOINT_URL`).
    /// Makes no network call.
    pub fn aws(sdk: &aws_config::SdkConfig, names: &Names, clock: Arc<dyn Clock>) -> Self {
        let db = dynamo::Client::new(sdk);
        let sqs = crate::sqs::Client::new(sdk);
        let t = |def| Table::new(db.clone(), names, def, clock.clone());
        let sessions = Arc::new(dynamo::DynamoSessions::new(t(schema::SESSIONS)));
        let tokens = Arc::new(dynamo::DynamoTokens::new(t(schema::PERSONAL_ACCESS_TOKENS)));
        let cross_app =
            Arc::new(dynamo::DynamoCrossApp::new(t(schema::CROSS_APP_HANDOFFS), t(schema::CROSS_APP_SESSIONS)));
        let credentials = Arc::new(dynamo::DynamoCredentials::new(
            t(schema::CREDENTIALS),
            names.table(schema::USERS.logical),
            sessions.clone(),
            tokens.clone(),
            cross_app.clone(),
        ));
        Self {
            users: Arc::new(dynamo::DynamoUsers::new(t(schema::USERS))),
            sessions,
            resets: Arc::new(dynamo::DynamoResets::new(t(schema::PASSWORD_RESET_TOKENS))),
            tokens,
            cache: Arc::new(dynamo::DynamoCache::new(t(schema::CACHE))),
            locks: Arc::new(dynamo::DynamoLocks::new(t(schema::CACHE_LOCKS))),
            batches: Arc::new(dynamo::DynamoBatches::new(t(schema::JOB_BATCHES))),
            failed_jobs: Arc::new(dynamo::DynamoFailedJobs::new(t(schema::FAILED_JOBS))),
            cross_app,
            credentials,
            job_runs: Arc::new(dynamo::DynamoJobRuns::new(t(schema::JOB_RUNS))),
            queue: Arc::new(crate::sqs::SqsQueue::new(
                sqs,
                names.queue(schema::JOBS_QUEUE.logical),
                names.jobs_queue_url.clone(),
            )),
            clock,
            backend: "dynamodb+sqs",
        }
    }
}

/// The AWS SDK configuration from the standard environment (`AWS_REGION`, credentials,
/// `AWS_ENDPOINT_URL` for emulators). Credentials are resolved lazily, on the first request.
pub async fn aws_sdk_config() -> aws_config::SdkConfig {
    aws_config::load_from_env().await
}

pub use crate::dynamo::Client as DynamoClient;
pub use crate::sqs::Client as SqsClient;
/// Re-exported so binaries need not depend on the SDK crates themselves.
pub use aws_config::SdkConfig;
