//! Cross-app sessions over HTTP: handoffs, their exchange, the audit trail and revocation, over
//! the `CrossApp` service.

use gatehouse::services::access::Principal;
use gatehouse::services::cross_app::CrossApp;
use gatehouse_http::views::{CrossAppPage, ExchangeView, HandoffView};
use gatehouse_http::{ApiError, Call, Reply, json, no_content};
use lambda_http::http::{StatusCode, header};

/// `POST /cross-app/handoff`: a single-use token for `target_app`, bound to the caller.
pub async fn handoff(call: Call<'_>, caller: Principal) -> Reply {
    let cross_app = CrossApp::new(&call.app.auth);
    let target = call.fields(|f| {
        let name = f.text("target_app", 100)?;
        if cross_app.is_registered(&name) {
            Some(name)
        } else {
            f.error("target_app", "is not a registered app");
            None
        }
    })?;
    let made = cross_app.handoff(&caller, target, &call.meta()).await?;
    let expires_at = gatehouse::values::clock::rfc3339(made.handoff.expires_at);
    Ok(json(StatusCode::CREATED, &HandoffView { handoff_token: made.token.expose().to_owned(), expires_at }))
}

/// `POST /cross-app/exchange`: a handoff made for this app, once, for a session of this app.
pub async fn exchange(call: Call<'_>) -> Reply {
    // It sets the session cookie: a page elsewhere must not sign a browser in (login CSRF).
    gatehouse_http::check_origin(call.req, &call.app.config.session)?;
    let this_app = &call.app.config.app_name;
    let raw = call.fields(|f| {
        let raw = f.text("handoff_token", 100);
        if let Some(asked) = f.optional_text("app", 100)
            && &asked != this_app
        {
            f.error("app", "is not this app: a handoff is exchanged by the app it was made for");
        }
        raw
    })?;
    let done = CrossApp::new(&call.app.auth).exchange(&raw, &call.meta()).await?;
    let view = ExchangeView { user: (&done.user).into(), cross_app_session_id: done.record.id };
    let mut resp = json(StatusCode::OK, &view);
    let cookie = gatehouse_http::session_cookie(&call.app.config.session, &done.session, false);
    resp.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(resp)
}

/// `DELETE /cross-app/sessions/{id}`: ends a session another app's handoff opened here.
pub async fn revoke(call: Call<'_>, caller: Principal) -> Reply {
    match CrossApp::new(&call.app.auth).revoke(caller.user_id(), call.param(0)).await? {
        true => Ok(no_content()),
        false => Err(ApiError::not_found()),
    }
}

/// `GET /cross-app/sessions`: the caller's audit records, newest first, a page at a time.
pub async fn audit(call: Call<'_>, caller: Principal) -> Reply {
    let asked = gatehouse_http::PageQuery::of(&call, format!("cross-app|{}", caller.user_id()))?;
    let page = CrossApp::new(&call.app.auth).audit(caller.user_id(), asked.limit, asked.cursor.as_ref()).await?;
    let view = CrossAppPage {
        sessions: page.items.iter().map(Into::into).collect(),
        next_cursor: asked.next(&call, page.next),
    };
    Ok(json(StatusCode::OK, &view))
}
