// npm run build: tsc (src → dist, ES2022 + declarations), then the generated src/schema.d.ts,
// which tsc does not copy (a declaration file is not emitted), next to the index.d.ts that
// imports it.
import { execFileSync } from "node:child_process";
import { copyFileSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL("..", import.meta.url));
rmSync(new URL("../dist", import.meta.url), { recursive: true, force: true });
execFileSync(process.execPath, [new URL("../node_modules/typescript/bin/tsc", import.meta.url).pathname, "-p", "tsconfig.json"], {
  cwd: here,
  stdio: "inherit",
});
copyFileSync(new URL("../src/schema.d.ts", import.meta.url), new URL("../dist/schema.d.ts", import.meta.url));
