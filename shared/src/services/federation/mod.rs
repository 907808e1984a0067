//! Social sign-in (Laravel Socialite's job): gatehouse as the relying party of OpenID Connect
//! providers and of GitHub. A flow is begun by one browser ([`Federation::start`]: `state`, a
//! `nonce` and a PKCE verifier, the latter two derived from a secret only that browser's cookie
//! holds) and finished by the same browser once ([`Federation::finish`]); the provider's answer
//! is checked ([`oidc`], [`github`]) and its identity signs in, signs up or links by the rules of
//! [`linking`].

pub mod fetch;
pub mod flow;
pub mod github;
pub mod linking;
pub mod metadata;
pub mod notice;
pub mod oidc;

pub use fetch::{Fetch, FetchError};

use crate::providers::Provider;
use crate::queue::Dispatcher;
use crate::services::auth::{Auth, AuthError, ClientMeta};
use crate::values::clock::Span;
use crate::values::error::StoreError;
use std::sync::Arc;
use thiserror::Error;

/// How long a begun flow waits for its callback.
pub const FLOW_LIFETIME: Span = Span::minutes(10);

#[derive(Debug, Error)]
pub enum FederationError {
    #[error("no identity provider of that name is configured")]
    UnknownProvider,
    /// No flow of this browser answers this `state`: begun in another browser, already finished
    /// (a replayed callback), expired, or made up.
    #[error("this sign-in was not begun in this browser, or has expired; start again")]
    StateInvalid,
    /// The provider's answer did not verify (the code exchange, the ID token, the user API).
    #[error("the identity provider's answer could not be verified; start again")]
    ProviderFailed,
    /// An account holds the provider's address, and the rules do not let this identity join it.
    #[error("an account with this address exists: sign in to it, then connect this provider from your account page")]
    LinkRequired,
    #[error("this provider account is already connected to another account")]
    IdentityTaken,
    #[error("the identity provider does not say this address is verified")]
    EmailUnverified,
    #[error("new accounts cannot be made this way")]
    SignupDisabled,
    #[error("this is the account's last way to sign in: add a password or a passkey first")]
    LastWayIn,
    #[error("no such connected account")]
    NoSuchIdentity,
    #[error(transparent)]
    Auth(#[from] AuthError),
}

impl From<StoreError> for FederationError {
    fn from(e: StoreError) -> Self {
        Self::Auth(AuthError::Store(e))
    }
}

/// What the flow was begun for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Intent {
    /// Sign in (or sign up) with the provider.
    SignIn { remember: bool },
    /// Connect the provider to this signed-in user (begun with a recent confirmation): finished
    /// only by the same session (`session`: SHA-256 of its stored key), still recently confirmed,
    /// under the credentials version it began with.
    Link { user_id: String, session: String, version: u64 },
}

/// A begun flow: where to send the browser, and the binding cookie to set (again: it must
/// outlive this flow).
pub struct Started {
    pub url: String,
    pub binding: String,
}

impl std::fmt::Debug for Started {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Started([REDACTED])")
    }
}

/// What the provider proved about the person: its stable subject, and the address if it gave one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    /// The provider's tokens, sealed, when the provider is configured to keep them.
    pub sealed_tokens: Option<String>,
}

/// The relying party: the configured providers, their cached metadata, the outbound client.
#[derive(Clone)]
pub struct Federation {
    pub(crate) auth: Auth,
    dispatcher: Dispatcher,
    pub(crate) fetch: Arc<dyn Fetch>,
    pub(crate) cache: Arc<metadata::MetadataCache>,
}

impl Federation {
    /// `cache` is the process's: discovery and keys outlive a request.
    pub fn new(auth: Auth, dispatcher: Dispatcher, fetch: Arc<dyn Fetch>, cache: Arc<metadata::MetadataCache>) -> Self {
        Self { auth, dispatcher, fetch, cache }
    }

    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    pub fn dispatcher(&self) -> &Dispatcher {
        &self.dispatcher
    }

    pub fn provider(&self, id: &str) -> Result<&Provider, FederationError> {
        self.auth.config().federation.provider(id).ok_or(FederationError::UnknownProvider)
    }
}

/// The provider's tokens sealed under the app key, when the provider is set to keep them.
pub(crate) fn sealed(fed: &Federation, p: &Provider, answer: &serde_json::Value) -> Option<String> {
    if !p.keep_tokens {
        return None;
    }
    let keep = serde_json::json!({
        "access_token": answer.get("access_token"),
        "refresh_token": answer.get("refresh_token"),
        "expires_in": answer.get("expires_in"),
        "scope": answer.get("scope"),
    });
    let text = keep.to_string();
    // Kept beside the identity, in one item of at most 400 KB: a provider's answer larger than
    // any real token set is not kept (the sign-in goes on without it).
    if text.len() > MAX_KEPT_TOKENS {
        tracing::warn!(event = "federation_tokens_not_kept", provider = %p.id, bytes = text.len());
        return None;
    }
    fed.auth.config().app_key.seal("federation-tokens", text.as_bytes())
}

/// The largest token set kept (`_KEEP_TOKENS`).
pub const MAX_KEPT_TOKENS: usize = 16 * 1024;

/// A provider's callback, as the route read it.
pub struct Callback<'a> {
    pub provider: &'a str,
    pub code: &'a str,
    pub state: &'a str,
    /// RFC 9207's `iss`, when the provider sent one.
    pub iss: Option<&'a str>,
    /// The browser's binding cookie.
    pub binding: Option<&'a str>,
    /// The session cookie, when the browser sent one (a link flow is finished by the session
    /// that began it; read only for those, after the flow is counted and taken).
    pub session_cookie: Option<&'a str>,
    pub meta: &'a ClientMeta,
    pub device_cookie: Option<&'a str>,
}
