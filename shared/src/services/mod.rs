//! Services: the use cases, each over the store bundle, the configuration and the queue.
//!
//! - who is calling and what it may do: [`access`]; the session core: [`auth`] (sessions,
//!   limits, credentials rotation, and [`auth::password_check`], the password factor);
//! - the other factors: [`two_factor`] (TOTP and recovery codes), [`passkeys`] (WebAuthn);
//! - the flows, as Kratos names them: sign-in ([`sign_in`]: password step, challenge,
//!   completion), registration ([`registration`]), recovery ([`password_broker`]), verification
//!   ([`email_verification`]), settings ([`profile`], [`email_change`], [`account_deletion`]),
//!   the cross-app handoff ([`cross_app`]), and social sign-in ([`federation`]);
//! - what they share: [`token_issuer`] (minting tokens no stronger than their source),
//!   [`revocation`] (ending what the register holds), [`notices`] (security mail promised before
//!   its change), [`job_registry`] (every job, on one worker); [`webhooks`] (the endpoints' management).

pub mod access;
pub mod account_deletion;
pub mod auth;
pub mod cross_app;
pub mod deliveries;
pub mod email_change;
pub mod email_confirmation;
pub mod email_link;
pub mod email_verification;
pub mod events;
pub mod federation;
pub mod hooks;
pub mod job_registry;
pub mod notices;
pub mod oauth;
pub mod passkeys;
pub mod password_broker;
pub mod profile;
pub mod registration;
pub mod revocation;
pub mod sign_in;
pub mod token_issuer;
pub mod two_factor;
pub mod webhook_checks;
pub mod webhooks;
