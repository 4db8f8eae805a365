// A parameter tree written as a Hugging Face model folder, the way save_pretrained writes it:
// config.json and model.safetensors with transformers' names (toMergedName of each path,
// Conv1D layers transposed back to [in, out]), in F32, F16 or BF16, metadata {"format": "pt"};
// the tokenizer files of another folder copied beside them. Every file is written to a
// temporary name and renamed into place, so an interrupted save leaves no half-written folder
// files behind.
import { copyFile, mkdir, rename } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { HostTensor } from "@dorafuse/core";
import { f16ToF32, f32ToBf16, f32ToF16, toMergedName, writeFileAtomically, writeSafetensors, type HostTensor as FileTensor, type Tensor as GpuTensor } from "@dorafuse/runtime";
import type { BaseConfig, Family } from "./families/family.js";
import { leavesOf, transpose2d } from "./weights.js";

export type FileDType = "F32" | "F16" | "BF16";

/** Files beside the weights that a folder's users need (tokenizer, generation settings). */
export const COMPANION_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json", "vocab.json", "merges.txt", "tokenizer.model"];

export interface SaveOptions {
  /** The file dtype (default F32). */
  readonly dtype?: FileDType;
  /** A folder whose tokenizer and generation files are copied beside the weights. */
  readonly companionsFrom?: string;
}

const isLeaf = (v: unknown) => v instanceof HostTensor || (typeof v === "object" && v !== null && typeof (v as GpuTensor).read === "function" && "shape" in v);

/** f32 values of a leaf (a host tensor, or a GPU tensor read back). */
async function valuesOf(leaf: unknown): Promise<Float32Array> {
  if (leaf instanceof HostTensor) return Float32Array.from(leaf.data);
  const t = leaf as GpuTensor;
  const data = await t.read();
  return t.dtype === "f16" ? f16ToF32(data as Uint16Array) : Float32Array.from(data as Float32Array);
}

function encode(values: Float32Array, shape: number[], dtype: FileDType): FileTensor {
  if (dtype === "F32") return { dtype, shape, data: values };
  return { dtype, shape, data: dtype === "F16" ? f32ToF16(values) : f32ToBf16(values) };
}

/** Writes `dir/config.json` and `dir/model.safetensors` for a tree of host or GPU tensors. */
export async function saveModel<C extends BaseConfig>(dir: string, family: Family<C>, config: C, params: unknown, opts: SaveOptions = {}): Promise<string[]> {
  const dtype = opts.dtype ?? "F32";
  const leaves: [string, unknown][] = [];
  leavesOf(params, (leaf, path) => leaves.push([path, leaf]), isLeaf);
  const tensors = new Map<string, FileTensor>();
  for (const [path, leaf] of leaves) {
    const name = toMergedName(path);
    if (!name) continue;
    const shape = [...(leaf as { shape: readonly number[] }).shape];
    let values = await valuesOf(leaf);
    const layer = path.slice(0, path.lastIndexOf("."));
    if (path.endsWith(".w") && family.names.conv1d.test(layer)) {
      values = transpose2d(values, shape[0]!, shape[1]!);
      shape.reverse();
    }
    tensors.set(name, encode(values, shape, dtype));
  }
  await mkdir(dir, { recursive: true });
  await writeSafetensors(join(dir, "model.safetensors"), tensors, { format: "pt" });
  const json = { ...family.writeConfig(config), torch_dtype: { F32: "float32", F16: "float16", BF16: "bfloat16" }[dtype] };
  await writeFileAtomically(join(dir, "config.json"), [Buffer.from(`${JSON.stringify(json, null, 2)}\n`)]);
  const written = ["config.json", "model.safetensors"];
  for (const f of COMPANION_FILES) {
    const from = opts.companionsFrom && join(opts.companionsFrom, f);
    if (!from || !existsSync(from)) continue;
    const tmp = join(dir, `.${f}.tmp`);
    await copyFile(from, tmp);
    await rename(tmp, join(dir, f));
    written.push(f);
  }
  return written;
}
