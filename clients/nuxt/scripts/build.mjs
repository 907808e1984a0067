// npm run build: tsc, src → dist (ES2022 modules + declarations): dist/module.js is what
// nuxt.config's `modules` loads, dist/runtime/ what it adds to the app (plugin, composables,
// middleware, the proxy's server handler). `#app` is typed from the nuxt devDependency and left
// as is: the app's Nuxt resolves it when it builds.
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL("..", import.meta.url));
rmSync(new URL("../dist", import.meta.url), { recursive: true, force: true });
execFileSync(process.execPath, [fileURLToPath(new URL("../node_modules/typescript/bin/tsc", import.meta.url)), "-p", "tsconfig.json"], {
  cwd: here,
  stdio: "inherit",
});
