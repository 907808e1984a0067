//! The `tokens` Lambda: personal access tokens and cross-app handoffs over HTTP.

gatehouse_http::http_main!(gatehouse_tokens::ROUTES);
