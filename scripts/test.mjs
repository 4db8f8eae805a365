#!/usr/bin/env node
// The README's test command after set-up: typecheck every package (tsc -b) and the tests,
// benchmarks and examples (tsconfig.test.json), then vitest on the real adapter.
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => join(root, "node_modules", ".bin", name);
const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR || join(root, "node_modules", ".xdg-runtime") };
mkdirSync(env.XDG_RUNTIME_DIR, { recursive: true, mode: 0o700 });

for (const [cmd, args] of [[bin("tsc"), ["-b"]], [bin("tsc"), ["-p", "tsconfig.test.json"]], [bin("vitest"), ["run", ...process.argv.slice(2)]]]) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: "inherit", env });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
