// Ahead-of-time compilation of a run's entries and loading what it wrote. A run writes
// `<run>/gen/entries.ts` (its configuration and the entries of model.ts), compiles each entry
// with the library face of `dorafuse compile` into `<run>/gen/<entry>.ts` + `<entry>/` (typed
// module, manifest, WGSL, initial checkpoint), then loads the manifests with the runtime's
// `loadCompiled` — exactly what each generated module's `load(device)` does, without needing
// the generated TypeScript to be importable from wherever the run folder is.
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { compileModule } from "@dorafuse/compiler";
import { loadCompiled, type CompiledManifest, type CompiledProgram, type Device } from "@dorafuse/runtime";
import { ENTRY_NAMES, entriesModule, type EntryName, type RunConfig } from "./model.js";

export type Programs = Record<EntryName, CompiledProgram>;

export interface CompiledEntry {
  readonly entry: EntryName;
  readonly manifest: string;
  readonly kernels: number;
  readonly peakBytes: number;
  readonly seconds: number;
}

const MODEL_URL = new URL("./model.ts", import.meta.url);

/** Writes the run's entries module and compiles every entry into `genDir` for `device`'s adapter. */
export async function compileRun(cfg: RunConfig, genDir: string, options: { device: Device; onEntry?: (e: CompiledEntry) => void }): Promise<CompiledEntry[]> {
  await mkdir(genDir, { recursive: true });
  const file = join(genDir, "entries.ts");
  // model.ts by absolute URL, so the module compiles wherever the run folder is
  await writeFile(file, entriesModule(cfg, MODEL_URL.protocol === "file:" ? MODEL_URL.href : pathToFileURL(MODEL_URL.pathname).href));
  const out: CompiledEntry[] = [];
  for (const entry of ENTRY_NAMES) {
    const started = performance.now();
    const r = await compileModule({ file, entry, out: genDir, device: options.device });
    const e = { entry, manifest: r.manifest, kernels: r.totals.kernels, peakBytes: r.totals.peakBytes, seconds: (performance.now() - started) / 1000 };
    options.onEntry?.(e);
    out.push(e);
  }
  return out;
}

/** Loads every compiled entry of `genDir` (each training step restored to its initial checkpoint). */
export async function loadRun(device: Device, genDir: string): Promise<Programs> {
  const programs = {} as Programs;
  for (const entry of ENTRY_NAMES) programs[entry] = await loadCompiled(device, join(genDir, entry, "manifest.json"));
  return programs;
}
