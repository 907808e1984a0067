//! `gatehouse`: the operator's command, like Laravel's artisan.

mod cors;
mod migrating;
mod oauth_admin;
mod openapi;
mod queue_admin;
mod serve;
mod users;
mod webhooks;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use gatehouse::queue::{Dispatcher, retry_failed};
use gatehouse::{Config, Stores, SystemClock};
use gatehouse_aws::SqsClient;
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "gatehouse", version, about = "Laravel's system tables on DynamoDB and SQS")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every route and run the job worker, on 127.0.0.1. In memory unless `--aws` (or
    /// `AWS_ENDPOINT_URL`) points it at DynamoDB and SQS.
    Serve {
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Use DynamoDB and SQS (as the AWS environment configures) instead of memory.
        #[arg(long)]
        aws: bool,
        /// Deliver every event to this URL as signed webhooks (repeatable): the endpoint is added
        /// at start, its secret `GATEHOUSE_WEBHOOK_SECRET` (a `whsec_` secret) or a new one,
        /// printed once. On `--aws`, an endpoint already there for the URL is kept.
        #[arg(long = "webhook", value_name = "URL")]
        webhooks: Vec<String>,
    },
    /// Print the OpenAPI document generated from the route tables and wire types (`--output`
    /// writes it to a file instead, e.g. `--output openapi.json` to update the committed one).
    Openapi {
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
    /// Print a new P-256 signing key (PKCS#8 PEM) for GATEHOUSE_OAUTH_SIGNING_KEY, and its kid on
    /// stderr. On AWS the template's KMS key signs instead, and never leaves KMS.
    #[command(name = "oauth:key")]
    OAuthKey,
    #[command(flatten)]
    Operate(Operation),
}

/// The operator commands: they act on the DynamoDB tables and SQS queue the environment configures.
#[derive(Subcommand)]
enum Operation {
    /// Create the tables and queues that are missing (idempotent); `migrate status` only reports.
    Migrate {
        #[command(subcommand)]
        action: Option<MigrateAction>,
    },
    /// List failed jobs, newest first, a page at a time.
    #[command(name = "queue:failed")]
    QueueFailed {
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// The cursor printed under the previous page.
        #[arg(long)]
        cursor: Option<String>,
        /// One JSON document (`jobs`, `next_cursor`) instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// List the messages SQS dead-lettered (received 25 times without finishing: the worker
    /// crashed or timed out on them); they stay in the dead-letter queue.
    #[command(name = "queue:dlq")]
    QueueDlq {
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// One JSON document (`messages`) instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Move dead-lettered jobs back onto the queue as fresh jobs: `--all`, or one by uuid.
    #[command(name = "queue:dlq-redrive")]
    QueueDlqRedrive {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        uuid: Option<String>,
        #[arg(long)]
        all: bool,
        /// Look at no more than this many messages.
        #[arg(long, default_value_t = 10_000)]
        limit: usize,
    },
    /// The queue's health: waiting, in flight, delayed, dead-lettered. Exits 1 when a limit given
    /// is crossed (for cron or CI).
    #[command(name = "queue:monitor")]
    QueueMonitor {
        /// Most messages waiting.
        #[arg(long)]
        max: Option<u64>,
        /// Most messages in flight.
        #[arg(long)]
        max_in_flight: Option<u64>,
        /// Most messages in the dead-letter queue.
        #[arg(long)]
        max_dlq: Option<u64>,
        /// Most seconds the oldest waiting job may have waited (SQS's ApproximateAgeOfOldestMessage,
        /// read from CloudWatch: a minute or more late, and absent for an idle queue).
        #[arg(long)]
        max_age: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// The batches, newest first, a page at a time.
    #[command(name = "queue:batches")]
    QueueBatches {
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// The cursor printed under the previous page.
        #[arg(long)]
        cursor: Option<String>,
        /// One JSON document (`batches`, `next_cursor`) instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// One batch: progress, failed job ids, options, times.
    #[command(name = "queue:batch")]
    QueueBatch {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Cancel a batch: its remaining jobs are skipped when they run.
    #[command(name = "queue:batch-cancel")]
    QueueBatchCancel { id: String },
    /// Put a failed job (or `all` of them) back on the queue.
    #[command(name = "queue:retry")]
    QueueRetry { uuid: String },
    /// Delete one failed job record.
    #[command(name = "queue:forget")]
    QueueForget { uuid: String },
    /// Delete every failed job record.
    #[command(name = "queue:flush")]
    QueueFlush,
    /// Put every failed job of a batch back on the queue.
    #[command(name = "queue:retry-batch")]
    QueueRetryBatch { id: String },
    /// Turn off a user's two-factor authentication (a lost device and no recovery code left):
    /// the secret and recovery codes are deleted, the action is logged and the user is mailed.
    #[command(name = "user:reset-two-factor")]
    UserResetTwoFactor { email: String },
    /// Show one user: ids, times, verified, two-factor, disabled, live sessions and tokens (no
    /// hash, secret or token is ever printed).
    #[command(name = "user:show")]
    UserShow {
        email: String,
        /// One JSON document instead of the readable listing.
        #[arg(long)]
        json: bool,
    },
    /// Disable a user at once: every sign-in refused (password, second factor, token issue) and
    /// every session, token, handoff and cross-app session revoked. Safe to run again.
    #[command(name = "user:disable")]
    UserDisable { email: String },
    /// Allow a disabled user to sign in again (nothing revoked comes back).
    #[command(name = "user:enable")]
    UserEnable { email: String },
    /// Disconnect a user's accounts at an identity provider (social sign-in): they no longer
    /// sign in to it; the user is mailed.
    #[command(name = "user:unlink")]
    UserUnlink {
        email: String,
        /// The provider's id, as in GATEHOUSE_FEDERATION_PROVIDERS.
        provider: String,
    },
    /// Revoke every session, token, handoff and cross-app session of a user (the account stays
    /// usable: they sign in again).
    #[command(name = "user:sign-out-everywhere")]
    UserSignOutEverywhere { email: String },
    /// Make an OAuth client (Passport's `passport:client`): prints `client_id` and, once, the
    /// `client_secret` of a confidential client.
    #[command(name = "oauth:client")]
    OAuthClient {
        /// Shown on the consent page.
        #[arg(long)]
        name: String,
        /// An exact redirect URI (repeat for several).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// Where RP-initiated logout may return (repeat for several).
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// authorization_code, refresh_token, client_credentials (repeat; default the first two).
        #[arg(long = "grant", default_values_t = ["authorization_code".to_owned(), "refresh_token".to_owned()])]
        grants: Vec<String>,
        /// The scopes it may ask for: openid, profile, email, offline_access and abilities.
        #[arg(long = "scope", default_values_t = ["openid".to_owned(), "profile".to_owned(), "email".to_owned(), "offline_access".to_owned()])]
        scopes: Vec<String>,
        /// A public client (a SPA or a mobile app): no secret, PKCE alone.
        #[arg(long)]
        public: bool,
        /// Your own app: consent is not asked.
        #[arg(long)]
        first_party: bool,
        #[arg(long)]
        json: bool,
    },
    /// List the OAuth clients (never a secret).
    #[command(name = "oauth:clients")]
    OAuthClients {
        #[arg(long)]
        json: bool,
    },
    /// A new secret for a confidential client; the old one keeps working for `--overlap-hours`.
    #[command(name = "oauth:client-secret")]
    OAuthClientSecret {
        client_id: String,
        #[arg(long, default_value_t = 24)]
        overlap_hours: i64,
        #[arg(long)]
        json: bool,
    },
    /// Revoke an OAuth client: it can no longer authenticate, refresh or be authorized.
    #[command(name = "oauth:client-revoke")]
    OAuthClientRevoke { client_id: String },
    /// Rotate the OAuth signing key: adds the next key to the keyring (published at once, signing
    /// from `--activate-in-minutes`, at least 10), and retires the earlier ones once their
    /// longest token has expired. `--kms` makes a KMS key (tagged for this deployment); `--sealed`
    /// a P-256 key sealed with the app key.
    #[command(name = "oauth:key-rotate")]
    OAuthKeyRotate {
        /// A KMS key (what a deployment on AWS uses).
        #[arg(long, required_unless_present = "sealed", conflicts_with = "sealed")]
        kms: bool,
        /// A key sealed with the app key (GATEHOUSE_APP_KEY must be the deployment's).
        #[arg(long)]
        sealed: bool,
        #[arg(long, default_value_t = 10)]
        activate_in_minutes: i64,
        #[arg(long)]
        json: bool,
    },
    /// The OAuth signing keyring: which key signs, which is next, which are retiring.
    #[command(name = "oauth:keys")]
    OAuthKeys {
        #[arg(long)]
        json: bool,
    },
    /// Add a webhook endpoint: prints its id and, once, its `whsec_` signing secret. It hears of
    /// the facts from its creation on.
    #[command(name = "webhook:add")]
    WebhookAdd {
        /// https://, or http:// to 127.0.0.1, localhost or [::1].
        url: String,
        /// Event types or families, comma-separated (`user.*,session.created`); all by default.
        #[arg(long)]
        events: Option<String>,
        /// Up to 200 printable characters.
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long)]
        json: bool,
    },
    /// List the webhook endpoints (never a secret).
    #[command(name = "webhook:list")]
    WebhookList {
        #[arg(long)]
        json: bool,
    },
    /// Remove a webhook endpoint.
    #[command(name = "webhook:remove")]
    WebhookRemove { id: String },
    /// A new signing secret for an endpoint, printed once; the previous one signs too for
    /// `--overlap-hours` (a rotation during an overlap drops the oldest).
    #[command(name = "webhook:rotate-secret")]
    WebhookRotateSecret {
        id: String,
        #[arg(long, default_value_t = 24)]
        overlap_hours: i64,
        #[arg(long)]
        json: bool,
    },
    /// Stop delivering to an endpoint (kept, with its secrets).
    #[command(name = "webhook:disable")]
    WebhookDisable { id: String },
    /// Deliver to a disabled endpoint again.
    #[command(name = "webhook:enable")]
    WebhookEnable { id: String },
    /// Send an endpoint a signed `webhook.test` ping now (enabled or not) and show its answer;
    /// fails unless it answers 2xx.
    #[command(name = "webhook:test")]
    WebhookTest {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// An endpoint's settings and its deliveries that gave up (kept in failed_jobs).
    #[command(name = "webhook:status")]
    WebhookStatus {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Run the job worker here, long-polling the queue, until Ctrl-C.
    #[command(name = "queue:work")]
    QueueWork {
        /// Stop when the queue is empty instead of waiting for more.
        #[arg(long)]
        stop_when_empty: bool,
    },
}

#[derive(Subcommand)]
pub(crate) enum MigrateAction {
    /// Each migration, ran (and in which batch) or pending, and what exists, what is missing and
    /// what differs from the schema. Exits 1 unless every migration ran and all is in place.
    Status {
        /// One JSON document (`migrations`, `resources`, `in_place`) instead of the listing.
        #[arg(long)]
        json: bool,
    },
    /// Run the pending migrations, in order, as one batch (what `migrate` alone does).
    Up {
        /// Print what would run; change nothing.
        #[arg(long)]
        pretend: bool,
    },
    /// Reverse the last batch of migrations (or the last N with `--step N`), newest first.
    Rollback {
        #[arg(long)]
        step: Option<u32>,
        /// Delete tables that hold items and queues that hold messages (a table with deletion
        /// protection, or a resource a CloudFormation stack owns, is refused even so).
        #[arg(long)]
        force: bool,
        /// Print what would be deleted; change nothing.
        #[arg(long)]
        pretend: bool,
    },
}

/// The migrations this build knows; `GATEHOUSE_TEST_MIGRATIONS=1` adds the test-only one (for
/// the tests of the machinery itself).
pub(crate) fn migrations() -> Vec<gatehouse_aws::migrations::Migration> {
    gatehouse_aws::migrations::all(std::env::var("GATEHOUSE_TEST_MIGRATIONS").is_ok_and(|v| v == "1"))
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        // One line: what went wrong and why, never a backtrace or an SDK's debug dump.
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,aws_config=error")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Serve { port, aws, webhooks } => serve::run(port, aws, &webhooks).await,
        Command::Openapi { output } => {
            let text = openapi::render()?;
            match output {
                Some(path) => std::fs::write(&path, text).with_context(|| format!("writing {}", path.display())),
                None => {
                    print!("{text}");
                    Ok(())
                }
            }
        }
        Command::OAuthKey => oauth_admin::new_local_key(),
        Command::Operate(operation) => operate(operation).await,
    }
}

/// What every `--json` prints: one JSON document.
pub(crate) fn print_json(doc: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(doc)?);
    Ok(())
}

/// The jobs queue's dead-letter queue.
fn dead_letter_queue(sdk: &gatehouse_aws::SdkConfig, config: &Config) -> gatehouse_aws::sqs::SqsQueue {
    let name = config.names.queue(gatehouse::schema::JOBS_QUEUE.dead_letter_logical);
    gatehouse_aws::sqs::SqsQueue::new(SqsClient::new(sdk), name, None)
}

/// The operator commands, against the DynamoDB tables and SQS queue the environment configures.
async fn operate(operation: Operation) -> Result<()> {
    let config = Arc::new(Config::from_env().context("configuration")?);
    let sdk = gatehouse_aws::aws_sdk_config().await;
    let stores = gatehouse_aws::stores(&sdk, &config.names, Arc::new(SystemClock));
    let dispatcher = Dispatcher::for_config(stores.clone(), &config);
    match operation {
        Operation::Migrate { action } => migrating::run(&sdk, &config, action).await?,
        Operation::QueueFailed { limit, cursor, json } => queue_admin::failed(&stores, limit, cursor, json).await?,
        Operation::QueueRetry { uuid } => {
            let uuids = if uuid == "all" { all_failed(&stores).await? } else { vec![uuid] };
            let bar = queue_admin::progress("failed jobs pushed back");
            for u in &uuids {
                retry_failed(&dispatcher, u).await.with_context(|| format!("retrying {u}"))?;
                bar.suspend(|| println!("The failed job [{u}] has been pushed back onto the queue."));
                bar.inc(1);
            }
            bar.finish_and_clear();
            if uuids.is_empty() {
                println!("No failed jobs.");
            }
        }
        Operation::UserResetTwoFactor { email } => users::reset_two_factor(&stores, &dispatcher, &email).await?,
        Operation::UserShow { email, json } => users::print(&stores, &email, json).await?,
        Operation::UserDisable { email } => {
            let spinner = queue_admin::spinner("revoking every credential");
            let n = users::disable(&stores, &email).await?;
            spinner.finish_and_clear();
            println!("User {email} is disabled; {n} credential(s) revoked.");
        }
        Operation::UserEnable { email } => {
            if users::enable(&stores, &email).await? {
                println!("User {email} may sign in again.");
            } else {
                println!("User {email} was not disabled; nothing to do.");
            }
        }
        Operation::UserUnlink { email, provider } => {
            let n = users::unlink(&stores, &dispatcher, &config, &email, &provider).await?;
            println!("{n} {provider} account(s) disconnected from {email}.");
        }
        Operation::UserSignOutEverywhere { email } => {
            let spinner = queue_admin::spinner("revoking every credential");
            let n = users::sign_out_everywhere(&stores, &email).await?;
            spinner.finish_and_clear();
            println!("{n} credential(s) of {email} revoked.");
        }
        Operation::QueueForget { uuid } => {
            if !stores.failed_jobs.forget(&uuid).await? {
                bail!("no failed job matches the given ID: {uuid}");
            }
            println!("Failed job deleted successfully.");
        }
        Operation::QueueDlq { limit, json } => {
            queue_admin::dlq(&dead_letter_queue(&sdk, &config), limit.clamp(1, 10_000), json).await?;
        }
        Operation::QueueDlqRedrive { uuid, all: _, limit } => {
            let dlq = dead_letter_queue(&sdk, &config);
            queue_admin::redrive(&dispatcher, &dlq, uuid.as_deref(), limit.max(1)).await?;
        }
        Operation::QueueMonitor { max, max_in_flight, max_dlq, max_age, json } => {
            let jobs = gatehouse_aws::sqs::SqsQueue::new(
                SqsClient::new(&sdk),
                config.names.queue(gatehouse::schema::JOBS_QUEUE.logical),
                config.names.jobs_queue_url.clone(),
            );
            let limits = queue_admin::Limits { max, max_in_flight, max_dlq, max_age };
            let cw = aws_sdk_cloudwatch::Client::new(&sdk);
            if !queue_admin::monitor(&jobs, &dead_letter_queue(&sdk, &config), &cw, &limits, json).await? {
                std::process::exit(1);
            }
        }
        Operation::QueueBatches { limit, cursor, json } => queue_admin::batches(&stores, limit, cursor, json).await?,
        Operation::QueueBatch { id, json } => queue_admin::batch(&stores, &id, json).await?,
        Operation::QueueBatchCancel { id } => {
            stores.job_batches.find(&id).await?.with_context(|| format!("no batch {id}"))?;
            if stores.job_batches.cancel(&id, stores.clock.now()).await? {
                println!("Batch {id} cancelled: its remaining jobs are skipped.");
            } else {
                println!("Batch {id} was already cancelled.");
            }
        }
        Operation::QueueFlush => {
            let spinner = queue_admin::spinner("deleting every failed job record");
            let n = stores.failed_jobs.flush().await?;
            spinner.finish_and_clear();
            println!("{n} failed job(s) deleted.");
        }
        Operation::QueueRetryBatch { id } => {
            let done = gatehouse::queue::retry_batch(&dispatcher, &id).await?;
            for u in &done.retried {
                println!("The failed job [{u}] has been re-opened in the batch and pushed back onto the queue.");
            }
            for (u, why) in &done.skipped {
                println!("Skipped [{u}]: {why}");
            }
            if done.retried.is_empty() && done.skipped.is_empty() {
                println!("Batch {id} has no failed jobs.");
            }
        }
        Operation::OAuthClient {
            name,
            redirect_uris,
            post_logout_redirect_uris,
            grants,
            scopes,
            public,
            first_party,
            json,
        } => {
            let c = oauth_admin::NewClient {
                name,
                redirect_uris,
                post_logout_redirect_uris,
                grants,
                scopes,
                public,
                first_party,
            };
            oauth_admin::create(&provider(&stores, &config)?, c, json).await?;
        }
        Operation::OAuthClients { json } => oauth_admin::list(&provider(&stores, &config)?, json).await?,
        Operation::OAuthClientSecret { client_id, overlap_hours, json } => {
            oauth_admin::rotate(&provider(&stores, &config)?, &client_id, overlap_hours.clamp(0, 24 * 30), json)
                .await?;
        }
        Operation::OAuthKeyRotate { kms, sealed: _, activate_in_minutes, json } => {
            if !kms && std::env::var("GATEHOUSE_APP_KEY").ok().is_none_or(|k| k.trim().is_empty()) {
                bail!(
                    "--sealed needs the deployment's GATEHOUSE_APP_KEY: a key sealed with another one would stop every function from signing"
                );
            }
            let client = kms.then(|| gatehouse_aws::kms::Client::new(&sdk));
            oauth_admin::rotate_key(&stores, &config, client.as_ref(), activate_in_minutes.clamp(0, 7 * 24 * 60), json)
                .await?;
        }
        Operation::OAuthKeys { json } => oauth_admin::list_keys(&stores, &config, json).await?,
        Operation::OAuthClientRevoke { client_id } => {
            oauth_admin::revoke(&provider(&stores, &config)?, &client_id).await?
        }
        Operation::WebhookAdd { url, events, description, json } => {
            webhooks::add(&stores, &config, &url, events.as_deref(), &description, json).await?
        }
        Operation::WebhookList { json } => webhooks::list(&stores, json).await?,
        Operation::WebhookRemove { id } => webhooks::remove(&stores, &id).await?,
        Operation::WebhookRotateSecret { id, overlap_hours, json } => {
            webhooks::rotate(&stores, &config, &id, overlap_hours.clamp(0, 24 * 30), json).await?
        }
        Operation::WebhookDisable { id } => webhooks::set_disabled(&stores, &id, true).await?,
        Operation::WebhookEnable { id } => webhooks::set_disabled(&stores, &id, false).await?,
        Operation::WebhookTest { id, json } => {
            let outbound = gatehouse_aws::outbound(&config, Some(&sdk));
            webhooks::test(&stores, &config, outbound.post.as_ref(), &id, json).await?
        }
        Operation::WebhookStatus { id, json } => webhooks::status(&stores, &id, json).await?,
        Operation::QueueWork { stop_when_empty } => {
            let mailer = gatehouse_aws::mailer(&config, &sdk);
            let outbound = gatehouse_aws::outbound(&config, Some(&sdk));
            let worker = gatehouse::services::job_registry::worker(stores.clone(), config.clone(), mailer, outbound);
            eprintln!(
                "Processing jobs from {} (Ctrl-C to stop)",
                config.names.queue(gatehouse::schema::JOBS_QUEUE.logical)
            );
            let ctrl_c = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            let handled = worker.run(ctrl_c, stop_when_empty).await?;
            eprintln!("Processed {handled} job(s).");
        }
    }
    Ok(())
}

/// The OAuth provider, for the client commands (no signing: they make and list clients).
fn provider(stores: &Stores, config: &Arc<Config>) -> Result<gatehouse::services::oauth::OAuthProvider> {
    let access = gatehouse::services::access::Access::new(stores.clone(), config.clone());
    let auth = gatehouse::services::auth::Auth::new(access).context("password hashing")?;
    Ok(gatehouse::services::oauth::OAuthProvider::new(auth, None))
}

async fn all_failed(stores: &Stores) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = stores.failed_jobs.list(1000, cursor.as_ref()).await?;
        out.extend(page.items.into_iter().map(|j| j.uuid));
        match page.next {
            Some(c) => cursor = Some(c),
            None => return Ok(out),
        }
    }
}
