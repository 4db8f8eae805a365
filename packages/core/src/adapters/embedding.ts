// LoRA and DoRA on an embedding table, as Hugging Face PEFT does them. PEFT keeps the table
// (vocab, dim) as nn.Embedding does and stores lora_embedding_A as (r, vocab) and
// lora_embedding_B as (dim, r); the update to the table is (B·A)ᵀ · s, i.e. row v of the
// table gains s · Aᵀ[v]·Bᵀ. Its DoRA treats the table as a weight with fan_in_fan_out: the
// direction is V = tableᵀ + s·B·A (dim, vocab), the norm is taken per embedding dimension over
// the vocabulary, so m is (dim,), and
//   y = g ⊙ (table[ids] + s · Aᵀ[ids]·Bᵀ),   g = m / ‖tableᵀ + s·B·A‖_row
// (PEFT writes it g ⊙ base + g ⊙ s·lora; we compose it as the linear layer does). PEFT
// initializes embedding adapters the other way round from linear ones — A zero, B standard
// normal — and applies no dropout to them; so do we (the `dropout` option is ignored here).
import type { Tensor } from "../tensor/tensor.js";
import type { Dim, Shape } from "../tensor/shape-types.js";
import type { FloatDType } from "../tensor/dtypes.js";
import { fill, resolveShape } from "../tensor/emit.js";
import { type Key, normal, splitKey } from "../ops/random.js";
import { embedding, type EmbeddingConfig, type EmbeddingParams } from "../nn/layers.js";
import { AdapterError, type AdapterOptions, adapterScale, checkOptions } from "./config.js";
import { type Wide, wide } from "./lora.js";
import { checkMagnitude, doraDelta, factoredNormSquared, guardedNorm, magnitudeScale } from "./dora.js";

export interface LoraEmbeddingParams<V extends Dim = Dim, E extends Dim = Dim, R extends Dim = Dim, D extends FloatDType = "f32"> extends EmbeddingParams<V, E, D> {
  /** A: (r, vocab), PEFT `lora_embedding_A`. */
  readonly loraA: Tensor<[R, V], D>;
  /** B: (dim, r), PEFT `lora_embedding_B`. */
  readonly loraB: Tensor<[E, R], D>;
}

export interface DoraEmbeddingParams<V extends Dim = Dim, E extends Dim = Dim, R extends Dim = Dim, D extends FloatDType = "f32"> extends LoraEmbeddingParams<V, E, R, D> {
  /** Magnitude m: (dim,), one per embedding dimension. */
  readonly m: Tensor<[E], D>;
}

type AnyLoraEmbedding = LoraEmbeddingParams<Dim, Dim, Dim, FloatDType>;

/** PEFT's embedding factors: A zero (r, vocab), B standard normal (dim, r). */
function initEmbeddingFactors(key: Key, vocab: number, dim: number, rank: number): { loraA: Wide; loraB: Wide } {
  return { loraA: wide(fill([rank, vocab], 0, "f32")), loraB: wide(normal(key, [dim, rank])) };
}

function tableDims(where: string, p: AnyLoraEmbedding, opts: AdapterOptions): [vocab: number, dim: number] {
  checkOptions(where, opts);
  const [vocab, dim] = p.table.shape as [number, number];
  const ok = (s: readonly number[], e: readonly number[]): boolean => s.length === e.length && s.every((d, i) => d === e[i]);
  if (!ok(p.loraA.shape, [opts.rank, vocab])) throw new AdapterError(`${where}: loraA must be [${opts.rank},${vocab}] (rank, vocab), found [${p.loraA.shape.join(",")}]`);
  if (!ok(p.loraB.shape, [dim, opts.rank])) throw new AdapterError(`${where}: loraB must be [${dim},${opts.rank}] (dim, rank), found [${p.loraB.shape.join(",")}]`);
  return [vocab, dim];
}

/** s · Aᵀ[ids]·Bᵀ: the low-rank part of the looked-up rows, `[...ids, dim]`. */
function loraRows(p: AnyLoraEmbedding, ids: Tensor<Shape, "i32">): Wide {
  return wide(p.loraA).mT().gather(ids as never, 0).matmul(wide(p.loraB).mT());
}

/** Magnitude per embedding dimension: the guarded norms of the table's columns. */
const columnNorms = (table: Wide): Wide => guardedNorm(table.square().sum(0));

/** g = m / ‖tableᵀ + s·B·A‖_row, factored: ‖tableᵀ‖²_row is a column sum, tableᵀ·Aᵀ = (A·table)ᵀ. */
function embeddingScale(p: DoraEmbeddingParams<Dim, Dim, Dim, FloatDType>, opts: AdapterOptions): Wide {
  const [t, a, b] = [wide(p.table), wide(p.loraA), wide(p.loraB)];
  const n2 = factoredNormSquared(t.square().sum(0), a.matmul(t).mT(), a, b, adapterScale(opts));
  return magnitudeScale(wide(p.m), guardedNorm(n2), opts);
}

export const loraEmbedding = {
  /** A new table (nn.embedding's init) with a fresh adapter on it. */
  init<const V extends Dim, const E extends Dim, const R extends number>(key: Key, cfg: EmbeddingConfig<V, E> & AdapterOptions<R>): LoraEmbeddingParams<V, E, R> {
    const [kt, ka] = splitKey(key, 2);
    return loraEmbedding.wrap(ka, embedding.init(kt, cfg), cfg) as never;
  },
  wrap<V extends Dim, E extends Dim, D extends FloatDType, const R extends number>(key: Key, base: EmbeddingParams<V, E, D>, opts: AdapterOptions<R>): LoraEmbeddingParams<V, E, R, D> {
    checkOptions("loraEmbedding.wrap", opts);
    const [vocab, dim] = resolveShape("loraEmbedding.wrap", base.table.shape) as [number, number];
    return { ...base, ...initEmbeddingFactors(key, vocab, dim, opts.rank) } as never;
  },
  /** table[ids] + s · Aᵀ[ids]·Bᵀ. */
  apply<V extends Dim, E extends Dim, R extends Dim, D extends FloatDType, I extends Shape>(
    p: LoraEmbeddingParams<V, E, R, D>,
    ids: Tensor<I, "i32">,
    opts: AdapterOptions,
  ): Tensor<[...I, E], D> {
    tableDims("loraEmbedding.apply", p as never, opts);
    const base = wide(embedding.apply(p, ids));
    return base.add(loraRows(p as never, ids).mul(adapterScale(opts))) as never;
  },
  /** `{ table: table + s·(B·A)ᵀ }`. */
  merge<V extends Dim, E extends Dim, R extends Dim, D extends FloatDType>(p: LoraEmbeddingParams<V, E, R, D>, opts: AdapterOptions): EmbeddingParams<V, E, D> {
    tableDims("loraEmbedding.merge", p as never, opts);
    const delta = wide(p.loraA).mT().matmul(wide(p.loraB).mT()).mul(adapterScale(opts));
    return { table: wide(p.table).add(delta) } as never;
  },
};

export const doraEmbedding = {
  /** A new table (nn.embedding's init) with a fresh DoRA adapter on it. */
  init<const V extends Dim, const E extends Dim, const R extends number>(key: Key, cfg: EmbeddingConfig<V, E> & AdapterOptions<R>): DoraEmbeddingParams<V, E, R> {
    const [kt, ka] = splitKey(key, 2);
    return doraEmbedding.wrap(ka, embedding.init(kt, cfg), cfg) as never;
  },
  /** A zero, B standard normal, m the (guarded) column norms: reproduces the table exactly. */
  wrap<V extends Dim, E extends Dim, D extends FloatDType, const R extends number>(key: Key, base: EmbeddingParams<V, E, D>, opts: AdapterOptions<R>): DoraEmbeddingParams<V, E, R, D> {
    checkOptions("doraEmbedding.wrap", opts);
    const [vocab, dim] = resolveShape("doraEmbedding.wrap", base.table.shape) as [number, number];
    return { ...base, ...initEmbeddingFactors(key, vocab, dim, opts.rank), m: columnNorms(wide(base.table)) } as never;
  },
  /** table[ids] + (g − 1) ⊙ table[ids] + g ⊙ s·Aᵀ[ids]·Bᵀ, g per embedding dimension. */
  apply<V extends Dim, E extends Dim, R extends Dim, D extends FloatDType, I extends Shape>(
    p: DoraEmbeddingParams<V, E, R, D>,
    ids: Tensor<I, "i32">,
    opts: AdapterOptions,
  ): Tensor<[...I, E], D> {
    const [, dim] = tableDims("doraEmbedding.apply", p as never, opts);
    checkMagnitude("doraEmbedding.apply", p.m, dim);
    const g = embeddingScale(p as never, opts);
    const base = wide(embedding.apply(p, ids));
    return base.add(doraDelta(g, base, loraRows(p as never, ids), adapterScale(opts))) as never;
  },
  /** `{ table: (table + s·(B·A)ᵀ) ⊙ g[None, :] }` (PEFT's merge for DoRA embeddings). */
  merge<V extends Dim, E extends Dim, R extends Dim, D extends FloatDType>(p: DoraEmbeddingParams<V, E, R, D>, opts: AdapterOptions): EmbeddingParams<V, E, D> {
    const [, dim] = tableDims("doraEmbedding.merge", p as never, opts);
    checkMagnitude("doraEmbedding.merge", p.m, dim);
    const delta = wide(p.loraA).mT().matmul(wide(p.loraB).mT()).mul(adapterScale(opts));
    return { table: wide(p.table).add(delta).mul(embeddingScale(p as never, opts)) } as never;
  },
};
