//! What the API answers: one struct per response body, built from domain values. A view never
//! holds a secret it was not made to show once (a new token's plaintext, a handoff token).

use gatehouse::clock::rfc3339;
use gatehouse::personal_access_tokens::PersonalAccessToken;
use gatehouse::sessions::{SessionKey, SessionRecord};
use gatehouse::users::User;
use serde::Serialize;

/// The public view of a user: never the hash, never the remember token.
#[derive(Debug, Serialize)]
pub struct UserView {
    pub id: String,
    pub name: String,
    pub email: String,
    pub email_verified_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
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
        }
    }
}

/// `{"user": …}`.
#[derive(Debug, Serialize)]
pub struct UserBody {
    pub user: UserView,
}

impl From<&User> for UserBody {
    fn from(u: &User) -> Self {
        Self { user: u.into() }
    }
}

/// One of the user's sessions, identified by a hint (never its id).
#[derive(Debug, Serialize)]
pub struct SessionView {
    pub id_hint: String,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub last_activity: String,
    /// The session making the request.
    pub current: bool,
}

impl SessionView {
    pub fn new(s: &SessionRecord, current: Option<&SessionKey>) -> Self {
        Self {
            id_hint: s.key.hint().to_owned(),
            ip_address: s.ip_address.clone(),
            user_agent: s.user_agent.clone(),
            last_activity: rfc3339(s.last_activity),
            current: current == Some(&s.key),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct SessionsBody {
    pub sessions: Vec<SessionView>,
}

/// A personal access token as listed (never its secret).
#[derive(Debug, Serialize)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub abilities: Vec<String>,
    pub last_used_at: Option<String>,
    pub expires_at: Option<String>,
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
#[derive(Debug, Serialize)]
pub struct TokenPage {
    pub tokens: Vec<TokenView>,
    pub next_cursor: Option<String>,
}

/// A token just minted: its plaintext, shown this once.
#[derive(Serialize)]
pub struct NewTokenView {
    pub token: String,
    pub id: String,
    pub name: String,
    pub abilities: Vec<String>,
    pub expires_at: Option<String>,
}

/// A handoff token just made: its plaintext, shown this once.
#[derive(Serialize)]
pub struct HandoffView {
    pub handoff_token: String,
    pub expires_at: String,
}

/// A handoff exchanged for a session of this app (the cookie is set alongside).
#[derive(Debug, Serialize)]
pub struct ExchangeView {
    pub user: UserView,
    pub cross_app_session_id: String,
}

/// `GET /user/confirmed-password-status`.
#[derive(Debug, Serialize)]
pub struct ConfirmedView {
    pub confirmed: bool,
}

/// A sentence for a person (forgot and reset password).
#[derive(Debug, Serialize)]
pub struct MessageView {
    pub message: &'static str,
}
