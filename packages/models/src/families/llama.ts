// LlamaForCausalLM as transformers defines it (modeling_llama.py), which also covers Mistral,
// SmolLM, TinyLlama and Qwen2 (q/k/v biases): RMSNorm, rotary embeddings (rotate_half),
// grouped-query attention, SwiGLU MLP, tied or separate lm_head. The parameter tree's paths
// are transformers' module names (`model.layers.0.self_attn.q_proj`), so adapters target
// them by PEFT's names and the checkpoint's tensor names follow from the paths.
import { fill, nn, normal, splitKey, type Dim, type FloatDType, type Key, type Tensor } from "@dorafuse/core";
import { ACTIVATION_NAMES, ACTIVATIONS, type ActivationName } from "./activations.js";
import { logitsAt, mergeHeads, overSequence, positionsOf, splitHeads, throughCache, type Attend } from "./attention.js";
import { ConfigReader } from "./config-json.js";
import type { BaseConfig, Family, Ids } from "./family.js";
import { embed, f32, initLinear, linear, rmsNorm } from "./layers.js";
import { applyRope, readRopeScaling, ropeTables, type RopeScaling } from "./rope.js";

export interface LlamaConfig extends BaseConfig {
  readonly modelType: string;
  /** intermediate_size */
  readonly hidden: number;
  readonly heads: number;
  readonly normEps: number;
  readonly ropeTheta: number;
  readonly ropeScaling?: RopeScaling;
  /** Biases on q, k and v (attention_bias; always for Qwen2). */
  readonly attentionBias: boolean;
  /** A bias on o_proj (attention_bias for Llama; never for Qwen2). */
  readonly outputBias: boolean;
  readonly mlpBias: boolean;
  readonly activation: ActivationName;
  readonly initStd: number;
}

type Lin<I extends Dim, O extends Dim, D extends FloatDType> = nn.LinearParams<I, O, D>;

export interface LlamaLayerParams<E extends Dim = Dim, D extends FloatDType = FloatDType> {
  readonly input_layernorm: nn.RmsNormParams<E, D>;
  readonly self_attn: { readonly q_proj: Lin<E, Dim, D>; readonly k_proj: Lin<E, Dim, D>; readonly v_proj: Lin<E, Dim, D>; readonly o_proj: Lin<Dim, E, D> };
  readonly post_attention_layernorm: nn.RmsNormParams<E, D>;
  readonly mlp: { readonly gate_proj: Lin<E, Dim, D>; readonly up_proj: Lin<E, Dim, D>; readonly down_proj: Lin<Dim, E, D> };
}

export interface LlamaParams<V extends Dim = Dim, E extends Dim = Dim, D extends FloatDType = FloatDType> {
  readonly model: {
    readonly embed_tokens: nn.EmbeddingParams<V, E, D>;
    readonly layers: readonly LlamaLayerParams<E, D>[];
    readonly norm: nn.RmsNormParams<E, D>;
  };
  /** Absent when the head is tied to embed_tokens. */
  readonly lm_head?: Lin<E, V, D>;
}

type T = Tensor<number[], "f32">;
const t = (x: unknown): T => x as T;

function readConfig(json: Record<string, unknown>, file: string): LlamaConfig {
  const r = new ConfigReader(json, file);
  const dim = r.int("hidden_size");
  const heads = r.int("num_attention_heads");
  const kvHeads = r.int("num_key_value_heads", heads);
  r.divides("num_attention_heads by num_key_value_heads", heads, kvHeads);
  const headDim = json.head_dim == null ? dim / heads : r.int("head_dim");
  if (json.head_dim == null) r.divides("hidden_size by num_attention_heads", dim, heads);
  r.divides("head_dim by 2 (rotary halves)", headDim, 2);
  const modelType = r.oneOf("model_type", llama.modelTypes, "llama");
  return {
    modelType,
    vocab: r.int("vocab_size"),
    dim,
    hidden: r.int("intermediate_size"),
    layers: r.int("num_hidden_layers"),
    heads,
    kvHeads,
    headDim,
    // Mistral's sliding window is not implemented: contexts stay within it
    maxPositions: Math.min(r.int("max_position_embeddings", 2048), typeof json.sliding_window === "number" && json.use_sliding_window !== false ? json.sliding_window : Infinity),
    normEps: r.num("rms_norm_eps", 1e-6),
    ropeTheta: r.num("rope_theta", 10000),
    ...(readRopeScaling(json.rope_scaling, file) ? { ropeScaling: readRopeScaling(json.rope_scaling, file)! } : {}),
    // Qwen2's q/k/v projections always have biases and its o_proj none (modeling_qwen2.py)
    attentionBias: modelType === "qwen2" || r.bool("attention_bias", false),
    outputBias: modelType !== "qwen2" && r.bool("attention_bias", false),
    mlpBias: r.bool("mlp_bias", false),
    activation: r.oneOf("hidden_act", ACTIVATION_NAMES, "silu"),
    tied: r.bool("tie_word_embeddings", false),
    initStd: r.num("initializer_range", 0.02),
    ...(r.ids("bos_token_id").length ? { bos: r.ids("bos_token_id")[0]! } : {}),
    eos: r.ids("eos_token_id"),
  };
}

function writeConfig(c: LlamaConfig): Record<string, unknown> {
  const scaling = c.ropeScaling?.type === "linear"
    ? { rope_type: "linear", factor: c.ropeScaling.factor }
    : c.ropeScaling?.type === "llama3"
      ? { rope_type: "llama3", factor: c.ropeScaling.factor, low_freq_factor: c.ropeScaling.lowFreqFactor, high_freq_factor: c.ropeScaling.highFreqFactor, original_max_position_embeddings: c.ropeScaling.originalMaxPositions }
      : null;
  return {
    architectures: ["LlamaForCausalLM"],
    model_type: c.modelType,
    vocab_size: c.vocab,
    hidden_size: c.dim,
    intermediate_size: c.hidden,
    num_hidden_layers: c.layers,
    num_attention_heads: c.heads,
    num_key_value_heads: c.kvHeads,
    head_dim: c.headDim,
    max_position_embeddings: c.maxPositions,
    rms_norm_eps: c.normEps,
    rope_theta: c.ropeTheta,
    rope_scaling: scaling,
    attention_bias: c.attentionBias && c.outputBias,
    mlp_bias: c.mlpBias,
    hidden_act: c.activation,
    tie_word_embeddings: c.tied,
    initializer_range: c.initStd,
    bos_token_id: c.bos ?? null,
    eos_token_id: c.eos.length === 1 ? c.eos[0] : c.eos,
    torch_dtype: "float32",
  };
}

function init(key: Key, c: LlamaConfig): LlamaParams {
  const keys = splitKey(key, c.layers + 2);
  const lin = (k: Key, i: number, o: number, bias: boolean) => initLinear(k, i, o, bias, c.initStd);
  const ones = () => ({ gamma: fill([c.dim], 1) });
  const layers = Array.from({ length: c.layers }, (_, l) => {
    const [q, k, v, o, g, u, d] = splitKey(keys[l + 2]!, 7);
    return {
      input_layernorm: ones(),
      self_attn: {
        q_proj: lin(q!, c.dim, c.heads * c.headDim, c.attentionBias),
        k_proj: lin(k!, c.dim, c.kvHeads * c.headDim, c.attentionBias),
        v_proj: lin(v!, c.dim, c.kvHeads * c.headDim, c.attentionBias),
        o_proj: lin(o!, c.heads * c.headDim, c.dim, c.outputBias),
      },
      post_attention_layernorm: ones(),
      mlp: { gate_proj: lin(g!, c.dim, c.hidden, c.mlpBias), up_proj: lin(u!, c.dim, c.hidden, c.mlpBias), down_proj: lin(d!, c.hidden, c.dim, c.mlpBias) },
    };
  });
  const model = { embed_tokens: { table: normal(keys[0]!, [c.vocab, c.dim], { std: c.initStd }) }, layers, norm: ones() };
  return (c.tied ? { model } : { model, lm_head: lin(keys[1]!, c.dim, c.vocab, false) }) as never;
}

/** The decoder up to the final norm: hidden states `[B, T, dim]` for ids at `positions [T]`. */
function decode(p: LlamaParams, buffers: Record<string, Tensor>, ids: Ids, positions: Tensor, c: LlamaConfig, run: nn.AdapterRun, attend: Attend): T {
  const rope = { cos: buffers.cos!, sin: buffers.sin! };
  const keys = nn.keysFor(run, c.layers);
  let x = embed(p.model.embed_tokens as never, ids, run);
  p.model.layers.forEach((layer, l) => {
    const [kq, kk, kv, ko, kg, ku, kd] = keys[l] ? splitKey(keys[l]!, 7) : [];
    const a = layer.self_attn;
    const h = rmsNorm(layer.input_layernorm, x, c.normEps);
    const q = applyRope(splitHeads(linear(a.q_proj, h, run, kq), c.heads), positions, rope);
    const k = applyRope(splitHeads(linear(a.k_proj, h, run, kk), c.kvHeads), positions, rope);
    const v = splitHeads(linear(a.v_proj, h, run, kv), c.kvHeads);
    x = x.add(linear(a.o_proj, mergeHeads(attend(l, q, k, v)), run, ko) as never) as T;
    const m = layer.mlp;
    const h2 = rmsNorm(layer.post_attention_layernorm, x, c.normEps);
    const gated = t(ACTIVATIONS[c.activation](linear(m.gate_proj, h2, run, kg))).mul(linear(m.up_proj, h2, run, ku) as never);
    x = x.add(linear(m.down_proj, gated, run, kd) as never) as T;
  });
  return rmsNorm(p.model.norm, x, c.normEps);
}

const scale = (c: LlamaConfig) => () => 1 / Math.sqrt(c.headDim);

/** lm_head, or the embedding table when tied. */
function head(p: LlamaParams, x: T, run: nn.AdapterRun): T {
  return linear(p.lm_head ?? { w: f32(p.model.embed_tokens.table) }, x, run, undefined);
}

export const llama: Family<LlamaConfig, LlamaParams> = {
  modelTypes: ["llama", "mistral", "qwen2"],
  readConfig,
  writeConfig,
  init,
  buffers: (c, positions) => ropeTables(c.headDim, positions, c.ropeTheta, c.ropeScaling),
  forward(p, buffers, ids, c, run = {}) {
    const x = decode(p, buffers, ids, positionsOf(ids), c, run, overSequence(scale(c)));
    return head(p, x, run);
  },
  step(p, buffers, cache, ids, start, last, c, run = {}) {
    const next: { k: Tensor; v: Tensor }[] = [];
    const x = decode(p, buffers, ids, positionsOf(ids, start), c, run, throughCache(cache, start, scale(c), next));
    return { logits: logitsAt(x, last, (h) => head(p, h, run)), cache: { layers: next } };
  },
  names: { conv1d: /(?!)/, buffers: /\.rotary_emb\.inv_freq$/ },
  adapterTargets: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
};
