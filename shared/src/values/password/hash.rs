//! argon2id hashing off the async executor, one run per core at a time in a buffer its slot keeps,
//! and verification that says when a stored hash should be upgraded.

use super::plain::{NewPassword, PasswordAttempt, PasswordHash};
use argon2::password_hash::phc::PasswordHash as Phc;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use thiserror::Error;

/// argon2id cost parameters. The default is OWASP's: 19 MiB, 2 passes, 1 lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashCost {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for HashCost {
    fn default() -> Self {
        Self {
            memory_kib: Params::DEFAULT_M_COST,
            iterations: Params::DEFAULT_T_COST,
            parallelism: Params::DEFAULT_P_COST,
        }
    }
}

#[derive(Debug, Error)]
pub enum HashError {
    #[error("invalid argon2 parameters: {0}")]
    Params(String),
    #[error("hashing failed: {0}")]
    Hash(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// The password matches. `needs_rehash` is true when the stored hash used other parameters
    /// (or another algorithm) than the live ones: store a fresh hash now that the password is known.
    Valid {
        needs_rehash: bool,
    },
    Invalid,
}

impl Verification {
    pub fn is_valid(self) -> bool {
        matches!(self, Verification::Valid { .. })
    }
}

/// argon2id hashing with the live parameters. Both operations are CPU-bound for tens of
/// milliseconds: call them from `spawn_blocking` (see [`PasswordHasher::hash_blocking`]).
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PasswordHasher(m={}, t={}, p={})", self.params.m_cost(), self.params.t_cost(), self.params.p_cost())
    }
}

impl PasswordHasher {
    pub fn new(cost: HashCost) -> Result<Self, HashError> {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
            .map_err(|e| HashError::Params(e.to_string()))?;
        Ok(Self { params })
    }

    pub fn hash(&self, password: &NewPassword) -> Result<PasswordHash, HashError> {
        self.hash_in(password.expose(), &mut Vec::new())
    }

    /// Hashes with the live parameters and a fresh salt, in `memory` (grown to the parameters'
    /// block count and kept by the caller for the next run).
    fn hash_in(&self, password: &str, memory: &mut Vec<Block>) -> Result<PasswordHash, HashError> {
        let salt = crate::values::secret::random_bytes::<16>();
        let mut output = [0u8; 32];
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone());
        argon2
            .hash_password_into_with_memory(password.as_bytes(), &salt, &mut output, sized(memory, &self.params))
            .map_err(|e| HashError::Hash(e.to_string()))?;
        self.phc(&salt, &output)
    }

    /// The PHC string of `output` with the live parameters and `salt`, checked by parsing it.
    fn phc(&self, salt: &[u8], output: &[u8]) -> Result<PasswordHash, HashError> {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
        let p = &self.params;
        let phc = format!(
            "$argon2id$v=19$m={},t={},p={}${}${}",
            p.m_cost(),
            p.t_cost(),
            p.p_cost(),
            b64.encode(salt),
            b64.encode(output)
        );
        Phc::new(&phc).map_err(|e| HashError::Hash(e.to_string()))?;
        Ok(PasswordHash(phc))
    }

    /// What unknown accounts are verified against, so that they cost the same time as known ones:
    /// a PHC string with the live parameters, a random salt and a random 32-byte output. Verifying
    /// against it runs argon2 exactly as against a real hash (the cost is in the parameters, not
    /// the output), yet making it costs no hashing — nothing at cold start. No password matches
    /// it (finding one is a preimage of argon2).
    pub fn dummy_hash(&self) -> Result<PasswordHash, HashError> {
        // Parsed once, so a malformed string would fail here and not at the first unknown email.
        self.phc(&crate::values::secret::random_bytes::<16>(), &crate::values::secret::random_bytes::<32>())
    }

    /// Checks `attempt` against `stored`. A stored value that is not a PHC string verifies as
    /// invalid (after the same work as a real verification would cost, so it leaks nothing).
    pub fn verify(&self, attempt: &PasswordAttempt, stored: &PasswordHash) -> Verification {
        self.verify_in(attempt, stored, &mut Vec::new())
    }

    /// [`Self::verify`] in `memory` (see [`Self::hash_in`]).
    fn verify_in(&self, attempt: &PasswordAttempt, stored: &PasswordHash, memory: &mut Vec<Block>) -> Verification {
        let Ok(phc) = Phc::new(stored.as_str()) else {
            let _ = self.hash_in(attempt.expose(), memory);
            return Verification::Invalid;
        };
        if matches(attempt.expose().as_bytes(), &phc, memory) {
            Verification::Valid { needs_rehash: self.needs_rehash(&phc) }
        } else {
            Verification::Invalid
        }
    }

    fn needs_rehash(&self, phc: &Phc) -> bool {
        if phc.algorithm.as_str() != "argon2id" || phc.version != Some(0x13) {
            return true;
        }
        match Params::try_from(phc) {
            Ok(p) => {
                p.m_cost() != self.params.m_cost()
                    || p.t_cost() != self.params.t_cost()
                    || p.p_cost() != self.params.p_cost()
            }
            Err(_) => true,
        }
    }

    /// [`Self::hash`] on the blocking pool, off the async executor, one per core at a time and
    /// in that slot's memory ([`HashingSlots`]).
    pub async fn hash_blocking(&self, password: NewPassword) -> Result<PasswordHash, HashError> {
        let me = self.clone();
        let slot = hashing_slots().take().await;
        slot.run(move |memory| me.hash_in(password.expose(), memory)).await.unwrap_or_else(|e| Err(HashError::Hash(e)))
    }

    /// [`Self::verify`] on the blocking pool, off the async executor, one per core at a time and
    /// in that slot's memory ([`HashingSlots`]).
    pub async fn verify_blocking(&self, attempt: PasswordAttempt, stored: PasswordHash) -> Verification {
        let me = self.clone();
        let slot = hashing_slots().take().await;
        slot.run(move |memory| me.verify_in(&attempt, &stored, memory)).await.unwrap_or(Verification::Invalid)
    }
}

/// `memory` with exactly `params`' block count (its allocation kept when it shrinks).
fn sized<'m>(memory: &'m mut Vec<Block>, params: &Params) -> &'m mut [Block] {
    memory.resize(params.block_count(), Block::new());
    memory.as_mut_slice()
}

/// Whether argon2 with `phc`'s algorithm, version, parameters and salt makes `phc`'s output from
/// `password` (compared in constant time), run in `memory`. What argon2's own `verify_password`
/// does, but in memory the caller keeps: every block is written before it is read (RFC 9106
/// §3.4), so a reused buffer gives the same output as a fresh one.
fn matches(password: &[u8], phc: &Phc, memory: &mut Vec<Block>) -> bool {
    let (Some(salt), Some(expected)) = (&phc.salt, &phc.hash) else { return false };
    let Ok(algorithm) = Algorithm::try_from(phc.algorithm.as_str()) else { return false };
    let Ok(version) = phc.version.map_or(Ok(Version::default()), Version::try_from) else { return false };
    let Ok(params) = Params::try_from(phc) else { return false };
    let mut output = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params.clone());
    if argon2.hash_password_into_with_memory(password, salt, &mut output, sized(memory, &params)).is_err() {
        return false;
    }
    argon2::password_hash::phc::Output::new(&output).is_ok_and(|o| o == *expected)
}

/// The argon2 runs a process allows at once, one per core, each with a buffer of blocks it keeps
/// between runs. Each run needs its whole memory cost (19 MiB by default) and more runs than cores
/// finish no sooner. Without the bound, a burst of sign-ins (`gatehouse serve`, or a Lambda
/// process serving many invocations at once) grew memory by 19 MiB per request in flight, which an
/// attacker controls; and buffers freed after each run were kept by the allocator anyway (a
/// process grew by 19 MiB per sign-in, to 140 MiB, in `scripts/load`). Waiting for a slot costs
/// every request the same, known email or not.
pub struct HashingSlots {
    permits: tokio::sync::Semaphore,
    buffers: std::sync::Mutex<Vec<Vec<Block>>>,
}

/// A taken slot: its permit and its buffer, given back when the run ends.
pub struct HashingSlot {
    permit: tokio::sync::SemaphorePermit<'static>,
    buffer: Vec<Block>,
}

impl HashingSlots {
    /// Waits for a free slot.
    pub async fn take(&'static self) -> HashingSlot {
        // The semaphore is never closed.
        let permit = self.permits.acquire().await.unwrap_or_else(|_| unreachable!("never closed"));
        let buffer = self.buffers.lock().unwrap_or_else(|e| e.into_inner()).pop().unwrap_or_default();
        HashingSlot { permit, buffer }
    }

    /// Slots free now.
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }
}

impl HashingSlot {
    /// Runs `work` on the blocking pool with the slot's buffer; the buffer comes back to the pool
    /// after it (a run that panicked loses it, and a later run allocates another).
    async fn run<T: Send + 'static>(
        self,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, String> {
        // The permit is held until the buffer is back: the slot is free only then.
        let Self { permit, mut buffer } = self;
        let (out, buffer) =
            tokio::task::spawn_blocking(move || (work(&mut buffer), buffer)).await.map_err(|e| e.to_string())?;
        hashing_slots().buffers.lock().unwrap_or_else(|e| e.into_inner()).push(buffer);
        drop(permit);
        Ok(out)
    }
}

/// The process's [`HashingSlots`]: one per core.
pub fn hashing_slots() -> &'static HashingSlots {
    static SLOTS: std::sync::LazyLock<HashingSlots> = std::sync::LazyLock::new(|| {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        HashingSlots { permits: tokio::sync::Semaphore::new(cores), buffers: std::sync::Mutex::default() }
    });
    &SLOTS
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_costs_and_matches_nothing() {
        let hasher = PasswordHasher::new(HashCost { memory_kib: 64, iterations: 2, parallelism: 1 }).unwrap();
        let dummy = hasher.dummy_hash().unwrap();
        let real = hasher.hash_in("a password", &mut Vec::new()).unwrap();
        let params = |h: &PasswordHash| h.as_str().split('$').nth(3).map(str::to_owned);
        assert_eq!(params(&dummy), params(&real), "the live parameters: {}", dummy.as_str());
        assert_eq!(dummy.as_str().split('$').count(), real.as_str().split('$').count());
        assert_ne!(hasher.dummy_hash().unwrap(), dummy, "a fresh salt and output each time");
        assert_eq!(hasher.verify(&PasswordAttempt::new("a password".to_owned()), &dummy), Verification::Invalid);
        assert_eq!(hasher.verify(&PasswordAttempt::new(String::new()), &dummy), Verification::Invalid);
    }
    use super::*;
    use crate::values::password::*;

    /// Hashes made in a reused (dirty) buffer are argon2's own: the library verifies ours, ours
    /// verify the library's (every hash stored before the buffers existed), and a buffer last used
    /// for other parameters or another password changes nothing.
    #[test]
    fn hashing_in_a_kept_buffer_agrees_with_argon2_itself() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let cost = HashCost { memory_kib: 256, iterations: 2, parallelism: 1 };
        let hasher = PasswordHasher::new(cost).unwrap();
        let library = Argon2::new(Algorithm::Argon2id, Version::V0x13, hasher.params.clone());
        let mut memory = Vec::new();
        let _ = PasswordHasher::new(HashCost { memory_kib: 512, iterations: 1, parallelism: 1 })
            .unwrap()
            .hash_in("something else", &mut memory);
        let ours = hasher.hash_in("the password", &mut memory).unwrap();
        assert!(library.verify_password(b"the password", &Phc::new(ours.as_str()).unwrap()).is_ok());
        assert!(library.verify_password(b"the passwore", &Phc::new(ours.as_str()).unwrap()).is_err());
        let theirs = PasswordHash(library.hash_password(b"the password").unwrap().to_string());
        for stored in [&ours, &theirs] {
            let right = hasher.verify_in(&PasswordAttempt::new("the password"), stored, &mut memory);
            assert_eq!(right, Verification::Valid { needs_rehash: false }, "{}", stored.as_str());
            let wrong = hasher.verify_in(&PasswordAttempt::new("the passwore"), stored, &mut memory);
            assert_eq!(wrong, Verification::Invalid);
        }
        // Older parameters still verify, with a rehash asked for.
        let old = PasswordHasher::new(HashCost { memory_kib: 128, iterations: 1, parallelism: 1 }).unwrap();
        let stored = old.hash_in("the password", &mut memory).unwrap();
        let verdict = hasher.verify_in(&PasswordAttempt::new("the password"), &stored, &mut memory);
        assert_eq!(verdict, Verification::Valid { needs_rehash: true });
    }

    /// Many sign-ins at once hash one per core at a time: the slots are all taken while they run
    /// (the others wait for one), every answer is right, and every slot comes back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_hashing_waits_for_a_slot_per_core() {
        let hasher = PasswordHasher::new(HashCost { memory_kib: 8 * 1024, iterations: 2, parallelism: 1 }).unwrap();
        let stored = hasher.hash_in("the password", &mut Vec::new()).unwrap();
        let slots = hashing_slots().available();
        let runs: Vec<_> = (0..4 * slots + 4)
            .map(|i| {
                let (h, stored) = (hasher.clone(), stored.clone());
                let attempt = if i % 2 == 0 { "the password" } else { "a wrong one" };
                tokio::spawn(
                    async move { (i, h.verify_blocking(PasswordAttempt::new(attempt.to_owned()), stored).await) },
                )
            })
            .collect();
        let mut saw_all_taken = false;
        while !runs.iter().all(tokio::task::JoinHandle::is_finished) {
            saw_all_taken |= hashing_slots().available() == 0;
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        for run in runs {
            let (i, verdict) = run.await.unwrap();
            assert_eq!(verdict.is_valid(), i % 2 == 0);
        }
        assert!(saw_all_taken, "the runs never held every slot: they do not take one");
        assert_eq!(hashing_slots().available(), slots);
    }

    fn cheap() -> PasswordHasher {
        PasswordHasher::new(HashCost { memory_kib: 1024, iterations: 1, parallelism: 1 }).unwrap()
    }

    fn policy() -> PasswordPolicy {
        PasswordPolicy::new(15, 128, ["correcthorsebatterystaple".to_owned()])
    }

    /// The length rules alone.
    fn lengths_only() -> PasswordPolicy {
        policy().with_min_score(0)
    }

    fn email(s: &str) -> crate::Email {
        crate::Email::parse(s).unwrap()
    }

    #[test]
    fn policy_enforces_length_in_characters_not_bytes() {
        assert_eq!(lengths_only().check("short").unwrap_err(), PasswordError::TooShort(15));
        // 15 two-byte characters: 30 bytes, 15 characters.
        assert!(lengths_only().check(&"é".repeat(15)).is_ok());
        assert_eq!(lengths_only().check(&"a".repeat(129)).unwrap_err(), PasswordError::TooLong(128));
        assert!(lengths_only().check(&"a".repeat(128)).is_ok());
    }

    #[test]
    fn length_is_counted_on_the_normalised_form() {
        // "é" as e + combining acute: 28 scalar values typed, 14 characters once composed.
        assert_eq!(lengths_only().check(&"e\u{301}".repeat(14)).unwrap_err(), PasswordError::TooShort(15));
        // The "ﬃ" ligature is three letters under NFKC: 5 typed, 15 counted.
        assert_eq!(lengths_only().check(&"\u{fb03}".repeat(5)).unwrap().expose(), "ffi".repeat(5));
    }

    #[test]
    fn repetitive_sequential_and_dictionary_passwords_are_guessable() {
        for weak in
            ["aaaaaaaaaaaaaaa", "123456789012345", "passwordpassword", "abcdefghijklmnop", "Summer2024Summer2024"]
        {
            assert_eq!(policy().check(weak).unwrap_err(), PasswordError::Guessable, "{weak}");
        }
        // Repetition is judged after normalisation too.
        assert_eq!(policy().check(&"e\u{301}".repeat(16)).unwrap_err(), PasswordError::Guessable);
    }

    #[test]
    fn random_passphrases_and_strings_of_the_minimum_length_are_accepted() {
        for strong in ["tulip-orbit-mango-42", "Vq8#mT2!xL9@rB4", "kettle-violet-river", "pässwörd-ünïcödé-tëst"]
        {
            assert!(policy().check(strong).is_ok(), "{strong}");
        }
    }

    #[test]
    fn the_users_email_and_the_app_name_are_rejected_outright() {
        let e = email("Ann.Smith@Example.com");
        let ctx =
            PasswordContext { email: Some(&e), name: Some("Ann Smith"), app_name: Some("Northwind Customer Portal") };
        for reused in
            ["ann.smith@example.com", "ANN.SMITH@EXAMPLE.COM", "northwind customer portal", "my-ann.smith-tulip-42"]
        {
            assert_eq!(
                policy().check_with_context(reused, &ctx).unwrap_err(),
                PasswordError::ContainsContext,
                "{reused}"
            );
        }
        // Without the context they would pass.
        assert!(policy().check("my-ann.smith-tulip-42").is_ok());
        // A short local part is only a hint to zxcvbn, not a ban on the letters.
        let short = email("ann@example.com");
        let ctx = PasswordContext { email: Some(&short), ..PasswordContext::default() };
        assert!(policy().check_with_context("tulip-ann-orbit-42", &ctx).is_ok());
    }

    #[test]
    fn the_users_name_counts_against_the_score() {
        let ctx = PasswordContext { name: Some("Zebulon Quartermaine"), ..PasswordContext::default() };
        assert!(policy().check("zebulonquartermaine1").is_ok());
        assert_eq!(policy().check_with_context("zebulonquartermaine1", &ctx).unwrap_err(), PasswordError::Guessable);
        assert_eq!(
            policy().check_with_context("Zebulon Quartermaine 1984", &ctx).unwrap_err(),
            PasswordError::Guessable
        );
    }

    #[test]
    fn min_score_is_configurable_and_capped() {
        assert_eq!(policy().min_score(), DEFAULT_MIN_SCORE);
        assert_eq!(policy().with_min_score(9).min_score(), MAX_SCORE);
        assert!(policy().with_min_score(0).check("passwordpassword").is_ok());
        // The blocklist stays whatever the score.
        assert_eq!(policy().with_min_score(0).check("correcthorsebatterystaple").unwrap_err(), PasswordError::Common);
    }

    #[test]
    fn only_the_first_characters_are_scored() {
        let strong = "Vq8#mT2!xL9@rB4-tulip-orbit-mango-42";
        // A strong start and a weak tail of any length within the maximum.
        assert!(policy().check(&format!("{strong}{}", "a".repeat(128 - strong.len()))).is_ok());
        // A weak start longer than the scored prefix is judged on that start.
        assert_eq!(
            policy().check(&format!("{}{strong}", "a".repeat(SCORED_PREFIX))).unwrap_err(),
            PasswordError::Guessable
        );
    }

    #[test]
    fn nfc_and_nfd_forms_are_one_password() {
        let nfc = "p\u{e4}ssw\u{f6}rd-\u{fc}n\u{ef}c\u{f6}d\u{e9}-t\u{eb}st";
        let nfd = "pa\u{308}sswo\u{308}rd-u\u{308}ni\u{308}co\u{308}de\u{301}-te\u{308}st";
        assert_ne!(nfc, nfd);
        let a = policy().check(nfc).unwrap();
        let b = policy().check(nfd).unwrap();
        assert_eq!(a.expose(), b.expose());
        assert_eq!(PasswordAttempt::new(nfd).expose(), a.expose());
        // And what was stored from one verifies when typed as the other.
        let h = cheap();
        let stored = h.hash(&a).unwrap();
        assert!(h.verify(&PasswordAttempt::new(nfd), &stored).is_valid());
        // Compatibility forms too: full-width letters are the ASCII ones.
        assert_eq!(PasswordAttempt::new("\u{ff50}\u{ff41}\u{ff53}\u{ff53}").expose(), "pass");
    }

    proptest::proptest! {
        // zxcvbn scores every case: fewer than elsewhere unless the long mode asks for more.
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(crate::proptest_cases(64)))]

        #[test]
        fn check_never_panics(raw in "\\PC{0,160}", name in "\\PC{0,40}", app in "\\PC{0,20}") {
            let _ = policy().check(&raw);
            let e = email("ann.smith@example.com");
            let ctx = PasswordContext { email: Some(&e), name: Some(&name), app_name: Some(&app) };
            let _ = policy().check_with_context(&raw, &ctx);
        }

        #[test]
        fn check_never_panics_on_any_string(raw in proptest::prelude::any::<String>()) {
            let _ = policy().check(&raw);
            let _ = PasswordAttempt::new(raw);
        }
    }

    #[test]
    fn policy_rejects_common_passwords_case_insensitively() {
        assert_eq!(policy().check("CorrectHorseBatteryStaple").unwrap_err(), PasswordError::Common);
    }

    #[test]
    fn policy_never_goes_below_nist_floors() {
        let p = PasswordPolicy::new(3, 10, Vec::<String>::new());
        assert_eq!(p.min_len(), 8);
        assert_eq!(p.max_len(), 64);
    }

    #[test]
    fn hash_verifies_and_rejects() {
        let h = cheap();
        let pw = policy().check("a long enough passphrase").unwrap();
        let stored = h.hash(&pw).unwrap();
        assert!(stored.as_str().starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert_eq!(h.verify(&pw.as_attempt(), &stored), Verification::Valid { needs_rehash: false });
        assert_eq!(h.verify(&PasswordAttempt::new("a long enough passphrasE"), &stored), Verification::Invalid);
    }

    #[test]
    fn changed_parameters_ask_for_a_rehash() {
        let old = cheap();
        let pw = policy().check("a long enough passphrase").unwrap();
        let stored = old.hash(&pw).unwrap();
        let new = PasswordHasher::new(HashCost { memory_kib: 2048, iterations: 1, parallelism: 1 }).unwrap();
        assert_eq!(new.verify(&pw.as_attempt(), &stored), Verification::Valid { needs_rehash: true });
    }

    #[test]
    fn garbage_in_the_store_verifies_as_invalid() {
        assert_eq!(
            cheap().verify(&PasswordAttempt::new("x"), &PasswordHash::from_stored("not a hash".into())),
            Verification::Invalid
        );
    }

    #[test]
    fn secrets_do_not_leak_through_debug() {
        let pw = policy().check("a long enough passphrase").unwrap();
        assert!(!format!("{pw:?}").contains("passphrase"));
        let stored = cheap().hash(&pw).unwrap();
        assert!(!format!("{stored:?}").contains("argon2"));
    }
}
