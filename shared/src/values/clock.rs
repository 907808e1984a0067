//! Time, injected. Every expiry decision asks a [`Clock`], so tests can move time forward and see
//! an item expire while it is still stored (as it is in DynamoDB until TTL gets round to it).

use chrono::{DateTime, Duration, TimeZone, Utc};
use std::sync::{Arc, Mutex};

/// A point in time, UTC.
pub type Timestamp = DateTime<Utc>;

/// A length of time (chrono's `Duration`).
pub type Span = Duration;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Utc::now()
    }
}

/// A clock that only moves when told to. Cloning shares the same time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<Timestamp>>);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self(Arc::new(Mutex::new(start)))
    }

    /// Starts at the current wall-clock second, so epoch-second TTL values look realistic.
    pub fn starting_now() -> Self {
        let secs = Utc::now().timestamp();
        Self::new(Utc.timestamp_opt(secs, 0).single().unwrap_or_else(Utc::now))
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// RFC 3339 in UTC to the second (`2026-11-23T13:15:00Z`), as the API writes timestamps.
pub fn rfc3339(t: Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Epoch seconds, the unit of DynamoDB's TTL attribute.
pub fn epoch_seconds(t: Timestamp) -> i64 {
    t.timestamp()
}

/// Epoch milliseconds, for sort keys that must order events within one second.
pub fn epoch_millis(t: Timestamp) -> i64 {
    t.timestamp_millis()
}

pub fn from_epoch_seconds(secs: i64) -> Option<Timestamp> {
    Utc.timestamp_opt(secs, 0).single()
}

pub fn from_epoch_millis(ms: i64) -> Option<Timestamp> {
    Utc.timestamp_millis_opt(ms).single()
}

/// An item with this expiry is live at `now`. `None` never expires.
pub fn is_live(expires_at: Option<Timestamp>, now: Timestamp) -> bool {
    expires_at.is_none_or(|e| e > now)
}
