// gatehouse's webhook signatures (shared/src/values/webhook_signature.rs) checked by a verifier no
// one here wrote: the `standardwebhooks` package from npm, the JavaScript library of the Standard
// Webhooks specification. WEBHOOK_VECTORS names the JSON that tests/examples/webhook_vectors.rs
// printed (scripts/webhook-test runs it just before): fresh secrets and deliveries signed by our
// Rust code. Each must verify with every secret that signed it, and the library must refuse a
// forged body, another id or timestamp under the same signature, another secret, a missing
// header, and a delivery signed outside its five-minute window.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { Webhook, WebhookVerificationError } from "standardwebhooks";

const path = process.env.WEBHOOK_VECTORS;
assert.ok(path, "WEBHOOK_VECTORS names the JSON printed by tests/examples/webhook_vectors.rs (scripts/webhook-test)");
const vectors = JSON.parse(readFileSync(path, "utf8"));
const { deliveries, out_of_window: outOfWindow } = vectors;
const secretOf = (name) => {
  const secret = vectors[name];
  assert.ok(secret?.startsWith("whsec_"), `the vectors hold ${name}`);
  return secret;
};
const unrelatedSecret = () => `whsec_${randomBytes(32).toString("base64")}`;

/** Asserts the library refuses, with its own verification error. */
function refuses(secret, body, headers, why, message) {
  assert.throws(
    () => new Webhook(secret).verify(body, headers),
    (e) => e instanceof WebhookVerificationError && (!message || message.test(e.message)),
    `the library should refuse ${why}`,
  );
}

/** `body` with one character changed (a different byte, the same length). */
function forge(body) {
  if (body.length === 0) return " ";
  const i = Math.floor(body.length / 2);
  const c = body.charCodeAt(i) === 0x61 ? "b" : "a";
  return body.slice(0, i) + c + body.slice(i + 1);
}

test("the vectors cover single signatures, both rotation orders and both sides of the window", () => {
  assert.ok(deliveries.length >= 8, "at least eight deliveries");
  const signers = deliveries.map((d) => d.signed_by.join(","));
  assert.ok(signers.includes("secret,rotation_secret"));
  assert.ok(signers.includes("rotation_secret,secret"));
  assert.equal(outOfWindow.length, 2);
  assert.notEqual(secretOf("secret"), secretOf("rotation_secret"));
});

for (const d of deliveries) {
  test(`${d.label}: verifies with each secret that signed it, as text and as bytes`, () => {
    for (const signer of d.signed_by) {
      const wh = new Webhook(secretOf(signer));
      const parsed = wh.verify(d.body, d.headers);
      assert.deepEqual(parsed, d.body === "" ? undefined : JSON.parse(d.body));
      wh.verify(Buffer.from(d.body, "utf8"), d.headers);
    }
    assert.equal(d.headers["webhook-signature"].split(" ").length, d.signed_by.length);
  });

  test(`${d.label}: the library's own signer writes the same entries`, () => {
    const ts = new Date(Number(d.headers["webhook-timestamp"]) * 1000);
    const ours = d.headers["webhook-signature"].split(" ");
    d.signed_by.forEach((signer, i) => {
      assert.equal(new Webhook(secretOf(signer)).sign(d.headers["webhook-id"], ts, d.body), ours[i]);
    });
  });

  test(`${d.label}: a forged body is refused`, () => {
    for (const signer of d.signed_by) {
      refuses(secretOf(signer), forge(d.body), d.headers, "a forged body", /No matching signature/);
      refuses(secretOf(signer), d.body + " ", d.headers, "a body with a byte added", /No matching signature/);
    }
  });

  test(`${d.label}: another secret is refused`, () => {
    refuses(unrelatedSecret(), d.body, d.headers, "another secret", /No matching signature/);
  });

  test(`${d.label}: another id or a moved timestamp under the same signature is refused`, () => {
    const secret = secretOf(d.signed_by[0]);
    const ts = Number(d.headers["webhook-timestamp"]);
    refuses(secret, d.body, { ...d.headers, "webhook-id": "evt_replayed" }, "another id", /No matching signature/);
    refuses(secret, d.body, { ...d.headers, "webhook-timestamp": String(ts + 1) }, "a replay with a new timestamp");
  });

  test(`${d.label}: a missing header is refused`, () => {
    for (const name of ["webhook-id", "webhook-timestamp", "webhook-signature"]) {
      const { [name]: _, ...rest } = d.headers;
      refuses(secretOf(d.signed_by[0]), d.body, rest, `a delivery without ${name}`, /Missing required headers/);
    }
  });
}

for (const d of outOfWindow) {
  test(`${d.label}: refused as outside the window, though its signature is right`, () => {
    const wh = new Webhook(secretOf("secret"));
    const ts = new Date(Number(d.headers["webhook-timestamp"]) * 1000);
    assert.equal(wh.sign(d.headers["webhook-id"], ts, d.body), d.headers["webhook-signature"]);
    refuses(secretOf("secret"), d.body, d.headers, "a stale or future timestamp", /timestamp too (old|new)/);
  });
}
