//! The identity providers people may sign in with (Laravel Socialite's configuration): any OpenID
//! Connect provider from its issuer, ready entries for Google, Apple and Microsoft, and GitHub
//! (OAuth 2.0 and its user API). Read once with the rest of [`crate::Config`].

/// A provider setting that cannot be used: the variable and why ([`crate::config::ConfigError`]
/// says it at start-up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderError {
    pub var: String,
    pub problem: String,
}

type ConfigError = ProviderError;

/// Every configured provider, and whether a new identity may create an account.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FederationConfig {
    pub providers: Vec<Provider>,
    /// `GATEHOUSE_FEDERATION_SIGNUP` (default `true`): a provider identity with a verified address
    /// no account holds creates one.
    pub signup: bool,
    /// Flows begun, and callbacks finished, per client a minute
    /// (`GATEHOUSE_FEDERATION_PER_CLIENT_PER_MINUTE`, 30 each).
    pub per_client_per_minute: u32,
}

impl FederationConfig {
    pub fn provider(&self, id: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.id == id)
    }
}

/// What protocol a provider speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderKind {
    /// OpenID Connect: the issuer's discovery document names every endpoint.
    Oidc { issuer: String },
    /// GitHub: OAuth 2.0 (no ID token); the user and its verified addresses from its API.
    GitHub { authorize_url: String, token_url: String, api_url: String },
}

/// How the client authenticates at the provider's token endpoint.
#[derive(Clone, PartialEq, Eq)]
pub enum ClientSecret {
    /// `client_secret_basic` (`basic: true`) or `client_secret_post`.
    Static { secret: String, basic: bool },
    /// Apple's: a JWT (ES256) signed with the team's key, made fresh for each exchange, posted.
    AppleJwt { team_id: String, key_id: String, key: Box<crate::values::jwt::LocalKey> },
    /// A public client (PKCE alone).
    None,
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Static { basic, .. } => write!(f, "Static {{ secret: [REDACTED], basic: {basic} }}"),
            Self::AppleJwt { team_id, key_id, .. } => {
                write!(f, "AppleJwt {{ team_id: {team_id:?}, key_id: {key_id:?}, key: [REDACTED] }}")
            }
            Self::None => f.write_str("None"),
        }
    }
}

/// One configured provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    /// The id in routes and in the identities table: `[a-z0-9-]{1,32}`.
    pub id: String,
    /// What the "Continue with …" button says.
    pub name: String,
    pub kind: ProviderKind,
    pub client_id: String,
    pub secret: ClientSecret,
    pub scopes: Vec<String>,
    /// `_TRUST_EMAIL`: the provider's "this address is verified" may link an identity to an
    /// existing account holding that (verified) address, and mark a new account's address
    /// verified. Off by default: a provider that lets anyone claim any address would otherwise
    /// hand out accounts.
    pub trust_email: bool,
    pub redirect_uri: String,
    /// `_KEEP_TOKENS`: keep the provider's tokens (sealed) with the identity, for the app to call
    /// the provider's API; off by default, and nothing is stored then.
    pub keep_tokens: bool,
    /// Apple posts its answer (`response_mode=form_post`) when names or addresses are asked for.
    pub form_post: bool,
}

/// The issuer and display name of the ready entries.
fn preset(id: &str, tenant: &str) -> Option<(&'static str, String)> {
    match id {
        "google" => Some(("Google", "https://accounts.google.com".to_owned())),
        "apple" => Some(("Apple", "https://appleid.apple.com".to_owned())),
        "microsoft" => Some(("Microsoft", format!("https://login.microsoftonline.com/{tenant}/v2.0"))),
        _ => None,
    }
}

fn invalid(var: &str, problem: impl Into<String>) -> ConfigError {
    ProviderError { var: var.to_owned(), problem: problem.into() }
}

/// An https URL without a fragment (http only on this machine).
fn url(var: &str, v: String) -> Result<String, ConfigError> {
    let v = v.trim().trim_end_matches('/').to_owned();
    if !allowed_url(&v) {
        return Err(invalid(var, "an https URL without a fragment (http only for 127.0.0.1 or localhost)"));
    }
    Ok(v)
}

/// Whether `v` is an address a relying party may call or send a browser to: printable ASCII
/// without spaces or a fragment, at most 1000 characters; `https://` with a host and no user
/// part (`https://a@b` is host `b`), or `http://` to this machine alone — exactly `127.0.0.1`,
/// `localhost` or `[::1]`, with or without a port (not `localhost.example.com`). Also checks the
/// endpoints a discovery document names.
pub fn allowed_url(v: &str) -> bool {
    if v.len() > 1000 || !v.bytes().all(|b| b.is_ascii_graphic()) || v.contains('#') {
        return false;
    }
    let (local_only, rest) = match (v.strip_prefix("https://"), v.strip_prefix("http://")) {
        (Some(rest), _) => (false, rest),
        (None, Some(rest)) => (true, rest),
        _ => return false,
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') || authority.contains('\\') {
        return false;
    }
    if !local_only {
        return true;
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().map(|h| format!("[{h}]")).unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default().to_owned(),
    };
    let port_ok = authority.strip_prefix(host.as_str()).is_some_and(|p| {
        p.is_empty() || p.strip_prefix(':').is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    });
    matches!(host.as_str(), "127.0.0.1" | "localhost" | "[::1]") && port_ok
}

/// Reads `GATEHOUSE_FEDERATION_*`; `base` is the deployment's public address (callbacks default
/// to `<base>/account/providers/<id>/callback`).
///
/// `GATEHOUSE_FEDERATION` may instead hold them all as one JSON object (a deployment's one secret
/// parameter): `{"google": {"client_id": "…", "client_secret": "…", "trust_email": true}}` is
/// `GATEHOUSE_FEDERATION_PROVIDERS=google`, `GATEHOUSE_FEDERATION_GOOGLE_CLIENT_ID=…`, and so on;
/// a variable set on its own wins.
pub(crate) fn read(get: &dyn Fn(&str) -> Option<String>, base: Option<&str>) -> Result<FederationConfig, ConfigError> {
    let from_json = json_settings(get("GATEHOUSE_FEDERATION").as_deref())?;
    let var = |name: &str| {
        get(name).or_else(|| from_json.get(name).cloned()).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    };
    let flag = |name: &str, default: bool| -> Result<bool, ConfigError> {
        match var(name).as_deref() {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(_) => Err(invalid(name, "expected true or false")),
        }
    };
    let signup = flag("GATEHOUSE_FEDERATION_SIGNUP", true)?;
    let per_client_per_minute =
        match var("GATEHOUSE_FEDERATION_PER_CLIENT_PER_MINUTE") {
            None => 30,
            Some(v) => v.parse::<u32>().ok().filter(|n| (1..=100_000).contains(n)).ok_or_else(|| {
                invalid("GATEHOUSE_FEDERATION_PER_CLIENT_PER_MINUTE", "a whole number from 1 to 100000")
            })?,
        };
    let mut providers: Vec<Provider> = Vec::new();
    for id in var("GATEHOUSE_FEDERATION_PROVIDERS").unwrap_or_default().split(',').map(str::trim) {
        if id.is_empty() {
            continue;
        }
        if id.len() > 32 || !id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return Err(invalid("GATEHOUSE_FEDERATION_PROVIDERS", format!("{id:?}: ids are [a-z0-9-], 1 to 32")));
        }
        if providers.iter().any(|p| p.id == id) {
            return Err(invalid("GATEHOUSE_FEDERATION_PROVIDERS", format!("{id:?} is named twice")));
        }
        let prefix = format!("GATEHOUSE_FEDERATION_{}_", id.to_ascii_uppercase().replace('-', "_"));
        let name_of = |suffix: &str| format!("{prefix}{suffix}");
        let get_of = |suffix: &str| var(&name_of(suffix));
        let required = |suffix: &str| get_of(suffix).ok_or_else(|| invalid(&name_of(suffix), "is required"));
        let tenant = get_of("TENANT").unwrap_or_else(|| "common".to_owned());
        let kind_name = get_of("KIND").unwrap_or_else(|| if id == "github" { "github" } else { "oidc" }.to_owned());
        let (default_name, kind) = match kind_name.as_str() {
            "oidc" => {
                let (label, issuer) = match (get_of("ISSUER"), preset(id, &tenant)) {
                    (Some(issuer), p) => (p.map_or(id.to_owned(), |(l, _)| l.to_owned()), issuer),
                    (None, Some((l, issuer))) => (l.to_owned(), issuer),
                    (None, None) => return Err(invalid(&name_of("ISSUER"), "is required for an OpenID provider")),
                };
                (label, ProviderKind::Oidc { issuer: url(&name_of("ISSUER"), issuer)? })
            }
            "github" => {
                let at = |suffix: &str, default: &str| url(&name_of(suffix), get_of(suffix).unwrap_or(default.into()));
                let kind = ProviderKind::GitHub {
                    authorize_url: at("AUTHORIZE_URL", "https://github.com/login/oauth/authorize")?,
                    token_url: at("TOKEN_URL", "https://github.com/login/oauth/access_token")?,
                    api_url: at("API_URL", "https://api.github.com")?,
                };
                ("GitHub".to_owned(), kind)
            }
            other => return Err(invalid(&name_of("KIND"), format!("{other:?}: expected oidc or github"))),
        };
        let secret = if id == "apple" || get_of("TEAM_ID").is_some() {
            let pem = required("PRIVATE_KEY")?.replace("\\n", "\n");
            let key = crate::values::jwt::LocalKey::from_pem(&pem).map_err(|p| invalid(&name_of("PRIVATE_KEY"), p))?;
            ClientSecret::AppleJwt { team_id: required("TEAM_ID")?, key_id: required("KEY_ID")?, key: Box::new(key) }
        } else {
            match get_of("CLIENT_SECRET") {
                Some(secret) => {
                    let basic = match get_of("TOKEN_AUTH").as_deref() {
                        None | Some("basic") => true,
                        Some("post") => false,
                        Some(_) => return Err(invalid(&name_of("TOKEN_AUTH"), "expected basic or post")),
                    };
                    ClientSecret::Static { secret, basic }
                }
                None => ClientSecret::None,
            }
        };
        let default_scopes = match kind {
            ProviderKind::Oidc { .. } => "openid email profile",
            ProviderKind::GitHub { .. } => "read:user user:email",
        };
        let scopes: Vec<String> = get_of("SCOPES")
            .unwrap_or(default_scopes.into())
            .split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(Into::into)
            .collect();
        if matches!(kind, ProviderKind::Oidc { .. }) && !scopes.iter().any(|s| s == "openid") {
            return Err(invalid(&name_of("SCOPES"), "an OpenID provider's scopes include openid"));
        }
        let default_uri = base.map(|b| format!("{b}/account/providers/{id}/callback"));
        let Some(redirect_uri) = get_of("REDIRECT_URI").or(default_uri) else {
            return Err(invalid(&name_of("REDIRECT_URI"), "is required on Lambda unless GATEHOUSE_PUBLIC_URL is set"));
        };
        let redirect_uri = url(&name_of("REDIRECT_URI"), redirect_uri)?;
        providers.push(Provider {
            id: id.to_owned(),
            name: get_of("NAME").unwrap_or(default_name),
            client_id: required("CLIENT_ID")?,
            form_post: id == "apple" && scopes.iter().any(|s| s == "email" || s == "name"),
            kind,
            secret,
            scopes,
            trust_email: flag(&name_of("TRUST_EMAIL"), false)?,
            redirect_uri,
            keep_tokens: flag(&name_of("KEEP_TOKENS"), false)?,
        });
    }
    Ok(FederationConfig { providers, signup, per_client_per_minute })
}

/// `GATEHOUSE_FEDERATION`'s object as the variables it stands for.
fn json_settings(raw: Option<&str>) -> Result<std::collections::HashMap<String, String>, ConfigError> {
    let mut out = std::collections::HashMap::new();
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else { return Ok(out) };
    let bad = |problem: &str| invalid("GATEHOUSE_FEDERATION", problem);
    let value: serde_json::Value = serde_json::from_str(raw).map_err(|_| bad("not a JSON object"))?;
    let providers = value.as_object().ok_or_else(|| bad("not a JSON object"))?;
    let ids: Vec<&str> = providers.keys().map(String::as_str).collect();
    out.insert("GATEHOUSE_FEDERATION_PROVIDERS".to_owned(), ids.join(","));
    for (id, settings) in providers {
        let settings = settings.as_object().ok_or_else(|| bad("each provider's settings are an object"))?;
        for (key, v) in settings {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Bool(b) => b.to_string(),
                serde_json::Value::Array(a) => a.iter().filter_map(|s| s.as_str()).collect::<Vec<_>>().join(" "),
                _ => return Err(bad("settings are strings, booleans or lists of strings")),
            };
            let name = format!(
                "GATEHOUSE_FEDERATION_{}_{}",
                id.to_ascii_uppercase().replace('-', "_"),
                key.to_ascii_uppercase()
            );
            out.insert(name, text);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> Result<FederationConfig, ConfigError> {
        let map: std::collections::HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        read(&|k| map.get(k).cloned(), Some("https://auth.example.com"))
    }

    #[test]
    fn presets_fill_the_issuer_and_github_its_endpoints() {
        let c = with(&[
            ("GATEHOUSE_FEDERATION_PROVIDERS", "google, github"),
            ("GATEHOUSE_FEDERATION_GOOGLE_CLIENT_ID", "g"),
            ("GATEHOUSE_FEDERATION_GOOGLE_CLIENT_SECRET", "s"),
            ("GATEHOUSE_FEDERATION_GOOGLE_TRUST_EMAIL", "true"),
            ("GATEHOUSE_FEDERATION_GITHUB_CLIENT_ID", "h"),
        ])
        .unwrap();
        let google = c.provider("google").unwrap();
        assert_eq!(google.kind, ProviderKind::Oidc { issuer: "https://accounts.google.com".into() });
        assert!(google.trust_email);
        assert_eq!(google.redirect_uri, "https://auth.example.com/account/providers/google/callback");
        assert!(!format!("{google:?}").contains("\"s\""), "the secret is never printed");
        let github = c.provider("github").unwrap();
        assert!(matches!(github.kind, ProviderKind::GitHub { .. }));
        assert!(!github.trust_email, "trust is opt-in");
        assert!(c.signup);
    }

    #[test]
    fn one_json_object_stands_for_the_variables_and_a_variable_wins() {
        let json = r#"{"google": {"client_id": "g", "client_secret": "s", "trust_email": true},
                       "gh": {"kind": "github", "client_id": "h", "scopes": ["read:user", "user:email"]}}"#;
        let c = with(&[("GATEHOUSE_FEDERATION", json), ("GATEHOUSE_FEDERATION_GOOGLE_CLIENT_ID", "own")]).unwrap();
        let google = c.provider("google").unwrap();
        assert_eq!((google.client_id.as_str(), google.trust_email), ("own", true));
        assert_eq!(c.provider("gh").unwrap().scopes, vec!["read:user", "user:email"]);
        assert!(with(&[("GATEHOUSE_FEDERATION", "[1]")]).is_err());
    }

    #[test]
    fn only_https_or_this_machine_over_http_is_an_allowed_address() {
        for ok in [
            "https://accounts.google.com",
            "https://idp.example.com/tenant/v2.0?x=1",
            "http://127.0.0.1:9000",
            "http://localhost/cb",
            "http://[::1]:8080/x",
        ] {
            assert!(allowed_url(ok), "{ok}");
        }
        for bad in [
            "http://localhost.evil.example/",
            "http://127.0.0.1.nip.io/",
            "http://localhost@evil.example/",
            "https://user@idp.example.com",
            "http://127.0.0.1:/x",
            "http://example.com",
            "https://idp.example.com/#frag",
            "https://idp.example.com/a b",
            "https://idp.example.com/\u{e9}",
            "ftp://idp.example.com",
            "https://",
        ] {
            assert!(!allowed_url(bad), "{bad}");
        }
    }

    #[test]
    fn bad_ids_missing_issuers_and_plain_http_are_refused() {
        for bad in [
            vec![("GATEHOUSE_FEDERATION_PROVIDERS", "Idp")],
            vec![("GATEHOUSE_FEDERATION_PROVIDERS", "idp"), ("GATEHOUSE_FEDERATION_IDP_CLIENT_ID", "c")],
            vec![
                ("GATEHOUSE_FEDERATION_PROVIDERS", "idp"),
                ("GATEHOUSE_FEDERATION_IDP_CLIENT_ID", "c"),
                ("GATEHOUSE_FEDERATION_IDP_ISSUER", "http://idp.example.com"),
            ],
            vec![
                ("GATEHOUSE_FEDERATION_PROVIDERS", "idp"),
                ("GATEHOUSE_FEDERATION_IDP_CLIENT_ID", "c"),
                ("GATEHOUSE_FEDERATION_IDP_ISSUER", "https://idp.example.com"),
                ("GATEHOUSE_FEDERATION_IDP_SCOPES", "email"),
            ],
            vec![("GATEHOUSE_FEDERATION_PROVIDERS", "google,google"), ("GATEHOUSE_FEDERATION_GOOGLE_CLIENT_ID", "c")],
        ] {
            assert!(with(&bad).is_err(), "{bad:?} was accepted");
        }
    }
}
