//! The `tokens` function: personal access tokens and cross-app handoffs over HTTP. Each handler
//! reads the request, calls a domain service (`TokenIssuer`, `CrossApp`) and renders the answer.

use gatehouse::schema::iam;
use gatehouse::services::access::Principal;
use gatehouse::services::sign_in::PasswordStep;
use gatehouse::services::sign_in::Pending;
use gatehouse::services::token_issuer::{NewToken, TokenIssuer, TokenRequest};
use gatehouse::tables::personal_access_tokens::{Abilities, CREATE_TOKENS, CROSS_APP_HANDOFF, Tokenable};
use gatehouse::values::password::PasswordAttempt;
use gatehouse_http::views::{NewTokenView, TokenPage, TwoFactorChallengeView};
use gatehouse_http::{ApiError, Call, Fields, Guard, PageQuery, Reply, Route, json, no_content, route};
use lambda_http::http::StatusCode;

mod cross_app;

/// Serves one request through [`ROUTES`].
pub async fn handle(app: &gatehouse_http::App, req: lambda_http::Request) -> lambda_http::Response<lambda_http::Body> {
    gatehouse_http::dispatch(app, ROUTES, req).await
}

/// What this function serves.
pub static ROUTES: &[Route] = &[
    route!(POST "/tokens", Guard::Credential(&[CREATE_TOKENS]), create, body = CreateTokenRequest),
    route!(POST "/tokens/issue", Guard::Public, issue, body = IssueTokenRequest),
    route!(GET "/tokens", Guard::Credential(&[]), list),
    route!(DELETE "/tokens/{id}", Guard::Credential(&[]), revoke),
    route!(POST "/cross-app/handoff", Guard::Credential(&[CROSS_APP_HANDOFF]), cross_app::handoff, body = HandoffRequest),
    route!(POST "/cross-app/exchange", Guard::Public, cross_app::exchange, body = ExchangeRequest),
    route!(GET "/cross-app/sessions", Guard::Credential(&[]), cross_app::audit),
    route!(DELETE "/cross-app/sessions/{id}", Guard::Credential(&[]), cross_app::revoke),
];

const MAX_ABILITIES: usize = 50;
const MAX_ABILITY_LEN: usize = 100;

/// A token's name and options: `abilities` (default `["*"]`) and `expires_in_minutes`.
fn token_request(f: &mut Fields<'_>, name_field: &str) -> Option<TokenRequest> {
    let name = f.text(name_field, 255);
    let abilities = f.optional_string_list("abilities", MAX_ABILITIES, MAX_ABILITY_LEN);
    if let Some(Err(problem)) = abilities.as_deref().map(TokenIssuer::grantable) {
        f.error("abilities", problem);
    }
    let abilities = abilities.map(Abilities::new).unwrap_or_else(Abilities::all);
    let expires_in_minutes = f.optional_int("expires_in_minutes", 1, 5_256_000);
    Some(TokenRequest { name: name?, abilities, expires_in_minutes })
}

fn created(t: NewToken) -> Reply {
    Ok(json(StatusCode::CREATED, &NewTokenView::from(t)))
}

/// `POST /tokens`: minted by the caller's credential, never stronger than it.
async fn create(call: Call<'_>, caller: Principal) -> Reply {
    TokenIssuer::refuse_derived_session(&caller)?;
    let req = call.fields(|f| {
        let req = token_request(f, "name");
        if let Some(r) = &req
            && !TokenIssuer::within_caller(&caller, &r.abilities)
        {
            f.error("abilities", "may not exceed the abilities of the token making the request");
        }
        req
    })?;
    created(TokenIssuer::new(&call.app.access).for_caller(&caller, req).await?)
}

/// `POST /tokens/issue`: email and password for a token (Sanctum's mobile flow).
async fn issue(call: Call<'_>) -> Reply {
    let (email, password, req) = call.fields(|f| {
        let email = f.email("email");
        let password = f.secret("password", gatehouse_http::MAX_BODY);
        let req = token_request(f, "device_name");
        Some((email?, password?, req?))
    })?;
    // Every shape error first; credentials are checked only for a well-formed request. API
    // clients carry no device cookie: they count against the account's unknown-device limit.
    let pending = Pending::Token {
        name: req.name.clone(),
        abilities: req.abilities.as_slice().to_vec(),
        expires_in_minutes: req.expires_in_minutes,
    };
    let app = call.app;
    let user = match app.auth.password_step(&email, PasswordAttempt::new(password), &call.meta(), None, pending).await?
    {
        PasswordStep::Passed(user) => user,
        PasswordStep::SecondFactor(c) => {
            return Ok(json(StatusCode::ACCEPTED, &TwoFactorChallengeView::new(&c, app.access.now())));
        }
    };
    app.auth.before_sign_in(&user, "password", &call.meta()).await?;
    created(TokenIssuer::new(&app.access).for_password_check(&user, req).await?)
}

/// `GET /tokens`: the caller's tokens, a page at a time; cursors are sealed to the owner, so a
/// forged, tampered or another user's cursor is a 422.
async fn list(call: Call<'_>, caller: Principal) -> Reply {
    let owner = Tokenable::user(caller.user_id());
    let asked = PageQuery::of(&call, format!("tokens|{}", owner.key()))?;
    let page = call.app.stores.personal_access_tokens.list_for(&owner, asked.limit, asked.cursor.as_ref()).await?;
    let view =
        TokenPage { tokens: page.items.iter().map(Into::into).collect(), next_cursor: asked.next(&call, page.next) };
    Ok(json(StatusCode::OK, &view))
}

/// `DELETE /tokens/{id}`: the token and everything derived from it.
async fn revoke(call: Call<'_>, caller: Principal) -> Reply {
    match TokenIssuer::new(&call.app.access).revoke(caller.user_id(), call.param(0)).await? {
        true => Ok(no_content()),
        false => Err(ApiError::not_found()),
    }
}

/// What the `tokens` function's code does to AWS (see `gatehouse_login::PERMISSIONS`).
pub const PERMISSIONS: &[(&str, &[&str])] = &[
    // The before-sign-in hook of `/tokens/issue`, when it is a Lambda function (#32).
    ("lambda/hooks", &["lambda:InvokeFunction"]),
    (
        "table/users",
        &["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"],
    ),
    // A token or handoff is issued only while its parent (a session or a token) is there.
    ("table/sessions", iam::ITEMS_AND_CHECK),
    ("table/personal_access_tokens", iam::ITEMS_AND_CHECK),
    ("table/personal_access_tokens/index/by_tokenable", iam::QUERY),
    ("table/cache", iam::CACHE),
    ("table/credentials", &["dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:BatchWriteItem"]),
    // A revocation ends the user's OAuth grants and consents too (`revocation::end_credential`).
    ("table/oauth_refresh_tokens", &["dynamodb:DeleteItem"]),
    ("table/oauth_consents", &["dynamodb:DeleteItem"]),
    ("table/cross_app_handoffs", &["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]),
    ("table/cross_app_sessions", &["dynamodb:PutItem", "dynamodb:UpdateItem"]),
    ("table/cross_app_sessions/index/by_user", iam::QUERY),
    // The events' jobs (#32): a token made or revoked, a cross-app session opened or ended.
    ("queue/jobs", &["sqs:SendMessage"]),
];
