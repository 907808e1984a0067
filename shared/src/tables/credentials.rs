//! The `credentials` table: a register of every credential a user holds — sessions, personal
//! access tokens, cross-app handoff tokens — and what each was derived from.
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

use crate::tables::cross_app_sessions::Handoff;
use crate::tables::personal_access_tokens::{PersonalAccessToken, TokenId, Tokenable};
use crate::tables::sessions::{SessionKey, SessionRecord};
use crate::tables::users::UserId;
use crate::values::clock::Timestamp;
use crate::values::error::StoreResult;
use async_trait::async_trait;
use std::collections::HashSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CredentialKind {
    Session,
    Token,
    Handoff,
}

impl CredentialKind {
    fn prefix(self) -> &'static str {
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
    pub fn session(key: &SessionKey) -> Self {
        Self { kind: CredentialKind::Session, key: key.as_str().to_owned() }
    }
    pub fn token(id: &TokenId) -> Self {
        Self { kind: CredentialKind::Token, key: id.as_str().to_owned() }
    }
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
}

impl NewCredential<'_> {
    pub fn reference(&self) -> CredentialRef {
        match self {
            NewCredential::Session(s) => CredentialRef::session(&s.key),
            NewCredential::Token(t) => CredentialRef::token(&t.id),
            NewCredential::Handoff(h) => CredentialRef::handoff(&h.token_hash),
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

#[async_trait]
pub trait CredentialStore: Send + Sync {
    /// Writes `credential` into its table and `entry` into the register in one atomic step, if
    /// and only if the user exists and its credentials version is `version`. `Ok(false)` (and
    /// nothing written) when the version has moved on or the user is gone; `Err(Conflict)` when
    /// the credential's key is taken.
    async fn issue(&self, version: u64, entry: &CredentialEntry, credential: NewCredential<'_>) -> StoreResult<bool> {
        self.issue_on_device(version, entry, credential, None).await
    }
    /// [`CredentialStore::issue`], listing `device` on the user in the same atomic step (a
    /// sign-in's session, from a device the account did not know): no extra call.
    async fn issue_on_device(
        &self,
        version: u64,
        entry: &CredentialEntry,
        credential: NewCredential<'_>,
        device: Option<NewDevice<'_>>,
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
    /// once, run later by [`RevokeLater`]: what was issued since, under the new credentials,
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

/// How many credentials a revocation ends at once.
const REVOKE_PARALLELISM: usize = 16;

/// Deletes one credential from its table (harmless when it is already gone).
async fn end_credential(stores: &crate::Stores, user: &UserId, cred: &CredentialRef) -> StoreResult<()> {
    match cred.kind {
        CredentialKind::Session => {
            stores.sessions.delete(&SessionKey::from_stored(cred.key.clone())).await?;
        }
        CredentialKind::Token => {
            stores.tokens.delete_owned(&TokenId::from_stored(cred.key.clone()), &Tokenable::user(user)).await?;
        }
        CredentialKind::Handoff => stores.cross_app.delete_handoff(&cred.key).await?,
    }
    Ok(())
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

/// Revokes what `what` selects among the user's registered credentials, then (for `Everything`
/// and `AllBut`) sweeps the owner indexes too, for credentials issued before the register existed.
/// Cross-app audit records of ended sessions get `revoked_at` and `reason`. Returns how many
/// registered credentials it ended.
pub async fn revoke(stores: &crate::Stores, user: &UserId, what: Revocation<'_>, reason: &str) -> StoreResult<usize> {
    let register = stores.credentials.read(user).await?;
    revoke_from(stores, user, &register, what, reason).await
}

/// The retry-safe revocation of `root`'s tree from `register` (the user's, read consistently):
/// when the register names `root`, its tree is revoked now (a first attempt, or the retry of one
/// cut short, whose root [`revoke`] leaves for last); when it marks `root`'s tree ended, a
/// revocation finished it lately and nothing is left to do. `false` when the register knows
/// `root` neither way: it is no registered credential of `user`'s, and nothing was done.
pub async fn revoke_registered_tree(
    stores: &crate::Stores,
    user: &UserId,
    register: &Register,
    root: &CredentialRef,
    reason: &str,
) -> StoreResult<bool> {
    if register.entry(root).is_some() {
        let n = revoke_from(stores, user, register, Revocation::Tree(root), reason).await?;
        tracing::info!(event = "tree_revoked", user_id = %user, root = %root.kind.prefix(), credentials = n);
        return Ok(true);
    }
    Ok(register.ended(root))
}

/// How far below the top of `chosen` each of its entries is (0: its parent is not among them).
fn depths<'e>(chosen: &[&'e CredentialEntry]) -> std::collections::HashMap<&'e CredentialRef, usize> {
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

/// [`revoke`] from the register `register` already read (consistently) for `user`.
///
/// A tree ([`Revocation::Tree`]) ends its root's credential first (a stolen root stops at once),
/// then its descendants deepest first, and the root's entry last of all, in the same write that
/// marks its tree ended ([`Register::ended`]). So wherever a failure, a lost answer or the
/// request's deadline cuts it short, what is left is found by the identical retry: the root's
/// entry, or the mark. No entry is forgotten before its descendants, so the retry's selection
/// of the tree is whole. Once the descendants have ended the register is read once more, for
/// what was derived while they were ending: it ends too, before the root's entry goes.
pub async fn revoke_from(
    stores: &crate::Stores,
    user: &UserId,
    register: &Register,
    what: Revocation<'_>,
    reason: &str,
) -> StoreResult<usize> {
    let now = stores.clock.now();
    let chosen = select(&register.entries, what);
    let root = match what {
        Revocation::Tree(root) => Some(root),
        _ => None,
    };
    // The root's entry (`None`: a root from before the register, which still ends).
    let root_entry = root.and_then(|r| chosen.iter().find(|e| &e.credential == r).copied());
    let rest: Vec<&CredentialEntry> = chosen.iter().copied().filter(|e| Some(&e.credential) != root).collect();
    // Everything goes, the marks of trees ended lately too (an account deleted leaves nothing
    // naming it): in the last batch's write.
    let unmark: &[CredentialRef] = match what {
        Revocation::Everything => &register.ended,
        _ => &[],
    };
    // The root's credential first: a stolen one stops working at once, however long its tree
    // takes to end (an attacker may have padded it); its entry stays until the very end, so a
    // retry of a revocation cut short still finds the tree.
    if let Some(root) = root {
        let cross_app_id = root_entry.and_then(|e| e.cross_app_id.as_deref());
        end_one(stores, user, root, cross_app_id, now, reason).await?;
    }
    end_entries(stores, user, &rest, root.is_some(), (now, reason), unmark).await?;
    let mut ended = chosen.len();
    if let Some(root) = root {
        // Nothing can be issued from the root now (an issue checks its parent is there); what
        // was while its tree was ending (from it, or from a descendant before that one ended)
        // committed before, so one more consistent read of the register lists it.
        let again = stores.credentials.read(user).await?;
        let late: Vec<&CredentialEntry> =
            select(&again.entries, what).into_iter().filter(|e| &e.credential != root).collect();
        end_entries(stores, user, &late, true, (now, reason), &[]).await?;
        ended += late.len();
        let mark = (root, now + ENDED_MARK_LIFETIME);
        stores.credentials.forget_and_mark(user, std::slice::from_ref(root), &[], Some(mark)).await?;
    }
    // Credentials from before the register: listed through the indexes, which lag only for
    // fresh writes — and every fresh write is registered.
    let keep = match what {
        Revocation::Everything => None,
        Revocation::AllBut(r) => Some(SessionKey::from_stored(r.key.clone())),
        // A deferred revocation ends what the register holds; the owner indexes cannot tell what
        // was issued before the cut-off.
        Revocation::Tree(_) | Revocation::IssuedBefore { .. } => return Ok(ended),
    };
    stores.sessions.delete_for_user(user, keep.as_ref()).await?;
    stores.tokens.delete_all_for(&Tokenable::user(user)).await?;
    for s in stores.cross_app.list_for_user(user).await? {
        if s.revoked_at.is_none() && keep.as_ref() != Some(&s.session_key) {
            stores.sessions.delete(&s.session_key).await?;
            stores.cross_app.revoke_session(&s.id, user, now, reason).await?;
        }
    }
    Ok(ended)
}

/// Ends the credentials of `entries` and forgets their entries, and the marks `unmark` with the
/// last batch. Sessions and tokens first (the credentials that work on their own), handoffs
/// last; in a tree (`tree`), deeper ones before shallower ones first of all. Entries whose
/// credential cannot be live any more (a session past its absolute end, a handoff past its
/// expiry) and from which nothing among them derives are only forgotten. The rest end in
/// parallel batches, and each batch's entries are forgotten as it completes, so a register an
/// attacker has padded neither hides the credentials that matter behind the ones that do not,
/// nor makes a retry start from zero.
async fn end_entries(
    stores: &crate::Stores,
    user: &UserId,
    entries: &[&CredentialEntry],
    tree: bool,
    (now, reason): (Timestamp, &str),
    unmark: &[CredentialRef],
) -> StoreResult<()> {
    let rank = |e: &CredentialEntry| match e.credential.kind {
        CredentialKind::Session => 0,
        CredentialKind::Token => 1,
        CredentialKind::Handoff => 2,
    };
    let mut ordered = entries.to_vec();
    if tree {
        let depth = depths(entries);
        ordered.sort_by_key(|e| (std::cmp::Reverse(depth.get(&e.credential).copied().unwrap_or(0)), rank(e)));
    } else {
        ordered.sort_by_key(|e| rank(e));
    }
    let parents: HashSet<&CredentialRef> = entries.iter().filter_map(|e| e.parent.as_ref()).collect();
    let dead = |e: &CredentialEntry| {
        e.credential.kind != CredentialKind::Token
            && e.expires_at.is_some_and(|x| x <= now)
            && e.cross_app_id.is_none()
            && !parents.contains(&e.credential)
    };
    let work: Vec<(CredentialRef, Option<String>)> =
        ordered.iter().filter(|e| !dead(e)).map(|e| (e.credential.clone(), e.cross_app_id.clone())).collect();
    let expired: Vec<CredentialRef> = ordered.iter().filter(|e| dead(e)).map(|e| e.credential.clone()).collect();
    stores.credentials.forget(user, &expired).await?;
    let batches: Vec<&[(CredentialRef, Option<String>)]> = work.chunks(REVOKE_PARALLELISM).collect();
    for (i, batch) in batches.iter().enumerate() {
        let mut tasks = tokio::task::JoinSet::new();
        for (cred, cross_app_id) in batch.iter() {
            let (stores, user, reason) = (stores.clone(), user.clone(), reason.to_owned());
            let (cred, cross_app_id) = (cred.clone(), cross_app_id.clone());
            tasks.spawn(async move { end_one(&stores, &user, &cred, cross_app_id.as_deref(), now, &reason).await });
        }
        while let Some(done) = tasks.join_next().await {
            done.map_err(|e| crate::StoreError::Unavailable(format!("revocation task: {e}")))??;
        }
        let refs: Vec<CredentialRef> = batch.iter().map(|(c, _)| c.clone()).collect();
        let last = i + 1 == batches.len();
        stores.credentials.forget_and_mark(user, &refs, if last { unmark } else { &[] }, None).await?;
    }
    if batches.is_empty() && !unmark.is_empty() {
        stores.credentials.forget_and_mark(user, &[], unmark, None).await?;
    }
    Ok(())
}

/// Ends one credential and then, for a session a handoff opened, marks its audit record
/// revoked (a record already marked stays as it is).
async fn end_one(
    stores: &crate::Stores,
    user: &UserId,
    cred: &CredentialRef,
    cross_app_id: Option<&str>,
    now: Timestamp,
    reason: &str,
) -> StoreResult<()> {
    end_credential(stores, user, cred).await?;
    if let Some(id) = cross_app_id {
        stores.cross_app.revoke_session(id, user, now, reason).await?;
    }
    Ok(())
}

/// After the user's address was verified: stamps the flag on every live session and token in
/// the register (read consistently), so routes requiring a verified address pass them without
/// a user read on each request. Handoffs are not stamped (the session an exchange opens reads the
/// user). A credential issued concurrently with the verification may keep `false` (it read the
/// user before): it fails closed, and the next login or token carries the flag. Returns how many
/// it stamped.
/// Stamps nothing for a user whose address is not verified as read (`user`): no path can mark a
/// credential verified while the address is not.
pub async fn stamp_verified(stores: &crate::Stores, user: &crate::tables::users::User) -> StoreResult<usize> {
    if user.email_verified_at.is_none() {
        return Ok(0);
    }
    let entries = stores.credentials.list(&user.id).await?;
    let joined = |r: Result<StoreResult<bool>, tokio::task::JoinError>| {
        r.map_err(|e| crate::StoreError::Unavailable(format!("stamping task: {e}")))?.map(usize::from)
    };
    let (mut tasks, mut n) = (tokio::task::JoinSet::new(), 0);
    for e in entries.into_iter().filter(|e| e.credential.kind != CredentialKind::Handoff) {
        let stores = stores.clone();
        tasks.spawn(async move {
            match e.credential.kind {
                CredentialKind::Session => {
                    stores.sessions.mark_verified(&SessionKey::from_stored(e.credential.key)).await
                }
                _ => stores.tokens.mark_verified(&TokenId::from_stored(e.credential.key)).await,
            }
        });
        // Bounded like revocation: a padded register cannot fan out without limit.
        while tasks.len() >= REVOKE_PARALLELISM {
            if let Some(done) = tasks.join_next().await {
                n += joined(done)?;
            }
        }
    }
    while let Some(done) = tasks.join_next().await {
        n += joined(done)?;
    }
    Ok(n)
}

/// The job that finishes a revocation which failed when it was due ([`revoke_or_queue`]).
pub const REVOKE_LATER: &str = "RevokeCredentials";

/// How long the safety-net job of [`revoke_or_queue`] waits: past any function's timeout, so the
/// inline revocation has finished (or its invocation has ended) by then.
const NET_DELAY: std::time::Duration = std::time::Duration::from_secs(60);

/// Revokes every credential of `user` but `keep`, after its credentials version moved (a
/// reset, a password change, two-factor turned on), so that nothing issued against the old
/// credentials outlives the change, whatever fails:
/// - first a [`REVOKE_LATER`] job is queued to run in [`NET_DELAY`]: should this request be cut at
///   its deadline while a hung store holds the revocation (the version has moved, so nothing new
///   can be issued against the old password, but what was issued before would live on), the job
///   finishes it;
/// - then the revocation runs at once; when it fails part way, another job is queued to run now.
///
/// The job is idempotent: it ends what the register lists as registered before now, but `keep`,
/// so after a revocation that completed it finds nothing, and what the user signs in with
/// afterwards stays. "Now" is read after the version moved: whatever was issued against the old
/// credentials committed before that (the issue is conditional on the version) and was stamped
/// earlier still, by a function whose clock agrees with this one's (Lambda's clocks are kept by
/// Amazon Time Sync) to well within the time since. `Ok(None)` when the revocation was left to a
/// job; `Err` only when it failed and no job could be queued.
pub async fn revoke_or_queue(
    stores: &crate::Stores,
    dispatcher: &crate::queue::Dispatcher,
    user: &UserId,
    keep: Option<&CredentialRef>,
    reason: &str,
) -> StoreResult<Option<usize>> {
    let what = match keep {
        Some(k) => Revocation::AllBut(k),
        None => Revocation::Everything,
    };
    let before = stores.clock.now();
    let net = dispatcher.dispatch_after(later_job(user, before, keep, reason), NET_DELAY).await;
    if let Err(e) = &net {
        tracing::warn!(event = "revocation_net_not_queued", user_id = %user, reason, error = %e);
    }
    let failed = match revoke(stores, user, what, reason).await {
        Ok(n) => return Ok(Some(n)),
        Err(e) => e,
    };
    let now = dispatcher.dispatch(later_job(user, before, keep, reason)).await;
    if now.is_ok() || net.is_ok() {
        tracing::warn!(event = "revocation_queued", user_id = %user, reason, error = %failed);
        return Ok(None);
    }
    tracing::error!(event = "revocation_not_queued", user_id = %user, reason, error = %failed);
    Err(failed)
}

/// Queues, to run now, the revocation of what the register lists for `user` from before
/// `before` (the job of [`revoke_or_queue`]): for a retry that finishes a change whose first
/// attempt may have stopped before its revocation ran. Idempotent.
pub async fn queue_revocation(
    dispatcher: &crate::queue::Dispatcher,
    user: &UserId,
    before: Timestamp,
    reason: &str,
) -> Result<(), crate::queue::DispatchError> {
    dispatcher.dispatch(later_job(user, before, None, reason)).await.map(|_| ())
}

fn later_job(
    user: &UserId,
    before: Timestamp,
    keep: Option<&CredentialRef>,
    reason: &str,
) -> crate::tables::jobs::JobPayload {
    let data = serde_json::json!({
        "user_id": user.as_str(),
        "before_ms": before.timestamp_millis(),
        "keep": keep.map(CredentialRef::encode),
        "reason": reason,
    });
    let mut job = crate::tables::jobs::JobPayload::new(REVOKE_LATER, data);
    job.display_name = format!("Gatehouse\\Jobs\\{REVOKE_LATER}");
    // Through an outage of hours: 24 tries (under the queue's 25 receives before the DLQ, so the
    // last failure lands in failed_jobs with its cause, for `queue:retry`), backing off to 15
    // minutes, about 4.6 hours in all.
    job.max_tries = Some(24);
    job.backoff = vec![5, 15, 30, 60, 120, 300, 900];
    // Well under the worker's 60 s Lambda timeout, so the worker's own timeout handles a stall.
    job.timeout = Some(30);
    job
}

/// Runs a queued revocation ([`revoke_or_queue`]); idempotent, so a retry finishes what a
/// failed run left.
pub struct RevokeLater;

#[async_trait]
impl crate::queue::JobHandler for RevokeLater {
    async fn handle(
        &self,
        job: &crate::tables::jobs::JobPayload,
        ctx: &crate::queue::JobContext,
    ) -> Result<(), crate::queue::JobError> {
        use crate::queue::JobError;
        let field = |k: &str| job.data.get(k).and_then(|v| v.as_str());
        let user = field("user_id").and_then(UserId::parse).ok_or_else(|| JobError::permanent("no user id"))?;
        let before = job.data.get("before_ms").and_then(serde_json::Value::as_i64);
        let before = before
            .and_then(chrono::DateTime::from_timestamp_millis)
            .ok_or_else(|| JobError::permanent("no cut-off"))?;
        let keep = match field("keep") {
            Some(k) => Some(CredentialRef::decode(k).ok_or_else(|| JobError::permanent("a malformed credential"))?),
            None => None,
        };
        let reason = field("reason").unwrap_or("revoked");
        let n = revoke(&ctx.stores, &user, Revocation::IssuedBefore { before, keep: keep.as_ref() }, reason).await?;
        tracing::info!(event = "queued_revocation_done", user_id = %user, reason, credentials = n);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        for r in [CredentialRef::handoff("ab"), CredentialRef::token(&TokenId::generate())] {
            assert_eq!(CredentialRef::decode(&r.encode()), Some(r));
        }
        for bad in ["", "token", "token#", "cookie#x"] {
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
