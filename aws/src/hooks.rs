//! The blocking hooks' calls (#32, `gatehouse::services::hooks`): an HTTP hook is a `POST` of the
//! request as JSON through the process's outbound client; a Lambda hook an `Invoke`
//! (`RequestResponse`) of the function with the request as its payload. Either within the hook's
//! timeout; a function error, a status other than 2xx, an answer that is not JSON: a failure.

use crate::outbound::HttpFetch;
use async_trait::async_trait;
use aws_sdk_lambda::primitives::Blob;
use gatehouse::services::hooks::{HookCaller, HookTarget};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Calls HTTP hooks always, Lambda hooks when built with an SDK configuration.
pub struct Hooks {
    http: Arc<HttpFetch>,
    lambda: Option<aws_sdk_lambda::Client>,
}

impl Hooks {
    pub fn new(sdk: Option<&aws_config::SdkConfig>) -> Self {
        Self { http: crate::outbound::client(), lambda: sdk.map(aws_sdk_lambda::Client::new) }
    }
}

#[async_trait]
impl HookCaller for Hooks {
    async fn call(&self, target: &HookTarget, request: &Value, timeout: Duration) -> Result<Value, String> {
        match target {
            HookTarget::Http(url) => self.http.post_for_json(url, request, timeout).await,
            HookTarget::Lambda(function) => {
                let lambda = self.lambda.as_ref().ok_or("no AWS configuration to invoke a Lambda hook")?;
                let payload = serde_json::to_vec(request).map_err(|e| e.to_string())?;
                let call = lambda.invoke().function_name(function).payload(Blob::new(payload)).send();
                let out = tokio::time::timeout(timeout, call)
                    .await
                    .map_err(|_| "timed out".to_owned())?
                    .map_err(|e| format!("Invoke: {}", aws_sdk_lambda::error::DisplayErrorContext(e)))?;
                if let Some(error) = out.function_error() {
                    return Err(format!("the function failed ({error})"));
                }
                let body = out.payload().map(|b| b.as_ref()).unwrap_or_default();
                serde_json::from_slice(body).map_err(|_| "the function's answer is not JSON".to_owned())
            }
        }
    }
}

/// The process's hook caller: HTTP hooks, and Lambda hooks with `sdk`.
pub fn caller(sdk: Option<&aws_config::SdkConfig>) -> Arc<dyn HookCaller> {
    Arc::new(Hooks::new(sdk))
}
