// Live deliveries: `gatehouse serve --webhook <this receiver>` (GATEHOUSE_BIN, started here on a
// free port, embedded store) delivers the events of a registration and an account deletion, and
// every delivery is verified by the `standardwebhooks` library (not written here) with the secret
// the server was given. The events arrive in order (`seq` 1, 2 for the user), each once, and
// the deleted user's `user.deleted` says nothing personal. The library refuses the same
// deliveries forged, replayed outside the window or checked with another secret.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { randomBytes } from "node:crypto";
import { Webhook, WebhookVerificationError } from "standardwebhooks";

const bin = process.env.GATEHOUSE_BIN;
assert.ok(bin, "GATEHOUSE_BIN names the gatehouse binary (scripts/webhook-test)");
const secret = `whsec_${randomBytes(32).toString("base64")}`;
const received = []; // { headers, body } of every delivery, in order of arrival
let receiver;
let server;
let base;
let log = "";

function listen(s) {
  return new Promise((resolve) => s.listen(0, "127.0.0.1", () => resolve(s.address().port)));
}

async function freePort() {
  const s = createServer();
  const port = await listen(s);
  await new Promise((r) => s.close(r));
  return port;
}

async function until(what, check, ms = 30000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (log.includes("[gatehouse serve exited")) assert.fail(`gatehouse serve exited:\n${log.slice(-4000)}`);
    const got = check();
    if (got) return got;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`timed out waiting for ${what}; server log:\n${log.slice(-4000)}`);
}

before(async () => {
  receiver = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
      res.writeHead(204).end();
    });
  });
  const hookPort = await listen(receiver);
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  // The embedded store: no AWS endpoint, whatever the caller's environment says.
  const env = { ...process.env, GATEHOUSE_WEBHOOK_SECRET: secret, GATEHOUSE_NOTICE_DELAY_SECONDS: "1" };
  delete env.AWS_ENDPOINT_URL;
  server = spawn(bin, ["serve", "--port", String(port), "--webhook", `http://127.0.0.1:${hookPort}/hooks`], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  server.stdout.on("data", (d) => (log += d));
  server.stderr.on("data", (d) => (log += d));
  server.on("exit", (code) => (log += `\n[gatehouse serve exited: ${code}]`));
  await until("gatehouse serve to add the endpoint", () => log.includes("webhook we_"), 60000);
  for (let i = 0; i < 600; i++) {
    const ok = await fetch(`${base}/user`).then((r) => r.status === 401, () => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`gatehouse serve did not answer:\n${log}`);
});

after(() => {
  server?.kill();
  receiver?.close();
});

const verifier = () => new Webhook(secret);

test("a registration and an account deletion arrive signed, in order, each verified by standardwebhooks", async () => {
  const email = `hooks-${randomBytes(4).toString("hex")}@example.com`;
  const password = "correct horse battery staple 2026";
  const reg = await fetch(`${base}/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name: "Hook Receiver", email, password, password_confirmation: password }),
  });
  assert.equal(reg.status, 201, await reg.clone().text());
  const user = (await reg.json()).user;
  const cookie = reg.headers.getSetCookie().map((c) => c.split(";")[0]).join("; ");
  const registered = await until("user.registered", () =>
    received.find((d) => JSON.parse(d.body).type === "user.registered" && JSON.parse(d.body).user_id === user.id),
  );
  const event = verifier().verify(registered.body, registered.headers);
  assert.equal(event.seq, 1);
  assert.equal(event.data.email, email, "the address, while the account lives");
  assert.equal(event.data.method, "password");
  assert.equal(registered.headers["webhook-id"], event.id);

  const confirm = await fetch(`${base}/user/confirm-password`, {
    method: "POST",
    headers: { "content-type": "application/json", cookie },
    body: JSON.stringify({ password }),
  });
  assert.equal(confirm.status, 204, await confirm.text());
  const del = await fetch(`${base}/user`, { method: "DELETE", headers: { cookie } });
  assert.equal(del.status, 204, await del.text());
  const deleted = await until("user.deleted", () =>
    received.find((d) => JSON.parse(d.body).type === "user.deleted" && JSON.parse(d.body).user_id === user.id),
  );
  const gone = verifier().verify(deleted.body, deleted.headers);
  assert.equal(gone.seq, 3, "numbered after user.registered and the sign-up's session.created");
  assert.equal(gone.redacted, true, "the user is gone: nothing personal");
  assert.ok(!deleted.body.includes(email) && !deleted.body.includes("Hook Receiver"));
  const mine = received.map((d) => JSON.parse(d.body)).filter((e) => e.user_id === user.id);
  assert.deepEqual(
    mine.map((e) => [e.seq, e.type]),
    [[1, "user.registered"], [2, "session.created"], [3, "user.deleted"]],
    "in order, once each",
  );
  const opened = received.find((d) => JSON.parse(d.body).type === "session.created" && JSON.parse(d.body).user_id === user.id);
  const session = verifier().verify(opened.body, opened.headers);
  assert.equal(session.data.method, "password");
  assert.equal(typeof session.data.session, "string", "the session's handle, never its id");
  assert.ok(!opened.body.includes(cookie.split("=")[1]), "no cookie value in an event");
});

test("the same deliveries forged, replayed late or checked with another secret are refused", async () => {
  const d = await until("a delivery", () => received[0]);
  const refuses = (secretUsed, body, headers, why) =>
    assert.throws(
      () => new Webhook(secretUsed).verify(body, headers),
      (e) => e instanceof WebhookVerificationError,
      `the library should refuse ${why}`,
    );
  refuses(secret, d.body.replace('"seq":1', '"seq":7'), d.headers, "a forged body");
  const late = { ...d.headers, "webhook-timestamp": String(Number(d.headers["webhook-timestamp"]) - 3600) };
  refuses(secret, d.body, late, "a replay an hour later");
  refuses(`whsec_${randomBytes(32).toString("base64")}`, d.body, d.headers, "another secret");
  const { ["webhook-signature"]: _, ...unsigned } = d.headers;
  refuses(secret, d.body, unsigned, "an unsigned delivery");
});
