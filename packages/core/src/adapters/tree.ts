// Adapters on chosen layers of an existing parameter tree, the way PEFT's `target_modules`
// picks modules by name. Layers are found by their shape in the tree: an object with a
// rank-2 `w` is a linear layer (nn.linear), one with a rank-2 `table` an embedding. Each has
// a dotted path as PEFT names modules (`blocks.0.attn.q`). An adapted layer keeps its base
// tensors under the same keys and gains `loraA`, `loraB` (and `m` for DoRA), so
//   - `adapterMask(tree)` is the trainable mask (valueAndGrad's `trainable`, the optimizers'
//     `mask`): the adapter leaves train, everything else is frozen;
//   - `applyLinear` / `applyEmbedding` run any of the three kinds of layer;
//   - `mergeAdapters(tree, opts)` turns every adapted layer back into a plain one, so models
//     written against nn's layers (nn.transformerLM …) run adapted trees unchanged.
import type { Tensor } from "../tensor/tensor.js";
import type { Dim, Shape } from "../tensor/shape-types.js";
import type { FloatDType } from "../tensor/dtypes.js";
import { Tensor as TensorClass } from "../tensor/tensor.js";
import { type Key, splitKey } from "../ops/random.js";
import type { Mask } from "../grad/grad.js";
import { embedding, linear, type EmbeddingParams, type LinearParams } from "../nn/layers.js";
import { AdapterError, type AdapterOptions, type ApplyOptions } from "./config.js";
import { loraLinear, mergeLora, type LoraParams } from "./lora.js";
import { doraLinear, mergeDora, type DoraParams } from "./dora.js";
import { doraEmbedding, loraEmbedding, type DoraEmbeddingParams, type LoraEmbeddingParams } from "./embedding.js";

/** PEFT's `target_modules`: a name matched as a dotted-path suffix, a list of them, or a RegExp. */
export type Targets = string | readonly string[] | RegExp;

export interface AdaptConfig<R extends number = number> extends AdapterOptions<R> {
  readonly kind: "lora" | "dora";
  /**
   * Which layers to adapt. A string matches a layer whose path equals it or ends in
   * `.name` (PEFT's rule), and must match at least one layer. A RegExp is tested against the
   * path of every linear and embedding layer (anchor it to match whole paths, as PEFT's
   * fullmatch does).
   */
  readonly targets: Targets;
}

export interface Adapted<P> {
  /** The tree with the targeted layers adapted; everything else is the same objects. */
  readonly params: P;
  /** The trainable mask: the adapter leaves (`adapterMask(params)`). */
  readonly trainable: Mask;
  /** Paths of the adapted layers, in tree order. */
  readonly paths: readonly string[];
}

type Node = Record<string, unknown>;
type LayerKind = "linear" | "embedding";

const isNode = (v: unknown): v is Node => {
  if (typeof v !== "object" || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
};
const isMatrix = (v: unknown): boolean => {
  const shape = (v as { shape?: unknown } | null)?.shape;
  return typeof v === "object" && v !== null && Array.isArray(shape) && shape.length === 2;
};

/** "linear" for `{ w: [out, in], … }`, "embedding" for `{ table: [vocab, dim], … }`. */
export function layerKind(v: unknown): LayerKind | undefined {
  if (!isNode(v)) return undefined;
  if (isMatrix(v.w)) return "linear";
  if (isMatrix(v.table)) return "embedding";
  return undefined;
}

/** Whether a layer carries an adapter, and which. */
export function adapterKind(v: unknown): "lora" | "dora" | undefined {
  if (!isNode(v) || !("loraA" in v && "loraB" in v)) return undefined;
  return "m" in v ? "dora" : "lora";
}

/** Each node of the tree with its dotted path, children in sorted-key order (as flatten). */
function walk(tree: unknown, visit: (v: unknown, path: string) => "stop" | void, path = ""): void {
  if (visit(tree, path) === "stop") return;
  const join = (k: string | number): string => (path ? `${path}.${k}` : `${k}`);
  if (Array.isArray(tree)) tree.forEach((v, i) => walk(v, visit, join(i)));
  else if (isNode(tree)) for (const k of Object.keys(tree).sort()) walk(tree[k], visit, join(k));
}

/** A copy of `tree` with the node at each path in `replace` swapped (untouched parts shared). */
function rebuild(tree: unknown, replace: ReadonlyMap<string, unknown>, path = ""): unknown {
  if (replace.has(path)) return replace.get(path);
  const join = (k: string | number): string => (path ? `${path}.${k}` : `${k}`);
  if (Array.isArray(tree)) {
    const out = tree.map((v, i) => rebuild(v, replace, join(i)));
    return out.some((v, i) => v !== tree[i]) ? out : tree;
  }
  if (isNode(tree)) {
    let changed = false;
    const out: Node = {};
    for (const k of Object.keys(tree)) {
      out[k] = rebuild(tree[k], replace, join(k));
      changed ||= out[k] !== tree[k];
    }
    return changed ? out : tree;
  }
  return tree;
}

/** Paths of the linear and embedding layers that `targets` selects, in tree order. */
export function findTargets(tree: unknown, targets: Targets): string[] {
  const layers: string[] = [];
  const all: string[] = [];
  walk(tree, (v, path) => {
    all.push(path);
    // a layer's own leaves (w, b, loraA …) are not targets: stop at the layer
    if (layerKind(v)) {
      layers.push(path);
      return "stop";
    }
  });
  if (targets instanceof RegExp) {
    const hit = layers.filter((p) => targets.test(p));
    if (hit.length === 0) throw new AdapterError(`adapt: the target ${targets} matches no layer; layers: ${listSome(layers)}`);
    return hit;
  }
  const names = typeof targets === "string" ? [targets] : targets;
  if (names.length === 0) throw new AdapterError("adapt: targets is empty; name at least one layer");
  const suffix = (path: string, name: string): boolean => path === name || path.endsWith(`.${name}`);
  for (const name of names) {
    const bad = all.find((p) => suffix(p, name) && !layers.includes(p));
    if (bad !== undefined) throw new AdapterError(`adapt: target "${name}" matches ${bad || "the root"}, which is not a linear ({ w }) or embedding ({ table }) layer`);
    if (!layers.some((p) => suffix(p, name))) throw new AdapterError(`adapt: target "${name}" matches no layer; layers: ${listSome(layers)}`);
  }
  return layers.filter((p) => names.some((n) => suffix(p, n)));
}

const listSome = (xs: readonly string[]): string => (xs.length === 0 ? "none" : xs.length > 12 ? `${xs.slice(0, 12).join(", ")}, … (${xs.length})` : xs.join(", "));

/**
 * Adapts the targeted layers of `params` (a tree of traced tensors: call it inside a trace,
 * e.g. `evaluate((k, p) => adapt(k, p, cfg).params, [key, params])`). Each layer gets its own
 * key split from `key`, in path order.
 */
export function adapt<P, const R extends number>(key: Key, params: P, cfg: AdaptConfig<R>): Adapted<P> {
  if (cfg.kind !== "lora" && cfg.kind !== "dora") throw new AdapterError(`adapt: kind must be "lora" or "dora", found ${JSON.stringify(cfg.kind)}`);
  const paths = findTargets(params, cfg.targets);
  const nodes = new Map<string, unknown>();
  walk(params, (v, path) => void (paths.includes(path) && nodes.set(path, v)));
  for (const path of paths) {
    const layer = nodes.get(path) as Node;
    if (adapterKind(layer)) throw new AdapterError(`adapt: ${path} already has a ${adapterKind(layer)} adapter`);
    const base = layerKind(layer) === "linear" ? layer.w : layer.table;
    if (!(base instanceof TensorClass)) throw new AdapterError(`adapt: ${path} holds host data, not traced tensors; call adapt inside a trace (evaluate((k, p) => adapt(k, p, cfg).params, [key, params]))`);
  }
  const keys = splitKey(key, paths.length);
  const replace = new Map(paths.map((path, i) => [path, wrapLayer(keys[i]!, nodes.get(path) as Node, cfg)]));
  const out = rebuild(params, replace) as P;
  return { params: out, trainable: adapterMask(out), paths };
}

function wrapLayer(key: Key, layer: Node, cfg: AdaptConfig): unknown {
  if (layerKind(layer) === "linear") {
    const base = layer as unknown as LinearParams;
    return cfg.kind === "dora" ? doraLinear.wrap(key, base, cfg) : loraLinear.wrap(key, base, cfg);
  }
  const base = layer as unknown as EmbeddingParams;
  return cfg.kind === "dora" ? doraEmbedding.wrap(key, base, cfg) : loraEmbedding.wrap(key, base, cfg);
}

/** The mask that trains exactly the adapter leaves (loraA, loraB, m) of a tree; works on any tree. */
export function adapterMask(tree: unknown): Mask {
  const kind = adapterKind(tree);
  if (kind) return kind === "dora" ? { loraA: true, loraB: true, m: true } : { loraA: true, loraB: true };
  if (Array.isArray(tree)) {
    const items = tree.map(adapterMask);
    return items.some((m) => m !== false) ? items : false;
  }
  if (isNode(tree)) {
    const out: Record<string, Mask> = {};
    for (const k of Object.keys(tree)) {
      const m = adapterMask(tree[k]);
      if (m !== false) out[k] = m;
    }
    return Object.keys(out).length > 0 ? out : false;
  }
  return false;
}

/** A linear layer of any kind — plain, LoRA or DoRA — applied to x (dispatch on its keys). */
export function applyLinear<I extends Dim, O extends Dim, D extends FloatDType, S extends Shape>(
  p: LinearParams<I, O, D> | LoraParams<I, O, Dim, D> | DoraParams<I, O, Dim, D>,
  x: Tensor<S, D>,
  opts: AdapterOptions,
  run: ApplyOptions = {},
): Tensor<Shape, D> {
  const kind = adapterKind(p);
  if (kind === "dora") return doraLinear.apply(p as never, x as never, opts, run) as never;
  if (kind === "lora") return loraLinear.apply(p as never, x as never, opts, run) as never;
  return linear.apply(p as never, x as never) as never;
}

/** An embedding of any kind — plain, LoRA or DoRA — looked up at `ids`. */
export function applyEmbedding<V extends Dim, E extends Dim, D extends FloatDType, I extends Shape>(
  p: EmbeddingParams<V, E, D> | LoraEmbeddingParams<V, E, Dim, D> | DoraEmbeddingParams<V, E, Dim, D>,
  ids: Tensor<I, "i32">,
  opts: AdapterOptions,
): Tensor<[...I, E], D> {
  const kind = adapterKind(p);
  if (kind === "dora") return doraEmbedding.apply(p as never, ids, opts) as never;
  if (kind === "lora") return loraEmbedding.apply(p as never, ids, opts) as never;
  return embedding.apply(p as EmbeddingParams<V, E, D>, ids);
}

/**
 * Every adapted layer of the tree folded into a plain one (W' = W + s·B·A for LoRA,
 * g ⊙ (W + s·B·A) for DoRA), the rest unchanged. For inference and export, and to run an
 * adapted tree through models written with nn's layers: it is differentiable (gradients
 * reach A, B and m; `detachNorm` holds), though it builds each W' (out × in) and applies no
 * dropout — applyLinear is the factored, dropout-aware path.
 */
export function mergeAdapters<P>(tree: P, opts: AdapterOptions): P {
  const replace = new Map<string, unknown>();
  walk(tree, (v, path) => {
    const kind = adapterKind(v);
    if (!kind) return;
    if (layerKind(v) === "linear") replace.set(path, kind === "dora" ? mergeDora(v as never, opts) : mergeLora(v as never, opts));
    else replace.set(path, kind === "dora" ? doraEmbedding.merge(v as never, opts) : loraEmbedding.merge(v as never, opts));
    return "stop";
  });
  return rebuild(tree, replace) as P;
}
