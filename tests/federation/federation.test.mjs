// Social sign-in end to end: gatehouse as the relying party of panva's oidc-provider (an OpenID
// Certified provider, not written here; tests/federation/idp.mjs) and of a GitHub stand-in
// (tests/federation/github.mjs). Each test is one or more fresh browsers: a cookie jar per origin
// (path-scoped, keeping `Secure` and `__Host-` cookies over http://127.0.0.1 as Chromium does),
// redirects followed by hand, the IdP's own login and consent pages filled in.
//
// GATEHOUSE_URL, IDP_URL, GITHUB_URL: the three servers; GATEHOUSE_LOG: serve's output, where the
// log mailer prints the mails. scripts/federation-test starts them all.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import * as jose from 'jose';
import { createHmac, randomBytes } from 'node:crypto';

const BASE = process.env.GATEHOUSE_URL;
const IDP = process.env.IDP_URL;
const GITHUB = process.env.GITHUB_URL;
const LOG = process.env.GATEHOUSE_LOG;
if (!BASE || !IDP || !GITHUB || !LOG) {
  throw new Error('set GATEHOUSE_URL, IDP_URL, GITHUB_URL and GATEHOUSE_LOG (scripts/federation-test does)');
}
const ORIGIN = new URL(BASE).origin;
const PASSWORD = 'correct horse battery staple 42';
const run = randomBytes(4).toString('hex');
let serial = 0;
/** A fresh name for this run: addresses and subjects never meet an earlier run's. */
const fresh = (what) => `${what}-${run}-${++serial}`;

// --- a browser ---------------------------------------------------------------------------------

class Browser {
  constructor(name = 'browser') {
    this.name = name;
    /** origin -> Map(`${path}\n${name}` -> {name, value, path}) */
    this.jars = new Map();
  }

  jar(origin) {
    if (!this.jars.has(origin)) this.jars.set(origin, new Map());
    return this.jars.get(origin);
  }

  cookie(name, origin = ORIGIN) {
    for (const c of this.jar(origin).values()) if (c.name === name) return c.value;
    return undefined;
  }

  store(url, res) {
    const jar = this.jar(url.origin);
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';').map((s) => s.trim());
      const i = pair.indexOf('=');
      const name = pair.slice(0, i);
      const value = pair.slice(i + 1);
      let path = '/';
      let gone = value === '';
      for (const a of attrs) {
        const [k, v = ''] = a.split('=');
        if (/^path$/i.test(k)) path = v || '/';
        if (/^max-age$/i.test(k) && Number(v) <= 0) gone = true;
        if (/^expires$/i.test(k) && Date.parse(v) < Date.now()) gone = true;
      }
      if (name.startsWith('__Host-')) {
        assert.ok(attrs.some((a) => /^secure$/i.test(a)) && path === '/' && !attrs.some((a) => /^domain=/i.test(a)),
          `${name}: a __Host- cookie is Secure, Path=/, no Domain (${line})`);
      }
      const key = `${path}\n${name}`;
      if (gone) jar.delete(key); else jar.set(key, { name, value, path });
    }
  }

  header(url) {
    const sent = [...this.jar(url.origin).values()]
      .filter((c) => url.pathname === c.path || url.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`))
      .sort((a, b) => b.path.length - a.path.length);
    return sent.map((c) => `${c.name}=${c.value}`).join('; ');
  }

  /** One request, redirects not followed. */
  async request(url, init = {}) {
    url = new URL(url, BASE);
    const headers = { ...(init.headers || {}) };
    const cookie = this.header(url);
    if (cookie) headers.cookie = cookie;
    let body = init.body;
    if (init.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(init.form).toString();
    }
    if (init.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(init.json);
    }
    const res = await fetch(url, { method: init.method ?? (body === undefined ? 'GET' : 'POST'), headers, body, redirect: 'manual' });
    this.store(url, res);
    res.url_ = url;
    return res;
  }

  /** Follows redirects while they stay on `origin` (default gatehouse's); the last answer and, if
   * a redirect left, where to. */
  async follow(url, init = {}, origin = ORIGIN) {
    let res = await this.request(url, init);
    for (let hops = 0; hops < 10 && res.status >= 300 && res.status < 400; hops++) {
      const next = new URL(res.headers.get('location'), res.url_);
      if (next.origin !== origin) return { res, left: next };
      res = await this.request(next);
    }
    return { res, left: null };
  }
}

function hidden(html) {
  const fields = {};
  for (const m of html.matchAll(/<input[^>]*type="hidden"[^>]*>/g)) {
    const name = /name="([^"]+)"/.exec(m[0])?.[1];
    const value = /value="([^"]*)"/.exec(m[0])?.[1] ?? '';
    if (name) fields[name] = value.replaceAll('&quot;', '"').replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&amp;', '&');
  }
  return fields;
}

const text = (html) => html.replace(/<[^>]+>/g, ' ').replace(/&#39;|&#x27;/g, "'").replace(/&quot;/g, '"').replace(/&amp;/g, '&').replace(/\s+/g, ' ');

// --- the mails in serve's log ------------------------------------------------------------------

async function mails(to) {
  const log = await readFile(LOG, 'utf8');
  return log.split('──── mail (log mailer').slice(1).map((block) => {
    const m = /\nTo: (.*)\nSubject: (.*)\n\n([\s\S]*?)\n─{20,}/.exec(block);
    return m && { to: m[1].trim(), subject: m[2].trim(), text: m[3] };
  }).filter((m) => m && m.to === to);
}

async function mailTo(to, match, timeoutMs = 15000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const found = (await mails(to)).filter((m) => match.test(m.subject) || match.test(m.text));
    if (found.length) return found.at(-1);
    if (Date.now() > until) assert.fail(`no mail to ${to} matching ${match} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// --- gatehouse ---------------------------------------------------------------------------------

/** Who the browser is signed in as (`GET /user`), or null. */
async function whoami(browser) {
  const res = await browser.request('/user', { headers: { accept: 'application/json' } });
  if (res.status === 401) return null;
  const body = await res.text();
  assert.equal(res.status, 200, body);
  return JSON.parse(body).user;
}

/** A password account through `POST /register`; its address verified through the mailed link
 * when `verified`. Its user. */
async function passwordAccount(email, { verified }) {
  const b = new Browser('owner');
  const res = await b.request('/register', { json: { name: 'Pat Owner', email, password: PASSWORD, password_confirmation: PASSWORD } });
  const body = await res.text();
  assert.equal(res.status, 201, `register: ${body}`);
  if (verified) {
    const mail = await mailTo(email, /verify-email/);
    const link = /http:\/\/127\.0\.0\.1:\d+\/account\/verify-email\/\S+/.exec(mail.text)?.[0];
    assert.ok(link, `a verification link in ${mail.text}`);
    const { res: landed } = await b.follow(link);
    assert.equal(landed.status, 200, 'the verification lands on the account page');
    assert.match(landed.url_.pathname + landed.url_.search, /^\/account\?notice=verified/);
  }
  const user = await whoami(b);
  assert.equal(user.email, email);
  assert.equal(Boolean(user.email_verified_at), verified);
  return Object.assign(user, { browser: b });
}

/** RFC 6238 (SHA-1, 6 digits, 30 s) for a base32 secret. */
function totp(base32, at = Date.now()) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const ch of base32.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(ch).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 30000)));
  const mac = createHmac('sha1', key).update(counter).digest();
  const o = mac[19] & 0xf;
  return String((mac.readUInt32BE(o) & 0x7fffffff) % 1e6).padStart(6, '0');
}

/** Turns on the authenticator-app factor of the account signed in in `b`: its recovery codes. */
async function enableTwoFactor(b) {
  const json = async (path, body) => {
    const res = await b.request(path, { json: body, headers: { accept: 'application/json' } });
    const text = await res.text();
    assert.equal(res.status, 200, `${path}: ${text}`);
    return JSON.parse(text);
  };
  await b.request('/user/confirm-password', { json: { password: PASSWORD } });
  const { secret } = await json('/user/two-factor-authentication', {});
  const { recovery_codes } = await json('/user/confirmed-two-factor-authentication', { code: totp(secret) });
  assert.ok(recovery_codes.length > 0);
  return recovery_codes;
}

/** Accounts a refused identity must not have joined (no notice of a connection may reach them). */
const refusedOwners = [];
let lastRefusal = 0;
function joinRefused(email) {
  refusedOwners.push(email);
  lastRefusal = Date.now();
}

/** "Continue with <provider>" on the sign-in page: the CSRF-checked form post, which must send the
 * browser to the provider with the binding cookie set. The provider's address. */
async function begin(browser, provider) {
  const page = await browser.request('/account/sign-in');
  const html = await page.text();
  assert.equal(page.status, 200);
  assert.match(html, new RegExp(`action="/account/providers/${provider}"`), `a "Continue with" form for ${provider}`);
  const { _token } = hidden(html);
  assert.ok(_token, 'the sign-in page carries a CSRF token');
  const res = await browser.request(`/account/providers/${provider}`, { form: { _token } });
  assert.equal(res.status, 303, `start: ${res.status} ${await res.text()}`);
  assert.ok(browser.cookie('__Host-gatehouse_federation'), 'the browser binding cookie is set');
  return new URL(res.headers.get('location'));
}

/** Through the provider's pages (oidc-provider's login and consent forms; the GitHub stand-in
 * answers at once) until it sends the browser back to gatehouse: that callback address. */
async function atProvider(browser, url, login) {
  const origin = url.origin;
  let next = url;
  for (let steps = 0; steps < 12; steps++) {
    const { res, left } = await browser.follow(next, {}, origin);
    if (left) {
      assert.equal(left.origin, ORIGIN, `the provider sent the browser back to gatehouse, not ${left}`);
      return left;
    }
    const html = await res.text();
    assert.equal(res.status, 200, `at the provider: ${res.status} ${html.slice(0, 500)}`);
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
    assert.ok(action, `a form at the provider: ${html.slice(0, 500)}`);
    const fields = hidden(html);
    if (fields.prompt === 'login') Object.assign(fields, { login, password: 'any password' });
    const posted = await browser.follow(new URL(action.replaceAll('&amp;', '&'), res.url_), { form: fields }, origin);
    if (posted.left) {
      assert.equal(posted.left.origin, ORIGIN, `the provider sent the browser back to gatehouse, not ${posted.left}`);
      return posted.left;
    }
    next = posted.res.url_;
    if (posted.res.status !== 200) assert.fail(`the provider answered ${posted.res.status}: ${await posted.res.text()}`);
  }
  assert.fail('the provider never sent the browser back');
}

/** Opens the callback address in `browser`: what gatehouse answered. */
async function land(browser, callback) {
  const res = await browser.request(callback);
  const html = await res.text();
  return { status: res.status, location: res.headers.get('location'), html, text: text(html) };
}

/** A whole hosted sign-in with `provider` as `login` in a fresh browser (or the one given). */
async function signIn(provider, login, browser = new Browser()) {
  const url = await begin(browser, provider);
  const callback = await atProvider(browser, url, login);
  return { browser, callback, answer: await land(browser, callback) };
}

/** gatehouse counts flows per client (30 starts and 30 callbacks a minute): this suite stays under. */
function throttled(answer) {
  if (answer.status === 429) assert.fail(`throttled: the suite began or finished over 30 flows from 127.0.0.1 within a minute (${answer.text.slice(0, 200)})`);
}

function signedIn(answer) {
  throttled(answer);
  assert.equal(answer.status, 303, `signed in: ${answer.status} ${answer.text.slice(0, 400)}`);
  assert.equal(answer.location, '/account');
}

/** A refusal page: `status`, and the API's message on it. */
function refused(answer, status, message) {
  throttled(answer);
  assert.equal(answer.status, status, `expected ${status}, got ${answer.status} (location ${answer.location}): ${answer.text.slice(0, 400)}`);
  assert.match(answer.text, message);
}

const LINK_REQUIRED = /an account with this address exists/;
const STATE_INVALID = /not begun in this browser, or has expired/;
const FAILED = /answer could not be verified/;
const UNVERIFIED = /does not say this address is verified/;

const login = ({ sub, email, verified = true, name }) =>
  [`sub=${sub}`, email && `email=${email}`, `verified=${verified}`, name && `name=${name}`].filter(Boolean).join(';');

async function tamper(mode) {
  const res = await fetch(`${IDP}/__tamper?mode=${mode}`, { method: 'POST' });
  assert.equal(res.status, 200, await res.text());
}

async function githubUser(user) {
  const res = await fetch(`${GITHUB}/__user`, { method: 'POST', body: JSON.stringify(user) });
  assert.equal(res.status, 200, await res.text());
}

// --- the tests ---------------------------------------------------------------------------------

test('a new identity signs up (address verified: the provider is trusted), then signs in again as the same user', async () => {
  const email = `${fresh('new')}@example.test`;
  const who = { sub: fresh('sub'), email, name: 'Nora New' };
  const first = await signIn('idp', login(who));
  assert.equal(first.callback.pathname, '/account/providers/idp/callback');
  assert.ok(first.callback.searchParams.get('code') && first.callback.searchParams.get('state'));
  assert.equal(first.callback.searchParams.get('iss'), IDP, 'RFC 9207 iss in the answer');
  signedIn(first.answer);
  const user = await whoami(first.browser);
  assert.equal(user.email, email);
  assert.equal(user.name, 'Nora New');
  assert.ok(user.email_verified_at, 'a trusted provider verified the address');
  const account = await first.browser.request('/account');
  assert.equal(account.status, 200);
  assert.match(text(await account.text()), /Connected accounts.*Test IdP/);

  const again = await signIn('idp', login(who));
  signedIn(again.answer);
  assert.equal((await whoami(again.browser)).id, user.id, 'the same user');
});

test('an identity joins an existing password account when the provider is trusted, asserts the address verified, and the account verified it', async () => {
  const email = `${fresh('owner')}@example.test`;
  const owner = await passwordAccount(email, { verified: true });
  const { browser, answer } = await signIn('idp', login({ sub: fresh('sub'), email }));
  signedIn(answer);
  assert.equal((await whoami(browser)).id, owner.id, 'signed in to the existing account');
  const notice = await mailTo(email, /connected/);
  assert.match(notice.text, /Your Test IdP account was connected to your account/);
});

test('an address the IdP does not assert verified is refused, the same for an existing account and a new one (no answer says which addresses have accounts)', async () => {
  const email = `${fresh('owner')}@example.test`;
  await passwordAccount(email, { verified: true });
  const existing = await signIn('idp', login({ sub: fresh('sub'), email, verified: false }));
  refused(existing.answer, 403, UNVERIFIED);
  joinRefused(email);
  assert.equal(await whoami(existing.browser), null);

  const nobody = await signIn('idp', login({ sub: fresh('sub'), email: `${fresh('nobody')}@example.test`, verified: false }));
  refused(nobody.answer, 403, UNVERIFIED);
  assert.equal(await whoami(nobody.browser), null);
});

test('an untrusted provider never joins an account, even a verified one with the address asserted verified; its owner connects it from the account page', async () => {
  const email = `${fresh('owner')}@example.test`;
  const owner = await passwordAccount(email, { verified: true });
  const identity = login({ sub: fresh('sub'), email });
  const { browser, answer } = await signIn('idp-untrusted', identity);
  refused(answer, 409, LINK_REQUIRED);
  assert.equal(await whoami(browser), null);

  // The remedy the refusal names: signed in to the account, "Connect" with the password.
  const b = owner.browser;
  const page = await b.request('/account');
  const html = await page.text();
  const form = /<form[^>]*action="\/account\/providers\/idp-untrusted\/link"[^>]*>([\s\S]*?)<\/form>/.exec(html);
  assert.ok(form, 'a "Connect" form for the provider on the account page');
  const { _token } = hidden(form[1]);
  const started = await b.request('/account/providers/idp-untrusted/link', { form: { _token, password: PASSWORD } });
  assert.equal(started.status, 303, `link: ${started.status} ${text(await started.text()).slice(0, 300)}`);
  const callback = await atProvider(b, new URL(started.headers.get('location')), identity);
  const linked = await land(b, callback);
  assert.equal(linked.status, 303, `linked: ${linked.status} ${linked.text.slice(0, 300)}`);
  assert.equal(linked.location, '/account?notice=provider-linked');
  assert.match(text(await (await b.request('/account')).text()), /Connected accounts.*Untrusted IdP/);
  const notice = await mailTo(email, /connected/);
  assert.match(notice.text, /Your Untrusted IdP account was connected to your account/);
  // Connected, it signs in to that account.
  const again = await signIn('idp-untrusted', identity);
  signedIn(again.answer);
  assert.equal((await whoami(again.browser)).id, owner.id);
});

test('an account that has not verified its own address is never joined', async () => {
  const email = `${fresh('owner')}@example.test`;
  await passwordAccount(email, { verified: false });
  const { browser, answer } = await signIn('idp', login({ sub: fresh('sub'), email }));
  refused(answer, 409, LINK_REQUIRED);
  joinRefused(email);
  assert.equal(await whoami(browser), null);
});

test('a state begun in another browser is refused there, and the browser that began it can still finish', async () => {
  const email = `${fresh('new')}@example.test`;
  const a = new Browser('A');
  const url = await begin(a, 'idp');
  const callback = await atProvider(a, url, login({ sub: fresh('sub'), email }));
  // B: another browser (no binding cookie) opens A's callback address.
  // B: another browser, holding a binding of its own (it began a flow of its own), opens A's
  // callback address.
  const b = new Browser('B');
  await begin(b, 'idp');
  refused(await land(b, callback), 400, STATE_INVALID);
  assert.equal(await whoami(b), null);
  // A: the flow is A's still (the code unspent).
  signedIn(await land(a, callback));
  assert.equal((await whoami(a)).email, email);
});

test('a replayed callback is refused', async () => {
  const { browser, callback, answer } = await signIn('idp', login({ sub: fresh('sub'), email: `${fresh('new')}@example.test` }));
  signedIn(answer);
  const user = await whoami(browser);
  refused(await land(browser, callback), 400, STATE_INVALID);
  // And the session the first one opened is untouched.
  assert.equal((await whoami(browser)).id, user.id);
});

/** The reason gatehouse logged for the ID tokens it refused (`federation_id_token_refused`). */
async function refusalReasons() {
  const log = (await readFile(LOG, 'utf8')).replace(/\x1b\[[0-9;]*m/g, '');
  return [...log.matchAll(/federation_id_token_refused.*?why="?([^"\n]+)"?/g)].map((m) => m[1].trim());
}

const IDP_KEYS = jose.createRemoteJWKSet(new URL(`${IDP}/jwks`));
const verifies = (token, options = {}) => jose.jwtVerify(token, IDP_KEYS, { issuer: IDP, audience: 'gatehouse', ...options });

/** Each forgery breaks exactly the rule its test names: everything else about it is valid. */
const FORGERIES = {
  async nonce({ original, tampered }) {
    const { payload } = await verifies(tampered);
    assert.notEqual(payload.nonce, jose.decodeJwt(original).nonce);
  },
  async aud({ tampered }) {
    await verifies(tampered, { audience: 'someone-else' });
    await assert.rejects(verifies(tampered), { code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'aud' });
  },
  async key({ original, tampered }) {
    assert.equal(jose.decodeProtectedHeader(tampered).kid, jose.decodeProtectedHeader(original).kid);
    assert.deepEqual(jose.decodeJwt(tampered), jose.decodeJwt(original));
    await assert.rejects(verifies(tampered), { code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' });
  },
  async expired({ tampered }) {
    const { exp } = jose.decodeJwt(tampered);
    await verifies(tampered, { currentDate: new Date((exp - 60) * 1000) });
    await assert.rejects(verifies(tampered), { code: 'ERR_JWT_EXPIRED' });
  },
  async iss({ tampered }) {
    await verifies(tampered, { issuer: 'http://127.0.0.1:9' });
    await assert.rejects(verifies(tampered), { code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'iss' });
  },
  async none({ original, tampered }) {
    assert.equal(jose.decodeProtectedHeader(tampered).alg, 'none');
    assert.deepEqual(jose.decodeJwt(tampered), jose.decodeJwt(original));
  },
  async hs256({ original, tampered }) {
    assert.equal(jose.decodeProtectedHeader(tampered).alg, 'HS256');
    assert.deepEqual(jose.decodeJwt(tampered), jose.decodeJwt(original));
  },
};

for (const [mode, what, why] of [
  ['nonce', 'a wrong nonce', /nonce/],
  ['aud', 'an ID token for another audience', /Audience/],
  ['key', 'an ID token signed by another key under the same kid', /Signature/],
  ['expired', 'an expired ID token', /expired/],
  ['iss', 'an ID token from another issuer', /Issuer/],
  ['none', 'an unsigned ID token (alg none)', /header|algorithm/],
  ['hs256', "an ID token HMAC-signed with the client's secret", /algorithm/],
]) {
  test(`${what} is refused (federation_failed), and no account is made`, async () => {
    const email = `${fresh(mode)}@example.test`;
    const browser = new Browser();
    const url = await begin(browser, 'idp');
    const callback = await atProvider(browser, url, login({ sub: fresh('sub'), email }));
    const before = (await refusalReasons()).length;
    await tamper(mode);
    try {
      refused(await land(browser, callback), 502, FAILED);
    } finally {
      await tamper('off');
    }
    const state = await (await fetch(`${IDP}/__tamper`)).json();
    assert.equal(state.last?.mode, mode, 'the token endpoint was called and its answer rewritten');
    await FORGERIES[mode](state.last);
    const reasons = (await refusalReasons()).slice(before);
    assert.equal(reasons.length, 1, `one ID token refused: ${reasons}`);
    assert.match(reasons[0], why, 'refused for the rule this forgery breaks');
    assert.equal(await whoami(browser), null);
  });
}

test('GitHub: a new account signs up through the stand-in, then signs in again as the same user', async () => {
  const email = `${fresh('gh')}@example.test`;
  const id = 100000 + Math.floor(Math.random() * 1e6);
  await githubUser({
    id, login: fresh('octo'), name: 'Gita Hub',
    emails: [
      { email: `${fresh('other')}@example.test`, primary: false, verified: true },
      { email, primary: true, verified: true },
    ],
  });
  const first = await signIn('github', 'ignored');
  assert.equal(first.callback.pathname, '/account/providers/github/callback');
  signedIn(first.answer);
  const user = await whoami(first.browser);
  assert.equal(user.email, email, 'the primary address');
  assert.equal(user.name, 'Gita Hub');
  assert.ok(user.email_verified_at);

  const again = await signIn('github', 'ignored');
  signedIn(again.answer);
  assert.equal((await whoami(again.browser)).id, user.id);
  const refusals = (await (await fetch(`${GITHUB}/__log`)).json()).refusals;
  assert.deepEqual(refusals, [], 'every exchange passed the stand-in (client, code once, redirect_uri, PKCE)');
});

test('GitHub: an account whose primary address GitHub has not verified is refused', async () => {
  const email = `${fresh('gh')}@example.test`;
  await githubUser({
    id: 200000 + Math.floor(Math.random() * 1e6), name: 'Una Verified',
    emails: [
      { email, primary: true, verified: false },
      { email: `${fresh('verified-secondary')}@example.test`, primary: false, verified: true },
    ],
  });
  const { browser, answer } = await signIn('github', 'ignored');
  refused(answer, 403, UNVERIFIED);
  assert.equal(await whoami(browser), null);
});

test('a single-page app: start and callback through the JSON routes', async () => {
  const email = `${fresh('spa')}@example.test`;
  const browser = new Browser('spa');
  // What fetch() from the app's own page sends.
  const sameOrigin = { 'sec-fetch-site': 'same-origin', accept: 'application/json' };
  const providers = await (await browser.request('/auth/providers', { headers: sameOrigin })).json();
  assert.deepEqual(providers.providers.map((p) => p.id).sort(), ['github', 'idp', 'idp-untrusted']);
  const started = await browser.request('/auth/providers/idp/start', { json: { remember: false }, headers: sameOrigin });
  const body = await started.text();
  assert.equal(started.status, 200, body);
  const { url } = JSON.parse(body);
  assert.ok(url.startsWith(`${IDP}/`), url);
  assert.ok(browser.cookie('__Host-gatehouse_federation'), 'the binding cookie');
  const callback = await atProvider(browser, new URL(url), login({ sub: fresh('sub'), email }));
  const q = callback.searchParams;
  const finished = await browser.request('/auth/providers/idp/callback', {
    json: { code: q.get('code'), state: q.get('state'), iss: q.get('iss') },
    headers: sameOrigin,
  });
  const answer = await finished.text();
  assert.equal(finished.status, 200, answer);
  assert.equal(JSON.parse(answer).user.email, email);
  assert.ok(browser.cookie('__Host-gatehouse_session'), 'a session cookie');
  assert.equal((await whoami(browser)).email, email);
  // The JSON callback replayed: refused with the API's code.
  const replay = await browser.request('/auth/providers/idp/callback', {
    json: { code: q.get('code'), state: q.get('state'), iss: q.get('iss') },
    headers: sameOrigin,
  });
  const error = await replay.json();
  assert.equal(replay.status, 400);
  assert.equal(error.error.code, 'federation_state_invalid');
});

test('a provider sign-in is one factor: an account with a second factor answers its challenge first', async () => {
  const email = `${fresh('2fa')}@example.test`;
  const owner = await passwordAccount(email, { verified: true });
  const recovery = await enableTwoFactor(owner.browser);
  // A trusted identity asserting the verified address joins the account, and still meets the challenge.
  const { browser, answer } = await signIn('idp', login({ sub: fresh('sub'), email }));
  assert.equal(answer.status, 200, `the challenge page: ${answer.status} ${answer.location} ${answer.text.slice(0, 300)}`);
  assert.match(answer.text, /Two-factor authentication/);
  assert.equal(await whoami(browser), null, 'no session before the second factor');
  const fields = hidden(answer.html);
  assert.ok(fields.challenge && fields._token, 'the challenge form');
  const done = await browser.request('/account/two-factor-challenge', {
    form: { _token: fields._token, challenge: fields.challenge, recovery_code: recovery[0] },
  });
  assert.equal(done.status, 303, await done.text());
  assert.equal((await whoami(browser)).id, owner.id);
});

test('no refused identity announced a connection to the account it did not join', async () => {
  // Past the notice delay (GATEHOUSE_NOTICE_DELAY_SECONDS=2) after the last refusal, and a
  // worker pass.
  const wait = lastRefusal + 4000 - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  assert.ok(refusedOwners.length >= 2);
  for (const email of refusedOwners) {
    const connected = (await mails(email)).filter((m) => /connected/.test(m.subject));
    assert.deepEqual(connected, [], `${email} was told of a connection that was refused`);
  }
});

test('gatehouse logged no error through all of it (refusals are warnings, sign-ins nothing)', async () => {
  const log = (await readFile(LOG, 'utf8')).replace(/\x1b\[[0-9;]*m/g, '');
  const errors = log.split('\n').filter((line) => /\bERROR\b/.test(line));
  assert.deepEqual(errors, []);
});
