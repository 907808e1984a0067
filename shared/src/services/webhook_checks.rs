//! An operator's checks of a webhook endpoint (#32): `gatehouse webhook:test` sends it a signed
//! `webhook.test` ping now (not through the queue) and says what it answered; `webhook:status`
//! says what the deployment knows of its deliveries: its settings and the deliveries that gave up
//! (in `failed_jobs`, where `queue:retry` sends them again).

use crate::config::Config;
use crate::services::deliveries::{DELIVER_EVENTS, Post};
use crate::services::webhooks::{WebhookError, parse_url, signing_secrets};
use crate::stores::Stores;
use crate::tables::events::WebhookTest;
use crate::tables::webhook_endpoints::{WebhookEndpoint, WebhookEndpointId};
use crate::values::clock::Timestamp;
use crate::values::webhook_signature::{WebhookId, headers};

/// What the endpoint answered a ping: its status, or why none came; how long it took; the ping's
/// `webhook-id`.
#[derive(Debug)]
pub struct Pinged {
    pub answer: Result<u16, String>,
    pub millis: u64,
    pub id: String,
}

impl Pinged {
    /// A 2xx: the endpoint verified (or at least took) the signed ping.
    pub fn accepted(&self) -> bool {
        matches!(self.answer, Ok(s) if (200..300).contains(&s))
    }
}

async fn endpoint(stores: &Stores, id: &WebhookEndpointId) -> Result<WebhookEndpoint, WebhookError> {
    stores.webhook_endpoints.get(id).await?.ok_or_else(|| WebhookError::NotFound(id.as_str().to_owned()))
}

/// Sends endpoint `id` a `webhook.test` ping signed as a delivery is (every live secret, the
/// Standard Webhooks headers), through `post`, whether the endpoint is enabled or not.
pub async fn ping(
    config: &Config,
    stores: &Stores,
    post: &dyn Post,
    id: &WebhookEndpointId,
) -> Result<Pinged, WebhookError> {
    let endpoint = endpoint(stores, id).await?;
    parse_url(&endpoint.url)?;
    let now = stores.clock.now();
    let secrets = signing_secrets(&config.app_key, &endpoint, now)?;
    let test = WebhookTest::new(endpoint.id.as_str(), now);
    let body = serde_json::to_vec(&test).map_err(|e| WebhookError::Events(format!("the ping: {e}")))?;
    let webhook_id = WebhookId::parse(test.id.as_str())
        .map_err(|_| WebhookError::Events("the ping's id is no webhook id".into()))?;
    let signed = headers(&webhook_id, now.timestamp(), &body, &secrets.iter().collect::<Vec<_>>());
    let started = std::time::Instant::now();
    let answer = post.post_json(&endpoint.url, &signed, body).await;
    let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    tracing::info!(event = "webhook_pinged", endpoint = %endpoint.id, status = ?answer.as_ref().ok(), millis);
    Ok(Pinged { answer, millis, id: test.id.as_str().to_owned() })
}

/// A delivery that gave up: when, for which user, and the first line of why.
#[derive(Debug, Clone)]
pub struct GaveUp {
    pub uuid: String,
    pub user: String,
    pub failed_at: Timestamp,
    pub why: String,
}

/// What `webhook:status` shows.
#[derive(Debug)]
pub struct Status {
    pub endpoint: WebhookEndpoint,
    /// Live signing secrets now (two during a rotation's overlap).
    pub live_secrets: usize,
    /// Its deliveries that gave up and are kept in `failed_jobs`, newest first, at most
    /// [`GAVE_UP_SHOWN`] (and `failed_more` when there were more).
    pub gave_up: Vec<GaveUp>,
    pub gave_up_more: bool,
    /// How many failed jobs were read to find them (the whole table, up to [`FAILED_READ`]).
    pub failed_read: usize,
}

/// How many of an endpoint's deliveries that gave up `webhook:status` lists.
pub const GAVE_UP_SHOWN: usize = 20;
/// How many failed jobs `webhook:status` reads at most (newest first).
pub const FAILED_READ: usize = 5_000;

/// The status of endpoint `id`.
pub async fn status(stores: &Stores, id: &WebhookEndpointId) -> Result<Status, WebhookError> {
    let endpoint = endpoint(stores, id).await?;
    let live_secrets = endpoint.live_secrets(stores.clock.now()).len();
    let (mut gave_up, mut more, mut read) = (Vec::new(), false, 0);
    let mut cursor = None;
    while read < FAILED_READ {
        let page = stores.failed_jobs.list(100, cursor.as_ref()).await?;
        read += page.items.len();
        for f in &page.items {
            let Ok(job) = serde_json::from_str::<serde_json::Value>(&f.payload) else { continue };
            let data = &job["data"];
            let named = job["job"] == DELIVER_EVENTS && data["endpoint"] == endpoint.id.as_str();
            if !named {
                continue;
            }
            if gave_up.len() == GAVE_UP_SHOWN {
                more = true;
                continue;
            }
            let why = f.exception.lines().next().unwrap_or_default().chars().take(300).collect();
            let user = data["user"].as_str().unwrap_or_default().to_owned();
            gave_up.push(GaveUp { uuid: f.uuid.clone(), user, failed_at: f.failed_at, why });
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(Status { endpoint, live_secrets, gave_up, gave_up_more: more, failed_read: read })
}
