// compileModule({ file, entry, out }): ahead-of-time compilation, the library face of
// `dorafuse compile`. Imports the user's module, traces the named entry at the shapes it
// declares, compiles it for a target adapter, and writes
//   <out>/<entry>.ts                  the typed module (emit.ts), importing @dorafuse/runtime only
//   <out>/<entry>/manifest.json       the plan (WGSL referenced by file and sha256), the interface,
//                                     the graph fingerprint, the compiler version, the adapter
//                                     limits it was compiled for and those it needs
//   <out>/<entry>/<kernel>.wgsl       one file per kernel, readable
//   <out>/<entry>/initial.safetensors the initial state (parameters, optimizer state, step, key),
//                                     when the entry's state was given as values
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { basename, join, relative, resolve } from "node:path";
import { createDevice, hashWgsl, saveCheckpoint, type CompiledManifest, type Device } from "@dorafuse/runtime";
import { CompileError } from "../errors.js";
import { targetOf, DEFAULT_TARGET, type Target } from "../limits.js";
import { prepareEval } from "../train/eval-step.js";
import { allHost, lowerProgram, stateTensors, type Program } from "../train/program.js";
import { prepareTrain } from "../train/train-step.js";
import { aotEntryOf, type AotEntry } from "./define.js";
import { emitModule, GENERATED } from "./emit.js";
import { importModule } from "./load-module.js";

export interface CompileModuleOptions {
  /** The TypeScript (or JavaScript) module holding the entry. */
  file: string;
  /** The name of the export to compile. */
  entry: string;
  /** The folder to write into (created if missing). */
  out: string;
  /** Compile for this adapter's limits; default: `device`'s, else this machine's adapter. */
  target?: Target;
  /** "defaults": WebGPU's default limits, for a module that loads on any adapter. */
  portable?: boolean;
  device?: Device;
  /** Override the entry's fusion option. */
  fusion?: boolean;
}

export interface CompiledModule {
  /** The generated TypeScript module. */
  module: string;
  manifest: string;
  wgsl: string[];
  initial?: string;
  /** The manifest as written (WGSL by file). */
  data: CompiledManifest;
  totals: Program["lowered"]["totals"];
}

interface Built extends Program {
  initial?: { tensors: ReturnType<typeof stateTensors>; step: number; rngKey?: number[] };
}

async function targetFor(o: CompileModuleOptions): Promise<Target> {
  if (o.target) return o.target;
  if (o.portable) return DEFAULT_TARGET;
  if (o.device) return targetOf(o.device);
  const device = await createDevice();
  try {
    return targetOf(device);
  } finally {
    device.dispose();
  }
}

function build(name: string, entry: AotEntry, target: Target, fusion: boolean | undefined): Built {
  const over = fusion === undefined ? {} : { fusion };
  if (entry.kind === "dorafuse.train") return prepareTrain(name, entry.loss as never, entry.optimizer, { ...entry.options, ...over }, target);
  if (entry.kind === "dorafuse.eval") return prepareEval(name, entry.loss as never, { ...entry.options, ...over }, target);
  const o = entry.options ?? {};
  const names = o.names ?? entry.specs.map((_, i) => `arg${i}`);
  const state = o.state ?? {};
  const { fusion: f, optimize, limits, maxFusedRow, dims } = { ...o, ...over };
  const program = lowerProgram(entry.fn, entry.specs, {
    entry: name,
    kind: "function",
    target,
    names,
    state,
    fusion: f, optimize, limits, maxFusedRow, dims,
  });
  const stateArgs = [...new Set(Object.values(state))].sort((a, b) => a - b).map((i) => entry.specs[i]);
  const host = stateArgs.length > 0 && stateArgs.every(allHost);
  return { ...program, ...(host ? { initial: { tensors: stateTensors(program.manifest, stateArgs), step: 0 } } : {}) };
}

/** Only earlier output of `dorafuse compile` is replaced: never a folder or file a person made. */
async function checkOverwrite(dir: string, modulePath: string): Promise<void> {
  const entries = await readdir(dir).catch(() => [] as string[]);
  if (entries.length > 0 && !entries.includes("manifest.json")) throw new CompileError(`refusing to replace ${dir}: it is not the output of dorafuse compile (no manifest.json); choose another --out`, "dorafuse compile");
  const head = await readFile(modulePath, "utf8").then((t) => t.slice(0, 40), () => undefined);
  if (head !== undefined && !head.startsWith(GENERATED)) throw new CompileError(`refusing to overwrite ${modulePath}: it was not written by dorafuse compile; choose another --out`, "dorafuse compile");
}

export async function compileModule(o: CompileModuleOptions): Promise<CompiledModule> {
  if (!/^[A-Za-z_$][\w$]*$/.test(o.entry)) throw new CompileError(`--entry must name an export (an identifier), found "${o.entry}"`, "dorafuse compile");
  const module = await importModule(o.file);
  const entry = aotEntryOf(module, o.entry, o.file);
  const built = build(o.entry, entry, await targetFor(o), o.fusion);
  const out = resolve(o.out);
  const dir = join(out, o.entry);
  const modulePath = join(out, `${o.entry}.ts`);
  await checkOverwrite(dir, modulePath);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const wgsl: NonNullable<CompiledManifest["wgsl"]> = [];
  for (const k of built.manifest.plan.kernels) {
    const file = `${k.name}.wgsl`;
    if (wgsl.some((w) => w.file === file)) throw new CompileError(`two kernels are named "${k.name}"`, "dorafuse compile");
    await writeFile(join(dir, file), k.wgsl);
    wgsl.push({ kernel: k.id, file, sha256: hashWgsl(k.wgsl) });
  }
  const initial = built.initial ? "initial.safetensors" : undefined;
  if (built.initial) await saveCheckpoint(join(dir, initial!), built.initial);
  const data: CompiledManifest = {
    ...built.manifest,
    plan: { ...built.manifest.plan, kernels: built.manifest.plan.kernels.map((k) => ({ ...k, wgsl: "" })) },
    wgsl,
    ...(initial ? { initial } : {}),
  };
  const manifest = join(dir, "manifest.json");
  await writeFile(manifest, `${JSON.stringify(data, null, 1)}\n`);
  const { totals } = built.lowered;
  const text = emitModule({ manifest: data, manifestPath: `./${o.entry}/manifest.json`, source: relative(out, resolve(o.file)) || basename(o.file), totals });
  await writeFile(modulePath, text);
  return { module: modulePath, manifest, wgsl: wgsl.map((w) => join(dir, w.file)), ...(initial ? { initial: join(dir, initial) } : {}), data, totals };
}
