#!/usr/bin/env node
// The README's test command after set-up: typecheck every package (tsc -b) and the tests,
// benchmarks and examples (tsconfig.test.json), then vitest on the real adapter, ending
// with one plain "N passed, N failed" line.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => join(root, "node_modules", ".bin", name);
const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR || join(root, "node_modules", ".xdg-runtime") };
mkdirSync(env.XDG_RUNTIME_DIR, { recursive: true, mode: 0o700 });

function step(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: "inherit", env });
  return r.status ?? 1;
}

for (const args of [["-b"], ["-p", "tsconfig.test.json"]]) {
  const status = step(bin("tsc"), args);
  if (status !== 0) process.exit(status);
}

const results = join(root, "node_modules", ".vitest-results.json");
rmSync(results, { force: true });
const status = step(bin("vitest"), ["run", "--reporter=default", "--reporter=json", `--outputFile.json=${results}`, ...process.argv.slice(2)]);
if (existsSync(results)) {
  const r = JSON.parse(readFileSync(results, "utf8"));
  console.log(`\n${r.numPassedTests} passed, ${r.numFailedTests} failed` + (r.numPendingTests ? `, ${r.numPendingTests} skipped` : ""));
}
process.exit(status);
