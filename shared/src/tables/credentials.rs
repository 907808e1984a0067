//! The `credentials` table: a register of every credential a user holds — sessions, personal
//! access tokens, cross-app handoff tokens, OAuth grants (refresh-token families) and consents —
//! and what each was derived from.
//!
//! Two rules make "nothing issued from old credentials survives" hold under concurrency and index
//! lag:
//! 1. **Issuing is conditional on the credentials version.** Every user has a
//!    `credentials_version`; a reset, a password change or "log out other devices" moves it on
//!    (compare-and-swap on the version it read). A credential is written together with its
//!    register entry in one atomic step that also checks the user's version is still the one the
//!    caller verified against (a password check, or the version stamped on the parent
//!    credential). Once the version has moved, nothing verified against the old one can be issued.
//! 2. **Revocation reads the register, not an index.** The register is a base table keyed by user
//!    (`user_id`, `cred`), read with a consistent query: every credential committed before the
//!    version moved is in it, whatever the `by_user` / `by_tokenable` indexes have caught up with.
//!
//! The checks themselves (`Access::session`, `Access::token`) stay one read of the credential.
//!
//! A revocation of one credential's tree ([`Revocation::Tree`]: a logout, ending a session,
//! revoking a token or a cross-app session) ends the root's credential first, then the
//! descendants, deepest first, then forgets the root's entry while marking its tree ended for a
//! day ([`Register::ended`]). Cut short anywhere, it leaves the root's entry for the identical
//! retry to find and finish; finished but with its answer lost, it leaves the mark, so the
//! retry answers what the first attempt would have instead of "no such credential".

use crate::tables::credential_ref::CredentialRef;
use crate::tables::cross_app_sessions::Handoff;
use crate::tables::oauth_consents::Consent;
use crate::tables::oauth_refresh_tokens::RefreshFamily;
use crate::tables::personal_access_tokens::PersonalAccessToken;
use crate::tables::sessions::SessionRecord;
use crate::tables::users::{EventMark, UserId};
use crate::values::clock::Timestamp;
use crate::values::error::StoreResult;
use async_trait::async_trait;
use std::collections::HashSet;

/// One line of the register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialEntry {
    pub user_id: UserId,
    pub credential: CredentialRef,
    /// The credential it was derived from (a child token's parent token, a handoff's session or
    /// token, a cross-app session's handoff's parent). Revoking the parent revokes it.
    pub parent: Option<CredentialRef>,
    /// The cross-app audit record of a session opened by a handoff exchange.
    pub cross_app_id: Option<String>,
    pub created_at: Timestamp,
    /// When the credential can no longer be live (its longest possible life); the TTL.
    pub expires_at: Option<Timestamp>,
}

/// A credential to issue, with its record.
#[derive(Debug, Clone, Copy)]
pub enum NewCredential<'a> {
    Session(&'a SessionRecord),
    Token(&'a PersonalAccessToken),
    Handoff(&'a Handoff),
    /// An OAuth grant: its refresh-token family, whose id must be new. Its entry expires with
    /// the family.
    OAuthGrant(&'a RefreshFamily),
    /// A consent: it replaces the user's consent to the same client, and its entry (a
    /// re-approval, not a conflict). Its entry does not expire.
    Consent(&'a Consent),
}

impl NewCredential<'_> {
    pub fn reference(&self) -> CredentialRef {
        match self {
            NewCredential::Session(s) => CredentialRef::session(&s.key),
            NewCredential::Token(t) => CredentialRef::token(&t.id),
            NewCredential::Handoff(h) => CredentialRef::handoff(&h.token_hash),
            NewCredential::OAuthGrant(f) => CredentialRef::oauth_grant(&f.family_id),
            NewCredential::Consent(c) => CredentialRef::consent(&c.client_id),
        }
    }
}

/// A device listed on the user by the step that issues a sign-in's session
/// ([`CredentialStore::issue_on_device`]).
#[derive(Debug, Clone, Copy)]
pub struct NewDevice<'a> {
    pub id: &'a str,
    pub issued_at: Timestamp,
    /// The devices listed as the sign-in read the user (oldest first): the oldest go at
    /// [`crate::tables::users::MAX_DEVICES`] ([`crate::tables::users::evicted_devices`]); none listed, the list
    /// is written whole (a sign-in racing the user's first one may then drop the other's).
    pub listed: &'a [crate::tables::users::KnownDevice],
}

/// What an issue writes on the user item besides its condition
/// ([`CredentialStore::issue_on_device`]): a device to list, and the marks of the issue's events
/// (numbered from the user's counter in the same atomic step, #32). Neither: the user item is
/// only checked.
#[derive(Debug, Clone, Copy, Default)]
pub struct OnUser<'a> {
    pub device: Option<NewDevice<'a>>,
    pub events: &'a [EventMark],
}

#[async_trait]
pub trait CredentialStore: Send + Sync {
    /// Writes `credential` into its table and `entry` into the register in one atomic step, if
    /// and only if the user exists and its credentials version is `version`. `Ok(false)` (and
    /// nothing written) when the version has moved on or the user is gone; `Err(Conflict)` when
    /// the credential's key is taken (but a consent, which replaces the one it finds).
    async fn issue(&self, version: u64, entry: &CredentialEntry, credential: NewCredential<'_>) -> StoreResult<bool> {
        self.issue_on_device(version, entry, credential, OnUser::default()).await
    }
    /// [`CredentialStore::issue`], with the marks of the issue's `events` put on the user in the
    /// same atomic step (a token's `token.created`). Sent again after it landed, it is `Ok(true)`
    /// (the user carries its marks), and no event is numbered twice.
    async fn issue_noting(
        &self,
        version: u64,
        entry: &CredentialEntry,
        credential: NewCredential<'_>,
        events: &[EventMark],
    ) -> StoreResult<bool> {
        self.issue_on_device(version, entry, credential, OnUser { device: None, events }).await
    }
    /// [`CredentialStore::issue`], listing `on_user.device` on the user and numbering
    /// `on_user.events` in the same atomic step (a sign-in's session, from a device the account
    /// did not know, and its `session.created`): no extra call.
    async fn issue_on_device(
        &self,
        version: u64,
        entry: &CredentialEntry,
        credential: NewCredential<'_>,
        on_user: OnUser<'_>,
    ) -> StoreResult<bool>;
    /// Every register entry of the user, read consistently (expired ones included: revoking an
    /// expired credential is harmless, missing a live one is not).
    async fn list(&self, user: &UserId) -> StoreResult<Vec<CredentialEntry>>;
    /// [`CredentialStore::list`] and the marks of the trees revoked lately (those not expired),
    /// in the same consistent read.
    async fn read(&self, user: &UserId) -> StoreResult<Register>;
    /// Removes register entries (after their credentials were deleted).
    async fn forget(&self, user: &UserId, refs: &[CredentialRef]) -> StoreResult<()> {
        self.forget_and_mark(user, refs, &[], None).await
    }
    /// In one write: removes the entries `refs` and the marks of the trees `unmark`, and marks
    /// the tree of `mark.0` ended until `mark.1` ([`Register::ended`]).
    async fn forget_and_mark(
        &self,
        user: &UserId,
        refs: &[CredentialRef],
        unmark: &[CredentialRef],
        mark: Option<(&CredentialRef, Timestamp)>,
    ) -> StoreResult<()>;
    /// The last write of the revocation of `root`'s tree, announced (#32): `root`'s entry
    /// forgotten, the tree marked ended until `until`, and `events` numbered on the user, in one
    /// atomic step, only if this write is what removes the entry. Gone already (another
    /// revocation of the tree finished first, this very write landed before and was sent again,
    /// or a credentials change forgot it), or the user gone: the entry and the mark are written
    /// as [`CredentialStore::forget_and_mark`] writes them, and nothing is numbered (twice). A
    /// consent's key is the same on every grant: a second grant's end is announced too, whatever
    /// mark the first left.
    async fn end_tree_noting(
        &self,
        user: &UserId,
        root: &CredentialRef,
        until: Timestamp,
        events: &[EventMark],
    ) -> StoreResult<()>;
    /// Whether the register names `user`'s cross-app audit record `id` (read consistently): the
    /// record is the user's, whatever the owner index has caught up with.
    async fn audited(&self, user: &UserId, id: &str) -> StoreResult<bool>;
    /// Whether the register holds `cred`'s entry, or marks its tree ended lately ([`Register`]),
    /// by point reads (consistent): what a retry names is checked before the whole register is
    /// read, so a made-up credential naming a user costs that user's register nothing more.
    async fn knows(&self, user: &UserId, cred: &CredentialRef) -> StoreResult<bool>;
}

/// A user's register as one consistent read finds it ([`CredentialStore::read`]).
#[derive(Debug, Clone, Default)]
pub struct Register {
    /// Every entry, as [`CredentialStore::list`] returns them.
    pub entries: Vec<CredentialEntry>,
    /// The roots of the trees a revocation finished within [`ENDED_MARK_LIFETIME`]: a retry of
    /// that revocation whose first answer was lost finds its root here, gone with its whole tree
    /// (nothing can be issued from a root that is gone), and answers as the first attempt did.
    pub ended: Vec<CredentialRef>,
}

impl Register {
    /// The entry of `cred`, if the register holds one.
    pub fn entry(&self, cred: &CredentialRef) -> Option<&CredentialEntry> {
        self.entries.iter().find(|e| &e.credential == cred)
    }

    /// Whether a revocation finished `cred`'s tree lately.
    pub fn ended(&self, cred: &CredentialRef) -> bool {
        self.ended.contains(cred)
    }
}

/// How long a finished tree revocation's mark stays ([`Register::ended`]): far past any client's
/// retries of one request.
pub const ENDED_MARK_LIFETIME: chrono::Duration = chrono::Duration::days(1);

/// Which of a user's credentials to revoke.
#[derive(Debug, Clone, Copy)]
pub enum Revocation<'a> {
    /// Everything (a reset, a password change, an account deletion).
    Everything,
    /// Everything but this one session ("log out other devices").
    AllBut(&'a CredentialRef),
    /// This credential and everything derived from it (revoking a token, logging out).
    Tree(&'a CredentialRef),
    /// Everything registered up to `before` but `keep` (a revocation that could not finish at
    /// once, run later by [`RevokeLater`](crate::services::revocation::RevokeLater): what was issued since, under the new credentials,
    /// stays). Inclusive: stamps are milliseconds, and a stale credential may share the last one.
    IssuedBefore { before: Timestamp, keep: Option<&'a CredentialRef> },
}

/// The entries a revocation selects: all, all but one, or a credential and its descendants.
pub fn select<'e>(entries: &'e [CredentialEntry], what: Revocation<'_>) -> Vec<&'e CredentialEntry> {
    match what {
        Revocation::Everything => entries.iter().collect(),
        Revocation::AllBut(keep) => entries.iter().filter(|e| &e.credential != keep).collect(),
        Revocation::IssuedBefore { before, keep } => {
            entries.iter().filter(|e| e.created_at <= before && Some(&e.credential) != keep).collect()
        }
        Revocation::Tree(root) => {
            let mut chosen: HashSet<&CredentialRef> = HashSet::from([root]);
            // Parents may be listed after their children: grow the set until it stops growing.
            loop {
                let before = chosen.len();
                for e in entries {
                    if e.parent.as_ref().is_some_and(|p| chosen.contains(p)) {
                        chosen.insert(&e.credential);
                    }
                }
                if chosen.len() == before {
                    break;
                }
            }
            entries.iter().filter(|e| chosen.contains(&e.credential)).collect()
        }
    }
}

/// Why a cross-app session ended, recorded on its audit record.
pub mod reasons {
    pub const PASSWORD_RESET: &str = "password_reset";
    pub const PASSWORD_CHANGED: &str = "password_changed";
    pub const OTHER_DEVICES_LOGGED_OUT: &str = "other_devices_logged_out";
    pub const LOGOUT: &str = "logout";
    pub const PARENT_REVOKED: &str = "parent_revoked";
    pub const USER_REVOKED: &str = "revoked_by_user";
    pub const ACCOUNT_DELETED: &str = "account_deleted";
    pub const ACCOUNT_DISABLED: &str = "account_disabled";
    pub const TWO_FACTOR_ENABLED: &str = "two_factor_enabled";
    pub const SIGNED_OUT_BY_OPERATOR: &str = "signed_out_by_operator";
}

/// How far below the top of `chosen` each of its entries is (0: its parent is not among them).
pub fn depths<'e>(chosen: &[&'e CredentialEntry]) -> std::collections::HashMap<&'e CredentialRef, usize> {
    let mut depth: std::collections::HashMap<&CredentialRef, usize> =
        chosen.iter().map(|e| (&e.credential, 0)).collect();
    // Parents may be listed after their children: at most one round per entry (issuing makes no
    // cycle; were there one, the rounds would still end).
    for _ in 0..chosen.len() {
        let mut moved = false;
        for e in chosen {
            let below = e.parent.as_ref().and_then(|p| depth.get(p)).map(|d| d + 1);
            if let Some(d) = below
                && depth.get(&e.credential).is_some_and(|now| d > *now)
            {
                depth.insert(&e.credential, d);
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }
    depth
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::credential_ref::CredentialKind;
    use crate::tables::personal_access_tokens::TokenId;

    fn entry(cred: CredentialRef, parent: Option<CredentialRef>) -> CredentialEntry {
        CredentialEntry {
            user_id: UserId::from_stored("u".into()),
            credential: cred,
            parent,
            cross_app_id: None,
            created_at: chrono::Utc::now(),
            expires_at: None,
        }
    }

    #[test]
    fn refs_round_trip_and_reject_garbage() {
        let client = crate::tables::oauth_clients::ClientId::generate();
        for r in [
            CredentialRef::handoff("ab"),
            CredentialRef::token(&TokenId::generate()),
            CredentialRef::oauth_grant(&crate::tables::oauth_refresh_tokens::new_family_id()),
            CredentialRef::consent(&client),
        ] {
            assert_eq!(CredentialRef::decode(&r.encode()), Some(r));
        }
        assert_eq!(CredentialRef::consent(&client).encode(), format!("consent#{client}"));
        for bad in ["", "token", "token#", "cookie#x", "oauth#", "consent#"] {
            assert_eq!(CredentialRef::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_deferred_revocation_selects_what_was_issued_before_its_cut_off_but_the_kept_one() {
        let t = |k: &str| CredentialRef { kind: CredentialKind::Session, key: k.into() };
        let now = chrono::Utc::now();
        let at = |k: &str, secs: i64| CredentialEntry {
            created_at: now + chrono::Duration::seconds(secs),
            ..entry(t(k), None)
        };
        let entries = [at("old", -60), at("kept", -1), at("edge", 0), at("new", 1)];
        let keep = t("kept");
        let chosen: Vec<&str> = select(&entries, Revocation::IssuedBefore { before: now, keep: Some(&keep) })
            .iter()
            .map(|e| e.credential.key.as_str())
            .collect();
        assert_eq!(chosen, ["old", "edge"], "up to the cut-off, its own instant included, and never the kept one");
    }

    #[test]
    fn a_tree_is_the_root_and_every_descendant_in_any_order() {
        let t = |k: &str| CredentialRef { kind: CredentialKind::Token, key: k.into() };
        // grandchild listed before its parent
        let entries = vec![
            entry(t("c"), Some(t("b"))),
            entry(t("a"), None),
            entry(t("b"), Some(t("a"))),
            entry(t("x"), None),
            entry(t("y"), Some(t("x"))),
        ];
        let keys = |v: Vec<&CredentialEntry>| {
            let mut k: Vec<String> = v.iter().map(|e| e.credential.key.clone()).collect();
            k.sort();
            k
        };
        assert_eq!(keys(select(&entries, Revocation::Tree(&t("a")))), ["a", "b", "c"]);
        assert_eq!(keys(select(&entries, Revocation::Tree(&t("b")))), ["b", "c"]);
        assert_eq!(keys(select(&entries, Revocation::AllBut(&t("x")))), ["a", "b", "c", "y"]);
        assert_eq!(select(&entries, Revocation::Everything).len(), 5);
    }

    #[test]
    fn a_tree_ends_deepest_first_so_no_entry_goes_before_its_descendants() {
        let t = |k: &str| CredentialRef { kind: CredentialKind::Token, key: k.into() };
        // grandchild listed first, its parent last
        let entries = vec![
            entry(t("c"), Some(t("b"))),
            entry(t("a"), None),
            entry(t("d"), Some(t("a"))),
            entry(t("b"), Some(t("a"))),
        ];
        let chosen = select(&entries, Revocation::Tree(&t("a")));
        let depth = depths(&chosen);
        let of = |k: &str| depth.get(&t(k)).copied();
        assert_eq!([of("a"), of("b"), of("c"), of("d")], [Some(0), Some(1), Some(2), Some(1)]);
    }
}
