// A Hugging Face model folder as a loaded model: config.json read by its family, the weights
// streamed into the family's parameter tree (on the GPU, or on the host for the reference
// interpreter), and the tokenizer beside them.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { HostTensor } from "@dorafuse/core";
import { f16ToF32, upload, type Device, type Tensor as GpuTensor } from "@dorafuse/runtime";
import { ModelError } from "./errors.js";
import type { BaseConfig, Family } from "./families/family.js";
import { gpt2 } from "./families/gpt2.js";
import { llama } from "./families/llama.js";
import { loadTokenizer, type Tokenizer } from "./tokenizer.js";
import { loadWeights, type LoadedTensor, type WeightDType, type WeightsReport } from "./weights.js";

/** Every family this package reads, by transformers' model_type. */
export const FAMILIES: readonly Family<BaseConfig>[] = [llama as never, gpt2 as never];

export function familyOf(modelType: unknown, file: string): Family<BaseConfig> {
  const family = FAMILIES.find((f) => f.modelTypes.includes(modelType as string));
  if (!family) throw new ModelError(`${file}: model_type ${JSON.stringify(modelType)} is not supported (supported: ${FAMILIES.flatMap((f) => f.modelTypes).join(", ")})`);
  return family;
}

/** config.json of a folder, read by its family. */
export function readModelConfig(dir: string): { family: Family<BaseConfig>; config: BaseConfig; json: Record<string, unknown> } {
  const file = join(dir, "config.json");
  if (!existsSync(dir)) throw new ModelError(`${dir}: no such folder`);
  if (!existsSync(file)) throw new ModelError(`${dir}: no config.json (a Hugging Face model folder has config.json and model.safetensors)`);
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    throw new ModelError(`${file}: not valid JSON: ${(error as Error).message}`);
  }
  const family = familyOf(json.model_type, file);
  return { family, config: family.readConfig(json, file), json };
}

export interface LoadedModel<L = GpuTensor> {
  readonly dir: string;
  readonly family: Family<BaseConfig>;
  readonly config: BaseConfig;
  /** The parameter tree (transformers' module paths), its leaves GPU tensors or host tensors. */
  readonly params: unknown;
  readonly dtype: WeightDType;
  readonly tokenizer?: Tokenizer;
  readonly weights: WeightsReport;
  /** What the tree's leaves are (GPU tensors, or host tensors). */
  readonly leaf?: L;
}

export interface LoadOptions {
  /** Frozen matrices in f16 ("f16", the default where the adapter has shader-f16) or f32. */
  readonly dtype?: WeightDType;
}

/** Loads a folder onto the GPU: each tensor is uploaded as it is read. */
export async function loadModel(dir: string, device: Device, opts: LoadOptions = {}): Promise<LoadedModel> {
  const hasF16 = device.features.has("shader-f16");
  if (opts.dtype === "f16" && !hasF16) throw new ModelError(`--dtype f16: the adapter "${device.adapter.description || device.adapter.device}" has no shader-f16; use --dtype f32`);
  const dtype = opts.dtype ?? (hasF16 ? "f16" : "f32");
  return load(dir, dtype, (t) => upload(device, t.data, { shape: t.shape, dtype: t.dtype, name: t.path }));
}

/** Loads a folder into host tensors (float64 values of what the GPU would hold), for the reference interpreter. */
export async function loadHostModel(dir: string, opts: LoadOptions = {}): Promise<LoadedModel<HostTensor>> {
  return load(dir, opts.dtype ?? "f32", (t) => new HostTensor(t.shape, Float64Array.from(t.dtype === "f16" ? f16ToF32(t.data as Uint16Array) : t.data), t.dtype));
}

async function load<L>(dir: string, dtype: WeightDType, leaf: (t: LoadedTensor) => L): Promise<LoadedModel<L>> {
  const { family, config } = readModelConfig(dir);
  const { params, report } = await loadWeights(dir, family, config, { dtype, leaf });
  const tokenizer = await loadTokenizer(dir, { vocabSize: config.vocab });
  return { dir, family, config, params, dtype, weights: report, ...(tokenizer ? { tokenizer } : {}) };
}
