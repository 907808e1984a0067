//! A software WebAuthn authenticator for the tests: an ES256 key that answers
//! `navigator.credentials.create()` and `.get()` options the way a browser's `toJSON()` does
//! (attestation `none`, CTAP2 canonical CBOR written by hand, a DER signature), so the API's
//! passkey routes run end to end without a browser. The browser test uses Chrome's own virtual
//! authenticator instead.

use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).expect("base64url")
}

/// A CBOR byte string's head and bytes.
fn cbor_bytes(out: &mut Vec<u8>, b: &[u8]) {
    match b.len() {
        n if n < 24 => out.push(0x40 | n as u8),
        n if n < 256 => out.extend([0x58, n as u8]),
        n => out.extend([0x59, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(b);
}

fn cbor_text(out: &mut Vec<u8>, s: &str) {
    assert!(s.len() < 24);
    out.push(0x60 | s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

/// A DER `INTEGER` of a big-endian unsigned value.
fn der_int(v: &[u8]) -> Vec<u8> {
    let v = &v[v.iter().position(|b| *b != 0).unwrap_or(v.len() - 1)..];
    let mut out = vec![0x02];
    if v[0] & 0x80 != 0 {
        out.extend([v.len() as u8 + 1, 0]);
    } else {
        out.push(v.len() as u8);
    }
    out.extend_from_slice(v);
    out
}

pub struct SoftAuthenticator {
    key: SigningKey,
    credential_id: Vec<u8>,
    rp_id: String,
    origin: String,
    counter: u32,
    user_handle: Option<String>,
}

impl SoftAuthenticator {
    /// A fresh key for `rp_id`, answering as a page of `origin` would.
    pub fn new(rp_id: &str, origin: &str) -> Self {
        let key = loop {
            if let Ok(k) = SigningKey::from_slice(&gatehouse::values::secret::random_bytes::<32>()) {
                break k;
            }
        };
        Self {
            key,
            credential_id: gatehouse::values::secret::random_bytes::<16>().to_vec(),
            rp_id: rp_id.to_owned(),
            origin: origin.to_owned(),
            counter: 0,
            user_handle: None,
        }
    }

    /// The credential id, base64url (what the API lists the passkey as).
    pub fn credential_id(&self) -> String {
        b64(&self.credential_id)
    }

    /// Answers as another page would (a phishing origin).
    pub fn from_origin(mut self, origin: &str) -> Self {
        self.origin = origin.to_owned();
        self
    }

    fn client_data(&self, kind: &str, challenge: &str) -> Vec<u8> {
        json!({ "type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": false })
            .to_string()
            .into_bytes()
    }

    fn auth_data(&self, flags: u8, attested: Option<&[u8]>) -> Vec<u8> {
        let mut d = Sha256::digest(self.rp_id.as_bytes()).to_vec();
        d.push(flags);
        d.extend(self.counter.to_be_bytes());
        if let Some(a) = attested {
            d.extend(a);
        }
        d
    }

    /// `PublicKeyCredential.toJSON()` of `navigator.credentials.create({publicKey: options})`.
    pub fn register(&mut self, options: &Value) -> Value {
        let challenge = options["challenge"].as_str().expect("a challenge");
        self.user_handle = options["user"]["id"].as_str().map(str::to_owned);
        let point = self.key.verifying_key().to_encoded_point(false);
        let (x, y) = (point.x().expect("x"), point.y().expect("y"));
        // COSE EC2 key, canonical order: 1, 3, -1, -2, -3.
        let mut cose = vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21];
        cbor_bytes(&mut cose, x);
        cose.push(0x22);
        cbor_bytes(&mut cose, y);
        let mut attested = vec![0u8; 16];
        attested.extend((self.credential_id.len() as u16).to_be_bytes());
        attested.extend(&self.credential_id);
        attested.extend(&cose);
        self.counter += 1;
        let auth_data = self.auth_data(0x45, Some(&attested));
        let mut attestation = vec![0xa3];
        cbor_text(&mut attestation, "fmt");
        cbor_text(&mut attestation, "none");
        cbor_text(&mut attestation, "attStmt");
        attestation.push(0xa0);
        cbor_text(&mut attestation, "authData");
        cbor_bytes(&mut attestation, &auth_data);
        let client_data = self.client_data("webauthn.create", challenge);
        self.credential(json!({
            "clientDataJSON": b64(&client_data),
            "attestationObject": b64(&attestation),
            "transports": ["internal"],
        }))
    }

    /// `PublicKeyCredential.toJSON()` of `navigator.credentials.get({publicKey: options})`.
    pub fn assert(&mut self, options: &Value) -> Value {
        let challenge = options["challenge"].as_str().expect("a challenge");
        self.counter += 1;
        let auth_data = self.auth_data(0x05, None);
        let client_data = self.client_data("webauthn.get", challenge);
        let mut signed = auth_data.clone();
        signed.extend(Sha256::digest(&client_data));
        let sig: Signature = self.key.sign(&signed);
        let (r, s) = sig.split_bytes();
        let (r, s) = (der_int(&r), der_int(&s));
        let mut der = vec![0x30, (r.len() + s.len()) as u8];
        der.extend(r);
        der.extend(s);
        self.credential(json!({
            "clientDataJSON": b64(&client_data),
            "authenticatorData": b64(&auth_data),
            "signature": b64(&der),
            "userHandle": self.user_handle.clone().unwrap_or_default(),
        }))
    }

    /// A `PublicKeyCredential.toJSON()` of this credential around `response`.
    fn credential(&self, response: Value) -> Value {
        json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "response": response,
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        })
    }

    /// A copy with the same key, credential and counter: a cloned authenticator.
    pub fn clone_state(&self) -> Self {
        Self {
            key: self.key.clone(),
            credential_id: self.credential_id.clone(),
            rp_id: self.rp_id.clone(),
            origin: self.origin.clone(),
            counter: self.counter,
            user_handle: self.user_handle.clone(),
        }
    }

    /// The user handle the registration options named (base64url), to check it names no one.
    pub fn user_handle(&self) -> Option<Vec<u8>> {
        self.user_handle.as_deref().map(unb64)
    }
}
