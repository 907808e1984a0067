// Passkeys through the client: first the helpers' mapping with an injected fake WebAuthn (what
// goes to the authenticator, what goes to the server), then real ceremonies against the server
// with a software authenticator (P-256 / ES256 from node:crypto, "none" attestation, CBOR by
// hand): register a passkey, sign in with it alone, and answer a two-factor challenge with it.
import assert from "node:assert/strict";
import { createHash, generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { test } from "node:test";
import { GatehouseError, createGatehouse } from "../dist/index.js";
import { BASE, PASSKEY_ORIGIN, PASSWORD, authenticatorApp, newClient, registered } from "./helpers.mjs";

const b64url = (bytes) => Buffer.from(bytes).toString("base64url");

/** A software authenticator, used as the `credentials` container (it takes the options as JSON). */
function softAuthenticator({ rpId = "localhost", origin = PASSKEY_ORIGIN, handle } = {}) {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const jwk = publicKey.export({ format: "jwk" });
  const credentialId = randomBytes(16);
  let counter = 0;
  let userHandle = handle;
  const calls = [];

  const cborHead = (major, n) => (n < 24 ? [(major << 5) | n] : n < 256 ? [(major << 5) | 24, n] : [(major << 5) | 25, n >> 8, n & 0xff]);
  const cborBytes = (b) => Buffer.concat([Buffer.from(cborHead(2, b.length)), Buffer.from(b)]);
  const cborText = (s) => Buffer.concat([Buffer.from(cborHead(3, Buffer.byteLength(s))), Buffer.from(s)]);
  const clientData = (type, challenge) => Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false }));
  const authData = (flags, attested = Buffer.alloc(0)) => {
    const count = Buffer.alloc(4);
    count.writeUInt32BE(counter);
    return Buffer.concat([createHash("sha256").update(rpId).digest(), Buffer.from([flags]), count, attested]);
  };
  const credential = (response) => ({
    toJSON: () => ({
      id: b64url(credentialId),
      rawId: b64url(credentialId),
      type: "public-key",
      response,
      clientExtensionResults: {},
      authenticatorAttachment: "platform",
    }),
  });

  return {
    calls,
    credentialId: b64url(credentialId),
    get userHandle() {
      return userHandle;
    },
    /** The same key used from another page (a phishing site relaying the ceremony). */
    setOrigin(o) {
      origin = o;
    },
    async create({ publicKey: options }) {
      calls.push(["create", options]);
      assert.equal(options.rp.id, rpId);
      userHandle = options.user.id;
      // COSE EC2 key, canonical order: 1 (kty) 2, 3 (alg) -7, -1 (crv) 1, -2 x, -3 y.
      const cose = Buffer.concat([
        Buffer.from([0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21]),
        cborBytes(Buffer.from(jwk.x, "base64url")),
        Buffer.from([0x22]),
        cborBytes(Buffer.from(jwk.y, "base64url")),
      ]);
      const idLength = Buffer.alloc(2);
      idLength.writeUInt16BE(credentialId.length);
      counter += 1;
      const data = authData(0x45, Buffer.concat([Buffer.alloc(16), idLength, credentialId, cose])); // UP, UV, AT
      const attestation = Buffer.concat([
        Buffer.from([0xa3]),
        cborText("fmt"), cborText("none"),
        cborText("attStmt"), Buffer.from([0xa0]),
        cborText("authData"), cborBytes(data),
      ]);
      return credential({
        clientDataJSON: b64url(clientData("webauthn.create", options.challenge)),
        attestationObject: b64url(attestation),
        transports: ["internal"],
      });
    },
    async get({ publicKey: options }) {
      calls.push(["get", options]);
      assert.equal(options.rpId, rpId);
      counter += 1;
      const data = authData(0x05); // UP, UV
      const cd = clientData("webauthn.get", options.challenge);
      const signature = sign("sha256", Buffer.concat([data, createHash("sha256").update(cd).digest()]), privateKey); // DER
      return credential({
        clientDataJSON: b64url(cd),
        authenticatorData: b64url(data),
        signature: b64url(signature),
        userHandle,
      });
    },
  };
}

/** WebAuthn for Node: the authenticator takes JSON, so the parse functions pass the JSON on, marking it. */
function environment(credentials) {
  return {
    credentials,
    parseCreationOptionsFromJSON: (json) => ({ ...json, parsedBy: "creation" }),
    parseRequestOptionsFromJSON: (json) => ({ ...json, parsedBy: "request" }),
  };
}

test("passkey helpers: the server's options go through the parse function to the container, toJSON() back to the server", async () => {
  const { jar } = await registered("pk-fake");
  const sent = [];
  const recording = async (input, init) => {
    const req = new Request(input, init);
    sent.push({ method: req.method, path: new URL(req.url).pathname, body: req.method === "POST" ? await req.clone().text() : "" });
    return jar.fetch(req);
  };
  const attestation = { id: "ZmFrZQ", rawId: "ZmFrZQ", type: "public-key", response: { clientDataJSON: "e30", attestationObject: "oA" }, clientExtensionResults: {} };
  const assertion = { id: "ZmFrZQ", rawId: "ZmFrZQ", type: "public-key", response: { clientDataJSON: "e30", authenticatorData: "AA", signature: "AA" }, clientExtensionResults: {} };
  const seen = {};
  const fake = {
    async create(options) {
      seen.create = options;
      return { toJSON: () => attestation };
    },
    async get(options) {
      seen.get = options;
      return { toJSON: () => assertion };
    },
  };
  const gatehouse = createGatehouse({ baseURL: BASE, fetch: recording, webauthn: environment(fake) });
  await gatehouse.confirmPassword(PASSWORD);

  // Registration: options from the server, parsed, handed to create(); toJSON() posted; the server refuses the fake.
  await assert.rejects(gatehouse.registerPasskey({ name: "Fake key" }), (e) => e instanceof GatehouseError && e.status === 422 && e.code === "validation_failed" && e.fields.credential?.length === 1);
  assert.equal(seen.create.publicKey.parsedBy, "creation");
  assert.equal(seen.create.publicKey.rp.id, "localhost");
  assert.equal(seen.create.publicKey.authenticatorSelection.userVerification, "required");
  assert.match(seen.create.publicKey.challenge, /^[A-Za-z0-9_-]{16,}$/);
  const register = sent.filter((s) => s.path.startsWith("/user/passkeys"));
  assert.deepEqual(register.map((s) => s.path), ["/user/passkeys/options", "/user/passkeys"]);
  assert.deepEqual(JSON.parse(register[1].body), { name: "Fake key", credential: attestation });

  // Sign-in: /passkeys/options, get() with the parsed request options, /passkeys/login with toJSON() and remember.
  sent.length = 0;
  await assert.rejects(gatehouse.signInWithPasskey({ remember: true, mediation: "optional" }), (e) => e instanceof GatehouseError && e.status === 422 && e.code === "validation_failed" && e.fields.credential?.length === 1);
  assert.equal(seen.get.publicKey.parsedBy, "request");
  assert.equal(seen.get.publicKey.rpId, "localhost");
  assert.equal(seen.get.mediation, "optional");
  assert.deepEqual(sent.map((s) => s.path), ["/passkeys/options", "/passkeys/login"]);
  const login = JSON.parse(sent[1].body);
  assert.equal(login.remember, true);
  assert.equal(login.credential.response.signature, "AA");

  // Without WebAuthn (Node has no navigator.credentials), the helpers say what to pass.
  const bare = createGatehouse({ baseURL: BASE });
  await assert.rejects(bare.signInWithPasskey(), /navigator\.credentials|webauthn/);
});

test("a real passkey: registered with a software authenticator, then signs in alone", async () => {
  const { email, user } = await registered("pk-real");
  const key = softAuthenticator();
  const withKey = newClient({ webauthn: environment(key) });
  await withKey.gatehouse.signIn({ email, password: PASSWORD });

  await assert.rejects(withKey.gatehouse.registerPasskey({ name: "Laptop" }), (e) => e instanceof GatehouseError && e.status === 423 && e.code === "password_confirmation_required");
  await withKey.gatehouse.confirmPassword(PASSWORD);
  const added = await withKey.gatehouse.registerPasskey({ name: "Laptop" });
  assert.equal(added.name, "Laptop");
  assert.equal(added.id, key.credentialId);
  assert.equal(Buffer.from(key.userHandle, "base64url").length, 16, "the user handle is the user id's 16 bytes");
  assert.equal(Buffer.from(key.userHandle, "base64url").toString("hex"), user.id.replaceAll("-", ""));
  assert.deepEqual((await withKey.gatehouse.listPasskeys()).map((p) => p.id), [key.credentialId]);
  assert.equal((await withKey.gatehouse.user()).passkeys, 1);

  // Another browser, no password: the passkey alone.
  const elsewhere = newClient({ webauthn: environment(key) });
  const signedIn = await elsewhere.gatehouse.signInWithPasskey({ remember: false });
  assert.equal(signedIn.id, user.id);
  assert.equal((await elsewhere.gatehouse.user()).email, email);
  assert.ok(elsewhere.jar.get("__Host-gatehouse_session"));

  // The registered key, but the ceremony ran on another site's page: refused.
  key.setOrigin("https://evil.example");
  await assert.rejects(newClient({ webauthn: environment(key) }).gatehouse.signInWithPasskey(), (e) => e instanceof GatehouseError && e.status === 422 && e.code === "passkey_rejected");
  key.setOrigin(PASSKEY_ORIGIN);

  // An authenticator this account never registered (naming the account's user handle): refused.
  const foreign = softAuthenticator({ handle: key.userHandle });
  const stranger = newClient({ webauthn: environment(foreign) });
  await assert.rejects(stranger.gatehouse.signInWithPasskey(), (e) => e instanceof GatehouseError && e.status === 422 && e.code === "passkey_rejected");

  // Removal needs a recent confirmation, then it is gone.
  await withKey.gatehouse.removePasskey(added.id);
  assert.deepEqual(await withKey.gatehouse.listPasskeys(), []);
  const after = newClient({ webauthn: environment(key) });
  await assert.rejects(after.gatehouse.signInWithPasskey(), (e) => e instanceof GatehouseError && e.status === 422 && e.code === "passkey_rejected");
});

test("a passkey answers a two-factor challenge", async () => {
  const { email, user } = await registered("pk-2fa");
  const key = softAuthenticator();
  const home = newClient({ webauthn: environment(key) });
  await home.gatehouse.signIn({ email, password: PASSWORD });
  await home.gatehouse.confirmPassword(PASSWORD);
  await home.gatehouse.registerPasskey({ name: "Phone" });
  const pending = await home.gatehouse.enableTwoFactor();
  await pending.confirm(authenticatorApp(pending.secret).next());

  const away = newClient({ webauthn: environment(key) });
  const step = await away.gatehouse.signIn({ email, password: PASSWORD });
  assert.equal(step.kind, "two_factor");
  const signedIn = await step.completeWithPasskey();
  assert.equal(signedIn.id, user.id);
  assert.equal((await away.gatehouse.user()).two_factor_enabled, true);
  assert.deepEqual(key.calls.map(([kind]) => kind), ["create", "get"]);
});
