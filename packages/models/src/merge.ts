// A PEFT adapter folded into its base, written as a plain Hugging Face folder (what
// `dorafuse merge` and mlx-lm's `fuse` make): config.json, model.safetensors with the base's
// own tensor names and dtype, the tokenizer files copied. The merge runs in float64 on the
// host from the file's values (core's mergeAdapters: W + s·B·A for LoRA, m·V/‖V‖ per output
// row for DoRA), so the only rounding is the final one to the file dtype. The folder is built
// under a temporary name and renamed into place: it appears whole or not at all.
import { existsSync, readdirSync } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { evaluate, HostTensor, mergeAdapters } from "@dorafuse/core";
import { attachAdapter } from "./adapter.js";
import { ModelError } from "./errors.js";
import { loadHostModel } from "./model.js";
import { saveModel } from "./save.js";

export interface MergeResult {
  readonly out: string;
  readonly files: readonly string[];
  /** The adapted layers folded in. */
  readonly layers: readonly string[];
  readonly dtype: string;
}

export async function mergeAdapter(modelDir: string, adapterDir: string, out: string): Promise<MergeResult> {
  if (existsSync(out) && readdirSync(out).length > 0) throw new ModelError(`${out}: exists and is not empty; merge writes a new folder (remove it or choose another --out)`);
  const model = await loadHostModel(modelDir, { dtype: "f32" });
  const attached = await attachAdapter(adapterDir, model.params, (_name, shape, data) => new HostTensor([...shape], Float64Array.from(data), "f32"));
  const merged = evaluate((p: never) => mergeAdapters(p, attached.options), [attached.params] as never);
  const tmp = join(dirname(out), `.${basename(out)}.partial-${process.pid}`);
  await rm(tmp, { recursive: true, force: true });
  try {
    const files = await saveModel(tmp, model.family, model.config, merged, { dtype: model.weights.fileDType, companionsFrom: modelDir });
    if (existsSync(out)) await rm(out, { recursive: true });
    await rename(tmp, out);
    return { out, files, layers: attached.adapter.layers.map((l) => l.path), dtype: model.weights.fileDType };
  } catch (error) {
    await rm(tmp, { recursive: true, force: true });
    throw error;
  }
}
