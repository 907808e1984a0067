//! A webhook receiver on 127.0.0.1 for the tests: it keeps every request it takes (headers and
//! body) and answers each with the next scripted status (204 when none is scripted), over plain
//! HTTP/1.1 with keep-alive, as the delivery client speaks it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// How the receiver answers one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// This status, no body.
    Status(u16),
    /// 200 with this body (`application/json`, whatever it holds).
    Body(String),
    /// Nothing for this long, then 204.
    Hang(std::time::Duration),
    /// These bytes, verbatim (a whole HTTP/1.1 response).
    Raw(String),
}

#[derive(Default)]
struct State {
    got: Vec<Received>,
    refused: usize,
    script: VecDeque<Reply>,
}

/// The receiver; it stops when dropped with the test's runtime.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl Receiver {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let url = format!("http://127.0.0.1:{}/hooks", listener.local_addr().unwrap().port());
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, shared.clone()));
            }
        });
        Self { url, state }
    }

    /// Answers the next requests with these statuses, in order.
    pub fn answer(&self, statuses: &[u16]) {
        self.state.lock().unwrap().script.extend(statuses.iter().map(|s| Reply::Status(*s)));
    }

    /// Answers the next requests with these replies, in order (a hook's answers).
    pub fn reply(&self, replies: &[Reply]) {
        self.state.lock().unwrap().script.extend(replies.iter().cloned());
    }

    /// The requests answered 2xx so far (the deliveries taken), in order.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().got.clone()
    }

    /// How many requests were answered otherwise (scripted).
    pub fn refused(&self) -> usize {
        self.state.lock().unwrap().refused
    }

    /// The bodies of [`Receiver::received`], as JSON.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.received().iter().map(Received::json).collect()
    }
}

async fn serve(mut socket: tokio::net::TcpStream, state: Arc<Mutex<State>>) {
    let mut buf = Vec::new();
    loop {
        // The head.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 8192];
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let mut lines = head.split("\r\n");
        let path = lines.next().and_then(|l| l.split(' ').nth(1)).unwrap_or("").to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let len: usize =
            headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
        while buf.len() < head_end + len {
            let mut chunk = [0u8; 8192];
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = buf[head_end..head_end + len].to_vec();
        buf.drain(..head_end + len);
        let reply = {
            let mut s = state.lock().unwrap();
            let reply = s.script.pop_front().unwrap_or(Reply::Status(204));
            match reply {
                Reply::Status(status) if !(200..300).contains(&status) => s.refused += 1,
                _ => s.got.push(Received { path, headers, body }),
            }
            reply
        };
        let answer = match reply {
            Reply::Status(status) => format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n"),
            Reply::Body(body) => format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            ),
            Reply::Hang(d) => {
                tokio::time::sleep(d).await;
                "HTTP/1.1 204 X\r\ncontent-length: 0\r\n\r\n".to_owned()
            }
            Reply::Raw(raw) => raw,
        };
        if socket.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}
