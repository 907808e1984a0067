//! What an issued token is worth now: the check every reader of an access token shares (the
//! signature, the issuer, the expiry, and the record: a revoked token's record is gone, and so is
//! the family of a grant the user's credentials revocation ended), introspection (RFC 7662),
//! revocation (RFC 7009) and userinfo.

use super::clients::Presented;
use super::tokens::{ACCESS_TOKEN_TYP, add_user_claims};
use super::{OAuthError, OAuthProvider, OPENID, scope_string, single};
use crate::services::revocation::revoke;
use crate::tables::credential_ref::CredentialRef;
use crate::tables::credentials::Revocation;
use crate::tables::oauth_access_tokens::AccessTokenRecord;
use crate::tables::oauth_clients::OAuthClient;
use crate::tables::oauth_refresh_tokens::RefreshToken;
use serde_json::{Value, json};

/// A live access token: its record and claims.
#[derive(Debug, Clone)]
pub struct LiveAccessToken {
    pub record: AccessTokenRecord,
    pub claims: serde_json::Map<String, Value>,
}

/// Whether `s` looks like a JWT (three base64url parts), so a bearer credential can be routed to
/// the OAuth check without trying the other kinds.
pub fn looks_like_jwt(s: &str) -> bool {
    s.starts_with("eyJ") && s.split('.').count() == 3
}

/// The access token, if it is one of ours and live: signed by a published key as an RFC 9068
/// token, `issuer`'s, not expired, its record present (not revoked) and, for a user's grant, the
/// grant's family live (the user's credentials were not revoked since). Shared by introspection,
/// userinfo and the `token-check` authorizer (which builds no password machinery, so this needs
/// only the stores and the keys): the token's record, its grant and its user, three reads (one
/// for a client's own token).
pub async fn live_access_token(
    stores: &crate::Stores,
    issuer: &str,
    keys: &crate::signing::SigningKeys,
    token: &str,
) -> Result<Option<LiveAccessToken>, OAuthError> {
    let Ok(verified) = keys.verify(token).await? else { return Ok(None) };
    if verified.typ.as_deref().map(str::to_ascii_lowercase).as_deref() != Some(ACCESS_TOKEN_TYP) {
        return Ok(None);
    }
    let now = stores.clock.now().timestamp();
    let claims = verified.claims;
    let iss_ok = claims.get("iss").and_then(Value::as_str) == Some(issuer);
    let exp_ok = claims.get("exp").and_then(Value::as_i64).is_some_and(|e| e > now);
    let Some(jti) = claims.get("jti").and_then(Value::as_str).filter(|_| iss_ok && exp_ok) else { return Ok(None) };
    let Some(record) = stores.oauth_access_tokens.find(jti).await? else { return Ok(None) };
    // A user's token lives while its grant does and the user may still sign in at the version
    // the grant was issued under: a reset ends it here even before its revocation lands.
    if let Some(family) = &record.family_id {
        // A grant is always a user's; a record saying otherwise is no live token.
        let Some(user) = &record.user_id else { return Ok(None) };
        // The grant and the user at once (the record names both): two reads, one round trip's time.
        let (family, user) = tokio::join!(stores.oauth_refresh_tokens.find(family), stores.users.find(user));
        let Some(family) = family? else { return Ok(None) };
        let current = user?.is_some_and(|u| {
            u.id == family.user_id
                && u.credentials_version == family.credentials_version
                && u.disabled_at.is_none()
                && u.deleted_at.is_none()
        });
        if !current {
            return Ok(None);
        }
    }
    Ok(Some(LiveAccessToken { record, claims }))
}

impl OAuthProvider {
    /// [`live_access_token`] with this provider's stores, issuer and keys.
    pub async fn live_access_token(&self, token: &str) -> Result<Option<LiveAccessToken>, OAuthError> {
        live_access_token(self.stores(), &self.config().oauth.issuer, self.keys()?, token).await
    }

    /// `POST /oauth/introspect`: a confidential client learns about tokens issued to it; every
    /// other token, and every dead one, is `{"active": false}`.
    pub async fn introspect(
        &self,
        authorization: Option<&str>,
        form: &[(String, String)],
        client_ip: Option<&str>,
    ) -> Result<Value, OAuthError> {
        self.limit("introspect", client_ip).await?;
        let client = self.authenticate(&Presented::read(authorization, form)?).await?;
        if client.is_public() {
            return Err(OAuthError::InvalidClient);
        }
        let token = single(form, "token")?.ok_or_else(|| OAuthError::InvalidRequest("token is required".into()))?;
        let inactive = json!({ "active": false });
        if let Some(live) = self.live_access_token(token).await? {
            if live.record.client_id != client.id {
                return Ok(inactive);
            }
            let mut v = json!({
                "active": true,
                "token_type": "Bearer",
                "client_id": live.record.client_id.as_str(),
                "scope": scope_string(&live.record.scopes),
                "jti": live.record.jti,
                "iat": live.record.created_at.timestamp(),
                "exp": live.record.expires_at.timestamp(),
                "iss": self.config().oauth.issuer,
                "aud": self.config().oauth.audience,
            });
            v["sub"] = live.claims.get("sub").cloned().unwrap_or(Value::Null);
            return Ok(v);
        }
        if let Some(presented) = RefreshToken::parse(token)
            && let Some(family) = self.stores().oauth_refresh_tokens.find(&presented.family_id).await?
            && family.client_id == client.id
            && family.generation == presented.generation
            && crate::values::secret::constant_time_eq(family.current_hash.as_bytes(), presented.hash().as_bytes())
        {
            return Ok(json!({
                "active": true,
                "token_type": "refresh_token",
                "client_id": family.client_id.as_str(),
                "sub": family.user_id.as_str(),
                "scope": scope_string(&family.scopes),
                "iat": family.created_at.timestamp(),
                "exp": family.expires_at.timestamp(),
                "iss": self.config().oauth.issuer,
            }));
        }
        Ok(inactive)
    }

    /// `POST /oauth/revoke`: a refresh token ends its whole grant (the family and every access
    /// token read through it); an access token ends itself. Tokens of other clients, unknown
    /// and malformed ones change nothing, and the answer is the same 200 for all (RFC 7009 §2.2).
    pub async fn revoke_token(
        &self,
        authorization: Option<&str>,
        form: &[(String, String)],
        client_ip: Option<&str>,
    ) -> Result<(), OAuthError> {
        self.limit("revoke", client_ip).await?;
        let client = self.authenticate(&Presented::read(authorization, form)?).await?;
        let token = single(form, "token")?.ok_or_else(|| OAuthError::InvalidRequest("token is required".into()))?;
        self.revoke_for(&client, token).await
    }

    async fn revoke_for(&self, client: &OAuthClient, token: &str) -> Result<(), OAuthError> {
        let stores = self.stores();
        if let Some(presented) = RefreshToken::parse(token) {
            if let Some(family) = stores.oauth_refresh_tokens.find(&presented.family_id).await?
                && family.client_id == client.id
            {
                let root = CredentialRef::oauth_grant(&family.family_id);
                revoke(stores, &family.user_id, Revocation::Tree(&root), "revoked_by_client").await?;
                tracing::info!(event = "oauth_grant_revoked", client_id = %client.id, user_id = %family.user_id);
            }
            return Ok(());
        }
        if let Ok(verified) = self.keys()?.verify(token).await?
            && let Some(jti) = verified.claims.get("jti").and_then(Value::as_str)
            && let Some(record) = stores.oauth_access_tokens.find(jti).await?
            && record.client_id == client.id
        {
            stores.oauth_access_tokens.delete(jti).await?;
            tracing::info!(event = "oauth_access_token_revoked", client_id = %client.id);
        }
        Ok(())
    }

    /// `GET|POST /oauth/userinfo`: the claims the token's scopes release about its user.
    pub async fn userinfo(&self, bearer: Option<&str>, client_ip: Option<&str>) -> Result<Value, OAuthError> {
        self.limit("userinfo", client_ip).await?;
        let token = bearer.ok_or(OAuthError::InvalidToken)?;
        let live = self.live_access_token(token).await?.ok_or(OAuthError::InvalidToken)?;
        if !live.record.scopes.iter().any(|s| s == OPENID) {
            return Err(OAuthError::InsufficientScope);
        }
        let user_id = live.record.user_id.as_ref().ok_or(OAuthError::InsufficientScope)?;
        let user = self.stores().users.find(user_id).await?;
        let user =
            user.filter(|u| u.disabled_at.is_none() && u.deleted_at.is_none()).ok_or(OAuthError::InvalidToken)?;
        let mut claims = json!({ "sub": user.id.as_str() });
        add_user_claims(&mut claims, &user, &live.record.scopes);
        Ok(claims)
    }
}
