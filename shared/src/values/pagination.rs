//! One page of a listing, with an opaque cursor to the next.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The sort key of a newest-first listing (`failed_jobs.by_failed_at`, `job_batches.by_created`):
/// the time in epoch milliseconds, zero-padded so text order is time order, then the id.
pub fn newest_first_key(epoch_ms: i64, id: &str) -> String {
    format!("{:015}#{id}", epoch_ms.max(0))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass back to get the next page; `None` on the last page.
    pub next: Option<Cursor>,
}

/// An opaque position in a listing (DynamoDB's `LastEvaluatedKey`, encoded). Callers treat it as
/// a string they hand back unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(String);

impl Cursor {
    pub fn encode(json: &serde_json::Value) -> Self {
        Self(URL_SAFE_NO_PAD.encode(json.to_string()))
    }
    pub fn decode(&self) -> Option<serde_json::Value> {
        let bytes = URL_SAFE_NO_PAD.decode(&self.0).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
    pub fn from_string(s: String) -> Self {
        Self(s)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
