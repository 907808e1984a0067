//! The events (#32, docs/design/events.md): one record per fact that happened to a user, as a
//! webhook receiver gets it. No table yet: these are the types and their wire form (step S2); the
//! `events` table, and the writes that emit them, come later.
//!
//! On the wire an event is an envelope around its type's data:
//!
//! ```text
//! { "id": "evt_<uuidv7>", "type": "user.deleted", "version": 1, "user_id": "<uuid>",
//!   "seq": 42, "occurred_at": "2026-11-23T13:15:00.123Z", "data": { "revoked": "all" } }
//! ```
//!
//! What an event never holds: passwords or their hashes, session ids, cookies, token secrets or
//! hashes, links or codes that were mailed, TOTP secrets, recovery codes, passkey material, OAuth
//! codes or tokens, provider tokens, marks, credentials versions, app-key tags. Addresses are
//! only in `email` and `previous_email`, IPs and user agents only in `client`: the fields
//! [`PERSONAL`] names, which the schema marks `x-gatehouse-personal` (the openapi tests hold both).
//!
//! Each type's data is its own struct, so a field added to one type is seen in that type's schema
//! alone; a change a receiver could trip over moves [`EVENTS_VERSION`].

use crate::tables::users::UserId;
use crate::values::clock::Timestamp;
use crate::values::email::Email;
use serde::{Deserialize, Serialize};

/// The version of every event's schema, the envelope's `version`.
pub const EVENTS_VERSION: u32 = 1;

/// The fields that hold personal data (an address, a name or other text the user chose, an IP, a
/// user agent), wherever they are: each is optional, and absent from a [redacted](Event::redacted)
/// event.
pub const PERSONAL: &[&str] = &["email", "previous_email", "name", "client", "ip", "user_agent"];

/// An event's id: `evt_` and a UUIDv7 (time-ordered), made when the fact's job is promised; it is
/// the delivery's `webhook-id`, the same on every retry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventId(String);

impl EventId {
    const PREFIX: &'static str = "evt_";

    pub fn generate() -> Self {
        Self(format!("{}{}", Self::PREFIX, uuid::Uuid::now_v7()))
    }

    /// `evt_` and a UUID in its canonical (lower-case, hyphenated) form; nothing else.
    pub fn parse(s: &str) -> Option<Self> {
        let uuid = s.strip_prefix(Self::PREFIX)?;
        uuid::Uuid::parse_str(uuid).ok().filter(|u| u.to_string() == uuid).map(|_| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EventId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s).ok_or_else(|| "an event id is evt_ and a UUID".to_owned())
    }
}

impl From<EventId> for String {
    fn from(id: EventId) -> Self {
        id.0
    }
}

impl std::fmt::Display for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One fact that happened to a user, as delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    /// `evt_` and a UUIDv7: the delivery's `webhook-id`, the same on every retry (deduplicate on it).
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^evt_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"))]
    pub id: EventId,
    /// The version of the event's schema (`x-gatehouse-events-version`).
    pub version: u32,
    /// The user the fact happened to.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = "uuid"))]
    pub user_id: UserId,
    /// The user's events in the order their facts happened: 1, 2, 3… with no gap. A receiver
    /// that has seen `seq` n and gets n + 2 knows one is still coming.
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub seq: u64,
    /// When the fact happened (RFC 3339, UTC, milliseconds).
    #[serde(with = "millis")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub occurred_at: Timestamp,
    /// `true` when the user was deleted before this event was delivered: every field holding
    /// personal data (`x-gatehouse-personal`: addresses, names, the client) is absent from `data`.
    /// Absent otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub redacted: bool,
    /// `type` and `data`.
    #[serde(flatten)]
    pub body: EventBody,
}

impl Event {
    /// A new event of this version, with a new id.
    pub fn new(user_id: UserId, seq: u64, occurred_at: Timestamp, body: EventBody) -> Self {
        Self { id: EventId::generate(), version: EVENTS_VERSION, user_id, seq, occurred_at, redacted: false, body }
    }

    /// This event without its personal data ([`PERSONAL`]), marked `redacted`: what is kept and
    /// delivered of a deleted user's events. The rest (type, number, time, ids) stays, so a
    /// receiver still learns what happened, in order, and that the user is gone.
    pub fn redact(&mut self) {
        self.redacted = true;
        match &mut self.body {
            EventBody::UserRegistered(d) => {
                (d.email, d.name, d.client) = (None, None, None);
            }
            EventBody::UserVerified(d) => d.email = None,
            EventBody::UserEmailChanged(d) => (d.email, d.previous_email) = (None, None),
            EventBody::UserProfileUpdated(d) => d.name = None,
            EventBody::SessionCreated(d) => d.client = None,
            EventBody::TokenCreated(d) => d.name = None,
            EventBody::PasskeyAdded(d) => d.name = None,
            EventBody::PasskeyRemoved(d) => d.name = None,
            // Nothing personal in these (listed, so a new type must say what it holds).
            EventBody::UserPasswordChanged(_)
            | EventBody::UserPasswordReset(_)
            | EventBody::UserSignedOut(_)
            | EventBody::UserDisabled(_)
            | EventBody::UserEnabled(_)
            | EventBody::UserDeleted(_)
            | EventBody::SessionEnded(_)
            | EventBody::TokenRevoked(_)
            | EventBody::TwoFactorEnabled(_)
            | EventBody::TwoFactorDisabled(_)
            | EventBody::IdentityLinked(_)
            | EventBody::IdentityUnlinked(_)
            | EventBody::OAuthConsentGranted(_)
            | EventBody::OAuthConsentRevoked(_) => {}
        }
    }

    pub fn kind(&self) -> EventType {
        self.body.kind()
    }
}

/// An event's type and its data: `"type"` names the type, `"data"` holds its fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", content = "data")]
pub enum EventBody {
    #[serde(rename = "user.registered")]
    UserRegistered(UserRegistered),
    #[serde(rename = "user.verified")]
    UserVerified(UserVerified),
    #[serde(rename = "user.email_changed")]
    UserEmailChanged(UserEmailChanged),
    #[serde(rename = "user.profile_updated")]
    UserProfileUpdated(UserProfileUpdated),
    #[serde(rename = "user.password_changed")]
    UserPasswordChanged(UserPasswordChanged),
    #[serde(rename = "user.password_reset")]
    UserPasswordReset(UserPasswordReset),
    #[serde(rename = "user.signed_out")]
    UserSignedOut(UserSignedOut),
    #[serde(rename = "user.disabled")]
    UserDisabled(UserDisabled),
    #[serde(rename = "user.enabled")]
    UserEnabled(UserEnabled),
    #[serde(rename = "user.deleted")]
    UserDeleted(UserDeleted),
    #[serde(rename = "session.created")]
    SessionCreated(SessionCreated),
    #[serde(rename = "session.ended")]
    SessionEnded(SessionEnded),
    #[serde(rename = "token.created")]
    TokenCreated(TokenCreated),
    #[serde(rename = "token.revoked")]
    TokenRevoked(TokenRevoked),
    #[serde(rename = "two_factor.enabled")]
    TwoFactorEnabled(TwoFactorEnabled),
    #[serde(rename = "two_factor.disabled")]
    TwoFactorDisabled(TwoFactorDisabled),
    #[serde(rename = "passkey.added")]
    PasskeyAdded(PasskeyAdded),
    #[serde(rename = "passkey.removed")]
    PasskeyRemoved(PasskeyRemoved),
    #[serde(rename = "identity.linked")]
    IdentityLinked(IdentityLinked),
    #[serde(rename = "identity.unlinked")]
    IdentityUnlinked(IdentityUnlinked),
    #[serde(rename = "oauth.consent_granted")]
    OAuthConsentGranted(OAuthConsentGranted),
    #[serde(rename = "oauth.consent_revoked")]
    OAuthConsentRevoked(OAuthConsentRevoked),
}

impl EventBody {
    pub fn kind(&self) -> EventType {
        match self {
            Self::UserRegistered(_) => EventType::UserRegistered,
            Self::UserVerified(_) => EventType::UserVerified,
            Self::UserEmailChanged(_) => EventType::UserEmailChanged,
            Self::UserProfileUpdated(_) => EventType::UserProfileUpdated,
            Self::UserPasswordChanged(_) => EventType::UserPasswordChanged,
            Self::UserPasswordReset(_) => EventType::UserPasswordReset,
            Self::UserSignedOut(_) => EventType::UserSignedOut,
            Self::UserDisabled(_) => EventType::UserDisabled,
            Self::UserEnabled(_) => EventType::UserEnabled,
            Self::UserDeleted(_) => EventType::UserDeleted,
            Self::SessionCreated(_) => EventType::SessionCreated,
            Self::SessionEnded(_) => EventType::SessionEnded,
            Self::TokenCreated(_) => EventType::TokenCreated,
            Self::TokenRevoked(_) => EventType::TokenRevoked,
            Self::TwoFactorEnabled(_) => EventType::TwoFactorEnabled,
            Self::TwoFactorDisabled(_) => EventType::TwoFactorDisabled,
            Self::PasskeyAdded(_) => EventType::PasskeyAdded,
            Self::PasskeyRemoved(_) => EventType::PasskeyRemoved,
            Self::IdentityLinked(_) => EventType::IdentityLinked,
            Self::IdentityUnlinked(_) => EventType::IdentityUnlinked,
            Self::OAuthConsentGranted(_) => EventType::OAuthConsentGranted,
            Self::OAuthConsentRevoked(_) => EventType::OAuthConsentRevoked,
        }
    }
}

/// An event's type, as `"type"` names it (and an endpoint's filter will).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EventType {
    #[serde(rename = "user.registered")]
    UserRegistered,
    #[serde(rename = "user.verified")]
    UserVerified,
    #[serde(rename = "user.email_changed")]
    UserEmailChanged,
    #[serde(rename = "user.profile_updated")]
    UserProfileUpdated,
    #[serde(rename = "user.password_changed")]
    UserPasswordChanged,
    #[serde(rename = "user.password_reset")]
    UserPasswordReset,
    #[serde(rename = "user.signed_out")]
    UserSignedOut,
    #[serde(rename = "user.disabled")]
    UserDisabled,
    #[serde(rename = "user.enabled")]
    UserEnabled,
    #[serde(rename = "user.deleted")]
    UserDeleted,
    #[serde(rename = "session.created")]
    SessionCreated,
    #[serde(rename = "session.ended")]
    SessionEnded,
    #[serde(rename = "token.created")]
    TokenCreated,
    #[serde(rename = "token.revoked")]
    TokenRevoked,
    #[serde(rename = "two_factor.enabled")]
    TwoFactorEnabled,
    #[serde(rename = "two_factor.disabled")]
    TwoFactorDisabled,
    #[serde(rename = "passkey.added")]
    PasskeyAdded,
    #[serde(rename = "passkey.removed")]
    PasskeyRemoved,
    #[serde(rename = "identity.linked")]
    IdentityLinked,
    #[serde(rename = "identity.unlinked")]
    IdentityUnlinked,
    #[serde(rename = "oauth.consent_granted")]
    OAuthConsentGranted,
    #[serde(rename = "oauth.consent_revoked")]
    OAuthConsentRevoked,
}

impl EventType {
    /// Every type, in the order the documentation lists them.
    pub const ALL: [EventType; 22] = [
        Self::UserRegistered,
        Self::UserVerified,
        Self::UserEmailChanged,
        Self::UserProfileUpdated,
        Self::UserPasswordChanged,
        Self::UserPasswordReset,
        Self::UserSignedOut,
        Self::UserDisabled,
        Self::UserEnabled,
        Self::UserDeleted,
        Self::SessionCreated,
        Self::SessionEnded,
        Self::TokenCreated,
        Self::TokenRevoked,
        Self::TwoFactorEnabled,
        Self::TwoFactorDisabled,
        Self::PasskeyAdded,
        Self::PasskeyRemoved,
        Self::IdentityLinked,
        Self::IdentityUnlinked,
        Self::OAuthConsentGranted,
        Self::OAuthConsentRevoked,
    ];

    /// The type's name on the wire, e.g. `user.registered`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserRegistered => "user.registered",
            Self::UserVerified => "user.verified",
            Self::UserEmailChanged => "user.email_changed",
            Self::UserProfileUpdated => "user.profile_updated",
            Self::UserPasswordChanged => "user.password_changed",
            Self::UserPasswordReset => "user.password_reset",
            Self::UserSignedOut => "user.signed_out",
            Self::UserDisabled => "user.disabled",
            Self::UserEnabled => "user.enabled",
            Self::UserDeleted => "user.deleted",
            Self::SessionCreated => "session.created",
            Self::SessionEnded => "session.ended",
            Self::TokenCreated => "token.created",
            Self::TokenRevoked => "token.revoked",
            Self::TwoFactorEnabled => "two_factor.enabled",
            Self::TwoFactorDisabled => "two_factor.disabled",
            Self::PasskeyAdded => "passkey.added",
            Self::PasskeyRemoved => "passkey.removed",
            Self::IdentityLinked => "identity.linked",
            Self::IdentityUnlinked => "identity.unlinked",
            Self::OAuthConsentGranted => "oauth.consent_granted",
            Self::OAuthConsentRevoked => "oauth.consent_revoked",
        }
    }

    /// The type named `s`, if it is one.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a request came from, when the fact was a request's: personal data, in this field alone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = EventClient))]
pub struct Client {
    /// The caller's IP address, as API Gateway saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub ip: Option<String>,
    /// The caller's `User-Agent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub user_agent: Option<String>,
}

/// Which of the user's credentials a change ended (sessions, tokens, cross-app sessions, OAuth
/// grants and consents).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Revoked {
    /// Every one.
    All,
    /// Every one but the session that made the change (which carries on, under the new
    /// credentials version).
    AllButOne,
}

/// Who made a change that the user or an operator can make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    /// The user, signed in.
    User,
    /// An operator, through the `gatehouse` CLI.
    Operator,
}

/// How an account was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RegistrationMethod {
    /// An address and a password.
    Password,
    /// A link (or its code) mailed to the address, no password.
    EmailLink,
    /// A sign-in provider (`provider` names it), no password.
    Provider,
}

/// How a session was signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SessionMethod {
    /// A password (and the second factor when it is on), or a registration with one.
    Password,
    /// A passkey on its own.
    Passkey,
    /// A link (or its code) mailed to the address.
    EmailLink,
    /// A sign-in provider.
    Provider,
    /// A cross-app handoff, exchanged in this app.
    CrossApp,
    /// The session that made a credentials change (a password change, an address change, "log
    /// out other devices"), continued under a new id: the same sign-in, whose old id the change
    /// ended with the rest.
    Continued,
}

impl SessionMethod {
    /// As the event and the `before_sign_in` hook say it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Passkey => "passkey",
            Self::EmailLink => "email_link",
            Self::Provider => "provider",
            Self::CrossApp => "cross_app",
            Self::Continued => "continued",
        }
    }

    /// The method [`SessionMethod::as_str`] gave.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Password, Self::Passkey, Self::EmailLink, Self::Provider, Self::CrossApp, Self::Continued]
            .into_iter()
            .find(|m| m.as_str() == text)
    }
}

/// Why a single session ended (one a credentials change ended is in that change's event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SessionEndReason {
    /// Signed out of, by itself.
    Logout,
    /// Ended by the user from another session (its list of sessions, or its cross-app sessions).
    RevokedByUser,
}

/// Why a single token ended (one a credentials change ended is in that change's event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TokenRevokeReason {
    /// Revoked by the user.
    RevokedByUser,
}

/// Who turned the second factor on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TwoFactorBy {
    /// The user, from the account.
    User,
    /// An operator (`gatehouse user:reset-two-factor`).
    Operator,
    /// A password reset of an account whose address was never verified.
    Reset,
}

/// An account was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserRegistered {
    /// The account's address. Personal data: absent in a redacted event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Email, nullable = false))]
    pub email: Option<Email>,
    /// The display name. Personal data: absent in a redacted event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub name: Option<String>,
    /// Whether the address was verified as the account was made (a mailed link or a provider that
    /// vouches for it).
    pub email_verified: bool,
    pub method: RegistrationMethod,
    /// The sign-in provider's id (`method` `provider` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub provider: Option<String>,
    /// The request that made it. Personal data: absent in a redacted event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub client: Option<Client>,
}

/// The address was verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserVerified {
    /// The address verified. Personal data: absent in a redacted event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Email, nullable = false))]
    pub email: Option<Email>,
}

/// The account's address changed (the new one confirmed from its inbox).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserEmailChanged {
    /// The new address. Personal data: absent in a redacted event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Email, nullable = false))]
    pub email: Option<Email>,
    /// The address before. Personal data: absent in a redacted event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Email, nullable = false))]
    pub previous_email: Option<Email>,
}

/// The display name changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserProfileUpdated {
    /// The new display name. Personal data: absent in a redacted event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub name: Option<String>,
}

/// The user changed their password; every other credential ended (`all_but_one`: the changing
/// session carries on).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserPasswordChanged {
    pub revoked: Revoked,
}

/// The password was reset through a mailed link; every credential ended (`all`), and the
/// passkeys with them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserPasswordReset {
    pub revoked: Revoked,
}

/// The user's credentials were ended without a password change: "log out other devices" by the
/// user (`all_but_one`), or `gatehouse user:sign-out-everywhere` (`all`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserSignedOut {
    pub revoked: Revoked,
    pub by: Actor,
}

/// An operator disabled the account (`gatehouse user:disable`): no sign-in, every credential
/// ended (`all`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserDisabled {
    pub revoked: Revoked,
}

/// An operator enabled the account again (`gatehouse user:enable`): sign-in is allowed; nothing
/// revoked comes back, so there is nothing to say but the fact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserEnabled {}

/// The account was deleted: every credential ended (`all`). Drop what you hold of this user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserDeleted {
    pub revoked: Revoked,
}

/// A session was signed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionCreated {
    /// The session's opaque handle, as `GET /sessions` lists it and `DELETE /sessions/{id}` takes
    /// it (neither the session's secret nor its hash).
    pub session: String,
    /// Whether the browser showed no device cookie of this account (a device not seen before).
    pub new_device: bool,
    pub method: SessionMethod,
    /// Whether "remember me" was asked for.
    pub remember: bool,
    /// When the session ends at the latest (RFC 3339, UTC, milliseconds).
    #[serde(with = "millis")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: Timestamp,
    /// The request that signed in. Personal data: absent in a redacted event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub client: Option<Client>,
}

/// A session ended on its own: signed out of, or ended by the user from another session. The
/// credentials derived from it end with it, unannounced one by one; a session a credentials change
/// ended is in that change's event, and one that expires is not announced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionEnded {
    /// The session's opaque handle, as in `session.created`.
    pub session: String,
    pub reason: SessionEndReason,
}

/// A personal access token was made (its secret never leaves the answer that made it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenCreated {
    /// The token's id, as `GET /tokens` lists it.
    pub token_id: String,
    /// The name the user gave it. Personal data (text the user chose): absent in a
    /// redacted event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub name: Option<String>,
    pub abilities: Vec<String>,
    /// When it expires (RFC 3339, UTC, milliseconds); absent when it does not.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "millis_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime, nullable = false))]
    pub expires_at: Option<Timestamp>,
}

/// A personal access token revoked by the user. What derived from it ends with it, unannounced
/// one by one; a token a credentials change ended is in that change's event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenRevoked {
    pub token_id: String,
    pub reason: TokenRevokeReason,
}

/// The second factor (an authenticator app) was turned on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TwoFactorEnabled {
    pub by: TwoFactorBy,
}

/// The second factor was turned off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TwoFactorDisabled {
    pub by: TwoFactorBy,
}

/// A passkey was added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PasskeyAdded {
    /// The passkey's credential id (base64url), as `GET /user/passkeys` lists it.
    pub passkey_id: String,
    /// The name the user gave it. Personal data (text the user chose): absent in a
    /// redacted event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub name: Option<String>,
}

/// A passkey was removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PasskeyRemoved {
    pub passkey_id: String,
    /// The name the user gave it. Personal data (text the user chose): absent in a
    /// redacted event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub name: Option<String>,
}

/// An account at a sign-in provider was connected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IdentityLinked {
    /// The configured provider's id, e.g. `google`, `github`.
    pub provider: String,
}

/// An account at a sign-in provider was disconnected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IdentityUnlinked {
    pub provider: String,
}

/// The user approved an OAuth client's scopes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OAuthConsentGranted {
    pub client_id: String,
    /// Every scope the consent now covers.
    pub scopes: Vec<String>,
}

/// The user's consent to an OAuth client ended (the app disconnected).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OAuthConsentRevoked {
    pub client_id: String,
    /// The scopes the consent covered.
    pub scopes: Vec<String>,
}

/// What `gatehouse webhook:test` sends an endpoint, signed as a delivery is: a ping, not an event
/// of any user (no `user_id`, no `seq`, never stored or delivered again). A receiver answers it
/// 2xx like any delivery, and may drop it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookTest {
    /// `evt_` and a UUIDv7: the delivery's `webhook-id`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: EventId,
    /// Always `webhook.test`.
    #[serde(rename = "type")]
    #[cfg_attr(feature = "openapi", schema(pattern = "^webhook\\.test$"))]
    pub kind: String,
    pub version: u32,
    /// When it was sent (RFC 3339, UTC, milliseconds).
    #[serde(with = "millis")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub occurred_at: Timestamp,
    pub data: WebhookTestData,
}

/// The endpoint a `webhook.test` ping was sent to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookTestData {
    /// The endpoint's id (`we_…`), as `gatehouse webhook:list` shows it.
    pub endpoint_id: String,
}

impl WebhookTest {
    pub const TYPE: &'static str = "webhook.test";

    /// A ping to the endpoint `endpoint_id`, sent at `now`.
    pub fn new(endpoint_id: &str, now: Timestamp) -> Self {
        Self {
            id: EventId::generate(),
            kind: Self::TYPE.to_owned(),
            version: EVENTS_VERSION,
            occurred_at: now,
            data: WebhookTestData { endpoint_id: endpoint_id.to_owned() },
        }
    }
}

/// A timestamp as RFC 3339 in UTC to the millisecond (`2026-11-23T13:15:00.123Z`).
mod millis {
    use crate::values::clock::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let s = String::deserialize(d)?;
        chrono::DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(serde::de::Error::custom)
    }
}

/// [`millis`] for an optional timestamp (absent or `null`: `None`).
mod millis_option {
    use crate::values::clock::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::millis::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
        #[derive(Deserialize)]
        struct Wrapped(#[serde(with = "super::millis")] Timestamp);
        Ok(Option::<Wrapped>::deserialize(d)?.map(|Wrapped(t)| t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at() -> Timestamp {
        chrono::Utc.timestamp_millis_opt(1_795_000_000_123).unwrap()
    }

    #[test]
    fn the_envelope_is_flat_with_the_type_and_its_data() {
        let user = UserId::generate();
        let event = Event::new(user.clone(), 3, at(), EventBody::UserDeleted(UserDeleted { revoked: Revoked::All }));
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "id": event.id.as_str(), "type": "user.deleted", "version": 1, "user_id": user.as_str(),
                "seq": 3, "occurred_at": "2026-11-18T11:06:40.123Z", "data": { "revoked": "all" },
            })
        );
        assert_eq!(serde_json::from_value::<Event>(json).unwrap(), event);
        assert_eq!(event.kind(), EventType::UserDeleted);
    }

    #[test]
    fn event_ids_are_evt_and_a_canonical_uuid() {
        let id = EventId::generate();
        assert!(id.as_str().starts_with("evt_"));
        assert_eq!(EventId::parse(id.as_str()), Some(id.clone()));
        let uuid = id.as_str().trim_start_matches("evt_");
        for bad in [uuid.to_owned(), format!("evt_{}", uuid.to_uppercase()), "evt_".into(), format!("evx_{uuid}")] {
            assert_eq!(EventId::parse(&bad), None, "{bad}");
        }
        let json = serde_json::json!({ "id": "evt_x", "type": "user.enabled", "version": 1,
            "user_id": UserId::generate().as_str(), "seq": 1, "occurred_at": "2026-11-18T11:06:40.123Z", "data": {} });
        assert!(serde_json::from_value::<Event>(json).is_err(), "a malformed id is refused");
    }

    #[test]
    fn every_type_has_one_name_that_parses_back() {
        let names: std::collections::BTreeSet<_> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(names.len(), EventType::ALL.len(), "two types share a name");
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str(), "serde and as_str agree");
        }
        assert_eq!(EventType::parse("user.exploded"), None);
    }

    #[test]
    fn an_optional_expiry_is_left_out_when_absent() {
        let token = TokenCreated { token_id: "t".into(), name: Some("n".into()), abilities: vec![], expires_at: None };
        assert_eq!(
            serde_json::to_value(&token).unwrap(),
            serde_json::json!({ "token_id": "t", "name": "n", "abilities": [] })
        );
        let dated = TokenCreated { expires_at: Some(at()), ..token };
        let json = serde_json::to_value(&dated).unwrap();
        assert_eq!(json["expires_at"], "2026-11-18T11:06:40.123Z");
        assert_eq!(serde_json::from_value::<TokenCreated>(json).unwrap(), dated);
    }
}

/// What [`EventStore::append`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// The event is stored at its (user, seq).
    Added,
    /// This very event (its id) was there already: a retry of its job, or of the put itself.
    Already,
    /// Another event holds the number: this one is not stored.
    Taken(EventId),
}

/// The `events` table: each user's events by `seq`, each kept until its `expires_at`
/// (`GATEHOUSE_EVENT_RETENTION_DAYS` after it was recorded), for delivery in order.
#[async_trait::async_trait]
pub trait EventStore: Send + Sync {
    /// Stores `event` at (`event.user_id`, `event.seq`) until `expires_at`, conditionally: a
    /// number is held by one event only, so the same event appended again is `Already` and never
    /// a second item, another event at that number `Taken`. An expired item still holds its number.
    async fn append(&self, event: &Event, expires_at: Timestamp) -> crate::values::error::StoreResult<Appended>;
    /// The user's events numbered after `seq`, in order, at most `limit`; expired ones are not
    /// listed (though TTL deletes them late).
    async fn after(&self, user: &UserId, seq: u64, limit: usize) -> crate::values::error::StoreResult<Vec<Event>>;
    /// Rewrites every stored event of `user` (expired ones too, until TTL takes them) as
    /// [`Event::redact`] leaves it, keeping its number, id and expiry: what the account's deletion
    /// leaves of the user's events. Says how many it rewrote (one already redacted is left as it is).
    async fn redact(&self, user: &UserId) -> crate::values::error::StoreResult<usize>;
}
