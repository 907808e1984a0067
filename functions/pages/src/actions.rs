//! What the account page's forms do: each a call of the API, then the account page again (with
//! a notice after a redirect, or with the failed section's errors).

use crate::account::{State, render, to_sign_in};
use crate::form::form_or_refusal;
use crate::view::{self, Form};
use crate::{Posted, api, failed, renewing_csrf};
use gatehouse_http::views::NewTokenView;
use gatehouse_http::{Call, Reply};
use lambda_http::http::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Calls the API; on success to the account page with `done`, else the page again with the
/// section's form (id prefix `section`) refilled with `keep` and the API's errors.
pub(crate) async fn act(
    call: &Call<'_>,
    method: Method,
    path: &str,
    body: Option<Value>,
    done: &str,
    section: (&'static str, Form),
) -> Reply {
    let reply = api::call(call.app, call.req, method, path, body).await;
    if reply.ok() {
        return Ok(view::redirect(&format!("/account?notice={done}"), reply.cookies));
    }
    refused(call, &reply, section).await
}

pub(crate) async fn refused(call: &Call<'_>, reply: &api::ApiReply, (prefix, form): (&'static str, Form)) -> Reply {
    if reply.status == StatusCode::UNAUTHORIZED {
        return to_sign_in();
    }
    let (form, failure) = failed(form, reply);
    let state = State {
        error: Some(failure.message),
        forms: BTreeMap::from([(prefix, form)]),
        confirmation_required: crate::passwordless::confirmation_required(reply),
        ..State::default()
    };
    render(call, state, failure.status).await
}

/// The password in `p` confirmed (`POST /user/confirm-password`), or the API's answer why not.
/// A form without the field (that of an account without a password) confirms nothing: the
/// action relies on the session's recent confirmation (by mail), which the API judges.
pub(crate) async fn confirm_password(call: &Call<'_>, p: &Posted) -> Result<(), api::ApiReply> {
    if p.get("password").is_none() {
        return Ok(());
    }
    let reply = api::call(
        call.app,
        call.req,
        Method::POST,
        "/user/confirm-password",
        Some(json!({ "password": p.text("password") })),
    )
    .await;
    if reply.ok() { Ok(()) } else { Err(reply) }
}

/// The password in `p` confirmed, then the API called: its answer when both succeeded, else the
/// account page again with the section's (id prefix `section`) errors.
pub(crate) async fn confirmed_call(
    call: &Call<'_>,
    p: &Posted,
    method: Method,
    path: &str,
    section: &'static str,
) -> Result<api::ApiReply, Reply> {
    let reply = match confirm_password(call, p).await {
        Ok(()) => api::call(call.app, call.req, method, path, None).await,
        Err(refusal) => refusal,
    };
    if reply.ok() { Ok(reply) } else { Err(refused(call, &reply, (section, Form::default())).await) }
}

/// `POST /account/verification`: `POST /email/verification-notification`.
pub async fn resend_verification(call: Call<'_>) -> Reply {
    form_or_refusal!(call);
    act(
        &call,
        Method::POST,
        "/email/verification-notification",
        None,
        "verification-sent",
        ("profile-", Form::default()),
    )
    .await
}

/// `POST /account/profile`: `PUT /user/profile-information`.
pub async fn profile(call: Call<'_>) -> Reply {
    let p = form_or_refusal!(call);
    let form = Form::default().with_value("name", p.get("name"));
    act(
        &call,
        Method::PUT,
        "/user/profile-information",
        Some(json!({ "name": p.text("name") })),
        "profile",
        ("profile-", form),
    )
    .await
}

/// `POST /account/password`: `PUT /user/password` (this session continues under a new cookie).
pub async fn password(call: Call<'_>) -> Reply {
    let p = form_or_refusal!(call);
    let body = p.body(&["current_password", "password", "password_confirmation"]);
    act(&call, Method::PUT, "/user/password", Some(body), "password", ("password-", Form::default())).await
}

/// `POST /account/sessions/others`: `POST /logout-other-devices`.
pub async fn other_devices(call: Call<'_>) -> Reply {
    let p = form_or_refusal!(call);
    let body = json!({ "password": p.text("password") });
    act(&call, Method::POST, "/logout-other-devices", Some(body), "others-signed-out", ("others-", Form::default()))
        .await
}

/// `POST /account/sessions/{id}/end`: `DELETE /sessions/{id}`.
pub async fn end_session(call: Call<'_>) -> Reply {
    form_or_refusal!(call);
    let path = format!("/sessions/{}", segment(call.param(0)));
    act(&call, Method::DELETE, &path, None, "session-ended", ("others-", Form::default())).await
}

/// A path segment as given, percent-encoded so it stays one segment.
pub(crate) fn segment(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `POST /account/tokens`: the password confirmed first when given (a strong token needs it),
/// then `POST /tokens`; the page again with the plaintext, this once.
pub async fn create_token(call: Call<'_>) -> Reply {
    let p = form_or_refusal!(call);
    let form = || {
        Form::default()
            .with_value("name", p.get("name"))
            .with_value("abilities", p.get("abilities"))
            .with_value("expires_in_minutes", p.get("expires_in_minutes"))
    };
    if !p.text("password").is_empty()
        && let Err(refusal) = confirm_password(&call, &p).await
    {
        return refused(&call, &refusal, ("token-", form())).await;
    }
    let mut body = json!({ "name": p.text("name") });
    let abilities: Vec<&str> =
        p.get("abilities").unwrap_or_default().split(',').map(str::trim).filter(|a| !a.is_empty()).collect();
    if !abilities.is_empty() {
        body["abilities"] = json!(abilities);
    }
    let expires = p.get("expires_in_minutes").unwrap_or_default();
    if !expires.is_empty() {
        body["expires_in_minutes"] = expires.parse::<i64>().map(Value::from).unwrap_or_else(|_| json!(expires));
    }
    let reply = api::call(call.app, call.req, Method::POST, "/tokens", Some(body)).await;
    if reply.ok() {
        let Ok(new_token) = reply.view::<NewTokenView>() else { return Ok(api::broken(&call, reply.cookies)) };
        let state = State { new_token: Some(new_token), ..State::default() };
        return render(&call, state, StatusCode::CREATED).await;
    }
    refused(&call, &reply, ("token-", form())).await
}

/// `POST /account/tokens/{id}/revoke`: `DELETE /tokens/{id}`.
pub async fn revoke_token(call: Call<'_>) -> Reply {
    form_or_refusal!(call);
    let path = format!("/tokens/{}", segment(call.param(0)));
    act(&call, Method::DELETE, &path, None, "token-revoked", ("token-", Form::default())).await
}

/// `POST /account/delete`: the password confirmed, then `DELETE /user`; signed out.
pub async fn delete(call: Call<'_>) -> Reply {
    let p = form_or_refusal!(call);
    match confirmed_call(&call, &p, Method::DELETE, "/user", "delete-").await {
        Ok(reply) => Ok(view::redirect("/account/sign-in?notice=deleted", renewing_csrf(&call, reply.cookies))),
        Err(page) => page,
    }
}
