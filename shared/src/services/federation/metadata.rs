//! What a relying party keeps of each OpenID provider between requests: its discovery document
//! and its keys, with when each was read.

use crate::values::clock::Timestamp;
use jsonwebtoken::jwk::Jwk;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What the discovery document says (the parts used).
#[derive(Debug, Clone)]
pub struct Metadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub userinfo_endpoint: Option<String>,
    pub jwks_uri: String,
    /// RFC 9207: the provider puts `iss` in its authorization responses.
    pub iss_parameter: bool,
}

pub(crate) struct Entry {
    pub(crate) meta: Arc<Metadata>,
    pub(crate) keys: Arc<Vec<Jwk>>,
    /// When the document was read, and the keys (by the injected clock).
    pub(crate) fetched: Timestamp,
    pub(crate) keys_read: Timestamp,
}

/// A provider's document and keys, and when each was read.
pub(crate) type Cached = (Arc<Metadata>, Arc<Vec<Jwk>>, Timestamp, Timestamp);

/// Discovery and keys per provider, in this process.
#[derive(Default)]
pub struct MetadataCache(Mutex<HashMap<String, Entry>>);

impl MetadataCache {
    pub(crate) fn get(&self, id: &str) -> Option<Cached> {
        let map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(id).map(|e| (e.meta.clone(), e.keys.clone(), e.fetched, e.keys_read))
    }

    /// The authorization endpoint a provider's document named, when it has been read in this
    /// process (the hosted pages allow its origin as a form's destination).
    pub fn authorization_endpoint(&self, id: &str) -> Option<String> {
        self.get(id).map(|(meta, ..)| meta.authorization_endpoint.clone())
    }

    pub(crate) fn put(&self, id: &str, entry: Entry) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(id.to_owned(), entry);
    }
}
