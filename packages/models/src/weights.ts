// A model folder's weights into a family's parameter tree. The tree's dotted paths are
// transformers' module names, so a tensor's checkpoint name is toMergedName(path)
// (`model.layers.0.self_attn.q_proj.w` → `…q_proj.weight`). Every file's header is checked
// against the tree before any data is read; then tensors stream one at a time (read, convert,
// hand to `leaf`, drop), so no second copy of the model is ever held.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { spec, trace, type TensorSpec } from "@dorafuse/core";
import { bf16ToF32, f16ToF32, f32ToF16, readSafetensorsHeader, streamSafetensors, toMergedName, type HeaderEntry, type SafetensorsArray, type SafetensorsDType } from "@dorafuse/runtime";
import { ModelError } from "./errors.js";
import type { BaseConfig, Family } from "./families/family.js";

/** How a weight is kept: f32, or f16 for the frozen matrices (norms and biases stay f32). */
export type WeightDType = "f32" | "f16";

/** One tensor as loaded: f32 values, or f16 bits. */
export interface LoadedTensor {
  readonly path: string;
  readonly shape: readonly number[];
  readonly dtype: WeightDType;
  readonly data: Float32Array | Uint16Array;
}

export interface WeightsReport {
  /** Bytes the loaded weights occupy. */
  readonly bytes: number;
  /** Bytes the same weights would occupy in f32. */
  readonly f32Bytes: number;
  /** Checkpoint tensors skipped as buffers (masks, inverse frequencies) or as the tied head's copy. */
  readonly skipped: readonly string[];
  readonly files: readonly string[];
  /** The float dtype most of the checkpoint's values are stored in: what a merged or fine-tuned copy is written in. */
  readonly fileDType: "F32" | "F16" | "BF16";
}

const FLOATS: readonly SafetensorsDType[] = ["F32", "F16", "BF16"];

/** The tree's leaves with their dotted paths, in tree order (arrays index as `.0`). */
export function leavesOf(tree: unknown, visit: (leaf: unknown, path: string) => void, isLeaf: (v: unknown) => boolean, path = ""): void {
  if (isLeaf(tree)) return visit(tree, path);
  const at = (k: string | number) => (path ? `${path}.${k}` : String(k));
  if (Array.isArray(tree)) tree.forEach((v, i) => leavesOf(v, visit, isLeaf, at(i)));
  else if (tree && typeof tree === "object") for (const k of Object.keys(tree).sort()) leavesOf((tree as Record<string, unknown>)[k], visit, isLeaf, at(k));
}

/** The parameter tree's leaves as `init` makes them: path → shape, traced (nothing is evaluated). */
export function expectedLeaves<C extends BaseConfig>(family: Family<C>, cfg: C): Map<string, readonly number[]> {
  const specs = trace((k) => family.init(k as never, cfg), [spec([2], "u32")]).resultSpecs();
  const out = new Map<string, readonly number[]>();
  leavesOf(specs, (s, path) => out.set(path, (s as TensorSpec).shape as readonly number[]), (v) => v instanceof Object && "shape" in (v as object) && "dtype" in (v as object));
  return out;
}

interface Planned {
  readonly path: string;
  /** The tree's shape (`[out, in]` for a linear layer). */
  readonly shape: readonly number[];
  readonly transpose: boolean;
  readonly dtype: WeightDType;
}

/** The safetensors files of a folder: one `model.safetensors`, or the shards an index names. */
function filesOf(dir: string): { files: string[]; index?: { file: string; map: Map<string, string> } } {
  const indexFile = join(dir, "model.safetensors.index.json");
  if (existsSync(indexFile)) {
    let json: { weight_map?: Record<string, string> };
    try {
      json = JSON.parse(readFileSync(indexFile, "utf8"));
    } catch (error) {
      throw new ModelError(`${indexFile}: not valid JSON: ${(error as Error).message}`);
    }
    if (!json.weight_map || typeof json.weight_map !== "object") throw new ModelError(`${indexFile}: no "weight_map" object`);
    const map = new Map(Object.entries(json.weight_map));
    const files = [...new Set(map.values())];
    for (const f of files) if (!existsSync(join(dir, f))) throw new ModelError(`${indexFile}: shard "${f}" (holding ${[...map].find(([, v]) => v === f)![0]} and others) is missing from ${dir}`);
    return { files, index: { file: indexFile, map } };
  }
  if (existsSync(join(dir, "model.safetensors"))) return { files: ["model.safetensors"] };
  const other = ["pytorch_model.bin", "model.bin", "tf_model.h5"].find((f) => existsSync(join(dir, f)));
  throw new ModelError(`${dir}: no model.safetensors or model.safetensors.index.json${other ? ` (found ${other}; convert it to safetensors first)` : ""}`);
}

/**
 * Loads the weights of `dir` into the family's tree: `leaf` turns each tensor into what the
 * tree holds (a GPU tensor, a host tensor). Missing, extra and misshapen tensors are errors
 * naming the tensor, the file and the expected shape.
 */
export async function loadWeights<C extends BaseConfig, L>(
  dir: string,
  family: Family<C>,
  cfg: C,
  opts: { dtype: WeightDType; leaf: (t: LoadedTensor) => L | Promise<L> },
): Promise<{ params: unknown; report: WeightsReport }> {
  const expected = expectedLeaves(family, cfg);
  const byName = new Map<string, Planned>();
  for (const [path, shape] of expected) {
    const name = toMergedName(path)!;
    const layer = path.slice(0, path.lastIndexOf("."));
    const leaf = path.slice(path.lastIndexOf(".") + 1);
    byName.set(name, { path, shape, transpose: leaf === "w" && family.names.conv1d.test(layer), dtype: opts.dtype === "f16" && shape.length === 2 ? "f16" : "f32" });
  }
  const { files, index } = filesOf(dir);
  const prefix = family.names.optionalPrefix;
  const canonical = (n: string) => (prefix && !n.startsWith(prefix) && !byName.has(n) && byName.has(prefix + n) ? prefix + n : n);
  const skippable = (n: string) => family.names.buffers.test(n) || (cfg.tied && /(^|\.)lm_head\.weight$/.test(n));

  // every header first: the whole folder is checked before a byte of data is read
  const seen = new Map<string, string>();
  const skipped: string[] = [];
  const bytesOf = new Map<SafetensorsDType, number>();
  for (const f of files) {
    const path = join(dir, f);
    for (const e of (await readSafetensorsHeader(path)).entries) {
      const name = canonical(e.name);
      if (index && index.map.get(e.name) !== f) throw new ModelError(`${path}: holds ${e.name}, which ${index.file} places in ${index.map.get(e.name) ?? "no shard"}`);
      if (skippable(name)) {
        skipped.push(e.name);
        continue;
      }
      const want = byName.get(name);
      if (!want) throw new ModelError(`${path}: unexpected tensor "${e.name}" ${e.dtype}[${e.shape}] (not a parameter of ${family.modelTypes[0]} with this config.json; expected names like "${[...byName.keys()][0]}")`);
      if (seen.has(name)) throw new ModelError(`${path}: tensor "${e.name}" is also in ${seen.get(name)}`);
      seen.set(name, path);
      checkEntry(e, want, path);
      bytesOf.set(e.dtype, (bytesOf.get(e.dtype) ?? 0) + e.shape.reduce((a, b) => a * b, 1));
    }
  }
  const missing = [...byName].filter(([n]) => !seen.has(n));
  if (missing.length) {
    const list = missing.slice(0, 5).map(([n, p]) => `"${n}" ${shapeInFile(p)}`).join(", ");
    throw new ModelError(`${dir}: missing tensor${missing.length > 1 ? "s" : ""} ${list}${missing.length > 5 ? ` and ${missing.length - 5} more` : ""} (looked in ${files.join(", ")})`);
  }

  const leaves = new Map<string, L>();
  let bytes = 0;
  let f32Bytes = 0;
  for (const f of files) {
    const { tensors } = await streamSafetensors(join(dir, f));
    for await (const { name: raw, tensor } of tensors) {
      const want = byName.get(canonical(raw));
      if (!want) continue;
      const values = toFloat32(tensor.dtype, tensor.data);
      const oriented = want.transpose ? transpose2d(values, tensor.shape[0]!, tensor.shape[1]!) : values;
      const data = want.dtype === "f16" ? f32ToF16(oriented) : oriented;
      bytes += data.byteLength;
      f32Bytes += oriented.length * 4;
      leaves.set(want.path, await opts.leaf({ path: want.path, shape: want.shape, dtype: want.dtype, data }));
    }
  }
  const fileDType = [...bytesOf].sort((a, b) => b[1] - a[1])[0]![0] as WeightsReport["fileDType"];
  return { params: treeOf(leaves), report: { bytes, f32Bytes, skipped, files, fileDType } };
}

const shapeInFile = (p: Planned) => `[${(p.transpose ? [...p.shape].reverse() : p.shape).join(", ")}]`;

function checkEntry(e: HeaderEntry, want: Planned, path: string): void {
  if (!FLOATS.includes(e.dtype)) throw new ModelError(`${path}: tensor "${e.name}" is ${e.dtype}; model weights must be F32, F16 or BF16`);
  const fileShape = want.transpose ? [...want.shape].reverse() : want.shape;
  if (e.shape.length !== fileShape.length || e.shape.some((d, i) => d !== fileShape[i])) {
    throw new ModelError(`${path}: tensor "${e.name}" has shape [${e.shape.join(", ")}], expected [${fileShape.join(", ")}]${want.transpose ? " (Conv1D: [in, out])" : ""} from config.json`);
  }
}

/** f32 values of a float tensor from a file (F32 as is, F16 and BF16 widened). */
export function toFloat32(dtype: SafetensorsDType, data: SafetensorsArray): Float32Array {
  if (dtype === "F32") return data as Float32Array;
  if (dtype === "F16") return f16ToF32(data as Uint16Array);
  if (dtype === "BF16") return bf16ToF32(data as Uint16Array);
  return Float32Array.from(data as ArrayLike<number>);
}

/** A row-major [rows, cols] matrix as [cols, rows]. */
export function transpose2d(x: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = x[r * cols + c]!;
  return out;
}

/** Dotted paths back into a tree: numeric segments make arrays. */
function treeOf(leaves: Map<string, unknown>): unknown {
  const root: Record<string, unknown> = {};
  for (const [path, leaf] of leaves) {
    const parts = path.split(".");
    let node: Record<string, unknown> = root;
    parts.forEach((part, i) => {
      if (i === parts.length - 1) node[part] = leaf;
      else node = (node[part] ??= /^\d+$/.test(parts[i + 1]!) ? [] : {}) as Record<string, unknown>;
    });
  }
  return root;
}
