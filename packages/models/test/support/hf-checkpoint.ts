// Tiny random Hugging Face model folders for the models tests, in transformers' exact on-disk
// layouts: config.json as save_pretrained writes it, state_dict names and shapes (Conv1D's
// [in, out] included), sharded files with their index, and the buffers older files carry.
// Values are rounded to the file dtype when drawn, so the file and the float64 reference
// (hf-reference.ts) hold the very same numbers.

import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Rng } from "../../../core/test/support/random.js";
import { f16ToF32, f32ToF16, writeSafetensors, type HostTensor } from "@dorafuse/runtime";

/** A tensor as a test holds it: float64 values (row-major), its torch shape. */
export interface Weight {
  shape: number[];
  data: Float64Array;
}
/** Keyed by transformers' state_dict names ("transformer." prefix for GPT-2). */
export type Weights = Map<string, Weight>;
export type FileDType = "F32" | "F16" | "BF16";

// ---------------------------------------------------------------- rounding

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** floor(log2 a) for a > 0, exactly (Math.log2 may be off by one next to powers of two). */
function exponentOf(a: number): number {
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  return e;
}

/**
 * x rounded straight from float64 to nearest-even with `mantissa` stored bits, subnormal below
 * 2^minExp, ±Infinity from 2^(maxExp+1). Going through float32 first would round twice.
 */
function roundToFormat(x: number, mantissa: number, minExp: number, maxExp: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const a = Math.abs(x);
  const ulp = 2 ** (Math.max(exponentOf(a), minExp) - mantissa);
  const q = a / ulp; // exact: a power-of-two scaling
  const whole = Math.floor(q);
  const rest = q - whole; // exact: q < 2^(mantissa+1)
  const r = rest > 0.5 || (rest === 0.5 && whole % 2 === 1) ? whole + 1 : whole;
  const y = r * ulp;
  if (y >= 2 ** (maxExp + 1)) return x < 0 ? -Infinity : Infinity;
  return x < 0 ? -y : y;
}

/** The nearest value of `dtype` (round to nearest, ties to even), as a number. */
export function roundTo(dtype: FileDType, x: number): number {
  if (dtype === "F32") return Math.fround(x);
  if (dtype === "F16") return roundToFormat(x, 10, -14, 15);
  return roundToFormat(x, 7, -126, 127);
}

/** bfloat16 bits of x, rounded to nearest even straight from float64; NaN → 0x7fc0. */
export function bf16Bits(x: number): number {
  if (Number.isNaN(x)) return 0x7fc0;
  f32[0] = roundTo("BF16", x); // exact: every bfloat16 is a float32
  return u32[0]! >>> 16;
}

export function bf16Value(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0]!;
}

/** Weights rounded to `dtype` (for writing weights drawn for one dtype in another). */
export function roundWeights(weights: Weights, dtype: FileDType): Weights {
  return new Map([...weights].map(([name, w]) => [name, { shape: [...w.shape], data: w.data.map((v) => roundTo(dtype, v)) }]));
}

/** The file tensor of a weight; throws when a value is not already a `dtype` value (the reference would differ from the file). */
export function encodeWeight(name: string, w: Weight, dtype: FileDType): HostTensor {
  w.data.forEach((v, i) => {
    if (roundTo(dtype, v) !== v && !Number.isNaN(v)) throw new Error(`${name}[${i}] = ${v} is not a ${dtype} value: round the weights first (roundWeights)`);
  });
  const shape = [...w.shape];
  if (dtype === "F32") return { dtype, shape, data: Float32Array.from(w.data) };
  if (dtype === "F16") return { dtype, shape, data: f32ToF16(w.data) };
  return { dtype, shape, data: Uint16Array.from(w.data, bf16Bits) };
}

/** A file tensor's values as float64 (F32, F16, BF16, F64, U8, BOOL). */
export function decodeTensor(t: HostTensor): Weight {
  const shape = [...t.shape];
  if (t.dtype === "F16") return { shape, data: Float64Array.from(f16ToF32(t.data as Uint16Array)) };
  if (t.dtype === "BF16") return { shape, data: Float64Array.from(t.data as Uint16Array, bf16Value) };
  if (t.dtype === "F32" || t.dtype === "F64" || t.dtype === "U8" || t.dtype === "BOOL") return { shape, data: Float64Array.from(t.data as ArrayLike<number>) };
  throw new Error(`decodeTensor: dtype ${t.dtype} is not one these tests write`);
}

// ---------------------------------------------------------------- config.json

/** What save_pretrained stamps into config.json; nothing here reads it. */
const TRANSFORMERS_VERSION = "4.46.3";
const TORCH_DTYPE: Record<FileDType, string> = { F32: "float32", F16: "float16", BF16: "bfloat16" };

/** rope_scaling as configs write it ("type" is the older spelling of "rope_type"). */
export interface RopeScaling {
  rope_type?: string;
  type?: string;
  factor?: number;
  low_freq_factor?: number;
  high_freq_factor?: number;
  original_max_position_embeddings?: number;
}

export interface LlamaConfigFields {
  architectures: string[];
  model_type: string;
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim: number;
  max_position_embeddings: number;
  rms_norm_eps: number;
  rope_theta: number;
  rope_scaling: RopeScaling | null;
  tie_word_embeddings: boolean;
  attention_bias: boolean;
  mlp_bias: boolean;
  hidden_act: string;
  bos_token_id: number | null;
  eos_token_id: number | number[] | null;
  torch_dtype: string;
}

/** LlamaConfig's config.json: tiny, grouped-query (4 heads, 2 kv heads); head_dim only when given, as older files do. */
export function llamaConfig(over: Partial<LlamaConfigFields> = {}): Record<string, unknown> {
  return {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    vocab_size: 97,
    hidden_size: 32,
    intermediate_size: 56,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: 64,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    rope_scaling: null,
    tie_word_embeddings: false,
    attention_bias: false,
    attention_dropout: 0,
    mlp_bias: false,
    hidden_act: "silu",
    initializer_range: 0.02,
    pretraining_tp: 1,
    use_cache: true,
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: "float32",
    transformers_version: TRANSFORMERS_VERSION,
    ...over,
  };
}

export interface Qwen2ConfigFields extends Omit<LlamaConfigFields, "attention_bias" | "mlp_bias"> {
  use_sliding_window: boolean;
  sliding_window: number | null;
  max_window_layers: number;
}

/** Qwen2Config's config.json: Llama's fields less attention_bias/mlp_bias (Qwen2 always biases q, k, v and never o_proj). */
export function qwen2Config(over: Partial<Qwen2ConfigFields> = {}): Record<string, unknown> {
  const { attention_bias: _a, mlp_bias: _m, pretraining_tp: _p, ...llama } = llamaConfig();
  return { ...llama, architectures: ["Qwen2ForCausalLM"], model_type: "qwen2", use_sliding_window: false, sliding_window: null, max_window_layers: 2, ...over };
}

export interface Gpt2ConfigFields {
  architectures: string[];
  vocab_size: number;
  n_embd: number;
  n_layer: number;
  n_head: number;
  n_inner: number | null;
  n_positions: number;
  layer_norm_epsilon: number;
  activation_function: string;
  scale_attn_weights: boolean;
  scale_attn_by_inverse_layer_idx: boolean;
  tie_word_embeddings: boolean;
  bos_token_id: number;
  eos_token_id: number;
  torch_dtype: string;
}

/**
 * GPT2Config's config.json. tie_word_embeddings is absent unless overridden: save_pretrained
 * leaves out values equal to PretrainedConfig's defaults (true), and so do the hub's files.
 * bos = eos = the last id, as <|endoftext|> is in GPT-2's vocabulary.
 */
export function gpt2Config(over: Partial<Gpt2ConfigFields> = {}): Record<string, unknown> {
  const last = (over.vocab_size ?? 97) - 1;
  return {
    activation_function: "gelu_new",
    architectures: ["GPT2LMHeadModel"],
    attn_pdrop: 0.1,
    bos_token_id: last,
    embd_pdrop: 0.1,
    eos_token_id: last,
    initializer_range: 0.02,
    layer_norm_epsilon: 1e-5,
    model_type: "gpt2",
    n_embd: 32,
    n_head: 4,
    n_inner: null,
    n_layer: 2,
    n_positions: 64,
    reorder_and_upcast_attn: false,
    resid_pdrop: 0.1,
    scale_attn_by_inverse_layer_idx: false,
    scale_attn_weights: true,
    summary_activation: null,
    summary_first_dropout: 0.1,
    summary_proj_to_labels: true,
    summary_type: "cls_index",
    summary_use_proj: true,
    torch_dtype: "float32",
    transformers_version: TRANSFORMERS_VERSION,
    use_cache: true,
    vocab_size: 97,
    ...over,
  };
}

function field<T>(config: Record<string, unknown>, key: string, fallback?: T): T {
  const value = config[key] ?? fallback;
  if (value === undefined) throw new Error(`config.json has no "${key}"`);
  return value as T;
}

/** The Llama-family shapes both the weights and the buffers need. */
function llamaDims(config: Record<string, unknown>) {
  const hidden = field<number>(config, "hidden_size");
  const heads = field<number>(config, "num_attention_heads");
  const modelType = field<string>(config, "model_type");
  const attentionBias = field<boolean>(config, "attention_bias", false);
  return {
    vocab: field<number>(config, "vocab_size"),
    hidden,
    inter: field<number>(config, "intermediate_size"),
    layers: field<number>(config, "num_hidden_layers"),
    heads,
    kvHeads: field<number>(config, "num_key_value_heads", heads),
    headDim: field<number>(config, "head_dim", hidden / heads),
    // LlamaAttention: bias=config.attention_bias on all four projections; Qwen2Attention: q, k, v only.
    qkvBias: modelType === "qwen2" || attentionBias,
    oBias: modelType !== "qwen2" && attentionBias,
    mlpBias: field<boolean>(config, "mlp_bias", false),
    tied: field<boolean>(config, "tie_word_embeddings", false),
    theta: field<number>(config, "rope_theta", 10000),
  };
}

// ---------------------------------------------------------------- random weights

/** Adds tensors in state_dict order; the spreads keep logits of a tiny model well apart (std ≈ 1–3). */
function drawer(seed: number, dtype: FileDType) {
  const weights: Weights = new Map();
  const rng = new Rng(seed);
  const add = (name: string, shape: number[], value: () => number) => {
    const count = shape.reduce((a, b) => a * b, 1);
    weights.set(name, { shape, data: Float64Array.from({ length: count }, () => roundTo(dtype, value())) });
  };
  return {
    weights,
    normal: (name: string, shape: number[], std: number) => add(name, shape, () => std * rng.normal()),
    matrix: (name: string, shape: number[]) => add(name, shape, () => 0.2 * rng.normal()),
    bias: (name: string, n: number) => add(name, [n], () => 0.1 * rng.normal()),
    scale: (name: string, n: number) => add(name, [n], () => 0.8 + 0.4 * rng.next()),
  };
}

/** LlamaForCausalLM's state_dict (also Qwen2's and Mistral's): nn.Linear weights are [out, in]. */
export function randomLlamaWeights(config: Record<string, unknown>, opts: { seed: number; dtype: FileDType }): Weights {
  const d = llamaDims(config);
  const w = drawer(opts.seed, opts.dtype);
  w.normal("model.embed_tokens.weight", [d.vocab, d.hidden], 0.5);
  for (let i = 0; i < d.layers; i++) {
    const p = `model.layers.${i}`;
    const projections: [string, number, number, boolean][] = [
      ["q_proj", d.heads * d.headDim, d.hidden, d.qkvBias],
      ["k_proj", d.kvHeads * d.headDim, d.hidden, d.qkvBias],
      ["v_proj", d.kvHeads * d.headDim, d.hidden, d.qkvBias],
      ["o_proj", d.hidden, d.heads * d.headDim, d.oBias],
    ];
    for (const [name, out, inp, bias] of projections) {
      w.matrix(`${p}.self_attn.${name}.weight`, [out, inp]);
      if (bias) w.bias(`${p}.self_attn.${name}.bias`, out);
    }
    const mlp: [string, number, number][] = [
      ["gate_proj", d.inter, d.hidden],
      ["up_proj", d.inter, d.hidden],
      ["down_proj", d.hidden, d.inter],
    ];
    for (const [name, out, inp] of mlp) {
      w.matrix(`${p}.mlp.${name}.weight`, [out, inp]);
      if (d.mlpBias) w.bias(`${p}.mlp.${name}.bias`, out);
    }
    w.scale(`${p}.input_layernorm.weight`, d.hidden);
    w.scale(`${p}.post_attention_layernorm.weight`, d.hidden);
  }
  w.scale("model.norm.weight", d.hidden);
  if (!d.tied) w.matrix("lm_head.weight", [d.vocab, d.hidden]);
  return w.weights;
}

/** GPT2LMHeadModel's state_dict: Conv1D weights are [in, out]; no lm_head.weight when tied (save_pretrained drops it). */
export function randomGpt2Weights(config: Record<string, unknown>, opts: { seed: number; dtype: FileDType }): Weights {
  const e = field<number>(config, "n_embd");
  const inner = field<number | null>(config, "n_inner", null) ?? 4 * e;
  const vocab = field<number>(config, "vocab_size");
  const w = drawer(opts.seed, opts.dtype);
  w.normal("transformer.wte.weight", [vocab, e], 0.2);
  w.normal("transformer.wpe.weight", [field<number>(config, "n_positions"), e], 0.1);
  for (let i = 0; i < field<number>(config, "n_layer"); i++) {
    const p = `transformer.h.${i}`;
    const conv1d = (name: string, inp: number, out: number) => {
      w.matrix(`${p}.${name}.weight`, [inp, out]);
      w.bias(`${p}.${name}.bias`, out);
    };
    w.scale(`${p}.ln_1.weight`, e);
    w.bias(`${p}.ln_1.bias`, e);
    conv1d("attn.c_attn", e, 3 * e);
    conv1d("attn.c_proj", e, e);
    w.scale(`${p}.ln_2.weight`, e);
    w.bias(`${p}.ln_2.bias`, e);
    conv1d("mlp.c_fc", e, inner);
    conv1d("mlp.c_proj", inner, e);
  }
  w.scale("transformer.ln_f.weight", e);
  w.bias("transformer.ln_f.bias", e);
  if (!field<boolean>(config, "tie_word_embeddings", true)) w.matrix("lm_head.weight", [vocab, e]);
  return w.weights;
}

// ---------------------------------------------------------------- the folder

export interface HfFolderOptions {
  dtype: FileDType;
  /** n > 1: model-0000k-of-0000n.safetensors plus model.safetensors.index.json; else one model.safetensors (as save_pretrained). */
  shards?: number;
  /** false drops GPT-2's outer "transformer." from every name, as the hub's GPT-2 files have it. */
  prefix?: boolean;
  /** Adds the non-parameter buffers older checkpoints carry (see bufferTensors). */
  buffers?: boolean;
  /** GPT-2's attn.bias mask dtype: the file dtype by default (float, as the hub's gpt2 file: F32); U8 or BOOL as transformers 3–4.30 saved it. */
  maskDType?: FileDType | "U8" | "BOOL";
}

export const shardFileName = (k: number, n: number): string => `model-${String(k).padStart(5, "0")}-of-${String(n).padStart(5, "0")}.safetensors`;

/**
 * Buffers that files written before transformers made them non-persistent carry, keyed by the
 * state_dict name they precede. GPT-2: h.{i}.attn.bias, the causal mask tril(ones) of shape
 * [1, 1, n_positions, n_positions], and h.{i}.attn.masked_bias, the scalar −1e4. Llama:
 * model.layers.{i}.self_attn.rotary_emb.inv_freq, the unscaled 1/θ^(2j/d) of shape [d/2].
 */
function bufferTensors(config: Record<string, unknown>, opts: HfFolderOptions): Map<string, [string, HostTensor][]> {
  const before = new Map<string, [string, HostTensor][]>();
  const float = (name: string, shape: number[], values: number[]): [string, HostTensor] => [name, encodeWeight(name, { shape, data: Float64Array.from(values, (v) => roundTo(opts.dtype, v)) }, opts.dtype)];
  if (config.model_type === "gpt2") {
    const n = field<number>(config, "n_positions");
    const tril = Array.from({ length: n * n }, (_, k) => (k % n <= Math.floor(k / n) ? 1 : 0));
    const maskDType = opts.maskDType ?? opts.dtype;
    for (let i = 0; i < field<number>(config, "n_layer"); i++) {
      const name = `transformer.h.${i}.attn.bias`;
      const mask: [string, HostTensor] =
        maskDType === "U8" || maskDType === "BOOL" ? [name, { dtype: maskDType, shape: [1, 1, n, n], data: Uint8Array.from(tril) }] : [name, encodeWeight(name, { shape: [1, 1, n, n], data: Float64Array.from(tril) }, maskDType)];
      // GPT2Attention registers both before its c_attn child, so they precede it in the state_dict.
      before.set(`transformer.h.${i}.attn.c_attn.weight`, [mask, float(`transformer.h.${i}.attn.masked_bias`, [], [-1e4])]);
    }
  } else {
    const d = llamaDims(config);
    const invFreq = Array.from({ length: d.headDim / 2 }, (_, j) => 1 / d.theta ** ((2 * j) / d.headDim));
    // rotary_emb is self_attn's last child, so its buffer comes right before the MLP's tensors.
    for (let i = 0; i < d.layers; i++) before.set(`model.layers.${i}.mlp.gate_proj.weight`, [float(`model.layers.${i}.self_attn.rotary_emb.inv_freq`, [d.headDim / 2], invFreq)]);
  }
  return before;
}

/** Contiguous groups in state_dict order, balanced by bytes, none empty (save_pretrained also fills shards in order). */
function splitIntoShards(sizes: number[], n: number): number[] {
  if (n > sizes.length) throw new Error(`cannot split ${sizes.length} tensors into ${n} shards`);
  const total = sizes.reduce((a, b) => a + b, 0);
  const shardOf: number[] = [];
  let start = 0;
  let current = 0;
  sizes.forEach((size, i) => {
    if (i > 0) {
      // Move on when this tensor starts past the current shard's share, one shard at a time,
      // and early enough that every shard left still gets a tensor.
      const share = Math.floor((start * n) / total);
      current = Math.max(share > current ? current + 1 : current, n - (sizes.length - i));
    }
    shardOf.push(current);
    start += size;
  });
  return shardOf;
}

/** Writes config.json and the weights, as save_pretrained lays a model folder out (see HfFolderOptions). */
export async function writeHfFolder(dir: string, config: Record<string, unknown>, weights: Weights, opts: HfFolderOptions): Promise<void> {
  await mkdir(dir, { recursive: true });
  // save_pretrained: json.dumps(config, indent=2, sort_keys=True) + "\n", torch_dtype the model's.
  const sorted = Object.fromEntries(Object.entries({ ...config, torch_dtype: TORCH_DTYPE[opts.dtype] }).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  await writeFile(join(dir, "config.json"), JSON.stringify(sorted, null, 2) + "\n");

  const rename = (name: string) => (opts.prefix === false && name.startsWith("transformer.") ? name.slice("transformer.".length) : name);
  const before = opts.buffers ? bufferTensors(config, opts) : new Map<string, [string, HostTensor][]>();
  const ordered: [string, HostTensor][] = [];
  for (const [name, w] of weights) {
    for (const [bufferName, t] of before.get(name) ?? []) ordered.push([rename(bufferName), t]);
    ordered.push([rename(name), encodeWeight(name, w, opts.dtype)]);
  }
  const metadata = { format: "pt" };
  const shards = opts.shards ?? 1;
  if (shards <= 1) return writeSafetensors(join(dir, "model.safetensors"), new Map(ordered), metadata);

  const shardOf = splitIntoShards(ordered.map(([, t]) => t.data.byteLength), shards);
  const files = Array.from({ length: shards }, () => new Map<string, HostTensor>());
  const weightMap: Record<string, string> = {};
  ordered.forEach(([name, t], i) => {
    files[shardOf[i]!]!.set(name, t);
    weightMap[name] = shardFileName(shardOf[i]! + 1, shards);
  });
  for (const [k, tensors] of files.entries()) await writeSafetensors(join(dir, shardFileName(k + 1, shards)), tensors, metadata);
  const index = {
    metadata: { total_size: ordered.reduce((a, [, t]) => a + t.data.byteLength, 0) },
    weight_map: Object.fromEntries(Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
  };
  await writeFile(join(dir, "model.safetensors.index.json"), JSON.stringify(index, null, 2) + "\n");
}
