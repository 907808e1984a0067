// A local stand-in for GitHub's OAuth app endpoints and user API, as gatehouse's GitHub provider
// calls them (GATEHOUSE_FEDERATION_GITHUB_AUTHORIZE_URL, _TOKEN_URL, _API_URL), strict where
// GitHub is and answering as GitHub does (a refused code exchange is 200 with an `error` field).
//
//   GET  /login/oauth/authorize   redirects straight back to redirect_uri with a code for the
//                                 "current user" and the `state` echoed; records code_challenge
//   POST /login/oauth/access_token  client id and secret, the code (once, 10 minutes), its
//                                 redirect_uri, and PKCE S256 code_verifier against the challenge
//   GET  /api/user, /api/user/emails  (Bearer) the user the token was issued for
//
// Control endpoints, for the tests:
//   POST /__user  {id, login, name, emails: [{email, primary, verified}]}: the next sign-ins' user
//   GET  /__log   what the token endpoint refused, and why (newest last)
//
// Environment: GITHUB_PORT, GITHUB_CLIENT_ID, GITHUB_CLIENT_SECRET. Prints "listening on <url>".

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';

const port = Number(process.env.GITHUB_PORT);
const clientId = process.env.GITHUB_CLIENT_ID;
const clientSecret = process.env.GITHUB_CLIENT_SECRET;
if (!port || !clientId || !clientSecret) {
  throw new Error('set GITHUB_PORT, GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET (scripts/federation-test does)');
}

let current = {
  id: 1, login: 'octocat', name: 'The Octocat',
  emails: [{ email: 'octocat@example.test', primary: true, verified: true }],
};
/** code -> {user, challenge, method, redirect_uri, client_id, until} */
const codes = new Map();
/** access token -> user */
const tokens = new Map();
const refusals = [];

const same = (a, b) => {
  const x = Buffer.from(String(a)), y = Buffer.from(String(b));
  return x.length === y.length && timingSafeEqual(x, y);
};

function send(res, status, body, headers = {}) {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
}

async function body(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return Buffer.concat(chunks).toString();
}

function authorize(url, res) {
  const q = url.searchParams;
  const redirect = q.get('redirect_uri');
  if (q.get('client_id') !== clientId || !redirect) {
    return send(res, 404, { error: 'unknown client or no redirect_uri' });
  }
  const back = new URL(redirect);
  if (q.get('code_challenge_method') !== 'S256' || !q.get('code_challenge')) {
    // GitHub would take a request without PKCE; the stand-in insists, to see gatehouse send it.
    back.searchParams.set('error', 'invalid_request');
    back.searchParams.set('error_description', 'PKCE S256 required by this stand-in');
  } else {
    const code = randomBytes(10).toString('hex');
    codes.set(code, {
      user: structuredClone(current), challenge: q.get('code_challenge'), redirect_uri: redirect,
      scope: q.get('scope'), until: Date.now() + 10 * 60 * 1000,
    });
    back.searchParams.set('code', code);
  }
  if (q.has('state')) back.searchParams.set('state', q.get('state'));
  res.writeHead(302, { location: back.toString() });
  res.end();
}

async function accessToken(req, res) {
  const form = new URLSearchParams(await body(req));
  const refuse = (error, why) => {
    refusals.push({ error, why });
    // GitHub answers a refused exchange with 200 and an error.
    send(res, 200, { error, error_description: why });
  };
  if (!same(form.get('client_id') ?? '', clientId) || !same(form.get('client_secret') ?? '', clientSecret)) {
    return refuse('incorrect_client_credentials', 'client_id or client_secret wrong');
  }
  const code = form.get('code') ?? '';
  const grant = codes.get(code);
  codes.delete(code);
  if (!grant || grant.until < Date.now()) return refuse('bad_verification_code', 'unknown, used or expired code');
  if (form.get('redirect_uri') !== grant.redirect_uri) return refuse('redirect_uri_mismatch', 'redirect_uri differs');
  const verifier = form.get('code_verifier') ?? '';
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  if (!verifier || !same(challenge, grant.challenge)) return refuse('bad_verification_code', 'code_verifier does not match');
  const token = `gho_${randomBytes(18).toString('hex')}`;
  tokens.set(token, grant.user);
  const json = (req.headers.accept ?? '').includes('application/json');
  if (!json) {
    // GitHub's default answer is form-encoded.
    res.writeHead(200, { 'content-type': 'application/x-www-form-urlencoded' });
    return res.end(new URLSearchParams({ access_token: token, scope: grant.scope ?? '', token_type: 'bearer' }).toString());
  }
  send(res, 200, { access_token: token, scope: grant.scope ?? '', token_type: 'bearer' });
}

function api(req, res, path) {
  const m = /^Bearer (\S+)$/i.exec(req.headers.authorization ?? '') ?? /^token (\S+)$/i.exec(req.headers.authorization ?? '');
  const user = m && tokens.get(m[1]);
  if (!user) return send(res, 401, { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' });
  if (path === '/api/user') {
    return send(res, 200, { id: user.id, login: user.login, name: user.name ?? null, email: null, type: 'User' });
  }
  return send(res, 200, user.emails.map((e) => ({ visibility: e.primary ? 'private' : null, ...e })));
}

const server = createServer(async (req, res) => {
  try {
    const url = new URL(req.url, `http://127.0.0.1:${port}`);
    const route = `${req.method} ${url.pathname}`;
    if (route === 'GET /login/oauth/authorize') return authorize(url, res);
    if (route === 'POST /login/oauth/access_token') return await accessToken(req, res);
    if (route === 'GET /api/user' || route === 'GET /api/user/emails') return api(req, res, url.pathname);
    if (route === 'POST /__user') {
      const u = JSON.parse(await body(req));
      if (typeof u.id !== 'number' || !Array.isArray(u.emails)) return send(res, 400, { error: 'id (number) and emails' });
      current = { login: `user${u.id}`, ...u };
      return send(res, 200, current);
    }
    if (route === 'GET /__log') return send(res, 200, { refusals });
    send(res, 404, { message: 'Not Found' });
  } catch (e) {
    send(res, 500, { message: String(e) });
  }
});

server.listen(port, '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${port}`));
