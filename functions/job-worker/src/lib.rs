//! The job worker: SQS hands it a batch of messages; each is processed on its own and the answer
//! lists exactly the ones to retry (partial batch failures).

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use gatehouse::config::MailerKind;
use gatehouse::mail::{LogMailer, Mailer};
use gatehouse::queue::{Dispatcher, Outcome, Worker, WorkerSettings};
use gatehouse::tables::jobs::QueueMessage;
use gatehouse::{Config, Stores, schema};
use std::sync::Arc;
use tracing::Instrument;

/// The worker with every job gatehouse defines registered. Add your own with
/// [`Worker::register`].
pub fn worker(stores: Stores, config: Arc<Config>, mailer: Arc<dyn Mailer>) -> Worker {
    let dispatcher = Dispatcher::for_config(stores.clone(), &config);
    let settings = WorkerSettings::new(config.names.queue(schema::JOBS_QUEUE.logical), config.failed_job_retention);
    let mut w = Worker::new(stores, dispatcher, settings);
    let verification =
        gatehouse::services::email_verification::SendVerification { config: config.clone(), mailer: mailer.clone() };
    w.register(gatehouse::services::email_verification::SEND_VERIFICATION, verification);
    let deleted = gatehouse::services::account_deletion::SendAccountDeleted { mailer: mailer.clone() };
    w.register(gatehouse::services::account_deletion::SEND_ACCOUNT_DELETED, deleted);
    let finish = gatehouse::services::account_deletion::FinishDeletion { config: config.clone() };
    w.register(gatehouse::services::account_deletion::FINISH_DELETION, finish);
    use gatehouse::services::email_change::{SEND_CONFIRMATION, SEND_NOTICE, SendConfirmation, SendNotice};
    w.register(SEND_CONFIRMATION, SendConfirmation { config: config.clone(), mailer: mailer.clone() });
    w.register(SEND_NOTICE, SendNotice { mailer: mailer.clone() });
    let second_factor = gatehouse::services::notices::SendNotice { mailer: mailer.clone() };
    w.register(gatehouse::services::notices::SEND_NOTICE, second_factor);
    gatehouse::services::password_broker::register_jobs(&mut w, config, mailer);
    w.register(gatehouse::services::revocation::REVOKE_LATER, gatehouse::services::revocation::RevokeLater);
    w
}

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
    let mailer = mailer(&config, &boot.sdk);
    let mut worker = worker(boot.stores, config.clone(), mailer.clone());
    extend(&mut worker, &config, &mailer);
    let worker = Arc::new(worker);
    lambda_runtime::run_concurrent(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<SqsEvent>| {
        let worker = Arc::clone(&worker);
        async move { Ok::<_, lambda_runtime::Error>(handle(&worker, event.payload).await) }
    }))
    .await
}

/// The mailer configuration asks for: SES, or the log mailer.
pub fn mailer(config: &Config, sdk: &gatehouse_aws::SdkConfig) -> Arc<dyn Mailer> {
    match config.mail.mailer {
        MailerKind::Ses => Arc::new(gatehouse_aws::ses::SesMailer::new(sdk, config.mail.from.clone())),
        MailerKind::Log => Arc::new(LogMailer::new()),
    }
}

/// Handles one SQS event. Each record is processed independently (a panic in one job fails only
/// that record); records to retry are made visible again after their backoff and listed in the
/// response by message id.
pub async fn handle(worker: &Worker, event: SqsEvent) -> SqsBatchResponse {
    let mut failures = Vec::new();
    for record in event.records {
        let (Some(message_id), Some(receipt_handle)) = (record.message_id.clone(), record.receipt_handle.clone())
        else {
            tracing::error!("an SQS record without id or receipt handle; it cannot be reported and is skipped");
            continue;
        };
        let receive_count = record.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1);
        let msg = QueueMessage {
            message_id: message_id.clone(),
            receipt_handle,
            body: record.body.unwrap_or_default(),
            receive_count,
            sent_at: gatehouse::tables::jobs::sent_timestamp(
                record.attributes.get("SentTimestamp").map(String::as_str),
            ),
        };
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
    ("table/users", &["dynamodb:GetItem"]),
    ("table/password_reset_tokens", &["dynamodb:PutItem", "dynamodb:DeleteItem"]),
    ("table/job_runs", &["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"]),
    ("table/cache_locks", &["dynamodb:PutItem", "dynamodb:DeleteItem"]),
    ("table/failed_jobs", &["dynamodb:PutItem"]),
    ("table/job_batches", &["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]),
    ("queue/jobs", &["sqs:SendMessage", "sqs:ChangeMessageVisibility"]),
    ("ses", &["ses:SendEmail"]),
    // A queued revocation (`revocation::RevokeLater`): the register, and what it lists.
    ("table/credentials", &["dynamodb:Query", "dynamodb:BatchWriteItem"]),
    ("table/sessions", &["dynamodb:DeleteItem"]),
    ("table/personal_access_tokens", &["dynamodb:DeleteItem"]),
    ("table/cross_app_handoffs", &["dynamodb:DeleteItem"]),
    ("table/cross_app_sessions", &["dynamodb:UpdateItem"]),
];
