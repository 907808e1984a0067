//! The user commands: what an operator needs to act on one account during an incident (Cognito's
//! AdminGetUser, AdminDisableUser, AdminEnableUser and AdminUserGlobalSignOut).

use anyhow::{Result, bail};
use gatehouse::Stores;
use gatehouse::services::revocation::revoke;
use gatehouse::tables::credentials::Revocation;
use gatehouse::tables::events::{
    Actor, EventBody, IdentityUnlinked, Revoked, UserDisabled, UserEnabled, UserSignedOut,
};
use gatehouse::tables::users::{CredentialChange, User};
use serde::Serialize;

/// What `user:show` prints: ids, times, flags and counts; never a hash, secret or token.
#[derive(Debug, Serialize)]
pub struct UserReport {
    pub id: String,
    pub name: String,
    pub email: String,
    pub email_verified_at: Option<String>,
    pub two_factor_enabled: bool,
    pub disabled_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub credentials_version: u64,
    pub sessions: usize,
    pub tokens: usize,
    /// Connected identity providers (social sign-in), by provider id.
    pub identities: Vec<String>,
}

fn rfc3339(t: gatehouse::Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub async fn find(stores: &Stores, email: &str) -> Result<User> {
    let email = gatehouse::Email::parse(email).map_err(|e| anyhow::anyhow!("not an email address: {e}"))?;
    match stores.users.find_by_email(&email).await? {
        Some(u) => Ok(u),
        None => bail!("no user has that address"),
    }
}

/// `user:show`: the account, and how many live sessions and tokens it has.
pub async fn show(stores: &Stores, user: &User) -> Result<UserReport> {
    let sessions = stores.sessions.list_for_user(&user.id).await?.len();
    let owner = gatehouse::tables::personal_access_tokens::Tokenable::user(&user.id);
    let mut tokens = 0;
    let mut cursor = None;
    loop {
        let page = stores.personal_access_tokens.list_for(&owner, 100, cursor.as_ref()).await?;
        tokens += page.items.len();
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    Ok(UserReport {
        id: user.id.to_string(),
        name: user.name.clone(),
        email: user.email.as_str().to_owned(),
        email_verified_at: user.email_verified_at.map(rfc3339),
        two_factor_enabled: user.two_factor.enabled(),
        disabled_at: user.disabled_at.map(rfc3339),
        created_at: rfc3339(user.created_at),
        updated_at: rfc3339(user.updated_at),
        credentials_version: user.credentials_version,
        sessions,
        tokens,
        identities: stores
            .identities
            .for_user(&user.id)
            .await?
            .into_iter()
            .filter(|i| i.credentials_version >= user.ways_in_since)
            .map(|i| i.provider)
            .collect(),
    })
}

/// Applies `change` to the user at `email` under the credentials version it is read with,
/// re-reading when a concurrent change moved it first; `None` when `skip` says the user needs
/// nothing. The change's `event` is promised for each attempt's write (a refused attempt
/// announces nothing). Returns the user as read before the change.
async fn change(
    stores: &Stores,
    email: &str,
    change: CredentialChange<'_>,
    event: EventBody,
    skip: impl Fn(&User) -> bool,
) -> Result<Option<User>> {
    let dispatcher = gatehouse::queue::Dispatcher::new(stores.clone(), chrono::Duration::days(1));
    for _ in 0..5 {
        let user = find(stores, email).await?;
        if skip(&user) {
            return Ok(None);
        }
        let mark = gatehouse::services::events::promise(&dispatcher, &user.id, event.clone()).await?;
        let change = CredentialChange { events: std::slice::from_ref(&mark), ..change };
        let done = stores.users.change_credentials(&user.id, user.credentials_version, change, stores.clock.now());
        if done.await?.is_some() {
            return Ok(Some(user));
        }
    }
    bail!("the account kept changing while this ran; run the command again")
}

/// Moves the user's credentials version on (nothing verified against the old state can be
/// issued from this write on) with `disable` applied, then revokes every credential the user
/// holds. Returns how many were revoked.
async fn move_on(stores: &Stores, email: &str, disable: Option<bool>, reason: &str) -> Result<usize> {
    let moved = CredentialChange { revoke: true, disable, ..CredentialChange::default() };
    let event = match disable {
        Some(true) => EventBody::UserDisabled(UserDisabled { revoked: Revoked::All }),
        _ => EventBody::UserSignedOut(UserSignedOut { revoked: Revoked::All, by: Actor::Operator }),
    };
    let Some(user) = change(stores, email, moved, event, |_| false).await? else { return Ok(0) };
    let n = revoke(stores, &user.id, Revocation::Everything, reason).await?;
    let disabled = disable == Some(true);
    tracing::warn!(event = "operator_revoked_credentials", user_id = %user.id, reason, revoked = n, disabled);
    Ok(n)
}

/// `user:disable`: sign-in refused from now on (password, second factor, token issue), and
/// every session, token, handoff and cross-app session revoked. Idempotent: run again, it
/// revokes again (what a failed run left).
pub async fn disable(stores: &Stores, email: &str) -> Result<usize> {
    move_on(stores, email, Some(true), gatehouse::tables::credentials::reasons::ACCOUNT_DISABLED).await
}

/// `user:enable`: sign-in allowed again; nothing revoked is restored. `false` when the user was
/// not disabled. Refused for an account whose deletion has begun (its job finishes it).
pub async fn enable(stores: &Stores, email: &str) -> Result<bool> {
    if find(stores, email).await?.deleted_at.is_some() {
        bail!(
            "this account is being deleted; its deletion job finishes it (queue:dlq-redrive if it was dead-lettered)"
        );
    }
    let enable = CredentialChange { disable: Some(false), ..CredentialChange::default() };
    let event = EventBody::UserEnabled(UserEnabled {});
    let Some(user) = change(stores, email, enable, event, |u| u.disabled_at.is_none()).await? else {
        return Ok(false);
    };
    tracing::warn!(event = "operator_user_enabled", user_id = %user.id);
    Ok(true)
}

/// `user:sign-out-everywhere`: every credential revoked, the account left usable.
pub async fn sign_out_everywhere(stores: &Stores, email: &str) -> Result<usize> {
    move_on(stores, email, None, gatehouse::tables::credentials::reasons::SIGNED_OUT_BY_OPERATOR).await
}

/// `user:show`: the account, its second factor and how many credentials it holds.
pub async fn print(stores: &Stores, email: &str, json: bool) -> Result<()> {
    let user = find(stores, email).await?;
    let r = show(stores, &user).await?;
    if json {
        crate::print_json(&r)?;
    } else {
        let or = |v: &Option<String>, none: &str| v.clone().unwrap_or_else(|| none.to_owned());
        println!("id            {}\nname          {}\nemail         {}", r.id, r.name, r.email);
        println!(
            "verified      {}\ntwo-factor    {}",
            or(&r.email_verified_at, "no"),
            if r.two_factor_enabled { "on" } else { "off" }
        );
        println!(
            "disabled      {}\ncreated       {}\nupdated       {}",
            or(&r.disabled_at, "no"),
            r.created_at,
            r.updated_at
        );
        println!("sessions      {}\ntokens        {}", r.sessions, r.tokens);
        let identities = if r.identities.is_empty() { "none".to_owned() } else { r.identities.join(", ") };
        println!("providers     {identities}");
    }
    Ok(())
}

/// `user:reset-two-factor`: turns the second factor off and removes the passkeys; the user is told.
pub async fn reset_two_factor(stores: &Stores, dispatcher: &gatehouse::queue::Dispatcher, email: &str) -> Result<()> {
    let email = gatehouse::Email::parse(email).map_err(|e| anyhow::anyhow!("not an email address: {e}"))?;
    let Some(user) = stores.users.find_by_email(&email).await? else {
        bail!("no user has that address");
    };
    if !user.two_factor.enabled() && user.two_factor.sealed_secret.is_none() && user.passkeys.is_empty() {
        println!("User {} has no second factor; nothing to do.", user.id);
    } else if gatehouse::services::two_factor::reset(stores, dispatcher, &user).await? {
        println!("Two-factor authentication reset for user {}; they are told by mail.", user.id);
    }
    Ok(())
}

/// `user:unlink`: disconnects the user's accounts at `provider` (all of them; an operator acting
/// on a report that a provider account is not the owner's). Returns how many. The owner is
/// mailed, as for a disconnection from the account page. The last way in is not protected here:
/// the operator decides (a reset link still reaches the address).
pub async fn unlink(
    stores: &Stores,
    dispatcher: &gatehouse::queue::Dispatcher,
    config: &gatehouse::Config,
    email: &str,
    provider: &str,
) -> Result<usize> {
    let user = find(stores, email).await?;
    // The provider's name as the owner knows it (the id when it is no longer configured).
    let name = config.federation.provider(provider).map_or(provider, |p| p.name.as_str());
    let mut n = 0;
    for identity in stores.identities.for_user(&user.id).await? {
        if identity.provider != provider {
            continue;
        }
        gatehouse::services::federation::notice::promise(dispatcher, &user, &identity, name, false).await?;
        // Announced as the owner's own disconnection is (#32): `identity.unlinked`.
        let body = EventBody::IdentityUnlinked(IdentityUnlinked { provider: provider.to_owned() });
        let event = gatehouse::services::events::promise(dispatcher, &user.id, body).await?;
        if stores.identities.unlink_noting(provider, &identity.subject, &user.id, &[event]).await? {
            n += 1;
        }
    }
    if n > 0 {
        tracing::warn!(event = "operator_identity_unlinked", user_id = %user.id, provider, removed = n);
    }
    Ok(n)
}
