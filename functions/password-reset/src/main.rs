//! The `password-reset` Lambda.

gatehouse_http::http_main!(gatehouse_password_reset::ROUTES);
