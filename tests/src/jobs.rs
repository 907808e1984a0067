//! Test jobs that record every run, and a worker that knows them.

use crate::TestEnv;
use async_trait::async_trait;
use gatehouse::queue::{Dispatcher, JobContext, JobError, JobHandler, Worker, WorkerSettings};
use gatehouse::tables::jobs::JobPayload;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Counts runs per job uuid and per job name.
#[derive(Default)]
pub struct Probe {
    runs: Mutex<HashMap<String, u32>>,
}

impl Probe {
    fn bump(&self, key: &str) -> u32 {
        let mut m = self.runs.lock().unwrap();
        let n = m.entry(key.to_owned()).or_default();
        *n += 1;
        *n
    }
    pub fn runs(&self, key: &str) -> u32 {
        self.runs.lock().unwrap().get(key).copied().unwrap_or(0)
    }
}

/// Fails `data.fail_times` times, then succeeds; counts runs under its uuid and "effects" under
/// `data.effect` when it succeeds.
struct Flaky(Arc<Probe>);
#[async_trait]
impl JobHandler for Flaky {
    async fn handle(&self, job: &JobPayload, _ctx: &JobContext) -> Result<(), JobError> {
        let n = self.0.bump(&job.uuid);
        let fail_times = job.data.get("fail_times").and_then(|v| v.as_u64()).unwrap_or(0) as u32;
        if n <= fail_times {
            return Err(JobError::retry(&std::io::Error::other(format!("flaky failure {n}"))));
        }
        if let Some(effect) = job.data.get("effect").and_then(|v| v.as_str()) {
            self.0.bump(effect);
        }
        Ok(())
    }
}

struct Panics(Arc<Probe>);
#[async_trait]
impl JobHandler for Panics {
    async fn handle(&self, job: &JobPayload, _ctx: &JobContext) -> Result<(), JobError> {
        self.0.bump(&job.uuid);
        panic!("this job always panics");
    }
}

struct Sleeps(Arc<Probe>);
#[async_trait]
impl JobHandler for Sleeps {
    async fn handle(&self, job: &JobPayload, _ctx: &JobContext) -> Result<(), JobError> {
        self.0.bump(&job.uuid);
        tokio::time::sleep(Duration::from_secs(2)).await;
        // Reached only by a run that was not stopped at its timeout.
        self.0.bump(&format!("{}:woke", job.uuid));
        Ok(())
    }
}

/// Counts under `data.name`, and takes a `without_overlapping` lock on it for a moment.
struct Exclusive(Arc<Probe>);
#[async_trait]
impl JobHandler for Exclusive {
    async fn handle(&self, job: &JobPayload, ctx: &JobContext) -> Result<(), JobError> {
        let name = job.data.get("name").and_then(|v| v.as_str()).unwrap_or("x").to_owned();
        let (probe, counted) = (self.0.clone(), name.clone());
        let ran = ctx
            .without_overlapping(&name, gatehouse::values::clock::Span::seconds(30), || async move {
                probe.bump(&counted);
                tokio::time::sleep(Duration::from_millis(200)).await;
                Ok(())
            })
            .await?;
        if ran.is_none() {
            self.0.bump("overlap-skipped");
        }
        Ok(())
    }
}

pub fn job(name: &str, data: serde_json::Value, max_tries: u32) -> JobPayload {
    let mut p = JobPayload::new(name, data);
    p.max_tries = Some(max_tries);
    p
}

/// A worker over the env's stores with the test jobs registered.
pub fn test_worker(env: &TestEnv) -> (Worker, Arc<Probe>) {
    let probe = Arc::new(Probe::default());
    let dispatcher = Dispatcher::new(env.stores.clone(), gatehouse::values::clock::Span::days(30));
    let mut w = Worker::new(
        env.stores.clone(),
        dispatcher,
        WorkerSettings::new("jobs", gatehouse::values::clock::Span::days(30)),
    );
    w.register("Flaky", Flaky(probe.clone()))
        .register("Panics", Panics(probe.clone()))
        .register("Sleeps", Sleeps(probe.clone()))
        .register("Exclusive", Exclusive(probe.clone()));
    (w, probe)
}

/// Polls until the queue is empty (or `rounds` polls), returning the messages handled.
pub async fn drain(worker: &Worker, rounds: usize) -> usize {
    let mut handled = 0;
    for _ in 0..rounds {
        let n = worker.poll_once(Duration::from_millis(200)).await.expect("poll");
        handled += n;
        if n == 0 && worker.stores().queue.approximate_len().await.expect("len") == 0 {
            break;
        }
    }
    handled
}
