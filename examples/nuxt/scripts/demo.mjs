// npm run demo: `gatehouse serve` (embedded store, mails printed in its log) on 127.0.0.1:8080,
// set up for this app, and this app in development (`nuxt dev`) on http://localhost:3000.
// Open http://localhost:3000 (localhost, not 127.0.0.1: passkeys are bound to a domain).
// Ctrl-C stops both. GATEHOUSE_BIN: another gatehouse binary than ../../target/debug/gatehouse.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const bin = process.env.GATEHOUSE_BIN ?? fileURLToPath(new URL("../../../target/debug/gatehouse", import.meta.url));
const nuxt = fileURLToPath(new URL("../node_modules/nuxt/bin/nuxt.mjs", import.meta.url));
if (!existsSync(bin)) {
  console.error(`demo: ${bin} is missing: build it at the repository's root (cargo build --workspace --bins), or set GATEHOUSE_BIN`);
  process.exit(1);
}
if (!existsSync(nuxt)) {
  console.error("demo: Nuxt is not installed here: run npm install in examples/nuxt first (and npm install && npm run build in clients/typescript and clients/nuxt)");
  process.exit(1);
}

const app = "http://localhost:3000";
const serveEnv = {
  ...process.env,
  // The passkey ceremonies happen on this app's pages; the mailed verification link opens this app's page.
  GATEHOUSE_PASSKEY_ORIGINS: app,
  GATEHOUSE_VERIFY_URL: `${app}/email/verify/{id}/{hash}?expires={expires}&signature={signature}`,
};
delete serveEnv.AWS_ENDPOINT_URL; // the embedded store, not DynamoDB

const children = [
  spawn(bin, ["serve", "--port", "8080"], { env: serveEnv, stdio: "inherit" }),
  spawn(process.execPath, [nuxt, "dev", "--host", "127.0.0.1", "--port", "3000"], {
    env: { ...process.env, NUXT_TELEMETRY_DISABLED: "1" },
    stdio: "inherit",
  }),
];
console.log(`demo: gatehouse on http://127.0.0.1:8080 (its log below shows the mails), the app on ${app}`);

let stopping = false;
const stop = (code) => {
  if (stopping) return;
  stopping = true;
  for (const child of children) if (child.exitCode === null) child.kill("SIGTERM");
  process.exitCode = code;
};
for (const child of children) child.on("exit", (code) => stop(code ?? 1));
process.on("SIGINT", () => stop(0));
process.on("SIGTERM", () => stop(0));
