//! The queue commands an operator needs when jobs go wrong: the dead-letter queue (what landed
//! there, moving it back) and the queue's health for cron or CI (`queue:monitor`).

use crate::print_json;
use anyhow::{Context, Result, bail};
use gatehouse::Stores;
use gatehouse::queue::Dispatcher;
use gatehouse::queue::dead_letters::{self, DeadLetter};
use gatehouse::values::pagination::Cursor;
use gatehouse_aws::sqs::{QueueDepth, SqsQueue};
use serde::Serialize;

/// An indicator on stderr when it is a terminal, nothing when piped.
fn indicator(what: &str, template: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        indicatif::ProgressStyle::with_template(template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.set_message(what.to_owned());
    bar
}

/// A count of things done (`inc` it), for a loop.
pub fn progress(what: &str) -> indicatif::ProgressBar {
    indicator(what, "{spinner} {msg}: {pos}")
}

/// A spinner with the elapsed time, for one long call.
pub fn spinner(what: &str) -> indicatif::ProgressBar {
    let bar = indicator(what, "{spinner} {msg} ({elapsed})");
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

/// `queue:dlq`: the dead-lettered messages (they stay there).
pub async fn dlq(queue: &SqsQueue, limit: usize, json: bool) -> Result<()> {
    let letters = dead_letters::list(queue, limit).await?;
    if json {
        return print_json(&serde_json::json!({ "messages": letters }));
    }
    if letters.is_empty() {
        println!("The dead-letter queue is empty.");
        return Ok(());
    }
    println!("{:<38} {:<28} {:>8} {:>8}  {:<20}  message id", "uuid", "job", "receives", "attempts", "first seen");
    for DeadLetter { message_id, uuid, job, receive_count, attempts, first_seen } in &letters {
        let or = |v: &Option<String>| v.clone().unwrap_or_else(|| "(not a job)".into());
        let attempts = attempts.map_or("-".to_owned(), |a| a.to_string());
        let seen = first_seen.clone().unwrap_or_else(|| "-".into());
        println!("{:<38} {:<28} {receive_count:>8} {attempts:>8}  {seen:<20}  {message_id}", or(uuid), or(job));
    }
    Ok(())
}

/// `queue:dlq-redrive`: every dead-lettered job (`--all`) or one by uuid, back onto the queue.
pub async fn redrive(dispatcher: &Dispatcher, queue: &SqsQueue, uuid: Option<&str>, limit: usize) -> Result<()> {
    if let Some(u) = uuid
        && uuid::Uuid::parse_str(u).is_err()
    {
        bail!("not a job uuid: {u}");
    }
    let bar = progress("jobs moved back");
    let done = dead_letters::redrive(dispatcher, queue, uuid, limit, |_| bar.inc(1)).await?;
    bar.finish_and_clear();
    for u in &done.moved {
        println!("The dead-lettered job [{u}] has been pushed back onto the queue.");
    }
    if done.undecodable > 0 {
        println!("{} message(s) are not job payloads and stay in the dead-letter queue.", done.undecodable);
    }
    match (uuid, done.moved.is_empty()) {
        (Some(u), true) => bail!("no dead-lettered job has the uuid {u}"),
        (None, true) => println!("Nothing to move: the dead-letter queue holds no jobs."),
        _ => {}
    }
    Ok(())
}

/// `queue:monitor` limits: a crossed one makes the command exit 1.
pub struct Limits {
    pub max: Option<u64>,
    pub max_in_flight: Option<u64>,
    pub max_dlq: Option<u64>,
    /// Seconds the oldest waiting job may have waited (read from CloudWatch).
    pub max_age: Option<u64>,
}

/// The age of the oldest message in `queue`, seconds: SQS's `ApproximateAgeOfOldestMessage`, the
/// latest one-minute maximum of the last 15 minutes. SQS reports it only to CloudWatch (a minute or
/// more late); `None` when there is no datapoint (an idle queue reports none).
pub async fn oldest_age(cw: &aws_sdk_cloudwatch::Client, queue: &str) -> Result<Option<u64>> {
    use aws_sdk_cloudwatch::primitives::DateTime;
    use aws_sdk_cloudwatch::types::{Dimension, Statistic};
    let now = std::time::SystemTime::now();
    let out = cw
        .get_metric_statistics()
        .namespace("AWS/SQS")
        .metric_name("ApproximateAgeOfOldestMessage")
        .dimensions(Dimension::builder().name("QueueName").value(queue).build())
        .start_time(DateTime::from(now - std::time::Duration::from_secs(15 * 60)))
        // A minute ahead: a datapoint of this very second is not cut off by the window's end.
        .end_time(DateTime::from(now + std::time::Duration::from_secs(60)))
        .period(60)
        .statistics(Statistic::Maximum)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "reading {queue}'s oldest message age from CloudWatch: {}",
                aws_sdk_cloudwatch::error::DisplayErrorContext(e)
            )
        })?;
    let latest =
        out.datapoints().iter().filter(|d| d.timestamp().is_some()).max_by_key(|d| d.timestamp().map(|t| t.secs()));
    Ok(latest.and_then(|d| d.maximum()).map(|m| m.max(0.0) as u64))
}

#[derive(Serialize)]
struct Health<'a> {
    queue: &'a str,
    waiting: u64,
    in_flight: u64,
    delayed: u64,
    /// Seconds, from CloudWatch (only asked for with `--max-age`); `null` without a datapoint.
    oldest_age_seconds: Option<u64>,
    dead_letter_queue: &'a str,
    dead_lettered: u64,
    over: Vec<String>,
}

/// `queue:monitor`: depth, in flight, delayed and DLQ depth; `Ok(false)` when a limit is
/// crossed.
pub async fn monitor(
    jobs: &SqsQueue,
    dlq: &SqsQueue,
    cw: &aws_sdk_cloudwatch::Client,
    limits: &Limits,
    json: bool,
) -> Result<bool> {
    let QueueDepth { visible, in_flight, delayed } = jobs.depth().await?;
    // Every state: a listing in progress hides what it reads.
    let d = dlq.depth().await?;
    let dead = d.visible + d.in_flight + d.delayed;
    let mut over = Vec::new();
    let mut check = |name: &str, value: u64, limit: Option<u64>| {
        if let Some(l) = limit
            && value > l
        {
            over.push(format!("{name} {value} > {l}"));
        }
    };
    check("waiting", visible, limits.max);
    check("in flight", in_flight, limits.max_in_flight);
    check("dead-lettered", dead, limits.max_dlq);
    let oldest = match limits.max_age {
        Some(_) => oldest_age(cw, jobs.name()).await?,
        None => None,
    };
    if let Some(age) = oldest {
        check("oldest age (s)", age, limits.max_age);
    }
    let h = Health {
        queue: jobs.name(),
        waiting: visible,
        in_flight,
        delayed,
        oldest_age_seconds: oldest,
        dead_letter_queue: dlq.name(),
        dead_lettered: dead,
        over,
    };
    if json {
        print_json(&h)?;
    } else {
        println!("{:<40} {:>8} {:>10} {:>8} {:>14}", "queue", "waiting", "in flight", "delayed", "dead-lettered");
        println!("{:<40} {:>8} {:>10} {:>8} {:>14}", h.queue, h.waiting, h.in_flight, h.delayed, h.dead_lettered);
        if limits.max_age.is_some() {
            let age = oldest.map_or("no datapoint in the last 15 minutes".to_owned(), |a| format!("{a} s"));
            println!("oldest waiting job: {age}");
        }
        for o in &h.over {
            println!("OVER: {o}");
        }
    }
    Ok(h.over.is_empty())
}

/// `queue:failed`: a page of failed jobs, newest first.
pub async fn failed(stores: &Stores, limit: usize, cursor: Option<String>, json: bool) -> Result<()> {
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
    Ok(())
}

/// `queue:batches`: a page of batches, newest first.
pub async fn batches(stores: &Stores, limit: usize, cursor: Option<String>, json: bool) -> Result<()> {
    let page = stores.job_batches.list(limit.clamp(1, 1000), cursor.map(Cursor::from_string).as_ref()).await?;
    if json {
        let batches: Vec<serde_json::Value> = page.items.iter().map(batch_json).collect();
        return print_json(&serde_json::json!({ "batches": batches, "next_cursor": next_cursor(&page.next) }));
    }
    if page.items.is_empty() {
        println!("No batches.");
    }
    println!("{:<38} {:<20} {:<20} {:>7} {:>7} {:>7}  state", "id", "name", "created at", "jobs", "pending", "failed");
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
    Ok(())
}

/// `queue:batch`: one batch and its failed jobs.
pub async fn batch(stores: &Stores, id: &str, json: bool) -> Result<()> {
    let b = stores.job_batches.find(id).await?.with_context(|| format!("no batch {id}"))?;
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

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n { s.to_owned() } else { s.chars().take(n - 1).collect::<String>() + "…" }
}
