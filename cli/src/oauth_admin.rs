//! The OAuth client commands (Passport's `passport:client`): make a client (its secret printed
//! once), list them, rotate a secret with an overlap, revoke one; and the signing key's.

use anyhow::{Context, Result, bail};
use gatehouse::services::oauth::OAuthProvider;
use gatehouse::services::oauth::clients::{ClientRegistration, client_metadata};
use gatehouse::tables::oauth_clients::{ClientId, GrantType};
use serde_json::json;

/// What `oauth:client` was asked to make.
pub struct NewClient {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grants: Vec<String>,
    pub scopes: Vec<String>,
    pub public: bool,
    pub first_party: bool,
}

/// `oauth:client`: the client and, for a confidential one, its secret, shown this once.
pub async fn create(provider: &OAuthProvider, c: NewClient, as_json: bool) -> Result<()> {
    let grant_types = c
        .grants
        .iter()
        .map(|g| GrantType::parse(g).with_context(|| format!("unknown grant {g:?} (authorization_code, refresh_token, client_credentials)")))
        .collect::<Result<Vec<_>>>()?;
    let scopes = gatehouse::services::oauth::parse_scope(&c.scopes.join(" ")).context("a scope is malformed")?;
    let reg = ClientRegistration {
        name: c.name,
        redirect_uris: c.redirect_uris,
        post_logout_redirect_uris: c.post_logout_redirect_uris,
        grant_types,
        scopes,
        confidential: !c.public,
        first_party: c.first_party,
    };
    let (client, secret) = match provider.create_client(reg).await {
        Ok(made) => made,
        Err(gatehouse::services::oauth::OAuthError::InvalidRequest(why)) => bail!("{why}"),
        Err(e) => return Err(e.into()),
    };
    if as_json {
        return crate::print_json(&client_metadata(&client, secret.as_ref()));
    }
    println!("Client created: {}", client.name);
    println!("client_id:     {}", client.id);
    match &secret {
        Some(s) => println!("client_secret: {}\n(shown this once: only its hash is kept)", s.expose()),
        None => println!("public client: no secret (PKCE alone)"),
    }
    Ok(())
}

/// `oauth:clients`.
pub async fn list(provider: &OAuthProvider, as_json: bool) -> Result<()> {
    let clients = provider.stores().oauth_clients.list().await?;
    if as_json {
        let all: Vec<_> = clients.iter().map(|c| client_metadata(c, None)).collect();
        return crate::print_json(&json!({ "clients": all }));
    }
    if clients.is_empty() {
        println!("No OAuth clients.");
    }
    for c in &clients {
        let kind = if c.is_public() { "public" } else { "confidential" };
        let state = if c.revoked { "revoked" } else { "active" };
        let grants: Vec<&str> = c.grant_types.iter().map(|g| g.as_str()).collect();
        println!("{}  {:<12} {:<7} {}  [{}]  {}", c.id, kind, state, c.name, grants.join(","), c.redirect_uris.join(" "));
    }
    Ok(())
}

/// `oauth:client-secret`: a new secret; the old one still works for `overlap_hours`.
pub async fn rotate(provider: &OAuthProvider, id: &str, overlap_hours: i64, as_json: bool) -> Result<()> {
    let id = ClientId::parse(id).context("not a client id")?;
    let Some(secret) = provider.rotate_secret(&id, chrono::Duration::hours(overlap_hours)).await? else {
        bail!("no active confidential client {id}");
    };
    if as_json {
        return crate::print_json(&json!({ "client_id": id.as_str(), "client_secret": secret.expose(), "previous_secret_valid_hours": overlap_hours }));
    }
    println!("client_secret: {}\n(shown this once; the previous secret works for {overlap_hours} more hour(s))", secret.expose());
    Ok(())
}

/// `oauth:client-revoke`: the client can authenticate no more (its refresh tokens with it).
pub async fn revoke(provider: &OAuthProvider, id: &str) -> Result<()> {
    let id = ClientId::parse(id).context("not a client id")?;
    if !provider.stores().oauth_clients.revoke(&id).await? {
        bail!("no client {id}");
    }
    println!("Client {id} is revoked: it can no longer authenticate, refresh or authorize.");
    Ok(())
}

/// `oauth:key`: a new P-256 key as PKCS#8 PEM, for `GATEHOUSE_OAUTH_SIGNING_KEY` (a deployment that
/// keeps its key in configuration rather than KMS), and its `kid`.
pub fn new_local_key() -> Result<()> {
    let key = gatehouse::values::jwt::LocalKey::generate();
    let pem = key.to_pem().context("encoding the key")?;
    eprintln!("kid: {}", key.jwk().kid);
    print!("{pem}");
    Ok(())
}
