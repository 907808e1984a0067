//! The `password-reset` Lambda.

gatehouse_web::http_main!(gatehouse_password_reset::handle);
