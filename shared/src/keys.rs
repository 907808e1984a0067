//! The deployment's secret key (Laravel's `APP_KEY`) and what is derived from it: authenticated
//! page cursors and keyed hashes of email addresses for logs and throttle keys.
//!
//! The key comes from `GATEHOUSE_APP_KEY` (`base64:` + at least 32 bytes, as `php artisan
//! key:generate` prints, or 64+ hex characters). On Lambda it is required — every copy of every
//! function must agree on it — and it costs nothing at cold start (an environment variable, no
//! network call). Locally a random key is made per process when none is set.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of MAC kept in a sealed cursor: 128 bits, far beyond guessing.
const CURSOR_TAG_LEN: usize = 16;

/// A fresh device id: 128 random bits, URL-safe (22 characters).
pub fn new_device_id() -> String {
    URL_SAFE_NO_PAD.encode(crate::values::secret::random_bytes::<16>())
}

/// What a device cookie the app key vouches for names ([`AppKey::device`]). Whether the device
/// is still known is the user read's to say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCookie {
    pub id: String,
    pub user_id: crate::tables::users::UserId,
    pub version: u64,
}

#[derive(Clone, PartialEq, Eq)]
pub struct AppKey(Vec<u8>);
crate::redacted_debug!(AppKey);

impl AppKey {
    /// Parses `base64:<at least 32 bytes>` or at least 64 hex characters.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let bytes = if let Some(b64) = raw.strip_prefix("base64:") {
            STANDARD.decode(b64).map_err(|_| "the part after \"base64:\" is not base64".to_owned())?
        } else {
            hex::decode(raw).map_err(|_| "expected \"base64:<key>\" or hex".to_owned())?
        };
        if bytes.len() < 32 {
            return Err(format!("the key must be at least 32 bytes (got {})", bytes.len()));
        }
        Ok(Self(bytes))
    }

    /// A fresh random key (local runs and tests without a configured key).
    pub fn random() -> Self {
        Self(crate::values::secret::random_bytes::<32>().to_vec())
    }

    /// The key as `GATEHOUSE_APP_KEY` takes it (for `gatehouse key:generate`-style output).
    pub fn to_config_value(&self) -> String {
        format!("base64:{}", STANDARD.encode(&self.0))
    }

    /// HMAC-SHA256 over `purpose`, a separator and `data`: one key, many independent uses.
    pub fn mac(&self, purpose: &str, data: &[u8]) -> [u8; 32] {
        let mut m = HmacSha256::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        m.update(purpose.as_bytes());
        m.update(&[0]);
        m.update(data);
        m.finalize().into_bytes().into()
    }

    /// A keyed, non-reversible tag of a normalised email for logs and throttle keys (16 hex
    /// characters): without the key, a dictionary of addresses does not reveal whose it is.
    pub fn email_tag(&self, email: &crate::Email) -> String {
        hex::encode(&self.mac("email", email.normalized().as_bytes())[..8])
    }

    /// A device cookie (OWASP's device cookie) for device `id` ([`new_device_id`]) of `user` at
    /// `email`, given under credentials version `version`: `<id>.<user id>.<version>.<MAC>`, the
    /// MAC over all four. A login presenting it is counted as that device while the user read
    /// shows the same user and version and still lists the device ([`crate::tables::users::User::devices`]);
    /// a reset, a password change, "log out other devices", a deletion or an eviction voids it.
    pub fn device_cookie(
        &self,
        email: &crate::Email,
        user: &crate::tables::users::UserId,
        version: u64,
        id: &str,
    ) -> String {
        let tag = self.device_tag(email, user.as_str(), version, id);
        format!("{id}.{user}.{version}.{tag}")
    }

    /// What a device cookie names, if this key made it for the account at `email` (only the
    /// exact text it made: no other spelling of the same id, user or version).
    pub fn device(&self, email: &crate::Email, cookie: &str) -> Option<DeviceCookie> {
        let mut parts = cookie.splitn(4, '.');
        let (id, user, version, tag) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let version_n: u64 = version.parse().ok()?;
        let canonical = id.len() == 22
            && crate::tables::users::UserId::parse(user).is_some_and(|u| u.as_str() == user)
            && version_n.to_string() == version;
        (canonical
            && crate::values::secret::constant_time_eq(
                tag.as_bytes(),
                self.device_tag(email, user, version_n, id).as_bytes(),
            ))
        .then(|| DeviceCookie {
            id: id.to_owned(),
            user_id: crate::tables::users::UserId::from_stored(user.to_owned()),
            version: version_n,
        })
    }

    fn device_tag(&self, email: &crate::Email, user: &str, version: u64, id: &str) -> String {
        let data = format!("{}\0{user}\0{version}\0{id}", email.normalized());
        URL_SAFE_NO_PAD.encode(&self.mac("device", data.as_bytes())[..16])
    }

    /// A URL-safe signature of `data` for one `purpose` (signed links): 256 bits.
    pub fn sign(&self, purpose: &str, data: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(purpose, data.as_bytes()))
    }

    /// The opaque id a session is listed under (`GET /sessions`, `DELETE /sessions/{id}`): a MAC
    /// of the owner and the session's key, so it reveals neither the session secret nor its hash,
    /// cannot be made for a session without this key, and names nothing for another user.
    pub fn session_handle(
        &self,
        user: &crate::tables::users::UserId,
        key: &crate::tables::sessions::SessionKey,
    ) -> String {
        self.tag("session-handle", &format!("{user}|{}", key.as_str()))
    }

    /// A short keyed tag of `data` for one `purpose`: 22 URL-safe characters (132 bits) of its
    /// MAC, enough to name a thing without revealing it.
    pub fn tag(&self, purpose: &str, data: &str) -> String {
        let mut sig = self.sign(purpose, data);
        sig.truncate(22);
        sig
    }

    /// Whether `signature` is this key's signature of `data` for `purpose` (constant time).
    pub fn verify(&self, purpose: &str, data: &str, signature: &str) -> bool {
        crate::values::secret::constant_time_eq(signature.as_bytes(), self.sign(purpose, data).as_bytes())
    }

    /// Encrypts `plaintext` for one `purpose` (AES-256-GCM under a key derived from this one by
    /// HMAC: one derivation per call, no fetch at cold start): `v1.<nonce>.<ciphertext>`, base64.
    /// What is stored for secrets the service must read back (the TOTP secret).
    pub fn seal(&self, purpose: &str, plaintext: &[u8]) -> Option<String> {
        use aes_gcm::aead::{Aead, KeyInit, Payload};
        let cipher = aes_gcm::Aes256Gcm::new(&self.mac("seal", purpose.as_bytes()).into());
        let nonce = crate::values::secret::random_bytes::<12>();
        let payload = Payload { msg: plaintext, aad: purpose.as_bytes() };
        // Fails only for inputs of gigabytes.
        let sealed = cipher.encrypt(&nonce.into(), payload).ok()?;
        Some(format!("v1.{}.{}", URL_SAFE_NO_PAD.encode(nonce), URL_SAFE_NO_PAD.encode(sealed)))
    }

    /// What [`AppKey::seal`] sealed for this `purpose` with this key; `None` for anything else
    /// (tampered, another purpose, another key, garbage).
    pub fn open(&self, purpose: &str, sealed: &str) -> Option<Vec<u8>> {
        use aes_gcm::aead::{Aead, KeyInit, Payload};
        let rest = sealed.strip_prefix("v1.")?;
        let (nonce, body) = rest.split_once('.')?;
        let nonce: [u8; 12] = URL_SAFE_NO_PAD.decode(nonce).ok()?.try_into().ok()?;
        let body = URL_SAFE_NO_PAD.decode(body).ok()?;
        let cipher = aes_gcm::Aes256Gcm::new(&self.mac("seal", purpose.as_bytes()).into());
        cipher.decrypt(&nonce.into(), Payload { msg: &body, aad: purpose.as_bytes() }).ok()
    }

    /// Seals a store cursor for one listing `scope` (e.g. the owner's id): the result is what the
    /// API hands out.
    pub fn seal_cursor(&self, scope: &str, cursor: &crate::values::pagination::Cursor) -> String {
        let payload = cursor.as_str();
        let tag = self.cursor_tag(scope, payload);
        format!("{payload}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// The store cursor inside a sealed one, if it was sealed by this key for this `scope`.
    /// Anything else — garbage, tampered, another scope's — is `None`.
    pub fn open_cursor(&self, scope: &str, sealed: &str) -> Option<crate::values::pagination::Cursor> {
        let (payload, tag) = sealed.rsplit_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        let expected = self.cursor_tag(scope, payload);
        crate::values::secret::constant_time_eq(&tag, &expected)
            .then(|| crate::values::pagination::Cursor::from_string(payload.to_owned()))
    }

    fn cursor_tag(&self, scope: &str, payload: &str) -> [u8; CURSOR_TAG_LEN] {
        let mut data = Vec::with_capacity(scope.len() + payload.len() + 1);
        data.extend_from_slice(scope.as_bytes());
        data.push(0);
        data.extend_from_slice(payload.as_bytes());
        let full = self.mac("cursor", &data);
        let mut tag = [0u8; CURSOR_TAG_LEN];
        tag.copy_from_slice(&full[..CURSOR_TAG_LEN]);
        tag
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_purpose() {
        let (k, other) = (AppKey::random(), AppKey::random());
        let sealed = k.seal("two-factor-secret", b"JBSWY3DPEHPK3PXP").unwrap();
        assert!(!sealed.contains("JBSWY3DPEHPK3PXP"));
        assert_ne!(Some(&sealed), k.seal("two-factor-secret", b"JBSWY3DPEHPK3PXP").as_ref(), "a fresh nonce each time");
        assert_eq!(k.open("two-factor-secret", &sealed).as_deref(), Some(&b"JBSWY3DPEHPK3PXP"[..]));
        assert_eq!(k.open("other", &sealed), None);
        assert_eq!(other.open("two-factor-secret", &sealed), None);
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(k.open("two-factor-secret", &String::from_utf8(tampered).unwrap()), None);
        for junk in ["", "v1.", "v1.x.y", "v2.AAAA.AAAA", "garbage"] {
            assert_eq!(k.open("two-factor-secret", junk), None, "{junk:?}");
        }
    }

    use super::*;
    use crate::values::pagination::Cursor;

    #[test]
    fn keys_parse_in_laravel_and_hex_form_and_refuse_short_ones() {
        let k = AppKey::random();
        assert_eq!(AppKey::parse(&k.to_config_value()).unwrap(), k);
        assert!(AppKey::parse(&"ab".repeat(32)).is_ok());
        assert!(AppKey::parse("base64:c2hvcnQ=").is_err());
        assert!(AppKey::parse("not a key").is_err());
        assert!(!format!("{k:?}").contains(&k.to_config_value()[7..20]));
    }

    #[test]
    fn a_sealed_cursor_opens_only_with_its_key_and_scope() {
        let (k, other) = (AppKey::random(), AppKey::random());
        let c = Cursor::encode(&serde_json::json!({"id": "x"}));
        let sealed = k.seal_cursor("users#a", &c);
        assert_eq!(k.open_cursor("users#a", &sealed), Some(c.clone()));
        assert_eq!(k.open_cursor("users#b", &sealed), None);
        assert_eq!(other.open_cursor("users#a", &sealed), None);
        assert_eq!(k.open_cursor("users#a", c.as_str()), None);
        let mut tampered = sealed.clone().into_bytes();
        tampered[2] ^= 1;
        assert_eq!(k.open_cursor("users#a", &String::from_utf8(tampered).unwrap()), None);
    }

    #[test]
    fn a_device_cookie_counts_only_for_its_account_user_version_and_key() {
        let (k, other) = (AppKey::random(), AppKey::random());
        let (ann, bob) =
            (crate::Email::parse("ann@example.com").unwrap(), crate::Email::parse("bob@example.com").unwrap());
        let user = crate::tables::users::UserId::generate();
        let id = new_device_id();
        let c = k.device_cookie(&ann, &user, 3, &id);
        assert_eq!(k.device(&ann, &c), Some(DeviceCookie { id: id.clone(), user_id: user.clone(), version: 3 }));
        assert_eq!(k.device(&bob, &c), None);
        assert_eq!(other.device(&ann, &c), None);
        assert_eq!(k.device(&ann, "x.y"), None);
        // Another user or version under the same MAC: refused.
        let tag = c.rsplit('.').next().unwrap();
        assert_eq!(k.device(&ann, &format!("{id}.{}.3.{tag}", crate::tables::users::UserId::generate())), None);
        assert_eq!(k.device(&ann, &format!("{id}.{user}.4.{tag}")), None);
        assert_eq!(k.device(&ann, &format!("{id}.{user}.03.{tag}")), None);
        assert_eq!(k.device(&ann, &format!("{id}.{}.3.{tag}", user.as_str().to_uppercase())), None);
        assert_ne!(new_device_id(), id);
    }

    #[test]
    fn email_tags_are_keyed() {
        let e = crate::Email::parse("Ann@Example.com").unwrap();
        let (a, b) = (AppKey::random(), AppKey::random());
        assert_eq!(a.email_tag(&e), a.email_tag(&crate::Email::parse("ann@example.com").unwrap()));
        assert_ne!(a.email_tag(&e), b.email_tag(&e));
        assert_eq!(a.email_tag(&e).len(), 16);
    }
}
