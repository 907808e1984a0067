//! The job-worker Lambda (`gatehouse_job_worker::run`, exactly what `job-worker`'s `main` runs)
//! with one more job, `Chaos`, registered the way a team adds its own: the jobs-under-faults run
//! (`tests/tests/suite/faults.rs`, `scripts/chaos`) feeds it SQS events through a local Runtime
//! API while a share of its AWS calls fail.
//!
//! `Chaos` fails while its attempt is at most `data.fail_times`; otherwise, when `data.mail` is
//! set, it sends a mail to that address through the worker's own mailer (SES); then it records
//! its effect, `data.effect`, as one line appended to the file `CHAOS_EFFECTS` names. The test
//! counts those lines: a job that took effect twice shows twice.

use async_trait::async_trait;
use gatehouse::mail::{Mail, Mailer};
use gatehouse::queue::{JobContext, JobError, JobHandler};
use gatehouse::tables::jobs::JobPayload;
use std::io::Write;
use std::sync::{Arc, Mutex};

struct Chaos {
    effects: Mutex<std::fs::File>,
    mailer: Arc<dyn Mailer>,
}

#[async_trait]
impl JobHandler for Chaos {
    async fn handle(&self, job: &JobPayload, ctx: &JobContext) -> Result<(), JobError> {
        let fail_times = job.data.get("fail_times").and_then(|v| v.as_u64()).unwrap_or(0);
        if u64::from(ctx.attempt) <= fail_times {
            return Err(JobError::retry(&std::io::Error::other(format!("planned failure, attempt {}", ctx.attempt))));
        }
        if let Some(to) = job.data.get("mail").and_then(|v| v.as_str()) {
            let mail = Mail { to: to.to_owned(), subject: "chaos".into(), text: format!("job {}", job.uuid) };
            self.mailer.send(&mail).await.map_err(|e| JobError::retry(&e))?;
        }
        let effect = job.data.get("effect").and_then(|v| v.as_str()).unwrap_or("none");
        let mut file = self.effects.lock().map_err(|_| JobError::retry(&std::io::Error::other("poisoned")))?;
        writeln!(file, "{effect}").map_err(|e| JobError::retry(&e))?;
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let path = std::env::var("CHAOS_EFFECTS").map_err(|_| "CHAOS_EFFECTS (the effects file) is not set")?;
    let file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
    gatehouse_job_worker::run(move |worker, _config, mailer| {
        worker.register("Chaos", Chaos { effects: Mutex::new(file), mailer: mailer.clone() });
    })
    .await
}
