//! The outbound calls (the relying party's [`Fetch`], the webhook deliveries' [`Post`](gatehouse::services::deliveries::Post)) over HTTPS: the hyper 1 client with rustls on
//! ring that the AWS SDK's client is built from (no second HTTP stack), one per process (its TLS
//! set-up made on first use, not at every cold start), the system's trust roots, short timeouts,
//! redirects not followed (an endpoint that moves is a configuration to fix, not a hop to take),
//! answers read up to [`MAX_ANSWER`].

use async_trait::async_trait;
use base64::Engine;
use bytes::Bytes;
use gatehouse::services::federation::fetch::{Field, MAX_ANSWER};
use gatehouse::services::federation::{Fetch, FetchError};
use http::{Method, Request, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// A connection in 3 s, the whole call (answer read) in 6 s: well inside a request's budget.
const CONNECT: Duration = Duration::from_secs(3);
const CALL: Duration = Duration::from_secs(6);

/// The process's client.
pub fn shared() -> Arc<dyn Fetch> {
    process_client()
}

fn process_client() -> Arc<HttpFetch> {
    static CLIENT: OnceLock<Arc<HttpFetch>> = OnceLock::new();
    CLIENT.get_or_init(|| Arc::new(HttpFetch::new())).clone()
}

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

pub struct HttpFetch {
    client: Option<Client<Https, Full<Bytes>>>,
}

impl HttpFetch {
    fn new() -> Self {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(CONNECT));
        // https, and http for a provider on this machine (a test's); the configuration allows
        // plain http for 127.0.0.1 and localhost alone.
        http.enforce_http(false);
        let connector = match hyper_rustls::HttpsConnectorBuilder::new().with_native_roots() {
            Ok(b) => b.https_or_http().enable_http1().wrap_connector(http),
            Err(e) => {
                tracing::error!(event = "outbound_client_failed", error = %e);
                return Self { client: None };
            }
        };
        Self { client: Some(Client::builder(TokioExecutor::new()).build(connector)) }
    }

    async fn send(&self, req: Request<Full<Bytes>>) -> Result<Value, FetchError> {
        let client = self.client.as_ref().ok_or_else(|| FetchError::Unreachable("no HTTP client".into()))?;
        let call = async {
            let resp = client.request(req).await.map_err(|e| FetchError::Unreachable(e.to_string()))?;
            let status = resp.status();
            let body =
                Limited::new(resp.into_body(), MAX_ANSWER).collect().await.map_err(|_| FetchError::Unreadable)?;
            let json = serde_json::from_slice::<Value>(&body.to_bytes()).ok();
            if !status.is_success() {
                return Err(FetchError::Status { status: status.as_u16(), body: json });
            }
            json.ok_or(FetchError::Unreadable)
        };
        tokio::time::timeout(CALL, call).await.map_err(|_| FetchError::Unreachable("timed out".into()))?
    }
}

/// RFC 6749 §2.3.1: the client id and secret are form-encoded before they are joined.
fn form_encoded(s: &str) -> String {
    gatehouse::services::oauth::query_escape(s)
}

fn request(method: Method, url: &str) -> http::request::Builder {
    Request::builder()
        .method(method)
        .uri(url)
        .header(header::ACCEPT, "application/json")
        .header(header::USER_AGENT, concat!("gatehouse/", env!("CARGO_PKG_VERSION")))
}

fn built(r: Result<Request<Full<Bytes>>, http::Error>) -> Result<Request<Full<Bytes>>, FetchError> {
    r.map_err(|e| FetchError::Unreachable(format!("not a request: {e}")))
}

#[async_trait]
impl Fetch for HttpFetch {
    async fn get_json(&self, url: &str, bearer: Option<&str>) -> Result<Value, FetchError> {
        let mut req = request(Method::GET, url);
        if let Some(token) = bearer {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        self.send(built(req.body(Full::new(Bytes::new())))?).await
    }

    async fn post_form(&self, url: &str, fields: &[Field], basic: Option<(&str, &str)>) -> Result<Value, FetchError> {
        let body: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={}", form_encoded(v))).collect();
        let mut req = request(Method::POST, url).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some((user, secret)) = basic {
            let pair = format!("{}:{}", form_encoded(user), form_encoded(secret));
            let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
            req = req.header(header::AUTHORIZATION, format!("Basic {encoded}"));
        }
        self.send(built(req.body(Full::new(Bytes::from(body.join("&")))))?).await
    }
}

/// A webhook delivery's whole call, answer included: a receiver that takes longer is treated as
/// down, and the delivery is tried again later.
const DELIVERY: Duration = Duration::from_secs(10);

#[async_trait]
impl gatehouse::services::deliveries::Post for HttpFetch {
    async fn post_json(&self, url: &str, headers: &[(&str, String)], body: Vec<u8>) -> Result<u16, String> {
        let client = self.client.as_ref().ok_or("no HTTP client")?;
        let mut req = request(Method::POST, url).header(header::CONTENT_TYPE, "application/json");
        for (name, value) in headers {
            req = req.header(*name, value.as_str());
        }
        let req = built(req.body(Full::new(Bytes::from(body)))).map_err(|e| e.to_string())?;
        let call = async {
            let resp = client.request(req).await.map_err(|e| format!("unreachable: {e}"))?;
            let status = resp.status().as_u16();
            // The answer's body is read (a little of it) and dropped: only the status counts.
            let _ = Limited::new(resp.into_body(), 4096).collect().await;
            Ok(status)
        };
        tokio::time::timeout(DELIVERY, call).await.map_err(|_| "timed out".to_owned())?
    }
}

impl HttpFetch {
    /// `POST url` of `body` as JSON; the answer (2xx) as JSON, at most 16 KiB, within `timeout`.
    pub async fn post_for_json(&self, url: &str, body: &Value, timeout: Duration) -> Result<Value, String> {
        let client = self.client.as_ref().ok_or("no HTTP client")?;
        let bytes = serde_json::to_vec(body).map_err(|e| e.to_string())?;
        let req = request(Method::POST, url).header(header::CONTENT_TYPE, "application/json");
        let req = built(req.body(Full::new(Bytes::from(bytes)))).map_err(|e| e.to_string())?;
        let call = async {
            let resp = client.request(req).await.map_err(|e| format!("unreachable: {e}"))?;
            let status = resp.status();
            let body =
                Limited::new(resp.into_body(), 16 * 1024).collect().await.map_err(|_| "the answer is over 16 KiB")?;
            if !status.is_success() {
                return Err(format!("answered {}", status.as_u16()));
            }
            serde_json::from_slice::<Value>(&body.to_bytes()).map_err(|_| "the answer is not JSON".to_owned())
        };
        tokio::time::timeout(timeout, call).await.map_err(|_| "timed out".to_owned())?
    }
}

/// The process's client (for the blocking hooks' HTTP calls).
pub fn client() -> Arc<HttpFetch> {
    process_client()
}

/// The process's client, as the webhook deliveries' [`Post`](gatehouse::services::deliveries::Post).
pub fn poster() -> Arc<dyn gatehouse::services::deliveries::Post> {
    process_client()
}
