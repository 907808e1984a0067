// The package follows the API: its version is openapi.json's info.version, and the built
// package is what package.json's exports promise.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";
import * as client from "../dist/index.js";

const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
const spec = JSON.parse(readFileSync(new URL("../../../openapi.json", import.meta.url), "utf8"));

test("the package version is openapi.json's info.version", () => {
  assert.equal(pkg.name, "@gatehouse/client");
  assert.match(spec.info.version, /^\d+\.\d+\.\d+/);
  assert.equal(pkg.version, spec.info.version);
});

test("the served openapi.json is the committed one the types were generated from", async () => {
  const served = await (await fetch(new URL("/openapi.json", process.env.GATEHOUSE_URL))).json();
  assert.equal(served.info.version, spec.info.version);
  assert.deepEqual(Object.keys(served.paths).sort(), Object.keys(spec.paths).sort());
});

test("exports: ESM only, types beside, one runtime dependency", () => {
  assert.equal(pkg.type, "module");
  assert.equal(pkg.sideEffects, false);
  assert.deepEqual(Object.keys(pkg.dependencies), ["openapi-fetch"]);
  for (const dep of [...Object.values(pkg.dependencies), ...Object.values(pkg.devDependencies)]) {
    assert.match(dep, /^\d+\.\d+\.\d+$/, "pinned exactly");
  }
  const entry = pkg.exports["."];
  for (const file of [entry.types, entry.default, pkg.exports["./schema"].types]) {
    assert.ok(existsSync(new URL(`../${file}`, import.meta.url)), `${file} is built`);
  }
  assert.match(readFileSync(new URL("../dist/index.d.ts", import.meta.url), "utf8"), /from "\.\/schema\.js"/);
  assert.equal(typeof client.createGatehouse, "function");
  assert.equal(typeof client.createCookieJar, "function");
  assert.equal(typeof client.GatehouseError, "function");
});

test("GatehouseError reads the API's error body and Retry-After (seconds or a date)", () => {
  const body = { error: { code: "validation_failed", message: "Bad.", fields: { email: ["is required"] } } };
  const e = client.GatehouseError.from(new Response(null, { status: 422, headers: { "retry-after": "7" } }), body);
  assert.ok(e instanceof Error);
  assert.equal(e.name, "GatehouseError");
  assert.equal(e.status, 422);
  assert.equal(e.code, "validation_failed");
  assert.equal(e.message, "Bad.");
  assert.deepEqual(e.fields, { email: ["is required"] });
  assert.equal(e.retryAfter, 7);
  const date = new Date(Date.now() + 60_000).toUTCString();
  const later = client.GatehouseError.from(new Response(null, { status: 503, headers: { "retry-after": date } }), { error: { code: "unavailable", message: "x" } });
  assert.ok(later.retryAfter >= 58 && later.retryAfter <= 60, `about a minute: ${later.retryAfter}`);
  const oauth = client.GatehouseError.from(new Response(null, { status: 400 }), { error: "invalid_grant", error_description: "spent" });
  assert.equal(oauth.code, "invalid_grant");
  assert.equal(oauth.message, "spent");
  const proxy = client.GatehouseError.from(new Response(null, { status: 403 }), { message: "Forbidden" });
  assert.equal(proxy.code, "http_403");
  assert.deepEqual(proxy.fields, {});
  assert.equal(proxy.retryAfter, undefined);
});
