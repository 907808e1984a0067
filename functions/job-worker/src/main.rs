//! The `job-worker` Lambda (SQS event source with `ReportBatchItemFailures`): gatehouse's own
//! jobs. A worker with your jobs as well is the same `run` with them registered.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    gatehouse_job_worker::run(|_, _, _| {}).await
}
