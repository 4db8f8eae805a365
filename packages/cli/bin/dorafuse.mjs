#!/usr/bin/env node
// The `dorafuse` command. Runs the CLI's TypeScript source through tsx, resolving the
// workspace packages to their sources (the "dorafuse-src" export condition), so a
// checkout needs no build step before the CLI works.
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const env = { ...process.env };
if (!env.XDG_RUNTIME_DIR) {
  env.XDG_RUNTIME_DIR = join(tmpdir(), `dorafuse-xdg-${process.getuid?.() ?? "user"}`);
  mkdirSync(env.XDG_RUNTIME_DIR, { recursive: true, mode: 0o700 });
}
// tsx as this package resolves it, so the command runs from any directory
const tsx = import.meta.resolve("tsx");
// Ctrl-C reaches the child too (one process group): it stops a fine-tuning run cleanly, so this
// process waits for it instead of dying first and leaving it writing to the terminal
process.on("SIGINT", () => {});
const r = spawnSync(process.execPath, ["--conditions=dorafuse-src", "--import", tsx, join(here, "..", "src", "cli.ts"), ...process.argv.slice(2)], { stdio: "inherit", env });
process.exit(r.status ?? (r.signal === "SIGINT" ? 130 : 1));
