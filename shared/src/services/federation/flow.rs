//! A flow's two steps: [`Federation::start`] (the record, the browser binding, the provider's
//! address) and [`Federation::finish`] (taken once, the provider's answer checked, the identity
//! judged by [`super::linking`]).

use super::linking::{self, Outcome};
use super::{Callback, FLOW_LIFETIME, Federation, FederationError, Intent, Started, github, oidc};
use crate::providers::{Provider, ProviderKind};
use crate::services::auth::ClientMeta;
use crate::services::oauth::query_escape;
use crate::tables::users::UserId;
use crate::throttle::{Limit, client_key};
use crate::values::error::StoreError;
use crate::values::secret::{constant_time_eq, is_token_256, random_token_256, sha256_hex};

const FLOW_PREFIX: &str = "federation:";

#[derive(serde::Serialize, serde::Deserialize)]
struct FlowItem {
    provider: String,
    /// SHA-256 of the browser's binding secret.
    binding: String,
    intent: Intent,
}

impl Federation {
    /// Begins a flow with `provider` for `intent` from the browser holding `binding` (its cookie,
    /// if it has one): counted per client first; a record of the flow under the hash of a fresh
    /// `state`, bound to the browser's secret, living [`FLOW_LIFETIME`]; the provider's
    /// authorization address with PKCE (S256) and, for OpenID providers, a `nonce`.
    pub async fn start(
        &self,
        provider: &str,
        intent: Intent,
        binding: Option<&str>,
        meta: &ClientMeta,
    ) -> Result<Started, FederationError> {
        let client = client_key(meta.ip.as_deref());
        self.auth
            .limit(
                &format!("federation-start:{client}"),
                Limit::per_minute(i64::from(self.auth.config().federation.per_client_per_minute)),
            )
            .await?;
        let provider = self.provider(provider)?;
        // The browser's secret, kept when it has one (flows in two tabs), and set again either way
        // so that it outlives this flow.
        let secret = binding.filter(|b| is_token_256(b)).map_or_else(random_token_256, str::to_owned);
        let state = random_token_256();
        let item = FlowItem { provider: provider.id.clone(), binding: sha256_hex(&secret), intent };
        let value = serde_json::to_value(&item).map_err(|e| StoreError::Rejected(e.to_string()))?;
        let until = self.auth.now() + FLOW_LIFETIME;
        self.auth.stores().cache.put(&flow_key(&state), &value, Some(until)).await?;
        let url = self.authorization_url(provider, &secret, &state).await?;
        tracing::info!(event = "federation_started", provider = %provider.id, ip = ?meta.ip);
        Ok(Started { url, binding: secret })
    }

    async fn authorization_url(&self, p: &Provider, secret: &str, state: &str) -> Result<String, FederationError> {
        let (endpoint, oidc) = match &p.kind {
            ProviderKind::Oidc { .. } => (self.metadata(p).await?.authorization_endpoint.clone(), true),
            ProviderKind::GitHub { authorize_url, .. } => (authorize_url.clone(), false),
        };
        let verifier = self.verifier(secret, state);
        let challenge = crate::values::secret::pkce_s256(&verifier);
        let mut params = vec![
            ("response_type", "code".to_owned()),
            ("client_id", p.client_id.clone()),
            ("redirect_uri", p.redirect_uri.clone()),
            ("scope", p.scopes.join(" ")),
            ("state", state.to_owned()),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256".to_owned()),
        ];
        if oidc {
            params.push(("nonce", self.nonce(secret, state)));
        }
        if p.form_post {
            params.push(("response_mode", "form_post".to_owned()));
        }
        let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={}", query_escape(v))).collect();
        let sep = if endpoint.contains('?') { '&' } else { '?' };
        Ok(format!("{endpoint}{sep}{}", query.join("&")))
    }

    /// The PKCE verifier of a flow: derived from the browser's secret and the state, so the
    /// record holds nothing that finishes the flow without that browser.
    fn verifier(&self, secret: &str, state: &str) -> String {
        self.auth.config().app_key.sign("federation-pkce", &format!("{secret}|{state}"))
    }

    fn nonce(&self, secret: &str, state: &str) -> String {
        self.auth.config().app_key.sign("federation-nonce", &format!("{secret}|{state}"))
    }

    /// Finishes the flow `state` of `provider` from the browser holding `binding`: counted per
    /// client first; the flow is taken once (a second callback, a racing one, or one from another
    /// browser takes nothing); the provider's answer is checked; then the identity signs in, signs
    /// up or links ([`linking`]). `linking_user` is the signed-in caller (a link flow needs the
    /// user it was begun by, with its confirmation still recent).
    pub async fn finish(&self, req: Callback<'_>) -> Result<Outcome, FederationError> {
        let provider = self.provider(req.provider)?;
        // No binding cookie or no state of the right shape: nothing to count (a page elsewhere
        // posting made-up callbacks spends no one's budget), nothing to read.
        let (Some(secret), true) = (req.binding.filter(|b| is_token_256(b)), is_token_256(req.state)) else {
            return Err(FederationError::StateInvalid);
        };
        let client = client_key(req.meta.ip.as_deref());
        self.auth
            .limit(
                &format!("federation-finish:{client}"),
                Limit::per_minute(i64::from(self.auth.config().federation.per_client_per_minute)),
            )
            .await?;
        let item = self.take_flow(provider, req.state, secret).await?;
        // A link flow: the session that began it, before the code goes anywhere.
        let linking = match &item.intent {
            Intent::Link { user_id, session, version } => {
                Some(self.linking_session(req.session_cookie, user_id, session, *version).await?)
            }
            Intent::SignIn { .. } => None,
        };
        let claims = match &provider.kind {
            ProviderKind::Oidc { .. } => {
                let expected =
                    oidc::Expected { verifier: self.verifier(secret, req.state), nonce: self.nonce(secret, req.state) };
                oidc::exchange(self, provider, req.code, req.iss, &expected).await?
            }
            ProviderKind::GitHub { .. } => {
                github::exchange(self, provider, req.code, &self.verifier(secret, req.state)).await?
            }
        };
        match item.intent {
            Intent::SignIn { remember } => {
                linking::sign_in(self, provider, claims, remember, req.meta, req.device_cookie).await
            }
            Intent::Link { version, .. } => {
                let owner = linking.ok_or(FederationError::StateInvalid)?;
                linking::link(self, provider, claims, &owner, version, req.meta).await
            }
        }
    }

    /// The user a link flow connects to: the browser's session must be the one that began the
    /// flow (its stored key's hash), of that user, not a handoff's, still at the credentials
    /// version it began under, its confirmation still recent. Store failures are 503s.
    async fn linking_session(
        &self,
        cookie: Option<&str>,
        user_id: &str,
        session: &str,
        version: u64,
    ) -> Result<UserId, FederationError> {
        let Some(cookie) = cookie else { return Err(FederationError::StateInvalid) };
        let access = &self.auth.access;
        match access.principal(None, Some(cookie)).await? {
            Some(crate::services::access::Principal::Session {
                user_id: u,
                key,
                credentials_version,
                password_confirmed_at,
                parent: None,
                ..
            }) if u.as_str() == user_id
                && constant_time_eq(sha256_hex(key.as_str()).as_bytes(), session.as_bytes())
                && credentials_version == version
                && access.password_recently_confirmed(password_confirmed_at) =>
            {
                Ok(u)
            }
            _ => Err(FederationError::StateInvalid),
        }
    }

    /// Takes the flow once: it must be this provider's and this browser's.
    async fn take_flow(&self, provider: &Provider, state: &str, secret: &str) -> Result<FlowItem, FederationError> {
        let key = flow_key(state);
        let cache = &self.auth.stores().cache;
        let mark = random_token_256();
        let found = cache.get_once(&key, &mark).await?.ok_or(FederationError::StateInvalid)?;
        let item: FlowItem =
            serde_json::from_value(found.value().clone()).map_err(|_| FederationError::StateInvalid)?;
        // Another browser's (or provider's) flow is left for its own browser, and refused here.
        if item.provider != provider.id || !constant_time_eq(item.binding.as_bytes(), sha256_hex(secret).as_bytes()) {
            tracing::warn!(event = "federation_state_other_browser", provider = %provider.id);
            return Err(FederationError::StateInvalid);
        }
        cache.take_once(&key, &mark, self.auth.now()).await?.ok_or(FederationError::StateInvalid)?;
        Ok(item)
    }
}

fn flow_key(state: &str) -> String {
    format!("{FLOW_PREFIX}{}", sha256_hex(state))
}
