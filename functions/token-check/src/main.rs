//! The `token-check` Lambda: API Gateway's REQUEST authorizer. No password machinery is built,
//! so a cold start pays for nothing but the stores.

use aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request;
use gatehouse::access::Access;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    gatehouse::telemetry::init_tracing();
    let boot = gatehouse::aws::Boot::from_env().await?;
    let access = Access::new(boot.stores, Arc::new(boot.config));
    lambda_runtime::run(service_fn(|event: LambdaEvent<ApiGatewayV2CustomAuthorizerV2Request>| {
        let (access, abilities) = (&access, &access.config.route_abilities);
        async move { Ok::<_, Error>(gatehouse_token_check::authorize(access, abilities, event.payload).await) }
    }))
    .await
}
