// Finding a WebGPU adapter through Dawn: the instance options, the environment variables
// that choose a backend or an adapter, and the error that says what to do when none exists.

import { lstatSync, mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, globals } from "webgpu";
import { DeviceError } from "./errors.js";

export interface AdapterOptions {
  /** Passed to requestAdapter. Default "high-performance". */
  powerPreference?: GPUPowerPreference;
  /** Dawn backend: "vulkan", "metal", "d3d12", "d3d11", "opengl", "opengles", "null". Env: DORAFUSE_BACKEND. */
  backend?: string;
  /** A part of the adapter's name as Dawn lists it, e.g. "llvmpipe". Env: DORAFUSE_ADAPTER. */
  adapter?: string;
  /** Extra Dawn instance options, e.g. "enable-dawn-features=allow_unsafe_apis". */
  dawnOptions?: string[];
}

/** An adapter Dawn can see, as it names it. */
export interface AdapterListing {
  backend: string;
  name: string;
}

export interface FoundAdapter {
  /** The Dawn instance; the adapter and its device live only as long as it is referenced. */
  instance: GPU;
  adapter: GPUAdapter;
  /** The Dawn instance options that found it. */
  instanceOptions: string[];
  backend: string;
}

let globalsInstalled = false;

/** WebGPU's global names (GPUBufferUsage, GPUMapMode, ...) without replacing any the host already has. */
function installGlobals(): void {
  if (globalsInstalled) return;
  const target = globalThis as Record<string, unknown>;
  for (const [name, value] of Object.entries(globals as Record<string, unknown>)) {
    if (!(name in target)) target[name] = value;
  }
  globalsInstalled = true;
}

/**
 * Vulkan loaders and Mesa warn on every start without XDG_RUNTIME_DIR; point it at a
 * private folder of ours rather than letting each process print about it. The folder is
 * named by user, so processes share it; one that someone else owns is not used.
 */
function ensureRuntimeDir(): void {
  if (process.env.XDG_RUNTIME_DIR) return;
  const uid = process.getuid?.();
  const shared = join(tmpdir(), `dorafuse-xdg-${uid ?? "user"}`);
  let ours = false;
  try {
    mkdirSync(shared, { recursive: true, mode: 0o700 });
    const stat = lstatSync(shared);
    ours = stat.isDirectory() && (uid === undefined || stat.uid === uid);
  } catch {
    // Taken by a file or unreadable: fall back to a folder of this process's own.
  }
  process.env.XDG_RUNTIME_DIR = ours ? shared : mkdtempSync(join(tmpdir(), "dorafuse-xdg-"));
}

interface ResolvedAdapterOptions {
  powerPreference: GPUPowerPreference;
  dawnOptions: string[];
  backend?: string;
  adapter?: string;
}

function resolveAdapterOptions(options: AdapterOptions): ResolvedAdapterOptions {
  const backend = options.backend ?? (process.env.DORAFUSE_BACKEND || undefined);
  const adapter = options.adapter ?? (process.env.DORAFUSE_ADAPTER || undefined);
  return {
    powerPreference: options.powerPreference ?? "high-performance",
    dawnOptions: options.dawnOptions ?? [],
    ...(backend ? { backend } : {}),
    ...(adapter ? { adapter } : {}),
  };
}

let listing: Promise<AdapterListing[]> | undefined;

/**
 * Every adapter Dawn can see, across backends. Dawn lists them when asked for an adapter it
 * lacks; the answer is kept for the process (each probe costs an adapter creation).
 */
export function listAdapters(): Promise<AdapterListing[]> {
  installGlobals();
  ensureRuntimeDir();
  listing ??= create(["adapter=\u0001dorafuse-list-every-adapter"])
    .requestAdapter()
    .then(
      () => [],
      (error: unknown) => parseAdapterListing(String((error as Error).message ?? error)),
    );
  return listing;
}

function parseAdapterListing(text: string): AdapterListing[] {
  const found: AdapterListing[] = [];
  for (const m of text.matchAll(/backend:\s*'([^']*)',\s*name:\s*'([^']*)'/g)) found.push({ backend: m[1]!, name: m[2]! });
  return found;
}

const normalize = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, "-");

/** Dawn's adapter info carries no backend; find it by matching the adapter's name in Dawn's listing. */
async function guessBackend(adapter: GPUAdapter, requested: string | undefined): Promise<string> {
  if (requested) return requested;
  const listing = await listAdapters();
  const device = normalize(adapter.info.device);
  const description = normalize(adapter.info.description);
  const match = listing.find((a) => normalize(a.name) === device || description.startsWith(normalize(a.name)));
  if (match) return match.backend;
  const backends = new Set(listing.map((a) => a.backend));
  return backends.size === 1 ? [...backends][0]! : "unknown";
}

const fixHint = [
  "How to fix it:",
  "  - no GPU driver on Linux: install Mesa's software Vulkan driver (lavapipe), `sudo apt-get install -t bookworm-backports mesa-vulkan-drivers libvulkan1`",
  "    on Debian 12 (its own Mesa 22 lacks a feature Dawn needs) or `sudo apt-get install mesa-vulkan-drivers libvulkan1` on Ubuntu 24.04+;",
  "    `npm run setup` in a dorafuse checkout does this for you",
  "  - with a GPU: install its vendor's Vulkan (Linux), Metal (macOS) or D3D12 (Windows) driver",
  "  - to choose another adapter: set DORAFUSE_BACKEND (vulkan, metal, d3d12, opengl, ...) or DORAFUSE_ADAPTER (a part of an adapter's name)",
].join("\n");

/** Creates a Dawn instance with the requested backend/adapter and asks it for an adapter. */
export async function findAdapter(options: AdapterOptions = {}): Promise<FoundAdapter> {
  installGlobals();
  ensureRuntimeDir();
  const resolved = resolveAdapterOptions(options);
  const instanceOptions = [...resolved.dawnOptions];
  if (resolved.backend) instanceOptions.push(`backend=${resolved.backend}`);
  if (resolved.adapter) instanceOptions.push(`adapter=${resolved.adapter}`);
  const tried = `Dawn instance [${instanceOptions.join(", ")}], requestAdapter({ powerPreference: "${resolved.powerPreference}" })`;
  const from = [
    resolved.backend && `backend "${resolved.backend}"${options.backend ? "" : " (from DORAFUSE_BACKEND)"}`,
    resolved.adapter && `adapter "${resolved.adapter}"${options.adapter ? "" : " (from DORAFUSE_ADAPTER)"}`,
  ].filter(Boolean);

  // Dawn refuses an unknown backend or adapter name when the instance is created or, in
  // this version, when it is first asked for an adapter; its message lists what exists.
  const refused = (error: unknown) => {
    const dawn = String((error as Error).message ?? error).trim();
    return new DeviceError(`no WebGPU adapter: Dawn refused ${from.join(" and ") || "its default options"}.\nTried: ${tried}.\nDawn said: ${dawn}\n${fixHint}`);
  };
  let instance: GPU;
  let adapter: GPUAdapter | null;
  try {
    instance = create(instanceOptions);
    adapter = await instance.requestAdapter({ powerPreference: resolved.powerPreference });
  } catch (error) {
    throw refused(error);
  }
  if (!adapter) {
    const available = await listAdapters();
    const seen = available.length ? available.map((a) => `${a.backend}: ${a.name}`).join("; ") : "none";
    throw new DeviceError(`no WebGPU adapter found.\nTried: ${tried}${from.length ? ` (${from.join(", ")})` : ""}.\nAdapters Dawn can see: ${seen}.\n${fixHint}`);
  }
  return { instance, adapter, instanceOptions, backend: await guessBackend(adapter, resolved.backend) };
}
