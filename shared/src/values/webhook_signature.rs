//! Webhook signatures as the Standard Webhooks specification defines them
//! (<https://www.standardwebhooks.com>): a delivery carries `webhook-id`, `webhook-timestamp` (epoch
//! seconds) and `webhook-signature`, which is `v1,` followed by the base64 of HMAC-SHA256, keyed
//! with the decoded endpoint secret, of `<id>.<timestamp>.<body>`; during a secret's rotation the
//! header holds one such entry per secret, separated by spaces.
//!
//! The sender signs with [`sign`] / [`headers`]; a receiver (and gatehouse's own tests) checks with
//! [`verify`], which refuses missing or malformed headers, a timestamp outside the tolerance
//! either way, and a delivery no `v1` entry signs (compared in constant time); entries of other
//! versions are ignored, as the specification asks.
//!
//! An id is visible ASCII without `.` ([`WebhookId`]), so `<id>.<timestamp>.<body>` splits one
//! way only: no signature of one (id, timestamp) can be read as another's.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;

use crate::values::secret::{constant_time_eq, random_bytes};

type HmacSha256 = Hmac<Sha256>;

/// The header naming the message: the same on every attempt, the receiver's idempotency key.
pub const ID_HEADER: &str = "webhook-id";
/// The header with the attempt's time, epoch seconds.
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// The header with the signatures: `v1,<base64>`, space-separated.
pub const SIGNATURE_HEADER: &str = "webhook-signature";
/// How far a delivery's timestamp may be from the receiver's clock, either way (the
/// specification's and the reference libraries' five minutes).
pub const DEFAULT_TOLERANCE_SECS: u64 = 5 * 60;

/// The prefix of a secret's text.
const SECRET_PREFIX: &str = "whsec_";
/// The fewest bytes a secret may decode to (the specification's lower bound).
pub const MIN_SECRET_BYTES: usize = 24;
/// The most bytes a secret may decode to (the specification's upper bound).
pub const MAX_SECRET_BYTES: usize = 64;
/// The bytes of a secret [`WebhookSecret::generate`] makes.
pub const GENERATED_SECRET_BYTES: usize = 32;
/// The longest id accepted.
pub const MAX_ID_LEN: usize = 255;

/// An endpoint's signing secret: `whsec_` and the base64 of 24 to 64 random bytes, parsed once.
/// Never printed (`Debug` is redacted); [`expose`](Self::expose) gives the text to show once.
#[derive(Clone)]
pub struct WebhookSecret {
    text: String,
    key: Vec<u8>,
}
crate::redacted_debug!(WebhookSecret);

/// Why a secret's text was refused. No variant holds any of the text.
#[derive(Debug, Clone, Copy, Error, PartialEq, Eq)]
pub enum InvalidWebhookSecret {
    #[error("a webhook secret starts with whsec_")]
    MissingPrefix,
    #[error("a webhook secret is whsec_ and standard, padded base64")]
    NotBase64,
    #[error("a webhook secret decodes to {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes, not {0}")]
    Length(usize),
}

impl WebhookSecret {
    /// A new secret of [`GENERATED_SECRET_BYTES`] random bytes from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let key = random_bytes::<GENERATED_SECRET_BYTES>().to_vec();
        Self { text: format!("{SECRET_PREFIX}{}", STANDARD.encode(&key)), key }
    }

    /// `whsec_` and the canonical standard base64 (padded) of 24 to 64 bytes; anything else is
    /// refused.
    pub fn parse(text: &str) -> Result<Self, InvalidWebhookSecret> {
        let encoded = text.strip_prefix(SECRET_PREFIX).ok_or(InvalidWebhookSecret::MissingPrefix)?;
        let key = STANDARD.decode(encoded).map_err(|_| InvalidWebhookSecret::NotBase64)?;
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&key.len()) {
            return Err(InvalidWebhookSecret::Length(key.len()));
        }
        Ok(Self { text: text.to_owned(), key })
    }

    /// The `whsec_…` text, to show once to whoever configures the receiver.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// HMAC-SHA256 of `<id>.<timestamp>.<body>` under this secret.
    fn mac(&self, id: &WebhookId, timestamp_secs: i64, body: &[u8]) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(id.0.as_bytes());
        mac.update(b".");
        mac.update(timestamp_secs.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }
}

/// A message id (`webhook-id`): 1 to 255 visible ASCII characters (`!` to `~`) other than `.`;
/// no space, no control character.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WebhookId(String);

/// Why an id was refused.
#[derive(Debug, Clone, Copy, Error, PartialEq, Eq)]
#[error("a webhook id is 1 to {MAX_ID_LEN} visible ASCII characters other than '.'")]
pub struct InvalidWebhookId;

impl WebhookId {
    pub fn parse(id: &str) -> Result<Self, InvalidWebhookId> {
        let allowed = |b: u8| b.is_ascii_graphic() && b != b'.';
        if id.is_empty() || id.len() > MAX_ID_LEN || !id.bytes().all(allowed) {
            return Err(InvalidWebhookId);
        }
        Ok(Self(id.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for WebhookId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for WebhookId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The `webhook-signature` value: `v1,<base64>` per secret, in the order given, space-separated
/// (two during a rotation's overlap). `secrets` holds at least one; with none the value is empty,
/// which every verifier refuses.
pub fn sign(id: &WebhookId, timestamp_secs: i64, body: &[u8], secrets: &[&WebhookSecret]) -> String {
    debug_assert!(!secrets.is_empty(), "a webhook is signed with at least one secret");
    secrets
        .iter()
        .map(|secret| format!("v1,{}", STANDARD.encode(secret.mac(id, timestamp_secs, body))))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The three headers of a delivery: `webhook-id`, `webhook-timestamp`, `webhook-signature`.
pub fn headers(
    id: &WebhookId,
    timestamp_secs: i64,
    body: &[u8],
    secrets: &[&WebhookSecret],
) -> [(&'static str, String); 3] {
    [
        (ID_HEADER, id.0.clone()),
        (TIMESTAMP_HEADER, timestamp_secs.to_string()),
        (SIGNATURE_HEADER, sign(id, timestamp_secs, body, secrets)),
    ]
}

/// Why a delivery was refused.
#[derive(Debug, Clone, Copy, Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("the {0} header is missing")]
    MissingHeader(&'static str),
    #[error("the {0} header is malformed or repeated")]
    MalformedHeader(&'static str),
    #[error("the timestamp is older than the tolerance")]
    TooOld,
    #[error("the timestamp is further in the future than the tolerance")]
    TooNew,
    #[error("no v1 signature matches")]
    NoMatchingSignature,
}

/// Checks a delivery against `secret`: `headers` as received (names in any case), the raw `body`,
/// the receiver's clock `now_secs`, and how far the timestamp may be from it either way
/// ([`DEFAULT_TOLERANCE_SECS`]). Succeeds when one `v1` entry of `webhook-signature` is the
/// HMAC of this id, timestamp and body; entries of other versions are skipped.
pub fn verify<K: AsRef<str>, V: AsRef<str>>(
    secret: &WebhookSecret,
    headers: &[(K, V)],
    body: &[u8],
    now_secs: i64,
    tolerance_secs: u64,
) -> Result<(), VerifyError> {
    let id = header(headers, ID_HEADER)?;
    let timestamp = header(headers, TIMESTAMP_HEADER)?;
    let signatures = header(headers, SIGNATURE_HEADER)?;

    let id = WebhookId::parse(id).map_err(|_| VerifyError::MalformedHeader(ID_HEADER))?;
    let timestamp_secs = parse_timestamp(timestamp).ok_or(VerifyError::MalformedHeader(TIMESTAMP_HEADER))?;
    let age = i128::from(now_secs) - i128::from(timestamp_secs);
    if age > i128::from(tolerance_secs) {
        return Err(VerifyError::TooOld);
    }
    if -age > i128::from(tolerance_secs) {
        return Err(VerifyError::TooNew);
    }
    if signatures.is_empty() {
        return Err(VerifyError::MalformedHeader(SIGNATURE_HEADER));
    }

    let expected = secret.mac(&id, timestamp_secs, body);
    let mut matched = false;
    for entry in signatures.split(' ') {
        let Some(("v1", encoded)) = entry.split_once(',') else { continue };
        if let Ok(given) = STANDARD.decode(encoded) {
            matched |= constant_time_eq(&given, &expected);
        }
    }
    if matched { Ok(()) } else { Err(VerifyError::NoMatchingSignature) }
}

/// The one value of header `name` (compared without regard to case): missing when absent,
/// malformed when given twice.
fn header<'h, K: AsRef<str>, V: AsRef<str>>(headers: &'h [(K, V)], name: &'static str) -> Result<&'h str, VerifyError> {
    let mut values = headers.iter().filter(|(k, _)| k.as_ref().eq_ignore_ascii_case(name)).map(|(_, v)| v.as_ref());
    let value = values.next().ok_or(VerifyError::MissingHeader(name))?;
    if values.next().is_some() {
        return Err(VerifyError::MalformedHeader(name));
    }
    Ok(value)
}

/// Epoch seconds as decimal digits alone (no sign, no space), within `i64`.
fn parse_timestamp(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > 19 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The Standard Webhooks test vector (the reference libraries' "sign function works").
    const VECTOR_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const VECTOR_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const VECTOR_TIMESTAMP: i64 = 1614265330;
    const VECTOR_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const VECTOR_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    const NOW: i64 = 1_750_000_000;
    const BODY: &[u8] = br#"{"type":"user.deleted","user_id":"0197","seq":42}"#;

    fn id(s: &str) -> WebhookId {
        WebhookId::parse(s).unwrap()
    }

    fn check(secret: &WebhookSecret, headers: &[(&str, String)], body: &[u8], now: i64) -> Result<(), VerifyError> {
        verify(secret, headers, body, now, DEFAULT_TOLERANCE_SECS)
    }

    #[test]
    fn the_specification_s_test_vector_signs_and_verifies() {
        let secret = WebhookSecret::parse(VECTOR_SECRET).unwrap();
        let id = id(VECTOR_ID);
        assert_eq!(sign(&id, VECTOR_TIMESTAMP, VECTOR_BODY, &[&secret]), VECTOR_SIGNATURE);
        let headers = [
            ("webhook-id", VECTOR_ID.to_owned()),
            ("webhook-timestamp", VECTOR_TIMESTAMP.to_string()),
            ("webhook-signature", VECTOR_SIGNATURE.to_owned()),
        ];
        assert_eq!(check(&secret, &headers, VECTOR_BODY, VECTOR_TIMESTAMP), Ok(()));
    }

    #[test]
    fn a_signed_delivery_verifies_with_its_secret() {
        let secret = WebhookSecret::generate();
        let headers = headers(&id("evt_0197a"), NOW, BODY, &[&secret]);
        assert_eq!(headers[0], ("webhook-id", "evt_0197a".to_owned()));
        assert_eq!(headers[1], ("webhook-timestamp", NOW.to_string()));
        assert!(headers[2].1.starts_with("v1,") && !headers[2].1.contains(' '));
        assert_eq!(check(&secret, &headers, BODY, NOW), Ok(()));
    }

    #[test]
    fn one_flipped_body_byte_is_refused() {
        let secret = WebhookSecret::generate();
        let headers = headers(&id("evt_1"), NOW, BODY, &[&secret]);
        for i in 0..BODY.len() {
            let mut forged = BODY.to_vec();
            forged[i] ^= 1;
            assert_eq!(check(&secret, &headers, &forged, NOW), Err(VerifyError::NoMatchingSignature), "byte {i}");
        }
        assert_eq!(check(&secret, &headers, &BODY[..BODY.len() - 1], NOW), Err(VerifyError::NoMatchingSignature));
    }

    #[test]
    fn another_secret_is_refused() {
        let headers = headers(&id("evt_1"), NOW, BODY, &[&WebhookSecret::generate()]);
        assert_eq!(check(&WebhookSecret::generate(), &headers, BODY, NOW), Err(VerifyError::NoMatchingSignature));
    }

    #[test]
    fn another_id_or_timestamp_under_the_same_signature_is_refused() {
        let secret = WebhookSecret::generate();
        let mut headers = headers(&id("evt_1"), NOW, BODY, &[&secret]);
        headers[0].1 = "evt_2".into();
        assert_eq!(check(&secret, &headers, BODY, NOW), Err(VerifyError::NoMatchingSignature));
        headers[0].1 = "evt_1".into();
        headers[1].1 = (NOW - 1).to_string();
        assert_eq!(check(&secret, &headers, BODY, NOW), Err(VerifyError::NoMatchingSignature));
    }

    #[test]
    fn a_timestamp_outside_the_tolerance_either_way_is_refused() {
        let secret = WebhookSecret::generate();
        let tolerance = DEFAULT_TOLERANCE_SECS as i64;
        let at = |ts: i64| headers(&id("evt_1"), ts, BODY, &[&secret]);
        assert_eq!(check(&secret, &at(NOW - tolerance), BODY, NOW), Ok(()));
        assert_eq!(check(&secret, &at(NOW + tolerance), BODY, NOW), Ok(()));
        assert_eq!(check(&secret, &at(NOW - tolerance - 1), BODY, NOW), Err(VerifyError::TooOld));
        assert_eq!(check(&secret, &at(NOW + tolerance + 1), BODY, NOW), Err(VerifyError::TooNew));
        assert_eq!(check(&secret, &at(0), BODY, NOW), Err(VerifyError::TooOld));
        assert_eq!(verify(&secret, &at(NOW - 10), BODY, NOW, 5), Err(VerifyError::TooOld));
    }

    #[test]
    fn a_missing_header_is_refused() {
        let secret = WebhookSecret::generate();
        let all = headers(&id("evt_1"), NOW, BODY, &[&secret]);
        for (i, name) in [ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER].into_iter().enumerate() {
            let rest: Vec<_> = all.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, h)| h.clone()).collect();
            assert_eq!(check(&secret, &rest, BODY, NOW), Err(VerifyError::MissingHeader(name)));
        }
        let none: [(&str, &str); 0] = [];
        assert_eq!(verify(&secret, &none, BODY, NOW, 300), Err(VerifyError::MissingHeader(ID_HEADER)));
    }

    #[test]
    fn malformed_or_repeated_headers_are_refused() {
        let secret = WebhookSecret::generate();
        let good = headers(&id("evt_1"), NOW, BODY, &[&secret]);
        let with = |i: usize, value: &str| {
            let mut h = good.clone();
            h[i].1 = value.to_owned();
            check(&secret, &h, BODY, NOW)
        };
        for bad in
            ["", "-1", "+1750000000", " 1750000000", "1750000000 ", "17500e6", "1750000000.0", "99999999999999999999"]
        {
            assert_eq!(with(1, bad), Err(VerifyError::MalformedHeader(TIMESTAMP_HEADER)), "{bad:?}");
        }
        for bad in ["", "evt 1", "evt.1", "evt\n1", "evt\u{0}1", "évt"] {
            assert_eq!(with(0, bad), Err(VerifyError::MalformedHeader(ID_HEADER)), "{bad:?}");
        }
        assert_eq!(with(2, ""), Err(VerifyError::MalformedHeader(SIGNATURE_HEADER)));
        for bad in ["v1,", "v1", "v1,not base64!", "v1,AAAA", ","] {
            assert_eq!(with(2, bad), Err(VerifyError::NoMatchingSignature), "{bad:?}");
        }
        let mut twice = good.to_vec();
        twice.push(("Webhook-Id", "evt_1".into()));
        assert_eq!(check(&secret, &twice, BODY, NOW), Err(VerifyError::MalformedHeader(ID_HEADER)));
    }

    #[test]
    fn header_names_are_matched_without_regard_to_case() {
        let secret = WebhookSecret::generate();
        let upper: Vec<_> =
            headers(&id("evt_1"), NOW, BODY, &[&secret]).into_iter().map(|(k, v)| (k.to_uppercase(), v)).collect();
        assert_eq!(verify(&secret, &upper, BODY, NOW, DEFAULT_TOLERANCE_SECS), Ok(()));
    }

    #[test]
    fn during_a_rotation_both_secrets_verify_and_no_third() {
        let (old, new) = (WebhookSecret::generate(), WebhookSecret::generate());
        let headers = headers(&id("evt_1"), NOW, BODY, &[&old, &new]);
        let entries: Vec<&str> = headers[2].1.split(' ').collect();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0], sign(&id("evt_1"), NOW, BODY, &[&old]));
        assert_eq!(entries[1], sign(&id("evt_1"), NOW, BODY, &[&new]));
        assert_eq!(check(&old, &headers, BODY, NOW), Ok(()));
        assert_eq!(check(&new, &headers, BODY, NOW), Ok(()));
        assert_eq!(check(&WebhookSecret::generate(), &headers, BODY, NOW), Err(VerifyError::NoMatchingSignature));
    }

    #[test]
    fn entries_of_other_versions_are_ignored() {
        let secret = WebhookSecret::generate();
        let mut headers = headers(&id("evt_1"), NOW, BODY, &[&secret]);
        let mac = headers[2].1.strip_prefix("v1,").unwrap().to_owned();
        // The right MAC under another version's name is no v1 signature.
        headers[2].1 = format!("v2,{mac} v1a,{mac} V1,{mac}");
        assert_eq!(check(&secret, &headers, BODY, NOW), Err(VerifyError::NoMatchingSignature));
        // Around a valid v1 entry, other versions and noise change nothing.
        headers[2].1 = format!("v2,{mac} v1,AAAA  v1,{mac} v1a,xyz");
        assert_eq!(check(&secret, &headers, BODY, NOW), Ok(()));
    }

    #[test]
    fn a_secret_is_whsec_and_24_to_64_bytes_of_padded_base64() {
        let text = |n: usize| format!("whsec_{}", STANDARD.encode(vec![7u8; n]));
        assert!(WebhookSecret::parse(&text(24)).is_ok());
        assert!(WebhookSecret::parse(&text(64)).is_ok());
        assert_eq!(WebhookSecret::parse(&text(23)).unwrap_err(), InvalidWebhookSecret::Length(23));
        assert_eq!(WebhookSecret::parse(&text(65)).unwrap_err(), InvalidWebhookSecret::Length(65));
        assert_eq!(WebhookSecret::parse(&text(32)[6..]).unwrap_err(), InvalidWebhookSecret::MissingPrefix);
        assert_eq!(WebhookSecret::parse("whsec_").unwrap_err(), InvalidWebhookSecret::Length(0));
        for bad in
            ["whsec_not base64", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n"]
        {
            assert_eq!(WebhookSecret::parse(bad).unwrap_err(), InvalidWebhookSecret::NotBase64, "{bad:?}");
        }
        // A 32-byte secret's base64 ends in one '=': without it, the text is refused.
        assert_eq!(WebhookSecret::parse(text(32).trim_end_matches('=')).unwrap_err(), InvalidWebhookSecret::NotBase64);
    }

    #[test]
    fn a_generated_secret_is_32_bytes_shown_once_and_never_printed() {
        let secret = WebhookSecret::generate();
        let text = secret.expose();
        assert!(text.starts_with("whsec_"));
        assert_eq!(STANDARD.decode(&text[6..]).unwrap().len(), GENERATED_SECRET_BYTES);
        let again = WebhookSecret::parse(text).unwrap();
        assert_eq!(again.expose(), text);
        assert_eq!(again.key, secret.key);
        let printed = format!("{secret:?}");
        assert_eq!(printed, "WebhookSecret([REDACTED])");
        assert!(!printed.contains(&text[6..]));
        assert_ne!(WebhookSecret::generate().expose(), text);
    }

    #[test]
    fn an_id_is_1_to_255_visible_ascii_characters_other_than_a_dot() {
        assert!(WebhookId::parse("x").is_ok());
        assert!(WebhookId::parse(&"a".repeat(255)).is_ok());
        assert!(WebhookId::parse("evt_0197a3b2-7c1e-7000-8000-000000000000").is_ok());
        assert!(WebhookId::parse("!\"#$%&'()*+,-/:;<=>?@[\\]^_`{|}~").is_ok());
        for bad in ["", " ", "a b", "a.b", "a\tb", "a\rb", "a\u{7f}", "é", "\u{200b}"] {
            assert_eq!(WebhookId::parse(bad), Err(InvalidWebhookId), "{bad:?}");
        }
        assert_eq!(WebhookId::parse(&"a".repeat(256)), Err(InvalidWebhookId));
    }

    proptest! {
        #[test]
        fn any_body_and_id_round_trip_and_a_changed_byte_is_refused(
            body in proptest::collection::vec(any::<u8>(), 0..2048),
            id_text in "[!-\\-/-~]{1,255}",
            ts in 0i64..4_000_000_000,
            flip in any::<prop::sample::Index>(),
        ) {
            let secret = WebhookSecret::generate();
            let id = WebhookId::parse(&id_text).unwrap();
            let signed = headers(&id, ts, &body, &[&secret]);
            prop_assert_eq!(verify(&secret, &signed, &body, ts, DEFAULT_TOLERANCE_SECS), Ok(()));
            let mut forged = body.clone();
            if forged.is_empty() {
                forged.push(0);
            } else {
                let i = flip.index(forged.len());
                forged[i] ^= 0x80;
            }
            prop_assert_eq!(
                verify(&secret, &signed, &forged, ts, DEFAULT_TOLERANCE_SECS),
                Err(VerifyError::NoMatchingSignature)
            );
        }

        #[test]
        fn an_id_parses_exactly_when_it_has_the_allowed_shape(text in "\\PC{0,300}|[ -~]{0,300}") {
            let allowed = !text.is_empty()
                && text.len() <= MAX_ID_LEN
                && text.bytes().all(|b| (b'!'..=b'~').contains(&b) && b != b'.');
            prop_assert_eq!(WebhookId::parse(&text).is_ok(), allowed);
        }
    }
}
