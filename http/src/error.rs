//! The API's error body: `{"error": {"code", "message", "fields"?}}`, mapped from domain errors
//! in one place.

use gatehouse::StoreError;
use gatehouse::services::auth::AuthError;
use gatehouse::services::cross_app::CrossAppError;
use gatehouse::services::token_issuer::IssueError;
use lambda_http::http::{StatusCode, header};
use lambda_http::{Body, Response};
use serde::Serialize;
use std::collections::BTreeMap;

/// Every error answer: `{"error": {"code", "message", "fields"?}}`.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Error))]
pub struct ErrorBody<'a> {
    pub error: ErrorDetail<'a>,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail<'a> {
    /// Machine-readable, stable: `validation_failed`, `unauthenticated`, `csrf`, `too_many_requests`, …
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub code: &'a str,
    /// For a person.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub message: &'a str,
    /// With `validation_failed`: each invalid field's problems.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<BTreeMap<String, Vec<String>>>))]
    pub fields: Option<&'a BTreeMap<String, Vec<String>>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub fields: Option<BTreeMap<String, Vec<String>>>,
    pub retry_after: Option<u64>,
    /// The `Allow` header of a 405.
    pub allow: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), fields: None, retry_after: None, allow: None }
    }

    pub fn validation(fields: BTreeMap<String, Vec<String>>) -> Self {
        let message = fields
            .iter()
            .next()
            .and_then(|(f, problems)| problems.first().map(|p| format!("The {f} field {p}.")))
            .unwrap_or_else(|| "The given data was invalid.".to_owned());
        Self { fields: Some(fields), ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", message) }
    }

    pub fn field(field: &str, problem: &str) -> Self {
        Self::validation(BTreeMap::from([(field.to_owned(), vec![problem.to_owned()])]))
    }

    /// 422 with its own code, for answers that are not about one field's shape.
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn unauthenticated() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", "Unauthenticated.")
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    /// 403 on a route that requires a verified address (`verified` in GATEHOUSE_ROUTE_ABILITIES),
    /// for a credential of a user who has not verified theirs.
    pub fn email_unverified() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "email_unverified",
            "Verify your email address first: open the link we mailed you, or ask for a new one at POST /email/verification-notification.",
        )
    }
    /// 403 for a state change a browser sent from another site with the user's cookie.
    pub fn csrf() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "This request came from another site and was refused to protect your session (cross-site request forgery).",
        )
    }
    /// 423, as Laravel's `password.confirm` answers JSON: the action needs a recent password
    /// confirmation (`POST /user/confirm-password`).
    pub fn password_confirmation_required() -> Self {
        Self::new(
            StatusCode::LOCKED,
            "password_confirmation_required",
            "Password confirmation required: confirm your password (POST /user/confirm-password) and retry.",
        )
    }
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "Not found.")
    }
    /// 405 with the methods the route does allow (`"GET, POST"`).
    pub fn method_not_allowed(allow: impl Into<String>) -> Self {
        Self {
            allow: Some(allow.into()),
            ..Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "This method is not allowed on this route.",
            )
        }
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }
    pub fn too_many_requests(retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                format!("Too many attempts. Please try again in {retry_after} seconds."),
            )
        }
    }
    pub fn payload_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("The request body may not exceed {} bytes.", crate::MAX_BODY),
        )
    }
    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "The request body must be JSON (Content-Type: application/json).",
        )
    }
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Something went wrong on our side.")
    }
    pub fn unavailable() -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "A backing service is unavailable. Please retry.")
    }

    pub fn into_response(self) -> Response<Body> {
        let body =
            ErrorBody { error: ErrorDetail { code: self.code, message: &self.message, fields: self.fields.as_ref() } };
        let mut resp = crate::json(self.status, &body);
        if let Some(allow) = &self.allow
            && let Ok(v) = allow.parse()
        {
            resp.headers_mut().insert(header::ALLOW, v);
        }
        if let Some(secs) = self.retry_after
            && let Ok(v) = secs.to_string().parse()
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "store unavailable");
                ApiError::unavailable()
            }
            StoreError::Conflict(detail) => ApiError::conflict(detail),
            StoreError::InvalidCursor => ApiError::field("cursor", "is not valid"),
            other => {
                tracing::error!(error = %other, "store error");
                ApiError::internal()
            }
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::InvalidCredentials => ApiError::field("email", "these credentials do not match our records")
                .with_message("These credentials do not match our records."),
            AuthError::Throttled { retry_after } => ApiError::too_many_requests(retry_after),
            AuthError::EmailTaken => ApiError::field("email", "has already been taken"),
            AuthError::CredentialsChanged => {
                ApiError::conflict("The account's credentials changed during this request. Sign in again.")
            }
            AuthError::PasswordConfirmationRequired => ApiError::password_confirmation_required(),
            AuthError::AccountDisabled => {
                ApiError::new(StatusCode::FORBIDDEN, "account_disabled", "This account is disabled. Contact support.")
            }
            AuthError::Denied { point, message } => {
                use gatehouse::services::hooks::HookPoint;
                let (code, fallback) = match point {
                    HookPoint::BeforeSignUp => ("sign_up_denied", "Signing up is not possible right now."),
                    HookPoint::BeforeSignIn => ("sign_in_denied", "Signing in is not possible right now."),
                    HookPoint::BeforeToken => ("token_denied", "No token can be issued right now."),
                };
                ApiError::new(StatusCode::FORBIDDEN, code, message.unwrap_or_else(|| fallback.to_owned()))
            }
            AuthError::DerivedSession => ApiError::forbidden(
                "This session was opened from another app; sign in here to change the account's credentials.",
            ),
            AuthError::Store(s) => s.into(),
            AuthError::Hash(h) => {
                tracing::error!(error = %h, "password hashing failed");
                ApiError::internal()
            }
        }
    }
}

impl From<gatehouse::services::email_verification::VerifyError> for ApiError {
    fn from(e: gatehouse::services::email_verification::VerifyError) -> Self {
        use gatehouse::services::email_verification::VerifyError;
        match e {
            // 403 as Laravel's signed-URL check answers; one code for every kind of bad link.
            VerifyError::InvalidLink => {
                ApiError::new(StatusCode::FORBIDDEN, "invalid_link", "This verification link is invalid.")
            }
            VerifyError::Expired => ApiError::new(
                StatusCode::FORBIDDEN,
                "link_expired",
                "This verification link has expired. Ask for a new one (POST /email/verification-notification).",
            ),
            VerifyError::NotYours => ApiError::new(
                StatusCode::FORBIDDEN,
                "not_your_link",
                "This verification link is for another account. Sign in as that account and open it again.",
            ),
            VerifyError::Store(s) => s.into(),
        }
    }
}

impl From<gatehouse::services::email_verification::ResendError> for ApiError {
    fn from(e: gatehouse::services::email_verification::ResendError) -> Self {
        use gatehouse::services::email_verification::ResendError;
        match e {
            ResendError::Auth(a) => a.into(),
            ResendError::Dispatch(d) => {
                tracing::error!(error = %d, "could not queue the verification mail");
                ApiError::unavailable()
            }
        }
    }
}

impl From<gatehouse::services::password_broker::RequestLinkError> for ApiError {
    fn from(e: gatehouse::services::password_broker::RequestLinkError) -> Self {
        use gatehouse::services::password_broker::RequestLinkError;
        match e {
            RequestLinkError::Auth(a) => a.into(),
            RequestLinkError::Store(s) => s.into(),
            RequestLinkError::Dispatch(d) => {
                tracing::error!(error = %d, "could not queue the reset link job");
                ApiError::unavailable()
            }
        }
    }
}

impl From<gatehouse::services::password_broker::ResetError> for ApiError {
    fn from(e: gatehouse::services::password_broker::ResetError) -> Self {
        use gatehouse::services::password_broker::ResetError;
        match e {
            ResetError::InvalidToken => {
                ApiError::unprocessable("invalid_token", "This password reset token is invalid.")
            }
            ResetError::Auth(a) => a.into(),
            ResetError::Store(s) => s.into(),
            e => {
                tracing::error!(error = %e, "password reset failed");
                ApiError::internal()
            }
        }
    }
}

impl From<gatehouse::services::email_change::RequestError> for ApiError {
    fn from(e: gatehouse::services::email_change::RequestError) -> Self {
        use gatehouse::services::email_change::RequestError;
        match e {
            RequestError::SameAddress => ApiError::field("email", "is already your address"),
            RequestError::Auth(a) => a.into(),
            RequestError::Dispatch(d) => {
                tracing::error!(error = %d, "could not queue the email change mails");
                ApiError::unavailable()
            }
        }
    }
}

impl From<gatehouse::services::email_change::ConfirmError> for ApiError {
    fn from(e: gatehouse::services::email_change::ConfirmError) -> Self {
        use gatehouse::services::email_change::ConfirmError;
        use gatehouse::services::email_verification::VerifyError;
        match e {
            ConfirmError::Taken => ApiError::new(
                StatusCode::CONFLICT,
                "email_taken",
                "Another account took this address after you asked for it; your address is unchanged.",
            ),
            ConfirmError::Link(VerifyError::Expired) => ApiError::new(
                StatusCode::FORBIDDEN,
                "link_expired",
                "This confirmation link has expired. Ask for the change again (POST /user/email).",
            ),
            ConfirmError::Link(VerifyError::InvalidLink) => ApiError::new(
                StatusCode::FORBIDDEN,
                "invalid_link",
                "This confirmation link is invalid: tampered with, or your address or password changed since it was sent.",
            ),
            ConfirmError::Link(other) => other.into(),
            ConfirmError::Auth(a) => a.into(),
        }
    }
}

impl From<gatehouse::services::two_factor::TwoFactorError> for ApiError {
    fn from(e: gatehouse::services::two_factor::TwoFactorError) -> Self {
        use gatehouse::services::two_factor::TwoFactorError;
        match e {
            TwoFactorError::AlreadyEnabled => ApiError::new(
                StatusCode::CONFLICT,
                "two_factor_enabled",
                "Two-factor authentication is already on; turn it off first to enrol another app.",
            ),
            TwoFactorError::NotEnabled => {
                ApiError::new(StatusCode::CONFLICT, "two_factor_not_enabled", "Two-factor authentication is not on.")
            }
            TwoFactorError::NotEnrolled => ApiError::new(
                StatusCode::CONFLICT,
                "two_factor_not_enrolled",
                "Start with POST /user/two-factor-authentication, then confirm a code.",
            ),
            TwoFactorError::InvalidCode => ApiError::field("code", "is invalid or was already used"),
            TwoFactorError::InvalidPasskey => ApiError::field("passkey", "was not accepted"),
            TwoFactorError::SecretUnreadable => ApiError::new(
                StatusCode::CONFLICT,
                "two_factor_unreadable",
                "Your authenticator app's secret cannot be read by this deployment. Sign in with a recovery code, or ask an administrator to reset two-factor authentication.",
            ),
            TwoFactorError::InvalidChallenge => {
                ApiError::field("challenge", "is invalid or has expired; sign in again")
            }
            TwoFactorError::Auth(a) => a.into(),
            TwoFactorError::Dispatch(d) => {
                tracing::error!(error = %d, "could not queue a two-factor mail");
                ApiError::unavailable()
            }
        }
    }
}

impl From<gatehouse::services::passkeys::PasskeyError> for ApiError {
    fn from(e: gatehouse::services::passkeys::PasskeyError) -> Self {
        use gatehouse::services::passkeys::PasskeyError;
        match e {
            PasskeyError::InvalidCeremony => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_ceremony",
                "The passkey request is invalid or has expired; start again.",
            ),
            PasskeyError::Malformed(why) => {
                ApiError::field("credential", &format!("is not a WebAuthn response ({why})"))
            }
            PasskeyError::Rejected => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "passkey_rejected", "The passkey was not accepted.")
            }
            PasskeyError::TooMany => ApiError::new(
                StatusCode::CONFLICT,
                "too_many_passkeys",
                "This account has the most passkeys allowed; remove one first.",
            ),
            PasskeyError::Duplicate => {
                ApiError::new(StatusCode::CONFLICT, "passkey_exists", "This passkey is already on the account.")
            }
            PasskeyError::NotFound => ApiError::new(StatusCode::NOT_FOUND, "not_found", "No such passkey."),
            PasskeyError::BadName => ApiError::field("name", "must be 1 to 64 printable characters"),
            PasskeyError::Misconfigured(why) => {
                tracing::error!(error = %why, "the passkey relying party is misconfigured");
                ApiError::internal()
            }
            PasskeyError::Auth(a) => a.into(),
        }
    }
}

impl From<gatehouse::services::federation::FederationError> for ApiError {
    fn from(e: gatehouse::services::federation::FederationError) -> Self {
        use gatehouse::services::federation::FederationError as F;
        let message = e.to_string();
        let (status, code) = match e {
            F::UnknownProvider => (StatusCode::NOT_FOUND, "provider_unknown"),
            F::StateInvalid => (StatusCode::BAD_REQUEST, "federation_state_invalid"),
            F::ProviderFailed => (StatusCode::BAD_GATEWAY, "federation_failed"),
            F::LinkRequired => (StatusCode::CONFLICT, "link_required"),
            F::IdentityTaken => (StatusCode::CONFLICT, "identity_taken"),
            F::EmailUnverified => (StatusCode::FORBIDDEN, "email_unverified_at_provider"),
            F::SignupDisabled => (StatusCode::FORBIDDEN, "signup_disabled"),
            F::LastWayIn => (StatusCode::CONFLICT, "last_way_in"),
            F::NoSuchIdentity => (StatusCode::NOT_FOUND, "not_found"),
            F::Auth(a) => return a.into(),
        };
        ApiError::new(status, code, message)
    }
}

impl ApiError {
    /// With `Retry-After: secs` (a 503 the client may simply ask again).
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }
}

impl From<IssueError> for ApiError {
    fn from(e: IssueError) -> Self {
        match e {
            IssueError::DerivedSession => ApiError::forbidden(
                "A session opened by a cross-app handoff cannot mint tokens or hand off; sign in to this app.",
            ),
            IssueError::ExceedsParent => {
                ApiError::field("abilities", "may not exceed the abilities of the token making the request")
            }
            IssueError::PasswordConfirmationRequired => ApiError::password_confirmation_required(),
            IssueError::Throttled { retry_after } => ApiError::too_many_requests(retry_after),
            // The credential making the request was revoked (a reset, a logout elsewhere).
            IssueError::Revoked => ApiError::unauthenticated(),
            // A sign-in's password changed before its token was issued: as a wrong password.
            IssueError::PasswordChanged => AuthError::InvalidCredentials.into(),
            IssueError::Ungrantable => ApiError::field("abilities", "\"verified\" is not an ability a token can hold"),
            IssueError::Store(s) => s.into(),
        }
    }
}

impl From<CrossAppError> for ApiError {
    fn from(e: CrossAppError) -> Self {
        match e {
            CrossAppError::Refused(e) => e.into(),
            CrossAppError::InvalidHandoff => {
                ApiError::unprocessable("invalid_token", "This handoff token is invalid, used or expired.")
            }
            CrossAppError::Auth(e) => e.into(),
            CrossAppError::Store(e) => e.into(),
        }
    }
}
