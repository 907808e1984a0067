//! Recorded events on an EventBridge bus (#32): one `PutEvents` entry per event, source
//! `gatehouse`, detail-type the event's type (`user.deleted`), detail the event as webhooks carry
//! it, time the fact's. A rule on the bus routes them on (README has an example).

use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use gatehouse::services::deliveries::Bus;
use gatehouse::tables::events::Event;

/// The `source` of every event gatehouse puts on a bus.
pub const SOURCE: &str = "gatehouse";

pub struct EventBridgeBus {
    client: Client,
    bus: String,
}

impl EventBridgeBus {
    pub fn new(sdk: &aws_config::SdkConfig, bus: impl Into<String>) -> Self {
        Self { client: Client::new(sdk), bus: bus.into() }
    }
}

#[async_trait]
impl Bus for EventBridgeBus {
    async fn put(&self, event: &Event) -> Result<(), String> {
        let detail = serde_json::to_string(event).map_err(|e| format!("the event: {e}"))?;
        let at = std::time::SystemTime::UNIX_EPOCH
            + std::time::Duration::from_millis(u64::try_from(event.occurred_at.timestamp_millis()).unwrap_or(0));
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(SOURCE)
            .detail_type(event.kind().as_str())
            .detail(detail)
            .time(aws_sdk_eventbridge::primitives::DateTime::from(at))
            .build();
        let out = self.client.put_events().entries(entry).send().await.map_err(|e| {
            let e = aws_sdk_eventbridge::error::DisplayErrorContext(e);
            format!("PutEvents: {e}")
        })?;
        if out.failed_entry_count() > 0 {
            let why = out.entries().first().and_then(|e| e.error_code()).unwrap_or("unknown").to_owned();
            return Err(format!("PutEvents refused the entry: {why}"));
        }
        Ok(())
    }
}
