//! `gatehouse serve`: every route on one port, through the very handlers the Lambda functions run.
//! Each HTTP request becomes an API Gateway HTTP API (payload 2.0) event for the function that
//! serves its route (which checks credentials itself, as on AWS: no authorizer runs in front of
//! gatehouse's routes), and the job worker long-polls the queue in the same process.

use crate::cors::Cors;
use anyhow::{Context, Result, bail};
use gatehouse::mail::LogMailer;
use gatehouse::{Config, Stores, SystemClock};
use gatehouse_http::event::EventBuilder;
use gatehouse_http::{ApiError, App, Route};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;

/// The OpenAPI document, served at `GET /openapi.json`.
pub const OPENAPI: &str = include_str!("../../openapi.json");

/// Which function serves a route, and whether the authorizer guards it (as in template.yaml).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Login,
    Tokens,
    PasswordReset,
    /// The OAuth 2.1 / OpenID Connect provider's endpoints.
    OAuth,
    /// The hosted pages (`/account…`), HTML.
    Pages,
    OpenApi,
}

/// Every function's route table, with the function that serves it.
pub fn tables() -> [(&'static [Route], Target); 4] {
    [
        (gatehouse_login::ROUTES, Target::Login),
        (gatehouse_tokens::ROUTES, Target::Tokens),
        (gatehouse_password_reset::ROUTES, Target::PasswordReset),
        (gatehouse_oauth::ROUTES, Target::OAuth),
    ]
}

/// The route key API Gateway would match (`POST /tokens/{id}`) and its function. `None` for
/// paths no route matches. As in template.yaml, no authorizer runs in front: the function checks
/// the credential, the route's abilities and its requirements itself.
pub fn route(method: &str, path: &str) -> Option<(String, Target)> {
    if method == "GET" && path == "/openapi.json" {
        return Some(("GET /openapi.json".into(), Target::OpenApi));
    }
    let all = || tables().into_iter().chain([(gatehouse_pages::ROUTES, Target::Pages)]);
    for (routes, target) in all() {
        if let Some((r, _)) = gatehouse_http::find(routes, method, path) {
            return Some((r.key(), target));
        }
    }
    // A known path with another method: the function answers 405.
    for (routes, target) in all() {
        if routes.iter().any(|r| gatehouse_http::path_matches(r.path, path)) {
            return Some((format!("{method} {path}"), target));
        }
    }
    None
}

/// Largest body read from a client; past 64 KiB the handler answers 413 anyway.
const READ_LIMIT: usize = 1024 * 1024;

struct Server {
    app: App,
    cors: Cors,
}

impl Server {
    /// Serves a request, with CORS as API Gateway adds it (preflights answered here).
    async fn handle(&self, req: hyper::Request<Incoming>, peer: SocketAddr) -> hyper::Response<Full<Bytes>> {
        let asked = req.headers().clone();
        if Cors::is_preflight(req.method().as_str(), &asked) {
            let mut out = hyper::Response::new(Full::new(Bytes::new()));
            *out.status_mut() = hyper::StatusCode::NO_CONTENT;
            *out.headers_mut() = self.cors.preflight(&asked);
            return out;
        }
        let mut out = self.serve(req, peer).await;
        self.cors.decorate(&asked, out.headers_mut());
        out
    }

    async fn serve(&self, req: hyper::Request<Incoming>, peer: SocketAddr) -> hyper::Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();
        let body = match Limited::new(body, READ_LIMIT).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return to_hyper(ApiError::payload_too_large().into_response()),
        };
        let method = parts.method.as_str().to_owned();
        let path = parts.uri.path().to_owned();
        if path == "/" && matches!(method.as_str(), "GET" | "HEAD") {
            // The local server's root: a browser opening it is led to the hosted pages.
            return to_hyper(root_redirect());
        }
        let Some((route_key, target)) = route(&method, &path) else {
            return to_hyper(ApiError::not_found().into_response());
        };
        let event = event(&parts, &body, peer, &route_key);
        let request = match event.request() {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "could not turn the request into an API Gateway event");
                return to_hyper(ApiError::field("body", "could not be read").into_response());
            }
        };
        let response = match target {
            Target::Login => gatehouse_login::handle(&self.app, request).await,
            Target::Tokens => gatehouse_tokens::handle(&self.app, request).await,
            Target::PasswordReset => gatehouse_password_reset::handle(&self.app, request).await,
            Target::OAuth => gatehouse_oauth::handle(&self.app, request).await,
            Target::Pages => gatehouse_pages::handle(&self.app, request).await,
            Target::OpenApi => openapi_response(),
        };
        to_hyper(response)
    }
}

/// `GET /` on the local server: 302 to the account pages (sign in, or the account when signed in).
fn root_redirect() -> lambda_http::Response<lambda_http::Body> {
    let mut response = lambda_http::Response::new(lambda_http::Body::Empty);
    *response.status_mut() = lambda_http::http::StatusCode::FOUND;
    response
        .headers_mut()
        .insert(lambda_http::http::header::LOCATION, lambda_http::http::HeaderValue::from_static("/account"));
    response
}

fn openapi_response() -> lambda_http::Response<lambda_http::Body> {
    gatehouse_http::json(lambda_http::http::StatusCode::OK, &serde_json::from_str::<Value>(OPENAPI).unwrap_or_default())
}

/// The API Gateway HTTP API (payload 2.0) event for a request, as AWS would build it, for a local
/// deployment (account `000000000000`, API `gatehouse-local` on `127.0.0.1`). Header values that
/// are not UTF-8 are left out.
fn event(parts: &hyper::http::request::Parts, body: &Bytes, peer: SocketAddr, route_key: &str) -> EventBuilder {
    let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let mut e = EventBuilder::new(parts.method.as_str(), target)
        .route_key(route_key)
        .account_id("000000000000")
        .api_id("gatehouse-local")
        .region("local")
        .domain("127.0.0.1", "local")
        .source_ip(&peer.ip().to_string())
        .body_bytes(body);
    for (name, value) in &parts.headers {
        if let Ok(v) = value.to_str() {
            e = e.header(name.as_str(), v);
        }
    }
    e
}

fn to_hyper(resp: lambda_http::Response<lambda_http::Body>) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = resp.into_parts();
    let bytes = match body {
        lambda_http::Body::Text(t) => Bytes::from(t),
        lambda_http::Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    let mut out = hyper::Response::new(Full::new(bytes));
    *out.status_mut() = parts.status;
    *out.headers_mut() = parts.headers;
    out
}

/// The notice delay of a local run when `GATEHOUSE_NOTICE_DELAY_SECONDS` is not set: a local
/// request is over in well under a second (no Lambda deadline to outwait), so the security notices
/// and the events arrive a few seconds after their change rather than half a minute.
const LOCAL_NOTICE_DELAY: std::time::Duration = std::time::Duration::from_secs(3);

pub async fn run(port: u16, aws: bool, webhooks: &[String]) -> Result<()> {
    let mut config = Config::for_local_run(port).context("configuration")?;
    if std::env::var_os("GATEHOUSE_NOTICE_DELAY_SECONDS").is_none() {
        config.notice_delay = LOCAL_NOTICE_DELAY;
    }
    let use_aws = aws || std::env::var_os("AWS_ENDPOINT_URL").is_some();
    let (stores, sdk) = if use_aws {
        let sdk = gatehouse_aws::aws_sdk_config().await;
        let report = gatehouse_aws::migrate::status(
            &gatehouse_aws::DynamoClient::new(&sdk),
            &gatehouse_aws::SqsClient::new(&sdk),
            &config.names,
        )
        .await
        .context("checking the tables and queues (is the endpoint reachable?)")?;
        if !gatehouse_aws::migrate::all_ok(&report) {
            for r in &report {
                eprintln!("{r}");
            }
            bail!("the tables and queues are not in place: run `gatehouse migrate` first");
        }
        (gatehouse_aws::stores(&sdk, &config.names, Arc::new(SystemClock)), Some(sdk))
    } else {
        (Stores::memory(Arc::new(SystemClock)), None)
    };
    let mailer: Arc<dyn gatehouse::mail::Mailer> = match &sdk {
        Some(sdk) => gatehouse_aws::mailer(&config, sdk),
        None => Arc::new(LogMailer::new()),
    };
    let keys = match &sdk {
        Some(sdk) => gatehouse_aws::kms::provider_keys(sdk, &config, &stores).await,
        None => gatehouse::signing::local_keys(&config.oauth.signing, false)
            .and_then(|k| k.ok_or_else(|| "a KMS key needs --aws (or AWS_ENDPOINT_URL)".to_owned()))
            .map(|k| {
                let sealed = gatehouse::signing::SealedKeys(config.app_key.clone());
                k.with_keyring(&stores, Arc::new(sealed), config.oauth.longest_token_life())
            }),
    }
    .map_err(anyhow::Error::msg)
    .context("the OAuth provider's signing key")?;
    let hooks = gatehouse_aws::hooks::caller(sdk.as_ref());
    let app =
        App::with_hooks(config.clone(), stores.clone(), hooks).context("password hashing")?.with_signing_keys(keys);
    if !webhooks.is_empty() && sdk.is_some() && std::env::var_os("AWS_ENDPOINT_URL").is_none() {
        // On real tables the endpoint would outlive this run, and the deployed workers would
        // post every event to this machine's address. `gatehouse webhook:add` is for those.
        bail!(
            "--webhook is for a local run (the embedded store, or AWS_ENDPOINT_URL); on AWS use `gatehouse webhook:add`"
        );
    }
    add_webhooks(&stores, &config, webhooks).await?;
    let outbound = gatehouse_aws::outbound(&app.config, sdk.as_ref());
    let worker = gatehouse::services::job_registry::worker(stores.clone(), app.config.clone(), mailer, outbound);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("binding 127.0.0.1:{port}"))?;
    let addr = listener.local_addr()?;
    banner(addr, &stores, use_aws);

    // Long polling (20 s) while idle; stopping abandons the poll in flight at once.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker_task = tokio::spawn(async move {
        let _ = worker.run(async { stopped.await.unwrap_or_default() }, false).await;
    });
    let cors = Cors::new(&app.config.session.allowed_origins);
    let server = Arc::new(Server { app, cors });
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let server = server.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let server = server.clone();
                        async move { Ok::<_, std::convert::Infallible>(server.handle(req, peer).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        }
    }
    eprintln!("\nShutting down: letting in-flight jobs finish…");
    let _ = stop.send(());
    let _ = worker_task.await;
    eprintln!("Stopped.");
    Ok(())
}

fn banner(addr: SocketAddr, stores: &Stores, aws: bool) {
    eprintln!("\ngatehouse is listening on http://{addr}");
    if aws {
        eprintln!("store: DynamoDB + SQS ({})", std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "AWS".into()));
    } else {
        eprintln!("store: {} (embedded: nothing to install, and all data is lost at exit)", stores.backend);
    }
    eprintln!("mail:  printed below by the log mailer (local only)\nroutes:");
    for r in tables().iter().flat_map(|(routes, _)| routes.iter()) {
        eprintln!("  {:<6} {}", r.method, r.path);
    }
    eprintln!("  GET    /openapi.json\npages:  http://{addr}/account/sign-in (and /account/register, /account)");
    eprintln!("worker: consuming the jobs queue in this process\nCtrl-C to stop.\n");
}

/// `--webhook URL`s: an endpoint for each (kept when one is there for the URL already), signed
/// with `GATEHOUSE_WEBHOOK_SECRET` or a new secret, printed once.
async fn add_webhooks(stores: &Stores, config: &Config, urls: &[String]) -> Result<()> {
    use gatehouse::values::webhook_signature::WebhookSecret;
    let given = match std::env::var("GATEHOUSE_WEBHOOK_SECRET") {
        Ok(text) if !urls.is_empty() => {
            Some(WebhookSecret::parse(&text).map_err(|e| anyhow::anyhow!("GATEHOUSE_WEBHOOK_SECRET: {e}"))?)
        }
        _ => None,
    };
    let store = stores.webhook_endpoints.as_ref();
    for url in urls {
        if let Some(there) = store.list().await?.into_iter().find(|e| &e.url == url) {
            eprintln!("webhook {} -> {url} (already there; its secret is not shown again)", there.id);
            continue;
        }
        let now = stores.clock.now();
        let (mut endpoint, secret) =
            gatehouse::services::webhooks::new_endpoint(&config.app_key, url, None, "gatehouse serve --webhook", now)
                .with_context(|| format!("--webhook {url}"))?;
        if let Some(given) = &given {
            endpoint.secrets = vec![gatehouse::services::webhooks::seal(&config.app_key, given, now)];
            store.create(&endpoint).await?;
            eprintln!("webhook {} -> {url}, every event, signed with GATEHOUSE_WEBHOOK_SECRET", endpoint.id);
            continue;
        }
        store.create(&endpoint).await?;
        // Made here: shown once, for the receiver to verify with.
        eprintln!("webhook {} -> {url}, every event, signed with {}", endpoint.id, secret.expose());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_served_request_becomes_an_event_of_the_shape_aws_sends() {
        let real: Value =
            serde_json::from_str(include_str!("../../tests/fixtures/apigw-v2-request-post-login.json")).unwrap();
        let (parts, ()) = hyper::Request::builder()
            .method("POST")
            .uri("/login")
            .header("host", "127.0.0.1:8080")
            .header("cookie", "theme=dark; _ga=1")
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .header("accept", "text/plain")
            .header("user-agent", "curl/8.7.1")
            .body(())
            .unwrap()
            .into_parts();
        let peer: SocketAddr = "192.0.2.10:50000".parse().unwrap();
        let built = event(&parts, &Bytes::from_static(b"{}"), peer, "POST /login").build();
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&built), keys(&real));
        assert_eq!(keys(&built["requestContext"]), keys(&real["requestContext"]));
        assert_eq!(keys(&built["requestContext"]["http"]), keys(&real["requestContext"]["http"]));
        assert_eq!(built["cookies"], serde_json::json!(["theme=dark", "_ga=1"]));
        assert_eq!(built["headers"]["accept"], "application/json,text/plain");
        let ctx = &built["requestContext"];
        assert_eq!((ctx["accountId"].as_str(), ctx["apiId"].as_str()), (Some("000000000000"), Some("gatehouse-local")));
        assert_eq!((ctx["domainName"].as_str(), ctx["domainPrefix"].as_str()), (Some("127.0.0.1"), Some("local")));
        assert_eq!(ctx["http"]["sourceIp"], "192.0.2.10");
        assert_eq!(ctx["http"]["userAgent"], "curl/8.7.1");
        assert_eq!(ctx["routeKey"], "POST /login");
    }

    #[test]
    fn the_root_leads_a_browser_to_the_pages() {
        let r = root_redirect();
        assert_eq!(r.status(), 302);
        assert_eq!(r.headers()["location"], "/account");
        assert!(route("GET", "/account").is_some(), "the pages serve /account");
    }

    #[test]
    fn routes_resolve_to_their_function() {
        assert_eq!(route("POST", "/login"), Some(("POST /login".into(), Target::Login)));
        assert_eq!(route("GET", "/user"), Some(("GET /user".into(), Target::Login)));
        assert_eq!(route("DELETE", "/tokens/abc"), Some(("DELETE /tokens/{id}".into(), Target::Tokens)));
        assert_eq!(route("POST", "/tokens/issue"), Some(("POST /tokens/issue".into(), Target::Tokens)));
        assert_eq!(route("POST", "/forgot-password"), Some(("POST /forgot-password".into(), Target::PasswordReset)));
        assert_eq!(route("POST", "/oauth/token"), Some(("POST /oauth/token".into(), Target::OAuth)));
        assert_eq!(route("GET", "/nope"), None);
        assert_eq!(route("PUT", "/login").map(|r| r.1), Some(Target::Login));
    }

    #[test]
    fn the_authorizer_requires_of_tokens_exactly_the_abilities_the_route_tables_do() {
        let mut tables: Vec<(String, &str)> = tables()
            .iter()
            .flat_map(|(routes, _)| routes.iter())
            .flat_map(|r| r.abilities().iter().map(move |a| (r.key(), *a)))
            .collect();
        tables.sort();
        let mut own: Vec<(String, &str)> = gatehouse::tables::personal_access_tokens::OWN_ROUTE_ABILITIES
            .iter()
            .map(|(r, a)| ((*r).to_owned(), *a))
            .collect();
        own.sort();
        assert_eq!(tables, own);
        let authorizer = gatehouse::routes::RouteAbilities::parse("").unwrap();
        for (route, ability) in &own {
            assert_eq!(authorizer.for_route(route), [ability.to_string()], "{route}");
        }
    }

    /// Public: the operation asks for no credential of the API's (a session cookie, a personal
    /// access token). An OAuth endpoint may ask for its own (client authentication, an OAuth
    /// access token, an initial access token), which it checks itself.
    #[test]
    fn the_public_routes_of_the_tables_are_the_ones_openapi_json_marks_public() {
        let doc: Value = serde_json::from_str(OPENAPI).unwrap();
        let api_credential =
            |alternative: &Value| ["bearerAuth", "cookieAuth"].iter().any(|s| alternative.get(s).is_some());
        let mut documented = Vec::new();
        for (path, item) in doc["paths"].as_object().into_iter().flatten() {
            for (method, op) in item.as_object().into_iter().flatten() {
                if op.get("security").and_then(Value::as_array).is_some_and(|s| !s.iter().any(api_credential)) {
                    documented.push(format!("{} {path}", method.to_uppercase()));
                }
            }
        }
        documented.sort();
        let mut public: Vec<String> =
            tables().iter().flat_map(|(routes, _)| routes.iter()).filter(|r| r.public()).map(Route::key).collect();
        public.push("GET /openapi.json".into());
        public.sort();
        assert_eq!(
            public,
            [
                "GET /.well-known/jwks.json",
                "GET /.well-known/oauth-authorization-server",
                "GET /.well-known/oauth-protected-resource",
                "GET /.well-known/openid-configuration",
                "GET /auth/providers",
                "GET /oauth/userinfo",
                "GET /openapi.json",
                "POST /auth/email-link",
                "POST /auth/email-link/complete",
                "POST /auth/providers/{provider}/callback",
                "POST /auth/providers/{provider}/start",
                "POST /cross-app/exchange",
                "POST /forgot-password",
                "POST /login",
                "POST /oauth/introspect",
                "POST /oauth/register",
                "POST /oauth/revoke",
                "POST /oauth/token",
                "POST /oauth/userinfo",
                "POST /passkeys/login",
                "POST /passkeys/options",
                "POST /register",
                "POST /reset-password",
                "POST /tokens/issue",
                "POST /two-factor-challenge"
            ]
        );
        assert_eq!(public, documented);
    }

    #[test]
    fn every_served_route_is_documented_and_every_documented_route_served() {
        let doc: Value = serde_json::from_str(OPENAPI).unwrap();
        let documented: std::collections::BTreeSet<String> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(p, item)| item.as_object().unwrap().keys().map(move |m| format!("{} {p}", m.to_uppercase())))
            .collect();
        let mut served: std::collections::BTreeSet<String> =
            tables().iter().flat_map(|(routes, _)| routes.iter()).map(Route::key).collect();
        served.insert("GET /openapi.json".into());
        assert_eq!(served, documented, "a route is served but not documented in openapi.json, or the reverse");
    }
}
