// The manifest of a compiled program (manifest.json beside its WGSL files): the plan, the
// interface's tensors and state, the graph's fingerprint, the compiler version, the adapter
// limits it was compiled for and those it needs — and the checks made before loading it.

import { hashWgsl } from "./pipelines.js";
import { unmetLimits } from "./validate.js";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Device } from "./device.js";
import { DeviceError, PlanError } from "./errors.js";
import type { PeftLoraConfig } from "./peft-config.js";
import type { ExecutionPlan, PlanDType } from "./plan.js";

/** One tensor of the interface: the plan's name for it, how errors name it, and where it sits in the argument or result tree. */
export interface ManifestTensor {
  name: string;
  label: string;
  path: (string | number)[];
  shape: number[];
  dtype: PlanDType;
}

/** param/optimizer/state: saved as tensors; step and key: the checkpoint's step and random key. */
export type StateRole = "param" | "optimizer" | "state" | "step" | "key";

export interface ManifestState {
  /** The plan's name of the state tensor. */
  name: string;
  /** Its name in checkpoints and readState (flat, dotted: `params.blocks.0.attn.q.loraA`). */
  key: string;
  shape: number[];
  dtype: PlanDType;
  role: StateRole;
}

export interface CompiledManifest {
  format: "dorafuse.compiled";
  version: 1;
  entry: string;
  kind: "function" | "train" | "eval";
  /** The compiler that made it, e.g. "@dorafuse/compiler 0.1.0". */
  compiler: string;
  /** Fingerprint of the traced graph. */
  fingerprint: string;
  /** The adapter it was compiled for, with all its limits (informational). */
  compiledFor: { adapter: string; limits: Record<string, number>; features: string[] };
  /** What an adapter must offer to run it (checked by loadCompiled). */
  requires: { limits: Record<string, number>; features: string[] };
  /** The plan; with `wgsl` files its kernels' WGSL is left empty and read from them. */
  plan: ExecutionPlan;
  wgsl?: { kernel: number; file: string; sha256: string }[];
  args: ManifestTensor[];
  results: ManifestTensor[];
  state: ManifestState[];
  /** train/eval: the output holding [loss, ...metrics] as f32. */
  stats?: { output: string; names: string[] };
  /** The LoRA/DoRA adapters among the parameters, for PEFT export and import. */
  adapter?: { prefix: string; layers: string[]; embeddings: string[]; config: Partial<PeftLoraConfig> };
  /** A checkpoint (relative to the manifest) that loadCompiled restores first. */
  initial?: string;
}

/**
 * Throws a DeviceError naming every limit and feature the adapter lacks (alignments, "min…",
 * are met by smaller values; every other limit by larger ones).
 */
export function checkAdapter(manifest: Pick<CompiledManifest, "entry" | "requires" | "compiledFor">, device: Pick<Device, "limits" | "features">): void {
  const problems = unmetLimits(manifest.requires.limits, device.limits).map(
    ({ key, needed, have, min }) => `${key}: needs ${min ? "at most" : "at least"} ${needed}, this adapter has ${have ?? "no such limit"}`,
  );
  for (const f of manifest.requires.features) if (!device.features.has(f)) problems.push(`feature ${f}: needed, this adapter does not have it`);
  if (problems.length === 0) return;
  const adapter = (device as { adapter?: { description?: string; device?: string } }).adapter;
  const name = adapter?.description || adapter?.device || "this adapter";
  throw new DeviceError(
    `${manifest.entry}: compiled for "${manifest.compiledFor.adapter}", it cannot run on "${name}" (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n  ${problems.join("\n  ")}\n` +
      "compile it again for this adapter (dorafuse compile on this machine, or --no-device for WebGPU's default limits)",
  );
}

/** Reads `<dir>/manifest.json` (or the .json file given) and its WGSL files, checking their hashes. */
export async function readManifest(source: string | URL): Promise<{ manifest: CompiledManifest; dir: string }> {
  let file = source instanceof URL ? fileURLToPath(source) : source;
  if (!file.endsWith(".json")) file = join(file, "manifest.json");
  const dir = dirname(file);
  let manifest: CompiledManifest;
  try {
    manifest = JSON.parse(await readFile(file, "utf8")) as CompiledManifest;
  } catch (error) {
    throw new PlanError(`${file}: cannot read the compiled manifest: ${(error as Error).message}`);
  }
  if (manifest.format !== "dorafuse.compiled" || manifest.version !== 1) {
    throw new PlanError(`${file}: expected a manifest with format "dorafuse.compiled" and version 1, found ${JSON.stringify(manifest.format)} version ${JSON.stringify(manifest.version)}`);
  }
  const texts = new Map<number, string>();
  for (const w of manifest.wgsl ?? []) {
    const text = await readFile(join(dir, w.file), "utf8").catch((error: Error) => {
      throw new PlanError(`${file}: cannot read the WGSL of kernel ${w.kernel} (${w.file}): ${error.message}`);
    });
    const sha = hashWgsl(text);
    if (sha !== w.sha256) throw new PlanError(`${join(dir, w.file)}: changed since it was compiled (sha256 ${sha}, the manifest says ${w.sha256}); compile the module again`);
    texts.set(w.kernel, text);
  }
  const kernels = manifest.plan.kernels.map((k) => (texts.has(k.id) ? { ...k, wgsl: texts.get(k.id)! } : k));
  return { manifest: { ...manifest, plan: { ...manifest.plan, kernels } }, dir };
}
