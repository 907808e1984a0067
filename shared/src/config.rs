//! Configuration, read once from the environment. Errors name the variable.

use chrono::Duration;
use std::collections::HashMap;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{var}: {problem} (got {value:?})")]
    Invalid { var: &'static str, value: String, problem: String },
    #[error("{var} is required: {why}")]
    Missing { var: &'static str, why: &'static str },
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
    pub cookie_name: String,
    pub cookie_domain: Option<String>,
    /// Idle lifetime: a session unused this long is over (sliding).
    pub idle: Duration,
    /// Absolute lifetime from login, if capped.
    pub absolute: Option<Duration>,
    /// Idle lifetime of a "remember me" session (and its cookie's max age).
    pub remember: Duration,
    /// `last_activity` is written at most once per this interval.
    pub touch_interval: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordConfig {
    pub min_len: usize,
    pub max_len: usize,
    pub argon2: crate::password::HashCost,
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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub names: Names,
    pub session: SessionConfig,
    pub passwords: PasswordConfig,
    pub reset: ResetConfig,
    pub mail: MailConfig,
    pub tokens: TokenConfig,
    pub failed_job_retention: Duration,
    pub batch_retention: Duration,
    /// This deployment's app name (source of cross-app handoffs).
    pub app_name: String,
    /// Apps a handoff may target.
    pub apps: Vec<String>,
    pub handoff_lifetime: Duration,
    /// How long cross-app session audit records are kept.
    pub cross_app_audit_retention: Duration,
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
        let env = Env(&get);
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
        let min_len = env.number("GATEHOUSE_PASSWORD_MIN_LENGTH", 15, 8, 64)?;
        let max_len = env.number("GATEHOUSE_PASSWORD_MAX_LENGTH", 128, 64, 1024)?;
        if min_len > max_len {
            return Err(ConfigError::Invalid {
                var: "GATEHOUSE_PASSWORD_MIN_LENGTH",
                value: min_len.to_string(),
                problem: "must not exceed GATEHOUSE_PASSWORD_MAX_LENGTH".into(),
            });
        }
        let apps: Vec<String> = env
            .string("GATEHOUSE_APPS", "")
            .split(',')
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty())
            .collect();
        Ok(Config {
            names: Names {
                table_prefix,
                queue_prefix,
                jobs_queue_url: get("GATEHOUSE_JOBS_QUEUE_URL").filter(|s| !s.is_empty()),
            },
            session: SessionConfig {
                cookie_name: env.string("GATEHOUSE_SESSION_COOKIE", "gatehouse_session"),
                cookie_domain: get("GATEHOUSE_SESSION_DOMAIN").filter(|s| !s.is_empty()),
                idle: Duration::minutes(env.number("GATEHOUSE_SESSION_LIFETIME_MINUTES", 120, 1, 525_600)?),
                absolute: env
                    .optional_number("GATEHOUSE_SESSION_ABSOLUTE_LIFETIME_MINUTES", 1, 5_256_000)?
                    .map(Duration::minutes),
                touch_interval: Duration::seconds(env.number("GATEHOUSE_SESSION_TOUCH_SECONDS", 60, 0, 3600)?),
                remember: Duration::days(env.number("GATEHOUSE_REMEMBER_DAYS", 30, 1, 400)?),
            },
            passwords: PasswordConfig {
                min_len: min_len as usize,
                max_len: max_len as usize,
                argon2: crate::password::HashCost {
                    memory_kib: env.number("GATEHOUSE_ARGON2_MEMORY_KIB", 19 * 1024, 8, 4 * 1024 * 1024)? as u32,
                    iterations: env.number("GATEHOUSE_ARGON2_ITERATIONS", 2, 1, 100)? as u32,
                    parallelism: env.number("GATEHOUSE_ARGON2_PARALLELISM", 1, 1, 16)? as u32,
                },
            },
            reset: ResetConfig {
                expire: Duration::minutes(env.number("GATEHOUSE_RESET_EXPIRE_MINUTES", 60, 1, 24 * 60)?),
                throttle: Duration::seconds(env.number("GATEHOUSE_RESET_THROTTLE_SECONDS", 60, 0, 3600)?),
                url_template: env
                    .string("GATEHOUSE_RESET_URL", "http://127.0.0.1:8080/reset-password?token={token}&email={email}"),
                subject: env.string("GATEHOUSE_RESET_SUBJECT", "Reset your password"),
                per_ip_per_minute: env.number("GATEHOUSE_FORGOT_PER_IP_PER_MINUTE", 6, 1, 10_000)?,
            },
            mail: MailConfig {
                mailer: match env.string("GATEHOUSE_MAILER", "log").as_str() {
                    "log" => MailerKind::Log,
                    "ses" => MailerKind::Ses,
                    other => {
                        return Err(ConfigError::Invalid {
                            var: "GATEHOUSE_MAILER",
                            value: other.to_owned(),
                            problem: "expected \"log\" or \"ses\"".into(),
                        });
                    }
                },
                from: env.string("GATEHOUSE_MAIL_FROM", "gatehouse@example.com"),
            },
            tokens: TokenConfig {
                prefix: env.string("GATEHOUSE_TOKEN_PREFIX", "gth_"),
                max_age: env.optional_number("GATEHOUSE_TOKEN_MAX_AGE_MINUTES", 1, 52_560_000)?.map(Duration::minutes),
                last_used_interval: Duration::seconds(env.number(
                    "GATEHOUSE_TOKEN_LAST_USED_INTERVAL_SECONDS",
                    60,
                    0,
                    86_400,
                )?),
                sliding: env.optional_number("GATEHOUSE_TOKEN_SLIDING_MINUTES", 1, 52_560_000)?.map(Duration::minutes),
            },
            failed_job_retention: Duration::days(env.number("GATEHOUSE_FAILED_JOB_RETENTION_DAYS", 30, 1, 3650)?),
            batch_retention: Duration::days(env.number("GATEHOUSE_BATCH_RETENTION_DAYS", 30, 1, 3650)?),
            app_name: env.string("GATEHOUSE_APP_NAME", "gatehouse"),
            apps,
            handoff_lifetime: Duration::seconds(env.number("GATEHOUSE_HANDOFF_SECONDS", 120, 10, 3600)?),
            cross_app_audit_retention: Duration::days(env.number("GATEHOUSE_CROSS_APP_AUDIT_DAYS", 90, 1, 3650)?),
        })
    }
}

struct Env<'a, F: Fn(&str) -> Option<String>>(&'a F);

impl<F: Fn(&str) -> Option<String>> Env<'_, F> {
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

    fn number(&self, var: &'static str, default: i64, min: i64, max: i64) -> Result<i64, ConfigError> {
        Ok(self.optional_number(var, min, max)?.unwrap_or(default))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_map(&pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn defaults_follow_laravel() {
        let c = with(&[]).unwrap();
        assert_eq!(c.session.idle, Duration::minutes(120));
        assert_eq!(c.reset.expire, Duration::minutes(60));
        assert_eq!(c.reset.throttle, Duration::seconds(60));
        assert_eq!(c.passwords.min_len, 15);
        assert_eq!(c.passwords.max_len, 128);
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
    fn apps_are_a_comma_list() {
        let c = with(&[("GATEHOUSE_APPS", " billing, ,admin ")]).unwrap();
        assert_eq!(c.apps, vec!["billing", "admin"]);
    }
}
