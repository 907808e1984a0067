//! The `tokens` Lambda: personal access tokens and cross-app handoffs over HTTP.

gatehouse_web::http_main!(gatehouse_token_check::handle);
