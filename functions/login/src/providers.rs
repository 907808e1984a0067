//! Social sign-in for single-page apps: the configured providers, beginning a flow (the
//! provider's address to send the browser to, and the binding cookie), finishing it (as `/login`
//! answers), and the connected accounts. The rules are `gatehouse::services::federation`'s.

use crate::{load_user, two_factor, with_cookie};
use gatehouse::services::access::Principal;
use gatehouse::services::federation::linking::Outcome;
use gatehouse::services::federation::{Callback, Intent};
use gatehouse_http::federation::{BINDING_COOKIE, binding_cookie};
use gatehouse_http::views::{FederationStartView, IdentitiesView, LinkedView, ProviderView, ProvidersView, UserBody};
use gatehouse_http::{Call, Reply, SessionCaller, json, no_content};
use lambda_http::http::StatusCode;

/// `GET /auth/providers`: what "Continue with …" buttons to show.
pub async fn list(call: Call<'_>) -> Reply {
    let providers = call.app.config.federation.providers.iter().map(ProviderView::from).collect();
    Ok(json(StatusCode::OK, &ProvidersView { providers }))
}

/// `POST /auth/providers/{provider}/start` `{remember?}`: a sign-in (or sign-up) flow.
pub async fn start(call: Call<'_>) -> Reply {
    let app = call.app;
    // A page elsewhere must not begin flows in this browser (nor spend its count).
    gatehouse_http::check_origin(call.req, &app.config.session)?;
    let remember = call.fields(|f| Some(f.optional_bool("remember").unwrap_or(false)))?;
    begun(&call, Intent::SignIn { remember }).await
}

/// `POST /auth/providers/{provider}/link`: a flow connecting the provider to this session's
/// user, which needs a recent confirmation (now, and again when the flow finishes).
pub async fn link(call: Call<'_>, SessionCaller { user_id, session }: SessionCaller) -> Reply {
    call.app.auth.require_recent_confirmation(&session)?;
    let intent = Intent::Link {
        user_id: user_id.as_str().to_owned(),
        session: gatehouse::values::secret::sha256_hex(session.key.as_str()),
        version: session.credentials_version,
    };
    begun(&call, intent).await
}

async fn begun(call: &Call<'_>, intent: Intent) -> Reply {
    let binding = call.cookie(BINDING_COOKIE);
    let started = call.app.federation().start(call.param(0), intent, binding.as_deref(), &call.meta()).await?;
    let resp = json(StatusCode::OK, &FederationStartView { url: started.url });
    Ok(with_cookie(resp, binding_cookie(&started.binding)))
}

/// `POST /auth/providers/{provider}/callback` `{code, state, iss?}`, from the browser that began
/// the flow: 200 and the session cookie, 202 a two-factor challenge, or 200 `{linked}`.
pub async fn callback(call: Call<'_>) -> Reply {
    let app = call.app;
    // No Origin check: the provider's redirect (or Apple's cross-site form post) is how the
    // browser comes back. A page elsewhere still cannot sign a browser in: a flow finishes only
    // with a `state` bound to this browser's own cookie, begun by a same-site start.
    let (code, state, iss) = call.fields(|f| {
        let code = f.secret("code", 2048);
        let state = f.secret("state", 128);
        let iss = f.optional_text("iss", 1024);
        Some((code?, state?, iss))
    })?;
    let binding = call.cookie(BINDING_COOKIE);
    let device = call.cookie(&gatehouse_http::device_cookie_name(&app.config.session));
    let session = call.cookie(&app.config.session.cookie_name);
    let meta = call.meta();
    let outcome = app
        .federation()
        .finish(Callback {
            provider: call.param(0),
            code: &code,
            state: &state,
            iss: iss.as_deref(),
            binding: binding.as_deref(),
            session_cookie: session.as_deref(),
            meta: &meta,
            device_cookie: device.as_deref(),
        })
        .await?;
    Ok(match outcome {
        Outcome::Session { user, opened, remember, .. } => {
            let resp = json(StatusCode::OK, &UserBody::from(user.as_ref()));
            let resp =
                with_cookie(resp, gatehouse_http::session_cookie(&app.config.session, &opened.session, remember));
            gatehouse_http::remember_device(app, resp, opened.device_cookie.as_deref())
        }
        Outcome::SecondFactor(challenge) => two_factor::challenged(app, &challenge),
        Outcome::Linked { provider, .. } => json(StatusCode::OK, &LinkedView { linked: provider }),
    })
}

/// `GET /user/identities`: the provider accounts connected to the user.
pub async fn identities(call: Call<'_>, caller: Principal) -> Reply {
    let user = load_user(call.app, caller.user_id()).await?;
    let connected = call.app.federation().connected(&user).await?;
    Ok(json(StatusCode::OK, &IdentitiesView { identities: connected.iter().map(Into::into).collect() }))
}

/// `DELETE /user/identities/{id}`, with a recent confirmation; never the last way in.
pub async fn unlink(call: Call<'_>, SessionCaller { user_id, session }: SessionCaller) -> Reply {
    let app = call.app;
    app.auth.require_recent_confirmation(&session)?;
    let user = load_user(app, &user_id).await?;
    app.federation().unlink(&user, call.param(0), &call.meta()).await?;
    Ok(no_content())
}
