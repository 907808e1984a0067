//! gatehouse's AWS adapters, the crate that links the AWS SDK so the domain crate need not (a test reads
//! `cargo tree -p gatehouse`): the DynamoDB stores (one file per table), the SQS queue, the SES mailer,
//! migrations, the Lambda boot, and the mapping of SDK errors to [`gatehouse::StoreError`].

pub mod dynamo;
pub mod error;
pub mod eventbridge;
pub mod hooks;
pub mod kms;
pub mod migrate;
pub mod migrations;
pub mod outbound;
pub mod ses;
pub mod sqs;

use dynamo::Table;
use gatehouse::config::Names;
use gatehouse::schema;
use gatehouse::stores::Stores;
use gatehouse::values::clock::Clock;
use std::sync::Arc;
use std::time::Duration;

/// Every store on DynamoDB and the queue on SQS, as the SDK configuration says (region,
/// credentials, `AWS_ENDPOINT_URL`). Makes no network call.
pub fn stores(sdk: &SdkConfig, names: &Names, clock: Arc<dyn Clock>) -> Stores {
    let queue = sqs::SqsQueue::new(
        sqs::Client::new(sdk),
        names.queue(schema::JOBS_QUEUE.logical),
        names.jobs_queue_url.clone(),
    );
    stores_with_queue(sdk, names, clock, Arc::new(queue))
}

/// DynamoDB alone, for a function that sends and receives no job (the token-check
/// authorizer only reads): its queue refuses every call ([`NoQueue`]), and its binary links
/// no SQS client (1.1 MB less; BENCHMARKS.md).
pub fn stores_without_queue(sdk: &SdkConfig, names: &Names, clock: Arc<dyn Clock>) -> Stores {
    stores_with_queue(sdk, names, clock, Arc::new(NoQueue))
}

fn stores_with_queue(
    sdk: &SdkConfig,
    names: &Names,
    clock: Arc<dyn Clock>,
    queue: Arc<dyn gatehouse::tables::jobs::JobQueue>,
) -> Stores {
    let db = dynamo::Client::new(sdk);
    let t = |def| Table::new(db.clone(), names, def, clock.clone());
    let users_table = names.table(schema::USERS.logical);
    let sessions = Arc::new(dynamo::DynamoSessions::new(t(schema::SESSIONS), users_table.clone()));
    let tokens = Arc::new(dynamo::DynamoPersonalAccessTokens::new(t(schema::PERSONAL_ACCESS_TOKENS), users_table));
    let cross_app =
        Arc::new(dynamo::DynamoCrossAppSessions::new(t(schema::CROSS_APP_HANDOFFS), t(schema::CROSS_APP_SESSIONS)));
    let refresh_tokens = Arc::new(dynamo::DynamoOAuthRefreshTokens::new(t(schema::OAUTH_REFRESH_TOKENS)));
    let consents = Arc::new(dynamo::DynamoOAuthConsents::new(t(schema::OAUTH_CONSENTS)));
    let credentials = Arc::new(dynamo::DynamoCredentials::new(
        t(schema::CREDENTIALS),
        t(schema::USERS),
        sessions.clone(),
        tokens.clone(),
        cross_app.clone(),
        refresh_tokens.clone(),
        consents.clone(),
    ));
    Stores {
        users: Arc::new(dynamo::DynamoUsers::new(t(schema::USERS))),
        sessions,
        password_reset_tokens: Arc::new(dynamo::DynamoPasswordResetTokens::new(t(schema::PASSWORD_RESET_TOKENS))),
        personal_access_tokens: tokens,
        cache: Arc::new(dynamo::DynamoCache::new(t(schema::CACHE))),
        cache_locks: Arc::new(dynamo::DynamoCacheLocks::new(t(schema::CACHE_LOCKS))),
        job_batches: Arc::new(dynamo::DynamoJobBatches::new(t(schema::JOB_BATCHES))),
        failed_jobs: Arc::new(dynamo::DynamoFailedJobs::new(t(schema::FAILED_JOBS))),
        cross_app_sessions: cross_app,
        credentials,
        job_runs: Arc::new(dynamo::DynamoJobRuns::new(t(schema::JOB_RUNS))),
        oauth_clients: Arc::new(dynamo::DynamoOAuthClients::new(t(schema::OAUTH_CLIENTS))),
        oauth_auth_codes: Arc::new(dynamo::DynamoOAuthAuthCodes::new(t(schema::OAUTH_AUTH_CODES))),
        oauth_access_tokens: Arc::new(dynamo::DynamoOAuthAccessTokens::new(t(schema::OAUTH_ACCESS_TOKENS))),
        oauth_refresh_tokens: refresh_tokens,
        oauth_consents: consents,
        oauth_signing_keys: Arc::new(dynamo::DynamoOAuthSigningKeys::new(t(schema::OAUTH_SIGNING_KEYS))),
        identities: Arc::new(dynamo::DynamoIdentities::new(t(schema::IDENTITIES), t(schema::USERS))),
        events: Arc::new(dynamo::DynamoEvents::new(t(schema::EVENTS))),
        webhook_endpoints: Arc::new(dynamo::DynamoWebhookEndpoints::new(t(schema::WEBHOOK_ENDPOINTS))),
        queue,
        clock,
        backend: "dynamodb+sqs",
    }
}

/// The mailer configuration asks for: SES, or the log mailer.
pub fn mailer(config: &gatehouse::Config, sdk: &SdkConfig) -> Arc<dyn gatehouse::mail::Mailer> {
    match config.mail.mailer {
        gatehouse::config::MailerKind::Ses => Arc::new(ses::SesMailer::new(sdk, config.mail.from.clone())),
        gatehouse::config::MailerKind::Log => Arc::new(gatehouse::mail::LogMailer::new()),
    }
}

/// Where the job worker sends recorded events: webhooks through the process's HTTPS client, and
/// the EventBridge bus `GATEHOUSE_EVENT_BUS` names, if any.
pub fn outbound(config: &gatehouse::Config, sdk: Option<&SdkConfig>) -> gatehouse::services::deliveries::Outbound {
    let bus = match (&config.event_bus, sdk) {
        (Some(name), Some(sdk)) => Some(Arc::new(eventbridge::EventBridgeBus::new(sdk, name.clone()))
            as Arc<dyn gatehouse::services::deliveries::Bus>),
        _ => None,
    };
    gatehouse::services::deliveries::Outbound { post: outbound::poster(), bus }
}

/// The AWS SDK configuration from the standard environment (`AWS_REGION`, credentials,
/// `AWS_ENDPOINT_URL` for emulators), with [`TIMEOUTS`]. Credentials are resolved lazily, on the
/// first request.
pub async fn aws_sdk_config() -> SdkConfig {
    sdk_defaults().timeout_config(timeouts()).load().await
}

/// `aws_config::defaults` with [`http_client`]: the start of every SDK configuration, the tests'
/// too (the SDK crates are built without a client of their own).
pub fn sdk_defaults() -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http_client())
}

/// The SDK's own HTTP client (hyper 1, rustls, the system's trust roots, plain HTTP for an
/// emulator) with rustls on `ring` instead of the SDK default's aws-lc: the same TLS 1.2/1.3
/// for AWS endpoints, about 2 MB less in every binary.
pub fn http_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https()
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
    pub config: gatehouse::Config,
    pub sdk: SdkConfig,
    pub stores: Stores,
}

impl Boot {
    pub async fn from_env() -> Result<Self, gatehouse::config::ConfigError> {
        Self::with_stores(stores).await
    }

    /// [`Boot::from_env`] for a function that sends and receives no job: no SQS client
    /// ([`stores_without_queue`]).
    pub async fn without_queue_from_env() -> Result<Self, gatehouse::config::ConfigError> {
        Self::with_stores(stores_without_queue).await
    }

    async fn with_stores(
        stores: fn(&SdkConfig, &Names, Arc<dyn Clock>) -> Stores,
    ) -> Result<Self, gatehouse::config::ConfigError> {
        let config = gatehouse::Config::from_env()?;
        let sdk = aws_sdk_config().await;
        let stores = stores(&sdk, &config.names, Arc::new(gatehouse::SystemClock));
        Ok(Self { config, sdk, stores })
    }
}

/// The job queue of a function that has none: every call is refused as the programming error it
/// would be (`Rejected`, a 500 where it surfaces), never answered as if it had worked.
pub struct NoQueue;

impl NoQueue {
    fn refuse<T>(&self) -> gatehouse::values::error::StoreResult<T> {
        Err(gatehouse::values::error::StoreError::Rejected("this function was built without a job queue".into()))
    }
}

#[async_trait::async_trait]
impl gatehouse::tables::jobs::JobQueue for NoQueue {
    async fn send(&self, _: &str, _: Duration) -> gatehouse::values::error::StoreResult<String> {
        self.refuse()
    }
    async fn receive(
        &self,
        _: u32,
        _: Duration,
        _: Option<Duration>,
    ) -> gatehouse::values::error::StoreResult<Vec<gatehouse::tables::jobs::QueueMessage>> {
        self.refuse()
    }
    async fn change_visibility(&self, _: &str, _: Duration) -> gatehouse::values::error::StoreResult<()> {
        self.refuse()
    }
    async fn delete(&self, _: &str) -> gatehouse::values::error::StoreResult<()> {
        self.refuse()
    }
    async fn approximate_len(&self) -> gatehouse::values::error::StoreResult<u64> {
        self.refuse()
    }
}

/// Re-exported so binaries need not depend on the SDK crates themselves.
pub use aws_config::SdkConfig;
pub use dynamo::Client as DynamoClient;
pub use sqs::Client as SqsClient;

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse::tables::jobs::JobQueue;
    use gatehouse::values::error::StoreError;

    #[tokio::test]
    async fn a_function_without_a_queue_refuses_every_queue_call() {
        let q = NoQueue;
        let d = Duration::ZERO;
        assert!(matches!(q.send("{}", d).await, Err(StoreError::Rejected(_))));
        assert!(matches!(q.receive(1, d, None).await, Err(StoreError::Rejected(_))));
        assert!(matches!(q.change_visibility("r", d).await, Err(StoreError::Rejected(_))));
        assert!(matches!(q.delete("r").await, Err(StoreError::Rejected(_))));
        assert!(matches!(q.approximate_len().await, Err(StoreError::Rejected(_))));
    }

    /// The SDK crates are built without an HTTP client of their own: the one every configuration
    /// gets must speak TLS to an `https` endpoint (rustls on ring compiled in and chosen; no
    /// emulator test does, they speak plain HTTP). A local listener reads what arrives: a TLS
    /// handshake record carrying a ClientHello.
    #[tokio::test]
    async fn the_sdk_client_speaks_tls_to_https_endpoints() {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a local port");
        let port = listener.local_addr().expect("its address").port();
        let hello = tokio::spawn(async move {
            // Bounded: a client that never connects fails the test instead of hanging it.
            let accepted = tokio::time::timeout(Duration::from_secs(10), listener.accept()).await;
            let (mut conn, _) = accepted.expect("the client connects within 10 s").expect("a connection");
            let mut head = [0u8; 6];
            conn.read_exact(&mut head).await.expect("the first bytes");
            head
        });
        let sdk = sdk_defaults()
            .endpoint_url(format!("https://127.0.0.1:{port}"))
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("k", "s", None, None, "test"))
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .timeout_config(timeouts_waiting(Duration::ZERO))
            .load()
            .await;
        let call = dynamo::Client::new(&sdk).list_tables().send();
        let (answer, head) = tokio::join!(call, hello);
        let head = head.expect("the listener");
        assert!(answer.is_err(), "nothing answered TLS, so the call cannot succeed");
        // A handshake record (22), TLS 1.x (3, x), then a ClientHello (1).
        assert_eq!((head[0], head[1], head[5]), (22, 3, 1), "not a TLS ClientHello: {head:?}");
    }
}
