// Moving parameters between the forms a run needs them in: the flat, dotted state of a
// compiled program (`params.blocks.0.attn.q.w`, what checkpoints hold), the nested tree of
// host tensors core's functions take (adapt, mergeAdapters), and the merged model file with
// Hugging Face names (`blocks.0.attn.q.weight`).
import { HostTensor, type AdaptConfig } from "@dorafuse/core";
import { writeMergedModel } from "@dorafuse/compiler";
import { exportMergedModel, readSafetensors, toMergedName, type CompiledProgram, type ShapedArray } from "@dorafuse/runtime";
import { ReportError } from "./errors.js";
import { adaptParams, type Params } from "./model.js";

/** The prefix of parameter state in compiled programs and their checkpoints. */
export const PARAMS = "params.";

export interface FlatTensor {
  readonly shape: readonly number[];
  readonly data: ArrayLike<number>;
}

/** The nested tree of dotted names (numeric segments become array indices), leaves as f32 host tensors. */
export function treeFromFlat(flat: Readonly<Record<string, FlatTensor>>, prefix = PARAMS): Params {
  const root: Record<string, unknown> = {};
  const names = Object.keys(flat).filter((k) => k.startsWith(prefix));
  if (names.length === 0) throw new ReportError(`treeFromFlat: no tensor name starts with "${prefix}" (found ${Object.keys(flat).slice(0, 3).join(", ")}…)`);
  for (const name of names) {
    const path = name.slice(prefix.length).split(".");
    let node = root as Record<string, unknown>;
    path.forEach((seg, i) => {
      if (i === path.length - 1) {
        const t = flat[name]!;
        node[seg] = new HostTensor([...t.shape], Float64Array.from(t.data), "f32");
      } else {
        node = (node[seg] ??= /^\d+$/.test(path[i + 1]!) ? [] : {}) as Record<string, unknown>;
      }
    });
  }
  return root as unknown as Params;
}

/** The tree's leaves by dotted name (under `prefix`), as float32 arrays. */
export function flatFromTree(tree: unknown, prefix = PARAMS): Record<string, { dtype: "F32"; shape: number[]; data: Float32Array }> {
  const out: Record<string, { dtype: "F32"; shape: number[]; data: Float32Array }> = {};
  const visit = (v: unknown, path: string): void => {
    if (v instanceof HostTensor) out[prefix + path] = { dtype: "F32", shape: [...v.shape], data: Float32Array.from(v.data) };
    else if (Array.isArray(v)) v.forEach((x, i) => visit(x, path ? `${path}.${i}` : `${i}`));
    else if (v && typeof v === "object") for (const k of Object.keys(v).sort()) visit((v as Record<string, unknown>)[k], path ? `${path}.${k}` : k);
  };
  visit(tree, "");
  return out;
}

const paramKeys = (program: CompiledProgram): string[] => program.stateKeys().filter((k) => k.startsWith(PARAMS));

/** A program's parameters, read back from the GPU as a tree. */
export async function readParams(program: CompiledProgram): Promise<Params> {
  const keys = paramKeys(program);
  const values = (await Promise.all(keys.map((k) => program.readState(k)))) as ShapedArray[];
  return treeFromFlat(Object.fromEntries(keys.map((k, i) => [k, values[i]!])));
}

/** Writes every parameter of `program` from `flat` (a tree flattened, or another program's state); optimizer state is left alone. */
export async function writeParams(program: CompiledProgram, flat: Readonly<Record<string, { shape: readonly number[]; data: Float32Array }>>): Promise<void> {
  const keys = paramKeys(program);
  const missing = keys.filter((k) => !flat[k]);
  if (missing.length) throw new ReportError(`writeParams (${program.manifest.entry}): no values for ${missing.slice(0, 4).join(", ")}${missing.length > 4 ? ", …" : ""}`);
  for (const k of keys) await program.writeState(k, { shape: [...flat[k]!.shape], data: flat[k]!.data });
}

/** Starts a fine-tuning program from pretrained weights: the same tree (full), or the tree with fresh adapters. */
export async function startFrom(program: CompiledProgram, pretrained: Params, adapter: AdaptConfig | undefined, seed: number): Promise<void> {
  await writeParams(program, flatFromTree(adapter ? adaptParams(pretrained, adapter, seed) : pretrained));
}

/** Every adapter folded into its layer (float64 on the host), written as safetensors with Hugging Face names. */
export async function writeMerged(path: string, params: Params, adapter: AdaptConfig | undefined): Promise<void> {
  if (adapter) await writeMergedModel(path, params, adapter);
  else await exportMergedModel(path, flatFromTree(params, ""));
}

/** Loads a merged model file into a program of the plain tree (the sampling forward), by Hugging Face name. */
export async function loadMerged(program: CompiledProgram, path: string): Promise<void> {
  const { tensors } = await readSafetensors(path);
  const flat: Record<string, { shape: readonly number[]; data: Float32Array }> = {};
  for (const key of paramKeys(program)) {
    const name = toMergedName(key.slice(PARAMS.length));
    const t = name === undefined ? undefined : tensors.get(name);
    if (!t || t.dtype !== "F32") throw new ReportError(`${path}: expected an F32 tensor "${name ?? key}" for ${key}, found ${t ? t.dtype : "none"}`);
    flat[key] = { shape: t.shape, data: t.data as Float32Array };
  }
  await writeParams(program, flat);
}
