//! Revoking what the register ([`crate::tables::credentials`]) holds: a credential's tree, every
//! credential of a user, all but one; and `RevokeCredentials`, the job that finishes a revocation
//! that could not finish when it was due.

use crate::queue::Dispatcher;
use crate::tables::credential_ref::{CredentialKind, CredentialRef};
use crate::tables::credentials::{CredentialEntry, ENDED_MARK_LIFETIME, Register, Revocation, depths, select};
use crate::tables::oauth_clients::ClientId;
use crate::tables::personal_access_tokens::{TokenId, Tokenable};
use crate::tables::sessions::SessionKey;
use crate::tables::users::{EventMark, UserId};
use crate::values::clock::Timestamp;
use crate::values::error::StoreResult;
use async_trait::async_trait;
use std::collections::HashSet;

/// How many credentials a revocation ends at once.
const REVOKE_PARALLELISM: usize = 16;

/// Deletes one credential from its table (harmless when it is already gone).
async fn end_credential(stores: &crate::Stores, user: &UserId, cred: &CredentialRef) -> StoreResult<()> {
    match cred.kind {
        CredentialKind::Session => {
            stores.sessions.delete(&SessionKey::from_stored(cred.key.clone())).await?;
        }
        CredentialKind::Token => {
            stores
                .personal_access_tokens
                .delete_owned(&TokenId::from_stored(cred.key.clone()), &Tokenable::user(user))
                .await?;
        }
        CredentialKind::Handoff => stores.cross_app_sessions.delete_handoff(&cred.key).await?,
        CredentialKind::OAuthGrant => stores.oauth_refresh_tokens.delete(&cred.key).await?,
        CredentialKind::Consent => {
            stores.oauth_consents.delete(user, &ClientId::from_stored(cred.key.clone())).await?;
        }
    }
    Ok(())
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
    revoke_registered_tree_noting(stores, user, register, root, reason, &[]).await
}

/// [`revoke_registered_tree`], announcing the tree's end with `body` (#32: `session.ended`,
/// `token.revoked`, `oauth.consent_revoked`): the event is promised only when the register holds
/// `root` (an ending that finds the tree marked ended was announced by the one that ended it, or
/// was not to be), and the tree's last write numbers it, once whatever races it
/// ([`crate::tables::credentials::CredentialStore::end_tree_noting`]). The queue failing, the
/// tree still ends, unannounced.
pub async fn revoke_registered_tree_announced(
    stores: &crate::Stores,
    dispatcher: &Dispatcher,
    user: &UserId,
    register: &Register,
    (root, reason): (&CredentialRef, &str),
    body: crate::tables::events::EventBody,
) -> StoreResult<bool> {
    if register.entry(root).is_none() {
        return Ok(register.ended(root));
    }
    // Ending a credential matters more than announcing it: with the queue failing, it ends
    // unannounced (and says so in the log) rather than not at all.
    let events = match crate::services::events::promise(dispatcher, user, body).await {
        Ok(event) => vec![event],
        Err(e) => {
            tracing::error!(event = "event_not_promised", user_id = %user, error = %e, "ending the credential unannounced");
            Vec::new()
        }
    };
    revoke_registered_tree_noting(stores, user, register, root, reason, &events).await
}

async fn revoke_registered_tree_noting(
    stores: &crate::Stores,
    user: &UserId,
    register: &Register,
    root: &CredentialRef,
    reason: &str,
    events: &[EventMark],
) -> StoreResult<bool> {
    if register.entry(root).is_some() {
        let n = revoke_from_noting(stores, user, register, Revocation::Tree(root), reason, events).await?;
        tracing::info!(event = "tree_revoked", user_id = %user, root = %root.kind.prefix(), credentials = n);
        return Ok(true);
    }
    Ok(register.ended(root))
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
    revoke_from_noting(stores, user, register, what, reason, &[]).await
}

/// [`revoke_from`], whose last write of a tree (the root's entry and the tree's mark) numbers
/// `events` on the user too.
async fn revoke_from_noting(
    stores: &crate::Stores,
    user: &UserId,
    register: &Register,
    what: Revocation<'_>,
    reason: &str,
    events: &[EventMark],
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
        if events.is_empty() {
            stores.credentials.forget_and_mark(user, std::slice::from_ref(root), &[], Some(mark)).await?;
        } else {
            stores.credentials.end_tree_noting(user, root, mark.1, events).await?;
        }
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
    stores.personal_access_tokens.delete_all_for(&Tokenable::user(user)).await?;
    for s in stores.cross_app_sessions.list_for_user(user).await? {
        if s.revoked_at.is_none() && keep.as_ref() != Some(&s.session_key) {
            stores.sessions.delete(&s.session_key).await?;
            stores.cross_app_sessions.revoke_session(&s.id, user, now, reason).await?;
        }
    }
    Ok(ended)
}

/// Ends the credentials of `entries` and forgets their entries, and the marks `unmark` with the
/// last batch. Sessions, tokens and OAuth grants first (the credentials that work on their own:
/// a grant's refresh token mints access tokens), then handoffs (which only open a session once
/// exchanged), consents last (a consent authenticates nothing; it only spares a signed-in user
/// the consent page); in a tree (`tree`), deeper ones before shallower ones first of all. Entries whose
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
        CredentialKind::OAuthGrant => 2,
        CredentialKind::Handoff => 3,
        CredentialKind::Consent => 4,
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
        stores.cross_app_sessions.revoke_session(id, user, now, reason).await?;
    }
    Ok(())
}

/// After the user's address was verified: stamps the flag on every live session and token in
/// the register (read consistently), so routes requiring a verified address pass them without
/// a user read on each request. Handoffs are not stamped (the session an exchange opens reads the
/// user), nor OAuth grants and consents (they carry no flag). A credential issued concurrently with the verification may keep `false` (it read the
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
    // Only sessions and tokens carry the flag.
    let stamped = |k: CredentialKind| matches!(k, CredentialKind::Session | CredentialKind::Token);
    for e in entries.into_iter().filter(|e| stamped(e.credential.kind)) {
        let stores = stores.clone();
        tasks.spawn(async move {
            match e.credential.kind {
                CredentialKind::Session => {
                    stores.sessions.mark_verified(&SessionKey::from_stored(e.credential.key)).await
                }
                _ => stores.personal_access_tokens.mark_verified(&TokenId::from_stored(e.credential.key)).await,
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
    dispatcher: &Dispatcher,
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
    dispatcher: &Dispatcher,
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
