// A PEFT adapter folder on a loaded model: its tensors (keyed by transformers' module paths,
// which are the tree's paths) join the layers they adapt, and its config becomes the
// adapters' run options. A folder made for another base — a module the model lacks, factors
// that do not fit the layer — is refused by name.
import type { AdapterOptions } from "@dorafuse/core";
import { importPeftAdapter, type PeftAdapter } from "@dorafuse/runtime";
import { ModelError } from "./errors.js";
import { toFloat32 } from "./weights.js";

export interface AttachedAdapter<L> {
  /** The tree with loraA, loraB (and m) on every adapted layer. */
  readonly params: unknown;
  readonly options: AdapterOptions;
  readonly adapter: PeftAdapter;
  readonly leaves: readonly L[];
}

/** Reads `dir` and attaches it to `params`; `leaf` turns each tensor into what the tree holds. */
export async function attachAdapter<L>(dir: string, params: unknown, leaf: (name: string, shape: readonly number[], data: Float32Array) => L): Promise<AttachedAdapter<L>> {
  const adapter = await importPeftAdapter(dir);
  const ranks = new Set(adapter.layers.map((l) => `${l.rank}/${l.alpha}`));
  if (ranks.size > 1) throw new ModelError(`${dir}: layers of different ranks or alphas (${[...ranks].join(", ")}) are not supported`);
  const first = adapter.layers[0];
  if (!first) throw new ModelError(`${dir}: the adapter adapts no layer`);
  const embedding = adapter.layers.find((l) => l.kind === "embedding");
  if (embedding) throw new ModelError(`${dir}: ${embedding.path} is an adapted embedding; generation supports adapted linear layers`);
  const leaves: L[] = [];
  const tree = structuredCloneTree(params);
  for (const layer of adapter.layers) {
    const node = nodeAt(tree, layer.path);
    const w = node?.w as { shape: readonly number[] } | undefined;
    if (!node || !w) throw new ModelError(`${dir}: the adapter adapts "${layer.path}", which this model does not have (an adapter for another base?)`);
    const [out, inDim] = w.shape as [number, number];
    const want: Record<string, readonly number[]> = { loraA: [layer.rank, inDim], loraB: [out, layer.rank], m: [out] };
    for (const name of ["loraA", "loraB", ...(layer.dora ? ["m"] : [])]) {
      const t = adapter.tensors[`${layer.path}.${name}`];
      if (!t) throw new ModelError(`${dir}: "${layer.path}" has no ${name}`);
      const shape = want[name]!;
      if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
        throw new ModelError(`${dir}: ${layer.path}.${name} is [${t.shape.join(", ")}], but the model's ${layer.path} (out ${out}, in ${inDim}) needs [${shape.join(", ")}] (an adapter for another base?)`);
      }
      const value = leaf(`${layer.path}.${name}`, shape, toFloat32(t.dtype, t.data));
      leaves.push(value);
      node[name] = value;
    }
  }
  const c = adapter.config;
  return { params: tree, options: { rank: first.rank, alpha: first.alpha, rsLora: c.use_rslora, dropout: c.lora_dropout }, adapter, leaves };
}

/** A copy of the tree's objects and arrays (leaves shared), so attaching leaves the base untouched. */
function structuredCloneTree(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(structuredCloneTree);
  if (v && typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, structuredCloneTree(x)]));
  return v;
}

function nodeAt(tree: unknown, path: string): Record<string, unknown> | undefined {
  let node = tree as Record<string, unknown> | undefined;
  for (const part of path.split(".")) node = node?.[part] as Record<string, unknown> | undefined;
  return node && typeof node === "object" ? node : undefined;
}
