// Float64 forward passes of LlamaForCausalLM (and Qwen2/Mistral, which differ only in which
// projections carry a bias) and GPT2LMHeadModel, written line by line from transformers'
// modeling_llama.py, modeling_rope_utils.py, modeling_gpt2.py and pytorch_utils.Conv1D, to
// compare the GPU's logits against. Plain loops, no dorafuse code: an independent reference.
// One sequence, positions 0…n−1, no padding, no cache; eager attention (sdpa computes the same).

import type { Weight, Weights } from "./hf-checkpoint.js";

/** config.json fields with transformers' defaults where the config class has one. */
function reader(config: Record<string, unknown>) {
  const get = <T>(key: string, fallback?: T): T => {
    const value = config[key] ?? fallback;
    if (value === undefined) throw new Error(`config.json has no "${key}"`);
    return value as T;
  };
  return get;
}

/** Reads weights by name, and checks at the end that the model read every one (a misnamed or extra tensor would hide). */
function weightReader(w: Weights) {
  const used = new Set<string>();
  const get = (name: string, shape: number[]): Weight => {
    const t = w.get(name);
    if (!t) throw new Error(`reference: no weight "${name}"`);
    if (t.shape.join() !== shape.join()) throw new Error(`reference: "${name}" has shape [${t.shape}], the model needs [${shape}]`);
    used.add(name);
    return t;
  };
  const done = () => {
    const unused = [...w.keys()].filter((k) => !used.has(k));
    if (unused.length > 0) throw new Error(`reference: the model reads no weight named ${unused.join(", ")}`);
  };
  return { get, done };
}

// ---------------------------------------------------------------- building blocks

/** nn.Linear: y = x Wᵀ + b, W [out, in]; x [n, in] → [n, out]. */
function linear(x: Float64Array, n: number, W: Weight, b?: Weight): Float64Array {
  const [out, inp] = W.shape as [number, number];
  const y = new Float64Array(n * out);
  for (let t = 0; t < n; t++)
    for (let o = 0; o < out; o++) {
      let s = b ? b.data[o]! : 0;
      for (let i = 0; i < inp; i++) s += x[t * inp + i]! * W.data[o * inp + i]!;
      y[t * out + o] = s;
    }
  return y;
}

/** pytorch_utils.Conv1D: `torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight)`, W [in, out]. */
function conv1d(x: Float64Array, n: number, W: Weight, b: Weight): Float64Array {
  const [inp, out] = W.shape as [number, number];
  const y = new Float64Array(n * out);
  for (let t = 0; t < n; t++)
    for (let o = 0; o < out; o++) {
      let s = b.data[o]!;
      for (let i = 0; i < inp; i++) s += x[t * inp + i]! * W.data[i * out + o]!;
      y[t * out + o] = s;
    }
  return y;
}

/** LlamaRMSNorm.forward: variance = x.pow(2).mean(-1); x * rsqrt(variance + eps); weight * x. */
function rmsNorm(x: Float64Array, n: number, weight: Weight, eps: number): Float64Array {
  const d = weight.shape[0]!;
  const y = new Float64Array(x.length);
  for (let t = 0; t < n; t++) {
    let variance = 0;
    for (let i = 0; i < d; i++) variance += x[t * d + i]! ** 2;
    const r = 1 / Math.sqrt(variance / d + eps);
    for (let i = 0; i < d; i++) y[t * d + i] = weight.data[i]! * (x[t * d + i]! * r);
  }
  return y;
}

/** nn.LayerNorm: (x − mean) / sqrt(biased variance + eps) · weight + bias. */
function layerNorm(x: Float64Array, n: number, weight: Weight, bias: Weight, eps: number): Float64Array {
  const d = weight.shape[0]!;
  const y = new Float64Array(x.length);
  for (let t = 0; t < n; t++) {
    let mean = 0;
    for (let i = 0; i < d; i++) mean += x[t * d + i]!;
    mean /= d;
    let variance = 0;
    for (let i = 0; i < d; i++) variance += (x[t * d + i]! - mean) ** 2;
    const r = 1 / Math.sqrt(variance / d + eps);
    for (let i = 0; i < d; i++) y[t * d + i] = (x[t * d + i]! - mean) * r * weight.data[i]! + bias.data[i]!;
  }
  return y;
}

const add = (a: Float64Array, b: Float64Array) => a.map((v, i) => v + b[i]!);

/**
 * Causal softmax attention. q [n, heads·d], k and v [n, kvHeads·d] (`.view(n, heads, d)`:
 * head h owns columns h·d…h·d+d−1). Query head h reads kv head ⌊h / (heads/kvHeads)⌋, as
 * repeat_kv's expand + reshape lays the copies out. The masked scores get finfo.min in
 * transformers, so their softmax weight is exactly 0: they are skipped here.
 */
function causalAttention(q: Float64Array, k: Float64Array, v: Float64Array, n: number, heads: number, kvHeads: number, d: number, score: (dot: number) => number): Float64Array {
  const out = new Float64Array(n * heads * d);
  const groups = heads / kvHeads; // num_key_value_groups
  const p = new Float64Array(n);
  for (let h = 0; h < heads; h++) {
    const g = Math.floor(h / groups);
    for (let t = 0; t < n; t++) {
      let max = -Infinity;
      for (let s = 0; s <= t; s++) {
        let dot = 0;
        for (let j = 0; j < d; j++) dot += q[(t * heads + h) * d + j]! * k[(s * kvHeads + g) * d + j]!;
        p[s] = score(dot);
        max = Math.max(max, p[s]!);
      }
      let sum = 0;
      for (let s = 0; s <= t; s++) sum += p[s] = Math.exp(p[s]! - max);
      for (let s = 0; s <= t; s++)
        for (let j = 0; j < d; j++) out[(t * heads + h) * d + j] += (p[s]! / sum) * v[(s * kvHeads + g) * d + j]!;
    }
  }
  return out;
}

// ---------------------------------------------------------------- RoPE

/**
 * inv_freq [d/2] of LlamaRotaryEmbedding for a sequence of n positions (ROPE_INIT_FUNCTIONS in
 * modeling_rope_utils.py); the attention_scaling these types return is 1.
 */
export function ropeInvFreq(config: Record<string, unknown>, n: number): Float64Array {
  const get = reader(config);
  const headDim = get<number>("head_dim", get<number>("hidden_size") / get<number>("num_attention_heads"));
  const scaling = get<Record<string, number | string> | null>("rope_scaling", null);
  // LlamaRotaryEmbedding.__init__: rope_scaling.get("rope_type", rope_scaling.get("type")), else "default".
  const type = scaling ? ((scaling.rope_type ?? scaling.type) as string) : "default";
  const factor = scaling?.factor as number;
  // _compute_default_rope_parameters: 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))
  const defaults = (base: number) => Float64Array.from({ length: headDim / 2 }, (_, i) => 1 / base ** ((2 * i) / headDim));
  const base = get<number>("rope_theta", 10000);
  switch (type) {
    case "default":
      return defaults(base);
    case "linear":
      // _compute_linear_scaling_rope_parameters: inv_freq /= factor (older code divided position_ids instead: the same).
      return defaults(base).map((f) => f / factor);
    case "dynamic": {
      // _dynamic_frequency_update recomputes only once seq_len = max(position_ids) + 1 exceeds
      // max_position_embeddings; _compute_dynamic_ntk_parameters then grows the base.
      const max = get<number>("max_position_embeddings");
      if (n <= max) return defaults(base);
      return defaults(base * ((factor * n) / max - (factor - 1)) ** (headDim / (headDim - 2)));
    }
    case "llama3": {
      // _compute_llama3_parameters
      const low = scaling!.low_freq_factor as number;
      const high = scaling!.high_freq_factor as number;
      const oldContext = scaling!.original_max_position_embeddings as number;
      const lowFreqWavelen = oldContext / low;
      const highFreqWavelen = oldContext / high;
      return defaults(base).map((f) => {
        const wavelen = (2 * Math.PI) / f;
        // wavelen < high_freq_wavelen: do nothing; wavelen > low_freq_wavelen: divide by factor
        if (wavelen < highFreqWavelen) return f;
        if (wavelen > lowFreqWavelen) return f / factor;
        // otherwise: smooth_factor = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
        const smooth = (oldContext / wavelen - low) / (high - low);
        return (1 - smooth) * (f / factor) + smooth * f;
      });
    }
    default:
      throw new Error(`reference: rope type "${type}" is not implemented`);
  }
}

/**
 * apply_rotary_pos_emb for `heads` heads of x [n, heads·d] at positions 0…n−1:
 * freqs = position · inv_freq, emb = cat(freqs, freqs), x·cos + rotate_half(x)·sin with
 * rotate_half(x) = cat(−x2, x1) over the two halves of each head — not interleaved pairs.
 */
export function applyRope(x: Float64Array, n: number, heads: number, invFreq: Float64Array): Float64Array {
  const half = invFreq.length;
  const d = 2 * half;
  const y = new Float64Array(x.length);
  for (let t = 0; t < n; t++)
    for (let h = 0; h < heads; h++) {
      const at = (t * heads + h) * d;
      for (let j = 0; j < d; j++) {
        const angle = t * invFreq[j % half]!;
        const rotated = j < half ? -x[at + j + half]! : x[at + j - half]!;
        y[at + j] = x[at + j]! * Math.cos(angle) + rotated * Math.sin(angle);
      }
    }
  return y;
}

// ---------------------------------------------------------------- Llama

/** ACT2FN: "silu" is nn.SiLU; "gelu_new"/"gelu_pytorch_tanh" are GELU's tanh approximation. */
function activation(name: string): (x: number) => number {
  if (name === "silu" || name === "swish") return (x) => x / (1 + Math.exp(-x));
  // NewGELUActivation: 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3)))
  if (name === "gelu_new" || name === "gelu_pytorch_tanh") return (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
  throw new Error(`reference: activation "${name}" is not implemented`);
}

function embed(table: Weight, ids: readonly number[]): Float64Array {
  const [vocab, d] = table.shape as [number, number];
  const x = new Float64Array(ids.length * d);
  ids.forEach((id, t) => {
    if (!Number.isInteger(id) || id < 0 || id >= vocab) throw new Error(`reference: token id ${id} is outside the vocabulary of ${vocab}`);
    x.set(table.data.subarray(id * d, (id + 1) * d), t * d);
  });
  return x;
}

/** Logits [ids.length, vocab] (row-major) of LlamaForCausalLM (Qwen2ForCausalLM, MistralForCausalLM) for one sequence at positions 0…n−1. */
export function llamaLogits(config: Record<string, unknown>, w: Weights, ids: readonly number[]): Float64Array {
  const get = reader(config);
  const modelType = get<string>("model_type");
  if (!["llama", "qwen2", "mistral"].includes(modelType)) throw new Error(`reference: model_type "${modelType}" is not a Llama-family model`);
  const hidden = get<number>("hidden_size");
  const heads = get<number>("num_attention_heads");
  const kvHeads = get<number>("num_key_value_heads", heads); // LlamaConfig: None → num_attention_heads
  const headDim = get<number>("head_dim", hidden / heads); // getattr(config, "head_dim", hidden_size // num_attention_heads)
  const inter = get<number>("intermediate_size");
  const vocab = get<number>("vocab_size");
  const eps = get<number>("rms_norm_eps", 1e-6);
  const n = ids.length;
  const window = get<number | null>("sliding_window", null);
  const windowed = modelType === "mistral" || get<boolean>("use_sliding_window", false);
  if (windowed && window !== null && n > window) throw new Error(`reference: sliding-window attention (window ${window} < ${n} tokens) is not implemented`);
  // LlamaAttention: bias=config.attention_bias for q, k, v and o_proj; Qwen2Attention: bias=True for q, k, v, False for o_proj.
  const attentionBias = get<boolean>("attention_bias", false);
  const qkvBias = modelType === "qwen2" || attentionBias;
  const oBias = modelType !== "qwen2" && attentionBias;
  const mlpBias = get<boolean>("mlp_bias", false);
  const act = activation(get<string>("hidden_act", "silu"));
  const W = weightReader(w);
  const lin = (x: Float64Array, name: string, out: number, inp: number, bias: boolean) => linear(x, n, W.get(`${name}.weight`, [out, inp]), bias ? W.get(`${name}.bias`, [out]) : undefined);

  // LlamaModel.forward: inputs_embeds = self.embed_tokens(input_ids); position_ids = cache_position = arange(n)
  const embedTokens = W.get("model.embed_tokens.weight", [vocab, hidden]);
  let h: Float64Array = embed(embedTokens, ids);
  // position_embeddings = self.rotary_emb(hidden_states, position_ids), shared by every layer
  const invFreq = ropeInvFreq(config, n);
  for (let l = 0; l < get<number>("num_hidden_layers"); l++) {
    const p = `model.layers.${l}`;
    // LlamaDecoderLayer.forward: residual = hidden_states; hidden_states = self.input_layernorm(hidden_states)
    const x = rmsNorm(h, n, W.get(`${p}.input_layernorm.weight`, [hidden]), eps);
    // LlamaAttention.forward: q_proj/k_proj/v_proj(hidden_states).view(hidden_shape).transpose(1, 2)
    const q = lin(x, `${p}.self_attn.q_proj`, heads * headDim, hidden, qkvBias);
    const k = lin(x, `${p}.self_attn.k_proj`, kvHeads * headDim, hidden, qkvBias);
    const v = lin(x, `${p}.self_attn.v_proj`, kvHeads * headDim, hidden, qkvBias);
    // apply_rotary_pos_emb(query_states, key_states, cos, sin)
    const qr = applyRope(q, n, heads, invFreq);
    const kr = applyRope(k, n, kvHeads, invFreq);
    // eager_attention_forward: matmul(query, repeat_kv(key).transpose(2, 3)) * scaling, scaling = head_dim**-0.5
    const scaling = headDim ** -0.5;
    const attn = causalAttention(qr, kr, v, n, heads, kvHeads, headDim, (dot) => dot * scaling);
    // attn_output.reshape(*input_shape, -1); self.o_proj(attn_output); hidden_states = residual + hidden_states
    h = add(h, lin(attn, `${p}.self_attn.o_proj`, hidden, heads * headDim, oBias));
    // residual = hidden_states; self.post_attention_layernorm; LlamaMLP: down_proj(act_fn(gate_proj(x)) * up_proj(x))
    const y = rmsNorm(h, n, W.get(`${p}.post_attention_layernorm.weight`, [hidden]), eps);
    const gate = lin(y, `${p}.mlp.gate_proj`, inter, hidden, mlpBias);
    const up = lin(y, `${p}.mlp.up_proj`, inter, hidden, mlpBias);
    h = add(h, lin(gate.map((g, i) => act(g) * up[i]!), `${p}.mlp.down_proj`, hidden, inter, mlpBias));
  }
  // hidden_states = self.norm(hidden_states); LlamaForCausalLM: logits = self.lm_head(hidden_states)
  h = rmsNorm(h, n, W.get("model.norm.weight", [hidden]), eps);
  // tie_word_embeddings (LlamaConfig default False) makes lm_head.weight the embedding matrix itself
  const head = get<boolean>("tie_word_embeddings", false) ? embedTokens : W.get("lm_head.weight", [vocab, hidden]);
  W.done();
  return linear(h, n, head);
}

// ---------------------------------------------------------------- GPT-2

/** Logits [ids.length, vocab] (row-major) of GPT2LMHeadModel for one sequence at positions 0…n−1; names with "transformer.". */
export function gpt2Logits(config: Record<string, unknown>, w: Weights, ids: readonly number[]): Float64Array {
  const get = reader(config);
  // GPT2Config.attribute_map: hidden_size → n_embd, num_attention_heads → n_head, ...
  const e = get<number>("n_embd");
  const heads = get<number>("n_head");
  const d = e / heads; // GPT2Attention: head_dim = embed_dim // num_heads
  const inner = get<number | null>("n_inner", null) ?? 4 * e; // GPT2Block: n_inner if not None else 4 * hidden_size
  const vocab = get<number>("vocab_size");
  const positions = get<number>("n_positions");
  const eps = get<number>("layer_norm_epsilon", 1e-5);
  const scaleWeights = get<boolean>("scale_attn_weights", true);
  const byLayer = get<boolean>("scale_attn_by_inverse_layer_idx", false);
  const act = activation(get<string>("activation_function", "gelu_new"));
  const n = ids.length;
  if (n > positions) throw new Error(`reference: ${n} tokens, but GPT-2 has ${positions} position embeddings`);
  const W = weightReader(w);
  const ln = (x: Float64Array, name: string) => layerNorm(x, n, W.get(`${name}.weight`, [e]), W.get(`${name}.bias`, [e]), eps);
  const conv = (x: Float64Array, name: string, inp: number, out: number) => conv1d(x, n, W.get(`${name}.weight`, [inp, out]), W.get(`${name}.bias`, [out]));

  // GPT2Model.forward: hidden_states = self.wte(input_ids) + self.wpe(position_ids), position_ids = arange(n)
  const wte = W.get("transformer.wte.weight", [vocab, e]);
  const wpe = W.get("transformer.wpe.weight", [positions, e]);
  let h: Float64Array = add(embed(wte, ids), wpe.data.subarray(0, n * e));
  for (let l = 0; l < get<number>("n_layer"); l++) {
    const p = `transformer.h.${l}`;
    // GPT2Block.forward: residual = hidden_states; hidden_states = self.ln_1(hidden_states)
    const x = ln(h, `${p}.ln_1`);
    // GPT2Attention.forward: query, key, value = self.c_attn(hidden_states).split(self.split_size, dim=2)
    const qkv = conv(x, `${p}.attn.c_attn`, e, 3 * e);
    const part = (k: number) => Float64Array.from({ length: n * e }, (_, i) => qkv[Math.floor(i / e) * 3 * e + k * e + (i % e)]!);
    // _attn: matmul(query, key.transpose(-1, -2)) / value.size(-1) ** 0.5 [/ float(layer_idx + 1)]; causal mask; softmax
    const score = (dot: number) => {
      let s = scaleWeights ? dot / d ** 0.5 : dot;
      if (byLayer) s /= l + 1;
      return s;
    };
    const attn = causalAttention(part(0), part(1), part(2), n, heads, heads, d, score);
    // _merge_heads; self.c_proj(attn_output); hidden_states = attn_output + residual
    h = add(h, conv(attn, `${p}.attn.c_proj`, e, e));
    // residual = hidden_states; self.ln_2; GPT2MLP: c_proj(act(c_fc(hidden_states))); residual + feed_forward
    const y = ln(h, `${p}.ln_2`);
    h = add(h, conv(conv(y, `${p}.mlp.c_fc`, e, inner).map(act), `${p}.mlp.c_proj`, inner, e));
  }
  // hidden_states = self.ln_f(hidden_states); GPT2LMHeadModel: lm_logits = self.lm_head(hidden_states), tied to wte
  h = ln(h, "transformer.ln_f");
  const head = get<boolean>("tie_word_embeddings", true) ? wte : W.get("lm_head.weight", [vocab, e]);
  W.done();
  return linear(h, n, head);
}
