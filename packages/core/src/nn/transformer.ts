// The MLP, causal self-attention, a pre-norm transformer block and a small decoder-only
// language model, as init/apply pairs over plain parameter trees (see layers.ts). Given
// `adapters` (the options of the LoRA/DoRA adapters the tree carries, see adapters/), every
// linear layer and embedding runs through its adapter's factored path — with dropout drawn
// from `key`, split per layer — instead of ignoring the adapter keys.
import type { Tensor } from "../tensor/tensor.js";
import type { Dim } from "../tensor/shape-types.js";
import type { FloatDType } from "../tensor/dtypes.js";
import { type AnyTensor, emit } from "../tensor/emit.js";
import { type Key, splitKey } from "../ops/random.js";
import { gelu, relu, silu } from "../ops/activations.js";
import { multiHeadAttention } from "../ops/attention.js";
import { checkpoint } from "../grad/custom.js";
import { embedding, layerNorm, linear, type EmbeddingParams, type LayerNormParams, type LinearParams } from "./layers.js";
import type { AdapterOptions } from "../adapters/config.js";
import { applyEmbedding, applyLinear } from "../adapters/tree.js";

const T = (x: unknown): AnyTensor => x as AnyTensor;

/** How a model runs the adapters its parameters carry. */
export interface AdapterRun {
  /**
   * The adapters' options (rank, alpha, dropout, detachNorm …): layers with loraA/loraB (and
   * m) run as LoRA/DoRA on their factored path. Without it the adapter keys are ignored and
   * every layer is its base (use mergeAdapters to fold them in instead).
   */
  readonly adapters?: AdapterOptions;
  /** Key of the adapters' dropout (training); each layer gets its own split of it. */
  readonly key?: Key;
  /** No dropout (evaluation). */
  readonly deterministic?: boolean;
}

/**
 * x through a linear layer of any kind (plain, LoRA, DoRA), with the key meant for it. A base
 * stored in another float dtype than x (frozen f16 weights under f32 activations) is cast to
 * x's dtype as it is read, so the matmul stages f16 and accumulates in f32.
 */
export function project<T>(l: LinearParams<Dim, Dim, FloatDType>, x: T, run: AdapterRun, key?: Key): AnyTensor {
  const layer = asDType(l, T(x).dtype);
  if (!run.adapters) return linear.apply(layer as never, x as never) as AnyTensor;
  return applyLinear(layer as never, x as never, run.adapters, key ? { key } : { deterministic: run.deterministic ?? false }) as AnyTensor;
}

/** The layer with its base weight and bias in dtype `d` (the adapter's own leaves are always f32). */
function asDType(l: LinearParams<Dim, Dim, FloatDType>, d: string): LinearParams<Dim, Dim, FloatDType> {
  const cast = (v: unknown) => (T(v).dtype === d ? v : T(v).cast(d as FloatDType));
  if (T(l.w).dtype === d && (!l.b || T(l.b).dtype === d)) return l;
  return { ...l, w: cast(l.w), ...(l.b ? { b: cast(l.b) } : {}) } as never;
}

/** `n` keys for the sub-layers of a layer (undefined when no dropout is drawn). */
export function keysFor(run: AdapterRun, n: number): (Key | undefined)[] {
  return run.adapters && run.key ? splitKey(run.key, n) : new Array<undefined>(n).fill(undefined);
}

const ACTIVATIONS = { gelu, silu, relu } as const;
export type Activation = keyof typeof ACTIVATIONS;

export interface MlpConfig<E extends Dim = Dim, H extends Dim = Dim> {
  readonly dim: E;
  readonly hidden: H;
  readonly activation?: Activation;
}

export interface MlpParams<E extends Dim = Dim, H extends Dim = Dim, D extends FloatDType = "f32"> {
  readonly up: LinearParams<E, H, D>;
  readonly down: LinearParams<H, E, D>;
}

/** down(act(up(x))), GELU by default. */
export const mlp = {
  init<const E extends Dim, const H extends Dim>(key: Key, cfg: MlpConfig<E, H>): MlpParams<E, H> {
    const [ku, kd] = splitKey(key, 2);
    return { up: linear.init(ku, { inDim: cfg.dim, outDim: cfg.hidden }), down: linear.init(kd, { inDim: cfg.hidden, outDim: cfg.dim }) };
  },
  apply<B extends Dim, S extends Dim, E extends Dim, H extends Dim, D extends FloatDType>(
    p: MlpParams<E, H, D>,
    x: Tensor<[B, S, NoInfer<E>], D>,
    cfg: { readonly activation?: Activation } & AdapterRun = {},
  ): Tensor<[B, S, E], D> {
    const [ku, kd] = keysFor(cfg, 2);
    const h = project(p.up, x, cfg, ku) as unknown as Tensor<[B, S, H], D>;
    return project(p.down, ACTIVATIONS[cfg.activation ?? "gelu"](h), cfg, kd) as never;
  },
};

export interface AttentionConfig<E extends Dim = Dim> {
  readonly dim: E;
  readonly heads: number;
  /** Mask future positions (default true). */
  readonly causal?: boolean;
}

export interface SelfAttentionParams<E extends Dim = Dim, D extends FloatDType = "f32"> {
  readonly q: LinearParams<E, E, D>;
  readonly k: LinearParams<E, E, D>;
  readonly v: LinearParams<E, E, D>;
  readonly o: LinearParams<E, E, D>;
}

/** Multi-head self-attention with separate q, k, v, o projections (PEFT's q_proj … o_proj). */
export const selfAttention = {
  init<const E extends Dim>(key: Key, cfg: AttentionConfig<E>): SelfAttentionParams<E> {
    const [kq, kk, kv, ko] = splitKey(key, 4);
    const c = { inDim: cfg.dim, outDim: cfg.dim };
    return { q: linear.init(kq, c), k: linear.init(kk, c), v: linear.init(kv, c), o: linear.init(ko, c) };
  },
  apply<B extends Dim, S extends Dim, E extends Dim, D extends FloatDType>(
    p: SelfAttentionParams<E, D>,
    x: Tensor<[B, S, NoInfer<E>], D>,
    cfg: { readonly heads: number; readonly causal?: boolean } & AdapterRun,
  ): Tensor<[B, S, E], D> {
    const [kq, kk, kv, ko] = keysFor(cfg, 4);
    const proj = (l: LinearParams<E, E, D>, key: Key | undefined): Tensor<[B, S, E], D> => project(l as never, x, cfg, key) as never;
    const o = multiHeadAttention(proj(p.q, kq), proj(p.k, kk), proj(p.v, kv), cfg.heads, { causal: cfg.causal ?? true });
    return project(p.o as never, o, cfg, ko) as never;
  },
};

export interface BlockConfig<E extends Dim = Dim, H extends Dim = Dim> {
  readonly dim: E;
  readonly heads: number;
  readonly hidden: H;
  readonly causal?: boolean;
  readonly activation?: Activation;
}

export interface BlockParams<E extends Dim = Dim, H extends Dim = Dim, D extends FloatDType = "f32"> {
  readonly ln1: LayerNormParams<E, D>;
  readonly attn: SelfAttentionParams<E, D>;
  readonly ln2: LayerNormParams<E, D>;
  readonly mlp: MlpParams<E, H, D>;
}

/** Pre-norm transformer block: x + attn(ln1(x)), then x + mlp(ln2(x)). */
export const transformerBlock = {
  init<const E extends Dim, const H extends Dim>(key: Key, cfg: BlockConfig<E, H>): BlockParams<E, H> {
    const [ka, km] = splitKey(key, 2);
    return {
      ln1: layerNorm.init(null, { dim: cfg.dim }),
      attn: selfAttention.init(ka, cfg),
      ln2: layerNorm.init(null, { dim: cfg.dim }),
      mlp: mlp.init(km, cfg),
    };
  },
  apply<B extends Dim, S extends Dim, E extends Dim, H extends Dim, D extends FloatDType>(
    p: BlockParams<E, H, D>,
    x: Tensor<[B, S, NoInfer<E>], D>,
    cfg: { readonly heads: number; readonly causal?: boolean; readonly activation?: Activation } & AdapterRun,
  ): Tensor<[B, S, E], D> {
    const [ka, km] = keysFor(cfg, 2);
    const a = selfAttention.apply(p.attn, layerNorm.apply(p.ln1, x as never) as Tensor<[B, S, E], D>, { ...cfg, key: ka });
    const h = T(x).add(T(a) as never) as unknown as Tensor<[B, S, E], D>;
    const m = mlp.apply(p.mlp, layerNorm.apply(p.ln2, h as never) as Tensor<[B, S, E], D>, { ...cfg, key: km });
    return T(h).add(T(m) as never) as never;
  },
};

export interface LMConfig<V extends Dim = Dim, E extends Dim = Dim, H extends Dim = Dim, L extends Dim = Dim> {
  readonly vocab: V;
  readonly dim: E;
  readonly heads: number;
  readonly hidden: H;
  readonly layers: number;
  /** Longest sequence (size of the learned position table). */
  readonly maxSeq: L;
}

export interface LMParams<V extends Dim = Dim, E extends Dim = Dim, H extends Dim = Dim, L extends Dim = Dim> {
  readonly tokens: EmbeddingParams<V, E>;
  readonly positions: EmbeddingParams<L, E>;
  readonly blocks: readonly BlockParams<E, H>[];
  readonly lnf: LayerNormParams<E>;
  readonly head: LinearParams<E, V>;
}

/** A GPT-style decoder: token + position embeddings, N pre-norm blocks, final norm, LM head. */
export const transformerLM = {
  init<const V extends Dim, const E extends Dim, const H extends Dim, const L extends Dim>(key: Key, cfg: LMConfig<V, E, H, L>): LMParams<V, E, H, L> {
    const keys = splitKey(key, cfg.layers + 3);
    return {
      tokens: embedding.init(keys[0]!, { vocab: cfg.vocab, dim: cfg.dim }),
      positions: embedding.init(keys[1]!, { vocab: cfg.maxSeq, dim: cfg.dim }),
      blocks: Array.from({ length: cfg.layers }, (_, i) => transformerBlock.init(keys[3 + i]!, cfg)),
      lnf: layerNorm.init(null, { dim: cfg.dim }),
      head: linear.init(keys[2]!, { inDim: cfg.dim, outDim: cfg.vocab, bias: false }),
    };
  },
  /**
   * Logits `[B, S, vocab]` for token ids `[B, S]` (S ≤ maxSeq); `checkpoint` recomputes each
   * block in the backward; `adapters` (and `key`) run the adapters the tree carries.
   */
  apply<V extends Dim, E extends Dim, H extends Dim, L extends Dim, B extends Dim, S extends Dim>(
    p: LMParams<V, E, H, L>,
    ids: Tensor<[B, S], "i32">,
    cfg: { readonly heads: number; readonly activation?: Activation; readonly checkpoint?: boolean } & AdapterRun,
  ): Tensor<[B, S, V], "f32"> {
    const seq = T(ids).shape[1]!;
    const pos = emit("iota", [], { shape: [seq], axis: 0, dtype: "i32" });
    const look = (t: EmbeddingParams<Dim, E>, i: AnyTensor): AnyTensor => T(cfg.adapters ? applyEmbedding(t as never, i as never, cfg.adapters) : embedding.apply(t, i as never));
    let x = look(p.tokens, T(ids)).add(look(p.positions, pos) as never) as unknown as Tensor<[B, S, E], "f32">;
    const keys = keysFor(cfg, p.blocks.length + 1);
    const block = (b: BlockParams<E, H>, h: Tensor<[B, S, E], "f32">, key?: Key) => transformerBlock.apply(b, h, { ...cfg, key });
    const step = cfg.checkpoint ? checkpoint(block) : block;
    p.blocks.forEach((b, i) => (x = keys[i] ? step(b, x, keys[i]) : step(b, x)));
    return project(p.head as never, layerNorm.apply(p.lnf, x as never), cfg, keys[p.blocks.length]) as never;
  },
};
