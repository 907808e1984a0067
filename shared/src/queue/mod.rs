//! Laravel's queue on SQS: dispatching (with delays beyond SQS's 15-minute limit and batches) and
//! the worker that runs each message once in effect, however often SQS delivers it. One file a
//! concern; this module is their one public face.

pub mod dead_letters;
mod dispatch;
mod job;
mod retry;
mod worker;

pub use dispatch::{DispatchError, Dispatcher, RECORD_EVENT, RECORD_EVENT_BACKOFF};
pub use job::{JobContext, JobError, JobHandler, Outcome, cause_chain, mail_error};
pub use retry::{BatchRetry, RetryError, retry_batch, retry_failed};
pub use worker::{IDLE_WAIT, Worker, WorkerSettings};
