//! OpenID Connect as a relying party: the provider's discovery document and keys (fetched, kept
//! an hour, the keys read again at most once a minute when a token names one not held), the
//! code exchanged with PKCE, and the ID token checked — signature by a key of the provider's set
//! under an asymmetric algorithm (never `none` or an HMAC), issuer, audience (and `azp`), expiry,
//! and the flow's `nonce`.

use super::fetch::Field;
use super::metadata::{Entry, Metadata};
use super::{Claims, Federation, FederationError};
use crate::providers::{ClientSecret, Provider, ProviderKind};
use crate::values::clock::{Span, epoch_seconds};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use std::sync::Arc;

/// How long discovery and keys are kept.
const METADATA_LIFE: Span = Span::hours(1);
/// Keys are read again for an unknown `kid` at most this often (a flood of made-up `kid`s costs
/// the provider one request a minute).
const KEYS_REFRESH: Span = Span::minutes(1);
/// Clock skew allowed between the provider and this function.
const SKEW: i64 = 30;

/// Asymmetric algorithms only: `none` and HMAC (keyed with something the client knows) never.
const ALGORITHMS: [Algorithm; 8] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

fn text(v: &Value, field: &str) -> Option<String> {
    v.get(field).and_then(Value::as_str).map(str::to_owned)
}

/// An endpoint the document names: https (http only on this machine).
fn endpoint(v: &Value, field: &str) -> Result<String, FederationError> {
    let url = text(v, field).ok_or(FederationError::ProviderFailed)?;
    if !crate::providers::allowed_url(&url) {
        tracing::warn!(event = "federation_metadata_refused", field, "not an https address");
        return Err(FederationError::ProviderFailed);
    }
    Ok(url)
}

/// The usable keys of a JWK set (a key of a type this build does not know is skipped, not fatal).
fn keys_of(set: &Value) -> Vec<Jwk> {
    let keys = set.get("keys").and_then(Value::as_array).cloned().unwrap_or_default();
    keys.into_iter().filter_map(|k| serde_json::from_value::<Jwk>(k).ok()).collect()
}

impl Federation {
    /// The provider's discovery document (and keys), from this process's cache or fetched.
    pub async fn metadata(&self, p: &Provider) -> Result<Arc<Metadata>, FederationError> {
        Ok(self.metadata_and_keys(p, None).await?.0)
    }

    async fn metadata_and_keys(
        &self,
        p: &Provider,
        want_kid: Option<&str>,
    ) -> Result<(Arc<Metadata>, Arc<Vec<Jwk>>), FederationError> {
        let ProviderKind::Oidc { issuer } = &p.kind else { return Err(FederationError::ProviderFailed) };
        // Judged by the injected clock, as every expiry is.
        let now = self.auth.now();
        if let Some((meta, keys, fetched, keys_read)) = self.cache.get(&p.id) {
            let known = want_kid.is_none_or(|kid| keys.iter().any(|k| k.common.key_id.as_deref() == Some(kid)));
            if now < fetched + METADATA_LIFE && (known || now < keys_read + KEYS_REFRESH) {
                return Ok((meta, keys));
            }
        }
        let doc = self
            .fetch
            .get_json(&format!("{issuer}/.well-known/openid-configuration"), None)
            .await
            .map_err(|e| failed(p, "discovery", &e))?;
        // The document must be the configured issuer's own (OpenID Connect Discovery §4.3).
        let said = text(&doc, "issuer").unwrap_or_default();
        if said.trim_end_matches('/') != issuer.trim_end_matches('/') && !templated_match(&said, issuer) {
            tracing::warn!(event = "federation_issuer_mismatch", provider = %p.id);
            return Err(FederationError::ProviderFailed);
        }
        let meta = Arc::new(Metadata {
            issuer: said,
            authorization_endpoint: endpoint(&doc, "authorization_endpoint")?,
            token_endpoint: endpoint(&doc, "token_endpoint")?,
            userinfo_endpoint: endpoint(&doc, "userinfo_endpoint").ok(),
            jwks_uri: endpoint(&doc, "jwks_uri")?,
            iss_parameter: doc.get("authorization_response_iss_parameter_supported") == Some(&json!(true)),
        });
        let set = self.fetch.get_json(&meta.jwks_uri, None).await.map_err(|e| failed(p, "jwks", &e))?;
        let keys = Arc::new(keys_of(&set));
        self.cache.put(&p.id, Entry { meta: meta.clone(), keys: keys.clone(), fetched: now, keys_read: now });
        Ok((meta, keys))
    }
}

/// Microsoft's multi-tenant document names `{tenantid}` in its issuer; a configured
/// `…/common/v2.0` (or `organizations`, `consumers`) accepts it, each token then checked against
/// its own tenant's issuer.
fn templated_match(said: &str, configured: &str) -> bool {
    said.contains("{tenantid}")
        && ["/common/", "/organizations/", "/consumers/"].iter().any(|t| configured.contains(t))
        && said.starts_with("https://login.microsoftonline.com/")
}

fn failed(p: &Provider, step: &str, e: &super::FetchError) -> FederationError {
    tracing::warn!(event = "federation_provider_failed", provider = %p.id, step, error = %e);
    FederationError::ProviderFailed
}

/// What the flow expects of the answer.
pub struct Expected {
    pub verifier: String,
    pub nonce: String,
}

/// Exchanges `code` at the token endpoint (PKCE, the client's authentication), checks the ID
/// token, and reads the claims (from userinfo when the ID token carries no address).
pub(crate) async fn exchange(
    fed: &Federation,
    p: &Provider,
    code: &str,
    iss: Option<&str>,
    expected: &Expected,
) -> Result<Claims, FederationError> {
    let meta = fed.metadata(p).await?;
    // RFC 9207: an answer naming another issuer is another provider's (a mix-up attack).
    match iss {
        Some(iss) if iss != meta.issuer && !(meta.issuer.contains("{tenantid}")) => {
            tracing::warn!(event = "federation_iss_mismatch", provider = %p.id);
            return Err(FederationError::ProviderFailed);
        }
        None if meta.iss_parameter => {
            tracing::warn!(event = "federation_iss_missing", provider = %p.id);
            return Err(FederationError::ProviderFailed);
        }
        _ => {}
    }
    if code.is_empty() || code.len() > 2048 {
        return Err(FederationError::ProviderFailed);
    }
    let mut fields: Vec<Field> = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code.to_owned()),
        ("redirect_uri", p.redirect_uri.clone()),
        ("code_verifier", expected.verifier.clone()),
    ];
    let basic = client_auth(fed, p, &mut fields)?;
    let answer = fed
        .fetch
        .post_form(&meta.token_endpoint, &fields, basic.as_ref().map(|(u, s)| (u.as_str(), s.as_str())))
        .await
        .map_err(|e| failed(p, "token", &e))?;
    let id_token = text(&answer, "id_token").ok_or_else(|| {
        tracing::warn!(event = "federation_no_id_token", provider = %p.id);
        FederationError::ProviderFailed
    })?;
    let claims = verify_id_token(fed, p, &id_token, &expected.nonce).await?;
    // A subject the identities table would refuse (control characters, over 255 bytes) is the
    // provider's bad answer (502), not a store error (500).
    let subject = text(&claims, "sub")
        .filter(|s| crate::tables::identities::valid_subject(s))
        .ok_or(FederationError::ProviderFailed)?;
    let mut info = claims;
    let access_token = text(&answer, "access_token");
    if info.get("email").is_none()
        && let (Some(url), Some(token)) = (&meta.userinfo_endpoint, &access_token)
    {
        let got = fed.fetch.get_json(url, Some(token)).await.map_err(|e| failed(p, "userinfo", &e))?;
        // Userinfo about someone else is no answer about this person (OIDC Core §5.3.2).
        if text(&got, "sub").as_deref() != Some(subject.as_str()) {
            tracing::warn!(event = "federation_userinfo_subject_mismatch", provider = %p.id);
            return Err(FederationError::ProviderFailed);
        }
        info = got;
    }
    Ok(Claims {
        subject,
        email: text(&info, "email"),
        // Apple says "true" as a string.
        email_verified: matches!(info.get("email_verified"), Some(Value::Bool(true)))
            || text(&info, "email_verified").as_deref() == Some("true"),
        name: text(&info, "name"),
        sealed_tokens: super::sealed(fed, p, &answer),
    })
}

/// The client's authentication at the token endpoint: Basic credentials to send, or fields added.
fn client_auth(
    fed: &Federation,
    p: &Provider,
    fields: &mut Vec<Field>,
) -> Result<Option<(String, String)>, FederationError> {
    match &p.secret {
        ClientSecret::Static { secret, basic: true } => Ok(Some((p.client_id.clone(), secret.clone()))),
        ClientSecret::Static { secret, basic: false } => {
            fields.push(("client_id", p.client_id.clone()));
            fields.push(("client_secret", secret.clone()));
            Ok(None)
        }
        ClientSecret::AppleJwt { team_id, key_id, key } => {
            let now = epoch_seconds(fed.auth.now());
            let claims = json!({
                "iss": team_id, "iat": now, "exp": now + 300,
                "aud": "https://appleid.apple.com", "sub": p.client_id,
            });
            let header = json!({ "alg": "ES256", "kid": key_id });
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            );
            let jwt = crate::values::jwt::assemble(&input, &key.sign(input.as_bytes()));
            fields.push(("client_id", p.client_id.clone()));
            fields.push(("client_secret", jwt));
            Ok(None)
        }
        ClientSecret::None => {
            fields.push(("client_id", p.client_id.clone()));
            Ok(None)
        }
    }
}

/// Checks an ID token of `p` for this flow; its claims.
pub(crate) async fn verify_id_token(
    fed: &Federation,
    p: &Provider,
    token: &str,
    nonce: &str,
) -> Result<Value, FederationError> {
    let refuse = |why: &'static str| {
        tracing::warn!(event = "federation_id_token_refused", provider = %p.id, why);
        FederationError::ProviderFailed
    };
    let header = jsonwebtoken::decode_header(token).map_err(|_| refuse("unreadable header"))?;
    if !ALGORITHMS.contains(&header.alg) {
        return Err(refuse("algorithm not allowed"));
    }
    let (meta, keys) = fed.metadata_and_keys(p, header.kid.as_deref()).await?;
    let jwk = match &header.kid {
        Some(kid) => keys.iter().find(|k| k.common.key_id.as_deref() == Some(kid.as_str())),
        None if keys.len() == 1 => keys.first(),
        None => None,
    }
    .ok_or_else(|| refuse("no key of the provider's set"))?;
    // A key published for one algorithm verifies under that one alone.
    if let Some(alg) = jwk.common.key_algorithm
        && format!("{alg:?}") != format!("{:?}", header.alg)
    {
        return Err(refuse("key for another algorithm"));
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|_| refuse("unusable key"))?;
    let issuer = if meta.issuer.contains("{tenantid}") {
        let tid = unverified_claim(token, "tid").ok_or_else(|| refuse("no tenant"))?;
        if !tid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            return Err(refuse("bad tenant"));
        }
        meta.issuer.replace("{tenantid}", &tid)
    } else {
        meta.issuer.clone()
    };
    let mut v = Validation::new(header.alg);
    v.set_issuer(&[issuer]);
    v.set_audience(&[&p.client_id]);
    v.set_required_spec_claims(&["iss", "aud", "sub", "exp"]);
    // Time is judged below, against the injected clock.
    v.validate_exp = false;
    v.validate_nbf = false;
    v.leeway = 0;
    let data = jsonwebtoken::decode::<Value>(token, &key, &v).map_err(|e| {
        tracing::warn!(event = "federation_id_token_refused", provider = %p.id, why = %e);
        FederationError::ProviderFailed
    })?;
    let claims = data.claims;
    let now = epoch_seconds(fed.auth.now());
    let num = |f: &str| claims.get(f).and_then(Value::as_i64);
    if num("exp").is_none_or(|exp| exp + SKEW <= now) {
        return Err(refuse("expired"));
    }
    if num("nbf").is_some_and(|nbf| nbf > now + SKEW) || num("iat").is_some_and(|iat| iat > now + SKEW) {
        return Err(refuse("not yet valid"));
    }
    // More than one audience: the token must have been issued to this client (OIDC Core §3.1.3.7).
    if claims.get("aud").and_then(Value::as_array).is_some_and(|a| a.len() > 1)
        && text(&claims, "azp").as_deref() != Some(p.client_id.as_str())
    {
        return Err(refuse("azp"));
    }
    let given = text(&claims, "nonce").unwrap_or_default();
    if !crate::values::secret::constant_time_eq(given.as_bytes(), nonce.as_bytes()) {
        return Err(refuse("nonce"));
    }
    Ok(claims)
}

/// A claim of a token not yet verified (only to choose what it is then verified against).
fn unverified_claim(token: &str, field: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    text(&v, field)
}
