//! `gatehouse`: the operator's command, like Laravel's artisan.

mod openapi;
mod queue_admin;
mod serve;
mod users;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use gatehouse::queue::{Dispatcher, retry_failed};
use gatehouse::values::pagination::Cursor;
use gatehouse::{Config, Stores, SystemClock};
use gatehouse_aws::migrate;
use gatehouse_aws::{DynamoClient, SqsClient};
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
    },
    /// Print the OpenAPI document generated from the route tables and wire types (`--output`
    /// writes it to a file instead, e.g. `--output openapi.json` to update the committed one).
    Openapi {
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
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
    /// Revoke every session, token, handoff and cross-app session of a user (the account stays
    /// usable: they sign in again).
    #[command(name = "user:sign-out-everywhere")]
    UserSignOutEverywhere { email: String },
    /// Run the job worker here, long-polling the queue, until Ctrl-C.
    #[command(name = "queue:work")]
    QueueWork {
        /// Stop when the queue is empty instead of waiting for more.
        #[arg(long)]
        stop_when_empty: bool,
    },
}

#[derive(Subcommand)]
enum MigrateAction {
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
fn migrations() -> Vec<gatehouse_aws::migrations::Migration> {
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
        Command::Serve { port, aws } => serve::run(port, aws).await,
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
        Command::Operate(operation) => operate(operation).await,
    }
}

/// What every `--json` prints: one JSON document.
pub(crate) fn print_json(doc: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(doc)?);
    Ok(())
}

/// A page's `next_cursor` for `--json`.
fn next_cursor(next: &Option<Cursor>) -> Option<&str> {
    next.as_ref().map(Cursor::as_str)
}

/// A batch's fields for `--json` (`queue:batches`, and `queue:batch` with more).
fn batch_json(b: &gatehouse::tables::job_batches::Batch) -> serde_json::Value {
    let when = |t: Option<gatehouse::Timestamp>| t.map(gatehouse::values::clock::rfc3339);
    serde_json::json!({
        "id": b.id,
        "name": b.name,
        "total_jobs": b.total_jobs,
        "pending_jobs": b.pending_jobs,
        "failed_jobs": b.failed_jobs,
        "created_at": gatehouse::values::clock::rfc3339(b.created_at),
        "cancelled_at": when(b.cancelled_at),
        "finished_at": when(b.finished_at),
    })
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
        Operation::Migrate { action } => {
            let (db, sqs) = (DynamoClient::new(&sdk), SqsClient::new(&sdk));
            let migrator = gatehouse_aws::migrations::Migrator::new(&db, &sqs, &config.names, migrations());
            match action {
                None | Some(MigrateAction::Up { .. }) => {
                    let pretend = matches!(action, Some(MigrateAction::Up { pretend: true }));
                    let lines = migrator.up(pretend).await.context("migrate")?;
                    lines.iter().for_each(|l| println!("{l}"));
                    if pretend {
                    } else if lines.iter().any(|l| l.starts_with("ran ")) {
                        println!("migrate: done");
                    } else {
                        let drift = migrator.drift().await.context("migrate")?;
                        if !drift.is_empty() {
                            drift.iter().for_each(|d| println!("{d}"));
                            println!("migrate: every migration ran, but what they made is not in place (above)");
                            std::process::exit(1);
                        }
                        println!("migrate: nothing to do, everything is in place");
                    }
                }
                Some(MigrateAction::Rollback { step, force, pretend }) => {
                    let lines = migrator.rollback(step, force, pretend).await.context("migrate rollback")?;
                    lines.iter().for_each(|l| println!("{l}"));
                }
                Some(MigrateAction::Status { json }) => {
                    let ran = migrator.ran().await.context("migrate status")?;
                    let report = migrate::status(&db, &sqs, &config.names).await.context("migrate status")?;
                    let pending = migrator.migrations.iter().any(|m| !ran.iter().any(|r| r.id == m.id));
                    let in_place = !pending && migrate::all_ok(&report);
                    if json {
                        let migrations: Vec<serde_json::Value> = migrator
                            .migrations
                            .iter()
                            .map(|m| {
                                let r = ran.iter().find(|r| r.id == m.id);
                                serde_json::json!({
                                    "id": m.id,
                                    "name": m.label(),
                                    "state": if r.is_some() { "ran" } else { "pending" },
                                    "batch": r.map(|r| r.batch),
                                    "ran_at": r.map(|r| r.ran_at.clone()),
                                })
                            })
                            .collect();
                        let resources: Vec<serde_json::Value> = report
                            .iter()
                            .map(|r| {
                                let ok = migrate::all_ok(std::slice::from_ref(r));
                                serde_json::json!({ "kind": r.kind, "name": r.name, "ok": ok, "report": r.to_string() })
                            })
                            .collect();
                        let doc = serde_json::json!({ "migrations": migrations, "resources": resources, "in_place": in_place });
                        print_json(&doc)?;
                        if !in_place {
                            std::process::exit(1);
                        }
                        return Ok(());
                    }
                    for m in &migrator.migrations {
                        match ran.iter().find(|r| r.id == m.id) {
                            Some(r) => println!("ran     batch {:<3} {:<24} {}", r.batch, m.label(), r.ran_at),
                            None => println!("PENDING           {}", m.label()),
                        }
                    }
                    report.iter().for_each(|r| println!("{r}"));
                    if !in_place {
                        println!("migrate status: not in place; run `gatehouse migrate`");
                        std::process::exit(1);
                    }
                    println!("migrate status: everything is in place");
                }
            }
        }
        Operation::QueueFailed { limit, cursor, json } => {
            let page = stores.failed_jobs.list(limit.clamp(1, 1000), cursor.map(Cursor::from_string).as_ref()).await?;
            if json {
                let jobs: Vec<serde_json::Value> = page
                    .items
                    .iter()
                    .map(|j| {
                        let payload = gatehouse::tables::jobs::JobPayload::from_body(&j.payload).ok();
                        serde_json::json!({
                            "uuid": j.uuid,
                            "job": payload.map(|p| p.display_name),
                            "queue": j.queue,
                            "failed_at": gatehouse::values::clock::rfc3339(j.failed_at),
                            "exception": j.exception,
                        })
                    })
                    .collect();
                return print_json(&serde_json::json!({ "jobs": jobs, "next_cursor": next_cursor(&page.next) }));
            }
            if page.items.is_empty() {
                println!("No failed jobs.");
            }
            println!("{:<38} {:<20} {:<28} exception", "uuid", "failed at", "job");
            for j in &page.items {
                let name = gatehouse::tables::jobs::JobPayload::from_body(&j.payload)
                    .map(|p| p.display_name)
                    .unwrap_or_else(|_| "(undecodable)".into());
                let first_line = j.exception.lines().next().unwrap_or("");
                println!(
                    "{:<38} {:<20} {:<28} {}",
                    j.uuid,
                    gatehouse::values::clock::rfc3339(j.failed_at),
                    truncate(&name, 28),
                    truncate(first_line, 80)
                );
            }
            if let Some(next) = page.next {
                println!("\nmore: gatehouse queue:failed --limit {limit} --cursor {}", next.as_str());
            }
        }
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
        Operation::UserResetTwoFactor { email } => {
            let email = gatehouse::Email::parse(&email).map_err(|e| anyhow::anyhow!("not an email address: {e}"))?;
            let Some(user) = stores.users.find_by_email(&email).await? else {
                bail!("no user has that address");
            };
            if !user.two_factor.enabled() && user.two_factor.sealed_secret.is_none() && user.passkeys.is_empty() {
                println!("User {} has no second factor; nothing to do.", user.id);
            } else if gatehouse::services::two_factor::reset(&stores, &dispatcher, &user).await? {
                println!("Two-factor authentication reset for user {}; they are told by mail.", user.id);
            }
        }
        Operation::UserShow { email, json } => {
            let user = users::find(&stores, &email).await?;
            let r = users::show(&stores, &user).await?;
            if json {
                print_json(&r)?;
            } else {
                let or = |v: &Option<String>, none: &str| v.clone().unwrap_or_else(|| none.to_owned());
                println!("id            {}\nname          {}\nemail         {}", r.id, r.name, r.email);
                println!(
                    "verified      {}\ntwo-factor    {}",
                    or(&r.email_verified_at, "no"),
                    if r.two_factor_enabled { "on" } else { "off" }
                );
                println!(
                    "disabled      {}\ncreated       {}\nupdated       {}",
                    or(&r.disabled_at, "no"),
                    r.created_at,
                    r.updated_at
                );
                println!("sessions      {}\ntokens        {}", r.sessions, r.tokens);
            }
        }
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
        Operation::QueueBatches { limit, cursor, json } => {
            let page = stores.batches.list(limit.clamp(1, 1000), cursor.map(Cursor::from_string).as_ref()).await?;
            if json {
                let batches: Vec<serde_json::Value> = page.items.iter().map(batch_json).collect();
                return print_json(&serde_json::json!({ "batches": batches, "next_cursor": next_cursor(&page.next) }));
            }
            if page.items.is_empty() {
                println!("No batches.");
            }
            println!(
                "{:<38} {:<20} {:<20} {:>7} {:>7} {:>7}  state",
                "id", "name", "created at", "jobs", "pending", "failed"
            );
            for b in &page.items {
                let state = if b.cancelled_at.is_some() {
                    "cancelled"
                } else if b.finished_at.is_some() {
                    "finished"
                } else {
                    "running"
                };
                println!(
                    "{:<38} {:<20} {:<20} {:>7} {:>7} {:>7}  {state}",
                    b.id,
                    truncate(&b.name, 20),
                    gatehouse::values::clock::rfc3339(b.created_at),
                    b.total_jobs,
                    b.pending_jobs,
                    b.failed_jobs
                );
            }
            if let Some(next) = page.next {
                println!("\nmore: gatehouse queue:batches --limit {limit} --cursor {}", next.as_str());
            }
        }
        Operation::QueueBatch { id, json } => {
            let b = stores.batches.find(&id).await?.with_context(|| format!("no batch {id}"))?;
            let mut doc = batch_json(&b);
            doc["processed_jobs"] = serde_json::json!(b.total_jobs - b.pending_jobs);
            doc["failed_job_ids"] = serde_json::json!(b.failed_job_ids);
            doc["options"] = serde_json::json!(b.options);
            if json {
                print_json(&doc)?;
            } else {
                let progress = (100 * (b.total_jobs - b.pending_jobs)).checked_div(b.total_jobs).unwrap_or(100);
                println!("batch      {} ({})", b.id, b.name);
                println!(
                    "progress   {progress}% ({} of {} done, {} failed)",
                    b.total_jobs - b.pending_jobs,
                    b.total_jobs,
                    b.failed_jobs
                );
                println!("created    {}", doc["created_at"].as_str().unwrap_or_default());
                for (label, key) in [("cancelled", "cancelled_at"), ("finished", "finished_at")] {
                    println!("{label:<10} {}", doc[key].as_str().unwrap_or("no"));
                }
                for u in &b.failed_job_ids {
                    println!("failed     {u}");
                }
            }
        }
        Operation::QueueBatchCancel { id } => {
            stores.batches.find(&id).await?.with_context(|| format!("no batch {id}"))?;
            if stores.batches.cancel(&id, stores.clock.now()).await? {
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
        Operation::QueueWork { stop_when_empty } => {
            let mailer = gatehouse_aws::mailer(&config, &sdk);
            let worker = gatehouse::services::job_registry::worker(stores.clone(), config.clone(), mailer);
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

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n { s.to_owned() } else { s.chars().take(n - 1).collect::<String>() + "…" }
}
