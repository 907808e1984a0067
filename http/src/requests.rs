//! What each route's JSON body may hold, as the OpenAPI document states it. Handlers read bodies
//! through [`crate::Fields`], which collects every field error into one 422; these types are the
//! documented shape of those bodies, named by the route table (`route!(… body = LoginRequest)`),
//! and `gatehouse openapi`'s tests check that the fields a handler requires are exactly the ones
//! its request type marks required.
#![allow(dead_code)] // Read by the OpenAPI generator only.

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// Password rules shown in the document: the defaults (GATEHOUSE_PASSWORD_MIN/MAX_LENGTH move them).
macro_rules! request {
    ($(#[$m:meta])* pub struct $name:ident { $($body:tt)* }) => {
        $(#[$m])*
        #[cfg_attr(feature = "openapi", derive(ToSchema))]
        pub struct $name { $($body)* }
    };
}

request! {
    /// A new account; it is signed in at once (session cookie).
    pub struct RegisterRequest {
        #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255, pattern = r"\S"))]
        name: String,
        #[cfg_attr(feature = "openapi", schema(format = Email, max_length = 254))]
        email: String,
        /// 15 to 128 characters by default (configurable: at least 8, at most 1024), counted after
        /// Unicode NFKC normalisation; never trimmed or truncated. Refused if it is a common
        /// password, if it is easy to guess (a zxcvbn score below 3 by default: repetition,
        /// sequences, keyboard patterns, dictionary words, the name or email given), if it is the
        /// email address or the app's name, or if it contains the part of the email address before
        /// the @ (4 characters or more).
        #[cfg_attr(feature = "openapi", schema(min_length = 15, max_length = 128))]
        password: String,
        #[cfg_attr(feature = "openapi", schema(min_length = 15, max_length = 128))]
        password_confirmation: String,
    }
}

request! {
    pub struct LoginRequest {
        #[cfg_attr(feature = "openapi", schema(format = Email, max_length = 254))]
        email: String,
        #[cfg_attr(feature = "openapi", schema(min_length = 1))]
        password: String,
        /// Keep the session for GATEHOUSE_REMEMBER_DAYS of inactivity (30) instead of the idle
        /// lifetime; it never extends the absolute lifetime (30 days from login by default).
        remember: Option<bool>,
    }
}

request! {
    /// The user's current password.
    pub struct PasswordRequest {
        #[cfg_attr(feature = "openapi", schema(min_length = 1))]
        password: String,
    }
}

request! {
    pub struct CreateTokenRequest {
        #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255, pattern = r"\S"))]
        name: String,
        /// Default ["*"]; null means the default. From a token: each must be within the calling
        /// token's abilities. At most 50, each at most 100 characters.
        #[cfg_attr(feature = "openapi", schema(max_items = 50))]
        abilities: Option<Vec<String>>,
        /// Null or absent: no expiry of its own (the global maximum age still applies; from a
        /// token, the calling token's expiry applies).
        #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 5256000))]
        expires_in_minutes: Option<i64>,
    }
}

request! {
    pub struct IssueTokenRequest {
        #[cfg_attr(feature = "openapi", schema(format = Email, max_length = 254))]
        email: String,
        #[cfg_attr(feature = "openapi", schema(min_length = 1))]
        password: String,
        #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255, pattern = r"\S"))]
        device_name: String,
        /// Default ["*"]; null means the default.
        #[cfg_attr(feature = "openapi", schema(max_items = 50))]
        abilities: Option<Vec<String>>,
        /// Null or absent: no expiry of its own (the global maximum age still applies).
        #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 5256000))]
        expires_in_minutes: Option<i64>,
    }
}

request! {
    pub struct HandoffRequest {
        #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 100, pattern = r"\S"))]
        target_app: String,
    }
}

request! {
    pub struct ExchangeRequest {
        #[cfg_attr(feature = "openapi", schema(min_length = 1, pattern = r"\S"))]
        handoff_token: String,
        /// Optional: this deployment's GATEHOUSE_APP_NAME is the target. If given, it must equal it
        /// (422 on `app` otherwise).
        #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 100, pattern = r"\S"))]
        app: Option<String>,
    }
}

request! {
    pub struct ForgotPasswordRequest {
        #[cfg_attr(feature = "openapi", schema(format = Email, max_length = 254))]
        email: String,
    }
}

request! {
    pub struct ResetPasswordRequest {
        #[cfg_attr(feature = "openapi", schema(format = Email, max_length = 254))]
        email: String,
        /// The token from the mailed link.
        #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-fA-F]{64}$"))]
        token: String,
        /// 15 to 128 characters by default (configurable: at least 8, at most 1024), counted after
        /// Unicode NFKC normalisation; never trimmed or truncated. Refused if it is a common
        /// password, if it is easy to guess (a zxcvbn score below 3 by default), if it is the email
        /// address or the app's name, or if it contains the part of the email address before the @
        /// (4 characters or more).
        #[cfg_attr(feature = "openapi", schema(min_length = 15, max_length = 128))]
        password: String,
        #[cfg_attr(feature = "openapi", schema(min_length = 15, max_length = 128))]
        password_confirmation: String,
    }
}

request! {
    pub struct ProfileRequest {
        /// Trimmed; no control, formatting (bidi, zero-width) or line separator characters.
        #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255, pattern = r"\S"))]
        name: String,
    }
}

request! {
    /// A code from the authenticator app.
    pub struct CodeRequest {
        #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9]{6}$"))]
        code: String,
    }
}

request! {
    /// Completes a sign-in with a second factor: one of `code`, `recovery_code` or `passkey`.
    pub struct TwoFactorChallengeRequest {
        /// As `/login` or `/tokens/issue` answered it.
        challenge: String,
        #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9]{6}$"))]
        code: Option<String>,
        recovery_code: Option<String>,
        /// A passkey's assertion (`PublicKeyCredential.toJSON()`) for options from
        /// `POST /passkeys/options`, by a passkey of the same account.
        #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
        passkey: Option<serde_json::Value>,
    }
}

request! {
    /// A passkey to add: the browser's answer to `POST /user/passkeys/options`.
    pub struct PasskeyRegistrationRequest {
        /// What the account page lists it as.
        #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
        name: String,
        /// `PublicKeyCredential.toJSON()` of `navigator.credentials.create()`.
        #[cfg_attr(feature = "openapi", schema(value_type = Object))]
        credential: serde_json::Value,
    }
}

request! {
    /// Signs in with a passkey: the browser's answer to `POST /passkeys/options`.
    pub struct PasskeyLoginRequest {
        /// `PublicKeyCredential.toJSON()` of `navigator.credentials.get()`.
        #[cfg_attr(feature = "openapi", schema(value_type = Object))]
        credential: serde_json::Value,
        /// A session that outlives the browser (as `/login`'s `remember`).
        remember: Option<bool>,
    }
}

request! {
    pub struct EmailChangeRequest {
        /// The new address; a link to confirm it is mailed there.
        #[cfg_attr(feature = "openapi", schema(format = Email, max_length = 254))]
        email: String,
    }
}

request! {
    pub struct UpdatePasswordRequest {
        #[cfg_attr(feature = "openapi", schema(min_length = 1))]
        current_password: String,
        /// The registration policy applies (length, common and guessable passwords, the user's
        /// name and address).
        #[cfg_attr(feature = "openapi", schema(min_length = 15, max_length = 128))]
        password: String,
        #[cfg_attr(feature = "openapi", schema(min_length = 15, max_length = 128))]
        password_confirmation: String,
    }
}

request! {
    /// Begins signing in (or up) with an identity provider.
    pub struct FederationStartRequest {
        /// A session that outlives the browser (as `/login`'s `remember`).
        remember: Option<bool>,
    }
}

request! {
    /// The provider's answer, as its redirect carried it to your app's page, posted from the
    /// browser that began the flow (its binding cookie).
    pub struct FederationCallbackRequest {
        code: String,
        state: String,
        /// RFC 9207's `iss`, when the provider sent one.
        iss: Option<String>,
    }
}

request! {
    /// Asks for a sign-in mail: a link and a six-digit code, for this browser (its binding cookie).
    pub struct EmailLinkRequest {
        #[cfg_attr(feature = "openapi", schema(format = Email, max_length = 254))]
        email: String,
        /// A session that outlives the browser (as `/login`'s `remember`).
        remember: Option<bool>,
    }
}

request! {
    /// Finishes a sign-in by mail, from the browser that asked (its binding cookie): one of
    /// `token` (the mailed link's) or `code`.
    pub struct EmailLinkCompleteRequest {
        /// The `token` of the mailed link.
        #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]{43}$"))]
        token: Option<String>,
        /// The six-digit code of the same mail.
        #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9]{6}$"))]
        code: Option<String>,
    }
}
