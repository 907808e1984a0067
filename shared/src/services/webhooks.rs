//! Webhook endpoints' management (#32): adding one (its URL checked, its first secret made and
//! sealed), rotating its secret with an overlap, and the secrets that sign a delivery
//! ([`signing_secrets`], what the delivery will use). The secrets are sealed with the app key for
//! [`SEAL_PURPOSE`]; a plain one leaves this module only to be shown once.

use crate::keys::AppKey;
use crate::providers::allowed_url;
use crate::tables::webhook_endpoints::{
    EventFilter, MAX_DESCRIPTION_CHARS, SealedSecret, WebhookEndpoint, WebhookEndpointId, WebhookEndpointStore,
    valid_description,
};
use crate::values::clock::Timestamp;
use crate::values::error::StoreError;
use crate::values::webhook_signature::WebhookSecret;
use thiserror::Error;

/// What the app key seals endpoint secrets for (no other sealed value opens as one).
pub const SEAL_PURPOSE: &str = "webhook-secret";
/// Rotations that lost a race are tried again this many times in all.
const ROTATION_TRIES: usize = 8;

#[derive(Debug, Error)]
pub enum WebhookError {
    #[error("the URL must be https://, or http:// to 127.0.0.1, localhost or [::1] (no user part or fragment)")]
    Url,
    #[error("a description is at most {MAX_DESCRIPTION_CHARS} characters, without control characters")]
    Description,
    #[error("{0}")]
    Events(String),
    #[error("no webhook endpoint {0}")]
    NotFound(String),
    #[error("the endpoint changed under every try; run it again")]
    Contended,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The URL, if an endpoint may have it ([`allowed_url`]: https, or http to this machine alone).
pub fn parse_url(url: &str) -> Result<String, WebhookError> {
    allowed_url(url).then(|| url.to_owned()).ok_or(WebhookError::Url)
}

/// `secret` sealed for an endpoint, current from `now`.
pub fn seal(key: &AppKey, secret: &WebhookSecret, now: Timestamp) -> SealedSecret {
    let sealed = key.seal(SEAL_PURPOSE, secret.expose().as_bytes()).expect("AES-GCM seals any secret's length");
    SealedSecret { sealed, created_at: now, retires_at: None }
}

/// The secrets that sign a delivery to `endpoint` at `now`: the unretired ones, oldest first
/// (two during a rotation's overlap). One that does not open with this key is `Corrupt`.
pub fn signing_secrets(
    key: &AppKey,
    endpoint: &WebhookEndpoint,
    now: Timestamp,
) -> Result<Vec<WebhookSecret>, StoreError> {
    let corrupt = || StoreError::corrupt("webhook_endpoints", format!("{}: a secret does not open", endpoint.id));
    endpoint
        .live_secrets(now)
        .into_iter()
        .map(|s| {
            let text = key.open(SEAL_PURPOSE, &s.sealed).and_then(|b| String::from_utf8(b).ok()).ok_or_else(corrupt)?;
            WebhookSecret::parse(&text).map_err(|_| corrupt())
        })
        .collect()
}

/// A new endpoint (not stored yet) and its first secret, to be shown once.
pub fn new_endpoint(
    key: &AppKey,
    url: &str,
    events: Option<&str>,
    description: &str,
    now: Timestamp,
) -> Result<(WebhookEndpoint, WebhookSecret), WebhookError> {
    let url = parse_url(url)?;
    let events =
        events.map(EventFilter::parse).transpose().map_err(WebhookError::Events)?.unwrap_or_else(EventFilter::all);
    if !valid_description(description) {
        return Err(WebhookError::Description);
    }
    let secret = WebhookSecret::generate();
    let endpoint = WebhookEndpoint {
        id: WebhookEndpointId::generate(),
        url,
        events,
        description: description.to_owned(),
        created_at: now,
        disabled_at: None,
        secrets: vec![seal(key, &secret, now)],
        version: 0,
    };
    Ok((endpoint, secret))
}

/// Adds an endpoint: its record stored, its first secret returned to be shown once.
pub async fn add(
    store: &dyn WebhookEndpointStore,
    key: &AppKey,
    url: &str,
    events: Option<&str>,
    description: &str,
    now: Timestamp,
) -> Result<(WebhookEndpoint, WebhookSecret), WebhookError> {
    let (endpoint, secret) = new_endpoint(key, url, events, description, now)?;
    store.create(&endpoint).await?;
    Ok((endpoint, secret))
}

/// A new secret for the endpoint, to be shown once; the one before it keeps signing until
/// `now + overlap` ([`WebhookEndpoint::rotated`]). A rotation that lost a race reads again.
pub async fn rotate(
    store: &dyn WebhookEndpointStore,
    key: &AppKey,
    id: &WebhookEndpointId,
    overlap: chrono::Duration,
    now: Timestamp,
) -> Result<WebhookSecret, WebhookError> {
    let secret = WebhookSecret::generate();
    for _ in 0..ROTATION_TRIES {
        let endpoint = store.get(id).await?.ok_or_else(|| WebhookError::NotFound(id.to_string()))?;
        let secrets = endpoint.rotated(seal(key, &secret, now), now, overlap);
        if store.replace_secrets(id, endpoint.version, &secrets).await? {
            return Ok(secret);
        }
    }
    Err(WebhookError::Contended)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryWebhookEndpoints;
    use chrono::Duration;

    fn key() -> AppKey {
        static KEY: std::sync::OnceLock<AppKey> = std::sync::OnceLock::new();
        KEY.get_or_init(AppKey::random).clone()
    }

    #[test]
    fn urls_are_https_or_this_machine_over_http() {
        for ok in ["https://example.com/hooks", "http://127.0.0.1:8080/in", "http://localhost/x", "http://[::1]:9/"] {
            assert!(parse_url(ok).is_ok(), "{ok}");
        }
        for bad in
            ["http://example.com/", "ftp://x", "https://a b", "https://u@x/", "http://localhost.example.com/", ""]
        {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn an_endpoint_signs_with_its_secret_and_both_during_a_rotation() {
        let store = MemoryWebhookEndpoints::new();
        let t0 = chrono::Utc::now();
        let (e, first) = add(&store, &key(), "https://example.com/h", Some("user.*"), "billing", t0).await.unwrap();
        let stored = store.get(&e.id).await.unwrap().unwrap();
        assert!(!stored.secrets[0].sealed.contains(first.expose()), "stored sealed");
        let live = signing_secrets(&key(), &stored, t0).unwrap();
        assert_eq!(live.iter().map(|s| s.expose().to_owned()).collect::<Vec<_>>(), [first.expose()]);

        let second = rotate(&store, &key(), &e.id, Duration::hours(24), t0).await.unwrap();
        let stored = store.get(&e.id).await.unwrap().unwrap();
        let both: Vec<String> = signing_secrets(&key(), &stored, t0 + Duration::hours(1))
            .unwrap()
            .iter()
            .map(|s| s.expose().into())
            .collect();
        assert_eq!(both, [first.expose(), second.expose()]);
        let after: Vec<String> = signing_secrets(&key(), &stored, t0 + Duration::hours(24))
            .unwrap()
            .iter()
            .map(|s| s.expose().into())
            .collect();
        assert_eq!(after, [second.expose()]);
        assert!(signing_secrets(&AppKey::random(), &stored, t0).is_err(), "another key opens nothing");
    }

    #[tokio::test]
    async fn bad_input_stores_nothing() {
        let store = MemoryWebhookEndpoints::new();
        let now = chrono::Utc::now();
        assert!(matches!(add(&store, &key(), "http://example.com", None, "", now).await, Err(WebhookError::Url)));
        assert!(matches!(
            add(&store, &key(), "https://x.example", Some("user.nope"), "", now).await,
            Err(WebhookError::Events(_))
        ));
        assert!(matches!(
            add(&store, &key(), "https://x.example", None, "a\u{7}", now).await,
            Err(WebhookError::Description)
        ));
        assert!(store.list().await.unwrap().is_empty());
        let gone = WebhookEndpointId::generate();
        assert!(matches!(rotate(&store, &key(), &gone, Duration::hours(1), now).await, Err(WebhookError::NotFound(_))));
    }
}
