//! The in-memory `queue` table.

use super::table::SharedClock;
use crate::tables::jobs::{JobQueue, QueueMessage, check_send};
use crate::values::clock::Timestamp;
use crate::values::error::{StoreError, StoreResult};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

struct Msg {
    id: String,
    body: String,
    visible_at: Timestamp,
    receive_count: u32,
    receipt: Option<String>,
    sent_seq: u64,
    sent_at: Timestamp,
}

/// An in-memory queue with SQS's semantics (delay, visibility timeout, receive count, redrive to
/// a dead-letter queue after `max_receive_count` receives), on the injected clock, so tests can
/// move time instead of waiting.
pub struct MemoryQueue {
    clock: SharedClock,
    visibility: Duration,
    max_receive_count: u32,
    state: Mutex<QueueState>,
    notify: tokio::sync::Notify,
}

#[derive(Default)]
struct QueueState {
    seq: u64,
    messages: BTreeMap<u64, Msg>,
    dead: Vec<String>,
}

impl MemoryQueue {
    pub fn new(clock: SharedClock, visibility: Duration, max_receive_count: u32) -> Self {
        Self { clock, visibility, max_receive_count, state: Mutex::default(), notify: tokio::sync::Notify::new() }
    }

    fn state(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bodies moved to the dead-letter queue.
    pub fn dead_letters(&self) -> Vec<String> {
        self.state().dead.clone()
    }

    fn take_visible(&self, max: usize, visibility: Duration) -> Vec<QueueMessage> {
        let now = self.clock.now();
        let hide_until = now + chrono::Duration::from_std(visibility).unwrap_or(chrono::Duration::zero());
        let mut st = self.state();
        let mut out = Vec::new();
        let mut dead = Vec::new();
        for (seq, m) in st.messages.iter_mut() {
            if out.len() >= max {
                break;
            }
            if m.visible_at > now {
                continue;
            }
            if m.receive_count >= self.max_receive_count {
                dead.push(*seq);
                continue;
            }
            m.receive_count += 1;
            m.visible_at = hide_until;
            let receipt = format!("{}:{}:{}", m.sent_seq, m.receive_count, uuid::Uuid::new_v4());
            m.receipt = Some(receipt.clone());
            out.push(QueueMessage {
                message_id: m.id.clone(),
                receipt_handle: receipt,
                body: m.body.clone(),
                receive_count: m.receive_count,
                sent_at: Some(m.sent_at),
            });
        }
        for seq in dead {
            if let Some(m) = st.messages.remove(&seq) {
                st.dead.push(m.body);
            }
        }
        out
    }

    fn find_by_receipt<'a>(st: &'a mut QueueState, receipt: &str) -> Option<(u64, &'a mut Msg)> {
        st.messages.iter_mut().find(|(_, m)| m.receipt.as_deref() == Some(receipt)).map(|(k, m)| (*k, m))
    }
}

#[async_trait]
impl JobQueue for MemoryQueue {
    async fn send(&self, body: &str, delay: Duration) -> StoreResult<String> {
        check_send(body, delay)?;
        let now = self.clock.now();
        let id = uuid::Uuid::new_v4().to_string();
        {
            let mut st = self.state();
            st.seq += 1;
            let seq = st.seq;
            st.messages.insert(
                seq,
                Msg {
                    id: id.clone(),
                    body: body.to_owned(),
                    visible_at: now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::zero()),
                    receive_count: 0,
                    receipt: None,
                    sent_seq: seq,
                    sent_at: now,
                },
            );
        }
        self.notify.notify_waiters();
        Ok(id)
    }

    async fn receive(&self, max: u32, wait: Duration, visibility: Option<Duration>) -> StoreResult<Vec<QueueMessage>> {
        if !(1..=10).contains(&max) {
            return Err(StoreError::Rejected("receive takes 1 to 10 messages".into()));
        }
        let visibility = visibility.unwrap_or(self.visibility);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let got = self.take_visible(max as usize, visibility);
            if !got.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(got);
            }
            // Woken by a send, or re-check every 50 ms for delayed messages coming due.
            let nap = (deadline - tokio::time::Instant::now()).min(Duration::from_millis(50));
            let _ = tokio::time::timeout(nap, self.notify.notified()).await;
        }
    }

    async fn change_visibility(&self, receipt_handle: &str, after: Duration) -> StoreResult<()> {
        let now = self.clock.now();
        let mut st = self.state();
        let (_, m) = Self::find_by_receipt(&mut st, receipt_handle)
            .ok_or_else(|| StoreError::Rejected("receipt handle is not current".into()))?;
        m.visible_at = now + chrono::Duration::from_std(after).unwrap_or(chrono::Duration::zero());
        Ok(())
    }

    async fn delete(&self, receipt_handle: &str) -> StoreResult<()> {
        let mut st = self.state();
        // Deleting with a stale handle is a no-op, as in SQS.
        if let Some((seq, _)) = Self::find_by_receipt(&mut st, receipt_handle) {
            st.messages.remove(&seq);
        }
        Ok(())
    }

    async fn approximate_len(&self) -> StoreResult<u64> {
        Ok(self.state().messages.len() as u64)
    }
}
