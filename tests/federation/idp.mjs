// A Google-like OpenID provider for the federation tests: panva's oidc-provider (OpenID
// Certified), not code written here, on 127.0.0.1 with two confidential clients of gatehouse
// (`gatehouse`, which gatehouse trusts for addresses, and `gatehouse-untrusted`), PKCE required,
// client_secret_basic, and its own development login and consent pages (devInteractions).
//
// Who signs in is the login typed on the IdP's page, read as `key=value` pairs separated by ';':
//   sub=alice;email=alice@example.test;verified=true;name=Alice
// (no password check: any password). The claims go out through userinfo, as a provider that
// keeps the ID token small does (the relying party reads userinfo when the token has no email).
//
// Control endpoint, for the tests: `POST /__tamper?mode=<mode>` rewrites the `id_token` of the
// token endpoint's next answer (once):
//   aud      issued to another audience, re-signed with the IdP's real key
//   key      signed by another key under the same `kid`
//   expired  `exp` in the past, re-signed
//   nonce    another `nonce`, re-signed
//   none     `alg: none`, no signature
//   hs256    HMAC-signed with the client's secret (the classic key-confusion forgery)
//   iss      another issuer, re-signed
// `POST /__tamper?mode=off` clears it; `GET /__tamper` says what is armed, how many were rewritten,
// and the last rewrite (`{mode, original, tampered}`: the tests check each forgery is what it claims).
//
// Environment: IDP_PORT, GATEHOUSE_URL (the callbacks are <GATEHOUSE_URL>/account/providers/<id>/callback),
// IDP_SECRET_TRUSTED, IDP_SECRET_UNTRUSTED (the clients' secrets). Prints "listening on <issuer>".

import { randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';
import * as jose from 'jose';

const port = Number(process.env.IDP_PORT);
const gatehouse = process.env.GATEHOUSE_URL;
const secrets = { gatehouse: process.env.IDP_SECRET_TRUSTED, 'gatehouse-untrusted': process.env.IDP_SECRET_UNTRUSTED };
if (!port || !gatehouse || !secrets.gatehouse || !secrets['gatehouse-untrusted']) {
  throw new Error('set IDP_PORT, GATEHOUSE_URL, IDP_SECRET_TRUSTED and IDP_SECRET_UNTRUSTED (scripts/federation-test does)');
}
const issuer = `http://127.0.0.1:${port}`;
const KID = 'idp-signing-1';

// The IdP's signing key, made at start; its private half is kept to re-sign tampered tokens.
const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
const signingJwk = { ...(await jose.exportJWK(privateKey)), kid: KID, alg: 'RS256', use: 'sig' };
// Another key, never published, for the `key` mode.
const { privateKey: otherKey } = await jose.generateKeyPair('RS256');

/** The claims a login names (see the header). */
export function claimsOf(login) {
  const fields = Object.fromEntries(
    String(login).split(';').map((kv) => kv.split('=')).filter((kv) => kv.length === 2).map(([k, v]) => [k.trim(), v.trim()]),
  );
  const claims = { sub: fields.sub || login };
  if (fields.email) claims.email = fields.email;
  if (fields.verified !== undefined) claims.email_verified = fields.verified === 'true';
  if (fields.name) claims.name = fields.name;
  return claims;
}

const redirect_uris = ['idp', 'idp-untrusted'].map((id) => `${gatehouse}/account/providers/${id}/callback`);
const client = (client_id) => ({
  client_id,
  client_secret: secrets[client_id],
  redirect_uris,
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
});

const provider = new Provider(issuer, {
  clients: [client('gatehouse'), client('gatehouse-untrusted')],
  jwks: { keys: [signingJwk] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  async findAccount(ctx, id) {
    return { accountId: id, async claims() { return claimsOf(id); } };
  },
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  // Every flow asks for consent anew (no grant is remembered across the tests' fresh browsers anyway).
  renderError(ctx, out) {
    ctx.type = 'json';
    ctx.body = out;
  },
});

// --- tampering with the token endpoint's answer -------------------------------------------------
let armed = null;
let rewritten = 0;
/** The last rewrite: the mode, and the ID token before and after. */
let last = null;

async function tampered(idToken, mode, clientId) {
  const header = jose.decodeProtectedHeader(idToken);
  const payload = jose.decodeJwt(idToken);
  const now = Math.floor(Date.now() / 1000);
  const sign = (claims, key = privateKey, hdr = { alg: 'RS256', kid: header.kid, typ: header.typ }) =>
    new jose.SignJWT(claims).setProtectedHeader(hdr).sign(key);
  switch (mode) {
    case 'aud': return sign({ ...payload, aud: 'someone-else', azp: 'someone-else' });
    case 'key': return sign(payload, otherKey);
    case 'expired': return sign({ ...payload, iat: now - 7200, exp: now - 3600 });
    case 'nonce': return sign({ ...payload, nonce: 'not-the-nonce-of-this-flow' });
    case 'iss': return sign({ ...payload, iss: 'http://127.0.0.1:9' });
    case 'none': {
      const enc = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
      return `${enc({ alg: 'none', typ: 'JWT' })}.${enc(payload)}.`;
    }
    case 'hs256':
      return sign(payload, new TextEncoder().encode(secrets[clientId]), { alg: 'HS256', kid: header.kid });
    default: throw new Error(`unknown tamper mode ${mode}`);
  }
}

/** The client id of a client_secret_basic request. */
function basicUser(ctx) {
  const m = /^Basic (.+)$/i.exec(ctx.get('authorization'));
  if (!m) return undefined;
  return decodeURIComponent(Buffer.from(m[1], 'base64').toString().split(':')[0]);
}

const MODES = new Set(['aud', 'key', 'expired', 'nonce', 'iss', 'none', 'hs256']);

provider.use(async (ctx, next) => {
  if (ctx.path === '/__tamper') {
    if (ctx.method === 'GET') {
      ctx.body = { armed, rewritten, last };
      return;
    }
    const mode = ctx.query.mode;
    if (ctx.method !== 'POST' || !(mode === 'off' || MODES.has(mode))) {
      ctx.status = 400;
      ctx.body = { error: `POST /__tamper?mode=${[...MODES, 'off'].join('|')}` };
      return;
    }
    armed = mode === 'off' ? null : mode;
    ctx.body = { armed, rewritten };
    return;
  }
  await next();
  if (ctx.path === '/token' && armed && ctx.status === 200 && ctx.body && typeof ctx.body.id_token === 'string') {
    const mode = armed;
    armed = null;
    const original = ctx.body.id_token;
    const idToken = await tampered(original, mode, ctx.oidc?.client?.clientId ?? basicUser(ctx));
    ctx.body = { ...ctx.body, id_token: idToken };
    rewritten += 1;
    last = { mode, original, tampered: idToken };
  }
});

provider.listen(port, '127.0.0.1', () => {
  console.log(`listening on ${issuer}`);
});
