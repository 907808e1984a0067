//! Services: the use cases, each over the store bundle, the configuration and the queue.

pub mod access;
pub mod account_deletion;
pub mod auth;
pub mod cross_app;
pub mod email_change;
pub mod email_verification;
pub mod job_registry;
pub mod notices;
pub mod passkeys;
pub mod password_broker;
pub mod profile;
pub mod registration;
pub mod revocation;
pub mod sign_in;
pub mod token_issuer;
pub mod two_factor;
