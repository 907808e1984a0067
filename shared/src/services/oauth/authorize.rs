//! The authorization endpoint's rules (RFC 6749 §4.1 as OAuth 2.1 narrows it): `response_type`
//! `code` only, PKCE with S256 required (plain refused), the redirect URI matched exactly against
//! the client's list, `state` returned, `iss` added (RFC 9207). Until the client and its redirect
//! URI are known good, errors are shown on the page and never redirected (no open redirect);
//! after, they go back to the client. Approval needs the browser's session (the hosted page signs
//! the person in first) and, but for first-party clients and scopes already approved, consent.

use super::{OAuthError, OAuthProvider, OPENID, parse_scope, single, with_query};
use crate::tables::credential_ref::CredentialRef;
use crate::tables::credentials::{CredentialEntry, NewCredential};
use crate::tables::events::{EventBody, OAuthConsentGranted};
use crate::tables::oauth_auth_codes::{AuthCode, AuthCodeRecord};
use crate::tables::oauth_clients::{ClientId, GrantType, OAuthClient};
use crate::tables::oauth_consents::Consent;
use crate::tables::oauth_refresh_tokens::new_family_id;
use crate::tables::sessions::SessionRecord;
use crate::tables::users::UserId;
use crate::values::error::StoreResult;

/// `prompt` (OpenID Connect Core §3.1.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    /// Sign in and consent only when needed.
    Default,
    /// Never show a page: answer `login_required` / `consent_required` instead.
    None,
    /// Sign in again, even with a session.
    Login,
    /// Ask for consent, even when given before.
    Consent,
}

/// A checked authorization request.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    pub client: OAuthClient,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub scopes: Vec<String>,
    pub code_challenge: String,
    pub nonce: Option<String>,
    pub prompt: Prompt,
    /// `max_age`: a session signed in longer ago than this must sign in again.
    pub max_age: Option<i64>,
}

/// Why an authorization request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The client or its redirect URI cannot be trusted: said on the page, never redirected.
    Page(String),
    /// Sent back to the client: the redirect URI with `error`, `error_description`, `state`, `iss`.
    Redirect(String),
}

/// The parameters the page carries through sign-in and the consent form, and checks again.
pub const PARAMETERS: [&str; 10] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "nonce",
    "prompt",
    "max_age",
];

/// Whether `s` is a PKCE code verifier or S256 challenge's shape: 43 to 128 unreserved characters.
pub fn pkce_shaped(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

impl OAuthProvider {
    /// Checks an authorization request's parameters (query or form).
    pub async fn authorization_request(&self, params: &[(String, String)]) -> Result<AuthorizationRequest, Refusal> {
        let page = |m: &str| Refusal::Page(m.to_owned());
        let one = |name: &str| single(params, name).map_err(|e| Refusal::Page(e.to_string()));
        let client_id = one("client_id")?.ok_or_else(|| page("The request names no client (client_id)."))?;
        let client = match ClientId::parse(client_id) {
            Some(id) => self.stores().oauth_clients.find(&id).await.map_err(|_| page("Try again in a moment."))?,
            None => None,
        };
        let client = client.filter(|c| !c.revoked).ok_or_else(|| page("This application is not registered here."))?;
        let redirect_uri = match one("redirect_uri")? {
            Some(uri) if client.redirect_uris.iter().any(|r| r == uri) => uri.to_owned(),
            // OAuth 2.1 §2.3.2 lets a client with one redirect URI omit it; we ask for it always.
            Some(_) => return Err(page("The redirect address is not one this application registered.")),
            None => return Err(page("The request names no redirect address (redirect_uri).")),
        };
        // From here on errors go back to the client — but for a client anyone could register
        // (RFC 7591), whose redirect URI is whatever its registrant chose, they are said on the
        // page: this site does not bounce browsers to such an address unasked (RFC 9700 §4.11.2).
        let state = single(params, "state").ok().flatten().map(str::to_owned);
        let dynamic = client.dynamic;
        let back = |error: &str, description: &str| match dynamic {
            true => Refusal::Page(format!("The application's request was refused ({error}): {description}.")),
            false => Refusal::Redirect(self.error_redirect(&redirect_uri, state.as_deref(), error, description)),
        };
        let one = |name: &str| single(params, name).map_err(|e| back("invalid_request", &e.to_string()));
        if state.as_ref().is_some_and(|s| s.len() > 1000) {
            return Err(back("invalid_request", "state is too long"));
        }
        if params.iter().any(|(k, _)| k == "request" || k == "request_uri") {
            return Err(back("request_not_supported", "request objects are not supported"));
        }
        match one("response_type")? {
            Some("code") => {}
            Some(_) => return Err(back("unsupported_response_type", "only response_type=code is supported")),
            None => return Err(back("invalid_request", "response_type is required")),
        }
        if one("response_mode")?.is_some_and(|m| m != "query") {
            return Err(back("invalid_request", "only response_mode=query is supported"));
        }
        if !client.allows(GrantType::AuthorizationCode) {
            return Err(back("unauthorized_client", "this client may not use the authorization code grant"));
        }
        let code_challenge =
            one("code_challenge")?.ok_or_else(|| back("invalid_request", "PKCE is required: code_challenge"))?;
        match one("code_challenge_method")? {
            Some("S256") => {}
            _ => return Err(back("invalid_request", "code_challenge_method must be S256")),
        }
        if code_challenge.len() != 43 || !pkce_shaped(code_challenge) {
            return Err(back("invalid_request", "code_challenge must be the base64url SHA-256 of the verifier"));
        }
        let scopes = parse_scope(one("scope")?.unwrap_or_default())
            .ok_or_else(|| back("invalid_scope", "scope is malformed"))?;
        if scopes.is_empty() {
            return Err(back("invalid_scope", "scope is required"));
        }
        if let Some(s) = scopes.iter().find(|s| !client.scopes.contains(s)) {
            return Err(back("invalid_scope", &format!("this client may not ask for {s:?}")));
        }
        let nonce = one("nonce")?.map(str::to_owned);
        if nonce.as_ref().is_some_and(|n| n.len() > 500) {
            return Err(back("invalid_request", "nonce is too long"));
        }
        let prompt = match one("prompt")? {
            None => Prompt::Default,
            Some("none") => Prompt::None,
            Some("login") => Prompt::Login,
            Some("consent") => Prompt::Consent,
            Some(_) => return Err(back("invalid_request", "prompt may be none, login or consent")),
        };
        let max_age = match one("max_age")? {
            None => None,
            Some(m) => {
                Some(m.parse::<i64>().ok().filter(|m| *m >= 0).ok_or_else(|| back("invalid_request", "max_age"))?)
            }
        };
        Ok(AuthorizationRequest {
            code_challenge: code_challenge.to_owned(),
            client,
            redirect_uri,
            state,
            scopes,
            nonce,
            prompt,
            max_age,
        })
    }

    /// The client's redirect URI carrying an error (with `state` and `iss`).
    pub fn error_redirect(&self, redirect_uri: &str, state: Option<&str>, error: &str, description: &str) -> String {
        let mut params = vec![("error", error), ("error_description", description)];
        if let Some(s) = state {
            params.push(("state", s));
        }
        params.push(("iss", &self.config().oauth.issuer));
        with_query(redirect_uri, &params)
    }

    /// Whether the person must be asked: not for a first-party client, nor for scopes they
    /// approved before (unless `prompt=consent`).
    pub async fn consent_needed(&self, user: &UserId, req: &AuthorizationRequest) -> StoreResult<bool> {
        if req.prompt == Prompt::Consent {
            return Ok(true);
        }
        if req.client.first_party {
            return Ok(false);
        }
        let consent = self.stores().oauth_consents.find(user, &req.client.id).await?;
        Ok(!consent.is_some_and(|c| c.covers(&req.scopes)))
    }

    /// Whether the session is too old for the request (`max_age`, `prompt=login` is the page's).
    pub fn session_too_old(&self, session: &SessionRecord, req: &AuthorizationRequest) -> bool {
        let now = self.stores().clock.now();
        req.max_age.is_some_and(|m| (now - session.created_at).num_seconds() > m)
    }

    /// The person approved (or consent was not needed): records the consent when it was asked
    /// (a credential of the register, under the session's credentials version), stores the code,
    /// and answers the redirect back to the client with `code`, `state` and `iss`.
    pub async fn approve(
        &self,
        user: &UserId,
        session: &SessionRecord,
        req: &AuthorizationRequest,
        consented: bool,
    ) -> Result<String, OAuthError> {
        // A session opened by a cross-app handoff is never the source of a credential (as for
        // personal access tokens): a grant from it would outlive the token it came from.
        if session.parent.is_some() || session.abilities.is_some() {
            return Err(OAuthError::AccessDenied(
                "sign in here to allow an application; a session opened from another app cannot",
            ));
        }
        let stores = self.stores();
        let now = stores.clock.now();
        if consented && !req.client.first_party {
            let consent = Consent {
                user_id: user.clone(),
                client_id: req.client.id.clone(),
                scopes: req.scopes.clone(),
                created_at: now,
            };
            let entry = CredentialEntry {
                user_id: user.clone(),
                credential: CredentialRef::consent(&req.client.id),
                parent: None,
                cross_app_id: None,
                created_at: now,
                expires_at: None,
            };
            // `oauth.consent_granted`, promised before the issue whose write on the user numbers it.
            let granted = OAuthConsentGranted { client_id: req.client.id.to_string(), scopes: req.scopes.clone() };
            let body = EventBody::OAuthConsentGranted(granted);
            let event = crate::services::events::promise(&self.auth.dispatcher(), user, body).await?;
            let version = session.credentials_version;
            if !stores.credentials.issue_noting(version, &entry, NewCredential::Consent(&consent), &[event]).await? {
                return Err(OAuthError::AccessDenied("the account's credentials changed; sign in again"));
            }
        }
        let code = AuthCode::generate();
        let record = AuthCodeRecord {
            code_hash: code.hash(),
            client_id: req.client.id.clone(),
            user_id: user.clone(),
            redirect_uri: req.redirect_uri.clone(),
            scopes: req.scopes.clone(),
            code_challenge: req.code_challenge.clone(),
            nonce: req.nonce.clone(),
            credentials_version: session.credentials_version,
            family_id: new_family_id(),
            session_id: Some(self.auth.config().app_key.tag("oauth-sid", session.key.as_str())),
            auth_time: session.created_at,
            amr: Vec::new(),
            created_at: now,
            expires_at: now + self.config().oauth.code_lifetime,
        };
        stores.oauth_auth_codes.put(&record).await?;
        tracing::info!(event = "oauth_code_issued", client_id = %req.client.id, user_id = %user, openid = req.scopes.iter().any(|s| s == OPENID));
        let mut params = vec![("code", code.expose())];
        if let Some(s) = &req.state {
            params.push(("state", s));
        }
        params.push(("iss", &self.config().oauth.issuer));
        Ok(with_query(&req.redirect_uri, &params))
    }

    /// The person said no.
    pub fn deny(&self, req: &AuthorizationRequest) -> String {
        self.error_redirect(&req.redirect_uri, req.state.as_deref(), "access_denied", "the person did not approve")
    }
}
