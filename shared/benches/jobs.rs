//! `cargo bench -p gatehouse --bench jobs`: no-op jobs per second through the local worker loop
//! (dispatch, receive 10 at a time, claim, run, complete, delete) on the in-memory stores.

use async_trait::async_trait;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gatehouse::queue::{Dispatcher, JobContext, JobError, JobHandler, Worker, WorkerSettings};
use gatehouse::tables::jobs::JobPayload;
use gatehouse::{Stores, SystemClock};
use std::sync::Arc;
use std::time::Duration;

struct NoOp;

#[async_trait]
impl JobHandler for NoOp {
    async fn handle(&self, _job: &JobPayload, _ctx: &JobContext) -> Result<(), JobError> {
        Ok(())
    }
}

const JOBS: u64 = 1000;

fn throughput(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let mut group = c.benchmark_group("worker_loop");
    group.throughput(Throughput::Elements(JOBS));
    group.sample_size(20);
    group.bench_function("noop_jobs", |b| {
        b.iter(|| {
            let stores = Stores::memory(Arc::new(SystemClock));
            let dispatcher = Dispatcher::new(stores.clone(), chrono::Duration::days(1));
            let mut worker =
                Worker::new(stores, dispatcher.clone(), WorkerSettings::new("jobs", chrono::Duration::days(1)));
            worker.register("NoOp", NoOp);
            rt.block_on(async {
                for _ in 0..JOBS {
                    dispatcher.dispatch(JobPayload::new("NoOp", serde_json::json!({}))).await.expect("dispatch");
                }
                let mut done = 0;
                while done < JOBS as usize {
                    done += worker.poll_once(Duration::ZERO).await.expect("poll");
                }
            })
        })
    });
    group.finish();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
