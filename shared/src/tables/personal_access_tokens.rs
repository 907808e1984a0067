//! The `personal_access_tokens` table (Sanctum). The plaintext token is `"<id>.<owner>|<secret>"`
//! (`"<id>|<secret>"` for tokens from before tokens named their owner); the store keeps only
//! SHA-256 of the secret, and looks tokens up by id, with their owner in the same read.

use crate::values::clock::Timestamp;
use crate::values::error::StoreResult;
use crate::values::pagination::{Cursor, Page};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A token's id: a UUIDv7, the part before `|`. Not a secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenId(String);

impl TokenId {
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }
    pub fn parse(s: &str) -> Option<Self> {
        // Only the canonical hyphenated lower-case form, so one token has one id string.
        let u = uuid::Uuid::try_parse(s).ok()?;
        let canonical = u.to_string();
        (canonical == s).then_some(Self(canonical))
    }
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TokenId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The ability a token needs to mint more tokens (`POST /tokens`).
pub const CREATE_TOKENS: &str = "tokens:create";
/// The ability a token needs to hand its user off to another app (`POST /cross-app/handoff`).
pub const CROSS_APP_HANDOFF: &str = "cross-app:handoff";
/// The ability a token needs to change the user's profile (`PUT /user/profile-information`).
pub const UPDATE_PROFILE: &str = "user:update";
/// The abilities a token needs on gatehouse's own routes, for the authorizer (which links no
/// function crate); the functions' route tables say the same (a test in the CLI checks).
pub const OWN_ROUTE_ABILITIES: &[(&str, &str)] = &[
    ("POST /tokens", CREATE_TOKENS),
    ("POST /cross-app/handoff", CROSS_APP_HANDOFF),
    ("PUT /user/profile-information", UPDATE_PROFILE),
];

const RANDOM_LEN: usize = 43;
const CHECKSUM_LEN: usize = 8;

/// The secret part of a token: `<prefix><43 chars of 256 random bits><8 hex checksum>`. The
/// prefix lets secret scanners spot a leak; the checksum rejects typos and forgeries before any
/// store read. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSecret(String);
crate::redacted_debug!(TokenSecret);

fn checksum(body: &str) -> String {
    crate::values::secret::sha256_hex(body)[..CHECKSUM_LEN].to_owned()
}

impl TokenSecret {
    pub fn generate(prefix: &str) -> Self {
        let body = format!("{prefix}{}", crate::values::secret::random_token_256());
        let sum = checksum(&body);
        Self(body + &sum)
    }

    /// Parses a presented secret: right prefix, right length, URL-safe characters, checksum good.
    pub fn parse(s: &str, prefix: &str) -> Option<Self> {
        let rest = s.strip_prefix(prefix)?;
        if rest.len() != RANDOM_LEN + CHECKSUM_LEN
            || !rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return None;
        }
        let (body, sum) = s.split_at(s.len() - CHECKSUM_LEN);
        crate::values::secret::constant_time_eq(checksum(body).as_bytes(), sum.as_bytes()).then(|| Self(s.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> String {
        crate::values::secret::sha256_hex(&self.0)
    }
}

/// A whole presented token, `"<id>.<owner>|<secret>"` (or `"<id>|<secret>"`, from before tokens
/// named their owning user), parsed without touching the store.
#[derive(Debug, Clone)]
pub struct PlainTextToken {
    pub id: TokenId,
    /// The user who owns it, so the check reads the token and its owner in one call.
    pub owner: Option<crate::tables::users::UserId>,
    pub secret: TokenSecret,
}

impl PlainTextToken {
    pub fn parse(s: &str, prefix: &str) -> Option<Self> {
        let (id, secret) = s.split_once('|')?;
        let (id, owner) = match id.split_once('.') {
            Some((id, owner)) => {
                let parsed = crate::tables::users::UserId::parse(owner).filter(|u| u.as_str() == owner)?;
                (id, Some(parsed))
            }
            None => (id, None),
        };
        Some(Self { id: TokenId::parse(id)?, owner, secret: TokenSecret::parse(secret, prefix)? })
    }
    /// The string shown to the user, once.
    pub fn expose(&self) -> String {
        match &self.owner {
            Some(owner) => format!("{}.{owner}|{}", self.id, self.secret.expose()),
            None => format!("{}|{}", self.id, self.secret.expose()),
        }
    }
}

/// What a token may do: Sanctum's abilities. `*` allows everything; otherwise exact match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Abilities(Vec<String>);

impl Abilities {
    pub fn all() -> Self {
        Self(vec!["*".to_owned()])
    }
    pub fn new(list: Vec<String>) -> Self {
        let mut list = list;
        list.sort();
        list.dedup();
        Self(list)
    }
    /// Whether this is the all-abilities `*`.
    pub fn can_everything(&self) -> bool {
        self.0.iter().any(|a| a == "*")
    }
    pub fn can(&self, ability: &str) -> bool {
        self.0.iter().any(|a| a == "*" || a == ability)
    }
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

/// Who owns a token (Laravel's polymorphic `tokenable_type` + `tokenable_id`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tokenable {
    pub kind: String,
    pub id: String,
}

impl Tokenable {
    pub fn user(id: &crate::tables::users::UserId) -> Self {
        Self { kind: "users".to_owned(), id: id.as_str().to_owned() }
    }
    /// The single string the owner index is keyed on.
    pub fn key(&self) -> String {
        format!("{}#{}", self.kind, self.id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonalAccessToken {
    pub id: TokenId,
    pub tokenable: Tokenable,
    pub name: String,
    /// SHA-256 (hex) of the secret.
    pub token_hash: String,
    pub abilities: Abilities,
    pub last_used_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The user's credentials version it was issued under (see [`crate::tables::credentials`]).
    pub credentials_version: u64,
    /// Whether the owner's address was verified: stamped at issue, refreshed on verification;
    /// `None` on tokens issued before tokens carried it.
    pub email_verified: Option<bool>,
}

impl PersonalAccessToken {
    /// Whether `secret` is this token's, compared in constant time.
    pub fn matches(&self, secret: &TokenSecret) -> bool {
        crate::values::secret::constant_time_eq(self.token_hash.as_bytes(), secret.hash().as_bytes())
    }
}

#[async_trait]
pub trait PersonalAccessTokenStore: Send + Sync {
    /// The live token with this id (consistent read); `None` when absent or expired.
    async fn find(&self, id: &TokenId) -> StoreResult<Option<PersonalAccessToken>>;
    /// [`PersonalAccessTokenStore::find`] and the state of `owner` (the user the token names; `None` when no
    /// such user is left), both read consistently in one call: the check's one read.
    async fn find_with_owner(
        &self,
        id: &TokenId,
        owner: &crate::tables::users::UserId,
    ) -> StoreResult<(Option<PersonalAccessToken>, Option<crate::tables::users::OwnerState>)>;
    /// Sets `last_used_at = now` only if the token is live and was last used at or before
    /// `stale_before` (or never): one conditional write, at most once per interval. `true` when it
    /// wrote.
    async fn touch_last_used(&self, id: &TokenId, now: Timestamp, stale_before: Timestamp) -> StoreResult<bool>;
    /// Records that the owner's address is verified, on a live token. `false` when absent or
    /// expired.
    async fn mark_verified(&self, id: &TokenId) -> StoreResult<bool>;
    /// Moves the expiry (sliding expiry). `false` when absent or expired.
    async fn extend(&self, id: &TokenId, expires_at: Timestamp) -> StoreResult<bool>;
    /// Deletes the token if `owner` owns it. `true` when it deleted.
    async fn delete_owned(&self, id: &TokenId, owner: &Tokenable) -> StoreResult<bool>;
    /// The owner's live tokens, newest first, a page at a time.
    async fn list_for(
        &self,
        owner: &Tokenable,
        limit: usize,
        after: Option<&Cursor>,
    ) -> StoreResult<Page<PersonalAccessToken>>;
    /// Deletes every token of the owner, as the index lists them (which may lag a fresh write:
    /// revocation goes through [`crate::services::revocation::revoke`]). Returns how many.
    async fn delete_all_for(&self, owner: &Tokenable) -> StoreResult<usize>;
}

/// What a token is issued under: the credentials version its issuer verified against, and
/// whether the owner's address was verified then.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenGrant {
    pub credentials_version: u64,
    /// `None` when the issuer does not know (a parent issued before credentials carried it).
    pub email_verified: Option<bool>,
}

/// A freshly minted token: the plaintext (shown once) and the record to store.
pub fn mint(
    owner: &Tokenable,
    name: String,
    abilities: Abilities,
    expires_at: Option<Timestamp>,
    prefix: &str,
    now: Timestamp,
    grant: TokenGrant,
) -> (PlainTextToken, PersonalAccessToken) {
    let owner_id = (owner.kind == "users").then(|| crate::tables::users::UserId::from_stored(owner.id.clone()));
    let plain = PlainTextToken { id: TokenId::generate(), owner: owner_id, secret: TokenSecret::generate(prefix) };
    let record = PersonalAccessToken {
        id: plain.id.clone(),
        tokenable: owner.clone(),
        name,
        token_hash: plain.secret.hash(),
        abilities,
        last_used_at: None,
        expires_at,
        created_at: now,
        updated_at: now,
        credentials_version: grant.credentials_version,
        email_verified: grant.email_verified,
    };
    (plain, record)
}

/// The register's name for a token.
impl crate::tables::credential_ref::CredentialRef {
    pub fn token(id: &TokenId) -> Self {
        Self { kind: crate::tables::credential_ref::CredentialKind::Token, key: id.as_str().to_owned() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_parses_back_with_or_without_its_owner() {
        for owner in [Some(crate::tables::users::UserId::generate()), None] {
            let secret = TokenSecret::generate("gh_");
            let plain = PlainTextToken { id: TokenId::generate(), owner: owner.clone(), secret };
            let parsed = PlainTextToken::parse(&plain.expose(), "gh_").unwrap();
            assert_eq!((&parsed.id, &parsed.owner), (&plain.id, &owner));
            assert_eq!(parsed.secret.hash(), plain.secret.hash());
        }
        let good = TokenSecret::generate("gh_");
        let id = TokenId::generate();
        let upper = crate::tables::users::UserId::generate().as_str().to_uppercase();
        for bad in [
            format!("{id}.|{}", good.expose()),
            format!("{id}.nobody|{}", good.expose()),
            format!("{id}.{upper}|{}", good.expose()),
        ] {
            assert!(PlainTextToken::parse(&bad, "gh_").is_none(), "{bad}");
        }
    }

    #[test]
    fn a_flipped_character_fails_the_checksum() {
        let s = TokenSecret::generate("");
        let mut chars: Vec<char> = s.expose().chars().collect();
        chars[5] = if chars[5] == 'a' { 'b' } else { 'a' };
        let tampered: String = chars.into_iter().collect();
        assert!(TokenSecret::parse(&tampered, "").is_none());
    }

    #[test]
    fn malformed_tokens_are_rejected() {
        let good = TokenSecret::generate("gh_");
        for bad in [
            "",
            "|",
            "abc|def",
            &format!("not-a-uuid|{}", good.expose()),
            &format!("{}|{}", TokenId::generate(), &good.expose()[3..]),
        ] {
            assert!(PlainTextToken::parse(bad, "gh_").is_none(), "{bad}");
        }
    }

    #[test]
    fn abilities_match_exactly_or_by_star() {
        let a = Abilities::new(vec!["tokens:create".into(), "read".into()]);
        assert!(a.can("read"));
        assert!(!a.can("write"));
        assert!(!a.can("rea"));
        assert!(Abilities::all().can("anything"));
    }

    #[test]
    fn secrets_do_not_leak_through_debug() {
        let s = TokenSecret::generate("gh_");
        assert!(!format!("{s:?}").contains(&s.expose()[3..10]));
    }
}
