//! `identities`: keyed by `pk` = `<provider>#<subject>`, no TTL, a user's listed through the
//! `by_user` index (`user_id`). A link is one `PutItem` on `attribute_not_exists(pk)` carrying the
//! link's own mark (`linked_by`): of racing links exactly one lands, and a refused one reads the
//! holder (consistently) to answer `Already`, unless the holder carries its own mark, which is this
//! very put sent again by the SDK after its answer was lost: still `New`. Unlinking and touching
//! are conditional on `user_id`.

use super::users::{carries_events, event_sets, user_pk};
use super::{Cond, Item, OwnMark, Table, Transacted, built, from_ms, key1, ms, n, opt_from_ms, s};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use gatehouse::tables::identities::{Identity, IdentityStore, Linked, check_key, identity_key};
use gatehouse::tables::users::{EventMark, UserId};
use gatehouse::values::clock::Timestamp;
use gatehouse::values::error::{StoreError, StoreResult};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct IdentityItem {
    pk: String,
    provider: String,
    subject: String,
    user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    cred_version: u64,
    linked_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_used_at: Option<i64>,
    /// Sealed with the app key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tokens: Option<String>,
    /// The mark of the link that wrote it.
    #[serde(default)]
    linked_by: String,
}

/// The attribute a link's [`OwnMark`] is stored in.
const MARK: &str = "linked_by";

/// How many times a refused link reads for the holder and finds none (unlinked in between) before
/// it gives up.
const LINK_TRIES: usize = 3;

pub struct DynamoIdentities {
    t: Table,
    /// The users table: a link or unlink that is announced numbers its event on the user item.
    users: Table,
}

impl DynamoIdentities {
    pub fn new(t: Table, users: Table) -> Self {
        Self { t, users }
    }

    /// The update of the user item that numbers `events`, while the user exists.
    fn numbering(&self, user: &UserId, events: &[EventMark]) -> StoreResult<TransactWriteItem> {
        let (sets, cond) = event_sets(Cond::new("attribute_exists(pk)"), events);
        self.users.transact_update(key1("pk", user_pk(user)), &format!("SET {}", sets.join(", ")), cond)
    }

    /// Puts `item` if the subject is free, numbering `events` on `user` in the same step.
    async fn put_noting(&self, item: Item, user: &UserId, events: &[EventMark]) -> StoreResult<bool> {
        if events.is_empty() {
            return self.t.put_if(item, Cond::new("attribute_not_exists(pk)")).await;
        }
        let put = Put::builder()
            .table_name(&self.t.name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build();
        let items = vec![TransactWriteItem::builder().put(built(put)?).build(), self.numbering(user, events)?];
        match self.t.transact(items, 6).await? {
            Transacted::Done => Ok(true),
            Transacted::Refused(_) => Ok(false),
            Transacted::Contended => Err(StoreError::Unavailable(format!("{}: linking kept conflicting", self.t.name))),
        }
    }

    fn key(provider: &str, subject: &str) -> Item {
        key1("pk", identity_key(provider, subject))
    }

    fn to_domain(&self, item: Item) -> StoreResult<Identity> {
        let i: IdentityItem = self.t.decode(item)?;
        let table = &self.t.name;
        Ok(Identity {
            provider: i.provider,
            subject: i.subject,
            user_id: UserId::from_stored(i.user_id),
            email: i.email,
            credentials_version: i.cred_version,
            linked_at: from_ms(table, i.linked_at)?,
            last_used_at: opt_from_ms(table, i.last_used_at)?,
            tokens: i.tokens,
        })
    }
}

#[async_trait]
impl IdentityStore for DynamoIdentities {
    async fn find(&self, provider: &str, subject: &str) -> StoreResult<Option<Identity>> {
        check_key(provider, subject)?;
        self.t.get(Self::key(provider, subject)).await?.map(|i| self.to_domain(i)).transpose()
    }

    async fn for_user(&self, user: &UserId) -> StoreResult<Vec<Identity>> {
        let mut out = self.t.query_owner("by_user", ("user_id", user.as_str()), |item| self.to_domain(item)).await?;
        out.sort_by(|a, b| (&a.provider, &a.subject).cmp(&(&b.provider, &b.subject)));
        Ok(out)
    }

    async fn link_noting(&self, identity: &Identity, events: &[EventMark]) -> StoreResult<Linked> {
        check_key(&identity.provider, &identity.subject)?;
        let mark = OwnMark::new();
        let item = self.t.encode(&IdentityItem {
            pk: identity.key(),
            provider: identity.provider.clone(),
            subject: identity.subject.clone(),
            user_id: identity.user_id.as_str().to_owned(),
            email: identity.email.clone(),
            cred_version: identity.credentials_version,
            linked_at: ms(identity.linked_at),
            last_used_at: identity.last_used_at.map(ms),
            tokens: identity.tokens.clone(),
            linked_by: mark.as_str().to_owned(),
        })?;
        let key = Self::key(&identity.provider, &identity.subject);
        for _ in 0..LINK_TRIES {
            if self.put_noting(item.clone(), &identity.user_id, events).await? {
                return Ok(Linked::New);
            }
            // Refused: someone holds the subject, or this very put landed and was sent again.
            match self.t.get(key.clone()).await? {
                Some(held) if mark.on(&held, MARK) => return Ok(Linked::New),
                Some(held) => return Ok(Linked::Already(self.to_domain(held)?)),
                // Unlinked between the refusal and the read: the subject is free again. Or,
                // announced, the user is gone: nothing is linked to no one.
                None if !events.is_empty()
                    && self.users.get(key1("pk", user_pk(&identity.user_id))).await?.is_none() =>
                {
                    return Err(StoreError::Conflict(format!("{}: the user is gone", self.t.name)));
                }
                None => {}
            }
        }
        Err(StoreError::Unavailable(format!("{}: the subject kept being linked and unlinked", self.t.name)))
    }

    async fn unlink_noting(
        &self,
        provider: &str,
        subject: &str,
        user: &UserId,
        events: &[EventMark],
    ) -> StoreResult<bool> {
        check_key(provider, subject)?;
        let cond = Cond::new("user_id = :u").value(":u", s(user.as_str()));
        if events.is_empty() {
            return self.t.delete_if(Self::key(provider, subject), cond).await;
        }
        let delete = Delete::builder()
            .table_name(&self.t.name)
            .set_key(Some(Self::key(provider, subject)))
            .condition_expression("user_id = :u")
            .expression_attribute_values(":u", s(user.as_str()))
            .build();
        let items = vec![TransactWriteItem::builder().delete(built(delete)?).build(), self.numbering(user, events)?];
        match self.t.transact(items, 6).await? {
            Transacted::Done => Ok(true),
            // This very removal, landed before: the user carries its marks.
            Transacted::Refused(_) if carries_events(&self.users, user, events).await? => Ok(true),
            // Another user's, or gone; or the user gone (then removed unannounced).
            Transacted::Refused(_) => self.t.delete_if(Self::key(provider, subject), cond).await,
            Transacted::Contended => {
                Err(StoreError::Unavailable(format!("{}: unlinking kept conflicting", self.t.name)))
            }
        }
    }

    async fn touch(
        &self,
        provider: &str,
        subject: &str,
        user: &UserId,
        at: Timestamp,
        tokens: Option<&str>,
    ) -> StoreResult<()> {
        check_key(provider, subject)?;
        let cond = Cond::new("user_id = :u").value(":u", s(user.as_str())).value(":at", n(ms(at)));
        let (update, cond) = match tokens {
            Some(t) => ("SET last_used_at = :at, tokens = :t", cond.value(":t", s(t))),
            None => ("SET last_used_at = :at", cond),
        };
        // Refused (another user's, or gone): nothing changes, as the contract says.
        self.t.update_if(Self::key(provider, subject), update, cond).await?;
        Ok(())
    }
}
