//! `users`: one item per user (`pk = user#<id>`) and one per normalised email
//! (`pk = email#<email>`) that reserves the address. Both are written in one transaction whose
//! conditions make the email unique without a read first.

use super::{Cond, Item, Table, Transacted, cancellation_codes, from_ms, key1, ms, n, opt_from_ms, s};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use gatehouse::tables::users::Passkey;
use gatehouse::tables::users::{
    CredentialChange, DisplayName, EmailMove, EmailSwap, EventMark, KnownDevice, Marks, NoticeMark, PasskeyAdd,
    PasskeyUse, RECENT_CHANGES, RecentChange, TwoFactor, TwoFactorWrite, User, UserId, UserStore,
};
use gatehouse::values::clock::Timestamp;
use gatehouse::values::email::Email;
use gatehouse::values::error::{StoreError, StoreResult};
use gatehouse::values::password::PasswordHash;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct UserItem {
    pk: String,
    id: String,
    name: String,
    email: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_verified_at: Option<i64>,
    password: String,
    created_at: i64,
    updated_at: i64,
    /// The credentials version; absent on users from before it existed (= 0).
    #[serde(default)]
    cred_version: u64,
    /// The sealed TOTP secret, when enrolled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tf_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tf_confirmed_at: Option<i64>,
    /// Unused recovery codes: a map from each code's SHA-256 to `true` (a map so that one code is
    /// removed by its key, conditionally on its being there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tf_recovery: Option<std::collections::BTreeMap<String, bool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tf_last_step: Option<u64>,
    /// The nonce of the sign-in that made the last use of a code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tf_last_use: Option<String>,
    /// When an operator disabled the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    disabled_at: Option<i64>,
    /// The keyed tag of the address before the last email change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email_prev: Option<String>,
    /// When the account's deletion began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deleted_at: Option<i64>,
    /// The known devices: device id → when its cookie was given (ms). Written by a sign-in's
    /// issue transaction (`credentials.rs`), removed by every move of the version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    devices: Option<std::collections::BTreeMap<String, i64>>,
    /// The version the lasting ways in date from (absent: 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ways_in_since: Option<u64>,
    /// The event counter ([`User::event_seq`]; absent: 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    event_seq: Option<u64>,
}

#[derive(Serialize, Deserialize)]
struct EmailItem {
    pk: String,
    user_id: String,
}

pub(crate) fn user_pk(id: &UserId) -> String {
    format!("user#{id}")
}

/// The key of `id`'s user item.
pub(crate) fn owner_key(id: &UserId) -> Item {
    key1("pk", user_pk(id))
}

/// What a credential check reads of a user item.
pub(crate) const OWNER_PROJECTION: &str = "pk, cred_version, disabled_at, deleted_at";

/// The [`gatehouse::tables::users::OwnerState`] of a user item read with [`OWNER_PROJECTION`]; `None` for
/// an item that is not a user's.
pub(crate) fn owner_state(item: &Item) -> StoreResult<Option<gatehouse::tables::users::OwnerState>> {
    if !matches!(item.get("pk"), Some(AttributeValue::S(pk)) if pk.starts_with("user#")) {
        return Ok(None);
    }
    let version = match item.get("cred_version") {
        None => 0,
        Some(AttributeValue::N(v)) => v.parse().map_err(|_| StoreError::corrupt("users", "cred_version"))?,
        Some(_) => return Err(StoreError::corrupt("users", "cred_version")),
    };
    let disabled = item.contains_key("disabled_at") || item.contains_key("deleted_at");
    Ok(Some(gatehouse::tables::users::OwnerState { credentials_version: version, disabled }))
}

fn email_pk(email: &Email) -> String {
    format!("email#{}", email.normalized())
}

pub struct DynamoUsers {
    t: Table,
}

impl DynamoUsers {
    pub fn new(t: Table) -> Self {
        Self { t }
    }

    fn to_domain(&self, i: UserItem) -> StoreResult<User> {
        let table = &self.t.name;
        Ok(User {
            id: UserId::from_stored(i.id),
            name: i.name,
            email: Email::parse(&i.email).map_err(|e| StoreError::corrupt(table, format!("email: {e}")))?,
            email_verified_at: opt_from_ms(table, i.email_verified_at)?,
            password_hash: PasswordHash::from_stored(i.password),
            created_at: from_ms(table, i.created_at)?,
            updated_at: from_ms(table, i.updated_at)?,
            credentials_version: i.cred_version,
            two_factor: TwoFactor {
                sealed_secret: i.tf_secret,
                confirmed_at: opt_from_ms(table, i.tf_confirmed_at)?,
                recovery_codes: i.tf_recovery.map(|m| m.into_keys().collect()).unwrap_or_default(),
                last_step: i.tf_last_step,
                last_use: i.tf_last_use,
            },
            disabled_at: opt_from_ms(table, i.disabled_at)?,
            passkeys: Vec::new(),
            email_changed_from: i.email_prev,
            deleted_at: opt_from_ms(table, i.deleted_at)?,
            devices: {
                let mut devices = Vec::new();
                for (id, at) in i.devices.unwrap_or_default() {
                    devices.push(KnownDevice { id, issued_at: from_ms(table, at)? });
                }
                devices.sort_by(|a, b| a.issued_at.cmp(&b.issued_at).then_with(|| a.id.cmp(&b.id)));
                devices
            },
            pending_notices: Vec::new(),
            event_seq: i.event_seq.unwrap_or(0),
            pending_events: std::collections::BTreeMap::new(),
            recent_changes: Vec::new(),
            ways_in_since: i.ways_in_since.unwrap_or(0),
        })
    }

    /// The user in `item`: its fields, and its passkeys from the `passkey#<id>` attributes.
    fn user_in(&self, mut item: Item) -> StoreResult<User> {
        let names: Vec<String> = item.keys().filter(|k| k.starts_with(PASSKEY_ATTR)).cloned().collect();
        let mut passkeys = Vec::with_capacity(names.len());
        for name in names {
            let Some(value) = item.remove(&name) else { continue };
            let p: PasskeyItem = serde_dynamo::from_attribute_value(value)
                .map_err(|e| StoreError::corrupt(&self.t.name, format!("{name}: {e}")))?;
            passkeys.push(Passkey {
                id: name[PASSKEY_ATTR.len()..].to_owned(),
                name: p.name,
                public_key: p.key,
                state: p.state,
                transports: p.transports,
                created_at: from_ms(&self.t.name, p.created_at)?,
                last_used_at: opt_from_ms(&self.t.name, p.used_at)?,
            });
        }
        passkeys.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
        let pending_notices =
            item.keys().filter_map(|k| k.strip_prefix(NOTICE_ATTR)).map(str::to_owned).collect::<Vec<_>>();
        let mut pending_events = std::collections::BTreeMap::new();
        for (name, value) in item.iter().filter(|(k, _)| k.starts_with(EVENT_ATTR)) {
            let seq = match value {
                AttributeValue::N(v) => v.parse().map_err(|_| StoreError::corrupt(&self.t.name, name))?,
                _ => return Err(StoreError::corrupt(&self.t.name, name)),
            };
            pending_events.insert(name[EVENT_ATTR.len()..].to_owned(), seq);
        }
        let mut recent_changes = Vec::new();
        let changes: Vec<String> = item.keys().filter(|k| k.starts_with(CHANGE_ATTR)).cloned().collect();
        for name in changes {
            let Some(value) = item.remove(&name) else { continue };
            let version = name[CHANGE_ATTR.len()..].parse().map_err(|_| StoreError::corrupt(&self.t.name, &name))?;
            let c: ChangeItem = serde_dynamo::from_attribute_value(value)
                .map_err(|e| StoreError::corrupt(&self.t.name, format!("{name}: {e}")))?;
            recent_changes.push(RecentChange { version, mark: c.mark, by: c.by, at: from_ms(&self.t.name, c.at)? });
        }
        recent_changes.sort_by_key(|c| std::cmp::Reverse(c.version));
        let mut user = self.to_domain(self.t.decode(item)?)?;
        user.passkeys = passkeys;
        user.pending_notices = pending_notices;
        user.pending_events = pending_events;
        user.recent_changes = recent_changes;
        Ok(user)
    }
}

/// A passkey is an attribute of its user's item, `passkey#<credential id>` (base64url): one
/// conditional write adds, uses or removes it, and the user's one read brings them all.
/// `passkey_count` counts them, so the limit is a condition of the same write.
const PASSKEY_ATTR: &str = "passkey#";

/// Names each `passkey#<id>` attribute in `cond` (`#passkey<i>`: the `#` in the name needs a
/// placeholder), for a REMOVE of them all; returns the placeholders.
fn passkey_names(mut cond: Cond, attrs: impl Iterator<Item = String>) -> (Cond, Vec<String>) {
    let mut placeholders = Vec::new();
    for (i, attr) in attrs.enumerate() {
        let placeholder = format!("#passkey{i}");
        cond = cond.name(&placeholder, &attr);
        placeholders.push(placeholder);
    }
    (cond, placeholders)
}

/// A promised notice is an attribute `notice#<mark>` of its user's item (the time it was
/// written), put by the write that makes its change and removed by the notice's job.
const NOTICE_ATTR: &str = "notice#";

/// A promised event is an attribute `event#<mark>` of its user's item (N: its sequence number),
/// put by the write that makes its fact, which takes the number from `event_seq`, and removed by
/// the event's job once the event is recorded.
const EVENT_ATTR: &str = "event#";

/// A move of the credentials version to `v` is recorded as the attribute `change#<v>`
/// ([`ChangeItem`]); the write that records `change#<v>` removes `change#<v − RECENT_CHANGES>`.
const CHANGE_ATTR: &str = "change#";

#[derive(Serialize, Deserialize)]
struct ChangeItem {
    mark: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    by: Option<String>,
    at: i64,
}

/// `update` with the notice's attribute set too (`update` has a `SET` clause, and `cond` gets
/// the attribute's name and `:u`, the write's time).
fn noting(update: &str, cond: Cond, notice: Option<&NoticeMark>) -> (String, Cond) {
    match notice {
        None => (update.to_owned(), cond),
        Some(n) => (
            update.replacen("SET ", "SET #notice = :u, ", 1),
            cond.name("#notice", &format!("{NOTICE_ATTR}{}", n.as_str())),
        ),
    }
}

/// `update` with `marks` set too: the notice's attribute ([`noting`]), and each event's mark
/// numbered from the counter, which moves on by as many (every right-hand side reads the item as
/// it was before the write: the i-th mark gets the old count + i), each only if not there yet
/// (so the write, sent again after it landed, is refused: [`carries_events`] tells it apart).
fn marked(update: &str, cond: Cond, marks: Marks<'_>) -> (String, Cond) {
    let (update, cond) = noting(update, cond, marks.notice);
    let (sets, cond) = event_sets(cond, marks.events);
    if sets.is_empty() {
        return (update, cond);
    }
    (update.replacen("SET ", &format!("SET {}, ", sets.join(", ")), 1), cond)
}

/// The `SET` clauses (and their names, values and conditions on `cond`) that put `events` on the
/// user with the next numbers: the counter moves on by as many; the i-th mark gets the old count
/// plus i (every right-hand side reads the item as it was before the write); a mark already there
/// refuses the write (its own retry, told apart by a read). None without events.
pub(crate) fn event_sets(mut cond: Cond, events: &[EventMark]) -> (Vec<String>, Cond) {
    if events.is_empty() {
        return (Vec::new(), cond);
    }
    let mut sets = vec!["event_seq = if_not_exists(event_seq, :event_zero) + :events".to_owned()];
    cond = cond.value(":event_zero", n(0)).value(":events", n(events.len()));
    for (i, event) in events.iter().enumerate() {
        sets.push(format!("#event{i} = if_not_exists(event_seq, :event_zero) + :event{i}"));
        cond = cond
            .name(&format!("#event{i}"), &format!("{EVENT_ATTR}{}", event.as_str()))
            .value(&format!(":event{i}"), n(i + 1))
            .and(&format!("attribute_not_exists(#event{i})"));
    }
    (sets, cond)
}

/// Whether the user `id` carries one of `events`' marks: a write refused with them was this very
/// write, landed before (one consistent read; `false` without events, and no read).
pub(crate) async fn carries_events(t: &Table, id: &UserId, events: &[EventMark]) -> StoreResult<bool> {
    if events.is_empty() {
        return Ok(false);
    }
    let item = t.get(key1("pk", user_pk(id))).await?;
    Ok(item.is_some_and(|i| events.iter().any(|e| i.contains_key(&format!("{EVENT_ATTR}{}", e.as_str())))))
}

#[derive(Serialize, Deserialize)]
struct PasskeyItem {
    name: String,
    key: String,
    state: String,
    transports: u8,
    created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    used_at: Option<i64>,
    /// The last use's ceremony: a use retried after it landed recognises itself by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    used_by: Option<String>,
}

/// "The user exists and its credentials version is `:v`" (users from before versions have none:
/// version 0).
pub(crate) fn version_condition(expected: u64) -> &'static str {
    if expected == 0 {
        "attribute_exists(pk) AND (attribute_not_exists(cred_version) OR cred_version = :v)"
    } else {
        "attribute_exists(pk) AND cred_version = :v"
    }
}

#[async_trait]
impl UserStore for DynamoUsers {
    async fn create(&self, user: &User) -> StoreResult<()> {
        let user_item = self.t.encode(&UserItem {
            pk: user_pk(&user.id),
            id: user.id.as_str().to_owned(),
            name: user.name.clone(),
            email: user.email.as_str().to_owned(),
            email_verified_at: user.email_verified_at.map(ms),
            password: user.password_hash.as_str().to_owned(),
            created_at: ms(user.created_at),
            updated_at: ms(user.updated_at),
            cred_version: user.credentials_version,
            tf_secret: None,
            tf_confirmed_at: None,
            tf_recovery: None,
            tf_last_step: None,
            tf_last_use: None,
            disabled_at: user.disabled_at.map(ms),
            email_prev: user.email_changed_from.clone(),
            deleted_at: user.deleted_at.map(ms),
            devices: None,
            ways_in_since: None,
            event_seq: (user.event_seq > 0).then_some(user.event_seq),
        })?;
        let mut user_item = user_item;
        for (mark, seq) in &user.pending_events {
            user_item.insert(format!("{EVENT_ATTR}{mark}"), n(*seq));
        }
        let email_item =
            self.t.encode(&EmailItem { pk: email_pk(&user.email), user_id: user.id.as_str().to_owned() })?;
        let put = |item: Item| {
            Put::builder()
                .table_name(&self.t.name)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map(|p| TransactWriteItem::builder().put(p).build())
                .map_err(|e| StoreError::Rejected(e.to_string()))
        };
        let items = vec![put(user_item)?, put(email_item)?];
        // Concurrent transactions on one email can cancel each other (TransactionConflict) before
        // either condition is judged: those are sent again; a failed condition is the answer.
        match self.t.transact(items, 6).await? {
            Transacted::Done => Ok(()),
            Transacted::Refused(_) => Err(StoreError::Conflict("the email is already registered".into())),
            Transacted::Contended => {
                Err(StoreError::Unavailable("users: registration kept conflicting with concurrent writes".into()))
            }
        }
    }

    async fn find(&self, id: &UserId) -> StoreResult<Option<User>> {
        match self.t.get(key1("pk", user_pk(id))).await? {
            Some(item) => Ok(Some(self.user_in(item)?)),
            None => Ok(None),
        }
    }

    async fn find_by_email(&self, email: &Email) -> StoreResult<Option<User>> {
        let Some(item) = self.t.get(key1("pk", email_pk(email))).await? else {
            return Ok(None);
        };
        let pointer: EmailItem = self.t.decode(item)?;
        self.find(&UserId::from_stored(pointer.user_id)).await
    }

    async fn change_credentials(
        &self,
        id: &UserId,
        expected: u64,
        change: CredentialChange<'_>,
        now: Timestamp,
    ) -> StoreResult<Option<u64>> {
        let next = expected + u64::from(change.revoke);
        // A change that moves the version on records itself as `change#<next>` with a mark of its
        // own: the SDK retrying it after it landed is refused by the version it moved on itself,
        // and is told apart from another change winning the race by that record, even when
        // further changes landed behind it before the retry (each keeps its own record; the last
        // RECENT_CHANGES stay). One that keeps the version (a sign-in's rehash) passes its own
        // retry's condition again, so it needs no record, and writes none.
        let mut sets = vec!["updated_at = :u", "cred_version = :next"];
        let mark = hex::encode(gatehouse::values::secret::random_bytes::<16>());
        let record = ChangeItem { mark: mark.clone(), by: change.by.map(str::to_owned), at: ms(now) };
        let record = serde_dynamo::to_attribute_value(&record)
            .map_err(|e| StoreError::Rejected(format!("a change record cannot be encoded: {e}")))?;
        if change.revoke {
            sets.push("#change = :change");
        }
        let mut cond = Cond::new(version_condition(expected))
            .value(":u", n(ms(now)))
            .value(":v", n(expected))
            .value(":next", n(next));
        if change.revoke {
            cond = cond.name("#change", &format!("{CHANGE_ATTR}{next}")).value(":change", record);
        }
        let notice_sets: Vec<String> = (0..change.notices.len()).map(|i| format!("#notice{i} = :u")).collect();
        for (i, notice) in change.notices.iter().enumerate() {
            cond = cond.name(&format!("#notice{i}"), &format!("{NOTICE_ATTR}{}", notice.as_str()));
        }
        sets.extend(notice_sets.iter().map(String::as_str));
        // Each event takes the next number from the counter (its own retry: told apart by the
        // read below).
        let (event_sets, with_events) = event_sets(cond, change.events);
        cond = with_events;
        sets.extend(event_sets.iter().map(String::as_str));
        if let Some(h) = change.password {
            sets.push("password = :p");
            cond = cond.value(":p", s(h.as_str()));
        }
        if let Some(e) = change.while_email {
            cond = cond.and("email = :e").value(":e", s(e.as_str()));
        }
        if change.disable == Some(true) {
            // A second disable keeps the first one's time.
            sets.push("disabled_at = if_not_exists(disabled_at, :u)");
        }
        if change.delete {
            sets.push("deleted_at = if_not_exists(deleted_at, :u)");
        }
        // Users from before the column was dropped may still carry a remember token: it goes.
        let mut removed = vec!["remember_token".to_owned()];
        if change.revoke {
            // The devices were known under the old version (their cookies name it).
            removed.push("devices".into());
            // The single mark of before the records.
            removed.push("cred_change".into());
            if next > RECENT_CHANGES {
                cond = cond.name("#expired_change", &format!("{CHANGE_ATTR}{}", next - RECENT_CHANGES));
                removed.push("#expired_change".into());
            }
        }
        if change.disable == Some(false) {
            removed.push("disabled_at".into());
        }
        if change.clear_two_factor {
            removed.extend(
                ["tf_secret", "tf_confirmed_at", "tf_recovery", "tf_last_step", "tf_last_use"].map(String::from),
            );
        }
        if change.clear_passkeys.is_some() && change.revoke {
            sets.push("ways_in_since = :next");
        }
        match change.clear_passkeys {
            None => {}
            // None then, and none now: a count of 0, or none ever added.
            Some([]) => {
                cond = cond.and("(attribute_not_exists(passkey_count) OR passkey_count = :no_passkeys)");
                cond = cond.value(":no_passkeys", n(0));
            }
            // Exactly those: as many (the count is kept with every add and removal) and each there.
            Some(passkeys) => {
                cond = cond.and("passkey_count = :passkeys").value(":passkeys", n(passkeys.len()));
                let (named, placeholders) =
                    passkey_names(cond, passkeys.iter().map(|p| format!("{PASSKEY_ATTR}{}", p.id)));
                cond = named;
                for placeholder in placeholders {
                    cond = cond.and(&format!("attribute_exists({placeholder})"));
                    removed.push(placeholder);
                }
                removed.push("passkey_count".into());
            }
        }
        let update = format!("SET {} REMOVE {}", sets.join(", "), removed.join(", "));
        let key = key1("pk", user_pk(id));
        if self.t.update_if(key.clone(), update, cond).await? {
            return Ok(Some(next));
        }
        if !change.revoke && change.events.is_empty() {
            return Ok(None);
        }
        // Refused: by another change, or by this one, landed with its answer lost (one
        // consistent read, only on this path): its change record, or its own event marks.
        let Some(item) = self.t.get(key).await? else { return Ok(None) };
        // An event mark is this write's alone: found, the write landed (whatever came after it).
        if change.events.iter().any(|e| item.contains_key(&format!("{EVENT_ATTR}{}", e.as_str()))) {
            return Ok(Some(next));
        }
        let ours = item
            .get(&format!("{CHANGE_ATTR}{next}"))
            .and_then(|v| v.as_m().ok())
            .and_then(|m| m.get("mark"))
            .is_some_and(|m| matches!(m, AttributeValue::S(x) if *x == mark));
        Ok(ours.then_some(next))
    }

    async fn mark_email_verified_noting(
        &self,
        id: &UserId,
        email: &Email,
        marks: Marks<'_>,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let cond = Cond::new("attribute_exists(pk) AND email = :e AND attribute_not_exists(email_verified_at)")
            .value(":u", n(ms(now)))
            .value(":e", s(email.as_str()));
        let (update, cond) = marked("SET email_verified_at = :u, updated_at = :u", cond, marks);
        Ok(self.t.update_if(key1("pk", user_pk(id)), update, cond).await?
            || carries_events(&self.t, id, marks.events).await?)
    }

    async fn change_email(&self, id: &UserId, m: EmailMove<'_>, now: Timestamp) -> StoreResult<EmailSwap> {
        let EmailMove { from, to, version, from_tag, notice, events } = m;
        if from.normalized() == to.normalized() {
            return Err(StoreError::Rejected("an email change needs a different address".into()));
        }
        let rejected = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Rejected(e.to_string());
        let values = |pairs: &[(&str, AttributeValue)]| -> Option<Item> {
            Some(pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect())
        };
        let cond = Cond::new(format!("{} AND email = :from", version_condition(version)))
            .value(":v", n(version))
            .value(":tag", s(from_tag))
            .value(":from", s(from.as_str()))
            .value(":to", s(to.as_str()))
            .value(":u", n(ms(now)));
        // (The transaction's idempotency token makes the SDK's retry of a landed swap a success.)
        let (update, cond) = marked(
            "SET email = :to, email_verified_at = :u, updated_at = :u, email_prev = :tag",
            cond,
            Marks { notice, events },
        );
        let user = self.t.transact_update(key1("pk", user_pk(id)), &update, cond)?;
        let free = Delete::builder()
            .table_name(&self.t.name)
            .key("pk", s(email_pk(from)))
            .condition_expression("user_id = :id")
            .set_expression_attribute_values(values(&[(":id", s(id.as_str()))]))
            .build()
            .map_err(rejected)?;
        let reserve = self.t.encode(&EmailItem { pk: email_pk(to), user_id: id.as_str().to_owned() })?;
        let reserve = Put::builder()
            .table_name(&self.t.name)
            .set_item(Some(reserve))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(rejected)?;
        let items = vec![
            user,
            TransactWriteItem::builder().delete(free).build(),
            TransactWriteItem::builder().put(reserve).build(),
        ];
        // As at registration: cancellations by concurrent transactions are retried; a failed
        // condition is the answer (the user's own conditions first: a stale change is not told
        // whether the address is taken).
        match self.t.transact(items, 6).await? {
            Transacted::Done => Ok(EmailSwap::Changed),
            Transacted::Refused(codes)
                if codes.get(2).is_some_and(|c| c == "ConditionalCheckFailed")
                    && !codes.iter().take(2).any(|c| c == "ConditionalCheckFailed") =>
            {
                Ok(EmailSwap::Taken)
            }
            Transacted::Refused(_) => Ok(EmailSwap::Stale),
            Transacted::Contended => {
                Err(StoreError::Unavailable("users: an email change kept conflicting with concurrent writes".into()))
            }
        }
    }

    async fn write_two_factor_noting(
        &self,
        id: &UserId,
        w: TwoFactorWrite<'_>,
        marks: Marks<'_>,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let codes = |hashes: &[String]| {
            AttributeValue::M(hashes.iter().map(|h| (h.clone(), AttributeValue::Bool(true))).collect())
        };
        const CONFIRMED: &str = "attribute_exists(tf_confirmed_at)";
        let (update, cond) = match w {
            TwoFactorWrite::Begin { sealed } => (
                "SET tf_secret = :s, updated_at = :u REMOVE tf_confirmed_at, tf_recovery, tf_last_step",
                Cond::new("attribute_exists(pk) AND attribute_not_exists(tf_confirmed_at)").value(":s", s(sealed)),
            ),
            TwoFactorWrite::Confirm { sealed, step, recovery } => (
                "SET tf_confirmed_at = :u, tf_last_step = :step, tf_recovery = :r, updated_at = :u",
                Cond::new("attribute_exists(pk) AND attribute_not_exists(tf_confirmed_at) AND tf_secret = :s")
                    .value(":s", s(sealed))
                    .value(":step", n(step))
                    .value(":r", codes(recovery)),
            ),
            TwoFactorWrite::UseStep { step, by } => (
                "SET tf_last_step = :step, tf_last_use = :by, updated_at = :u",
                Cond::new(format!("{CONFIRMED} AND (attribute_not_exists(tf_last_step) OR tf_last_step < :step)"))
                    .value(":step", n(step))
                    .value(":by", s(by)),
            ),
            TwoFactorWrite::UseRecoveryCode { hash, by } => (
                "REMOVE tf_recovery.#h SET tf_last_use = :by, updated_at = :u",
                Cond::new(format!("{CONFIRMED} AND attribute_exists(tf_recovery.#h)"))
                    .name("#h", hash)
                    .value(":by", s(by)),
            ),
            TwoFactorWrite::ReplaceRecoveryCodes { hashes } => {
                ("SET tf_recovery = :r, updated_at = :u", Cond::new(CONFIRMED).value(":r", codes(hashes)))
            }
            // Carrying an event (`two_factor.disabled`), only while it is on: of two disables
            // racing, one is announced.
            TwoFactorWrite::Clear => (
                "REMOVE tf_secret, tf_confirmed_at, tf_recovery, tf_last_step SET updated_at = :u",
                Cond::new(if marks.events.is_empty() {
                    "attribute_exists(pk)"
                } else {
                    "attribute_exists(tf_confirmed_at)"
                }),
            ),
        };
        let (update, cond) = marked(update, cond.value(":u", n(ms(now))), marks);
        if self.t.update_if(key1("pk", user_pk(id)), update, cond).await?
            || carries_events(&self.t, id, marks.events).await?
        {
            return Ok(true);
        }
        // A use refused by its condition may be this very write, retried by the SDK after it
        // landed and its answer was lost: then the item carries its nonce (one consistent read,
        // only on this path).
        Ok(match w {
            TwoFactorWrite::UseStep { step, by } => self.find(id).await?.is_some_and(|u| {
                u.two_factor.confirmed_at.is_some()
                    && u.two_factor.last_step == Some(step)
                    && u.two_factor.last_use.as_deref() == Some(by)
            }),
            TwoFactorWrite::UseRecoveryCode { by, .. } => self
                .find(id)
                .await?
                .is_some_and(|u| u.two_factor.confirmed_at.is_some() && u.two_factor.last_use.as_deref() == Some(by)),
            // A confirmation is ours if the secret and the (freshly generated) recovery codes are.
            TwoFactorWrite::Confirm { sealed, recovery, .. } => {
                self.t.get(key1("pk", user_pk(id))).await?.is_some_and(|i| {
                    let secret = matches!(i.get("tf_secret"), Some(AttributeValue::S(x)) if x == sealed);
                    let codes = match i.get("tf_recovery") {
                        Some(AttributeValue::M(m)) => {
                            m.len() == recovery.len() && recovery.iter().all(|h| m.contains_key(h))
                        }
                        _ => false,
                    };
                    i.contains_key("tf_confirmed_at") && secret && codes
                })
            }
            _ => false,
        })
    }

    async fn update_name_noting(
        &self,
        id: &UserId,
        name: &DisplayName,
        marks: Marks<'_>,
        now: Timestamp,
    ) -> StoreResult<Option<User>> {
        // `#n`: `name` is a DynamoDB reserved word.
        let cond = Cond::new("attribute_exists(pk)").value(":n", s(name.as_str())).value(":u", n(ms(now)));
        let (update, cond) = marked("SET #n = :n, updated_at = :u", cond.name("#n", "name"), marks);
        match self.t.update_if_returning(key1("pk", user_pk(id)), update, cond).await? {
            Some(item) => Ok(Some(self.user_in(item)?)),
            // Refused with its event marks there: this write, landed before its answer was lost.
            None if carries_events(&self.t, id, marks.events).await? => self.find(id).await,
            None => Ok(None),
        }
    }

    async fn delete(&self, id: &UserId) -> StoreResult<bool> {
        let Some(user) = self.find(id).await? else {
            return Ok(false);
        };
        let delete = |pk: String, cond: &str, id_value: Option<&str>| {
            Delete::builder()
                .table_name(&self.t.name)
                .key("pk", s(pk))
                .condition_expression(cond)
                .set_expression_attribute_values(
                    id_value.map(|v| std::collections::HashMap::from([(":id".to_owned(), s(v))])),
                )
                .build()
                .map(|d| TransactWriteItem::builder().delete(d).build())
                .map_err(|e| StoreError::Rejected(e.to_string()))
        };
        let user_delete = delete(user_pk(id), "attribute_exists(pk)", None)?;
        let email_delete = delete(email_pk(&user.email), "user_id = :id", Some(id.as_str()))?;
        let res =
            self.t.client.transact_write_items().transact_items(user_delete).transact_items(email_delete).send().await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if cancellation_codes(&e).is_some_and(|c| c.iter().any(|c| c == "ConditionalCheckFailed")) => {
                Ok(false)
            }
            Err(e) => Err(self.t.err(e)),
        }
    }

    async fn add_passkey_noting(
        &self,
        id: &UserId,
        passkey: &Passkey,
        max: usize,
        version: u64,
        marks: Marks<'_>,
    ) -> StoreResult<PasskeyAdd> {
        let item = PasskeyItem {
            name: passkey.name.clone(),
            key: passkey.public_key.clone(),
            state: passkey.state.clone(),
            transports: passkey.transports,
            created_at: ms(passkey.created_at),
            used_at: passkey.last_used_at.map(ms),
            used_by: None,
        };
        let value = serde_dynamo::to_attribute_value(&item)
            .map_err(|e| StoreError::Rejected(format!("a passkey cannot be encoded: {e}")))?;
        let attr = format!("{PASSKEY_ATTR}{}", passkey.id);
        // Only under the credentials version the ceremony began with: a reset since voids it.
        let cond = Cond::new(format!(
            "{} AND attribute_not_exists(#p) AND (attribute_not_exists(passkey_count) OR passkey_count < :max)",
            version_condition(version)
        ))
        .name("#p", &attr)
        .value(":v", n(version))
        .value(":pk", value)
        .value(":one", n(1))
        .value(":max", n(max as u64))
        .value(":u", n(ms(passkey.created_at)));
        let key = key1("pk", user_pk(id));
        let (update, cond) = marked("SET #p = :pk, updated_at = :u ADD passkey_count :one", cond, marks);
        if self.t.update_if(key.clone(), update, cond).await? || carries_events(&self.t, id, marks.events).await? {
            return Ok(PasskeyAdd::Added);
        }
        // Why not: one consistent read. This very passkey already there is this write, retried
        // by the SDK after it landed (its public key and time are this call's).
        let Some(item) = self.t.get(key).await? else { return Ok(PasskeyAdd::NoUser) };
        let user = self.user_in(item)?;
        if user.credentials_version != version {
            return Ok(PasskeyAdd::NoUser);
        }
        Ok(match user.passkeys.iter().find(|p| p.id == passkey.id) {
            Some(p) if p.public_key == passkey.public_key && p.created_at == passkey.created_at => PasskeyAdd::Added,
            Some(_) => PasskeyAdd::Duplicate,
            None => PasskeyAdd::Full,
        })
    }

    async fn remove_passkey_noting(
        &self,
        id: &UserId,
        passkey: &str,
        marks: Marks<'_>,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let cond = Cond::new("attribute_exists(#p)")
            .name("#p", &format!("{PASSKEY_ATTR}{passkey}"))
            .value(":minus", n(-1))
            .value(":u", n(ms(now)));
        let (update, cond) = marked("REMOVE #p SET updated_at = :u ADD passkey_count :minus", cond, marks);
        Ok(self.t.update_if(key1("pk", user_pk(id)), update, cond).await?
            || carries_events(&self.t, id, marks.events).await?)
    }

    async fn clear_notice(&self, id: &UserId, notice: &NoticeMark) -> StoreResult<()> {
        let cond = Cond::new("attribute_exists(pk)").name("#notice", &format!("{NOTICE_ATTR}{}", notice.as_str()));
        self.t.update_if(key1("pk", user_pk(id)), "REMOVE #notice", cond).await?;
        Ok(())
    }

    async fn clear_event(&self, id: &UserId, event: &EventMark) -> StoreResult<()> {
        let cond = Cond::new("attribute_exists(pk)").name("#event", &format!("{EVENT_ATTR}{}", event.as_str()));
        self.t.update_if(key1("pk", user_pk(id)), "REMOVE #event", cond).await?;
        Ok(())
    }

    async fn use_passkey(
        &self,
        id: &UserId,
        passkey: &str,
        change: PasskeyUse<'_>,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let attr = format!("{PASSKEY_ATTR}{passkey}");
        let cond = Cond::new("#p.#s = :old")
            .name("#p", &attr)
            .name("#s", "state")
            .name("#at", "used_at")
            .name("#by", "used_by")
            .value(":old", s(change.old))
            .value(":new", s(change.new))
            .value(":by", s(change.by))
            .value(":u", n(ms(now)));
        let key = key1("pk", user_pk(id));
        if self.t.update_if(key.clone(), "SET #p.#s = :new, #p.#at = :u, #p.#by = :by", cond).await? {
            return Ok(true);
        }
        // This very write repeated after it landed: the state is the new one, written by this use.
        let Some(item) = self.t.get(key).await? else { return Ok(false) };
        let Some(value) = item.get(&attr).cloned() else { return Ok(false) };
        let p: PasskeyItem =
            serde_dynamo::from_attribute_value(value).map_err(|e| StoreError::corrupt(&self.t.name, e))?;
        Ok(p.state == change.new && p.used_by.as_deref() == Some(change.by))
    }

    async fn clear_passkeys(&self, id: &UserId, now: Timestamp) -> StoreResult<()> {
        let key = key1("pk", user_pk(id));
        let Some(item) = self.t.get(key.clone()).await? else { return Ok(()) };
        let attrs: Vec<String> = item.keys().filter(|k| k.starts_with(PASSKEY_ATTR)).cloned().collect();
        if attrs.is_empty() {
            return Ok(());
        }
        let (cond, removed) =
            passkey_names(Cond::new("attribute_exists(pk)").value(":u", n(ms(now))), attrs.into_iter());
        let update = format!("REMOVE {}, passkey_count SET updated_at = :u", removed.join(", "));
        self.t.update_if(key, update, cond).await?;
        Ok(())
    }
}
