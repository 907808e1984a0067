//! The integration tests, one module per area, linked into one test binary: each extra binary
//! re-links the whole AWS SDK (about 20 s and 180 MB apiece in the dev profile), which on a
//! 2-core CI machine was most of the test build and, once, all of its disk. The store contract
//! suite is the other binary (`tests/tests/contract/`). Run one area with a filter:
//! `cargo test -p gatehouse-tests --test suite login::`.

mod abuse;
mod account;
mod bench;
mod browser;
mod credentials;
mod deliveries;
mod device_cookies;
mod dynamodb;
mod e2e;
mod email_link;
mod events;
mod events_credentials;
mod faults;
mod federation;
mod fixtures;
mod guards;
mod hooks;
mod hostile;
mod iam;
mod identities;
mod jobs;
mod layers;
mod login;
mod oauth;
mod oauth_keys;
mod pages;
mod parsers;
mod passkeys;
mod password_reset;
mod passwordless_pages;
mod retries;
mod retries_audit;
mod retries_challenges;
mod retries_register;
mod retries_revoke;
mod shape;
mod stolen_sessions;
mod stolen_sessions_edge;
mod support;
mod template;
mod tokens;
mod two_factor;
