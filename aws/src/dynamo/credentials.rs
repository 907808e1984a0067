//! `credentials`: the register (`user_id`, `cred` = `session#…`/`token#…`/`handoff#…`/`oauth#…`/
//! `consent#…`). A credential is issued by one `TransactWriteItems`: put the credential (its key
//! must be new; a consent replaces the user's consent to the same client), put its register
//! entry, and check the user's `cred_version` — so a credential verified against a version that
//! has since moved on is never written, and every written one is in the register for a
//! consistent `Query`.
//!
//! The register also names every cross-app audit record (`cred` = `audit#<id>`, written in the
//! record's own transaction, expiring with its retention): no credential, so [`CredentialStore::list`]
//! and therefore every revocation leave them alone; a deleted account's pseudonymisation reads
//! them consistently ([`audit_ids`]) and then drops them ([`forget_audit`]).
//!
//! And it keeps, for [`gatehouse::tables::credentials::ENDED_MARK_LIFETIME`], a mark of every tree a
//! revocation finished (`cred` = `ended#<root>`, TTL): put in the same `BatchWriteItem` that
//! forgets the root's entry, read with the entries ([`CredentialStore::read`]), never listed as
//! a credential.

use super::oauth_consents::consent_key;
use super::personal_access_tokens::DynamoPersonalAccessTokens;
use super::sessions::DynamoSessions;
use super::users::{carries_events, event_sets, user_pk, version_condition};
use super::{
    Cond, DynamoCrossAppSessions, DynamoOAuthConsents, DynamoOAuthRefreshTokens, Item, LIVE, Table, Transacted, built,
    from_ms, key1, ms, n, opt_from_secs, s, secs, transact_update_in,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, DeleteRequest, Put, PutRequest, TransactWriteItem, WriteRequest,
};
use gatehouse::tables::credential_ref::{CredentialKind, CredentialRef};
use gatehouse::tables::credentials::{CredentialEntry, CredentialStore, NewCredential, NewDevice, OnUser, Register};
use gatehouse::tables::users::{EventMark, UserId, evicted_devices};
use gatehouse::values::clock::Timestamp;
use gatehouse::values::error::{StoreError, StoreResult};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Serialize, Deserialize)]
struct EntryItem {
    user_id: String,
    cred: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cross_app_id: Option<String>,
    created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
}

/// The sort-key prefix of the register's audit entries.
const AUDIT: &str = "audit#";
/// The sort-key prefix of the marks of trees revoked lately.
const ENDED: &str = "ended#";

/// The register entry naming `user`'s audit record `id` (kept until `expires_at`, the record's
/// retention), as an item of `register`: put in the record's own transaction.
pub(super) fn audit_entry(
    register: &Table,
    user: &UserId,
    id: &str,
    created_at: Timestamp,
    expires_at: Option<Timestamp>,
) -> StoreResult<Item> {
    register.encode(&EntryItem {
        user_id: user.as_str().to_owned(),
        cred: format!("{AUDIT}{id}"),
        parent: None,
        cross_app_id: Some(id.to_owned()),
        created_at: ms(created_at),
        expires_at: expires_at.map(secs),
    })
}

/// The ids of every audit record of `user` the register names (expired entries too: TTL deletes
/// late, and so may the record), read with a consistent `Query`.
pub(super) async fn audit_ids(register: &Table, user: &UserId) -> StoreResult<Vec<String>> {
    register
        .query_all(
            |q| {
                q.key_condition_expression("user_id = :u AND begins_with(cred, :audit)")
                    .expression_attribute_values(":u", s(user.as_str()))
                    .expression_attribute_values(":audit", s(AUDIT))
                    .projection_expression("cred")
                    .consistent_read(true)
            },
            |item| {
                let cred = item.get("cred").and_then(|v| v.as_s().ok());
                let id = cred.and_then(|c| c.strip_prefix(AUDIT)).filter(|id| !id.is_empty());
                id.map(str::to_owned)
                    .ok_or_else(|| StoreError::corrupt(&register.name, format!("audit entry {cred:?}")))
            },
        )
        .await
}

/// Drops `user`'s register entries of the audit records `ids` (after they were pseudonymised).
pub(super) async fn forget_audit(register: &Table, user: &UserId, ids: &[String]) -> StoreResult<()> {
    let keys: Vec<Item> = ids
        .iter()
        .map(|id| {
            HashMap::from([("user_id".to_owned(), s(user.as_str())), ("cred".to_owned(), s(format!("{AUDIT}{id}")))])
        })
        .collect();
    register.delete_keys(keys).await?;
    Ok(())
}

/// The key of the register item `cred` (an entry, a mark, an audit link) of `user`.
fn entry_key(user: &UserId, cred: String) -> Item {
    HashMap::from([("user_id".to_owned(), s(user.as_str())), ("cred".to_owned(), s(cred))])
}

pub struct DynamoCredentials {
    t: Table,
    /// The users table: the issue's condition (and device, and events) is on the user item.
    users: Table,
    users_table: String,
    sessions: Arc<DynamoSessions>,
    tokens: Arc<DynamoPersonalAccessTokens>,
    cross_app: Arc<DynamoCrossAppSessions>,
    refresh_tokens: Arc<DynamoOAuthRefreshTokens>,
    consents: Arc<DynamoOAuthConsents>,
}

impl DynamoCredentials {
    pub fn new(
        t: Table,
        users: Table,
        sessions: Arc<DynamoSessions>,
        tokens: Arc<DynamoPersonalAccessTokens>,
        cross_app: Arc<DynamoCrossAppSessions>,
        refresh_tokens: Arc<DynamoOAuthRefreshTokens>,
        consents: Arc<DynamoOAuthConsents>,
    ) -> Self {
        let users_table = users.name.clone();
        Self { t, users, users_table, sessions, tokens, cross_app, refresh_tokens, consents }
    }

    /// Every item of `user`'s partition but the audit entries, read consistently: entries and
    /// marks.
    async fn partition(&self, user: &UserId) -> StoreResult<Vec<Item>> {
        self.t
            .query_all(
                |q| {
                    // The audit entries name no credential: no revocation reads them.
                    q.key_condition_expression("user_id = :u")
                        .filter_expression("NOT begins_with(cred, :audit)")
                        .expression_attribute_values(":u", s(user.as_str()))
                        .expression_attribute_values(":audit", s(AUDIT))
                        .consistent_read(true)
                },
                Ok,
            )
            .await
    }

    /// Whether `item` is the mark of an ended tree: its root, and whether the mark still holds.
    fn mark(&self, item: &Item) -> StoreResult<Option<(CredentialRef, bool)>> {
        let Some(root) = item.get("cred").and_then(|v| v.as_s().ok()).and_then(|c| c.strip_prefix(ENDED)) else {
            return Ok(None);
        };
        let root = CredentialRef::decode(root)
            .ok_or_else(|| StoreError::corrupt(&self.t.name, format!("mark of {root:?}")))?;
        let until = item.get("expires_at").and_then(|v| v.as_n().ok()).and_then(|n| n.parse::<i64>().ok());
        let live = until.is_some_and(|until| until > secs(self.t.now()));
        Ok(Some((root, live)))
    }

    /// The item that marks `root`'s tree ended until `until` ([`Register::ended`]).
    fn ended_mark(&self, user: &UserId, root: &CredentialRef, until: Timestamp) -> StoreResult<Item> {
        self.t.encode(&EntryItem {
            user_id: user.as_str().to_owned(),
            cred: format!("{ENDED}{}", root.encode()),
            parent: None,
            cross_app_id: None,
            created_at: ms(self.t.now()),
            expires_at: Some(secs(until)),
        })
    }

    fn entry(&self, item: Item) -> StoreResult<CredentialEntry> {
        let i: EntryItem = self.t.decode(item)?;
        let table = &self.t.name;
        let cref = |s: &str| CredentialRef::decode(s).ok_or_else(|| StoreError::corrupt(table, format!("ref {s:?}")));
        Ok(CredentialEntry {
            user_id: UserId::from_stored(i.user_id),
            credential: cref(&i.cred)?,
            parent: i.parent.as_deref().map(cref).transpose()?,
            cross_app_id: i.cross_app_id,
            created_at: from_ms(table, i.created_at)?,
            expires_at: opt_from_secs(table, i.expires_at)?,
        })
    }
}

/// The update of the user item under the issue's condition `cond`, when the issue writes on
/// the user: listing the device `device` (the map written whole when none was listed as read,
/// else the device set in it and the oldest listed removed at
/// [`gatehouse::tables::users::MAX_DEVICES`]) and numbering `events` ([`event_sets`]).
fn user_update(
    users_table: &str,
    user: &UserId,
    cond: Cond,
    device: Option<NewDevice<'_>>,
    events: &[EventMark],
) -> StoreResult<TransactWriteItem> {
    let (mut sets, mut cond) = event_sets(cond, events);
    let mut removes = Vec::new();
    if let Some(d) = device {
        let issued = n(ms(d.issued_at));
        if d.listed.is_empty() {
            let map = HashMap::from([(d.id.to_owned(), issued)]);
            sets.push("devices = :devices".to_owned());
            cond = cond.value(":devices", AttributeValue::M(map));
        } else {
            sets.push("devices.#device = :issued".to_owned());
            cond = cond.name("#device", d.id).value(":issued", issued);
            for (i, old) in evicted_devices(d.listed).iter().enumerate() {
                cond = cond.name(&format!("#old{i}"), &old.id);
                removes.push(format!("devices.#old{i}"));
            }
        }
    }
    let mut update = format!("SET {}", sets.join(", "));
    if !removes.is_empty() {
        update.push_str(&format!(" REMOVE {}", removes.join(", ")));
    }
    transact_update_in(users_table, key1("pk", user_pk(user)), &update, cond)
}

#[async_trait]
impl CredentialStore for DynamoCredentials {
    async fn issue_on_device(
        &self,
        version: u64,
        entry: &CredentialEntry,
        credential: NewCredential<'_>,
        on_user: OnUser<'_>,
    ) -> StoreResult<bool> {
        let device = on_user.device;
        // The credential's item, and the key attribute that must be new (none for a consent:
        // a re-approval replaces the consent, as the entry's put replaces its entry).
        let ((table, item), key_attr) = match credential {
            NewCredential::Session(r) => (self.sessions.item(r)?, Some("id_hash")),
            NewCredential::Token(t) => (self.tokens.item(t)?, Some("id")),
            NewCredential::Handoff(h) => (self.cross_app.handoff_item(h)?, Some("token_hash")),
            NewCredential::OAuthGrant(f) => (self.refresh_tokens.item(f)?, Some("family_id")),
            NewCredential::Consent(c) => (self.consents.item(c)?, None),
        };
        let entry_item = self.t.encode(&EntryItem {
            user_id: entry.user_id.as_str().to_owned(),
            cred: entry.credential.encode(),
            parent: entry.parent.as_ref().map(CredentialRef::encode),
            cross_app_id: entry.cross_app_id.clone(),
            created_at: ms(entry.created_at),
            expires_at: entry.expires_at.map(secs),
        })?;
        let put_credential = Put::builder().table_name(table).set_item(Some(item));
        let put_credential = built(
            match key_attr {
                Some(k) => {
                    put_credential.condition_expression("attribute_not_exists(#k)").expression_attribute_names("#k", k)
                }
                None => put_credential,
            }
            .build(),
        )?;
        let put_entry = built(Put::builder().table_name(&self.t.name).set_item(Some(entry_item)).build())?;
        // An operator's `user:disable` stops every issue path here, even one that read the
        // version after the disable (a password change or logout-other-devices racing it moves
        // the version on again).
        let user_condition = format!("{} AND attribute_not_exists(disabled_at)", version_condition(version));
        let events = on_user.events;
        let on_user = if device.is_none() && events.is_empty() {
            TransactWriteItem::builder()
                .condition_check(built(
                    ConditionCheck::builder()
                        .table_name(&self.users_table)
                        .key("pk", s(user_pk(&entry.user_id)))
                        .condition_expression(user_condition)
                        .expression_attribute_values(":v", n(version))
                        .build(),
                )?)
                .build()
        } else {
            // A new device is listed, and the issue's events numbered, by the same item's
            // update, under the same condition.
            let cond = Cond::new(user_condition).value(":v", n(version));
            user_update(&self.users_table, &entry.user_id, cond, device, events)?
        };
        let mut items = vec![
            TransactWriteItem::builder().put(put_credential).build(),
            TransactWriteItem::builder().put(put_entry).build(),
            on_user,
        ];
        // A derived credential is issued only while its parent is still there and live: a child
        // minted while its parent is being revoked cannot outlive the cascade.
        if let Some(parent) = &entry.parent {
            let (table, key_attr, key) = match parent.kind {
                CredentialKind::Session => (self.sessions.table_name(), "id_hash", key1("id_hash", &parent.key)),
                CredentialKind::Token => (self.tokens.table_name(), "id", key1("id", &parent.key)),
                CredentialKind::Handoff => {
                    (self.cross_app.handoffs_table_name(), "token_hash", key1("token_hash", &parent.key))
                }
                CredentialKind::OAuthGrant => {
                    (self.refresh_tokens.table_name(), "family_id", key1("family_id", &parent.key))
                }
                // The user's consent to the client the key names.
                CredentialKind::Consent => {
                    (self.consents.table_name(), "client_id", consent_key(&entry.user_id, &parent.key))
                }
            };
            let check_parent = built(
                ConditionCheck::builder()
                    .table_name(table)
                    .set_key(Some(key))
                    .condition_expression(format!("attribute_exists(#k) AND {LIVE}"))
                    .expression_attribute_names("#k", key_attr)
                    .expression_attribute_values(":now_s", n(secs(self.t.now())))
                    .build(),
            )?;
            items.push(TransactWriteItem::builder().condition_check(check_parent).build());
        }
        // Racing transactions on the user item (a version change, another issue) are sent again
        // (`Table::transact`); a failed condition is the answer.
        match self.t.transact(items, 8).await? {
            Transacted::Done => Ok(true),
            Transacted::Refused(codes) if codes.iter().skip(2).any(|c| c == "ConditionalCheckFailed") => {
                // Refused by the events' own marks: this very issue, landed before (an SDK
                // retry whose token DynamoDB no longer honours), not a moved version.
                carries_events(&self.users, &entry.user_id, events).await
            }
            Transacted::Refused(_) => {
                Err(StoreError::Conflict(format!("{} already exists", entry.credential.encode())))
            }
            Transacted::Contended => {
                Err(StoreError::Unavailable("credentials: issuing kept conflicting with concurrent writes".into()))
            }
        }
    }

    async fn list(&self, user: &UserId) -> StoreResult<Vec<CredentialEntry>> {
        Ok(self.read(user).await?.entries)
    }

    async fn read(&self, user: &UserId) -> StoreResult<Register> {
        let mut register = Register::default();
        for item in self.partition(user).await? {
            match self.mark(&item)? {
                Some((root, true)) => register.ended.push(root),
                // Past its time; TTL removes it later.
                Some((_, false)) => {}
                None => register.entries.push(self.entry(item)?),
            }
        }
        Ok(register)
    }

    async fn forget_and_mark(
        &self,
        user: &UserId,
        refs: &[CredentialRef],
        unmark: &[CredentialRef],
        mark: Option<(&CredentialRef, Timestamp)>,
    ) -> StoreResult<()> {
        let key = |cred: String| entry_key(user, cred);
        let delete = |cred: String| {
            DeleteRequest::builder()
                .set_key(Some(key(cred)))
                .build()
                .map(|d| WriteRequest::builder().delete_request(d).build())
        };
        let mut requests = Vec::with_capacity(refs.len() + unmark.len() + 1);
        for r in refs {
            requests.push(built(delete(r.encode()))?);
        }
        for r in unmark {
            requests.push(built(delete(format!("{ENDED}{}", r.encode())))?);
        }
        if let Some((root, until)) = mark {
            let item = self.ended_mark(user, root, until)?;
            let put = built(PutRequest::builder().set_item(Some(item)).build())?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        self.t.batch_write(requests).await
    }

    async fn end_tree_noting(
        &self,
        user: &UserId,
        root: &CredentialRef,
        until: Timestamp,
        events: &[EventMark],
    ) -> StoreResult<()> {
        if events.is_empty() {
            return self.forget_and_mark(user, std::slice::from_ref(root), &[], Some((root, until))).await;
        }
        let key = |cred: String| entry_key(user, cred);
        // Only the write that removes the entry numbers the events.
        let forget = Delete::builder()
            .table_name(&self.t.name)
            .set_key(Some(key(root.encode())))
            .condition_expression("attribute_exists(cred)")
            .build();
        let forget = built(forget)?;
        let mark = self.ended_mark(user, root, until)?;
        let put_mark = Put::builder().table_name(&self.t.name).set_item(Some(mark)).build();
        let on_user = user_update(&self.users_table, user, Cond::new("attribute_exists(pk)"), None, events)?;
        let items = vec![
            TransactWriteItem::builder().delete(forget).build(),
            TransactWriteItem::builder().put(built(put_mark)?).build(),
            on_user,
        ];
        match self.t.transact(items, 8).await? {
            Transacted::Done => Ok(()),
            // The entry gone already, or the user: ended as an unannounced revocation ends it (the
            // entry forgotten, the mark written again), numbering nothing.
            Transacted::Refused(_) => {
                self.forget_and_mark(user, std::slice::from_ref(root), &[], Some((root, until))).await
            }
            Transacted::Contended => Err(StoreError::Unavailable(
                "credentials: ending a tree kept conflicting with concurrent writes".into(),
            )),
        }
    }

    async fn knows(&self, user: &UserId, cred: &CredentialRef) -> StoreResult<bool> {
        let key = |c: String| entry_key(user, c);
        if self.t.get(key(cred.encode())).await?.is_some() {
            return Ok(true);
        }
        let Some(item) = self.t.get(key(format!("{ENDED}{}", cred.encode()))).await? else { return Ok(false) };
        Ok(self.mark(&item)?.is_some_and(|(_, live)| live))
    }

    async fn audited(&self, user: &UserId, id: &str) -> StoreResult<bool> {
        let found = self
            .t
            .query_all(
                |q| {
                    q.key_condition_expression("user_id = :u AND cred = :c")
                        .expression_attribute_values(":u", s(user.as_str()))
                        .expression_attribute_values(":c", s(format!("{AUDIT}{id}")))
                        .projection_expression("cred")
                        .consistent_read(true)
                },
                |_| Ok(()),
            )
            .await?;
        Ok(!found.is_empty())
    }
}
