//! The `oauth` Lambda.

gatehouse_http::http_main!(signing, gatehouse_oauth::ROUTES);
