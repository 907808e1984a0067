//! What the API answers: one struct per response body, built from domain values. A view never
//! holds a secret it was not made to show once (a new token's plaintext, a handoff token).

use gatehouse::tables::personal_access_tokens::PersonalAccessToken;
use gatehouse::tables::sessions::{SessionKey, SessionRecord};
use gatehouse::tables::users::User;
use gatehouse::values::clock::rfc3339;
use serde::{Deserialize, Serialize};

/// The public view of a user: never the hash, never the remember token.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = User))]
// No field but these: the document promises it (`additionalProperties: false`).
#[serde(deny_unknown_fields)]
pub struct UserView {
    pub id: String,
    pub name: String,
    pub email: String,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub email_verified_at: Option<String>,
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub created_at: String,
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub updated_at: String,
    /// Whether sign-in needs a second factor (a confirmed authenticator app).
    pub two_factor_enabled: bool,
    /// How many passkeys the account has (`GET /user/passkeys` lists them).
    pub passkeys: usize,
    /// Whether the account has a password. One made through a sign-in provider or an email link
    /// has none (until a password reset sets one): it confirms itself for sensitive actions with
    /// a mailed code (`POST /user/confirm-by-email`) instead of `POST /user/confirm-password`.
    pub has_password: bool,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.as_str().to_owned(),
            name: u.name.clone(),
            email: u.email.as_str().to_owned(),
            email_verified_at: u.email_verified_at.map(rfc3339),
            created_at: rfc3339(u.created_at),
            updated_at: rfc3339(u.updated_at),
            two_factor_enabled: u.two_factor.enabled(),
            passkeys: u.passkeys.len(),
            has_password: u.has_password(),
        }
    }
}

/// `{"user": …}`.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserBody {
    pub user: UserView,
}

impl From<&User> for UserBody {
    fn from(u: &User) -> Self {
        Self { user: u.into() }
    }
}

/// One of the user's sessions, identified by a hint (never its id).
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Session))]
pub struct SessionView {
    /// Opaque: what `DELETE /sessions/{id}` takes (neither the session secret nor its hash).
    pub id: String,
    pub id_hint: String,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub ip_address: Option<String>,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub user_agent: Option<String>,
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub last_activity: String,
    /// The session making the request.
    pub current: bool,
}

impl SessionView {
    /// `id` is the session's handle ([`gatehouse::keys::AppKey::session_handle`]).
    pub fn new(s: &SessionRecord, current: Option<&SessionKey>, id: String) -> Self {
        Self {
            id,
            id_hint: s.key.hint().to_owned(),
            ip_address: s.ip_address.clone(),
            user_agent: s.user_agent.clone(),
            last_activity: rfc3339(s.last_activity),
            current: current == Some(&s.key),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionsBody {
    pub sessions: Vec<SessionView>,
    /// The account's second factors, as signing in anywhere else will ask for them: a TOTP app
    /// (with recovery codes) when on.
    pub two_factor_enabled: bool,
    /// How many passkeys can sign in to the account on their own.
    pub passkeys: usize,
    /// How many devices the account knows (a device cookie each, given at a sign-in; at most 20,
    /// the oldest forgotten first): a sign-in from one is held to its own count and the
    /// account's known-device ceiling. A reset, a password change or "log out other devices"
    /// forgets them all.
    pub known_devices: usize,
}

/// A personal access token as listed (never its secret).
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Token))]
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub abilities: Vec<String>,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub last_used_at: Option<String>,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub expires_at: Option<String>,
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub created_at: String,
}

impl From<&PersonalAccessToken> for TokenView {
    fn from(t: &PersonalAccessToken) -> Self {
        Self {
            id: t.id.as_str().to_owned(),
            name: t.name.clone(),
            abilities: t.abilities.as_slice().to_vec(),
            last_used_at: t.last_used_at.map(rfc3339),
            expires_at: t.expires_at.map(rfc3339),
            created_at: rfc3339(t.created_at),
        }
    }
}

/// A page of tokens; `next_cursor` is sealed to the owner.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenPage {
    pub tokens: Vec<TokenView>,
    /// Opaque cursor of the next page; null on the last page.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub next_cursor: Option<String>,
}

/// A token just minted: its plaintext, shown this once.
#[derive(Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewTokenView {
    /// `<id>.<user id>|<secret>`, shown once.
    pub token: String,
    pub id: String,
    pub name: String,
    pub abilities: Vec<String>,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub expires_at: Option<String>,
}

impl From<gatehouse::services::token_issuer::NewToken> for NewTokenView {
    fn from(t: gatehouse::services::token_issuer::NewToken) -> Self {
        Self {
            token: t.plain.expose(),
            id: t.record.id.as_str().to_owned(),
            name: t.record.name,
            abilities: t.record.abilities.as_slice().to_vec(),
            expires_at: t.record.expires_at.map(rfc3339),
        }
    }
}

/// A sign-in whose password was right, for a user with a second factor: nothing is issued until
/// `POST /two-factor-challenge` completes it.
#[derive(Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TwoFactorChallengeView {
    /// Always `true`.
    pub two_factor: bool,
    /// Single use, for this client, valid for 5 minutes.
    pub challenge: String,
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub expires_at: String,
}

impl TwoFactorChallengeView {
    pub fn new(challenge: &gatehouse::services::sign_in::ChallengeToken, now: gatehouse::Timestamp) -> Self {
        let expires_at = rfc3339(now + gatehouse::services::sign_in::CHALLENGE_LIFETIME);
        Self { two_factor: true, challenge: challenge.expose().to_owned(), expires_at }
    }
}

/// An authenticator app to enrol: shown once (confirm with `POST
/// /user/confirmed-two-factor-authentication`).
#[derive(Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrolmentView {
    /// Base32, for typing into the app.
    pub secret: String,
    /// `otpauth://totp/…`.
    pub otpauth_url: String,
    /// The same URI as a QR code (an SVG document).
    pub qr_svg: String,
}

/// Recovery codes, shown this once; each signs in once in place of a code.
#[derive(Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecoveryCodesView {
    pub recovery_codes: Vec<String>,
}

/// A handoff token just made: its plaintext, shown this once.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HandoffView {
    pub handoff_token: String,
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub expires_at: String,
}

/// A handoff exchanged for a session of this app (the cookie is set alongside).
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExchangeView {
    pub user: UserView,
    pub cross_app_session_id: String,
}

/// `GET /user/confirmed-password-status`.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConfirmedView {
    /// True when the password was confirmed (`POST /user/confirm-password`; signing in is none)
    /// within GATEHOUSE_PASSWORD_TIMEOUT_SECONDS.
    pub confirmed: bool,
}

/// A sentence for a person (forgot and reset password).
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageView {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub message: &'static str,
}

/// The landing of a verification link.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerificationView {
    pub verified: bool,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub message: &'static str,
}

/// A cross-app audit record: a session another app's handoff opened here.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = CrossAppSession))]
pub struct CrossAppSessionView {
    pub id: String,
    pub source_app: String,
    pub target_app: String,
    /// When the handoff was exchanged (the session opened).
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub created_at: String,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub revoked_at: Option<String>,
    /// Why it ended: `revoked_by_user`, `logout`, `password_reset`, `password_changed`,
    /// `other_devices_logged_out`, `parent_revoked`, …
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub revoked_reason: Option<String>,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub ip_address: Option<String>,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub user_agent: Option<String>,
}

impl From<&gatehouse::tables::cross_app_sessions::CrossAppSession> for CrossAppSessionView {
    fn from(s: &gatehouse::tables::cross_app_sessions::CrossAppSession) -> Self {
        Self {
            id: s.id.clone(),
            source_app: s.source_app.clone(),
            target_app: s.target_app.clone(),
            created_at: rfc3339(s.created_at),
            revoked_at: s.revoked_at.map(rfc3339),
            revoked_reason: s.revoked_reason.clone(),
            ip_address: s.ip_address.clone(),
            user_agent: s.user_agent.clone(),
        }
    }
}

/// A page of cross-app audit records, newest first; `next_cursor` is sealed to the owner.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CrossAppPage {
    pub sessions: Vec<CrossAppSessionView>,
    /// Opaque cursor of the next page; null on the last page.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub next_cursor: Option<String>,
}

/// A passkey of the user's (never its public key).
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PasskeyView {
    /// The credential id (base64url): what `DELETE /user/passkeys/{id}` takes.
    pub id: String,
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub created_at: String,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub last_used_at: Option<String>,
}

impl From<&gatehouse::tables::users::Passkey> for PasskeyView {
    fn from(p: &gatehouse::tables::users::Passkey) -> Self {
        Self {
            id: p.id.clone(),
            name: p.name.clone(),
            created_at: rfc3339(p.created_at),
            last_used_at: p.last_used_at.map(rfc3339),
        }
    }
}

/// An application with access to the account (`GET /user/oauth-apps`).
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuthorizedAppView {
    /// What `DELETE /user/oauth-apps/{client_id}` takes.
    pub client_id: String,
    /// The client's name as registered (registrant-supplied text).
    pub name: String,
    pub scopes: Vec<String>,
    /// Your own app: its consent is never asked.
    pub first_party: bool,
    /// How many signed-in copies of the app hold a grant.
    pub grants: usize,
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub since: String,
}

impl From<&gatehouse::services::oauth::grants::AuthorizedApp> for AuthorizedAppView {
    fn from(a: &gatehouse::services::oauth::grants::AuthorizedApp) -> Self {
        Self {
            client_id: a.client_id.as_str().to_owned(),
            name: a.name.clone(),
            scopes: a.scopes.clone(),
            first_party: a.first_party,
            grants: a.grants,
            since: a.since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }
}

/// `{"apps": […]}`, by name.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuthorizedAppsView {
    pub apps: Vec<AuthorizedAppView>,
}

/// `{"passkeys": […]}`, oldest first.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PasskeysView {
    pub passkeys: Vec<PasskeyView>,
}

/// A WebAuthn ceremony's options, for `navigator.credentials.create({publicKey})` or `.get()`.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PasskeyOptionsView {
    /// WebAuthn's `PublicKeyCredentialCreationOptionsJSON` or `PublicKeyCredentialRequestOptionsJSON`.
    #[serde(rename = "publicKey")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub public_key: serde_json::Value,
}

/// An identity provider people may sign in with.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProviderView {
    /// What the provider routes take (`/auth/providers/{provider}/start`).
    pub id: String,
    /// What a "Continue with …" button says.
    pub name: String,
    /// `oidc` or `github`.
    pub kind: String,
}

impl From<&gatehouse::providers::Provider> for ProviderView {
    fn from(p: &gatehouse::providers::Provider) -> Self {
        let kind = match p.kind {
            gatehouse::providers::ProviderKind::Oidc { .. } => "oidc",
            gatehouse::providers::ProviderKind::GitHub { .. } => "github",
        };
        Self { id: p.id.clone(), name: p.name.clone(), kind: kind.to_owned() }
    }
}

/// `{"providers": […]}`, as configured.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProvidersView {
    pub providers: Vec<ProviderView>,
}

/// Where to send the browser to sign in with (or connect) a provider.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FederationStartView {
    /// The provider's authorization address (with `state`, PKCE and a `nonce`).
    pub url: String,
}

/// A provider account connected to the user.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IdentityView {
    /// Opaque: what `DELETE /user/identities/{id}` takes.
    pub id: String,
    pub provider: String,
    pub provider_name: String,
    /// The address the provider gave when it was connected (provider-supplied text).
    pub email: Option<String>,
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub linked_at: String,
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub last_used_at: Option<String>,
}

impl From<&gatehouse::services::federation::linking::Connected> for IdentityView {
    fn from(c: &gatehouse::services::federation::linking::Connected) -> Self {
        let at = |t: &chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        Self {
            id: c.id.clone(),
            provider: c.provider.clone(),
            provider_name: c.provider_name.clone(),
            email: c.email.clone(),
            linked_at: at(&c.linked_at),
            last_used_at: c.last_used_at.as_ref().map(at),
        }
    }
}

/// `{"identities": […]}`.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IdentitiesView {
    pub identities: Vec<IdentityView>,
}

/// A provider connected to the signed-in user (a link flow's end).
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LinkedView {
    pub linked: String,
}
