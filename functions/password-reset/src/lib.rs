//! `POST /forgot-password` and `POST /reset-password`.

use gatehouse::password::PasswordContext;
use gatehouse::password_broker::{PasswordBroker, ResetError};
use gatehouse::password_reset_tokens::PlainResetToken;
use gatehouse::queue::Dispatcher;
use gatehouse::throttle::{Limit, client_key};
use gatehouse_http::{ApiError, App, Fields, client_meta, json, json_object, request_id};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::json;
use tracing::Instrument;

pub const ROUTES: &[(&str, &str)] = &[("POST", "/forgot-password"), ("POST", "/reset-password")];

/// The one answer to every well-formed forgot-password request.
pub const FORGOT_MESSAGE: &str = "If an account exists for this email address, we have emailed a password reset link.";

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    let span = tracing::info_span!("request", request_id = %request_id(&req), method = %req.method(), path = %req.uri().path());
    async move { route(app, &req).await.unwrap_or_else(ApiError::into_response) }.instrument(span).await
}

async fn route(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    match (req.method().clone(), req.uri().path()) {
        (Method::POST, "/forgot-password") => forgot(app, req).await,
        (Method::POST, "/reset-password") => reset(app, req).await,
        (_, p) => Err(gatehouse_http::no_route(ROUTES, p)),
    }
}

fn broker(app: &App) -> Result<PasswordBroker, ApiError> {
    Ok(PasswordBroker::new(app.auth()?.clone(), Dispatcher::new(app.stores.clone(), app.config.batch_retention)))
}

async fn forgot(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let body = json_object(req)?;
    let mut f = Fields::new(&body);
    let email = f.email("email");
    f.finish()?;
    let email = email.ok_or_else(ApiError::internal)?;
    let client = client_key(client_meta(req).ip.as_deref());
    let limit = Limit::per_minute(app.config.reset.per_ip_per_minute);
    app.auth()?.limit(&format!("forgot-password:{client}"), limit).await?;
    broker(app)?.request_link(&email).await.map_err(|e| {
        tracing::error!(error = %e, "could not queue the reset link job");
        ApiError::unavailable()
    })?;
    Ok(json(StatusCode::ACCEPTED, &json!({ "message": FORGOT_MESSAGE })))
}

fn invalid_token() -> ApiError {
    ApiError::unprocessable("invalid_token", "This password reset token is invalid.")
}

async fn reset(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let auth = app.auth()?;
    let body = json_object(req)?;
    let mut f = Fields::new(&body);
    let email = f.email("email");
    let token = f.text("token", 200);
    let context = PasswordContext { email: email.as_ref(), name: None, app_name: Some(&app.config.app_name) };
    let password = f.new_password_for("password", auth.policy(), &context);
    f.finish()?;
    let (Some(email), Some(token), Some(password)) = (email, token, password) else {
        return Err(ApiError::internal());
    };
    // Counted before the token check and the hash.
    let client = client_key(client_meta(req).ip.as_deref());
    auth.limit(&format!("reset-password:{client}"), app.config.limits.reset_per_client).await?;
    let token = PlainResetToken::parse(&token).ok_or_else(invalid_token)?;
    match broker(app)?.reset(&email, &token, password).await {
        Ok(_) => Ok(json(
            StatusCode::OK,
            &json!({ "message": "Your password has been reset. Please sign in with your new password." }),
        )),
        Err(ResetError::InvalidToken) => Err(invalid_token()),
        Err(ResetError::Store(e)) => Err(e.into()),
        Err(e) => {
            tracing::error!(error = %e, "password reset failed");
            Err(ApiError::internal())
        }
    }
}

/// What this function's code does to AWS (see `gatehouse_login::PERMISSIONS`).
pub const PERMISSIONS: &[(&str, &[&str])] = &[
    ("table/users", &["dynamodb:GetItem", "dynamodb:UpdateItem"]),
    ("table/password_reset_tokens", &["dynamodb:GetItem", "dynamodb:DeleteItem"]),
    ("table/sessions", &["dynamodb:DeleteItem", "dynamodb:BatchWriteItem"]),
    ("table/sessions/index/by_user", &["dynamodb:Query"]),
    ("table/personal_access_tokens", &["dynamodb:DeleteItem", "dynamodb:BatchWriteItem"]),
    ("table/personal_access_tokens/index/by_tokenable", &["dynamodb:Query"]),
    ("table/credentials", &["dynamodb:Query", "dynamodb:BatchWriteItem"]),
    ("table/cross_app_handoffs", &["dynamodb:DeleteItem"]),
    ("table/cross_app_sessions", &["dynamodb:UpdateItem"]),
    ("table/cross_app_sessions/index/by_user", &["dynamodb:Query"]),
    ("table/cache", &["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]),
    ("queue/jobs", &["sqs:SendMessage"]),
];
