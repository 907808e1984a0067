//! The `jobs` table, as a queue: Laravel-shaped job payloads and the queue they travel on
//! (SQS in production, in memory locally).

use crate::values::error::StoreResult;
use async_trait::async_trait;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::time::Duration;

/// SQS's longest per-message delay. Longer delays are reached by re-delaying in steps.
pub const MAX_QUEUE_DELAY: Duration = Duration::from_secs(900);
/// SQS's largest message body (1 MiB since 2025; we keep to the long-standing 256 KiB so a
/// payload that works here works on every queue).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// A job message, shaped like Laravel's queue payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobPayload {
    pub uuid: String,
    pub display_name: String,
    /// The job's registered name: what the worker dispatches on.
    pub job: String,
    pub max_tries: Option<u32>,
    pub max_exceptions: Option<u32>,
    /// Seconds to wait before each retry; the last entry repeats. Laravel writes it as `"1,5,10"`.
    #[serde(default, with = "backoff_serde", skip_serializing_if = "Vec::is_empty")]
    pub backoff: Vec<u32>,
    /// Seconds a run may take before it is failed.
    pub timeout: Option<u32>,
    /// Epoch seconds after which the job is not retried.
    pub retry_until: Option<i64>,
    #[serde(default)]
    pub data: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
    /// Attempts already made before this message was sent (re-delays and manual retries), added to
    /// the queue's receive count.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts: u32,
    /// Epoch seconds when a job delayed beyond the queue's limit is due; the worker re-delays it
    /// until then without running it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_at: Option<i64>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

mod backoff_serde {
    use super::*;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(u32),
        Text(String),
        List(Vec<u32>),
        Null,
    }

    pub fn serialize<S: Serializer>(v: &[u32], s: S) -> Result<S::Ok, S::Error> {
        let text: Vec<String> = v.iter().map(u32::to_string).collect();
        s.serialize_str(&text.join(","))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u32>, D::Error> {
        match Raw::deserialize(d)? {
            Raw::One(n) => Ok(vec![n]),
            Raw::List(v) => Ok(v),
            Raw::Null => Ok(Vec::new()),
            Raw::Text(t) if t.trim().is_empty() => Ok(Vec::new()),
            Raw::Text(t) => t.split(',').map(|p| p.trim().parse::<u32>().map_err(serde::de::Error::custom)).collect(),
        }
    }
}

impl JobPayload {
    /// A new payload for `job` with `data`, a fresh uuid and Laravel's defaults (one try).
    pub fn new(job: impl Into<String>, data: serde_json::Value) -> Self {
        let job = job.into();
        Self {
            uuid: uuid::Uuid::new_v4().to_string(),
            display_name: job.clone(),
            job,
            max_tries: None,
            max_exceptions: None,
            backoff: Vec::new(),
            timeout: None,
            retry_until: None,
            data,
            batch_id: None,
            attempts: 0,
            available_at: None,
        }
    }

    /// A queued mail (`Gatehouse\Notifications\<job>`): five tries over about four minutes,
    /// 30 s each.
    pub fn notification(job: &str, data: serde_json::Value) -> Self {
        let mut p = Self::new(job, data);
        p.display_name = format!("Gatehouse\\Notifications\\{job}");
        p.max_tries = Some(5);
        p.backoff = vec![10, 30, 60, 120];
        p.timeout = Some(30);
        p
    }

    /// The wait before retry number `attempt` (1-based: after the first failure, attempt = 1).
    pub fn backoff_for(&self, attempt: u32) -> Duration {
        let idx = (attempt.saturating_sub(1) as usize).min(self.backoff.len().saturating_sub(1));
        Duration::from_secs(self.backoff.get(idx).copied().unwrap_or(0).into())
    }

    pub fn to_body(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_body(body: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(body)
    }
}

/// SQS's `SentTimestamp` attribute (epoch milliseconds, as text) as a time.
pub fn sent_timestamp(attribute: Option<&str>) -> Option<crate::values::clock::Timestamp> {
    attribute?.parse::<i64>().ok().and_then(crate::values::clock::from_epoch_millis)
}

/// A message as received: its body and what the queue says about its deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    pub message_id: String,
    /// The handle that deletes or re-times this delivery.
    pub receipt_handle: String,
    pub body: String,
    /// How many times the queue has handed this message out, this delivery included.
    pub receive_count: u32,
    /// When it was first sent (SQS's `SentTimestamp`; kept when SQS dead-letters it), if known.
    pub sent_at: Option<crate::values::clock::Timestamp>,
}

impl QueueMessage {
    /// A delivery as the queue describes it (SQS's receive answer, or a Lambda event's record):
    /// `None` without an id or a receipt handle, which nothing could settle. The receive count
    /// and `SentTimestamp` are the attributes' text; an absent or garbled count is a first delivery.
    pub fn delivered(
        message_id: Option<String>,
        receipt_handle: Option<String>,
        body: Option<String>,
        receive_count: Option<&str>,
        sent_timestamp: Option<&str>,
    ) -> Option<Self> {
        Some(Self {
            message_id: message_id?,
            receipt_handle: receipt_handle?,
            body: body.unwrap_or_default(),
            receive_count: receive_count.and_then(|c| c.parse().ok()).unwrap_or(1),
            sent_at: self::sent_timestamp(sent_timestamp),
        })
    }
}

#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Sends a message, invisible for `delay` (at most [`MAX_QUEUE_DELAY`], else `Rejected`).
    /// Returns the message id. Bodies over [`MAX_MESSAGE_BYTES`] are `Rejected`.
    async fn send(&self, body: &str, delay: Duration) -> StoreResult<String>;
    /// Up to `max` visible messages (1..=10), waiting up to `wait` for the first; each becomes
    /// invisible for `visibility` (the queue's default when `None`).
    async fn receive(&self, max: u32, wait: Duration, visibility: Option<Duration>) -> StoreResult<Vec<QueueMessage>>;
    /// Makes a received message visible again after `after` (0 = now).
    async fn change_visibility(&self, receipt_handle: &str, after: Duration) -> StoreResult<()>;
    /// Removes a received message for good.
    async fn delete(&self, receipt_handle: &str) -> StoreResult<()>;
    /// Roughly how many messages wait (visible or delayed), for operators and tests.
    async fn approximate_len(&self) -> StoreResult<u64>;
}

/// Checks a body and delay against the queue's limits, the same way for every implementation.
pub fn check_send(body: &str, delay: Duration) -> StoreResult<()> {
    use crate::values::error::StoreError;
    if body.len() > MAX_MESSAGE_BYTES {
        return Err(StoreError::Rejected(format!(
            "message body is {} bytes; the queue takes at most {MAX_MESSAGE_BYTES}",
            body.len()
        )));
    }
    if delay > MAX_QUEUE_DELAY {
        return Err(StoreError::Rejected(format!(
            "delay of {}s exceeds the queue's maximum of {}s",
            delay.as_secs(),
            MAX_QUEUE_DELAY.as_secs()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laravel_payload_round_trips_with_string_backoff() {
        let raw = r#"{"uuid":"u1","displayName":"App\\Jobs\\Mail","job":"mail","maxTries":3,
            "maxExceptions":null,"backoff":"1,5,10","timeout":30,"retryUntil":null,"data":{"a":1}}"#;
        let p = JobPayload::from_body(raw).unwrap();
        assert_eq!(p.backoff, vec![1, 5, 10]);
        assert_eq!(p.max_tries, Some(3));
        let again = JobPayload::from_body(&p.to_body()).unwrap();
        assert_eq!(again, p);
        assert!(p.to_body().contains(r#""backoff":"1,5,10""#));
    }

    #[test]
    fn backoff_accepts_number_list_and_null() {
        for (raw, want) in [("5", vec![5]), ("[1,2]", vec![1, 2]), ("null", vec![])] {
            let body = format!(
                r#"{{"uuid":"u","displayName":"d","job":"j","maxTries":null,"maxExceptions":null,"timeout":null,"retryUntil":null,"backoff":{raw}}}"#
            );
            assert_eq!(JobPayload::from_body(&body).unwrap().backoff, want);
        }
    }

    #[test]
    fn backoff_repeats_its_last_entry() {
        let mut p = JobPayload::new("j", serde_json::Value::Null);
        assert_eq!(p.backoff_for(1), Duration::ZERO);
        p.backoff = vec![1, 5];
        assert_eq!(p.backoff_for(1), Duration::from_secs(1));
        assert_eq!(p.backoff_for(2), Duration::from_secs(5));
        assert_eq!(p.backoff_for(7), Duration::from_secs(5));
    }

    #[test]
    fn limits_are_enforced_before_sending() {
        assert!(check_send("x", Duration::from_secs(900)).is_ok());
        assert!(check_send("x", Duration::from_secs(901)).is_err());
        assert!(check_send(&"x".repeat(MAX_MESSAGE_BYTES + 1), Duration::ZERO).is_err());
    }
}
