//! The second floor of `scripts/bench`: a lambda_http binary that builds the AWS SDK's
//! configuration and a DynamoDB client at init, as every gatehouse function does, and makes one
//! GetItem per event (the first pays for the connection), built with the same profile.

use lambda_http::{Body, Error, Request, Response, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    // The HTTP client every gatehouse function uses (rustls on ring): the SDK crates are built
    // without one of their own.
    let sdk = gatehouse_aws::sdk_defaults().load().await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    lambda_http::run(service_fn(|_: Request| {
        let client = client.clone();
        async move {
            let key = aws_sdk_dynamodb::types::AttributeValue::S("bench".to_owned());
            let found = client.get_item().table_name("bare-bench").key("id", key).send().await.is_ok();
            Ok::<_, Error>(Response::new(Body::from(if found { "found" } else { "absent" })))
        }
    }))
    .await
}
