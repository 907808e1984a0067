//! The `token-check` Lambda: API Gateway's REQUEST authorizer. No password machinery is built,
//! so a cold start pays for nothing but the stores.

use aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    gatehouse_http::init_tracing();
    let app = gatehouse_http::App::from_env(false).await?;
    let abilities = gatehouse_token_check::RouteAbilities::from_env()?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<ApiGatewayV2CustomAuthorizerV2Request>| {
        let (app, abilities) = (&app, &abilities);
        async move { Ok::<_, Error>(gatehouse_token_check::authorize(app, abilities, event.payload).await) }
    }))
    .await
}
