//! The `password-reset` function: `POST /forgot-password` and `POST /reset-password` over the
//! `PasswordBroker`.

use gatehouse::schema::iam;
use gatehouse::services::password_broker::PasswordBroker;
use gatehouse::values::password::PasswordContext;
use gatehouse_http::views::MessageView;
use gatehouse_http::{App, Call, Guard, Reply, Route, json, route};
use lambda_http::http::StatusCode;

/// Serves one request through [`ROUTES`].
pub async fn handle(app: &App, req: lambda_http::Request) -> lambda_http::Response<lambda_http::Body> {
    gatehouse_http::dispatch(app, ROUTES, req).await
}

/// What this function serves.
pub static ROUTES: &[Route] = &[
    route!(POST "/forgot-password", Guard::Public, forgot, body = ForgotPasswordRequest),
    route!(POST "/reset-password", Guard::Public, reset, body = ResetPasswordRequest),
];

/// The one answer to every well-formed forgot-password request.
pub const FORGOT_MESSAGE: &str = "If an account exists for this email address, we have emailed a password reset link.";
pub const RESET_MESSAGE: &str = "Your password has been reset. Please sign in with your new password.";

fn broker(app: &App) -> PasswordBroker {
    PasswordBroker::new(app.auth.clone(), app.dispatcher())
}

async fn forgot(call: Call<'_>) -> Reply {
    let email = call.fields(|f| f.email("email"))?;
    // Queued, or held by the address's window or daily cap: one answer, whatever the address.
    broker(call.app).forgot_password(&email, &call.meta()).await?;
    Ok(json(StatusCode::ACCEPTED, &MessageView { message: FORGOT_MESSAGE }))
}

async fn reset(call: Call<'_>) -> Reply {
    let app = call.app;
    let (email, token, password) = call.fields(|f| {
        let email = f.email("email");
        let token = f.text("token", 200);
        let context = PasswordContext { email: email.as_ref(), name: None, app_name: Some(&app.config.app_name) };
        let password = f.new_password_for("password", app.auth.policy(), &context);
        Some((email?, token?, password?))
    })?;
    broker(app).reset_password(&email, &token, password, &call.meta()).await?;
    Ok(json(StatusCode::OK, &MessageView { message: RESET_MESSAGE }))
}

/// What this function's code does to AWS (see `gatehouse_login::PERMISSIONS`).
pub const PERMISSIONS: &[(&str, &[&str])] = &[
    ("table/users", &["dynamodb:GetItem", "dynamodb:UpdateItem"]),
    ("table/password_reset_tokens", &["dynamodb:GetItem", "dynamodb:DeleteItem"]),
    ("table/sessions", &["dynamodb:DeleteItem", "dynamodb:BatchWriteItem"]),
    ("table/sessions/index/by_user", iam::QUERY),
    ("table/personal_access_tokens", &["dynamodb:DeleteItem", "dynamodb:BatchWriteItem"]),
    ("table/personal_access_tokens/index/by_tokenable", iam::QUERY),
    ("table/credentials", &["dynamodb:Query", "dynamodb:BatchWriteItem"]),
    // A revocation ends the user's OAuth grants and consents too (`revocation::end_credential`).
    ("table/oauth_refresh_tokens", &["dynamodb:DeleteItem"]),
    ("table/oauth_consents", &["dynamodb:DeleteItem"]),
    ("table/cross_app_handoffs", &["dynamodb:DeleteItem"]),
    ("table/cross_app_sessions", &["dynamodb:UpdateItem"]),
    ("table/cross_app_sessions/index/by_user", iam::QUERY),
    ("table/cache", iam::CACHE),
    ("queue/jobs", &["sqs:SendMessage"]),
];
