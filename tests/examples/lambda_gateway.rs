//! A stand-in for API Gateway's HTTP API on 127.0.0.1, in front of the real Lambda binaries:
//! `login`, `tokens`, `password-reset`, `oauth` and `pages`, each started as Lambda starts it
//! (through a local Runtime API, `gatehouse_tests::runtime_api::LambdaProcess`). Every request
//! goes to the function whose route table matches it (the functions' own `ROUTES`, as
//! template.yaml routes them), as the payload 2.0 event `gatehouse serve` builds
//! (`gatehouse_http::event::EventBuilder`, the matched route's key as `routeKey`), and the
//! function's payload 2.0 answer becomes the HTTP response as API Gateway makes it: `statusCode`,
//! `headers`, one `Set-Cookie` per entry of `cookies`, `body` (base64 when `isBase64Encoded`).
//! As API Gateway does for payload 2.0, `multiValueHeaders` is not read; a request no route takes
//! is answered 404 `{"message":"Not Found"}`, a function error 500 `{"message":"Internal Server Error"}`.
//! The job worker is not run: jobs stay on the queue.
//!
//! ```text
//! lambda_gateway --port 8080 [--logs DIR]
//! ```
//!
//! The binaries get this process's environment (so the caller sets `AWS_ENDPOINT_URL`,
//! `GATEHOUSE_*`…) on top of what `LambdaProcess` sets. `--logs DIR` writes each function's
//! output (its logs) to `DIR/<function>.log`. Prints `listening on http://127.0.0.1:<port>` once
//! every function has polled for its first invocation; stops them on SIGINT or SIGTERM.

use base64::Engine;
use gatehouse_http::Route;
use gatehouse_http::event::EventBuilder;
use gatehouse_tests::runtime_api::{LambdaProcess, binary};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// The functions behind the API, in the order their route tables are tried (as `gatehouse serve`).
fn route_tables() -> [(&'static str, &'static [Route]); 5] {
    [
        ("login", gatehouse_login::ROUTES),
        ("tokens", gatehouse_tokens::ROUTES),
        ("password-reset", gatehouse_password_reset::ROUTES),
        ("oauth", gatehouse_oauth::ROUTES),
        ("pages", gatehouse_pages::ROUTES),
    ]
}

/// API Gateway's payload limit is 10 MB; the functions refuse past 64 KiB anyway.
const READ_LIMIT: usize = 10 * 1024 * 1024;

struct Function {
    name: &'static str,
    routes: &'static [Route],
    process: LambdaProcess,
}

struct Gateway {
    functions: Vec<Arc<Function>>,
}

type Reply = hyper::Response<Full<Bytes>>;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lambda_gateway: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (port, logs) = args()?;
    if std::env::var_os("AWS_ENDPOINT_URL").is_none() && std::env::var_os("GATEHOUSE_TEST_AWS_ENDPOINT").is_none() {
        return Err("set AWS_ENDPOINT_URL (the emulator the functions use)".into());
    }
    // This process's environment, less what the Runtime API sets for each function.
    let vars: Vec<(String, String)> = std::env::vars().filter(|(k, _)| !k.starts_with("AWS_LAMBDA_")).collect();
    let env: Vec<(&str, String)> = vars.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;

    let mut functions = Vec::new();
    for (name, routes) in route_tables() {
        let path = match &logs {
            Some(dir) => logged(dir, name, &binary(name))?,
            None => binary(name),
        };
        functions.push(Arc::new(Function { name, routes, process: LambdaProcess::start(&path, &env).await }));
    }
    // Ready when every function has finished its init and polls (or give up after 30 s).
    let started = Instant::now();
    for f in &functions {
        let waiting = f.clone();
        if tokio::spawn(async move { waiting.process.init_time().await }).await.is_err() {
            let log = logs.as_ref().map(|d| format!("{d}/{}.log", f.name));
            let tail = log.as_ref().and_then(|l| std::fs::read_to_string(l).ok()).unwrap_or_default();
            // Returning drops the processes, which kills those still running (`kill_on_drop`).
            return Err(format!("the {} function did not start within 30 s\n{tail}", f.name).into());
        }
    }
    eprintln!("lambda_gateway: {} functions ready in {:.1} s", functions.len(), started.elapsed().as_secs_f64());
    println!("listening on http://{addr}");

    let gateway = Arc::new(Gateway { functions });
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let gateway = gateway.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let gateway = gateway.clone();
                        async move { Ok::<_, std::convert::Infallible>(gateway.handle(req, peer).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        }
    }
    // The processes die with the last copy of the gateway (`kill_on_drop`): this one, then those
    // of open connections as the runtime stops.
    drop(gateway);
    Ok(())
}

/// `--port N` (0, the default, for any free port) and `--logs DIR`.
fn args() -> Result<(u16, Option<String>), String> {
    let (mut port, mut logs) = (0, None);
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--port" => port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--logs" => logs = Some(value()?),
            other => return Err(format!("unknown argument {other}; usage: lambda_gateway --port N [--logs DIR]")),
        }
    }
    Ok((port, logs))
}

/// A script named as the function (its name is the Lambda function's name) that runs `binary`
/// with its output appended to `dir/<name>.log`.
fn logged(dir: &str, name: &str, binary: &str) -> std::io::Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let bin_dir = format!("{dir}/bin");
    std::fs::create_dir_all(&bin_dir)?;
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let script = format!("{bin_dir}/{name}");
    let log = format!("{dir}/{name}.log");
    std::fs::write(&script, format!("#!/bin/sh\nexec {} >>{} 2>&1\n", quote(binary), quote(&log)))?;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    Ok(script)
}

impl Gateway {
    async fn handle(&self, req: hyper::Request<Incoming>, peer: SocketAddr) -> Reply {
        let started = Instant::now();
        let (parts, body) = req.into_parts();
        let body = match Limited::new(body, READ_LIMIT).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return message(413, "Request Entity Too Large"),
        };
        let (method, path) = (parts.method.as_str(), parts.uri.path());
        let matched = self
            .functions
            .iter()
            .find_map(|f| gatehouse_http::find(f.routes, method, path).map(|(route, _)| (f.clone(), route.key())));
        let Some((function, route_key)) = matched else {
            eprintln!("{method} {path} -> 404 (no route)");
            return message(404, "Not Found");
        };
        let event = event(&parts, &body, peer, &route_key).build();
        // A panic here is the process gone or silent for 2 minutes: the gateway answers 500.
        let f = function.clone();
        let answer = tokio::spawn(async move { f.process.invoke(event).await }).await;
        let reply = match answer {
            Ok(Ok(response)) => to_hyper(&response),
            Ok(Err(error)) => {
                eprintln!("{method} {path}: the {} function failed: {error}", function.name);
                message(500, "Internal Server Error")
            }
            Err(e) => {
                eprintln!("{method} {path}: no answer from the {} function: {e}", function.name);
                message(500, "Internal Server Error")
            }
        };
        eprintln!(
            "{method} {path} -> {} ({}, {} ms)",
            reply.status().as_u16(),
            function.name,
            started.elapsed().as_millis()
        );
        reply
    }
}

/// The payload 2.0 event for a request, built exactly as `gatehouse serve` builds it.
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

/// The HTTP response API Gateway makes of a payload 2.0 answer. An answer without `statusCode`
/// is, as API Gateway reads it, a 200 whose JSON body is the answer.
fn to_hyper(answer: &Value) -> Reply {
    let Some(status) = answer.get("statusCode").and_then(Value::as_u64) else {
        let mut r = hyper::Response::new(Full::new(Bytes::from(answer.to_string())));
        r.headers_mut()
            .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
        return r;
    };
    let body = answer.get("body").and_then(Value::as_str).unwrap_or_default();
    let bytes = if answer.get("isBase64Encoded").and_then(Value::as_bool).unwrap_or(false) {
        match base64::engine::general_purpose::STANDARD.decode(body) {
            Ok(b) => Bytes::from(b),
            Err(_) => return message(502, "Internal Server Error"),
        }
    } else {
        Bytes::from(body.to_owned())
    };
    let mut r = hyper::Response::new(Full::new(bytes));
    *r.status_mut() = u16::try_from(status)
        .ok()
        .and_then(|s| hyper::StatusCode::from_u16(s).ok())
        .unwrap_or(hyper::StatusCode::BAD_GATEWAY);
    let headers = r.headers_mut();
    for (name, value) in answer.get("headers").and_then(Value::as_object).into_iter().flatten() {
        let value = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if let (Ok(n), Ok(v)) =
            (hyper::header::HeaderName::from_bytes(name.as_bytes()), hyper::header::HeaderValue::from_str(&value))
        {
            headers.append(n, v);
        }
    }
    for cookie in answer.get("cookies").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
        if let Ok(v) = hyper::header::HeaderValue::from_str(cookie) {
            headers.append(hyper::header::SET_COOKIE, v);
        }
    }
    r
}

/// API Gateway's own answers: `{"message": …}`.
fn message(status: u16, text: &str) -> Reply {
    let mut r = hyper::Response::new(Full::new(Bytes::from(serde_json::json!({ "message": text }).to_string())));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    r
}
