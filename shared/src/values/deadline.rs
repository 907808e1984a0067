//! A request's time budget. Every AWS call has its own timeouts (`gatehouse_aws::TIMEOUTS`: 8 s with
//! retries), but a request makes several, and Lambda kills an invocation at its deadline wherever
//! it is: API Gateway then answers a bare 503/504 and the client learns nothing. A handler run
//! [`within`] the invocation's deadline gives up [`MARGIN`] before it, so the function still
//! answers in its own words (the API's 503 `unavailable`, the authorizer's deny).
//!
//! Giving up drops the request's future at an await point: for the stores that is the same as a
//! call whose answer was lost, which every write already tolerates (see SECURITY.md,
//! "retries"), and no worse than Lambda's own kill, which is what happened before.

use std::future::Future;
use std::time::{Duration, SystemTime};

/// How long before the deadline a request gives up: time to post its answer to the Runtime API.
pub const MARGIN: Duration = Duration::from_millis(500);

/// Runs `work` until `deadline` − [`MARGIN`]: `Some(output)`, or `None` once the budget is spent
/// (at once if it already is). Without a deadline (`gatehouse serve`), runs it to the end.
pub async fn within<F: Future>(deadline: Option<SystemTime>, work: F) -> Option<F::Output> {
    let Some(deadline) = deadline else { return Some(work.await) };
    let left = deadline.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO).saturating_sub(MARGIN);
    if left.is_zero() {
        return None;
    }
    tokio::time::timeout(left, work).await.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn work_that_fits_answers_and_work_that_does_not_is_cut_before_the_deadline() {
        let deadline = SystemTime::now() + Duration::from_secs(3);
        let quick = within(Some(deadline), async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            7
        });
        assert_eq!(quick.await, Some(7));
        let started = tokio::time::Instant::now();
        let slow = within(Some(SystemTime::now() + Duration::from_secs(3)), tokio::time::sleep(Duration::from_secs(8)));
        assert_eq!(slow.await, None);
        let waited = started.elapsed();
        assert!(waited <= Duration::from_secs(3) - MARGIN, "cut after {waited:?}");
        assert!(waited >= Duration::from_secs(2), "cut only when the budget is spent, not at once: {waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_spent_budget_refuses_at_once_and_no_deadline_means_no_budget() {
        let past = SystemTime::now() + MARGIN / 2;
        assert_eq!(within(Some(past), async { 1 }).await, None);
        assert_eq!(within(None, tokio::time::sleep(Duration::from_secs(3600))).await, Some(()));
    }
}
