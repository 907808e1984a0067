// gatehouse's OAuth 2.1 / OpenID Connect provider, driven by panva's openid-client (an OpenID
// Certified relying party library) — not by code written here. The browser part (sign-in and the
// consent page) is plain HTTP with a cookie jar: what a person's browser would send, following
// every redirect the provider answers.
//
// GATEHOUSE_URL: the server (`gatehouse serve`, or the Lambda binaries behind the test router).
// GATEHOUSE_OAUTH_REGISTRATION_TOKEN: the initial access token that opens client registration.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as client from 'openid-client';

const BASE = process.env.GATEHOUSE_URL;
const REG_TOKEN = process.env.GATEHOUSE_OAUTH_REGISTRATION_TOKEN;
if (!BASE || !REG_TOKEN) {
  throw new Error('set GATEHOUSE_URL and GATEHOUSE_OAUTH_REGISTRATION_TOKEN (scripts/oidc-test does)');
}
const REDIRECT = 'http://127.0.0.1:9/callback';

/** A browser: a cookie jar, manual redirects. */
class Browser {
  constructor() { this.jar = new Map(); }
  cookieHeader() { return [...this.jar].map(([k, v]) => `${k}=${v}`).join('; '); }
  store(res) {
    for (const c of res.headers.getSetCookie()) {
      const [pair, ...attrs] = c.split(';');
      const i = pair.indexOf('=');
      const name = pair.slice(0, i).trim();
      const value = pair.slice(i + 1).trim();
      const expired = attrs.some((a) => /max-age=0\b/i.test(a.trim())) || value === '';
      if (expired) this.jar.delete(name); else this.jar.set(name, value);
    }
  }
  async request(url, init = {}) {
    const headers = { ...(init.headers || {}), cookie: this.cookieHeader() };
    const res = await fetch(new URL(url, BASE), { ...init, headers, redirect: 'manual' });
    this.store(res);
    return res;
  }
  /** Follows redirects within gatehouse; stops at (and returns) one leaving it. */
  async follow(url, init = {}) {
    let res = await this.request(url, init);
    for (let hops = 0; hops < 10 && res.status >= 300 && res.status < 400; hops++) {
      const next = new URL(res.headers.get('location'), BASE);
      if (next.origin !== new URL(BASE).origin) return { res, location: next };
      res = await this.request(next);
    }
    return { res, location: null };
  }
}

function hidden(html) {
  const fields = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)) {
    fields[m[1]] = m[2].replaceAll('&amp;', '&').replaceAll('&quot;', '"').replaceAll('&lt;', '<').replaceAll('&gt;', '>');
  }
  return fields;
}

async function register(browser, email, password) {
  const res = await fetch(new URL('/register', BASE), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'Ada Lovelace', email, password, password_confirmation: password }),
  });
  if (res.status !== 201) assert.fail(`register: ${res.status} ${await res.text()}`);
}

async function signInThroughPages(browser, email, password) {
  const page = await browser.request('/account/sign-in');
  const token = hidden(await page.text())._token;
  assert.ok(token, 'the sign-in page carries a CSRF token');
  const body = new URLSearchParams({ _token: token, email, password });
  return browser.follow('/account/sign-in', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body,
  });
}

async function registerClient(metadata) {
  const res = await fetch(new URL('/oauth/register', BASE), {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${REG_TOKEN}` },
    body: JSON.stringify(metadata),
  });
  const text = await res.text();
  assert.equal(res.status, 201, text);
  return JSON.parse(text);
}

async function discover(c, auth) {
  const config = await client.discovery(new URL(BASE), c.client_id, c.client_secret, auth, {
    execute: [client.allowInsecureRequests],
  });
  return config;
}

const password = 'correct horse battery staple 42';
const rp = await registerClient({
  client_name: 'Conformance RP',
  redirect_uris: [REDIRECT],
  grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
  scope: 'openid profile email offline_access read',
  token_endpoint_auth_method: 'client_secret_basic',
});

/** The whole authorization-code flow through the real pages; returns the token response. */
async function authorize(config, browser, email, { scope = 'openid profile email offline_access read' } = {}) {
  const verifier = client.randomPKCECodeVerifier();
  const challenge = await client.calculatePKCECodeChallenge(verifier);
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT, scope, code_challenge: challenge, code_challenge_method: 'S256', state, nonce,
  });
  // Not signed in: the endpoint sends the browser to sign in, then back to itself.
  let { res, location } = await browser.follow(url);
  if (res.status === 200 && (await res.clone().text()).includes('action="/account/sign-in"')) {
    ({ res, location } = await signInThroughPages(browser, email, password));
  }
  if (!location) {
    const html = await res.text();
    assert.equal(res.status, 200, html);
    assert.match(html, /wants to use your account/, 'the consent page');
    const fields = hidden(html);
    fields.decision = 'allow';
    ({ res, location } = await browser.follow('/account/oauth/authorize', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields),
    }));
  }
  assert.ok(location, `redirected back to the client (status ${res.status})`);
  assert.equal(location.origin + location.pathname, REDIRECT);
  const tokens = await client.authorizationCodeGrant(config, location, {
    pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true,
  });
  return { tokens, location };
}

test('discovery, code + PKCE through the consent page, ID token, userinfo, refresh rotation', async () => {
  const config = await discover(rp);
  const meta = config.serverMetadata();
  assert.equal(meta.issuer, BASE);
  assert.deepEqual(meta.code_challenge_methods_supported, ['S256']);
  const email = `ada+${Date.now()}@example.com`;
  const browser = new Browser();
  await register(browser, email, password);
  const { tokens, location } = await authorize(config, browser, email);
  assert.equal(location.searchParams.get('iss'), BASE, 'RFC 9207 iss in the response');
  const claims = tokens.claims();
  assert.equal(claims.iss, BASE);
  assert.equal(claims.aud, rp.client_id);
  assert.equal(claims.email, email);
  assert.ok(claims.exp > Date.now() / 1000);
  assert.equal(tokens.token_type.toLowerCase(), 'bearer');
  assert.ok(tokens.refresh_token, 'a refresh token');
  const header = JSON.parse(Buffer.from(tokens.access_token.split('.')[0], 'base64url'));
  assert.equal(header.typ, 'at+jwt');
  assert.equal(header.alg, 'ES256');

  const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  assert.equal(info.sub, claims.sub);
  assert.equal(info.email, email);
  assert.equal(info.name, 'Ada Lovelace');

  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  assert.notEqual(refreshed.refresh_token, tokens.refresh_token, 'rotated');
  assert.equal(refreshed.claims().sub, claims.sub);
  // The spent one again: refused, and the family is gone with it.
  await assert.rejects(client.refreshTokenGrant(config, tokens.refresh_token), (e) => e.error === 'invalid_grant');
  await assert.rejects(client.refreshTokenGrant(config, refreshed.refresh_token), (e) => e.error === 'invalid_grant');
  const dead = await client.tokenIntrospection(config, refreshed.access_token);
  assert.equal(dead.active, false, 'the family took its access tokens with it');

  // Consent was given once: the second authorization asks nothing.
  const again = await authorize(config, browser, email);
  assert.ok(again.tokens.access_token);
});

test('introspection and revocation (RFC 7662, RFC 7009)', async () => {
  const config = await discover(rp);
  const email = `grace+${Date.now()}@example.com`;
  const browser = new Browser();
  await register(browser, email, password);
  const { tokens } = await authorize(config, browser, email);
  const live = await client.tokenIntrospection(config, tokens.access_token);
  assert.equal(live.active, true);
  assert.equal(live.client_id, rp.client_id);
  assert.equal(live.sub, tokens.claims().sub);
  const rt = await client.tokenIntrospection(config, tokens.refresh_token);
  assert.equal(rt.active, true);
  await client.tokenRevocation(config, tokens.refresh_token);
  assert.equal((await client.tokenIntrospection(config, tokens.refresh_token)).active, false);
  assert.equal((await client.tokenIntrospection(config, tokens.access_token)).active, false);
  await assert.rejects(client.fetchUserInfo(config, tokens.access_token, tokens.claims().sub));
});

test('no offline_access, no refresh token', async () => {
  const config = await discover(rp);
  const email = `lin+${Date.now()}@example.com`;
  const browser = new Browser();
  await register(browser, email, password);
  const { tokens } = await authorize(config, browser, email, { scope: 'openid email' });
  assert.ok(tokens.access_token);
  assert.equal(tokens.refresh_token, undefined, 'the grant ends with its access token');
});

test('client credentials, client_secret_post, and a wrong secret', async () => {
  const post = await discover(rp, client.ClientSecretPost(rp.client_secret));
  const m2m = await client.clientCredentialsGrant(post, { scope: 'read' });
  assert.equal(m2m.scope, 'read');
  const payload = JSON.parse(Buffer.from(m2m.access_token.split('.')[1], 'base64url'));
  assert.equal(payload.sub, rp.client_id);
  assert.equal(payload.client_id, rp.client_id);
  assert.ok(payload.jti && payload.exp - payload.iat <= 600);
  const wrong = await discover({ ...rp, client_secret: 'x'.repeat(43) });
  // 401 with a WWW-Authenticate challenge (RFC 6749 §5.2), which openid-client surfaces as such.
  await assert.rejects(client.clientCredentialsGrant(wrong, { scope: 'read' }), (e) => e.status === 401);
  await assert.rejects(client.clientCredentialsGrant(post, { scope: 'openid' }), (e) => e.error === 'invalid_scope');
});

test('a public client with PKCE alone', async () => {
  const pub = await registerClient({
    client_name: 'Mobile app',
    redirect_uris: [REDIRECT],
    grant_types: ['authorization_code', 'refresh_token'],
    scope: 'openid email offline_access',
    token_endpoint_auth_method: 'none',
  });
  assert.equal(pub.client_secret, undefined);
  const config = await client.discovery(new URL(BASE), pub.client_id, undefined, client.None(), {
    execute: [client.allowInsecureRequests],
  });
  const email = `kat+${Date.now()}@example.com`;
  const browser = new Browser();
  await register(browser, email, password);
  const { tokens } = await authorize(config, browser, email, { scope: 'openid email offline_access' });
  assert.equal(tokens.claims().email, email);
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  assert.ok(refreshed.access_token);
});
