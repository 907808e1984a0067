//! The `webhook_endpoints` table (#32): where events are delivered. An endpoint has a URL, a
//! filter of event types, a description, up to two signing secrets (each sealed with the app key,
//! the older one retiring at a set time after a rotation, so both sign meanwhile), and may be
//! disabled. Nothing delivers yet: this is the list and its management (`gatehouse webhook:*`).
//!
//! Secrets change only by [`WebhookEndpointStore::replace_secrets`], conditional on the record's
//! `version`: of racing rotations exactly one lands, the others see `false` and read again. The
//! stores never see a plain secret: sealing and opening are the service's
//! ([`crate::services::webhooks`]), which holds the app key.

use crate::tables::events::EventType;
use crate::values::clock::Timestamp;
use crate::values::error::StoreResult;
use async_trait::async_trait;

/// The most secrets an endpoint holds: the current one and, during a rotation's overlap, the one
/// before it.
pub const MAX_SECRETS: usize = 2;
/// The longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 200;

/// An endpoint's id: `we_` and a UUIDv7 (ids sort by creation).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WebhookEndpointId(String);

impl WebhookEndpointId {
    pub const PREFIX: &'static str = "we_";

    pub fn generate() -> Self {
        Self(format!("{}{}", Self::PREFIX, uuid::Uuid::now_v7()))
    }
    /// `we_` and a canonical (lower-case, hyphenated) UUID; anything else is no id.
    pub fn parse(s: &str) -> Option<Self> {
        let uuid = s.strip_prefix(Self::PREFIX)?;
        uuid::Uuid::parse_str(uuid).ok().filter(|u| u.to_string() == uuid).map(|_| Self(s.to_owned()))
    }
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for WebhookEndpointId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which event types an endpoint receives: `*` (all), exact types (`session.created`) or a
/// family (`user.*`, every type before whose first dot is `user`). Each pattern names at least
/// one type of [`EventType::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFilter(Vec<String>);

impl EventFilter {
    /// Every type.
    pub fn all() -> Self {
        Self(vec!["*".into()])
    }

    /// A comma-separated list (spaces around items ignored, duplicates dropped); an unknown type
    /// or a family with no type is refused, naming it.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut out: Vec<String> = Vec::new();
        for p in list.split(',').map(str::trim) {
            if p.is_empty() {
                return Err("an empty event type in the list".into());
            }
            if !EventType::ALL.iter().any(|t| pattern_matches(p, t.as_str())) {
                return Err(format!("no event type is {p:?} (types: user.registered, … or families: user.*, …)"));
            }
            if !out.iter().any(|q| q == p) {
                out.push(p.to_owned());
            }
        }
        Ok(Self(out))
    }

    /// As stored (checked when written).
    pub fn from_stored(patterns: Vec<String>) -> Self {
        Self(patterns)
    }

    pub fn patterns(&self) -> &[String] {
        &self.0
    }

    /// Whether an event of `event_type` goes to this endpoint.
    pub fn matches(&self, event_type: &str) -> bool {
        self.0.iter().any(|p| pattern_matches(p, event_type))
    }
}

impl std::fmt::Display for EventFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(","))
    }
}

fn pattern_matches(pattern: &str, event_type: &str) -> bool {
    match pattern.strip_suffix(".*") {
        _ if pattern == "*" => true,
        Some(family) => event_type.split_once('.').is_some_and(|(f, _)| f == family),
        None => pattern == event_type,
    }
}

/// Whether `d` can be a description: at most 200 characters, none of them a control character.
pub fn valid_description(d: &str) -> bool {
    d.chars().count() <= MAX_DESCRIPTION_CHARS && !d.chars().any(char::is_control)
}

/// A signing secret as stored: sealed with the app key.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret {
    pub sealed: String,
    pub created_at: Timestamp,
    /// When it stops signing (a rotation's overlap); `None` while it is the current one.
    pub retires_at: Option<Timestamp>,
}

impl SealedSecret {
    pub fn live(&self, now: Timestamp) -> bool {
        self.retires_at.is_none_or(|r| r > now)
    }
}

impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedSecret")
            .field("sealed", &"[REDACTED]")
            .field("created_at", &self.created_at)
            .field("retires_at", &self.retires_at)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    pub id: WebhookEndpointId,
    /// https, or http to this machine (checked by the service before it is stored).
    pub url: String,
    pub events: EventFilter,
    pub description: String,
    pub created_at: Timestamp,
    pub disabled_at: Option<Timestamp>,
    /// Oldest first; at most [`MAX_SECRETS`].
    pub secrets: Vec<SealedSecret>,
    /// Moves by one with every change of `secrets`: the condition of
    /// [`WebhookEndpointStore::replace_secrets`].
    pub version: u64,
}

impl WebhookEndpoint {
    /// Whether an event of `event_type` goes to this endpoint (its filter; enabled or not).
    pub fn matches(&self, event_type: &str) -> bool {
        self.events.matches(event_type)
    }

    /// The secrets that sign at `now`: those not retired, oldest first.
    pub fn live_secrets(&self, now: Timestamp) -> Vec<&SealedSecret> {
        self.secrets.iter().filter(|s| s.live(now)).collect()
    }

    /// The secrets after a rotation at `now` to `new`: the newest live one before it retires at
    /// `now + overlap` (or keeps an earlier retirement), every other is dropped (a rotation during
    /// an overlap drops the oldest), and `new` is current. A zero overlap drops every old one.
    pub fn rotated(&self, new: SealedSecret, now: Timestamp, overlap: chrono::Duration) -> Vec<SealedSecret> {
        let until = now + overlap;
        let mut out: Vec<SealedSecret> = self
            .live_secrets(now)
            .last()
            .filter(|_| until > now)
            .map(|s| SealedSecret { retires_at: Some(s.retires_at.map_or(until, |r| r.min(until))), ..(*s).clone() })
            .into_iter()
            .collect();
        out.push(new);
        out
    }
}

#[async_trait]
pub trait WebhookEndpointStore: Send + Sync {
    /// Conditional create: `Conflict` if the id is taken by another endpoint (the same write
    /// retried by the SDK after it landed is a success).
    async fn create(&self, endpoint: &WebhookEndpoint) -> StoreResult<()>;
    /// The endpoint (consistent read), if it exists.
    async fn get(&self, id: &WebhookEndpointId) -> StoreResult<Option<WebhookEndpoint>>;
    /// Every endpoint, oldest first (a deployment has a few: the whole table, consistently).
    async fn list(&self) -> StoreResult<Vec<WebhookEndpoint>>;
    /// Sets `secrets` and `version = expected + 1` only while the stored version is `expected`:
    /// `false` (nothing changed) when another change came first or the endpoint is gone. A write
    /// whose answer was lost and that the SDK sent again is still `true`.
    async fn replace_secrets(
        &self,
        id: &WebhookEndpointId,
        expected: u64,
        secrets: &[SealedSecret],
    ) -> StoreResult<bool>;
    /// Disables (`Some(at)`) or enables (`None`) the endpoint: `false` when there is none.
    async fn set_disabled(&self, id: &WebhookEndpointId, at: Option<Timestamp>) -> StoreResult<bool>;
    /// Removes the endpoint: `false` when there was none.
    async fn remove(&self, id: &WebhookEndpointId) -> StoreResult<bool>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn secret(tag: &str, at: Timestamp) -> SealedSecret {
        SealedSecret { sealed: tag.into(), created_at: at, retires_at: None }
    }

    fn endpoint(events: &str) -> WebhookEndpoint {
        WebhookEndpoint {
            id: WebhookEndpointId::generate(),
            url: "https://example.com/hooks".into(),
            events: EventFilter::parse(events).unwrap(),
            description: String::new(),
            created_at: chrono::Utc::now(),
            disabled_at: None,
            secrets: vec![secret("sealed-ciphertext", chrono::Utc::now())],
            version: 0,
        }
    }

    #[test]
    fn ids_are_we_and_a_canonical_uuid() {
        let id = WebhookEndpointId::generate();
        assert_eq!(WebhookEndpointId::parse(id.as_str()), Some(id.clone()));
        let uuid = id.as_str().trim_start_matches("we_");
        for bad in [uuid.to_owned(), format!("we_{}", uuid.to_uppercase()), "we_".into(), format!("wx_{uuid}")] {
            assert_eq!(WebhookEndpointId::parse(&bad), None, "{bad}");
        }
    }

    #[test]
    fn a_filter_matches_exact_types_families_and_all() {
        let e = endpoint("user.*, session.created");
        assert!(e.matches("user.registered") && e.matches("user.deleted") && e.matches("session.created"));
        assert!(!e.matches("session.ended") && !e.matches("token.created") && !e.matches("userx.registered"));
        assert!(endpoint("*").matches("passkey.added"));
        assert_eq!(endpoint("user.*,user.*").events.patterns(), ["user.*"]);
        assert_eq!(EventFilter::all().to_string(), "*");
    }

    #[test]
    fn a_filter_naming_no_type_is_refused() {
        for bad in ["user.nope", "nobody.*", "", "user.*,", "user", "*.created", "user.**"] {
            assert!(EventFilter::parse(bad).is_err(), "{bad:?}");
        }
        for t in EventType::ALL {
            assert!(EventFilter::parse(t.as_str()).unwrap().matches(t.as_str()));
        }
    }

    #[test]
    fn descriptions_are_short_and_printable() {
        assert!(valid_description("") && valid_description("Billing's listener ✓"));
        assert!(valid_description(&"é".repeat(200)) && !valid_description(&"é".repeat(201)));
        assert!(!valid_description("a\nb") && !valid_description("\u{7f}"));
    }

    #[test]
    fn a_rotation_keeps_the_old_secret_through_the_overlap_and_a_third_drops_the_oldest() {
        let t0 = chrono::Utc::now();
        let mut e = endpoint("*");
        e.secrets = vec![secret("a", t0)];
        e.secrets = e.rotated(secret("b", t0), t0, Duration::hours(24));
        assert_eq!(e.secrets.iter().map(|s| s.sealed.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(e.secrets[0].retires_at, Some(t0 + Duration::hours(24)));
        assert_eq!(e.live_secrets(t0 + Duration::hours(23)).len(), 2, "both sign during the overlap");
        let later = e.live_secrets(t0 + Duration::hours(24));
        assert_eq!(later.iter().map(|s| s.sealed.as_str()).collect::<Vec<_>>(), ["b"], "a retired");

        let t1 = t0 + Duration::hours(1);
        let third = e.rotated(secret("c", t1), t1, Duration::hours(24));
        assert_eq!(third.iter().map(|s| s.sealed.as_str()).collect::<Vec<_>>(), ["b", "c"], "a dropped");
        assert_eq!(third[0].retires_at, Some(t1 + Duration::hours(24)));

        let none = e.rotated(secret("d", t1), t1, Duration::zero());
        assert_eq!(none.iter().map(|s| s.sealed.as_str()).collect::<Vec<_>>(), ["d"], "no overlap");
    }

    #[test]
    fn a_rotation_never_extends_an_earlier_retirement() {
        let t0 = chrono::Utc::now();
        let mut e = endpoint("*");
        e.secrets = vec![SealedSecret { retires_at: Some(t0 + Duration::hours(1)), ..secret("a", t0) }];
        let out = e.rotated(secret("b", t0), t0, Duration::hours(24));
        assert_eq!(out[0].retires_at, Some(t0 + Duration::hours(1)));
    }

    #[test]
    fn sealed_secrets_do_not_leak_through_debug() {
        let e = endpoint("*");
        assert!(!format!("{e:?}").contains("sealed-ciphertext"));
    }
}
