//! JSON Web Tokens as gatehouse signs and checks them: compact JWS (RFC 7515) with ES256 alone
//! (ECDSA on P-256 with SHA-256, RFC 7518 §3.4), keys published as JWKs (RFC 7517) named by their
//! RFC 7638 thumbprint. Verification accepts exactly `ES256` from a key of the given set: `none`,
//! HMAC with a public key as the secret, and any other algorithm are refused before a signature
//! is looked at.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use thiserror::Error;

/// The one algorithm signed and accepted.
pub const ES256: &str = "ES256";

/// Why a token was refused. The variants are for logs and tests; every one answers the caller the
/// same way (invalid token).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum JwtError {
    #[error("not a compact JWS")]
    Malformed,
    #[error("algorithm other than ES256")]
    Algorithm,
    #[error("no published key has this kid")]
    UnknownKey,
    #[error("bad signature")]
    Signature,
}

/// A public key as JWKS publishes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub y: String,
    pub kid: String,
    #[serde(rename = "use")]
    pub use_: String,
    pub alg: String,
}

impl Jwk {
    /// The JWK of a P-256 public key, its `kid` the RFC 7638 thumbprint.
    pub fn of(key: &VerifyingKey) -> Self {
        let point = key.to_encoded_point(false);
        let x = URL_SAFE_NO_PAD.encode(point.x().map(|x| x.as_slice()).unwrap_or_default());
        let y = URL_SAFE_NO_PAD.encode(point.y().map(|y| y.as_slice()).unwrap_or_default());
        // RFC 7638: the required members, lexicographic order, no whitespace.
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(<sha2::Sha256 as sha2::Digest>::digest(canonical.as_bytes()));
        Self { kty: "EC".into(), crv: "P-256".into(), x, y, kid, use_: "sig".into(), alg: ES256.into() }
    }

    /// The key, when the JWK is a P-256 public key.
    pub fn verifying_key(&self) -> Option<VerifyingKey> {
        if self.kty != "EC" || self.crv != "P-256" {
            return None;
        }
        let x = URL_SAFE_NO_PAD.decode(&self.x).ok()?;
        let y = URL_SAFE_NO_PAD.decode(&self.y).ok()?;
        if x.len() != 32 || y.len() != 32 {
            return None;
        }
        let mut sec1 = Vec::with_capacity(65);
        sec1.push(4);
        sec1.extend_from_slice(&x);
        sec1.extend_from_slice(&y);
        VerifyingKey::from_sec1_bytes(&sec1).ok()
    }

    /// The key from a DER SubjectPublicKeyInfo (what KMS's `GetPublicKey` returns).
    pub fn from_spki_der(der: &[u8]) -> Option<Self> {
        use p256::pkcs8::DecodePublicKey;
        VerifyingKey::from_public_key_der(der).ok().map(|k| Self::of(&k))
    }
}

/// The header and claims, encoded: what is signed.
pub fn signing_input(kid: &str, typ: &str, claims: &Value) -> String {
    let header = serde_json::json!({ "alg": ES256, "kid": kid, "typ": typ });
    format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()))
}

/// The compact JWS: the signing input and the raw (r ‖ s) signature.
pub fn assemble(signing_input: &str, signature: &[u8; 64]) -> String {
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// A DER ECDSA signature (KMS's `Sign`) as JWS wants it: r ‖ s, 32 bytes each, low-S.
pub fn der_to_raw(der: &[u8]) -> Option<[u8; 64]> {
    let sig = Signature::from_der(der).ok()?;
    let sig = sig.normalize_s().unwrap_or(sig);
    Some(sig.to_bytes().into())
}

/// A verified token: its header's `typ` and its claims (not yet checked: issuer, audience and
/// times are the caller's, who knows what it expects).
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    pub typ: Option<String>,
    pub kid: String,
    pub claims: Map<String, Value>,
}

/// Checks `token`'s form, algorithm and signature against `keys` (by `kid`).
pub fn verify(token: &str, keys: &[Jwk]) -> Result<Verified, JwtError> {
    if token.len() > 8192 {
        return Err(JwtError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(JwtError::Malformed);
    };
    let header: Map<String, Value> = decode_json(h).and_then(|v| v.as_object().cloned()).ok_or(JwtError::Malformed)?;
    if header.get("alg").and_then(Value::as_str) != Some(ES256) {
        return Err(JwtError::Algorithm);
    }
    // Critical extensions this code does not understand make the token unusable (RFC 7515 §4.1.11).
    if header.contains_key("crit") {
        return Err(JwtError::Malformed);
    }
    let kid = header.get("kid").and_then(Value::as_str).ok_or(JwtError::UnknownKey)?;
    let key = keys.iter().find(|k| k.kid == kid).and_then(Jwk::verifying_key).ok_or(JwtError::UnknownKey)?;
    let raw = URL_SAFE_NO_PAD.decode(s).map_err(|_| JwtError::Malformed)?;
    let sig = Signature::from_slice(&raw).map_err(|_| JwtError::Signature)?;
    key.verify(format!("{h}.{c}").as_bytes(), &sig).map_err(|_| JwtError::Signature)?;
    let claims = decode_json(c).and_then(|v| v.as_object().cloned()).ok_or(JwtError::Malformed)?;
    Ok(Verified { typ: header.get("typ").and_then(Value::as_str).map(str::to_owned), kid: kid.to_owned(), claims })
}

fn decode_json(part: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A P-256 private key held in this process (the local run, or a deployment that chose to keep
/// its key in configuration rather than KMS). Never printed.
#[derive(Clone)]
pub struct LocalKey {
    key: SigningKey,
    jwk: Jwk,
}
crate::redacted_debug!(LocalKey);

/// Two keys are the same when their public halves are.
impl PartialEq for LocalKey {
    fn eq(&self, other: &Self) -> bool {
        self.jwk == other.jwk
    }
}
impl Eq for LocalKey {}

impl LocalKey {
    pub fn generate() -> Self {
        loop {
            let bytes = crate::values::secret::random_bytes::<32>();
            // A random 256-bit string is a valid scalar but with probability ~2^-32.
            if let Ok(key) = SigningKey::from_slice(&bytes) {
                return Self::from_key(key);
            }
        }
    }

    /// A key from PKCS#8 PEM (`openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`).
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        use p256::pkcs8::DecodePrivateKey;
        SigningKey::from_pkcs8_pem(pem.trim())
            .map(Self::from_key)
            .map_err(|_| "not a PKCS#8 PEM P-256 private key".to_owned())
    }

    /// The key as PKCS#8 PEM (for `gatehouse oauth:key` to print once).
    pub fn to_pem(&self) -> Option<String> {
        use p256::pkcs8::{EncodePrivateKey, LineEnding};
        self.key.to_pkcs8_pem(LineEnding::LF).ok().map(|p| p.to_string())
    }

    fn from_key(key: SigningKey) -> Self {
        let jwk = Jwk::of(key.verifying_key());
        Self { key, jwk }
    }

    pub fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    pub fn sign(&self, input: &[u8]) -> [u8; 64] {
        let sig: Signature = self.key.sign(input);
        sig.to_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn token(key: &LocalKey, claims: Value) -> String {
        let input = signing_input(&key.jwk().kid, "JWT", &claims);
        assemble(&input, &key.sign(input.as_bytes()))
    }

    #[test]
    fn a_token_verifies_against_its_key_and_no_other() {
        let key = LocalKey::generate();
        let other = LocalKey::generate();
        let t = token(&key, json!({"sub": "u"}));
        let v = verify(&t, &[other.jwk().clone(), key.jwk().clone()]).expect("verifies");
        assert_eq!(v.claims["sub"], "u");
        assert_eq!(v.typ.as_deref(), Some("JWT"));
        assert_eq!(verify(&t, &[other.jwk().clone()]), Err(JwtError::UnknownKey));
        // Another key published under this key's kid: the signature fails.
        let mut impostor = other.jwk().clone();
        impostor.kid = key.jwk().kid.clone();
        assert_eq!(verify(&t, &[impostor]), Err(JwtError::Signature));
    }

    #[test]
    fn alg_none_hs256_and_tampering_are_refused() {
        let key = LocalKey::generate();
        let keys = [key.jwk().clone()];
        let t = token(&key, json!({"sub": "u"}));
        let (_, rest) = t.split_once('.').expect("dot");
        for alg in ["none", "HS256", "ES384", "RS256"] {
            let h = URL_SAFE_NO_PAD.encode(json!({"alg": alg, "kid": key.jwk().kid}).to_string());
            assert_eq!(verify(&format!("{h}.{rest}"), &keys), Err(JwtError::Algorithm), "{alg}");
        }
        let parts: Vec<&str> = t.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(json!({"sub": "admin"}).to_string());
        assert_eq!(verify(&format!("{}.{forged}.{}", parts[0], parts[2]), &keys), Err(JwtError::Signature));
        assert_eq!(verify(&format!("{}.{}.", parts[0], parts[1]), &keys), Err(JwtError::Signature));
        for bad in ["", "a.b", "a.b.c.d", "!!.!!.!!"] {
            assert!(verify(bad, &keys).is_err(), "{bad}");
        }
    }

    #[test]
    fn der_signatures_convert_and_keys_round_trip_through_pem_and_spki() {
        use p256::pkcs8::EncodePublicKey;
        let key = LocalKey::generate();
        let pem = key.to_pem().expect("pem");
        let again = LocalKey::from_pem(&pem).expect("parses");
        assert_eq!(again.jwk(), key.jwk());
        let spki = key.key.verifying_key().to_public_key_der().expect("spki");
        assert_eq!(Jwk::from_spki_der(spki.as_bytes()).as_ref(), Some(key.jwk()));
        let input = signing_input(&key.jwk().kid, "JWT", &json!({}));
        let der: Signature = key.key.sign(input.as_bytes());
        let raw = der_to_raw(der.to_der().as_bytes()).expect("converts");
        assert!(verify(&assemble(&input, &raw), &[key.jwk().clone()]).is_ok());
        assert!(LocalKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----").is_err());
    }
}
