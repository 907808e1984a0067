//! The verification link's landing: as the signed-in user, or after signing in.

use crate::api;
use crate::reset::{link_cookie, read_link_cookie, verify_cookie_name};
use crate::sign_in::clear_cookie;
use crate::view::{self, Frame};
use gatehouse_http::{Call, Reply};
use lambda_http::RequestExt;
use lambda_http::http::{Method, StatusCode};
use maud::html;
use serde_json::json;

/// `GET /account/verify-email/{id}/{hash}?expires=…&signature=…` (the mailed link): into a
/// cookie, then the same page without them.
pub async fn verify_landing(call: Call<'_>) -> Reply {
    let q = call.req.query_string_parameters();
    let link = json!({
        "id": call.param(0),
        "hash": call.param(1),
        "expires": q.first("expires").unwrap_or_default(),
        "signature": q.first("signature").unwrap_or_default(),
    });
    let max_age = call.app.config.verification.expire.num_seconds();
    Ok(view::redirect("/account/verify-email", vec![link_cookie(&verify_cookie_name(&call), &link, max_age)]))
}

/// `GET /account/verify-email`: `GET /email/verify/…` for the link in the cookie, as the signed-in
/// user (sign in first, then back here).
pub async fn verify(call: Call<'_>) -> Reply {
    let name = verify_cookie_name(&call);
    let Some(link) = read_link_cookie(&call, &name) else {
        return Ok(view::redirect("/account", Vec::new()));
    };
    let part = |k: &str| {
        let v = link[k].as_str().unwrap_or_default();
        form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
    };
    let path = format!(
        "/email/verify/{}/{}?expires={}&signature={}",
        part("id"),
        part("hash"),
        part("expires"),
        part("signature")
    );
    let reply = api::call(call.app, call.req, Method::GET, &path, None).await;
    match reply.status {
        s if s.is_success() => Ok(view::redirect("/account?notice=verified", vec![clear_cookie(&name)])),
        StatusCode::UNAUTHORIZED => Ok(view::redirect("/account/sign-in?notice=verify-sign-in", Vec::new())),
        _ => {
            let message = reply.message();
            let body = html! { p { a href="/account" { "Go to your account" } " to send a new link." } };
            let f = Frame {
                app_name: &call.app.config.app_name,
                title: "This link does not work",
                signed_in: true,
                notice: None,
                error: Some(message),
            };
            Ok(view::html(reply.status, view::layout(&f, body), vec![clear_cookie(&name)]))
        }
    }
}
