// npm run check-version: this package's version, and the @gatehouse/client it depends on, are
// openapi.json's info.version (the two packages are released together, in step with the API).
import { readFileSync } from "node:fs";

const read = (path) => JSON.parse(readFileSync(new URL(path, import.meta.url), "utf8"));
const pkg = read("../package.json");
const client = read("../../typescript/package.json");
const version = read("../../../openapi.json").info.version;
const problems = [];
if (pkg.version !== version) problems.push(`package.json's version ${pkg.version} is not openapi.json's info.version ${version}`);
if (pkg.dependencies["@gatehouse/client"] !== version) {
  problems.push(`the dependency on @gatehouse/client is ${JSON.stringify(pkg.dependencies["@gatehouse/client"])}, not ${version}`);
}
if (client.version !== version) problems.push(`clients/typescript's version ${client.version} is not openapi.json's info.version ${version}`);
for (const p of problems) console.error(`check-version: ${p}; set it to ${version}`);
if (problems.length === 0) console.error(`check-version: @gatehouse/nuxt ${pkg.version} and its @gatehouse/client follow openapi.json's info.version ${version}`);
process.exit(problems.length ? 1 : 0);
