//! AWS calls counted on the wire: a small HTTP proxy in front of the emulator that names each
//! call (`dynamodb:GetItem`, `sqs:SendMessage`, …) from its `X-Amz-Target` header (or its path,
//! for REST APIs such as SES v2) and forwards it unchanged. Stores built on [`counted_env`] talk
//! through it, so a test can assert exactly which calls an operation makes.

use crate::TestEnv;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Calls seen by the proxy, by name.
#[derive(Default)]
pub struct WireCounter(Mutex<BTreeMap<String, usize>>);

impl WireCounter {
    fn bump(&self, name: String) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()).entry(name).or_default() += 1;
    }

    /// The calls counted since the last `take`, and a fresh start.
    pub fn take(&self) -> BTreeMap<String, usize> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The name of an AWS call: `dynamodb:GetItem` from `X-Amz-Target: DynamoDB_20120810.GetItem`,
/// `sqs:SendMessage` from `AmazonSQS.SendMessage`, else the method and path.
fn call_name(req: &hyper::Request<Incoming>) -> String {
    match req.headers().get("x-amz-target").and_then(|v| v.to_str().ok()) {
        Some(t) => {
            let (service, op) = t.split_once('.').unwrap_or(("?", t));
            let service = if service.starts_with("DynamoDB") {
                "dynamodb"
            } else if service.contains("SQS") {
                "sqs"
            } else {
                service
            };
            format!("{service}:{op}")
        }
        None => format!("{} {}", req.method(), req.uri().path()),
    }
}

async fn forward(target: &str, req: hyper::Request<Incoming>) -> Result<hyper::Response<Full<Bytes>>, String> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    let stream = tokio::net::TcpStream::connect(target).await.map_err(|e| e.to_string())?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let resp =
        sender.send_request(hyper::Request::from_parts(parts, Full::new(body))).await.map_err(|e| e.to_string())?;
    let (parts, body) = resp.into_parts();
    Ok(hyper::Response::from_parts(parts, Full::new(body.collect().await.map_err(|e| e.to_string())?.to_bytes())))
}

/// 502 for a call the emulator could not be reached for (the SDK retries it, as on AWS).
fn bad_gateway(why: String) -> hyper::Response<Full<Bytes>> {
    let mut resp = hyper::Response::new(Full::new(Bytes::from(why)));
    *resp.status_mut() = hyper::StatusCode::BAD_GATEWAY;
    resp
}

/// Starts the proxy in front of `emulator` (`http://127.0.0.1:PORT`) on a free port of
/// 127.0.0.1; it lives as long as the test's runtime. Returns its endpoint and its counter.
pub async fn start_proxy(emulator: &str) -> (String, Arc<WireCounter>) {
    let target = emulator.trim_start_matches("http://").trim_end_matches('/').to_owned();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.expect("a free port");
    let addr = listener.local_addr().expect("an address");
    let counter = Arc::new(WireCounter::default());
    let seen = counter.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (target, seen) = (target.clone(), seen.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let (target, seen) = (target.clone(), seen.clone());
                    async move {
                        seen.bump(call_name(&req));
                        Ok::<_, std::convert::Infallible>(forward(&target, req).await.unwrap_or_else(bad_gateway))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
    (format!("http://{addr}"), counter)
}

/// A test world on the emulator whose every AWS call goes through a counting proxy.
pub async fn counted_env() -> (TestEnv, Arc<WireCounter>) {
    let (endpoint, counter) = start_proxy(&crate::emulator_endpoint()).await;
    // Without the SDK's retries: a retried call would count twice.
    let env = TestEnv::aws_at(&endpoint, false).await;
    counter.take();
    (env, counter)
}
