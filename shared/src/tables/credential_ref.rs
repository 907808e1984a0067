//! Which credential: its kind and its key in its own table. The register
//! ([`crate::tables::credentials`]) is keyed by it, and a session, token or handoff names its
//! parent by it. A session's and a token's own constructors are beside their ids
//! ([`crate::tables::sessions`], [`crate::tables::personal_access_tokens`]), so this module
//! depends on no table.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CredentialKind {
    Session,
    Token,
    Handoff,
}

impl CredentialKind {
    pub fn prefix(self) -> &'static str {
        match self {
            CredentialKind::Session => "session",
            CredentialKind::Token => "token",
            CredentialKind::Handoff => "handoff",
        }
    }
}

/// Which credential: its kind and its key in its own table (a session's id hash, a token's id, a
/// handoff's token hash). Never a secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CredentialRef {
    pub kind: CredentialKind,
    pub key: String,
}

impl CredentialRef {
    pub fn handoff(token_hash: &str) -> Self {
        Self { kind: CredentialKind::Handoff, key: token_hash.to_owned() }
    }

    /// `session#<hash>`, `token#<id>`, `handoff#<hash>`: the register's sort key.
    pub fn encode(&self) -> String {
        format!("{}#{}", self.kind.prefix(), self.key)
    }

    pub fn decode(s: &str) -> Option<Self> {
        let (kind, key) = s.split_once('#')?;
        let kind = match kind {
            "session" => CredentialKind::Session,
            "token" => CredentialKind::Token,
            "handoff" => CredentialKind::Handoff,
            _ => return None,
        };
        (!key.is_empty()).then(|| Self { kind, key: key.to_owned() })
    }
}
