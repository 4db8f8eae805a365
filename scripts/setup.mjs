#!/usr/bin/env node
// Brings a fresh machine to the point where dorafuse runs: the workspace's packages
// installed, and a WebGPU adapter that Dawn can open (on Linux without a GPU: Mesa's
// lavapipe). Idempotent and quiet when nothing is missing; plain Node, no dependencies,
// because it runs before anything is installed.
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const PNPM = "pnpm@12.4.2";
const log = (msg) => process.stderr.write(`[setup] ${msg}\n`);

function fail(msg) {
  process.stderr.write(`[setup] error: ${msg}\n`);
  process.exit(1);
}

function checkNode() {
  const major = Number(process.versions.node.split(".")[0]);
  if (major < 20) fail(`dorafuse needs Node.js 20 or newer; this is ${process.version}.`);
}

/** The install is current when the lock file and every package.json hash to the stamp. */
function installFingerprint() {
  const files = ["pnpm-lock.yaml", "pnpm-workspace.yaml", "package.json",
    ...["core", "compiler", "runtime", "models", "cli"].map((p) => `packages/${p}/package.json`), "examples/package.json"];
  const h = createHash("sha256");
  for (const f of files) if (existsSync(join(root, f))) h.update(f).update(readFileSync(join(root, f)));
  return h.digest("hex");
}

function installPackages() {
  const stamp = join(root, "node_modules", ".dorafuse-setup");
  const want = installFingerprint();
  if (existsSync(stamp) && readFileSync(stamp, "utf8") === want) return;
  log(`installing the workspace's packages with ${PNPM} …`);
  const args = ["-y", PNPM, "install", "--reporter=append-only"];
  if (existsSync(join(root, "pnpm-lock.yaml"))) args.push("--frozen-lockfile");
  const r = spawnSync("npx", args, { cwd: root, stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, CI: "true" } });
  if (r.status !== 0) fail(`'npx ${args.join(" ")}' failed (exit ${r.status}).`);
  writeFileSync(stamp, installFingerprint());
}

let lastProbeError = "";

/** Asks Dawn for an adapter in a child process (a failed native load must not take us down). */
function probeAdapter() {
  const r = spawnSync(process.execPath, [join(root, "scripts", "probe-adapter.mjs")], {
    cwd: root, encoding: "utf8", env: { ...process.env, XDG_RUNTIME_DIR: runtimeDir() }, timeout: 60_000,
  });
  if (r.status === 0) return JSON.parse(r.stdout.trim().split("\n").pop());
  lastProbeError = (r.stderr || r.error?.message || "").trim().split("\n").slice(0, 6).join("\n");
  return null;
}

function runtimeDir() {
  const dir = process.env.XDG_RUNTIME_DIR || join(root, "node_modules", ".xdg-runtime");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

function sh(cmd, args) {
  log(`$ ${cmd} ${args.join(" ")}`);
  const r = spawnSync(cmd, args, { stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
  if (r.status !== 0) fail(`'${cmd} ${args.join(" ")}' failed (exit ${r.status}).`);
}

/** Installs Mesa's software Vulkan driver from Debian bookworm-backports (bookworm's own Mesa 22 is too old for Dawn). */
function installLavapipe() {
  if (process.platform !== "linux") return false;
  if (!existsSync("/usr/bin/apt-get")) return false;
  const osRelease = existsSync("/etc/os-release") ? readFileSync("/etc/os-release", "utf8") : "";
  const codename = /VERSION_CODENAME=(\w+)/.exec(osRelease)?.[1];
  const isRoot = process.getuid?.() === 0;
  const sudo = isRoot ? [] : ["sudo", "-n"];
  const run = (cmd, args) => (sudo.length ? sh(sudo[0], [...sudo.slice(1), cmd, ...args]) : sh(cmd, args));
  if (!isRoot) {
    try { execFileSync("sudo", ["-n", "true"], { stdio: "ignore" }); } catch { return false; }
  }
  log("no WebGPU adapter found; installing Mesa's lavapipe (software Vulkan) …");
  const extra = [];
  if (codename === "bookworm") {
    const list = "/etc/apt/sources.list.d/dorafuse-bookworm-backports.sources";
    const have = spawnSync("grep", ["-rqs", "bookworm-backports", "/etc/apt/sources.list", "/etc/apt/sources.list.d"]).status === 0;
    if (!have) {
      const src = "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n";
      if (isRoot) writeFileSync(list, src);
      else run("sh", ["-c", `printf '%s' '${src}' > ${list}`]);
    }
    extra.push("-t", "bookworm-backports");
  }
  run("apt-get", ["update", "-qq"]);
  run("apt-get", ["install", "-y", "-qq", ...extra, "mesa-vulkan-drivers", "libvulkan1"]);
  return true;
}

checkNode();
installPackages();
let adapter = probeAdapter();
if (!adapter && installLavapipe()) adapter = probeAdapter();
if (!adapter) {
  fail("Dawn found no WebGPU adapter. On Linux without a GPU, install Mesa's Vulkan drivers " +
    "(Debian/Ubuntu: mesa-vulkan-drivers and libvulkan1, Mesa 23 or newer; on Debian bookworm from bookworm-backports), " +
    "or set DORAFUSE_ADAPTER to pick another adapter. Dawn said:\n" + lastProbeError);
}
if (process.env.DORAFUSE_SETUP_VERBOSE) log(`adapter: ${JSON.stringify(adapter)}`);
