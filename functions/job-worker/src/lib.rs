//! The job worker: SQS hands it a batch of messages; each is processed on its own and the answer
//! lists exactly the ones to retry (partial batch failures).

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use gatehouse::Config;
use gatehouse::mail::Mailer;
use gatehouse::queue::{Outcome, Worker};
use gatehouse::tables::jobs::QueueMessage;
use std::sync::Arc;
use tracing::Instrument;

/// The job-worker Lambda's whole life: configuration and clients from the environment, the
/// worker with gatehouse's jobs, then `extend` (your own jobs, with the configuration and the
/// mailer gatehouse's use), then SQS events until the process ends, as many at once as
/// `AWS_LAMBDA_MAX_CONCURRENCY` allows. `job-worker`'s `main` is `run(|_, _, _| {})`.
pub async fn run(
    extend: impl FnOnce(&mut Worker, &Arc<Config>, &Arc<dyn Mailer>),
) -> Result<(), lambda_runtime::Error> {
    gatehouse::telemetry::init_tracing();
    let boot = gatehouse_aws::Boot::from_env().await?;
    let config = Arc::new(boot.config);
    let mailer = gatehouse_aws::mailer(&config, &boot.sdk);
    let outbound = gatehouse_aws::outbound(&config, Some(&boot.sdk));
    let mut worker = gatehouse::services::job_registry::worker(boot.stores, config.clone(), mailer.clone(), outbound);
    extend(&mut worker, &config, &mailer);
    let worker = Arc::new(worker);
    lambda_runtime::run_concurrent(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<SqsEvent>| {
        let worker = Arc::clone(&worker);
        async move { Ok::<_, lambda_runtime::Error>(handle(&worker, event.payload).await) }
    }))
    .await
}

/// Handles one SQS event. Each record is processed independently (a panic in one job fails only
/// that record); records to retry are made visible again after their backoff and listed in the
/// response by message id.
pub async fn handle(worker: &Worker, event: SqsEvent) -> SqsBatchResponse {
    let mut failures = Vec::new();
    for record in event.records {
        let attribute = |name: &str| record.attributes.get(name).map(String::as_str);
        let Some(msg) = QueueMessage::delivered(
            record.message_id.clone(),
            record.receipt_handle.clone(),
            record.body.clone(),
            attribute("ApproximateReceiveCount"),
            attribute("SentTimestamp"),
        ) else {
            tracing::error!("an SQS record without id or receipt handle; it cannot be reported and is skipped");
            continue;
        };
        let (message_id, receive_count) = (msg.message_id.clone(), msg.receive_count);
        let span = tracing::info_span!("message", message_id = %message_id, receive_count);
        let outcome = worker.process(&msg).instrument(span).await;
        // A finished message is deleted by the event source (it is not listed); a retried one is
        // made visible again after its backoff and listed.
        if let Outcome::Retry { .. } = outcome {
            if let Err(e) = worker.settle(&msg, &outcome).await {
                tracing::warn!(error = %e, "could not set the retry delay; SQS's visibility timeout applies");
            }
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message_id;
            failures.push(failure);
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}

/// What this function's code does to AWS (see `gatehouse_login::PERMISSIONS`); receiving and
/// deleting are the SQS event source's, granted by SAM.
pub const PERMISSIONS: &[(&str, &[&str])] = &[
    // Reading the user; clearing a promised notice's or event's mark once it is handled
    // (UpdateItem); an account deletion's finishing job removes the user and its address
    // (`account_deletion::finish`: a transaction of two deletes).
    ("table/users", &["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]),
    // The deletion's job: the marks it keeps for promised notices and events, and the limiter
    // it clears.
    ("table/cache", gatehouse::schema::iam::CACHE),
    // The deletion's job pseudonymises the user's cross-app audit records, found by the index.
    ("table/cross_app_sessions/index/by_user", gatehouse::schema::iam::QUERY),
    ("table/password_reset_tokens", &["dynamodb:PutItem", "dynamodb:DeleteItem"]),
    ("table/job_runs", &["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"]),
    ("table/cache_locks", &["dynamodb:PutItem", "dynamodb:DeleteItem"]),
    ("table/failed_jobs", &["dynamodb:PutItem"]),
    ("table/job_batches", &["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]),
    ("queue/jobs", &["sqs:SendMessage", "sqs:ChangeMessageVisibility"]),
    ("ses", &["ses:SendEmail"]),
    // A queued revocation (`revocation::RevokeLater`): the register, and what it lists.
    ("table/credentials", &["dynamodb:Query", "dynamodb:BatchWriteItem"]),
    // A revocation ends the user's OAuth grants and consents too (`revocation::end_credential`).
    ("table/oauth_refresh_tokens", &["dynamodb:DeleteItem"]),
    ("table/oauth_consents", &["dynamodb:DeleteItem"]),
    // A deletion's job unlinks the user's identities; an identity notice reads the one it tells of.
    ("table/identities", &["dynamodb:GetItem", "dynamodb:DeleteItem"]),
    ("table/identities/index/by_user", &["dynamodb:Query"]),
    // Each recorded event is put on the deployment's EventBridge bus (#32).
    ("bus/EventBus", &["events:PutEvents"]),
    // Webhook deliveries (#32) read the endpoints: one, or the whole list.
    ("table/webhook_endpoints", &["dynamodb:GetItem", "dynamodb:Scan"]),
    // The event job records a promised event (`services::events`; a refused put reads the holder);
    // a delivery lists the user's events from its cursor (`services::deliveries`); a deletion's
    // job redacts them (`account_deletion::finish`).
    ("table/events", &["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem"]),
    ("table/sessions", &["dynamodb:DeleteItem"]),
    ("table/personal_access_tokens", &["dynamodb:DeleteItem"]),
    ("table/cross_app_handoffs", &["dynamodb:DeleteItem"]),
    ("table/cross_app_sessions", &["dynamodb:UpdateItem"]),
];
