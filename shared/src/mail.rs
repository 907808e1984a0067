//! Outgoing mail: a [`Mailer`] trait, the log mailer of the local run (prints every mail, links
//! included, to standard output, and says it is local-only), and SES v2 in production
//! (`gatehouse_aws::ses`).

use async_trait::async_trait;
use std::sync::{Arc, Mutex};
use thiserror::Error;

#[derive(Clone, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
}

impl Mail {
    /// A plain-text mail to `to`.
    pub fn new(to: &crate::values::email::Email, subject: impl Into<String>, text: impl Into<String>) -> Self {
        Self { to: to.as_str().to_owned(), subject: subject.into(), text: text.into() }
    }
}

/// Mail bodies carry reset links: never in `Debug` output or logs.
impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mail").field("subject", &self.subject).field("text", &"[REDACTED]").finish_non_exhaustive()
    }
}

#[derive(Debug, Error)]
pub enum MailError {
    /// Worth retrying (throttled, unreachable).
    #[error("mail not sent, will retry: {0}")]
    Transient(String),
    /// Retrying will not help (rejected address, unverified sender).
    #[error("mail rejected: {0}")]
    Rejected(String),
}

#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, mail: &Mail) -> Result<(), MailError>;
}

/// Prints each mail to standard output (the local run's "inbox") and keeps the last
/// [`LogMailer::KEPT`] in memory for tests. Local use only: it writes secrets (reset links) to the
/// terminal by design.
#[derive(Clone, Default)]
pub struct LogMailer {
    /// Bounded: `gatehouse serve` runs for days, and a mail kept forever is a slow leak.
    outbox: Arc<Mutex<std::collections::VecDeque<Mail>>>,
    quiet: bool,
}

impl LogMailer {
    /// How many of the latest mails [`LogMailer::sent`] returns.
    pub const KEPT: usize = 1000;

    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps mail in memory without printing (tests).
    pub fn quiet() -> Self {
        Self { quiet: true, ..Self::default() }
    }

    pub fn sent(&self) -> Vec<Mail> {
        self.outbox.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect()
    }
}

#[async_trait]
impl Mailer for LogMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        if !self.quiet {
            println!(
                "\n──── mail (log mailer: local only, not sent) ────\nTo: {}\nSubject: {}\n\n{}\n─────────────────────────────────────────────────\n",
                mail.to, mail.subject, mail.text
            );
        }
        let mut outbox = self.outbox.lock().unwrap_or_else(|e| e.into_inner());
        if outbox.len() == Self::KEPT {
            outbox.pop_front();
        }
        outbox.push_back(mail.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_log_mailer_keeps_only_the_latest_mails() {
        let mailer = LogMailer::quiet();
        for i in 0..LogMailer::KEPT + 5 {
            let mail = Mail { to: format!("u{i}@example.com"), subject: "s".into(), text: "t".into() };
            mailer.send(&mail).await.unwrap();
        }
        let sent = mailer.sent();
        assert_eq!(sent.len(), LogMailer::KEPT);
        assert_eq!(sent[0].to, "u5@example.com");
        assert_eq!(sent[LogMailer::KEPT - 1].to, format!("u{}@example.com", LogMailer::KEPT + 4));
    }
}
