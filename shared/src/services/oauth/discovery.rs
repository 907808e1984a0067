//! What the provider publishes about itself: OpenID Connect Discovery's
//! `/.well-known/openid-configuration`, RFC 8414's `/.well-known/oauth-authorization-server`
//! (the same document), and RFC 9728's protected-resource metadata for the API behind it.

use super::{OAuthProvider, OIDC_SCOPES};
use serde_json::{Value, json};

/// Paths of the endpoints, below the issuer (the API) or the pages' base.
pub const AUTHORIZE_PATH: &str = "/oauth/authorize";
pub const END_SESSION_PATH: &str = "/oauth/logout";
pub const TOKEN_PATH: &str = "/oauth/token";
pub const USERINFO_PATH: &str = "/oauth/userinfo";
pub const INTROSPECT_PATH: &str = "/oauth/introspect";
pub const REVOKE_PATH: &str = "/oauth/revoke";
pub const REGISTER_PATH: &str = "/oauth/register";
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

impl OAuthProvider {
    /// The provider's metadata.
    pub fn metadata(&self) -> Value {
        let cfg = &self.config().oauth;
        let iss = &cfg.issuer;
        let auth_methods = ["client_secret_basic", "client_secret_post", "none"];
        let mut m = json!({
            "issuer": iss,
            "authorization_endpoint": format!("{}{AUTHORIZE_PATH}", cfg.pages_base),
            "end_session_endpoint": format!("{}{END_SESSION_PATH}", cfg.pages_base),
            "token_endpoint": format!("{iss}{TOKEN_PATH}"),
            "userinfo_endpoint": format!("{iss}{USERINFO_PATH}"),
            "introspection_endpoint": format!("{iss}{INTROSPECT_PATH}"),
            "revocation_endpoint": format!("{iss}{REVOKE_PATH}"),
            "jwks_uri": format!("{iss}{JWKS_PATH}"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "code_challenge_methods_supported": ["S256"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "userinfo_signing_alg_values_supported": ["none"],
            "token_endpoint_auth_methods_supported": auth_methods,
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "revocation_endpoint_auth_methods_supported": auth_methods,
            "scopes_supported": OIDC_SCOPES,
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "sid", "at_hash", "name", "updated_at", "email", "email_verified"],
            "prompt_values_supported": ["none", "login", "consent"],
            "authorization_response_iss_parameter_supported": true,
            "request_parameter_supported": false,
            "request_uri_parameter_supported": false,
            "claims_parameter_supported": false,
        });
        if cfg.registration.enabled() {
            m["registration_endpoint"] = json!(format!("{iss}{REGISTER_PATH}"));
        }
        m
    }

    /// RFC 9728: how a client finds the authorization server of the API behind gatehouse.
    pub fn protected_resource_metadata(&self) -> Value {
        let cfg = &self.config().oauth;
        json!({
            "resource": cfg.audience,
            "authorization_servers": [cfg.issuer],
            "bearer_methods_supported": ["header"],
            "scopes_supported": OIDC_SCOPES,
            "jwks_uri": format!("{}{JWKS_PATH}", cfg.issuer),
        })
    }
}
