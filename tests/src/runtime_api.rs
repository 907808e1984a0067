//! A Lambda Runtime API on 127.0.0.1, so a Lambda binary can be started exactly as Lambda starts
//! it (`AWS_LAMBDA_RUNTIME_API`) and fed events: it polls `/invocation/next`, and posts each
//! answer to `/invocation/{id}/response` (or `/error`).

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

#[derive(Default)]
struct State {
    /// Events not yet handed out: id, event, and the time the function gets from hand-out to
    /// its deadline (Lambda's clock starts when the invocation is handed out, not when queued).
    pending: VecDeque<(String, Value, Duration)>,
    answers: HashMap<String, Result<Value, Value>>,
    init_error: Option<String>,
    /// Invocations handed out and not yet answered, and the most there ever were at once.
    in_flight: usize,
    max_in_flight: usize,
    /// When the process first asked for an invocation: its init is over.
    first_poll: Option<std::time::Instant>,
}

/// One function under test: its Runtime API and its process.
pub struct LambdaProcess {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    new_event: Arc<Notify>,
    new_answer: Arc<Notify>,
    child: Mutex<tokio::process::Child>,
    spawned_at: std::time::Instant,
}

impl LambdaProcess {
    /// Starts `binary` (a path) with the Runtime API pointing here and `env` added.
    pub async fn start(binary: &str, env: &[(&str, String)]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(State::default()));
        let (new_event, new_answer) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        {
            let (state, new_event, new_answer) = (state.clone(), new_event.clone(), new_answer.clone());
            tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else { return };
                    let (state, new_event, new_answer) = (state.clone(), new_event.clone(), new_answer.clone());
                    tokio::spawn(async move {
                        let svc =
                            service_fn(move |req| serve(req, state.clone(), new_event.clone(), new_answer.clone()));
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), svc)
                            .await;
                    });
                }
            });
        }
        let name = std::path::Path::new(binary).file_name().and_then(|n| n.to_str()).unwrap_or("fn").to_owned();
        let mut cmd = tokio::process::Command::new(binary);
        cmd.env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", &name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "e2e")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_ENDPOINT_URL", crate::emulator_endpoint())
            // One key for every function of the test, as one stack's functions share theirs.
            .env("GATEHOUSE_APP_KEY", E2E_APP_KEY)
            // The emulator's queue delays in real time: no waiting out the notices' delay.
            .env("GATEHOUSE_NOTICE_DELAY_SECONDS", "0")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let spawned_at = std::time::Instant::now();
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
        Self { addr, state, new_event, new_answer, child: Mutex::new(child), spawned_at }
    }

    /// Waits (up to 30 s) for the process's first poll and says how long after its start it came:
    /// the cold start, init included, that Lambda bills before the first event.
    pub async fn init_time(&self) -> Duration {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(at) = self.state.lock().unwrap().first_poll {
                return at.duration_since(self.spawned_at);
            }
            assert!(tokio::time::Instant::now() < deadline, "no poll within 30 s from the function at {}", self.addr);
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// The process's peak resident memory so far (`VmHWM`), in KiB, where /proc says (Linux).
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let pid = self.child.lock().unwrap().id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// Sends one event with 30 s from hand-out to its deadline and waits (up to 2 minutes, since
    /// events may queue behind others) for the function's answer:
    /// `Ok(response)` or `Err(error report)`. Invocations may overlap (`&self`): a process started
    /// with `AWS_LAMBDA_MAX_CONCURRENCY` > 1 polls for several at once.
    pub async fn invoke(&self, event: Value) -> Result<Value, Value> {
        self.invoke_within(event, Duration::from_secs(30)).await
    }

    /// The most invocations this process has held at once (handed out, not yet answered).
    pub fn max_in_flight(&self) -> usize {
        self.state.lock().unwrap().max_in_flight
    }

    /// [`Self::invoke`] with the invocation's deadline `budget` after its hand-out, as Lambda sets
    /// it from the function's timeout.
    pub async fn invoke_within(&self, event: Value, budget: Duration) -> Result<Value, Value> {
        let id = uuid::Uuid::new_v4().to_string();
        self.state.lock().unwrap().pending.push_back((id.clone(), event, budget));
        self.new_event.notify_waiters();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(answer) = self.state.lock().unwrap().answers.remove(&id) {
                return answer;
            }
            if let Some(e) = self.state.lock().unwrap().init_error.clone() {
                panic!("the function failed to start: {e}");
            }
            let exited = self.child.lock().unwrap().try_wait();
            if let Ok(Some(status)) = exited {
                panic!("the function exited ({status}) before answering");
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no answer within 2 minutes from the function at {}",
                self.addr
            );
            let _ = tokio::time::timeout(Duration::from_millis(100), self.new_answer.notified()).await;
        }
    }
}

async fn serve(
    req: hyper::Request<Incoming>,
    state: Arc<Mutex<State>>,
    new_event: Arc<Notify>,
    new_answer: Arc<Notify>,
) -> Result<hyper::Response<Full<Bytes>>, std::convert::Infallible> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let parse = |b: &Bytes| {
        serde_json::from_slice::<Value>(b).unwrap_or(Value::String(String::from_utf8_lossy(b).into_owned()))
    };
    let ok = |status: u16, body: Bytes| {
        let mut r = hyper::Response::new(Full::new(body));
        *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
        r
    };
    if method == hyper::Method::GET && path == "/2018-06-01/runtime/invocation/next" {
        loop {
            let next = {
                let mut s = state.lock().unwrap();
                s.first_poll.get_or_insert_with(std::time::Instant::now);
                let next = s.pending.pop_front();
                if next.is_some() {
                    s.in_flight += 1;
                    s.max_in_flight = s.max_in_flight.max(s.in_flight);
                }
                next
            };
            if let Some((id, event, budget)) = next {
                let budget = i64::try_from(budget.as_millis()).unwrap_or(i64::MAX);
                let deadline = chrono::Utc::now().timestamp_millis().saturating_add(budget);
                let mut r = ok(200, Bytes::from(event.to_string()));
                let h = r.headers_mut();
                h.insert("lambda-runtime-aws-request-id", id.parse().unwrap());
                h.insert("lambda-runtime-deadline-ms", deadline.to_string().parse().unwrap());
                h.insert(
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:e2e".parse().unwrap(),
                );
                h.insert(
                    "lambda-runtime-trace-id",
                    "Root=1-00000000-000000000000000000000000;Sampled=0".parse().unwrap(),
                );
                h.insert("content-type", "application/json".parse().unwrap());
                return Ok(r);
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), new_event.notified()).await;
        }
    }
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        (hyper::Method::POST, ["2018-06-01", "runtime", "invocation", id, "response"]) => {
            answered(&state, id, Ok(parse(&body)));
            new_answer.notify_waiters();
            Ok(ok(202, Bytes::new()))
        }
        (hyper::Method::POST, ["2018-06-01", "runtime", "invocation", id, "error"]) => {
            answered(&state, id, Err(parse(&body)));
            new_answer.notify_waiters();
            Ok(ok(202, Bytes::new()))
        }
        (hyper::Method::POST, ["2018-06-01", "runtime", "init", "error"]) => {
            state.lock().unwrap().init_error = Some(String::from_utf8_lossy(&body).into_owned());
            Ok(ok(202, Bytes::new()))
        }
        _ => Ok(ok(404, Bytes::new())),
    }
}

fn answered(state: &Mutex<State>, id: &str, answer: Result<Value, Value>) {
    let mut s = state.lock().unwrap();
    s.in_flight = s.in_flight.saturating_sub(1);
    s.answers.insert(id.to_owned(), answer);
}

/// Where the Lambda binaries are: `GATEHOUSE_E2E_BIN_DIR` (set by `scripts/test`: `target/debug`
/// unless given), else `target/debug`. Missing binaries fail the test with instructions.
pub fn binary(name: &str) -> String {
    let dir = std::env::var("GATEHOUSE_E2E_BIN_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target/debug").to_owned());
    let path = format!("{dir}/{name}");
    assert!(
        std::path::Path::new(&path).exists(),
        "\n\nThe end-to-end tests run the Lambda binaries and {path} is missing.\nBuild them with `cargo build --workspace --bins` (scripts/test does), or set GATEHOUSE_E2E_BIN_DIR to target/release after `cargo build --release --bins`.\n\n"
    );
    path
}

/// The `GATEHOUSE_APP_KEY` every binary of the end-to-end tests runs with (a test value, 32 bytes).
pub const E2E_APP_KEY: &str = "base64:ZTJlLXRlc3Qta2V5LW5vdC1hLXNlY3JldC0zMi1ieXRlcw==";
