//! Values: parsed once, checked once, no store and no IO. Everything else builds on these.

pub mod clock;
pub mod deadline;
pub mod email;
pub mod error;
pub mod jwt;
pub mod pagination;
pub mod password;
pub mod relying_party;
pub mod secret;
pub mod webhook_signature;
