//! The in-memory `users` table.

use super::table::Table;
use crate::tables::users::Passkey;
use crate::tables::users::{
    CredentialChange, DisplayName, EmailMove, EmailSwap, EventMark, Marks, NoticeMark, PasskeyAdd, PasskeyUse,
    RECENT_CHANGES, RecentChange, TwoFactor, TwoFactorWrite, User, UserId, UserStore,
};
use crate::values::clock::Timestamp;
use crate::values::email::Email;
use crate::values::error::{StoreError, StoreResult};

/// Puts `notice` on `u` (once).
fn note(u: &mut User, notice: Option<&NoticeMark>) {
    if let Some(n) = notice
        && !u.pending_notices.iter().any(|p| p == n.as_str())
    {
        u.pending_notices.push(n.as_str().to_owned());
    }
}

/// `marks` put on `u`: the notice, and each event not there yet with the next number.
pub(crate) fn mark(u: &mut User, marks: Marks<'_>) {
    note(u, marks.notice);
    for event in marks.events {
        if !u.pending_events.contains_key(event.as_str()) {
            u.event_seq += 1;
            u.pending_events.insert(event.as_str().to_owned(), u.event_seq);
        }
    }
}
use async_trait::async_trait;

#[derive(Default)]
pub struct MemoryUsers {
    pub(super) by_id: Table<UserId, User>,
    /// The ceremony of each passkey's last use, by (user, passkey): what tells a use repeated
    /// after it landed from another use (DynamoDB's `used_by`).
    passkey_uses: Table<(UserId, String), String>,
}

impl MemoryUsers {
    /// What a credential check needs of `id` (`None`: no such user).
    pub(super) fn owner_state(&self, id: &UserId) -> Option<crate::tables::users::OwnerState> {
        self.by_id.lock().get(id).map(crate::tables::users::OwnerState::of)
    }

    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl UserStore for MemoryUsers {
    async fn create(&self, user: &User) -> StoreResult<()> {
        let mut t = self.by_id.lock();
        let email = user.email.normalized();
        if t.contains_key(&user.id) || t.values().any(|u| u.email.normalized() == email) {
            return Err(StoreError::Conflict("the email is already registered".into()));
        }
        t.insert(user.id.clone(), user.clone());
        Ok(())
    }

    async fn find(&self, id: &UserId) -> StoreResult<Option<User>> {
        Ok(self.by_id.lock().get(id).cloned())
    }

    async fn find_by_email(&self, email: &Email) -> StoreResult<Option<User>> {
        let e = email.normalized();
        Ok(self.by_id.lock().values().find(|u| u.email.normalized() == e).cloned())
    }

    async fn change_credentials(
        &self,
        id: &UserId,
        expected: u64,
        change: CredentialChange<'_>,
        now: Timestamp,
    ) -> StoreResult<Option<u64>> {
        Ok(match self.by_id.lock().get_mut(id) {
            Some(u)
                if u.credentials_version == expected
                    && change.while_email.is_none_or(|e| e.as_str() == u.email.as_str())
                    && change.clear_passkeys.is_none_or(|p| same_passkeys(p, &u.passkeys)) =>
            {
                if change.clear_passkeys.is_some() {
                    u.passkeys.clear();
                }
                if change.clear_two_factor {
                    u.two_factor = TwoFactor::default();
                }
                if let Some(h) = change.password {
                    u.password_hash = h.clone();
                }
                if change.revoke {
                    u.credentials_version += 1;
                    if change.clear_passkeys.is_some() {
                        u.ways_in_since = u.credentials_version;
                    }
                    // The devices were known under the old version: their cookies name it.
                    u.devices.clear();
                    let mark = hex::encode(crate::values::secret::random_bytes::<16>());
                    let recent = RecentChange {
                        version: u.credentials_version,
                        mark,
                        by: change.by.map(str::to_owned),
                        at: now,
                    };
                    u.recent_changes.insert(0, recent);
                    u.recent_changes.truncate(RECENT_CHANGES as usize);
                }
                for notice in change.notices {
                    note(u, Some(notice));
                }
                for event in change.events {
                    if !u.pending_events.contains_key(event.as_str()) {
                        u.event_seq += 1;
                        u.pending_events.insert(event.as_str().to_owned(), u.event_seq);
                    }
                }
                if change.delete {
                    u.deleted_at = u.deleted_at.or(Some(now));
                }
                match change.disable {
                    Some(true) => u.disabled_at = u.disabled_at.or(Some(now)),
                    Some(false) => u.disabled_at = None,
                    None => {}
                }
                u.updated_at = now;
                Some(u.credentials_version)
            }
            _ => None,
        })
    }

    async fn mark_email_verified_noting(
        &self,
        id: &UserId,
        email: &Email,
        marks: Marks<'_>,
        now: Timestamp,
    ) -> StoreResult<bool> {
        Ok(match self.by_id.lock().get_mut(id) {
            Some(u) if u.email.as_str() == email.as_str() && u.email_verified_at.is_none() => {
                u.email_verified_at = Some(now);
                u.updated_at = now;
                mark(u, marks);
                true
            }
            _ => false,
        })
    }

    async fn change_email(&self, id: &UserId, m: EmailMove<'_>, now: Timestamp) -> StoreResult<EmailSwap> {
        let EmailMove { from, to, version, from_tag, notice, events } = m;
        if from.normalized() == to.normalized() {
            return Err(StoreError::Rejected("an email change needs a different address".into()));
        }
        let mut t = self.by_id.lock();
        match t.get(id) {
            Some(u) if u.email.as_str() == from.as_str() && u.credentials_version == version => {}
            _ => return Ok(EmailSwap::Stale),
        }
        let to_key = to.normalized();
        if t.values().any(|u| u.email.normalized() == to_key) {
            return Ok(EmailSwap::Taken);
        }
        if let Some(u) = t.get_mut(id) {
            u.email = to.clone();
            u.email_verified_at = Some(now);
            u.updated_at = now;
            u.email_changed_from = Some(from_tag.to_owned());
            mark(u, Marks { notice, events });
        }
        Ok(EmailSwap::Changed)
    }

    async fn write_two_factor_noting(
        &self,
        id: &UserId,
        w: TwoFactorWrite<'_>,
        marks: Marks<'_>,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut t = self.by_id.lock();
        let Some(u) = t.get_mut(id) else { return Ok(false) };
        let tf = &mut u.two_factor;
        let confirmed = tf.confirmed_at.is_some();
        let done = match w {
            TwoFactorWrite::Begin { sealed } if !confirmed => {
                *tf = TwoFactor { sealed_secret: Some(sealed.to_owned()), ..TwoFactor::default() };
                true
            }
            TwoFactorWrite::Confirm { sealed, step, recovery }
                if !confirmed && tf.sealed_secret.as_deref() == Some(sealed) =>
            {
                tf.confirmed_at = Some(now);
                tf.last_step = Some(step);
                tf.recovery_codes = recovery.to_vec();
                true
            }
            TwoFactorWrite::UseStep { step, by } if confirmed && tf.last_step.is_none_or(|l| l < step) => {
                tf.last_step = Some(step);
                tf.last_use = Some(by.to_owned());
                true
            }
            TwoFactorWrite::UseRecoveryCode { hash, by }
                if confirmed && tf.recovery_codes.iter().any(|h| h == hash) =>
            {
                tf.recovery_codes.retain(|h| h != hash);
                tf.last_use = Some(by.to_owned());
                true
            }
            // This very use, repeated after it landed.
            TwoFactorWrite::UseStep { step, by } => {
                confirmed && tf.last_step == Some(step) && tf.last_use.as_deref() == Some(by)
            }
            TwoFactorWrite::UseRecoveryCode { by, .. } => confirmed && tf.last_use.as_deref() == Some(by),
            TwoFactorWrite::ReplaceRecoveryCodes { hashes } if confirmed => {
                tf.recovery_codes = hashes.to_vec();
                true
            }
            // Carrying an event, only while it is on (as the DynamoDB store).
            TwoFactorWrite::Clear if marks.events.is_empty() || confirmed => {
                *tf = TwoFactor::default();
                true
            }
            _ => false,
        };
        if done {
            u.updated_at = now;
            mark(u, marks);
        }
        Ok(done)
    }

    async fn update_name_noting(
        &self,
        id: &UserId,
        name: &DisplayName,
        marks: Marks<'_>,
        now: Timestamp,
    ) -> StoreResult<Option<User>> {
        Ok(self.by_id.lock().get_mut(id).map(|u| {
            u.name = name.as_str().to_owned();
            u.updated_at = now;
            mark(u, marks);
            u.clone()
        }))
    }

    async fn delete(&self, id: &UserId) -> StoreResult<bool> {
        Ok(self.by_id.lock().remove(id).is_some())
    }

    async fn add_passkey_noting(
        &self,
        id: &UserId,
        passkey: &Passkey,
        max: usize,
        version: u64,
        marks: Marks<'_>,
    ) -> StoreResult<PasskeyAdd> {
        let mut t = self.by_id.lock();
        let Some(u) = t.get_mut(id).filter(|u| u.credentials_version == version) else {
            return Ok(PasskeyAdd::NoUser);
        };
        Ok(match u.passkeys.iter().find(|p| p.id == passkey.id) {
            Some(p) if p.public_key == passkey.public_key && p.created_at == passkey.created_at => PasskeyAdd::Added,
            Some(_) => PasskeyAdd::Duplicate,
            None if u.passkeys.len() >= max => PasskeyAdd::Full,
            None => {
                u.passkeys.push(passkey.clone());
                u.updated_at = passkey.created_at;
                mark(u, marks);
                PasskeyAdd::Added
            }
        })
    }

    async fn remove_passkey_noting(
        &self,
        id: &UserId,
        passkey: &str,
        marks: Marks<'_>,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut t = self.by_id.lock();
        let Some(u) = t.get_mut(id) else { return Ok(false) };
        let before = u.passkeys.len();
        u.passkeys.retain(|p| p.id != passkey);
        let removed = u.passkeys.len() < before;
        if removed {
            u.updated_at = now;
            mark(u, marks);
        }
        Ok(removed)
    }

    async fn clear_notice(&self, id: &UserId, notice: &NoticeMark) -> StoreResult<()> {
        if let Some(u) = self.by_id.lock().get_mut(id) {
            u.pending_notices.retain(|p| p != notice.as_str());
        }
        Ok(())
    }

    async fn clear_event(&self, id: &UserId, event: &EventMark) -> StoreResult<()> {
        if let Some(u) = self.by_id.lock().get_mut(id) {
            u.pending_events.remove(event.as_str());
        }
        Ok(())
    }

    async fn use_passkey(
        &self,
        id: &UserId,
        passkey: &str,
        change: PasskeyUse<'_>,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut t = self.by_id.lock();
        let Some(p) = t.get_mut(id).and_then(|u| u.passkeys.iter_mut().find(|p| p.id == passkey)) else {
            return Ok(false);
        };
        let mut uses = self.passkey_uses.lock();
        let key = (id.clone(), passkey.to_owned());
        if p.state != change.old {
            // This very use, repeated after it landed: the state it wrote, by its ceremony.
            return Ok(p.state == change.new && uses.get(&key).is_some_and(|by| by == change.by));
        }
        p.state = change.new.to_owned();
        p.last_used_at = Some(now);
        uses.insert(key, change.by.to_owned());
        Ok(true)
    }

    async fn clear_passkeys(&self, id: &UserId, now: Timestamp) -> StoreResult<()> {
        if let Some(u) = self.by_id.lock().get_mut(id) {
            u.passkeys.clear();
            u.updated_at = now;
        }
        Ok(())
    }
}

/// Whether `read` are exactly the passkeys `now` holds (by credential id).
fn same_passkeys(read: &[Passkey], now: &[Passkey]) -> bool {
    read.len() == now.len() && read.iter().all(|r| now.iter().any(|p| p.id == r.id))
}
