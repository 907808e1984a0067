//! Test support: a [`TestEnv`] per test with its own stores, on the in-memory backend or on the
//! local AWS emulator (its own table prefix and queue names, so tests run in parallel).

use gatehouse::config::Names;
use gatehouse::{ManualClock, Stores};
use gatehouse_aws::{DynamoClient, SqsClient};
use std::sync::Arc;
use std::time::Duration;

/// The emulator's endpoint, from `GATEHOUSE_TEST_AWS_ENDPOINT` (set by `.ci/run`) or
/// `AWS_ENDPOINT_URL`.
pub fn emulator_endpoint() -> String {
    std::env::var("GATEHOUSE_TEST_AWS_ENDPOINT").or_else(|_| std::env::var("AWS_ENDPOINT_URL")).unwrap_or_else(|_| {
        panic!(
            "\n\nThese tests need a local AWS emulator and none is configured.\n\
                 Run the whole suite with `bash .ci/run` (it installs and starts moto), or start one yourself:\n\
                 \x20   python3 -m venv .venv-moto && .venv-moto/bin/pip install 'moto[server]'\n\
                 \x20   .venv-moto/bin/moto_server -H 127.0.0.1 -p 5055 &\n\
                 \x20   GATEHOUSE_TEST_AWS_ENDPOINT=http://127.0.0.1:5055 cargo test\n\n"
        )
    })
}

/// SDK configuration pointing at the emulator with dummy credentials.
pub async fn emulator_sdk_config() -> gatehouse_aws::SdkConfig {
    sdk_config_at(&emulator_endpoint(), true).await
}

/// The SDK configuration for the emulator at `endpoint` (itself, or a proxy in front of it),
/// with the SDK's retries or without them (to count calls exactly).
pub async fn sdk_config_at(endpoint: &str, retries: bool) -> gatehouse_aws::SdkConfig {
    let config = sdk_loader(endpoint);
    let config = if retries { config } else { config.retry_config(aws_config::retry::RetryConfig::disabled()) };
    config.load().await
}

/// The SDK configuration for the emulator at `endpoint` with the standard retries and `timeouts`.
pub async fn sdk_config_with(endpoint: &str, timeouts: aws_config::timeout::TimeoutConfig) -> gatehouse_aws::SdkConfig {
    sdk_loader(endpoint).timeout_config(timeouts).load().await
}

fn sdk_loader(endpoint: &str) -> aws_config::ConfigLoader {
    let endpoint = endpoint.to_owned();
    let probe = format!("{}/moto-api/", endpoint.trim_end_matches('/'));
    if std::net::TcpStream::connect_timeout(
        &endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .unwrap_or_else(|_| panic!("emulator endpoint {endpoint} is not host:port")),
        Duration::from_secs(2),
    )
    .is_err()
    {
        panic!(
            "\n\nThe AWS emulator at {endpoint} does not answer ({probe}).\nStart it (see `.ci/run`) or run the suite with `bash .ci/run`.\n\n"
        );
    }
    gatehouse_aws::sdk_defaults()
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "gatehouse-tests"))
}

/// One test's world: stores, the clock they read, and (on the emulator) the names and clients.
pub struct TestEnv {
    pub stores: Stores,
    pub clock: ManualClock,
    pub aws: Option<AwsEnv>,
}

pub struct AwsEnv {
    pub names: Names,
    pub dynamo: DynamoClient,
    pub sqs: SqsClient,
}

impl TestEnv {
    pub fn memory() -> Self {
        let clock = ManualClock::starting_now();
        Self { stores: Stores::memory(Arc::new(clock.clone())), clock, aws: None }
    }

    /// Fresh tables and queues under a unique prefix on the emulator, migrated.
    pub async fn aws() -> Self {
        Self::aws_at(&emulator_endpoint(), true).await
    }

    /// On the emulator reached at `endpoint` (a proxy in front of it, see [`wire`]), with the
    /// SDK's retries or without them.
    pub async fn aws_at(endpoint: &str, retries: bool) -> Self {
        Self::aws_with(&sdk_config_at(endpoint, retries).await).await
    }

    /// On the emulator as `sdk` reaches it.
    pub async fn aws_with(sdk: &gatehouse_aws::SdkConfig) -> Self {
        let sdk = sdk.clone();
        let prefix = format!("t{}-", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let names = Names { table_prefix: prefix.clone(), queue_prefix: prefix, jobs_queue_url: None };
        let dynamo = DynamoClient::new(&sdk);
        let sqs = SqsClient::new(&sdk);
        gatehouse_aws::migrate::migrate(&dynamo, &sqs, &names).await.expect("migrate on the emulator");
        let clock = ManualClock::starting_now();
        let stores = gatehouse_aws::stores(&sdk, &names, Arc::new(clock.clone()));
        Self { stores, clock, aws: Some(AwsEnv { names, dynamo, sqs }) }
    }

    pub fn clock_now(&self) -> gatehouse::Timestamp {
        gatehouse::Clock::now(&self.clock)
    }

    pub fn is_aws(&self) -> bool {
        self.aws.is_some()
    }

    /// Moves time on: the clock every store reads, and, for SQS (which keeps its own time),
    /// the wall clock too.
    pub async fn advance(&self, by: Duration) {
        self.clock.advance(chrono::Duration::from_std(by).expect("small duration"));
        if self.is_aws() {
            tokio::time::sleep(by).await;
        }
    }
}
pub mod counting;
pub mod http;
pub mod jobs;
pub mod passkey;
pub mod receiver;
pub mod runtime_api;
pub mod template;
pub mod wire;

/// Every item of the test's tables on the emulator as text (`<table>: <item>`), or of one logical
/// table (`Some("users")`): what a scan for leftovers or plaintext secrets reads.
pub async fn scan_items(env: &TestEnv, only: Option<&str>) -> Vec<String> {
    let names = &env.aws.as_ref().expect("on the emulator").names;
    let client = aws_sdk_dynamodb::Client::new(&emulator_sdk_config().await);
    let tables = match only {
        Some(logical) => vec![names.table(logical)],
        None => {
            // Every page of the listing: an emulator that served other tests holds many stacks' tables.
            let (mut tables, mut after) = (Vec::new(), None);
            loop {
                let page =
                    client.list_tables().set_exclusive_start_table_name(after).send().await.expect("list tables");
                tables.extend(page.table_names.unwrap_or_default());
                after = page.last_evaluated_table_name;
                if after.is_none() {
                    break;
                }
            }
            tables.retain(|n| n.starts_with(names.table_prefix.as_str()));
            tables
        }
    };
    let mut items = Vec::new();
    for table in &tables {
        let mut start = None;
        loop {
            let page = client.scan().table_name(table).set_exclusive_start_key(start).send().await.expect("scan");
            items.extend(page.items.unwrap_or_default().iter().map(|i| format!("{table}: {i:?}")));
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
    }
    items
}
