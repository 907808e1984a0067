//! The `login` Lambda: built once, then every request goes through [`gatehouse_login::ROUTES`].

gatehouse_http::http_main!(gatehouse_login::ROUTES);
