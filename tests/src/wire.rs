//! AWS calls on the wire: a small HTTP proxy in front of the emulator that names each call
//! (`dynamodb:GetItem`, `sqs:SendMessage`, …) from its `X-Amz-Target` header (or its path, for
//! REST APIs such as SES v2), counts it, and forwards it, or, when told to, fails it.
//!
//! - [`counted_env`]: every call forwarded unchanged, so a test can assert exactly which calls an
//!   operation makes.
//! - [`faulty_env`]: a seeded fraction of calls fails the ways AWS fails ([`Fault`]): throttled,
//!   a 500, the connection dropped, the answer delayed past the client's attempt timeout, or the
//!   call forwarded and its answer then dropped, the case that makes a retry dangerous. A proxy
//!   rather than an SDK interceptor, so that the code under test runs with its own SDK clients,
//!   retry policy and timeouts exactly as on AWS, and so the request really reaches the emulator
//!   before its answer is lost (an interceptor can only pretend that).

use crate::TestEnv;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The value behind `m`, also when a thread panicked while holding it (a failing test's).
fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Calls seen by the proxy, by name.
#[derive(Default)]
pub struct WireCounter(Mutex<BTreeMap<String, usize>>, Mutex<std::collections::BTreeSet<(String, String)>>);

impl WireCounter {
    fn bump(&self, name: String) {
        *locked(&self.0).entry(name).or_default() += 1;
    }

    /// The calls counted since the last `take`, and a fresh start.
    pub fn take(&self) -> BTreeMap<String, usize> {
        std::mem::take(&mut *locked(&self.0))
    }

    /// What the calls since the last `take_needs` needed of IAM, as (resource, action) in the
    /// template's terms ([`iam_needs`]), and a fresh start.
    pub fn take_needs(&self) -> std::collections::BTreeSet<(String, String)> {
        std::mem::take(&mut *locked(&self.1))
    }
}

/// The logical name of a table or queue named `physical` (its deployment's prefix before it):
/// the longest logical name it ends with.
fn logical(physical: &str, names: &[&'static str]) -> String {
    names
        .iter()
        .filter(|n| physical.ends_with(*n))
        .max_by_key(|n| n.len())
        .map_or_else(|| format!("?{physical}"), |n| (*n).to_owned())
}

/// What IAM must grant for the AWS call `name` with `body`, as (resource, action) the way the
/// functions' `PERMISSIONS` write them (`table/users`, `table/sessions/index/by_user`,
/// `queue/jobs`): each item of a transaction or a batch is judged as its own action on its own
/// table (an `Update` in `TransactWriteItems` needs `dynamodb:UpdateItem`, a `Delete`
/// `dynamodb:DeleteItem`, a `ConditionCheck` `dynamodb:ConditionCheckItem`). Calls of other
/// services (SES, KMS) are left out.
pub fn iam_needs(name: &str, body: &[u8]) -> Vec<(String, String)> {
    let tables: Vec<&'static str> = gatehouse::schema::TABLES.iter().map(|t| t.logical).collect();
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let table = |v: &serde_json::Value| format!("table/{}", logical(v.as_str().unwrap_or_default(), &tables));
    let Some(op) = name.strip_prefix("dynamodb:") else {
        if !name.starts_with("sqs:") {
            return Vec::new();
        }
        let queue = json["QueueUrl"].as_str().or(json["QueueName"].as_str()).unwrap_or_default();
        let queue = queue.rsplit('/').next().unwrap_or_default();
        let queues = [gatehouse::schema::JOBS_QUEUE.logical, gatehouse::schema::JOBS_QUEUE.dead_letter_logical];
        return vec![(format!("queue/{}", logical(queue, &queues)), name.to_owned())];
    };
    match op {
        "TransactWriteItems" | "TransactGetItems" => json["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| {
                let (kind, inner) = item.as_object()?.iter().next()?;
                let action = match kind.as_str() {
                    "Put" => "PutItem",
                    "Update" => "UpdateItem",
                    "Delete" => "DeleteItem",
                    "ConditionCheck" => "ConditionCheckItem",
                    "Get" => "GetItem",
                    _ => return None,
                };
                Some((table(&inner["TableName"]), format!("dynamodb:{action}")))
            })
            .collect(),
        "BatchWriteItem" | "BatchGetItem" => json["RequestItems"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(t, _)| (table(&serde_json::Value::from(t.as_str())), name.to_owned()))
            .collect(),
        _ => {
            let mut resource = table(&json["TableName"]);
            if let Some(index) = json["IndexName"].as_str() {
                resource = format!("{resource}/index/{index}");
            }
            vec![(resource, name.to_owned())]
        }
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

async fn forward(target: &str, req: hyper::Request<Bytes>) -> Result<hyper::Response<Full<Bytes>>, String> {
    let (parts, body) = req.into_parts();
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

/// Work the proxy runs between a call landing and its answer ([`Faults::after_next_lands`]).
pub type Hook = Box<dyn FnOnce() -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// A hook waiting for a call to land: the text its body must hold (`None`: the next call).
type Landed = (Option<String>, Hook);

/// How the proxy fails a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// 400 `ThrottlingException` / `ProvisionedThroughputExceededException`; not forwarded.
    Throttle,
    /// 500 `InternalServerError`; not forwarded.
    ServerError,
    /// The connection closed without an answer; not forwarded.
    Drop,
    /// Forwarded, answered only after [`Faults::DELAY`], past the client's attempt timeout.
    Delay,
    /// Forwarded, then the connection closed without the answer: the write landed, the caller
    /// does not know.
    AfterWrite,
    /// A `TransactWriteItems` cancelled by racing transactions on its items (every reason
    /// `TransactionConflict`), as real DynamoDB answers under contention and the serialised
    /// emulator never does; not forwarded. Scripted only ([`Faults::fail_next`]).
    Conflict,
    /// 400 `TransactionInProgressException`: the same `ClientRequestToken` is still being applied
    /// (what DynamoDB answers an SDK retry that overtakes a slow first attempt); not forwarded.
    /// Scripted only.
    InProgress,
    /// A `dynamodb:Query` of a global secondary index (its body names an `IndexName`) answered as
    /// an index that has not caught up with recent writes: forwarded, then its `Items` emptied,
    /// `Count` and `ScannedCount` 0 and no `LastEvaluatedKey`. A query of a base table that draws
    /// it is forwarded unchanged and the fault waits for the next index query. Scripted only.
    LaggingIndex,
}

const KINDS: [Fault; 5] = [Fault::Throttle, Fault::ServerError, Fault::Drop, Fault::Delay, Fault::AfterWrite];

/// Which calls fail, decided by a seed: the n-th call of an operation fails, and how, as a hash of
/// (seed, operation, n) says, so a run whose calls come in the same order (a sequential test)
/// fails the same calls again. Off (0 ‰) until [`Faults::set_rate`].
pub struct Faults {
    pub seed: u64,
    per_mille: AtomicU32,
    /// How long a delayed answer waits, in ms ([`Faults::DELAY`] unless set).
    delay_ms: std::sync::atomic::AtomicU64,
    sequence: Mutex<HashMap<String, u64>>,
    injected: Mutex<BTreeMap<(String, Fault), usize>>,
    /// Scripted answers per call name, in order: a fault, or `None` to let that call through.
    scripted: Mutex<HashMap<String, std::collections::VecDeque<Option<Fault>>>>,
    /// While set, every AWS call fails with a 500 (nothing is forwarded): an outage.
    outage: std::sync::atomic::AtomicBool,
    /// Faults for calls whose body holds a text ([`Faults::fail_matching`]): name, text, kind,
    /// how many more.
    by_text: Mutex<Vec<(String, String, Fault, usize)>>,
    /// Run once a call of the named operation has landed, before its answer goes back.
    /// Each with the text the call's body must hold to be the one (`None`: the next call).
    landed: Mutex<HashMap<String, std::collections::VecDeque<Landed>>>,
    /// DynamoDB's idempotency of `TransactWriteItems`: the same `ClientRequestToken` within ten
    /// minutes answers the first success again without writing. The SDK sends one token for all
    /// retries of a call; moto ignores it, so the proxy keeps the promise AWS keeps.
    transactions: Mutex<HashMap<String, Bytes>>,
    /// Tokens whose first call is still with the emulator: a retry meanwhile is answered
    /// `TransactionInProgressException` (retryable), as DynamoDB answers it.
    in_flight: Mutex<std::collections::HashSet<String>>,
}

impl Faults {
    /// How long a delayed answer waits: past [`ATTEMPT_TIMEOUT`].
    pub const DELAY: Duration = Duration::from_millis(2_500);

    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            per_mille: AtomicU32::new(0),
            delay_ms: std::sync::atomic::AtomicU64::new(Self::DELAY.as_millis() as u64),
            sequence: Mutex::default(),
            injected: Mutex::default(),
            scripted: Mutex::default(),
            outage: std::sync::atomic::AtomicBool::new(false),
            by_text: Mutex::default(),
            landed: Mutex::default(),
            transactions: Mutex::default(),
            in_flight: Mutex::default(),
        }
    }

    /// Fails `per_mille` ‰ of the calls from now on (0 turns faults off).
    pub fn set_rate(&self, per_mille: u32) {
        self.per_mille.store(per_mille.min(1000), Ordering::SeqCst);
    }

    /// Delays answers by `delay` instead of [`Faults::DELAY`]: past the attempt timeout of a
    /// process with production timeouts (a Lambda binary).
    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms.store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// The faults injected so far, by call and kind.
    pub fn injected(&self) -> BTreeMap<(String, Fault), usize> {
        locked(&self.injected).clone()
    }

    /// Fails the next call of `name` (`dynamodb:PutItem`) with `kind`, whatever the rate; calls
    /// queue up.
    pub fn fail_next(&self, name: &str, kind: Fault) {
        locked(&self.scripted).entry(name.to_owned()).or_default().push_back(Some(kind));
    }

    /// Lets the next call of `name` through, whatever the rate, ahead of the faults scripted after
    /// it ([`Faults::fail_next`]): so a script can fail the second call of a name, not the first.
    pub fn pass_next(&self, name: &str) {
        locked(&self.scripted).entry(name.to_owned()).or_default().push_back(None);
    }

    /// Fails the next `times` calls of `name` whose request body contains `needle` (an update
    /// expression, say) with `kind`: the write meant, whatever other calls of that name come
    /// first or between.
    pub fn fail_matching(&self, name: &str, needle: &str, kind: Fault, times: usize) {
        let mut m = locked(&self.by_text);
        m.push((name.to_owned(), needle.to_owned(), kind, times));
    }

    /// The fault [`Faults::fail_matching`] scripted for this call, if any (counted down).
    fn matching(&self, name: &str, body: &[u8]) -> Option<Fault> {
        let mut m = locked(&self.by_text);
        let text = String::from_utf8_lossy(body);
        let i = m.iter().position(|(n, needle, _, left)| n == name && *left > 0 && text.contains(needle.as_str()))?;
        m[i].3 -= 1;
        let kind = m[i].2;
        drop(m);
        self.note(name, kind);
        Some(kind)
    }

    /// Starts (`true`) or ends an outage: meanwhile every AWS call fails with a 500, unforwarded.
    pub fn set_outage(&self, on: bool) {
        self.outage.store(on, Ordering::SeqCst);
    }

    /// Runs `hook` once the next call of `name` has landed at the emulator, before its answer goes
    /// back (or is dropped, with a scripted [`Fault::AfterWrite`]): another writer getting in
    /// between a write and the SDK's retry of it.
    pub fn after_next_lands(&self, name: &str, hook: Hook) {
        locked(&self.landed).entry(name.to_owned()).or_default().push_back((None, hook));
    }

    /// Scripts `faults` ([`Faults::fail_next`] each, in order) once the next call of `name` has
    /// landed: the calls after a write fail, the write itself does not.
    pub fn after_next_lands_fail(self: &Arc<Self>, name: &str, faults: &[(&str, Fault)]) {
        let f = self.clone();
        let faults: Vec<(String, Fault)> = faults.iter().map(|(call, kind)| (call.to_string(), *kind)).collect();
        let hook = move || -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
            Box::pin(async move {
                for (call, kind) in faults {
                    f.fail_next(&call, kind);
                }
            })
        };
        self.after_next_lands(name, Box::new(hook));
    }

    /// [`Faults::after_next_lands`] for the next call of `name` whose request body contains
    /// `needle` (an update expression, say): the write meant, whatever other calls of the same
    /// name come first.
    pub fn after_next_lands_with(&self, name: &str, needle: &str, hook: Hook) {
        let mut landed = locked(&self.landed);
        landed.entry(name.to_owned()).or_default().push_back((Some(needle.to_owned()), hook));
    }

    /// Whether (and how) to fail this call of `name`.
    fn decide(&self, name: &str) -> Option<Fault> {
        if self.outage.load(Ordering::SeqCst) && is_aws_call(name) {
            self.note(name, Fault::ServerError);
            return Some(Fault::ServerError);
        }
        let scripted = locked(&self.scripted).get_mut(name).and_then(|q| q.pop_front());
        match scripted {
            Some(Some(kind)) => {
                self.note(name, kind);
                return Some(kind);
            }
            Some(None) => return None,
            None => {}
        }
        let rate = u64::from(self.per_mille.load(Ordering::SeqCst));
        if rate == 0 || !is_aws_call(name) {
            return None;
        }
        let n = {
            let mut seq = locked(&self.sequence);
            let n = seq.entry(name.to_owned()).or_default();
            *n += 1;
            *n
        };
        let h = mix(self.seed ^ mix(fnv(name) ^ n));
        if h % 1000 >= rate {
            return None;
        }
        let kind = KINDS[((h >> 32) % KINDS.len() as u64) as usize];
        self.note(name, kind);
        Some(kind)
    }

    fn note(&self, name: &str, kind: Fault) {
        *locked(&self.injected).entry((name.to_owned(), kind)).or_default() += 1;
    }

    /// Puts back a scripted fault drawn by a call it does not apply to ([`Fault::LaggingIndex`]
    /// by a base-table query): first in line again, and not counted as injected.
    fn put_back(&self, name: &str, kind: Fault) {
        if let Some(n) = locked(&self.injected).get_mut(&(name.to_owned(), kind)) {
            *n -= 1;
        }
        locked(&self.scripted).entry(name.to_owned()).or_default().push_front(Some(kind));
    }
}

/// The calls the code makes; not the emulator's own test API.
fn is_aws_call(name: &str) -> bool {
    !name.contains("/moto-api")
}

/// SplitMix64's finaliser: a well-spread 64-bit hash of a 64-bit value.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The attempt timeout of the SDK clients in a [`faulty_env`]: shorter than production's
/// (`gatehouse_aws::TIMEOUTS`) so a delayed answer costs the test two seconds, not three, and
/// long enough that the emulator's own slowness is not taken for a fault.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(2_000);

/// An error answer as AWS's JSON protocols give it (DynamoDB, SQS, SES v2 alike read `__type`
/// or `x-amzn-ErrorType`).
fn aws_error(status: u16, code: &str, message: &str) -> hyper::Response<Full<Bytes>> {
    let body = serde_json::json!({ "__type": code, "message": message }).to_string();
    let mut resp = hyper::Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = resp.headers_mut();
    headers.insert("content-type", hyper::header::HeaderValue::from_static("application/x-amz-json-1.0"));
    if let Ok(v) = hyper::header::HeaderValue::from_str(code) {
        headers.insert("x-amzn-errortype", v);
    }
    resp
}

/// The cancellation of the transaction in `body` by racing transactions: one
/// `TransactionConflict` reason per item, as DynamoDB gives them.
fn conflict(body: &[u8]) -> hyper::Response<Full<Bytes>> {
    let items = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("TransactItems").and_then(|i| i.as_array()).map(Vec::len))
        .unwrap_or(1);
    let reason = serde_json::json!({ "Code": "TransactionConflict", "Message": "Transaction is ongoing for the item" });
    let body = serde_json::json!({
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "message": "Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict] (injected)",
        "CancellationReasons": vec![reason; items],
    });
    let mut resp = aws_error(400, "TransactionCanceledException", "");
    *resp.body_mut() = Full::new(Bytes::from(body.to_string()));
    resp
}

/// Whether a `dynamodb:Query` body reads a secondary index.
fn queries_an_index(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body).ok().is_some_and(|v| v.get("IndexName").is_some())
}

/// `resp` (a `Query`'s answer) as an index that has not caught up answers: no items, no next page.
async fn lagging(resp: hyper::Response<Full<Bytes>>) -> hyper::Response<Full<Bytes>> {
    if !resp.status().is_success() {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let Ok(serde_json::Value::Object(mut v)) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return hyper::Response::from_parts(parts, Full::new(bytes));
    };
    v.insert("Items".into(), serde_json::json!([]));
    v.insert("Count".into(), serde_json::json!(0));
    v.insert("ScannedCount".into(), serde_json::json!(0));
    v.remove("LastEvaluatedKey");
    let body = Bytes::from(serde_json::Value::Object(v).to_string());
    parts.headers.remove("x-amz-crc32");
    parts.headers.insert(hyper::header::CONTENT_LENGTH, hyper::header::HeaderValue::from(body.len()));
    hyper::Response::from_parts(parts, Full::new(body))
}

/// A proxy's answer: a response, or the connection closed without one.
type Answer = Result<hyper::Response<Full<Bytes>>, std::io::Error>;

async fn answer(
    target: &str,
    faults: Option<Arc<Faults>>,
    name: &str,
    req: hyper::Request<Incoming>,
    seen: &WireCounter,
) -> Answer {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(std::io::Error::other)?.to_bytes();
    locked(&seen.1).extend(iam_needs(name, &body));
    let mut fault = faults.as_ref().and_then(|f| f.decide(name).or_else(|| f.matching(name, &body)));
    match fault {
        Some(Fault::Throttle) => {
            let code = if name.starts_with("dynamodb:") {
                "ProvisionedThroughputExceededException"
            } else {
                "ThrottlingException"
            };
            return Ok(aws_error(400, code, "Rate exceeded (injected)"));
        }
        Some(Fault::ServerError) => return Ok(aws_error(500, "InternalServerError", "injected")),
        Some(Fault::Drop) => return Err(std::io::Error::other("connection dropped (injected)")),
        Some(Fault::InProgress) => {
            return Ok(aws_error(400, "TransactionInProgressException", "the same client request token is in flight"));
        }
        _ => {}
    }
    if fault == Some(Fault::Conflict) {
        return Ok(conflict(&body));
    }
    if fault == Some(Fault::LaggingIndex) && !queries_an_index(&body) {
        if let Some(f) = &faults {
            f.put_back(name, Fault::LaggingIndex);
        }
        fault = None;
    }
    let token = (name == "dynamodb:TransactWriteItems")
        .then(|| serde_json::from_slice::<serde_json::Value>(&body).ok())
        .flatten()
        .and_then(|v| v.get("ClientRequestToken").and_then(|t| t.as_str()).map(str::to_owned));
    if let (Some(f), Some(t)) = (&faults, &token) {
        if let Some(first) = locked(&f.transactions).get(t).cloned() {
            let mut resp = hyper::Response::new(Full::new(first));
            resp.headers_mut()
                .insert("content-type", hyper::header::HeaderValue::from_static("application/x-amz-json-1.0"));
            return Ok(resp);
        }
        if !locked(&f.in_flight).insert(t.clone()) {
            return Ok(aws_error(400, "TransactionInProgressException", "the same client request token is in flight"));
        }
    }
    // The landed hook this call runs, if any: the first queued for its name that it matches.
    let hook = faults.as_ref().and_then(|f| {
        let mut landed = locked(&f.landed);
        let queue = landed.get_mut(name)?;
        let text = String::from_utf8_lossy(&body);
        let i = queue.iter().position(|(needle, _)| needle.as_ref().is_none_or(|n| text.contains(n.as_str())))?;
        queue.remove(i).map(|(_, hook)| hook)
    });
    let request = hyper::Request::from_parts(parts, body);
    let work = {
        let (target, faults, token) = (target.to_owned(), faults.clone(), token.clone());
        let delay = (fault == Some(Fault::Delay))
            .then(|| faults.as_ref().map(|f| f.delay_ms.load(Ordering::SeqCst)))
            .flatten()
            .map(Duration::from_millis);
        async move {
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            let resp = forward(&target, request).await;
            if let (Some(f), Some(t)) = (&faults, &token) {
                if let Ok(r) = &resp
                    && r.status().is_success()
                {
                    let body = r.body().clone().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                    locked(&f.transactions).insert(t.clone(), body);
                }
                locked(&f.in_flight).remove(t);
            }
            resp
        }
    };
    // In a task of its own: a client that gives up (past its attempt timeout) closes the
    // connection and drops this future, and the request must still land and be accounted for.
    let resp = match tokio::spawn(work).await.map_err(|e| e.to_string()).and_then(|r| r) {
        Ok(resp) => resp,
        Err(why) => return Ok(bad_gateway(why)),
    };
    if let Some(hook) = hook {
        hook().await;
    }
    if fault == Some(Fault::AfterWrite) {
        return Err(std::io::Error::other("answer dropped after the call was forwarded (injected)"));
    }
    if fault == Some(Fault::LaggingIndex) {
        return Ok(lagging(resp).await);
    }
    Ok(resp)
}

/// Starts the proxy in front of `emulator` (`http://127.0.0.1:PORT`) on a free port of
/// 127.0.0.1, failing calls as `faults` says (none if `None`); it lives as long as the test's
/// runtime. Returns its endpoint and its counter.
pub async fn start_proxy(emulator: &str, faults: Option<Arc<Faults>>) -> (String, Arc<WireCounter>) {
    let target = emulator.trim_start_matches("http://").trim_end_matches('/').to_owned();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.expect("a free port");
    let addr = listener.local_addr().expect("an address");
    let counter = Arc::new(WireCounter::default());
    let seen = counter.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (target, seen, faults) = (target.clone(), seen.clone(), faults.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let (target, seen, faults) = (target.clone(), seen.clone(), faults.clone());
                    async move {
                        let name = call_name(&req);
                        seen.bump(name.clone());
                        answer(&target, faults, &name, req, &seen).await
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
    let (endpoint, counter) = start_proxy(&crate::emulator_endpoint(), None).await;
    // Without the SDK's retries: a retried call would count twice.
    let env = TestEnv::aws_at(&endpoint, false).await;
    counter.take();
    counter.take_needs();
    (env, counter)
}

/// A test world on the emulator whose every AWS call goes through a fault-injecting proxy, with
/// the SDK's standard retries and production's timeouts (`gatehouse_aws::timeouts`). Faults are
/// off until the test calls [`Faults::set_rate`] or scripts them (migrating happens without
/// them). Returns the SDK configuration too, for clients the test builds itself (an SES mailer).
/// Production's attempt timeout, not a shorter one: a test that scripts its faults must not have
/// one added by a loaded machine (the emulator serialises DynamoDB, and a suite run queues on it).
pub async fn faulty_env(seed: u64) -> (TestEnv, Arc<Faults>, gatehouse_aws::SdkConfig) {
    faulty_env_timed(seed, gatehouse_aws::timeouts()).await
}

/// [`faulty_env`] with the attempt timeout [`ATTEMPT_TIMEOUT`]: for the fault runs, whose random
/// [`Fault::Delay`]s each cost the test one attempt timeout.
pub async fn faulty_env_hasty(seed: u64) -> (TestEnv, Arc<Faults>, gatehouse_aws::SdkConfig) {
    let timeouts = gatehouse_aws::timeouts().to_builder().operation_attempt_timeout(ATTEMPT_TIMEOUT).build();
    faulty_env_timed(seed, timeouts).await
}

async fn faulty_env_timed(
    seed: u64,
    timeouts: aws_config::timeout::TimeoutConfig,
) -> (TestEnv, Arc<Faults>, gatehouse_aws::SdkConfig) {
    let faults = Arc::new(Faults::new(seed));
    let (endpoint, _) = start_proxy(&crate::emulator_endpoint(), Some(faults.clone())).await;
    let sdk = crate::sdk_config_with(&endpoint, timeouts).await;
    (TestEnv::aws_with(&sdk).await, faults, sdk)
}
