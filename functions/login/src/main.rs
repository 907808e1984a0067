//! The `login` Lambda: built once, then every request goes to [`gatehouse_login::handle`].

gatehouse_http::http_main!(gatehouse_login::handle);
