// npm run check-drift: regenerates the types from ../../openapi.json into a temporary file, with
// the very command `npm run generate` runs, and fails when they differ from the committed
// src/schema.d.ts (the API changed and the client was not regenerated), or when this package's
// version is not openapi.json's info.version.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const spec = JSON.parse(readFileSync(join(root, "../../openapi.json"), "utf8"));
let failed = false;

if (pkg.version !== spec.info.version) {
  console.error(`check-drift: package.json's version ${pkg.version} is not openapi.json's info.version ${spec.info.version}; set it to ${spec.info.version}`);
  failed = true;
}

const generate = pkg.scripts.generate.split(/\s+/);
const out = generate.indexOf("--output");
if (generate[0] !== "openapi-typescript" || out < 0) throw new Error("check-drift: the generate script is not `openapi-typescript … --output <file>`");
const dir = mkdtempSync(join(tmpdir(), "gatehouse-client-"));
try {
  const fresh = join(dir, "schema.d.ts");
  const args = [...generate.slice(1, out), "--output", fresh, ...generate.slice(out + 2)];
  execFileSync(process.execPath, [join(root, "node_modules/openapi-typescript/bin/cli.js"), ...args], { cwd: root, stdio: ["ignore", "ignore", "inherit"] });
  const committed = readFileSync(join(root, "src/schema.d.ts"), "utf8");
  const regenerated = readFileSync(fresh, "utf8");
  if (committed !== regenerated) {
    const a = committed.split("\n");
    const b = regenerated.split("\n");
    let i = 0;
    while (i < a.length && a[i] === b[i]) i++;
    console.error(
      `check-drift: src/schema.d.ts is not what openapi.json generates (first difference at line ${i + 1}:\n` +
        `  committed:   ${JSON.stringify(a[i] ?? "<end of file>")}\n  regenerated: ${JSON.stringify(b[i] ?? "<end of file>")})\n` +
        `run \`npm run generate\` in clients/typescript and commit src/schema.d.ts`,
    );
    failed = true;
  } else {
    console.error(`check-drift: src/schema.d.ts matches openapi.json (info.version ${spec.info.version})`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
