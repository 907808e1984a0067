//! The `job-worker` Lambda (SQS event source with `ReportBatchItemFailures`).

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    gatehouse::telemetry::init_tracing();
    let config = Arc::new(gatehouse::Config::from_env()?);
    let sdk = gatehouse::aws::aws_sdk_config().await;
    let stores = gatehouse::Stores::aws(&sdk, &config.names, Arc::new(gatehouse::SystemClock));
    let mailer = gatehouse_job_worker::mailer(&config, &sdk);
    let worker = gatehouse_job_worker::worker(stores, config, mailer);
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let worker = &worker;
        async move { Ok::<_, Error>(gatehouse_job_worker::handle(worker, event.payload).await) }
    }))
    .await
}
