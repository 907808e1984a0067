//! The outbound calls a relying party makes (discovery, JWKS, the token endpoint, GitHub's API):
//! a trait here, so the domain makes no network call of its own; `gatehouse-http` implements it
//! over HTTPS with timeouts and a size limit, and tests give answers of their own.

use async_trait::async_trait;
use serde_json::Value;
use thiserror::Error;

/// Largest answer read from a provider.
pub const MAX_ANSWER: usize = 256 * 1024;

#[derive(Debug, Error)]
pub enum FetchError {
    #[error("the provider could not be reached: {0}")]
    Unreachable(String),
    /// An answer other than 2xx (its JSON body, when it had one: OAuth's `error`).
    #[error("the provider answered {status}")]
    Status { status: u16, body: Option<Value> },
    #[error("the provider's answer is not JSON, or too large")]
    Unreadable,
}

/// A form field of a POST.
pub type Field = (&'static str, String);

#[async_trait]
pub trait Fetch: Send + Sync {
    /// `GET url` (`Accept: application/json`), with a bearer token when given.
    async fn get_json(&self, url: &str, bearer: Option<&str>) -> Result<Value, FetchError>;
    /// `POST url` of `application/x-www-form-urlencoded` fields, with HTTP Basic credentials
    /// when given (`client_secret_basic`: each part form-encoded first, RFC 6749 §2.3.1).
    async fn post_form(&self, url: &str, fields: &[Field], basic: Option<(&str, &str)>) -> Result<Value, FetchError>;
}
