//! `password_reset_tokens`: keyed by the normalised email, one live token each; TTL on
//! `expires_at`. Throttle and single use are conditions on the write, not reads before it. A
//! token is spent by marking it with the spending call's own id (not by deleting it), so that
//! the SDK retrying the spend after it landed recognises its own mark instead of finding the
//! token gone, and a reset that spent it and then failed can give it back.

use super::{Cond, Item, LIVE, Table, from_ms, from_secs, key1, ms, n, s, secs};
use async_trait::async_trait;
use gatehouse::tables::password_reset_tokens::{PasswordResetTokenStore, ResetRecord, SpendMark, SpentReset};
use gatehouse::values::clock::Timestamp;
use gatehouse::values::email::Email;
use gatehouse::values::error::{StoreError, StoreResult};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct ResetItem {
    email: String,
    token_hash: String,
    created_at: i64,
    expires_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    spent_by: Option<String>,
    /// When it was spent (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    spent_at: Option<i64>,
    /// The user's credentials version it was spent under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    spent_version: Option<u64>,
}

pub struct DynamoPasswordResetTokens {
    t: Table,
}

impl DynamoPasswordResetTokens {
    pub fn new(t: Table) -> Self {
        Self { t }
    }
}

#[async_trait]
impl PasswordResetTokenStore for DynamoPasswordResetTokens {
    async fn put_unless_throttled(&self, r: &ResetRecord, throttle_since: Timestamp) -> StoreResult<bool> {
        let item = self.t.encode(&ResetItem {
            email: r.email.normalized(),
            token_hash: r.token_hash.clone(),
            created_at: ms(r.created_at),
            expires_at: secs(r.expires_at),
            spent_by: None,
            spent_at: None,
            spent_version: None,
        })?;
        let cond = Cond::new(
            "attribute_not_exists(email) OR expires_at <= :now_s OR created_at <= :since OR token_hash = :h \
             OR attribute_exists(spent_by)",
        )
        .now_s(self.t.now())
        .value(":since", n(ms(throttle_since)))
        .value(":h", s(&r.token_hash));
        self.t.put_if(item, cond).await
    }

    async fn find(&self, email: &Email) -> StoreResult<Option<ResetRecord>> {
        let found = self.find_any(email).await?;
        Ok(found.filter(|(_, spent)| spent.is_none()).map(|(r, _)| r))
    }

    async fn consume(
        &self,
        email: &Email,
        token_hash: &str,
        now: Timestamp,
        version: u64,
    ) -> StoreResult<Option<SpendMark>> {
        let cond = Cond::new(format!(
            "attribute_exists(email) AND token_hash = :h AND attribute_not_exists(spent_by) AND {LIVE}"
        ))
        .value(":h", s(token_hash))
        .value(":at", n(ms(now)))
        .value(":sv", n(version))
        .now_s(now);
        // Marked with this call's own id (`update_own`): a retried spend finds its own mark.
        let spent = self
            .t
            .update_own(
                key1("email", email.normalized()),
                "SET spent_by = :mark, spent_at = :at, spent_version = :sv",
                cond,
                "spent_by",
            )
            .await?;
        Ok(spent.and_then(|item| item.get("spent_by").and_then(|v| v.as_s().ok()).map(|m| SpendMark(m.clone()))))
    }

    async fn restore(&self, email: &Email, spend: &SpendMark) -> StoreResult<()> {
        let cond = Cond::new("spent_by = :m").value(":m", s(&spend.0));
        self.t.update_if(key1("email", email.normalized()), "REMOVE spent_by, spent_at, spent_version", cond).await?;
        Ok(())
    }

    async fn find_spent(&self, email: &Email) -> StoreResult<Option<SpentReset>> {
        Ok(self.find_any(email).await?.and_then(|(_, spent)| spent))
    }

    async fn delete(&self, email: &Email) -> StoreResult<()> {
        self.t.delete(key1("email", email.normalized())).await
    }
}

impl DynamoPasswordResetTokens {
    /// The email's live token, and when and by which spend it was spent if it was (a token spent
    /// before spends were timed counts as spent at its creation).
    async fn find_any(&self, email: &Email) -> StoreResult<Option<(ResetRecord, Option<SpentReset>)>> {
        let decode = |item: Item| -> StoreResult<(ResetRecord, Option<SpentReset>)> {
            let i: ResetItem = self.t.decode(item)?;
            let record = ResetRecord {
                email: Email::parse(&i.email).map_err(|e| StoreError::corrupt(&self.t.name, format!("email: {e}")))?,
                token_hash: i.token_hash,
                created_at: from_ms(&self.t.name, i.created_at)?,
                expires_at: from_secs(&self.t.name, i.expires_at)?,
            };
            // A token spent before spends were timed counts as spent at its creation, under a
            // version no user has (so a retry never takes it for a spend that changed nothing).
            let version = i.spent_version.unwrap_or(u64::MAX);
            let spent = match (i.spent_by, i.spent_at) {
                (None, _) => None,
                (Some(by), at) => Some(SpentReset {
                    token_hash: record.token_hash.clone(),
                    spent_at: at.map(|at| from_ms(&self.t.name, at)).transpose()?.unwrap_or(record.created_at),
                    mark: SpendMark(by),
                    version,
                }),
            };
            Ok((record, spent))
        };
        self.t.find_live(key1("email", email.normalized()), decode, |(r, _)| Some(r.expires_at)).await
    }
}
