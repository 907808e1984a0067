//! The applications let in through the OAuth provider: `GET /user/oauth-apps` lists them,
//! `DELETE /user/oauth-apps/{client_id}` disconnects one (its grants and consent revoked).

use gatehouse::tables::oauth_clients::ClientId;
use gatehouse_http::views::{AuthorizedAppView, AuthorizedAppsView};
use gatehouse_http::{ApiError, Call, Reply, SessionCaller, json, no_content};
use lambda_http::http::StatusCode;

/// `GET /user/oauth-apps`.
pub async fn list(call: Call<'_>, me: SessionCaller) -> Reply {
    let apps = call.app.oauth().authorized_apps(&me.user_id).await?;
    Ok(json(StatusCode::OK, &AuthorizedAppsView { apps: apps.iter().map(AuthorizedAppView::from).collect() }))
}

/// `DELETE /user/oauth-apps/{client_id}`: 204 once the app holds nothing of the user's — also
/// when it held nothing, so a retry of a disconnection whose answer was lost is told it happened.
pub async fn disconnect(call: Call<'_>, me: SessionCaller) -> Reply {
    let client = ClientId::parse(call.param(0)).ok_or_else(ApiError::not_found)?;
    call.app.oauth().disconnect_app(&me.user_id, &client).await?;
    Ok(no_content())
}
