//! `identities`: keyed by `pk` = `<provider>#<subject>`, no TTL, a user's listed through the
//! `by_user` index (`user_id`). A link is one `PutItem` on `attribute_not_exists(pk)` carrying the
//! link's own mark (`linked_by`): of racing links exactly one lands, and a refused one reads the
//! holder (consistently) to answer `Already`, unless the holder carries its own mark, which is this
//! very put sent again by the SDK after its answer was lost: still `New`. Unlinking and touching
//! are conditional on `user_id`.

use super::{Cond, Item, OwnMark, Table, from_ms, key1, ms, n, opt_from_ms, s};
use async_trait::async_trait;
use gatehouse::tables::identities::{Identity, IdentityStore, Linked, check_key, identity_key};
use gatehouse::tables::users::UserId;
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
}

impl DynamoIdentities {
    pub fn new(t: Table) -> Self {
        Self { t }
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

    async fn link(&self, identity: &Identity) -> StoreResult<Linked> {
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
            if self.t.put_if(item.clone(), Cond::new("attribute_not_exists(pk)")).await? {
                return Ok(Linked::New);
            }
            // Refused: someone holds the subject, or this very put landed and was sent again.
            match self.t.get(key.clone()).await? {
                Some(held) if mark.on(&held, MARK) => return Ok(Linked::New),
                Some(held) => return Ok(Linked::Already(self.to_domain(held)?)),
                // Unlinked between the refusal and the read: the subject is free again.
                None => {}
            }
        }
        Err(StoreError::Unavailable(format!("{}: the subject kept being linked and unlinked", self.t.name)))
    }

    async fn unlink(&self, provider: &str, subject: &str, user: &UserId) -> StoreResult<bool> {
        check_key(provider, subject)?;
        let cond = Cond::new("user_id = :u").value(":u", s(user.as_str()));
        self.t.delete_if(Self::key(provider, subject), cond).await
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
