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
        .map(|g| {
            GrantType::parse(g)
                .with_context(|| format!("unknown grant {g:?} (authorization_code, refresh_token, client_credentials)"))
        })
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
        println!(
            "{}  {:<12} {:<7} {}  [{}]  {}",
            c.id,
            kind,
            state,
            c.name,
            grants.join(","),
            c.redirect_uris.join(" ")
        );
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
        return crate::print_json(
            &json!({ "client_id": id.as_str(), "client_secret": secret.expose(), "previous_secret_valid_hours": overlap_hours }),
        );
    }
    println!(
        "client_secret: {}\n(shown this once; the previous secret works for {overlap_hours} more hour(s))",
        secret.expose()
    );
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

/// `oauth:key-rotate`: adds the next signing key to the keyring. JWKS publishes it at once; it
/// signs from `activate_in` on (at least [`ROTATION_LEAD`]: every function's keyring and every
/// relying party's JWKS cache sees it first); every earlier key is retired once the longest token
/// it may have signed has expired after that. One command, no deployment.
pub async fn rotate_key(
    stores: &gatehouse::Stores,
    config: &gatehouse::Config,
    kms: Option<&gatehouse_aws::kms::Client>,
    activate_in_minutes: i64,
    as_json: bool,
) -> Result<()> {
    use gatehouse::signing::{ROTATION_LEAD, SEAL_PURPOSE};
    use gatehouse::tables::oauth_signing_keys::{KeyMaterial, SigningKeyRecord};
    let now = stores.clock.now();
    let activates_at = now + chrono::Duration::minutes(activate_in_minutes).max(ROTATION_LEAD);
    let (material, public) = match kms {
        Some(client) => {
            let (key_id, jwk) =
                gatehouse_aws::kms::create_key(client, &config.names.table_prefix).await.map_err(anyhow::Error::msg)?;
            (KeyMaterial::Kms { key_id }, jwk)
        }
        None => {
            let key = gatehouse::values::jwt::LocalKey::generate();
            let pem = key.to_pem().context("encoding the key")?;
            let sealed = config.app_key.seal(SEAL_PURPOSE, pem.as_bytes()).context("sealing the key")?;
            (KeyMaterial::Sealed { sealed_pem: sealed }, key.jwk().clone())
        }
    };
    let retire_at = activates_at + config.oauth.longest_token_life();
    let existing = stores.oauth_signing_keys.list().await?;
    let retire: Vec<(String, gatehouse::Timestamp)> =
        existing.iter().filter(|k| k.expires_at.is_none()).map(|k| (k.kid.clone(), retire_at)).collect();
    let record =
        SigningKeyRecord { kid: public.kid.clone(), material, public, activates_at, created_at: now, expires_at: None };
    stores.oauth_signing_keys.add(&record, &retire).await?;
    let kind = match &record.material {
        KeyMaterial::Kms { key_id } => format!("kms {key_id}"),
        KeyMaterial::Sealed { .. } => "sealed with the app key".to_owned(),
    };
    if as_json {
        return crate::print_json(&json!({
            "kid": record.kid, "key": kind, "activates_at": activates_at.to_rfc3339(),
            "previous_retire_at": retire_at.to_rfc3339(),
        }));
    }
    println!("Added signing key {} ({kind}).", record.kid);
    println!("Published now; signs from {} on.", activates_at.to_rfc3339());
    println!(
        "The keys before it stay published until {} (the longest token they signed has then expired).",
        retire_at.to_rfc3339()
    );
    Ok(())
}

/// `oauth:keys`: the keyring, each key's state now.
pub async fn list_keys(stores: &gatehouse::Stores, config: &gatehouse::Config, as_json: bool) -> Result<()> {
    use gatehouse::signing::keyring;
    use gatehouse::tables::oauth_signing_keys::KeyMaterial;
    let now = stores.clock.now();
    let keys = stores.oauth_signing_keys.list().await?;
    let active = keyring::active(&keys, now).map(|k| k.kid.clone());
    let configured_retired = keyring::configured_retired(&keys, now, config.oauth.longest_token_life());
    let rows: Vec<serde_json::Value> = keys
        .iter()
        .map(|k| {
            let state = if Some(&k.kid) == active.as_ref() {
                "active"
            } else if k.activates_at > now {
                "next"
            } else {
                "retiring"
            };
            let material = match &k.material {
                KeyMaterial::Kms { key_id } => format!("kms {key_id}"),
                KeyMaterial::Sealed { .. } => "sealed".to_owned(),
            };
            json!({ "kid": k.kid, "state": state, "key": material, "activates_at": k.activates_at.to_rfc3339(),
                    "expires_at": k.expires_at.map(|e| e.to_rfc3339()) })
        })
        .collect();
    let configured = if active.is_none() {
        "active"
    } else if configured_retired {
        "retired"
    } else {
        "retiring"
    };
    if as_json {
        return crate::print_json(&json!({ "configured_key": configured, "keys": rows }));
    }
    println!("configured key (GATEHOUSE_OAUTH_KMS_KEY_ID / GATEHOUSE_OAUTH_SIGNING_KEY): {configured}");
    for r in &rows {
        println!(
            "{}  {:<8} {}  from {}{}",
            r["kid"].as_str().unwrap_or_default(),
            r["state"].as_str().unwrap_or_default(),
            r["key"].as_str().unwrap_or_default(),
            r["activates_at"].as_str().unwrap_or_default(),
            r["expires_at"].as_str().map(|e| format!("  until {e}")).unwrap_or_default()
        );
    }
    Ok(())
}
