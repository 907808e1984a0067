// Shared by the tests: where the server is, a client with its own cookie jar, fresh addresses,
// the mails serve's log mailer printed, and RFC 6238 codes.
import { createHmac, randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { createCookieJar, createGatehouse } from "../dist/index.js";

export const BASE = required("GATEHOUSE_URL");
export const LOG = required("GATEHOUSE_LOG");
export const APP_ORIGIN = required("GATEHOUSE_APP_ORIGIN");
export const PASSKEY_ORIGIN = required("GATEHOUSE_PASSKEY_ORIGIN");
export const PASSWORD = "violet kettle marching under quiet harbour lights";

function required(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run these tests through scripts/client-test`);
  return v;
}

/** A client of its own (a browser, as far as cookies go), and its jar. */
export function newClient(options = {}) {
  const jar = createCookieJar();
  const gatehouse = createGatehouse({ baseURL: BASE, fetch: jar.fetch, ...options });
  return { gatehouse, jar };
}

export function freshEmail(tag) {
  return `${tag}-${randomBytes(6).toString("hex")}@example.com`;
}

/** Registers a fresh account on a fresh client. */
export async function registered(tag, name = "Client Test") {
  const client = newClient();
  const email = freshEmail(tag);
  const user = await client.gatehouse.register({ name, email, password: PASSWORD, password_confirmation: PASSWORD });
  return { ...client, email, user };
}

/** The mails the log mailer printed so far: { to, subject, body }. */
export async function mails() {
  const log = await readFile(LOG, "utf8");
  const out = [];
  for (const block of log.split(/^─+ mail \(log mailer[^\n]*\n/m).slice(1)) {
    const to = /^To: (.*)$/m.exec(block)?.[1]?.trim();
    const subject = /^Subject: (.*)$/m.exec(block)?.[1]?.trim();
    const end = block.search(/^─{10,}\s*$/m);
    out.push({ to, subject, body: end >= 0 ? block.slice(0, end) : block });
  }
  return out;
}

/** Waits (20 s at most) for a mail to `to` whose subject matches and whose body has a match of `pattern`. */
export async function waitForMail(to, subject, pattern) {
  for (let i = 0; i < 200; i++) {
    const found = (await mails()).reverse().find((m) => m.to === to && subject.test(m.subject ?? "") && pattern.test(m.body));
    if (found) return found.body.match(pattern)[0];
    await sleep(100);
  }
  throw new Error(`no mail to ${to} matching ${subject} with ${pattern} in ${LOG} within 20 s`);
}

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
function base32Decode(s) {
  let bits = 0;
  let value = 0;
  const out = [];
  for (const ch of s.replace(/=+$/, "").toUpperCase()) {
    const i = BASE32.indexOf(ch);
    if (i < 0) throw new Error(`not base32: ${ch}`);
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** RFC 6238 (RFC 4226's HOTP over 30 s steps), SHA-1, 6 digits, for the time step `step`. */
export function totp(secret, step = Math.floor(Date.now() / 30000)) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac("sha1", base32Decode(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const binary = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(binary).padStart(6, "0");
}

/**
 * An authenticator app: each code is of a later time step than the last one used (the server
 * takes a step once), within the one step of skew it allows.
 */
export function authenticatorApp(secret) {
  let last = -Infinity;
  return {
    next() {
      const now = Math.floor(Date.now() / 30000);
      const step = Math.max(now, last + 1);
      if (step > now + 1) throw new Error("more than two codes in one 30 s step");
      last = step;
      return totp(secret, step);
    },
  };
}
