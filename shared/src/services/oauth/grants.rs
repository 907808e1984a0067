//! The applications a person has let in ("connected apps"): listed from the register (their
//! consents and grants), and disconnected one by one — every grant of that client and its consent
//! revoked, so its refresh tokens stop at once and the next authorization asks again.

use super::OAuthProvider;
use crate::services::revocation::{revoke_registered_tree, revoke_registered_tree_announced};
use crate::tables::credential_ref::{CredentialKind, CredentialRef};
use crate::tables::events::{EventBody, OAuthConsentRevoked};
use crate::tables::oauth_clients::ClientId;
use crate::tables::users::UserId;
use crate::values::clock::Timestamp;
use crate::values::error::StoreResult;
use std::collections::BTreeMap;

/// An application with access to the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizedApp {
    pub client_id: ClientId,
    pub name: String,
    /// What the person approved (or, for a first-party client, what its grants hold).
    pub scopes: Vec<String>,
    pub first_party: bool,
    /// When it was first let in (the oldest consent or grant).
    pub since: Timestamp,
    /// How many live grants (signed-in copies of the app) it holds.
    pub grants: usize,
}

impl OAuthProvider {
    /// Every application with a consent or a live grant of `user`'s, by name.
    pub async fn authorized_apps(&self, user: &UserId) -> StoreResult<Vec<AuthorizedApp>> {
        let stores = self.stores();
        let register = stores.credentials.read(user).await?;
        let mut apps: BTreeMap<ClientId, AuthorizedApp> = BTreeMap::new();
        for entry in &register.entries {
            let (client_id, scopes, grant) = match entry.credential.kind {
                CredentialKind::Consent => {
                    let id = ClientId::from_stored(entry.credential.key.clone());
                    let consent = stores.oauth_consents.find(user, &id).await?;
                    let Some(consent) = consent else { continue };
                    (id, consent.scopes, false)
                }
                CredentialKind::OAuthGrant => {
                    let Some(family) = stores.oauth_refresh_tokens.find(&entry.credential.key).await? else { continue };
                    (family.client_id, family.scopes, true)
                }
                _ => continue,
            };
            let app = match apps.get_mut(&client_id) {
                Some(app) => app,
                None => {
                    let Some(client) = stores.oauth_clients.find(&client_id).await? else { continue };
                    apps.entry(client_id.clone()).or_insert(AuthorizedApp {
                        client_id: client_id.clone(),
                        name: client.name,
                        scopes: Vec::new(),
                        first_party: client.first_party,
                        since: entry.created_at,
                        grants: 0,
                    })
                }
            };
            app.since = app.since.min(entry.created_at);
            app.grants += usize::from(grant);
            for s in scopes {
                if !app.scopes.contains(&s) {
                    app.scopes.push(s);
                }
            }
        }
        let mut out: Vec<AuthorizedApp> = apps.into_values().collect();
        for app in &mut out {
            app.scopes.sort();
        }
        out.sort_by(|a, b| (a.name.to_lowercase(), &a.client_id).cmp(&(b.name.to_lowercase(), &b.client_id)));
        Ok(out)
    }

    /// Disconnects `client` from `user`: each of its grants and its consent revoked (through the
    /// register, as a tree each). `false` when it held nothing of the user's.
    pub async fn disconnect_app(&self, user: &UserId, client: &ClientId) -> StoreResult<bool> {
        let stores = self.stores();
        let register = stores.credentials.read(user).await?;
        let mut roots: Vec<CredentialRef> = Vec::new();
        for entry in &register.entries {
            match entry.credential.kind {
                CredentialKind::Consent if entry.credential.key == client.as_str() => {
                    roots.push(entry.credential.clone())
                }
                CredentialKind::OAuthGrant => {
                    let family = stores.oauth_refresh_tokens.find(&entry.credential.key).await?;
                    if family.is_some_and(|f| &f.client_id == client) {
                        roots.push(entry.credential.clone());
                    }
                }
                _ => {}
            }
        }
        let dispatcher = self.auth.dispatcher();
        for root in &roots {
            let tree = (root, "app_disconnected");
            match root.kind {
                // Announced as `oauth.consent_revoked` (#32), with the scopes it covered.
                CredentialKind::Consent => {
                    let scopes = stores.oauth_consents.find(user, client).await?.map(|c| c.scopes).unwrap_or_default();
                    let revoked = OAuthConsentRevoked { client_id: client.to_string(), scopes };
                    let body = EventBody::OAuthConsentRevoked(revoked);
                    revoke_registered_tree_announced(stores, &dispatcher, user, &register, tree, body).await?;
                }
                _ => {
                    revoke_registered_tree(stores, user, &register, root, "app_disconnected").await?;
                }
            }
        }
        if !roots.is_empty() {
            tracing::info!(event = "oauth_app_disconnected", user_id = %user, client_id = %client, revoked = roots.len());
        }
        Ok(!roots.is_empty())
    }
}
