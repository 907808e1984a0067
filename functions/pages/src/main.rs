gatehouse_http::http_main!(handler = gatehouse_pages::handle);
