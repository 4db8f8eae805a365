// GPT2LMHeadModel as transformers defines it (modeling_gpt2.py): learned positions, pre-LN
// blocks, one fused c_attn projection split into q, k, v, a gelu_new MLP, and the head tied to
// wte. Checkpoints store c_attn, c_proj and c_fc as Conv1D weights `[in, out]`; the tree holds
// every linear layer as `w: [out, in]` (the loader transposes), so adapters and DoRA see the
// same layout as for Llama, and `fan_in_fan_out` is a matter of the files alone.
import { fill, nn, normal, splitKey, type Dim, type FloatDType, type Key, type Tensor } from "@dorafuse/core";
import { ACTIVATION_NAMES, ACTIVATIONS, type ActivationName } from "./activations.js";
import { logitsAt, mergeHeads, overSequence, positionsOf, splitHeads, throughCache, type Attend } from "./attention.js";
import { ConfigReader } from "./config-json.js";
import type { BaseConfig, Family, Ids } from "./family.js";
import { embed, f32, initLinear, layerNorm, linear } from "./layers.js";
import { ModelError } from "../errors.js";

export interface Gpt2Config extends BaseConfig {
  readonly heads: number;
  /** n_inner (default 4·n_embd) */
  readonly hidden: number;
  readonly normEps: number;
  readonly activation: ActivationName;
  /** scale_attn_by_inverse_layer_idx: scores of layer l also divided by l + 1. */
  readonly scaleByLayer: boolean;
  readonly initStd: number;
}

type Lin<I extends Dim, O extends Dim, D extends FloatDType> = nn.LinearParams<I, O, D>;

export interface Gpt2BlockParams<E extends Dim = Dim, D extends FloatDType = FloatDType> {
  readonly ln_1: nn.LayerNormParams<E, D>;
  readonly attn: { readonly c_attn: Lin<E, Dim, D>; readonly c_proj: Lin<E, E, D> };
  readonly ln_2: nn.LayerNormParams<E, D>;
  readonly mlp: { readonly c_fc: Lin<E, Dim, D>; readonly c_proj: Lin<Dim, E, D> };
}

export interface Gpt2Params<V extends Dim = Dim, E extends Dim = Dim, D extends FloatDType = FloatDType> {
  readonly transformer: {
    readonly wte: nn.EmbeddingParams<V, E, D>;
    readonly wpe: nn.EmbeddingParams<Dim, E, D>;
    readonly h: readonly Gpt2BlockParams<E, D>[];
    readonly ln_f: nn.LayerNormParams<E, D>;
  };
}

type T = Tensor<number[], "f32">;
const t = (x: unknown): T => x as T;

function readConfig(json: Record<string, unknown>, file: string): Gpt2Config {
  const r = new ConfigReader(json, file);
  r.oneOf("model_type", gpt2.modelTypes, "gpt2");
  const dim = r.int("n_embd");
  const heads = r.int("n_head");
  r.divides("n_embd by n_head", dim, heads);
  if (json.add_cross_attention === true) throw new ModelError(`${file}: add_cross_attention is not supported (a decoder-only GPT-2 is)`);
  return {
    vocab: r.int("vocab_size"),
    dim,
    layers: r.int("n_layer"),
    heads,
    kvHeads: heads,
    headDim: dim / heads,
    hidden: json.n_inner == null ? 4 * dim : r.int("n_inner"),
    maxPositions: r.int("n_positions", 1024),
    normEps: r.num("layer_norm_epsilon", 1e-5),
    activation: r.oneOf("activation_function", ACTIVATION_NAMES, "gelu_new"),
    scaleByLayer: r.bool("scale_attn_by_inverse_layer_idx", false),
    tied: true,
    initStd: r.num("initializer_range", 0.02),
    ...(r.ids("bos_token_id").length ? { bos: r.ids("bos_token_id")[0]! } : {}),
    eos: r.ids("eos_token_id"),
  };
}

function writeConfig(c: Gpt2Config): Record<string, unknown> {
  return {
    architectures: ["GPT2LMHeadModel"],
    model_type: "gpt2",
    vocab_size: c.vocab,
    n_embd: c.dim,
    n_layer: c.layers,
    n_head: c.heads,
    n_inner: c.hidden,
    n_positions: c.maxPositions,
    n_ctx: c.maxPositions,
    layer_norm_epsilon: c.normEps,
    activation_function: c.activation,
    scale_attn_by_inverse_layer_idx: c.scaleByLayer,
    initializer_range: c.initStd,
    tie_word_embeddings: true,
    bos_token_id: c.bos ?? null,
    eos_token_id: c.eos.length === 1 ? c.eos[0] : c.eos,
    torch_dtype: "float32",
  };
}

function init(key: Key, c: Gpt2Config): Gpt2Params {
  const keys = splitKey(key, c.layers + 2);
  const lin = (k: Key, i: number, o: number) => initLinear(k, i, o, true, c.initStd);
  const ln = () => ({ gamma: fill([c.dim], 1), beta: fill([c.dim], 0) });
  const h = Array.from({ length: c.layers }, (_, l) => {
    const [a, p, f, q] = splitKey(keys[l + 2]!, 4);
    return { ln_1: ln(), attn: { c_attn: lin(a!, c.dim, 3 * c.dim), c_proj: lin(p!, c.dim, c.dim) }, ln_2: ln(), mlp: { c_fc: lin(f!, c.dim, c.hidden), c_proj: lin(q!, c.hidden, c.dim) } };
  });
  return {
    transformer: { wte: { table: normal(keys[0]!, [c.vocab, c.dim], { std: c.initStd }) }, wpe: { table: normal(keys[1]!, [c.maxPositions, c.dim], { std: 0.01 }) }, h, ln_f: ln() },
  } as never;
}

function decode(p: Gpt2Params, ids: Ids, positions: Tensor, c: Gpt2Config, run: nn.AdapterRun, attend: Attend): T {
  const keys = nn.keysFor(run, c.layers);
  const tr = p.transformer;
  let x = embed(tr.wte as never, ids, run).add(embed(tr.wpe as never, positions, run) as never) as T;
  tr.h.forEach((block, l) => {
    const [ka, kp, kf, kq] = keys[l] ? splitKey(keys[l]!, 4) : [];
    const qkv = linear(block.attn.c_attn, layerNorm(block.ln_1, x, c.normEps), run, ka);
    const part = (i: number) => splitHeads(qkv.slice([null, null, [i * c.dim, (i + 1) * c.dim]]), c.heads);
    x = x.add(linear(block.attn.c_proj, mergeHeads(attend(l, part(0), part(1), part(2))), run, kp) as never) as T;
    const m = ACTIVATIONS[c.activation](linear(block.mlp.c_fc, layerNorm(block.ln_2, x, c.normEps), run, kf));
    x = x.add(linear(block.mlp.c_proj, m, run, kq) as never) as T;
  });
  return layerNorm(tr.ln_f, x, c.normEps);
}

const scaleOf = (c: Gpt2Config, layer: number) => 1 / Math.sqrt(c.headDim) / (c.scaleByLayer ? layer + 1 : 1);
const head = (p: Gpt2Params, x: T, run: nn.AdapterRun): T => linear({ w: f32(p.transformer.wte.table) }, x, run, undefined);

export const gpt2: Family<Gpt2Config, Gpt2Params> = {
  modelTypes: ["gpt2"],
  readConfig,
  writeConfig,
  init,
  buffers: () => ({}),
  forward(p, _buffers, ids, c, run = {}) {
    return head(p, decode(p, ids, positionsOf(ids), c, run, overSequence((l) => scaleOf(c, l))), run);
  },
  step(p, _buffers, cache, ids, start, last, c, run = {}) {
    const next: { k: Tensor; v: Tensor }[] = [];
    const x = decode(p, ids, positionsOf(ids, start), c, run, throughCache(cache, start, (l) => scaleOf(c, l), next));
    return { logits: logitsAt(x, last, (h) => head(p, h, run)), cache: { layers: next } };
  },
  names: { conv1d: /\.(c_attn|c_proj|c_fc)$/, optionalPrefix: "transformer.", buffers: /\.attn\.(bias|masked_bias)$/ },
  adapterTargets: ["c_attn", "c_proj", "c_fc"],
};
