//! Configuration, read once from the environment. Errors name the variable.

use crate::throttle::Limit;
use chrono::Duration;
use std::collections::HashMap;
use thiserror::Error;

/// The port the local run's defaults point at (`gatehouse serve`'s own default): the links mailed
/// and the passkey origin. [`Config::for_local_run`] takes another.
pub const LOCAL_PORT: u16 = 8080;

/// How long a promised notice's job waits before it looks for its mark
/// ([`crate::queue::Dispatcher::promise`]): longer than any API request runs (the HTTP functions'
/// `Timeout` in template.yaml, which a test holds below this), so by then the change's write has
/// landed or never will.
pub const NOTICE_DELAY: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{var}: {problem} (got {value:?})")]
    Invalid { var: &'static str, value: String, problem: String },
    #[error("{var} is required: {why}")]
    Missing { var: &'static str, why: &'static str },
    /// A setting of one identity provider (`GATEHOUSE_FEDERATION_<ID>_…`).
    #[error("{var}: {problem}")]
    Provider { var: String, problem: String },
    /// A blocking hook's setting (`GATEHOUSE_HOOK_…`).
    #[error("{0}")]
    Hook(String),
}

/// Names of the tables and queues of one deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// Prepended to every table's logical name (`gatehouse-` → `gatehouse-users`).
    pub table_prefix: String,
    /// Prepended to the queues' logical names.
    pub queue_prefix: String,
    /// The jobs queue's URL, when known (skips a GetQueueUrl on first use).
    pub jobs_queue_url: Option<String>,
}

impl Names {
    pub fn table(&self, logical: &str) -> String {
        format!("{}{}", self.table_prefix, logical)
    }
    pub fn queue(&self, logical: &str) -> String {
        format!("{}{}", self.queue_prefix, logical)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// The session cookie's name, with its prefix: `__Host-` (host-only, `Path=/`, `Secure`) when no
    /// domain is set, `__Secure-` when one is.
    pub cookie_name: String,
    pub cookie_domain: Option<String>,
    /// Browser origins (`https://app.example.com`) besides the API's own that may make
    /// cookie-authenticated state changes (the CSRF check); lower-cased, exact.
    pub allowed_origins: Vec<String>,
    /// Idle lifetime: a session unused this long is over (sliding).
    pub idle: Duration,
    /// Absolute lifetime from login (30 days by default; `none` only when configured so): no
    /// activity and no "remember me" extends a session past it.
    pub absolute: Option<Duration>,
    /// How long a password confirmation counts as recent (Laravel's `auth.password_timeout`,
    /// 3 hours there; 15 minutes here, since it guards adding lasting ways in). Signing in is
    /// never a confirmation.
    pub password_timeout: Duration,
    /// Idle lifetime of a "remember me" session (and its cookie's max age).
    pub remember: Duration,
    /// `last_activity` is written at most once per this interval.
    pub touch_interval: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordConfig {
    pub min_len: usize,
    pub max_len: usize,
    /// The lowest zxcvbn score (0..=4) a new password may have.
    pub min_score: u8,
    pub argon2: crate::values::password::HashCost,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetConfig {
    pub expire: Duration,
    pub throttle: Duration,
    /// The link mailed, with `{token}` and `{email}` placeholders. Never built from the request.
    pub url_template: String,
    pub subject: String,
    /// Requests to `/forgot-password` allowed per IP per minute.
    pub per_ip_per_minute: i64,
    /// Reset links asked for one address per day (`GATEHOUSE_RESET_MAILS_PER_DAY`), from all
    /// clients together; past it the answer is the same and nothing is mailed.
    pub mails_per_day: i64,
}

/// Email verification (Laravel's `MustVerifyEmail`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationConfig {
    /// How long a mailed link works.
    pub expire: Duration,
    /// The link mailed, with `{id}`, `{hash}`, `{expires}` and `{signature}` placeholders.
    pub url_template: String,
    pub subject: String,
    /// Resends allowed per user per minute (Laravel's `throttle:6,1`).
    pub resend_per_minute: i64,
    /// The link mailed to confirm a new address, with `{id}`, `{email}`, `{expires}` and
    /// `{signature}` placeholders (it expires as the verification link does).
    pub email_change_url_template: String,
}

/// Where mail goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailerKind {
    /// Printed to standard output (local only).
    Log,
    /// Amazon SES v2.
    Ses,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailConfig {
    pub mailer: MailerKind,
    pub from: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenConfig {
    /// Put before every token secret so secret scanners can spot leaks.
    pub prefix: String,
    /// No token lives longer than this, whatever it asked for.
    pub max_age: Option<Duration>,
    /// `last_used_at` is written at most once per this interval.
    pub last_used_interval: Duration,
    /// If set, each use pushes the expiry this far ahead (within `max_age`).
    pub sliding: Option<Duration>,
    /// A token minted from a session that lives longer than this is strong: it needs a recent
    /// password confirmation, as `*`, no expiry, `tokens:create` and `cross-app:handoff` do.
    pub strong_after: Duration,
}

/// Rate limits, each counted before the work it guards (see `throttle.rs`). A "client" is an
/// IPv4 address or an IPv6 /64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Login and token-issue attempts per (email, client).
    pub login_per_email_client: Limit,
    /// Login and token-issue attempts per client, across every email.
    pub login_per_client: Limit,
    /// Attempts per account from devices without a device cookie: the flood limit that cannot
    /// lock the owner out, because a known device counts on its own.
    pub login_per_account: Limit,
    /// Attempts per device cookie.
    pub login_per_device: Limit,
    /// Attempts per account from the devices it knows, all together
    /// (`GATEHOUSE_LOGIN_KNOWN_DEVICES_PER_ACCOUNT_PER_HOUR`, 4 × the unknown-device limit unless
    /// set, never below it): a known device still meets a ceiling.
    pub login_known_per_account: Limit,
    pub register_per_client: Limit,
    pub reset_per_client: Limit,
    /// Password checks of a signed-in user (confirm password, log out other devices).
    pub password_check_per_user: Limit,
    pub exchange_per_client: Limit,
    /// Tokens a user's credentials may mint (`POST /tokens`), per hour and per day: a stolen
    /// credential cannot pad the register without bound.
    pub tokens_per_user: [Limit; 2],
    /// Cross-app handoffs a user's credentials may make, per hour and per day.
    pub handoffs_per_user: [Limit; 2],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub names: Names,
    pub session: SessionConfig,
    pub passwords: PasswordConfig,
    pub reset: ResetConfig,
    pub verification: VerificationConfig,
    pub mail: MailConfig,
    pub tokens: TokenConfig,
    pub failed_job_retention: Duration,
    pub batch_retention: Duration,
    /// How long a promised notice's job waits before it looks for its change
    /// (`GATEHOUSE_NOTICE_DELAY_SECONDS`, [`NOTICE_DELAY`] by default): longer than
    /// any API request runs.
    pub notice_delay: std::time::Duration,
    /// How long a recorded event is kept in the `events` table (`GATEHOUSE_EVENT_RETENTION_DAYS`,
    /// 7 by default): the time its deliveries have.
    pub event_retention: Duration,
    /// The EventBridge bus every recorded event is also put on (`GATEHOUSE_EVENT_BUS`, the
    /// template's bus); none when unset.
    pub event_bus: Option<String>,
    /// The blocking hooks (`GATEHOUSE_HOOK_*`); none by default.
    pub hooks: crate::hooks::Hooks,
    /// The proxies in front of the API whose `X-Forwarded-For` is believed
    /// (`GATEHOUSE_TRUSTED_PROXIES`: addresses or CIDR ranges, comma-separated): a request
    /// from one of them is the client's at the rightmost address of that header that is not a
    /// trusted proxy. None by default: the connecting address is the client's.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// This deployment's app name (source of cross-app handoffs).
    pub app_name: String,
    /// Apps a handoff may target.
    pub apps: Vec<String>,
    pub handoff_lifetime: Duration,
    /// How long cross-app session audit records are kept.
    pub cross_app_audit_retention: Duration,
    /// The deployment's secret key (`GATEHOUSE_APP_KEY`): sealed cursors, keyed email tags.
    pub app_key: crate::keys::AppKey,
    pub limits: LimitsConfig,
    /// What each route requires of its caller (`GATEHOUSE_ROUTE_ABILITIES`), judged alike by the
    /// authorizer and by the functions.
    pub route_abilities: crate::routes::RouteAbilities,
    pub passkeys: PasskeyConfig,
    /// Passwordless sign-in by mail ([`crate::services::email_link`]).
    pub email_link: EmailLinkConfig,
    /// The OAuth 2.1 / OpenID Connect provider.
    pub oauth: OAuthConfig,
    /// The identity providers people may sign in with ([`crate::providers`]).
    pub federation: crate::providers::FederationConfig,
}

/// The WebAuthn relying party ([`crate::services::passkeys`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyConfig {
    /// `GATEHOUSE_PASSKEY_RP_ID`: the domain passkeys are bound to (`example.com` serves
    /// `app.example.com` too). `localhost` by default, for the local run.
    pub rp_id: String,
    /// `GATEHOUSE_PASSKEY_ORIGINS`: the exact origins a ceremony may come from; by default
    /// `https://<rp_id>`, and `http://localhost:8080` for `localhost`.
    pub origins: Vec<String>,
}

impl PasskeyConfig {
    /// The relying party (validated when the configuration was read).
    pub fn relying_party(&self) -> Result<crate::values::relying_party::RelyingParty, String> {
        crate::values::relying_party::RelyingParty::new(&self.rp_id, &self.origins)
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads from a map (tests).
    pub fn from_map(map: &HashMap<String, String>) -> Result<Self, ConfigError> {
        Self::from_lookup(|k| map.get(k).cloned())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::from_lookup_serving(get, LOCAL_PORT)
    }

    /// The environment's configuration for `gatehouse serve --port <port>`: the links mailed and
    /// the passkey origin default to that port on this machine (what is set still wins).
    pub fn for_local_run(port: u16) -> Result<Self, ConfigError> {
        Self::from_lookup_serving(|k| std::env::var(k).ok(), port)
    }

    /// [`Config::from_lookup`], the local defaults (links, passkey origin) at `port`.
    fn from_lookup_serving(get: impl Fn(&str) -> Option<String>, port: u16) -> Result<Self, ConfigError> {
        let env = Env(&get);
        let local = format!("http://127.0.0.1:{port}");
        let apps: Vec<String> = env
            .string("GATEHOUSE_APPS", "")
            .split(',')
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty())
            .collect();
        Ok(Config {
            names: names(&env)?,
            session: session(&env)?,
            trusted_proxies: trusted_proxies(&env.string("GATEHOUSE_TRUSTED_PROXIES", ""))?,
            passwords: passwords(&env)?,
            reset: reset(&env, &local)?,
            verification: verification(&env, &local)?,
            mail: mail(&env)?,
            tokens: tokens(&env)?,
            failed_job_retention: Duration::days(env.number("GATEHOUSE_FAILED_JOB_RETENTION_DAYS", 30, 1, 3650)?),
            batch_retention: Duration::days(env.number("GATEHOUSE_BATCH_RETENTION_DAYS", 30, 1, 3650)?),
            notice_delay: std::time::Duration::from_secs(env.number(
                "GATEHOUSE_NOTICE_DELAY_SECONDS",
                NOTICE_DELAY.as_secs() as i64,
                0,
                900,
            )? as u64),
            event_retention: Duration::days(env.number("GATEHOUSE_EVENT_RETENTION_DAYS", 7, 1, 365)?),
            event_bus: Some(env.string("GATEHOUSE_EVENT_BUS", "")).filter(|b| !b.trim().is_empty()),
            hooks: crate::hooks::Hooks::from_lookup(&|k| get(k)).map_err(ConfigError::Hook)?,
            app_name: env.string("GATEHOUSE_APP_NAME", "gatehouse"),
            apps,
            handoff_lifetime: Duration::seconds(env.number("GATEHOUSE_HANDOFF_SECONDS", 120, 10, 3600)?),
            cross_app_audit_retention: Duration::days(env.number("GATEHOUSE_CROSS_APP_AUDIT_DAYS", 90, 1, 3650)?),
            route_abilities: route_abilities(&env)?,
            passkeys: passkeys(&env, port)?,
            email_link: email_link(&env, &local)?,
            oauth: oauth(&env, &local)?,
            federation: crate::providers::read(
                &get,
                env.raw("GATEHOUSE_PUBLIC_URL")
                    .or_else(|| env.raw("GATEHOUSE_OAUTH_ISSUER"))
                    .filter(|v| !v.trim().is_empty())
                    // On Lambda no local address stands in: a callback must name the deployment.
                    .or_else(|| env.raw("AWS_LAMBDA_FUNCTION_NAME").is_none_or(|f| f.is_empty()).then(|| local.clone()))
                    .as_deref()
                    .map(|b| b.trim_end_matches('/')),
            )
            .map_err(|e| ConfigError::Provider { var: e.var, problem: e.problem })?,
            limits: limits(&env)?,
            app_key: app_key(&env)?,
        })
    }
}

/// `GATEHOUSE_TABLE_PREFIX`, `GATEHOUSE_QUEUE_PREFIX`, `GATEHOUSE_JOBS_QUEUE_URL`.
fn names(env: &Env<'_>) -> Result<Names, ConfigError> {
    let table_prefix = env.string("GATEHOUSE_TABLE_PREFIX", "gatehouse-");
    if !table_prefix.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)) || table_prefix.len() > 200 {
        return Err(ConfigError::Invalid {
            var: "GATEHOUSE_TABLE_PREFIX",
            value: table_prefix,
            problem: "only letters, digits, '_', '-' and '.' (DynamoDB table names)".into(),
        });
    }
    let queue_prefix = env.string("GATEHOUSE_QUEUE_PREFIX", &table_prefix);
    if !queue_prefix.chars().all(|c| c.is_ascii_alphanumeric() || "_-".contains(c)) || queue_prefix.len() > 60 {
        return Err(ConfigError::Invalid {
            var: "GATEHOUSE_QUEUE_PREFIX",
            value: queue_prefix,
            problem: "only letters, digits, '_' and '-', at most 60 (SQS queue names)".into(),
        });
    }
    Ok(Names {
        table_prefix,
        queue_prefix,
        jobs_queue_url: env.raw("GATEHOUSE_JOBS_QUEUE_URL").filter(|s| !s.is_empty()),
    })
}

/// The session cookie and its lifetimes, and the origins allowed to send it.
fn session(env: &Env<'_>) -> Result<SessionConfig, ConfigError> {
    let cookie_domain = env.raw("GATEHOUSE_SESSION_DOMAIN").filter(|s| !s.is_empty());
    let cookie_name =
        prefixed_cookie_name(env.string("GATEHOUSE_SESSION_COOKIE", "gatehouse_session"), cookie_domain.is_some())?;
    Ok(SessionConfig {
        cookie_name,
        cookie_domain,
        allowed_origins: allowed_origins(&env.string("GATEHOUSE_ALLOWED_ORIGINS", ""))?,
        idle: Duration::minutes(env.number("GATEHOUSE_SESSION_LIFETIME_MINUTES", 120, 1, 525_600)?),
        absolute: env
            .number_or_none("GATEHOUSE_SESSION_ABSOLUTE_LIFETIME_MINUTES", 30 * 24 * 60, 1, 5_256_000)?
            .map(Duration::minutes),
        password_timeout: Duration::seconds(env.number(
            "GATEHOUSE_PASSWORD_TIMEOUT_SECONDS",
            15 * 60,
            1,
            7 * 24 * 3600,
        )?),
        touch_interval: Duration::seconds(env.number("GATEHOUSE_SESSION_TOUCH_SECONDS", 60, 0, 3600)?),
        remember: Duration::days(env.number("GATEHOUSE_REMEMBER_DAYS", 30, 1, 400)?),
    })
}

/// The password policy and the argon2 cost.
fn passwords(env: &Env<'_>) -> Result<PasswordConfig, ConfigError> {
    let min_len = env.number("GATEHOUSE_PASSWORD_MIN_LENGTH", 15, 8, 64)?;
    let max_len = env.number("GATEHOUSE_PASSWORD_MAX_LENGTH", 128, 64, 1024)?;
    if min_len > max_len {
        return Err(ConfigError::Invalid {
            var: "GATEHOUSE_PASSWORD_MIN_LENGTH",
            value: min_len.to_string(),
            problem: "must not exceed GATEHOUSE_PASSWORD_MAX_LENGTH".into(),
        });
    }
    Ok(PasswordConfig {
        min_len: min_len as usize,
        max_len: max_len as usize,
        min_score: env.number(
            "GATEHOUSE_PASSWORD_MIN_SCORE",
            crate::values::password::DEFAULT_MIN_SCORE.into(),
            0,
            crate::values::password::MAX_SCORE.into(),
        )? as u8,
        argon2: crate::values::password::HashCost {
            memory_kib: env.number("GATEHOUSE_ARGON2_MEMORY_KIB", 19 * 1024, 8, 4 * 1024 * 1024)? as u32,
            iterations: env.number("GATEHOUSE_ARGON2_ITERATIONS", 2, 1, 100)? as u32,
            parallelism: env.number("GATEHOUSE_ARGON2_PARALLELISM", 1, 1, 16)? as u32,
        },
    })
}

/// Reset links: their lifetime, throttle and daily cap, and the URL they point at.
fn reset(env: &Env<'_>, local: &str) -> Result<ResetConfig, ConfigError> {
    let reset_mails_per_day = env.number("GATEHOUSE_RESET_MAILS_PER_DAY", 5, 1, 1000)?;
    Ok(ResetConfig {
        expire: Duration::minutes(env.number("GATEHOUSE_RESET_EXPIRE_MINUTES", 60, 1, 24 * 60)?),
        throttle: Duration::seconds(env.number("GATEHOUSE_RESET_THROTTLE_SECONDS", 60, 0, 3600)?),
        url_template: env
            .string("GATEHOUSE_RESET_URL", &format!("{local}/account/reset-password?token={{token}}&email={{email}}")),
        subject: env.string("GATEHOUSE_RESET_SUBJECT", "Reset your password"),
        per_ip_per_minute: env.number("GATEHOUSE_FORGOT_PER_IP_PER_MINUTE", 6, 1, 10_000)?,
        mails_per_day: reset_mails_per_day,
    })
}

/// Verification and address-change links.
fn verification(env: &Env<'_>, local: &str) -> Result<VerificationConfig, ConfigError> {
    Ok(VerificationConfig {
        expire: Duration::minutes(env.number("GATEHOUSE_VERIFY_EXPIRE_MINUTES", 60, 1, 7 * 24 * 60)?),
        url_template: env.string(
            "GATEHOUSE_VERIFY_URL",
            &format!("{local}/account/verify-email/{{id}}/{{hash}}?expires={{expires}}&signature={{signature}}"),
        ),
        subject: env.string("GATEHOUSE_VERIFY_SUBJECT", "Verify your email address"),
        resend_per_minute: env.number("GATEHOUSE_VERIFY_RESEND_PER_MINUTE", 6, 1, 1000)?,
        email_change_url_template: env.string(
            "GATEHOUSE_EMAIL_CHANGE_URL",
            &format!("{local}/user/email/confirm/{{id}}?email={{email}}&expires={{expires}}&signature={{signature}}"),
        ),
    })
}

/// The mailer, and on Lambda the links that must point at the team's app.
fn mail(env: &Env<'_>) -> Result<MailConfig, ConfigError> {
    // The Lambda runtime sets this; production-only rules key off it.
    let on_lambda = env.raw("AWS_LAMBDA_FUNCTION_NAME").is_some_and(|v| !v.is_empty());
    if on_lambda && env.raw("GATEHOUSE_RESET_URL").is_none_or(|v| v.is_empty()) {
        return Err(ConfigError::Missing {
            var: "GATEHOUSE_RESET_URL",
            why: "on Lambda the mailed reset link must point at your app (the default is a local address)",
        });
    }
    if on_lambda && env.raw("GATEHOUSE_VERIFY_URL").is_none_or(|v| v.is_empty()) {
        return Err(ConfigError::Missing {
            var: "GATEHOUSE_VERIFY_URL",
            why: "on Lambda the mailed verification link must point at your app (the default is a local address)",
        });
    }
    if on_lambda && env.raw("GATEHOUSE_EMAIL_CHANGE_URL").is_none_or(|v| v.is_empty()) {
        return Err(ConfigError::Missing {
            var: "GATEHOUSE_EMAIL_CHANGE_URL",
            why: "on Lambda the mailed address confirmation link must point at your app (the default is a local address)",
        });
    }
    let mailer = match env.string("GATEHOUSE_MAILER", "log").as_str() {
        "log" if on_lambda && !env.flag("GATEHOUSE_ALLOW_LOG_MAILER")? => {
            return Err(ConfigError::Invalid {
                var: "GATEHOUSE_MAILER",
                value: "log".into(),
                problem: "the log mailer (the default) writes reset links to the function's logs; on Lambda use \"ses\", or set GATEHOUSE_ALLOW_LOG_MAILER=true".into(),
            });
        }
        "log" => MailerKind::Log,
        "ses" => MailerKind::Ses,
        other => {
            return Err(ConfigError::Invalid {
                var: "GATEHOUSE_MAILER",
                value: other.to_owned(),
                problem: "expected \"log\" or \"ses\"".into(),
            });
        }
    };
    Ok(MailConfig { mailer, from: env.string("GATEHOUSE_MAIL_FROM", "gatehouse@example.com") })
}

/// Personal access tokens: prefix, ages, how often their use is written.
fn tokens(env: &Env<'_>) -> Result<TokenConfig, ConfigError> {
    Ok(TokenConfig {
        prefix: env.string("GATEHOUSE_TOKEN_PREFIX", "gth_"),
        max_age: env.optional_number("GATEHOUSE_TOKEN_MAX_AGE_MINUTES", 1, 52_560_000)?.map(Duration::minutes),
        last_used_interval: Duration::seconds(env.number(
            "GATEHOUSE_TOKEN_LAST_USED_INTERVAL_SECONDS",
            60,
            0,
            86_400,
        )?),
        sliding: env.optional_number("GATEHOUSE_TOKEN_SLIDING_MINUTES", 1, 52_560_000)?.map(Duration::minutes),
        strong_after: Duration::days(env.number("GATEHOUSE_TOKEN_STRONG_AFTER_DAYS", 30, 1, 3650)?),
    })
}

/// `GATEHOUSE_ROUTE_ABILITIES`, checked against gatehouse's routes and, when listed, the API's others.
fn route_abilities(env: &Env<'_>) -> Result<crate::routes::RouteAbilities, ConfigError> {
    // Route requirements, checked against gatehouse's routes and, when listed, the API's others.
    let spec = env.string("GATEHOUSE_ROUTE_ABILITIES", "");
    let customer_routes = env.raw("GATEHOUSE_CUSTOMER_ROUTES");
    crate::routes::RouteAbilities::parse_for(&spec, customer_routes.as_deref()).map_err(|e| match e {
        crate::routes::RouteTableError::Abilities(problem) => {
            ConfigError::Invalid { var: "GATEHOUSE_ROUTE_ABILITIES", value: spec.clone(), problem }
        }
        crate::routes::RouteTableError::CustomerRoutes(problem) => ConfigError::Invalid {
            var: "GATEHOUSE_CUSTOMER_ROUTES",
            value: customer_routes.clone().unwrap_or_default(),
            problem,
        },
    })
}

/// The WebAuthn relying party: its id and the exact origins passkeys answer.
fn passkeys(env: &Env<'_>, port: u16) -> Result<PasskeyConfig, ConfigError> {
    let rp_id = env.string("GATEHOUSE_PASSKEY_RP_ID", "localhost").to_ascii_lowercase();
    let default_origin =
        if rp_id == "localhost" { format!("http://localhost:{port}") } else { format!("https://{rp_id}") };
    let passkeys = PasskeyConfig {
        origins: origins_of("GATEHOUSE_PASSKEY_ORIGINS", &env.string("GATEHOUSE_PASSKEY_ORIGINS", &default_origin))?,
        rp_id,
    };
    passkeys.relying_party().map_err(|problem| ConfigError::Invalid {
        var: "GATEHOUSE_PASSKEY_RP_ID",
        value: passkeys.rp_id.clone(),
        problem: format!("a domain name, without scheme or port ({problem})"),
    })?;
    Ok(passkeys)
}

/// Passwordless sign-in by mail: a link and a six-digit code in one mail
/// ([`crate::services::email_link`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailLinkConfig {
    /// `GATEHOUSE_EMAIL_LINK` (default `true`; on Lambda only once the link's address is known:
    /// `GATEHOUSE_EMAIL_LINK_URL`, or `GATEHOUSE_PUBLIC_URL` / `GATEHOUSE_OAUTH_ISSUER`).
    pub enabled: bool,
    /// `GATEHOUSE_EMAIL_LINK_SIGNUP` (default `false`): an address no account holds gets a link
    /// that creates one (no password, the address verified by the mail).
    pub signup: bool,
    /// The link mailed, with a `{token}` placeholder (`GATEHOUSE_EMAIL_LINK_URL`; by default the
    /// hosted page, `<public URL>/account/email-link?token={token}`).
    pub url_template: String,
    pub subject: String,
    /// Mails one address may be sent: per 15 minutes (`GATEHOUSE_EMAIL_LINK_PER_ADDRESS`, 3) and
    /// per day (`GATEHOUSE_EMAIL_LINK_PER_ADDRESS_PER_DAY`, 10), from all clients together.
    pub per_address: [Limit; 2],
    /// Requests per client per minute (`GATEHOUSE_EMAIL_LINK_PER_CLIENT_PER_MINUTE`, 10).
    pub per_client: Limit,
}

/// `GATEHOUSE_EMAIL_LINK*`.
fn email_link(env: &Env<'_>, local: &str) -> Result<EmailLinkConfig, ConfigError> {
    let on_lambda = env.raw("AWS_LAMBDA_FUNCTION_NAME").is_some_and(|v| !v.is_empty());
    let set = |var: &str| env.raw(var).filter(|v| !v.trim().is_empty());
    let public = set("GATEHOUSE_PUBLIC_URL").or_else(|| set("GATEHOUSE_OAUTH_ISSUER"));
    let url_template = match set("GATEHOUSE_EMAIL_LINK_URL") {
        Some(url) => url.trim().to_owned(),
        None => {
            format!("{}/account/email-link?token={{token}}", public.as_deref().unwrap_or(local).trim_end_matches('/'))
        }
    };
    if !url_template.contains("{token}") {
        let problem = "the link must contain {token}".into();
        return Err(ConfigError::Invalid { var: "GATEHOUSE_EMAIL_LINK_URL", value: url_template, problem });
    }
    // On Lambda a link to this machine helps no one: off until its address is known, and an
    // error when asked for without one.
    let known = !on_lambda || set("GATEHOUSE_EMAIL_LINK_URL").is_some() || public.is_some();
    let enabled = match set("GATEHOUSE_EMAIL_LINK") {
        None => known,
        Some(_) if !env.flag("GATEHOUSE_EMAIL_LINK")? => false,
        Some(_) if known => true,
        Some(_) => {
            return Err(ConfigError::Missing {
                var: "GATEHOUSE_EMAIL_LINK_URL",
                why: "on Lambda the mailed sign-in link must point at your pages (or set GATEHOUSE_PUBLIC_URL)",
            });
        }
    };
    Ok(EmailLinkConfig {
        enabled,
        signup: env.flag("GATEHOUSE_EMAIL_LINK_SIGNUP")?,
        url_template,
        subject: env.string("GATEHOUSE_EMAIL_LINK_SUBJECT", "Your sign-in link"),
        per_address: [
            Limit { max: env.number("GATEHOUSE_EMAIL_LINK_PER_ADDRESS", 3, 1, 1000)?, window: Duration::minutes(15) },
            Limit::per_day(env.number("GATEHOUSE_EMAIL_LINK_PER_ADDRESS_PER_DAY", 10, 1, 10_000)?),
        ],
        per_client: Limit::per_minute(env.number("GATEHOUSE_EMAIL_LINK_PER_CLIENT_PER_MINUTE", 10, 1, 100_000)?),
    })
}

/// Where the OAuth provider's signing key is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SigningKeySource {
    /// A P-256 key in configuration (`GATEHOUSE_OAUTH_SIGNING_KEY`, PKCS#8 PEM).
    Pem(Box<crate::values::jwt::LocalKey>),
    /// An asymmetric ECC_NIST_P256 KMS key (`GATEHOUSE_OAUTH_KMS_KEY_ID`): the key never leaves
    /// KMS. `published` are other keys JWKS publishes and checks accept
    /// (`GATEHOUSE_OAUTH_KMS_PUBLISHED_KEY_IDS`): the next key before it signs, and the previous
    /// one until the tokens it signed have expired.
    Kms { key_id: String, published: Vec<String> },
    /// Neither: a key made at start (the local run; refused on Lambda, where every copy of every
    /// function must sign with the same key).
    Generated,
}

/// How dynamic client registration (RFC 7591) is open.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistrationConfig {
    /// The initial access token registrations must present (`GATEHOUSE_OAUTH_REGISTRATION_TOKEN`).
    pub token: Option<String>,
    /// Public clients may register with no token (`GATEHOUSE_OAUTH_OPEN_REGISTRATION=true`), as
    /// MCP clients do.
    pub open_for_public_clients: bool,
    /// The abilities a registered client may ask for besides the OpenID scopes
    /// (`GATEHOUSE_OAUTH_REGISTRATION_SCOPES`; none by default): whoever registers chooses no
    /// power the operator did not offer.
    pub scopes: Vec<String>,
    /// Registrations a day from everyone together (`GATEHOUSE_OAUTH_REGISTRATIONS_PER_DAY`,
    /// 1000): each client is stored for good, and addresses are many.
    pub per_day: Limit,
}
crate::redacted_debug!(RegistrationConfig);

impl RegistrationConfig {
    pub fn enabled(&self) -> bool {
        self.token.is_some() || self.open_for_public_clients
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthConfig {
    /// Whether the provider is on: always locally; on Lambda once `GATEHOUSE_OAUTH_ISSUER` is set
    /// (the template's `OAuthIssuer`). Off, its endpoints answer 503 and no token of it is accepted.
    pub enabled: bool,
    /// The issuer (`iss`), the public base URL of the gatehouse API, no trailing slash.
    pub issuer: String,
    /// The `aud` of access tokens: the API they are for (an API Gateway JWT authorizer's
    /// audience). Default: the issuer.
    pub audience: String,
    /// Where the hosted pages live (the authorization endpoint's consent page is one of them).
    pub pages_base: String,
    pub access_token_lifetime: Duration,
    pub id_token_lifetime: Duration,
    pub code_lifetime: Duration,
    /// A refresh-token family's absolute life; rotation never extends it.
    pub refresh_lifetime: Duration,
    pub signing: SigningKeySource,
    pub registration: RegistrationConfig,
    /// Per client address, per minute, for each OAuth endpoint.
    pub per_client_per_minute: Limit,
}

impl OAuthConfig {
    /// The longest life of a token the provider signs, and five minutes for clocks: how long a
    /// retired key stays published.
    pub fn longest_token_life(&self) -> Duration {
        self.access_token_lifetime.max(self.id_token_lifetime) + Duration::minutes(5)
    }
}

/// `GATEHOUSE_OAUTH_*`.
fn oauth(env: &Env<'_>, local: &str) -> Result<OAuthConfig, ConfigError> {
    let url = |var: &'static str, default: &str| -> Result<String, ConfigError> {
        let v = env.string(var, default).trim_end_matches('/').to_owned();
        let ok = v.starts_with("https://") || v.starts_with("http://127.0.0.1") || v.starts_with("http://localhost");
        if !ok || v.contains(['?', '#']) {
            return Err(ConfigError::Invalid {
                var,
                value: v,
                problem: "an https URL without query or fragment (http only for 127.0.0.1 or localhost)".into(),
            });
        }
        Ok(v)
    };
    let issuer = url("GATEHOUSE_OAUTH_ISSUER", local)?;
    let on_lambda = env.raw("AWS_LAMBDA_FUNCTION_NAME").is_some_and(|v| !v.is_empty());
    let enabled = !on_lambda || env.raw("GATEHOUSE_OAUTH_ISSUER").is_some_and(|v| !v.trim().is_empty());
    let signing = match (
        env.raw("GATEHOUSE_OAUTH_SIGNING_KEY").filter(|k| !k.trim().is_empty()),
        env.raw("GATEHOUSE_OAUTH_KMS_KEY_ID").filter(|k| !k.trim().is_empty()),
    ) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::Invalid {
                var: "GATEHOUSE_OAUTH_SIGNING_KEY",
                value: "[REDACTED]".into(),
                problem: "set it or GATEHOUSE_OAUTH_KMS_KEY_ID, not both".into(),
            });
        }
        (Some(pem), None) => SigningKeySource::Pem(Box::new(
            crate::values::jwt::LocalKey::from_pem(&pem.replace("\\n", "\n")).map_err(|problem| {
                ConfigError::Invalid { var: "GATEHOUSE_OAUTH_SIGNING_KEY", value: "[REDACTED]".into(), problem }
            })?,
        )),
        (None, Some(key_id)) => SigningKeySource::Kms {
            key_id: key_id.trim().to_owned(),
            published: env
                .string("GATEHOUSE_OAUTH_KMS_PUBLISHED_KEY_IDS", "")
                .split(',')
                .map(|k| k.trim().to_owned())
                .filter(|k| !k.is_empty())
                .collect(),
        },
        (None, None) => SigningKeySource::Generated,
    };
    Ok(OAuthConfig {
        enabled,
        audience: env.string("GATEHOUSE_OAUTH_AUDIENCE", &issuer).trim().to_owned(),
        pages_base: url("GATEHOUSE_OAUTH_PAGES_URL", &format!("{issuer}/account"))?,
        issuer,
        access_token_lifetime: Duration::seconds(env.number(
            "GATEHOUSE_OAUTH_ACCESS_TOKEN_SECONDS",
            600,
            60,
            86_400,
        )?),
        id_token_lifetime: Duration::seconds(env.number("GATEHOUSE_OAUTH_ID_TOKEN_SECONDS", 600, 60, 86_400)?),
        code_lifetime: Duration::seconds(env.number("GATEHOUSE_OAUTH_CODE_SECONDS", 60, 60, 600)?),
        refresh_lifetime: Duration::days(env.number("GATEHOUSE_OAUTH_REFRESH_DAYS", 30, 1, 365)?),
        signing,
        registration: RegistrationConfig {
            token: env.raw("GATEHOUSE_OAUTH_REGISTRATION_TOKEN").map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()),
            open_for_public_clients: env.flag("GATEHOUSE_OAUTH_OPEN_REGISTRATION")?,
            scopes: env
                .string("GATEHOUSE_OAUTH_REGISTRATION_SCOPES", "")
                .split([',', ' '])
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
            per_day: Limit::per_day(env.number("GATEHOUSE_OAUTH_REGISTRATIONS_PER_DAY", 1000, 1, 1_000_000)?),
        },
        per_client_per_minute: Limit::per_minute(env.number(
            "GATEHOUSE_OAUTH_PER_CLIENT_PER_MINUTE",
            120,
            1,
            100_000,
        )?),
    })
}

/// Every rate limit.
fn limits(env: &Env<'_>) -> Result<LimitsConfig, ConfigError> {
    Ok(LimitsConfig {
        login_per_email_client: Limit::per_minute(env.number("GATEHOUSE_LOGIN_PER_EMAIL_PER_MINUTE", 5, 1, 1000)?),
        login_per_client: Limit::per_minute(env.number("GATEHOUSE_LOGIN_PER_CLIENT_PER_MINUTE", 50, 1, 100_000)?),
        login_per_account: Limit::per_hour(env.number("GATEHOUSE_LOGIN_PER_ACCOUNT_PER_HOUR", 100, 1, 100_000)?),
        login_per_device: Limit::per_minute(env.number("GATEHOUSE_LOGIN_PER_DEVICE_PER_MINUTE", 10, 1, 1000)?),
        login_known_per_account: {
            let unknown = env.number("GATEHOUSE_LOGIN_PER_ACCOUNT_PER_HOUR", 100, 1, 100_000)?;
            let var = "GATEHOUSE_LOGIN_KNOWN_DEVICES_PER_ACCOUNT_PER_HOUR";
            let known = env.number(var, 4 * unknown, 1, 400_000)?;
            if known < unknown {
                let problem = format!("below GATEHOUSE_LOGIN_PER_ACCOUNT_PER_HOUR ({unknown})");
                return Err(ConfigError::Invalid { var, value: known.to_string(), problem });
            }
            Limit::per_hour(known)
        },
        register_per_client: Limit::per_hour(env.number("GATEHOUSE_REGISTER_PER_CLIENT_PER_HOUR", 10, 1, 100_000)?),
        reset_per_client: Limit::per_minute(env.number("GATEHOUSE_RESET_PER_CLIENT_PER_MINUTE", 10, 1, 10_000)?),
        password_check_per_user: Limit::per_minute(env.number("GATEHOUSE_PASSWORD_CHECKS_PER_MINUTE", 5, 1, 1000)?),
        exchange_per_client: Limit::per_minute(env.number(
            "GATEHOUSE_EXCHANGE_PER_CLIENT_PER_MINUTE",
            30,
            1,
            100_000,
        )?),
        tokens_per_user: [
            Limit::per_hour(env.number("GATEHOUSE_TOKENS_PER_USER_PER_HOUR", 20, 1, 100_000)?),
            Limit::per_day(env.number("GATEHOUSE_TOKENS_PER_USER_PER_DAY", 100, 1, 1_000_000)?),
        ],
        handoffs_per_user: [
            Limit::per_hour(env.number("GATEHOUSE_HANDOFFS_PER_USER_PER_HOUR", 120, 1, 100_000)?),
            Limit::per_day(env.number("GATEHOUSE_HANDOFFS_PER_USER_PER_DAY", 1000, 1, 1_000_000)?),
        ],
    })
}

/// The app key: every copy of every function shares one on Lambda; a random one locally.
fn app_key(env: &Env<'_>) -> Result<crate::keys::AppKey, ConfigError> {
    Ok(match env.raw("GATEHOUSE_APP_KEY").filter(|k| !k.trim().is_empty()) {
        Some(raw) => crate::keys::AppKey::parse(&raw).map_err(|problem| ConfigError::Invalid {
            var: "GATEHOUSE_APP_KEY",
            value: "[REDACTED]".into(),
            problem,
        })?,
        None if env.raw("AWS_LAMBDA_FUNCTION_NAME").is_some_and(|v| !v.is_empty()) => {
            return Err(ConfigError::Missing {
                var: "GATEHOUSE_APP_KEY",
                why: "every copy of every function must share one key on Lambda (base64:<32+ bytes>)",
            });
        }
        None => crate::keys::AppKey::random(),
    })
}

/// The session cookie's name with the strongest prefix browsers allow: `__Host-` without a
/// domain, `__Secure-` with one (`__Host-` forbids `Domain`). A name that already carries a prefix
/// is kept.
fn prefixed_cookie_name(name: String, has_domain: bool) -> Result<String, ConfigError> {
    const TOKEN: &str = "!#$%&'*+-.^_`|~";
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || TOKEN.contains(c)) {
        return Err(ConfigError::Invalid {
            var: "GATEHOUSE_SESSION_COOKIE",
            value: name,
            problem: "a cookie name is letters, digits and !#$%&'*+-.^_`|~ only".into(),
        });
    }
    if name.starts_with("__Host-") && has_domain {
        return Err(ConfigError::Invalid {
            var: "GATEHOUSE_SESSION_COOKIE",
            value: name,
            problem: "a __Host- cookie cannot have a domain; unset GATEHOUSE_SESSION_DOMAIN or use __Secure-".into(),
        });
    }
    Ok(if name.starts_with("__Host-") || name.starts_with("__Secure-") {
        name
    } else if has_domain {
        format!("__Secure-{name}")
    } else {
        format!("__Host-{name}")
    })
}

/// `GATEHOUSE_TRUSTED_PROXIES`: a comma list of addresses (`10.0.0.7`, `2001:db8::1`) or CIDR
/// ranges (`10.0.0.0/8`); a bare address is a range of one.
fn trusted_proxies(raw: &str) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    raw.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<ipnet::IpNet>()
                .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map(|n| n.trunc())
                .map_err(|_| ConfigError::Invalid {
                    var: "GATEHOUSE_TRUSTED_PROXIES",
                    value: p.to_owned(),
                    problem: "each entry is an IP address or a CIDR range (10.0.0.0/8, 2001:db8::/32)".into(),
                })
        })
        .collect()
}

/// `GATEHOUSE_ALLOWED_ORIGINS`: a comma list of exact origins, `scheme://host[:port]`.
fn allowed_origins(raw: &str) -> Result<Vec<String>, ConfigError> {
    origins_of("GATEHOUSE_ALLOWED_ORIGINS", raw)
}

/// A comma list of exact origins, `scheme://host[:port]`, from `var`.
fn origins_of(var: &'static str, raw: &str) -> Result<Vec<String>, ConfigError> {
    raw.split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|o| {
            let host = o.strip_prefix("https://").or_else(|| o.strip_prefix("http://")).unwrap_or("");
            if host.is_empty() || host.contains(['/', '?', '#', '@', ' ', '*']) {
                return Err(ConfigError::Invalid {
                    var,
                    value: o.to_owned(),
                    problem: "each origin is exactly scheme://host[:port] (no path, no trailing slash, no wildcard)"
                        .into(),
                });
            }
            Ok(o.to_ascii_lowercase())
        })
        .collect()
}

struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    fn raw(&self, var: &str) -> Option<String> {
        (self.0)(var)
    }

    fn string(&self, var: &'static str, default: &str) -> String {
        (self.0)(var).filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned())
    }

    fn optional_number(&self, var: &'static str, min: i64, max: i64) -> Result<Option<i64>, ConfigError> {
        let Some(raw) = (self.0)(var).filter(|v| !v.trim().is_empty()) else {
            return Ok(None);
        };
        match raw.trim().parse::<i64>() {
            Ok(v) if (min..=max).contains(&v) => Ok(Some(v)),
            _ => Err(ConfigError::Invalid {
                var,
                value: raw,
                problem: format!("expected a whole number from {min} to {max}"),
            }),
        }
    }

    /// A number with a default, or the word `none` for "no limit".
    fn number_or_none(&self, var: &'static str, default: i64, min: i64, max: i64) -> Result<Option<i64>, ConfigError> {
        match (self.0)(var) {
            Some(v) if v.trim().eq_ignore_ascii_case("none") => Ok(None),
            _ => Ok(Some(self.number(var, default, min, max)?)),
        }
    }

    fn number(&self, var: &'static str, default: i64, min: i64, max: i64) -> Result<i64, ConfigError> {
        Ok(self.optional_number(var, min, max)?.unwrap_or(default))
    }

    /// `true` or `false`; unset or empty is `false`.
    fn flag(&self, var: &'static str) -> Result<bool, ConfigError> {
        match self.string(var, "false").trim() {
            "true" => Ok(true),
            "false" => Ok(false),
            other => {
                Err(ConfigError::Invalid { var, value: other.to_owned(), problem: "expected true or false".into() })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_map(&pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn the_known_device_ceiling_is_four_times_the_account_limit_unless_set_and_never_below_it() {
        assert_eq!(with(&[]).unwrap().limits.login_known_per_account, Limit::per_hour(400));
        let c = with(&[("GATEHOUSE_LOGIN_PER_ACCOUNT_PER_HOUR", "3")]).unwrap();
        assert_eq!(c.limits.login_known_per_account, Limit::per_hour(12));
        let below = [
            ("GATEHOUSE_LOGIN_PER_ACCOUNT_PER_HOUR", "50"),
            ("GATEHOUSE_LOGIN_KNOWN_DEVICES_PER_ACCOUNT_PER_HOUR", "40"),
        ];
        assert!(with(&below).is_err());
    }

    #[test]
    fn defaults_follow_laravel() {
        let c = with(&[]).unwrap();
        assert_eq!(c.session.idle, Duration::minutes(120));
        assert_eq!(c.reset.expire, Duration::minutes(60));
        assert_eq!(c.reset.throttle, Duration::seconds(60));
        assert_eq!(c.passwords.min_len, 15);
        assert_eq!(c.passwords.max_len, 128);
        assert_eq!(c.passwords.min_score, 3);
        assert_eq!(c.names.table("users"), "gatehouse-users");
        assert_eq!(c.names.queue("jobs"), "gatehouse-jobs");
    }

    #[test]
    fn errors_name_the_variable() {
        let e = with(&[("GATEHOUSE_SESSION_LIFETIME_MINUTES", "soon")]).unwrap_err();
        assert!(e.to_string().starts_with("GATEHOUSE_SESSION_LIFETIME_MINUTES"), "{e}");
        let e = with(&[("GATEHOUSE_PASSWORD_MIN_LENGTH", "4")]).unwrap_err();
        assert!(e.to_string().contains("GATEHOUSE_PASSWORD_MIN_LENGTH"), "{e}");
        let e = with(&[("GATEHOUSE_TABLE_PREFIX", "bad prefix!")]).unwrap_err();
        assert!(e.to_string().contains("GATEHOUSE_TABLE_PREFIX"), "{e}");
    }

    #[test]
    fn sessions_have_an_absolute_lifetime_unless_none_is_said() {
        assert_eq!(with(&[]).unwrap().session.absolute, Some(Duration::days(30)));
        let c = with(&[("GATEHOUSE_SESSION_ABSOLUTE_LIFETIME_MINUTES", "none")]).unwrap();
        assert_eq!(c.session.absolute, None);
        assert_eq!(c.session.password_timeout, Duration::minutes(15));
    }

    #[test]
    fn the_app_key_is_required_on_lambda_and_never_echoed() {
        let e = with(&[("AWS_LAMBDA_FUNCTION_NAME", "login"), RESET_URL, VERIFY_URL, CHANGE_URL, SES]).unwrap_err();
        assert!(matches!(e, ConfigError::Missing { var: "GATEHOUSE_APP_KEY", .. }), "{e}");
        let e = with(&[("GATEHOUSE_APP_KEY", "base64:c2hvcnQ=")]).unwrap_err();
        assert!(!e.to_string().contains("c2hvcnQ"), "{e}");
        let key = crate::keys::AppKey::random().to_config_value();
        let c = with(&[
            ("AWS_LAMBDA_FUNCTION_NAME", "login"),
            ("GATEHOUSE_APP_KEY", &key),
            RESET_URL,
            VERIFY_URL,
            CHANGE_URL,
            SES,
        ])
        .unwrap();
        assert_eq!(c.app_key.to_config_value(), key);
    }

    #[test]
    fn the_session_cookie_gets_the_host_prefix_unless_a_domain_is_set() {
        assert_eq!(with(&[]).unwrap().session.cookie_name, "__Host-gatehouse_session");
        let named = with(&[("GATEHOUSE_SESSION_COOKIE", "app_session")]).unwrap();
        assert_eq!(named.session.cookie_name, "__Host-app_session");
        let already = with(&[("GATEHOUSE_SESSION_COOKIE", "__Host-app_session")]).unwrap();
        assert_eq!(already.session.cookie_name, "__Host-app_session");
        let shared = with(&[("GATEHOUSE_SESSION_DOMAIN", "example.com")]).unwrap();
        assert_eq!(shared.session.cookie_name, "__Secure-gatehouse_session");
        assert_eq!(shared.session.cookie_domain.as_deref(), Some("example.com"));
        let e =
            with(&[("GATEHOUSE_SESSION_COOKIE", "__Host-s"), ("GATEHOUSE_SESSION_DOMAIN", "example.com")]).unwrap_err();
        assert!(e.to_string().starts_with("GATEHOUSE_SESSION_COOKIE"), "{e}");
        assert!(with(&[("GATEHOUSE_SESSION_COOKIE", "a;b")]).is_err());
    }

    #[test]
    fn the_local_run_at_another_port_mails_links_and_takes_passkeys_at_that_port() {
        let env: HashMap<String, String> = HashMap::new();
        let c = Config::from_lookup_serving(|k| env.get(k).cloned(), 9000).unwrap();
        assert!(c.reset.url_template.starts_with("http://127.0.0.1:9000/account/reset-password?token={token}&"));
        assert!(c.verification.url_template.starts_with("http://127.0.0.1:9000/account/verify-email/{id}/{hash}?"));
        assert!(c.verification.email_change_url_template.starts_with("http://127.0.0.1:9000/user/email/confirm/{id}?"));
        assert_eq!(c.passkeys.origins, vec!["http://localhost:9000".to_owned()]);
        // What is set still wins.
        let set =
            HashMap::from([("GATEHOUSE_RESET_URL".to_owned(), "https://app.example/r?t={token}&e={email}".to_owned())]);
        let c = Config::from_lookup_serving(|k| set.get(k).cloned(), 9000).unwrap();
        assert_eq!(c.reset.url_template, "https://app.example/r?t={token}&e={email}");
        assert!(with(&[]).unwrap().passkeys.origins == vec!["http://localhost:8080".to_owned()], "8080 by default");
    }

    #[test]
    fn passkeys_default_to_localhost_and_take_a_domain_and_exact_origins() {
        let c = with(&[]).unwrap();
        assert_eq!(
            (c.passkeys.rp_id.as_str(), c.passkeys.origins.clone()),
            ("localhost", vec!["http://localhost:8080".to_owned()])
        );
        let c = with(&[("GATEHOUSE_PASSKEY_RP_ID", "Example.com")]).unwrap();
        assert_eq!(
            (c.passkeys.rp_id.as_str(), c.passkeys.origins.clone()),
            ("example.com", vec!["https://example.com".to_owned()])
        );
        assert!(with(&[("GATEHOUSE_PASSKEY_RP_ID", "https://example.com")]).is_err());
        assert!(with(&[("GATEHOUSE_PASSKEY_ORIGINS", "https://example.com/")]).is_err());
    }

    #[test]
    fn trusted_proxies_are_addresses_or_ranges() {
        let c = with(&[("GATEHOUSE_TRUSTED_PROXIES", "10.1.2.3, 192.168.0.0/16,2001:db8::/32,")]).unwrap();
        let shown: Vec<String> = c.trusted_proxies.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["10.1.2.3/32", "192.168.0.0/16", "2001:db8::/32"]);
        assert!(with(&[]).unwrap().trusted_proxies.is_empty(), "none by default");
        for bad in ["10.0.0.0/33", "example.com", "*", "10.0.0.1-10.0.0.9"] {
            let e = with(&[("GATEHOUSE_TRUSTED_PROXIES", bad)]).unwrap_err();
            assert!(e.to_string().starts_with("GATEHOUSE_TRUSTED_PROXIES"), "{bad}: {e}");
        }
    }

    #[test]
    fn allowed_origins_are_exact_origins() {
        let c = with(&[("GATEHOUSE_ALLOWED_ORIGINS", "https://App.example.com, http://localhost:3000,")]).unwrap();
        assert_eq!(c.session.allowed_origins, vec!["https://app.example.com", "http://localhost:3000"]);
        assert!(with(&[]).unwrap().session.allowed_origins.is_empty());
        for bad in ["app.example.com", "https://app.example.com/", "https://*.example.com", "null"] {
            let e = with(&[("GATEHOUSE_ALLOWED_ORIGINS", bad)]).unwrap_err();
            assert!(e.to_string().starts_with("GATEHOUSE_ALLOWED_ORIGINS"), "{bad}: {e}");
        }
    }

    const LAMBDA: (&str, &str) = ("AWS_LAMBDA_FUNCTION_NAME", "gatehouse-login");
    const RESET_URL: (&str, &str) =
        ("GATEHOUSE_RESET_URL", "https://app.example.com/reset?token={token}&email={email}");
    const VERIFY_URL: (&str, &str) =
        ("GATEHOUSE_VERIFY_URL", "https://app.example.com/verify/{id}/{hash}?expires={expires}&signature={signature}");
    const CHANGE_URL: (&str, &str) = (
        "GATEHOUSE_EMAIL_CHANGE_URL",
        "https://app.example.com/email/confirm/{id}?email={email}&expires={expires}&signature={signature}",
    );
    const SES: (&str, &str) = ("GATEHOUSE_MAILER", "ses");

    /// As on Lambda, with an app key and `extra`.
    fn on_lambda(extra: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let key = crate::keys::AppKey::random().to_config_value();
        let mut vars = vec![LAMBDA, ("GATEHOUSE_APP_KEY", key.as_str())];
        vars.extend_from_slice(extra);
        with(&vars)
    }

    #[test]
    fn on_lambda_the_reset_url_is_required() {
        let e = on_lambda(&[SES]).unwrap_err();
        assert!(matches!(e, ConfigError::Missing { var: "GATEHOUSE_RESET_URL", .. }), "{e}");
        let e = on_lambda(&[SES, ("GATEHOUSE_RESET_URL", "")]).unwrap_err();
        assert!(matches!(e, ConfigError::Missing { var: "GATEHOUSE_RESET_URL", .. }), "{e}");
        let e = on_lambda(&[SES, RESET_URL]).unwrap_err();
        assert!(matches!(e, ConfigError::Missing { var: "GATEHOUSE_VERIFY_URL", .. }), "{e}");
        assert!(on_lambda(&[SES, RESET_URL, VERIFY_URL, CHANGE_URL]).is_ok());
        // Locally the default link is fine.
        assert!(with(&[]).unwrap().reset.url_template.starts_with("http://127.0.0.1:8080/"));
    }

    #[test]
    fn on_lambda_the_log_mailer_is_refused_unless_explicitly_allowed() {
        for mailer in [None, Some("log")] {
            let mut vars = vec![RESET_URL, VERIFY_URL, CHANGE_URL];
            vars.extend(mailer.map(|m| ("GATEHOUSE_MAILER", m)));
            let e = on_lambda(&vars).unwrap_err();
            assert!(e.to_string().starts_with("GATEHOUSE_MAILER"), "{e}");
            assert!(e.to_string().contains("GATEHOUSE_ALLOW_LOG_MAILER"), "{e}");
        }
        let allowed = on_lambda(&[RESET_URL, VERIFY_URL, CHANGE_URL, ("GATEHOUSE_ALLOW_LOG_MAILER", "true")]).unwrap();
        assert_eq!(allowed.mail.mailer, MailerKind::Log);
        assert!(on_lambda(&[RESET_URL, VERIFY_URL, CHANGE_URL, SES]).is_ok());
        assert!(on_lambda(&[RESET_URL, VERIFY_URL, CHANGE_URL, ("GATEHOUSE_ALLOW_LOG_MAILER", "yes")]).is_err());
        // Off Lambda the log mailer stays the default.
        assert_eq!(with(&[]).unwrap().mail.mailer, MailerKind::Log);
    }

    #[test]
    fn email_links_are_on_locally_and_on_lambda_once_their_address_is_known() {
        let local = with(&[]).unwrap().email_link;
        assert!(local.enabled && !local.signup);
        assert_eq!(local.url_template, "http://127.0.0.1:8080/account/email-link?token={token}");
        let base = [SES, RESET_URL, VERIFY_URL, CHANGE_URL];
        assert!(!on_lambda(&base).unwrap().email_link.enabled, "off until the link's address is known");
        let public = on_lambda(&[&base[..], &[("GATEHOUSE_PUBLIC_URL", "https://api.example.com/")]].concat()).unwrap();
        assert!(public.email_link.enabled);
        assert_eq!(public.email_link.url_template, "https://api.example.com/account/email-link?token={token}");
        let asked = on_lambda(&[&base[..], &[("GATEHOUSE_EMAIL_LINK", "true")]].concat()).unwrap_err();
        assert!(matches!(asked, ConfigError::Missing { var: "GATEHOUSE_EMAIL_LINK_URL", .. }), "{asked}");
        let e = with(&[("GATEHOUSE_EMAIL_LINK_URL", "https://app.example.com/in")]).unwrap_err();
        assert!(e.to_string().starts_with("GATEHOUSE_EMAIL_LINK_URL"), "{e}");
        let off = with(&[("GATEHOUSE_EMAIL_LINK", "false"), ("GATEHOUSE_EMAIL_LINK_SIGNUP", "true")]).unwrap();
        assert!(!off.email_link.enabled && off.email_link.signup);
    }

    #[test]
    fn apps_are_a_comma_list() {
        let c = with(&[("GATEHOUSE_APPS", " billing, ,admin ")]).unwrap();
        assert_eq!(c.apps, vec!["billing", "admin"]);
    }
}
