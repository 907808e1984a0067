//! The jobs queue on Amazon SQS.

use crate::error::sdk_error;
use async_trait::async_trait;
pub use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::Config;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use gatehouse::tables::jobs::{JobQueue, QueueMessage, check_send};
use gatehouse::values::error::{StoreError, StoreResult};
use std::time::Duration;
use tokio::sync::OnceCell;

/// The longest long poll SQS allows.
const MAX_WAIT: Duration = Duration::from_secs(20);

/// A queue by name; its URL is configured or looked up once, on first use (no network call at
/// start-up).
pub struct SqsQueue {
    client: Client,
    name: String,
    url: OnceCell<String>,
}

impl SqsQueue {
    pub fn new(client: Client, name: String, url: Option<String>) -> Self {
        let cell = OnceCell::new();
        if let Some(u) = url {
            let _ = cell.set(u);
        }
        Self { client, name, url: cell }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub async fn url(&self) -> StoreResult<&str> {
        self.url
            .get_or_try_init(|| async {
                crate::migrate::queue_url(&self.client, &self.name).await?.ok_or_else(|| {
                    StoreError::Rejected(format!("queue {} does not exist: run `gatehouse migrate`", self.name))
                })
            })
            .await
            .map(String::as_str)
    }
}

/// How many messages a queue holds, by state (SQS's approximate counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueDepth {
    /// Waiting to be received.
    pub visible: u64,
    /// Received and not yet deleted.
    pub in_flight: u64,
    /// Sent with a delay that has not passed.
    pub delayed: u64,
}

impl SqsQueue {
    /// The queue's depth by state, in one `GetQueueAttributes`.
    pub async fn depth(&self) -> StoreResult<QueueDepth> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(self.url().await?)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(|e| sdk_error(&self.name, e))?;
        let read = |name: QueueAttributeName| {
            out.attributes().and_then(|a| a.get(&name)).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        };
        Ok(QueueDepth {
            visible: read(QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: read(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            delayed: read(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        })
    }
}

fn secs_i32(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

#[async_trait]
impl JobQueue for SqsQueue {
    async fn send(&self, body: &str, delay: Duration) -> StoreResult<String> {
        check_send(body, delay)?;
        let out = self
            .client
            .send_message()
            .queue_url(self.url().await?)
            .message_body(body)
            .delay_seconds(secs_i32(delay))
            .send()
            .await
            .map_err(|e| sdk_error(&self.name, e))?;
        out.message_id.ok_or_else(|| StoreError::Rejected(format!("{}: SendMessage returned no id", self.name)))
    }

    async fn receive(&self, max: u32, wait: Duration, visibility: Option<Duration>) -> StoreResult<Vec<QueueMessage>> {
        if !(1..=10).contains(&max) {
            return Err(StoreError::Rejected("receive takes 1 to 10 messages".into()));
        }
        let out = self
            .client
            .receive_message()
            .queue_url(self.url().await?)
            .max_number_of_messages(max as i32)
            .wait_time_seconds(secs_i32(wait.min(MAX_WAIT)))
            .set_visibility_timeout(visibility.map(secs_i32))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            // A long poll waits up to 20 s for a message: its attempt may take that long, and more.
            .customize()
            .config_override(Config::builder().timeout_config(crate::timeouts_waiting(wait.min(MAX_WAIT))))
            .send()
            .await
            .map_err(|e| sdk_error(&self.name, e))?;
        out.messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                let attribute = |name| m.attributes().and_then(|a| a.get(&name)).map(String::as_str);
                let (count, sent) = (
                    attribute(MessageSystemAttributeName::ApproximateReceiveCount),
                    attribute(MessageSystemAttributeName::SentTimestamp),
                );
                QueueMessage::delivered(m.message_id.clone(), m.receipt_handle.clone(), m.body.clone(), count, sent)
                    .ok_or_else(|| {
                        StoreError::Rejected(format!("{}: a message came without id or receipt handle", self.name))
                    })
            })
            .collect()
    }

    async fn change_visibility(&self, receipt_handle: &str, after: Duration) -> StoreResult<()> {
        self.client
            .change_message_visibility()
            .queue_url(self.url().await?)
            .receipt_handle(receipt_handle)
            .visibility_timeout(secs_i32(after).min(43_200))
            .send()
            .await
            .map_err(|e| sdk_error(&self.name, e))?;
        Ok(())
    }

    async fn delete(&self, receipt_handle: &str) -> StoreResult<()> {
        self.client
            .delete_message()
            .queue_url(self.url().await?)
            .receipt_handle(receipt_handle)
            .send()
            .await
            .map_err(|e| sdk_error(&self.name, e))?;
        Ok(())
    }

    async fn approximate_len(&self) -> StoreResult<u64> {
        let d = self.depth().await?;
        Ok(d.visible + d.in_flight + d.delayed)
    }
}
