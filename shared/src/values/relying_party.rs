//! The WebAuthn relying party a deployment is: its RP id and the origins its passkeys answer.

use webauthn_rp::request::{AsciiDomain, RpId};

/// The relying party: the RP id (a domain, `GATEHOUSE_PASSKEY_RP_ID`) and the exact origins
/// responses may come from (`GATEHOUSE_PASSKEY_ORIGINS`).
pub struct RelyingParty {
    rp_id: RpId,
    origins: Vec<String>,
}

impl RelyingParty {
    pub fn new(rp_id: &str, origins: &[String]) -> Result<Self, String> {
        let label = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        if rp_id.len() > 253 || !rp_id.split('.').all(label) {
            return Err(format!("{rp_id}: not a lower-case domain name"));
        }
        let domain = AsciiDomain::try_from(rp_id.to_owned()).map_err(|e| format!("{rp_id}: {e}"))?;
        Ok(Self { rp_id: RpId::Domain(domain), origins: origins.to_vec() })
    }

    /// The exact origins a response may come from.
    pub fn origins(&self) -> Vec<&str> {
        self.origins.iter().map(String::as_str).collect()
    }

    /// The RP id.
    pub fn id(&self) -> &RpId {
        &self.rp_id
    }
}
