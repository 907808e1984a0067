//! Passkeys (WebAuthn Level 3 discoverable credentials, through `webauthn_rp`: pure Rust, its
//! ceremony state serialisable, so any Lambda instance can finish what another began).
//!
//! - **Registration**, from a session of the user's own with a recent password confirmation:
//!   `begin_registration` answers the options for `navigator.credentials.create()` (user
//!   verification required, a resident key, the user's passkeys excluded) and keeps the ceremony
//!   in the cache table for 5 minutes, bound to the session; `finish_registration` takes it once
//!   (marked taken by its answer, conditionally: one winner; kept for that answer's retry after a
//!   failure, closed after a success), verifies the response (challenge, origin, RP id hash,
//!   flags, signature algorithm) and stores the passkey on the user's item. At most
//!   [`MAX_PASSKEYS`] per user.
//! - **Sign-in**, usernameless: `begin_sign_in` answers options with no allowed credentials (the
//!   authenticator offers the user's passkeys), bound to the client; `finish_sign_in` takes the
//!   ceremony once, finds the user by the user handle (the user id's 16 bytes) and the passkey by
//!   its credential id, verifies the assertion against the stored public key, and records the
//!   authenticator's new state (signature counter) conditionally on the state it read, so two
//!   concurrent uses of one state (a cloned authenticator) cannot both pass. A passkey with user
//!   verification is two factors by itself: it signs in without a TOTP code.
//! - **As a second factor**, the same assertion answers a two-factor challenge
//!   ([`crate::services::sign_in::Answer::Passkey`]) when its user is the challenge's.
//! - Removing a passkey needs a recent password confirmation; every change mails a notice.

use crate::StoreError;
use crate::queue::Dispatcher;
use crate::services::auth::limits::REPEAT_WINDOW;
use crate::services::auth::{Auth, AuthError, ClientMeta};
use crate::tables::cache::Taken;
use crate::tables::events::{EventBody, PasskeyAdded, PasskeyRemoved};
use crate::tables::sessions::SessionRecord;
use crate::tables::users::{Marks, Passkey, PasskeyAdd, PasskeyUse, User, UserId};
use crate::throttle::{Limit, client_key};
use crate::values::clock::{Span, Timestamp};
use crate::values::relying_party::RelyingParty;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use webauthn_rp::bin::{Decode, Encode};
use webauthn_rp::request::auth::{AuthenticationVerificationOptions, SignatureCounterEnforcement};
use webauthn_rp::request::register::{
    CredProtect, Nickname, PublicKeyCredentialUserEntity, RegistrationVerificationOptions, UserHandle, Username,
};
use webauthn_rp::request::{ExtensionInfo, PublicKeyCredentialDescriptor, RpId, TimedCeremony as _};
use webauthn_rp::response::auth::error::AuthCeremonyErr;
use webauthn_rp::response::register::{CompressedPubKey, DynamicState, StaticState};
use webauthn_rp::response::{AuthTransports, CredentialId};
use webauthn_rp::{
    AuthenticatedCredential, DiscoverableAuthentication16, DiscoverableAuthenticationServerState,
    DiscoverableCredentialRequestOptions, PublicKeyCredentialCreationOptions, Registration, RegistrationServerState,
};

/// How many passkeys one user may hold.
pub const MAX_PASSKEYS: usize = 10;
/// How long a ceremony may take (the options' own timeout is WebAuthn's default, 5 minutes).
pub const CEREMONY_LIFETIME: Span = Span::minutes(5);
const CEREMONY_PREFIX: &str = "passkey-ceremony:";
/// A passkey's name: what the account page lists it as.
pub const MAX_NAME: usize = 64;

type Handle = UserHandle<16>;
type StoredKey = CompressedPubKey<[u8; 32], [u8; 32], [u8; 48], Vec<u8>>;

#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// Unknown, expired, already used, or begun by another session or client.
    #[error("the passkey ceremony is invalid or has expired; start again")]
    InvalidCeremony,
    /// The browser's answer is not a WebAuthn response.
    #[error("the credential is not a WebAuthn response: {0}")]
    Malformed(String),
    /// A well-formed answer that does not verify: wrong origin, bad signature, unknown passkey.
    #[error("the passkey was not accepted")]
    Rejected,
    #[error("this account already has the most passkeys allowed")]
    TooMany,
    #[error("this passkey is already registered")]
    Duplicate,
    #[error("no such passkey")]
    NotFound,
    #[error("the passkey name must be 1 to 64 printable characters")]
    BadName,
    /// The relying party configured cannot be built (validated when the configuration is read).
    #[error("passkeys are misconfigured: {0}")]
    Misconfigured(String),
    #[error(transparent)]
    Auth(#[from] AuthError),
}

impl From<StoreError> for PasskeyError {
    fn from(e: StoreError) -> Self {
        Self::Auth(AuthError::Store(e))
    }
}

/// The configuration's relying party ([`crate::config::PasskeyConfig::relying_party`]).
pub fn relying_party(config: &crate::Config) -> Result<RelyingParty, PasskeyError> {
    config.passkeys.relying_party().map_err(PasskeyError::Misconfigured)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).ok()
}

/// The user handle of `id`: its UUID's 16 bytes (no name or address in it).
fn handle(id: &UserId) -> Option<Handle> {
    let uuid = uuid::Uuid::parse_str(id.as_str()).ok()?;
    Handle::decode(*uuid.as_bytes()).ok()
}

fn user_of(handle: &Handle) -> Option<UserId> {
    let bytes: [u8; 16] = handle.encode().ok()?;
    UserId::parse(&uuid::Uuid::from_bytes(bytes).to_string())
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Ceremony {
    /// Bound to the user and to the session that began it (SHA-256 of its key).
    Register { user_id: String, session: String, version: u64, state: String },
    /// Bound to the client that asked for it.
    SignIn { client: String, state: String },
}

fn ceremony_key(challenge: u128) -> String {
    format!("{CEREMONY_PREFIX}{challenge:032x}")
}

async fn keep(auth: &Auth, challenge: u128, c: &Ceremony) -> Result<(), PasskeyError> {
    let value = serde_json::to_value(c).map_err(|e| StoreError::Rejected(e.to_string()))?;
    auth.stores().cache.put(&ceremony_key(challenge), &value, Some(auth.now() + CEREMONY_LIFETIME)).await?;
    Ok(())
}

/// A ceremony taken by one answer ([`take`]).
struct TakenCeremony {
    ceremony: Ceremony,
    /// When it was first taken (by this same answer).
    at: Timestamp,
    /// Whether an earlier attempt of this same answer took it (and then failed).
    repeat: bool,
    key: String,
}

/// The ceremony for `challenge`, taken once by the answer `response`: read, judged by `fits`, then
/// marked taken by this answer on condition that nobody else took it (of two finishes, one wins).
/// The mark is a MAC under the app key of the ceremony's key and the answer as sent, so the same
/// answer asked again within [`REPEAT_WINDOW`] (a retry after a 503, or the SDK's own retry of
/// the take whose answer was lost) finds it taken by itself and passes again; any other answer
/// finds it gone. A ceremony that does not fit is left.
async fn take(
    auth: &Auth,
    challenge: u128,
    response: &[u8],
    fits: impl Fn(&Ceremony) -> bool,
) -> Result<TakenCeremony, PasskeyError> {
    let key = ceremony_key(challenge);
    let mark =
        auth.config().app_key.tag("passkey-take", &format!("{key}|{}", crate::values::secret::sha256_hex(response)));
    let cache = &auth.stores().cache;
    let found = cache.get_once(&key, &mark).await?.ok_or(PasskeyError::InvalidCeremony)?;
    let ceremony: Ceremony =
        serde_json::from_value(found.value().clone()).map_err(|_| PasskeyError::InvalidCeremony)?;
    if !fits(&ceremony) {
        return Err(PasskeyError::InvalidCeremony);
    }
    let at = cache.take_once(&key, &mark, auth.now() + REPEAT_WINDOW).await?.ok_or(PasskeyError::InvalidCeremony)?;
    Ok(TakenCeremony { ceremony, at, repeat: found.is_repeat(), key })
}

fn session_binding(current: &SessionRecord) -> String {
    crate::values::secret::sha256_hex(current.key.as_str())
}

/// A passkey's name as given: a [`crate::tables::users::DisplayName`] (trimmed, nothing invisible: no
/// control, format, bidirectional or zero-width characters, so one passkey cannot pass for
/// another) of at most [`MAX_NAME`] characters.
pub fn parse_name(raw: &str) -> Result<String, PasskeyError> {
    let name = crate::tables::users::DisplayName::parse(raw).map_err(|_| PasskeyError::BadName)?;
    if name.as_str().chars().count() > MAX_NAME {
        return Err(PasskeyError::BadName);
    }
    Ok(name.into_string())
}

/// `POST /user/passkeys/options`: the options for `navigator.credentials.create()`.
pub async fn begin_registration(
    auth: &Auth,
    rp: &RelyingParty,
    user: &User,
    current: &SessionRecord,
) -> Result<serde_json::Value, PasskeyError> {
    auth.require_recent_confirmation(current)?;
    if user.passkeys.len() >= MAX_PASSKEYS {
        return Err(PasskeyError::TooMany);
    }
    let id = handle(&user.id).ok_or(PasskeyError::Rejected)?;
    let name = Username::try_from(user.email.as_str()).or_else(|_| Username::try_from(user.id.as_str()));
    let name = name.map_err(|e| PasskeyError::Misconfigured(format!("no WebAuthn user name: {e}")))?;
    let display_name = Nickname::try_from(user.name.as_str()).ok();
    let exclude = user
        .passkeys
        .iter()
        .filter_map(|p| {
            let id = CredentialId::decode(unb64(&p.id)?).ok()?;
            Some(PublicKeyCredentialDescriptor { id, transports: AuthTransports::decode(p.transports).ok()? })
        })
        .collect();
    let entity = PublicKeyCredentialUserEntity { name, id: &id, display_name };
    let mut options = PublicKeyCredentialCreationOptions::passkey(rp.id(), entity, exclude);
    // Ask for credProtect's "user verification required", but do not make the browser refuse an
    // authenticator without the extension (many passkey providers, and Chrome's virtual one, have
    // none): user verification is required of every ceremony anyway.
    options.extensions.cred_protect = CredProtect::UserVerificationRequired(ExtensionInfo::AllowDontEnforceValue);
    let (server, client) = options.start_ceremony().map_err(|e| PasskeyError::Misconfigured(e.to_string()))?;
    let state = server.encode().map_err(|e| StoreError::Rejected(e.to_string()))?;
    let ceremony = Ceremony::Register {
        user_id: user.id.as_str().to_owned(),
        session: session_binding(current),
        version: user.credentials_version,
        state: b64(&state),
    };
    keep(auth, server.sent_challenge().0, &ceremony).await?;
    serde_json::to_value(&client).map_err(|e| PasskeyError::Misconfigured(e.to_string()))
}

/// `POST /user/passkeys`: verifies the browser's `response` (the `PublicKeyCredential` as JSON)
/// for the ceremony this session began, and stores the passkey under `name`.
pub async fn finish_registration(
    auth: &Auth,
    rp: &RelyingParty,
    dispatcher: &Dispatcher,
    user: &User,
    current: &SessionRecord,
    name: &str,
    response: &[u8],
) -> Result<Passkey, PasskeyError> {
    let name = parse_name(name)?;
    let registration = Registration::from_json_relaxed(response).map_err(|e| PasskeyError::Malformed(e.to_string()))?;
    let challenge = registration.challenge_relaxed().map_err(|e| PasskeyError::Malformed(e.to_string()))?;
    let (me, session) = (user.id.as_str(), session_binding(current));
    let TakenCeremony { ceremony, at, key, .. } = take(
        auth,
        challenge.0,
        response,
        |c| matches!(c, Ceremony::Register { user_id, session: s, .. } if user_id == me && *s == session),
    )
    .await?;
    let Ceremony::Register { state, version, .. } = ceremony else { return Err(PasskeyError::InvalidCeremony) };
    let state = unb64(&state).ok_or(PasskeyError::InvalidCeremony)?;
    let server = RegistrationServerState::<16>::decode(&state).map_err(|_| PasskeyError::InvalidCeremony)?;
    let origins = rp.origins();
    let options = RegistrationVerificationOptions::<&str, &str> {
        allowed_origins: &origins,
        ..RegistrationVerificationOptions::default()
    };
    let credential = server.verify(rp.id(), &registration, &options).map_err(|e| {
        tracing::info!(event = "passkey_registration_refused", user_id = %user.id, reason = %e);
        PasskeyError::Rejected
    })?;
    let (id, transports, _, static_state, dynamic_state, _) = credential.into_parts();
    // Made when its ceremony was first taken: the same registration asked again (after a 503)
    // makes the very same passkey, which the store recognises as the one it added.
    let now = at;
    let passkey = Passkey {
        id: b64(id.encode().unwrap_or_default()),
        name,
        public_key: b64(&static_state.encode().unwrap_or_default()),
        state: b64(&dynamic_state.encode().unwrap_or_default()),
        transports: transports.encode().unwrap_or_default(),
        created_at: now,
        last_used_at: None,
    };
    // Conditional on the credentials version the ceremony began under: a reset since (which
    // removes passkeys) voids a registration still in flight.
    // Promised before the write, carried by it: a passkey added is never left unannounced.
    let mark = crate::services::notices::promise(dispatcher, user, "passkey_added").await.map_err(StoreError::from)?;
    let added =
        EventBody::PasskeyAdded(PasskeyAdded { passkey_id: passkey.id.clone(), name: Some(passkey.name.clone()) });
    let event = crate::services::events::promise(dispatcher, &user.id, added).await?;
    let marks = Marks::notice(Some(&mark)).and_events(std::slice::from_ref(&event));
    match auth.stores().users.add_passkey_noting(&user.id, &passkey, MAX_PASSKEYS, version, marks).await? {
        PasskeyAdd::Added => {}
        PasskeyAdd::Full => return Err(PasskeyError::TooMany),
        PasskeyAdd::Duplicate => return Err(PasskeyError::Duplicate),
        PasskeyAdd::NoUser => return Err(AuthError::CredentialsChanged.into()),
    }
    tracing::info!(event = "passkey_added", user_id = %user.id, passkey = %passkey.id);
    Taken::of(key).close(auth.stores().cache.as_ref()).await;
    Ok(passkey)
}

/// `DELETE /user/passkeys/{id}`, with a recent password confirmation.
pub async fn remove(
    auth: &Auth,
    dispatcher: &Dispatcher,
    user: &User,
    current: &SessionRecord,
    id: &str,
) -> Result<(), PasskeyError> {
    auth.require_recent_confirmation(current)?;
    // Not (or no longer) there: nothing to do, and the same answer as the removal's, so a retry
    // of a removal whose answer was lost is told it happened (it did), not that nothing is there.
    if !user.passkeys.iter().any(|p| p.id == id) {
        return Ok(());
    }
    let mark =
        crate::services::notices::promise(dispatcher, user, "passkey_removed").await.map_err(StoreError::from)?;
    let name = user.passkeys.iter().find(|p| p.id == id).map(|p| p.name.clone());
    let removed = EventBody::PasskeyRemoved(PasskeyRemoved { passkey_id: id.to_owned(), name });
    let event = crate::services::events::promise(dispatcher, &user.id, removed).await?;
    let marks = Marks::notice(Some(&mark)).and_events(std::slice::from_ref(&event));
    // Gone either way: removed now, or by this very call retried after it landed.
    auth.stores().users.remove_passkey_noting(&user.id, id, marks, auth.now()).await?;
    tracing::info!(event = "passkey_removed", user_id = %user.id, passkey = %id);
    Ok(())
}

/// `POST /passkeys/options`: options for `navigator.credentials.get()` that let the
/// authenticator offer any of its passkeys for this site. Counted per client.
pub async fn begin_sign_in(
    auth: &Auth,
    rp: &RelyingParty,
    meta: &ClientMeta,
) -> Result<serde_json::Value, PasskeyError> {
    let client = client_key(meta.ip.as_deref());
    auth.limit(&format!("passkey-options:{client}"), Limit::per_minute(30)).await?;
    let options = DiscoverableCredentialRequestOptions::passkey(rp.id());
    let (server, client_state) = options.start_ceremony().map_err(|e| PasskeyError::Misconfigured(e.to_string()))?;
    let state = server.encode().map_err(|e| StoreError::Rejected(e.to_string()))?;
    keep(auth, server.sent_challenge().0, &Ceremony::SignIn { client, state: b64(&state) }).await?;
    serde_json::to_value(&client_state).map_err(|e| PasskeyError::Misconfigured(e.to_string()))
}

/// A verified assertion: the user it signs in (read now), and its ceremony, taken, to
/// [`Taken::close`] once the sign-in is issued.
#[derive(Debug)]
pub struct Asserted {
    pub user: User,
    pub taken: Taken,
}

/// No stored state is empty: a use from it passes only as this very use recognised.
const NO_STATE: &str = "";

/// Verifies an assertion (`response`, the `PublicKeyCredential` as JSON) for a sign-in ceremony
/// this client began: the user it signs in, read now. Counted per client before any work.
///
/// The same assertion asked again after a failure past the take (`take`: its ceremony is kept
/// for it) is verified again; if its first attempt's use of the authenticator's state landed, the
/// signature counter it shows is the stored one, and it passes only as that use recognised (the
/// passkey's last use is this ceremony's, and its state the one this assertion makes), never as
/// a second use.
pub async fn assert(
    auth: &Auth,
    rp: &RelyingParty,
    response: &[u8],
    meta: &ClientMeta,
) -> Result<Asserted, PasskeyError> {
    let client = client_key(meta.ip.as_deref());
    auth.limit(&format!("passkey-sign-in:{client}"), Limit::per_minute(30)).await?;
    let authn = DiscoverableAuthentication16::from_json_relaxed(response)
        .map_err(|e| PasskeyError::Malformed(e.to_string()))?;
    let challenge = authn.challenge_relaxed().map_err(|e| PasskeyError::Malformed(e.to_string()))?;
    let TakenCeremony { ceremony, at, repeat, key } =
        take(auth, challenge.0, response, |c| matches!(c, Ceremony::SignIn { client: k, .. } if *k == client)).await?;
    // Each repeat may issue a session the first attempt's failure lost: a few, no more (every
    // take counted, identical requests racing each other included).
    crate::services::auth::limits::count_take(auth, &key, at).await?;
    let Ceremony::SignIn { state, .. } = ceremony else { return Err(PasskeyError::InvalidCeremony) };
    let state = unb64(&state).ok_or(PasskeyError::InvalidCeremony)?;
    let handle = authn.response().user_handle();
    let user_id = user_of(handle).ok_or(PasskeyError::Rejected)?;
    let user = auth.stores().users.find(&user_id).await?.ok_or(PasskeyError::Rejected)?;
    let raw_id = authn.raw_id();
    let id = b64(raw_id.encode().unwrap_or_default());
    let stored = user.passkeys.iter().find(|p| p.id == id).ok_or(PasskeyError::Rejected)?;
    let public_key = unb64(&stored.public_key).ok_or(PasskeyError::Rejected)?;
    let old: [u8; 7] = unb64(&stored.state).and_then(|s| s.try_into().ok()).ok_or(PasskeyError::Rejected)?;
    let origins = rp.origins();
    // Verified against the stored state, the signature counter enforced as `counter` says: the
    // authenticator's state after it, encoded, or `None` if the counter is not past the stored one.
    let verify = |counter: SignatureCounterEnforcement| -> Result<Option<String>, PasskeyError> {
        let server =
            DiscoverableAuthenticationServerState::decode(&state).map_err(|_| PasskeyError::InvalidCeremony)?;
        let static_state = StaticState::<StoredKey>::decode(&public_key).map_err(|_| PasskeyError::Rejected)?;
        let dynamic_state = DynamicState::decode(old).map_err(|_| PasskeyError::Rejected)?;
        let mut credential = AuthenticatedCredential::new(raw_id, handle, static_state, dynamic_state)
            .map_err(|_| PasskeyError::Rejected)?;
        let options = AuthenticationVerificationOptions::<&str, &str> {
            allowed_origins: &origins,
            sig_counter_enforcement: counter,
            ..AuthenticationVerificationOptions::default()
        };
        match server.verify(rp.id(), &authn, &mut credential, &options) {
            Ok(_) => Ok(Some(b64(&credential.dynamic_state().encode().unwrap_or_default()))),
            Err(AuthCeremonyErr::SignatureCounter) => Ok(None),
            Err(e) => {
                tracing::warn!(event = "passkey_refused", user_id = %user.id, passkey = %id, reason = %e);
                Err(PasskeyError::Rejected)
            }
        }
    };
    // Conditional on the state read: of two uses of one counter value, one passes.
    let by = ceremony_key(challenge.0);
    let (old, new) = match verify(SignatureCounterEnforcement::Fail)? {
        Some(new) => (stored.state.as_str(), new),
        // The counter is not past the stored one: a cloned authenticator, or this very assertion
        // again after its use landed. Only the latter passes: its first attempt took the
        // ceremony, and the use can pass only as that landed use recognised by the store (the
        // state as this assertion leaves it, written by this ceremony).
        None if repeat => {
            let same = verify(SignatureCounterEnforcement::Ignore)?;
            (NO_STATE, same.ok_or(PasskeyError::Rejected)?)
        }
        None => {
            tracing::warn!(event = "passkey_refused", user_id = %user.id, passkey = %id, reason = "signature counter");
            return Err(PasskeyError::Rejected);
        }
    };
    let change = PasskeyUse { old, new: &new, by: &by };
    if !auth.stores().users.use_passkey(&user.id, &id, change, auth.now()).await? {
        tracing::warn!(event = "passkey_used_concurrently", user_id = %user.id, passkey = %id);
        return Err(PasskeyError::Rejected);
    }
    if user.disabled_at.is_some() {
        return Err(AuthError::AccountDisabled.into());
    }
    tracing::info!(event = "passkey_passed", user_id = %user.id, passkey = %id, ip = ?meta.ip, repeat);
    Ok(Asserted { user, taken: Taken::of(key) })
}

/// What a browser sees of the relying party, for the pages (nothing secret).
pub fn rp_id_of(rp: &RelyingParty) -> String {
    match rp.id() {
        RpId::Domain(d) => d.as_ref().to_owned(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_handle_is_the_user_id_and_back() {
        let id = UserId::generate();
        let h = handle(&id).expect("a uuid");
        assert_eq!(user_of(&h), Some(id));
        assert!(handle(&UserId::from_stored("not-a-uuid".into())).is_none());
    }

    #[test]
    fn names_are_trimmed_printable_and_bounded() {
        assert_eq!(parse_name("  Laptop  ").unwrap(), "Laptop");
        for bad in ["", "   ", "a\nb", "\u{7}", "i\u{200b}Phone", "\u{202e}enohPi", &"x".repeat(MAX_NAME + 1)] {
            assert!(parse_name(bad).is_err(), "{bad:?}");
        }
        assert!(parse_name(&"é".repeat(MAX_NAME)).is_ok());
    }

    #[test]
    fn the_relying_party_is_a_domain() {
        assert!(RelyingParty::new("localhost", &[]).is_ok());
        assert!(RelyingParty::new("example.com", &["https://example.com".into()]).is_ok());
        for bad in ["not a domain", "https://example.com", "example.com:443", "Example.com", ".example.com", "a..b", ""]
        {
            assert!(RelyingParty::new(bad, &[]).is_err(), "{bad}");
        }
    }
}
