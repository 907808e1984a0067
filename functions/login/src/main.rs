//! The `login` Lambda: built once, then every request goes to [`gatehouse_login::handle`].

gatehouse_web::http_main!(gatehouse_login::handle);
