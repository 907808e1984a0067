//! Which credential: its kind and its key in its own table. The register
//! ([`crate::tables::credentials`]) is keyed by it, and a session, token or handoff names its
//! parent by it. A session's and a token's own constructors are beside their ids
//! ([`crate::tables::sessions`], [`crate::tables::personal_access_tokens`]); this module depends
//! on no table but the OAuth client id ([`crate::tables::oauth_clients::ClientId`], a leaf), the
//! key of a consent.

use crate::tables::oauth_clients::ClientId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CredentialKind {
    Session,
    Token,
    Handoff,
    /// An OAuth grant: a refresh-token family ([`crate::tables::oauth_refresh_tokens`]).
    OAuthGrant,
    /// A user's consent to an OAuth client ([`crate::tables::oauth_consents`]).
    Consent,
}

impl CredentialKind {
    pub fn prefix(self) -> &'static str {
        match self {
            CredentialKind::Session => "session",
            CredentialKind::Token => "token",
            CredentialKind::Handoff => "handoff",
            CredentialKind::OAuthGrant => "oauth",
            CredentialKind::Consent => "consent",
        }
    }
}

/// Which credential: its kind and its key in its own table (a session's id hash, a token's id, a
/// handoff's token hash, a refresh-token family's id, a consent's client id: the user is the
/// register's partition). Never a secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CredentialRef {
    pub kind: CredentialKind,
    pub key: String,
}

impl CredentialRef {
    pub fn handoff(token_hash: &str) -> Self {
        Self { kind: CredentialKind::Handoff, key: token_hash.to_owned() }
    }

    /// The OAuth grant whose refresh-token family is `family_id`.
    pub fn oauth_grant(family_id: &str) -> Self {
        Self { kind: CredentialKind::OAuthGrant, key: family_id.to_owned() }
    }

    /// The user's consent to `client` (the user is the register entry's).
    pub fn consent(client: &ClientId) -> Self {
        Self { kind: CredentialKind::Consent, key: client.as_str().to_owned() }
    }

    /// `session#<hash>`, `token#<id>`, `handoff#<hash>`, `oauth#<family>`, `consent#<client>`:
    /// the register's sort key.
    pub fn encode(&self) -> String {
        format!("{}#{}", self.kind.prefix(), self.key)
    }

    pub fn decode(s: &str) -> Option<Self> {
        let (kind, key) = s.split_once('#')?;
        let kind = match kind {
            "session" => CredentialKind::Session,
            "token" => CredentialKind::Token,
            "handoff" => CredentialKind::Handoff,
            "oauth" => CredentialKind::OAuthGrant,
            "consent" => CredentialKind::Consent,
            _ => return None,
        };
        (!key.is_empty()).then(|| Self { kind, key: key.to_owned() })
    }
}
