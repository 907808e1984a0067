// Personal access tokens: create, list page after page (the async iterator follows
// next_cursor), call with the token, revoke; a strong token needs a recent password confirmation.
import assert from "node:assert/strict";
import { test } from "node:test";
import { GatehouseError, createGatehouse } from "../dist/index.js";
import { BASE, PASSWORD, registered } from "./helpers.mjs";

test("tokens: create, list across pages, call with one, revoke it", async () => {
  const { gatehouse, user } = await registered("tokens");
  const made = [];
  for (const name of ["alpha", "bravo", "charlie", "delta", "echo"]) {
    made.push(await gatehouse.createToken({ name, abilities: ["read", "reports:read"], expires_in_minutes: 60 }));
  }
  for (const t of made) {
    assert.match(t.token, /^[^|]+\|gth_[A-Za-z0-9_-]+$/);
    assert.ok(t.token.startsWith(`${t.id}.${user.id}|`), "the token names its id and owner");
    assert.deepEqual(t.abilities, ["read", "reports:read"]);
    assert.ok(Date.parse(t.expires_at) > Date.now() + 55 * 60_000);
  }

  // Two a page: three requests, every token once, newest first.
  const requests = [];
  const counting = createGatehouse({
    baseURL: BASE,
    headers: { authorization: `Bearer ${made[0].token}` },
    fetch: (req) => {
      requests.push(new URL(req.url));
      return fetch(req);
    },
  });
  const listed = [];
  for await (const t of counting.listTokens({ limit: 2 })) listed.push(t);
  assert.deepEqual(listed.map((t) => t.name), ["echo", "delta", "charlie", "bravo", "alpha"]);
  assert.deepEqual(listed.map((t) => t.id), made.map((t) => t.id).reverse());
  assert.equal(requests.length, 3);
  assert.equal(requests[0].searchParams.get("cursor"), null);
  assert.ok(requests[1].searchParams.get("cursor"), "the second page asks with the first's next_cursor");
  assert.ok(requests.every((u) => u.searchParams.get("limit") === "2"));
  for (const t of listed) assert.equal(t.token, undefined, "a listed token never shows its secret");
  // The bearer call above used the token: it is marked used.
  assert.ok(listed.find((t) => t.id === made[0].id).last_used_at, "last_used_at of the token that listed");

  // Stopping early stops asking.
  requests.length = 0;
  for await (const t of counting.listTokens({ limit: 2 })) {
    assert.equal(t.name, "echo");
    break;
  }
  assert.equal(requests.length, 1);

  // Revoke one with the session; the bearer client with it is refused from then on.
  const bravo = createGatehouse({ baseURL: BASE, headers: { authorization: `Bearer ${made[1].token}` } });
  assert.equal((await bravo.user()).id, user.id);
  await gatehouse.revokeToken(made[1].id);
  await assert.rejects(bravo.user(), (e) => e instanceof GatehouseError && e.status === 401 && e.code === "unauthenticated");
  const left = [];
  for await (const t of gatehouse.listTokens()) left.push(t.name);
  assert.deepEqual(left, ["echo", "delta", "charlie", "alpha"]);
  await assert.rejects(gatehouse.revokeToken(made[1].id).then(() => gatehouse.revokeToken("no-such-token")), (e) => e instanceof GatehouseError && e.status === 404);
});

test("a strong token needs a recent password confirmation (423), then is minted", async () => {
  const { gatehouse } = await registered("strong");
  await assert.rejects(gatehouse.createToken({ name: "deploy" }), (e) => {
    assert.ok(e instanceof GatehouseError);
    assert.equal(e.status, 423);
    assert.equal(e.code, "password_confirmation_required");
    return true;
  });
  await gatehouse.confirmPassword(PASSWORD);
  const t = await gatehouse.createToken({ name: "deploy" });
  assert.deepEqual(t.abilities, ["*"]);
  assert.equal(t.expires_at, null);
  // A token minted by a token never exceeds it.
  const child = createGatehouse({ baseURL: BASE, headers: { authorization: `Bearer ${t.token}` } });
  const narrow = await child.createToken({ name: "narrow", abilities: ["read"], expires_in_minutes: 5 });
  const grandchild = createGatehouse({ baseURL: BASE, headers: { authorization: `Bearer ${narrow.token}` } });
  await assert.rejects(grandchild.createToken({ name: "wider", abilities: ["write"] }), (e) => e instanceof GatehouseError && e.status === 403);
});
