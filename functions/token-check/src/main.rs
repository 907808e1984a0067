//! The `token-check` Lambda: API Gateway's REQUEST authorizer. No password machinery is built,
//! so a cold start pays for nothing but the stores; it only reads, so it has no job queue and
//! the binary links no SQS client.

use aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request;
use gatehouse::services::access::Access;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    gatehouse::telemetry::init_tracing();
    let boot = gatehouse_aws::Boot::without_queue_from_env().await?;
    // The OAuth provider's public keys, when it has any here: its access tokens are accepted too.
    let keys = match gatehouse_aws::kms::verifying_keys(&boot.sdk, &boot.config.oauth).await? {
        // The keyring too, so a rotation's key is accepted once published (its public half is in
        // its record: no KMS call).
        Some(_) => Some(Arc::new(gatehouse_aws::kms::provider_keys(&boot.sdk, &boot.config, &boot.stores).await?)),
        None => None,
    };
    let access = Arc::new(Access::new(boot.stores, Arc::new(boot.config)));
    lambda_runtime::run_concurrent(service_fn(move |event: LambdaEvent<ApiGatewayV2CustomAuthorizerV2Request>| {
        let access = Arc::clone(&access);
        let keys = keys.clone();
        async move {
            let abilities = &access.config.route_abilities;
            let deadline = Some(event.context.deadline());
            let answer = gatehouse::values::deadline::within(
                deadline,
                gatehouse_token_check::authorize_with(&access, keys.as_deref(), abilities, event.payload),
            );
            Ok::<_, Error>(answer.await.unwrap_or_else(|| {
                tracing::warn!("authorizer gave up at its deadline; denying");
                gatehouse_token_check::deny()
            }))
        }
    }))
    .await
}
