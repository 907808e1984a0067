//! GitHub: OAuth 2.0 with PKCE, no ID token. The person is GitHub's numeric user id (a login can
//! be renamed and reused; the id cannot), the address the primary one of `GET /user/emails` when
//! GitHub marks it verified.

use super::fetch::Field;
use super::{Claims, Federation, FederationError};
use crate::providers::{ClientSecret, Provider, ProviderKind};
use serde_json::Value;

pub(crate) async fn exchange(
    fed: &Federation,
    p: &Provider,
    code: &str,
    verifier: &str,
) -> Result<Claims, FederationError> {
    let ProviderKind::GitHub { token_url, api_url, .. } = &p.kind else {
        return Err(FederationError::ProviderFailed);
    };
    if code.is_empty() || code.len() > 2048 {
        return Err(FederationError::ProviderFailed);
    }
    let failed = |step: &'static str| {
        move |e: super::FetchError| {
            tracing::warn!(event = "federation_provider_failed", provider = %p.id, step, error = %e);
            FederationError::ProviderFailed
        }
    };
    let mut fields: Vec<Field> = vec![
        ("client_id", p.client_id.clone()),
        ("code", code.to_owned()),
        ("redirect_uri", p.redirect_uri.clone()),
        ("code_verifier", verifier.to_owned()),
    ];
    if let ClientSecret::Static { secret, .. } = &p.secret {
        fields.push(("client_secret", secret.clone()));
    }
    let answer = fed.fetch.post_form(token_url, &fields, None).await.map_err(failed("token"))?;
    // GitHub answers a bad code with 200 and an `error` field.
    let Some(token) = answer.get("access_token").and_then(Value::as_str).filter(|t| !t.is_empty()) else {
        // GitHub's own text, kept to a short printable line in the log.
        let error: String = answer
            .get("error")
            .and_then(|e| e.as_str())
            .unwrap_or("no access_token")
            .chars()
            .filter(|c| c.is_ascii_graphic() || *c == ' ')
            .take(80)
            .collect();
        tracing::warn!(event = "federation_provider_failed", provider = %p.id, step = "token", error = %error);
        return Err(FederationError::ProviderFailed);
    };
    let user = fed.fetch.get_json(&format!("{api_url}/user"), Some(token)).await.map_err(failed("user"))?;
    let subject = match user.get("id") {
        Some(Value::Number(n)) if n.is_u64() => n.to_string(),
        _ => return Err(FederationError::ProviderFailed),
    };
    let emails = fed.fetch.get_json(&format!("{api_url}/user/emails"), Some(token)).await.map_err(failed("emails"))?;
    let primary = emails.as_array().into_iter().flatten().find(|e| e.get("primary") == Some(&Value::Bool(true)));
    let verified = primary.is_some_and(|e| e.get("verified") == Some(&Value::Bool(true)));
    let email = primary.and_then(|e| e.get("email")).and_then(Value::as_str).map(str::to_owned);
    let name = ["name", "login"].iter().find_map(|f| user.get(*f).and_then(Value::as_str)).map(str::to_owned);
    Ok(Claims { subject, email, email_verified: verified, name, sealed_tokens: super::sealed(fed, p, &answer) })
}
