//! The `users` table.

use crate::values::clock::Timestamp;
use crate::values::email::Email;
use crate::values::error::StoreResult;
use crate::values::password::PasswordHash;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A user id: a UUIDv7 string (time-ordered, not guessable from another user's id).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }
    /// Parses an id from outside (a path, a token context). Only UUIDs are ids.
    pub fn parse(s: &str) -> Option<Self> {
        uuid::Uuid::parse_str(s).ok().map(|u| Self(u.to_string()))
    }
    /// Wraps an id read from our own store.
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A person's display name, parsed once: trimmed, 1 to [`DisplayName::MAX`] characters, and no
/// control, format (bidi overrides, zero-width characters) or line/paragraph separator characters,
/// so a name can go into a mail, a log line or a page without rewriting or reordering what is
/// around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

/// Combining marks allowed on one character of a name.
const MAX_MARKS: usize = 4;

/// Unicode's Default_Ignorable_Code_Point characters (drawn as nothing) and the letters and
/// symbols that are drawn blank (Hangul fillers, the blank Braille pattern), which the general
/// category alone does not catch.
fn default_ignorable_or_blank(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{2800}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFF8}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// Why a display name was refused (the API puts it beside the field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("is required")]
    Empty,
    #[error("may not be longer than 255 characters")]
    TooLong,
    #[error("may not contain control or formatting characters")]
    Invisible,
}

impl DisplayName {
    pub const MAX: usize = 255;

    pub fn parse(raw: &str) -> Result<Self, NameError> {
        use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
        let s = raw.trim();
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        if s.chars().count() > Self::MAX {
            return Err(NameError::TooLong);
        }
        let invisible = |c: char| {
            matches!(
                c.general_category(),
                GeneralCategory::Control
                    | GeneralCategory::Format
                    | GeneralCategory::LineSeparator
                    | GeneralCategory::ParagraphSeparator
                    | GeneralCategory::Unassigned
                    | GeneralCategory::PrivateUse
                    | GeneralCategory::Surrogate
            )
        };
        if s.chars().any(|c| invisible(c) || default_ignorable_or_blank(c)) {
            return Err(NameError::Invisible);
        }
        // Combining marks stack on the character before them: none first, at most a few on any
        // one character (enough for any script; not enough to draw over the lines around it).
        let mut run = usize::MAX;
        for c in s.chars() {
            let mark = matches!(c.general_category(), GeneralCategory::NonspacingMark | GeneralCategory::EnclosingMark);
            run = if mark { run.saturating_add(1) } else { 0 };
            if mark && run > MAX_MARKS {
                return Err(NameError::Invisible);
            }
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub name: String,
    pub email: Email,
    pub email_verified_at: Option<Timestamp>,
    pub password_hash: PasswordHash,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Moves on whenever the password is reset or changed or other devices are logged out; every
    /// credential is issued conditionally on it (see [`crate::tables::credentials`]). 0 for a new user.
    pub credentials_version: u64,
    /// The second factor (Fortify's `two_factor_*` columns).
    pub two_factor: TwoFactor,
    /// Set by an operator (`user:disable`): no sign-in succeeds while it is.
    pub disabled_at: Option<Timestamp>,
    /// The user's passkeys ([`crate::services::passkeys`]), oldest first.
    pub passkeys: Vec<Passkey>,
    /// The keyed tag of the address before the last email change (written by the swap itself),
    /// so a confirmation link opened again after the swap is checked against what it signed.
    pub email_changed_from: Option<String>,
    /// Set by the deletion's first write ([`crate::services::account_deletion`]), with `disabled_at`: the
    /// account is being deleted, and the rest of the deletion may finish it.
    pub deleted_at: Option<Timestamp>,
    /// The devices given a device cookie at a sign-in under the current credentials version,
    /// oldest first, at most [`MAX_DEVICES`] (attribute `devices`: id → issued at). Written by the
    /// step that issues the sign-in's session; a move of the version forgets them all.
    pub devices: Vec<KnownDevice>,
    /// The notices promised by writes to this user and not yet sent ([`NoticeMark`]): each was
    /// written by the write that made its change, and is cleared by the notice's job once mailed.
    pub pending_notices: Vec<String>,
    /// The user's event counter (attribute `event_seq`): how many events writes to this user have
    /// promised, so the last one's sequence number. 0 for a user no event was promised for.
    pub event_seq: u64,
    /// The events promised by writes to this user and not yet recorded ([`EventMark`] → the
    /// sequence number the write took from [`User::event_seq`]): each written by the write that
    /// made its fact, and cleared by the event's job once the event is in the `events` table.
    pub pending_events: std::collections::BTreeMap<String, u64>,
    /// The last [`RECENT_CHANGES`] moves of the credentials version, newest first: which change
    /// made each (so a change whose answer was lost knows it landed even after another change
    /// landed behind it), and from which session (so that session's retry can finish it).
    pub recent_changes: Vec<RecentChange>,
    /// The credentials version the account's lasting ways in date from: moved to the new version
    /// by every change that ends the passkeys (a reset, a password change, logging out other
    /// devices), so a provider identity connected under an older version signs in no more
    /// ([`crate::services::federation::linking`]). 0 for a new user.
    pub ways_in_since: u64,
}

/// How many moves of the credentials version a user keeps a record of ([`User::recent_changes`]).
pub const RECENT_CHANGES: u64 = 16;

/// A move of the credentials version to `version` ([`User::recent_changes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentChange {
    pub version: u64,
    /// The change's own random mark (never shown: it only tells a change from another).
    pub mark: String,
    /// The session that made it (its stored key), when a session did.
    pub by: Option<String>,
    pub at: Timestamp,
}

impl User {
    /// The change that moved the version to `version`, if it is still recorded.
    pub fn change_to(&self, version: u64) -> Option<&RecentChange> {
        self.recent_changes.iter().find(|c| c.version == version)
    }
}

/// A notice promised before its change is written: the job that mails it is queued first,
/// carrying the mark, and the change's own write puts the mark on the user
/// ([`User::pending_notices`]). The job mails only when it finds the mark, so a change that
/// failed is never announced and one that landed is never left unannounced, whatever fails
/// after it. 128 random bits, hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeMark(String);

impl NoticeMark {
    pub fn generate() -> Self {
        Self(hex::encode(crate::values::secret::random_bytes::<16>()))
    }
    /// A mark as a job carries it: 32 lower-case hex digits, else `None`.
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 32 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))).then(|| Self(s.into()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The cache key under which a deleted account's promised notice is kept
    /// ([`crate::services::account_deletion::finish`]): its user item is gone, the notice still due.
    pub fn kept_key(&self) -> String {
        format!("notice-kept:{}", self.0)
    }
}

/// An event promised before the write that makes its fact ([`crate::queue::Dispatcher::promise_event`]):
/// the job that records the event is queued first, carrying the mark, and the fact's own write
/// puts the mark on the user with the sequence number it takes from the user's counter
/// ([`User::pending_events`]). The job records the event only when it finds the mark, so a fact
/// that failed is never announced, and one that landed is announced with the number its write
/// took. 128 random bits, hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMark(String);

impl EventMark {
    pub fn generate() -> Self {
        Self(hex::encode(crate::values::secret::random_bytes::<16>()))
    }
    /// A mark as a job carries it: 32 lower-case hex digits, else `None`.
    pub fn parse(s: &str) -> Option<Self> {
        NoticeMark::parse(s).map(|m| Self(m.0))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The cache key under which a deleted account's promised event is kept, with its sequence
    /// number ([`crate::services::account_deletion::finish`]): its user item is gone, the event
    /// still due.
    pub fn kept_key(&self) -> String {
        format!("event-kept:{}", self.0)
    }
}

/// How long a deleted account's promised notices are kept for their jobs (retried for hours).
pub const KEPT_NOTICE_LIFETIME: chrono::Duration = chrono::Duration::days(1);

/// Most devices an account lists: a sign-in from another evicts the oldest.
pub const MAX_DEVICES: usize = 20;

/// A device the account knows ([`User::devices`]): the id in its device cookie
/// ([`crate::keys::AppKey::device_cookie`]) and when it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownDevice {
    pub id: String,
    pub issued_at: Timestamp,
}

/// The listed devices (oldest first, as read) that go when one more is listed, so at most
/// [`MAX_DEVICES`] remain.
pub fn evicted_devices(listed: &[KnownDevice]) -> &[KnownDevice] {
    &listed[..listed.len().saturating_sub(MAX_DEVICES - 1)]
}

/// What a credential check needs of the credential's owner, read with the credential in one
/// call: a credential is refused once its user is gone, disabled or being deleted, or its
/// credentials version moved on — even before its revocation has run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnerState {
    pub credentials_version: u64,
    /// Disabled by an operator, or being deleted.
    pub disabled: bool,
}

impl OwnerState {
    pub fn of(user: &User) -> Self {
        Self {
            credentials_version: user.credentials_version,
            disabled: user.disabled_at.is_some() || user.deleted_at.is_some(),
        }
    }

    /// Whether a credential issued under `version` still speaks for this user.
    pub fn honours(&self, version: u64) -> bool {
        !self.disabled && self.credentials_version == version
    }
}

/// A use of a passkey ([`UserStore::use_passkey`]): its state from `old` to `new`, by `by`.
#[derive(Debug, Clone, Copy)]
pub struct PasskeyUse<'a> {
    pub old: &'a str,
    pub new: &'a str,
    pub by: &'a str,
}

impl User {
    /// Whether the account has a password (one signed up through a provider or an email link has
    /// none until a reset gives it one).
    pub fn has_password(&self) -> bool {
        self.password_hash.is_usable()
    }
}

impl User {
    /// A new account as registration makes it: a fresh id, unverified, credentials version 0, no
    /// second factor, no passkey, created and updated `now`.
    pub fn new(name: impl Into<String>, email: Email, password_hash: PasswordHash, now: Timestamp) -> Self {
        Self {
            id: UserId::generate(),
            name: name.into(),
            email,
            email_verified_at: None,
            password_hash,
            created_at: now,
            updated_at: now,
            credentials_version: 0,
            two_factor: TwoFactor::default(),
            disabled_at: None,
            passkeys: Vec::new(),
            email_changed_from: None,
            deleted_at: None,
            devices: Vec::new(),
            pending_notices: Vec::new(),
            event_seq: 0,
            pending_events: std::collections::BTreeMap::new(),
            recent_changes: Vec::new(),
            ways_in_since: 0,
        }
    }

    /// This new user with `events` promised by its creation: each takes the next sequence number
    /// (the first from 1), written by [`UserStore::create`] with the user.
    pub fn with_events(mut self, events: &[EventMark]) -> Self {
        for mark in events {
            if !self.pending_events.contains_key(mark.as_str()) {
                self.event_seq += 1;
                self.pending_events.insert(mark.as_str().to_owned(), self.event_seq);
            }
        }
        self
    }
}

/// What [`UserStore::add_passkey`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasskeyAdd {
    Added,
    /// The user already has the most passkeys allowed.
    Full,
    /// The user already has a passkey with this credential id.
    Duplicate,
    /// No such user, or its credentials changed since the ceremony began.
    NoUser,
}

impl std::fmt::Debug for TwoFactorWrite<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TwoFactorWrite::Begin { .. } => "Begin",
            TwoFactorWrite::Confirm { .. } => "Confirm",
            TwoFactorWrite::UseStep { .. } => "UseStep",
            TwoFactorWrite::UseRecoveryCode { .. } => "UseRecoveryCode",
            TwoFactorWrite::ReplaceRecoveryCodes { .. } => "ReplaceRecoveryCodes",
            TwoFactorWrite::Clear => "Clear",
        })
    }
}

/// One registered passkey, as kept on its user's item. `Debug` shows the id and name only.
#[derive(Clone, PartialEq, Eq)]
pub struct Passkey {
    /// The credential id, base64url without padding (as the browser gives it).
    pub id: String,
    pub name: String,
    /// `webauthn_rp`'s encoded static state (the public key), base64url.
    pub public_key: String,
    /// The encoded dynamic state (signature counter, backup and user-verified flags), base64url.
    pub state: String,
    /// The encoded transports the authenticator reported.
    pub transports: u8,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

impl std::fmt::Debug for Passkey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passkey").field("id", &self.id).field("name", &self.name).finish_non_exhaustive()
    }
}

/// A user's TOTP second factor ([`crate::services::two_factor`]).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TwoFactor {
    /// The secret, sealed under the app key ([`crate::keys::AppKey::seal`]); never in plain.
    pub sealed_secret: Option<String>,
    /// When a code confirmed the secret: from then on a password alone does not sign in.
    pub confirmed_at: Option<Timestamp>,
    /// SHA-256 of each unused recovery code.
    pub recovery_codes: Vec<String>,
    /// The last time step whose code was accepted (a code is accepted once).
    pub last_step: Option<u64>,
    /// Who made the last use of a code or recovery code (the sign-in's own nonce): a retry of
    /// that very write, whose answer was lost, recognises itself by it.
    pub last_use: Option<String>,
}

impl TwoFactor {
    /// Whether sign-in needs a second factor.
    pub fn enabled(&self) -> bool {
        self.confirmed_at.is_some() && self.sealed_secret.is_some()
    }
}

impl std::fmt::Debug for TwoFactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwoFactor")
            .field("sealed_secret", &self.sealed_secret.as_ref().map(|_| "[REDACTED]"))
            .field("confirmed_at", &self.confirmed_at)
            .field("recovery_codes", &self.recovery_codes.len())
            .field("last_step", &self.last_step)
            .finish()
    }
}

/// One atomic change to a user's second factor ([`UserStore::write_two_factor`]); each is
/// conditional as its variant says, and `false` when the condition fails. `Debug` names the
/// variant only (no sealed secret, no hash).
#[derive(Clone, Copy)]
pub enum TwoFactorWrite<'a> {
    /// A new pending secret, replacing an unconfirmed one; only while not confirmed.
    Begin { sealed: &'a str },
    /// Turns the pending secret `sealed` on (only while it is still that one and unconfirmed),
    /// recording `step` as used and the recovery code hashes.
    Confirm { sealed: &'a str, step: u64, recovery: &'a [String] },
    /// Uses the code of time step `step`: only while confirmed and `step` is later than the last
    /// one used (two concurrent uses of one code: one wins). `by` is the sign-in's nonce,
    /// recorded with it: the same write repeated (an SDK retry after its answer was lost) is
    /// `true` again, another sign-in's use of the step is not.
    UseStep { step: u64, by: &'a str },
    /// Removes the recovery code with this hash: only while confirmed and the code is there (or
    /// this very write, `by`, already removed it).
    UseRecoveryCode { hash: &'a str, by: &'a str },
    /// Replaces the recovery codes: only while confirmed.
    ReplaceRecoveryCodes { hashes: &'a [String] },
    /// Removes the second factor entirely (only while the user exists).
    Clear,
}

/// A change to a user's credentials, applied only if the credentials version is still the one
/// it was computed from (compare-and-swap): a stale hash is never written.
#[derive(Debug, Clone, Copy, Default)]
pub struct CredentialChange<'a> {
    /// The new password hash; `None` keeps the stored one.
    pub password: Option<&'a PasswordHash>,
    /// Move the credentials version on, so nothing verified against the old state is issued.
    pub revoke: bool,
    /// Apply only while the user still has this address (a reset, which a token mailed to that
    /// address proves: an email change confirmed meanwhile voids it).
    pub while_email: Option<&'a Email>,
    /// Disable (`Some(true)`, at the change's time) or enable (`Some(false)`) the account.
    pub disable: Option<bool>,
    /// Remove these passkeys, read with the user the change was computed from: applied only
    /// while they are exactly the passkeys the user has (one added or removed since fails the
    /// change like a moved version). A reset's, in the same write as the password: no failure
    /// between the two can leave an intruder's passkey signing in after the owner took the
    /// account back.
    pub clear_passkeys: Option<&'a [Passkey]>,
    /// Remove the second factor (TOTP secret, recovery codes, the last use): a reset of an
    /// account whose address was never verified, so whoever registered an address first cannot
    /// lock its owner out with a second factor after the owner's reset.
    pub clear_two_factor: bool,
    /// Mark the account as being deleted (`deleted_at`, kept if already set).
    pub delete: bool,
    /// The notices this change promises ([`NoticeMark`]), written with it.
    pub notices: &'a [NoticeMark],
    /// The events this change promises ([`EventMark`]): each written with it as `event#<mark>`,
    /// numbered from the user's counter ([`User::event_seq`]), which the same write moves on. A
    /// mark already on the user (this very write, sent again after its answer was lost) is not
    /// counted twice: the write is taken for its own.
    pub events: &'a [EventMark],
    /// The session making the change (its stored key), recorded with a move of the version
    /// ([`User::recent_changes`]) so that session's retry can finish the change.
    pub by: Option<&'a str>,
}

/// What a write promises besides its change, written with it: a notice ([`NoticeMark`]) and
/// events ([`EventMark`], each numbered from the user's counter, [`User::event_seq`]). A write
/// carrying an event mark is refused when the mark is already there, and read back as its own
/// (its retry after the answer was lost), so no write counts an event twice.
#[derive(Debug, Clone, Copy, Default)]
pub struct Marks<'a> {
    pub notice: Option<&'a NoticeMark>,
    pub events: &'a [EventMark],
}

impl<'a> Marks<'a> {
    /// A notice alone (or nothing).
    pub fn notice(notice: Option<&'a NoticeMark>) -> Self {
        Self { notice, events: &[] }
    }

    /// These marks and `events`.
    pub fn and_events(self, events: &'a [EventMark]) -> Self {
        Self { events, ..self }
    }
}

/// An address change for [`UserStore::change_email`]: from `from` to `to` (normalised
/// differently), only while the user has credentials version `version`.
#[derive(Debug, Clone, Copy)]
pub struct EmailMove<'a> {
    pub from: &'a Email,
    pub to: &'a Email,
    pub version: u64,
    /// Kept on the user as [`User::email_changed_from`] (the keyed tag of `from`).
    pub from_tag: &'a str,
    /// The notice the swap promises ([`NoticeMark`]), written with it.
    pub notice: Option<&'a NoticeMark>,
    /// The events the swap promises ([`Marks`]), written with it.
    pub events: &'a [EventMark],
}

/// What [`UserStore::change_email`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailSwap {
    /// The user has the new address, verified; the old one is free.
    Changed,
    /// Another user holds the new address.
    Taken,
    /// The user is gone, has another address, or its credentials version moved on.
    Stale,
}

/// Store of users. Emails are unique case-insensitively ([`Email::normalized`]), enforced
/// atomically by the store, never by a read before a write.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Inserts `user` (with its promised events and counter, [`User::with_events`]).
    /// `Err(Conflict)` when another user has the same normalised email.
    async fn create(&self, user: &User) -> StoreResult<()>;
    /// The user with this id, read consistently.
    async fn find(&self, id: &UserId) -> StoreResult<Option<User>>;
    /// The user with this email (compared normalised), read consistently.
    async fn find_by_email(&self, email: &Email) -> StoreResult<Option<User>>;
    /// Applies `change` if the user exists and its credentials version is still `expected` (then
    /// `Some(the version now)`); `None` when the version moved on or the user is gone.
    async fn change_credentials(
        &self,
        id: &UserId,
        expected: u64,
        change: CredentialChange<'_>,
        now: Timestamp,
    ) -> StoreResult<Option<u64>>;
    /// Sets `email_verified_at` once, and only while the user's address is `email` (a link for an
    /// address changed meanwhile verifies nothing). `false` when the user does not exist, has
    /// another address, or is already verified.
    async fn mark_email_verified(&self, id: &UserId, email: &Email, now: Timestamp) -> StoreResult<bool> {
        self.mark_email_verified_noting(id, email, Marks::default(), now).await
    }
    /// [`UserStore::mark_email_verified`], putting `marks` on the user in the same write.
    async fn mark_email_verified_noting(
        &self,
        id: &UserId,
        email: &Email,
        marks: Marks<'_>,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Moves the user from address `m.from` to `m.to`, verified at `now`, in one atomic step: the
    /// user's address changes, the old reservation is freed and the new one taken, only while the
    /// user still has `m.from` and credentials version `m.version`. `Stale` is judged before
    /// `Taken`; the same address normalised is `Err(Rejected)`.
    async fn change_email(&self, id: &UserId, m: EmailMove<'_>, now: Timestamp) -> StoreResult<EmailSwap>;
    /// Applies one change to the user's second factor, atomically and only under its condition.
    async fn write_two_factor(&self, id: &UserId, w: TwoFactorWrite<'_>, now: Timestamp) -> StoreResult<bool> {
        self.write_two_factor_noting(id, w, Marks::default(), now).await
    }
    /// [`UserStore::write_two_factor`], putting `marks` on the user in the same write.
    async fn write_two_factor_noting(
        &self,
        id: &UserId,
        w: TwoFactorWrite<'_>,
        marks: Marks<'_>,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Sets the display name; returns the user as written (no second read). `None` when the
    /// user does not exist.
    async fn update_name(&self, id: &UserId, name: &DisplayName, now: Timestamp) -> StoreResult<Option<User>> {
        self.update_name_noting(id, name, Marks::default(), now).await
    }
    /// [`UserStore::update_name`], putting `marks` on the user in the same write.
    async fn update_name_noting(
        &self,
        id: &UserId,
        name: &DisplayName,
        marks: Marks<'_>,
        now: Timestamp,
    ) -> StoreResult<Option<User>>;
    /// Deletes the user and frees its email. `false` when it did not exist.
    async fn delete(&self, id: &UserId) -> StoreResult<bool>;
    /// Adds a passkey while the user has fewer than `max`, none with its id, and credentials
    /// version `version` (a reset since the ceremony began voids it: `NoUser`). The same passkey
    /// added again (an SDK retry of this very write) is `Added`.
    async fn add_passkey(&self, id: &UserId, passkey: &Passkey, max: usize, version: u64) -> StoreResult<PasskeyAdd> {
        self.add_passkey_noting(id, passkey, max, version, Marks::default()).await
    }
    /// [`UserStore::add_passkey`], putting `marks` on the user in the same write.
    async fn add_passkey_noting(
        &self,
        id: &UserId,
        passkey: &Passkey,
        max: usize,
        version: u64,
        marks: Marks<'_>,
    ) -> StoreResult<PasskeyAdd>;
    /// Removes the passkey `passkey` (its credential id). `false` when it was not there.
    async fn remove_passkey(&self, id: &UserId, passkey: &str, now: Timestamp) -> StoreResult<bool> {
        self.remove_passkey_noting(id, passkey, Marks::default(), now).await
    }
    /// [`UserStore::remove_passkey`], putting `marks` on the user in the same write.
    async fn remove_passkey_noting(
        &self,
        id: &UserId,
        passkey: &str,
        marks: Marks<'_>,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Clears a promised notice once mailed ([`User::pending_notices`]). Nothing when it is not
    /// there (or the user is gone).
    async fn clear_notice(&self, id: &UserId, notice: &NoticeMark) -> StoreResult<()>;
    /// Clears a promised event once recorded ([`User::pending_events`]). Nothing when it is not
    /// there (or the user is gone).
    async fn clear_event(&self, id: &UserId, event: &EventMark) -> StoreResult<()>;
    /// Records a use of the passkey: its new authenticator state, only while its state is still
    /// `old` (two uses of one state: one wins). `by` names this use (its ceremony): this very
    /// write repeated after it landed is `true`, another use that wrote the same state is not.
    async fn use_passkey(
        &self,
        id: &UserId,
        passkey: &str,
        change: PasskeyUse<'_>,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Removes every passkey of the user (an operator's `user:reset-two-factor`).
    async fn clear_passkeys(&self, id: &UserId, now: Timestamp) -> StoreResult<()>;
}

/// A user at `email`, created at a fixed time, for unit tests.
#[cfg(test)]
pub(crate) fn sample(email: &str) -> User {
    let now = crate::values::clock::from_epoch_millis(1_700_000_000_000).expect("a fixed time");
    let hash = PasswordHash::from_stored("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into());
    User::new("Ann", Email::parse(email).expect("a valid address"), hash, now)
}

#[cfg(test)]
mod name_tests {
    use super::{DisplayName, NameError};

    #[test]
    fn names_are_trimmed_bounded_and_free_of_invisible_characters() {
        assert_eq!(DisplayName::parse("  Ann Lee ").unwrap().as_str(), "Ann Lee");
        assert_eq!(DisplayName::parse("Zoë Ñúñez 李").unwrap().as_str(), "Zoë Ñúñez 李");
        assert_eq!(DisplayName::parse(" \t "), Err(NameError::Empty));
        assert_eq!(DisplayName::parse(&"a".repeat(256)), Err(NameError::TooLong));
        assert!(DisplayName::parse(&"é".repeat(255)).is_ok(), "characters, not bytes");
        assert!(DisplayName::parse("Nguyễn Thị Ánh").is_ok(), "precomposed Vietnamese");
        assert!(DisplayName::parse("Nguye\u{302}\u{303}n").is_ok(), "two combining marks on one letter");
        let zalgo = format!("A{}", "\u{301}".repeat(5));
        for hostile in [
            "Ann\u{202E}gnp.exe",
            "Ann\u{200B}",
            "Ann\nBcc: x@y",
            "Ann\u{2028}Lee",
            "Ann\u{0}",
            "A\u{E000}",
            "\u{3164}",
            "Ann\u{034F}",
            "Ann\u{FE0F}",
            "\u{2800}\u{2800}",
            "\u{301}Ann",
            zalgo.as_str(),
        ] {
            assert_eq!(DisplayName::parse(hostile), Err(NameError::Invisible), "{hostile:?}");
        }
    }
}
