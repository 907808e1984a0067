// Registration, the mailed verification link, sign-in and sign-out, errors as GatehouseError,
// the CSRF rule as README states it, and the login throttle's 429 with Retry-After.
import assert from "node:assert/strict";
import { test } from "node:test";
import { GatehouseError, createGatehouse } from "../dist/index.js";
import { APP_ORIGIN, BASE, PASSWORD, freshEmail, newClient, registered, waitForMail } from "./helpers.mjs";

/** Runs `fn` and returns the GatehouseError it must throw. */
async function refused(fn) {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof GatehouseError, `a GatehouseError, not ${e}`);
    return e;
  }
  assert.fail("expected a GatehouseError");
}

test("register signs in; the mailed verification link verifies the address", async () => {
  const { gatehouse, jar, email, user } = await registered("verify", "Ann Verify");
  assert.equal(user.email, email);
  assert.equal(user.name, "Ann Verify");
  assert.equal(user.email_verified_at, null);
  assert.equal(user.two_factor_enabled, false);
  assert.ok(jar.get("__Host-gatehouse_session"), "the session cookie is in the jar");
  assert.equal((await gatehouse.user()).id, user.id);

  const link = await waitForMail(email, /verify/i, /http:\/\/127\.0\.0\.1:\d+\/account\/verify-email\/\S+/);
  const verification = await gatehouse.verifyEmail(link);
  assert.equal(verification.verified, true);
  const after = await gatehouse.user();
  assert.ok(after.email_verified_at, "email_verified_at is set");
  assert.ok(Math.abs(Date.parse(after.email_verified_at) - Date.now()) < 120_000);

  // Another account cannot use the link: the API's code comes through.
  const other = await registered("verify-other");
  const e = await refused(() => other.gatehouse.verifyEmail(link));
  assert.equal(e.status, 403);
  assert.equal(e.code, "not_your_link");
});

test("sign out ends the session; sign in opens a new one", async () => {
  const { gatehouse, jar, email, user } = await registered("inout");
  const first = jar.get("__Host-gatehouse_session");
  await gatehouse.signOut();
  assert.equal(jar.get("__Host-gatehouse_session"), undefined, "the cleared cookie left the jar");
  const e = await refused(() => gatehouse.user());
  assert.equal(e.status, 401);
  assert.equal(e.code, "unauthenticated");

  const result = await gatehouse.signIn({ email, password: PASSWORD, remember: true });
  assert.equal(result.kind, "signed_in");
  assert.equal(result.user.id, user.id);
  const second = jar.get("__Host-gatehouse_session");
  assert.ok(second && second !== first, "a fresh session id");
  assert.equal((await gatehouse.user()).email, email);
});

test("a wrong password is a GatehouseError with the API's code, message and fields", async () => {
  const { email } = await registered("wrongpw");
  const { gatehouse } = newClient();
  const e = await refused(() => gatehouse.signIn({ email, password: "not the password at all" }));
  assert.equal(e.status, 422);
  assert.equal(e.code, "validation_failed");
  assert.match(e.message, /credentials do not match/i);
  assert.ok(Array.isArray(e.fields.email) && e.fields.email.length > 0, JSON.stringify(e.fields));
  assert.equal(e.retryAfter, undefined);

  const bad = await refused(() => gatehouse.register({ name: "X", email: "not-an-address", password: "short", password_confirmation: "short" }));
  assert.equal(bad.code, "validation_failed");
  assert.ok(bad.fields.email, "fields.email");
  assert.ok(bad.fields.password, "fields.password");
});

test("the login throttle: hammering one address gives 429 with retryAfter", async () => {
  const { email } = await registered("hammer");
  const { gatehouse } = newClient();
  let throttled;
  for (let i = 0; i < 10 && !throttled; i++) {
    try {
      await gatehouse.signIn({ email, password: `wrong password number ${i}` });
      assert.fail("a wrong password signed in");
    } catch (e) {
      assert.ok(e instanceof GatehouseError);
      if (e.status === 429) throttled = { e, attempt: i + 1 };
      else assert.equal(e.code, "validation_failed");
    }
  }
  assert.ok(throttled, "no 429 within 10 attempts");
  assert.equal(throttled.attempt, 6, "the default is 5 a minute per (email, client)");
  assert.equal(throttled.e.code, "too_many_requests");
  assert.ok(Number.isInteger(throttled.e.retryAfter) && throttled.e.retryAfter > 0 && throttled.e.retryAfter <= 60, `retryAfter ${throttled.e.retryAfter}`);
  // The right password waits too: the count comes before any hash.
  const right = await refused(() => gatehouse.signIn({ email, password: PASSWORD }));
  assert.equal(right.status, 429);
});

test("CSRF: a cookie-authenticated change from a foreign Origin is refused, an allowed one passes", async () => {
  const { gatehouse, jar, email } = await registered("csrf");
  // The same jar (the same browser), as a page on another site would send it.
  const evil = createGatehouse({ baseURL: BASE, fetch: jar.fetch, headers: { origin: "https://evil.example" } });
  let e = await refused(() => evil.signOut());
  assert.equal(e.status, 403);
  assert.equal(e.code, "csrf");
  e = await refused(() => evil.confirmPassword(PASSWORD));
  assert.equal(e.code, "csrf");
  const crossSite = createGatehouse({ baseURL: BASE, fetch: jar.fetch, headers: { "sec-fetch-site": "cross-site" } });
  assert.equal((await refused(() => crossSite.signOut())).code, "csrf");
  // Reads are not state changes.
  assert.equal((await evil.user()).email, email);
  // Login CSRF: /login is held to the rule though no cookie is sent.
  const fresh = createGatehouse({ baseURL: BASE, headers: { origin: "https://evil.example" } });
  assert.equal((await refused(() => fresh.signIn({ email, password: PASSWORD }))).code, "csrf");

  // The origin in GATEHOUSE_ALLOWED_ORIGINS (a frontend elsewhere, `credentials: "include"`).
  const app = createGatehouse({ baseURL: BASE, fetch: jar.fetch, credentials: "include", headers: { origin: APP_ORIGIN } });
  await app.confirmPassword(PASSWORD);
  await app.signOut();
  assert.equal((await refused(() => gatehouse.user())).code, "unauthenticated");
});

test("a bearer token is not held to the CSRF rule", async () => {
  const { gatehouse } = await registered("csrf-bearer");
  const minted = await gatehouse.createToken({ name: "ci", abilities: ["read"], expires_in_minutes: 30 });
  const bearer = createGatehouse({ baseURL: BASE, headers: { authorization: `Bearer ${minted.token}`, origin: "https://evil.example" } });
  await bearer.revokeToken(minted.id); // a state change, by the token itself, from a foreign origin
  const e = await refused(() => bearer.user());
  assert.equal(e.status, 401);
});

test("an unknown address gets the same answer as a wrong password", async () => {
  const { gatehouse } = newClient();
  const e = await refused(() => gatehouse.signIn({ email: freshEmail("nobody"), password: PASSWORD }));
  assert.equal(e.code, "validation_failed");
  assert.ok(e.fields.email);
});
