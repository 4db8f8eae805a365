#!/usr/bin/env node
// Runs one TypeScript file of the workspace through tsx, with the packages resolved to their
// sources: a benchmark (which prints its own table of medians) or the main job.
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR || join(root, "node_modules", ".xdg-runtime") };
mkdirSync(env.XDG_RUNTIME_DIR, { recursive: true, mode: 0o700 });
const [file, ...rest] = process.argv.slice(2);
const r = spawnSync(process.execPath, ["--conditions=dorafuse-src", "--import", "tsx", join(root, file), ...rest], { cwd: root, stdio: "inherit", env });
process.exit(r.status ?? 1);
