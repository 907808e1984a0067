#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    gatehouse::telemetry::init_tracing();
    let app = gatehouse_http::App::from_env().await?;
    lambda_http::run(lambda_http::service_fn(|req: lambda_http::Request| {
        let app = &app;
        async move { Ok::<_, lambda_http::Error>(gatehouse_pages::handle(app, req).await) }
    }))
    .await
}
