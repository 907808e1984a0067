//! Logging set-up shared by every binary (HTTP functions, the authorizer, the worker, the CLI).

/// JSON logs on Lambda (one object per line, CloudWatch-friendly), plain text on stderr elsewhere;
/// `RUST_LOG` filters (default `info`). Calling it twice is harmless.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let result = if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        builder.json().with_current_span(true).without_time().try_init()
    } else {
        builder.with_writer(std::io::stderr).try_init()
    };
    // Already initialised (a test harness, a second call): keep the first.
    let _ = result;
}
