// The adapters of a parameter tree, as the runtime's PEFT export needs them (which layers,
// which are embeddings, LoraConfig's fields from the adapter options), and the merged model:
// every adapter folded into its layer by core's mergeAdapters, written with Hugging Face names.
import { adapterKind, evaluate, flatten, HostTensor, layerKind, mergeAdapters, type AdapterOptions } from "@dorafuse/core";
import { exportMergedModel, type CompiledManifest, type HostTensor as FileTensor } from "@dorafuse/runtime";
import { toFileTensor } from "../host.js";
import { dotted, keyPaths } from "./program.js";

/** The adapter options trainStep records for export: core's AdaptConfig or AdapterOptions (kind is informational). */
export type AdapterConfig = AdapterOptions & { readonly kind?: "lora" | "dora" };

/** Paths of the adapted layers of a tree (plain objects and arrays, any leaves). */
function adaptedLayers(tree: unknown, path: (string | number)[] = [], out: { layers: string[]; embeddings: string[] } = { layers: [], embeddings: [] }) {
  if (adapterKind(tree)) {
    out.layers.push(dotted(path));
    if (layerKind(tree) === "embedding") out.embeddings.push(dotted(path));
  } else if (Array.isArray(tree)) tree.forEach((v, i) => adaptedLayers(v, [...path, i], out));
  else if (typeof tree === "object" && tree !== null && Object.getPrototypeOf(tree) === Object.prototype) {
    for (const k of Object.keys(tree).sort()) adaptedLayers((tree as Record<string, unknown>)[k], [...path, k], out);
  }
  return out;
}

/** The manifest's adapter section for a parameter tree under `prefix`, or undefined when it has no adapters. */
export function adapterInfo(params: unknown, prefix: string, cfg?: AdapterConfig): CompiledManifest["adapter"] {
  const { layers, embeddings } = adaptedLayers(params);
  if (layers.length === 0) return undefined;
  const config = cfg
    ? {
        r: cfg.rank,
        lora_alpha: cfg.alpha,
        use_rslora: cfg.rsLora ?? false,
        lora_dropout: cfg.dropout ?? 0,
        ...(cfg.kind ? { use_dora: cfg.kind === "dora" } : {}),
      }
    : {};
  return { prefix: `${prefix}.`, layers, embeddings, config };
}

/**
 * Folds every adapter of `params` into its layer (in float64, from the float32 values) and
 * writes the result as safetensors with Hugging Face names (`.w` → `.weight`, …).
 */
export async function writeMergedModel(path: string, params: unknown, cfg: AdapterOptions, options: { prefix?: string } = {}): Promise<Record<string, string>> {
  const merged = evaluate((p: never) => mergeAdapters(p, cfg), [params] as never) as unknown;
  const [leaves, def] = flatten(merged, (v): v is HostTensor => v instanceof HostTensor);
  const tensors: Record<string, FileTensor> = {};
  keyPaths(def).forEach((p, i) => (tensors[dotted(p)] = toFileTensor(leaves[i]!)));
  return exportMergedModel(path, tensors, options.prefix !== undefined ? { prefix: options.prefix } : {});
}
