//! The `job-worker` Lambda (SQS event source with `ReportBatchItemFailures`).

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    gatehouse::telemetry::init_tracing();
    let boot = gatehouse::aws::Boot::from_env().await?;
    let config = Arc::new(boot.config);
    let mailer = gatehouse_job_worker::mailer(&config, &boot.sdk);
    let worker = Arc::new(gatehouse_job_worker::worker(boot.stores, config, mailer));
    lambda_runtime::run_concurrent(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let worker = Arc::clone(&worker);
        async move { Ok::<_, Error>(gatehouse_job_worker::handle(&worker, event.payload).await) }
    }))
    .await
}
