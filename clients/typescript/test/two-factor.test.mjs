// Two-factor authentication through the client: enrol (after confirming the password), confirm
// with a TOTP code computed here (RFC 6238), then signIn answers `two_factor` and `complete`
// signs in with a code or a recovery code.
import assert from "node:assert/strict";
import { test } from "node:test";
import { GatehouseError } from "../dist/index.js";
import { PASSWORD, authenticatorApp, newClient, registered, totp } from "./helpers.mjs";

test("the RFC 6238 test vector (SHA-1, 59 s) holds for the code generator", () => {
  // RFC 6238 appendix B: secret "12345678901234567890" (base32 GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ), T = 59 s → 94287082 (8 digits).
  assert.equal(totp("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", 1), "287082");
});

test("two-factor: enable, confirm with a TOTP, then sign in with a code and with a recovery code", async () => {
  const { gatehouse, jar, email, user } = await registered("totp");

  await assert.rejects(gatehouse.enableTwoFactor(), (e) => e instanceof GatehouseError && e.status === 423 && e.code === "password_confirmation_required");
  await gatehouse.confirmPassword(PASSWORD);
  const pending = await gatehouse.enableTwoFactor();
  assert.match(pending.secret, /^[A-Z2-7]{32}$/);
  assert.ok(pending.otpauth_url.startsWith("otpauth://totp/"));
  assert.ok(pending.otpauth_url.includes(`secret=${pending.secret}`));
  assert.match(pending.qr_svg, /<svg/);
  const app = authenticatorApp(pending.secret);

  // A wrong code is refused with the API's code; the right one turns it on.
  const wrong = String((Number(totp(pending.secret)) + 500000) % 1000000).padStart(6, "0");
  await assert.rejects(pending.confirm(wrong), (e) => e instanceof GatehouseError && e.status === 422 && e.code === "validation_failed" && /code/i.test(e.message));
  const before = jar.get("__Host-gatehouse_session");
  const recovery = await pending.confirm(app.next());
  assert.equal(recovery.length, 10);
  assert.equal(new Set(recovery).size, 10);
  assert.notEqual(jar.get("__Host-gatehouse_session"), before, "the session goes on under a new cookie");
  assert.equal((await gatehouse.user()).two_factor_enabled, true);

  // Sign in again: the password step answers a challenge, the code completes it.
  await gatehouse.signOut();
  const { gatehouse: phone } = newClient();
  const step = await phone.signIn({ email, password: PASSWORD });
  assert.equal(step.kind, "two_factor");
  assert.ok(step.challenge.length > 10);
  assert.ok(Date.parse(step.expiresAt) > Date.now() + 4 * 60_000 && Date.parse(step.expiresAt) <= Date.now() + 5 * 60_000 + 5_000);
  await assert.rejects(phone.user(), (e) => e.status === 401, "nothing is issued before the second factor");
  const signedIn = await step.complete(app.next());
  assert.equal(signedIn.id, user.id);
  assert.equal((await phone.user()).two_factor_enabled, true);
  // The challenge is single use.
  await assert.rejects(step.complete(totp(pending.secret)), (e) => e instanceof GatehouseError && e.status === 422 && /challenge/i.test(e.message));

  // A recovery code, once.
  const { gatehouse: laptop } = newClient();
  const again = await laptop.signIn({ email, password: PASSWORD });
  assert.equal(again.kind, "two_factor");
  assert.equal((await again.complete({ recovery_code: recovery[0] })).id, user.id);
  const { gatehouse: tablet } = newClient();
  const third = await tablet.signIn({ email, password: PASSWORD });
  await assert.rejects(third.complete({ recovery_code: recovery[0] }), (e) => e instanceof GatehouseError && e.status === 422 && e.code === "validation_failed", "a recovery code signs in once");
});
