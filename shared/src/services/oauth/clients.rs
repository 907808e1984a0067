//! Clients: their registration (an operator's CLI verb, or RFC 7591's endpoint when it is open),
//! the rules their metadata must meet, and their authentication at the token, introspection and
//! revocation endpoints (`client_secret_basic`, `client_secret_post`, or none for a public client).

use super::{OAuthError, OAuthProvider, OIDC_SCOPES};
use crate::tables::oauth_clients::{ClientId, ClientSecret, GrantType, OAuthClient, PreviousSecret};
use crate::values::clock::Timestamp;
use crate::values::secret::constant_time_eq;
use serde_json::{Value, json};

/// At most this many redirect URIs, each at most this long.
pub const MAX_REDIRECT_URIS: usize = 10;
pub const MAX_URI_LEN: usize = 2000;

/// What makes a client: the operator's or the registrant's request.
#[derive(Debug, Clone)]
pub struct ClientRegistration {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<GrantType>,
    pub scopes: Vec<String>,
    /// Confidential (a secret is made) or public (PKCE alone).
    pub confidential: bool,
    pub first_party: bool,
}

/// Characters that are not what they look like on a consent page: controls, and Unicode's format
/// characters (direction overrides and isolates, zero-width joiners and spaces, the BOM).
fn invisible(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    c.is_control() || c.general_category() == GeneralCategory::Format
}

/// Whether `uri` may be a redirect URI: absolute, no fragment, and https, or http on a loopback
/// host (RFC 8252 §7.3), or a private-use scheme with a dot in it (RFC 8252 §7.1, a native app's
/// `com.example.app:/callback`). Never `javascript:`, `data:` or the like.
pub fn valid_redirect_uri(uri: &str) -> bool {
    // A backslash is a slash to browsers but not to a reader of the consent page.
    if uri.is_empty()
        || uri.len() > MAX_URI_LEN
        || uri.contains(['#', '\\'])
        || uri.chars().any(|c| c.is_whitespace() || invisible(c))
    {
        return false;
    }
    let Some((scheme, rest)) = uri.split_once(':') else { return false };
    let scheme = scheme.to_ascii_lowercase();
    match scheme.as_str() {
        "https" => rest.starts_with("//") && host_of(rest).is_some_and(|h| !h.is_empty()),
        "http" => {
            rest.starts_with("//")
                && host_of(rest).is_some_and(|h| matches!(h.as_str(), "127.0.0.1" | "[::1]" | "localhost"))
        }
        s => {
            s.contains('.')
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-'))
                && s.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
        }
    }
}

/// The host of `//host[:port]/path` (lower case), or `None` when it has user information.
pub fn host_of(rest: &str) -> Option<String> {
    let authority = rest.strip_prefix("//")?.split(['/', '?']).next()?;
    if authority.contains('@') {
        return None;
    }
    let host = if authority.starts_with('[') {
        authority.split_inclusive(']').next()?
    } else {
        authority.split(':').next()?
    };
    Some(host.to_ascii_lowercase())
}

/// Whether `scope` may be held by an OAuth client: the OpenID scopes, and any ability string
/// but `verified` (a route's requirement judged on the owner's address, never held).
pub fn grantable_scope(scope: &str) -> bool {
    // `*` is every ability of a personal access token: a client holds named ones only.
    scope != crate::routes::VERIFIED
        && !scope.contains('*')
        && crate::services::oauth::parse_scope(scope).is_some_and(|s| s.len() == 1)
}

impl ClientRegistration {
    /// Every rule the metadata must meet, the first broken one named.
    pub fn check(&self) -> Result<(), String> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(invisible) {
            return Err(
                "client_name must be 1 to 100 visible characters (no control, format or direction marks)".into()
            );
        }
        if self.grant_types.is_empty() {
            return Err("grant_types must name at least one grant".into());
        }
        let code = self.grant_types.contains(&GrantType::AuthorizationCode);
        if code && self.redirect_uris.is_empty() {
            return Err("redirect_uris are required for the authorization_code grant".into());
        }
        if self.grant_types.contains(&GrantType::RefreshToken) && !code {
            return Err("refresh_token needs the authorization_code grant".into());
        }
        if self.grant_types.contains(&GrantType::ClientCredentials) && !self.confidential {
            return Err("client_credentials needs a confidential client".into());
        }
        for (what, uris) in
            [("redirect_uris", &self.redirect_uris), ("post_logout_redirect_uris", &self.post_logout_redirect_uris)]
        {
            if uris.len() > MAX_REDIRECT_URIS {
                return Err(format!("at most {MAX_REDIRECT_URIS} {what}"));
            }
            if let Some(bad) = uris.iter().find(|u| !valid_redirect_uri(u)) {
                return Err(format!(
                    "{what}: {bad:?} is not allowed (https, http on 127.0.0.1/[::1]/localhost, or an app's own scheme; no fragment)"
                ));
            }
        }
        if let Some(bad) = self.scopes.iter().find(|s| !grantable_scope(s)) {
            return Err(format!("scope {bad:?} cannot be granted"));
        }
        Ok(())
    }

    /// The client, and its secret when confidential (shown once; only its hash is kept).
    pub fn build(self, now: Timestamp, dynamic: bool) -> (OAuthClient, Option<ClientSecret>) {
        let secret = self.confidential.then(ClientSecret::generate);
        let mut scopes = self.scopes;
        scopes.sort();
        scopes.dedup();
        let client = OAuthClient {
            id: ClientId::generate(),
            name: self.name.trim().to_owned(),
            secret_hash: secret.as_ref().map(ClientSecret::hash),
            previous_secret: None,
            redirect_uris: self.redirect_uris,
            post_logout_redirect_uris: self.post_logout_redirect_uris,
            grant_types: self.grant_types,
            scopes,
            first_party: self.first_party,
            revoked: false,
            dynamic,
            created_at: now,
        };
        (client, secret)
    }
}

/// How the client said who it is at an endpoint.
#[derive(Debug, Default)]
pub struct Presented {
    pub client_id: Option<String>,
    secret: Option<String>,
    /// Whether both the Authorization header and the body tried (refused: RFC 6749 §2.3).
    pub both: bool,
}

impl Presented {
    /// From `Authorization: Basic` (its parts form-urlencoded, RFC 6749 §2.3.1) and the body's
    /// `client_id` / `client_secret`.
    pub fn read(authorization: Option<&str>, body: &[(String, String)]) -> Result<Self, OAuthError> {
        let post_id = super::single(body, "client_id")?.map(str::to_owned);
        let post_secret = super::single(body, "client_secret")?.map(str::to_owned);
        let Some(header) = authorization else {
            return Ok(Self { client_id: post_id, secret: post_secret, both: false });
        };
        let Some(encoded) = header.strip_prefix("Basic ").or_else(|| header.strip_prefix("basic ")) else {
            return Err(OAuthError::InvalidClient);
        };
        use base64::Engine;
        let decoded =
            base64::engine::general_purpose::STANDARD.decode(encoded.trim()).map_err(|_| OAuthError::InvalidClient)?;
        let text = String::from_utf8(decoded).map_err(|_| OAuthError::InvalidClient)?;
        let (id, secret) = text.split_once(':').ok_or(OAuthError::InvalidClient)?;
        let unescape = |s: &str| form_decode(s).ok_or(OAuthError::InvalidClient);
        Ok(Self {
            both: post_secret.is_some() || post_id.as_deref().is_some_and(|p| Some(p) != unescape(id).ok().as_deref()),
            client_id: Some(unescape(id)?),
            secret: Some(unescape(secret)?),
        })
    }
}

/// `application/x-www-form-urlencoded` decoding of one value.
fn form_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

impl OAuthProvider {
    /// The client the request authenticates as: a live client, its secret right when it is
    /// confidential (compared in constant time with the current secret's hash and, during a
    /// rotation, the previous one's), and no secret when it is public. One answer,
    /// `invalid_client`, for every failure.
    pub async fn authenticate(&self, presented: &Presented) -> Result<OAuthClient, OAuthError> {
        if presented.both {
            return Err(OAuthError::InvalidRequest("authenticate in one way: the header or the body".into()));
        }
        let id = presented.client_id.as_deref().and_then(ClientId::parse).ok_or(OAuthError::InvalidClient)?;
        let client =
            self.stores().oauth_clients.find(&id).await?.filter(|c| !c.revoked).ok_or(OAuthError::InvalidClient)?;
        match (&client.secret_hash, &presented.secret) {
            (None, None) => Ok(client),
            (Some(current), Some(secret)) => {
                let hash = crate::values::secret::sha256_hex(secret);
                let now = self.stores().clock.now();
                let previous = client.previous_secret.as_ref().filter(|p| p.until > now);
                let current_ok = constant_time_eq(hash.as_bytes(), current.as_bytes());
                let previous_ok = previous.is_some_and(|p| constant_time_eq(hash.as_bytes(), p.hash.as_bytes()));
                if current_ok || previous_ok { Ok(client) } else { Err(OAuthError::InvalidClient) }
            }
            _ => Err(OAuthError::InvalidClient),
        }
    }

    /// Makes a client (the operator's verb): checked, stored, its secret returned once.
    pub async fn create_client(
        &self,
        reg: ClientRegistration,
    ) -> Result<(OAuthClient, Option<ClientSecret>), OAuthError> {
        reg.check().map_err(OAuthError::InvalidRequest)?;
        let (client, secret) = reg.build(self.stores().clock.now(), false);
        self.stores().oauth_clients.create(&client).await?;
        tracing::info!(event = "oauth_client_created", client_id = %client.id, dynamic = false);
        Ok((client, secret))
    }

    /// A new secret for a confidential client; the old one keeps working for `overlap`.
    pub async fn rotate_secret(
        &self,
        id: &ClientId,
        overlap: chrono::Duration,
    ) -> Result<Option<ClientSecret>, OAuthError> {
        let Some(client) = self.stores().oauth_clients.find(id).await? else { return Ok(None) };
        let Some(old) = client.secret_hash.filter(|_| !client.revoked) else { return Ok(None) };
        let secret = ClientSecret::generate();
        let previous = PreviousSecret { hash: old, until: self.stores().clock.now() + overlap };
        let rotated = self.stores().oauth_clients.rotate_secret(id, &secret.hash(), Some(&previous)).await?;
        Ok(rotated.then_some(secret))
    }

    /// RFC 7591: registers a client from `metadata` when registration is open to the caller —
    /// with the initial access token, any client; without it, only a public one, and only when
    /// open registration is on. Registered clients are never first-party (consent is asked).
    pub async fn register(&self, initial_token: Option<&str>, metadata: &Value) -> Result<Value, RegistrationError> {
        let reg = &self.config().oauth.registration;
        let with_token = match (&reg.token, initial_token) {
            (Some(expected), Some(given)) => {
                if !constant_time_eq(expected.as_bytes(), given.as_bytes()) {
                    return Err(RegistrationError::Unauthorized);
                }
                true
            }
            (_, Some(_)) => return Err(RegistrationError::Unauthorized),
            (_, None) => false,
        };
        if !reg.enabled() || (!with_token && !reg.open_for_public_clients) {
            return Err(RegistrationError::Closed);
        }
        let registration = registration_from(metadata).map_err(RegistrationError::Invalid)?;
        if !with_token && registration.confidential {
            return Err(RegistrationError::Invalid(
                "open registration makes public clients only (token_endpoint_auth_method \"none\")".into(),
            ));
        }
        registration.check().map_err(RegistrationError::Invalid)?;
        if let Some(s) =
            registration.scopes.iter().find(|s| !OIDC_SCOPES.contains(&s.as_str()) && !reg.scopes.contains(s))
        {
            return Err(RegistrationError::Invalid(format!(
                "scope {s:?} cannot be registered (GATEHOUSE_OAUTH_REGISTRATION_SCOPES lists what may)"
            )));
        }
        let (client, secret) = registration.build(self.stores().clock.now(), true);
        self.stores().oauth_clients.create(&client).await.map_err(OAuthError::from)?;
        tracing::info!(event = "oauth_client_created", client_id = %client.id, dynamic = true);
        Ok(client_metadata(&client, secret.as_ref()))
    }
}

/// Why a registration was refused.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    /// Registration is off, or open only with the initial access token.
    #[error("client registration is not open")]
    Closed,
    #[error("the initial access token is wrong")]
    Unauthorized,
    /// RFC 7591's `invalid_client_metadata` / `invalid_redirect_uri`.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    OAuth(#[from] OAuthError),
}

/// RFC 7591 metadata as a registration.
fn registration_from(m: &Value) -> Result<ClientRegistration, String> {
    let obj = m.as_object().ok_or("the body must be a JSON object")?;
    let strings = |key: &str| -> Result<Vec<String>, String> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(a)) if a.len() <= 20 => a
                .iter()
                .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| format!("{key} must be strings")))
                .collect(),
            _ => Err(format!("{key} must be an array of strings")),
        }
    };
    let auth_method = obj.get("token_endpoint_auth_method").and_then(Value::as_str).unwrap_or("client_secret_basic");
    let confidential = match auth_method {
        "none" => false,
        "client_secret_basic" | "client_secret_post" => true,
        other => return Err(format!("token_endpoint_auth_method {other:?} is not supported")),
    };
    let grants = strings("grant_types")?;
    let grant_types = if grants.is_empty() {
        vec![GrantType::AuthorizationCode]
    } else {
        grants
            .iter()
            .map(|g| GrantType::parse(g).ok_or_else(|| format!("grant type {g:?} is not supported")))
            .collect::<Result<_, _>>()?
    };
    let responses = strings("response_types")?;
    if responses.iter().any(|r| r != "code") {
        return Err("response_types may only be [\"code\"]".into());
    }
    let scopes = match obj.get("scope").and_then(Value::as_str) {
        Some(s) => super::parse_scope(s).ok_or("scope is malformed")?,
        None => OIDC_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
    };
    Ok(ClientRegistration {
        name: obj.get("client_name").and_then(Value::as_str).unwrap_or("Unnamed client").to_owned(),
        redirect_uris: strings("redirect_uris")?,
        post_logout_redirect_uris: strings("post_logout_redirect_uris")?,
        grant_types,
        scopes,
        confidential,
        first_party: false,
    })
}

/// A client as RFC 7591's answer (and `oauth:client --json`) describes it.
pub fn client_metadata(c: &OAuthClient, secret: Option<&ClientSecret>) -> Value {
    let mut v = json!({
        "client_id": c.id.as_str(),
        "client_name": c.name,
        "client_id_issued_at": c.created_at.timestamp(),
        "redirect_uris": c.redirect_uris,
        "post_logout_redirect_uris": c.post_logout_redirect_uris,
        "grant_types": c.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "response_types": ["code"],
        "scope": super::scope_string(&c.scopes),
        "token_endpoint_auth_method": if c.is_public() { "none" } else { "client_secret_basic" },
        "first_party": c.first_party,
        "revoked": c.revoked,
    });
    if let Some(s) = secret {
        v["client_secret"] = json!(s.expose());
        v["client_secret_expires_at"] = json!(0);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_are_https_loopback_or_an_apps_own_scheme() {
        for ok in [
            "https://app.example/cb",
            "https://app.example/cb?x=1",
            "http://127.0.0.1:3000/cb",
            "http://localhost/cb",
            "http://[::1]:8/cb",
            "com.example.app:/cb",
        ] {
            assert!(valid_redirect_uri(ok), "{ok}");
        }
        for bad in [
            "",
            "/cb",
            "http://app.example/cb",
            "https://app.example/cb#frag",
            "javascript:alert(1)",
            "data:text/html,x",
            "https://user@evil.example/cb",
            "http://localhost.evil.example/cb",
            "http://127.0.0.1.evil.example/cb",
            "https:///cb",
            "https://a.example/c b",
        ] {
            assert!(!valid_redirect_uri(bad), "{bad}");
        }
    }

    #[test]
    fn basic_authentication_is_form_decoded_and_one_way_only() {
        use base64::Engine;
        let b = |s: &str| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(s));
        let p = Presented::read(Some(&b("my%2Eclient:s%3Ac+x")), &[]).expect("reads");
        assert_eq!(p.client_id.as_deref(), Some("my.client"));
        assert_eq!(p.secret.as_deref(), Some("s:c x"));
        let body = vec![("client_secret".to_owned(), "x".to_owned())];
        assert!(Presented::read(Some(&b("a:b")), &body).expect("reads").both);
        assert!(Presented::read(Some("Bearer x"), &[]).is_err());
    }

    #[test]
    fn metadata_rules() {
        let reg = |grants: Vec<GrantType>, confidential| ClientRegistration {
            name: "App".into(),
            redirect_uris: vec!["https://a.example/cb".into()],
            post_logout_redirect_uris: vec![],
            grant_types: grants,
            scopes: vec!["openid".into()],
            confidential,
            first_party: false,
        };
        assert!(reg(vec![GrantType::AuthorizationCode], false).check().is_ok());
        assert!(reg(vec![GrantType::ClientCredentials], false).check().is_err());
        assert!(reg(vec![GrantType::RefreshToken], true).check().is_err());
        let mut r = reg(vec![GrantType::AuthorizationCode], true);
        r.scopes.push("verified".into());
        assert!(r.check().is_err());
    }
}
