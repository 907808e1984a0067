//! Social sign-in as an attacker tries it: flows finished by another browser, replayed or raced;
//! ID tokens forged every usual way; a provider that mixes issuers up, answers garbage, errors or
//! too much; accounts taken over through an address (the auto-link rules), through a link flow
//! finished by someone else, or kept through a password change; the second factor skipped; the
//! last way in removed; hostile names. Each test fails when its defence is gone.
//!
//! The login function runs in process over the in-memory stores; the providers are a fake
//! ([`FakeIdp`], injected as `App::fetch`) that serves discovery, keys (ES256), a token endpoint
//! that checks the code once, the redirect URI, the client's authentication and PKCE, userinfo,
//! and GitHub's token, user and emails endpoints, counting every call. The test plays the person
//! at the provider: it reads `state`, `nonce` and the PKCE challenge from the address the start
//! route gave, asks the fake for a code that answers with the claims it chose, and brings the
//! code back with the browser's cookies.

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse::Email;
use gatehouse::services::federation::fetch::Field;
use gatehouse::services::federation::{Fetch, FetchError};
use gatehouse::tables::identities::{Identity, IdentityStore, Linked};
use gatehouse::tables::sessions::SessionId;
use gatehouse::tables::users::{User, UserId};
use gatehouse::values::error::StoreResult;
use gatehouse::values::jwt::{LocalKey, assemble};
use gatehouse::values::secret::pkce_s256;
use gatehouse_tests::TestEnv;
use gatehouse_tests::http::{SESSION_COOKIE, TestApp, TestCall, TestReply};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

const PW: &str = "correct horse battery staple 42";
const NEW_PW: &str = "a brand new and long passphrase 7";
const BINDING: &str = "__Host-gatehouse_federation";

const IDP: &str = "https://idp.example.test";
const IDP_DISCOVERY: &str = "https://idp.example.test/.well-known/openid-configuration";
const IDP_AUTHORIZE: &str = "https://idp.example.test/authorize";
const IDP_TOKEN: &str = "https://idp.example.test/token";
const IDP_JWKS: &str = "https://idp.example.test/jwks";
const IDP_USERINFO: &str = "https://idp.example.test/userinfo";
const IDP_CLIENT: &str = "gatehouse-at-idp";
const IDP_SECRET: &str = "idp-client-secret-3f9a1c0e5b7d2468ace13579bdf02468";

const LOOSE: &str = "https://loose.example.test";
const LOOSE_DISCOVERY: &str = "https://loose.example.test/.well-known/openid-configuration";
const LOOSE_AUTHORIZE: &str = "https://loose.example.test/authorize";
const LOOSE_TOKEN: &str = "https://loose.example.test/token";
const LOOSE_JWKS: &str = "https://loose.example.test/jwks";
const LOOSE_USERINFO: &str = "https://loose.example.test/userinfo";
const LOOSE_CLIENT: &str = "gatehouse-at-loose";
const LOOSE_SECRET: &str = "loose-client-secret-0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e";

const GH_AUTHORIZE: &str = "https://github.example.test/login/oauth/authorize";
const GH_TOKEN: &str = "https://github.example.test/login/oauth/access_token";
const GH_API: &str = "https://api.github.example.test";
const GH_USER: &str = "https://api.github.example.test/user";
const GH_EMAILS: &str = "https://api.github.example.test/user/emails";
const GH_CLIENT: &str = "Iv1.gatehouse0123";
const GH_SECRET: &str = "github-client-secret-00112233445566778899aabbccddeeff";

/// Cheap hashing: these tests are about the relying party, not argon2's cost.
const FAST: &[(&str, &str)] = &[("GATEHOUSE_ARGON2_MEMORY_KIB", "64"), ("GATEHOUSE_ARGON2_ITERATIONS", "1")];

/// `idp` trusted for addresses (and saying so with RFC 9207's `iss`), `loose` not (another
/// issuer, `client_secret_post`), `github` GitHub's flow (untrusted).
const PROVIDERS: &[(&str, &str)] = &[
    ("GATEHOUSE_FEDERATION_PROVIDERS", "idp,loose,github"),
    ("GATEHOUSE_FEDERATION_IDP_ISSUER", IDP),
    ("GATEHOUSE_FEDERATION_IDP_CLIENT_ID", IDP_CLIENT),
    ("GATEHOUSE_FEDERATION_IDP_CLIENT_SECRET", IDP_SECRET),
    ("GATEHOUSE_FEDERATION_IDP_TRUST_EMAIL", "true"),
    ("GATEHOUSE_FEDERATION_IDP_NAME", "Example IdP"),
    ("GATEHOUSE_FEDERATION_LOOSE_ISSUER", LOOSE),
    ("GATEHOUSE_FEDERATION_LOOSE_CLIENT_ID", LOOSE_CLIENT),
    ("GATEHOUSE_FEDERATION_LOOSE_CLIENT_SECRET", LOOSE_SECRET),
    ("GATEHOUSE_FEDERATION_LOOSE_TOKEN_AUTH", "post"),
    ("GATEHOUSE_FEDERATION_GITHUB_KIND", "github"),
    ("GATEHOUSE_FEDERATION_GITHUB_CLIENT_ID", GH_CLIENT),
    ("GATEHOUSE_FEDERATION_GITHUB_CLIENT_SECRET", GH_SECRET),
    ("GATEHOUSE_FEDERATION_GITHUB_AUTHORIZE_URL", GH_AUTHORIZE),
    ("GATEHOUSE_FEDERATION_GITHUB_TOKEN_URL", GH_TOKEN),
    ("GATEHOUSE_FEDERATION_GITHUB_API_URL", GH_API),
];

// ---------------------------------------------------------------- the fake provider

/// What an endpoint of the fake answers instead of its own answer.
#[derive(Clone, Debug)]
enum Fault {
    /// A status other than 2xx, with a JSON body or none.
    Status(u16, Option<Value>),
    /// Not JSON, or more than the client reads (what the HTTPS client makes of both).
    Unreadable,
    Unreachable,
    /// This JSON instead.
    Json(Value),
}

impl Fault {
    fn answer(&self) -> Result<Value, FetchError> {
        match self {
            Self::Status(status, body) => Err(FetchError::Status { status: *status, body: body.clone() }),
            Self::Unreadable => Err(FetchError::Unreadable),
            Self::Unreachable => Err(FetchError::Unreachable("connection refused".into())),
            Self::Json(v) => Ok(v.clone()),
        }
    }
}

/// A client registered at one of the fake's token endpoints.
struct Registered {
    client_id: &'static str,
    secret: &'static str,
    /// `client_secret_basic`, else the id and secret in the form.
    basic: bool,
    /// GitHub answers a refused code with 200 and an `error`.
    github: bool,
}

fn registered(token_url: &str) -> Option<Registered> {
    match token_url {
        IDP_TOKEN => Some(Registered { client_id: IDP_CLIENT, secret: IDP_SECRET, basic: true, github: false }),
        LOOSE_TOKEN => Some(Registered { client_id: LOOSE_CLIENT, secret: LOOSE_SECRET, basic: false, github: false }),
        GH_TOKEN => Some(Registered { client_id: GH_CLIENT, secret: GH_SECRET, basic: false, github: true }),
        _ => None,
    }
}

fn token_url_of(authorize: &str) -> Option<&'static str> {
    match authorize {
        IDP_AUTHORIZE => Some(IDP_TOKEN),
        LOOSE_AUTHORIZE => Some(LOOSE_TOKEN),
        GH_AUTHORIZE => Some(GH_TOKEN),
        _ => None,
    }
}

fn discovery(base: &str, iss_parameter: bool) -> Value {
    json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "userinfo_endpoint": format!("{base}/userinfo"),
        "jwks_uri": format!("{base}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": iss_parameter,
    })
}

/// A code the fake issued: what it was issued for, and the token endpoint's answer to it.
struct Pending {
    token_url: String,
    client_id: String,
    redirect_uri: String,
    challenge: String,
    answer: Value,
}

#[derive(Default)]
struct World {
    codes: HashMap<String, Pending>,
    /// Userinfo by access token.
    userinfo: HashMap<String, Value>,
    /// GitHub's user and emails by access token.
    github: HashMap<String, (Value, Value)>,
    /// Calls by URL (without a query).
    calls: HashMap<String, usize>,
    faults: HashMap<String, Fault>,
    /// The JWK set published at each `jwks_uri`.
    keys: HashMap<String, Vec<Value>>,
}

/// Two OpenID providers and GitHub, as far as a relying party can tell.
struct FakeIdp {
    idp_key: LocalKey,
    loose_key: LocalKey,
    world: Mutex<World>,
}

fn jwk_value(key: &LocalKey) -> Value {
    serde_json::to_value(key.jwk()).expect("a JWK")
}

fn random() -> String {
    gatehouse::values::secret::random_token_256()
}

impl FakeIdp {
    fn new() -> Self {
        let (idp_key, loose_key) = (LocalKey::generate(), LocalKey::generate());
        let mut world = World::default();
        world.keys.insert(IDP_JWKS.into(), vec![jwk_value(&idp_key)]);
        world.keys.insert(LOOSE_JWKS.into(), vec![jwk_value(&loose_key)]);
        Self { idp_key, loose_key, world: Mutex::new(world) }
    }

    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn calls(&self, url: &str) -> usize {
        self.world().calls.get(url).copied().unwrap_or(0)
    }

    fn fail(&self, url: &str, fault: Fault) {
        self.world().faults.insert(url.to_owned(), fault);
    }

    fn publish(&self, jwks_url: &str, keys: Vec<Value>) {
        self.world().keys.insert(jwks_url.to_owned(), keys);
    }

    /// The person approves the authorization request `url` (as the start route gave it): the
    /// request is checked as a provider checks it, and a code is issued whose exchange answers
    /// `answer`.
    fn authorize(&self, url: &str, answer: Value) -> String {
        let (endpoint, q) = split_url(url);
        let token_url = token_url_of(endpoint).unwrap_or_else(|| panic!("not an authorization endpoint: {url}"));
        let client = registered(token_url).expect("a registered client");
        assert_eq!(q.get("response_type").map(String::as_str), Some("code"), "{url}");
        assert_eq!(q.get("client_id").map(String::as_str), Some(client.client_id), "{url}");
        assert_eq!(q.get("code_challenge_method").map(String::as_str), Some("S256"), "PKCE S256: {url}");
        let challenge = q.get("code_challenge").expect("a PKCE challenge").to_owned();
        assert_eq!(challenge.len(), 43, "{url}");
        assert!(q.get("state").is_some_and(|s| s.len() >= 32), "a state of 256 bits: {url}");
        if !client.github {
            assert!(q.get("nonce").is_some_and(|n| n.len() >= 32), "a nonce: {url}");
            assert!(q.get("scope").is_some_and(|s| s.split(' ').any(|s| s == "openid")), "{url}");
        }
        let redirect_uri = q.get("redirect_uri").expect("a redirect URI").to_owned();
        let code = random();
        let pending = Pending {
            token_url: token_url.to_owned(),
            client_id: client.client_id.to_owned(),
            redirect_uri,
            challenge,
            answer,
        };
        self.world().codes.insert(code.clone(), pending);
        code
    }

    /// An OpenID token endpoint's answer carrying `id_token`; its access token reads `userinfo`.
    fn oidc_answer(&self, id_token: &str, userinfo: Option<Value>) -> Value {
        let access = random();
        if let Some(info) = userinfo {
            self.world().userinfo.insert(access.clone(), info);
        }
        json!({ "access_token": access, "token_type": "Bearer", "expires_in": 3600, "id_token": id_token })
    }

    /// GitHub's token endpoint's answer; its access token reads `user` and `emails`.
    fn github_answer(&self, user: Value, emails: Value) -> Value {
        let access = format!("gho_{}", &random()[..36]);
        self.world().github.insert(access.clone(), (user, emails));
        json!({ "access_token": access, "token_type": "bearer", "scope": "read:user,user:email" })
    }
}

/// An address's endpoint and its query.
fn split_url(url: &str) -> (&str, BTreeMap<String, String>) {
    let (endpoint, q) = url.split_once('?').unwrap_or((url, ""));
    (endpoint, form_urlencoded::parse(q.as_bytes()).into_owned().collect())
}

/// How a token endpoint refuses: GitHub with 200 and an `error`, the others with a status.
fn refused(client: &Registered, status: u16, error: &str) -> Result<Value, FetchError> {
    if client.github {
        return Ok(json!({ "error": error, "error_description": "refused by the fake" }));
    }
    Err(FetchError::Status { status, body: Some(json!({ "error": error })) })
}

#[async_trait]
impl Fetch for FakeIdp {
    async fn get_json(&self, url: &str, bearer: Option<&str>) -> Result<Value, FetchError> {
        let mut w = self.world();
        *w.calls.entry(url.to_owned()).or_default() += 1;
        if let Some(fault) = w.faults.get(url) {
            return fault.answer();
        }
        let unauthorized = || FetchError::Status { status: 401, body: Some(json!({ "message": "Bad credentials" })) };
        match url {
            IDP_DISCOVERY => Ok(discovery(IDP, true)),
            LOOSE_DISCOVERY => Ok(discovery(LOOSE, false)),
            IDP_JWKS | LOOSE_JWKS => Ok(json!({ "keys": w.keys.get(url).cloned().unwrap_or_default() })),
            IDP_USERINFO | LOOSE_USERINFO => bearer.and_then(|b| w.userinfo.get(b)).cloned().ok_or_else(unauthorized),
            GH_USER => bearer.and_then(|b| w.github.get(b)).map(|(u, _)| u.clone()).ok_or_else(unauthorized),
            GH_EMAILS => bearer.and_then(|b| w.github.get(b)).map(|(_, e)| e.clone()).ok_or_else(unauthorized),
            _ => Err(FetchError::Unreachable(format!("no such host: {url}"))),
        }
    }

    async fn post_form(&self, url: &str, fields: &[Field], basic: Option<(&str, &str)>) -> Result<Value, FetchError> {
        let mut w = self.world();
        *w.calls.entry(url.to_owned()).or_default() += 1;
        if let Some(fault) = w.faults.get(url) {
            return fault.answer();
        }
        let client = registered(url).ok_or_else(|| FetchError::Unreachable(format!("no such host: {url}")))?;
        let form: HashMap<&str, &str> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let authenticated = if client.basic {
            basic == Some((client.client_id, client.secret)) && !form.contains_key("client_secret")
        } else {
            basic.is_none()
                && form.get("client_id") == Some(&client.client_id)
                && form.get("client_secret") == Some(&client.secret)
        };
        if !authenticated {
            return refused(&client, 401, "invalid_client");
        }
        if !client.github && form.get("grant_type") != Some(&"authorization_code") {
            return refused(&client, 400, "unsupported_grant_type");
        }
        // A code is spent by its first exchange, whatever else is wrong with it.
        let Some(pending) = form.get("code").and_then(|c| w.codes.remove(*c)) else {
            return refused(&client, 400, if client.github { "bad_verification_code" } else { "invalid_grant" });
        };
        let verifier_ok = form.get("code_verifier").is_some_and(|v| pkce_s256(v) == pending.challenge);
        if pending.token_url != url
            || pending.client_id != client.client_id
            || form.get("redirect_uri") != Some(&pending.redirect_uri.as_str())
            || !verifier_ok
        {
            return refused(&client, 400, if client.github { "bad_verification_code" } else { "invalid_grant" });
        }
        Ok(pending.answer)
    }
}

// ---------------------------------------------------------------- the harness

/// A deployment with the three providers, answered by the fake.
struct Fed {
    t: TestApp,
    idp: Arc<FakeIdp>,
}

fn fed(extra: &[(&str, &str)]) -> Fed {
    fed_over(TestEnv::memory(), extra)
}

fn fed_over(env: TestEnv, extra: &[(&str, &str)]) -> Fed {
    let mut t = TestApp::with(env, &[FAST, PROVIDERS, extra].concat());
    let idp = Arc::new(FakeIdp::new());
    t.app.fetch = Some(idp.clone());
    Fed { t, idp }
}

/// A browser: its own address, a cookie jar, and same-origin requests as the app's page sends.
#[derive(Clone, Debug)]
struct Browser {
    jar: BTreeMap<String, String>,
    ip: String,
}

static NEXT_IP: AtomicU32 = AtomicU32::new(1);

impl Browser {
    /// A new browser, from an address of its own (each client's limits are its own).
    fn new() -> Self {
        let n = NEXT_IP.fetch_add(1, Ordering::Relaxed);
        Self { jar: BTreeMap::new(), ip: format!("198.51.{}.{}", (n / 250) % 250, n % 250 + 1) }
    }

    /// A browser holding the session cookie `cookie` (`name=value`).
    fn with_session(cookie: &str) -> Self {
        let mut b = Self::new();
        let (k, v) = cookie.split_once('=').expect("name=value");
        b.jar.insert(k.to_owned(), v.to_owned());
        b
    }

    fn keep(&mut self, r: &TestReply) {
        r.keep_cookies(&mut self.jar);
    }

    fn dress(&self, call: TestCall) -> TestCall {
        let call = call.from_ip(&self.ip).header("sec-fetch-site", "same-origin");
        if self.jar.is_empty() {
            return call;
        }
        let header: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
        call.header("cookie", &header.join("; "))
    }

    fn session(&self) -> Option<String> {
        self.jar.get(SESSION_COOKIE).map(|v| format!("{SESSION_COOKIE}={v}"))
    }

    fn binding(&self) -> Option<&String> {
        self.jar.get(BINDING)
    }

    /// This browser's cookies but `name`'s.
    fn without(&self, name: &str) -> Self {
        let mut b = self.clone();
        b.jar.remove(name);
        b
    }
}

/// A begun flow, as the provider's authorization address tells it.
#[derive(Clone, Debug)]
struct Flow {
    provider: String,
    url: String,
    state: String,
    nonce: String,
}

impl Flow {
    fn of(provider: &str, url: &str) -> Self {
        let (_, q) = split_url(url);
        Self {
            provider: provider.to_owned(),
            url: url.to_owned(),
            state: q.get("state").cloned().unwrap_or_default(),
            nonce: q.get("nonce").cloned().unwrap_or_default(),
        }
    }
}

/// The person at a provider.
#[derive(Clone, Debug)]
struct Person {
    /// Numeric, so that GitHub takes it too.
    sub: String,
    email: Option<String>,
    verified: bool,
    name: Option<String>,
}

fn person(email: &str) -> Person {
    let n = u64::from_le_bytes(gatehouse::values::secret::random_bytes::<8>()) >> 12;
    Person { sub: n.to_string(), email: Some(email.to_owned()), verified: true, name: Some("Ann Example".into()) }
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// `claims` under `header`, signed ES256 by `key` (whatever the header says).
fn jws(header: &Value, claims: &Value, key: &LocalKey) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    assemble(&input, &key.sign(input.as_bytes()))
}

fn es256(key: &LocalKey, claims: &Value) -> String {
    jws(&json!({ "alg": "ES256", "kid": key.jwk().kid, "typ": "JWT" }), claims, key)
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

fn assert_refused(r: &TestReply, status: u16, code: &str, what: &str) {
    assert_eq!((r.status, r.error_code()), (status, Some(code)), "{what}: {}", r.raw_body);
    assert!(r.session_cookie().is_none(), "{what}: no session");
    assert!(r.body.get("challenge").is_none(), "{what}: no challenge");
}

impl Fed {
    fn now(&self) -> i64 {
        self.t.env.clock_now().timestamp()
    }

    async fn call(&self, b: &mut Browser, call: TestCall) -> TestReply {
        let r = self.t.login_fn(b.dress(call)).await;
        b.keep(&r);
        r
    }

    async fn begin(&self, b: &mut Browser, provider: &str) -> TestReply {
        let call = TestCall::new("POST", &format!("/auth/providers/{provider}/start")).json(json!({}));
        self.call(b, call).await
    }

    async fn start(&self, b: &mut Browser, provider: &str) -> Flow {
        let r = self.begin(b, provider).await;
        assert_eq!(r.status, 200, "start: {}", r.raw_body);
        assert!(b.binding().is_some(), "the browser holds the binding cookie");
        Flow::of(provider, r.body["url"].as_str().expect("a url"))
    }

    async fn begin_link(&self, b: &mut Browser, provider: &str) -> TestReply {
        let call = TestCall::new("POST", &format!("/auth/providers/{provider}/link")).json(json!({}));
        self.call(b, call).await
    }

    async fn start_link(&self, b: &mut Browser, provider: &str) -> Flow {
        let r = self.begin_link(b, provider).await;
        assert_eq!(r.status, 200, "link start: {}", r.raw_body);
        Flow::of(provider, r.body["url"].as_str().expect("a url"))
    }

    fn issuer(provider: &str) -> (&'static str, &'static str) {
        match provider {
            "idp" => (IDP, IDP_CLIENT),
            "loose" => (LOOSE, LOOSE_CLIENT),
            other => panic!("no OpenID provider {other}"),
        }
    }

    /// The ID token claims the provider would sign for `p` in flow `f`.
    fn claims(&self, f: &Flow, p: &Person) -> Value {
        let (iss, aud) = Self::issuer(&f.provider);
        let now = self.now();
        let mut c = json!({
            "iss": iss, "aud": aud, "sub": p.sub, "iat": now, "exp": now + 300, "nonce": f.nonce,
            "email_verified": p.verified,
        });
        if let Some(e) = &p.email {
            c["email"] = json!(e);
        }
        if let Some(n) = &p.name {
            c["name"] = json!(n);
        }
        c
    }

    fn key_of(&self, provider: &str) -> &LocalKey {
        if provider == "idp" { &self.idp.idp_key } else { &self.idp.loose_key }
    }

    /// The code the provider issues for `p` in flow `f`, its answer genuine.
    fn code(&self, f: &Flow, p: &Person) -> String {
        if f.provider == "github" {
            let id: u64 = p.sub.parse().expect("a numeric id");
            let user = json!({ "id": id, "login": format!("octo{id}"), "name": p.name });
            let emails = match &p.email {
                Some(e) => json!([{ "email": e, "primary": true, "verified": p.verified, "visibility": "private" }]),
                None => json!([]),
            };
            return self.idp.authorize(&f.url, self.idp.github_answer(user, emails));
        }
        let claims = self.claims(f, p);
        let token = es256(self.key_of(&f.provider), &claims);
        // Userinfo says what the ID token says (read when the token carries no address).
        let info = json!({ "sub": p.sub, "email": claims.get("email"), "email_verified": p.verified, "name": p.name });
        self.idp.authorize(&f.url, self.idp.oidc_answer(&token, Some(info)))
    }

    /// A code whose exchange answers `id_token`.
    fn code_answering(&self, f: &Flow, id_token: &str) -> String {
        self.idp.authorize(&f.url, self.idp.oidc_answer(id_token, None))
    }

    /// The callback as the browser brings it back (with RFC 9207's `iss` from `idp`, which says it
    /// sends one).
    async fn finish(&self, b: &mut Browser, f: &Flow, code: &str) -> TestReply {
        let mut body = json!({ "code": code, "state": f.state });
        if f.provider == "idp" {
            body["iss"] = json!(IDP);
        }
        self.finish_with(b, &f.provider, body).await
    }

    async fn finish_with(&self, b: &mut Browser, provider: &str, body: Value) -> TestReply {
        let call = TestCall::new("POST", &format!("/auth/providers/{provider}/callback")).json(body);
        self.call(b, call).await
    }

    /// The whole flow: begun in `b`, approved at `provider` as `p`, brought back.
    async fn sign_in(&self, b: &mut Browser, provider: &str, p: &Person) -> TestReply {
        let f = self.start(b, provider).await;
        let code = self.code(&f, p);
        self.finish(b, &f, &code).await
    }

    async fn user(&self, email: &str) -> Option<User> {
        let email = Email::parse(email).expect("an address");
        self.t.app.stores.users.find_by_email(&email).await.expect("users")
    }

    async fn identities_of(&self, user: &UserId) -> Vec<Identity> {
        self.t.app.stores.identities.for_user(user).await.expect("identities")
    }

    async fn identity(&self, provider: &str, p: &Person) -> Option<Identity> {
        self.t.app.stores.identities.find(provider, &p.sub).await.expect("identities")
    }

    /// `GET /user/identities` as `b` sees it.
    async fn listed(&self, b: &mut Browser) -> Vec<Value> {
        let r = self.call(b, TestCall::new("GET", "/user/identities")).await;
        assert_eq!(r.status, 200, "{}", r.raw_body);
        r.body["identities"].as_array().cloned().unwrap_or_default()
    }

    /// The session of `b` confirmed now, as `POST /user/confirm-by-email/verify` confirms an
    /// account without a password.
    async fn confirm(&self, b: &Browser) {
        let cookie = b.jar.get(SESSION_COOKIE).expect("a session");
        let key = SessionId::parse(cookie).expect("a session id").key();
        let now = self.t.env.clock_now();
        assert!(self.t.app.stores.sessions.confirm_password(&key, now).await.expect("sessions"));
    }

    /// A user registered with a password, its session's password confirmed: its browser.
    async fn password_user(&self, email: &str) -> Browser {
        Browser::with_session(&self.t.signed_up(email).await)
    }

    async fn mark_verified(&self, email: &str) {
        let user = self.user(email).await.expect("a user");
        let now = self.t.env.clock_now();
        assert!(self.t.app.stores.users.mark_email_verified(&user.id, &user.email, now).await.expect("users"));
    }

    /// Connects `p` at `provider` to the user signed in in `b` (a link flow, finished there).
    async fn link(&self, b: &mut Browser, provider: &str, p: &Person) -> TestReply {
        let f = self.start_link(b, provider).await;
        let code = self.code(&f, p);
        self.finish(b, &f, &code).await
    }
}

/// The mails the queued jobs send (security notices included), to `to`.
async fn mails_to(t: &TestApp, to: &str) -> Vec<(String, String)> {
    let all = crate::support::mails_with_notices(t).await;
    all.into_iter().filter(|m| m.to == to).map(|m| (m.subject, m.text)).collect()
}

// ---------------------------------------------------------------- sign-up and sign-in

#[tokio::test]
async fn a_trusted_provider_signs_up_a_verified_account_and_then_signs_the_same_person_in() {
    let h = fed(&[]);
    let email = crate::support::unique("ann");
    let ann = person(&email);

    let mut b = Browser::new();
    let r = h.sign_in(&mut b, "idp", &ann).await;
    assert_eq!(r.status, 200, "{}", r.raw_body);
    assert!(r.session_cookie().is_some(), "signed in");
    assert_eq!(r.body["user"]["email"], json!(email));
    assert!(r.body["user"]["email_verified_at"].is_string(), "a trusted provider's verified address: {}", r.raw_body);
    let id = r.body["user"]["id"].as_str().expect("an id").to_owned();
    let user = h.user(&email).await.expect("the account");
    assert!(!user.has_password(), "made by the provider: no password");
    assert_eq!(h.t.user(b.session().as_deref()).await.body["user"]["id"], json!(id));

    let listed = h.listed(&mut b).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        (listed[0]["provider"].as_str(), listed[0]["provider_name"].as_str()),
        (Some("idp"), Some("Example IdP"))
    );
    assert_eq!(listed[0]["email"], json!(email));
    assert!(!listed[0].to_string().contains(&ann.sub), "the handle is opaque: {listed:?}");

    // Again, from another browser: the same account, not a second one.
    let mut other = Browser::new();
    let again = h.sign_in(&mut other, "idp", &Person { name: Some("Renamed".into()), ..ann.clone() }).await;
    assert_eq!(again.status, 200, "{}", again.raw_body);
    assert_eq!(again.body["user"]["id"], json!(id), "the same user");
    assert_eq!(h.identities_of(&user.id).await.len(), 1);
    assert_eq!(h.idp.calls(IDP_TOKEN), 2, "one exchange per flow");
    assert!(
        !mails_to(&h.t, &email).await.iter().any(|(s, _)| s == "Verify your email address"),
        "a trusted provider's address needs no verification"
    );
}

#[tokio::test]
async fn an_untrusted_provider_signs_up_an_unverified_account_and_mails_the_verification() {
    let h = fed(&[]);
    let email = crate::support::unique("bob");
    let r = h.sign_in(&mut Browser::new(), "loose", &person(&email)).await;
    assert_eq!(r.status, 200, "{}", r.raw_body);
    assert!(r.session_cookie().is_some());
    assert_eq!(r.body["user"]["email_verified_at"], Value::Null, "an untrusted provider verifies nothing");
    let mails = mails_to(&h.t, &email).await;
    assert!(mails.iter().any(|(s, _)| s == "Verify your email address"), "{mails:?}");
}

#[tokio::test]
async fn the_provider_list_is_public_and_names_no_secret_and_unknown_providers_are_404() {
    let h = fed(&[]);
    let r = h.t.login_fn(TestCall::new("GET", "/auth/providers")).await;
    assert_eq!(r.status, 200, "{}", r.raw_body);
    let ids: Vec<&str> = r.body["providers"].as_array().unwrap().iter().filter_map(|p| p["id"].as_str()).collect();
    assert_eq!(ids, ["idp", "loose", "github"]);
    for secret in [IDP_SECRET, LOOSE_SECRET, GH_SECRET, IDP_CLIENT] {
        assert!(!r.raw_body.contains(secret), "{}", r.raw_body);
    }
    let mut b = Browser::new();
    assert_refused(&h.begin(&mut b, "nope").await, 404, "provider_unknown", "start");
    let cb = h.finish_with(&mut b, "nope", json!({ "code": "c", "state": random() })).await;
    assert_refused(&cb, 404, "provider_unknown", "callback");

    // A page elsewhere cannot begin a flow in this browser.
    let cross = TestCall::new("POST", "/auth/providers/idp/start")
        .json(json!({}))
        .header("sec-fetch-site", "cross-site")
        .header("origin", "https://evil.example");
    let r = h.t.login_fn(cross).await;
    assert_eq!((r.status, r.error_code()), (403, Some("csrf")), "{}", r.raw_body);
    assert!(r.set_cookies().is_empty());
}

// ---------------------------------------------------------------- the auto-link rules

/// Only a trusted provider's verified address joins an existing account whose own address is
/// verified; every other combination is told to sign in and link, and links nothing.
#[tokio::test]
async fn an_existing_address_joins_only_when_trusted_asserted_and_verified_here() {
    let h = fed(&[]);
    for trusted in [true, false] {
        for asserted in [true, false] {
            for local_verified in [true, false] {
                let what = format!("trusted={trusted} asserted={asserted} local_verified={local_verified}");
                let email = crate::support::unique("carol");
                h.t.registered(&email).await;
                if local_verified {
                    h.mark_verified(&email).await;
                }
                let user = h.user(&email).await.expect("the account");
                let provider = if trusted { "idp" } else { "loose" };
                let p = Person { verified: asserted, ..person(&email) };
                let r = h.sign_in(&mut Browser::new(), provider, &p).await;
                if trusted && asserted && local_verified {
                    assert_eq!(r.status, 200, "{what}: {}", r.raw_body);
                    assert_eq!(r.body["user"]["id"], json!(user.id.as_str()), "{what}: the existing account");
                    assert_eq!(h.identities_of(&user.id).await.len(), 1, "{what}");
                    let mails = mails_to(&h.t, &email).await;
                    assert!(
                        mails.iter().any(|(s, t)| s == "A sign-in provider was connected" && t.contains("Example IdP")),
                        "{what}: the owner is told: {mails:?}"
                    );
                } else {
                    // An address the provider does not vouch for is refused before it is looked up
                    // (no answer says whether an account holds it); a vouched one that may not join
                    // is told to link from the account.
                    if asserted {
                        assert_refused(&r, 409, "link_required", &what);
                    } else {
                        assert_refused(&r, 403, "email_unverified_at_provider", &what);
                    }
                    assert!(h.identities_of(&user.id).await.is_empty(), "{what}: nothing linked");
                    assert!(h.identity(provider, &p).await.is_none(), "{what}: the identity is nobody's");
                }
                assert_eq!(h.user(&email).await.map(|u| u.id), Some(user.id), "{what}: one account");
            }
        }
    }
}

#[tokio::test]
async fn a_new_account_needs_an_address_the_provider_says_is_verified() {
    let h = fed(&[]);
    for provider in ["idp", "loose", "github"] {
        let email = crate::support::unique("dan");
        let cases = [
            ("no address", Person { email: None, ..person(&email) }),
            ("unverified", Person { verified: false, ..person(&email) }),
            ("not an address", Person { email: Some("dan at example".into()), ..person(&email) }),
            ("a header in it", Person { email: Some(format!("{email}\r\nBcc: eve@example.com")), ..person(&email) }),
        ];
        for (what, p) in cases {
            let what = format!("{provider}: {what}");
            let r = h.sign_in(&mut Browser::new(), provider, &p).await;
            assert_refused(&r, 403, "email_unverified_at_provider", &what);
            assert!(h.user(&email).await.is_none(), "{what}: no account");
            assert!(h.identity(provider, &p).await.is_none(), "{what}: no identity");
        }
    }
}

#[tokio::test]
async fn sign_up_can_be_turned_off() {
    let h = fed(&[("GATEHOUSE_FEDERATION_SIGNUP", "false")]);
    let email = crate::support::unique("erin");
    let r = h.sign_in(&mut Browser::new(), "idp", &person(&email)).await;
    assert_refused(&r, 403, "signup_disabled", "sign-up off");
    assert!(h.user(&email).await.is_none());
}

// ---------------------------------------------------------------- the flow's binding

#[tokio::test]
async fn a_state_brought_back_by_another_browser_is_refused_and_the_right_browser_still_finishes() {
    let h = fed(&[]);
    let email = crate::support::unique("fay");
    let fay = person(&email);
    let mut mine = Browser::new();
    let f = h.start(&mut mine, "idp").await;
    let code = h.code(&f, &fay);

    // A browser with no binding, one with a binding of its own (from a flow it began), and this
    // browser's state at another provider's callback.
    let mut bare = Browser::new();
    let r = h.finish(&mut bare, &f, &code).await;
    assert_refused(&r, 400, "federation_state_invalid", "no binding cookie");
    let mut other = Browser::new();
    h.start(&mut other, "idp").await;
    let r = h.finish(&mut other, &f, &code).await;
    assert_refused(&r, 400, "federation_state_invalid", "another browser's binding");
    let mut forged = Browser::new();
    forged.jar.insert(BINDING.into(), random());
    let r = h.finish(&mut forged, &f, &code).await;
    assert_refused(&r, 400, "federation_state_invalid", "a made-up binding");
    let r = h.finish_with(&mut mine.clone(), "loose", json!({ "code": code, "state": f.state })).await;
    assert_refused(&r, 400, "federation_state_invalid", "another provider's callback");
    let r = h.finish_with(&mut mine.clone(), "idp", json!({ "code": code, "state": random(), "iss": IDP })).await;
    assert_refused(&r, 400, "federation_state_invalid", "a made-up state");
    assert_eq!(h.idp.calls(IDP_TOKEN), 0, "no refused callback spent the code");
    assert!(h.user(&email).await.is_none());

    let r = h.finish(&mut mine, &f, &code).await;
    assert_eq!(r.status, 200, "the browser that began it: {}", r.raw_body);
    assert!(r.session_cookie().is_some());
}

#[tokio::test]
async fn a_replayed_callback_and_an_expired_flow_are_refused() {
    let h = fed(&[]);
    let email = crate::support::unique("gil");
    let gil = person(&email);
    let mut b = Browser::new();
    let f = h.start(&mut b, "idp").await;
    let code = h.code(&f, &gil);
    let first = h.finish(&mut b, &f, &code).await;
    assert_eq!(first.status, 200, "{}", first.raw_body);
    let again = h.finish(&mut b.without(SESSION_COOKIE), &f, &code).await;
    assert_refused(&again, 400, "federation_state_invalid", "the same callback again");
    assert_eq!(h.idp.calls(IDP_TOKEN), 1, "the replay reached no provider");

    let late = h.start(&mut b, "idp").await;
    let code = h.code(&late, &gil);
    h.t.env.clock.advance(chrono::Duration::minutes(11));
    let r = h.finish(&mut b.without(SESSION_COOKIE), &late, &code).await;
    assert_refused(&r, 400, "federation_state_invalid", "a flow past its ten minutes");
    assert_eq!(h.idp.calls(IDP_TOKEN), 1);
}

#[tokio::test]
async fn eight_racing_callbacks_of_one_flow_make_exactly_one_session() {
    let h = fed(&[]);
    let email = crate::support::unique("hal");
    let mut b = Browser::new();
    let f = h.start(&mut b, "idp").await;
    let code = h.code(&f, &person(&email));
    let body = json!({ "code": code, "state": f.state, "iss": IDP });
    let call = || b.dress(TestCall::new("POST", "/auth/providers/idp/callback").json(body.clone()));
    let replies: Vec<TestReply> = futures_all((0..8).map(|_| h.t.login_fn(call()))).await;
    let won: Vec<&TestReply> = replies.iter().filter(|r| r.status == 200).collect();
    assert_eq!(won.len(), 1, "{:?}", replies.iter().map(|r| (r.status, r.raw_body.clone())).collect::<Vec<_>>());
    assert!(won[0].session_cookie().is_some());
    for r in replies.iter().filter(|r| r.status != 200) {
        assert_refused(r, 400, "federation_state_invalid", "a racing copy");
    }
    assert_eq!(h.idp.calls(IDP_TOKEN), 1, "one exchange");
    let user = h.user(&email).await.expect("one account");
    let sessions = h.t.app.stores.sessions.list_for_user(&user.id).await.unwrap();
    assert_eq!(sessions.len(), 1, "exactly one session");
}

/// Runs the futures at once (on this task), their answers in order.
async fn futures_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let handles: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = handles.iter().map(|_| None).collect();
    let mut pending: Vec<(usize, std::pin::Pin<Box<F>>)> = handles.into_iter().enumerate().collect();
    std::future::poll_fn(|cx| {
        pending.retain_mut(|(i, f)| match f.as_mut().poll(cx) {
            std::task::Poll::Ready(v) => {
                out[*i] = Some(v);
                false
            }
            std::task::Poll::Pending => true,
        });
        if pending.is_empty() { std::task::Poll::Ready(()) } else { std::task::Poll::Pending }
    })
    .await;
    out.into_iter().map(|v| v.expect("every future finished")).collect()
}

// ---------------------------------------------------------------- forged ID tokens

type Forgery = fn(&Fed, &Flow, Value) -> String;

/// A forgery that holds something of its own (a key).
type BoxedForgery = Box<dyn Fn(&Fed, &Flow, Value) -> String>;

/// A named forgery: the genuine claims of the flow in, the token the provider answers out.
fn forgery(what: &'static str, forge: Forgery) -> (&'static str, Forgery) {
    (what, forge)
}

#[tokio::test]
async fn forged_id_tokens_get_502_and_make_no_account() {
    let h = fed(&[]);
    let other_key = LocalKey::generate();
    let forgeries: Vec<(&str, Forgery)> = vec![
        forgery("a wrong nonce", |h, _, mut c| {
            c["nonce"] = json!(random());
            es256(&h.idp.idp_key, &c)
        }),
        forgery("no nonce", |h, _, mut c| {
            c.as_object_mut().unwrap().remove("nonce");
            es256(&h.idp.idp_key, &c)
        }),
        forgery("another audience", |h, _, mut c| {
            c["aud"] = json!("someone-else");
            es256(&h.idp.idp_key, &c)
        }),
        forgery("another issuer in the token", |h, _, mut c| {
            c["iss"] = json!(LOOSE);
            es256(&h.idp.idp_key, &c)
        }),
        forgery("the issuer with a trailing slash", |h, _, mut c| {
            c["iss"] = json!(format!("{IDP}/"));
            es256(&h.idp.idp_key, &c)
        }),
        forgery("expired", |h, _, mut c| {
            c["exp"] = json!(h.now() - 120);
            c["iat"] = json!(h.now() - 420);
            es256(&h.idp.idp_key, &c)
        }),
        forgery("no expiry", |h, _, mut c| {
            c.as_object_mut().unwrap().remove("exp");
            es256(&h.idp.idp_key, &c)
        }),
        forgery("issued in the future", |h, _, mut c| {
            c["iat"] = json!(h.now() + 3600);
            c["exp"] = json!(h.now() + 7200);
            es256(&h.idp.idp_key, &c)
        }),
        forgery("not valid before an hour from now", |h, _, mut c| {
            c["nbf"] = json!(h.now() + 3600);
            es256(&h.idp.idp_key, &c)
        }),
        forgery("alg none", |h, _, c| {
            format!("{}.{}.", b64(&json!({ "alg": "none", "kid": h.idp.idp_key.jwk().kid })), b64(&c))
        }),
        forgery("alg None, unsigned", |_, _, c| format!("{}.{}.", b64(&json!({ "alg": "None" })), b64(&c))),
        forgery("HS256 keyed with the client secret", |h, _, c| {
            let input = format!("{}.{}", b64(&json!({ "alg": "HS256", "kid": h.idp.idp_key.jwk().kid })), b64(&c));
            let sig = hmac_sha256(IDP_SECRET.as_bytes(), input.as_bytes());
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
        }),
        forgery("HS256 keyed with the public key's x", |h, _, c| {
            let input = format!("{}.{}", b64(&json!({ "alg": "HS256" })), b64(&c));
            let sig = hmac_sha256(h.idp.idp_key.jwk().x.as_bytes(), input.as_bytes());
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
        }),
        forgery("ES384 claimed over the ES256 key", |h, _, c| {
            jws(&json!({ "alg": "ES384", "kid": h.idp.idp_key.jwk().kid }), &c, &h.idp.idp_key)
        }),
        forgery("RS256 claimed over the ES256 key", |h, _, c| {
            jws(&json!({ "alg": "RS256", "kid": h.idp.idp_key.jwk().kid }), &c, &h.idp.idp_key)
        }),
        forgery("an unknown kid", |h, _, c| {
            jws(&json!({ "alg": "ES256", "kid": "not-published" }), &c, &h.idp.idp_key)
        }),
        forgery("the other provider's key and token", |h, _, mut c| {
            c["iss"] = json!(LOOSE);
            c["aud"] = json!(LOOSE_CLIENT);
            es256(&h.idp.loose_key, &c)
        }),
        forgery("claims changed after signing", |h, _, c| {
            let genuine = es256(&h.idp.idp_key, &c);
            let mut parts: Vec<String> = genuine.split('.').map(str::to_owned).collect();
            let mut changed = c.clone();
            changed["email"] = json!("eve@example.com");
            parts[1] = b64(&changed);
            parts.join(".")
        }),
        forgery("the signature cut off", |h, _, c| {
            let genuine = es256(&h.idp.idp_key, &c);
            genuine.rsplit_once('.').map(|(input, _)| format!("{input}.")).unwrap_or_default()
        }),
        forgery("two audiences, no azp", |h, _, mut c| {
            c["aud"] = json!([IDP_CLIENT, "someone-else"]);
            es256(&h.idp.idp_key, &c)
        }),
        forgery("two audiences, azp someone else", |h, _, mut c| {
            c["aud"] = json!([IDP_CLIENT, "someone-else"]);
            c["azp"] = json!("someone-else");
            es256(&h.idp.idp_key, &c)
        }),
        forgery("no subject", |h, _, mut c| {
            c.as_object_mut().unwrap().remove("sub");
            es256(&h.idp.idp_key, &c)
        }),
        forgery("a subject of 256 bytes", |h, _, mut c| {
            c["sub"] = json!("7".repeat(256));
            es256(&h.idp.idp_key, &c)
        }),
        forgery("a subject with a control character", |h, _, mut c| {
            c["sub"] = json!("1234\n5678");
            es256(&h.idp.idp_key, &c)
        }),
        forgery("not a JWT", |_, _, _| "not.a.jwt".to_owned()),
        forgery("a JWE-shaped token", |_, _, _| {
            format!("{}.a.b.c.d", b64(&json!({ "alg": "RSA-OAEP", "enc": "A256GCM" })))
        }),
    ];
    // Another key under the idp key's own kid: the signature decides.
    let same_kid = {
        let (key, kid) = (other_key.clone(), h.idp.idp_key.jwk().kid.clone());
        move |c: &Value| jws(&json!({ "alg": "ES256", "kid": kid, "typ": "JWT" }), c, &key)
    };
    let mut cases: Vec<(String, BoxedForgery)> =
        forgeries.into_iter().map(|(w, f)| (w.to_owned(), Box::new(f) as BoxedForgery)).collect();
    cases.push(("another key under the same kid".into(), Box::new(move |_: &Fed, _: &Flow, c: Value| same_kid(&c))));

    // A symmetric key in the provider's set (a provider's mistake): HS256 under it is still no
    // signature of the provider's (any holder of the secret could make one).
    cases.push((
        "HS256 under a symmetric key the provider's set holds".into(),
        Box::new(|_: &Fed, _: &Flow, c: Value| {
            let input = format!("{}.{}", b64(&json!({ "alg": "HS256", "kid": "sym" })), b64(&c));
            let sig = hmac_sha256(IDP_SECRET.as_bytes(), input.as_bytes());
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
        }),
    ));
    let symmetric = json!({ "kty": "oct", "kid": "sym", "k": URL_SAFE_NO_PAD.encode(IDP_SECRET) });
    h.idp.publish(IDP_JWKS, vec![jwk_value(&h.idp.idp_key), symmetric]);

    for (what, forge) in &cases {
        let email = crate::support::unique("ivy");
        let ivy = person(&email);
        let mut b = Browser::new();
        let f = h.start(&mut b, "idp").await;
        let token = forge(&h, &f, h.claims(&f, &ivy));
        let code = h.code_answering(&f, &token);
        let r = h.finish(&mut b, &f, &code).await;
        assert_refused(&r, 502, "federation_failed", what);
        assert!(h.user(&email).await.is_none(), "{what}: no account");
        assert!(h.user("eve@example.com").await.is_none(), "{what}");
        assert!(h.identity("idp", &ivy).await.is_none(), "{what}: no identity");
    }
    assert_eq!(h.idp.calls(IDP_TOKEN), cases.len(), "each forgery came from a real exchange");

    // The control: the genuine token, with two audiences and this client as `azp`, passes.
    let email = crate::support::unique("ivy");
    let mut b = Browser::new();
    let f = h.start(&mut b, "idp").await;
    let mut c = h.claims(&f, &person(&email));
    c["aud"] = json!([IDP_CLIENT, "someone-else"]);
    c["azp"] = json!(IDP_CLIENT);
    let code = h.code_answering(&f, &es256(&h.idp.idp_key, &c));
    let r = h.finish(&mut b, &f, &code).await;
    assert_eq!(r.status, 200, "the genuine token: {}", r.raw_body);
}

#[tokio::test]
async fn an_iss_parameter_naming_another_issuer_is_refused_before_the_code_goes_anywhere() {
    let h = fed(&[]);
    let email = crate::support::unique("jo");
    let jo = person(&email);
    for (what, iss) in [("another issuer", Some(LOOSE)), ("none, from a provider that sends one", None)] {
        let mut b = Browser::new();
        let f = h.start(&mut b, "idp").await;
        let code = h.code(&f, &jo);
        let mut body = json!({ "code": code, "state": f.state });
        if let Some(iss) = iss {
            body["iss"] = json!(iss);
        }
        assert_refused(&h.finish_with(&mut b, "idp", body).await, 502, "federation_failed", what);
    }
    // The loose provider says nothing of `iss`: none is fine, a wrong one is not.
    let mut b = Browser::new();
    let f = h.start(&mut b, "loose").await;
    let code = h.code(&f, &jo);
    let body = json!({ "code": code, "state": f.state, "iss": IDP });
    assert_refused(&h.finish_with(&mut b, "loose", body).await, 502, "federation_failed", "idp's iss at loose");
    assert_eq!((h.idp.calls(IDP_TOKEN), h.idp.calls(LOOSE_TOKEN)), (0, 0), "no code was sent to a token endpoint");
    assert!(h.user(&email).await.is_none());
}

#[tokio::test]
async fn the_token_endpoint_gets_the_verifier_the_redirect_uri_and_the_client_s_credentials() {
    // The fake refuses an exchange without the right PKCE verifier, redirect URI or client
    // authentication: that every provider signs in at all proves each was sent. Here, a code
    // issued for another flow's challenge is refused at the token endpoint.
    let h = fed(&[]);
    let email = crate::support::unique("kim");
    let mut b = Browser::new();
    let f1 = h.start(&mut b, "loose").await;
    let f2 = h.start(&mut b, "loose").await;
    let code_for_f2 = h.code(&f2, &person(&email));
    let r = h.finish_with(&mut b, "loose", json!({ "code": code_for_f2, "state": f1.state })).await;
    assert_refused(&r, 502, "federation_failed", "a code of another flow (another PKCE challenge)");
    assert_eq!(h.idp.calls(LOOSE_TOKEN), 1);
    assert!(h.user(&email).await.is_none());
}

// ---------------------------------------------------------------- a provider misbehaving

#[tokio::test]
async fn discovery_or_keys_answering_garbage_errors_or_too_much_get_502_never_500() {
    let huge = json!({ "issuer": IDP, "junk": "x".repeat(1 << 20) });
    let cases: Vec<(&str, &str, Fault)> = vec![
        ("discovery 500", IDP_DISCOVERY, Fault::Status(500, None)),
        ("discovery 404 with JSON", IDP_DISCOVERY, Fault::Status(404, Some(json!({ "error": "not_found" })))),
        ("discovery not JSON", IDP_DISCOVERY, Fault::Unreadable),
        ("discovery unreachable", IDP_DISCOVERY, Fault::Unreachable),
        ("discovery an array", IDP_DISCOVERY, Fault::Json(json!([1, 2, 3]))),
        ("discovery a string", IDP_DISCOVERY, Fault::Json(json!("hello"))),
        ("discovery of another issuer", IDP_DISCOVERY, Fault::Json(discovery(LOOSE, false))),
        ("discovery huge", IDP_DISCOVERY, Fault::Json(huge)),
        (
            "discovery with numbers for endpoints",
            IDP_DISCOVERY,
            Fault::Json(json!({
                "issuer": IDP, "authorization_endpoint": 1, "token_endpoint": 2, "jwks_uri": 3,
            })),
        ),
        (
            "discovery with a plain-http token endpoint",
            IDP_DISCOVERY,
            Fault::Json({
                let mut d = discovery(IDP, true);
                d["token_endpoint"] = json!("http://idp.example.test/token");
                d
            }),
        ),
        (
            "discovery with a javascript: authorization endpoint",
            IDP_DISCOVERY,
            Fault::Json({
                let mut d = discovery(IDP, true);
                d["authorization_endpoint"] = json!("javascript:alert(1)");
                d
            }),
        ),
        ("keys 500", IDP_JWKS, Fault::Status(500, None)),
        ("keys unreadable", IDP_JWKS, Fault::Unreadable),
    ];
    for (what, url, fault) in cases {
        let h = fed(&[]);
        h.idp.fail(url, fault);
        let r = h.begin(&mut Browser::new(), "idp").await;
        assert_refused(&r, 502, "federation_failed", what);
        assert!(r.body.get("url").is_none(), "{what}");
    }
}

#[tokio::test]
async fn token_and_key_answers_that_are_garbage_errors_or_too_much_get_502_never_500() {
    let long = "A".repeat(1 << 20);
    let cases: Vec<(&str, &str, Fault)> = vec![
        ("token 500", IDP_TOKEN, Fault::Status(500, Some(json!({ "error": "server_error" })))),
        ("token 503 without a body", IDP_TOKEN, Fault::Status(503, None)),
        ("token 400 invalid_grant", IDP_TOKEN, Fault::Status(400, Some(json!({ "error": "invalid_grant" })))),
        ("token not JSON or too large", IDP_TOKEN, Fault::Unreadable),
        ("token unreachable", IDP_TOKEN, Fault::Unreachable),
        ("token an array", IDP_TOKEN, Fault::Json(json!([]))),
        ("token without an ID token", IDP_TOKEN, Fault::Json(json!({ "access_token": "at", "token_type": "Bearer" }))),
        ("token with a numeric ID token", IDP_TOKEN, Fault::Json(json!({ "access_token": "at", "id_token": 42 }))),
        ("token with an object ID token", IDP_TOKEN, Fault::Json(json!({ "id_token": { "alg": "none" } }))),
        (
            "token with a megabyte ID token",
            IDP_TOKEN,
            Fault::Json(json!({ "id_token": format!("{long}.{long}.{long}") })),
        ),
        ("token with an empty ID token", IDP_TOKEN, Fault::Json(json!({ "id_token": "" }))),
        ("keys that are not keys", IDP_JWKS, Fault::Json(json!({ "keys": "nope" }))),
        ("no keys at all", IDP_JWKS, Fault::Json(json!({}))),
        (
            "keys of garbage",
            IDP_JWKS,
            Fault::Json(json!({ "keys": [{ "kty": "EC", "crv": "P-256", "x": "!!", "y": "??", "kid": "k" }] })),
        ),
    ];
    for (what, url, fault) in cases {
        // A fresh deployment each time: the keys are read (and kept) with discovery at the start.
        let h = fed(&[]);
        let email = crate::support::unique("lee");
        let mut b = Browser::new();
        if url == IDP_JWKS {
            h.idp.fail(url, fault.clone());
        }
        let f = h.start(&mut b, "idp").await;
        let code = h.code(&f, &person(&email));
        h.idp.fail(url, fault);
        let r = h.finish(&mut b, &f, &code).await;
        assert_refused(&r, 502, "federation_failed", what);
        assert!(h.user(&email).await.is_none(), "{what}: no account");
    }
}

#[tokio::test]
async fn userinfo_is_read_when_the_id_token_has_no_address_and_must_be_about_the_same_person() {
    let h = fed(&[]);
    // Userinfo about someone else, userinfo failing or unreadable: refused.
    let email = crate::support::unique("max");
    let max = person(&email);
    let bad: Vec<(&str, Option<Value>, Option<Fault>)> = vec![
        ("userinfo about another subject", Some(json!({ "sub": "999", "email": email, "email_verified": true })), None),
        ("userinfo without a subject", Some(json!({ "email": email, "email_verified": true })), None),
        ("userinfo 500", None, Some(Fault::Status(500, None))),
        ("userinfo unreadable", None, Some(Fault::Unreadable)),
    ];
    for (what, info, fault) in bad {
        let mut b = Browser::new();
        let f = h.start(&mut b, "idp").await;
        let claims = h.claims(&f, &Person { email: None, ..max.clone() });
        let token = es256(&h.idp.idp_key, &claims);
        if let Some(fault) = fault {
            h.idp.fail(IDP_USERINFO, fault);
        }
        let code = h.idp.authorize(&f.url, h.idp.oidc_answer(&token, info.or(Some(json!({})))));
        assert_refused(&h.finish(&mut b, &f, &code).await, 502, "federation_failed", what);
        h.idp.world().faults.remove(IDP_USERINFO);
        assert!(h.user(&email).await.is_none(), "{what}");
    }
    // The same person's userinfo: signed up with its verified address.
    let mut b = Browser::new();
    let f = h.start(&mut b, "idp").await;
    let token = es256(&h.idp.idp_key, &h.claims(&f, &Person { email: None, ..max.clone() }));
    let info = json!({ "sub": max.sub, "email": email, "email_verified": true });
    let code = h.idp.authorize(&f.url, h.idp.oidc_answer(&token, Some(info)));
    let r = h.finish(&mut b, &f, &code).await;
    assert_eq!(r.status, 200, "{}", r.raw_body);
    assert_eq!(r.body["user"]["email"], json!(email));
    assert_eq!(h.idp.calls(IDP_USERINFO), 5);
}

// ---------------------------------------------------------------- one factor of two

#[tokio::test]
async fn a_second_factor_account_gets_the_challenge_and_no_session_and_the_code_completes_it() {
    let h = fed(&[]);
    let email = crate::support::unique("nia");
    let (cookie, secret, _) = h.t.enrolled(&email).await;
    let nia = person(&email);
    let mut home = Browser::with_session(&cookie);
    let linked = h.link(&mut home, "idp", &nia).await;
    assert_eq!(linked.status, 200, "{}", linked.raw_body);

    let mut b = Browser::new();
    let r = h.sign_in(&mut b, "idp", &nia).await;
    assert_eq!(r.status, 202, "{}", r.raw_body);
    assert_eq!(r.body["two_factor"], json!(true));
    assert!(r.session_cookie().is_none(), "no session on one factor");
    assert!(b.session().is_none());
    let challenge = r.body["challenge"].clone();

    h.t.env.clock.advance(chrono::Duration::seconds(30));
    let wrong = h
        .call(
            &mut b,
            TestCall::new("POST", "/two-factor-challenge").json(json!({
                "challenge": challenge, "code": "000000"
            })),
        )
        .await;
    assert!(wrong.session_cookie().is_none(), "{}", wrong.raw_body);
    let done = h
        .call(
            &mut b,
            TestCall::new("POST", "/two-factor-challenge").json(json!({
                "challenge": challenge, "code": h.t.totp(&secret)
            })),
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.raw_body);
    assert!(done.session_cookie().is_some());
    assert_eq!(h.t.user(b.session().as_deref()).await.body["user"]["email"], json!(email));
}

// ---------------------------------------------------------------- linking from the account

#[tokio::test]
async fn linking_needs_a_recent_confirmation_and_the_session_that_began_it() {
    let h = fed(&[]);
    // Unconfirmed: no flow begins.
    let mut fresh = Browser::with_session(&h.t.registered(&crate::support::unique("olga")).await);
    let r = h.begin_link(&mut fresh, "idp").await;
    assert_eq!((r.status, r.error_code()), (423, Some("password_confirmation_required")), "{}", r.raw_body);
    assert!(r.body.get("url").is_none());
    let r = h.begin_link(&mut Browser::new(), "idp").await;
    assert_eq!(r.status, 401, "no session: {}", r.raw_body);

    let a_email = crate::support::unique("pia");
    let mut a = h.password_user(&a_email).await;
    let a_id = h.user(&a_email).await.unwrap().id;
    let mut b = h.password_user(&crate::support::unique("quin")).await;
    let b_id = h.t.user(b.session().as_deref()).await.body["user"]["id"].as_str().unwrap().to_owned();

    // Finished with another user's session in that browser, or with none: refused, nothing linked.
    let stolen = person(&crate::support::unique("rex"));
    let f = h.start_link(&mut a, "loose").await;
    let code = h.code(&f, &stolen);
    let mut mixed = a.without(SESSION_COOKIE);
    mixed.jar.insert(SESSION_COOKIE.into(), b.jar[SESSION_COOKIE].clone());
    assert_refused(&h.finish(&mut mixed, &f, &code).await, 400, "federation_state_invalid", "another user's session");
    let f = h.start_link(&mut a, "loose").await;
    let code = h.code(&f, &stolen);
    let r = h.finish(&mut a.without(SESSION_COOKIE), &f, &code).await;
    assert_refused(&r, 400, "federation_state_invalid", "no session");
    // Another session of the same user (a second sign-in, confirmed too), with A's binding:
    // refused, the flow is its own session's.
    let second = h.t.login(&a_email, PW).await.session_cookie().expect("a second session");
    let mut second = Browser::with_session(&second);
    let confirm = TestCall::new("POST", "/user/confirm-password").json(json!({ "password": PW }));
    assert_eq!(h.call(&mut second, confirm).await.status, 204);
    let f = h.start_link(&mut a, "loose").await;
    let code = h.code(&f, &stolen);
    let mut same_user = a.without(SESSION_COOKIE);
    same_user.jar.insert(SESSION_COOKIE.into(), second.jar[SESSION_COOKIE].clone());
    assert_refused(
        &h.finish(&mut same_user, &f, &code).await,
        400,
        "federation_state_invalid",
        "another session of A's",
    );
    // B's own browser cannot finish A's flow either (it has no binding of A's).
    let f = h.start_link(&mut a, "loose").await;
    let code = h.code(&f, &stolen);
    assert_refused(&h.finish(&mut b, &f, &code).await, 400, "federation_state_invalid", "B's browser");
    assert!(h.identity("loose", &stolen).await.is_none(), "nothing linked");

    // The confirmation lapsing between the start and the callback refuses it too.
    h.t.env.clock.advance(chrono::Duration::minutes(8));
    let f = h.start_link(&mut a, "loose").await;
    h.t.env.clock.advance(chrono::Duration::minutes(8));
    let code = h.code(&f, &stolen);
    let r = h.finish(&mut a, &f, &code).await;
    assert_refused(&r, 400, "federation_state_invalid", "the confirmation lapsed");
    assert!(h.identity("loose", &stolen).await.is_none(), "nothing linked");

    // Confirmed again (both: the clock moved on): linked, listed, and the owner told.
    let confirm = TestCall::new("POST", "/user/confirm-password").json(json!({ "password": PW }));
    assert_eq!(h.call(&mut a, confirm.clone()).await.status, 204);
    assert_eq!(h.call(&mut b, confirm).await.status, 204);
    let r = h.link(&mut a, "loose", &stolen).await;
    assert_eq!(r.status, 200, "{}", r.raw_body);
    assert_eq!(r.body["linked"], json!("loose"));
    assert!(r.session_cookie().is_none(), "a link opens no session");
    assert_eq!(h.identity("loose", &stolen).await.map(|i| i.user_id), Some(a_id.clone()));
    assert_eq!(h.listed(&mut a).await.len(), 1);
    let mails = mails_to(&h.t, &a_email).await;
    assert!(mails.iter().any(|(s, _)| s == "A sign-in provider was connected"), "{mails:?}");
    // It signs A in now (an untrusted provider, once linked).
    let r = h.sign_in(&mut Browser::new(), "loose", &stolen).await;
    assert_eq!(r.body["user"]["id"], json!(a_id.as_str()), "{}", r.raw_body);

    // The same provider account, linked by B: taken.
    let r = h.link(&mut b, "loose", &stolen).await;
    assert_refused(&r, 409, "identity_taken", "held by A");
    assert_eq!(h.identity("loose", &stolen).await.map(|i| i.user_id), Some(a_id));
    assert!(h.listed(&mut b).await.is_empty(), "B got nothing: {b_id}");
}

#[tokio::test]
async fn unlinking_the_last_way_in_is_refused_and_otherwise_done_and_mailed() {
    let h = fed(&[]);
    // An account the provider made: no password, one identity.
    let email = crate::support::unique("sam");
    let sam = person(&email);
    let mut b = Browser::new();
    assert_eq!(h.sign_in(&mut b, "idp", &sam).await.status, 200);
    let id = h.listed(&mut b).await[0]["id"].as_str().unwrap().to_owned();
    let delete = || TestCall::new("DELETE", &format!("/user/identities/{id}"));
    let r = h.call(&mut b, delete()).await;
    assert_eq!((r.status, r.error_code()), (423, Some("password_confirmation_required")), "{}", r.raw_body);
    h.confirm(&b).await;
    let r = h.call(&mut b, delete()).await;
    assert_eq!((r.status, r.error_code()), (409, Some("last_way_in")), "{}", r.raw_body);
    assert!(h.identity("idp", &sam).await.is_some(), "still connected");
    // A second provider connected: now the first may go.
    let sam_loose = person(&email);
    assert_eq!(h.link(&mut b, "loose", &sam_loose).await.status, 200);
    assert_eq!(h.call(&mut b, delete()).await.status, 204);
    assert!(h.identity("idp", &sam).await.is_none());
    let id2 = h.listed(&mut b).await[0]["id"].as_str().unwrap().to_owned();
    let r = h.call(&mut b, TestCall::new("DELETE", &format!("/user/identities/{id2}"))).await;
    assert_eq!((r.status, r.error_code()), (409, Some("last_way_in")), "the other is the last now: {}", r.raw_body);

    // An account with a password: unlinked, 204, and the owner told.
    let email = crate::support::unique("tia");
    let tia = person(&email);
    let mut t = h.password_user(&email).await;
    assert_eq!(h.link(&mut t, "idp", &tia).await.status, 200);
    let id = h.listed(&mut t).await[0]["id"].as_str().unwrap().to_owned();
    // Another user cannot name it.
    let r = h.call(&mut b, TestCall::new("DELETE", &format!("/user/identities/{id}"))).await;
    assert_eq!(r.status, 404, "{}", r.raw_body);
    crate::support::mails_with_notices(&h.t).await;
    let r = h.call(&mut t, TestCall::new("DELETE", &format!("/user/identities/{id}"))).await;
    assert_eq!(r.status, 204, "{}", r.raw_body);
    assert!(h.listed(&mut t).await.is_empty());
    assert!(h.identity("idp", &tia).await.is_none());
    let mails = mails_to(&h.t, &email).await;
    assert!(
        mails.iter().any(|(s, t)| s == "A sign-in provider was disconnected" && t.contains("Example IdP")),
        "{mails:?}"
    );
    // Unlinked means gone: the provider does not sign in to it again (its address is not
    // verified here, so no automatic link either).
    assert_refused(&h.sign_in(&mut Browser::new(), "idp", &tia).await, 409, "link_required", "after unlinking");

    // Announced (#32), each once: Sam's sign-up by the provider (its identity is in
    // `user.registered`), the second connection and the first's removal; Tia's connection and
    // its removal. The refused removals announce nothing.
    let identity_events = |events: Vec<gatehouse::tables::events::Event>| {
        events
            .iter()
            .map(|e| serde_json::to_value(e).unwrap())
            .filter(|e| e["type"] != "session.created")
            .map(|e| (e["type"].as_str().unwrap_or("").to_owned(), e["data"]["provider"].clone()))
            .collect::<Vec<_>>()
    };
    let sam_id = h.user(sam.email.as_deref().unwrap_or_default()).await.unwrap().id;
    let sam_events = crate::events_credentials::events_of(&h.t, sam_id.as_str()).await;
    assert_eq!(
        identity_events(sam_events),
        vec![
            ("user.registered".to_owned(), json!("idp")),
            ("identity.linked".to_owned(), json!("loose")),
            ("identity.unlinked".to_owned(), json!("idp")),
        ]
    );
    let tia_id = h.user(&email).await.unwrap().id;
    let tia_events = crate::events_credentials::events_of(&h.t, tia_id.as_str()).await;
    assert_eq!(
        identity_events(tia_events),
        vec![
            ("user.registered".to_owned(), Value::Null),
            ("identity.linked".to_owned(), json!("idp")),
            ("identity.unlinked".to_owned(), json!("idp")),
        ]
    );
}

// ---------------------------------------------------------------- credentials changes

/// A change of the account made with the browser `b` (its password confirmed).
async fn change_password(h: &Fed, b: &mut Browser) {
    let r = h
        .call(
            b,
            TestCall::new("PUT", "/user/password").json(json!({
                "current_password": PW, "password": NEW_PW, "password_confirmation": NEW_PW
            })),
        )
        .await;
    assert!(r.status < 300, "{} {}", r.status, r.raw_body);
}

async fn log_out_other_devices(h: &Fed, b: &mut Browser) {
    let r = h.call(b, TestCall::new("POST", "/logout-other-devices").json(json!({ "password": PW }))).await;
    assert!(r.status < 300, "{} {}", r.status, r.raw_body);
}

async fn reset_password(h: &Fed, email: &str) {
    let token = crate::support::put_reset_token(&h.t.env.stores, email, chrono::Duration::days(1)).await;
    let r =
        h.t.reset_fn(TestCall::new("POST", "/reset-password").json(json!({
            "email": email, "token": token.expose(), "password": NEW_PW, "password_confirmation": NEW_PW
        })))
        .await;
    assert_eq!(r.status, 200, "{}", r.raw_body);
}

/// The untrusted provider's identity, linked and signing in, is over after `what`.
async fn a_change_ends_the_identity(what: &str) {
    let h = fed(&[]);
    let email = crate::support::unique("uma");
    let uma = person(&email);
    let mut b = h.password_user(&email).await;
    assert_eq!(h.link(&mut b, "loose", &uma).await.status, 200);
    let r = h.sign_in(&mut Browser::new(), "loose", &uma).await;
    assert_eq!(r.status, 200, "{what}: it signs in before: {}", r.raw_body);

    match what {
        "password change" => change_password(&h, &mut b).await,
        "log out other devices" => log_out_other_devices(&h, &mut b).await,
        "reset" => reset_password(&h, &email).await,
        other => panic!("{other}"),
    }
    let r = h.sign_in(&mut Browser::new(), "loose", &uma).await;
    assert_refused(&r, 409, "link_required", what);
    assert!(h.identity("loose", &uma).await.is_none(), "{what}: the ended identity is gone");
    let mut after = if what == "reset" {
        Browser::with_session(
            &h.t.login(&email, NEW_PW).await.session_cookie().expect("signed in with the new password"),
        )
    } else {
        b
    };
    assert!(h.listed(&mut after).await.is_empty(), "{what}: none listed");
}

#[tokio::test]
async fn a_password_change_ends_the_identity() {
    a_change_ends_the_identity("password change").await;
}

#[tokio::test]
async fn logging_out_other_devices_ends_the_identity() {
    a_change_ends_the_identity("log out other devices").await;
}

#[tokio::test]
async fn a_password_reset_ends_the_identity() {
    a_change_ends_the_identity("reset").await;
}

/// Turning the second factor on ends other sessions (they were opened on one factor), but a
/// connected provider is a way in, like a passkey, which it keeps: the provider still signs in,
/// now with the challenge.
#[tokio::test]
async fn turning_two_factor_on_keeps_the_connected_provider() {
    let h = fed(&[]);
    let email = crate::support::unique("vic");
    let vic = person(&email);
    let mut b = h.password_user(&email).await;
    assert_eq!(h.link(&mut b, "loose", &vic).await.status, 200);
    let e = h.call(&mut b, TestCall::new("POST", "/user/two-factor-authentication")).await;
    assert_eq!(e.status, 200, "{}", e.raw_body);
    let secret = e.body["secret"].as_str().unwrap().to_owned();
    let on =
        TestCall::new("POST", "/user/confirmed-two-factor-authentication").json(json!({ "code": h.t.totp(&secret) }));
    assert_eq!(h.call(&mut b, on).await.status, 200);
    assert_eq!(h.listed(&mut b).await.len(), 1, "still listed");
    let r = h.sign_in(&mut Browser::new(), "loose", &vic).await;
    assert_eq!(r.status, 202, "the provider still signs in, with the challenge: {}", r.raw_body);
}

#[tokio::test]
async fn a_disabled_account_signs_in_with_nothing_and_gets_nothing_connected() {
    use gatehouse::tables::credentials::{Revocation, reasons};
    use gatehouse::tables::users::CredentialChange;
    let h = fed(&[]);
    let email = crate::support::unique("wes");
    let wes = person(&email);
    assert_eq!(h.sign_in(&mut Browser::new(), "idp", &wes).await.status, 200);
    let user = h.user(&email).await.unwrap();
    crate::support::mails_with_notices(&h.t).await;
    // What `gatehouse user:disable` does (cli/src/users.rs).
    let stores = &h.t.app.stores;
    let change = CredentialChange { revoke: true, disable: Some(true), ..CredentialChange::default() };
    let changed = stores.users.change_credentials(&user.id, user.credentials_version, change, stores.clock.now());
    assert!(changed.await.unwrap().is_some());
    gatehouse::services::revocation::revoke(stores, &user.id, Revocation::Everything, reasons::ACCOUNT_DISABLED)
        .await
        .unwrap();

    // Its own identity, another account of the trusted provider holding its verified address
    // (which would join it, were it not disabled), and the untrusted provider: nothing.
    let other_at_idp = person(&email);
    for (what, provider, p) in
        [("its identity", "idp", &wes), ("a new one", "idp", &other_at_idp), ("loose", "loose", &wes)]
    {
        let r = h.sign_in(&mut Browser::new(), provider, p).await;
        assert!(matches!(r.status, 403 | 409), "{what}: {} {}", r.status, r.raw_body);
        assert!(r.session_cookie().is_none() && r.body.get("challenge").is_none(), "{what}: nothing");
    }
    assert_eq!(h.t.app.stores.sessions.list_for_user(&user.id).await.unwrap().len(), 0, "no session");
    assert!(h.identity("idp", &other_at_idp).await.is_none(), "nothing connected to a disabled account");
    let mails = mails_to(&h.t, &email).await;
    assert!(!mails.iter().any(|(s, _)| s.contains("connected")), "no connection announced: {mails:?}");
}

// ---------------------------------------------------------------- GitHub

#[tokio::test]
async fn github_signs_up_by_its_numeric_id_and_signs_the_same_person_in_again() {
    let h = fed(&[]);
    let email = crate::support::unique("xia");
    let xia = person(&email);
    let mut b = Browser::new();
    let f = h.start(&mut b, "github").await;
    assert!(f.url.starts_with(&format!("{GH_AUTHORIZE}?")), "{}", f.url);
    assert!(f.nonce.is_empty(), "no nonce for OAuth 2.0");
    let code = h.code(&f, &xia);
    let r = h.finish(&mut b, &f, &code).await;
    assert_eq!(r.status, 200, "{}", r.raw_body);
    assert_eq!(r.body["user"]["email"], json!(email));
    assert_eq!(r.body["user"]["email_verified_at"], Value::Null, "GitHub is not trusted here");
    let id = r.body["user"]["id"].clone();
    let again = h.sign_in(&mut Browser::new(), "github", &Person { name: None, ..xia.clone() }).await;
    assert_eq!(again.status, 200, "{}", again.raw_body);
    assert_eq!(again.body["user"]["id"], id, "the same user");
    assert_eq!((h.idp.calls(GH_TOKEN), h.idp.calls(GH_USER), h.idp.calls(GH_EMAILS)), (2, 2, 2));
    assert!(h.identity("github", &xia).await.is_some());
    let mails = mails_to(&h.t, &email).await;
    assert!(mails.iter().any(|(s, _)| s == "Verify your email address"), "{mails:?}");
}

#[tokio::test]
async fn github_s_unverified_primary_address_refused_codes_and_odd_answers_make_no_account() {
    let h = fed(&[]);
    let email = crate::support::unique("yan");

    // The primary address unverified (a verified other one does not stand in for it).
    let mut b = Browser::new();
    let f = h.start(&mut b, "github").await;
    let id: u64 = 4242;
    let emails = json!([
        { "email": email, "primary": true, "verified": false },
        { "email": crate::support::unique("other"), "primary": false, "verified": true },
    ]);
    let code = h.idp.authorize(&f.url, h.idp.github_answer(json!({ "id": id, "login": "yan" }), emails));
    assert_refused(&h.finish(&mut b, &f, &code).await, 403, "email_unverified_at_provider", "unverified primary");
    assert!(h.user(&email).await.is_none());

    // A code GitHub refuses (200 and an `error`), a made-up code, odd user ids.
    let verified = json!([{ "email": email, "primary": true, "verified": true }]);
    let cases: Vec<(&str, Option<Value>)> = vec![
        ("a refused code", None),
        ("an id that is a string", Some(json!({ "id": "4242", "login": "yan" }))),
        ("a negative id", Some(json!({ "id": -4242, "login": "yan" }))),
        ("a fractional id", Some(json!({ "id": 42.5, "login": "yan" }))),
        ("no id", Some(json!({ "login": "yan" }))),
        ("an array for a user", Some(json!([]))),
    ];
    for (what, user) in cases {
        let mut b = Browser::new();
        let f = h.start(&mut b, "github").await;
        let code = match user {
            Some(user) => h.idp.authorize(&f.url, h.idp.github_answer(user, verified.clone())),
            None => "a-code-github-never-issued".to_owned(),
        };
        assert_refused(&h.finish(&mut b, &f, &code).await, 502, "federation_failed", what);
        assert!(h.user(&email).await.is_none(), "{what}");
    }
    for (what, fault) in [
        ("emails 500", Fault::Status(500, None)),
        ("emails unreadable", Fault::Unreadable),
        ("emails an object", Fault::Json(json!({ "message": "hello" }))),
    ] {
        let mut b = Browser::new();
        h.idp.fail(GH_EMAILS, fault);
        let r = h.sign_in(&mut b, "github", &person(&email)).await;
        h.idp.world().faults.remove(GH_EMAILS);
        assert!(matches!(r.status, 403 | 502), "{what}: {} {}", r.status, r.raw_body);
        assert!(r.session_cookie().is_none(), "{what}");
        assert!(h.user(&email).await.is_none(), "{what}");
    }
}

// ---------------------------------------------------------------- the metadata cache

#[tokio::test]
async fn discovery_and_keys_are_fetched_once_across_flows_and_unknown_kids_cost_at_most_a_refetch_a_minute() {
    let h = fed(&[]);
    for _ in 0..2 {
        let r = h.sign_in(&mut Browser::new(), "idp", &person(&crate::support::unique("zoe"))).await;
        assert_eq!(r.status, 200, "{}", r.raw_body);
    }
    assert_eq!((h.idp.calls(IDP_DISCOVERY), h.idp.calls(IDP_JWKS)), (1, 1), "cached across flows");

    // A flood of made-up kids: refused, the keys read again at most once within the minute.
    for i in 0..5 {
        let mut b = Browser::new();
        let f = h.start(&mut b, "idp").await;
        let c = h.claims(&f, &person(&crate::support::unique("zoe")));
        let token = jws(&json!({ "alg": "ES256", "kid": format!("made-up-{i}") }), &c, &h.idp.idp_key);
        let code = h.code_answering(&f, &token);
        assert_refused(&h.finish(&mut b, &f, &code).await, 502, "federation_failed", "an unknown kid");
    }
    assert!(h.idp.calls(IDP_JWKS) <= 2, "keys read {} times for five made-up kids", h.idp.calls(IDP_JWKS));

    // A minute on, the provider rotates its key: the first token of the new key reads the keys
    // once, and signs in.
    let rotated = LocalKey::generate();
    h.idp.publish(IDP_JWKS, vec![jwk_value(&rotated), jwk_value(&h.idp.idp_key)]);
    h.t.env.clock.advance(chrono::Duration::seconds(61));
    let before = h.idp.calls(IDP_JWKS);
    let mut b = Browser::new();
    let f = h.start(&mut b, "idp").await;
    let code = h.code_answering(&f, &es256(&rotated, &h.claims(&f, &person(&crate::support::unique("zoe")))));
    let r = h.finish(&mut b, &f, &code).await;
    assert_eq!(r.status, 200, "the rotated key: {}", r.raw_body);
    assert_eq!(h.idp.calls(IDP_JWKS), before + 1, "one read for the new kid");
}

// ---------------------------------------------------------------- hostile provider text

#[tokio::test]
async fn hostile_names_and_addresses_from_the_provider_never_break_sign_up() {
    let h = fed(&[]);
    let names = [
        "\u{202E}nimda\u{202C}",
        "Ann\nBcc: eve@example.com",
        "Ann\r\n<script>alert(1)</script>",
        &"A".repeat(10_000),
        "\u{0000}",
        "   ",
        "\u{200B}\u{200B}",
        "",
    ];
    for (i, name) in names.iter().enumerate() {
        for provider in ["idp", "github"] {
            let email = crate::support::unique(&format!("name{i}"));
            let p = Person { name: Some((*name).to_owned()), ..person(&email) };
            let r = h.sign_in(&mut Browser::new(), provider, &p).await;
            let what = format!("{provider}: {:?}", name.chars().take(40).collect::<String>());
            assert_eq!(r.status, 200, "{what}: {}", r.raw_body);
            let shown = r.body["user"]["name"].as_str().expect("a name").to_owned();
            assert!(gatehouse::tables::users::DisplayName::parse(&shown).is_ok(), "{what}: a valid name: {shown:?}");
            assert!(!shown.chars().any(|c| c.is_control() || c == '\u{202E}'), "{what}: {shown:?}");
        }
    }
}

#[tokio::test]
async fn a_hostile_address_in_a_link_flow_is_not_kept_as_the_identity_s_address() {
    let h = fed(&[]);
    let email = crate::support::unique("abe");
    let mut b = h.password_user(&email).await;
    let odd = [format!("{}@example.com", "a".repeat(10_000)), "a\nb@example.com".into(), "<script>@example.com".into()];
    for (i, odd) in odd.into_iter().enumerate() {
        let p = Person { email: Some(odd.clone()), ..person(&email) };
        let r = h.link(&mut b, "loose", &p).await;
        assert_eq!(r.status, 200, "{i}: {}", r.raw_body);
        let listed = h.listed(&mut b).await;
        for l in &listed {
            let shown = l["email"].as_str().unwrap_or_default();
            assert!(shown.len() <= 320 && !shown.chars().any(|c| c.is_control() || c == '<'), "{i}: {shown:?}");
        }
    }
}

// ---------------------------------------------------------------- racing sign-ups

/// An identity store that pauses after its first new link and its first removal: the window
/// between a sign-up's two writes (the identity, then the user) held open.
use gatehouse::tables::users::EventMark;

struct Pausing {
    inner: Arc<dyn IdentityStore>,
    after_link: Mutex<Option<Duration>>,
    after_unlink: Mutex<Option<Duration>>,
}

#[async_trait]
impl IdentityStore for Pausing {
    async fn find(&self, provider: &str, subject: &str) -> StoreResult<Option<Identity>> {
        self.inner.find(provider, subject).await
    }
    async fn for_user(&self, user: &UserId) -> StoreResult<Vec<Identity>> {
        self.inner.for_user(user).await
    }
    async fn link_noting(&self, identity: &Identity, events: &[EventMark]) -> StoreResult<Linked> {
        let done = self.inner.link_noting(identity, events).await?;
        let pause = if done == Linked::New { self.after_link.lock().unwrap().take() } else { None };
        if let Some(d) = pause {
            tokio::time::sleep(d).await;
        }
        Ok(done)
    }
    async fn unlink_noting(
        &self,
        provider: &str,
        subject: &str,
        user: &UserId,
        events: &[EventMark],
    ) -> StoreResult<bool> {
        let done = self.inner.unlink_noting(provider, subject, user, events).await?;
        let pause = if done { self.after_unlink.lock().unwrap().take() } else { None };
        if let Some(d) = pause {
            tokio::time::sleep(d).await;
        }
        Ok(done)
    }
    async fn touch(
        &self,
        provider: &str,
        subject: &str,
        user: &UserId,
        at: gatehouse::Timestamp,
        tokens: Option<&str>,
    ) -> StoreResult<()> {
        self.inner.touch(provider, subject, user, at, tokens).await
    }
}

/// Two tabs finishing sign-up of one new person at once: whichever wins, the account made keeps
/// its identity (the loser does not take the winner's half-made sign-up for a broken one).
#[tokio::test]
async fn two_sign_ups_of_one_new_person_at_once_leave_the_account_with_its_identity() {
    let mut env = TestEnv::memory();
    let pausing = Arc::new(Pausing {
        inner: env.stores.identities.clone(),
        after_link: Mutex::new(Some(Duration::from_millis(50))),
        after_unlink: Mutex::new(Some(Duration::from_millis(100))),
    });
    env.stores.identities = pausing;
    let h = fed_over(env, &[]);
    let email = crate::support::unique("bea");
    let bea = person(&email);
    let (mut one, mut two) = (Browser::new(), Browser::new());
    let (f1, f2) = (h.start(&mut one, "loose").await, h.start(&mut two, "loose").await);
    let (c1, c2) = (h.code(&f1, &bea), h.code(&f2, &bea));
    let call = |b: &Browser, f: &Flow, c: &str| {
        b.dress(TestCall::new("POST", "/auth/providers/loose/callback").json(json!({ "code": c, "state": f.state })))
    };
    let (r1, r2) = tokio::join!(h.t.login_fn(call(&one, &f1, &c1)), h.t.login_fn(call(&two, &f2, &c2)));
    assert!(
        r1.status == 200 || r2.status == 200,
        "one signed up: {} {} / {} {}",
        r1.status,
        r1.raw_body,
        r2.status,
        r2.raw_body
    );
    let user = h.user(&email).await.expect("the account");
    let held = h.identity("loose", &bea).await.map(|i| i.user_id);
    assert_eq!(held, Some(user.id.clone()), "the account made keeps its identity");
    let r = h.sign_in(&mut Browser::new(), "loose", &bea).await;
    assert_eq!(r.status, 200, "and it signs in: {}", r.raw_body);
    assert_eq!(r.body["user"]["id"], json!(user.id.as_str()));
}

// ---------------------------------------------------------------- the real outbound client

/// What the raw server sends after the status line and headers it is given.
enum RawBody {
    /// Nothing more.
    None,
    /// `content-length` and this body.
    Fixed(Vec<u8>),
    /// This body as one chunk, then the last chunk.
    Chunked(Vec<u8>),
    /// Chunks of padding until the client goes away.
    Endless,
}

/// A server on 127.0.0.1 answering every request with `head` (the status line and headers,
/// without the blank line) and the body `body` makes of the server's base URL. Its base URL.
async fn raw_server(head: &'static str, body: impl Fn(&str) -> RawBody) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let mut answer = format!("{head}\r\n").into_bytes();
    let endless = match body(&base) {
        RawBody::None => {
            answer.extend_from_slice(b"\r\n");
            false
        }
        RawBody::Fixed(b) => {
            answer.extend_from_slice(format!("content-length: {}\r\n\r\n", b.len()).as_bytes());
            answer.extend_from_slice(&b);
            false
        }
        RawBody::Chunked(b) => {
            answer.extend_from_slice(format!("transfer-encoding: chunked\r\n\r\n{:x}\r\n", b.len()).as_bytes());
            answer.extend_from_slice(&b);
            answer.extend_from_slice(b"\r\n0\r\n\r\n");
            false
        }
        RawBody::Endless => {
            answer.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
            true
        }
    };
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 8192];
                let _ = socket.read(&mut buf).await;
                if socket.write_all(&answer).await.is_err() {
                    return;
                }
                let chunk = format!("{:x}\r\n{}\r\n", 16384, "x".repeat(16384));
                if endless {
                    while socket.write_all(chunk.as_bytes()).await.is_ok() {}
                    return;
                }
                let _ = socket.shutdown().await;
            });
        }
    });
    base
}

/// A discovery document of `base`, valid but for its megabyte of padding.
fn padded_discovery(base: &str) -> Vec<u8> {
    let mut d = discovery(base, false);
    for field in ["authorization_endpoint", "token_endpoint", "userinfo_endpoint"] {
        d[field] = json!(format!("{IDP}/{field}"));
    }
    d["padding"] = json!("x".repeat(1 << 20));
    d.to_string().into_bytes()
}

/// The HTTPS client itself (no fake): a provider that answers with too much (however valid), a
/// redirect, HTML or an error gets 502, in time, never a 500.
#[tokio::test]
async fn the_outbound_client_reads_no_more_than_its_limit_follows_no_redirect_and_answers_502() {
    const JSON: &str = "HTTP/1.1 200 OK\r\ncontent-type: application/json";
    let cases: Vec<(&str, String)> = vec![
        ("a valid document of a megabyte", raw_server(JSON, |b| RawBody::Fixed(padded_discovery(b))).await),
        ("the same, chunked", raw_server(JSON, |b| RawBody::Chunked(padded_discovery(b))).await),
        ("an endless chunked body", raw_server(JSON, |_| RawBody::Endless).await),
        (
            "a redirect",
            raw_server("HTTP/1.1 302 Found\r\nlocation: https://idp.example.test/", |_| RawBody::None).await,
        ),
        (
            "HTML",
            raw_server("HTTP/1.1 200 OK\r\ncontent-type: text/html", |_| RawBody::Fixed(b"<html>hi</html>".to_vec()))
                .await,
        ),
        ("a 500", raw_server("HTTP/1.1 500 Internal Server Error", |_| RawBody::Fixed(b"{}".to_vec())).await),
    ];
    for (what, base) in &cases {
        let mut t = TestApp::memory(&[FAST, PROVIDERS, &[("GATEHOUSE_FEDERATION_IDP_ISSUER", base.as_str())]].concat());
        t.app.fetch = None;
        let started = std::time::Instant::now();
        let r = t.login_fn(TestCall::new("POST", "/auth/providers/idp/start").json(json!({}))).await;
        assert_refused(&r, 502, "federation_failed", what);
        assert!(started.elapsed() < Duration::from_secs(5), "{what}: took {:?}", started.elapsed());
    }
    // The control: the same document without its padding starts a flow.
    let base = raw_server(JSON, |b| {
        let mut d = serde_json::from_slice::<Value>(&padded_discovery(b)).unwrap();
        d.as_object_mut().unwrap().remove("padding");
        RawBody::Fixed(d.to_string().into_bytes())
    })
    .await;
    let mut t = TestApp::memory(&[FAST, PROVIDERS, &[("GATEHOUSE_FEDERATION_IDP_ISSUER", base.as_str())]].concat());
    t.app.fetch = None;
    let r = t.login_fn(TestCall::new("POST", "/auth/providers/idp/start").json(json!({}))).await;
    assert_eq!(r.status, 200, "{}", r.raw_body);
}

// ---------------------------------------------------------------- limits and kept tokens

/// Callbacks are counted per client before anything is read: a flood of made-up states from one
/// client is cut off, and reaches no provider.
#[tokio::test]
async fn a_flood_of_callbacks_from_one_client_is_counted_before_any_work() {
    let h = fed(&[]);
    let mut b = Browser::new();
    let f = h.start(&mut b, "idp").await;
    let mut statuses = Vec::new();
    for _ in 0..31 {
        let r = h.finish_with(&mut b, "idp", json!({ "code": "made-up", "state": random(), "iss": IDP })).await;
        statuses.push(r.status);
    }
    assert!(statuses[..30].iter().all(|s| *s == 400), "{statuses:?}");
    assert_eq!(statuses[30], 429, "{statuses:?}");
    // The genuine callback from that client waits its turn too; another client is not held up.
    let code = h.code(&f, &person(&crate::support::unique("cal")));
    assert_eq!(h.finish(&mut b, &f, &code).await.status, 429);
    assert_eq!(h.idp.calls(IDP_TOKEN), 0, "no flooded callback reached the provider");
    let r = h.sign_in(&mut Browser::new(), "idp", &person(&crate::support::unique("cal"))).await;
    assert_eq!(r.status, 200, "{}", r.raw_body);
}

/// The provider's tokens are kept only when the deployment asks, and then sealed.
#[tokio::test]
async fn the_provider_s_tokens_are_kept_only_when_asked_and_then_sealed() {
    for keep in [false, true] {
        let h = fed(&[("GATEHOUSE_FEDERATION_IDP_KEEP_TOKENS", if keep { "true" } else { "false" })]);
        let p = person(&crate::support::unique("dee"));
        let mut b = Browser::new();
        let f = h.start(&mut b, "idp").await;
        let token = es256(&h.idp.idp_key, &h.claims(&f, &p));
        let access = "provider-access-token-0123456789abcdef";
        let answer = json!({ "access_token": access, "refresh_token": "provider-refresh-token-0123456789",
            "token_type": "Bearer", "expires_in": 3600, "id_token": token });
        let code = h.idp.authorize(&f.url, answer);
        assert_eq!(h.finish(&mut b, &f, &code).await.status, 200);
        let stored = h.identity("idp", &p).await.expect("the identity");
        match (&stored.tokens, keep) {
            (None, false) => {}
            (Some(sealed), true) => {
                assert!(!sealed.contains(access) && !sealed.contains("provider-refresh-token"), "sealed: {sealed}");
                assert!(!format!("{stored:?}").contains(sealed.as_str()), "not printed");
            }
            (other, _) => panic!("keep={keep}: {other:?}"),
        }
    }
}
