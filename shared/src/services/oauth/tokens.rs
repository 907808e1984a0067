//! The token endpoint: the authorization code grant (PKCE S256 checked, the code spent once, a
//! replay revoking what the code gave), the refresh token grant (rotation on every use, reuse of
//! a spent token revoking its whole family) and the client credentials grant; and the tokens
//! themselves: RFC 9068 access tokens and OpenID Connect ID tokens, both ES256 JWTs.

use super::clients::Presented;
use super::{
    EMAIL, OAuthError, OAuthProvider, OFFLINE_ACCESS, OIDC_SCOPES, OPENID, PROFILE, parse_scope, scope_string, single,
};
use crate::services::revocation::revoke;
use crate::tables::credential_ref::CredentialRef;
use crate::tables::credentials::{CredentialEntry, NewCredential, Revocation};
use crate::tables::oauth_access_tokens::AccessTokenRecord;
use crate::tables::oauth_auth_codes::{AuthCode, CodeSpend};
use crate::tables::oauth_clients::{GrantType, OAuthClient};
use crate::tables::oauth_refresh_tokens::{RefreshFamily, RefreshToken, Rotation};
use crate::tables::users::{User, UserId};
use crate::values::clock::Timestamp;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The access token's JWT `typ` (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// The token endpoint's answer (RFC 6749 §5.1).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

/// Who a grant is for, as the tokens say it.
struct Grant<'a> {
    client: &'a OAuthClient,
    user: Option<&'a User>,
    scopes: &'a [String],
    family_id: Option<&'a str>,
    auth_time: Option<Timestamp>,
    session_id: Option<&'a str>,
}

impl OAuthProvider {
    /// `POST /oauth/token`.
    pub async fn token(
        &self,
        authorization: Option<&str>,
        form: &[(String, String)],
        client_ip: Option<&str>,
    ) -> Result<TokenResponse, OAuthError> {
        self.limit("token", client_ip).await?;
        let grant_type =
            single(form, "grant_type")?.ok_or_else(|| OAuthError::InvalidRequest("grant_type is required".into()))?;
        let grant = GrantType::parse(grant_type).ok_or(OAuthError::UnsupportedGrantType)?;
        let client = self.authenticate(&Presented::read(authorization, form)?).await?;
        if !client.allows(grant) {
            return Err(OAuthError::UnauthorizedClient);
        }
        match grant {
            GrantType::AuthorizationCode => self.code_grant(&client, form).await,
            GrantType::RefreshToken => self.refresh_grant(&client, form).await,
            GrantType::ClientCredentials => self.client_credentials_grant(&client, form).await,
        }
    }

    async fn code_grant(&self, client: &OAuthClient, form: &[(String, String)]) -> Result<TokenResponse, OAuthError> {
        let code = single(form, "code")?.ok_or_else(|| OAuthError::InvalidRequest("code is required".into()))?;
        let redirect_uri = single(form, "redirect_uri")?
            .ok_or_else(|| OAuthError::InvalidRequest("redirect_uri is required".into()))?;
        let verifier = single(form, "code_verifier")?
            .ok_or_else(|| OAuthError::InvalidRequest("code_verifier is required (PKCE)".into()))?;
        if !super::authorize::pkce_shaped(verifier) {
            return Err(OAuthError::InvalidRequest("code_verifier must be 43 to 128 unreserved characters".into()));
        }
        let code = AuthCode::parse(code).ok_or(OAuthError::InvalidGrant("the code is invalid or spent"))?;
        let stores = self.stores();
        let now = stores.clock.now();
        let spend = stores.oauth_auth_codes.spend(&code.hash(), now).await?;
        let (record, again) = match spend {
            CodeSpend::Spent(r) => (r, false),
            // Presented again by its own client: a retry, or a replay (below).
            CodeSpend::Replayed(r) if r.client_id == client.id => (r, true),
            // Anyone else holding a leaked spent code changes nothing.
            CodeSpend::Replayed(_) | CodeSpend::Unknown => {
                return Err(OAuthError::InvalidGrant("the code is invalid or spent"));
            }
        };
        // Spent by now whatever follows: a wrong client, URI or verifier burns it.
        let challenge = crate::values::secret::pkce_s256(verifier);
        let pkce_ok = crate::values::secret::constant_time_eq(challenge.as_bytes(), record.code_challenge.as_bytes());
        let matches = record.client_id == client.id && record.redirect_uri == redirect_uri && pkce_ok;
        let root = CredentialRef::oauth_grant(&record.family_id);
        // RFC 6749 §4.1.2: a code used twice revokes what it gave. But a code whose first exchange
        // gave nothing (it failed before its grant was issued, and answered 503) is finished by its
        // client's retry: the register knows no grant of it, and the grant's id is the code's, so
        // at most one exchange ever issues one.
        if again && (!matches || stores.credentials.knows(&record.user_id, &root).await?) {
            revoke(stores, &record.user_id, Revocation::Tree(&root), "code_replayed").await?;
            tracing::warn!(event = "oauth_code_replayed", client_id = %record.client_id, user_id = %record.user_id);
            return Err(OAuthError::InvalidGrant("the code is invalid or spent"));
        }
        if !matches {
            // Burnt: the grant's id marked ended in the register, so no later exchange of the code
            // (the right verifier included) is taken for the retry of one that issued nothing.
            let until = now + crate::tables::credentials::ENDED_MARK_LIFETIME;
            stores.credentials.forget_and_mark(&record.user_id, &[], &[], Some((&root, until))).await?;
            tracing::warn!(event = "oauth_code_mismatch", client_id = %client.id, pkce = pkce_ok);
            return Err(OAuthError::InvalidGrant("the code does not match this client, redirect URI or verifier"));
        }
        let user = self.usable_user(&record.user_id).await?;
        let family = RefreshFamily {
            family_id: record.family_id.clone(),
            client_id: client.id.clone(),
            user_id: user.id.clone(),
            scopes: record.scopes.clone(),
            generation: 0,
            current_hash: String::new(),
            spent_hashes: Vec::new(),
            session_id: record.session_id.clone(),
            credentials_version: record.credentials_version,
            auth_time: record.auth_time,
            amr: record.amr.clone(),
            created_at: now,
            expires_at: now + self.config().oauth.refresh_lifetime,
        };
        // Every grant is a credential of the register, issued only under the version the
        // approving session held: a reset between approval and exchange leaves nothing.
        // A refresh token only when the person consented to `offline_access` (OIDC Core §11;
        // the consent page says "stay connected") and the client may refresh: without it the
        // grant ends with its access token's ten minutes.
        let offline = record.scopes.iter().any(|s| s == OFFLINE_ACCESS);
        let refresh =
            (offline && client.allows(GrantType::RefreshToken)).then(|| RefreshToken::generate(&family.family_id, 0));
        let family =
            RefreshFamily { current_hash: refresh.as_ref().map(RefreshToken::hash).unwrap_or_default(), ..family };
        let entry = CredentialEntry {
            user_id: user.id.clone(),
            credential: CredentialRef::oauth_grant(&family.family_id),
            parent: None,
            cross_app_id: None,
            created_at: now,
            expires_at: Some(family.expires_at),
        };
        let grant = Grant {
            client,
            user: Some(&user),
            scopes: &record.scopes,
            family_id: Some(&family.family_id),
            auth_time: Some(record.auth_time),
            session_id: record.session_id.as_deref(),
        };
        // The tokens first (their record and signatures may fail: then nothing was issued, and
        // the retry finishes), the grant last: the tokens live only once it does.
        let mut answer = self.tokens_for(&grant, record.nonce.as_deref(), "authorization_code").await?;
        match stores.credentials.issue(record.credentials_version, &entry, NewCredential::OAuthGrant(&family)).await {
            Ok(true) => {}
            Ok(false) => return Err(OAuthError::InvalidGrant("the account's credentials changed since approval")),
            // Another exchange of this code issued its grant first.
            Err(crate::values::error::StoreError::Conflict(_)) => {
                return Err(OAuthError::InvalidGrant("the code is invalid or spent"));
            }
            Err(e) => return Err(e.into()),
        }
        answer.refresh_token = refresh.map(|r| r.expose());
        tracing::info!(event = "oauth_code_exchanged", client_id = %client.id, user_id = %user.id);
        Ok(answer)
    }

    async fn refresh_grant(
        &self,
        client: &OAuthClient,
        form: &[(String, String)],
    ) -> Result<TokenResponse, OAuthError> {
        const INVALID: OAuthError = OAuthError::InvalidGrant("the refresh token is invalid, expired or revoked");
        let raw = single(form, "refresh_token")?
            .ok_or_else(|| OAuthError::InvalidRequest("refresh_token is required".into()))?;
        let presented = RefreshToken::parse(raw).ok_or(INVALID)?;
        let stores = self.stores();
        let family = stores.oauth_refresh_tokens.find(&presented.family_id).await?.ok_or(INVALID)?;
        // Another client's token changes nothing: not rotated, not revoked.
        if family.client_id != client.id {
            tracing::warn!(event = "oauth_refresh_foreign_client", client_id = %client.id);
            return Err(INVALID);
        }
        let scopes = match single(form, "scope")? {
            None => family.scopes.clone(),
            Some(s) => {
                let asked = parse_scope(s).ok_or_else(|| OAuthError::InvalidScope("scope is malformed".into()))?;
                if let Some(extra) = asked.iter().find(|a| !family.scopes.contains(a)) {
                    return Err(OAuthError::InvalidScope(format!("{extra:?} was not granted")));
                }
                asked
            }
        };
        // The grant lives only while its user may sign in at the version it was issued under
        // (a reset whose revocation has not landed yet ends it here already).
        let user = self.usable_user(&family.user_id).await?;
        if user.credentials_version != family.credentials_version {
            let root = CredentialRef::oauth_grant(&family.family_id);
            revoke(stores, &family.user_id, Revocation::Tree(&root), "credentials_changed").await?;
            return Err(INVALID);
        }
        // Everything that can fail runs before the rotation is written: a failure answers 503 with
        // the presented token still current, so the client's retry refreshes instead of being taken
        // for a reuse that ends the grant.
        let next = RefreshToken::generate(&family.family_id, presented.generation.saturating_add(1));
        let grant = Grant {
            client,
            user: Some(&user),
            scopes: &scopes,
            family_id: Some(&family.family_id),
            auth_time: Some(family.auth_time),
            session_id: family.session_id.as_deref(),
        };
        let mut answer = self.tokens_for(&grant, None, "refresh_token").await?;
        let now = stores.clock.now();
        match stores.oauth_refresh_tokens.rotate(&presented, &next.hash(), now).await? {
            Rotation::Rotated(_) => {}
            Rotation::Reused => {
                let root = CredentialRef::oauth_grant(&family.family_id);
                revoke(stores, &family.user_id, Revocation::Tree(&root), "refresh_token_reused").await?;
                tracing::warn!(event = "oauth_refresh_reused", client_id = %client.id, user_id = %family.user_id);
                return Err(INVALID);
            }
            Rotation::Unknown => return Err(INVALID),
        }
        answer.refresh_token = Some(next.expose());
        Ok(answer)
    }

    async fn client_credentials_grant(
        &self,
        client: &OAuthClient,
        form: &[(String, String)],
    ) -> Result<TokenResponse, OAuthError> {
        if client.is_public() {
            return Err(OAuthError::UnauthorizedClient);
        }
        let allowed: Vec<String> =
            client.scopes.iter().filter(|s| !OIDC_SCOPES.contains(&s.as_str())).cloned().collect();
        let scopes = match single(form, "scope")? {
            None => allowed,
            Some(s) => {
                let asked = parse_scope(s).ok_or_else(|| OAuthError::InvalidScope("scope is malformed".into()))?;
                if let Some(extra) = asked.iter().find(|a| !allowed.contains(a)) {
                    return Err(OAuthError::InvalidScope(format!("this client may not ask for {extra:?}")));
                }
                asked
            }
        };
        let grant = Grant { client, user: None, scopes: &scopes, family_id: None, auth_time: None, session_id: None };
        self.tokens_for(&grant, None, "client_credentials").await
    }

    /// The user a grant is for, while the account may still be used.
    async fn usable_user(&self, id: &UserId) -> Result<User, OAuthError> {
        let user = self.stores().users.find(id).await?;
        user.filter(|u| u.disabled_at.is_none() && u.deleted_at.is_none())
            .ok_or(OAuthError::InvalidGrant("the account can no longer be used"))
    }

    /// The access token (and its record) and, for an OpenID request, the ID token, once the
    /// `before_token` hook allowed them (its claims are added to both; it cannot set theirs).
    async fn tokens_for(
        &self,
        grant: &Grant<'_>,
        nonce: Option<&str>,
        grant_type: &str,
    ) -> Result<TokenResponse, OAuthError> {
        let request =
            crate::services::hooks::token_request(grant.user, grant.client.id.as_str(), grant.scopes, grant_type);
        let extra = match self.auth.access.hook(crate::services::hooks::HookPoint::BeforeToken, request).await {
            crate::services::hooks::Decision::Allow { claims } => claims,
            crate::services::hooks::Decision::Deny { message } => {
                return Err(OAuthError::Denied(message.unwrap_or_else(|| "no token can be issued right now".into())));
            }
        };
        let cfg = &self.config().oauth;
        let now = self.stores().clock.now();
        let lifetime = cfg.access_token_lifetime;
        let jti = hex::encode(crate::values::secret::random_bytes::<16>());
        let sub = match grant.user {
            Some(u) => u.id.as_str().to_owned(),
            None => grant.client.id.as_str().to_owned(),
        };
        let mut claims = json!({
            "iss": cfg.issuer,
            "sub": sub,
            "aud": cfg.audience,
            "client_id": grant.client.id.as_str(),
            "scope": scope_string(grant.scopes),
            "jti": jti,
            "iat": now.timestamp(),
            "exp": (now + lifetime).timestamp(),
        });
        if let Some(t) = grant.auth_time {
            claims["auth_time"] = json!(t.timestamp());
        }
        add_hook_claims(&mut claims, &extra);
        let record = AccessTokenRecord {
            jti,
            client_id: grant.client.id.clone(),
            user_id: grant.user.map(|u| u.id.clone()),
            scopes: grant.scopes.to_vec(),
            family_id: grant.family_id.map(str::to_owned),
            created_at: now,
            expires_at: now + lifetime,
        };
        // The record first: a token whose record is missing would be refused by introspection.
        self.stores().oauth_access_tokens.put(&record).await?;
        let access_token = self.keys()?.sign(ACCESS_TOKEN_TYP, &claims).await?;
        let id_token = match grant.user {
            Some(user) if grant.scopes.iter().any(|s| s == OPENID) => {
                let mut id = json!({
                    "iss": cfg.issuer,
                    "sub": user.id.as_str(),
                    "aud": grant.client.id.as_str(),
                    "azp": grant.client.id.as_str(),
                    "iat": now.timestamp(),
                    "exp": (now + cfg.id_token_lifetime).timestamp(),
                });
                if let Some(t) = grant.auth_time {
                    id["auth_time"] = json!(t.timestamp());
                }
                if let Some(n) = nonce {
                    id["nonce"] = json!(n);
                }
                if let Some(sid) = grant.session_id {
                    id["sid"] = json!(sid);
                }
                // at_hash (OIDC Core §3.1.3.6): the left half of the access token's SHA-256.
                let digest = Sha256::digest(access_token.as_bytes());
                id["at_hash"] = json!(URL_SAFE_NO_PAD.encode(&digest[..16]));
                add_user_claims(&mut id, user, grant.scopes);
                add_hook_claims(&mut id, &extra);
                Some(self.keys()?.sign("JWT", &id).await?)
            }
            _ => None,
        };
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: lifetime.num_seconds(),
            scope: scope_string(grant.scopes),
            refresh_token: None,
            id_token,
        })
    }
}

/// The `before_token` hook's claims, added where the token has none of that name (the hook's
/// answer is checked against the reserved names already; this keeps it so whatever is added
/// later).
fn add_hook_claims(claims: &mut Value, extra: &serde_json::Map<String, Value>) {
    if let Some(m) = claims.as_object_mut() {
        for (k, v) in extra {
            m.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
}

/// The claims the `profile` and `email` scopes release (the ID token's and userinfo's).
pub fn add_user_claims(claims: &mut Value, user: &User, scopes: &[String]) {
    if scopes.iter().any(|s| s == PROFILE) {
        claims["name"] = json!(user.name);
        claims["updated_at"] = json!(user.updated_at.timestamp());
    }
    if scopes.iter().any(|s| s == EMAIL) {
        claims["email"] = json!(user.email.as_str());
        claims["email_verified"] = json!(user.email_verified_at.is_some());
    }
}
