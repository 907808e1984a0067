//! Hostile bytes at every parser (issue #18): arbitrary text with control characters and NULs,
//! what invalid UTF-8 becomes, values up to a mebibyte, JSON nested ten thousand deep, repeated
//! keys, numbers no type can hold, and line breaks where a header would end. What must hold for
//! each parser: it never panics (nor overflows the stack); what it accepts is what it promises
//! (no line break, NUL or control character gets through where none may) and re-serialises to
//! something it accepts again, equal; and what is not of its shape — a valid value with one
//! character changed or slipped in — is refused.
//!
//! Each family runs [`cases`]`(256)` cases, or `GATEHOUSE_PROPTEST_CASES` when set: the long mode
//! runs `GATEHOUSE_PROPTEST_CASES=10000 cargo test --workspace --test suite parsers::`.

use aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request;
use aws_lambda_events::sqs::SqsEvent;
use gatehouse::Email;
use gatehouse::keys::AppKey;
use gatehouse::queue::Outcome;
use gatehouse::routes::RouteAbilities;
use gatehouse::tables::credential_ref::{CredentialKind, CredentialRef};
use gatehouse::tables::cross_app_sessions::HandoffToken;
use gatehouse::tables::jobs::{JobPayload, QueueMessage};
use gatehouse::tables::password_reset_tokens::PlainResetToken;
use gatehouse::tables::personal_access_tokens::{PlainTextToken, TokenId, TokenSecret};
use gatehouse::tables::sessions::SessionId;
use gatehouse::tables::users::{DisplayName, NameError, UserId};
use gatehouse::values::pagination::Cursor;
use gatehouse::values::password::{
    HashCost, PasswordAttempt, PasswordContext, PasswordError, PasswordHash, PasswordHasher, PasswordPolicy,
    Verification,
};
use gatehouse_tests::http::{TestApp, TestCall, authorizer_event};
use lambda_http::http::{self, HeaderValue};
use lambda_http::request::LambdaRequest;
use lambda_http::{Body, Request};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};
use serde_json::{Value, json};
use std::sync::Arc;

/// How many cases each property runs: `GATEHOUSE_PROPTEST_CASES` when set (the long mode), else
/// `default`. `hostile.rs` takes its count from here too.
pub(crate) fn cases(default: u32) -> u32 {
    std::env::var("GATEHOUSE_PROPTEST_CASES").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

/// The configuration of every family here: [`cases`]`(256)`, and no regression files written
/// beside the sources (a failure prints its minimal input).
fn config() -> ProptestConfig {
    ProptestConfig { cases: cases(256), failure_persistence: None, ..ProptestConfig::default() }
}

const TOKEN_PREFIX: &str = "gth_";
/// Line breaks, NUL and the other characters that end a header, a log line or a C string.
const BREAKS: &[&str] = &["\r", "\n", "\r\n", "\0", "\u{85}", "\u{2028}", "\u{2029}"];

// ---------------------------------------------------------------------------------------------
// Inputs

/// Characters that matter to one parser or another: line breaks, NUL and other controls, bidi
/// overrides and invisible ones, and every separator the product splits on.
const NASTY: &str = concat!(
    "\0\r\n\t\u{b}\u{c}\u{1b}\u{7f}\u{85}\u{a0}\u{2028}\u{2029}\u{202e}\u{200b}\u{feff}\u{fffd}\u{10ffff}",
    " ;=,|#@.%\"\\/{}[]:-_+<>&aZ09",
);

/// One of the [`NASTY`] characters.
fn nasty() -> BoxedStrategy<char> {
    prop::sample::select(NASTY.chars().collect::<Vec<_>>()).boxed()
}

/// What invalid UTF-8 becomes when read as text.
fn lossy(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<u8>(), 0..max).prop_map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Arbitrary text: printable (`\PC`), anything but a line feed (`.`, controls included), any
/// scalar values, lossily decoded bytes, and strings made of [`NASTY`] characters.
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => "\\PC{0,120}",
        3 => ".{0,120}",
        2 => any::<String>(),
        2 => lossy(200),
        3 => prop::collection::vec(nasty(), 0..60).prop_map(String::from_iter),
    ]
    .boxed()
}

/// A length up to `2^max_bits` (1 MiB for 20), every order of magnitude about as likely as
/// another, and the maximum itself often.
fn size(max_bits: u32) -> impl Strategy<Value = usize> {
    prop_oneof![
        6 => (0..=max_bits, any::<usize>()).prop_map(|(bits, r)| r % ((1usize << bits) + 1)),
        1 => Just(1usize << max_bits),
    ]
}

/// Text of [`size`] bytes: a piece repeated, with something arbitrary slipped in somewhere.
fn long_text() -> BoxedStrategy<String> {
    long(20, pieces(), text())
}

fn pieces() -> Vec<&'static str> {
    vec!["a", "\0", "\r\n", "é", ";", "=", "; a=b", "%", "\u{202e}", "\u{fffd}", "e\u{301}", "\u{fb03}", "Bearer "]
}

/// [`long_text`] as a header value can be: no control characters.
fn long_header_value() -> BoxedStrategy<String> {
    long(20, vec!["a", " ", "é", ";", "=", "; a=b", "%FF", ",", "Bearer "], "[ -~]{0,40}".boxed())
}

/// [`long_text`] up to 64 KiB, the most a JSON body may hold: what reaches the password policy.
fn long_body_text() -> BoxedStrategy<String> {
    long(16, pieces(), text())
}

fn long(max_bits: u32, pieces: Vec<&'static str>, extra: BoxedStrategy<String>) -> BoxedStrategy<String> {
    (size(max_bits), prop::sample::select(pieces), extra, any::<usize>())
        .prop_map(|(n, piece, extra, at)| {
            let mut s = piece.repeat(n / piece.len() + 1);
            let mut cut = n.min(s.len());
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s.truncate(cut);
            insert_at(&s, at, &extra)
        })
        .boxed()
}

/// `piece` inserted into `s` at the char boundary at or before `at % (len + 1)`.
fn insert_at(s: &str, at: usize, piece: &str) -> String {
    let mut i = at % (s.len() + 1);
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    format!("{}{piece}{}", &s[..i], &s[i..])
}

/// `piece` inserted strictly inside `s` (neither first nor last), where trimming cannot drop it.
fn insert_inside(s: &str, at: usize, piece: &str) -> String {
    assert!(s.chars().count() >= 2, "{s:?} has no inside");
    let boundaries: Vec<usize> = s.char_indices().map(|(i, _)| i).skip(1).collect();
    let i = boundaries[at % boundaries.len()];
    format!("{}{piece}{}", &s[..i], &s[i..])
}

/// `s` with the character at `at % chars` replaced by another one (`with`, or `x`/`y` if that
/// is the same).
fn replace_char(s: &str, at: usize, with: char) -> String {
    let chars: Vec<char> = s.chars().collect();
    let i = at % chars.len();
    let with = if chars[i] != with {
        with
    } else if with != 'x' {
        'x'
    } else {
        'y'
    };
    chars.iter().enumerate().map(|(j, c)| if j == i { with } else { *c }).collect()
}

/// Any JSON value, floats of every magnitude included.
fn any_json() -> BoxedStrategy<Value> {
    json_with(any::<f64>().boxed())
}

/// Any JSON value whose floats serde_json reads back bit for bit: it parses without its
/// `float_roundtrip` feature, so a float with 17 significant digits or a large exponent may come
/// back one unit in the last place off (`-6.293843519855592e189` reads as `…591e189`). Round
/// trips are checked on these; [`any_json`] is for what only must not panic.
fn exact_json() -> BoxedStrategy<Value> {
    json_with((any::<i16>(), 0u32..8).prop_map(|(m, k)| f64::from(m) / f64::from(1u32 << k)).boxed())
}

fn json_with(floats: BoxedStrategy<f64>) -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        floats.prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(text(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

/// `depth` nested arrays or objects (or both, alternating), closed or left open, around `inner`.
fn nested(depth: usize, style: u8, closed: bool, inner: &str) -> String {
    let mut s = String::with_capacity(depth * 6 + inner.len());
    for i in 0..depth {
        match (style, i % 2) {
            (0, _) | (2, 0) => s.push('['),
            _ => s.push_str("{\"a\":"),
        }
    }
    s.push_str(inner);
    if closed {
        for i in (0..depth).rev() {
            match (style, i % 2) {
                (0, _) | (2, 0) => s.push(']'),
                _ => s.push('}'),
            }
        }
    }
    s
}

/// The nesting serde_json refuses (its recursion limit): an array 127 deep is read, 128 is not.
const JSON_DEPTH_LIMIT: usize = 128;

/// Nesting from none to far past [`JSON_DEPTH_LIMIT`], around it often, and 10,000 and 100,000
/// deep.
fn depth() -> impl Strategy<Value = usize> {
    prop_oneof![
        3 => 0usize..300,
        1 => JSON_DEPTH_LIMIT - 4..JSON_DEPTH_LIMIT + 4,
        2 => 300usize..20_000,
        1 => Just(10_000usize),
        1 => Just(100_000usize),
    ]
}

/// Numbers no Rust integer or float holds, as JSON text.
const HUGE: &[&str] = &[
    "1e400",
    "-1e400",
    "1E-400",
    "18446744073709551616",
    "-9223372036854775809",
    "4294967296",
    "-1",
    "-0",
    "0.5",
    "123456789012345678901234567890123456789",
    "1.7976931348623157e309",
];

/// JSON-ish text: arbitrary values, deep nesting (closed or not), huge numbers, objects with
/// repeated keys, truncated documents, and text that is not JSON at all.
fn json_text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => any_json().prop_map(|v| v.to_string()),
        2 => (depth(), 0u8..3, any::<bool>()).prop_map(|(d, style, closed)| nested(d, style, closed, "1")),
        1 => prop::sample::select(HUGE).prop_map(str::to_owned),
        1 => (prop::sample::select(HUGE), prop::sample::select(HUGE))
            .prop_map(|(a, b)| format!(r#"{{"a":{a},"a":{b}}}"#)),
        1 => (any_json(), any::<usize>()).prop_map(|(v, at)| {
            let s = v.to_string();
            let mut cut = at % (s.len() + 1);
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s[..cut].to_owned()
        }),
        1 => text(),
    ]
    .boxed()
}

/// A JSON value with one node (chosen by `at`) replaced by `with`.
fn mutate(mut v: Value, at: usize, with: Value) -> Value {
    fn pointers(v: &Value, here: String, out: &mut Vec<String>) {
        out.push(here.clone());
        match v {
            Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| pointers(x, format!("{here}/{i}"), out)),
            Value::Object(m) => m
                .iter()
                .for_each(|(k, x)| pointers(x, format!("{here}/{}", k.replace('~', "~0").replace('/', "~1")), out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    pointers(&v, String::new(), &mut all);
    let p = &all[at % all.len()];
    if p.is_empty() {
        return with;
    }
    if let Some(node) = v.pointer_mut(p) {
        *node = with;
    }
    v
}

/// The object `v` with `key` (removed from it) written first, its value the JSON text `raw`.
fn with_raw_field(v: &mut Value, key: &str, raw: &str) -> String {
    if let Some(m) = v.as_object_mut() {
        m.remove(key);
    }
    let rest = v.to_string();
    let sep = if rest == "{}" { "" } else { "," };
    format!("{{{}:{raw}{sep}{}", json!(key), &rest[1..])
}

/// `text` (an object's JSON) with `key: value` written again before the first key.
fn with_repeated_key(text: &str, key: &str, value: &Value) -> String {
    format!("{{{}:{value},{}", json!(key), &text[1..])
}

fn email_parts() -> impl Strategy<Value = String> {
    ("[a-zA-Z0-9_+-]{1,20}(\\.[a-zA-Z0-9_+-]{1,10}){0,2}", "[a-zA-Z0-9]{1,20}(-[a-z0-9]{1,5})?", "[a-z]{2,6}")
        .prop_map(|(l, d, t)| format!("{l}@{d}.{t}"))
}

/// Letters whose lower case is longer, a combining sequence, or another letter's: the Turkish
/// dotted I, Ⱥ, Ⱦ, the Kelvin and Ohm signs, capital sharp s, final sigma.
const CASE_TRAPS: &str = "İȺȾKΩẞΣ";

/// Addresses of any script, now and then with a [`CASE_TRAPS`] letter, text slipped in, or
/// near the length limits.
fn email_like() -> BoxedStrategy<String> {
    let trap = prop::sample::select(CASE_TRAPS.chars().collect::<Vec<_>>());
    let word = |max: usize| {
        prop::collection::vec(prop_oneof![4 => "[\\p{L}\\p{N}]", 1 => trap.clone().prop_map(String::from)], 1..max)
    };
    let unicode =
        (word(40), word(20), word(8)).prop_map(|(l, d, t)| format!("{}@{}.{}", l.concat(), d.concat(), t.concat()));
    prop_oneof![
        2 => email_parts(),
        2 => unicode,
        1 => (email_parts(), any::<usize>(), text()).prop_map(|(e, at, t)| insert_at(&e, at, &t)),
        1 => (1usize..70, 1usize..200, prop::sample::select(vec!["a", "Ⱥ", "İ", "K"]))
            .prop_map(|(l, d, c)| format!("{}@{}.com", c.repeat(l), "b".repeat(d))),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------------
// Email and names

proptest! {
    #![proptest_config(config())]

    #[test]
    fn an_accepted_email_holds_no_control_character_and_parses_again_to_itself(
        s in prop_oneof![text(), email_like()]
    ) {
        if let Ok(e) = Email::parse(&s) {
            prop_assert!(!e.as_str().chars().any(|c| c.is_control() || c.is_whitespace()), "{e:?}");
            prop_assert!(e.as_str().len() <= 254);
            prop_assert_eq!(Email::parse(e.as_str()), Ok(e.clone()));
            let wire = serde_json::to_string(&e).map_err(|x| TestCaseError::fail(x.to_string()))?;
            prop_assert_eq!(serde_json::from_str::<Email>(&wire).ok(), Some(e.clone()));
            // The identity (lower case) is an address too, and its own identity.
            let identity = Email::parse(&e.normalized()).map_err(|x| TestCaseError::fail(format!("{x}: {e:?}")))?;
            prop_assert_eq!(identity.normalized(), e.normalized());
        }
    }

    #[test]
    fn a_very_long_email_is_refused_without_a_panic(s in long_text()) {
        let r = Email::parse(&s);
        if s.trim().len() > 254 {
            prop_assert!(r.is_err());
        }
    }

    #[test]
    fn an_email_with_a_line_break_or_nul_inside_is_never_accepted(
        e in email_parts(), at in any::<usize>(), piece in prop::sample::select(BREAKS)
    ) {
        prop_assert!(Email::parse(&e).is_ok(), "{e:?} is a valid address");
        let bad = insert_inside(&e, at, piece);
        prop_assert!(Email::parse(&bad).is_err(), "{bad:?} was accepted");
        // At the ends a NUL is no whitespace either; line breaks there are trimmed away, never kept.
        for edge in [format!("{piece}{e}"), format!("{e}{piece}")] {
            if let Ok(ok) = Email::parse(&edge) {
                prop_assert_eq!(ok.as_str(), e.as_str());
            }
        }
    }

    #[test]
    fn an_email_decoded_from_json_is_checked_like_a_parsed_one(s in text()) {
        let wire = json!(s).to_string();
        prop_assert_eq!(serde_json::from_str::<Email>(&wire).ok(), Email::parse(&s).ok());
    }

    #[test]
    fn an_accepted_display_name_is_trimmed_visible_and_parses_again_to_itself(s in text()) {
        if let Ok(n) = DisplayName::parse(&s) {
            let t = n.as_str();
            prop_assert_eq!(t, t.trim());
            prop_assert!(!t.is_empty() && t.chars().count() <= DisplayName::MAX);
            let invisible = |c: char| {
                c.is_control()
                    || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
                    || matches!(c, '\u{202a}'..='\u{202e}' | '\u{200b}'..='\u{200f}')
            };
            prop_assert!(!t.chars().any(invisible), "{:?}", t);
            prop_assert_eq!(DisplayName::parse(t), Ok(n.clone()));
        }
    }

    #[test]
    fn a_display_name_with_a_line_break_nul_or_bidi_override_inside_is_never_accepted(
        name in "[A-Za-z]{2,10}( [A-Za-z]{1,10}){0,2}", at in any::<usize>(),
        piece in prop::sample::select(vec!["\r", "\n", "\0", "\u{2028}", "\u{202e}", "\u{200b}", "\u{1b}[31m"])
    ) {
        prop_assert!(DisplayName::parse(&name).is_ok());
        prop_assert_eq!(DisplayName::parse(&insert_inside(&name, at, piece)), Err(NameError::Invisible));
    }

    #[test]
    fn a_very_long_display_name_is_refused_without_a_panic(s in long_text()) {
        let r = DisplayName::parse(&s);
        if s.trim().chars().count() > DisplayName::MAX {
            prop_assert!(r.is_err());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Ids, tokens and secrets

fn uuid() -> impl Strategy<Value = uuid::Uuid> {
    any::<u128>().prop_map(uuid::Uuid::from_u128)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_user_id_is_any_uuid_written_any_way_and_reads_back_canonical(u in uuid(), s in text()) {
        let canonical = u.hyphenated().to_string();
        let ways = [u.simple().to_string(), u.urn().to_string(), u.braced().to_string(), canonical.to_uppercase()];
        for written in ways.iter().chain([&canonical]) {
            let id = UserId::parse(written);
            prop_assert_eq!(id.as_ref().map(UserId::as_str), Some(canonical.as_str()), "{}", written);
        }
        if let Some(id) = UserId::parse(&s) {
            let u = uuid::Uuid::parse_str(&s).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(id.as_str(), u.to_string());
            prop_assert_eq!(UserId::parse(id.as_str()), Some(id.clone()));
        }
    }

    #[test]
    fn a_token_id_is_only_the_canonical_uuid(
        u in uuid(), s in text(), at in any::<usize>(), piece in prop::sample::select(BREAKS)
    ) {
        let canonical = u.hyphenated().to_string();
        prop_assert_eq!(TokenId::parse(&canonical).map(|t| t.as_str().to_owned()), Some(canonical.clone()));
        let slipped = insert_at(&canonical, at, piece);
        for other in [u.simple().to_string(), u.braced().to_string(), canonical.to_uppercase(), slipped] {
            if other != canonical {
                prop_assert_eq!(TokenId::parse(&other), None, "{:?}", other);
            }
        }
        if let Some(id) = TokenId::parse(&s) {
            prop_assert_eq!(id.as_str(), s.as_str());
        }
    }

    #[test]
    fn a_personal_access_token_round_trips_and_one_changed_character_is_refused(
        at in any::<usize>(), with in nasty(), piece in prop::sample::select(BREAKS)
    ) {
        let (id, secret) = (TokenId::generate(), TokenSecret::generate(TOKEN_PREFIX));
        let owner = UserId::generate();
        let shown = PlainTextToken { id: id.clone(), owner: Some(owner), secret: secret.clone() }.expose();
        let again =
            PlainTextToken::parse(&shown, TOKEN_PREFIX).ok_or_else(|| TestCaseError::fail("refused its own token"))?;
        prop_assert_eq!(again.expose(), shown.clone());
        // The checksum covers the secret: any change there is refused before the store is asked.
        let changed = format!("{id}|{}", replace_char(secret.expose(), at, with));
        prop_assert!(PlainTextToken::parse(&changed, TOKEN_PREFIX).is_none(), "{changed:?} was accepted");
        // A changed id is refused or names another token (whose stored hash will not match).
        let other_id = format!("{}|{}", replace_char(id.as_str(), at, with), secret.expose());
        prop_assert!(PlainTextToken::parse(&other_id, TOKEN_PREFIX).is_none_or(|t| t.id != id));
        let slipped = insert_at(&shown, at, piece);
        prop_assert!(PlainTextToken::parse(&slipped, TOKEN_PREFIX).is_none(), "{slipped:?} was accepted");
        prop_assert!(PlainTextToken::parse(&shown, "other_").is_none(), "another deployment's prefix");
    }

    #[test]
    fn a_token_parser_never_panics_and_accepts_only_the_token_shape(s in text(), prefix in text()) {
        for p in [TOKEN_PREFIX, prefix.as_str()] {
            if let Some(t) = PlainTextToken::parse(&s, p) {
                prop_assert_eq!(t.expose(), s.clone());
            }
            if let Some(t) = TokenSecret::parse(&s, p) {
                let rest = &t.expose()[p.len()..];
                let url_safe = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
                prop_assert!(rest.len() == 51 && rest.bytes().all(url_safe));
            }
        }
    }

    #[test]
    fn a_reset_token_is_64_hex_characters_read_in_lower_case(
        s in text(), at in any::<usize>(), piece in prop::sample::select(BREAKS)
    ) {
        let t = PlainResetToken::generate();
        prop_assert_eq!(PlainResetToken::parse(t.expose()), Some(t.clone()));
        prop_assert_eq!(PlainResetToken::parse(&t.expose().to_uppercase()), Some(t.clone()));
        prop_assert_eq!(PlainResetToken::parse(&insert_at(t.expose(), at, piece)), None);
        prop_assert_eq!(PlainResetToken::parse(&replace_char(t.expose(), at, 'g')), None);
        if let Some(p) = PlainResetToken::parse(&s) {
            prop_assert!(p.expose().len() == 64 && p.expose().bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
            prop_assert_eq!(p.expose(), s.to_ascii_lowercase());
        }
    }

    #[test]
    fn a_session_id_or_handoff_token_is_43_url_safe_characters_and_nothing_else(
        s in text(), at in any::<usize>(), piece in prop::sample::select(BREAKS), with in nasty()
    ) {
        let id = SessionId::generate();
        prop_assert_eq!(SessionId::parse(id.expose()), Some(id.clone()));
        prop_assert_eq!(SessionId::parse(&insert_at(id.expose(), at, piece)), None);
        let h = HandoffToken::generate();
        prop_assert_eq!(HandoffToken::parse(h.expose()), Some(h.clone()));
        let changed = replace_char(h.expose(), at, with);
        let url_safe = with.is_ascii_alphanumeric() || with == '-' || with == '_';
        prop_assert_eq!(HandoffToken::parse(&changed).is_some(), url_safe);
        let session = SessionId::parse(&s).map(|x| x.expose().to_owned());
        let handoff = HandoffToken::parse(&s).map(|x| x.expose().to_owned());
        for parsed in [session, handoff].into_iter().flatten() {
            prop_assert_eq!(&parsed, &s);
            prop_assert!(gatehouse::values::secret::is_token_256(&parsed));
        }
    }

    #[test]
    fn a_credential_reference_decodes_only_what_it_encodes(s in text(), kind in 0u8..3, key in text()) {
        if let Some(r) = CredentialRef::decode(&s) {
            prop_assert_eq!(r.encode(), s.clone());
        }
        let kind = [CredentialKind::Session, CredentialKind::Token, CredentialKind::Handoff][kind as usize];
        let r = CredentialRef { kind, key: key.clone() };
        prop_assert_eq!(CredentialRef::decode(&r.encode()), (!key.is_empty()).then_some(r));
    }
}

// ---------------------------------------------------------------------------------------------
// Keys, cursors and signed values

fn fixed_key() -> AppKey {
    AppKey::parse(&"ab".repeat(32)).expect("a hex key")
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn an_app_key_parses_only_from_32_bytes_or_more_and_round_trips(
        s in text(), bytes in prop::collection::vec(any::<u8>(), 0..80)
    ) {
        if let Ok(k) = AppKey::parse(&s) {
            prop_assert_eq!(AppKey::parse(&k.to_config_value()), Ok(k));
        }
        let hex = AppKey::parse(&hex::encode(&bytes));
        prop_assert_eq!(hex.is_ok(), bytes.len() >= 32);
        use base64::Engine;
        let b64 = AppKey::parse(&format!("base64:{}", base64::engine::general_purpose::STANDARD.encode(&bytes)));
        prop_assert_eq!(b64.is_ok(), bytes.len() >= 32);
    }

    #[test]
    fn a_page_cursor_decodes_what_was_encoded_and_refuses_the_rest(v in exact_json(), s in text(), raw in json_text()) {
        prop_assert_eq!(Cursor::encode(&v).decode(), Some(v));
        let _ = Cursor::from_string(s).decode();
        use base64::Engine;
        let encoded = Cursor::from_string(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&raw));
        prop_assert_eq!(encoded.decode(), serde_json::from_str::<Value>(&raw).ok());
    }

    #[test]
    fn a_deeply_nested_cursor_is_refused_not_a_stack_overflow(d in depth(), style in 0u8..3, closed in any::<bool>()) {
        use base64::Engine;
        let raw = nested(d, style, closed, "0");
        let c = Cursor::from_string(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&raw));
        if d >= JSON_DEPTH_LIMIT {
            prop_assert_eq!(c.decode(), None);
        } else if closed {
            prop_assert!(c.decode().is_some());
        }
    }

    #[test]
    fn a_sealed_cursor_opens_only_unchanged_for_its_scope(
        v in exact_json(), scope in text(), s in text(), at in any::<usize>(), with in nasty()
    ) {
        let key = fixed_key();
        let sealed = key.seal_cursor(&scope, &Cursor::encode(&v));
        prop_assert_eq!(key.open_cursor(&scope, &sealed).and_then(|c| c.decode()), Some(v));
        let changed = replace_char(&sealed, at, with);
        prop_assert_eq!(key.open_cursor(&scope, &changed), None, "{:?}", changed);
        prop_assert_eq!(key.open_cursor(&format!("{scope}x"), &sealed), None);
        prop_assert_eq!(key.open_cursor(&scope, &s), None);
    }

    #[test]
    fn a_sealed_secret_opens_only_unchanged_for_its_purpose(
        plain in prop::collection::vec(any::<u8>(), 0..64), s in text(), at in any::<usize>(),
        with in nasty()
    ) {
        let key = fixed_key();
        let sealed = key.seal("two-factor-secret", &plain).ok_or_else(|| TestCaseError::fail("sealing failed"))?;
        prop_assert_eq!(key.open("two-factor-secret", &sealed), Some(plain));
        prop_assert_eq!(key.open("two-factor-secret", &replace_char(&sealed, at, with)), None);
        prop_assert_eq!(key.open("another", &sealed), None);
        prop_assert_eq!(key.open("two-factor-secret", &s), None);
    }

    #[test]
    fn a_device_cookie_or_signature_verifies_only_unchanged(
        e in email_parts(), s in text(), at in any::<usize>(), with in nasty()
    ) {
        let key = fixed_key();
        let email = Email::parse(&e).map_err(|x| TestCaseError::fail(x.to_string()))?;
        let user = UserId::generate();
        let cookie = key.device_cookie(&email, &user, 7, &gatehouse::keys::new_device_id());
        prop_assert!(key.device(&email, &cookie).is_some());
        prop_assert_eq!(key.device(&email, &replace_char(&cookie, at, with)), None);
        prop_assert_eq!(key.device(&email, &s), None);
        let sig = key.sign("purpose", &s);
        prop_assert!(key.verify("purpose", &s, &sig));
        prop_assert!(!key.verify("purpose", &s, &replace_char(&sig, at, with)));
        prop_assert!(!key.verify("purpose", &s, &s));
    }

    #[test]
    fn a_pages_csrf_token_is_accepted_only_unchanged_with_its_binding(
        binding in text(), s in text(), at in any::<usize>(), with in nasty()
    ) {
        use gatehouse_pages::csrf;
        let (key, now, age) = (fixed_key(), gatehouse_tests::http::test_time(), chrono::Duration::hours(2));
        let t = csrf::token(&key, &binding, now);
        prop_assert_eq!(csrf::check(&key, Some(&binding), Some(&t), now, age), Ok(()));
        prop_assert!(csrf::check(&key, Some(&binding), Some(&replace_char(&t, at, with)), now, age).is_err());
        let other = format!("{binding}x");
        prop_assert!(csrf::check(&key, Some(&other), Some(&t), now, age).is_err());
        prop_assert!(csrf::check(&key, Some(&binding), Some(&s), now, age).is_err());
        prop_assert!(csrf::check(&key, None, Some(&t), now, age).is_err());
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration-shaped parsers: the route abilities table, client addresses, SQS timestamps,
// second-factor codes

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_route_abilities_spec_keeps_every_entry_it_accepts(
        s in text(),
        entries in prop::collection::vec(
            (prop::sample::select(gatehouse::routes::METHODS), "/x[a-z0-9/{}_.-]{0,30}", "[a-z][a-z0-9:*._-]{0,20}"),
            0..8,
        )
    ) {
        if let Ok(table) = RouteAbilities::parse(&s) {
            for (route, ability) in gatehouse::tables::personal_access_tokens::OWN_ROUTE_ABILITIES {
                prop_assert!(table.for_route(route).iter().any(|a| a == ability), "{route} lost {ability}");
            }
        }
        let spec: Vec<String> = entries.iter().map(|(m, p, a)| format!(" {m} {p} = {a} ")).collect();
        let table = RouteAbilities::parse(&spec.join(",")).map_err(TestCaseError::fail)?;
        for (m, p, a) in &entries {
            prop_assert!(table.for_route(&format!("{m} {p}")).contains(a), "{m} {p}={a}");
        }
    }

    #[test]
    fn a_client_address_keys_as_itself_its_64_or_a_dash(
        s in text(), v4 in any::<[u8; 4]>(), v6 in any::<[u16; 8]>(), low in any::<[u16; 4]>()
    ) {
        let key = gatehouse::throttle::client_key(Some(&s));
        prop_assert!(key == "-" || s.parse::<std::net::IpAddr>().is_ok(), "{s:?} keyed as {key:?}");
        let ip4 = std::net::Ipv4Addr::from(v4).to_string();
        prop_assert_eq!(gatehouse::throttle::client_key(Some(&ip4)), ip4.clone());
        let a = std::net::Ipv6Addr::from(v6);
        let mut other = v6;
        other[4..].copy_from_slice(&low);
        let b = std::net::Ipv6Addr::from(other);
        if a.to_ipv4_mapped().is_none() && b.to_ipv4_mapped().is_none() {
            let key = |ip: std::net::Ipv6Addr| gatehouse::throttle::client_key(Some(&ip.to_string()));
            prop_assert_eq!(key(a), key(b));
        }
        prop_assert_eq!(gatehouse::throttle::client_key(None), "-");
    }

    #[test]
    fn an_sqs_sent_timestamp_reads_epoch_milliseconds_and_nothing_else(
        s in text(), ms in -8_000_000_000_000_000i64..8_000_000_000_000_000
    ) {
        if let Some(t) = gatehouse::tables::jobs::sent_timestamp(Some(&s)) {
            prop_assert_eq!(Some(gatehouse::values::clock::epoch_millis(t)), s.parse::<i64>().ok(), "{:?}", s);
        }
        if let Some(t) = gatehouse::tables::jobs::sent_timestamp(Some(&ms.to_string())) {
            prop_assert_eq!(gatehouse::values::clock::epoch_millis(t), ms);
        }
    }

    #[test]
    fn a_second_factor_code_is_six_digits_or_nothing(
        code in text(), secret in prop::collection::vec(any::<u8>(), 0..40), now in 0u64..4_000_000_000
    ) {
        let trimmed = code.trim();
        let step = gatehouse::services::two_factor::matching_step(&secret, &code, now);
        if trimmed.len() != 6 || !trimmed.bytes().all(|b| b.is_ascii_digit()) {
            prop_assert_eq!(step, None);
        }
        let right = gatehouse::services::two_factor::code_at(&secret, now / 30);
        let found = gatehouse::services::two_factor::matching_step(&secret, &format!(" {right}\n"), now);
        let near = |s: u64| s.abs_diff(now / 30) <= 1 && gatehouse::services::two_factor::code_at(&secret, s) == right;
        prop_assert!(found.is_some_and(near), "{:?}", found);
        prop_assert!(gatehouse::services::two_factor::matching_step(&secret, &insert_inside(&right, 1, "\0"), now).is_none());
    }

    #[test]
    fn a_recovery_code_is_read_whatever_its_case_dashes_and_spaces_and_nothing_else_matches(
        code in "[0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5}", s in text(), at in any::<usize>()
    ) {
        use gatehouse::services::two_factor::recovery_hash;
        let (key, user) = (fixed_key(), UserId::generate());
        let stored = recovery_hash(&key, &user, &code);
        let spaced = format!(" {} ", code.replace('-', " - "));
        for typed in [code.to_uppercase(), code.replace('-', ""), spaced, insert_at(&code, at, "\t")] {
            prop_assert_eq!(&recovery_hash(&key, &user, &typed), &stored, "{:?}", typed);
        }
        for other in [replace_char(&code, at, '0'), insert_at(&code, at, "\0"), s] {
            let reduced = other.chars().filter(|c| !c.is_whitespace() && *c != '-').flat_map(char::to_lowercase);
            let same = reduced.eq(code.chars().filter(|c| *c != '-'));
            prop_assert_eq!(recovery_hash(&key, &user, &other) == stored, same, "{:?}", other);
        }
        prop_assert_ne!(recovery_hash(&key, &UserId::generate(), &code), stored, "another user's");
    }
}

// ---------------------------------------------------------------------------------------------
// Passwords (validation only: nothing here hashes at a real cost)

fn policy() -> PasswordPolicy {
    PasswordPolicy::new(15, 128, ["correcthorsebatterystaple".to_owned()])
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_new_password_is_accepted_only_within_its_length_and_in_the_form_a_login_compares(s in text()) {
        let p = policy().with_min_score(0);
        let attempt = PasswordAttempt::new(s.clone());
        let len = attempt.expose().chars().count();
        match p.check(&s) {
            Ok(pw) => {
                prop_assert!((15..=128).contains(&len));
                prop_assert_eq!(pw.expose(), attempt.expose());
                let again = p.check(pw.expose()).map(|again| again.expose().to_owned());
                prop_assert_eq!(again.ok(), Some(pw.expose().to_owned()));
            }
            Err(PasswordError::TooLong(_)) => prop_assert!(len > 128 && p.is_overlong(attempt.expose())),
            Err(PasswordError::TooShort(_)) => prop_assert!(len < 15),
            Err(_) => {}
        }
    }

    #[test]
    fn the_full_password_policy_never_panics_on_any_text(
        s in text(), name in text(), app in text(), e in email_parts()
    ) {
        let email = Email::parse(&e).map_err(|x| TestCaseError::fail(x.to_string()))?;
        let ctx = PasswordContext { email: Some(&email), name: Some(&name), app_name: Some(&app) };
        if let Ok(pw) = policy().check_with_context(&s, &ctx) {
            let lower = pw.expose().to_lowercase();
            let local = email.normalized().split('@').next().unwrap_or_default().to_owned();
            let reused = lower == email.normalized() || local.chars().count() >= 4 && lower.contains(&local);
            prop_assert!(!reused, "{:?}", lower);
        }
    }

    #[test]
    fn a_very_long_password_is_refused_as_too_long_without_a_panic(s in long_body_text()) {
        // 129 characters at least, whatever NFKC makes of what comes before them.
        let s = format!("{s}{}", "\u{e9}".repeat(129));
        prop_assert_eq!(policy().check(&s).err(), Some(PasswordError::TooLong(128)));
        prop_assert!(policy().is_overlong(PasswordAttempt::new(s).expose()));
    }
}

proptest! {
    // What is stored may be anything (a hand-edited table): verifying against it answers Invalid.
    // This hashes, with the cheapest parameters argon2 takes, so it keeps a smaller count.
    #![proptest_config(ProptestConfig { cases: cases(64), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn a_stored_hash_that_is_not_a_phc_string_verifies_as_invalid(stored in text(), attempt in "\\PC{0,40}") {
        let hasher = PasswordHasher::new(HashCost { memory_kib: 8, iterations: 1, parallelism: 1 })
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let stored = PasswordHash::from_stored(stored);
        prop_assert_eq!(hasher.verify(&PasswordAttempt::new(attempt), &stored), Verification::Invalid);
    }
}

// ---------------------------------------------------------------------------------------------
// Job payloads and the worker

/// A job payload, its data free of floats serde_json would not read back exactly.
fn payload() -> impl Strategy<Value = JobPayload> {
    (
        text(),
        text(),
        text(),
        any::<Option<u32>>(),
        any::<Option<u32>>(),
        prop::collection::vec(any::<u32>(), 0..6),
        any::<Option<u32>>(),
        any::<Option<i64>>(),
        exact_json(),
        prop::option::of(text()),
        any::<u32>(),
        any::<Option<i64>>(),
    )
        .prop_map(|f| JobPayload {
            uuid: f.0,
            display_name: f.1,
            job: f.2,
            max_tries: f.3,
            max_exceptions: f.4,
            backoff: f.5,
            timeout: f.6,
            retry_until: f.7,
            data: f.8,
            batch_id: f.9,
            attempts: f.10,
            available_at: f.11,
        })
}

/// The payload fields `to_body` always writes.
const ALWAYS_WRITTEN: &[&str] =
    &["uuid", "job", "displayName", "maxTries", "maxExceptions", "timeout", "retryUntil", "data"];
/// The payload fields that hold numbers.
const NUMERIC: &[&str] = &["maxTries", "maxExceptions", "timeout", "attempts", "retryUntil", "availableAt", "backoff"];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_job_payload_round_trips_through_its_body(p in payload()) {
        let body = p.to_body();
        prop_assert_eq!(JobPayload::from_body(&body).ok(), Some(p));
    }

    #[test]
    fn a_job_body_of_any_bytes_is_refused_or_read_without_a_panic(raw in json_text(), bytes in lossy(400)) {
        for body in [&raw, &bytes] {
            if let Ok(p) = JobPayload::from_body(body) {
                prop_assert_eq!(JobPayload::from_body(&p.to_body()).ok(), Some(p));
            }
        }
    }

    #[test]
    fn a_job_payload_with_a_repeated_field_is_refused(
        p in payload(),
        field in prop::sample::select(ALWAYS_WRITTEN),
        v in any_json()
    ) {
        let body = with_repeated_key(&p.to_body(), field, &v);
        prop_assert!(JobPayload::from_body(&body).is_err(), "{body}");
    }

    #[test]
    fn a_job_payload_with_a_number_out_of_range_is_refused(
        p in payload(),
        field in prop::sample::select(NUMERIC),
        // "-0" is an integer to some readers and a float to serde_json: either answer would do.
        n in prop::sample::select(HUGE.iter().copied().filter(|n| *n != "-0").collect::<Vec<_>>())
    ) {
        let mut v = serde_json::to_value(&p).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let body = with_raw_field(&mut v, field, n);
        let fits = match field {
            "retryUntil" | "availableAt" => n.parse::<i64>().is_ok(),
            _ => n.parse::<u32>().is_ok(),
        };
        prop_assert_eq!(JobPayload::from_body(&body).is_ok(), fits, "{}", body);
    }

    #[test]
    fn a_deeply_nested_job_payload_is_refused_not_a_stack_overflow(
        p in payload(), d in depth(), style in 0u8..3, closed in any::<bool>()
    ) {
        let mut v = serde_json::to_value(&p).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let body = with_raw_field(&mut v, "data", &nested(d, style, closed, "1"));
        let r = JobPayload::from_body(&body);
        // The payload's own object is one level more.
        if d + 1 >= JSON_DEPTH_LIMIT || !closed && d > 0 {
            prop_assert!(r.is_err());
        } else {
            prop_assert!(r.is_ok(), "{:?}", r.err());
        }
    }
}

/// The job names the worker has handlers for.
const JOBS: &[&str] = &[
    gatehouse::services::email_verification::SEND_VERIFICATION,
    gatehouse::services::account_deletion::SEND_ACCOUNT_DELETED,
    gatehouse::services::account_deletion::FINISH_DELETION,
    gatehouse::services::email_change::SEND_CONFIRMATION,
    gatehouse::services::email_change::SEND_NOTICE,
    gatehouse::services::notices::SEND_NOTICE,
    gatehouse::services::password_broker::SEND_RESET_LINK,
    gatehouse::services::password_broker::SEND_PASSWORD_CHANGED,
    gatehouse::services::revocation::REVOKE_LATER,
    "NoSuchJob",
];

/// A message body: anything, or a payload for a real job whose data and counters are anything.
fn job_body() -> impl Strategy<Value = String> {
    let counter = prop_oneof![Just(0u32), Just(1), Just(u32::MAX - 1), Just(u32::MAX), any::<u32>()];
    let moment =
        prop_oneof![Just(None), Just(Some(i64::MIN)), Just(Some(i64::MAX)), Just(Some(0)), any::<Option<i64>>()];
    let counters = (counter.clone(), counter.clone(), prop::option::of(counter));
    let real = (payload(), prop::sample::select(JOBS), counters, (moment.clone(), moment), prop::option::of(0u32..3))
        .prop_map(|(mut p, job, (attempts, tries, exceptions), (retry_until, available_at), timeout)| {
            p.job = job.to_owned();
            p.attempts = attempts;
            p.max_tries = Some(tries);
            p.max_exceptions = exceptions;
            p.retry_until = retry_until;
            p.available_at = available_at;
            p.timeout = timeout;
            p.to_body()
        });
    prop_oneof![1 => json_text(), 1 => lossy(300), 4 => real]
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime")
}

/// Runs `test` on [`cases`]`(256)` inputs of `strategy`, failing with the minimal input.
fn run<S: Strategy>(strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>) {
    let mut runner =
        TestRunner::new(RunnerConfig { cases: cases(256), failure_persistence: None, ..RunnerConfig::default() });
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{e}");
    }
}

#[test]
fn the_worker_settles_any_message_body_without_a_panic_and_records_what_it_cannot_read() {
    let rt = runtime();
    let t = TestApp::memory(&[]);
    let worker = t.worker(Arc::new(gatehouse::mail::LogMailer::quiet()));
    let n = std::cell::Cell::new(0u64);
    run((job_body(), 1u32..30), |(body, receive_count)| {
        n.set(n.get() + 1);
        let msg = QueueMessage {
            message_id: format!("m{}", n.get()),
            receipt_handle: format!("r{}", n.get()),
            body: body.clone(),
            receive_count,
            sent_at: None,
        };
        let outcome = rt.block_on(worker.process(&msg));
        if JobPayload::from_body(&body).is_err() {
            prop_assert_eq!(&outcome, &Outcome::Failed, "an unreadable body fails for good");
            let failed = rt.block_on(t.env.stores.failed_jobs.find(&format!("undecodable-{}", msg.message_id)));
            prop_assert!(
                failed.ok().flatten().is_some_and(|f| f.payload == body),
                "recorded in failed_jobs as it came"
            );
        }
        Ok(())
    });
}

/// Regression: `attempts` near `u32::MAX` overflowed the worker's attempt count (a panic in
/// debug builds; in release a wrap to a first attempt, running a job that claimed to be spent).
#[test]
fn a_payload_claiming_the_most_attempts_fails_for_good_instead_of_overflowing() {
    let rt = runtime();
    let t = TestApp::memory(&[]);
    let worker = t.worker(Arc::new(gatehouse::mail::LogMailer::quiet()));
    for (i, attempts) in [u32::MAX - 1, u32::MAX].into_iter().enumerate() {
        let mut p = JobPayload::new(gatehouse::services::revocation::REVOKE_LATER, json!({}));
        p.max_tries = Some(3);
        p.attempts = attempts;
        let msg = QueueMessage {
            message_id: format!("spent-{i}"),
            receipt_handle: format!("spent-{i}"),
            body: p.to_body(),
            receive_count: 2,
            sent_at: None,
        };
        assert_eq!(rt.block_on(worker.process(&msg)), Outcome::Failed, "attempts {attempts}");
        let failed = rt.block_on(t.env.stores.failed_jobs.find(&p.uuid)).expect("the store");
        assert!(failed.is_some_and(|f| f.exception.contains("too many times")), "recorded as spent");
    }
}

#[test]
fn an_sqs_event_of_any_json_is_refused_or_handled_reporting_only_its_own_messages() {
    let rt = runtime();
    let t = TestApp::memory(&[]);
    let worker = t.worker(Arc::new(gatehouse::mail::LogMailer::quiet()));
    let some_text = || prop::option::of(text());
    let record = (some_text(), some_text(), prop::option::of(job_body()), some_text(), some_text()).prop_map(
        |(id, handle, body, count, sent)| {
            let mut attributes = serde_json::Map::new();
            for (k, v) in [("ApproximateReceiveCount", count), ("SentTimestamp", sent)] {
                if let Some(v) = v {
                    attributes.insert(k.into(), json!(v));
                }
            }
            json!({
                "messageId": id, "receiptHandle": handle, "body": body, "attributes": attributes,
                "eventSource": "aws:sqs"
            })
        },
    );
    let event = prop_oneof![
        2 => prop::collection::vec(record, 0..4).prop_map(|r| json!({ "Records": r }).to_string()),
        1 => (prop::collection::vec(record_like(), 1..3), any::<usize>(), any_json())
            .prop_map(|(r, at, with)| mutate(json!({ "Records": r }), at, with).to_string()),
        1 => json_text(),
    ];
    run(event, |raw| {
        let Ok(event) = serde_json::from_str::<SqsEvent>(&raw) else { return Ok(()) };
        let ids: Vec<String> = event.records.iter().filter_map(|r| r.message_id.clone()).collect();
        let answer = rt.block_on(gatehouse_job_worker::handle(&worker, event));
        for f in &answer.batch_item_failures {
            prop_assert!(ids.contains(&f.item_identifier), "{} is not a message of the event", f.item_identifier);
        }
        Ok(())
    });
}

fn record_like() -> impl Strategy<Value = Value> {
    job_body().prop_map(|body| {
        json!({ "messageId": "m", "receiptHandle": "r", "body": body,
                "attributes": { "ApproximateReceiveCount": "1", "SentTimestamp": "1795000000000" },
                "messageAttributes": {}, "eventSource": "aws:sqs" })
    })
}

// ---------------------------------------------------------------------------------------------
// HTTP: the bearer header, cookies, Set-Cookie, JSON bodies

/// `name=value` pairs a browser sends: a token name, a value of cookie-octets.
fn cookie_pair() -> impl Strategy<Value = (String, String)> {
    ("[A-Za-z0-9_-]{1,20}", "[!#-+\\--:<-\\[\\]-~]{0,60}")
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_bearer_header_of_any_bytes_yields_a_trimmed_credential_or_nothing(
        bytes in prop::collection::vec(any::<u8>(), 0..300), long in long_text()
    ) {
        for b in [bytes.as_slice(), long.as_bytes()] {
            match gatehouse_http::parse_bearer(Some(b)) {
                Ok(Some(c)) => {
                    let s = std::str::from_utf8(b).map_err(|e| TestCaseError::fail(e.to_string()))?;
                    let (scheme, rest) = s.split_once(' ').ok_or_else(|| TestCaseError::fail("no scheme"))?;
                    prop_assert!(scheme.eq_ignore_ascii_case("bearer"));
                    prop_assert!(!c.is_empty() && c == c.trim() && c == rest.trim());
                }
                Ok(None) => {}
                Err(e) => prop_assert_eq!(e.status.as_u16(), 401),
            }
        }
        prop_assert!(gatehouse_http::parse_bearer(Some(b"Bearer \xff\xfe")).is_err(), "invalid UTF-8 is refused");
    }

    #[test]
    fn a_bearer_credential_round_trips_and_a_token_with_a_break_in_it_is_never_accepted(
        scheme in "[bB][eE][aA][rR][eE][rR]", at in any::<usize>(), piece in prop::sample::select(BREAKS)
    ) {
        let owner = Some(UserId::generate());
        let token = PlainTextToken { id: TokenId::generate(), owner, secret: TokenSecret::generate(TOKEN_PREFIX) }.expose();
        let header = format!("{scheme}  {token} ");
        let read = gatehouse_http::parse_bearer(Some(header.as_bytes())).map_err(|e| TestCaseError::fail(e.message))?;
        prop_assert_eq!(read.as_deref(), Some(token.as_str()));
        let broken = insert_inside(&token, at, piece);
        if let Ok(Some(c)) = gatehouse_http::parse_bearer(Some(format!("{scheme} {broken}").as_bytes())) {
            prop_assert!(PlainTextToken::parse(&c, TOKEN_PREFIX).is_none(), "{c:?} was accepted");
        }
    }

    #[test]
    fn a_cookie_is_read_from_any_header_text_without_a_panic(
        values in prop::collection::vec(text(), 0..4), long in long_text(),
        name in prop_oneof![Just("__Host-gatehouse_session".to_owned()), text()]
    ) {
        let mut all = values;
        all.push(long);
        if let Some(v) = gatehouse_http::find_cookie(all.iter().map(String::as_str), &name) {
            prop_assert!(!v.contains(';'), "{v:?} spans two cookies");
            prop_assert_eq!(v.trim(), v.as_str());
        }
    }

    #[test]
    fn a_cookie_header_round_trips_and_a_repeated_name_is_no_cookie(
        pairs in prop::collection::vec(cookie_pair(), 1..8), pick in any::<usize>(), split in any::<bool>(),
        toss in any::<bool>()
    ) {
        let mut pairs = pairs;
        let name = pairs[pick % pairs.len()].0.clone();
        if toss {
            // A sibling subdomain's cookie of the same name, sent beside ours (cookie tossing).
            pairs.push((name.clone(), "planted".to_owned()));
        }
        let joined: Vec<String> = pairs.iter().map(|(n, v)| format!("{n}={v}")).collect();
        let headers: Vec<String> = if split { joined.clone() } else { vec![joined.join("; ")] };
        let name = &name;
        let mut same = pairs.iter().filter(|(n, _)| n == name).map(|(_, v)| v.clone());
        let only = match (same.next(), same.next()) { (Some(v), None) => Some(v), _ => None };
        prop_assert!(!toss || only.is_none());
        prop_assert_eq!(gatehouse_http::find_cookie(headers.iter().map(String::as_str), name), only);
    }

    #[test]
    fn a_session_cookie_with_a_line_break_or_nul_is_never_a_session(
        at in any::<usize>(), piece in prop::sample::select(BREAKS)
    ) {
        let id = SessionId::generate();
        let cookie = format!("__Host-gatehouse_session={}", insert_inside(id.expose(), at, piece));
        // The authorizer reads API Gateway's `cookies` array, which no header parser has vetted.
        let read = gatehouse_http::find_cookie([cookie.as_str()], "__Host-gatehouse_session");
        prop_assert!(read.as_deref().and_then(SessionId::parse).is_none(), "{read:?}");
        prop_assert!(HeaderValue::from_str(&cookie).is_err() || !piece.contains(['\r', '\n', '\0']));
    }

    #[test]
    fn a_set_cookie_header_never_carries_a_line_break_or_an_attribute_from_its_value(
        name in prop_oneof!["[A-Za-z0-9_-]{1,20}", text()], value in prop_oneof![text(), long_text()],
        domain in prop::option::of(text()), max_age in any::<Option<i64>>()
    ) {
        let h = gatehouse_http::set_cookie(&name, &value, "Lax", domain.as_deref(), max_age);
        let text = h.to_str().map_err(|e| TestCaseError::fail(format!("{e}: {h:?}")))?;
        prop_assert!(!text.contains(['\r', '\n', '\0']));
        let attributes: Vec<&str> = text.split(';').skip(1).map(str::trim).collect();
        const EPOCH: &str = "Expires=Thu, 01 Jan 1970 00:00:00 GMT";
        const OURS: &[&str] = &["Path=/", "HttpOnly", "Secure", "SameSite=Lax", "Max-Age=", EPOCH, "Domain="];
        let allowed = |a: &str| OURS.iter().any(|p| a == *p || p.ends_with('=') && a.starts_with(p));
        prop_assert!(attributes.iter().all(|a| allowed(a)), "{text:?}");
        prop_assert!(attributes.iter().filter(|a| a.starts_with("Domain=")).count() <= 1, "{text:?}");
        prop_assert!(attributes.iter().filter(|a| a.starts_with("Max-Age=")).count() <= 1, "{text:?}");
    }

    #[test]
    fn a_set_cookie_value_reads_back_from_the_cookie_header_a_browser_returns(
        pair in cookie_pair(), max_age in any::<Option<i64>>()
    ) {
        let (name, value) = pair;
        let h = gatehouse_http::set_cookie(&name, &value, "Strict", None, max_age);
        let text = h.to_str().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let sent_back = text.split(';').next().unwrap_or_default();
        prop_assert_eq!(gatehouse_http::find_cookie([sent_back], &name), Some(value));
    }
}

/// Regression: a `;` in what `set_cookie` was given added attributes of its own.
#[test]
fn a_set_cookie_value_or_domain_with_a_semicolon_adds_no_attribute() {
    for (value, domain) in
        [("x; Domain=evil.example", None), ("x", Some("example.com; SameSite=None")), ("x\r\nSet-Cookie: a=b", None)]
    {
        let h = gatehouse_http::set_cookie("__Host-gatehouse_session", value, "Lax", domain, None);
        assert_eq!(h, "invalid=; Max-Age=0", "{value:?} {domain:?}");
    }
    let ok = gatehouse_http::set_cookie("__Secure-s", "abc.DEF-_~", "Lax", Some("example.com"), Some(60));
    assert_eq!(ok, "__Secure-s=abc.DEF-_~; Path=/; HttpOnly; Secure; SameSite=Lax; Domain=example.com; Max-Age=60");
}

/// Content types the API takes (the first three) and one it refuses.
const CONTENT_TYPES: &[&str] =
    &["application/json", "application/problem+json", "application/json; charset=latin1", "text/plain"];

fn request(content_type: Option<&str>, body: Body) -> Result<Request, TestCaseError> {
    let mut b = http::Request::builder().method("POST").uri("/login");
    if let Some(ct) = content_type {
        b = b.header("content-type", ct);
    }
    b.body(body).map_err(|e| TestCaseError::fail(e.to_string()))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_json_body_of_any_bytes_is_an_object_or_a_4xx(
        raw in json_text(), bytes in prop::collection::vec(any::<u8>(), 0..300), long in long_text(),
        ct in prop::sample::select(CONTENT_TYPES)
    ) {
        for body in [Body::Text(raw.clone()), Body::Binary(bytes.clone()), Body::Text(long.clone()), Body::Empty] {
            let size = match &body { Body::Text(t) => t.len(), Body::Binary(b) => b.len(), _ => 0 };
            let parsed = match &body {
                Body::Text(t) => serde_json::from_str::<Value>(t).ok(),
                Body::Binary(b) => serde_json::from_slice::<Value>(b).ok(),
                _ => None,
            };
            match gatehouse_http::json_object(&request(Some(ct), body)?) {
                Ok(m) => {
                    prop_assert!(size <= gatehouse_http::MAX_BODY);
                    prop_assert_eq!(Some(Value::Object(m)), parsed);
                }
                Err(e) => {
                    prop_assert!(matches!(e.status.as_u16(), 413 | 415 | 422), "{}", e.status);
                    if size > gatehouse_http::MAX_BODY && ct.starts_with("application/json") {
                        prop_assert_eq!(e.status.as_u16(), 413);
                    }
                }
            }
        }
    }

    #[test]
    fn a_deeply_nested_body_is_a_422_not_a_stack_overflow(d in depth(), style in 0u8..3, closed in any::<bool>()) {
        let raw = format!(r#"{{"email":{}}}"#, nested(d, style, closed, "1"));
        let r = gatehouse_http::json_object(&request(Some("application/json"), Body::Text(raw.clone()))?);
        if raw.len() > gatehouse_http::MAX_BODY {
            prop_assert_eq!(r.err().map(|e| e.status.as_u16()), Some(413));
        } else if d + 1 >= JSON_DEPTH_LIMIT || !closed && d > 0 {
            prop_assert_eq!(r.err().map(|e| e.status.as_u16()), Some(422));
        } else {
            prop_assert!(r.is_ok());
        }
    }

    #[test]
    fn a_body_with_a_repeated_field_is_read_as_its_last_value(
        fields in prop::collection::btree_map("[a-z_]{1,12}", any_json(), 1..6), pick in any::<usize>(),
        again in exact_json()
    ) {
        let obj = Value::Object(fields.clone().into_iter().collect());
        let name = fields.keys().nth(pick % fields.len()).cloned().unwrap_or_default();
        let raw = format!("{},{}:{again}}}", &obj.to_string()[..obj.to_string().len() - 1], json!(name));
        let req = request(Some("application/json"), Body::Text(raw))?;
        let m = gatehouse_http::json_object(&req).map_err(|e| TestCaseError::fail(e.message))?;
        prop_assert_eq!(m.len(), fields.len());
        prop_assert_eq!(m.get(&name), Some(&again));
    }
}

// ---------------------------------------------------------------------------------------------
// API Gateway events: the HTTP functions' and the authorizer's

/// The headers the product reads.
const READ_HEADERS: &[&str] =
    &["authorization", "cookie", "content-type", "origin", "sec-fetch-site", "user-agent", "x-forwarded-for"];
/// The fields of an HTTP API event that matter most.
const EVENT_FIELDS: &[&str] =
    &["rawPath", "headers", "cookies", "body", "requestContext", "isBase64Encoded", "rawQueryString"];

/// An HTTP API event as API Gateway builds it from what a client can choose — its method, path,
/// query, header values, cookies and body — with the parts API Gateway itself writes left valid.
fn client_event() -> impl Strategy<Value = Value> {
    let path = "/[!-~&&[^?#]]{0,80}";
    // What a query can hold (RFC 3986), and any bytes percent-encoded.
    let query = prop::collection::vec(
        prop_oneof![
            3 => "[A-Za-z0-9._~!$&'()*+,;=:@/?-]{1,10}",
            1 => any::<u8>().prop_map(|b| format!("%{b:02X}")),
            1 => Just("%".to_owned()),
        ],
        0..12,
    )
    .prop_map(|parts| parts.concat());
    // Header names as clients send them, and the ones the product reads.
    let name = prop_oneof![
        2 => "[a-z0-9-]{1,20}",
        1 => prop::sample::select(READ_HEADERS).prop_map(str::to_owned),
    ];
    let header = (name, prop_oneof![3 => "[ -~]{0,80}".boxed(), 1 => "\\PC{0,40}".boxed(), 1 => long_header_value()]);
    let method = prop::sample::select(vec!["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "PROPFIND"]);
    let body = prop_oneof![
        1 => Just(None),
        2 => prop_oneof![text(), json_text(), long_text()].prop_map(|t| Some(Err(t))),
        1 => prop::collection::vec(any::<u8>(), 0..200).prop_map(|b| Some(Ok(b))),
    ];
    (method, path, query, prop::collection::vec(header, 0..5), prop::collection::vec(text(), 0..4), body).prop_map(
        |(m, p, q, headers, cookies, body)| {
            let target = if q.is_empty() { p } else { format!("{p}?{q}") };
            let mut call = TestCall::new(m, &target);
            for (k, v) in &headers {
                call = call.header(k, v);
            }
            for c in &cookies {
                call = call.cookie(Some(c));
            }
            let b = call.builder();
            match body {
                None => b,
                Some(Err(text)) => b.body(&text),
                Some(Ok(bytes)) => b.body_bytes(&bytes),
            }
            .build()
        },
    )
}

/// What bytes read as an HTTP API event came to.
#[derive(Debug, PartialEq, Eq)]
enum Read {
    /// Not an event: refused with an error.
    NotAnEvent,
    /// An event API Gateway would never send (see [`from_api_gateway`]): not turned into a request.
    NotFromApiGateway,
    /// Read, and turned into the request the functions see.
    Request,
}

/// Whether API Gateway could have sent `e`. lambda_http 1.3 builds the request with `expect`s
/// on the parts API Gateway writes, so an event that breaks their rules panics inside it
/// (`request.rs`: a raw `<` or space in `rawQueryString`, a host or `X-Forwarded-Proto` that is
/// no URL part, a `rawPath` not starting with `/`, a non-base64 body marked `isBase64Encoded`).
/// API Gateway sends the query percent-encoded, its own host and scheme, a path from `/` and
/// valid base64; lambda_runtime's panic layer turns any such panic into that one invocation's
/// error.
fn from_api_gateway(e: &aws_lambda_events::apigw::ApiGatewayV2httpRequest) -> bool {
    use base64::Engine;
    let query_ok = |q: &str| q.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&b));
    let host_ok = |h: &str| {
        let (name, port) = h.rsplit_once(':').unwrap_or((h, "0"));
        !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            && port.parse::<u16>().is_ok()
    };
    let header = |n: &str| e.headers.get(n).map(|v| v.to_str().ok());
    let host = match header("host") {
        Some(Some(h)) => Some(h),
        _ => e.request_context.domain_name.as_deref(),
    };
    let len = e.raw_path.as_deref().map_or(0, str::len) + e.raw_query_string.as_deref().map_or(0, str::len);
    e.raw_path
        .as_deref()
        .is_none_or(|p| p.starts_with('/') && p.bytes().all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#'))
        && e.raw_query_string.as_deref().is_none_or(query_ok)
        && len <= 10_240
        && host.is_none_or(host_ok)
        && header("x-forwarded-proto").is_none_or(|p| matches!(p, Some("http" | "https")))
        && e.request_context
            .stage
            .as_deref()
            .is_none_or(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"$_-".contains(&b)))
        && (!e.is_base64_encoded
            || e.body.as_deref().is_none_or(|b| base64::engine::general_purpose::STANDARD.decode(b).is_ok()))
}

/// `text` read as API Gateway's HTTP event and, when API Gateway could have sent it, turned into
/// the request the functions read, and read as they read it.
fn to_request(text: &[u8]) -> Read {
    let Ok(event) = serde_json::from_slice::<LambdaRequest>(text) else { return Read::NotAnEvent };
    if let LambdaRequest::ApiGatewayV2(e) = &event
        && !from_api_gateway(e)
    {
        return Read::NotFromApiGateway;
    }
    let req: Request = http::Request::from(event);
    let _ = gatehouse_http::bearer(&req);
    let _ = gatehouse_http::cookie(&req, "__Host-gatehouse_session");
    let _ = gatehouse_http::client_meta(&req, &[]);
    let _ = gatehouse_http::request_id(&req);
    let _ = gatehouse_http::json_object(&req);
    Read::Request
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_bytes_as_an_api_gateway_event_are_refused_without_a_panic(
        raw in json_text(), bytes in prop::collection::vec(any::<u8>(), 0..400)
    ) {
        to_request(raw.as_bytes());
        to_request(&bytes);
    }

    #[test]
    fn an_event_a_client_shaped_becomes_a_request_without_a_panic(event in client_event()) {
        prop_assert_eq!(to_request(event.to_string().as_bytes()), Read::Request, "{}", event);
    }

    #[test]
    fn an_event_with_a_field_of_any_type_is_refused_or_read_without_a_panic(
        event in client_event(), at in any::<usize>(), with in any_json()
    ) {
        to_request(mutate(event, at, with).to_string().as_bytes());
    }

    #[test]
    fn an_event_with_a_repeated_field_is_refused(
        event in client_event(), pick in any::<usize>(), with in any_json()
    ) {
        // One of the fields this event has (`cookies` and `body` are left out when empty).
        let present: Vec<&str> = EVENT_FIELDS.iter().copied().filter(|f| event.get(f).is_some()).collect();
        let field = present[pick % present.len()];
        prop_assert_eq!(to_request(with_repeated_key(&event.to_string(), field, &with).as_bytes()), Read::NotAnEvent);
    }

    #[test]
    fn a_deeply_nested_event_is_refused_not_a_stack_overflow(d in depth(), style in 0u8..3, closed in any::<bool>()) {
        prop_assert_eq!(to_request(nested(d, style, closed, "1").as_bytes()), Read::NotAnEvent);
    }
}

/// Regression: an address whose lower case is no address was accepted, and then the account's
/// reset link never went out (the job re-parses the lower-cased address and failed for good) and
/// the DynamoDB reset token table read its own record back as corrupt.
#[test]
fn an_email_whose_lower_case_is_no_address_is_refused() {
    // "İ".to_lowercase() is "i" and U+0307 COMBINING DOT ABOVE: no letter, so no domain character.
    assert!(Email::parse("ann@İstanbul.example").is_err());
    // "Ⱥ" is two bytes, "ⱥ" three: 32 of them fill the local part, lower-cased they overflow it.
    assert!(Email::parse(&format!("{}@example.com", "Ⱥ".repeat(32))).is_err());
    // What lower-cases into an address stays accepted, whatever its script.
    for fine in ["İstanbul@example.com", "ÇAĞRI@ÖRNEK.COM.TR", "\u{212a}elvin@example.com", "ΣΟΦΙΑ@example.gr"]
    {
        let e = Email::parse(fine).unwrap_or_else(|x| panic!("{fine}: {x}"));
        assert!(Email::parse(&e.normalized()).is_ok(), "{fine}");
    }
}

/// Cheap password hashing: the authorizer test registers one account.
const FAST_ARGON2: &[(&str, &str)] = &[("GATEHOUSE_ARGON2_MEMORY_KIB", "64"), ("GATEHOUSE_ARGON2_ITERATIONS", "1")];

#[test]
fn an_authorizer_event_is_authorized_only_while_it_carries_a_live_credential_unchanged() {
    let rt = runtime();
    let t = TestApp::memory(FAST_ARGON2);
    let cookie = rt.block_on(t.signed_up("ann@example.com"));
    let reply = rt.block_on(t.create_token(&cookie, json!({"name": "ci", "abilities": ["*"]})));
    let token = reply.body["token"].as_str().expect("a token").to_owned();
    let session = cookie.split_once('=').map(|(_, v)| v.to_owned()).expect("name=value");
    let abilities = RouteAbilities::parse("GET /reports=reports:read").expect("a table");
    let routes =
        prop::sample::select(vec!["GET /user", "POST /tokens", "GET /reports", "$default"]).prop_map(str::to_owned);
    let route = prop_oneof![3 => routes, 1 => text()];
    // A route, and the live token and session cookie, each there or not.
    let carried = (route, prop::option::of(Just(token.clone())), prop::option::of(Just(cookie.clone())));
    let event_of = |(route, bearer, cookie): (String, Option<String>, Option<String>)| {
        authorizer_event(&route, bearer.as_deref(), cookie.as_deref())
    };
    let junk = prop::option::of(prop_oneof![text(), long_header_value()]);
    let fields = prop::sample::select(vec!["headers", "cookies", "routeKey", "requestContext", "identitySource"]);
    let event = prop_oneof![
        2 => carried.clone().prop_map(move |c| event_of(c).to_string()),
        3 => (carried.clone(), any::<usize>(), any_json())
            .prop_map(move |(c, at, with)| mutate(event_of(c), at, with).to_string()),
        // A credential with a break slipped in, or junk in its place.
        1 => (carried.clone(), junk, any::<usize>(), prop::sample::select(BREAKS))
            .prop_map(move |((route, bearer, cookie), junk, at, piece)| {
                let broken = |c: String| junk.clone().unwrap_or_else(|| insert_inside(&c, at, piece));
                event_of((route, bearer.map(broken), cookie.map(broken))).to_string()
            }),
        1 => (carried, fields, any_json())
            .prop_map(move |(c, field, with)| with_repeated_key(&event_of(c).to_string(), field, &with)),
        1 => json_text(),
    ];
    let (allowed, denied) = (std::cell::Cell::new(0u32), std::cell::Cell::new(0u32));
    run(event, |raw| {
        let Ok(event) = serde_json::from_str::<ApiGatewayV2CustomAuthorizerV2Request>(&raw) else { return Ok(()) };
        let bearer = event.headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let carries_token =
            gatehouse_http::parse_bearer(bearer.as_deref().map(str::as_bytes)).ok().flatten().as_deref()
                == Some(token.as_str());
        let carries_session = bearer.is_none()
            && gatehouse_http::find_cookie(event.cookies.iter().map(String::as_str), "__Host-gatehouse_session")
                .as_deref()
                == Some(session.as_str());
        let answer = rt.block_on(gatehouse_token_check::authorize(&t.app.access, &abilities, event));
        if answer.is_authorized {
            allowed.set(allowed.get() + 1);
            prop_assert!(carries_token || carries_session, "authorized without its credential: {raw}");
        } else {
            denied.set(denied.get() + 1);
        }
        Ok(())
    });
    // Both answers were reached, so the property above was tried on events that passed.
    assert!(allowed.get() > 0 && denied.get() > 0, "allowed {} denied {}", allowed.get(), denied.get());
}
