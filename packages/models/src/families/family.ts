// What a model family is to the rest of the package: a config read from config.json, a
// parameter tree whose dotted paths are transformers' module names (so `adapt` targets
// `q_proj` or `c_attn` as PEFT does, and toMergedName gives the checkpoint's tensor names),
// a forward over a whole sequence (training, evaluation) and a step over a KV cache
// (generation). Llama and GPT-2 each implement it in one file.
import type { HostTensor, Key, nn, Tensor } from "@dorafuse/core";

/** Batch × sequence of token ids. */
export type Ids<B extends number | string = number | string, S extends number | string = number | string> = Tensor<[B, S], "i32">;

/** Keys and values of every layer: `[batch, kvHeads, capacity, headDim]` each. */
export interface KvCache {
  readonly layers: readonly { readonly k: Tensor; readonly v: Tensor }[];
}

/** How the checkpoint names and stores the tree's tensors, beyond toMergedName of their paths. */
export interface WeightNames {
  /** Layers stored as transformers' Conv1D, `[in, out]`: transposed into the tree's `[out, in]`. */
  readonly conv1d: RegExp;
  /** An outer prefix some files drop (hub GPT-2 files say `h.0…`, save_pretrained writes `transformer.h.0…`). */
  readonly optionalPrefix?: string;
  /** Tensors real checkpoints carry beside the parameters (masks, inverse frequencies): skipped. */
  readonly buffers: RegExp;
}

/** The fields every family's config shares, for generation and the CLI. */
export interface BaseConfig {
  readonly vocab: number;
  readonly dim: number;
  readonly layers: number;
  readonly kvHeads: number;
  readonly headDim: number;
  /** Longest context the model was trained for (max_position_embeddings, n_positions). */
  readonly maxPositions: number;
  readonly tied: boolean;
  readonly bos?: number;
  readonly eos: readonly number[];
}

export interface Family<C extends BaseConfig = BaseConfig, P = unknown> {
  /** transformers' model_type values this family reads. */
  readonly modelTypes: readonly string[];
  /** config.json as a typed config; `file` names it in errors. */
  readConfig(json: Record<string, unknown>, file: string): C;
  /** config.json for a config (what save_pretrained would write). */
  writeConfig(cfg: C): Record<string, unknown>;
  /** Fresh parameters (call inside a trace, e.g. through evaluate). */
  init(key: Key, cfg: C): P;
  /** Constant tables the model reads beside its parameters (RoPE's cos and sin), for positions below `positions`. */
  buffers(cfg: C, positions: number): Record<string, HostTensor>;
  /** Logits `[B, S, vocab]` for ids at positions 0…S−1. */
  forward(p: P, buffers: Record<string, Tensor>, ids: Ids, cfg: C, run?: nn.AdapterRun): Tensor;
  /**
   * Ids `[B, T]` at positions `start`…`start+T−1`: their keys and values are written into the
   * cache, and each attends to every cached position up to its own. Returns the logits
   * `[B, vocab]` of the token at index `last` of the T, and the new cache.
   */
  step(p: P, buffers: Record<string, Tensor>, cache: KvCache, ids: Ids, start: Tensor<[], "i32">, last: Tensor<[], "i32">, cfg: C, run?: nn.AdapterRun): { logits: Tensor; cache: KvCache };
  readonly names: WeightNames;
  /** The layers fine-tuning adapts unless told otherwise (PEFT's target_modules for the architecture). */
  readonly adapterTargets: readonly string[];
}
