//! The load client of `scripts/load`: users going through sign-ins, token checks, session checks,
//! forgot-password and resets against a running `gatehouse serve`, for a set time, from their own
//! loopback addresses (127.0.x.y: the limits count per client address, as they would for people).
//! Prints requests, throughput, p50/p99/max per route, answers by status, and the server's
//! resident memory sampled once a second.
//!
//! `load --url http://127.0.0.1:PORT --pid PID --mail-log FILE [--seconds 60] [--users 64]
//! [--concurrency 16]`. `--mail-log` is the server's standard output, where the log mailer
//! prints the reset links the users follow.
//!
//! Each worker owns its users, so a user's steps never race each other (a reset ends the user's
//! sessions and tokens; the worker then signs in again). A user signs in at most every 20 s and
//! asks for a reset link at most every 70 s, as people do: the limits (5 sign-ins a minute per
//! address and account, one reset link a minute) are not what is measured. A 429 is counted
//! apart; any other refusal of a step that should succeed, and every 5xx, is an error.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PASSWORDS: [&str; 2] = ["correct horse battery staple 42", "an entirely new passphrase 2026"];

struct Args {
    addr: SocketAddr,
    pid: Option<u32>,
    mail_log: String,
    seconds: u64,
    users: usize,
    concurrency: usize,
}

fn args() -> Result<Args, String> {
    let mut map = BTreeMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().ok_or_else(|| format!("{k} needs a value"))?;
        map.insert(k.trim_start_matches("--").to_owned(), v);
    }
    let url = map.get("url").ok_or("--url is required")?;
    let addr = url.trim_start_matches("http://").trim_end_matches('/').parse().map_err(|e| format!("--url: {e}"))?;
    let num = |k: &str, d: u64| map.get(k).map_or(Ok(d), |v| v.parse::<u64>().map_err(|e| format!("--{k}: {e}")));
    Ok(Args {
        addr,
        pid: map.get("pid").and_then(|p| p.parse().ok()),
        mail_log: map.get("mail-log").cloned().ok_or("--mail-log is required")?,
        seconds: num("seconds", 60)?,
        users: num("users", 64)? as usize,
        concurrency: num("concurrency", 16)? as usize,
    })
}

struct Answer {
    status: u16,
    cookies: Vec<String>,
    body: Value,
}

/// One request on a fresh connection from `from` (a loopback address of the user's own).
async fn call(
    to: SocketAddr,
    from: Ipv4Addr,
    method: &str,
    path: &str,
    auth: &Auth,
    body: Option<Value>,
) -> Result<Answer, String> {
    let socket = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket.bind(SocketAddr::new(IpAddr::V4(from), 0)).map_err(|e| format!("bind {from}: {e}"))?;
    let stream = socket.connect(to).await.map_err(|e| format!("connect: {e}"))?;
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", to.to_string())
        .header("user-agent", "gatehouse-load/1.0")
        .header("accept", "application/json");
    match auth {
        Auth::None => {}
        Auth::Cookie(c) => req = req.header("cookie", c.as_str()),
        Auth::Bearer(t) => req = req.header("authorization", format!("Bearer {t}")),
    }
    let body = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            Bytes::from(b.to_string())
        }
        None => Bytes::new(),
    };
    let resp =
        send.send_request(req.body(Full::new(body)).map_err(|e| e.to_string())?).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let cookies = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter(|c| !c.contains("Max-Age=0"))
        .filter_map(|c| c.split(';').next().map(str::to_owned))
        .collect();
    let bytes = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(Answer { status, cookies, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) })
}

enum Auth {
    None,
    Cookie(String),
    Bearer(String),
}

/// What one user holds, and when they last did the paced steps.
struct User {
    email: String,
    ip: Ipv4Addr,
    password: usize,
    cookie: String,
    token: String,
    last_login: Option<Instant>,
    last_forgot: Option<Instant>,
    /// Reset mails seen for this user when the link was asked for.
    mails_before: usize,
}

#[derive(Default)]
struct Stats {
    latencies: BTreeMap<&'static str, Vec<Duration>>,
    statuses: BTreeMap<(&'static str, u16), usize>,
    errors: Vec<String>,
}

struct Run {
    to: SocketAddr,
    mail_log: String,
    stats: Mutex<Stats>,
}

impl Run {
    /// Makes the call, records its latency and status under `route`, and counts it as an error
    /// when the status is not `expect` (429 is counted, never an error).
    async fn step(
        &self,
        route: &'static str,
        user: &User,
        (method, path): (&str, &str),
        auth: Auth,
        body: Option<Value>,
        expect: u16,
    ) -> Option<Answer> {
        let started = Instant::now();
        let answer = call(self.to, user.ip, method, path, &auth, body).await;
        let took = started.elapsed();
        let mut s = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        match answer {
            Ok(a) => {
                s.latencies.entry(route).or_default().push(took);
                *s.statuses.entry((route, a.status)).or_default() += 1;
                if a.status != expect && a.status != 429 {
                    s.errors.push(format!("{route} for {}: {} {}", user.email, a.status, a.body));
                }
                (a.status == expect).then_some(a)
            }
            Err(e) => {
                *s.statuses.entry((route, 0)).or_default() += 1;
                s.errors.push(format!("{route}: {e}"));
                None
            }
        }
    }

    async fn sign_in(&self, u: &mut User) -> bool {
        u.last_login = Some(Instant::now());
        let body = json!({ "email": u.email, "password": PASSWORDS[u.password] });
        let Some(a) = self.step("POST /login", u, ("POST", "/login"), Auth::None, Some(body), 200).await else {
            return false;
        };
        u.cookie = a.cookies.join("; ");
        let body = json!({ "name": "load", "abilities": ["*"], "expires_in_minutes": 600 });
        let cookie = Auth::Cookie(u.cookie.clone());
        match self.step("POST /tokens", u, ("POST", "/tokens"), cookie, Some(body), 201).await {
            Some(a) => {
                u.token = a.body["token"].as_str().unwrap_or_default().to_owned();
                true
            }
            None => false,
        }
    }

    /// The reset mails printed for `email` so far, newest last: their tokens.
    fn reset_tokens(&self, email: &str) -> Vec<String> {
        let log = std::fs::read_to_string(&self.mail_log).unwrap_or_default();
        log.split("──── mail")
            .filter(|m| m.contains(&format!("To: {email}\n")) && m.contains("Subject: Reset your password"))
            .filter_map(|m| {
                let i = m.find("token=")? + 6;
                m.get(i..i + 64).map(str::to_owned)
            })
            .collect()
    }

    /// One step for `u`, chosen by `dice` (0..100).
    async fn act(&self, u: &mut User, dice: u64) {
        let waited = |at: Option<Instant>, secs: u64| at.is_none_or(|t| t.elapsed() > Duration::from_secs(secs));
        let link = (u.last_forgot.is_some()).then(|| self.reset_tokens(&u.email)).filter(|t| t.len() > u.mails_before);
        if let Some(tokens) = link {
            let next = 1 - u.password;
            let body = json!({
                "email": u.email, "token": tokens.last(), "password": PASSWORDS[next], "password_confirmation": PASSWORDS[next]
            });
            let route = ("POST", "/reset-password");
            if self.step("POST /reset-password", u, route, Auth::None, Some(body), 200).await.is_some() {
                u.password = next;
            }
            u.last_forgot = None;
            u.mails_before = tokens.len();
            // The reset ended the user's sessions and tokens: signing in again is the next step.
            u.last_login = None;
            self.sign_in(u).await;
        } else if dice < 10 && waited(u.last_login, 20) {
            self.sign_in(u).await;
        } else if dice < 14 && u.last_forgot.is_none() && waited(u.last_login, 20) {
            u.mails_before = self.reset_tokens(&u.email).len();
            let body = json!({ "email": u.email });
            let route = ("POST", "/forgot-password");
            if self.step("POST /forgot-password", u, route, Auth::None, Some(body), 202).await.is_some() {
                u.last_forgot = Some(Instant::now());
            }
        } else if dice < 57 {
            let auth = Auth::Bearer(u.token.clone());
            self.step("GET /user (token)", u, ("GET", "/user"), auth, None, 200).await;
        } else {
            let auth = Auth::Cookie(u.cookie.clone());
            self.step("GET /user (session)", u, ("GET", "/user"), auth, None, 200).await;
        }
        if u.last_forgot.is_some_and(|t| t.elapsed() > Duration::from_secs(70)) {
            self.stats.lock().unwrap_or_else(|e| e.into_inner()).errors.push(format!("no reset mail for {}", u.email));
            u.last_forgot = None;
        }
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args = args()?;
    let run = Arc::new(Run { to: args.addr, mail_log: args.mail_log.clone(), stats: Mutex::default() });
    let tag = uuid::Uuid::new_v4().simple().to_string()[..6].to_owned();
    // Registration, each user from its own address (the limits count registrations per address).
    let mut users = Vec::new();
    for i in 0..args.users {
        let ip = Ipv4Addr::new(127, 0, 1 + (i / 250) as u8, 1 + (i % 250) as u8);
        let mut u = User {
            email: format!("load-{tag}-{i}@example.com"),
            ip,
            password: 0,
            cookie: String::new(),
            token: String::new(),
            last_login: None,
            last_forgot: None,
            mails_before: 0,
        };
        let body = json!({
            "name": format!("Load {i}"), "email": u.email, "password": PASSWORDS[0], "password_confirmation": PASSWORDS[0]
        });
        run.step("POST /register", &u, ("POST", "/register"), Auth::None, Some(body), 201).await;
        if !run.sign_in(&mut u).await {
            return Err(format!("{} could not sign in after registering", u.email));
        }
        users.push(u);
    }
    let setup = run.stats.lock().unwrap_or_else(|e| e.into_inner()).errors.len();
    if setup > 0 {
        return Err(format!("{setup} errors while registering the users"));
    }

    let started = Instant::now();
    let until = started + Duration::from_secs(args.seconds);
    let rss = Arc::new(Mutex::new(Vec::new()));
    if let Some(pid) = args.pid {
        let rss = rss.clone();
        tokio::spawn(async move {
            loop {
                if let Some(kib) = rss_kib(pid) {
                    rss.lock().unwrap_or_else(|e| e.into_inner()).push((started.elapsed().as_secs(), kib));
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
    let mut owned: Vec<Vec<User>> = (0..args.concurrency).map(|_| Vec::new()).collect();
    for (i, u) in users.into_iter().enumerate() {
        owned[i % args.concurrency].push(u);
    }
    let mut workers = Vec::new();
    for (w, mut mine) in owned.into_iter().enumerate().filter(|(_, m)| !m.is_empty()) {
        let run = run.clone();
        workers.push(tokio::spawn(async move {
            let mut state = 0x9E37_79B9_7F4A_7C15_u64 ^ (w as u64 + 1);
            while Instant::now() < until {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let n = mine.len() as u64;
                let u = &mut mine[(state % n) as usize];
                run.act(u, (state >> 32) % 100).await;
            }
        }));
    }
    for w in workers {
        w.await.map_err(|e| e.to_string())?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let stats = std::mem::take(&mut *run.stats.lock().unwrap_or_else(|e| e.into_inner()));

    let total: usize = stats.latencies.iter().filter(|(r, _)| **r != "POST /register").map(|(_, l)| l.len()).sum();
    println!(
        "load | {} users, {} at once, {:.0} s: {total} requests, {:.1} requests/s",
        args.users,
        args.concurrency,
        elapsed,
        total as f64 / elapsed
    );
    println!(
        "load | {:<22} | {:>8} | {:>8} | {:>8} | {:>8} | answers",
        "route", "requests", "p50 ms", "p99 ms", "max ms"
    );
    for (route, lat) in &stats.latencies {
        let mut lat = lat.clone();
        lat.sort_unstable();
        let answers: Vec<String> = stats
            .statuses
            .iter()
            .filter(|((r, _), _)| r == route)
            .map(|((_, s), n)| format!("{}×{n}", if *s == 0 { "no answer".to_owned() } else { s.to_string() }))
            .collect();
        println!(
            "load | {route:<22} | {:>8} | {:>8.1} | {:>8.1} | {:>8.1} | {}",
            lat.len(),
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            percentile(&lat, 1.0),
            answers.join(", ")
        );
    }
    let rss = rss.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if !rss.is_empty() {
        let step = (rss.len() / 10).max(1);
        let series: Vec<String> =
            rss.iter().step_by(step).map(|(t, kib)| format!("{t}s {:.1}", *kib as f64 / 1024.0)).collect();
        println!("load | server RSS MiB over the run: {}", series.join(", "));
        let max = rss.iter().map(|(_, k)| *k).max().unwrap_or(0);
        println!("load | server RSS MiB peak {:.1}", max as f64 / 1024.0);
    }
    println!("load | errors (not 429): {}", stats.errors.len());
    for e in stats.errors.iter().take(10) {
        println!("load |   {e}");
    }
    if stats.errors.is_empty() { Ok(()) } else { Err(format!("{} errors", stats.errors.len())) }
}
