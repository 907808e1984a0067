//! The OAuth 2.1 / OpenID Connect provider as an attacker tries it: codes replayed, stolen or
//! bent to another client, verifier or redirect URI; PKCE weakened; refresh tokens reused, raced
//! and presented by another client; grants outliving a password reset or change; open redirects;
//! consent forged cross-site; JWTs forged every usual way; client authentication dodged; the
//! token endpoint flooded; dynamic registration abused. Each test fails when its defence is gone.
//! The functions run in process over the in-memory stores: the hosted pages
//! (`/account/oauth/authorize`) and the `oauth` function (`/oauth/*`).

use crate::support::put_reset_token;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use gatehouse::services::oauth::clients::ClientRegistration;
use gatehouse::signing::SigningKeys;
use gatehouse::tables::oauth_clients::{ClientId, GrantType, OAuthClient};
use gatehouse::values::jwt::{Jwk, LocalKey, assemble, signing_input, verify};
use gatehouse_tests::http::{SESSION_COOKIE, TestApp, TestCall, TestReply};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

const PW: &str = "correct horse battery staple 42";
const NEW_PW: &str = "a brand new and long passphrase 7";
const OWN_ORIGIN: &str = "https://api.example.test";
const CB: &str = "https://app.example/cb";
const CB2: &str = "https://app.example/other-cb";
const SCOPE: &str = "openid profile email offline_access";

/// Cheap hashing: these tests are about the provider, not argon2's cost.
const FAST: &[(&str, &str)] = &[("GATEHOUSE_ARGON2_MEMORY_KIB", "64"), ("GATEHOUSE_ARGON2_ITERATIONS", "1")];

// ---------------------------------------------------------------- the harness

/// An app whose OAuth provider signs with `key` (kept, to forge with it).
struct Op {
    t: TestApp,
    key: LocalKey,
}

fn provider(overrides: &[(&str, &str)]) -> Op {
    let mut t = TestApp::memory(&[FAST, overrides].concat());
    let key = LocalKey::generate();
    t.app = t.app.clone().with_signing_keys(SigningKeys::local(key.clone()));
    Op { t, key }
}

impl Op {
    fn issuer(&self) -> String {
        self.t.app.config.oauth.issuer.clone()
    }
    fn now(&self) -> i64 {
        self.t.env.clock_now().timestamp()
    }
    async fn oauth_fn(&self, call: TestCall) -> TestReply {
        TestReply::from(gatehouse_oauth::handle(&self.t.app, call.request()).await)
    }
    async fn pages(&self, call: TestCall) -> TestReply {
        self.t.pages_fn(call).await
    }
}

/// A client, its secret when confidential.
#[derive(Clone)]
struct Client {
    id: String,
    secret: Option<String>,
}

impl Client {
    fn basic(&self) -> String {
        let secret = self.secret.as_deref().expect("a confidential client");
        format!("Basic {}", STANDARD.encode(format!("{}:{secret}", self.id)))
    }
    /// A form post to the `oauth` function, authenticated as this client (Basic when
    /// confidential, `client_id` in the body when public).
    fn call(&self, path: &str, fields: &[(&str, &str)]) -> TestCall {
        let mut all = fields.to_vec();
        let call = TestCall::new("POST", path);
        let call = match &self.secret {
            Some(_) => call.header("authorization", &self.basic()),
            None => {
                all.push(("client_id", &self.id));
                call
            }
        };
        form(call, &all)
    }
}

async fn client_with(op: &Op, confidential: bool, first_party: bool, grants: &[GrantType]) -> Client {
    let reg = ClientRegistration {
        name: "Example App".into(),
        redirect_uris: if grants.contains(&GrantType::AuthorizationCode) {
            vec![CB.into(), CB2.into()]
        } else {
            vec![]
        },
        post_logout_redirect_uris: vec![],
        grant_types: grants.to_vec(),
        scopes: ["openid", "profile", "email", "offline_access", "reports:read"].map(String::from).to_vec(),
        confidential,
        first_party,
    };
    let (c, secret) = op.t.app.oauth().create_client(reg).await.expect("a client");
    Client { id: c.id.as_str().to_owned(), secret: secret.map(|s| s.expose().to_owned()) }
}

/// A confidential client of the code flow with refresh tokens, asking consent.
async fn client(op: &Op) -> Client {
    client_with(op, true, false, &[GrantType::AuthorizationCode, GrantType::RefreshToken]).await
}

/// A first-party one: no consent page.
async fn first_party(op: &Op) -> Client {
    client_with(op, true, true, &[GrantType::AuthorizationCode, GrantType::RefreshToken]).await
}

fn form(call: TestCall, fields: &[(&str, &str)]) -> TestCall {
    let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
    call.raw(&body).header("content-type", "application/x-www-form-urlencoded")
}

struct Pkce {
    verifier: String,
    challenge: String,
}

fn pkce() -> Pkce {
    let verifier = format!("{}-{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    Pkce { verifier, challenge }
}

/// An authorization request's parameters: code flow, S256, `state` and `nonce`.
fn params(c: &Client, p: &Pkce) -> Vec<(String, String)> {
    [
        ("response_type", "code"),
        ("client_id", c.id.as_str()),
        ("redirect_uri", CB),
        ("scope", SCOPE),
        ("state", "st-42"),
        ("code_challenge", p.challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("nonce", "n-0S6_WzA2Mj"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .to_vec()
}

/// `params` with `key` set to `value` (or removed with `None`).
fn with(mut params: Vec<(String, String)>, key: &str, value: Option<&str>) -> Vec<(String, String)> {
    params.retain(|(k, _)| k != key);
    if let Some(v) = value {
        params.push((key.to_owned(), v.to_owned()));
    }
    params
}

fn authorize_path(params: &[(String, String)]) -> String {
    let q: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
    format!("/account/oauth/authorize?{q}")
}

fn location(r: &TestReply) -> &str {
    r.header("location").unwrap_or_default()
}

/// The query of a redirect back to the client.
fn query_of(url: &str) -> BTreeMap<String, String> {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

/// A browser: a cookie jar, GETs, and form posts as the site's own page sends them.
#[derive(Default, Clone)]
struct Browser {
    jar: BTreeMap<String, String>,
}

impl Browser {
    fn keep(&mut self, r: &TestReply) {
        r.keep_cookies(&mut self.jar);
    }
    fn with_cookies(&self, call: TestCall) -> TestCall {
        if self.jar.is_empty() {
            return call;
        }
        let header: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
        call.header("cookie", &header.join("; "))
    }
    /// A browser holding the session `cookie` (`name=value`).
    fn with_session(cookie: &str) -> Self {
        let mut b = Self::default();
        let (k, v) = cookie.split_once('=').expect("name=value");
        b.jar.insert(k.to_owned(), v.to_owned());
        b
    }
    async fn get(&mut self, op: &Op, path: &str) -> TestReply {
        let r = op.pages(self.with_cookies(TestCall::new("GET", path))).await;
        self.keep(&r);
        r
    }
    async fn post(&mut self, op: &Op, path: &str, fields: &[(&str, &str)]) -> TestReply {
        let call = form(TestCall::new("POST", path), fields)
            .header("sec-fetch-site", "same-origin")
            .header("origin", OWN_ORIGIN);
        let r = op.pages(self.with_cookies(call)).await;
        self.keep(&r);
        r
    }
}

/// Ann (a fresh address) signed up: her browser and her address.
async fn signed_in(op: &Op) -> (Browser, String) {
    let email = crate::support::unique("ann");
    let cookie = op.t.registered(&email).await;
    (Browser::with_session(&cookie), email)
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"").replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

/// The hidden fields of the page's form, the CSRF token among them.
fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let marker = r#"<input type="hidden" name=""#;
    html.split(marker)
        .skip(1)
        .map(|rest| {
            let (name, rest) = rest.split_once('"').expect("a name");
            let value =
                rest.strip_prefix(r#" value=""#).and_then(|r| r.split_once('"')).map(|(v, _)| v).unwrap_or_default();
            (unescape(name), unescape(value))
        })
        .collect()
}

/// Whether `r` is the consent page (and not a redirect).
fn is_consent_page(r: &TestReply) -> bool {
    r.status == 200 && r.raw_body.contains(r#"name="decision" value="allow""#) && r.header("location").is_none()
}

/// GET the authorization endpoint; on the consent page, allow. The reply that sends the browser
/// back to the client.
async fn approve(op: &Op, b: &mut Browser, params: &[(String, String)]) -> TestReply {
    let shown = b.get(op, &authorize_path(params)).await;
    if shown.status != 200 {
        return shown;
    }
    assert!(is_consent_page(&shown), "{}", shown.raw_body);
    let mut fields = hidden_fields(&shown.raw_body);
    fields.push(("decision".into(), "allow".into()));
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    b.post(op, "/account/oauth/authorize", &fields).await
}

/// An authorization code for `c` through `b`'s session (consent given when asked).
async fn code_for(op: &Op, b: &mut Browser, c: &Client, p: &Pkce) -> String {
    code_with(op, b, &params(c, p)).await
}

async fn code_with(op: &Op, b: &mut Browser, params: &[(String, String)]) -> String {
    let r = approve(op, b, params).await;
    assert_eq!(r.status, 303, "{}", r.raw_body);
    let q = query_of(location(&r));
    q.get("code").unwrap_or_else(|| panic!("no code in {}", location(&r))).to_owned()
}

async fn exchange(op: &Op, c: &Client, code: &str, redirect_uri: &str, verifier: &str) -> TestReply {
    let fields = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", verifier),
    ];
    op.oauth_fn(c.call("/oauth/token", &fields)).await
}

/// The tokens of a full grant: `{access_token, refresh_token, id_token, ...}`.
async fn grant(op: &Op, b: &mut Browser, c: &Client) -> Value {
    let p = pkce();
    let code = code_for(op, b, c, &p).await;
    let r = exchange(op, c, &code, CB, &p.verifier).await;
    assert_eq!(r.status, 200, "{}", r.raw_body);
    r.body
}

async fn refresh(op: &Op, c: &Client, refresh_token: &str) -> TestReply {
    op.oauth_fn(c.call("/oauth/token", &[("grant_type", "refresh_token"), ("refresh_token", refresh_token)])).await
}

async fn introspect(op: &Op, c: &Client, token: &str) -> TestReply {
    let r = op.oauth_fn(c.call("/oauth/introspect", &[("token", token)])).await;
    assert_eq!(r.status, 200, "{}", r.raw_body);
    r
}

async fn active(op: &Op, c: &Client, token: &str) -> bool {
    let r = introspect(op, c, token).await;
    match r.body["active"].as_bool() {
        Some(true) => true,
        Some(false) => {
            assert_eq!(r.body, json!({ "active": false }), "an inactive token says nothing more");
            false
        }
        None => panic!("no active member: {}", r.raw_body),
    }
}

async fn userinfo(op: &Op, token: &str) -> TestReply {
    op.oauth_fn(TestCall::new("GET", "/oauth/userinfo").bearer(token)).await
}

fn assert_invalid_grant(r: &TestReply, what: &str) {
    assert_eq!((r.status, r.body["error"].as_str()), (400, Some("invalid_grant")), "{what}: {}", r.raw_body);
    assert!(r.body.get("access_token").is_none(), "{what}");
}

fn assert_invalid_token(r: &TestReply, what: &str) {
    assert_eq!((r.status, r.body["error"].as_str()), (401, Some("invalid_token")), "{what}: {}", r.raw_body);
    assert!(r.header("www-authenticate").is_some_and(|h| h.starts_with("Bearer")), "{what}");
    assert!(r.body.get("sub").is_none(), "{what}");
}

/// A JWT's header and claims, not verified.
fn decode(jwt: &str) -> (Value, Value) {
    let part = |i: usize| -> Value {
        let raw = URL_SAFE_NO_PAD.decode(jwt.split('.').nth(i).expect("three parts")).expect("base64url");
        serde_json::from_slice(&raw).expect("JSON")
    };
    (part(0), part(1))
}

/// `claims` signed ES256 by `key`, the header naming `kid`.
fn es256(key: &LocalKey, kid: &str, typ: &str, claims: &Value) -> String {
    let input = signing_input(kid, typ, claims);
    assemble(&input, &key.sign(input.as_bytes()))
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let (mut inner, mut outer) = (Sha256::new(), Sha256::new());
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().to_vec()
}

fn b64json(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

// ---------------------------------------------------------------- the happy path

#[tokio::test]
async fn the_code_flow_gives_tokens_that_refresh_introspect_and_revoke() {
    let op = provider(&[]);
    let c = client(&op).await;
    let (mut b, email) = signed_in(&op).await;
    let p = pkce();

    // The consent page names the client and what it asks.
    let shown = b.get(&op, &authorize_path(&params(&c, &p))).await;
    assert!(is_consent_page(&shown), "{}", shown.raw_body);
    assert!(shown.raw_body.contains("Example App wants to use your account"), "{}", shown.raw_body);
    assert_eq!(shown.header("cache-control"), Some("no-store"));
    assert!(shown.header("content-security-policy").is_some_and(|c| c.contains("frame-ancestors 'none'")));

    let allowed = approve(&op, &mut b, &params(&c, &p)).await;
    assert_eq!(allowed.status, 303, "{}", allowed.raw_body);
    let back = location(&allowed);
    assert!(back.starts_with(&format!("{CB}?")), "{back}");
    let q = query_of(back);
    assert_eq!(q.get("state").map(String::as_str), Some("st-42"));
    assert_eq!(q.get("iss"), Some(&op.issuer()));
    let code = q.get("code").expect("a code").to_owned();

    let r = exchange(&op, &c, &code, CB, &p.verifier).await;
    assert_eq!(r.status, 200, "{}", r.raw_body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.body["token_type"], "Bearer");
    let access = r.body["access_token"].as_str().expect("an access token").to_owned();
    let refresh0 = r.body["refresh_token"].as_str().expect("a refresh token").to_owned();
    let id_token = r.body["id_token"].as_str().expect("an ID token").to_owned();

    // Checked as a client does: against the published JWKS.
    let jwks = op.oauth_fn(TestCall::new("GET", "/.well-known/jwks.json")).await;
    assert_eq!(jwks.status, 200, "{}", jwks.raw_body);
    let keys: Vec<Jwk> = serde_json::from_value(jwks.body["keys"].clone()).expect("JWKs");
    let (h, claims) = decode(&access);
    assert_eq!((h["alg"].as_str(), h["typ"].as_str()), (Some("ES256"), Some("at+jwt")), "{h}");
    let verified = verify(&access, &keys).expect("signed by the provider");
    assert_eq!(verified.claims["client_id"], json!(c.id));
    assert_eq!(claims["iss"], json!(op.issuer()));
    assert!(claims["exp"].as_i64().unwrap() > op.now());
    let (idh, id) = decode(&id_token);
    assert_eq!(idh["alg"], "ES256");
    verify(&id_token, &keys).expect("the ID token is signed by the provider");
    assert_eq!(id["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(id["aud"], json!(c.id));
    assert_eq!(id["iss"], json!(op.issuer()));
    assert_eq!(id["email"], json!(email));
    assert_eq!(id["sub"], claims["sub"]);
    let at_hash = URL_SAFE_NO_PAD.encode(&Sha256::digest(access.as_bytes())[..16]);
    assert_eq!(id["at_hash"], json!(at_hash));

    let me = userinfo(&op, &access).await;
    assert_eq!(me.status, 200, "{}", me.raw_body);
    assert_eq!((me.body["sub"].clone(), me.body["email"].clone()), (claims["sub"].clone(), json!(email)));

    // Refresh rotates: a new refresh token, a new access token; the old refresh token is spent.
    let r1 = refresh(&op, &c, &refresh0).await;
    assert_eq!(r1.status, 200, "{}", r1.raw_body);
    let refresh1 = r1.body["refresh_token"].as_str().expect("rotated").to_owned();
    let access1 = r1.body["access_token"].as_str().expect("an access token").to_owned();
    assert_ne!(refresh1, refresh0);
    assert!(!active(&op, &c, &refresh0).await, "the spent refresh token");
    assert!(active(&op, &c, &refresh1).await);

    let i = introspect(&op, &c, &access1).await;
    assert_eq!(i.body["active"], true, "{}", i.raw_body);
    assert_eq!(i.body["client_id"], json!(c.id));
    assert_eq!(i.body["sub"], claims["sub"]);
    assert_eq!(i.header("cache-control"), Some("no-store"));

    // Revoking the refresh token ends the grant: every access token of it, and the refresh token.
    let rv = op.oauth_fn(c.call("/oauth/revoke", &[("token", &refresh1)])).await;
    assert_eq!(rv.status, 200, "{}", rv.raw_body);
    assert!(!active(&op, &c, &access1).await);
    assert!(!active(&op, &c, &access).await);
    assert!(!active(&op, &c, &refresh1).await);
    assert_invalid_token(&userinfo(&op, &access1).await, "after revocation");
    assert_invalid_grant(&refresh(&op, &c, &refresh1).await, "a revoked refresh token");
}

// ---------------------------------------------------------------- codes

#[tokio::test]
async fn a_replayed_code_is_refused_and_kills_what_its_first_exchange_gave() {
    let op = provider(&[]);
    let c = client(&op).await;
    let (mut b, _) = signed_in(&op).await;
    let p = pkce();
    let code = code_for(&op, &mut b, &c, &p).await;
    let first = exchange(&op, &c, &code, CB, &p.verifier).await;
    assert_eq!(first.status, 200, "{}", first.raw_body);
    let access = first.body["access_token"].as_str().unwrap().to_owned();
    let refresh_token = first.body["refresh_token"].as_str().unwrap().to_owned();
    assert!(active(&op, &c, &access).await);

    assert_invalid_grant(&exchange(&op, &c, &code, CB, &p.verifier).await, "the replay");
    assert!(!active(&op, &c, &access).await, "the first exchange's access token dies with the replay");
    assert!(!active(&op, &c, &refresh_token).await);
    assert_invalid_token(&userinfo(&op, &access).await, "after the replay");
    assert_invalid_grant(&refresh(&op, &c, &refresh_token).await, "the first exchange's refresh token");
}

#[tokio::test]
async fn a_code_with_the_wrong_verifier_redirect_uri_or_client_is_refused_and_burnt() {
    let op = provider(&[]);
    let a = first_party(&op).await;
    let other = first_party(&op).await;
    let (mut b, _) = signed_in(&op).await;

    // The wrong verifier (well-shaped: another flow's).
    let p = pkce();
    let code = code_for(&op, &mut b, &a, &p).await;
    assert_invalid_grant(&exchange(&op, &a, &code, CB, &pkce().verifier).await, "wrong verifier");
    assert_invalid_grant(&exchange(&op, &a, &code, CB, &p.verifier).await, "burnt by the wrong verifier");

    // Another of the client's own redirect URIs than the one the code was sent to.
    let p = pkce();
    let code = code_for(&op, &mut b, &a, &p).await;
    assert_invalid_grant(&exchange(&op, &a, &code, CB2, &p.verifier).await, "wrong redirect_uri");
    assert_invalid_grant(&exchange(&op, &a, &code, CB, &p.verifier).await, "burnt by the wrong redirect_uri");

    // Another client, authenticated as itself, with everything else right (a stolen code).
    let p = pkce();
    let code = code_for(&op, &mut b, &a, &p).await;
    assert_invalid_grant(&exchange(&op, &other, &code, CB, &p.verifier).await, "another client");
    assert_invalid_grant(&exchange(&op, &a, &code, CB, &p.verifier).await, "burnt by another client");

    // Control: the same steps done right give tokens.
    let p = pkce();
    let code = code_for(&op, &mut b, &a, &p).await;
    assert_eq!(exchange(&op, &a, &code, CB, &p.verifier).await.status, 200);
}

#[tokio::test]
async fn plain_pkce_and_a_missing_challenge_are_sent_back_as_invalid_request() {
    let op = provider(&[]);
    // First-party and signed in: without the PKCE rule, each would come back with a code.
    let c = first_party(&op).await;
    let (mut b, _) = signed_in(&op).await;
    let p = pkce();
    let ok = b.get(&op, &authorize_path(&params(&c, &p))).await;
    assert!(query_of(location(&ok)).contains_key("code"), "control: {}", location(&ok));

    // A plain challenge is the verifier itself; 43 characters, so only the method is wrong.
    let plain_verifier = &p.verifier[..43];
    let plain =
        with(with(params(&c, &p), "code_challenge", Some(plain_verifier)), "code_challenge_method", Some("plain"));
    for (what, params) in [
        ("plain", plain),
        ("no method (RFC 7636's default is plain)", with(params(&c, &p), "code_challenge_method", None)),
        ("no challenge", with(params(&c, &p), "code_challenge", None)),
        ("no challenge, no method", with(with(params(&c, &p), "code_challenge", None), "code_challenge_method", None)),
        ("a challenge of the wrong shape", with(params(&c, &p), "code_challenge", Some("short"))),
    ] {
        let r = b.get(&op, &authorize_path(&params)).await;
        assert_eq!(r.status, 303, "{what}: {}", r.raw_body);
        assert!(location(&r).starts_with(&format!("{CB}?")), "{what}: {}", location(&r));
        let q = query_of(location(&r));
        assert_eq!(q.get("error").map(String::as_str), Some("invalid_request"), "{what}");
        assert_eq!(q.get("state").map(String::as_str), Some("st-42"), "{what}");
        assert!(!q.contains_key("code"), "{what}");
    }
}

// ---------------------------------------------------------------- refresh tokens

#[tokio::test]
async fn a_spent_refresh_token_reused_kills_the_whole_family() {
    let op = provider(&[]);
    let c = client(&op).await;
    let (mut b, _) = signed_in(&op).await;
    let g = grant(&op, &mut b, &c).await;
    let r0 = g["refresh_token"].as_str().unwrap().to_owned();
    let first = refresh(&op, &c, &r0).await;
    assert_eq!(first.status, 200, "{}", first.raw_body);
    let r1 = first.body["refresh_token"].as_str().unwrap().to_owned();
    let a1 = first.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(userinfo(&op, &a1).await.status, 200);

    // The thief (or the victim, whichever is second) presents the spent one.
    assert_invalid_grant(&refresh(&op, &c, &r0).await, "the spent token reused");
    assert_invalid_grant(&refresh(&op, &c, &r1).await, "the newest token of the family");
    assert!(!active(&op, &c, &a1).await, "the family's access token");
    assert_invalid_token(&userinfo(&op, &a1).await, "the family's access token");
    assert!(!active(&op, &c, g["access_token"].as_str().unwrap()).await);
}

#[tokio::test]
async fn eight_concurrent_refreshes_with_one_token_make_exactly_one_success() {
    let op = provider(&[]);
    let c = client(&op).await;
    let (mut b, _) = signed_in(&op).await;
    let g = grant(&op, &mut b, &c).await;
    let r0 = g["refresh_token"].as_str().unwrap().to_owned();
    let go = || refresh(&op, &c, &r0);
    let all = tokio::join!(go(), go(), go(), go(), go(), go(), go(), go());
    let all = [all.0, all.1, all.2, all.3, all.4, all.5, all.6, all.7];
    let ok: Vec<&TestReply> = all.iter().filter(|r| r.status == 200).collect();
    assert_eq!(ok.len(), 1, "{:?}", all.iter().map(|r| (r.status, r.raw_body.clone())).collect::<Vec<_>>());
    for r in all.iter().filter(|r| r.status != 200) {
        assert_invalid_grant(r, "a racing refresh");
    }
}

#[tokio::test]
async fn another_clients_refresh_token_is_refused_and_the_family_is_not_harmed() {
    let op = provider(&[]);
    let owner = client(&op).await;
    let thief = client(&op).await;
    let (mut b, _) = signed_in(&op).await;
    let g = grant(&op, &mut b, &owner).await;
    let r0 = g["refresh_token"].as_str().unwrap().to_owned();
    let access = g["access_token"].as_str().unwrap().to_owned();

    assert_invalid_grant(&refresh(&op, &thief, &r0).await, "another client's refresh token");
    // Nor can the thief revoke it (RFC 7009: the same 200, nothing done).
    let rv = op.oauth_fn(thief.call("/oauth/revoke", &[("token", &r0)])).await;
    assert_eq!(rv.status, 200, "{}", rv.raw_body);
    let rv = op.oauth_fn(thief.call("/oauth/revoke", &[("token", &access)])).await;
    assert_eq!(rv.status, 200, "{}", rv.raw_body);

    assert!(active(&op, &owner, &access).await, "the owner's access token lives");
    let again = refresh(&op, &owner, &r0).await;
    assert_eq!(again.status, 200, "the owner still refreshes (not rotated, not revoked): {}", again.raw_body);
}

// ---------------------------------------------------------------- the register's revocation

/// Ann's grant, consent remembered (a second authorization comes straight back with a code).
async fn grant_with_remembered_consent(op: &Op, b: &mut Browser, c: &Client) -> Value {
    let g = grant(op, b, c).await;
    let again = b.get(op, &authorize_path(&params(c, &pkce()))).await;
    assert_eq!(again.status, 303, "consent remembered: {}", again.raw_body);
    assert!(query_of(location(&again)).contains_key("code"), "{}", location(&again));
    g
}

async fn assert_grant_dead(op: &Op, c: &Client, g: &Value, what: &str) {
    let access = g["access_token"].as_str().unwrap();
    assert_invalid_grant(&refresh(op, c, g["refresh_token"].as_str().unwrap()).await, what);
    assert_invalid_token(&userinfo(op, access).await, what);
    assert!(!active(op, c, access).await, "{what}: introspection");
}

#[tokio::test]
async fn a_password_reset_ends_every_grant_and_consent_and_a_pending_code() {
    let op = provider(&[]);
    let c = client(&op).await;
    let (mut b, email) = signed_in(&op).await;
    let g = grant_with_remembered_consent(&op, &mut b, &c).await;
    assert_eq!(userinfo(&op, g["access_token"].as_str().unwrap()).await.status, 200);
    // A code approved before the reset, exchanged after it.
    let p = pkce();
    let pending = code_for(&op, &mut b, &c, &p).await;

    let token = put_reset_token(&op.t.env.stores, &email, chrono::Duration::days(1)).await;
    let reset =
        op.t.reset_fn(TestCall::new("POST", "/reset-password").json(json!({
            "email": email, "token": token.expose(), "password": NEW_PW, "password_confirmation": NEW_PW
        })))
        .await;
    assert_eq!(reset.status, 200, "{}", reset.raw_body);

    assert_grant_dead(&op, &c, &g, "after the reset").await;
    assert_invalid_grant(&exchange(&op, &c, &pending, CB, &p.verifier).await, "a code approved before the reset");

    // Signed in again with the new password: consent is asked again.
    let cookie = op.t.login(&email, NEW_PW).await.session_cookie().expect("signed in");
    let mut fresh = Browser::with_session(&cookie);
    let r = fresh.get(&op, &authorize_path(&params(&c, &pkce()))).await;
    assert!(is_consent_page(&r), "consent asked again: {} {}", r.status, location(&r));
}

#[tokio::test]
async fn a_password_change_ends_every_grant_and_consent() {
    let op = provider(&[]);
    let c = client(&op).await;
    let (mut b, _) = signed_in(&op).await;
    let g = grant_with_remembered_consent(&op, &mut b, &c).await;
    let call = b.with_cookies(TestCall::new("PUT", "/user/password")).json(json!({
        "current_password": PW, "password": NEW_PW, "password_confirmation": NEW_PW
    }));
    let changed = op.t.login_fn(call).await;
    assert!(changed.status < 300, "{} {}", changed.status, changed.raw_body);
    b.keep(&changed);
    assert!(b.jar.contains_key(SESSION_COOKIE), "the changing session is kept");

    assert_grant_dead(&op, &c, &g, "after the change").await;
    let r = b.get(&op, &authorize_path(&params(&c, &pkce()))).await;
    assert!(is_consent_page(&r), "consent asked again: {} {}", r.status, location(&r));
}

/// A change of the account made with the session `cookie`: the session cookie to go on with.
type Change = for<'a> fn(&'a TestApp, String) -> std::pin::Pin<Box<dyn Future<Output = String> + 'a>>;

fn log_out_other_devices(t: &TestApp, cookie: String) -> std::pin::Pin<Box<dyn Future<Output = String> + '_>> {
    Box::pin(async move {
        let call = TestCall::new("POST", "/logout-other-devices").cookie(Some(&cookie)).json(json!({ "password": PW }));
        let r = t.login_fn(call).await;
        assert!(r.status < 300, "{} {}", r.status, r.raw_body);
        r.session_cookie().unwrap_or(cookie)
    })
}

fn two_factor_on(t: &TestApp, cookie: String) -> std::pin::Pin<Box<dyn Future<Output = String> + '_>> {
    Box::pin(async move {
        let e = t.login_fn(TestCall::new("POST", "/user/two-factor-authentication").cookie(Some(&cookie))).await;
        assert_eq!(e.status, 200, "{}", e.raw_body);
        let secret = e.body["secret"].as_str().expect("a secret").to_owned();
        let call = TestCall::new("POST", "/user/confirmed-two-factor-authentication")
            .cookie(Some(&cookie))
            .json(json!({ "code": t.totp(&secret) }));
        let r = t.login_fn(call).await;
        assert_eq!(r.status, 200, "{}", r.raw_body);
        r.session_cookie().unwrap_or(cookie)
    })
}

/// Ann (password confirmed, `before` done) grants the client, then makes `change`: the grant is
/// dead and consent is asked again.
async fn change_ends_the_grant(what: &str, before: Option<Change>, change: Change) {
    let op = provider(&[]);
    let c = client(&op).await;
    let mut cookie = op.t.signed_up(&crate::support::unique("ann")).await;
    if let Some(before) = before {
        cookie = before(&op.t, cookie).await;
    }
    let mut b = Browser::with_session(&cookie);
    let g = grant_with_remembered_consent(&op, &mut b, &c).await;
    let cookie = change(&op.t, cookie).await;
    assert_grant_dead(&op, &c, &g, what).await;
    let mut b = Browser::with_session(&cookie);
    let r = b.get(&op, &authorize_path(&params(&c, &pkce()))).await;
    assert!(is_consent_page(&r), "{what}: consent asked again: {} {}", r.status, location(&r));
}

#[tokio::test]
async fn logging_out_other_devices_ends_every_grant_and_consent() {
    change_ends_the_grant("log out other devices", None, log_out_other_devices).await;
}

#[tokio::test]
async fn turning_two_factor_on_ends_every_grant_and_consent() {
    change_ends_the_grant("two-factor on", None, two_factor_on).await;
}

/// "Disabling" in the issue is the account's (an operator's `user:disable`), not the second
/// factor's: turning two-factor off ends no credential, as for sessions and tokens (SECURITY.md).
#[tokio::test]
async fn an_operator_disabling_the_account_ends_every_grant_and_consent() {
    use gatehouse::tables::credentials::{Revocation, reasons};
    use gatehouse::tables::users::CredentialChange;
    let op = provider(&[]);
    let c = client(&op).await;
    let email = crate::support::unique("ann");
    let cookie = op.t.signed_up(&email).await;
    let mut b = Browser::with_session(&cookie);
    let g = grant_with_remembered_consent(&op, &mut b, &c).await;
    // What `gatehouse user:disable` does (cli/src/users.rs): the version moved with the account
    // disabled, in one conditional write, then every credential in the register revoked.
    let stores = &op.t.app.stores;
    let user = stores.users.find_by_email(&gatehouse::Email::parse(&email).unwrap()).await.unwrap().unwrap();
    let change = CredentialChange { revoke: true, disable: Some(true), ..CredentialChange::default() };
    let changed = stores.users.change_credentials(&user.id, user.credentials_version, change, stores.clock.now());
    assert!(changed.await.unwrap().is_some());
    gatehouse::services::revocation::revoke(stores, &user.id, Revocation::Everything, reasons::ACCOUNT_DISABLED)
        .await
        .unwrap();
    assert_grant_dead(&op, &c, &g, "after user:disable").await;
}

#[tokio::test]
async fn deleting_the_account_ends_every_grant() {
    let op = provider(&[]);
    let c = client(&op).await;
    let cookie = op.t.signed_up(&crate::support::unique("ann")).await;
    let mut b = Browser::with_session(&cookie);
    let g = grant(&op, &mut b, &c).await;
    let deleted = op.t.login_fn(TestCall::new("DELETE", "/user").cookie(Some(&cookie)).json(json!({}))).await;
    assert!(deleted.status < 300, "{} {}", deleted.status, deleted.raw_body);
    assert_grant_dead(&op, &c, &g, "after the deletion").await;
}

// ---------------------------------------------------------------- open redirects

#[tokio::test]
async fn unregistered_redirect_uris_and_unknown_clients_get_an_error_page_never_a_redirect() {
    let op = provider(&[]);
    let c = first_party(&op).await;
    let (mut b, _) = signed_in(&op).await;
    let p = pkce();
    let page = |r: &TestReply, what: &str| {
        assert_eq!(r.status, 400, "{what}: {} {}", location(r), r.raw_body);
        assert!(r.header("location").is_none(), "{what}");
        assert!(r.header("content-type").is_some_and(|t| t.starts_with("text/html")), "{what}");
        assert!(!r.raw_body.contains("evil"), "{what}: nothing of the request echoed as a link");
    };
    for bad in [
        "https://app.example/cb/extra",
        "https://app.example/c",
        "https://app.example/cbx",
        "https://app.example/cb?x=1",
        "https://app.example/cb#frag",
        "https://app.example/cb/",
        "https://app.example:8443/cb",
        "https://APP.example/cb",
        "https://app.example/CB",
        "http://app.example/cb",
        "https://app.example.evil.example/cb",
        "https://evil.example/cb",
        "https://app.example@evil.example/cb",
        "https://app.example/cb/../../evil",
        "//evil.example/cb",
        "https://app.example/cb%23",
        " https://app.example/cb",
    ] {
        let r = b.get(&op, &authorize_path(&with(params(&c, &p), "redirect_uri", Some(bad)))).await;
        page(&r, bad);
        // Even with another error after it: the page, not the bad URI with the error.
        let worse = with(with(params(&c, &p), "redirect_uri", Some(bad)), "response_type", Some("token"));
        page(&b.get(&op, &authorize_path(&worse)).await, bad);
    }
    page(&b.get(&op, &authorize_path(&with(params(&c, &p), "redirect_uri", None))).await, "no redirect_uri");
    let twice = [params(&c, &p), vec![("redirect_uri".to_owned(), "https://evil.example/cb".to_owned())]].concat();
    page(&b.get(&op, &authorize_path(&twice)).await, "redirect_uri twice");
    for unknown in ["0123456789abcdef0123456789abcdef", "evil-app", "../x", ""] {
        page(&b.get(&op, &authorize_path(&with(params(&c, &p), "client_id", Some(unknown)))).await, unknown);
    }
    // A revoked client is unknown.
    let id = ClientId::parse(&c.id).unwrap();
    assert!(op.t.env.stores.oauth_clients.revoke(&id).await.unwrap());
    page(&b.get(&op, &authorize_path(&params(&c, &p))).await, "revoked client");
}

// ---------------------------------------------------------------- consent

#[tokio::test]
async fn consent_cannot_be_given_cross_site_and_a_first_party_client_skips_it() {
    let op = provider(&[]);
    let c = client(&op).await;
    let (mut victim, _) = signed_in(&op).await;
    let p = pkce();
    let path = authorize_path(&params(&c, &p));
    let no_code = |r: &TestReply, what: &str| {
        assert!(!location(r).contains("code="), "{what}: {}", location(r));
        assert!(!r.raw_body.contains("code="), "{what}");
    };

    // A page elsewhere sends the browser here (a cross-site GET, even naming a decision): the
    // consent page, never a code.
    for extra in ["", "&decision=allow"] {
        let call = victim
            .with_cookies(TestCall::new("GET", &format!("{path}{extra}")))
            .header("sec-fetch-site", "cross-site")
            .header("referer", "https://evil.example/");
        let r = op.pages(call).await;
        assert!(is_consent_page(&r), "cross-site GET{extra}: {} {}", r.status, location(&r));
        no_code(&r, "cross-site GET");
    }

    let shown = victim.get(&op, &path).await;
    assert!(is_consent_page(&shown));
    let mut fields = hidden_fields(&shown.raw_body);
    fields.push(("decision".into(), "allow".into()));
    let all: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let without_token: Vec<(&str, &str)> = all.iter().copied().filter(|(k, _)| *k != "_token").collect();

    // No CSRF token.
    let r = victim.post(&op, "/account/oauth/authorize", &without_token).await;
    assert_eq!(r.status, 403, "no token: {}", r.raw_body);
    no_code(&r, "no token");
    // Another browser's token (the attacker's own page view).
    let mut attacker = Browser::default();
    let theirs = attacker.get(&op, "/account/sign-in").await;
    let theirs = hidden_fields(&theirs.raw_body).into_iter().find(|(k, _)| k == "_token").map(|(_, v)| v);
    let theirs = theirs.expect("the sign-in page has a token");
    let mut foreign = without_token.clone();
    foreign.push(("_token", theirs.as_str()));
    let r = victim.post(&op, "/account/oauth/authorize", &foreign).await;
    assert_eq!(r.status, 403, "foreign token: {}", r.raw_body);
    no_code(&r, "foreign token");
    // The right token, but the form is posted from another site.
    for (site, origin) in [("cross-site", "https://evil.example"), ("same-site", "https://evil.api.example.test")] {
        let call = form(TestCall::new("POST", "/account/oauth/authorize"), &all)
            .header("sec-fetch-site", site)
            .header("origin", origin);
        let r = op.pages(victim.with_cookies(call)).await;
        assert_eq!(r.status, 403, "{origin}: {}", r.raw_body);
        no_code(&r, origin);
    }
    let call = form(TestCall::new("POST", "/account/oauth/authorize"), &all).header("origin", "https://evil.example");
    let r = op.pages(victim.with_cookies(call)).await;
    assert_eq!(r.status, 403, "Origin alone: {}", r.raw_body);
    // The token, but the parameters bent to an unregistered redirect URI: the page, no redirect.
    let bent: Vec<(&str, &str)> =
        all.iter().map(|&(k, v)| if k == "redirect_uri" { (k, "https://evil.example/cb") } else { (k, v) }).collect();
    let r = victim.post(&op, "/account/oauth/authorize", &bent).await;
    assert_eq!((r.status, r.header("location")), (400, None), "{}", r.raw_body);

    // Control: the real form, from the site's own page, gives the code.
    let r = victim.post(&op, "/account/oauth/authorize", &all).await;
    assert_eq!(r.status, 303, "{}", r.raw_body);
    assert!(query_of(location(&r)).contains_key("code"), "{}", location(&r));

    // A first-party client: no consent page, the code at once.
    let fp = first_party(&op).await;
    let r = victim.get(&op, &authorize_path(&params(&fp, &pkce()))).await;
    assert_eq!(r.status, 303, "{}", r.raw_body);
    let q = query_of(location(&r));
    assert!(q.contains_key("code") && q.get("state").is_some_and(|s| s == "st-42"), "{}", location(&r));
}

#[tokio::test]
async fn prompt_none_answers_login_required_or_consent_required() {
    let op = provider(&[]);
    let c = client(&op).await;
    let p = pkce();
    let silent = with(params(&c, &p), "prompt", Some("none"));
    let error_of = |r: &TestReply| {
        assert_eq!(r.status, 303, "{}", r.raw_body);
        assert!(location(r).starts_with(&format!("{CB}?")), "{}", location(r));
        let q = query_of(location(r));
        assert!(!q.contains_key("code"), "{}", location(r));
        assert_eq!(q.get("state").map(String::as_str), Some("st-42"));
        q.get("error").cloned()
    };

    let mut stranger = Browser::default();
    let r = stranger.get(&op, &authorize_path(&silent)).await;
    assert_eq!(error_of(&r).as_deref(), Some("login_required"));

    let (mut ann, _) = signed_in(&op).await;
    let r = ann.get(&op, &authorize_path(&silent)).await;
    assert_eq!(error_of(&r).as_deref(), Some("consent_required"));

    // Once she consented, prompt=none comes back with a code.
    grant(&op, &mut ann, &c).await;
    let r = ann.get(&op, &authorize_path(&with(params(&c, &pkce()), "prompt", Some("none")))).await;
    assert!(query_of(location(&r)).contains_key("code"), "{}", location(&r));
}

#[tokio::test]
async fn consent_to_fewer_scopes_is_not_consent_to_more_and_a_refresh_cannot_widen_a_grant() {
    let op = provider(&[]);
    let c = client(&op).await;
    let (mut b, _) = signed_in(&op).await;
    let p = pkce();
    let narrow = with(params(&c, &p), "scope", Some("openid offline_access"));
    let code = code_with(&op, &mut b, &narrow).await;
    let g = exchange(&op, &c, &code, CB, &p.verifier).await;
    assert_eq!(g.status, 200, "{}", g.raw_body);
    // The same scopes again: remembered. More: asked again.
    let again = b.get(&op, &authorize_path(&with(params(&c, &pkce()), "scope", Some("openid offline_access")))).await;
    assert!(query_of(location(&again)).contains_key("code"), "{}", location(&again));
    let more =
        b.get(&op, &authorize_path(&with(params(&c, &pkce()), "scope", Some("openid email reports:read")))).await;
    assert!(is_consent_page(&more), "{} {}", more.status, location(&more));
    let silent = with(with(params(&c, &pkce()), "scope", Some("openid email")), "prompt", Some("none"));
    let r = b.get(&op, &authorize_path(&silent)).await;
    assert_eq!(query_of(location(&r)).get("error").map(String::as_str), Some("consent_required"));
    // Nor does the refresh token reach past what was granted.
    let r0 = g.body["refresh_token"].as_str().unwrap();
    let fields = [("grant_type", "refresh_token"), ("refresh_token", r0), ("scope", "openid email")];
    let wider = op.oauth_fn(c.call("/oauth/token", &fields)).await;
    assert_eq!((wider.status, wider.body["error"].as_str()), (400, Some("invalid_scope")), "{}", wider.raw_body);
    let same = refresh(&op, &c, r0).await;
    assert_eq!(same.status, 200, "the refused widening spent nothing: {}", same.raw_body);
    assert_eq!(same.body["scope"], "offline_access openid");
    // A client never gets a scope it was not registered for.
    let r = b.get(&op, &authorize_path(&with(params(&c, &pkce()), "scope", Some("openid admin")))).await;
    assert_eq!(query_of(location(&r)).get("error").map(String::as_str), Some("invalid_scope"), "{}", location(&r));
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let op = provider(&[]);
    let c = first_party(&op).await;
    let (mut b, _) = signed_in(&op).await;
    let p = pkce();
    let code = code_for(&op, &mut b, &c, &p).await;
    op.t.env.clock.advance(chrono::Duration::seconds(61));
    assert_invalid_grant(&exchange(&op, &c, &code, CB, &p.verifier).await, "a code older than its 60 s");
}

#[tokio::test]
async fn logout_goes_back_only_to_a_registered_post_logout_uri() {
    let op = provider(&[]);
    let reg = ClientRegistration {
        name: "Example App".into(),
        redirect_uris: vec![CB.into()],
        post_logout_redirect_uris: vec!["https://app.example/bye".into()],
        grant_types: vec![GrantType::AuthorizationCode],
        scopes: vec!["openid".into()],
        confidential: true,
        first_party: false,
    };
    let (c, _) = op.t.app.oauth().create_client(reg).await.unwrap();
    let id = c.id.as_str();
    let forged_hint = format!("{}.{}.", b64json(&json!({ "alg": "none" })), b64json(&json!({ "aud": id })));
    let mut stranger = Browser::default();
    for (what, query) in [
        ("unregistered", format!("post_logout_redirect_uri=https%3A%2F%2Fevil.example%2Fbye&client_id={id}")),
        ("prefix", format!("post_logout_redirect_uri=https%3A%2F%2Fapp.example%2Fbye%2F..%2Fx&client_id={id}")),
        ("no client", "post_logout_redirect_uri=https%3A%2F%2Fevil.example%2Fbye".to_owned()),
        (
            "forged hint",
            format!("post_logout_redirect_uri=https%3A%2F%2Fevil.example%2Fbye&id_token_hint={forged_hint}"),
        ),
    ] {
        let r = stranger.get(&op, &format!("/account/oauth/logout?{query}")).await;
        assert!(!location(&r).contains("evil") && !location(&r).contains("/x"), "{what}: {}", location(&r));
    }
    let r = stranger
        .get(
            &op,
            &format!(
                "/account/oauth/logout?post_logout_redirect_uri=https%3A%2F%2Fapp.example%2Fbye&client_id={id}&state=s1"
            ),
        )
        .await;
    assert_eq!(location(&r), "https://app.example/bye?state=s1", "control");
    // Signed in, a GET only asks: no sign-out a page elsewhere could trigger.
    let (mut ann, _) = signed_in(&op).await;
    let r = ann
        .get(
            &op,
            &format!("/account/oauth/logout?post_logout_redirect_uri=https%3A%2F%2Fapp.example%2Fbye&client_id={id}"),
        )
        .await;
    assert_eq!((r.status, r.header("location")), (200, None), "{}", r.raw_body);
    assert!(
        ann.jar.contains_key(SESSION_COOKIE)
            && r.set_cookies().iter().all(|c| !c.starts_with(&format!("{SESSION_COOKIE}=")))
    );
}

// ---------------------------------------------------------------- forged JWTs

#[tokio::test]
async fn forged_and_expired_jwts_are_invalid_tokens_at_userinfo() {
    let op = provider(&[]);
    let c = client(&op).await;
    let (mut b, _) = signed_in(&op).await;
    let g = grant(&op, &mut b, &c).await;
    let real = g["access_token"].as_str().unwrap().to_owned();
    let (header, claims) = decode(&real);
    let kid = header["kid"].as_str().unwrap().to_owned();
    let body = real.split('.').nth(1).unwrap().to_owned();
    assert_eq!(userinfo(&op, &real).await.status, 200, "control");
    // Control: the same claims signed again by the provider's own key are accepted, so each
    // refusal below is for what it changes.
    assert_eq!(userinfo(&op, &es256(&op.key, &kid, "at+jwt", &claims)).await.status, 200, "re-signed control");

    // alg none, with and without a signature part.
    let none = b64json(&json!({ "alg": "none", "typ": "at+jwt" }));
    assert_invalid_token(&userinfo(&op, &format!("{none}.{body}.")).await, "alg none");
    let none_kid = b64json(&json!({ "alg": "none", "kid": kid, "typ": "at+jwt" }));
    let sig = real.split('.').nth(2).unwrap();
    assert_invalid_token(&userinfo(&op, &format!("{none_kid}.{body}.{sig}")).await, "alg none, real signature");
    // HS256 keyed with the public key (the algorithm confusion attack), two ways of writing it.
    let jwks = op.oauth_fn(TestCall::new("GET", "/.well-known/jwks.json")).await;
    assert_eq!(jwks.status, 200);
    let public = jwks.body["keys"][0].clone();
    for secret in [public.to_string(), jwks.raw_body.clone(), public["x"].as_str().unwrap().to_owned()] {
        let h = b64json(&json!({ "alg": "HS256", "kid": kid, "typ": "at+jwt" }));
        let mac = hmac_sha256(secret.as_bytes(), format!("{h}.{body}").as_bytes());
        let forged = format!("{h}.{body}.{}", URL_SAFE_NO_PAD.encode(mac));
        assert_invalid_token(&userinfo(&op, &forged).await, "HS256");
    }
    // Another ES256 key: under its own kid, and under the provider's.
    let other = LocalKey::generate();
    assert_invalid_token(&userinfo(&op, &es256(&other, &other.jwk().kid, "at+jwt", &claims)).await, "other key");
    assert_invalid_token(&userinfo(&op, &es256(&other, &kid, "at+jwt", &claims)).await, "other key, our kid");
    // The payload tampered with (another subject, more scope), the signature kept.
    for (k, v) in
        [("sub", json!("00000000-0000-0000-0000-000000000000")), ("scope", json!("openid email reports:write"))]
    {
        let mut forged = claims.clone();
        forged[k] = v;
        let tampered = format!("{}.{}.{sig}", real.split('.').next().unwrap(), b64json(&forged));
        assert_invalid_token(&userinfo(&op, &tampered).await, k);
    }
    // Expired (signed by the provider's own key, its record still live).
    let mut expired = claims.clone();
    expired["exp"] = json!(op.now() - 1);
    assert_invalid_token(&userinfo(&op, &es256(&op.key, &kid, "at+jwt", &expired)).await, "expired");
    // And the real one, once its time is up.
    op.t.env.clock.advance(chrono::Duration::seconds(601));
    assert_invalid_token(&userinfo(&op, &real).await, "expired by the clock");
}

#[tokio::test]
async fn an_id_token_or_another_issuers_token_is_no_access_token() {
    let op = provider(&[]);
    let c = client(&op).await;
    let (mut b, _) = signed_in(&op).await;
    let g = grant(&op, &mut b, &c).await;
    let (header, claims) = decode(g["access_token"].as_str().unwrap());
    let kid = header["kid"].as_str().unwrap();
    assert_invalid_token(&userinfo(&op, g["id_token"].as_str().unwrap()).await, "the ID token");
    assert_invalid_token(&userinfo(&op, &es256(&op.key, kid, "JWT", &claims)).await, "typ JWT");
    let mut foreign = claims.clone();
    foreign["iss"] = json!("https://evil.example");
    assert_invalid_token(&userinfo(&op, &es256(&op.key, kid, "at+jwt", &foreign)).await, "another issuer");
    let mut unknown = claims.clone();
    unknown["jti"] = json!("0123456789abcdef0123456789abcdef");
    assert_invalid_token(&userinfo(&op, &es256(&op.key, kid, "at+jwt", &unknown)).await, "no record");
}

// ---------------------------------------------------------------- client authentication

#[tokio::test]
async fn client_authentication_refuses_wrong_secrets_two_ways_at_once_public_client_credentials_and_revoked_clients() {
    let op = provider(&[]);
    let machine = client_with(&op, true, false, &[GrantType::ClientCredentials]).await;
    let cc = [("grant_type", "client_credentials")];
    let ok = op.oauth_fn(machine.call("/oauth/token", &cc)).await;
    assert_eq!(ok.status, 200, "control: {}", ok.raw_body);
    assert!(ok.body.get("refresh_token").is_none() && ok.body.get("id_token").is_none());

    let invalid_client = |r: &TestReply, what: &str| {
        assert_eq!((r.status, r.body["error"].as_str()), (401, Some("invalid_client")), "{what}: {}", r.raw_body);
        assert!(r.header("www-authenticate").is_some_and(|h| h.starts_with("Basic")), "{what}");
        assert!(r.body.get("access_token").is_none(), "{what}");
    };
    // A wrong secret, by Basic and by the body; none at all; a public-style call naming it.
    let wrong = Client { secret: Some("not-the-secret".into()), ..machine.clone() };
    invalid_client(&op.oauth_fn(wrong.call("/oauth/token", &cc)).await, "wrong secret (Basic)");
    let secret = machine.secret.clone().unwrap();
    let mut tail = secret.clone();
    tail.pop();
    for (what, s) in [("wrong secret (post)", "not-the-secret"), ("one character short", tail.as_str()), ("empty", "")]
    {
        let fields = [cc[0], ("client_id", machine.id.as_str()), ("client_secret", s)];
        invalid_client(&op.oauth_fn(form(TestCall::new("POST", "/oauth/token"), &fields)).await, what);
    }
    let no_secret = [cc[0], ("client_id", machine.id.as_str())];
    invalid_client(&op.oauth_fn(form(TestCall::new("POST", "/oauth/token"), &no_secret)).await, "no secret");

    // Basic and client_secret_post at once (even both right) are refused.
    let both = [cc[0], ("client_id", machine.id.as_str()), ("client_secret", secret.as_str())];
    let call = form(TestCall::new("POST", "/oauth/token"), &both).header("authorization", &machine.basic());
    let r = op.oauth_fn(call).await;
    assert!(r.status == 400 || r.status == 401, "{}", r.raw_body);
    assert!(r.body.get("access_token").is_none(), "{}", r.raw_body);
    let other = client_with(&op, true, false, &[GrantType::ClientCredentials]).await;
    let mixed = [cc[0], ("client_id", other.id.as_str())];
    let r = op
        .oauth_fn(form(TestCall::new("POST", "/oauth/token"), &mixed).header("authorization", &machine.basic()))
        .await;
    assert!(r.body.get("access_token").is_none(), "Basic for one client, client_id of another: {}", r.raw_body);

    // A public client cannot use client_credentials: not registrable, and refused when planted.
    let reg = ClientRegistration {
        name: "SPA".into(),
        redirect_uris: vec![CB.into()],
        post_logout_redirect_uris: vec![],
        grant_types: vec![GrantType::AuthorizationCode, GrantType::ClientCredentials],
        scopes: vec!["reports:read".into()],
        confidential: false,
        first_party: false,
    };
    assert!(op.t.app.oauth().create_client(reg).await.is_err(), "registering it is refused");
    let spa = client_with(&op, false, false, &[GrantType::AuthorizationCode]).await;
    let r = op.oauth_fn(spa.call("/oauth/token", &cc)).await;
    assert_eq!(r.status, 400, "{}", r.raw_body);
    assert_eq!(r.body["error"], "unauthorized_client");
    let planted = OAuthClient {
        id: ClientId::parse("planted-spa").unwrap(),
        name: "Planted".into(),
        secret_hash: None,
        previous_secret: None,
        redirect_uris: vec![CB.into()],
        post_logout_redirect_uris: vec![],
        grant_types: vec![GrantType::AuthorizationCode, GrantType::ClientCredentials],
        scopes: vec!["reports:read".into()],
        first_party: false,
        revoked: false,
        dynamic: false,
        created_at: op.t.env.clock_now(),
    };
    op.t.env.stores.oauth_clients.create(&planted).await.unwrap();
    let planted = Client { id: "planted-spa".into(), secret: None };
    let r = op.oauth_fn(planted.call("/oauth/token", &cc)).await;
    assert_eq!(r.status, 400, "a public client with client_credentials in its record: {}", r.raw_body);
    assert!(r.body.get("access_token").is_none());

    // A revoked client, with its right secret.
    let id = ClientId::parse(&machine.id).unwrap();
    assert!(op.t.env.stores.oauth_clients.revoke(&id).await.unwrap());
    invalid_client(&op.oauth_fn(machine.call("/oauth/token", &cc)).await, "revoked");
    let r =
        op.oauth_fn(machine.call("/oauth/introspect", &[("token", ok.body["access_token"].as_str().unwrap())])).await;
    invalid_client(&r, "revoked, introspecting");
}

#[tokio::test]
async fn introspection_of_another_clients_token_is_inactive() {
    let op = provider(&[]);
    let owner = client(&op).await;
    let snoop = client(&op).await;
    let (mut b, _) = signed_in(&op).await;
    let g = grant(&op, &mut b, &owner).await;
    for k in ["access_token", "refresh_token"] {
        let token = g[k].as_str().unwrap();
        assert!(active(&op, &owner, token).await, "control: the owner sees its {k}");
        let r = introspect(&op, &snoop, token).await;
        assert_eq!(r.body, json!({ "active": false }), "{k}: {}", r.raw_body);
    }
    // A public client may not introspect at all.
    let spa = client_with(&op, false, false, &[GrantType::AuthorizationCode]).await;
    let r = op.oauth_fn(spa.call("/oauth/introspect", &[("token", g["access_token"].as_str().unwrap())])).await;
    assert_eq!(r.status, 401, "{}", r.raw_body);
    assert!(r.body.get("active").is_none());
}

// ---------------------------------------------------------------- limits and registration

#[tokio::test]
async fn the_token_endpoint_is_rate_limited_before_client_authentication() {
    let op = provider(&[("GATEHOUSE_OAUTH_PER_CLIENT_PER_MINUTE", "3")]);
    let machine = client_with(&op, true, false, &[GrantType::ClientCredentials]).await;
    let cc = [("grant_type", "client_credentials")];
    // Three calls no client authentication admits (a wrong secret, an unknown client, nothing).
    let wrong = Client { secret: Some("guess".into()), ..machine.clone() };
    assert_eq!(op.oauth_fn(wrong.call("/oauth/token", &cc)).await.status, 401);
    let unknown = Client { id: "nobody-at-all".into(), secret: Some("guess".into()) };
    assert_eq!(op.oauth_fn(unknown.call("/oauth/token", &cc)).await.status, 401);
    assert_eq!(op.oauth_fn(form(TestCall::new("POST", "/oauth/token"), &cc)).await.status, 401);
    // The fourth, the right secret at last: 429 slow_down with Retry-After.
    for call in [machine.call("/oauth/token", &cc), wrong.call("/oauth/token", &cc)] {
        let r = op.oauth_fn(call).await;
        assert_eq!((r.status, r.body["error"].as_str()), (429, Some("slow_down")), "{}", r.raw_body);
        assert!(r.header("retry-after").and_then(|s| s.parse::<u64>().ok()).is_some_and(|s| s > 0 && s <= 60));
        assert!(r.body.get("access_token").is_none());
    }
    // Another address has its own count; a minute later this one is free again.
    let elsewhere = op.oauth_fn(machine.call("/oauth/token", &cc).from_ip("198.51.100.9")).await;
    assert_eq!(elsewhere.status, 200, "{}", elsewhere.raw_body);
    op.t.env.clock.advance(chrono::Duration::seconds(61));
    assert_eq!(op.oauth_fn(machine.call("/oauth/token", &cc)).await.status, 200);
}

/// Registrations are counted per address as sign-ups are; this test makes more than the default
/// allows an hour.
const ROOMY: &[(&str, &str)] = &[("GATEHOUSE_REGISTER_PER_CLIENT_PER_HOUR", "1000")];

async fn register(op: &Op, bearer: Option<&str>, metadata: Value) -> TestReply {
    let call = TestCall::new("POST", "/oauth/register").json(metadata);
    op.oauth_fn(match bearer {
        Some(t) => call.bearer(t),
        None => call,
    })
    .await
}

fn public_metadata(redirect: &str) -> Value {
    json!({ "client_name": "MCP tool", "redirect_uris": [redirect], "token_endpoint_auth_method": "none" })
}

#[tokio::test]
async fn dynamic_registration_is_closed_by_default_and_guarded_when_open() {
    // Closed: 403, whatever is sent, and discovery names no endpoint.
    let closed = provider(ROOMY);
    for bearer in [None, Some("anything")] {
        let r = register(&closed, bearer, public_metadata(CB)).await;
        assert!(r.status == 403 || (bearer.is_some() && r.status == 401), "{bearer:?}: {}", r.raw_body);
        assert!(r.body.get("client_id").is_none());
    }
    assert_eq!(register(&closed, None, public_metadata(CB)).await.status, 403);
    let meta = closed.oauth_fn(TestCall::new("GET", "/.well-known/openid-configuration")).await;
    assert!(meta.body.get("registration_endpoint").is_none(), "{}", meta.raw_body);

    // With an initial access token: a wrong one is 401; the right one registers.
    let guarded = provider(&[ROOMY, &[("GATEHOUSE_OAUTH_REGISTRATION_TOKEN", "initial-access-token-1234")]].concat());
    for wrong in ["initial-access-token-123", "initial-access-token-12345", "x"] {
        let r = register(&guarded, Some(wrong), json!({ "client_name": "X", "redirect_uris": [CB] })).await;
        assert_eq!(r.status, 401, "{wrong}: {}", r.raw_body);
        assert!(r.body.get("client_id").is_none());
    }
    let r = register(&guarded, None, public_metadata(CB)).await;
    assert_eq!(r.status, 403, "no token, not open: {}", r.raw_body);
    let r = register(&guarded, Some("initial-access-token-1234"), json!({ "client_name": "X", "redirect_uris": [CB] }))
        .await;
    assert_eq!(r.status, 201, "{}", r.raw_body);
    assert!(r.body["client_secret"].is_string() && r.body["first_party"] == false, "{}", r.raw_body);

    // Open registration: public clients only, and never a dangerous redirect URI.
    let open = provider(&[ROOMY, &[("GATEHOUSE_OAUTH_OPEN_REGISTRATION", "true")]].concat());
    for confidential in [
        json!({ "client_name": "X", "redirect_uris": [CB] }),
        json!({ "client_name": "X", "redirect_uris": [CB], "token_endpoint_auth_method": "client_secret_post" }),
        json!({ "client_name": "X", "grant_types": ["client_credentials"], "token_endpoint_auth_method": "client_secret_basic" }),
    ] {
        let r = register(&open, None, confidential.clone()).await;
        assert_eq!(r.status, 400, "{confidential}: {}", r.raw_body);
        assert!(r.body.get("client_secret").is_none() && r.body.get("client_id").is_none());
    }
    assert_eq!(register(&open, Some("made-up"), public_metadata(CB)).await.status, 401, "a token nobody configured");
    for bad in [
        "javascript:alert(document.cookie)",
        "JavaScript://app.example/%0aalert(1)",
        "data:text/html,<script>alert(1)</script>",
        "http://app.example/cb",
        "https://app.example/cb#x",
        "vbscript:msgbox(1)",
        "file:///etc/passwd",
    ] {
        let r = register(&open, None, public_metadata(bad)).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.raw_body);
        assert_eq!(r.body["error"], "invalid_redirect_uri", "{bad}");
    }
    let r = register(&open, None, public_metadata(CB)).await;
    assert_eq!(r.status, 201, "{}", r.raw_body);
    assert!(r.body.get("client_secret").is_none() && r.body["token_endpoint_auth_method"] == "none");
    assert_eq!(r.body["first_party"], false);
}

// ---------------------------------------------------------------- caching

#[tokio::test]
async fn token_endpoint_answers_carry_cache_control_no_store() {
    let op = provider(&[]);
    let c = client(&op).await;
    let machine = client_with(&op, true, false, &[GrantType::ClientCredentials]).await;
    let (mut b, _) = signed_in(&op).await;
    let p = pkce();
    let code = code_for(&op, &mut b, &c, &p).await;
    let answers = [
        exchange(&op, &c, &code, CB, &p.verifier).await,
        exchange(&op, &c, &code, CB, &p.verifier).await,
        op.oauth_fn(machine.call("/oauth/token", &[("grant_type", "client_credentials")])).await,
        op.oauth_fn(machine.call("/oauth/token", &[("grant_type", "password")])).await,
        op.oauth_fn(form(TestCall::new("POST", "/oauth/token"), &[("grant_type", "client_credentials")])).await,
    ];
    assert_eq!(answers.iter().map(|r| r.status).collect::<Vec<_>>(), [200, 400, 200, 400, 401]);
    for r in &answers {
        assert_eq!(r.header("cache-control"), Some("no-store"), "{}", r.raw_body);
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
}

// ---------------------------------------------------------------- the Lambda authorizer

/// `token-check` takes the provider's access tokens too: a live one holding the route's ability
/// passes (context `credential: oauth`), one without it, an ID token, a revoked one, and one
/// whose grant a password change ended are denied; a client's own token passes no route that
/// wants a verified address (it names no user).
#[tokio::test]
async fn the_authorizer_takes_live_access_tokens_by_their_scopes_and_sees_revocation_at_once() {
    let op = provider(&[]);
    let c = client(&op).await;
    let table = gatehouse_token_check::RouteAbilities::parse(
        "GET /reports=reports:read,GET /admin=reports:write,GET /mine=verified",
    )
    .expect("a route table");
    let (mut b, _) = signed_in(&op).await;
    let p = pkce();
    let asked = with(params(&c, &p), "scope", Some("openid reports:read"));
    let code = code_with(&op, &mut b, &asked).await;
    let r = exchange(&op, &c, &code, CB, &p.verifier).await;
    assert_eq!(r.status, 200, "{}", r.raw_body);
    let access = r.body["access_token"].as_str().expect("access token").to_owned();
    let id_token = r.body["id_token"].as_str().expect("id token").to_owned();
    let allowed = op.t.authorize(&table, "GET /reports", Some(&access), None).await;
    assert!(allowed.is_authorized);
    assert_eq!(allowed.context["credential"], "oauth");
    assert_eq!(allowed.context["client_id"], c.id.as_str());
    assert!(!op.t.authorize(&table, "GET /admin", Some(&access), None).await.is_authorized, "a scope it lacks");
    assert!(!op.t.authorize(&table, "GET /reports", Some(&id_token), None).await.is_authorized, "an ID token");
    // Revoked through its client: denied on the very next request (API Gateway's own JWT
    // authorizer would let it through until it expires).
    let revoked = op.oauth_fn(c.call("/oauth/revoke", &[("token", access.as_str())])).await;
    assert_eq!(revoked.status, 200);
    assert!(!op.t.authorize(&table, "GET /reports", Some(&access), None).await.is_authorized, "revoked");

    // A client's own token: no user, so no verified address.
    let m2m = client_with(&op, true, true, &[GrantType::ClientCredentials]).await;
    let r =
        op.oauth_fn(m2m.call("/oauth/token", &[("grant_type", "client_credentials"), ("scope", "reports:read")])).await;
    assert_eq!(r.status, 200, "{}", r.raw_body);
    let m2m_token = r.body["access_token"].as_str().expect("token").to_owned();
    let ok = op.t.authorize(&table, "GET /reports", Some(&m2m_token), None).await;
    assert!(ok.is_authorized);
    assert_eq!(ok.context["user_id"], Value::Null);
    assert!(!op.t.authorize(&table, "GET /mine", Some(&m2m_token), None).await.is_authorized, "verified needs a user");
}

// ---------------------------------------------------------------- the review's attacks

/// A third party's token reaches only routes that name a scope it holds: none on a route that
/// requires nothing (a user's own credential passes those), nor one requiring only `verified`.
#[tokio::test]
async fn the_authorizer_refuses_oauth_tokens_on_routes_that_name_no_scope() {
    let op = provider(&[]);
    let c = client(&op).await;
    let table = gatehouse_token_check::RouteAbilities::parse("GET /reports=reports:read,GET /mine=verified")
        .expect("a route table");
    let (mut b, _) = signed_in(&op).await;
    let g = grant(&op, &mut b, &c).await;
    let access = g["access_token"].as_str().expect("token");
    for route in ["GET /anything-else", "GET /mine"] {
        assert!(!op.t.authorize(&table, route, Some(access), None).await.is_authorized, "{route}");
    }
}

/// `*` (every ability of a personal access token) is never a client's scope, and a registrant
/// chooses no ability the operator did not offer (GATEHOUSE_OAUTH_REGISTRATION_SCOPES).
#[tokio::test]
async fn no_client_holds_star_and_registration_offers_only_the_listed_abilities() {
    let op = provider(
        &[
            ROOMY,
            &[
                ("GATEHOUSE_OAUTH_REGISTRATION_TOKEN", "initial-access-token-1234"),
                ("GATEHOUSE_OAUTH_REGISTRATION_SCOPES", "reports:read"),
            ],
        ]
        .concat(),
    );
    let star = ClientRegistration {
        name: "Star".into(),
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        grant_types: vec![GrantType::ClientCredentials],
        scopes: vec!["*".into()],
        confidential: true,
        first_party: false,
    };
    assert!(op.t.app.oauth().create_client(star).await.is_err(), "an operator cannot make one either");
    let ask = |scope: &str| json!({ "client_name": "M2M", "grant_types": ["client_credentials"], "scope": scope, "token_endpoint_auth_method": "client_secret_post" });
    for scope in ["*", "openid *", "billing:refund", "reports:*"] {
        let r = register(&op, Some("initial-access-token-1234"), ask(scope)).await;
        assert_eq!(r.status, 400, "{scope}: {}", r.raw_body);
        assert_eq!(r.body["error"], "invalid_client_metadata", "{scope}");
    }
    let r = register(&op, Some("initial-access-token-1234"), ask("reports:read")).await;
    assert_eq!(r.status, 201, "a listed ability: {}", r.raw_body);
}

/// A session opened by a cross-app handoff is never the source of a grant (it would outlive the
/// token it came from); a session of the user's own is.
#[tokio::test]
async fn a_session_opened_from_another_app_grants_nothing() {
    let op = provider(&[]);
    let c = first_party(&op).await;
    let cookie = op.t.registered(&crate::support::unique("ann")).await;
    let (_, id) = cookie.split_once('=').expect("name=value");
    let mut session = op.t.app.access.session(id).await.unwrap().expect("a live session");
    let user = session.user_id.clone().expect("a user's");
    let oauth = op.t.app.oauth();
    let req = oauth.authorization_request(&params(&c, &pkce())).await.expect("a good request");
    assert!(oauth.approve(&user, &session, &req, false).await.is_ok(), "the user's own session");
    session.parent = Some(gatehouse::tables::credential_ref::CredentialRef::handoff("a-handoff-hash"));
    let refused = oauth.approve(&user, &session, &req, false).await;
    assert!(matches!(refused, Err(gatehouse::services::oauth::OAuthError::AccessDenied(_))), "{refused:?}");
}

/// No `offline_access`, no refresh token: the grant ends with its access token.
#[tokio::test]
async fn without_offline_access_there_is_no_refresh_token() {
    let op = provider(&[]);
    let c = first_party(&op).await;
    let (mut b, _) = signed_in(&op).await;
    let p = pkce();
    let code = code_with(&op, &mut b, &with(params(&c, &p), "scope", Some("openid email"))).await;
    let r = exchange(&op, &c, &code, CB, &p.verifier).await;
    assert_eq!(r.status, 200, "{}", r.raw_body);
    assert!(r.body.get("refresh_token").is_none(), "{}", r.raw_body);
    assert!(r.body["access_token"].is_string() && r.body["id_token"].is_string());
}

/// A leaked spent code presented by another client changes nothing; its own client's replay
/// still ends the grant.
#[tokio::test]
async fn a_spent_code_replayed_by_another_client_revokes_nothing() {
    let op = provider(&[]);
    let (a, other) = (client(&op).await, client(&op).await);
    let (mut b, _) = signed_in(&op).await;
    let p = pkce();
    let code = code_for(&op, &mut b, &a, &p).await;
    let first = exchange(&op, &a, &code, CB, &p.verifier).await;
    assert_eq!(first.status, 200, "{}", first.raw_body);
    let access = first.body["access_token"].as_str().expect("token");
    assert_invalid_grant(&exchange(&op, &other, &code, CB, &p.verifier).await, "another client's replay");
    assert!(active(&op, &a, access).await, "the grant lives on");
    assert_invalid_grant(&exchange(&op, &a, &code, CB, &p.verifier).await, "its own client's replay");
    assert!(!active(&op, &a, access).await, "its own client's replay ends it");
}

/// A client anyone may register (RFC 7591) gets its errors on the page: this site does not bounce
/// a browser to its registrant's address unasked. Names that are not what they look like, and
/// redirect URIs with a backslash, are refused.
#[tokio::test]
async fn a_registered_clients_errors_stay_on_the_page_and_its_metadata_cannot_disguise_it() {
    let op = provider(&[ROOMY, &[("GATEHOUSE_OAUTH_OPEN_REGISTRATION", "true")]].concat());
    let r = register(&op, None, public_metadata("https://evil.example/landing")).await;
    assert_eq!(r.status, 201, "{}", r.raw_body);
    let c = Client { id: r.body["client_id"].as_str().unwrap().to_owned(), secret: None };
    let mut anonymous = Browser::default();
    let p = pkce();
    let mut request = with(params(&c, &p), "redirect_uri", Some("https://evil.example/landing"));
    request = with(request, "scope", Some("openid"));
    for (what, bad) in [
        ("plain PKCE", with(request.clone(), "code_challenge_method", Some("plain"))),
        ("a token response", with(request.clone(), "response_type", Some("token"))),
        ("prompt=none signed out", with(request.clone(), "prompt", Some("none"))),
    ] {
        let r = anonymous.get(&op, &authorize_path(&bad)).await;
        assert!(r.header("location").is_none_or(|l| !l.contains("evil.example")), "{what}: {}", location(&r));
        assert!(r.status == 400 || r.status == 200, "{what}: {} {}", r.status, r.raw_body);
    }
    for name in ["Acme \u{202e}elgooG\u{202c}", "Zero\u{200b}width", "Bell\u{7}"] {
        let r = register(
            &op,
            None,
            json!({ "client_name": name, "redirect_uris": [CB], "token_endpoint_auth_method": "none" }),
        )
        .await;
        assert_eq!(r.status, 400, "{name:?}: {}", r.raw_body);
    }
    let r = register(&op, None, public_metadata("https://evil.example\\.accounts.example.com/cb")).await;
    assert_eq!(r.status, 400, "a backslash: {}", r.raw_body);
}

/// The grant checks the user's credentials version itself: a version that moved (a reset whose
/// revocation has not landed yet) ends the refresh and the access token at once.
#[tokio::test]
async fn a_grant_below_the_users_credentials_version_is_dead_before_its_revocation_lands() {
    use gatehouse::tables::users::CredentialChange;
    let op = provider(&[]);
    let c = client(&op).await;
    let (mut b, email) = signed_in(&op).await;
    let g = grant(&op, &mut b, &c).await;
    let stores = &op.t.app.stores;
    let user = stores.users.find_by_email(&gatehouse::Email::parse(&email).unwrap()).await.unwrap().unwrap();
    // The version moves; nothing is revoked (as when the revocation failed and waits in the queue).
    let moved = CredentialChange { revoke: true, ..CredentialChange::default() };
    assert!(
        stores
            .users
            .change_credentials(&user.id, user.credentials_version, moved, stores.clock.now())
            .await
            .unwrap()
            .is_some()
    );
    let access = g["access_token"].as_str().unwrap();
    assert_invalid_token(&userinfo(&op, access).await, "userinfo");
    assert!(!active(&op, &c, access).await, "introspection");
    assert_invalid_grant(&refresh(&op, &c, g["refresh_token"].as_str().unwrap()).await, "refresh");
}

/// `prompt=login` asks for a sign-in made after the request: visiting the account page with the
/// old session does not satisfy it.
#[tokio::test]
async fn prompt_login_is_not_satisfied_by_the_session_that_was_already_there() {
    let op = provider(&[]);
    let c = first_party(&op).await;
    let (mut b, _) = signed_in(&op).await;
    op.t.env.clock.advance(chrono::Duration::minutes(1));
    let r = b.get(&op, &authorize_path(&with(params(&c, &pkce()), "prompt", Some("login")))).await;
    assert_eq!((r.status, location(&r)), (303, "/account/sign-in?notice=oauth-sign-in"), "{}", r.raw_body);
    op.t.env.clock.advance(chrono::Duration::seconds(5));
    let back = b.get(&op, "/account").await;
    assert_eq!(back.status, 303);
    assert!(
        location(&back).starts_with("/account/oauth/authorize?") && location(&back).contains("max_age="),
        "{}",
        location(&back)
    );
    let again = b.get(&op, location(&back)).await;
    assert_eq!(
        (again.status, location(&again)),
        (303, "/account/sign-in?notice=oauth-sign-in"),
        "the old session is too old"
    );
}

/// "Connected apps": the app is listed, and disconnecting it ends its grants and its consent.
#[tokio::test]
async fn a_connected_app_is_listed_and_disconnected() {
    let op = provider(&[]);
    let c = client(&op).await;
    let email = crate::support::unique("ann");
    let cookie = op.t.signed_up(&email).await;
    let mut b = Browser::with_session(&cookie);
    let g = grant_with_remembered_consent(&op, &mut b, &c).await;
    let listed = op.t.login_fn(TestCall::new("GET", "/user/oauth-apps").cookie(Some(&cookie))).await;
    assert_eq!(listed.status, 200, "{}", listed.raw_body);
    assert_eq!(listed.body["apps"][0]["client_id"], c.id.as_str(), "{}", listed.raw_body);
    assert_eq!(listed.body["apps"][0]["grants"], 1, "one grant: {}", listed.raw_body);
    let gone = TestCall::new("DELETE", &format!("/user/oauth-apps/{}", c.id))
        .cookie(Some(&cookie))
        .header("sec-fetch-site", "same-origin");
    let r = op.t.login_fn(gone.clone()).await;
    assert_eq!(r.status, 204, "{}", r.raw_body);
    assert_grant_dead(&op, &c, &g, "disconnected").await;
    let again = b.get(&op, &authorize_path(&params(&c, &pkce()))).await;
    assert!(is_consent_page(&again), "consent asked again");
    assert_eq!(op.t.login_fn(gone).await.status, 204, "a retry is told it happened");
    let listed = op.t.login_fn(TestCall::new("GET", "/user/oauth-apps").cookie(Some(&cookie))).await;
    assert_eq!(listed.body["apps"], json!([]), "{}", listed.raw_body);
    // Announced (#32): the consent given, and its end with the scopes it covered, once (the
    // retry announces nothing more).
    let id = op.t.user(Some(&cookie)).await.body["user"]["id"].as_str().unwrap().to_owned();
    let events = crate::events_credentials::events_of(&op.t, &id).await;
    let consents: Vec<Value> = events
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .filter(|e| e["type"].as_str().is_some_and(|t| t.starts_with("oauth.")))
        .map(|e| json!([e["type"], e["data"]]))
        .collect();
    let scopes = consents.first().map(|c| c[1]["scopes"].clone()).unwrap_or_default();
    assert!(scopes.as_array().is_some_and(|s| !s.is_empty()), "{consents:?}");
    let granted = json!(["oauth.consent_granted", { "client_id": c.id.as_str(), "scopes": scopes }]);
    let revoked = json!(["oauth.consent_revoked", { "client_id": c.id.as_str(), "scopes": scopes }]);
    assert_eq!(consents, vec![granted.clone(), revoked.clone()]);
    // Approved and disconnected again the same day (the first end's mark still there, the
    // consent's key the same): both announced again.
    let g = grant_with_remembered_consent(&op, &mut b, &c).await;
    let gone = TestCall::new("DELETE", &format!("/user/oauth-apps/{}", c.id))
        .cookie(Some(&cookie))
        .header("sec-fetch-site", "same-origin");
    assert_eq!(op.t.login_fn(gone).await.status, 204);
    assert_grant_dead(&op, &c, &g, "disconnected again").await;
    let events = crate::events_credentials::events_of(&op.t, &id).await;
    let kinds: Vec<Value> = events
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .filter(|e| e["type"].as_str().is_some_and(|t| t.starts_with("oauth.")))
        .map(|e| json!([e["type"], e["data"]]))
        .collect();
    assert_eq!(kinds, vec![granted.clone(), revoked.clone(), granted, revoked]);
}

/// The authorizer, given forged tokens built on a live one's claims: `alg: none`, HS256 keyed
/// with the public key, another ES256 key under our `kid`, a widened scope re-signed by a
/// stranger: each denied, while the genuine one passes.
#[tokio::test]
async fn the_authorizer_denies_every_forgery_of_a_live_token() {
    let op = provider(&[]);
    let c = client(&op).await;
    let table = gatehouse_token_check::RouteAbilities::parse("GET /reports=reports:read,GET /admin=reports:write")
        .expect("a route table");
    let (mut b, _) = signed_in(&op).await;
    let p = pkce();
    let code = code_with(&op, &mut b, &with(params(&c, &p), "scope", Some("openid reports:read"))).await;
    let r = exchange(&op, &c, &code, CB, &p.verifier).await;
    let genuine = r.body["access_token"].as_str().expect("token").to_owned();
    assert!(op.t.authorize(&table, "GET /reports", Some(&genuine), None).await.is_authorized);
    let (header, mut claims) = decode(&genuine);
    let kid = header["kid"].as_str().expect("kid").to_owned();
    claims["scope"] = json!("openid reports:read reports:write");
    let body = b64json(&claims);
    let none = format!("{}.{body}.", b64json(&json!({ "alg": "none", "typ": "at+jwt", "kid": kid })));
    let hs_input = format!("{}.{body}", b64json(&json!({ "alg": "HS256", "typ": "at+jwt", "kid": kid })));
    let public = serde_json::to_vec(op.t.app.signing_keys.as_ref().expect("keys").configured()).expect("jwk");
    let hs256 = format!("{hs_input}.{}", URL_SAFE_NO_PAD.encode(hmac_sha256(&public, hs_input.as_bytes())));
    let stranger = es256(&LocalKey::generate(), &kid, "at+jwt", &claims);
    for (what, forged) in [("alg none", none), ("HS256 with the public key", hs256), ("another key, our kid", stranger)]
    {
        for route in ["GET /reports", "GET /admin"] {
            assert!(!op.t.authorize(&table, route, Some(&forged), None).await.is_authorized, "{what} on {route}");
        }
    }
}

/// A code whose first exchange spent it and then failed before its grant was issued (answered
/// 503) is finished by its client's retry; once a grant was issued, every further exchange is a
/// replay that ends it, and a replay after that revocation issues nothing new.
#[tokio::test]
async fn a_retry_of_an_exchange_that_issued_nothing_finishes_it_and_a_replay_never_resurrects() {
    let op = provider(&[]);
    let c = client(&op).await;
    let (mut b, _) = signed_in(&op).await;
    let p = pkce();
    let code = code_for(&op, &mut b, &c, &p).await;
    // The first attempt: the code spent, then the function died (nothing issued).
    let hash = gatehouse::tables::oauth_auth_codes::AuthCode::parse(&code).expect("a code").hash();
    let stores = &op.t.app.stores;
    let spent = stores.oauth_auth_codes.spend(&hash, stores.clock.now()).await.unwrap();
    assert!(matches!(spent, gatehouse::tables::oauth_auth_codes::CodeSpend::Spent(_)));
    let retried = exchange(&op, &c, &code, CB, &p.verifier).await;
    assert_eq!(retried.status, 200, "the retry finishes: {}", retried.raw_body);
    let access = retried.body["access_token"].as_str().expect("token").to_owned();
    assert!(active(&op, &c, &access).await);
    // A wrong verifier on a retry is a replay: it ends what was issued.
    let other = pkce();
    assert_invalid_grant(&exchange(&op, &c, &code, CB, &other.verifier).await, "a replay with another verifier");
    assert!(!active(&op, &c, &access).await, "the replay ended the grant");
    // And a replay after the revocation does not bring a grant back.
    assert_invalid_grant(&exchange(&op, &c, &code, CB, &p.verifier).await, "after the revocation");
    assert!(!active(&op, &c, &access).await);
}

// ---------------------------------------------------------------- the before_token hook (#32)

/// The `before_token` hook adds claims to the access token (and the Lambda authorizer hands them
/// to the backend), may not set the token's own, and can refuse a token (`access_denied`).
#[tokio::test]
async fn the_before_token_hook_adds_claims_or_refuses_and_cannot_set_the_token_s_own() {
    use gatehouse_tests::receiver::{Receiver, Reply};
    let hook = Receiver::start().await;
    let op = provider(&[("GATEHOUSE_HOOK_BEFORE_TOKEN", hook.url.as_str()), ("GATEHOUSE_HOOK_TIMEOUT_MS", "300")]);
    let machine = client_with(&op, true, false, &[GrantType::ClientCredentials]).await;
    let cc = [("grant_type", "client_credentials"), ("scope", "reports:read")];
    hook.reply(&[
        Reply::Body(r#"{"decision":"allow","claims":{"tenant":"acme","plan":"gold"}}"#.into()),
        Reply::Body(r#"{"decision":"allow","claims":{"sub":"someone-else"}}"#.into()),
        Reply::Body(r#"{"decision":"deny","message":"This client is suspended."}"#.into()),
    ]);
    let r = op.oauth_fn(machine.call("/oauth/token", &cc)).await;
    assert_eq!(r.status, 200, "{}", r.raw_body);
    let token = r.body["access_token"].as_str().unwrap().to_owned();
    let (_, claims) = decode(&token);
    assert_eq!((claims["tenant"].as_str(), claims["plan"].as_str()), (Some("acme"), Some("gold")));
    assert_eq!(claims["sub"], machine.id.as_str(), "the token's own claims are its own");
    let asked = hook.received()[0].json();
    assert_eq!(
        (asked["hook"].as_str(), asked["grant_type"].as_str()),
        (Some("before_token"), Some("client_credentials"))
    );
    assert_eq!(asked["client_id"], machine.id.as_str());
    assert_eq!(asked["scopes"], json!(["reports:read"]));
    // The authorizer passes the added claims on.
    let routes = gatehouse_token_check::RouteAbilities::parse("GET /reports=reports:read").unwrap();
    let seen = op.t.authorize(&routes, "GET /reports", Some(&token), None).await;
    assert!(seen.is_authorized);
    assert_eq!(seen.context["claims"]["tenant"], "acme");
    // A hook setting `sub` is a broken hook: the default policy refuses the token.
    let r = op.oauth_fn(machine.call("/oauth/token", &cc)).await;
    assert_eq!((r.status, r.body["error"].as_str()), (400, Some("access_denied")), "{}", r.raw_body);
    let r = op.oauth_fn(machine.call("/oauth/token", &cc)).await;
    assert_eq!(r.body["error"], "access_denied", "{}", r.raw_body);
    assert_eq!(r.body["error_description"], "This client is suspended.");
    assert!(r.body.get("access_token").is_none());
}
