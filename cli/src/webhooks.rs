//! The webhook endpoint commands (#32): add one (its secret printed once), list them (never a
//! secret), remove, rotate the secret with an overlap, disable and enable, send one a signed test
//! ping, and show its status. The job worker delivers to them (`gatehouse::services::deliveries`).

use anyhow::{Context, Result, bail};
use gatehouse::Config;
use gatehouse::Stores;
use gatehouse::services::webhook_checks;
use gatehouse::services::webhooks::{self, WebhookError};
use gatehouse::tables::webhook_endpoints::{WebhookEndpoint, WebhookEndpointId};
use gatehouse::values::clock::rfc3339;
use serde_json::{Value, json};

/// Sealing needs the deployment's key: one sealed with a random key would never open.
fn require_app_key() -> Result<()> {
    if std::env::var("GATEHOUSE_APP_KEY").ok().is_none_or(|k| k.trim().is_empty()) {
        bail!("webhook secrets are sealed with GATEHOUSE_APP_KEY: set the deployment's key");
    }
    Ok(())
}

fn parse_id(id: &str) -> Result<WebhookEndpointId> {
    WebhookEndpointId::parse(id).with_context(|| format!("not a webhook endpoint id (we_<uuid>): {id:?}"))
}

fn refused(e: WebhookError) -> anyhow::Error {
    match e {
        WebhookError::Store(e) => e.into(),
        other => anyhow::anyhow!("{other}"),
    }
}

/// What `webhook:list --json` shows of an endpoint: never a secret, sealed or not.
pub fn summary(e: &WebhookEndpoint) -> Value {
    let secrets: Vec<Value> = e
        .secrets
        .iter()
        .map(|s| json!({ "created_at": rfc3339(s.created_at), "retires_at": s.retires_at.map(rfc3339) }))
        .collect();
    json!({
        "id": e.id.as_str(),
        "url": e.url,
        "events": e.events.patterns(),
        "description": e.description,
        "created_at": rfc3339(e.created_at),
        "disabled_at": e.disabled_at.map(rfc3339),
        "secrets": secrets,
    })
}

/// `webhook:add`: the endpoint, and its secret shown this once.
pub async fn add(
    stores: &Stores,
    config: &Config,
    url: &str,
    events: Option<&str>,
    description: &str,
    as_json: bool,
) -> Result<()> {
    require_app_key()?;
    let now = stores.clock.now();
    let (e, secret) = webhooks::add(&*stores.webhook_endpoints, &config.app_key, url, events, description, now)
        .await
        .map_err(refused)?;
    if as_json {
        let mut doc = summary(&e);
        doc["secret"] = json!(secret.expose());
        return crate::print_json(&doc);
    }
    println!("Webhook endpoint added: {}", e.id);
    println!("url:    {}", e.url);
    println!("events: {}", e.events);
    println!("secret: {}\n(shown this once: only its sealed form is kept)", secret.expose());
    println!("It hears of the facts from now on (the job worker delivers them).");
    Ok(())
}

/// `webhook:list`.
pub async fn list(stores: &Stores, as_json: bool) -> Result<()> {
    let all = stores.webhook_endpoints.list().await?;
    if as_json {
        let all: Vec<Value> = all.iter().map(summary).collect();
        return crate::print_json(&json!({ "endpoints": all }));
    }
    if all.is_empty() {
        println!("No webhook endpoints.");
    }
    let now = stores.clock.now();
    for e in &all {
        let state = if e.disabled_at.is_some() { "disabled" } else { "enabled" };
        println!(
            "{}  {:<8} {}  [{}]  {} secret(s)  {}",
            e.id,
            state,
            e.url,
            e.events,
            e.live_secrets(now).len(),
            e.description
        );
    }
    Ok(())
}

/// `webhook:remove`.
pub async fn remove(stores: &Stores, id: &str) -> Result<()> {
    let id = parse_id(id)?;
    if !stores.webhook_endpoints.remove(&id).await? {
        bail!("no webhook endpoint {id}");
    }
    println!("Webhook endpoint {id} removed.");
    Ok(())
}

/// `webhook:rotate-secret`: a new secret, shown once; the previous one signs too for
/// `overlap_hours`.
pub async fn rotate(stores: &Stores, config: &Config, id: &str, overlap_hours: i64, as_json: bool) -> Result<()> {
    require_app_key()?;
    let id = parse_id(id)?;
    let overlap = chrono::Duration::hours(overlap_hours);
    let now = stores.clock.now();
    let secret =
        webhooks::rotate(&*stores.webhook_endpoints, &config.app_key, &id, overlap, now).await.map_err(refused)?;
    if as_json {
        return crate::print_json(
            &json!({ "id": id.as_str(), "secret": secret.expose(), "previous_secret_signs_hours": overlap_hours }),
        );
    }
    println!(
        "secret: {}\n(shown this once; the previous secret signs too for {overlap_hours} more hour(s))",
        secret.expose()
    );
    Ok(())
}

/// `webhook:disable` / `webhook:enable`.
pub async fn set_disabled(stores: &Stores, id: &str, disable: bool) -> Result<()> {
    let id = parse_id(id)?;
    let at = disable.then(|| stores.clock.now());
    if !stores.webhook_endpoints.set_disabled(&id, at).await? {
        bail!("no webhook endpoint {id}");
    }
    println!("Webhook endpoint {id} is {}.", if disable { "disabled" } else { "enabled" });
    Ok(())
}

/// `webhook:test`: a signed `webhook.test` ping sent now; fails unless the endpoint answers 2xx.
pub async fn test(
    stores: &Stores,
    config: &Config,
    post: &dyn gatehouse::services::deliveries::Post,
    id: &str,
    as_json: bool,
) -> Result<()> {
    require_app_key()?;
    let id = parse_id(id)?;
    let pinged = webhook_checks::ping(config, stores, post, &id).await.map_err(refused)?;
    let (status, error) = match &pinged.answer {
        Ok(s) => (Some(*s), None),
        Err(why) => (None, Some(why.as_str())),
    };
    if as_json {
        crate::print_json(&json!({
            "id": id.as_str(), "webhook_id": pinged.id, "status": status, "error": error,
            "millis": pinged.millis, "accepted": pinged.accepted(),
        }))?;
    } else {
        match (status, error) {
            (Some(s), _) => println!("{id} answered {s} in {} ms (webhook-id {}).", pinged.millis, pinged.id),
            (None, why) => println!("{id} gave no answer after {} ms: {}", pinged.millis, why.unwrap_or_default()),
        }
    }
    if !pinged.accepted() {
        bail!("the endpoint did not accept the ping (a 2xx is acceptance)");
    }
    Ok(())
}

/// `webhook:status`: the endpoint's settings and its deliveries that gave up.
pub async fn status(stores: &Stores, id: &str, as_json: bool) -> Result<()> {
    let id = parse_id(id)?;
    let st = webhook_checks::status(stores, &id).await.map_err(refused)?;
    let gave_up: Vec<Value> = st
        .gave_up
        .iter()
        .map(|g| json!({ "failed_job": g.uuid, "user_id": g.user, "failed_at": rfc3339(g.failed_at), "error": g.why }))
        .collect();
    if as_json {
        let mut out = summary(&st.endpoint);
        out["live_secrets"] = json!(st.live_secrets);
        out["gave_up"] = json!(gave_up);
        out["gave_up_more"] = json!(st.gave_up_more);
        out["failed_jobs_read"] = json!(st.failed_read);
        return crate::print_json(&out);
    }
    let e = &st.endpoint;
    let state = e.disabled_at.map_or_else(|| "enabled".to_owned(), |at| format!("disabled since {}", rfc3339(at)));
    println!("{}  {}  ({state})", e.id, e.url);
    println!("events: {}", e.events.patterns().join(","));
    println!("signing secrets live: {}", st.live_secrets);
    if st.gave_up.is_empty() {
        println!("no delivery gave up (of {} failed jobs read)", st.failed_read);
    } else {
        let more = if st.gave_up_more { " (and more)" } else { "" };
        println!("deliveries that gave up{more} (retry with `gatehouse queue:retry <failed job>`):");
        for g in &st.gave_up {
            println!("  {}  user {}  {}  {}", rfc3339(g.failed_at), g.user, g.uuid, g.why);
        }
    }
    Ok(())
}
