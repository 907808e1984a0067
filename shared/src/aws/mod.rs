//! Everything that talks to AWS, and the only folder that imports `aws_sdk_*` (a test checks it):
//! the DynamoDB stores (one file per table), the SQS queue, the SES mailer, migrations, and the
//! mapping of SDK errors to [`crate::StoreError`].

pub mod dynamo;
pub mod error;
pub mod migrate;
pub mod migrations;
pub mod ses;
pub mod sqs;

use crate::clock::Clock;
use crate::config::Names;
use crate::schema;
use crate::stores::Stores;
use dynamo::Table;
use std::sync::Arc;
use std::time::Duration;

impl Stores {
    /// DynamoDB and SQS, as the SDK configuration says (region, credentials, `AWS_ENDPOINT_URL`).
    /// Makes no network call.
    pub fn aws(sdk: &aws_config::SdkConfig, names: &Names, clock: Arc<dyn Clock>) -> Self {
        let db = dynamo::Client::new(sdk);
        let sqs = sqs::Client::new(sdk);
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
            queue: Arc::new(sqs::SqsQueue::new(
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
/// `AWS_ENDPOINT_URL` for emulators), with [`TIMEOUTS`]. Credentials are resolved lazily, on the
/// first request.
pub async fn aws_sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(timeouts()).load().await
}

/// How long one AWS call may take: a connection in 3 s, an attempt in 3 s (a DynamoDB or SQS call
/// answers in milliseconds; an attempt that hangs is given up and retried by the SDK's standard
/// retry), the whole call with its retries in 8 s, under the functions' 10 s Lambda timeout, so a
/// stalled dependency answers 503 `unavailable` instead of the invocation being killed. The SDK's
/// own defaults have no attempt or operation timeout: one hung connection would hold a request
/// until Lambda ends it. A long poll widens its own attempt (`SqsQueue::receive`).
pub const TIMEOUTS: (Duration, Duration, Duration) =
    (Duration::from_secs(3), Duration::from_secs(3), Duration::from_secs(8));

/// [`TIMEOUTS`] as the SDK takes them.
pub fn timeouts() -> aws_config::timeout::TimeoutConfig {
    timeouts_waiting(Duration::ZERO)
}

/// [`TIMEOUTS`] with the attempt and the whole call widened by `wait`: a call that waits on
/// purpose (an SQS long poll) before it answers.
pub fn timeouts_waiting(wait: Duration) -> aws_config::timeout::TimeoutConfig {
    let (connect, attempt, operation) = TIMEOUTS;
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(connect)
        .operation_attempt_timeout(attempt + wait)
        .operation_timeout(operation + wait)
        .build()
}

/// What every Lambda function starts from: the configuration, the SDK configuration and the
/// stores on AWS (with the wall clock), read from the environment once at cold start.
pub struct Boot {
    pub config: crate::Config,
    pub sdk: aws_config::SdkConfig,
    pub stores: crate::Stores,
}

impl Boot {
    pub async fn from_env() -> Result<Self, crate::config::ConfigError> {
        let config = crate::Config::from_env()?;
        let sdk = aws_sdk_config().await;
        let stores = crate::Stores::aws(&sdk, &config.names, std::sync::Arc::new(crate::SystemClock));
        Ok(Self { config, sdk, stores })
    }
}

/// Re-exported so binaries need not depend on the SDK crates themselves.
pub use aws_config::SdkConfig;
pub use dynamo::Client as DynamoClient;
pub use sqs::Client as SqsClient;
